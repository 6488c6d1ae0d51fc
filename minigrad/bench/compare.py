"""Every kernel set side by side, op by op: the CPU, the GPU's two paths and PyTorch.

Each op of a network (its ``OpShape`` rows) is timed forward and backward in every
configuration that can run here, side by side in one run:

    cpu numpy      the numpy kernel set on the CPU
    cuda numpy     the same array code on CuPy arrays: the "generic" GPU path
    cuda cuda      the hand-written CUDA kernels (minigrad/kernels/cuda/)
    cpu torch      PyTorch at the same shapes (when asked for and installed)
    cuda torch     PyTorch with cuDNN on the GPU, TF32 off (float32 throughout)

Times are medians after a warm-up; on a GPU each call is timed with CUDA events
(``timing.timed``), never a host clock around an asynchronous launch. A configuration
that cannot run (no GPU, no PyTorch) is left out with the reason (``configurations``).
``write_files`` writes the table as ``ops.csv`` (the columns lesson 8 reads: layer, batch,
image_size, fwd_ms, bwd_ms, device, kernels, peak_gflops, bandwidth_gbs), draws it as
``ops.png`` (bars) and ``roofline.png`` (achieved GFLOP/s against FLOPs per byte, under
each device's measured GEMM peak and copy bandwidth). ``python -m googlenet bench
--compare`` runs it on GoogLeNet's ops.
"""
import csv
import os

import numpy

from .. import backend, kernels
from .op_times import KINDS, describe, time_op
from .roofline import arithmetic_intensity, op_flops
from .timing import medians_after_a_warm_up, torch_timed


def configurations(devices, with_torch):
    """([(device, kernel set or "torch")], [reason a configuration is missing, ...])."""
    chosen, missing = [], []
    gpu_reason = backend.gpu_unavailable_reason() if "cuda" in devices else None
    if gpu_reason:
        missing.append(f"no GPU columns: {gpu_reason}")
    if "cpu" in devices:
        chosen.append(("cpu", "numpy"))
    if "cuda" in devices and not gpu_reason:
        chosen += [("cuda", "numpy"), ("cuda", "cuda")]
    if with_torch:
        try:
            import torch
        except ImportError:
            missing.append("no PyTorch columns: PyTorch is not installed")
        else:
            chosen += [(device, "torch") for device in devices
                       if device == "cpu" or (not gpu_reason and torch.cuda.is_available())]
    return chosen, missing


def time_configuration(shapes, device, kernel_set, repeats):
    """{layer name: {"fwd": s, "bwd": s}} of one configuration."""
    if kernel_set == "torch":
        return {shape.name: time_torch_op(shape, device, repeats) for shape in shapes}
    with kernels.use(kernel_set):
        return {shape.name: time_op(shape, repeats, device) for shape in shapes}


def time_configurations(shapes, chosen, repeats):
    """{(device, kernel set): its ``time_configuration``} for each of ``chosen``."""
    return {configuration: time_configuration(shapes, *configuration, repeats) for configuration in chosen}


def time_torch_op(shape, device, repeats, seed=0):
    """Median seconds of PyTorch's forward and backward of the same op, float32, TF32 off."""
    import torch
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rng = numpy.random.default_rng(seed)
    tensor = lambda *dims: torch.tensor(rng.standard_normal(dims, dtype=numpy.float32), device=device,
                                        requires_grad=True)
    x, p, tF = tensor(*shape.x_shape), dict(shape.params), torch.nn.functional
    inputs = [x]
    if shape.op == "conv2d":
        weight = tensor(*p.pop("weight"))
        bias = tensor(weight.shape[0])
        inputs += [weight, bias]
        forward = lambda: tF.conv2d(x, weight, bias, **p)
    elif shape.op == "lrn":
        forward = lambda: tF.local_response_norm(x, p["size"], p["alpha"], p["beta"], p["k"])
    else:
        forward = lambda: getattr(tF, shape.op)(x, **p)
    gy = torch.ones_like(forward())

    def measure():
        t_fwd, y = torch_timed(forward, device)
        t_bwd, _ = torch_timed(lambda: torch.autograd.grad(y, inputs, gy), device)
        return {"fwd": t_fwd, "bwd": t_bwd}

    return medians_after_a_warm_up(measure, repeats)


def label(configuration):
    """A configuration's name in tables and legends: "cpu numpy", "cuda cuda", "cpu torch"."""
    return " ".join(configuration)


def format_table(shapes, results):
    """The table: fwd+bwd ms of every configuration, and each one's speed-up over the first."""
    names = list(results)
    header = f"{'layer':<16} {'op':<18}" + "".join(f" {label(c):>12}" for c in names) + \
        "".join(f" {'x ' + label(c):>14}" for c in names[1:])
    lines = [header + "   (fwd+bwd ms; x: speed-up over " + label(names[0]) + ")"]
    totals = {c: 0.0 for c in names}
    for shape in shapes:
        ms = {c: (results[c][shape.name]["fwd"] + results[c][shape.name]["bwd"]) * 1e3 for c in names}
        for c in names:
            totals[c] += ms[c]
        lines.append(f"{shape.name:<16} {describe(shape):<18}" + "".join(f" {ms[c]:>12.3f}" for c in names)
                     + "".join(f" {ms[names[0]] / ms[c]:>14.1f}" for c in names[1:]))
    lines.append(f"{'all ops':<16} {'':<18}" + "".join(f" {totals[c]:>12.1f}" for c in names)
                 + "".join(f" {totals[names[0]] / totals[c]:>14.1f}" for c in names[1:]))
    return "\n".join(lines)


def write_csv(path, shapes, results, batch, image_size, roofs):
    """One row per op and configuration; ``roofs``: {device: (peak GFLOP/s, bandwidth GB/s)}."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["layer", "batch", "image_size", "fwd_ms", "bwd_ms", "device", "kernels",
                         "peak_gflops", "bandwidth_gbs"])
        for (device, kernel_set), timings in results.items():
            peak, bandwidth = roofs.get(device, (None, None))
            for shape in shapes:
                t = timings[shape.name]
                writer.writerow([shape.name, batch, image_size, f"{t['fwd'] * 1e3:.6g}", f"{t['bwd'] * 1e3:.6g}",
                                 device, kernel_set, "" if peak is None else f"{peak:.6g}",
                                 "" if bandwidth is None else f"{bandwidth:.6g}"])


def kind_totals(shapes, results):
    """{kind of op: {configuration: forward + backward seconds summed over the ops of that kind}},
    kinds in the order of ``KINDS``, only those present."""
    present = [kind for kind in KINDS if any(s.op == kind for s in shapes)]
    return {KINDS[kind]: {c: sum(t[s.name]["fwd"] + t[s.name]["bwd"] for s in shapes if s.op == kind)
                          for c, t in results.items()} for kind in present}


def slowest(shapes, results, count=12):
    """The ``count`` ops whose forward + backward take longest in the first configuration."""
    first = results[next(iter(results))]
    return sorted(shapes, key=lambda s: first[s.name]["fwd"] + first[s.name]["bwd"], reverse=True)[:count]


def draw_kinds(ax, shapes, results):
    """Grouped bars: forward + backward ms of each kind of op, summed, per configuration (log)."""
    totals = kind_totals(shapes, results)
    width = 0.8 / len(results)
    for i, configuration in enumerate(results):
        ax.bar(numpy.arange(len(totals)) + (i + 0.5) * width - 0.4,
               [seconds[configuration] * 1e3 for seconds in totals.values()], width, label=label(configuration))
    counts = [sum(KINDS[s.op] == kind for s in shapes) for kind in totals]
    ax.set_xticks(numpy.arange(len(totals)), [f"{kind}\n({n} ops)" for kind, n in zip(totals, counts)], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("forward + backward, ms (all ops of a kind)")
    ax.set_title("each kind of op, summed")
    ax.legend(fontsize=7)


def draw_slowest(ax, shapes, results, count=12):
    """Horizontal grouped bars (log) of the ``count`` slowest ops of the first configuration."""
    chosen = slowest(shapes, results, count)
    height = 0.8 / len(results)
    for i, (configuration, timings) in enumerate(results.items()):
        ax.barh(numpy.arange(len(chosen)) + (i + 0.5) * height - 0.4,
                [(timings[s.name]["fwd"] + timings[s.name]["bwd"]) * 1e3 for s in chosen], height,
                label=label(configuration))
    ax.set_yticks(numpy.arange(len(chosen)), [f"{s.name} ({describe(s)})" for s in chosen], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("forward + backward, ms")
    ax.set_title(f"the {len(chosen)} slowest ops on {label(next(iter(results)))}")


def plot(path, shapes, results, title=None):
    """Two panels: every kind of op summed, and the slowest ops one by one; each bar one
    configuration, forward + backward ms, log scale."""
    from ..viz import load_pyplot
    plt = load_pyplot()
    fig, (kinds, ops) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw=dict(width_ratios=(1, 1.3)))
    draw_kinds(kinds, shapes, results)
    draw_slowest(ops, shapes, results)
    fig.suptitle(title or f"{len(shapes)} ops, forward + backward, per configuration")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_roofline(path, shapes, results, roofs, title=None):
    """Achieved forward GFLOP/s against arithmetic intensity (log-log), one marker per
    configuration, each device's two roofs (its measured GEMM peak and copy bandwidth)."""
    from ..viz import load_pyplot
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    intensity = numpy.array([arithmetic_intensity(s) for s in shapes])
    x = numpy.logspace(numpy.log10(intensity.min() / 2), numpy.log10(intensity.max() * 2), 100)
    for (device, (peak, bandwidth)), style in zip(roofs.items(), ("-", "--", ":", "-.")):
        ax.plot(x, numpy.minimum(peak, x * bandwidth), style, color="black", linewidth=1,
                label=f"{device} roofs: {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")
    for configuration, timings in results.items():
        achieved = [op_flops(s) / timings[s.name]["fwd"] / 1e9 for s in shapes]
        ax.scatter(intensity, achieved, s=14, label=label(configuration))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity, FLOPs per byte")
    ax.set_ylabel("achieved GFLOP/s (forward)")
    ax.set_title(title or f"roofline: {len(shapes)} ops, each configuration a colour")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_files(folder, shapes, results, batch, image_size, roofs):
    """``folder``/ops.csv, ops.png and roofline.png of a comparison (the folder is made when
    missing); ``roofs``: {device: (peak GFLOP/s, bandwidth GB/s)}. Returns the three paths."""
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, name) for name in ("ops.csv", "ops.png", "roofline.png")]
    write_csv(paths[0], shapes, results, batch, image_size, roofs)
    plot(paths[1], shapes, results)
    plot_roofline(paths[2], shapes, results, roofs)
    return paths
