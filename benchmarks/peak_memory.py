"""Peak memory of one GoogLeNet training step (the paper's network with both auxiliary
heads: forward, the paper's loss, zero_grad, backward, SGD with momentum and weight decay),
as tracemalloc counts it: every NumPy array alive at the worst moment of the step, the
parameters, gradients and momenta included (BLAS's own buffers and Python's interpreter are
not counted; a process's RSS adds those). Prints a Markdown table:

    python benchmarks/peak_memory.py [--batch 8] [--size 224] [--width 1.0]

Three ways of running the same step:

* caches kept: backward(retain_graph=True), every op's saved arrays alive until the step
  ends, parameters one by one;
* caches freed: each op's saved arrays dropped as soon as its backward has used them;
* flat buffers: caches freed, and parameters, gradients and momenta in one flat buffer each
  (``model.flatten_parameters()``), as ``python -m googlenet train`` runs.

"activations" and "saved by the ops" are the arrays the graph holds at the end of the
forward (counted by walking it): the floor of any step that keeps the graph whole.
"""
import argparse
import datetime
import gc
import platform
import tracemalloc

import numpy

from minigrad import kernels
from minigrad.autograd import Tensor, graph_order
from minigrad.optim import SGD
from googlenet.model import GoogLeNet, googlenet_loss

MiB = 2 ** 20
WAYS = ("caches kept", "caches freed", "flat buffers")


def graph_bytes(loss, exclude):
    """(activations, saved by the ops): bytes of the distinct buffers behind the graph's
    tensors and behind its nodes' caches, apart from the buffers in ``exclude`` (ids)."""
    seen, totals = set(exclude), [0, 0]

    def count(array, kind):
        while isinstance(array.base, numpy.ndarray):
            array = array.base
        if id(array) not in seen:
            seen.add(id(array))
            totals[kind] += array.nbytes

    def count_cache(value):
        if isinstance(value, numpy.ndarray):
            count(value, 1)
        elif isinstance(value, (tuple, list)):
            for item in value:
                count_cache(item)

    order = graph_order(loss)
    for tensor in order:
        count(tensor.data, 0)
    for tensor in order:
        if tensor.node is not None:
            count_cache(tensor.node.cache)
    return totals


def measure(way, batch, size, width):
    """Peak traced bytes of the second training step (the first makes the momenta), the
    bytes traced when it starts, and the graph's arrays at the end of its forward."""
    gc.collect()
    tracemalloc.start()
    model = GoogLeNet(num_classes=1000, input_size=size, width=width)
    if way == "flat buffers":
        model.flatten_parameters()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
    rng = numpy.random.default_rng(0)
    images = rng.standard_normal((batch, 3, size, size)).astype(numpy.float32)
    labels = rng.integers(0, 1000, batch)
    parameters = {id(p.data if p.data.base is None else p.data.base) for p in model.parameters()}
    graph = None
    for step in range(2):
        if step == 1:
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
        loss = googlenet_loss(model(Tensor(images)), labels)
        if step == 1:
            graph = graph_bytes(loss, parameters | {id(images)})
        optimizer.zero_grad()
        loss.backward(retain_graph=way == "caches kept")
        optimizer.step()
        del loss
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, start, graph


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0)
    args = parser.parse_args()
    print(f"GoogLeNet training step, batch {args.batch}, {args.size}x{args.size}, width {args.width}, "
          f"float32, numpy kernels; {platform.processor() or platform.machine()}, NumPy "
          f"{numpy.__version__}, {datetime.date.today()}\n")
    print("| way | peak (MiB) | traced at the step's start (MiB) | activations (MiB) | saved by the ops (MiB) |")
    print("|---|---|---|---|---|")
    with kernels.use("numpy"):
        for way in WAYS:
            peak, start, (activations, saved) = measure(way, args.batch, args.size, args.width)
            print(f"| {way} | {peak / MiB:.1f} | {start / MiB:.1f} | {activations / MiB:.1f} | "
                  f"{saved / MiB:.1f} |")


if __name__ == "__main__":
    main()
