"""Softmax, log-softmax and cross-entropy through log-sum-exp, and accuracy metrics.

log-sum-exp with the maximum m taken out first never overflows (the largest
exponent is e^0 = 1), so logits of 1e4 are fine:

    log_softmax(x)_i = (x_i - m) - log sum_j e^(x_j - m)

Backward, with p = softmax(x):
    softmax:      gx = p * (g - sum_j g_j p_j)
    log_softmax:  gx = g - p * sum_j g_j
    cross-entropy over a batch of N with integer labels y (mean of -log p_{n, y_n}):
                  gx = (p - onehot(y)) / N      (times the upstream scalar g)
"""
import math

from ..backend import get_array_module, is_capturing, to_numpy


def _log_softmax(x, axis):
    xp = get_array_module(x)
    if x.size == 0:                 # nothing to normalize (and an empty axis has no max)
        return xp.empty_like(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _own_axis(x, axis):
    """A 0-d input is one element along axis 0 (or -1), as PyTorch reads it: NumPy's None."""
    return None if x.ndim == 0 else axis


def log_softmax_forward(x, axis=-1):
    xp = get_array_module(x)
    axis = _own_axis(x, axis)
    y = _log_softmax(x, axis)
    return y, (xp.exp(y), axis)


def log_softmax_backward(gy, cache):
    p, axis = cache
    return (gy - p * gy.sum(axis=axis, keepdims=True),)


def softmax_forward(x, axis=-1):
    xp = get_array_module(x)
    axis = _own_axis(x, axis)
    p = xp.exp(_log_softmax(x, axis))
    return p, (p, axis)


def softmax_backward(gy, cache):
    p, axis = cache
    return (p * (gy - (gy * p).sum(axis=axis, keepdims=True)),)


def cross_entropy_forward(logits, labels):
    """logits (N, classes), labels (N,) integers -> mean over the batch of -log p[n, label_n].

    An empty batch (N = 0) has no mean: the loss is NaN (0/0) and the gradient empty, as
    PyTorch's ``cross_entropy`` gives."""
    xp = get_array_module(logits)
    rows = xp.arange(logits.shape[0])
    log_p = _log_softmax(logits, axis=1)
    if len(rows) == 0:
        loss = xp.asarray(math.nan, dtype=logits.dtype)
    else:
        loss = xp.asarray(-log_p[rows, labels].mean())
    return loss, (xp.exp(log_p), rows, labels)


def cross_entropy_backward(gy, cache):
    p, rows, labels = cache
    if len(rows) == 0:
        return (p.copy(),)          # an empty gradient for an empty batch
    gx = p.copy()
    gx[rows, labels] -= 1
    return (gx * (gy / len(rows)),)


# The rule both metrics follow: a row's ranking is a stable sort of its logits, largest
# first, so equal logits rank by index (as argmax breaks ties: the first wins), and a
# row with a NaN anywhere has no ranking: it is never a hit (its loss is NaN too).
def _has_nan(logits):
    xp = get_array_module(logits)
    return xp.isnan(logits).any(axis=1)


def accuracy(logits, labels):
    """Fraction of rows whose largest logit is at the label (a Python float)."""
    hits = (logits.argmax(axis=1) == labels) & ~_has_nan(logits)
    return float(hits.mean())


def topk_accuracy(logits, labels, k):
    """Fraction of rows whose label is among the k largest logits (a Python float).

    The label's rank counts the logits ahead of it: larger ones, and equal ones at a
    lower index. With k = 1 this is ``accuracy``.
    """
    xp = get_array_module(logits)
    label_logit = logits[xp.arange(logits.shape[0]), labels][:, None]
    before_label = xp.arange(logits.shape[1]) < labels[:, None]
    ahead = (logits > label_logit) | ((logits == label_logit) & before_label)
    hits = (ahead.sum(axis=1) < k) & ~_has_nan(logits)
    return float(hits.mean())


# --- input checks: name the op, what it expected and what it got ------------------
def check_axis(name):
    """The check of ``softmax`` / ``log_softmax``: a float input and an axis it has (a 0-d
    input has axis 0, or -1, as in PyTorch)."""
    def check(x, axis=-1):
        if x.dtype.kind != "f":
            raise ValueError(f"{name}: expected a floating-point input, got dtype {x.dtype}")
        axes = max(x.ndim, 1)
        if not -axes <= axis < axes:
            raise ValueError(f"{name}: axis {axis} is out of range for shape {x.shape}")
    return check


def check_labels(name, logits, labels, empty_batch=False):
    """Logits (N, classes) and N integer labels in [0, classes); N >= 1 unless ``empty_batch``."""
    if logits.ndim != 2 or (logits.shape[0] == 0 and not empty_batch):
        rows = "" if empty_batch else " with N >= 1"
        raise ValueError(f"{name}: expected logits of shape (N, classes){rows}, got shape {logits.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels must be integer class indices, got dtype {labels.dtype}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"{name}: expected labels of shape ({logits.shape[0]},) for logits of shape "
                         f"{logits.shape}, got shape {labels.shape}")
    if labels.size == 0 or is_capturing(labels):    # a graph being captured cannot read values:
        return                                      # its owner checks the labels it copies in
    check_label_range(name, labels, logits.shape[1])


def check_label_range(name, labels, classes):
    """Integer labels in [0, classes): one transfer when they are on a GPU."""
    xp = get_array_module(labels)
    low, high = (int(v) for v in to_numpy(xp.stack([labels.min(), labels.max()])))
    if low < 0 or high >= classes:
        raise ValueError(f"{name}: labels must lie in [0, {classes}) for {classes} "
                         f"classes, got values from {low} to {high}")


def check_cross_entropy(logits, labels):
    if logits.dtype.kind != "f":
        raise ValueError(f"cross_entropy: expected floating-point logits, got dtype {logits.dtype}")
    check_labels("cross_entropy", logits, labels, empty_batch=True)
