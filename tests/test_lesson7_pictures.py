"""Lesson 7's gradient-check picture names its layers (course/lesson7.py: plot_gradcheck)."""
import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from course.lesson7 import plot_gradcheck, short_layer_name  # noqa: E402
from googlenet.gradcheck import LayerError  # noqa: E402


@pytest.mark.parametrize("name, short", [
    ("conv1", "conv1"), ("conv2_reduce", "conv2_reduce"), ("inception3a.branch1x1.conv", "3a 1x1"),
    ("inception4e.branch3x3.reduce", "4e 3x3 reduce"), ("inception5b.branch_pool.proj", "5b pool proj"),
    ("aux1.conv", "aux1 conv"), ("aux2.classifier", "aux2 classifier"), ("linear", "linear"), ("input", "input"),
])
def test_a_layer_name_is_shortened_but_stays_unique(name, short):
    assert short_layer_name(name) == short


class FakeReport:
    tolerance = 1e-6
    layers = [LayerError(name, 1, error, 1.0, 1.0) for name, error in
              [("conv1", 1e-9), ("inception3a.branch1x1.conv", 2e-9), ("inception3a.branch3x3.reduce", 1e-10),
               ("linear", 3e-9), ("aux1.fc", 1e-9), ("input", 4e-8)]]


def test_the_picture_has_a_point_and_a_named_tick_per_layer():
    fig, ax = plt.subplots()
    plot_gradcheck(ax, FakeReport(), title="check")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1", "3a 1x1", "3a 3x3 reduce", "linear",
                                                            "aux1 fc", "input"]
    points = ax.lines[0].get_ydata()
    assert list(points) == [e.max_rel_error for e in FakeReport.layers]
    separators = [line.get_xdata()[0] for line in ax.lines[2:]]             # after the tolerance line
    assert separators == [0.5, 2.5, 3.5, 4.5]                                # between modules only
    assert ax.get_title() == "check" and ax.get_yscale() == "log"
    plt.close(fig)
