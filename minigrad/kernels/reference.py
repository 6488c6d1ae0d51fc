"""The reference kernel set: every op written the plain way, in (N, C, H, W) order.

Read this file first. Each function follows its formula with loops over output
positions (or channels), so that it is obviously right; it is slow, and it is
the oracle the tests hold the fast kernels (``vectorized.py``, ``cuda/``) to. Arrays
go in and come out as ordinary (N, C, H, W) arrays, in the input's dtype.

Shapes: N images, C channels, H x W input, C_out output channels (filters), KH x KW
kernel, OH x OW output. ``win`` is a ``minigrad.geometry.Window``: the input size (H, W),
kernel (KH, KW), stride (SH, SW), padding (PH, PW) and output size (OH, OW) of one
sliding-window op. Window (oh, ow) covers the padded rows oh*SH ... oh*SH + KH - 1
and columns ow*SW ... ow*SW + KW - 1.

Each forward returns its output and a cache, a small named tuple of what its backward
needs (``Conv2dCache``, ...).
"""
from typing import Any, NamedTuple, Tuple

from ..backend import get_array_module
from ..geometry import Window


# --- convolution by im2col ------------------------------------------------------------
def im2col(x, win):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW).

    cols[n, :, oh*OW + ow] is window (oh, ow) of image n, flattened in (c, i, j)
    order: the same order as a filter weight[o] (C, KH, KW) flattened. So the whole
    convolution of image n is one matrix product weight.reshape(C_out, -1) @ cols[n].
    """
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    x_pad = _zero_pad(x, win)
    n, c = x.shape[:2]
    cols = xp.empty((n, c * kh * kw, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = x_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]     # (N, C, KH, KW)
            cols[:, :, i, j] = window.reshape(n, c * kh * kw)
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(cols, x_shape, win):
    """The adjoint of ``im2col``: cols (N, C*KH*KW, OH*OW) -> (N, C, H, W) = ``x_shape``.

    Every entry goes back to the pixel it was copied from; a pixel that lies in
    several (overlapping) windows receives the sum of their entries.
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    (ph, pw), (h, w) = win.padding, win.size
    n, c = x_shape[:2]
    g_pad = _zero_pad(xp.zeros(x_shape, dtype=cols.dtype), win)
    windows = cols.reshape(n, c, kh, kw, oh, ow)
    for i in range(oh):
        for j in range(ow):
            g_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += windows[:, :, :, :, i, j]
    return g_pad[:, :, ph:ph + h, pw:pw + w]                  # the padding's share is dropped


def _zero_pad(x, win):
    """x (N, C, H, W) with PH zero rows above and below and PW zero columns on each side,
    plus the rows/columns a ceil-mode window may reach past that (the ``overhang``)."""
    xp = get_array_module(x)
    (ph, pw), (h, w) = win.padding, win.size
    x_pad = xp.zeros(x.shape[:2] + win.padded_size, dtype=x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    return x_pad


def _by_group(a, groups):
    """(..., groups*R, P) -> (..., groups, R, P): row block k of every matrix in ``a`` is
    group k's (a view). cols' rows are (c, i, j) with c outermost and weight2's rows are
    the filters, so channel block k and filter block k are row block k."""
    return a.reshape(a.shape[:-2] + (groups, -1, a.shape[-1]))


class Conv2dCache(NamedTuple):
    """What ``conv2d_backward`` needs from the forward."""
    x_shape: Tuple[int, ...]   # (N, C, H, W)
    weight: Any                # (C_out, C/groups, KH, KW)
    cols: Any                  # im2col(x): (N, C*KH*KW, OH*OW)
    win: Window
    groups: int
    has_bias: bool
    relu_output: Any = None    # y when the forward applied a ReLU (where its gradient passes)


def conv2d_forward(x, weight, bias, win, groups=1, relu=False):
    """y[n, o] = weight2 @ cols[n] + bias[o], with weight2 = weight reshaped
    (C_out, C/groups*KH*KW), group by group: filter block k times the rows of channel
    block k. x (N, C, H, W) -> y (N, C_out, OH, OW). With ``relu``, y = max(y, 0) (NaN
    kept), the ReLU that follows the convolution done in the same call."""
    xp = get_array_module(x)
    c_out = weight.shape[0]
    cols = im2col(x, win)                                      # (N, K, P), K = C*KH*KW, P = OH*OW
    weight3 = _by_group(weight.reshape(c_out, -1), groups)     # (G, C_out/G, K/G)
    y = weight3 @ _by_group(cols, groups)                      # (N, G, C_out/G, P)
    y = y.reshape(x.shape[0], c_out, -1)                       # (N, C_out, P)
    if bias is not None:
        y += bias.reshape(c_out, 1)
    y = y.reshape((x.shape[0], c_out) + win.out)
    if relu:
        y = xp.maximum(y, 0)
    return y, Conv2dCache(x.shape, weight, cols, win, groups, bias is not None, y if relu else None)


def conv2d_backward(gy, cache, input_grad=True):
    """Group by group: gweight = sum_n gy[n] @ cols[n]^T;  gcols[n] = weight2^T @ gy[n], then
    col2im; gbias = sum of gy over N, OH, OW. Returns (gx, gweight, gbias), gbias None
    without a bias, gx None when ``input_grad`` is False (x needs no gradient). After a ReLU,
    gy first passes only where the output is not <= 0 (y > 0, or NaN: as
    minigrad/ops/elementwise.py's ReLU)."""
    xp = get_array_module(gy)
    weight, cols, groups = cache.weight, cache.cols, cache.groups
    c_out = weight.shape[0]
    if cache.relu_output is not None:
        gy = xp.where(~(cache.relu_output <= 0), gy, 0)
    gy3 = gy.reshape(gy.shape[0], c_out, -1)                   # (N, C_out, P)
    gy4, cols4 = _by_group(gy3, groups), _by_group(cols, groups)   # (N, G, C_out/G, P), (N, G, K/G, P)
    gweight = (gy4 @ cols4.transpose(0, 1, 3, 2)).sum(axis=0).reshape(weight.shape)
    gbias = gy3.sum(axis=(0, 2)) if cache.has_bias else None
    if not input_grad:
        return None, gweight, gbias
    weight3 = _by_group(weight.reshape(c_out, -1), groups)     # (G, C_out/G, K/G)
    gcols = (weight3.transpose(0, 2, 1) @ gy4).reshape(cols.shape)   # (N, G, K/G, P) -> (N, K, P)
    return col2im(gcols, cache.x_shape, cache.win), gweight, gbias


# --- pooling -------------------------------------------------------------------------------
# Window (i, j) covers the input's rows and columns win.input_region(i, j): the padding
# and the ceil-mode overhang hold no values (max pooling never picks them).
class MaxPool2dCache(NamedTuple):
    """What ``max_pool2d_backward`` needs from the forward."""
    x: Any                     # (N, C, H, W)
    win: Window


def max_pool2d_forward(x, win, argmax=True):
    """y[n, c, i, j] = the largest value in window (i, j) of x[n, c]. The backward finds
    the maximum again in x: with ``argmax`` False there is nothing to keep (cache None)."""
    xp = get_array_module(x)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = win.input_region(i, j)
            y[:, :, i, j] = x[:, :, rows, columns].max(axis=(2, 3))
    return y, (MaxPool2dCache(x, win) if argmax else None)


def max_pool2d_backward(gy, cache):
    """Each window's gradient goes to the element that was its maximum: the first one
    (in row-major order) on ties, and the last NaN in a window holding NaNs (PyTorch's
    rule). Windows that share a maximum add up there."""
    x, win = cache
    xp = get_array_module(x)
    gx = xp.zeros(x.shape, dtype=gy.dtype)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = win.input_region(i, j)
            window = x[:, :, rows, columns]                            # (N, C, kh, kw)
            flat = window.reshape(window.shape[:2] + (-1,))
            winner = _index_of_maximum(flat)[:, :, None]
            one_hot = xp.arange(flat.shape[2]) == winner               # (N, C, kh*kw)
            gx[:, :, rows, columns] += (one_hot * gy[:, :, i, j, None]).reshape(window.shape)
    return gx


def _index_of_maximum(flat):
    """flat (N, C, K) -> (N, C): the index of each row's first maximum, or of its last NaN."""
    xp = get_array_module(flat)
    is_nan = xp.isnan(flat)
    last_nan = flat.shape[2] - 1 - is_nan[:, :, ::-1].argmax(axis=2)
    return xp.where(is_nan.any(axis=2), last_nan, flat.argmax(axis=2))


class AvgPool2dCache(NamedTuple):
    """What ``avg_pool2d_backward`` needs from the forward."""
    x_shape: Tuple[int, ...]   # (N, C, H, W)
    win: Window
    divisor: Any               # (OH, OW)


def avg_pool2d_forward(x, win, divisor):
    """y[n, c, i, j] = (sum of window (i, j) of x[n, c]) / divisor[i, j]."""
    xp = get_array_module(x)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = win.input_region(i, j)
            y[:, :, i, j] = x[:, :, rows, columns].sum(axis=(2, 3)) / divisor[i, j]
    return y, AvgPool2dCache(x.shape, win, divisor)


def avg_pool2d_backward(gy, cache):
    """Every element of window (i, j) receives gy[..., i, j] / divisor[i, j]."""
    win, divisor = cache.win, cache.divisor
    xp = get_array_module(gy)
    gx = xp.zeros(cache.x_shape, dtype=gy.dtype)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = win.input_region(i, j)
            gx[:, :, rows, columns] += (gy[:, :, i, j] / divisor[i, j])[:, :, None, None]
    return gx


# --- local response normalization ----------------------------------------------------------
def _neighbours(c, channels, size):
    """The channels c - size//2 ... c + (size-1)//2 whose squares normalize channel c
    (its neighbours, itself included), clipped to the channels there are."""
    return slice(max(c - size // 2, 0), min(c + (size - 1) // 2 + 1, channels))


class LrnCache(NamedTuple):
    """What ``lrn_backward`` needs from the forward."""
    x: Any                     # (N, C, ...)
    s: Any                     # the normalizer s, x's shape
    size: int
    alpha: float
    beta: float


def lrn_forward(x, size, alpha, beta, k):
    """s_c = k + alpha/size * sum_{c' in neighbours(c)} x_c'^2;   y_c = x_c * s_c^-beta."""
    xp = get_array_module(x)
    s = xp.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        neighbours = x[:, _neighbours(c, channels, size)]
        s[:, c] = k + alpha / size * (neighbours * neighbours).sum(axis=1)
    return x * s ** -beta, LrnCache(x, s, size, alpha, beta)


def lrn_backward(gy, cache):
    """dy_c/dx_j = [c == j] s_c^-beta - 2 alpha beta / size * x_c x_j s_c^(-beta-1) for every
    j in neighbours(c), so gx_j = gy_j s_j^-beta - 2 alpha beta / size * x_j * (the sum over
    the channels c that have j as a neighbour of gy_c x_c s_c^(-beta-1))."""
    x, s, size, alpha, beta = cache
    gx = gy * s ** -beta
    through_s = gy * x * s ** (-beta - 1)                    # gy_c x_c s_c^(-beta-1)
    channels = x.shape[1]
    for c in range(channels):
        neighbours = _neighbours(c, channels, size)
        gx[:, neighbours] -= (2 * alpha * beta / size) * x[:, neighbours] * through_s[:, c:c + 1]
    return gx
