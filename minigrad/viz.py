"""Pictures for the lessons: the graph behind a tensor, training curves, image grids.

    from minigrad import viz
    print(viz.to_dot(loss, names={W: "W", b: "b"}))     # Graphviz text
    viz.draw_graph(loss, "graph.png")                     # a picture of it

Matplotlib is imported inside the functions that draw, so ``import minigrad``
stays light; with no screen it draws with the file-only Agg backend. Graphs are
rendered by Graphviz's ``dot`` program when it is installed, otherwise by a
simple layered layout in matplotlib.
"""
import io
import math
import os
import shutil
import subprocess
import sys

import numpy

from . import backend
from .autograd import Tensor, graph_order

LEAF_COLOR = "lightblue"      # tensors that receive a gradient (parameters, inputs)
OUTPUT_COLOR = "khaki"           # names both Graphviz and matplotlib know
OP_COLOR = "lightgray"


# --- the graph ---------------------------------------------------------------------
def _inputs(tensor):
    node = tensor._node
    return [] if node is None else [t for t in node.inputs if t is not None]


def graph_tensors(root):
    """Every tensor ``root`` was computed from (and ``root``), once each, inputs first."""
    return graph_order(root)


def _name_lookup(names):
    """``{id(tensor): name}`` from ``{tensor: name}``, ``{name: tensor}`` or (name, tensor) pairs
    (so ``dict(model.named_parameters())`` works as it is)."""
    if names is None:
        return {}
    pairs = names.items() if hasattr(names, "items") else names
    lookup = {}
    for first, second in pairs:
        tensor, name = (first, second) if isinstance(first, Tensor) else (second, first)
        lookup[id(tensor)] = str(name)
    return lookup


def _describe(tensor):
    shape = "scalar" if tensor.ndim == 0 else str(tuple(tensor.shape))
    return f"{shape} {tensor.dtype}"


def _numbers(array):
    """A short text of a small array's values: '3', '[1 -2.5]'; '' for more than 6 values."""
    array = backend.to_numpy(array)
    if array.size > 6:
        return ""
    if array.size == 1:
        return f"{array.item():.4g}"
    return numpy.array2string(array, separator=" ", formatter={"float_kind": lambda v: f"{v:.4g}"})


def _tensor_label(tensor, name, values=False, gradients=None):
    lines = [] if name is None else [name]
    if values and tensor.size <= 6:
        lines.append(f"value {_numbers(tensor.data)}")
        gradient = (gradients or {}).get(id(tensor), tensor.grad)
        if gradient is not None:
            lines.append(f"grad {_numbers(gradient)}")
    elif tensor.is_leaf and not tensor.requires_grad and tensor.size == 1:
        lines.append(f"{backend.to_numpy(tensor.data).item():g}")   # a constant such as the 2 in x * 2
    lines.append(_describe(tensor))
    return "\n".join(lines)


def _kind(tensor, root):
    """'output', 'leaf' (gets a gradient), 'constant' (leaf without one) or 'intermediate'."""
    if tensor is root:
        return "output"
    if tensor.is_leaf:
        return "leaf" if tensor.requires_grad else "constant"
    return "intermediate"


# --- Graphviz DOT ------------------------------------------------------------------
_DOT_STYLE = {
    "output": f'shape=box, style="rounded,filled", fillcolor={OUTPUT_COLOR}',
    "leaf": f'shape=box, style="rounded,filled", fillcolor={LEAF_COLOR}',
    "constant": 'shape=box, style="rounded,dashed"',
    "intermediate": 'shape=box, style="rounded"',
}


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(tensor, names=None, rankdir="LR", values=False, gradients=None):
    """Graphviz DOT text of the graph that produced ``tensor``.

    Tensors are boxes labelled with their name (from ``names``), shape and dtype:
    leaves that receive a gradient are blue, constants dashed, the output yellow.
    Ops are grey ellipses labelled with the op's name. Edges follow the data:
    input -> op -> output. ``values=True`` adds each small tensor's value and
    gradient (its ``.grad``, or the array ``gradients`` maps its ``id`` to: what
    ``Tensor.backward_steps`` has delivered so far).
    """
    lookup = _name_lookup(names)
    tensors = graph_tensors(tensor)
    ids = {id(t): f"t{i}" for i, t in enumerate(tensors)}
    lines = ["digraph minigrad {", f"  rankdir={rankdir};",
             '  node [fontname="Helvetica", fontsize=10];']
    for t in tensors:
        label = _quote(_tensor_label(t, lookup.get(id(t)), values, gradients))
        lines.append(f"  {ids[id(t)]} [label={label}, {_DOT_STYLE[_kind(t, tensor)]}];")
    for t in tensors:
        if t._node is None:
            continue
        op = "op_" + ids[id(t)]
        lines.append(f'  {op} [label={_quote(t._node.name)}, shape=ellipse, style=filled, '
                     f'fillcolor={OP_COLOR}];')
        lines.extend(f"  {ids[id(parent)]} -> {op};" for parent in _inputs(t))
        lines.append(f"  {op} -> {ids[id(t)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _render_with_dot(dot_text, image_format):
    """Image bytes from Graphviz's ``dot`` program."""
    result = subprocess.run(["dot", f"-T{image_format}"], input=dot_text.encode(),
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


# --- drawing ---------------------------------------------------------------------------
def _pyplot():
    """matplotlib.pyplot, imported on first use; the Agg backend when there is no screen."""
    import matplotlib
    no_screen = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    chosen = os.environ.get("MPLBACKEND") or "matplotlib.pyplot" in sys.modules  # e.g. Jupyter
    if no_screen and not chosen:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _finish(fig, path):
    """Save and close ``fig`` when a path is given (return the path), else return ``fig``."""
    if path is None:
        return fig
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def draw_graph(tensor, path=None, names=None, engine="auto", values=False, gradients=None):
    """Draw the graph behind ``tensor`` (``values``, ``gradients``: as in ``to_dot``).

    ``engine``: ``"dot"`` (Graphviz's program), ``"matplotlib"`` (a layered layout),
    or ``"auto"``: dot when installed. With ``path`` the picture is written there (the
    format follows the suffix, PNG by default) and the path is returned; without it a
    matplotlib figure is returned, for a notebook.
    """
    if engine not in ("auto", "dot", "matplotlib"):
        raise ValueError(f"draw_graph: engine must be 'auto', 'dot' or 'matplotlib', got {engine!r}")
    use_dot = engine == "dot" or (engine == "auto" and shutil.which("dot") is not None)
    if not use_dot:
        return _finish(_draw_layers(tensor, _name_lookup(names), values, gradients), path)
    suffix = os.path.splitext(str(path))[1].lstrip(".").lower() if path is not None else ""
    image = _render_with_dot(to_dot(tensor, names, values=values, gradients=gradients), suffix or "png")
    if path is not None:
        with open(path, "wb") as file:
            file.write(image)
        return path
    plt = _pyplot()
    picture = plt.imread(io.BytesIO(image), format="png")
    fig, ax = plt.subplots(figsize=(picture.shape[1] / 100, picture.shape[0] / 100))
    ax.imshow(picture)
    ax.axis("off")
    return fig


def _layers(tensors):
    """Column of every tensor and op: an op sits one column right of its furthest input,
    its output one further; a leaf sits just left of the first op that uses it."""
    column = {}
    for t in tensors:                       # inputs come before outputs
        parents = _inputs(t)
        column[id(t)] = 0 if not parents else 2 + max(column[id(p)] for p in parents)
    first_use = {}
    for t in tensors:
        for parent in _inputs(t):
            if parent.is_leaf:
                first_use[id(parent)] = min(first_use.get(id(parent), column[id(t)]), column[id(t)])
    for key, user_column in first_use.items():   # move each leaf next to its first user
        column[key] = user_column - 2
    return column


def _draw_layers(root, lookup, values=False, gradients=None):
    """The graph as a matplotlib figure: columns left to right, boxes and arrows."""
    plt = _pyplot()
    tensors = graph_tensors(root)
    column = _layers(tensors)
    # Boxes: every tensor, and one op box (column - 1) for every computed tensor.
    boxes = [(id(t), column[id(t)], _tensor_label(t, lookup.get(id(t)), values, gradients), _kind(t, root))
             for t in tensors]
    boxes += [(("op", id(t)), column[id(t)] - 1, t._node.name, "op")
              for t in tensors if t._node is not None]
    rows = {}
    position = {}
    for key, col, _, _ in boxes:
        rows.setdefault(col, []).append(key)
    for col, keys in rows.items():
        for row, key in enumerate(keys):
            position[key] = (col, (len(keys) - 1) / 2 - row)
    height = max(len(keys) for keys in rows.values())
    fig, ax = plt.subplots(figsize=(1.6 * (max(rows) + 1) + 1, 0.9 * height + 1))
    for t in tensors:
        if t._node is None:
            continue
        for parent in _inputs(t):
            _arrow(ax, position[id(parent)], position[("op", id(t))])
        _arrow(ax, position[("op", id(t))], position[id(t)])
    colors = {"output": OUTPUT_COLOR, "leaf": LEAF_COLOR, "constant": "white",
              "intermediate": "white", "op": OP_COLOR}
    for key, _, label, kind in boxes:
        x, y = position[key]
        style = "round,pad=0.3" if kind != "op" else "ellipse,pad=0.2"
        ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=2,
                bbox=dict(boxstyle=style, facecolor=colors[kind],
                          linestyle="--" if kind == "constant" else "-"))
    ax.set_xlim(-0.7, max(rows) + 0.7)
    ax.set_ylim(-height / 2, height / 2)
    ax.axis("off")
    return fig


def _arrow(ax, start, end):
    bend = 0.0
    if end[0] - start[0] > 1.5:            # arc around the boxes it skips, away from the middle
        bend = -0.25 if start[1] >= end[1] else 0.25
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops=dict(arrowstyle="->", color="dimgray", shrinkA=18, shrinkB=18,
                                connectionstyle=f"arc3,rad={bend}"))


# --- lesson helpers ------------------------------------------------------------------
def _as_columns(history):
    """A dict of lists from a dict of lists or a list of dicts (one dict per epoch)."""
    if hasattr(history, "items"):
        return {key: list(values) for key, values in history.items()}
    columns = {}
    for row in history:
        for key in row:
            columns.setdefault(key, [None] * len(history))
    for i, row in enumerate(history):
        for key, value in row.items():
            columns[key][i] = value
    return columns


def plot_curves(history, path=None, x_key=None):
    """Loss curves on the left, everything else (accuracy, ...) on the right.

    ``history``: ``[{"epoch": 1, "loss": 2.3, "val_accuracy": 0.1}, ...]`` or
    ``{"loss": [...], "val_accuracy": [...]}``. The x axis is ``x_key``, else an
    ``epoch`` or ``step`` column, else 1, 2, 3, ...
    """
    columns = _as_columns(history)
    x_key = x_key or next((k for k in ("epoch", "step") if k in columns), None)
    length = max((len(v) for v in columns.values()), default=0)
    xs = columns.pop(x_key) if x_key else list(range(1, length + 1))
    plt = _pyplot()
    fig, (loss_ax, other_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, values in columns.items():
        points = [(x, v) for x, v in zip(xs, values) if isinstance(v, (int, float, numpy.number))]
        if not points:
            continue
        ax = loss_ax if "loss" in key.lower() else other_ax
        ax.plot(*zip(*points), marker="o", markersize=3, label=key)
    for ax, title in ((loss_ax, "loss"), (other_ax, "metrics")):
        ax.set_title(title)
        ax.set_xlabel(x_key or "epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return _finish(fig, path)


def _as_images(images):
    """(N, H, W) or (N, H, W, C) NumPy images from NumPy/CuPy arrays or Tensors, any layout."""
    array = backend.to_numpy(images.data if isinstance(images, Tensor) else images)
    array = numpy.asarray(array, dtype=numpy.float64)
    if array.ndim == 4 and array.shape[1] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(0, 2, 3, 1)          # (N, C, H, W) -> (N, H, W, C)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (3, 4):
        raise ValueError(f"image_grid: expected images of shape (N, H, W), (N, C, H, W) "
                         f"or (N, H, W, C), got {array.shape}")
    return array


def image_grid(images, labels=None, path=None, columns=None):
    """Show a batch of images in a grid, each scaled to [0, 1] on its own, with its label."""
    array = _as_images(images)
    count = len(array)
    columns = columns or min(count, 8)
    rows = max(1, math.ceil(count / columns))
    plt = _pyplot()
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns, 1.6 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        image = array[i]
        low, high = image.min(), image.max()
        image = (image - low) / (high - low) if high > low else numpy.zeros_like(image)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=9)
    return _finish(fig, path)
