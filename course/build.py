"""Build the lesson notebooks: ``python -m course build``.

Each ``notebooks/NN_name.py`` (a jupytext "percent" file) becomes

    notebooks/student/NN_name.ipynb     every solution replaced by raise NotImplementedError
    notebooks/solutions/NN_name.ipynb   as written

A solution is the lines between ``### BEGIN SOLUTION exercise N.M: what`` and
``### END SOLUTION``; the student version keeps the indentation and says which
exercise is missing: ``raise NotImplementedError("exercise N.M: what")``.
"""
import argparse
import os
import re
import sys

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION (?P<label>exercise \d+\.\d+: .+?)\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
LESSON_NAME = re.compile(r"^\d\d_\w+\.py$")


class LessonFormatError(ValueError):
    """A lesson source whose solution markers do not pair up."""


def solution_blocks(text, source="lesson"):
    """[(label, indent, first line, last line)] of each solution block (line numbers from 0)."""
    blocks, open_block = [], None
    for number, line in enumerate(text.splitlines()):
        begin = BEGIN.match(line)
        if begin:
            if open_block:
                raise LessonFormatError(f"{source}, line {number + 1}: a BEGIN SOLUTION inside another")
            open_block = (begin["label"], begin["indent"], number)
        elif END.match(line):
            if not open_block:
                raise LessonFormatError(f"{source}, line {number + 1}: END SOLUTION without a BEGIN")
            blocks.append((*open_block, number))
            open_block = None
    if open_block:
        raise LessonFormatError(f"{source}, line {open_block[2] + 1}: BEGIN SOLUTION never ends")
    return blocks


def student_source(text, source="lesson"):
    """The lesson with every solution block replaced by a NotImplementedError naming it."""
    lines = text.splitlines()
    for label, indent, first, last in reversed(solution_blocks(text, source)):
        lines[first:last + 1] = [f'{indent}raise NotImplementedError("{label}")']
    return "\n".join(lines) + "\n"


def lesson_paths(folder):
    """The lesson sources in ``folder``, in lesson order."""
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if LESSON_NAME.match(name)]


def notebook(text):
    """A jupytext percent-format source -> an nbformat notebook (needs jupytext)."""
    import jupytext
    return jupytext.reads(text, fmt="py:percent")


def build(folder="notebooks"):
    """Write the student and solution notebooks of every lesson in ``folder``; their paths."""
    import nbformat
    written = []
    for path in lesson_paths(folder):
        text = open(path, encoding="utf-8").read()
        name = os.path.splitext(os.path.basename(path))[0] + ".ipynb"
        for version, source in (("student", student_source(text, path)), ("solutions", text)):
            os.makedirs(os.path.join(folder, version), exist_ok=True)
            target = os.path.join(folder, version, name)
            nbformat.write(notebook(source), target)
            written.append(target)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("build", help="write notebooks/student/*.ipynb and notebooks/solutions/*.ipynb")
    command.add_argument("--notebooks", default="notebooks", help="the folder of the lesson sources")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.notebooks):
        print(f"error: no lesson folder {args.notebooks!r} (run from the repository's root, or give "
              f"--notebooks)", file=sys.stderr)
        return 2
    try:
        written = build(args.notebooks)
    except ImportError as error:
        print(f"error: {error.name} is missing: pip install -e \".[notebooks]\"", file=sys.stderr)
        return 2
    except LessonFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} notebooks: {args.notebooks}/student/ (exercises to do) and "
          f"{args.notebooks}/solutions/")
    return 0
