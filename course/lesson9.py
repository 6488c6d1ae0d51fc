"""Lesson 9's exercises and helpers: what the survey's networks cost, counted by formula.

* 9.1 ``conv_parameters(in_channels, out_channels, kernel_size, groups, bias)``: the
  parameters of a convolution, with groups (AlexNet's two GPUs), against
  ``conv_parameters_reference``;
* 9.2 ``receptive_field(layers)``: the side of the input window one output unit of a stack
  of convolutions and pools sees, layers given as (kernel, stride), against
  ``receptive_field_reference``, which ``measured_receptive_field`` confirms by
  back-propagation through minigrad's own convolutions;
* 9.3 ``factorization_savings(in_channels, out_channels, kernel_size)``: the weights saved
  by replacing one KxK convolution with a stack of 3x3 ones of the same receptive field
  (VGG, section 2.3), against ``factorization_savings_reference``.

The framework knows no network (tests/test_layering.py): the references here are formulas,
written out, and tests/test_lesson9.py holds them equal to PyTorch's parameter counts and to
minigrad's layers. Counting runs as in ``minigrad.nn``: a weight is a multiply-add at every
output position, a bias is one parameter per output channel.
"""
import numpy

from minigrad import nn
from minigrad.autograd import Tensor
from .cases import count_cases
from .check import registers


# --- 9.1 the parameters of a convolution, with groups ----------------------------------------------
def conv_parameters_reference(in_channels, out_channels, kernel_size, groups=1, bias=True):
    """out x (in / groups) x K x K weights (each filter reads its own group's input channels),
    plus one bias per output channel."""
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"conv_parameters: groups={groups} must divide in_channels={in_channels} "
                         f"and out_channels={out_channels}")
    weights = out_channels * (in_channels // groups) * kernel_size * kernel_size
    return weights + (out_channels if bias else 0)


CONV_CASES = {
    "AlexNet's conv2: 96 -> 256 channels, 5x5, 2 groups":
        dict(in_channels=96, out_channels=256, kernel_size=5, groups=2, bias=True),
    "a VGG convolution: 256 -> 256, 3x3, 1 group":
        dict(in_channels=256, out_channels=256, kernel_size=3, groups=1, bias=True),
    "a depthwise convolution: 32 -> 32, 3x3, 32 groups":
        dict(in_channels=32, out_channels=32, kernel_size=3, groups=32, bias=True),
    "64 -> 128, 3x3, 4 groups, no bias":
        dict(in_channels=64, out_channels=128, kernel_size=3, groups=4, bias=False),
}


def _conv_mistakes(in_channels, out_channels, kernel_size, groups, bias):
    """{value a usual mistake gives: what the mistake is}."""
    biases = out_channels if bias else 0
    k2 = kernel_size * kernel_size
    return {
        out_channels * in_channels * k2 + biases:
            "with groups, each filter reads only its group's in_channels / groups channels.",
        (out_channels // groups) * (in_channels // groups) * k2 + biases:
            "every one of the out_channels filters has weights; only what each filter READS is "
            "divided by the groups: out x (in / groups) x K x K.",
        out_channels * (in_channels // groups) * k2:
            "the bias is missing: one per output channel (when bias=True).",
        out_channels * (in_channels // groups) * k2 + out_channels:
            "bias=False: no bias at all.",
        out_channels * (in_channels // groups) * k2 + out_channels // groups:
            "one bias per output channel, not per group's share.",
        out_channels * (in_channels // groups) * kernel_size + biases:
            "a K x K kernel has K * K weights per input channel, not K.",
    }


PARAMETERS_RULE = ("out_channels filters, each of (in_channels / groups) x K x K weights, and one bias per "
                   "output channel when bias is True.")


@registers("9.1", "parameters of a convolution with groups", rule=PARAMETERS_RULE)
def check_conv_parameters(conv_parameters):
    return count_cases(conv_parameters, conv_parameters_reference, CONV_CASES, "parameters", _conv_mistakes,
                       PARAMETERS_RULE)


# --- 9.2 the receptive field of a stack ----------------------------------------------------------
def receptive_field_reference(layers):
    """r = 1 + sum_i (k_i - 1) x (s_1 x ... x s_{i-1}): each layer widens the window by k - 1
    of its own input's units, and one unit of that input is as far apart as the product of the
    strides below it, in input pixels."""
    side, jump = 1, 1
    for kernel, stride in layers:
        side += (kernel - 1) * jump
        jump *= stride
    return side


def measured_receptive_field(layers, size=None):
    """The receptive field measured: a chain of minigrad convolutions with all-ones kernels
    (stride and kernel as ``layers`` says) on an input of ones, and the gradient of one output
    unit in the middle of the last map with respect to the input; the side of the square of
    input pixels it touches. ``size``: the input's side (by default three fields wide, so
    the middle unit's window lies inside the input)."""
    size = size or 3 * receptive_field_reference(layers)
    x = Tensor(numpy.ones((1, 1, size, size)), requires_grad=True)
    out = x
    for kernel, stride in layers:
        conv = nn.Conv2d(1, 1, kernel, stride=stride, bias=False, weight_init=lambda shape, rng: numpy.ones(shape))
        out = conv.astype(numpy.float64)(out)
    _, _, height, width = out.shape
    out[0, 0, height // 2, width // 2].backward()
    rows, columns = numpy.nonzero(x.grad[0, 0])
    return int(rows.max() - rows.min() + 1) if columns.size else 0


RECEPTIVE_CASES = {
    "two 3x3 convolutions, stride 1": dict(layers=[(3, 1), (3, 1)]),
    "three 3x3 convolutions, stride 1": dict(layers=[(3, 1), (3, 1), (3, 1)]),
    "AlexNet's start: conv 11x11/4, max pool 3x3/2, conv 5x5/1": dict(layers=[(11, 4), (3, 2), (5, 1)]),
    "GoogLeNet's stem: conv 7x7/2, pool 3x3/2, conv 1x1, conv 3x3": dict(layers=[(7, 2), (3, 2), (1, 1), (3, 1)]),
    "LeNet-5 up to C5: 5x5, 2x2/2, 5x5, 2x2/2, 5x5": dict(layers=[(5, 1), (2, 2), (5, 1), (2, 2), (5, 1)]),
}


def _receptive_mistakes(layers):
    kernels = [k for k, _ in layers]
    strides_to = numpy.cumprod([1] + [s for _, s in layers])     # product of the strides below layer i
    return {
        sum(kernels): "stacking a K1 and a K2 window gives K1 + K2 - 1, not K1 + K2: the windows "
                      "share their middle row. Each layer adds k - 1.",
        1 + sum(k - 1 for k in kernels): "a layer above a stride-s layer takes k - 1 steps of s input "
                                         "pixels each: multiply by the product of the strides below it.",
        1 + int(sum((k - 1) * strides_to[i + 1] for i, k in enumerate(kernels))):
            "a layer's own stride does not widen its own window, only the windows of the layers "
            "above it: multiply by the strides BELOW the layer.",
        sum(k - 1 for k in kernels): "one output unit of a 1x1 kernel sees 1 pixel: start from 1.",
        int(numpy.prod(kernels)): "windows grow by adding (k - 1), not by multiplying.",
    }


RECEPTIVE_RULE = "r = 1 + sum over layers of (k - 1) x (the product of the strides of the layers below)."


@registers("9.2", "receptive field of a stack", rule=RECEPTIVE_RULE)
def check_receptive_field(receptive_field):
    return count_cases(receptive_field, receptive_field_reference, RECEPTIVE_CASES, "pixels",
                       _receptive_mistakes, RECEPTIVE_RULE)


# --- 9.3 the weights saved by a stack of 3x3 convolutions -------------------------------------------
def factorization_savings_reference(in_channels, out_channels, kernel_size):
    """Weights of one KxK convolution (in -> out) minus those of (K - 1) / 2 stacked 3x3
    convolutions with the same receptive field: the first in -> out, the others out -> out.
    Biases not counted."""
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"factorization_savings: an odd kernel of at least 3, got {kernel_size}")
    layers = (kernel_size - 1) // 2
    one = kernel_size * kernel_size * in_channels * out_channels
    stack = 9 * in_channels * out_channels + (layers - 1) * 9 * out_channels * out_channels
    return one - stack


FACTOR_CASES = {
    "7x7, 64 -> 64 channels (VGG's example: 49 C^2 against 27 C^2)":
        dict(in_channels=64, out_channels=64, kernel_size=7),
    "5x5, 192 -> 192 channels": dict(in_channels=192, out_channels=192, kernel_size=5),
    "7x7, 512 -> 256 channels": dict(in_channels=512, out_channels=256, kernel_size=7),
    "7x7, 3 -> 64 channels (a first layer: the stack costs more)": dict(in_channels=3, out_channels=64,
                                                                        kernel_size=7),
}


def _factor_mistakes(in_channels, out_channels, kernel_size):
    layers = (kernel_size - 1) // 2
    one = kernel_size ** 2 * in_channels * out_channels
    right = factorization_savings_reference(in_channels, out_channels, kernel_size)
    return {
        one - 9 * layers * in_channels * out_channels:
            "only the first 3x3 convolution reads in_channels; the ones after it read its "
            "out_channels outputs.",
        right - (layers - 1) * out_channels: "biases are not counted (here the stack has one bias "
                                             "vector per layer, the KxK convolution one).",
        -right: "the sign: savings = (one KxK) - (the 3x3 stack), positive when the stack is cheaper.",
        one - right: "that is the stack's weights; return what the stack saves, (one KxK) - (stack).",
        one - 9 * in_channels * out_channels - (kernel_size // 3 - 1) * 9 * out_channels ** 2:
            "a 7x7 window needs three 3x3 layers (each adds 2 pixels to the window: 3, 5, 7), "
            "a 5x5 two: (K - 1) / 2 layers.",
        kernel_size ** 2 - 9 * layers: "count every weight: K x K x in x out for one convolution, "
                                       "not per channel pair.",
    }


FACTOR_RULE = ("(K - 1) / 2 stacked 3x3 convolutions: 9 x in x out weights for the first, 9 x out x out for "
               "each other; subtract that from K x K x in x out.")


@registers("9.3", "weights saved by stacking 3x3 convolutions", rule=FACTOR_RULE)
def check_factorization_savings(factorization_savings):
    return count_cases(factorization_savings, factorization_savings_reference, FACTOR_CASES, "weights",
                       _factor_mistakes, FACTOR_RULE)
