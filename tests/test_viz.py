"""Graph drawing (DOT text, a PNG through matplotlib or Graphviz), curves, image grids."""
import re
import shutil
import sys

import matplotlib.colors
import numpy
import pytest

import minigrad.functional as F
from minigrad import Tensor, viz


def small_graph():
    """y = sum(relu(x W^T + b) * 2 + relu(...)): relu's output is used twice."""
    x = Tensor(numpy.ones((2, 3)), requires_grad=True)
    W = Tensor(numpy.ones((4, 3)), requires_grad=True)
    b = Tensor(numpy.zeros(4), requires_grad=True)
    h = F.relu(F.linear(x, W, b))
    y = (h * 2 + h).sum()
    return y, {"x": x, "W": W, "b": b, "h": h}


def nodes_and_edges(dot):
    labels = dict(re.findall(r'^  (\w+) \[label="([^"]*)"', dot, flags=re.MULTILINE))
    edges = re.findall(r"^  (\w+) -> (\w+);", dot, flags=re.MULTILINE)
    return labels, edges


def test_dot_has_the_expected_nodes_and_edges():
    y, tensors = small_graph()
    dot = viz.to_dot(y, names={tensors["W"]: "W", tensors["b"]: "b", tensors["x"]: "x"})
    assert dot.startswith("digraph minigrad {") and dot.rstrip().endswith("}")
    labels, edges = nodes_and_edges(dot)
    ops = sorted(label for node, label in labels.items() if node.startswith("op_"))
    assert ops == ["add", "linear", "mul", "relu", "sum"]
    by_label = {label: node for node, label in labels.items()}
    assert by_label["W\\n(4, 3) float64"] and by_label["b\\n(4,) float64"] and by_label["x\\n(2, 3) float64"]
    linear = by_label["linear"]
    for name in ("x", "W", "b"):
        node = next(n for n, label in labels.items() if label.startswith(name + "\\n"))
        assert (node, linear) in edges
    assert "scalar float64" in labels.values()                # the output of sum
    assert "2\\nscalar float64" in labels.values()            # the constant in h * 2
    assert len(edges) == (3 + 1) + (1 + 1) + (2 + 1) + (2 + 1) + (1 + 1)   # in + out: linear, relu, mul, add, sum


def test_dot_marks_leaves_constants_and_the_output():
    y, tensors = small_graph()
    dot = viz.to_dot(y, names={tensors["W"]: "W"})
    w_line = next(line for line in dot.splitlines() if 'label="W\\n' in line)
    assert "fillcolor=lightblue" in w_line
    assert re.search(r'label="2\\nscalar float64", shape=box, style="rounded,dashed"', dot)
    output_line = next(line for line in dot.splitlines() if 'label="scalar float64"' in line)
    assert f"fillcolor={viz.OUTPUT_COLOR}" in output_line


def test_shared_subexpressions_appear_once():
    y, tensors = small_graph()
    dot = viz.to_dot(y)
    labels, edges = nodes_and_edges(dot)
    relu_op = next(node for node, label in labels.items() if label == "relu")
    relu_out = next(target for source, target in edges if source == relu_op)
    consumers = [target for source, target in edges if source == relu_out]
    assert len(consumers) == 2                               # h feeds mul and add ...
    assert sum(1 for label in labels.values() if label == "relu") == 1    # ... but is drawn once
    assert len(viz.graph_tensors(y)) == len({id(t) for t in viz.graph_tensors(y)}) == 9


def test_names_can_be_given_in_several_forms():
    y, tensors = small_graph()
    W = tensors["W"]
    for names in ({W: "weight"}, {"weight": W}, [("weight", W)]):
        assert 'label="weight\\n(4, 3) float64"' in viz.to_dot(y, names=names)


def test_names_with_quotes_are_escaped():
    x = Tensor(numpy.ones(2), requires_grad=True)
    assert r'label="a \"quoted\" name\n(2,) float64"' in viz.to_dot(x * 1, names={x: 'a "quoted" name'})


def test_a_leaf_alone_is_a_graph_of_one_node():
    labels, edges = nodes_and_edges(viz.to_dot(Tensor(numpy.ones(3))))
    assert list(labels.values()) == ["(3,) float64"] and edges == []


def test_a_deep_graph_does_not_hit_the_recursion_limit():
    x = Tensor(numpy.ones(1), requires_grad=True)
    y = x
    for _ in range(3000):
        y = y + x
    assert len(viz.graph_tensors(y)) == 1 + 3000       # x and 3000 sums


def test_draw_graph_with_matplotlib_writes_a_png(tmp_path):
    y, tensors = small_graph()
    path = viz.draw_graph(y, tmp_path / "graph.png", names={"W": tensors["W"]}, engine="matplotlib")
    data = open(path, "rb").read()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_draw_graph_without_a_path_returns_a_figure():
    y, _ = small_graph()
    fig = viz.draw_graph(y, engine="matplotlib")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "linear" in texts and "relu" in texts
    viz.load_pyplot().close(fig)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_draw_graph_with_dot_writes_a_png(tmp_path):
    y, _ = small_graph()
    data = open(viz.draw_graph(y, tmp_path / "graph.png", engine="dot"), "rb").read()
    assert data.startswith(b"\x89PNG")


FAKE_DOT = """#!/bin/sh
# stands in for Graphviz: records its arguments and input, answers with PNG-looking bytes
echo "$@" > "$FAKE_DOT_LOG"
cat >> "$FAKE_DOT_LOG"
printf '\\211PNG fake image'
"""


def install_dot(folder, monkeypatch, script=FAKE_DOT):
    """``script`` as the ``dot`` program on the PATH; -> the log FAKE_DOT writes."""
    (folder / "dot").write_text(script)
    (folder / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_DOT_LOG", str(folder / "log.txt"))
    return folder / "log.txt"


def test_draw_graph_runs_the_dot_program_when_installed(tmp_path, monkeypatch):
    log = install_dot(tmp_path, monkeypatch)
    y, _ = small_graph()
    path = viz.draw_graph(y, tmp_path / "graph.png")          # engine "auto" picks dot
    assert open(path, "rb").read() == b"\x89PNG fake image"
    arguments, *dot_text = log.read_text().splitlines()
    assert arguments == "-Tpng" and "\n".join(dot_text) + "\n" == viz.to_dot(y)


def test_a_failing_dot_program_is_reported(tmp_path, monkeypatch):
    install_dot(tmp_path, monkeypatch, "#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n")
    with pytest.raises(RuntimeError, match="dot failed: syntax error in line 1"):
        viz.draw_graph(Tensor([1.0]), tmp_path / "graph.svg")


def test_draw_graph_rejects_an_unknown_engine():
    with pytest.raises(ValueError, match="draw_graph: engine must be 'auto', 'dot' or 'matplotlib', got 'svg'"):
        viz.draw_graph(Tensor([1.0]), engine="svg")


@pytest.mark.parametrize("history", [
    [{"epoch": 1, "loss": 2.0, "accuracy": 0.2}, {"epoch": 2, "loss": 1.0, "accuracy": 0.6, "val_loss": 1.5}],
    {"loss": [2.0, 1.5, 1.0], "val_accuracy": [0.1, 0.4, 0.7]},
], ids=["list of dicts", "dict of lists"])
def test_plot_curves_writes_a_png(tmp_path, history):
    path = viz.plot_curves(history, tmp_path / "curves.png")
    assert open(path, "rb").read().startswith(b"\x89PNG")


def test_plot_curves_puts_losses_left_and_metrics_right():
    fig = viz.plot_curves({"step": [1, 2], "loss": [2.0, 1.0], "val_loss": [2.5, None], "accuracy": [0.1, 0.5]})
    loss_ax, other_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["loss", "val_loss"]
    assert [line.get_label() for line in other_ax.lines] == ["accuracy"]
    assert list(loss_ax.lines[1].get_xdata()) == [1]         # the missing value is skipped
    viz.load_pyplot().close(fig)


@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (5, 3, 8, 8), (5, 8, 8), (5, 8, 8, 3)], ids=str)
def test_image_grid_writes_a_png(tmp_path, shape):
    images = numpy.random.default_rng(0).standard_normal(shape)
    path = viz.image_grid(Tensor(images), labels=list("abcde"), path=tmp_path / "grid.png", columns=3)
    assert open(path, "rb").read().startswith(b"\x89PNG")


def test_image_grid_titles_and_bad_shape():
    fig = viz.image_grid(numpy.zeros((3, 4, 4)), labels=[7, 8, 9])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["7", "8", "9"]
    viz.load_pyplot().close(fig)
    with pytest.raises(ValueError, match=r"image_grid: expected images of shape .* got \(4, 4\)"):
        viz.image_grid(numpy.zeros((4, 4)))


def test_values_and_gradients_on_the_nodes():
    x = Tensor(numpy.array([2.0, 3.0]), requires_grad=True)
    z = (x * x).sum()
    text = viz.to_dot(z, names={x: "x"}, values=True)
    assert "value [2 3]" in text and "value 13" in text and "\\ngrad " not in text
    steps = z.backward_steps()
    tensor, gradient = next(steps)                       # the sum, with the upstream gradient 1
    text = viz.to_dot(z, values=True, gradients={id(tensor): gradient})
    assert "value 13\\ngrad 1" in text
    for _ in steps:
        pass
    assert "grad [4 6]" in viz.to_dot(z, values=True)    # x.grad after the walk


# --- backward, one step at a time -------------------------------------------------------------
def lesson_graph():
    """Lesson 1's graph: h = w * x + b is used twice, in L = sum(h * h)."""
    x = Tensor(numpy.array([1.0, 2.0]))
    w = Tensor(numpy.array([0.5, -1.0]), requires_grad=True)
    b = Tensor(numpy.array(0.25), requires_grad=True)
    h = w * x + b
    hh = h * h
    L = hh.sum()
    return L, {"x": x, "w": w, "b": b, "h": h, "hh": hh, "L": L}


def diamond_graph():
    """a = 2x feeds both e = exp(a) and m = e * a: a's gradient arrives in two steps."""
    x = Tensor(numpy.array([0.5, -1.0]), requires_grad=True)
    a = x * 2
    e = a.exp()
    m = e * a
    return m.sum(), {"x": x, "a": a, "e": e, "m": m}


def index_of(root, tensor):
    return next(i for i, t in enumerate(viz.graph_tensors(root)) if t is tensor)


def boxes_by_gid(fig, prefix):
    return {text.get_gid(): text for ax in fig.axes for text in ax.texts
            if (text.get_gid() or "").startswith(prefix)}


def arrows(fig, prefix):
    return [a for ax in fig.axes for a in ax.texts if (a.get_gid() or "").startswith(prefix)]


@pytest.mark.parametrize("graph", [lesson_graph, diamond_graph, small_graph])
def test_one_frame_per_step_of_backward_steps(graph):
    root, _ = graph()
    twin, _ = graph()
    steps = list(twin.backward_steps())
    frames = viz.backward_frames(root)
    assert len(frames) == len(steps) and [f.step for f in frames] == list(range(1, len(steps) + 1))
    for frame, (tensor, gradient) in zip(frames, steps):
        assert index_of(root, frame.tensor) == index_of(twin, tensor)
        numpy.testing.assert_array_equal(frame.gradient, gradient)


@pytest.mark.parametrize("graph", [lesson_graph, diamond_graph, small_graph])
def test_what_the_frames_send_adds_up_to_each_gradient(graph):
    root, _ = graph()
    frames = viz.backward_frames(root)
    received = {}
    for frame in frames:
        if frame.tensor is not root:
            numpy.testing.assert_allclose(sum(received[id(frame.tensor)]), frame.gradient, rtol=1e-12)
        for edge in frame.sends:
            received.setdefault(id(edge.input), []).append(edge.sent)


def test_the_frames_record_the_local_derivative_and_partial_sums():
    L, t = lesson_graph()
    frames = viz.backward_frames(L)
    square = frames[1]                                     # h * h has its gradient, ones
    assert square.tensor is t["hh"] and [e.slot for e in square.sends] == [0, 1]
    for edge in square.sends:                              # d(h*h)/d(one h) is the other h
        assert edge.input is t["h"]
        numpy.testing.assert_array_equal(edge.local, numpy.diag([0.75, -1.75]))
        numpy.testing.assert_array_equal(edge.sent, [0.75, -1.75])
    assert square.partial[id(t["h"])][1:] == (2, 2)
    add = frames[2]
    b_edge = next(e for e in add.sends if e.input is t["b"])
    numpy.testing.assert_array_equal(b_edge.local, [[1.0], [1.0]])   # b was broadcast to 2 elements
    assert b_edge.sent == -2.0
    D, d = diamond_graph()
    frames = viz.backward_frames(D)
    total, arrived, uses = frames[1].partial[id(d["a"])]   # after m: one of a's two uses is in
    assert (arrived, uses) == (1, 2)
    numpy.testing.assert_allclose(total, numpy.exp([1.0, -2.0]))


def test_backward_frames_is_a_backward_pass():
    L, t = lesson_graph()
    viz.backward_frames(L)
    numpy.testing.assert_allclose(t["w"].grad, [1.5, -7.0])
    assert t["b"].grad == -2.0


def test_a_tensor_used_twice_is_drawn_with_two_edges():
    L, t = lesson_graph()
    h, hh = index_of(L, t["h"]), index_of(L, t["hh"])
    fig = viz.draw_graph(L, engine="matplotlib")
    fig.canvas.draw()
    twins = arrows(fig, f"edge tensor {h}->op {hh}")
    assert sorted(a.get_gid()[-7:] for a in twins) == ["input 0", "input 1"]
    paths = [a.arrow_patch.get_path().vertices for a in twins]
    assert numpy.abs(paths[0].mean(axis=0) - paths[1].mean(axis=0)).max() > 5   # bent apart, in pixels
    viz.load_pyplot().close(fig)
    labels, edges = nodes_and_edges(viz.to_dot(L))
    assert edges.count((f"t{h}", f"op_t{hh}")) == 2


def test_each_frame_highlights_the_tensor_its_step_finished():
    L, names = lesson_graph()
    stepper = viz.step_through(L, names={"h": names["h"], "w": names["w"]}, engine="matplotlib")
    for frame in stepper.frames:
        fig = stepper.figure(frame.step, pyplot=False)
        tensors = boxes_by_gid(fig, "tensor ")
        lit = [gid for gid, text in tensors.items()
               if text.get_bbox_patch().get_facecolor()[:3] == matplotlib.colors.to_rgb(viz.FINISHED_COLOR)]
        assert lit == [f"tensor {index_of(L, frame.tensor)}"], frame.step
        gradients = arrows(fig, "gradient ")
        assert len(gradients) == len(frame.sends)
    twice = stepper.figure(2, pyplot=False)
    h, hh = index_of(L, names["h"]), index_of(L, names["hh"])
    assert len(arrows(twice, f"gradient op {hh}->tensor {h} input")) == 2
    texts = " ".join(text.get_text() for ax in twice.axes for text in ax.texts)
    assert "local ×[0.75 -1.75]\nsends [0.75 -1.75]" in texts and "so far [1.5 -3.5], 2 of 2 uses" in texts
    assert stepper.title(2) == "step 2 of 6: the output of mul has its whole gradient;\nmul's backward sends it to 2 inputs"


def test_a_dot_frame_lights_the_tensor_and_labels_the_gradients():
    L, t = lesson_graph()
    frame = viz.backward_frames(L)[1]
    dot = viz.to_dot(L, names={t["h"]: "h"}, values=True, frame=frame)
    hh = index_of(L, t["hh"])
    assert re.search(rf'^  t{hh} \[.*fillcolor={viz.FINISHED_COLOR}', dot, flags=re.MULTILINE)
    red = re.findall(r"^  t\d+ -> op_t\d+ \[dir=back, color=red, .*label=\"([^\"]*)\"\];", dot, flags=re.MULTILINE)
    assert red == ["local ×[0.75 -1.75]\\nsends [0.75 -1.75]"] * 2
    assert "h  (2,) float64\\nvalue [0.75 -1.75]\\nso far [1.5 -3.5], 2 of 2 uses" in dot


def test_the_stepper_falls_back_to_a_picture_of_every_step_without_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)         # import ipywidgets now fails
    L, _ = lesson_graph()
    stepper = viz.step_through(L, engine="matplotlib")
    assert stepper.widget() is None
    before = viz.load_pyplot().get_fignums()
    bundle = stepper._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/png"} and bundle["image/png"].startswith(b"\x89PNG")
    grid = stepper.grid(pyplot=False)
    drawn = [ax for ax in grid.axes if ax.texts]
    assert len(drawn) == len(stepper) == 6
    assert [ax.get_title(loc="left") for ax in drawn] == [stepper.title(step) for step in range(1, 7)]
    assert viz.load_pyplot().get_fignums() == before                 # a notebook shows nothing twice


def test_the_stepper_is_a_slider_with_ipywidgets():
    widgets = pytest.importorskip("ipywidgets")
    L, _ = lesson_graph()
    stepper = viz.step_through(L, engine="matplotlib")
    box = stepper.widget()
    (play, slider), picture = box.children[0].children, box.children[1]
    assert isinstance(slider, widgets.IntSlider) and (slider.min, slider.max) == (1, 6)
    assert isinstance(play, widgets.Play) and (play.min, play.max) == (1, 6)
    assert picture.value == stepper.png(1)
    slider.value = 4
    assert picture.value == stepper.png(4) != stepper.png(1)
    bundle = stepper._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["image/png"].startswith(b"\x89PNG")


def test_the_stepper_draws_with_dot_when_installed(tmp_path, monkeypatch):
    log = install_dot(tmp_path, monkeypatch)
    L, _ = lesson_graph()
    stepper = viz.step_through(L)
    assert stepper.png(2) == b"\x89PNG fake image"
    arguments, *dot_text = log.read_text().splitlines()
    frame = stepper.frames[1]
    assert "\n".join(dot_text) + "\n" == viz.to_dot(L, rankdir="BT", values=True, frame=frame)


def test_step_through_rejects_an_unknown_engine():
    L, _ = lesson_graph()
    with pytest.raises(ValueError, match="step_through: engine must be 'auto', 'dot' or 'matplotlib', got 'svg'"):
        viz.step_through(L, engine="svg")


# --- the stepping mechanism, any steps --------------------------------------------------------------
def test_a_stepper_is_a_slider_over_every_step_drawing_each_when_chosen():
    pytest.importorskip("ipywidgets")
    drawn = []
    stepper = viz.Stepper(range(9), lambda step, figure: drawn.append(step), [0], "title")
    box = stepper.widget()
    (play, slider), picture = box.children[0].children, box.children[1]
    assert (slider.min, slider.max, slider.value) == (0, 8, 0) == (play.min, play.max, play.value)
    assert drawn[-1] == 0                                   # the first frame is drawn at once
    slider.value = 5
    assert drawn[-1] == 5 and picture.value == stepper.png(5)
    assert "application/vnd.jupyter.widget-view+json" in stepper._repr_mimebundle_()


def test_a_steppers_figure_draws_only_the_static_steps():
    drawn = []
    viz.Stepper(range(5), lambda step, figure: drawn.append(step), [0, 4], "title").grid()
    assert drawn == [0, 4]
    viz.load_pyplot().close("all")


# --- weights and titles -------------------------------------------------------------------------
def test_weight_grid_shares_one_symmetric_scale_with_a_colour_bar():
    weights = numpy.random.default_rng(0).standard_normal((10, 8, 8))
    weights[3, 2, 2] = -5.0                                     # the largest magnitude, negative
    fig = viz.weight_grid(weights, labels=list("0123456789"), columns=5, title="templates")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 10 and {image.get_clim() for image in images} == {(-5.0, 5.0)}
    assert all(image.get_cmap().name == "RdBu_r" for image in images)
    assert len(fig.axes) == 10 + 1                               # ten images and the colour bar
    assert fig.get_suptitle() == "templates"
    viz.load_pyplot().close(fig)
    with pytest.raises(ValueError, match=r"weight_grid: expected weights of shape \(N, H, W\), got \(8, 8\)"):
        viz.weight_grid(numpy.zeros((8, 8)))


def test_figures_take_a_title():
    y, _ = small_graph()
    figures = [viz.draw_graph(y, engine="matplotlib", title="the graph"),
               viz.plot_curves({"loss": [2.0, 1.0]}, title="the graph"),
               viz.image_grid(numpy.zeros((2, 4, 4)), title="the graph")]
    assert figures[0].axes[0].get_title(loc="left") == "the graph"
    assert figures[1].get_suptitle() == figures[2].get_suptitle() == "the graph"
    for fig in figures:
        viz.load_pyplot().close(fig)
