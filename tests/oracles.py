"""Slow, plainly written reference answers ("oracles") for the op tests.

An oracle computes its answer one element at a time, with Python floats, the
``math`` module and index arithmetic written out, so that it shares no code with
the NumPy routine the op under test calls: a test that compared ``F.add`` with
``numpy.add`` would pass whatever ``numpy.add`` did. NumPy only holds the values
here (``numpy.empty``, reading and writing single elements) and lists indexes
(``numpy.ndindex`` walks an array's indexes in row-major order, last axis fastest).

Every oracle takes NumPy arrays and returns a new float64 NumPy array.
"""
import math

import numpy


# --- broadcasting, written out ---------------------------------------------------------
def broadcast_shape(*shapes):
    """The shape that broadcasting gives ``shapes``: right-align them (missing leading
    axes count as size 1); on each axis the sizes must agree or be 1."""
    ndim = max(len(shape) for shape in shapes)
    padded = [(1,) * (ndim - len(shape)) + tuple(shape) for shape in shapes]
    result = []
    for axis in range(ndim):
        sizes = {shape[axis] for shape in padded} - {1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def source_index(out_index, shape):
    """The element of an input of ``shape`` that broadcasting reads for output element
    ``out_index``: the leading axes the input lacks are dropped, a size-1 axis reads 0."""
    own_axes = out_index[len(out_index) - len(shape):]
    return tuple(0 if size == 1 else i for i, size in zip(own_axes, shape))


def gather(x, shape, source):
    """An array of ``shape`` whose element at each index ``i`` is ``x[source(i)]``."""
    out = numpy.empty(shape)
    for index in numpy.ndindex(*shape):
        out[index] = x[source(index)]
    return out


# --- elementwise math ------------------------------------------------------------------
def elementwise(fn, *inputs):
    """``fn`` of Python floats, applied at every index of the broadcast shape of ``inputs``
    (arrays or Python numbers; a number is a 0-d array)."""
    arrays = [numpy.asarray(a, dtype=numpy.float64) for a in inputs]
    shape = broadcast_shape(*(a.shape for a in arrays))
    out = numpy.empty(shape)
    for index in numpy.ndindex(*shape):
        out[index] = fn(*(float(a[source_index(index, a.shape)]) for a in arrays))
    return out


def sigmoid(x):
    """1 / (1 + e^-x) for a Python float. ``math.exp`` overflows (an error, not a wrong
    value) only for x < -709, far outside the tests' values."""
    return 1.0 / (1.0 + math.exp(-x))


def relu(x):
    """max(x, 0) for a Python float."""
    return max(x, 0.0)


# --- reductions ------------------------------------------------------------------------
def reduced_axes(axis, ndim):
    """The set of axes a reduction over ``axis`` (None, an int or a tuple; negative
    counts from the end) removes from an array with ``ndim`` dimensions."""
    if axis is None:
        return set(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return {a + ndim if a < 0 else a for a in axes}


def reduction(combine, x, axis=None, keepdims=False):
    """Reduce ``x`` over ``axis`` with ``combine`` (a function of a list of floats): each
    output element combines the input elements whose coordinates on the kept axes are
    its own. ``keepdims`` leaves the reduced axes in place with size 1."""
    reduced = reduced_axes(axis, x.ndim)
    kept = [d for d in range(x.ndim) if d not in reduced]
    if keepdims:
        shape = tuple(1 if d in reduced else size for d, size in enumerate(x.shape))
    else:
        shape = tuple(x.shape[d] for d in kept)
    out = numpy.empty(shape)
    for out_index in numpy.ndindex(*shape):
        position = [out_index[d] for d in kept] if keepdims else list(out_index)
        values = [float(x[i]) for i in numpy.ndindex(*x.shape) if [i[d] for d in kept] == position]
        out[out_index] = combine(values)
    return out


def mean(values):
    """The mean of a list of floats: their exact sum (``math.fsum``) over their count."""
    return math.fsum(values) / len(values)


# --- matrix product --------------------------------------------------------------------
def matmul(a, b):
    """``a @ b`` by the rules numpy.matmul documents, each element a ``math.fsum`` of
    products (each product is rounded to a float, fsum then adds them exactly).
    A 1-D ``a`` becomes a row (a 1 prepended to its shape), a 1-D ``b`` a column (a 1
    appended); the added axis is removed from the result. The axes before the last
    two are batch axes and broadcast like elementwise inputs."""
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
    rows, inner, columns = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    batch = broadcast_shape(a2.shape[:-2], b2.shape[:-2])
    out = numpy.empty(batch + (rows, columns))
    for index in numpy.ndindex(*out.shape):
        batch_index, i, j = index[:-2], index[-2], index[-1]
        a_batch, b_batch = source_index(batch_index, a2.shape[:-2]), source_index(batch_index, b2.shape[:-2])
        products = [float(a2[a_batch + (i, k)]) * float(b2[b_batch + (k, j)]) for k in range(inner)]
        out[index] = math.fsum(products)
    shape = batch + ((rows,) if a.ndim > 1 else ()) + ((columns,) if b.ndim > 1 else ())
    return out.reshape(shape)


# --- ops that move values --------------------------------------------------------------
def row_major(x):
    """The values of ``x`` as a flat Python list, in row-major order (last axis fastest)."""
    return [float(x[i]) for i in numpy.ndindex(*x.shape)]


def reshape(x, shape):
    """``x``'s row-major list of values poured, in row-major order, into ``shape``
    (whose one -1, if any, stands for whatever size makes the counts agree)."""
    known = math.prod(size for size in shape if size != -1)
    shape = tuple(x.size // known if size == -1 else size for size in shape)
    values = iter(row_major(x))
    out = numpy.empty(shape)
    for index in numpy.ndindex(*shape):
        out[index] = next(values)
    return out


def transpose(x, axes=None):
    """``x`` with its axes permuted: axis k of the result is axis ``axes[k]`` of ``x``
    (None reverses them), so ``out[i] == x[j]`` where ``j[axes[k]] = i[k]``."""
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = [a % x.ndim for a in axes]

    def source(index):
        permuted = [0] * x.ndim
        for k, a in enumerate(axes):
            permuted[a] = index[k]
        return tuple(permuted)

    return gather(x, tuple(x.shape[a] for a in axes), source)


def concat(arrays, axis=0):
    """``arrays`` joined along ``axis``: position p on that axis comes from input k at
    position p - offset_k, where offset_k is the total size of the inputs before k."""
    axis = axis % arrays[0].ndim
    sizes = [a.shape[axis] for a in arrays]
    shape = arrays[0].shape[:axis] + (sum(sizes),) + arrays[0].shape[axis + 1:]
    out = numpy.empty(shape)
    for index in numpy.ndindex(*shape):
        k, position = 0, index[axis]
        while position >= sizes[k]:        # walk past the inputs before this position
            position -= sizes[k]
            k += 1
        out[index] = arrays[k][index[:axis] + (position,) + index[axis + 1:]]
    return out


def split(x, sizes, axis=0):
    """``x`` cut along ``axis`` into pieces of ``sizes`` (concat's inverse): piece k at
    position p on that axis is ``x`` at position offset_k + p."""
    axis = axis % x.ndim
    pieces, offset = [], 0
    for size in sizes:
        shape = x.shape[:axis] + (size,) + x.shape[axis + 1:]
        # gather runs at once, while offset is this piece's start
        pieces.append(gather(x, shape, lambda i: i[:axis] + (offset + i[axis],) + i[axis + 1:]))
        offset += size
    return pieces
