"""NCCL through CuPy (minigrad/distributed/nccl.py), on a GPU: skipped here without one.

A world of one rank still runs every NCCL call (the packed all-reduce and broadcast on the
compute stream), so one GPU checks the communicator: a step through it must equal the
un-wrapped step. Two ranks need two GPUs: NCCL refuses two ranks on one device."""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy
import pytest

from minigrad import backend, distributed
from minigrad.autograd import Tensor
from minigrad.optim import SGD

pytestmark = pytest.mark.gpu
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def nccl_comm():
    reason = backend.nccl_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    return distributed.NcclCommunicator()


def small_model(device):
    from googlenet.model import GoogLeNet
    return GoogLeNet(num_classes=10, in_channels=1, width=1 / 16, dropout=0.0, aux_dropout=0.0,
                     seed=0, input_size=32).astype(numpy.float64).to(device)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_a_world_of_one_sums_and_broadcasts_in_place(nccl_comm, dtype):
    cupy = backend.array_module_for("cuda")
    values = cupy.arange(10, dtype=dtype)
    nccl_comm.allreduce(values)
    nccl_comm.broadcast(values)
    assert numpy.array_equal(backend.to_numpy(values), numpy.arange(10, dtype=dtype))
    with pytest.raises(TypeError, match="expected a CuPy array on cuda:0, got ndarray"):
        nccl_comm.allreduce(numpy.zeros(3))
    with pytest.raises(TypeError, match="expected float32 or float64, got int64"):
        nccl_comm.allreduce(cupy.zeros(3, dtype=numpy.int64))


def test_a_world_of_one_on_a_gpu_steps_exactly_as_the_unwrapped_optimizer(nccl_comm):
    from googlenet.model import googlenet_loss
    device = nccl_comm.device_for("cuda")
    plain, wrapped = small_model(device), small_model(device)
    reference = SGD(plain.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    optimizer = distributed.MultiNodeOptimizer(SGD(wrapped.parameters(), lr=0.1, momentum=0.9,
                                                   weight_decay=1e-3), nccl_comm)
    x = numpy.random.default_rng(0).standard_normal((4, 1, 32, 32))
    y = numpy.array([1, 2, 3, 4])
    for _ in range(2):
        for model, step in ((plain, reference), (wrapped, optimizer)):
            step.zero_grad()
            googlenet_loss(model(Tensor(x, device=device)), y, 0.3).backward()
            step.step()
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        assert numpy.array_equal(backend.to_numpy(p.data), backend.to_numpy(q.data))


def test_two_nccl_ranks_train_alike():
    """2 ranks, a GPU each: the ranks' weights after a step are identical."""
    reason = backend.nccl_unavailable_reason() or distributed.mpi_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    gpus = backend.array_module_for("cuda").cuda.runtime.getDeviceCount()
    if gpus < 2:
        pytest.skip(f"2 NCCL ranks need 2 GPUs and this machine has {gpus}: NCCL refuses two ranks "
                    f"on one device")
    mpiexec = str(pathlib.Path(sys.executable).with_name("mpiexec"))
    mpiexec = mpiexec if os.path.exists(mpiexec) else shutil.which("mpiexec")
    result = subprocess.run([mpiexec, "-n", "2", sys.executable, "-c", TWO_RANKS], cwd=ROOT, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identical: True" in result.stdout


TWO_RANKS = """
import numpy
from googlenet.model import GoogLeNet, googlenet_loss
from minigrad import backend, distributed
from minigrad.autograd import Tensor
from minigrad.optim import SGD
comm = distributed.communicator("cuda")
device = comm.device_for("cuda")
model = GoogLeNet(num_classes=10, in_channels=1, width=1 / 16, dropout=0.0, aux_dropout=0.0,
                  seed=comm.rank, input_size=32).to(device)
optimizer = distributed.MultiNodeOptimizer(SGD(model.parameters(), lr=0.1, momentum=0.9), comm)
x = numpy.random.default_rng(comm.rank).standard_normal((4, 1, 32, 32)).astype(numpy.float32)
googlenet_loss(model(Tensor(x, device=device)), numpy.arange(4), 0.3).backward(0.5)
optimizer.step()
flat = numpy.concatenate([backend.to_numpy(p.data).ravel() for p in model.parameters()])
gathered = comm.mpi.comm.gather(flat)
if comm.rank == 0:
    print("identical:", all(numpy.array_equal(g, gathered[0]) for g in gathered))
"""
