"""GoogLeNet in PyTorch, converted layer by layer from a minigrad GoogLeNet: the same network
with the same starting weights, for the benchmarks that set the two side by side
(``python -m googlenet bench --model`` and ``--main-job``, ``benchmarks/torch_main_job.py``).

    from googlenet.model import GoogLeNet
    model = GoogLeNet(num_classes=10, input_size=32, seed=0)
    twin = torch_googlenet(model)             # a torch.nn.Module, float32, on the CPU
    logits, aux1, aux2 = twin.train()(x)      # as GoogLeNet: three logits in training mode
    logits = twin.eval()(x)                   # the main logits only

Every layer of the minigrad model becomes the PyTorch layer that computes the same function,
with the layer's own settings (kernel sizes, strides, paddings, ceil mode, LRN constants,
dropout rates) and a copy of its weights: a convolution followed by a ReLU, max and average
pools (ceil mode as Caffe's), PyTorch's LRN (it divides alpha by the size, as Caffe does),
the four branches of each Inception module concatenated, the auxiliary heads read from 4a
and 4d in training mode. Dropout draws its masks from PyTorch's generator, so training runs
differ from minigrad's in the masks only. A model with batch normalization is refused.

The tests hold the twin to the minigrad model in float64 (``tests/test_bench_model.py``):
the same logits, the same gradients.
"""
import torch
from torch import nn as tnn

from googlenet.model import ConvReLU, GoogLeNet, Inception
from minigrad import nn


class ConvThenReLU(tnn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return torch.relu(self.conv(x))


class Branches(tnn.Module):
    """The branches of an Inception module on one input, joined along the channels."""

    def __init__(self, branches):
        super().__init__()
        self.branches = tnn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class GlobalAverage(tnn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=True)


class TorchGoogLeNet(tnn.Module):
    """The main path (``layers``, in the minigrad model's order) and the auxiliary heads,
    which read the outputs of the layers named in ``taps`` in training mode."""

    def __init__(self, layers, aux_heads, taps):
        super().__init__()
        self.layers = tnn.ModuleDict(layers)
        self.aux_heads = tnn.ModuleDict(aux_heads)
        self.taps = dict(taps)                       # {head name: main-path layer name}

    def forward(self, x):
        with_aux = self.training and len(self.aux_heads) > 0
        tapped = {}
        for name, layer in self.layers.items():
            x = layer(x)
            tapped[name] = x
        if not with_aux:
            return x
        return (x, *(head(tapped[self.taps[name]]) for name, head in self.aux_heads.items()))


def torch_googlenet(model):
    """A ``TorchGoogLeNet`` computing what the minigrad ``GoogLeNet`` ``model`` computes, with
    copies of its weights, in its dtype, on the CPU (``.to("cuda")`` moves it)."""
    if not isinstance(model, GoogLeNet):
        raise TypeError(f"torch_googlenet: expected a googlenet.model.GoogLeNet, got {type(model).__name__}")
    if model.batch_norm:
        raise ValueError("torch_googlenet: a GoogLeNet with batch normalization has no PyTorch twin here")
    layers = {name: convert(getattr(model, name)) for name in model.layer_names}
    taps = model.aux_taps()
    aux_heads = {head: convert(getattr(model, head)) for head in taps}
    twin = TorchGoogLeNet(layers, aux_heads, taps)
    return twin.train(model.training)


def convert(layer):
    """The PyTorch module computing what the minigrad ``layer`` computes, weights copied."""
    if isinstance(layer, ConvReLU):
        return ConvThenReLU(convert_conv(layer))
    if isinstance(layer, Inception):
        return Branches([convert(branch) for branch in layer])
    if isinstance(layer, nn.Sequential):
        return tnn.Sequential(*(convert(child) for child in layer))
    if isinstance(layer, nn.Linear):
        linear = tnn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        return copy_weights(linear, layer)
    if isinstance(layer, nn.MaxPool2d):
        return tnn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
    if isinstance(layer, nn.AvgPool2d):
        return tnn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode,
                             count_include_pad=layer.count_include_pad)
    if isinstance(layer, nn.GlobalAvgPool2d):
        return GlobalAverage()
    if isinstance(layer, nn.LocalResponseNorm):
        return tnn.LocalResponseNorm(layer.size, alpha=layer.alpha, beta=layer.beta, k=layer.k)
    if isinstance(layer, nn.Dropout):
        return tnn.Dropout(layer.p)
    if isinstance(layer, nn.ReLU):
        return tnn.ReLU()
    if isinstance(layer, nn.Flatten):
        return tnn.Flatten(layer.start_axis)
    raise TypeError(f"torch_googlenet: no PyTorch layer for {type(layer).__name__}")


def convert_conv(layer):
    conv = tnn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                      padding=layer.padding, groups=layer.groups, bias=layer.bias is not None)
    return copy_weights(conv, layer)


def copy_weights(torch_layer, layer):
    """``torch_layer`` holding copies of ``layer``'s weight and bias, in their dtype."""
    with torch.no_grad():
        torch_layer.weight = tnn.Parameter(torch.tensor(layer.weight.numpy()))
        if layer.bias is not None:
            torch_layer.bias = tnn.Parameter(torch.tensor(layer.bias.numpy()))
    return torch_layer


def weights_and_biases(twin):
    """(weights, biases) of ``twin``: the parameters with more than one axis, and the others
    (minigrad's optimizers decay the weights only, as the released Caffe model does)."""
    parameters = list(twin.parameters())
    return [p for p in parameters if p.ndim > 1], [p for p in parameters if p.ndim <= 1]
