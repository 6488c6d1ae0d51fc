"""How much memory a step takes, measured where the memory is.

On the CPU: the peak resident set size (RSS) of a fresh Python process that builds the
work and runs its steps (``peak_rss_in_child``). RSS is what the operating system gives
the process: NumPy's arrays, BLAS buffers, PyTorch's allocator, the interpreter and the
libraries alike, so the two frameworks are measured the same way (tracemalloc would see
NumPy's arrays only, not PyTorch's). The kernel keeps the peak (Linux's VmHWM); a child
process per measurement starts that peak afresh, so one measurement cannot inherit
another's. ``RssPeak.before`` is the peak once the work is built (model, optimizer,
inputs), ``peak`` the peak after the steps: ``step_bytes`` = peak - before is what the
steps added (activations, caches, gradients, optimizer state).

On a GPU: the high-water mark of the memory pool during a step, in-process
(``gpu_pool_peak``): CuPy's default pool is emptied of unused blocks, a step runs, and
the bytes the pool then holds are the most it held at once (a pool gives memory back only
when told to). PyTorch's figure is ``torch.cuda.max_memory_reserved`` (its caching
allocator's high-water mark), read the same way around one step.
"""
import json
import os
import resource
import subprocess
import sys
from typing import NamedTuple


class RssPeak(NamedTuple):
    """Peak resident set sizes, in bytes, of a child process: once the work was built
    (``before``) and after its steps (``peak``)."""
    before: int
    peak: int

    @property
    def step_bytes(self):
        return self.peak - self.before


def max_rss_bytes():
    """This process's peak resident set size so far, in bytes: Linux's VmHWM (the high-water
    mark of this process's own memory, /proc/self/status), else ``ru_maxrss``. On Linux
    ``ru_maxrss`` may carry the parent's peak into a child (the forked copy of the parent,
    replaced at exec, counts as the child's), so a fresh process would not start afresh."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024          # reported in kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024      # macOS: bytes; elsewhere KiB


def measure_in_this_process(make_step, steps):
    """``RssPeak`` of building ``make_step()`` and calling the step it returns ``steps`` times."""
    step = make_step()
    before = max_rss_bytes()
    for _ in range(steps):
        step()
    return RssPeak(before, max_rss_bytes())


CHILD = """
import importlib, json, sys
from minigrad.bench.memory import measure_in_this_process
from minigrad.bench.timing import blas_threads
from minigrad.host_memory import keep_freed_memory
keep_freed_memory()                 # as the commands run (MINIGRAD_KEEP_FREED_MEMORY=0: not)
module, _, name = sys.argv[1].partition(":")
build = getattr(importlib.import_module(module), name)
keywords, steps, threads = json.loads(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
with blas_threads(threads):
    print(json.dumps(measure_in_this_process(lambda: build(**keywords), steps)))
"""


def child_environment(environment=None):
    """``environment`` (this process's when None) with this process's import path as
    PYTHONPATH: a child Python process imports the same modules (this tree, a test's helpers)."""
    return dict(os.environ if environment is None else environment,
                PYTHONPATH=os.pathsep.join(path for path in sys.path if path))


def peak_rss_in_child(builder, keywords, steps=2, blas_threads=None):
    """``RssPeak`` of ``steps`` calls of the step that ``builder(**keywords)`` builds, in a
    fresh Python process that imports the builder by name: ``builder`` is "module:function"
    ("googlenet.bench_model:minigrad_training_step"), ``keywords`` numbers and strings
    (they travel as JSON). The child sees this process's import path and limits BLAS to
    ``blas_threads`` threads (no limit when None). Two steps by default: the first also
    creates the optimizer's state, the second shows the steady state."""
    arguments = [builder, json.dumps(keywords), str(steps), json.dumps(blas_threads)]
    result = subprocess.run([sys.executable, "-c", CHILD, *arguments], capture_output=True, text=True,
                            env=child_environment())
    if result.returncode != 0:
        raise RuntimeError(f"measuring the memory of {builder}({keywords}) in a child process failed:\n"
                           f"{result.stderr.strip()}")
    return RssPeak(*json.loads(result.stdout.strip().splitlines()[-1]))


def gpu_pool_peak(step, xp):
    """Bytes CuPy's default memory pool holds after one call of ``step()``, its unused
    blocks freed first: the pool's high-water mark over the step."""
    pool = xp.get_default_memory_pool()
    xp.cuda.get_current_stream().synchronize()
    pool.free_all_blocks()
    step()
    xp.cuda.get_current_stream().synchronize()
    return pool.total_bytes()


def torch_gpu_peak(step):
    """PyTorch's caching allocator around one call of ``step()``: (max reserved, max
    allocated) bytes, its unused cached blocks released first."""
    import torch
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_reserved(), torch.cuda.max_memory_allocated()
