"""Lesson 2's checkers accept the right answers and reject the usual mistakes, naming the
input that is wrong; the planted bugs of its "find the bug" ops are what the lesson says
they are (see course/lesson2.py)."""
import re

import numpy
import pytest

from minigrad.gradcheck import GradcheckError, gradcheck
from course import check, lesson2
from minigrad.ops.shape import concat_forward

from exercise_tests import standard_tests


def central(f, x, eps=1e-6):
    gradient = numpy.zeros(x.shape)
    for index in numpy.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = f(x)
        x[index] = original - eps
        minus = f(x)
        x[index] = original
        gradient[index] = (plus - minus) / (2 * eps)
    return gradient


def central_on_copies(f, x, eps=1e-6):
    """Another right answer: never touches x, evaluates f on moved copies."""
    gradient = numpy.zeros(x.shape)
    for index in numpy.ndindex(x.shape):
        step = numpy.zeros(x.shape)
        step[index] = eps
        gradient[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return gradient


def forward_differences(f, x, eps=1e-6):
    gradient = numpy.zeros(x.shape)
    for index in numpy.ndindex(x.shape):
        original = x[index]
        here = f(x)
        x[index] = original + eps
        gradient[index] = (f(x) - here) / eps
        x[index] = original
    return gradient


def divided_by_eps(f, x, eps=1e-6):
    return 2 * central(f, x, eps)


def first_axis_only(f, x, eps=1e-6):
    """Moves a whole row of a 2-D x at once (x[i] for i in range(len(x)))."""
    gradient = numpy.zeros(x.shape)
    for i in range(len(x)):
        original = x[i].copy()
        x[i] = original + eps
        plus = f(x)
        x[i] = original - eps
        minus = f(x)
        x[i] = original
        gradient[i] = (plus - minus) / (2 * eps)
    return gradient


def left_moved(f, x, eps=1e-6):
    """Right values, but x is left at x + eps in every element."""
    gradient = numpy.zeros(x.shape)
    for index in numpy.ndindex(x.shape):
        x[index] -= eps
        minus = f(x)
        x[index] += 2 * eps
        gradient[index] = (f(x) - minus) / (2 * eps)
    return gradient


def leading_axes(x):
    return tuple(range(x.ndim - 1))


RIGHT = {
    "2.1": central,
    "2.2": lambda gy, d: (2 * gy * d, -2 * gy * d),
    "2.3": lambda gy, c: (gy * c[1], (gy * c[0]).sum(axis=leading_axes(c[0])), gy.sum(axis=leading_axes(c[0]))),
    "2.4": lambda gy, shape: (numpy.pad(gy / 2, [(0, 0)] * (gy.ndim - 1) + [(0, 1)])
                              + numpy.pad(gy / 2, [(0, 0)] * (gy.ndim - 1) + [(1, 0)]),),
}
# exercise: [(planted mistake, wrong answer, text the message must hold)]
WRONG = {
    "2.1": [("forward differences", forward_differences, r"On f\(x\) = sum\(x\*\*2\), x \(3,\): the gradient\[.*"
                                                         r"Forward differences"),
            ("divided by eps, not 2 eps", divided_by_eps, r"On f\(x\) = sum\(x\*\*2\).*factor of 2"),
            ("moves whole rows", first_axis_only, r"On f\(x\) = sum\(sin\(x\) \* x\), x \(2, 3\): the gradient\["),
            ("x left moved", left_moved, r"On f\(x\) = sum\(x\*\*2\), x \(3,\): your function changed its input x: x\[0\] is now")],
    "2.2": [("the shipped bug: sign of target", lesson2.squared_error_backward_buggy,
             r"On pred \(3, 4\), target \(3, 4\): the gradient of target\[.*sign is flipped"),
            ("factor 2 missing", lambda gy, d: (gy * d, -gy * d),
             r"On pred \(3, 4\), target \(3, 4\): the gradient of pred\[.*factor of 0.5"),
            ("gy missing", lambda gy, d: (2 * d, -2 * d), r"On pred \(3, 4\), target \(3, 4\): the gradient of pred\[")],
    "2.3": [("the shipped bug: no sum for gamma", lesson2.scale_shift_backward_buggy,
             r"On x \(4, 3\), gamma \(3,\), beta \(3,\): the gradient of gamma has shape \(4, 3\), expected \(3,\)"),
            ("sums the first axis only", lambda gy, c: (gy * c[1], (gy * c[0]).sum(axis=0), gy.sum(axis=0)),
             r"On x \(2, 5, 3\) \(a batch of sequences\).*gradient of gamma has shape \(5, 3\), expected \(3,\)"),
            ("mean instead of sum", lambda gy, c: (gy * c[1], (gy * c[0]).mean(axis=0), gy.mean(axis=0)),
             r"On x \(4, 3\).*the gradient of gamma\[.*factor of 0.25"),
            ("gamma and beta swapped", lambda gy, c: (gy * c[1], gy.sum(axis=leading_axes(c[0])),
                                                      (gy * c[0]).sum(axis=leading_axes(c[0]))),
             r"On x \(4, 3\).*the gradient of gamma\[")],
    "2.4": [("the shipped bug: index i twice", lesson2.midpoints_backward_buggy,
             r"On x \(6,\): the gradient of x\["),
            ("halves missing", lambda gy, shape: (2 * RIGHT["2.4"](gy, shape)[0],), r"On x \(6,\).*factor of 2"),
            ("shifted by one", lambda gy, shape: (numpy.pad(gy, [(0, 0)] * (gy.ndim - 1) + [(1, 0)]),),
             r"On x \(6,\): the gradient of x\[")],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_a_numerical_gradient_on_copies_is_accepted_too():
    assert check.verdict("2.1", central_on_copies).correct


def test_an_exception_in_the_learners_numerical_gradient_names_the_case():
    verdict = check.verdict("2.1", lambda f, x, eps=1e-6: 1 / 0)
    assert verdict.status == "wrong"
    assert "On f(x) = sum(x**2), x (3,) it raised ZeroDivisionError" in verdict.message


def test_the_forward_difference_is_told_apart_by_its_size():
    """At the checker's eps the forward difference is off by ~1e-5, the central one by ~1e-9."""
    verdict = check.verdict("2.1", forward_differences)
    error = float(re.search(r"relative error ([0-9.e+-]+)\)", verdict.message).group(1))
    assert 1e-6 < error < 1e-3
    right = check.verdict("2.1", central).message
    assert float(re.search(r"largest relative error ([0-9.e+-]+)\.", right).group(1)) < 1e-8


# --- the shipped bugs are the ones the lesson describes ---------------------------------
def arrays(seed, *shapes):
    rng = numpy.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def test_the_sign_bug_fails_only_the_target_and_by_a_sign():
    report = gradcheck((lesson2.squared_error_forward, lesson2.squared_error_backward_buggy),
                       *arrays(0, (3, 4), (3, 4)), raise_on_failure=False)
    pred, target = report.inputs
    assert pred.max_rel_error < 1e-8 and target.max_rel_error > 0.99
    assert numpy.isclose(target.analytic, -target.numerical)


def test_the_missing_reduction_is_a_shape_error_naming_gamma():
    with pytest.raises(GradcheckError, match=r"gamma: .*shape \(4, 3\) for an input of shape \(3,\)"):
        gradcheck((lesson2.scale_shift_forward, lesson2.scale_shift_backward_buggy),
                  *arrays(1, (4, 3), 3, 3), names=["x", "gamma", "beta"])


def test_the_off_by_one_sends_everything_to_the_left_neighbour():
    x, = arrays(2, 6)
    gy = numpy.zeros(5)
    gy[2] = 1.0
    got = lesson2.midpoints_backward_buggy(gy, x.shape)[0]
    assert numpy.array_equal(got, [0, 0, 1, 0, 0, 0])
    assert not gradcheck((lesson2.midpoints_forward, lesson2.midpoints_backward_buggy), x,
                         raise_on_failure=False).passed


def test_the_swapped_concat_passes_with_ones_and_fails_with_a_random_upstream_gradient():
    from minigrad.gradcheck import numerical_gradient, relative_error
    a, b = arrays(3, (2, 3), (2, 3))
    _, cache = concat_forward(a, b)
    for gy, should_pass in ((numpy.ones((4, 3)), True), (arrays(4, (4, 3))[0], False)):
        grads = lesson2.concat_backward_swapped(gy, cache)
        loss = lambda: float(numpy.sum(concat_forward(a, b)[0] * gy))
        error = max(relative_error(g, numerical_gradient(loss, x))[0] for x, g in zip((a, b), grads))
        assert (error < 1e-8) == should_pass, error


# --- answers that used to pass, or to crash the checker ------------------------------------------
def test_a_flat_gradient_gets_a_verdict_not_a_crash_of_the_hint():
    """Before, the hint function raised NumPy's broadcast ValueError on a gradient of the wrong shape."""
    flat = lambda f, x, eps=1e-6: central(f, x, eps).reshape(-1)
    verdict = check.verdict("2.1", flat)
    assert verdict.status == "wrong"
    assert verdict.message.startswith("On f(x) = sum(sin(x) * x), x (2, 3): the gradient has shape (6,), expected (2, 3).")
    assert "one entry per element of x, in x's shape (2, 3)" in verdict.message


def hard_coded_step(differences):
    def numerical_gradient(f, x, eps):
        return differences(f, x, 1e-7)          # the eps given is ignored
    return numerical_gradient


@pytest.mark.parametrize("differences, hint", [
    (forward_differences, "that is the exact derivative 3x\\*\\*2"),
    (central, "that is the exact derivative 3x\\*\\*2"),
])
def test_a_hard_coded_step_fails_on_the_case_with_a_large_eps(differences, hint):
    """A tiny hard-coded step passes functions at eps 1e-4 (forward differences too); at eps 0.1 the
    central difference of x**3 is 3x**2 + eps**2, which a step of one's own cannot give."""
    verdict = check.verdict("2.1", hard_coded_step(differences))
    assert verdict.status == "wrong"
    assert verdict.message.startswith("On f(x) = sum(x**3), x (4,), eps 0.1: the gradient[")
    assert re.search(hint, verdict.message), verdict.message


def test_forward_differences_at_the_large_eps_are_named():
    only_on_the_cube = lambda f, x, eps: forward_differences(f, x, eps) if eps == lesson2.LARGE_EPS else central(f, x, eps)
    verdict = check.verdict("2.1", only_on_the_cube)
    assert verdict.status == "wrong" and "those are forward differences" in verdict.message


def test_the_expected_value_of_the_cube_is_what_central_differences_give():
    inputs = lesson2.numerical_gradient_cases()[lesson2.CUBE]
    x = inputs["x"].copy()
    assert numpy.allclose(central(inputs["f"], x, lesson2.LARGE_EPS), 3 * x ** 2 + lesson2.LARGE_EPS ** 2,
                          rtol=1e-12)
