"""The kernel set called "cuda": hand-written CUDA C kernels (the .cu files beside this
file), launched through CuPy on a GPU.

On NumPy arrays this set does not need a GPU: it runs the same kernels on the CPU,
through their twin (the same source compiled by g++, run one simulated thread after
another by ``launch.py``). That is how the tests check the kernels' index arithmetic on a
machine without a GPU; it is slow (one C call per simulated thread), for testing only.

The same functions and shapes as ``reference.py`` and ``vectorized.py``. A convolution is
im2col (a kernel, ``im2col.cu``), then ONE matrix product over the whole batch (per group;
cuBLAS, through ``blas.gemm``), then one kernel (``layout.cu``) that lays the product out
as images with the bias and, when asked, the ReLU that follows; its backward is the same
in reverse, with col2im in gather form. Pooling and LRN are one kernel each way. Every
kernel is written one thread per output element (or per input element for a backward,
gathering what it receives: no atomics), in a grid-stride loop (``grid.h``), so any grid
covers the work.

Layouts: arrays go in and come out as contiguous (N, C, H, W) arrays. Inside a
convolution the columns are (C*KH*KW, N, OH*OW), every image side by side in each row
(the public ``im2col`` hands them out as the (N, C*KH*KW, OH*OW) of every set, a view).
Each forward's cache is a small named tuple of what its backward needs.
"""
from typing import Any, NamedTuple, Tuple

import numpy

from ...backend import get_array_module
from ...geometry import Window
from .blas import gemm
from .launch import images_channels, is_channel_window, launcher_for


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
# ONE matrix product per convolution (per group, for a grouped one), over the whole batch:
#
#     Y (C_out, N*P) = weight2 (C_out, C*KH*KW) @ cols (C*KH*KW, N*P),      P = OH*OW,
#
# where each row of cols holds every image's columns side by side (im2col.cu). One product
# as large as the convolution keeps the GPU busy where a product per image, or a batched
# product that repeats the weight for every image, runs many small ones. A 1x1 convolution
# (stride 1, no padding) needs no im2col: its columns are x itself, channels first.
#
# Y lies channels first, (C_out, N, P); layout.cu's channels_to_images lays it out as images
# (N, C_out, OH, OW), adding the bias and, when the convolution is followed by a ReLU
# (``relu``), applying it: one pass for all three. The backward, with gY the upstream
# gradient channels first (images_to_channels: one pass that also applies the fused ReLU's
# mask, read from the output):
#
#     gweight = gY @ cols^T        the sum over the images is inside the product
#     gcols   = weight2^T @ gY     then col2im (for a 1x1, channels_to_images) -> gx
#     gbias   = gY summed along its rows
#
# Every product goes through blas.gemm. The columns are not kept from the forward to the
# backward: the backward makes them again from x (one memory-bound pass), where keeping
# them would hold about KH*KW copies of every convolution's input from its forward to its
# backward: 4.2 GB of columns for GoogLeNet at batch 128 (224x224), and 2.0 GB more of the
# 1x1 convolutions' channels-first inputs.
def im2col(x, win):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW), as in every kernel set: a view of the
    (C*KH*KW, N, OH*OW) columns the convolution multiplies (``_im2col``)."""
    return _im2col(x, win).transpose(1, 0, 2)


def col2im(cols, x_shape, win):
    """The adjoint of ``im2col``, gathering: cols (N, C*KH*KW, OH*OW) -> (N, C, H, W) = ``x_shape``."""
    return _col2im(get_array_module(cols).ascontiguousarray(cols.transpose(1, 0, 2)), x_shape, win)


def _im2col(x, win):
    """x (N, C, H, W) -> cols (C*KH*KW, N, OH*OW), contiguous, by the im2col kernel."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = win.kernel, win.out
    cols = xp.empty((c * kh * kw, n, oh * ow), dtype=x.dtype)
    launcher_for(x).run("im2col.cu", "im2col", cols.size, x, cols, *_geometry(x.shape, win))
    return cols


def _col2im(cols, x_shape, win):
    """Contiguous cols (C*KH*KW, N, OH*OW) (or that matrix, (C*KH*KW, N*OH*OW)) -> gx ``x_shape``."""
    xp = get_array_module(cols)
    gx = xp.empty(x_shape, dtype=cols.dtype)
    launcher_for(cols).run("im2col.cu", "col2im", gx.size, cols, gx, *_geometry(x_shape, win))
    return gx


def _images_to_channels(a, relu_output=None):
    """(N, C, H, W) -> (C, N*H*W), contiguous; zero where ``relu_output`` (a contiguous array of
    a's shape, or None) is <= 0. By layout.cu's images_to_channels, which reads a window of
    channels of a contiguous array (an Inception branch's gradient) where it lies."""
    xp = get_array_module(a)
    if not is_channel_window(a):
        a = xp.ascontiguousarray(a)
    n, c, h, w = a.shape
    out = xp.empty((c, n * h * w), dtype=a.dtype)
    launcher_for(a).run("layout.cu", "images_to_channels", out.size, a, relu_output, out,
                        *_int32(n, c, h * w, images_channels(a)))
    return out


def _channels_to_images(matrix, bias, relu, shape):
    """(C, N*H*W) -> (N, C, H, W) = ``shape``, plus ``bias`` (C,) unless None, then max(., 0)
    when ``relu``. By layout.cu's channels_to_images."""
    xp = get_array_module(matrix)
    n, c, h, w = shape
    out = xp.empty(shape, dtype=matrix.dtype)
    bias = None if bias is None else xp.ascontiguousarray(bias)
    launcher_for(matrix).run("layout.cu", "channels_to_images", out.size, matrix, bias, out,
                             *_int32(n, c, h * w, relu))
    return out


def _columns(x, win):
    """The right-hand side of the convolution's product: (C*KH*KW, N*OH*OW), images side by side."""
    if win.is_pointwise:
        return _images_to_channels(x)
    return _im2col(x, win).reshape(-1, x.shape[0] * win.out[0] * win.out[1])


def _weight_matrix(weight):
    """weight (C_out, C/groups, KH, KW) -> weight2 (C_out, C/groups*KH*KW), contiguous."""
    return get_array_module(weight).ascontiguousarray(weight).reshape(weight.shape[0], -1)


def _grouped_gemm(a, b, groups, transpose_a=False, transpose_b=False):
    """op(a_k) @ op(b_k) for each group k, stacked: a_k, b_k and the result's block k are row
    block k of a, b and the result (a group's filters, its channels' rows of cols). One product
    in all without groups. a, b contiguous matrices; see minigrad/ops/conv.py for why the
    blocks line up."""
    xp = get_array_module(a)
    rows = a.shape[1] if transpose_a else a.shape[0] // groups
    columns = b.shape[0] // groups if transpose_b else b.shape[1]
    out = xp.empty((groups * rows, columns), dtype=a.dtype)
    for a_k, b_k, out_k in zip(_row_blocks(a, groups), _row_blocks(b, groups), _row_blocks(out, groups)):
        gemm(a_k, b_k, out=out_k, transpose_a=transpose_a, transpose_b=transpose_b)
    return out


def _row_blocks(matrix, groups):
    """(groups*R, P) -> (groups, R, P): row block k is group k's (each a contiguous matrix)."""
    return matrix.reshape(groups, -1, matrix.shape[1])


class Conv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from the forward."""
    x: Any                     # (N, C, H, W): the backward makes the columns again from it
    weight: Any                # (C_out, C/groups, KH, KW)
    win: Window
    groups: int
    has_bias: bool
    relu_output: Any           # y after a fused ReLU (where its gradient passes), else None


def conv2d_forward(x, weight, bias, win, groups=1, relu=False):
    """y = weight2 @ cols (+ bias), ONE product over the whole batch (per group), laid out as
    images by channels_to_images, which applies the ReLU too when ``relu``."""
    n, c_out = x.shape[0], weight.shape[0]
    Y = _grouped_gemm(_weight_matrix(weight), _columns(x, win), groups)       # (C_out, N*OH*OW)
    y = _channels_to_images(Y, bias, relu, (n, c_out) + win.out)
    return y, Conv2dCache(x, weight, win, groups, bias is not None, y if relu else None)


def conv2d_backward(gy, cache, input_grad=True):
    """gweight = gY @ cols^T and gcols = weight2^T @ gY (per group), gx = col2im(gcols),
    gbias = gY's row sums, with gY = gy channels first, masked by a fused ReLU's output;
    gx None, not computed, when ``input_grad`` is False."""
    x, weight, win, groups, has_bias, relu_output = cache
    gY = _images_to_channels(gy, relu_output)                                    # (C_out, N*OH*OW)
    gweight = _grouped_gemm(gY, _columns(x, win), groups, transpose_b=True).reshape(weight.shape)
    gbias = gY.sum(axis=1) if has_bias else None
    if not input_grad:
        return None, gweight, gbias
    gcols = _grouped_gemm(_weight_matrix(weight), gY, groups, transpose_a=True)  # (C*KH*KW, N*OH*OW)
    gx = _channels_to_images(gcols, None, False, x.shape) if win.is_pointwise else _col2im(gcols, x.shape, win)
    return gx, gweight, gbias


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


def max_pool2d_forward(x, win, argmax=True):
    """The kernel finds each window's maximum and its offset in the same pass: without
    ``argmax`` the offsets are dropped (cache None), not skipped."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    kernel, offset_type = _argmax_kernel("max_pool_forward", win)
    offsets = xp.empty(y.shape, dtype=offset_type)
    launcher_for(x).run("pool.cu", kernel, y.size, x, y, offsets, *_geometry(x.shape, win))
    return y, (MaxPool2dCache(offsets, x.shape, win) if argmax else None)


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
