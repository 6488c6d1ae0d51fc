"""Pictures of a sequence of steps, one at a time (``Stepper``), and backward shown one
picture a step (``step_through``).

A Stepper is what a notebook shows: a slider over the steps (with a play button) in a front
end that shows ipywidgets, and one figure of chosen steps in any other (a notebook opened
without its kernel, an exported page, a front end without the widget manager). The cell's
output holds both, and the front end shows the richest it can. Each step's picture is drawn
once, the first time it is shown.

    stepper = Stepper(range(10), lambda step, figure: figure.add_subplot().plot(...))
    stepper                          # the last line of a notebook cell shows it
"""
import math

import numpy

from .frames import backward_frames, frame_title
from .graph import draw_layout, graph_layout, layout_size, name_lookup, render_with_dot, to_dot, use_dot
from .plots import blank_figure, png_array, png_bytes

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Stepper:
    """Steps shown one at a time: a slider where widgets show, a figure of some steps elsewhere.

    ``steps``: a range of whole numbers, the slider's values; ``draw(step, figure)`` draws
    one step on a matplotlib Figure or SubFigure. ``static``: the steps the one-figure
    fallback shows (every step by default), ``columns`` side by side, under ``title``.
    ``frame_size``: (width, height) of one step's picture in inches. ``label``: the slider's
    name. ``image(step)``: the step's picture as PNG bytes, when it is made elsewhere (by
    Graphviz) rather than drawn; ``frame_size`` may then be None, for the size of the first
    static step's image.
    """

    def __init__(self, steps, draw, static=None, title=None, frame_size=(8.0, 4.4), columns=2, label="step",
                 image=None):
        self.steps, self.draw = steps, draw
        self.static = list(self.steps if static is None else static)
        self.grid_title, self.columns, self.label, self.image = title, columns, label, image
        self._frame_size = frame_size
        self._pngs = {}

    def __len__(self):
        return len(self.steps)

    def __repr__(self):
        return f"{type(self).__name__}: {len(self)} steps"

    @property
    def frame_size(self):
        """(width, height) of one step's picture, in inches."""
        if self._frame_size is None:                                  # ready-made images, at 100 dpi
            height, width = png_array(self.png(self.static[0])).shape[:2]
            self._frame_size = (width / 100, height / 100 + 0.4)
        return self._frame_size

    def figure(self, step, pyplot=True):
        """A matplotlib figure of ``step``; ``pyplot=False``: one that pyplot does not know
        (a notebook does not show it by itself)."""
        figure = blank_figure(self.frame_size, pyplot)
        self.draw(step, figure)
        return figure

    def png(self, step):
        """PNG bytes of ``step``, made once."""
        if step not in self._pngs:
            self._pngs[step] = self.image(step) if self.image else png_bytes(self.figure(step, pyplot=False))
        return self._pngs[step]

    def grid(self, pyplot=True):
        """The static steps in one figure, ``columns`` side by side: the picture where no
        slider can be shown."""
        columns = min(self.columns, len(self.static))
        rows = math.ceil(len(self.static) / columns)
        width, height = self.frame_size
        figure = blank_figure((width * columns, height * rows + (0.4 if self.grid_title else 0)), pyplot)
        frames = numpy.atleast_1d(figure.subfigures(rows, columns)).ravel()
        for step, frame in zip(self.static, frames):
            self.draw(step, frame)
        if self.grid_title:
            figure.suptitle(self.grid_title, fontsize=12, fontweight="bold")
        return figure

    def widget(self):
        """An ipywidgets slider (and play button) over the steps with the picture of the
        chosen one; None when ipywidgets is not installed."""
        try:
            import ipywidgets
        except ImportError:
            return None
        first, last = self.steps[0], self.steps[-1]
        slider = ipywidgets.IntSlider(value=first, min=first, max=last, description=self.label,
                                      continuous_update=False)
        play = ipywidgets.Play(value=first, min=first, max=last, interval=1500)
        ipywidgets.jslink((play, "value"), (slider, "value"))
        picture = ipywidgets.Image(value=self.png(first), format="png", layout=ipywidgets.Layout(max_width="100%"))
        slider.observe(lambda change: setattr(picture, "value", self.png(change["new"])), names="value")
        return ipywidgets.VBox([ipywidgets.HBox([play, slider]), picture])

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The slider for a front end with widgets; the static steps in one PNG for the others
        (a front end shows the richest kind of output it can)."""
        if "grid" not in self._pngs:
            self._pngs["grid"] = png_bytes(self.grid(pyplot=False))
        bundle = {"text/plain": repr(self), "image/png": self._pngs["grid"]}
        box = self.widget()
        if box is not None:
            bundle[WIDGET_VIEW] = box._repr_mimebundle_()[WIDGET_VIEW]
        return bundle


# --- backward, one picture a step ----------------------------------------------------------------
def step_through(root, names=None, grad=None, engine="auto"):
    """Run ``root.backward(grad)`` one step at a time and show each step as a picture.

    Returns a BackwardStepper (a Stepper over steps 1, 2, ...). In Jupyter with ipywidgets it
    shows as a slider over the steps (with a play button); where widgets cannot be shown
    (ipywidgets missing, or a front end without the widget manager) the same output shows
    every step's picture, two side by side. The leaves' ``.grad`` accumulate as with
    ``backward()``.
    """
    return BackwardStepper(root, backward_frames(root, grad), names, engine)


class BackwardStepper(Stepper):
    """The frames of a backward walk (``backward_frames``) as pictures, step 1 first: drawn
    by Graphviz's ``dot`` or by the layered matplotlib layout (``engine`` as in
    ``draw_graph``)."""

    def __init__(self, root, frames, names=None, engine="auto"):
        self.root, self.frames, self.names, self.lookup = root, list(frames), names, name_lookup(names)
        steps = range(1, len(self.frames) + 1)
        if use_dot(engine, "step_through"):
            super().__init__(steps, self._draw_image, frame_size=None, image=self._dot_image)
        else:
            self._layout = graph_layout(root)
            width, height = layout_size(self._layout)
            super().__init__(steps, self._draw_frame, frame_size=(width, height + 0.5))

    def __repr__(self):
        return f"BackwardStepper: {len(self)} steps of backward()"

    def title(self, step):
        return frame_title(self.frames[step - 1], len(self), self.lookup)

    def _draw_frame(self, step, figure):
        draw_layout(figure.add_subplot(), self._layout, self.lookup, values=True, frame=self.frames[step - 1],
                    title=self.title(step))

    def _dot_image(self, step):
        dot = to_dot(self.root, self.names, rankdir="BT", values=True, frame=self.frames[step - 1])
        return render_with_dot(dot, "png")

    def _draw_image(self, step, figure):
        ax = figure.add_subplot()
        ax.imshow(png_array(self.png(step)))
        ax.axis("off")
        ax.set_title(self.title(step), fontsize=10, loc="left")
