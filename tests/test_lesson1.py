"""Lesson 1's checkers accept the right backward and reject the usual mistakes, naming
the input that is wrong (see course/lesson1.py)."""
import numpy
import pytest

from course import check
from minigrad.ops.elementwise import unbroadcast

from exercise_tests import standard_tests


RIGHT = {
    "1.1": lambda gy, c: (gy * c[1], gy * c[0]),
    "1.2": lambda gy, c: (gy / c[1], -gy * c[0] / c[1] ** 2),
    "1.3": lambda gy, c: (gy * c[1] * c[0] ** (c[1] - 1),),
    "1.4": lambda gy, y: (gy * y,),
    "1.5": lambda gy, s: (unbroadcast(gy, s[0]), unbroadcast(gy, s[1])),
}
# exercise: [(planted mistake, wrong backward, text the message must hold)]
WRONG = {
    "1.1": [("swapped", lambda gy, c: (gy * c[0], gy * c[1]), "the gradient of a\\["),
            ("ones upstream", lambda gy, c: (c[1], c[0]), "the gradient of a\\[")],
    "1.2": [("sign of gb", lambda gy, c: (gy / c[1], gy * c[0] / c[1] ** 2), "gradient of b\\[.*sign is flipped"),
            ("missing square", lambda gy, c: (gy / c[1], -gy * c[0] / c[1]), "the gradient of b\\[")],
    "1.3": [("exponent not lowered", lambda gy, c: (gy * c[1] * c[0] ** c[1],), "x \\*\\* 3.*gradient of x\\["),
            ("factor p missing", lambda gy, c: (gy * c[0] ** (c[1] - 1),), "factor of 0.3333")],
    "1.4": [("x instead of exp(x)", lambda gy, y: (gy * numpy.log(y),), "the gradient of x\\["),
            ("double", lambda gy, y: (2 * gy * y,), "factor of 2")],
    "1.5": [("no reduction", lambda gy, s: (gy, gy), "gradient of b has shape \\(3, 4\\), expected \\(4,\\)"),
            ("summed every axis", lambda gy, s: (unbroadcast(gy, s[0]), gy.sum()),
             "gradient of b has shape \\(\\), expected \\(3, 4\\)")],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_an_exception_in_the_learners_code_is_wrong_and_names_the_case():
    verdict = check.verdict("1.1", lambda gy, c: 1 / 0)
    assert verdict.status == "wrong" and "On a (3, 4), b (3, 4) it raised ZeroDivisionError" in verdict.message


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    from course.verdicts import ExerciseFailed
    monkeypatch.setenv("MINIGRAD_LESSONS_STRICT", "1")
    with pytest.raises(ExerciseFailed, match="exercise 1.4"):
        check.exercise("1.4", RIGHT["1.1"])
    check.exercise("1.4", RIGHT["1.4"])             # a right answer passes in strict mode


# --- a checker cannot be fooled, and reads a backward as the engine does ---------------------------
def zeroes_gy(gy, c):
    """Right values, then gy overwritten (read-only, so it takes two steps)."""
    grads = (gy * c[1], gy * c[0])
    gy.flags.writeable = True
    gy[...] = 0
    return grads


def test_a_backward_that_writes_into_gy_is_told_the_input_is_read_only():
    def in_place(gy, c):
        gy *= c[1]
        return gy, gy * c[0] / c[1]
    verdict = check.verdict("1.1", in_place)
    assert verdict.status == "wrong"
    assert "read-only" in verdict.message and "Compute a new array and return it" in verdict.message


def test_a_backward_that_zeroes_gy_is_wrong_with_its_own_verdict():
    verdict = check.verdict("1.1", zeroes_gy)
    assert verdict.status == "wrong"
    assert "On a (3, 4), b (3, 4): your function changed its input gy: gy[0, 0] is now 0.0, it was" in verdict.message


def test_an_in_place_exp_backward_is_told_so_not_given_a_corrupted_expected_value():
    """Before, the expected value was computed after the learner's call from the gy it had
    multiplied in place: "expected 17.8" for a right 3.38."""
    def in_place(gy, y):
        gy *= y
        return (gy,)
    verdict = check.verdict("1.4", in_place)
    assert verdict.status == "wrong" and "read-only" in verdict.message and "expected" not in verdict.message


def test_a_bare_array_is_refused_in_the_engines_words_and_the_engine_agrees():
    import minigrad as mg
    from course.lesson1 import exp_forward
    verdict = check.verdict("1.4", lambda gy, y: gy * y)
    assert verdict.status == "wrong"
    assert 'returned a bare array of shape (4, 3), not a tuple of gradients' in verdict.message
    assert '"returned 4 gradients for 1 inputs"' in verdict.message and "(x,)" in verdict.message
    x = mg.tensor(numpy.ones((4, 3)), dtype="float64", requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 4 gradients for 1 inputs"):
        mg.Op("my_exp", exp_forward, lambda gy, y: gy * y)(x).sum().backward()


def test_a_list_of_gradients_is_accepted_as_the_engine_accepts_it():
    import minigrad as mg
    from course.lesson1 import exp_forward
    as_list = lambda gy, y: [gy * y]
    assert check.verdict("1.4", as_list).correct
    x = mg.tensor(numpy.ones((2, 2)), dtype="float64", requires_grad=True)
    mg.Op("my_exp", exp_forward, as_list)(x).sum().backward()
    assert numpy.allclose(x.grad, numpy.e)


@pytest.mark.parametrize("mistake, answer, message", [
    ("a float32 gradient", lambda gy, y: ((gy * y).astype(numpy.float32),),
     r'the gradient of x is float32 for an input of dtype float64: a backward must keep its input\'s dtype '
     r'\(the engine stops there: "returned a float32 gradient for input 0 of dtype float64"\).*float32 precision'),
    ("a list as the gradient", lambda gy, y: ((gy * y).tolist(),), r"the gradient of x is a list, not an array"),
    ("a complex gradient", lambda gy, y: (gy * y + 0j,), r"the gradient of x has the complex dtype complex128"),
    ("NaN in one element", lambda gy, y: (numpy.where(numpy.arange(12).reshape(4, 3) == 5, numpy.nan, gy * y),),
     r"the gradient of x\[1, 2\] is \+nan, expected"),
    ("inf in one element", lambda gy, y: (numpy.where(numpy.arange(12).reshape(4, 3) == 0, numpy.inf, gy * y),),
     r"the gradient of x\[0, 0\] is \+inf, expected"),
    ("an extra gradient", lambda gy, y: (gy * y, gy), r"returned 2 gradients for 1 inputs \(x\)"),
    ("None", lambda gy, y: (None,), r"the gradient of x is None, expected an array of shape \(4, 3\)"),
])
def test_a_gradient_the_engine_would_refuse_or_a_non_finite_one_is_wrong(mistake, answer, message):
    import re
    verdict = check.verdict("1.4", answer)
    assert verdict.status == "wrong", mistake
    assert re.search(message, verdict.message), verdict.message


def left_aligned(g, shape):
    """Sums the axes where the shapes differ, pairing them from the LEFT (NumPy pairs them from
    the right): right on (3, 4) + (4,), wrong on (2, 3, 4) + (4,) and on a scalar."""
    axes = tuple(i for i, (n, m) in enumerate(zip(g.shape, shape)) if n != m)
    return g.sum(axis=axes).reshape(shape)


def test_a_reduction_aligned_from_the_left_fails_on_the_cases_made_for_it():
    verdict = check.verdict("1.5", lambda gy, s: (left_aligned(gy, s[0]), left_aligned(gy, s[1])))
    assert verdict.status == "wrong"
    assert verdict.message.startswith("On a (2, 3, 4) + b (4,), b stretched over two leading axes it raised "
                                      "ValueError: cannot reshape array of size 12 into shape (4,)")
    assert "12 numbers cannot fill the shape (4,)" in verdict.message
    scalar_only = lambda gy, s: (gy, gy.sum()) if s[1] == () else RIGHT["1.5"](gy, s)
    assert check.verdict("1.5", scalar_only).correct
    no_scalar = lambda gy, s: (gy, gy) if s[1] == () else RIGHT["1.5"](gy, s)
    assert "On a (3, 4) + b () (a scalar): the gradient of b has shape (3, 4), expected ()" in \
        check.verdict("1.5", no_scalar).message
