"""The main job side by side (``python -m googlenet bench --main-job``, googlenet/bench_main_job.py
and benchmarks/torch_main_job.py): a tiny run of both sides, the table, and the PyTorch
script's weight averaging against minigrad's rule."""
import argparse
import json
import os
import sys

import numpy as np
import pytest

from googlenet import bench_main_job, bench_model
from googlenet.__main__ import main
from minigrad import nn
from minigrad.optim import WeightAverage

TINY = ["--main-job", "--epochs", "1", "--width", "0.0625", "--held-out", "0.9"]
needs_torch = pytest.mark.skipif(bench_model.torch_missing_reason() is not None, reason="PyTorch is not installed")


@pytest.mark.slow
@needs_torch
def test_a_tiny_main_job_runs_both_sides_and_sets_them_side_by_side(tmp_path, capsys):
    assert main(["bench", *TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 epoch of batch 32, width 0.0625, device cpu" in out
    assert "   minigrad | epoch   1:" in out and "   pytorch | epoch   1:" in out
    lines = out.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if "first >= 97%" in line):]
    assert table[1].startswith("minigrad ") and table[2].startswith("pytorch ")
    assert "minigrad's wall time / PyTorch's: " in out
    saved = json.load(open(tmp_path / "main-job.json"))
    assert saved["epochs"] == 1 and saved["held_out"] == 0.9
    for side in ("minigrad", "pytorch"):
        figures = saved["sides"][side]
        assert 0 <= figures["accuracy"] <= 1 and len(figures["accuracies"]) == 1
        assert figures["wall_seconds"] > figures["train_seconds"] + figures["eval_seconds"] > 0
    assert (tmp_path / "minigrad" / "metrics.jsonl").exists() and (tmp_path / "pytorch.json").exists()


def test_without_pytorch_the_main_job_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)         # as if not installed
    assert main(["bench", *TINY]) == 2
    assert "PyTorch is not installed" in capsys.readouterr().err


def test_the_table_gives_accuracy_first_epoch_at_97_and_the_wall_time_ratio():
    minigrad = bench_main_job.summary([dict(epoch=1, val_accuracy=0.9, train_seconds=5.0, eval_seconds=1.0),
                                       dict(epoch=2, val_accuracy=0.975, train_seconds=5.0, eval_seconds=1.0)], 15.0)
    pytorch = bench_main_job.summary([dict(epoch=1, val_accuracy=0.95, train_seconds=2.0, eval_seconds=0.5),
                                      dict(epoch=2, val_accuracy=0.96, train_seconds=2.0, eval_seconds=0.5)], 10.0)
    assert minigrad["first_97"] == 2 and pytorch["first_97"] is None and minigrad["train_seconds"] == 10.0
    lines = bench_main_job.format_table(dict(minigrad=minigrad, pytorch=pytorch)).splitlines()
    assert lines[1].split() == ["minigrad", "97.50%", "97.50%", "epoch", "2", "10.0", "2.0", "15.0"]
    assert lines[2].split()[3] == "-"
    assert lines[3] == "minigrad's wall time / PyTorch's: 1.50 (training alone: 2.50)"


def test_rounds_alternate_the_side_that_goes_first_and_give_median_seconds(tmp_path, monkeypatch, capsys):
    walls = {("minigrad", 1): 100.0, ("pytorch", 1): 110.0, ("minigrad", 2): 130.0, ("pytorch", 2): 105.0,
             ("minigrad", 3): 90.0, ("pytorch", 3): 120.0}
    started = []

    def run_side(label, command):          # no training: each run's wall time from the table above
        name, number = label.split()[0], int(label.split()[-1].rstrip(")"))
        started.append((name, number))
        where = command[command.index("--json" if name == "pytorch" else "--out") + 1]
        assert os.path.isdir(os.path.dirname(where))          # a side may write there at once
        return 0, walls[name, number]

    def read_history(name, folder):
        number = int(os.path.basename(folder).split("-")[1])
        accuracy = 0.99 if name == "minigrad" else 0.98 - 0.01 * (number == 2)
        return [dict(epoch=1, val_accuracy=accuracy, train_seconds=walls[name, number] - 10, eval_seconds=2.0)]
    monkeypatch.setattr(bench_main_job, "run_side", run_side)
    monkeypatch.setattr(bench_main_job, "read_history", read_history)
    args = argparse.Namespace(repeats=3, epochs=1, width=1.0, held_out=0.2, batch=32, device="cpu", out=str(tmp_path))
    assert bench_main_job.compare_sides(args, str(tmp_path)) == 0
    assert started == [("minigrad", 1), ("pytorch", 1), ("pytorch", 2), ("minigrad", 2),
                       ("minigrad", 3), ("pytorch", 3)]
    out = capsys.readouterr().out
    assert "minigrad's wall time / PyTorch's: 0.91 (training alone: 0.90)" in out     # 100 / 110, 90 / 100: the medians
    assert "  round 2 (pytorch first): minigrad 99.00% in 130.0 s, pytorch 97.00% in 105.0 s; wall ratio 1.24" in out
    saved = json.load(open(tmp_path / "main-job.json"))
    assert [r["minigrad"]["wall_seconds"] for r in saved["rounds"]] == [100.0, 130.0, 90.0]
    assert saved["sides"]["pytorch"]["wall_seconds"] == 110.0
    assert saved["sides"]["pytorch"]["accuracy_range"] == [0.97, 0.98]


@needs_torch
@pytest.mark.parametrize("decay", [0.99, None])
def test_the_pytorch_scripts_weight_average_follows_minigrads_rule(decay, monkeypatch):
    import torch
    monkeypatch.syspath_prepend(str(bench_model.BENCHMARKS))
    import torch_main_job
    rng = np.random.default_rng(0)
    ours = [nn.Parameter(rng.standard_normal(4)), nn.Parameter(rng.standard_normal((2, 3)))]
    theirs = [torch.nn.Parameter(torch.tensor(p.numpy())) for p in ours]
    ours_average, theirs_average = WeightAverage(ours, decay), torch_main_job.WeightAverage(theirs, decay)
    for _ in range(12):
        for p, q in zip(ours, theirs):
            step = rng.standard_normal(p.shape)
            p.data += step
            with torch.no_grad():
                q += torch.tensor(step)
        ours_average.update()
        theirs_average.update()
    for a, b in zip(ours_average.averages, theirs_average.averages):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-14, atol=1e-15)
    with theirs_average.swapped_in():
        np.testing.assert_array_equal(theirs[1].detach().numpy(), theirs_average.averages[1].numpy())
    np.testing.assert_array_equal(theirs[1].detach().numpy(), ours[1].numpy())     # swapped back
