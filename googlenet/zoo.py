"""``python -m googlenet zoo``: GoogLeNet beside every network of the survey (``zoo``).

    python -m googlenet zoo                          # every network at its paper's input
    python -m googlenet zoo --quick --only lenet5,googlenet --plot zoo.png
    python -m googlenet zoo --only lenet5 --layers   # and its table, layer by layer

For each network: parameters, multiply-adds per image, depth (layers with weights on the
longest path) and the median CPU time of one forward pass at batch 1, each at the paper's
input (224x224 GoogLeNet, VGG and ResNet, 227x227 AlexNet, 32x32 LeNet) with the paper's
classes and channels (the builders' defaults: 1,000 classes and 3 channels, LeNet-5 10
and 1). How each figure is counted: ``zoo.summary``.

GoogLeNet is counted as the network used for inference: without its two auxiliary
classifiers (used in training only; they add 6.4 M parameters at 1,000 classes).
"""
import argparse
import inspect

import zoo
from minigrad.bench import blas_threads
from zoo import summary

from .errors import UserError, check_number, check_output_file, reports_user_errors
from .model import GoogLeNet

NAME = "googlenet"
PAPER_INPUT_SIZE = 224
PLOT_SUFFIXES = (".png", ".pdf", ".svg")    # formats matplotlib writes everywhere


def build_googlenet(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """GoogLeNet in the zoo's builder form: the inference network, without auxiliary heads."""
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, width=width, aux_heads=False,
                     seed=seed, input_size=PAPER_INPUT_SIZE if input_size is None else input_size)


def networks():
    """{name: (builder, paper input size)}: every registered zoo network, and GoogLeNet."""
    return {**zoo.load_all(), NAME: (build_googlenet, PAPER_INPUT_SIZE)}


def chosen(only=None):
    """The names to compare, in the registry's order (``only``: a subset); a UserError naming
    the known ones for a name that is not."""
    known = networks()
    if not only:
        return list(known)
    unknown = [name for name in only if name not in known]
    if unknown:
        raise UserError(f"unknown network {unknown[0]!r}: expected one of {', '.join(sorted(known))}")
    return [name for name in known if name in only]


def build(name, input_size=None, width=1.0, seed=0):
    """Network ``name`` with its builder's (the paper's) classes and channels, and its input
    shape (C, H, W): at the paper's size unless ``input_size`` says otherwise."""
    builder, paper_size = networks()[name]
    size = paper_size if input_size is None else input_size
    channels = inspect.signature(builder).parameters["in_channels"].default
    return builder(input_size=size, width=width, seed=seed), (channels, size, size)


def compare(names, repeats=5, input_size=None, width=1.0, progress=None):
    """``summary.NetworkFigures`` for each name, timed with ``repeats`` forward passes (none
    when 0); ``progress(figures)`` is called after each. One network is in memory at a time."""
    rows = []
    for name in names:
        model, in_shape = build(name, input_size, width)
        rows.append(summary.figures(name, model, in_shape, repeats))
        del model
        if progress:
            progress(rows[-1])
    return rows


# --- command line (python -m googlenet zoo) ----------------------------------------------------
def add_parser(subparsers):
    """Register ``zoo`` on an argparse sub-parser collection."""
    parser = subparsers.add_parser("zoo", help="GoogLeNet beside LeNet-5, AlexNet, VGG and ResNet: "
                                   "parameters, multiply-adds, depth, CPU forward time",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
                        metavar="NAMES", help="comma-separated networks, e.g. lenet5,googlenet")
    parser.add_argument("--quick", action="store_true", help="one timed forward per network, not 5")
    parser.add_argument("--repeats", type=int, default=None, help="timed forwards per network (default 5)")
    parser.add_argument("--plot", metavar="PATH", help="save a bar and scatter plot there (.png, .pdf "
                        "or .svg; its folder must exist)")
    parser.add_argument("--layers", action="store_true", help="also print each network layer by layer")
    parser.add_argument("--input-size", type=int, default=None,
                        help="every network at this input instead of its paper's (e.g. 32)")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier (default 1)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit BLAS to this many threads (needs threadpoolctl)")
    parser.set_defaults(func=run)
    return parser


@reports_user_errors
def run(args):
    """Prints the comparison (and the plot); exit status 2, one line on stderr, for bad options."""
    names = chosen(args.only)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    for flag, value in (("--repeats", repeats), ("--input-size", args.input_size), ("--blas-threads",
                                                                                   args.blas_threads)):
        if value is not None:
            check_number(flag, value, 1)
    check_number("--width", args.width, 0, low_open=True)
    if args.plot:                                   # before the timing, not after it
        check_output_file("--plot", args.plot, PLOT_SUFFIXES)
    where = "each network's paper input" if args.input_size is None else f"{args.input_size}x{args.input_size}"
    print(f"The survey's networks at {where}, width {args.width:g}: CPU forward time at batch 1, "
          f"median of {repeats} after a warm-up, float32\n")
    width = summary.name_width(names)
    print(summary.comparison_header(width))
    try:
        with blas_threads(args.blas_threads):
            rows = compare(names, repeats, args.input_size, args.width,
                           progress=lambda row: print(summary.comparison_line(row, width), flush=True))
    except ValueError as error:          # an input size or width a network refuses
        raise UserError(str(error)) from None
    if args.layers:
        for name in names:
            model, in_shape = build(name, args.input_size, args.width)
            print("\n" + summary.format_summary(model, in_shape, title=f"{name}, layer by layer"))
    if args.plot:
        summary.plot_comparison(rows, args.plot)
        print(f"\nplot: {args.plot}")
    print("\nParameters and multiply-adds (per image; biases, pooling and activations not counted) "
          "as the layers report them (zoo/summary.py); depth: layers with weights on the longest path.")
    return 0
