"""Dropout (Srivastava et al. 2014) with inverted scaling: while training each value
is kept with probability 1 - p and the kept ones are divided by 1 - p,

    y = x * mask / (1 - p),        mask_i ~ Bernoulli(1 - p),

so E[y] = x and evaluation needs no rescaling: it is the identity. The backward
multiplies by the same scaled mask, which the forward keeps in its cache.

``mask`` may be passed in (True = keep) so that a gradient check sees the same
function on every evaluation; otherwise it is drawn from ``rng`` (a NumPy or CuPy
``Generator``; None means a fresh unseeded one). p = 1 drops everything: the
output is zeros, with no division by zero.
"""
from .. import backend


def make_mask(shape, p, rng, device):
    """A boolean keep-mask on ``device``: True with probability 1 - p."""
    if rng is None:
        rng = backend.default_rng(None, device)
    mask = rng.random(shape) >= p        # uniform [0, 1) >= p  happens with probability 1 - p
    return backend.to_device(mask, device)


def dropout_forward(x, p, training=True, rng=None, mask=None):
    if not training:
        return x, None
    if mask is None:
        mask = make_mask(x.shape, p, rng, backend.device_of(x))
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    scaled_mask = mask.astype(x.dtype) * scale
    return x * scaled_mask, scaled_mask


def dropout_backward(gy, scaled_mask):
    if scaled_mask is None:      # evaluation mode: the identity
        return (gy,)
    return (gy * scaled_mask,)


def check_dropout(x, p, training=True, rng=None, mask=None):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if x.dtype.kind != "f":
        raise ValueError(f"dropout: expected a floating-point input, got dtype {x.dtype}")
    if mask is not None and mask.shape != x.shape:
        raise ValueError(f"dropout: mask shape {mask.shape} differs from input shape {x.shape}")
