"""Checkpoints: weights, optimizer state, progress and settings in one ``.npz`` file.

An ``.npz`` is a zip of ``.npy`` arrays. Everything here is an array or text, written
and read with ``allow_pickle=False``: loading a checkpoint never runs code, and the
sizes a file declares are checked against the bytes it holds before they are used.
Inside, names are grouped by a prefix:

    model/<parameter name>      the weights, e.g. model/conv1.weight
    optimizer/<entry>           e.g. optimizer/velocity.3, optimizer/steps
    average/<entry>             the running average of the weights (if kept)
    progress/<entry>            where training stopped (epoch, step, running sums)
    config                      the settings, as JSON text
    format                      "minigrad-checkpoint", the format's name and version

A checkpoint is written to a temporary file in the same folder and then renamed
over the old one (``os.replace`` is atomic): if the program dies while writing,
the last good checkpoint is still there, whole.
"""
import contextlib
import io
import json
import math
import os
import tempfile
import zipfile

import numpy
import numpy.lib.format as npy

FORMAT = "minigrad-checkpoint 1"
SECTIONS = ("model", "optimizer", "average", "progress")


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, or does not fit the model."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success, rename it to ``path``.

    On any error (or Ctrl-C) the temporary file is removed and ``path`` is untouched.
    The temporary name keeps ``path``'s suffix, so writers that look at it (PNG) work.
    """
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    handle, temporary = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o644)          # mkstemp makes it private (0600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


# The dtype kinds a checkpoint holds: booleans, numbers and fixed-width text, which
# ``.npy`` stores as raw bytes. Anything else (an object array: None, a dict, a list of
# lists; NumPy 2's variable-width strings, kind "T") numpy.savez would pickle.
PLAIN_KINDS = "biufcSU"


def plain_array(key, value):
    """``value`` as an array a checkpoint can hold, or a CheckpointError naming ``key``."""
    try:
        array = numpy.asarray(value)
    except (ValueError, TypeError) as error:      # e.g. a ragged list of lists
        raise CheckpointError(f"cannot save {key!r}: {error}") from None
    if array.dtype.kind not in PLAIN_KINDS:
        raise CheckpointError(f"cannot save {key!r}: a {type(value).__name__} becomes an array of "
                              f"dtype {array.dtype}, which only a pickle could hold; a checkpoint "
                              f"holds numbers, booleans and text")
    return array


def save_checkpoint(path, model, optimizer=None, average=None, progress=None, config=None):
    """Write a checkpoint. ``model`` .. ``progress`` are dicts of arrays (``state_dict()``
    results); ``config`` a JSON-serializable dict. Every value is checked before anything
    is written: one that cannot be stored leaves the old checkpoint as it was."""
    arrays = {"format": numpy.array(FORMAT), "config": numpy.array(json.dumps(config or {}))}
    for section, state in zip(SECTIONS, (model, optimizer, average, progress)):
        for name, value in (state or {}).items():
            key = f"{section}/{name}"
            arrays[key] = plain_array(key, value)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            write_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())
    return path


def write_npz(file, arrays):
    """What ``numpy.savez`` writes (a zip of uncompressed ``.npy`` entries), with pickles
    refused as a second guard: savez has its own ``allow_pickle`` only since NumPy 2.2,
    and before that would store the switch as one more array."""
    with zipfile.ZipFile(file, "w") as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as entry:
                npy.write_array(entry, array, allow_pickle=False)


# What a damaged or foreign file makes the readers below raise: zipfile (not a zip,
# or a zip whose directory does not add up), RuntimeError from zipfile for an
# encrypted entry, ValueError from numpy.lib.format (a header that does not parse)
# and from read_npz's own checks.
UNREADABLE = (zipfile.BadZipFile, RuntimeError, ValueError, EOFError, OSError)


def load_checkpoint(path):
    """Read a checkpoint -> dict with "config" (a dict) and one dict of arrays per section."""
    try:
        with open(path, "rb") as file:
            arrays = read_npz(file)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path!r} does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file") from None
    except UNREADABLE as error:
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({error})") from None
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise CheckpointError(f"{path}: not a minigrad checkpoint (no {FORMAT!r} marker)")
    try:
        config = json.loads(str(arrays.pop("config")))
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: the config entry is missing or not JSON ({error})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the config entry is not a JSON object but {type(config).__name__}")
    checkpoint = {"config": config, **{section: {} for section in SECTIONS}}
    for name, value in arrays.items():
        section, _, key = name.partition("/")
        if section in SECTIONS:
            checkpoint[section][key] = value
    return checkpoint


def read_npz(file):
    """{name: array} from an open ``.npz`` file, as ``numpy.load`` reads it, but without
    trusting the sizes the file declares.

    numpy.load reserves the memory an entry's header announces before reading the
    entry: a damaged header can ask for terabytes. Here each entry must be stored
    uncompressed (as write_npz writes it), within the file, and its header must
    announce exactly the bytes that follow it; only then is it read.
    """
    if file.read(len(npy.MAGIC_PREFIX)) == npy.MAGIC_PREFIX:
        raise ValueError("it holds a single .npy array, not an .npz archive of them")
    file_size = os.fstat(file.fileno()).st_size
    with zipfile.ZipFile(file) as archive:
        return {entry.filename.removesuffix(".npy"): read_npy_entry(archive, entry, file_size)
                for entry in archive.infolist()}


NPY_HEADER_READERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}


def read_npy_entry(archive, entry, file_size):
    """One ``.npy`` entry of a zip -> its array, every size checked before it is used."""
    name = entry.filename
    if entry.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{name} is compressed (zip method {entry.compress_type}); "
                         f"write_npz stores entries as they are")
    if entry.compress_size > file_size:
        raise ValueError(f"{name} announces {entry.compress_size} bytes, more than the whole file holds")
    data = archive.read(entry)                     # reads only the bytes that are there
    stream = io.BytesIO(data)
    try:
        version = npy.read_magic(stream)
    except ValueError as error:
        raise ValueError(f"{name} is not a .npy array ({error})") from None
    if version not in NPY_HEADER_READERS:
        raise ValueError(f"{name}: .npy format version {version} is not one write_npz writes")
    shape, _, dtype = NPY_HEADER_READERS[version](stream)
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects (a pickle), which a checkpoint never does")
    announced, present = math.prod(shape) * dtype.itemsize, len(data) - stream.tell()
    if announced != present:
        raise ValueError(f"{name}: its header announces {shape} {dtype} ({announced} bytes), "
                         f"the entry holds {present}")
    stream.seek(0)
    return npy.read_array(stream, allow_pickle=False)


def check_state(expected, found, source="checkpoint"):
    """Raise a CheckpointError naming the first parameter whose shape differs, or that
    is missing or unexpected. ``expected``: {name: shape}; ``found``: {name: array}."""
    for name, shape in expected.items():
        if name not in found:
            raise CheckpointError(f"{source} has no parameter {name!r} "
                                  f"(expected shape {tuple(shape)}): it is from a different model")
        if tuple(found[name].shape) != tuple(shape):
            raise CheckpointError(f"{source}: parameter {name!r} expected shape {tuple(shape)}, "
                                  f"got {tuple(found[name].shape)}: it is from a different model")
    extra = [name for name in found if name not in expected]
    if extra:
        raise CheckpointError(f"{source} has parameters this model lacks, e.g. {extra[0]!r} "
                              f"with shape {tuple(found[extra[0]].shape)}: it is from a different model")


def load_weights(module, state, source="checkpoint"):
    """Check ``state`` against ``module``'s parameters and buffers (a clear error), then load it."""
    expected = {name: p.shape for name, p in module.named_parameters()}
    expected.update((name, array.shape) for name, array in module.named_buffers())
    check_state(expected, state, source)
    module.load_state_dict(state)
