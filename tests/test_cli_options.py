"""Every command's options as a careless or hostile user types them.

Each numeric option of every command (``python -m googlenet ...`` and ``python -m zoo``),
found by reading the parsers themselves, is given NaN, infinity, -1 and 0; each output option
is pointed at a file, a folder, a missing folder. A bad value is refused before any work: one
error line naming the option, exit status 2, no traceback (argparse's own refusals too:
``googlenet.errors.OneLineErrorParser``). A good value
reaches the work, which the tests replace by a stand-in that stops there
(``ReachedTheWork``), so nothing is trained or timed.
"""
import argparse

import numpy
import pytest

from googlenet import __main__ as googlenet_cli
from zoo import __main__ as zoo_cli

MAINS = {"googlenet": googlenet_cli.main, "zoo": zoo_cli.main}


class ReachedTheWork(Exception):
    """Raised by the stand-ins of each command's slow work: the options were accepted."""


def reach_the_work(*args, **kwargs):
    raise ReachedTheWork


# Where each command's slow work starts: model building, training, timing, evaluating.
WORK = [("googlenet.summary", "format_summary"), ("googlenet.gradcheck", "gradcheck_googlenet"),
        ("googlenet.train", "Trainer"), ("googlenet.predict", "load_trained"),
        ("zoo.summary", "compare"), ("minigrad.bench", "time_ops"), ("minigrad.bench.compare", "time_configuration")]


@pytest.fixture
def stand_ins(monkeypatch, tmp_path):
    """Every command's work replaced by ``reach_the_work``, in an empty current folder
    holding one image (for ``predict IMAGE``)."""
    from PIL import Image
    for module, name in WORK:
        monkeypatch.setattr(f"{module}.{name}", reach_the_work)
    monkeypatch.chdir(tmp_path)
    Image.fromarray(numpy.zeros((8, 8), numpy.uint8)).save(tmp_path / "image.png")


def run(entry, argv, capsys):
    """("reached", None, stderr) when the command got to its work, else ("exited", status, stderr)."""
    try:
        status = MAINS[entry](argv)
    except ReachedTheWork:
        return "reached", None, capsys.readouterr().err
    except SystemExit as stop:              # argparse refusing a value it cannot read
        status = stop.code
    return "exited", status, capsys.readouterr().err


def error_line(err):
    """The one error line on stderr, all of it."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- every numeric option -----------------------------------------------------------------------
def command_parsers():
    """{(entry, command): its argparse parser} for every command of both command lines:
    ``python -m googlenet COMMAND`` and ``python -m zoo`` (one command, named "zoo")."""
    parser = googlenet_cli.build_parser(googlenet_cli.available_commands())
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parsers = {("googlenet", name): command for name, command in commands.choices.items()}
    parsers["zoo", "zoo"] = zoo_cli.build_parser()
    return parsers


def command_argv(entry, command):
    """The words that name the command: ["train"] for ``python -m googlenet train``, none for
    ``python -m zoo``."""
    return [command] if entry == "googlenet" else []


def reads_a_number(option_type):
    """True when an option's type reads "1" as a number (a type that refuses "1", such as
    bench's BATCHxSIZE, is not a numeric option)."""
    try:
        return isinstance(option_type("1"), (int, float))
    except (argparse.ArgumentTypeError, ValueError):
        return False


def numeric_options():
    """[(entry, command, flag)] for every option whose type reads "1" as a number."""
    options = []
    for (entry, command), parser in command_parsers().items():
        for action in parser._actions:
            if action.option_strings and action.type is not None and reads_a_number(action.type):
                options.append((entry, command, action.option_strings[-1]))
    return options


# What a command needs besides the option under test.
BASE_ARGV = {"summary": [], "gradcheck": [], "train": ["--no-progress"], "predict": ["image.png"],
             "evaluate": [], "bench": ["--quick"], "zoo": ["--quick"]}

# The values among NaN, inf, -1 and 0 that an option rightly takes: they must reach the work.
ACCEPTED = {("gradcheck", "--seed", "0"), ("train", "--seed", "0"), ("train", "--weight-decay", "0"),
            ("train", "--aux-weight", "0"), ("train", "--momentum", "0"), ("train", "--average", "0"),
            ("train", "--dropout", "0"), ("train", "--aux-dropout", "0")}


def test_the_options_are_found_in_every_command():
    found = {(command, flag) for _, command, flag in numeric_options()}
    assert {("summary", "--width"), ("gradcheck", "--elements"), ("train", "--lr"), ("train", "--aux-weight"),
            ("train", "--average"), ("predict", "--top"), ("bench", "--batch"), ("zoo", "--width"),
            ("bench", "--repeats")} <= found
    assert {(command, flag) for command, flag, _ in ACCEPTED} <= found
    assert set(BASE_ARGV) >= {command for _, command, _ in numeric_options()}


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
@pytest.mark.parametrize("entry, command, flag", numeric_options())
def test_every_numeric_option_refuses_nan_inf_and_out_of_range_values_up_front(
        entry, command, flag, value, stand_ins, capsys):
    outcome, status, err = run(entry, [*command_argv(entry, command), *BASE_ARGV[command], flag, value], capsys)
    if (command, flag, value) in ACCEPTED:
        assert outcome == "reached", err
        return
    assert outcome == "exited", f"{command} {flag} {value} was accepted"
    assert status == 2
    line = error_line(err)
    assert flag in line, line
    if flag == "--width" and value != "nan":
        assert f"--width must be finite and positive, got {float(value)}" in line


# --- every output option ------------------------------------------------------------------------
# (entry, the command before the path, the option, "folder" or "file").
OUTPUT_OPTIONS = [
    ("googlenet", ["bench", "--compare", "--quick", "--only", "3a/pool"], "--out", "folder"),
    ("googlenet", ["train", "--no-progress", "--epochs", "1"], "--out", "folder"),
    ("googlenet", ["evaluate", "--checkpoint", "run/checkpoint.npz"], "--out", "folder"),
    ("zoo", ["--quick", "--only", "lenet5"], "--plot", "file"),
]
# Paths that cannot be written, relative to a folder holding "file" (a file) and "folder":
# an output folder can be made where none is, but not on top of or inside a file; an output
# file needs its folder to exist, and to be no folder itself.
UNWRITABLE = {"folder": {"file": "is a file, not a folder",
                         "file/inside": "is a file, so no folder can be made there"},
              "file": {"folder": "is a folder, not a file",
                       "missing/plot.png": "does not exist",
                       "file/plot.png": "is a file, not a folder",
                       "folder/plot.txt": "expected a file name ending in .png, .pdf, .svg"}}
WRITABLE = {"folder": ["missing/deeper", "folder"], "file": ["folder/plot.png", "plot.pdf"]}


def a_file_and_a_folder(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()


@pytest.mark.parametrize("entry, argv, flag, kind", OUTPUT_OPTIONS)
def test_every_output_path_is_checked_before_any_work(entry, argv, flag, kind, stand_ins, tmp_path, capsys):
    a_file_and_a_folder(tmp_path)
    for path, problem in UNWRITABLE[kind].items():
        outcome, status, err = run(entry, [*argv, flag, path], capsys)
        assert outcome == "exited", f"{flag} {path}: the work started before the path was checked"
        line = error_line(err)
        assert status == 2 and line.startswith(f"error: {flag} {path}: ") and problem in line, err
    for path in WRITABLE[kind]:
        outcome, _, err = run(entry, [*argv, flag, path], capsys)
        assert outcome == "reached", err
