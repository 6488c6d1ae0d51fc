"""The gradient checker must catch wrong backwards, say where they are wrong, and
pass right ones. Each bug is tried both as a raw (forward, backward) pair and as
an Op used through the Tensor API."""
import functools
import math

import numpy
import pytest

import minigrad.functional as F
from minigrad import Op, Tensor, backend
from minigrad.gradcheck import (GradcheckError, directional_check, gradcheck, numerical_gradient,
                                relative_error)
from minigrad.ops import elementwise, linalg, reduce as reduce_ops, shape as shape_ops


def make(shape, seed):
    return numpy.random.default_rng(seed).standard_normal(shape)


# --- deliberately wrong backwards ---------------------------------------------------------
def wrong_sign_mul(gy, cache):
    ga, gb = elementwise.mul_backward(gy, cache)
    return ga, -gb


def unreduced_add(gy, shapes):
    return gy, gy                      # forgot unbroadcast: b's gradient has the output's shape


def shifted_concat(gy, cache):
    """Splits at the right places, but the upstream gradient is rolled by one along the axis."""
    sizes, axis = cache
    return shape_ops.concat_backward(numpy.roll(gy, 1, axis=axis), cache)


def swapped_concat(gy, cache):
    """Gives each of two same-shaped inputs the other's gradient (inception branches swapped)."""
    first, second = shape_ops.concat_backward(gy, cache)
    return second, first


def shifted_slice(gy, cache):
    """Writes the gradient of x[1:4] into positions 2..4 (an off-by-one start)."""
    shape, index = cache
    gx = numpy.zeros(shape)
    gx[2:5] = gy
    return (gx,)


def doubled_tanh(gy, y):
    return (2 * gy * (1 - y * y),)


def one_wrong_element(gy, cache):
    """Correct except for the element at (1, 2) of the first input."""
    ga, gb = elementwise.mul_backward(gy, cache)
    ga = ga.copy()
    ga[1, 2] += 1.0
    return ga, gb


# name: (forward, wrong backward, inputs, the input the bug is in)
BUGS = {
    "wrong sign": (elementwise.mul_forward, wrong_sign_mul, [make((3, 4), 0), make((3, 4), 1)], 1),
    "off-by-one concat": (functools.partial(shape_ops.concat_forward, axis=1), shifted_concat,
                          [make((2, 3), 2), make((2, 2), 3)], 0),
    "swapped concat": (functools.partial(shape_ops.concat_forward, axis=1), swapped_concat,
                       [make((2, 3), 4), make((2, 3), 5)], 0),
    "shifted slice": (functools.partial(shape_ops.getitem_forward, index=slice(1, 4)), shifted_slice,
                      [make((6,), 6)], 0),
    "factor of 2": (elementwise.tanh_forward, doubled_tanh, [make((2, 3), 7)], 0),
    "one wrong element": (elementwise.mul_forward, one_wrong_element, [make((3, 4), 8), make((3, 4), 9)], 0),
}


def as_tensor_function(forward, backward):
    """The same pair wrapped as an Op, used through the Tensor API."""
    op = Op("buggy", forward, backward)
    return lambda *tensors: op(*tensors)


@pytest.mark.parametrize("name", BUGS)
@pytest.mark.parametrize("route", ["pair", "tensor"])
def test_checker_catches_wrong_backward(name, route):
    forward, backward, inputs, culprit = BUGS[name]
    fn = (forward, backward) if route == "pair" else as_tensor_function(forward, backward)
    names = [f"x{i}" for i in range(len(inputs))]
    with pytest.raises(GradcheckError, match=rf"(?s)x{culprit} .*<-- FAIL"):
        gradcheck(fn, *inputs, names=names)
    report = gradcheck(fn, *inputs, names=names, raise_on_failure=False)
    assert not report.passed and report.max_rel_error > 1e-2
    assert report.inputs[culprit].max_rel_error > 1e-2


@pytest.mark.parametrize("route", ["pair", "tensor"])
def test_report_names_the_input_and_the_worst_element(route):
    forward, backward, inputs, _ = BUGS["one wrong element"]
    fn = (forward, backward) if route == "pair" else as_tensor_function(forward, backward)
    report = gradcheck(fn, *inputs, names=["a", "b"], raise_on_failure=False)
    a, b = report.inputs
    assert (a.name, a.worst_index, a.shape, a.checked) == ("a", (1, 2), (3, 4), 12)
    assert a.analytic - a.numerical == pytest.approx(1.0, abs=1e-6)
    assert b.max_rel_error < 1e-8
    text = str(report)
    assert "a              (3, 4)" in text and "(1, 2)" in text and "<-- FAIL" in text
    assert text.splitlines()[-1].startswith("FAILED: largest error")


def ones_upstream_check(forward, backward, *inputs, eps=1e-6):
    """DeZero's check: d sum(f) / dx numerically vs backward(ones). Returns the largest error."""
    grads = backward(numpy.ones_like(forward(*inputs)[0]), forward(*inputs)[1])
    errors = []
    for x, analytic in zip(inputs, grads):
        numerical = numerical_gradient(lambda: float(forward(*inputs)[0].sum()), x, eps)
        errors.append(relative_error(analytic, numerical)[0])
    return max(errors)


def test_swapped_concat_slips_past_a_ones_upstream_check_but_not_ours():
    forward, backward, inputs, _ = BUGS["swapped concat"]
    assert ones_upstream_check(forward, backward, *inputs) < 1e-8     # the bug hides
    with pytest.raises(GradcheckError):
        gradcheck((forward, backward), *inputs)                        # a random gy finds it


@pytest.mark.parametrize("route", ["pair", "tensor"])
def test_missing_broadcast_reduction_fails_loudly(route):
    a, b = make((3, 4), 10), make((4,), 11)
    if route == "pair":
        with pytest.raises(GradcheckError, match=r"input 1: the backward returned a gradient of shape \(3, 4\) "
                                                 r"for an input of shape \(4,\)"):
            gradcheck((elementwise.add_forward, unreduced_add), a, b)
    else:
        fn = as_tensor_function(elementwise.add_forward, unreduced_add)
        with pytest.raises(RuntimeError, match=r"backward of 'buggy' returned a gradient of shape \(3, 4\) "
                                               r"for input 1 of shape \(4,\)"):
            gradcheck(fn, a, b)


def split_one_too_late(gy, cache):
    """Cuts the upstream gradient one column after the real boundary: wrong shapes."""
    sizes, axis = cache
    return tuple(numpy.split(gy, [sizes[0] + 1], axis=axis))


@pytest.mark.parametrize("route", ["pair", "tensor"])
def test_concat_backward_split_off_by_one_fails_loudly(route):
    a, b = make((2, 3), 12), make((2, 2), 13)
    forward = functools.partial(shape_ops.concat_forward, axis=1)
    if route == "pair":
        with pytest.raises(GradcheckError, match=r"input 0: the backward returned a gradient of shape \(2, 4\)"):
            gradcheck((forward, split_one_too_late), a, b)
    else:
        with pytest.raises(RuntimeError, match=r"returned a gradient of shape \(2, 4\) for input 0 of shape \(2, 3\)"):
            gradcheck(as_tensor_function(forward, split_one_too_late), a, b)


def test_too_few_gradients_from_a_pair():
    with pytest.raises(GradcheckError, match="the backward returned 1 gradients for 2 inputs"):
        gradcheck((elementwise.mul_forward, lambda gy, cache: (gy,)), make(2, 0), make(2, 1))


# --- right backwards pass ------------------------------------------------------------------
@pytest.mark.parametrize("route", ["pair", "tensor"])
def test_correct_backwards_pass_with_tiny_errors(route):
    cases = [(elementwise.mul_forward, elementwise.mul_backward, [make((3, 4), 0), make((4,), 1)]),
             (functools.partial(shape_ops.concat_forward, axis=1), shape_ops.concat_backward,
              [make((2, 3), 2), make((2, 3), 3)]),
             (elementwise.tanh_forward, elementwise.tanh_backward, [make((2, 3), 4)])]
    for forward, backward, inputs in cases:
        fn = (forward, backward) if route == "pair" else as_tensor_function(forward, backward)
        report = gradcheck(fn, *inputs)
        assert report.passed and report.max_rel_error < 1e-8


def test_absent_bias_and_integer_inputs_are_passed_through():
    x, W = make((3, 4), 0), make((2, 4), 1)
    assert len(gradcheck((linalg.linear_forward, linalg.linear_backward), x, W, None).inputs) == 2
    assert len(gradcheck(F.linear, x, W, None).inputs) == 2
    labels = numpy.array([1, 0, 1])
    report = gradcheck(lambda t, idx: t[numpy.arange(3), idx.data], x[:, :2].copy(), labels)
    assert [r.name for r in report.inputs] == ["input 0"]


def test_inputs_are_left_unchanged():
    x, y = make((2, 3), 0), Tensor(make((2, 3), 1))
    before = x.copy(), y.numpy().copy()
    gradcheck(lambda a, b: a * b, x, y)
    numpy.testing.assert_array_equal(x, before[0])
    numpy.testing.assert_array_equal(y.numpy(), before[1])
    assert y.grad is None


def test_verbose_prints_the_report(capsys):
    gradcheck(lambda t: t.tanh(), make(3, 0), verbose=True, names=["x"])
    printed = capsys.readouterr().out
    assert "worst index" in printed and "PASSED" in printed


# --- sampling large inputs ----------------------------------------------------------------
def test_max_elements_checks_a_sample():
    calls = []

    def counted_tanh(t):
        calls.append(1)
        return t.tanh()
    report = gradcheck(counted_tanh, make((20, 10), 0), max_elements=7)
    assert report.inputs[0].checked == 7
    assert len(calls) <= 2 * 7 + 3              # 2 evaluations per sampled element, plus setup
    assert report.passed


def test_max_elements_still_catches_a_global_error():
    with pytest.raises(GradcheckError):
        gradcheck((elementwise.tanh_forward, doubled_tanh), make((20, 10), 1), max_elements=5)


def test_max_elements_sample_is_seeded():
    x = make((30,), 2)
    first = gradcheck(lambda t: t.tanh(), x, max_elements=4, seed=3)
    again = gradcheck(lambda t: t.tanh(), x, max_elements=4, seed=3)
    assert first.inputs[0].worst_index == again.inputs[0].worst_index


# --- the building blocks --------------------------------------------------------------------
def test_numerical_gradient_of_a_known_function():
    x = numpy.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda: float(numpy.sum(x ** 3)), x)
    numpy.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)
    with pytest.raises(ValueError, match="C-contiguous"):
        numerical_gradient(lambda: 0.0, x.T)


def test_relative_error_and_worst_index():
    error, worst = relative_error(numpy.array([1.0, 2.0, 3.0]), numpy.array([1.0, 2.5, 3.0]))
    assert worst == (1,) and error == pytest.approx(0.5 / 6.0)
    assert relative_error(numpy.zeros(3), numpy.zeros(3)) == (0.0, (0,))


# --- directional check -----------------------------------------------------------------------
def scale_op(wrong=False):
    """y = s * x with a scale parameter s; ``wrong`` doubles the gradient of s only."""
    def backward(gy, cache):
        gx, gs = elementwise.mul_backward(gy, cache)
        return gx, (2 * gs if wrong else gs)
    return Op("scale", elementwise.mul_forward, backward)


PARAMETER_SHAPES = [(6, 5), (6,), (4, 6), (4,), (3, 4), (3,), (3,), ()]


def network(op):
    """f(W1, b1, W2, b2, W3, b3, v, s): three linear layers with tanh, the middle one scaled
    by ``s`` through ``op``, and a weighting ``v``: eight parameter tensors."""
    x = Tensor(numpy.random.default_rng(1).standard_normal((7, 5)))

    def f(W1, b1, W2, b2, W3, b3, v, s):
        h = F.linear(x, W1, b1).tanh()
        h = op(F.linear(h, W2, b2).tanh(), s)
        return F.linear(h, W3, b3) * v
    return f


def parameters():
    rng = numpy.random.default_rng(0)
    return [Tensor(rng.standard_normal(s) * 0.5, requires_grad=True) for s in PARAMETER_SHAPES]


def test_directional_check_passes_a_right_network():
    f, params = network(scale_op(wrong=False)), parameters()
    report = directional_check(lambda: f(*params).sum(), params)
    assert report.passed and report.rel_error < 1e-8


def test_directional_check_catches_one_wrong_parameter_among_many():
    f, params = network(scale_op(wrong=True)), parameters()
    with pytest.raises(GradcheckError, match="directional check failed"):
        directional_check(lambda: f(*params).sum(), params)
    # the per-tensor check then says which one: only the scale s (input 7) is wrong
    report = gradcheck(f, *params, raise_on_failure=False)
    assert [r.name for r in report.inputs if not r.max_rel_error <= report.tolerance] == ["input 7"]


# --- float32 is refused, never misreported ------------------------------------------------
def test_float32_is_refused_with_the_reason_not_reported_as_a_wrong_backward():
    # tanh(x) * x has a right backward; in float32 the difference quotient alone is off by ~1e-2
    x = make((4, 3), 11).astype(numpy.float32)
    with pytest.raises(TypeError, match=r"gradcheck: x is float32\. Finite differences need float64.*"
                                        r"even a correct backward would look wrong.*astype\(numpy.float64\)"):
        gradcheck(lambda t: t.tanh() * t, x, names=["x"])
    assert gradcheck(lambda t: t.tanh() * t, x.astype(numpy.float64)).passed


def test_float32_is_refused_on_the_pair_route_and_by_the_directional_check():
    a, b = make((2, 3), 12), make((2, 3), 13).astype(numpy.float32)
    with pytest.raises(TypeError, match=r"gradcheck: input 1 is float32"):
        gradcheck((elementwise.mul_forward, elementwise.mul_backward), a, b)
    w = Tensor(b, requires_grad=True)
    with pytest.raises(TypeError, match=r"gradcheck: tensor 0 \(shape \(2, 3\)\) is float32"):
        directional_check(lambda: (w * w).sum(), [w])


def test_gradcheck_computes_on_the_inputs_device(xp):
    seen = []

    def fn(t):
        seen.append(backend.get_array_module(t.data))
        return (t * t).tanh()

    assert gradcheck(fn, xp.asarray(make((3, 2), 14))).passed
    assert seen and all(module is xp for module in seen)


# --- settings under which a wrong backward could pass ------------------------------------------
def bias_gradient_times_5(gy, cache):
    gx, gW, gb = linalg.linear_backward(gy, cache)
    return gx, gW, 5 * gb


def wrong_bias_check(route, **settings):
    """gradcheck of linear(x, W, b) whose backward gives 5 times the bias gradient."""
    x, W, b = make((4, 3), 20), make((2, 3), 21), make((2,), 22)
    pair = (linalg.linear_forward, bias_gradient_times_5)
    return gradcheck(pair if route == "pair" else as_tensor_function(*pair), x, W, b, **settings)


@pytest.mark.parametrize("settings", [{}, {"max_elements": 1}, {"max_elements": 2}, {"max_elements": 1000},
                                      {"max_elements": 1, "seed": 5}, {"names": ["x", "W", "b"]},
                                      {"tolerance": 0.5}], ids=str)
@pytest.mark.parametrize("route", ["pair", "tensor"])
def test_a_5x_wrong_bias_gradient_fails_in_every_configuration_that_runs(route, settings):
    report = wrong_bias_check(route, raise_on_failure=False, **settings)
    bias = report.inputs[2]
    assert not report.passed and bias.checked >= 1
    assert bias.max_rel_error == pytest.approx(4 / 6)          # |5g - g| / (|5g| + |g|)
    assert [r.max_rel_error < 1e-8 for r in report.inputs] == [True, True, False]
    assert str(report).splitlines()[3].endswith("<-- FAIL")
    with pytest.raises(GradcheckError, match="gradient check failed"):
        wrong_bias_check(route, **settings)


@pytest.mark.parametrize("settings, message", [
    ({"names": ["x", "W"]}, r"gradcheck: 2 names for 3 inputs; give one name per input"),
    ({"names": ["x", "W", "b", "c"]}, r"gradcheck: 4 names for 3 inputs"),
    ({"names": []}, r"gradcheck: 0 names for 3 inputs"),
    ({"max_elements": 0}, r"gradcheck: max_elements must be a whole number >= 1 \(elements checked per "
                          r"input\) or None \(all of them\), got 0: a check of no element would pass"),
    ({"max_elements": -1}, r"max_elements must be a whole number >= 1 .* got -1"),
    ({"max_elements": 2.5}, r"max_elements must be a whole number >= 1 .* got 2.5"),
    ({"max_elements": True}, r"max_elements must be a whole number >= 1 .* got True"),
    ({"tolerance": 1.0}, r"gradcheck: tolerance must lie in \[0, 1\), got 1.0: the relative error is at "
                         r"most 1, so a tolerance of 1 or more passes any backward"),
    ({"tolerance": math.inf}, r"tolerance must lie in \[0, 1\), got inf"),
    ({"tolerance": math.nan}, r"tolerance must lie in \[0, 1\), got nan"),
    ({"tolerance": -1e-6}, r"tolerance must lie in \[0, 1\), got -1e-06"),
], ids=str)
@pytest.mark.parametrize("route", ["pair", "tensor"])
@pytest.mark.parametrize("raise_on_failure", [True, False])
def test_settings_that_could_not_fail_are_refused(route, raise_on_failure, settings, message):
    with pytest.raises(ValueError, match=message):
        wrong_bias_check(route, raise_on_failure=raise_on_failure, **settings)


def test_the_relative_error_never_exceeds_1_so_tolerance_1_could_not_fail():
    rng = numpy.random.default_rng(0)
    for _ in range(200):
        analytic, numerical = rng.standard_normal(5) * 10 ** rng.uniform(-5, 5), rng.standard_normal(5)
        assert relative_error(analytic, numerical)[0] <= 1.0


@pytest.mark.parametrize("route", ["pair", "tensor"])
def test_a_check_that_compared_nothing_fails(route):
    sum_pair = (reduce_ops.sum_forward, reduce_ops.sum_backward)
    fn = sum_pair if route == "pair" else (lambda t: t.sum())
    report = gradcheck(fn, numpy.zeros((0, 3)), raise_on_failure=False)     # an empty input
    assert not report.passed and report.checked == 0
    assert str(report).splitlines()[-1] == "FAILED: nothing was checked (no floating-point input has an element)"
    with pytest.raises(GradcheckError, match="nothing was checked"):
        gradcheck(fn, numpy.zeros((0, 3)))
    with pytest.raises(GradcheckError, match="nothing was checked"):       # integer input only
        gradcheck(fn, numpy.array([1, 2, 3]))


def test_directional_check_refuses_to_check_nothing():
    with pytest.raises(ValueError, match=r"directional_check: the 0 tensors have no element"):
        directional_check(lambda: Tensor(numpy.ones(1)).sum(), [])
    empty = Tensor(numpy.zeros((0, 2)), requires_grad=True)
    with pytest.raises(ValueError, match=r"directional_check: the 1 tensors have no element"):
        directional_check(lambda: empty.sum(), [empty])
    w = Tensor(numpy.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"directional_check: tolerance must lie in \[0, 1\), got 2"):
        directional_check(lambda: (w * w).sum(), [w], tolerance=2)
