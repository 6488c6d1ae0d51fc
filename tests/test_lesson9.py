"""Lesson 9's checkers accept the right answers and reject the usual mistakes, naming the case
and the mistake; their references are held to PyTorch's counts and minigrad's layers (see
course/lesson9.py)."""
import numpy
import pytest

from minigrad import nn
from course import check
from course.lesson9 import (CONV_CASES, FACTOR_CASES, RECEPTIVE_CASES, conv_parameters_reference,
                            factorization_savings_reference, measured_receptive_field,
                            receptive_field_reference)

from exercise_tests import standard_tests


def conv_parameters(in_channels, out_channels, kernel_size, groups=1, bias=True, *, per_group=False,
                    groups_ignored=False, no_bias=False, bias_always=False, kernel_not_squared=False):
    """The right count, or one with a planted mistake."""
    reads = in_channels if groups_ignored else in_channels // groups
    filters = out_channels // groups if per_group else out_channels
    weights = filters * reads * (kernel_size if kernel_not_squared else kernel_size ** 2)
    return weights + (out_channels if (bias or bias_always) and not no_bias else 0)


def receptive_field(layers, *, plus_one=True, strides=True, own_stride=False, add_kernels=False):
    side, jump = (1 if plus_one else 0), 1
    for kernel, stride in layers:
        if own_stride:
            jump *= stride
        side += (kernel if add_kernels else kernel - 1) * (jump if strides else 1)
        if not own_stride:
            jump *= stride
    return side


def savings(in_channels, out_channels, kernel_size, *, all_read_input=False, biases=False, layers=None,
            stack_only=False, sign=1):
    n = (kernel_size - 1) // 2 if layers is None else layers(kernel_size)
    one = kernel_size ** 2 * in_channels * out_channels
    stack = 9 * in_channels * out_channels + (n - 1) * 9 * (in_channels if all_read_input else out_channels) * out_channels
    if biases:
        one, stack = one + out_channels, stack + n * out_channels
    return stack if stack_only else sign * (one - stack)


RIGHT = {"9.1": conv_parameters, "9.2": receptive_field, "9.3": savings}
ALEXNET = "On AlexNet's conv2: 96 -> 256 channels, 5x5, 2 groups"
DEPTHWISE = "On a depthwise convolution: 32 -> 32, 3x3, 32 groups"
NO_BIAS = "On 64 -> 128, 3x3, 4 groups, no bias"
TWO = "On two 3x3 convolutions, stride 1"
ALEX_START = "On AlexNet's start: conv 11x11/4, max pool 3x3/2, conv 5x5/1"
SEVEN = "On 7x7, 64 -> 64 channels \\(VGG's example: 49 C\\^2 against 27 C\\^2\\)"
WIDE = "On 7x7, 512 -> 256 channels"
# exercise: [(planted mistake, wrong answer, text the message must hold)]
WRONG = {
    "9.1": [
        ("groups ignored", lambda i, o, k, g, b: conv_parameters(i, o, k, g, b, groups_ignored=True),
         ALEXNET + ": got 614,656 parameters, expected 307,456.*only its group's in_channels / groups"),
        ("filters divided by the groups too", lambda i, o, k, g, b: conv_parameters(i, o, k, g, b, per_group=True),
         ALEXNET + ": got 153,856.*every one of the out_channels filters has weights"),
        ("bias forgotten", lambda i, o, k, g, b: conv_parameters(i, o, k, g, b, no_bias=True),
         ALEXNET + ": got 307,200.*the bias is missing"),
        ("bias counted with bias=False", lambda i, o, k, g, b: conv_parameters(i, o, k, g, b, bias_always=True),
         NO_BIAS + ": got 18,560 parameters, expected 18,432.*bias=False: no bias at all"),
        ("kernel not squared", lambda i, o, k, g, b: conv_parameters(i, o, k, g, b, kernel_not_squared=True),
         ALEXNET + ": got 61,696.*K \\* K weights per input channel"),
        ("depthwise: groups ignored", lambda i, o, k, g, b: (o * i * k * k + o) if g == 32 else conv_parameters(i, o, k, g, b),
         DEPTHWISE + ": got 9,248 parameters, expected 320"),
    ],
    "9.2": [
        ("kernels added", lambda layers: receptive_field(layers, add_kernels=True, plus_one=False),
         TWO + ": got 6 pixels, expected 5.*share their middle row"),
        ("strides ignored", lambda layers: receptive_field(layers, strides=False),
         ALEX_START + ": got 17 pixels, expected 51.*product of the strides below it"),
        ("own stride included", lambda layers: receptive_field(layers, own_stride=True),
         ALEX_START + ": got 89 pixels, expected 51.*the strides BELOW the layer"),
        ("no starting 1", lambda layers: receptive_field(layers, plus_one=False),
         TWO + ": got 4 pixels, expected 5.*start from 1"),
        ("kernels multiplied", lambda layers: int(numpy.prod([k for k, _ in layers])),
         TWO + ": got 9 pixels.*not by multiplying"),
    ],
    "9.3": [
        ("every 3x3 reads the input", lambda i, o, k: savings(i, o, k, all_read_input=True),
         WIDE + ": got 2,883,584 weights, expected 4,063,232.*only the first 3x3 convolution reads in_channels"),
        ("biases counted", lambda i, o, k: savings(i, o, k, biases=True),
         SEVEN + ": got 89,984 weights, expected 90,112.*biases are not counted"),
        ("sign flipped", lambda i, o, k: savings(i, o, k, sign=-1), SEVEN + ": got -90,112.*the sign"),
        ("the stack's weights", lambda i, o, k: savings(i, o, k, stack_only=True),
         SEVEN + ": got 110,592 weights.*that is the stack's weights"),
        ("two layers for a 7x7", lambda i, o, k: savings(i, o, k, layers=lambda size: size // 3),
         SEVEN + ": got 126,976.*a 7x7 window needs three 3x3 layers"),
        ("per channel pair only", lambda i, o, k: k * k - 9 * ((k - 1) // 2),
         SEVEN + ": got 22 weights.*count every weight"),
    ],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_an_exception_in_the_learners_code_is_wrong_and_names_the_case():
    verdict = check.verdict("9.2", lambda layers: layers[5])
    assert verdict.status == "wrong" and verdict.message.startswith(TWO + " it raised IndexError")


# --- the references ---------------------------------------------------------------------------------
def test_conv_parameters_reference_is_pytorchs_count():
    torch = pytest.importorskip("torch")
    for inputs in CONV_CASES.values():
        layer = torch.nn.Conv2d(inputs["in_channels"], inputs["out_channels"], inputs["kernel_size"],
                                groups=inputs["groups"], bias=inputs["bias"])
        assert conv_parameters_reference(**inputs) == sum(p.numel() for p in layer.parameters())
    assert conv_parameters_reference(96, 256, 5, groups=2) == 307_456
    with pytest.raises(ValueError, match="groups=3 must divide in_channels=96"):
        conv_parameters_reference(96, 256, 5, groups=3)


def test_the_receptive_field_formula_is_what_backpropagation_measures():
    for inputs in RECEPTIVE_CASES.values():
        assert receptive_field_reference(**inputs) == measured_receptive_field(**inputs)
    assert [receptive_field_reference(**c) for c in RECEPTIVE_CASES.values()] == [5, 7, 51, 19, 32]
    assert measured_receptive_field([(3, 2), (3, 2), (3, 1)]) == receptive_field_reference([(3, 2), (3, 2), (3, 1)]) == 15


def test_factorization_savings_reference_counts_minigrads_layers():
    for inputs in FACTOR_CASES.values():
        i, o, k = inputs["in_channels"], inputs["out_channels"], inputs["kernel_size"]
        one = nn.Conv2d(i, o, k, bias=False).num_parameters()
        stack = nn.Sequential(nn.Conv2d(i, o, 3, bias=False),
                              *[nn.Conv2d(o, o, 3, bias=False) for _ in range((k - 1) // 2 - 1)])
        assert factorization_savings_reference(**inputs) == one - stack.num_parameters()
    assert factorization_savings_reference(1, 1, 7) == 49 - 27
    with pytest.raises(ValueError, match="an odd kernel of at least 3, got 4"):
        factorization_savings_reference(8, 8, 4)


def test_a_receptive_field_that_clears_its_list_of_layers_is_wrong():
    """Before, the reference ran after the learner's code on the emptied module-level list: 1 = 1."""
    def clears(layers):
        layers.clear()
        return 1
    verdict = check.verdict("9.2", clears)
    assert verdict.status == "wrong"
    assert verdict.message.startswith(TWO + ": your function changed its input layers: layers is now a list "
                                            "of 0 items, it was a list of 2 items.")
    assert [receptive_field_reference(**c) for c in RECEPTIVE_CASES.values()] == [5, 7, 51, 19, 32]
