"""The hot loops of convolution and pooling, written with array operations only.

Nothing here is NumPy-specific: every function takes its array module from its
input, so the same code runs on CuPy arrays (the "generic" GPU path).
``kernels/cuda.py`` may later provide the same functions as hand-written CUDA.

Shapes use N (batch), C (channels), H, W (input), KH, KW (kernel), SH, SW
(stride), PH, PW (padding), OH, OW (output). ``win`` is a
``minigrad.ops._sizes.Window``: the input size, kernel, stride, padding and
output size of one sliding-window op.

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

* convolution works in (C, H, W, N) order (the layout cuda-convnet used): the
  batch index varies fastest and a window row of all N images is one run of
  OW*N numbers;
* pooling works pixels first, (H, W, N, C): every slice of an offset loop is
  a run of N*C numbers per pixel.
"""
import numpy

from ..backend import get_array_module


def padded_size(win):
    """(H + 2*PH + overhang, W + 2*PW + overhang): the extent the windows cover."""
    return tuple(n + 2 * p + e for n, p, e in zip(win.size, win.padding, win.overhang))


def pad(x, win, value=0):
    """x (H, W, ...) -> padded_size(win) + (...), the border filled with ``value``.

    0 for average pooling, -inf for max pooling. Returns ``x`` itself when there
    is nothing to pad.
    """
    (ph, pw), (h, w) = win.padding, win.size
    if padded_size(win) == (h, w):
        return x
    xp = get_array_module(x)
    x_pad = xp.full(padded_size(win) + x.shape[2:], value, dtype=x.dtype)
    x_pad[ph:ph + h, pw:pw + w] = x
    return x_pad


def unpad(g_pad, win):
    """The (H, W, ...) interior of a padded (H_pad, W_pad, ...) gradient (a view)."""
    (ph, pw), (h, w) = win.padding, win.size
    return g_pad[ph:ph + h, pw:pw + w]


def offsets(win):
    """Yield (i, j, rows, cols) for each kernel offset (i, j): the pixels [rows, cols]
    of the padded input are the OH x OW pixels that offset sees in every window."""
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


def windows(x_pad, win):
    """A strided VIEW (C, KH, KW, OH, OW, N) of the windows of x_pad (C, H_pad, W_pad, N).

    windows[c, i, j, oh, ow, n] = x_pad[c, oh*SH + i, ow*SW + j, n]; no data is copied.
    """
    xp = get_array_module(x_pad)
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    c, n = x_pad.shape[0], x_pad.shape[3]
    s_c, s_h, s_w, s_n = x_pad.strides
    return xp.lib.stride_tricks.as_strided(
        x_pad, shape=(c, kh, kw, oh, ow, n), strides=(s_c, s_h, s_w, s_h * sh, s_w * sw, s_n))


def im2col(x, win):
    """x (N, C, H, W) -> cols (C, KH, KW, OH, OW, N), a new C-contiguous array.

    cols[c, i, j, oh, ow, n] = x_pad[n, c, oh*SH + i, ow*SW + j] (zero padding).
    Reshaped to (C*KH*KW, OH*OW*N) (free: it is contiguous) it is the right-hand
    side of the convolution GEMM  W (F, C*KH*KW) @ cols -> (F, OH*OW*N).
    The reduction axis (C, KH, KW) comes first, in W's order; the batch comes
    last, so that each copied run is OW*N numbers long (see the module docstring).
    """
    xp = get_array_module(x)
    (ph, pw), (h, w) = win.padding, win.size
    x_pad = xp.zeros((x.shape[1],) + padded_size(win) + (x.shape[0],), dtype=x.dtype)
    x_pad[:, ph:ph + h, pw:pw + w, :] = x.transpose(1, 2, 3, 0)
    return xp.ascontiguousarray(windows(x_pad, win))


def col2im(cols, win):
    """The adjoint of ``im2col``: cols (C, KH, KW, OH, OW, N) -> gx (N, C, H, W).

    Every column entry is added back to the input pixel it was copied from;
    pixels shared by overlapping windows receive the sum. One slice-add per
    kernel offset (i, j), in (C, H, W, N) order; the result is a transposed
    view of that buffer (no copy).
    """
    xp = get_array_module(cols)
    (ph, pw), (h, w) = win.padding, win.size
    g_pad = xp.zeros((cols.shape[0],) + padded_size(win) + (cols.shape[-1],), dtype=cols.dtype)
    for i, j, rows, columns in offsets(win):
        g_pad[:, rows, columns, :] += cols[:, i, j]
    return g_pad[:, ph:ph + h, pw:pw + w, :].transpose(3, 0, 1, 2)


def max_pool(x, win):
    """x (H, W, ...) -> (out, argmax), both (OH, OW, ...); pixels first, batch axes after.

    Padding is -inf, so a padded position never wins. ``argmax`` holds the
    winning kernel offset i*KW + j of each window (the first one on ties).
    """
    xp = get_array_module(x)
    x_pad = pad(x, win, -numpy.inf)
    index_type = numpy.min_scalar_type(win.kernel[0] * win.kernel[1])
    out = argmax = None
    for i, j, rows, columns in offsets(win):
        patch = x_pad[rows, columns]
        if out is None:
            out, argmax = patch.copy(), xp.zeros(patch.shape, dtype=index_type)
            continue
        # Offsets come in increasing order, so "the last offset that beat the
        # running max" is the largest such offset: a maximum, not a masked write
        # (masked writes with random masks are several times slower in NumPy).
        offset = index_type.type(i * win.kernel[1] + j)
        xp.maximum(argmax, (patch > out) * offset, out=argmax)
        xp.maximum(out, patch, out=out)
    return out, argmax


def max_pool_backward(gy, argmax, win):
    """Route each window's gradient to the input it took its maximum from.

    gy, argmax (OH, OW, ...) -> gx (H, W, ...).
    """
    xp = get_array_module(gy)
    g_pad = xp.zeros(padded_size(win) + gy.shape[2:], dtype=gy.dtype)
    for i, j, rows, columns in offsets(win):
        g_pad[rows, columns] += gy * (argmax == i * win.kernel[1] + j)
    return unpad(g_pad, win)


def window_sum(x, win):
    """x (H, W, ...) -> (OH, OW, ...): the sum over each window (zero padding)."""
    x_pad = pad(x, win, 0)
    total = None
    for _, _, rows, columns in offsets(win):
        patch = x_pad[rows, columns]
        if total is None:
            total = patch.copy()
        else:
            total += patch
    return total


def window_sum_backward(gy, win):
    """The adjoint of ``window_sum``: every input receives the sum of gy over
    the windows that contain it. gy (OH, OW, ...) -> gx (H, W, ...)."""
    xp = get_array_module(gy)
    g_pad = xp.zeros(padded_size(win) + gy.shape[2:], dtype=gy.dtype)
    for _, _, rows, columns in offsets(win):
        g_pad[rows, columns] += gy
    return unpad(g_pad, win)
