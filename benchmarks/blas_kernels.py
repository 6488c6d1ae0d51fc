"""OpenBLAS's kernel choices side by side: GoogLeNet's training step (or forward) with each
choice of OPENBLAS_CORETYPE, each in a process of its own, the processes taking turns.

    python benchmarks/blas_kernels.py                              # 8x224: Zen, SkylakeX, Haswell
    python benchmarks/blas_kernels.py --model 64x32 --kernels Zen SkylakeX --repeats 9

OpenBLAS picks its matrix-product kernels for the processor it finds, and reads a choice
given in OPENBLAS_CORETYPE once, as NumPy loads it: so every choice runs in a child process
of its own (``minigrad.bench.step_times.time_in_own_processes``), call by call in turn with a
rest before each, and the medians are compared with the first choice's. ``minigrad.blas_setup``
chose Zen's kernels on AMD Zen 4 from such comparisons (its docstring has the numbers); run
this on another processor before choosing for it. With NumPy built on another BLAS the
variable changes nothing, and every column measures the same.
"""
import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minigrad import blas_setup                               # noqa: E402  (after the path)
from minigrad.bench.machine import machine_line               # noqa: E402
from minigrad.bench.step_times import time_in_own_processes   # noqa: E402

BUILDER = "googlenet.bench_model:minigrad_work"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="8x224", help="BATCHxSIZE (default 8x224)")
    parser.add_argument("--kernels", nargs="+", default=["Zen", "SkylakeX", "Haswell"],
                        help="OPENBLAS_CORETYPE values, the first the one the others are compared with")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of each (default 5)")
    parser.add_argument("--forward", action="store_true", help="time forward passes, not training steps")
    args = parser.parse_args(argv)
    batch, size = (int(part) for part in args.model.lower().split("x"))
    call = "forward" if args.forward else "training_step"
    keywords = dict(batch=batch, image_size=size, width=1.0, device="cpu", kernel_set="numpy")
    medians = time_in_own_processes({kernels: BUILDER for kernels in args.kernels}, keywords, (call,),
                                    repeats=args.repeats,
                                    variables={kernels: {blas_setup.KERNELS_VARIABLE: kernels}
                                               for kernels in args.kernels})[call]
    print(machine_line())
    print(f"GoogLeNet {call.replace('_', ' ')}, batch {batch}, {size}x{size}, numpy kernel set, median of "
          f"{args.repeats}, each {blas_setup.KERNELS_VARIABLE} in a process of its own, in turn")
    first = medians[args.kernels[0]].seconds
    for kernels, median in medians.items():
        print(f"  {kernels:>16}: {median.seconds * 1e3:8.1f} ms   {median.seconds / first:.3f}x "
              f"{args.kernels[0]}'s time")


if __name__ == "__main__":
    main()
