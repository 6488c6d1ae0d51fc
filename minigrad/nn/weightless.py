"""Layers without weights: pooling, local response normalization, dropout, ReLU and
Flatten (the conventions they share with every layer are in ``layers.py``). None counts
multiply-adds or depth."""
import math

from .. import backend
from .. import functional as F
from ..geometry import pair, window
from .module import Module


class _Weightless(Module):
    """A layer without weights: no multiply-adds counted, no depth."""

    def multiply_adds(self, in_shape):
        return 0

    def depth(self):
        return 0


class ShapePreserving(_Weightless):
    """Base class of a layer without weights whose output has its input's shape.

    ReLU, LRN and dropout are such layers; a new one (LeNet-5's scaled tanh) subclasses it,
    writes ``forward`` and gets the summary methods: no multiply-adds, no depth.

    Shape:
        out has the input's shape.

    Example:
        >>> class ScaledTanh(nn.ShapePreserving):
        ...     def forward(self, x):
        ...         return 1.7159 * (x * (2 / 3)).tanh()
        >>> ScaledTanh().output_shape((6, 28, 28)), ScaledTanh().multiply_adds((6, 28, 28))
        ((6, 28, 28), 0)
    """

    def output_shape(self, in_shape):
        return tuple(in_shape)


class _Pool2d(_Weightless):
    """What max and average pooling share: the window and how it moves."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        for value, name in ((kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding")):
            if value is not None:
                pair(value, name)           # fail here, not at the first forward
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode

    def output_shape(self, in_shape):
        channels, height, width = in_shape
        out = window((height, width), self.kernel_size, self.stride, self.padding, self.ceil_mode).out
        return (channels, *out)

    def extra_repr(self):
        text = f"kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != 0:
            text += f", padding={self.padding}"
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Max pooling layer: the largest value of each window (``F.max_pool2d``).

    Args:
        kernel_size (int or (int, int)): the window (KH, KW).
        stride (int or (int, int), optional): the step between windows; None (default)
            means ``kernel_size``.
        padding (int or (int, int)): added on each side, at most half the kernel. Default: 0.
        ceil_mode (bool): round the output size up, as Caffe's GoogLeNet does. Default: False.

    Shape:
        x (N, C, H, W) -> y (N, C, OH, OW), OH = floor((H + 2*PH - KH) / SH) + 1 (ceil with
        ``ceil_mode``) and OW alike.

    Example:
        >>> pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        >>> pool.output_shape((64, 112, 112))            # GoogLeNet's first pool
        (64, 56, 56)
        >>> pool(mg.zeros((1, 64, 112, 112))).shape
        (1, 64, 56, 56)
    """

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding,
                            ceil_mode=self.ceil_mode)


class AvgPool2d(_Pool2d):
    """Average pooling layer: the mean of each window, PyTorch's divisor rule (``F.avg_pool2d``).

    Args:
        kernel_size, stride, padding, ceil_mode: the windows, as for ``MaxPool2d``.
        count_include_pad (bool): whether padded zeros count in the divisor. Default: True.

    Shape:
        x (N, C, H, W) -> y (N, C, OH, OW), sized as for ``MaxPool2d``.

    Example:
        >>> pool = nn.AvgPool2d(5, stride=3)                # GoogLeNet's auxiliary heads
        >>> pool.output_shape((512, 14, 14))
        (512, 4, 4)
        >>> nn.AvgPool2d(2)(mg.ones((1, 1, 4, 4)))
        Tensor([[[[1., 1.],
                  [1., 1.]]]], dtype=float32)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding,
                            ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)

    def extra_repr(self):
        return super().extra_repr() + ("" if self.count_include_pad else ", count_include_pad=False")


class GlobalAvgPool2d(_Weightless):
    """Global average pooling layer: the mean of each channel's whole map (``F.global_avg_pool2d``).

    Shape:
        x (N, C, H, W) -> y (N, C, 1, 1).

    Example:
        >>> nn.GlobalAvgPool2d()(mg.ones((2, 1024, 7, 7))).shape
        (2, 1024, 1, 1)
    """

    def forward(self, x):
        return F.global_avg_pool2d(x)

    def output_shape(self, in_shape):
        return (in_shape[0], 1, 1)


class LocalResponseNorm(ShapePreserving):
    """Local response normalization across channels (``F.local_response_norm``):

        y_c = x_c / (k + alpha/size * sum_{c' near c} x_{c'}^2)^beta

    Args:
        size (int): how many neighbouring channels, centred on c. Default: 5.
        alpha (float): the scale, divided by ``size`` as in Caffe and PyTorch. Default: 1e-4.
        beta (float): the exponent. Default: 0.75.
        k (float): the constant. Default: 1.0.

    Shape:
        x (N, C, ...) -> y of x's shape.

    Example:
        >>> lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)   # GoogLeNet's
        >>> lrn
        LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=1.0)
        >>> lrn(mg.ones((1, 64, 8, 8))).shape
        (1, 64, 8, 8)
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class Dropout(ShapePreserving):
    """Dropout layer: zero each value with probability p while training (``F.dropout``).

    The kept values are scaled by 1/(1-p); in eval mode the layer is the identity. It owns
    its generator: ``seed`` makes the masks reproducible, ``reseed(seed)`` restarts them (a
    gradient check needs the same mask in every evaluation). Masks are drawn on the input's
    device, by one generator per device (CuPy's draws other numbers than NumPy's from the
    same seed).

    Args:
        p (float): the probability of dropping a value, in [0, 1]. Default: 0.5.
        seed (int, optional): seeds the masks; None (default) draws unseeded ones.

    Shape:
        x of any shape -> y of x's shape.

    Example:
        >>> drop = nn.Dropout(0.5, seed=0)
        >>> drop(mg.ones((1, 8)))                    # the kept values doubled
        Tensor([[2., 0., 0., 0., 2., 2., 2., 2.]], dtype=float32)
        >>> drop.eval()(mg.ones((1, 8)))
        Tensor([[1., 1., 1., 1., 1., 1., 1., 1.]], dtype=float32)
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self.reseed(seed)

    def reseed(self, seed):
        self.seed = seed
        self.generators = {}            # device -> generator, made on first use
        return self

    def use_generator(self, generator):
        """Draw the masks on ``generator.device`` from ``generator`` (anything with a
        ``random(shape)`` method, such as ``minigrad.counter_random.CounterGenerator``) until
        the next ``reseed``."""
        self.generators[generator.device] = generator
        return self

    def generator(self, device):
        if device not in self.generators:
            self.generators[device] = backend.default_rng(self.seed, device)
        return self.generators[device]

    def forward(self, x):
        rng = self.generator(x.device) if self.training else None
        return F.dropout(x, self.p, training=self.training, rng=rng)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(ShapePreserving):
    """Rectifier layer: y = max(x, 0), elementwise (``F.relu``).

    Shape:
        x of any shape -> y of x's shape.

    Example:
        >>> nn.ReLU()(mg.tensor([-1.0, 2.0]))
        Tensor([0., 2.], dtype=float32)
    """

    def forward(self, x):
        return F.relu(x)


class Flatten(_Weightless):
    """Flatten layer: merge every axis from ``start_axis`` on into one (``F.flatten``).

    Args:
        start_axis (int): the first axis merged, counting the batch axis. Default: 1.

    Shape:
        x (N, C, H, W) -> y (N, C*H*W) with the default ``start_axis``.

    Example:
        >>> nn.Flatten()(mg.zeros((2, 3, 4, 4))).shape
        (2, 48)
        >>> nn.Flatten().output_shape((3, 4, 4))
        (48,)
    """

    def __init__(self, start_axis=1):
        super().__init__()
        self.start_axis = start_axis

    def forward(self, x):
        return F.flatten(x, self.start_axis)

    def output_shape(self, in_shape):
        start = self.start_axis % (len(in_shape) + 1)     # an axis of the batch: 0 is N
        if start == 0:
            raise ValueError(f"{self!r}: merges the batch axis, so an example has no shape of its own")
        return tuple(in_shape[:start - 1]) + (math.prod(in_shape[start - 1:]),)

    def extra_repr(self):
        return "" if self.start_axis == 1 else f"start_axis={self.start_axis}"
