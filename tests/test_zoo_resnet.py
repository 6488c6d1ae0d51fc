"""ResNet-18 and -34: parameter counts and multiply-adds by formula (Table 1 with option B
shortcuts), map sizes, depth, the basic block against PyTorch, and float64 gradient checks
of small-width models in training mode (batch statistics) and eval mode (running ones)."""
import numpy
import pytest

import minigrad as mg
import zoo
from minigrad import Tensor, nn, no_grad
from minigrad import functional as F
from minigrad.gradcheck import GradcheckError, directional_check, numerical_gradient, relative_error
from zoo.resnet import BasicBlock

WIDTHS = (64, 128, 256, 512)
BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


# --- counts by formula ------------------------------------------------------------------------
def conv_bn_parameters(in_channels, out_channels, kernel):
    """A convolution without bias, then BN's gamma and beta."""
    return kernel * kernel * in_channels * out_channels + 2 * out_channels


def block_parameters(in_channels, out_channels):
    """Two 3x3 conv-BN pairs, and a 1x1 conv-BN projection where the channels change."""
    total = (conv_bn_parameters(in_channels, out_channels, 3)
             + conv_bn_parameters(out_channels, out_channels, 3))
    if in_channels != out_channels:
        total += conv_bn_parameters(in_channels, out_channels, 1)
    return total


def resnet_parameters(blocks, num_classes=1000, in_channels=3, stem_kernel=7, widths=WIDTHS):
    total = conv_bn_parameters(in_channels, widths[0], stem_kernel)
    previous = widths[0]
    for count, channels in zip(blocks, widths):
        total += block_parameters(previous, channels) + (count - 1) * block_parameters(channels, channels)
        previous = channels
    return total + previous * num_classes + num_classes


def resnet_multiply_adds(blocks, projections=True, size=224, widths=WIDTHS, num_classes=1000):
    """Each weight once per output position: the 7x7/2 stem on 112x112, then the stages on
    56, 28, 14, 7 (the first 3x3 of a stage, and its projection, at the stage's size)."""
    side = size // 2
    total = 7 * 7 * 3 * widths[0] * side * side
    side //= 2                                                  # the max pool
    previous = widths[0]
    for index, (count, channels) in enumerate(zip(blocks, widths)):
        side = side if index == 0 else side // 2
        area = side * side
        total += 9 * previous * channels * area + 9 * channels * channels * area
        if projections and previous != channels:
            total += previous * channels * area
        total += (count - 1) * 2 * 9 * channels * channels * area
        previous = channels
    return total + previous * num_classes


@pytest.fixture(scope="module")
def models():
    return {name: zoo.build(name) for name in BLOCKS}


@pytest.mark.parametrize("name,expected", [("resnet18", 11_689_512), ("resnet34", 21_797_672)])
def test_parameter_counts(models, name, expected):
    assert resnet_parameters(BLOCKS[name]) == expected
    assert models[name].num_parameters() == expected


@pytest.mark.parametrize("name,madds,paper", [("resnet18", 1_814_073_344, 1.8),
                                               ("resnet34", 3_663_761_408, 3.6)])
def test_multiply_adds_and_the_papers_flops(models, name, madds, paper):
    assert resnet_multiply_adds(BLOCKS[name]) == madds
    assert models[name].multiply_adds((3, 224, 224)) == madds
    # the paper's column (1.8 and 3.6 x 10^9) is what the path without projections gives
    assert round(resnet_multiply_adds(BLOCKS[name], projections=False) / 1e9, 1) == paper


@pytest.mark.parametrize("name,depth", [("resnet18", 18), ("resnet34", 34)])
def test_depth_counts_convolutions_and_fc(models, name, depth):
    assert models[name].depth() == depth


def test_buffers_are_the_running_statistics_of_every_batch_norm(models):
    model = models["resnet18"]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 1 + 2 * 8 + 3                 # stem, two per block, three projections
    buffers = dict(model.named_buffers())
    assert len(buffers) == 2 * len(norms)
    assert "conv3_x.0.shortcut.bn.running_var" in buffers
    assert set(model.state_dict()) == {*dict(model.named_parameters()), *buffers}


# --- shapes -----------------------------------------------------------------------------------
def stage_shapes(model, size, in_channels=3):
    shapes, shape = {}, (in_channels, size, size)
    for name, layer in model.named_children():
        shape = shapes[name] = layer.output_shape(shape)
    return shapes


def test_map_sizes_are_table_1s(models):
    shapes = stage_shapes(models["resnet34"], 224)
    assert shapes["conv1"] == (64, 112, 112) and shapes["maxpool"] == (64, 56, 56)
    assert [shapes[f"conv{i}_x"] for i in range(2, 6)] == [(64, 56, 56), (128, 28, 28), (256, 14, 14),
                                                           (512, 7, 7)]
    assert shapes["avgpool"] == (512, 1, 1) and shapes["fc"] == (1000,)
    assert [len(getattr(models["resnet34"], f"conv{i}_x")) for i in range(2, 6)] == [3, 4, 6, 3]


def test_small_input_stem_and_forward_shapes():
    model = zoo.build("resnet18", num_classes=10, in_channels=1, input_size=32, width=0.25)
    names = [name for name, _ in model.named_children()]
    assert names[:4] == ["conv1", "bn1", "relu", "conv2_x"]             # no max pool
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    shapes = stage_shapes(model, 32, in_channels=1)
    assert [shapes[f"conv{i}_x"] for i in range(2, 6)] == [(16, 32, 32), (32, 16, 16), (64, 8, 8),
                                                           (128, 4, 4)]
    assert model.num_parameters() == resnet_parameters(BLOCKS["resnet18"], 10, 1, 3, (16, 32, 64, 128))
    out = model(mg.randn(2, 1, 32, 32, seed=0))
    assert out.shape == (2, 10) and out.dtype == numpy.float32


def test_imagenet_stem_from_64_and_any_size_runs():
    model = zoo.build("resnet18", num_classes=3, input_size=64, width=1 / 16)
    assert isinstance(model.maxpool, nn.MaxPool2d)
    assert stage_shapes(model, 64)["conv5_x"] == (32, 2, 2)
    assert model(mg.randn(2, 3, 64, 64, seed=1)).shape == (2, 3)
    assert model.eval()(mg.randn(1, 3, 45, 45, seed=2)).shape == (1, 3)     # odd size, batch 1


def test_registry_and_option_errors():
    assert zoo.load_all()["resnet18"][1] == 224 and zoo.load_all()["resnet34"][1] == 224
    assert zoo.build("resnet18", num_classes=10).fc.out_features == 10
    with pytest.raises(ValueError, match=r"resnet: width must be finite and positive, got 0"):
        zoo.build("resnet18", width=0)
    with pytest.raises(ValueError, match=r"resnet: input_size must be a positive int, got 0"):
        zoo.build("resnet34", input_size=0)


def test_initialization_and_seed(models):
    model = models["resnet18"]
    weight = model.conv4_x[1].branch.conv2.weight.numpy()            # 256 x 256 x 3 x 3
    assert abs(weight.std() / numpy.sqrt(2 / (256 * 9)) - 1) < 0.01  # He: std sqrt(2 / fan_in)
    bn = model.conv4_x[1].branch.bn2
    assert numpy.all(bn.weight.numpy() == 1) and numpy.all(bn.bias.numpy() == 0)
    assert model.conv1.bias is None
    small = [zoo.build("resnet18", width=0.125, input_size=32, seed=s) for s in (0, 0, 1)]
    assert numpy.array_equal(small[0].fc.weight.numpy(), small[1].fc.weight.numpy())
    assert not numpy.array_equal(small[0].fc.weight.numpy(), small[2].fc.weight.numpy())


# --- the residual block -------------------------------------------------------------------------
def test_block_shortcuts_and_composed_costs():
    identity, projection = BasicBlock(8, 8), BasicBlock(8, 16, stride=2)
    assert len(identity.shortcut) == 0 and identity.output_shape((8, 5, 5)) == (8, 5, 5)
    assert projection.output_shape((8, 5, 5)) == (16, 3, 3)
    assert projection.multiply_adds((8, 5, 5)) == (9 * 8 * 16 + 9 * 16 * 16 + 8 * 16) * 9
    assert identity.depth() == projection.depth() == 2
    x = mg.randn(2, 8, 5, 5, seed=3)
    numpy.testing.assert_array_equal(identity(x).numpy(), F.relu(identity.branch(x) + x).numpy())
    identity.shortcut = nn.Sequential(nn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"BasicBlock: its branch gives \(8, 5, 5\) but its "
                                         r"shortcut \(8, 2, 2\)"):
        identity.output_shape((8, 5, 5))


@pytest.mark.parametrize("training", [True, False])
def test_projection_block_matches_torch(training):
    torch = pytest.importorskip("torch")
    block = BasicBlock(3, 6, stride=2, rng=0).astype(numpy.float64)
    rng = numpy.random.default_rng(4)
    for bn in (m for m in block.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.weight.data, bn.bias.data = rng.uniform(0.5, 1.5, 6), rng.standard_normal(6)
        bn.running_mean[...], bn.running_var[...] = rng.standard_normal(6), rng.uniform(0.5, 2, 6)
    x = rng.standard_normal((2, 3, 7, 7))
    gy = rng.standard_normal((2, 6, 4, 4))

    def torch_conv_bn(t, conv, bn, stride, padding, relu):
        t = torch.nn.functional.conv2d(t, torch.tensor(conv.weight.numpy()), stride=stride,
                                       padding=padding)
        t = torch.nn.functional.batch_norm(t, torch.tensor(bn.running_mean), torch.tensor(bn.running_var),
                                           torch.tensor(bn.weight.numpy()), torch.tensor(bn.bias.numpy()),
                                           training=training)
        return torch.relu(t) if relu else t

    tx = torch.tensor(x, requires_grad=True)
    branch = torch_conv_bn(tx, block.branch.conv1, block.branch.bn1, 2, 1, True)
    branch = torch_conv_bn(branch, block.branch.conv2, block.branch.bn2, 1, 1, False)
    ty = torch.relu(branch + torch_conv_bn(tx, block.shortcut.conv, block.shortcut.bn, 2, 0, False))
    ty.backward(torch.tensor(gy))
    ours_x = Tensor(x, requires_grad=True)
    y = block.train(training)(ours_x)
    y.backward(gy)
    numpy.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(ours_x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-12)


# --- gradient checks, float64 ---------------------------------------------------------------------
def checkable(name, input_size, training, width=1 / 16, batch=2, classes=5, seed=0):
    """loss() of a float64 model on fixed data, and the tensors to check (parameters and x).
    For eval mode the running statistics first see three training batches."""
    model = zoo.build(name, num_classes=classes, input_size=input_size, width=width, seed=seed)
    model.astype(numpy.float64)
    rng = numpy.random.default_rng(seed + 1)
    shape = (batch, 3, input_size, input_size)
    with no_grad():
        for _ in range(3):
            model(Tensor(rng.standard_normal(shape) * 2 + 1))
    model.train(training)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    labels = rng.integers(0, classes, size=batch)
    return (lambda: F.cross_entropy(model(x), labels)), list(model.parameters()) + [x]


@pytest.mark.parametrize("name,input_size", [("resnet18", 32), ("resnet18", 64), ("resnet34", 32)])
@pytest.mark.parametrize("training", [True, False])
def test_whole_network_gradients_match_finite_differences(name, input_size, training):
    loss, tensors = checkable(name, input_size, training)
    for seed in (0, 1):
        report = directional_check(loss, tensors, seed=seed, tolerance=1e-6)
        assert report.rel_error < 1e-6 and abs(report.analytic) > 1e-6, report


def test_every_parameter_tensor_element_wise_in_training_mode():
    """A few entries of each weight, gamma and beta (and of x) perturbed one at a time: an
    error in a small tensor (a BN's beta) would be diluted in one direction through all."""
    loss, tensors = checkable("resnet18", 32, training=True)
    loss().backward()
    rng = numpy.random.default_rng(0)

    def value():
        with no_grad():
            return float(loss().item())

    assert len(tensors) == 20 + 2 * 20 + 2 + 1        # convolutions, their BNs' gamma and beta, fc, x
    for tensor in tensors:
        grad = tensor.grad.reshape(-1)
        picked = numpy.unique([int(numpy.argmax(numpy.abs(grad))), *rng.choice(grad.size, 2)])
        numerical = numerical_gradient(value, tensor.data, indices=picked).reshape(-1)[picked]
        error, _ = relative_error(grad[picked], numerical)
        assert error < 1e-6 and numpy.abs(grad[picked]).max() > 0, (tensor.shape, error)


def test_a_wrong_batch_norm_backward_is_caught(monkeypatch):
    """g_x of every batch norm 1% too large, in training mode: the directional check fails."""
    loss, tensors = checkable("resnet18", 32, training=True)
    right = F.batch_norm.op.backward

    def wrong(gy, cache):
        gx, g_gamma, g_beta = right(gy, cache)
        return gx * 1.01, g_gamma, g_beta

    monkeypatch.setattr(F.batch_norm.op, "backward", wrong)
    with pytest.raises(GradcheckError, match="directional check failed"):
        directional_check(loss, tensors, tolerance=1e-6)


def test_state_dict_carries_the_running_statistics():
    source = zoo.build("resnet18", num_classes=4, input_size=32, width=1 / 16, seed=0)
    target = zoo.build("resnet18", num_classes=4, input_size=32, width=1 / 16, seed=1)
    source(mg.randn(4, 3, 32, 32, seed=5))                      # training: the running stats move
    target.load_state_dict(source.state_dict())
    x = mg.randn(2, 3, 32, 32, seed=6)
    numpy.testing.assert_array_equal(source.eval()(x).numpy(), target.eval()(x).numpy())
