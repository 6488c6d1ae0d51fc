"""Pictures for the lessons: the graph behind a tensor, backward step by step, training
curves, image grids, weights.

    from minigrad import viz
    print(viz.to_dot(loss, names={W: "W", b: "b"}))     # Graphviz text
    viz.draw_graph(loss, "graph.png")                     # a picture of it
    viz.step_through(loss, names={W: "W", b: "b"})        # backward, one picture a step
    viz.Stepper(range(10), draw)                          # any steps: draw(step, figure)

Matplotlib is imported inside the functions that draw, so ``import minigrad``
stays light; with no screen it draws with the file-only Agg backend. Graphs are
rendered by Graphviz's ``dot`` program when it is installed, otherwise by a
layered layout in matplotlib (inputs at the bottom, the output on top).
"""
from .frames import BackwardFrame, EdgeGradient, backward_frames, frame_title
from .graph import (FINISHED_COLOR, FINISHED_OP_COLOR, GRADIENT_COLOR, LEAF_COLOR, OP_COLOR, OUTPUT_COLOR,
                    draw_graph, graph_tensors, to_dot)
from .plots import LABEL_PLACES, image_grid, load_pyplot, place_labels, plot_curves, weight_grid
from .stepper import BackwardStepper, Stepper, step_through

__all__ = ["to_dot", "draw_graph", "graph_tensors", "backward_frames", "BackwardFrame", "EdgeGradient",
           "frame_title", "Stepper", "step_through", "BackwardStepper", "plot_curves", "image_grid",
           "weight_grid", "place_labels", "LABEL_PLACES", "load_pyplot", "LEAF_COLOR", "OUTPUT_COLOR",
           "OP_COLOR", "FINISHED_COLOR", "FINISHED_OP_COLOR", "GRADIENT_COLOR"]
