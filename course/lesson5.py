"""Lesson 5's exercises: the backward of max pooling and of LRN, and dropout both ways.

The forwards the learner's backwards pair with, and their caches:

    max_pool_forward(x, kernel_size, stride, padding, ceil_mode) -> (y, (x, win))
    lrn_forward(x, size, alpha, beta, k) -> (y, (x, s, size, alpha, beta))

both from the reference kernel set (``minigrad.kernels.reference``); the dropout
exercise is checked against ``minigrad.ops.dropout``.
"""
import functools

import numpy

from minigrad.kernels import reference
from minigrad.ops import dropout as dropout_ops
from minigrad.geometry import window
from .cases import Refused, as_tuple, backward_cases, engine_gradients, forward_cases, join
from .check import registers
from .guard import hand_over
from .verdicts import CORRECT, RULE, WRONG


def max_pool_forward(x, kernel_size, stride, padding=0, ceil_mode=False):
    """x (N, C, H, W) -> (y (N, C, OH, OW), cache); cache = (x, win): the input itself and
    the ``Window`` (``minigrad.geometry``) of the pooling."""
    win = window(x.shape[2:], kernel_size, stride, padding, ceil_mode)
    return reference.max_pool2d_forward(x, win)


def lrn_forward(x, size, alpha, beta, k):
    """x (N, C, ...) -> (y, cache), across channels (``minigrad/ops/lrn.py``):
    s_c = k + alpha/size * sum over window(c) of x^2, y_c = x_c * s_c^-beta;
    cache = (x, s, size, alpha, beta), s of x's shape."""
    return reference.lrn_forward(x, size, alpha, beta, k)


def _pool_text(kernel, stride, padding, ceil_mode):
    parts = [f"{kernel}x{kernel} windows", f"stride {stride}"]
    if padding:
        parts.append(f"padding {padding}")
    if ceil_mode:
        parts.append("ceil mode")
    return ", ".join(parts)


# (x shape, kernel, stride, padding, ceil mode): overlapping windows, ceil mode (the last
# windows run past the edge), padding, and plain non-overlapping 2x2 windows
POOL_GEOMETRY = [((2, 2, 7, 7), 3, 2, 0, False),
                 ((1, 2, 8, 8), 3, 2, 0, True),
                 ((2, 1, 6, 6), 3, 2, 1, False),
                 ((1, 2, 4, 6), 2, 2, 0, False)]


def max_pool_cases(seed=51):
    """Random inputs (no ties: central differences are exact there), one with a shared winner,
    and the inputs full of ties, which are checked against the reference's routing."""
    rng = numpy.random.default_rng(seed)
    random, forwards, ties = {}, {}, {}
    for shape, kernel, stride, padding, ceil_mode in POOL_GEOMETRY:
        name = f"x {shape}, {_pool_text(kernel, stride, padding, ceil_mode)}"
        random[name] = {"x": rng.standard_normal(shape)}
        forwards[name] = functools.partial(max_pool_forward, kernel_size=kernel, stride=stride,
                                           padding=padding, ceil_mode=ceil_mode)
    shared = rng.standard_normal((1, 1, 5, 5))
    shared[0, 0, 2, 2] = 10.0
    name = "x (1, 1, 5, 5) whose largest value, at (2, 2), wins all four 3x3 stride-2 windows"
    random[name] = {"x": shared}
    forwards[name] = functools.partial(max_pool_forward, kernel_size=3, stride=2)
    for shape, kernel, stride, padding, ceil_mode, high in [((2, 2, 7, 7), 3, 2, 0, True, 3),
                                                            ((1, 2, 6, 6), 3, 2, 1, False, 2)]:
        x = rng.integers(0, high, shape).astype(numpy.float64)
        y, cache = max_pool_forward(x, kernel, stride, padding, ceil_mode)
        name = f"x {shape} of integers 0..{high - 1} (ties), {_pool_text(kernel, stride, padding, ceil_mode)}"
        ties[name] = {"gy": rng.standard_normal(y.shape), "cache": cache}
    return random, forwards, ties


MAX_POOL_RULE = ("each window sends its gy to the element that is its maximum (window (i, j) covers rows "
                 "i*SH - PH ... i*SH - PH + KH - 1, columns alike, clipped to the input: "
                 "win.input_region(i, j)); a pixel that wins several overlapping windows gets "
                 "the SUM of their gy (+=, not =).")
TIES_RULE = ("on a tie ONE element gets the window's whole gradient: the FIRST maximum in row-major order "
             "(np.argmax of the flattened window), not every tied element, not the last.")


def max_pool_hints(case, name, got, expected):
    return f"{RULE} {TIES_RULE if 'ties' in case else MAX_POOL_RULE}"


def both_correct(first, second, what_second_says):
    """Run two checks in turn: the first verdict that is not correct, else both messages."""
    status, message = first()
    if status != CORRECT:
        return status, message
    status, second_message = second()
    if status != CORRECT:
        return status, second_message
    return CORRECT, join(message, what_second_says(second_message))


@registers("5.1", "max-pool backward", rule=f"{MAX_POOL_RULE} And {TIES_RULE}")
def check_max_pool_backward(max_pool_backward):
    random, forwards, ties = max_pool_cases()
    return both_correct(
        lambda: backward_cases(forwards, max_pool_backward, random, hints=max_pool_hints),
        lambda: forward_cases(max_pool_backward, reference.max_pool2d_backward, ties,
                              output_names=("gx",), hints=max_pool_hints, gradients_of=("x",)),
        lambda text: f"On ties (no derivative there) it routes like the reference on all {len(ties)} cases.")


# (x shape, size, alpha, beta, k): a large alpha, so that the terms through s show
LRN_GEOMETRY = [((2, 7, 2, 3), 5, 2.0, 0.75, 1.0),
                ((2, 6, 3, 2), 4, 2.0, 0.75, 1.0),
                ((1, 3, 2, 2), 5, 1.5, 0.6, 2.0)]


def lrn_cases(seed=52):
    rng = numpy.random.default_rng(seed)
    cases, forwards = {}, {}
    for shape, size, alpha, beta, k in LRN_GEOMETRY:
        note = " (even: one more channel before c than after)" if size % 2 == 0 else \
            (f" (wider than the {shape[1]} channels)" if size > shape[1] else "")
        name = f"x {shape}, size {size}{note}, alpha {alpha:g}, beta {beta:g}, k {k:g}"
        cases[name] = {"x": rng.standard_normal(shape)}
        forwards[name] = functools.partial(lrn_forward, size=size, alpha=alpha, beta=beta, k=k)
    return cases, forwards


@registers("5.2", "LRN backward",
           rule="gx_j = gy_j s_j^-beta - (2 alpha beta / n) x_j * sum of gy_c x_c s_c^(-beta-1) over the "
                "channels c whose window holds j: c = j - (n-1)//2 ... j + n//2 (the mirrored window: for "
                "even n it differs from window(j)), clipped to 0 ... C-1.")
def check_lrn_backward(lrn_backward):
    cases, forwards = lrn_cases()
    return backward_cases(forwards, lrn_backward, cases)


DROPOUT_CASES = [((4, 5), 0.5, True), ((2, 3, 4, 4), 0.2, True), ((3, 4), 0.5, False)]


def dropout_cases(seed=53):
    rng = numpy.random.default_rng(seed)
    cases = {}
    for shape, p, training in DROPOUT_CASES:
        mode = "training, a given mask" if training else "evaluation (the mask is ignored)"
        cases[f"x {shape}, p {p}, {mode}"] = {
            "x": rng.standard_normal(shape), "p": p, "training": training,
            "mask": rng.random(shape) >= p, "gy": rng.standard_normal(shape)}
    return cases


DROPOUT_RULES = {
    "evaluation": "in evaluation mode dropout is the identity: y = x and gx = gy (the 1/(1 - p) while "
                  "training already keeps the expected value).",
    "y": "y = x * mask / (1 - p): keep where the mask is True and divide the kept values by 1 - p "
         "(inverted dropout), so that the expected value of y is x.",
    "gx": "the backward multiplies gy by the same mask / (1 - p) as the forward (keep it in the cache).",
}


def dropout_hints(case, name, got, expected):
    return f"{RULE} {DROPOUT_RULES['evaluation' if 'evaluation' in case else name]}"


def _forward_then_backward(forward, backward):
    """The pair as the engine runs it: the forward on (x, p, training, mask), then the backward on
    gy and the forward's own cache (handed over read-only: the engine keeps it for a second
    backward), its return read as the engine reads it. -> (y, gx)."""
    def both(x, p, training, mask, gy):
        returned = forward(x, p, training, mask)
        if not isinstance(returned, (tuple, list)) or len(returned) != 2:
            raise Refused(f"the forward returned {returned!r:.60}, expected a pair (y, cache)")
        y, cache = returned
        grads, problem = engine_gradients(backward(gy, hand_over(cache)), {"x": x})
        if problem:
            raise Refused(f"the backward {problem}")
        return y, grads[0]
    return both


@registers("5.3", "dropout forward and backward", rule=" ".join(DROPOUT_RULES.values()))
def check_dropout(pair):
    if callable(pair) or len(as_tuple(pair)) != 2:
        return WRONG, "Pass both functions: check.exercise(\"5.3\", (dropout_forward, dropout_backward))."
    forward, backward = pair
    ops_forward = lambda x, p, training, mask: dropout_ops.dropout_forward(x, p, training, mask=mask)
    return forward_cases(_forward_then_backward(forward, backward),
                         _forward_then_backward(ops_forward, dropout_ops.dropout_backward),
                         dropout_cases(), output_names=("y", "gx"), hints=dropout_hints)
