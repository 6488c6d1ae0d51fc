"""Backward, one picture a step: ``step_through`` runs a backward pass one step at a time
and shows each step's picture."""
import math

from .frames import backward_frames, frame_title
from .graph import (draw_layout, graph_layout, image_figure, layout_size, name_lookup, render_with_dot, to_dot,
                    use_dot)
from .plots import new_figure, png_bytes


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
        self.root, self.frames, self.names, self.lookup = root, list(frames), names, name_lookup(names)
        self.use_dot = use_dot(engine, "step_through")
        self._layout = None if self.use_dot else graph_layout(root)
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
            return image_figure([self.png(step)], [None], pyplot=pyplot)
        fig, axes = new_figure(layout_size(self._layout), pyplot=pyplot)
        draw_layout(axes[0, 0], self._layout, self.lookup, values=True, frame=self.frames[step - 1],
                 title=self.title(step))
        return fig

    def png(self, step):
        """PNG bytes of step ``step``, drawn once."""
        if step not in self._pngs:
            if self.use_dot:
                dot = to_dot(self.root, self.names, rankdir="BT", values=True, frame=self.frames[step - 1])
                self._pngs[step] = render_with_dot(dot, "png")
            else:
                self._pngs[step] = png_bytes(self.figure(step, pyplot=False))
        return self._pngs[step]

    def grid(self, columns=2, pyplot=True):
        """Every step in one figure, ``columns`` side by side: the picture where no slider can
        be shown."""
        steps = range(1, len(self) + 1)
        if self.use_dot:
            return image_figure([self.png(step) for step in steps], [self.title(s) for s in steps], pyplot)
        columns = min(columns, len(self))
        rows = math.ceil(len(self) / columns)
        width, height = layout_size(self._layout)
        fig, axes = new_figure((width * columns, (height + 0.5) * rows), rows, columns, pyplot=pyplot)
        for ax in axes.flat:
            ax.axis("off")
        for ax, step in zip(axes.flat, steps):
            draw_layout(ax, self._layout, self.lookup, values=True, frame=self.frames[step - 1],
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
            self._pngs["grid"] = png_bytes(self.grid(pyplot=False))
        bundle = {"text/plain": repr(self), "image/png": self._pngs["grid"]}
        box = self.widget()
        if box is not None:
            widget_view = "application/vnd.jupyter.widget-view+json"
            bundle[widget_view] = box._repr_mimebundle_()[widget_view]
        return bundle
