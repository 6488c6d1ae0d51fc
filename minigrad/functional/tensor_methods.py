"""A Tensor's operators and methods are the functions of ``minigrad.functional``:

    x + y     add(x, y)          x.sum()            sum(x)
    x * y     mul(x, y)          x.relu()           relu(x)
    x ** 2    pow(x, 2)          x.reshape(2, 3)    reshape(x, (2, 3))
    x @ w     matmul(x, w)       x.to("cuda")       to_device(x, "cuda:0")
    x[i]      getitem(x, i)      x.astype("f8")     astype(x, float64)

The engine (``minigrad/autograd.py``) defines ``Tensor`` without any op, so that it imports
none; ``attach_to`` gives it these methods when ``minigrad.functional`` is imported (Chainer's
``install_variable_arithmetics`` and DeZero's ``setup_variable`` do the same). A constant
operand takes the tensor's dtype first (``as_tensor(other, self)``): ``x * 2`` stays float32.
"""
import numpy

from .. import backend
from ..autograd import Tensor, as_tensor
from . import arrays, elementwise


class TensorMethods:
    """The methods ``attach_to`` copies onto ``Tensor``."""

    # --- arithmetic (NumPy broadcasting) ------------------------------------------
    def __add__(self, other): return elementwise.add(self, as_tensor(other, self))
    def __radd__(self, other): return elementwise.add(as_tensor(other, self), self)
    def __sub__(self, other): return elementwise.sub(self, as_tensor(other, self))
    def __rsub__(self, other): return elementwise.sub(as_tensor(other, self), self)
    def __mul__(self, other): return elementwise.mul(self, as_tensor(other, self))
    def __rmul__(self, other): return elementwise.mul(as_tensor(other, self), self)
    def __truediv__(self, other): return elementwise.div(self, as_tensor(other, self))
    def __rtruediv__(self, other): return elementwise.div(as_tensor(other, self), self)
    def __neg__(self): return elementwise.neg(self)
    def __matmul__(self, other): return arrays.matmul(self, as_tensor(other, self))
    def __rmatmul__(self, other): return arrays.matmul(as_tensor(other, self), self)
    def __getitem__(self, index): return arrays.getitem(self, index=_plain_index(index))

    def __pow__(self, exponent):
        """``x ** p`` for a constant real number p (Python or NumPy); the dtype is that of
        ``x * p`` (``int_tensor ** 0.5`` is float32)."""
        _check_real_number("pow", "exponent", exponent)
        return elementwise.pow(_promoted_by(self, exponent), exponent=_python_number(exponent))

    def __rpow__(self, base):
        """``b ** x`` for a constant real number b; d(b^x)/dx = b^x ln b."""
        _check_real_number("rpow", "base", base)
        return elementwise.rpow(_promoted_by(self, base), base=_python_number(base))

    # --- common functions as methods ----------------------------------------------
    def sum(self, axis=None, keepdims=False): return arrays.sum(self, axis=axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return arrays.mean(self, axis=axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return arrays.max(self, axis=axis, keepdims=keepdims)
    def exp(self): return elementwise.exp(self)
    def log(self): return elementwise.log(self)
    def tanh(self): return elementwise.tanh(self)
    def sigmoid(self): return elementwise.sigmoid(self)
    def relu(self): return elementwise.relu(self)
    def reshape(self, *shape): return arrays.reshape(self, shape=_shape_arg(shape))
    def flatten(self, start_axis=1): return arrays.flatten(self, start_axis)
    def transpose(self, *axes): return arrays.transpose(self, axes=_shape_arg(axes) or None)
    T = property(lambda self: arrays.transpose(self))

    # --- devices and dtypes -------------------------------------------------------
    def to(self, device):
        """This tensor on ``device``; differentiable (the gradient travels back)."""
        return arrays.to_device(self, device=backend.parse_device(device))

    def astype(self, dtype):
        """This tensor in ``dtype``; differentiable (the gradient is cast back)."""
        return arrays.astype(self, dtype=numpy.dtype(dtype))


def attach_to(tensor_class):
    """Give ``tensor_class`` every method of ``TensorMethods``."""
    for name, method in vars(TensorMethods).items():
        if name not in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__"):
            setattr(tensor_class, name, method)


def _promoted_by(tensor, number):
    """``tensor`` in the dtype that ``tensor * number`` has (the rule of every operator)."""
    if tensor.dtype.kind == "f":
        return tensor
    other = as_tensor(number, tensor).dtype
    dtype = other if other.kind == "f" else numpy.result_type(tensor.dtype, other)
    return tensor if dtype == tensor.dtype else tensor.astype(dtype)


def _check_real_number(name, role, value):
    """A constant exponent or base is one real number: a Python or NumPy bool, int or float
    (not a complex number, an array or a Tensor)."""
    if not isinstance(value, (bool, int, float, numpy.bool_, numpy.integer, numpy.floating)):
        kind = f"dtype {value.dtype}" if hasattr(value, "dtype") else type(value).__name__
        raise TypeError(f"{name}: the {role} must be one real number (a Python or NumPy bool, int "
                        f"or float), got {kind}")


def _python_number(value):
    """A NumPy scalar as a Python number (so that it cannot change a dtype; ``.item()`` would
    keep a long double as it is)."""
    if isinstance(value, numpy.generic):
        return {"b": bool, "i": int, "u": int, "f": float}[value.dtype.kind](value)
    return value


def _shape_arg(args):
    """Accept both ``reshape(2, 3)`` and ``reshape((2, 3))``."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def _plain_index(index):
    """Indexes may hold tensors (integer index arrays); the op wants plain arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index
