"""Batch normalization (Ioffe & Szegedy 2015), per channel, x (N, C, H, W) or (N, C).

Each channel c is normalized over the m = N*H*W values it has in the batch (m = N for
an (N, C) input), then scaled and shifted by its learned gamma_c and beta_c:

    mu = 1/m sum_i x_i        var = 1/m sum_i (x_i - mu)^2        (the BIASED variance)
    sigma = sqrt(var + eps)    xhat_i = (x_i - mu) / sigma          y_i = gamma xhat_i + beta

Training mode uses the batch's mu and var (Algorithm 1 of the paper). Evaluation mode
uses running averages instead, so that an example's output does not depend on the other
examples in its batch: y is then an affine map of x per channel.

Running statistics follow PyTorch's convention (``torch.nn.BatchNorm2d``): every
training forward updates them in place,

    running_mean = (1 - momentum) running_mean + momentum mu
    running_var  = (1 - momentum) running_var  + momentum var * m / (m - 1),

with the UNBIASED variance in running_var (as Algorithm 2 of the paper uses m/(m-1)
for inference), while the normalization itself divides by m. Keras and TensorFlow
write the same average with their "momentum" = 1 - ours (0.99 there is 0.01 here).

Where the running statistics live. They are state, not inputs that a gradient flows
to: they are not among the Op's positional (differentiable) inputs but keyword
parameters ``running_mean`` and ``running_var``, arrays that the training forward
updates IN PLACE (and eval mode reads). They may be left out (None) in training mode,
and then nothing is tracked; eval mode needs them.

Backward in training mode. mu and sigma depend on every x_j of the channel, with
d mu / d x_i = 1/m and d sigma / d x_i = xhat_i / m, so

    d xhat_j / d x_i = (delta_ij - 1/m) / sigma - xhat_j xhat_i / (m sigma),

and the chain rule of the paper's section 3 (its five lines, substituted into each
other) becomes one line for an upstream gradient g:

    g_x_i = gamma / (m sigma) * (m g_i - sum_j g_j - xhat_i sum_j g_j xhat_j)

The two sums are also the parameters' gradients: g_beta = sum_j g_j and
g_gamma = sum_j g_j xhat_j. In evaluation mode mu and sigma are constants, so the
backward is that of an affine map: g_x_i = gamma / sigma * g_i (same g_gamma, g_beta).
"""
from ..backend import device_of


def _channel_axes(x):
    """The axes batch norm averages over: all but the channel axis 1."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(values, x):
    """A (C,) array shaped to broadcast against ``x``: (1, C) or (1, C, 1, 1)."""
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))


def values_per_channel(x):
    """m = N*H*W (or N for an (N, C) input): how many values each channel's statistics see."""
    count = x.shape[0]
    for size in x.shape[2:]:
        count *= size
    return count


def batch_norm_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                       momentum=0.1, eps=1e-5):
    """x (N, C, H, W) or (N, C), gamma and beta (C,) -> y of x's shape (see above)."""
    if training:
        mean = x.mean(axis=_channel_axes(x))
        var = ((x - _per_channel(mean, x)) ** 2).mean(axis=_channel_axes(x))
        if running_mean is not None:
            _update_running(running_mean, running_var, mean, var, values_per_channel(x), momentum)
    else:
        mean, var = running_mean, running_var
    inv_sigma = (var + eps) ** -0.5
    xhat = (x - _per_channel(mean, x)) * _per_channel(inv_sigma, x)
    y = xhat * _per_channel(gamma, x) + _per_channel(beta, x)
    return y, (xhat, gamma, inv_sigma, training)


def _update_running(running_mean, running_var, mean, var, m, momentum):
    """PyTorch's moving averages, in place; running_var gets the unbiased var * m/(m-1)."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * m / (m - 1) * var


def batch_norm_backward(gy, cache):
    """(g_x, g_gamma, g_beta); the running statistics get none."""
    xhat, gamma, inv_sigma, training = cache
    g_beta = gy.sum(axis=_channel_axes(gy))
    g_gamma = (gy * xhat).sum(axis=_channel_axes(gy))
    scale = _per_channel(gamma * inv_sigma, gy)                 # gamma / sigma
    if not training:
        return gy * scale, g_gamma, g_beta
    m = values_per_channel(gy)
    g_x = scale / m * (m * gy - _per_channel(g_beta, gy) - xhat * _per_channel(g_gamma, gy))
    return g_x, g_gamma, g_beta


def check_batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True,
                     momentum=0.1, eps=1e-5):
    """Raise a ValueError naming batch_norm, what it expected and what it got."""
    if x.ndim not in (2, 4) or x.dtype.kind != "f":
        raise ValueError(f"batch_norm: expected a floating-point input of shape (N, C, H, W) or "
                         f"(N, C), got shape {x.shape} and dtype {x.dtype}")
    channels = x.shape[1]
    named = {"gamma": gamma, "beta": beta, "running_mean": running_mean, "running_var": running_var}
    for name, value in named.items():
        if value is None and name in ("gamma", "beta"):
            raise ValueError(f"batch_norm: needs {name} of shape ({channels},), got None")
        if value is not None and tuple(value.shape) != (channels,):
            raise ValueError(f"batch_norm: {name} must have shape ({channels},), one value per "
                             f"channel of the input of shape {x.shape}, got shape {tuple(value.shape)}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    if running_mean is None and not training:
        raise ValueError("batch_norm: evaluation mode (training=False) normalizes with "
                         "running_mean and running_var, got none")
    for name in ("running_mean", "running_var"):
        value = named[name]
        if value is not None and (value.dtype != x.dtype or device_of(value) != device_of(x)):
            raise ValueError(f"batch_norm: {name} must have the input's dtype and device "
                             f"({x.dtype}, {device_of(x)}), got ({value.dtype}, {device_of(value)})")
    if not eps > 0:
        raise ValueError(f"batch_norm: eps must be positive (it keeps sqrt(var + eps) above 0), got {eps}")
    if not 0 <= momentum <= 1:
        raise ValueError(f"batch_norm: momentum must be in [0, 1], got {momentum}")
    if training and values_per_channel(x) < 2:
        raise ValueError(f"batch_norm: training mode needs more than one value per channel "
                         f"(N*H*W > 1) to estimate a variance, got input shape {x.shape}")
