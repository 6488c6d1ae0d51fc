"""Communicators: what data-parallel training needs from the processes around it.

A communicator knows this process's ``rank`` among ``size`` processes and moves
arrays between them, in place:

    allreduce(array)          every rank ends with the sum of every rank's array
    broadcast(array, root=0)  every rank ends with rank ``root``'s array
    barrier()                 returns when every rank has called it

and, built on those, what a training step calls (ChainerMN's names):

    bcast_data(model)         every rank gets rank 0's parameters (once, at the start)
    allreduce_grad(model)     every rank gets the SUM of the ranks' gradients, in one call

``allreduce_grad`` sums; it does not average. The average (dividing by the number of
ranks, or weighting a rank by its share of an uneven batch) belongs in the loss: a
rank that holds ``n`` of the global batch's ``N`` images calls
``loss.backward(n / N)``, so the summed gradient is the gradient of the mean loss over
the global batch, with no pass over the gradients.

``SingleProcess`` is the world of one (every call returns at once); ``MpiCommunicator``
runs over MPI (mpi4py) on NumPy arrays; the NCCL one, for CuPy arrays, is in
``distributed/nccl.py``; ``distributed/world.py``'s ``communicator()`` picks the one that
fits how the program was started.
Importing this module never imports mpi4py: only making an MpiCommunicator does.
"""
import contextlib
import importlib.util
import os
import socket
import sys
import time
import traceback

import numpy

from .. import backend
from ..nn.flat import flat_buffer_of

# Environment variables a launcher sets in every process it starts: MPICH's and Intel
# MPI's mpiexec (hydra) and Slurm set PMI_SIZE, Open MPI sets OMPI_COMM_WORLD_SIZE,
# PMIx-based launchers PMIX_RANK.
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
ABORT_GRACE_SECONDS = 0.5         # a dying rank's message reaches mpiexec's terminal first (MpiCommunicator.abort)

MPI_MISSING = "mpi4py is not importable ({error}); pip install -e \".[distributed]\" installs it with MPICH"


def launched_by_mpiexec():
    """True when an MPI launcher (mpiexec, mpirun, srun) started this process."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def mpi_unavailable_reason():
    """Why MPI cannot be used here, as one sentence; None when mpi4py is installed. (Only
    looks: importing ``mpi4py.MPI`` would start MPI in this process.)"""
    try:
        found = importlib.util.find_spec("mpi4py.MPI") is not None
    except ImportError as error:
        return MPI_MISSING.format(error=error)
    return None if found else MPI_MISSING.format(error="mpi4py has no MPI module")


def parameters_of(model):
    """The parameters of a Module, or a list of parameters as given."""
    return list(model.parameters()) if hasattr(model, "parameters") else list(model)


class Communicator:
    """What every communicator shares: the packed parameter and gradient exchanges.

    Subclasses give ``rank``, ``size``, ``allreduce``, ``broadcast``, ``barrier``,
    ``sum_numbers`` and ``abort``. The gradients travel in ONE call: a model whose parameters
    are in flat buffers (``Module.flatten_parameters``, ``minigrad/nn/flat.py``) sends its
    gradient buffer as it is; any other model's gradients are packed into one buffer (kept
    between steps), summed, and copied back.
    """
    rank, size, local_rank, local_size = 0, 1, 0, 1     # local: the ranks on this machine

    def __init__(self):
        self.buffers = {}                     # (purpose, dtype, device) -> flat array

    def bcast_data(self, model):
        """Every rank's parameters become rank 0's (in place: views of them stay valid)."""
        params = parameters_of(model)
        if not params:
            return
        flat = flat_buffer_of(params)
        if flat is not None:                 # the parameters are views of one buffer already
            flat.gather()
            self.broadcast(flat.data, root=0)
            return
        buffer = self.pack("data", params, [p.data for p in params])
        self.broadcast(buffer, root=0)
        self.unpack(buffer, params, "data")

    def allreduce_grad(self, model):
        """Every rank's gradients become the sum over the ranks, in one all-reduce. A
        parameter without a gradient (a rank whose share of the batch is empty) counts as
        zeros, and gets the sum like the others."""
        params = parameters_of(model)
        if not params:
            return
        flat = flat_buffer_of(params)
        if flat is not None:                 # the gradients are views of one buffer already
            flat.gather()
            self.allreduce(flat.grad)
            return
        buffer = self.pack("grad", params, [p.grad for p in params])
        self.allreduce(buffer)
        self.unpack(buffer, params, "grad")

    def pack(self, purpose, params, arrays):
        """The arrays one after another in one flat buffer (zeros for a None)."""
        dtypes = sorted({str(p.dtype) for p in params})
        if len(dtypes) > 1:
            raise ValueError(f"{type(self).__name__}: the parameters must share one dtype to travel in "
                             f"one buffer, got {', '.join(dtypes)}")
        total = sum(p.size for p in params)
        key = (purpose, params[0].dtype, params[0].device)
        if key not in self.buffers or self.buffers[key].size != total:
            xp = backend.array_module_for(params[0].device)
            self.buffers[key] = xp.empty(total, dtype=params[0].dtype)
        buffer, offset = self.buffers[key], 0
        for p, array in zip(params, arrays):
            if array is None:
                buffer[offset:offset + p.size] = 0
            else:
                buffer[offset:offset + p.size] = array.ravel()
            offset += p.size
        return buffer

    @staticmethod
    def unpack(buffer, params, attribute):
        """Copy the buffer back into each parameter's ``data`` or ``grad``."""
        offset = 0
        for p in params:
            values = buffer[offset:offset + p.size].reshape(p.shape)
            target = getattr(p, attribute)
            if target is None:
                setattr(p, attribute, values.copy())
            else:
                target[...] = values
            offset += p.size

    def any(self, flag):
        """True on every rank when ``flag`` is true on at least one (a stop request)."""
        return self.sum_numbers([float(bool(flag))])[0] > 0

    def device_for(self, device):
        """The device this rank computes on when asked for ``device``."""
        return device

    def describe(self):
        """One line: how many processes, where, with which process ids."""
        return "1 process"


class SingleProcess(Communicator):
    """A world of one process: every exchange leaves the arrays as they are."""
    name = "single"

    def bcast_data(self, model):
        pass

    def allreduce_grad(self, model):
        pass

    def allreduce(self, array):
        pass

    def broadcast(self, array, root=0):
        pass

    def barrier(self):
        pass

    def sum_numbers(self, values):
        return [float(value) for value in values]

    def abort(self, status, message):
        raise RuntimeError("SingleProcess.abort: a single process ends by raising, not by abort")


class MpiCommunicator(Communicator):
    """The processes ``mpiexec`` started, through MPI (mpi4py), on NumPy arrays.

    ``allreduce`` is ``Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)``: the MPI library picks
    the algorithm (a ring or recursive halving for large arrays). CuPy arrays need the
    NCCL communicator (this MPI build cannot read GPU memory).
    """
    name = "mpi"

    def __init__(self, comm=None):
        super().__init__()
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise RuntimeError(MPI_MISSING.format(error=error)) from None
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        on_this_machine = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = on_this_machine.Get_rank(), on_this_machine.Get_size()

    def allreduce(self, array):
        self.comm.Allreduce(self.MPI.IN_PLACE, self.host_array(array, "allreduce"), op=self.MPI.SUM)

    def broadcast(self, array, root=0):
        self.comm.Bcast(self.host_array(array, "broadcast"), root=root)

    def host_array(self, array, operation):
        if backend.get_array_module(array) is not numpy:
            raise TypeError(f"MpiCommunicator.{operation}: got an array on {backend.device_of(array)}; MPI "
                            f"here moves NumPy arrays only: use the NCCL communicator for GPU arrays")
        if not array.flags.c_contiguous:
            raise ValueError(f"MpiCommunicator.{operation}: expected a contiguous array (it is changed "
                             f"in place), got one with strides {array.strides}")
        return array

    def barrier(self):
        self.comm.Barrier()

    def broadcast_object(self, value, root=0):
        """A small Python object (an NCCL unique id, say) from rank ``root`` to every rank."""
        return self.comm.bcast(value, root=root)

    def sum_numbers(self, values):
        """The sums over the ranks of a few numbers (a step's loss and counts), in float64."""
        array = numpy.array(values, dtype=numpy.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array.tolist()

    def abort(self, status, message):
        """Print ``message`` naming this rank, then end every rank (MPI_Abort): a rank
        that cannot go on must not leave the others waiting in a collective forever.

        mpiexec carries each rank's output to the terminal through pipes of its own, and
        MPI_Abort ends mpiexec too: a message still in those pipes would be lost (it
        happened, one run in several hundred), so the rank waits ABORT_GRACE_SECONDS
        between the two."""
        print(f"rank {self.rank} of {self.size}: {message}", file=sys.stderr, flush=True)
        time.sleep(ABORT_GRACE_SECONDS)
        self.comm.Abort(status)

    def describe(self):
        where = self.comm.allgather((os.getpid(), socket.gethostname()))
        ranks = ", ".join(f"rank {rank} pid {pid} on {host}" for rank, (pid, host) in enumerate(where))
        return f"{self.size} processes (MPI): {ranks}"


@contextlib.contextmanager
def ends_every_rank_on_error(comm, agreed=(), statuses=None):
    """Inside ``with ends_every_rank_on_error(comm):`` an exception on one rank ends every
    rank, at once, with a message naming the rank (``comm.abort``); without it, the others
    would wait forever for that rank in their next all-reduce.

    ``agreed``: the exceptions that every rank raises together (a loss that became NaN,
    seen by all through the step's exchange): they go on up as usual. ``statuses``:
    {exception class: exit status} for errors that are the user's to fix (reported in one
    line); any other exception exits with 1 and its traceback, a Ctrl-C with 130. In a
    single process nothing changes.
    """
    try:
        yield
    except BaseException as error:
        if comm.size == 1 or isinstance(error, agreed) or (isinstance(error, SystemExit) and not error.code):
            raise
        comm.abort(*exit_status_and_message(error, statuses or {}))


def exit_status_and_message(error, statuses):
    if isinstance(error, SystemExit):
        return (error.code if isinstance(error.code, int) else 1), f"exited: {error.code}"
    if isinstance(error, KeyboardInterrupt):
        return 130, "interrupted (Ctrl-C)"
    for kind, status in statuses.items():
        if isinstance(error, kind):
            return status, f"error: {error}"
    return 1, "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
