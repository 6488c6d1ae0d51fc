"""What a checker says about an exercise, and how it finds out.

A verdict is one of three: the exercise is not implemented yet, it is wrong (which
input, which element, expected and got, the relative error, a hint about the usual
mistake), or it is correct (with the size of its error). ``compare`` finds the
first output that differs from the reference and ``diagnose`` guesses why.
"""
import os
from typing import NamedTuple

import numpy

NOT_IMPLEMENTED, WRONG, CORRECT = "not implemented yet", "wrong", "correct"


class ExerciseFailed(AssertionError):
    """Raised for a verdict other than "correct" when ``MINIGRAD_LESSONS_STRICT=1``."""


class Verdict(NamedTuple):
    exercise: str          # "4.1"
    title: str             # "im2col"
    status: str            # NOT_IMPLEMENTED, WRONG or CORRECT
    message: str           # what was found, for a person

    def __str__(self):
        mark = {CORRECT: "OK", WRONG: "WRONG", NOT_IMPLEMENTED: "TODO"}[self.status]
        return f"[{mark}] exercise {self.exercise} ({self.title}): {self.status}. {self.message}".rstrip()

    @property
    def correct(self):
        return self.status == CORRECT

    def _ipython_display_(self):
        """Shown once: ``exercise`` has printed it already when a cell ends with that call."""


def report(verdict):
    """Print the verdict; in strict mode, raise ExerciseFailed unless it is correct."""
    print(verdict)
    if not verdict.correct and os.environ.get("MINIGRAD_LESSONS_STRICT", "0") not in ("", "0"):
        raise ExerciseFailed(str(verdict))
    return verdict


def relative_error(got, expected):
    """max |got - expected| / max(|got| + |expected|): 0 when equal, 1 when unrelated or negated."""
    scale = numpy.max(numpy.abs(got) + numpy.abs(expected), initial=0.0)
    return float(numpy.max(numpy.abs(got - expected), initial=0.0) / max(scale, 1e-300))


def compare(name, got, expected, tolerance):
    """None when ``got`` matches ``expected`` (an array called ``name``), else what is wrong."""
    got = numpy.asarray(got) if got is not None else None
    if got is None:
        return f"{name} is None, expected an array of shape {expected.shape}"
    if got.shape != expected.shape:
        return f"{name} has shape {got.shape}, expected {expected.shape}. {shape_hint(got.shape, expected.shape)}"
    error = relative_error(got.astype(numpy.float64), expected.astype(numpy.float64))
    if error <= tolerance and numpy.array_equal(numpy.isnan(got), numpy.isnan(expected)):
        return None
    worst = numpy.unravel_index(numpy.argmax(numpy.abs(got - expected)), got.shape) if got.size else ()
    worst = tuple(int(i) for i in worst)
    return (f"{name}[{', '.join(map(str, worst))}] is {float(got[worst]):+.6g}, expected "
            f"{float(expected[worst]):+.6g} (relative error {error:.1e}). {diagnose(got, expected)}").strip()


def shape_hint(got, expected):
    if sorted(got) == sorted(expected):
        return "Transposed, or axes in the wrong order?"
    if numpy.prod(got) > numpy.prod(expected):
        return "A sum over an axis is missing (a broadcast or batch axis must be summed away)?"
    return "An axis summed away that should stay, or a missing keepdims?"


def diagnose(got, expected):
    """A hint from the shape of the mistake: sign, scale, transpose, shift."""
    got, expected = got.astype(numpy.float64), expected.astype(numpy.float64)
    if not numpy.any(expected) or not numpy.all(numpy.isfinite(got)):
        return "Check for NaN or inf (a division by zero, a log of 0, an overflow in exp)."
    if relative_error(-got, expected) < 1e-6:
        return "The sign is flipped."
    ratio = float(numpy.sum(got * expected) / numpy.sum(expected * expected))
    if abs(ratio) > 1e-12 and relative_error(got / ratio, expected) < 1e-6:
        return f"Off by a constant factor of {ratio:.4g} (a missing or extra 1/N, 2 or scale?)."
    if got.ndim >= 2 and got.shape[-1] == got.shape[-2] and \
            relative_error(numpy.swapaxes(got, -1, -2), expected) < 1e-6:
        return "Transposed (check which side of the product each factor goes on)."
    for axis in range(got.ndim):
        for shift in (-1, 1):
            if relative_error(numpy.roll(got, shift, axis=axis), expected) < 1e-6:
                return f"Shifted by one along axis {axis} (an off-by-one index or slice)."
    return ""
