"""Differentiable functions on Tensors: each one is an ``Op`` built from a pair in
``minigrad.ops`` plus, where the input can be wrong, a check that says how.

    import minigrad.functional as F
    y = F.relu(F.linear(x, W, b))
"""
import builtins

import numpy

from . import backend
from .autograd import Op, Tensor
from .ops import conv as conv_ops
from .ops import elementwise, linalg, reduce, shape
from .ops import loss as _loss
from .ops import lrn as _lrn
from .ops import pool as pool_ops
from .ops.dropout import dropout_backward, dropout_forward


# --- input checks: name the op, what it expected and what it got -------------------
def _broadcastable(name):
    def check(a, b):
        try:
            numpy.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return check


def _check_matmul(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: needs arrays of at least 1 dimension, got shapes {a.shape} and {b.shape}")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape} "
                         f"({inner_a} != {inner_b})")


def _check_linear(x, W, b=None):
    if x.ndim != 2 or W.ndim != 2:
        raise ValueError(f"linear: expected x of shape (N, in) and W of shape (out, in), "
                         f"got x {x.shape} and W {W.shape}")
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"linear: x has {x.shape[1]} features but W expects {W.shape[1]} "
                         f"(x {x.shape}, W {W.shape})")
    if b is not None and b.shape != (W.shape[0],):
        raise ValueError(f"linear: bias shape {b.shape} should be ({W.shape[0]},)")


def _check_reshape(x, shape):
    known = [s for s in shape if s != -1]
    size = int(numpy.prod(known)) if known else 1
    free = len(shape) - len(known)
    if free > 1 or (free == 0 and size != x.size) or (free == 1 and (size == 0 or x.size % size)):
        raise ValueError(f"reshape: cannot reshape {x.shape} ({x.size} values) into {tuple(shape)}")


def _check_float(name):
    def check(x, **params):
        if x.dtype.kind != "f":
            raise ValueError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
    return check


def _check_concat(*arrays, axis=0):
    if not arrays:
        raise ValueError("concat: needs at least one input")
    first = arrays[0].shape
    for i, a in enumerate(arrays[1:], start=1):
        if a.ndim != len(first):
            raise ValueError(f"concat: input {i} has {a.ndim} dimensions, input 0 has {len(first)}")
        for dim in range(len(first)):
            if dim != axis % len(first) and a.shape[dim] != first[dim]:
                raise ValueError(f"concat along axis {axis}: input {i} has shape {a.shape}, "
                                 f"input 0 has shape {first}; all other axes must match")


# --- arithmetic, elementwise and reductions ---------------------------------------------
add = Op("add", elementwise.add_forward, elementwise.add_backward, _broadcastable("add"))
sub = Op("sub", elementwise.sub_forward, elementwise.sub_backward, _broadcastable("sub"))
mul = Op("mul", elementwise.mul_forward, elementwise.mul_backward, _broadcastable("mul"))
div = Op("div", elementwise.div_forward, elementwise.div_backward, _broadcastable("div"))
neg = Op("neg", elementwise.neg_forward, elementwise.neg_backward)
pow = Op("pow", elementwise.pow_forward, elementwise.pow_backward)
exp = Op("exp", elementwise.exp_forward, elementwise.exp_backward, _check_float("exp"))
log = Op("log", elementwise.log_forward, elementwise.log_backward, _check_float("log"))
tanh = Op("tanh", elementwise.tanh_forward, elementwise.tanh_backward, _check_float("tanh"))
sigmoid = Op("sigmoid", elementwise.sigmoid_forward, elementwise.sigmoid_backward, _check_float("sigmoid"))
relu = Op("relu", elementwise.relu_forward, elementwise.relu_backward)

sum = Op("sum", reduce.sum_forward, reduce.sum_backward)
mean = Op("mean", reduce.mean_forward, reduce.mean_backward)
max = Op("max", reduce.max_forward, reduce.max_backward)

# --- linear algebra ----------------------------------------------------------------
matmul = Op("matmul", linalg.matmul_forward, linalg.matmul_backward, _check_matmul)
linear = Op("linear", linalg.linear_forward, linalg.linear_backward, _check_linear)

# --- moving values around ---------------------------------------------------------
reshape = Op("reshape", shape.reshape_forward, shape.reshape_backward, _check_reshape)
transpose = Op("transpose", shape.transpose_forward, shape.transpose_backward)
getitem = Op("getitem", shape.getitem_forward, shape.getitem_backward)
_concat = Op("concat", shape.concat_forward, shape.concat_backward, _check_concat)


def concat(tensors, axis=0):
    """Join tensors along ``axis`` (the channel axis, 1, for an Inception module)."""
    return _concat(*tensors, axis=axis)


def split(x, sizes, axis=0):
    """Cut ``x`` along ``axis`` into pieces of the given sizes (the inverse of concat)."""
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
    """Merge all axes from ``start_axis`` on: (N, C, H, W) -> (N, C*H*W)."""
    return reshape(x, shape=tuple(x.shape[:start_axis]) + (-1,))


# --- devices and dtypes ---------------------------------------------------------------
def _to_device_forward(x, device):
    return backend.to_device(x, device), backend.device_of(x)


def _to_device_backward(gy, source_device):
    return (backend.to_device(gy, source_device),)


def _astype_forward(x, dtype):
    return x.astype(dtype), x.dtype


def _astype_backward(gy, source_dtype):
    return (gy.astype(source_dtype),)


to_device = Op("to_device", _to_device_forward, _to_device_backward)
astype = Op("astype", _astype_forward, _astype_backward)


# --- local response normalization, dropout, softmax and losses ---------------------


def _on_device_of(value, like):
    """Labels or a mask as a plain array on the device of ``like`` (a Tensor or an array)."""
    value = _array_of(value)
    if not hasattr(value, "shape"):
        value = numpy.asarray(value)
    return backend.to_device(value, backend.device_of(_array_of(like)))


def _array_of(x):
    """The array inside a Tensor (or ``x`` itself when it is already an array)."""
    return x.data if isinstance(x, Tensor) else x


def _check_lrn(x, size, alpha, beta, k):
    if x.ndim < 2 or x.dtype.kind != "f":
        raise ValueError(f"local_response_norm: expected a floating-point input of shape (N, C, ...), "
                         f"got shape {x.shape} and dtype {x.dtype}")
    if not isinstance(size, (int, numpy.integer)) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}")
    if k <= 0 or alpha < 0:
        raise ValueError(f"local_response_norm: needs k > 0 and alpha >= 0 (so that k + alpha/n * "
                         f"sum a^2 stays positive), got k={k}, alpha={alpha}")


def _check_dropout(x, p, training=True, rng=None, mask=None):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if x.dtype.kind != "f":
        raise ValueError(f"dropout: expected a floating-point input, got dtype {x.dtype}")
    if mask is not None and mask.shape != x.shape:
        raise ValueError(f"dropout: mask shape {mask.shape} differs from input shape {x.shape}")


def _check_axis(name):
    def check(x, axis=-1):
        if x.dtype.kind != "f":
            raise ValueError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"{name}: axis {axis} is out of range for shape {x.shape}")
    return check


def _check_labels(name, logits, labels):
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"{name}: expected logits of shape (N, classes) with N >= 1, got shape {logits.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels must be integer class indices, got dtype {labels.dtype}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"{name}: expected labels of shape ({logits.shape[0]},) for logits of shape "
                         f"{logits.shape}, got shape {labels.shape}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= logits.shape[1]:
        raise ValueError(f"{name}: labels must lie in [0, {logits.shape[1]}) for {logits.shape[1]} "
                         f"classes, got values from {low} to {high}")


def _check_cross_entropy(logits, labels):
    if logits.dtype.kind != "f":
        raise ValueError(f"cross_entropy: expected floating-point logits, got dtype {logits.dtype}")
    _check_labels("cross_entropy", logits, labels)


_local_response_norm = Op("local_response_norm", _lrn.lrn_forward, _lrn.lrn_backward, _check_lrn)
_dropout = Op("dropout", dropout_forward, dropout_backward, _check_dropout)
_softmax = Op("softmax", _loss.softmax_forward, _loss.softmax_backward, _check_axis("softmax"))
_log_softmax = Op("log_softmax", _loss.log_softmax_forward, _loss.log_softmax_backward,
                  _check_axis("log_softmax"))
_cross_entropy = Op("cross_entropy", _loss.cross_entropy_forward, _loss.cross_entropy_backward,
                    _check_cross_entropy)


def local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """LRN across channels: x / (k + alpha/size * sum of size neighbouring x^2)^beta."""
    return _local_response_norm(x, size=size, alpha=alpha, beta=beta, k=k)


def dropout(x, p, training=True, rng=None, mask=None):
    """Inverted dropout; the identity when not training. ``mask`` (True = keep) fixes the draw."""
    if mask is not None:
        mask = _on_device_of(mask, x)
    return _dropout(x, p=p, training=training, rng=rng, mask=mask)


def softmax(x, axis=-1):
    return _softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return _log_softmax(x, axis=axis)


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[n, labels[n]]; labels are integers (N,)."""
    return _cross_entropy(logits, labels=_on_device_of(labels, logits))


def accuracy(logits, labels):
    """Fraction of correct top-1 predictions, as a Python float."""
    logits_array, labels = _array_of(logits), _on_device_of(labels, logits)
    _check_labels("accuracy", logits_array, labels)
    return _loss.accuracy(logits_array, labels)


def topk_accuracy(logits, labels, k):
    """Fraction of rows whose label is among the k largest logits, as a Python float."""
    logits_array, labels = _array_of(logits), _on_device_of(labels, logits)
    _check_labels("topk_accuracy", logits_array, labels)
    if not 1 <= k <= logits_array.shape[1]:
        raise ValueError(f"topk_accuracy: k must be in [1, {logits_array.shape[1]}], got {k}")
    return _loss.topk_accuracy(logits_array, labels, k)


# --- convolution and pooling --------------------------------------------------------------
_conv2d = Op("conv2d", conv_ops.conv2d_forward, conv_ops.conv2d_backward, conv_ops.check_conv2d)
_max_pool2d = Op("max_pool2d", pool_ops.max_pool2d_forward, pool_ops.max_pool2d_backward,
                 pool_ops.check_pool2d("max_pool2d"))
_avg_pool2d = Op("avg_pool2d", pool_ops.avg_pool2d_forward, pool_ops.avg_pool2d_backward,
                 pool_ops.check_pool2d("avg_pool2d"))
global_avg_pool2d = Op("global_avg_pool2d", pool_ops.global_avg_pool2d_forward,
                       pool_ops.global_avg_pool2d_backward, pool_ops.check_global_avg_pool2d)


def conv2d(x, W, b=None, stride=1, padding=0):
    """x (N, C, H, W), W (F, C, KH, KW), b (F,) or None -> (N, F, OH, OW).

    ``stride`` and ``padding`` are ints or (h, w) pairs (see ``minigrad.ops.conv``).
    """
    inputs = (x, W) if b is None else (x, W, b)
    return _conv2d(*inputs, stride=stride, padding=padding)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max over KH x KW windows; ``stride`` None means ``kernel_size`` (see ``minigrad.ops.pool``)."""
    return _max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over KH x KW windows; the divisor rule is PyTorch's (see ``minigrad.ops.pool``)."""
    return _avg_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding,
                       ceil_mode=ceil_mode, count_include_pad=count_include_pad)
