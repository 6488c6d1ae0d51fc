"""GoogLeNet (Inception v1, Szegedy et al. 2014), built from the rows of Table 1.

    model = GoogLeNet(num_classes=10, input_size=32)
    out = model(x)                         # training mode: GoogLeNetOutput(logits, aux1, aux2)
    loss = googlenet_loss(out, labels)     # main loss + 0.3 x each auxiliary loss (section 5)
    model.eval()
    logits = model(x)                      # eval mode: the main logits only, no auxiliary heads

The main path, one ``googlenet.table`` row after another (attribute names in brackets):

    conv 7x7/2 [conv1] -> max pool 3x3/2 [pool1] -> LRN [norm1] -> conv 1x1 [conv2_reduce]
    -> conv 3x3 [conv2] -> LRN [norm2] -> max pool 3x3/2 [pool2] -> inception 3a, 3b
    -> max pool [pool3] -> inception 4a .. 4e -> max pool [pool4] -> inception 5a, 5b
    -> average pool [avgpool] -> dropout 40% [dropout] -> linear [linear] (-> softmax)

Every convolution is followed by a ReLU (``ConvReLU``). Max pools run in ceil mode,
as in the original Caffe model, so a 224x224 input gives Table 1's 112, 56, 28, 14
and 7. The softmax row is left to the loss (``cross_entropy`` works on logits), so
the model returns logits. Two auxiliary classifiers [aux1, aux2] read the outputs
of 4a and 4d in training mode only.

Options:

* ``width`` multiplies every channel count (each convolution's filters, the
  auxiliary heads' 128 and 1024), rounded half up and at least 1
  (``minigrad.nn.scale_channels``): 16 channels at width 1/16 keep 1, 24 keep 2.
* ``input_size``: the side of the square images the model will see. Below 224
  the pools adapt (see ``googlenet.sizes``); below 31 the model refuses.
* ``aux_heads=False`` drops the auxiliary classifiers; ``lrn=False`` the two LRNs.
* ``batch_norm=True`` puts batch normalization (Ioffe & Szegedy 2015) after every
  convolution, before its ReLU, and drops the convolutions' biases (BN's beta is one):
  each convolution of C filters gains C parameters (gamma and beta, less the bias). This
  is the BN paper's first step only: its BN-Inception (section 4.2) also replaced each
  5x5 by two 3x3 and changed some pools, and to train faster (4.2.1) removed the LRNs
  (``lrn=False`` here) and dropout.

Initialisation follows the released Caffe model (BVLC/caffe,
models/bvlc_googlenet/train_val.prototxt): Caffe's "xavier" filler
(uniform +-sqrt(3 / fan_in)) for every weight; bias 0.2 on every convolution and
on the auxiliary heads' 1024-unit fully connected layer; bias 0 on the three
classifiers. All of it comes from one generator seeded by ``seed``, including the
dropout layers' seeds, so two models with the same arguments are identical.
"""
import functools
from typing import NamedTuple

import numpy

from minigrad import functional as F
from minigrad import nn

from . import sizes as geometry
from .table import (AUX_AFTER, AUX_CONV_CHANNELS, AUX_DROPOUT, AUX_FC, AUX_WEIGHT, LRN_AFTER,
                    LRN_ALPHA, LRN_BETA, LRN_K, LRN_SIZE, MAIN_DROPOUT, TABLE_1)

CONV_BIAS = 0.2          # Caffe: bias_filler constant 0.2 on convolutions and loss1/fc
AUX_FC_BIAS = 0.2
CLASSIFIER_BIAS = 0.0    # Caffe: loss1/2/3 classifiers


class ConvReLU(nn.Conv2d):
    """A convolution padded by half its kernel (size-preserving at stride 1), then a ReLU,
    fused into the convolution's op (``F.conv2d_relu``); with ``batch_norm``, a convolution
    without bias, then batch norm [bn], then the ReLU (an op of its own)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, rng=None, batch_norm=False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=kernel_size // 2, bias=not batch_norm, rng=rng,
                         weight_init="xavier", bias_value=CONV_BIAS, relu=not batch_norm)
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else None

    def forward(self, x):
        x = super().forward(x)
        return x if self.bn is None else F.relu(self.bn(x))


class Inception(nn.Concat):
    """Four branches on the same input, concatenated along channels in this order
    (attribute names in brackets; Caffe's layer names after them):

        [branch1x1]    [conv] 1x1                                  1x1
        [branch3x3]    [reduce] 1x1 -> [conv] 3x3 pad 1            3x3_reduce, 3x3
        [branch5x5]    [reduce] 1x1 -> [conv] 5x5 pad 2            5x5_reduce, 5x5
        [branch_pool]  [pool] 3x3/1 max pad 1 -> [proj] 1x1        pool, pool_proj

    so a parameter is named like ``inception3a.branch3x3.reduce.weight``.
    ``widths`` are Table 1's six columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce,
    #5x5, pool proj. Output channels: #1x1 + #3x3 + #5x5 + pool proj.
    """

    def __init__(self, in_channels, widths, rng=None, batch_norm=False):
        n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, n_pool_proj = widths
        conv = functools.partial(ConvReLU, rng=rng, batch_norm=batch_norm)
        super().__init__(
            branch1x1=nn.Sequential(conv=conv(in_channels, n1x1, 1)),
            branch3x3=nn.Sequential(reduce=conv(in_channels, n3x3_reduce, 1),
                                    conv=conv(n3x3_reduce, n3x3, 3)),
            branch5x5=nn.Sequential(reduce=conv(in_channels, n5x5_reduce, 1),
                                    conv=conv(n5x5_reduce, n5x5, 5)),
            branch_pool=nn.Sequential(pool=nn.MaxPool2d(3, stride=1, padding=1),
                                      proj=conv(in_channels, n_pool_proj, 1)),
            axis=1)
        self.in_channels, self.widths = in_channels, tuple(widths)
        self.out_channels = n1x1 + n3x3 + n5x5 + n_pool_proj

    def forward(self, x):
        """The four branches on x, joined; the three 1x1 convolutions that read x (branch1x1's
        conv and the reduces of branch3x3 and branch5x5) run as ONE convolution with their
        filters stacked. Each output channel is still its own filter's sum over x's channels,
        so the numbers are the same; what changes is the work: one matrix product with #1x1 +
        #3x3 reduce + #5x5 reduce rows (176 in 3a) instead of three thin ones (64, 96 and 16),
        x read once, and in the backward x's gradient from the three comes out of that one
        product already summed. The stacked output is split into the three maps (views of it);
        their gradients fill one array (``minigrad.autograd.PlacedGradient``). With batch
        norm, which stands between each convolution and its ReLU, the branches run one by one."""
        convs = [self.branch1x1.conv, self.branch3x3.reduce, self.branch5x5.reduce]
        if any(conv.bn is not None for conv in convs):
            return super().forward(x)
        stacked = F.conv2d_relu(x, F.concat([conv.weight for conv in convs], axis=0),
                                F.concat([conv.bias for conv in convs], axis=0))
        out1x1, reduced3x3, reduced5x5 = F.split(stacked, [conv.out_channels for conv in convs], axis=1)
        return F.concat([out1x1, self.branch3x3.conv(reduced3x3), self.branch5x5.conv(reduced5x5),
                         self.branch_pool(x)], axis=1)

    def extra_repr(self):
        return f"{self.in_channels} -> {self.out_channels}, widths={self.widths}"


class AuxClassifier(nn.Sequential):
    """Section 5's auxiliary classifier: average pool 5x5/3 [pool] -> conv 1x1 (128) + ReLU
    [conv] -> [flatten] -> fully connected (1024) [fc] + [relu] -> dropout 70% [dropout]
    -> linear (classes) [classifier].

    ``map_size`` is the side of its input map (14 at 224): it sets the pool's window
    (``googlenet.sizes.aux_pool``) and so the fully connected layer's input size.
    """

    def __init__(self, in_channels, num_classes, map_size, conv_channels, fc_features,
                 dropout, rng, dropout_seed, batch_norm=False):
        kernel, stride, pooled = geometry.aux_pool(map_size)
        super().__init__(
            pool=nn.AvgPool2d(kernel, stride, ceil_mode=True),
            conv=ConvReLU(in_channels, conv_channels, 1, rng=rng, batch_norm=batch_norm),
            flatten=nn.Flatten(),
            fc=nn.Linear(conv_channels * pooled * pooled, fc_features, rng=rng, bias_value=AUX_FC_BIAS),
            relu=nn.ReLU(),
            dropout=nn.Dropout(dropout, seed=dropout_seed),
            classifier=nn.Linear(fc_features, num_classes, rng=rng, bias_value=CLASSIFIER_BIAS))


class GoogLeNetOutput(NamedTuple):
    """What a GoogLeNet returns in training mode with auxiliary heads: three logits."""
    logits: object   # main classifier, (N, classes)
    aux1: object     # auxiliary classifier on 4a
    aux2: object     # auxiliary classifier on 4d


def _seed(rng):
    """A dropout seed drawn from the model's generator."""
    return int(rng.integers(2 ** 31))


class GoogLeNet(nn.Module):
    """GoogLeNet as Table 1 and section 5 of the paper describe it (module docstring).

    ``layer_names`` lists the main path's layers in order and ``table_row[name]``
    names the Table 1 row each belongs to (None for the LRNs and the flatten step,
    which the table does not list).
    """

    def __init__(self, num_classes=1000, in_channels=3, width=1.0, aux_heads=True, lrn=True,
                 dropout=MAIN_DROPOUT, aux_dropout=AUX_DROPOUT, seed=0, input_size=224,
                 batch_norm=False):
        super().__init__()
        _check_options(num_classes, in_channels, width, dropout, aux_dropout)
        self.num_classes, self.in_channels, self.width = num_classes, in_channels, width
        self.input_size, self.aux_heads, self.lrn = input_size, bool(aux_heads), bool(lrn)
        self.batch_norm = bool(batch_norm)
        self.sizes = geometry.row_sizes(input_size)   # raises if input_size is too small
        self.layer_names, self.table_row = [], {}
        rng = numpy.random.default_rng(seed)
        channels = in_channels
        for row in TABLE_1:
            layers, channels = self._layers_of_row(row, channels, dropout, rng)
            for name, layer in layers:
                setattr(self, name, layer)
                self.layer_names.append(name)
                self.table_row[name] = None if name.startswith(("norm", "flatten")) else row.name
        # Built after the main path, so that aux_heads=False leaves the main weights unchanged.
        self.aux1 = self._aux_head(AUX_AFTER[0], num_classes, aux_dropout, rng) if aux_heads else None
        self.aux2 = self._aux_head(AUX_AFTER[1], num_classes, aux_dropout, rng) if aux_heads else None

    # --- building ----------------------------------------------------------------------
    def _layers_of_row(self, row, channels, dropout, rng):
        """[(attribute name, layer), ...] for one row of Table 1, and its output channels."""
        scaled = functools.partial(nn.scale_channels, width=self.width)
        conv = functools.partial(ConvReLU, rng=rng, batch_norm=self.batch_norm)
        size = self.sizes[row.name]
        if row.kind == "conv" and row.reduce is None:
            layers = [(row.name, conv(channels, scaled(row.out_channels), row.patch, row.stride))]
        elif row.kind == "conv":
            reduce = conv(channels, scaled(row.reduce), 1)
            layers = [(row.name + "_reduce", reduce),
                      (row.name, conv(reduce.out_channels, scaled(row.out_channels), row.patch,
                                      row.stride))]
        elif row.kind == "maxpool":
            layers = [(row.name, nn.MaxPool2d(size.kernel, row.stride, ceil_mode=True))]
        elif row.kind == "inception":
            layers = [("inception" + row.name, Inception(channels, [scaled(w) for w in row.widths], rng,
                                                         self.batch_norm))]
        elif row.kind == "avgpool":
            layers = [(row.name, nn.GlobalAvgPool2d()), ("flatten", nn.Flatten())]
        elif row.kind == "dropout":
            layers = [(row.name, nn.Dropout(dropout, seed=_seed(rng)))]
        elif row.kind == "linear":
            layers = [(row.name, nn.Linear(channels, self.num_classes, rng=rng,
                                           bias_value=CLASSIFIER_BIAS))]
        else:                                   # softmax: applied by the loss to the logits
            layers = []
        if self.lrn and row.name in LRN_AFTER:
            layers.append((f"norm{LRN_AFTER.index(row.name) + 1}",
                           nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)))
        for _, layer in layers:
            channels = getattr(layer, "out_channels", getattr(layer, "out_features", channels))
        return layers, channels

    def _aux_head(self, row_name, num_classes, dropout, rng):
        tap = getattr(self, "inception" + row_name)
        return AuxClassifier(tap.out_channels, num_classes, self.sizes[row_name].size_out,
                             nn.scale_channels(AUX_CONV_CHANNELS, self.width),
                             nn.scale_channels(AUX_FC, self.width), dropout, rng, _seed(rng),
                             self.batch_norm)

    # --- running -----------------------------------------------------------------------
    def forward(self, x):
        """Training mode with aux heads: ``GoogLeNetOutput(logits, aux1, aux2)``;
        otherwise the main logits, (N, num_classes)."""
        self._check_input(x)
        with_aux = self.training and self.aux_heads
        taps = {}
        for name in self.layer_names:
            x = getattr(self, name)(x)
            if with_aux and self.table_row[name] in AUX_AFTER:
                taps[self.table_row[name]] = x
        if not with_aux:
            return x
        return GoogLeNetOutput(x, self.aux1(taps[AUX_AFTER[0]]), self.aux2(taps[AUX_AFTER[1]]))

    def _check_input(self, x):
        expected = self.input_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            hint = ""
            if x.ndim == 4 and x.shape[2] == x.shape[3] and x.shape[2] != self.input_size:
                hint = f"; for {x.shape[2]}x{x.shape[3]} images build it with input_size={x.shape[2]}"
            raise ValueError(f"GoogLeNet: expected input of shape (N, {', '.join(map(str, expected))}) "
                             f"(built with in_channels={self.in_channels}, input_size={self.input_size}), "
                             f"got shape {tuple(x.shape)}{hint}")

    # --- shapes and costs, without running (minigrad.nn.Module) --------------------------
    @property
    def input_shape(self):
        """The shape of one example the model takes, (in_channels, input_size, input_size)."""
        return (self.in_channels, self.input_size, self.input_size)

    def main_path(self):
        """The main path's layers, ``layer_names`` in order, as an ``nn.Sequential`` of this
        model's own layers (not copies); the auxiliary heads branch off it (``aux_taps``)."""
        return nn.Sequential(**{name: getattr(self, name) for name in self.layer_names})

    def aux_taps(self):
        """{auxiliary head: the main-path layer whose output it reads}, {"aux1": "inception4a",
        "aux2": "inception4d"}; empty without auxiliary heads."""
        if not self.aux_heads:
            return {}
        return {f"aux{number}": f"inception{row}" for number, row in enumerate(AUX_AFTER, start=1)}

    def output_shape(self, in_shape):
        """The main logits' shape, (num_classes,), for one example of ``input_shape``."""
        return self.main_path().output_shape(self._checked_example(in_shape))

    def multiply_adds(self, in_shape):
        """The main path's, the paper's count (1,582.7 M at 224x224): the auxiliary heads
        run in training only and are left out (``model.aux1.multiply_adds(...)`` on 4a's
        output counts one)."""
        return self.main_path().multiply_adds(self._checked_example(in_shape))

    def depth(self):
        """The main path's layers with weights, 22 (an auxiliary head's path is shorter)."""
        return self.main_path().depth()

    def _checked_example(self, in_shape):
        if tuple(in_shape) != self.input_shape:
            raise ValueError(f"GoogLeNet: expected an example of shape {self.input_shape} (built with "
                             f"in_channels={self.in_channels}, input_size={self.input_size}), "
                             f"got {tuple(in_shape)}")
        return tuple(in_shape)

    def extra_repr(self):
        return (f"num_classes={self.num_classes}, in_channels={self.in_channels}, width={self.width}, "
                f"input_size={self.input_size}, aux_heads={self.aux_heads}, lrn={self.lrn}"
                + (", batch_norm=True" if self.batch_norm else ""))


def _check_options(num_classes, in_channels, width, dropout, aux_dropout):
    nn.check_network_options("GoogLeNet", num_classes, in_channels, width)
    for name, value in (("dropout", dropout), ("aux_dropout", aux_dropout)):
        if not 0 <= value < 1:
            raise ValueError(f"GoogLeNet: {name} must be in [0, 1), got {value!r}")


def googlenet_loss(output, labels, aux_weight=AUX_WEIGHT):
    """The paper's training loss: cross-entropy of the main logits plus ``aux_weight``
    (0.3) times each auxiliary classifier's cross-entropy (section 5).

    ``output`` is what the model returned: a ``GoogLeNetOutput`` (training mode) or
    plain logits (eval mode, or no auxiliary heads), whose loss is the main one alone.
    """
    if not isinstance(output, GoogLeNetOutput):
        return F.cross_entropy(output, labels)
    loss = F.cross_entropy(output.logits, labels)
    for aux in (output.aux1, output.aux2):
        loss = loss + aux_weight * F.cross_entropy(aux, labels)
    return loss
