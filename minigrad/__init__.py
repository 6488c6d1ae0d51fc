"""minigrad: a small deep-learning framework written from scratch on NumPy (and CuPy).

    import minigrad as mg
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # array([2., 4., 6.], dtype=float32)

Importing minigrad never imports CuPy; ``minigrad.backend`` does that on demand.
"""
from . import blas_setup  # first: it sets up OpenBLAS (idle threads, kernels), before NumPy loads
from . import backend, functional
from .autograd import Op, Tensor, as_tensor, is_grad_enabled, no_grad
from .backend import is_gpu_available

__version__ = "0.1.0"


def tensor(data, requires_grad=False, dtype=None, device=None):
    """Make a Tensor from a list, a scalar or an array (Python floats become float32)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def zeros(shape, dtype=backend.DEFAULT_DTYPE, device="cpu", requires_grad=False):
    xp = backend.array_module_for(device)
    return Tensor(xp.zeros(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def ones(shape, dtype=backend.DEFAULT_DTYPE, device="cpu", requires_grad=False):
    xp = backend.array_module_for(device)
    return Tensor(xp.ones(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def randn(*shape, seed=None, dtype=backend.DEFAULT_DTYPE, device="cpu", requires_grad=False):
    """Standard normal values from a generator seeded with ``seed``."""
    rng = backend.default_rng(seed, device)
    values = rng.standard_normal(shape).astype(dtype)
    return Tensor(values, requires_grad=requires_grad)


__all__ = ["Tensor", "Op", "tensor", "as_tensor", "zeros", "ones", "randn", "no_grad",
           "is_grad_enabled", "is_gpu_available", "backend", "functional"]
