"""Pictures for the lessons: the graph behind a tensor, backward step by step, training
curves, image grids, weights.

    from minigrad import viz
    print(viz.to_dot(loss, names={W: "W", b: "b"}))     # Graphviz text
    viz.draw_graph(loss, "graph.png")                     # a picture of it
    viz.step_through(loss, names={W: "W", b: "b"})        # backward, one picture a step

Matplotlib is imported inside the functions that draw, so ``import minigrad``
stays light; with no screen it draws with the file-only Agg backend. Graphs are
rendered by Graphviz's ``dot`` program when it is installed, otherwise by a
layered layout in matplotlib (inputs at the bottom, the output on top).
"""
import io
import math
import os
import shutil
import subprocess
import sys
from typing import NamedTuple

import numpy

from . import backend
from .autograd import Tensor, graph_order

LEAF_COLOR = "lightblue"      # tensors that receive a gradient (parameters, inputs)
OUTPUT_COLOR = "khaki"           # names both Graphviz and matplotlib know
OP_COLOR = "lightgray"
FINISHED_COLOR = "orange"        # a backward step: the tensor whose gradient just became complete
FINISHED_OP_COLOR = "gold"       # ... and the op whose backward sends it on
GRADIENT_COLOR = "red"           # ... and the gradients it sends
SMALL = 6                        # tensors of at most this many elements show their values


# --- the graph ---------------------------------------------------------------------
def _inputs(tensor):
    node = tensor.node
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
    if array.size > SMALL:
        return ""
    if array.size == 1:
        return f"{array.item():.4g}"
    return numpy.array2string(array, separator=" ", formatter={"float_kind": lambda v: f"{v:.4g}"})


def _tensor_label(tensor, name, values=False, gradients=None, frame=None):
    """A tensor's box: its name, its value and gradient when small, its shape and dtype.

    Without a ``frame`` the gradient is ``gradients[id(tensor)]`` or ``tensor.grad``; in a
    frame of a backward walk it is what the walk has delivered by that step."""
    if frame is not None:             # compact: the frames of a backward walk are many
        lines = [_describe(tensor) if name is None else f"{name}  {_describe(tensor)}"]
        if values and tensor.size <= SMALL:
            lines.append(f"value {_numbers(tensor.data)}")
        return "\n".join(lines + _frame_gradient_lines(tensor, frame, values))
    lines = [] if name is None else [name]
    if values and tensor.size <= SMALL:
        lines.append(f"value {_numbers(tensor.data)}")
    elif tensor.is_leaf and not tensor.requires_grad and tensor.size == 1:
        lines.append(f"{backend.to_numpy(tensor.data).item():g}")   # a constant such as the 2 in x * 2
    if values and tensor.size <= SMALL:
        gradient = (gradients or {}).get(id(tensor), tensor.grad)
        if gradient is not None:
            lines.append(f"grad {_numbers(gradient)}")
    lines.append(_describe(tensor))
    return "\n".join(lines)


def _frame_gradient_lines(tensor, frame, values):
    """'grad ...' once a tensor's gradient is complete, 'so far ... (1 of 2 uses)' while it waits."""
    key = id(tensor)
    show = values and tensor.size <= SMALL
    if key in frame.complete:
        return [f"grad {_numbers(frame.complete[key])}" if show else "grad complete"]
    if key in frame.partial:
        total, arrived, uses = frame.partial[key]
        line = f"so far {_numbers(total)}" if show else "so far"
        return [line + (f", {arrived} of {uses} uses" if uses > 1 or not show else "")]
    return []


def _kind(tensor, root):
    """'output', 'leaf' (gets a gradient), 'constant' (leaf without one) or 'intermediate'."""
    if tensor is root:
        return "output"
    if tensor.is_leaf:
        return "leaf" if tensor.requires_grad else "constant"
    return "intermediate"


# --- backward, one step at a time ---------------------------------------------------------
class EdgeGradient(NamedTuple):
    """What an op's backward sent along one input edge."""
    slot: int            # the input's position among the op's inputs
    input: Tensor
    local: object        # the local derivative d output / d input as a Jacobian matrix of shape
                         # (output size, input size), or None when either has over SMALL elements
    sent: object         # the gradient sent: the upstream gradient times the local derivative


class BackwardFrame(NamedTuple):
    """One step of ``Tensor.backward_steps``: the tensor whose gradient became complete,
    what its op sent on to its inputs, and the state of the walk after the step."""
    step: int            # 1, 2, ...
    tensor: Tensor       # finished at this step
    gradient: object     # its complete gradient
    sends: tuple         # EdgeGradient for each input of its op that wants a gradient; () for a leaf
    complete: dict       # id(tensor) -> gradient, for every tensor finished so far (this one too)
    partial: dict        # id(tensor) -> (sum so far, uses delivered, uses in all), tensors still waiting


def backward_frames(root, grad=None):
    """Run ``root.backward(grad)`` one step at a time and record each step as a BackwardFrame.

    This IS a backward pass: the leaves' ``.grad`` accumulate as with ``backward()``. Each
    op's backward is also called again on the side (it is a pure function of the upstream
    gradient and the cache) to record what it sent along each input edge, and, for small
    tensors, the local derivative: backward with a one-hot upstream gradient e_j returns row
    j of the Jacobian d output / d input.
    """
    uses = _uses(root)
    complete, arrived, frames = {}, {}, []
    for step, (tensor, gradient) in enumerate(root.backward_steps(grad), start=1):
        complete[id(tensor)] = gradient
        arrived.pop(id(tensor), None)
        sends = _sends(tensor, gradient)
        for edge in sends:
            total, count = arrived.get(id(edge.input), (None, 0))
            total = edge.sent if total is None else total + edge.sent
            arrived[id(edge.input)] = (total, count + 1)
        partial = {key: (total, count, uses[key]) for key, (total, count) in arrived.items()}
        frames.append(BackwardFrame(step, tensor, gradient, tuple(sends), dict(complete), partial))
    return frames


def _uses(root):
    """id(tensor) -> how many op inputs it is, among the ops backward will run."""
    uses = {}
    for tensor in graph_order(root, follow=lambda t: t.requires_grad):
        for parent in _inputs(tensor):
            if parent.requires_grad:
                uses[id(parent)] = uses.get(id(parent), 0) + 1
    return uses


def _sends(tensor, gradient):
    node = tensor.node
    if node is None:
        return []
    sends = []
    for slot, (parent, sent) in enumerate(zip(node.inputs, node.backward(gradient, node.cache))):
        if parent is not None and sent is not None and parent.requires_grad:
            sends.append(EdgeGradient(slot, parent, _jacobian(tensor, slot, parent), sent))
    return sends


def _jacobian(tensor, slot, parent):
    """d tensor / d parent, (tensor.size, parent.size), from one backward per output element."""
    if tensor.size > SMALL or parent.size > SMALL:
        return None
    xp = backend.get_array_module(tensor.data)
    rows = []
    for j in range(tensor.size):
        one_hot = xp.zeros(tensor.size, dtype=tensor.dtype)
        one_hot[j] = 1
        row = tensor.node.backward(one_hot.reshape(tensor.shape), tensor.node.cache)[slot]
        rows.append(backend.to_numpy(row).reshape(-1))
    return numpy.stack(rows)


def _local_text(edge, output):
    """The local derivative of an edge in a few characters."""
    jacobian = edge.local
    if jacobian is None:
        return ""
    outputs, inputs = jacobian.shape
    if outputs == inputs and numpy.array_equal(jacobian, numpy.diag(numpy.diag(jacobian))):
        return f"local ×{_numbers(numpy.diag(jacobian).reshape(edge.input.shape))}"   # elementwise
    if outputs == 1:
        return f"local ×{_numbers(jacobian.reshape(edge.input.shape))}"
    if inputs == 1:
        return f"local ×{_numbers(jacobian.reshape(output.shape))}, summed"
    return f"local: a {outputs}x{inputs} Jacobian"


def _edge_text(edge, output):
    sent = _numbers(edge.sent) if numpy.size(edge.sent) <= SMALL else f"a {tuple(numpy.shape(edge.sent))} gradient"
    return "\n".join(line for line in (_local_text(edge, output), f"sends {sent}") if line)


def frame_title(frame, count, lookup=None):
    """'step 3 of 6: h has its whole gradient;\nadd's backward sends it to 2 inputs'."""
    lookup = lookup or {}
    tensor = frame.tensor
    name = lookup.get(id(tensor)) or ("a leaf" if tensor.is_leaf else f"the output of {tensor.node.name}")
    text = f"step {frame.step} of {count}: {name} has its whole gradient;\n"
    if tensor.node is None:
        return text + "a leaf: it goes into .grad"
    inputs = len(frame.sends)
    return text + f"{tensor.node.name}'s backward sends it to {inputs} input{'s' * (inputs != 1)}"


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
    lookup = _name_lookup(names)
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
                                             f"label={_quote(_edge_text(edge, t))}]")
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


def _figure(figsize, rows=1, columns=1, pyplot=True):
    """(figure, 2-D array of axes). ``pyplot=False`` makes a figure pyplot does not know,
    which a notebook does not show by itself (for pictures that are shown another way)."""
    if pyplot:
        return _pyplot().subplots(rows, columns, figsize=figsize, squeeze=False)
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, columns, squeeze=False)


def _finish(fig, path):
    """Save and close ``fig`` when a path is given (return the path), else return ``fig``."""
    if path is None:
        return fig
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _use_dot(engine, caller):
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
    if not _use_dot(engine, "draw_graph"):
        layout = _layout(tensor)
        fig, axes = _figure(_layout_size(layout))
        _draw_on(axes[0, 0], layout, _name_lookup(names), values, gradients, title=title)
        return _finish(fig, path)
    suffix = os.path.splitext(str(path))[1].lstrip(".").lower() if path is not None else ""
    image = _render_with_dot(to_dot(tensor, names, values=values, gradients=gradients), suffix or "png")
    if path is not None:
        with open(path, "wb") as file:
            file.write(image)
        return path
    return _finish(_image_figure([image], [title]), None)


def _image_figure(images, titles, pyplot=True):
    """PNG images (from dot) one below the other, each with its title."""
    from matplotlib.image import imread
    pictures = [imread(io.BytesIO(image), format="png") for image in images]
    width = max(p.shape[1] for p in pictures) / 100
    fig, axes = _figure((width, sum(p.shape[0] for p in pictures) / 100 + 0.4 * len(pictures)),
                        rows=len(pictures), pyplot=pyplot)
    for ax, picture, title in zip(axes[:, 0], pictures, titles):
        ax.imshow(picture)
        ax.axis("off")
        if title:
            ax.set_title(title, fontsize=10, loc="left")
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
        parents = _inputs(t)
        level[id(t)] = 0 if not parents else 2 + max(level[id(p)] for p in parents)
    first_use = {}
    for t in tensors:
        for parent in _inputs(t):
            if parent.is_leaf:
                first_use[id(parent)] = min(first_use.get(id(parent), level[id(t)]), level[id(t)])
    for key, user_level in first_use.items():   # move each leaf next to its first user
        level[key] = user_level - 2
    return level


def _layout(root):
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


def _layout_size(layout):
    xs = [x for x, _ in layout.position.values()]
    levels = max(at for _, at in layout.position.values()) + 1
    return X_INCHES * (max(xs) - min(xs) + 1) + 1.0, LEVEL_INCHES * levels + 0.3


def _draw_on(ax, layout, lookup, values=False, gradients=None, frame=None, title=None):
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
        _edge_label(ax, end, start, -bend, _edge_text(edge, frame.tensor))
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


# --- the stepper --------------------------------------------------------------------------------
def step_through(root, names=None, grad=None, engine="auto"):
    """Run ``root.backward(grad)`` one step at a time and show each step as a picture.

    Returns a BackwardStepper. In Jupyter with ipywidgets it shows as a slider over the
    steps (with a play button); where widgets cannot be shown (ipywidgets missing, or a
    front end without the widget manager) the same output shows every step's picture, one
    below the other. The leaves' ``.grad`` accumulate as with ``backward()``.
    """
    return BackwardStepper(root, backward_frames(root, grad), names, engine)


class BackwardStepper:
    """The frames of a backward walk (``backward_frames``) as pictures."""

    def __init__(self, root, frames, names=None, engine="auto"):
        self.root, self.frames, self.names, self.lookup = root, list(frames), names, _name_lookup(names)
        self.use_dot = _use_dot(engine, "step_through")
        self._layout = None if self.use_dot else _layout(root)
        self._pngs = {}

    def __len__(self):
        return len(self.frames)

    def __repr__(self):
        return f"BackwardStepper: {len(self)} steps of backward()"

    def title(self, step):
        return frame_title(self.frames[step - 1], len(self), self.lookup)

    def figure(self, step, pyplot=True):
        """A matplotlib figure of step ``step`` (1 is the first)."""
        if self.use_dot:
            return _image_figure([self.png(step)], [None], pyplot=pyplot)
        fig, axes = _figure(_layout_size(self._layout), pyplot=pyplot)
        _draw_on(axes[0, 0], self._layout, self.lookup, values=True, frame=self.frames[step - 1],
                 title=self.title(step))
        return fig

    def png(self, step):
        """PNG bytes of step ``step``, drawn once."""
        if step not in self._pngs:
            if self.use_dot:
                dot = to_dot(self.root, self.names, rankdir="BT", values=True, frame=self.frames[step - 1])
                self._pngs[step] = _render_with_dot(dot, "png")
            else:
                self._pngs[step] = _png(self.figure(step, pyplot=False))
        return self._pngs[step]

    def grid(self, columns=2, pyplot=True):
        """Every step in one figure, ``columns`` side by side: the picture where no slider can
        be shown."""
        steps = range(1, len(self) + 1)
        if self.use_dot:
            return _image_figure([self.png(step) for step in steps], [self.title(s) for s in steps], pyplot)
        columns = min(columns, len(self))
        rows = math.ceil(len(self) / columns)
        width, height = _layout_size(self._layout)
        fig, axes = _figure((width * columns, (height + 0.5) * rows), rows, columns, pyplot=pyplot)
        for ax in axes.flat:
            ax.axis("off")
        for ax, step in zip(axes.flat, steps):
            _draw_on(ax, self._layout, self.lookup, values=True, frame=self.frames[step - 1],
                     title=self.title(step))
        return fig

    def widget(self):
        """An ipywidgets slider (and play button) over the steps with the picture of the
        chosen one; None when ipywidgets is not installed."""
        try:
            import ipywidgets
        except ImportError:
            return None
        slider = ipywidgets.IntSlider(value=1, min=1, max=len(self), description="step")
        play = ipywidgets.Play(value=1, min=1, max=len(self), interval=1500)
        ipywidgets.jslink((play, "value"), (slider, "value"))
        picture = ipywidgets.Image(value=self.png(1), format="png", layout=ipywidgets.Layout(max_width="100%"))
        slider.observe(lambda change: setattr(picture, "value", self.png(change["new"])), names="value")
        return ipywidgets.VBox([ipywidgets.HBox([play, slider]), picture])

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The slider for a front end with widgets; every step in one PNG for the others
        (a front end shows the richest kind of output it can)."""
        if "grid" not in self._pngs:
            self._pngs["grid"] = _png(self.grid(pyplot=False))
        bundle = {"text/plain": repr(self), "image/png": self._pngs["grid"]}
        box = self.widget()
        if box is not None:
            widget_view = "application/vnd.jupyter.widget-view+json"
            bundle[widget_view] = box._repr_mimebundle_()[widget_view]
        return bundle


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


def plot_curves(history, path=None, x_key=None, title=None):
    """Loss curves on the left, everything else (accuracy, ...) on the right, under ``title``.

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
    for ax, name in ((loss_ax, "loss"), (other_ax, "metrics")):
        ax.set_title(name)
        ax.set_xlabel(x_key or "epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
        fig.tight_layout()
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


def image_grid(images, labels=None, path=None, columns=None, title=None):
    """Show a batch of images in a grid, each scaled to [0, 1] on its own, with its label."""
    array = _as_images(images)
    count = len(array)
    columns = columns or min(count, 8)
    rows = max(1, math.ceil(count / columns))
    fig, axes = _figure((1.5 * columns, 1.6 * rows + (0.4 if title else 0)), rows, columns)
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
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def weight_grid(weights, labels=None, path=None, columns=None, title=None, cmap="RdBu_r"):
    """Weights as images on one symmetric scale: 0 is white, positive red, negative blue,
    and the same colour means the same value in every image (a colour bar says which).

    ``weights``: (N, H, W) (one image per unit; any array or Tensor of N * H * W values
    reshaped so). Unlike ``image_grid``, which stretches each image to its own range, this
    keeps the images comparable with each other and keeps the sign of every weight.
    """
    array = backend.to_numpy(weights.data if isinstance(weights, Tensor) else weights)
    array = numpy.asarray(array, dtype=numpy.float64)
    if array.ndim != 3:
        raise ValueError(f"weight_grid: expected weights of shape (N, H, W), got {array.shape}")
    count = len(array)
    columns = columns or min(count, 8)
    rows = max(1, math.ceil(count / columns))
    limit = float(numpy.abs(array).max()) or 1.0             # one scale, symmetric around 0
    fig, axes = _figure((1.5 * columns + 1.0, 1.6 * rows + (0.4 if title else 0)), rows, columns)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        image = ax.imshow(array[i], cmap=cmap, vmin=-limit, vmax=limit)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="weight")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


# --- labels beside points ----------------------------------------------------------------
# Where a label may go, in points from its point: right, left, above, below, the corners,
# then a line further up or down.
LABEL_PLACES = ((4, -3, "left"), (-4, -3, "right"), (0, 5, "center"), (0, -11, "center"),
                (4, 4, "left"), (4, -10, "left"), (-4, 4, "right"), (-4, -10, "right"),
                (0, 13, "center"), (0, -19, "center"))


def place_labels(ax, points, labels, fontsize=7, color="black", avoid=(), marker_points=3.0):
    """Write each label beside its point, at the first place of ``LABEL_PLACES`` where it
    overlaps no label written before it and no point, and stays inside the axes; a label
    with no free place is left out. ``points``: (x, y) in data coordinates, in order of
    importance (the first get the best places); ``color``: one colour or one per label;
    ``avoid``: more points (data coordinates) that no label may cover. Call it once the axes'
    limits, scales and layout are final (``fig.tight_layout()`` first): the test is done in
    display pixels. Returns the labels written."""
    ax.figure.canvas.draw()                      # a renderer, and the transforms as they will be
    every_point = [tuple(p) for p in points] + [tuple(p) for p in avoid]
    pixels = ax.transData.transform(numpy.asarray(every_point, dtype=numpy.float64).reshape(-1, 2))
    radius = marker_points * ax.figure.dpi / 72
    colors = [color] * len(labels) if isinstance(color, str) else list(color)
    area = ax.get_window_extent()
    taken, written = [], []
    for (x, y), label, label_color in zip(points, labels, colors):
        for dx, dy, align in LABEL_PLACES:
            text = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", ha=align,
                               fontsize=fontsize, color=label_color)
            box = text.get_window_extent().padded(1)
            covers_a_point = numpy.any((pixels[:, 0] > box.x0 - radius) & (pixels[:, 0] < box.x1 + radius)
                                       & (pixels[:, 1] > box.y0 - radius) & (pixels[:, 1] < box.y1 + radius))
            inside = area.x0 <= box.x0 and box.x1 <= area.x1 and area.y0 <= box.y0 and box.y1 <= area.y1
            if inside and not covers_a_point and not any(box.overlaps(other) for other in taken):
                taken.append(box)
                written.append(label)
                break
            text.remove()
    return written
