"""The command line: ``python -m googlenet <command> [options]``.

Each command lives in its own module of this package, which provides

    add_arguments(parser)   # its options, on an argparse sub-parser
    run(args)               # does the work; may return an exit status

and whose docstring's first line is the command's help. A module listed in
``COMMANDS`` that does not exist yet is simply not offered, so adding a command
means writing ``googlenet/<name>.py`` (and, for a new name, adding it here).
"""
import argparse
import importlib
import importlib.util
import sys

COMMANDS = ("summary", "gradcheck", "train", "evaluate", "predict", "bench")


def available_commands():
    """{name: module} for the commands whose module exists."""
    return {name: importlib.import_module(f"googlenet.{name}") for name in COMMANDS
            if importlib.util.find_spec(f"googlenet.{name}") is not None}


def build_parser(commands):
    parser = argparse.ArgumentParser(prog="python -m googlenet",
                                     description="GoogLeNet (Szegedy et al. 2014) on minigrad.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, module in commands.items():
        help_line = (module.__doc__ or name).strip().splitlines()[0]
        sub = subparsers.add_parser(name, help=help_line, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
    return parser


def main(argv=None):
    commands = available_commands()
    args = build_parser(commands).parse_args(argv)
    return commands[args.command].run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
