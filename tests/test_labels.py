"""viz.place_labels: labels beside their points that overlap neither each other nor a point,
inside the axes; the zoo's cost scatter uses it."""
import matplotlib
import numpy

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from minigrad import viz  # noqa: E402
from zoo import summary  # noqa: E402


def boxes(ax):
    return [text.get_window_extent() for text in ax.texts]


def test_crowded_points_get_labels_that_do_not_overlap():
    points = numpy.random.default_rng(0).uniform(0, 1, (40, 2))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.scatter(*points.T, s=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    written = viz.place_labels(ax, points, [f"op{i}" for i in range(40)], color=["red"] * 40)
    assert 20 <= len(written) < 40 and written == [t.get_text() for t in ax.texts]   # some found no room
    placed = boxes(ax)
    assert not any(a.overlaps(b) for i, a in enumerate(placed) for b in placed[i + 1:])
    area = ax.get_window_extent()
    assert all(area.x0 <= b.x0 and b.x1 <= area.x1 and area.y0 <= b.y0 and b.y1 <= area.y1 for b in placed)
    pixels = ax.transData.transform(points)
    assert not any(b.contains(x, y) for b in placed for x, y in pixels)
    assert {t.get_color() for t in ax.texts} == {"red"}
    plt.close(fig)


def test_a_point_to_avoid_keeps_the_label_off_it():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    fig.tight_layout()
    first = viz.place_labels(ax, [(5, 5)], ["a label"])
    right_of_the_point = ax.texts[0].get_window_extent()
    ax.texts[0].remove()
    blocker = ax.transData.inverted().transform(((right_of_the_point.x0 + right_of_the_point.x1) / 2,
                                                 (right_of_the_point.y0 + right_of_the_point.y1) / 2))
    second = viz.place_labels(ax, [(5, 5)], ["a label"], avoid=[tuple(blocker)])
    assert first == second == ["a label"]
    assert not ax.texts[0].get_window_extent().overlaps(right_of_the_point)
    plt.close(fig)


def test_the_zoo_scatter_names_every_network_without_overlap():
    measured = [("lenet5", 328096, 1.0), ("lenet5-modern", 416520, 0.5), ("alexnet", 724406816, 23.4),
                ("vgg11", 7609090048, 140.3), ("vgg13", 11308466176, 260.9), ("vgg16", 15470264320, 298.2),
                ("vgg19", 19632062464, 367.3), ("resnet18", 1814073344, 68.5), ("resnet34", 3663761408, 136.6),
                ("googlenet", 1582671872, 67.3)]                  # lesson 9's table on 2 cores, 2026-12-04
    rows = [summary.NetworkFigures(name, (3, 224, 224), (1000,), 10 ** 6, macs, 10, ms / 1e3)
            for name, macs, ms in measured]
    fig = summary.plot_comparison(rows)
    scatter = fig.axes[1]
    assert sorted(t.get_text() for t in scatter.texts) == sorted(r.name for r in rows)
    placed = boxes(scatter)
    assert not any(a.overlaps(b) for i, a in enumerate(placed) for b in placed[i + 1:])
    plt.close(fig)
