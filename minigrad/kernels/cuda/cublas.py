"""Matrix products through a cuBLAS handle of our own, called with ctypes: GEMMs that a
CUDA graph can capture.

Why not ``cupy.matmul``: CuPy refuses every cuBLAS call while a stream is being captured
(``NotImplementedError: calling cuBLAS API during stream capture is currently
unsupported``). cuBLAS itself can be captured when the handle works on the capturing
stream and has a workspace it was given (it cannot allocate one while capturing). So
this module keeps one handle per GPU and, before each product, points it at the current
stream (the capturing one during a capture) with that stream's own 32 MiB workspace:

    cublasCreate_v2(&handle)                               once per GPU
    cublasSetStream_v2(handle, stream)                     when the stream changes; this
    cublasSetWorkspace_v2(handle, workspace, 32 MiB)       resets the workspace, so set it after
    cublasSgemm_v2 / cublasDgemm_v2                        one product
    cublasGemmStridedBatchedEx                             a batch of products spaced evenly in
                                                           memory (a stride of 0 repeats an operand),
                                                           and any TF32 product (its compute type
                                                           says TF32 explicitly)

Row-major arrays in a column-major library. cuBLAS reads a matrix column by column: the
buffer of a row-major (M, K) array with rows ``ld`` elements apart is, to cuBLAS, the
(K, M) matrix A^T with leading dimension ``ld``. So C = A @ B (row-major) is computed as
the column-major product C^T = B^T A^T: cuBLAS's first operand is B's buffer, its second
A's, and it writes C's buffer as the (N, M) column-major C^T. An operand stored the other
way (a transposed view such as ``weight.T``, whose columns are contiguous) is the matrix
itself to cuBLAS, and the call asks cuBLAS to transpose it (``CUBLAS_OP_T``): no copy.
Only an operand with neither rows nor columns contiguous is copied first. ``plan`` works
this out from shapes and strides alone (tested on the CPU against a column-major product
written in NumPy); ``gemm`` makes the call.

Finding the library: as CuPy does (``cuda.pathfinder``, which also hands back the copy CuPy
has already loaded), else in $CUDA_PATH and /usr/local/cuda, else by the system's loader.
"""
import ctypes
import ctypes.util
import functools
import glob
import os
from typing import NamedTuple

import numpy

from ...backend import get_array_module

WORKSPACE_BYTES = 32 * 1024 * 1024

# cublas_api.h and library_types.h
OP_N, OP_T = 0, 1
COMPUTE_32F, COMPUTE_32F_FAST_TF32, COMPUTE_64F = 68, 77, 70
CUDA_R_32F, CUDA_R_64F = 0, 1
GEMM_DEFAULT = -1
STATUS_SUCCESS = 0

_handle_p = ctypes.c_void_p
_float_p, _double_p = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_double)
_int, _long_long, _pointer = ctypes.c_int, ctypes.c_longlong, ctypes.c_void_p

# Each function this module calls, with its ctypes argument types, in the order of its
# declaration in cublas_api.h (tests/test_cublas.py holds them to the header where one is
# installed). Device pointers are c_void_p; host scalars (alpha, beta) are pointers.
SIGNATURES = {
    "cublasCreate_v2": [ctypes.POINTER(_handle_p)],
    "cublasGetProperty": [_int, ctypes.POINTER(_int)],
    "cublasSetStream_v2": [_handle_p, _pointer],
    "cublasSetWorkspace_v2": [_handle_p, _pointer, ctypes.c_size_t],
    "cublasSgemm_v2": [_handle_p, _int, _int, _int, _int, _int, _float_p, _pointer, _int,
                       _pointer, _int, _float_p, _pointer, _int],
    "cublasDgemm_v2": [_handle_p, _int, _int, _int, _int, _int, _double_p, _pointer, _int,
                       _pointer, _int, _double_p, _pointer, _int],
    "cublasGemmStridedBatchedEx": [_handle_p, _int, _int, _int, _int, _int, _pointer, _pointer,
                                   _int, _int, _long_long, _pointer, _int, _int, _long_long,
                                   _pointer, _pointer, _int, _int, _long_long, _int, _int, _int],
}
STATUS_NAMES = {0: "SUCCESS", 1: "NOT_INITIALIZED", 3: "ALLOC_FAILED", 7: "INVALID_VALUE",
                8: "ARCH_MISMATCH", 11: "MAPPING_ERROR", 13: "EXECUTION_FAILED",
                14: "INTERNAL_ERROR", 15: "NOT_SUPPORTED", 16: "LICENSE_ERROR"}


# --- the library -------------------------------------------------------------------------
def library_path():
    """The path of libcublas, or None when none is found (see the module's docstring)."""
    try:
        from cuda import pathfinder
        return pathfinder.load_nvidia_dynamic_lib("cublas").abs_path
    except Exception:                   # no cuda.pathfinder (CuPy < 14), or it found nothing
        pass
    roots = [os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]
    for root in filter(None, roots):
        for folder in ("lib64", "lib"):
            found = sorted(glob.glob(os.path.join(root, folder, "libcublas.so*")))
            if found:
                return found[0]
    return ctypes.util.find_library("cublas")


@functools.lru_cache(maxsize=None)
def library():
    """libcublas loaded, each function of ``SIGNATURES`` declared; a RuntimeError if absent."""
    path = library_path()
    if path is None:
        raise RuntimeError("cuBLAS was not found: install CuPy's CUDA libraries (pip install "
                           "nvidia-cublas) or set CUDA_PATH to a CUDA toolkit that has libcublas")
    lib = ctypes.CDLL(path)
    for name, argtypes in SIGNATURES.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, ctypes.c_int
    return lib


def check(status, name):
    if status != STATUS_SUCCESS:
        raise RuntimeError(f"cuBLAS {name} failed: CUBLAS_STATUS_"
                           f"{STATUS_NAMES.get(status, 'UNKNOWN')} (status {status})")


def call(name, *args):
    check(getattr(library(), name)(*args), name)


# --- the handle: one per GPU, pointed at the caller's stream ----------------------------------
class Handle:
    """A cuBLAS handle on one GPU, with a workspace for each stream it has worked on."""

    def __init__(self):
        handle = _handle_p()
        call("cublasCreate_v2", ctypes.byref(handle))
        self.handle = handle
        self.workspaces = {}            # stream pointer -> its workspace (kept alive here)
        self.stream = None

    def use(self, stream_ptr):
        """Work on stream ``stream_ptr``, with its workspace, from now on."""
        if stream_ptr != self.stream:
            import cupy
            if stream_ptr not in self.workspaces:
                self.workspaces[stream_ptr] = cupy.cuda.alloc(WORKSPACE_BYTES)
            call("cublasSetStream_v2", self.handle, stream_ptr)
            call("cublasSetWorkspace_v2", self.handle, self.workspaces[stream_ptr].ptr, WORKSPACE_BYTES)
            self.stream = stream_ptr


_handles = {}                           # device id -> Handle


def handle_for_current_stream():
    """The current GPU's handle, set to the current stream."""
    import cupy
    device = cupy.cuda.Device().id
    if device not in _handles:
        _handles[device] = Handle()
    handle = _handles[device]
    handle.use(cupy.cuda.get_current_stream().ptr)
    return handle


# --- from row-major arrays to a column-major call -------------------------------------------
class Plan(NamedTuple):
    """The arguments of the column-major call C^T = B^T A^T for row-major C = A @ B:
    cuBLAS's first operand is B's buffer, its second A's (strides and leading dimensions in
    elements; a batch stride of 0 repeats that matrix for every product)."""
    op_b: int
    op_a: int
    m: int                     # C's columns: the rows of cuBLAS's C^T
    n: int                     # C's rows
    k: int
    ld_b: int
    ld_a: int
    ld_out: int
    stride_b: int
    stride_a: int
    stride_out: int
    batch: int


def operand_layout(rows, cols, row_stride, col_stride):
    """(op, ld) that hand a (rows, cols) matrix with these element strides to cuBLAS as the
    first or second operand of C^T = B^T A^T, or None when cuBLAS cannot read it as it lies.

    Rows contiguous (row-major): the buffer is the matrix's transpose to cuBLAS, as wanted
    (OP_N), leading dimension the row stride. Columns contiguous (a transposed view): the
    buffer is the matrix itself, so cuBLAS transposes it (OP_T), leading dimension the
    column stride. A matrix of one row or one column has no stride along it to check."""
    if (col_stride == 1 or cols == 1) and rows >= 1 and cols >= 1:
        ld = row_stride if rows > 1 else cols
        if ld >= cols:
            return OP_N, ld
    if (row_stride == 1 or rows == 1) and rows >= 1 and cols >= 1:
        ld = col_stride if cols > 1 else rows
        if ld >= rows:
            return OP_T, ld
    return None


def _element_strides(array):
    return tuple(s // array.itemsize for s in array.strides)


def _batch_stride(array, batch):
    """The element stride between the operand's matrices: 0 for one matrix used by all."""
    if array.ndim == 2 or array.shape[0] == 1:
        return 0
    return _element_strides(array)[0]


def plan(a, b, out):
    """The Plan of out = a @ b, or None when an operand must be copied first or ``out`` is
    not row-major (``gemm`` then copies). a (M, K) or (batch, M, K), b (K, N) or (batch, K,
    N), out (M, N) or (batch, M, N), as ``gemm`` checked them."""
    if any(s % x.itemsize for x in (a, b, out) for s in x.strides):
        return None
    m, k = a.shape[-2:]
    n = b.shape[-1]
    batch = out.shape[0] if out.ndim == 3 else 1
    layout_a = operand_layout(m, k, *_element_strides(a)[-2:])
    layout_b = operand_layout(k, n, *_element_strides(b)[-2:])
    layout_out = operand_layout(m, n, *_element_strides(out)[-2:])
    if layout_a is None or layout_b is None or layout_out is None or layout_out[0] != OP_N:
        return None
    stride_a, stride_b, stride_out = (_batch_stride(x, batch) for x in (a, b, out))
    if min(stride_a, stride_b) < 0 or (batch > 1 and stride_out < m * n):   # reversed, or out's
        return None                                                           # matrices overlap
    return Plan(op_b=layout_b[0], op_a=layout_a[0], m=n, n=m, k=k, ld_b=layout_b[1],
                ld_a=layout_a[1], ld_out=layout_out[1], stride_b=stride_b, stride_a=stride_a,
                stride_out=stride_out, batch=batch)


# --- the product ----------------------------------------------------------------------------
def check_operands(a, b, out):
    """The shapes and dtypes ``gemm`` takes; a ValueError or TypeError naming what it got."""
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise ValueError(f"gemm: expected matrices or stacks of matrices (2 or 3 axes), got a "
                         f"{a.shape} and b {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"gemm: inner dimensions differ: a {a.shape} @ b {b.shape}")
    batches = {s.shape[0] for s in (a, b) if s.ndim == 3} - {1}
    if len(batches) > 1:
        raise ValueError(f"gemm: batch sizes differ: a {a.shape}, b {b.shape}")
    if a.dtype != b.dtype or a.dtype not in (numpy.float32, numpy.float64):
        raise TypeError(f"gemm: expected two float32 or two float64 arrays, got {a.dtype} and {b.dtype}")
    shape = result_shape(a, b)
    if out is not None and (out.shape != shape or out.dtype != a.dtype):
        raise ValueError(f"gemm: out must be {a.dtype} of shape {shape}, got {out.dtype} {out.shape}")
    too_large = [d for d in a.shape + b.shape if d >= 2 ** 31]
    if too_large:
        raise ValueError(f"gemm: cuBLAS takes dimensions below 2**31, got a {a.shape}, b {b.shape}")


def result_shape(a, b):
    batch = max((s.shape[0] for s in (a, b) if s.ndim == 3), default=None)
    return (a.shape[-2], b.shape[-1]) if batch is None else (batch, a.shape[-2], b.shape[-1])


def gemm(a, b, out=None, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, tf32=False):
    """out = alpha op(a) @ op(b) + beta out for CuPy arrays, through this module's cuBLAS
    handle on the current stream (capturable); op(a) is a's transpose (its last two axes)
    when ``transpose_a``, op(b) alike: the arguments of ``blas.gemm``, plus ``tf32``.

    op(a) (M, K) or (batch, M, K), op(b) (K, N) or (batch, K, N), float32 or float64, in any
    layout (a view is read where it lies when cuBLAS can read it, copied otherwise); a stack
    of one matrix serves every product. ``out`` (made when None) may not be row-major (then
    the product is made aside and copied in); ``beta`` != 0 reads it. ``tf32``: float32
    products on TF32 tensor cores (10-bit mantissas in the products). Returns ``out``."""
    xp = get_array_module(a)
    if xp is numpy or get_array_module(b) is numpy:
        raise TypeError("gemm: cuBLAS multiplies CuPy arrays; on the CPU use numpy.matmul")
    a = xp.swapaxes(a, -1, -2) if transpose_a else a
    b = xp.swapaxes(b, -1, -2) if transpose_b else b
    check_operands(a, b, out)
    if beta != 0 and out is None:
        raise ValueError(f"gemm: beta={beta} reads out, but no out was given")
    result = out if out is not None else xp.empty(result_shape(a, b), dtype=a.dtype)
    if result.size == 0:
        return result
    if a.shape[-1] == 0:                        # an empty sum: alpha * 0 + beta * out
        if beta == 0:
            result.fill(0)                      # as BLAS: out is not read when beta is 0
        else:
            result *= result.dtype.type(beta)
        return result
    a, b = _readable(xp, a), _readable(xp, b)
    aside = plan(a, b, result) is None or xp.may_share_memory(result, a) or xp.may_share_memory(result, b)
    target = xp.empty(result.shape, dtype=result.dtype) if aside else result
    if aside and beta != 0:
        target[...] = result
    _call(plan(a, b, target), a, b, target, alpha, beta, tf32)
    if aside:
        result[...] = target
    return result


def _readable(xp, operand):
    """The operand as it is when cuBLAS can read its matrices, else a contiguous copy."""
    rows, cols = operand.shape[-2:]
    whole_elements = all(s % operand.itemsize == 0 for s in operand.strides)
    readable = whole_elements and operand_layout(rows, cols, *_element_strides(operand)[-2:]) is not None
    if not readable or (operand.ndim == 3 and operand.strides[0] < 0):
        return xp.ascontiguousarray(operand)
    return operand


def _call(p, a, b, out, alpha, beta, tf32):
    """The cuBLAS call of Plan ``p``: out = alpha a @ b + beta out."""
    handle = handle_for_current_stream().handle
    single = a.dtype == numpy.float32
    scalar = ctypes.c_float if single else ctypes.c_double
    alpha, beta = scalar(alpha), scalar(beta)
    if p.batch == 1 and not (single and tf32):
        name = "cublasSgemm_v2" if single else "cublasDgemm_v2"
        call(name, handle, p.op_b, p.op_a, p.m, p.n, p.k, ctypes.byref(alpha), b.data.ptr, p.ld_b,
             a.data.ptr, p.ld_a, ctypes.byref(beta), out.data.ptr, p.ld_out)
        return
    data_type = CUDA_R_32F if single else CUDA_R_64F
    compute = (COMPUTE_32F_FAST_TF32 if tf32 else COMPUTE_32F) if single else COMPUTE_64F
    call("cublasGemmStridedBatchedEx", handle, p.op_b, p.op_a, p.m, p.n, p.k, ctypes.addressof(alpha),
         b.data.ptr, data_type, p.ld_b, p.stride_b, a.data.ptr, data_type, p.ld_a, p.stride_a,
         ctypes.addressof(beta), out.data.ptr, data_type, p.ld_out, p.stride_out, p.batch,
         compute, GEMM_DEFAULT)
