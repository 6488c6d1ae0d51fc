"""The CUDA kernels without a GPU: every .cu file compiles to PTX for Hopper (sm_90) with
nvcc, in float and double, and its CPU twin (the same source through g++, run thread by
thread) gives the same results whatever the grid, so the grid-stride loops are right.
(The kernels against the reference set, on random shapes: test_kernel_sets.py.)"""
import glob
import os
import shutil
import subprocess

import numpy as np
import pytest

from minigrad.kernels import cuda, reference
from minigrad.kernels.cuda import launch
from minigrad.geometry import window
from minigrad.ops.pool import avg_pool_divisor

from conftest import skip_without_twin

SOURCES = sorted(glob.glob(os.path.join(launch.FOLDER, "*.cu")))


def test_there_are_kernels_for_convolution_pooling_lrn_and_dropout_masks():
    assert [os.path.basename(s) for s in SOURCES] == ["counter_random.cu", "im2col.cu", "layout.cu",
                                                      "lrn.cu", "pool.cu"]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("real", ["float", "double"])
@pytest.mark.parametrize("source", SOURCES, ids=os.path.basename)
def test_each_source_compiles_to_ptx_for_sm_90(source, real, tmp_path):
    result = subprocess.run(["nvcc", "--ptx", "-arch=sm_90", f"-Dreal={real}", source,
                             "-o", str(tmp_path / "out.ptx")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    names = {"counter_random.cu": ["uniform"], "im2col.cu": ["im2col", "col2im"],
             "layout.cu": ["channels_to_images", "images_to_channels"], "lrn.cu": ["lrn_forward", "lrn_backward"],
             "pool.cu": ["max_pool_forward", "max_pool_backward", "max_pool_forward_wide",
                         "max_pool_backward_wide", "avg_pool_forward", "avg_pool_backward"]}
    for kernel in names[os.path.basename(source)]:
        assert f".entry {kernel}(" in ptx, f"{kernel} missing (extern \"C\" keeps the name unmangled)"


def test_the_grid_stride_loop_is_defined_once_in_grid_h_and_included_by_every_source():
    assert "#define GRID_STRIDE_LOOP" in launch.source("grid.h")
    for source in SOURCES:
        text = launch.source(os.path.basename(source))
        assert '#include "grid.h"' in text and "#define GRID_STRIDE_LOOP" not in text, source


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("source", SOURCES, ids=os.path.basename)
def test_the_string_nvrtc_compiles_holds_its_headers_and_compiles_alone(source, tmp_path):
    """On a GPU, CuPy hands NVRTC the source as a string, with no folder to find grid.h in:
    launch.expanded_source writes the header in; compiled from an empty folder, it still builds."""
    text = launch.expanded_source(os.path.basename(source))
    assert "#include \"" not in text and "#define GRID_STRIDE_LOOP" in text
    (tmp_path / "alone.cu").write_text(text)
    result = subprocess.run(["nvcc", "--ptx", "-arch=sm_90", "-Dreal=float", str(tmp_path / "alone.cu"),
                             "-o", str(tmp_path / "out.ptx")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
@pytest.mark.parametrize("real", ["float", "double"])
@pytest.mark.parametrize("source", SOURCES, ids=os.path.basename)
def test_each_twin_compiles_without_warnings(source, real, tmp_path):
    command = launch.twin_command(os.path.basename(source), real, str(tmp_path / "twin.so"))
    result = subprocess.run(command[:1] + ["-Wall", "-Wextra"] + command[1:], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def run_every_kernel(x, gy_seed=1):
    """Every kernel of the set once, on x (N, C, H, W): their outputs, in a list."""
    rng = np.random.default_rng(gy_seed)
    W, W_1x1 = (rng.standard_normal((3, x.shape[1]) + kernel).astype(x.dtype) for kernel in ((3, 2), (1, 1)))
    b = rng.standard_normal(3).astype(x.dtype)
    pool_win = window(x.shape[2:], 3, 2, 1, ceil_mode=True)
    outputs = []
    for weight, bias, conv_win, relu in [(W, None, window(x.shape[2:], (3, 2), (2, 1), (1, 1)), False),
                                         (W, b, window(x.shape[2:], (3, 2), (1, 2), (0, 1)), True),
                                         (W_1x1, b, window(x.shape[2:], 1, 1, 0), True)]:
        y, cache = cuda.conv2d_forward(x, weight, bias, conv_win, relu=relu)
        outputs += [y, *[g for g in cuda.conv2d_backward(rng.standard_normal(y.shape).astype(x.dtype), cache)
                         if g is not None]]
    y, cache = cuda.max_pool2d_forward(x, pool_win)
    outputs += [y, cuda.max_pool2d_backward(rng.standard_normal(y.shape).astype(x.dtype), cache)]
    divisor = avg_pool_divisor(pool_win, count_include_pad=False).astype(x.dtype)
    y, cache = cuda.avg_pool2d_forward(x, pool_win, divisor)
    outputs += [y, cuda.avg_pool2d_backward(rng.standard_normal(y.shape).astype(x.dtype), cache)]
    y, cache = cuda.lrn_forward(x, 5, 1.0, 0.75, 2.0)
    outputs += [y, cuda.lrn_backward(rng.standard_normal(y.shape).astype(x.dtype), cache)]
    return outputs


@pytest.mark.parametrize("grid", [(1, 1), (2, 3), (7, 32), (64, 64)], ids=str)
def test_the_result_does_not_depend_on_the_grid(grid, monkeypatch):
    # (1, 1): one thread loops over everything; (64, 64): more threads than elements
    skip_without_twin("cuda")
    x = np.random.default_rng(0).standard_normal((2, 6, 7, 5))
    expected = run_every_kernel(x)
    monkeypatch.setattr(launch, "TWIN_GRID", grid)
    for got, want in zip(run_every_kernel(x), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64_kernels_match_the_reference(dtype):
    skip_without_twin("cuda")
    x = np.random.default_rng(3).standard_normal((2, 4, 9, 8)).astype(dtype)
    win = window((9, 8), 3, 2, 0, ceil_mode=True)
    y, _ = cuda.max_pool2d_forward(x, win)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, reference.max_pool2d_forward(x, win)[0])


def test_integer_arrays_are_refused_by_name():
    with pytest.raises(TypeError, match="the cuda kernels take float32 or float64, got int64"):
        launch.real_type(np.zeros(1, np.int64).dtype)


def test_a_compile_error_in_the_twin_is_reported_with_g_plus_plus_output(monkeypatch, tmp_path):
    skip_without_twin("cuda")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    broken = tmp_path / "broken.cu"
    broken.write_text('extern "C" __global__ void k(real* x) { x[0] = undefined_name; }\n')
    monkeypatch.setattr(launch, "FOLDER", str(tmp_path))
    (tmp_path / "twin.h").write_text(open(os.path.join(os.path.dirname(launch.__file__), "twin.h")).read())
    with pytest.raises(RuntimeError, match=r"(?s)g\+\+ could not compile the twin of broken.cu:.*undefined_name"):
        launch.twin_library("broken.cu", "double")
