"""nn: registration and dotted names, train/eval, devices, state_dict round trips and
their errors, repr, containers, shapes and costs without running (against the real
forward), initialisers, layer errors, and gradient checks of a small network through
the Module API (every parameter, element by element)."""
import numpy
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import backend, nn
from minigrad.gradcheck import directional_check, gradcheck, numerical_gradient, relative_error


class TwoLayer(nn.Module):
    def __init__(self, rng=None):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 3, rng=rng), nn.ReLU())
        self.scale = nn.Parameter(numpy.ones(3, dtype=numpy.float32))
        self.head = nn.Linear(3, 2, bias=False, rng=rng)

    def forward(self, x):
        return self.head(self.features(x) * self.scale)


def small_network(seed=0):
    """Conv, ReLU, overlapping ceil-mode max pool, LRN with a large alpha, an
    inception-like Concat, dropout, flatten, linear: (N, 3, 6, 6) -> (N, 5)."""
    rng = numpy.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, rng=rng, bias_value=0.2),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.LocalResponseNorm(size=3, alpha=1.0, beta=0.75, k=1.0),
        nn.Concat(nn.Conv2d(4, 2, 1, rng=rng),
                  nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), nn.Conv2d(4, 2, 1, rng=rng))),
        nn.Dropout(0.3, seed=0),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5, rng=rng, weight_init="glorot"),
    )


# --- registration, walking, modes -----------------------------------------------------------
def test_parameters_are_registered_in_order_with_dotted_names():
    model = TwoLayer(rng=numpy.random.default_rng(0))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "features.0.weight", "features.0.bias", "head.weight"]
    assert [type(m).__name__ for m in model.children()] == ["Sequential", "Linear"]
    assert [name for name, _ in model.named_modules()] == ["", "features", "features.0", "features.1", "head"]
    assert len(list(model.modules())) == 5
    assert model.num_parameters() == 3 + 12 + 3 + 6


def test_reassignment_unregisters_and_shared_parameters_count_once():
    layer = nn.Linear(2, 2, rng=0)
    layer.bias = None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    del layer.weight
    assert list(layer.named_parameters()) == []
    layer.weight = nn.Parameter(numpy.zeros((2, 2)))
    shared = nn.Sequential(layer, layer)
    assert len(list(shared.parameters())) == 1


def test_assigning_before_super_init_is_a_clear_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.layer = nn.ReLU()

    with pytest.raises(AttributeError, match=r"Forgetful: call super\(\).__init__\(\) before .*'layer'"):
        Forgetful()


def test_train_and_eval_reach_every_module():
    model = small_network()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model[4].eval()
    assert model.training and not model[4][1][0].training


def test_zero_grad_and_default_float32():
    model = small_network()
    x = mg.randn(2, 3, 6, 6, seed=0)
    out = model(x)
    assert out.dtype == numpy.float32 and out.shape == (2, 5)
    assert all(p.dtype == numpy.float32 for p in model.parameters())
    F.cross_entropy(out, [0, 4]).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_to_moves_parameters_in_place(xp):
    model = TwoLayer(rng=numpy.random.default_rng(0))
    device = "cpu" if xp is numpy else "cuda"
    weight, before = model.head.weight, model.state_dict()          # NumPy copies
    assert model.to(device) is model and model.head.weight is weight
    assert all(p.device == backend.parse_device(device) for p in model.parameters())
    for name, value in model.state_dict().items():
        numpy.testing.assert_array_equal(value, before[name])
    out = model(mg.Tensor(xp.ones((2, 4), dtype=numpy.float32)))
    assert out.device == backend.parse_device(device)
    state = model.state_dict()
    assert all(isinstance(v, numpy.ndarray) for v in state.values())
    model.load_state_dict(state)
    assert model.head.weight.device == backend.parse_device(device)


# --- saving and loading ----------------------------------------------------------------------
def test_state_dict_round_trip_through_npz(tmp_path):
    source, target = small_network(seed=1), small_network(seed=2)
    state = source.state_dict()
    state["0.weight"][...] = 0.5                  # a copy: the model is untouched
    assert not numpy.all(source[0].weight.numpy() == 0.5)
    numpy.savez(tmp_path / "model.npz", **source.state_dict())
    with numpy.load(tmp_path / "model.npz", allow_pickle=False) as saved:
        target.load_state_dict(dict(saved))
    x = mg.randn(2, 3, 6, 6, seed=3)
    numpy.testing.assert_array_equal(source.eval()(x).numpy(), target.eval()(x).numpy())
    assert target[0].weight.dtype == numpy.float32


def test_load_state_dict_errors_name_the_parameter():
    model = TwoLayer(rng=0)
    state = model.state_dict()
    missing = {k: v for k, v in state.items() if k != "head.weight"}
    with pytest.raises(ValueError, match=r"missing parameters \['head.weight'\], unexpected keys \[\]"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"missing parameters \[\], unexpected keys \['head.bias'\]"):
        model.load_state_dict({**state, "head.bias": numpy.zeros(2)})
    state["features.0.weight"] = numpy.zeros((3, 5))
    with pytest.raises(ValueError, match=r"parameter 'features.0.weight' expected shape \(3, 4\), got \(3, 5\)"):
        model.load_state_dict(state)


# --- printing and containers -------------------------------------------------------------------
def test_repr_is_nested_and_shows_each_configuration():
    model = nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.LocalResponseNorm(5),
        nn.Concat(nn.Conv2d(64, 8, (1, 3), padding=(0, 1), bias=False), nn.AvgPool2d(3, 1, 1)),
        nn.GlobalAvgPool2d(), nn.Flatten(), nn.Dropout(0.4), nn.Linear(72, 10))
    assert repr(model) == """Sequential(
  (0): Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
  (1): ReLU()
  (2): MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
  (3): LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=1.0)
  (4): Concat(
    axis=1
    (0): Conv2d(64, 8, kernel_size=(1, 3), stride=1, padding=(0, 1), bias=False)
    (1): AvgPool2d(kernel_size=3, stride=1, padding=1)
  )
  (5): GlobalAvgPool2d()
  (6): Flatten()
  (7): Dropout(p=0.4)
  (8): Linear(72, 10)
)"""
    assert repr(model[0].bias).startswith("Parameter([0., 0.,")


def test_sequential_indexing_slicing_and_length():
    model = small_network()
    assert len(model) == 8 and isinstance(model[-1], nn.Linear)
    head = model[6:]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is model[7]
    assert [type(m).__name__ for m in model][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    with pytest.raises(TypeError, match="Sequential: expected a Module, got int"):
        nn.Sequential(3)


def test_containers_name_children_by_keyword():
    rng = numpy.random.default_rng(0)
    block = nn.Concat(left=nn.Conv2d(4, 2, 1, rng=rng),
                      right=nn.Sequential(pool=nn.MaxPool2d(3, 1, 1), proj=nn.Conv2d(4, 3, 1, rng=rng)))
    assert [name for name, _ in block.named_parameters()] == [
        "left.weight", "left.bias", "right.proj.weight", "right.proj.bias"]
    assert block.right.proj is block[1][1] and len(block) == 2
    assert block(mg.randn(1, 4, 3, 3, seed=0)).shape == (1, 5, 3, 3)
    with pytest.raises(TypeError, match="Sequential: give the modules either all by position or all by keyword"):
        nn.Sequential(nn.ReLU(), relu=nn.ReLU())
    with pytest.raises(TypeError, match="Concat: expected a Module, got int"):
        nn.Concat(a=3)


def test_concat_joins_branches_on_channels():
    rng = numpy.random.default_rng(0)
    block = nn.Concat(nn.Conv2d(4, 2, 1, rng=rng), nn.Conv2d(4, 3, 3, padding=1, rng=rng),
                      nn.MaxPool2d(3, stride=1, padding=1))
    x = mg.randn(2, 4, 5, 5, seed=1)
    out = block(x)
    assert out.shape == (2, 9, 5, 5)
    numpy.testing.assert_array_equal(out.numpy()[:, 2:5], block[1](x).numpy())


def test_conv_layers_expose_their_shapes():
    conv = nn.Conv2d(3, 64, 7, stride=2, padding=3)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == \
        (3, 64, (7, 7), (2, 2), (3, 3))
    assert conv.weight.shape == (64, 3, 7, 7) and conv.bias.shape == (64,)
    pool = nn.MaxPool2d(3, 2)
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 2, 0, False)
    assert not isinstance(nn.AvgPool2d(3), nn.MaxPool2d)


# --- shapes and costs without running, against the real forward ---------------------------------
LAYERS_AND_EXAMPLE_SHAPES = [
    (lambda rng: nn.Linear(6, 4, rng=rng), (6,)),
    (lambda rng: nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0), rng=rng), (3, 9, 8)),
    (lambda rng: nn.MaxPool2d(3, stride=2), (2, 8, 8)),
    (lambda rng: nn.MaxPool2d(3, stride=2, ceil_mode=True), (2, 8, 8)),             # 4, not 3
    (lambda rng: nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True), (2, 5, 5)),  # no window in the padding
    (lambda rng: nn.AvgPool2d(3, stride=1, padding=1), (2, 5, 6)),
    (lambda rng: nn.AvgPool2d(5, stride=3, ceil_mode=True), (4, 14, 14)),
    (lambda rng: nn.GlobalAvgPool2d(), (3, 5, 4)),
    (lambda rng: nn.LocalResponseNorm(3), (5, 4, 4)),
    (lambda rng: nn.Dropout(0.5, seed=0), (3, 4, 4)),
    (lambda rng: nn.ReLU(), (3, 4)),
    (lambda rng: nn.Flatten(), (3, 4, 5)),
    (lambda rng: nn.Flatten(start_axis=2), (3, 4, 5)),
    (lambda rng: nn.Flatten(start_axis=-2), (3, 4, 5)),
    (lambda rng: small_network(), (3, 6, 6)),
    (lambda rng: nn.Concat(nn.ReLU(), nn.MaxPool2d((1, 2), stride=1), axis=-1), (2, 3, 3)),
    (lambda rng: nn.Concat(nn.ReLU(), nn.Flatten(), axis=1), (7,)),
]


@pytest.mark.parametrize("make_layer, example_shape", LAYERS_AND_EXAMPLE_SHAPES)
def test_output_shape_is_the_shape_forward_gives(make_layer, example_shape):
    layer = make_layer(numpy.random.default_rng(0)).train()
    out = layer(mg.randn(2, *example_shape, seed=1))
    assert out.shape == (2, *layer.output_shape(example_shape))


def test_multiply_adds_and_depth_count_the_weighted_layers():
    rng = numpy.random.default_rng(0)
    conv = nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0), rng=rng)
    out = conv(mg.randn(1, 3, 9, 8, seed=1))
    assert out.shape == (1, 5, 5, 7)
    assert conv.multiply_adds((3, 9, 8)) == (5 * 3 * 3 * 2) * (5 * 7) and conv.depth() == 1
    assert nn.Linear(6, 4).multiply_adds((6,)) == 24 and nn.Linear(6, 4).depth() == 1
    for layer in (nn.MaxPool2d(2), nn.AvgPool2d(2), nn.GlobalAvgPool2d(), nn.LocalResponseNorm(3),
                  nn.Dropout(), nn.ReLU(), nn.Flatten()):
        assert (layer.multiply_adds((3, 4, 4)), layer.depth()) == (0, 0), layer
    network = small_network()           # conv 3->4 3x3 on 6x6; two 1x1 convs on 3x3; linear 36->5
    assert network.multiply_adds((3, 6, 6)) == 4 * 3 * 9 * 36 + 2 * (2 * 4 * 9) + 36 * 5
    assert network.depth() == 1 + 1 + 1            # the Concat counts its longest branch once
    deeper = nn.Concat(nn.Conv2d(4, 2, 1), nn.Sequential(nn.Conv2d(4, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 3)))
    assert deeper.depth() == 2


def test_a_module_that_does_not_report_its_shape_is_an_error_not_zero():
    model = TwoLayer(rng=0)
    for call in (lambda: model.output_shape((4,)), lambda: model.multiply_adds((4,)), model.depth):
        with pytest.raises(NotImplementedError, match=r"^TwoLayer does not define "):
            call()
    inside = nn.Sequential(nn.Linear(4, 4), TwoLayer(rng=0))
    with pytest.raises(NotImplementedError, match=r"^TwoLayer does not define multiply_adds"):
        inside.multiply_adds((4,))
    with pytest.raises(NotImplementedError, match=r"^TwoLayer does not define depth"):
        inside.depth()


def test_shape_errors_without_running():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8, .*expected an example with 3 channels, got shape \(4, 8, 8\)"):
        nn.Conv2d(3, 8, 3).output_shape((4, 8, 8))
    with pytest.raises(ValueError, match=r"Linear\(6, 2\): expected an example of shape \(6,\), got \(2, 3\)"):
        nn.Linear(6, 2).output_shape((2, 3))
    with pytest.raises(ValueError, match=r"Concat: its branches give shapes \[\(2, 4, 4\), \(2, 2, 2\)\]"):
        nn.Concat(nn.ReLU(), nn.MaxPool2d(2)).output_shape((2, 4, 4))
    with pytest.raises(ValueError, match="joins along the batch axis"):
        nn.Concat(nn.ReLU(), axis=0).output_shape((2, 4, 4))
    with pytest.raises(ValueError, match="merges the batch axis"):
        nn.Flatten(start_axis=0).output_shape((2, 4, 4))


# --- initialisers -----------------------------------------------------------------------------
def test_fans_and_initialiser_statistics():
    assert nn.init.fan_in_and_out((64, 3, 7, 7)) == (3 * 49, 64 * 49)
    assert nn.init.fan_in_and_out((10, 20)) == (20, 10)
    rng = numpy.random.default_rng(0)
    fan_in, fan_out = 32 * 9, 64 * 9
    caffe = nn.init.caffe_xavier((64, 32, 3, 3), rng)
    glorot = nn.init.glorot_uniform((64, 32, 3, 3), rng)
    he = nn.init.he_normal((64, 32, 3, 3), rng)
    assert caffe.dtype == glorot.dtype == he.dtype == numpy.float32
    assert numpy.abs(caffe).max() <= numpy.sqrt(3 / fan_in)
    assert numpy.abs(glorot).max() <= numpy.sqrt(6 / (fan_in + fan_out))
    # 18432 samples: the variances are within a few percent of the formulas
    assert caffe.var() == pytest.approx(1 / fan_in, rel=0.05)
    assert glorot.var() == pytest.approx(2 / (fan_in + fan_out), rel=0.05)
    assert he.std() == pytest.approx(numpy.sqrt(2 / fan_in), rel=0.05)
    numpy.testing.assert_array_equal(nn.init.constant((3,), 0.2), numpy.float32([0.2, 0.2, 0.2]))


def test_layers_use_the_named_initialiser_and_bias_value():
    conv = nn.Conv2d(8, 16, 3, rng=0, weight_init="he", bias_value=0.2)
    numpy.testing.assert_array_equal(conv.bias.numpy(), numpy.full(16, 0.2, dtype=numpy.float32))
    expected = nn.init.he_normal((16, 8, 3, 3), numpy.random.default_rng(0))
    numpy.testing.assert_array_equal(conv.weight.numpy(), expected)
    custom = nn.Linear(3, 2, weight_init=lambda shape, rng: numpy.ones(shape))
    assert custom.weight.dtype == numpy.float32 and custom.weight.numpy().sum() == 6
    with pytest.raises(ValueError, match=r"unknown weight_init 'kaiming': expected one of \['glorot', 'he', 'xavier'\]"):
        nn.Linear(3, 2, weight_init="kaiming")


def test_one_seed_builds_the_same_model():
    first, second, other = small_network(seed=5), small_network(seed=5), small_network(seed=6)
    for name, value in first.state_dict().items():
        numpy.testing.assert_array_equal(value, second.state_dict()[name])
    assert not numpy.array_equal(first.state_dict()["0.weight"], other.state_dict()["0.weight"])


# --- bad input names the layer -----------------------------------------------------------------
def test_layer_errors_name_the_layer_and_the_shapes():
    conv = nn.Conv2d(3, 64, 7, stride=2, padding=3)
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 64, kernel_size=7, stride=2, padding=3\): "
                                         r"conv2d: expected input with 3 channels, got shape \(1, 4, 16, 16\)$"):
        conv(mg.zeros((1, 4, 16, 16)))
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 64, .*\): conv2d: expected x of shape \(N, C, H, W\), "
                                         r"got shape \(3, 16, 16\)$"):
        conv(mg.zeros((3, 16, 16)))
    with pytest.raises(ValueError, match=r"^Linear\(36, 5\): linear: expected input of shape \(N, 36\), got shape \(2, 35\)"):
        nn.Linear(36, 5)(mg.zeros((2, 35)))
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=5, stride=5\): max_pool2d: .*kernel"):
        nn.MaxPool2d(5)(mg.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a pair of ints, got \(1, 2, 3\)"):
        nn.Conv2d(3, 4, (1, 2, 3))
    with pytest.raises(ValueError, match=r"stride must be an int or a pair of ints, got 1.5"):
        nn.MaxPool2d(3, stride=1.5)        # not silently truncated to 1
    with pytest.raises(ValueError, match=r"padding must be an int or a pair of ints, got 0.5"):
        mg.functional.conv2d(mg.zeros((1, 1, 4, 4)), mg.zeros((1, 1, 3, 3)), padding=0.5)



def test_a_layer_error_keeps_the_functions_error_as_its_cause():
    """The layer's name goes in front of the function's message, and the function's own error
    stays chained as the cause, with the traceback of the check that raised it."""
    with pytest.raises(ValueError) as caught:
        nn.MaxPool2d(5)(mg.zeros((1, 1, 3, 3)))
    cause = caught.value.__cause__
    assert isinstance(cause, ValueError) and str(cause).startswith("max_pool2d: ")
    assert str(caught.value) == f"MaxPool2d(kernel_size=5, stride=5): {cause}"
    assert cause.__traceback__ is not None

# --- gradients through the Module API -----------------------------------------------------------
def network_loss(model, x, labels):
    def loss():
        model[5].reseed(0)            # the same dropout mask on every evaluation
        return F.cross_entropy(model(x), labels)
    return loss


def test_every_parameter_of_a_small_network_passes_an_element_wise_check():
    model = small_network(seed=7).astype(numpy.float64)
    x = mg.Tensor(numpy.random.default_rng(8).standard_normal((2, 3, 6, 6)))
    loss = network_loss(model, x, numpy.array([1, 3]))
    loss().backward()
    for name, parameter in model.named_parameters():
        with mg.no_grad():
            numerical = numerical_gradient(lambda: loss().item(), parameter.data)
        error, _ = relative_error(parameter.grad, numerical)
        assert error < 1e-7, f"{name}: relative error {error:.2e}"


def test_input_gradient_and_directional_check_through_the_network():
    model = small_network(seed=9).astype(numpy.float64)
    x = numpy.random.default_rng(10).standard_normal((2, 3, 6, 6))
    report = gradcheck(lambda t: network_loss(model, t, numpy.array([0, 2]))(), x, tolerance=1e-7)
    assert report.max_rel_error < 1e-7
    x_tensor = mg.Tensor(x, requires_grad=True)
    tensors = [x_tensor, *model.parameters()]
    directional = directional_check(network_loss(model, x_tensor, numpy.array([0, 2])), tensors)
    assert directional.rel_error < 1e-8


def test_network_matches_torch_forward_and_gradients():
    torch = pytest.importorskip("torch")
    nn_t = torch.nn
    model = small_network(seed=11).astype(numpy.float64).eval()     # dropout off: deterministic
    reference = nn_t.Sequential(
        nn_t.Conv2d(3, 4, 3, padding=1), nn_t.ReLU(), nn_t.MaxPool2d(3, 2, ceil_mode=True),
        nn_t.LocalResponseNorm(3, alpha=1.0, beta=0.75, k=1.0)).double()
    branch_a, branch_b = nn_t.Conv2d(4, 2, 1).double(), nn_t.Conv2d(4, 2, 1).double()
    head = nn_t.Linear(36, 5).double()
    ours = dict(model.named_parameters())
    pairs = {"0": reference[0], "4.0": branch_a, "4.1.1": branch_b, "7": head}
    with torch.no_grad():
        for prefix, layer in pairs.items():
            layer.weight.copy_(torch.tensor(ours[prefix + ".weight"].numpy()))
            layer.bias.copy_(torch.tensor(ours[prefix + ".bias"].numpy()))
    x = numpy.random.default_rng(12).standard_normal((2, 3, 6, 6))
    labels = numpy.array([4, 1])
    loss = F.cross_entropy(model(mg.Tensor(x)), labels)
    loss.backward()
    features = reference(torch.tensor(x))
    pooled = torch.nn.functional.avg_pool2d(features, 3, 1, 1)
    joined = torch.cat([branch_a(features), branch_b(pooled)], dim=1)
    theirs = torch.nn.functional.cross_entropy(head(joined.flatten(1)), torch.tensor(labels))
    theirs.backward()
    assert loss.item() == pytest.approx(theirs.item(), rel=1e-12)
    for prefix, layer in pairs.items():
        numpy.testing.assert_allclose(ours[prefix + ".weight"].grad, layer.weight.grad.numpy(),
                                      rtol=1e-9, atol=1e-13)
