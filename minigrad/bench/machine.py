"""What a benchmark ran on, in the words a results table needs beside its numbers.

    machine()        {"cpu": "AMD EPYC ...", "cores": 2, "avx512": True, "numpy": "2.3.5",
                      "blas": "openblas 0.3.30", "date": "2026-12-05", ...}
    machine_line()   the same as one line ("with AVX-512 but HELD TO AVX2" under
                     ``without_avx512``)
    threads()        {"usable cores": 2, "BLAS threads": 2, "kernel threads": 2}: who may run on
                     how many cores
    load_average()   the 1, 5 and 15 minute load averages (a busy machine makes noise)
    tf32_line()      whether float32 matrix products may round their inputs to TF32

Each reads what the process can see: /proc/cpuinfo for the CPU model and its AVX-512 flag,
``os.sched_getaffinity`` for the cores this process may use (fewer than the machine's when
a container or ``taskset`` limits it), threadpoolctl (installed with scikit-learn) for the
BLAS library NumPy calls, its version and its thread count.
"""
import datetime
import os
import platform

import numpy

from .. import backend, blas_setup, parallel
from . import without_avx512


def cpu_model_and_flags():
    """(CPU model name, set of CPU flags): from /proc/cpuinfo's first processor where it
    exists, else the platform's name for the processor and no flags."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model is None:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def usable_cores():
    """The cores this process may run on (its affinity), or every core where that is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                      # not on Linux
        return os.cpu_count()


def blas_libraries():
    """[{"library": "openblas", "version": "0.3.30", "threads": 2, "kernels": "Zen"}, ...] of the
    BLAS libraries loaded in this process, from threadpoolctl ("kernels": the processor whose
    kernels OpenBLAS runs, None where the library does not say); [] without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": info.get("internal_api", info.get("prefix")), "version": info.get("version"),
             "threads": info.get("num_threads"), "kernels": info.get("architecture")}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def blas_words(library):
    """"openblas 0.3.31 (Zen kernels)": one of ``blas_libraries()`` in a few words."""
    kernels = f" ({library['kernels']} kernels)" if library["kernels"] else ""
    return f"{library['library']} {library['version']}{kernels}"


def machine():
    """The machine and the software versions, as a dict (``machine_line`` prints it)."""
    model, flags = cpu_model_and_flags()
    blas = blas_libraries()
    found = {"cpu": model, "cores": os.cpu_count(), "usable cores": usable_cores(),
             "avx512": "avx512f" in flags, "held to avx2": without_avx512.held_here(), "numpy": numpy.__version__,
             "blas": ", ".join(map(blas_words, blas)) or "unknown",
             "python": platform.python_version(), "date": datetime.date.today().isoformat()}
    if backend.is_gpu_available():
        cupy = backend.array_module_for("cuda")
        properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        found["gpu"] = properties["name"].decode() if isinstance(properties["name"], bytes) else properties["name"]
        found["cupy"] = cupy.__version__
    return found


def machine_line(found=None):
    """One line: CPU model, cores, AVX-512 or not, (the GPU), NumPy and BLAS versions, date."""
    m = found or machine()
    cores = f"{m['cores']} cores" + (f" ({m['usable cores']} usable)" if m["usable cores"] != m["cores"] else "")
    gpu = f", {m['gpu']} (CuPy {m['cupy']})" if "gpu" in m else ""
    avx512 = ("with AVX-512 but HELD TO AVX2 (--without-avx512)" if m.get("held to avx2")
              else f"{'with' if m['avx512'] else 'without'} AVX-512")
    return (f"{m['cpu']}, {cores}, {avx512}{gpu}; NumPy {m['numpy']}, "
            f"BLAS {m['blas']}, Python {m['python']}; {m['date']}")


def threads():
    """{"usable cores": n, "BLAS threads": n, "kernel threads": n, "BLAS idle": text}: the cores
    this process may use, the threads of the BLAS that NumPy calls (its matrix products), those
    minigrad splits its memory-bound kernels over (``minigrad.parallel``; any other NumPy loop
    runs on one), and how long BLAS's idle threads spin (``minigrad.blas_setup``)."""
    blas = blas_libraries()
    return {"usable cores": usable_cores(), "BLAS threads": blas[0]["threads"] if blas else None,
            "kernel threads": parallel.thread_count(), "BLAS idle": blas_setup.describe()}


def load_average():
    """(1, 5, 15)-minute load averages; None where the system does not say."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def tf32_line():
    """Whether minigrad's float32 products on a GPU may use TF32 (inputs rounded to 10 bits of
    mantissa): ``minigrad.backend.allow_tf32``, else the environment variable MINIGRAD_TF32."""
    return f"TF32 {'on' if backend.tf32_allowed() else 'off'} (backend.allow_tf32, {backend.TF32_VARIABLE})"
