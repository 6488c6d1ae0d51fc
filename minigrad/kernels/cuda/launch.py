"""Launching the kernels of this folder: on a GPU through CuPy, or on the CPU through
their twin (the same source compiled by g++ behind twin.h, called with ctypes).

    launcher = launcher_for(x)              # CuPy arrays: the GPU; NumPy arrays: the twin
    launcher.run("pool.cu", "max_pool_forward", threads, x, y, argmax, numpy.int32(N), ...)

So the kernel set called "cuda" needs no GPU: given NumPy arrays, it runs on the CPU,
through the twin, one simulated thread after another (slow; it is there for testing).

``threads`` is how many elements the kernel has work for; every kernel loops over
them with a grid-stride loop (grid.h), so any grid covers them. The GPU gets enough blocks
of 256 threads; the twin gets a deliberately small, odd grid (3 blocks of 5), so
that every thread loops several times: the loop, not just the first pass, is tested.
Arrays must be contiguous (or a window of channels of a contiguous array, for a kernel
that takes the channel count of the array around it: ``is_channel_window``); scalars are
passed as NumPy int32 / float types, and None as a NULL pointer (an optional array a kernel
tests for, such as a bias). Python
threads may launch twin kernels at once: the simulated built-ins (blockIdx, ...) are
thread_local in twin.h, one copy per thread.

Where the twin's compiled libraries live, and why they are checked. Loading a library
runs its code in this process, so a library someone else could have written must never
be loaded. The libraries are kept in the user's own cache folder,
``$XDG_CACHE_HOME/minigrad/cuda-twin`` (``~/.cache/minigrad/cuda-twin`` when
XDG_CACHE_HOME is not set), created with mode 0700. Before a library is loaded, the
folder and the file must belong to the current user and be writable by no one else
(the folder too: whoever can write to it can swap the file after the check). A folder
that fails the check is not used: the libraries are built into a fresh private
temporary folder for this process instead, with a warning saying why; a file that fails
it is built again. A folder that cannot be written to (read-only) still serves the
libraries cached in it; what is missing is built into the private temporary folder.

A library's name says what it was built from: ``pool-float-<source>-<compiler>.so``,
with <source> a SHA-256 of twin.h, the .cu file with the headers it includes, and the
compiler flags, and <compiler> one of ``g++ --version``'s output. A new g++ builds anew; without g++ at all, a library
built from the same source and flags by any g++ is loaded. Each build writes a unique
temporary file in the folder and renames it into place (atomic), so threads and
processes building the same library at once never see each other's half-written file.
"""
import atexit
import ctypes
import functools
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import warnings

import numpy

from ...backend import get_array_module

FOLDER = os.path.dirname(os.path.abspath(__file__))
C_TYPE = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
GPU_BLOCK, GPU_MAX_BLOCKS = 256, 65535
TWIN_GRID = (3, 5)              # blocks, threads per block
TWIN_FLAGS = ("-std=c++17", "-O1", "-shared", "-fPIC")


def source(name):
    with open(os.path.join(FOLDER, name), encoding="utf-8") as file:
        return file.read()


_INCLUDE = re.compile(r'^#include "([\w.]+)"$', re.MULTILINE)


def expanded_source(name):
    """The text of ``name`` with each ``#include "header"`` (a header of this folder) replaced
    by the header's text, as the preprocessor would. NVRTC compiles this string, which has no
    folder to look for headers in; and a cache keyed on it changes when a header does."""
    return _INCLUDE.sub(lambda include: expanded_source(include.group(1)), source(name))


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
    module = cupy.RawModule(code=expanded_source(file), options=(f"-Dreal={real}",))
    return module.get_function(kernel)


class TwinLauncher:
    def __init__(self, real):
        self.real = real

    def run(self, file, kernel, threads, *args):
        library = twin_library(file, self.real)
        function, set_thread = getattr(library, kernel), library.twin_set_thread
        function.restype = set_thread.restype = None
        c_args = [_c_argument(a) for a in args]
        blocks, per_block = TWIN_GRID
        for b in range(blocks):
            for t in range(per_block):
                set_thread(blocks, per_block, b, t)       # this thread's gridDim, ..., threadIdx
                function(*c_args)


def is_channel_window(array):
    """Whether an (N, C, ...) array is C consecutive channels of a contiguous (N, C', ...)
    array, C' >= C (a contiguous array is one, C' = C): each image contiguous, the images
    a whole number of channels apart. A kernel reads image n's channel c at the first element
    plus (n*C' + c) * pixels, C' = ``images_channels(array)``."""
    if array.ndim < 2 or not array[0].flags.c_contiguous:
        return False
    channel = array[0, 0].size * array.itemsize
    return array.shape[0] == 1 or (array.strides[0] % channel == 0 and array.strides[0] >= array[0].nbytes)


def images_channels(array):
    """C' of ``is_channel_window``: the channels per image of the array around ``array``."""
    if array.shape[0] == 1:
        return array.shape[1]
    return array.strides[0] // (array[0, 0].size * array.itemsize)


def _c_argument(value):
    """A ctypes argument: a pointer to an array's first element (NULL for None, as CuPy
    passes it), or a C scalar of the value's type."""
    if value is None:
        return ctypes.c_void_p(None)
    if isinstance(value, numpy.ndarray):
        if not (value.flags.c_contiguous or is_channel_window(value)):
            raise ValueError("the kernels need contiguous arrays (or windows of channels of one)")
        return ctypes.c_void_p(value.ctypes.data)
    return {numpy.int32: ctypes.c_int, numpy.float32: ctypes.c_float,
            numpy.float64: ctypes.c_double}[type(value)](value)


# --- building and caching the twin's libraries ------------------------------------------------------
def twin_missing_reason():
    """Why the CPU twin cannot be built here (no g++), or None."""
    return None if shutil.which("g++") else "g++ is not installed: the CPU twin of the CUDA kernels needs it"


def twin_command(file, real, output):
    """The g++ command line that compiles ``file`` behind twin.h into the library ``output``."""
    return ["g++", *TWIN_FLAGS, f"-Dreal={real}", "-include", os.path.join(FOLDER, "twin.h"),
            "-x", "c++", os.path.join(FOLDER, file), "-o", output]


def _sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def library_prefix(file, real):
    """'pool-float-<SHA-256 of twin.h, the source with its headers and the flags, 16 hex digits>'."""
    built_from = "\n".join([*TWIN_FLAGS, f"-Dreal={real}", source("twin.h"), expanded_source(file)])
    return f"{os.path.splitext(file)[0]}-{real}-{_sha256(built_from)[:16]}"


def compiler_version():
    """What ``g++ --version`` says, or None without g++."""
    if shutil.which("g++") is None:
        return None
    return subprocess.run(["g++", "--version"], capture_output=True, text=True, check=True).stdout


def cache_folder():
    """$XDG_CACHE_HOME/minigrad/cuda-twin, or ~/.cache/minigrad/cuda-twin (XDG_CACHE_HOME
    unset or not an absolute path, as the XDG base directory specification says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minigrad", "cuda-twin")


def distrust_reason(path):
    """Why the folder or file ``path`` must not be trusted with code this process will run, or
    None: it must belong to the current user and be writable by no one else."""
    info = os.stat(path)
    if info.st_uid != os.getuid():
        return f"{path} belongs to user id {info.st_uid}, not to you (user id {os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by other users (mode {stat.filemode(info.st_mode)})"
    return None


@functools.lru_cache(maxsize=None)
def private_temporary_folder():
    """A fresh folder of this process's own (mode 0700, random name), removed at exit."""
    folder = tempfile.mkdtemp(prefix="minigrad-cuda-twin-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def library_folder():
    """The cache folder, created (mode 0700) when missing, if it is private; otherwise,
    with a warning saying why, this process's private temporary folder."""
    folder = cache_folder()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        reason = distrust_reason(folder)
    except OSError as error:
        reason = f"{folder} cannot be created ({error.strerror})"
    if reason is None:
        return folder
    fallback = private_temporary_folder()
    warnings.warn(f"the CPU twin does not use its cache folder: {reason}; building its libraries "
                  f"in {fallback}, for this process only", RuntimeWarning, stacklevel=3)
    return fallback


@functools.lru_cache(maxsize=None)
def twin_library(file, real):
    """The .cu file compiled by g++ (behind twin.h) for `real`, loaded with ctypes: the cached
    library when a trusted one is there, else built now (see the module's docstring)."""
    folder, prefix = library_folder(), library_prefix(file, real)
    compiler = compiler_version()
    if compiler is None:
        return ctypes.CDLL(_cached_by_any_compiler(folder, prefix))
    name = f"{prefix}-{_sha256(compiler)[:8]}.so"
    path = os.path.join(folder, name)
    if os.path.exists(path):
        reason = distrust_reason(path)
        if reason is None:
            return ctypes.CDLL(path)
        warnings.warn(f"the CPU twin does not load {reason}; building it again", RuntimeWarning, stacklevel=2)
    return ctypes.CDLL(_build(file, real, folder, name))


def _cached_by_any_compiler(folder, prefix):
    """The newest trusted library built from this source and flags (by any g++), or a
    RuntimeError saying that g++ is needed."""
    found = [os.path.join(folder, name) for name in os.listdir(folder)
             if name.startswith(prefix + "-") and name.endswith(".so")]
    trusted = [path for path in found if distrust_reason(path) is None]
    if not trusted:
        raise RuntimeError(f"{twin_missing_reason()}, and {folder} holds no library built from "
                           f"the current source ({prefix}-*.so)")
    return max(trusted, key=os.path.getmtime)


def _build(file, real, folder, name):
    """Compile into a unique temporary file in ``folder`` (or, when ``folder`` cannot be
    written to, in the private temporary folder), then rename it to ``name``: the path."""
    try:
        handle, partial = tempfile.mkstemp(prefix=name + ".", suffix=".partial", dir=folder)
    except OSError as error:
        fallback = private_temporary_folder()
        warnings.warn(f"the CPU twin's cache folder {folder} is not writable ({error.strerror}): "
                      f"building {name} in {fallback}, for this process only", RuntimeWarning, stacklevel=3)
        folder = fallback
        handle, partial = tempfile.mkstemp(prefix=name + ".", suffix=".partial", dir=folder)
    os.close(handle)
    try:
        result = subprocess.run(twin_command(file, real, partial), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"g++ could not compile the twin of {file}:\n{result.stderr}")
        os.chmod(partial, 0o700)               # whatever the umask: readable and writable by you only
        path = os.path.join(folder, name)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path
