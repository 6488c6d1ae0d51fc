"""What a checker says about an exercise, and how it finds out.

A verdict is one of three: the exercise is not implemented yet, it is wrong (which
input, which element, expected and got, the relative error, a hint about the usual
mistake), or it is correct (with the size of its error). ``compare`` finds the
first output that differs from the reference and ``diagnose`` guesses why.

Every comparison fails closed: an answer is correct only when it is a real array of
the expected shape and dtype whose values are within the tolerance; NaN, inf where
the reference is finite, a complex or object dtype, a list of mixed things, an array
on another device are all wrong, each with what is off.

Hints come in two tiers. The first wrong verdict on an exercise is a nudge: where the
answer is off and, when the checker recognises it, the usual mistake. The rule (the
formula) comes after ``RULE`` at the end of a message: shown from the second wrong
verdict on, or by ``check.hint("N.M")``.
"""
import os
from typing import NamedTuple

import numpy

from minigrad import backend
from minigrad.autograd import Tensor

NOT_IMPLEMENTED, WRONG, CORRECT = "not implemented yet", "wrong", "correct"
RULE = "The rule:"          # a message's rule follows this, at its end


class ExerciseFailed(AssertionError):
    """Raised for a verdict other than "correct" when ``MINIGRAD_LESSONS_STRICT=1``."""


class Verdict(NamedTuple):
    exercise: str          # "4.1"
    title: str             # "im2col"
    status: str            # NOT_IMPLEMENTED, WRONG or CORRECT
    message: str           # what was found, for a person
    rule: str = ""         # the exercise's rule (the formula), when a wrong verdict has one
    blocked_by: str = ""   # "6.1 (multiply-adds of a convolution)": another exercise, not done yet

    def __str__(self):
        mark = {CORRECT: "OK", WRONG: "WRONG", NOT_IMPLEMENTED: "TODO"}[self.status]
        if self.blocked_by:
            return (f"[{mark}] exercise {self.blocked_by}: {self.status} (exercise {self.exercise}, "
                    f"{self.title}, uses it). {self.message}").rstrip()
        return f"[{mark}] exercise {self.exercise} ({self.title}): {self.status}. {self.message}".rstrip()

    @property
    def correct(self):
        return self.status == CORRECT

    def nudge(self):
        """This verdict without its rule (the first tier), saying where the rule is."""
        if not self.rule:
            return self
        before = self.message.split(RULE)[0].strip()
        return self._replace(message=f'{before} (check.hint("{self.exercise}") shows the rule.)')

    def _ipython_display_(self):
        """Shown once: ``exercise`` has printed it already when a cell ends with that call."""


def sentence(text):
    """``text`` stripped, with a full stop at its end unless it ends with one, "?" or "!"."""
    text = text.strip()
    return text if not text or text.endswith((".", "?", "!")) else text + "."


def with_rule(message, rule):
    """``message`` ending with ``rule`` after the RULE mark, unless it has a rule already."""
    if not rule or RULE in message:
        return message
    return f"{sentence(message)} {RULE} {rule.strip()}"


def rule_of(message):
    """The rule a message ends with ("" when it has none)."""
    return message.partition(RULE)[2].strip()


def report(verdict):
    """Print the verdict; in strict mode, raise ExerciseFailed unless it is correct."""
    print(verdict)
    if not verdict.correct and os.environ.get("MINIGRAD_LESSONS_STRICT", "0") not in ("", "0"):
        raise ExerciseFailed(str(verdict))
    return verdict


def relative_error(got, expected):
    """max |got - expected| / max(|got| + |expected|): 0 when equal, 1 when unrelated or
    negated, NaN when either holds NaN (which no tolerance accepts: ``not error <= tol``)."""
    scale = numpy.max(numpy.abs(got) + numpy.abs(expected), initial=0.0)
    return float(numpy.max(numpy.abs(got - expected), initial=0.0) / max(scale, 1e-300))


def same_values(got, expected, tolerance):
    """Whether the array ``got`` has ``expected``'s shape and values, within ``tolerance`` of
    relative error (to recognise what a usual mistake gives)."""
    return got.shape == expected.shape and relative_error(got, expected) <= tolerance


# --- what the learner returned, before any value is looked at ---------------------------------------
def as_real_array(name, got, expected_kind="f"):
    """(NumPy array, None) when ``got`` is an array of real numbers on the CPU (any array-like:
    a list, a number, a NumPy array), else (None, what is wrong with it)."""
    if got is None:
        return None, f"{name} is None"
    if isinstance(got, Tensor):
        return None, (f"{name} is a minigrad Tensor, expected a NumPy array (a Tensor's array is "
                      f"its .data; NumPy functions on arrays return arrays)")
    if backend.get_array_module(got) is not numpy:
        return None, (f"{name} is on {backend.device_of(got)}, expected a NumPy array on the CPU, "
                      f"where the inputs are")
    try:
        array = numpy.asarray(got)
    except Exception as error:               # ragged lists, objects NumPy cannot hold
        return None, f"{name} is a {type(got).__name__} that is not an array of numbers ({error})"
    if array.dtype.kind == "c":
        return None, (f"{name} has the complex dtype {array.dtype}; the answer is real. A complex "
                      f"number is refused even with a zero imaginary part (a conversion to float "
                      f"would drop that part silently).")
    allowed = "b" if expected_kind == "b" else "iuf"
    if array.dtype.kind not in allowed:
        what = "numbers" if allowed == "iuf" else "booleans"
        return None, f"{name} has dtype {array.dtype} ({type(got).__name__}), expected {what}"
    return array, None


def dtype_problem(name, got, expected):
    """What is wrong when ``got`` has another floating-point dtype than ``expected``, else None.
    (An integer reference, a count, takes any real number.)"""
    if expected.dtype.kind != "f" or got.dtype == expected.dtype:
        return None
    return (f"{name} is {got.dtype}, the reference {expected.dtype}: keep the inputs' dtype (an array "
            f"made without dtype=..., or with another one?). {precision_note(got, expected)}").strip()


def precision_note(got, expected):
    """When a less precise ``got`` matches ``expected`` to its own precision, say so: the
    numbers printed side by side would otherwise look equal."""
    if got.shape != expected.shape or got.dtype.kind != "f" or got.dtype.itemsize >= expected.dtype.itemsize:
        return ""
    error = relative_error(got.astype(numpy.float64), expected.astype(numpy.float64))
    if not error <= 10 * numpy.finfo(got.dtype).eps:
        return ""
    return (f"Its values agree to {got.dtype} precision (relative error {error:.1e}): only the dtype "
            f"is off.")


def compare(name, got, expected, tolerance):
    """None when ``got`` matches ``expected`` (an array called ``name``), else what is wrong.

    In order: what ``got`` is (a real array on the CPU), its shape, its dtype, then its
    values: NaN and inf must sit where the reference has them, and every other element
    within ``tolerance`` (relative error; fails closed on NaN).
    """
    expected = numpy.asarray(expected)
    if got is None:
        return f"{name} is None, expected an array of shape {expected.shape}"
    got, problem = as_real_array(name, got, expected.dtype.kind)
    if problem:
        return problem
    if got.shape != expected.shape:
        return f"{name} has shape {got.shape}, expected {expected.shape}. {shape_hint(got.shape, expected.shape)}"
    problem = dtype_problem(name, got, expected)
    if problem:
        return problem
    got64, expected64 = got.astype(numpy.float64), expected.astype(numpy.float64)
    finite = numpy.isfinite(expected64)
    misplaced = ~finite & ~((got64 == expected64) | (numpy.isnan(got64) & numpy.isnan(expected64)))
    misplaced |= finite & ~numpy.isfinite(got64)
    if misplaced.any():
        worst = tuple(int(i) for i in numpy.argwhere(misplaced)[0])
        return (f"{_element(name, worst)} is {_number(got64[worst])}, expected {_number(expected64[worst])}. "
                f"Check for NaN or inf (a division by zero, a log of 0, an overflow in exp).")
    got64, expected64 = numpy.where(finite, got64, 0.0), numpy.where(finite, expected64, 0.0)
    error = relative_error(got64, expected64)
    if error <= tolerance:
        return None
    worst = numpy.unravel_index(numpy.argmax(numpy.abs(got64 - expected64)), got64.shape) if got64.size else ()
    worst = tuple(int(i) for i in worst)
    shown_got, shown_expected = _apart(got64[worst], expected64[worst])
    return (f"{_element(name, worst)} is {shown_got}, expected {shown_expected} (relative error {error:.1e}). "
            f"{diagnose(got64, expected64)}").strip()


def _element(name, index):
    return f"{name}[{', '.join(map(str, index))}]"


def _number(value):
    return f"{float(value):+.6g}"


def _apart(got, expected):
    """The two numbers with enough digits to tell them apart (6 when that is enough)."""
    for digits in (6, 9, 12, 17):
        shown = f"{float(got):+.{digits}g}", f"{float(expected):+.{digits}g}"
        if shown[0] != shown[1]:
            return shown
    return shown


def shape_hint(got, expected):
    if sorted(got) == sorted(expected):
        return "Transposed, or axes in the wrong order?"
    if numpy.prod(got) == numpy.prod(expected):
        return "The right number of elements in another shape: reshaped, or joined along another axis?"
    if numpy.prod(got) > numpy.prod(expected):
        return "A sum over an axis is missing (a broadcast or batch axis must be summed away)?"
    return "An axis summed away that should stay, or a missing keepdims?"


def diagnose(got, expected):
    """A hint from the shape of the mistake: sign, scale, transpose, shift (float64, finite)."""
    if not numpy.any(expected):
        return ""
    if relative_error(-got, expected) < 1e-6:
        return "The sign is flipped."
    ratio = float(numpy.sum(got * expected) / numpy.sum(expected * expected))
    if abs(ratio) > 1e-12 and relative_error(got / ratio, expected) < 1e-6:
        shown = f"{ratio:.4g}" if f"{ratio:.4g}" not in ("1", "-1") else f"{ratio:.10g}"
        return f"Off by a constant factor of {shown} (a missing or extra 1/N, 2 or scale?)."
    if got.ndim >= 2 and got.shape[-1] == got.shape[-2] and \
            relative_error(numpy.swapaxes(got, -1, -2), expected) < 1e-6:
        return "Transposed (check which side of the product each factor goes on)."
    for axis in range(got.ndim):
        for shift in (-1, 1):
            if relative_error(numpy.roll(got, shift, axis=axis), expected) < 1e-6:
                return f"Shifted by one along axis {axis} (an off-by-one index or slice)."
    return ""


def finite_error(got, expected):
    """The relative error over the elements where the reference is finite (NaN and inf have
    been compared by position already): the "largest relative error" of a correct verdict."""
    got, expected = numpy.asarray(got, dtype=numpy.float64), numpy.asarray(expected, dtype=numpy.float64)
    finite = numpy.isfinite(expected)
    return relative_error(numpy.where(finite, got, 0.0), numpy.where(finite, expected, 0.0))


# --- where a learner stands -----------------------------------------------------------------------
DONE, STILL_WRONG, NOT_TRIED = "done", "wrong", "not tried"
STATE_OF = {CORRECT: DONE, WRONG: STILL_WRONG, NOT_IMPLEMENTED: NOT_TRIED}


class Progress(NamedTuple):
    """Every exercise of the course (or of one lesson) and where it stands in this session:
    done, wrong or not tried (never checked, or checked while not implemented). Printed as
    text; a notebook shows it as a table."""
    scope: str             # "the course", "lesson 4"
    rows: list             # [(number, title, state, checks given)]

    def counts(self):
        states = [state for _, _, state, _ in self.rows]
        return {state: states.count(state) for state in (DONE, STILL_WRONG, NOT_TRIED)}

    def summary(self):
        counts = self.counts()
        return (f"{self.scope.capitalize()}: {counts[DONE]} of {len(self.rows)} exercises done, "
                f"{counts[STILL_WRONG]} wrong, {counts[NOT_TRIED]} not tried.")

    def __str__(self):
        width = max((len(title) for _, title, _, _ in self.rows), default=0)
        lines = [f"  {number:<5} {title:<{width}}  {state}" + (f" ({checks} checks)" if checks > 1 else "")
                 for number, title, state, checks in self.rows]
        return "\n".join([self.summary(), *lines])

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        colour = {DONE: "#1a7f37", STILL_WRONG: "#cf222e", NOT_TRIED: "#57606a"}
        rows = "".join(f"<tr><td>{number}</td><td>{_html(title)}</td>"
                       f"<td style='color:{colour[state]}'>{state}</td><td>{checks or ''}</td></tr>"
                       for number, title, state, checks in self.rows)
        return (f"<p>{_html(self.summary())}</p><table><tr><th>exercise</th><th>title</th>"
                f"<th>state</th><th>checks</th></tr>{rows}</table>")


def _html(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
