"""Elementwise arithmetic and activations, with NumPy broadcasting; the math and the
derivatives are in ``minigrad/ops/elementwise.py``."""
from ..autograd import Op
from ..ops import elementwise


def add(x, y):
    """Elementwise sum: out = x + y.

    Args:
        x (Tensor): the first term.
        y (Tensor): the second term.

    Shape:
        x and y: shapes that broadcast together (NumPy's rules); out: the broadcast shape.
        The gradient of a broadcast input is summed over the axes it was stretched along.

    Returns:
        Tensor: x + y.

    Example:
        >>> F.add(mg.tensor([1.0, 2.0]), mg.tensor([[10.0], [20.0]]))
        Tensor([[11., 12.],
                [21., 22.]], dtype=float32)
    """
    return add.op(x, y)


def sub(x, y):
    """Elementwise difference: out = x - y (two boolean inputs are refused).

    Args:
        x (Tensor): the minuend.
        y (Tensor): the subtrahend.

    Shape:
        x and y: shapes that broadcast together; out: the broadcast shape.

    Returns:
        Tensor: x - y.

    Example:
        >>> F.sub(mg.tensor([5.0, 7.0]), mg.tensor(1.0))
        Tensor([4., 6.], dtype=float32)
    """
    return sub.op(x, y)


def mul(x, y):
    """Elementwise product: out = x * y, so d(out)/dx = y and d(out)/dy = x.

    Args:
        x (Tensor): the first factor.
        y (Tensor): the second factor.

    Shape:
        x and y: shapes that broadcast together; out: the broadcast shape.

    Returns:
        Tensor: x * y.

    Example:
        >>> x = mg.tensor([1.0, 2.0], requires_grad=True)
        >>> F.mul(x, mg.tensor([3.0, 4.0])).sum().backward()
        >>> x.grad
        array([3., 4.], dtype=float32)
    """
    return mul.op(x, y)


def div(x, y):
    """Elementwise true division: out = x / y, so d(out)/dx = 1/y and d(out)/dy = -x/y^2.

    Two integer (or boolean) inputs give float32, as in PyTorch, not NumPy's float64.

    Args:
        x (Tensor): the dividend.
        y (Tensor): the divisor.

    Shape:
        x and y: shapes that broadcast together; out: the broadcast shape.

    Returns:
        Tensor: x / y.

    Example:
        >>> F.div(mg.tensor([1, 2]), mg.tensor([4]))
        Tensor([0.25, 0.5 ], dtype=float32)
    """
    return div.op(x, y)


def neg(x):
    """Elementwise negation: out = -x (a boolean input is refused).

    Args:
        x (Tensor): the input.

    Shape:
        out has x's shape.

    Returns:
        Tensor: -x.

    Example:
        >>> F.neg(mg.tensor([1.0, -2.0]))
        Tensor([-1.,  2.], dtype=float32)
    """
    return neg.op(x)


def pow(x, exponent):
    """Elementwise power by a constant: out = x^p, so d(out)/dx = p x^(p-1).

    ``x ** p`` calls this after giving x the dtype of ``x * p`` (``int_tensor ** 0.5`` is
    float32). An integer x to a negative power is refused (its result is not an integer).

    Args:
        x (Tensor): the base.
        exponent (float): p, one real number (a Python number; not a Tensor).

    Shape:
        out has x's shape.

    Returns:
        Tensor: x ** p, in x's dtype.

    Example:
        >>> x = mg.tensor([1.0, 3.0], requires_grad=True)
        >>> F.pow(x, exponent=2).sum().backward()
        >>> x.grad
        array([2., 6.], dtype=float32)
    """
    return pow.op(x, exponent=exponent)


def rpow(x, base):
    """Elementwise power of a constant base: out = b^x, so d(out)/dx = b^x ln b.

    ``b ** x`` calls this. At b = 0 the gradient is 0 where x >= 0 and -inf where x < 0,
    as in PyTorch; a negative b has NaN gradients.

    Args:
        x (Tensor): the exponents.
        base (float): b, one real number (a Python number; not a Tensor).

    Shape:
        out has x's shape.

    Returns:
        Tensor: b ** x, in x's dtype.

    Example:
        >>> F.rpow(mg.tensor([0.0, 1.0, 3.0]), base=2)
        Tensor([1., 2., 8.], dtype=float32)
    """
    return rpow.op(x, base=base)


def exp(x):
    """Elementwise exponential: out = e^x, its own derivative.

    Args:
        x (Tensor): a floating-point input.

    Shape:
        out has x's shape.

    Returns:
        Tensor: e^x.

    Example:
        >>> x = mg.tensor([0.0, 1.0], requires_grad=True)
        >>> F.exp(x).sum().backward()
        >>> x.grad.round(4)
        array([1.    , 2.7183], dtype=float32)
    """
    return exp.op(x)


def log(x):
    """Elementwise natural logarithm: out = ln x, so d(out)/dx = 1/x.

    Args:
        x (Tensor): a floating-point input; ln 0 = -inf and a negative x gives NaN, as in
            NumPy.

    Shape:
        out has x's shape.

    Returns:
        Tensor: ln x.

    Example:
        >>> x = mg.tensor([1.0, 4.0], requires_grad=True)
        >>> F.log(x).sum().backward()
        >>> x.grad
        array([1.  , 0.25], dtype=float32)
    """
    return log.op(x)


def tanh(x):
    """Elementwise hyperbolic tangent: out = tanh x, so d(out)/dx = 1 - tanh^2 x.

    Args:
        x (Tensor): a floating-point input.

    Shape:
        out has x's shape.

    Returns:
        Tensor: tanh x, in (-1, 1).

    Example:
        >>> x = mg.tensor([0.0, 2.0], requires_grad=True)
        >>> F.tanh(x).sum().backward()
        >>> x.grad.round(4)
        array([1.    , 0.0707], dtype=float32)
    """
    return tanh.op(x)


def sigmoid(x):
    """Elementwise logistic function: out = 1 / (1 + e^-x), so d(out)/dx = out (1 - out).

    Computed without overflow or cancellation for any x (see ``ops/elementwise.py``).

    Args:
        x (Tensor): a floating-point input.

    Shape:
        out has x's shape.

    Returns:
        Tensor: sigmoid(x), in (0, 1).

    Example:
        >>> x = mg.tensor([0.0, 2.0], requires_grad=True)
        >>> F.sigmoid(x).sum().backward()
        >>> x.grad.round(4)          # sigmoid(2) = 0.8808, times 1 - 0.8808
        array([0.25 , 0.105], dtype=float32)
    """
    return sigmoid.op(x)


def relu(x):
    """Elementwise rectifier: out = max(x, 0); the gradient passes where x > 0.

    NaN stays NaN (and passes its gradient on, as in PyTorch); -inf gives 0.

    Args:
        x (Tensor): the input.

    Shape:
        out has x's shape.

    Returns:
        Tensor: max(x, 0).

    Example:
        >>> x = mg.tensor([-1.0, 0.0, 2.0], requires_grad=True)
        >>> F.relu(x)
        Tensor([0., 0., 2.], dtype=float32, op=relu)
        >>> F.relu(x).sum().backward()
        >>> x.grad
        array([0., 0., 1.], dtype=float32)
    """
    return relu.op(x)


# --- each function's Op: its pair from minigrad.ops and its check (F.mul.op) -------------------
add.op = Op("add", elementwise.add_forward, elementwise.add_backward,
            elementwise.check_broadcastable("add"))
sub.op = Op("sub", elementwise.sub_forward, elementwise.sub_backward, elementwise.check_subtractable)
mul.op = Op("mul", elementwise.mul_forward, elementwise.mul_backward,
            elementwise.check_broadcastable("mul"))
div.op = Op("div", elementwise.div_forward, elementwise.div_backward,
            elementwise.check_broadcastable("div"))
neg.op = Op("neg", elementwise.neg_forward, elementwise.neg_backward, elementwise.check_negatable)
pow.op = Op("pow", elementwise.pow_forward, elementwise.pow_backward, elementwise.check_pow)
rpow.op = Op("rpow", elementwise.rpow_forward, elementwise.rpow_backward, elementwise.check_rpow)
exp.op = Op("exp", elementwise.exp_forward, elementwise.exp_backward, elementwise.check_float("exp"))
log.op = Op("log", elementwise.log_forward, elementwise.log_backward, elementwise.check_float("log"))
tanh.op = Op("tanh", elementwise.tanh_forward, elementwise.tanh_backward,
             elementwise.check_float("tanh"))
sigmoid.op = Op("sigmoid", elementwise.sigmoid_forward, elementwise.sigmoid_backward,
                elementwise.check_float("sigmoid"))
relu.op = Op("relu", elementwise.relu_forward, elementwise.relu_backward)
