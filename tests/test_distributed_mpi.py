"""Data-parallel training on 2 MPI ranks, launched with ``mpiexec -n 2`` (the MPICH wheel's,
from the ``distributed`` extra): each test starts tests/distributed_worker.py on 2 ranks and
compares what they did with one process doing the same steps with the whole batch.

Skipped, with one reason, where mpi4py cannot be imported; where it can, a missing
mpiexec is a failure."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import numpy
import pytest

from minigrad import distributed

REASON = distributed.mpi_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))

WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")
ROOT = WORKER.parent.parent
LIMIT = 120         # seconds; a run that hangs fails the test when it is reached


def mpiexec():
    """The mpiexec beside this Python (the mpich wheel installs it there), else on PATH."""
    beside = pathlib.Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    assert found, "mpi4py imports but no mpiexec was found beside python or on PATH"
    return found


def launch(*arguments, ranks=2):
    """Run ``mpiexec -n ranks python arguments`` from the repository root, one BLAS thread a
    rank; (exit status, output, seconds at the end)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([mpiexec(), "-n", str(ranks), sys.executable, *arguments], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=LIMIT)
    return result.returncode, result.stdout + result.stderr, time.time()


def worker(mode, out):
    status, output, _ = launch(str(WORKER), mode, str(out))
    assert status == 0, output
    return output


# --- the step: 2 ranks with batch B = 1 process with batch 2B -------------------------------------
@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("steps")
    worker("steps", out)
    return numpy.load(out / "steps.npz")


def one_process_steps():
    """The same steps in this process: the whole global batch, the loss a mean over it."""
    from distributed_worker import NETWORK, STEPS_DATA, digits
    from googlenet.model import GoogLeNet, googlenet_loss
    from minigrad.autograd import Tensor
    from minigrad.data import DataLoader
    from minigrad.optim import SGD
    train, _ = digits()
    model = GoogLeNet(**NETWORK, seed=0).astype(numpy.float64)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    loader = DataLoader(train.subset(numpy.arange(STEPS_DATA["images"])), STEPS_DATA["global_batch"],
                        shuffle=True, seed=3)
    weights = []
    for images, labels in loader.batches(0):
        optimizer.zero_grad()
        googlenet_loss(model(Tensor(images.astype(numpy.float64))), labels, 0.3).backward()
        optimizer.step()
        weights.append(numpy.concatenate([p.numpy().ravel() for p in model.parameters()]))
    return weights


def test_the_broadcast_gives_every_rank_rank_0s_weights(steps):
    before, after = steps["before"], steps["after_broadcast"]
    assert not numpy.array_equal(before[0], before[1])          # the ranks started apart
    assert numpy.array_equal(after[0], before[0]) and numpy.array_equal(after[1], before[0])


def test_the_ranks_weights_are_identical_after_every_step(steps):
    weights = steps["weights"]                                   # (step, rank, values)
    assert weights.shape[:2] == (3, 2)
    for step in weights:
        assert numpy.array_equal(step[0], step[1])


def test_two_ranks_take_the_steps_of_one_process_with_the_whole_batch(steps):
    # batches of 8, 8 and 1 images: shares 4+4, 4+4 and 1+0 (rank 1 has nothing in the last)
    assert steps["shares"].tolist() == [[4, 4, 1], [4, 4, 0]]
    for got, expected in zip(steps["weights"][:, 0], one_process_steps()):
        numpy.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_the_all_reduce_of_the_flat_gradient_buffer_equals_one_per_tensor(steps):
    # two ranks: one addition per element whichever way the sum is split, so equal bit for bit
    assert steps["packed"].shape == steps["per_tensor"].shape
    assert numpy.array_equal(steps["packed"], steps["per_tensor"])
    assert numpy.abs(steps["packed"]).max() > 0


# --- the Trainer on 2 ranks: stop, resume, rank 0 writes --------------------------------------------
@pytest.fixture(scope="module")
def trainer_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trainer")
    worker("trainer", out)
    return out, json.loads((out / "trainer.json").read_text()), numpy.load(out / "trainer.npz")


def test_a_stop_asked_on_one_rank_stops_both_after_the_same_step_and_resumes_exactly(trainer_run):
    out, report, weights = trainer_run
    assert report["stop_requested"] and report["stopped_at"] == [0, 3]
    assert numpy.array_equal(weights["resumed"], weights["whole"])
    assert len(report["identical"]) == 2 * report["whole_steps"] and all(report["identical"])


def test_only_rank_0_writes(trainer_run):
    out, report, _ = trainer_run
    assert report["writes_by_rank_1"] == []
    assert {"checkpoint.npz", "metrics.jsonl", "curves.png"} <= set(os.listdir(out / "whole"))


def test_the_trainer_on_two_ranks_matches_one_process_with_the_whole_batch(trainer_run, tmp_path):
    """float32: the same steps, rounded differently (a mean over 2 x 2 images is not summed
    in the order of one over 4), so equal to float32's rounding, not bit for bit."""
    from distributed_worker import tiny_config, tiny_data
    from googlenet.train import Trainer
    _, report, weights = trainer_run
    one = Trainer(tiny_config(str(tmp_path), batch_size=4), data=tiny_data(), progress=False)
    one.run()
    expected = numpy.concatenate([p.numpy().ravel() for p in one.model.parameters()])
    assert len(one.history) == 2
    numpy.testing.assert_allclose(weights["whole"], expected, rtol=1e-4, atol=1e-6)


# --- failures end every rank, naming the rank ----------------------------------------------------------
def test_a_rank_that_raises_ends_every_rank_within_seconds_naming_it(tmp_path):
    status, output, ended = launch(str(WORKER), "raise", str(tmp_path))
    assert status != 0
    failed_at = float(re.search(r"rank 1 fails at ([\d.]+)", output).group(1))
    assert ended - failed_at < 10, output
    assert re.search(r"rank 1 of 2: Traceback.*RuntimeError: planted failure on rank 1", output, re.S), output


def test_a_rank_that_dies_ends_every_rank_within_seconds_naming_its_pid(tmp_path):
    status, output, ended = launch(str(WORKER), "kill", str(tmp_path))
    assert status != 0
    failed_at = float(re.search(r"rank 1 fails at ([\d.]+)", output).group(1))
    assert ended - failed_at < 10, output
    pid = re.search(r"rank 1 pid (\d+) on ", output).group(1)          # the line each run starts with
    assert re.search(rf"PID {pid} RUNNING AT", output), output            # mpiexec's: the PID that died


# --- the command line ------------------------------------------------------------------------------------
def test_train_on_two_ranks_from_the_command_line(tmp_path):
    status, output, _ = launch("-m", "googlenet", "train", "--epochs", "1", "--width", "0.0625",
                               "--batch-size", "64", "--out", str(tmp_path), "--no-progress")
    assert status == 0, output
    assert re.search(r"^2 processes \(MPI\): rank 0 pid \d+ on .*, rank 1 pid \d+ on ", output, re.M)
    assert len(re.findall(r"^epoch +1: train loss", output, re.M)) == 1       # rank 0 alone reports
    assert output.count("done: held-out accuracy") == 1
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["epoch"] == 1


def test_a_diverging_run_on_two_ranks_exits_1_on_both_with_one_message(tmp_path):
    status, output, _ = launch("-m", "googlenet", "train", "--epochs", "1", "--width", "0.0625",
                               "--batch-size", "64", "--lr", "1e6", "--out", str(tmp_path), "--no-progress")
    assert status == 1, output
    assert output.count("error: the training loss became") == 1, output
