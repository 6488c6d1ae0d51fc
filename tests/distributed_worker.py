"""What each rank runs in tests/test_distributed_mpi.py: ``mpiexec -n 2 python
tests/distributed_worker.py MODE OUT``. Rank 0 writes what the ranks did into the folder
OUT (``steps.npz``, ``trainer.json``, ...); the test compares it with one process.

steps     SGD steps of a small GoogLeNet in float64 (its parameters in flat buffers) through
          MultiNodeOptimizer: the ranks start from different weights; saved: the weights after
          the broadcast and after every step, from every rank, and the all-reduce of the flat
          gradient buffer beside a per-tensor one
trainer   googlenet.train's Trainer on 2 ranks: a whole run, and the same run stopped (asked
          on rank 0 only) and resumed; saved: the final weights, whether the ranks' weights
          were identical after every step, and which files rank 1 tried to write
raise     rank 1 raises in the middle of training (inside ends_every_rank_on_error)
kill      rank 1 kills itself in the middle of training
"""
import json
import os
import signal
import sys
import time

import numpy

from googlenet import train as train_module
from googlenet.model import GoogLeNet, googlenet_loss
from googlenet.train import TrainConfig, Trainer
from minigrad import distributed
from minigrad.autograd import Tensor
from minigrad.data import DataLoader, load_digits
from minigrad.optim import SGD

# The small network of every mode: 1/16 of the paper's widths on 32x32 digits.
NETWORK = dict(num_classes=10, in_channels=1, width=1 / 16, dropout=0.0, aux_dropout=0.0, input_size=32)
STEPS_DATA = dict(images=17, global_batch=8, steps=3)        # batches of 8, 8 and 1 images


def digits():
    return load_digits(32).split(0.2, seed=0)


def flat_weights(model):
    return numpy.concatenate([p.numpy().ravel() for p in model.parameters()])


def steps_mode(comm, out):
    """k SGD steps of the float64 network, the ranks starting from different weights."""
    train, _ = digits()
    data = train.subset(numpy.arange(STEPS_DATA["images"]))
    model = GoogLeNet(**NETWORK, seed=comm.rank).astype(numpy.float64)      # a different start per rank
    model.flatten_parameters()                     # as the Trainer does: one buffer for all gradients
    before = comm.comm.gather(flat_weights(model))
    optimizer = distributed.MultiNodeOptimizer(SGD(model.parameters(), lr=0.05, momentum=0.9,
                                                   weight_decay=1e-3), comm)
    after_broadcast = comm.comm.gather(flat_weights(model))
    loader = DataLoader(data, STEPS_DATA["global_batch"], shuffle=True, seed=3, shard=(comm.rank, comm.size))
    packed, per_tensor = packed_and_per_tensor_sums(comm, model, loader)
    weights, shares = [], []
    for b, (images, labels) in enumerate(loader.batches(0)):
        optimizer.zero_grad()
        if len(labels):
            loss = googlenet_loss(model(Tensor(images.astype(numpy.float64))), labels, 0.3)
            loss.backward(len(labels) / loader.images_in_batch(b))
        optimizer.step()
        shares.append(len(labels))
        weights.append(comm.comm.gather(flat_weights(model)))
    shares = comm.comm.gather(shares)
    if comm.rank == 0:
        numpy.savez(os.path.join(out, "steps.npz"), before=numpy.array(before),
                    after_broadcast=numpy.array(after_broadcast), weights=numpy.array(weights),
                    packed=packed, per_tensor=per_tensor, shares=numpy.array(shares))


def packed_and_per_tensor_sums(comm, model, loader):
    """The first batch's gradients summed over the ranks twice: one tensor at a time, and
    in one all-reduce of the flat gradient buffer (``allreduce_grad``). The gradients are
    cleared afterwards."""
    images, labels = next(loader.batches(0))
    googlenet_loss(model(Tensor(images.astype(numpy.float64))), labels, 0.3).backward()
    per_tensor = per_tensor_sum(comm, model)
    comm.allreduce_grad(model)
    packed = numpy.concatenate([p.grad.ravel() for p in model.parameters()])
    model.zero_grad()
    return packed, per_tensor


def per_tensor_sum(comm, model):
    """The gradients summed over the ranks one tensor at a time (a zero gradient for none)."""
    sums = []
    for p in model.parameters():
        grad = numpy.zeros(p.shape) if p.grad is None else p.grad.copy()
        comm.allreduce(grad)
        sums.append(grad.ravel())
    return numpy.concatenate(sums)


def tiny_config(out, **options):
    settings = dict(width=1 / 16, epochs=2, batch_size=2, average=0.9, dropout=0.0, aux_dropout=0.0,
                    out=out)
    return TrainConfig(**{**settings, **options})


def tiny_data():
    train, held_out = digits()
    return train.subset(numpy.arange(13)), held_out.subset(numpy.arange(5))   # last batch: 1 image


def trainer_mode(comm, out):
    """A whole 2-rank run; the same run stopped after step 3 (asked on rank 0 only) and
    resumed; and which files rank 1 tried to write."""
    writes = watch_writes() if comm.rank == 1 else []
    identical = []

    def compare_ranks(trainer):
        gathered = comm.comm.allgather(flat_weights(trainer.model).tobytes())
        identical.append(all(g == gathered[0] for g in gathered))

    whole = Trainer(tiny_config(os.path.join(out, "whole")), data=tiny_data(), progress=False, comm=comm)
    whole.run(after_step=compare_ranks)

    def stop_on_rank_0(trainer):
        compare_ranks(trainer)
        if comm.rank == 0 and len(identical) == len(whole_steps) + 3:
            trainer.stop_requested = True

    whole_steps = list(identical)
    stopped_out = os.path.join(out, "stopped")
    stopped = Trainer(tiny_config(stopped_out), data=tiny_data(), progress=False, comm=comm)
    stopped.run(after_step=stop_on_rank_0)
    stopped_at = (stopped.epoch, stopped.step)
    resumed = Trainer(tiny_config(stopped_out), data=tiny_data(), progress=False, comm=comm,
                      resume=os.path.join(stopped_out, "checkpoint.npz"))
    resumed.run(after_step=compare_ranks)
    report = dict(identical=identical, whole_steps=len(whole_steps), stopped_at=stopped_at,
                  stop_requested=stopped.stop_requested, writes_by_rank_1=comm.comm.gather(writes))
    if comm.rank == 0:
        numpy.savez(os.path.join(out, "trainer.npz"), whole=flat_weights(whole.model),
                    resumed=flat_weights(resumed.model))
        with open(os.path.join(out, "trainer.json"), "w") as file:
            json.dump({**report, "writes_by_rank_1": report["writes_by_rank_1"][1]}, file)


def watch_writes():
    """Record every call of the trainer's file writers (rank 1 must make none)."""
    calls = []
    for name in ("save_checkpoint", "write_metrics", "plot_history"):
        original = getattr(train_module, name)

        def recorded(*args, _name=name, _original=original, **options):
            calls.append(_name)
            return _original(*args, **options)
        setattr(train_module, name, recorded)
    return calls


def failing_mode(comm, out, how):
    """Rank 1 fails at its third step: by raising (inside the guard) or by being killed."""
    def fail(trainer):
        if comm.rank == 1 and trainer.step == 3:
            print(f"rank 1 fails at {time.time():.3f}", flush=True)
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("planted failure on rank 1")

    print(comm.describe(), flush=True)
    with distributed.ends_every_rank_on_error(comm):
        trainer = Trainer(tiny_config(out, epochs=50), data=tiny_data(), progress=False, comm=comm)
        trainer.run(after_step=fail)


def main(mode, out):
    comm = distributed.communicator()
    if mode == "steps":
        steps_mode(comm, out)
    elif mode == "trainer":
        trainer_mode(comm, out)
    else:
        failing_mode(comm, out, mode)


if __name__ == "__main__":
    main(*sys.argv[1:])
