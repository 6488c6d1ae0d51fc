"""The reference kernel set: every op written the plain way, in (N, C, H, W) order.

Read this file first. Each function follows its formula with loops over output
positions (or channels), so that it is obviously right; it is slow, and it is
the oracle the tests hold the fast kernels (``numpy.py``) to. Arrays go in and
come out as ordinary (N, C, H, W) arrays, in the input's dtype.

``win`` is a ``minigrad.geometry.Window``: the input size (H, W), kernel
(KH, KW), stride (SH, SW), padding (PH, PW) and output size (OH, OW) of one
sliding-window op. Window (oh, ow) covers the padded rows oh*SH ... oh*SH + KH - 1
and columns ow*SW ... ow*SW + KW - 1.
"""
from ..backend import get_array_module


# --- convolution by im2col ------------------------------------------------------------
def zero_pad(x, win):
    """x (N, C, H, W) with PH zero rows above and below and PW zero columns on each side,
    plus the rows/columns a ceil-mode window may reach past that (the ``overhang``)."""
    xp = get_array_module(x)
    (ph, pw), (eh, ew) = win.padding, win.overhang
    n, c, h, w = x.shape
    x_pad = xp.zeros((n, c, h + 2 * ph + eh, w + 2 * pw + ew), dtype=x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    return x_pad


def im2col(x, win):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW).

    cols[n, :, oh*OW + ow] is window (oh, ow) of image n, flattened in (c, i, j)
    order: the same order as a filter W[f] (C, KH, KW) flattened. So the whole
    convolution of image n is one matrix product W.reshape(F, -1) @ cols[n].
    """
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    x_pad = zero_pad(x, win)
    n, c = x.shape[:2]
    cols = xp.empty((n, c * kh * kw, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = x_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]     # (N, C, KH, KW)
            cols[:, :, i, j] = window.reshape(n, c * kh * kw)
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(cols, x_shape, win):
    """The adjoint of ``im2col``: cols (N, C*KH*KW, OH*OW) -> (N, C, H, W).

    Every entry goes back to the pixel it was copied from; a pixel that lies in
    several (overlapping) windows receives the sum of their entries.
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.stride, win.out
    (ph, pw), (h, w) = win.padding, win.size
    n, c = x_shape[:2]
    g_pad = zero_pad(xp.zeros(x_shape, dtype=cols.dtype), win)
    windows = cols.reshape(n, c, kh, kw, oh, ow)
    for i in range(oh):
        for j in range(ow):
            g_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += windows[:, :, :, :, i, j]
    return g_pad[:, :, ph:ph + h, pw:pw + w]                  # the padding's share is dropped


def by_group(a, groups):
    """(..., groups*R, P) -> (..., groups, R, P): row block k of every matrix in ``a`` is
    group k's (a view). cols' rows are (c, i, j) with c outermost and W2's rows are the
    filters, so channel block k and filter block k are row block k."""
    return a.reshape(a.shape[:-2] + (groups, -1, a.shape[-1]))


def conv2d_forward(x, W, b, win, groups=1):
    """y[n, f] = W2 @ cols[n] + b[f], with W2 = W reshaped (F, C/groups*KH*KW), group by
    group: filter block k times the rows of channel block k."""
    f = W.shape[0]
    cols = im2col(x, win)                                      # (N, K, P), K = C*KH*KW, P = OH*OW
    W3 = by_group(W.reshape(f, -1), groups)                    # (G, F/G, K/G)
    y = (W3 @ by_group(cols, groups)).reshape(x.shape[0], f, -1)   # (N, G, F/G, P) -> (N, F, P)
    if b is not None:
        y += b.reshape(f, 1)
    return y.reshape((x.shape[0], f) + win.out), (x.shape, W, cols, win, groups, b is not None)


def conv2d_backward(gy, cache):
    """Group by group: gW = sum_n gy[n] @ cols[n]^T;  gcols[n] = W2^T @ gy[n], then col2im;
    gb = sum of gy over N, OH, OW. Returns (gx, gW, gb), gb None without a bias."""
    x_shape, W, cols, win, groups, has_bias = cache
    f = W.shape[0]
    gy3 = gy.reshape(gy.shape[0], f, -1)                       # (N, F, P)
    gy4, cols4 = by_group(gy3, groups), by_group(cols, groups)   # (N, G, F/G, P), (N, G, K/G, P)
    gW = (gy4 @ cols4.transpose(0, 1, 3, 2)).sum(axis=0).reshape(W.shape)
    W3 = by_group(W.reshape(f, -1), groups)                    # (G, F/G, K/G)
    gcols = (W3.transpose(0, 2, 1) @ gy4).reshape(cols.shape)  # (N, G, K/G, P) -> (N, K, P)
    gx = col2im(gcols, x_shape, win)
    gb = gy3.sum(axis=(0, 2)) if has_bias else None
    return gx, gW, gb


# --- pooling -------------------------------------------------------------------------------
def real_window(win, i, j):
    """(row slice, column slice) of window (i, j) clipped to the real input: the padding
    and the ceil-mode overhang hold no values (max pooling never picks them)."""
    (kh, kw), (sh, sw), (ph, pw), (h, w) = win.kernel, win.stride, win.padding, win.size
    top, left = i * sh - ph, j * sw - pw
    return (slice(max(top, 0), min(top + kh, h)), slice(max(left, 0), min(left + kw, w)))


def max_pool2d_forward(x, win):
    """y[n, c, i, j] = the largest value in window (i, j) of x[n, c]."""
    xp = get_array_module(x)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = real_window(win, i, j)
            y[:, :, i, j] = x[:, :, rows, columns].max(axis=(2, 3))
    return y, (x, win)


def max_pool2d_backward(gy, cache):
    """Each window's gradient goes to the element that was its maximum: the first one
    (in row-major order) on ties, and the last NaN in a window holding NaNs (PyTorch's
    rule). Windows that share a maximum add up there."""
    x, win = cache
    xp = get_array_module(x)
    gx = xp.zeros(x.shape, dtype=gy.dtype)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = real_window(win, i, j)
            window = x[:, :, rows, columns]                            # (N, C, kh, kw)
            flat = window.reshape(window.shape[:2] + (-1,))
            winner = window_winner(flat)[:, :, None]
            one_hot = xp.arange(flat.shape[2]) == winner               # (N, C, kh*kw)
            gx[:, :, rows, columns] += (one_hot * gy[:, :, i, j, None]).reshape(window.shape)
    return gx


def window_winner(flat):
    """flat (N, C, K) -> (N, C): the index of each row's first maximum, or of its last NaN."""
    xp = get_array_module(flat)
    is_nan = xp.isnan(flat)
    last_nan = flat.shape[2] - 1 - is_nan[:, :, ::-1].argmax(axis=2)
    return xp.where(is_nan.any(axis=2), last_nan, flat.argmax(axis=2))


def avg_pool2d_forward(x, win, divisor):
    """y[n, c, i, j] = (sum of window (i, j) of x[n, c]) / divisor[i, j]."""
    xp = get_array_module(x)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = real_window(win, i, j)
            y[:, :, i, j] = x[:, :, rows, columns].sum(axis=(2, 3)) / divisor[i, j]
    return y, (x.shape, win, divisor)


def avg_pool2d_backward(gy, cache):
    """Every element of window (i, j) receives gy[..., i, j] / divisor[i, j]."""
    x_shape, win, divisor = cache
    xp = get_array_module(gy)
    gx = xp.zeros(x_shape, dtype=gy.dtype)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = real_window(win, i, j)
            gx[:, :, rows, columns] += (gy[:, :, i, j] / divisor[i, j])[:, :, None, None]
    return gx


# --- local response normalization ----------------------------------------------------------
def channel_window(c, channels, size):
    """The channels c - size//2 ... c + (size-1)//2 that normalize channel c, clipped."""
    return slice(max(c - size // 2, 0), min(c + (size - 1) // 2 + 1, channels))


def lrn_forward(x, size, alpha, beta, k):
    """s_c = k + alpha/size * sum_{c' in window(c)} x_c'^2;   y_c = x_c * s_c^-beta."""
    xp = get_array_module(x)
    s = xp.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        neighbours = x[:, channel_window(c, channels, size)]
        s[:, c] = k + alpha / size * (neighbours * neighbours).sum(axis=1)
    return x * s ** -beta, (x, s, size, alpha, beta)


def lrn_backward(gy, cache):
    """dy_c/dx_j = [c == j] s_c^-beta - 2 alpha beta / size * x_c x_j s_c^(-beta-1) for every
    j in window(c), so gx_j = gy_j s_j^-beta - 2 alpha beta / size * x_j * (the sum over the
    channels c whose window holds j of gy_c x_c s_c^(-beta-1))."""
    x, s, size, alpha, beta = cache
    gx = gy * s ** -beta
    through_s = gy * x * s ** (-beta - 1)                    # gy_c x_c s_c^(-beta-1)
    channels = x.shape[1]
    for c in range(channels):
        window = channel_window(c, channels, size)
        gx[:, window] -= (2 * alpha * beta / size) * x[:, window] * through_s[:, c:c + 1]
    return gx
