"""Reductions, matrix products and the functions that move values around without changing
them (reshape, transpose, indexing, concatenation, devices, dtypes); the math is in
``minigrad/ops/``: ``reduce.py``, ``linalg.py``, ``shape.py`` and ``device.py``."""
import builtins

from ..autograd import Op
from ..ops import device, linalg, reduce, shape


# --- reductions ---------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):
    """Sum over ``axis``: out = sum_i x_i; each x_i gets the upstream gradient of its sum.

    Args:
        x (Tensor): the input.
        axis (int or tuple of ints, optional): the axes to sum over; None (default) means all.
        keepdims (bool): keep the summed axes, with size 1. Default: False.

    Shape:
        out: x's shape without the summed axes (with them as 1 if ``keepdims``).

    Returns:
        Tensor: the sums.

    Example:
        >>> F.sum(mg.tensor([[1.0, 2.0], [3.0, 4.0]]), axis=0)
        Tensor([4., 6.], dtype=float32)
    """
    return sum.op(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis``: out = (1/n) sum_i x_i; each x_i gets 1/n of its mean's gradient.

    Args:
        x (Tensor): the input.
        axis (int or tuple of ints, optional): the axes to average over; None (default)
            means all.
        keepdims (bool): keep the averaged axes, with size 1. Default: False.

    Shape:
        out: x's shape without the averaged axes (with them as 1 if ``keepdims``).

    Returns:
        Tensor: the means.

    Example:
        >>> x = mg.tensor([1.0, 2.0, 6.0], requires_grad=True)
        >>> F.mean(x).backward()
        >>> x.grad.round(4)
        array([0.3333, 0.3333, 0.3333], dtype=float32)
    """
    return mean.op(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    """Largest element over ``axis``; the gradient goes to the largest, shared among ties.

    NaN counts as larger than everything (as in NumPy and PyTorch's ``amax``); an empty
    axis has no largest element and is refused.

    Args:
        x (Tensor): the input.
        axis (int or tuple of ints, optional): the axes to reduce; None (default) means all.
        keepdims (bool): keep the reduced axes, with size 1. Default: False.

    Shape:
        out: x's shape without the reduced axes (with them as 1 if ``keepdims``).

    Returns:
        Tensor: the largest values.

    Example:
        >>> x = mg.tensor([[1.0, 5.0], [5.0, 2.0]], requires_grad=True)
        >>> F.max(x).backward()
        >>> x.grad
        array([[0. , 0.5],
               [0.5, 0. ]], dtype=float32)
    """
    return max.op(x, axis=axis, keepdims=keepdims)


# --- matrix products ------------------------------------------------------------------
def matmul(x, y):
    """Matrix product, as NumPy's ``@``: out = x @ y, so gx = g @ y^T and gy = x^T @ g.

    A 1-D x is a row, a 1-D y a column (and the added axis is dropped again); more than two
    axes are stacks of matrices, and the stacking axes broadcast.

    Args:
        x (Tensor): the left factor, (..., n, k) or (k,).
        y (Tensor): the right factor, (..., k, m) or (k,).

    Shape:
        x (..., n, k), y (..., k, m) -> out (..., n, m).

    Returns:
        Tensor: x @ y.

    Example:
        >>> F.matmul(mg.tensor([[1.0, 2.0]]), mg.tensor([[3.0], [4.0]]))
        Tensor([[11.]], dtype=float32)
    """
    return matmul.op(x, y)


# --- moving values around -------------------------------------------------------------
def reshape(x, shape):
    """The same values in another shape (row-major order, as NumPy's ``reshape``).

    Args:
        x (Tensor): the input.
        shape (tuple of ints): the new shape; one entry may be -1, worked out from the size.

    Shape:
        out: ``shape``, with as many elements as x.

    Returns:
        Tensor: x reshaped.

    Example:
        >>> F.reshape(mg.tensor([1.0, 2.0, 3.0, 4.0]), shape=(2, -1))
        Tensor([[1., 2.],
                [3., 4.]], dtype=float32)
    """
    return reshape.op(x, shape=shape)


def transpose(x, axes=None):
    """Permute the axes (as NumPy's ``transpose``); the gradient is permuted back.

    Args:
        x (Tensor): the input.
        axes (tuple of ints, optional): the new order of x's axes; None (default) reverses
            them.

    Shape:
        out's axis k is x's axis ``axes[k]``: (2, 3, 4) with axes (2, 0, 1) -> (4, 2, 3).

    Returns:
        Tensor: x with its axes permuted.

    Example:
        >>> F.transpose(mg.tensor([[1.0, 2.0, 3.0]]))
        Tensor([[1.],
                [2.],
                [3.]], dtype=float32)
    """
    return transpose.op(x, axes=axes)


def getitem(x, index):
    """``x[index]``, NumPy's indexing: slices, ints, None, Ellipsis and integer or boolean arrays.

    The gradient goes back to the elements picked; one picked twice by an integer array
    gets both gradients.

    Args:
        x (Tensor): the input.
        index: anything NumPy accepts as an index (arrays, not Tensors: ``x[t]`` unwraps them).

    Shape:
        out: the shape NumPy's ``x[index]`` has.

    Returns:
        Tensor: the picked elements.

    Example:
        >>> x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> F.getitem(x, index=numpy.array([0, 0, 2])).sum().backward()
        >>> x.grad
        array([2., 0., 1.], dtype=float32)
    """
    return getitem.op(x, index=index)


def concat(tensors, axis=0):
    """Join tensors along ``axis`` (the channels of an Inception module's four branches).

    Args:
        tensors (sequence of Tensors): at least one; all of one number of axes.
        axis (int): the axis to join along. Default: 0.

    Shape:
        every input has the same size on every axis but ``axis``; out's ``axis`` is the sum
        of theirs. Each input's gradient is its slice of the upstream gradient.

    Returns:
        Tensor: the inputs side by side.

    Example:
        >>> F.concat([mg.tensor([[1.0]]), mg.tensor([[2.0, 3.0]])], axis=1)
        Tensor([[1., 2., 3.]], dtype=float32)
    """
    return concat.op(*tensors, axis=axis)


def split(x, sizes, axis=0):
    """Cut x along ``axis`` into pieces of the given sizes (the inverse of ``concat``).

    Args:
        x (Tensor): the input.
        sizes (sequence of ints): the pieces' sizes, which add up to ``x.shape[axis]``.
        axis (int): the axis to cut. Default: 0.

    Shape:
        piece k has x's shape with ``sizes[k]`` on ``axis``.

    Returns:
        list of Tensors: the pieces, each a slice of x (``getitem``).

    Example:
        >>> F.split(mg.tensor([1.0, 2.0, 3.0]), [1, 2])
        [Tensor([1.], dtype=float32), Tensor([2., 3.], dtype=float32)]
    """
    if builtins.sum(sizes) != x.shape[axis]:
        raise ValueError(f"split: sizes {list(sizes)} add up to {builtins.sum(sizes)}, "
                         f"but axis {axis} of shape {x.shape} has {x.shape[axis]}")
    pieces, start = [], 0
    for size in sizes:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + size)
        pieces.append(x[tuple(index)])
        start += size
    return pieces


def flatten(x, start_axis=1):
    """Merge every axis from ``start_axis`` on into one (a ``reshape``).

    Args:
        x (Tensor): the input.
        start_axis (int): the first axis merged. Default: 1, which keeps the batch axis.

    Shape:
        (N, C, H, W) -> (N, C*H*W) with the default ``start_axis``.

    Returns:
        Tensor: x with the trailing axes merged.

    Example:
        >>> F.flatten(mg.zeros((2, 3, 4, 4))).shape
        (2, 48)
    """
    return reshape(x, shape=tuple(x.shape[:start_axis]) + (-1,))


# --- devices and dtypes ---------------------------------------------------------------
def to_device(x, device):
    """The same values on another device; the gradient travels back (``x.to(device)``).

    Args:
        x (Tensor): the input.
        device (str): "cpu", "cuda" or "cuda:N".

    Shape:
        out has x's shape.

    Returns:
        Tensor: x on ``device`` (no copy when it is there already).

    Example:
        >>> F.to_device(mg.tensor([1.0]), device="cpu").device
        'cpu'
    """
    return to_device.op(x, device=device)


def astype(x, dtype):
    """The values in another dtype; the gradient is cast back (``x.astype(dtype)``).

    A cast to an integer or boolean dtype gives a tensor without a gradient.

    Args:
        x (Tensor): the input.
        dtype (numpy.dtype): the new dtype.

    Shape:
        out has x's shape.

    Returns:
        Tensor: x in ``dtype``.

    Example:
        >>> x = mg.tensor([1.5], requires_grad=True)
        >>> F.astype(x, dtype=numpy.dtype("float64")).sum().backward()
        >>> x.grad
        array([1.], dtype=float32)
    """
    return astype.op(x, dtype=dtype)


# --- each function's Op: its pair from minigrad.ops and its check (F.sum.op) ----------------
sum.op = Op("sum", reduce.sum_forward, reduce.sum_backward)
mean.op = Op("mean", reduce.mean_forward, reduce.mean_backward)
max.op = Op("max", reduce.max_forward, reduce.max_backward, reduce.check_max)
matmul.op = Op("matmul", linalg.matmul_forward, linalg.matmul_backward, linalg.check_matmul)
reshape.op = Op("reshape", shape.reshape_forward, shape.reshape_backward, shape.check_reshape)
transpose.op = Op("transpose", shape.transpose_forward, shape.transpose_backward)
getitem.op = Op("getitem", shape.getitem_forward, shape.getitem_backward, placed_gradient=shape.getitem_place)
concat.op = Op("concat", shape.concat_forward, shape.concat_backward, shape.check_concat)
to_device.op = Op("to_device", device.to_device_forward, device.to_device_backward)
astype.op = Op("astype", device.astype_forward, device.astype_backward)
