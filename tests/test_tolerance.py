"""The float32 sum tolerance: two correct orders of the same sum always pass, one wrong term
never does, and NaN fails closed."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad.tolerance import assert_sum_close, sum_mismatches, sum_tolerance, unit_roundoff


def sums_in_two_orders(rng, outputs, terms, cancel=False):
    """float32 sums of the same terms added forwards and backwards, the exact float64 sum
    and the sum of the magnitudes; ``cancel``: terms that nearly cancel (results near 0)."""
    t = rng.standard_normal((outputs, terms)).astype(numpy.float32) * 100
    if cancel:
        t[:, terms // 2:] = -t[:, :terms - terms // 2][:, ::-1]
        t[:, 0] += numpy.float32(1e-3)
    forwards = numpy.zeros(outputs, numpy.float32)
    backwards = numpy.zeros(outputs, numpy.float32)
    for k in range(terms):
        forwards += t[:, k]
        backwards += t[:, terms - 1 - k]
    return t, forwards, backwards, numpy.abs(t.astype(numpy.float64)).sum(axis=1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), terms=st.integers(1, 900), cancel=st.booleans())
def test_two_orders_of_the_same_float32_sum_always_pass(seed, terms, cancel):
    t, forwards, backwards, magnitude = sums_in_two_orders(numpy.random.default_rng(seed), 40, terms, cancel)
    assert_sum_close(forwards, backwards, magnitude, terms, numpy.float32)
    assert_sum_close(forwards, t.astype(numpy.float64).sum(axis=1), magnitude, terms, numpy.float32)


def test_the_case_that_failed_with_a_relative_tolerance_passes():
    """Results near 0 after cancellation: rtol 1e-4 calls a correct reordering wrong."""
    t, forwards, backwards, magnitude = sums_in_two_orders(numpy.random.default_rng(0), 2000, 864, cancel=True)
    assert not numpy.allclose(forwards, backwards, rtol=1e-6, atol=0)
    assert_sum_close(forwards, backwards, magnitude, 864, numpy.float32)


@pytest.mark.parametrize("terms", [9, 864, 4800])
def test_one_wrong_term_is_caught(terms):
    """Dropping the smallest-but-one term, or doubling one: a real bug, far beyond rounding,
    unless the term is itself below the rounding of the whole sum (then no test could see it)."""
    rng = numpy.random.default_rng(terms)
    t, forwards, _, magnitude = sums_in_two_orders(rng, 50, terms)
    for planted in (t[:, 1:].astype(numpy.float64).sum(axis=1),           # first term missing
                    t.astype(numpy.float64).sum(axis=1) + t[:, 0]):         # first term twice
        visible = numpy.abs(t[:, 0]) > 2 * sum_tolerance(magnitude, terms, numpy.float32)
        assert visible.any()
        assert numpy.array_equal(sum_mismatches(forwards, planted, magnitude, terms, numpy.float32), visible)
        with pytest.raises(AssertionError, match=r"elements differ by more than"):
            assert_sum_close(forwards, planted, magnitude, terms, numpy.float32, name="conv")


def test_a_difference_just_past_the_bound_fails_and_just_inside_passes():
    magnitude = numpy.array([10.0, 1e4])
    bound = 2 * sum_tolerance(magnitude, 100, numpy.float32)
    assert numpy.allclose(bound, 2 * 100 * unit_roundoff(numpy.float32) * magnitude, rtol=1e-4)
    base = numpy.array([1.0, -3.0])
    assert not sum_mismatches(base + 0.99 * bound, base, magnitude, 100, numpy.float32).any()
    assert sum_mismatches(base + 1.01 * bound, base, magnitude, 100, numpy.float32).all()


def test_nan_and_inf_fail_closed_and_equal_infinities_pass():
    magnitude = numpy.ones(4)
    actual = numpy.array([numpy.nan, numpy.inf, 1.0, numpy.inf])
    desired = numpy.array([1.0, 1.0, numpy.nan, numpy.inf])
    assert sum_mismatches(actual, desired, magnitude, 3, numpy.float32).tolist() == [True, True, True, False]
    with pytest.raises(AssertionError, match=r"3 of 4 elements"):
        assert_sum_close(actual, desired, magnitude, 3, numpy.float32)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="at least 1 term, got 0"):
        sum_tolerance(1.0, 0, numpy.float32)
    with pytest.raises(ValueError, match="leave no bound"):
        sum_tolerance(1.0, 2**24, numpy.float16)
    with pytest.raises(AssertionError, match="shapes differ"):
        sum_mismatches(numpy.zeros(2), numpy.zeros(3), 1.0, 1, numpy.float32)
