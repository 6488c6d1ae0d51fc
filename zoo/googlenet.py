"""GoogLeNet (Szegedy et al. 2014) in the zoo: the network of the ``googlenet`` package,
registered here so that the survey's table holds it beside the others.

It is counted as the network used for inference: without its two auxiliary classifiers
(used in training only; they add 6.4 M parameters at 1,000 classes). ``input_size``
below the paper's 224 adapts the pools as ``googlenet.sizes`` documents; below 31 the
model refuses.
"""
from googlenet.model import GoogLeNet

from . import registers

PAPER_INPUT_SIZE = 224


@registers("googlenet", PAPER_INPUT_SIZE)
def googlenet(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0):
    """GoogLeNet without its auxiliary heads: 6,998,552 parameters at 1000 classes."""
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, width=width, aux_heads=False,
                     seed=seed, input_size=PAPER_INPUT_SIZE if input_size is None else input_size)
