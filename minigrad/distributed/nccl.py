"""NCCL through CuPy: the gradients of CuPy arrays summed across GPUs.

MPI starts the ranks and carries the small things: NCCL's unique id (from rank 0 to the
others, once), a step's loss and counts, a stop request. NCCL moves the large arrays
between the GPUs (over NVLink, PCIe or InfiniBand, whichever joins them), on the stream
the computation runs on: the all-reduce is queued behind the backward pass's kernels,
with no wait on the host.

Each rank computes on a GPU of its own: the rank that is process number ``local_rank``
on its machine uses that machine's GPU ``local_rank``. NCCL refuses two ranks on one GPU,
so a machine with one GPU runs one rank (a world of one still goes through NCCL).
"""
from .. import backend
from .communicator import Communicator, SingleProcess


class NcclCommunicator(Communicator):
    """NCCL collectives on CuPy arrays; ``mpi``: the MpiCommunicator of the ranks (None:
    a world of one, no MPI needed)."""
    name = "nccl"

    def __init__(self, mpi=None):
        super().__init__()
        self.mpi = mpi if mpi is not None else SingleProcess()
        self.rank, self.size, self.local_rank = self.mpi.rank, self.mpi.size, self.mpi.local_rank
        self.local_size = self.mpi.local_size
        nccl = backend.nccl()
        self.cupy = backend.array_module_for("cuda")
        gpus = self.cupy.cuda.runtime.getDeviceCount()
        if self.local_rank >= gpus:
            raise RuntimeError(f"NcclCommunicator: rank {self.rank} is process {self.local_rank + 1} on its "
                               f"machine, which has {gpus} GPU(s): NCCL needs a GPU of its own for every "
                               f"rank (it refuses two ranks on one GPU); start at most {gpus} per machine")
        self.cupy.cuda.Device(self.local_rank).use()
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        if self.size > 1:
            unique_id = self.mpi.broadcast_object(unique_id)
        self.nccl = nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self.datatypes = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}
        self.sum_op = nccl.NCCL_SUM

    def allreduce(self, array):
        datatype = self.datatype(array, "allreduce")
        self.nccl.allReduce(array.data.ptr, array.data.ptr, array.size, datatype, self.sum_op, self.stream())

    def broadcast(self, array, root=0):
        datatype = self.datatype(array, "broadcast")
        self.nccl.bcast(array.data.ptr, array.size, datatype, root, self.stream())

    def stream(self):
        """The current stream: the one the model's kernels were queued on."""
        return self.cupy.cuda.get_current_stream().ptr

    def datatype(self, array, operation):
        """NCCL's code for the array's dtype, after checking that NCCL can move it in place."""
        where = f"NcclCommunicator.{operation}"
        if not isinstance(array, self.cupy.ndarray):
            raise TypeError(f"{where}: expected a CuPy array on cuda:{self.local_rank}, got "
                            f"{type(array).__name__} (NumPy arrays go through MpiCommunicator)")
        if array.device.id != self.local_rank:
            raise ValueError(f"{where}: the array is on cuda:{array.device.id}, this rank's GPU is "
                             f"cuda:{self.local_rank}")
        if not array.flags.c_contiguous:
            raise ValueError(f"{where}: expected a contiguous array, got strides {array.strides}")
        if array.dtype.name not in self.datatypes:
            raise TypeError(f"{where}: expected float32 or float64, got {array.dtype}")
        return self.datatypes[array.dtype.name]

    def barrier(self):
        """Waits for this GPU's queued work, then for every rank."""
        self.cupy.cuda.get_current_stream().synchronize()
        self.mpi.barrier()

    def sum_numbers(self, values):
        return self.mpi.sum_numbers(values)

    def abort(self, status, message):
        self.mpi.abort(status, message)

    def device_for(self, device):
        if backend.parse_device(device) == "cpu":
            raise ValueError("NcclCommunicator: the NCCL communicator is for GPU training; got device 'cpu'")
        return f"cuda:{self.local_rank}"

    def describe(self):
        return f"{self.mpi.describe()}; NCCL, one GPU per rank"
