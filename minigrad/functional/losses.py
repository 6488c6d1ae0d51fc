"""Softmax, log-softmax, the cross-entropy loss and the accuracy metrics; the math (through
log-sum-exp, stable for logits of 1e4) and the backward are in ``minigrad/ops/loss.py``."""
from ..autograd import Op, as_tensor
from ..ops import loss
from .plain_arrays import array_of, on_device_of, plain_array


def softmax(x, axis=-1):
    """Softmax along ``axis``: out_i = e^(x_i) / sum_j e^(x_j), so gx = out * (g - sum_j g_j out_j).

    Args:
        x (Tensor): floating-point scores.
        axis (int): the axis that sums to 1. Default: -1.

    Shape:
        out has x's shape.

    Returns:
        Tensor: probabilities, each slice along ``axis`` summing to 1.

    Example:
        >>> F.softmax(mg.tensor([[0.0, 0.0, 0.0, 0.0]]))
        Tensor([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
    """
    return softmax.op(x, axis=axis)


def log_softmax(x, axis=-1):
    """Log of the softmax along ``axis``: out_i = x_i - log sum_j e^(x_j), without overflow.

    Args:
        x (Tensor): floating-point scores.
        axis (int): the axis normalized over. Default: -1.

    Shape:
        out has x's shape.

    Returns:
        Tensor: log-probabilities.

    Example:
        >>> F.log_softmax(mg.tensor([1e4, 1e4]))          # log(1/2), no overflow
        Tensor([-0.6931472, -0.6931472], dtype=float32)
    """
    return log_softmax.op(x, axis=axis)


def cross_entropy(logits, labels):
    """Cross-entropy loss: the mean over the batch of -log softmax(logits)[n, labels[n]].

    Its gradient is (softmax(logits) - onehot(labels)) / N. The labels are checked where they
    are, before they move to the logits' device: labels from the host cost a GPU run no
    synchronization. An empty batch gives NaN, as in PyTorch.

    Args:
        logits (Tensor): floating-point scores, one row per example.
        labels (array, list or Tensor of ints): the right class of each example, in
            [0, classes).

    Shape:
        logits (N, classes), labels (N,) -> out ().

    Returns:
        Tensor: the loss, a scalar.

    Example:
        >>> F.cross_entropy(mg.tensor([[0.0, 0.0], [0.0, 0.0]]), [0, 1]).item()   # log 2
        0.6931471824645996
    """
    labels = plain_array(labels)
    loss.check_cross_entropy(array_of(as_tensor(logits)), labels)
    return cross_entropy.op(logits, labels=on_device_of(labels, logits))


def accuracy(logits, labels):
    """The fraction of rows whose largest logit is at the label: a number to report, no gradient.

    On ties the first largest logit counts; a row with a NaN is never right.

    Args:
        logits (Tensor or array): scores, one row per example.
        labels (array, list or Tensor of ints): the right class of each example.

    Shape:
        logits (N, classes) with N >= 1, labels (N,).

    Returns:
        float: the fraction right, in [0, 1].

    Example:
        >>> F.accuracy(mg.tensor([[0.9, 0.1], [0.2, 0.8]]), [0, 0])
        0.5
    """
    logits_array, labels = array_of(logits), on_device_of(labels, logits)
    loss.check_labels("accuracy", logits_array, labels)
    return loss.accuracy(logits_array, labels)


def topk_accuracy(logits, labels, k):
    """The fraction of rows whose label is among the k largest logits; no gradient.

    Equal logits rank by index; a row with a NaN is never right. With k = 1 this is
    ``accuracy``.

    Args:
        logits (Tensor or array): scores, one row per example.
        labels (array, list or Tensor of ints): the right class of each example.
        k (int): how many of the largest logits count, in [1, classes].

    Shape:
        logits (N, classes) with N >= 1, labels (N,).

    Returns:
        float: the fraction right, in [0, 1].

    Example:
        >>> F.topk_accuracy(mg.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]), [1, 2], k=2)
        0.5
    """
    logits_array, labels = array_of(logits), on_device_of(labels, logits)
    loss.check_labels("topk_accuracy", logits_array, labels)
    if not 1 <= k <= logits_array.shape[1]:
        raise ValueError(f"topk_accuracy: k must be in [1, {logits_array.shape[1]}], got {k}")
    return loss.topk_accuracy(logits_array, labels, k)


# --- each function's Op: its pair from minigrad.ops and its check (F.softmax.op) ------------
softmax.op = Op("softmax", loss.softmax_forward, loss.softmax_backward, loss.check_axis("softmax"))
log_softmax.op = Op("log_softmax", loss.log_softmax_forward, loss.log_softmax_backward,
                    loss.check_axis("log_softmax"))
cross_entropy.op = Op("cross_entropy", loss.cross_entropy_forward, loss.cross_entropy_backward)
