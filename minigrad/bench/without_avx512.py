"""A machine with AVX-512 made to stand in for one without: NumPy, OpenBLAS and PyTorch held to
AVX2, the widest vectors a machine without AVX-512 has.

Each library picks its code for the processor when it loads, and each can be told, by an
environment variable read then, to pick as if the processor stopped at AVX2:

    NPY_DISABLE_CPU_FEATURES   NumPy: its AVX-512 builds of the loops it compiled for several
                               processors (the names ``__cpu_dispatch__`` lists) left out
    OPENBLAS_CORETYPE=Haswell  OpenBLAS: its matrix-product kernels for Haswell (AVX2)
    ATEN_CPU_CAPABILITY=avx2   PyTorch's own loops
    ONEDNN_MAX_CPU_ISA=AVX2    oneDNN, PyTorch's convolutions
    MKL_ENABLE_INSTRUCTIONS=AVX2   MKL, PyTorch's matrix products

So the variables must be set before the process starts: ``python -m googlenet bench
--without-avx512`` runs its command again in a child process that has them. What this stands
in for is the instruction set alone: the caches, the memory and the clock stay this
machine's, so a figure measured so says "held to AVX2" beside it, never "without AVX-512".
"""
import importlib
import os
import subprocess
import sys


def numpy_cpu_tables():
    """(the features NumPy compiled extra loops for, {feature: whether this process runs it}):
    NumPy's ``__cpu_dispatch__`` and ``__cpu_features__``, from its core module (``_core`` in
    NumPy 2, ``core`` in NumPy 1); ([], {}) where neither is found."""
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return list(module.__cpu_dispatch__), dict(module.__cpu_features__)
    return [], {}


NUMPY_TARGETS, NUMPY_FEATURES = numpy_cpu_tables()

MARK = "MINIGRAD_HELD_TO_AVX2"          # set in the child: it never starts another


def is_beyond_avx2(feature):
    """Whether one of NumPy's feature names needs AVX-512 ("AVX512_SKX", "X86_V4": the x86-64
    level 4, which is AVX-512)."""
    return "AVX512" in feature or feature == "X86_V4"


def variables():
    """{name: value}: the environment variables that hold each library to AVX2."""
    numpy_targets = [feature for feature in NUMPY_TARGETS if is_beyond_avx2(feature)]
    return {"NPY_DISABLE_CPU_FEATURES": " ".join(numpy_targets), "OPENBLAS_CORETYPE": "Haswell",
            "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", MARK: "1"}


def numpy_runs_avx512():
    """Whether NumPy runs any of its AVX-512 loops in this process."""
    return any(NUMPY_FEATURES.get(feature) for feature in NUMPY_TARGETS if is_beyond_avx2(feature))


def held_here():
    """Whether this process was started held to AVX2 (by ``rerun_held``)."""
    return os.environ.get(MARK) == "1"


def rerun_held(arguments):
    """Run ``python ARGUMENTS`` again with every library held to AVX2; its exit status. Its
    output goes where this process's goes."""
    print("held to AVX2 (standing in for a machine without AVX-512): "
          + " ".join(f"{name}={value!r}" if " " in value else f"{name}={value}"
                     for name, value in variables().items() if name != MARK), flush=True)
    return subprocess.call([sys.executable, *arguments], env=dict(os.environ, **variables()))


def words():
    """What this process runs, in a few words for a benchmark's header: "" when nothing was held."""
    if not held_here():
        return ""
    numpy_words = "NumPy's AVX-512 loops left out" if not numpy_runs_avx512() else "NumPy STILL runs AVX-512 loops"
    return (f"held to AVX2: {numpy_words}, OpenBLAS {os.environ.get('OPENBLAS_CORETYPE')} kernels, PyTorch "
            f"{os.environ.get('ATEN_CPU_CAPABILITY')}, oneDNN {os.environ.get('ONEDNN_MAX_CPU_ISA')}, MKL "
            f"{os.environ.get('MKL_ENABLE_INSTRUCTIONS')}")
