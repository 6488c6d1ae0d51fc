"""Elementwise math with NumPy broadcasting.

A broadcast input receives the sum of the upstream gradient over every axis it
was stretched along (``unbroadcast``): that is the chain rule for a copy.
"""
import math

import numpy

from .. import parallel
from ..backend import DEFAULT_DTYPE, get_array_module


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def add_forward(a, b):
    return a + b, (a.shape, b.shape)


def add_backward(gy, shapes):
    a_shape, b_shape = shapes
    return unbroadcast(gy, a_shape), unbroadcast(gy, b_shape)


def sub_forward(a, b):
    return a - b, (a.shape, b.shape)


def sub_backward(gy, shapes):
    a_shape, b_shape = shapes
    return unbroadcast(gy, a_shape), unbroadcast(-gy, b_shape)


def mul_forward(a, b):
    return a * b, (a, b)


def mul_backward(gy, cache):
    a, b = cache
    return unbroadcast(gy * b, a.shape), unbroadcast(gy * a, b.shape)


def div_forward(a, b):
    """a / b, true division: integer or boolean operands give the default float dtype
    (float32, as in PyTorch and as a Python float gets), not NumPy's float64."""
    if a.dtype.kind != "f" and b.dtype.kind != "f":
        a, b = a.astype(DEFAULT_DTYPE), b.astype(DEFAULT_DTYPE)
    y = a / b
    return y, (b, y, a.shape)


def div_backward(gy, cache):
    # d(a/b)/da = 1/b ;  d(a/b)/db = -a/b^2 = -(a/b)/b, computed as -gy * (y / b) so that
    # a = 0 gives 0 even when 1/b overflows (gy/b * a would give inf * 0 = NaN)
    b, y, a_shape = cache
    return unbroadcast(gy / b, a_shape), unbroadcast(-gy * (y / b), b.shape)


def neg_forward(x):
    return -x, None


def neg_backward(gy, cache):
    return (-gy,)


def pow_forward(x, exponent):
    """x ** exponent for a constant (Python number) exponent; the result has x's dtype
    (NumPy would turn a boolean x into int8)."""
    return (x ** exponent).astype(x.dtype, copy=False), (x, exponent)


def pow_backward(gy, cache):
    x, exponent = cache
    if exponent == 0:                  # x**0 is constant; 0 * x**-1 would be nan at x = 0
        return (get_array_module(gy).zeros_like(gy),)
    return (gy * exponent * x ** (exponent - 1),)


def rpow_forward(x, base):
    """base ** x for a constant (Python number) base; the result has x's dtype."""
    xp = get_array_module(x)
    y = (xp.asarray(base, dtype=x.dtype) ** x).astype(x.dtype, copy=False)
    return y, (x, y, base)


def rpow_backward(gy, cache):
    # d(b^x)/dx = b^x ln b = y ln b. For b = 0, y ln b is -inf where x < 0 (y = inf) and is
    # taken as 0 where x >= 0 (y is the constant 0 or 1 there), as PyTorch does; b < 0: NaN.
    x, y, base = cache
    if base > 0:
        return (gy * (y * math.log(base)),)
    xp = get_array_module(gy)
    if base == 0:
        local = xp.zeros_like(gy)              # in gy's dtype: no float64 detour
        local[x < 0] = -math.inf
        return (gy * local,)
    return (gy * math.nan,)


def exp_forward(x):
    xp = get_array_module(x)
    y = xp.exp(x)
    return y, y


def exp_backward(gy, y):
    return (gy * y,)


def log_forward(x):
    xp = get_array_module(x)
    return xp.log(x), x


def log_backward(gy, x):
    return (gy / x,)


def tanh_forward(x):
    xp = get_array_module(x)
    y = xp.tanh(x)
    return y, y


def tanh_backward(gy, y):
    return (gy * (1 - y * y),)


def sigmoid_forward(x):
    """sigmoid(x) = 1 / (1 + e^-x), computed through e = e^-|x| (never overflows):

        x >= 0:  1 / (1 + e)          x < 0:  e / (1 + e)   (= e^x / (1 + e^x))

    Neither form subtracts nearly equal numbers, so the relative error stays near
    machine epsilon for all x (0.5 * (1 + tanh(x/2)) gave 0 for x < -17 in float32).
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    y = xp.where(x >= 0, 1, e) / (1 + e)
    return y, e


def sigmoid_backward(gy, e):
    # sigmoid' = y (1 - y) = e / (1 + e)^2 on both sides, with e = e^-|x|: no 1 - y cancellation
    return (gy * (e / ((1 + e) * (1 + e))),)


def relu_forward(x):
    """max(x, 0). NaN stays NaN and -inf gives 0 (x * (x > 0) would give -inf * 0 = NaN).
    Split over the threads (``minigrad.parallel``) in blocks of x's memory.

    The cache is the output itself, which the graph keeps anyway: y > 0 exactly where
    x > 0, and y is NaN where x is, so the backward reads its mask from y and the forward
    saves nothing of its own."""
    xp = get_array_module(x)
    y = xp.empty_like(x)
    parallel.for_chunks_of("relu", lambda x, y: xp.maximum(x, 0, out=y), x, y, axis=parallel.outermost_axis(x))
    return y, y


def relu_backward(gy, y):
    """gy where the output y is not <= 0 (y > 0, and NaN: as in PyTorch), +0.0 elsewhere,
    whatever gy is there (an inf or NaN gradient does not leak through a closed ReLU)."""
    xp = get_array_module(gy)
    gx = xp.empty_like(gy)
    parallel.for_chunks_of("relu backward", _pass_where_open, gy, y, gx, axis=parallel.outermost_axis(gy))
    return (gx,)


def _pass_where_open(gy, y, gx):
    """gx = where(~(y <= 0), gy, 0), bit for bit, in three passes without a branch per element
    (NumPy's ``where`` branches, and on a mask as random as ReLU's it runs about 6x slower):
    the mask is made of whole words, all ones where the gradient passes, zeros elsewhere, and
    gy's bits ANDed with it are gy itself or +0.0."""
    xp = get_array_module(gy)
    mask = gx.view(f"u{gx.itemsize}")              # gx's memory, seen as unsigned words
    xp.less_equal(y, 0, out=mask)                  # 1 where closed, 0 where open
    mask -= 1                                      # 0 where closed, all ones where open
    xp.bitwise_and(mask, gy.view(mask.dtype), out=mask)


# --- input checks: name the op, what it expected and what it got ------------------
def check_broadcastable(name):
    """The check of binary op ``name``: its two shapes must broadcast together."""
    def check(a, b):
        try:
            numpy.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return check


def check_subtractable(a, b):
    """``sub``'s check: shapes that broadcast, and not two booleans (True - True is not a bool)."""
    check_broadcastable("sub")(a, b)
    if a.dtype.kind == "b" and b.dtype.kind == "b":
        raise TypeError("sub: subtracting two boolean arrays is not defined; convert one with "
                        ".astype(...) first")


def check_negatable(x):
    if x.dtype.kind == "b":
        raise TypeError("neg: negating a boolean array is not defined; convert it with .astype(...) first")


def check_pow(x, exponent):
    if x.dtype.kind in "iu" and exponent < 0:
        raise ValueError(f"pow: an integer array to a negative power ({exponent}) is not an integer; "
                         f"convert it with .astype(...) first")


def check_rpow(x, base):
    if x.dtype.kind in "iu" and x.size and int(x.min()) < 0:
        raise ValueError(f"rpow: {base} to a negative integer power is not an integer; convert the "
                         f"exponents with .astype(...) first")


def check_float(name):
    """The check of op ``name``, which is defined for floating-point input only."""
    def check(x, **params):
        if x.dtype.kind != "f":
            raise ValueError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
    return check
