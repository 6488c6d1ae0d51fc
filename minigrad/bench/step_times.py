"""Whole steps timed: a training step (or a forward pass) of a whole network, as a callable.

    time_training_step(step, repeats=5, xp=numpy)      # StepTime(cpu_side=..., gpu=...)
    time_alternately({"minigrad": ours, "pytorch": theirs}, repeats=5, xp=numpy)

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
"""
import statistics
import time
from typing import NamedTuple, Optional

import numpy

from .. import backend


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
