"""Kernel sets: the same functions with the same shapes, written in different ways.

    reference   (reference.py) plain loops and a plain im2col in (N, C, H, W) order:
                what a learner reads first, and the oracle the tests hold the others to
    numpy       (vectorized.py) fast array code (memory layouts, one GEMM per
                convolution, or on the CPU Winograd's 16 smaller ones for a 3x3:
                winograd.py); it also runs on CuPy arrays: the "generic" GPU path
    cuda        (cuda/) hand-written CUDA C kernels launched through CuPy on a GPU; on
                NumPy arrays the same kernels run on the CPU, through their g++-compiled
                twin (slow: for testing the kernels without a GPU)

The set called "numpy" is the file vectorized.py: the set keeps the name it is known by,
the file a name that is not a library's.

Every set offers exactly these functions, with these arguments, for arrays in
(N, C, H, W) order and a ``Window`` (``minigrad.geometry``); C_out is the number of
output channels (filters):

    conv2d_forward(x, weight, bias, win, groups=1, relu=False) -> (y, cache)
        x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out,) or None; with
        relu, y = max(y, 0) too (the ReLU after the convolution, fused in)
    conv2d_backward(gy, cache, input_grad=True) -> (gx, gweight, gbias)
        gbias None without a bias; gx None, and not computed, when input_grad is False;
        after a fused ReLU, gy passes only where y is not <= 0
    max_pool2d_forward(x, win, argmax=True) -> (y, cache)    max_pool2d_backward(gy, cache) -> gx
        argmax=False: no backward will come (the cache is None), so a set may skip finding
        where each window's maximum lies
    avg_pool2d_forward(x, win, divisor) -> (y, cache)    avg_pool2d_backward(gy, cache) -> gx
    lrn_forward(x, size, alpha, beta, k) -> (y, cache)   lrn_backward(gy, cache) -> gx
    im2col(x, win) -> cols (N, C*KH*KW, OH*OW)           col2im(cols, x_shape, win) -> (N, C, H, W)

A cache is the set's own small named tuple (``Conv2dCache``, ``MaxPool2dCache``, ...):
what its backward needs, to hand back unchanged. Whatever else a set needs (a memory
layout, a launcher) is private to it.

The ops in ``minigrad.ops`` state the math, check their input and call ``current(x)``
for the set to run; their cache is a ``KernelCache``, so that the backward runs on the
set the forward ran on. A lesson or benchmark picks a set for a block of code:

    with minigrad.kernels.use("reference"):
        logits = model(x)            # every conv, pool and LRN runs on the reference set
    loss.backward()                  # each backward runs on the set its forward ran on

Outside such a block the set is the default of the device the data lives on:
``numpy`` on the CPU, ``cuda`` on a GPU.
"""
import contextlib
import contextvars
from types import ModuleType
from typing import Any, NamedTuple

from ..backend import device_of
from . import cuda, reference, vectorized

SETS = {"reference": reference, "numpy": vectorized, "cuda": cuda}
DEFAULT_FOR_DEVICE = {"cpu": "numpy", "cuda": "cuda"}

_chosen = contextvars.ContextVar("minigrad_kernel_set", default=None)


class KernelCache(NamedTuple):
    """An op's cache: the kernel set its forward ran on and that set's own cache."""
    kernel_set: ModuleType
    kernel_cache: Any


def get(name):
    """The kernel set called ``name``; a ValueError listing the sets for anything else."""
    if name not in SETS:
        raise ValueError(f"unknown kernel set {name!r}: expected one of {', '.join(SETS)}")
    return SETS[name]


@contextlib.contextmanager
def use(name):
    """Run the ops inside the ``with`` block on kernel set ``name``."""
    token = _chosen.set(get(name))
    try:
        yield
    finally:
        _chosen.reset(token)


def default_for(array):
    """The name of the default set for the device ``array`` lives on."""
    return DEFAULT_FOR_DEVICE[device_of(array).split(":")[0]]


def current(array):
    """The kernel set an op on ``array`` runs on: the one ``use`` chose, else the device's default."""
    chosen = _chosen.get()
    return chosen if chosen is not None else SETS[default_for(array)]

