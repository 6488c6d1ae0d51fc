"""The ops benchmark: GoogLeNet's op shapes against the model, both command lines
(``python -m googlenet bench`` and ``python -m minigrad.bench ops --shapes ...``) on a
smoke run, and their one-line errors. That minigrad never imports googlenet:
test_layering.py."""
import sys

import numpy as np
import pytest

from googlenet.__main__ import main as googlenet_main
from googlenet.bench import googlenet_op_shapes
from googlenet.model import GoogLeNet
from minigrad import backend, bench, kernels, nn

from conftest import KERNEL_SETS, skip_without_twin

GOOGLENET_SHAPES = "googlenet.bench:googlenet_op_shapes"


def run_bench(entry, argv):
    """The exit status of ``python -m googlenet bench ARGV`` or
    ``python -m minigrad.bench ops --shapes googlenet.bench:googlenet_op_shapes ARGV``."""
    if entry == "googlenet":
        return googlenet_main(["bench", *argv])
    return bench.main(["ops", "--shapes", GOOGLENET_SHAPES, *argv])


def one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_googlenet_op_shapes_are_the_models_convolutions_on_table_1s_maps():
    shapes = googlenet_op_shapes(batch=2, image_size=224)
    convolutions = [s.params["weight"] for s in shapes if s.op == "conv2d"]
    model = GoogLeNet()
    assert sorted(convolutions) == sorted(m.weight.shape for m in model.modules() if isinstance(m, nn.Conv2d))
    by_name = {s.name: s for s in shapes}
    assert by_name["conv1"].x_shape == (2, 3, 224, 224)
    assert by_name["conv1"].params == dict(weight=(64, 3, 7, 7), stride=2, padding=3)
    assert by_name["3a/5x5"].x_shape == (2, 16, 28, 28)
    assert by_name["aux/4a/pool"].x_shape == (2, 512, 14, 14)
    assert by_name["aux/4d/conv"].x_shape == (2, 528, 4, 4)       # after the 5x5/3 pool
    assert [s.name for s in shapes if s.op == "lrn"] == ["lrn/pool1", "lrn/conv2"]


@pytest.mark.parametrize("entry", ["googlenet", "minigrad"])
def test_a_quick_run_times_the_chosen_ops(entry, capsys):
    assert run_bench(entry, ["--quick", "--only", "aux/4a/pool", "--blas-threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "batch 1, 224x224 input, median of 1" in out and "BLAS threads 1" in out
    assert "aux/4a/pool" in out and "1 of 1 ops meet their targets" in out


@pytest.mark.parametrize("kernel_set", KERNEL_SETS)
def test_the_kernel_set_is_chosen_and_named(kernel_set, monkeypatch, capsys):
    skip_without_twin(kernel_set)
    used = []
    real_time_op = bench.time_op
    monkeypatch.setattr(bench, "time_op", lambda *a, **k: used.append(kernels.current(np.zeros(1)))
                        or real_time_op(*a, **k))
    assert run_bench("googlenet", ["--quick", "--only", "3a/pool", "--kernels", kernel_set]) == 0
    assert f"kernels {kernel_set}," in capsys.readouterr().out
    assert used and set(used) == {kernels.SETS[kernel_set]}


@pytest.mark.parametrize("entry", ["googlenet", "minigrad"])
@pytest.mark.parametrize("argv, message", [
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--batch", "0"], "--batch must be at least 1, got 0"),
    (["--batch", "-2", "--quick"], "--batch must be at least 1, got -2"),
    (["--blas-threads", "0"], "--blas-threads must be at least 1"),
    (["--image-size", "16"], "smallest usable input is 31x31"),
    (["--only", "nothing"], "--only nothing matches no op of"),
])
def test_bad_options_are_one_line_errors(entry, argv, message, capsys):
    assert run_bench(entry, argv) == 2
    assert message in one_error_line(capsys)


@pytest.mark.skipif(backend.is_gpu_available(), reason="a GPU is usable here")
def test_cuda_without_a_gpu_is_a_one_line_error(capsys):
    assert run_bench("googlenet", ["--device", "cuda", "--quick"]) == 2
    assert "no GPU is usable" in one_error_line(capsys)


def test_blas_threads_without_threadpoolctl_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)       # as if not installed
    assert run_bench("minigrad", ["--blas-threads", "1", "--quick"]) == 2
    assert "--blas-threads needs threadpoolctl" in one_error_line(capsys)


def test_the_minigrad_command_names_the_network_it_times(capsys):
    assert run_bench("minigrad", ["--quick", "--only", "lrn/pool1"]) == 0
    assert f"minigrad ops benchmark, {GOOGLENET_SHAPES}:" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    ([], "--shapes MODULE:FUNCTION is required"),
    (["--shapes", "googlenet.bench"], "--shapes googlenet.bench: expected MODULE:FUNCTION"),
    (["--shapes", "no_such_network:op_shapes"], "No module named 'no_such_network'"),
    (["--shapes", "googlenet.bench:no_such_function"], "googlenet.bench has no function 'no_such_function'"),
    (["--shapes", "googlenet.bench:table"], "googlenet.bench has no function 'table'"),
])
def test_shapes_missing_or_unresolved_is_a_one_line_error_pointing_to_googlenet_bench(argv, message, capsys):
    assert bench.main(["ops", *argv, "--quick"]) == 2
    error = one_error_line(capsys)
    assert message in error and "python -m googlenet bench" in error
