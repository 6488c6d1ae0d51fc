"""minigrad.distributed in one process: sharding, the packed exchanges, the multi-node
optimizer, the failure guard, the cost model, and what importing it leaves out. The runs on
2 MPI ranks are in test_distributed_mpi.py, NCCL's in test_distributed_nccl.py."""
import json
import re
import subprocess
import sys

import numpy
import pytest
from hypothesis import given, strategies as st

from googlenet.model import GoogLeNet, googlenet_loss
from minigrad import distributed
from minigrad.autograd import Tensor
from minigrad.data import DataLoader, Dataset, default_augmentation, shard_of
from minigrad.distributed import cost
from minigrad.distributed.communicator import LAUNCHER_VARIABLES
from minigrad.optim import SGD

SMALL = dict(num_classes=10, in_channels=1, width=1 / 16, dropout=0.0, aux_dropout=0.0, input_size=32)


def test_importing_minigrad_and_the_train_command_imports_neither_mpi4py_nor_cupy():
    code = ("import json, sys, minigrad, minigrad.distributed, googlenet.train\n"
            "print(json.dumps([m for m in sys.modules if m.split('.')[0] in ('mpi4py', 'cupy')]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


# --- which communicator ------------------------------------------------------------------------------
def test_without_a_launcher_the_communicator_is_one_process(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    comm = distributed.communicator()
    assert isinstance(comm, distributed.SingleProcess) and (comm.rank, comm.size) == (0, 1)


def test_under_a_launcher_without_mpi4py_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)          # import mpi4py now raises ImportError
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    with pytest.raises(RuntimeError, match=r"mpi4py is not importable .*pip install -e \"\.\[distributed\]\""):
        distributed.communicator()
    assert distributed.mpi_unavailable_reason().startswith("mpi4py is not importable")


# --- shards --------------------------------------------------------------------------------------------
@given(count=st.integers(0, 40), ranks=st.integers(1, 9))
def test_the_shards_of_a_batch_are_its_items_in_order_split_as_evenly_as_can_be(count, ranks):
    items = numpy.arange(100, 100 + count)
    shards = [shard_of(items, rank, ranks) for rank in range(ranks)]
    assert numpy.array_equal(numpy.concatenate(shards), items)
    sizes = [len(shard) for shard in shards]
    assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1


def digits_like(count=11, size=8):
    rng = numpy.random.default_rng(0)
    images = rng.integers(0, 256, (count, 1, size, size), dtype=numpy.uint8)
    return Dataset(images, numpy.arange(count) % 10, [str(d) for d in range(10)])


def test_the_ranks_shares_of_each_batch_make_up_the_whole_batch():
    data = digits_like()
    whole = DataLoader(data, 4, shuffle=True, seed=5)
    shares = [DataLoader(data, 4, shuffle=True, seed=5, shard=(rank, 3)) for rank in range(3)]
    assert [len(loader) for loader in shares] == [len(whole)] * 3 == [3] * 3
    assert [whole.images_in_batch(b) for b in range(3)] == [4, 4, 3]
    for b, (images, labels) in enumerate(whole.batches(1)):
        parts = [list(loader.batches(1))[b] for loader in shares]
        assert numpy.array_equal(numpy.concatenate([p[0] for p in parts]), images)
        assert numpy.array_equal(numpy.concatenate([p[1] for p in parts]), labels)
        assert [len(p[1]) for p in parts] == [len(s) for s in numpy.array_split(labels, 3)]


def test_each_rank_augments_its_share_with_its_own_generator():
    data = digits_like()
    augmentation = default_augmentation("digits")
    one = DataLoader(data, 4, seed=5, augmentation=augmentation)
    images, _ = next(one.batches(0))
    expected = one.make_batch(numpy.arange(4), numpy.random.default_rng([5, 0, 0]))[0]
    assert numpy.array_equal(images, expected)                   # one process: as it always was
    rank_1 = DataLoader(data, 4, seed=5, augmentation=augmentation, shard=(1, 2))
    share, _ = next(rank_1.batches(0))
    expected = rank_1.make_batch(numpy.arange(2, 4), numpy.random.default_rng([5, 0, 0, 1]))[0]
    assert numpy.array_equal(share, expected)


def test_a_shard_outside_the_ranks_is_refused():
    with pytest.raises(ValueError, match=r"shard must be \(rank, ranks\) with 0 <= rank < ranks, got \(2, 2\)"):
        DataLoader(digits_like(), 4, shard=(2, 2))


# --- the arithmetic: weighted shares summed = the whole batch's mean -----------------------------------
def gradients(model):
    return [p.grad.copy() for p in model.parameters()]


def test_shares_weighted_by_their_size_sum_to_the_gradient_of_the_whole_batch():
    """What the all-reduce relies on, on uneven shares (5 and 2 images of 7)."""
    rng = numpy.random.default_rng(1)
    images, labels = rng.standard_normal((7, 1, 32, 32)), rng.integers(0, 10, 7)
    model = GoogLeNet(**SMALL, seed=0).astype(numpy.float64)
    googlenet_loss(model(Tensor(images)), labels, 0.3).backward()
    whole = gradients(model)
    summed = [numpy.zeros_like(g) for g in whole]
    for share in (slice(0, 5), slice(5, 7)):
        model.zero_grad()
        count = len(labels[share])
        googlenet_loss(model(Tensor(images[share])), labels[share], 0.3).backward(count / len(labels))
        summed = [s + g for s, g in zip(summed, gradients(model))]
    for s, w in zip(summed, whole):
        numpy.testing.assert_allclose(s, w, rtol=1e-10, atol=1e-15)


# --- the packed exchanges -------------------------------------------------------------------------------
class Twins(distributed.Communicator):
    """Two ranks that hold the same arrays: the all-reduce doubles, the broadcast keeps."""
    rank, size = 0, 2

    def __init__(self):
        super().__init__()
        self.calls = []

    def allreduce(self, array):
        self.calls.append(("allreduce", array.size))
        array *= 2

    def broadcast(self, array, root=0):
        self.calls.append(("broadcast", array.size))


def small_model():
    return GoogLeNet(**SMALL, seed=0).astype(numpy.float64)


def test_allreduce_grad_sums_every_gradient_in_one_call_in_place():
    model, comm = small_model(), Twins()
    googlenet_loss(model(Tensor(numpy.ones((2, 1, 32, 32)))), numpy.array([1, 2]), 0.3).backward()
    params = list(model.parameters())
    before = [p.grad for p in params]
    expected = [2 * g for g in before]
    comm.allreduce_grad(model)
    assert comm.calls == [("allreduce", sum(p.size for p in params))]
    assert all(p.grad is g for p, g in zip(params, before))               # the same arrays
    assert all(numpy.array_equal(p.grad, e) for p, e in zip(params, expected))


def test_a_rank_without_gradients_joins_the_sum_with_zeros():
    model, comm = small_model(), Twins()
    comm.allreduce_grad(model)
    assert all(p.grad is not None and not p.grad.any() and p.grad.shape == p.shape
               for p in model.parameters())


def test_bcast_data_writes_into_the_parameters_arrays_and_reuses_its_buffer():
    model, comm = small_model(), Twins()
    arrays = [p.data for p in model.parameters()]
    values = [a.copy() for a in arrays]
    comm.bcast_data(model)
    comm.bcast_data(model)
    assert all(p.data is a and numpy.array_equal(a, v) for p, a, v in zip(model.parameters(), arrays, values))
    assert len(comm.buffers) == 1 and len(comm.calls) == 2


def test_a_model_in_flat_buffers_sends_its_buffers_as_they_are():
    model, comm = small_model(), Twins()
    flat = model.flatten_parameters()
    comm.bcast_data(model)
    googlenet_loss(model(Tensor(numpy.ones((2, 1, 32, 32)))), numpy.array([1, 2]), 0.3).backward()
    expected = 2 * flat.grad
    views = [p.grad for p in model.parameters()]
    comm.allreduce_grad(model)
    assert comm.calls == [("broadcast", flat.size), ("allreduce", flat.size)] and comm.buffers == {}
    assert numpy.array_equal(flat.grad, expected)
    assert all(p.grad is v for p, v in zip(model.parameters(), views))       # still views of it


# --- the multi-node optimizer ---------------------------------------------------------------------------
def test_the_multi_node_optimizer_broadcasts_once_then_steps_on_the_summed_gradients():
    plain, wrapped = small_model(), small_model()
    comm = Twins()
    inner = SGD(wrapped.parameters(), lr=0.1, momentum=0.9)
    optimizer = distributed.MultiNodeOptimizer(inner, comm)
    reference = SGD(plain.parameters(), lr=0.1, momentum=0.9)
    optimizer.lr = reference.lr = 0.05                       # a schedule's rate reaches the wrapped one
    assert inner.lr == 0.05
    x, y = numpy.ones((2, 1, 32, 32)), numpy.array([3, 4])
    for model in (plain, wrapped):
        googlenet_loss(model(Tensor(x)), y, 0.3).backward(0.5)       # each twin: half the loss
    for p in plain.parameters():
        p.grad = 2 * p.grad                                  # what the twins' all-reduce makes of it
    reference.step()
    optimizer.step()
    assert [call[0] for call in comm.calls] == ["broadcast", "allreduce"]
    assert all(numpy.array_equal(p.data, q.data) for p, q in zip(plain.parameters(), wrapped.parameters()))


def test_with_one_process_the_multi_node_optimizer_steps_exactly_as_its_optimizer():
    plain, wrapped = small_model(), small_model()
    reference = SGD(plain.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    optimizer = distributed.MultiNodeOptimizer(SGD(wrapped.parameters(), lr=0.1, momentum=0.9,
                                                   weight_decay=1e-3), distributed.SingleProcess())
    x, y = numpy.ones((2, 1, 32, 32)), numpy.array([3, 4])
    for _ in range(2):
        for model, step in ((plain, reference), (wrapped, optimizer)):
            step.zero_grad()
            googlenet_loss(model(Tensor(x)), y, 0.3).backward()
            step.step()
    assert all(numpy.array_equal(p.data, q.data) for p, q in zip(plain.parameters(), wrapped.parameters()))


# --- an error on one rank ends every rank ----------------------------------------------------------------
class Aborted(Exception):
    pass


class Recorder(Twins):
    def abort(self, status, message):
        self.aborted = (status, message)
        raise Aborted


class Refusal(Exception):
    pass


@pytest.mark.parametrize("error, status, message", [
    (RuntimeError("boom"), 1, r"^Traceback .*RuntimeError: boom$"),
    (Refusal("bad --lr"), 2, r"^error: bad --lr$"),
    (KeyboardInterrupt(), 130, r"^interrupted \(Ctrl-C\)$"),
    (SystemExit(3), 3, r"^exited: 3$"),
])
def test_an_error_on_one_rank_aborts_every_rank_with_its_status(error, status, message):
    comm = Recorder()
    with pytest.raises(Aborted):
        with distributed.ends_every_rank_on_error(comm, statuses={Refusal: 2}):
            raise error
    assert comm.aborted[0] == status
    assert re.search(message, comm.aborted[1], re.S), comm.aborted[1]


@pytest.mark.parametrize("comm, error", [(Recorder(), ValueError("seen by every rank")),
                                         (Recorder(), SystemExit(0)),
                                         (distributed.SingleProcess(), RuntimeError("one process"))])
def test_agreed_errors_a_clean_exit_and_one_process_go_on_up_as_usual(comm, error):
    with pytest.raises(type(error)):
        with distributed.ends_every_rank_on_error(comm, agreed=(ValueError,)):
            raise error


# --- the cost model ---------------------------------------------------------------------------------------
def test_a_ring_sends_2_n_minus_1_over_n_of_the_gradient_from_each_rank():
    assert cost.ring_allreduce_bytes(100, 1) == 0
    assert cost.ring_allreduce_bytes(100, 2) == 100
    assert cost.ring_allreduce_bytes(100, 4) == 150
    assert cost.ring_allreduce_bytes(64, 64) == 126


def test_googlenets_gradient_is_53_5_megabytes_in_float32():
    model = GoogLeNet(num_classes=1000, aux_heads=True)
    assert model.num_parameters() == 13_378_280
    assert round(4 * model.num_parameters() / 1e6, 1) == 53.5


def test_the_efficiency_falls_with_the_ranks_and_the_time_adds_up():
    seconds = cost.ring_allreduce_seconds(53.5e6, 8, bandwidth=50e9, latency=5e-6)
    assert seconds == pytest.approx(14 * (5e-6 + 53.5e6 / 8 / 50e9))
    assert cost.scaling_efficiency(0.1, 53.5e6, 1, 50e9, 5e-6) == 1.0
    assert cost.scaling_efficiency(0.1, 53.5e6, 8, 50e9, 5e-6) == pytest.approx(0.1 / (0.1 + seconds))
    for link, efficiencies in cost.efficiency_table(0.0582, 53.5e6):
        assert efficiencies == sorted(efficiencies, reverse=True) and 0 < efficiencies[-1] < 1, link.name


def test_parameters_of_two_dtypes_cannot_share_one_buffer():
    model = small_model()
    model.linear.weight.data = model.linear.weight.data.astype(numpy.float32)
    with pytest.raises(ValueError, match="Twins: the parameters must share one dtype to travel in one "
                                         "buffer, got float32, float64"):
        Twins().bcast_data(model)


class RanksOnOneMachine:
    """What share_the_cores reads of a communicator: how many ranks share this machine."""
    def __init__(self, local_size):
        self.local_size = local_size


@pytest.mark.parametrize("ranks, threads", [(1, 8), (2, 4), (3, 2), (8, 1), (16, 1)])
def test_ranks_on_one_machine_split_its_cores_between_their_kernel_threads(monkeypatch, ranks, threads):
    from googlenet.train import share_the_cores
    from minigrad import parallel
    monkeypatch.delenv(parallel.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(parallel, "available_cores", lambda: 8)
    monkeypatch.setattr(parallel, "_process_count", None)
    share_the_cores(RanksOnOneMachine(ranks), threads=None)
    assert parallel.thread_count() == threads


@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_thread_count_the_user_chose_is_kept_under_mpiexec(monkeypatch, given):
    from googlenet.train import share_the_cores
    from minigrad import parallel
    monkeypatch.setattr(parallel, "available_cores", lambda: 8)
    monkeypatch.setattr(parallel, "_process_count", 3 if given == "option" else None)
    if given == "environment":
        monkeypatch.setenv(parallel.ENVIRONMENT_VARIABLE, "3")
    share_the_cores(RanksOnOneMachine(4), threads=3 if given == "option" else None)
    assert parallel.thread_count() == 3
