"""A model's layers as a table, asked of the layers themselves.

    from minigrad.summary import format_summary, layer_rows
    print(format_summary(model, (1, 32, 32)))     # one line per layer, then the totals
    rows = layer_rows(model, (1, 32, 32))         # the same as data: a LayerRow per layer

A model's layers are its top-level children, in order, with every plain ``nn.Sequential``
among them opened up (``features.0``, ``features.1``, ...); any other module (an Inception
module, a residual block, LeNet's connection table) stays one row. The layers must run one
after another, as in an ``nn.Sequential``: a model with side branches lists its main path
(``GoogLeNet.main_path()``) and adds a row per branch with ``layer_row``. Each row is what
the layer itself reports for one example (``minigrad.nn.Module``): ``output_shape``,
``multiply_adds`` (each weight times the positions it is applied at; biases, pooling and
activations not counted) and ``depth`` (layers with weights on its longest path);
parameters are counted with ``num_parameters``, weights are the parameters named "weight".
A layer that does not report is an error naming it, never a silent zero.
"""
from typing import NamedTuple, Tuple

from . import nn


class LayerRow(NamedTuple):
    """One layer, for one example (batch axis left out)."""
    name: str                   # "c1", "features.0", "inception3a"
    layer: str                  # what it is: "Conv2d(1, 6, kernel_size=5, stride=1)"
    in_shape: Tuple[int, ...]   # (C, H, W) or (features,)
    out_shape: Tuple[int, ...]
    params: int                 # every number the layer learns: weights, biases, ...
    weights: int                # the parameters named "weight" (no biases)
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


def describe(layer):
    """A layer's one-line repr; the first line of a composite's (its name and configuration)."""
    text = repr(layer)
    if "\n" in text:
        first = layer.extra_repr().splitlines()
        text = f"{type(layer).__name__}({first[0] if first else '...'})"
    return text


def layer_row(name, layer, in_shape):
    """The ``LayerRow`` of ``layer`` (called ``name``) on one example of ``in_shape``."""
    in_shape = tuple(in_shape)
    weights = sum(p.size for n, p in layer.named_parameters() if n.split(".")[-1] == "weight")
    return LayerRow(name, describe(layer), in_shape, tuple(layer.output_shape(in_shape)),
                    layer.num_parameters(), weights, layer.multiply_adds(in_shape), layer.depth())


def layer_rows(model, in_shape):
    """A ``LayerRow`` per layer of ``model`` on one example of ``in_shape`` (C, H, W), each
    layer reading the one before."""
    rows, shape = [], tuple(in_shape)
    for name, layer in layers(model):
        rows.append(layer_row(name, layer, shape))
        shape = rows[-1].out_shape
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
    params, multiply_adds, depth = (sum(getattr(r, field) for r in rows)
                                    for field in ("params", "multiply_adds", "depth"))
    lines = [title] if title else []
    lines.append(f"{'layer':<{name_width}}  {'':<{width}}  {'output':>12}  {'parameters':>12}  "
                 f"{'multiply-adds':>15}  {'depth':>5}")
    lines.append(f"{'input':<{name_width}}  {'':<{width}}  {shape_text(in_shape):>12}")
    for r in rows:
        lines.append(f"{r.name:<{name_width}}  {r.layer:<{width}}  {shape_text(r.out_shape):>12}  "
                     f"{r.params:>12,}  {r.multiply_adds:>15,}  {r.depth:>5}")
    lines.append(f"{'total':<{name_width}}  {'':<{width}}  {'':>12}  {params:>12,}  "
                 f"{multiply_adds:>15,}  {depth:>5}")
    lines.append(f"{params:,} parameters ({count_text(params)}), {multiply_adds:,} "
                 f"multiply-adds ({count_text(multiply_adds)}) per {shape_text(in_shape)} "
                 f"example, depth {depth} (layers with weights on the longest path)")
    return "\n".join(lines)
