"""Every lesson runs top to bottom in both versions, at full size, as a learner runs it
(MINIGRAD_FAST=0; each lesson states its running time in its first cell).

* the solution notebook runs with no error, and every exercise check in it says
  "correct" (MINIGRAD_LESSONS_STRICT=1 turns any other verdict into an error);
* the student notebook runs too: its only errors may be the NotImplementedError of
  an exercise, and each exercise's check says "not implemented yet".

What the build writes (and that no solution leaks) is tested in test_build.py.
"""
import os
import re

import pytest

from course.build import lesson_paths, notebook, solution_source, student_source

nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
pytest.importorskip("jupytext", reason="the notebooks extra is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
LESSONS = lesson_paths(NOTEBOOKS)
EXERCISE = re.compile(r"### BEGIN SOLUTION exercise (\d+\.\d+):")


def execute(source, strict, monkeypatch):
    """Run a lesson source as a notebook in the notebooks folder; return its outputs."""
    monkeypatch.setenv("MINIGRAD_FAST", "0")
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
    outputs = execute(solution_source(source, path), strict=True, monkeypatch=monkeypatch)
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


def test_every_lesson_has_exercises_and_checks_them():
    assert LESSONS, "no lessons found"
    for path in LESSONS:
        numbers = EXERCISE.findall(open(path, encoding="utf-8").read())
        lesson = int(os.path.basename(path)[:2])
        assert numbers, f"{path}: no exercise"
        assert all(int(n.split(".")[0]) == lesson for n in numbers), f"{path}: exercises {numbers}"
