"""Local response normalization on every kernel set: loops over channels as the oracle, float64
gradient checks with a LARGE alpha (so that a window one channel too short or too
long shows), even and odd sizes, one channel, fewer channels than the window."""
import functools

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import backend, kernels, nn
from minigrad.gradcheck import gradcheck
from minigrad.ops.lrn import lrn_backward, lrn_forward

from conftest import KERNEL_SETS, skip_without_twin


def window(c, channels, size):
    """Channels c - size//2 ... c + (size-1)//2 that exist (PyTorch's window)."""
    return range(max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1))


def naive_lrn(x, size, alpha, beta, k):
    out = numpy.empty_like(x)
    for c in range(x.shape[1]):
        total = sum(x[:, j] ** 2 for j in window(c, x.shape[1], size))
        out[:, c] = x[:, c] / (k + alpha / size * total) ** beta
    return out


def naive_lrn_backward(gy, x, size, alpha, beta, k):
    """ga_j = sum_c gy_c db_c/da_j with db_c/da_j from the docstring of ops/lrn.py."""
    channels = x.shape[1]
    s = numpy.stack([k + alpha / size * sum(x[:, j] ** 2 for j in window(c, channels, size))
                     for c in range(channels)], axis=1)
    gx = numpy.zeros_like(x)
    for c in range(channels):
        gx[:, c] += gy[:, c] * s[:, c] ** -beta
        for j in window(c, channels, size):
            gx[:, j] -= gy[:, c] * 2 * alpha * beta / size * x[:, c] * x[:, j] * s[:, c] ** (-beta - 1)
    return gx


SIZES = [1, 2, 3, 4, 5, 6]
CHANNELS = [1, 3, 8]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("alpha", [1e-4, 1.0, 5.0])
def test_forward_and_backward_match_channel_loops(xp, kernel_set, size, channels, alpha):
    rng = numpy.random.default_rng(size * 10 + channels)
    x = rng.standard_normal((2, channels, 3, 4))
    gy = rng.standard_normal(x.shape)
    out, cache = lrn_forward(xp.asarray(x), size=size, alpha=alpha, beta=0.75, k=1.0)
    numpy.testing.assert_allclose(backend.to_numpy(out), naive_lrn(x, size, alpha, 0.75, 1.0), rtol=1e-12)
    (gx,) = lrn_backward(xp.asarray(gy), cache)
    numpy.testing.assert_allclose(backend.to_numpy(gx), naive_lrn_backward(gy, x, size, alpha, 0.75, 1.0),
                                  rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", [1, 3, 7])
def test_gradcheck_pair_large_alpha(kernel_set, size, channels):
    rng = numpy.random.default_rng(size + 100 * channels)
    x = rng.standard_normal((2, channels, 2, 3))
    forward = functools.partial(lrn_forward, size=size, alpha=1.0, beta=0.75, k=2.0)
    report = gradcheck((forward, lrn_backward), x, tolerance=1e-7)
    assert report.max_rel_error < 1e-7


@pytest.mark.parametrize("beta,k", [(0.75, 1.0), (0.5, 2.0), (1.5, 0.5)])
def test_gradcheck_through_tensor_api(kernel_set, beta, k):
    x = numpy.random.default_rng(3).standard_normal((2, 6, 3, 3))
    report = gradcheck(lambda t: F.local_response_norm(t, size=5, alpha=2.0, beta=beta, k=k), x,
                       tolerance=1e-7)
    assert report.max_rel_error < 1e-7


def test_module_gradcheck_and_float32_kept():
    layer = nn.LocalResponseNorm(size=3, alpha=1.0, beta=0.75, k=1.0)
    x = numpy.random.default_rng(4).standard_normal((1, 4, 2, 2))
    assert gradcheck(layer, x, tolerance=1e-7).passed
    assert layer(mg.tensor(x.astype(numpy.float32))).dtype == numpy.float32


@pytest.mark.parametrize("kernel_set_name", KERNEL_SETS)
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), channels=st.integers(1, 9), h=st.integers(1, 4), size=st.integers(1, 7),
       alpha=st.sampled_from([1e-4, 0.1, 1.0, 10.0]), beta=st.sampled_from([0.5, 0.75, 1.0]),
       k=st.sampled_from([0.5, 1.0, 2.0]), seed=st.integers(0, 2**16))
def test_property_matches_loops_and_shrinks(kernel_set_name, n, channels, h, size, alpha, beta, k, seed):
    x = numpy.random.default_rng(seed).standard_normal((n, channels, h, h)) * 3
    skip_without_twin(kernel_set_name)
    with kernels.use(kernel_set_name):
        out, _ = lrn_forward(x, size=size, alpha=alpha, beta=beta, k=k)
    numpy.testing.assert_allclose(out, naive_lrn(x, size, alpha, beta, k), rtol=1e-12)
    # s >= k, so |b| <= |a| / k^beta, and the sign never changes
    assert numpy.all(numpy.abs(out) <= numpy.abs(x) * k ** -beta * (1 + 1e-12))
    assert numpy.all(numpy.sign(out) == numpy.sign(x))


@pytest.mark.parametrize("size", [2, 3, 4, 5])
@pytest.mark.parametrize("channels", [1, 3, 10])
def test_matches_torch_forward_and_backward(kernel_set, size, channels):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(size * channels)
    x = rng.standard_normal((2, channels, 3, 3))
    gy = rng.standard_normal(x.shape)
    out, cache = lrn_forward(x, size=size, alpha=1.0, beta=0.75, k=1.0)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.local_response_norm(tx, size, alpha=1.0, beta=0.75, k=1.0)
    ty.backward(torch.tensor(gy))
    numpy.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(lrn_backward(gy, cache)[0], tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_googlenet_defaults_match_torch_in_float32(kernel_set):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(5).standard_normal((2, 64, 7, 7)).astype(numpy.float32) * 20
    ours = F.local_response_norm(mg.tensor(x)).numpy()
    theirs = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)(torch.tensor(x)).numpy()
    assert ours.dtype == numpy.float32
    numpy.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# A window reaching past every channel covers all of them, whatever its size: a huge size
# must work (it was a MemoryError on the numpy set and an int32 OverflowError on the cuda set).
WIDE_CHANNELS = 4
WIDE_SIZES = {"C": WIDE_CHANNELS, "2C-1": 2 * WIDE_CHANNELS - 1, "2C+1": 2 * WIDE_CHANNELS + 1,
              "10**9": 10**9, "2**31": 2**31, "10**12": 10**12}


def wide_case(size):
    """x, gy and alpha = 2 * size (alpha / size = 2: a strong normalization, so that a channel
    missing from a window shows)."""
    rng = numpy.random.default_rng(7)
    x = rng.standard_normal((2, WIDE_CHANNELS, 3, 3))
    return x, rng.standard_normal(x.shape), 2.0 * size


@pytest.mark.parametrize("size", WIDE_SIZES.values(), ids=WIDE_SIZES.keys())
def test_a_window_wider_than_the_channels_matches_channel_loops(kernel_set, size):
    x, gy, alpha = wide_case(size)
    out, cache = lrn_forward(x, size=size, alpha=alpha, beta=0.75, k=1.0)
    numpy.testing.assert_allclose(out, naive_lrn(x, size, alpha, 0.75, 1.0), rtol=1e-12)
    (gx,) = lrn_backward(gy, cache)
    numpy.testing.assert_allclose(gx, naive_lrn_backward(gy, x, size, alpha, 0.75, 1.0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", WIDE_SIZES.values(), ids=WIDE_SIZES.keys())
def test_a_window_wider_than_the_channels_matches_torch(kernel_set, size):
    """PyTorch pads the channels by size // 2, so a huge size is beyond it; its window of
    2C - 1 channels, with the same alpha / size, already holds every channel."""
    torch = pytest.importorskip("torch")
    x, gy, alpha = wide_case(size)
    torch_size = min(size, 2 * WIDE_CHANNELS - 1)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.local_response_norm(tx, torch_size, alpha=alpha / size * torch_size, beta=0.75, k=1.0)
    ty.backward(torch.tensor(gy))
    out, cache = lrn_forward(x, size=size, alpha=alpha, beta=0.75, k=1.0)
    numpy.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(lrn_backward(gy, cache)[0], tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad,match", [
    (dict(x=numpy.ones(5)), r"local_response_norm: .*shape \(N, C, \.\.\.\), got shape \(5,\)"),
    (dict(x=numpy.ones((1, 3, 2, 2), dtype=numpy.int64)), r"floating-point.*dtype int64"),
    (dict(size=0), r"size must be a positive integer, got 0"),
    (dict(k=0.0), r"k > 0 and alpha >= 0.*k=0.0"),
])
def test_bad_input_names_the_op(bad, match):
    args = dict(x=numpy.ones((1, 3, 2, 2)), size=5, alpha=1e-4, beta=0.75, k=1.0)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        F.local_response_norm(args.pop("x"), **args)


def test_module_error_names_the_layer():
    with pytest.raises(ValueError, match=r"LocalResponseNorm\(5, alpha=0.0001, beta=0.75, k=1.0\): "
                                         r"local_response_norm: .*got shape \(4,\)"):
        nn.LocalResponseNorm()(mg.tensor(numpy.ones(4)))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_the_papers_power_by_square_roots_is_the_power_to_four_ulp(dtype):
    """The numpy set takes s^-0.75 as 1 / (sqrt(s) * sqrt(sqrt(s))) (fast without AVX-512):
    within 4 units in the last place of the power, over the normalizer's whole range s >= k
    (here from just above 0 to 1e30; an overflowed s gives 0, as the power does); any other
    beta is NumPy's power itself."""
    vectorized = kernels.vectorized
    s = numpy.concatenate([numpy.geomspace(1e-6, 1e30, 20001), numpy.linspace(1, 3, 20001)]).astype(dtype)
    exact = numpy.power(s.astype(numpy.longdouble), -0.75).astype(dtype)     # in long double, rounded
    out, scratch = numpy.empty_like(s), numpy.empty_like(s)
    got = vectorized._negative_power(s, 0.75, out, scratch)
    assert got is out and got.dtype == dtype
    numpy.testing.assert_array_max_ulp(got, exact, maxulp=4)
    infinite = numpy.array([numpy.inf], dtype=dtype)
    with numpy.errstate(all="raise"):
        assert vectorized._negative_power(infinite, 0.75, numpy.empty_like(infinite), numpy.empty_like(infinite)) == 0
    other = vectorized._negative_power(s, 0.6, out, scratch)
    numpy.testing.assert_array_equal(other, numpy.power(s, dtype(-0.6)))
