"""The three tests every lesson's checkers get, made once here:

* the right answer to each exercise is accepted;
* a missing one (a NotImplementedError) is "not implemented yet";
* each planted mistake is rejected, with a message matching its regex (the case it
  happened on, and the hint or diagnosis that names the mistake; ``check.verdict`` gives all
  it knows, the rule included), and its first-tier verdict is that message without the rule.

A lesson's test file lists ``RIGHT = {number: answer}`` and ``WRONG = {number: [(mistake,
answer, message regex), ...]}``, then

    test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \\
        test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)
"""
import re

import pytest

from course import check
from course.verdicts import RULE


def not_yet(*args):
    raise NotImplementedError("exercise: not yet")


def standard_tests(right, wrong, missing=None):
    """The three test functions for ``right`` and ``wrong``; ``missing``: {number: attempt}
    for exercises whose missing answer is not a plain function (e.g. a pair of them)."""
    @pytest.mark.parametrize("number", right)
    def test_the_right_answer_is_accepted(number):
        verdict = check.verdict(number, right[number])
        assert verdict.correct, str(verdict)

    @pytest.mark.parametrize("number", right)
    def test_a_missing_exercise_is_not_implemented_yet(number):
        attempt = (missing or {}).get(number, not_yet)
        assert check.verdict(number, attempt).status == "not implemented yet"

    planted = [(number, *case) for number, cases in wrong.items() for case in cases]

    @pytest.mark.parametrize("number, mistake, attempt, message", planted,
                             ids=[f"{number}-{mistake}" for number, mistake, *_ in planted])
    def test_a_planted_mistake_is_rejected_naming_the_case(number, mistake, attempt, message):
        verdict = check.verdict(number, attempt)
        assert verdict.status == "wrong", f"{mistake}: {verdict}"
        assert re.search(message, verdict.message), verdict.message
        nudge = check.verdict(number, attempt, tier=1)         # the first tier: the rule left out
        assert RULE not in nudge.message and nudge.message.split(" (check.hint")[0] in verdict.message

    return (test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet,
            test_a_planted_mistake_is_rejected_naming_the_case)
