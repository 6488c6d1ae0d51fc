"""Data-parallel training: one model on several processes, each on its share of every batch.

Every rank (process) holds the whole model. Each step, rank r computes the loss and the
gradients on its own share of the global batch; one all-reduce sums the gradients over
the ranks; then every rank makes the same update, so the copies stay identical. With
each rank's loss weighted by its share of the batch, the summed gradient is exactly the
gradient of the mean loss over the global batch: N ranks with batch B each take the
steps one process would take with batch N x B.

    from minigrad import distributed
    comm = distributed.communicator()           # MPI under mpiexec; else one process
    optimizer = distributed.MultiNodeOptimizer(SGD(model.parameters(), lr=0.01), comm)
    loader = DataLoader(train_set, batch_size * comm.size, shuffle=True, shard=(comm.rank, comm.size))
    for b, (images, labels) in enumerate(loader.batches(epoch)):
        loss = F.cross_entropy(model(Tensor(images)), labels)
        optimizer.zero_grad()
        loss.backward(len(labels) / loader.images_in_batch(b))   # this rank's share
        optimizer.step()                         # the all-reduce, then the update

run as ``mpiexec -n 4 python train.py`` (``mpiexec -hosts a,b -n 8 ...`` across machines).
The design is ChainerMN's: a communicator with ``bcast_data(model)`` and
``allreduce_grad(model)`` (``communicator.py``: one process, or MPI through mpi4py for
NumPy arrays; ``nccl.py``: NCCL through CuPy for GPU arrays; ``world.py`` picks one), and
an optimizer wrapper that broadcasts once and all-reduces every step (``optimizer.py``). ``cost.py`` says what
the all-reduce costs at N GPUs. ``ends_every_rank_on_error`` turns an error on one rank
into the end of all of them, naming the rank, where the others would wait forever.

Importing this package never imports mpi4py (nor CuPy): making a communicator does.
"""
from ..data import shard_of
from .communicator import (Communicator, MpiCommunicator, SingleProcess, ends_every_rank_on_error,
                           launched_by_mpiexec, mpi_unavailable_reason, parameters_of)
from .nccl import NcclCommunicator
from .optimizer import MultiNodeOptimizer
from .world import communicator

__all__ = ["Communicator", "SingleProcess", "MpiCommunicator", "NcclCommunicator", "communicator",
           "MultiNodeOptimizer", "ends_every_rank_on_error", "launched_by_mpiexec",
           "mpi_unavailable_reason", "parameters_of", "shard_of"]

