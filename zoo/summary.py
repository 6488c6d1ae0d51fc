"""The zoo's networks side by side.

    from zoo import summary
    rows = summary.compare(["lenet5", "googlenet"])       # NetworkFigures, each timed
    print(summary.format_comparison(rows))

Each network is counted layer by layer by ``minigrad.summary`` (``format_summary(model,
in_shape)`` prints its table): its layers are its top-level children, plain Sequentials
opened up, each reporting its own output shape, multiply-adds and depth (GoogLeNet without
its auxiliary heads runs one layer after another too). The comparison (``compare``, printed
by ``python -m zoo``) measures, per network, ``NetworkFigures``: parameters, multiply-adds
and depth, the totals of those rows, and the median CPU time of a forward pass at batch 1
(``time_forward``: evaluation mode, no graph recorded, after one warm-up pass).
"""
from typing import NamedTuple, Optional, Tuple

import numpy

import zoo
from minigrad import Tensor, bench, no_grad, viz
from minigrad.summary import layer_rows, shape_text


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
