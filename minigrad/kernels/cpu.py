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
  it (no copy), element [n, c, i, j, oh, ow] = x_pad[n, c, oh*SH + i, ow*SW + j];
* offset loops: for each of the KH*KW kernel offsets (i, j), the elements that
  offset touches in every window form one strided slice
  x_pad[:, :, i : i + SH*OH : SH, j : j + SW*OW : SW]  of shape (N, C, OH, OW).
  A backward pass adds into such slices, one offset at a time. No slice names
  an element twice, so ``+=`` is exact (no ``add.at`` needed).
"""
import numpy

from ..backend import get_array_module


def pad(x, win, value=0):
    """x (N, C, H, W) -> (N, C, PH + H + PH + overhang_h, PW + W + PW + overhang_w).

    The border is filled with ``value`` (0 for convolution and average pooling,
    -inf for max pooling). Returns ``x`` itself when there is nothing to pad.
    """
    (ph, pw), (eh, ew) = win.padding, win.overhang
    if ph == pw == eh == ew == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    x_pad = xp.full((n, c, h + 2 * ph + eh, w + 2 * pw + ew), value, dtype=x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    return x_pad


def unpad(g_pad, win):
    """The (N, C, H, W) interior of a padded gradient (a view, no copy)."""
    (ph, pw), (h, w) = win.padding, win.size
    return g_pad[:, :, ph:ph + h, pw:pw + w]


def padded_zeros(like, a, b, win):
    """Zeros of the shape ``pad`` gives an (a, b, H, W) input: a gradient buffer."""
    xp = get_array_module(like)
    (h, w), (ph, pw), (eh, ew) = win.size, win.padding, win.overhang
    return xp.zeros((a, b, h + 2 * ph + eh, w + 2 * pw + ew), dtype=like.dtype)


def offsets(win):
    """Yield (i, j, rows, cols) for each kernel offset: x_pad[:, :, rows, cols] is
    the (N, C, OH, OW) slice of elements that offset (i, j) sees in every window."""
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


def windows(x_pad, win):
    """A strided VIEW (N, C, KH, KW, OH, OW) of the windows of a padded input.

    windows[n, c, i, j, oh, ow] = x_pad[n, c, oh*SH + i, ow*SW + j]; no data is copied.
    """
    xp = get_array_module(x_pad)
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    n, c = x_pad.shape[:2]
    s_n, s_c, s_h, s_w = x_pad.strides
    return xp.lib.stride_tricks.as_strided(
        x_pad, shape=(n, c, kh, kw, oh, ow), strides=(s_n, s_c, s_h, s_w, s_h * sh, s_w * sw))


def im2col(x, win):
    """x (N, C, H, W) -> cols (C, KH, KW, N, OH, OW), a new C-contiguous array.

    cols[c, i, j, n, oh, ow] = x_pad[n, c, oh*SH + i, ow*SW + j] (zero padding).
    Reshaped to (C*KH*KW, N*OH*OW) (free: it is contiguous) it is the right-hand
    side of the convolution GEMM  W (F, C*KH*KW) @ cols -> (F, N*OH*OW).
    The order puts the GEMM's reduction axis (C, KH, KW) first, as W has it, and
    makes the matrix contiguous, which is what BLAS wants.
    """
    xp = get_array_module(x)
    view = windows(pad(x, win, 0), win)
    return xp.ascontiguousarray(view.transpose(1, 2, 3, 0, 4, 5))


def col2im(cols, win):
    """The adjoint of ``im2col``: cols (C, KH, KW, N, OH, OW) -> gx (N, C, H, W).

    Every column entry is added back to the input pixel it was copied from;
    pixels shared by overlapping windows receive the sum. One slice-add per
    kernel offset (i, j).

    The sums are taken in a (C, N, H, W) buffer, so that each slice-add reads one
    contiguous block cols[c, i, j]; the result is returned as an (N, C, H, W)
    transposed view of it (no copy).
    """
    c, n = cols.shape[0], cols.shape[3]
    g_pad = padded_zeros(cols, c, n, win)
    for i, j, rows, columns in offsets(win):
        g_pad[:, :, rows, columns] += cols[:, i, j]
    return unpad(g_pad, win).transpose(1, 0, 2, 3)


def max_pool(x, win):
    """x (N, C, H, W) -> (out, argmax), both (N, C, OH, OW).

    Padding is -inf, so a padded position never wins. ``argmax`` holds the
    winning kernel offset i*KW + j of each window (the first one on ties).
    """
    xp = get_array_module(x)
    x_pad = pad(x, win, -numpy.inf)
    out = argmax = None
    for i, j, rows, columns in offsets(win):
        patch = x_pad[:, :, rows, columns]
        if out is None:
            out = patch.copy()
            argmax = xp.zeros(out.shape, dtype=numpy.min_scalar_type(win.kernel[0] * win.kernel[1]))
            continue
        better = patch > out
        xp.copyto(argmax, i * win.kernel[1] + j, where=better)
        xp.maximum(out, patch, out=out)
    return out, argmax


def max_pool_backward(gy, argmax, win):
    """Route each window's gradient to the input it took its maximum from.

    gy, argmax (N, C, OH, OW) -> gx (N, C, H, W).
    """
    xp = get_array_module(gy)
    n, c = gy.shape[:2]
    g_pad = padded_zeros(gy, n, c, win)
    zero = xp.zeros((), dtype=gy.dtype)
    for i, j, rows, columns in offsets(win):
        g_pad[:, :, rows, columns] += xp.where(argmax == i * win.kernel[1] + j, gy, zero)
    return unpad(g_pad, win)


def window_sum(x, win):
    """x (N, C, H, W) -> (N, C, OH, OW): the sum over each window (zero padding)."""
    x_pad = pad(x, win, 0)
    total = None
    for _, _, rows, columns in offsets(win):
        patch = x_pad[:, :, rows, columns]
        if total is None:
            total = patch.copy()
        else:
            total += patch
    return total


def window_sum_backward(gy, win):
    """The adjoint of ``window_sum``: every input receives the sum of gy over
    the windows that contain it. gy (N, C, OH, OW) -> gx (N, C, H, W)."""
    n, c = gy.shape[:2]
    g_pad = padded_zeros(gy, n, c, win)
    for _, _, rows, columns in offsets(win):
        g_pad[:, :, rows, columns] += gy
    return unpad(g_pad, win)
