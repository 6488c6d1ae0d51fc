"""On a GPU: the training step replayed as one CUDA graph (minigrad/cuda_graph.py) against the
same step run eagerly, bit for bit; without a GPU every test here skips with the reason.

From the pieces up: a cuBLAS product of our own handle captured and replayed on new inputs,
a dropout mask drawn by a replay at each step's counter, then whole GoogLeNet steps (float32,
dropout with the counter generator, both auxiliary heads, SGD with momentum and weight decay,
weight averaging): several replays in a row, the learning rate changed between replays (0
for one step: the weights must not move), the last short batch eager, then the Trainer with
and without --no-graph. The last test prints the CPU side of a replayed step (no assertion
on time). A hung GPU call ends the run with every thread's stack (faulthandler), not a hang.
"""
import faulthandler
import statistics
import time

import numpy as np
import pytest

import minigrad.functional as F
from minigrad import backend
from minigrad.counter_random import CounterGenerator, set_counter
from minigrad.cuda_graph import TrainingStep
from minigrad.optim import SGD, PaperSchedule, WeightAverage

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not backend.is_gpu_available(),
                                 reason=f"needs a GPU: {backend.gpu_unavailable_reason()}")]
HANG_SECONDS = 240


@pytest.fixture(autouse=True)
def stacks_instead_of_a_hang():
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def cupy():
    return backend.array_module_for("cuda")


def same_bits(got, expected, what):
    got, expected = backend.to_numpy(got), backend.to_numpy(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    if got.tobytes() != expected.tobytes():
        differ = np.flatnonzero(got.ravel() != expected.ravel())
        raise AssertionError(f"{what}: {differ.size} of {got.size} elements differ, first at "
                             f"{differ[:1]}: {got.ravel()[differ[:1]]} vs {expected.ravel()[differ[:1]]}")


def test_a_captured_cublas_product_replays_on_new_inputs(cupy):
    from minigrad.kernels.cuda import cublas
    from minigrad.kernels.cuda.capture import StreamCapture
    capture = StreamCapture(0)
    rng = np.random.default_rng(0)
    a, b = (capture.empty_like(np.zeros(shape, np.float32)) for shape in ((64, 48), (48, 80)))
    recording = capture.capture(lambda: (cublas.gemm(a, b), cublas.gemm(b, a, transpose_a=True, transpose_b=True)))
    for _ in range(3):
        x, y = rng.standard_normal((64, 48), np.float32), rng.standard_normal((48, 80), np.float32)
        product, transposed = capture.replay(recording, lambda: (capture.copy_into(a, x), capture.copy_into(b, y)))
        x, y = cupy.asarray(x), cupy.asarray(y)
        same_bits(product, cublas.gemm(x, y), "replayed product vs the same product run eagerly")
        same_bits(transposed, cublas.gemm(y, x, transpose_a=True, transpose_b=True), "replayed (a b)^T")
        np.testing.assert_allclose(backend.to_numpy(product), backend.to_numpy(x) @ backend.to_numpy(y),
                                   rtol=1e-4, atol=1e-4)


def test_a_captured_dropout_draw_follows_the_counter_set_before_each_replay(cupy):
    from minigrad.kernels.cuda.capture import StreamCapture
    capture = StreamCapture(0)
    generator = CounterGenerator([4, 2], device="cuda")
    recording = capture.capture(lambda: generator.random((16, 100)))
    for counter in (0, 1, 7, 1):
        set_counter(generator.counter, counter)
        replayed = capture.replay(recording, lambda: None)
        eager = CounterGenerator([4, 2], device="cuda")
        set_counter(eager.counter, counter)
        same_bits(replayed, eager.random((16, 100)), f"draw at counter {counter}")


def test_a_step_that_reads_a_value_back_falls_back_to_eager_and_the_gpu_goes_on(cupy):
    """float() during a capture cannot work (it waits for the GPU): the capture fails, a
    warning names the error, this call and the next run eagerly, and the stream still works."""
    from minigrad.cuda_graph import CapturedStep
    step = CapturedStep(lambda x: x * float(x.sum()), "cuda")
    x = cupy.arange(4.0)
    step(x)                                                  # the warm-up
    with pytest.warns(RuntimeWarning, match="cannot be captured as a CUDA graph"):
        same_bits(step(x), x * 6.0, "the eager fallback")
    same_bits(step(2 * x), 2 * x * 12.0, "the next call, eager")
    assert step.runs == {"eager": 2, "warm-up": 1, "capture": 0, "replay": 0}, step.not_capturable
    same_bits(step.cuda().run(lambda: x + 1), x + 1, "work on the capture stream after the failure")


def googlenet_step(graph, width=0.25, seed=0):
    from googlenet.model import GoogLeNet, googlenet_loss
    model = GoogLeNet(num_classes=10, in_channels=1, width=width, input_size=32, seed=seed).to("cuda")
    model.train()
    model.flatten_parameters()                      # as the Trainer does
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
    average = WeightAverage(model.parameters(), decay=0.99)

    def losses(output, labels):
        loss = googlenet_loss(output, labels)
        main = F.cross_entropy(output.logits, labels)
        return loss, main, (output.logits.data.argmax(axis=1) == labels).sum()

    return TrainingStep(model, losses, optimizer, average, graph=graph, dropout_seed=seed)


def step_batches(count, batch, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, 1, 32, 32)).astype(np.float32), rng.integers(0, 10, n))
            for n in [batch] * count]


def all_arrays(step):
    return ([p.data for p in step.model.parameters()] + list(step.optimizer.state["velocity"])
            + list(step.average.averages))


def test_replayed_googlenet_steps_equal_eager_steps_bit_for_bit():
    """Eight full batches (warm-up, capture, six more replays), the learning rate changed at
    every step and 0 at one (the weights must not move then), a short batch (eager in both),
    two more replays: every loss, count and array the same to the bit."""
    replayed, eager = googlenet_step(graph=True), googlenet_step(graph=False)
    schedule = PaperSchedule(0.01)
    batches = step_batches(8, 8) + step_batches(1, 3, seed=1) + step_batches(2, 8, seed=2)
    for index, (x, y) in enumerate(batches):
        lr = 0.0 if index == 5 else schedule(index * 2.3)
        before = [p.data.copy() for p in replayed.model.parameters()] if lr == 0 else None
        outputs = []
        for step in (replayed, eager):
            step.optimizer.lr = lr
            outputs.append([backend.to_numpy(a).copy() for a in step(x, y)])
        assert replayed.captured.not_capturable is None, replayed.captured.not_capturable
        for name, got, expected in zip(("loss", "main loss", "right answers"), *outputs):
            same_bits(got, expected, f"step {index}: {name}")
        if before is not None:
            for p, old in zip(replayed.model.parameters(), before):
                same_bits(p.data, old, f"step {index} at lr 0: a weight moved")
    for position, (got, expected) in enumerate(zip(all_arrays(replayed), all_arrays(eager), strict=True)):
        same_bits(got, expected, f"array {position} after the steps")
    assert replayed.captured.runs == {"eager": 1, "warm-up": 1, "capture": 1, "replay": 9}
    assert eager.captured.runs == {"eager": 11, "warm-up": 0, "capture": 0, "replay": 0}
    assert replayed.optimizer.steps == eager.optimizer.steps == 11
    assert replayed.graph_pool_bytes() > 0


def test_the_trainer_with_and_without_graph_trains_the_same_bit_for_bit(tmp_path):
    """Two epochs on 70 digits in batches of 32 (two replays and a short batch of 6 an epoch):
    the same history and weights with the graph as with --no-graph, which captures nothing."""
    from googlenet.train import TrainConfig, Trainer
    from minigrad.data import load_digits
    train, held_out = load_digits(32).split(0.2, seed=0)
    data = (train.subset(np.arange(70)), held_out.subset(np.arange(40)))
    runs = {}
    for graph in (True, False):
        config = TrainConfig(width=0.25, epochs=2, batch_size=32, device="cuda", graph=graph,
                             out=str(tmp_path / f"graph-{graph}"))
        trainer = Trainer(config, data=data, progress=False)
        history = trainer.run()
        runs[graph] = (history, [p.numpy() for p in trainer.model.parameters()], trainer.gpu_step.captured)
    (history, weights, captured), (no_graph_history, no_graph_weights, no_graph_captured) = runs.values()
    timing = ("train_seconds", "eval_seconds", "images_per_second")
    assert [{k: v for k, v in row.items() if k not in timing} for row in history] == \
        [{k: v for k, v in row.items() if k not in timing} for row in no_graph_history]
    for position, (got, expected) in enumerate(zip(weights, no_graph_weights, strict=True)):
        same_bits(got, expected, f"parameter {position} after two epochs")
    assert captured.not_capturable is None, captured.not_capturable
    assert captured.runs == {"eager": 2, "warm-up": 1, "capture": 1, "replay": 3}
    assert no_graph_captured.runs == {"eager": 6, "warm-up": 0, "capture": 0, "replay": 0}


def test_the_cpu_side_of_a_replayed_step_is_small(cupy, capsys):
    """The README's main job's step (full width, 32x32, batch 32): host time per call of a
    replayed step (no synchronization between calls) beside the eager step's, and GPU time
    per step from CUDA events. Printed, not asserted (speed belongs in benchmarks)."""
    rows = []
    for graph in (True, False):
        step = googlenet_step(graph=graph, width=1.0)
        x, y = step_batches(1, 32)[0]
        x, y = cupy.asarray(x), cupy.asarray(y)
        for _ in range(3):                                  # warm-up, capture, one replay
            step(x, y)
        cupy.cuda.get_current_stream().synchronize()
        host, start, end = [], cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(20):
            began = time.perf_counter()
            step(x, y)
            host.append(time.perf_counter() - began)
        end.record()
        end.synchronize()
        gpu_ms = cupy.cuda.get_elapsed_time(start, end) / 20
        assert step.captured.not_capturable is None, step.captured.not_capturable
        rows.append(f"{'replayed' if graph else 'eager':>8}: CPU side {1e3 * statistics.median(host):7.2f} ms "
                    f"per step (median of 20), GPU {gpu_ms:7.2f} ms per step")
    with capsys.disabled():
        print("\nGoogLeNet training step, width 1, 32x32, batch 32, float32:\n" + "\n".join(rows))
