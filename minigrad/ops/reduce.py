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
    """The largest element over ``axis``; NaN is larger than everything (as in NumPy and
    PyTorch). Works on any real dtype; only a floating-point max has a gradient."""
    axes = _normalize_axes(axis, x.ndim, "max")
    y = x.max(axis=axes, keepdims=True)
    out = y if keepdims else y.squeeze(axis=axes)
    return out, (x, y, axes, keepdims)


def max_backward(gy, cache):
    """The gradient goes to the winners of each reduced slice, shared equally among ties
    (so the gradients still add up to gy); a slice that holds NaN has NaN as its max and its
    NaNs are the winners. This is PyTorch's rule for ``x.max()`` (and ``amax`` without NaN);
    ``x.max(dim)`` would give it all to the first winner instead."""
    x, y, axes, keepdims = cache
    xp = get_array_module(x)
    # A NaN element makes its slice's max NaN, so (x == y) | isnan(x) marks exactly the winners.
    winners = (x == y) | xp.isnan(x)
    count = winners.sum(axis=axes, keepdims=True).astype(gy.dtype)   # small: the size of y
    share = _expand(gy, axes, keepdims) / count
    return (xp.where(winners, share, 0).astype(gy.dtype, copy=False),)


def check_max(x, axis=None, keepdims=False):
    """An empty slice has no max: every reduced axis must have at least one element."""
    axes = _normalize_axes(axis, x.ndim, "max")
    empty = [a for a in axes if x.shape[a] == 0]
    if empty:
        raise ValueError(f"max: cannot reduce over axis {empty[0]} of length 0 (shape {x.shape}): "
                         f"an empty slice has no largest element")
