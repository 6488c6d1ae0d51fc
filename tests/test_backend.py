"""The backend seam: array modules, device names, "is a GPU usable" (which must never
raise), random generators, transfers. GPU cases run only where CuPy sees a device."""
import pathlib
import subprocess
import sys
import textwrap
import types

import numpy
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import Tensor, backend

needs_gpu = pytest.mark.skipif(not backend.is_gpu_available(),
                               reason=f"needs a GPU: {backend.gpu_unavailable_reason()}")


# --- array modules -------------------------------------------------------------------
def test_get_array_module_of_numpy_arrays_and_mixtures():
    a = numpy.ones(3)
    assert backend.get_array_module(a) is numpy
    assert backend.get_array_module(a, numpy.float32(1), 2.0, None, [1, 2]) is numpy
    assert backend.get_array_module() is numpy


class FakeCupyArray:
    pass


def test_get_array_module_picks_cupy_when_any_argument_is_a_cupy_array(monkeypatch):
    fake_cupy = types.SimpleNamespace(ndarray=FakeCupyArray)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    assert backend.get_array_module(numpy.ones(2), FakeCupyArray()) is fake_cupy
    assert backend.get_array_module(numpy.ones(2), 3.0) is numpy


# --- device names -----------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [("cpu", "cpu"), ("CPU", "cpu"), (None, "cpu"), ("cuda", "cuda:0"),
                                            (" cuda ", "cuda:0"), ("cuda:0", "cuda:0"), ("cuda:1", "cuda:1"),
                                            ("gpu", "cuda:0")])
def test_parse_device_accepts(name, expected):
    assert backend.parse_device(name) == expected


@pytest.mark.parametrize("name", ["tpu", "cuda:", "cuda:x", "cuda:-1", "cuda1", "", 0, "cpu:0"])
def test_parse_device_rejects_with_a_clear_message(name):
    with pytest.raises(ValueError, match=r"unknown device .*: expected 'cpu', 'cuda' or 'cuda:N'"):
        backend.parse_device(name)


# --- "is a GPU usable" never raises -------------------------------------------------------------
def no_cupy(monkeypatch, error=ImportError("No module named 'cupy'")):
    """Make the backend believe that importing CuPy failed with ``error``."""
    monkeypatch.setattr(backend, "_cupy_module", None)
    monkeypatch.setattr(backend, "_cupy_import_error", error)


def fake_cupy(monkeypatch, get_device_count):
    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    module = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    monkeypatch.setattr(backend, "_cupy_module", module)
    monkeypatch.setattr(backend, "_cupy_import_error", None)


def test_gpu_unavailable_when_cupy_import_fails(monkeypatch):
    no_cupy(monkeypatch, OSError("libcudart.so.12: cannot open shared object file"))
    assert backend.is_gpu_available() is False
    assert "CuPy is not importable (OSError: libcudart.so.12" in backend.gpu_unavailable_reason()


def test_gpu_unavailable_when_cupy_has_no_driver(monkeypatch):
    def get_device_count():
        raise RuntimeError("cudaErrorInsufficientDriver")
    fake_cupy(monkeypatch, get_device_count)
    assert backend.is_gpu_available() is False
    assert "no usable CUDA driver (cudaErrorInsufficientDriver)" in backend.gpu_unavailable_reason()


def test_gpu_unavailable_when_no_device_is_visible(monkeypatch):
    fake_cupy(monkeypatch, lambda: 0)
    assert backend.is_gpu_available() is False
    assert "no CUDA device is visible" in backend.gpu_unavailable_reason()


def test_is_gpu_available_swallows_anything(monkeypatch):
    def broken():
        raise KeyError("something nobody expected")
    monkeypatch.setattr(backend, "gpu_unavailable_reason", broken)
    assert backend.is_gpu_available() is False


FAKE_BROKEN_CUPY = """
raise ImportError("fake CuPy: CUDA runtime not found")
"""

IMPORT_CHECK = """
import sys
import minigrad
assert "cupy" not in sys.modules, "import minigrad imported cupy"
assert "matplotlib" not in sys.modules, "import minigrad imported matplotlib"
print(minigrad.is_gpu_available())
print(minigrad.backend.gpu_unavailable_reason())
"""


def test_importing_minigrad_does_not_import_cupy_and_a_broken_cupy_is_reported(tmp_path):
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(FAKE_BROKEN_CUPY)
    repository = str(pathlib.Path(mg.__file__).parents[1])
    environment = {"PYTHONPATH": f"{tmp_path}:{repository}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(IMPORT_CHECK)], env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    available, reason = result.stdout.strip().splitlines()
    assert available == "False"
    assert "CuPy is not importable (ImportError: fake CuPy: CUDA runtime not found)" in reason


# --- random generators and transfers --------------------------------------------------------
def test_default_rng_is_seedable_and_reproducible():
    first = backend.default_rng(42).standard_normal(5)
    again = backend.default_rng(42).standard_normal(5)
    other = backend.default_rng(43).standard_normal(5)
    numpy.testing.assert_array_equal(first, again)
    assert not numpy.array_equal(first, other)
    numpy.testing.assert_array_equal(mg.randn(2, 3, seed=7).numpy(), mg.randn(2, 3, seed=7).numpy())


def test_to_device_cpu_is_the_identity():
    a = numpy.ones((2, 3))
    assert backend.to_device(a, "cpu") is a
    assert backend.device_of(a) == "cpu"
    assert backend.to_numpy(a) is a
    assert backend.array_module_for("cpu") is numpy


def test_tensor_to_cpu_keeps_values_and_gradient():
    x = Tensor(numpy.array([1.0, 2.0]), requires_grad=True)
    y = x.to("cpu")
    assert y.device == "cpu"
    (y * 3).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_requesting_cuda_without_a_gpu_raises_a_clear_error(monkeypatch):
    no_cupy(monkeypatch)
    message = r"device 'cuda:0' requested but no GPU is usable: CuPy is not importable"
    with pytest.raises(RuntimeError, match=message):
        backend.to_device(numpy.ones(2), "cuda")
    with pytest.raises(RuntimeError, match=message):
        backend.default_rng(0, "cuda")
    with pytest.raises(RuntimeError, match=message):
        Tensor(numpy.ones(2)).to("cuda")
    with pytest.raises(RuntimeError, match=message):
        mg.zeros((2,), device="cuda")


def test_mixing_devices_names_the_op_and_the_devices_simulated(monkeypatch):
    a, b = Tensor(numpy.ones(2)), Tensor(numpy.ones(2))
    real_device_of = backend.device_of
    monkeypatch.setattr(backend, "device_of", lambda array: "cuda:0" if array is b.data else real_device_of(array))
    with pytest.raises(ValueError, match=r"mul: inputs are on different devices \(cpu, cuda:0\); "
                                         r"move them to one device"):
        a * b


# --- GPU ---------------------------------------------------------------------------------
@needs_gpu
def test_arrays_move_to_cuda_and_back():
    a = numpy.arange(6.0).reshape(2, 3)
    on_gpu = backend.to_device(a, "cuda")
    assert backend.device_of(on_gpu) == "cuda:0"
    assert backend.get_array_module(on_gpu) is backend.array_module_for("cuda")
    assert backend.get_array_module(a, on_gpu) is backend.array_module_for("cuda")
    assert backend.to_device(on_gpu, "cuda:0") is on_gpu
    numpy.testing.assert_array_equal(backend.to_device(on_gpu, "cpu"), a)
    numpy.testing.assert_array_equal(backend.to_numpy(on_gpu), a)


@needs_gpu
def test_tensors_move_to_cuda_and_the_gradient_comes_back():
    x = Tensor(numpy.array([1.0, 2.0]), requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda:0" and "device=cuda:0" in repr(y)
    (y * y).sum().backward()
    assert x.device == "cpu" and isinstance(x.grad, numpy.ndarray)
    numpy.testing.assert_array_equal(x.grad, [2.0, 4.0])


@needs_gpu
def test_gradient_on_cupy_matches_numpy():
    rng = numpy.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in [(4, 3), (5, 3), (5,), (5, 2)]]

    def grads(device):
        x, W, b, V = [Tensor(a, requires_grad=True, device=device) for a in arrays]
        loss = (F.relu(F.linear(x, W, b)) @ V).tanh().sum() + (x ** 2).mean(axis=0).max()
        loss.backward()
        return loss.item(), [t.grad for t in (x, W, b, V)]

    cpu_loss, cpu_grads = grads("cpu")
    gpu_loss, gpu_grads = grads("cuda")
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-12)
    for on_gpu, on_cpu in zip(gpu_grads, cpu_grads):
        assert backend.device_of(on_gpu) == "cuda:0"
        numpy.testing.assert_allclose(backend.to_numpy(on_gpu), on_cpu, rtol=1e-12, atol=1e-14)


@needs_gpu
def test_mixing_devices_names_the_op_and_the_devices():
    a, b = Tensor(numpy.ones(2)), Tensor(numpy.ones(2), device="cuda")
    with pytest.raises(ValueError, match=r"add: inputs are on different devices \(cpu, cuda:0\)"):
        a + b


@needs_gpu
def test_default_rng_on_cuda_is_reproducible():
    first = backend.to_numpy(backend.default_rng(3, "cuda").standard_normal(4))
    numpy.testing.assert_array_equal(first, backend.to_numpy(backend.default_rng(3, "cuda").standard_normal(4)))
    assert mg.randn(3, seed=1, device="cuda").device == "cuda:0"
