"""Float32 op cases and how far two correct float32 runs of each may differ.

test_gpu.py runs each case on a GPU and on the CPU; test_kernel_sets.py runs the same
comparison on the CPU between each fast kernel set and the reference set, so that the
bounds below are checked where no GPU is at hand.

Every output is a sum: a convolution's y sums C·KH·KW products, its gW N·OH·OW, an average
pool a window. Two programs that add the terms in other orders round differently, by at
most ``minigrad.tolerance``'s bound: gamma_n times the sum of the terms' magnitudes, with n
the most roundings any term goes through (Higham, Lemma 3.1 and eq. 3.5). For a linear op the
magnitudes are the op itself run on absolute values in float64 (``conv(|x|, |W|) + |b|``).
A max pool's y is exact (a maximum rounds nothing); its gx sums the gradients of the windows
that chose an element. A ReLU fused into a convolution keeps the convolution's bounds
(|max(a, 0) - max(b, 0)| <= |a - b|), with an upstream gradient that is 0 where the exact
output lies within its bound of 0 (``upstream_clear_of_the_kink``).
"""
from collections import namedtuple

import numpy

from minigrad import kernels
from minigrad.backend import to_numpy
from minigrad.ops import conv, lrn, pool
from minigrad.tolerance import assert_sum_close, sum_tolerance

EXACT = "exact"


def float32(*shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)


def _abs64(a):
    return None if a is None else numpy.abs(to_numpy(a).astype(numpy.float64))


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _windows_covering(pool_params):
    """The most windows of a pool that hold one input element: ceil(K/S) along each axis."""
    kernel = pool_params["kernel_size"]
    (kh, kw), (sh, sw) = _pair(kernel), _pair(pool_params.get("stride") or kernel)
    return -(-kh // sh) * -(-kw // sw)


def conv_bounds(inputs, params, gy):
    """y sums C/groups·KH·KW products (and the bias), gx F/groups·KH·KW, gW and gb N·OH·OW."""
    x, W, b = (_abs64(a) for a in inputs)
    with kernels.use("reference"):
        y_magnitude, cache = conv.conv2d_forward(x, W, b, **params)
    gx, gW, gb = conv.conv2d_backward(_abs64(gy), cache)
    f, c_per_group, kh, kw = W.shape
    n, _, oh, ow = y_magnitude.shape
    pixels = n * oh * ow                      # output pixels of all the images
    return [(y_magnitude, c_per_group * kh * kw + (b is not None)), (gx, f // params.get("groups", 1) * kh * kw),
            (gW, pixels), None if gb is None else (gb, pixels)]


def max_pool_bounds(inputs, params, gy):
    """y exact; gx sums the gradients of at most ceil(K/S)^2 windows."""
    with kernels.use("reference"):       # x itself in float64: the same maxima as in float32
        _, cache = pool.max_pool2d_forward(to_numpy(inputs[0]).astype(numpy.float64), **params)
    (gx,) = pool.max_pool2d_backward(_abs64(gy), cache)
    return [EXACT, (gx, _windows_covering(params))]


def avg_pool_bounds(inputs, params, gy):
    """y sums a window, then divides (one more rounding); gx sums at most ceil(K/S)^2 gy/divisor."""
    with kernels.use("reference"):
        y_magnitude, cache = pool.avg_pool2d_forward(_abs64(inputs[0]), **params)
    (gx,) = pool.avg_pool2d_backward(_abs64(gy), cache)
    kh, kw = _pair(params["kernel_size"])
    return [(y_magnitude, kh * kw + 1), (gx, _windows_covering(params) + 1)]


# LRN's terms go through pow, which is not one rounding: glibc's powf is within about 1 ulp,
# CUDA's within a few (its Programming Guide's table of maximum ulp errors); 8 ulp allowed,
# counted as 16 roundings (one ulp is at most 2u).
POW_ROUNDINGS = 16


def lrn_bounds(inputs, params, gy):
    """Counting the roundings of each term, for 0 < beta <= 1 (s^-beta then passes on at most
    s's relative error), with n = size:
    s = k + alpha/n * (a sum of n squares): all terms positive, m = n + 3 roundings (the
    squares, the sum, alpha/n and its product, + k), relative to s itself;
    y = x * s^-beta: m + POW_ROUNDINGS + 1, relative to |y|;
    gx_j = gy_j s_j^-beta - 2 alpha beta/n * x_j * sum_c gy_c y_c / s_c: each term of the sum
    carries y_c's and s_c's errors, the product and quotient, the constant (3 roundings), its
    two products, the sum of n and the difference: 2m + POW_ROUNDINGS + n + 8, relative to
    |gy_j| s_j^-beta + 2 alpha beta/n |x_j| sum_c |gy_c y_c| / s_c."""
    size, alpha, beta = params["size"], params["alpha"], params["beta"]
    assert 0 < beta <= 1, "the count assumes 0 < beta <= 1"
    x = to_numpy(inputs[0]).astype(numpy.float64)
    with kernels.use("reference"):
        y, (_, reference_cache) = lrn.lrn_forward(x, **params)
    s = reference_cache.s
    through = numpy.zeros_like(x)                           # sum over the c that have j as a neighbour
    g_y_over_s = _abs64(gy) * numpy.abs(y) / s
    for c in range(x.shape[1]):               # c's neighbours: c - size//2 ... c + (size-1)//2
        through[:, max(c - size // 2, 0):c + (size - 1) // 2 + 1] += g_y_over_s[:, c:c + 1]
    gx_magnitude = _abs64(gy) * s ** -beta + 2 * alpha * beta / size * numpy.abs(x) * through
    m = size + 3
    return [(numpy.abs(y), m + POW_ROUNDINGS + 1), (gx_magnitude, 2 * m + POW_ROUNDINGS + size + 8)]


def upstream_clear_of_the_kink(inputs, params, shape):
    """The upstream gradient of a convolution + ReLU case: ``upstream(shape)``, but 0 wherever
    the exact (float64) convolution lies within twice its float32 bound of 0. There two correct
    runs may round to opposite sides of 0 and so disagree on the ReLU's mask: a difference of
    a whole term, which no rounding bound covers; elsewhere both pass or both stop gy."""
    exact_inputs = [None if a is None else a.astype(numpy.float64) for a in inputs]
    with kernels.use("reference"):
        y, _ = conv.conv2d_forward(*exact_inputs, **params)
    (magnitude, terms), *_ = conv_bounds(inputs, params, numpy.zeros(y.shape))
    gy = upstream(shape)
    gy[numpy.abs(y) <= 2 * sum_tolerance(magnitude, terms, numpy.float32)] = 0
    return gy


Case = namedtuple("Case", "forward backward inputs params bounds upstream", defaults=(None,))


def conv_relu_case(inputs, params):
    """A convolution with the ReLU fused in: conv2d's bounds, gy clear of the ReLU's kink."""
    return Case(conv.conv2d_relu_forward, conv.conv2d_relu_backward, inputs, params, conv_bounds,
                lambda shape: upstream_clear_of_the_kink(inputs, params, shape))


CASES = {
    "conv 3x3 pad 1": Case(conv.conv2d_forward, conv.conv2d_backward,
                           (float32(4, 16, 14, 14), float32(32, 16, 3, 3, seed=1), float32(32, seed=2)),
                           dict(padding=1), conv_bounds),
    "conv 7x7/2 pad 3": Case(conv.conv2d_forward, conv.conv2d_backward,
                             (float32(2, 3, 32, 32), float32(8, 3, 7, 7, seed=1), float32(8, seed=2)),
                             dict(stride=2, padding=3), conv_bounds),
    "conv 1x1": Case(conv.conv2d_forward, conv.conv2d_backward,
                     (float32(4, 64, 7, 7), float32(16, 64, 1, 1, seed=1), None), {}, conv_bounds),
    "conv 3x3/2 groups 2": Case(conv.conv2d_forward, conv.conv2d_backward,
                                (float32(2, 8, 9, 9), float32(6, 4, 3, 3, seed=1), float32(6, seed=2)),
                                dict(stride=2, groups=2), conv_bounds),
    "conv 3x3 pad 1 + relu": conv_relu_case((float32(4, 16, 14, 14), float32(32, 16, 3, 3, seed=1),
                                             float32(32, seed=2)), dict(padding=1)),
    "conv 1x1 + relu": conv_relu_case((float32(4, 64, 7, 7), float32(16, 64, 1, 1, seed=1), float32(16, seed=2)),
                                      {}),
    "max pool 3x3/2 ceil": Case(pool.max_pool2d_forward, pool.max_pool2d_backward, (float32(4, 8, 15, 15),),
                                dict(kernel_size=3, stride=2, ceil_mode=True), max_pool_bounds),
    "max pool 3x3/1 pad 1": Case(pool.max_pool2d_forward, pool.max_pool2d_backward, (float32(4, 8, 14, 14),),
                                 dict(kernel_size=3, stride=1, padding=1), max_pool_bounds),
    "avg pool 5x5/3 ceil": Case(pool.avg_pool2d_forward, pool.avg_pool2d_backward, (float32(4, 8, 14, 14),),
                                dict(kernel_size=5, stride=3, ceil_mode=True), avg_pool_bounds),
    "avg pool 3x3/1 pad 1": Case(pool.avg_pool2d_forward, pool.avg_pool2d_backward, (float32(4, 8, 14, 14),),
                                 dict(kernel_size=3, stride=1, padding=1), avg_pool_bounds),
    "lrn 5": Case(lrn.lrn_forward, lrn.lrn_backward, (float32(4, 16, 7, 7),),
                  dict(size=5, alpha=1e-4, beta=0.75, k=1.0), lrn_bounds),
    "lrn 3, strong": Case(lrn.lrn_forward, lrn.lrn_backward, (float32(4, 16, 7, 7),),
                          dict(size=3, alpha=2.0, beta=0.75, k=1.0), lrn_bounds),
}


def upstream(shape):
    return float32(*shape, seed=3)


def run(name, kernel_set, xp=numpy, dtype=numpy.float32):
    """(y, grads, gy) of case ``name`` on ``kernel_set``, its inputs moved by ``xp.asarray``
    (and cast to ``dtype``: float64 gives the same values, nearly exact results); y and grads
    as host arrays."""
    case = CASES[name]
    with kernels.use(kernel_set):
        y, cache = case.forward(*[None if a is None else xp.asarray(a.astype(dtype)) for a in case.inputs],
                                **case.params)
    gy = (case.upstream or upstream)(y.shape).astype(dtype)
    grads = case.backward(xp.asarray(gy), cache)
    return to_numpy(y), [None if g is None else to_numpy(g) for g in grads], gy


def assert_runs_agree(name, ours, theirs):
    """``ours`` and ``theirs``: two ``run``s of case ``name`` in float32; every output within
    the bound of its sums (or equal, where exact)."""
    case = CASES[name]
    y, grads, gy = ours
    y_theirs, grads_theirs, _ = theirs
    labels = ["y"] + [f"gradient {i}" for i in range(len(grads))]
    for label, a, b, bound in zip(labels, [y, *grads], [y_theirs, *grads_theirs],
                                  case.bounds(case.inputs, case.params, gy)):
        if b is None:
            assert a is None, f"{name}: {label} is not None"
            continue
        assert a.dtype == b.dtype == numpy.float32 and a.shape == b.shape, f"{name}: {label}"
        if bound == EXACT:
            numpy.testing.assert_array_equal(a, b, err_msg=f"{name}: {label}")
        else:
            magnitude, terms = bound
            assert_sum_close(a, b, magnitude, terms, numpy.float32, name=f"{name}: {label}")
