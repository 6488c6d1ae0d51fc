"""The survey's networks on minigrad's layers: LeNet-5, AlexNet, VGG, ResNet (and GoogLeNet,
from its own package), built one way so that one comparison covers them all.

    python -m zoo                  # every network: parameters, multiply-adds, depth, CPU time

Every model module (``lenet.py``, ``alexnet.py``, ``vgg.py``, ``resnet.py``, and ``googlenet.py``
for the ``googlenet`` package's network) registers its networks in ``MODELS`` with
``@registers(name, input_size)``: a builder

    build(num_classes=1000, in_channels=3, input_size=None, width=1.0, seed=0) -> nn.Module

(``input_size`` None means the paper's; a smaller one, e.g. 32 for the digits, adapts what the
model module documents). Each builder first checks ``num_classes``, ``in_channels`` and ``width``
with ``minigrad.nn.check_network_options``, as GoogLeNet does: one rule and one message for
all. Every layer reports ``output_shape``, ``multiply_adds`` and ``depth``
(``minigrad.nn.Module``), so ``zoo.summary`` tabulates any of them the same way.
"""
import importlib
import inspect

import minigrad  # noqa: F401  (before NumPy loads: see minigrad.blas_setup)

MODELS = {}            # name -> (builder, the paper's input size)
MODULES = ("lenet", "alexnet", "vgg", "resnet", "googlenet")


def registers(name, input_size):
    """Decorator: ``builder`` makes the network called ``name`` (paper input ``input_size``)."""
    def register(builder):
        MODELS[name] = (builder, input_size)
        return builder
    return register


def load_all():
    """Import every model module present (each registers its networks); the registry."""
    for module in MODULES:
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{module}":
                raise
    return MODELS


def build(name, **options):
    """The network called ``name`` (see ``MODELS``); a ValueError listing the names otherwise."""
    models = load_all()
    if name not in models:
        raise ValueError(f"unknown network {name!r}: expected one of {', '.join(sorted(models))}")
    builder, input_size = models[name]
    return builder(**{"input_size": input_size, **options})


def build_at_input(name, input_size=None, width=1.0, seed=0):
    """(network ``name`` with its builder's (the paper's) classes and channels, the shape
    (C, H, W) of one example it takes): at the paper's input size unless ``input_size`` says
    otherwise."""
    builder, paper_size = load_all()[name]
    size = paper_size if input_size is None else input_size
    channels = inspect.signature(builder).parameters["in_channels"].default
    return builder(input_size=size, width=width, seed=seed), (channels, size, size)
