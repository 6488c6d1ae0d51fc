"""Lesson 7's checkers accept the right answers and reject the usual mistakes, naming the
case and the mistake (see course/lesson7.py); their references agree with
googlenet's own code."""
import math

import numpy
import pytest

from minigrad import Tensor
from minigrad import functional as F

from course.lesson7 import (AUX_WEIGHT, activation_spread_reference, gradient_norm_reference,
                            layer_outputs, paper_loss_reference)

from exercise_tests import standard_tests


def loss_with(main_weight=1.0, aux_weight=0.3, divide=1.0, heads=(1, 2)):
    def loss(logits, aux1, aux2, labels):
        total = main_weight * F.cross_entropy(logits, labels)
        for i, head in ((1, aux1), (2, aux2)):
            if i in heads:
                total = total + aux_weight * F.cross_entropy(head, labels)
        return total * (1 / divide)
    return loss


def spread_with(statistic, chained=True):
    def activation_spread(layers, x):
        values, h = [], x
        for layer in layers:
            out = layer(h)
            h = out if chained else x
            values.append(statistic(out.numpy()))
        return numpy.array(values)
    return activation_spread


def norm_with(combine, skip_none=True):
    def gradient_norm(parameters):
        grads = [p.grad for p in parameters if p.grad is not None or not skip_none]
        return combine([numpy.asarray(g, dtype=numpy.float64) for g in grads] if skip_none else grads)
    return gradient_norm


RIGHT = {
    "7.1": loss_with(),
    "7.2": spread_with(lambda a: a.std(axis=0).mean()),
    "7.3": norm_with(lambda gs: math.sqrt(sum(float((g * g).sum()) for g in gs))),
}
LOSS_CASE = "On logits, aux1, aux2 \\(8, 10\\), labels \\(8,\\)"
DEEP = "On 8 conv 3x3 \\+ ReLU layers \\(Caffe xavier, bias 0.2\\), x \\(6, 4, 8, 8\\)"
NORM_CASE = "On 3 parameters with gradients of shapes \\(4, 3\\), \\(4,\\), \\(2, 2, 3, 3\\)"
# exercise: [(planted mistake, wrong answer, text the message must hold)]
WRONG = {
    "7.1": [
        ("aux weight on the main loss", loss_with(main_weight=0.3, aux_weight=1.0),
         LOSS_CASE + ": the loss is 8.30166, expected 4.95893.*the 0.3 weighs each auxiliary loss, not the main"),
        ("aux losses without the weight", loss_with(aux_weight=1.0),
         LOSS_CASE + ": the loss is .*added with the weight 0.3"),
        ("averaged instead of summed", loss_with(aux_weight=1.0, divide=3),
         LOSS_CASE + ": the loss is .*added, not averaged"),
        ("weighted average", loss_with(divide=1.6), LOSS_CASE + ".*no division by 1 \\+ 0.3 \\+ 0.3"),
        ("one auxiliary head", loss_with(heads=(1,)), LOSS_CASE + ".*aux2 is missing"),
        ("a float, not a Tensor", lambda *a: loss_with()(*a).item(),
         LOSS_CASE.replace(":", "") + " it raised TypeError: paper_loss returned a float"),
        ("aux2 cut from the graph", lambda l, a1, a2, y: loss_with()(l, a1, Tensor(a2.data), y),
         LOSS_CASE + ": the gradient of aux2\\[.*no .item\\(\\), .data or NumPy"),
    ],
    "7.2": [
        ("std of everything", spread_with(lambda a: a.std()),
         DEEP + ": the spreads\\[.*\\] is .*expected.*std of all the numbers at once"),
        ("std over the channels", spread_with(lambda a: a.std(axis=1).mean()),
         DEEP + ": the spreads\\[.*std over the channels \\(axis 1\\)"),
        ("ddof 1", spread_with(lambda a: a.std(axis=0, ddof=1).mean()), DEEP + ".*ddof=1"),
        ("every layer on the input", spread_with(lambda a: a.std(axis=0).mean(), chained=False),
         DEEP + ".*each layer gets the previous layer's output"),
        ("the last layer only", lambda layers, x: numpy.array([spread_with(lambda a: a.std(axis=0).mean())(
            layers, x)[-1]]), DEEP + ": returned 1 value\\(s\\) \\(shape \\(1,\\)\\) for 8 layers"),
    ],
    "7.3": [
        ("sum of the norms", norm_with(lambda gs: sum(float(numpy.linalg.norm(g)) for g in gs)),
         NORM_CASE + ": got 3.54952, expected 2.51987.*sum of each parameter's norm"),
        ("no square root", norm_with(lambda gs: sum(float((g * g).sum()) for g in gs)),
         NORM_CASE + ".*the square root is missing"),
        ("root mean square", norm_with(lambda gs: float(numpy.sqrt(numpy.mean(numpy.concatenate(
            [g.ravel() for g in gs]) ** 2)))), NORM_CASE + ".*MEAN square"),
        ("grad None not skipped", norm_with(lambda gs: math.sqrt(sum(float((g * g).sum()) for g in gs)),
                                            skip_none=False),
         "On 4 parameters, the 2nd without a gradient .* it raised TypeError.*grad None; it adds nothing"),
        ("an array per parameter", norm_with(lambda gs: numpy.array([numpy.linalg.norm(g) for g in gs])),
         NORM_CASE + ": returned an array of shape \\(3,\\), expected one number"),
    ],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


# --- the references run googlenet's layers -----------------------------------------------------
def test_the_layers_run_in_order_are_the_googlenet_forward():
    """Running a GoogLeNet's main path layer by layer (as lesson 7 and its checker do) is the
    model's forward in eval mode, and the spread of the last output is that of the logits."""
    from googlenet.model import GoogLeNet
    model = GoogLeNet(num_classes=10, in_channels=1, width=1 / 16, input_size=32).eval()
    x = Tensor(numpy.random.default_rng(1).standard_normal((4, 1, 32, 32)).astype(numpy.float32))
    layers = [getattr(model, name) for name in model.layer_names]
    outputs = layer_outputs(layers, x)
    numpy.testing.assert_array_equal(outputs[-1], model(x).numpy())
    spreads = activation_spread_reference(layers, x)
    assert len(spreads) == len(model.layer_names)
    assert spreads[-1] == pytest.approx(float(model(x).numpy().std(axis=0).mean()))
    assert spreads[-1] < spreads[0] / 10          # the fading the lesson shows


def test_the_gradient_norm_reference_skips_parameters_without_a_gradient():
    from googlenet.model import GoogLeNet, googlenet_loss
    model = GoogLeNet(num_classes=10, in_channels=1, width=1 / 16, input_size=32).eval()
    x = Tensor(numpy.random.default_rng(2).standard_normal((2, 1, 32, 32)).astype(numpy.float32))
    googlenet_loss(model(x), numpy.array([1, 2])).backward()      # eval: no auxiliary heads
    assert model.aux1.classifier.weight.grad is None
    everything = gradient_norm_reference(model.parameters())
    reached = [p.grad.ravel() for p in model.parameters() if p.grad is not None]
    assert everything == pytest.approx(float(numpy.linalg.norm(numpy.concatenate(reached))), rel=1e-6)
    assert RIGHT["7.3"](list(model.parameters())) == pytest.approx(everything, rel=1e-9)


# --- NaN, dropped gradients and changed inputs are wrong ----------------------------------------
def test_a_nan_loss_is_wrong():
    """Before, `if error > 1e-9` let NaN through (NaN > x is False)."""
    from course import check
    verdict = check.verdict("7.1", lambda *a: loss_with()(*a) * float("nan"))
    assert verdict.status == "wrong" and verdict.message.startswith(
        "On logits, aux1, aux2 (8, 10), labels (8,): the loss is nan, expected 4.95893")


def test_a_float32_loss_is_wrong_naming_the_dtype():
    from course import check
    verdict = check.verdict("7.1", lambda *a: loss_with()(*a).astype(numpy.float32))
    assert verdict.status == "wrong" and "the loss is float32, the logits float64" in verdict.message


def test_a_loss_that_changes_the_labels_is_wrong():
    from course import check

    def changes_labels(logits, aux1, aux2, labels):
        loss = loss_with()(logits, aux1, aux2, labels)
        labels.flags.writeable = True
        labels[0] = (labels[0] + 1) % 10
        return loss
    verdict = check.verdict("7.1", changes_labels)
    assert verdict.status == "wrong" and "your function changed its input labels: labels[0] is now" in verdict.message


def test_a_nan_or_complex_norm_is_wrong():
    from course import check
    nan = check.verdict("7.3", norm_with(lambda gs: float("nan")))
    assert nan.status == "wrong" and nan.message.startswith(NORM_CASE.replace("\\", "") + ": got nan, expected 2.51987")
    complex_norm = check.verdict("7.3", norm_with(lambda gs: complex(math.sqrt(sum(float((g * g).sum()) for g in gs)))))
    assert complex_norm.status == "wrong" and "complex" in complex_norm.message


def test_a_norm_that_drops_the_gradients_is_wrong():
    """Before, the reference ran after the learner's code: with every grad None it said 0, as did
    the answer."""
    from course import check

    def drops(parameters):
        for parameter in parameters:
            parameter.grad = None
        return 0.0
    verdict = check.verdict("7.3", drops)
    assert verdict.status == "wrong"
    assert "your function changed its input parameters: parameters[0].grad is now None, it was a float64 array" \
        in verdict.message


def test_a_spread_that_changes_a_layers_weights_is_wrong():
    from course import check

    def changes(layers, x):
        values = RIGHT["7.2"](layers, x)
        weight = layers[0].conv.weight.data
        weight.flags.writeable = True
        weight *= 2
        return values
    verdict = check.verdict("7.2", changes)
    assert verdict.status == "wrong" and "your function changed its input layers: layers[0]'s state" in verdict.message
