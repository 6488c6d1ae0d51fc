"""Moving values between devices and dtypes. Neither changes a value (beyond the rounding of
a cast), so the backward moves the gradient back: to the device the input was on, into the
dtype the input had.

    to_device:  y = x on another device     gx = gy moved back to x's device
    astype:     y = x in another dtype      gx = gy cast back to x's dtype
"""
from .. import backend


def to_device_forward(x, device):
    return backend.to_device(x, device), backend.device_of(x)


def to_device_backward(gy, source_device):
    return (backend.to_device(gy, source_device),)


def astype_forward(x, dtype):
    return x.astype(dtype), x.dtype


def astype_backward(gy, source_dtype):
    return (gy.astype(source_dtype),)
