"""The numpy kernel set: the fast array code behind convolution, pooling and LRN.

It computes exactly what ``reference.py`` computes (the tests hold it to that),
with the same functions and the same shapes, but arranged for speed: no Python
loop over output positions, every convolution ONE matrix product, memory laid
out so that NumPy's inner loops run long. Nothing here is NumPy-specific: every
function takes its array module from its input, so the same code runs on CuPy
arrays (the "generic" GPU path).

What goes in and comes out at this file's edge is an (N, C, H, W) array; the
outputs are often transposed VIEWS of a buffer in another order (see below).
Every op accepts any strided array, so the next op never needs to know.

Shapes use N (batch), C (channels), H, W (input), KH, KW (kernel), SH, SW
(stride), PH, PW (padding), OH, OW (output). ``win`` is a
``minigrad.geometry.Window``: the input size, kernel, stride, padding and
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
    winning kernel offset i*KW + j of each window, by PyTorch's rule: the first
    maximum on ties, the first real (unpadded) element of a window that is all
    -inf, and the last NaN of a window that holds NaNs (its output is NaN).
    """
    xp = get_array_module(x)
    x_pad = pad(x, win, -numpy.inf)
    index_type = numpy.min_scalar_type(win.kernel[0] * win.kernel[1])
    out = argmax = None
    for i, j, rows, columns in offsets(win):
        patch = x_pad[rows, columns]
        if out is None:
            out = patch.copy()
            argmax = xp.empty(patch.shape, dtype=index_type)
            first = xp.asarray(first_real_offsets(win, index_type))
            argmax[...] = first.reshape(win.out + (1,) * (patch.ndim - 2))
            continue
        # Offsets come in increasing order, so "the last offset that beat the
        # running max" is the largest such offset: a maximum, not a masked write
        # (masked writes with random masks are several times slower in NumPy).
        offset = index_type.type(i * win.kernel[1] + j)
        xp.maximum(argmax, (patch > out) * offset, out=argmax)
        xp.maximum(out, patch, out=out)
    nan_windows = xp.isnan(out)
    if nan_windows.any():                       # rare: a second pass only when there are NaNs
        _point_at_the_last_nan(x_pad, win, nan_windows, argmax)
    return out, argmax


def first_real_offsets(win, index_type):
    """(OH, OW): the kernel offset i*KW + j of the first element of each window that is
    not padding (0 unless the window starts in the top or left padding). A NumPy array."""
    kw, (sh, sw), (ph, pw), (oh, ow) = win.kernel[1], win.stride, win.padding, win.out
    first_row = numpy.maximum(ph - sh * numpy.arange(oh), 0)
    first_column = numpy.maximum(pw - sw * numpy.arange(ow), 0)
    return (first_row[:, None] * kw + first_column[None, :]).astype(index_type)


def _point_at_the_last_nan(x_pad, win, nan_windows, argmax):
    """In windows holding NaN, make ``argmax`` the offset of their last NaN (in place)."""
    xp = get_array_module(x_pad)
    for i, j, rows, columns in offsets(win):
        is_nan = nan_windows & xp.isnan(x_pad[rows, columns])
        argmax[is_nan] = i * win.kernel[1] + j


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


# --- convolution -------------------------------------------------------------------------
# Y = W2 @ cols, one GEMM, with the columns running over (OH, OW, N), batch fastest
# (with groups: one GEMM per group, on row blocks of W2 and cols, see minigrad/ops/conv.py).
#
# A 1x1 convolution with stride 1 and no padding needs no im2col: each pixel's
# channel vector already is a column, so x itself, channels first, is the column
# matrix. Its columns may also run over (N, H, W) when that is cheaper to read.
#
# Every im2col product is ONE call to BLAS, never one per image: on a busy machine
# each multi-threaded BLAS call can wait for a time slice (measured here: 8
# per-image products took 8 times as long as one product of the same total size).
# The exception is an ungrouped 1x1 convolution of an ordinary (N, C, H, W) array with maps of
# at least PER_IMAGE_MIN_PIXELS pixels: there, N products W2 @ x[n] read x where it
# lies, while one product would first need a channels-first copy of x, which costs
# about as much as the product itself when F is small (measured on an idle machine:
# 1.1-1.2x a bare GEMM per image against 1.4-2.2x with the copy, on GoogLeNet's
# 14x14 and 28x28 maps; on 7x7 maps the copy wins).
PER_IMAGE_MIN_PIXELS = 100
BATCH_LAST = (1, 2, 3, 0)    # (N, C, H, W) -> (C, H, W, N): columns run over (H, W, N)
BATCH_FIRST = (1, 0, 2, 3)   # (N, C, H, W) -> (C, N, H, W): columns run over (N, H, W)


def _channels_first(a, order):
    """(N, C, H, W) -> a (C, pixels) matrix, pixels in ``order`` (a view when the memory allows)."""
    return a.transpose(order).reshape(a.shape[1], -1)


def _unflatten(matrix, order, shape):
    """The inverse of ``_channels_first``: a (C, pixels) matrix -> ``shape`` (N, C, H, W), a view."""
    return matrix.reshape([shape[axis] for axis in order]).transpose(tuple(numpy.argsort(order)))


def _is_pointwise(win):
    """A 1x1 kernel, stride 1, no padding: every pixel is its own window."""
    return win.kernel == (1, 1) and win.stride == (1, 1) and win.padding == (0, 0)


def conv2d_forward(x, W, b, win, groups=1):
    """x (N, C, H, W), W (F, C/groups, KH, KW), b (F,) or None -> (y (N, F, OH, OW), cache)."""
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    if (_is_pointwise(win) and groups == 1 and x.flags.c_contiguous
            and h * w >= PER_IMAGE_MIN_PIXELS):
        return _pointwise_per_image_forward(x, W, b)
    if not _is_pointwise(win):
        order = BATCH_LAST
        cols = im2col(x, win).reshape(c * kh * kw, -1)
    else:
        # x itself is the column matrix. An (N, C, H, W) array is copied channels
        # first image by image; the (C, H, W, N) and (H, W, N, C) layouts that
        # conv2d and the pools hand out need no copy at all.
        order = BATCH_FIRST if x.flags.c_contiguous else BATCH_LAST
        cols = _channels_first(x, order)
    Y = _grouped_product(_by_group(W.reshape(f, -1), groups), _by_group(cols, groups))
    if b is not None:
        Y += b.reshape(f, 1)
    y = _unflatten(Y, order, (n, f) + win.out)
    return y, ("one product", x.shape, W, cols, win, order, groups, b is not None)


def conv2d_backward(gy, cache):
    """gy (N, F, OH, OW) -> (gx, gW, gb), gb None when the forward had no bias."""
    if cache[0] == "per image":
        return _pointwise_per_image_backward(gy, cache)
    _, x_shape, W, cols, win, order, groups, has_bias = cache
    f, _, kh, kw = W.shape
    gy2 = _channels_first(gy, order)                               # (F, OH*OW*N), columns as in cols
    gy3, cols3 = _by_group(gy2, groups), _by_group(cols, groups)
    gW = _grouped_product(gy3, cols3.transpose(0, 2, 1)).reshape(W.shape)
    gcols = _grouped_product(_by_group(W.reshape(f, -1), groups).transpose(0, 2, 1), gy3)
    if _is_pointwise(win):
        gx = _unflatten(gcols, order, x_shape)
    else:
        gx = col2im(gcols.reshape(x_shape[1], kh, kw, *win.out, x_shape[0]), win)
    return gx, gW, gy2.sum(axis=1) if has_bias else None


def _by_group(matrix, groups):
    """(groups*R, P) -> (groups, R, P): row block k is group k's (a view). The rows of cols
    run over (c, i, j), channel first, and those of W2 over the filters, so channel block k
    and filter block k are row block k."""
    return matrix.reshape(groups, -1, matrix.shape[-1])


def _grouped_product(a, b):
    """a (G, M, K), b (G, K, P) -> (G*M, P): the product of each group's matrices, stacked.

    One BLAS call per group (one in all for groups = 1, as before groups existed): a
    stacked ``a @ b`` of transposed views can miss BLAS altogether (measured: 5x slower).
    """
    xp = get_array_module(a)
    out = xp.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype)
    for k in range(a.shape[0]):
        xp.matmul(a[k], b[k], out=out[k])
    return out.reshape(-1, b.shape[2])


def _pointwise_per_image_forward(x, W, b):
    """A 1x1 convolution as N products y[n] = W2 @ x[n], x[n] seen as (C, H*W)."""
    n, c, h, w = x.shape
    f = W.shape[0]
    x3 = x.reshape(n, c, h * w)                                    # a view: x is contiguous
    Y = W.reshape(f, c) @ x3                                       # (N, F, H*W)
    if b is not None:
        Y += b.reshape(f, 1)
    return Y.reshape(n, f, h, w), ("per image", x3, W, b is not None)


def _pointwise_per_image_backward(gy, cache):
    """gx[n] = W2^T @ gy[n];  gW = sum over n of gy[n] @ x[n]^T;  gb = gy summed over N, H, W."""
    _, x3, W, has_bias = cache
    n, c, pixels = x3.shape
    f = W.shape[0]
    gy3 = gy.reshape(n, f, pixels)
    gx = (W.reshape(f, c).T @ gy3).reshape(n, c, *gy.shape[2:])
    gW = (gy3 @ x3.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)
    return gx, gW, gy3.sum(axis=(0, 2)) if has_bias else None


# --- pooling: pixels first, (H, W, N, C) -------------------------------------------------------
def _pixels_first(x):
    """x (N, C, H, W) -> a contiguous (H, W, N, C) copy (free when x already lies so)."""
    return get_array_module(x).ascontiguousarray(x.transpose(2, 3, 0, 1))


def _batch_first(y):
    """(H, W, N, C) -> (N, C, H, W), a view (no copy)."""
    return y.transpose(2, 3, 0, 1)


def max_pool2d_forward(x, win):
    y, argmax = max_pool(_pixels_first(x), win)
    return _batch_first(y), (argmax, win)


def max_pool2d_backward(gy, cache):
    argmax, win = cache
    return _batch_first(max_pool_backward(_pixels_first(gy), argmax, win))


def avg_pool2d_forward(x, win, divisor):
    """``divisor`` (OH, OW) in x's dtype, on x's device."""
    divisor = divisor[:, :, None, None]                            # (OH, OW, 1, 1): pixels first
    return _batch_first(window_sum(_pixels_first(x), win) / divisor), (divisor, win)


def avg_pool2d_backward(gy, cache):
    divisor, win = cache
    return _batch_first(window_sum_backward(_pixels_first(gy) / divisor, win))


# --- local response normalization -------------------------------------------------------------
# Both window sums over channels are ``size`` slice-adds over a zero-padded copy,
# never a Python loop over channels. The backward's sum runs over the MIRRORED
# window (see minigrad/ops/lrn.py): `after` channels before j, `before` after it.
def channel_window_sum(v, before, after):
    """out[:, c] = sum of v[:, c - before] ... v[:, c + after], zeros outside the channels.
    A window reaching more than C - 1 channels to one side covers no more channels than one
    reaching exactly C - 1, so ``before`` and ``after`` are clamped to that (any size works)."""
    xp = get_array_module(v)
    channels = v.shape[1]
    reach = max(channels - 1, 0)
    before, after = min(before, reach), min(after, reach)
    padded = xp.zeros((v.shape[0], channels + before + after) + v.shape[2:], dtype=v.dtype)
    padded[:, before:before + channels] = v
    out = padded[:, 0:channels].copy()
    for offset in range(1, before + after + 1):
        out += padded[:, offset:offset + channels]
    return out


def lrn_forward(x, size, alpha, beta, k):
    before, after = size // 2, (size - 1) // 2
    s = k + (alpha / size) * channel_window_sum(x * x, before, after)
    y = x * s ** -beta
    return y, (x, y, s, size, alpha, beta)


def lrn_backward(gy, cache):
    x, y, s, size, alpha, beta = cache
    before, after = size // 2, (size - 1) // 2
    neighbours = channel_window_sum(gy * y / s, after, before)     # sum of g_c b_c / s_c
    return gy * s ** -beta - (2 * alpha * beta / size) * x * neighbours
