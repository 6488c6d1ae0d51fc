"""Every network builder (each registered zoo network and GoogLeNet) refuses the same bad
options with the same message, through the one shared check, before any layer is built."""
import math

import numpy
import pytest

import zoo
from minigrad import nn
from zoo import summary

NETWORKS = list(zoo.load_all())          # every zoo network, googlenet among them

BAD_OPTIONS = [
    ("num_classes", 0, "num_classes must be a positive int, got 0"),
    ("num_classes", -1, "num_classes must be a positive int, got -1"),
    ("num_classes", 2.0, "num_classes must be a positive int, got 2.0"),
    ("in_channels", 0, "in_channels must be a positive int, got 0"),
    ("in_channels", True, "in_channels must be a positive int, got True"),
    ("width", 0, "width must be finite and positive, got 0"),
    ("width", -1.0, "width must be finite and positive, got -1.0"),
    ("width", math.inf, "width must be finite and positive, got inf"),
    ("width", math.nan, "width must be finite and positive, got nan"),
    ("width", "1", "width must be finite and positive, got '1'"),
]


def builder(name):
    return zoo.load_all()[name][0]


@pytest.mark.parametrize("option, value, message", BAD_OPTIONS)
@pytest.mark.parametrize("name", NETWORKS)
def test_every_builder_refuses_bad_options_with_one_message(name, option, value, message):
    with pytest.raises(ValueError) as error:
        builder(name)(input_size=32, **{option: value})
    network, _, text = str(error.value).partition(": ")
    assert text == message and network in (name, name.rstrip("0123456789"), "GoogLeNet"), str(error.value)


@pytest.mark.parametrize("name", NETWORKS)
def test_every_builder_asks_the_shared_check_first(name, monkeypatch):
    asked = []

    def refuse(network, num_classes, in_channels, width):
        asked.append((num_classes, in_channels, width))
        raise ValueError("refused by the shared check")

    monkeypatch.setattr(nn, "check_network_options", refuse)
    with pytest.raises(ValueError, match="refused by the shared check"):
        builder(name)(num_classes=7, in_channels=2, input_size=32, width=0.5)
    assert asked == [(7, 2, 0.5)]


@pytest.mark.parametrize("name", NETWORKS)
def test_numpy_integers_and_float_widths_are_good_options(name):
    model = builder(name)(num_classes=numpy.int64(3), in_channels=numpy.int32(1), input_size=32,
                          width=numpy.float32(0.125))
    assert summary.figures(name, model, (1, 32, 32)).out_shape == (3,)


def test_the_zoo_registry_builds_through_the_same_check():
    with pytest.raises(ValueError, match=r"^lenet5: in_channels must be a positive int, got 0$"):
        zoo.build("lenet5", in_channels=0)
    with pytest.raises(ValueError, match=r"^alexnet: width must be finite and positive, got inf$"):
        zoo.build("alexnet", width=math.inf)
