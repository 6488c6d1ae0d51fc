"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 1998, section II.B), and a modern variant beside it.

    model = zoo.build("lenet5")           # the 1998 network: 60,000 trainable parameters
    logits = model(x)                     # x (N, 1, 32, 32) -> (N, 10)

The 1998 network, layer by layer (attribute names in brackets; "f" is the squashing
function f(a) = A tanh(S a) with A = 1.7159 and S = 2/3, which the paper applies to every
unit "up to F6"):

    [c1]  6 maps 28x28, 5x5 convolution                     156 parameters  (6 x 25 + 6)
    [s2]  6 maps 14x14, 2x2 subsampling: the four inputs     12            (6 + 6)
          summed, times a trainable coefficient, plus a trainable bias (per map), then f
    [c3]  16 maps 10x10, 5x5 convolution where each map    1,516          (60 x 25 + 16)
          reads only the S2 maps Table I lists (60 of the 96 map pairs)
    [s4]  16 maps 5x5, subsampling as s2                     32            (16 + 16)
    [c5]  120 maps 1x1, 5x5 convolution on all 16 maps   48,120          (120 x 400 + 120)
    [f6]  84 units, fully connected                      10,164          (84 x 120 + 84)
    [output] 10 Euclidean RBF units: y_i = sum_j (x_j - w_ij)^2, with w_i a fixed vector
          of +-1 (840 numbers, not trained, not counted)
                                                  total  60,000 trainable parameters

(the paper's own figures for each layer, section II.B). "The squashing function" follows
every layer but the output: [squash1] .. [squash6].

What differs from 1998, and why:

* The RBF prototypes: the paper drew each class's 84 targets by hand as a stylized 7x12
  bitmap of the character; it says they "could have been chosen at random with equal
  probabilities for -1 and +1", and that is what we do (seeded), not having the bitmaps.
* The output is returned as -y (minus each squared distance), so that the nearest prototype
  has the largest value. Cross-entropy on -y is y_correct + log sum_i exp(-y_i): the paper's
  own criterion (eq. 9) without its constant "rubbish class" term exp(-j). It is trained here
  with SGD, not the paper's stochastic diagonal Levenberg-Marquardt.
* Initialization as in the paper's Appendix A: uniform in +-2.4 / F_i, F_i the fan-in of the
  unit (25 in C1, 4 for a subsampling coefficient, ...); biases 0. The paper scales the
  input so the background is -0.1 and the ink 1.175 (mean about 0, variance about 1); the
  data loader's normalization to mean 0, std 1 does the same job.

The builders' defaults are the paper's: 10 classes, 1 input channel, a 32x32 input.

``input_size``: 32 is the paper's (its digits were 28x28 placed in a 32x32 field). A larger
input keeps every layer; C5 is a convolution, so its maps grow beyond 1x1 ("if LeNet-5's input
were made bigger with everything else kept constant, the feature map dimension would be larger
than 1x1", section II.B) and F6 reads all of them. Below 32 the maps run out before C5: an error.

``width`` multiplies every layer's maps or units (6, 16, 120, 84), rounded half up, at least 1.
Table I is defined for 6 S2 maps and 16 C3 maps, so at any width but 1 C3 reads every S2 map
(as in the modern variant) and the network is no longer the paper's.

"lenet5-modern" keeps the layer sizes and changes what later practice changed: ReLU instead of
the scaled tanh, 2x2 max pooling instead of the trainable subsampling, a full C3 (every map reads
all six), He initialization, and a linear output layer trained with softmax cross-entropy:
61,706 parameters (C1 156, C3 2,416, C5 48,120, F6 10,164, output 850).
"""
import numpy

from minigrad import backend, nn
from minigrad import functional as F
from minigrad.nn import init
from minigrad.geometry import window

from . import registers

INPUT_SIZE = 32
KERNEL = 5
C1_MAPS, C3_MAPS, C5_MAPS, F6_UNITS = 6, 16, 120, 84
TANH_AMPLITUDE, TANH_SLOPE = 1.7159, 2 / 3     # f(a) = A tanh(S a): f(1) = 1, f(-1) = -1

# Table I: the S2 maps each C3 map reads. Maps 0-5 read every three neighbouring S2 maps,
# 6-11 every four neighbouring ones (wrapping around), 12-14 three sets of four that are
# not neighbours, and 15 reads all six.
CONNECTIONS = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def lecun_uniform(shape, rng, dtype=numpy.float32):
    """The paper's initialization (Appendix A): uniform in +-2.4 / F, F the unit's fan-in."""
    fan_in, _ = init.fan_in_and_out(shape)
    limit = 2.4 / fan_in
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


# --- the new layers, each composed from minigrad ops (the engine differentiates them) ---------
class ScaledTanh(nn.ShapePreserving):
    """The paper's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3 (section II.B,
    Appendix A): odd, f(+-1) = +-1, and its second derivative is largest near +-1, where
    the RBF targets lie."""

    def forward(self, x):
        return F.tanh(x * TANH_SLOPE) * TANH_AMPLITUDE

    def extra_repr(self):
        return f"{TANH_AMPLITUDE} * tanh({TANH_SLOPE:.4g} * x)"


class Subsampling(nn.Module):
    """LeNet's S2 and S4: y = coefficient[c] * (sum of the 2x2 window) + bias[c] per map c,
    windows not overlapping (stride 2). Two trainable numbers per map."""

    def __init__(self, channels, rng=None):
        super().__init__()
        self.channels = channels
        rng = numpy.random.default_rng(rng)
        window = 4                                       # each coefficient weighs 4 inputs
        self.weight = nn.Parameter(rng.uniform(-2.4 / window, 2.4 / window, channels).astype(numpy.float32))
        self.bias = nn.Parameter(init.constant((channels,), 0.0))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected input of shape (N, {self.channels}, H, W), got shape {x.shape}")
        window_sums = F.avg_pool2d(x, 2) * 4
        per_map = (1, self.channels, 1, 1)
        return window_sums * self.weight.reshape(per_map) + self.bias.reshape(per_map)

    def output_shape(self, in_shape):
        channels, height, width = in_shape
        if channels != self.channels:
            raise ValueError(f"{self!r}: expected an example with {self.channels} channels, got "
                             f"shape {tuple(in_shape)}")
        return (channels, height // 2, width // 2)

    def multiply_adds(self, in_shape):
        channels, height, width = self.output_shape(in_shape)
        return channels * height * width                 # the coefficient, once per output

    def depth(self):
        return 1

    def extra_repr(self):
        return f"{self.channels}, 2x2 sum x coefficient + bias"


class ConnectionTable(nn.Module):
    """A convolution in which output map j reads only the input maps ``connections[j]``
    (LeNet-5's C3, Table I). Only real connections have weights: ``weight`` holds one KxK
    kernel per connected (output map, input map) pair, in the table's order (map 0's inputs,
    then map 1's, ...), and ``bias`` one number per output map.

    The forward is a masked convolution: the full (out, in, K, K) kernel is gathered from
    ``weight`` with a zero kernel in every pair the table leaves out, then one ordinary
    convolution runs. The gather is an indexing op, so the engine sends each pair's gradient
    back to its own kernel, and none to the zeros. Multiply-adds count the real connections.
    """

    def __init__(self, in_channels, connections, kernel_size, rng=None):
        super().__init__()
        used = sorted({i for inputs in connections for i in inputs})
        if used[0] < 0 or used[-1] >= in_channels:
            raise ValueError(f"ConnectionTable: the table names input maps {used[0]}..{used[-1]}, "
                             f"but there are {in_channels} (0..{in_channels - 1})")
        self.in_channels, self.out_channels = in_channels, len(connections)
        self.kernel_size = kernel_size
        self.connections = tuple(tuple(inputs) for inputs in connections)
        pairs = [(j, i) for j, inputs in enumerate(self.connections) for i in inputs]
        absent = len(pairs)                              # the index of the zero kernel
        self.pair_index = numpy.full(self.out_channels * in_channels, absent)
        for number, (j, i) in enumerate(pairs):
            self.pair_index[j * in_channels + i] = number
        rng = numpy.random.default_rng(rng)
        fan_ins = [len(self.connections[j]) * kernel_size * kernel_size for j, _ in pairs]
        limits = 2.4 / numpy.array(fan_ins).reshape(-1, 1, 1)   # Appendix A, per unit's fan-in
        self.weight = nn.Parameter((rng.uniform(-1, 1, (len(pairs), kernel_size, kernel_size)) * limits)
                                   .astype(numpy.float32))
        self.bias = nn.Parameter(init.constant((self.out_channels,), 0.0))

    def full_kernel(self):
        """The (out, in, K, K) kernel of the masked convolution: zeros where no connection is."""
        k = self.kernel_size
        xp = backend.get_array_module(self.weight.data)
        zero = xp.zeros((1, k, k), dtype=self.weight.dtype)
        kernels = F.concat([self.weight, zero], axis=0)             # (connections + 1, K, K)
        return kernels[self.pair_index].reshape(self.out_channels, self.in_channels, k, k)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ConnectionTable: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got shape {x.shape}")
        return F.conv2d(x, self.full_kernel(), self.bias)

    def output_shape(self, in_shape):
        channels, height, width = in_shape
        if channels != self.in_channels:
            raise ValueError(f"ConnectionTable: expected an example with {self.in_channels} channels, "
                             f"got shape {tuple(in_shape)}")
        out = window((height, width), self.kernel_size, 1, 0).out
        return (self.out_channels, *out)

    def multiply_adds(self, in_shape):
        _, out_height, out_width = self.output_shape(in_shape)
        return self.weight.size * out_height * out_width     # real connections only

    def depth(self):
        return 1

    def extra_repr(self):
        pairs = len(self.weight)
        return (f"{self.in_channels} -> {self.out_channels} maps, kernel_size={self.kernel_size}, "
                f"{pairs} of {self.in_channels * self.out_channels} map pairs connected")


class EuclideanRBF(nn.Module):
    """The paper's output layer: y_i = sum_j (x_j - w_ij)^2 with fixed prototypes w_i (eq. 7),
    returned as -y so that the nearest prototype scores highest. ``prototypes`` (classes,
    features) is a constant array, not a Parameter: it is never trained or counted."""

    def __init__(self, prototypes):
        super().__init__()
        self.prototypes = numpy.asarray(prototypes, dtype=numpy.float32)

    def forward(self, x):
        classes, features = self.prototypes.shape
        if x.ndim != 2 or x.shape[1] != features:
            raise ValueError(f"expected input of shape (N, {features}), got shape {x.shape}")
        xp = backend.get_array_module(x.data)
        prototypes = xp.asarray(self.prototypes, dtype=x.dtype)
        differences = x.reshape(x.shape[0], 1, features) - prototypes       # (N, classes, features)
        return -(differences ** 2).sum(axis=2)

    def output_shape(self, in_shape):
        classes, features = self.prototypes.shape
        if tuple(in_shape) != (features,):
            raise ValueError(f"{self!r}: expected an example of shape ({features},), got {tuple(in_shape)}")
        return (classes,)

    def multiply_adds(self, in_shape):
        return self.prototypes.size                  # each (x_j - w_ij)^2 once per example

    def depth(self):
        return 1

    def extra_repr(self):
        classes, features = self.prototypes.shape
        return f"{features} -> {classes}, fixed prototypes"


# --- the networks ------------------------------------------------------------------------------
def _c5_side(input_size):
    """The side of C5's maps: 1 at the paper's 32x32 (32 -> 28 -> 14 -> 10 -> 5 -> 1)."""
    side = ((input_size - KERNEL + 1) // 2 - KERNEL + 1) // 2 - KERNEL + 1
    if side < 1:
        raise ValueError(f"LeNet-5 needs an input of at least {INPUT_SIZE}x{INPUT_SIZE} (S4's maps "
                         f"must be at least {KERNEL}x{KERNEL} for C5), got input_size={input_size}")
    return side


def _c3(in_maps, out_maps, width, rng):
    """Table I's partial C3 at the paper's width; a full convolution at any other."""
    if width == 1:
        return ConnectionTable(in_maps, CONNECTIONS, KERNEL, rng=rng)
    return nn.Conv2d(in_maps, out_maps, KERNEL, rng=rng, weight_init=lecun_uniform)


def prototypes(num_classes, features, rng):
    """One random +-1 vector per class (the paper allows random codes instead of its bitmaps)."""
    return rng.choice(numpy.array([-1.0, 1.0], dtype=numpy.float32), size=(num_classes, features))


@registers("lenet5", INPUT_SIZE)
def build(num_classes=10, in_channels=1, input_size=None, width=1.0, seed=0):
    """LeNet-5 as in 1998 (module docstring): 60,000 trainable parameters at the defaults."""
    input_size = INPUT_SIZE if input_size is None else input_size
    nn.check_network_options("lenet5", num_classes, in_channels, width)
    side = _c5_side(input_size)
    rng = numpy.random.default_rng(seed)
    c1, c3, c5, f6 = (nn.scale_channels(n, width) for n in (C1_MAPS, C3_MAPS, C5_MAPS, F6_UNITS))
    return nn.Sequential(                      # built in order: the generator's draws go C1, S2, C3, ...
        c1=nn.Conv2d(in_channels, c1, KERNEL, rng=rng, weight_init=lecun_uniform),
        squash1=ScaledTanh(),
        s2=Subsampling(c1, rng=rng),
        squash2=ScaledTanh(),
        c3=_c3(c1, c3, width, rng),
        squash3=ScaledTanh(),
        s4=Subsampling(c3, rng=rng),
        squash4=ScaledTanh(),
        c5=nn.Conv2d(c3, c5, KERNEL, rng=rng, weight_init=lecun_uniform),
        squash5=ScaledTanh(),
        flatten=nn.Flatten(),
        f6=nn.Linear(c5 * side * side, f6, rng=rng, weight_init=lecun_uniform),
        squash6=ScaledTanh(),
        output=EuclideanRBF(prototypes(num_classes, f6, rng)))


@registers("lenet5-modern", INPUT_SIZE)
def build_modern(num_classes=10, in_channels=1, input_size=None, width=1.0, seed=0):
    """LeNet-5's layer sizes with ReLU, max pooling, a full C3, He init and a linear output."""
    input_size = INPUT_SIZE if input_size is None else input_size
    nn.check_network_options("lenet5-modern", num_classes, in_channels, width)
    side = _c5_side(input_size)
    rng = numpy.random.default_rng(seed)
    c1, c3, c5, f6 = (nn.scale_channels(n, width) for n in (C1_MAPS, C3_MAPS, C5_MAPS, F6_UNITS))
    return nn.Sequential(
        c1=nn.Conv2d(in_channels, c1, KERNEL, rng=rng, weight_init="he"),
        relu1=nn.ReLU(),
        pool2=nn.MaxPool2d(2),
        c3=nn.Conv2d(c1, c3, KERNEL, rng=rng, weight_init="he"),
        relu3=nn.ReLU(),
        pool4=nn.MaxPool2d(2),
        c5=nn.Conv2d(c3, c5, KERNEL, rng=rng, weight_init="he"),
        relu5=nn.ReLU(),
        flatten=nn.Flatten(),
        f6=nn.Linear(c5 * side * side, f6, rng=rng, weight_init="he"),
        relu6=nn.ReLU(),
        output=nn.Linear(f6, num_classes, rng=rng, weight_init="glorot"))

