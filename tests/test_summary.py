"""The Table 1 summary: our counts, computed here independently from the widths,
the shape walk against the real forward (and refusing a layer that cannot report
its shape), the reading of the paper's figures and the printout."""
import importlib
import pkgutil

import numpy
import pytest

import googlenet
from minigrad import Tensor, nn
from googlenet import summary
from googlenet.__main__ import COMMAND_MODULES, available_commands, build_parser, main
from googlenet.model import GoogLeNet
from googlenet.paper_figures import agreement, explain, printed
from googlenet.summary import layer_shapes, row_summaries
from googlenet.table import TABLE_1, row


def weights_from_widths():
    """{row: (weights, biases)} of Table 1 at width 1, from the widths alone."""
    counts, channels = {}, 3
    for r in TABLE_1:
        if r.name == "conv1":
            counts[r.name] = (7 * 7 * channels * 64, 64)
        elif r.name == "conv2":
            counts[r.name] = (channels * 64 + 3 * 3 * 64 * 192, 64 + 192)
        elif r.kind == "inception":
            n1, n3r, n3, n5r, n5, proj = r.widths
            weights = channels * (n1 + n3r + n5r + proj) + 3 * 3 * n3r * n3 + 5 * 5 * n5r * n5
            counts[r.name] = (weights, sum(r.widths))
        elif r.kind == "linear":
            counts[r.name] = (channels * 1000, 1000)
        channels = r.out_channels
    return counts


@pytest.fixture(scope="module")
def paper_model():
    return GoogLeNet()


@pytest.fixture(scope="module")
def rows(paper_model):
    return {s.row.name: s for s in row_summaries(paper_model)}


def test_counts_per_row_match_the_widths(rows):
    expected = weights_from_widths()
    for name, (weights, biases) in expected.items():
        size = row(name).out_size
        assert rows[name].weights == weights, name
        assert rows[name].params == weights + biases, name
        assert rows[name].multiply_adds == weights * size * size, name
    assert rows["3a"].weights == 163_328 and rows["4c"].weights == 509_440 and rows["5a"].weights == 1_042_432


def test_every_output_shape_and_depth_is_table_1s(rows):
    for r in TABLE_1:
        s = rows[r.name]
        channels, *spatial = s.out_shape
        if r.kind in ("dropout", "linear", "softmax"):
            assert s.out_shape == (r.out_channels,), r.name
        else:
            assert (channels, *spatial) == (r.out_channels, r.out_size, r.out_size), r.name
        assert s.depth == r.depth, r.name
    assert sum(s.depth for s in rows.values()) == 22
    assert sum(s.depth for s in rows.values()) + sum(r.kind.endswith("pool") for r in TABLE_1) == 27


def test_totals(paper_model):
    shapes = layer_shapes(paper_model)
    main = [s for s in shapes if not s.name.startswith("aux")]
    expected = weights_from_widths()
    assert sum(s.weights for s in main) == sum(w for w, _ in expected.values()) == 6_990_272
    assert sum(s.params for s in main) == paper_model.num_parameters() - sum(
        s.params for s in shapes if s.name.startswith("aux")) == 6_998_552
    aux = 2 * (128 + 4 * 4 * 128 * 1024 + 1024 + 1024 * 1000 + 1000) + (512 + 528) * 128
    assert paper_model.num_parameters() == 6_998_552 + aux == 13_378_280
    assert sum(s.multiply_adds for s in main) == sum(
        w * row(n).out_size ** 2 for n, (w, _) in expected.items()) == 1_582_671_872


AUX_HEAD_STEPS = ("pool", "conv", "flatten", "fc", "relu", "dropout", "classifier")


def step_shapes(chain, shape):
    """(name, output shape, multiply-adds) of each step of a Sequential, from an input of ``shape``."""
    steps = []
    for name, step in chain.named_children():
        steps.append((name, step.output_shape(shape), step.multiply_adds(shape)))
        shape = steps[-1][1]
    return steps


@pytest.mark.parametrize("head, in_channels", [("aux1", 512), ("aux2", 528)])
def test_each_auxiliary_head_is_counted_on_its_pooled_4x4_map(paper_model, head, in_channels):
    """Section 5: the 5x5/3 average pool takes 4a's (4d's) 14x14 map to 4x4, and the 1x1
    conv (128), the fully connected layer (1024) and the classifier run on what is left."""
    expected = in_channels * 128 * 4 * 4 + 128 * 4 * 4 * 1024 + 1024 * 1000
    shape = next(s for s in layer_shapes(paper_model) if s.name == head)
    assert shape.in_shape == (in_channels, 14, 14)
    assert shape.multiply_adds == expected
    steps = step_shapes(getattr(paper_model, head), shape.in_shape)
    assert [(name, out) for name, out, _ in steps] == list(zip(AUX_HEAD_STEPS, [
        (in_channels, 4, 4), (128, 4, 4), (2048,), (1024,), (1024,), (1024,), (1000,)]))
    assert sum(madds for _, _, madds in steps) == expected


def test_shape_walk_matches_the_real_forward():
    model = GoogLeNet(num_classes=5, width=1 / 8, input_size=40).train()
    x = Tensor(numpy.random.default_rng(0).standard_normal((1, 3, 40, 40)).astype(numpy.float32))
    taps = {}
    for s in layer_shapes(model):
        if s.name.startswith("aux"):
            out = getattr(model, s.name)(taps[s.in_shape])
        else:
            out = getattr(model, s.name)(x)
            x = out
            taps[s.out_shape] = out
        assert out.shape[1:] == s.out_shape, s.name


def test_a_layer_that_cannot_report_its_shape_stops_the_summary():
    """Not counted as zero: the layer is named."""
    class Identity(nn.Module):
        def forward(self, x):
            return x

    model = GoogLeNet(num_classes=10, width=1 / 16, input_size=32)
    model.norm1 = Identity()
    with pytest.raises(NotImplementedError, match="^Identity does not define output_shape"):
        layer_shapes(model)
    with pytest.raises(NotImplementedError, match="^Identity does not define"):
        summary.format_summary(model)


# --- the paper's printed figures ---------------------------------------------------------------
def test_printed_figures_are_read_with_their_precision():
    figure = printed("2.7K")
    assert (figure.low, figure.high) == pytest.approx((2.65 * 1024, 2.75 * 1024))
    assert (printed("128M").low, printed("128M").high) == (127.5e6, 128.5e6)
    assert agreement(114_688, printed("112K")) == "="
    assert agreement(1_024_000, printed("1000K")) == "="
    assert agreement(388_096, printed("380K")) == "~"
    assert agreement(9_408, printed("2.7K")) == "!"


def test_rows_that_disagree_are_conv1_4c_and_5a(rows):
    marks = {name: (agreement(s.weights, printed(s.row.paper_params)),
                    agreement(s.multiply_adds, printed(s.row.paper_ops)))
             for name, s in rows.items() if s.row.paper_params}
    assert [name for name, m in marks.items() if "!" in m] == ["conv1", "4c", "5a"]
    assert marks["conv2"] == marks["3a"] == marks["linear"] == ("=", "=")


def test_explanations_use_arithmetic(rows):
    conv1, c4, a5 = (" ".join(explain(rows[name])) for name in ("conv1", "4c", "5a"))
    assert "9,408 weights" in conv1 and "118.0M" in conv1 and "input depth of 0.882 instead of 3" in conv1
    assert "disagree with each other" in c4 and "printed params are the odd one out" in c4
    assert "input depth of 928 instead of 832" in a5


# --- the printout and the command line --------------------------------------------------------
def test_summary_printout(paper_model):
    text = summary.format_summary(paper_model)
    for label in ("inception (3a)", "inception (5b)", "max pool", "avg pool", "dropout (40%)", "softmax"):
        assert label in text
    assert "112x112x64" in text and "7x7x1024" in text and "1x1x1000" in text
    assert "[3]" in text and "[4]" not in text
    assert "13,378,280" in text and "1,582,671,872" in text
    assert "paper: 22" in text and "paper: 27" in text
    aux_line = next(line for line in text.splitlines() if "both auxiliary heads (training only)" in line)
    assert aux_line.split()[-1] == "8.4M"          # 4,169,728 + 4,202,496 multiply-adds (test above)


def test_small_configuration_printout_lists_adaptations_and_no_paper_columns():
    text = summary.format_summary(GoogLeNet(num_classes=10, input_size=32, width=0.25))
    assert "paper" not in text.split("Totals")[0].splitlines()[2]
    assert "pool4: its 3x3 window is larger than its 2x2 map" in text
    assert "Smallest usable input: 31x31" in text


def test_command_line_summary(capsys):
    assert main(["summary", "--input-size", "64", "--width", "0.125", "--classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "input 64x64x3, width 0.125, 10 classes" in out and "Totals" in out


def test_command_line_reports_a_too_small_input_without_a_traceback(capsys):
    assert main(["summary", "--input-size", "28"]) == 2
    assert "smallest usable input is 31x31" in capsys.readouterr().err


def test_command_line_offers_summary_and_gradcheck():
    commands = available_commands()
    assert {"summary", "gradcheck"} <= set(commands)
    assert all(hasattr(module, "add_parser") or hasattr(module, "add_parsers")
               for module in commands.values())
    assert build_parser(commands).parse_args(["gradcheck"]).func is commands["gradcheck"].run


def test_command_modules_are_exactly_the_modules_that_register_commands():
    hooks = ("add_parser", "add_parsers")
    registering = {info.name for info in pkgutil.iter_modules(googlenet.__path__)
                   if not info.name.startswith("_")
                   and any(hasattr(importlib.import_module(f"googlenet.{info.name}"), h) for h in hooks)}
    assert set(COMMAND_MODULES) == registering == {"summary", "gradcheck", "train", "predict", "bench"}


@pytest.mark.parametrize("argv, message", [
    (["--width", "inf"], "error: --width must be finite and positive, got inf"),
    (["--width", "nan"], "error: --width must be finite and positive, got nan"),
    (["--classes", "0"], "error: --classes must be at least 1, got 0"),
    (["--in-channels", "-3"], "error: --in-channels must be at least 1, got -3"),
])
def test_command_line_refuses_bad_numbers_in_one_line(argv, message, capsys):
    assert main(["summary", *argv]) == 2
    assert capsys.readouterr().err.strip() == message
