"""Lesson 8's checkers accept the right counts and the right roofline and reject the usual
mistakes, naming the case; its helpers read recorded GPU numbers (a tiny fake CSV here) and
draw them beside the CPU's (see course/lesson8.py). No test asserts a speed."""
import math
import re

import matplotlib
import numpy
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from googlenet.bench import googlenet_op_shapes  # noqa: E402
from minigrad import bench  # noqa: E402
from course import check, lesson8  # noqa: E402

from exercise_tests import standard_tests


def out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def flops_right(x, w, stride, padding):
    oh, ow = out_size(x[2], w[2], stride, padding), out_size(x[3], w[3], stride, padding)
    return 2 * x[0] * w[0] * oh * ow * w[1] * w[2] * w[3]


def bytes_of(shape, itemsize=4, output=True, weights=True):
    numbers = math.prod(shape.x_shape) + (math.prod(bench.op_output_shape(shape)) if output else 0)
    if shape.op == "conv2d" and weights:
        numbers += math.prod(shape.params["weight"])
    return itemsize * numbers


RIGHT = {
    "8.1": flops_right,
    "8.2": lambda shape: bench.op_flops(shape) / bytes_of(shape),
    "8.3": lambda i, peak, bandwidth: numpy.minimum(peak, i * bandwidth),
}
# exercise: [(planted mistake, wrong answer, text the message must hold)]
WRONG = {
    "8.1": [("multiply-adds, not FLOPs", lambda x, w, s, p: flops_right(x, w, s, p) // 2,
             r"On conv 3x3 p1, x \(1, 16, 8, 8\).*the FLOP count is .*factor of 0\.5.*multiply-adds"),
            ("the batch forgotten", lambda x, w, s, p: flops_right(x, w, s, p) // x[0],
             r"On conv 7x7/2 p3, x \(3, 3, 32, 32\).*factor of 0\.3333.*the batch"),
            ("input size instead of output size", lambda x, w, s, p: 2 * x[0] * w[0] * x[2] * x[3] * w[1] * w[2] * w[3],
             r"On conv 7x7/2 p3, x \(3, 3, 32, 32\).*factor of 4 .*per OUTPUT position"),
            ("the padding forgotten", lambda x, w, s, p: flops_right(x, w, s, 0),
             r"On conv 3x3 p1, x \(1, 16, 8, 8\).*the padding widens the input")],
    "8.2": [("the output bytes forgotten", lambda s: bench.op_flops(s) / bytes_of(s, output=False),
             r"On conv 3x3 p1, x \(2, 96, 14, 14\).*the intensity is .*the output y is written"),
            ("float64 bytes", lambda s: bench.op_flops(s) / bytes_of(s, itemsize=8),
             r"On conv 3x3 p1.*factor of 0\.5.*float64.*float32, 4 bytes"),
            ("the weights forgotten", lambda s: bench.op_flops(s) / bytes_of(s, weights=False),
             r"On conv 3x3 p1.*also reads its weights"),
            ("numbers, not bytes", lambda s: bench.op_flops(s) / bytes_of(s, itemsize=1),
             r"On conv 3x3 p1.*count bytes, not numbers")],
    "8.3": [("max instead of min", lambda i, peak, bandwidth: numpy.maximum(peak, i * bandwidth),
             r"On intensities \[0\.25, 1, 5, 64, 512\].*attainable GFLOP/s\[4\] is \+10240, expected \+100 "
             r".*max picks the HIGHER"),
            ("the memory roof forgotten", lambda i, peak, bandwidth: numpy.full_like(i, peak),
             r"On intensities \[0\.25.*the memory roof is missing"),
            ("the compute roof forgotten", lambda i, peak, bandwidth: i * bandwidth,
             r"On intensities \[0\.25.*attainable GFLOP/s\[4\].*the compute roof is missing"),
            ("Python's min on an array", lambda i, peak, bandwidth: min(peak, i * bandwidth),
             r"On intensities \[0\.25.* it raised ValueError")],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_an_unknown_mistake_gets_the_formula_as_its_hint():
    verdict = check.verdict("8.1", lambda x, w, s, p: flops_right(x, w, s, p) + 1)
    assert verdict.status == "wrong" and "2 * N * F * OH * OW * C * KH * KW" in verdict.message
    verdict = check.verdict("8.2", lambda s: numpy.array([1.0, 2.0]))
    assert verdict.status == "wrong" and "the intensity has shape (2,), expected ()" in verdict.message


# --- recorded GPU numbers ------------------------------------------------------------------------
def write(tmp_path, text):
    path = tmp_path / "gpu_ops.csv"
    path.write_text(text)
    return path


FAKE = ("layer,batch,image_size,fwd_ms,device,kernels,peak_gflops,bandwidth_gbs\n"
        "conv2,2,64,0.5,Fake GPU,numpy,50000,4000\n"
        "pool1,2,64,0.01,Fake GPU,numpy,,\n")


def test_no_recorded_file_is_none(tmp_path):
    assert lesson8.load_recorded(tmp_path / "gpu_ops.csv", googlenet_op_shapes) is None


def test_a_recorded_csv_is_read_into_the_networks_op_shapes(tmp_path):
    recorded = lesson8.load_recorded(write(tmp_path, FAKE), googlenet_op_shapes)
    by_name = {s.name: s for s in googlenet_op_shapes(2, 64)}
    assert recorded.device == "Fake GPU"
    assert recorded.points == [(by_name["conv2"], 0.5e-3), (by_name["pool1"], 0.01e-3)]
    assert (recorded.peak_gflops, recorded.bandwidth_gbs) == (50000.0, 4000.0)
    table = lesson8.roofline_table(recorded.points, recorded.peak_gflops, recorded.bandwidth_gbs)
    assert re.search(r"^conv2 .* compute$", table[1]) and re.search(r"^pool1 .* memory$", table[2])
    achieved = bench.op_flops(by_name["conv2"]) / 0.5e-3 / 1e9
    assert f"{achieved:.2f}" in table[1]


def test_the_recorded_report_compares_the_ops_measured_on_both_sides(tmp_path):
    recorded = lesson8.load_recorded(write(tmp_path, FAKE), googlenet_op_shapes)
    rows = fake_rows([s for s in googlenet_op_shapes(1, 64) if s.name in ("conv2", "lrn/pool1")])
    report = lesson8.recorded_report(recorded, rows)
    assert report[0] == f"recorded on Fake GPU ({recorded.path}):"
    assert report[1] == "its roofs: GEMM peak 50000 GFLOP/s, bandwidth 4000 GB/s"
    assert report[2].endswith("bound by") and report[3].startswith("conv2 ") and report[4].startswith("pool1 ")
    there = lesson8.achieved_gflops(recorded.points[0][0], 0.5e-3)
    cpu_conv2, t = next((s, t) for s, t in rows if s.name == "conv2")
    here = lesson8.achieved_gflops(cpu_conv2, t["fwd"])
    assert "Fake GPU GFLOP/s" in report[5] and len(report) == 7          # pool1 was not measured here
    assert report[6].split() == ["conv2", f"{there:.1f}", f"{here:.1f}", f"{there / here:.1f}x"]
    lrn_only = [(s, t) for s, t in rows if s.name == "lrn/pool1"]
    assert lesson8.recorded_report(recorded, lrn_only)[-1] == "no op was measured on both sides"


def test_without_recorded_roofs_the_table_has_no_roof_column(tmp_path):
    recorded = lesson8.load_recorded(write(tmp_path, "layer,batch,image_size,fwd_ms\npool1,1,64,0.1\n"),
                                     googlenet_op_shapes)
    report = lesson8.recorded_report(recorded, [])
    assert report[1].endswith("GFLOP/s") and "bound by" not in report[1]
    assert report[-1] == "no op was measured on both sides"


def test_only_the_required_columns_are_needed(tmp_path):
    recorded = lesson8.load_recorded(write(tmp_path, "layer,batch,image_size,fwd_ms\n3a/3x3,1,224,0.2\n"),
                                     googlenet_op_shapes)
    assert recorded.device == "GPU" and recorded.peak_gflops is None and recorded.bandwidth_gbs is None
    assert recorded.points[0][0].name == "3a/3x3" and recorded.points[0][0].x_shape == (1, 96, 28, 28)


@pytest.mark.parametrize("text, message", [
    ("layer,batch,fwd_ms\nconv1,1,2\n", r"gpu_ops.csv, line 1: no column image_size"),
    ("layer,batch,image_size,fwd_ms\nconv1,1,224,fast\n", r"gpu_ops.csv, line 2: could not convert"),
    ("layer,batch,image_size,fwd_ms\nconv1,1,224,0.1\nconv9,1,224,0.1\n",
     r"gpu_ops.csv, line 3: no op called 'conv9' at batch 1, 224x224"),
    ("layer,batch,image_size,fwd_ms\nconv1,1,224,0\n", r"line 2: fwd_ms must be a positive time, got 0"),
    ("layer,batch,image_size,fwd_ms\n", r"gpu_ops.csv: no rows"),
])
def test_a_malformed_recorded_csv_names_the_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        lesson8.load_recorded(write(tmp_path, text), googlenet_op_shapes)


def fake_rows(shapes):
    """Rows as ``bench.time_ops`` returns them, with made-up times (no timing in tests)."""
    rows = []
    for k, shape in enumerate(shapes):
        t = {"fwd": 1e-3 * (k + 1), "bwd": 2e-3 * (k + 1)}
        if shape.op == "conv2d":
            t.update({"gemm fwd": 0.5e-3 * (k + 1), "gemm bwd": 1e-3 * (k + 1)})
        rows.append((shape, t))
    return rows


def test_the_roofline_draws_recorded_gpu_points_beside_the_cpus(tmp_path):
    recorded = lesson8.load_recorded(write(tmp_path, FAKE), googlenet_op_shapes)
    rows = fake_rows([s for s in googlenet_op_shapes(1, 64) if s.name in ("conv1", "pool1", "lrn/pool1")])
    fig, ax = plt.subplots()
    lesson8.plot_roofline(ax, rows, 100.0, 10.0, recorded=recorded)
    labels = ax.get_legend_handles_labels()[1]
    assert "recorded: Fake GPU" in labels and "Fake GPU roofs: 50000 GFLOP/s, 4000 GB/s" in labels
    assert "CPU roofs: 100 GFLOP/s, 10 GB/s" in labels and "CPU conv: its GEMM alone" in labels
    gpu = next(c for c in ax.collections if c.get_label() == "recorded: Fake GPU")
    expected = [(bench.arithmetic_intensity(s), lesson8.achieved_gflops(s, t)) for s, t in recorded.points]
    numpy.testing.assert_allclose(gpu.get_offsets(), expected)
    plt.close(fig)

    fig, ax = plt.subplots()                        # no recorded file: the CPU alone
    lesson8.plot_roofline(ax, rows, 100.0, 10.0, recorded=None)
    assert not any("recorded" in label or "Fake" in label for label in ax.get_legend_handles_labels()[1])
    plt.close(fig)


def test_the_other_pictures_draw_a_bar_per_op():
    rows = fake_rows([s for s in googlenet_op_shapes(1, 64) if s.name in ("conv1", "pool1", "3a/3x3")])
    fig, ax = plt.subplots()
    lesson8.plot_op_times(rows, ax)
    assert len(ax.patches) == 2 * len(rows)            # GEMM part and the rest, per op
    assert [p.get_width() for p in ax.patches[:3]] == pytest.approx([0.5, 0.0, 1.5])   # no GEMM for pool1
    plt.close(fig)
    fig, ax = plt.subplots()
    lesson8.plot_kernel_sets(ax, {"reference": rows, "numpy": rows})
    assert len(ax.patches) == 2 * 2 * len(rows)
    plt.close(fig)


def test_the_kernel_sets_compute_the_same_forward():
    pool1 = next(s for s in googlenet_op_shapes(1, 32) if s.name == "pool1")
    outputs = lesson8.forward_on_each_set(pool1)
    assert set(outputs) == {"reference", "numpy"}
    numpy.testing.assert_array_equal(outputs["reference"], outputs["numpy"])


# --- the roofline's cases cannot be corrupted; any array-like is an answer ------------------------
def in_place_roofline(intensity, peak, bandwidth):
    """Right values, written into the intensities it was given."""
    intensity *= bandwidth
    numpy.minimum(intensity, peak, out=intensity)
    return intensity


def test_an_in_place_roofline_is_told_so_and_the_cases_stay_as_labelled():
    """Before: told "is +5, expected +100" (the reference ran on the changed input) when 5 was right,
    and ROOFLINE_CASES kept its label [0.25, 1, 5, ...] while holding [5, 20, 100, ...]."""
    before = {name: inputs["intensity"].copy() for name, inputs in lesson8.ROOFLINE_CASES.items()}
    verdict = check.verdict("8.3", in_place_roofline)
    assert verdict.status == "wrong" and "read-only" in verdict.message and "expected" not in verdict.message
    for name, inputs in lesson8.ROOFLINE_CASES.items():
        numpy.testing.assert_array_equal(inputs["intensity"], before[name])
        listed = re.search(r"intensities \[(.*?)\]", name).group(1)
        assert [float(value) for value in listed.split(", ")] == list(inputs["intensity"])
    with pytest.raises(ValueError, match="read-only"):
        next(iter(lesson8.ROOFLINE_CASES.values()))["intensity"][0] = 5.0
    assert check.verdict("8.3", RIGHT["8.3"]).correct


@pytest.mark.parametrize("as_what", [list, tuple, lambda a: [float(v) for v in a]])
def test_a_roofline_returned_as_a_list_or_tuple_is_accepted(as_what):
    """Before: "returned 5 values, expected 1"."""
    assert check.verdict("8.3", lambda i, peak, bandwidth: as_what(RIGHT["8.3"](i, peak, bandwidth))).correct


def test_a_roofline_with_nan_or_an_object_list_is_wrong():
    def one_nan(i, peak, bandwidth):
        values = RIGHT["8.3"](i, peak, bandwidth)
        values[2] = numpy.nan
        return values
    assert "the attainable GFLOP/s[2] is +nan, expected +100" in check.verdict("8.3", one_nan).message
    mixed = check.verdict("8.3", lambda i, peak, bandwidth: [*RIGHT["8.3"](i, peak, bandwidth)[:-1], "100"])
    assert mixed.status == "wrong" and "expected numbers" in mixed.message
