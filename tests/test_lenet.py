"""LeNet-5 (zoo/lenet.py): the paper's counts computed here by formula, Table I as printed,
each new layer against plain loops and PyTorch, float64 gradient checks of each layer and of
both whole networks, edge shapes and the errors."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

import zoo
from minigrad import Tensor, functional as F, nn, no_grad
from minigrad.gradcheck import directional_check, numerical_gradient, relative_error
from minigrad.optim import SGD
from zoo import lenet
from zoo.lenet import ConnectionTable, EuclideanRBF, ScaledTanh, Subsampling

# Table I of the paper as printed: rows are S2 maps 0-5, columns C3 maps 0-15, X = connected.
TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def paper_table():
    rows = TABLE_I.split()
    return tuple(tuple(i for i in range(6) if rows[i][j] == "X") for j in range(16))


def paper_counts(in_channels=1, classes=10):
    """Section II.B's trainable parameters per layer, by formula (the RBF's fixed weights
    are not trainable)."""
    kernel = 5 * 5
    connections = sum(len(inputs) for inputs in paper_table())
    return {"c1": 6 * in_channels * kernel + 6, "s2": 6 + 6, "c3": connections * kernel + 16,
            "s4": 16 + 16, "c5": 120 * 16 * kernel + 120, "f6": 84 * 120 + 84, "output": 0}


def float64(module):
    return module.astype(numpy.float64)


def images(shape, seed=0, dtype=numpy.float64):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- the counts -----------------------------------------------------------------------------------
def test_table_i_is_the_papers():
    assert lenet.CONNECTIONS == paper_table()
    assert sum(len(inputs) for inputs in lenet.CONNECTIONS) == 60


def test_lenet5_has_the_papers_60000_trainable_parameters():
    model = zoo.build("lenet5")
    counts = paper_counts()
    assert counts == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164, "output": 0}
    assert sum(counts.values()) == 60_000
    assert model.num_parameters() == 60_000
    for name, count in counts.items():
        assert getattr(model, name).num_parameters() == count, name
    assert model.output.prototypes.shape == (10, 84)          # 840 fixed weights, not parameters
    assert set(numpy.unique(model.output.prototypes)) == {-1.0, 1.0}


def test_lenet5_modern_counts():
    model = zoo.build("lenet5-modern")
    expected = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (120 * 16 * 25 + 120) + (84 * 120 + 84) + (10 * 84 + 10)
    assert expected == 61_706 and model.num_parameters() == expected
    assert model.depth() == 5 and model.output_shape((1, 32, 32)) == (10,)


def test_shapes_multiply_adds_and_depth_at_32():
    model = zoo.build("lenet5")
    shapes = {"c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5),
              "c5": (120, 1, 1), "f6": (84,), "output": (10,)}
    shape = (1, 32, 32)
    for name, layer in model.named_children():
        shape = layer.output_shape(shape)
        if name in shapes:
            assert shape == shapes[name], name
    # each weight once per output position; a subsampling coefficient once per output unit
    expected = 150 * 784 + 6 * 196 + 60 * 25 * 100 + 16 * 25 + 48000 + 10080 + 840
    assert model.multiply_adds((1, 32, 32)) == expected == 328_096
    assert model.depth() == 7                               # "7 layers, not counting the input"


def test_registered_with_the_papers_input_size():
    models = zoo.load_all()
    assert models["lenet5"][1] == models["lenet5-modern"][1] == 32
    built = zoo.build("lenet5", seed=3)
    direct = lenet.build(seed=3)
    for (name, a), (_, b) in zip(built.named_parameters(), direct.named_parameters()):
        assert numpy.array_equal(a.numpy(), b.numpy()), name


def test_paper_initialization_bounds():
    model = zoo.build("lenet5")
    assert numpy.abs(model.c1.weight.numpy()).max() <= 2.4 / 25
    assert numpy.abs(model.c5.weight.numpy()).max() <= 2.4 / 400
    assert numpy.abs(model.s2.weight.numpy()).max() <= 2.4 / 4
    fan_ins = [len(lenet.CONNECTIONS[j]) * 25 for j, inputs in enumerate(lenet.CONNECTIONS) for _ in inputs]
    limits = 2.4 / numpy.array(fan_ins)
    assert numpy.all(numpy.abs(model.c3.weight.numpy()).max(axis=(1, 2)) <= limits)
    assert numpy.abs(model.c3.weight.numpy()).max() > 2.4 / 100        # 3-input maps: +-0.032


# --- the scaled tanh ------------------------------------------------------------------------------
def test_scaled_tanh_maps_plus_minus_one_to_itself():
    f = ScaledTanh()
    y = f(Tensor(numpy.array([-1.0, 0.0, 1.0, 50.0]))).numpy()
    assert abs(y[0] + 1) < 1e-4 and y[1] == 0 and abs(y[2] - 1) < 1e-4 and y[3] == pytest.approx(1.7159)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=1, max_size=20))
def test_scaled_tanh_is_odd_bounded_and_the_formula(values):
    x = numpy.array(values)
    f = ScaledTanh()
    y = f(Tensor(x)).numpy()
    assert numpy.allclose(f(Tensor(-x)).numpy(), -y)
    assert numpy.all(numpy.abs(y) <= 1.7159)
    assert numpy.allclose(y, [1.7159 * numpy.tanh(2 * v / 3) for v in values])


# --- the subsampling layer ------------------------------------------------------------------------
def subsampling_loops(x, coefficient, bias):
    """y[n, c, i, j] = coefficient[c] * (sum of x[n, c, 2i:2i+2, 2j:2j+2]) + bias[c], by loops."""
    n, c, h, w = x.shape
    y = numpy.empty((n, c, h // 2, w // 2))
    for index in numpy.ndindex(*y.shape):
        b, ch, i, j = index
        total = sum(float(x[b, ch, 2 * i + di, 2 * j + dj]) for di in (0, 1) for dj in (0, 1))
        y[index] = float(coefficient[ch]) * total + float(bias[ch])
    return y


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(2, 9), st.integers(2, 9), st.integers(0, 99))
def test_subsampling_matches_loops(batch, channels, height, width, seed):
    layer = float64(Subsampling(channels, rng=seed))
    layer.bias.data = images(channels, seed + 1)
    x = images((batch, channels, height, width), seed)
    expected = subsampling_loops(x, layer.weight.numpy(), layer.bias.numpy())
    assert numpy.allclose(layer(Tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12)
    assert layer.output_shape((channels, height, width)) == expected.shape[1:]
    assert layer.multiply_adds((channels, height, width)) == channels * (height // 2) * (width // 2)


def test_subsampling_errors_name_the_layer():
    layer = Subsampling(6)
    with pytest.raises(ValueError, match=r"Subsampling\(6.*expected input of shape \(N, 6, H, W\), got shape \(2, 5, 8, 8\)"):
        layer(Tensor(numpy.zeros((2, 5, 8, 8), numpy.float32)))
    with pytest.raises(ValueError, match=r"Subsampling\(6.*avg_pool2d"):        # a 1x1 map has no 2x2 window
        layer(Tensor(numpy.zeros((1, 6, 1, 1), numpy.float32)))
    with pytest.raises(ValueError, match=r"expected an example with 6 channels, got shape \(3, 8, 8\)"):
        layer.output_shape((3, 8, 8))


# --- the connection table -------------------------------------------------------------------------
def table_loops(x, kernels, bias, connections):
    """C3 by loops: out[n, j] = bias[j] + sum over i in connections[j] of the valid
    cross-correlation of x[n, i] with that pair's kernel (numbered in the table's order)."""
    n, _, h, w = x.shape
    k = kernels.shape[-1]
    out = numpy.empty((n, len(connections), h - k + 1, w - k + 1))
    number = {pair: p for p, pair in enumerate((j, i) for j, inputs in enumerate(connections) for i in inputs)}
    for b, j, r, c in numpy.ndindex(*out.shape):
        total = float(bias[j])
        for i in connections[j]:
            kernel = kernels[number[(j, i)]]
            for di in range(k):
                for dj in range(k):
                    total += float(x[b, i, r + di, c + dj]) * float(kernel[di, dj])
        out[b, j, r, c] = total
    return out


def test_connection_table_matches_loops_and_counts_only_real_connections():
    layer = float64(ConnectionTable(6, lenet.CONNECTIONS, 5, rng=0))
    layer.bias.data = images(16, 1)
    x = images((2, 6, 14, 14))
    expected = table_loops(x, layer.weight.numpy(), layer.bias.numpy(), lenet.CONNECTIONS)
    assert numpy.allclose(layer(Tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12)
    assert layer.weight.shape == (60, 5, 5) and layer.num_parameters() == 1516
    assert layer.multiply_adds((6, 14, 14)) == 60 * 25 * 100


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 3), st.integers(0, 3), st.integers(0, 99))
def test_any_connection_table_matches_loops(in_channels, out_channels, kernel, extra, seed):
    rng = numpy.random.default_rng(seed)
    connections = [tuple(sorted(rng.choice(in_channels, rng.integers(1, in_channels + 1), replace=False)))
                   for _ in range(out_channels)]
    layer = float64(ConnectionTable(in_channels, connections, kernel, rng=seed))
    x = images((1, in_channels, kernel + extra, kernel + extra), seed)
    expected = table_loops(x, layer.weight.numpy(), layer.bias.numpy(), connections)
    assert numpy.allclose(layer(Tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_the_full_kernel_is_zero_exactly_where_table_i_has_no_connection():
    layer = ConnectionTable(6, lenet.CONNECTIONS, 5, rng=0)
    full = layer.full_kernel().numpy()
    connected = numpy.array([[i in inputs for i in range(6)] for inputs in paper_table()])
    assert full.shape == (16, 6, 5, 5)
    assert numpy.all(full[~connected] == 0) and numpy.all(numpy.abs(full[connected]).sum(axis=(1, 2)) > 0)


def test_connection_table_errors():
    with pytest.raises(ValueError, match=r"ConnectionTable: the table names input maps 0..6, but there are 6"):
        ConnectionTable(6, [(0, 6)], 5)
    with pytest.raises(ValueError, match=r"ConnectionTable: expected input of shape \(N, 6, H, W\), got shape \(1, 4, 14, 14\)"):
        ConnectionTable(6, lenet.CONNECTIONS, 5)(Tensor(numpy.zeros((1, 4, 14, 14), numpy.float32)))


# --- the RBF output -------------------------------------------------------------------------------
def test_rbf_is_minus_the_squared_distance_to_each_prototype():
    rng = numpy.random.default_rng(0)
    prototypes = rng.choice([-1.0, 1.0], (10, 84))
    x = rng.standard_normal((3, 84))
    out = EuclideanRBF(prototypes)(Tensor(x)).numpy()
    for n in range(3):
        for i in range(10):
            assert out[n, i] == pytest.approx(-sum((float(x[n, j]) - prototypes[i, j]) ** 2 for j in range(84)))
    assert numpy.array_equal(out.argmax(axis=1), [numpy.argmin(((p - prototypes) ** 2).sum(1)) for p in x])


def test_the_prototypes_are_never_trained():
    model = zoo.build("lenet5")
    before = model.output.prototypes.copy()
    optimizer = SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(Tensor(images((4, 1, 32, 32), dtype=numpy.float32))), [0, 1, 2, 3])
    loss.backward()
    optimizer.step()
    assert numpy.array_equal(model.output.prototypes, before)
    assert all(p.grad is not None and p.grad.dtype == numpy.float32 for p in model.parameters())


# --- against PyTorch: forward and every parameter's gradient --------------------------------------
def torch_lenet5(model, x, torch):
    """The same network written in PyTorch from the model's weights (float64 tensors)."""
    t = {name: torch.tensor(p.numpy(), requires_grad=True) for name, p in model.named_parameters()}
    nnf = torch.nn.functional
    f = lambda a: 1.7159 * torch.tanh(2 * a / 3)

    def subsample(a, layer):
        c = a.shape[1]
        return nnf.avg_pool2d(a, 2) * 4 * t[f"{layer}.weight"].view(1, c, 1, 1) + t[f"{layer}.bias"].view(1, c, 1, 1)

    pairs = [(j, i) for j, inputs in enumerate(paper_table()) for i in inputs]
    rows = [torch.stack([t["c3.weight"][pairs.index((j, i))] if (j, i) in pairs else torch.zeros(5, 5, dtype=torch.float64)
                         for i in range(6)]) for j in range(16)]
    a = f(nnf.conv2d(torch.tensor(x), t["c1.weight"], t["c1.bias"]))
    a = f(subsample(a, "s2"))
    a = f(nnf.conv2d(a, torch.stack(rows), t["c3.bias"]))
    a = f(subsample(a, "s4"))
    a = f(nnf.conv2d(a, t["c5.weight"], t["c5.bias"])).flatten(1)
    a = f(nnf.linear(a, t["f6.weight"], t["f6.bias"]))
    prototypes = torch.tensor(model.output.prototypes, dtype=torch.float64)
    return -((a[:, None, :] - prototypes[None]) ** 2).sum(dim=2), t


def test_lenet5_matches_pytorch_forward_and_gradients():
    torch = pytest.importorskip("torch")
    model = float64(zoo.build("lenet5", seed=1))
    x = images((3, 1, 32, 32), 2)
    labels = numpy.array([4, 0, 9])
    loss = F.cross_entropy(model(Tensor(x)), labels)
    loss.backward()
    logits, weights = torch_lenet5(model, x, torch)
    torch_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    torch_loss.backward()
    assert numpy.allclose(model(Tensor(x)).numpy(), logits.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-12)
    for name, p in model.named_parameters():
        assert numpy.allclose(p.grad, weights[name].grad.numpy(), rtol=1e-10, atol=1e-14), name


# --- float64 gradient checks ----------------------------------------------------------------------
def elementwise_check(module, x, seed=0):
    """Every element of every parameter and of x against central differences of sum(module(x) * gy);
    returns the worst relative error."""
    module = float64(module)
    x = Tensor(x, requires_grad=True)
    with no_grad():
        gy = numpy.random.default_rng(seed).standard_normal(module(x).shape)
    module.zero_grad()
    module(x).backward(gy)
    worst = 0.0
    for tensor in list(module.parameters()) + [x]:
        loss = lambda: float((module(Tensor(x.data)).numpy() * gy).sum())
        numerical = numerical_gradient(loss, tensor.data)
        worst = max(worst, relative_error(tensor.grad, numerical)[0])
    return worst


@pytest.mark.parametrize("make, shape", [
    (lambda: ScaledTanh(), (2, 3, 4, 4)),
    (lambda: Subsampling(3, rng=0), (2, 3, 5, 4)),                  # odd: the last row is dropped
    (lambda: Subsampling(2, rng=1), (1, 2, 2, 2)),                   # a 1x1 output, batch 1
    (lambda: ConnectionTable(6, lenet.CONNECTIONS, 5, rng=0), (1, 6, 7, 6)),
    (lambda: ConnectionTable(3, [(0, 2), (1,), (0, 1, 2)], 3, rng=0), (2, 3, 3, 3)),
    (lambda: EuclideanRBF(numpy.random.default_rng(0).choice([-1.0, 1.0], (4, 7))), (3, 7)),
], ids=["scaled tanh", "subsampling, odd map", "subsampling, 1x1 output", "Table I, 7x6 input",
        "a small table, 1x1 output", "RBF"])
def test_each_new_layer_passes_an_elementwise_gradient_check(make, shape):
    assert elementwise_check(make(), images(shape, 3)) < 1e-7


@pytest.mark.parametrize("name, options", [("lenet5", {}), ("lenet5-modern", {}),
                                           ("lenet5", {"width": 0.5, "input_size": 37})])
def test_whole_network_directional_gradient_check(name, options):
    model = float64(zoo.build(name, seed=2, **options))
    size = options.get("input_size", 32)
    x = Tensor(images((2, 1, size, size), 4), requires_grad=True)
    labels = numpy.array([3, 7])
    report = directional_check(lambda: F.cross_entropy(model(x), labels), list(model.parameters()) + [x])
    # The whole-network tolerance of tests/test_googlenet_gradcheck.py. Along a direction whose
    # derivative is small, rounding takes a larger share: one such (3e-3) gave 5.8e-7 at eps 1e-6
    # and 4e-9 at eps 1e-4, rounding and not a wrong gradient.
    assert report.rel_error < 1e-6


# --- sizes, widths and errors ---------------------------------------------------------------------
def test_a_larger_input_grows_c5_and_f6_reads_all_of_it():
    model = zoo.build("lenet5", input_size=40)                        # 36 -> 18 -> 14 -> 7 -> 3
    assert model.c5.output_shape((16, 7, 7)) == (120, 3, 3) and model.f6.in_features == 120 * 9
    assert model(Tensor(images((1, 1, 40, 40), dtype=numpy.float32))).shape == (1, 10)
    assert model.num_parameters() == 60_000 + 84 * 120 * 8


@pytest.mark.parametrize("name", ["lenet5", "lenet5-modern"])
def test_an_input_below_32_is_refused_saying_why(name):
    with pytest.raises(ValueError, match=r"LeNet-5 needs an input of at least 32x32 .*got input_size=31"):
        zoo.build(name, input_size=31)


def test_other_widths_and_channels():
    half = zoo.build("lenet5", width=0.5)
    assert isinstance(half.c3, nn.Conv2d)                      # Table I is for 6 -> 16 maps only
    assert half.num_parameters() == (3 * 25 + 3) + 6 + (8 * 3 * 25 + 8) + 16 + (60 * 8 * 25 + 60) + (42 * 60 + 42)
    rgb = zoo.build("lenet5", in_channels=3, num_classes=5)
    assert rgb.num_parameters() == 60_000 + 2 * 6 * 25 and rgb.output.prototypes.shape == (5, 84)
    assert rgb(Tensor(images((2, 3, 32, 32), dtype=numpy.float32))).shape == (2, 5)


def test_float32_in_float32_out_and_batch_one():
    for name in ("lenet5", "lenet5-modern"):
        out = zoo.build(name)(Tensor(images((1, 1, 32, 32), dtype=numpy.float32)))
        assert out.shape == (1, 10) and out.dtype == numpy.float32


def test_a_wrong_input_is_an_error_naming_the_first_layer():
    with pytest.raises(ValueError, match=r"Conv2d\(1, 6.*expected input with 1 channels, got shape \(2, 3, 32, 32\)"):
        zoo.build("lenet5")(Tensor(numpy.zeros((2, 3, 32, 32), numpy.float32)))
