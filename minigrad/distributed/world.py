"""Which communicator fits how this program was started: ``communicator(device)``.

It sits above both kinds of communicator (``communicator.py``: one process or MPI;
``nccl.py``: NCCL on GPUs), so that neither imports the other's module.
"""
from .. import backend
from .communicator import MpiCommunicator, SingleProcess, launched_by_mpiexec
from .nccl import NcclCommunicator


def communicator(device="cpu"):
    """The communicator for how this program was started: MPI under mpiexec (NCCL when
    ``device`` is a GPU), else a single process. Under mpiexec without mpi4py: an error
    saying how to install it."""
    if not launched_by_mpiexec():
        return SingleProcess()
    mpi = MpiCommunicator()
    if backend.parse_device(device) == "cpu":
        return mpi
    return NcclCommunicator(mpi)
