"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015), built from the columns of its Table 1.

Every configuration is five blocks of convolutions, each block followed by a 2x2 max pool
with stride 2, then three fully connected layers (section 2.1):

* "conv3-64" (the paper's notation) is a 3x3 convolution with 64 filters, stride 1 and
  padding 1, so the maps keep their size; every convolution is followed by a ReLU;
  "conv1-256" (configuration C only) a 1x1 convolution;
* the pools halve the maps: 224 -> 112 -> 56 -> 28 -> 14 -> 7, so fc6 reads 512 x 7 x 7;
* FC-4096 -> ReLU -> dropout 0.5 -> FC-4096 -> ReLU -> dropout 0.5 -> FC-1000 (logits; the
  softmax is left to the loss). Dropout regularises "the first two fully-connected layers"
  (section 3.1).

The configurations, named by the paper's letters and, for the four registered ones, by their
weight layers (convolutions + 3 fully connected):

    A  vgg11   8 + 3   132,863,336 parameters  (Table 2: 133 million)
    B  vgg13  10 + 3   133,047,848             (133)
    C         13 + 3   133,638,952             (134)   the third conv of blocks 3-5 is 1x1
    D  vgg16  13 + 3   138,357,544             (138)
    E  vgg19  16 + 3   143,667,240             (144)

(Table 1 also has A-LRN: A with a local response normalization after the first
convolution, which section 4.1 found not to help; it is left out.) VGG-16 costs
15,470,264,320 forward multiply-adds per 224x224 image.

Initialisation: the paper trained A from N(0, 10^-2) weights and started the deeper
networks from A's layers, then adds that "it is possible to initialise the weights without
pre-training by using the random initialisation procedure of Glorot & Bengio (2010)": that
one here (``glorot``: uniform +-sqrt(6 / (fan_in + fan_out))), biases 0, from one generator
seeded by ``seed`` (which also seeds the dropout layers).

At test time the paper turns the fully connected layers into convolutions (7x7, then 1x1)
to run on whole, uncropped images (section 3.2); here they stay Linear layers, the network
it trained on 224x224 crops.

Options:

* ``input_size``: any multiple of 32 from 32 up keeps every layer; what adapts is fc6's
  input, 512 x (input_size/32)^2: at 32x32 (the digits) the five pools leave a 1x1 map,
  so fc6 reads 512 values instead of 25,088 (a size that is not a multiple of 32 is
  floored at each pool; below 32 the model refuses).
* ``width`` multiplies every channel count and the 4096 units of fc6 and fc7 (rounded half
  up, at least 1).
"""
import numpy

from minigrad import nn

from . import registers

PAPER_INPUT_SIZE = 224
SMALLEST_INPUT = 32          # five 2x2/2 pools: 32 -> 16 -> 8 -> 4 -> 2 -> 1
HIDDEN_UNITS, DROPOUT = 4096, 0.5

# Table 1, one tuple of convolutions per block (a max pool follows each block).
CONFIGURATIONS = {
    "A": (("conv3-64",),
          ("conv3-128",),
          ("conv3-256", "conv3-256"),
          ("conv3-512", "conv3-512"),
          ("conv3-512", "conv3-512")),
    "B": (("conv3-64", "conv3-64"),
          ("conv3-128", "conv3-128"),
          ("conv3-256", "conv3-256"),
          ("conv3-512", "conv3-512"),
          ("conv3-512", "conv3-512")),
    "C": (("conv3-64", "conv3-64"),
          ("conv3-128", "conv3-128"),
          ("conv3-256", "conv3-256", "conv1-256"),
          ("conv3-512", "conv3-512", "conv1-512"),
          ("conv3-512", "conv3-512", "conv1-512")),
    "D": (("conv3-64", "conv3-64"),
          ("conv3-128", "conv3-128"),
          ("conv3-256", "conv3-256", "conv3-256"),
          ("conv3-512", "conv3-512", "conv3-512"),
          ("conv3-512", "conv3-512", "conv3-512")),
    "E": (("conv3-64", "conv3-64"),
          ("conv3-128", "conv3-128"),
          ("conv3-256", "conv3-256", "conv3-256", "conv3-256"),
          ("conv3-512", "conv3-512", "conv3-512", "conv3-512"),
          ("conv3-512", "conv3-512", "conv3-512", "conv3-512")),
}


def parse(layer):
    """"conv3-64" -> (3, 64): the paper's conv<receptive field>-<number of channels>."""
    kernel, channels = layer[len("conv"):].split("-")
    return int(kernel), int(channels)


def vgg(configuration, num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """The VGG network of Table 1's column ``configuration`` ("A" ... "E"): an
    ``nn.Sequential`` of five blocks (``block1`` ... ``block5``) and the classifier layers
    (``fc6`` ... ``fc8``), returning logits."""
    input_size = PAPER_INPUT_SIZE if input_size is None else input_size
    nn.check_network_options("vgg", num_classes, in_channels, width)
    if configuration not in CONFIGURATIONS:
        raise ValueError(f"vgg: unknown configuration {configuration!r}: expected one of "
                         f"{', '.join(CONFIGURATIONS)}")
    if input_size < SMALLEST_INPUT:
        raise ValueError(f"vgg: input_size must be at least {SMALLEST_INPUT} (five 2x2/2 pools), "
                         f"got {input_size}")
    rng = numpy.random.default_rng(seed)
    blocks, channels = {}, in_channels
    for number, block in enumerate(CONFIGURATIONS[configuration], start=1):
        layers = []
        for layer in block:
            kernel, filters = parse(layer)
            filters = nn.scale_channels(filters, width)
            layers += [nn.Conv2d(channels, filters, kernel, padding=kernel // 2, rng=rng,
                                 weight_init="glorot"), nn.ReLU()]
            channels = filters
        blocks[f"block{number}"] = nn.Sequential(*layers, nn.MaxPool2d(2, stride=2))
    features = dict(**blocks, flatten=nn.Flatten())
    (flat,) = nn.Sequential(**features).output_shape((in_channels, input_size, input_size))
    hidden = nn.scale_channels(HIDDEN_UNITS, width)

    def linear(n_in, n_out):
        return nn.Linear(n_in, n_out, rng=rng, weight_init="glorot")

    def dropout():
        return nn.Dropout(DROPOUT, seed=int(rng.integers(2**31)))

    return nn.Sequential(**features,
                         fc6=linear(flat, hidden), relu6=nn.ReLU(), drop6=dropout(),
                         fc7=linear(hidden, hidden), relu7=nn.ReLU(), drop7=dropout(),
                         fc8=linear(hidden, num_classes))


@registers("vgg11", PAPER_INPUT_SIZE)
def vgg11(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """Configuration A: 8 convolutions + 3 fully connected layers."""
    return vgg("A", num_classes, in_channels, input_size, width, seed)


@registers("vgg13", PAPER_INPUT_SIZE)
def vgg13(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """Configuration B: 10 convolutions + 3 fully connected layers."""
    return vgg("B", num_classes, in_channels, input_size, width, seed)


@registers("vgg16", PAPER_INPUT_SIZE)
def vgg16(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """Configuration D: 13 convolutions (all 3x3) + 3 fully connected layers."""
    return vgg("D", num_classes, in_channels, input_size, width, seed)


@registers("vgg19", PAPER_INPUT_SIZE)
def vgg19(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """Configuration E: 16 convolutions + 3 fully connected layers."""
    return vgg("E", num_classes, in_channels, input_size, width, seed)
