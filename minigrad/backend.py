"""The one place that knows NumPy from CuPy.

Everything else asks this module for an array module (``xp``), a device name or a
random generator; nothing else in minigrad imports CuPy. CuPy is imported lazily,
the first time a GPU is asked for, so CPU-only users never touch it.

Device names are ``"cpu"``, ``"cuda"`` (the current GPU) and ``"cuda:N"``.

TF32 (``allow_tf32``, ``tf32_allowed``): whether float32 matrix products on a GPU may use
its faster, less precise TensorFloat-32 mode; off unless asked for.
"""
import os
import sys

import numpy

DEFAULT_DTYPE = numpy.float32

_cupy_module = None      # the imported cupy module, once imported
_cupy_import_error = None


def _import_cupy():
    """Import CuPy on first use; return None (and remember why) when it is not there."""
    global _cupy_module, _cupy_import_error
    if _cupy_module is None and _cupy_import_error is None:
        try:
            import cupy
            _cupy_module = cupy
        except Exception as error:          # not installed, or a broken CUDA install
            _cupy_import_error = error
    return _cupy_module


def gpu_unavailable_reason():
    """Why no GPU can be used, as one sentence; None when one can."""
    cupy = _import_cupy()
    if cupy is None:
        return f"CuPy is not importable ({_cupy_import_error.__class__.__name__}: {_cupy_import_error})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:              # CuPy present but no driver / runtime
        return f"CuPy found no usable CUDA driver ({error})"
    if count == 0:
        return "CuPy is installed but no CUDA device is visible"
    return None


def is_gpu_available():
    """True when CuPy imports and sees at least one CUDA device. Never raises."""
    try:
        return gpu_unavailable_reason() is None
    except Exception:
        return False


def nccl_unavailable_reason():
    """Why NCCL (GPU collectives, through CuPy) cannot be used, as one sentence; None when
    it can."""
    reason = gpu_unavailable_reason()
    if reason is not None:
        return reason
    try:
        from cupy.cuda import nccl
    except Exception as error:
        return f"CuPy's NCCL binding does not import ({error.__class__.__name__}: {error})"
    if not nccl.available:
        return ("CuPy found no NCCL library (pip install nvidia-nccl-cu13 for a CUDA 13 driver, "
                "nvidia-nccl-cu12 for CUDA 12)")
    return None


def nccl():
    """CuPy's NCCL binding, ``cupy.cuda.nccl``; a RuntimeError saying why when it is not usable."""
    reason = nccl_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"NCCL requested but not usable: {reason}")
    from cupy.cuda import nccl
    return nccl


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``.

    Only looks at CuPy when something else already imported it: if CuPy is not
    in ``sys.modules`` no array can be a CuPy array.
    """
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        for array in arrays:
            if isinstance(array, cupy.ndarray):
                return cupy
    return numpy


def parse_device(device):
    """Normalise a device name: ``"cpu"``, ``"cuda"`` -> ``"cuda:0"``-style, or raise."""
    if device is None:
        return "cpu"
    name = str(device).strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name == "gpu":
        return "cuda:0"
    if name.startswith("cuda:") and name[5:].isdigit():
        return name
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def device_of(array):
    """The device name an array lives on."""
    if get_array_module(array) is numpy:
        return "cpu"
    return f"cuda:{array.device.id}"


def _require_gpu(device):
    reason = gpu_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"device {device!r} requested but no GPU is usable: {reason}")
    cupy = _cupy_module
    index = int(device.split(":")[1])
    count = cupy.cuda.runtime.getDeviceCount()
    if index >= count:
        raise RuntimeError(f"device {device!r} requested but only {count} CUDA device(s) exist")
    return cupy, index


def to_device(array, device):
    """Return ``array`` on ``device`` (the same object when it is already there)."""
    device = parse_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    cupy, index = _require_gpu(device)
    with cupy.cuda.Device(index):
        return cupy.asarray(array)  # copies host->device, or between devices


def array_module_for(device):
    """The array module that holds arrays on ``device``."""
    device = parse_device(device)
    if device == "cpu":
        return numpy
    return _require_gpu(device)[0]


def default_rng(seed=None, device="cpu"):
    """A seedable random generator on ``device`` (NumPy's or CuPy's ``Generator``).

    ``seed``: None, an int or a sequence of ints such as [seed, epoch, step] (CuPy takes
    one int: a sequence is turned into one by NumPy's SeedSequence)."""
    device = parse_device(device)
    if device == "cpu":
        return numpy.random.default_rng(seed)
    cupy, index = _require_gpu(device)
    if seed is not None and not isinstance(seed, (int, numpy.integer)):
        seed = int(numpy.random.SeedSequence(seed).generate_state(1, dtype=numpy.uint64)[0])
    with cupy.cuda.Device(index):
        return cupy.random.default_rng(seed)


def is_capturing(array):
    """Whether the current CUDA stream is being captured into a graph (minigrad/cuda_graph.py) on
    ``array``'s GPU: then no value may be read back to the host. False for NumPy arrays."""
    if get_array_module(array) is numpy:
        return False
    return bool(_cupy_module.cuda.get_current_stream().is_capturing())


def scatter_add(target, index, values):
    """target[index] += values, adding every time an index repeats (NumPy's add.at;
    CuPy's cupyx.scatter_add)."""
    if get_array_module(target) is numpy:
        numpy.add.at(target, index, values)
    else:
        import cupyx
        cupyx.scatter_add(target, index, values)


def gpu_timed(function):
    """(host seconds, GPU seconds) of one call of ``function()`` on the current GPU, no
    warm-up: CuPy's profiler (host clock around the call, CUDA events around its work)."""
    from cupyx.profiler import benchmark
    result = benchmark(function, n_repeat=1, n_warmup=0, name="step")   # a callable object has no __name__
    return float(result.cpu_times[0]), float(result.gpu_times[0][0])


def to_numpy(array):
    """A NumPy copy/view of any backend array (for printing, saving, comparing)."""
    if get_array_module(array) is numpy:
        return numpy.asarray(array)
    return array.get()


# --- TF32: the GPU's faster, less precise float32 products ------------------------------------
TF32_VARIABLE = "MINIGRAD_TF32"
_tf32_choice = None          # what allow_tf32 chose; None: the environment variable decides


def allow_tf32(allowed):
    """Let float32 matrix products on a GPU run in TF32 (True), or not (False); None hands
    the choice back to the environment variable MINIGRAD_TF32 ("1" allows, "0" or unset does not).

    TF32 (TensorFloat-32) rounds each input of a product to 10 bits of mantissa instead of
    float32's 23 and adds in float32 on the tensor cores: about 1e-3 relative error per
    product instead of 1e-7, and several times the speed (conv2's product at batch 32 on an
    H200: 0.12 ms instead of 0.48 ms). It is off by default, so that float32 on a GPU agrees
    with float32 on the CPU within the bounds of ``minigrad.tolerance``; the benchmarks print
    its state on every line. It governs the products of ``minigrad.kernels.cuda.blas.gemm``
    (every matrix product of the cuda kernel set); float64 and the CPU never use it.
    """
    global _tf32_choice
    if allowed not in (True, False, None):
        raise ValueError(f"allow_tf32: expected True, False or None, got {allowed!r}")
    _tf32_choice = allowed


def tf32_allowed():
    """Whether float32 matrix products on a GPU may run in TF32 (see ``allow_tf32``)."""
    if _tf32_choice is not None:
        return _tf32_choice
    value = os.environ.get(TF32_VARIABLE, "0").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"{TF32_VARIABLE} must be 0 or 1 (TF32 off or on), got {value!r}")
    return value == "1"
