"""Work and traffic: what each op has to do, and what the machine can do.

``op_flops(shape)`` and ``op_bytes(shape)`` count an op's forward FLOPs and its least memory
traffic from its shapes (float32), ``arithmetic_intensity`` is their ratio; ``gemm_peak_gflops``
and ``copy_bandwidth_gbs`` measure the machine's two roofs, and ``attainable_gflops`` is the
roofline min(peak, intensity x bandwidth). Together they place an op on a roofline plot:
achieved GFLOP/s against arithmetic intensity (FLOPs per byte moved). Lesson 8
(notebooks/08_cpu_vs_gpu.py) draws them.
"""
import math

import numpy

from .. import backend
from ..geometry import pair, window
from .timing import median_seconds

BYTES_PER_NUMBER = 4        # float32, the dtype every benchmark here runs in


def op_output_shape(shape):
    """The shape (N, C_out or C, OH, OW) of the op's output; an LRN keeps its input's shape."""
    n, c = shape.x_shape[:2]
    p = shape.params
    if shape.op == "lrn":
        return tuple(shape.x_shape)
    if shape.op == "conv2d":
        c_out, _, kh, kw = p["weight"]
        win = window(shape.x_shape[2:], (kh, kw), p.get("stride", 1), p.get("padding", 0))
        return (n, c_out) + win.out
    stride = p.get("stride") or p["kernel_size"]
    win = window(shape.x_shape[2:], p["kernel_size"], stride, p.get("padding", 0), p.get("ceil_mode", False))
    return (n, c) + win.out


def op_flops(shape):
    """The floating-point operations of the op's forward pass, counted from its shapes.

    conv2d       2 * N*C_out*OH*OW * C*KH*KW: each output is a sum of C*KH*KW products, and
                 a multiply-add is two FLOPs (the bias, N*C_out*OH*OW adds, is left out: under
                 1/(C*KH*KW) of the total; so are the zeros of the padding, which im2col
                 multiplies like any other number)
    max_pool2d   (KH*KW - 1) comparisons per output
    avg_pool2d   KH*KW - 1 adds and one divide per output
    lrn          (size + 4) per element: its square, size - 1 adds for the window's sum,
                 times alpha/size, plus k, the power s^-beta (counted as one), times x

    Every window is counted whole (the few clipped at a border do a little less).
    """
    out = op_output_shape(shape)
    outputs = out[0] * out[1] * out[2] * out[3]
    p = shape.params
    if shape.op == "conv2d":
        _, c, kh, kw = p["weight"]
        return 2 * outputs * c * kh * kw
    if shape.op == "lrn":
        return outputs * (p.get("size", 5) + 4)
    kh, kw = pair(p["kernel_size"], "kernel_size")
    return outputs * (kh * kw - 1 if shape.op == "max_pool2d" else kh * kw)


def op_bytes(shape, itemsize=BYTES_PER_NUMBER):
    """The least memory traffic of the op's forward pass, in bytes: the input x read once,
    the weight read once (conv2d; the bias is left out, as in ``op_flops``) and the
    output y written once, ``itemsize`` bytes a number (4: float32). Anything a kernel
    moves beyond that (im2col's columns, a second pass) only adds to it."""
    numbers = math.prod(shape.x_shape) + math.prod(op_output_shape(shape))
    if shape.op == "conv2d":
        numbers += math.prod(shape.params["weight"])
    return numbers * itemsize


def arithmetic_intensity(shape):
    """FLOPs per byte of traffic, ``op_flops(shape) / op_bytes(shape)``."""
    return op_flops(shape) / op_bytes(shape)


def im2col_bytes(shape, itemsize=BYTES_PER_NUMBER):
    """The traffic of a convolution's im2col: x read once and its columns, the
    (C*KH*KW, N*OH*OW) matrix the GEMM multiplies, written once. No FLOPs at all."""
    n, _, oh, ow = op_output_shape(shape)
    return (math.prod(shape.x_shape) + math.prod(shape.params["weight"][1:]) * n * oh * ow) * itemsize


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    """The roofline: min(peak, intensity x bandwidth) GFLOP/s, elementwise over ``intensity``
    (FLOPs/byte; GB/s x FLOPs/byte = GFLOP/s). Below the ridge point peak / bandwidth an
    op is memory-bound: bytes, not arithmetic, set its speed."""
    return numpy.minimum(peak_gflops, numpy.asarray(intensity, dtype=float) * bandwidth_gbs)


def gemm_peak_gflops(size=2048, repeats=5, device="cpu", seed=0):
    """The machine's practical compute roof: a float32 (size, size) @ (size, size) product,
    2 * size^3 FLOPs, the median GFLOP/s of ``repeats`` runs after a warm-up."""
    xp = backend.array_module_for(device)
    rng = backend.default_rng(seed, device)
    a, b = (rng.standard_normal((size, size), dtype=numpy.float32) for _ in range(2))
    return 2 * size ** 3 / median_seconds(lambda: a @ b, repeats, xp) / 1e9


def copy_bandwidth_gbs(megabytes=256, repeats=5, device="cpu"):
    """The machine's memory roof: copying a float32 array of ``megabytes`` MiB (larger than
    the caches) into another; bytes read + bytes written over the median time, in GB/s."""
    xp = backend.array_module_for(device)
    source = xp.ones(megabytes * 2 ** 20 // BYTES_PER_NUMBER, dtype=numpy.float32)
    target = xp.empty_like(source)
    return 2 * source.nbytes / median_seconds(lambda: xp.copyto(target, source), repeats, xp) / 1e9


def roofs(devices):
    """{device: (GEMM peak GFLOP/s, copy bandwidth GB/s)}, measured on each of ``devices``."""
    return {device: (gemm_peak_gflops(device=device), copy_bandwidth_gbs(device=device)) for device in devices}
