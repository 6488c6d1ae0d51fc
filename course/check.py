"""Checking a learner's exercise: ``check.exercise("1.2", div_backward)``.

Each lesson's module (``course/lessonN.py``) registers its exercises with
``@registers("N.M", "title", rule="the formula")``; a registered checker is given the
learner's function and returns ``(status, message)``, built with the helpers of
``course/cases.py`` (``forward_cases``, ``backward_cases``, ``count_cases``).

The learner's NotImplementedError means "not implemented yet" (naming another exercise
when the learner's code calls that one's unfinished function); any other exception, or
a wrong value, is "wrong", with the input it happened on.

In a notebook, ``check.exercise`` gives hints in tiers: the first wrong verdict on an
exercise is a nudge (what is off, where, and the usual mistake when it is recognised),
the second and later ones add the rule (the formula), which ``check.hint("N.M")``
prints at any time. ``check.progress()`` (or ``check.progress(4)``) lists the exercises
done, wrong and not tried in this session.
"""
import importlib
import pkgutil
import re

from .verdicts import (NOT_IMPLEMENTED, NOT_TRIED, RULE, STATE_OF, WRONG, Progress, Verdict, report, rule_of,
                       with_rule)

EXERCISES = {}          # "N.M" -> (title, checker), filled in by the lessonN modules
RULES = {}              # "N.M" -> the exercise's rule, for check.hint and the second wrong verdict
GIVEN = {}              # "N.M" -> the verdicts check.exercise gave in this session, in order
NUMBER = re.compile(r"\d+\.\d+")


def registers(number, title, rule=None):
    """Decorator: ``checker(learner_function) -> (status, message)`` checks exercise ``number``;
    ``rule``: the exercise's rule (the formula), shown from the second wrong verdict on."""
    def register(checker):
        EXERCISES[number] = (title, checker)
        if rule:
            RULES[number] = rule
        return checker
    return register


def _load_exercises():
    """Import every ``lessonN`` module of this package (each registers its exercises)."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("lesson"):
            importlib.import_module(f"{__package__}.{module.name}")


def _exercise(number):
    _load_exercises()
    if number not in EXERCISES:
        raise KeyError(f"no exercise {number!r}; there are {', '.join(sorted(EXERCISES, key=_order))}")
    return EXERCISES[number]


def _order(number):
    return tuple(int(part) for part in number.split("."))


def verdict(number, attempt, tier=2):
    """The Verdict for exercise ``number`` given the learner's ``attempt`` (nothing printed,
    nothing recorded). ``tier`` 2 says all the checker knows, the rule included; tier 1 is the
    nudge, without the rule."""
    title, checker = _exercise(number)
    try:
        status, message = checker(attempt)
    except NotImplementedError as missing:
        return _not_implemented(number, title, missing)
    if status != WRONG:
        return Verdict(number, title, status, message)
    message = with_rule(message, RULES.get(number, ""))
    given = Verdict(number, title, status, message, rule_of(message))
    return given.nudge() if tier == 1 else given


def _not_implemented(number, title, missing):
    """Not implemented yet: this exercise, or another one whose function the learner's calls
    (its NotImplementedError says "exercise 6.1: ..."): then the verdict names that one."""
    named = re.match(r"exercise (\d+\.\d+)\b", str(missing))
    other = named.group(1) if named else number
    if other != number and other in EXERCISES:
        return Verdict(number, title, NOT_IMPLEMENTED,
                       f"NotImplementedError: {missing}. Do exercise {other} first, then check {number} again.",
                       blocked_by=f"{other} ({EXERCISES[other][0]})")
    return Verdict(number, title, NOT_IMPLEMENTED, "Replace the `raise NotImplementedError` with your code.")


def exercise(number, attempt):
    """Check exercise ``number``, print the verdict (strict mode: raise unless correct), record it
    for ``progress`` and ``hint``, and return it. The first wrong verdict on an exercise is a
    nudge; from the second on, the rule comes with it."""
    wrong_so_far = sum(given.status == WRONG for given in GIVEN.get(number, []))
    given = verdict(number, attempt, tier=1 if wrong_so_far == 0 else 2)
    GIVEN.setdefault(number, []).append(given)
    return report(given)


def hint(exercise_or_rule):
    """``check.hint("4.3")`` in a notebook prints the rule of exercise 4.3: of what was wrong at
    its last wrong verdict, or the exercise's rule. ``hint(text)`` in a checker is a ``hints``
    function that gives ``text`` as the rule of every wrong verdict (``registers(..., rule=text)``
    does the same for a whole exercise)."""
    text = str(exercise_or_rule).strip()
    if NUMBER.fullmatch(text):
        print(rule_for(text))
        return None
    return rule(text)


def rule(text):
    """A ``hints`` function that gives ``text`` as the rule (the second tier) of a wrong verdict."""
    return lambda *_: f"{RULE} {text}"


def rule_for(number):
    """The text ``check.hint(number)`` prints."""
    title, _ = _exercise(number)
    wrong = [given for given in GIVEN.get(number, []) if given.status == WRONG and given.rule]
    text = wrong[-1].rule if wrong else RULES.get(number)
    if not text:
        return f"Exercise {number} ({title}): no rule is written down for it; its verdicts say what is off."
    return f"Exercise {number} ({title}). {RULE} {text}"


def progress(lesson=None):
    """Where each exercise of the course (or of lesson ``lesson``) stands in this session:
    done, wrong or not tried, as its last verdict from ``check.exercise`` says."""
    _load_exercises()
    numbers = sorted(EXERCISES, key=_order)
    scope = "the course"
    if lesson is not None:
        numbers = [number for number in numbers if number.split(".")[0] == str(lesson)]
        if not numbers:
            lessons = sorted({number.split(".")[0] for number in EXERCISES}, key=int)
            raise ValueError(f"progress: no lesson {lesson!r}; the lessons are {', '.join(lessons)}")
        scope = f"lesson {lesson}"
    rows = []
    for number in numbers:
        given = GIVEN.get(number, [])
        state = STATE_OF[given[-1].status] if given else NOT_TRIED
        rows.append((number, EXERCISES[number][0], state, len(given)))
    return Progress(scope, rows)
