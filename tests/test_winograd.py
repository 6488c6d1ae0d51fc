"""Winograd's F(2x2, 3x3) (minigrad/kernels/winograd.py), the numpy set's way for 3x3
convolutions with stride 1 and padding 1: each transform against its definition written as
plain loops over the tiles, each backward piece as the exact adjoint of its forward piece
(<T a, b> = <a, T^T b>), and the convolution it makes against the direct one, including
what comes out for NaN and infinity. tests/test_conv.py holds the numpy set (Winograd on its
shapes of >= 100 pixels) to the naive loops and to finite differences like every other set."""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigrad import parallel
from minigrad.geometry import window
from minigrad.kernels import reference, vectorized, winograd

B_T, A_T = np.array(winograd.B_T, dtype=float), np.array(winograd.A_T, dtype=float)
G = winograd.G


def padded_batch_last(x):
    """x (N, C, H, W) -> (C, H_pad, W_pad, N), padded by one on top and left and by zeros to
    2 * tiles + 2 rows and columns: the rows and columns the tiles read."""
    n, c, h, w = x.shape
    th, tw = winograd.tiles_of(h), winograd.tiles_of(w)
    x_pad = np.zeros((c, 2 * th + 2, 2 * tw + 2, n), dtype=x.dtype)
    x_pad[:, 1:h + 1, 1:w + 1] = x.transpose(1, 2, 3, 0)
    return x_pad


def tile_loops_input(x):
    """V[a, b, c, t, s, n] = (B^T d B)[a, b], d the 4x4 tile at rows 2t.., columns 2s.."""
    x_pad = padded_batch_last(x)
    n, c, h, w = x.shape
    th, tw = winograd.tiles_of(h), winograd.tiles_of(w)
    v = np.zeros((4, 4, c, th, tw, n))
    for ch in range(c):
        for t in range(th):
            for s in range(tw):
                for image in range(n):
                    d = x_pad[ch, 2 * t:2 * t + 4, 2 * s:2 * s + 4, image]
                    v[:, :, ch, t, s, image] = B_T @ d @ B_T.T
    return v.reshape(16, c, -1)


def test_the_filter_transform_is_g_g_gt_for_every_filter():
    w = np.random.default_rng(0).standard_normal((3, 2, 3, 3))
    u = winograd.filter_transform(w)
    for o in range(3):
        for c in range(2):
            np.testing.assert_allclose(u[:, o, c].reshape(4, 4), G @ w[o, c] @ G.T, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 2, 5, 7), (3, 1, 1, 1), (1, 1, 2, 3)])
def test_the_input_transform_is_bt_d_b_for_every_tile(shape):
    x = np.random.default_rng(1).standard_normal(shape)
    np.testing.assert_allclose(winograd.input_transform(x), tile_loops_input(x), rtol=1e-14, atol=1e-14)


def test_the_output_transform_is_at_m_a_for_every_tile():
    m = np.random.default_rng(2).standard_normal((16, 3, 5))
    pixels = winograd.output_transform(m)
    for o in range(3):
        for tile in range(5):
            np.testing.assert_allclose(pixels[:, :, o, tile], A_T @ m[:, o, tile].reshape(4, 4) @ A_T.T,
                                       rtol=1e-14, atol=1e-14)


def test_one_row_gives_the_two_outputs_of_a_three_tap_filter_from_four_products():
    """The module docstring's example, in one dimension: A^T [(G g) * (B^T d)] = the direct
    y0 = d0 g0 + d1 g1 + d2 g2 and y1 = d1 g0 + d2 g1 + d3 g2."""
    d, g = np.array([1.0, -2.0, 3.5, 0.25]), np.array([0.5, 2.0, -1.0])
    products = (G @ g) * (B_T @ d)
    assert products.shape == (4,)
    np.testing.assert_allclose(A_T @ products, [d[0:3] @ g, d[1:4] @ g], rtol=1e-15)


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (1, 2, 5, 7), (2, 1, 1, 1)])
def test_every_backward_piece_is_the_adjoint_of_its_forward_piece(shape):
    """<T a, b> = <a, T^T b> for the input, output and filter transforms: the backward of the
    convolution is the exact transpose of its forward (up to rounding)."""
    rng = np.random.default_rng(3)
    n, c, h, w = shape
    tiles = winograd.tiles_of(h) * winograd.tiles_of(w) * n
    x, gv = rng.standard_normal(shape), rng.standard_normal((16, c, tiles))
    gx = winograd.input_gradient(gv, shape)
    assert gx.shape == shape
    np.testing.assert_allclose(np.vdot(winograd.input_transform(x), gv), np.vdot(x, gx), rtol=1e-12)
    m, gp = rng.standard_normal((16, 3, tiles)), rng.standard_normal((2, 2, 3, tiles))
    np.testing.assert_allclose(np.vdot(winograd.output_transform(m), gp),
                               np.vdot(m, winograd.output_gradient(gp)), rtol=1e-12)
    weight, gu = rng.standard_normal((3, c, 3, 3)), rng.standard_normal((16, 3, c))
    np.testing.assert_allclose(np.vdot(winograd.filter_transform(weight), gu),
                               np.vdot(weight, winograd.filter_gradient(gu)), rtol=1e-12)


def conv(kernel_set, x, weight, bias, relu=True):
    win = window(x.shape[2:], 3, 1, 1)
    return kernel_set.conv2d_forward(x, weight, bias, win, 1, relu)


@pytest.mark.parametrize("size", [(10, 10), (9, 12), (11, 13), (28, 28)])
def test_the_numpy_set_takes_the_winograd_way_on_large_enough_maps_and_agrees_with_the_reference(size):
    rng = np.random.default_rng(4)
    x, weight, bias = rng.standard_normal((2, 5, *size)), rng.standard_normal((6, 5, 3, 3)), rng.standard_normal(6)
    y, cache = conv(vectorized, x, weight, bias)
    assert isinstance(cache, vectorized.WinogradConv2dCache)
    y_ref, cache_ref = conv(reference, x, weight, bias)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    for got, want in zip(vectorized.conv2d_backward(gy, cache), reference.conv2d_backward(gy, cache_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size, kernel, stride, padding, groups", [
    ((9, 11), 3, 1, 1, 1),            # 99 pixels: below WINOGRAD_MIN_PIXELS
    ((12, 12), 3, 2, 1, 1),           # stride 2
    ((12, 12), 3, 1, 0, 1),           # no padding
    ((12, 12), 5, 1, 2, 1),           # 5x5
    ((12, 12), 3, 1, 1, 2),           # groups
])
def test_other_convolutions_take_the_direct_way(size, kernel, stride, padding, groups):
    rng = np.random.default_rng(5)
    x, weight = rng.standard_normal((2, 4, *size)), rng.standard_normal((4, 4 // groups, kernel, kernel))
    _, cache = vectorized.conv2d_forward(x, weight, None, window(size, kernel, stride, padding), groups)
    assert isinstance(cache, vectorized.Conv2dCache)


def test_float32_stays_within_a_few_units_of_rounding_of_the_direct_product(monkeypatch):
    """At GoogLeNet's inception 3a 3x3 (96 -> 128 channels, 28x28 maps): the two ways differ by
    a few 1e-7 of the largest output, as two float32 sums of 864 products may."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 96, 28, 28)).astype(np.float32)
    weight = (rng.standard_normal((128, 96, 3, 3)) * 0.05).astype(np.float32)
    y64, _ = conv(reference, x.astype(float), weight.astype(float), None, relu=False)
    y_winograd, _ = conv(vectorized, x, weight, None, relu=False)
    monkeypatch.setattr(vectorized, "WINOGRAD_MIN_PIXELS", 10 ** 9)
    y_direct, _ = conv(vectorized, x, weight, None, relu=False)
    scale = np.abs(y64).max()
    direct_error = np.abs(y_direct - y64).max() / scale
    winograd_error = np.abs(y_winograd - y64).max() / scale
    assert winograd_error < 2e-6
    assert winograd_error < 8 * direct_error


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["x", "weight", "gy"])
def test_special_values_come_out_as_the_direct_product_gives_them(monkeypatch, special, where):
    """An infinity meets itself with both signs in the transforms (inf - inf = NaN where the
    direct sum keeps inf): a result that is not finite is made again the direct way."""
    rng = np.random.default_rng(7)
    x, weight, bias = rng.standard_normal((2, 3, 10, 10)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gy = rng.standard_normal((2, 4, 10, 10))
    {"x": x, "weight": weight, "gy": gy}[where][0, 1, 2, 1] = special
    results = {}
    for name, least in (("winograd", 100), ("direct", 10 ** 9)):
        monkeypatch.setattr(vectorized, "WINOGRAD_MIN_PIXELS", least)
        with np.errstate(all="ignore"):
            y, cache = conv(vectorized, x, weight, bias, relu=False)
            results[name] = (y, *vectorized.conv2d_backward(gy, cache))
    for got, want in zip(results["winograd"], results["direct"]):
        finite = np.isfinite(want)
        np.testing.assert_array_equal(np.isfinite(got), finite)
        np.testing.assert_array_equal(got[~finite], want[~finite])      # NaN where NaN, +-inf where +-inf
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12)
    assert not all(np.isfinite(a).all() for a in results["direct"])


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 5), c=st.integers(1, 4), h=st.integers(10, 17), w=st.integers(10, 17),
       threads=st.integers(2, 5))
def test_every_thread_count_gives_the_same_bits(n, c, h, w, threads):
    rng = np.random.default_rng(n * 100 + c)
    x, weight = rng.standard_normal((n, c, h, w)).astype(np.float32), rng.standard_normal((3, c, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((n, 3, h, w)).astype(np.float32)
    outputs = []
    for count in (1, threads):
        with parallel.threads(count), mock.patch.object(parallel, "MIN_CHUNK_NUMBERS", 1):
            y, cache = conv(vectorized, x, weight, None)
            outputs.append((y, *vectorized.conv2d_backward(gy, cache)[:2]))
    for one, many in zip(*outputs):
        np.testing.assert_array_equal(one, many)
