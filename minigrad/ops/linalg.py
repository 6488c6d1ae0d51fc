"""Matrix products. ``linear`` is the fully connected layer y = x W^T + b (W the weight).

A linear layer's products go through ``gemm`` (minigrad/kernels/cuda/blas.py), as the
convolutions' do: NumPy's matmul on the CPU; on a GPU a cuBLAS call that a CUDA graph can
capture (minigrad/cuda_graph.py). gemm(a, b, transpose_b=True) is a @ b^T, reading b where
it lies."""
import math

from ..backend import get_array_module
from ..kernels.cuda.blas import gemm
from .elementwise import unbroadcast


def matmul_forward(a, b):
    return a @ b, (a, b)


def matmul_backward(gy, cache):
    # y = a @ b  =>  da = gy @ b^T,  db = a^T @ gy  (swapaxes handles stacked matrices;
    # 1-D operands are promoted to matrices and the result squeezed back)
    a, b = cache
    if a.ndim == 1 and b.ndim == 1:   # dot product: y is a scalar
        return gy * b, gy * a
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    gy2 = gy
    if a.ndim == 1:
        gy2 = gy2[..., None, :]
    if b.ndim == 1:
        gy2 = gy2[..., None]
    ga = gy2 @ b2.swapaxes(-1, -2)
    gb = a2.swapaxes(-1, -2) @ gy2
    if a.ndim == 1:
        ga = ga[..., 0, :]
    if b.ndim == 1:
        gb = gb[..., 0]
    return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)


def linear_forward(x, weight, bias=None):
    """x (*, in), weight (out, in), bias (out,) or None -> (*, out). Any number of leading
    axes, none included (as torch.nn.functional.linear): each row x[..., :] is one sample."""
    y = gemm(_rows(x), _contiguous(weight), transpose_b=True)          # x W^T, row by row
    if bias is not None:
        y += bias
    return y.reshape(x.shape[:-1] + (weight.shape[0],)), (x, weight, bias is not None)


def linear_backward(gy, cache):
    # y = x W^T + b. With the leading axes flattened into one batch axis of rows
    # (gy2: (rows, out), x2: (rows, in)):
    #     gx = gy W,    gW = gy2^T x2,    gb = sum of gy2 over the rows
    x, weight, has_bias = cache
    gy2, x2 = _rows(gy), _rows(x)
    gx = gemm(gy2, _contiguous(weight)).reshape(x.shape)
    gW = gemm(gy2, x2, transpose_a=True)
    gb = gy2.sum(axis=0) if has_bias else None
    return gx, gW, gb


def _contiguous(a):
    return get_array_module(a).ascontiguousarray(a)


def _rows(a):
    """a (*, features) as a C-contiguous (rows, features) matrix (a view when it can be)."""
    return _contiguous(a).reshape(math.prod(a.shape[:-1]), a.shape[-1])


def check_matmul(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: needs arrays of at least 1 dimension, got shapes {a.shape} and {b.shape}")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape} "
                         f"({inner_a} != {inner_b})")


def check_linear(x, weight, bias=None):
    if x.ndim < 1 or weight.ndim != 2:
        raise ValueError(f"linear: expected x of shape (*, in) and weight of shape (out, in), "
                         f"got x {x.shape} and weight {weight.shape}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: x has {x.shape[-1]} features but weight expects {weight.shape[1]} "
                         f"(x {x.shape}, weight {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias shape {bias.shape} should be ({weight.shape[0]},)")
