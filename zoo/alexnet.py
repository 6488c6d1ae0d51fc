"""AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NIPS 2012), as the paper describes it (section 3.5 and Figure 2):

    layer   what                                                  output at 227x227
    conv1   96 kernels 11x11x3, stride 4            -> ReLU -> LRN    96 x 55 x 55
    pool1   max 3x3, stride 2 (overlapping)                           96 x 27 x 27
    conv2   256 kernels 5x5x48, pad 2, two groups   -> ReLU -> LRN   256 x 27 x 27
    pool2   max 3x3, stride 2                                        256 x 13 x 13
    conv3   384 kernels 3x3x256, pad 1              -> ReLU          384 x 13 x 13
    conv4   384 kernels 3x3x192, pad 1, two groups  -> ReLU          384 x 13 x 13
    conv5   256 kernels 3x3x192, pad 1, two groups  -> ReLU          256 x 13 x 13
    pool5   max 3x3, stride 2                                        256 x 6 x 6
    fc6     9216 -> 4096 -> ReLU -> dropout 0.5
    fc7     4096 -> 4096 -> ReLU -> dropout 0.5
    fc8     4096 -> 1000 (logits; the softmax is left to the loss)

(attribute names as in the paper's numbering and Caffe's reference model: ``model.conv2``,
``model.norm1``, ``model.drop6``...).

Why 227. The paper says the first layer filters "the 224x224x3 input image", but with no
padding an 11x11 window at stride 4 fits (224 - 11) / 4 + 1 = 54.25 times: not the 55 of
Figure 2. A 227x227 input gives exactly (227 - 11) / 4 + 1 = 55, every pixel covered, and so
does Caffe's reference model (crop 227). The other way to 55 is 224 with 2 pixels of zero
padding on each side: floor((224 + 4 - 11) / 4) + 1 = 55, the windows stopping one row and
one column short of the far padding (what torchvision does). Here: 227 and no padding.

Two towers. The network was split over two GPUs (section 3.2): each half of conv2, conv4 and
conv5 sees only the kernel maps of its own GPU, conv3 and the fully connected layers see all.
That is ``groups=2`` (``minigrad.ops.conv``): conv2 has 5x5x48 kernels, not 5x5x96. So the
network has 60,965,224 parameters (the paper's "60 million"); a single-tower version
(``towers=1``, every convolution sees every channel) has 62,378,344. Forward multiply-adds
per 227x227 image: 724,406,816 with the towers (conv1 alone: 96 * 3*11*11 weights at 55*55
positions = 105,415,200), 1,135,256,096 for the single tower.

Local response normalization (section 3.3) follows the ReLU of conv1 and conv2:

    b_c = a_c / (k + alpha * sum_{c' in window(c)} a_c'^2)^beta     k=2, n=5, alpha=1e-4, beta=0.75

minigrad's ``LocalResponseNorm`` (``minigrad.ops.lrn``, Caffe's and PyTorch's convention)
divides alpha by n: k + alpha/n * sum. The paper's alpha=1e-4 is therefore ``alpha=5e-4``
here (5e-4 / 5 = 1e-4). (Caffe's reference model writes alpha: 0.0001 in the divided
convention, with k = 1: five times weaker, and not the paper's numbers.)

Initialisation (section 5): every weight from a zero-mean Gaussian with standard deviation
0.01; biases 1 in conv2, conv4, conv5, fc6 and fc7 ("to provide the ReLUs with positive
inputs"), 0 elsewhere. Dropout (section 4.2): the paper multiplies the outputs by 0.5 at
test time; minigrad's dropout scales the kept units by 2 while training instead (the same
expected values), and is the identity in eval mode.

Options:

* ``input_size``: 227 (the paper's) or any size from 67 up keeps the paper's layers, only the
  maps shrink (67 is the smallest input the 11x11/4 stem carries through the three pools:
  67 -> 15 -> 7 -> 3 -> 1). Below 67, e.g. 32x32 digits, the 11x11/4 stem would leave too
  little to pool, and conv1 becomes 5x5 with stride 1 and pad 2 (the first layer of
  Krizhevsky's cuda-convnet networks for 32x32 CIFAR-10 images): 32 -> 32 -> 15 -> 7 -> 3, so
  fc6 reads 256 x 3 x 3 = 2304 values. Everything else stays (kernels, groups, LRNs, pools,
  dropout); fc6's input size always follows from the last map. Below 15 the model refuses.
* ``width`` multiplies every channel count (rounded to a multiple of ``towers``, at least one
  per tower) and the 4096 units of fc6 and fc7 (rounded half up, at least 1).
* ``towers``: 2 (the paper's grouped conv2, conv4, conv5) or 1.

All weights and the dropout layers' seeds come from one generator seeded by ``seed``.
"""
import numpy

from minigrad import nn

from . import registers

PAPER_INPUT_SIZE = 227
SMALLEST_PAPER_STEM_INPUT = 67        # 67 -> 15 -> 7 -> 3 -> 1 through conv1 and the pools
SMALLEST_INPUT = 15                   # small stem: 15 -> 15 -> 7 -> 3 -> 1
PAPER_STEM = dict(kernel_size=11, stride=4, padding=0)
SMALL_STEM = dict(kernel_size=5, stride=1, padding=2)

LRN_SIZE, LRN_K, LRN_BETA = 5, 2.0, 0.75
PAPER_LRN_ALPHA = 1e-4                # the paper's: k + alpha * sum of squares
LRN_ALPHA = PAPER_LRN_ALPHA * LRN_SIZE  # minigrad's: k + alpha / n * sum of squares
WEIGHT_STD = 0.01
HIDDEN_UNITS, DROPOUT = 4096, 0.5


def paper_gaussian(shape, rng):
    """Section 5: every weight from N(0, 0.01^2)."""
    return rng.normal(0.0, WEIGHT_STD, size=shape)


def stem(input_size):
    """conv1's kernel, stride and padding for square inputs of side ``input_size``."""
    if input_size >= SMALLEST_PAPER_STEM_INPUT:
        return PAPER_STEM
    if input_size >= SMALLEST_INPUT:
        return SMALL_STEM
    raise ValueError(f"alexnet: input_size must be at least {SMALLEST_INPUT} (three 3x3/2 pools), "
                     f"got {input_size}")


def _lrn():
    return nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)


def _pool():
    return nn.MaxPool2d(3, stride=2)              # overlapping: stride 2 < window 3 (section 3.4)


@registers("alexnet", PAPER_INPUT_SIZE)
def alexnet(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0, towers=2):
    """AlexNet (module docstring): an ``nn.Sequential`` returning logits."""
    input_size = PAPER_INPUT_SIZE if input_size is None else input_size
    nn.check_network_options("alexnet", num_classes, in_channels, width)
    if towers not in (1, 2):
        raise ValueError(f"alexnet: towers must be 1 or 2, got {towers!r}")
    rng = numpy.random.default_rng(seed)

    def conv(in_channels, out_channels, kernel_size, stride=1, padding=0, grouped=False, bias=0.0):
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=towers if grouped else 1, rng=rng, weight_init=paper_gaussian,
                         bias_value=bias)

    c1, c2, c3, c4, c5 = (nn.scale_channels(c, width, towers) for c in (96, 256, 384, 384, 256))
    hidden = nn.scale_channels(HIDDEN_UNITS, width)
    features = dict(
        conv1=conv(in_channels, c1, **stem(input_size)), relu1=nn.ReLU(), norm1=_lrn(), pool1=_pool(),
        conv2=conv(c1, c2, 5, padding=2, grouped=True, bias=1.0), relu2=nn.ReLU(), norm2=_lrn(),
        pool2=_pool(),
        conv3=conv(c2, c3, 3, padding=1), relu3=nn.ReLU(),
        conv4=conv(c3, c4, 3, padding=1, grouped=True, bias=1.0), relu4=nn.ReLU(),
        conv5=conv(c4, c5, 3, padding=1, grouped=True, bias=1.0), relu5=nn.ReLU(), pool5=_pool(),
        flatten=nn.Flatten())
    (flat,) = nn.Sequential(**features).output_shape((in_channels, input_size, input_size))

    def linear(n_in, n_out, bias=0.0):
        return nn.Linear(n_in, n_out, rng=rng, weight_init=paper_gaussian, bias_value=bias)

    def dropout():
        return nn.Dropout(DROPOUT, seed=int(rng.integers(2**31)))

    classifier = dict(
        fc6=linear(flat, hidden, bias=1.0), relu6=nn.ReLU(), drop6=dropout(),
        fc7=linear(hidden, hidden, bias=1.0), relu7=nn.ReLU(), drop7=dropout(),
        fc8=linear(hidden, num_classes))
    return nn.Sequential(**features, **classifier)
