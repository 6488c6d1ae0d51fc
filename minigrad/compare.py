"""CPU vs GPU, op by op: ``python -m googlenet bench --device cpu,cuda [--torch] [--out DIR]``.

Each op of a network (its ``OpShape`` rows) is timed forward and backward in every
configuration that can run here, side by side in one run:

    cpu numpy      the numpy kernel set on the CPU
    cuda numpy     the same array code on CuPy arrays: the "generic" GPU path
    cuda cuda      the hand-written CUDA kernels (minigrad/kernels/cuda/)
    torch cpu      PyTorch at the same shapes (with --torch, when installed)
    torch cuda     PyTorch with cuDNN on the GPU, TF32 off (float32 throughout)

Times are medians after a warm-up; on a GPU each call is timed with CUDA events
(``bench.time_op``), never a host clock around an asynchronous launch. A configuration
that cannot run (no GPU, no PyTorch) is left out with the reason printed. With
``--out DIR`` the table is also written as ``DIR/ops.csv`` (the columns lesson 8 reads:
layer, batch, image_size, fwd_ms, bwd_ms, device, kernels, peak_gflops, bandwidth_gbs),
drawn as ``DIR/ops.png`` (bars) and ``DIR/roofline.png`` (achieved GFLOP/s against FLOPs per
byte, under each device's measured GEMM peak and copy bandwidth).
"""
import csv
import os
import statistics

import numpy

from . import backend, bench, kernels


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
        return {shape.name: bench.time_op(shape, repeats, device) for shape in shapes}


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
        W = tensor(*p.pop("weight"))
        b = tensor(W.shape[0])
        inputs += [W, b]
        forward = lambda: tF.conv2d(x, W, b, **p)
    elif shape.op == "lrn":
        forward = lambda: tF.local_response_norm(x, p["size"], p["alpha"], p["beta"], p["k"])
    else:
        forward = lambda: getattr(tF, shape.op)(x, **p)
    gy = torch.ones_like(forward())
    times = {"fwd": [], "bwd": []}
    for run in range(repeats + 1):                      # run 0 is the warm-up
        t_fwd, y = _torch_timed(forward, device)
        t_bwd, _ = _torch_timed(lambda: torch.autograd.grad(y, inputs, gy), device)
        if run:
            times["fwd"].append(t_fwd)
            times["bwd"].append(t_bwd)
    return {key: statistics.median(values) for key, values in times.items()}


def _torch_timed(fn, device):
    import time

    import torch
    if device == "cpu":
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    result = fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3, result


def label(configuration):
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
        lines.append(f"{shape.name:<16} {bench.describe(shape):<18}" + "".join(f" {ms[c]:>12.3f}" for c in names)
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


KINDS = {"conv2d": "convolutions", "max_pool2d": "max pools", "avg_pool2d": "average pools", "lrn": "LRNs"}


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
    ax.set_yticks(numpy.arange(len(chosen)), [f"{s.name} ({bench.describe(s)})" for s in chosen], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("forward + backward, ms")
    ax.set_title(f"the {len(chosen)} slowest ops on {label(next(iter(results)))}")


def plot(path, shapes, results, title=None):
    """Two panels: every kind of op summed, and the slowest ops one by one; each bar one
    configuration, forward + backward ms, log scale."""
    from .viz import load_pyplot
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
    from .viz import load_pyplot
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    intensity = numpy.array([bench.arithmetic_intensity(s) for s in shapes])
    x = numpy.logspace(numpy.log10(intensity.min() / 2), numpy.log10(intensity.max() * 2), 100)
    for (device, (peak, bandwidth)), style in zip(roofs.items(), ("-", "--", ":", "-.")):
        ax.plot(x, numpy.minimum(peak, x * bandwidth), style, color="black", linewidth=1,
                label=f"{device} roofs: {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")
    for configuration, timings in results.items():
        achieved = [bench.op_flops(s) / timings[s.name]["fwd"] / 1e9 for s in shapes]
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


def run_compare(args, shapes, network, devices):
    """Time ``shapes`` in every configuration of ``devices``; print, and write --out files."""
    chosen, missing = configurations(devices, args.torch)
    for reason in missing:
        print(reason)
    print(f"minigrad CPU vs GPU, {network}: batch {args.batch}, {args.image_size}x{args.image_size}, "
          f"median of {args.repeats} after a warm-up, float32; configurations: "
          f"{', '.join(label(c) for c in chosen)}")
    results = {c: time_configuration(shapes, *c, args.repeats) for c in chosen}
    print(format_table(shapes, results))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        roofs = {d: (bench.gemm_peak_gflops(device=d), bench.copy_bandwidth_gbs(device=d))
                 for d in dict.fromkeys(device for device, _ in chosen)}
        write_csv(os.path.join(args.out, "ops.csv"), shapes, results, args.batch, args.image_size, roofs)
        plot(os.path.join(args.out, "ops.png"), shapes, results)
        plot_roofline(os.path.join(args.out, "roofline.png"), shapes, results, roofs)
        print(f"wrote {args.out}/ops.csv, ops.png and roofline.png")
    return 0
