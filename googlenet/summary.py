"""Table 1, side by side: this model's shapes, parameters and multiply-adds beside the paper's.

    python -m googlenet summary                     # the paper's configuration
    python -m googlenet summary --input-size 32 --width 0.25 --classes 10

Counting. A convolution with weight (C_out, C, KH, KW) producing an OH x OW map costs
C_out*C*KH*KW*OH*OW multiply-adds (weights x output positions); a linear layer
in*out. Pooling, LRN, ReLU and biases are not counted, as in the paper's ops column.
Every layer reports its own output shape, multiply-adds and depth
(``minigrad.nn.Module.output_shape``, ``multiply_adds``, ``depth``), read row by row by
``minigrad.summary``, the walker the zoo's tables use too; a layer that does not
report is an error, never a silent zero.
How the paper's printed figures are read and compared: ``googlenet.paper_figures``.
"""
import argparse
from typing import NamedTuple, Tuple

from minigrad import nn
from minigrad.summary import layer_row, layer_rows

from . import table
from .errors import UserError, check_number, reports_user_errors
from .model import GoogLeNet, Inception
from .paper_figures import OPS_UNIT, PARAM_UNIT, agreement, explain, printed
from .sizes import adaptations, smallest_input_size


def layer_shapes(model):
    """A ``minigrad.summary.LayerRow`` for every layer of the main path, in order, each
    auxiliary head (as one layer, named "aux1"/"aux2") right after the Inception module
    it reads."""
    heads_after = {tap: head for head, tap in model.aux_taps().items()}
    rows = []
    for row in layer_rows(model.main_path(), model.input_shape):
        rows.append(row)
        if row.name in heads_after:
            head = heads_after[row.name]
            rows.append(layer_row(head, getattr(model, head), row.out_shape))
    return rows


class RowSummary(NamedTuple):
    """Our figures for one row of Table 1 (all its layers together)."""
    row: table.Row
    patch: str                  # what our layers use: "3x3/2", or "global" for the avg pool
    out_shape: Tuple[int, ...]
    depth: int
    widths: Tuple[int, ...]     # our (scaled) Inception widths, or (reduce, out) for conv2
    weights: int
    params: int
    multiply_adds: int
    in_channels: int
    input_weights_per_channel: int   # weights touching one input channel (to explain typos)
    formula: str                # the weight count as arithmetic: "7x7x3x64"


def row_summaries(model):
    """A ``RowSummary`` per row of Table 1."""
    shapes = layer_shapes(model)
    summaries, out_shape = [], None
    for row in table.TABLE_1:
        mine = [s for s in shapes if model.table_row.get(s.name) == row.name]
        layers = [getattr(model, s.name) for s in mine]
        out_shape = mine[-1].out_shape if mine else (model.num_classes,)
        in_channels = mine[0].in_shape[0] if mine else model.num_classes
        summaries.append(RowSummary(
            row, _patch(row, layers, model), out_shape, sum(s.depth for s in mine),
            _widths(row, layers), sum(s.weights for s in mine), sum(s.params for s in mine),
            sum(s.multiply_adds for s in mine), in_channels, _input_weights_per_channel(layers),
            _weight_formula(layers)))
    return summaries


def _patch(row, layers, model):
    if row.kind == "avgpool":
        size = model.sizes[row.name].size_in
        return f"{size}x{size}/1" if size == row.patch else f"global {size}x{size}"
    if row.kind == "maxpool":
        return f"{layers[0].kernel_size}x{layers[0].kernel_size}/{layers[0].stride}"
    if row.kind == "conv":
        conv = layers[-1]
        return f"{conv.kernel_size[0]}x{conv.kernel_size[1]}/{conv.stride[0]}"
    return ""


def _widths(row, layers):
    if row.kind == "inception":
        return layers[0].widths
    if row.kind == "conv" and row.reduce is not None:
        return (layers[0].out_channels, layers[1].out_channels)
    return ()


def _input_weights_per_channel(layers):
    """Weights that read one channel of the row's input (first layer of each path)."""
    if not layers:
        return 0
    first = layers[0]
    if isinstance(first, Inception):
        return sum(c.weight.size // c.in_channels for c in _input_readers(first))
    if isinstance(first, nn.Conv2d):
        return first.weight.size // first.in_channels
    if isinstance(first, nn.Linear):
        return first.out_features
    return 0


def _input_readers(inception):
    """The first convolution of each branch: the ones that read the module's input."""
    return [next(x for x in branch if isinstance(x, nn.Conv2d)) for branch in inception]


def _weight_formula(layers):
    """"192x(64+96+16+32) + 3x3x96x128 + 5x5x16x32" for 3a; "7x7x3x64" for conv1."""
    if layers and isinstance(layers[0], Inception):
        module = layers[0]
        readers = "+".join(str(conv.out_channels) for conv in _input_readers(module))
        conv3x3, conv5x5 = module.branch3x3.conv, module.branch5x5.conv
        return (f"{module.in_channels}x({readers}) + 3x3x{conv3x3.in_channels}x{conv3x3.out_channels}"
                f" + 5x5x{conv5x5.in_channels}x{conv5x5.out_channels}")
    terms = []
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            terms.append(f"{kh}x{kw}x{layer.in_channels}x{layer.out_channels}")
        elif isinstance(layer, nn.Linear):
            terms.append(f"{layer.in_features}x{layer.out_features}")
    return " + ".join(terms)


# --- printing -----------------------------------------------------------------------------
TYPE_NAMES = {"conv": "convolution", "maxpool": "max pool", "avgpool": "avg pool",
              "linear": "linear", "softmax": "softmax"}


def _type_name(row):
    if row.kind == "inception":
        return f"inception ({row.name})"
    if row.kind == "dropout":
        return f"dropout ({table.MAIN_DROPOUT:.0%})"
    return TYPE_NAMES[row.kind]


def _shape_text(shape):
    """(64, 112, 112) -> "112x112x64"; (1000,) -> "1x1x1000", as Table 1 writes them."""
    return "x".join(map(str, shape[1:] + shape[:1])) if len(shape) == 3 else f"1x1x{shape[0]}"


def _width_cells(summary):
    if summary.row.kind == "inception":
        return [str(w) for w in summary.widths]
    if len(summary.widths) == 2:               # conv2: "#3x3 reduce" and "#3x3" columns
        return ["", str(summary.widths[0]), str(summary.widths[1]), "", "", ""]
    return [""] * 6


def is_paper_configuration(model):
    return (model.input_size, model.width, model.in_channels, model.num_classes) == (224, 1.0, 3, 1000)


def format_table(model):
    """Table 1's rows with our figures (and, in the paper's configuration, the paper's)."""
    paper = is_paper_configuration(model)
    header = (f"{'type':<16} {'patch/stride':<13} {'output':<13} {'depth':>5}  "
              f"{'#1x1':>5} {'#3x3r':>5} {'#3x3':>5} {'#5x5r':>5} {'#5x5':>5} {'proj':>5}  "
              f"{'params':>9}" + (f" {'paper':>6}   " if paper else "") +
              f" {'mult-adds':>9}" + (f" {'paper':>5}" if paper else ""))
    lines, notes = [header], []
    for s in row_summaries(model):
        cells = " ".join(f"{c:>5}" for c in _width_cells(s))
        line = (f"{_type_name(s.row):<16} {s.patch:<13} {_shape_text(s.out_shape):<13} "
                f"{s.depth:>5}  {cells}  {_count(s.weights, PARAM_UNIT, 'K'):>9}")
        if paper:
            line += _paper_cell(s.weights, s.row.paper_params, 6)
        line += f" {_count(s.multiply_adds, OPS_UNIT, 'M'):>9}"
        if paper:
            line += _paper_cell(s.multiply_adds, s.row.paper_ops, 5)
            if s.row.paper_params and "!" in (agreement(s.weights, printed(s.row.paper_params)),
                                              agreement(s.multiply_adds, printed(s.row.paper_ops))):
                notes.append(s)
                line += f"  [{len(notes)}]"
        lines.append(line.rstrip())
    return lines, notes


def _count(value, unit, suffix):
    """1.0M, 118.0M; three decimals below 1 unit (small widths)."""
    if not value:
        return ""
    return f"{value / unit:,.1f}{suffix}" if value >= unit else f"{value / unit:.3f}{suffix}"


def _paper_cell(ours, text, width):
    if not text:
        return " " * (width + 3)
    return f" {text:>{width}} {agreement(ours, printed(text))} "


def format_totals(model):
    shapes = layer_shapes(model)
    rows = row_summaries(model)
    main = [s for s in shapes if not s.name.startswith("aux")]
    aux = [s for s in shapes if s.name.startswith("aux")]
    weights = sum(s.weights for s in main)
    params = sum(s.params for s in main)
    depth = sum(r.depth for r in rows)
    pools = sum(1 for r in rows if r.row.kind in ("maxpool", "avgpool"))
    madds = sum(s.multiply_adds for s in main)
    image = f"{model.input_size}x{model.input_size}"
    paper = is_paper_configuration(model)
    column = sum(printed(r.row.paper_params).value for r in rows if r.row.paper_params)
    ops_column = sum(printed(r.row.paper_ops).value for r in rows if r.row.paper_ops)
    lines = [
        ("parameters, main network", f"{params:,} ({weights:,} weights = {weights / PARAM_UNIT:,.1f}K "
         f"+ {params - weights:,} biases)",
         f"{column / PARAM_UNIT:,.1f}K weights (the params column's sum)"),
        ("parameters, with both auxiliary heads", f"{params + sum(s.params for s in aux):,}"
         if aux else "(no auxiliary heads)", "not given"),
        (f"multiply-adds per {image} image", f"{_count(madds, OPS_UNIT, 'M')} ({madds:,})",
         f"about {table.PAPER_MULTIPLY_ADDS / OPS_UNIT:,.0f}M (section 1); the ops column sums to "
         f"{ops_column / OPS_UNIT:,.0f}M"),
        ("  + both auxiliary heads (training only)",
         _count(sum(s.multiply_adds for s in aux), OPS_UNIT, "M") if aux else "-", ""),
        ("depth, layers with parameters", str(depth), str(table.PAPER_TOTAL_DEPTH)),
        ("depth, counting pooling layers too", str(depth + pools), str(table.PAPER_TOTAL_DEPTH_WITH_POOLING)),
    ]
    return [f"{label:<42} {ours}" + (f"\n{'':<42}   paper: {theirs}" if paper and theirs else "")
            for label, ours, theirs in lines]


def format_summary(model):
    """The whole printout: the table, the notes on disagreements, totals and adaptations."""
    paper = is_paper_configuration(model)
    title = (f"GoogLeNet, Table 1 of Szegedy et al. (2014) beside this model: input "
             f"{model.input_size}x{model.input_size}x{model.in_channels}, width {model.width:g}, "
             f"{model.num_classes} classes")
    rows, notes = format_table(model)
    out = [title, "", *rows, ""]
    out.append("Params: weights without biases, K = 1024; mult-adds: convolutions and linear "
               "layers, M = 10^6 (see googlenet/paper_figures.py).")
    out.append(f"Not in Table 1: LRN (size {table.LRN_SIZE}, alpha {table.LRN_ALPHA:g}, beta "
               f"{table.LRN_BETA}, k {table.LRN_K:g}) after pool1 and after conv2 "
               f"(Figure 3, Caffe model), no parameters; softmax is applied by the loss.")
    if paper:
        close = [s.row.name for s in row_summaries(model) if s.row.paper_params and "~" in (
            agreement(s.weights, printed(s.row.paper_params)),
            agreement(s.multiply_adds, printed(s.row.paper_ops)))]
        out.append("= agrees to the printed digits; ~ within 2% but outside the printed digits "
                   f"({', '.join(close)}): loose rounding; ! disagrees, explained below.")
        for number, summary in enumerate(notes, start=1):
            text = explain(summary)
            out.append(f"[{number}] " + "\n    ".join(text))
    out += ["", "Totals", *format_totals(model), ""]
    smallest = smallest_input_size()
    changes = adaptations(model.input_size)
    if changes:
        out.append(f"At {model.input_size}x{model.input_size}, unlike Table 1's 224x224:")
        out += [f"  - {change}" for change in changes]
    out.append(f"Smallest usable input: {smallest}x{smallest} (see googlenet/sizes.py).")
    return "\n".join(out)


# --- command line (python -m googlenet summary) ------------------------------------------------
def add_parser(subparsers):
    """Register ``summary`` on an argparse sub-parser collection."""
    parser = subparsers.add_parser("summary", help="Table 1 beside this model's shapes, parameters "
                                   "and multiply-adds", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-size", type=int, default=224, help="side of the square input (default 224)")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier (default 1)")
    parser.add_argument("--classes", type=int, default=1000, help="number of classes (default 1000)")
    parser.add_argument("--in-channels", type=int, default=3, help="input channels (default 3)")
    parser.set_defaults(func=run)
    return parser


@reports_user_errors
def run(args):
    """``python -m googlenet summary``: prints the summary; exit status 2 for bad options."""
    for flag, value in (("--input-size", args.input_size), ("--classes", args.classes),
                        ("--in-channels", args.in_channels)):
        check_number(flag, value, 1)
    check_number("--width", args.width, 0, low_open=True)
    try:
        model = GoogLeNet(num_classes=args.classes, in_channels=args.in_channels, width=args.width,
                          input_size=args.input_size)
    except ValueError as error:                   # an input too small for the network
        raise UserError(str(error)) from None
    print(format_summary(model))
    return 0
