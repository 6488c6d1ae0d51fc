"""Where the sliding windows of a convolution or a pooling layer fall.

One rule for the output size, shared by conv and pool, with an explicit ceil flag:

    floor mode:  OH = floor((H + 2*PH - KH) / SH) + 1
    ceil mode:   OH = ceil((H + 2*PH - KH) / SH) + 1, then one fewer if the last
                 window would start at or past H + PH (in the right padding or beyond):
                 every window must start inside the input or its left padding
                 (Caffe's and PyTorch's rule, so sizes match theirs).

GoogLeNet's 3x3/2 max pools need ceil mode: 112 -> 56, not 55.
"""
from typing import NamedTuple, Tuple

import numpy


def pair(value, name="value"):
    """``3`` and ``(3,)`` -> ``(3, 3)``; ``(3, 2)`` stays (a 1-tuple is expanded, as PyTorch's
    2-D ops do). Used for kernel, stride and padding; anything else (2.5, (1, 2, 3), "3")
    is an error naming ``name``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    integers = all(isinstance(v, (int, numpy.integer)) and not isinstance(v, bool) for v in values)
    if len(values) not in (1, 2) or not integers:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r} (a 1-tuple (n,) "
                         f"means (n, n))")
    return int(values[0]), int(values[-1])


def conv_output_size(size, kernel, stride, padding, ceil_mode=False):
    """Number of window positions along one axis (see the module docstring)."""
    span = size + 2 * padding - kernel
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


class Window(NamedTuple):
    """The geometry of a sliding-window op on an (H, W) input.

    ``padding`` is added on the top/left and on the bottom/right; in ceil mode the
    last windows may run further past the bottom/right edge (``overhang``).
    """
    size: Tuple[int, int]      # (H, W) of the input
    kernel: Tuple[int, int]    # (KH, KW)
    stride: Tuple[int, int]    # (SH, SW)
    padding: Tuple[int, int]   # (PH, PW)
    out: Tuple[int, int]       # (OH, OW)

    @property
    def overhang(self):
        """Rows/columns past H + PH (resp. W + PW) that the last windows reach (ceil mode)."""
        return tuple(max(0, (o - 1) * s + k - (n + 2 * p))
                     for n, k, s, p, o in zip(self.size, self.kernel, self.stride, self.padding, self.out))

    @property
    def padded_size(self):
        """(H + 2*PH + overhang, W + 2*PW + overhang): the extent the windows cover."""
        return tuple(n + 2 * p + e for n, p, e in zip(self.size, self.padding, self.overhang))

    @property
    def is_pointwise(self):
        """A 1x1 kernel, stride 1, no padding: every pixel is its own window (so a 1x1
        convolution needs no im2col: the input itself is the column matrix)."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def input_region(self, oh, ow):
        """(rows, columns): the slices of the input that window (oh, ow) covers, clipped to
        the input. Window (oh, ow) covers rows oh*SH - PH ... oh*SH - PH + KH - 1 and columns
        alike; the padding and the ceil-mode overhang hold no input values."""
        (kh, kw), (sh, sw), (ph, pw), (h, w) = self.kernel, self.stride, self.padding, self.size
        top, left = oh * sh - ph, ow * sw - pw
        return slice(max(top, 0), min(top + kh, h)), slice(max(left, 0), min(left + kw, w))


def window(size, kernel, stride, padding, ceil_mode=False):
    """The ``Window`` for an input of spatial ``size`` (H, W); ints or pairs accepted."""
    kernel, stride, padding = pair(kernel, "kernel"), pair(stride, "stride"), pair(padding, "padding")
    size = tuple(int(s) for s in size)
    out = tuple(conv_output_size(n, k, s, p, ceil_mode)
                for n, k, s, p in zip(size, kernel, stride, padding))
    return Window(size, kernel, stride, padding, out)


def check_not_empty(name, x_shape):
    """Raise a ValueError naming op ``name`` when x (N, C, H, W) has a zero-length axis."""
    if min(x_shape) < 1:
        raise ValueError(f"{name}: expected x with at least one image, channel, row and column, "
                         f"got shape {tuple(x_shape)}")


def check_window(name, x_shape, kernel_size, stride, padding, half_kernel_padding=False):
    """Raise a ValueError naming op ``name`` when its window does not fit x (N, C, H, W).

    Pooling also needs ``half_kernel_padding``: padding at most half the kernel (as
    in PyTorch), so that every window holds at least one real input element.
    """
    kernel, stride, padding = pair(kernel_size, "kernel"), pair(stride, "stride"), pair(padding, "padding")
    if min(kernel) < 1:
        raise ValueError(f"{name}: kernel size must be positive, got {kernel}")
    if min(stride) < 1:
        raise ValueError(f"{name}: stride must be positive, got {stride}")
    if min(padding) < 0:
        raise ValueError(f"{name}: padding must be non-negative, got {padding}")
    if half_kernel_padding and any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel {kernel}")
    padded = tuple(s + 2 * p for s, p in zip(x_shape[2:], padding))
    if any(k > s for k, s in zip(kernel, padded)):
        raise ValueError(f"{name}: kernel {kernel} is larger than the padded input {padded} "
                         f"(input {tuple(x_shape)}, padding {padding})")
