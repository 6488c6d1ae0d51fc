"""Lesson 6's exercise 6.4: an Inception module built from minigrad.nn parts, checked branch by branch
against googlenet.model.Inception: its parameters (counted from the paper's widths), its
layers' shapes, and, with googlenet's weights copied in, its output."""
import numpy

from googlenet.model import Inception
from minigrad import functional as F, nn
from minigrad.autograd import Tensor
from .cases import as_numpy, cases_text, join, run_learners_code
from .check import registers
from .guard import hand_over
from .lesson6 import BRANCHES, axis_hint, inception_hint
from .verdicts import CORRECT, WRONG, as_real_array, compare, relative_error


def branch_parameter_counts(in_channels, widths):
    """{branch: (parameters, the count as arithmetic)} from Table 1's six widths: each
    convolution has F*C*K*K weights and F biases."""
    n1x1, r3, n3x3, r5, n5x5, proj = widths
    c = in_channels
    return {
        "1x1": (c * n1x1 + n1x1, f"{c}x{n1x1} + {n1x1}"),
        "3x3": (c * r3 + r3 + 9 * r3 * n3x3 + n3x3, f"{c}x{r3} + {r3} + 3x3x{r3}x{n3x3} + {n3x3}"),
        "5x5": (c * r5 + r5 + 25 * r5 * n5x5 + n5x5, f"{c}x{r5} + {r5} + 5x5x{r5}x{n5x5} + {n5x5}"),
        "pool proj": (c * proj + proj, f"{c}x{proj} + {proj} (the pool has none)"),
    }


def _count_hint(branch, got, in_channels, widths):
    """What a wrong parameter count of one branch usually means."""
    n1x1, r3, n3x3, r5, n5x5, proj = widths
    counts = branch_parameter_counts(in_channels, widths)
    biases = {"1x1": n1x1, "3x3": r3 + n3x3, "5x5": r5 + n5x5, "pool proj": proj}[branch]
    if got == counts[branch][0] - biases:
        return "the convolutions have no biases (each of F filters has one: nn.Conv2d's default bias=True)."
    if branch in ("3x3", "5x5"):
        k, n = (3, n3x3) if branch == "3x3" else (5, n5x5)
        if got == k * k * in_channels * n + n:
            return (f"the 1x1 reduction is missing: the {branch} convolution must read the reduction's "
                    f"{r3 if branch == '3x3' else r5} channels, not the {in_channels} input channels.")
    if branch == "pool proj" and got == 0:
        return "the 1x1 projection after the max pool is missing (pool proj filters)."
    for other, (count, _) in counts.items():
        if other != branch and got == count:
            return (f"that is the {other} branch's count: the branches must come in Table 1's order, "
                    f"1x1, 3x3, 5x5, pool proj.")
    return ("check each convolution's in_channels, out_channels and kernel_size against the widths "
            "(#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).")


def _convolutions(branch):
    return [module for module in branch.modules() if isinstance(module, nn.Conv2d)]


def _layer_text(conv):
    return (f"Conv2d({conv.in_channels}, {conv.out_channels}, kernel_size={conv.kernel_size[0]}, "
            f"stride={conv.stride[0]}, padding={conv.padding[0]})")


def _structure_problem(branches, reference, in_shape):
    """What is wrong with the learner's branches' layers (kinds, sizes), or None."""
    for i, (branch, theirs) in enumerate(zip(branches, reference.children())):
        name = BRANCHES[i]
        try:
            got, expected = tuple(branch.output_shape(in_shape)), tuple(theirs.output_shape(in_shape))
        except Exception as error:                                # a layer that cannot take the shape
            return f"the {name} branch cannot take an input of shape {in_shape}: {error}"
        mine, real = _convolutions(branch), _convolutions(theirs)
        for k, (a, b) in enumerate(zip(mine, real)):
            if (a.in_channels, a.out_channels, a.kernel_size, a.stride) != \
                    (b.in_channels, b.out_channels, b.kernel_size, b.stride):
                return (f"convolution {k + 1} of the {name} branch is {_layer_text(a)}, expected "
                        f"{_layer_text(b)}.")
        if got != expected:
            pool = [m for m in branch.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
            why = ("the 3x3 max pool needs stride=1 and padding=1 to keep the map's size (MaxPool2d's "
                   "stride defaults to its kernel size)." if name == "pool proj" and pool else
                   "a KxK convolution needs padding K // 2 to keep the map's size (1 for 3x3, 2 for 5x5).")
            return f"the {name} branch gives an output of shape {got}, expected {expected}: {why}"
        if name == "pool proj" and not any(isinstance(m, nn.MaxPool2d) for m in branch.modules()):
            return "the pool proj branch starts with a 3x3 MAX pool (nn.MaxPool2d(3, stride=1, padding=1))."
    return None


def _copy_weights(branches, reference):
    """googlenet's weights and biases into the learner's convolutions, branch by branch."""
    for branch, theirs in zip(branches, reference.children()):
        for mine, real in zip(_convolutions(branch), _convolutions(theirs)):
            mine.weight.data = real.weight.data.copy()
            mine.bias.data = real.bias.data.copy()


def _branch_hint(name, branch, theirs, x, got):
    """Why a branch with the right layers and weights computes something else."""
    if numpy.any(got < 0):
        return "Hint: it has negative outputs: every convolution is followed by a ReLU (nn.ReLU())."
    if name in ("3x3", "5x5"):
        reduce, conv = _convolutions(theirs)
        reduced = F.conv2d(Tensor(x), reduce.weight, reduce.bias, stride=reduce.stride, padding=reduce.padding)
        without = conv(reduced)                                      # no ReLU after the reduction
        if numpy.allclose(got, as_numpy(without), rtol=1e-10, atol=1e-12):
            return "Hint: the 1x1 reduction is followed by a ReLU too, before the 3x3 (5x5) convolution."
    return "Hint: conv, ReLU for every convolution; the pool branch is MaxPool2d(3, stride=1, padding=1), then its 1x1 conv and ReLU."


MODULE_CASES = {
    "a small module: 10 input channels, widths (3, 4, 5, 2, 6, 7), x (2, 10, 6, 6)":
        (10, (3, 4, 5, 2, 6, 7), (2, 10, 6, 6)),
    "Inception 3a: 192 input channels, widths (64, 96, 128, 16, 32, 32), x (1, 192, 7, 7)":
        (192, (64, 96, 128, 16, 32, 32), (1, 192, 7, 7)),
}


def _check_module_case(build_inception, case, in_channels, widths, x_shape, seed):
    """(status, message, relative error) of one case."""
    module, failure = run_learners_code(lambda: build_inception(in_channels, tuple(widths)), case)
    if failure:
        return WRONG, failure, None
    if not isinstance(module, nn.Module):
        return WRONG, (f"On {case}: build_inception returned a {type(module).__name__}, expected an "
                       f"nn.Module (an nn.Concat of four nn.Sequential branches)"), None
    branches = list(module.children())
    if len(branches) != 4:
        return WRONG, (f"On {case}: the module has {len(branches)} parts, expected the four branches "
                       f"(1x1, 3x3, 5x5, pool proj) as its direct sub-modules"), None
    for name, branch in zip(BRANCHES, branches):
        expected, formula = branch_parameter_counts(in_channels, widths)[name]
        got = branch.num_parameters()
        if got != expected:
            return WRONG, (f"On {case}: the {name} branch has {got:,} parameters, expected {expected:,} "
                           f"= {formula}. Hint: {_count_hint(name, got, in_channels, widths)}"), None
    rng = numpy.random.default_rng(seed)
    reference = Inception(in_channels, widths, rng=rng).astype(numpy.float64)
    problem = _structure_problem(branches, reference, x_shape[1:])
    if problem:
        return WRONG, f"On {case}: {problem}", None
    module.astype(numpy.float64)
    _copy_weights(branches, reference)
    x = rng.standard_normal(x_shape)
    expected_branches = [as_numpy(theirs(Tensor(x.copy()))) for theirs in reference.children()]
    expected = as_numpy(reference(Tensor(x.copy())))         # every expected value first
    for name, branch, theirs, expected_branch in zip(BRANCHES, branches, reference.children(), expected_branches):
        got, failure = run_learners_code(lambda: as_numpy(branch(Tensor(hand_over(x)))), case)
        if failure:
            return WRONG, failure, None
        wrong = compare(f"the {name} branch's output", got, expected_branch, 1e-10)
        if wrong:
            real = as_real_array("", got)[0]
            hint = _branch_hint(name, branch, theirs, x, real) if real is not None and real.shape == \
                expected_branch.shape else ""
            return WRONG, join(f"On {case}, with googlenet's weights: {wrong}", hint), None
    got, failure = run_learners_code(lambda: as_numpy(module(Tensor(hand_over(x)))), case)
    if failure:
        return WRONG, join(failure, "Hint: every branch is right; the module joins their outputs along "
                                    "the channels, axis 1 (nn.Concat's default)."), None
    shape = numpy.shape(got) if isinstance(got, numpy.ndarray) else None
    if shape is not None and shape != expected.shape:
        return WRONG, join(f"On {case}: the module's output has shape {shape}, expected {expected.shape}.",
                           "Hint: " + axis_hint(shape, expected.shape)), None
    wrong = compare("the module's output", got, expected, 1e-10)
    if wrong:
        real = as_real_array("", got)[0]
        return WRONG, join(f"On {case}, with googlenet's weights: {wrong}",
                           inception_hint(reference, real, expected) if real is not None else ""), None
    return CORRECT, "", relative_error(got, expected)


@registers("6.4", "an Inception module from nn parts",
           rule="an nn.Concat (axis 1) of four nn.Sequential branches, in Table 1's order: a 1x1 conv; a 1x1 "
                "reduction, then a 3x3 conv (padding 1); a 1x1 reduction, then a 5x5 conv (padding 2); "
                "MaxPool2d(3, stride=1, padding=1), then a 1x1 projection. A ReLU after every convolution.")
def check_build_inception(build_inception):
    worst = 0.0
    for seed, (case, (in_channels, widths, x_shape)) in enumerate(MODULE_CASES.items()):
        status, message, error = _check_module_case(build_inception, case, in_channels, widths, x_shape, seed)
        if status != CORRECT:
            return status, message
        worst = max(worst, error)
    return CORRECT, (f"On {cases_text(len(MODULE_CASES))}: each branch has the parameters the paper's widths "
                     f"give, and with googlenet.model.Inception's weights copied in, the module computes "
                     f"what it does (largest relative error {worst:.1e}).")
