"""Lesson 8's exercises and helpers: what bounds an op's time (its launches, its work, its
traffic), and the roofline.

* 8.1 ``gpu_finish_time(durations, launch_overhead)``: when a GPU finishes a stream of
  kernels that the CPU launches one after another, against ``gpu_finish_time_reference``;
* 8.2 ``arithmetic_intensity(shape)``: FLOPs per byte of an ``OpShape``, against
  ``bench.op_flops(shape) / bench.op_bytes(shape)``;
* 8.3 ``attainable_gflops(intensity, peak_gflops, bandwidth_gbs)``: the roofline,
  against ``bench.attainable_gflops``.

The helpers here time what the benchmark does not (im2col alone), and run an op's forward on
each kernel set and hold the results to the rounding their sums allow (``minigrad.tolerance``).
``course/lesson8_recorded.py`` reads the numbers recorded on a GPU (``benchmarks/``), and
``course/lesson8_pictures.py`` draws the lesson's tables and pictures.
"""
import math

import numpy

from minigrad import bench, kernels
from minigrad.kernels import vectorized
from minigrad.ops import conv as conv_ops, lrn as lrn_ops, pool as pool_ops
from minigrad.geometry import pair, window
from minigrad.tolerance import assert_sum_close
from .cases import forward_cases
from .check import registers


# --- the exercises ---------------------------------------------------------------------------
def conv(x_shape, w_shape, stride=1, padding=0, name="conv"):
    """The OpShape of a convolution."""
    return bench.OpShape(name, "conv2d", tuple(x_shape), dict(weight=tuple(w_shape), stride=stride,
                                                              padding=padding))


def _scalar(result):
    """A verdict on one number reads "the FLOP count is ...", not "the FLOP count[] is ..."."""
    status, message = result
    return status, message.replace("[] is ", " is ")


def _ratio_hint(known):
    """hints(case, name, got, expected): the hint of the first known mistake whose ratio
    got / expected matches, for the case at hand. ``known``: {case: [(ratio, text), ...]}."""
    def hints(case, name, got, expected):
        ratio = float(got) / float(expected) if got.size == 1 and float(expected) != 0 else math.nan
        for mistake_ratio, text in known.get(case, []):
            if math.isclose(ratio, mistake_ratio, rel_tol=1e-9):
                return "Hint: " + text
        return ""
    return hints


# --- 8.1 when the GPU finishes a stream of kernels -----------------------------------------------
def gpu_finish_time_reference(durations, launch_overhead):
    """When the GPU finishes the last of a stream of kernels, counted from the moment the CPU
    starts launching them. The CPU spends ``launch_overhead`` on each launch, so kernel k
    (from 0) is in the GPU's queue at (k + 1) * launch_overhead; the GPU runs the queue in
    order, one kernel at a time, each for its ``durations[k]``, starting it as soon as it is
    queued and the kernel before it has ended. Any unit of time, the same for both."""
    finish = 0.0
    for k, duration in enumerate(durations):
        finish = max(finish, (k + 1) * launch_overhead) + duration
    return finish


STREAM_CASES = {  # case name -> (kernel durations, launch overhead), in microseconds
    "kernels of [2, 2, 15, 2, 2] us, 10 us a launch": ([2.0, 2.0, 15.0, 2.0, 2.0], 10.0),
    "kernels of [30, 50, 40] us, 5 us a launch": ([30.0, 50.0, 40.0], 5.0),
    "kernels of [100, 1, 1, 1, 1, 1] us, 6 us a launch": ([100.0, 1.0, 1.0, 1.0, 1.0, 1.0], 6.0),
    "kernels of [1, 1, 1, 1, 80] us, 10 us a launch": ([1.0, 1.0, 1.0, 1.0, 80.0], 10.0),
}


def _stream_mistakes(durations, overhead):
    """[(the value a usual mistake gives, its hint)], the most telling first."""
    n, total = len(durations), float(sum(durations))
    starting_at_zero = 0.0
    for k, duration in enumerate(durations):
        starting_at_zero = max(starting_at_zero, k * overhead) + duration
    return [
        (n * overhead + total, "that is the time if the CPU waited for each kernel to end before "
                               "launching the next (a synchronization after every launch). A launch only "
                               "queues the kernel: the CPU goes on launching while the GPU works."),
        (sum(max(overhead, d) for d in durations), "kernels launched while a long one runs wait in the "
                                                   "queue and start as soon as it ends, not one launch "
                                                   "apart."),
        (starting_at_zero, "the first kernel is in the queue only once its launch is done: kernel k "
                           "(from 0) at (k + 1) x the launch overhead."),
        (n * overhead + durations[-1], "n launches, then the last kernel: true only when every kernel is "
                                       "shorter than a launch (launch-bound throughout)."),
        (overhead + total, "one launch, then every kernel back to back: true only when no kernel ever "
                           "waits for its launch (GPU-bound throughout)."),
        (max(n * overhead, total), "that is a lower bound: the GPU finishes neither before the CPU has "
                                   "launched every kernel (n x the overhead) nor before it has run them all "
                                   "(the sum of the durations), and later than both when it waits."),
        (float(n * overhead), "that is the CPU side (n launches); the GPU finishes later: the last "
                              "kernel still has to run."),
        (total, "that is the kernels' own time; the GPU cannot start a kernel before the CPU has "
                "launched it."),
    ]


@registers("8.1", "when the GPU finishes a stream of kernels",
           rule="go through the kernels in order; kernel k starts at max((k + 1) x overhead, the end of "
                "kernel k - 1) and ends its duration later; return the last end.")
def check_gpu_finish_time(gpu_finish_time):
    cases = {case: dict(durations=numpy.array(d), launch_overhead=o) for case, (d, o) in STREAM_CASES.items()}

    def hints(case, name, got, expected):
        durations, overhead = STREAM_CASES[case]
        if got.size == 1:
            for value, text in _stream_mistakes(durations, overhead):
                if math.isclose(float(got.reshape(())), value, rel_tol=1e-9):
                    return "Hint: " + text
        return ""

    return _scalar(forward_cases(gpu_finish_time, gpu_finish_time_reference, cases,
                                 output_names=("the finish time",), hints=hints))


INTENSITY_CASES = {
    "conv 3x3 p1, x (2, 96, 14, 14), W (128, 96, 3, 3)": conv((2, 96, 14, 14), (128, 96, 3, 3), 1, 1),
    "max pool 3x3/2 ceil, x (2, 64, 28, 28)": bench.OpShape(
        "pool", "max_pool2d", (2, 64, 28, 28), dict(kernel_size=3, stride=2, padding=0, ceil_mode=True)),
    "lrn size 5, x (2, 64, 14, 14)": bench.OpShape(
        "lrn", "lrn", (2, 64, 14, 14), dict(size=5, alpha=1e-4, beta=0.75, k=1.0)),
}


@registers("8.2", "the arithmetic intensity of an op",
           rule="FLOPs / (4 bytes x (the numbers of x + those of W, for a convolution, + those of y)).")
def check_intensity(arithmetic_intensity):
    cases = {case: {"shape": shape} for case, shape in INTENSITY_CASES.items()}
    known = {}
    for case, shape in INTENSITY_CASES.items():
        x, y = math.prod(shape.x_shape), math.prod(bench.op_output_shape(shape))
        w = math.prod(shape.params["weight"]) if shape.op == "conv2d" else 0
        known[case] = [(0.5, "8 bytes a number is float64; the benchmark runs in float32, 4 bytes."),
                       (4.0, "count bytes, not numbers: 4 bytes each in float32."),
                       ((x + w + y) / (x + w), "the output y is written to memory: its bytes count too."),
                       ((x + w + y) / (x + y), "a convolution also reads its weights W.")]
    reference = lambda shape: bench.op_flops(shape) / bench.op_bytes(shape)
    return _scalar(forward_cases(arithmetic_intensity, reference, cases, output_names=("the intensity",),
                                 hints=_ratio_hint(known)))


def _roofline_case(intensities, peak_gflops, bandwidth_gbs):
    """(case name, inputs) of one roofline case; the name is written from the data (read-only), so
    the two cannot disagree."""
    intensity = numpy.array(intensities, dtype=numpy.float64)
    intensity.flags.writeable = False
    name = (f"intensities [{', '.join(f'{i:g}' for i in intensity)}] FLOP/byte, peak {peak_gflops:g} "
            f"GFLOP/s, bandwidth {bandwidth_gbs:g} GB/s")
    return name, dict(intensity=intensity, peak_gflops=float(peak_gflops), bandwidth_gbs=float(bandwidth_gbs))


ROOFLINE_CASES = dict([_roofline_case([0.25, 1, 5, 64, 512], 100, 20),
                       _roofline_case([1.125, 10, 150], 50000, 4000)])


@registers("8.3", "which roof bounds an op",
           rule="min(peak, intensity x bandwidth), element by element (numpy.minimum).")
def check_roofline(attainable_gflops):
    def hints(case, name, got, expected):
        inputs = ROOFLINE_CASES[case]
        memory = inputs["intensity"] * inputs["bandwidth_gbs"]
        if got.shape != expected.shape:
            return ""
        if numpy.allclose(got, numpy.maximum(memory, inputs["peak_gflops"])):
            return "Hint: max picks the HIGHER roof; an op is held down by the LOWER one: min."
        if numpy.allclose(got, inputs["peak_gflops"]):
            return "Hint: the memory roof is missing: intensity x bandwidth GFLOP/s when that is lower."
        if numpy.allclose(got, memory):
            return "Hint: the compute roof is missing: no op runs faster than the peak."
        return ""
    return forward_cases(attainable_gflops, bench.attainable_gflops, ROOFLINE_CASES,
                         output_names=("the attainable GFLOP/s",), hints=hints)


# --- what the benchmark does not time ---------------------------------------------------------
def time_im2col(shape, repeats=3, seed=0):
    """Median seconds of the numpy kernel set's im2col for convolution ``shape`` (no FLOPs:
    only copies; its traffic is ``bench.im2col_bytes(shape)``)."""
    x = numpy.random.default_rng(seed).standard_normal(shape.x_shape, dtype=numpy.float32)
    _, _, kh, kw = shape.params["weight"]
    win = window(shape.x_shape[2:], (kh, kw), shape.params["stride"], shape.params["padding"])
    return bench.median_seconds(lambda: vectorized.im2col(x, win), repeats)


def op_inputs(shape, seed=0):
    """The op's float32 inputs, (x,) or (x, W, b) for a convolution, and its other parameters."""
    rng = numpy.random.default_rng(seed)
    params = dict(shape.params)
    inputs = [rng.standard_normal(shape.x_shape, dtype=numpy.float32)]
    if shape.op == "conv2d":
        weight = params.pop("weight")
        inputs += [rng.standard_normal(weight, dtype=numpy.float32),
                   rng.standard_normal(weight[0], dtype=numpy.float32)]
    return inputs, params


FORWARDS = {"conv2d": conv_ops.conv2d_forward, "max_pool2d": pool_ops.max_pool2d_forward,
            "avg_pool2d": pool_ops.avg_pool2d_forward, "lrn": lrn_ops.lrn_forward}


def forward_on_each_set(shape, sets=("reference", "numpy"), seed=0):
    """{set name: the op's forward output}, every set given the same float32 inputs."""
    inputs, params = op_inputs(shape, seed)
    outputs = {}
    for name in sets:
        with kernels.use(name):
            outputs[name] = FORWARDS[shape.op](*inputs, **params)[0]
    return outputs


EXACT = "exact"
# An LRN's terms go through pow, which is not one rounding: glibc's powf is within about 1 ulp
# (counted as 2 roundings), allowed 8 ulp here as in the tests (tests/float32_cases.py).
POW_ROUNDINGS = 16


def forward_bound(shape, seed=0):
    """How far two correct float32 forwards of the op may differ: EXACT for a max pool (a
    maximum rounds nothing), else (magnitude, terms) for ``minigrad.tolerance``: the op run on
    the inputs' absolute values in float64, and the most roundings any term goes through.

    conv2d      a sum of C*KH*KW products and the bias: conv(|x|, |W|) + |b|, C*KH*KW + 1;
    avg_pool2d  a sum of the window, then a division: avg_pool(|x|), KH*KW + 1;
    lrn         y = x * s^-beta with s = k + alpha/n * (a sum of n squares): relative to |y|,
                the n squares, the sum, alpha/n and its product, + k (n + 3), the power and
                the product with x: n + 3 + POW_ROUNDINGS + 1 (for 0 < beta <= 1).
    """
    if shape.op == "max_pool2d":
        return EXACT
    inputs, params = op_inputs(shape, seed)
    absolute = [numpy.abs(a.astype(numpy.float64)) for a in inputs]
    with kernels.use("reference"):
        if shape.op == "conv2d":
            _, channels, kh, kw = absolute[1].shape
            return conv_ops.conv2d_forward(*absolute, **params)[0], channels * kh * kw + 1
        if shape.op == "avg_pool2d":
            kh, kw = pair(params["kernel_size"])
            return pool_ops.avg_pool2d_forward(absolute[0], **params)[0], kh * kw + 1
        y, _ = lrn_ops.lrn_forward(inputs[0].astype(numpy.float64), **params)
    return numpy.abs(y), params["size"] + 3 + POW_ROUNDINGS + 1


def assert_sets_agree(shape, outputs, seed=0):
    """Every kernel set's output equal to the first's within ``forward_bound`` (exactly for a
    max pool); an AssertionError naming the op, the sets and the worst element otherwise."""
    bound = forward_bound(shape, seed)
    (first, expected), *others = outputs.items()
    for name, got in others:
        label = f"{shape.name}: {name} against {first}"
        if bound == EXACT:
            numpy.testing.assert_array_equal(got, expected, err_msg=label)
        else:
            assert_sum_close(got, expected, *bound, numpy.float32, name=label)
