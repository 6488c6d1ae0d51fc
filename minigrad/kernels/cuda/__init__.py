"""The cuda kernel set: hand-written CUDA C kernels (the .cu files beside this file),
launched through CuPy on a GPU.

The same functions and shapes as ``reference.py`` and ``vectorized.py``. Convolution is
im2col (a kernel) and batched matrix products (cuBLAS, through CuPy; a grouped
convolution adds a group axis to the batch), its backward col2im in gather form; pooling and LRN are one kernel each way. Every kernel is
written one thread per output element (or per input element for a backward, gathering
what it receives: no atomics), so the same source also runs on the CPU through its
twin (``launch.py``): on NumPy arrays this set runs there, which is how the tests
check the kernels' index arithmetic on a machine without a GPU (slowly: one C call
per simulated thread).

Layouts: arrays go in and come out as contiguous (N, C, H, W) arrays; the columns
of a convolution are (N, C*KH*KW, OH*OW), as in ``reference.py``.
"""
import numpy

from ...backend import get_array_module
from .launch import launcher_for


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
def _is_pointwise(win):
    return win.kernel == (1, 1) and win.stride == (1, 1) and win.padding == (0, 0)


def im2col(x, win):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW), by the im2col kernel."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = win.kernel, win.out
    cols = xp.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    launcher_for(x).run("im2col.cu", "im2col", cols.size, x, cols, *_geometry(x.shape, win))
    return cols


def col2im(cols, x_shape, win):
    """The adjoint of ``im2col``, gathering: cols (N, C*KH*KW, OH*OW) -> (N, C, H, W)."""
    xp = get_array_module(cols)
    cols = xp.ascontiguousarray(cols)
    gx = xp.empty(x_shape, dtype=cols.dtype)
    launcher_for(cols).run("im2col.cu", "col2im", gx.size, cols, gx, *_geometry(x_shape, win))
    return gx


def by_group(a, groups):
    """(N, groups*R, P) -> (N, groups, R, P): row block k of each image's matrix is group
    k's (a view of a contiguous array; see minigrad/ops/conv.py for why the blocks line up)."""
    return a.reshape(a.shape[0], groups, -1, a.shape[2])


def group_rows(a, groups):
    """(N, groups*R, P) -> (groups, R, N*P): group k's rows with every image's columns side
    by side (a copy), so that one product per group sums over the images too."""
    n, rows, p = a.shape
    return by_group(a, groups).transpose(1, 2, 0, 3).reshape(groups, rows // groups, n * p)


def conv2d_forward(x, W, b, win, groups=1):
    """y[n] = W2 @ cols[n] (+ b), group by group: one batched product over the images and
    the groups; a 1x1 convolution needs no im2col."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    f = W.shape[0]
    cols = xp.ascontiguousarray(x).reshape(n, c, h * w) if _is_pointwise(win) else im2col(x, win)
    W3 = W.reshape(groups, f // groups, -1)                      # (G, F/G, K/G)
    y = xp.matmul(W3, by_group(cols, groups)).reshape(n, f, -1)  # (N, G, F/G, P) -> (N, F, P)
    if b is not None:
        y += b.reshape(f, 1)
    return y.reshape((n, f) + win.out), (x.shape, W, cols, win, groups, b is not None)


def conv2d_backward(gy, cache):
    """Per group: gW = the sum over n of gy[n] @ cols[n]^T (one product, images side by side);
    gcols = W2^T @ gy; gx = col2im(gcols)."""
    xp = get_array_module(gy)
    x_shape, W, cols, win, groups, has_bias = cache
    f = W.shape[0]
    gy3 = xp.ascontiguousarray(gy).reshape(gy.shape[0], f, -1)  # (N, F, OH*OW)
    gW = xp.matmul(group_rows(gy3, groups), group_rows(cols, groups).transpose(0, 2, 1))
    W3 = W.reshape(groups, f // groups, -1)                      # (G, F/G, K/G)
    gcols = xp.matmul(W3.transpose(0, 2, 1), by_group(gy3, groups)).reshape(cols.shape)
    gx = gcols.reshape(x_shape) if _is_pointwise(win) else col2im(gcols, x_shape, win)
    return gx, gW.reshape(W.shape), gy3.sum(axis=(0, 2)) if has_bias else None


# --- pooling ---------------------------------------------------------------------------------------
def max_pool2d_forward(x, win):
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    argmax = xp.empty(y.shape, dtype=numpy.int32)              # h*W + w of each window's maximum
    launcher_for(x).run("pool.cu", "max_pool_forward", y.size, x, y, argmax, *_geometry(x.shape, win))
    return y, (argmax, x.shape, win)


def max_pool2d_backward(gy, cache):
    xp = get_array_module(gy)
    argmax, x_shape, win = cache
    gy = xp.ascontiguousarray(gy)
    gx = xp.empty(x_shape, dtype=gy.dtype)
    launcher_for(gy).run("pool.cu", "max_pool_backward", gx.size, gy, argmax, gx, *_geometry(x_shape, win))
    return gx


def avg_pool2d_forward(x, win, divisor):
    """``divisor`` (OH, OW), in x's dtype on x's device."""
    xp = get_array_module(x)
    x, divisor = xp.ascontiguousarray(x), xp.ascontiguousarray(divisor)
    y = xp.empty(x.shape[:2] + win.out, dtype=x.dtype)
    launcher_for(x).run("pool.cu", "avg_pool_forward", y.size, x, divisor, y, *_geometry(x.shape, win))
    return y, (divisor, x.shape, win)


def avg_pool2d_backward(gy, cache):
    xp = get_array_module(gy)
    divisor, x_shape, win = cache
    gy = xp.ascontiguousarray(gy)
    gx = xp.empty(x_shape, dtype=gy.dtype)
    launcher_for(gy).run("pool.cu", "avg_pool_backward", gx.size, gy, divisor, gx, *_geometry(x_shape, win))
    return gx


# --- local response normalization ------------------------------------------------------------------
def _lrn_window(size, channels):
    """The int32 (before, after) of lrn.cu's window: size//2 and (size-1)//2 channels, each at
    most C - 1 (further reaches no more channels; any size fits in int32)."""
    reach = max(channels - 1, 0)
    return _int32(min(size // 2, reach), min((size - 1) // 2, reach))


def lrn_forward(x, size, alpha, beta, k):
    """x (N, C, ...): one thread per pixel walks the channels."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c = x.shape[:2]
    pixels = x.size // max(n * c, 1)
    s, y = xp.empty_like(x), xp.empty_like(x)
    launcher_for(x).run("lrn.cu", "lrn_forward", n * pixels, x, s, y, *_int32(n, c, pixels),
                        *_lrn_window(size, c), _real(x, alpha / size), _real(x, beta), _real(x, k))
    return y, (x, s, y, size, alpha, beta)


def lrn_backward(gy, cache):
    xp = get_array_module(gy)
    x, s, y, size, alpha, beta = cache
    gy = xp.ascontiguousarray(gy)
    n, c = x.shape[:2]
    pixels = x.size // max(n * c, 1)
    gx = xp.empty_like(x)
    launcher_for(x).run("lrn.cu", "lrn_backward", n * pixels, x, s, y, gy, gx, *_int32(n, c, pixels),
                        *_lrn_window(size, c), _real(x, alpha / size), _real(x, beta))
    return gx
