"""The user's mistakes: how the commands refuse them.

A bad option, path, file or device is a ``UserError`` (or minigrad's ``DataError``
or ``CheckpointError``); a command wrapped in ``reports_user_errors`` prints it as
one line on stderr and exits with status 2, never with a traceback. Every command
checks its numbers (``check_number``), its device (``check_device``) and where it
will write (``check_output_folder``, ``check_output_file``) before any slow work, and
argparse's own refusals are one line too (``OneLineErrorParser``). The zoo's command line
(``python -m zoo``) refuses its mistakes the same way.
"""
import argparse
import functools
import math
import numbers
import os
import sys

from minigrad import backend, parallel, paths
from minigrad.checkpoint import CheckpointError
from minigrad.data import DataError


class UserError(Exception):
    """A problem with what the user asked for; the command line prints it in one line."""


USER_ERRORS = (UserError, DataError, CheckpointError)


def check_device(device):
    """'cpu', or a usable GPU; a UserError otherwise."""
    try:
        device = backend.parse_device(device)
    except ValueError as error:
        raise UserError(str(error)) from None
    if device != "cpu" and backend.gpu_unavailable_reason() is not None:
        raise UserError(f"device {device!r} asked for, but {backend.gpu_unavailable_reason()}")
    return device


def check_number(flag, value, low, high=math.inf, *, low_open=False, high_open=False):
    """``value`` when it is a finite number from ``low`` to ``high`` (an open end excluded);
    a UserError naming ``flag`` otherwise. NaN fails every comparison, so it is refused too:

        check_number("--lr", nan, 0, low_open=True)   # --lr must be finite and positive, got nan
        check_number("--epochs", 0, 1)                 # --epochs must be at least 1, got 0
        check_number("--dropout", 1.0, 0, 1, high_open=True)   # --dropout must lie in [0, 1), got 1.0
    """
    def inside():
        above_low = value > low if low_open else value >= low
        return above_low and (value < high if high_open else value <= high)

    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (is_number and math.isfinite(value) and inside()):
        raise UserError(f"{flag} must {_range_text(value, low, high, low_open, high_open)}, got {value}")
    return value


def _range_text(value, low, high, low_open, high_open):
    """ "be at least 1", "be finite and positive", "lie in [0, 1)": the rule, in words."""
    if high != math.inf:
        return f"lie in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    finite = "be " if isinstance(value, numbers.Integral) else "be finite and "
    if low == 0 and low_open:
        return finite + "positive"
    return finite + ("greater than" if low_open else "at least") + f" {low}"


THREADS_HELP = ("threads for the memory-bound kernels: pooling, LRN, im2col, ReLU, copies (default: "
                "the environment variable MINIGRAD_THREADS, else every core this process may use; "
                "any count gives the same results)")


def use_threads(count, flag="--threads"):
    """Split the kernels over ``count`` threads from now on (None: MINIGRAD_THREADS, else every
    core the process may use) and return the count in force; a UserError naming ``flag``, or
    the environment variable, for a count below 1. A count given is also written into
    MINIGRAD_THREADS, for the processes this one starts (a benchmark's measuring child)."""
    if count is not None:
        check_number(flag, count, 1)
        os.environ[parallel.ENVIRONMENT_VARIABLE] = str(count)
    parallel.set_thread_count(count)
    try:
        return parallel.thread_count()
    except ValueError as error:              # MINIGRAD_THREADS set to something else
        raise UserError(str(error)) from None


def check_output_folder(flag, folder):
    """A UserError naming ``flag`` unless ``folder`` is a folder, or can be made one, that
    can be written to (missing folders are made when the command writes)."""
    problem = paths.folder_problem(folder)
    if problem:
        raise UserError(f"{flag} {folder}: {problem}")


def check_output_file(flag, path, suffixes=None):
    """A UserError naming ``flag`` unless a file can be written at ``path`` (its folder must
    exist: a typo in a folder name is refused, not made) and, when ``suffixes`` are given,
    its name ends in one of them."""
    problem = paths.file_problem(path, suffixes)
    if problem:
        raise UserError(f"{flag} {path}: {problem}")


def reports_user_errors(run):
    """``run(args)``, with a user's mistake printed as one line and exit status 2."""
    @functools.wraps(run)
    def guarded(args):
        try:
            return run(args)
        except USER_ERRORS as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return guarded


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit status 2, like every other
    mistake these commands refuse, instead of the usage then the error. Each command's
    parser is one too (argparse makes sub-parsers of the parent's class)."""

    def error(self, message):
        self.exit(2, f"error: {message} ({self.prog} --help lists the options)\n")
