"""Lesson 6's checkers accept the right answers and reject the usual mistakes, naming the
case and the mistake (see course/lesson6.py)."""

import pytest

from minigrad import functional as F
from course import check

from course.lesson6 import CONV_CASES, INCEPTION_CASES, conv_reference, inception_reference

from exercise_tests import standard_tests


def conv_cost(in_shape, out_channels, kernel_size, stride, padding):
    channels, height, width = in_shape
    side = lambda n: (n + 2 * padding - kernel_size) // stride + 1
    return out_channels * channels * kernel_size ** 2 * side(height) * side(width)


def conv_with(mistake):
    """A 6.1 answer written with the learner's argument names."""
    return lambda in_shape, out_channels, kernel_size, stride, padding: mistake(
        in_shape, out_channels, kernel_size, stride, padding)


def inception_cost(in_channels, widths, size, reductions=True, pool_proj=True, pool=False):
    n1x1, r3, n3x3, r5, n5x5, proj = widths
    shape = (in_channels, size, size)
    total = conv_cost(shape, n1x1, 1, 1, 0)
    if reductions:
        total += conv_cost(shape, r3, 1, 1, 0) + conv_cost((r3, size, size), n3x3, 3, 1, 1)
        total += conv_cost(shape, r5, 1, 1, 0) + conv_cost((r5, size, size), n5x5, 5, 1, 2)
    else:
        total += conv_cost(shape, n3x3, 3, 1, 1) + conv_cost(shape, n5x5, 5, 1, 2)
    if pool_proj:
        total += conv_cost(shape, proj, 1, 1, 0)
    if pool:
        total += 9 * in_channels * size * size
    return total


def inception_with(mistake):
    return lambda in_channels, widths, size: mistake(in_channels, widths, size)


def joined(order=(0, 1, 2, 3), axis=1):
    def forward(x, branch1x1, branch3x3, branch5x5, branch_pool):
        outputs = [branch1x1(x), branch3x3(x), branch5x5(x), branch_pool(x)]
        return F.concat([outputs[i] for i in order], axis=axis)
    return forward


RIGHT = {
    "6.1": conv_with(conv_cost),
    "6.2": joined(),
    "6.3": inception_with(inception_cost),
}
FIRST_CONV = "On 480x14x14 -> 48 channels, 5x5 pad 2 \\(Inception 4a's 5x5 without its reduction\\)"
CONV1 = "On 3x224x224 -> 64 channels, 7x7 stride 2 pad 3 \\(conv1\\)"
EQUAL = "On an Inception with 4 equal branches of 8 channels, x \\(2, 12, 9, 9\\)"
THREE_A = "On 3a: 192x28x28 input, widths \\(64, 96, 128, 16, 32, 32\\)"
# exercise: [(planted mistake, wrong answer, text the message must hold)]
WRONG = {
    "6.1": [
        ("forgot the output map size", conv_with(lambda s, f, k, st, p: f * s[0] * k * k),
         FIRST_CONV + ": got 576,000 multiply-adds, expected 112,896,000.*used once at every output position"),
        ("counted the bias", conv_with(lambda s, f, k, st, p: conv_cost(s, f, k, st, p) + f * 14 * 14),
         FIRST_CONV + ": got 112,905,408 multiply-adds.*the bias is an addition"),
        ("input size instead of output size", conv_with(lambda s, f, k, st, p: f * s[0] * k * k * s[1] * s[2]),
         CONV1 + ": got 472,055,808.*got / expected = 4\\b.*not the input's H x W"),
        ("padding left out", conv_with(lambda s, f, k, st, p: conv_cost(s, f, k, st, 0)),
         FIRST_CONV + ": got 57,600,000.*the padding P widens the input"),
        ("ceil instead of floor", conv_with(lambda s, f, k, st, p: f * s[0] * k * k * (-(-(s[1] + 2 * p - k) // st) + 1) ** 2),
         CONV1 + ": got 120,130,752.*a floor"),
        ("a list instead of a number", conv_with(lambda *a: [conv_cost(*a)]),
         FIRST_CONV + ": returned \\[112896000\\], expected one number"),
    ],
    "6.2": [
        ("concatenated along the batch axis", joined(axis=0),
         EQUAL + ": the output has shape \\(8, 8, 9, 9\\), expected \\(2, 32, 9, 9\\).*batch axis 0"),
        ("concatenated along the width", joined(axis=-1),
         EQUAL + ": the output has shape \\(2, 8, 9, 36\\).*axis 3, a spatial axis"),
        ("3x3 before 1x1", joined(order=(1, 0, 2, 3)),
         EQUAL + ": the output\\[.*\\] is .*expected.*relative error.*order 3x3, 1x1, 5x5, pool proj"),
        ("pool branch first", joined(order=(3, 0, 1, 2)),
         EQUAL + ": the output\\[.*order pool proj, 1x1, 3x3, 5x5"),
        ("projection without the pool", lambda x, a, b, c, d: F.concat([a(x), b(x), c(x), d.proj(x)], axis=1),
         EQUAL + ": the output\\[.*channels 24..31 \\(the pool proj branch\\) differ"),
        ("outputs added", lambda x, a, b, c, d: a(x) + b(x) + c(x) + d(x),
         EQUAL + ": the output has shape \\(2, 8, 9, 9\\), expected \\(2, 32, 9, 9\\)"),
    ],
    "6.3": [
        ("no reductions", inception_with(lambda c, w, s: inception_cost(c, w, s, reductions=False)),
         THREE_A + ": got 308,281,344.*the module without its 1x1 reductions"),
        ("3x3 and 5x5 read the input", inception_with(lambda c, w, s: inception_cost(c, w, s, reductions=False)
                                                      + conv_cost((c, s, s), w[1] + w[3], 1, 1, 0)),
         THREE_A + ": got 325,140,480.*read the reductions' outputs"),
        ("reductions not counted", inception_with(lambda c, w, s: inception_cost(c, w, s) - conv_cost(
            (c, s, s), w[1], 1, 1, 0) - conv_cost((c, s, s), w[3], 1, 1, 0)),
         THREE_A + ": got 111,190,016.*the two 1x1 reductions .* are convolutions too"),
        ("pool projection missing", inception_with(lambda c, w, s: inception_cost(c, w, s, pool_proj=False)),
         THREE_A + ".*pool proj\\) is missing"),
        ("the pool counted", inception_with(lambda c, w, s: inception_cost(c, w, s, pool=True)),
         THREE_A + ".*the max pool has no weights"),
    ],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_an_exception_in_the_learners_code_is_wrong_and_names_the_case():
    verdict = check.verdict("6.2", joined(axis=5))
    assert verdict.status == "wrong" and verdict.message.startswith(EQUAL.replace("\\", "") + " it raised")


def test_the_references_are_the_formula():
    """The checkers' references (the package's layers) agree with F*C*K*K*OH*OW."""
    for inputs in CONV_CASES.values():
        assert conv_reference(**inputs) == conv_cost(**inputs)
    for inputs in INCEPTION_CASES.values():
        assert inception_reference(**inputs) == inception_cost(**inputs)
    assert conv_reference((480, 14, 14), 48, 5, 1, 2) == 112_896_000


def test_a_float_with_the_right_value_is_accepted():
    assert check.verdict("6.1", conv_with(lambda *a: float(conv_cost(*a)))).correct


# --- the references are GoogLeNet's -------------------------------------------------------------
def test_the_inception_reference_counts_every_table_1_row_as_googlenet_does():
    from googlenet.model import GoogLeNet
    from googlenet.summary import row_summaries
    for s in row_summaries(GoogLeNet()):
        if s.row.kind == "inception":
            assert inception_reference(s.in_channels, s.widths, s.out_shape[1]) == s.multiply_adds, s.row.name


# --- blame the right exercise; counts fail closed ------------------------------------------------
def test_a_right_inception_count_built_on_an_unfinished_conv_count_names_that_exercise():
    def conv_multiply_adds(in_shape, out_channels, kernel_size, stride, padding):
        raise NotImplementedError("exercise 6.1: multiply-adds of a convolution")

    def inception_multiply_adds(in_channels, widths, size):
        return conv_multiply_adds((in_channels, size, size), widths[0], 1, 1, 0)
    verdict = check.verdict("6.3", inception_multiply_adds)
    assert verdict.status == "not implemented yet" and verdict.blocked_by.startswith("6.1")
    assert str(verdict).startswith("[TODO] exercise 6.1 (multiply-adds of a convolution): not implemented yet "
                                   "(exercise 6.3, multiply-adds of an Inception module, uses it).")
    assert "NotImplementedError: exercise 6.1: multiply-adds of a convolution. Do exercise 6.1 first" in str(verdict)
    assert "[TODO] exercise 6.3" not in str(verdict)


def test_its_own_missing_exercise_is_still_the_plain_todo():
    verdict = check.verdict("6.3", lambda *a: (_ for _ in ()).throw(NotImplementedError("exercise 6.3: x")))
    assert str(verdict).startswith("[TODO] exercise 6.3 (multiply-adds of an Inception module): not implemented yet.")



@pytest.mark.parametrize("answer, reason", [
    (lambda *a: complex(conv_cost(*a)), "complex dtype"),
    (lambda *a: float("nan"), "got nan multiply-adds"),
    (lambda *a: float("inf"), "got inf multiply-adds"),
    (lambda *a: True, "dtype bool"),
    (lambda *a: str(conv_cost(*a)), "dtype <U9"),
])
def test_a_count_that_is_not_one_real_finite_number_is_wrong(answer, reason):
    verdict = check.verdict("6.1", conv_with(answer))
    assert verdict.status == "wrong" and reason in verdict.message, verdict.message


def test_an_inception_forward_that_changes_a_branchs_weights_is_wrong():
    def changes_weights(x, branch1x1, branch3x3, branch5x5, branch_pool):
        y = RIGHT["6.2"](x, branch1x1, branch3x3, branch5x5, branch_pool)
        weight = branch1x1.conv.weight.data
        weight.flags.writeable = True
        weight[...] = 0
        return y
    verdict = check.verdict("6.2", changes_weights)
    assert verdict.status == "wrong"
    assert "your function changed its input branch1x1: branch1x1's state['conv.weight']" in verdict.message


def test_an_inception_module_that_writes_into_x_is_wrong():
    """6.4's reference outputs are computed before the learner's module runs, on its own x."""
    from test_lesson6_inception_module import RIGHT as MODULE_RIGHT

    def build(in_channels, widths):
        module = MODULE_RIGHT["6.4"](in_channels, widths)
        branch = module.branch1x1 if hasattr(module, "branch1x1") else list(module.children())[0]
        original = branch.forward

        def forward(x):
            x.data[...] = 0
            return original(x)
        object.__setattr__(branch, "forward", forward)
        return module
    verdict = check.verdict("6.4", build)
    assert verdict.status == "wrong" and "read-only" in verdict.message, verdict.message
