"""Plots for the lessons and the commands: training curves, image grids, weights, labels
beside points; and the matplotlib helpers the other pictures share."""
import io
import math
import os
import sys

import numpy

from .. import backend
from ..autograd import Tensor


# --- drawing ---------------------------------------------------------------------------
def load_pyplot():
    """matplotlib.pyplot, imported on first use; the Agg backend when there is no screen."""
    import matplotlib
    no_screen = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    chosen = os.environ.get("MPLBACKEND") or "matplotlib.pyplot" in sys.modules  # e.g. Jupyter
    if no_screen and not chosen:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def new_figure(figsize, rows=1, columns=1, pyplot=True):
    """(figure, 2-D array of axes). ``pyplot=False`` makes a figure pyplot does not know,
    which a notebook does not show by itself (for pictures that are shown another way)."""
    if pyplot:
        return load_pyplot().subplots(rows, columns, figsize=figsize, squeeze=False)
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, columns, squeeze=False)


def blank_figure(figsize, pyplot=True):
    """A figure without axes, laid out by matplotlib's constrained layout (``pyplot``: as in
    ``new_figure``)."""
    if pyplot:
        return load_pyplot().figure(figsize=figsize, layout="constrained")
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, layout="constrained")


def finish(fig, path):
    """Save and close ``fig`` when a path is given (return the path), else return ``fig``."""
    if path is None:
        return fig
    fig.savefig(path, dpi=120, bbox_inches="tight")
    load_pyplot().close(fig)
    return path


def png_bytes(fig):
    """The figure as PNG bytes, at 100 dpi."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def png_array(image):
    """The pixels of PNG bytes, (height, width, channels)."""
    from matplotlib.image import imread
    return imread(io.BytesIO(image), format="png")


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
    plt = load_pyplot()
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
    return finish(fig, path)


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
    fig, axes = new_figure((1.5 * columns, 1.6 * rows + (0.4 if title else 0)), rows, columns)
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
    return finish(fig, path)


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
    fig, axes = new_figure((1.5 * columns + 1.0, 1.6 * rows + (0.4 if title else 0)), rows, columns)
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
    return finish(fig, path)


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
