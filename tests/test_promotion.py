"""The dtype rule of every operator (README, "Dtypes are never guessed"; ``as_tensor``).

For every binary operator (``+ - * / @``, and ``**`` with a constant on either side) and
every kind of operand (Python bool/int/float, a NumPy scalar of every real dtype, NumPy
arrays, lists, bool/int32/int64/float32/float64 Tensors), in both orders:

* the forward's dtype is the one the documented rule gives (``documented_dtype`` below
  restates it independently of the code), or the op refuses with an error naming itself;
* when the result is floating-point, the backward runs and each float tensor's gradient
  keeps that tensor's dtype;
* where PyTorch is installed, the dtype, the values and the gradients are PyTorch's,
  except in the cases where the README departs from PyTorch on purpose (``DEPARTURES``,
  each with its reason).

Complex numbers of every kind are refused by every operator, naming the op and the dtype.
"""
import dataclasses
import operator

import numpy
import pytest

import minigrad.functional as F
from minigrad import Tensor

try:
    import torch
except ImportError:
    torch = None


# --- the operands ---------------------------------------------------------------------------
@dataclasses.dataclass
class Operand:
    label: str
    kind: str                # "tensor", "python", "numpy scalar", "array" or "list"
    dtype: numpy.dtype       # its own dtype: a Tensor's, or what Tensor(value) would make of it
    value: object            # a scalar, or an array of the test's shape (tensors: the data)

    def make(self, requires_grad=False):
        """A fresh operand (tensors are new leaves each time)."""
        if self.kind == "tensor":
            return Tensor(self.value.copy(), requires_grad=requires_grad and self.dtype.kind == "f")
        if self.kind == "array":
            return self.value.copy()
        if self.kind == "list":
            return self.value.tolist()
        return self.value


def values(shape, dtype):
    """1, 2, 3, ... (all True for bool): no zero divisor, no negative base."""
    n = int(numpy.prod(shape))
    if numpy.dtype(dtype) == numpy.bool_:
        return numpy.ones(shape, dtype=bool)
    return (numpy.arange(1, n + 1).reshape(shape) * (1.5 if numpy.dtype(dtype).kind == "f" else 1)).astype(dtype)


TENSOR_DTYPES = ["bool", "int32", "int64", "float32", "float64"]
ARRAY_DTYPES = ["bool", "int32", "int64", "float32", "float64"]
# every real NumPy scalar type: bool, the signed and unsigned integers, half to long double
NUMPY_SCALAR_DTYPES = sorted({numpy.dtype(code) for code in
                              "?" + numpy.typecodes["AllInteger"] + numpy.typecodes["Float"]}, key=str)


def tensors(shape):
    return [Operand(f"{d} Tensor", "tensor", numpy.dtype(d), values(shape, d)) for d in TENSOR_DTYPES]


def scalars():
    python = [Operand("Python bool", "python", numpy.dtype(bool), True),
              Operand("Python int", "python", numpy.dtype(numpy.int64), 2),
              Operand("Python float", "python", numpy.dtype(numpy.float32), 2.5)]   # Tensor(2.5) is float32
    numpys = [Operand(f"numpy.{d.type.__name__}", "numpy scalar", d, d.type(True if d.kind == "b" else 2))
              for d in NUMPY_SCALAR_DTYPES]
    return python + numpys


def arrays(shape):
    made = [Operand(f"{d} array", "array", numpy.dtype(d), values(shape, d)) for d in ARRAY_DTYPES]
    made += [Operand("list of floats", "list", numpy.dtype(numpy.float32), values(shape, numpy.float64)),
             Operand("list of ints", "list", numpy.dtype(numpy.int64), values(shape, numpy.int64))]
    return made


# name: (the operator, the shape of its operands, the other operands it takes beside a tensor)
BINARY = {
    "add": (operator.add, (3,), lambda: tensors((3,)) + scalars() + arrays((3,))),
    "sub": (operator.sub, (3,), lambda: tensors((3,)) + scalars() + arrays((3,))),
    "mul": (operator.mul, (3,), lambda: tensors((3,)) + scalars() + arrays((3,))),
    "div": (operator.truediv, (3,), lambda: tensors((3,)) + scalars() + arrays((3,))),
    "matmul": (operator.matmul, (3, 3), lambda: tensors((3, 3)) + arrays((3, 3))),
    "pow": (operator.pow, (3,), scalars),          # tensor ** number and number ** tensor
}


# --- the documented rule, restated --------------------------------------------------------------
RANK = {"b": 0, "i": 1, "u": 1, "f": 2}            # bool < integer < floating-point


def documented_dtype(name, left, right):
    """The dtype the README's rule gives ``left <name> right``, or "error".

    1. A constant (not a Tensor) takes the tensor's dtype when its kind is the same or lower,
       and keeps its own dtype when higher.
    2. Two floating-point dtypes must be equal; a floating-point one wins over integers and
       bools; integers and bools promote as NumPy (and PyTorch) promote them.
    3. True division of integers or bools gives float32 (the default float dtype); two bools
       cannot be subtracted.
    """
    def seen(operand, other):
        if operand.kind != "tensor" and RANK[operand.dtype.kind] <= RANK[other.dtype.kind]:
            return other.dtype
        return operand.dtype
    a, b = seen(left, right), seen(right, left)
    floats = {d for d in (a, b) if d.kind == "f"}
    if len(floats) > 1 or (name == "sub" and a.kind == b.kind == "b"):
        return "error"
    result = floats.pop() if floats else numpy.result_type(a, b)
    if name == "div" and result.kind != "f":
        return numpy.dtype(numpy.float32)
    return result


# Where the README departs from PyTorch on purpose; these cases are not compared with it.
DEPARTURES = {
    "two floating-point Tensors of different dtypes are an error here (README); PyTorch promotes":
        lambda name, left, right: (left.kind == right.kind == "tensor" and left.dtype.kind == right.dtype.kind == "f"
                             and left.dtype != right.dtype),
    "an array or list of the same or a lower kind takes the tensor's dtype (README: x * numpy_array "
    "stays float32); PyTorch promotes to the wider of two operands that have dimensions":
        lambda name, left, right: any(c.kind in ("array", "list") and t.kind == "tensor"
                                and RANK[c.dtype.kind] <= RANK[t.dtype.kind] and c.dtype != t.dtype
                                for c, t in ((left, right), (right, left))),
    "a NumPy number of a higher kind keeps its own dtype (as_tensor: a NumPy float64 stays float64 "
    "next to an integer tensor); PyTorch reads a NumPy number as a Python one (float32)":
        lambda name, left, right: any(c.kind == "numpy scalar" and t.kind == "tensor"
                                and RANK[c.dtype.kind] > RANK[t.dtype.kind]
                                for c, t in ((left, right), (right, left))),
    "PyTorch refuses any subtraction with a bool operand; here only bool - bool is refused (as in "
    "NumPy): a bool next to a number counts as 0 or 1, as it does in + and *":
        lambda name, left, right: name == "sub" and "b" in (left.dtype.kind, right.dtype.kind),
}


def departure(name, left, right):
    return next((reason for reason, applies in DEPARTURES.items() if applies(name, left, right)), None)


# --- PyTorch's answer -----------------------------------------------------------------------------
def as_torch(operand, requires_grad=False):
    """The PyTorch operand that corresponds: a tensor for a Tensor, an array or a list (PyTorch
    takes no lists: the tensor one makes), the Python number a NumPy scalar holds."""
    if operand.kind in ("tensor", "array"):
        return torch.tensor(operand.value, requires_grad=requires_grad and operand.kind == "tensor"
                            and operand.dtype.kind == "f")
    if operand.kind == "list":
        return torch.tensor(operand.value.tolist())
    if operand.kind == "numpy scalar":
        return operand.value.item()
    return operand.value


def torch_dtype_name(result):
    return str(result).replace("torch.", "")


def torch_outcome(fn, left, right):
    """(dtype name or "error", result tensor or None, [gradients of the float tensors])."""
    tl, tr = as_torch(left, requires_grad=True), as_torch(right, requires_grad=True)
    try:
        result = fn(tl, tr)
    except RuntimeError as error:
        message = str(error)
        if "not supported" in message:              # bool - bool: PyTorch refuses it too
            return "error", None, []
        # no kernel for this pair (bool pow, mixed or bool matmul): compare with its promotion rule
        return torch_dtype_name(torch.result_type(tl, tr)), None, []
    grads = []
    if result.requires_grad and not isinstance(tl, bool):   # True ** x: PyTorch's backward fails an
        result.sum().backward()                             # internal assert (a PyTorch bug)
        grads = [t.grad.numpy() for t in (tl, tr) if isinstance(t, torch.Tensor) and t.requires_grad]
    return torch_dtype_name(result.dtype), result.detach().numpy(), grads


# --- ours -------------------------------------------------------------------------------------
def our_outcome(name, fn, left, right):
    """(dtype or "error", result array or None, [gradients of the float tensors]); an error must
    be a ValueError or TypeError that names the op."""
    a, b = left.make(requires_grad=True), right.make(requires_grad=True)
    try:
        result = fn(a, b)
    except (ValueError, TypeError) as error:
        op = {"pow": ("pow", "rpow")}.get(name, (name,))
        assert str(error).startswith(op), f"the error does not name the op: {error}"
        return "error", None, []
    grads = []
    if result.requires_grad:
        result.sum().backward()
        for t in (a, b):
            if isinstance(t, Tensor) and t.requires_grad:
                assert t.grad is not None and t.grad.dtype == t.dtype and t.grad.shape == t.shape, \
                    f"gradient {getattr(t.grad, 'dtype', None)} for a {t.dtype} tensor"
                grads.append(t.grad)
    return result.dtype, result.numpy(), grads


def cases(name):
    """Every (left, right) pair of the op with at least one tensor, in both orders."""
    _, shape, others = BINARY[name]
    for tensor in tensors(shape):
        for other in others():
            yield tensor, other
            if other.kind != "tensor":
                yield other, tensor


def check_case(name, left, right):
    """The problems with one case, as sentences (none when all is well)."""
    fn = BINARY[name][0]
    expected = documented_dtype(name, left, right)
    dtype, result, grads = our_outcome(name, fn, left, right)
    where = f"{left.label} {name} {right.label}"
    if dtype != expected:
        return [f"{where}: {dtype}, the documented rule gives {expected}"]
    if torch is None or departure(name, left, right):
        return []
    torch_dtype, torch_result, torch_grads = torch_outcome(fn, left, right)
    if str(dtype) != torch_dtype:
        return [f"{where}: {dtype}, PyTorch gives {torch_dtype}"]
    problems = []
    if torch_result is not None and result is not None:
        if not numpy.allclose(result.astype(float), torch_result.astype(float), rtol=1e-6):
            problems.append(f"{where}: values {result}, PyTorch {torch_result}")
        for ours, theirs in zip(grads, torch_grads):
            if not numpy.allclose(ours, theirs, rtol=1e-6):
                problems.append(f"{where}: gradient {ours}, PyTorch {theirs}")
    return problems


@pytest.mark.parametrize("name", BINARY)
def test_every_operand_kind_in_both_orders_follows_the_rule_and_pytorch(name):
    problems, compared = [], 0
    for left, right in cases(name):
        problems += check_case(name, left, right)
        compared += torch is not None and not departure(name, left, right)
    assert not problems, "\n".join(problems)
    if torch is not None:
        assert compared >= 40, f"only {compared} cases compared with PyTorch"


def test_the_rule_is_not_vacuous():
    """Both outcomes of the rule occur: kept dtypes, promotions, errors, and each departure."""
    seen = {documented_dtype("add", left, right) for left, right in cases("add")}
    assert {"error", numpy.dtype("float32"), numpy.dtype("float64"), numpy.dtype("int64"),
            numpy.dtype("bool")} <= seen
    for reason, applies in DEPARTURES.items():
        assert any(applies(name, left, right) for name in BINARY for left, right in cases(name)), reason


# --- the cases of the issue, spelled out -------------------------------------------------------------
def test_float32_tensor_times_int_tensor_stays_float32_and_backward_works():
    x = Tensor(numpy.ones(3, dtype=numpy.float32), requires_grad=True)
    y = x * Tensor([1, 2, 3])
    assert y.dtype == numpy.float32
    y.sum().backward()
    assert x.grad.dtype == numpy.float32 and x.grad.tolist() == [1.0, 2.0, 3.0]


def test_matmul_constants_take_the_tensor_dtype():
    x32 = Tensor(numpy.ones((2, 3), dtype=numpy.float32), requires_grad=True)
    y = x32 @ numpy.ones((3, 1))                                # a float64 array
    assert y.dtype == numpy.float32
    y.sum().backward()
    assert x32.grad.dtype == numpy.float32
    x64 = Tensor(numpy.ones((2, 1)), requires_grad=True)
    z = x64 @ [[1.0, 2.0]]                                      # Python floats
    assert z.dtype == numpy.float64 and z.numpy().tolist() == [[1.0, 2.0], [1.0, 2.0]]
    w = [[1.0, 2.0]] @ Tensor(numpy.ones((2, 2)), requires_grad=True)
    assert w.dtype == numpy.float64


def test_two_float_tensors_of_different_dtypes_stay_an_error_in_matmul():
    with pytest.raises(ValueError, match=r"matmul: inputs have different floating-point dtypes "
                                         r"\(float32, float64\)"):
        Tensor(numpy.ones((2, 2), dtype=numpy.float32)) @ Tensor(numpy.ones((2, 2)))


def test_integer_inputs_take_the_float_dtype_beyond_the_operators():
    """The rule lives in Op, so other ops follow it too (concat, linear), unless their own check
    refuses integer input (conv2d, batch_norm: tests/test_conv.py and test_batchnorm.py)."""
    x = Tensor(numpy.ones((2, 3), dtype=numpy.float32), requires_grad=True)
    joined = F.concat([x, Tensor(numpy.zeros((2, 3), dtype=numpy.int64))], axis=0)
    assert joined.dtype == numpy.float32
    out = F.linear(x, Tensor(numpy.ones((4, 3), dtype=numpy.int32)), Tensor(numpy.zeros(4, dtype=bool)))
    assert out.dtype == numpy.float32
    (joined.sum() + out.sum()).backward()
    assert x.grad.dtype == numpy.float32


# --- complex numbers are refused ----------------------------------------------------------------
COMPLEX = [1 + 2j, numpy.complex64(1 + 2j), numpy.complex128(1 + 2j), numpy.full(3, 1 + 2j),
           numpy.full(3, 1 + 2j, dtype=numpy.complex64), [1 + 2j, 0j, 1j]]


@pytest.mark.parametrize("constant", COMPLEX, ids=lambda c: f"{type(c).__name__}")
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "matmul"])
@pytest.mark.parametrize("order", ["tensor first", "constant first"])
def test_complex_constants_are_refused_naming_op_and_dtype(name, constant, order):
    x = Tensor(numpy.ones(3, dtype=numpy.float32), requires_grad=True)
    fn = BINARY[name][0]
    with pytest.raises(TypeError, match=rf"{name}: expected real numbers .* got dtype complex"):
        fn(x, constant) if order == "tensor first" else fn(constant, x)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_a_complex_tensor_is_refused_by_any_op(dtype):
    z = Tensor(numpy.ones(3, dtype=dtype))
    with pytest.raises(TypeError, match=rf"mul: expected real numbers .* got dtype {dtype}"):
        Tensor(numpy.ones(3)) * z
    with pytest.raises(TypeError, match=rf"exp: expected real numbers .* got dtype {dtype}"):
        F.exp(z)
    with pytest.raises(TypeError, match=rf"sum: expected real numbers .* got dtype {dtype}"):
        z.sum()


@pytest.mark.parametrize("number", [1j, numpy.complex128(2), numpy.complex64(2)], ids=str)
def test_a_complex_exponent_or_base_is_refused(number):
    x = Tensor(numpy.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match=r"pow: the exponent must be one real number .* got "):
        x ** number
    with pytest.raises(TypeError, match=r"rpow: the base must be one real number .* got "):
        number ** x


def test_text_and_objects_are_refused_too():
    with pytest.raises(TypeError, match=r"add: expected real numbers .* got dtype <U3"):
        Tensor(numpy.ones(3)) + "abc"
    with pytest.raises(TypeError, match=r"mul: expected real numbers .* got dtype object"):
        Tensor(numpy.ones(3)) * None
