"""Reductions over axes: sum, mean, max.

The backward of a reduction broadcasts the upstream gradient back over the
reduced axes; ``_expand`` re-inserts those axes so that broadcasting lines up.
"""
import operator

from ..backend import get_array_module


def _normalize_axes(axis, ndim, name):
    """The reduced axes as sorted non-negative ints; ``name`` is the op, for the error."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (operator.index(axis),)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}: axis {a} is out of range for an array with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


def _expand(gy, axes, keepdims):
    """Give ``gy`` back the reduced axes as size-1 axes (a no-op if keepdims)."""
    xp = get_array_module(gy)
    return gy if keepdims else xp.expand_dims(gy, axes)


def sum_forward(x, axis=None, keepdims=False):
    axes = _normalize_axes(axis, x.ndim, "sum")
    return x.sum(axis=axes, keepdims=keepdims), (x.shape, axes, keepdims)


def sum_backward(gy, cache):
    shape, axes, keepdims = cache
    xp = get_array_module(gy)
    return (xp.broadcast_to(_expand(gy, axes, keepdims), shape).copy(),)


def mean_forward(x, axis=None, keepdims=False):
    axes = _normalize_axes(axis, x.ndim, "mean")
    count = 1
    for a in axes:
        count *= x.shape[a]
    return x.mean(axis=axes, keepdims=keepdims), (x.shape, axes, keepdims, count)


def mean_backward(gy, cache):
    shape, axes, keepdims, count = cache
    xp = get_array_module(gy)
    return (xp.broadcast_to(_expand(gy, axes, keepdims) / count, shape).copy(),)


def max_forward(x, axis=None, keepdims=False):
    axes = _normalize_axes(axis, x.ndim, "max")
    y = x.max(axis=axes, keepdims=True)
    # Ties share the gradient equally so that the sum of gradients is preserved.
    # (Built in x's dtype: bool / int count would make a float64 array the size of x.)
    winners = (x == y).astype(x.dtype)
    winners /= winners.sum(axis=axes, keepdims=True)
    out = y if keepdims else y.squeeze(axis=axes)
    return out, (winners, axes, keepdims)


def max_backward(gy, cache):
    winners, axes, keepdims = cache
    return (_expand(gy, axes, keepdims) * winners,)
