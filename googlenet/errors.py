"""The user's mistakes: how the commands (train, predict, evaluate) refuse them.

A bad option, path, file or device is a ``UserError`` (or minigrad's ``DataError``
or ``CheckpointError``); a command wrapped in ``reports_user_errors`` prints it as
one line on stderr and exits with status 2, never with a traceback.
"""
import functools
import sys

from minigrad import backend
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
