"""Each op of a network timed forward and backward, at the network's own layer shapes.

    shapes = googlenet_op_shapes(batch=8, image_size=224)     # [OpShape, ...] (googlenet.bench)
    print(HEADER)
    rows = time_ops(shapes, repeats=5, progress=lambda row: print(format_row(*row)))
    print_summary(rows)

``time_ops`` times each op's forward and backward pass (the array pairs of
``minigrad.ops``, without autograd bookkeeping) on random float32 inputs of the
``OpShape``'s sizes: the median of ``repeats`` runs after one warm-up run. Each
convolution is compared with bare GEMMs of its sizes, K = C*KH*KW, P = N*OH*OW:

    forward:   (C_out, K) @ (K, P)                             im2col + bias are the overhead
    backward:  (C_out, P) @ (P, K) and (K, C_out) @ (C_out, P)  gW and gcols; col2im + gb are
                                                                the overhead

The op and its GEMMs run interleaved, so a busy machine slows both alike.
Targets: conv forward <= 1.3 x GEMM, conv backward <= 1.5 x GEMMs, max pool and
LRN backward <= 3 x their forward. The kernel set timed is the current one
(``minigrad.kernels.use``).
"""
import sys
from typing import NamedTuple

import numpy

from .. import backend
from ..ops import conv, lrn, pool
from .timing import medians_after_a_warm_up, timed

TARGETS = {"conv fwd/GEMM": 1.3, "conv bwd/GEMMs": 1.5, "bwd/fwd": 3.0}

KINDS = {"conv2d": "convolutions", "max_pool2d": "max pools", "avg_pool2d": "average pools", "lrn": "LRNs"}


class OpShape(NamedTuple):
    name: str          # "conv1", "3a/3x3", "pool2", "lrn1"
    op: str            # a key of KINDS: "conv2d", "max_pool2d", "avg_pool2d" or "lrn"
    x_shape: tuple     # (N, C, H, W)
    params: dict       # conv2d: weight (C_out, C, KH, KW), stride, padding; pools: their keywords


def describe(shape):
    """A short label of the op: "conv 7x7/2 p3 64", "max 3x3/2 ceil", "lrn 5"."""
    p = shape.params
    if shape.op == "conv2d":
        c_out, _, kh, kw = p["weight"]
        return f"conv {kh}x{kw}/{p['stride']}" + (f" p{p['padding']}" if p["padding"] else "") + f" {c_out}"
    if shape.op == "lrn":
        return f"lrn {p['size']}"
    k = p["kernel_size"]
    return (f"{shape.op[:3]} {k}x{k}/{p['stride']}" + (f" p{p['padding']}" if p["padding"] else "")
            + (" ceil" if p["ceil_mode"] else ""))


def pair_functions(shape, rng):
    """(forward(), backward(gy, cache), gemms) of one op on random inputs of its shapes, drawn
    from ``rng``; gemms: {'fwd': fn, 'bwd': fn} of a convolution's bare GEMMs, {} otherwise."""
    def normal(*dims):
        return rng.standard_normal(dims, dtype=numpy.float32)

    x, p = normal(*shape.x_shape), dict(shape.params)
    if shape.op == "conv2d":
        weight = normal(*p.pop("weight"))
        bias = normal(weight.shape[0])
        y, _ = conv.conv2d_forward(x, weight, bias, **p)
        c_out, k, columns = weight.shape[0], weight[0].size, y.shape[0] * y.shape[2] * y.shape[3]
        A, B, G = normal(c_out, k), normal(k, columns), normal(c_out, columns)
        gemms = {"fwd": lambda: A @ B, "bwd": lambda: (G @ B.T, A.T @ G)}
        return (lambda: conv.conv2d_forward(x, weight, bias, **p)), conv.conv2d_backward, gemms
    if shape.op == "lrn":
        return (lambda: lrn.lrn_forward(x, **p)), lrn.lrn_backward, {}
    forward, backward = {"max_pool2d": (pool.max_pool2d_forward, pool.max_pool2d_backward),
                         "avg_pool2d": (pool.avg_pool2d_forward, pool.avg_pool2d_backward)}[shape.op]
    return (lambda: forward(x, **p)), backward, {}


def time_op(shape, repeats=5, device="cpu", seed=0):
    """Median seconds of forward ("fwd"), backward ("bwd") and, for a convolution, the bare
    GEMMs ("gemm fwd", "gemm bwd"), interleaved, after a warm-up run."""
    xp = backend.array_module_for(device)
    rng = backend.default_rng(seed, device)
    forward, backward, gemms = pair_functions(shape, rng)
    y, _ = forward()
    gy = rng.standard_normal(y.shape, dtype=numpy.float32)

    def measure():
        t_fwd, (_, cache) = timed(forward, xp)
        t_bwd, _ = timed(lambda: backward(gy, cache), xp)
        del cache
        measured = {"fwd": t_fwd, "bwd": t_bwd}
        for key, gemm in gemms.items():
            measured[f"gemm {key}"] = timed(gemm, xp)[0]
        return measured

    return medians_after_a_warm_up(measure, repeats)


def time_ops(shapes, repeats=5, device="cpu", progress=None):
    """Time every shape; returns a list of (shape, medians) rows (``progress(row)`` after each)."""
    rows = []
    for shape in shapes:
        rows.append((shape, time_op(shape, repeats, device)))
        if progress:
            progress(rows[-1])
    return rows


def misses(shape, t):
    """The targets that op ``shape`` with medians ``t`` misses: "fwd", "bwd", "bwd/fwd"."""
    missed = []
    if "gemm fwd" in t and t["fwd"] > TARGETS["conv fwd/GEMM"] * t["gemm fwd"]:
        missed.append("fwd")
    if "gemm bwd" in t and t["bwd"] > TARGETS["conv bwd/GEMMs"] * t["gemm bwd"]:
        missed.append("bwd")
    if shape.op in ("max_pool2d", "lrn") and t["bwd"] > TARGETS["bwd/fwd"] * t["fwd"]:
        missed.append("bwd/fwd")
    return missed


HEADER = (f"{'layer':<16} {'op':<18} {'input N,C,H,W':<16} {'fwd ms':>8} {'bwd ms':>8} {'bwd/fwd':>7} "
          f"{'GEMM ms':>8} {'fwd/GEMM':>8} {'GEMMs ms':>8} {'bwd/GEMMs':>9}  target")


def format_row(shape, t):
    """One op's line of the table under ``HEADER``."""
    ms = {key: value * 1e3 for key, value in t.items()}
    line = (f"{shape.name:<16} {describe(shape):<18} {','.join(map(str, shape.x_shape)):<16} "
            f"{ms['fwd']:>8.2f} {ms['bwd']:>8.2f} {t['bwd'] / t['fwd']:>7.2f} ")
    if "gemm fwd" in ms:
        line += (f"{ms['gemm fwd']:>8.2f} {t['fwd'] / t['gemm fwd']:>8.2f} "
                 f"{ms['gemm bwd']:>8.2f} {t['bwd'] / t['gemm bwd']:>9.2f}  ")
    else:
        line += " " * 38
    missed = misses(shape, t)
    return line + ("MISS " + ",".join(missed) if missed else "ok")


def print_summary(rows, out=None):
    """Totals per op, the overall conv/GEMM ratios and the rows that miss a target (to ``out``,
    default the current ``sys.stdout``)."""
    out = out or sys.stdout
    print("", file=out)
    for op in dict.fromkeys(shape.op for shape, _ in rows):
        fwd = sum(t["fwd"] for s, t in rows if s.op == op) * 1e3
        bwd = sum(t["bwd"] for s, t in rows if s.op == op) * 1e3
        print(f"total {op:<12} forward {fwd:9.1f} ms   backward {bwd:9.1f} ms", file=out)
    convs = [t for s, t in rows if "gemm fwd" in t]
    if convs:
        ratio_f = sum(t["fwd"] for t in convs) / sum(t["gemm fwd"] for t in convs)
        ratio_b = sum(t["bwd"] for t in convs) / sum(t["gemm bwd"] for t in convs)
        print(f"all convolutions: forward {ratio_f:.2f} x GEMM, backward {ratio_b:.2f} x GEMMs", file=out)
    missed = [s.name for s, t in rows if misses(s, t)]
    print(f"{len(rows) - len(missed)} of {len(rows)} ops meet their targets"
          + (f"; missed: {', '.join(missed)}" if missed else ""), file=out)
