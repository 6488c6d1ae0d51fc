"""Keep the memory a training step frees, for the next step: fewer page faults on the CPU.

A training step makes and frees the same large arrays every time (activations, im2col
columns, gradients). glibc's malloc, the C allocator under NumPy on Linux, hands out every
block larger than its *mmap threshold* (128 KiB at first, raised on its own to at most 32
MiB) as fresh pages from the operating system, and gives them back when the array is freed;
it also gives back the free top of its heap beyond the *trim threshold*. Each fresh page
then costs a page fault and the kernel zeroing it: at batch 32, 224x224, about 300,000 page
faults and a third of GoogLeNet's step time went to that on the 2-core development machine
(``benchmarks/README.md``).

``keep_freed_memory()`` raises both thresholds with glibc's ``mallopt``: blocks up to 1 GiB
come from the heap and stay in it when freed, ready for the next step. The peak memory
stays what the step needs (the same blocks are reused); what changes is that the process
keeps it between steps instead of returning it. The commands of ``googlenet`` call it at
start; ``MINIGRAD_KEEP_FREED_MEMORY=0`` turns it off. It does nothing where the C library
is not glibc (macOS, Windows, musl), and nothing on GPU memory (CuPy keeps its own pool).
"""
import ctypes
import os
import platform

ENVIRONMENT_VARIABLE = "MINIGRAD_KEEP_FREED_MEMORY"

# mallopt's parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 2 ** 30            # blocks up to 1 GiB from the heap
TRIM_THRESHOLD = 2 ** 31 - 1        # the largest value mallopt takes (an int): never trim in practice


_kept = False                       # whether keep_freed_memory took effect in this process


def keep_freed_memory():
    """Ask glibc's malloc to keep freed blocks up to 1 GiB in the process (module docstring).
    True when it took effect; False where the C library is not glibc, or when
    MINIGRAD_KEEP_FREED_MEMORY is 0."""
    global _kept
    if os.environ.get(ENVIRONMENT_VARIABLE, "").strip() == "0" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _kept


def freed_memory_kept():
    """Whether this process keeps freed blocks (``keep_freed_memory`` took effect), for the
    benchmarks' machine lines: it speeds up every library in the process, PyTorch too."""
    return _kept
