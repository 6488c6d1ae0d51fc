"""Benchmarks: programs that print tables (not tests).

    python -m minigrad.bench ops                      # GoogLeNet's ops, batch 8, 224x224 input
    python -m minigrad.bench ops --batch 16 --repeats 10 --only 3a pool
    python -m minigrad.bench ops --quick              # a smoke run: batch 1, one repeat

``ops`` times each op's forward and backward pass (the array pairs of
``minigrad.ops``, without autograd bookkeeping) on GoogLeNet's own layer
shapes: the median of ``--repeats`` runs after one warm-up run. Each
convolution is compared with bare GEMMs of its sizes, K = C*KH*KW, P = N*OH*OW:

    forward:   (F, K) @ (K, P)                        im2col + bias are the overhead
    backward:  (F, P) @ (P, K)  and  (K, F) @ (F, P)  gW and gcols; col2im + gb are the overhead

The op and its GEMMs run interleaved, so a busy machine slows both alike.
Targets: conv forward <= 1.3 x GEMM, conv backward <= 1.5 x GEMMs, max pool and
LRN backward <= 3 x their forward.

BLAS uses every core unless told otherwise; the other loops use one. On a
machine shared with other work, a multi-threaded BLAS call can wait a whole
time slice for its second thread, and the timings come out in multiples of it:
``--blas-threads 1`` (needs threadpoolctl, which scikit-learn installs) gives
steadier numbers there.

``googlenet_op_shapes`` lists the shapes; a benchmark of another network only
needs its own list of ``OpShape`` rows to reuse ``time_ops`` and ``print_table``.
"""
import argparse
import contextlib
import os
import statistics
import sys
import time
from typing import NamedTuple

import numpy

from . import backend
from . import functional as F
from .ops import conv, pool
from .ops._sizes import conv_output_size

TARGETS = {"conv fwd/GEMM": 1.3, "conv bwd/GEMMs": 1.5, "bwd/fwd": 3.0}


class OpShape(NamedTuple):
    name: str          # "conv1", "3a/3x3", "pool2", "lrn1"
    op: str            # "conv2d", "max_pool2d", "avg_pool2d" or "lrn"
    x_shape: tuple     # (N, C, H, W)
    params: dict       # conv2d: weight (F, C, KH, KW), stride, padding; pools: their keywords


def googlenet_op_shapes(batch=8, image_size=224):
    """Every conv, pool and LRN of GoogLeNet (Table 1 with its auxiliary heads) with its input shape."""
    from googlenet import table
    shapes, size, channels = [], image_size, 3

    def add_conv(name, c_in, c_out, kernel, stride=1, padding=0, at=None):
        shapes.append(OpShape(name, "conv2d", (batch, c_in, at or size, at or size),
                              dict(weight=(c_out, c_in, kernel, kernel), stride=stride, padding=padding)))

    def add_pool(name, op, c, kernel, stride, padding=0, ceil_mode=True, at=None):
        shapes.append(OpShape(name, op, (batch, c, at or size, at or size),
                              dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)))

    for row in table.TABLE_1:
        if row.kind == "conv":
            padding = (row.patch - 1) // 2          # 7x7/2 pad 3; 3x3 pad 1: "same" up to the stride
            if row.reduce:
                add_conv(f"{row.name}/reduce", channels, row.reduce, 1)
                channels = row.reduce
            add_conv(row.name, channels, row.out_channels, row.patch, row.stride, padding)
            size, channels = conv_output_size(size, row.patch, row.stride, padding), row.out_channels
        elif row.kind == "maxpool":         # as googlenet.sizes: never a window larger than the map
            kernel = min(row.patch, size)
            add_pool(row.name, "max_pool2d", channels, kernel, row.stride)
            size = conv_output_size(size, kernel, row.stride, 0, ceil_mode=True)
        elif row.kind == "avgpool":        # 7x7 at 224; the whole map (global) at smaller inputs
            add_pool(row.name, "avg_pool2d", channels, min(row.patch, size), row.stride, ceil_mode=False)
            size = 1
        elif row.kind == "inception":
            one, r3, three, r5, five, proj = row.widths
            add_conv(f"{row.name}/1x1", channels, one, 1)
            add_conv(f"{row.name}/3x3_reduce", channels, r3, 1)
            add_conv(f"{row.name}/3x3", r3, three, 3, padding=1)
            add_conv(f"{row.name}/5x5_reduce", channels, r5, 1)
            add_conv(f"{row.name}/5x5", r5, five, 5, padding=2)
            add_pool(f"{row.name}/pool", "max_pool2d", channels, 3, 1, padding=1, ceil_mode=False)
            add_conv(f"{row.name}/pool_proj", channels, proj, 1)
            channels = row.out_channels
        if row.name in table.LRN_AFTER:
            shapes.append(OpShape(f"lrn/{row.name}", "lrn", (batch, channels, size, size),
                                  dict(size=table.LRN_SIZE, alpha=table.LRN_ALPHA,
                                       beta=table.LRN_BETA, k=table.LRN_K)))
        if row.name in table.AUX_AFTER:
            head, kernel = f"aux/{row.name}", min(table.AUX_POOL, size)
            pooled = conv_output_size(size, kernel, table.AUX_POOL_STRIDE, 0, ceil_mode=True)
            add_pool(f"{head}/pool", "avg_pool2d", channels, kernel, table.AUX_POOL_STRIDE)
            add_conv(f"{head}/conv", channels, table.AUX_CONV_CHANNELS, 1, at=pooled)
    if not hasattr(F, "local_response_norm"):
        shapes = [s for s in shapes if s.op != "lrn"]
    return shapes


def describe(shape):
    """A short label of the op: "conv 7x7/2 p3 64", "max 3x3/2 ceil", "lrn 5"."""
    p = shape.params
    if shape.op == "conv2d":
        f, _, kh, kw = p["weight"]
        return f"conv {kh}x{kw}/{p['stride']}" + (f" p{p['padding']}" if p["padding"] else "") + f" {f}"
    if shape.op == "lrn":
        return f"lrn {p['size']}"
    k = p["kernel_size"]
    return (f"{shape.op[:3]} {k}x{k}/{p['stride']}" + (f" p{p['padding']}" if p["padding"] else "")
            + (" ceil" if p["ceil_mode"] else ""))


def _pair_functions(shape, rng):
    """(forward(), backward(gy, cache), gemms) for one op shape; gemms: {'fwd': fn, 'bwd': fn} or {}."""
    def normal(*dims):
        return rng.standard_normal(dims, dtype=numpy.float32)

    x, p = normal(*shape.x_shape), dict(shape.params)
    if shape.op == "conv2d":
        W = normal(*p.pop("weight"))
        b = normal(W.shape[0])
        y, _ = conv.conv2d_forward(x, W, b, **p)
        f, k, columns = W.shape[0], W[0].size, y.shape[0] * y.shape[2] * y.shape[3]
        A, B, G = normal(f, k), normal(k, columns), normal(f, columns)
        gemms = {"fwd": lambda: A @ B, "bwd": lambda: (G @ B.T, A.T @ G)}
        return (lambda: conv.conv2d_forward(x, W, b, **p)), conv.conv2d_backward, gemms
    if shape.op == "lrn":
        from .ops import lrn
        return (lambda: lrn.lrn_forward(x, **p)), lrn.lrn_backward, {}
    forward, backward = {"max_pool2d": (pool.max_pool2d_forward, pool.max_pool2d_backward),
                         "avg_pool2d": (pool.avg_pool2d_forward, pool.avg_pool2d_backward)}[shape.op]
    return (lambda: forward(x, **p)), backward, {}


def _synchronize(xp):
    if xp is not numpy:
        xp.cuda.get_current_stream().synchronize()


def _timed(fn, xp):
    start = time.perf_counter()
    result = fn()
    _synchronize(xp)
    return time.perf_counter() - start, result


def time_op(shape, repeats=5, device="cpu", seed=0):
    """Median seconds of forward, backward and (convolutions) the bare GEMMs, interleaved."""
    xp = backend.array_module_for(device)
    rng = backend.default_rng(seed, device)
    forward, backward, gemms = _pair_functions(shape, rng)
    y, _ = forward()
    gy = rng.standard_normal(y.shape, dtype=numpy.float32)
    times = {"fwd": [], "bwd": [], "gemm fwd": [], "gemm bwd": []}
    for run in range(repeats + 1):              # run 0 is the warm-up
        t_fwd, (_, cache) = _timed(forward, xp)
        t_bwd, _ = _timed(lambda: backward(gy, cache), xp)
        del cache
        measured = {"fwd": t_fwd, "bwd": t_bwd}
        for key, gemm in gemms.items():
            measured[f"gemm {key}"] = _timed(gemm, xp)[0]
        if run:
            for key, value in measured.items():
                times[key].append(value)
    return {key: statistics.median(values) for key, values in times.items() if values}


def time_ops(shapes, repeats=5, device="cpu", progress=None):
    """Time every shape; returns a list of (shape, medians) rows."""
    rows = []
    for shape in shapes:
        rows.append((shape, time_op(shape, repeats, device)))
        if progress:
            progress(rows[-1])
    return rows


def _misses(shape, t):
    misses = []
    if "gemm fwd" in t and t["fwd"] > TARGETS["conv fwd/GEMM"] * t["gemm fwd"]:
        misses.append("fwd")
    if "gemm bwd" in t and t["bwd"] > TARGETS["conv bwd/GEMMs"] * t["gemm bwd"]:
        misses.append("bwd")
    if shape.op in ("max_pool2d", "lrn") and t["bwd"] > TARGETS["bwd/fwd"] * t["fwd"]:
        misses.append("bwd/fwd")
    return misses


HEADER = (f"{'layer':<16} {'op':<18} {'input N,C,H,W':<16} {'fwd ms':>8} {'bwd ms':>8} {'bwd/fwd':>7} "
          f"{'GEMM ms':>8} {'fwd/GEMM':>8} {'GEMMs ms':>8} {'bwd/GEMMs':>9}  target")


def format_row(shape, t):
    ms = {key: value * 1e3 for key, value in t.items()}
    line = (f"{shape.name:<16} {describe(shape):<18} {','.join(map(str, shape.x_shape)):<16} "
            f"{ms['fwd']:>8.2f} {ms['bwd']:>8.2f} {t['bwd'] / t['fwd']:>7.2f} ")
    if "gemm fwd" in ms:
        line += (f"{ms['gemm fwd']:>8.2f} {t['fwd'] / t['gemm fwd']:>8.2f} "
                 f"{ms['gemm bwd']:>8.2f} {t['bwd'] / t['gemm bwd']:>9.2f}  ")
    else:
        line += " " * 38
    misses = _misses(shape, t)
    return line + ("MISS " + ",".join(misses) if misses else "ok")


def print_summary(rows, out=sys.stdout):
    """Totals per op, the overall conv/GEMM ratios and the rows that miss a target."""
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
    missed = [s.name for s, t in rows if _misses(s, t)]
    print(f"{len(rows) - len(missed)} of {len(rows)} ops meet their targets"
          + (f"; missed: {', '.join(missed)}" if missed else ""), file=out)


def main_ops(args):
    shapes = googlenet_op_shapes(args.batch, args.image_size)
    if args.only:
        shapes = [s for s in shapes if any(w.lower() in f"{s.name} {s.op}".lower() for w in args.only)]
    threads = args.blas_threads or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
    print(f"minigrad ops benchmark: device {args.device}, batch {args.batch}, {args.image_size}x"
          f"{args.image_size} input, median of {args.repeats} after a warm-up, float32, "
          f"NumPy {numpy.__version__}, BLAS threads {threads}, {os.cpu_count()} CPUs")
    print(HEADER)
    with _blas_threads(args.blas_threads):
        rows = time_ops(shapes, args.repeats, args.device, progress=lambda r: print(format_row(*r), flush=True))
    print_summary(rows)


def _blas_threads(count):
    """A context that limits BLAS to ``count`` threads (no limit when None)."""
    if count is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=count, user_api="blas")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minigrad.bench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ops = commands.add_parser("ops", help="time every conv, pool and LRN of GoogLeNet, forward and backward")
    ops.add_argument("--batch", type=int, default=None, help="batch size (default 8; 1 with --quick)")
    ops.add_argument("--repeats", type=int, default=None, help="timed runs per op (default 5; 1 with --quick)")
    ops.add_argument("--image-size", type=int, default=224, help="input height and width (default 224)")
    ops.add_argument("--only", nargs="+", metavar="TEXT",
                     help="only ops whose name or kind contains one of these (e.g. 3a pool conv1)")
    ops.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ops.add_argument("--blas-threads", type=int, default=None, help="limit BLAS to this many threads")
    ops.add_argument("--quick", action="store_true", help="smoke run: batch 1, one repeat")
    args = parser.parse_args(argv)
    args.batch = args.batch or (1 if args.quick else 8)
    args.repeats = args.repeats or (1 if args.quick else 5)
    main_ops(args)


if __name__ == "__main__":
    main()
