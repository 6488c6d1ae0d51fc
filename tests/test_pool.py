"""Max, average and global average pooling on every kernel set: against loops, finite
differences and PyTorch (the loops are the reference set's oracle; see also test_kernel_sets.py)."""
import functools
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minigrad.functional as F
from minigrad import kernels
from minigrad import Tensor
from minigrad.backend import to_numpy
from minigrad.gradcheck import gradcheck
from minigrad.ops import pool
from minigrad.geometry import conv_output_size, window
from minigrad.tolerance import assert_sum_close

from conftest import KERNEL_SETS, skip_without_twin


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(size, k, s, p, ceil_mode):
    """Written out again here (not imported), PyTorch's pooling_output_shape."""
    extra = s - 1 if ceil_mode else 0
    out = (size + 2 * p - k + extra) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def window_bounds(index, size, k, s, p):
    """First and one-past-last row of a window: clipped to the padded input, then to the input."""
    start = index * s - p
    end_padded = min(start + k, size + p)
    return start, end_padded, max(start, 0), min(start + k, size)


def naive_pools(x, kernel, stride, padding, ceil_mode, count_include_pad, gy):
    """Max pool, avg pool and both backward passes with plain loops, one window at a time."""
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    n_, c_, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph, ceil_mode), out_size(w, kw, sw, pw, ceil_mode)
    y_max, y_avg = np.zeros((n_, c_, oh, ow)), np.zeros((n_, c_, oh, ow))
    g_max, g_avg = np.zeros_like(x), np.zeros_like(x)
    for n, c, i, j in itertools.product(range(n_), range(c_), range(oh), range(ow)):
        r0, r1_pad, r0_in, r1_in = window_bounds(i, h, kh, sh, ph)
        c0, c1_pad, c0_in, c1_in = window_bounds(j, w, kw, sw, pw)
        region = x[n, c, r0_in:r1_in, c0_in:c1_in]
        y_max[n, c, i, j] = region.max()            # padding (-inf) never wins
        r, q = np.unravel_index(np.argmax(region), region.shape)
        g_max[n, c, r0_in + r, c0_in + q] += gy[n, c, i, j]
        divisor = (r1_pad - r0) * (c1_pad - c0) if count_include_pad else region.size
        y_avg[n, c, i, j] = region.sum() / divisor
        g_avg[n, c, r0_in:r1_in, c0_in:c1_in] += gy[n, c, i, j] / divisor
    return y_max, g_max, y_avg, g_avg


def tie_free(rng, shape):
    """Distinct values 2**-8 apart, shuffled (Chainer's trick): no ties, no kinks."""
    size = int(np.prod(shape))
    return rng.permutation(np.arange(size, dtype=np.float64) - size / 2).reshape(shape) * 2.0 ** -8


EDGE_CASES = [  # (N, C, H, W, kernel, stride, padding, ceil_mode)
    (2, 3, 7, 7, 3, 2, 0, True),       # GoogLeNet's overlapping 3x3/2, ceil
    (2, 3, 8, 8, 3, 2, 0, True),       # ceil adds a partial window
    (2, 2, 7, 6, 3, 2, 1, False),      # padding, odd/even sizes
    (1, 2, 7, 7, 3, 2, 1, True),       # padding + ceil: last window clipped
    (1, 2, 5, 5, 2, 2, 1, True),       # ceil rule drops a window starting in the right padding
    (1, 2, 5, 5, 3, 1, 1, False),      # inception pool branch: 3x3/1 pad 1
    (2, 2, 5, 5, 5, 3, 0, True),       # GoogLeNet aux avg pool 5x5/3, ceil
    (1, 1, 4, 4, 4, 1, 0, False),      # kernel == input: 1x1 output
    (1, 1, 1, 1, 1, 1, 0, False),      # 1x1 map
    (2, 2, 9, 7, (3, 2), (2, 1), (1, 0), True),   # rectangular everything
]


def run_pair(xp, kind, x, gy, kernel, stride, padding, ceil_mode, count_include_pad=True):
    if kind == "max":
        y, cache = pool.max_pool2d_forward(xp.asarray(x), kernel, stride, padding, ceil_mode)
        (gx,) = pool.max_pool2d_backward(xp.asarray(gy), cache)
    else:
        y, cache = pool.avg_pool2d_forward(xp.asarray(x), kernel, stride, padding, ceil_mode, count_include_pad)
        (gx,) = pool.avg_pool2d_backward(xp.asarray(gy), cache)
    return to_numpy(y), to_numpy(gx)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", EDGE_CASES)
def test_forward_and_backward_match_loops(xp, kernel_set, case, count_include_pad):
    n, c, h, w, kernel, stride, padding, ceil_mode = case
    rng = np.random.default_rng(0)
    x = tie_free(rng, (n, c, h, w))
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    gy = rng.standard_normal((n, c, out_size(h, kh, sh, ph, ceil_mode), out_size(w, kw, sw, pw, ceil_mode)))
    y_max, g_max, y_avg, g_avg = naive_pools(x, kernel, stride, padding, ceil_mode, count_include_pad, gy)
    ours = run_pair(xp, "max", x, gy, kernel, stride, padding, ceil_mode)
    np.testing.assert_array_equal(ours[0], y_max)
    np.testing.assert_allclose(ours[1], g_max, rtol=1e-12, atol=1e-12)
    ours = run_pair(xp, "avg", x, gy, kernel, stride, padding, ceil_mode, count_include_pad)
    np.testing.assert_allclose(ours[0], y_avg, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours[1], g_avg, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", EDGE_CASES)
def test_gradcheck_pairs(kernel_set, case):
    n, c, h, w, kernel, stride, padding, ceil_mode = case
    x = tie_free(np.random.default_rng(1), (n, c, h, w))
    max_fwd = functools.partial(pool.max_pool2d_forward, kernel_size=kernel, stride=stride,
                                padding=padding, ceil_mode=ceil_mode)
    worst = gradcheck((max_fwd, pool.max_pool2d_backward), x, tolerance=1e-7).max_rel_error
    for include in (True, False):
        avg_fwd = functools.partial(pool.avg_pool2d_forward, kernel_size=kernel, stride=stride, padding=padding,
                                    ceil_mode=ceil_mode, count_include_pad=include)
        worst = max(worst, gradcheck((avg_fwd, pool.avg_pool2d_backward), x, tolerance=1e-7).max_rel_error)
    assert worst < 1e-7


def test_gradcheck_through_functional(kernel_set):
    x = tie_free(np.random.default_rng(2), (2, 3, 7, 7))
    for fn in (lambda t: F.max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True),
               lambda t: F.avg_pool2d(t, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
               lambda t: F.avg_pool2d(t, (2, 3), padding=(1, 0)),
               F.global_avg_pool2d):
        assert gradcheck(fn, x, tolerance=1e-7).max_rel_error < 1e-7


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", EDGE_CASES)
def test_matches_torch(xp, kernel_set, case, count_include_pad):
    torch = pytest.importorskip("torch")
    n, c, h, w, kernel, stride, padding, ceil_mode = case
    rng = np.random.default_rng(3)
    x = tie_free(rng, (n, c, h, w))
    for kind in ("max", "avg"):
        tx = torch.tensor(x, requires_grad=True)
        if kind == "max":
            ty = torch.nn.functional.max_pool2d(tx, kernel, stride, padding, ceil_mode=ceil_mode)
        else:
            ty = torch.nn.functional.avg_pool2d(tx, kernel, stride, padding, ceil_mode=ceil_mode,
                                                count_include_pad=count_include_pad)
        gy = rng.standard_normal(tuple(ty.shape))
        ty.backward(torch.tensor(gy))
        y, gx = run_pair(xp, kind, x, gy, kernel, stride, padding, ceil_mode, count_include_pad)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@st.composite
def pool_cases(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    assume(kernel[0] <= h + 2 * padding[0] and kernel[1] <= w + 2 * padding[1])
    return (n, c, h, w, kernel, stride, padding, draw(st.booleans()), draw(st.booleans()),
            draw(st.integers(0, 2**31)))


@pytest.mark.parametrize("kernel_set_name", KERNEL_SETS)
@settings(max_examples=40, deadline=None)
@given(pool_cases())
def test_property_loops_and_torch(kernel_set_name, case):
    torch = pytest.importorskip("torch")
    n, c, h, w, kernel, stride, padding, ceil_mode, include, seed = case
    rng = np.random.default_rng(seed)
    x = tie_free(rng, (n, c, h, w))
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    gy = rng.standard_normal((n, c, out_size(h, kh, sh, ph, ceil_mode), out_size(w, kw, sw, pw, ceil_mode)))
    expected = naive_pools(x, kernel, stride, padding, ceil_mode, include, gy)
    skip_without_twin(kernel_set_name)
    with kernels.use(kernel_set_name):
        ours = run_pair(np, "max", x, gy, kernel, stride, padding, ceil_mode) + \
            run_pair(np, "avg", x, gy, kernel, stride, padding, ceil_mode, include)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    tx = torch.tensor(x)
    t_max = torch.nn.functional.max_pool2d(tx, kernel, stride, padding, ceil_mode=ceil_mode)
    t_avg = torch.nn.functional.avg_pool2d(tx, kernel, stride, padding, ceil_mode=ceil_mode,
                                           count_include_pad=include)
    np.testing.assert_array_equal(ours[0], t_max.numpy())
    np.testing.assert_allclose(ours[2], t_avg.numpy(), rtol=1e-12, atol=1e-12)


def test_googlenet_table_sizes():
    # Table 1: 3x3/2 max pools in ceil mode, the final 7x7/1 average pool, the aux 5x5/3 pools
    sizes = [112]
    for _ in range(4):
        sizes.append(conv_output_size(sizes[-1], 3, 2, 0, ceil_mode=True))
    assert sizes == [112, 56, 28, 14, 7]
    assert conv_output_size(112, 3, 2, 0, ceil_mode=False) == 55         # why ceil mode matters
    assert conv_output_size(7, 7, 1, 0) == 1
    assert conv_output_size(14, 5, 3, 0) == 4
    assert conv_output_size(5, 2, 2, 1, ceil_mode=True) == 3      # a 4th window would start in the padding
    x = np.zeros((1, 2, 112, 112), dtype=np.float32)
    for size in (56, 28, 14, 7):
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True).data
        assert x.shape == (1, 2, size, size)
    assert F.avg_pool2d(x, 7, stride=1).shape == (1, 2, 1, 1)
    assert F.avg_pool2d(np.zeros((1, 2, 14, 14)), 5, stride=3).shape == (1, 2, 4, 4)


@pytest.mark.parametrize("case", EDGE_CASES)
def test_each_window_covers_its_input_region_inside_the_padded_size(case):
    _, _, h, w, kernel, stride, padding, ceil_mode = case
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    win = window((h, w), kernel, stride, padding, ceil_mode)
    for i, j in itertools.product(range(win.out[0]), range(win.out[1])):
        *_, first_row, end_row = window_bounds(i, h, kh, sh, ph)
        *_, first_column, end_column = window_bounds(j, w, kw, sw, pw)
        assert win.input_region(i, j) == (slice(first_row, end_row), slice(first_column, end_column))
    # the padded input reaches exactly as far as the padding or the last window, whichever is further
    assert win.padded_size == (max(h + 2 * ph, (win.out[0] - 1) * sh + kh),
                               max(w + 2 * pw, (win.out[1] - 1) * sw + kw))


def test_max_pool_pads_with_minus_infinity(xp, kernel_set):
    x = -1.0 - tie_free(np.random.default_rng(4), (1, 2, 4, 4)) ** 2     # all negative
    y, _ = pool.max_pool2d_forward(xp.asarray(x), 3, 1, 1)
    assert (to_numpy(y) < 0).all()


def test_global_avg_pool(xp):
    """A float32 mean of 20 values may be near 0: held to the bound of a sum of 20 terms and a
    division (minigrad/tolerance.py), scaled by the mean of |x|, not to a relative tolerance."""
    x = np.random.default_rng(5).standard_normal((2, 3, 5, 4)).astype(np.float32)
    y, cache = pool.global_avg_pool2d_forward(xp.asarray(x))
    x64 = x.astype(np.float64)
    assert_sum_close(to_numpy(y), x64.mean(axis=(2, 3), keepdims=True), np.abs(x64).mean(axis=(2, 3), keepdims=True),
                     terms=20 + 1, dtype=np.float32)
    gy = np.random.default_rng(6).standard_normal((2, 3, 1, 1)).astype(np.float32)
    (gx,) = pool.global_avg_pool2d_backward(xp.asarray(gy), cache)
    expected = np.broadcast_to(gy.astype(np.float64) / 20, x.shape)
    assert_sum_close(to_numpy(gx), expected, np.abs(expected), terms=1, dtype=np.float32)   # one division
    assert y.dtype == gx.dtype == np.float32


def test_tensor_api_keeps_float32(kernel_set):
    x = Tensor(np.random.default_rng(6).standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    y = F.max_pool2d(x, 3, 2, ceil_mode=True).sum() + F.avg_pool2d(x, 3, 2, 1).sum()
    y.backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


BAD_INPUTS = [
    ("max_pool2d", (3, 8, 8), dict(kernel_size=2), r"max_pool2d: expected x of shape \(N, C, H, W\), got shape \(3, 8, 8\)"),
    ("avg_pool2d", (1, 3, 4, 4), dict(kernel_size=7), r"avg_pool2d: kernel \(7, 7\) is larger than the padded input \(4, 4\)"),
    ("max_pool2d", (1, 3, 8, 8), dict(kernel_size=3, stride=0), r"max_pool2d: stride must be positive, got \(0, 0\)"),
    ("avg_pool2d", (1, 3, 8, 8), dict(kernel_size=3, padding=-1), r"avg_pool2d: padding must be non-negative"),
    ("max_pool2d", (1, 3, 8, 8), dict(kernel_size=3, padding=2), r"max_pool2d: padding \(2, 2\) must be at most half the kernel \(3, 3\)"),
    ("global_avg_pool2d", (8, 8), dict(), r"global_avg_pool2d: expected x of shape \(N, C, H, W\), got shape \(8, 8\)"),
    ("max_pool2d", (1, 0, 4, 4), dict(kernel_size=2), r"max_pool2d: expected x with at least one image, channel, "
                                                      r"row and column, got shape \(1, 0, 4, 4\)"),
    ("avg_pool2d", (0, 1, 4, 4), dict(kernel_size=2), r"avg_pool2d: expected x with at least one image"),
    ("global_avg_pool2d", (1, 2, 0, 4), dict(), r"global_avg_pool2d: expected x with at least one image"),
]


@pytest.mark.parametrize("name, shape, params, message", BAD_INPUTS)
def test_bad_input_errors_name_the_layer_and_shapes(name, shape, params, message):
    with pytest.raises(ValueError, match=message):
        getattr(F, name)(np.zeros(shape), **params)


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_integer_input_is_rejected(name):
    with pytest.raises(ValueError, match=f"{name}: expected a floating-point x, got dtype int64"):
        getattr(F, name)(np.zeros((1, 1, 4, 4), dtype=np.int64), 2)
