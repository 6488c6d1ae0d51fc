"""Launching the kernels of this folder: on a GPU through CuPy, or on the CPU through
their twin (the same source compiled by g++ behind twin.h, called with ctypes).

    launcher = launcher_for(x)              # CuPy arrays: the GPU; NumPy arrays: the twin
    launcher.run("pool.cu", "max_pool_forward", threads, x, y, argmax, numpy.int32(N), ...)

``threads`` is how many elements the kernel has work for; every kernel loops over
them with a grid-stride loop, so any grid covers them. The GPU gets enough blocks
of 256 threads; the twin gets a deliberately small, odd grid (3 blocks of 5), so
that every thread loops several times: the loop, not just the first pass, is tested.
Arrays must be contiguous; scalars are passed as NumPy int32 / float types.
"""
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy

from ...backend import get_array_module

FOLDER = os.path.dirname(os.path.abspath(__file__))
C_TYPE = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
GPU_BLOCK, GPU_MAX_BLOCKS = 256, 65535
TWIN_GRID = (3, 5)              # blocks, threads per block


def source(name):
    with open(os.path.join(FOLDER, name), encoding="utf-8") as file:
        return file.read()


def real_type(dtype):
    """'float' or 'double': the `real` of the kernels; a TypeError for other dtypes."""
    if numpy.dtype(dtype) not in C_TYPE:
        raise TypeError(f"the cuda kernels take float32 or float64, got {numpy.dtype(dtype)}")
    return C_TYPE[numpy.dtype(dtype)]


def launcher_for(array):
    """The GPU launcher for a CuPy array, the CPU twin for a NumPy array."""
    if get_array_module(array) is numpy:
        return TwinLauncher(real_type(array.dtype))
    return GpuLauncher(real_type(array.dtype))


class GpuLauncher:
    def __init__(self, real):
        self.real = real

    def run(self, file, kernel, threads, *args):
        blocks = max(1, min(GPU_MAX_BLOCKS, -(-threads // GPU_BLOCK)))
        gpu_function(file, kernel, self.real)((blocks,), (GPU_BLOCK,), args)


@functools.lru_cache(maxsize=None)
def gpu_function(file, kernel, real):
    """The compiled kernel (CuPy RawModule, compiled once per file and type, cached by CuPy)."""
    import cupy
    module = cupy.RawModule(code=source(file), options=(f"-Dreal={real}",))
    return module.get_function(kernel)


class Dim3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint), ("y", ctypes.c_uint), ("z", ctypes.c_uint)]


class TwinLauncher:
    def __init__(self, real):
        self.real = real

    def run(self, file, kernel, threads, *args):
        library = twin_library(file, self.real)
        function = getattr(library, kernel)
        function.restype = None
        c_args = [_c_argument(a) for a in args]
        blocks, per_block = TWIN_GRID
        names = ("gridDim", "blockDim", "blockIdx", "threadIdx")
        grid, block, block_index, thread_index = (Dim3.in_dll(library, n) for n in names)
        grid.x, grid.y, grid.z = blocks, 1, 1
        block.x, block.y, block.z = per_block, 1, 1
        for b in range(blocks):
            for t in range(per_block):
                block_index.x, thread_index.x = b, t
                function(*c_args)


def _c_argument(value):
    """A ctypes argument: a pointer to an array's data, or a C scalar of the value's type."""
    if isinstance(value, numpy.ndarray):
        if not value.flags.c_contiguous:
            raise ValueError("the kernels need contiguous arrays")
        return ctypes.c_void_p(value.ctypes.data)
    return {numpy.int32: ctypes.c_int, numpy.float32: ctypes.c_float,
            numpy.float64: ctypes.c_double}[type(value)](value)


def twin_missing_reason():
    """Why the CPU twin cannot be built here (no g++), or None."""
    return None if shutil.which("g++") else "g++ is not installed: the CPU twin of the CUDA kernels needs it"


@functools.lru_cache(maxsize=None)
def twin_library(file, real):
    """The .cu file compiled by g++ (behind twin.h) for `real`, loaded with ctypes; built
    once per source version in a cache folder."""
    reason = twin_missing_reason()
    if reason:
        raise RuntimeError(reason)
    text = source("twin.h") + source(file)
    digest = hashlib.sha256(f"{real}\n{text}".encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), "minigrad-cuda-twin")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{os.path.splitext(file)[0]}-{real}-{digest}.so")
    if not os.path.exists(path):
        partial = f"{path}.{os.getpid()}.partial"
        command = ["g++", "-O1", "-shared", "-fPIC", f"-Dreal={real}", "-include",
                   os.path.join(FOLDER, "twin.h"), "-x", "c++", os.path.join(FOLDER, file), "-o", partial]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"g++ could not compile the twin of {file}:\n{result.stderr}")
        os.replace(partial, path)
    return ctypes.CDLL(path)
