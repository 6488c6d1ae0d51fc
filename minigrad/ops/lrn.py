"""Local response normalization across channels (AlexNet section 3.3; Caffe's LRN layer,
used twice in GoogLeNet's stem), x (N, C, ...) with channels on axis 1:

    s_c = k + alpha/n * sum_{c' in window(c)} a_{c'}^2          b_c = a_c * s_c^(-beta)

window(c) = channels c - n//2 ... c + (n-1)//2: n channels centred on c, with zeros
beyond the first and last channel. For odd n (GoogLeNet's n=5, alpha=1e-4, beta=0.75,
k=1) Caffe and PyTorch agree. For even n this follows PyTorch (one more channel before
c than after); Caffe takes the extra channel after c instead.

Convention: alpha is divided by n, as in Caffe's ``lrn_param`` and PyTorch's
``local_response_norm``. The AlexNet paper and Chainer write k + alpha * sum (no
division, default k=2): Chainer's ``alpha`` equals our alpha / n.

Backward. Only s_c depends on a_j, for the c whose window holds j:

    db_c/da_j = delta_cj s_c^-beta  -  2 alpha beta / n * a_c a_j s_c^(-beta-1)   (j in window(c))

so with the upstream gradient g,

    ga_j = g_j s_j^-beta  -  2 alpha beta / n * a_j * sum_{c : j in window(c)} g_c a_c s_c^(-beta-1)

j in window(c) means c - n//2 <= j <= c + (n-1)//2, i.e. c runs over the MIRRORED
window j - (n-1)//2 ... j + n//2 (the same window when n is odd). g_c a_c s_c^(-beta-1)
is g_c b_c / s_c. Both window sums are n slice-adds over a zero-padded copy,
never a Python loop over channels.
"""
from ..backend import get_array_module


def channel_window_sum(v, before, after):
    """out[:, c] = sum of v[:, c - before] ... v[:, c + after], zeros outside the channels."""
    xp = get_array_module(v)
    channels = v.shape[1]
    padded_shape = (v.shape[0], channels + before + after) + v.shape[2:]
    padded = xp.zeros(padded_shape, dtype=v.dtype)
    padded[:, before:before + channels] = v
    out = padded[:, 0:channels].copy()
    for offset in range(1, before + after + 1):
        out += padded[:, offset:offset + channels]
    return out


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    before, after = size // 2, (size - 1) // 2
    s = k + (alpha / size) * channel_window_sum(x * x, before, after)
    y = x * s ** -beta
    return y, (x, y, s, size, alpha, beta)


def lrn_backward(gy, cache):
    x, y, s, size, alpha, beta = cache
    before, after = size // 2, (size - 1) // 2
    # the mirrored window: `after` channels before j, `before` channels after it
    neighbours = channel_window_sum(gy * y / s, after, before)
    gx = gy * s ** -beta - (2 * alpha * beta / size) * x * neighbours
    return (gx,)
