"""2-D convolution (cross-correlation, as in every deep-learning framework).

    y[n, o, oh, ow] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * x_pad[n, c, oh*SH + i, ow*SW + j]

for x (N, C, H, W), weight (C_out, C, KH, KW) (one KH x KW filter over all C channels for
each of the C_out output channels), bias (C_out,), where x_pad is x with PH zero rows
above and below and PW zero columns left and right. The output size along each axis is
floor((H + 2*PH - KH) / SH) + 1 (``minigrad.geometry``).

im2col turns this into matrix products. Copy every window of x_pad into a column:
cols (C*KH*KW, OH*OW) for image n, flattened in the same (c, i, j) order as a
filter. Then, with weight2 = weight reshaped (C_out, C*KH*KW) and gY the upstream gradient:

    forward:   Y       = weight2 @ cols (+ bias)    (C_out, OH*OW)
    backward:  gweight = gY @ cols^T                summed over the images
               gcols   = weight2^T @ gY             then col2im (the adjoint of im2col) -> gx
               gbias   = gY summed over the images and the OH*OW columns

Groups (AlexNet's two towers, section 3.2 of its paper; ``groups`` in PyTorch and Caffe).
With ``groups`` = g, the C input channels and the C_out filters are cut into g equal,
consecutive blocks, and filter block k sees channel block k only:

    y[n, o, oh, ow] = bias[o] + sum_{c', i, j} weight[o, c', i, j] * x_pad[n, k*C/g + c', oh*SH + i, ow*SW + j]

with k = o // (C_out/g) the group of filter o and c' = 0 ... C/g - 1, so weight is
(C_out, C/g, KH, KW): g times fewer weights and multiply-adds than with groups = 1. It is
g independent convolutions on channel slices, side by side. In im2col terms the rows of
cols come in g consecutive blocks of C/g*KH*KW (channel block k's windows), the rows of
weight2 (C_out, C/g*KH*KW) in g blocks of C_out/g, and each product above is done block
by block:

    Y[block k] = weight2[block k] @ cols[block k]          one product per group

(groups = 1 is the ordinary convolution; groups = C = C_out is a depthwise one.)

The ReLU fused in (``conv2d_relu_forward``). Almost every convolution of these networks is
followed by a ReLU, max(y, 0). Done as a second op it reads and writes y once more and keeps
a mask for its backward; done by the convolution itself, it costs nothing on a GPU (the
kernel that lays out the product's result applies it on the way) and the backward needs
no mask: the gradient passes where the output is not <= 0 (y > 0, or NaN, as
``elementwise.relu_forward``), and the output says where. Same values, to the last bit, as
``relu(conv2d(...))``; its backward is ``conv2d_backward`` (the cache knows the ReLU).

The work is done by the current kernel set (``minigrad.kernels``):
``kernels/reference.py`` is this docstring written out with loops; ``kernels/vectorized.py``
is the fast version of the same.
"""
import numpy

from .. import kernels
from ..geometry import check_not_empty, check_window, window


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, groups=1):
    """x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out,) or None -> y (N, C_out, OH, OW).

    ``stride`` and ``padding`` are ints or (h, w) pairs; ``groups`` divides C and C_out.
    """
    return _convolve(x, weight, bias, stride, padding, groups, relu=False)


def conv2d_relu_forward(x, weight, bias=None, stride=1, padding=0, groups=1):
    """max(conv2d(x, weight, bias, ...), 0) in one op, the ReLU fused in (see above); the
    arguments and shapes of ``conv2d_forward``."""
    return _convolve(x, weight, bias, stride, padding, groups, relu=True)


def _convolve(x, weight, bias, stride, padding, groups, relu):
    win = window(x.shape[2:], weight.shape[2:], stride, padding)
    kernel_set = kernels.current(x)
    y, cache = kernel_set.conv2d_forward(x, weight, bias, win, groups, relu)
    return y, kernels.KernelCache(kernel_set, cache)


def conv2d_backward(gy, cache, needs_input_grad=(True, True, True)):
    """gy (N, C_out, OH, OW) -> (gx, gweight, gbias); gbias is None when the forward had no bias,
    gx None when x needs no gradient (``needs_input_grad[0]`` False: the network's images,
    whose gradient would cost conv1 a product and a col2im for nothing).
    After ``conv2d_relu_forward``, gy passes only where the output is not <= 0."""
    kernel_set, kernel_cache = cache
    return kernel_set.conv2d_backward(gy, kernel_cache, input_grad=needs_input_grad[0])


def conv2d_relu_backward(gy, cache, needs_input_grad=(True, True, True)):
    """``conv2d_backward``: the cache knows the ReLU, and gy passes where its output is not <= 0."""
    return conv2d_backward(gy, cache, needs_input_grad)


def conv2d_check(name):
    """The input check of the convolution op called ``name`` ("conv2d" or "conv2d_relu"):
    ``check(x, weight, bias=None, stride=1, padding=0, groups=1)`` raises a ValueError naming
    the op, what it expected and what it got."""
    def check(x, weight, bias=None, stride=1, padding=0, groups=1):
        if x.ndim != 4:
            raise ValueError(f"{name}: expected x of shape (N, C, H, W), got shape {x.shape}")
        if weight.ndim != 4:
            shape = "(C_out, C, KH, KW)" if groups == 1 else "(C_out, C/groups, KH, KW)"
            raise ValueError(f"{name}: expected weight of shape {shape}, got shape {weight.shape}")
        for argument, array in (("x", x), ("weight", weight), ("bias", bias)):
            if array is not None and array.dtype.kind != "f":
                raise ValueError(f"{name}: expected a floating-point {argument}, got dtype {array.dtype}")
        check_not_empty(name, x.shape)
        if weight.shape[0] < 1:
            raise ValueError(f"{name}: expected at least one filter, got weight of shape {weight.shape}")
        check_groups(x.shape, weight.shape, groups, name)
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"{name}: expected bias of shape ({weight.shape[0]},), got {bias.shape}")
        check_window(name, x.shape, weight.shape[2:], stride, padding)
    return check


check_conv2d = conv2d_check("conv2d")
check_conv2d_relu = conv2d_check("conv2d_relu")


def check_groups(x_shape, weight_shape, groups, name="conv2d"):
    """``groups`` a positive int dividing C and C_out; weight's second axis C/groups."""
    channels, filters = x_shape[1], weight_shape[0]
    if not isinstance(groups, (int, numpy.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
    if channels % groups:
        raise ValueError(f"{name}: groups={groups} must divide the {channels} channels of x "
                         f"(x {x_shape})")
    if filters % groups:
        raise ValueError(f"{name}: groups={groups} must divide the {filters} filters of weight "
                         f"(weight {weight_shape})")
    if weight_shape[1] != channels // groups:
        per_group = "" if groups == 1 else f" ({channels // groups} per group, groups={groups})"
        raise ValueError(f"{name}: x has {channels} channels{per_group} but weight expects {weight_shape[1]} "
                         f"(x {x_shape}, weight {weight_shape})")
