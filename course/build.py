"""Build the lesson notebooks: ``python -m course build``.

Each ``notebooks/NN_name.py`` (a jupytext "percent" file) becomes

    notebooks/student/NN_name.ipynb   every solution and answer taken out: the exercises to do

and, only when an instructor asks with ``--solutions DIR``,

    DIR/NN_name.ipynb                 the exercises done and the answers shown

Two kinds of marked blocks, each a pair of lines that must be written exactly so:

* a solution, in a code cell: the lines between ``### BEGIN SOLUTION exercise N.M: title``
  and ``### END SOLUTION``. The student version keeps the indentation and says which
  exercise is missing: ``raise NotImplementedError('exercise N.M: title')``; the solutions
  keep the block as written.
* an answer to a question, in a markdown cell: the lines between ``# ### BEGIN ANSWER
  question N.x`` and ``# ### END ANSWER``. The student version has ``*Your answer:*`` and
  an empty line in its place; the solutions show the answer after ``**Answer.**``.

A comment line that reads like a marker but is not exactly one (``###BEGIN SOLUTION``,
``## begin solution``, ``### END SOLUTON``, extra words after END) is an error, and so is
every notebook whose code does not compile: the build writes nothing then.

Building again never loses a learner's work: the build records the SHA-256 of each notebook
it writes in ``.course-build.json`` beside them, and refreshes only the notebooks that are
still exactly what it wrote. A notebook changed since (or not written by the build) is kept
and named; ``--force`` overwrites it.
"""
import argparse
import difflib
import hashlib
import json
import os
import re
import sys
from typing import NamedTuple

SOLUTION_BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION (?P<label>exercise \d+\.\d+: \S.*?)\s*$")
SOLUTION_END = re.compile(r"^[ \t]*### END SOLUTION\s*$")
ANSWER_BEGIN = re.compile(r"^# ### BEGIN ANSWER (?P<label>question \d+\.[a-z])\s*$")
ANSWER_END = re.compile(r"^# ### END ANSWER\s*$")
CELL_START = re.compile(r"^# %%(?P<rest>.*)$")
LESSON_NAME = re.compile(r"^\d\d_\w+\.py$")

# A comment line counts as an attempted marker when its first two words read like BEGIN or END
# then SOLUTION or ANSWER: the first word exactly so in any case (or, written in capitals, alike
# by at least FIRST_WORD_LIKENESS: EDN, BEGN), the second alike by at least SECOND_WORD_LIKENESS
# (difflib's ratio, 1 = equal: SOLUTON, Solutions, answr).
MARKER_FIRST_WORDS, MARKER_SECOND_WORDS = ("begin", "end"), ("solution", "answer")
FIRST_WORD_LIKENESS, SECOND_WORD_LIKENESS = 0.6, 0.75
EXACT_FORMS = {
    "solution": "'### BEGIN SOLUTION exercise N.M: title' and '### END SOLUTION' in a code cell",
    "answer": "'# ### BEGIN ANSWER question N.x' and '# ### END ANSWER' in a markdown cell",
}
STUDENT_ANSWER = ["# *Your answer:*", "#"]
SOLUTION_ANSWER_HEADING = "# **Answer.**"
MANIFEST = ".course-build.json"


class LessonFormatError(ValueError):
    """A lesson source whose markers are malformed, misplaced or unpaired."""


class BuildError(RuntimeError):
    """A build that cannot go on: a notebook that does not compile, an output that is a file."""


class Block(NamedTuple):
    """A marked block of a lesson source; ``first`` and ``last`` are its marker lines (from 0;
    ``last`` is None while its END is not yet found)."""
    kind: str           # "solution" or "answer"
    label: str          # "exercise 1.1: mul backward" or "question 4.a"
    indent: str
    first: int
    last: int


MARKERS = (("begin", "solution", SOLUTION_BEGIN), ("end", "solution", SOLUTION_END),
           ("begin", "answer", ANSWER_BEGIN), ("end", "answer", ANSWER_END))


def marker(line):
    """(side, kind, match) when ``line`` is exactly a marker (side "begin" or "end", kind "solution"
    or "answer"), else None."""
    for side, kind, pattern in MARKERS:
        match = pattern.match(line)
        if match:
            return side, kind, match
    return None


def likeness(a, b):
    """difflib's similarity of two strings: 1 when equal, 0 when they share no letter."""
    return difflib.SequenceMatcher(None, a, b).ratio()


def first_two_words(comment):
    """The first two words of a comment line, a word run into the next split off: BEGINSOLUTION."""
    words = re.findall(r"[A-Za-z]+", comment)
    if words:
        for first in MARKER_FIRST_WORDS:
            if words[0].lower().startswith(first) and len(words[0]) > len(first):
                words[:1] = [words[0][:len(first)], words[0][len(first):]]
    return words[:2]


def reads_like_a_marker(line):
    """True for a comment line that starts like BEGIN/END SOLUTION/ANSWER, exact or not
    (``###BEGIN SOLUTION``, ``## begin solution``, ``### EDN SOLUTION``, ``### END SOLUTON``)."""
    stripped = line.strip()
    if not stripped.startswith("#"):
        return False
    words = first_two_words(stripped)
    if len(words) < 2:
        return False
    first, second = words
    first_alike = any(first.lower() == word
                      or (first.isupper() and likeness(first.lower(), word) >= FIRST_WORD_LIKENESS)
                      for word in MARKER_FIRST_WORDS)
    second_alike = any(likeness(second.lower(), word) >= SECOND_WORD_LIKENESS for word in MARKER_SECOND_WORDS)
    return first_alike and second_alike


def cell_kinds(lines):
    """The kind of cell each line of a percent file belongs to: "header" (the ``# ---`` block that
    opens the file), "code", "markdown" or "raw". Lines before the first ``# %%`` are code."""
    in_header = bool(lines) and lines[0].rstrip() == "# ---"
    kinds, kind = [], "code"
    for number, line in enumerate(lines):
        if in_header:
            kinds.append("header")
            in_header = number == 0 or line.rstrip() != "# ---"
            continue
        start = CELL_START.match(line)
        if start:
            rest = start["rest"]
            kind = "markdown" if ("[markdown]" in rest or "[md]" in rest) else "raw" if "[raw]" in rest else "code"
        kinds.append(kind)
    return kinds


def marked_blocks(text, source="lesson"):
    """Every solution and answer block of a lesson source, checked: exact markers, each in a cell of
    its kind, BEGIN and END paired within one cell, no block inside another."""
    lines = text.splitlines()
    kinds = cell_kinds(lines)
    blocks, open_block = [], None
    for number, line in enumerate(lines):
        where = f"{source}, line {number + 1}"
        if open_block and CELL_START.match(line):
            raise LessonFormatError(f"{where}: a new cell starts before the {open_block.kind} block of "
                                    f"line {open_block.first + 1} ends")
        found = marker(line)
        if found is None:
            if reads_like_a_marker(line):
                raise LessonFormatError(f"{where}: {line.strip()!r} reads like a marker but is not one; "
                                        f"the markers are {EXACT_FORMS['solution']}, and "
                                        f"{EXACT_FORMS['answer']}")
            continue
        side, kind, match = found
        wanted_cell = "code" if kind == "solution" else "markdown"
        if kinds[number] != wanted_cell:
            raise LessonFormatError(f"{where}: {side.upper()} {kind.upper()} in a {kinds[number]} cell; the "
                                    f"markers are {EXACT_FORMS[kind]}")
        if side == "begin" and open_block:
            raise LessonFormatError(f"{where}: BEGIN {kind.upper()} inside the {kind} block of line "
                                    f"{open_block.first + 1}")
        if side == "end" and not open_block:
            raise LessonFormatError(f"{where}: END {kind.upper()} without a BEGIN {kind.upper()}")
        if side == "begin":
            open_block = Block(kind, match["label"], match.groupdict().get("indent", ""), number, None)
        else:
            blocks.append(open_block._replace(last=number))
            open_block = None
    if open_block:
        raise LessonFormatError(f"{source}, line {open_block.first + 1}: BEGIN {open_block.kind.upper()} "
                                f"never ends")
    return blocks


def student_source(text, source="lesson"):
    """The lesson with every solution replaced by a NotImplementedError naming its exercise, and every
    answer by an invitation to write one."""
    lines = text.splitlines()
    for block in reversed(marked_blocks(text, source)):
        if block.kind == "solution":
            replacement = [f"{block.indent}raise NotImplementedError({block.label!r})"]
        else:
            replacement = STUDENT_ANSWER
        lines[block.first:block.last + 1] = replacement
    return "\n".join(lines) + "\n"


def solution_source(text, source="lesson"):
    """The lesson with its solutions as written and each answer shown after a bold "Answer."."""
    lines = text.splitlines()
    for block in reversed(marked_blocks(text, source)):
        if block.kind == "answer":
            lines[block.first:block.last + 1] = [SOLUTION_ANSWER_HEADING, *lines[block.first + 1:block.last]]
    return "\n".join(lines) + "\n"


def lesson_paths(folder):
    """The lesson sources in ``folder``, in lesson order."""
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if LESSON_NAME.match(name)]


def notebook(text):
    """A jupytext percent-format source -> an nbformat notebook (needs jupytext).

    The source's jupytext header (``formats: py:percent``) is dropped: in a written notebook it
    claims a paired .py file beside it, and JupyterLab with jupytext then refuses to open it.
    Cell ids are numbered (``cell-1``, ...) rather than random, so one source always makes the
    same bytes and a rebuild can tell an untouched notebook from a changed one."""
    import jupytext
    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata.pop("jupytext", None)
    for number, cell in enumerate(nb.cells, start=1):
        cell.id = f"cell-{number}"
    return nb


def compile_errors(nb, name):
    """One line for each code cell of ``nb`` that is not valid Python (IPython's magics and shell
    lines are translated first, as the kernel does); [] when every cell compiles."""
    from IPython.core.inputtransformer2 import TransformerManager
    translate = TransformerManager().transform_cell
    errors = []
    for index, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        try:
            compile(translate(cell.source), f"{name}, cell {index}", "exec")
        except SyntaxError as error:
            first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            errors.append(f"{name}, cell {index} (starting {first_line!r}) does not compile: "
                          f"{error.msg} on its line {error.lineno}")
    return errors


def notebook_bytes(nb):
    """The exact bytes the build writes for ``nb`` (what nbformat.write would write)."""
    import nbformat
    return (nbformat.writes(nb).rstrip("\n") + "\n").encode("utf-8")


def sha256(data):
    """The SHA-256 of ``data`` in hexadecimal."""
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder):
    """{notebook name: SHA-256 the build last wrote} for ``folder``; {} when there is none or it is
    unreadable (then every existing notebook counts as the learner's)."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as file:
            recorded = json.load(file).get("written", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {name: digest for name, digest in recorded.items() if isinstance(digest, str)}


def write_atomically(path, data):
    """Write ``data`` to ``path`` through a temporary file, so a failed write leaves the old file whole."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}.{os.getpid()}.partial")     # hidden from Jupyter's file list
    with open(partial, "wb") as file:
        file.write(data)
    os.replace(partial, path)


def ensure_folder(folder):
    """Create ``folder`` if needed; a one-line BuildError when a file has its name."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise BuildError(f"{folder} exists and is not a folder; move it away or name another folder")
    os.makedirs(folder, exist_ok=True)


class Written(NamedTuple):
    """What ``write_notebooks`` did in one folder (paths)."""
    written: list       # written anew or refreshed
    unchanged: list     # already exactly what the build makes: left alone, not even touched
    kept: list          # changed since the build wrote them (or not written by it): kept


def write_notebooks(folder, notebooks, force=False):
    """Write {name: bytes} into ``folder``, keeping every notebook that differs from what the build
    last wrote there (unless ``force``), and record what was written."""
    ensure_folder(folder)
    recorded = read_manifest(folder)
    result = Written([], [], [])
    for name, data in notebooks.items():
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            raise BuildError(f"{path} is a folder, not a notebook; move it away")
        on_disk = None
        if os.path.exists(path):
            with open(path, "rb") as file:
                on_disk = sha256(file.read())
        if on_disk == sha256(data):
            result.unchanged.append(path)
        elif on_disk is None or on_disk == recorded.get(name) or force:
            write_atomically(path, data)
            result.written.append(path)
        else:
            result.kept.append(path)
            continue
        recorded[name] = sha256(data)
    write_atomically(os.path.join(folder, MANIFEST),
                     (json.dumps({"written": recorded}, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return result


def build(folder="notebooks", solutions=None, force=False):
    """Build the student notebooks of every lesson in ``folder`` into ``folder/student`` and, when
    ``solutions`` names a folder, the solution notebooks into it. Every notebook is made and
    compiled before anything is written. Returns {output folder: Written}."""
    student_folder = os.path.join(folder, "student")
    if solutions is not None and os.path.abspath(solutions) == os.path.abspath(student_folder):
        raise BuildError(f"--solutions {solutions} is the student notebooks' folder; name another one")
    versions = {student_folder: student_source}
    if solutions is not None:
        versions[solutions] = solution_source
    made = {target: {} for target in versions}
    errors = []
    for path in lesson_paths(folder):
        text = open(path, encoding="utf-8").read()
        name = os.path.splitext(os.path.basename(path))[0] + ".ipynb"
        for target, make_source in versions.items():
            nb = notebook(make_source(text, path))
            errors += compile_errors(nb, os.path.join(target, name))
            made[target][name] = notebook_bytes(nb)
    if errors:
        raise BuildError("; ".join(errors))
    return {target: write_notebooks(target, notebooks, force) for target, notebooks in made.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("build", help="write the student notebooks into NOTEBOOKS/student/ "
                                                "(and the solutions into a folder you name)")
    command.add_argument("--notebooks", default="notebooks", help="the folder of the lesson sources")
    command.add_argument("--solutions", metavar="DIR",
                         help="also write the solution notebooks (exercises done, answers shown) into DIR")
    command.add_argument("--force", action="store_true",
                         help="overwrite notebooks that were changed since the last build")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.notebooks):
        print(f"error: no lesson folder {args.notebooks!r} (run from the repository's root, or give "
              f"--notebooks)", file=sys.stderr)
        return 2
    try:
        results = build(args.notebooks, args.solutions, args.force)
    except ImportError as error:
        print(f"error: {error.name} is missing: pip install -e \".[notebooks]\"", file=sys.stderr)
        return 2
    except (LessonFormatError, BuildError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for folder, result in results.items():
        for path in result.kept:
            print(f"kept {path}: it has your changes; --force overwrites it")
        what = "solutions" if folder == args.solutions else "exercises to do"
        counts = [f"{len(result.written)} written", f"{len(result.unchanged)} up to date"]
        if result.kept:
            counts.append(f"{len(result.kept)} kept")
        print(f"{os.path.join(folder, '')} ({what}): {', '.join(counts)}")
    return 0
