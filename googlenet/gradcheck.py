"""Gradient check of the whole GoogLeNet against finite differences.

    python -m googlenet gradcheck           # prints the worst relative error per layer

The full topology (conv stem, both LRNs, all nine Inception modules, the four max
pools, both auxiliary heads, the dropouts) in training mode, at a reduced width
and a small input so that it runs in seconds, in float64. The default width is
1/8, not 1/16: at 1/16 some layers have 1 to 4 channels, and with several seeds
one of them is entirely inactive at initialization (every ReLU off), so no
gradient reaches it and its check says nothing (the report marks such layers). The loss is the
paper's: main cross-entropy + 0.3 x each auxiliary one. Every dropout layer is
reseeded before each evaluation, so all evaluations see the same masks: the
network is then one fixed, differentiable function of its parameters and input.

Two checks (``minigrad.gradcheck`` explains the relative error):

1. Directional: one random unit direction v through ALL parameters and the
   input at once; the analytic sum_t <grad_t, v_t> against
   (L(p + eps v) - L(p - eps v)) / (2 eps). Two evaluations check everything,
   unless an error happens to be orthogonal to v.
2. Per layer: a few elements of every weight and bias (and of the input),
   each perturbed on its own; the worst relative error of each layer is reported.

A second function, ``auxiliary_gradients``, measures how much gradient the
auxiliary heads add to each row of Table 1 (section 5's motivation for them).
"""
import argparse
import dataclasses
import numbers

import numpy

from minigrad import Tensor, backend, nn, no_grad
from minigrad import functional as F
from minigrad.gradcheck import GradcheckError, directional_check, numerical_gradient, relative_error

from .errors import UserError, check_number, reports_user_errors
from .model import GoogLeNet, GoogLeNetOutput, googlenet_loss


@dataclasses.dataclass
class LayerError:
    layer: str          # "inception3a.branch3x3.conv", or "input"
    checked: int        # elements perturbed
    max_rel_error: float
    analytic: float     # at the worst element
    numerical: float


@dataclasses.dataclass
class NetworkGradcheckReport:
    directional: object           # minigrad.gradcheck.DirectionalReport
    layers: list                  # LayerError per layer, in the model's order
    tolerance: float
    description: str

    @property
    def max_rel_error(self):
        return max([self.directional.rel_error] + [layer.max_rel_error for layer in self.layers])

    @property
    def passed(self):
        return self.max_rel_error <= self.tolerance

    def __str__(self):
        lines = [self.description, "", str(self.directional), "",
                 f"{'layer':<32} {'checked':>7} {'rel error':>10} {'analytic':>14} {'numerical':>14}"]
        for e in self.layers:
            flag = "" if e.max_rel_error <= self.tolerance else "   <-- FAIL"
            if e.analytic == 0 and e.numerical == 0:
                flag += "   (no gradient reaches it: all its units are inactive)"
            lines.append(f"{e.layer:<32} {e.checked:>7} {e.max_rel_error:>10.2e} "
                         f"{e.analytic:>+14.6e} {e.numerical:>+14.6e}{flag}")
        worst = max(self.layers, key=lambda e: e.max_rel_error)
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{verdict}: largest error {self.max_rel_error:.2e} (tolerance {self.tolerance:.0e}); "
                     f"worst layer {worst.layer} ({worst.max_rel_error:.2e})")
        return "\n".join(lines)


def checkable_problem(width=1 / 8, input_size=32, batch_size=2, num_classes=5, seed=0):
    """A float64 GoogLeNet in training mode, an input Tensor and labels, all seeded."""
    model = GoogLeNet(num_classes=num_classes, width=width, input_size=input_size, seed=seed)
    model.astype(numpy.float64).train()
    rng = numpy.random.default_rng(seed + 1)
    x = Tensor(rng.standard_normal((batch_size, 3, input_size, input_size)), requires_grad=True)
    labels = rng.integers(0, num_classes, size=batch_size)
    return model, x, labels


def reseed_dropouts(model, seed=0):
    """Restart every dropout layer's generator: the next forward draws the same masks."""
    dropouts = (m for m in model.modules() if isinstance(m, nn.Dropout))
    for i, dropout in enumerate(dropouts):
        dropout.reseed(seed + i)


def fixed_masks_loss(model, x, labels, seed=0):
    """``loss()``: the paper's loss of ``model(x)``, with the same dropout masks on every call."""
    def loss():
        reseed_dropouts(model, seed)
        return googlenet_loss(model(x), labels)
    return loss


def _layers_with_parameters(model):
    """[(layer name, [its weight, its bias]), ...] in the model's order."""
    layers = {}
    for name, parameter in model.named_parameters():
        layer = name.rsplit(".", 1)[0]
        layers.setdefault(layer, []).append(parameter)
    return list(layers.items())


def _sample(grad, elements, rng):
    """The entry with the largest analytic gradient (so that a layer whose random picks
    all sit behind dropped or inactive units still gets a meaningful scale), plus
    ``elements - 1`` random others."""
    largest = int(numpy.argmax(numpy.abs(grad)))
    others = numpy.delete(numpy.arange(grad.size), largest)
    picked = rng.choice(others, size=min(elements - 1, others.size), replace=False)
    return numpy.concatenate([[largest], picked]).astype(int)


def _check_elements(name, tensors, loss_value, elements, eps, rng):
    """The layer's worst relative error over ``elements`` entries of each of its tensors."""
    analytic, numerical = [], []
    for tensor in tensors:
        indices = _sample(backend.to_numpy(tensor.grad).reshape(-1), elements, rng)
        numeric = numerical_gradient(loss_value, tensor.data, eps, indices)
        analytic.append(backend.to_numpy(tensor.grad).reshape(-1)[indices])
        numerical.append(numeric.reshape(-1)[indices])
    analytic, numerical = numpy.concatenate(analytic), numpy.concatenate(numerical)
    error, (worst,) = relative_error(analytic, numerical)
    return LayerError(name, analytic.size, error, float(analytic[worst]), float(numerical[worst]))


def gradcheck_googlenet(width=1 / 8, input_size=32, batch_size=2, num_classes=5, seed=0,
                        elements=3, eps=1e-6, tolerance=1e-6, raise_on_failure=True):
    """Check the whole network's gradients (module docstring); returns the report.

    ``elements``: entries checked per weight, per bias and for the input (at least 1: a
    check of nothing must not pass).
    """
    if isinstance(elements, bool) or not isinstance(elements, numbers.Integral) or elements < 1:
        raise ValueError(f"gradcheck_googlenet: elements must be an int of at least 1 (entries "
                         f"checked per weight, bias and input), got {elements!r}")
    model, x, labels = checkable_problem(width, input_size, batch_size, num_classes, seed)
    loss = fixed_masks_loss(model, x, labels, seed)
    layers = _layers_with_parameters(model)
    tensors = [p for _, params in layers for p in params] + [x]
    directional = directional_check(loss, tensors, eps=eps, tolerance=tolerance, seed=seed,
                                    raise_on_failure=False)
    for t in tensors:                               # analytic gradients, once
        t.grad = None
    loss().backward()

    def loss_value():
        with no_grad():
            return float(loss().item())

    rng = numpy.random.default_rng(seed)
    errors = [_check_elements(name, params, loss_value, elements, eps, rng) for name, params in layers]
    errors.append(_check_elements("input", [x], loss_value, elements, eps, rng))
    description = (f"Whole-network gradient check: GoogLeNet width {width:g}, input "
                   f"{batch_size}x3x{input_size}x{input_size}, {num_classes} classes, float64, "
                   f"training mode (both auxiliary heads, fixed dropout masks), "
                   f"{model.num_parameters():,} parameters, eps {eps:g}")
    report = NetworkGradcheckReport(directional, errors, tolerance, description)
    if raise_on_failure and not report.passed:
        raise GradcheckError("whole-network gradient check failed\n" + str(report))
    return report


def auxiliary_gradients(model, x, labels, seed=0):
    """[(Table 1 row, |grad of the main loss|, |what the auxiliary losses add|), ...].

    The second norm is that of grad(googlenet_loss) - grad(main cross-entropy) over
    the row's parameters, with the same dropout masks in both passes. In training
    mode the auxiliary heads add gradient to every row up to 4d (and to themselves)
    and exactly nothing above 4d; in eval mode the model returns the main logits
    only and they add nothing anywhere.
    """
    main = _gradients(model, x, seed, lambda out: F.cross_entropy(_logits(out), labels))
    total = _gradients(model, x, seed, lambda out: googlenet_loss(out, labels))
    main_squares, added_squares = {}, {}
    for name in main:
        row = model.table_row.get(name.split(".")[0], name.split(".")[0])
        main_squares[row] = main_squares.get(row, 0.0) + float(numpy.sum(main[name] ** 2))
        added_squares[row] = added_squares.get(row, 0.0) + float(numpy.sum((total[name] - main[name]) ** 2))
    return [(row, main_squares[row] ** 0.5, added_squares[row] ** 0.5) for row in main_squares]


def _logits(output):
    return output.logits if isinstance(output, GoogLeNetOutput) else output


def _gradients(model, x, seed, loss_of_output):
    """{parameter name: its gradient as a NumPy array (zeros where none arrived)}."""
    reseed_dropouts(model, seed)
    model.zero_grad()
    loss_of_output(model(x)).backward()
    return {name: numpy.zeros(p.shape) if p.grad is None else backend.to_numpy(p.grad).copy()
            for name, p in model.named_parameters()}


# --- command line (python -m googlenet gradcheck) ----------------------------------------------
def add_parser(subparsers):
    """Register ``gradcheck`` on an argparse sub-parser collection."""
    parser = subparsers.add_parser("gradcheck", help="check the whole network's gradients against "
                                   "finite differences", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=1 / 8, help="width multiplier (default 1/8)")
    parser.add_argument("--input-size", type=int, default=32, help="input side (default 32)")
    parser.add_argument("--batch-size", type=int, default=2, help="images (default 2)")
    parser.add_argument("--classes", type=int, default=5, help="classes (default 5)")
    parser.add_argument("--elements", type=int, default=3,
                        help="entries checked per weight, bias and input, at least 1 (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="model, data and dropout seed (default 0)")
    parser.set_defaults(func=run)
    return parser


@reports_user_errors
def run(args):
    """``python -m googlenet gradcheck``: exit status 0 if it passed, 1 if not, 2 for bad options."""
    check_number("--width", args.width, 0, low_open=True)
    for flag, value in (("--input-size", args.input_size), ("--batch-size", args.batch_size),
                        ("--classes", args.classes), ("--elements", args.elements)):
        check_number(flag, value, 1)
    check_number("--seed", args.seed, 0)
    try:
        report = gradcheck_googlenet(args.width, args.input_size, args.batch_size, args.classes,
                                     args.seed, args.elements, raise_on_failure=False)
    except ValueError as error:                   # an input too small for the network
        raise UserError(str(error)) from None
    print(report)
    model, x, labels = checkable_problem(args.width, args.input_size, args.batch_size, args.classes,
                                         args.seed)
    print("\nGradient the auxiliary heads add, per row (training mode, norms over the row's parameters):")
    print(f"{'row':<10} {'main loss':>12} {'aux added':>12} {'added/main':>11}")
    for row, main, aux in auxiliary_gradients(model, x, labels, args.seed):
        ratio = f"{aux / main:.3f}" if main else "-"
        print(f"{row:<10} {main:>12.4e} {aux:>12.4e} {ratio:>11}")
    return 0 if report.passed else 1
