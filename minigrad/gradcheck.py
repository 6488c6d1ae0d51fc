"""Check analytic gradients against finite differences.

Central differences: for a scalar function L,

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)      (error O(eps^2))

A function with an array output is turned into a scalar by a random upstream
gradient ``gy``: L(x) = sum(f(x) * gy). A random ``gy`` (not ones) matters: with
ones, a backward that swaps two outputs' gradients would still pass.

The error of one input is  max|a - n| / max(max(|a| + |n|), tiny)  over its
elements (a relative error that is not fooled by elements near zero), reported
with the worst element's index and both values there.

Two entry points:

* ``gradcheck(fn, *inputs)``: ``fn`` maps Tensors to a Tensor, or is a pair
  ``(forward, backward)`` over plain arrays (bind constant parameters with
  ``functools.partial`` on the forward);
* ``directional_check(loss_fn, tensors)``: for a whole model, one random
  direction through all parameters at once, at the cost of two evaluations.

Inputs must be float64: in float32 the rounding of each function value,
divided by the small step, swamps the difference quotient and a right backward
would look wrong, so float32 is refused with a message that says so. The check
runs on the inputs' own device, so GPU code is checked where it runs.
"""
import dataclasses

import numpy

from . import backend
from .autograd import Tensor, no_grad

TINY = 1e-30


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one."""


@dataclasses.dataclass
class InputReport:
    name: str
    shape: tuple
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numerical: float
    checked: int          # how many elements were perturbed

    def line(self):
        return (f"{self.name:<14} {str(self.shape):<18} {self.checked:>8} "
                f"{self.max_rel_error:>10.2e}  {str(self.worst_index):<16} "
                f"{self.analytic:>+13.6e} {self.numerical:>+13.6e}")


@dataclasses.dataclass
class GradcheckReport:
    inputs: list
    tolerance: float

    @property
    def max_rel_error(self):
        return max((r.max_rel_error for r in self.inputs), default=0.0)

    @property
    def checked(self):
        """How many elements were compared, over all inputs."""
        return sum(r.checked for r in self.inputs)

    @property
    def passed(self):
        """Every input within the tolerance, and at least one element checked: a check
        that compared nothing has shown nothing and must not pass."""
        return self.checked > 0 and all(r.max_rel_error <= self.tolerance for r in self.inputs)

    def __str__(self):
        header = (f"{'input':<14} {'shape':<18} {'checked':>8} {'rel error':>10}  "
                  f"{'worst index':<16} {'analytic':>13} {'numerical':>13}")
        rows = [r.line() + ("" if r.max_rel_error <= self.tolerance else "   <-- FAIL")
                for r in self.inputs]
        if self.checked == 0:
            verdict = "FAILED: nothing was checked (no floating-point input has an element)"
        else:
            verdict = (f"{'PASSED' if self.passed else 'FAILED'}: largest error {self.max_rel_error:.2e} "
                       f"(tolerance {self.tolerance:.0e})")
        return "\n".join([header, *rows, verdict])


def relative_error(analytic, numerical):
    """max|a - n| / max(|a| + |n|), and the index of the worst element."""
    difference = numpy.abs(analytic - numerical)
    scale = numpy.max(numpy.abs(analytic) + numpy.abs(numerical), initial=0.0)
    worst = numpy.unravel_index(numpy.argmax(difference), difference.shape) if difference.size else ()
    error = float(difference.max(initial=0.0) / max(scale, TINY))
    return error, tuple(int(i) for i in worst)


def numerical_gradient(scalar_fn, x, eps=1e-6, indices=None):
    """Central-difference gradient of ``scalar_fn()`` with respect to array ``x``.

    ``x`` (on any device) is perturbed in place and restored. ``indices`` (flat
    positions) limits the check to some elements; the others stay zero. The result
    is a NumPy float64 array.
    """
    grad = numpy.zeros(x.shape, dtype=numpy.float64)
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array to perturb in place")
    flat = x.reshape(-1)  # a view: writing to it writes to x
    positions = range(x.size) if indices is None else indices
    for i in positions:
        original = flat[i].item()
        flat[i] = original + eps
        plus = scalar_fn()
        flat[i] = original - eps
        minus = scalar_fn()
        flat[i] = original
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def _sample_indices(size, max_elements, rng):
    if max_elements is None or size <= max_elements:
        return None
    return rng.choice(size, size=max_elements, replace=False)


def gradcheck(fn, *inputs, eps=1e-6, tolerance=1e-6, seed=0, max_elements=None,
              names=None, raise_on_failure=True, verbose=False):
    """Compare the analytic and numerical gradients of ``fn`` for every float input.

    ``fn``: a function of Tensors returning a Tensor, or a ``(forward, backward)`` pair
    of plain-array functions. ``inputs``: float64 arrays or Tensors, on any one device
    (the check runs there); non-float inputs (labels) are passed through unchecked, and
    so is ``None`` (an absent bias). ``max_elements`` checks a random sample of each
    large input. Returns a ``GradcheckReport``; raises ``GradcheckError`` when an input's
    error exceeds ``tolerance`` (unless told not to), and always when a gradient has the
    wrong shape. A float32 input is refused with a TypeError that says why, and settings
    that could not fail (``names`` of another length than ``inputs``, ``max_elements`` < 1,
    a tolerance of 1 or more) with a ValueError. A check that compared no element at all
    (no floating-point input, or only empty ones) fails: it has shown nothing.
    """
    _check_settings(len(inputs), names, max_elements, tolerance)
    rng = numpy.random.default_rng(seed)
    names = [f"input {i}" for i in range(len(inputs))] if names is None else list(names)
    arrays = [_own_copy(x, name) for x, name in zip(inputs, names)]
    if not any(_is_float(x) and x.size for x in arrays):          # nothing to compare
        return _finish(GradcheckReport([InputReport(name, x.shape, 0.0, (), 0.0, 0.0, 0)
                                        for x, name in zip(arrays, names) if _is_float(x)], tolerance),
                       raise_on_failure, verbose)
    if isinstance(fn, tuple):
        evaluate, analytic_grads = _pair_functions(fn, arrays)
    else:
        evaluate, analytic_grads = _tensor_functions(fn, arrays)
    out = evaluate()
    xp = backend.get_array_module(out)
    gy = xp.asarray(rng.standard_normal(out.shape))     # random, not ones: see the module docstring
    analytic = analytic_grads(gy)

    def loss():
        return float((evaluate() * gy).sum())

    reports = []
    for i, x in enumerate(arrays):
        if not _is_float(x):
            continue
        exact = numpy.zeros(x.shape) if analytic[i] is None else backend.to_numpy(analytic[i])
        if exact.shape != x.shape:   # e.g. a backward that forgot to undo broadcasting
            raise GradcheckError(f"{names[i]}: the backward returned a gradient of shape "
                                 f"{exact.shape} for an input of shape {x.shape}")
        indices = _sample_indices(x.size, max_elements, rng)
        numerical = numerical_gradient(loss, x, eps, indices)
        if indices is not None:
            keep = numpy.zeros(x.size, dtype=bool)
            keep[indices] = True
            exact = numpy.where(keep.reshape(x.shape), exact, 0.0)
        error, worst = relative_error(exact, numerical)
        reports.append(InputReport(names[i], x.shape, error, worst, float(exact[worst]) if x.size else 0.0,
                                   float(numerical[worst]) if x.size else 0.0,
                                   x.size if indices is None else len(indices)))
    return _finish(GradcheckReport(reports, tolerance), raise_on_failure, verbose)


def _finish(report, raise_on_failure, verbose):
    if verbose:
        print(report)
    if raise_on_failure and not report.passed:
        raise GradcheckError("gradient check failed\n" + str(report))
    return report


def _check_settings(count, names, max_elements, tolerance):
    """Refuse settings under which a wrong backward could pass."""
    if names is not None and len(names) != count:
        raise ValueError(f"gradcheck: {len(names)} names for {count} inputs; give one name per "
                         f"input (None and integer inputs included)")
    whole = isinstance(max_elements, (int, numpy.integer)) and not isinstance(max_elements, bool)
    if max_elements is not None and not (whole and max_elements >= 1):
        raise ValueError(f"gradcheck: max_elements must be a whole number >= 1 (elements checked per "
                         f"input) or None (all of them), got {max_elements!r}: a check of no "
                         f"element would pass any backward")
    _check_tolerance("gradcheck", tolerance)


def _check_tolerance(name, tolerance):
    """The relative error lies in [0, 1], so a tolerance of 1 or more (or NaN) passes anything."""
    if not 0 <= tolerance < 1:
        raise ValueError(f"{name}: tolerance must lie in [0, 1), got {tolerance!r}: the relative "
                         f"error is at most 1, so a tolerance of 1 or more passes any backward")


def _is_float(array):
    return array is not None and array.dtype.kind == "f"


def require_float64(dtype, name):
    """Refuse a float input that is not float64, saying why and what to do instead."""
    if dtype.kind == "f" and dtype != numpy.float64:
        rounding = float(numpy.finfo(dtype).eps)
        raise TypeError(
            f"gradcheck: {name} is {dtype}. Finite differences need float64: in {dtype} each "
            f"value of the function is rounded by about {rounding:.0e} (relative), and dividing "
            f"that by the step 2*eps turns it into an error far larger than the derivative's "
            f"own, so even a correct backward would look wrong. Check a float64 copy instead, "
            f"e.g. x.astype(numpy.float64) (and the parameters it is used with).")


def _own_copy(x, name):
    """A private, contiguous copy of a float input on its own device (perturbed in place
    by the numerical gradient); other inputs (labels, None) are passed as they are."""
    if x is None:
        return None
    array = x.data if isinstance(x, Tensor) else x
    array = backend.get_array_module(array).asarray(array)      # lists and NumPy scalars too
    if array.dtype.kind != "f":
        return array
    require_float64(array.dtype, name)
    return array.copy()


def _pair_functions(pair, arrays):
    forward, backward = pair

    def evaluate():
        return forward(*arrays)[0]

    def analytic_grads(gy):
        out, cache = forward(*arrays)
        grads = list(backward(gy.astype(out.dtype), cache))
        if len(grads) < len(arrays):
            raise GradcheckError(f"the backward returned {len(grads)} gradients for {len(arrays)} inputs")
        return grads

    return evaluate, analytic_grads


def _tensor_functions(fn, arrays):
    def evaluate():
        with no_grad():
            return fn(*[None if a is None else Tensor(a) for a in arrays]).data

    def analytic_grads(gy):
        tensors = [None if a is None else Tensor(a, requires_grad=_is_float(a)) for a in arrays]
        out = fn(*tensors)
        out.backward(gy.astype(out.dtype))
        return [None if t is None else t.grad for t in tensors]

    return evaluate, analytic_grads


@dataclasses.dataclass
class DirectionalReport:
    analytic: float       # sum over all tensors of grad . v
    numerical: float      # (L(p + eps v) - L(p - eps v)) / (2 eps)
    rel_error: float
    tolerance: float

    @property
    def passed(self):
        return self.rel_error <= self.tolerance

    def __str__(self):
        verdict = "PASSED" if self.passed else "FAILED"
        return (f"directional derivative: analytic {self.analytic:+.10e}, numerical "
                f"{self.numerical:+.10e}, relative error {self.rel_error:.2e} -> {verdict}")


def directional_check(loss_fn, tensors, eps=1e-6, tolerance=1e-6, seed=0, raise_on_failure=True):
    """Check d loss / d(all ``tensors``) along one random unit direction ``v``.

    ``loss_fn()`` returns a one-element Tensor computed from ``tensors`` (leaf tensors
    with ``requires_grad``, e.g. a model's parameters and its input). One backward pass
    gives sum_t <grad_t, v_t>; two forward passes give the same number by central
    differences. Millions of parameters are checked at the cost of two evaluations:
    a wrong gradient anywhere shows up unless it happens to be orthogonal to ``v``.
    """
    _check_tolerance("directional_check", tolerance)
    if sum(t.size for t in tensors) == 0:
        raise ValueError(f"directional_check: the {len(tensors)} tensors have no element to move "
                         f"along; a check of nothing would pass any backward")
    for i, t in enumerate(tensors):
        require_float64(t.dtype, f"tensor {i} (shape {t.shape})")
    rng = numpy.random.default_rng(seed)
    directions = [rng.standard_normal(t.shape) for t in tensors]
    norm = numpy.sqrt(sum(float(numpy.sum(d * d)) for d in directions))
    directions = [d / norm for d in directions]
    for t in tensors:
        t.grad = None
    loss_fn().backward()
    analytic = sum(float(numpy.sum(backend.to_numpy(t.grad) * d))
                            for t, d in zip(tensors, directions) if t.grad is not None)
    numerical = (_loss_moved(loss_fn, tensors, directions, eps)
                 - _loss_moved(loss_fn, tensors, directions, -eps)) / (2 * eps)
    error = abs(analytic - numerical) / max(abs(analytic) + abs(numerical), TINY)
    report = DirectionalReport(analytic, numerical, error, tolerance)
    if raise_on_failure and not report.passed:
        raise GradcheckError("directional check failed: " + str(report))
    return report


def _loss_moved(loss_fn, tensors, directions, step):
    """loss at p + step * v, leaving p unchanged afterwards."""
    originals = [t.data for t in tensors]
    xp = backend.get_array_module(originals[0])
    for t, d in zip(tensors, directions):
        t.data = t.data + xp.asarray(step * d, dtype=t.dtype)
    try:
        with no_grad():
            return float(loss_fn().item())
    finally:
        for t, original in zip(tensors, originals):
            t.data = original

