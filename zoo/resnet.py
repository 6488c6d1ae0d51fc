"""ResNet-18 and ResNet-34 (He, Zhang, Ren & Sun, "Deep residual learning for image
recognition", CVPR 2016, arXiv 1512.03385), the 18- and 34-layer columns of Table 1.

    model = zoo.build("resnet18")          # 11,689,512 parameters, 224x224 input
    logits = model(x)                      # x (N, 3, 224, 224) -> (N, 1000)

Table 1, with the attribute names in brackets:

    paper's name   output   18-layer                      34-layer
    conv1          112x112  7x7, 64, stride 2             [conv1, bn1, relu]
    conv2_x         56x56   3x3 max pool, stride 2        [maxpool]
                            [3x3, 64;  3x3, 64]  x 2      x 3      [conv2_x]
    conv3_x         28x28   [3x3, 128; 3x3, 128] x 2      x 4      [conv3_x]
    conv4_x         14x14   [3x3, 256; 3x3, 256] x 2      x 6      [conv4_x]
    conv5_x          7x7    [3x3, 512; 3x3, 512] x 2      x 3      [conv5_x]
                     1x1    average pool, 1000-d fc, softmax       [avgpool, flatten, fc]
    FLOPs                   1.8 x 10^9                    3.6 x 10^9

Each [3x3; 3x3] is a basic block (``BasicBlock``, Fig. 2 and Fig. 3):

    y = relu(branch(x) + shortcut(x)),   branch = conv 3x3 - BN - ReLU - conv 3x3 - BN

"Downsampling is performed by conv3_1, conv4_1, and conv5_1 with a stride of 2" (Table 1's
caption): the first block of those stages has stride 2 in its first convolution and doubles
the channels, so its shortcut must change shape too. We use the paper's option B (section
3.3): a projection, here a 1x1 convolution with stride 2 followed by BN; every other shortcut
is the identity. The "softmax" row is left to the loss: the model returns logits.

Batch normalization comes "right after each convolution and before activation" (section
3.4), so the convolutions have no bias (BN's beta is one). The paper counts no parameters;
11,689,512 (ResNet-18) and 21,797,672 (ResNet-34) are what Table 1 with option B gives,
BN's gamma and beta included (torchvision's resnet18 and resnet34 have the same).
The paper's "FLOPs" are multiply-adds (each weight once per output position). Ours are
1,814,073,344 and 3,663,761,408; without the three projection shortcuts (19,267,584
together; option A's zero-padded identity costs none) they are 1,794,805,760 and
3,644,493,824, which round to the paper's 1.8 and 3.6 billion (3.664 would not): the
column seems to count the path without projections.

Initialization: "as in [13]" (He et al. 2015, "Delving deep into rectifiers"): normal with
std sqrt(2 / fan_in) for every convolution; BN gamma 1 and beta 0. The paper says nothing
about the fc layer: it is followed by the softmax, not a ReLU, so it gets the variance
1 / fan_in of Caffe's "xavier" filler, with bias 0. All from one generator seeded by ``seed``.

Options:

* ``width`` multiplies the channels (64, 128, 256, 512), rounded half up, at least 1.
* ``input_size``: any size runs (the global average pool takes whatever map is left). Below
  64 (the digits' and CIFAR's 32x32) the stem adapts, as is usual for such inputs (it is not
  the paper's own CIFAR network of section 4.2, a narrower 6n+2-layer design): the 7x7/2
  convolution becomes a 3x3/1 one (padding 1) and the max pool goes, so that the four
  stages see 32, 16, 8 and 4 pixels where ImageNet's see 56, 28, 14 and 7. The ImageNet stem
  would shrink a 32x32 image to 8x8 before the first block and to 1x1 in conv5_x.
"""
import numpy

from minigrad import functional as F
from minigrad import nn

from . import registers

INPUT_SIZE = 224
SMALL_INPUT = 64                        # below this, the small stem
STAGE_CHANNELS = (64, 128, 256, 512)    # conv2_x .. conv5_x
BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


def conv_bn(in_channels, out_channels, kernel_size, stride, rng):
    """(convolution without bias, padded by half its kernel; BN): the pair after which the
    paper puts every activation."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                     bias=False, rng=rng, weight_init="he")
    return conv, nn.BatchNorm2d(out_channels)


class BasicBlock(nn.Module):
    """y = relu(branch(x) + shortcut(x)) (Fig. 2). [branch] is conv1 3x3/stride - bn1 - relu -
    conv2 3x3/1 - bn2. [shortcut] is the identity (an empty Sequential) when the shape stays,
    and the projection conv 1x1/stride - bn (option B) when it changes."""

    def __init__(self, in_channels, out_channels, stride=1, rng=None):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        conv1, bn1 = conv_bn(in_channels, out_channels, 3, stride, rng)
        conv2, bn2 = conv_bn(out_channels, out_channels, 3, 1, rng)
        self.branch = nn.Sequential(conv1=conv1, bn1=bn1, relu=nn.ReLU(), conv2=conv2, bn2=bn2)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Sequential()
        else:
            conv, bn = conv_bn(in_channels, out_channels, 1, stride, rng)
            self.shortcut = nn.Sequential(conv=conv, bn=bn)

    def forward(self, x):
        return F.relu(self.branch(x) + self.shortcut(x))

    def output_shape(self, in_shape):
        shape, shortcut_shape = self.branch.output_shape(in_shape), self.shortcut.output_shape(in_shape)
        if shape != shortcut_shape:
            raise ValueError(f"{type(self).__name__}: its branch gives {shape} but its shortcut "
                             f"{shortcut_shape} for an example of shape {tuple(in_shape)}")
        return shape

    def multiply_adds(self, in_shape):
        """The branch's and the projection's (the addition and the ReLU count none)."""
        return self.branch.multiply_adds(in_shape) + self.shortcut.multiply_adds(in_shape)

    def depth(self):
        """The longer path: the branch's 2 (a projection shortcut has 1)."""
        return max(self.branch.depth(), self.shortcut.depth())

    def extra_repr(self):
        return f"{self.in_channels} -> {self.out_channels}, stride={self.stride}"


def stage(in_channels, out_channels, blocks, stride, rng):
    """``blocks`` basic blocks; the first one has ``stride`` and changes the channels."""
    layers = [BasicBlock(in_channels, out_channels, stride, rng)]
    layers += [BasicBlock(out_channels, out_channels, 1, rng) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def stem(in_channels, out_channels, input_size, rng):
    """{name: layer} before conv2_x's blocks: 7x7/2 conv, BN, ReLU, 3x3/2 max pool (padding 1);
    for an input below SMALL_INPUT, a 3x3/1 conv, BN and ReLU only (module docstring)."""
    small = input_size < SMALL_INPUT
    conv1, bn1 = conv_bn(in_channels, out_channels, 3 if small else 7, 1 if small else 2, rng)
    layers = {"conv1": conv1, "bn1": bn1, "relu": nn.ReLU()}
    if not small:
        layers["maxpool"] = nn.MaxPool2d(3, stride=2, padding=1)
    return layers


def resnet(blocks, num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """A ResNet of basic blocks, ``blocks`` per stage (Table 1), as an nn.Sequential."""
    input_size = INPUT_SIZE if input_size is None else input_size
    _check_options(num_classes, in_channels, input_size, width)
    rng = numpy.random.default_rng(seed)
    channels = [nn.scale_channels(c, width) for c in STAGE_CHANNELS]
    layers = stem(in_channels, channels[0], input_size, rng)
    previous = channels[0]
    for index, (count, out_channels) in enumerate(zip(blocks, channels)):
        layers[f"conv{index + 2}_x"] = stage(previous, out_channels, count, 1 if index == 0 else 2, rng)
        previous = out_channels
    layers.update(avgpool=nn.GlobalAvgPool2d(), flatten=nn.Flatten(),
                  fc=nn.Linear(previous, num_classes, rng=rng, weight_init="xavier"))
    return nn.Sequential(**layers)


def _check_options(num_classes, in_channels, input_size, width):
    nn.check_network_options("resnet", num_classes, in_channels, width)
    if not isinstance(input_size, (int, numpy.integer)) or input_size < 1:
        raise ValueError(f"resnet: input_size must be a positive int, got {input_size!r}")


@registers("resnet18", INPUT_SIZE)
def resnet18(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """ResNet-18: [2, 2, 2, 2] basic blocks; 11,689,512 parameters at 1000 classes."""
    return resnet(BLOCKS["resnet18"], num_classes, in_channels, input_size, width, seed)


@registers("resnet34", INPUT_SIZE)
def resnet34(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """ResNet-34: [3, 4, 6, 3] basic blocks; 21,797,672 parameters at 1000 classes."""
    return resnet(BLOCKS["resnet34"], num_classes, in_channels, input_size, width, seed)
