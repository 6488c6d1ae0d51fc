"""Layers and models: ``Module``, ``Parameter`` and the layers GoogLeNet is built from.

    from minigrad import nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, rng=rng), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16 * 16, 10, rng=rng))
"""
from . import init
from .containers import Concat, Sequential
from .flat import FlatParameters
from .layers import BatchNorm2d, Conv2d, Linear
from .weightless import (AvgPool2d, Dropout, Flatten, GlobalAvgPool2d, LocalResponseNorm, MaxPool2d,
                         ReLU, ShapePreserving)
from .module import Module, Parameter
from .options import check_network_options, scale_channels

__all__ = ["Module", "Parameter", "FlatParameters", "Sequential", "Concat", "Linear", "Conv2d", "MaxPool2d",
           "AvgPool2d", "GlobalAvgPool2d", "BatchNorm2d", "LocalResponseNorm", "Dropout", "ReLU",
           "Flatten", "ShapePreserving", "init", "check_network_options", "scale_channels"]
