"""Arguments that are not differentiable inputs (labels, dropout masks, running statistics)
reach an op's forward as plain arrays: these helpers unwrap and place them."""
import numpy

from .. import backend
from ..autograd import Tensor


def array_of(x):
    """The array inside a Tensor (or ``x`` itself when it is already an array, or None)."""
    return x.data if isinstance(x, Tensor) else x


def plain_array(value):
    """Labels or a mask as an array where they are: a Tensor's array, an array, or a list
    made a NumPy array."""
    value = array_of(value)
    return value if hasattr(value, "shape") else numpy.asarray(value)


def on_device_of(value, like):
    """Labels or a mask as a plain array on the device of ``like`` (a Tensor or an array)."""
    return backend.to_device(plain_array(value), backend.device_of(array_of(like)))
