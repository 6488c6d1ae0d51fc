"""How far apart two correct floating-point results of the same sum may be.

A convolution's output element is a sum of C·KH·KW products; a GEMM, a mean and an average
pool are sums too. Two correct programs add those terms in different orders (BLAS builds,
kernel sets, GPU and CPU) and so round differently. How much? Not in proportion to the
result, which may be near 0 after cancellation, but to the sum of the terms' magnitudes.
For a sum of n terms t_i computed in any order in a floating-point format with unit roundoff
u (half the machine epsilon):

    |computed - exact| <= gamma_n * sum_i |t_i|,     gamma_n = n u / (1 - n u)

(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002, eq. 3.5 for dot
products and section 4.2 for sums.) Two results that each obey it differ by at most twice
that. The bound is a proof, not a guess: a larger difference means a wrong term, not a
different order. For a linear op the magnitudes ``sum_i |t_i|`` come from the op itself run
on the inputs' absolute values (``conv(|x|, |W|) + |b|``), in float64.

    bound = sum_tolerance(magnitude, terms=C * KH * KW + 1, dtype=numpy.float32)
    assert_sum_close(ours, theirs, magnitude, terms=C * KH * KW + 1, dtype=numpy.float32)
"""
import numpy


def unit_roundoff(dtype):
    """u = eps / 2: the largest relative error of rounding one real number to ``dtype``."""
    return float(numpy.finfo(dtype).eps) / 2


def sum_tolerance(magnitude, terms, dtype):
    """The largest |computed - exact| of a sum of ``terms`` terms whose absolute values add
    up to ``magnitude`` (an array: one per output element), computed in ``dtype`` in any
    order: gamma_n * magnitude."""
    if terms < 1:
        raise ValueError(f"sum_tolerance: expected at least 1 term, got {terms}")
    nu = terms * unit_roundoff(dtype)
    if nu >= 1:
        raise ValueError(f"sum_tolerance: {terms} terms in {numpy.dtype(dtype).name} leave no bound "
                         f"(n u = {nu:.2g} >= 1)")
    return nu / (1 - nu) * numpy.asarray(magnitude, dtype=numpy.float64)


def sum_mismatches(actual, desired, magnitude, terms, dtype):
    """A boolean array: True where ``actual`` and ``desired`` (two results of the same sums,
    each computed in ``dtype``) differ by more than both their rounding errors allow. NaN or
    inf where the other has a finite value is a mismatch: the check fails closed."""
    actual = numpy.asarray(actual, dtype=numpy.float64)
    desired = numpy.asarray(desired, dtype=numpy.float64)
    if actual.shape != desired.shape:
        raise AssertionError(f"shapes differ: {actual.shape} and {desired.shape}")
    bound = 2 * sum_tolerance(magnitude, terms, dtype)
    with numpy.errstate(invalid="ignore"):
        within = numpy.abs(actual - desired) <= bound
    same_special = (actual == desired) & ~numpy.isfinite(actual)      # the same inf on both sides
    return ~(within | same_special)


def assert_sum_close(actual, desired, magnitude, terms, dtype, name="the result"):
    """Raise AssertionError naming the worst element when ``actual`` and ``desired`` differ by
    more than two sums' rounding allows (see ``sum_mismatches``)."""
    bad = sum_mismatches(actual, desired, magnitude, terms, dtype)
    if not bad.any():
        return
    actual, desired = numpy.asarray(actual, numpy.float64), numpy.asarray(desired, numpy.float64)
    bound = 2 * sum_tolerance(magnitude, terms, dtype) * numpy.ones(actual.shape)
    with numpy.errstate(invalid="ignore"):
        excess = numpy.where(bad, numpy.nan_to_num(numpy.abs(actual - desired) / numpy.maximum(bound, 1e-300),
                                                   nan=numpy.inf, posinf=numpy.inf), 0)
    worst = numpy.unravel_index(numpy.argmax(excess), actual.shape)
    index = ", ".join(str(int(i)) for i in worst)
    raise AssertionError(
        f"{name}: {int(bad.sum())} of {bad.size} elements differ by more than {terms} "
        f"{numpy.dtype(dtype).name} terms' rounding allows; worst at [{index}]: {actual[worst]!r} vs "
        f"{desired[worst]!r}, bound {bound[worst]:.3g} (sum of |terms| "
        f"{numpy.broadcast_to(numpy.asarray(magnitude, numpy.float64), actual.shape)[worst]:.4g})")
