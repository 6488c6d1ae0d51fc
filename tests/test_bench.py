"""The ops benchmark: GoogLeNet's op shapes against the model, the command line
(``python -m googlenet bench``) on a smoke run, and its one-line errors. That minigrad
never imports googlenet: test_layering.py."""
import sys

import numpy as np
import pytest

from googlenet.__main__ import main as googlenet_main
from googlenet.bench import googlenet_op_shapes
from googlenet.model import GoogLeNet
from minigrad import backend, bench, kernels, nn

from conftest import KERNEL_SETS, skip_without_twin

SMOKE = ["--quick", "--only", "3a/pool_proj"]       # one op, once: seconds even if not refused


def run_bench(argv):
    """The exit status of ``python -m googlenet bench ARGV`` (argparse's own refusals exit)."""
    try:
        return googlenet_main(["bench", *argv])
    except SystemExit as exit:
        return exit.code


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


def test_a_quick_run_times_the_chosen_ops(capsys):
    assert run_bench(["--quick", "--only", "aux/4a/pool", "--blas-threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "batch 1, 224x224 input, median of 1" in out and "BLAS threads 1" in out
    assert "aux/4a/pool" in out and "1 of 1 ops meet their targets" in out


@pytest.mark.parametrize("kernel_set", KERNEL_SETS)
def test_the_kernel_set_is_chosen_and_named(kernel_set, monkeypatch, capsys):
    skip_without_twin(kernel_set)
    used = []
    real_time_op = bench.time_op
    monkeypatch.setattr(bench.op_times, "time_op", lambda *a, **k: used.append(kernels.current(np.zeros(1)))
                        or real_time_op(*a, **k))
    assert run_bench(["--quick", "--only", "3a/pool", "--kernels", kernel_set]) == 0
    assert f"kernels {kernel_set}," in capsys.readouterr().out
    assert used and set(used) == {kernels.SETS[kernel_set]}


@pytest.mark.parametrize("argv, message", [
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--batch", "0"], "--batch must be at least 1, got 0"),
    (["--batch", "-2", "--quick"], "--batch must be at least 1, got -2"),
    (["--blas-threads", "0"], "--blas-threads must be at least 1"),
    (["--image-size", "16"], "smallest usable input is 31x31"),
    (["--only", "nothing"], "--only nothing matches no op of"),
    (["--compare", "cpu", "tpu"], "unknown device 'tpu'"),
    (["--device", "cpu,cuda", *SMOKE], "unknown device 'cpu,cuda'"),       # a comma is no comparison
    (["--out", "results", *SMOKE],
     "--out results: not an option of the ops table; it belongs to --compare, --model and --main-job"),
    (["--torch", *SMOKE], "--torch: not an option of the ops table; it belongs to --compare"),
    (["--compare", "--kernels", "numpy", *SMOKE], "--kernels numpy: not an option of --compare (a comparison "
     "times every kernel set of the devices it names); it belongs to the ops table and --model"),
    (["--compare", "--device", "cuda", *SMOKE], "--device cuda: not an option of --compare (a comparison"),
    (["--model", "--only", "3a"], "--only 3a: not an option of --model; it belongs to the ops table and --compare"),
    (["--model", "--batch", "8"], "--batch 8: not an option of --model; it belongs to the ops table, --compare"),
    (["--main-job", "--only", "3a"], "--only 3a: not an option of --main-job"),
    (["--main-job", "--no-torch"], "--no-torch: not an option of --main-job; it belongs to --model"),
    (["--compare", "--epochs", "3"], "--epochs 3: not an option of --compare; it belongs to --main-job"),
    (["--model", "8x16"], "smallest usable input is 31x31"),
    (["--model", "0x224"], "--model's batch size must be at least 1, got 0"),
    (["--model", "8by224"], "expected BATCHxSIZE such as 8x224, got '8by224'"),
    (["--model", "--width", "0"], "--width must be finite and positive, got 0.0"),
    (["--main-job", "--held-out", "1"], "--held-out must lie in (0, 1)"),
    (["--main-job", "--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--model", "--main-job"], "not allowed with argument"),
])
def test_bad_options_are_one_line_errors(argv, message, capsys):
    assert run_bench(argv) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("device", ["CPU", " cpu", "Cpu ", " CPU\t"])
def test_device_names_are_read_in_any_case_with_spaces_around(device, capsys):
    assert run_bench([*SMOKE, "--device", device]) == 0
    assert "device cpu, kernels numpy," in capsys.readouterr().out


@pytest.mark.skipif(backend.is_gpu_available(), reason="a GPU is usable here")
@pytest.mark.parametrize("device", ["gpu", "CUDA", " Gpu "])
def test_gpu_and_cuda_in_any_case_name_the_gpu(device, capsys):
    assert run_bench([*SMOKE, "--device", device]) == 2
    assert "device 'cuda:0' requested but no GPU is usable" in one_error_line(capsys)


@pytest.mark.parametrize("device", ["gpu", "CUDA", " Gpu "])
def test_with_a_gpu_gpu_and_cuda_in_any_case_time_the_cuda_kernels(device, monkeypatch, capsys):
    monkeypatch.setattr(backend, "array_module_for", lambda name: np)       # as if a GPU were there
    timed = []
    monkeypatch.setattr(bench, "time_ops", lambda shapes, repeats, device, progress: timed.append(
        (device, kernels.current(np.zeros(1)))) or [])
    monkeypatch.setattr(bench, "print_summary", lambda rows: None)
    assert run_bench([*SMOKE, "--device", device]) == 0
    assert timed == [("cuda:0", kernels.SETS["cuda"])]
    assert "device cuda:0, kernels cuda," in capsys.readouterr().out


def test_a_comparison_reads_its_device_names_the_same_way(monkeypatch):
    from googlenet import bench as googlenet_bench
    compared = []
    monkeypatch.setattr(googlenet_bench, "run_comparison", lambda args, shapes: compared.append(args.compare))
    assert run_bench([*SMOKE, "--compare", " CPU", " gpu ", "cuda"]) == 0
    assert run_bench([*SMOKE, "--compare"]) == 0
    assert compared == [["cpu", "cuda"], ["cpu", "cuda"]]


@pytest.mark.skipif(backend.is_gpu_available(), reason="a GPU is usable here")
@pytest.mark.parametrize("mode", [["--quick"], ["--model", "--quick"], ["--main-job"]])
def test_cuda_without_a_gpu_is_a_one_line_error(mode, capsys):
    assert run_bench([*mode, "--device", "cuda"]) == 2
    assert "no GPU is usable" in one_error_line(capsys)


def test_blas_threads_without_threadpoolctl_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)       # as if not installed
    assert run_bench(["--blas-threads", "1", "--quick"]) == 2
    assert "--blas-threads needs threadpoolctl" in one_error_line(capsys)


def test_the_command_names_the_network_it_times(capsys):
    assert run_bench(["--quick", "--only", "lrn/pool1"]) == 0
    assert "minigrad ops benchmark, GoogLeNet:" in capsys.readouterr().out


# --- FLOPs and bytes, against hand arithmetic ---------------------------------------------
def conv_shape(x_shape, weight, stride=1, padding=0):
    return bench.OpShape("conv", "conv2d", x_shape, dict(weight=weight, stride=stride, padding=padding))


def pool_shape(op, x_shape, kernel, stride, padding=0, ceil_mode=False):
    return bench.OpShape("pool", op, x_shape, dict(kernel_size=kernel, stride=stride, padding=padding,
                                                   ceil_mode=ceil_mode))


def test_a_convolutions_flops_are_two_per_multiply_add():
    # GoogLeNet's conv1 at 224: 64 filters of 3x7x7 at 112x112 outputs; 118M multiply-adds per image
    conv1 = conv_shape((1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    assert bench.op_output_shape(conv1) == (1, 64, 112, 112)
    assert bench.op_flops(conv1) == 2 * (112 * 112 * 64) * (3 * 7 * 7) == 236_027_904
    # 2 images of 16 channels 8x8, 32 filters 3x3 "same": 2*32*64 outputs of 16*9 products
    assert bench.op_flops(conv_shape((2, 16, 8, 8), (32, 16, 3, 3), padding=1)) == 2 * (2 * 32 * 64) * 144
    # a 1x1 convolution without padding: 5x5 outputs
    assert bench.op_flops(conv_shape((4, 64, 5, 5), (16, 64, 1, 1))) == 2 * (4 * 16 * 25) * 64


def test_a_convolutions_bytes_are_input_weights_and_output_in_float32():
    shape = conv_shape((2, 16, 8, 8), (32, 16, 3, 3), padding=1)
    x, w, y = 2 * 16 * 64, 32 * 16 * 9, 2 * 32 * 64
    assert bench.op_bytes(shape) == 4 * (x + w + y) == 4 * 10752
    assert bench.op_bytes(shape, itemsize=8) == 8 * 10752
    assert bench.arithmetic_intensity(shape) == 2 * (2 * 32 * 64) * 144 / (4 * 10752)
    # im2col writes the (16*3*3, 2*8*8) columns after reading x
    assert bench.im2col_bytes(shape) == 4 * (x + 144 * 128)


def test_pooling_counts_comparisons_and_adds_per_window():
    # GoogLeNet's pool1: 3x3/2 ceil over 64 x 112x112 -> 56x56; 8 comparisons per output
    pool1 = pool_shape("max_pool2d", (1, 64, 112, 112), 3, 2, ceil_mode=True)
    assert bench.op_output_shape(pool1) == (1, 64, 56, 56)
    assert bench.op_flops(pool1) == 64 * 56 * 56 * 8
    assert bench.op_bytes(pool1) == 4 * (64 * 112 * 112 + 64 * 56 * 56)
    # 3x3/1 p1 (an Inception pool) keeps the size; floor mode 7x7/1 average: 8 adds + 1 divide
    assert bench.op_output_shape(pool_shape("max_pool2d", (2, 8, 28, 28), 3, 1, padding=1)) == (2, 8, 28, 28)
    average = pool_shape("avg_pool2d", (2, 1024, 7, 7), 7, 1)
    assert bench.op_flops(average) == 2 * 1024 * 1 * 49
    assert bench.op_bytes(average) == 4 * (2 * 1024 * 49 + 2 * 1024)
    # a stride of None means the kernel size
    assert bench.op_output_shape(pool_shape("max_pool2d", (1, 1, 8, 8), 2, None)) == (1, 1, 4, 4)


def test_lrn_counts_its_arithmetic_per_element():
    lrn = bench.OpShape("lrn", "lrn", (2, 64, 14, 14), dict(size=5, alpha=1e-4, beta=0.75, k=1.0))
    elements = 2 * 64 * 14 * 14
    assert bench.op_output_shape(lrn) == (2, 64, 14, 14)
    assert bench.op_flops(lrn) == elements * (5 + 4)
    assert bench.op_bytes(lrn) == 4 * 2 * elements
    assert bench.arithmetic_intensity(lrn) == 9 / 8          # whatever the size: the same per element


@pytest.mark.parametrize("batch", [1, 4])
def test_every_googlenet_op_has_positive_work_and_its_models_output_shape(batch):
    shapes = googlenet_op_shapes(batch, 64)
    for shape in shapes:
        assert bench.op_flops(shape) > 0 and bench.op_bytes(shape) > 0, shape.name
    by_name = {s.name: s for s in shapes}
    assert bench.op_output_shape(by_name["conv1"]) == (batch, 64, 32, 32)
    assert bench.op_output_shape(by_name["pool1"]) == (batch, 64, 16, 16)
    assert bench.op_output_shape(by_name["3a/pool"]) == by_name["3a/pool"].x_shape


def test_the_roofline_is_the_lower_roof():
    intensity = np.array([0.25, 1.0, 5.0, 64.0])
    attainable = bench.attainable_gflops(intensity, peak_gflops=100.0, bandwidth_gbs=20.0)
    np.testing.assert_array_equal(attainable, [5.0, 20.0, 100.0, 100.0])     # ridge at 100 / 20 = 5
    assert bench.attainable_gflops(2.0, 100.0, 20.0) == 40.0


def test_the_machines_roofs_are_measured_as_positive_rates():
    # a smoke run on small sizes: the rates are whatever the machine gives, only their sign is checked
    assert bench.gemm_peak_gflops(size=64, repeats=1) > 0
    assert bench.copy_bandwidth_gbs(megabytes=1, repeats=1) > 0
