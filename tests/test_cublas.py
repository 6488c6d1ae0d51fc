"""The capturable GEMM of minigrad/kernels/cuda/cublas.py, as far as a machine without a GPU
can check it, and on a GPU against cupy.matmul.

Without a GPU: the plan (which cuBLAS arguments compute row-major C = A @ B from the
arrays' shapes and strides) is run through a column-major product written in NumPy that
reads memory the way cuBLAS does, for contiguous, transposed, sliced, batched and
broadcast operands; the ctypes declarations are held to cublas_api.h where the header is
installed (a CUDA toolkit or NVIDIA's pip wheel; set CUDA_PATH to one), and the library,
where one is found, exports every function declared.
"""
import ctypes
import glob
import os
import re
import site

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigrad import backend
from minigrad.kernels.cuda import cublas


# --- the plan, through a column-major product that reads memory as cuBLAS does ----------------
def column_major(array, rows, cols, ld, offset):
    """The (rows, cols) column-major matrix cuBLAS reads from ``array``'s memory: element
    (i, j) at offset + i + j*ld elements past the first element of ``array``."""
    start = np.lib.stride_tricks.as_strided(array, shape=(offset + 1,), strides=(array.itemsize,))[offset:]
    return np.lib.stride_tricks.as_strided(start, shape=(rows, cols), strides=(array.itemsize, ld * array.itemsize))


def emulated_call(p, a, b, out):
    """What the cuBLAS call of plan ``p`` writes into ``out``'s memory: C^T = op(B^T) op(A^T)."""
    for i in range(p.batch):
        first = column_major(b, *((p.m, p.k) if p.op_b == cublas.OP_N else (p.k, p.m)), p.ld_b, i * p.stride_b)
        second = column_major(a, *((p.k, p.n) if p.op_a == cublas.OP_N else (p.n, p.k)), p.ld_a, i * p.stride_a)
        first = first if p.op_b == cublas.OP_N else first.T
        second = second if p.op_a == cublas.OP_N else second.T
        column_major(out, p.m, p.n, p.ld_out, i * p.stride_out)[...] = first @ second


def stored(matrix, how, rng):
    """``matrix``'s values laid out ``how``: "rows" (C order), "columns" (a transposed view),
    "sliced" (rows of a wider array: ld > columns), "strided" (neither contiguous)."""
    if how == "rows":
        return np.ascontiguousarray(matrix)
    if how == "columns":
        return np.ascontiguousarray(np.swapaxes(matrix, -1, -2)).swapaxes(-1, -2)
    if how == "sliced":
        wide = rng.standard_normal(matrix.shape[:-1] + (matrix.shape[-1] + 3,))
        wide[..., :matrix.shape[-1]] = matrix
        return wide[..., :matrix.shape[-1]]
    wide = rng.standard_normal(matrix.shape[:-1] + (2 * matrix.shape[-1],))
    wide[..., ::2] = matrix
    return wide[..., ::2]


LAYOUTS = ["rows", "columns", "sliced", "strided"]


@settings(max_examples=150, deadline=None)
@given(m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5),
       batch_a=st.sampled_from([None, 1, 3]), batch_b=st.sampled_from([None, 1, 3]),
       layout_a=st.sampled_from(LAYOUTS), layout_b=st.sampled_from(LAYOUTS), seed=st.integers(0, 99))
def test_the_plan_computes_a_times_b_as_a_column_major_library_reads_memory(
        m, k, n, batch_a, batch_b, layout_a, layout_b, seed):
    rng = np.random.default_rng(seed)
    a = stored(rng.standard_normal(((batch_a,) if batch_a else ()) + (m, k)), layout_a, rng)
    b = stored(rng.standard_normal(((batch_b,) if batch_b else ()) + (k, n)), layout_b, rng)
    expected = a @ b
    out = np.full(cublas.result_shape(a, b), np.nan)
    p = cublas.plan(a, b, out)
    if p is None:                             # gemm copies such an operand first
        assert "strided" in (layout_a, layout_b)
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        p = cublas.plan(a, b, out)
    emulated_call(p, a, b, out)
    np.testing.assert_allclose(out.reshape(expected.shape), expected, rtol=1e-12, atol=1e-12)


def test_a_transposed_view_is_read_where_it_lies():
    weight = np.arange(12.0).reshape(3, 4)           # the linear layer's (out, in) weight
    x = np.ones((2, 4))
    p = cublas.plan(x, weight.T, np.empty((2, 3)))   # x @ weight.T: no copy, cuBLAS transposes
    assert (p.op_a, p.op_b, p.ld_b) == (cublas.OP_N, cublas.OP_T, 4)


def test_one_matrix_used_by_every_product_of_a_batch_has_stride_zero():
    p = cublas.plan(np.ones((4, 5)), np.ones((3, 5, 6)), np.empty((3, 4, 6)))
    assert (p.batch, p.stride_a, p.stride_b, p.stride_out) == (3, 0, 30, 24)


def test_a_matrix_with_neither_rows_nor_columns_contiguous_needs_a_copy():
    assert cublas.operand_layout(3, 4, 8, 2) is None
    assert cublas.operand_layout(3, 4, 4, 1) == (cublas.OP_N, 4)
    assert cublas.operand_layout(3, 4, 1, 3) == (cublas.OP_T, 3)
    assert cublas.operand_layout(1, 4, 99, 1) == (cublas.OP_N, 4)     # one row: no row stride


def test_gemm_names_what_it_expected_and_got():
    with pytest.raises(TypeError, match="CuPy arrays"):
        cublas.gemm(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"inner dimensions differ: a \(2, 3\) @ b \(2, 2\)"):
        cublas.check_operands(np.ones((2, 3)), np.ones((2, 2)), None)
    with pytest.raises(TypeError, match="float32 or two float64"):
        cublas.check_operands(np.ones((2, 2), np.float32), np.ones((2, 2)), None)
    with pytest.raises(ValueError, match="batch sizes differ"):
        cublas.check_operands(np.ones((2, 2, 2)), np.ones((3, 2, 2)), None)
    with pytest.raises(ValueError, match=r"out must be float64 of shape \(2, 2\)"):
        cublas.check_operands(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 3)))


# --- the declarations against cublas_api.h, and the library itself ----------------------------
def include_folders():
    roots = [os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]
    folders = [os.path.join(root, "include") for root in roots if root]
    for packages in site.getsitepackages() + [site.getusersitepackages()]:
        folders += glob.glob(os.path.join(packages, "nvidia", "*", "include"))
    return folders


def header(name):
    """The text of header ``name`` from the first include folder holding it, or a skip."""
    for folder in include_folders():
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as file:
                return file.read()
    pytest.skip(f"{name} is not installed (looked in {', '.join(include_folders())}); "
                f"set CUDA_PATH to a CUDA toolkit or to NVIDIA's cublas wheel's nvidia/cu13")


# The C types of the header against the ctypes this module declares for them (an enum is
# an int; a device pointer may be passed as a plain address, c_void_p).
P = ctypes.POINTER
C_TYPES = {
    "cublasHandle_t": {ctypes.c_void_p}, "cublasHandle_t*": {P(ctypes.c_void_p)},
    "cudaStream_t": {ctypes.c_void_p}, "void*": {ctypes.c_void_p}, "const void*": {ctypes.c_void_p},
    "size_t": {ctypes.c_size_t}, "int": {ctypes.c_int}, "int*": {P(ctypes.c_int)},
    "long long int": {ctypes.c_longlong},
    "const float*": {P(ctypes.c_float), ctypes.c_void_p}, "float*": {ctypes.c_void_p},
    "const double*": {P(ctypes.c_double), ctypes.c_void_p}, "double*": {ctypes.c_void_p},
    **{enum: {ctypes.c_int} for enum in ("cublasOperation_t", "cudaDataType", "cublasComputeType_t",
                                         "cublasGemmAlgo_t", "libraryPropertyType")},
}


def declared_parameter_types(text, function):
    """The parameter types of ``function``'s CUBLASWINAPI declaration, names dropped."""
    found = re.search(r"cublasStatus_t\s+CUBLASWINAPI\s+" + function + r"\s*\(([^)]*)\)", text)
    assert found, f"{function} is not declared in cublas_api.h"
    parameters = re.sub(r"/\*.*?\*/", "", found.group(1)).split(",")
    types = []
    for parameter in parameters:
        words = re.sub(r"\s*\*\s*", "* ", parameter).split()
        types.append(" ".join(words[:-1]).replace("* ", "*").replace(" *", "*").strip())
    return types


@pytest.mark.parametrize("function", sorted(cublas.SIGNATURES))
def test_each_ctypes_declaration_matches_cublas_api_h(function):
    declared = declared_parameter_types(header("cublas_api.h"), function)
    ours = cublas.SIGNATURES[function]
    assert len(ours) == len(declared), f"{function}: {len(ours)} arguments, the header has {declared}"
    for position, (c_type, ctype) in enumerate(zip(declared, ours)):
        assert c_type in C_TYPES, f"{function}: no ctypes equivalent listed for {c_type!r}"
        assert ctype in C_TYPES[c_type], f"{function} argument {position}: {c_type} declared as {ctype}"


def enum_value(text, name):
    found = re.search(r"\b" + name + r"\s*=\s*(-?\d+)", text)
    assert found, f"{name} not found"
    return int(found.group(1))


def test_the_constants_match_the_headers():
    text = header("cublas_api.h")
    assert [enum_value(text, n) for n in ("CUBLAS_OP_N", "CUBLAS_OP_T", "CUBLAS_COMPUTE_32F",
                                          "CUBLAS_COMPUTE_32F_FAST_TF32", "CUBLAS_COMPUTE_64F",
                                          "CUBLAS_GEMM_DEFAULT", "CUBLAS_STATUS_SUCCESS")] == [
        cublas.OP_N, cublas.OP_T, cublas.COMPUTE_32F, cublas.COMPUTE_32F_FAST_TF32, cublas.COMPUTE_64F,
        cublas.GEMM_DEFAULT, cublas.STATUS_SUCCESS]
    for name, value in cublas.STATUS_NAMES.items():
        assert enum_value(text, "CUBLAS_STATUS_" + value) == name
    types = header("library_types.h")
    assert (enum_value(types, "CUDA_R_32F"), enum_value(types, "CUDA_R_64F")) == (cublas.CUDA_R_32F,
                                                                                 cublas.CUDA_R_64F)


def test_the_library_exports_every_function_declared_and_says_its_version():
    if cublas.library_path() is None:
        pytest.skip("libcublas is not installed (set CUDA_PATH to a CUDA toolkit or to NVIDIA's "
                    "cublas wheel's nvidia/cu13)")
    library = cublas.library()                  # declares every function: a missing one raises
    assert all(hasattr(library, name) for name in cublas.SIGNATURES)
    major = ctypes.c_int()
    cublas.call("cublasGetProperty", 0, ctypes.byref(major))          # MAJOR_VERSION; no GPU needed
    assert major.value >= 11


# --- on a GPU: the products themselves ----------------------------------------------------------
gpu = pytest.mark.skipif(not backend.is_gpu_available(), reason=f"needs a GPU: {backend.gpu_unavailable_reason()}")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout_a, layout_b", [("rows", "rows"), ("rows", "columns"),
                                                ("columns", "sliced"), ("strided", "rows")])
@pytest.mark.parametrize("batch_a, batch_b", [(None, None), (3, 3), (None, 3), (3, None), (1, 3)])
def test_gemm_on_the_gpu_equals_matmul(dtype, layout_a, layout_b, batch_a, batch_b):
    cupy = backend.array_module_for("cuda")
    rng = np.random.default_rng(0)
    a = stored(rng.standard_normal(((batch_a,) if batch_a else ()) + (33, 17)), layout_a, rng).astype(dtype)
    b = stored(rng.standard_normal(((batch_b,) if batch_b else ()) + (17, 9)), layout_b, rng).astype(dtype)
    a_gpu = cupy.asarray(a) if layout_a == "rows" else _same_layout_on_gpu(cupy, a, layout_a, rng)
    b_gpu = cupy.asarray(b) if layout_b == "rows" else _same_layout_on_gpu(cupy, b, layout_b, rng)
    got = cublas.gemm(a_gpu, b_gpu)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cupy.asnumpy(got), a.astype(np.float64) @ b.astype(np.float64),
                               rtol=tolerance, atol=tolerance * 17)


def _same_layout_on_gpu(cupy, host, how, rng):
    """``host``'s values on the GPU, laid out ``how`` there too (cupy.asarray makes C order)."""
    values = cupy.asarray(np.ascontiguousarray(host))
    if how == "columns":
        return cupy.ascontiguousarray(cupy.swapaxes(values, -1, -2)).swapaxes(-1, -2)
    wide = cupy.zeros(values.shape[:-1] + (values.shape[-1] * 2,), dtype=values.dtype)
    if how == "sliced":
        wide[..., :values.shape[-1]] = values
        return wide[..., :values.shape[-1]]
    wide[..., ::2] = values
    return wide[..., ::2]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_takes_blas_gemm_arguments_transposes_alpha_and_beta(dtype, transpose_a, transpose_b):
    cupy = backend.array_module_for("cuda")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 7) if not transpose_a else (7, 5)).astype(dtype)
    b = rng.standard_normal((7, 3) if not transpose_b else (3, 7)).astype(dtype)
    c = rng.standard_normal((5, 3)).astype(dtype)
    out = cupy.asarray(c)
    cublas.gemm(cupy.asarray(a), cupy.asarray(b), out, transpose_a, transpose_b, alpha=2.0, beta=0.5)
    expected = 2.0 * ((a.T if transpose_a else a) @ (b.T if transpose_b else b)) + 0.5 * c
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cupy.asnumpy(out), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.gpu
@gpu
def test_gemm_writes_into_out_and_into_a_transposed_out():
    cupy = backend.array_module_for("cuda")
    a, b = cupy.arange(6.0).reshape(2, 3), cupy.arange(12.0).reshape(3, 4)
    out = cupy.empty((2, 4))
    assert cublas.gemm(a, b, out=out) is out
    np.testing.assert_array_equal(cupy.asnumpy(out), cupy.asnumpy(a) @ cupy.asnumpy(b))
    transposed_out = cupy.empty((4, 2)).T          # not row-major: computed aside, then copied
    cublas.gemm(a, b, out=transposed_out)
    np.testing.assert_array_equal(cupy.asnumpy(transposed_out), cupy.asnumpy(a) @ cupy.asnumpy(b))
