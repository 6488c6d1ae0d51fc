"""Batch normalization: per-channel loops as the oracle of the forward (training and eval
mode, running statistics) and of the backward (the paper's chain rule, step by step, not
the one-line formula the op uses), float64 gradient checks, PyTorch, edge shapes, errors,
float32, and the buffers that carry the running statistics through state_dict, to() and
astype()."""
import functools
import math

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import backend, nn
from minigrad.checkpoint import load_weights
from minigrad.gradcheck import gradcheck
from minigrad.ops.batchnorm import batch_norm_backward, batch_norm_forward

EPS = 1e-5


# --- the oracle: one channel at a time ------------------------------------------------------
def channel(x, c):
    """The m = N*H*W values of channel c, as a flat float64 array."""
    return numpy.asarray(x, dtype=numpy.float64)[:, c].reshape(-1)


def naive_batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=EPS):
    """(y, new running mean, new running var), written out per channel with Python floats."""
    y = numpy.empty(x.shape)
    new_mean, new_var = numpy.array(running_mean, float), numpy.array(running_var, float)
    for c in range(x.shape[1]):
        values = channel(x, c)
        m = len(values)
        if training:
            mu = sum(values) / m
            var = sum((v - mu) ** 2 for v in values) / m
            new_mean[c] = (1 - momentum) * running_mean[c] + momentum * mu
            new_var[c] = (1 - momentum) * running_var[c] + momentum * var * m / (m - 1)
        else:
            mu, var = running_mean[c], running_var[c]
        y[:, c] = gamma[c] * (x[:, c] - mu) / math.sqrt(var + eps) + beta[c]
    return y, new_mean, new_var


def naive_batch_norm_backward(gy, x, gamma, running_mean, running_var, training, eps=EPS):
    """(gx, g_gamma, g_beta) by the chain rule of Ioffe & Szegedy's section 3, one step per
    line, per channel (the op uses the one-line form these steps simplify to)."""
    gx, g_gamma, g_beta = numpy.empty(x.shape), numpy.empty(x.shape[1]), numpy.empty(x.shape[1])
    for c in range(x.shape[1]):
        values, g = channel(x, c), channel(gy, c)
        m = len(values)
        if training:
            mu = sum(values) / m
            var = sum((v - mu) ** 2 for v in values) / m
        else:
            mu, var = running_mean[c], running_var[c]
        xhat = (values - mu) / math.sqrt(var + eps)
        g_xhat = g * gamma[c]
        if training:
            g_var = sum(g_xhat * (values - mu)) * -0.5 * (var + eps) ** -1.5
            g_mu = sum(-g_xhat / math.sqrt(var + eps)) + g_var * sum(-2 * (values - mu)) / m
            g_values = g_xhat / math.sqrt(var + eps) + g_var * 2 * (values - mu) / m + g_mu / m
        else:                                           # mu and var are constants
            g_values = g_xhat / math.sqrt(var + eps)
        gx[:, c] = g_values.reshape(gx[:, c].shape)
        g_gamma[c], g_beta[c] = sum(g * xhat), sum(g)
    return gx, g_gamma, g_beta


def problem(shape, seed=0):
    """x, gamma, beta, running mean, running var (float64) for an input of ``shape``."""
    rng = numpy.random.default_rng(seed)
    channels = shape[1]
    return (rng.standard_normal(shape) * 2 + 0.5, rng.standard_normal(channels),
            rng.standard_normal(channels), rng.standard_normal(channels), rng.uniform(0.2, 3.0, channels))


# batch 1 with a map, 1x1 maps with a batch, (N, C), odd sizes, one channel
SHAPES = [(1, 3, 2, 3), (4, 3, 1, 1), (5, 3), (2, 3, 5, 7), (3, 1, 2, 2), (2, 4)]


# --- forward and backward against the loops ----------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_forward_and_backward_match_channel_loops(xp, shape, training):
    x, gamma, beta, running_mean, running_var = problem(shape)
    gy = numpy.random.default_rng(1).standard_normal(shape)
    expected, new_mean, new_var = naive_batch_norm(x, gamma, beta, running_mean, running_var, training)
    means, variances = xp.asarray(running_mean), xp.asarray(running_var)
    y, cache = batch_norm_forward(xp.asarray(x), xp.asarray(gamma), xp.asarray(beta), means, variances,
                                  training=training)
    numpy.testing.assert_allclose(backend.to_numpy(y), expected, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(backend.to_numpy(means), new_mean, rtol=1e-13)
    numpy.testing.assert_allclose(backend.to_numpy(variances), new_var, rtol=1e-13)
    grads = batch_norm_backward(xp.asarray(gy), cache)
    naive = naive_batch_norm_backward(gy, x, gamma, running_mean, running_var, training)
    for got, want in zip(grads, naive):
        numpy.testing.assert_allclose(backend.to_numpy(got), want, rtol=1e-10, atol=1e-12)


def test_eval_mode_leaves_the_running_statistics_alone():
    x, gamma, beta, running_mean, running_var = problem((2, 3, 2, 2))
    means, variances = running_mean.copy(), running_var.copy()
    batch_norm_forward(x, gamma, beta, means, variances, training=False)
    numpy.testing.assert_array_equal(means, running_mean)
    numpy.testing.assert_array_equal(variances, running_var)


def test_training_without_running_statistics_tracks_nothing():
    x, gamma, beta, running_mean, running_var = problem((3, 2, 2, 2))
    y, _ = batch_norm_forward(x, gamma, beta, training=True)
    numpy.testing.assert_allclose(y, naive_batch_norm(x, gamma, beta, running_mean, running_var, True)[0],
                                  rtol=1e-12, atol=1e-12)


# --- gradient checks (central differences), float64 -------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_pair(shape, training):
    x, gamma, beta, running_mean, running_var = problem(shape, seed=2)
    forward = functools.partial(batch_norm_forward, running_mean=running_mean, running_var=running_var,
                                training=training)
    report = gradcheck((forward, batch_norm_backward), x, gamma, beta, tolerance=1e-7,
                       names=["x", "gamma", "beta"])
    assert report.max_rel_error < 1e-7


@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_through_the_layer(training):
    layer = nn.BatchNorm2d(3).astype(numpy.float64)
    rng = numpy.random.default_rng(3)
    layer.weight.data, layer.bias.data = rng.standard_normal(3), rng.standard_normal(3)
    layer(mg.tensor(rng.standard_normal((4, 3, 2, 2)), dtype=numpy.float64))   # running stats move
    layer.train(training)
    x = rng.standard_normal((2, 3, 3, 2))
    assert gradcheck(layer, x, tolerance=1e-7).passed
    report = gradcheck(lambda t, g, b: F.batch_norm(t, g, b, layer.running_mean, layer.running_var,
                                                    training=training),
                       x, layer.weight.data, layer.bias.data, tolerance=1e-7)
    assert report.max_rel_error < 1e-7


# --- PyTorch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (6, 4), (1, 2, 3, 3), (5, 2, 1, 1)])
@pytest.mark.parametrize("training", [True, False])
def test_matches_torch(shape, training):
    torch = pytest.importorskip("torch")
    x, gamma, beta, running_mean, running_var = problem(shape, seed=4)
    gy = numpy.random.default_rng(5).standard_normal(shape)
    means, variances = running_mean.copy(), running_var.copy()
    y, cache = batch_norm_forward(x, gamma, beta, means, variances, training=training, momentum=0.3)
    gx, g_gamma, g_beta = batch_norm_backward(gy, cache)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    t_means, t_variances = torch.tensor(running_mean), torch.tensor(running_var)
    ty = torch.nn.functional.batch_norm(tx, t_means, t_variances, tg, tb, training=training,
                                        momentum=0.3, eps=EPS)
    ty.backward(torch.tensor(gy))
    numpy.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(means, t_means.numpy(), rtol=1e-13)
    numpy.testing.assert_allclose(variances, t_variances.numpy(), rtol=1e-13)
    for ours, theirs in ((gx, tx), (g_gamma, tg), (g_beta, tb)):
        numpy.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_layer_matches_torch_over_training_steps_then_eval_in_float32():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm2d(4, momentum=0.2), torch.nn.BatchNorm2d(4, momentum=0.2)
    rng = numpy.random.default_rng(6)
    for step in range(3):
        x = (rng.standard_normal((3, 4, 5, 5)) * (step + 1) + step).astype(numpy.float32)
        numpy.testing.assert_allclose(ours(mg.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                      rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-5)
    numpy.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-5)
    x = rng.standard_normal((2, 4, 3, 3)).astype(numpy.float32)
    out = ours.eval()(mg.tensor(x))
    assert out.dtype == numpy.float32 and ours.running_mean.dtype == numpy.float32
    numpy.testing.assert_allclose(out.numpy(), theirs.eval()(torch.tensor(x)).detach().numpy(),
                                  rtol=1e-5, atol=1e-5)


# --- float32 -------------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
def test_float32_stays_float32(training):
    x, gamma, beta, running_mean, running_var = (a.astype(numpy.float32) for a in problem((2, 3, 4, 4)))
    y, cache = batch_norm_forward(x, gamma, beta, running_mean, running_var, training=training)
    assert y.dtype == numpy.float32 and running_mean.dtype == running_var.dtype == numpy.float32
    assert all(g.dtype == numpy.float32 for g in batch_norm_backward(numpy.ones_like(y), cache))


# --- hypothesis: random shapes ----------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 4), channels=st.integers(1, 4), h=st.integers(1, 3), w=st.integers(1, 3),
       flat=st.booleans(), training=st.booleans(), momentum=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       seed=st.integers(0, 2**16))
def test_property_matches_loops(n, channels, h, w, flat, training, momentum, seed):
    shape = (n, channels) if flat else (n, channels, h, w)
    if training and (n if flat else n * h * w) < 2:
        shape = (n + 1,) + shape[1:]                  # training needs two values per channel
    x, gamma, beta, running_mean, running_var = problem(shape, seed)
    gy = numpy.random.default_rng(seed + 1).standard_normal(shape)
    means, variances = running_mean.copy(), running_var.copy()
    y, cache = batch_norm_forward(x, gamma, beta, means, variances, training=training, momentum=momentum)
    expected, new_mean, new_var = naive_batch_norm(x, gamma, beta, running_mean, running_var, training,
                                                   momentum)
    numpy.testing.assert_allclose(y, expected, rtol=1e-11, atol=1e-11)
    numpy.testing.assert_allclose(means, new_mean, rtol=1e-12, atol=1e-14)
    numpy.testing.assert_allclose(variances, new_var, rtol=1e-12, atol=1e-14)
    gx, g_gamma, g_beta = batch_norm_backward(gy, cache)
    naive = naive_batch_norm_backward(gy, x, gamma, running_mean, running_var, training)
    for got, want in zip((gx, g_gamma, g_beta), naive):
        numpy.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
    if training:    # y ignores adding a constant to a channel: each channel's gx sums to 0
        axes = (0,) + tuple(range(2, len(shape)))
        assert numpy.all(numpy.abs(gx.sum(axis=axes)) <= 1e-12 * rounding_scale(gy, x, gamma, axes))


def rounding_scale(gy, x, gamma, axes):
    """Per channel, the sum of the magnitudes of the terms the training backward adds up,
    |gamma| / sigma * sum_i (|g_i| + mean|g| + |xhat_i| mean|g xhat|): its rounding is relative to it."""
    broadcast = (1, -1) + (1,) * (x.ndim - 2)
    sigma = numpy.sqrt(x.var(axis=axes) + EPS)
    xhat = (x - x.mean(axis=axes).reshape(broadcast)) / sigma.reshape(broadcast)
    terms = (numpy.abs(gy) + numpy.abs(gy).mean(axis=axes, keepdims=True)
             + numpy.abs(xhat) * numpy.abs(gy * xhat).mean(axis=axes, keepdims=True))
    return numpy.abs(gamma) / sigma * terms.sum(axis=axes)


# --- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,match", [
    (dict(x=numpy.ones((2, 3, 4))), r"batch_norm: expected a floating-point input of shape \(N, C, H, W\) "
                                    r"or \(N, C\), got shape \(2, 3, 4\)"),
    (dict(x=numpy.ones((2, 3, 2, 2), dtype=numpy.int64)), r"batch_norm: .*dtype int64"),
    (dict(gamma=numpy.ones(4)), r"batch_norm: gamma must have shape \(3,\), .*got shape \(4,\)"),
    (dict(beta=None), r"batch_norm: needs beta of shape \(3,\), got None"),
    (dict(running_mean=numpy.zeros(2), running_var=numpy.ones(2)),
     r"batch_norm: running_mean must have shape \(3,\).*got shape \(2,\)"),
    (dict(running_var=None), r"batch_norm: give both running_mean and running_var, or neither"),
    (dict(running_mean=None, running_var=None, training=False),
     r"batch_norm: evaluation mode \(training=False\) normalizes with running_mean and running_var"),
    (dict(running_var=numpy.ones(3, dtype=numpy.float32)),
     r"batch_norm: running_var must have the input's dtype and device \(float64, cpu\), "
     r"got \(float32, cpu\)"),
    (dict(eps=0.0), r"batch_norm: eps must be positive .*got 0.0"),
    (dict(momentum=1.5), r"batch_norm: momentum must be in \[0, 1\], got 1.5"),
    (dict(x=numpy.ones((1, 3, 1, 1))), r"batch_norm: training mode needs more than one value per channel "
                                       r"\(N\*H\*W > 1\).*got input shape \(1, 3, 1, 1\)"),
    (dict(x=numpy.ones((1, 3))), r"batch_norm: training mode needs more than one value.*\(1, 3\)"),
])
def test_bad_input_names_the_op(bad, match):
    args = dict(x=numpy.ones((2, 3, 2, 2)), gamma=numpy.ones(3), beta=numpy.zeros(3),
                running_mean=numpy.zeros(3), running_var=numpy.ones(3), training=True)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        F.batch_norm(args.pop("x"), args.pop("gamma"), args.pop("beta"), **args)


def test_one_value_per_channel_is_fine_in_eval_mode():
    x, gamma, beta, running_mean, running_var = problem((1, 3, 1, 1))
    y = F.batch_norm(x, gamma, beta, running_mean, running_var, training=False)
    numpy.testing.assert_allclose(y.numpy(), naive_batch_norm(x, gamma, beta, running_mean, running_var,
                                                              False)[0], rtol=1e-12)


def test_layer_errors_name_the_layer():
    layer = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3, eps=1e-05, momentum=0.1\): batch_norm: expected input "
                                         r"of shape \(N, 3, H, W\), got shape \(2, 3\)"):
        layer(mg.tensor(numpy.ones((2, 3))))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3, .*\): batch_norm: gamma must have "
                                         r"shape \(4,\)"):
        layer(mg.ones((2, 4, 2, 2)))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3, .*\): expected an example of shape "
                                         r"\(3, H, W\), got \(4, 2, 2\)"):
        layer.output_shape((4, 2, 2))
    with pytest.raises(ValueError, match=r"BatchNorm2d: num_features must be a positive int, got 0"):
        nn.BatchNorm2d(0)


# --- the layer: shapes, costs, buffers -------------------------------------------------------
def test_layer_shape_costs_and_parameters():
    layer = nn.BatchNorm2d(8)
    assert layer.output_shape((8, 5, 7)) == (8, 5, 7)
    assert layer.multiply_adds((8, 5, 7)) == 0 and layer.depth() == 0
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.num_parameters() == 16                        # gamma and beta; buffers are not learned
    numpy.testing.assert_array_equal(layer.weight.numpy(), numpy.ones(8))
    numpy.testing.assert_array_equal(layer.bias.numpy(), numpy.zeros(8))
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False, rng=0), nn.BatchNorm2d(8), nn.ReLU())
    assert model.depth() == 1 and model.multiply_adds((3, 6, 6)) == 8 * 3 * 9 * 4 * 4


def small_model():
    return nn.Sequential(conv=nn.Conv2d(2, 3, 3, bias=False, rng=0), bn=nn.BatchNorm2d(3))


def trained(model, seed=0, steps=2):
    """The model after ``steps`` training forwards (its running statistics have moved)."""
    rng = numpy.random.default_rng(seed)
    for _ in range(steps):
        model(mg.tensor(rng.standard_normal((4, 2, 5, 5)) + seed, dtype=numpy.float32))
    return model


def test_state_dict_saves_and_loads_the_running_statistics(tmp_path):
    source, target = trained(small_model(), seed=1), small_model()
    state = source.state_dict()
    assert list(state) == ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]
    assert not numpy.allclose(state["bn.running_mean"], 0)
    numpy.savez(tmp_path / "model.npz", **state)
    running_mean = target.bn.running_mean
    with numpy.load(tmp_path / "model.npz", allow_pickle=False) as saved:
        load_weights(target, dict(saved))                          # checkpoint's check knows buffers
    assert target.bn.running_mean is running_mean                  # loaded in place
    numpy.testing.assert_array_equal(target.bn.running_var, source.bn.running_var)
    x = mg.randn(2, 2, 5, 5, seed=3)
    numpy.testing.assert_array_equal(source.eval()(x).numpy(), target.eval()(x).numpy())


def test_load_state_dict_requires_the_buffers_with_their_shapes():
    model = small_model()
    state = model.state_dict()
    with pytest.raises(ValueError, match=r"missing parameters \['bn.running_var'\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "bn.running_var"})
    state["bn.running_mean"] = numpy.zeros(4)
    with pytest.raises(ValueError, match=r"buffer 'bn.running_mean' expected shape \(3,\), got \(4,\)"):
        model.load_state_dict(state)


def test_astype_casts_the_buffers_and_reassignment_keeps_them_registered():
    model = small_model().astype(numpy.float64)
    assert model.bn.running_mean.dtype == model.bn.running_var.dtype == numpy.float64
    assert dict(model.named_buffers())["bn.running_var"] is model.bn.running_var
    model.bn.running_mean = numpy.full(3, 2.0)
    assert model.state_dict()["bn.running_mean"].tolist() == [2.0, 2.0, 2.0]


def test_to_moves_the_buffers(xp):
    model = trained(small_model())
    device = "cpu" if xp is numpy else "cuda"
    before = model.state_dict()
    model.to(device)
    assert all(backend.device_of(array) == backend.parse_device(device)
               for _, array in model.named_buffers())
    out = model.eval()(mg.Tensor(xp.ones((1, 2, 5, 5), dtype=numpy.float32)))
    assert out.device == backend.parse_device(device)
    for name, value in model.state_dict().items():
        numpy.testing.assert_array_equal(value, before[name])
