"""Running the learner's code on the cases of an exercise, for the checkers of
``course/lessonN.py``:

* ``forward_cases``: the learner's function against a reference implementation
  (the package's own), on named inputs;
* ``backward_cases``: the learner's backward against central differences of the
  forward (``minigrad.gradcheck.numerical_gradient``), in float64, with a random
  upstream gradient (not ones: a ones gradient hides swapped outputs), its return
  read as the engine reads it (``engine_gradients``);
* ``count_cases``: a whole number (a count of parameters, multiply-adds) against a
  reference's, exactly.

All three compute every expected value first, from the checker's own copies; hand the
learner's function fresh copies, read-only (``guard.hand_over``); and call an answer
that changes its inputs wrong, with a verdict of its own. Every comparison fails
closed (``verdicts.compare``): structure, then shape, then dtype, then values.
"""
import warnings

import numpy

from minigrad import backend
from minigrad.autograd import Tensor
from minigrad.gradcheck import numerical_gradient
from .guard import READ_ONLY, exception_hint, first_change, hand_over, learners_line
from .verdicts import (CORRECT, RULE, WRONG, as_real_array, compare, dtype_problem, finite_error, precision_note,
                       sentence, shape_hint)


class Refused(Exception):
    """Raised by a checker's own code around the learner's function when the answer breaks a
    rule the engine enforces; its text becomes the verdict's message, after the case."""


class HintFailed(RuntimeWarning):
    """A checker's hint function raised: the verdict stands, without that hint."""


def join(*parts):
    """The non-empty parts of a message, one space apart, each but the last ending a sentence."""
    parts = [part.strip() for part in parts if part and part.strip()]
    return " ".join([sentence(part) for part in parts[:-1]] + parts[-1:])


def cases_text(count):
    return "the one case" if count == 1 else f"all {count} cases"


def as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


# --- running the learner's code -------------------------------------------------------------------
def run_learners_code(run, case, error_hint=""):
    """``run()`` the learner's code -> (its result, None), or (None, the message of a wrong
    verdict) when it raised an exception other than NotImplementedError (which goes on up):
    the message names the case, the line of the learner's code and what the error usually
    means (``error_hint``: text, or a function of the exception, for the exercise's usual
    cause)."""
    try:
        return run(), None
    except NotImplementedError:
        raise
    except Refused as refused:
        return None, f"On {case}: {refused}"
    except Exception as error:                  # the learner's code failed: say where and why
        where = learners_line(error)
        said = f"On {case} it raised {type(error).__name__}: {error}" + (f" {where}" if where else "")
        general = exception_hint(error)
        if general.endswith(READ_ONLY):
            return None, join(said, general)
        specific = error_hint(error) if callable(error_hint) else error_hint
        return None, join(said, general, specific)


def as_numpy(value):
    """A Tensor's array on the CPU; anything else as it is (the comparison says what it is)."""
    return backend.to_numpy(value.data) if isinstance(value, Tensor) else value


def changed_inputs(before, given, case, changed_hint=""):
    """The message when the learner's code changed one of the inputs it was handed, else None."""
    for name in before:
        change = first_change(before[name], given[name], name)
        if change:
            return join(f"On {case}: your function changed its input {name}: {change}.", changed_hint or
                        "Hint: leave the inputs as they are and return new arrays: the engine uses "
                        "inputs and caches again (a second backward, another op that shares them).")
    return None


def _hint(hints, case, name, got, expected):
    """``hints(case, name, got, expected)``, never crashing a verdict: a hint that fails is left out
    (with a HintFailed warning); NumPy's warnings about the learner's NaNs stay quiet."""
    if not hints:
        return ""
    try:
        with numpy.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return hints(case, name, got, expected) or ""
    except Exception as error:
        warnings.warn(f"a hint of this checker failed on {case} ({type(error).__name__}: {error}); "
                      f"the verdict stands without it", HintFailed)
        return ""


def _expected_values(reference, inputs, count):
    """The reference's outputs on its own copy of ``inputs``, as a tuple of ``count`` arrays."""
    values = reference(*hand_over(inputs, writable=True).values())
    values = values if isinstance(values, tuple) else (values,)
    if len(values) != count:
        raise ValueError(f"the reference returned {len(values)} values for {count} output names")
    return tuple(numpy.array(value) for value in values)


def _learners_values(got, output_names, case):
    """The learner's outputs as a tuple, one per output name, or what is wrong with the count. One
    output may be any array-like (a list, a number); several come as a tuple (or a list)."""
    if len(output_names) == 1:
        return ((got[0] if isinstance(got, tuple) and len(got) == 1 else got),), None
    if not isinstance(got, (tuple, list)) or len(got) != len(output_names):
        count = len(got) if isinstance(got, (tuple, list)) else 1
        return None, (f"On {case}: returned {count} value{'' if count == 1 else 's'}, expected "
                      f"{len(output_names)} ({', '.join(output_names)})")
    return tuple(got), None


def forward_cases(attempt, reference, cases, output_names=("output",), tolerance=1e-10, hints=None,
                  writable=(), changed_hint="", error_hint="", gradients_of=None):
    """Compare ``attempt(*inputs)`` with ``reference(*inputs)`` on each named case.

    ``cases``: {case name: {input name: value}}. Case names say what the inputs are ("a (3,
    4), b (4,)"): messages name the case. Every expected value is computed first; the learner's
    function gets copies, arrays read-only except the inputs named in ``writable``, which it may
    change if it puts them back (``changed_hint``: the hint when it does not). ``hints``:
    optional function (case, output name, got, expected) -> text for a wrong value ("Hint: ..."
    for a recognised mistake, shown at once; "The rule: ..." last, shown from the second wrong
    verdict on); ``got`` is a real NumPy array there, of any shape. ``error_hint``: text (or a
    function of the exception) added when the learner's code raises. ``gradients_of``: the names
    of the inputs when ``attempt`` is a backward (its return is then read as the engine reads it).
    """
    expected = {case: _expected_values(reference, inputs, len(output_names)) for case, inputs in cases.items()}
    worst = 0.0
    for case, inputs in cases.items():
        given = {name: hand_over(value, writable=name in writable) for name, value in inputs.items()}
        got, failure = run_learners_code(lambda: attempt(*given.values()), case, error_hint)
        if failure:
            return WRONG, failure
        problem = changed_inputs(inputs, given, case, changed_hint)
        if problem:
            return WRONG, problem
        if gradients_of:
            got, problem = engine_gradients(got, {name: e for name, e in zip(gradients_of, expected[case])})
            problem = problem and f"On {case}: {problem}"
        else:
            got, problem = _learners_values(got, output_names, case)
        if problem:
            return WRONG, problem
        for position, (name, g, e) in enumerate(zip(output_names, got, expected[case])):
            problem = gradient_problem(name, position, g, e, e, tolerance, label=name) if gradients_of else \
                compare(name, g, e, tolerance)
            if problem:
                return WRONG, join(f"On {case}: {problem}", _hint_on_array(hints, case, name, g, e))
            worst = max(worst, finite_error(g, e))
    return CORRECT, (f"Matches the reference on {cases_text(len(cases))}; largest relative error "
                     f"{worst:.1e}.")


def _hint_on_array(hints, case, name, got, expected):
    """The exercise's hint when ``got`` is a real array (its shape or values are off), else ""."""
    array, problem = as_real_array(name, got, numpy.asarray(expected).dtype.kind)
    if problem or dtype_problem(name, array, numpy.asarray(expected)):
        return ""
    return _hint(hints, case, name, array, expected)


# --- backward passes, as the engine reads them ----------------------------------------------------
def engine_gradients(returned, inputs):
    """(the gradients, None), one per input, read from what a backward returned as the engine
    reads it (``minigrad.autograd``: ``tuple(backward(gy, cache))``, extra entries must be
    None), or (None, what is wrong, in the engine's words). ``inputs``: {name: array}."""
    names, count = list(inputs), len(inputs)
    wanted = f"({', '.join(names)},)" if count == 1 else f"({', '.join(names)})"
    if isinstance(returned, numpy.ndarray) or backend.get_array_module(returned) is not numpy:
        shape = tuple(returned.shape)
        if not shape:
            engine = "TypeError: iteration over a 0-d array"
        elif shape[0] != count:
            engine = f"returned {shape[0]} gradients for {count} inputs"
        else:
            engine = (f"returned a gradient of shape {shape[1:]} for input 0 of shape "
                      f"{numpy.shape(inputs[names[0]])}")
        return None, (f"returned a bare array of shape {shape}, not a tuple of gradients: the engine "
                      f"reads an array as the sequence of its rows and stops (\"{engine}\"). Return a "
                      f"tuple, one gradient per input: {wanted}.")
    try:
        grads = tuple(returned)
    except TypeError as error:
        return None, (f"returned {returned!r:.60}, not a tuple of gradients: the engine stops there "
                      f"(TypeError: {error}). Return {wanted}.")
    if len(grads) < count or any(g is not None for g in grads[count:]):
        return None, f"returned {len(grads)} gradients for {count} inputs ({', '.join(names)})"
    return grads[:count], None


def gradient_problem(name, position, got, expected, x, tolerance, label=None):
    """What is wrong with the gradient ``got`` of input ``name`` (input number ``position``,
    the array ``x``), checked as the engine checks it, then against ``expected``; else None.
    ``label``: what the message calls the gradient ("the gradient of x" by default)."""
    label = label or f"the gradient of {name}"
    if got is None:
        return (f"{label} is None, expected an array of shape {numpy.shape(x)} (the engine would "
                f"give {name} no gradient).")
    if not hasattr(got, "shape") or not hasattr(got, "dtype"):
        return (f"{label} is a {type(got).__name__}, not an array: the engine reads a gradient's "
                f".shape and .dtype (numpy.asarray(...) makes one).")
    array, problem = as_real_array(label, got)
    if problem:
        return problem
    if array.shape != numpy.shape(x):
        return f"{label} has shape {array.shape}, expected {numpy.shape(x)}. {shape_hint(array.shape, numpy.shape(x))}"
    if array.dtype != x.dtype:
        return join(f"{label} is {array.dtype} for an input of dtype {x.dtype}: a backward must keep "
                    f"its input's dtype (the engine stops there: \"returned a {array.dtype} gradient "
                    f"for input {position} of dtype {x.dtype}\"). Make new arrays with the dtype of "
                    f"gy or of the cache's arrays.", precision_note(array, expected))
    return compare(label, array, expected, tolerance)


def backward_cases(forward, attempt, cases, tolerance=1e-6, seed=0, hints=None):
    """The learner's ``attempt(gy, cache)`` against central differences of ``forward``.

    ``forward(*inputs) -> (out, cache)`` is given (the lesson's own), or a dict giving
    each case its own forward; every input is checked, in float64, with a random
    upstream gradient ``gy``. The return is read as the engine reads it: a tuple (or
    list) of one gradient per input, each an array of its input's shape and dtype.
    """
    rng = numpy.random.default_rng(seed)
    prepared = {case: _backward_case(forward[case] if isinstance(forward, dict) else forward, inputs, rng)
                for case, inputs in cases.items()}
    worst = 0.0
    for case, (inputs, handed, expected) in prepared.items():
        given = hand_over(handed)
        returned, failure = run_learners_code(lambda: attempt(given["gy"], given["cache"]), case)
        if failure:
            return WRONG, failure
        problem = changed_inputs(handed, given, case)
        if problem:
            return WRONG, problem
        grads, problem = engine_gradients(returned, inputs)
        if problem:
            return WRONG, f"On {case}: {problem}"
        for position, ((name, x), g) in enumerate(zip(inputs.items(), grads)):
            problem = gradient_problem(name, position, g, expected[name], x, tolerance)
            if problem:
                return WRONG, join(f"On {case}: {problem}", _hint_on_array(hints, case, name, g, expected[name]))
            worst = max(worst, finite_error(g, expected[name]))
    return CORRECT, (f"Agrees with central differences on {cases_text(len(cases))}; largest relative "
                     f"error {worst:.1e} (float64, eps 1e-6: about 1e-9 is as good as it gets).")


def _backward_case(forward, inputs, rng):
    """(inputs in float64, {"gy": the upstream gradient, "cache": the forward's cache}, the
    central-difference gradient of every input), all before the learner's code runs."""
    inputs = {name: numpy.array(value, dtype=numpy.float64) for name, value in inputs.items()}
    out, cache = forward(*hand_over(inputs, writable=True).values())
    gy = rng.standard_normal(numpy.shape(out))
    loss = lambda: float(numpy.sum(forward(*inputs.values())[0] * gy))
    expected = {name: numerical_gradient(loss, x) for name, x in inputs.items()}
    return inputs, {"gy": gy, "cache": cache}, expected


# --- counts ---------------------------------------------------------------------------------------
def one_number(got):
    """(the number, None) when ``got`` is one real number, else (None, why not)."""
    array, problem = as_real_array("it", got, "i")
    if problem:
        return None, problem
    if array.shape != ():
        return None, f"it has shape {array.shape}"
    return array.item(), None


def learners_numbers(attempt, cases, expected, what):
    """Run the learner's ``attempt`` on a copy of each named case's inputs and read one
    number from each. Returns ({case: number}, None), or (None, the first failure in words):
    an exception, inputs changed, or an answer that is not one real number."""
    values = {}
    for case, inputs in cases.items():
        given = {name: hand_over(value) for name, value in inputs.items()}
        got, failure = run_learners_code(lambda: attempt(*given.values()), case)
        if failure:
            return None, failure
        problem = changed_inputs(inputs, given, case)
        if problem:
            return None, problem
        values[case], problem = one_number(got)
        if problem:
            right = f"{expected[case]:,}" if isinstance(expected[case], int) else f"{expected[case]:,.10g}"
            unit = f" {what}" if what else ""
            return None, f"On {case}: returned {got!r:.80}, expected one number ({right}{unit}): {problem}"
    return values, None


def count_cases(attempt, reference, cases, what, mistakes, usual):
    """Compare a count (one whole number) with the reference's, exactly, on each named case.

    ``mistakes(**inputs)``: {the value a usual mistake gives: what that mistake is} (the
    nudge); ``usual``: the rule. (forward_cases compares arrays; for a single count,
    "element []" and a float printout would only get in the way.)
    """
    expected = {case: int(reference(*hand_over(inputs, writable=True).values())) for case, inputs in cases.items()}
    values, failure = learners_numbers(attempt, cases, expected, what)
    if failure:
        return WRONG, failure
    for case, inputs in cases.items():
        value, right = values[case], expected[case]
        if not value == right:
            error = abs(value - right) / max(abs(value) + abs(right), 1e-300)
            known = mistakes(**inputs).get(value)
            ratio = f", got / expected = {value / right:.6g}" if right else ""
            return WRONG, join(f"On {case}: got {value:,} {what}, expected {right:,} (relative error "
                               f"{error:.1e}{ratio}).",
                               f"Hint: {known}" if known else "", f"{RULE} {usual}")
    return CORRECT, f"Matches the package's count exactly on {cases_text(len(cases))}."
