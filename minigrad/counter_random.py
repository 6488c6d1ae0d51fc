"""A random generator whose state lives on the device: dropout masks for a CUDA graph.

NumPy's and CuPy's generators carry a state from one draw to the next, and reseeding one
is work done by the host: a replayed CUDA graph would draw the same mask at every step.
``CounterGenerator`` draws numbers that are a function of (key, counter, position) alone
(the kernel is ``minigrad/kernels/cuda/counter_random.cu``, which says how): the key comes
from the seed, once; the counter is a one-element array on the device that the host sets
before each step (``set_counter``), and the kernel reads it there, so the graph's replay of
a draw gives the numbers of that step. Several generators may share one counter: each has
its own key.

    counter = make_counter("cuda")
    masks = [CounterGenerator([seed, layer], "cuda", counter) for layer in range(3)]
    set_counter(counter, step)            # before each step
    u = masks[0].random((32, 1024))       # uniform in [0, 1), float64, on the GPU

Reproducible and independent of the order of the draws: the numbers of a draw depend on the
key, the counter's value and the shape only, not on what was drawn before; two draws at one
counter value give the same numbers (a dropout layer draws once per step). On NumPy arrays
the same kernel runs through its CPU twin (minigrad/kernels/cuda/launch.py): the same numbers
on the CPU, bit for bit.
"""
import math

import numpy

from . import backend
from .kernels.cuda.launch import launcher_for


def make_counter(device="cpu", value=0):
    """A counter: a one-element uint64 array on ``device`` holding ``value``."""
    return backend.to_device(numpy.array([value], dtype=numpy.uint64), device)


def set_counter(counter, value):
    """Write ``value`` into ``counter`` (on a GPU: a launch on the current stream, no sync)."""
    counter.fill(value)


def key_of(seed):
    """The 64-bit key of a seed (an int or a sequence of ints such as [seed, layer]), as
    NumPy's SeedSequence spreads it."""
    return int(numpy.random.SeedSequence(seed).generate_state(1, dtype=numpy.uint64)[0])


class CounterGenerator:
    """Uniform numbers in [0, 1) drawn as a function of (key, counter, position).

    Args:
        seed (int or sequence of ints): makes the key.
        device (str): where the numbers are drawn. Default: "cpu".
        counter (array, optional): a counter from ``make_counter`` on ``device``, to share
            with other generators; None makes one of its own, at 0.
    """

    def __init__(self, seed, device="cpu", counter=None):
        self.device = backend.parse_device(device)
        self.key_value = key_of(seed)
        self.key = make_counter(self.device, self.key_value)
        self.counter = make_counter(self.device) if counter is None else counter
        if backend.device_of(self.counter) != self.device:
            raise ValueError(f"CounterGenerator: the counter is on {backend.device_of(self.counter)}, "
                             f"the generator on {self.device}")

    def random(self, shape):
        """float64 numbers uniform in [0, 1) of ``shape`` (as NumPy's ``Generator.random``)."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        xp = backend.get_array_module(self.key)
        out = xp.empty(shape, dtype=numpy.float64)
        count = math.prod(shape)
        if count >= 2 ** 31:
            raise ValueError(f"CounterGenerator.random: at most 2**31 - 1 numbers at once, asked for {count}")
        if count:
            launcher_for(out).run("counter_random.cu", "uniform", count, self.key, self.counter, out,
                                  numpy.int32(count))
        return out

    def __repr__(self):
        return f"CounterGenerator(key={self.key_value:#x}, device={self.device!r})"
