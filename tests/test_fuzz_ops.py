"""Fuzzing the ops with special values: +-inf, NaN, -0.0, denormals and 1e38 through
every op's forward and backward, on every kernel set, against PyTorch in float64.

Where PyTorch gives a number (or inf, or NaN) we give the same, at the same places.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from minigrad import kernels
from minigrad.ops import conv, elementwise, linalg, loss, lrn, pool, reduce

from conftest import KERNEL_SETS, skip_without_twin

torch = pytest.importorskip("torch")
tF = torch.nn.functional

SPECIAL = [np.inf, -np.inf, np.nan, -0.0, 0.0, 5e-324, 1e-310, 1e38, -1e38]
values = st.one_of(st.sampled_from(SPECIAL), st.floats(-3, 3))


def special_arrays(shape):
    return arrays(np.float64, shape, elements=values)


def assert_same(ours, theirs, what, scale=None):
    """inf and NaN at the same places; finite values equal to rtol 1e-9, where values below
    1e-200 count as zero (PyTorch's convolution kernels flush denormal inputs to zero; IEEE
    arithmetic, ours, does not). For a sum of terms, ``scale`` is the sum of their absolute
    values: two summation orders may differ by a few ulps of it (1e76 - 1e76 + 1 is 0 or 1)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), theirs.detach().numpy()
    assert ours.shape == theirs.shape, what
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{what}: NaN places")
    np.testing.assert_array_equal(np.where(np.isinf(ours), ours, 0), np.where(np.isinf(theirs), theirs, 0),
                                  err_msg=f"{what}: infinities")
    finite = np.isfinite(ours)
    bound = 1e-9 * np.abs(theirs) + 1e-200
    if scale is not None:
        bound = bound + 1e-12 * scale.detach().numpy()
    error = np.abs(ours - theirs)
    bad = finite & ~(error <= bound)
    assert not bad.any(), f"{what}: {ours[bad][:3]} != {theirs[bad][:3]} at {np.argwhere(bad)[:3].tolist()}"


def compare(ours_forward, ours_backward, torch_fn, inputs, what, seed=0, sums=False, normalized=False):
    """Forward and backward (random finite upstream gradient) of the pair and of PyTorch.
    ``sums``: the op is a sum of products, linear in each input (conv, matmul, pools);
    ``normalized``: its values are differences of normalized terms (batch norm), compared
    within a few ulps of each array's largest finite value plus the upstream gradient's size."""
    with np.errstate(all="ignore"):        # overflow and inf - inf are what is being tested
        out, cache = ours_forward(*inputs)
    tensors = [torch.tensor(a, requires_grad=True) for a in inputs]
    t_out = torch_fn(*tensors)
    gy = np.random.default_rng(seed).standard_normal(np.shape(out))
    t_grads = torch.autograd.grad(t_out, tensors, torch.tensor(gy), allow_unused=True)
    scales = [None] * (len(inputs) + 1)
    if normalized:     # errors relative to the largest value and to the upstream gradient's size
        size = float(np.abs(gy).sum())
        scales = [torch.full_like(t, float(torch.nan_to_num(t.abs(), posinf=0.0).max()) + size)
                  if t is not None else None for t in (t_out, *t_grads)]
    if sums:       # the same op on absolute values adds up the absolute values of the terms
        magnitudes = [torch.tensor(np.abs(a), requires_grad=True) for a in inputs]
        t_abs = torch_fn(*magnitudes)
        scales = [t_abs, *torch.autograd.grad(t_abs, magnitudes, torch.tensor(np.abs(gy)), allow_unused=True)]
    assert_same(out, t_out, f"{what}: forward", scales[0])
    with np.errstate(all="ignore"):
        grads = ours_backward(gy, cache)
    for i, (g, t_g) in enumerate(zip(grads, t_grads)):
        if t_g is None:
            t_g = torch.zeros_like(tensors[i])
        assert_same(g, t_g, f"{what}: gradient of input {i}", scales[i + 1])


FUZZ = settings(max_examples=25, deadline=None)    # 400 each found nothing more (2026-12-01)
UNARY = {
    "exp": (elementwise.exp_forward, elementwise.exp_backward, torch.exp),
    "log": (elementwise.log_forward, elementwise.log_backward, torch.log),
    "tanh": (elementwise.tanh_forward, elementwise.tanh_backward, torch.tanh),
    "sigmoid": (elementwise.sigmoid_forward, elementwise.sigmoid_backward, torch.sigmoid),
    "relu": (elementwise.relu_forward, elementwise.relu_backward, torch.relu),
    "neg": (elementwise.neg_forward, elementwise.neg_backward, torch.neg),
}
BINARY = {
    "add": (elementwise.add_forward, elementwise.add_backward, torch.add),
    "sub": (elementwise.sub_forward, elementwise.sub_backward, torch.sub),
    "mul": (elementwise.mul_forward, elementwise.mul_backward, torch.mul),
    "div": (elementwise.div_forward, elementwise.div_backward, torch.div),
}


@pytest.mark.parametrize("name", UNARY)
@FUZZ
@given(x=special_arrays((3, 4)))
def test_unary(name, x):
    compare(*UNARY[name], (x,), name)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.5, 0])
@FUZZ
@given(x=special_arrays((3, 4)))
def test_pow(exponent, x):
    if exponent == 0.5:
        # PyTorch takes x ** 0.5 as sqrt(x): sqrt(-inf) = NaN and sqrt(-0.0) = -0.0 (gradient
        # -inf), where C99's pow (NumPy's, ours) gives +inf and +0.0; neither is compared
        x = np.where((x == -np.inf) | ((x == 0) & np.signbit(x)), 1.0, x)
    compare(lambda x: elementwise.pow_forward(x, exponent), elementwise.pow_backward,
            lambda t: torch.pow(t, exponent), (x,), f"pow {exponent}")


@pytest.mark.parametrize("name", BINARY)
@FUZZ
@given(a=special_arrays((3, 4)), b=special_arrays((4,)))
def test_binary(name, a, b):
    compare(*BINARY[name], (a, b), name)


@FUZZ
@given(x=special_arrays((2, 3, 4)), axis=st.sampled_from([0, 1, 2, (0, 2), None]))
def test_reductions(x, axis):
    dims = tuple(range(3)) if axis is None else axis
    compare(lambda x: reduce.sum_forward(x, axis), reduce.sum_backward, lambda t: t.sum(dims), (x,), "sum",
            sums=True)
    compare(lambda x: reduce.mean_forward(x, axis), reduce.mean_backward, lambda t: t.mean(dims), (x,), "mean",
            sums=True)
    compare(lambda x: reduce.max_forward(x, axis), reduce.max_backward, lambda t: max_of_each_slice(t, dims),
            (x,), "max")


def max_of_each_slice(t, dims):
    """PyTorch's ``t.max()`` (ties share the gradient, a slice's NaNs take it: our documented rule)
    over each slice along ``dims``; ``amax`` would give NaN gradients to a slice holding NaN."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    kept = [d for d in range(t.ndim) if d not in dims]
    rows = t.permute(kept + list(dims)).reshape(-1, int(np.prod([t.shape[d] for d in dims])))
    return torch.stack([row.max() for row in rows]).reshape([t.shape[d] for d in kept])


@FUZZ
@given(x=special_arrays((3, 5)), labels=arrays(np.int64, 3, elements=st.integers(0, 4)))
def test_softmax_family(x, labels):
    compare(lambda x: loss.softmax_forward(x, 1), loss.softmax_backward, lambda t: t.softmax(1), (x,), "softmax")
    compare(lambda x: loss.log_softmax_forward(x, 1), loss.log_softmax_backward, lambda t: t.log_softmax(1),
            (x,), "log_softmax")
    compare(lambda x: loss.cross_entropy_forward(x, labels), loss.cross_entropy_backward,
            lambda t: tF.cross_entropy(t, torch.tensor(labels)), (x,), "cross_entropy")


@FUZZ
@given(a=special_arrays((3, 4)), b=special_arrays((4, 2)), bias=special_arrays((2,)))
def test_matmul_and_linear(a, b, bias):
    compare(linalg.matmul_forward, linalg.matmul_backward, torch.matmul, (a, b), "matmul", sums=True)
    compare(linalg.linear_forward, linalg.linear_backward, tF.linear, (a, np.ascontiguousarray(b.T), bias),
            "linear", sums=True)


@pytest.mark.parametrize("name", KERNEL_SETS)
@FUZZ
@given(x=special_arrays((2, 2, 5, 5)), W=special_arrays((3, 2, 3, 3)), b=special_arrays((3,)))
def test_conv2d(name, x, W, b):
    skip_without_twin(name)
    with kernels.use(name):
        compare(lambda x, W, b: conv.conv2d_forward(x, W, b, stride=2, padding=1), conv.conv2d_backward,
                lambda x, W, b: tF.conv2d(x, W, b, stride=2, padding=1), (x, W, b), f"conv2d on {name}",
                sums=True)


@pytest.mark.parametrize("name", KERNEL_SETS)
@FUZZ
@given(x=special_arrays((2, 2, 5, 6)), ceil_mode=st.booleans(), padding=st.integers(0, 1))
def test_pooling(name, x, ceil_mode, padding):
    params = dict(kernel_size=3, stride=2, padding=padding, ceil_mode=ceil_mode)
    skip_without_twin(name)
    with kernels.use(name):
        compare(lambda x: pool.max_pool2d_forward(x, **params), pool.max_pool2d_backward,
                lambda t: tF.max_pool2d(t, **params), (x,), f"max_pool2d on {name}")
        compare(lambda x: pool.avg_pool2d_forward(x, **params), pool.avg_pool2d_backward,
                lambda t: tF.avg_pool2d(t, **params), (x,), f"avg_pool2d on {name}", sums=True)
        compare(pool.global_avg_pool2d_forward, pool.global_avg_pool2d_backward,
                lambda t: t.mean((2, 3), keepdim=True), (x,), "global_avg_pool2d", sums=True)


@pytest.mark.parametrize("name", KERNEL_SETS)
@FUZZ
@given(x=special_arrays((2, 6, 2, 2)))
def test_lrn(name, x):
    skip_without_twin(name)
    with kernels.use(name):
        compare(lambda x: lrn.lrn_forward(x, 5, 1e-4, 0.75, 1.0), lrn.lrn_backward,
                lambda t: tF.local_response_norm(t, 5, 1e-4, 0.75, 1.0), (x,), f"lrn on {name}")


@pytest.mark.parametrize("name", KERNEL_SETS)
@FUZZ
@given(x=special_arrays((2, 4, 5, 5)), W=special_arrays((4, 2, 3, 3)))
def test_grouped_conv2d(name, x, W):
    skip_without_twin(name)
    with kernels.use(name):
        compare(lambda x, W: conv.conv2d_forward(x, W, None, padding=1, groups=2), conv.conv2d_backward,
                lambda x, W: tF.conv2d(x, W, None, padding=1, groups=2), (x, W), f"grouped conv2d on {name}",
                sums=True)


@FUZZ
@given(x=special_arrays((3, 2, 2, 2)), gamma=arrays(np.float64, 2, elements=st.floats(-3, 3)),
       beta=arrays(np.float64, 2, elements=st.floats(-3, 3)))
def test_batch_norm(x, gamma, beta):
    # gamma and beta finite: an infinite scale times a normalized value that rounding made 0 or
    # 1e-17 gives NaN or inf depending on the last bit of the mean, in PyTorch and here alike.
    from minigrad.ops import batchnorm
    # No 1e38 in x: for a channel of values near 1e38 PyTorch's variance loses every digit (a
    # constant channel of 1e38 normalizes to -4.9e61 there; our two-pass variance gives the exact 0).
    x = np.where(np.abs(x) == 1e38, np.sign(x) * 3.0, x)
    compare(lambda x, g, b: batchnorm.batch_norm_forward(x, g, b, training=True), batchnorm.batch_norm_backward,
            lambda x, g, b: tF.batch_norm(x, None, None, g, b, training=True), (x, gamma, beta), "batch_norm",
            normalized=True)
    # Eval mode on finite values: PyTorch folds it into x * (gamma / sigma) + (beta - mean * gamma / sigma),
    # which turns an infinite x or gamma into inf - inf = NaN where gamma (x - mean) / sigma + beta is inf.
    x, gamma, beta = (np.nan_to_num(a, nan=1.0, posinf=2.0, neginf=-2.0) for a in (x, gamma, beta))
    running_mean, running_var = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    compare(lambda x, g, b: batchnorm.batch_norm_forward(x, g, b, running_mean, running_var, training=False),
            batchnorm.batch_norm_backward,
            lambda x, g, b: tF.batch_norm(x, torch.tensor(running_mean), torch.tensor(running_var), g, b,
                                          training=False), (x, gamma, beta), "batch_norm in eval mode",
            normalized=True)
