"""Lesson 7's exercises: the paper's training loss, the spread of each layer's output, and
the norm of a gradient.

* 7.1 ``paper_loss(logits, aux1, aux2, labels)``: the main cross-entropy plus 0.3 times
  each auxiliary classifier's (section 5 of the paper), value and gradients;
* 7.2 ``activation_spread(layers, x)``: run the layers one after another and, for each,
  how much its output differs between the images of the batch;
* 7.3 ``gradient_norm(parameters)``: the length of the whole gradient of a list of
  parameters, as one vector.

The course sits above the framework and the model, so the loss reference is googlenet's
own ``googlenet_loss`` and its weight googlenet's ``AUX_WEIGHT``: nothing is copied.
"""
import numpy

from googlenet.model import GoogLeNetOutput, googlenet_loss
from googlenet.table import AUX_WEIGHT
from minigrad import nn, no_grad
from minigrad import functional as F
from minigrad.autograd import Tensor

from .cases import (Refused, as_numpy, cases_text, changed_inputs, forward_cases, join, one_number,
                    run_learners_code)
from .check import registers
from .guard import hand_over
from .verdicts import CORRECT, WRONG, compare, finite_error, relative_error


# --- 7.1 the paper's loss -----------------------------------------------------------------
def paper_loss_reference(logits, aux1, aux2, labels):
    """Main cross-entropy + AUX_WEIGHT x each auxiliary cross-entropy: googlenet's own loss."""
    return googlenet_loss(GoogLeNetOutput(logits, aux1, aux2), labels)


def _loss_cases():
    """{case: (main logits, aux1, aux2, labels)}: three heads of different confidence, so
    that their cross-entropies differ and each way of combining them gives its own value."""
    cases = {}
    for name, (batch, classes, scales, seed) in {
            "logits, aux1, aux2 (8, 10), labels (8,)": (8, 10, (1.0, 3.0, 0.3), 71),
            "logits, aux1, aux2 (3, 5), labels (3,), the main head confident": (3, 5, (4.0, 0.5, 2.0), 72)}.items():
        rng = numpy.random.default_rng(seed)
        heads = [scale * rng.standard_normal((batch, classes)) for scale in scales]
        cases[name] = (*heads, rng.integers(0, classes, batch))
    return cases


def _cross_entropies(logits, aux1, aux2, labels):
    return [F.cross_entropy(Tensor(h), labels).item() for h in (logits, aux1, aux2)]


def _loss_mistakes(main, a1, a2):
    w = AUX_WEIGHT
    return {
        w * main + a1 + a2: "the 0.3 weighs each auxiliary loss, not the main one.",
        main + a1 + a2: "each auxiliary loss is added with the weight 0.3 (the paper: 'their "
                        "loss gets added to the total loss of the network with a discount weight').",
        (main + a1 + a2) / 3: "the losses are added, not averaged.",
        (main + w * (a1 + a2)) / (1 + 2 * w): "the weighted losses are added, not averaged "
                                               "(no division by 1 + 0.3 + 0.3).",
        (main + w * a1 + w * a2) / 3: "the weighted losses are added, not averaged.",
        main + w * (a1 + a2) / 2: "each auxiliary loss gets 0.3, not their mean.",
        main + w * a1: "aux2 is missing.",
        main + w * a2: "aux1 is missing.",
        main: "the auxiliary losses are missing.",
        main + w * (a1 + a2) * 2: "0.3 once per auxiliary loss, not twice.",
    }


def _value_mistake(mistakes, value):
    """The hint for the usual mistake that gives ``value``, else ""."""
    for wrong, text in mistakes.items():
        if abs(value - wrong) <= 1e-9 * max(1.0, abs(wrong)):
            return "Hint: " + text
    return ""


def _run_loss(loss_function, logits, aux1, aux2, labels):
    """``loss_function`` on three float64 head tensors made from the arrays given; -> (the loss
    as a number, [the gradient of each head]), after checking the loss is a float64 Tensor."""
    heads = [Tensor(h, requires_grad=True) for h in (logits, aux1, aux2)]
    loss = loss_function(*heads, labels)
    if not isinstance(loss, Tensor):
        raise TypeError(f"paper_loss returned a {type(loss).__name__}; return the Tensor that "
                        f"F.cross_entropy gives (and that you add to), so that backward can run")
    if loss.size != 1:
        raise ValueError(f"paper_loss returned a tensor of shape {loss.shape}, expected one number")
    if loss.dtype != numpy.float64:
        raise Refused(f"the loss is {loss.dtype}, the logits float64: keep their dtype (no .astype, "
                      f"no constant of another dtype)")
    loss.backward()
    grads = [numpy.zeros(h.shape) if h.grad is None else as_numpy(h.grad) for h in heads]
    return loss.item(), grads


LOSS_RULE = f"main + {AUX_WEIGHT} x aux1 + {AUX_WEIGHT} x aux2, each a cross-entropy (F.cross_entropy)."
HEADS = ("the gradient of the main logits", "the gradient of aux1", "the gradient of aux2")


@registers("7.1", "the paper's loss", rule=LOSS_RULE)
def check_paper_loss(paper_loss):
    """The learner's loss (its value first, with the usual mistakes named), then its
    gradients with respect to the three logits."""
    cases = _loss_cases()
    names = ("logits", "aux1", "aux2", "labels")
    expected = {case: _run_loss(paper_loss_reference, *hand_over(inputs, writable=True))
                for case, inputs in cases.items()}
    worst = 0.0
    for case, inputs in cases.items():
        given = hand_over(inputs)
        got, failure = run_learners_code(lambda: _run_loss(paper_loss, *given), case)
        if failure:
            return WRONG, failure
        problem = changed_inputs(dict(zip(names, inputs)), dict(zip(names, given)), case)
        if problem:
            return WRONG, problem
        (value, grads), (right, right_grads) = got, expected[case]
        error = relative_error(numpy.float64(value), numpy.float64(right))
        if not error <= 1e-9:
            main, a1, a2 = _cross_entropies(*inputs)
            known = _value_mistake(_loss_mistakes(main, a1, a2), value)
            return WRONG, join(f"On {case}: the loss is {value:.6g}, expected {right:.6g} (relative error "
                               f"{error:.1e}; the three cross-entropies are main {main:.4f}, aux1 {a1:.4f}, "
                               f"aux2 {a2:.4f}).", known)
        for name, g, e in zip(HEADS, grads, right_grads):
            problem = compare(name, g, e, 1e-9)
            if problem:
                return WRONG, join(f"On {case}: {problem}", "Hint: build the loss from minigrad ops on the "
                                   "three tensors (no .item(), .data or NumPy in between), so that every "
                                   "head gets its gradient.")
            worst = max(worst, error, finite_error(g, e))
    return CORRECT, (f"The loss and its gradients with respect to the three logits match the reference on "
                     f"{cases_text(len(cases))}; largest relative error {worst:.1e}.")


# --- 7.2 the spread of each layer's output -------------------------------------------------
def spread(output):
    """How much an output differs between the images of a batch: the standard deviation
    over the batch (axis 0) of each unit, averaged over the units."""
    return float(numpy.mean(numpy.std(output, axis=0)))


def layer_outputs(layers, x):
    """Every layer's output, as NumPy arrays, running ``x`` through the layers in order."""
    outputs = []
    with no_grad():
        for layer in layers:
            x = layer(x)
            outputs.append(as_numpy(x.data if isinstance(x, Tensor) else x))
    return outputs


def activation_spread_reference(layers, x):
    return numpy.array([spread(output) for output in layer_outputs(layers, x)])


def _conv_relu(in_channels, out_channels, kernel_size, stride, rng):
    return nn.Sequential(conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                        padding=kernel_size // 2, rng=rng, bias_value=0.2),
                         relu=nn.ReLU())


def _spread_cases():
    """{case: (layers, x)}, float64: a deep plain stack (the spread fades), and a small
    network whose output turns from maps into vectors (the spread of (N, F) outputs)."""
    rng = numpy.random.default_rng(73)
    deep = [_conv_relu(4, 4, 3, 1, rng) for _ in range(8)]
    small = [_conv_relu(3, 6, 3, 2, rng), nn.MaxPool2d(2), nn.LocalResponseNorm(5),
             _conv_relu(6, 8, 1, 1, rng), nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(8, 5, rng=rng)]
    cases = {
        "8 conv 3x3 + ReLU layers (Caffe xavier, bias 0.2), x (6, 4, 8, 8)": (deep, rng.standard_normal((6, 4, 8, 8))),
        "conv, max pool, LRN, conv, global average pool, flatten, linear; x (5, 3, 12, 12)":
            (small, rng.standard_normal((5, 3, 12, 12))),
    }
    for layers, _ in cases.values():
        for layer in layers:
            layer.astype(numpy.float64)
    return cases


def _spread_mistakes(outputs):
    """{what: per-layer values}, for the usual mistakes."""
    return {
        "the std of all the numbers at once (a.std()) also counts what is the same for every "
        "image (the bias 0.2 passed on, the pattern of the maps): the spread is the std over the "
        "batch, axis 0, of each unit, then the mean over the units.": [float(numpy.std(a)) for a in outputs],
        "that is the std over the channels (axis 1); the spread is over the images, axis 0.":
            [float(numpy.mean(numpy.std(a, axis=1))) for a in outputs],
        "that is the std with ddof=1 (divided by N - 1); use NumPy's default, ddof=0.":
            [float(numpy.mean(numpy.std(a, axis=0, ddof=1))) for a in outputs],
        "the mean of the std is wanted, not the std of the whole batch's mean.":
            [float(numpy.std(numpy.mean(a, axis=0))) for a in outputs],
    }


SPREAD_RULE = ("one number per layer, in order: run x through each layer in turn (each layer gets the "
               "previous layer's output) and take the spread of that output: numpy.std(output, axis=0) "
               "(over the images), then the mean over the units.")


@registers("7.2", "activation spread per layer", rule=SPREAD_RULE)
def check_activation_spread(activation_spread):
    cases = _spread_cases()
    outputs = {case: layer_outputs(layers, Tensor(x)) for case, (layers, x) in cases.items()}
    inputs = {case: dict(layers=layers, x=x) for case, (layers, x) in cases.items()}

    def attempt(layers, x):
        got = as_numpy(activation_spread(layers, Tensor(x)))
        shape = numpy.shape(got)
        if shape != (len(layers),):
            raise Refused(f"returned {int(numpy.prod(shape))} value(s) (shape {shape}) for {len(layers)} "
                          f"layers. Hint: one number per layer, in order: run x through each layer in turn "
                          f"and take the spread of each layer's output.")
        return got

    def reference(layers, x):
        return activation_spread_reference(layers, Tensor(x))

    def hints(case, name, got, expected):
        for text, values in _spread_mistakes(outputs[case]).items():
            if numpy.allclose(got, values, rtol=1e-6, atol=0):
                return "Hint: " + text
        return ""

    return forward_cases(attempt, reference, inputs, output_names=("the spreads",), tolerance=1e-6, hints=hints)


# --- 7.3 the norm of a gradient ---------------------------------------------------------------
def gradient_norm_reference(parameters):
    """sqrt(sum over the parameters of the sum of their squared gradient entries); a
    parameter without a gradient (None: no gradient reached it) counts as zeros."""
    total = 0.0
    for parameter in parameters:
        if parameter.grad is not None:
            total += float(numpy.sum(numpy.square(as_numpy(parameter.grad).astype(numpy.float64))))
    return total ** 0.5


def _parameters_with(grads):
    params = []
    for grad in grads:
        shape = (3,) if grad is None else grad.shape
        parameter = nn.Parameter(numpy.zeros(shape))
        parameter.grad = grad
        params.append(parameter)
    return params


def _norm_cases():
    rng = numpy.random.default_rng(74)
    return {
        "3 parameters with gradients of shapes (4, 3), (4,), (2, 2, 3, 3)":
            _parameters_with([rng.standard_normal((4, 3)), rng.standard_normal(4),
                              0.1 * rng.standard_normal((2, 2, 3, 3))]),
        "4 parameters, the 2nd without a gradient (grad None, as for a layer no loss reached)":
            _parameters_with([rng.standard_normal((5, 2)), None, 3 * rng.standard_normal(6),
                              rng.standard_normal((2, 3))]),
    }


def _norm_mistakes(parameters):
    grads = [numpy.asarray(p.grad, dtype=numpy.float64) for p in parameters if p.grad is not None]
    squares = sum(float(numpy.sum(g * g)) for g in grads)
    count = sum(g.size for g in grads)
    return {
        sum(float(numpy.linalg.norm(g)) for g in grads):
            "that is the sum of each parameter's norm; the norm of the whole gradient is the square "
            "root of the sum of ALL the squares (the parameters' norms add like the sides of a "
            "right triangle, not like lengths on a line).",
        squares: "the square root is missing.",
        (squares / count) ** 0.5: "that is the root of the MEAN square; the norm sums the squares.",
        float(max(numpy.abs(g).max() for g in grads)): "that is the largest entry, not the norm.",
        sum(float(numpy.sum(g)) for g in grads): "the entries must be squared before they are summed.",
    }


NORM_RULE = "sqrt(sum over every parameter of the sum of its squared gradient entries)."


@registers("7.3", "gradient norm", rule=NORM_RULE)
def check_gradient_norm(gradient_norm):
    cases = _norm_cases()
    expected = {case: gradient_norm_reference(hand_over(parameters)) for case, parameters in cases.items()}
    for case, parameters in cases.items():
        given = hand_over(parameters)
        got, failure = run_learners_code(lambda: gradient_norm(given), case)
        if failure:
            if any(p.grad is None for p in parameters):
                failure += (". Hint: a parameter that no loss reached has grad None; it adds nothing "
                            "to the norm (skip it).")
            return WRONG, failure
        problem = changed_inputs({"parameters": parameters}, {"parameters": given}, case)
        if problem:
            return WRONG, problem
        got = as_numpy(got)
        if numpy.shape(got) == (1,):
            got = got[0]
        value, problem = one_number(got)
        if problem:
            shape = numpy.shape(got) if isinstance(got, numpy.ndarray) else ()
            return WRONG, (f"On {case}: returned an array of shape {shape}, expected one number" if shape else
                           f"On {case}: returned {got!r:.60}, expected one number: {problem}")
        error = relative_error(numpy.float64(value), numpy.float64(expected[case]))
        if not error <= 1e-9:
            return WRONG, join(f"On {case}: got {value:.6g}, expected {expected[case]:.6g} (relative error "
                               f"{error:.1e}).", _value_mistake(_norm_mistakes(parameters), value))
    return CORRECT, f"Matches the reference on {cases_text(len(cases))}."


# --- pictures -------------------------------------------------------------------------------------
def short_layer_name(name):
    """A layer's name as a tick label: "inception3a.branch3x3.reduce" -> "3a 3x3 reduce",
    "inception3a.branch1x1.conv" -> "3a 1x1", "aux1.conv" -> "aux1 conv"; "conv1", "linear",
    "input" stay."""
    parts = name.replace("inception", "").replace("branch_", "").replace("branch", "").split(".")
    if len(parts) == 3 and parts[2] == "conv":              # a branch's own convolution: "3a 1x1"
        parts = parts[:2]
    return " ".join(parts)


def plot_gradcheck(ax, report, title=None):
    """The worst relative error of each layer of a ``gradcheck_googlenet`` report, one point
    per layer named on the axis, the modules (conv1, 3a, ..., aux1, input) set apart by faint
    lines, and the tolerance."""
    names = [entry.layer for entry in report.layers]
    ax.semilogy(range(len(names)), [entry.max_rel_error for entry in report.layers], marker=".", linestyle="none")
    ax.axhline(report.tolerance, color="red", linewidth=1, label=f"tolerance {report.tolerance:g}")
    modules = [name.split(".")[0] for name in names]
    for position in range(1, len(names)):
        if modules[position] != modules[position - 1]:
            ax.axvline(position - 0.5, color="lightgray", linewidth=0.8, zorder=0)
    ax.set_xticks(range(len(names)), [short_layer_name(name) for name in names], rotation=90, fontsize=6)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel("worst relative error")
    ax.legend(fontsize=7, loc="upper right")
    if title:
        ax.set_title(title, fontsize=9)
