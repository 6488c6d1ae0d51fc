"""Benchmarks: programs that print tables (not tests).

    python -m minigrad.bench ops --shapes googlenet.bench:googlenet_op_shapes
    python -m minigrad.bench ops --shapes googlenet.bench:googlenet_op_shapes --only 3a pool
    python -m minigrad.bench ops --shapes ... --quick     # a smoke run: batch 1, one repeat
    python -m minigrad.bench ops --shapes ... --device cpu,cuda --torch --out DIR   # minigrad.compare

``ops`` times each op's forward and backward pass (the array pairs of
``minigrad.ops``, without autograd bookkeeping) on a network's own layer
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

Work and traffic: ``op_flops(shape)`` and ``op_bytes(shape)`` count an op's forward
FLOPs and its least memory traffic from its shapes (float32), ``arithmetic_intensity``
is their ratio, and ``gemm_peak_gflops`` / ``copy_bandwidth_gbs`` measure the machine's
two roofs; ``attainable_gflops`` is the roofline min(peak, intensity x bandwidth).
Lesson 8 (notebooks/08_cpu_vs_gpu.py) draws them.

The framework knows no network: ``--shapes MODULE:FUNCTION`` names a function
(batch, image_size) -> [OpShape, ...] in the network's package, imported when the
command runs. ``python -m googlenet bench`` is the same benchmark with GoogLeNet's
shapes built in. Another network only needs such a function to reuse ``time_ops``,
``format_row`` and ``print_summary``.
"""
import argparse
import contextlib
import importlib
import math
import os
import statistics
import sys
import time
from typing import NamedTuple

import numpy

from . import backend, kernels, paths
from .ops import conv, lrn, pool
from .geometry import pair, window

TARGETS = {"conv fwd/GEMM": 1.3, "conv bwd/GEMMs": 1.5, "bwd/fwd": 3.0}


class OpShape(NamedTuple):
    name: str          # "conv1", "3a/3x3", "pool2", "lrn1"
    op: str            # "conv2d", "max_pool2d", "avg_pool2d" or "lrn"
    x_shape: tuple     # (N, C, H, W)
    params: dict       # conv2d: weight (F, C, KH, KW), stride, padding; pools: their keywords


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
        return (lambda: lrn.lrn_forward(x, **p)), lrn.lrn_backward, {}
    forward, backward = {"max_pool2d": (pool.max_pool2d_forward, pool.max_pool2d_backward),
                         "avg_pool2d": (pool.avg_pool2d_forward, pool.avg_pool2d_backward)}[shape.op]
    return (lambda: forward(x, **p)), backward, {}


def _timed(fn, xp):
    """(seconds, result) of ``fn()``: a host clock on the CPU; on a GPU, CUDA events recorded
    around the launches on the stream, read once the end event has happened (a host clock
    would time the launch, not the work)."""
    if xp is numpy:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    start, end = xp.cuda.Event(), xp.cuda.Event()
    start.record()
    result = fn()
    end.record()
    end.synchronize()
    return xp.cuda.get_elapsed_time(start, end) / 1e3, result


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
    missed = [s.name for s, t in rows if _misses(s, t)]
    print(f"{len(rows) - len(missed)} of {len(rows)} ops meet their targets"
          + (f"; missed: {', '.join(missed)}" if missed else ""), file=out)


# --- work and traffic: FLOPs, bytes and the two roofs of a machine ---------------------------
# What each op has to do, counted from its shapes (forward pass, float32), and what the
# machine can do: its GEMM peak and its memory bandwidth. Together they place an op on a
# roofline plot: achieved GFLOP/s against arithmetic intensity (FLOPs per byte moved).
BYTES_PER_NUMBER = 4        # float32, the dtype every benchmark here runs in


def op_output_shape(shape):
    """The shape (N, F or C, OH, OW) of the op's output; an LRN keeps its input's shape."""
    n, c = shape.x_shape[:2]
    p = shape.params
    if shape.op == "lrn":
        return tuple(shape.x_shape)
    if shape.op == "conv2d":
        f, _, kh, kw = p["weight"]
        win = window(shape.x_shape[2:], (kh, kw), p.get("stride", 1), p.get("padding", 0))
        return (n, f) + win.out
    stride = p.get("stride") or p["kernel_size"]
    win = window(shape.x_shape[2:], p["kernel_size"], stride, p.get("padding", 0), p.get("ceil_mode", False))
    return (n, c) + win.out


def op_flops(shape):
    """The floating-point operations of the op's forward pass, counted from its shapes.

    conv2d       2 * N*F*OH*OW * C*KH*KW: each output is a sum of C*KH*KW products, and a
                 multiply-add is two FLOPs (the bias, N*F*OH*OW adds, is left out: under
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
    the weights W read once (conv2d; the bias is left out, as in ``op_flops``) and the
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


def median_seconds(fn, repeats=5, xp=numpy):
    """The median seconds of ``repeats`` calls of ``fn()`` after one warm-up call
    (``xp``: the array module the work runs on, so a GPU is timed with CUDA events)."""
    fn()
    return statistics.median(_timed(fn, xp)[0] for _ in range(repeats))


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


# --- command line --------------------------------------------------------------------------
class BenchError(ValueError):
    """A benchmark option that cannot work on this machine or makes no sense."""


def add_ops_arguments(parser):
    """The options of an ops benchmark (``minigrad.bench ops``, ``googlenet bench``)."""
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 8; 1 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per op (default 5; 1 with --quick)")
    parser.add_argument("--image-size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--only", nargs="+", metavar="TEXT",
                        help="only ops whose name or kind contains one of these (e.g. 3a pool conv1)")
    parser.add_argument("--device", default="cpu",
                        help="cpu or cuda (or gpu, any case), or a comparison: cpu,cuda (default cpu)")
    parser.add_argument("--torch", action="store_true",
                        help="with --device cpu,cuda: PyTorch's columns too (when installed)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="with --device cpu,cuda: write DIR/ops.csv and DIR/ops.png")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS to this many threads")
    parser.add_argument("--kernels", choices=sorted(kernels.SETS), default=None,
                        help="the kernel set to time (default: the device's, numpy on the CPU)")
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 1, one repeat")


def check_ops_arguments(args):
    """Fill in the --quick defaults; a BenchError for an option that cannot work."""
    args.batch = (1 if args.quick else 8) if args.batch is None else args.batch
    args.repeats = (1 if args.quick else 5) if args.repeats is None else args.repeats
    for flag, value in (("--batch", args.batch), ("--repeats", args.repeats), ("--image-size", args.image_size),
                        ("--blas-threads", args.blas_threads)):
        if value is not None and value < 1:
            raise BenchError(f"{flag} must be at least 1, got {value}")
    try:
        # Names as backend.parse_device reads them: any case, spaces around, "gpu" for "cuda".
        if "," in args.device:                         # a comparison: a missing GPU is a missing column
            args.devices = list(dict.fromkeys(backend.parse_device(d).split(":")[0]
                                              for d in args.device.split(",")))
        else:
            args.device = backend.parse_device(args.device)
            backend.array_module_for(args.device)
    except (ValueError, RuntimeError) as error:    # unknown name; cuda without a usable GPU
        raise BenchError(str(error)) from None
    check_comparison_options(args)
    if args.blas_threads is not None:
        try:
            import threadpoolctl  # noqa: F401  (only asking whether it is installed)
        except ImportError:
            raise BenchError("--blas-threads needs threadpoolctl (pip install threadpoolctl)") from None


def check_comparison_options(args):
    """The options that belong to one mode only are refused in the other, never ignored:
    --out and --torch need a comparison (--device cpu,cuda), which times every kernel set,
    so --kernels needs a single device. --out is checked here, before any timing."""
    comparison = "," in args.device
    if comparison and args.kernels:
        raise BenchError(f"--kernels {args.kernels}: a comparison (--device {args.device}) times every "
                         f"kernel set; --kernels chooses the set of a single device")
    for flag, given in (("--out", args.out), ("--torch", args.torch)):
        if given and not comparison:
            raise BenchError(f"{flag} belongs to a comparison: give --device cpu,cuda (or leave {flag} out)")
    if args.out:
        problem = paths.folder_problem(args.out)
        if problem:
            raise BenchError(f"--out {args.out}: {problem}")


def run_ops(args, op_shapes, network):
    """Time the ops ``op_shapes(batch, image_size)`` lists; the exit status (2: bad options)."""
    try:
        check_ops_arguments(args)
        shapes = op_shapes(args.batch, args.image_size)
    except ValueError as error:                # BenchError, or an image size the network refuses
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.only:
        shapes = [s for s in shapes if any(w.lower() in f"{s.name} {s.op}".lower() for w in args.only)]
        if not shapes:
            print(f"error: --only {' '.join(args.only)} matches no op of {network}", file=sys.stderr)
            return 2
    if "," in args.device:
        from .compare import run_compare
        with blas_threads(args.blas_threads):
            return run_compare(args, shapes, network, args.devices)
    threads = args.blas_threads or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
    kernel_set = args.kernels or kernels.DEFAULT_FOR_DEVICE[args.device.split(":")[0]]
    print(f"minigrad ops benchmark, {network}: device {args.device}, kernels {kernel_set}, batch {args.batch}, "
          f"{args.image_size}x{args.image_size} input, median of {args.repeats} after a warm-up, float32, "
          f"NumPy {numpy.__version__}, BLAS threads {threads}, {os.cpu_count()} CPUs")
    print(HEADER)
    with blas_threads(args.blas_threads), kernels.use(kernel_set):
        rows = time_ops(shapes, args.repeats, args.device, progress=lambda r: print(format_row(*r), flush=True))
    print_summary(rows)
    return 0


def blas_threads(count):
    """A context that limits BLAS to ``count`` threads (no limit when None)."""
    if count is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=count, user_api="blas")


SHAPES_HINT = "e.g. --shapes googlenet.bench:googlenet_op_shapes, or run python -m googlenet bench"


def resolve_shapes(spec):
    """The function a "module:function" spec names; a BenchError when there is none."""
    if not spec:
        raise BenchError(f"--shapes MODULE:FUNCTION is required ({SHAPES_HINT})")
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise BenchError(f"--shapes {spec}: expected MODULE:FUNCTION ({SHAPES_HINT})")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BenchError(f"--shapes {spec}: {error} ({SHAPES_HINT})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise BenchError(f"--shapes {spec}: {module_name} has no function {function_name!r} ({SHAPES_HINT})")
    return function


def main_ops(args):
    """``ops``: time the ops of the network that ``--shapes`` names."""
    try:
        op_shapes = resolve_shapes(args.shapes)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run_ops(args, op_shapes, args.shapes)


def build_parser():
    """The parser of ``python -m minigrad.bench`` (its one command: ``ops``)."""
    parser = argparse.ArgumentParser(prog="python -m minigrad.bench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ops = commands.add_parser("ops", help="time every conv, pool and LRN of a network, forward and backward")
    ops.add_argument("--shapes", metavar="MODULE:FUNCTION",
                     help="the function (batch, image_size) -> [OpShape, ...] that lists the network's ops, "
                          "e.g. googlenet.bench:googlenet_op_shapes")
    add_ops_arguments(ops)
    return parser


def main(argv=None):
    """``python -m minigrad.bench ops --shapes MODULE:FUNCTION``; returns the exit status."""
    return main_ops(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
