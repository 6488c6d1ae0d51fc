"""GoogLeNet with batch normalization after every convolution (``batch_norm=True``): what it
adds and removes, what stays the same, and float64 gradient checks in training mode (batch
statistics, fixed dropout masks, both auxiliary heads) and in eval mode."""
import numpy
import pytest

import minigrad as mg
from minigrad import Tensor, nn, no_grad
from minigrad.gradcheck import directional_check
from googlenet.gradcheck import fixed_masks_loss
from googlenet.model import ConvReLU, GoogLeNet, GoogLeNetOutput, googlenet_loss


def convolutions(model):
    return [m for m in model.modules() if isinstance(m, ConvReLU)]


@pytest.fixture(scope="module")
def pair():
    return GoogLeNet(), GoogLeNet(batch_norm=True)


def test_each_convolution_trades_its_bias_for_gamma_and_beta(pair):
    plain, normed = pair
    filters = sum(conv.out_channels for conv in convolutions(plain))
    assert len(convolutions(plain)) == 3 + 9 * 6 + 2                   # stem, Inceptions, aux heads
    assert normed.num_parameters() == plain.num_parameters() - filters + 2 * filters
    assert filters == 7_536 and normed.num_parameters() == 13_385_816     # plain: 13,378,280
    for conv in convolutions(normed):
        assert conv.bias is None and conv.bn.num_features == conv.out_channels
    assert all(conv.bn is None for conv in convolutions(plain))
    assert "batch_norm=True" in normed.extra_repr() and "batch_norm" not in plain.extra_repr()


def test_weights_shapes_and_costs_are_the_plain_networks(pair):
    plain, normed = pair
    for ours, theirs in zip(convolutions(plain), convolutions(normed)):
        numpy.testing.assert_array_equal(ours.weight.numpy(), theirs.weight.numpy())   # same draws
    shape = (3, 224, 224)
    for name in plain.layer_names:                  # BN counts no multiply-adds and no depth
        layer, normed_layer = getattr(plain, name), getattr(normed, name)
        assert normed_layer.multiply_adds(shape) == layer.multiply_adds(shape)
        assert normed_layer.depth() == layer.depth()
        assert normed_layer.output_shape(shape) == layer.output_shape(shape)
        shape = layer.output_shape(shape)


def test_forward_in_both_modes_and_the_running_statistics():
    model = GoogLeNet(num_classes=4, width=1 / 8, input_size=32, batch_norm=True)
    x = mg.randn(3, 3, 32, 32, seed=0)
    out = model(x)
    assert isinstance(out, GoogLeNetOutput) and out.logits.shape == (3, 4)
    assert out.logits.dtype == numpy.float32
    assert not numpy.allclose(model.conv1.bn.running_mean, 0)          # training moved them
    state = model.state_dict()
    assert "inception3a.branch3x3.conv.bn.running_var" in state
    other = GoogLeNet(num_classes=4, width=1 / 8, input_size=32, batch_norm=True, seed=1)
    other.load_state_dict(state)
    numpy.testing.assert_array_equal(model.eval()(x).numpy(), other.eval()(x).numpy())


def checkable(training, batch_size=3, seed=0):
    """The paper's loss of a float64 width-1/8 model with batch norm, and its tensors, on 32x32.
    The running statistics are set to one training batch's (momentum 1 for it): with the
    initial ones (mean 0, var 1) the activations fade through the depth, as without batch
    norm, and the eval-mode derivative is too small for finite differences to check."""
    model = GoogLeNet(num_classes=5, width=1 / 8, input_size=32, batch_norm=True, seed=seed)
    model.astype(numpy.float64)
    rng = numpy.random.default_rng(seed + 1)
    shape = (batch_size, 3, 32, 32)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in norms:
        bn.momentum = 1.0
    with no_grad():
        model(Tensor(rng.standard_normal(shape)))
    for bn in norms:
        bn.momentum = 0.1
    model.train(training)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    labels = rng.integers(0, 5, size=batch_size)
    if training:
        return fixed_masks_loss(model, x, labels, seed), list(model.parameters()) + [x]
    return (lambda: googlenet_loss(model(x), labels)), list(model.parameters()) + [x]


@pytest.mark.parametrize("training", [True, False])
def test_whole_network_gradients_match_finite_differences(training):
    loss, tensors = checkable(training)
    assert sum(isinstance(t, nn.Parameter) for t in tensors) == 3 * 59 + 2 * 5   # conv, gamma, beta; fc
    for seed in (0, 1):
        report = directional_check(loss, tensors, seed=seed, tolerance=1e-6)
        assert report.rel_error < 1e-6 and abs(report.analytic) > 1e-6, report
