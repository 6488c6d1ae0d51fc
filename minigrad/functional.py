"""Differentiable functions on Tensors: each one is an ``Op`` built from a pair in
``minigrad.ops`` and, where the input can be wrong, the check that lives beside
that pair and says how.

    import minigrad.functional as F
    y = F.relu(F.linear(x, W, b))
"""
import builtins

import numpy

from . import backend
from .autograd import Op, Tensor, as_tensor
from .ops import batchnorm as _batchnorm
from .ops import conv as conv_ops
from .ops import elementwise, linalg, reduce, shape
from .ops import loss as _loss
from .ops import lrn as _lrn
from .ops import pool as pool_ops
from .ops.dropout import check_dropout, dropout_backward, dropout_forward


# --- arithmetic, elementwise and reductions ---------------------------------------------
add = Op("add", elementwise.add_forward, elementwise.add_backward, elementwise.check_broadcastable("add"))
sub = Op("sub", elementwise.sub_forward, elementwise.sub_backward, elementwise.check_subtractable)
mul = Op("mul", elementwise.mul_forward, elementwise.mul_backward, elementwise.check_broadcastable("mul"))
div = Op("div", elementwise.div_forward, elementwise.div_backward, elementwise.check_broadcastable("div"))
neg = Op("neg", elementwise.neg_forward, elementwise.neg_backward, elementwise.check_negatable)
pow = Op("pow", elementwise.pow_forward, elementwise.pow_backward, elementwise.check_pow)
rpow = Op("rpow", elementwise.rpow_forward, elementwise.rpow_backward, elementwise.check_rpow)
exp = Op("exp", elementwise.exp_forward, elementwise.exp_backward, elementwise.check_float("exp"))
log = Op("log", elementwise.log_forward, elementwise.log_backward, elementwise.check_float("log"))
tanh = Op("tanh", elementwise.tanh_forward, elementwise.tanh_backward, elementwise.check_float("tanh"))
sigmoid = Op("sigmoid", elementwise.sigmoid_forward, elementwise.sigmoid_backward, elementwise.check_float("sigmoid"))
relu = Op("relu", elementwise.relu_forward, elementwise.relu_backward)

sum = Op("sum", reduce.sum_forward, reduce.sum_backward)
mean = Op("mean", reduce.mean_forward, reduce.mean_backward)
max = Op("max", reduce.max_forward, reduce.max_backward, reduce.check_max)

# --- linear algebra ----------------------------------------------------------------
matmul = Op("matmul", linalg.matmul_forward, linalg.matmul_backward, linalg.check_matmul)
linear = Op("linear", linalg.linear_forward, linalg.linear_backward, linalg.check_linear)

# --- moving values around ---------------------------------------------------------
reshape = Op("reshape", shape.reshape_forward, shape.reshape_backward, shape.check_reshape)
transpose = Op("transpose", shape.transpose_forward, shape.transpose_backward)
getitem = Op("getitem", shape.getitem_forward, shape.getitem_backward)
_concat = Op("concat", shape.concat_forward, shape.concat_backward, shape.check_concat)


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


_local_response_norm = Op("local_response_norm", _lrn.lrn_forward, _lrn.lrn_backward, _lrn.check_lrn)
_dropout = Op("dropout", dropout_forward, dropout_backward, check_dropout)
_softmax = Op("softmax", _loss.softmax_forward, _loss.softmax_backward, _loss.check_axis("softmax"))
_log_softmax = Op("log_softmax", _loss.log_softmax_forward, _loss.log_softmax_backward,
                  _loss.check_axis("log_softmax"))
_cross_entropy = Op("cross_entropy", _loss.cross_entropy_forward, _loss.cross_entropy_backward)


def local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """LRN across channels: x / (k + alpha/size * sum of size neighbouring x^2)^beta."""
    return _local_response_norm(x, size=size, alpha=alpha, beta=beta, k=k)


def dropout(x, p, training=True, rng=None, mask=None):
    """Inverted dropout; the identity when not training. ``mask`` (True = keep) fixes the draw."""
    if mask is not None:
        mask = _on_device_of(mask, x)
    return _dropout(x, p=p, training=training, rng=rng, mask=mask)


_batch_norm = Op("batch_norm", _batchnorm.batch_norm_forward, _batchnorm.batch_norm_backward,
                  _batchnorm.check_batch_norm)


def batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True, momentum=0.1,
               eps=1e-5):
    """Normalize each channel of x (N, C, H, W) or (N, C), then gamma * xhat + beta.

    Training mode uses the batch's statistics and updates ``running_mean`` and
    ``running_var`` (arrays or Tensors, state rather than inputs: no gradient) in place;
    eval mode normalizes with them (see ``minigrad.ops.batchnorm``). Unlike PyTorch's
    ``batch_norm(input, running_mean, running_var, weight, bias, training=False)``, gamma
    and beta come first and training is the default, as for ``dropout``.
    """
    return _batch_norm(x, gamma, beta, running_mean=_array_of(running_mean),
                       running_var=_array_of(running_var), training=training, momentum=momentum,
                       eps=eps)


def softmax(x, axis=-1):
    return _softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return _log_softmax(x, axis=axis)


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[n, labels[n]]; labels are integers (N,).

    The labels are checked where they are, before they move to the logits' device: labels
    from the host cost a GPU run no synchronization.
    """
    labels = _array_of(labels)
    if not hasattr(labels, "shape"):
        labels = numpy.asarray(labels)
    _loss.check_cross_entropy(_array_of(as_tensor(logits)), labels)
    return _cross_entropy(logits, labels=_on_device_of(labels, logits))


def accuracy(logits, labels):
    """Fraction of correct top-1 predictions, as a Python float."""
    logits_array, labels = _array_of(logits), _on_device_of(labels, logits)
    _loss.check_labels("accuracy", logits_array, labels)
    return _loss.accuracy(logits_array, labels)


def topk_accuracy(logits, labels, k):
    """Fraction of rows whose label is among the k largest logits, as a Python float."""
    logits_array, labels = _array_of(logits), _on_device_of(labels, logits)
    _loss.check_labels("topk_accuracy", logits_array, labels)
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


def conv2d(x, W, b=None, stride=1, padding=0, groups=1):
    """x (N, C, H, W), W (F, C/groups, KH, KW), b (F,) or None -> (N, F, OH, OW).

    ``stride`` and ``padding`` are ints or (h, w) pairs; ``groups`` splits the channels
    and filters into that many independent convolutions (see ``minigrad.ops.conv``).
    """
    inputs = (x, W) if b is None else (x, W, b)
    return _conv2d(*inputs, stride=stride, padding=padding, groups=groups)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max over KH x KW windows; ``stride`` None means ``kernel_size`` (see ``minigrad.ops.pool``)."""
    return _max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over KH x KW windows; the divisor rule is PyTorch's (see ``minigrad.ops.pool``)."""
    return _avg_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding,
                       ceil_mode=ceil_mode, count_include_pad=count_include_pad)
