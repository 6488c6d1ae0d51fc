"""Lesson 1's exercises: the backward of mul, div, pow, exp and a broadcasting add.

Each forward below returns ``(out, cache)`` exactly as the ops in ``minigrad.ops``
do; the learner writes the matching ``backward(gy, cache)``, returning one
gradient per input, and the checker compares it with central differences.
"""
import numpy

from .cases import backward_cases
from .check import registers


def mul_forward(a, b):
    return a * b, (a, b)


def div_forward(a, b):
    return a / b, (a, b)


def cube_forward(x):
    """x ** 3 (pow with the constant exponent 3): the cache holds x and the exponent."""
    return x ** 3, (x, 3)


def sqrt_forward(x):
    """x ** 0.5 for x > 0."""
    return x ** 0.5, (x, 0.5)


def exp_forward(x):
    y = numpy.exp(x)
    return y, y


def add_forward(a, b):
    """a + b with NumPy broadcasting: the cache holds both shapes."""
    return a + b, (a.shape, b.shape)


def _pair(seed, b_away_from_zero=False):
    rng = numpy.random.default_rng(seed)
    b = rng.standard_normal((3, 4))
    if b_away_from_zero:                       # a divisor near 0 would make the check meaningless
        b = rng.uniform(0.5, 2.0, (3, 4)) * rng.choice([-1, 1], (3, 4))
    return {"a (3, 4), b (3, 4)": {"a": rng.standard_normal((3, 4)), "b": b}}


@registers("1.1", "mul backward", rule="each input's gradient is gy times the OTHER input.")
def check_mul(mul_backward):
    return backward_cases(mul_forward, mul_backward, _pair(1))


@registers("1.2", "div backward", rule="d(a/b)/da = 1/b and d(a/b)/db = -a/b**2.")
def check_div(div_backward):
    return backward_cases(div_forward, div_backward, _pair(2, b_away_from_zero=True))


@registers("1.3", "pow backward", rule="d(x**p)/dx = p * x**(p - 1), with p from the cache.")
def check_pow(pow_backward):
    rng = numpy.random.default_rng(3)
    cases = {"x ** 3, x (2, 5)": {"x": rng.standard_normal((2, 5))},
             "x ** 0.5, x (2, 5) > 0": {"x": rng.uniform(0.5, 2.0, (2, 5))}}
    forwards = dict(zip(cases, (cube_forward, sqrt_forward)))
    return backward_cases(forwards, pow_backward, cases)


@registers("1.4", "exp backward", rule="exp is its own derivative, and the cache already holds exp(x).")
def check_exp(exp_backward):
    rng = numpy.random.default_rng(4)
    return backward_cases(exp_forward, exp_backward, {"exp(x), x (4, 3)": {"x": rng.standard_normal((4, 3))}})


@registers("1.5", "broadcasting add backward",
           rule="an input copied along an axis by broadcasting gets the SUM of the gradient along that "
                "axis. NumPy lines shapes up from the RIGHT: the axes the gradient has in front of the "
                "input's are summed away, and so are the input's size-1 axes that were stretched "
                "(keepdims=True).")
def check_add(add_backward):
    rng = numpy.random.default_rng(5)
    cases = {"a (3, 4) + b (3, 4)": {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal((3, 4))},
             "a (3, 4) + b (4,), b stretched over the rows": {"a": rng.standard_normal((3, 4)),
                                                              "b": rng.standard_normal(4)},
             "a (3, 1) + b (1, 4), both stretched": {"a": rng.standard_normal((3, 1)),
                                                     "b": rng.standard_normal((1, 4))},
             # a reduction that lines the shapes up from the left passes the three cases above
             "a (2, 3, 4) + b (4,), b stretched over two leading axes": {"a": rng.standard_normal((2, 3, 4)),
                                                                         "b": rng.standard_normal(4)},
             "a (3, 4) + b () (a scalar)": {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(())}}
    return backward_cases(add_forward, add_backward, cases)
