"""The checkers cannot be fooled, and they read an answer as the engine does.

The property (hypothesis): for every registered exercise, the right answer of its lesson's tests
(``RIGHT`` in tests/test_lessonN.py, found from the registry, so that a new exercise is covered
as soon as it is registered) is wrapped so that, on one of its calls, it returns something that
differs from the reference beyond any tolerance, or changes its inputs: NaN or inf in one
element, a complex, integer, float32, boolean or object dtype, another shape, a bare array where
the engine needs a tuple, a gradient too many or too few, an input (or a view of it) in place of
the result, inputs changed after or before computing. No such answer is ever graded correct, and
no checker crashes on one. A list where a tuple is expected is accepted, as the engine accepts it.

Then the machinery around the verdicts: tiers of hints, ``check.hint``, ``check.progress``, hint
functions that fail, and an array on another device.
"""
import importlib
import pathlib
import re
import sys
import types
import warnings

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import check
from course.cases import HintFailed, forward_cases
from course.guard import arrays_in
from minigrad import nn
from minigrad.autograd import Tensor

check._load_exercises()
NUMBERS = sorted(check.EXERCISES, key=check._order)


def right_answers():
    """{number: right answer}: the RIGHT tables of every tests/test_lessonN*.py."""
    answers = {}
    for path in sorted(pathlib.Path(__file__).parent.glob("test_lesson[0-9]*.py")):
        answers.update(getattr(importlib.import_module(path.stem), "RIGHT", {}))
    return answers


RIGHT = right_answers()


def test_every_registered_exercise_has_a_right_answer_in_its_lessons_tests():
    missing = [number for number in NUMBERS if number not in RIGHT]
    assert not missing, f"no right answer in a RIGHT of tests/test_lessonN*.py for exercise(s) {', '.join(missing)}"


@pytest.mark.parametrize("number", NUMBERS)
def test_the_right_answer_is_correct(number):
    verdict = check.verdict(number, RIGHT[number])
    assert verdict.correct, str(verdict)


# --- wrong answers made from right ones ------------------------------------------------------------
VALUE_CHANGES = ("nan", "inf", "-inf", "complex", "complex, zero imaginary part", "another shape",
                 "float32", "integers", "booleans", "objects", "an input in its place")
STRUCTURE_CHANGES = ("bare array, not a tuple", "one gradient too many", "one gradient too few")
INPUT_CHANGES = ("inputs changed after", "inputs changed before")
ALL_CHANGES = VALUE_CHANGES + STRUCTURE_CHANGES + INPUT_CHANGES


def is_number(value):
    return isinstance(value, (int, float, numpy.number)) and not isinstance(value, (bool, numpy.bool_))


def leaves(value, path=()):
    """[(path, leaf)]: the numbers, numeric arrays and Tensors inside a returned value (in tuples,
    lists and dicts)."""
    if isinstance(value, (numpy.ndarray, Tensor)) or is_number(value):
        return [(path, value)]
    if isinstance(value, (tuple, list)):
        return [found for i, item in enumerate(value) for found in leaves(item, path + (i,))]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in leaves(item, path + (key,))]
    return []


def replaced(value, path, new):
    if not path:
        return new
    if isinstance(value, dict):
        return {**value, path[0]: replaced(value[path[0]], path[1:], new)}
    items = list(value)
    items[path[0]] = replaced(items[path[0]], path[1:], new)
    return type(value)(items)


def with_one(array, index, special):
    array = numpy.array(array, dtype=numpy.result_type(array, numpy.float64))
    array.reshape(-1)[index % array.size] = special
    return array


def changed_leaf(leaf, change, index, inputs):
    """The leaf with ``change`` made, or None when the change does not apply to it."""
    if isinstance(leaf, Tensor):
        if change in ("nan", "inf", "-inf"):
            return leaf + with_one(numpy.zeros(leaf.shape), index, float(change))
        if change == "another shape":
            return leaf * Tensor(numpy.ones((2,) + (1,) * leaf.ndim))
        return changed_leaf(leaf.numpy(), change, index, inputs)
    array = numpy.asarray(leaf)
    if change in ("nan", "inf", "-inf"):
        return with_one(array, index, float(change)) if array.size else None
    if change == "complex":
        return array + 1e-3j
    if change == "complex, zero imaginary part":
        return array + 0j
    if change == "another shape":
        if is_number(leaf):
            return numpy.array([leaf, leaf])
        return array.reshape(-1) if array.ndim >= 2 else (array[:-1] if array.size > 1 else array.reshape(1, 1))
    if change == "float32":
        return array.astype(numpy.float32) if array.dtype == numpy.float64 and not is_number(leaf) else None
    if change == "integers":
        return array.astype(numpy.int64) + 1 if array.dtype.kind == "f" else None
    if change == "booleans":
        return array != 0
    if change == "objects":
        return array.astype(object)
    if change == "an input in its place":
        same = [a for a in arrays_in(inputs) if a.shape == array.shape and a.dtype == array.dtype]
        if not same or numpy.allclose(same[0], array, rtol=1e-6, atol=1e-12):
            return None                      # no input to return, or one equal to the answer
        return same[0][...]                  # a view of the input, values unchanged
    raise ValueError(change)


def change_inputs(value):
    """Change what can be changed in the inputs (read-only arrays made writable first, as a hostile
    learner would): arrays, gradients, lists, dicts. True when something changed."""
    if isinstance(value, numpy.ndarray):
        try:
            value.flags.writeable = True
        except ValueError:                  # a view of a read-only array: it stays read-only
            return False
        if value.size:
            flat = value.reshape(-1)
            flat[0] = (not flat[0]) if value.dtype == bool else flat[0] + 1
        return bool(value.size)
    if isinstance(value, Tensor):
        changed = change_inputs(value.data)
        if value.grad is not None:
            value.grad = None
            changed = True
        return changed
    if isinstance(value, nn.Module):
        return any([change_inputs(parameter.data) for parameter in value.parameters()])
    if isinstance(value, list) and value:
        value.pop()
        return True
    if isinstance(value, dict):
        value["changed"] = True
        return True
    if isinstance(value, tuple):
        return any([change_inputs(item) for item in value])
    return False


class Wrong:
    """The right function, except that from its call number ``when`` on the change is made (on every
    later call too: a checker may call a function once more than it grades, to see its structure)."""

    def __init__(self, right, change, when, leaf_choice, element, graded_leaves=None):
        self.right, self.change, self.when = right, change, when
        self.leaf_choice, self.element, self.graded_leaves = leaf_choice, element, graded_leaves
        self.calls, self.made = 0, False

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls - 1 < self.when:
            return self.right(*args, **kwargs)
        if self.change == "inputs changed before":
            self.made |= change_inputs(args)
            return self.right(*args, **kwargs)
        result = self.right(*args, **kwargs)
        if self.change == "inputs changed after":
            self.made |= change_inputs(args)
            return result
        if self.change in STRUCTURE_CHANGES:
            return self.restructured(result)
        found = leaves(result)[:self.graded_leaves]
        if not found:
            return result
        path, leaf = found[self.leaf_choice % len(found)]
        new = changed_leaf(leaf, self.change, self.element, args)
        if new is None:
            return result
        self.made = True
        return replaced(result, path, new)

    def restructured(self, result):
        """A tuple of arrays (a backward's gradients) with the change made to its structure."""
        if not isinstance(result, tuple) or not result or not all(isinstance(g, numpy.ndarray) for g in result):
            return result
        if self.change == "bare array, not a tuple":
            if len(result) != 1:
                return result
            self.made = True
            return result[0]
        self.made = True
        return result + (result[0],) if self.change == "one gradient too many" else result[:-1]


def wrong_answer(number, change, when, which, leaf_choice, element):
    """The exercise's right answer made wrong, and the Wrong that says whether it was."""
    right = RIGHT[number]
    if isinstance(right, tuple):             # a pair (5.3): change the forward's y or the backward's gx
        position = which % len(right)
        wrong = Wrong(right[position], change, when, leaf_choice, element, graded_leaves=1)
        return tuple(wrong if i == position else f for i, f in enumerate(right)), wrong
    wrong = Wrong(right, change, when, leaf_choice, element)
    return wrong, wrong


@pytest.mark.parametrize("number", NUMBERS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change=st.sampled_from(ALL_CHANGES), when=st.integers(0, 2), which=st.integers(0, 1),
       leaf_choice=st.integers(0, 10), element=st.integers(0, 10 ** 6))
def test_no_answer_that_differs_from_the_reference_is_graded_correct(number, change, when, which,
                                                                     leaf_choice, element):
    answer, wrong = wrong_answer(number, change, when, which, leaf_choice, element)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HintFailed)          # a hint that crashes fails the test
        warnings.simplefilter("ignore", RuntimeWarning)     # the learner's NaN arithmetic
        warnings.filterwarnings("ignore", category=numpy.exceptions.ComplexWarning)
        verdict = check.verdict(number, answer)
    assert verdict.status in ("correct", "wrong")
    if wrong.made:
        assert verdict.status == "wrong", f"{number}, {change} on call {when}: graded correct"
        assert verdict.message.startswith("On "), verdict.message


@pytest.mark.parametrize("number", NUMBERS)
def test_a_list_where_a_tuple_is_returned_is_accepted_as_the_engine_accepts_it(number):
    """The engine reads a backward's return with tuple(...), so a list of gradients works there;
    the checkers agree (and a forward's several outputs may come as a list too)."""
    right = RIGHT[number]
    if isinstance(right, tuple):
        forward, backward = right
        answer = (lambda *a: list(forward(*a)), lambda *a: list(backward(*a)))
    else:
        answer = lambda *a, **k: list(r) if isinstance(r := right(*a, **k), tuple) else r
    verdict = check.verdict(number, answer)
    assert verdict.correct, str(verdict)


# --- hints in tiers, check.hint, check.progress ----------------------------------------------------
@pytest.fixture
def fresh_session(monkeypatch):
    monkeypatch.setattr(check, "GIVEN", {})


def mul_twice(gy, cache):
    return 2 * gy * cache[1], 2 * gy * cache[0]


def test_the_first_wrong_verdict_is_a_nudge_and_the_second_adds_the_rule(fresh_session, capsys):
    first = check.exercise("1.1", mul_twice)
    assert "Off by a constant factor of 2" in first.message
    assert "The rule:" not in first.message and 'check.hint("1.1") shows the rule.' in first.message
    second = check.exercise("1.1", mul_twice)
    assert second.message.endswith("The rule: each input's gradient is gy times the OTHER input.")
    assert "Off by a constant factor of 2" in second.message
    printed = capsys.readouterr().out
    assert printed.count("[WRONG] exercise 1.1 (mul backward)") == 2


def test_check_hint_prints_the_rule_of_the_last_wrong_verdict_or_the_exercises(fresh_session, capsys):
    check.hint("3.1")
    assert capsys.readouterr().out.startswith("Exercise 3.1 (linear backward). The rule: gx = gy W")
    check.exercise("3.1", lambda gy, c: (gy @ c[1], gy.T @ c[0], gy.mean(axis=0)))
    capsys.readouterr()
    check.hint("3.1")
    assert capsys.readouterr().out.strip() == ("Exercise 3.1 (linear backward). The rule: b is added to every "
                                               "row of the batch, so gb is gy summed over the batch (axis 0), "
                                               "not averaged.")
    with pytest.raises(KeyError, match="no exercise '3.9'"):
        check.hint("3.9")


def test_hint_with_a_text_is_still_a_hints_function_for_checkers():
    hints = check.hint("the gradient of a sum is the sum of the gradients.")
    assert hints("a case", "x", None, None) == "The rule: the gradient of a sum is the sum of the gradients."


def test_every_exercise_has_a_rule_for_check_hint():
    assert [number for number in NUMBERS if number not in check.RULES] == []


def test_progress_lists_every_exercise_done_wrong_or_not_tried(fresh_session, capsys):
    check.exercise("1.1", RIGHT["1.1"])
    check.exercise("1.2", mul_twice)
    check.exercise("1.3", lambda *a: (_ for _ in ()).throw(NotImplementedError("exercise 1.3: pow")))
    capsys.readouterr()
    whole = check.progress()
    assert [row[0] for row in whole.rows] == NUMBERS
    assert whole.summary() == f"The course: 1 of {len(NUMBERS)} exercises done, 1 wrong, {len(NUMBERS) - 2} not tried."
    lesson = check.progress(1)
    text = str(lesson).splitlines()
    in_lesson_1 = len([number for number in NUMBERS if number.startswith("1.")])
    assert text[0] == f"Lesson 1: 1 of {in_lesson_1} exercises done, 1 wrong, {in_lesson_1 - 2} not tried."
    assert re.fullmatch(r"  1\.1 +mul backward +done", text[1])
    assert re.fullmatch(r"  1\.2 +div backward +wrong", text[2])
    assert re.fullmatch(r"  1\.3 +pow backward +not tried", text[3])
    html = lesson._repr_html_()
    assert "<table>" in html and "<td>1.2</td><td>div backward</td>" in html and ">wrong</td>" in html
    check.exercise("1.2", RIGHT["1.2"])
    capsys.readouterr()
    assert re.fullmatch(r"  1\.2 +div backward +done \(2 checks\)", str(check.progress(1)).splitlines()[2])
    with pytest.raises(ValueError, match="no lesson 42; the lessons are 1, 2"):
        check.progress(42)


# --- a hint that fails does not take the verdict with it; another device is named ------------------
def test_a_hint_function_that_raises_leaves_the_verdict_standing():
    def broken(case, name, got, expected):
        raise IndexError("a bug in a hint")
    cases = {"x (3,)": {"x": numpy.arange(3.0)}}
    with pytest.warns(HintFailed, match="a hint of this checker failed on x \\(3,\\) \\(IndexError: a bug in a hint\\)"):
        status, message = forward_cases(lambda x: x + 1, lambda x: x * 1, cases, hints=broken)
    assert status == "wrong" and message == "On x (3,): output[0] is +1, expected +0 (relative error 2.0e-01)."


@pytest.fixture
def fake_cupy(monkeypatch):
    """A stand-in for CuPy (this machine may have no GPU): minigrad.backend recognises an array of
    the ``cupy`` module in sys.modules as a GPU array."""
    module = types.ModuleType("cupy")

    class ndarray:
        def __init__(self, array):
            self.array, self.shape, self.dtype = array, array.shape, array.dtype
            self.device = types.SimpleNamespace(id=0)

        def __array__(self, dtype=None, copy=None):
            raise TypeError("Implicit conversion to a NumPy array is not allowed")
    module.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", module)
    return ndarray


def test_an_answer_on_another_device_is_wrong_naming_the_device(fake_cupy):
    verdict = check.verdict("1.4", lambda gy, y: (fake_cupy(gy * y),))
    assert verdict.status == "wrong"
    assert "the gradient of x is on cuda:0, expected a NumPy array on the CPU" in verdict.message
    verdict = check.verdict("3.2", lambda x: fake_cupy(RIGHT["3.2"](x)))
    assert verdict.status == "wrong" and "log_softmax is on cuda:0" in verdict.message
