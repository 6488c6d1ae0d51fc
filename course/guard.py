"""Keeping the learner's code away from what the checker knows.

A checker computes every expected value first, from its own copies of the inputs.
Then it hands the learner's function fresh copies (``hand_over``: every NumPy array
in them read-only, unless the exercise must write into it), and after the call it
compares what it handed over with its own copies (``first_change``). An answer that
changes its inputs is wrong, with a verdict of its own, even when its values are
right: the engine reuses inputs and caches (a second backward, two ops sharing an
input), and a checker that looked at them afterwards could be fooled.

``exception_hint`` turns the learner's exception into a hint: the line of their code
it came from, and for NumPy's shape errors what did not fit and the usual cause.
"""
import copy
import math
import os
import re
import sys
import traceback

import numpy

import minigrad
from minigrad.autograd import Tensor
from minigrad.nn import Module


def arrays_in(value):
    """Every NumPy array inside ``value``: in tuples, lists and dicts, a Tensor's data and
    gradient, a Module's parameters and buffers."""
    if isinstance(value, numpy.ndarray):
        yield value
    elif isinstance(value, Tensor):
        yield from arrays_in(value.data)
        yield from arrays_in(value.grad)
    elif isinstance(value, Module):
        for parameter in value.parameters():
            yield from arrays_in(parameter)
        for _, buffer in value.named_buffers():
            yield from arrays_in(buffer)
    elif isinstance(value, dict):
        for item in value.values():
            yield from arrays_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from arrays_in(item)


def hand_over(value, writable=False):
    """A deep copy of ``value`` for the learner's code; its arrays read-only unless
    ``writable`` (the original stays the checker's, to compare with afterwards)."""
    given = copy.deepcopy(value)
    if not writable:
        for array in arrays_in(given):
            array.flags.writeable = False
    return given


def first_change(before, after, name):
    """None when ``after`` (what the learner was handed) still equals ``before`` (the
    checker's copy), else the first difference in words: "gy[0, 2] is now 0.0, it was -0.31"."""
    if isinstance(before, numpy.ndarray):
        return _array_change(before, after, name)
    if isinstance(before, Tensor):
        if after.requires_grad != before.requires_grad:
            return f"{name}.requires_grad is now {after.requires_grad}, it was {before.requires_grad}"
        return first_change(before.data, after.data, f"{name}.data") or \
            first_change(before.grad, after.grad, f"{name}.grad")
    if isinstance(before, Module):
        if after.training != before.training:
            return f"{name} is now in {'training' if after.training else 'evaluation'} mode"
        return first_change(before.state_dict(), after.state_dict(), f"{name}'s state")
    if isinstance(before, (list, tuple)):
        if type(after) is not type(before) or len(after) != len(before):
            return f"{name} is now {_describe(after)}, it was {_describe(before)}"
        for i, (b, a) in enumerate(zip(before, after)):
            change = first_change(b, a, f"{name}[{i}]")
            if change:
                return change
        return None
    if isinstance(before, dict):
        if not isinstance(after, dict) or list(after) != list(before):
            return f"{name} is now {_describe(after)}, it was {_describe(before)}"
        for key in before:
            change = first_change(before[key], after[key], f"{name}[{key!r}]")
            if change:
                return change
        return None
    if before is None or isinstance(before, (bool, int, float, complex, str, numpy.generic)):
        if type(after) is not type(before) or not _same(before, after):
            return f"{name} is now {_describe(after)}, it was {_describe(before)}"
    return None


def _array_change(before, after, name):
    if not isinstance(after, numpy.ndarray):
        return f"{name} is now {_describe(after)}, it was {_describe(before)}"
    if after.shape != before.shape or after.dtype != before.dtype:
        return f"{name} is now {_describe(after)}, it was {_describe(before)}"
    same = after == before
    if before.dtype.kind in "fc":
        same |= numpy.isnan(after) & numpy.isnan(before)
    if numpy.all(same):
        return None
    where = tuple(int(i) for i in numpy.argwhere(~same)[0])
    element = f"{name}[{', '.join(map(str, where))}]" if where else name
    return f"{element} is now {after[where].item()!r}, it was {before[where].item()!r}"


def _same(before, after):
    return before == after or (isinstance(before, float) and math.isnan(before) and math.isnan(after))


def _describe(value):
    if isinstance(value, numpy.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, (list, tuple, dict)):
        count = len(value)
        return f"a {type(value).__name__} of {count} item{'' if count == 1 else 's'}"
    if value is None or isinstance(value, (bool, int, float, complex, str, numpy.generic)):
        return repr(value)
    return f"a {type(value).__name__}"


# --- the learner's exception, as a hint -----------------------------------------------------------
_NOT_THE_LEARNERS = tuple(os.path.dirname(module.__file__) for module in (numpy, minigrad)) + \
    (os.path.dirname(os.path.abspath(__file__)), sys.prefix, sys.base_prefix)

READ_ONLY = ("Your function writes into an array it was given (the checker hands over read-only "
             "copies: inputs and caches must stay as they are, the engine may use them again). "
             "Compute a new array and return it (out = a * b, not a *= b).")


def learners_line(error):
    """"at line 7 of im2col: cols[:, :, k] = patch" for the last line of the learner's own code
    in the traceback ("" when there is none)."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not os.path.abspath(frame.filename).startswith(_NOT_THE_LEARNERS)]
    if not frames:
        return ""
    frame = frames[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return f"(at line {frame.lineno} of {frame.name}{code})"


def _shapes(text):
    return [tuple(int(n) for n in re.findall(r"\d+", group)) for group in re.findall(r"\(([\d,\s]*)\)", text)]


def exception_hint(error):
    """A hint for an exception the learner's code raised: what did not fit, and the usual cause."""
    text = str(error)
    if isinstance(error, ValueError) and "read-only" in text:
        return "Hint: " + READ_ONLY
    if "could not broadcast input array from shape" in text:
        got, room = (_shapes(text) + [(), ()])[:2]
        return (f"Hint: an array of shape {got} went into a place of shape {room}: a slice one too long "
                f"or too short (x[i:i + K] holds K elements, the end is excluded), or an axis out of place?")
    if "could not be broadcast together" in text:
        shapes = " and ".join(map(str, _shapes(text.split("shapes", 1)[-1])))
        return (f"Hint: arrays of shapes {shapes} met in one operation and NumPy cannot line them up "
                f"(it matches shapes from the right): a transposed factor, a missing keepdims or "
                f"reshape, or a slice of the wrong length?")
    if "cannot reshape array of size" in text:
        size = int(re.search(r"size (\d+)", text).group(1))
        shape = _shapes(text)[-1] if _shapes(text) else ()
        return (f"Hint: {size} numbers cannot fill the shape {shape} ({math.prod(shape)} numbers): the "
                f"array you reshape has the wrong size (a window or slice one too long or too short?).")
    if "mismatch in its core dimension" in text or "shapes" in text and "not aligned" in text:
        return ("Hint: the inner sizes of a matrix product must agree, (n, k) @ (k, m): a factor "
                "transposed, or on the wrong side of the @?")
    if isinstance(error, IndexError) and "out of bounds" in text:
        return "Hint: an index past the end of an axis: an off-by-one in a range or a slice?"
    return ""
