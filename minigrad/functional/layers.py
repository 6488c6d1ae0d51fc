"""The functions behind ``minigrad.nn``'s layers: linear, convolution (alone or with the ReLU
after it), pooling, local response normalization, dropout and batch normalization. The
math, its derivation and the input checks are in ``minigrad/ops/`` (``linalg.py``,
``conv.py``, ``pool.py``, ``lrn.py``, ``dropout.py``, ``batchnorm.py``); convolution,
pooling and LRN run on the current kernel set (``minigrad.kernels``)."""
from ..autograd import Op
from ..ops import batchnorm, conv, dropout as dropout_ops, linalg, lrn, pool
from .plain_arrays import array_of, on_device_of


def linear(x, weight, bias=None):
    """Fully connected: out = x weight^T + bias, one row of x at a time.

    Args:
        x (Tensor): the input rows, with any number of leading axes.
        weight (Tensor): (out_features, in_features).
        bias (Tensor, optional): (out_features,); None (default) adds nothing.

    Shape:
        x (*, in_features) -> out (*, out_features).

    Returns:
        Tensor: x weight^T + bias.

    Example:
        >>> x = mg.tensor([[1.0, 2.0]])
        >>> F.linear(x, mg.tensor([[1.0, 1.0], [0.0, 3.0]]), mg.tensor([0.5, 0.0]))
        Tensor([[3.5, 6. ]], dtype=float32)
    """
    return linear.op(x, weight, bias)


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D convolution (a cross-correlation, as in every deep-learning framework):

        out[n, f, oh, ow] = bias[f] + sum_{c,i,j} weight[f, c, i, j] x_pad[n, c, oh*SH + i, ow*SW + j]

    with x_pad the input with PH zero rows above and below and PW zero columns on each side
    (groups = 1; with groups, filter f sees only its group's channels: ``minigrad/ops/conv.py``).

    Args:
        x (Tensor): the images, floating-point.
        weight (Tensor): the C_out filters, each C/groups x KH x KW.
        bias (Tensor, optional): one value per filter; None (default) adds nothing.
        stride (int or (int, int)): the step (SH, SW) between windows. Default: 1.
        padding (int or (int, int)): the zeros (PH, PW) added on each side. Default: 0.
        groups (int): cut the channels and filters into that many independent convolutions,
            filter block k seeing channel block k (AlexNet's two towers are groups=2).
            Default: 1.

    Shape:
        x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out,) -> out (N, C_out, OH, OW),
        OH = floor((H + 2*PH - KH) / SH) + 1 and OW alike (``minigrad.geometry``).

    Returns:
        Tensor: the feature maps.

    Example:
        >>> x = mg.tensor(numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4))
        >>> F.conv2d(x, mg.ones((1, 1, 2, 2)), stride=2)
        Tensor([[[[10., 18.],
                  [42., 50.]]]], dtype=float32)
    """
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return conv2d.op(*inputs, stride=stride, padding=padding, groups=groups)


def conv2d_relu(x, weight, bias=None, stride=1, padding=0, groups=1):
    """A convolution and the ReLU after it, in one op: max(conv2d(x, weight, bias, ...), 0).

    The same values, to the last bit, as ``relu(conv2d(...))``, and the same gradients, but one
    op instead of two: on a GPU the ReLU costs no pass of its own, and its backward needs no
    saved mask (the gradient passes where the output is not <= 0; ``minigrad/ops/conv.py``).

    Args:
        x (Tensor): the images, floating-point.
        weight (Tensor): the C_out filters, each C/groups x KH x KW.
        bias (Tensor, optional): one value per filter; None (default) adds nothing.
        stride (int or (int, int)): the step (SH, SW) between windows. Default: 1.
        padding (int or (int, int)): the zeros (PH, PW) added on each side. Default: 0.
        groups (int): independent convolutions on channel blocks, as for ``conv2d``. Default: 1.

    Shape:
        x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out,) -> out (N, C_out, OH, OW),
        sized as for ``conv2d``.

    Returns:
        Tensor: the rectified feature maps.

    Example:
        >>> x = mg.tensor(numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4))
        >>> F.conv2d_relu(x, mg.ones((1, 1, 2, 2)), mg.tensor([-20.0]), stride=2)
        Tensor([[[[ 0.,  0.],
                  [22., 30.]]]], dtype=float32)
    """
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return conv2d_relu.op(*inputs, stride=stride, padding=padding, groups=groups)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max pooling: the largest value of each KH x KW window; its gradient goes to that value.

    Padding never wins; on ties the first value in row-major order takes the gradient.

    Args:
        x (Tensor): the maps, floating-point.
        kernel_size (int or (int, int)): the window (KH, KW).
        stride (int or (int, int), optional): the step between windows; None (default)
            means ``kernel_size``.
        padding (int or (int, int)): added on each side, at most half the kernel. Default: 0.
        ceil_mode (bool): round the output size up (GoogLeNet's 3x3/2 pools: 112 -> 56).
            Default: False.

    Shape:
        x (N, C, H, W) -> out (N, C, OH, OW), OH = floor((H + 2*PH - KH) / SH) + 1
        (ceil with ``ceil_mode``, as Caffe and PyTorch count it: ``minigrad.geometry``).

    Returns:
        Tensor: the pooled maps.

    Example:
        >>> x = mg.tensor(numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4))
        >>> F.max_pool2d(x, 2)
        Tensor([[[[ 5.,  7.],
                  [13., 15.]]]], dtype=float32)
    """
    return max_pool2d.op(x, kernel_size=kernel_size, stride=stride, padding=padding,
                         ceil_mode=ceil_mode)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling: each KH x KW window's sum over its divisor, PyTorch's rule.

    The divisor counts the window's rows times its columns: the padding too when
    ``count_include_pad``, but never what ceil mode lets a window run past the padded input
    (``minigrad/ops/pool.py``). Each input gets gy / divisor from every window holding it.

    Args:
        x (Tensor): the maps, floating-point.
        kernel_size, stride, padding, ceil_mode: the windows, as for ``max_pool2d``.
        count_include_pad (bool): whether padded zeros count in the divisor. Default: True.

    Shape:
        x (N, C, H, W) -> out (N, C, OH, OW), sized as for ``max_pool2d``.

    Returns:
        Tensor: the pooled maps.

    Example:
        >>> x = mg.tensor(numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4))
        >>> F.avg_pool2d(x, 2)
        Tensor([[[[ 2.5,  4.5],
                  [10.5, 12.5]]]], dtype=float32)
    """
    return avg_pool2d.op(x, kernel_size=kernel_size, stride=stride, padding=padding,
                         ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def global_avg_pool2d(x):
    """The mean of each channel's whole map; every pixel gets 1/(H*W) of its map's gradient.

    Args:
        x (Tensor): the maps, floating-point.

    Shape:
        x (N, C, H, W) -> out (N, C, 1, 1).

    Returns:
        Tensor: the means.

    Example:
        >>> F.global_avg_pool2d(mg.tensor(numpy.arange(8, dtype=numpy.float32).reshape(1, 2, 2, 2)))
        Tensor([[[[1.5]],
        <BLANKLINE>
                 [[5.5]]]], dtype=float32)
    """
    return global_avg_pool2d.op(x)


def local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels (AlexNet, Caffe's LRN; GoogLeNet's stem):

        out_c = x_c / (k + alpha/size * sum_{c' near c} x_{c'}^2)^beta

    over the ``size`` channels centred on c (zeros beyond the first and last). alpha is
    divided by ``size``, as in Caffe and PyTorch; ``minigrad/ops/lrn.py`` derives the backward.

    Args:
        x (Tensor): floating-point, channels on axis 1.
        size (int): how many neighbouring channels. Default: 5.
        alpha (float): the scale, >= 0. Default: 1e-4.
        beta (float): the exponent. Default: 0.75.
        k (float): the constant, > 0. Default: 1.0.

    Shape:
        x (N, C, ...) -> out of x's shape.

    Returns:
        Tensor: the normalized values.

    Example:
        >>> x = mg.tensor([[[[1.0]], [[2.0]]]])
        >>> F.local_response_norm(x, size=2, alpha=1.0, beta=1.0, k=1.0)
        Tensor([[[[0.6666667]],
        <BLANKLINE>
                 [[0.5714286]]]], dtype=float32)
    """
    return local_response_norm.op(x, size=size, alpha=alpha, beta=beta, k=k)


def dropout(x, p, training=True, rng=None, mask=None):
    """Inverted dropout: out = x * mask / (1 - p), mask_i ~ Bernoulli(1 - p), while training.

    The identity when not training: E[out] = x already, so evaluation needs no rescaling.

    Args:
        x (Tensor): the input, floating-point.
        p (float): the probability of dropping a value, in [0, 1] (1 drops everything).
        training (bool): False makes it the identity. Default: True.
        rng (Generator, optional): draws the mask (NumPy's or CuPy's ``Generator``); None
            (default) means a fresh unseeded one.
        mask (array or Tensor of bools, optional): the mask itself (True = keep): the same
            function on every evaluation, as a gradient check needs.

    Shape:
        out and ``mask`` have x's shape.

    Returns:
        Tensor: the kept values scaled by 1/(1 - p), zeros elsewhere.

    Example:
        >>> x = mg.tensor([1.0, 2.0, 3.0, 4.0])
        >>> F.dropout(x, 0.5, mask=numpy.array([True, False, True, False]))
        Tensor([2., 0., 6., 0.], dtype=float32)
    """
    if mask is not None:
        mask = on_device_of(mask, x)
    return dropout.op(x, p=p, training=training, rng=rng, mask=mask)


def batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True, momentum=0.1,
               eps=1e-5):
    """Batch normalization per channel (Ioffe & Szegedy 2015):

        out = gamma * (x - mu) / sqrt(var + eps) + beta

    with mu and the biased var of each channel over the batch (and the pixels) in training
    mode, where ``running_mean`` and ``running_var`` are updated in place as PyTorch does;
    in eval mode mu and var are those running statistics (``minigrad/ops/batchnorm.py``).
    Unlike PyTorch's ``batch_norm(input, running_mean, running_var, weight, bias,
    training=False)``, gamma and beta come first and training is the default, as for
    ``dropout``.

    Args:
        x (Tensor): floating-point.
        gamma (Tensor): the scale of each channel.
        beta (Tensor): the shift of each channel.
        running_mean (array or Tensor, optional): state, not an input (no gradient); None
            tracks nothing in training mode. Eval mode needs both running statistics.
        running_var (array or Tensor, optional): the unbiased variances, alike.
        training (bool): normalize by the batch's statistics. Default: True.
        momentum (float): the running averages' step, in [0, 1]. Default: 0.1.
        eps (float): added to var, > 0. Default: 1e-5.

    Shape:
        x (N, C, H, W) or (N, C); gamma, beta and the running statistics (C,); out of x's
        shape.

    Returns:
        Tensor: the normalized, scaled and shifted values.

    Example:
        >>> x = mg.tensor([[1.0], [3.0]])
        >>> F.batch_norm(x, mg.ones((1,)), mg.zeros((1,)), eps=1e-8)
        Tensor([[-1.],
                [ 1.]], dtype=float32)
    """
    return batch_norm.op(x, gamma, beta, running_mean=array_of(running_mean),
                         running_var=array_of(running_var), training=training, momentum=momentum,
                         eps=eps)


# --- each function's Op: its pair from minigrad.ops and its check (F.conv2d.op) ------------
linear.op = Op("linear", linalg.linear_forward, linalg.linear_backward, linalg.check_linear)
conv2d.op = Op("conv2d", conv.conv2d_forward, conv.conv2d_backward, conv.check_conv2d, needs_input_grad=True)
conv2d_relu.op = Op("conv2d_relu", conv.conv2d_relu_forward, conv.conv2d_relu_backward, conv.check_conv2d_relu,
                    needs_input_grad=True)
max_pool2d.op = Op("max_pool2d", pool.max_pool2d_forward, pool.max_pool2d_backward,
                   pool.check_pool2d("max_pool2d"), inference=pool.max_pool2d_inference)
avg_pool2d.op = Op("avg_pool2d", pool.avg_pool2d_forward, pool.avg_pool2d_backward,
                   pool.check_pool2d("avg_pool2d"))
global_avg_pool2d.op = Op("global_avg_pool2d", pool.global_avg_pool2d_forward,
                          pool.global_avg_pool2d_backward, pool.check_global_avg_pool2d)
local_response_norm.op = Op("local_response_norm", lrn.lrn_forward, lrn.lrn_backward, lrn.check_lrn)
dropout.op = Op("dropout", dropout_ops.dropout_forward, dropout_ops.dropout_backward,
                dropout_ops.check_dropout)
batch_norm.op = Op("batch_norm", batchnorm.batch_norm_forward, batchnorm.batch_norm_backward,
                   batchnorm.check_batch_norm)
