"""Lesson 1 run as a learner runs it: cells again, out of order. Running the backward-stepping
cell twice must not double w.grad, and when the gradients of two backward passes do pile up,
"Check yourself" must say so in words (not a bare AssertionError)."""
import os

import pytest

jupytext = pytest.importorskip("jupytext", reason="the notebooks extra is not installed")

LESSON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks", "01_autograd.py")


def code_cells(path=LESSON):
    notebook = jupytext.read(path, fmt="py:percent")
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def run(cells, monkeypatch):
    """Execute the cells in one namespace, as a kernel would, fast and without a screen."""
    monkeypatch.setenv("MINIGRAD_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "lesson"}
    for source in cells:
        exec(compile(source, LESSON, "exec"), namespace)
    return namespace


def stepping_cell(cells):
    return next(i for i, source in enumerate(cells) if "L.backward_steps()" in source or "step_through(L" in source)


def test_running_the_stepping_cell_twice_keeps_the_checks(monkeypatch, capsys):
    cells = code_cells()
    again = stepping_cell(cells)
    run(cells[:again + 1] + cells[again:], monkeypatch)
    assert "all claims hold" in capsys.readouterr().out


def test_piled_up_gradients_are_explained_in_words(monkeypatch):
    cells = code_cells()
    check = next(i for i, source in enumerate(cells) if "all claims hold" in source)
    with pytest.raises(AssertionError, match=r"w.grad is \[ *3\. -14\.\], 2 times the hand computation .*"
                                             r"2 backward passes were added up .*zero_grad"):
        run(cells[:check] + ["L.backward()"] + cells[check:], monkeypatch)
