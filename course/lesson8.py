"""Lesson 8's exercises and helpers: what bounds an op's time (its launches, its work, its
traffic), and the roofline.

* 8.1 ``gpu_finish_time(durations, launch_overhead)``: when a GPU finishes a stream of
  kernels that the CPU launches one after another, against ``gpu_finish_time_reference``;
* 8.2 ``arithmetic_intensity(shape)``: FLOPs per byte of an ``OpShape``, against
  ``bench.op_flops(shape) / bench.op_bytes(shape)``;
* 8.3 ``attainable_gflops(intensity, peak_gflops, bandwidth_gbs)``: the roofline,
  against ``bench.attainable_gflops``.

The helpers time what the benchmark does not (im2col alone), run an op's forward on each
kernel set and hold the results to the rounding their sums allow (``minigrad.tolerance``),
read the numbers recorded on a GPU (``benchmarks/``), and draw the lesson's pictures on a
matplotlib Axes the caller makes (this module never imports matplotlib).

Recorded GPU numbers (``benchmarks/``, its README names the machine). Lesson 8 reads three
kinds of file, each with a header line:

* ``benchmarks/gpu_ops.csv`` (``RECORDED_GPU``, ``load_recorded``), one row per op:

      layer,batch,image_size,fwd_ms,bwd_ms,device,kernels,peak_gflops,bandwidth_gbs
      conv1,8,224,0.326784,0.68912,cuda,cuda,47131.1,3788.89

  ``layer`` names an op of the network's op list (``googlenet_op_shapes(batch,
  image_size)``: that function is passed in, minigrad knows no network); ``fwd_ms`` is its
  forward time in milliseconds. The other columns may be absent or empty: ``device`` labels
  the points, ``peak_gflops`` and ``bandwidth_gbs`` (the GPU's own two roofs, measured as
  ``bench.gemm_peak_gflops`` / ``bench.copy_bandwidth_gbs`` do on the CPU) draw its roofline
  beside the CPU's.
* ``benchmarks/ops-batch8.csv`` and ``ops-batch32.csv`` (``load_comparison``): the same
  columns, every op in every configuration of ``python -m googlenet bench --compare
  --torch`` (a configuration is a ``device`` and a ``kernels`` value).
* ``benchmarks/training-step.csv`` (``load_training_steps``): ``batch, implementation,
  cpu_side_ms, gpu_ms`` of one whole training step.
"""
import csv
import math
import pathlib
from typing import List, NamedTuple, Optional

import numpy

from minigrad import bench, kernels, viz
from minigrad.bench import compare
from minigrad.kernels import vectorized
from minigrad.ops import conv as conv_ops, lrn as lrn_ops, pool as pool_ops
from minigrad.geometry import pair, window
from minigrad.tolerance import assert_sum_close
from .check import forward_cases, registers

ROOT = pathlib.Path(__file__).resolve().parents[1]                  # the repository
RECORDED_GPU = ROOT / "benchmarks" / "gpu_ops.csv"


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


# --- GPU numbers recorded elsewhere ----------------------------------------------------------
def _rows(path, required):
    """The rows of a CSV file as dicts, each with its line number under "line"; a ValueError
    naming the file for a missing column or no rows."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}, line 1: no column {', '.join(missing)} (expected at least "
                             f"{','.join(required)})")
        rows = [dict(row, line=reader.line_num) for row in reader]
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


class Recorded(NamedTuple):
    """The recorded benchmark of another machine (see the module docstring)."""
    path: str
    device: str                          # "GPU" when the file does not say
    points: List[tuple]                  # [(OpShape, forward seconds)]
    peak_gflops: Optional[float]         # its GEMM roof, when recorded
    bandwidth_gbs: Optional[float]       # its memory roof, when recorded


REQUIRED_COLUMNS = ("layer", "batch", "image_size", "fwd_ms")


def load_recorded(path, op_shapes):
    """The ``Recorded`` numbers of the CSV file at ``path``, None when there is no such file.

    ``op_shapes(batch, image_size) -> [OpShape]`` lists the network's ops (e.g.
    ``googlenet.bench.googlenet_op_shapes``); each row's ``layer`` must be one of them.
    A malformed file is a ValueError naming the file and the line.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    points, devices, roofs, lists = [], [], {"peak_gflops": None, "bandwidth_gbs": None}, {}
    for row in _rows(path, REQUIRED_COLUMNS):
        where = f"{path}, line {row['line']}"
        try:
            batch, size, fwd_ms = int(row["batch"]), int(row["image_size"]), float(row["fwd_ms"])
            for column in roofs:
                if row.get(column) and roofs[column] is None:
                    roofs[column] = float(row[column])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        if not fwd_ms > 0:
            raise ValueError(f"{where}: fwd_ms must be a positive time, got {row['fwd_ms']}")
        if (batch, size) not in lists:
            lists[batch, size] = {s.name: s for s in op_shapes(batch, size)}
        shape = lists[batch, size].get(row["layer"])
        if shape is None:
            raise ValueError(f"{where}: no op called {row['layer']!r} at batch {batch}, {size}x{size}")
        points.append((shape, fwd_ms / 1e3))
        devices.append(row.get("device") or "GPU")
    return Recorded(str(path), devices[0], points, roofs["peak_gflops"], roofs["bandwidth_gbs"])


COMPARISON_CSVS = [ROOT / "benchmarks" / f"ops-batch{batch}.csv" for batch in (8, 32)]
TRAINING_STEPS = ROOT / "benchmarks" / "training-step.csv"


class Comparison(NamedTuple):
    """Every op of a network timed in every configuration of one run (``load_comparison``)."""
    path: str
    batch: int
    image_size: int
    shapes: List                    # the OpShapes, in the file's order
    results: dict                   # {(device, kernels): {layer: {"fwd": s, "bwd": s}}}
    roofs: dict                     # {device: (GEMM peak GFLOP/s, bandwidth GB/s)}


def load_comparison(path, op_shapes):
    """The ``Comparison`` in the CSV file at ``path`` (``python -m googlenet bench --compare
    --torch --out DIR`` writes one: DIR/ops.csv), None when there is no such file.
    Every row must be at the same batch and image size, and every configuration must time
    the same ops; ``op_shapes(batch, image_size)`` lists the network's ops."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    rows = _rows(path, REQUIRED_COLUMNS + ("bwd_ms", "device", "kernels"))
    sizes = {(row["batch"], row["image_size"]) for row in rows}
    if len(sizes) != 1:
        raise ValueError(f"{path}: rows at {len(sizes)} batch and image sizes, expected one")
    try:
        batch, image_size = (int(v) for v in sizes.pop())
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    known = {s.name: s for s in op_shapes(batch, image_size)}
    results, roofs, order = {}, {}, []
    for row in rows:
        where = f"{path}, line {row['line']}"
        if row["layer"] not in known:
            raise ValueError(f"{where}: no op called {row['layer']!r} at batch {batch}, {image_size}x{image_size}")
        try:
            fwd, bwd = float(row["fwd_ms"]) / 1e3, float(row["bwd_ms"]) / 1e3
            if row.get("peak_gflops") and row.get("bandwidth_gbs"):
                roofs.setdefault(row["device"], (float(row["peak_gflops"]), float(row["bandwidth_gbs"])))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if not (fwd > 0 and bwd > 0):
            raise ValueError(f"{where}: fwd_ms and bwd_ms must be positive times")
        results.setdefault((row["device"], row["kernels"]), {})[row["layer"]] = {"fwd": fwd, "bwd": bwd}
        if row["layer"] not in order:
            order.append(row["layer"])
    for configuration, timings in results.items():
        if set(timings) != set(order):
            raise ValueError(f"{path}: {' '.join(configuration)} times {len(timings)} ops, the file {len(order)}")
    return Comparison(str(path), batch, image_size, [known[name] for name in order], results, roofs)


class TrainingStep(NamedTuple):
    """One whole training step: the time the CPU spends issuing it, and the GPU's time."""
    batch: int
    implementation: str
    cpu_side_ms: float
    gpu_ms: float


def load_training_steps(path):
    """[TrainingStep] of the CSV file at ``path`` (columns batch, implementation, cpu_side_ms,
    gpu_ms), None when there is no such file."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    steps = []
    for row in _rows(path, TrainingStep._fields):
        try:
            step = TrainingStep(int(row["batch"]), row["implementation"], float(row["cpu_side_ms"]),
                                float(row["gpu_ms"]))
        except ValueError as error:
            raise ValueError(f"{path}, line {row['line']}: {error}") from None
        if not (step.cpu_side_ms > 0 and step.gpu_ms > 0):
            raise ValueError(f"{path}, line {row['line']}: times must be positive")
        steps.append(step)
    return steps


def step_bound(step, margin=0.05):
    """"launch-bound" when the GPU's time is the CPU side's (within ``margin``): the GPU
    finished each kernel before the next was launched and waited for Python; else "GPU-bound"."""
    return "launch-bound" if step.gpu_ms <= (1 + margin) * step.cpu_side_ms else "GPU-bound"


# --- tables and pictures -------------------------------------------------------------------------
def achieved_gflops(shape, seconds):
    """The op's forward FLOPs over its measured time, in GFLOP/s."""
    return bench.op_flops(shape) / seconds / 1e9


def roofline_table(points, peak_gflops=None, bandwidth_gbs=None):
    """Lines of a table: each op's FLOPs, bytes, intensity and achieved GFLOP/s, and with the
    machine's roofs the attainable GFLOP/s and the roof that bounds it. ``points``:
    [(OpShape, forward seconds)]."""
    roofs = peak_gflops is not None and bandwidth_gbs is not None
    lines = [f"{'layer':<14} {'op':<16} {'MFLOP':>9} {'MB':>7} {'FLOP/B':>7} {'GFLOP/s':>8}"
             + (f" {'roof':>8}  bound by" if roofs else "")]
    for shape, seconds in points:
        intensity = bench.arithmetic_intensity(shape)
        line = (f"{shape.name:<14} {bench.describe(shape):<16} {bench.op_flops(shape) / 1e6:>9.2f} "
                f"{bench.op_bytes(shape) / 1e6:>7.2f} {intensity:>7.2f} {achieved_gflops(shape, seconds):>8.2f}")
        if roofs:
            roof = float(bench.attainable_gflops(intensity, peak_gflops, bandwidth_gbs))
            line += f" {roof:>8.1f}  " + ("memory" if roof < peak_gflops else "compute")
        lines.append(line)
    return lines


def recorded_report(recorded, rows):
    """Lines about recorded numbers: their roofline table (with their roofs when recorded),
    then each op measured on both sides, GFLOP/s there and here. ``rows``: ``bench.time_ops``'s."""
    lines = [f"recorded on {recorded.device} ({recorded.path}):"]
    if recorded.peak_gflops and recorded.bandwidth_gbs:
        lines.append(f"its roofs: GEMM peak {recorded.peak_gflops:.0f} GFLOP/s, "
                     f"bandwidth {recorded.bandwidth_gbs:.0f} GB/s")
    lines += roofline_table(recorded.points, recorded.peak_gflops, recorded.bandwidth_gbs)
    here = {shape.name: achieved_gflops(shape, t["fwd"]) for shape, t in rows}
    both = [(shape.name, achieved_gflops(shape, seconds)) for shape, seconds in recorded.points
            if shape.name in here]
    if both:
        lines.append(f"{'layer':<14} {recorded.device + ' GFLOP/s':>20} {'CPU GFLOP/s':>12} {'ratio':>8}")
        lines += [f"{name:<14} {there:>20.1f} {here[name]:>12.1f} {there / here[name]:>7.1f}x"
                  for name, there in both]
    else:
        lines.append("no op was measured on both sides")
    return lines


def comparison_table(comparison, names, here=None):
    """Lines of a table: forward + backward ms of the ops ``names`` in each configuration of
    ``comparison``, with ``here`` (``bench.time_ops`` rows of the same ops at the same batch
    and image size) as a first column "this CPU"; then every kind of op summed over all the
    comparison's ops."""
    configurations = list(comparison.results)
    here = {shape.name: t for shape, t in here or []}
    columns = (["this CPU"] if here else []) + [compare.label(c) for c in configurations]
    lines = [f"{'ms, fwd + bwd':<16}" + "".join(f"{column:>12}" for column in columns)]
    for name in names:
        times = ([here[name]["fwd"] + here[name]["bwd"]] if here else []) + \
            [comparison.results[c][name]["fwd"] + comparison.results[c][name]["bwd"] for c in configurations]
        lines.append(f"{name:<16}" + "".join(f"{t * 1e3:>12.3f}" for t in times))
    lines.append(f"every op of the network ({len(comparison.shapes)}), summed by kind:")
    for kind, seconds in compare.kind_totals(comparison.shapes, comparison.results).items():
        lines.append(f"{kind:<16}" + ("" if not here else f"{'':>12}")
                     + "".join(f"{seconds[c] * 1e3:>12.2f}" for c in configurations))
    return lines


KIND_COLORS = {"conv2d": "tab:blue", "max_pool2d": "tab:orange", "avg_pool2d": "tab:green", "lrn": "tab:red"}


def plot_op_times(rows, ax, title=None):
    """Horizontal bars of each op's forward time; a convolution's bar split into its bare
    GEMM and the rest (im2col, the bias, the reshapes). ``rows``: ``bench.time_ops``'s."""
    names = [shape.name for shape, _ in rows]
    fwd = numpy.array([t["fwd"] for _, t in rows]) * 1e3
    gemm = numpy.array([min(t.get("gemm fwd", 0.0), t["fwd"]) for _, t in rows]) * 1e3
    colors = [KIND_COLORS[shape.op] for shape, _ in rows]
    ax.barh(names, gemm, color="tab:blue", label="conv: its GEMM")
    ax.barh(names, fwd - gemm, left=gemm, color=colors, alpha=0.45, label="the rest (im2col, pooling, LRN)")
    ax.invert_yaxis()
    ax.set_xlabel("forward time (ms)")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)


def _roof(ax, peak, bandwidth, x, style, label):
    ax.plot(x, bench.attainable_gflops(x, peak, bandwidth), style, color="black", lw=1,
            label=f"{label}: {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")


def _point(shape, seconds):
    return bench.arithmetic_intensity(shape), achieved_gflops(shape, seconds)


def plot_roofline(ax, rows, peak_gflops, bandwidth_gbs, recorded=None, label_ops=True, title=None):
    """The roofline: achieved GFLOP/s against FLOPs/byte, log-log, with the two roofs.

    ``rows``: ``bench.time_ops``'s (filled markers; a convolution's bare GEMM as a hollow
    marker at the same intensity); ``recorded``: a ``Recorded`` (crosses, and its roofs
    dashed when it has them). With ``label_ops`` each CPU point is named, then each recorded
    point of an op the CPU measured too, where a label finds room (``viz.place_labels``); the
    figure's layout is made final first (``tight_layout``)."""
    points = [(shape, t["fwd"]) for shape, t in rows] + (recorded.points if recorded else [])
    intensities = [bench.arithmetic_intensity(shape) for shape, _ in points]
    x = numpy.logspace(math.log10(min(intensities) / 2), math.log10(max(intensities) * 2), 200)
    _roof(ax, peak_gflops, bandwidth_gbs, x, "-", "CPU roofs")
    for op, color in KIND_COLORS.items():
        mine = [(shape, t) for shape, t in rows if shape.op == op]
        if mine:
            ax.scatter(*zip(*[_point(s, t["fwd"]) for s, t in mine]), color=color, s=22, label=f"CPU {op}", zorder=3)
    gemms = [(s, t) for s, t in rows if "gemm fwd" in t]
    if gemms:
        ax.scatter(*zip(*[_point(s, t["gemm fwd"]) for s, t in gemms]),
                   facecolors="none", edgecolors="tab:blue", s=22, label="CPU conv: its GEMM alone", zorder=3)
    if recorded:
        ax.scatter(*zip(*[_point(s, seconds) for s, seconds in recorded.points]),
                   marker="x", color="tab:purple", s=26, label=f"recorded: {recorded.device}", zorder=3)
        if recorded.peak_gflops and recorded.bandwidth_gbs:
            _roof(ax, recorded.peak_gflops, recorded.bandwidth_gbs, x, "--", f"{recorded.device} roofs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=9)
    if label_ops:
        ax.figure.tight_layout()
        measured_here = {s.name for s, _ in rows}
        labelled = [(_point(s, t["fwd"]), s.name, "black") for s, t in rows]
        labelled += [(_point(s, seconds), s.name, "tab:purple") for s, seconds in (recorded.points if recorded else [])
                     if s.name in measured_here]
        others = [_point(s, seconds) for s, seconds in points] + [_point(s, t["gemm fwd"]) for s, t in gemms]
        if labelled:
            where, names, colors = zip(*labelled)
            viz.place_labels(ax, where, names, fontsize=6, color=colors, avoid=others)


def plot_bandwidths(ax, names, gbs, bandwidth_gbs, title=None):
    """Bars of the bandwidth each memory-bound op achieved, and the copy bandwidth as a line."""
    ax.barh(names, gbs, color="tab:orange")
    ax.axvline(bandwidth_gbs, color="black", lw=1, label=f"array copy: {bandwidth_gbs:.1f} GB/s")
    ax.invert_yaxis()
    ax.set_xlabel("bytes moved / time (GB/s)")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)


def plot_training_steps(ax, steps, title=None):
    """Pairs of bars, one pair per implementation and batch: the CPU side of a training step
    and the GPU's time, each pair marked launch-bound or GPU-bound (``step_bound``)."""
    implementations = list(dict.fromkeys(step.implementation for step in steps))
    ordered = sorted(steps, key=lambda step: (implementations.index(step.implementation), step.batch))
    positions = numpy.arange(len(ordered))
    ax.bar(positions - 0.2, [step.cpu_side_ms for step in ordered], 0.4, color="tab:gray", label="CPU side")
    ax.bar(positions + 0.2, [step.gpu_ms for step in ordered], 0.4, color="tab:green", label="GPU time")
    for position, step in zip(positions, ordered):
        ax.annotate(step_bound(step), (position, max(step.cpu_side_ms, step.gpu_ms)), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(positions, [f"{step.implementation}\nbatch {step.batch}" for step in ordered], fontsize=8)
    ax.set_ylabel("ms per training step")
    ax.set_ylim(top=1.15 * max(max(step.cpu_side_ms, step.gpu_ms) for step in ordered))
    ax.legend(fontsize=7, loc="upper left")
    if title:
        ax.set_title(title, fontsize=9)


def plot_kernel_sets(ax, results, title=None):
    """Grouped bars (log scale) of forward and backward ms per op on each kernel set."""
    sets = list(results)
    names = [shape.name for shape, _ in results[sets[0]]]
    width = 0.8 / (2 * len(sets))
    for k, name in enumerate(sets):
        for p, (key, hatch) in enumerate((("fwd", ""), ("bwd", "//"))):
            offset = (2 * k + p) * width - 0.4 + width / 2
            ax.bar(numpy.arange(len(names)) + offset, [t[key] * 1e3 for _, t in results[name]], width,
                   hatch=hatch, color=f"C{k}", alpha=0.8, label=f"{name} {key}")
    ax.set_xticks(numpy.arange(len(names)))
    ax.set_xticklabels(names, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.legend(fontsize=6)
    if title:
        ax.set_title(title, fontsize=9)
