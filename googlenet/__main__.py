"""The command line: ``python -m googlenet <command> [options]``.

Each command lives in a module of this package, which provides

    add_parser(subparsers)  # adds its argparse sub-parser, with
                            # parser.set_defaults(func=run), and returns it
    run(args)               # does the work; returns an exit status (or None for 0)

or ``add_parsers(subparsers)`` when one module registers several commands
(``predict`` registers ``predict`` and ``evaluate``). A new command is a new
``googlenet/<name>.py`` plus its module name in ``COMMAND_MODULES``.
"""
import importlib
import sys

from minigrad.host_memory import keep_freed_memory

from .errors import OneLineErrorParser

COMMAND_MODULES = ("summary", "gradcheck", "train", "predict", "bench")


def available_commands():
    """{module name: module} for every command module."""
    return {name: importlib.import_module(f"googlenet.{name}") for name in COMMAND_MODULES}


def register(module, subparsers):
    """Let ``module`` add its command(s) to ``subparsers``."""
    hook = getattr(module, "add_parsers", None) or getattr(module, "add_parser", None)
    if hook is None:
        raise AttributeError(f"{module.__name__} is listed as a command module but defines neither "
                             f"add_parser(subparsers) nor add_parsers(subparsers)")
    hook(subparsers)


def build_parser(commands):
    parser = OneLineErrorParser(prog="python -m googlenet",
                                description="GoogLeNet (Szegedy et al. 2014) on minigrad.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    for module in commands.values():
        register(module, subparsers)
    return parser


def main(argv=None):
    args = build_parser(available_commands()).parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)     # the command as given (bench reruns it)
    keep_freed_memory()                 # a step's freed arrays stay for the next step (minigrad/host_memory.py)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
