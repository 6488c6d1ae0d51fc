"""Differentiable functions on Tensors, as PyTorch's ``torch.nn.functional``:

    import minigrad as mg, minigrad.functional as F
    y = F.relu(F.linear(x, weight, bias))

Each function calls one ``Op`` (``minigrad.autograd``) made of a forward/backward pair from
``minigrad.ops`` and the check that lives beside it; the Op is the function's ``op``
attribute (``F.mul.op``, ``F.conv2d.op``: a lesson swaps its backward to plant a bug).
``split`` and ``flatten`` are made of other functions, and ``accuracy`` and
``topk_accuracy`` return plain numbers, so these four have no Op of their own. The
docstrings say what a function computes, on which shapes, and show it (the examples assume
the import above and ``import numpy``); the derivations are in ``minigrad/ops/``.

    elementwise.py   add sub mul div neg pow rpow exp log tanh sigmoid relu
    arrays.py        sum mean max matmul reshape transpose getitem concat split flatten
                     to_device astype
    layers.py        linear conv2d conv2d_relu max_pool2d avg_pool2d global_avg_pool2d
                     local_response_norm dropout batch_norm
    losses.py        softmax log_softmax cross_entropy accuracy topk_accuracy

An input that is not a Tensor (an array, a number) becomes ``Tensor(value)`` (a Python
float is float32). A Tensor's operators and methods are these functions (``x * y`` is
``mul(x, y)``, ``x.sum()`` is ``sum(x)``); ``tensor_methods.py`` attaches them to Tensor.
"""
from ..autograd import Tensor
from . import tensor_methods
from .arrays import (astype, concat, flatten, getitem, matmul, max, mean, reshape, split, sum,
                     to_device, transpose)
from .elementwise import add, div, exp, log, mul, neg, pow, relu, rpow, sigmoid, sub, tanh
from .layers import (avg_pool2d, batch_norm, conv2d, conv2d_relu, dropout, global_avg_pool2d, linear,
                     local_response_norm, max_pool2d)
from .losses import accuracy, cross_entropy, log_softmax, softmax, topk_accuracy

tensor_methods.attach_to(Tensor)

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "rpow", "exp", "log", "tanh", "sigmoid",
           "relu", "sum", "mean", "max", "matmul", "reshape", "transpose", "getitem", "concat",
           "split", "flatten", "to_device", "astype", "linear", "conv2d", "conv2d_relu", "max_pool2d",
           "avg_pool2d", "global_avg_pool2d", "local_response_norm", "dropout", "batch_norm",
           "softmax", "log_softmax", "cross_entropy", "accuracy", "topk_accuracy"]
