"""``python -m googlenet bench --model``: the whole GoogLeNet timed, beside PyTorch.

    python -m googlenet bench --model                       # CPU: 8x224, 32x224 and 64x32
    python -m googlenet bench --model 8x224 --repeats 1     # one batch size (BATCHxSIZE)
    python -m googlenet bench --model --device cuda --out DIR   # GPU: 8x224, 32x224, 128x224

The work: a full-width GoogLeNet for the paper's 1000 classes with both auxiliary heads
(``--width`` narrows it), float32, random images; a forward pass in eval mode, and a
training step: forward in training mode, the paper's loss (main + 0.3 x each auxiliary
head), backward, SGD with momentum 0.9 and weight decay 2e-4 on the weights, as
``python -m googlenet train`` runs it. PyTorch's side, when it is installed, is the same
network converted layer by layer with the same starting weights
(``benchmarks/torch_googlenet.py``), the same inputs, PyTorch's SGD with the same
settings; minigrad and PyTorch are timed alternately, step by step, in one run: on the CPU
each in a process of its own, so that neither runs while the other's idle threads still
spin (``minigrad.bench.step_times``), on a GPU both in this process.

For each batch size it prints, for each side:

    forward and training step: milliseconds and images per second (medians after a
        warm-up; on a GPU the CPU side and the GPU time, ``minigrad.bench.step_times``)
    effective GFLOP/s: the model's multiply-adds x 2 per image over the time (the forward
        counts the main path, 1,582.7 M multiply-adds per 224x224 image; a training step
        counts three times the forward with the auxiliary heads: the backward computes
        a gradient for the inputs and one for the weights, each as costly as the forward),
        and its share of the GEMM peak measured at the start of the same run
    peak memory: on the CPU the peak RSS of a fresh process that builds the work and runs
        two steps, and what the steps added; on a GPU the memory pool's high-water mark
        over one step (``minigrad.bench.memory``)

then where minigrad's step goes by kind of work (GEMM, im2col/col2im, pooling, LRN, ...;
``minigrad.bench.profile``), with the profiled step beside the measured one, and the
machine: CPU, cores, AVX-512, NumPy and BLAS versions, threads, TF32 and the load average.
``--out DIR`` writes it all to DIR/model.csv, DIR/model-breakdown.csv and DIR/model.json.
"""
import csv
import importlib.util
import json
import os
import pathlib
import sys

import numpy

from minigrad import backend, kernels
from minigrad.autograd import Tensor, no_grad
from minigrad.bench import machine, memory, profile, roofline, without_avx512
from minigrad.bench.step_times import SETTLE_SECONDS, time_alternately, time_in_own_processes
from minigrad.host_memory import freed_memory_kept
from minigrad.optim import SGD

from .errors import UserError
from .model import GoogLeNet, googlenet_loss

DEFAULT_SIZES = {"cpu": [(8, 224), (32, 224), (64, 32)], "cuda": [(8, 224), (32, 224), (128, 224)]}
QUICK_SIZES = [(1, 224)]
CLASSES = 1000
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 2e-4          # googlenet.train's defaults
MEMORY_STEPS = 2            # the first step also makes the optimizer's state; the second is steady
GEMM_PEAK_SIZE = {"cpu": 2048, "cuda": 8192}          # big enough to reach each device's peak
BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


# --- the two sides ---------------------------------------------------------------------------
class MinigradWork:
    """GoogLeNet on minigrad with its optimizer and a batch of random inputs: ``forward()``
    (eval mode, no graph) and ``training_step()``."""

    def __init__(self, batch, image_size, width=1.0, device="cpu", kernel_set=None, seed=0):
        self.device = backend.parse_device(device)
        self.kernel_set = kernel_set or kernels.DEFAULT_FOR_DEVICE[self.device.split(":")[0]]
        self.model = GoogLeNet(num_classes=CLASSES, width=width, input_size=image_size, seed=seed).to(self.device)
        self.model.flatten_parameters()            # as the Trainer runs it: one update over flat buffers
        self.optimizer = SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        rng = numpy.random.default_rng(seed)
        self.images = rng.standard_normal((batch, 3, image_size, image_size), dtype=numpy.float32)
        self.labels = rng.integers(0, CLASSES, batch)
        self.inputs = Tensor(self.images, device=self.device)

    def forward(self):
        with kernels.use(self.kernel_set), no_grad():
            self.model.eval()(self.inputs)

    def training_step(self):
        with kernels.use(self.kernel_set):
            loss = googlenet_loss(self.model.train()(self.inputs), self.labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()


class TorchWork:
    """The same network, weights, inputs and optimizer settings in PyTorch (float32; on a GPU
    with TF32 off and cuDNN's algorithm search on)."""

    def __init__(self, ours):
        import torch
        self.torch = torch
        twin_module = benchmarks_module("torch_googlenet")
        device = "cpu" if ours.device == "cpu" else ours.device
        if device != "cpu":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            torch.backends.cudnn.benchmark = True
        self.net = twin_module.torch_googlenet(ours.model).to(device)
        weights, biases = twin_module.weights_and_biases(self.net)
        self.optimizer = torch.optim.SGD([dict(params=weights, weight_decay=WEIGHT_DECAY),
                                          dict(params=biases, weight_decay=0.0)], lr=LR, momentum=MOMENTUM)
        self.images = torch.tensor(ours.images, device=device)
        self.labels = torch.tensor(ours.labels, device=device)

    def forward(self):
        with self.torch.no_grad():
            self.net.eval()(self.images)

    def training_step(self):
        cross_entropy = self.torch.nn.functional.cross_entropy
        logits, aux1, aux2 = self.net.train()(self.images)
        loss = cross_entropy(logits, self.labels) + 0.3 * (cross_entropy(aux1, self.labels)
                                                           + cross_entropy(aux2, self.labels))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def benchmarks_module(name):
    """``benchmarks/<name>.py`` of this repository, imported (PyTorch's side of the
    comparisons lives there, outside the package, which never needs PyTorch)."""
    key = f"benchmarks.{name}"
    if key not in sys.modules:
        path = BENCHMARKS / f"{name}.py"
        if not path.exists():
            raise UserError(f"PyTorch's side of this benchmark is {path}, which is missing: it comes "
                            f"with the repository, not with an installed package")
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]


def torch_missing_reason():
    """None when PyTorch imports, else why its columns are missing."""
    try:
        import torch  # noqa: F401  (only asking whether it is installed)
    except ImportError:
        return "no PyTorch columns: PyTorch is not installed"
    return None


# The builders a child process calls by name (module level): the timing children
# (``step_times.time_in_own_processes``) and the memory children (``memory.peak_rss_in_child``).
def minigrad_work(batch, image_size, width, device, kernel_set, seed=0):
    return MinigradWork(batch, image_size, width, device, kernel_set, seed)


def torch_work(batch, image_size, width, device, kernel_set, seed=0):
    """PyTorch's side of the same work: the minigrad model it converts is dropped once converted."""
    return TorchWork(MinigradWork(batch, image_size, width, device, kernel_set, seed))


def minigrad_training_step(**keywords):
    return minigrad_work(**keywords).training_step


def torch_training_step(**keywords):
    return torch_work(**keywords).training_step


WORK_BUILDERS = {"minigrad": f"{__name__}:minigrad_work", "pytorch": f"{__name__}:torch_work"}
STEP_BUILDERS = {"minigrad": f"{__name__}:minigrad_training_step", "pytorch": f"{__name__}:torch_training_step"}


# --- multiply-adds ----------------------------------------------------------------------------
def multiply_adds(model):
    """(forward, training step) multiply-adds per image: the main path; three times the
    main path and both auxiliary heads (backward = 2 x forward, module docstring)."""
    forward = model.multiply_adds(model.input_shape)
    shape, outputs = model.input_shape, {}
    for name in model.layer_names:
        shape = getattr(model, name).output_shape(shape)
        outputs[name] = shape
    heads = sum(getattr(model, head).multiply_adds(outputs[tap]) for head, tap in model.aux_taps().items())
    return forward, 3 * (forward + heads)


# --- one batch size --------------------------------------------------------------------------
def measure(batch, image_size, args, gemm_peak, with_torch):
    """Everything measured at one batch size: {"batch", "image_size", "sides": {name: figures},
    "measured_step", "breakdown", "calls", "profiled_step"}."""
    xp = backend.array_module_for(args.device)
    sides = ["minigrad", "pytorch"] if with_torch else ["minigrad"]
    keywords = dict(batch=batch, image_size=image_size, width=args.width, device=args.device,
                    kernel_set=args.kernels)
    if args.device == "cpu":            # each side in a process of its own (step_times' docstring)
        times = time_in_own_processes({name: WORK_BUILDERS[name] for name in sides}, keywords,
                                      ("forward", "training_step"), args.repeats, blas_thread_count=args.blas_threads)
        forward_times, step_times = times["forward"], times["training_step"]
        memory_used = cpu_memory_figures(sides, keywords, args.blas_threads)
        ours = minigrad_work(**keywords)                  # for the profile and the multiply-adds
        ours.training_step()            # the profile's warm-up: the optimizer's state, fresh memory
    else:                               # a GPU's own clock: both in this process, alternately
        ours = minigrad_work(**keywords)
        forwards, steps = {"minigrad": ours.forward}, {"minigrad": ours.training_step}
        # Any other way to run minigrad's step (a captured CUDA graph replayed, say) is one
        # more entry of ``steps``: time_alternately times every callable step alike.
        if with_torch:
            theirs = TorchWork(ours)
            forwards["pytorch"], steps["pytorch"] = theirs.forward, theirs.training_step
        forward_times = time_alternately(forwards, args.repeats, xp)
        step_times = time_alternately(steps, args.repeats, xp)
        memory_used = gpu_memory_figures(steps, xp)
    work = multiply_adds(ours.model)
    results = {name: dict(side_figures(forward_times.get(name), step_times[name], batch, work, gemm_peak),
                          **memory_used[name]) for name in sides}
    if args.device != "cpu":             # TF32 matters on a GPU only; PyTorch's is turned off
        for name in results:
            results[name]["tf32"] = backend.tf32_allowed() if name != "pytorch" else False
    hooks = [(ours.optimizer, "step", "optimizer"), (ours.optimizer, "zero_grad", "optimizer")]
    with profile.OpProfile(xp, hooks) as profiled:
        for _ in range(args.repeats):
            profiled.run(ours.training_step)
    return dict(batch=batch, image_size=image_size, sides=results, measured_step=step_times["minigrad"].seconds,
                breakdown=profiled.breakdown(), calls=profiled.calls(), profiled_step=profiled.step_seconds)


def side_figures(forward, step, batch, work, gemm_peak):
    """One side's times, rates and effective GFLOP/s (``work``: multiply-adds per image of
    the forward and of the training step); the forward's figures None without a forward."""
    forward_macs, step_macs = work
    step_gflops = 2 * step_macs * batch / step.seconds / 1e9
    figures = dict(forward_ms=None, forward_images_s=None, forward_gflops=None,
                   step_ms=step.cpu_side * 1e3, step_gpu_ms=None if step.gpu is None else step.gpu * 1e3,
                   step_images_s=batch / step.seconds, step_gflops=step_gflops,
                   step_percent_of_peak=100 * step_gflops / gemm_peak)
    if forward is not None:
        figures.update(forward_ms=forward.seconds * 1e3, forward_images_s=batch / forward.seconds,
                       forward_gflops=2 * forward_macs * batch / forward.seconds / 1e9)
    return figures


def cpu_memory_figures(sides, keywords, blas_thread_count):
    """{side: {"peak_mb", "step_mb", "memory"}}: the peak RSS of a fresh process per side that
    builds the work and runs ``MEMORY_STEPS`` training steps."""
    figures = {}
    for name in sides:
        peak = memory.peak_rss_in_child(STEP_BUILDERS[name], keywords, MEMORY_STEPS, blas_thread_count)
        figures[name] = dict(peak_mb=peak.peak / 2 ** 20, step_mb=peak.step_bytes / 2 ** 20,
                             memory=f"peak RSS of a fresh process, {MEMORY_STEPS} steps")
    return figures


def gpu_memory_figures(steps, xp):
    """{side: {"peak_mb", "step_mb", "memory"}} of minigrad's eager step and PyTorch's (of
    ``steps``): the GPU memory pools' high-water marks over one step."""
    figures = {"minigrad": dict(peak_mb=memory.gpu_pool_peak(steps["minigrad"], xp) / 2 ** 20,
                                step_mb=None, memory="CuPy pool high-water over one step")}
    if "pytorch" in steps:
        reserved, allocated = memory.torch_gpu_peak(steps["pytorch"])
        figures["pytorch"] = dict(peak_mb=reserved / 2 ** 20, step_mb=None,
                                  memory=f"max reserved over one step (max allocated {allocated / 2 ** 20:.0f} MB)")
    return figures


# --- the command ------------------------------------------------------------------------------
def run_model_benchmark(args):
    """Measure every batch size of ``args.model``, print the tables, write the files."""
    torch_reason = None if args.no_torch else torch_missing_reason()
    with_torch = not args.no_torch and torch_reason is None
    if torch_reason:
        print(torch_reason)
    found = machine.machine()
    device_kind = args.device.split(":")[0]
    gemm_peak = roofline.gemm_peak_gflops(size=GEMM_PEAK_SIZE[device_kind], device=args.device)
    header = header_lines(args, found, gemm_peak, with_torch)
    print("\n".join(header), flush=True)
    measured = []
    for batch, image_size in args.model:
        measured.append(measure(batch, image_size, args, gemm_peak, with_torch))
        print("\n" + format_measurement(measured[-1]), flush=True)
    finish = f"load average at the end: {format_load(machine.load_average())}"
    print("\n" + finish)
    if args.out:
        paths = write_files(args.out, measured, dict(machine=found, header=header + [finish],
                                                     gemm_peak_gflops=gemm_peak, args=describe_args(args)))
        print(f"wrote {', '.join(paths)}")


def header_lines(args, found, gemm_peak, with_torch):
    """The lines above the tables: what runs, on what, with how many threads."""
    sides = "minigrad and PyTorch alternately" if with_torch else "minigrad"
    if with_torch and args.device == "cpu":
        sides += f", each in a process of its own, resting {SETTLE_SECONDS:g} s before each call"
    threads = machine.threads()
    thread_text = (f"{threads['usable cores']} usable cores; BLAS {threads['BLAS threads']} threads; minigrad's "
                   f"kernels {threads['kernel threads']} threads; {threads['BLAS idle']}")
    if with_torch:
        import torch
        thread_text += (f"; PyTorch {torch.__version__}, {torch.get_num_threads()} intra-op threads, its CPU "
                        f"capability {torch.backends.cpu.get_cpu_capability()}")
    lines = [f"minigrad whole-model benchmark, GoogLeNet ({CLASSES} classes, width {args.width:g}, both auxiliary "
             f"heads, the paper's loss, SGD momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}), float32, device "
             f"{args.device}, kernels {args.kernels}; median of {args.repeats} after a warm-up, {sides}",
             f"machine: {machine.machine_line(found)}",
             f"threads: {thread_text}",
             *([f"instruction set: {without_avx512.words()}"] if without_avx512.held_here() else []),
             f"freed memory kept for the next step (minigrad/host_memory.py, every library in this process): "
             f"{'yes' if freed_memory_kept() else 'no'}",
             f"load average at the start: {format_load(machine.load_average())}",
             f"GEMM peak: {gemm_peak:,.1f} GFLOP/s (float32 {GEMM_PEAK_SIZE[args.device.split(':')[0]]}-square "
             f"product, measured in this run)"]
    if args.device != "cpu":
        lines.append(f"minigrad: {machine.tf32_line()}; PyTorch: TF32 off, cudnn.benchmark on")
    return lines


def format_load(load):
    return "unknown" if load is None else " ".join(f"{value:.2f}" for value in load)


COLUMNS = [("forward_ms", "forward ms", "{:.1f}"), ("forward_images_s", "fwd img/s", "{:.1f}"),
           ("step_ms", "step ms", "{:.1f}"), ("step_gpu_ms", "GPU ms", "{:.1f}"),
           ("step_images_s", "step img/s", "{:.2f}"), ("forward_gflops", "fwd GFLOP/s", "{:.1f}"),
           ("step_gflops", "step GFLOP/s", "{:.1f}"), ("step_percent_of_peak", "% peak", "{:.1f}"),
           ("peak_mb", "peak MB", "{:.0f}"), ("step_mb", "+steps MB", "{:.0f}")]
SPEED_RATIOS = [("forward_images_s", "forward"), ("step_images_s", "training step")]


def format_measurement(m):
    """One batch size: the table of both sides, the ratios, and minigrad's breakdown."""
    lines = [f"batch {m['batch']}, {m['image_size']}x{m['image_size']}:",
             f"  {'':<10}" + "".join(f"{title:>13}" for _, title, _ in COLUMNS)]
    for name, figures in m["sides"].items():
        cells = ["-" if figures.get(key) is None else fmt.format(figures[key]) for key, _, fmt in COLUMNS]
        lines.append(f"  {name:<10}" + "".join(f"{cell:>13}" for cell in cells))
    if "pytorch" in m["sides"]:
        ours, theirs = m["sides"]["minigrad"], m["sides"]["pytorch"]
        speeds = ", ".join(f"{label} {ours[key] / theirs[key]:.2f}x" for key, label in SPEED_RATIOS)
        lines.append(f"  minigrad's images/s over PyTorch's: {speeds}; minigrad's peak memory over PyTorch's: "
                     f"{ours['peak_mb'] / theirs['peak_mb']:.2f}x")
    lines += [f"  memory: {name}: {figures['memory']}" for name, figures in m["sides"].items()]
    lines += format_breakdown(m)
    return "\n".join(lines)


def format_breakdown(m):
    """minigrad's step by kind of work (own time per step), and the profiled step beside the
    measured one."""
    total = m["profiled_step"]
    lines = ["  where minigrad's training step goes (own time of each kind, per profiled step):"]
    for kind, seconds in m["breakdown"].items():
        lines.append(f"    {kind:<15} {seconds * 1e3:10.2f} ms {100 * seconds / total:6.1f}%"
                     f"   {m['calls'][kind]:5.0f} timed regions")
    regions = sum(m["calls"].values()) - m["calls"][profile.OTHER]
    gap = total / m["measured_step"] - 1
    lines.append(f"    the kinds add up to the profiled step, {total * 1e3:.1f} ms; the step timed without "
                 f"the profile took {m['measured_step'] * 1e3:.1f} ms ({gap:+.1%}: {regions:.0f} timed regions "
                 f"with two clock readings each, and the machine's noise between the runs)")
    return lines


# --- files -------------------------------------------------------------------------------------
def describe_args(args):
    return dict(sizes=[list(size) for size in args.model], width=args.width, device=args.device,
                kernels=args.kernels, repeats=args.repeats)


def write_files(folder, measured, context):
    """DIR/model.csv (one row per batch size and side), DIR/model-breakdown.csv (one row per
    batch size and kind), DIR/model.json (all of it, with the machine); the folder is made
    when missing. Returns the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, name) for name in ("model.csv", "model-breakdown.csv", "model.json")]
    keys = [key for key, _, _ in COLUMNS] + ["memory", "tf32"]
    with open(paths[0], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["batch", "image_size", "side"] + keys)
        for m in measured:
            for name, figures in m["sides"].items():
                writer.writerow([m["batch"], m["image_size"], name] + [figures.get(key) for key in keys])
    with open(paths[1], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["batch", "image_size", "kind", "ms", "share", "timed_regions"])
        for m in measured:
            for kind, seconds in m["breakdown"].items():
                writer.writerow([m["batch"], m["image_size"], kind, f"{seconds * 1e3:.6g}",
                                 f"{seconds / m['profiled_step']:.4f}", f"{m['calls'][kind]:g}"])
    with open(paths[2], "w", encoding="utf-8") as handle:
        json.dump(dict(context, measured=measured), handle, indent=1)
    return paths
