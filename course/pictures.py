"""The course's drawings of a convolution: a stepper over its output positions and a
3-D picture of the volumes.

    stepper = ConvStepper(x, W, b, gy, stride=2, padding=1)   # x (C, H, W): one image
    stepper.show()                  # forward: a slider over p, or a few frames in a grid
    stepper.show(backward=True)     # backward: col2im adding column p into gx
    fig, boxes = conv_volume_picture((3, 7, 7), filters=4, kernel=3, stride=2)

Frame p of the forward shows window p of the zero-padded x, the column p of ``cols``
that im2col copies it to (``minigrad.kernels.reference.im2col``, the layout of lesson 4),
and the product of that column with every filter: y[:, oh, ow] with p = oh*OW + ow.
Frame p of the backward shows gcols[:, p] = W2^T gy[:, oh, ow] and col2im adding it
into window p of gx (padded), where the shares of overlapping windows add up.

``show`` returns a ``minigrad.viz.Stepper``, the stepping of lesson 1's backward too: a
notebook shows it as a slider (ipywidgets) where the front end shows widgets, and as a few
frames in one figure where it does not. The drawn pieces carry ``gid``s (``"window"``, ``"column"``, ``"output"``) so
that the tests can check that a frame highlights what it claims.
"""
from typing import NamedTuple, Tuple

import matplotlib.pyplot as plt
import numpy
from matplotlib.patches import Rectangle

from minigrad.geometry import window
from minigrad.kernels import reference
from minigrad.viz import Stepper

FRAME_SIZE = (8.0, 4.4)      # inches, one frame
HIGHLIGHT = "crimson"        # the window, its column, its output
EARLIER = "darkorange"       # gx cells that already held an earlier window's share


# --- the stepper ----------------------------------------------------------------------------
class ConvStep(NamedTuple):
    """What frame p shows: window p of the padded input, column p of cols, its products."""
    position: int               # p = oh*OW + ow, the column of cols
    out: Tuple[int, int]        # (oh, ow)
    rows: slice                 # the window's rows in the padded input
    columns: slice              # and its columns
    column: numpy.ndarray       # cols[:, p], (C*KH*KW,)
    output: numpy.ndarray       # y[:, oh, ow] = W2 @ cols[:, p] + b, (F,)
    g_column: numpy.ndarray     # gcols[:, p] = W2^T @ gy[:, oh, ow], (C*KH*KW,)
    gx_padded: numpy.ndarray    # gx of the padded input after col2im has added columns 0 .. p
    earlier: numpy.ndarray      # cells of window p that held a share of an earlier window


class ConvStepper:
    """One image's convolution (x (C, H, W), W (F, C, KH, KW), b (F,)), forward and backward
    (upstream gradient gy (F, OH, OW)), one output position at a time."""

    def __init__(self, x, W, b, gy, stride=1, padding=0):
        x, W, b, gy = (numpy.asarray(a, dtype=numpy.float64) for a in (x, W, b, gy))
        self.win = window(x.shape[1:], W.shape[2:], stride, padding)
        if gy.shape != (W.shape[0],) + self.win.out:
            raise ValueError(f"ConvStepper: gy must have shape {(W.shape[0],) + self.win.out} "
                             f"(filters, OH, OW), got {gy.shape}")
        self.x, self.W, self.b, self.gy = x, W, b, gy
        self.x_padded = numpy.pad(x, [(0, 0)] + [(p, p) for p in self.win.padding])   # (C, H + 2PH, W + 2PW)
        self.cols = reference.im2col(x[None], self.win)[0]              # (K, P): lesson 4's layout
        self.W2 = W.reshape(W.shape[0], -1)                               # (F, K)
        self.y = (self.W2 @ self.cols + b[:, None]).reshape(gy.shape)
        self.gcols = self.W2.T @ gy.reshape(gy.shape[0], -1)             # (K, P)
        self.steps = self._steps()

    def _steps(self):
        (kh, kw), (sh, sw), (oh_count, ow_count) = self.win.kernel, self.win.stride, self.win.out
        gx = numpy.zeros_like(self.x_padded)
        touched = numpy.zeros(gx.shape, dtype=bool)
        steps = []
        for p in range(oh_count * ow_count):
            oh, ow = divmod(p, ow_count)
            rows, columns = slice(oh * sh, oh * sh + kh), slice(ow * sw, ow * sw + kw)
            earlier = touched[:, rows, columns].copy()
            gx[:, rows, columns] += self.gcols[:, p].reshape(gx.shape[0], kh, kw)   # col2im's +=
            touched[:, rows, columns] = True
            steps.append(ConvStep(p, (oh, ow), rows, columns, self.cols[:, p], self.y[:, oh, ow],
                                  self.gcols[:, p], gx.copy(), earlier))
        return steps

    @property
    def gx(self):
        """col2im of all the columns, the padding cut off: the input's gradient."""
        (ph, pw), (h, w) = self.win.padding, self.win.size
        return self.steps[-1].gx_padded[:, ph:ph + h, pw:pw + w]

    # --- one frame ----------------------------------------------------------------------
    def draw(self, p, figure=None, backward=False):
        """Frame ``p`` (forward, or backward) on ``figure`` (a Figure or SubFigure; a new one
        if None); returns it."""
        figure = figure or plt.figure(figsize=FRAME_SIZE, layout="constrained")
        step = self.steps[p]
        grid = figure.add_gridspec(2, 3, height_ratios=[3, 1.25], width_ratios=[1, 1.25, 0.8])
        (self._draw_backward if backward else self._draw_forward)(figure, grid, step)
        (oh, ow), which = step.out, "backward" if backward else "forward"
        figure.suptitle(f"{which}, output position p = {p} = {oh}*{self.win.out[1]} + {ow}: "
                        f"(oh, ow) = ({oh}, {ow})", fontsize=10)
        return figure

    def _draw_forward(self, figure, grid, step):
        channels = self.x.shape[0]
        (ph, pw), (h, w) = self.win.padding, self.win.size
        for c, ax in enumerate(_stacked_axes(figure, grid[0, 0], channels, "x")):
            _numbers(ax, self.x_padded[c], padding=(ph, pw, h, w))
            _outline(ax, step.rows.start, step.columns.start, self.win.kernel, "window")
            ax.set_title(f"x padded, channel {c}: window p" if channels > 1 else "x padded: window p",
                         fontsize=8)
        ax = figure.add_subplot(grid[0, 1], label="cols")
        _numbers(ax, self.cols)
        _outline(ax, 0, step.position, (self.cols.shape[0], 1), "column")
        _channel_lines(ax, channels, self.cols.shape)
        ax.set_title("cols = im2col(x): column p is window p", fontsize=8)
        ax.set_xlabel("column = window number p", fontsize=7)
        for f, ax in enumerate(_stacked_axes(figure, grid[0, 2], self.y.shape[0], "y")):
            _numbers(ax, self.y[f])
            _outline(ax, step.out[0], step.out[1], (1, 1), "output")
            ax.set_title(f"y[{f}]", fontsize=8)
        ax = figure.add_subplot(grid[1, :], label="product")
        _numbers(ax, numpy.vstack([step.column, self.W2]))
        _outline(ax, 0, 0, (1, self.W2.shape[1]), "product column")
        ax.set_yticks(range(1 + self.W2.shape[0]),
                      ["cols[:, p]"] + [f"W[{f}] flat" for f in range(self.W2.shape[0])], fontsize=7)
        for f, value in enumerate(step.output):
            ax.annotate(f"sum of products + b[{f}] = {_short(value)} = y[{f}, {step.out[0]}, {step.out[1]}]",
                        (1.01, 1 - (f + 1.5) / (1 + self.W2.shape[0])), xycoords="axes fraction",
                        va="center", fontsize=7)
        ax.set_title("the product: each filter, flattened, times column p", fontsize=8)

    def _draw_backward(self, figure, grid, step):
        filters, channels = self.W.shape[0], self.x.shape[0]
        for f, ax in enumerate(_stacked_axes(figure, grid[0, 0], filters, "gy")):
            _numbers(ax, self.gy[f])
            _outline(ax, step.out[0], step.out[1], (1, 1), "output")
            ax.set_title(f"gy[{f}]", fontsize=8)
        ax = figure.add_subplot(grid[0, 1], label="gcols")
        _numbers(ax, self.gcols)
        later = numpy.zeros(self.gcols.shape)
        later[:, step.position + 1:] = 1.0                          # not added yet: greyed
        ax.imshow(numpy.where(later > 0, later, numpy.nan), cmap="Greys", vmin=0, vmax=3, alpha=0.8)
        _outline(ax, 0, step.position, (self.gcols.shape[0], 1), "column")
        _channel_lines(ax, channels, self.gcols.shape)
        ax.set_title("gcols = W2^T gy: column p goes back to window p\n(grey: columns not added yet)", fontsize=8)
        ax.set_xlabel("column = window number p", fontsize=7)
        (ph, pw), (h, w) = self.win.padding, self.win.size
        for c, ax in enumerate(_stacked_axes(figure, grid[0, 2], channels, "gx")):
            _numbers(ax, step.gx_padded[c], padding=(ph, pw, h, w))
            _outline(ax, step.rows.start, step.columns.start, self.win.kernel, "window")
            for r, s in zip(*numpy.nonzero(step.earlier[c])):
                ax.add_patch(Rectangle((step.columns.start + s - 0.5, step.rows.start + r - 0.5), 1, 1,
                                       fill=False, hatch="///", edgecolor=EARLIER, linewidth=0,
                                       gid="earlier"))
            ax.set_title("gx (padded) after columns 0..p" + (f", channel {c}" if channels > 1 else ""),
                         fontsize=8)
        shared = int(step.earlier.sum())
        ax.set_xlabel(f"+= gcols[:, p]; hatched: {shared} shared\nwith earlier windows; grey: padding",
                      fontsize=7)
        ax = figure.add_subplot(grid[1, :], label="product")
        _numbers(ax, numpy.vstack([self.W2, step.g_column]))
        _outline(ax, filters, 0, (1, self.W2.shape[1]), "product column")
        ax.set_yticks(range(filters + 1),
                      [f"W[{f}] flat" for f in range(filters)] + ["gcols[:, p]"], fontsize=7)
        for f in range(filters):
            ax.annotate(f"x gy[{f}, {step.out[0]}, {step.out[1]}] = {_short(self.gy[f][step.out])}",
                        (1.01, 1 - (f + 0.5) / (filters + 1)), xycoords="axes fraction", va="center",
                        fontsize=7)
        ax.annotate("= the sum of the rows above, each times its gy", (1.01, 0.5 / (filters + 1)),
                    xycoords="axes fraction", va="center", fontsize=7)
        ax.set_title("gcols[:, p] = W2^T gy[:, oh, ow]: every filter's weights, scaled by its gy",
                     fontsize=8)

    # --- all frames -----------------------------------------------------------------------
    def show(self, backward=False, static=None):
        """The frames as a ``minigrad.viz.Stepper``: a slider over the output positions where
        widgets show, else the ``static`` positions (by default the first two, the first of the
        second row and the last) in one figure."""
        count = len(self.steps)
        if static is None:
            static = sorted({0, min(1, count - 1), min(self.win.out[1], count - 1), count - 1})
        title = ("the backward by col2im: each column of gcols is added (+=) into its window of gx"
                 if backward else "the forward by im2col: window p -> column p -> one output per filter")
        return Stepper(range(count), lambda p, figure: self.draw(p, figure, backward), static, title,
                       frame_size=FRAME_SIZE, label="p")


def _short(value):
    return f"{value:.3g}" if value != round(value) else f"{value:.0f}"


def _numbers(ax, matrix, padding=None):
    """A matrix drawn as cells with its values written in; padding (PH, PW, H, W) greys the
    zero border of a padded input."""
    scale = max(float(numpy.abs(matrix).max()), 1e-12) * 2.2     # light colours: text stays legible
    ax.imshow(matrix, cmap="RdBu_r", vmin=-scale, vmax=scale)
    fontsize = 7 if max(matrix.shape) <= 9 else 5.5
    for (r, c), value in numpy.ndenumerate(matrix):
        ax.text(c, r, _short(value), ha="center", va="center", fontsize=fontsize)
    if padding is not None:
        ph, pw, h, w = padding
        inside = numpy.zeros(matrix.shape, dtype=bool)
        inside[ph:ph + h, pw:pw + w] = True
        ax.imshow(numpy.where(inside, numpy.nan, 1.0), cmap="Greys", vmin=0, vmax=5, alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])


def _outline(ax, row, column, size, gid):
    """A frame around cells rows row .. row+size[0]-1, columns column .. column+size[1]-1."""
    ax.add_patch(Rectangle((column - 0.5, row - 0.5), size[1], size[0], fill=False,
                           edgecolor=HIGHLIGHT, linewidth=2.2, gid=gid))


def _channel_lines(ax, channels, shape):
    """Lines between the channels' blocks of rows of cols ((c, i, j) order: c outermost)."""
    for c in range(1, channels):
        ax.axhline(c * shape[0] / channels - 0.5, color="black", linewidth=1)


def _stacked_axes(figure, cell, count, label):
    """``count`` axes one above the other in grid ``cell``, labelled "label[i]"."""
    inner = cell.subgridspec(count, 1)
    return [figure.add_subplot(inner[i, 0], label=f"{label}[{i}]") for i in range(count)]


# --- the 3-D picture ----------------------------------------------------------------------------
class Box(NamedTuple):
    """A box of the 3-D picture: its corner and its size along (width, depth, height)."""
    origin: Tuple[float, float, float]
    size: Tuple[float, float, float]


def conv_volume_picture(in_shape, filters, kernel, stride=1, padding=0, out=(0, 0), f=0):
    """The input volume (C, H, W), one filter (C, K, K) and the output volume (F, OH, OW):
    the filter's window at output position ``out`` = (oh, ow) spans the whole input depth,
    and the output column y[:, oh, ow] holds one number per filter, y[f, oh, ow] from
    filter ``f``. Returns (figure, {name: Box}); x is the width, y the depth (channels), z
    the height (row 0 on top), in cells."""
    channels, height, width = in_shape
    win = window((height, width), kernel, stride, padding)
    (kh, kw), (oh_count, ow_count) = win.kernel, win.out
    oh, ow = out
    top, left = oh * win.stride[0] - win.padding[0], ow * win.stride[1] - win.padding[1]
    gap = 3.0
    boxes = {
        "input": Box((0, 0, 0), (width, channels, height)),
        "window": Box((left, 0, height - top - kh), (kw, channels, kh)),
        "filter": Box((-kw - gap, 0, (height - kh) / 2), (kw, channels, kh)),
        "output": Box((width + gap, 0, (height - oh_count) / 2), (ow_count, filters, oh_count)),
    }
    out_x, _, out_z = boxes["output"].origin
    boxes["column"] = Box((out_x + ow, 0, out_z + oh_count - oh - 1), (1, filters, 1))
    boxes["cell"] = Box((out_x + ow, f, out_z + oh_count - oh - 1), (1, 1, 1))

    figure = plt.figure(figsize=(9, 4.6))
    ax = figure.add_axes((0, 0, 1, 0.92), projection="3d")
    styles = {"input": ("lightsteelblue", 0.15), "window": ("crimson", 0.3), "filter": ("crimson", 0.3),
              "output": ("khaki", 0.2), "column": ("darkorange", 0.35), "cell": ("crimson", 0.9)}
    for name, box in boxes.items():
        _draw_box(ax, box, *styles[name], gid=name)
    for corner in _front_corners(boxes["window"]):               # the window's lines to its output
        ax.plot(*zip(corner, _center(boxes["cell"])), color="crimson", linewidth=0.6, alpha=0.6)
    below = {"input": f"input x: {channels} x {height} x {width}\n(channels x rows x columns)",
             "filter": f"filter W[{f}]: {channels} x {kh} x {kw}\n(as deep as the input)",
             "output": f"output y: {filters} x {oh_count} x {ow_count}\n(one map per filter)"}
    for name, text in below.items():
        (x0, y0, z0), (dx, _, _) = boxes[name]
        ax.text(x0 + dx / 2, y0, z0 - 0.8, text, fontsize=8, ha="center", va="top")
    (x0, y0, z0), (dx, _, dz) = boxes["output"]
    ax.text(x0 + dx / 2, y0, z0 + dz + 1.6, f"column y[:, {oh}, {ow}]: one number per\n"
            f"filter; y[{f}, {oh}, {ow}] (red) is W[{f}] . window", fontsize=8, ha="center", va="bottom")
    span = [(-kw - gap - 1, width + gap + ow_count + 1), (0, max(channels, filters)), (-2.5, height + 1)]
    ax.set_xlim(*span[0])
    ax.set_ylim(*span[1])
    ax.set_zlim(*span[2])
    ax.set_box_aspect([s[1] - s[0] for s in span], zoom=1.5)
    ax.set_proj_type("ortho")
    ax.view_init(elev=14, azim=-72)
    ax.set_axis_off()
    for artist in ax.collections + ax.lines + ax.texts:       # the square 3-D axes box is narrower
        artist.set_clip_on(False)                              # than the picture: do not cut it
    figure.suptitle(f"a convolution in 3-D: {kh}x{kw} filters, stride {win.stride[0]}, padding "
                    f"{win.padding[0]}: window ({oh}, {ow}) gives output column ({oh}, {ow})", fontsize=11)
    return figure, boxes


def _corners(box):
    (x, y, z), (dx, dy, dz) = box
    return numpy.array([[x + i * dx, y + j * dy, z + k * dz] for i in (0, 1) for j in (0, 1) for k in (0, 1)])


def _front_corners(box):
    """The four corners of the box's front face (depth 0)."""
    return [c for c in _corners(box) if c[1] == box.origin[1]]


def _center(box):
    return [o + s / 2 for o, s in zip(*box)]


def _draw_box(ax, box, color, alpha, gid):
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    c = _corners(box)
    faces = [[c[0], c[1], c[3], c[2]], [c[4], c[5], c[7], c[6]], [c[0], c[1], c[5], c[4]],
             [c[2], c[3], c[7], c[6]], [c[0], c[2], c[6], c[4]], [c[1], c[3], c[7], c[5]]]
    ax.add_collection3d(Poly3DCollection(faces, facecolor=color, alpha=alpha, edgecolor="dimgray",
                                         linewidth=0.6, gid=gid))
