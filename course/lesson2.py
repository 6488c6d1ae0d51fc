"""Lesson 2's exercises: central differences, and three backwards with a planted bug.

* 2.1: the learner's ``numerical_gradient(f, x, eps)`` (central differences) against
  the exact gradient of several functions, with ``eps = 1e-4`` so that forward
  differences (error of order eps) are told apart from central ones (order eps**2);
* 2.2-2.4: three small ops, each shipped here with a backward that has a planted bug
  (``*_backward_buggy``: a sign error, a missing broadcast reduction, an off-by-one
  index). The learner runs ``minigrad.gradcheck.gradcheck`` on each pair, finds the
  bug and writes the fixed backward, which is checked against central differences.

``concat_backward_swapped`` is a fourth bug, for the lesson's demonstration of why
the upstream gradient of a check is random: it swaps the gradients of two inputs of
the same shape, which a check with an upstream gradient of ones cannot see.
"""
import numpy

from .check import backward_cases, forward_cases, hint, registers
from .verdicts import WRONG, relative_error


# --- 2.2: a sign error ------------------------------------------------------------------
def squared_error_forward(pred, target):
    """(pred - target) ** 2, elementwise; the cache is the difference pred - target."""
    difference = pred - target
    return difference ** 2, difference


def squared_error_backward_buggy(gy, difference):
    g_pred = 2 * gy * difference
    g_target = 2 * gy * difference
    return g_pred, g_target


# --- 2.3: a missing broadcast reduction -------------------------------------------------
def scale_shift_forward(x, gamma, beta):
    """x * gamma + beta: x (..., C), gamma and beta (C,), one scale and shift per channel
    (the last step of batch normalization); the cache is (x, gamma)."""
    return x * gamma + beta, (x, gamma)


def scale_shift_backward_buggy(gy, cache):
    x, gamma = cache
    g_x = gy * gamma
    g_gamma = gy * x
    g_beta = gy.sum(axis=0)
    return g_x, g_gamma, g_beta


# --- 2.4: an off-by-one index -------------------------------------------------------------
def midpoints_forward(x):
    """The average of each pair of neighbours along the last axis (the trapezoid rule's
    midpoints): y[..., i] = (x[..., i] + x[..., i + 1]) / 2, one element shorter than x.
    The cache is x's shape."""
    return (x[..., :-1] + x[..., 1:]) / 2, x.shape


def midpoints_backward_buggy(gy, x_shape):
    g_x = numpy.zeros(x_shape)
    for i in range(x_shape[-1] - 1):       # y[..., i] = (x[..., i] + x[..., i + 1]) / 2
        g_x[..., i] += gy[..., i] / 2
        g_x[..., i] += gy[..., i] / 2
    return (g_x,)


# --- the demonstration of why the upstream gradient is random ---------------------------
def concat_backward_swapped(gy, cache):
    """The backward of ``minigrad.ops.shape.concat_forward`` with the pieces handed back in
    the wrong order: right shapes, wrong gradients, whenever two inputs have one shape."""
    sizes, axis = cache
    pieces = numpy.split(gy, numpy.cumsum(sizes)[:-1], axis=axis)
    return tuple(reversed(pieces))


# --- exercise 2.1: the numerical gradient ---------------------------------------------------
_V = numpy.array([0.5, -1.0, 2.0, 0.25])


def _tanh_layer(W):
    return float(numpy.sum(numpy.tanh(W @ _V)))


def _tanh_layer_gradient(W):
    return (1 - numpy.tanh(W @ _V) ** 2)[:, None] * _V[None, :]


def _log_sum_exp(x):
    m = x.max()
    return float(m + numpy.log(numpy.sum(numpy.exp(x - m))))


def _softmax(x):
    e = numpy.exp(x - x.max())
    return e / e.sum()


# case name -> (f, its exact gradient, the point x)
FUNCTIONS = {
    "f(x) = sum(x**2), x (3,)": (lambda x: float(numpy.sum(x ** 2)), lambda x: 2 * x, (3,)),
    "f(x) = sum(sin(x) * x), x (2, 3)": (lambda x: float(numpy.sum(numpy.sin(x) * x)),
                                         lambda x: numpy.sin(x) + x * numpy.cos(x), (2, 3)),
    "f(x) = log(sum(exp(x))), x (5,)": (_log_sum_exp, _softmax, (5,)),
    "f(W) = sum(tanh(W @ v)), W (3, 4)": (_tanh_layer, _tanh_layer_gradient, (3, 4)),
}
EPS = 1e-4            # large enough that forward differences' O(eps) error shows
TOLERANCE_2_1 = 1e-7  # central differences at eps 1e-4 land near 1e-9 on these functions


def numerical_gradient_cases(seed=21):
    rng = numpy.random.default_rng(seed)
    return {case: {"f": f, "x": rng.uniform(-1.5, 1.5, shape), "eps": EPS}
            for case, (f, _, shape) in FUNCTIONS.items()}


def _exact_gradient(f, x, eps):
    gradient = next(g for function, g, _ in FUNCTIONS.values() if function is f)
    return gradient(x)


def _numerical_gradient_hint(case, name, got, expected):
    error = relative_error(got.astype(float), expected)
    if 0 < error < 1e-3:
        return (f"Hint: close, but only to {error:.0e}. Forward differences (f(x + eps) - f(x)) / eps "
                f"are off by about eps * f''/2 (eps is {EPS:g} here); central differences "
                f"(f(x + eps) - f(x - eps)) / (2 * eps) by about eps**2 * f'''/6.")
    return ("Hint: for each element i in turn (all of x's axes: numpy.ndindex(x.shape)), evaluate f "
            "with only x[i] moved by +eps and by -eps, and divide the difference by 2 * eps.")


@registers("2.1", "numerical gradient (central differences)")
def check_numerical_gradient(numerical_gradient):
    cases = numerical_gradient_cases()
    # First: does the learner's function leave x as it found it? (f is evaluated at x
    # afterwards by everyone who calls it, so a changed x is a wrong answer too.)
    for case, inputs in cases.items():
        x = inputs["x"].copy()
        try:
            numerical_gradient(inputs["f"], x, inputs["eps"])
        except NotImplementedError:
            raise
        except Exception as error:
            return WRONG, f"On {case} it raised {type(error).__name__}: {error}"
        if not numpy.array_equal(x, inputs["x"]):
            where = tuple(int(i) for i in numpy.argwhere(x != inputs["x"])[0])
            return WRONG, (f"On {case}: your function changed x and did not put it back: afterwards "
                           f"x[{', '.join(map(str, where))}] is {float(x[where])!r}, it was {float(inputs['x'][where])!r}. "
                           f"Hint: keep the original value and assign it back after evaluating f at "
                           f"x + eps and x - eps (x + eps - eps is not always x in floating point).")
    return forward_cases(numerical_gradient, _exact_gradient, cases, output_names=("the gradient",),
                         tolerance=TOLERANCE_2_1, hints=_numerical_gradient_hint)


# --- exercises 2.2-2.4: the fixed backwards -------------------------------------------------
def squared_error_cases(seed=22):
    rng = numpy.random.default_rng(seed)
    return {"pred (3, 4), target (3, 4)": {"pred": rng.standard_normal((3, 4)),
                                           "target": rng.standard_normal((3, 4))}}


def scale_shift_cases(seed=23):
    rng = numpy.random.default_rng(seed)
    return {"x (4, 3), gamma (3,), beta (3,)": {"x": rng.standard_normal((4, 3)),
                                                "gamma": rng.standard_normal(3),
                                                "beta": rng.standard_normal(3)},
            "x (2, 5, 3) (a batch of sequences), gamma (3,), beta (3,)": {
                "x": rng.standard_normal((2, 5, 3)), "gamma": rng.standard_normal(3),
                "beta": rng.standard_normal(3)}}


def midpoints_cases(seed=24):
    rng = numpy.random.default_rng(seed)
    return {"x (6,)": {"x": rng.standard_normal(6)},
            "x (3, 5)": {"x": rng.standard_normal((3, 5))}}


@registers("2.2", "squared error backward (fix the sign)")
def check_squared_error(squared_error_backward):
    return backward_cases(squared_error_forward, squared_error_backward, squared_error_cases(),
                          hints=hint("y = d**2 with d = pred - target: dy/dpred = 2d and dy/dtarget = "
                                     "2d * dd/dtarget = -2d."))


@registers("2.3", "scale and shift backward (fix the reduction)")
def check_scale_shift(scale_shift_backward):
    return backward_cases(scale_shift_forward, scale_shift_backward, scale_shift_cases(),
                          hints=hint("gamma and beta are used at every position of every example, so "
                                     "their gradients are sums over ALL the leading axes of x "
                                     "(axis=tuple(range(x.ndim - 1))), not only the first."))


@registers("2.4", "midpoints backward (fix the index)")
def check_midpoints(midpoints_backward):
    return backward_cases(midpoints_forward, midpoints_backward, midpoints_cases(),
                          hints=hint("y[..., i] is made of x[..., i] AND x[..., i + 1]: each sends half "
                                     "of gy[..., i] back to both (x[..., 0] and x[..., -1] get one half "
                                     "only)."))
