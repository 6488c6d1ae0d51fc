"""Every lesson runs top to bottom in both versions, fast (MINIGRAD_FAST=1).

* the solution notebook runs with no error, and every exercise check in it says
  "correct" (MINIGRAD_LESSONS_STRICT=1 turns any other verdict into an error);
* the student notebook runs too: its only errors may be the NotImplementedError of
  an exercise, and each exercise's check says "not implemented yet";
* no solution text leaks into the student version.
"""
import os
import re
import subprocess
import sys

import pytest

from course.build import lesson_paths, notebook, solution_blocks, student_source

nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
pytest.importorskip("jupytext", reason="the notebooks extra is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
LESSONS = lesson_paths(NOTEBOOKS)
EXERCISE = re.compile(r"### BEGIN SOLUTION exercise (\d+\.\d+):")


def execute(source, strict, monkeypatch):
    """Run a lesson source as a notebook in the notebooks folder; return its outputs."""
    monkeypatch.setenv("MINIGRAD_FAST", "1")
    monkeypatch.setenv("MINIGRAD_LESSONS_STRICT", "1" if strict else "0")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = notebook(source)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


def errors(outputs):
    return [(o.ename, o.evalue) for o in outputs if o.output_type == "error"]


def text(outputs):
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


@pytest.mark.parametrize("path", LESSONS, ids=os.path.basename)
def test_the_solution_notebook_runs_and_every_exercise_is_correct(path, monkeypatch):
    source = open(path, encoding="utf-8").read()
    outputs = execute(source, strict=True, monkeypatch=monkeypatch)
    assert errors(outputs) == []
    for number in EXERCISE.findall(source):
        assert f"[OK] exercise {number} " in text(outputs), f"exercise {number} was not checked"


@pytest.mark.parametrize("path", LESSONS, ids=os.path.basename)
def test_the_student_notebook_runs_with_only_the_exercises_missing(path, monkeypatch):
    source = open(path, encoding="utf-8").read()
    outputs = execute(student_source(source, path), strict=False, monkeypatch=monkeypatch)
    for name, value in errors(outputs):
        assert name == "NotImplementedError" and value.startswith("exercise "), (name, value)
    for number in EXERCISE.findall(source):
        assert f"[TODO] exercise {number} " in text(outputs), f"exercise {number}: no 'not implemented yet'"


@pytest.mark.parametrize("path", LESSONS, ids=os.path.basename)
def test_no_solution_leaks_into_the_student_version(path):
    source = open(path, encoding="utf-8").read()
    student = student_source(source, path)
    assert "BEGIN SOLUTION" not in student and "END SOLUTION" not in student
    lines = source.splitlines()
    outside = {line.strip() for line in student.splitlines()}
    for label, _, first, last in solution_blocks(source, path):
        for line in lines[first + 1:last]:
            code = line.strip()
            if len(code) >= 12 and not code.startswith("#"):
                assert code not in outside, f"{label}: {code!r} appears in the student version"


def test_every_lesson_has_exercises_and_checks_them():
    assert LESSONS, "no lessons found"
    for path in LESSONS:
        numbers = EXERCISE.findall(open(path, encoding="utf-8").read())
        lesson = int(os.path.basename(path)[:2])
        assert numbers, f"{path}: no exercise"
        assert all(int(n.split(".")[0]) == lesson for n in numbers), f"{path}: exercises {numbers}"


def test_the_build_command_writes_both_versions(tmp_path):
    for path in LESSONS[:1]:
        (tmp_path / os.path.basename(path)).write_text(open(path, encoding="utf-8").read())
    result = subprocess.run([sys.executable, "-m", "course", "build", "--notebooks", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    name = os.path.basename(LESSONS[0]).replace(".py", ".ipynb")
    student = (tmp_path / "student" / name).read_text()
    assert "NotImplementedError" in student and "BEGIN SOLUTION" not in student
    assert "BEGIN SOLUTION" in (tmp_path / "solutions" / name).read_text()


def test_unpaired_markers_are_named():
    from course.build import LessonFormatError
    with pytest.raises(LessonFormatError, match=r"lesson, line 2: BEGIN SOLUTION never ends"):
        student_source("x = 1\n    ### BEGIN SOLUTION exercise 1.1: a\n    y = 2\n")
    with pytest.raises(LessonFormatError, match=r"line 1: END SOLUTION without a BEGIN"):
        student_source("### END SOLUTION\n")
