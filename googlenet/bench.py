"""``python -m googlenet bench``: GoogLeNet timed, op by op and whole.

    python -m googlenet bench                          # batch 8, 224x224 input, on the CPU
    python -m googlenet bench --quick --only 3a        # a smoke run of module 3a's ops
    python -m googlenet bench --device cuda            # the GPU, hand-written kernels
    python -m googlenet bench --compare --torch --out DIR
        # every kernel set side by side (CPU, generic GPU, hand-written CUDA, PyTorch),
        # then the whole network; DIR/ops.csv, ops.png and roofline.png
    python -m googlenet bench --model [8x224 32x224 ...] [--device cuda] [--out DIR]
        # the whole network, forward and training step, beside PyTorch: images/s,
        # GFLOP/s against the GEMM peak, peak memory, where the step's time goes
        # (googlenet/bench_model.py)
    python -m googlenet bench --main-job [--device cuda]
        # the README's main job by minigrad and by PyTorch: accuracy and wall time
        # (googlenet/bench_main_job.py)

Without a mode, every convolution, pool and LRN of GoogLeNet is timed forward and
backward at its own layer shapes. What is measured and the targets: ``minigrad.bench``.
``googlenet_op_shapes`` lists the ops of Table 1 and the auxiliary heads; another network
benchmarks its own layers by listing its ``OpShape`` rows the same way. ``time_network``
times the whole network for the comparison: a forward pass, and a training step with the
paper's loss.
"""
import argparse
import os

import numpy

from minigrad import backend, bench, kernels
from minigrad.bench import OpShape, compare, machine, without_avx512
from minigrad.geometry import conv_output_size

from . import bench_main_job, bench_model, table
from .errors import THREADS_HELP, UserError, check_number, check_output_folder, reports_user_errors, use_threads
from .sizes import row_sizes
from .train import TrainConfig


def googlenet_op_shapes(batch=8, image_size=224):
    """Every conv, pool and LRN of GoogLeNet (Table 1 with its auxiliary heads) with its input shape."""
    row_sizes(image_size)                   # a ValueError naming the smallest usable input
    shapes, size, channels = [], image_size, 3

    def add_conv(name, c_in, c_out, kernel, stride=1, padding=0, at=None):
        shapes.append(OpShape(name, "conv2d", (batch, c_in, at or size, at or size),
                              dict(weight=(c_out, c_in, kernel, kernel), stride=stride, padding=padding)))

    def add_pool(name, op, c, kernel, stride, padding=0, ceil_mode=True, at=None):
        shapes.append(OpShape(name, op, (batch, c, at or size, at or size),
                              dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)))

    for row in table.TABLE_1:
        if row.kind == "conv":
            padding = (row.patch - 1) // 2          # 7x7/2 pad 3; 3x3 pad 1: "same" up to the stride
            if row.reduce:
                add_conv(f"{row.name}/reduce", channels, row.reduce, 1)
                channels = row.reduce
            add_conv(row.name, channels, row.out_channels, row.patch, row.stride, padding)
            size, channels = conv_output_size(size, row.patch, row.stride, padding), row.out_channels
        elif row.kind == "maxpool":         # as googlenet.sizes: never a window larger than the map
            kernel = min(row.patch, size)
            add_pool(row.name, "max_pool2d", channels, kernel, row.stride)
            size = conv_output_size(size, kernel, row.stride, 0, ceil_mode=True)
        elif row.kind == "avgpool":        # 7x7 at 224; the whole map (global) at smaller inputs
            add_pool(row.name, "avg_pool2d", channels, min(row.patch, size), row.stride, ceil_mode=False)
            size = 1
        elif row.kind == "inception":
            one, r3, three, r5, five, proj = row.widths
            add_conv(f"{row.name}/1x1", channels, one, 1)
            add_conv(f"{row.name}/3x3_reduce", channels, r3, 1)
            add_conv(f"{row.name}/3x3", r3, three, 3, padding=1)
            add_conv(f"{row.name}/5x5_reduce", channels, r5, 1)
            add_conv(f"{row.name}/5x5", r5, five, 5, padding=2)
            add_pool(f"{row.name}/pool", "max_pool2d", channels, 3, 1, padding=1, ceil_mode=False)
            add_conv(f"{row.name}/pool_proj", channels, proj, 1)
            channels = row.out_channels
        if row.name in table.LRN_AFTER:
            shapes.append(OpShape(f"lrn/{row.name}", "lrn", (batch, channels, size, size),
                                  dict(size=table.LRN_SIZE, alpha=table.LRN_ALPHA,
                                       beta=table.LRN_BETA, k=table.LRN_K)))
        if row.name in table.AUX_AFTER:
            head, kernel = f"aux/{row.name}", min(table.AUX_POOL, size)
            pooled = conv_output_size(size, kernel, table.AUX_POOL_STRIDE, 0, ceil_mode=True)
            add_pool(f"{head}/pool", "avg_pool2d", channels, kernel, table.AUX_POOL_STRIDE)
            add_conv(f"{head}/conv", channels, table.AUX_CONV_CHANNELS, 1, at=pooled)
    return shapes


# --- command line (python -m googlenet bench) ------------------------------------------------
COMPARED_DEVICES = ["cpu", "cuda"]

# What the command does: the ops table unless one of the other three modes is asked for.
MODES = {"ops": "the ops table", "compare": "--compare", "model": "--model", "main_job": "--main-job"}
# The options of each mode (argparse's names). An option given to a mode that does not take
# it is refused, never ignored.
OPTIONS = {
    "ops": {"batch", "repeats", "image_size", "only", "device", "kernels", "blas_threads", "threads", "quick",
            "without_avx512"},
    "compare": {"batch", "repeats", "image_size", "only", "torch", "out", "blas_threads", "threads", "quick"},
    "model": {"repeats", "device", "kernels", "no_torch", "out", "blas_threads", "threads", "quick", "width",
              "without_avx512"},
    "main_job": {"batch", "repeats", "device", "out", "width", "epochs", "held_out", "threads", "without_avx512"},
}


def add_parser(subparsers):
    """Register ``bench`` on an argparse sub-parser collection."""
    parser = subparsers.add_parser("bench", help="time GoogLeNet: every conv, pool and LRN against bare GEMMs "
                                   "(--compare: every kernel set), the whole network (--model), the main job "
                                   "(--main-job)", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--compare", nargs="*", metavar="DEVICE", default=None,
                       help="every kernel set of these devices side by side, then the whole network "
                            f"(default: {' '.join(COMPARED_DEVICES)}; a missing GPU is a missing column)")
    modes.add_argument("--model", nargs="*", metavar="BATCHxSIZE", default=None, type=batch_and_size,
                       help="the whole network, forward and training step, beside PyTorch when installed "
                            "(default: 8x224 32x224 64x32 on the CPU, 8x224 32x224 128x224 on a GPU)")
    modes.add_argument("--main-job", action="store_true",
                       help="the README's main job (python -m googlenet train) and the same job in PyTorch "
                            "(benchmarks/torch_main_job.py): accuracy and wall time side by side")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default 8, 1 with --quick; --main-job: 32)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs (default 5, --model 3; 1 with --quick; --main-job: rounds of "
                             "both runs, default 1)")
    parser.add_argument("--image-size", type=int, default=None, help="input height and width (default 224)")
    parser.add_argument("--only", nargs="+", metavar="TEXT",
                        help="only ops whose name or kind contains one of these (e.g. 3a pool conv1)")
    parser.add_argument("--device", default=None, help="cpu or cuda (or gpu, any case; default cpu)")
    parser.add_argument("--kernels", choices=sorted(kernels.SETS), default=None,
                        help="the kernel set to time (default: the device's, numpy on the CPU)")
    parser.add_argument("--torch", action="store_true", help="with --compare: PyTorch's columns too (when installed)")
    parser.add_argument("--no-torch", action="store_true", help="with --model: leave PyTorch out")
    parser.add_argument("--width", type=float, default=None,
                        help="with --model and --main-job: the channel multiplier (default 1, Table 1)")
    parser.add_argument("--epochs", type=int, default=None, help=f"with --main-job: epochs (default {TrainConfig.epochs})")
    parser.add_argument("--held-out", type=float, default=None,
                        help="with --main-job: the share of the digits held out (default 0.2)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="write the results to DIR: --compare: ops.csv, ops.png, roofline.png; --model: "
                             "model.csv, model-breakdown.csv, model.json; --main-job: both runs and main-job.json")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS to this many threads")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=THREADS_HELP)
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 1, one repeat")
    parser.add_argument("--without-avx512", action="store_true",
                        help="on a CPU with AVX-512: run again with NumPy, OpenBLAS and PyTorch held to AVX2, "
                             "standing in for a machine without it (minigrad/bench/without_avx512.py)")
    parser.set_defaults(func=run)
    return parser


def batch_and_size(text):
    """"8x224" -> (8, 224): a batch size and an image size."""
    batch, _, size = text.lower().partition("x")
    if not (batch.strip().isdigit() and size.strip().isdigit()):
        raise argparse.ArgumentTypeError(f"expected BATCHxSIZE such as 8x224, got {text!r}")
    return int(batch), int(size)


@reports_user_errors
def run(args):
    """Prints the tables; exit status 2 (one line on stderr) for options that cannot work.
    A comparison (``--compare``) also times the whole network in each configuration."""
    check_options(args)
    if args.without_avx512 and not without_avx512.held_here():
        return without_avx512.rerun_held(["-m", "googlenet", *args.argv])
    if args.mode == "main_job":
        return bench_main_job.run_main_job(args)
    with bench.blas_threads(args.blas_threads):
        if args.mode == "model":
            bench_model.run_model_benchmark(args)
        elif args.mode == "compare":
            run_comparison(args, chosen_shapes(args))
        else:
            run_one_device(args, chosen_shapes(args))
    return 0


def chosen_shapes(args):
    """The op shapes of GoogLeNet at ``args.batch`` and ``args.image_size``, those of --only."""
    try:
        shapes = googlenet_op_shapes(args.batch, args.image_size)
    except ValueError as error:                # an image size the network refuses
        raise UserError(str(error)) from None
    if args.only:
        shapes = [s for s in shapes if any(w.lower() in f"{s.name} {s.op}".lower() for w in args.only)]
        if not shapes:
            raise UserError(f"--only {' '.join(args.only)} matches no op of GoogLeNet")
    return shapes


def check_options(args):
    """``args.mode``, the options it does not take refused, the defaults filled in, the numbers
    and the device checked: a UserError for an option that cannot work, before any timing
    (--out included)."""
    args.mode = next((mode for mode in ("compare", "model") if getattr(args, mode) is not None),
                     "main_job" if args.main_job else "ops")
    check_given_numbers(args)
    args.threads = use_threads(args.threads)
    refuse_options_of_other_modes(args)
    fill_defaults(args)
    if args.mode == "compare":
        args.compare = list(dict.fromkeys(device.split(":")[0] for device in read_devices(args.compare)))
    else:
        args.device = usable_device(args.device)
    if args.mode == "model":
        device_kind = args.device.split(":")[0]
        args.model = args.model or (bench_model.QUICK_SIZES if args.quick else bench_model.DEFAULT_SIZES[device_kind])
        args.kernels = args.kernels or kernels.DEFAULT_FOR_DEVICE[device_kind]
    if args.without_avx512:
        check_avx512_can_be_held(args.device)
    if args.out:
        check_output_folder("--out", args.out)
    if args.blas_threads is not None:
        try:
            import threadpoolctl  # noqa: F401  (only asking whether it is installed)
        except ImportError:
            raise UserError("--blas-threads needs threadpoolctl (pip install threadpoolctl)") from None


def check_avx512_can_be_held(device):
    """A UserError for --without-avx512 where there is nothing it could hold: a GPU, or a CPU
    without AVX-512 (which is the machine it stands in for)."""
    if device.split(":")[0] != "cpu":
        raise UserError(f"--without-avx512 holds the CPU's libraries to AVX2: it takes --device cpu, not {device}")
    if "avx512f" not in machine.cpu_model_and_flags()[1]:
        raise UserError("--without-avx512: this CPU has no AVX-512 (or does not say so in /proc/cpuinfo): "
                        "run without the option, it measures a machine without AVX-512 as it is")


def check_given_numbers(args):
    """A UserError for a number given out of range, whatever the mode (the defaults are in range)."""
    for flag, value in (("--batch", args.batch), ("--repeats", args.repeats), ("--image-size", args.image_size),
                        ("--blas-threads", args.blas_threads), ("--epochs", args.epochs)):
        if value is not None:
            check_number(flag, value, 1)
    if args.width is not None:
        check_number("--width", args.width, 0, low_open=True)
    if args.held_out is not None:
        check_number("--held-out", args.held_out, 0, 1, low_open=True, high_open=True)
    for batch, size in args.model or ():
        check_number("--model's batch size", batch, 1)
        check_image_size(size)


def refuse_options_of_other_modes(args):
    """A UserError for the first option given that ``args.mode`` does not take, naming the
    modes that do."""
    for name in sorted(set().union(*OPTIONS.values()) - OPTIONS[args.mode]):
        given = getattr(args, name)
        if given is None or given is False:
            continue
        flag = "--" + name.replace("_", "-")
        owners = [MODES[mode] for mode in MODES if name in OPTIONS[mode]]
        value = "" if given is True else f" {' '.join(given) if isinstance(given, list) else given}"
        why = (" (a comparison times every kernel set of the devices it names)"
               if args.mode == "compare" and name in ("device", "kernels") else "")
        owners = ", ".join(owners[:-1]) + " and " + owners[-1] if len(owners) > 1 else owners[0]
        raise UserError(f"{flag}{value}: not an option of {MODES[args.mode]}{why}; it belongs to {owners}")


def fill_defaults(args):
    """Each mode's defaults for the options not given (--quick: batch 1, one repeat)."""
    if args.mode in ("ops", "compare"):
        args.batch = (1 if args.quick else 8) if args.batch is None else args.batch
        args.image_size = 224 if args.image_size is None else args.image_size
        args.compare = (args.compare or COMPARED_DEVICES) if args.mode == "compare" else None
    if args.mode in ("ops", "compare", "model"):
        default_repeats = 3 if args.mode == "model" else 5
        args.repeats = (1 if args.quick else default_repeats) if args.repeats is None else args.repeats
    if args.mode in ("model", "main_job"):
        args.width = 1.0 if args.width is None else args.width
    if args.mode == "main_job":
        args.repeats = 1 if args.repeats is None else args.repeats
        defaults = TrainConfig()
        args.batch = defaults.batch_size if args.batch is None else args.batch
        args.epochs = defaults.epochs if args.epochs is None else args.epochs
        args.held_out = defaults.held_out if args.held_out is None else args.held_out


def check_image_size(size):
    """A UserError unless GoogLeNet takes ``size``x``size`` images."""
    try:
        row_sizes(size)
    except ValueError as error:
        raise UserError(str(error)) from None


def usable_device(name):
    """The device ``name`` read (cpu when None) and usable here; a UserError otherwise."""
    device = read_devices(["cpu" if name is None else name])[0]
    try:
        backend.array_module_for(device)
    except RuntimeError as error:              # cuda without a usable GPU
        raise UserError(str(error)) from None
    return device


def read_devices(names):
    """The device names as ``backend.parse_device`` reads them (any case, spaces around, "gpu"
    for "cuda"); a UserError naming the first it does not know."""
    try:
        return [backend.parse_device(name) for name in names]
    except ValueError as error:
        raise UserError(str(error)) from None


def run_one_device(args, shapes):
    """The ops table of one device and kernel set, then its summary."""
    threads = args.blas_threads or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
    kernel_set = args.kernels or kernels.DEFAULT_FOR_DEVICE[args.device.split(":")[0]]
    print(f"minigrad ops benchmark, GoogLeNet: device {args.device}, kernels {kernel_set}, batch {args.batch}, "
          f"{args.image_size}x{args.image_size} input, median of {args.repeats} after a warm-up, float32, "
          f"NumPy {numpy.__version__}, BLAS threads {threads}, kernel threads {args.threads}, "
          f"{os.cpu_count()} CPUs")
    print(bench.HEADER)
    with kernels.use(kernel_set):
        rows = bench.time_ops(shapes, args.repeats, args.device,
                              progress=lambda row: print(bench.format_row(*row), flush=True))
    bench.print_summary(rows)


def run_comparison(args, shapes):
    """Every configuration of ``args.compare``'s devices side by side (and the files of
    --out), then the whole network in each minigrad configuration."""
    chosen, missing = compare.configurations(args.compare, args.torch)
    for reason in missing:
        print(reason)
    print(f"minigrad CPU vs GPU, GoogLeNet: batch {args.batch}, {args.image_size}x{args.image_size}, "
          f"median of {args.repeats} after a warm-up, float32, kernel threads {args.threads}; configurations: "
          f"{', '.join(compare.label(c) for c in chosen)}")
    results = compare.time_configurations(shapes, chosen, args.repeats)
    print(compare.format_table(shapes, results))
    if args.out:
        roofs = bench.roofs(dict.fromkeys(device for device, _ in chosen))
        compare.write_files(args.out, shapes, results, args.batch, args.image_size, roofs)
        print(f"wrote {args.out}/ops.csv, ops.png and roofline.png")
    print_network_times(args, [c for c in chosen if c[1] != "torch"])


def time_network(batch, image_size, device, kernel_set, repeats, seed=0):
    """Median seconds of a full-width GoogLeNet's eval forward and of one training step
    (forward with the auxiliary heads, the paper's loss, backward, SGD update), float32."""
    from minigrad.autograd import Tensor, no_grad
    from minigrad.optim import SGD

    from .model import GoogLeNet, googlenet_loss
    model = GoogLeNet(input_size=image_size, seed=seed).to(device)
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = numpy.random.default_rng(seed)
    images = Tensor(rng.standard_normal((batch, 3, image_size, image_size), dtype=numpy.float32), device=device)
    labels = rng.integers(0, model.num_classes, batch)
    xp = backend.array_module_for(device)

    def forward():
        with no_grad():
            model.eval()(images)

    def training_step():
        loss = googlenet_loss(model.train()(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    with kernels.use(kernel_set):
        return {name: bench.median_seconds(step, repeats, xp)
                for name, step in (("forward", forward), ("training step", training_step))}


def print_network_times(args, chosen):
    """The whole network, in each (device, kernel set) configuration of ``chosen``."""
    print(f"\nthe whole GoogLeNet (full width, {args.image_size}x{args.image_size}, batch {args.batch}), "
          f"median of {args.repeats}:")
    first = None
    for device, kernel_set in chosen:
        t = time_network(args.batch, args.image_size, device, kernel_set, args.repeats)
        first = first or t
        print(f"  {device} {kernel_set:<6}  forward {t['forward'] * 1e3:9.1f} ms   training step "
              f"{t['training step'] * 1e3:9.1f} ms   ({args.batch / t['training step']:.1f} images/s; "
              f"x{first['training step'] / t['training step']:.1f} over the first)")
