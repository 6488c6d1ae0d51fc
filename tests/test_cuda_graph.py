"""The training step as a CUDA graph (minigrad/cuda_graph.py), as far as the CPU can check it:
which calls warm up, capture, replay or run eagerly; the static inputs refreshed before
every replay; a failed capture falling back to eager with a warning; the eager step equal to
the plain one, bit for bit; the per-step numbers read from device scalars, not baked in.

Without a GPU the CUDA work is done by ``RerunCapture``, a stand-in that keeps the captured
function and, at each replay, refreshes the static inputs and runs the function on them
again: it checks the wrapper's bookkeeping, not CUDA (tests/test_cuda_graph_gpu.py does, on a GPU).
"""
import warnings

import numpy as np
import pytest

import minigrad.functional as F
from minigrad import Tensor, nn
from minigrad.cuda_graph import CapturedStep, TrainingStep, capture_training_step, signature
from minigrad.ops.loss import check_label_range
from minigrad.optim import SGD, Adam, WeightAverage


class RerunCapture:
    """A stand-in for StreamCapture on NumPy arrays. ``capture`` keeps the function without
    running it (as a capture records without running); ``replay`` refreshes the static
    inputs, then runs the kept function on them. Static inputs start as NaN (or -1), so a
    replay that reads an input before it is refreshed shows."""

    def __init__(self, fail_with=None):
        self.fail_with, self.log = fail_with, []

    def run(self, function):
        self.log.append("run")
        return function()

    def capture(self, function):
        self.log.append("capture")
        if self.fail_with is not None:
            raise self.fail_with
        return function

    def replay(self, recording, refresh):
        refresh()
        self.log.append("replay")
        return recording()

    def empty_like(self, value):
        return np.full(value.shape, np.nan if value.dtype.kind == "f" else -1, dtype=value.dtype)

    def copy_into(self, static, value):
        static[...] = value


def affine(x, y):
    return 2 * x + y, x.sum()


def test_calls_warm_up_then_capture_then_replay_and_another_shape_runs_eagerly():
    stand_in = RerunCapture()
    step = CapturedStep(affine, "cpu", warmup_steps=2, capture=stand_in)
    x, y = np.ones((4, 3)), np.full((4, 3), 5.0)
    modes = []
    for batch in ([x, y], [x, y], [x, y], [x, y], [x[:2], y[:2]], [x, y], [x.astype(np.float32), y]):
        modes.append(step.mode(batch))
        step(*batch)
    assert modes == ["warm-up", "warm-up", "capture", "replay", "eager", "replay", "eager"]
    assert step.runs == {"eager": 2, "warm-up": 2, "capture": 1, "replay": 3}
    assert stand_in.log == ["run", "run", "capture", "replay", "replay", "replay"]
    assert step.signature == signature([x, y])


def test_every_replay_reads_its_own_inputs_into_the_same_static_arrays():
    step = CapturedStep(affine, "cpu", warmup_steps=0, capture=RerunCapture())
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((3, 2)), rng.standard_normal((3, 2))) for _ in range(4)]
    statics = None
    for x, y in batches:
        got, total = step(x, y)
        np.testing.assert_array_equal(got, 2 * x + y)
        assert total == x.sum()
        statics = statics or [id(a) for a in step.static_inputs]
        assert [id(a) for a in step.static_inputs] == statics          # refreshed, not remade
        np.testing.assert_array_equal(step.static_inputs[0], x)


def test_on_the_cpu_or_switched_off_every_call_is_eager():
    on_cpu = CapturedStep(affine, "cpu")
    switched_off = CapturedStep(affine, "cpu", enabled=False, capture=RerunCapture())
    x = np.ones((2, 2))
    for step in (on_cpu, switched_off):
        for _ in range(3):
            np.testing.assert_array_equal(step(x, x)[0], 3 * x)
        assert step.runs == {"eager": 3, "warm-up": 0, "capture": 0, "replay": 0}
    assert switched_off.capture.log == []


def test_a_step_that_cannot_be_captured_runs_eagerly_and_says_why_once():
    stand_in = RerunCapture(fail_with=NotImplementedError("calling cuBLAS API during stream capture"))
    step = CapturedStep(affine, "cpu", warmup_steps=1, capture=stand_in)
    x = np.ones((2, 2))
    step(x, x)
    with pytest.warns(RuntimeWarning, match="cannot be captured as a CUDA graph .*cuBLAS.*runs eagerly"):
        np.testing.assert_array_equal(step(x, x)[0], 3 * x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # no second warning
        np.testing.assert_array_equal(step(x, 2 * x)[0], 4 * x)
    assert step.not_capturable == "NotImplementedError: calling cuBLAS API during stream capture"
    assert step.runs == {"eager": 2, "warm-up": 1, "capture": 0, "replay": 0}


# --- the training step ------------------------------------------------------------------------
def small_network(dtype, seed=0):
    """Linear, ReLU, Dropout, Linear: enough for momentum, decay on weights only, dropout."""
    return nn.Sequential(nn.Linear(6, 8, rng=seed, bias_value=0.1), nn.ReLU(),
                         nn.Dropout(0.3, seed=seed + 1), nn.Linear(8, 3, rng=seed + 2)).astype(dtype)


def loss_and_hits(output, labels):
    return F.cross_entropy(output, labels), (output.data.argmax(axis=1) == labels).sum()


def plain_step(model, optimizer, average, x, y):
    """The eager step as a learner writes it."""
    loss, hits = loss_and_hits(model(Tensor(x)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    average.update()
    return loss.data, hits


def batches(dtype, count, seed=1):
    rng = np.random.default_rng(seed)
    sizes = [5] * (count - 1) + [2]                          # the last batch short
    return [(rng.standard_normal((n, 6)).astype(dtype), rng.integers(0, 3, n)) for n in sizes]


def everything(model, optimizer, average):
    """Every array the steps change: parameters, velocities, averages."""
    return ([p.data for p in model.parameters()] + [v for v in optimizer.state["velocity"]]
            + list(average.averages))


@pytest.mark.parametrize("flat", [False, True], ids=["per parameter", "flat buffers"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("capture", [None, RerunCapture], ids=["eager on the cpu", "stand-in replays"])
def test_the_training_step_equals_the_plain_step_bit_for_bit(dtype, capture, flat):
    """Steps with the learning rate changed between them, the last batch short: the same
    losses, counts, weights, velocities and averages as the plain step, to the bit, with the
    parameters on their own or in flat buffers (minigrad/nn/flat.py)."""
    results = {}
    for way in ("plain", "training step"):
        model = small_network(dtype)
        if flat:
            model.flatten_parameters()
        optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
        average = WeightAverage(model.parameters(), decay=0.99)
        step = TrainingStep(model, loss_and_hits, optimizer, average,
                            capture=capture() if capture else None)
        losses = []
        for index, (x, y) in enumerate(batches(dtype, 6)):
            optimizer.lr = 0.1 * 0.5 ** index
            out = plain_step(model, optimizer, average, x, y) if way == "plain" else step(x, y)
            losses.append((np.array(out[0]).copy(), int(out[1])))
        results[way] = (losses, [a.copy() for a in everything(model, optimizer, average)],
                        optimizer.steps, average.updates)
        if way == "training step" and capture:
            assert step.captured.runs == {"eager": 1, "warm-up": 1, "capture": 1, "replay": 4}
    (plain_losses, plain_arrays, *plain_counts), (losses, arrays, *counts) = results.values()
    assert counts == plain_counts == [6, 6]
    for (loss, hits), (plain_loss, plain_hits) in zip(losses, plain_losses):
        assert loss.dtype == dtype and loss.tobytes() == plain_loss.tobytes() and hits == plain_hits
    for got, expected in zip(arrays, plain_arrays):
        assert got.dtype == dtype and got.tobytes() == expected.tobytes()


def test_the_replayed_arrays_read_the_learning_rate_and_average_weight_from_device_scalars():
    """What a graph replays reads the per-step numbers from the device scalars, never from
    Python numbers: with the scalars at 0, neither the weights nor their average move,
    whatever the optimizer's own lr says."""
    model = small_network(np.float32)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    average = WeightAverage(model.parameters(), decay=0.99)
    step = TrainingStep(model, loss_and_hits, optimizer, average, capture=RerunCapture())
    x, y = np.ones((5, 6), np.float32), np.array([0, 1, 2, 0, 1])
    for _ in range(3):                                       # warm-up, capture, replay
        step(x, y)
    weights = [p.data.copy() for p in model.parameters()]
    averages = [a.copy() for a in average.averages]
    optimizer.lr = 0.5
    step.lr.fill(0)
    step.average_weight.fill(0)
    step.captured(x, y)                                      # the device's share alone, replayed
    assert step.captured.runs["replay"] == 3
    for got, expected in zip([p.data for p in model.parameters()] + average.averages, weights + averages,
                             strict=True):
        np.testing.assert_array_equal(got, expected)
    step.lr.fill(0.5)                                        # and with the scalar set, they move
    step.captured(x, y)
    assert not np.array_equal(next(model.parameters()).data, weights[0])


def test_adam_steps_are_not_captured():
    model = small_network(np.float32)
    step = TrainingStep(model, loss_and_hits, Adam(model.parameters()), capture=RerunCapture())
    for _ in range(3):
        step(np.ones((2, 6), np.float32), np.array([0, 1]))
    assert step.captured.runs["eager"] == 3 and step.captured.capture.log == []


def test_a_step_returns_the_loss_alone_when_loss_fn_reports_nothing_else():
    model = small_network(np.float64)
    step = capture_training_step(model, F.cross_entropy, SGD(model.parameters(), lr=0.1))
    loss = step(np.ones((2, 6)), np.array([0, 2]))
    assert loss.shape == () and loss.dtype == np.float64 and np.isfinite(loss)
    assert step.graph_pool_bytes() == 0


def test_labels_are_checked_on_the_host_before_a_replay():
    check_label_range("cross_entropy", np.array([0, 9]), 10)
    with pytest.raises(ValueError, match=r"cross_entropy: labels must lie in \[0, 10\) for 10 classes, "
                                         r"got values from 0 to 10"):
        check_label_range("cross_entropy", np.array([0, 10]), 10)


def test_no_graph_on_the_command_line_switches_the_graph_off_and_the_cpu_has_no_gpu_step(tmp_path):
    import argparse
    from googlenet.train import Trainer, add_parser, config_from_args
    from minigrad.data import load_digits
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--no-graph", "--out", str(tmp_path)])
    assert config_from_args(args).graph is False
    assert config_from_args(parser.parse_args(["train", "--graph", "--out", str(tmp_path)])).graph is True
    assert config_from_args(parser.parse_args(["train", "--out", str(tmp_path)])).graph is False   # opt-in for now
    train, held_out = load_digits(32).split(0.2, seed=0)
    config = config_from_args(args)
    trainer = Trainer(config, data=(train.subset(np.arange(8)), held_out.subset(np.arange(4))), progress=False)
    assert trainer.gpu_step is None                      # the CPU runs the plain step


def test_the_trainers_graph_path_with_the_stand_in_trains_as_the_plain_path(tmp_path):
    """The Trainer's GPU path (TrainingStep, the labels checked on the host, the reports read
    back) run on the CPU with the stand-in: two epochs of three batches (16, 16 and 8), give
    the plain path's history and weights to the bit (no dropout: the two paths draw masks
    differently)."""
    from googlenet.train import TrainConfig, Trainer
    from minigrad.data import load_digits
    train, held_out = load_digits(32).split(0.2, seed=0)
    data = (train.subset(np.arange(40)), held_out.subset(np.arange(10)))
    runs = []
    for stand_in in (None, RerunCapture()):
        config = TrainConfig(width=1 / 16, epochs=2, batch_size=16, dropout=0.0, aux_dropout=0.0,
                             schedule="cosine", out=str(tmp_path / str(stand_in is None)))
        trainer = Trainer(config, data=data, progress=False)
        if stand_in is not None:
            trainer.gpu_step = TrainingStep(trainer.model, trainer.losses_and_hits, trainer.optimizer,
                                            trainer.average, capture=stand_in)
        history = trainer.run()
        runs.append(([{k: v for k, v in row.items() if not k.endswith("seconds") and k != "images_per_second"}
                      for row in history], [p.data.copy() for p in trainer.model.parameters()]))
    (plain_history, plain_weights), (history, weights) = runs
    assert history == plain_history
    for got, expected in zip(weights, plain_weights, strict=True):
        assert got.tobytes() == expected.tobytes()
    assert trainer.gpu_step.captured.runs == {"eager": 2, "warm-up": 1, "capture": 1, "replay": 3}
