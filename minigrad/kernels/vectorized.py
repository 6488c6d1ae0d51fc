"""The kernel set called "numpy": the fast array code behind convolution, pooling and LRN.

It computes exactly what ``reference.py`` computes (the tests hold it to that),
with the same functions and the same shapes, but arranged for speed: no Python
loop over output positions, every convolution ONE matrix product (on the CPU, the
3x3 ones with stride 1 and padding 1 16 smaller products, by Winograd's F(2x2, 3x3):
``winograd.py``), memory laid out so that NumPy's inner loops run long. Nothing else
here is NumPy-specific: every function takes its array module from its input, so the
same code runs on CuPy arrays (the "generic" GPU path).

What goes in and comes out at this file's edge is an (N, C, H, W) array; the
outputs are often transposed VIEWS of a buffer in another order (see below).
Every op accepts any strided array, so the next op never needs to know.

Shapes use N (batch), C (channels), H, W (input), C_out (output channels, the
filters), KH, KW (kernel), SH, SW (stride), PH, PW (padding), OH, OW (output).
``win`` is a ``minigrad.geometry.Window``: the input size, kernel, stride, padding
and output size of one sliding-window op.

Two tricks carry everything:

* a window VIEW: the KH x KW windows of a padded input are a strided view of
  it (no copy): element [c, i, j, oh, ow, n] = x_pad[c, oh*SH + i, ow*SW + j, n];
* offset loops: for each of the KH*KW kernel offsets (i, j), the elements that
  offset touches in every window form one strided slice
  x_pad[..., i : i + SH*OH : SH, j : j + SW*OW : SW, ...]  of OH x OW pixels.
  A backward pass adds into such slices, one offset at a time. No slice names
  an element twice, so ``+=`` is exact (no ``add.at`` needed).

Memory layout matters as much as the arithmetic. NumPy pays a fixed cost for
each inner loop, which runs over the innermost axis; on GoogLeNet's 14x14 and
7x7 maps (2x2 on 32x32 inputs) an image row is only a few numbers long. So:

* convolution works in (C, H, W, N) order, "batch last" (the layout cuda-convnet
  used): the batch index varies fastest and a window row of all N images is one
  run of OW*N numbers. ``im2col`` and ``col2im`` hand out and take the columns in
  the (N, C*KH*KW, OH*OW) shape every set uses, as a view of that buffer;
* pooling works pixels first, (H, W, N, C) or (H, W, C, N) as its input lies:
  every slice of an offset loop is a run of N*C numbers per pixel;
* LRN works in whatever layout its input has, all its buffers alike;
* a copy from one layout to another goes by blocks that fit in a core's cache, and so
  do the many passes of max pooling (the cache, not the arithmetic, sets their pace).

Every core: the memory-bound work (the copies of im2col and col2im, pooling, LRN, the
bias sums) is cut into chunks of images, channels or rows that ``minigrad.parallel``
runs on several threads at once (NumPy lets go of the interpreter lock in its loops).
A chunk does exactly what the whole does on its part (no sum crosses a chunk's edge),
so every thread count gives the same bits. The matrix products stay whole: BLAS
threads them itself.

The choices below that were made by measuring (one product per convolution, the
per-image 1x1 products, one BLAS call per group, the running argmax, Winograd's way from
WINOGRAD_MIN_PIXELS up) are timed by
``benchmarks/kernel_choices.py``; its last run is in ``benchmarks/kernel_choices.md``.
"""
from typing import Any, NamedTuple, Tuple

import numpy

from .. import parallel
from . import winograd
from ..backend import get_array_module
from ..geometry import Window
from ..ops.elementwise import relu_backward


# --- the two tricks: padding, kernel offsets, the strided window view -------------------------
def _padded(x, win, value):
    """x (H, W, ...) -> a new (H_pad, W_pad, ...) array: x inside a border of ``value`` (0 for
    average pooling, -inf for max pooling)."""
    xp = get_array_module(x)
    (ph, pw), (h, w) = win.padding, win.size
    x_pad = xp.empty(win.padded_size + x.shape[2:], dtype=x.dtype)
    for border in (x_pad[:ph], x_pad[ph + h:], x_pad[:, :pw], x_pad[:, pw + w:]):
        border[...] = value
    x_pad[ph:ph + h, pw:pw + w] = x
    return x_pad


def _unpad(g_pad, win):
    """The (H, W, ...) interior of a padded (H_pad, W_pad, ...) gradient (a view)."""
    (ph, pw), (h, w) = win.padding, win.size
    return g_pad[ph:ph + h, pw:pw + w]


def _offsets(win):
    """Yield (i, j, rows, cols) for each kernel offset (i, j): the pixels [rows, cols]
    of the padded input are the OH x OW pixels that offset sees in every window."""
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


def _strided_window_view(x_pad, win):
    """A strided VIEW (C, KH, KW, OH, OW, N) of the windows of x_pad (C, H_pad, W_pad, N).

    view[c, i, j, oh, ow, n] = x_pad[c, oh*SH + i, ow*SW + j, n]; no data is copied.
    """
    xp = get_array_module(x_pad)
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    c, n = x_pad.shape[0], x_pad.shape[3]
    s_c, s_h, s_w, s_n = x_pad.strides
    return xp.lib.stride_tricks.as_strided(
        x_pad, shape=(c, kh, kw, oh, ow, n), strides=(s_c, s_h, s_w, s_h * sh, s_w * sw, s_n))


# --- im2col and col2im ---------------------------------------------------------------------
def im2col(x, win):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW), as in every kernel set: a view of the
    batch-last columns that the convolution multiplies (``_im2col_batch_last``)."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = win.kernel, win.out
    return _im2col_batch_last(x, win).transpose(5, 0, 1, 2, 3, 4).reshape(n, c * kh * kw, oh * ow)


def col2im(cols, x_shape, win):
    """The adjoint of ``im2col``: cols (N, C*KH*KW, OH*OW) -> gx (N, C, H, W) = ``x_shape``."""
    n, c = x_shape[:2]
    (kh, kw), (oh, ow) = win.kernel, win.out
    return _col2im_batch_last(cols.reshape(n, c, kh, kw, oh, ow).transpose(1, 2, 3, 4, 5, 0), win)


def _im2col_batch_last(x, win):
    """x (N, C, H, W) -> cols (C, KH, KW, OH, OW, N), a new C-contiguous array.

    cols[c, i, j, oh, ow, n] = x_pad[n, c, oh*SH + i, ow*SW + j] (zero padding).
    Reshaped to (C*KH*KW, OH*OW*N) (free: it is contiguous) it is the right-hand
    side of the convolution GEMM  weight (C_out, C*KH*KW) @ cols -> (C_out, OH*OW*N).
    The reduction axis (C, KH, KW) comes first, in weight's order; the batch comes
    last, so that each copied run is OW*N numbers long (see the module docstring).
    Two copies, each split over the threads: x into x_pad by input rows, then the
    windows into cols by output rows.
    """
    xp = get_array_module(x)
    (ph, pw), (h, w) = win.padding, win.size
    x_pad = xp.zeros((x.shape[1],) + win.padded_size + (x.shape[0],), dtype=x.dtype)

    def copy_rows(start, stop):
        x_pad[:, ph + start:ph + stop, pw:pw + w, :] = x[:, :, start:stop].transpose(1, 2, 3, 0)
    parallel.for_chunks("im2col", h, copy_rows, x.size, xp)
    windows = _strided_window_view(x_pad, win)
    cols = xp.empty(windows.shape, dtype=x.dtype)
    target, source = cols, windows
    if xp is numpy and _same_innermost_run(cols, windows):      # runs of N: see _copy_into
        target, source = _runs_as_elements(cols), _runs_as_elements(windows)
    parallel.for_chunks_of("im2col", xp.copyto, target, source, axis=3)     # axis 3: OH
    return cols


def _col2im_batch_last(cols, win):
    """The adjoint of ``_im2col_batch_last``: cols (C, KH, KW, OH, OW, N) -> gx (N, C, H, W).

    Every column entry is added back to the input pixel it was copied from;
    pixels shared by overlapping windows receive the sum. One slice-add per
    kernel offset (i, j), in (C, H, W, N) order; the result is a transposed
    view of that buffer (no copy).
    """
    xp = get_array_module(cols)
    (ph, pw), (h, w) = win.padding, win.size
    g_pad = xp.zeros((cols.shape[0],) + win.padded_size + (cols.shape[-1],), dtype=cols.dtype)

    def add_channels(g_pad, cols):         # channels never mix: each chunk of them on a thread
        for i, j, rows, columns in _offsets(win):
            g_pad[:, rows, columns, :] += cols[:, i, j]
    parallel.for_chunks_of("col2im", add_channels, g_pad, cols)
    return g_pad[:, ph:ph + h, pw:pw + w, :].transpose(3, 0, 1, 2)


# --- convolution -------------------------------------------------------------------------
# Y = weight2 @ cols, one GEMM, with the columns running over (OH, OW, N), batch fastest
# (with groups: one GEMM per group, on row blocks of weight2 and cols, see minigrad/ops/conv.py).
#
# A 1x1 convolution with stride 1 and no padding needs no im2col: each pixel's
# channel vector already is a column, so x itself, channels first, is the column
# matrix. Its columns may also run over (N, H, W) when that is cheaper to read.
#
# Every im2col product is ONE call to BLAS, never one per image: on a busy machine
# each multi-threaded BLAS call may wait for a time slice, and one call waits at most
# once where N calls may wait N times.
# The exception is an ungrouped 1x1 convolution of an ordinary (N, C, H, W) array with maps of
# at least PER_IMAGE_MIN_PIXELS pixels: there, N products weight2 @ x[n] read x where it
# lies, while one product would first need a channels-first copy of x, which costs
# about as much as the product itself when C_out is small (on 7x7 maps the copy wins).
PER_IMAGE_MIN_PIXELS = 100
_BATCH_LAST = (1, 2, 3, 0)    # (N, C, H, W) -> (C, H, W, N): columns run over (H, W, N)
_BATCH_FIRST = (1, 0, 2, 3)   # (N, C, H, W) -> (C, N, H, W): columns run over (N, H, W)


class Conv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from a forward done as one product (per group).

    The columns themselves on a CPU; on a GPU (CuPy arrays: the generic path) x alone, and
    the backward copies the columns again (``_columns``). The columns of a 3x3 convolution
    are 9 times its input, and GoogLeNet's add up to most of what its ops save
    (benchmarks/peak_memory.py): on a GPU that memory is scarce and a copy is cheap; on a
    CPU the copy is a memory-bound pass that costs time (a twentieth of a training step) and
    the memory is there (the step's peak at batch 32: 1.12 times PyTorch's, 1.55 times what
    it was without the kept columns).
    """
    x: Any                     # (N, C, H, W)
    weight: Any                # (C_out, C/groups, KH, KW)
    win: Window
    order: Tuple[int, ...]     # _BATCH_LAST or _BATCH_FIRST: how the columns run over pixels
    groups: int
    has_bias: bool
    relu_output: Any           # y after a fused ReLU (where its gradient passes), else None
    cols: Any                  # the forward's (C*KH*KW, pixels) columns, or None: copy them again


class PerImageConv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from a 1x1 convolution done image by image."""
    x3: Any                    # x seen as (N, C, H*W)
    weight: Any                # (C_out, C, 1, 1)
    has_bias: bool
    relu_output: Any           # y after a fused ReLU, else None


def _channels_first(a, order):
    """(N, C, H, W) -> a (C, pixels) matrix, pixels in ``order``: a view when the memory
    allows, else a copy split over the threads."""
    moved = a.transpose(order)
    if not _one_run(moved.shape[1:], moved.strides[1:]):
        moved = _copy(moved)
    return moved.reshape(a.shape[1], -1)


def _one_run(shape, strides):
    """Whether axes of these lengths and strides step through memory as one axis would
    (each stride the next one's times the next length), so that they reshape into one axis
    as a view. Axes of length 1 do not count."""
    axes = [(n, stride) for n, stride in zip(shape, strides) if n > 1]
    return all(stride == next_stride * next_n for (_, stride), (next_n, next_stride) in zip(axes, axes[1:]))


def _copy(a):
    """A C-contiguous copy of ``a`` (``_copy_into``)."""
    out = get_array_module(a).empty(a.shape, dtype=a.dtype)
    _copy_into(out, a)
    return out


def _copy_into(out, a):
    """out[...] = a (the same shape, any two layouts), by cache-sized blocks on the threads
    (``parallel.for_blocks_of``), whole runs at a time where both arrays have one.

    NumPy copies one number per step of its innermost loop, and when the two layouts agree
    only on their innermost axis (a pixels-first (H, W, C, N) map into a batch-last
    (C, H, W, N) one: runs of N numbers) that loop is N steps long and its overhead sets the
    pace. Both arrays seen with each run as one opaque element (a NumPy "void" of N numbers'
    bytes), the same copy moves N numbers per step: 1.6-1.9 times as fast for runs of 8 and
    32 numbers at GoogLeNet's shapes."""
    xp = get_array_module(a)
    if xp is numpy and out.ndim > 1 and _same_innermost_run(out, a):
        out, a = _runs_as_elements(out), _runs_as_elements(a)
    parallel.for_blocks_of("copy", xp.copyto, out, a)


def _same_innermost_run(out, a):
    """Whether out and a both step through their innermost axis one number at a time, the
    same axis in both, longer than one number."""
    axis = int(numpy.argmin(numpy.abs(out.strides)))
    return (out.shape[axis] > 1 and out.strides[axis] == a.strides[axis] == out.itemsize
            and int(numpy.argmin(numpy.abs(a.strides))) == axis)


def _runs_as_elements(a):
    """a with its innermost axis (a run of numbers, one after the other in memory) seen as one
    element of raw bytes: a view of one axis fewer."""
    axis = int(numpy.argmin(numpy.abs(a.strides)))
    moved = numpy.moveaxis(a, axis, -1)
    return moved.view(numpy.dtype((numpy.void, moved.shape[-1] * a.itemsize)))[..., 0]


def _add_bias_and_relu(Y, bias, relu):
    """Y (C_out, pixels) or (N, C_out, pixels) += bias (C_out,) on every pixel (unless bias is
    None), then Y = max(Y, 0) with ``relu``: in place, both in one visit of each chunk of Y's
    first axis, on the threads."""
    xp = get_array_module(Y)
    arrays = [Y] if bias is None else [Y, xp.broadcast_to(bias.reshape(-1, 1), Y.shape)]

    def finish(y, b=None):
        if b is not None:
            xp.add(y, b, out=y)
        if relu:
            xp.maximum(y, 0, out=y)
    if bias is not None or relu:
        parallel.for_chunks_of("conv2d bias and relu", finish, *arrays)


def _row_sums(m):
    """m (..., pixels) -> (...,): the sum of each row. When each row is one run of memory,
    NumPy sums it on its own (pairwise), whatever the other rows: then the rows are split
    over the threads. Otherwise NumPy adds column after column into all the rows at once,
    and one call does it all."""
    xp = get_array_module(m)
    if m.strides[-1] != m.itemsize:
        return m.sum(axis=-1)
    sums = xp.empty(m.shape[:-1], dtype=m.dtype)
    parallel.for_chunks_of("conv2d bias gradient", lambda rows, out: rows.sum(axis=-1, out=out), m, sums)
    return sums


def _unflatten(matrix, order, shape):
    """The inverse of ``_channels_first``: a (C, pixels) matrix -> ``shape`` (N, C, H, W), a view."""
    return matrix.reshape([shape[axis] for axis in order]).transpose(tuple(numpy.argsort(order)))


def _columns(x, win, order):
    """The right-hand side of the convolution's GEMM: (C*KH*KW, pixels), pixels in ``order``.

    For a 1x1 convolution x itself is the column matrix: the batch-last (C, H, W, N) layout
    that conv2d and concat hand out needs no copy at all; an (N, C, H, W) array is copied
    channels first (``order`` _BATCH_FIRST), and so is a pool's pixels-first output."""
    if win.is_pointwise:
        return _channels_first(x, order)
    return _im2col_batch_last(x, win).reshape(x.shape[1] * win.kernel[0] * win.kernel[1], -1)


def conv2d_forward(x, weight, bias, win, groups=1, relu=False):
    """x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out,) or None ->
    (y (N, C_out, OH, OW), cache); with ``relu``, y = max(y, 0) in place (NaN kept)."""
    n, c, h, w = x.shape
    c_out = weight.shape[0]
    if win.is_pointwise and groups == 1 and x.flags.c_contiguous and h * w >= PER_IMAGE_MIN_PIXELS:
        return _pointwise_per_image_forward(x, weight, bias, relu)
    if _winograd_suits(x, win, groups):
        done = _winograd_forward(x, weight, bias, win, relu)
        if done is not None:
            return done
    order = _BATCH_FIRST if win.is_pointwise and x.flags.c_contiguous else _BATCH_LAST
    cols = _columns(x, win, order)
    Y = _grouped_product(_by_group(weight.reshape(c_out, -1), groups), _by_group(cols, groups))
    _add_bias_and_relu(Y, bias, relu)
    y = _unflatten(Y, order, (n, c_out) + win.out)
    kept = cols if get_array_module(x) is numpy else None
    return y, Conv2dCache(x, weight, win, order, groups, bias is not None, y if relu else None, kept)


def conv2d_backward(gy, cache, input_grad=True):
    """gy (N, C_out, OH, OW) -> (gx, gweight, gbias), gbias None when the forward had no bias,
    gx None (not computed) when ``input_grad`` is False (x needs no gradient: the images).
    After a fused ReLU, gy passes only where its output is not <= 0 (y > 0, or NaN): the
    ReLU's own backward, once gy lies as the output does (both read in the same order)."""
    if isinstance(cache, PerImageConv2dCache):
        return _pointwise_per_image_backward(gy, cache, input_grad)
    if isinstance(cache, WinogradConv2dCache):
        return _winograd_backward(gy, cache, input_grad)
    x, weight, win, order, groups, has_bias, relu_output, cols = cache
    x_shape = x.shape
    c_out, _, kh, kw = weight.shape
    gy2 = _gradient_through_relu(gy, relu_output, order)          # (C_out, pixels), columns as in cols
    gy3 = _by_group(gy2, groups)
    cols3 = _by_group(_columns(x, win, order) if cols is None else cols, groups)   # see Conv2dCache
    pixels = gy3.shape[-1]
    gweight = _weight_gradient(gy3, cols3, pixels).reshape(weight.shape)
    del cols, cols3            # columns copied again (on a GPU) are freed before their gradient exists
    gbias = _row_sums(gy2) if has_bias else None
    if not input_grad:
        return None, gweight, gbias
    # weight2^T copied C-contiguous for many pixels: BLAS multiplies a transposed view slower
    # on those shapes in the whole step (conv2's column gradient 153 -> 166 GFLOP/s, 3b/3x3's
    # 140 -> 162; the step 2% faster at batch 8, 4% at batch 32, on 2 cores). With few pixels
    # the copy, as large as the weight, costs more than the product saves (2-11 times the
    # time of the product on the view alone at 32-128 pixels, measured by itself).
    weight_t = _by_group(weight.reshape(c_out, -1), groups).transpose(0, 2, 1)
    if pixels >= COPIED_WEIGHT_MIN_PIXELS:
        weight_t = weight_t.copy()
    gcols = _grouped_product(weight_t, gy3)
    if win.is_pointwise:
        gx = _unflatten(gcols, order, x_shape)
    else:
        gx = _col2im_batch_last(gcols.reshape(x_shape[1], kh, kw, *win.out, x_shape[0]), win)
    return gx, gweight, gbias


def _gradient_through_relu(gy, relu_output, order):
    """gy as the (C_out, pixels) matrix of ``_channels_first``, passed through the fused ReLU's
    backward when there is one (``relu_output`` not None).

    When gy's axes lie in memory in the order the output's do, but not as one run (the
    interior of the next convolution's padded input gradient, a window of the col2im
    buffer), the ReLU's backward reads gy where it lies and writes a fresh array laid out as
    the output: the matrix is then a view, and gy is not first copied just to be read once
    more (one pass over gy instead of two)."""
    if relu_output is None:
        return _channels_first(gy, order)
    if parallel.axes_by_stride(gy) == parallel.axes_by_stride(relu_output):
        (gy,) = relu_backward(gy, relu_output)
        return _channels_first(gy, order)
    (gy2,) = relu_backward(_channels_first(gy, order), _channels_first(relu_output, order))
    return gy2


# The orientations of the backward's products, by the number of pixels (N * OH * OW) they sum
# over or spread to; below these the plain orientation on views is faster (measured on 2 cores,
# benchmarks/kernel_choices.md).
TURNED_WEIGHT_GRADIENT_MIN_PIXELS = 512
COPIED_WEIGHT_MIN_PIXELS = 4096


def _weight_gradient(gy3, cols3, pixels):
    """gweight = gy3 @ cols3^T for each group: (G, C_out/G, K/G) stacked as (C_out, K/G).

    With many pixels it is made as its transpose cols3 @ gy3^T and turned back (a copy as
    large as the weight): BLAS runs that orientation faster there, a long sum over the pixels
    (GoogLeNet's whole step 1.5-2.5% faster, on 2 cores). With few, the turning back costs
    more than that (the plain product 1.1-2.6 times as fast at 32-128 pixels)."""
    if pixels < TURNED_WEIGHT_GRADIENT_MIN_PIXELS:
        return _grouped_product(gy3, cols3.transpose(0, 2, 1))
    groups, rows_per_group = cols3.shape[0], cols3.shape[1]
    gweight_t = _grouped_product(cols3, gy3.transpose(0, 2, 1)).reshape(groups, rows_per_group, -1)
    return gweight_t.transpose(0, 2, 1).reshape(-1, rows_per_group)


def _by_group(a, groups):
    """(..., groups*R, P) -> (..., groups, R, P): row block k is group k's (a view). The rows
    of cols run over (c, i, j), channel first, and those of weight2 over the filters, so
    channel block k and filter block k are row block k."""
    return a.reshape(a.shape[:-2] + (groups, -1, a.shape[-1]))


def _grouped_product(a, b):
    """a (G, M, K), b (G, K, P) -> (G*M, P): the product of each group's matrices, stacked.

    One BLAS call per group on plain 2-D operands, each writing into its block of one
    output (one call in all for groups = 1, as before groups existed).
    """
    xp = get_array_module(a)
    out = xp.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype)
    for k in range(a.shape[0]):
        xp.matmul(a[k], b[k], out=out[k])
    return out.reshape(-1, b.shape[2])


def _pointwise_per_image_forward(x, weight, bias, relu):
    """A 1x1 convolution as N products y[n] = weight2 @ x[n], x[n] seen as (C, H*W)."""
    n, c, h, w = x.shape
    c_out = weight.shape[0]
    x3 = x.reshape(n, c, h * w)                                    # a view: x is contiguous
    Y = weight.reshape(c_out, c) @ x3                              # (N, C_out, H*W)
    _add_bias_and_relu(Y, bias, relu)
    y = Y.reshape(n, c_out, h, w)
    return y, PerImageConv2dCache(x3, weight, bias is not None, y if relu else None)


def _pointwise_per_image_backward(gy, cache, input_grad):
    """gx[n] = weight2^T @ gy[n];  gweight = sum over n of gy[n] @ x[n]^T;  gbias = gy summed
    over H, W (each image's row sums), then over N."""
    x3, weight, has_bias, relu_output = cache
    n, c, pixels = x3.shape
    c_out = weight.shape[0]
    gy3 = gy.reshape(n, c_out, pixels) if gy.flags.c_contiguous else _copy(gy).reshape(n, c_out, pixels)
    if relu_output is not None:
        (gy3,) = relu_backward(gy3, relu_output.reshape(n, c_out, pixels))
    gx = (weight.reshape(c_out, c).T.copy() @ gy3).reshape(n, c, *gy.shape[2:]) if input_grad else None
    gweight = (gy3 @ x3.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    return gx, gweight, _row_sums(gy3).sum(axis=0) if has_bias else None


# --- 3x3 convolutions by Winograd's F(2x2, 3x3) (winograd.py) -----------------------------------
# On the CPU, a 3x3 convolution with stride 1 and padding 1 (GoogLeNet's conv2 and every
# Inception module's 3x3 branch) on maps of at least WINOGRAD_MIN_PIXELS pixels takes
# Winograd's way: 2.25 times fewer multiplications, in 16 products on the transformed tiles.
# Measured on 2 cores (benchmarks/kernel_choices.md, section 6), forward and backward together
# each way alternately: 1.10x as fast at conv2 on 56x56 maps (batch 8), 1.3x at Inception 3a's
# on 28x28, 0.95-0.99x on 7x7 maps, where the transforms' fixed costs eat what the products
# save. On 8x8 maps (conv2 at 32x32, batch 32) the layer runs 1.12x as fast, but the whole step
# only 1-2%, within the machine's noise, and the main job (README) would change its arithmetic
# for it: its run of seed 0 ended at 98.33% held out instead of 98.89% (seeds 1 and 2: 99.44%
# and 99.16% against 99.72% and 99.16%), so 10x10 maps and larger it is.
# The results differ from the direct product's in the last bits; for NaN and infinity they
# could differ more (an infinite input meets itself with both signs in the transforms:
# inf - inf = NaN where the direct sum keeps inf), so any output or gradient that is not
# finite is made again the direct way, and special values come out exactly as the direct
# product gives them.
WINOGRAD_MIN_PIXELS = 100


class WinogradConv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from a convolution done by Winograd's F(2x2, 3x3)."""
    x: Any                     # (N, C, H, W)
    weight: Any                # (C_out, C, 3, 3)
    win: Window
    u: Any                     # (16, C_out, C): the transformed filters
    v: Any                     # (16, C, tiles): the transformed input tiles (4 times x's size)
    has_bias: bool
    relu_output: Any           # y after a fused ReLU, else None


def _winograd_suits(x, win, groups):
    return (get_array_module(x) is numpy and groups == 1 and win.kernel == (3, 3) and win.stride == (1, 1)
            and win.padding == (1, 1) and win.out == win.size and win.size[0] * win.size[1] >= WINOGRAD_MIN_PIXELS)


def _winograd_forward(x, weight, bias, win, relu):
    """As ``conv2d_forward`` (batch-last output); None when the result is not finite: the
    caller then takes the direct way."""
    n, c, h, w = x.shape
    c_out = weight.shape[0]
    th, tw = winograd.tiles_of(h), winograd.tiles_of(w)
    u = winograd.filter_transform(weight)
    v = winograd.input_transform(x)
    pixels = winograd.output_transform(numpy.matmul(u, v)).reshape(2, 2, c_out, th, tw, n)
    Y = numpy.empty((c_out, th, 2, tw, 2, n), dtype=x.dtype)
    for p in range(2):
        for q in range(2):                 # pixel (p, q) of every tile into place
            _copy_into(Y[:, :, p, :, q], pixels[p, q])
    del pixels
    Y = Y.reshape(c_out, 2 * th, 2 * tw, n)
    _add_bias_and_relu(Y.reshape(c_out, -1), bias, relu)
    if not _all_finite(Y):
        return None
    y = Y[:, :h, :w].transpose(3, 0, 1, 2)
    return y, WinogradConv2dCache(x, weight, win, u, v, bias is not None, y if relu else None)


def _winograd_backward(gy, cache, input_grad):
    """As ``conv2d_backward``, the forward's steps transposed (winograd.py); the direct way's
    backward when a gradient is not finite."""
    x, weight, win, u, v, has_bias, relu_output = cache
    n, c, h, w = x.shape
    c_out = weight.shape[0]
    th, tw = winograd.tiles_of(h), winograd.tiles_of(w)
    gy2 = _gradient_through_relu(gy, relu_output, _BATCH_LAST)
    gY = gy2.reshape(c_out, h, w, n)
    # an odd size's last tiles reach past the map: their outside pixels get a zero gradient
    pixels = (numpy.empty if h % 2 == 0 and w % 2 == 0 else numpy.zeros)((2, 2, c_out, th, tw, n), dtype=gy.dtype)
    for p in range(2):
        for q in range(2):                 # the gradient of pixel (p, q) of every tile
            rows, columns = (h - p + 1) // 2, (w - q + 1) // 2
            _copy_into(pixels[p, q][:, :rows, :columns], gY[:, p::2, q::2])
    z = winograd.output_gradient(pixels.reshape(2, 2, c_out, -1))
    del pixels
    gweight = winograd.filter_gradient(numpy.matmul(z, v.transpose(0, 2, 1)))
    gbias = _row_sums(gy2) if has_bias else None
    gx = winograd.input_gradient(numpy.matmul(u.transpose(0, 2, 1).copy(), z), x.shape) if input_grad else None
    if _all_finite(gweight) and (gx is None or _all_finite(gx)):
        return gx, gweight, gbias
    direct = Conv2dCache(x, weight, win, _BATCH_LAST, 1, has_bias, relu_output, None)
    return conv2d_backward(gy, direct, input_grad)


def _all_finite(a):
    """Whether every number of a is finite: a sum over it is (one pass, no temporary; a sum
    that overflows counts as not finite, and that only sends the work the direct way)."""
    return bool(numpy.isfinite(a.sum(dtype=a.dtype)))


# --- pooling: pixels first, (H, W, N, C) or (H, W, C, N), by chunks of images or channels ------
# Every slice of an offset loop is a run of N*C numbers per pixel when the pixels come
# first. The forward copies x into such a buffer, padded, keeping x's images and channels in
# the order they lie in its memory ((H, W, N, C) from an (N, C, H, W) array, (H, W, C, N)
# from a convolution's batch-last output): the copy then moves whole runs of x's innermost
# axis rather than one number at a time (about 2.5 times faster from batch-last). Its
# results are handed out in the order it worked in, and the backward works in that order
# too: after a batch-last map (a convolution's output) the batch stays innermost, so that
# the copies into the next convolution's layout and the sums with the convolutions'
# gradients around the pool (an Inception module's pool branch) read runs of N numbers,
# not single numbers (whole steps on 2 cores, both ways alternately in one process: the
# same time at batch 8, 3% faster at batch 32, than handing out (H, W, N, C) after a copy).
# The work is split over the threads by chunks of the axis that comes third (images or
# channels: they never mix in a pooling, so the chunks are exact); each chunk of the input
# is copied into a padded buffer of its own, pooled there, and written into its part of
# the output.
_IMAGES_FIRST = (2, 3, 0, 1)      # (N, C, H, W) -> (H, W, N, C)
_CHANNELS_FIRST = (2, 3, 1, 0)    # (N, C, H, W) -> (H, W, C, N)


def _pixels_first_order(x):
    """The transpose that puts x's pixels first and keeps its images and channels in the
    order they lie in x's memory."""
    return _IMAGES_FIRST if abs(x.strides[0]) >= abs(x.strides[1]) else _CHANNELS_FIRST


def _for_chunks_of_axis_2(op, a, work, numbers):
    """``work(chunk)`` on the threads for chunks of a pixels-first array's third axis; ``chunk``
    is the index that picks the chunk of it and of any array of the same order."""
    def on_chunk(start, stop):
        work((slice(None), slice(None), slice(start, stop)))
    parallel.for_chunks(op, a.shape[2], on_chunk, numbers, get_array_module(a))


def _back_to_images(a, order):
    """A pixels-first array in ``order`` seen as (N, C, H, W) again (a view)."""
    return a.transpose(tuple(numpy.argsort(order)))


class MaxPool2dCache(NamedTuple):
    """What ``max_pool2d_backward`` needs from the forward."""
    argmax: Any                # (OH, OW, ...) in ``order``: the winning kernel offset i*KW + j
    win: Window
    order: Tuple[int, ...]     # _IMAGES_FIRST or _CHANNELS_FIRST: the pixels-first order worked in


def max_pool2d_forward(x, win, argmax=True):
    """Without ``argmax`` (no backward will come: inference) only the maxima, one maximum
    per candidate instead of four steps (about half the time at GoogLeNet's shapes)."""
    xp = get_array_module(x)
    order = _pixels_first_order(x)
    x_t = x.transpose(order)
    y = xp.empty(win.out + x_t.shape[2:], dtype=x.dtype)
    offsets = xp.empty(y.shape, dtype=numpy.min_scalar_type(win.kernel[0] * win.kernel[1])) if argmax else None

    def pool(chunk):
        x_pad, y_chunk = _padded(x_t[chunk], win, -numpy.inf), y[chunk]
        for rows, block in _row_blocks(win, y_chunk[0].size):
            x_rows = x_pad[_input_rows(block, rows)]
            if argmax:
                _max_pool(x_rows, block, y_chunk[rows], offsets[chunk][rows])
            else:
                _max_only(x_rows, block, y_chunk[rows])
    _for_chunks_of_axis_2("max_pool2d", x_t, pool, x.size)
    return _back_to_images(y, order), (MaxPool2dCache(offsets, win, order) if argmax else None)


def max_pool2d_backward(gy, cache):
    argmax, win, order = cache
    xp = get_array_module(gy)
    gy_t = gy.transpose(order)
    g_pad = xp.zeros(win.padded_size + gy_t.shape[2:], dtype=gy.dtype)

    def route(chunk):                   # a contiguous copy of gy's chunk: the passes run along it
        _max_pool_backward(_contiguous(gy_t[chunk]), argmax[chunk], win, g_pad[chunk])
    _for_chunks_of_axis_2("max_pool2d backward", g_pad, route, g_pad.size)
    return _back_to_images(_unpad(g_pad, win), order)


class AvgPool2dCache(NamedTuple):
    """What ``avg_pool2d_backward`` needs from the forward."""
    divisor: Any               # (OH, OW, 1, 1): pixels first
    win: Window
    order: Tuple[int, ...]     # _IMAGES_FIRST or _CHANNELS_FIRST: the pixels-first order worked in


def avg_pool2d_forward(x, win, divisor):
    """``divisor`` (OH, OW) in x's dtype, on x's device."""
    xp = get_array_module(x)
    order = _pixels_first_order(x)
    x_t = x.transpose(order)
    divisor = divisor[:, :, None, None]                            # (OH, OW, 1, 1): pixels first
    y = xp.empty(win.out + x_t.shape[2:], dtype=x.dtype)

    def pool(chunk):
        sums = y[chunk]
        _window_sum(_padded(x_t[chunk], win, 0), win, sums)
        xp.divide(sums, divisor, out=sums)
    _for_chunks_of_axis_2("avg_pool2d", x_t, pool, x.size)
    return _back_to_images(y, order), AvgPool2dCache(divisor, win, order)


def avg_pool2d_backward(gy, cache):
    divisor, win, order = cache
    xp = get_array_module(gy)
    gy_t = gy.transpose(order)
    g_pad = xp.zeros(win.padded_size + gy_t.shape[2:], dtype=gy.dtype)

    def spread(chunk):
        part = gy_t[chunk]
        shares = xp.empty(part.shape, dtype=gy.dtype)                  # gy / divisor, pixels first
        xp.divide(part, divisor, out=shares)
        _window_sum_backward(shares, win, g_pad[chunk])
    _for_chunks_of_axis_2("avg_pool2d backward", g_pad, spread, g_pad.size)
    return _back_to_images(_unpad(g_pad, win), order)


def _contiguous(a):
    """a itself when it is C-contiguous, else a C-contiguous copy (``_copy``)."""
    return a if a.flags.c_contiguous else _copy(a)


# The offset loop makes several passes over its output (four per offset in max pooling).
# Over a whole chunk of a large map (pool1 at batch 32: tens of MB) every pass streams from
# main memory; over a block of output rows that fits in a core's cache (BLOCK_NUMBERS
# numbers of output, with the input rows those windows read) the passes after the first
# find it there (pool1 and pool2: up to twice as fast at batch 32). Each output number is
# computed by the same steps either way.
BLOCK_NUMBERS = 1 << 17
# The max pool backward's blocks (of its gradient's rows) are larger: it makes three NumPy
# calls per offset and block, and with several threads every call takes the interpreter
# lock back from the others, so fewer calls pay more than a block that fits the nearest cache
# (measured on 2 cores: the same speed at batch 32, faster at batch 8).
ROUTE_BLOCK_NUMBERS = 1 << 20


def _row_blocks(win, numbers_per_row):
    """Yield (rows, block) for consecutive blocks of output rows of about BLOCK_NUMBERS numbers
    (``numbers_per_row`` in each row): ``rows`` the slice of them, ``block`` the Window of
    that block alone, its top padding counted from the block's first row (it may be less
    than 0: the block starts below the padding)."""
    (sh, _), (ph, pw), (oh, ow) = win.stride, win.padding, win.out
    step = max(1, BLOCK_NUMBERS // max(numbers_per_row, 1))
    for start in range(0, oh, step):
        stop = min(start + step, oh)
        yield slice(start, stop), win._replace(out=(stop - start, ow), padding=(ph - sh * start, pw))


def _input_rows(block, rows):
    """The slice of padded input rows that the windows of output ``rows`` (a ``_row_blocks``
    block) read."""
    sh, kh = block.stride[0], block.kernel[0]
    return slice(rows.start * sh, (rows.stop - 1) * sh + kh)


def _max_pool(x_pad, win, out, argmax):
    """The maximum of each window of x_pad (H_pad, W_pad, ...) into ``out`` and the kernel
    offset i*KW + j it came from into ``argmax``, both (OH, OW, ...); pixels first, batch
    axes after.

    The padding is -inf, so a padded position never wins. ``argmax`` follows PyTorch's
    rule: the first maximum on ties, the first real (unpadded) element of a window that
    is all -inf, and the last NaN of a window that holds NaNs (its output is NaN).

    In two sweeps, because the maximum over a rectangle is the maximum of its rows' maxima:
    first along every input row (the KW columns of each window: each row's maximum and its
    column j), then down the KH rows of each window. A KH x KW window costs (KW - 1) +
    (KH - 1) comparison steps instead of KH*KW - 1 (4 instead of 8 for 3x3). The offsets
    agree with one sweep over the whole window: the first maximum in the window's row-major
    order lies in the first row that holds the maximum, at that row's first maximum, and
    each sweep keeps the first maximum it meets.
    """
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    xp = get_array_module(x_pad)
    first_row, first_column = _first_real_rows_and_columns(win)
    row_max = xp.empty((x_pad.shape[0], ow) + out.shape[2:], dtype=out.dtype)
    row_argmax = xp.empty(row_max.shape, dtype=argmax.dtype)
    columns = [x_pad[:, j:j + sw * (ow - 1) + 1:sw] for j in range(kw)]
    first = xp.asarray(first_column.astype(argmax.dtype)).reshape((1, ow) + (1,) * (out.ndim - 2))
    _running_max(columns, [argmax.dtype.type(j) for j in range(kw)], first, row_max, row_argmax)
    rows = [row_max[i:i + sh * (oh - 1) + 1:sh] for i in range(kh)]
    offsets = [row_argmax[i:i + sh * (oh - 1) + 1:sh] + argmax.dtype.type(i * kw) for i in range(kh)]
    first = _column_in_first_row(row_argmax, first_row, sh) + xp.asarray(
        (first_row * kw).astype(argmax.dtype)).reshape((oh,) + (1,) * (out.ndim - 1))
    _running_max(rows, offsets, first, out, argmax)
    nan_windows = xp.isnan(out)
    if nan_windows.any():                       # rare: a second pass only when there are NaNs
        _point_at_the_last_nan(x_pad, win, nan_windows, argmax)


def _max_only(x_pad, win, out):
    """The maximum of each window of x_pad into ``out``, in ``_max_pool``'s two sweeps, with
    no argmax: NumPy's ``maximum`` over the candidates (a NaN among them is the result)."""
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    xp = get_array_module(x_pad)
    row_max = xp.empty((x_pad.shape[0], ow) + out.shape[2:], dtype=out.dtype)
    _maximum_of([x_pad[:, j:j + sw * (ow - 1) + 1:sw] for j in range(kw)], row_max)
    _maximum_of([row_max[i:i + sh * (oh - 1) + 1:sh] for i in range(kh)], out)


def _maximum_of(candidates, out):
    """out = the elementwise maximum of ``candidates`` (arrays of out's shape)."""
    xp = get_array_module(out)
    if len(candidates) == 1:
        out[...] = candidates[0]
        return
    xp.maximum(candidates[0], candidates[1], out=out)
    for values in candidates[2:]:
        xp.maximum(out, values, out=out)


def _running_max(candidates, offsets, first, out, argmax):
    """out = the elementwise maximum of ``candidates`` (arrays of out's shape); argmax = the
    offset of the first candidate that holds it (``offsets``: one per candidate, numbers or
    arrays of argmax's shape, each larger than the one before), or ``first`` where none
    beats the first candidate.

    Offsets come in increasing order, so "the last candidate that beat the running max" is
    the largest such offset: a maximum, not a masked write (masked writes with random masks
    are slow in NumPy). Every step writes into the same two buffers: a new temporary per
    candidate costs more than the arithmetic (fresh memory is zeroed by the system page by
    page)."""
    xp = get_array_module(out)
    beats, candidate = xp.empty(out.shape, dtype=bool), xp.empty(out.shape, dtype=argmax.dtype)
    out[...] = candidates[0]
    argmax[...] = first
    for values, offset in zip(candidates[1:], offsets[1:]):
        xp.greater(values, out, out=beats)
        xp.multiply(beats, offset, out=candidate)
        xp.maximum(argmax, candidate, out=argmax)
        xp.maximum(out, values, out=out)


def _first_real_rows_and_columns(win):
    """(first_row (OH,), first_column (OW,)): the kernel row i and column j of each window's
    first element that is not padding (0 unless the window starts in the top or left
    padding). NumPy arrays."""
    (sh, sw), (ph, pw), (oh, ow) = win.stride, win.padding, win.out
    return numpy.maximum(ph - sh * numpy.arange(oh), 0), numpy.maximum(pw - sw * numpy.arange(ow), 0)


def _column_in_first_row(row_argmax, first_row, sh):
    """(OH, OW, ...): the column j that the sweep along the rows chose in each window's
    first real row (first_row[oh] rows below the window's top). A window whose real elements
    are all -inf takes the offset of its first real element, that row's i*KW + j."""
    oh = first_row.shape[0]
    if not first_row.any():                     # no window starts in the padding: a strided view
        return row_argmax[0:sh * (oh - 1) + 1:sh]
    return row_argmax[get_array_module(row_argmax).asarray(numpy.arange(oh) * sh + first_row)]


def _point_at_the_last_nan(x_pad, win, nan_windows, argmax):
    """In windows holding NaN, make ``argmax`` the offset of their last NaN (in place)."""
    xp = get_array_module(x_pad)
    for i, j, rows, columns in _offsets(win):
        is_nan = nan_windows & xp.isnan(x_pad[rows, columns])
        argmax[is_nan] = i * win.kernel[1] + j


def _max_pool_backward(gy, argmax, win, g_pad):
    """Route each window's gradient to the input it took its maximum from: gy, argmax
    (OH, OW, ...) are added into the padded gradient g_pad (H_pad, W_pad, ...).

    By blocks of about ROUTE_BLOCK_NUMBERS numbers of g_pad's rows, so that the block stays in
    the cache while every kernel offset adds into it (see BLOCK_NUMBERS). The blocks are cut in
    g_pad's rows, not in gy's: each number of g_pad then receives its shares in the same
    order as in one pass over the whole (offset after offset), so the sums are the same
    to the bit.

    Each offset's comparison is written as 1.0 or 0.0 straight into the float buffer that
    then becomes gy's share: NumPy converts the comparison's booleans as it writes them, in
    the cache, where a product of gy with a boolean array would convert them in a pass of
    its own (the backward about a sixth faster, the same bits)."""
    xp = get_array_module(gy)
    shares = xp.empty_like(gy)
    rows_per_block = max(win.kernel[0], ROUTE_BLOCK_NUMBERS // max(g_pad[0].size, 1))
    for start in range(0, g_pad.shape[0], rows_per_block):
        for i, j, out_rows, rows, columns in _offsets_into_rows(win, start, start + rows_per_block):
            share = shares[out_rows]
            xp.equal(argmax[out_rows], i * win.kernel[1] + j, out=share)    # 1.0 where this offset won, else 0.0
            share *= gy[out_rows]                                           # gy there, else 0
            g_pad[rows, columns] += share


def _offsets_into_rows(win, start, stop):
    """Like ``_offsets``, for the padded input rows [start, stop) alone: yield (i, j, out_rows,
    rows, cols) for each kernel offset (i, j) that reaches those rows from some output row;
    ``out_rows`` the slice of those output rows, [rows, cols] the input pixels they see."""
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    for i in range(kh):
        first, end = max(0, -(-(start - i) // sh)), min(oh, -(-(stop - i) // sh))    # ceil divisions
        if first >= end:
            continue
        for j in range(kw):
            yield (i, j, slice(first, end), slice(first * sh + i, (end - 1) * sh + i + 1, sh),
                   slice(j, j + sw * (ow - 1) + 1, sw))


def _window_sum(x_pad, win, out):
    """The sum over each window of x_pad (H_pad, W_pad, ...) into ``out`` (OH, OW, ...)."""
    patches = (x_pad[rows, columns] for _, _, rows, columns in _offsets(win))
    out[...] = next(patches)
    for patch in patches:
        out += patch


def _window_sum_backward(gy, win, g_pad):
    """The adjoint of ``_window_sum``: every input receives the sum of gy over the windows
    that contain it. gy (OH, OW, ...) is added into g_pad (H_pad, W_pad, ...)."""
    for _, _, rows, columns in _offsets(win):
        g_pad[rows, columns] += gy


# --- local response normalization -------------------------------------------------------------
# Both sums over neighbouring channels are ``size`` slice-adds over a zero-padded buffer,
# never a Python loop over channels. The backward's sum runs over the MIRRORED
# neighbours (see minigrad/ops/lrn.py): `after` channels before j, `before` after it.
# Every pixel is normalized on its own: chunks of image rows run on the threads
# (``minigrad.parallel``); a chunk of rows is a block of memory in any of the layouts
# the ops hand out, batch-last (C, H, W, N) as much as (N, C, H, W).
# Each step writes into a buffer made for it (``out=``) instead of a new temporary, and
# every buffer is laid out in memory as x is (``empty_like`` keeps x's order of axes):
# NumPy runs an element-wise op along memory only when all its arrays agree on the
# order; one array in another order makes every step of the loop jump through memory.
# The output is handed out in x's layout too: the next op copies it into its own layout
# if it needs another, once (a C-contiguous copy here made the step 5% slower at batch 32).
class LrnCache(NamedTuple):
    """What ``lrn_backward`` needs from the forward: x and the normalizer s, not the output
    (the backward recomputes s^-beta, one power per element, rather than keep a third array)."""
    x: Any                     # (N, C, ...)
    s: Any                     # the normalizer s, x's shape and layout
    size: int
    alpha: float
    beta: float


def _channel_padded(v, before, after):
    """A buffer (N, before + C + after, ...) for v (N, C, ...), laid out as v is, zeros in its
    padding channels, and the view of its C middle channels, to be filled (every caller
    writes all of them: zeroing them too would be one more pass over the whole buffer).
    Reaching more than C - 1 channels to one side covers no more channels than reaching
    exactly C - 1, so ``before`` and ``after`` are clamped to that (any size works)."""
    xp = get_array_module(v)
    channels = v.shape[1]
    reach = max(channels - 1, 0)
    before, after = min(before, reach), min(after, reach)
    padded = xp.empty_like(v, shape=(v.shape[0], before + channels + after) + v.shape[2:])
    padded[:, :before] = 0
    padded[:, before + channels:] = 0
    return padded, padded[:, before:before + channels]


def _neighbour_sum(padded, out):
    """out[:, c] = padded[:, c] + padded[:, c + 1] + ... (as many as the padding allows), in
    that order: the sum over each channel's neighbours of the values ``_channel_padded`` holds."""
    xp = get_array_module(padded)
    channels = out.shape[1]
    terms = [padded[:, offset:offset + channels] for offset in range(padded.shape[1] - channels + 1)]
    if len(terms) == 1:
        out[...] = terms[0]
        return
    xp.add(terms[0], terms[1], out=out)            # the first two straight into out: no copy
    for term in terms[2:]:
        out += term


def _for_row_chunks(op, x, work):
    """``work(rows)`` on the threads for chunks of x's image rows (axis 2; of its images when
    x has no pixels), ``rows`` the index that picks a chunk of x and of any array of its shape.
    When x's rows lie furthest apart in its memory (a pool's pixels-first output), each row is
    one block of memory: a thread then works through its chunk by blocks of about
    BLOCK_NUMBERS numbers, so that the many passes over a block find it in the cache."""
    axis = 2 if x.ndim > 2 else 0
    step = x.shape[axis]
    if parallel.axes_by_stride(x)[:1] == [axis]:
        step = max(1, BLOCK_NUMBERS * x.shape[axis] // max(x.size, 1))

    def on_chunk(start, stop):
        for block in range(start, stop, step):
            work((slice(None),) * axis + (slice(block, min(block + step, stop)),))
    parallel.for_chunks(op, x.shape[axis], on_chunk, x.size, get_array_module(x))


def _laid_out_as(a, template):
    """a, or a copy of it laid out in memory as ``template`` (an array of a's shape) is."""
    if parallel.axes_by_stride(a) == parallel.axes_by_stride(template):
        return a
    out = get_array_module(a).empty_like(template, dtype=a.dtype)
    _copy_into(out, a)
    return out


# The paper's LRN has beta = 0.75, and s^-0.75 = 1 / (sqrt(s) * sqrt(sqrt(s))): two square
# roots, a product and a division, each a vector instruction on every x86-64 processor with
# AVX. NumPy's float32 ``power`` runs vectorized only with AVX-512; without it the power is
# the slowest step of the LRN (GoogLeNet's two LRNs at batch 8, 224x224: 41 ms with AVX-512,
# 64 ms held to AVX2, mostly the powers). Each step rounds once: the result is within 4 units
# in the last place of the power. (s >= k > 0; an s that overflowed to infinity gives 0, as
# the power does: the shorter sqrt(sqrt(s)) / s would give inf / inf = NaN there.)
PAPER_BETA = 0.75


def _negative_power(s, beta, out, scratch):
    """out = s^-beta (``scratch``: an array of s's shape that may be overwritten)."""
    xp = get_array_module(s)
    if beta != PAPER_BETA:
        return xp.power(s, -beta, out=out)
    square_root = xp.sqrt(s, out=out)
    square_root *= xp.sqrt(square_root, out=scratch)                 # s^(1/2) * s^(1/4) = s^0.75
    return xp.divide(1, square_root, out=out)


def lrn_forward(x, size, alpha, beta, k):
    xp = get_array_module(x)
    before, after = size // 2, (size - 1) // 2
    s, y = xp.empty_like(x), xp.empty_like(x)

    def normalize(rows):
        xc, sc, yc = x[rows], s[rows], y[rows]
        padded, squares = _channel_padded(xc, before, after)
        xp.multiply(xc, xc, out=squares)
        _neighbour_sum(padded, sc)
        sc *= alpha / size
        sc += k                                    # s = k + alpha/n * (sum of the neighbours' a^2)
        _negative_power(sc, beta, yc, scratch=squares)
        yc *= xc                                   # b = a * s^-beta
    _for_row_chunks("local_response_norm", x, normalize)
    return y, LrnCache(x, s, size, alpha, beta)


def lrn_backward(gy, cache):
    x, s, size, alpha, beta = cache
    xp = get_array_module(gy)
    before, after = size // 2, (size - 1) // 2
    gx = xp.empty_like(x, dtype=gy.dtype)
    gy = _laid_out_as(gy, x)                       # one copy, rather than every step below jumping

    def rows_backward(rows):
        xc, sc, gyc, gxc = (a[rows] for a in (x, s, gy, gx))
        padded, terms = _channel_padded(gyc, after, before)
        scale = _negative_power(sc, beta, gxc, scratch=terms)     # s^-beta, in gx's place until used
        xp.multiply(xc, scale, out=terms)          # y = x * s^-beta
        terms *= gyc
        terms /= sc                                # g_c y_c / s_c
        neighbours = xp.empty_like(gxc)
        _neighbour_sum(padded, neighbours)
        gxc *= gyc                                 # g_j s_j^-beta
        scaled_x = xp.multiply(xc, 2 * alpha * beta / size, out=terms)    # terms reused
        scaled_x *= neighbours
        gxc -= scaled_x                            # ... - 2 alpha beta / n * a_j * neighbours
    _for_row_chunks("local_response_norm backward", x, rows_backward)
    return gx
