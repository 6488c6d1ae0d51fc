"""The CPU-vs-GPU comparison (minigrad.bench.compare): which configurations run here, the
table, the CSV (in the format lesson 8 reads) and the picture, and the command line
(``python -m googlenet bench --compare``)."""
import csv

import pytest

from googlenet.__main__ import main
from googlenet.bench import googlenet_op_shapes
from minigrad import backend
from minigrad.bench import compare
from course import lesson8_recorded


def test_without_a_gpu_the_gpu_columns_are_left_out_with_the_reason(monkeypatch):
    monkeypatch.setattr(backend, "gpu_unavailable_reason", lambda: "no CUDA device here")
    chosen, missing = compare.configurations(["cpu", "cuda"], with_torch=False)
    assert chosen == [("cpu", "numpy")]
    assert missing == ["no GPU columns: no CUDA device here"]


def test_with_a_gpu_both_gpu_kernel_sets_are_compared(monkeypatch):
    monkeypatch.setattr(backend, "gpu_unavailable_reason", lambda: None)
    chosen, _ = compare.configurations(["cpu", "cuda"], with_torch=False)
    assert chosen == [("cpu", "numpy"), ("cuda", "numpy"), ("cuda", "cuda")]


def fake_results(shapes):
    """Made-up timings: each configuration twice as fast as the one before."""
    configurations = [("cpu", "numpy"), ("cuda", "numpy"), ("cuda", "cuda")]
    return {c: {s.name: {"fwd": 0.004 / 2 ** i, "bwd": 0.004 / 2 ** i} for s in shapes}
            for i, c in enumerate(configurations)}


def test_the_table_gives_each_op_and_the_speed_ups():
    shapes = googlenet_op_shapes(8, 224)[:3]
    table = compare.format_table(shapes, fake_results(shapes)).splitlines()
    assert "cpu numpy" in table[0] and "x cuda cuda" in table[0]
    assert table[1].split()[0] == shapes[0].name
    assert table[1].split()[-2:] == ["2.0", "4.0"]          # 8 ms against 4 ms and 2 ms
    assert table[-1].startswith("all ops") and table[-1].split()[-1] == "4.0"


def test_the_csv_is_what_lesson_8_reads(tmp_path):
    shapes = googlenet_op_shapes(8, 224)[:4]
    results = fake_results(shapes)
    path = tmp_path / "ops.csv"
    compare.write_csv(path, shapes, results, 8, 224, {"cuda": (50000.0, 4000.0)})
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 3 * 4 and {r["kernels"] for r in rows} == {"numpy", "cuda"}
    gpu_rows = tmp_path / "gpu_ops.csv"                    # as .ci/gpu keeps them
    with open(gpu_rows, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(r for r in rows if r["device"] == "cuda" and r["kernels"] == "cuda")
    recorded = lesson8_recorded.load_recorded(gpu_rows, googlenet_op_shapes)
    assert recorded is not None and recorded.peak_gflops == 50000.0


def test_the_command_compares_and_writes_its_files(tmp_path, capsys):
    status = main(["bench", "--compare", "--quick", "--only", "3a/pool", "--out", str(tmp_path)])
    assert status == 0
    out = capsys.readouterr().out
    if backend.gpu_unavailable_reason():
        assert "no GPU columns:" in out
    assert "3a/pool" in out and "all ops" in out
    for picture in ("ops.png", "roofline.png"):
        assert (tmp_path / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(tmp_path / "ops.csv")))
    assert {r["layer"] for r in rows} == {"3a/pool", "3a/pool_proj"}
    assert all(float(r["fwd_ms"]) > 0 and float(r["bwd_ms"]) > 0 for r in rows)


def test_pytorch_columns_when_asked_for(capsys):
    pytest.importorskip("torch")
    assert main(["bench", "--compare", "--torch", "--quick", "--only", "lrn/pool1"]) == 0
    assert "cpu torch" in capsys.readouterr().out


def test_a_bad_device_in_the_list_is_a_one_line_error(capsys):
    assert main(["bench", "--compare", "cpu", "tpu", "--quick"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


def test_the_whole_network_is_timed_forward_and_for_a_training_step(capsys):
    from googlenet.bench import time_network
    t = time_network(batch=1, image_size=32, device="cpu", kernel_set="numpy", repeats=1)
    assert set(t) == {"forward", "training step"} and all(seconds > 0 for seconds in t.values())
    assert main(["bench", "--compare", "--quick", "--only", "3a/pool_proj", "--image-size", "32"]) == 0
    assert "the whole GoogLeNet (full width, 32x32, batch 1)" in capsys.readouterr().out


def test_the_ops_are_summed_per_kind_and_the_slowest_picked():
    shapes = [s for s in googlenet_op_shapes(8, 224) if s.name in ("conv1", "pool1", "lrn/pool1", "conv2", "pool2")]
    results = {("cpu", "numpy"): {s.name: {"fwd": 0.001 * (k + 1), "bwd": 0.001} for k, s in enumerate(shapes)},
               ("cuda", "cuda"): {s.name: {"fwd": 1e-5, "bwd": 1e-5} for s in shapes}}
    totals = compare.kind_totals(shapes, results)
    assert list(totals) == ["convolutions", "max pools", "LRNs"]                # in KINDS' order, only those present
    assert totals["convolutions"][("cpu", "numpy")] == pytest.approx(0.001 + 0.001 + 0.004 + 0.001)   # conv1, conv2
    assert totals["max pools"][("cuda", "cuda")] == pytest.approx(4e-5)
    assert [s.name for s in compare.slowest(shapes, results, 2)] == ["pool2", "conv2"]


def test_the_bar_chart_is_per_kind_and_per_slowest_op_with_titles():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shapes = googlenet_op_shapes(8, 224)
    results = fake_results(shapes)
    fig, (kinds, ops) = plt.subplots(1, 2)
    compare.draw_kinds(kinds, shapes, results)
    compare.draw_slowest(ops, shapes, results, count=12)
    assert len(kinds.patches) == 4 * 3 and len(ops.patches) == 12 * 3      # 4 kinds, 12 ops, 3 configurations
    assert kinds.get_title() == "each kind of op, summed" and ops.get_title() == "the 12 slowest ops on cpu numpy"
    assert [t.get_text() for t in kinds.get_xticklabels()][0] == "convolutions\n(59 ops)"
    plt.close(fig)
