"""Ops that move values around without changing them: reshape, transpose,
indexing, concatenation and splitting. Their backward moves the gradient back."""
import numpy

from .. import parallel
from ..backend import get_array_module, scatter_add


def reshape_forward(x, shape):
    return x.reshape(shape), x.shape


def reshape_backward(gy, x_shape):
    return (gy.reshape(x_shape),)


def transpose_forward(x, axes=None):
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(a % x.ndim for a in axes)  # -1 -> last axis, so the inverse below is right
    return x.transpose(axes), axes


def transpose_backward(gy, axes):
    inverse = sorted(range(len(axes)), key=axes.__getitem__)
    return (gy.transpose(inverse),)


def getitem_forward(x, index):
    return x[index], (x.shape, index)


def getitem_backward(gy, cache):
    shape, index = cache
    xp = get_array_module(gy)
    gx = xp.zeros(shape, dtype=gy.dtype)
    if _is_basic(index):
        gx[index] = gy          # slices never name an element twice
    else:
        scatter_add(gx, index, gy)  # an integer array may repeat an element: accumulate
    return (gx,)


def getitem_place(cache):
    """(x's shape, index) when the index is basic: the gradient is then gy placed at index of
    zeros, which the engine may keep unmade (``minigrad.autograd.Op``); None otherwise."""
    shape, index = cache
    return (shape, index) if _is_basic(index) else None


def _is_basic(index):
    """True for indexes built only from ints, slices, None and Ellipsis."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice)) or p is None or p is Ellipsis for p in parts)


def concat_forward(*arrays, axis=0):
    """Join arrays along ``axis`` (the channel axis for an Inception module): the values of
    ``concatenate``, its copying split over the threads by ranges along ``axis``. The result
    is laid out in memory as the inputs are when they all agree (``_common_order``), else
    C-contiguous."""
    xp = get_array_module(*arrays)
    axis %= arrays[0].ndim
    sizes = [a.shape[axis] for a in arrays]
    starts = numpy.cumsum([0] + sizes[:-1]).tolist()
    shape = arrays[0].shape[:axis] + (sum(sizes),) + arrays[0].shape[axis + 1:]
    order = _common_order(arrays)
    out = xp.empty([shape[a] for a in order], dtype=xp.result_type(*arrays)).transpose(numpy.argsort(order))
    along = (slice(None),) * axis

    def copy_range(start, stop):          # out[start:stop] along axis, from the inputs it overlaps
        for a, a_start in zip(arrays, starts):
            low, high = max(start, a_start), min(stop, a_start + a.shape[axis])
            if low < high:
                out[along + (slice(low, high),)] = a[along + (slice(low - a_start, high - a_start),)]
    parallel.for_chunks("concat", shape[axis], copy_range, out.size, xp)
    return out, (sizes, axis)


def _common_order(arrays):
    """The order of axes, outermost in memory first, that every array lies in; the plain
    order (C-contiguous) when they differ. An Inception module's four branches hand out
    their outputs batch-last, (C, H, W, N) in memory (``kernels/vectorized.py``): joined in
    that layout, each branch is one block of the output (a plain copy, not a transpose),
    the next module's 1x1 convolutions read the result as their matrix with no copy, and in
    the backward each branch's gradient is a block of the joined one."""
    orders = {tuple(sorted(range(a.ndim), key=lambda axis: (-abs(a.strides[axis]), axis))) for a in arrays}
    return orders.pop() if len(orders) == 1 else tuple(range(arrays[0].ndim))


def concat_backward(gy, cache):
    """Each input's gradient is its slice of gy along ``axis``: a view, nothing is copied."""
    sizes, axis = cache
    index = [slice(None)] * gy.ndim
    grads, start = [], 0
    for size in sizes:
        index[axis] = slice(start, start + size)
        grads.append(gy[tuple(index)])
        start += size
    return tuple(grads)


# --- input checks: name the op, what it expected and what it got ------------------
def check_reshape(x, shape):
    known = [s for s in shape if s != -1]
    size = int(numpy.prod(known)) if known else 1
    free = len(shape) - len(known)
    if free > 1 or (free == 0 and size != x.size) or (free == 1 and (size == 0 or x.size % size)):
        raise ValueError(f"reshape: cannot reshape {x.shape} ({x.size} values) into {tuple(shape)}")


def check_concat(*arrays, axis=0):
    if not arrays:
        raise ValueError("concat: needs at least one input")
    first = arrays[0].shape
    if not -len(first) <= axis < len(first):
        raise ValueError(f"concat: axis {axis} is out of range for inputs with {len(first)} dimensions "
                         f"(input 0 has shape {first})")
    for i, a in enumerate(arrays[1:], start=1):
        if a.ndim != len(first):
            raise ValueError(f"concat: input {i} has {a.ndim} dimensions, input 0 has {len(first)}")
        for dim in range(len(first)):
            if dim != axis % len(first) and a.shape[dim] != first[dim]:
                raise ValueError(f"concat along axis {axis}: input {i} has shape {a.shape}, "
                                 f"input 0 has shape {first}; all other axes must match")
