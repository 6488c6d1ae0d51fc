"""The hot loops behind convolution and pooling (im2col, col2im, window maxima and sums).

``for_array(x)`` gives the kernel module for the device ``x`` lives on. Every
such module offers the same functions with the same shapes (see ``cpu.py``).
Today there is one: ``cpu``, written with array operations only, so it also runs
on CuPy arrays; a ``cuda`` module with hand-written kernels can slot in here.
"""
from . import cpu


def for_array(x):
    """The kernel module to use for array ``x``."""
    return cpu
