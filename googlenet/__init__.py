"""GoogLeNet (Inception v1, Szegedy et al. 2014, "Going deeper with convolutions")
on minigrad, built from the paper's Table 1.

    from googlenet import GoogLeNet, googlenet_loss
    model = GoogLeNet(num_classes=10, input_size=32)

    python -m googlenet summary      # Table 1 beside this model's counts
    python -m googlenet gradcheck    # the whole network against finite differences

Modules: ``table`` (Table 1 as data), ``sizes`` (map sizes for any input),
``model`` (the network and its loss), ``summary``, ``gradcheck``.
"""
from .model import GoogLeNet, GoogLeNetOutput, googlenet_loss

__all__ = ["GoogLeNet", "GoogLeNetOutput", "googlenet_loss"]
