"""2-D convolution (cross-correlation, as in every deep-learning framework).

    y[n, f, oh, ow] = b[f] + sum_{c, i, j} W[f, c, i, j] * x_pad[n, c, oh*SH + i, ow*SW + j]

im2col turns this into ONE matrix product. Copy every window of the padded
input into a column: cols (C*KH*KW, P) with P = OH*OW*N columns. Then

    forward:   Y  = W2 @ cols            W2 = W reshaped (F, C*KH*KW), Y (F, P)
    backward:  gW = gY @ cols^T          (F, C*KH*KW)
               gcols = W2^T @ gY         (C*KH*KW, P), then col2im -> gx
               gb = gY summed over its P columns

The columns run over (OH, OW, N) with the batch index fastest; why is explained
in ``minigrad/kernels/cpu.py``. Y is handed back as an (N, F, OH, OW) view.

A 1x1 convolution with stride 1 and no padding needs no im2col: each pixel's
channel vector is already a column, so x itself, channels first, is the column
matrix. Its columns may also run over (N, H, W) when that is cheaper to read.

Every im2col product is ONE call to BLAS, never one per image: on a busy machine
each multi-threaded BLAS call can wait for a time slice (measured here: 8
per-image products took 8 times as long as one product of the same total size).
The exception is a 1x1 convolution of an ordinary (N, C, H, W) array with maps of
at least ``PER_IMAGE_MIN_PIXELS`` pixels: there, N products W2 @ x[n] read x
where it lies, while one product would first need a channels-first copy of x,
which costs about as much as the product itself when F is small (measured on an
idle machine: 1.1-1.2x a bare GEMM per image against 1.4-2.2x with the copy, on
GoogLeNet's 14x14 and 28x28 maps; on 7x7 maps the copy wins).
"""
import numpy

from .. import kernels
from ._sizes import check_window, window


def im2col(x, kernel_size, stride=1, padding=0):
    """x (N, C, H, W) -> cols (C, KH, KW, OH, OW, N), a new contiguous array.

    cols[c, i, j, oh, ow, n] = x_pad[n, c, oh*SH + i, ow*SW + j], where x_pad is x
    with ``padding`` zeros around H and W. ``cols.reshape(C*KH*KW, OH*OW*N)`` is
    the column matrix of the convolution GEMM (the reshape copies nothing).
    ``kernel_size``, ``stride`` and ``padding`` are ints or (h, w) pairs.
    """
    win = window(x.shape[2:], kernel_size, stride, padding)
    return kernels.for_array(x).im2col(x, win)


def col2im(cols, input_size, stride=1, padding=0):
    """The adjoint of ``im2col``: cols (C, KH, KW, OH, OW, N) -> (N, C, H, W).

    Each column entry is added back to the pixel it was copied from (pixels in
    several windows get the sum); ``input_size`` is (H, W). This turns the
    gradient of the columns into the gradient of the input.
    """
    win = window(input_size, cols.shape[1:3], stride, padding)
    return kernels.for_array(cols).col2im(cols, win)


BATCH_LAST = (1, 2, 3, 0)    # (N, C, H, W) -> (C, H, W, N): columns run over (H, W, N)
BATCH_FIRST = (1, 0, 2, 3)   # (N, C, H, W) -> (C, N, H, W): columns run over (N, H, W)


def _channels_first(a, order):
    """(N, C, H, W) -> a (C, pixels) matrix, pixels in ``order`` (a view when the memory allows)."""
    return a.transpose(order).reshape(a.shape[1], -1)


def _unflatten(matrix, order, shape):
    """The inverse of ``_channels_first``: a (C, pixels) matrix -> ``shape`` (N, C, H, W), a view."""
    return matrix.reshape([shape[axis] for axis in order]).transpose(tuple(numpy.argsort(order)))


PER_IMAGE_MIN_PIXELS = 100


def _is_pointwise(win):
    """A 1x1 kernel, stride 1, no padding: every pixel is its own window."""
    return win.kernel == (1, 1) and win.stride == (1, 1) and win.padding == (0, 0)


def conv2d_forward(x, W, b=None, stride=1, padding=0):
    """x (N, C, H, W), W (F, C, KH, KW), b (F,) or None -> y (N, F, OH, OW).

    ``stride`` and ``padding`` are ints or (h, w) pairs.
    """
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    win = window((h, w), (kh, kw), stride, padding)
    if _is_pointwise(win) and x.flags.c_contiguous and h * w >= PER_IMAGE_MIN_PIXELS:
        return _pointwise_per_image_forward(x, W, b)
    if not _is_pointwise(win):
        order = BATCH_LAST
        cols = kernels.for_array(x).im2col(x, win).reshape(c * kh * kw, -1)
    else:
        # x itself is the column matrix. An (N, C, H, W) array is copied channels
        # first image by image; the (C, H, W, N) and (H, W, N, C) layouts that
        # conv2d and the pools hand out need no copy at all.
        order = BATCH_FIRST if x.flags.c_contiguous else BATCH_LAST
        cols = _channels_first(x, order)
    Y = W.reshape(f, -1) @ cols                                    # (F, OH*OW*N), one GEMM
    if b is not None:
        Y += b.reshape(f, 1)
    y = _unflatten(Y, order, (n, f) + win.out)
    return y, (x.shape, W, cols, win, order, b is not None)


def conv2d_backward(gy, cache):
    """gy (N, F, OH, OW) -> (gx, gW) or (gx, gW, gb) when the forward had a bias."""
    if cache[0] == "per image":
        return _pointwise_per_image_backward(gy, cache)
    x_shape, W, cols, win, order, has_bias = cache
    f, c, kh, kw = W.shape
    gy2 = _channels_first(gy, order)                               # (F, OH*OW*N), columns as in cols
    gW = (gy2 @ cols.T).reshape(W.shape)
    gcols = W.reshape(f, -1).T @ gy2
    if _is_pointwise(win):
        gx = _unflatten(gcols, order, x_shape)
    else:
        gx = kernels.for_array(gy).col2im(gcols.reshape(c, kh, kw, *win.out, x_shape[0]), win)
    if not has_bias:
        return gx, gW
    return gx, gW, gy2.sum(axis=1)


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
    if not has_bias:
        return gx, gW
    return gx, gW, gy3.sum(axis=(0, 2))


def check_conv2d(x, W, b=None, stride=1, padding=0):
    """Raise a ValueError naming conv2d, what it expected and what it got."""
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected x of shape (N, C, H, W), got shape {x.shape}")
    if W.ndim != 4:
        raise ValueError(f"conv2d: expected W of shape (F, C, KH, KW), got shape {W.shape}")
    for name, array in (("x", x), ("W", W), ("b", b)):
        if array is not None and array.dtype.kind != "f":
            raise ValueError(f"conv2d: expected a floating-point {name}, got dtype {array.dtype}")
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"conv2d: x has {x.shape[1]} channels but W expects {W.shape[1]} "
                         f"(x {x.shape}, W {W.shape})")
    if b is not None and b.shape != (W.shape[0],):
        raise ValueError(f"conv2d: expected bias of shape ({W.shape[0]},), got {b.shape}")
    check_window("conv2d", x.shape, W.shape[2:], stride, padding)

