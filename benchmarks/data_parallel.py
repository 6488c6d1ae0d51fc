"""Data-parallel training measured: 1 and 2 ranks on this machine, and a cost model for N GPUs.

    python benchmarks/data_parallel.py                # GoogLeNet at full width, 32x32 digits' shape
    python benchmarks/data_parallel.py --quick        # 1/4 width, a few steps: seconds

Part 1 times training steps of GoogLeNet (the paper's loss, auxiliary heads, SGD with
momentum) in three configurations, each a fresh set of processes:

    1 process, 2 BLAS threads, batch 2B    what one process does with this machine's 2 cores
    1 process, 1 BLAS thread,  batch B     one core's speed, for the scaling efficiency
    2 ranks (mpiexec -n 2), 1 thread each, batch B each = 2B in all

and prints images/s, the scaling efficiency (2 ranks' images/s over twice one rank's) and
the speed-up over the 2-thread process, the time per step in the gradient all-reduce
(waiting for the slower rank included) and the time of the all-reduce alone, measured
after a barrier, with the bandwidth it reached.

Part 2 is the cost model (``minigrad.distributed.cost``) for GoogLeNet's 13,378,280
parameters (1000 classes, auxiliary heads: 53.5 MB in float32), fed with the step time
one H200 measured (``benchmarks/training-step.csv``, batch 32 per GPU): the expected
scaling efficiency on 2 to 64 GPUs over the links of ``cost.LINKS``.

``--worker`` is what each rank of a configuration runs; it prints one JSON line.
"""
import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOOGLENET_PARAMETERS = 13_378_280       # 1000 classes with both auxiliary heads (python -m googlenet summary)


# --- part 1: one configuration, on each of its ranks -------------------------------------------------
def worker(args):
    sys.path.insert(0, str(ROOT))
    from googlenet.model import GoogLeNet, googlenet_loss
    from minigrad import distributed
    from minigrad.autograd import Tensor
    from minigrad.optim import SGD

    comm = distributed.communicator()
    model = GoogLeNet(num_classes=10, in_channels=1, width=args.width, input_size=args.image_size, seed=0)
    model.flatten_parameters()                   # as the Trainer does: one gradient buffer
    optimizer = distributed.MultiNodeOptimizer(SGD(model.parameters(), lr=0.01, momentum=0.9), comm)
    rng = numpy.random.default_rng(comm.rank)
    images = rng.standard_normal((args.batch, 1, args.image_size, args.image_size)).astype(numpy.float32)
    labels = rng.integers(0, 10, args.batch)
    allreduce_seconds = []
    exchange = comm.allreduce_grad

    def timed_exchange(params):
        started = time.perf_counter()
        exchange(params)
        allreduce_seconds.append(time.perf_counter() - started)
    comm.allreduce_grad = timed_exchange

    step_seconds = []
    for step in range(args.warmup + args.steps):
        comm.barrier()
        started = time.perf_counter()
        optimizer.zero_grad()
        googlenet_loss(model(Tensor(images)), labels, 0.3).backward(1 / comm.size)
        optimizer.step()
        step_seconds.append(time.perf_counter() - started)
    gradient = numpy.zeros(sum(p.size for p in model.parameters()), dtype=numpy.float32)
    alone = []
    for _ in range(args.steps):
        comm.barrier()
        started = time.perf_counter()
        comm.allreduce(gradient)
        alone.append(time.perf_counter() - started)
    result = dict(ranks=comm.size, batch=args.batch, gradient_bytes=gradient.nbytes,
                  step=float(numpy.median(step_seconds[args.warmup:])),
                  allreduce_in_step=float(numpy.median(allreduce_seconds[args.warmup:])),
                  allreduce_alone=float(numpy.median(alone)))
    if comm.rank == 0:
        print(json.dumps(result), flush=True)


def run_configuration(ranks, threads, batch, args):
    """The worker's result for one configuration, in fresh processes with ``threads`` BLAS
    threads each (and minigrad's own thread pool, where it has one, as large)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **{name: str(threads) for name in (
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINIGRAD_THREADS")}}
    command = [sys.executable, __file__, "--worker", "--width", str(args.width), "--image-size",
               str(args.image_size), "--batch", str(batch), "--steps", str(args.steps), "--warmup",
               str(args.warmup)]
    if ranks > 1:
        command = [mpiexec(), "-n", str(ranks)] + command
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mpiexec():
    beside = pathlib.Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else "mpiexec"


def measure(args):
    b = args.batch
    two_threads = run_configuration(1, 2, 2 * b, args)
    one_rank = run_configuration(1, 1, b, args)
    two_ranks = run_configuration(2, 1, b, args)
    rows = [("1 process, 2 threads", two_threads), ("1 process, 1 thread", one_rank),
            ("2 ranks, 1 thread each", two_ranks)]
    print(f"GoogLeNet, width {args.width}, {args.image_size}x{args.image_size} images, global batch of "
          f"the 2-rank run {2 * b}; medians of {args.steps} steps after {args.warmup}; "
          f"{os.cpu_count()} CPU cores")
    print(f"{'configuration':<24}{'batch':>7}{'step ms':>10}{'images/s':>10}{'all-reduce ms':>15}")
    for name, row in rows:
        images = row["batch"] * row["ranks"] / row["step"]
        print(f"{name:<24}{row['batch'] * row['ranks']:>7}{1e3 * row['step']:>10.1f}{images:>10.1f}"
              f"{1e3 * row['allreduce_in_step'] if row['ranks'] > 1 else 0:>15.2f}")
    rate = {name: row["batch"] * row["ranks"] / row["step"] for name, row in rows}
    efficiency = rate["2 ranks, 1 thread each"] / (2 * rate["1 process, 1 thread"])
    speedup = rate["2 ranks, 1 thread each"] / rate["1 process, 2 threads"]
    megabytes = two_ranks["gradient_bytes"] / 1e6
    alone = two_ranks["allreduce_alone"]
    print(f"scaling efficiency of 2 ranks (images/s over twice one rank's): {efficiency:.2f}; "
          f"against 1 process with 2 threads: {speedup:.2f}x its images/s")
    print(f"all-reduce of the {megabytes:.1f} MB gradient: {1e3 * two_ranks['allreduce_in_step']:.2f} ms "
          f"a step ({100 * two_ranks['allreduce_in_step'] / two_ranks['step']:.1f}% of it, waiting for "
          f"the other rank included); alone, after a barrier: {1e3 * alone:.2f} ms, "
          f"{megabytes / 1e3 / alone:.2f} GB/s of gradient")


# --- part 2: the cost model ------------------------------------------------------------------------
def recorded_gpu_steps():
    """{implementation: seconds per training step at batch 32} from training-step.csv."""
    with open(ROOT / "benchmarks" / "training-step.csv") as file:
        return {row["implementation"]: float(row["gpu_ms"]) / 1e3
                for row in csv.DictReader(file) if row["batch"] == "32"}


def cost_model():
    sys.path.insert(0, str(ROOT))
    from minigrad.distributed import cost
    gradient = 4 * GOOGLENET_PARAMETERS
    ranks = (2, 4, 8, 16, 32, 64)
    print(f"\ncost model: ring all-reduce of GoogLeNet's gradient ({GOOGLENET_PARAMETERS:,} parameters, "
          f"{gradient / 1e6:.1f} MB in float32), after the backward pass, no overlap; each rank sends "
          f"2(N-1)/N of it: {', '.join(f'{cost.ring_allreduce_bytes(gradient, n) / 1e6:.1f}' for n in ranks)} "
          f"MB at N = {', '.join(map(str, ranks))}")
    for name, step in recorded_gpu_steps().items():
        print(f"\n{name}'s training step on one H200 at batch 32 (training-step.csv): {1e3 * step:.1f} ms; "
              f"expected scaling efficiency at N GPUs")
        print(f"{'link':<42}{'GB/s':>7}" + "".join(f"{n:>7}" for n in ranks))
        for link, efficiencies in cost.efficiency_table(step, gradient, ranks):
            print(f"{link.name:<42}{link.bandwidth / 1e9:>7.2f}" + "".join(f"{e:>7.2f}" for e in efficiencies))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16, help="images per rank per step (B)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600, help="seconds for each configuration")
    parser.add_argument("--quick", action="store_true", help="width 1/4, 4 steps after 1")
    parser.add_argument("--cost-model-only", action="store_true")
    parser.add_argument("--no-cost-model", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.steps, args.warmup = 0.25, 4, 1
    if args.worker:
        return worker(args)
    if not args.cost_model_only:
        measure(args)
    if not args.no_cost_model:
        cost_model()


if __name__ == "__main__":
    main()
