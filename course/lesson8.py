"""Lesson 8's exercises and helpers: counting an op's work and traffic, and the roofline.

The exercises are checked against ``minigrad.bench`` (the package's own counts):

* 8.1 ``conv_flops(x_shape, w_shape, stride, padding)``: a convolution's forward FLOPs,
  against ``bench.op_flops``;
* 8.2 ``arithmetic_intensity(shape)``: FLOPs per byte of an ``OpShape``, against
  ``bench.op_flops(shape) / bench.op_bytes(shape)``;
* 8.3 ``attainable_gflops(intensity, peak_gflops, bandwidth_gbs)``: the roofline,
  against ``bench.attainable_gflops``.

The helpers time what the benchmark does not (im2col alone), run an op's forward on each
kernel set, read GPU numbers recorded elsewhere, and draw the lesson's pictures on a
matplotlib Axes the caller makes (this module never imports matplotlib).

Recorded GPU numbers. A machine with a GPU records its op timings in a CSV file,
``benchmarks/gpu_ops.csv`` at the repository's root (``RECORDED_GPU``), one row per op:

    layer,batch,image_size,fwd_ms,device,kernels,peak_gflops,bandwidth_gbs
    conv1,8,224,0.41,NVIDIA H200,numpy,51000,3900

``layer`` names an op of the network's op list (``googlenet_op_shapes(batch,
image_size)``: that function is passed in, minigrad knows no network); ``fwd_ms`` is its
forward time in milliseconds. The other columns may be absent or empty: ``device`` and
``kernels`` label the points, ``peak_gflops`` and ``bandwidth_gbs`` (the GPU's own two
roofs, measured as ``bench.gemm_peak_gflops`` / ``bench.copy_bandwidth_gbs`` do on the
CPU) draw its roofline beside the CPU's.
"""
import csv
import math
import pathlib
from typing import List, NamedTuple, Optional

import numpy

from minigrad import bench, kernels
from minigrad.kernels import numpy as numpy_kernels
from minigrad.ops._sizes import window
from .check import forward_cases, registers

RECORDED_GPU = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_ops.csv"


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


CONV_CASES = {  # case name -> (x shape, W shape, stride, padding)
    "conv 3x3 p1, x (1, 16, 8, 8), W (32, 16, 3, 3)": ((1, 16, 8, 8), (32, 16, 3, 3), 1, 1),
    "conv 7x7/2 p3, x (3, 3, 32, 32), W (8, 3, 7, 7)": ((3, 3, 32, 32), (8, 3, 7, 7), 2, 3),
    "conv 1x1, x (4, 64, 5, 5), W (16, 64, 1, 1)": ((4, 64, 5, 5), (16, 64, 1, 1), 1, 0),
}


@registers("8.1", "the FLOPs of a convolution",
           rule="2 * N * F * OH * OW * C * KH * KW, with OH = (H + 2P - KH) // S + 1.")
def check_conv_flops(conv_flops):
    cases = {case: dict(x_shape=x, w_shape=w, stride=s, padding=p) for case, (x, w, s, p) in CONV_CASES.items()}
    known = {}
    for case, (x, w, s, p) in CONV_CASES.items():
        out = bench.op_output_shape(conv(x, w, s, p))
        unpadded = bench.op_output_shape(conv(x, w, s, 0))
        known[case] = [(0.5, "you counted multiply-adds: each is two FLOPs, a multiply and an add."),
                       (1 / x[0], "the batch: every one of the N images is convolved."),
                       (x[2] * x[3] / (out[2] * out[3]), "the products are made once per OUTPUT position "
                                                         "(OH x OW), not per input pixel."),
                       (unpadded[2] * unpadded[3] / (out[2] * out[3]), "the padding widens the input: "
                                                                       "OH = (H + 2P - KH) // S + 1.")]
    return _scalar(forward_cases(conv_flops, lambda *a: bench.op_flops(conv(*a)), cases,
                                 output_names=("the FLOP count",), hints=_ratio_hint(known)))


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
    return bench.median_seconds(lambda: numpy_kernels.im2col(x, win), repeats)


def forward_on_each_set(shape, sets=("reference", "numpy"), seed=0):
    """{set name: the op's forward output}, every set given the same float32 inputs."""
    forward, _, _ = bench._pair_functions(shape, numpy.random.default_rng(seed))
    outputs = {}
    for name in sets:
        with kernels.use(name):
            outputs[name] = forward()[0]
    return outputs


# --- GPU numbers recorded elsewhere ----------------------------------------------------------
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
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}, line 1: no column {', '.join(missing)} (expected at least "
                             f"{','.join(REQUIRED_COLUMNS)})")
        for row in reader:
            where = f"{path}, line {reader.line_num}"
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
    if not points:
        raise ValueError(f"{path}: no rows")
    return Recorded(str(path), devices[0], points, roofs["peak_gflops"], roofs["bandwidth_gbs"])


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


KIND_COLORS = {"conv2d": "tab:blue", "max_pool2d": "tab:orange", "avg_pool2d": "tab:green", "lrn": "tab:red"}


def plot_op_times(rows, ax):
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


def _roof(ax, peak, bandwidth, x, style, label):
    ax.plot(x, bench.attainable_gflops(x, peak, bandwidth), style, color="black", lw=1,
            label=f"{label}: {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")


def plot_roofline(ax, rows, peak_gflops, bandwidth_gbs, recorded=None, label_ops=True):
    """The roofline: achieved GFLOP/s against FLOPs/byte, log-log, with the two roofs.

    ``rows``: ``bench.time_ops``'s (filled markers; a convolution's bare GEMM as a hollow
    marker at the same intensity); ``recorded``: a ``Recorded`` (crosses, and its roofs
    dashed when it has them)."""
    points = [(shape, t["fwd"]) for shape, t in rows] + (recorded.points if recorded else [])
    intensities = [bench.arithmetic_intensity(shape) for shape, _ in points]
    x = numpy.logspace(math.log10(min(intensities) / 2), math.log10(max(intensities) * 2), 200)
    _roof(ax, peak_gflops, bandwidth_gbs, x, "-", "CPU roofs")
    for op, color in KIND_COLORS.items():
        mine = [(shape, t) for shape, t in rows if shape.op == op]
        if not mine:
            continue
        ax.scatter([bench.arithmetic_intensity(s) for s, _ in mine], [achieved_gflops(s, t["fwd"]) for s, t in mine],
                   color=color, s=22, label=f"CPU {op}", zorder=3)
        if label_ops:
            for s, t in mine:
                ax.annotate(s.name, (bench.arithmetic_intensity(s), achieved_gflops(s, t["fwd"])),
                            fontsize=6, xytext=(3, 2), textcoords="offset points")
    gemms = [(s, t) for s, t in rows if "gemm fwd" in t]
    if gemms:
        ax.scatter([bench.arithmetic_intensity(s) for s, _ in gemms],
                   [achieved_gflops(s, t["gemm fwd"]) for s, t in gemms],
                   facecolors="none", edgecolors="tab:blue", s=22, label="CPU conv: its GEMM alone", zorder=3)
    if recorded:
        ax.scatter([bench.arithmetic_intensity(s) for s, _ in recorded.points],
                   [achieved_gflops(s, seconds) for s, seconds in recorded.points],
                   marker="x", color="tab:purple", s=26, label=f"recorded: {recorded.device}", zorder=3)
        if label_ops:
            for s, seconds in recorded.points:
                ax.annotate(s.name, (bench.arithmetic_intensity(s), achieved_gflops(s, seconds)), fontsize=6,
                            color="tab:purple", xytext=(3, 2), textcoords="offset points")
        if recorded.peak_gflops and recorded.bandwidth_gbs:
            _roof(ax, recorded.peak_gflops, recorded.bandwidth_gbs, x, "--", f"{recorded.device} roofs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_bandwidths(ax, names, gbs, bandwidth_gbs):
    """Bars of the bandwidth each memory-bound op achieved, and the copy bandwidth as a line."""
    ax.barh(names, gbs, color="tab:orange")
    ax.axvline(bandwidth_gbs, color="black", lw=1, label=f"array copy: {bandwidth_gbs:.1f} GB/s")
    ax.invert_yaxis()
    ax.set_xlabel("bytes moved / time (GB/s)")
    ax.legend(fontsize=7, loc="lower right")


def plot_kernel_sets(ax, results):
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
