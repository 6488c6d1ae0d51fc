"""The CIFAR-10 reader (minigrad.data.read_cifar_batch through minigrad.safe_pickle): the
official batches' exact format, every pickle protocol, and files built to run code or to
reserve memory, all refused with a DataError naming the file."""
import codecs
import io
import os
import pickle
import pickletools
import struct
import subprocess
import sys

import numpy
import pytest

from minigrad.data import DataError, load_cifar10, read_cifar_batch

from memory import peak_bytes_of


# --- CIFAR-10, in the exact format of the official python batches -----------------------
class Python2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for CIFAR-10: byte strings as (SHORT_)BINSTRING
    and NumPy's reconstructor under its old name, numpy.core.multiarray._reconstruct."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)
    dispatch[bytes] = save_bytes

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def write_cifar_batch(path, images, labels):
    labels = [v if isinstance(v, (bool, float, str)) else int(v) for v in labels]   # plain Python
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": labels,
             b"data": images.reshape(len(images), -1),
             b"filenames": [f"img_{i}.png".encode() for i in range(len(images))]}
    with open(path, "wb") as file:
        Python2Pickler(file, protocol=2).dump(batch)


def make_cifar_folder(root, per_batch=6, seed=0):
    rng = numpy.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    written = {}
    for name in ["data_batch_1", "data_batch_2", "test_batch"]:
        images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=numpy.uint8)
        labels = rng.integers(0, 10, size=per_batch)
        write_cifar_batch(folder / name, images, labels)
        written[name] = (images, labels)
    return folder, written


def test_the_test_file_has_the_official_layout(tmp_path):
    folder, _ = make_cifar_folder(tmp_path)
    listing = [(op.name, arg) for op, arg, _ in pickletools.genops((folder / "test_batch").read_bytes())]
    assert listing[0] == ("PROTO", 2)
    assert ("GLOBAL", "numpy.core.multiarray _reconstruct") in listing
    assert ("SHORT_BINSTRING", "data") in listing         # a Python 2 str, read as bytes
    assert any(name == "BINSTRING" for name, _ in listing)  # the pixels, a long str


def test_cifar_batches_read_back_exactly(tmp_path):
    folder, written = make_cifar_folder(tmp_path)
    for source in (tmp_path, folder):              # the parent folder or the batches folder
        train, test = load_cifar10(str(source))
        numpy.testing.assert_array_equal(train.images, numpy.concatenate(
            [written["data_batch_1"][0], written["data_batch_2"][0]]))
        numpy.testing.assert_array_equal(test.labels, written["test_batch"][1])
        assert train.classes[0] == "airplane" and test.images.shape == (6, 3, 32, 32)


class Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("payload, refusal", [
    ({b"data": Boom(), b"labels": []}, r"refusing to load (posix|nt|os)\.system"),
    ({b"data": numpy.array([Boom()], dtype=object), b"labels": [0]}, "refusing an array of Python objects"),
], ids=["os.system", "object-array"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch, payload, refusal):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(DataError, match="data_batch_1: not a CIFAR-10 python batch .*" + refusal):
        read_cifar_batch(str(path))
    assert not (tmp_path / "pwned").exists()


def test_the_hostile_file_is_live_under_plain_pickle(tmp_path, monkeypatch):
    """The control: plain ``pickle.loads`` does run the command, so the refusal is real."""
    monkeypatch.chdir(tmp_path)
    pickle.loads(pickle.dumps({b"data": Boom()}, protocol=4))
    assert (tmp_path / "pwned").exists()


def test_cifar_bad_input_says_what_is_wrong(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="expected CIFAR-10's python batches"):
        load_cifar10(str(tmp_path))
    (tmp_path / "a_file").write_text("")
    with pytest.raises(DataError, match="'.*a_file' is a file, not a folder"):
        load_cifar10(str(tmp_path / "a_file"))
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"this is not a pickle at all")
    with pytest.raises(DataError, match="garbage: not a CIFAR-10 python batch"):
        read_cifar_batch(str(garbage))
    wrong = tmp_path / "wrong"
    write_cifar_batch(wrong, numpy.zeros((2, 3, 16, 16), numpy.uint8), [0, 1])
    with pytest.raises(DataError, match=r"expected b'data' uint8 of shape \(N, 3072\)"):
        read_cifar_batch(str(wrong))


@pytest.mark.parametrize("labels, message", [
    (["cat", "dog"], "labels must be integers 0..9, got <U3"),
    ([0.0, 1.7], "labels must be integers 0..9, got float64"),
    ([True, False], "labels must be integers 0..9, got bool"),
    ([3, 10], r"labels must lie in 0..9, found 3..10"),
    ([-1, 2], r"labels must lie in 0..9, found -1..2"),
])
def test_cifar_labels_must_be_integers_0_to_9(tmp_path, labels, message):
    path = tmp_path / "batch"
    write_cifar_batch(path, numpy.zeros((2, 3, 32, 32), numpy.uint8), labels)
    with pytest.raises(DataError, match=message):
        read_cifar_batch(str(path))


def cifar_like_batch(n=3, seed=0):
    """A dict as in CIFAR-10's batches, with n images."""
    rng = numpy.random.default_rng(seed)
    return {b"batch_label": b"training batch 1 of 5",
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=numpy.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_cifar_batches_load_from_every_pickle_protocol(tmp_path, protocol):
    """Python 3 writes bytes with _codecs.encode below protocol 3, and NumPy writes an
    array with _frombuffer from protocol 5 on: each is allowed, with checked arguments."""
    batch = cifar_like_batch()
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    images, labels = read_cifar_batch(str(path))
    numpy.testing.assert_array_equal(images.reshape(3, -1), batch[b"data"])
    numpy.testing.assert_array_equal(labels, batch[b"labels"])
    assert type(images) is numpy.ndarray and images.dtype == numpy.uint8


class OfficialCifarPickler(Python2Pickler):
    """As Python2Pickler, and text too as Python 2 strings (STRING opcodes), as in the
    official files: the dtype's name and byte order are then read as bytes."""
    dispatch = Python2Pickler.dispatch.copy()

    def save_str(self, obj):
        self.save_bytes(obj.encode("ascii"))
    dispatch[str] = save_str


def test_cifar_dtype_names_written_as_python2_strings_load(tmp_path):
    batch = cifar_like_batch()
    buffer = io.BytesIO()
    OfficialCifarPickler(buffer, protocol=2).dump(batch)
    listing = [(op.name, arg) for op, arg, _ in pickletools.genops(buffer.getvalue())]
    assert ("SHORT_BINSTRING", "u1") in listing and ("SHORT_BINSTRING", "|") in listing
    path = tmp_path / "data_batch_1"
    path.write_bytes(buffer.getvalue())
    images, _ = read_cifar_batch(str(path))
    numpy.testing.assert_array_equal(images.reshape(3, -1), batch[b"data"])


def test_big_endian_arrays_keep_their_values(tmp_path):
    """The byte order comes from the dtype's BUILD step: it must not be dropped."""
    values = numpy.arange(6, dtype=">i4")
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}"
        path.write_bytes(pickle.dumps({b"data": numpy.zeros((2, 3072), numpy.uint8), b"labels": values[:2]},
                                      protocol=protocol))
        numpy.testing.assert_array_equal(read_cifar_batch(str(path))[1], [0, 1])


@pytest.mark.parametrize("content", [
    b"\x80\x04\x8e" + struct.pack("<Q", 2 ** 60),                 # BINBYTES8: 2**60 bytes follow
    b"\x80\x04\x8e" + struct.pack("<Q", 2 ** 30) + b"short",      # 1 GiB announced, 5 bytes there
    b"\x80\x05\x96" + struct.pack("<Q", 2 ** 30) + b"short",      # BYTEARRAY8 likewise
    b"\x80\x02]r" + struct.pack("<I", 2 ** 27) + b".",            # memo slot 2**27 in a 9-byte file
    b"\x80\x04\x95" + struct.pack("<Q", 2 ** 63) + b"}.",         # FRAME past any size: OverflowError
], ids=["bytes8-2**60", "bytes8-2**30", "bytearray8-2**30", "memo-slot-2**27", "frame-2**63"])
def test_sizes_a_pickle_declares_are_checked_before_anything_is_reserved(tmp_path, content):
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    raised, peak = peak_bytes_of(read_cifar_batch, str(path))
    assert isinstance(raised, DataError), repr(raised)
    assert str(path) in str(raised)
    assert peak < 2 ** 20, f"{peak} bytes traced for a {len(content)}-byte file"


class Reduce:
    """Pickles as ``function(*args)``, with an optional BUILD ``state``: a hand-made pickle."""
    def __init__(self, function, args, state=None):
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


NUMPY_RECONSTRUCT = numpy.zeros(1).__reduce__()[0]        # what NumPy's pickles call


@pytest.mark.parametrize("data", [
    Reduce(NUMPY_RECONSTRUCT, (numpy.ndarray, (2 ** 40,), b"b")),  # an empty 1 TiB array
    Reduce(numpy.ndarray, ((2 ** 31, 4),)),                         # 8 GiB, never touched
], ids=["_reconstruct-1TiB", "ndarray-8GiB"])
def test_numpy_calls_that_would_reserve_memory_are_refused(tmp_path, data):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": []}, protocol=4))
    raised, peak = peak_bytes_of(read_cifar_batch, str(path))
    assert isinstance(raised, DataError) and "not a CIFAR-10 python batch" in str(raised), repr(raised)
    assert peak < 2 ** 20


def hostile_dtype(name, flags=0, fields=None):
    """numpy.dtype(name) whose BUILD state sets ``flags`` (0x3f: "holds Python objects")."""
    return Reduce(numpy.dtype, (name, False, True), (3, "|", None, fields and tuple(fields), fields,
                                                     -1, -1, flags))


@pytest.mark.parametrize("data", [
    # uint8 told by its state that it holds objects: NumPy then stores the list's
    # pointers, 8 bytes each, into 1-byte slots (and its errors escape as RuntimeError)
    Reduce(NUMPY_RECONSTRUCT, (numpy.ndarray, (0,), b"b"),
           (1, (1, 3072), hostile_dtype("u1", flags=0x3f), False, list(range(3072)))),
    # a datetime dtype handed fields in its state: NumPy crashes (segmentation fault)
    hostile_dtype("M8[s]", flags=0x3f, fields={"a": (numpy.dtype("u1"), 0)}),
], ids=["uint8-with-object-flags", "datetime-with-fields"])
def test_a_dtype_state_from_the_file_cannot_corrupt_numpy(tmp_path, data):
    """Run in a child process, so that a crash fails this test instead of ending the run."""
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [0]}, protocol=4))
    script = ("import sys\nfrom minigrad.data import DataError, read_cifar_batch\n"
              "try:\n    read_cifar_batch(sys.argv[1])\nexcept DataError as error:\n    print(error)\n")
    child = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                           timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert child.returncode == 0 and "not a CIFAR-10 python batch" in child.stdout, \
        (child.returncode, child.stdout, child.stderr[-2000:])


@pytest.mark.parametrize("data, protocol, refusal", [
    (Reduce(bytes, (2 ** 33,)), 2, "takes 0 positional arguments"),      # 8 GiB of zeros
    (Reduce(codecs.encode, ("abc", "zlib")), 2, "'zlib'"),               # only latin1 makes bytes
    (Reduce(numpy.dtype, ("V8",)), 2, "numbers"),
    (Reduce(numpy.dtype, ([("a", "u1")],)), 2, "a type's name"),       # a struct's field list
    (Reduce(NUMPY_RECONSTRUCT, (numpy.ndarray, (0,), b"b"),              # NumPy keeps the buffer
            (1, (1, 3072), hostile_dtype("u1"), False, bytearray(3072))), 5, "bytes"),
], ids=["bytes-8GiB", "encode-zlib", "void-dtype", "field-list-dtype", "bytearray-state"])
def test_the_names_protocols_0_to_5_need_check_their_arguments(tmp_path, data, protocol, refusal):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [0]}, protocol=protocol))
    with pytest.raises(DataError, match=f"data_batch_1: not a CIFAR-10 python batch .*{refusal}"):
        read_cifar_batch(str(path))


def test_ragged_labels_are_a_data_error(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": numpy.zeros((2, 3072), numpy.uint8), b"labels": [[1], [2, 3]]},
                                  protocol=4))
    with pytest.raises(DataError, match=r"data_batch_1: labels must be a list of integers"):
        read_cifar_batch(str(path))


def test_a_file_past_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    from minigrad import data
    monkeypatch.setattr(data, "MAX_BATCH_BYTES", 1000)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(cifar_like_batch(n=1), protocol=4))
    with pytest.raises(DataError, match=r"data_batch_1: \d+ bytes, more than the 1000 a CIFAR-10 batch"):
        read_cifar_batch(str(path))


def test_a_folder_or_unreadable_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        read_cifar_batch(str(tmp_path))
