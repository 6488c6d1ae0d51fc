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
