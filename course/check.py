"""Checking a learner's exercise: ``check.exercise("1.2", div_backward)``.

Each lesson's module (``course/lessonN.py``) registers its exercises with
``@registers("N.M", "title")``; a registered checker is given the learner's function
and returns ``(status, message)``, built with the helpers below:

* ``forward_cases``: the learner's function against a reference implementation
  (the package's own), on named inputs;
* ``backward_cases``: the learner's backward against central differences of the
  forward (``minigrad.gradcheck.numerical_gradient``), in float64, with a random
  upstream gradient (not ones: a ones gradient hides swapped outputs).

The learner's NotImplementedError means "not implemented yet"; any other exception,
or a wrong value, is "wrong", with the input it happened on.
"""
import importlib
import pkgutil

import numpy

from minigrad.gradcheck import numerical_gradient
from .verdicts import CORRECT, NOT_IMPLEMENTED, WRONG, Verdict, compare, relative_error, report

EXERCISES = {}          # "N.M" -> (title, checker), filled in by the lessonN modules


def registers(number, title):
    """Decorator: ``checker(learner_function) -> (status, message)`` checks exercise ``number``."""
    def register(checker):
        EXERCISES[number] = (title, checker)
        return checker
    return register


def _load_exercises():
    """Import every ``lessonN`` module of this package (each registers its exercises)."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("lesson"):
            importlib.import_module(f"{__package__}.{module.name}")


def verdict(number, attempt):
    """The Verdict for exercise ``number`` given the learner's ``attempt`` (nothing printed)."""
    _load_exercises()
    if number not in EXERCISES:
        raise KeyError(f"no exercise {number!r}; there are {', '.join(sorted(EXERCISES))}")
    title, checker = EXERCISES[number]
    try:
        status, message = checker(attempt)
    except NotImplementedError:
        status, message = NOT_IMPLEMENTED, "Replace the `raise NotImplementedError` with your code."
    return Verdict(number, title, status, message)


def exercise(number, attempt):
    """Check exercise ``number``, print the verdict (strict mode: raise unless correct) and
    return it."""
    return report(verdict(number, attempt))


def hint(text):
    """A ``hints`` function that always adds ``text``: the usual mistake of an exercise."""
    return lambda *_: "Hint: " + text


def join(*parts):
    """The non-empty parts of a message, one space apart."""
    return " ".join(part.strip() for part in parts if part and part.strip())


def cases_text(count):
    return "the one case" if count == 1 else f"all {count} cases"


def _call(run, case):
    """``run()`` the learner's code; an exception other than NotImplementedError becomes the
    message of a wrong verdict, naming the case and its inputs."""
    try:
        return run(), None
    except NotImplementedError:
        raise
    except Exception as error:                  # the learner's code failed: say where
        return None, f"On {case} it raised {type(error).__name__}: {error}"


def as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def forward_cases(attempt, reference, cases, output_names=("output",), tolerance=1e-10, hints=None):
    """Compare ``attempt(*inputs)`` with ``reference(*inputs)`` on each named case.

    ``cases``: {case name: {input name: array}}. ``hints``: optional function
    (case, output name, got, expected) -> extra hint text for a known usual mistake.
    Case names say what the inputs are ("a (3, 4), b (4,)"): messages name the case.
    """
    worst = 0.0
    for case, inputs in cases.items():
        got, failure = _call(lambda: attempt(*inputs.values()), case)
        if failure:
            return WRONG, failure
        expected = as_tuple(reference(*inputs.values()))
        got = as_tuple(got)
        if len(got) != len(expected):
            return WRONG, f"On {case}: returned {len(got)} values, expected {len(expected)} ({', '.join(output_names)})"
        for name, g, e in zip(output_names, got, expected):
            problem = compare(name, g, numpy.asarray(e), tolerance)
            if problem:
                extra = hints(case, name, numpy.asarray(g), numpy.asarray(e)) if hints else ""
                return WRONG, join(f"On {case}: {problem}", extra)
            worst = max(worst, relative_error(numpy.asarray(g, dtype=float), numpy.asarray(e, dtype=float)))
    return CORRECT, (f"Matches the reference on {cases_text(len(cases))}; largest relative error "
                     f"{worst:.1e}.")


def backward_cases(forward, attempt, cases, tolerance=1e-6, seed=0, hints=None):
    """The learner's ``attempt(gy, cache)`` against central differences of ``forward``.

    ``forward(*inputs) -> (out, cache)`` is given (the lesson's own), or a dict giving
    each case its own forward; every input is checked, in float64, with a random
    upstream gradient ``gy``.
    """
    worst = 0.0
    rng = numpy.random.default_rng(seed)
    for case, inputs in cases.items():
        forward_of_case = forward[case] if isinstance(forward, dict) else forward
        inputs = {name: numpy.array(value, dtype=numpy.float64) for name, value in inputs.items()}
        out, cache = forward_of_case(*inputs.values())
        gy = rng.standard_normal(numpy.shape(out))
        grads, failure = _call(lambda: attempt(gy, cache), case)
        if failure:
            return WRONG, failure
        grads = as_tuple(grads)
        if len(grads) != len(inputs):
            return WRONG, f"On {case}: returned {len(grads)} gradients for {len(inputs)} inputs ({', '.join(inputs)})"
        for (name, x), g in zip(inputs.items(), grads):
            loss = lambda: float(numpy.sum(forward_of_case(*inputs.values())[0] * gy))
            expected = numerical_gradient(loss, x)
            problem = compare(f"the gradient of {name}", g, expected, tolerance)
            if problem:
                extra = hints(case, name, numpy.asarray(g), expected) if hints else ""
                return WRONG, join(f"On {case}: {problem}", extra)
            worst = max(worst, relative_error(numpy.asarray(g, dtype=float), expected))
    return CORRECT, (f"Agrees with central differences on {cases_text(len(cases))}; largest relative "
                     f"error {worst:.1e} (float64, eps 1e-6: about 1e-9 is as good as it gets).")
