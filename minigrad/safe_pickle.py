"""Unpickling a data file without letting it run code: ``load_data(content)``.

A pickle is a small program: its GLOBAL/STACK_GLOBAL instructions import any function
by name and REDUCE calls it, so ``pickle.load`` on a hostile file can run ``os.system``.
``load_data`` first checks the sizes the file announces (``check_pickle_sizes``), then
unpickles it with ``SafeUnpickler``, which gives the few names that bytes and NumPy
arrays of numbers need (``PICKLE_NAMES``, each a stand-in that checks its arguments)
and refuses every other. Anything malformed raises one of ``UNPICKLING_ERRORS``.
CIFAR-10's python batches are read this way (``minigrad.data.read_cifar_batch``).
"""
import importlib
import io
import math
import pickle
import pickletools

import numpy


def load_data(content):
    """The plain data (dicts, lists, bytes, numbers, arrays of numbers) pickled in ``content``.
    Python 2 strings come back as bytes (``encoding="bytes"``)."""
    check_pickle_sizes(content)
    return SafeUnpickler(io.BytesIO(content), encoding="bytes").load()


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can build plain data and NumPy arrays of numbers, and nothing else.

    A pickle is a small program: its GLOBAL/STACK_GLOBAL instructions import any
    function by name and REDUCE calls it, so ``pickle.load`` on a hostile file can
    run ``os.system``. Every import goes through ``find_class``; this one gives the
    few names that bytes and NumPy arrays need (``PICKLE_NAMES``) and refuses all
    others. Dicts, lists, bytes, strings and numbers need no import at all.

    Each allowed name is a stand-in that checks its arguments before it calls NumPy,
    since a pickle passes whatever the file says: ``numpy.ndarray((2**40,))`` would
    reserve a terabyte, and NumPy's own dtype takes its flags from the file.

    The official CIFAR-10 batches were written by Python 2's cPickle: a dict of
    byte-string keys, ``b"data"`` a (10000, 3072) uint8 array stored with
    ``numpy.core.multiarray._reconstruct`` (``numpy._core`` since NumPy 2), and
    ``b"labels"`` a list of ints. Python 2 strings are read as bytes
    (``encoding="bytes"``).
    """
    def find_class(self, module, name):
        if (module, name) not in PICKLE_NAMES:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data "
                                         f"and NumPy arrays are allowed in a data file")
        return PICKLE_NAMES[(module, name)]


def _numpy_core(module, name):
    """``numpy._core.<module>.<name>`` (NumPy 2), or ``numpy.core``'s (NumPy 1.x)."""
    try:
        return getattr(importlib.import_module(f"numpy._core.{module}"), name)
    except ImportError:
        return getattr(importlib.import_module(f"numpy.core.{module}"), name)


def _text(value):
    """Python 2's str arrives as bytes (``encoding="bytes"``): as text again."""
    return value.decode("ascii") if isinstance(value, bytes) else value


class _PickledDtype:
    """``numpy.dtype`` inside a data file: a number type and its byte order, nothing else.

    NumPy pickles a dtype as dtype("u1", False, True), then a BUILD step hands the new
    object a state tuple (version, byte order, subarray, names, fields, item size,
    alignment, flags). NumPy's own dtype takes all of it: the flags can make uint8
    claim to hold Python objects (NumPy would then read the file's bytes as pointers),
    and a datetime given fields crashes NumPy. This keeps the name, which must be a
    number type, and the byte order; ``dtype`` is the real dtype made from the two.
    """
    def __init__(self, name, *align_and_copy):
        name = _text(name)
        if not isinstance(name, str):
            raise pickle.UnpicklingError("numpy.dtype takes a type's name in a data file")
        self.dtype = numpy.dtype(name)
        if self.dtype.hasobject:
            raise pickle.UnpicklingError("refusing an array of Python objects")
        if self.dtype.kind not in "biufc":
            raise pickle.UnpicklingError(f"refusing dtype {self.dtype}: a data file holds "
                                         f"arrays of numbers only")

    def __setstate__(self, state):
        byte_order = _text(state[1])
        if byte_order not in ("<", ">", "=", "|"):
            raise pickle.UnpicklingError(f"{byte_order!r} is not a byte order")
        self.dtype = self.dtype.newbyteorder(byte_order)


def _array_bytes(shape, dtype):
    """The size in bytes of an array of ``shape`` and ``dtype`` (a NumPy shape: at most 64
    sizes, each below 2**63, so the product is quick to compute)."""
    if not (isinstance(shape, tuple) and len(shape) <= 64
            and all(isinstance(n, int) and 0 <= n < 2 ** 63 for n in shape)):
        raise pickle.UnpicklingError("an array's shape must be a tuple of sizes")
    return math.prod(shape) * dtype.itemsize


class _PickledArray(numpy.ndarray):
    """An array as NumPy's pickles build it below protocol 5: ``_empty_array`` makes it,
    then BUILD fills it through ``__setstate__`` with (version, shape, dtype, Fortran
    order, data). The dtype must be a _PickledDtype and the data bytes of exactly the
    shape's size (NumPy's own would take a list, for an object dtype)."""
    def __setstate__(self, state):
        *version, shape, dtype, fortran_order, data = state
        if not isinstance(dtype, _PickledDtype) or not isinstance(data, bytes):
            raise pickle.UnpicklingError("an array's state must hold a numpy.dtype and its data as bytes")
        if _array_bytes(shape, dtype.dtype) != len(data):
            raise pickle.UnpicklingError(f"{len(data)} bytes cannot fill an array of shape {shape} "
                                         f"{dtype.dtype}")
        super().__setstate__((*version, shape, dtype.dtype, fortran_order, data))


# numpy.ndarray inside a data file: only ever _empty_array's first argument. The class
# itself would let a pickle call numpy.ndarray((2**40,)) and reserve a terabyte.
_NDARRAY = object()


def _empty_array(array_class, shape, typecode):
    """NumPy's ``_reconstruct``, which its pickles call as _reconstruct(ndarray, (0,), b"b")
    for an empty array that BUILD fills (``typecode`` is a placeholder: BUILD brings the
    dtype). Any other shape would reserve memory before the data is seen."""
    if array_class is not _NDARRAY or shape != (0,):
        raise pickle.UnpicklingError("_reconstruct makes empty arrays only")
    return _numpy_core("multiarray", "_reconstruct")(_PickledArray, (0,), b"b")


def _array_from_buffer(buffer, dtype, shape, order, *axis_order):
    """NumPy's ``_frombuffer`` (protocol 5): an array over bytes the file holds, reshaped,
    so no larger than they are; the dtype must be a _PickledDtype."""
    if not isinstance(dtype, _PickledDtype):
        raise pickle.UnpicklingError("_frombuffer needs a numpy.dtype")
    return _numpy_core("numeric", "_frombuffer")(buffer, dtype.dtype, shape, order, *axis_order)


def _latin1_bytes(text, encoding):
    """``_codecs.encode(text, "latin1")``: how Python 3 pickles bytes below protocol 3
    (byte n as character n). Other codecs are refused: some compress, some expand."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode(..., {encoding!r}): bytes are "
                                     f"written with latin1")
    return text.encode("latin1")


def _empty_bytes():
    """``bytes()``: how Python 3 pickles b"" below protocol 3. With an argument n,
    bytes(n) would make n zero bytes, so none is taken."""
    return b""


# Every name a data file may import, and the stand-in it gets (each checks its arguments).
PICKLE_NAMES = {
    # arrays below protocol 5: _reconstruct(ndarray, (0,), b"b"), then BUILD with the data
    ("numpy.core.multiarray", "_reconstruct"): _empty_array,     # as NumPy 1.x (and CIFAR) wrote it
    ("numpy._core.multiarray", "_reconstruct"): _empty_array,    # as NumPy 2 writes it
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _PickledDtype,
    # arrays at protocol 5: _frombuffer(data, dtype, shape, order)
    ("numpy.core.numeric", "_frombuffer"): _array_from_buffer,
    ("numpy._core.numeric", "_frombuffer"): _array_from_buffer,
    # bytes below protocol 3; "__builtin__" is Python 2's name, which those protocols use
    ("_codecs", "encode"): _latin1_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
}

# What a malformed pickle makes the unpickler (or pickletools) raise: UnpicklingError
# (an unknown instruction, a refused name, data cut short), EOFError (no STOP), and from
# the calls it makes with the file's arguments ValueError, TypeError, OverflowError (a
# number too large for C), AttributeError, IndexError and KeyError (a BUILD on the wrong
# object, a memo slot never filled).
UNPICKLING_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, OverflowError,
                     AttributeError, IndexError, KeyError)


def check_pickle_sizes(content):
    """Refuse a pickle that announces more than it holds, before the unpickler runs.

    Pickle's C unpickler reserves what a file announces before reading it: an 11-byte
    file announcing a 2**60-byte string is a MemoryError, and one storing into memo
    slot 2**27 grows the memo table to 2**28 slots (2 GiB). ``pickletools.genops``
    walks the instructions without building anything and fails on a string whose
    length runs past the end of the data. Frames and memo slots are checked here: a frame must fit in the
    file, and picklers number memo slots from 0 (or 1) as they go, so a slot is never
    above the number of instructions read so far.
    """
    for count, (opcode, arg, _) in enumerate(pickletools.genops(content)):
        if opcode.name == "FRAME" and arg > len(content):
            raise pickle.UnpicklingError(f"a frame of {arg} bytes in a {len(content)}-byte file")
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and arg > count:
            raise pickle.UnpicklingError(f"memo slot {arg} after only {count} instructions")
