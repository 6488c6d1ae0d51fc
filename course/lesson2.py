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

from .cases import backward_cases, forward_cases
from .check import registers
from .verdicts import relative_error


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
_V.flags.writeable = False


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


EPS = 1e-4            # large enough that forward differences' O(eps) error shows
LARGE_EPS = 0.1       # the cube's case: central differences give 3x**2 + eps**2 exactly
TOLERANCE_2_1 = 1e-7  # central differences at eps 1e-4 land near 1e-9 on these functions
CUBE = f"f(x) = sum(x**3), x (4,), eps {LARGE_EPS:g}"

# case name -> (f, the expected answer as a function of (x, eps), x's shape, eps): the exact
# gradient, except for the cube, where central differences at that eps are exact and differ
# from the gradient by eps**2 (a hard-coded step, or forward differences, give another value)
FUNCTIONS = {
    "f(x) = sum(x**2), x (3,)": (lambda x: float(numpy.sum(x ** 2)), lambda x, eps: 2 * x, (3,), EPS),
    "f(x) = sum(sin(x) * x), x (2, 3)": (lambda x: float(numpy.sum(numpy.sin(x) * x)),
                                         lambda x, eps: numpy.sin(x) + x * numpy.cos(x), (2, 3), EPS),
    "f(x) = log(sum(exp(x))), x (5,)": (_log_sum_exp, lambda x, eps: _softmax(x), (5,), EPS),
    "f(W) = sum(tanh(W @ v)), W (3, 4)": (_tanh_layer, lambda W, eps: _tanh_layer_gradient(W), (3, 4), EPS),
    CUBE: (lambda x: float(numpy.sum(x ** 3)), lambda x, eps: 3 * x ** 2 + eps ** 2, (4,), LARGE_EPS),
}


def numerical_gradient_cases(seed=21):
    rng = numpy.random.default_rng(seed)
    return {case: {"f": f, "x": rng.uniform(-1.5, 1.5, shape), "eps": eps}
            for case, (f, _, shape, eps) in FUNCTIONS.items()}


def _expected_numerical_gradient(f, x, eps):
    expected = next(answer for function, answer, _, _ in FUNCTIONS.values() if function is f)
    return expected(x, eps)


CENTRAL = ("for each element i in turn (all of x's axes: numpy.ndindex(x.shape)), evaluate f with only "
           "x[i] moved by +eps and by -eps, and divide the difference by 2 * eps.")


def _numerical_gradient_hint(case, name, got, expected):
    if got.shape != expected.shape:
        return (f"Hint: the gradient has one entry per element of x, in x's shape {expected.shape} "
                f"(numpy.zeros(x.shape), filled element by element).")
    if case == CUBE:
        x = numerical_gradient_cases()[CUBE]["x"]
        if numpy.allclose(got, 3 * x ** 2 + 3 * x * LARGE_EPS + LARGE_EPS ** 2, rtol=1e-6, atol=0):
            return ("Hint: those are forward differences, (f(x + eps) - f(x)) / eps: for x**3 they give "
                    "3x**2 + 3x eps + eps**2; central ones give 3x**2 + eps**2.")
        if numpy.allclose(got, 3 * x ** 2, rtol=1e-4, atol=0):
            return (f"Hint: that is the exact derivative 3x**2, which central differences at eps = "
                    f"{LARGE_EPS:g} do not give (they give 3x**2 + eps**2): use the step eps you are "
                    f"given, not one of your own.")
    error = relative_error(got, expected)
    if 0 < error < 1e-3:
        return (f"Hint: close, but only to {error:.0e}. Forward differences (f(x + eps) - f(x)) / eps "
                f"are off by about eps * f''/2 (eps is {EPS:g} here); central differences "
                f"(f(x + eps) - f(x - eps)) / (2 * eps) by about eps**2 * f'''/6.")
    return ""


@registers("2.1", "numerical gradient (central differences)", rule=CENTRAL)
def check_numerical_gradient(numerical_gradient):
    # x is handed over writable: moving x[i] and putting it back is the usual way. A changed x
    # is a wrong answer (f is evaluated at x afterwards by everyone who calls the function).
    return forward_cases(numerical_gradient, _expected_numerical_gradient, numerical_gradient_cases(),
                         output_names=("the gradient",), tolerance=TOLERANCE_2_1,
                         hints=_numerical_gradient_hint, writable=("x",), changed_hint=(
                             "Hint: keep the original value and assign it back after evaluating f at "
                             "x + eps and x - eps (x + eps - eps is not always x in floating point)."))


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


@registers("2.2", "squared error backward (fix the sign)",
           rule="y = d**2 with d = pred - target: dy/dpred = 2d and dy/dtarget = 2d * dd/dtarget = -2d.")
def check_squared_error(squared_error_backward):
    return backward_cases(squared_error_forward, squared_error_backward, squared_error_cases())


@registers("2.3", "scale and shift backward (fix the reduction)",
           rule="gamma and beta are used at every position of every example, so their gradients are "
                "sums over ALL the leading axes of x (axis=tuple(range(x.ndim - 1))), not only the first.")
def check_scale_shift(scale_shift_backward):
    return backward_cases(scale_shift_forward, scale_shift_backward, scale_shift_cases())


@registers("2.4", "midpoints backward (fix the index)",
           rule="y[..., i] is made of x[..., i] AND x[..., i + 1]: each sends half of gy[..., i] back to "
                "both (x[..., 0] and x[..., -1] get one half only).")
def check_midpoints(midpoints_backward):
    return backward_cases(midpoints_forward, midpoints_backward, midpoints_cases())
