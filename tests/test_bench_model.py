"""The whole-model benchmark (``python -m googlenet bench --model``, googlenet/bench_model.py)
and what it is built from (minigrad.bench: step_times, memory, machine): a tiny run prints
every column and writes its files, the multiply-adds against hand arithmetic, the memory
against the parameters' bytes, the PyTorch twin against the minigrad model in float64, and
the GPU path (on a GPU only)."""
import csv
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from googlenet import bench_model
from googlenet.__main__ import main
from googlenet.model import GoogLeNet, googlenet_loss
from minigrad import backend, nn
from minigrad.autograd import Tensor
from minigrad.bench import machine, memory, step_times
from minigrad.bench.profile import KINDS
from minigrad.bench.step_times import StepTime

TINY = ["--model", "2x32", "--width", "0.0625", "--repeats", "1"]
TINY_WORK = dict(batch=2, image_size=32, width=0.0625, device="cpu", kernel_set="numpy")
HAS_TORCH = bench_model.torch_missing_reason() is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``bench --model 2x32 --width 0.0625 --repeats 1 --out DIR``: (exit status, output, DIR)."""
    import contextlib
    import io
    folder = tmp_path_factory.mktemp("model")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["bench", *TINY, "--out", str(folder)])
    return status, printed.getvalue(), folder


@pytest.mark.slow
def test_a_tiny_run_prints_every_column_the_machine_and_the_breakdown(tiny_run):
    status, out, _ = tiny_run
    assert status == 0
    assert "minigrad whole-model benchmark, GoogLeNet (1000 classes, width 0.0625" in out
    for line in ("machine: ", "threads: ", "usable cores; BLAS", "load average at the start: ",
                 "GEMM peak: ", "load average at the end: ", "batch 2, 32x32:"):
        assert line in out, line
    header = next(line for line in out.splitlines() if "forward ms" in line)
    for _, title, _ in bench_model.COLUMNS:
        assert title in header, title
    minigrad_row = next(line for line in out.splitlines() if line.startswith("  minigrad "))
    assert len(minigrad_row.split()) == 1 + len(bench_model.COLUMNS)
    assert minigrad_row.split()[4] == "-"                 # no GPU time on the CPU
    for kind in KINDS:
        assert f"    {kind} " in out, kind
    assert "the kinds add up to the profiled step" in out and "timed without the profile took" in out
    assert "OpenBLAS's idle threads spin " in out
    if HAS_TORCH:
        assert "minigrad and PyTorch alternately, each in a process of its own" in out and "PyTorch 2" in out
        assert any(line.startswith("  pytorch ") for line in out.splitlines())
        assert "minigrad's images/s over PyTorch's: forward " in out and "peak memory over PyTorch's: " in out
    else:
        assert "no PyTorch columns: PyTorch is not installed" in out


@pytest.mark.slow
def test_a_tiny_run_writes_its_csv_and_json(tiny_run):
    _, _, folder = tiny_run
    rows = list(csv.DictReader(open(folder / "model.csv")))
    assert [row["side"] for row in rows] == (["minigrad", "pytorch"] if HAS_TORCH else ["minigrad"])
    for row in rows:
        assert (row["batch"], row["image_size"]) == ("2", "32")
        assert float(row["step_ms"]) > 0 and float(row["forward_images_s"]) > 0 and float(row["peak_mb"]) > 0
    kinds = list(csv.DictReader(open(folder / "model-breakdown.csv")))
    assert [row["kind"] for row in kinds] == list(KINDS)
    assert sum(float(row["share"]) for row in kinds) == pytest.approx(1.0, abs=1e-3)
    saved = json.load(open(folder / "model.json"))
    assert saved["args"]["sizes"] == [[2, 32]] and saved["gemm_peak_gflops"] > 0
    assert saved["machine"]["numpy"] == np.__version__ and "avx512" in saved["machine"]
    (measured,) = saved["measured"]
    assert sum(measured["breakdown"].values()) == pytest.approx(measured["profiled_step"])
    assert measured["measured_step"] > 0


@pytest.mark.slow
def test_the_peak_memory_of_a_step_holds_the_parameters_their_gradients_and_momenta():
    """Full width at 32x32, where the 9.4 M parameters (38 MB) outweigh the activations: in a
    fresh process, the steps' peak holds the weights, the gradients and the momenta (3 x the
    parameters' bytes), and the steps add at least the gradients to what the built model holds
    (the momenta may reuse memory that building the model freed, as PyTorch's child reuses
    the minigrad model it copied)."""
    keywords = dict(TINY_WORK, width=1.0)
    model = GoogLeNet(num_classes=bench_model.CLASSES, input_size=32)
    parameter_bytes = 4 * model.num_parameters()
    assert 35e6 < parameter_bytes < 40e6
    ours = memory.peak_rss_in_child("googlenet.bench_model:minigrad_training_step", keywords)
    assert ours.before >= parameter_bytes and ours.peak >= 3 * parameter_bytes
    assert ours.step_bytes >= parameter_bytes
    assert ours.peak < 4 * 2 ** 30                         # bytes, not KiB counted as bytes
    if HAS_TORCH:
        theirs = memory.peak_rss_in_child("googlenet.bench_model:torch_training_step", keywords)
        assert theirs.peak >= 3 * parameter_bytes and theirs.step_bytes >= parameter_bytes


def test_a_child_does_not_inherit_the_parents_peak():
    """Linux's ru_maxrss counts the forked copy of the parent as the child's: a child of a
    process holding 256 MiB would report at least that. VmHWM is the child's own."""
    held = np.ones(2 ** 26, dtype=np.float32)                # 256 MiB, every page touched
    child = subprocess.run([sys.executable, "-c", "from minigrad.bench.memory import max_rss_bytes; "
                            "print(max_rss_bytes())"], capture_output=True, text=True, check=True,
                           env=memory.child_environment())
    assert 0 < int(child.stdout) < 128 * 2 ** 20 and held.sum() == 2 ** 26


def test_a_failing_child_is_an_error_with_its_message():
    with pytest.raises(RuntimeError, match="no_such_builder"):
        memory.peak_rss_in_child("googlenet.bench_model:no_such_builder", {})


def test_multiply_adds_of_the_forward_and_the_training_step_by_hand():
    model = GoogLeNet(num_classes=1000)
    forward, training = bench_model.multiply_adds(model)
    assert forward == 1_582_671_872                          # the README's Table 1 count
    # each auxiliary head at 224: 5x5/3 pool to 4x4, a 1x1 conv to 128, fc 2048 -> 1024, fc 1024 -> 1000
    aux1 = 4 * 4 * 128 * 512 + 2048 * 1024 + 1024 * 1000     # on 4a's 512 channels
    aux2 = 4 * 4 * 128 * 528 + 2048 * 1024 + 1024 * 1000     # on 4d's 528
    assert training == 3 * (forward + aux1 + aux2) == 4_773_132_288


def test_each_sides_figures_follow_from_its_times():
    figures = bench_model.side_figures(StepTime(0.5, None), StepTime(2.0, None), batch=8,
                                       work=(1_000_000_000, 3_000_000_000), gemm_peak=100.0)
    assert figures["forward_images_s"] == 16 and figures["step_images_s"] == 4
    assert figures["forward_gflops"] == 2 * 1e9 * 8 / 0.5 / 1e9 == 32.0
    assert figures["step_gflops"] == 24.0 and figures["step_percent_of_peak"] == 24.0
    on_a_gpu = bench_model.side_figures(None, StepTime(0.01, 0.02), 8, (1, 3), 100.0)
    assert on_a_gpu["step_ms"] == 10 and on_a_gpu["step_gpu_ms"] == 20 and on_a_gpu["step_images_s"] == 400
    assert on_a_gpu["forward_ms"] is None                    # a step timed without a forward


def test_steps_are_timed_alternately_after_their_warm_ups():
    calls = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    medians = step_times.time_alternately(steps, repeats=3, warmups=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert set(medians) == {"a", "b"} and all(t.gpu is None and t.cpu_side >= 0 for t in medians.values())
    assert step_times.time_training_step(lambda: calls.append("c"), repeats=2, warmups=2).cpu_side >= 0
    assert calls[-4:] == ["c"] * 4


def test_on_a_gpu_a_step_is_timed_by_cupyx_profiler_benchmark(monkeypatch):
    """cupyx.profiler.benchmark stood in for: one call, one repeat, its two clocks read."""
    asked = []

    def benchmark(step, n_repeat, n_warmup, name):
        asked.append((n_repeat, n_warmup))
        step()
        return types.SimpleNamespace(cpu_times=np.array([0.003]), gpu_times=np.array([[0.005]]))

    monkeypatch.setitem(sys.modules, "cupyx", types.ModuleType("cupyx"))
    monkeypatch.setitem(sys.modules, "cupyx.profiler", types.SimpleNamespace(benchmark=benchmark))
    ran = []
    timed = step_times.time_once(lambda: ran.append(1), xp=types.SimpleNamespace())
    assert timed == StepTime(0.003, 0.005) and timed.seconds == 0.005 and asked == [(1, 0)] and ran == [1]
    assert step_times.median_step_time([StepTime(1, 4), StepTime(3, 2), StepTime(2, 9)]) == StepTime(2, 4)


def test_the_machine_line_names_the_cpu_cores_avx512_numpy_and_blas():
    found = machine.machine()
    line = machine.machine_line(found)
    assert found["cpu"] and f"{found['cores']} cores" in line and "AVX-512" in line
    assert f"NumPy {np.__version__}" in line and "BLAS " in line and found["date"] in line
    assert machine.threads()["usable cores"] >= 1
    assert machine.tf32_line() == "TF32 off (backend.allow_tf32, MINIGRAD_TF32)"
    try:
        backend.allow_tf32(True)
        assert machine.tf32_line().startswith("TF32 on")
    finally:
        backend.allow_tf32(None)


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
@pytest.mark.parametrize("size", [224, 32])
def test_the_pytorch_twin_computes_what_the_model_computes(size):
    """float64, dropout off: the same three logits and the same gradient for every parameter."""
    import torch
    twin_module = bench_model.benchmarks_module("torch_googlenet")
    model = GoogLeNet(num_classes=10, width=1 / 8, input_size=size, seed=2).astype(np.float64)
    for layer in model.modules():
        if isinstance(layer, nn.Dropout):
            layer.p = 0.0
    twin = twin_module.torch_googlenet(model).double()
    x = np.random.default_rng(3).standard_normal((2, 3, size, size))
    labels = np.array([1, 7])
    ours = model.train()(Tensor(x))
    googlenet_loss(ours, labels).backward()
    theirs = twin.train()(torch.from_numpy(x))
    tF = torch.nn.functional
    (tF.cross_entropy(theirs[0], torch.from_numpy(labels))
     + 0.3 * sum(tF.cross_entropy(aux, torch.from_numpy(labels)) for aux in theirs[1:])).backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    pairs = list(zip(model.parameters(), twin.parameters()))
    assert len(pairs) == len(list(model.parameters())) == len(list(twin.parameters()))
    for ours_p, theirs_p in pairs:
        assert ours_p.shape == tuple(theirs_p.shape)
        np.testing.assert_allclose(ours_p.grad, theirs_p.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.eval()(Tensor(x)).numpy(), twin.eval()(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_the_twin_refuses_what_it_cannot_convert():
    twin_module = bench_model.benchmarks_module("torch_googlenet")
    with pytest.raises(ValueError, match="batch normalization"):
        twin_module.torch_googlenet(GoogLeNet(num_classes=10, width=1 / 16, input_size=32, batch_norm=True))
    with pytest.raises(TypeError, match="expected a googlenet.model.GoogLeNet"):
        twin_module.torch_googlenet(nn.Linear(2, 2))


def test_without_pytorch_the_model_run_says_why_and_times_minigrad_alone(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)         # as if not installed
    assert main(["bench", *TINY]) == 0
    out = capsys.readouterr().out
    assert "no PyTorch columns: PyTorch is not installed" in out
    assert not any(line.startswith("  pytorch ") for line in out.splitlines())


def test_no_torch_leaves_pytorch_out(monkeypatch, capsys):
    timed, measured = [], []

    def time_in_own_processes(builders, keywords, calls, *args, **kwargs):
        timed.append(builders)
        return {call: {name: StepTime(0.1, None) for name in builders} for call in calls}

    monkeypatch.setattr(bench_model, "time_in_own_processes", time_in_own_processes)
    monkeypatch.setattr(bench_model.memory, "peak_rss_in_child",
                        lambda builder, *a, **k: measured.append(builder) or memory.RssPeak(1, 2))
    assert main(["bench", *TINY, "--no-torch"]) == 0
    assert timed == [{"minigrad": "googlenet.bench_model:minigrad_work"}]
    assert measured == ["googlenet.bench_model:minigrad_training_step"]
    assert "minigrad and PyTorch" not in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.skipif(not backend.is_gpu_available(), reason=f"needs a GPU: {backend.gpu_unavailable_reason()}")
def test_on_a_gpu_the_model_run_gives_both_clocks_the_pool_peak_and_pytorch(tmp_path, capsys):
    assert main(["bench", *TINY, "--device", "cuda", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "TF32 off" in out and "CuPy pool high-water over one step" in out
    saved = json.load(open(tmp_path / "model.json"))
    (measured,) = saved["measured"]
    ours = measured["sides"]["minigrad"]
    assert ours["step_gpu_ms"] > 0 and ours["step_ms"] > 0
    model = GoogLeNet(num_classes=bench_model.CLASSES, width=0.0625, input_size=32)
    assert ours["peak_mb"] * 2 ** 20 >= 3 * 4 * model.num_parameters()     # weights, gradients, momenta
    assert sum(measured["breakdown"].values()) == pytest.approx(measured["profiled_step"])
    if HAS_TORCH:
        import torch
        if torch.cuda.is_available():
            assert measured["sides"]["pytorch"]["step_gpu_ms"] > 0
            assert "max reserved over one step" in measured["sides"]["pytorch"]["memory"]


# --- each side in a process of its own --------------------------------------------------------
SIDES = {"side_a": "timed_work:side_a", "side_b": "timed_work:side_b"}


def logged_calls(log):
    """[(side, call, process id, seconds on the monotonic clock)] in the order of the calls."""
    return [(side, call, int(pid), float(when)) for side, call, pid, when in
            (line.split() for line in log.read_text().splitlines())]


def test_on_the_cpu_each_side_runs_in_its_own_process_in_turn_after_a_rest(tmp_path):
    log = tmp_path / "calls.log"
    rest = 0.05
    medians = step_times.time_in_own_processes(SIDES, dict(log=str(log)), ("forward", "training_step"),
                                               repeats=3, warmups=2, settle_seconds=rest)
    assert set(medians) == {"forward", "training_step"}
    assert all(set(times) == set(SIDES) and all(t.gpu is None and t.cpu_side >= 0 for t in times.values())
               for times in medians.values())
    calls = logged_calls(log)
    rounds = [("side_a", "forward"), ("side_b", "forward")] * 3
    warm_ups = [("side_a", "forward")] * 2 + [("side_b", "forward")] * 2
    assert [(side, call) for side, call, _, _ in calls] == (
        warm_ups + rounds + [(s, "training_step") for s, _ in warm_ups + rounds])
    process = {side: {pid for s, _, pid, _ in calls if s == side} for side in SIDES}
    assert len(process["side_a"]) == len(process["side_b"]) == 1 and process["side_a"] != process["side_b"]
    assert os.getpid() not in process["side_a"] | process["side_b"]
    timed = [when for index, (_, _, _, when) in enumerate(calls) if index % 10 >= 4]   # the rounds' calls
    assert all(later - earlier >= rest for earlier, later in zip(timed, timed[1:]))


def test_each_side_can_run_with_environment_variables_of_its_own(tmp_path):
    """A setting a library reads as it loads (OpenBLAS's kernels: benchmarks/blas_kernels.py)
    is given to one side's process alone."""
    log = tmp_path / "values.log"
    step_times.time_in_own_processes({"one": "timed_work:variable_reader", "two": "timed_work:variable_reader"},
                                     dict(log=str(log), variable="TIMED_WORK_SETTING"), ("forward",),
                                     repeats=1, warmups=0, settle_seconds=0,
                                     variables={"one": {"TIMED_WORK_SETTING": "1"}})
    assert log.read_text().split() == ["1", "-"]


def test_a_child_that_cannot_build_or_fails_in_a_call_is_an_error_with_its_message(tmp_path):
    with pytest.raises(RuntimeError, match="timed_work:no_work(.|\n)*cannot build anything"):
        step_times.time_in_own_processes({"a": "timed_work:no_work"}, {}, ("forward",), repeats=1)
    with pytest.raises(RuntimeError, match="side_a's training_step fails on purpose"):
        step_times.time_in_own_processes({"a": "timed_work:side_a"},
                                         dict(log=str(tmp_path / "log"), fail_on="training_step"),
                                         ("forward", "training_step"), repeats=1, settle_seconds=0)
