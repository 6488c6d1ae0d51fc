"""Any network of the zoo layer by layer, and several side by side.

    from zoo import summary
    model = zoo.build("lenet5")
    print(summary.format_summary(model, (1, 32, 32)))     # one row per layer, then totals

A model's layers are its top-level children, in order, with every plain ``nn.Sequential``
among them opened up (``features.0``, ``features.1``, ...); any other module (an Inception
module, a residual block, LeNet's connection table) stays one row. The layers must run one
after another, as in an ``nn.Sequential`` (GoogLeNet without its auxiliary heads does too).
Each row is what the layer itself reports for one example (``minigrad.nn.Module``):
``output_shape``, ``multiply_adds`` (each weight times the positions it is applied at;
biases, pooling and activations not counted) and ``depth`` (layers with weights on its
longest path); parameters are counted with ``num_parameters``.

The comparison (``compare``, printed by ``python -m zoo``) measures, per network,
``NetworkFigures``: parameters, multiply-adds and depth as above, and the median CPU time of
a forward pass at batch 1 (``time_forward``: evaluation mode, no graph recorded, after one
warm-up pass).
"""
from typing import NamedTuple, Optional, Tuple

import numpy

import zoo
from minigrad import Tensor, bench, nn, no_grad, viz


class LayerRow(NamedTuple):
    """One layer, for one example (batch axis left out)."""
    name: str                   # "c1", "features.0", "inception3a"
    layer: str                  # what it is: "Conv2d(1, 6, kernel_size=5, stride=1)"
    out_shape: Tuple[int, ...]
    params: int
    multiply_adds: int
    depth: int


def layers(model):
    """[(name, layer)]: the model's children in order, plain Sequentials opened up."""
    found = []
    for name, child in model.named_children():
        if type(child) is nn.Sequential:
            found += [(f"{name}.{inner}", layer) for inner, layer in layers(child)]
        else:
            found.append((name, child))
    return found


def _describe(layer):
    """A layer's one-line repr; the first line of a composite's (its name and configuration)."""
    text = repr(layer)
    if "\n" in text:
        first = layer.extra_repr().splitlines()
        text = f"{type(layer).__name__}({first[0] if first else '...'})"
    return text


def layer_rows(model, in_shape):
    """A ``LayerRow`` per layer of ``model`` on one example of ``in_shape`` (C, H, W)."""
    rows, shape = [], tuple(in_shape)
    for name, layer in layers(model):
        out_shape = tuple(layer.output_shape(shape))
        rows.append(LayerRow(name, _describe(layer), out_shape, layer.num_parameters(),
                             layer.multiply_adds(shape), layer.depth()))
        shape = out_shape
    return rows


class NetworkFigures(NamedTuple):
    """One network on one example: what it costs, and (when timed) how long it takes."""
    name: str
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    params: int
    multiply_adds: int
    depth: int
    seconds: Optional[float] = None         # median forward time at batch 1, None if not timed


def figures(name, model, in_shape, repeats=0):
    """The model's ``NetworkFigures``: totals of its layer rows; timed when ``repeats`` > 0."""
    rows = layer_rows(model, in_shape)
    seconds = time_forward(model, in_shape, repeats) if repeats else None
    return NetworkFigures(name, tuple(in_shape), rows[-1].out_shape, sum(r.params for r in rows),
                          sum(r.multiply_adds for r in rows), sum(r.depth for r in rows), seconds)


def time_forward(model, in_shape, repeats=5, seed=0):
    """Median seconds of ``model``'s forward on one random float32 example (batch 1), in
    evaluation mode with no graph recorded, after one warm-up pass."""
    x = Tensor(numpy.random.default_rng(seed).standard_normal((1, *in_shape), dtype=numpy.float32))
    model.eval()
    with no_grad():
        return bench.median_seconds(lambda: model(x), repeats)


def compare(names, repeats=5, input_size=None, width=1.0, progress=None):
    """``NetworkFigures`` for each registered network of ``names``, each at its paper's input
    (``zoo.build_at_input``), timed with ``repeats`` forward passes (none when 0);
    ``progress(figures)`` is called after each. One network is in memory at a time."""
    rows = []
    for name in names:
        model, in_shape = zoo.build_at_input(name, input_size, width)
        rows.append(figures(name, model, in_shape, repeats))
        del model
        if progress:
            progress(rows[-1])
    return rows


# --- printing ------------------------------------------------------------------------------------
def shape_text(shape):
    """(64, 112, 112) -> "64x112x112"; (10,) -> "10"."""
    return "x".join(map(str, shape))


def count_text(value):
    """60,000 -> "60K"; 61,100,840 -> "61.1M"; 138,357,544 -> "138M"; 1,582,746,112 -> "1.58G"."""
    for unit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= unit:
            return f"{value / unit:.3g}{suffix}" if value < 100 * unit else f"{value / unit:.0f}{suffix}"
    return str(value)


def format_summary(model, in_shape, title=None):
    """One line per layer (output shape, parameters, multiply-adds, depth), then the totals."""
    rows = layer_rows(model, in_shape)
    width = max(len(r.layer) for r in rows)
    name_width = max(len(r.name) for r in rows)
    lines = [title] if title else []
    lines.append(f"{'layer':<{name_width}}  {'':<{width}}  {'output':>12}  {'parameters':>12}  "
                 f"{'multiply-adds':>15}  {'depth':>5}")
    lines.append(f"{'input':<{name_width}}  {'':<{width}}  {shape_text(in_shape):>12}")
    for r in rows:
        lines.append(f"{r.name:<{name_width}}  {r.layer:<{width}}  {shape_text(r.out_shape):>12}  "
                     f"{r.params:>12,}  {r.multiply_adds:>15,}  {r.depth:>5}")
    total = figures("", model, in_shape)
    lines.append(f"{'total':<{name_width}}  {'':<{width}}  {'':>12}  {total.params:>12,}  "
                 f"{total.multiply_adds:>15,}  {total.depth:>5}")
    lines.append(f"{total.params:,} parameters ({count_text(total.params)}), {total.multiply_adds:,} "
                 f"multiply-adds ({count_text(total.multiply_adds)}) per {shape_text(in_shape)} "
                 f"example, depth {total.depth} (layers with weights on the longest path)")
    return "\n".join(lines)


def name_width(names):
    """The width of the network column for these names."""
    return max([len("network")] + [len(name) for name in names])


def comparison_header(width):
    return (f"{'network':<{width}}  {'input':>11}  {'parameters':>13}  {'multiply-adds':>15}  "
            f"{'depth':>5}  {'forward (batch 1)':>17}")


def comparison_line(row, width):
    """One network's ``NetworkFigures`` as a line of the comparison."""
    seconds = "" if row.seconds is None else f"{row.seconds * 1e3:,.1f} ms"
    return (f"{row.name:<{width}}  {shape_text(row.in_shape):>11}  {row.params:>13,}  "
            f"{row.multiply_adds:>15,}  {row.depth:>5}  {seconds:>17}")


def format_comparison(rows):
    """The networks side by side, one line each."""
    width = name_width([r.name for r in rows])
    return "\n".join([comparison_header(width)] + [comparison_line(r, width) for r in rows])


def plot_comparison(rows, path=None):
    """Bars of parameters and multiply-adds (log scale), and multiply-adds against the measured
    forward time; saved to ``path`` when given. Returns the figure."""
    import matplotlib.pyplot as plt
    names = [r.name for r in rows]
    positions = numpy.arange(len(rows))
    figure, (bars, scatter) = plt.subplots(1, 2, figsize=(11, 4))
    bars.bar(positions - 0.2, [r.params for r in rows], 0.4, label="parameters")
    bars.bar(positions + 0.2, [r.multiply_adds for r in rows], 0.4, label="multiply-adds per image")
    bars.set_yscale("log")
    bars.set_ylim(top=100 * max(max(r.params, r.multiply_adds) for r in rows))   # room for the legend
    bars.set_xticks(positions, names, rotation=45, ha="right")
    bars.legend(loc="upper left", ncol=2, fontsize=8)
    bars.set_title("size and cost at each network's input")
    timed = [r for r in rows if r.seconds is not None]
    scatter.scatter([r.multiply_adds for r in timed], [r.seconds * 1e3 for r in timed])
    scatter.set_xscale("log")
    scatter.set_yscale("log")
    scatter.set_xlabel("multiply-adds per image")
    scatter.set_ylabel("CPU forward time, batch 1 (ms)")
    scatter.set_title("cost against measured time")
    scatter.margins(0.15)                            # room for the labels at the ends
    figure.tight_layout()
    viz.place_labels(scatter, [(r.multiply_adds, r.seconds * 1e3) for r in timed], [r.name for r in timed],
                     fontsize=8)
    if path:
        figure.savefig(path, dpi=100)
    return figure
