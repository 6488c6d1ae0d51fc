"""minigrad/kernels/cuda/blas.py: gemm, the one door to the cuda set's matrix products, and
the TF32 switch (minigrad.backend.allow_tf32) it obeys. On NumPy arrays here; on CuPy in
test_gpu.py."""
import itertools

import numpy as np
import pytest

from minigrad import backend
from minigrad.kernels.cuda.blas import gemm


def matrices(*shapes, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


@pytest.mark.parametrize("transpose_a, transpose_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_is_the_product_of_op_a_and_op_b(transpose_a, transpose_b, dtype):
    a, b = matrices((4, 3) if transpose_a else (3, 4), (5, 4) if transpose_b else (4, 5), dtype=dtype)
    expected = (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    got = gemm(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    assert got.dtype == dtype and got.shape == (3, 5)
    np.testing.assert_array_equal(got, expected)


def test_gemm_writes_into_out_and_returns_it():
    a, b = matrices((3, 4), (4, 2))
    rows = np.full((6, 2), np.nan)
    out = rows[2:5]                                   # a contiguous block of rows, as a group's
    assert gemm(a, b, out=out) is out
    np.testing.assert_array_equal(rows[2:5], a @ b)
    assert np.isnan(rows[:2]).all() and np.isnan(rows[5:]).all()


def test_alpha_and_beta_scale_the_product_and_add_out():
    a, b, c = matrices((3, 4), (4, 2), (3, 2))
    out = c.copy()
    gemm(a, b, out=out, alpha=2.0, beta=-0.5)
    np.testing.assert_allclose(out, 2 * (a @ b) - 0.5 * c, rtol=1e-14)
    np.testing.assert_allclose(gemm(a, b, alpha=3.0), 3 * (a @ b), rtol=1e-14)


@pytest.mark.parametrize("call, message", [
    (lambda a, b: gemm(a[None], b), r"gemm: expected a to be a matrix \(2-D\), got shape \(1, 3, 4\)"),
    (lambda a, b: gemm(a, b.astype(np.int64)), "gemm: expected b of dtype float32 or float64, got int64"),
    (lambda a, b: gemm(a, b.astype(np.float32)), "gemm: expected a and b of one dtype on one device, "
                                                 "got float64 and float32"),
    (lambda a, b: gemm(a.T.copy().T, b), r"gemm: expected a C-contiguous \(a transpose is a flag"),
    (lambda a, b: gemm(a, b, transpose_b=True), r"gemm: op\(a\) \(3, 4\) and op\(b\) \(5, 4\) do not chain"),
    (lambda a, b: gemm(a, b, beta=1.0), "gemm: beta=1.0 reads out, but no out was given"),
    (lambda a, b: gemm(a, b, out=np.empty((5, 3))), r"gemm: expected out C-contiguous, of shape \(3, 5\)"),
    (lambda a, b: gemm(a, b, out=np.empty((5, 3)).T), r"gemm: expected out C-contiguous.*strides \(8, 24\)"),
    (lambda a, b: gemm(a, b, out=np.empty((3, 5), np.float32)), "gemm: expected out .* dtype float64"),
])
def test_bad_operands_are_named(call, message):
    a, b = matrices((3, 4), (4, 5))
    with pytest.raises(ValueError, match=message):
        call(a, b)


@pytest.fixture
def tf32_from_the_environment(monkeypatch):
    """Each test starts from the environment's choice (unset) and leaves it so."""
    monkeypatch.delenv(backend.TF32_VARIABLE, raising=False)
    backend.allow_tf32(None)
    yield monkeypatch
    backend.allow_tf32(None)


def test_tf32_is_off_by_default(tf32_from_the_environment):
    assert backend.tf32_allowed() is False


@pytest.mark.parametrize("value, allowed", [("1", True), ("0", False), ("", False), (" 1 ", True)])
def test_the_environment_variable_turns_tf32_on_or_off(tf32_from_the_environment, value, allowed):
    tf32_from_the_environment.setenv("MINIGRAD_TF32", value)
    assert backend.tf32_allowed() is allowed


def test_allow_tf32_overrides_the_environment_until_handed_back(tf32_from_the_environment):
    tf32_from_the_environment.setenv("MINIGRAD_TF32", "1")
    backend.allow_tf32(False)
    assert backend.tf32_allowed() is False
    backend.allow_tf32(True)
    assert backend.tf32_allowed() is True
    backend.allow_tf32(None)
    tf32_from_the_environment.setenv("MINIGRAD_TF32", "0")
    assert backend.tf32_allowed() is False


def test_a_bad_tf32_setting_is_named(tf32_from_the_environment):
    tf32_from_the_environment.setenv("MINIGRAD_TF32", "yes")
    with pytest.raises(ValueError, match=r"MINIGRAD_TF32 must be 0 or 1 \(TF32 off or on\), got 'yes'"):
        backend.tf32_allowed()
    with pytest.raises(ValueError, match="allow_tf32: expected True, False or None, got 'on'"):
        backend.allow_tf32("on")


def test_tf32_changes_nothing_on_the_cpu(tf32_from_the_environment):
    """The CPU has no TF32: a float32 product is the same with the switch on."""
    a, b = matrices((8, 16), (16, 4), dtype=np.float32)
    backend.allow_tf32(True)
    np.testing.assert_array_equal(gemm(a, b), a @ b)
