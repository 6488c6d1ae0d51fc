"""Lesson 8's tables and pictures: measured times as GFLOP/s, the roofline, bandwidths, the
kernel sets side by side, the recorded GPU numbers; each drawn on a matplotlib Axes the caller
makes (this module never imports matplotlib)."""
import math

import numpy

from minigrad import bench, viz
from minigrad.bench import compare
from .lesson8_recorded import step_bound



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


def scaling_table(times):
    """Lines of a table: each kernel's milliseconds at each thread count and its speed-up over
    the first count. ``times``: ``bench.thread_scaling``'s {label: {count: seconds}}."""
    counts = list(next(iter(times.values())))
    lines = [f"{'kernel':<22}" + "".join(f"{f'{c} thr ms':>10}" for c in counts)
             + "".join(f"{f'x{c}':>7}" for c in counts[1:])]
    for label, t in times.items():
        lines.append(f"{label:<22}" + "".join(f"{t[c] * 1e3:>10.2f}" for c in counts)
                     + "".join(f"{t[counts[0]] / t[c]:>7.2f}" for c in counts[1:]))
    return lines


def plot_thread_scaling(ax, times, title=None):
    """Each kernel's speed-up over one thread against the thread count, and the ideal (n threads,
    n times faster) dashed. ``times``: ``bench.thread_scaling``'s {label: {count: seconds}}."""
    counts = list(next(iter(times.values())))
    ax.plot(counts, counts, color="gray", linestyle="--", linewidth=1, label="ideal: n threads, n times faster")
    for label, t in times.items():
        ax.plot(counts, [t[counts[0]] / t[c] for c in counts], marker="o", label=label)
    ax.set_xticks(counts)
    ax.set_xlabel("threads")
    ax.set_ylabel(f"speed-up over {counts[0]} thread{'s' if counts[0] > 1 else ''}")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
