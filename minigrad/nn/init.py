"""Weight initialisers: each takes a shape and a NumPy ``Generator`` and returns an array.

Fan-in and fan-out count the inputs and outputs one weight connects:

    Linear  weight (out, in):          fan_in = in,          fan_out = out
    Conv2d  weight (C_out, C, KH, KW): fan_in = C * KH * KW, fan_out = C_out * KH * KW

Two different things are both called "Xavier", so the names here say which:

* ``caffe_xavier`` is Caffe's "xavier" filler (the one the original GoogLeNet used):
  uniform(-a, a) with a = sqrt(3 / fan_in), so Var(w) = a^2 / 3 = 1 / fan_in.
* ``glorot_uniform`` is Glorot & Bengio (2010), eq. 16 (PyTorch's ``xavier_uniform_``):
  uniform(-a, a) with a = sqrt(6 / (fan_in + fan_out)), Var(w) = 2 / (fan_in + fan_out).
* ``he_normal`` is He et al. (2015) for ReLU networks: normal(0, std) with
  std = sqrt(2 / fan_in).

Weights are made on the CPU (``Module.to`` moves them) in float32 unless told otherwise.
"""
import math

import numpy

from ..backend import DEFAULT_DTYPE


def fan_in_and_out(shape):
    """(fan_in, fan_out) of a Linear (out, in) or Conv2d (C_out, C, KH, KW) weight shape."""
    if len(shape) == 2:
        fan_out, fan_in = shape
        return fan_in, fan_out
    if len(shape) == 4:
        filters, channels, kh, kw = shape
        return channels * kh * kw, filters * kh * kw
    raise ValueError(f"fan_in_and_out: expected a weight of shape (out, in) or (C_out, C, KH, KW), "
                     f"got {tuple(shape)}")


def caffe_xavier(shape, rng, dtype=DEFAULT_DTYPE):
    """Caffe's "xavier" filler: uniform(+-sqrt(3 / fan_in))."""
    fan_in, _ = fan_in_and_out(shape)
    limit = math.sqrt(3.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def glorot_uniform(shape, rng, dtype=DEFAULT_DTYPE):
    """Glorot & Bengio's uniform(+-sqrt(6 / (fan_in + fan_out)))."""
    fan_in, fan_out = fan_in_and_out(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, rng, dtype=DEFAULT_DTYPE):
    """He et al.'s normal(0, sqrt(2 / fan_in)) for layers followed by a ReLU."""
    fan_in, _ = fan_in_and_out(shape)
    return (rng.standard_normal(size=shape) * math.sqrt(2.0 / fan_in)).astype(dtype)


def constant(shape, value, dtype=DEFAULT_DTYPE):
    """Every element equal to ``value`` (biases: 0, or 0.2 as in Caffe's GoogLeNet)."""
    return numpy.full(shape, value, dtype=dtype)


WEIGHT_INITS = {"xavier": caffe_xavier, "glorot": glorot_uniform, "he": he_normal}


def make_weight(shape, rng, weight_init="xavier", dtype=DEFAULT_DTYPE):
    """A weight made by ``weight_init``: a name in ``WEIGHT_INITS`` or a function (shape, rng)."""
    if callable(weight_init):
        return weight_init(shape, rng).astype(dtype)
    if weight_init not in WEIGHT_INITS:
        raise ValueError(f"unknown weight_init {weight_init!r}: expected one of "
                         f"{sorted(WEIGHT_INITS)} or a function (shape, rng) -> array")
    return WEIGHT_INITS[weight_init](shape, rng, dtype)
