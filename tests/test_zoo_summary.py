"""zoo/summary.py and ``python -m zoo``: the table's counts are the models' own, for every
registered network, GoogLeNet among them; the command's output, exit codes and errors."""
import re

import numpy
import pytest

import zoo
from googlenet import summary as googlenet_summary
from minigrad import Tensor, nn, no_grad
from minigrad import summary as layer_table
from zoo import summary
from zoo.__main__ import main

SMALL = dict(input_size=32, width=1 / 8)       # every network, small enough for a test


def small_networks():
    return list(zoo.load_all())


@pytest.mark.parametrize("name", small_networks())
def test_layer_rows_add_up_to_the_models_own_counts(name):
    model, in_shape = zoo.build_at_input(name, **SMALL)
    rows = layer_table.layer_rows(model, in_shape)
    figures = summary.figures(name, model, in_shape)
    assert figures.params == sum(r.params for r in rows) == model.num_parameters()
    if isinstance(model, nn.Sequential):
        assert figures.multiply_adds == model.multiply_adds(in_shape)
        assert figures.depth == model.depth()
        assert figures.out_shape == model.output_shape(in_shape)
    with no_grad():                               # the layers do run one after another
        out = model.eval()(Tensor(numpy.zeros((1, *in_shape), numpy.float32)))
    assert out.shape[1:] == figures.out_shape


def test_googlenets_figures_are_its_own_summarys():
    model, in_shape = zoo.build_at_input("googlenet")
    figures = summary.figures("googlenet", model, in_shape)
    shapes = googlenet_summary.layer_shapes(model)
    assert in_shape == (3, 224, 224)
    assert figures.params == sum(s.params for s in shapes) == model.num_parameters() == 6_998_552
    assert figures.multiply_adds == sum(s.multiply_adds for s in shapes) == 1_582_671_872
    assert figures.depth == 22 and figures.out_shape == (1000,)
    assert model.aux1 is None                      # the inference network


def test_lenet5_summary_rows():
    model = zoo.build("lenet5")
    rows = {r.name: r for r in layer_table.layer_rows(model, (1, 32, 32))}
    assert {name: rows[name].params for name in ("c1", "s2", "c3", "s4", "c5", "f6", "output")} == \
        {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164, "output": 0}
    assert rows["c3"].out_shape == (16, 10, 10) and rows["c3"].multiply_adds == 60 * 25 * 100
    text = layer_table.format_summary(model, (1, 32, 32))
    assert "60,000 parameters" in text and "depth 7" in text and "ConnectionTable(6 -> 16 maps" in text


def test_nested_sequentials_are_opened():
    model = nn.Sequential(features=nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), flatten=nn.Flatten(),
                          classifier=nn.Sequential(nn.Linear(2 * 4 * 4, 3)))
    rows = layer_table.layer_rows(model, (1, 6, 6))
    assert [r.name for r in rows] == ["features.0", "features.1", "flatten", "classifier.0"]
    assert [r.out_shape for r in rows] == [(2, 4, 4), (2, 4, 4), (32,), (3,)]
    assert [r.multiply_adds for r in rows] == [18 * 16, 0, 0, 96]


def test_time_forward_is_a_positive_median():
    seconds = summary.time_forward(zoo.build("lenet5"), (1, 32, 32), repeats=3)
    assert 0 < seconds < 5


def test_count_text():
    assert [layer_table.count_text(n) for n in (999, 60_000, 61_100_840, 138_357_544, 1_582_671_872)] == \
        ["999", "60K", "61.1M", "138M", "1.58G"]


# --- the command ------------------------------------------------------------------------------------
def number(text):
    """A printed figure, thousands separators and all: "1,500.0" -> 1500.0."""
    return float(text.replace(",", ""))


def table_rows(text):
    """{name: (input, parameters, multiply-adds, depth, ms)} from the printed comparison."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^(\S+)\s+(\d+x\d+x\d+)\s+([\d,]+)\s+([\d,]+)\s+(\d+)\s+([\d,.]+) ms$", line)
        if match:
            name, shape, params, madds, depth, ms = match.groups()
            rows[name] = (shape, int(number(params)), int(number(madds)), int(depth), number(ms))
    return rows


@pytest.mark.parametrize("seconds, printed", [(1.5, "1,500.0 ms"), (12.3456, "12,345.6 ms"), (0.0004, "0.4 ms")])
def test_forward_times_of_a_second_or_more_are_printed_and_read_back(seconds, printed, monkeypatch, capsys):
    monkeypatch.setattr(summary, "time_forward", lambda *args, **kwargs: seconds)
    assert main(["--quick", "--only", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert printed in out
    assert table_rows(out)["lenet5"][4] == pytest.approx(seconds * 1e3)


def test_the_command_prints_every_networks_own_counts(capsys, tmp_path):
    plot = tmp_path / "zoo.png"
    names = small_networks()
    status = main(["--quick", "--input-size", "32", "--width", "0.125", "--plot", str(plot)])
    out = capsys.readouterr().out
    assert status == 0
    rows = table_rows(out)
    assert list(rows) == names and "googlenet" in rows and "lenet5" in rows
    for name in names:
        model, in_shape = zoo.build_at_input(name, **SMALL)
        figures = summary.figures(name, model, in_shape)
        assert rows[name][:4] == ("x".join(map(str, in_shape)), model.num_parameters(),
                                  figures.multiply_adds, figures.depth), name
        assert rows[name][4] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_at_the_papers_inputs(capsys):
    assert main(["--quick", "--only", "lenet5,googlenet", "--layers"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert list(rows) == ["lenet5", "googlenet"]          # the registry's order, not the option's
    assert rows["lenet5"][:4] == ("1x32x32", 60_000, 328_096, 7)
    assert rows["googlenet"][:4] == ("3x224x224", 6_998_552, 1_582_671_872, 22)
    assert "lenet5, layer by layer" in out and "inception5b" in out


@pytest.mark.parametrize("argv, message", [
    (["--only", "lenet5,nope"], r"^error: unknown network 'nope': expected one of .*googlenet.*lenet5"),
    (["--repeats", "0"], r"^error: --repeats must be at least 1, got 0$"),
    (["--width", "0"], r"^error: --width must be finite and positive, got 0.0$"),
    (["--only", "lenet5", "--input-size", "20"], r"^error: LeNet-5 needs an input of at least 32x32"),
])
def test_bad_options_are_one_line_errors_with_status_2(capsys, argv, message):
    assert main(["--quick", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err.strip()), err
