"""``python -m googlenet bench``: every convolution, pool and LRN of GoogLeNet timed, forward
and backward, at its own layer shapes.

    python -m googlenet bench                          # batch 8, 224x224 input, on the CPU
    python -m googlenet bench --quick --only 3a        # a smoke run of module 3a's ops
    python -m googlenet bench --device cuda            # the GPU, hand-written kernels
    python -m googlenet bench --compare --torch --out DIR
        # every kernel set side by side (CPU, generic GPU, hand-written CUDA, PyTorch),
        # then the whole network; DIR/ops.csv, ops.png and roofline.png

What is measured and the targets: ``minigrad.bench``. ``googlenet_op_shapes`` lists the
ops of Table 1 and the auxiliary heads; another network benchmarks its own layers by
listing its ``OpShape`` rows the same way. ``time_network`` times the whole network:
a forward pass, and a training step with the paper's loss.
"""
import argparse
import os

import numpy

from minigrad import backend, bench, kernels
from minigrad.bench import OpShape, compare
from minigrad.geometry import conv_output_size

from . import table
from .errors import THREADS_HELP, UserError, check_number, check_output_folder, reports_user_errors, use_threads
from .sizes import row_sizes


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


def add_parser(subparsers):
    """Register ``bench`` on an argparse sub-parser collection."""
    parser = subparsers.add_parser("bench", help="time every conv, pool and LRN of GoogLeNet, "
                                   "forward and backward, against bare GEMMs", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 8; 1 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per op (default 5; 1 with --quick)")
    parser.add_argument("--image-size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--only", nargs="+", metavar="TEXT",
                        help="only ops whose name or kind contains one of these (e.g. 3a pool conv1)")
    parser.add_argument("--device", default=None, help="cpu or cuda (or gpu, any case; default cpu)")
    parser.add_argument("--kernels", choices=sorted(kernels.SETS), default=None,
                        help="the kernel set to time (default: the device's, numpy on the CPU)")
    parser.add_argument("--compare", nargs="*", metavar="DEVICE", default=None,
                        help="every kernel set of these devices side by side, then the whole network "
                             f"(default: {' '.join(COMPARED_DEVICES)}; a missing GPU is a missing column)")
    parser.add_argument("--torch", action="store_true", help="with --compare: PyTorch's columns too (when installed)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="with --compare: write DIR/ops.csv, DIR/ops.png and DIR/roofline.png")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS to this many threads")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=THREADS_HELP)
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 1, one repeat")
    parser.set_defaults(func=run)
    return parser


@reports_user_errors
def run(args):
    """Prints the table; exit status 2 (one line on stderr) for options that cannot work.
    A comparison (``--compare``) also times the whole network in each configuration."""
    check_options(args)
    try:
        shapes = googlenet_op_shapes(args.batch, args.image_size)
    except ValueError as error:                # an image size the network refuses
        raise UserError(str(error)) from None
    if args.only:
        shapes = [s for s in shapes if any(w.lower() in f"{s.name} {s.op}".lower() for w in args.only)]
        if not shapes:
            raise UserError(f"--only {' '.join(args.only)} matches no op of GoogLeNet")
    with bench.blas_threads(args.blas_threads):
        if args.compare is not None:
            run_comparison(args, shapes)
        else:
            run_one_device(args, shapes)
    return 0


def check_options(args):
    """Fill in the --quick defaults and read the device names; a UserError for an option that
    cannot work, before any timing (--out included)."""
    args.batch = (1 if args.quick else 8) if args.batch is None else args.batch
    args.repeats = (1 if args.quick else 5) if args.repeats is None else args.repeats
    for flag, value in (("--batch", args.batch), ("--repeats", args.repeats), ("--image-size", args.image_size),
                        ("--blas-threads", args.blas_threads)):
        if value is not None:
            check_number(flag, value, 1)
    args.threads = use_threads(args.threads)
    if args.compare is None:
        check_one_device(args)
    else:
        check_comparison(args)
    if args.blas_threads is not None:
        try:
            import threadpoolctl  # noqa: F401  (only asking whether it is installed)
        except ImportError:
            raise UserError("--blas-threads needs threadpoolctl (pip install threadpoolctl)") from None


# The options of one mode are refused in the other, never ignored: --out and --torch belong
# to a comparison, which times every kernel set of its devices; --device and --kernels
# choose the single configuration that is timed without one.
def check_one_device(args):
    """``args.device`` read (cpu unless given), and usable here."""
    for flag, given in (("--out", args.out), ("--torch", args.torch)):
        if given:
            raise UserError(f"{flag} belongs to a comparison: give --compare (or leave {flag} out)")
    args.device = read_devices(["cpu" if args.device is None else args.device])[0]
    try:
        backend.array_module_for(args.device)
    except RuntimeError as error:              # cuda without a usable GPU
        raise UserError(str(error)) from None


def check_comparison(args):
    """``args.compare``: the devices to compare, read (cpu and cuda unless given); a missing
    GPU is a missing column, not an error. --out must be a folder that can be written."""
    for flag, given in (("--device", args.device), ("--kernels", args.kernels)):
        if given is not None:
            raise UserError(f"{flag} {given}: a comparison (--compare) times every kernel set of the "
                            f"devices it names; {flag} chooses the single one timed without it")
    devices = read_devices(args.compare or COMPARED_DEVICES)
    args.compare = list(dict.fromkeys(device.split(":")[0] for device in devices))
    if args.out:
        check_output_folder("--out", args.out)


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
