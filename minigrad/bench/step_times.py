"""Whole steps timed: a training step (or a forward pass) of a whole network, as a callable.

    time_training_step(step, repeats=5, xp=numpy)      # StepTime(cpu_side=..., gpu=...)
    time_alternately({"minigrad": ours, "pytorch": theirs}, repeats=5, xp=numpy)
    time_in_own_processes({"minigrad": "module:builder", ...}, keywords, ("training_step",))

A step is any callable that does one step's work: the eager step of a model, a CUDA graph
replayed, PyTorch's step. Each is called once as a warm-up (the first call pays for
memory pools, compiled kernels, cuDNN's algorithm search) and then ``repeats`` times.

Two clocks (``StepTime``):

    cpu_side   the host's time from the call to its return: on a CPU the step's time;
               on a GPU the time Python takes to issue the step's kernels
    gpu        (GPU only) the GPU's own time from the first kernel to the last, between
               CUDA events recorded on the current stream (None on a CPU)

A GPU step is timed by ``cupyx.profiler.benchmark`` (host clock and CUDA events around each
call). When ``gpu`` is no larger than ``cpu_side`` the GPU was waiting for Python: the step is
launch-bound; when it is larger, the GPU was busy and Python ran ahead.

``time_alternately`` times several steps in rounds (one call of each per round), so that a
machine that slows down for a while slows all of them alike; the medians are compared.

Two frameworks on one CPU: each in a process of its own (``time_in_own_processes``).
Alternating them in one process is not fair on a few cores. A library's worker threads keep
spinning for a while after their last piece of work, waiting for the next: OpenBLAS's
for 2**28 clock ticks by default (about 0.1 s), OpenMP's (PyTorch's) for a set count of
spins. A step that runs right after the other framework's step shares the cores with
those spinning threads. Measured on 2 cores (GoogLeNet, batch 32 at 32x32): PyTorch's step
took 165-180 ms right after minigrad's, in the same process, and 82-104 ms in a process of
its own. So on the CPU each side is built in a child process that waits for orders;
the parent asks each for one timed call in turn, and lets the machine settle first
(``SETTLE_SECONDS``, longer than any spin-wait) so that no side's threads are still busy
when the other's call starts.
"""
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple, Optional

import numpy

from .. import backend
from ..host_memory import keep_freed_memory
from .memory import child_environment
from .timing import blas_threads

# Longer than the spin-wait of every library's idle threads (OpenBLAS's default is 2**28
# clock ticks, about 0.1 s; libgomp's 300,000 spins; Intel OpenMP's 0.2 s).
SETTLE_SECONDS = 0.5
REPLY = "step-times:"            # a child's answers start with this; other lines it prints are not read


class StepTime(NamedTuple):
    """Seconds of one step: on the host clock and (on a GPU) between CUDA events."""
    cpu_side: float
    gpu: Optional[float]

    @property
    def seconds(self):
        """The step's time: the GPU's on a GPU (the figure compared there), the host's on a CPU."""
        return self.cpu_side if self.gpu is None else self.gpu


def time_once(step, xp=numpy):
    """One call of ``step()``, timed: host clock on the CPU, ``cupyx.profiler.benchmark``
    (one repeat, no warm-up: ``backend.gpu_timed``) when ``xp`` is CuPy."""
    if xp is numpy:
        start = time.perf_counter()
        step()
        return StepTime(time.perf_counter() - start, None)
    return StepTime(*backend.gpu_timed(step))


def median_step_time(times):
    """The median of each clock over a list of ``StepTime``."""
    gpu = [t.gpu for t in times if t.gpu is not None]
    return StepTime(statistics.median(t.cpu_side for t in times), statistics.median(gpu) if gpu else None)


def time_training_step(step, repeats=5, xp=numpy, warmups=1):
    """The median ``StepTime`` of ``repeats`` calls of ``step()`` after ``warmups`` calls.

    ``step`` is the whole step as one callable: ``lambda: trainer_step(images, labels)``
    for the eager step, ``graph.replay`` for a captured one; both are timed alike."""
    for _ in range(warmups):
        step()
    return median_step_time([time_once(step, xp) for _ in range(repeats)])


def time_alternately(steps, repeats=5, xp=numpy, warmups=1):
    """{name: median ``StepTime``} of the callables in ``steps`` ({name: step}), each warmed
    up, then called once per round for ``repeats`` rounds, in the order given."""
    for step in steps.values():
        for _ in range(warmups):
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(time_once(step, xp))
    return {name: median_step_time(measured) for name, measured in times.items()}


# --- each side in a process of its own (the CPU) ---------------------------------------------
def time_in_own_processes(builders, keywords, calls, repeats=5, warmups=1, blas_thread_count=None,
                          settle_seconds=SETTLE_SECONDS, variables=None):
    """{call: {name: median ``StepTime``}}: each of ``builders`` ({name: "module:function"})
    builds its work in a child process from ``keywords`` (numbers and strings); every method
    named in ``calls`` ("forward", "training_step") is called ``warmups`` times by each, then
    timed once per round for ``repeats`` rounds, the sides in turn, ``settle_seconds`` of rest
    before each call (module docstring). The children see this process's import path and
    environment, with side ``name``'s ``variables[name]`` ({variable: value}) set on top (a
    library setting read as it loads: ``benchmarks/blas_kernels.py``), and limit BLAS to
    ``blas_thread_count`` threads (no limit when None)."""
    servers = {}
    try:
        for name, builder in builders.items():
            servers[name] = StepServer(builder, keywords, blas_thread_count, (variables or {}).get(name))
        medians = {}
        for call in calls:
            for server in servers.values():
                server.time(call, warmups)
            times = {name: [] for name in servers}
            for _ in range(repeats):
                for name, server in servers.items():
                    time.sleep(settle_seconds)
                    times[name] += server.time(call, 1)
            medians[call] = {name: median_step_time([StepTime(seconds, None) for seconds in measured])
                             for name, measured in times.items()}
        return medians
    finally:
        for server in servers.values():
            server.close()


class StepServer:
    """A child process holding one side's work, built by ``builder(**keywords)``: ``time(call,
    count)`` has it call the work's method ``call`` ``count`` times and returns each call's
    seconds on its host clock. ``variables``: environment variables set for the child on top
    of this process's. A child that fails is a RuntimeError with its error output."""

    def __init__(self, builder, keywords, blas_thread_count=None, variables=None):
        self.builder = builder
        self.errors = tempfile.TemporaryFile(mode="w+")
        code = "import sys, json; from minigrad.bench.step_times import serve; serve(*map(json.loads, sys.argv[1:]))"
        arguments = [json.dumps(builder), json.dumps(keywords), json.dumps(blas_thread_count)]
        self.process = subprocess.Popen([sys.executable, "-c", code, *arguments], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.errors, text=True,
                                        env=child_environment(dict(os.environ, **(variables or {}))))
        self._reply()                                     # built: ready for orders

    def time(self, call, count):
        self.process.stdin.write(json.dumps(dict(call=call, count=count)) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def _reply(self):
        for line in self.process.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        self.process.wait()
        self.errors.seek(0)
        raise RuntimeError(f"the child process timing {self.builder} ended (exit status "
                           f"{self.process.returncode}):\n{self.errors.read().strip()}")

    def close(self):
        """End the child (its input closed, it returns) and wait for it."""
        try:
            self.process.stdin.close()
        except BrokenPipeError:                           # the child had ended already
            pass
        self.process.wait()
        self.process.stdout.close()
        self.errors.close()


def serve(builder, keywords, blas_thread_count):
    """The child's side of ``StepServer``: build the work, say so, then answer each order
    (a JSON line {"call", "count"} on standard input) with the seconds of its calls, until
    standard input closes. Freed memory is kept for the next step, as the commands run."""
    keep_freed_memory()
    module, _, name = builder.partition(":")
    build = getattr(importlib.import_module(module), name)
    with blas_threads(blas_thread_count):
        work = build(**keywords)
        _answer([])
        for line in sys.stdin:
            order = json.loads(line)
            method = getattr(work, order["call"])
            _answer([time_once(method).cpu_side for _ in range(order["count"])])


def _answer(seconds):
    print(REPLY + json.dumps(seconds), flush=True)
