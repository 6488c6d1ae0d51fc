"""The course's machinery: the exercise checkers and the notebook builder.

The lessons live in ``notebooks/NN_name.py`` (jupytext "percent" files: plain
Python, runnable with ``python notebooks/NN_name.py``). Exercise solutions sit
between ``### BEGIN SOLUTION exercise N.M: what`` and ``### END SOLUTION`` lines;

    python -m course build

writes the student notebooks into ``notebooks/student/`` (each solution replaced by
``raise NotImplementedError('exercise N.M: what')``), and ``--solutions DIR`` the solution
notebooks into DIR (``course/build.py`` has the rules).

A lesson checks an exercise with ``check.exercise("N.M", the_learners_function)``,
which prints one of: not implemented yet / wrong (which input, which element,
expected and got, the relative error, a hint) / correct (with the error size).
Hints come in tiers: the first wrong verdict on an exercise says what is off and
where; the next ones add the rule, which ``check.hint("N.M")`` also prints.
``check.progress()`` (or ``check.progress(4)``) lists the exercises done, wrong and
not tried in this session. The learner's function gets read-only copies of its
inputs, and an answer that changes them is wrong (see ``course/guard.py``).
``MINIGRAD_FAST=1`` shrinks every lesson's sizes and repeats (the test suite runs
them so); ``MINIGRAD_LESSONS_STRICT=1`` makes a verdict other than "correct" an
exception (the test suite runs the solution notebooks so).
"""
import os


def fast():
    """True when ``MINIGRAD_FAST=1``: lessons use their small sizes and few repeats."""
    return os.environ.get("MINIGRAD_FAST", "0") not in ("", "0")


def pick(full, small):
    """``small`` when running fast (tests, CI), else ``full``: ``epochs = pick(5, 1)``."""
    return small if fast() else full
