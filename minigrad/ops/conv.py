"""2-D convolution (cross-correlation, as in every deep-learning framework).

    y[n, f, oh, ow] = b[f] + sum_{c, i, j} W[f, c, i, j] * x_pad[n, c, oh*SH + i, ow*SW + j]

where x_pad is x with PH zero rows above and below and PW zero columns left and
right. The output size along each axis is floor((H + 2*PH - KH) / SH) + 1
(``minigrad.geometry``).

im2col turns this into matrix products. Copy every window of x_pad into a column:
cols (C*KH*KW, OH*OW) for image n, flattened in the same (c, i, j) order as a
filter. Then, with W2 = W reshaped (F, C*KH*KW) and gY the upstream gradient:

    forward:   Y = W2 @ cols (+ b)          (F, OH*OW)
    backward:  gW    = gY @ cols^T          summed over the images
               gcols = W2^T @ gY            then col2im (the adjoint of im2col) -> gx
               gb    = gY summed over the images and the OH*OW columns

Groups (AlexNet's two towers, section 3.2 of its paper; ``groups`` in PyTorch and Caffe).
With ``groups`` = g, the C input channels and the F filters are cut into g equal,
consecutive blocks, and filter block k sees channel block k only:

    y[n, f, oh, ow] = b[f] + sum_{c', i, j} W[f, c', i, j] * x_pad[n, k*C/g + c', oh*SH + i, ow*SW + j]

with k = f // (F/g) the group of filter f and c' = 0 ... C/g - 1, so W is (F, C/g, KH, KW):
g times fewer weights and multiply-adds than with groups = 1. It is g independent
convolutions on channel slices, side by side. In im2col terms the rows of cols come
in g consecutive blocks of C/g*KH*KW (channel block k's windows), the rows of W2
(F, C/g*KH*KW) in g blocks of F/g, and each product above is done block by block:

    Y[block k] = W2[block k] @ cols[block k]          one product per group

(groups = 1 is the ordinary convolution; groups = C = F is a depthwise one.)

The work is done by the current kernel set (``minigrad.kernels``):
``kernels/reference.py`` is this docstring written out with loops; ``kernels/vectorized.py``
is the fast version of the same.
"""
import numpy

from .. import kernels
from ..geometry import check_not_empty, check_window, window


def conv2d_forward(x, W, b=None, stride=1, padding=0, groups=1):
    """x (N, C, H, W), W (F, C/groups, KH, KW), b (F,) or None -> y (N, F, OH, OW).

    ``stride`` and ``padding`` are ints or (h, w) pairs; ``groups`` divides C and F.
    """
    win = window(x.shape[2:], W.shape[2:], stride, padding)
    kernel_set = kernels.current(x)
    y, cache = kernel_set.conv2d_forward(x, W, b, win, groups)
    return y, (kernel_set, cache)


def conv2d_backward(gy, cache):
    """gy (N, F, OH, OW) -> (gx, gW, gb); gb is None when the forward had no bias."""
    kernel_set, kernel_cache = cache
    return kernel_set.conv2d_backward(gy, kernel_cache)


def check_conv2d(x, W, b=None, stride=1, padding=0, groups=1):
    """Raise a ValueError naming conv2d, what it expected and what it got."""
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected x of shape (N, C, H, W), got shape {x.shape}")
    if W.ndim != 4:
        shape = "(F, C, KH, KW)" if groups == 1 else "(F, C/groups, KH, KW)"
        raise ValueError(f"conv2d: expected W of shape {shape}, got shape {W.shape}")
    for name, array in (("x", x), ("W", W), ("b", b)):
        if array is not None and array.dtype.kind != "f":
            raise ValueError(f"conv2d: expected a floating-point {name}, got dtype {array.dtype}")
    check_not_empty("conv2d", x.shape)
    if W.shape[0] < 1:
        raise ValueError(f"conv2d: expected at least one filter, got W of shape {W.shape}")
    check_groups(x.shape, W.shape, groups)
    if b is not None and b.shape != (W.shape[0],):
        raise ValueError(f"conv2d: expected bias of shape ({W.shape[0]},), got {b.shape}")
    check_window("conv2d", x.shape, W.shape[2:], stride, padding)


def check_groups(x_shape, W_shape, groups):
    """``groups`` a positive int dividing C and F; W's second axis C/groups."""
    channels, filters = x_shape[1], W_shape[0]
    if not isinstance(groups, (int, numpy.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive integer, got {groups!r}")
    if channels % groups:
        raise ValueError(f"conv2d: groups={groups} must divide the {channels} channels of x "
                         f"(x {x_shape})")
    if filters % groups:
        raise ValueError(f"conv2d: groups={groups} must divide the {filters} filters of W "
                         f"(W {W_shape})")
    if W_shape[1] != channels // groups:
        per_group = "" if groups == 1 else f" ({channels // groups} per group, groups={groups})"
        raise ValueError(f"conv2d: x has {channels} channels{per_group} but W expects {W_shape[1]} "
                         f"(x {x_shape}, W {W_shape})")
