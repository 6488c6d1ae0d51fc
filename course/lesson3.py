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
from .check import backward_cases, forward_cases, registers
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


# =============================================================================================
# Exercises 3.4 and 3.5: the optimizer. The learner writes one step of SGD with momentum and
# weight decay, and one of Adam, for one parameter array, as functions that return the new
# parameter and state (the inputs stay as they were). Each is run for several steps, feeding
# back its own state, against minigrad.optim's SGD and Adam on the same gradients; a wrong
# trajectory is matched against the usual mistakes, run the same way, to name the one made.
# This section's imports are kept with it.
# =============================================================================================
from typing import NamedTuple  # noqa: E402

from minigrad import Tensor  # noqa: E402
from minigrad.optim import SGD, Adam  # noqa: E402
from .verdicts import CORRECT, WRONG, compare, relative_error  # noqa: E402

OPTIMIZER_TOLERANCE = 1e-10      # the same arithmetic in another order agrees to about 1e-15


def _gradients(rng, shape, steps, scale=1.0):
    return [scale * rng.standard_normal(shape) for _ in range(steps)]


def sgd_cases(seed=34):
    """{case: settings}: the start ``p``, one gradient per step, each step's ``lr``, and the
    momentum and weight decay (the step's settings are passed in this order)."""
    rng = numpy.random.default_rng(seed)
    return {
        "W (3, 4), lr 0.1, momentum 0.9, weight decay 0.01, 5 steps": dict(
            p=rng.standard_normal((3, 4)), grads=_gradients(rng, (3, 4), 5), lrs=[0.1] * 5,
            momentum=0.9, weight_decay=0.01),
        "W (2, 3), momentum 0.9, weight decay 0.05, lr 0.1 for 3 steps then 0.02 for 3": dict(
            p=rng.standard_normal((2, 3)), grads=_gradients(rng, (2, 3), 6), lrs=[0.1] * 3 + [0.02] * 3,
            momentum=0.9, weight_decay=0.05),
        "W (4, 3, 2, 2) (a convolution's), lr 0.05, momentum 0.5, weight decay 0.1, 4 steps": dict(
            p=rng.standard_normal((4, 3, 2, 2)), grads=_gradients(rng, (4, 3, 2, 2), 4), lrs=[0.05] * 4,
            momentum=0.5, weight_decay=0.1),
    }


def adam_cases(seed=35):
    """{case: settings}: the start ``p``, one gradient per step, each step's ``lr``, betas and eps."""
    rng = numpy.random.default_rng(seed)
    return {
        "W (3, 4), lr 0.01, betas (0.9, 0.999), eps 1e-8, 6 steps": dict(
            p=rng.standard_normal((3, 4)), grads=_gradients(rng, (3, 4), 6), lrs=[0.01] * 6,
            beta1=0.9, beta2=0.999, eps=1e-8),
        "b (5,), lr 0.001, betas (0.5, 0.9), eps 1e-8, 5 steps": dict(
            p=rng.standard_normal(5), grads=_gradients(rng, 5, 5), lrs=[0.001] * 5,
            beta1=0.5, beta2=0.9, eps=1e-8),
        "W (2, 5) with gradients near 1e-4 (where eps matters), lr 0.01, eps 1e-8, 4 steps": dict(
            p=rng.standard_normal((2, 5)), grads=_gradients(rng, (2, 5), 4, scale=1e-4), lrs=[0.01] * 4,
            beta1=0.9, beta2=0.999, eps=1e-8),
    }


def _package_trajectory(optimizer, state_names, case):
    """minigrad.optim's (p, *state) after each step of ``case`` (the reference)."""
    param = Tensor(case["p"].copy(), requires_grad=True)
    opt = optimizer([param])
    trajectory = []
    for g, lr in zip(case["grads"], case["lrs"]):
        param.grad = g.copy()
        opt.lr = lr
        opt.step()
        trajectory.append((param.data.copy(), *(opt.state[name][0].copy() for name in state_names)))
    return trajectory


# --- the two steps, right, and their usual mistakes (the checker's own, to name a mistake) ---
def _sgd_right(p, g, velocity, lr, momentum, weight_decay):
    g = g + weight_decay * p
    velocity = momentum * velocity + g
    return p - lr * velocity, velocity


SGD_MISTAKES = {
    "the weight decay is added after the momentum (p -= lr * (v + wd * p), with v made of the "
    "gradient alone). Weight decay belongs to the gradient: g = grad + wd * p first, then "
    "v = momentum * v + g, then p -= lr * v":
        lambda p, g, v, lr, mu, wd: (p - lr * (mu * v + g + wd * p), mu * v + g),
    "the momentum is applied to the step, not the gradient: your velocity holds steps, lr * g "
    "(v = momentum * v + lr * g, p -= v, Caffe's form). It agrees with v = momentum * v + g, "
    "p -= lr * v (PyTorch's, and this course's) only while lr stays the same":
        lambda p, g, v, lr, mu, wd: (p - (mu * v + lr * (g + wd * p)), mu * v + lr * (g + wd * p)),
    "the weight decay is missing: the gradient of the penalty wd/2 * |p|^2 is wd * p, added to "
    "the gradient before the momentum":
        lambda p, g, v, lr, mu, wd: (p - lr * (mu * v + g), mu * v + g),
    "the weight decay has the wrong sign: it pulls the weights towards 0, g = grad + wd * p":
        lambda p, g, v, lr, mu, wd: (p - lr * (mu * v + g - wd * p), mu * v + g - wd * p),
    "the momentum is missing: the velocity must remember the past, v = momentum * v + g":
        lambda p, g, v, lr, mu, wd: (p - lr * (g + wd * p), g + wd * p),
}


def _adam_right(p, g, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return p - lr * m_hat / (numpy.sqrt(v_hat) + eps), m, v


def _adam_variant(step):
    """An Adam with the right moments and a wrong ``step(m, v, t, beta1, beta2, eps)``."""
    def adam(p, g, m, v, t, lr, beta1, beta2, eps):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        return p - lr * step(m, v, t, beta1, beta2, eps), m, v
    return adam


ADAM_MISTAKES = {
    "there is no bias correction: m and v start at 0, so in the first steps they are too small "
    "by the factors 1 - beta1**t and 1 - beta2**t; divide by them (m_hat, v_hat)":
        _adam_variant(lambda m, v, t, b1, b2, eps: m / (numpy.sqrt(v) + eps)),
    "eps is inside the square root: the step is m_hat / (sqrt(v_hat) + eps); sqrt(v_hat + eps) "
    "shrinks the steps wherever the gradients are small":
        _adam_variant(lambda m, v, t, b1, b2, eps: (m / (1 - b1 ** t)) / numpy.sqrt(v / (1 - b2 ** t) + eps)),
    "the bias correction lacks the power t: divide by 1 - beta**t, t the step number (from 1)":
        _adam_variant(lambda m, v, t, b1, b2, eps: (m / (1 - b1)) / (numpy.sqrt(v / (1 - b2)) + eps)),
    "the square root is missing: the step divides by sqrt(v_hat), the root of the mean square":
        _adam_variant(lambda m, v, t, b1, b2, eps: (m / (1 - b1 ** t)) / (v / (1 - b2 ** t) + eps)),
}


# --- running a learner's step for several steps ---------------------------------------------------
class _Optimizer(NamedTuple):
    names: tuple         # what the step returns: ("p", "velocity") or ("p", "m", "v")
    settings: tuple      # the case's settings passed after lr, in order
    with_t: bool         # the step number t is passed before lr (Adam)
    rule: str            # the update, for a hint


SGD_STEP = _Optimizer(("p", "velocity"), ("momentum", "weight_decay"), False,
                      "g = grad + wd * p; v = momentum * v + g; p = p - lr * v.")
ADAM_STEP = _Optimizer(("p", "m", "v"), ("beta1", "beta2", "eps"), True,
                       "m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; m_hat = m / (1 - b1^t); "
                       "v_hat = v / (1 - b2^t); p = p - lr m_hat / (sqrt(v_hat) + eps).")


def _arguments(kind, case, step, p, g, state):
    """The step's arguments: p, g, the state, [t,] lr and the case's settings."""
    t = (step + 1,) if kind.with_t else ()
    return (p, g, *state, *t, case["lrs"][step], *(case[name] for name in kind.settings))


def _values(result):
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _steps(step_function, kind, case):
    """Run ``step_function`` for every step of ``case`` from zero state, feeding back what it
    returns; yield (p, *state) after each step, or a message saying what went wrong (then stop)."""
    p, state = case["p"].copy(), tuple(numpy.zeros_like(case["p"]) for _ in kind.names[1:])
    for step, g in enumerate(case["grads"]):
        arguments = _arguments(kind, case, step, p.copy(), g.copy(), [s.copy() for s in state])
        kept = [a.copy() if isinstance(a, numpy.ndarray) else a for a in arguments]
        try:
            with numpy.errstate(all="ignore"):      # a NaN or inf is reported in the verdict
                result = step_function(*arguments)
        except NotImplementedError:
            raise
        except Exception as error:
            yield f"at step {step + 1} it raised {type(error).__name__}: {error}"
            return
        problem = _changed(arguments, kept, kind) or _structure(result, kind, case["p"])
        if problem:
            yield f"at step {step + 1} {problem}"
            return
        p, *state = _values(result)
        yield (p, *state)


def _trajectory(step_function, kind, case):
    """The (p, *state) after each step, as long as the steps run without a problem."""
    return [result for result in _steps(step_function, kind, case) if not isinstance(result, str)]


def _changed(arguments, kept, kind):
    names = ("p", "g", *kind.names[1:])
    for name, now, before in zip(names, arguments, kept):
        if not numpy.array_equal(now, before, equal_nan=True):
            return (f"your step changed its input {name} in place: return new arrays and leave the "
                    f"inputs as they were (the caller keeps them).")
    return None


def _structure(result, kind, p):
    result = _values(result)
    if len(result) != len(kind.names):
        got = f"{len(result)} value" + "s" * (len(result) != 1)
        return f"it returned {got}, expected {len(kind.names)} ({', '.join(kind.names)})."
    for name, value in zip(kind.names, result):
        if not isinstance(value, numpy.ndarray):
            return f"{name} is {type(value).__name__}, expected a NumPy array like p."
        if value.shape != p.shape or value.dtype != p.dtype:
            return (f"{name} has shape {value.shape} and dtype {value.dtype}, expected p's: "
                    f"{p.shape}, {p.dtype}.")
    return None


def _same_trajectory(a, b, steps):
    return all(relative_error(x, y) <= 1e-9 for s in range(steps) for x, y in zip(a[s], b[s]))


def _check_optimizer(step_function, kind, cases, reference, mistakes):
    worst = 0.0
    for case_name, case in cases.items():
        expected = reference(case)                                 # before the learner runs
        got = []
        for step, (mine, right) in enumerate(zip(_steps(step_function, kind, case), expected)):
            if isinstance(mine, str):
                return WRONG, f"On {case_name}: {mine}"
            got.append(mine)
            for name, value, truth in zip(kind.names, mine, right):
                problem = compare(name, value, truth, OPTIMIZER_TOLERANCE)
                if problem:
                    mistake = _named_mistake(got, kind, case, mistakes, step + 1)
                    if mistake:             # the first difference, then the mistake that explains it
                        problem = f"{_first_difference(name, value, truth)} Your step: {mistake}."
                    else:
                        problem += " Hint: " + kind.rule
                    return WRONG, f"On {case_name}, after step {step + 1}: {problem}"
                worst = max(worst, relative_error(value, truth))
    return CORRECT, (f"Matches minigrad.optim over every step of {len(cases)} runs; largest relative "
                     f"error {worst:.1e}.")


def _named_mistake(got, kind, case, mistakes, steps):
    """The usual mistake that gives the learner's first ``steps`` results, if one does."""
    for mistake, variant in mistakes.items():
        theirs = _trajectory(variant, kind, case)
        if len(theirs) >= steps and _same_trajectory(got, theirs, steps):
            return mistake
    return None


def _first_difference(name, got, expected):
    worst = numpy.unravel_index(numpy.argmax(numpy.abs(got - expected)), got.shape)
    where = f"[{', '.join(str(int(i)) for i in worst)}]" if worst else ""
    return f"{name}{where} is {float(got[worst]):+.6g}, expected {float(expected[worst]):+.6g}."


@registers("3.4", "SGD with momentum and weight decay", rule=SGD_STEP.rule)
def check_sgd_step(sgd_step):
    reference = lambda case: _package_trajectory(
        lambda params: SGD(params, lr=case["lrs"][0], momentum=case["momentum"],
                           weight_decay=case["weight_decay"]), ("velocity",), case)
    return _check_optimizer(sgd_step, SGD_STEP, sgd_cases(), reference, SGD_MISTAKES)


@registers("3.5", "Adam", rule=ADAM_STEP.rule)
def check_adam_step(adam_step):
    reference = lambda case: _package_trajectory(
        lambda params: Adam(params, lr=case["lrs"][0], betas=(case["beta1"], case["beta2"]), eps=case["eps"]),
        ("m", "v"), case)
    return _check_optimizer(adam_step, ADAM_STEP, adam_cases(), reference, ADAM_MISTAKES)
