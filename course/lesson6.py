"""Lesson 6's exercises: what a convolution costs, the Inception module's forward, and
what a whole Inception module costs.

* 6.1 ``conv_multiply_adds(in_shape, out_channels, kernel_size, stride, padding)``
  against ``minigrad.nn.Conv2d(...).multiply_adds(in_shape)``;
* 6.2 ``inception_forward(x, branch1x1, branch3x3, branch5x5, branch_pool)`` against
  the forward of the Inception module (an ``nn.Concat`` of the four branches);
* 6.3 ``inception_multiply_adds(in_channels, widths, size)`` against that module's
  ``multiply_adds((in_channels, size, size))``.

The course sits above the framework and the model, so the module the checkers use is
googlenet's own ``googlenet.model.Inception``: nothing is copied. Multiply-adds are counted
as ``googlenet.summary`` counts them: a weight used at every output position once, biases,
ReLUs and pools not counted.
"""
import itertools

import numpy

from googlenet.model import Inception
from minigrad import nn
from minigrad.autograd import Tensor
from minigrad.geometry import window
from .cases import as_numpy, count_cases, forward_cases
from .check import registers

BRANCHES = ("1x1", "3x3", "5x5", "pool proj")


# --- 6.1 the multiply-adds of a convolution ----------------------------------------------
def conv_reference(in_shape, out_channels, kernel_size, stride, padding):
    """What the package's Conv2d layer says the convolution costs."""
    conv = nn.Conv2d(in_shape[0], out_channels, kernel_size, stride=stride, padding=padding, rng=0)
    return conv.multiply_adds(tuple(in_shape))


CONV_CASES = {
    "480x14x14 -> 48 channels, 5x5 pad 2 (Inception 4a's 5x5 without its reduction)":
        dict(in_shape=(480, 14, 14), out_channels=48, kernel_size=5, stride=1, padding=2),
    "480x14x14 -> 16 channels, 1x1 (4a's 5x5 reduction)":
        dict(in_shape=(480, 14, 14), out_channels=16, kernel_size=1, stride=1, padding=0),
    "3x224x224 -> 64 channels, 7x7 stride 2 pad 3 (conv1)":
        dict(in_shape=(3, 224, 224), out_channels=64, kernel_size=7, stride=2, padding=3),
    "16x15x15 -> 8 channels, 3x3 stride 2, no padding (a 7x7 output)":
        dict(in_shape=(16, 15, 15), out_channels=8, kernel_size=3, stride=2, padding=0),
}


def _conv_mistakes(in_shape, out_channels, kernel_size, stride, padding):
    """{value a usual mistake gives: what the mistake is}, for one convolution."""
    channels, height, width = in_shape
    (out_height, out_width) = window((height, width), (kernel_size,) * 2, (stride,) * 2, (padding,) * 2).out
    weights = out_channels * channels * kernel_size * kernel_size
    right = weights * out_height * out_width
    unpadded = [(size - kernel_size) // stride + 1 for size in (height, width)]
    return {
        weights: "that is the number of weights; each weight is used once at every output "
                 "position, so multiply by the output map's OH x OW.",
        right + out_channels * out_height * out_width:
            "the bias is an addition, not a multiply-add, and the count leaves it out "
            "(as Table 1's ops column does).",
        weights * height * width: "the output map is OH = (H + 2P - K) // S + 1 on each side, "
                                  "not the input's H x W.",
        weights * unpadded[0] * unpadded[1]: "the padding P widens the input before the window "
                                             "slides: OH = (H + 2P - K) // S + 1.",
        weights * out_height * out_width * kernel_size * kernel_size:
            "K x K is already in the weight count F x C x K x K; do not multiply by it twice.",
    }


CONV_RULE = ("F x C x KH x KW weights, each used at all OH x OW output positions, with OH = (H + 2P - K) "
             "// S + 1 (a floor: a window that does not fit is not used).")


@registers("6.1", "multiply-adds of a convolution", rule=CONV_RULE)
def check_conv_multiply_adds(conv_multiply_adds):
    return count_cases(conv_multiply_adds, conv_reference, CONV_CASES, "multiply-adds", _conv_mistakes, CONV_RULE)


# --- 6.2 the Inception forward --------------------------------------------------------------
def inception_case(in_channels, widths, batch, size, seed):
    """A float64 Inception module and an input for it."""
    rng = numpy.random.default_rng(seed)
    module = Inception(in_channels, widths, rng=rng).astype(numpy.float64)
    x = rng.standard_normal((batch, in_channels, size, size))
    return module, x


def _inception_cases():
    """{case name: (module, x)}: equal branch widths first (a concatenation on the wrong
    axis then gives a wrong shape rather than an error), then 3a's real widths."""
    cases = {}
    for name, (in_channels, widths, batch, size) in {
            "an Inception with 4 equal branches of 8 channels, x (2, 12, 9, 9)":
                (12, (8, 4, 8, 4, 8, 8), 2, 9),
            "Inception 3a (192 -> 64 + 128 + 32 + 32 = 256 channels), x (1, 192, 10, 10)":
                (192, (64, 96, 128, 16, 32, 32), 1, 10)}.items():
        cases[name] = inception_case(in_channels, widths, batch, size, seed=len(cases) + 6)
    return cases


def inception_hint(module, got, expected):
    """Which branch's block of channels is wrong, or in what order the blocks were joined."""
    sizes = [[layer for layer in branch if isinstance(layer, nn.Conv2d)][-1].out_channels for branch in module]
    ends = numpy.cumsum(sizes)
    blocks = numpy.split(expected, ends[:-1], axis=1)
    for order in itertools.permutations(range(4)):
        if order != (0, 1, 2, 3) and numpy.allclose(numpy.concatenate([blocks[i] for i in order], axis=1), got):
            return (f"Hint: the branches are joined in the order {', '.join(BRANCHES[i] for i in order)}; "
                    f"Inception (and Table 1, and the next layer's weights) expect 1x1, 3x3, 5x5, pool proj.")
    wrong = [i for i, block in enumerate(numpy.split(got, ends[:-1], axis=1))
             if not numpy.allclose(block, blocks[i])]
    if len(wrong) < 4:
        names = " and ".join(f"channels {ends[i] - sizes[i]}..{ends[i] - 1} (the {BRANCHES[i]} branch)"
                             for i in wrong)
        return (f"Hint: {names} differ, the other blocks are right. Call each whole branch module on "
                f"the same x (branch_pool is the 3x3 max pool and then the 1x1 projection).")
    return ""


def axis_hint(got_shape, expected_shape):
    """What a concatenation along another axis than the channels' gives, in words."""
    if len(got_shape) == len(expected_shape) and got_shape[1] * 4 == expected_shape[1]:
        for axis in (0, 2, 3):
            if got_shape[axis] == 4 * expected_shape[axis]:
                what = ("the batch axis 0: the batch came out four times as long" if axis == 0 else
                        f"axis {axis}, a spatial axis: the maps came out four times as "
                        f"{'tall' if axis == 2 else 'wide'}")
                return (f"the four branch outputs were joined along {what}. The feature maps of one "
                        f"image are stacked along the channels, axis 1 (x is N, C, H, W).")
    return "join the four branch outputs along the channels, axis 1 (x is N, C, H, W)."


@registers("6.2", "Inception forward",
           rule="give every branch the same x and join the four outputs along the channels (axis 1), in "
                "the order 1x1, 3x3, 5x5, pool proj: F.concat([branch1x1(x), ...], axis=1).")
def check_inception_forward(inception_forward):
    cases = _inception_cases()
    inputs = {case: dict(x=x, branch1x1=m.branch1x1, branch3x3=m.branch3x3, branch5x5=m.branch5x5,
                         branch_pool=m.branch_pool) for case, (m, x) in cases.items()}

    def attempt(x, *branches):
        return as_numpy(inception_forward(Tensor(x), *branches))

    def reference(x, branch1x1, branch3x3, branch5x5, branch_pool):   # the module these branches make
        module = nn.Concat(branch1x1=branch1x1, branch3x3=branch3x3, branch5x5=branch5x5,
                           branch_pool=branch_pool, axis=1)
        return as_numpy(module(Tensor(x)))

    def hints(case, name, got, expected):
        if got.shape != expected.shape:
            return "Hint: " + axis_hint(got.shape, expected.shape)
        return inception_hint(cases[case][0], got, expected)

    return forward_cases(attempt, reference, inputs, output_names=("the output",), tolerance=1e-12, hints=hints)


# --- 6.3 the multiply-adds of an Inception module --------------------------------------------
def inception_reference(in_channels, widths, size):
    """What the Inception module says it costs on an in_channels x size x size input."""
    return Inception(in_channels, widths, rng=0).multiply_adds((in_channels, size, size))


INCEPTION_CASES = {
    "3a: 192x28x28 input, widths (64, 96, 128, 16, 32, 32)": dict(in_channels=192,
                                                                 widths=(64, 96, 128, 16, 32, 32), size=28),
    "4a: 480x14x14 input, widths (192, 96, 208, 16, 48, 64)": dict(in_channels=480,
                                                                  widths=(192, 96, 208, 16, 48, 64), size=14),
    "a small one: 10x5x5 input, widths (3, 4, 5, 2, 6, 7)": dict(in_channels=10,
                                                                 widths=(3, 4, 5, 2, 6, 7), size=5),
}


def _inception_mistakes(in_channels, widths, size):
    n1, r3, n3, r5, n5, proj = widths
    positions = size * size
    one = in_channels * positions                       # a 1x1 filter on the input, per output channel
    ones = (n1 + r3 + r5 + proj) * one
    convs = (9 * r3 * n3 + 25 * r5 * n5) * positions
    right = ones + convs
    return {
        (n1 + proj) * one + convs: "the two 1x1 reductions (#3x3 reduce, #5x5 reduce) are "
                                   "convolutions too, and they read every input channel.",
        ones + (9 * in_channels * n3 + 25 * in_channels * n5) * positions:
            "the 3x3 and 5x5 convolutions read the reductions' outputs (#3x3 reduce and #5x5 "
            "reduce channels), not the module's input: that is the point of the reductions.",
        (n1 + proj) * one + (9 * in_channels * n3 + 25 * in_channels * n5) * positions:
            "that is the module without its 1x1 reductions. They are there: the input goes "
            "through a 1x1 convolution to #3x3 reduce (#5x5 reduce) channels, and the 3x3 (5x5) "
            "convolution reads those.",
        right - proj * one: "the pool branch's 1x1 projection (pool proj) is missing.",
        right + 9 * in_channels * positions: "the max pool has no weights and is not counted.",
        right + (n1 + r3 + n3 + r5 + n5 + proj) * positions:
            "biases are not counted (one addition per output, not a multiply-add).",
    }


INCEPTION_RULE = ("six convolutions, all size-preserving: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; and the pool's 1x1 "
                  "projection. The pool itself costs nothing.")


@registers("6.3", "multiply-adds of an Inception module", rule=INCEPTION_RULE)
def check_inception_multiply_adds(inception_multiply_adds):
    return count_cases(inception_multiply_adds, inception_reference, INCEPTION_CASES, "multiply-adds",
                       _inception_mistakes, INCEPTION_RULE)
