"""Thread scaling: the memory-bound kernels of the numpy set timed on 1, 2, ... threads.

    kernels = [k for shape in shapes for k in threaded_kernels(shape, rng)]
    times = thread_scaling(kernels, counts=(1, 2, 4), repeats=5)   # {label: {threads: seconds}}

A kernel here is a ``(label, function)`` pair; the function takes no arguments and
returns what the kernel computed. ``thread_scaling`` calls each at every thread count
(``minigrad.parallel.threads``), the counts taking turns within each repeat, so that a
machine getting busier slows them all alike, and keeps the median. It also checks what
the parallel module promises: every count's results are the same bits as the first
count's, NaN for NaN (``same_bits``; an AssertionError naming the kernel and the count
otherwise).

Matrix products are not among these kernels: BLAS threads them itself, whatever the
count here. ``benchmarks/threads.py`` prints the table at GoogLeNet's shapes; lesson 8
draws the curve.
"""
import statistics

import numpy

from .. import kernels, parallel
from ..geometry import window
from ..ops import elementwise, lrn, pool, shape as shape_ops
from .timing import host_timed


def threaded_kernels(op_shape, rng):
    """The threaded kernels of one ``OpShape`` (``minigrad.bench.OpShape``) on random float32
    inputs drawn from ``rng``: forward and backward of a pool or an LRN; im2col and col2im
    of a convolution with a window larger than 1x1, and the ReLU after it, forward and
    backward (on arrays laid out as the convolution hands out its output, batch last, as the
    ReLU fused into a convolution sees them)."""
    x = rng.standard_normal(op_shape.x_shape, dtype=numpy.float32)
    p, name = dict(op_shape.params), op_shape.name
    if op_shape.op == "conv2d":
        return _convolution_kernels(name, x, p, rng)
    forward, backward = {"max_pool2d": (pool.max_pool2d_forward, pool.max_pool2d_backward),
                         "avg_pool2d": (pool.avg_pool2d_forward, pool.avg_pool2d_backward),
                         "lrn": (lrn.lrn_forward, lrn.lrn_backward)}[op_shape.op]
    with kernels.use("numpy"):
        y, cache = forward(x, **p)
    gy = rng.standard_normal(y.shape, dtype=numpy.float32)
    return [(f"{name} fwd", lambda: forward(x, **p)[0]), (f"{name} bwd", lambda: backward(gy, cache)[0])]


def _convolution_kernels(name, x, p, rng):
    c_out, _, kh, kw = p["weight"]
    win = window(x.shape[2:], (kh, kw), p.get("stride", 1), p.get("padding", 0))
    numpy_set = kernels.get("numpy")
    y, gy = (rng.standard_normal((c_out,) + win.out + (x.shape[0],), dtype=numpy.float32).transpose(3, 0, 1, 2)
             for _ in range(2))
    relu_output = elementwise.relu_forward(y)[0]
    found = [(f"{name} relu fwd", lambda: elementwise.relu_forward(y)[0]),
             (f"{name} relu bwd", lambda: elementwise.relu_backward(gy, relu_output)[0])]
    if (kh, kw) != (1, 1):
        cols = numpy_set.im2col(x, win)
        found = [(f"{name} im2col", lambda: numpy_set.im2col(x, win)),
                 (f"{name} col2im", lambda: numpy_set.col2im(cols, x.shape, win))] + found
    return found


def concat_kernel(name, branch_shapes, rng):
    """(label, function): the channel concatenation of branches of these (N, C, H, W) shapes,
    each laid out batch last as a convolution hands it out (an Inception module's join)."""
    branches = [rng.standard_normal(s[1:] + s[:1], dtype=numpy.float32).transpose(3, 0, 1, 2)
                for s in branch_shapes]
    return f"{name} concat", lambda: shape_ops.concat_forward(*branches, axis=1)[0]


def copy_kernel(megabytes, rng):
    """(label, function): a copy of a float32 array of ``megabytes``, far larger than the
    caches, split over the threads in blocks (the memory roof of ``copy_bandwidth_gbs``,
    at each thread count)."""
    source = rng.standard_normal(megabytes * 2**20 // 4, dtype=numpy.float32)
    target = numpy.empty_like(source)

    def copy():
        parallel.for_chunks_of("copy", numpy.copyto, target, source)
        return target
    return f"copy {megabytes} MB", copy


def thread_scaling(kernel_list, counts, repeats=5):
    """{label: {count: median seconds}} of each kernel at each thread count, on the numpy
    kernel set, after a warm-up at each; an AssertionError when a count's result differs
    from the first count's."""
    times = {}
    for label, function in kernel_list:
        first = None
        for count in counts:                         # warm-up, and the results compared
            with parallel.threads(count), kernels.use("numpy"):
                result = function()
            if first is None:
                first = numpy.array(result)          # a copy: a kernel may reuse its output
            elif not same_bits(result, first):
                raise AssertionError(f"{label}: {count} threads computed other bits than {counts[0]}")
        runs = {count: [] for count in counts}
        for _ in range(repeats):
            for count in counts:
                with parallel.threads(count), kernels.use("numpy"):
                    runs[count].append(host_timed(function)[0])
        times[label] = {count: statistics.median(seconds) for count, seconds in runs.items()}
    return times


def same_bits(a, b):
    """Whether two arrays have the same shape, dtype and bits, NaN for NaN: 0.0 differs from
    -0.0, but any NaN equals any NaN. A NaN's sign and payload say nothing, and NumPy's own
    loops do not keep them: (+NaN) + (-NaN) is +NaN or -NaN depending on where in an array
    the pair lies (its vector loop and its scalar loop for the last few elements differ)."""
    a, b = numpy.asarray(a), numpy.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        nan_a, nan_b = numpy.isnan(a), numpy.isnan(b)
        if not numpy.array_equal(nan_a, nan_b):
            return False
        a, b = numpy.where(nan_a, 0, a), numpy.where(nan_b, 0, b)
    return numpy.array_equal(numpy.ascontiguousarray(a).view(numpy.uint8),
                             numpy.ascontiguousarray(b).view(numpy.uint8))


def counts_up_to(cores):
    """1, 2, 4, ... up to ``cores``, and ``cores`` itself: the thread counts of a scaling curve."""
    counts = [1]
    while counts[-1] * 2 < cores:
        counts.append(counts[-1] * 2)
    return counts + [cores] if cores > 1 else counts
