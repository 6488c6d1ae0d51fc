"""The one door to matrix products in the cuda kernel set: ``gemm``.

    gemm(w, cols)                            # w @ cols, a new array
    gemm(w, cols, out=y)                     # into y (C-contiguous, of the product's shape)
    gemm(gy, cols, transpose_b=True)         # gy @ cols.T, without copying cols
    gemm(a, b, out=c, alpha=2.0, beta=1.0)   # c = 2 a @ b + c

GEMM (GEneral Matrix Multiply) is BLAS's name for C = alpha op(A) op(B) + beta C, where
op(A) is A or its transpose. The operands are C-contiguous matrices as they lie in memory;
a transpose is a flag, never a copy (BLAS reads the same memory the other way round).

Every matrix product of the cuda set goes through this function, so what runs a product
can change in one place: on the CPU, NumPy's ``matmul``; on a GPU, a direct cuBLAS call
through a handle of our own (``cublas.py``), which a CUDA graph can capture (CuPy refuses
cuBLAS calls while a graph is captured; ``minigrad/cuda_graph.py``). The operands' rules
(2-D, C-contiguous, one dtype) are those of that direct call, checked on the CPU too.

TF32: on a GPU, a float32 product runs in TF32 only when ``minigrad.backend.tf32_allowed()``
says so (off by default); CuPy's own setting, which its products (the generic path) follow,
is left alone.
"""
import numpy

from ... import backend
from ...backend import get_array_module
from . import cublas

FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def gemm(a, b, out=None, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0):
    """alpha op(a) @ op(b) + beta out, written into ``out`` (a new array when None), returned.

    a, b: C-contiguous matrices of one floating-point dtype on one device; op(a) is a.T
    when ``transpose_a`` (op(b) alike). out: C-contiguous, of the product's shape and dtype;
    it is needed when beta != 0 (its old values are read), and must not share memory with a
    or b (BLAS would read what it has already overwritten).
    """
    op_a, op_b = (a.T if transpose_a else a), (b.T if transpose_b else b)
    _check(a, b, op_a, op_b, out, beta)
    if get_array_module(a) is not numpy:
        return cublas.gemm(a, b, out, transpose_a, transpose_b, alpha, beta, tf32=backend.tf32_allowed())
    if alpha == 1 and beta == 0:
        return numpy.matmul(op_a, op_b, out=out)
    product = numpy.matmul(op_a, op_b)
    product *= product.dtype.type(alpha)
    if out is None:
        return product
    out *= out.dtype.type(beta)
    out += product
    return out


def _check(a, b, op_a, op_b, out, beta):
    """A ValueError naming gemm, what it expected and what it got."""
    for name, matrix in (("a", a), ("b", b)):
        if matrix.ndim != 2:
            raise ValueError(f"gemm: expected {name} to be a matrix (2-D), got shape {matrix.shape}")
        if matrix.dtype not in FLOATS:
            raise ValueError(f"gemm: expected {name} of dtype float32 or float64, got {matrix.dtype}")
        if not matrix.flags.c_contiguous:
            raise ValueError(f"gemm: expected {name} C-contiguous (a transpose is a flag, not a view), "
                             f"got strides {matrix.strides}")
    if a.dtype != b.dtype or get_array_module(a) is not get_array_module(b):
        raise ValueError(f"gemm: expected a and b of one dtype on one device, got {a.dtype} and {b.dtype} "
                         f"({get_array_module(a).__name__}, {get_array_module(b).__name__})")
    if op_a.shape[1] != op_b.shape[0]:
        raise ValueError(f"gemm: op(a) {op_a.shape} and op(b) {op_b.shape} do not chain: "
                         f"{op_a.shape[1]} columns against {op_b.shape[0]} rows")
    if out is None:
        if beta != 0:
            raise ValueError(f"gemm: beta={beta} reads out, but no out was given")
        return
    shape = (op_a.shape[0], op_b.shape[1])
    if out.shape != shape or out.dtype != a.dtype or not out.flags.c_contiguous \
            or get_array_module(out) is not get_array_module(a):
        raise ValueError(f"gemm: expected out C-contiguous, of shape {shape} and dtype {a.dtype} on a's "
                         f"device, got shape {out.shape}, dtype {out.dtype}, strides {out.strides}")
