"""Kernel sets: the same functions with the same shapes, written in different ways.

    reference   plain loops and a plain im2col in (N, C, H, W) order: what a
                learner reads first, and the oracle the tests hold the others to
    numpy       fast array code (memory layouts, one GEMM per convolution); it
                also runs on CuPy arrays, which makes it the "generic" GPU path
    cuda        hand-written CUDA C kernels (cuda/*.cu) launched through CuPy; on
                NumPy arrays they run on the CPU through their g++-compiled twin
                (slow: for testing the kernels without a GPU)

The set called "numpy" lives in ``vectorized.py`` (whole-array code that runs on NumPy or
CuPy); "reference" in ``reference.py``, "cuda" in ``cuda/``.

Each set offers, for arrays in (N, C, H, W) order and a ``Window`` (see
``minigrad.geometry``):

    conv2d_forward(x, W, b, win, groups) -> (y, cache)  conv2d_backward(gy, cache) -> (gx, gW, gb)
    max_pool2d_forward(x, win) -> (y, cache)        max_pool2d_backward(gy, cache) -> gx
    avg_pool2d_forward(x, win, divisor) -> (y, cache)   avg_pool2d_backward(gy, cache) -> gx
    lrn_forward(x, size, alpha, beta, k) -> (y, cache)  lrn_backward(gy, cache) -> gx

The ops in ``minigrad.ops`` state the math, check their input and call ``current(x)``
for the set to run. A lesson or benchmark picks one for a block of code:

    with minigrad.kernels.use("reference"):
        logits = model(x)            # every conv, pool and LRN runs on the reference set
    loss.backward()                  # each backward runs on the set its forward ran on

Outside such a block the set is the default of the device the data lives on:
``numpy`` on the CPU, ``cuda`` on a GPU.
"""
import contextlib
import contextvars

from ..backend import device_of
from . import cuda, reference
from . import vectorized

SETS = {"reference": reference, "numpy": vectorized, "cuda": cuda}
DEFAULT_FOR_DEVICE = {"cpu": "numpy", "cuda": "cuda"}

_chosen = contextvars.ContextVar("minigrad_kernel_set", default=None)


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

