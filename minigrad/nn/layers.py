"""Layers: each one holds its configuration (and Parameters) and calls one function
of ``minigrad.functional`` in ``forward``.

Configuration is kept in plain attributes (``conv.in_channels``, ``conv.kernel_size``,
``pool.stride``...), and ``repr`` shows it the way PyTorch does:
``Conv2d(3, 64, kernel_size=7, stride=2, padding=3)``.

Every layer also answers, for one example (batch axis left out), without running:
``output_shape(in_shape)``, ``multiply_adds(in_shape)`` and ``depth()`` (1 for a
layer with weights, 0 otherwise). Convolutions and pools take their output size
from ``minigrad.geometry.window`` (one rule, ``conv_output_size``), as their ops do.

Bad input is checked once, by the function's own check (``minigrad/ops/``). A layer
checks only what its configuration adds: Conv2d's in_channels, Linear's in_features and
2-D input, BatchNorm2d's 4-D input, in the function's words ("conv2d: expected ..., got
..."); ``Module.__call__`` puts the layer in front of either message.

Every layer with weights takes ``rng`` (a NumPy ``Generator``; ``None`` means a fresh
unseeded one): pass one generator to every layer and the whole model is reproducible.

This file holds the layers with weights (Linear, Conv2d, BatchNorm2d); ``weightless.py``
the others (pooling, LRN, dropout, ReLU, Flatten).
"""
import numpy

from .. import functional as F
from ..geometry import pair, window
from . import init
from .module import Module, Parameter


def _show(values):
    """(3, 3) prints as 3, (3, 5) as (3, 5)."""
    return values[0] if isinstance(values, tuple) and values[0] == values[1] else values


class Linear(Module):
    """Fully connected layer: y = x weight^T + bias (``F.linear``).

    Args:
        in_features (int): the size of each input row.
        out_features (int): the size of each output row.
        bias (bool): learn a bias. Default: True.
        rng (Generator or int, optional): draws the weights (``numpy.random.default_rng(rng)``).
        weight_init (str or function): "xavier" (Caffe's, the default), "glorot", "he", or a
            function (shape, rng) -> array (``minigrad.nn.init``).
        bias_value (float): every bias's initial value. Default: 0.

    Shape:
        x (N, in_features) -> y (N, out_features); weight (out_features, in_features),
        bias (out_features,).

    Example:
        >>> layer = nn.Linear(3, 2, rng=0)
        >>> layer(mg.ones((4, 3))).shape
        (4, 2)
        >>> layer.output_shape((3,)), layer.multiply_adds((3,)), layer.num_parameters()
        ((2,), 6, 8)
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, weight_init="xavier",
                 bias_value=0.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        rng = numpy.random.default_rng(rng)
        self.weight = Parameter(init.make_weight((out_features, in_features), rng, weight_init))
        self.bias = Parameter(init.constant((out_features,), bias_value)) if bias else None

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:      # F.linear takes (*, in_features)
            raise ValueError(f"linear: expected input of shape (N, {self.in_features}), "
                             f"got shape {x.shape}")
        return F.linear(x, self.weight, self.bias)

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.in_features,):
            raise ValueError(f"{self!r}: expected an example of shape ({self.in_features},), "
                             f"got {tuple(in_shape)}")
        return (self.out_features,)

    def multiply_adds(self, in_shape):
        return self.weight.size                 # each weight once per example

    def depth(self):
        return 1

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + ("" if self.bias is not None else ", bias=False")


class Conv2d(Module):
    """2-D convolution layer: out_channels filters slid over the input (``F.conv2d``).

    Args:
        in_channels (int): C, the input's channels.
        out_channels (int): C_out, the number of filters.
        kernel_size (int or (int, int)): the filters' (KH, KW).
        stride (int or (int, int)): the step between windows. Default: 1.
        padding (int or (int, int)): the zeros added on each side. Default: 0.
        bias (bool): learn a bias per filter. Default: True.
        rng (Generator or int, optional): draws the weights (``numpy.random.default_rng(rng)``).
        weight_init (str or function): as for ``Linear``. Default: "xavier".
        bias_value (float): every bias's initial value (0.2 in Caffe's GoogLeNet). Default: 0.
        groups (int): split the channels and filters into that many independent
            convolutions, each filter seeing C/groups channels: ``groups`` times fewer
            weights and multiply-adds (AlexNet's two towers are groups=2). Default: 1.
        relu (bool): apply the ReLU that follows, in the same op (``F.conv2d_relu``: the
            same values as a ``ReLU`` layer after it, one pass fewer). Default: False.

    Shape:
        x (N, C, H, W) -> y (N, C_out, OH, OW), OH = floor((H + 2*PH - KH) / SH) + 1 and OW
        alike; weight (C_out, C/groups, KH, KW), bias (C_out,).

    Example:
        >>> conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, rng=0)
        >>> conv
        Conv2d(3, 8, kernel_size=3, stride=1, padding=1)
        >>> conv(mg.zeros((2, 3, 32, 32))).shape
        (2, 8, 32, 32)
        >>> conv.multiply_adds((3, 32, 32))          # 8*3*3*3 weights at 32*32 positions
        221184
        >>> nn.Conv2d(3, 8, kernel_size=1, relu=True)(mg.ones((1, 3, 2, 2))).node.name
        'conv2d_relu'
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 rng=None, weight_init="xavier", bias_value=0.0, groups=1, relu=False):
        super().__init__()
        if not isinstance(relu, bool):
            raise ValueError(f"Conv2d: relu must be True or False, got {relu!r}")
        if not isinstance(groups, int) or groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups must be a positive integer dividing in_channels "
                             f"({in_channels}) and out_channels ({out_channels}), got {groups!r}")
        self.in_channels, self.out_channels, self.groups, self.relu = in_channels, out_channels, groups, relu
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        rng = numpy.random.default_rng(rng)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(init.make_weight(shape, rng, weight_init))
        self.bias = Parameter(init.constant((out_channels,), bias_value)) if bias else None

    def forward(self, x):
        if x.ndim == 4 and x.shape[1] != self.in_channels:       # F.conv2d checks the rest
            raise ValueError(f"conv2d: expected input with {self.in_channels} channels, "
                             f"got shape {x.shape}")
        convolution = F.conv2d_relu if self.relu else F.conv2d
        return convolution(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                           groups=self.groups)

    def output_shape(self, in_shape):
        channels, height, width = in_shape
        if channels != self.in_channels:
            raise ValueError(f"{self!r}: expected an example with {self.in_channels} channels, "
                             f"got shape {tuple(in_shape)}")
        out = window((height, width), self.kernel_size, self.stride, self.padding).out
        return (self.out_channels, *out)

    def multiply_adds(self, in_shape):
        _, out_height, out_width = self.output_shape(in_shape)
        return self.weight.size * out_height * out_width     # each weight at every output position

    def depth(self):
        return 1

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={_show(self.kernel_size)}, "
                f"stride={_show(self.stride)}")
        if self.padding != (0, 0):
            text += f", padding={_show(self.padding)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        text += "" if self.bias is not None else ", bias=False"
        return text + (", relu=True" if self.relu else "")


class BatchNorm2d(Module):
    """Batch normalization per channel (Ioffe & Szegedy 2015; ``F.batch_norm``).

    ``weight`` (gamma, ones) and ``bias`` (beta, zeros) are learned; the buffers
    ``running_mean`` (zeros) and ``running_var`` (ones) are updated by every training
    forward with PyTorch's ``momentum`` and used in eval mode (``minigrad.ops.batchnorm``).

    It counts no multiply-adds and no depth, as the papers count: the ops columns count
    convolutions and fully connected layers, and in eval mode this affine map folds into
    the convolution before it (w' = w gamma / sigma, b' = (b - mu) gamma / sigma + beta);
    ResNet-18's 18 layers are its 17 convolutions and its fully connected layer.

    Args:
        num_features (int): C, the number of channels.
        eps (float): added to the variance. Default: 1e-5.
        momentum (float): the running averages' step. Default: 0.1.

    Shape:
        x (N, C, H, W) -> y of x's shape; weight, bias and the running statistics (C,).

    Example:
        >>> bn = nn.BatchNorm2d(2)
        >>> y = bn(mg.tensor(numpy.arange(16, dtype=numpy.float32).reshape(2, 2, 2, 2)))
        >>> y.numpy().mean(axis=(0, 2, 3)).round(4), y.numpy().std(axis=(0, 2, 3)).round(4)
        (array([0., 0.], dtype=float32), array([1., 1.], dtype=float32))
        >>> bn.running_mean                  # 0.1 of the way from 0 to the batch's means
        array([0.55, 0.95], dtype=float32)
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        if not isinstance(num_features, (int, numpy.integer)) or num_features < 1:
            raise ValueError(f"BatchNorm2d: num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(init.constant((num_features,), 1.0))
        self.bias = Parameter(init.constant((num_features,), 0.0))
        self.register_buffer("running_mean", init.constant((num_features,), 0.0))
        self.register_buffer("running_var", init.constant((num_features,), 1.0))

    def forward(self, x):
        if x.ndim != 4:                              # F.batch_norm also takes (N, C)
            raise ValueError(f"batch_norm: expected input of shape (N, {self.num_features}, H, W), "
                             f"got shape {x.shape}")
        return F.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            training=self.training, momentum=self.momentum, eps=self.eps)

    def output_shape(self, in_shape):
        if len(in_shape) != 3 or in_shape[0] != self.num_features:
            raise ValueError(f"{self!r}: expected an example of shape ({self.num_features}, H, W), "
                             f"got {tuple(in_shape)}")
        return tuple(in_shape)

    def multiply_adds(self, in_shape):
        return 0

    def depth(self):
        return 0

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
