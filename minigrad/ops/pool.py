"""Max, average and global average pooling over KH x KW windows.

The windows (kernel, stride, padding, ceil mode) are laid out by
``minigrad.geometry.window``: window (oh, ow) covers rows oh*SH - PH ... oh*SH - PH + KH - 1
and columns alike, clipped to the input (padding holds no values): ``win.input_region(oh, ow)``.
The work is done by the current kernel set (``minigrad.kernels``; ``kernels/reference.py``
writes it out with a loop over the windows).

Max pooling:  y = the largest value in the window; padding never wins. Its
backward sends each window's gradient to the one input that was the maximum
(the first one in row-major order, on ties); overlapping windows (3x3 stride 2)
add up where they share a winner.

Average pooling: y = the window's sum divided by a divisor that follows PyTorch
exactly. For output row oh (columns alike), with hs = oh*SH - PH the window's
first row:

    count_include_pad=True:   rows hs .. min(hs + KH, H + PH) - 1,
                              i.e. padding counts, but not the rows that ceil mode
                              lets a window run past the padded input;
    count_include_pad=False:  only the real rows, max(hs, 0) .. min(hs + KH, H) - 1.

The divisor of window (oh, ow) is (its row count) * (its column count). Its
backward gives every input of window (oh, ow) the share gy[oh, ow] / divisor.
"""
import functools

import numpy

from .. import kernels
from ..backend import array_module_for, device_of, get_array_module
from ..geometry import check_not_empty, check_window, window


def _pooling_window(x, kernel_size, stride, padding, ceil_mode):
    """The ``Window`` of a pooling over x's (H, W); a ``stride`` of None means ``kernel_size``."""
    return window(x.shape[2:], kernel_size, kernel_size if stride is None else stride, padding, ceil_mode)


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """x (N, C, H, W) -> y (N, C, OH, OW); ``stride`` None means ``kernel_size``."""
    win = _pooling_window(x, kernel_size, stride, padding, ceil_mode)
    kernel_set = kernels.current(x)
    y, cache = kernel_set.max_pool2d_forward(x, win)
    return y, kernels.KernelCache(kernel_set, cache)


def max_pool2d_inference(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """The forward's y alone, for a call that keeps no cache (no gradient wanted): the
    kernel set need not find where each maximum lies."""
    win = _pooling_window(x, kernel_size, stride, padding, ceil_mode)
    y, _ = kernels.current(x).max_pool2d_forward(x, win, argmax=False)
    return y


def max_pool2d_backward(gy, cache):
    """gy (N, C, OH, OW) -> (gx,): each window's gradient goes to its maximum."""
    kernel_set, kernel_cache = cache
    return (kernel_set.max_pool2d_backward(gy, kernel_cache),)


def avg_pool_divisor(win, count_include_pad=True):
    """The number each window's sum is divided by, an (OH, OW) NumPy array (see above)."""
    counts = []
    for size, k, s, p, out in zip(win.size, win.kernel, win.stride, win.padding, win.out):
        start = numpy.arange(out) * s - p
        if count_include_pad:
            count = numpy.minimum(start + k, size + p) - start
        else:
            count = numpy.minimum(start + k, size) - numpy.maximum(start, 0)
        counts.append(count)
    return numpy.outer(counts[0], counts[1])


@functools.lru_cache(maxsize=256)
def _divisor_on_device(win, count_include_pad, dtype, device):
    """``avg_pool_divisor`` in ``dtype`` on ``device``, made once per window geometry: a
    network's pools see the same few geometries at every step (no host-to-GPU copy each time)."""
    xp = array_module_for(device)
    divisor = xp.asarray(avg_pool_divisor(win, count_include_pad), dtype=dtype)
    if xp is numpy:
        divisor.flags.writeable = False                # shared by every call: never written
    return divisor


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True):
    """x (N, C, H, W) -> y (N, C, OH, OW): window sums over ``avg_pool_divisor``."""
    win = _pooling_window(x, kernel_size, stride, padding, ceil_mode)
    divisor = _divisor_on_device(win, count_include_pad, x.dtype, device_of(x))
    kernel_set = kernels.current(x)
    y, cache = kernel_set.avg_pool2d_forward(x, win, divisor)
    return y, kernels.KernelCache(kernel_set, cache)


def avg_pool2d_backward(gy, cache):
    """gy (N, C, OH, OW) -> (gx,): each input gets gy / divisor from every window holding it."""
    kernel_set, kernel_cache = cache
    return (kernel_set.avg_pool2d_backward(gy, kernel_cache),)


def global_avg_pool2d_forward(x):
    """x (N, C, H, W) -> (N, C, 1, 1): the mean of each channel's map."""
    return x.mean(axis=(2, 3), keepdims=True), x.shape


def global_avg_pool2d_backward(gy, x_shape):
    """gy (N, C, 1, 1) -> (gx,): every pixel of a map gets 1/(H*W) of its gradient."""
    xp = get_array_module(gy)
    h, w = x_shape[2:]
    return (xp.broadcast_to(gy / (h * w), x_shape).copy(),)


def check_pool2d(name):
    """The input check of pooling op ``name`` ("max_pool2d" or "avg_pool2d")."""
    def check(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        _check_image(name, x)
        check_window(name, x.shape, kernel_size, kernel_size if stride is None else stride, padding,
                     half_kernel_padding=True)
    return check


def check_global_avg_pool2d(x):
    _check_image("global_avg_pool2d", x)


def _check_image(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected x of shape (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise ValueError(f"{name}: expected a floating-point x, got dtype {x.dtype}")
    check_not_empty(name, x.shape)
