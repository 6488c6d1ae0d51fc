"""The diagrams of an Inception module and of GoogLeNet are the model's own modules: their
boxes are the modules in order, with the modules' kernels and channels and the output
sizes the layers report, whatever the model's width and input size."""
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt                                          # noqa: E402

from googlenet import table                                              # noqa: E402
from googlenet.diagram import (draw_googlenet, draw_inception, googlenet_boxes,  # noqa: E402
                               inception_boxes, module_text)
from googlenet.model import GoogLeNet, Inception                         # noqa: E402
from googlenet.summary import layer_shapes                               # noqa: E402
from minigrad import nn                                                  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def drawn_texts(figure):
    return [text.get_text() for ax in figure.axes for text in ax.texts]


def test_the_inception_boxes_are_the_modules_branches_with_their_kernels_and_widths():
    module = Inception(192, table.row("3a").widths, rng=0)
    branches, concat = inception_boxes(module, (192, 28, 28))
    assert [name for name, _ in branches] == ["branch1x1", "branch3x3", "branch5x5", "branch_pool"]
    assert [[box.name for box in boxes] for _, boxes in branches] == [
        ["branch1x1.conv"], ["branch3x3.reduce", "branch3x3.conv"], ["branch5x5.reduce", "branch5x5.conv"],
        ["branch_pool.pool", "branch_pool.proj"]]
    texts = [[box.text for box in boxes] for _, boxes in branches]
    assert texts == [["conv 1x1, 64 + ReLU"], ["conv 1x1, 96 + ReLU", "conv 3x3, 128 + ReLU"],
                     ["conv 1x1, 16 + ReLU", "conv 5x5, 32 + ReLU"], ["max pool 3x3 pad 1", "conv 1x1, 32 + ReLU"]]
    assert [box.out_shape for _, boxes in branches for box in boxes] == [
        (64, 28, 28), (96, 28, 28), (128, 28, 28), (16, 28, 28), (32, 28, 28), (192, 28, 28), (32, 28, 28)]
    assert concat.out_shape == (256, 28, 28) and "64 + 128 + 32 + 32 = 256" in concat.text


def test_the_inception_drawing_shows_every_box():
    module = Inception(480, table.row("4a").widths, rng=0)
    figure = draw_inception(module, (480, 14, 14))
    branches, concat = inception_boxes(module, (480, 14, 14))
    texts = "\n".join(drawn_texts(figure))
    for _, boxes in branches:
        for box in boxes:
            assert f"{box.text}\n{' x '.join(map(str, box.out_shape))}" in texts
    assert concat.text in texts and "480 -> 512 channels" in figure.axes[0].get_title()
    patches = {p.get_gid() for p in figure.axes[0].patches}
    assert {box.name for _, boxes in branches for box in boxes} <= patches


@pytest.mark.parametrize("options", [{}, {"width": 0.25, "input_size": 32, "num_classes": 10},
                                     {"aux_heads": False, "lrn": False, "batch_norm": True}])
def test_the_stack_is_the_models_layers_with_their_output_shapes(options):
    model = GoogLeNet(**options)
    boxes, heads = googlenet_boxes(model)
    assert [box.name for box in boxes] == ["input"] + model.layer_names
    main = [s for s in layer_shapes(model) if not s.name.startswith("aux")]
    assert [box.out_shape for box in boxes[1:]] == [s.out_shape for s in main]
    for box in boxes[1:]:
        layer = getattr(model, box.name)
        if isinstance(layer, Inception):      # "inception 3a: 64 | 96 > 128 | 16 > 32 | pool > 32"
            n1, r3, n3, r5, n5, proj = layer.widths
            assert box.text.endswith(f": {n1} | {r3} > {n3} | {r5} > {n5} | pool > {proj}")
        elif isinstance(layer, nn.Conv2d):
            assert box.text.startswith(f"conv {layer.kernel_size[0]}x{layer.kernel_size[1]}")
            assert f", {layer.out_channels} " in box.text
            assert ("+ BN" in box.text) == model.batch_norm
    assert set(heads) == ({"inception4a", "inception4d"} if model.aux_heads else set())
    for tap, head in heads.items():
        aux = model.aux1 if tap == "inception4a" else model.aux2
        assert [box.text for box in head] == [module_text(layer)[0] for layer in aux.children()]
        assert head[-1].out_shape == (model.num_classes,)


def test_the_stack_drawing_names_every_layer_and_its_shape():
    model = GoogLeNet(width=0.25, input_size=32, num_classes=10)
    figure = draw_googlenet(model)
    boxes, _ = googlenet_boxes(model)
    texts = drawn_texts(figure)
    for box in boxes:
        assert box.text in texts and " x ".join(map(str, box.out_shape)) in texts
    assert any(text.startswith("aux1 (reads inception4a") for text in texts)
    assert f"{model.num_parameters():,} parameters" in figure.axes[0].get_title()
