"""Dropout: inverted scaling, identity in eval mode, p = 0 and p = 1, seeding,
an explicit mask for gradient checks, and the nn.Dropout module's own generator."""
import functools

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import backend, nn
from minigrad.gradcheck import gradcheck
from minigrad.ops.dropout import dropout_backward, dropout_forward


def naive_dropout(x, mask, p):
    out = numpy.zeros_like(x)
    for i in numpy.ndindex(x.shape):
        if mask[i]:
            out[i] = x[i] / (1 - p)
    return out


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_explicit_mask_matches_loop_and_backward_reuses_it(xp, p):
    rng = numpy.random.default_rng(0)
    x, gy = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    mask = rng.random(x.shape) >= p
    out, cache = dropout_forward(xp.asarray(x), p, mask=xp.asarray(mask))
    numpy.testing.assert_allclose(backend.to_numpy(out), naive_dropout(x, mask, p), rtol=1e-15)
    (gx,) = dropout_backward(xp.asarray(gy), cache)
    numpy.testing.assert_allclose(backend.to_numpy(gx), naive_dropout(gy, mask, p), rtol=1e-15)


def test_drawn_mask_lives_on_the_input_device(xp):
    x = xp.asarray(numpy.ones((50, 40), dtype=numpy.float32))
    out = F.dropout(mg.Tensor(x), 0.5, rng=numpy.random.default_rng(0))
    assert out.device == backend.device_of(x) and out.dtype == numpy.float32
    values = set(numpy.unique(out.numpy()).tolist())
    assert values == {0.0, 2.0}


def test_eval_mode_is_the_identity_and_passes_the_gradient():
    x = mg.tensor(numpy.arange(6.0).reshape(2, 3), requires_grad=True)
    y = F.dropout(x, 0.9, training=False)
    numpy.testing.assert_array_equal(y.numpy(), x.numpy())
    y.backward(numpy.full((2, 3), 3.0))
    numpy.testing.assert_array_equal(x.grad, numpy.full((2, 3), 3.0))


def test_p_zero_keeps_everything_and_p_one_drops_everything():
    x = numpy.random.default_rng(1).standard_normal((4, 5))
    numpy.testing.assert_array_equal(F.dropout(x, 0.0, rng=numpy.random.default_rng(0)).numpy(), x)
    with numpy.errstate(all="raise"):      # no division by zero anywhere
        t = mg.tensor(x, requires_grad=True)
        y = F.dropout(t, 1.0, rng=numpy.random.default_rng(0))
        y.backward(numpy.ones((4, 5)))
    numpy.testing.assert_array_equal(y.numpy(), numpy.zeros((4, 5)))
    numpy.testing.assert_array_equal(t.grad, numpy.zeros((4, 5)))


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_p_outside_the_unit_interval_is_an_error(p):
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\]"):
        F.dropout(numpy.ones(3), p)
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\]"):
        nn.Dropout(p)


def test_mask_of_the_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"dropout: mask shape \(3,\) differs from input shape \(2, 3\)"):
        F.dropout(numpy.ones((2, 3)), 0.5, mask=numpy.ones(3, dtype=bool))


def test_keep_rate_and_mean_are_preserved():
    x = numpy.ones(200_000)
    y = F.dropout(x, 0.3, rng=numpy.random.default_rng(2)).numpy()
    kept = numpy.mean(y != 0)
    sigma = numpy.sqrt(0.3 * 0.7 / x.size)
    assert abs(kept - 0.7) < 5 * sigma
    assert abs(y.mean() - 1.0) < 5 * sigma / 0.7


def test_same_seed_same_mask_other_seed_other_mask():
    x = numpy.ones((10, 10))
    first = F.dropout(x, 0.5, rng=numpy.random.default_rng(7)).numpy()
    again = F.dropout(x, 0.5, rng=numpy.random.default_rng(7)).numpy()
    other = F.dropout(x, 0.5, rng=numpy.random.default_rng(8)).numpy()
    numpy.testing.assert_array_equal(first, again)
    assert not numpy.array_equal(first, other)


@settings(max_examples=30, deadline=None)
@given(p=st.floats(0.0, 0.95), seed=st.integers(0, 2**16), n=st.integers(1, 30))
def test_property_each_value_is_dropped_or_scaled(p, seed, n):
    x = numpy.random.default_rng(seed).standard_normal(n) + 5     # never zero
    y = F.dropout(x, p, rng=numpy.random.default_rng(seed)).numpy()
    kept = y != 0
    numpy.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-14)


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_gradcheck_with_a_fixed_mask(p):
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((3, 4))
    mask = rng.random(x.shape) >= p
    pair = (functools.partial(dropout_forward, p=p, mask=mask), dropout_backward)
    assert gradcheck(pair, x, tolerance=1e-8).max_rel_error < 1e-8
    report = gradcheck(lambda t: F.dropout(t, p, mask=mask), x, tolerance=1e-8)
    assert report.max_rel_error < 1e-8


def test_module_owns_a_seedable_generator_and_obeys_train_eval():
    layer = nn.Dropout(0.5, seed=11)
    x = mg.tensor(numpy.ones((8, 8)))
    first, second = layer(x).numpy(), layer(x).numpy()
    assert not numpy.array_equal(first, second)        # the generator moves on
    layer.reseed(11)
    numpy.testing.assert_array_equal(layer(x).numpy(), first)
    numpy.testing.assert_array_equal(nn.Dropout(0.5, seed=11)(x).numpy(), first)
    layer.eval()
    numpy.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    assert repr(layer) == "Dropout(p=0.5)"


def test_module_gradcheck_with_reseeding():
    layer = nn.Dropout(0.4, seed=0)

    def fn(t):
        layer.reseed(0)           # the same mask on every evaluation
        return layer(t)

    x = numpy.random.default_rng(4).standard_normal((3, 5))
    assert gradcheck(fn, x, tolerance=1e-8).max_rel_error < 1e-8


def test_semantics_match_torch():
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(5).standard_normal((100, 50)) + 3
    theirs = torch.nn.functional.dropout(torch.tensor(x), 0.3, training=True).numpy()
    ours = F.dropout(x, 0.3, rng=numpy.random.default_rng(5)).numpy()
    for y in (ours, theirs):                         # same scaling of the kept values
        numpy.testing.assert_allclose(y[y != 0], x[y != 0] / 0.7, rtol=1e-12)
    evaluation = torch.nn.functional.dropout(torch.tensor(x), 0.3, training=False).numpy()
    numpy.testing.assert_array_equal(F.dropout(x, 0.3, training=False).numpy(), evaluation)
    zeros = torch.nn.functional.dropout(torch.tensor(x), 1.0, training=True).numpy()
    numpy.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), zeros)
