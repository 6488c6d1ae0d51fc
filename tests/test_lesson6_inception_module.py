"""Lesson 6's new checker, 6.4 (an Inception module built from minigrad.nn parts), accepts
the right module and rejects the usual mistakes, naming the branch and the mistake (see
course/lesson6_inception_module.py)."""
import numpy

from minigrad import nn
from course import check
from course.lesson6_inception_module import branch_parameter_counts

from exercise_tests import standard_tests


def build(relu_after_reduce=True, relu_last=True, pool="max", pool_stride=1, pad=True, bias=True,
          reduce_5x5=True, order=(0, 1, 2, 3), axis=1, projection=True):
    """An Inception module from nn parts, as a learner writes it, with switchable mistakes."""
    def build_inception(in_channels, widths):
        n1x1, r3, n3x3, r5, n5x5, proj = widths

        def conv(c_in, c_out, k, last=True):
            layers = [nn.Conv2d(c_in, c_out, k, padding=k // 2 if pad else 0, bias=bias)]
            return layers + ([nn.ReLU()] if (relu_last if last else relu_after_reduce) else [])

        pooling = nn.MaxPool2d(3, stride=pool_stride, padding=1) if pool == "max" else \
            nn.AvgPool2d(3, stride=1, padding=1)
        branches = [
            nn.Sequential(*conv(in_channels, n1x1, 1)),
            nn.Sequential(*conv(in_channels, r3, 1, last=False), *conv(r3, n3x3, 3)),
            nn.Sequential(*conv(in_channels, r5, 1, last=False), *conv(r5, n5x5, 5)) if reduce_5x5 else
            nn.Sequential(*conv(in_channels, n5x5, 5)),
            nn.Sequential(pooling, *conv(in_channels, proj, 1)) if projection else nn.Sequential(pooling),
        ]
        return nn.Concat(*[branches[i] for i in order], axis=axis)
    return build_inception


SMALL = r"On a small module: 10 input channels, widths \(3, 4, 5, 2, 6, 7\), x \(2, 10, 6, 6\)"
RIGHT = {"6.4": build()}
WRONG = {"6.4": [
    ("no ReLU after the reductions", build(relu_after_reduce=False),
     SMALL + r", with googlenet's weights: the 3x3 branch's output\[.*the 1x1 reduction is followed by a ReLU"),
    ("no ReLU after the last convolutions", build(relu_last=False),
     SMALL + r", with googlenet's weights: the 1x1 branch's output\[.*negative outputs"),
    ("an average pool", build(pool="avg"), SMALL + r": the pool proj branch starts with a 3x3 MAX pool"),
    ("the pool's stride left at its default", build(pool_stride=None),
     SMALL + r": the pool proj branch gives an output of shape \(7, 2, 2\), expected \(7, 6, 6\): "
             r"the 3x3 max pool needs stride=1"),
    ("no padding", build(pad=False),
     SMALL + r": the 3x3 branch gives an output of shape \(5, 4, 4\).*needs padding K // 2"),
    ("no biases", build(bias=False), SMALL + r": the 1x1 branch has 30 parameters, expected 33 .*no biases"),
    ("the 5x5 without its reduction", build(reduce_5x5=False),
     SMALL + r": the 5x5 branch has 1,506 parameters, expected 328 = 10x2 \+ 2 \+ 5x5x2x6 \+ 6\..*reduction is missing"),
    ("no pool projection", build(projection=False),
     SMALL + r": the pool proj branch has 0 parameters, expected 77.*projection after the max pool is missing"),
    ("the branches out of order", build(order=(1, 0, 2, 3)),
     SMALL + r": the 1x1 branch has 229 parameters.*that is the 3x3 branch's count"),
    ("joined along the width", build(axis=3),
     SMALL + r" it raised ValueError: concat along axis 3.*Hint: every branch is right.*axis 1"),
    ("joined along the batch", build(axis=0), SMALL + r" it raised ValueError: concat along axis 0.*axis 1"),
    ("not a module", lambda in_channels, widths: [nn.Conv2d(in_channels, 1, 1)],
     SMALL + r": build_inception returned a list, expected an nn.Module"),
]}

test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_googlenets_own_inception_is_accepted():
    from googlenet.model import Inception
    verdict = check.verdict("6.4", lambda in_channels, widths: Inception(in_channels, widths))
    assert verdict.correct, str(verdict)


def test_the_parameter_counts_are_googlenets():
    """The counts the checker holds each branch to are what googlenet's Inception has, on every
    row of Table 1."""
    from googlenet import table
    from googlenet.model import GoogLeNet
    model = GoogLeNet()
    for row in table.inception_rows():
        module = getattr(model, "inception" + row.name)
        counts = branch_parameter_counts(module.in_channels, row.widths)
        assert [count for count, _ in counts.values()] == [b.num_parameters() for b in module.children()]


def test_the_copied_weights_matter():
    """The check compares outputs with googlenet's weights copied in: a module whose
    convolutions keep their own weights computes something else."""
    from googlenet.model import Inception
    from minigrad import Tensor
    ours, theirs = build()(10, (3, 4, 5, 2, 6, 7)), Inception(10, (3, 4, 5, 2, 6, 7), rng=0)
    x = Tensor(numpy.random.default_rng(0).standard_normal((1, 10, 6, 6)).astype(numpy.float32))
    assert not numpy.allclose(ours(x).numpy(), theirs(x).numpy())
