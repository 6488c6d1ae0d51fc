"""AlexNet and VGG (zoo/alexnet.py, zoo/vgg.py): exact parameter counts and multiply-adds
against formulas written out here from the papers' layer lists, output shapes at the papers'
inputs and at 32x32, the initialisations, and a float64 gradient check of each network.

Counting needs no weight values, so the full-size models of the count tests are built with
zero weights (``zero_weights``: a full VGG-16 drawn at random takes seconds); the real
initialisation is checked on narrower models."""
import math

import numpy
import pytest

import zoo
from minigrad import Tensor, nn
from minigrad import functional as F
from minigrad.gradcheck import GradcheckError, directional_check
from zoo.alexnet import alexnet
from zoo.vgg import vgg


@pytest.fixture
def zero_weights(monkeypatch):
    """Layers made inside the test get all-zero weights: same shapes, no random draws."""
    monkeypatch.setattr(nn.init, "make_weight",
                        lambda shape, rng, weight_init="xavier", dtype=numpy.float32: numpy.zeros(shape, dtype))


# --- the papers' layers, written out ---------------------------------------------------------------
def conv_parameters(filters, channels_per_filter, kernel):
    return filters * channels_per_filter * kernel * kernel + filters       # weights + biases


def linear_parameters(n_in, n_out):
    return n_in * n_out + n_out


# AlexNet section 3.5: (filters, channels each filter sees, kernel, output side at 227)
ALEXNET_CONVS = [(96, 3, 11, 55), (256, 48, 5, 27), (384, 256, 3, 13), (384, 192, 3, 13), (256, 192, 3, 13)]
ALEXNET_CONVS_ONE_TOWER = [(96, 3, 11, 55), (256, 96, 5, 27), (384, 256, 3, 13), (384, 384, 3, 13),
                           (256, 384, 3, 13)]
ALEXNET_LINEARS = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]


def alexnet_parameters(convs):
    return (sum(conv_parameters(f, c, k) for f, c, k, _ in convs)
            + sum(linear_parameters(i, o) for i, o in ALEXNET_LINEARS))


def alexnet_multiply_adds(convs):
    return (sum(f * c * k * k * side * side for f, c, k, side in convs)
            + sum(i * o for i, o in ALEXNET_LINEARS))


# VGG Table 1: 3x3 convolutions per block, the blocks' channels 64, 128, 256, 512, 512
VGG_CONVS_PER_BLOCK = {"A": (1, 1, 2, 2, 2), "B": (2, 2, 2, 2, 2), "D": (2, 2, 3, 3, 3), "E": (2, 2, 4, 4, 4)}
VGG_CHANNELS = (64, 128, 256, 512, 512)


def vgg_convs(per_block, input_size=224):
    """[(in channels, out channels, kernel, output side), ...] of a configuration of 3x3 convs."""
    convs, channels, side = [], 3, input_size
    for count, filters in zip(per_block, VGG_CHANNELS):
        for _ in range(count):
            convs.append((channels, filters, 3, side))
            channels = filters
        side //= 2
    return convs


def vgg_linears(input_size=224, classes=1000):
    return [(512 * (input_size // 32) ** 2, 4096), (4096, 4096), (4096, classes)]


def vgg_parameters(convs, linears):
    return (sum(conv_parameters(o, i, k) for i, o, k, _ in convs)
            + sum(linear_parameters(i, o) for i, o in linears))


# --- exact counts -----------------------------------------------------------------------------------
def test_alexnet_has_60965224_parameters_with_its_two_towers(zero_weights):
    assert alexnet_parameters(ALEXNET_CONVS) == 60_965_224
    model = alexnet()
    assert model.num_parameters() == 60_965_224
    assert model.conv2.weight.shape == (256, 48, 5, 5) and model.conv3.weight.shape == (384, 256, 3, 3)


def test_single_tower_alexnet_has_62378344_parameters(zero_weights):
    assert alexnet_parameters(ALEXNET_CONVS_ONE_TOWER) == 62_378_344
    model = alexnet(towers=1)
    assert model.num_parameters() == 62_378_344
    assert model.multiply_adds((3, 227, 227)) == alexnet_multiply_adds(ALEXNET_CONVS_ONE_TOWER) == 1_135_256_096


@pytest.mark.parametrize("name, configuration, expected", [
    ("vgg11", "A", 132_863_336), ("vgg13", "B", 133_047_848),
    ("vgg16", "D", 138_357_544), ("vgg19", "E", 143_667_240)])
def test_vgg_parameter_counts(zero_weights, name, configuration, expected):
    convs = vgg_convs(VGG_CONVS_PER_BLOCK[configuration])
    assert vgg_parameters(convs, vgg_linears()) == expected
    model = zoo.build(name)
    assert model.num_parameters() == expected
    assert model.depth() == len(convs) + 3 == int(name[3:])             # weight layers


def test_vgg_configuration_c_swaps_three_3x3_for_1x1(zero_weights):
    d = vgg_parameters(vgg_convs(VGG_CONVS_PER_BLOCK["D"]), vgg_linears())
    fewer = (256 * 256 + 512 * 512 * 2) * (9 - 1)        # the third conv of blocks 3, 4, 5
    assert vgg("C").num_parameters() == d - fewer == 133_638_952          # Table 2: 134 million


# --- multiply-adds per image ------------------------------------------------------------------------
def test_alexnet_multiply_adds(zero_weights):
    model = alexnet()
    # conv1: each of the 96 * 3*11*11 weights at each of the 55*55 output positions
    assert model.conv1.multiply_adds((3, 227, 227)) == 96 * 3 * 11 * 11 * 55 * 55 == 105_415_200
    assert model.conv2.multiply_adds((96, 27, 27)) == 256 * 48 * 5 * 5 * 27 * 27          # half: groups
    assert model.multiply_adds((3, 227, 227)) == alexnet_multiply_adds(ALEXNET_CONVS) == 724_406_816


def test_vgg16_multiply_adds(zero_weights):
    convs = vgg_convs(VGG_CONVS_PER_BLOCK["D"])
    by_formula = (sum(i * o * k * k * side * side for i, o, k, side in convs)
                  + sum(i * o for i, o in vgg_linears()))
    assert zoo.build("vgg16").multiply_adds((3, 224, 224)) == by_formula == 15_470_264_320


# --- shapes ----------------------------------------------------------------------------------------
def test_alexnet_shapes_at_227(zero_weights):
    model = alexnet()
    sizes = {"conv1": 55, "pool1": 27, "conv2": 27, "pool2": 13, "conv5": 13, "pool5": 6}
    shape = (3, 227, 227)
    for name, layer in model.named_children():
        shape = layer.output_shape(shape)
        if name in sizes:
            assert shape[1:] == (sizes[name], sizes[name]), name
    assert shape == (1000,)
    assert model.fc6.in_features == 256 * 6 * 6
    # no padding: 224 does not give the paper's 55
    assert alexnet(input_size=224).conv1.output_shape((3, 224, 224)) == (96, 54, 54)


def test_alexnet_runs_at_227_and_at_32():
    x = numpy.random.default_rng(0).standard_normal((2, 3, 227, 227)).astype(numpy.float32)
    assert alexnet(width=1 / 8).eval()(Tensor(x)).shape == (2, 1000)
    small = zoo.build("alexnet", input_size=32, in_channels=1, num_classes=10, width=1 / 4)
    assert small.conv1.kernel_size == (5, 5) and small.conv1.stride == (1, 1)
    assert small.output_shape((1, 32, 32)) == (10,) and small.fc6.in_features == 64 * 3 * 3
    digits = numpy.random.default_rng(1).standard_normal((3, 1, 32, 32)).astype(numpy.float32)
    assert small(Tensor(digits)).shape == (3, 10)


def test_vgg_shapes_at_224_and_32():
    x = numpy.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(numpy.float32)
    model = zoo.build("vgg16", width=1 / 16)
    assert model.fc6.in_features == 32 * 7 * 7 and model(Tensor(x)).shape == (1, 1000)
    small = zoo.build("vgg16", input_size=32, in_channels=1, num_classes=10, width=1 / 8)
    assert small.fc6.in_features == 64 * 1 * 1                           # the five pools: 32 -> 1
    digits = numpy.random.default_rng(1).standard_normal((2, 1, 32, 32)).astype(numpy.float32)
    assert small(Tensor(digits)).shape == (2, 10)


def test_alexnet_smallest_inputs():
    assert alexnet(input_size=67, width=1 / 16).conv1.kernel_size == (11, 11)
    assert alexnet(input_size=66, width=1 / 16).conv1.kernel_size == (5, 5)
    assert alexnet(input_size=15, width=1 / 16).output_shape((3, 15, 15)) == (1000,)
    with pytest.raises(ValueError, match=r"alexnet: input_size must be at least 15 .*got 14"):
        alexnet(input_size=14)
    with pytest.raises(ValueError, match=r"alexnet: towers must be 1 or 2, got 3"):
        alexnet(towers=3)


def test_vgg_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match=r"vgg: input_size must be at least 32 .*got 31"):
        vgg("D", input_size=31)
    with pytest.raises(ValueError, match=r"vgg: unknown configuration 'F': expected one of A, B, C, D, E"):
        vgg("F")


# --- registry and initialisation -------------------------------------------------------------------
def test_registered_with_the_papers_input_sizes():
    models = zoo.load_all()
    assert models["alexnet"][1] == 227
    assert {name: models[name][1] for name in ("vgg11", "vgg13", "vgg16", "vgg19")} == dict.fromkeys(
        ("vgg11", "vgg13", "vgg16", "vgg19"), 224)


def test_alexnet_initialisation_is_the_papers():
    model = alexnet(width=1 / 4, seed=3)
    weights = numpy.concatenate([p.data.ravel() for name, p in model.named_parameters()
                                 if name.endswith("weight")])
    assert abs(weights.std() - 0.01) < 1e-4 and abs(weights.mean()) < 1e-5
    ones = {"conv2", "conv4", "conv5", "fc6", "fc7"}
    for name, layer in model.named_children():
        if getattr(layer, "bias", None) is not None:
            assert numpy.all(layer.bias.data == (1.0 if name in ones else 0.0)), name
    assert model.norm1.alpha / model.norm1.size == 1e-4 and model.norm1.k == 2.0     # the paper's LRN
    again = alexnet(width=1 / 4, seed=3)
    assert all(numpy.array_equal(a.data, b.data) for a, b in zip(model.parameters(), again.parameters()))


def test_vgg_initialisation_is_glorots():
    model = vgg("A", width=1 / 4, seed=5)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert numpy.all(p.data == 0), name
        else:
            fan_in, fan_out = nn.init.fan_in_and_out(p.shape)
            limit = math.sqrt(6 / (fan_in + fan_out))
            assert numpy.abs(p.data).max() <= limit and numpy.abs(p.data).max() > 0.9 * limit, name


# --- gradient checks -------------------------------------------------------------------------------
def directional_error(model, input_size, in_channels=3, classes=5, seed=0):
    """The float64 directional check of ``model`` (training mode, fixed dropout masks)."""
    model.astype(numpy.float64).train()
    rng = numpy.random.default_rng(seed)
    x = Tensor(rng.standard_normal((2, in_channels, input_size, input_size)), requires_grad=True)
    labels = rng.integers(0, classes, size=2)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]

    def loss():
        for i, dropout in enumerate(dropouts):
            dropout.reseed(seed + i)               # the same masks in every evaluation
        return F.cross_entropy(model(x), labels)

    report = directional_check(loss, list(model.parameters()) + [x], eps=1e-6, tolerance=1e-6, seed=seed)
    assert report.analytic != 0
    return report.rel_error


@pytest.mark.parametrize("input_size, in_channels", [(67, 3), (32, 1)])     # paper stem, small stem
def test_alexnet_gradients(input_size, in_channels):
    model = alexnet(num_classes=5, in_channels=in_channels, input_size=input_size, width=1 / 16)
    assert model.conv2.groups == 2
    assert directional_error(model, input_size, in_channels) < 1e-6


@pytest.mark.parametrize("configuration", ["A", "B", "C", "D", "E"])
def test_vgg_gradients(configuration):
    model = vgg(configuration, num_classes=5, input_size=32, width=1 / 16)
    assert directional_error(model, 32) < 1e-6


def test_a_wrong_grouped_backward_is_caught(monkeypatch):
    """The grouped convolutions' weight gradients 1% too large: the check fails."""
    conv = F.conv2d.op
    forward, backward = conv.forward, conv.backward

    def forward_keeping_groups(*inputs, groups=1, **params):
        y, cache = forward(*inputs, groups=groups, **params)
        return y, (cache, groups)

    def wrong_backward(gy, cache, **which_inputs):       # the op says which inputs need a gradient
        inner, groups = cache
        gx, gW, gb = backward(gy, inner, **which_inputs)
        return gx, gW * (1.01 if groups > 1 else 1.0), gb

    monkeypatch.setattr(conv, "forward", forward_keeping_groups)
    monkeypatch.setattr(conv, "backward", wrong_backward)
    model = alexnet(num_classes=5, input_size=67, width=1 / 16)
    with pytest.raises(GradcheckError, match="directional check failed"):
        directional_error(model, 67)
