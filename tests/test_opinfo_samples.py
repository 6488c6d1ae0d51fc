"""Inputs from PyTorch's OpInfo sample lists (torch/testing/_internal/common_methods_invocations.py
and opinfo/definitions/_masked.py) that our ops take as PyTorch does:

* ``linear`` on (*, in) input: no batch axis, an empty batch, several batch axes;
* a 1-tuple kernel, stride or padding for conv2d, max_pool2d and avg_pool2d ((n,) means (n, n));
* softmax and log_softmax of zero-size and 0-d input, cross_entropy of an empty batch (NaN,
  as PyTorch's mean over no rows).

Each: forward against a plain oracle, a float64 gradient check where there is an element to
check, and PyTorch's values and gradients where it is installed. Warnings are errors here:
an empty input must not divide by zero on the way.
"""
import math

import numpy
import pytest

import minigrad.functional as F
from minigrad import Tensor, nn
from minigrad.gradcheck import gradcheck
from minigrad.ops import linalg, loss

pytestmark = pytest.mark.filterwarnings("error")
TOLERANCE = 1e-7


def make(shape, seed):
    return numpy.random.default_rng(seed).uniform(-2, 2, size=shape)


def optional_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_values_and_grads(fn, *arrays, gy):
    """PyTorch's output and input gradients of ``fn`` for upstream gradient ``gy``."""
    torch = optional_torch()
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(gy))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def our_values_and_grads(fn, *arrays, gy):
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(gy)
    return out.numpy(), [t.grad for t in tensors]


def assert_same_as_torch(ours_fn, torch_fn, *arrays, rtol=1e-13):
    """Ours against PyTorch (skipped without it): values and gradients, float64, random gy."""
    if optional_torch() is None:
        return
    out = ours_fn(*[Tensor(a) for a in arrays])
    gy = numpy.random.default_rng(99).standard_normal(out.shape)
    ours, our_grads = our_values_and_grads(ours_fn, *arrays, gy=gy)
    theirs, their_grads = torch_values_and_grads(torch_fn, *arrays, gy=gy)
    assert ours.shape == theirs.shape
    numpy.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-14)
    for g, t in zip(our_grads, their_grads):
        assert g.shape == t.shape
        numpy.testing.assert_allclose(g, t, rtol=rtol, atol=1e-14)


# --- linear on (*, in) ----------------------------------------------------------------------------
# PyTorch's sample_inputs_linear: batch shapes [], [0], [8], [2, 3] for (in, out) = (3, 4) and (8, 8),
# and a 5-D input (2, 1, 2, 1, 2) with W (4, 2)
LINEAR_CASES = [(batch, features) for batch in [(), (0,), (8,), (2, 3)] for features in [(3, 4), (8, 8)]]
LINEAR_CASES += [((2, 1, 2, 1), (2, 4))]


def naive_linear(x, W, b):
    """y[..., o] = sum_i x[..., i] W[o, i] + b[o], one output row per row of x."""
    rows = x.reshape(-1, x.shape[-1])
    out = numpy.array([[math.fsum(float(r[i]) * float(W[o, i]) for i in range(W.shape[1]))
                        + (0.0 if b is None else float(b[o])) for o in range(W.shape[0])] for r in rows])
    return out.reshape(x.shape[:-1] + (W.shape[0],))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch, features", LINEAR_CASES, ids=str)
def test_linear_takes_any_number_of_leading_axes(batch, features, bias):
    (n_in, n_out), seed = features, len(batch)
    x, W, b = make(batch + (n_in,), seed), make((n_out, n_in), seed + 1), make((n_out,), seed + 2)
    inputs = (x, W, b) if bias else (x, W)
    expected = naive_linear(x, W, b if bias else None)
    out = F.linear(*[Tensor(a) for a in inputs])
    assert out.shape == batch + (n_out,)
    numpy.testing.assert_allclose(out.numpy(), expected, rtol=1e-14, atol=1e-14)
    assert gradcheck(F.linear, *inputs, tolerance=TOLERANCE).passed
    assert gradcheck((linalg.linear_forward, linalg.linear_backward), *inputs, tolerance=TOLERANCE).passed
    torch = optional_torch()
    if torch is not None:
        assert_same_as_torch(F.linear, torch.nn.functional.linear, *inputs)


def test_linear_of_an_empty_batch_gives_zero_weight_gradients():
    x, W, b = (Tensor(a, requires_grad=True) for a in (numpy.zeros((0, 3)), make((4, 3), 0), make((4,), 1)))
    out = F.linear(x, W, b)
    assert out.shape == (0, 4)
    out.sum().backward()
    assert x.grad.shape == (0, 3)
    assert W.grad.tolist() == numpy.zeros((4, 3)).tolist() and b.grad.tolist() == [0.0] * 4


# --- a 1-tuple kernel, stride or padding -----------------------------------------------------------
def conv(x, W, **params):
    return F.conv2d(x, W, **params)


# op: (our function, PyTorch's name, the inputs' shapes, parameters as ints, the same as 1-tuples)
WINDOWED = {
    "conv2d": (conv, "conv2d", [(2, 3, 7, 6), (4, 3, 3, 3)], dict(stride=2, padding=1),
               dict(stride=(2,), padding=(1,))),
    "max_pool2d": (F.max_pool2d, "max_pool2d", [(2, 3, 7, 6)], dict(kernel_size=3, stride=2, padding=1),
                   dict(kernel_size=(3,), stride=(2,), padding=(1,))),
    "avg_pool2d": (F.avg_pool2d, "avg_pool2d", [(2, 3, 7, 6)], dict(kernel_size=3, stride=2, padding=1),
                   dict(kernel_size=(3,), stride=(2,), padding=(1,))),
    # PyTorch's sample_inputs_avgpool2d: ((2, 3, 9, 9), (3, 3), (1, 1), (1,), ceil_mode=True, count_include_pad=False)
    "avg_pool2d, OpInfo sample": (F.avg_pool2d, "avg_pool2d", [(2, 3, 9, 9)],
                                  dict(kernel_size=3, stride=1, padding=1, ceil_mode=True, count_include_pad=False),
                                  dict(kernel_size=(3, 3), stride=(1, 1), padding=(1,), ceil_mode=True,
                                       count_include_pad=False)),
}


def distinct(shape, seed):
    """Shuffled distinct values: no ties for max pooling (its gradient has a kink at a tie)."""
    return numpy.random.default_rng(seed).permutation(numpy.linspace(-1, 1, math.prod(shape))).reshape(shape)


@pytest.mark.parametrize("name", WINDOWED)
def test_a_one_tuple_means_the_same_on_both_axes(kernel_set, name):
    fn, _, shapes, as_ints, as_one_tuples = WINDOWED[name]
    arrays = [distinct(shape, seed) for seed, shape in enumerate(shapes)]
    expected = fn(*[Tensor(a) for a in arrays], **as_ints).numpy()
    out = fn(*[Tensor(a) for a in arrays], **as_one_tuples)
    numpy.testing.assert_array_equal(out.numpy(), expected, strict=True)
    as_lists = {k: list(v) if isinstance(v, tuple) else v for k, v in as_one_tuples.items()}
    numpy.testing.assert_array_equal(fn(*[Tensor(a) for a in arrays], **as_lists).numpy(), expected)
    assert gradcheck(lambda *t: fn(*t, **as_one_tuples), *arrays, tolerance=TOLERANCE).passed


@pytest.mark.parametrize("name", WINDOWED)
def test_one_tuples_match_torch(name):
    torch = optional_torch()
    if torch is None:
        pytest.skip("PyTorch is not installed")
    fn, torch_name, shapes, _, as_one_tuples = WINDOWED[name]
    arrays = [distinct(shape, seed) for seed, shape in enumerate(shapes)]
    assert_same_as_torch(lambda *t: fn(*t, **as_one_tuples),
                         lambda *t: getattr(torch.nn.functional, torch_name)(*t, **as_one_tuples), *arrays)


def test_layers_take_one_tuples():
    layer = nn.Conv2d(3, 4, kernel_size=(3,), stride=(2,), padding=(1,), rng=0)
    assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 3), (2, 2), (1, 1))
    assert layer(Tensor(numpy.zeros((1, 3, 8, 8), dtype=numpy.float32))).shape == (1, 4, 4, 4)


@pytest.mark.parametrize("value", [(), (1, 2, 3), [1, 2, 3], (1.0,), (True,)], ids=repr)
def test_other_lengths_and_types_are_still_refused(value):
    x = Tensor(numpy.zeros((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"padding must be an int or a pair of ints, got .* \(a 1-tuple "
                                         r"\(n,\) means \(n, n\)\)"):
        F.max_pool2d(x, 3, padding=value)


# --- softmax and log_softmax: zero-size and 0-d input ------------------------------------------
# PyTorch's sample_inputs_softmax_variant (S = 5, M = 10), with the zero-size (S, 0, 0) and the 0-d
# cases, plus more zero-size shapes along and across the axis
SOFTMAX_CASES = [((5,), 0), ((5, 5), 0), ((5, 5), 1), ((5, 5), -1), ((5, 10, 5), 2), ((5, 0, 0), -1),
                 ((), 0), ((), -1), ((0, 4), -1), ((0, 4), 0), ((3, 0), -1), ((3, 0), 0), ((2, 0, 3), 1)]


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", SOFTMAX_CASES, ids=str)
def test_softmax_takes_opinfo_samples(name, shape, axis):
    x = make(shape, 3)
    fn = lambda t: getattr(F, name)(t, axis=axis)                       # noqa: E731
    out = fn(Tensor(x, requires_grad=True))
    assert out.shape == x.shape and out.dtype == x.dtype
    if x.size:
        # a plain oracle: p_i = e^(x_i) / sum_j e^(x_j) along the axis (a 0-d x is one element)
        e = numpy.exp(x - x.max(axis=None if x.ndim == 0 else axis, keepdims=True))
        p = e / e.sum(axis=None if x.ndim == 0 else axis, keepdims=True)
        numpy.testing.assert_allclose(out.numpy(), p if name == "softmax" else numpy.log(p), rtol=1e-12,
                                      atol=1e-15)
        assert gradcheck(fn, x, tolerance=TOLERANCE).passed
    else:
        out.backward(numpy.zeros(shape))                               # an empty gradient, no error
    torch = optional_torch()
    if torch is not None:
        assert_same_as_torch(fn, lambda t: getattr(torch, name)(t, dim=axis), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_raw_softmax_pairs_take_zero_size_input(name):
    forward, backward = getattr(loss, f"{name}_forward"), getattr(loss, f"{name}_backward")
    for shape in [(3, 0), (0, 3), (0,)]:
        y, cache = forward(numpy.zeros(shape, dtype=numpy.float32), axis=-1)
        (gx,) = backward(numpy.zeros(shape, dtype=numpy.float32), cache)
        assert y.shape == gx.shape == shape and y.dtype == gx.dtype == numpy.float32


def test_a_0d_axis_out_of_range_is_still_refused():
    with pytest.raises(ValueError, match=r"softmax: axis 1 is out of range for shape \(\)"):
        F.softmax(Tensor(numpy.float64(1.0)), axis=1)


# --- cross_entropy of an empty batch ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("classes", [4, 0])
def test_cross_entropy_of_an_empty_batch_is_nan_as_in_torch(dtype, classes):
    logits = Tensor(numpy.zeros((0, classes), dtype=dtype), requires_grad=True)
    labels = numpy.zeros(0, dtype=numpy.int64)
    value = F.cross_entropy(logits, labels)
    assert value.shape == () and value.dtype == dtype and math.isnan(value.item())
    value.backward()
    assert logits.grad.shape == (0, classes) and logits.grad.dtype == dtype
    torch = optional_torch()
    if torch is not None:
        theirs = torch.tensor(numpy.zeros((0, classes), dtype=dtype), requires_grad=True)
        expected = torch.nn.functional.cross_entropy(theirs, torch.tensor(labels))
        expected.backward()
        assert math.isnan(expected.item()) and theirs.grad.shape == logits.grad.shape


def test_cross_entropy_empty_batch_on_the_raw_pair():
    value, cache = loss.cross_entropy_forward(numpy.zeros((0, 3)), labels=numpy.zeros(0, dtype=int))
    assert math.isnan(float(value))
    (gx,) = loss.cross_entropy_backward(numpy.float64(1.0), cache)
    assert gx.shape == (0, 3)
