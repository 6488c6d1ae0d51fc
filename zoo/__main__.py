"""``python -m zoo``: every network of the survey side by side, GoogLeNet among them.

    python -m zoo                                   # every network at its paper's input
    python -m zoo --quick --only lenet5,googlenet --plot zoo.png
    python -m zoo --only lenet5 --layers            # and its table, layer by layer

For each network: parameters, multiply-adds per image, depth (layers with weights on the
longest path) and the median CPU time of one forward pass at batch 1, each at the paper's
input (224x224 GoogLeNet, VGG and ResNet, 227x227 AlexNet, 32x32 LeNet) with the paper's
classes and channels (the builders' defaults: 1,000 classes and 3 channels, LeNet-5 10
and 1). How each figure is counted: ``zoo.summary``. GoogLeNet is counted as the network
used for inference, without its auxiliary classifiers (``zoo/googlenet.py``).

Its mistakes are refused as the ``googlenet`` commands refuse theirs: one line on stderr,
exit status 2 (``googlenet.errors``).
"""
import argparse
import sys

import zoo
from googlenet.errors import (OneLineErrorParser, UserError, check_number, check_output_file,
                              reports_user_errors)
from minigrad.bench import blas_threads
from minigrad.summary import format_summary
from zoo import summary

PLOT_SUFFIXES = (".png", ".pdf", ".svg")    # formats matplotlib writes everywhere


def chosen(only=None):
    """The names to compare, in the registry's order (``only``: a subset); a UserError naming
    the known ones for a name that is not."""
    known = zoo.load_all()
    if not only:
        return list(known)
    unknown = [name for name in only if name not in known]
    if unknown:
        raise UserError(f"unknown network {unknown[0]!r}: expected one of {', '.join(sorted(known))}")
    return [name for name in known if name in only]


def build_parser():
    """The parser of ``python -m zoo``."""
    parser = OneLineErrorParser(prog="python -m zoo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
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
            rows = summary.compare(names, repeats, args.input_size, args.width,
                                   progress=lambda row: print(summary.comparison_line(row, width), flush=True))
    except ValueError as error:          # an input size or width a network refuses
        raise UserError(str(error)) from None
    if args.layers:
        for name in names:
            model, in_shape = zoo.build_at_input(name, args.input_size, args.width)
            print("\n" + format_summary(model, in_shape, title=f"{name}, layer by layer"))
    if args.plot:
        summary.plot_comparison(rows, args.plot)
        print(f"\nplot: {args.plot}")
    print("\nParameters and multiply-adds (per image; biases, pooling and activations not counted) "
          "as the layers report them (zoo/summary.py); depth: layers with weights on the longest path.")
    return 0


def main(argv=None):
    """``python -m zoo [options]``; returns the exit status."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
