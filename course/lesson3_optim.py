"""Lesson 3's exercises 3.4 and 3.5: the optimizer. The learner writes one step of SGD with momentum and
weight decay, and one of Adam, for one parameter array, as functions that return the new
parameter and state (the inputs stay as they were). Each is run for several steps, feeding
back its own state, against minigrad.optim's SGD and Adam on the same gradients; a wrong
trajectory is matched against the usual mistakes, run the same way, to name the one made.
"""
from typing import NamedTuple

import numpy

from minigrad import Tensor
from minigrad.optim import SGD, Adam
from .check import registers
from .verdicts import CORRECT, WRONG, compare, relative_error


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
