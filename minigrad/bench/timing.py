"""Clocks: how long a piece of work takes, on the CPU or on a GPU.

    seconds, result = timed(fn, xp)                  # one call
    median_seconds(fn, repeats=5, xp=numpy)          # the median of several, after a warm-up
    with blas_threads(1): ...                        # BLAS limited to one thread

On the CPU a host clock (``time.perf_counter``) around the call is the time of the work.
On a GPU it is not: a call returns as soon as its kernels are queued, so the host clock
would time the launches. There, CUDA events are recorded on the stream before and after
the call and read once the end event has happened: the GPU's own time between them.
The same clock times PyTorch (``torch_timed``), so the two are measured alike.

BLAS uses every core unless told otherwise; the other loops use one. On a machine shared
with other work, a multi-threaded BLAS call can wait a whole time slice for its second
thread, and the timings come out in multiples of it: one BLAS thread gives steadier
numbers there (``blas_threads``, which needs threadpoolctl, installed with scikit-learn).
"""
import contextlib
import statistics
import time

import numpy


def host_timed(fn):
    """(seconds, result) of ``fn()`` on a host clock."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def event_timed(fn, new_event, elapsed_ms):
    """(seconds, result) of ``fn()`` between two CUDA events: ``new_event()`` makes one (with
    ``record()`` and ``synchronize()``), ``elapsed_ms(start, end)`` reads the milliseconds
    between two that have happened."""
    start, end = new_event(), new_event()
    start.record()
    result = fn()
    end.record()
    end.synchronize()
    return elapsed_ms(start, end) / 1e3, result


def timed(fn, xp=numpy):
    """(seconds, result) of ``fn()``, whose work runs on the array module ``xp``: a host clock
    for NumPy, CUDA events for CuPy."""
    if xp is numpy:
        return host_timed(fn)
    return event_timed(fn, xp.cuda.Event, xp.cuda.get_elapsed_time)


def torch_timed(fn, device):
    """(seconds, result) of ``fn()``, PyTorch work on ``device`` ("cpu" or "cuda"): a host
    clock on the CPU, CUDA events on the GPU."""
    if device == "cpu":
        return host_timed(fn)
    import torch
    return event_timed(fn, lambda: torch.cuda.Event(enable_timing=True), lambda start, end: start.elapsed_time(end))


def median_seconds(fn, repeats=5, xp=numpy):
    """The median seconds of ``repeats`` calls of ``fn()`` after one warm-up call
    (``xp``: the array module the work runs on, so a GPU is timed with CUDA events)."""
    fn()
    return statistics.median(timed(fn, xp)[0] for _ in range(repeats))


def medians_after_a_warm_up(measure, repeats):
    """{name: median seconds} of ``repeats`` calls of ``measure() -> {name: seconds}``, after
    one warm-up call whose times are dropped (the first call pays for caches, compiled
    kernels and memory pools)."""
    measure()
    runs = [measure() for _ in range(repeats)]
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def blas_threads(count):
    """A context that limits BLAS to ``count`` threads (no limit when None)."""
    if count is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=count, user_api="blas")
