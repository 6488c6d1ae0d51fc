"""The kernel set called "cuda": hand-written CUDA C kernels (the .cu files beside this
file), launched through CuPy on a GPU.

On NumPy arrays this set does not need a GPU: it runs the same kernels on the CPU,
through their twin (the same source compiled by g++, run one simulated thread after
another by ``launch.py``). That is how the tests check the kernels' index arithmetic on a
machine without a GPU; it is slow (one C call per simulated thread), for testing only.

The same functions and shapes as ``reference.py`` and ``vectorized.py``. Convolution is
im2col (a kernel) and batched matrix products (cuBLAS, through CuPy; a grouped
convolution adds a group axis to the batch), its backward col2im in gather form; pooling
and LRN are one kernel each way. Every kernel is written one thread per output element
(or per input element for a backward, gathering what it receives: no atomics), in a
grid-stride loop (``grid.h``), so any grid covers the work.

Layouts: arrays go in and come out as contiguous (N, C, H, W) arrays; the columns
of a convolution are (N, C*KH*KW, OH*OW), as in ``reference.py``. Each forward's
cache is a small named tuple of what its backward needs.
"""
from typing import Any, NamedTuple, Tuple

import numpy

from ...backend import get_array_module
from ...geometry import Window
from .launch import launcher_for


def _int32(*values):
    return [numpy.int32(v) for v in values]


def _geometry(x_shape, win):
    """The int32 arguments N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW of every window kernel."""
    n, c, h, w = x_shape
    return _int32(n, c, h, w, *win.kernel, *win.stride, *win.padding, *win.out)


def _real(array, value):
    """``value`` as a scalar of ``array``'s dtype (the kernels' `real`)."""
    return array.dtype.type(value)


# --- convolution -----------------------------------------------------------------------------
def im2col(x, win):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW), by the im2col kernel."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = win.kernel, win.out
    cols = xp.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    launcher_for(x).run("im2col.cu", "im2col", cols.size, x, cols, *_geometry(x.shape, win))
    return cols


def col2im(cols, x_shape, win):
    """The adjoint of ``im2col``, gathering: cols (N, C*KH*KW, OH*OW) -> (N, C, H, W) = ``x_shape``."""
    xp = get_array_module(cols)
    cols = xp.ascontiguousarray(cols)
    gx = xp.empty(x_shape, dtype=cols.dtype)
    launcher_for(cols).run("im2col.cu", "col2im", gx.size, cols, gx, *_geometry(x_shape, win))
    return gx


def _by_group(a, groups):
    """(..., groups*R, P) -> (..., groups, R, P): row block k of each matrix is group k's (a
    view of a contiguous array; see minigrad/ops/conv.py for why the blocks line up)."""
    return a.reshape(a.shape[:-2] + (groups, -1, a.shape[-1]))


def _group_rows(a, groups):
    """(N, groups*R, P) -> (groups, R, N*P): group k's rows with every image's columns side
    by side (a copy), so that one product per group sums over the images too."""
    n, rows, p = a.shape
    return _by_group(a, groups).transpose(1, 2, 0, 3).reshape(groups, rows // groups, n * p)


class Conv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from the forward."""
    x_shape: Tuple[int, ...]   # (N, C, H, W)
    weight: Any                # (C_out, C/groups, KH, KW)
    cols: Any                  # (N, C*KH*KW, OH*OW); for a pointwise window x itself, (N, C, H*W)
    win: Window
    groups: int
    has_bias: bool


def conv2d_forward(x, weight, bias, win, groups=1):
    """y[n] = weight2 @ cols[n] (+ bias), group by group: one batched product over the images
    and the groups; a 1x1 convolution needs no im2col."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    c_out = weight.shape[0]
    cols = xp.ascontiguousarray(x).reshape(n, c, h * w) if win.is_pointwise else im2col(x, win)
    weight3 = weight.reshape(groups, c_out // groups, -1)          # (G, C_out/G, K/G)
    y = xp.matmul(weight3, _by_group(cols, groups))                   # (N, G, C_out/G, P)
    y = y.reshape(n, c_out, -1)
    if bias is not None:
        y += bias.reshape(c_out, 1)
    return y.reshape((n, c_out) + win.out), Conv2dCache(x.shape, weight, cols, win, groups, bias is not None)


def conv2d_backward(gy, cache):
    """Per group: gweight = the sum over n of gy[n] @ cols[n]^T (one product, images side by
    side); gcols = weight2^T @ gy; gx = col2im(gcols)."""
    xp = get_array_module(gy)
    x_shape, weight, cols, win, groups, has_bias = cache
    c_out = weight.shape[0]
    gy3 = xp.ascontiguousarray(gy).reshape(gy.shape[0], c_out, -1)   # (N, C_out, OH*OW)
    gweight = xp.matmul(_group_rows(gy3, groups), _group_rows(cols, groups).transpose(0, 2, 1))
    weight3 = weight.reshape(groups, c_out // groups, -1)          # (G, C_out/G, K/G)
    gcols = xp.matmul(weight3.transpose(0, 2, 1), _by_group(gy3, groups)).reshape(cols.shape)
    gx = gcols.reshape(x_shape) if win.is_pointwise else col2im(gcols, x_shape, win)
    return gx, gweight.reshape(weight.shape), gy3.sum(axis=(0, 2)) if has_bias else None


# --- pooling ---------------------------------------------------------------------------------------
class MaxPool2dCache(NamedTuple):
    """What ``max_pool2d_backward`` needs from the forward."""
    argmax: Any                # (N, C, OH, OW): the offset i*KW + j of each window's maximum
    x_shape: Tuple[int, ...]   # (N, C, H, W)
    win: Window


SMALL_WINDOW = 256             # a window of up to this many elements: one-byte argmax offsets


def _argmax_kernel(kernel, win):
    """pool.cu's ``kernel`` for this window and its offsets' dtype: uint8, or int32 (the
    ``_wide`` kernel) for windows of more than SMALL_WINDOW elements."""
    if win.kernel[0] * win.kernel[1] <= SMALL_WINDOW:
        return kernel, numpy.uint8
    return kernel + "_wide", numpy.int32


def max_pool2d_forward(x, win):
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    kernel, offset_type = _argmax_kernel("max_pool_forward", win)
    argmax = xp.empty(y.shape, dtype=offset_type)
    launcher_for(x).run("pool.cu", kernel, y.size, x, y, argmax, *_geometry(x.shape, win))
    return y, MaxPool2dCache(argmax, x.shape, win)


def max_pool2d_backward(gy, cache):
    kernel, _ = _argmax_kernel("max_pool_backward", cache.win)
    return _pool_backward(kernel, gy, cache.argmax, cache.x_shape, cache.win)


class AvgPool2dCache(NamedTuple):
    """What ``avg_pool2d_backward`` needs from the forward."""
    divisor: Any               # (OH, OW), contiguous
    x_shape: Tuple[int, ...]   # (N, C, H, W)
    win: Window


def avg_pool2d_forward(x, win, divisor):
    """``divisor`` (OH, OW), in x's dtype on x's device."""
    xp = get_array_module(x)
    x, divisor = xp.ascontiguousarray(x), xp.ascontiguousarray(divisor)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    launcher_for(x).run("pool.cu", "avg_pool_forward", y.size, x, divisor, y, *_geometry(x.shape, win))
    return y, AvgPool2dCache(divisor, x.shape, win)


def avg_pool2d_backward(gy, cache):
    return _pool_backward("avg_pool_backward", gy, cache.divisor, cache.x_shape, cache.win)


def _pool_backward(kernel, gy, per_window, x_shape, win):
    """gx (N, C, H, W) by pool.cu's backward ``kernel``, from gy and what the forward kept
    per window (max pooling's argmax, average pooling's divisor)."""
    xp = get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    gx = xp.empty(x_shape, dtype=gy.dtype)
    launcher_for(gy).run("pool.cu", kernel, gx.size, gy, per_window, gx, *_geometry(x_shape, win))
    return gx


# --- local response normalization ------------------------------------------------------------------
def _neighbour_reach(size, channels):
    """The int32 (before, after) of lrn.cu: channel c's neighbours run from c - size//2 to
    c + (size-1)//2, each reach at most C - 1 (further reaches no more channels; so any
    size fits in int32)."""
    reach = max(channels - 1, 0)
    return _int32(min(size // 2, reach), min((size - 1) // 2, reach))


class LrnCache(NamedTuple):
    """What ``lrn_backward`` needs from the forward (both arrays contiguous, x's shape): x and
    the normalizer s, not the output (the backward computes y = x s^-beta again)."""
    x: Any
    s: Any                     # the normalizer s
    size: int
    alpha: float
    beta: float


def lrn_forward(x, size, alpha, beta, k):
    """x (N, C, ...): one thread per pixel walks the channels."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c = x.shape[:2]
    pixels = x.size // max(n * c, 1)
    s, y = xp.empty_like(x), xp.empty_like(x)
    launcher_for(x).run("lrn.cu", "lrn_forward", n * pixels, x, s, y, *_int32(n, c, pixels),
                        *_neighbour_reach(size, c), _real(x, alpha / size), _real(x, beta), _real(x, k))
    return y, LrnCache(x, s, size, alpha, beta)


def lrn_backward(gy, cache):
    xp = get_array_module(gy)
    x, s, size, alpha, beta = cache
    gy = xp.ascontiguousarray(gy)
    n, c = x.shape[:2]
    pixels = x.size // max(n * c, 1)
    gx = xp.empty_like(x)
    launcher_for(x).run("lrn.cu", "lrn_backward", n * pixels, x, s, gy, gx, *_int32(n, c, pixels),
                        *_neighbour_reach(size, c), _real(x, alpha / size), _real(x, beta))
    return gx
