"""The command line: ``python -m googlenet <command> [options]``.

Each command lives in its own module of this package, which provides

    add_parser(subparsers)  # adds its argparse sub-parser, with
                            # parser.set_defaults(func=run), and returns it
    run(args)               # does the work; returns an exit status (or None for 0)

A module listed in ``COMMANDS`` that does not exist (yet) is not offered, so a
new command is a new ``googlenet/<name>.py`` plus, for a new name, one word here.
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
    for module in commands.values():
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    args = build_parser(available_commands()).parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
