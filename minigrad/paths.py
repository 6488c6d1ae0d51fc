"""Where a command will write, checked before it does any slow work.

A benchmark that times for minutes and then cannot write its table has wasted the
minutes. So a command asks, before it measures or trains anything:

    folder_problem(path)            # an output folder: missing ones are made, files are not folders
    file_problem(path, suffixes)    # an output file: its folder must already exist

Each returns why ``path`` cannot be written, as one phrase, or None when it can; the
command turns the phrase into its own one-line error naming the option. Running as
root, ``os.access`` says yes to every folder, so a read-only folder is only caught for
other users.
"""
import os


def folder_problem(path):
    """Why no files can be written into the folder ``path``, or None. A missing folder (and
    missing folders above it) is fine: ``os.makedirs`` will make it."""
    if os.path.exists(path) and not os.path.isdir(path):
        return "is a file, not a folder"
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        return f"{existing} is a file, so no folder can be made there"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def file_problem(path, suffixes=None):
    """Why the file ``path`` cannot be written, or None. Its folder must exist: for a file,
    a missing folder is more likely a typo than a wish. ``suffixes`` (".png", ".pdf"):
    the endings the writer understands, when it has a choice."""
    if os.path.isdir(path):
        return "is a folder, not a file"
    if suffixes and not path.lower().endswith(tuple(suffixes)):
        return f"expected a file name ending in {', '.join(suffixes)}"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        existing = _nearest_existing(folder)
        if not os.path.isdir(existing):
            return f"{existing} is a file, not a folder"
        return f"the folder {folder} does not exist"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else "is not writable"
    return None if os.access(folder, os.W_OK | os.X_OK) else f"the folder {folder} is not writable"


def _nearest_existing(path):
    """``path``, or the nearest folder above it that exists."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing
