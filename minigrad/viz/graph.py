"""The graph behind a tensor, drawn: Graphviz DOT text (``to_dot``) and a picture
(``draw_graph``), by Graphviz's ``dot`` program when it is installed, otherwise by a layered
layout in matplotlib (inputs at the bottom, the output on top)."""
import math
import os
import shutil
import subprocess
from typing import NamedTuple

from .. import backend
from ..autograd import Tensor, graph_order
from .frames import SMALL, edge_text, gradient_lines, inputs_of, short_numbers
from .plots import finish, new_figure, png_array

LEAF_COLOR = "lightblue"      # tensors that receive a gradient (parameters, inputs)
OUTPUT_COLOR = "khaki"           # names both Graphviz and matplotlib know
OP_COLOR = "lightgray"
FINISHED_COLOR = "orange"        # a backward step: the tensor whose gradient just became complete
FINISHED_OP_COLOR = "gold"       # ... and the op whose backward sends it on
GRADIENT_COLOR = "red"           # ... and the gradients it sends


# --- the graph ---------------------------------------------------------------------
def graph_tensors(root):
    """Every tensor ``root`` was computed from (and ``root``), once each, inputs first."""
    return graph_order(root)


def name_lookup(names):
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


def _tensor_label(tensor, name, values=False, gradients=None, frame=None):
    """A tensor's box: its name, its value and gradient when small, its shape and dtype.

    Without a ``frame`` the gradient is ``gradients[id(tensor)]`` or ``tensor.grad``; in a
    frame of a backward walk it is what the walk has delivered by that step."""
    if frame is not None:             # compact: the frames of a backward walk are many
        lines = [_describe(tensor) if name is None else f"{name}  {_describe(tensor)}"]
        if values and tensor.size <= SMALL:
            lines.append(f"value {short_numbers(tensor.data)}")
        return "\n".join(lines + gradient_lines(tensor, frame, values))
    lines = [] if name is None else [name]
    if values and tensor.size <= SMALL:
        lines.append(f"value {short_numbers(tensor.data)}")
    elif tensor.is_leaf and not tensor.requires_grad and tensor.size == 1:
        lines.append(f"{backend.to_numpy(tensor.data).item():g}")   # a constant such as the 2 in x * 2
    if values and tensor.size <= SMALL:
        gradient = (gradients or {}).get(id(tensor), tensor.grad)
        if gradient is not None:
            lines.append(f"grad {short_numbers(gradient)}")
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
    "finished": f'shape=box, style="rounded,filled", fillcolor={FINISHED_COLOR}, penwidth=2',
}


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(tensor, names=None, rankdir="LR", values=False, gradients=None, frame=None):
    """Graphviz DOT text of the graph that produced ``tensor``.

    Tensors are boxes labelled with their name (from ``names``), shape and dtype:
    leaves that receive a gradient are blue, constants dashed, the output yellow.
    Ops are grey ellipses labelled with the op's name. Edges follow the data:
    input -> op -> output, one edge per input (``h * h`` has two from h). ``values=True``
    adds each small tensor's value and gradient (its ``.grad``, or the array ``gradients``
    maps its ``id`` to). With a ``frame`` of ``backward_frames`` the gradients are those
    delivered by that step, the tensor it finished is orange and the edges its op's
    backward sent gradients along are red, labelled with the local derivative and the
    gradient sent.
    """
    lookup = name_lookup(names)
    tensors = graph_tensors(tensor)
    ids = {id(t): f"t{i}" for i, t in enumerate(tensors)}
    active = _active_edges(frame)
    lines = ["digraph minigrad {", f"  rankdir={rankdir};",
             '  node [fontname="Helvetica", fontsize=10];']
    for t in tensors:
        label = _quote(_tensor_label(t, lookup.get(id(t)), values, gradients, frame))
        kind = "finished" if frame is not None and t is frame.tensor else _kind(t, tensor)
        lines.append(f"  {ids[id(t)]} [label={label}, {_DOT_STYLE[kind]}];")
    for t in tensors:
        if t.node is None:
            continue
        op = "op_" + ids[id(t)]
        color = FINISHED_OP_COLOR if frame is not None and t is frame.tensor else OP_COLOR
        lines.append(f'  {op} [label={_quote(t.node.name)}, shape=ellipse, style=filled, '
                     f'fillcolor={color}];')
        for slot, parent in _input_slots(t):
            edge = active.get((id(t), slot))
            style = "" if edge is None else (f" [dir=back, color={GRADIENT_COLOR}, fontcolor={GRADIENT_COLOR}, "
                                             f"label={_quote(edge_text(edge, t))}]")
            lines.append(f"  {ids[id(parent)]} -> {op}{style};")
        lines.append(f"  {op} -> {ids[id(t)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _input_slots(tensor):
    """(position, input) for each input of the op that made ``tensor``; a repeated input repeats."""
    return [(slot, parent) for slot, parent in enumerate(tensor.node.inputs) if parent is not None]


def _active_edges(frame):
    """(id(output), slot) -> EdgeGradient, for the edges the frame's op sent gradients along."""
    if frame is None:
        return {}
    return {(id(frame.tensor), edge.slot): edge for edge in frame.sends}


def render_with_dot(dot_text, image_format):
    """Image bytes from Graphviz's ``dot`` program."""
    result = subprocess.run(["dot", f"-T{image_format}"], input=dot_text.encode(),
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


# --- drawing ---------------------------------------------------------------------------
def use_dot(engine, caller):
    if engine not in ("auto", "dot", "matplotlib"):
        raise ValueError(f"{caller}: engine must be 'auto', 'dot' or 'matplotlib', got {engine!r}")
    return engine == "dot" or (engine == "auto" and shutil.which("dot") is not None)


def draw_graph(tensor, path=None, names=None, engine="auto", values=False, gradients=None, title=None):
    """Draw the graph behind ``tensor`` (``values``, ``gradients``: as in ``to_dot``).

    ``engine``: ``"dot"`` (Graphviz's program), ``"matplotlib"`` (a layered layout),
    or ``"auto"``: dot when installed. With ``path`` the picture is written there (the
    format follows the suffix, PNG by default) and the path is returned; without it a
    matplotlib figure is returned, for a notebook.
    """
    if not use_dot(engine, "draw_graph"):
        layout = graph_layout(tensor)
        fig, axes = new_figure(layout_size(layout))
        draw_layout(axes[0, 0], layout, name_lookup(names), values, gradients, title=title)
        return finish(fig, path)
    suffix = os.path.splitext(str(path))[1].lstrip(".").lower() if path is not None else ""
    image = render_with_dot(to_dot(tensor, names, values=values, gradients=gradients), suffix or "png")
    if path is not None:
        with open(path, "wb") as file:
            file.write(image)
        return path
    return _image_figure(image, title)


def _image_figure(image, title=None):
    """A figure of PNG bytes (from dot), with its title."""
    picture = png_array(image)
    fig, axes = new_figure((picture.shape[1] / 100, picture.shape[0] / 100 + 0.4))
    axes[0, 0].imshow(picture)
    axes[0, 0].axis("off")
    if title:
        axes[0, 0].set_title(title, fontsize=10, loc="left")
    return fig


class _Layout(NamedTuple):
    root: Tensor
    tensors: list        # graph_tensors(root): inputs before outputs
    position: dict       # id(tensor) or ("op", id(tensor)) -> (x, level): inputs at the bottom
    edges: list          # (source key, target key, slot or None for an op's output, bend)


X_INCHES, LEVEL_INCHES = 2.3, 0.95    # the space of one box across, and of one level up
OP_BELOW = 0.65                       # levels between an op and its output
TWIN_OFFSET, SKIP_OFFSET = 0.25, 0.75  # inches between an arc's middle and its chord's


def _levels(tensors):
    """Level of every tensor and op, 0 at the bottom: an op sits one level above its highest
    input, its output one further; a leaf sits just below the first op that uses it."""
    level = {}
    for t in tensors:                       # inputs come before outputs
        parents = inputs_of(t)
        level[id(t)] = 0 if not parents else 2 + max(level[id(p)] for p in parents)
    first_use = {}
    for t in tensors:
        for parent in inputs_of(t):
            if parent.is_leaf:
                first_use[id(parent)] = min(first_use.get(id(parent), level[id(t)]), level[id(t)])
    for key, user_level in first_use.items():   # move each leaf next to its first user
        level[key] = user_level - 2
    return level


def graph_layout(root):
    """Where every tensor and op goes, and every edge: one per input of each op, so an input
    used twice by one op (``h * h``) gets two edges, bent apart."""
    tensors = graph_tensors(root)
    level = _levels(tensors)
    keys = [(id(t), level[id(t)]) for t in tensors]
    keys += [(("op", id(t)), level[id(t)] - 1) for t in tensors if t.node is not None]
    rows = {}
    for key, at in keys:
        rows.setdefault(at, []).append(key)
    # An op sits nearer its output than its inputs: the room below it is for the labels of
    # the gradients it sends down.
    height = lambda key, at: at + 1 - OP_BELOW if isinstance(key, tuple) else at
    position = {key: (place - (len(row) - 1) / 2, height(key, at)) for at, row in rows.items()
                for place, key in enumerate(row)}
    edges = []
    for t in tensors:
        if t.node is None:
            continue
        op, slots = ("op", id(t)), _input_slots(t)
        for slot, parent in slots:
            twins = [s for s, p in slots if p is parent]
            bend = _bend(position[id(parent)], position[op], twins.index(slot), len(twins))
            edges.append((id(parent), op, slot, bend))
        edges.append((op, id(t), None, 0.0))
    return _Layout(root, tensors, position, edges)


def _bend(start, end, twin, twins):
    """arc3's ``rad`` for an edge: the arcs of an input used ``twins`` times by one op bend
    apart; an edge that skips levels arcs around the boxes between, away from the middle.
    (An arc's middle lies rad/2 times the chord's length beside the chord.)"""
    length = math.hypot((end[0] - start[0]) * X_INCHES, (end[1] - start[1]) * LEVEL_INCHES)
    if twins > 1:
        return 2 * TWIN_OFFSET / length * (2 * twin - (twins - 1)) / (twins - 1)
    if end[1] - start[1] > 1.5:
        side = 1 if start[0] + end[0] >= 0 else -1
        return side * min(0.8, 2 * SKIP_OFFSET / length)
    return 0.0


def layout_size(layout):
    xs = [x for x, _ in layout.position.values()]
    levels = max(at for _, at in layout.position.values()) + 1
    return X_INCHES * (max(xs) - min(xs) + 1) + 1.0, LEVEL_INCHES * levels + 0.3


def draw_layout(ax, layout, lookup, values=False, gradients=None, frame=None, title=None):
    """Draw the layout on ``ax``: boxes, one arrow per edge; with a ``frame``, its state and
    its op's gradients flowing back (red arrows from the op down to its inputs, labelled)."""
    xs = [x for x, _ in layout.position.values()]
    levels = max(at for _, at in layout.position.values()) + 1
    ax.set_xlim(min(xs) - 0.5 - 0.5 / X_INCHES, max(xs) + 0.5 + 0.5 / X_INCHES)
    ax.set_ylim(-0.5, levels - 0.5)
    ax.axis("off")
    index = {id(t): i for i, t in enumerate(layout.tensors)}
    gid = lambda key: f"op {index[key[1]]}" if isinstance(key, tuple) else f"tensor {index[key]}"
    boxes = _draw_boxes(ax, layout, lookup, values, gradients, frame, gid)
    active = _active_edges(frame)
    for source, target, slot, bend in layout.edges:
        start, end = layout.position[source], layout.position[target]
        edge = active.get((target[1], slot)) if slot is not None else None
        if edge is None:
            _arrow(ax, start, end, bend, boxes[source], boxes[target],
                   gid=f"edge {gid(source)}->{gid(target)}" + (f" input {slot}" if slot is not None else ""))
            continue
        _arrow(ax, end, start, -bend, boxes[target], boxes[source], color=GRADIENT_COLOR, width=1.8,
               gid=f"gradient {gid(target)}->{gid(source)} input {slot}")
        _edge_label(ax, end, start, -bend, edge_text(edge, frame.tensor))
    if title:
        ax.set_title(title, fontsize=10, loc="left")


def _draw_boxes(ax, layout, lookup, values, gradients, frame, gid):
    """A box for every tensor and an ellipse for every op; {key: the box's outline}."""
    colors = {"output": OUTPUT_COLOR, "leaf": LEAF_COLOR, "constant": "white", "intermediate": "white"}
    boxes = {}
    for t in layout.tensors:
        kind = _kind(t, layout.root)
        finished = frame is not None and t is frame.tensor
        label = _tensor_label(t, lookup.get(id(t)), values, gradients, frame)
        boxes[id(t)] = _box(ax, layout.position[id(t)], label, FINISHED_COLOR if finished else colors[kind],
                            "round,pad=0.3", gid(id(t)), dashed=kind == "constant", bold=finished)
        if t.node is not None:
            key = ("op", id(t))
            boxes[key] = _box(ax, layout.position[key], t.node.name,
                              FINISHED_OP_COLOR if finished else OP_COLOR, "ellipse,pad=0.2", gid(key),
                              bold=finished)
    return boxes


def _box(ax, position, label, color, style, gid, dashed=False, bold=False):
    text = ax.text(*position, label, ha="center", va="center", fontsize=8, zorder=2, gid=gid,
                   bbox=dict(boxstyle=style, facecolor=color, linestyle="--" if dashed else "-",
                             linewidth=2 if bold else 1))
    return text.get_bbox_patch()


def _arrow(ax, start, end, bend, start_box, end_box, color="dimgray", width=1.0, gid=None):
    """An arrow from box to box, cut where it leaves the first and enters the second (drawn
    above the boxes, after them, so that their outlines are in place)."""
    ax.annotate("", xy=end, xytext=start, zorder=3, gid=gid,
                arrowprops=dict(arrowstyle="->", color=color, linewidth=width, patchA=start_box,
                                patchB=end_box, shrinkA=1, shrinkB=1, connectionstyle=f"arc3,rad={bend}"))


def _edge_label(ax, start, end, bend, text):
    """``text`` beside the middle of the arc from start to end, on the side it bends to (the
    right of a straight edge), so that the labels of neighbouring edges do not overlap."""
    x, y = _arc_middle(ax, start, end, bend)
    chord_x = (start[0] + end[0]) / 2
    left = x < chord_x - 1e-9 or (abs(x - chord_x) < 1e-9 and end[0] < start[0])
    ax.annotate(text, (x, y), xytext=(-5 if left else 5, 0), textcoords="offset points",
                ha="right" if left else "left", va="center", fontsize=7, color=GRADIENT_COLOR, zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.85))


def _arc_middle(ax, start, end, bend):
    """The middle of the arc that ``arc3,rad=bend`` draws from start to end, in data coordinates.

    arc3 works on the screen: a quadratic Bezier curve whose control point is the chord's
    middle moved by ``bend`` times the chord turned a quarter (dy, -dx); a quadratic Bezier
    passes its middle halfway between the chord's middle and the control point."""
    (x1, y1), (x2, y2) = ax.transData.transform([start, end])
    middle = ((x1 + x2) / 2 + bend * (y2 - y1) / 2, (y1 + y2) / 2 - bend * (x2 - x1) / 2)
    return ax.transData.inverted().transform(middle)
