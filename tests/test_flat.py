"""Flat parameter buffers (minigrad/nn/flat.py) and the optimizers' flat path: the same
training, bit for bit, as parameter by parameter (SGD with and without momentum, Nesterov,
weight decay on weights only, Adam; float32 and float64); parameters stay views through
backward, zero_grad, load_state_dict and the optimizers' checkpoints, and the buffers are
rebuilt by to(device) and astype; what a parameter no loss reached holds. The flat step and the weight average go block by
block through a small scratch array (the same bits on any blocks and threads, no array the
size of the buffers)."""
import tracemalloc

import numpy
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import backend, nn, optim, parallel
from minigrad.nn.flat import ALIGNMENT, FlatParameters
from minigrad.optim import SGD, Adam, WeightAverage

OPTIMIZERS = {
    "sgd": lambda p: SGD(p, lr=0.05, momentum=0.0),
    "sgd momentum": lambda p: SGD(p, lr=0.05, momentum=0.9),
    "sgd nesterov": lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "sgd momentum weight decay": lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
    "sgd nesterov weight decay": lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                               weight_decay=0.01),
    "adam": lambda p: Adam(p, lr=0.01),
    "adam weight decay": lambda p: Adam(p, lr=0.01, weight_decay=0.01),
}


def network(seed=0, dtype=numpy.float32):
    """Convolutions with biases, a Concat, LRN, dropout and a linear head: weights of 4, 2
    and 1 axes, in an order that is not weights first."""
    rng = numpy.random.default_rng(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, rng=rng, bias_value=0.2),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.LocalResponseNorm(size=3, alpha=1.0, beta=0.75, k=1.0),
        nn.Concat(nn.Conv2d(4, 2, 1, rng=rng),
                  nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), nn.Conv2d(4, 3, 1, rng=rng))),
        nn.Dropout(0.3, seed=1),
        nn.Flatten(),
        nn.Linear(5 * 3 * 3, 4, rng=rng, weight_init="glorot"),
    )
    return model.astype(dtype)


def batches(dtype, count=4, seed=1):
    rng = numpy.random.default_rng(seed)
    return [(rng.standard_normal((3, 3, 6, 6)).astype(dtype), rng.integers(0, 4, 3)) for _ in range(count)]


def train(model, optimizer, data, lrs=None):
    """A few steps of the usual loop; the weights after each step (NumPy copies)."""
    history = []
    for step, (x, labels) in enumerate(data):
        if lrs is not None:
            optimizer.lr = lrs[step]
        loss = F.cross_entropy(model(mg.Tensor(x)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append([backend.to_numpy(p.data).copy() for p in model.parameters()])
    return history


def assert_bitwise_equal(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_a_flat_step_is_the_per_parameter_step_bit_for_bit(make, dtype):
    data = batches(dtype)
    lrs = [0.05, 0.05, 0.02, 0.03]            # a schedule changes lr between steps
    plain = network(dtype=dtype)
    flat = network(dtype=dtype)
    flat.flatten_parameters()
    plain_optimizer, flat_optimizer = make(plain.parameters()), make(flat.parameters())
    assert plain_optimizer.flat is None and flat_optimizer.flat is not None
    for expected, got in zip(train(plain, plain_optimizer, data, lrs), train(flat, flat_optimizer, data, lrs)):
        for e, g in zip(expected, got):
            assert_bitwise_equal(e, g)
    for name in plain_optimizer.state:
        for e, g in zip(plain_optimizer.state[name], flat_optimizer.state[name]):
            assert_bitwise_equal(e, g)


@pytest.mark.parametrize("make", [OPTIMIZERS["sgd nesterov weight decay"], OPTIMIZERS["adam weight decay"]],
                         ids=["sgd", "adam"])
def test_a_flat_step_on_the_device_is_the_per_parameter_step_bit_for_bit(xp, make):
    device = "cpu" if xp is numpy else "cuda"
    data = [(xp.asarray(x), labels) for x, labels in batches(numpy.float32, count=3)]
    plain, flat = network().to(device), network().to(device)
    flat.flatten_parameters()
    expected = train(plain, make(plain.parameters()), data)[-1]
    got = train(flat, make(flat.parameters()), data)[-1]
    for e, g in zip(expected, got):
        assert_bitwise_equal(e, g)


def test_weight_decay_reaches_the_weights_and_not_the_biases():
    model = network()
    flat = model.flatten_parameters()
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    optimizer = SGD(model.parameters(), lr=0.5, momentum=0.0, weight_decay=0.1)
    optimizer.zero_grad()                      # every gradient zero: only decay moves anything
    optimizer.step()
    for name, p in model.named_parameters():
        if p.ndim > 1:
            numpy.testing.assert_array_equal(p.data, before[name] - 0.5 * (0.1 * before[name]))
        else:
            numpy.testing.assert_array_equal(p.data, before[name])
    assert all(p.ndim > 1 for p in flat.parameters[:4]) and all(p.ndim == 1 for p in flat.parameters[4:])


def test_the_update_over_ranges_is_the_update_over_the_whole_buffer():
    """update_range on any split of the elements (here across the weights/biases boundary
    and through a parameter) equals one pass: the rules are element-wise."""
    results = []
    for cuts in ([], [7, 300, 301], None):
        model = network()
        model.flatten_parameters()
        optimizer = Adam(model.parameters(), lr=0.01, weight_decay=0.01)
        for x, labels in batches(numpy.float32, count=2):
            loss = F.cross_entropy(model(mg.Tensor(x)), labels)
            optimizer.zero_grad()
            loss.backward()
            if cuts is None:
                optimizer.step()
                continue
            optimizer.steps += 1
            optimizer.flat.gather()
            optimizer.create_flat_state()
            edges = [0, *cuts, optimizer.flat.weights.stop, optimizer.flat.size]
            for lo, hi in zip(sorted(edges), sorted(edges)[1:]):
                optimizer.update_range(lo, hi)
        results.append(optimizer.flat.data.copy())
    assert_bitwise_equal(results[0], results[2])
    assert_bitwise_equal(results[1], results[2])


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_learning_rate_and_bias_corrections_may_be_0d_arrays_of_the_parameters_dtype(dtype, monkeypatch):
    """What a captured step needs: the numbers a rule reads kept in 0-d arrays give the same
    bits as Python floats."""
    data = batches(dtype, count=3)
    as_floats, as_arrays = network(dtype=dtype), network(dtype=dtype)
    for model in (as_floats, as_arrays):
        model.flatten_parameters()
    float_optimizer = Adam(as_floats.parameters(), lr=0.01)
    array_optimizer = Adam(as_arrays.parameters(), lr=0.01)
    corrections = Adam.bias_corrections
    monkeypatch.setattr(array_optimizer, "bias_corrections",
                        lambda: tuple(numpy.asarray(c, dtype=dtype) for c in corrections(array_optimizer)))
    lrs = [0.01, 0.005, 0.002]
    expected = train(as_floats, float_optimizer, data, lrs)
    got = train(as_arrays, array_optimizer, data, [numpy.asarray(lr, dtype=dtype) for lr in lrs])
    for e, g in zip(expected[-1], got[-1]):
        assert_bitwise_equal(e, g)


# --- views ------------------------------------------------------------------------------------
def assert_views(model, flat):
    for p in model.parameters():
        assert p.flat_parameters is flat
        assert numpy.shares_memory(p.data, flat.data) and numpy.shares_memory(p.grad, flat.grad)
        assert p.data is not None and p.data.flags.c_contiguous


def test_parameters_are_views_in_an_aligned_weights_first_layout():
    model = network()
    values = {name: p.data.copy() for name, p in model.named_parameters()}
    flat = model.flatten_parameters()
    assert_views(model, flat)
    for name, p in model.named_parameters():
        numpy.testing.assert_array_equal(p.data, values[name])
        numpy.testing.assert_array_equal(p.grad, numpy.zeros_like(p.data))
    assert all(offset % ALIGNMENT == 0 for offset in flat.offsets)
    assert flat.weights == slice(0, flat.offsets[4])                     # 4 weights, then biases
    assert flat.size == flat.offsets[-1] + -(-flat.parameters[-1].size // ALIGNMENT) * ALIGNMENT
    covered = numpy.zeros(flat.size, bool)
    for p, start in zip(flat.parameters, flat.offsets):
        covered[start:start + p.size] = True
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    train(model, optimizer, batches(numpy.float32, count=2))
    assert not flat.data[~covered].any() and not optimizer.flat_state["velocity"][~covered].any()


def test_backward_adds_into_the_flat_gradient_and_after_zero_grad_writes_it_afresh():
    model = network()
    flat = model.flatten_parameters()
    reference = network()
    for x, labels in batches(numpy.float32, count=2):          # the second adds to the first
        for m in (reference, model):
            F.cross_entropy(m(mg.Tensor(x)), labels).backward()
        assert_views(model, flat)
        for p, q in zip(model.parameters(), reference.parameters()):
            assert_bitwise_equal(p.grad, q.grad)
    written_before = flat.grad.copy()
    for m in (reference, model):
        m.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    numpy.testing.assert_array_equal(flat.grad, written_before)        # nothing written: no fill
    x, labels = batches(numpy.float32, count=3)[2]
    for m in (reference, model):
        F.cross_entropy(m(mg.Tensor(x)), labels).backward()
    assert_views(model, flat)                                  # each first gradient copied into its slice
    for p, q in zip(model.parameters(), reference.parameters()):
        assert_bitwise_equal(p.grad, q.grad)                   # the new gradient alone, nothing of the old


def test_zero_grad_of_a_part_of_a_flat_buffer_clears_that_part_only():
    model = network()
    flat = model.flatten_parameters()
    x, labels = batches(numpy.float32, count=1)[0]
    F.cross_entropy(model(mg.Tensor(x)), labels).backward()
    head = model[-1].weight.grad.copy()
    model[0].zero_grad()
    assert model[0].weight.grad is None                     # out of the buffer until gathered
    flat.gather()
    assert_views(model, flat)
    assert not model[0].weight.grad.any() and not model[0].bias.grad.any()
    numpy.testing.assert_array_equal(model[-1].weight.grad, head)


def test_a_parameter_no_loss_reached_holds_zeros_and_is_still_decayed():
    """Without flat buffers its grad stays None and a step skips it; with them its grad is
    its (zero) slice of the flat gradient, and a step updates it like any other."""
    for flatten in (False, True):
        rng = numpy.random.default_rng(0)
        used, unused = nn.Linear(3, 2, rng=rng), nn.Linear(3, 2, rng=rng)
        model = nn.Sequential(used, unused)
        if flatten:
            model.flatten_parameters()
        before = unused.weight.data.copy()
        optimizer = SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
        optimizer.zero_grad()
        used(mg.Tensor(numpy.ones((1, 3), numpy.float32))).sum().backward()
        optimizer.step()
        if flatten:
            numpy.testing.assert_array_equal(unused.weight.grad, numpy.zeros((2, 3), numpy.float32))
            numpy.testing.assert_array_equal(unused.weight.data, before - 0.5 * (0.1 * before))
        else:
            assert unused.weight.grad is None
            numpy.testing.assert_array_equal(unused.weight.data, before)


def test_assigning_data_or_grad_takes_a_parameter_out_until_the_next_step_gathers_it():
    model = network()
    flat = model.flatten_parameters()
    conv = model[0]
    conv.weight.data = numpy.full(conv.weight.shape, 0.5, numpy.float32)   # a new array
    conv.bias.grad = None                                                   # Tensor.zero_grad does this
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.0)
    model[-1].bias.grad = numpy.ones(4, numpy.float32)                      # a new gradient array
    optimizer.step()
    assert_views(model, flat)
    numpy.testing.assert_array_equal(conv.weight.data, numpy.full(conv.weight.shape, 0.5, numpy.float32))
    numpy.testing.assert_array_equal(conv.bias.grad, numpy.zeros(4, numpy.float32))
    numpy.testing.assert_array_equal(model[-1].bias.grad, numpy.ones(4, numpy.float32))


def test_load_state_dict_copies_into_the_views():
    model, other = network(seed=0), network(seed=5)
    flat = model.flatten_parameters()
    data_buffer = flat.data
    model.load_state_dict(other.state_dict())
    assert flat.data is data_buffer
    assert_views(model, flat)
    for p, q in zip(model.parameters(), other.parameters()):
        numpy.testing.assert_array_equal(p.data, q.data)


def test_astype_rebuilds_the_buffers_in_the_new_dtype():
    model = network()
    flat = model.flatten_parameters()
    values = [p.data.astype(numpy.float64) for p in model.parameters()]
    model.astype(numpy.float64)
    assert flat.data.dtype == flat.grad.dtype == numpy.float64
    assert_views(model, flat)
    for p, value in zip(model.parameters(), values):
        numpy.testing.assert_array_equal(p.data, value)
    x, labels = batches(numpy.float64, count=1)[0]
    F.cross_entropy(model(mg.Tensor(x)), labels).backward()
    assert flat.grad.any() and all(p.grad.dtype == numpy.float64 for p in model.parameters())


def test_to_moves_the_buffers(xp):
    model = network()
    flat = model.flatten_parameters()
    values = [p.data.copy() for p in model.parameters()]
    device = "cpu" if xp is numpy else "cuda"
    same = flat.data
    model.to(device)
    assert (flat.data is same) == (xp is numpy)           # already there: nothing is copied
    assert backend.device_of(flat.data) == backend.parse_device(device)
    for p, value in zip(model.parameters(), values):
        assert backend.get_array_module(p.data) is xp and xp.shares_memory(p.data, flat.data)
        numpy.testing.assert_array_equal(backend.to_numpy(p.data), value)
    x, labels = batches(numpy.float32, count=1)[0]
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    F.cross_entropy(model(mg.Tensor(xp.asarray(x))), labels).backward()
    optimizer.step()
    assert xp.shares_memory(model[0].weight.grad, flat.grad)


def test_a_part_of_a_flat_buffer_cannot_be_moved_or_cast_alone():
    model = network()
    model.flatten_parameters()
    with pytest.raises(ValueError, match=r"Conv2d.astype: its parameters share a flat buffer .* call "
                                         r"astype on the module whose parameters were flattened"):
        model[0].astype(numpy.float64)


def test_bad_parameter_lists_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="got no parameters"):
        FlatParameters([])
    with pytest.raises(ValueError, match="share one dtype and device, got float32 on cpu, float64 on cpu"):
        FlatParameters([nn.Parameter(numpy.zeros(2, numpy.float32)), nn.Parameter(numpy.zeros(2))])
    with pytest.raises(ValueError, match="expected parameters"):
        FlatParameters([mg.Tensor([1.0])])
    model = network()
    model.flatten_parameters()
    with pytest.raises(ValueError, match="is in a flat buffer already"):
        model.flatten_parameters()


def test_an_optimizer_of_some_of_the_parameters_updates_them_one_by_one():
    model = network()
    model.flatten_parameters()
    optimizer = SGD(list(model.parameters())[:2], lr=0.1)
    assert optimizer.flat is None
    train(model, optimizer, batches(numpy.float32, count=1))


# --- checkpoints -----------------------------------------------------------------------------
def without_dropout():
    """The network in eval mode: a resumed run then draws the same (no) dropout masks."""
    return network().eval()


@pytest.mark.parametrize("make", [OPTIMIZERS["sgd nesterov weight decay"], OPTIMIZERS["adam"]],
                         ids=["sgd", "adam"])
def test_checkpoints_keep_their_format_and_load_across_the_two_paths(make):
    data = batches(numpy.float32, count=4)
    straight = without_dropout()
    expected = train(straight, make(straight.parameters()), data)[-1]

    plain = without_dropout()
    plain_optimizer = make(plain.parameters())
    train(plain, plain_optimizer, data[:2])
    flat = without_dropout()
    flat.flatten_parameters()
    flat_optimizer = make(flat.parameters())
    train(flat, flat_optimizer, data[:2])
    saved_plain, saved_flat = plain_optimizer.state_dict(), flat_optimizer.state_dict()
    assert saved_plain.keys() == saved_flat.keys()
    for key in saved_plain:
        assert_bitwise_equal(saved_plain[key], saved_flat[key])

    resumed = without_dropout()                           # a per-parameter checkpoint, resumed flat
    resumed.load_state_dict(plain.state_dict())
    resumed.flatten_parameters()
    resumed_optimizer = make(resumed.parameters())
    resumed_optimizer.load_state_dict(saved_plain)
    for e, g in zip(expected, train(resumed, resumed_optimizer, data[2:])[-1]):
        assert_bitwise_equal(e, g)


def test_the_weight_average_is_the_same_flat_and_swaps_in_and_out_in_place():
    data = batches(numpy.float32, count=3)
    results = []
    for flatten in (False, True):
        model = network()
        flat = model.flatten_parameters() if flatten else None
        optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
        average = WeightAverage(model.parameters(), decay=0.9)
        for step in range(len(data)):
            train(model, optimizer, data[step:step + 1])
            average.update()
        weights = [p.data.copy() for p in model.parameters()]
        with average.swapped_in():
            swapped = [p.data.copy() for p in model.parameters()]
            if flatten:
                assert_views(model, flat)
        for p, w in zip(model.parameters(), weights):
            numpy.testing.assert_array_equal(p.data, w)
        results.append((swapped, average.state_dict()))
    (plain_swapped, plain_state), (flat_swapped, flat_state) = results
    for e, g in zip(plain_swapped, flat_swapped):
        assert_bitwise_equal(e, g)
    assert plain_state.keys() == flat_state.keys()
    for key in plain_state:
        assert_bitwise_equal(plain_state[key], flat_state[key])


# --- block by block, on threads ----------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("block", [7, 64, 300])
@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_the_flat_step_and_average_block_by_block_on_threads_are_the_per_parameter_ones(
        make, block, threads, monkeypatch):
    """Blocks that cut through parameters and across the weights/biases boundary, ranges
    over several threads: the same bits as one parameter at a time."""
    monkeypatch.setattr(optim, "UPDATE_BLOCK", block)
    monkeypatch.setattr(parallel, "MIN_CHUNK_NUMBERS", 1)
    data = batches(numpy.float32)
    results = []
    for flatten in (False, True):
        model = network()
        if flatten:
            model.flatten_parameters()
        optimizer, average = make(model.parameters()), WeightAverage(model.parameters(), decay=0.9)
        with parallel.threads(threads):
            for step in range(len(data)):
                train(model, optimizer, data[step:step + 1])
                average.update()
        results.append([p.data for p in model.parameters()] + average.averages)
    assert optimizer.flat is not None and optimizer.flat.size > 2 * block
    for e, g in zip(*results):
        assert_bitwise_equal(e, g)


@pytest.mark.parametrize("make", [OPTIMIZERS["sgd momentum weight decay"], OPTIMIZERS["sgd nesterov weight decay"],
                                  OPTIMIZERS["sgd"]], ids=["momentum", "nesterov", "plain"])
def test_a_flat_step_and_average_make_no_array_the_size_of_the_buffers(make, monkeypatch):
    """The update and the average go block by block through one small scratch array: what
    they allocate stays far below one buffer (a new buffer-sized array at every step costs
    the operating system's fresh pages each time)."""
    monkeypatch.setattr(optim, "UPDATE_BLOCK", 256)
    rng = numpy.random.default_rng(0)
    model = nn.Sequential(nn.Linear(100, 200, rng=rng), nn.Linear(200, 100, rng=rng))
    flat = model.flatten_parameters()
    optimizer, average = make(model.parameters()), WeightAverage(model.parameters(), decay=0.9)
    flat.grad[...] = rng.standard_normal(flat.size)
    optimizer.step()                               # the first step makes the state buffers
    buffer_bytes = flat.data.nbytes
    tracemalloc.start()
    try:
        optimizer.step()
        average.update()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < buffer_bytes / 8, f"{peak} bytes allocated by a step over {buffer_bytes}-byte buffers"
