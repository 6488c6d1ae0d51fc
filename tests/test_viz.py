"""Graph drawing (DOT text, a PNG through matplotlib or Graphviz), curves, image grids."""
import re
import shutil

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
    viz._pyplot().close(fig)


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


def test_draw_graph_runs_the_dot_program_when_installed(tmp_path, monkeypatch):
    (tmp_path / "dot").write_text(FAKE_DOT)
    (tmp_path / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_DOT_LOG", str(tmp_path / "log.txt"))
    y, _ = small_graph()
    path = viz.draw_graph(y, tmp_path / "graph.png")          # engine "auto" picks dot
    assert open(path, "rb").read() == b"\x89PNG fake image"
    arguments, *dot_text = (tmp_path / "log.txt").read_text().splitlines()
    assert arguments == "-Tpng" and "\n".join(dot_text) + "\n" == viz.to_dot(y)


def test_a_failing_dot_program_is_reported(tmp_path, monkeypatch):
    (tmp_path / "dot").write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n")
    (tmp_path / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
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
    viz._pyplot().close(fig)


@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (5, 3, 8, 8), (5, 8, 8), (5, 8, 8, 3)], ids=str)
def test_image_grid_writes_a_png(tmp_path, shape):
    images = numpy.random.default_rng(0).standard_normal(shape)
    path = viz.image_grid(Tensor(images), labels=list("abcde"), path=tmp_path / "grid.png", columns=3)
    assert open(path, "rb").read().startswith(b"\x89PNG")


def test_image_grid_titles_and_bad_shape():
    fig = viz.image_grid(numpy.zeros((3, 4, 4)), labels=[7, 8, 9])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["7", "8", "9"]
    viz._pyplot().close(fig)
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
