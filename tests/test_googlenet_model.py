"""GoogLeNet built from Table 1: shapes at every row, the Inception module against
an independent computation, the training/eval API, the loss, initialisation,
width and small inputs."""
import math

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from minigrad import Tensor, backend, nn
from minigrad import functional as F
from minigrad.nn import scale_channels
from googlenet import sizes
from googlenet.model import AuxClassifier, GoogLeNet, GoogLeNetOutput, Inception, googlenet_loss
from googlenet.summary import layer_shapes
from googlenet.table import TABLE_1, row


def small_model(**options):
    settings = dict(num_classes=7, width=1 / 16, input_size=32, seed=0)
    settings.update(options)
    return GoogLeNet(**settings)


def images(n, size, seed=0, channels=3):
    return numpy.random.default_rng(seed).standard_normal((n, channels, size, size)).astype(numpy.float32)


# --- every row's output size, through the real ops -------------------------------------------
def test_map_sizes_at_224_are_table_1s():
    computed = sizes.row_sizes(224)
    assert [computed[r.name].size_out for r in TABLE_1] == [r.out_size for r in TABLE_1]
    assert [computed[r.name].size_out for r in TABLE_1 if r.kind in ("conv", "maxpool")] == \
        [112, 56, 56, 28, 14, 7]


def test_forward_at_224_gives_every_output_size_of_the_table():
    model = small_model(input_size=224, num_classes=1000).eval()
    x = Tensor(images(1, 224))
    seen = {}
    for name in model.layer_names:
        x = getattr(model, name)(x)
        if model.table_row[name] is not None:
            seen[model.table_row[name]] = x.shape
    for r in TABLE_1:
        if r.kind == "softmax":
            continue
        shape = seen[r.name]
        spatial = shape[2:] if len(shape) == 4 else (1, 1)
        assert spatial == (r.out_size, r.out_size), r.name
    assert x.shape == (1, 1000)


def test_channels_at_full_width_are_table_1s():
    model = GoogLeNet(input_size=224)
    for r in TABLE_1:
        if r.kind == "inception":
            module = getattr(model, "inception" + r.name)
            assert module.widths == r.widths and module.out_channels == r.out_channels
        elif r.kind == "conv":
            assert getattr(model, r.name).out_channels == r.out_channels
    assert model.conv2_reduce.out_channels == row("conv2").reduce
    assert model.linear.in_features == 1024 and model.linear.out_features == 1000


# --- the Inception module against branch-by-branch arithmetic --------------------------------
def naive_max_pool_3x3_same(x):
    """3x3/1 max pool, padding 1, padding never wins (loops, the obvious way)."""
    n, c, h, w = x.shape
    out = numpy.empty_like(x)
    for i in range(h):
        for j in range(w):
            window = x[:, :, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


def conv_relu(x, layer, padding):
    y = F.conv2d(Tensor(x), layer.weight, layer.bias, padding=padding).numpy()
    return numpy.maximum(y, 0)


def test_inception_concatenates_its_four_branches_in_table_order():
    rng = numpy.random.default_rng(1)
    module = Inception(6, (2, 3, 4, 1, 5, 3), rng=rng).astype(numpy.float64)
    x = -numpy.abs(rng.standard_normal((2, 6, 5, 5)))          # all negative: -inf pool padding matters
    expected = numpy.concatenate([
        conv_relu(x, module.branch1x1.conv, 0),
        conv_relu(conv_relu(x, module.branch3x3.reduce, 0), module.branch3x3.conv, 1),
        conv_relu(conv_relu(x, module.branch5x5.reduce, 0), module.branch5x5.conv, 2),
        conv_relu(naive_max_pool_3x3_same(x), module.branch_pool.proj, 0)], axis=1)
    out = module(Tensor(x)).numpy()
    assert out.shape == (2, 2 + 4 + 5 + 3, 5, 5) and module.out_channels == 14
    numpy.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_inception_gives_the_branch_by_branch_values_and_gradients(batch_norm):
    """The three 1x1 convolutions on the module's input run as one with stacked filters (no
    batch norm) or one by one (batch norm): either way the output and every gradient are
    those of the four branches run one after the other (``nn.Concat``), in float64."""
    rng = numpy.random.default_rng(2)
    module = Inception(6, (2, 3, 4, 1, 5, 3), rng=rng, batch_norm=batch_norm).astype(numpy.float64)
    x_data = rng.standard_normal((2, 6, 5, 5))
    upstream = rng.standard_normal((2, 14, 5, 5))
    results = []
    for forward in (module.forward, lambda x: nn.Concat.forward(module, x)):
        module.zero_grad()
        x = Tensor(x_data, requires_grad=True)
        out = forward(x)
        out.backward(upstream)
        results.append([out.numpy(), x.grad] + [p.grad for p in module.parameters()])
    for merged, branch_by_branch in zip(*results):
        numpy.testing.assert_allclose(merged, branch_by_branch, rtol=1e-12, atol=1e-12)


def test_inception_widths_make_the_layers():
    module = Inception(192, row("3a").widths)
    assert isinstance(module, nn.Concat) and module.axis == 1
    weights = [(name, p.shape) for name, p in module.named_parameters() if name.endswith("weight")]
    assert weights == [("branch1x1.conv.weight", (64, 192, 1, 1)),
                       ("branch3x3.reduce.weight", (96, 192, 1, 1)),
                       ("branch3x3.conv.weight", (128, 96, 3, 3)),
                       ("branch5x5.reduce.weight", (16, 192, 1, 1)),
                       ("branch5x5.conv.weight", (32, 16, 5, 5)),
                       ("branch_pool.proj.weight", (32, 192, 1, 1))]


# --- training mode, eval mode and the loss ----------------------------------------------------
def test_training_mode_returns_main_and_auxiliary_logits():
    model = small_model().train()
    out = model(images(3, 32))
    assert isinstance(out, GoogLeNetOutput)
    assert [t.shape for t in out] == [(3, 7)] * 3


def test_eval_mode_and_no_aux_heads_return_the_main_logits_only():
    model = small_model().eval()
    out = model(images(3, 32))
    assert isinstance(out, Tensor) and out.shape == (3, 7)
    plain = small_model(aux_heads=False).train()
    assert isinstance(plain(images(3, 32)), Tensor)
    assert plain.aux1 is None and not any(n.startswith("aux") for n, _ in plain.named_parameters())


def test_eval_mode_is_deterministic_and_matches_between_models_with_and_without_aux_heads():
    x = images(2, 32)
    with_aux, without = small_model().eval(), small_model(aux_heads=False).eval()
    numpy.testing.assert_array_equal(with_aux(x).numpy(), with_aux(x).numpy())
    numpy.testing.assert_array_equal(with_aux(x).numpy(), without(x).numpy())


def test_loss_is_main_plus_three_tenths_of_each_auxiliary_loss():
    model = small_model().train()
    labels = numpy.array([0, 3, 6])
    out = model(images(3, 32))
    parts = [F.cross_entropy(t, labels).item() for t in out]
    expected = parts[0] + 0.3 * (parts[1] + parts[2])
    assert googlenet_loss(out, labels).item() == pytest.approx(expected, rel=1e-6)
    assert googlenet_loss(out.logits, labels).item() == pytest.approx(parts[0], rel=1e-6)
    assert googlenet_loss(out, labels, aux_weight=0.0).item() == pytest.approx(parts[0], rel=1e-6)


def test_backward_reaches_every_parameter_in_training_mode():
    model = small_model(width=1 / 8).train()
    googlenet_loss(model(images(4, 32)), numpy.array([0, 1, 2, 3])).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []


# --- initialisation ----------------------------------------------------------------------------
def test_same_seed_same_model_other_seed_other_model():
    a, b, c = GoogLeNet(seed=3, input_size=64), GoogLeNet(seed=3, input_size=64), GoogLeNet(seed=4, input_size=64)
    state_a, state_b, state_c = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(numpy.array_equal(state_a[k], state_b[k]) for k in state_a)
    assert not numpy.array_equal(state_a["conv1.weight"], state_c["conv1.weight"])
    x = images(2, 64)
    numpy.testing.assert_array_equal(a(x).logits.numpy(), b(x).logits.numpy())   # same dropout masks


def test_aux_heads_do_not_change_the_main_weights():
    with_aux, without = small_model().state_dict(), small_model(aux_heads=False).state_dict()
    assert all(numpy.array_equal(without[k], with_aux[k]) for k in without)


def test_caffe_initialisation():
    model = GoogLeNet()
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            assert numpy.all(module.bias.numpy() == numpy.float32(0.2)), name
            fan_in = module.weight.size // module.weight.shape[0]
            assert numpy.abs(module.weight.numpy()).max() <= math.sqrt(3 / fan_in), name
    assert numpy.all(model.aux1.fc.bias.numpy() == numpy.float32(0.2))
    for classifier in (model.linear, model.aux1.classifier, model.aux2.classifier):
        assert numpy.all(classifier.bias.numpy() == 0)
    weights = model.inception4e.branch3x3.conv.weight.numpy()        # 160 * 9 inputs: variance 1/fan_in
    assert weights.var() == pytest.approx(1 / (160 * 9), rel=0.02)


# --- width multiplier ----------------------------------------------------------------------------
@pytest.mark.parametrize("channels, width, expected", [
    (64, 1.0, 64), (64, 0.5, 32), (16, 1 / 16, 1), (24, 1 / 16, 2), (48, 1 / 16, 3), (1, 0.01, 1),
    (208, 0.25, 52), (100, 0.333, 33)])
def test_scale_channels_rounds_half_up_and_keeps_one(channels, width, expected):
    assert scale_channels(channels, width) == expected


def test_width_scales_every_channel_count():
    model = small_model(width=0.5)
    assert model.conv1.out_channels == 32 and model.conv2.out_channels == 96
    assert model.inception5b.widths == (192, 96, 192, 24, 64, 64)
    assert model.aux1.conv.out_channels == 64 and model.aux1.fc.out_features == 512
    assert model.linear.in_features == model.inception5b.out_channels == 512


# --- small inputs ------------------------------------------------------------------------------------
def test_digits_size_input_works_and_says_what_adapted():
    model = small_model(input_size=32).train()
    out = model(images(2, 32))
    assert [t.shape for t in out] == [(2, 7)] * 3
    assert model.pool4.kernel_size == 2                       # its 3x3 window exceeds the 2x2 map
    assert model.aux1.pool.kernel_size == 2 and model.aux1.fc.in_features == model.aux1.conv.out_channels
    notes = " ".join(sizes.adaptations(32))
    assert "pool4" in notes and "global average" in notes and "auxiliary" in notes
    assert sizes.adaptations(224) == []


def test_aux_pool_is_5x5_stride_3_at_224():
    model = GoogLeNet()
    assert (model.aux1.pool.kernel_size, model.aux1.pool.stride) == (5, 3)
    assert model.aux1.fc.in_features == 4 * 4 * 128
    assert sizes.aux_pool(14) == (5, 3, 4) and sizes.aux_pool(6) == (5, 3, 2) and sizes.aux_pool(4) == (4, 3, 1)


def test_smallest_usable_input_is_31():
    assert sizes.smallest_input_size() == 31
    out = small_model(input_size=31).eval()(images(1, 31))
    assert out.shape == (1, 7)


@settings(max_examples=15, deadline=None)
@given(size=st.integers(31, 120))
def test_any_usable_size_runs_with_the_planned_shapes(size):
    model = small_model(input_size=size, width=1 / 32).train()
    planned = {s.name: s.out_shape for s in layer_shapes(model)}
    x, taps = Tensor(images(1, size)), {}
    for name in model.layer_names:
        x = getattr(model, name)(x)
        assert x.shape[1:] == planned[name], (size, name)
        taps[model.table_row[name]] = x
    assert x.shape == (1, 7)
    for head, row_name in (("aux1", "4a"), ("aux2", "4d")):
        assert getattr(model, head)(taps[row_name]).shape == (1, 7)
    assert [r.size_out for r in sizes.row_sizes(size).values()] == sorted(
        (r.size_out for r in sizes.row_sizes(size).values()), reverse=True)


@pytest.mark.parametrize("size", [30, 28, 16, 1])
def test_too_small_input_names_the_smallest_size(size):
    with pytest.raises(ValueError, match=r"too small.*smallest usable input is 31x31"):
        small_model(input_size=size)


def test_wrong_input_shape_names_expected_and_got():
    model = small_model(input_size=32)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, 32, 32\).*got shape "
                                         r"\(2, 3, 64, 64\).*input_size=64"):
        model(images(2, 64))
    with pytest.raises(ValueError, match=r"got shape \(2, 1, 32, 32\)"):
        model(images(2, 32, channels=1))


def test_the_model_reports_its_shape_cost_and_depth_like_every_module():
    model = GoogLeNet()                             # the paper's: 224x224, 1000 classes
    assert model.output_shape((3, 224, 224)) == (1000,)
    assert model.multiply_adds((3, 224, 224)) == 1_582_671_872     # the main path, as in Table 1
    assert model.depth() == 22
    main = [s for s in layer_shapes(model) if not s.name.startswith("aux")]
    assert model.multiply_adds((3, 224, 224)) == sum(s.multiply_adds for s in main)
    assert [name for name, _ in model.main_path().named_children()] == model.layer_names
    assert model.aux_taps() == {"aux1": "inception4a", "aux2": "inception4d"}
    assert small_model(aux_heads=False).aux_taps() == {}


@settings(max_examples=8, deadline=None)
@given(size=st.integers(31, 90), classes=st.integers(1, 12))
def test_the_reported_output_shape_is_the_real_forwards(size, classes):
    model = small_model(input_size=size, num_classes=classes, width=1 / 32).eval()
    assert model(Tensor(images(1, size))).shape[1:] == model.output_shape((3, size, size)) == (classes,)


def test_the_reports_refuse_an_example_the_model_was_not_built_for():
    model = small_model(input_size=32)
    for method in (model.output_shape, model.multiply_adds):
        with pytest.raises(ValueError, match=r"^GoogLeNet: expected an example of shape \(3, 32, 32\) .*"
                                             r"input_size=32\), got \(3, 64, 64\)$"):
            method((3, 64, 64))


@pytest.mark.parametrize("option, value", [("width", 0), ("num_classes", 0), ("in_channels", 1.5),
                                           ("dropout", 1.0), ("aux_dropout", -0.1), ("input_size", "32")])
def test_bad_options_raise(option, value):
    with pytest.raises(ValueError, match=option):
        small_model(**{option: value})


def test_grayscale_input_channels():
    model = small_model(in_channels=1).eval()
    assert model(images(2, 32, channels=1)).shape == (2, 7)


def test_aux_classifier_layout():
    head = AuxClassifier(512, 1000, 14, 128, 1024, 0.7, numpy.random.default_rng(0), 0)
    assert [type(m).__name__ for m in head.children()] == [
        "AvgPool2d", "ConvReLU", "Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert head.dropout.p == 0.7 and head.fc.in_features == 2048


# --- the same model on a GPU ----------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not backend.is_gpu_available(), reason=f"needs a GPU: {backend.gpu_unavailable_reason()}")
def test_forward_on_the_gpu_matches_a_twin_left_on_the_cpu():
    """Two models from one seed: one moved to the GPU, its twin never moved."""
    on_cpu, on_gpu = small_model(width=1 / 8).eval(), small_model(width=1 / 8).to("cuda").eval()
    assert all(p.device == backend.parse_device("cuda") for p in on_gpu.parameters())
    x = images(2, 32)
    got = backend.to_numpy(on_gpu(Tensor(x, device="cuda")).data)
    numpy.testing.assert_allclose(got, on_cpu(Tensor(x)).numpy(), rtol=1e-4, atol=1e-5)


# --- PyTorch as a second opinion on the whole wiring ---------------------------------------------
def torch_googlenet(model, x):
    """The same network written with torch.nn.functional and our parameters: Table 1's 3x3/2
    max pools unchanged (PyTorch's ceil mode lets a window overhang a small map), PyTorch's
    LRN. Returns the main logits and both auxiliary heads' logits (dropout off)."""
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional

    def conv(layer, h):
        weight, bias = (torch.from_numpy(p.numpy()) for p in (layer.weight, layer.bias))
        return torch.relu(tF.conv2d(h, weight, bias, stride=layer.stride, padding=layer.padding))

    def linear(layer, h):
        return h @ torch.from_numpy(layer.weight.numpy()).T + torch.from_numpy(layer.bias.numpy())

    def inception(m, h):
        return torch.cat([conv(m.branch1x1.conv, h), conv(m.branch3x3.conv, conv(m.branch3x3.reduce, h)),
                          conv(m.branch5x5.conv, conv(m.branch5x5.reduce, h)),
                          conv(m.branch_pool.proj, tF.max_pool2d(h, 3, 1, 1))], dim=1)

    def aux(head, h):
        kernel = min(5, h.shape[2])
        h = conv(head.conv, tF.avg_pool2d(h, kernel, 3, ceil_mode=True)).flatten(1)
        return linear(head.classifier, torch.relu(linear(head.fc, h)))

    def pool(h):
        return tF.max_pool2d(h, 3, 2, ceil_mode=True)

    def lrn(h):
        return tF.local_response_norm(h, 5, alpha=1e-4, beta=0.75, k=1.0)

    h = lrn(pool(conv(model.conv1, torch.from_numpy(x))))
    h = pool(lrn(conv(model.conv2, conv(model.conv2_reduce, h))))
    h = pool(inception(model.inception3b, inception(model.inception3a, h)))
    h = inception(model.inception4a, h)
    aux1 = aux(model.aux1, h)
    h = inception(model.inception4d, inception(model.inception4c, inception(model.inception4b, h)))
    aux2 = aux(model.aux2, h)
    h = pool(inception(model.inception4e, h))
    h = inception(model.inception5b, inception(model.inception5a, h))
    return [t.numpy() for t in (linear(model.linear, h.mean(dim=(2, 3))), aux1, aux2)]


@pytest.mark.parametrize("size", [224, 32])
def test_matches_an_independent_pytorch_forward(size):
    model = GoogLeNet(num_classes=10, width=1 / 8, input_size=size, seed=2).astype(numpy.float64)
    x = numpy.random.default_rng(3).standard_normal((2, 3, size, size))
    expected = torch_googlenet(model, x)
    model.eval()
    logits, taps = Tensor(x), {}
    for name in model.layer_names:
        logits = getattr(model, name)(logits)
        taps[model.table_row[name]] = logits
    got = [logits.numpy(), model.aux1(taps["4a"]).numpy(), model.aux2(taps["4d"]).numpy()]
    for ours, theirs in zip(got, expected):
        numpy.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_array_equal(model(Tensor(x)).numpy(), got[0])
