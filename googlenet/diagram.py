"""Diagrams of an Inception module and of the whole GoogLeNet, drawn from the model itself.

    from googlenet.diagram import draw_inception, draw_googlenet
    draw_inception(model.inception3a, (192, 28, 28))    # the four branches, as built
    draw_googlenet(model)                               # the stack, with the auxiliary heads

Every box is read off a module (``module_text``: its kind, kernel, stride, channels)
and every size is the module's own ``output_shape``, so a diagram cannot drift from
the code: change a width in ``googlenet.table`` or build the model with ``width=0.25``
or ``input_size=32`` and the boxes change with it. ``inception_boxes`` and
``googlenet_boxes`` return what is drawn, as data (the tests compare it with the
modules). Matplotlib is imported by the drawing functions only.
"""
from typing import NamedTuple, Tuple

from minigrad import nn

from .model import ConvReLU, Inception

COLORS = {"conv": "lightsteelblue", "pool": "khaki", "norm": "lightgray", "inception": "lightsalmon",
          "linear": "plum", "other": "whitesmoke", "input": "white", "concat": "palegreen"}


class Box(NamedTuple):
    """One drawn box: the module's dotted name, what it is, its output shape per example."""
    name: str                    # "conv1", "inception3a.branch3x3.reduce", "aux1"
    text: str                    # "conv 3x3, 128 + ReLU"
    kind: str                    # a key of COLORS
    out_shape: Tuple[int, ...]   # (C, H, W) or (features,)


def _pair_text(values):
    return f"{values[0]}x{values[1]}"


def _window_text(kernel, stride, padding=0):
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    stride = stride[0] if isinstance(stride, tuple) else stride
    padding = padding[0] if isinstance(padding, tuple) else padding
    return _pair_text(kernel) + (f"/{stride}" if stride != 1 else "") + (f" pad {padding}" if padding else "")


def module_text(module):
    """(text, kind) of one layer as a box shows it: "conv 7x7/2, 64 + ReLU", "conv"."""
    if isinstance(module, Inception):
        return f"inception, {module.out_channels}", "inception"
    if isinstance(module, nn.Conv2d):
        text = f"conv {_window_text(module.kernel_size, module.stride)}, {module.out_channels}"
        if isinstance(module, ConvReLU):
            text += (" + BN" if module.bn is not None else "") + " + ReLU"
        elif module.relu:
            text += " + ReLU"
        return text, "conv"
    if isinstance(module, nn.MaxPool2d):
        return "max pool " + _window_text(module.kernel_size, module.stride, module.padding), "pool"
    if isinstance(module, nn.AvgPool2d):
        return "avg pool " + _window_text(module.kernel_size, module.stride, module.padding), "pool"
    if isinstance(module, nn.GlobalAvgPool2d):
        return "global avg pool", "pool"
    if isinstance(module, nn.LocalResponseNorm):
        return f"LRN, size {module.size}", "norm"
    if isinstance(module, nn.Dropout):
        return f"dropout {module.p:.0%}", "other"
    if isinstance(module, nn.Linear):
        return f"linear {module.in_features} -> {module.out_features}", "linear"
    if isinstance(module, nn.ReLU):
        return "ReLU", "other"
    return type(module).__name__.lower(), "other"         # flatten


def _shape_text(shape):
    return " x ".join(map(str, shape))


# --- the Inception module -------------------------------------------------------------------
def inception_boxes(module, in_shape):
    """[(branch name, [Box, ...]), ...] in concatenation order, and the concat's Box."""
    branches = []
    for branch_name, branch in module.named_children():
        shape, boxes = tuple(in_shape), []
        for name, layer in branch.named_children():
            shape = layer.output_shape(shape)
            text, kind = module_text(layer)
            boxes.append(Box(f"{branch_name}.{name}", text, kind, shape))
        branches.append((branch_name, boxes))
    widths = [boxes[-1].out_shape[0] for _, boxes in branches]
    concat = Box("concat", f"concat along channels: {' + '.join(map(str, widths))} = {sum(widths)}",
                 "concat", module.output_shape(tuple(in_shape)))
    return branches, concat


def draw_inception(module, in_shape, title=None):
    """The module's four branches side by side, each layer a box with its output shape;
    the last layers of the branches on one level, as in the paper's Figure 2(b)."""
    import matplotlib.pyplot as plt
    branches, concat = inception_boxes(module, in_shape)
    levels = max(len(boxes) for _, boxes in branches)
    width, gap = 3.2, 0.5
    figure, ax = plt.subplots(figsize=(len(branches) * 2.4, 1.3 * (levels + 2) + 0.4), layout="constrained")
    total = len(branches) * width + (len(branches) - 1) * gap
    top = levels + 1
    input_box = Box("input", f"input {_shape_text(in_shape)}", "input", tuple(in_shape))
    _box(ax, total / 2, top, total * 0.5, input_box, show_shape=False, height=0.45)
    for column, (branch_name, boxes) in enumerate(branches):
        x = column * (width + gap) + width / 2
        ax.text(x, top - 0.5, branch_name, ha="center", va="center", fontsize=8, style="italic")
        previous = (x, top - 0.6)
        for i, box in enumerate(boxes):
            level = len(boxes) - i                       # the last layer of every branch on level 1
            _arrow(ax, previous, (x, level + 0.3))
            _box(ax, x, level, width, box)
            previous = (x, level - 0.3)
        _arrow(ax, previous, (x, 0.3))
    _box(ax, total / 2, 0, total, concat)
    ax.set_xlim(-0.2, total + 0.2)
    ax.set_ylim(-0.5, top + 0.5)
    ax.set_axis_off()
    ax.set_title(title or f"an Inception module, as built: {in_shape[0]} -> {concat.out_shape[0]} channels",
                 fontsize=11, fontweight="bold")
    return figure


# --- the whole network -------------------------------------------------------------------------
def googlenet_boxes(model):
    """The main path as [Box, ...] (the input first, then ``model.layer_names`` in order) and
    {Inception attribute name: [Box, ...] of the auxiliary head that reads its output}."""
    shape = (model.in_channels, model.input_size, model.input_size)
    boxes = [Box("input", "input image", "input", shape)]
    heads = {}
    for name in model.layer_names:
        layer = getattr(model, name)
        shape = layer.output_shape(shape)
        text, kind = module_text(layer)
        if isinstance(layer, Inception):
            text = f"inception {name[len('inception'):]}: " + " | ".join(
                _branch_widths(branch) for branch in layer.children())
        boxes.append(Box(name, text, kind, shape))
        row = model.table_row[name]
        head = {"4a": "aux1", "4d": "aux2"}.get(row)
        if model.aux_heads and head and getattr(model, head) is not None:
            heads[name] = _head_boxes(head, getattr(model, head), shape)
    return boxes, heads


def _branch_widths(branch):
    """"96 > 128" for a 1x1 reduction then a 3x3; "pool > 32" for the pool branch."""
    return " > ".join(str(layer.out_channels) if isinstance(layer, nn.Conv2d) else "pool"
                      for layer in branch.children())


def _head_boxes(head_name, head, shape):
    boxes = []
    for name, layer in head.named_children():
        shape = layer.output_shape(shape)
        text, kind = module_text(layer)
        boxes.append(Box(f"{head_name}.{name}", text, kind, shape))
    return boxes


def draw_googlenet(model, title=None):
    """The network from the input (top) to the classifier, one box per layer with its output
    shape; Inception modules show their branch widths (1x1 | reduce > 3x3 | reduce > 5x5 |
    pool > proj); each auxiliary head beside the module it reads."""
    import matplotlib.pyplot as plt
    boxes, heads = googlenet_boxes(model)
    width, step = 5.6, 1.0
    figure, ax = plt.subplots(figsize=(10, 0.36 * len(boxes) + 0.8), layout="constrained")
    y = {}
    for i, box in enumerate(boxes):
        y[box.name] = -i * step
        _box(ax, width / 2, y[box.name], width, box, height=0.72, label=box.name)
        if i:
            _arrow(ax, (width / 2, y[box.name] + step - 0.36), (width / 2, y[box.name] + 0.36))
    for tap, head in heads.items():
        name = head[0].name.split(".")[0]
        text = f"{name} (reads {tap}, training only)\n" + "\n".join(box.text for box in head)
        x, top = width + 4.4, y[tap] - 0.2
        height = 0.3 * len(head) + 0.6
        _box(ax, x, top - height / 2, 3.4, Box(name, text, "linear", head[-1].out_shape), height=height,
             show_shape=False, fontsize=7)
        _arrow(ax, (width + 1.9, y[tap]), (x - 1.7, top - height / 2))
    ax.text(width + 4.4, y[boxes[-1].name], "inception boxes give Table 1's columns:\n#1x1 | #3x3 reduce > #3x3 |\n"
            "#5x5 reduce > #5x5 | pool > pool proj", ha="center", va="center", fontsize=7, style="italic")
    ax.set_xlim(-1.9, width + 6.2)
    ax.set_ylim(-(len(boxes) - 1) * step - 0.6, 0.6)
    ax.set_axis_off()
    size = model.input_size
    ax.set_title(title or f"GoogLeNet as built ({model.in_channels} x {size} x {size} input, "
                 f"{model.num_classes} classes, width {model.width:g}): "
                 f"{model.num_parameters():,} parameters with the auxiliary heads", fontsize=11, fontweight="bold")
    return figure


# --- drawing helpers ---------------------------------------------------------------------------
def _box(ax, x, y, width, box, height=0.6, show_shape=True, label=None, fontsize=8):
    from matplotlib.patches import FancyBboxPatch
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                facecolor=COLORS[box.kind], edgecolor="dimgray", linewidth=0.8, gid=box.name))
    text = box.text + (f"\n{_shape_text(box.out_shape)}" if show_shape and not label else "")
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    if label:                                   # the stack: name on the left, shape on the right
        ax.text(x - width / 2 - 0.1, y, label, ha="right", va="center", fontsize=7, style="italic")
        ax.text(x + width / 2 + 0.1, y, _shape_text(box.out_shape), ha="left", va="center", fontsize=7,
                color="dimgray")


def _arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="dimgray", lw=0.8))
