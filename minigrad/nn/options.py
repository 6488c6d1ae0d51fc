"""The options every network builder takes, checked and applied one way for all of them.

GoogLeNet and each network of the survey (``zoo/``) take ``num_classes``, ``in_channels``
and ``width`` (a multiplier of every layer's channels, 1.0 the paper's). A builder calls
``check_network_options`` first, so that a bad value is refused before any layer is made,
with the same message whatever the network:

    ValueError: alexnet: width must be finite and positive, got inf

and scales each of its channel counts with ``scale_channels``.
"""
import math
import numbers


def check_network_options(network, num_classes, in_channels, width):
    """A ValueError naming ``network`` unless ``num_classes`` and ``in_channels`` are ints of
    at least 1 and ``width`` is a finite number above 0 (inf would scale every layer to
    infinitely many channels, and NaN or 0 to none)."""
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{network}: {name} must be a positive int, got {value!r}")
    if (isinstance(width, bool) or not isinstance(width, numbers.Real)
            or not (math.isfinite(width) and width > 0)):
        raise ValueError(f"{network}: width must be finite and positive, got {width!r}")


def scale_channels(channels, width, multiple=1):
    """``channels * width`` rounded half up to a multiple of ``multiple``, at least ``multiple``
    (a layer keeps one channel, or one per group): ``scale_channels(16, 1/16) == 1``,
    ``scale_channels(24, 1/16) == 2``, ``scale_channels(96, 1/4, multiple=2) == 24``."""
    return multiple * max(1, int(channels * width / multiple + 0.5))
