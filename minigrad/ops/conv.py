"""2-D convolution (cross-correlation, as in every deep-learning framework).

    y[n, f, oh, ow] = b[f] + sum_{c, i, j} W[f, c, i, j] * x_pad[n, c, oh*SH + i, ow*SW + j]

im2col turns this into ONE matrix product. Copy every window of the padded
input into a column: cols (C*KH*KW, N*OH*OW). Then

    forward:   Y  = W2 @ cols            W2 = W reshaped (F, C*KH*KW), Y (F, N*OH*OW)
    backward:  gW = gY @ cols^T          (F, C*KH*KW)
               gcols = W2^T @ gY         (C*KH*KW, N*OH*OW), then col2im -> gx
               gb = gy summed over N, OH, OW

A 1x1 convolution with stride 1 and no padding needs no im2col: each pixel's
channel vector is already a column, so y[n] = W2 @ x[n] for x[n] as (C, H*W).
"""
from .. import kernels
from ._sizes import check_window, window


def im2col(x, kernel_size, stride=1, padding=0):
    """x (N, C, H, W) -> cols (C, KH, KW, N, OH, OW), a new contiguous array.

    cols[c, i, j, n, oh, ow] = x_pad[n, c, oh*SH + i, ow*SW + j], where x_pad is x
    with ``padding`` zeros around H and W. ``cols.reshape(C*KH*KW, N*OH*OW)`` is
    the column matrix of the convolution GEMM (the reshape copies nothing).
    ``kernel_size``, ``stride`` and ``padding`` are ints or (h, w) pairs.
    """
    win = window(x.shape[2:], kernel_size, stride, padding)
    return kernels.for_array(x).im2col(x, win)


def col2im(cols, input_size, stride=1, padding=0):
    """The adjoint of ``im2col``: cols (C, KH, KW, N, OH, OW) -> (N, C, H, W).

    Each column entry is added back to the pixel it was copied from (pixels in
    several windows get the sum); ``input_size`` is (H, W). This turns the
    gradient of the columns into the gradient of the input.
    """
    kernel_size = cols.shape[1:3]
    win = window(input_size, kernel_size, stride, padding)
    return kernels.for_array(cols).col2im(cols, win)


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
    (oh, ow), W2 = win.out, W.reshape(f, c * kh * kw)
    if _is_pointwise(win):
        cols = None
        y = (W2 @ x.reshape(n, c, h * w)).reshape(n, f, h, w)      # N products (F,C)@(C,H*W)
    else:
        cols = kernels.for_array(x).im2col(x, win).reshape(c * kh * kw, n * oh * ow)
        y = (W2 @ cols).reshape(f, n, oh, ow).transpose(1, 0, 2, 3)
    if b is not None:
        y += b.reshape(f, 1, 1)
    return y, (x, W, cols, win, b is not None)


def conv2d_backward(gy, cache):
    """gy (N, F, OH, OW) -> (gx, gW) or (gx, gW, gb) when the forward had a bias."""
    x, W, cols, win, has_bias = cache
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    W2 = W.reshape(f, c * kh * kw)
    gy2 = gy.transpose(1, 0, 2, 3).reshape(f, -1)                  # (F, N*OH*OW)
    if cols is None:                                               # 1x1: the input is the column matrix
        gW = gy2 @ x.transpose(1, 0, 2, 3).reshape(c, -1).T
        gx = (W2.T @ gy.reshape(n, f, h * w)).reshape(x.shape)     # N products (C,F)@(F,H*W)
    else:
        gW = gy2 @ cols.T
        gcols = (W2.T @ gy2).reshape(c, kh, kw, n, *win.out)
        gx = kernels.for_array(gy).col2im(gcols, win)
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

