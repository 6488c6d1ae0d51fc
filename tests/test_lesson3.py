"""Lesson 3's checkers accept the right answers and reject the usual mistakes, naming the
input that is wrong (see course/lesson3.py)."""
import re

import numpy

from course import check

from exercise_tests import standard_tests


def stable_log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=-1, keepdims=True))


def onehot(cache):
    p, rows, labels = cache
    table = numpy.zeros_like(p)
    table[rows, labels] = 1.0
    return table


RIGHT = {
    "3.1": lambda gy, c: (gy @ c[1], gy.T @ c[0], gy.sum(axis=0) if c[2] else None),
    "3.2": stable_log_softmax,
    "3.3": lambda gy, c: ((c[0] - onehot(c)) * gy / len(c[1]),),
}
# exercise: [(planted mistake, wrong answer, text the message must hold)]
WRONG = {
    "3.1": [("transposed weight gradient", lambda gy, c: (gy @ c[1], c[0].T @ gy, gy.sum(axis=0)),
             r"On x \(5, 3\), W \(4, 3\), b \(4,\): the gradient of W has shape \(3, 4\), expected \(4, 3\)\. "
             r"Transposed"),
            ("x^T gy reshaped to W's shape", lambda gy, c: (gy @ c[1], (c[0].T @ gy).reshape(c[1].shape),
                                                             gy.sum(axis=0)),
             r"On x \(5, 3\), W \(4, 3\), b \(4,\): the gradient of W\["),
            ("no sum over the batch for gb", lambda gy, c: (gy @ c[1], gy.T @ c[0], gy),
             r"On x \(5, 3\), W \(4, 3\), b \(4,\): the gradient of b has shape \(5, 4\), expected \(4,\)\. "
             r"A sum over an axis is missing"),
            ("mean instead of sum for gb", lambda gy, c: (gy @ c[1], gy.T @ c[0], gy.mean(axis=0)),
             r"On x \(5, 3\).*the gradient of b\[.*factor of 0.2"),
            ("gx with W transposed", lambda gy, c: (gy @ c[1].T, gy.T @ c[0], gy.sum(axis=0)),
             r"On x \(5, 3\), W \(4, 3\), b \(4,\) it raised ValueError")],
    "3.2": [("the textbook formula (no max)", lambda x: numpy.log(numpy.exp(x) / numpy.exp(x).sum(axis=-1, keepdims=True)),
             r"On logits \(3, 5\) near 1e3: log_softmax\[0, 0\] is \+nan.*Check for NaN or inf.*subtract each "
             r"row's max"),
            ("one max for the whole batch", lambda x: (x - x.max()) - numpy.log(numpy.exp(x - x.max()).sum(axis=-1, keepdims=True)),
             r"On logits \(2, 4\), row 0 near 0 and row 1 near 1e3: log_softmax\[0, .*is \+inf.*max of each row"),
            ("log of the stable softmax", lambda x: numpy.log(numpy.exp(stable_log_softmax(x))),
             r"On logits \(2, 3\) with gaps of 800 in each row: log_softmax\[0, 0\] is -inf, expected -800.*"
             r"log of the SUM"),
            ("the log-sum-exp forgotten", lambda x: x - x.max(axis=-1, keepdims=True),
             r"On logits \(4, 10\) near 0: log_softmax\["),
            ("over the wrong axis", lambda x: stable_log_softmax(x.T).T, r"On logits \(4, 10\) near 0")],
    "3.3": [("1/N missing", lambda gy, c: ((c[0] - onehot(c)) * gy,),
             r"On logits \(5, 4\), labels \[0 3 1 3 2\]: the gradient of logits\[.*factor of 5 "),
            ("one-hot subtraction missing", lambda gy, c: (c[0] * gy / len(c[1]),),
             r"On logits \(5, 4\), labels \[0 3 1 3 2\]: the gradient of logits\[.*one-hot part is missing"),
            ("sign flipped", lambda gy, c: ((onehot(c) - c[0]) * gy / len(c[1]),),
             r"On logits \(5, 4\).*sign is flipped"),
            ("upstream gy ignored", lambda gy, c: ((c[0] - onehot(c)) / len(c[1]),),
             r"On logits \(5, 4\).*the gradient of logits\[.*upstream gradient"),
            ("wrong shape: one value per example", lambda gy, c: (((c[0] - onehot(c)) * gy / len(c[1])).sum(axis=1),),
             r"On logits \(5, 4\).*the gradient of logits has shape \(5,\), expected \(5, 4\)")],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_on_the_square_case_a_transposed_weight_gradient_is_called_transposed(monkeypatch):
    """With a square W the shapes agree, and the values say it: the checker's diagnosis."""
    from course import lesson3
    square = {case: inputs for case, inputs in lesson3.linear_cases().items() if "square" in case}
    monkeypatch.setattr(lesson3, "linear_cases", lambda: square)
    verdict = check.verdict("3.1", lambda gy, c: (gy @ c[1], c[0].T @ gy, gy.sum(axis=0)))
    assert verdict.status == "wrong"
    assert re.search(r"On x \(6, 4\), W \(4, 4\) \(square\), b \(4,\): the gradient of W\[.*Transposed",
                     verdict.message), verdict.message


def test_a_cross_entropy_backward_that_changes_p_in_place_is_wrong():
    """The cache is the engine's: a backward that subtracts from p in place breaks a second
    backward through the same graph, so the checker hands the cache over read-only and says so
    (before, each check got a fresh cache and this answer passed)."""
    def in_place(gy, cache):
        p, rows, labels = cache
        p[rows, labels] -= 1
        return (p * gy / len(rows),)
    verdict = check.verdict("3.3", in_place)
    assert verdict.status == "wrong"
    assert re.search(r"On logits \(5, 4\), labels \[0 3 1 3 2\] it raised ValueError: .*read-only.*"
                     r"p\[rows, labels\] -= 1.*writes into an array it was given", verdict.message), verdict.message


def test_an_overflowing_log_softmax_warns_nothing(recwarn):
    """The checker reports the overflow in its verdict; NumPy's warnings stay quiet."""
    check.verdict("3.2", WRONG["3.2"][0][1])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


# --- answers that used to pass -------------------------------------------------------------------
def test_a_complex_log_softmax_is_wrong_even_with_a_zero_imaginary_part():
    """Before, astype(float64) dropped the imaginary part and the answer was graded correct."""
    for answer in (lambda x: stable_log_softmax(x) + 0j, lambda x: stable_log_softmax(x) + 1e-3j):
        verdict = check.verdict("3.2", answer)
        assert verdict.status == "wrong"
        assert verdict.message.startswith("On logits (4, 10) near 0: log_softmax has the complex dtype complex128")


def test_a_log_softmax_that_zeroes_its_input_is_wrong():
    """Before, the reference ran after the learner's code, on the zeroed logits."""
    def zeroes(x):
        y = stable_log_softmax(x)
        x.flags.writeable = True
        x[...] = 0
        return y
    verdict = check.verdict("3.2", zeroes)
    assert verdict.status == "wrong"
    assert "On logits (4, 10) near 0: your function changed its input logits: logits[0, 0] is now 0.0" in verdict.message


def test_a_missing_upstream_gradient_is_named_at_the_first_tier():
    verdict = check.verdict("3.3", WRONG["3.3"][3][1], tier=1)
    assert "the upstream gradient gy is missing" in verdict.message and "The rule:" not in verdict.message
