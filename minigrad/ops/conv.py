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
matrix (see ``_columns`` and ``_per_image`` for the two ways of reading it).
"""
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


def _is_pointwise(win):
    """A 1x1 kernel, stride 1, no padding: every pixel is its own window."""
    return win.kernel == (1, 1) and win.stride == (1, 1) and win.padding == (0, 0)


def _per_image(x, win):
    """Run a 1x1 convolution as N products W2 @ x[n], x[n] seen as (C, H*W)?

    Yes when x lies in (N, C, H, W) order, so nothing is copied, and each map
    has at least 64 pixels: BLAS runs narrower products well below its speed
    on one wide product, and then one copy of x to (C, H*W*N) pays off.
    """
    return _is_pointwise(win) and x.flags.c_contiguous and win.size[0] * win.size[1] >= 64


def _columns(x, win):
    """The GEMM's right-hand side (C*KH*KW, OH*OW*N): im2col, or x itself for a 1x1.

    For a 1x1 the transposed view of x is free when x already lies in (C, H, W, N)
    or (H, W, N, C) order, as the outputs of conv2d and of the pools do.
    """
    if _is_pointwise(win):
        return x.transpose(1, 2, 3, 0).reshape(x.shape[1], -1)
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = win.kernel, win.out
    return kernels.for_array(x).im2col(x, win).reshape(c * kh * kw, oh * ow * n)


def conv2d_forward(x, W, b=None, stride=1, padding=0):
    """x (N, C, H, W), W (F, C, KH, KW), b (F,) or None -> y (N, F, OH, OW).

    ``stride`` and ``padding`` are ints or (h, w) pairs.
    """
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    win = window((h, w), (kh, kw), stride, padding)
    W2 = W.reshape(f, c * kh * kw)
    cols = None if _per_image(x, win) else _columns(x, win)
    Y = W2 @ (x.reshape(n, c, h * w) if cols is None else cols)    # (N, F, H*W) or (F, OH*OW*N)
    if b is not None:
        Y += b.reshape(f, 1)
    if cols is None:
        return Y.reshape(n, f, h, w), (x, W, cols, win, b is not None)
    return Y.reshape(f, *win.out, n).transpose(3, 0, 1, 2), (x, W, cols, win, b is not None)


def conv2d_backward(gy, cache):
    """gy (N, F, OH, OW) -> (gx, gW) or (gx, gW, gb) when the forward had a bias."""
    x, W, cols, win, has_bias = cache
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    W2 = W.reshape(f, c * kh * kw)
    if cols is None:                                       # per-image 1x1: columns in (N, H, W) order
        gy2 = gy.transpose(1, 0, 2, 3).reshape(f, -1)
        gW = gy2 @ x.transpose(1, 0, 2, 3).reshape(c, -1).T
        gx = (W2.T @ gy2).reshape(c, n, h, w).transpose(1, 0, 2, 3)
    else:                                                  # columns in (OH, OW, N) order
        gy2 = gy.transpose(1, 2, 3, 0).reshape(f, -1)
        gW = gy2 @ cols.T
        gcols = W2.T @ gy2
        if _is_pointwise(win):
            gx = gcols.reshape(c, h, w, n).transpose(3, 0, 1, 2)
        else:
            gx = kernels.for_array(gy).col2im(gcols.reshape(c, kh, kw, *win.out, n), win)
    gW = gW.reshape(W.shape)
    if not has_bias:
        return gx, gW
    return gx, gW, gy2.sum(axis=1)


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

