"""Elementwise ops (add, sub, mul, div, neg, pow, exp, log, tanh, sigmoid, relu).

Each op: forward against an element-by-element oracle in Python floats and the
``math`` module (``oracles.elementwise``, on every backend of the ``xp`` fixture),
float64 gradient checks through the Tensor API and on the raw pair, broadcasting
and size-1 axes, dtype kept. Property tests: for random broadcast-compatible
shapes, d sum(a op b) / d input has the input's shape and matches finite
differences, and ``unbroadcast`` sums exactly like a naive loop.
"""
import functools
import math
import operator

import numpy
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minigrad.functional as F
from minigrad import Tensor, backend
from minigrad.gradcheck import gradcheck
from minigrad.ops import elementwise

import oracles

TOLERANCE = 1e-7    # float64 central differences reach ~1e-9 on these ops

BINARY_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),        # row vector stretched over rows
    ((3, 4), (3, 1)),      # size-1 axis stretched
    ((2, 1, 4), (3, 1)),   # both stretched, different ranks
    ((1, 4), (3, 1)),
    ((), (2, 3)),          # a 0-d array
    ((2, 3), ()),
]
UNARY_SHAPES = [(), (5,), (2, 3), (2, 1, 4)]


def make(shape, seed, kind="normal"):
    """Seeded float64 values: 'normal', 'positive' (for log, sqrt, a divisor) or
    'away_from_zero' (no kink for relu, no blow-up for a divisor)."""
    rng = numpy.random.default_rng(seed)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if kind == "away_from_zero":
        return rng.uniform(0.3, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return rng.standard_normal(shape)


# name: (Tensor function, oracle on Python floats, raw pair, kind of the last input)
BINARY = {
    "add": (lambda a, b: a + b, operator.add, (elementwise.add_forward, elementwise.add_backward), "normal"),
    "sub": (lambda a, b: a - b, operator.sub, (elementwise.sub_forward, elementwise.sub_backward), "normal"),
    "mul": (lambda a, b: a * b, operator.mul, (elementwise.mul_forward, elementwise.mul_backward), "normal"),
    "div": (lambda a, b: a / b, operator.truediv, (elementwise.div_forward, elementwise.div_backward),
            "away_from_zero"),
}


def _pow_pair(exponent):
    return functools.partial(elementwise.pow_forward, exponent=exponent), elementwise.pow_backward


UNARY = {
    "neg": (lambda x: -x, operator.neg, (elementwise.neg_forward, elementwise.neg_backward), "normal"),
    "pow3": (lambda x: x ** 3, lambda v: v ** 3, _pow_pair(3), "normal"),
    "pow2": (lambda x: x ** 2, lambda v: v ** 2, _pow_pair(2), "normal"),
    "sqrt": (lambda x: x ** 0.5, math.sqrt, _pow_pair(0.5), "positive"),
    "pow-1.5": (lambda x: x ** -1.5, lambda v: v ** -1.5, _pow_pair(-1.5), "positive"),
    "exp": (F.exp, math.exp, (elementwise.exp_forward, elementwise.exp_backward), "normal"),
    "log": (F.log, math.log, (elementwise.log_forward, elementwise.log_backward), "positive"),
    "tanh": (lambda x: x.tanh(), math.tanh, (elementwise.tanh_forward, elementwise.tanh_backward), "normal"),
    "sigmoid": (lambda x: x.sigmoid(), oracles.sigmoid,
                (elementwise.sigmoid_forward, elementwise.sigmoid_backward), "normal"),
    "relu": (F.relu, oracles.relu, (elementwise.relu_forward, elementwise.relu_backward), "away_from_zero"),
}

# How many units in the last place (ulps) an op's forward may differ from its oracle.
# Not listed: 0, exactly equal. +, -, *, / and negation are single IEEE operations,
# correctly rounded by NumPy, a GPU and Python alike; relu only copies or zeroes.
# exp, log, tanh and powers come from different libraries on each side (NumPy's own
# vectorised code or the GPU's, against the C library behind ``math`` and Python's
# ``**``), each within 1-2 ulps of the true value but not always the same one
# (NumPy squares by x*x and may take ** 0.5 as sqrt; Python calls pow).
ULPS = {"pow3": 4, "pow2": 4, "sqrt": 4, "pow-1.5": 4, "exp": 4, "log": 4, "tanh": 4,
        # one exp (1-2 ulps) and one division: e^-|x| / (1 + e^-|x|) or 1 / (1 + e^-|x|)
        "sigmoid": 4}


def assert_matches(actual, expected, ulps=0):
    """``actual`` has ``expected``'s shape and each element is within ``ulps`` ulps of it."""
    assert actual.shape == expected.shape
    numpy.testing.assert_array_max_ulp(actual, expected, maxulp=ulps)


def check_backward_on_backend(xp, fn, *arrays):
    """On a GPU, the backward of ``fn`` gives the same gradients as on NumPy."""
    if xp is numpy:
        return
    rng = numpy.random.default_rng(0)
    gy = rng.standard_normal(numpy.broadcast_shapes(*[a.shape for a in arrays]))
    results = []
    for module in (xp, numpy):
        tensors = [Tensor(module.asarray(a), requires_grad=True) for a in arrays]
        fn(*tensors).backward(module.asarray(gy))
        results.append([backend.to_numpy(t.grad) for t in tensors])
    for on_xp, on_numpy in zip(*results):
        numpy.testing.assert_allclose(on_xp, on_numpy, rtol=1e-12, atol=1e-14)


# --- binary ops ----------------------------------------------------------------------
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_forward_matches_oracle(xp, name, shapes):
    fn, oracle, _, kind = BINARY[name]
    a, b = make(shapes[0], 0), make(shapes[1], 1, kind)
    expected = oracles.elementwise(oracle, a, b)      # first, so an op that wrote into a or b cannot change it
    out = fn(Tensor(xp.asarray(a)), Tensor(xp.asarray(b)))
    assert_matches(out.numpy(), expected)
    check_backward_on_backend(xp, fn, a, b)


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck_through_tensors_and_pair(name, shapes):
    fn, _, pair, kind = BINARY[name]
    a, b = make(shapes[0], 2), make(shapes[1], 3, kind)
    assert gradcheck(fn, a, b, tolerance=TOLERANCE).max_rel_error < TOLERANCE
    assert gradcheck(pair, a, b, tolerance=TOLERANCE).max_rel_error < TOLERANCE


@pytest.mark.parametrize("name", BINARY)
def test_binary_with_python_scalars_on_either_side(name):
    fn, oracle, _, _ = BINARY[name]
    x = make((2, 3), 4, "away_from_zero")
    x_op_scalar, scalar_op_x = oracles.elementwise(oracle, x, 2.5), oracles.elementwise(oracle, 2.5, x)
    assert_matches(fn(Tensor(x), 2.5).numpy(), x_op_scalar)
    assert_matches(fn(2.5, Tensor(x)).numpy(), scalar_op_x)
    assert gradcheck(lambda t: fn(t, 2.5), x, tolerance=TOLERANCE).passed
    assert gradcheck(lambda t: fn(2.5, t), x, tolerance=TOLERANCE).passed


@pytest.mark.parametrize("name", BINARY)
def test_binary_keeps_float32(name):
    fn, _, _, kind = BINARY[name]
    a = Tensor(make((2, 3), 5).astype(numpy.float32), requires_grad=True)
    b = Tensor(make((3,), 6, kind).astype(numpy.float32), requires_grad=True)
    out = fn(a, b)
    out.sum().backward()
    assert out.dtype == numpy.float32
    assert a.grad.dtype == b.grad.dtype == numpy.float32


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_broadcast_mismatch_names_op_and_shapes(name):
    a, b = Tensor(numpy.ones((2, 3))), Tensor(numpy.ones((4,)))
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        getattr(F, name)(a, b)


# --- unary ops -----------------------------------------------------------------------
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary_forward_matches_oracle(xp, name, shape):
    fn, oracle, _, kind = UNARY[name]
    x = make(shape, 7, kind)
    expected = oracles.elementwise(oracle, x)
    out = fn(Tensor(xp.asarray(x)))
    assert out.dtype == numpy.float64
    assert_matches(out.numpy(), expected, ULPS.get(name, 0))
    check_backward_on_backend(xp, fn, x)


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck_through_tensors_and_pair(name, shape):
    fn, _, pair, kind = UNARY[name]
    x = make(shape, 8, kind)
    assert gradcheck(fn, x, tolerance=TOLERANCE).max_rel_error < TOLERANCE
    assert gradcheck(pair, x, tolerance=TOLERANCE).max_rel_error < TOLERANCE


@pytest.mark.parametrize("name", UNARY)
def test_unary_keeps_float32(name):
    fn, _, _, kind = UNARY[name]
    x = Tensor(make((2, 3), 9, kind).astype(numpy.float32), requires_grad=True)
    out = fn(x)
    out.sum().backward()
    assert out.dtype == x.grad.dtype == numpy.float32


def test_relu_gradient_is_zero_on_negative_side_and_one_on_positive():
    x = Tensor(numpy.array([-2.0, -0.5, 0.5, 3.0]), requires_grad=True)
    F.relu(x).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [0, 0, 1, 1])


def test_sigmoid_does_not_overflow_for_large_inputs():
    x = Tensor(numpy.array([-1000.0, 0.0, 1000.0]), requires_grad=True)
    y = x.sigmoid()
    y.sum().backward()
    numpy.testing.assert_allclose(y.numpy(), [0.0, 0.5, 1.0])
    assert numpy.all(numpy.isfinite(x.grad))


def test_float_ops_reject_integer_input():
    with pytest.raises(ValueError, match="exp: expected a floating-point input, got dtype int64"):
        F.exp(Tensor([1, 2, 3]))


def test_pow_exponent_must_be_one_real_number():
    with pytest.raises(TypeError, match=r"pow: the exponent must be one real number \(a Python or NumPy "
                                        r"bool, int or float\), got dtype float32"):
        Tensor([1.0, 2.0]) ** Tensor([2.0, 2.0])
    with pytest.raises(TypeError, match=r"pow: the exponent must be one real number .*, got dtype float64"):
        Tensor([1.0, 2.0]) ** numpy.array([2.0, 2.0])
    with pytest.raises(TypeError, match=r"rpow: the base must be one real number .*, got list"):
        [2.0, 3.0] ** Tensor([1.0, 2.0])


# every integer and floating-point NumPy scalar type (bool exponents: see test_promotion.py)
NUMPY_REAL_SCALARS = [d.type for d in sorted({numpy.dtype(c) for c in numpy.typecodes["AllInteger"]
                                              + numpy.typecodes["Float"]}, key=str)]


@pytest.mark.parametrize("scalar_type", NUMPY_REAL_SCALARS, ids=lambda t: t.__name__)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_pow_takes_a_numpy_scalar_exponent_and_keeps_the_tensor_dtype(dtype, scalar_type):
    values = make((2, 3), 10, "positive")
    x = Tensor(values.astype(dtype), requires_grad=True)
    y = x ** scalar_type(2)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == dtype
    numpy.testing.assert_array_equal(y.numpy(), x.numpy() ** 2)
    numpy.testing.assert_allclose(x.grad, 2 * x.numpy(), rtol=1e-6)
    assert gradcheck(lambda t: t ** scalar_type(3), values, tolerance=TOLERANCE).passed


def test_integer_to_a_negative_power_is_refused_naming_the_op():
    with pytest.raises(ValueError, match=r"pow: an integer array to a negative power \(-1\) is not an integer"):
        Tensor([1, 2]) ** -1
    with pytest.raises(ValueError, match=r"rpow: 2 to a negative integer power is not an integer"):
        2 ** Tensor([1, -2])
    assert (Tensor([1, 2]) ** -1.0).numpy().tolist() == [1.0, 0.5]    # a float exponent is fine
    assert (2.0 ** Tensor([1, -2])).numpy().tolist() == [2.0, 0.25]


def test_booleans_cannot_be_subtracted_or_negated():
    with pytest.raises(TypeError, match=r"sub: subtracting two boolean arrays is not defined"):
        Tensor([True, False]) - Tensor([True, True])
    with pytest.raises(TypeError, match=r"neg: negating a boolean array is not defined"):
        -Tensor([True, False])
    assert (Tensor([True, False]) - 1).numpy().tolist() == [0, -1]     # a bool next to an int counts


# --- rpow: a constant base, base ** x -----------------------------------------------------------
RPOW_BASES = [2, 0.5, numpy.float32(3.0), numpy.int64(10), numpy.e]


@pytest.mark.parametrize("base", RPOW_BASES, ids=repr)
def test_rpow_forward_matches_oracle_and_gradient_is_b_to_the_x_ln_b(xp, base):
    x = make((2, 3), 11)
    expected = oracles.elementwise(lambda v: float(base) ** v, x)
    out = base ** Tensor(xp.asarray(x))
    assert isinstance(out, Tensor) and out.dtype == numpy.float64
    assert_matches(out.numpy(), expected, ulps=4)
    t = Tensor(xp.asarray(x), requires_grad=True)
    (base ** t).sum().backward()
    numpy.testing.assert_allclose(backend.to_numpy(t.grad), expected * math.log(base), rtol=1e-14)
    assert gradcheck(lambda v: base ** v, x, tolerance=TOLERANCE).passed
    rpow_pair = (functools.partial(elementwise.rpow_forward, base=float(base)), elementwise.rpow_backward)
    assert gradcheck(rpow_pair, x, tolerance=TOLERANCE).passed


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_rpow_keeps_the_tensor_dtype(dtype):
    x = Tensor(make((3,), 12).astype(dtype), requires_grad=True)
    for base in (2, 2.5, numpy.float64(2.5), True):
        y = base ** x
        y.sum().backward()
        assert y.dtype == x.grad.dtype == dtype


def test_rpow_matches_torch_including_bases_zero_and_negative():
    torch = pytest.importorskip("torch")
    x = numpy.array([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0])
    for base in (2.0, 0.5, 1.0, 0.0, -2.0):
        ours = Tensor(x.copy(), requires_grad=True)
        with numpy.errstate(divide="ignore", invalid="ignore"):   # 0 ** -1 = inf, (-2) ** 0.5 = NaN
            y = base ** ours
            y.backward(numpy.ones(6))
        theirs = torch.tensor(x, requires_grad=True)
        expected = base ** theirs
        expected.backward(torch.ones(6))
        numpy.testing.assert_allclose(y.numpy(), expected.detach().numpy(), rtol=1e-15)
        numpy.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-15)


# --- broadcasting properties -----------------------------------------------------------
broadcast_pairs = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3)


@settings(max_examples=40, deadline=None)
@given(shapes=broadcast_pairs, name=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16))
def test_gradient_of_broadcast_op_has_input_shape_and_matches_numerical(shapes, name, seed):
    fn, _, _, kind = BINARY[name]
    a_shape, b_shape = shapes.input_shapes
    a, b = make(a_shape, seed), make(b_shape, seed + 1, kind)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    fn(ta, tb).sum().backward()
    assert ta.grad.shape == a_shape and tb.grad.shape == b_shape
    report = gradcheck(lambda x, y: fn(x, y).sum(), a, b, tolerance=TOLERANCE)
    assert report.max_rel_error < TOLERANCE


def naive_unbroadcast(grad, shape):
    """Loop over every element of ``grad`` and add it to the input element it was copied from."""
    out = numpy.zeros(shape)
    extra = grad.ndim - len(shape)
    for index in numpy.ndindex(*grad.shape):
        source = tuple(0 if size == 1 else i for i, size in zip(index[extra:], shape))
        out[source] += grad[index]
    return out


@settings(max_examples=40, deadline=None)
@given(shapes=broadcast_pairs, seed=st.integers(0, 2**16))
def test_unbroadcast_sums_exactly_like_a_loop(shapes, seed):
    # small integers: every sum is exact in float64, so equality is exact
    rng = numpy.random.default_rng(seed)
    grad = rng.integers(-5, 6, size=shapes.result_shape).astype(numpy.float64)
    for shape in shapes.input_shapes:
        reduced = elementwise.unbroadcast(grad, shape)
        assert reduced.shape == shape
        numpy.testing.assert_array_equal(reduced, naive_unbroadcast(grad, shape))
        assert reduced.sum() == grad.sum()


def test_unbroadcast_on_backend(xp):
    grad = xp.asarray(numpy.arange(24.0).reshape(2, 3, 4))
    reduced = elementwise.unbroadcast(grad, (3, 1))
    expected = naive_unbroadcast(numpy.arange(24.0).reshape(2, 3, 4), (3, 1))
    numpy.testing.assert_array_equal(backend.to_numpy(reduced), expected)


def test_pow_zero_has_zero_gradient_even_at_zero():
    x = Tensor(numpy.array([0.0, 2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]          # not nan from 0 * 0**-1
