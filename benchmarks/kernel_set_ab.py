"""Two versions of the numpy kernel set, side by side in one process: this tree's
``minigrad/kernels/vectorized.py`` against the same file at another git revision.

    python benchmarks/kernel_set_ab.py --against HEAD~1                 # 8x224 training steps
    python benchmarks/kernel_set_ab.py --against HEAD~1 --model 32x224 --rounds 4
    python benchmarks/kernel_set_ab.py --against 5c72938 --forward     # forward passes

Why in one process: on a shared machine two separate runs of the same step differ by up to
15% (the neighbours' load changes between them), more than most single kernel changes
gain. Here one GoogLeNet (the ``bench --model`` setup) runs its steps on the two sets in
turn, alternating which goes first each round, so that both see the same machine; the
medians and their ratio are printed. Only the kernel set is swapped: a change outside
``vectorized.py`` (the engine, concat) needs two trees timed the usual way, and the other
version must offer the functions this tree's ops call, with the same arguments (``input_grad``
of ``conv2d_backward`` came with 2e39d72).

The other version is read with ``git show`` into a temporary file and imported as a module
of ``minigrad.kernels`` (its relative imports then find this tree's helpers); each
forward's cache carries the set that made it, so every backward runs on the same set.
"""
import argparse
import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from googlenet.bench_model import MinigradWork              # noqa: E402  (after the path)
from minigrad import kernels                                 # noqa: E402
from minigrad.bench.machine import machine_line              # noqa: E402
from minigrad.host_memory import keep_freed_memory           # noqa: E402

KERNEL_FILE = "minigrad/kernels/vectorized.py"


def kernel_set_at(revision):
    """The numpy kernel set as it was at git ``revision``, imported as a module."""
    source = subprocess.run(["git", "show", f"{revision}:{KERNEL_FILE}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
        file.write(source)
    try:
        spec = importlib.util.spec_from_file_location("minigrad.kernels._vectorized_at_revision", file.name)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = "minigrad.kernels"
        spec.loader.exec_module(module)
    finally:
        os.unlink(file.name)
    return module


def alternate(run, sets, rounds):
    """{name: [seconds, ...]}: ``run()`` on each set in turn, ``rounds`` times after one warm-up
    round, the order of the sets reversed every other round."""
    chosen = kernels.SETS["numpy"]
    times = {name: [] for name in sets}
    try:
        for round_ in range(rounds + 1):
            order = list(sets.items()) if round_ % 2 == 0 else list(reversed(sets.items()))
            for name, kernel_set in order:
                kernels.SETS["numpy"] = kernel_set
                started = time.perf_counter()
                run()
                if round_:
                    times[name].append(time.perf_counter() - started)
    finally:
        kernels.SETS["numpy"] = chosen
    return times


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="the git revision to compare with (e.g. HEAD~1)")
    parser.add_argument("--model", default="8x224", help="BATCHxSIZE (default 8x224)")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds (default 8)")
    parser.add_argument("--forward", action="store_true", help="time forward passes, not training steps")
    args = parser.parse_args(argv)
    batch, size = (int(part) for part in args.model.lower().split("x"))
    keep_freed_memory()
    sets = {"this tree": kernels.SETS["numpy"], args.against: kernel_set_at(args.against)}
    work = MinigradWork(batch, size)
    run = work.forward if args.forward else work.training_step
    times = alternate(run, sets, args.rounds)
    print(machine_line())
    print(f"GoogLeNet {'forward' if args.forward else 'training step'}, batch {batch}, {size}x{size}, "
          f"numpy kernel set, median of {args.rounds} rounds, alternately in one process")
    medians = {name: median(seconds) for name, seconds in times.items()}
    for name, seconds in medians.items():
        spread = f"{min(times[name]) * 1e3:.1f}-{max(times[name]) * 1e3:.1f}"
        print(f"  {name:>12}: {seconds * 1e3:8.1f} ms  (rounds {spread} ms)")
    print(f"  this tree / {args.against}: {medians['this tree'] / medians[args.against]:.3f}")


if __name__ == "__main__":
    main()
