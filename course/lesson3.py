"""Lesson 3's exercises: the linear layer's backward, a stable log-softmax, and the
backward of the cross-entropy over a batch.

The forwards the learner's backwards pair with are the package's own, so the caches
are the ones the engine uses:

* ``linear_forward(x, W, b)`` (``minigrad.ops.linalg``): y = x W^T + b, cache
  ``(x, W, has_bias)``;
* ``cross_entropy_forward(logits, labels)`` (``minigrad.ops.loss``): the mean over the
  batch of -log softmax(logits)[n, labels[n]], cache ``(p, rows, labels)`` with
  ``p = softmax(logits)`` and ``rows = arange(N)``.

The log-softmax is checked against ``minigrad.ops.loss.log_softmax_forward`` on
logits of 1e3 and 1e4, where the textbook formula overflows.
"""
import numpy

from minigrad.ops.linalg import linear_forward
from minigrad.ops.loss import cross_entropy_forward, log_softmax_forward
from .cases import backward_cases, forward_cases
from .check import registers
from .verdicts import RULE

__all__ = ["linear_forward", "cross_entropy_forward", "linear_cases", "log_softmax_cases",
           "cross_entropy_cases"]


# --- 3.1: the linear layer's backward --------------------------------------------------------
def linear_cases(seed=31):
    rng = numpy.random.default_rng(seed)
    return {"x (5, 3), W (4, 3), b (4,)": {"x": rng.standard_normal((5, 3)), "W": rng.standard_normal((4, 3)),
                                           "b": rng.standard_normal(4)},
            "x (6, 4), W (4, 4) (square), b (4,)": {"x": rng.standard_normal((6, 4)),
                                                    "W": rng.standard_normal((4, 4)),
                                                    "b": rng.standard_normal(4)}}


LINEAR_RULES = {
    "x": "gx = gy W: (N, out) times (out, in) gives x's shape (N, in).",
    "W": "gW = gy^T x: (out, N) times (N, in) gives W's shape (out, in), one row per output "
         "unit, like W itself (x^T gy is its transpose).",
    "b": "b is added to every row of the batch, so gb is gy summed over the batch (axis 0), "
         "not averaged.",
}


def _linear_hint(case, name, got, expected):
    return f"{RULE} {LINEAR_RULES[name]}"


@registers("3.1", "linear backward", rule=" ".join(LINEAR_RULES.values()))
def check_linear(linear_backward):
    return backward_cases(linear_forward, linear_backward, linear_cases(), hints=_linear_hint)


# --- 3.2: log-softmax, stable -----------------------------------------------------------------
DIFFERENT_SCALES = "logits (2, 4), row 0 near 0 and row 1 near 1e3"
FAR_APART = "logits (2, 3) with gaps of 800 in each row"


def log_softmax_cases(seed=32):
    rng = numpy.random.default_rng(seed)
    # In this order, each usual mistake fails first on the case made for it: the textbook
    # formula on logits near 1e3, one max for the whole batch on rows of different scales,
    # log(softmax) on gaps of 800.
    return {"logits (4, 10) near 0": {"logits": rng.standard_normal((4, 10))},
            "logits (3, 5) near 1e3": {"logits": 1e3 + 5 * rng.standard_normal((3, 5))},
            DIFFERENT_SCALES: {"logits": numpy.stack([rng.standard_normal(4), 1e3 + rng.standard_normal(4)])},
            FAR_APART: {"logits": numpy.array([[0.0, 800.0, 1.0], [-400.0, 400.0, 0.0]])},
            "logits (2, 6) between -1e4 and 1e4": {"logits": rng.uniform(-1e4, 1e4, (2, 6))}}


def _log_softmax_reference(logits):
    return log_softmax_forward(logits, axis=-1)[0]


LOG_SOFTMAX_RULE = ("log_softmax(x) = (x - m) - log(sum over the row of exp(x - m)), with m the max of "
                    "each row (keepdims=True, so it broadcasts over the row).")


def _log_softmax_hint(case, name, got, expected):
    if not numpy.all(numpy.isfinite(got)):
        if case == DIFFERENT_SCALES:
            return ("Hint: one maximum for the whole batch is not enough: a row far below it has "
                    "exp(x - m) = 0 everywhere and log(0) = -inf. Take the max of each row: "
                    "x.max(axis=-1, keepdims=True).")
        if case == FAR_APART:
            return ("Hint: take the log of the SUM, never of a probability: softmax underflows to 0 for "
                    "a logit 800 below the max, and log(0) = -inf, while log_softmax is just -800. "
                    "log_softmax(x) = (x - m) - log(sum(exp(x - m))).")
        return ("Hint: exp overflows to inf above about 709 in float64 (inf / inf is NaN): subtract "
                "each row's max m before exp, log_softmax(x) = (x - m) - log(sum(exp(x - m))).")
    return ""


@registers("3.2", "log-softmax forward (stable)", rule=LOG_SOFTMAX_RULE)
def check_log_softmax(log_softmax):
    with numpy.errstate(all="ignore"):     # an overflow is reported in the verdict, not as warnings
        return forward_cases(log_softmax, _log_softmax_reference, log_softmax_cases(),
                             output_names=("log_softmax",), hints=_log_softmax_hint)


# --- 3.3: the cross-entropy's backward --------------------------------------------------------
def cross_entropy_cases(seed=33):
    """{case: (logits, labels)}; labels are integers, bound into each case's forward."""
    rng = numpy.random.default_rng(seed)
    return {"logits (5, 4), labels [0 3 1 3 2]": (rng.standard_normal((5, 4)), numpy.array([0, 3, 1, 3, 2])),
            "logits (8, 10) near 1e3, labels 0..7": (1e3 + 3 * rng.standard_normal((8, 10)), numpy.arange(8)),
            "logits (1, 3), label [2]": (rng.standard_normal((1, 3)), numpy.array([2]))}


CROSS_ENTROPY_RULE = ("dL/dlogits = (p - onehot(labels)) / N * gy, with p = softmax(logits) from the cache, "
                      "N the batch size (the loss is a mean) and gy the upstream gradient (a scalar).")


def _cross_entropy_hint(cases):
    def hints(case, name, got, expected):
        logits, labels = cases[case]
        if got.shape != expected.shape:
            return ""
        onehot = numpy.zeros_like(logits)
        onehot[numpy.arange(len(labels)), labels] = 1.0
        difference = got - expected
        if numpy.allclose(difference[onehot == 0], 0, atol=1e-9) and \
                numpy.allclose(difference[onehot == 1], difference[0, labels[0]]) and \
                abs(difference[0, labels[0]]) > 1e-9:
            return ("Hint: the one-hot part is missing: the right class's probability must also lose 1, "
                    "(p - onehot(labels)) / N, so subtract 1 at [n, labels[n]] in every row n.")
        p = cross_entropy_forward(logits, labels)[1][0]
        if numpy.allclose(got, (p - onehot) / len(labels), rtol=1e-6, atol=1e-12):
            return ("Hint: the upstream gradient gy is missing: a backward returns the gradient of what "
                    "comes after, gy times the local derivative, not the local derivative alone.")
        return ""
    return hints


@registers("3.3", "cross-entropy backward", rule=CROSS_ENTROPY_RULE)
def check_cross_entropy(cross_entropy_backward):
    cases = cross_entropy_cases()
    forwards = {case: (lambda logits, labels=labels: cross_entropy_forward(logits, labels))
                for case, (_, labels) in cases.items()}
    inputs = {case: {"logits": logits} for case, (logits, _) in cases.items()}
    return backward_cases(forwards, cross_entropy_backward, inputs, hints=_cross_entropy_hint(cases))
