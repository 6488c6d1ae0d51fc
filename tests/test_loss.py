"""Softmax, log-softmax, cross-entropy and the accuracy metrics: direct float64
formulas as the reference, stability for logits of 1e4, gradient checks, torch."""
import functools
import math

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import backend
from minigrad.gradcheck import gradcheck
from minigrad.ops import loss


def naive_softmax_rows(x):
    out = numpy.empty_like(x)
    for n in range(x.shape[0]):
        exps = [math.exp(v) for v in x[n]]
        out[n] = [e / sum(exps) for e in exps]
    return out


def naive_cross_entropy(x, labels):
    total = 0.0
    for n, label in enumerate(labels):
        total -= math.log(math.exp(x[n, label]) / sum(math.exp(v) for v in x[n]))
    return total / len(labels)


def logits_and_labels(seed, n=5, classes=7, scale=3.0):
    rng = numpy.random.default_rng(seed)
    return rng.standard_normal((n, classes)) * scale, rng.integers(0, classes, n)


def test_forwards_match_direct_formulas(xp):
    x, labels = logits_and_labels(0)
    softmax = naive_softmax_rows(x)
    numpy.testing.assert_allclose(backend.to_numpy(loss.softmax_forward(xp.asarray(x))[0]), softmax, rtol=1e-13)
    numpy.testing.assert_allclose(backend.to_numpy(loss.log_softmax_forward(xp.asarray(x))[0]),
                                  numpy.log(softmax), rtol=1e-13)
    numpy.testing.assert_allclose(backend.to_numpy(loss.softmax_forward(xp.asarray(x.T), axis=0)[0]),
                                  softmax.T, rtol=1e-13)
    value = loss.cross_entropy_forward(xp.asarray(x), labels=xp.asarray(labels))[0]
    assert float(value) == pytest.approx(naive_cross_entropy(x, labels), rel=1e-13)


def test_cross_entropy_backward_is_softmax_minus_onehot_over_n(xp):
    x, labels = logits_and_labels(1)
    _, cache = loss.cross_entropy_forward(xp.asarray(x), labels=xp.asarray(labels))
    (gx,) = loss.cross_entropy_backward(xp.asarray(2.0), cache)
    expected = (naive_softmax_rows(x) - numpy.eye(7)[labels]) / 5 * 2.0
    numpy.testing.assert_allclose(backend.to_numpy(gx), expected, rtol=1e-12, atol=1e-15)


def test_stable_for_logits_of_1e4():
    x = numpy.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]])
    with numpy.errstate(over="raise", divide="raise", invalid="raise"):   # underflow to 0 is fine
        p = F.softmax(x).numpy()
        log_p = F.log_softmax(x).numpy()
        loss_value = F.cross_entropy(x, numpy.array([1, 2])).item()
    numpy.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-300)
    numpy.testing.assert_allclose(log_p, [[0, -1e4, -2e4], [-math.log(3)] * 3], rtol=1e-15)
    assert loss_value == pytest.approx((1e4 + math.log(3)) / 2, rel=1e-15)
    x32 = numpy.array([[1e4, -1e4, 3.0]], dtype=numpy.float32)
    assert numpy.isfinite(F.cross_entropy(x32, [2]).item())
    assert F.cross_entropy(x32, [2]).dtype == numpy.float32


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), classes=st.integers(1, 8), shift=st.floats(-1e4, 1e4),
       seed=st.integers(0, 2**16))
def test_property_probabilities_and_shift_invariance(n, classes, shift, seed):
    x = numpy.random.default_rng(seed).standard_normal((n, classes)) * 4
    p = F.softmax(x + shift).numpy()
    assert numpy.all(p >= 0)
    numpy.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    numpy.testing.assert_allclose(F.log_softmax(x + shift).numpy(), F.log_softmax(x).numpy(),
                                  atol=1e-11 * max(1.0, abs(shift)))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gradcheck_softmax_and_log_softmax_pairs(axis):
    x = numpy.random.default_rng(2).standard_normal((4, 5))
    for forward, backward in [(loss.softmax_forward, loss.softmax_backward),
                              (loss.log_softmax_forward, loss.log_softmax_backward)]:
        pair = (functools.partial(forward, axis=axis), backward)
        assert gradcheck(pair, x, tolerance=1e-8).max_rel_error < 1e-8


def test_gradcheck_cross_entropy_pair_and_tensor_api():
    x, labels = logits_and_labels(3, n=6, classes=4)
    pair = (functools.partial(loss.cross_entropy_forward, labels=labels), loss.cross_entropy_backward)
    assert gradcheck(pair, x, tolerance=1e-8).max_rel_error < 1e-8
    report = gradcheck(lambda t: F.cross_entropy(F.softmax(t, axis=0) * 3.0, labels), x, tolerance=1e-8)
    assert report.max_rel_error < 1e-8


def test_gradcheck_on_a_3d_log_softmax_along_the_middle_axis():
    x = numpy.random.default_rng(4).standard_normal((2, 3, 4))
    assert gradcheck(lambda t: F.log_softmax(t, axis=1), x, tolerance=1e-8).max_rel_error < 1e-8


def test_matches_torch_values_and_gradients():
    torch = pytest.importorskip("torch")
    x, labels = logits_and_labels(5, n=8, classes=10, scale=10.0)
    t = mg.tensor(x, requires_grad=True)
    F.cross_entropy(t, labels).backward()
    tx = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(tx, torch.tensor(labels))
    theirs.backward()
    assert F.cross_entropy(x, labels).item() == pytest.approx(theirs.item(), rel=1e-13)
    numpy.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-16)
    # log p near 0 is (x - m) - lse, a difference of O(10) numbers: accurate to ~1e-15 absolute
    numpy.testing.assert_allclose(F.log_softmax(x, axis=1).numpy(),
                                  torch.log_softmax(torch.tensor(x), dim=1).numpy(), rtol=1e-13, atol=1e-14)
    numpy.testing.assert_allclose(F.softmax(x, axis=0).numpy(),
                                  torch.softmax(torch.tensor(x), dim=0).numpy(), rtol=1e-12)


def test_labels_may_be_a_tensor_or_a_list():
    x, labels = logits_and_labels(6)
    expected = naive_cross_entropy(x, labels)
    assert F.cross_entropy(x, mg.Tensor(labels)).item() == pytest.approx(expected, rel=1e-13)
    assert F.cross_entropy(mg.tensor(x), labels.tolist()).item() == pytest.approx(expected, rel=1e-13)


def test_accuracy_and_topk_accuracy_are_python_floats():
    x = numpy.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.3], [0.2, 0.3, 0.5], [0.5, 0.4, 0.45]])
    labels = numpy.array([1, 2, 0, 1])
    assert F.accuracy(x, labels) == 0.25 and type(F.accuracy(x, labels)) is float
    assert F.topk_accuracy(mg.tensor(x), labels, 2) == 0.5
    assert F.topk_accuracy(x, labels, 3) == 1.0
    assert type(F.topk_accuracy(x, labels, 1)) is float


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), classes=st.integers(1, 8), seed=st.integers(0, 2**16), data=st.data())
def test_property_topk_matches_sorting(n, classes, seed, data):
    rng = numpy.random.default_rng(seed)
    x = rng.permutation(n * classes).reshape(n, classes).astype(float)   # no ties
    labels = rng.integers(0, classes, n)
    k = data.draw(st.integers(1, classes))
    order = numpy.argsort(-x, axis=1)
    expected = numpy.mean([labels[i] in order[i, :k] for i in range(n)])
    assert F.topk_accuracy(x, labels, k) == pytest.approx(expected)
    assert F.topk_accuracy(x, labels, 1) == F.accuracy(x, labels)


@pytest.mark.parametrize("logits,labels,match", [
    (numpy.zeros((3, 4)), [0, 4, 1], r"cross_entropy: labels must lie in \[0, 4\) for 4 classes, "
                                     r"got values from 0 to 4"),
    (numpy.zeros((3, 4)), [0, -1, 1], r"got values from -1 to 1"),
    (numpy.zeros((3, 4)), [[0], [1], [2]], r"expected labels of shape \(3,\) for logits of shape "
                                           r"\(3, 4\), got shape \(3, 1\)"),
    (numpy.zeros((3, 4)), [0.0, 1.0, 2.0], r"labels must be integer class indices, got dtype float64"),
    (numpy.zeros(4), [0], r"cross_entropy: expected logits of shape \(N, classes\), got shape \(4,\)"),
    (numpy.zeros((2, 3, 4)), [0, 1], r"got shape \(2, 3, 4\)"),
    (numpy.zeros((0, 4)), numpy.zeros(1, dtype=int), r"expected labels of shape \(0,\) for logits of shape "
                                                     r"\(0, 4\), got shape \(1,\)"),
])
def test_cross_entropy_bad_input(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        F.cross_entropy(logits, labels)


def test_metric_and_softmax_bad_input():
    with pytest.raises(ValueError, match=r"accuracy: expected logits of shape \(N, classes\) with N >= 1, "
                                         r"got shape \(0, 4\)"):
        F.accuracy(numpy.zeros((0, 4)), numpy.zeros(0, dtype=int))    # no rows: no fraction correct
    with pytest.raises(ValueError, match=r"accuracy: labels must lie in \[0, 2\)"):
        F.accuracy(numpy.zeros((2, 2)), [0, 2])
    with pytest.raises(ValueError, match=r"topk_accuracy: k must be in \[1, 2\], got 3"):
        F.topk_accuracy(numpy.zeros((2, 2)), [0, 1], 3)
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range for shape \(2, 2\)"):
        F.softmax(numpy.zeros((2, 2)), axis=2)
    with pytest.raises(ValueError, match=r"log_softmax: expected a floating-point input, got dtype int64"):
        F.log_softmax(numpy.zeros((2, 2), dtype=numpy.int64))


def test_ties_and_nan_are_never_counted_in_the_labels_favour():
    """A dead network (constant logits) or a diverged one (NaN) must not score 100%."""
    labels = numpy.array([0, 3, 6, 9])
    constant = numpy.zeros((4, 10))
    assert F.accuracy(constant, labels) == 0.25                  # argmax: the first index wins
    assert F.topk_accuracy(constant, labels, 1) == 0.25
    assert F.topk_accuracy(constant, labels, 5) == 0.5           # classes 0..4 are the top 5
    nan = numpy.full((4, 10), numpy.nan)
    assert F.accuracy(nan, labels) == 0.0 and F.topk_accuracy(nan, labels, 10) == 0.0
    one_nan = numpy.eye(4) * 5
    one_nan[1, 1] = numpy.nan                                    # row 1: NaN at its label
    assert F.accuracy(one_nan, [0, 1, 2, 3]) == 0.75 == F.topk_accuracy(one_nan, [0, 1, 2, 3], 1)


SPECIAL_LOGITS = [-numpy.inf, -1.0, -0.0, 0.0, 1.0, numpy.inf, numpy.nan]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 6), classes=st.integers(1, 6), data=st.data())
def test_property_top1_is_accuracy_with_ties_and_nan(n, classes, data):
    """Few distinct values, so ties are common. The rule: a row holding NaN is never a hit;
    otherwise the label's rank is its place in a stable sort, largest first (ties go to the
    lower index, as argmax's do)."""
    x = numpy.array(data.draw(st.lists(st.sampled_from(SPECIAL_LOGITS), min_size=n * classes,
                                       max_size=n * classes))).reshape(n, classes)
    labels = numpy.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    order = numpy.argsort(-x, axis=1, kind="stable")
    has_nan = numpy.isnan(x).any(axis=1)
    for k in range(1, classes + 1):
        expected = numpy.mean([labels[i] in order[i, :k] and not has_nan[i] for i in range(n)])
        assert F.topk_accuracy(x, labels, k) == pytest.approx(expected)
    assert F.topk_accuracy(x, labels, 1) == F.accuracy(x, labels)
    assert F.topk_accuracy(x.astype(numpy.float32), labels, 1) == F.accuracy(x.astype(numpy.float32), labels)
