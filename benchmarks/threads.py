"""Times the numpy kernel set's memory-bound kernels on 1, 2, ... threads (minigrad.parallel)
at GoogLeNet's own shapes, 224x224 float32, and prints a table (Markdown) with the machine it
ran on. Every thread count's results are checked to be the same bits as one thread's.

    python benchmarks/threads.py [--batch 8 32] [--threads 1 2] [--repeats 7] [--all]

The kernels: max and average pooling and LRN (forward and backward), im2col and col2im of the
convolutions with windows larger than 1x1, the ReLU after a convolution (forward and
backward) and an Inception module's concatenation. By default a few of GoogLeNet's layers
(SUBSET); --all times every one and adds each kind's total. Matrix products are not here:
BLAS threads them itself. Times are medians in milliseconds, the thread counts taking turns
within each repeat; on a machine shared with other work they are rough (the load average is
printed before and after).
"""
import argparse
import datetime
import os
import platform
import sys

import numpy

from googlenet.bench import googlenet_op_shapes
from minigrad import bench, parallel

SUBSET = ["conv1", "pool1", "lrn/pool1", "conv2", "lrn/conv2", "pool2", "3a/3x3", "3a/pool", "3a",
          "pool3", "4a/3x3", "aux/4a/pool", "5b/pool"]


def kernels_at(batch, names, rng):
    """[(label, function)] of the threaded kernels of GoogLeNet's layers called ``names`` (None:
    all), the Inception modules' joins under their module's name ("3a"), and {label: kind}."""
    shapes = googlenet_op_shapes(batch, 224)
    chosen, kinds = [], {}
    for shape in shapes:
        if names is None or shape.name in names:
            for label, function in bench.threaded_kernels(shape, rng):
                what = label[len(shape.name) + 1:]              # fwd, bwd, im2col, relu fwd...
                kinds[label] = what if shape.op == "conv2d" else f"{shape.op} {what}"
                chosen.append((label, function))
    by_name = {shape.name: shape for shape in shapes}
    modules = dict.fromkeys(shape.name.split("/")[0] for shape in shapes if shape.name.endswith("/pool_proj"))
    for module in modules:
        if names is None or module in names:
            branches = [bench.op_output_shape(by_name[f"{module}/{branch}"])
                        for branch in ("1x1", "3x3", "5x5", "pool_proj")]
            chosen.append(bench.concat_kernel(module, branches, rng))
            kinds[chosen[-1][0]] = "concat"
    return chosen, kinds


def table(batch, times, counts):
    head = f"| batch {batch} | " + " | ".join(f"{c} thread{'s' if c > 1 else ''} ms" for c in counts)
    head += " | " + " | ".join(f"x{c}" for c in counts[1:]) + " |"
    lines = [head, "|" + "---|" * (2 * len(counts))]
    for label, t in times.items():
        lines.append(f"| {label} | " + " | ".join(f"{t[c] * 1e3:.2f}" for c in counts) + " | "
                     + " | ".join(f"{t[counts[0]] / t[c]:.2f}" for c in counts[1:]) + " |")
    return lines


def totals_by_kind(times, kinds, counts):
    totals = {}
    for label, t in times.items():
        total = totals.setdefault(kinds[label], dict.fromkeys(counts, 0.0))
        for count in counts:
            total[count] += t[count]
    totals["all"] = {c: sum(total[c] for total in list(totals.values())) for c in counts}
    return {f"total: {name}": t for name, t in totals.items()}


def machine_line():
    model, avx512 = platform.processor() or platform.machine(), False
    try:
        with open("/proc/cpuinfo") as info:
            text = info.read()
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        avx512 = " avx512f " in text
    except (OSError, StopIteration):
        pass
    blas = "BLAS unknown"
    try:
        from threadpoolctl import threadpool_info
        found = [f"{i['internal_api']} {i['version']}" for i in threadpool_info() if i["user_api"] == "blas"]
        blas = ", ".join(found) or blas
    except ImportError:
        pass
    return (f"{model}, {parallel.available_cores()} cores available ({os.cpu_count()} in the machine), "
            f"AVX-512 {'yes' if avx512 else 'no'}; Python {platform.python_version()}, NumPy "
            f"{numpy.__version__}, {blas}; {datetime.date.today().isoformat()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts (default: 1, 2, 4, ... up to the available cores)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--all", action="store_true", help="every layer of GoogLeNet, with totals by kind")
    args = parser.parse_args(argv)
    counts = args.threads or bench.counts_up_to(parallel.available_cores())
    rng = numpy.random.default_rng(0)
    print(f"# Thread scaling of the numpy kernel set's memory-bound kernels, GoogLeNet at 224x224, float32\n")
    print(f"Machine: {machine_line()}.  ")
    print(f"Load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; median of {args.repeats}, "
          f"every count's results identical to {counts[0]} thread's.\n")
    for batch in args.batch:
        chosen, kinds = kernels_at(batch, None if args.all else SUBSET, rng)
        times = bench.thread_scaling(chosen, counts, args.repeats)
        if args.all:
            times.update(totals_by_kind(times, kinds, counts))
        print("\n".join(table(batch, times, counts)) + "\n", flush=True)
    print(f"Load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
