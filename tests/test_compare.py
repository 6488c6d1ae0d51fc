"""The CPU-vs-GPU comparison (minigrad.compare): which configurations run here, the table,
the CSV (in the format lesson 8 reads) and the picture, and the command line."""
import csv

import pytest

from googlenet.__main__ import main
from googlenet.bench import googlenet_op_shapes
from minigrad import backend, compare
from course import lesson8


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
    recorded = lesson8.load_recorded(gpu_rows, googlenet_op_shapes)
    assert recorded is not None and recorded.peak_gflops == 50000.0


def test_the_command_compares_and_writes_its_files(tmp_path, capsys):
    status = main(["bench", "--device", "cpu,cuda", "--quick", "--only", "3a/pool", "--out", str(tmp_path)])
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
    assert main(["bench", "--device", "cpu,cuda", "--torch", "--quick", "--only", "lrn/pool1"]) == 0
    assert "cpu torch" in capsys.readouterr().out


def test_a_bad_device_in_the_list_is_a_one_line_error(capsys):
    assert main(["bench", "--device", "cpu,tpu", "--quick"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


def test_the_whole_network_is_timed_forward_and_for_a_training_step(capsys):
    from googlenet.bench import time_network
    t = time_network(batch=1, image_size=32, device="cpu", kernel_set="numpy", repeats=1)
    assert set(t) == {"forward", "training step"} and all(seconds > 0 for seconds in t.values())
    assert main(["bench", "--device", "cpu,cuda", "--quick", "--only", "3a/pool_proj", "--image-size", "32"]) == 0
    assert "the whole GoogLeNet (full width, 32x32, batch 1)" in capsys.readouterr().out
