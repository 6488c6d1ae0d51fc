"""Local response normalization across channels (AlexNet section 3.3; Caffe's LRN layer,
used twice in GoogLeNet's stem), x (N, C, ...) with channels on axis 1:

    s_c = k + alpha/n * sum_{c' in neighbours(c)} a_{c'}^2          b_c = a_c * s_c^(-beta)

neighbours(c) = channels c - n//2 ... c + (n-1)//2: n channels centred on c, with zeros
beyond the first and last channel. For odd n (GoogLeNet's n=5, alpha=1e-4, beta=0.75,
k=1) Caffe and PyTorch agree. For even n this follows PyTorch (one more channel before
c than after); Caffe takes the extra channel after c instead. Any n works: 2C - 1
neighbours or more hold every channel whatever c, so the kernels clamp their reach to
C - 1 on each side (n itself still divides alpha).

Convention: alpha is divided by n, as in Caffe's ``lrn_param`` and PyTorch's
``local_response_norm``. The AlexNet paper and Chainer write k + alpha * sum (no
division, default k=2): Chainer's ``alpha`` equals our alpha / n.

Backward. Only s_c depends on a_j, for the c that have j among their neighbours:

    db_c/da_j = delta_cj s_c^-beta  -  2 alpha beta / n * a_c a_j s_c^(-beta-1)   (j in neighbours(c))

so with the upstream gradient g,

    ga_j = g_j s_j^-beta  -  2 alpha beta / n * a_j * sum_{c : j in neighbours(c)} g_c a_c s_c^(-beta-1)

j in neighbours(c) means c - n//2 <= j <= c + (n-1)//2, i.e. c runs over the MIRRORED
range j - (n-1)//2 ... j + n//2 (j's own neighbours when n is odd). g_c a_c s_c^(-beta-1)
is g_c b_c / s_c.

The work is done by the current kernel set (``minigrad.kernels``):
``kernels/reference.py`` loops over the channels exactly as written above.
"""
import numpy

from .. import kernels


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """x (N, C, ...) -> y of the same shape (see above)."""
    kernel_set = kernels.current(x)
    y, cache = kernel_set.lrn_forward(x, size, alpha, beta, k)
    return y, kernels.KernelCache(kernel_set, cache)


def lrn_backward(gy, cache):
    kernel_set, kernel_cache = cache
    return (kernel_set.lrn_backward(gy, kernel_cache),)


def check_lrn(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Raise a ValueError naming local_response_norm, what it expected and what it got."""
    if x.ndim < 2 or x.dtype.kind != "f":
        raise ValueError(f"local_response_norm: expected a floating-point input of shape (N, C, ...), "
                         f"got shape {x.shape} and dtype {x.dtype}")
    if not isinstance(size, (int, numpy.integer)) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}")
    if k <= 0 or alpha < 0:
        raise ValueError(f"local_response_norm: needs k > 0 and alpha >= 0 (so that k + alpha/n * "
                         f"sum a^2 stays positive), got k={k}, alpha={alpha}")
