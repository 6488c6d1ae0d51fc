"""Data sets, the safe CIFAR reader, augmentation and the batching loader."""
import codecs
import io
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import tracemalloc
import zlib

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad.augment import Augmentation, crop_and_resize, random_crop_boxes, resize
from minigrad.data import (STD_FLOOR, DataError, DataLoader, Dataset, default_augmentation,
                           load_cifar10, load_dataset, load_digits, load_image_folder,
                           read_cifar_batch, read_image)


# --- resizing and cropping ------------------------------------------------------------
def naive_crop_and_resize(image, box, out_h, out_w):
    """One (C, H, W) image, pixel by pixel: the bilinear formula written out."""
    C, H, W = image.shape
    top, left, height, width = box
    out = numpy.zeros((C, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            y = min(max(top + (i + 0.5) * height / out_h - 0.5, 0), H - 1)
            x = min(max(left + (j + 0.5) * width / out_w - 0.5, 0), W - 1)
            y0, x0 = int(numpy.floor(y)), int(numpy.floor(x))
            y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
            dy, dx = y - y0, x - x0
            out[:, i, j] = ((1 - dy) * (1 - dx) * image[:, y0, x0] + (1 - dy) * dx * image[:, y0, x1]
                            + dy * (1 - dx) * image[:, y1, x0] + dy * dx * image[:, y1, x1])
    return out


def test_crop_and_resize_matches_the_pixel_loop():
    rng = numpy.random.default_rng(0)
    images = rng.random((3, 2, 9, 7))
    boxes = [[0, 0, 9, 7], [1.5, 2.25, 4.0, 3.5], [5, 0, 4, 7]]
    out = crop_and_resize(images, boxes, 5, 6)
    for n in range(3):
        numpy.testing.assert_allclose(out[n], naive_crop_and_resize(images[n], boxes[n], 5, 6),
                                      rtol=1e-12, atol=1e-12)


def test_resize_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    images = numpy.random.default_rng(1).random((2, 3, 8, 8)).astype(numpy.float32)
    expected = torch.nn.functional.interpolate(torch.tensor(images), size=(32, 32), mode="bilinear",
                                               align_corners=False).numpy()
    numpy.testing.assert_allclose(resize(images, 32, 32), expected, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), height=st.integers(4, 64), width=st.integers(4, 64),
       low=st.floats(0.05, 1.0))
def test_random_crops_stay_inside_with_the_asked_area_and_aspect(seed, height, width, low):
    rng = numpy.random.default_rng(seed)
    boxes = random_crop_boxes(rng, 50, height, width, scale=(low, 1.0), ratio=(3 / 4, 4 / 3))
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height + 1e-9).all() and (left + w <= width + 1e-9).all()
    whole = (h == height) & (w == width)                # the fall-back when nothing fits
    area = h * w / (height * width)
    assert (area[~whole] >= low - 1e-9).all()
    aspect = w / h
    assert ((aspect[~whole] >= 3 / 4 - 1e-9) & (aspect[~whole] <= 4 / 3 + 1e-9)).all()


def test_augmentation_is_seeded_and_each_part_switches_off():
    images = numpy.random.default_rng(2).random((8, 3, 16, 16)).astype(numpy.float32)
    augment = Augmentation()
    a = augment(images, numpy.random.default_rng(5))
    b = augment(images, numpy.random.default_rng(5))
    numpy.testing.assert_array_equal(a, b)
    assert a.shape == images.shape and a.dtype == numpy.float32
    assert a.min() >= 0 and a.max() <= 1
    nothing = Augmentation(crop_scale=None, flip=False, jitter=0)
    numpy.testing.assert_array_equal(nothing(images, numpy.random.default_rng(0)), images)
    flip_only = Augmentation(crop_scale=None, flip=True, jitter=0)(images, numpy.random.default_rng(0))
    mirrored = [numpy.array_equal(f, i[:, :, ::-1]) for f, i in zip(flip_only, images)]
    unchanged = [numpy.array_equal(f, i) for f, i in zip(flip_only, images)]
    assert all(m or u for m, u in zip(mirrored, unchanged)) and any(mirrored) and any(unchanged)


def test_digits_are_never_mirrored():
    assert default_augmentation("digits").flip is False
    assert default_augmentation("folder").flip is True
    assert default_augmentation("folder").crop_scale == (0.08, 1.0)


# --- the digits -----------------------------------------------------------------------
def test_digits_upsampled_and_split_stratified():
    digits = load_digits(size=32)
    assert digits.images.shape == (1797, 1, 32, 32) and digits.images.dtype == numpy.uint8
    assert digits.classes == [str(d) for d in range(10)] and digits.images.max() == 255
    train, held = digits.split(held_out=0.2, seed=0)
    assert len(train) + len(held) == 1797 and len(held) == pytest.approx(360, abs=5)
    for label in range(10):                              # every class keeps ~20% held out
        share = (held.labels == label).sum() / (digits.labels == label).sum()
        assert share == pytest.approx(0.2, abs=0.01)
    again, _ = digits.split(held_out=0.2, seed=0)
    numpy.testing.assert_array_equal(train.labels, again.labels)
    assert not set(map(bytes, train.images[:50])) & set(map(bytes, held.images))


@pytest.mark.parametrize("per_class, held_out, empty", [(2, 0.2, "no held-out images"),
                                                     (1, 0.6, "no training images")])
def test_a_split_that_leaves_a_side_empty_says_so(per_class, held_out, empty):
    images = numpy.zeros((2 * per_class, 1, 4, 4), numpy.uint8)
    data = Dataset(images, numpy.repeat([0, 1], per_class), ["cat", "dog"], "pets")
    with pytest.raises(DataError, match=rf"pets: holding out {held_out:.0%} of each class "
                                        rf"\(cat {per_class}, dog {per_class} images\) leaves {empty}"):
        data.split(held_out)


def test_channel_stats_match_numpy():
    images = numpy.random.default_rng(0).integers(0, 256, size=(7, 3, 5, 6), dtype=numpy.uint8)
    pixels = images.astype(numpy.float64) / 255
    for chunk_values in (2 ** 22, 50):                # all at once; a few images at a time
        mean, std = Dataset(images, numpy.zeros(7, int), ["a"]).channel_stats(chunk_values)
        numpy.testing.assert_allclose(mean, pixels.mean(axis=(0, 2, 3)), rtol=1e-14)
        numpy.testing.assert_allclose(std, pixels.std(axis=(0, 2, 3)), rtol=1e-12)


def test_a_constant_channel_normalizes_to_zero_not_nan():
    images = numpy.random.default_rng(1).integers(0, 256, size=(4, 2, 3, 3), dtype=numpy.uint8)
    images[:, 1] = 200                               # the second channel never changes
    data = Dataset(images, numpy.zeros(4, int), ["a"])
    mean, std = data.channel_stats()
    assert std[1] == STD_FLOOR > 0 and mean[1] == pytest.approx(200 / 255, rel=1e-15)
    x, _ = next(iter(DataLoader(data, batch_size=4, mean=mean, std=std)))
    assert numpy.isfinite(x).all() and numpy.abs(x[:, 1]).max() < 1e-5


# --- the loader -----------------------------------------------------------------------
def small_dataset(n=10, channels=1, size=4):
    images = (numpy.arange(n * channels * size * size) % 256).astype(numpy.uint8)
    return Dataset(images.reshape(n, channels, size, size), numpy.arange(n) % 3, ["a", "b", "c"])


def test_loader_shuffles_by_seed_and_epoch_and_covers_everything_once():
    images = numpy.repeat(numpy.arange(10, dtype=numpy.uint8), 16).reshape(10, 1, 4, 4)
    loader = DataLoader(Dataset(images, numpy.arange(10) % 3, ["a", "b", "c"]), batch_size=4,
                        shuffle=True, seed=3)           # image n is filled with the value n
    assert len(loader) == 3

    def order(epoch):
        return numpy.concatenate([numpy.rint(x[:, 0, 0, 0] * 255) for x, _ in loader.batches(epoch)])
    assert sorted(order(0)) == list(range(10))
    numpy.testing.assert_array_equal(order(0), order(0))
    assert not numpy.array_equal(order(0), order(1))


def test_loader_can_start_mid_epoch_with_the_same_batches():
    loader = DataLoader(small_dataset(n=20, channels=3, size=8), batch_size=3, shuffle=True, seed=1,
                        augmentation=Augmentation(), mean=[0.5] * 3, std=[0.25] * 3)
    whole = list(loader.batches(4))
    tail = list(loader.batches(4, start=2))
    for (x1, y1), (x2, y2) in zip(whole[2:], tail):
        numpy.testing.assert_array_equal(x1, x2)
        numpy.testing.assert_array_equal(y1, y2)
    assert len(tail) == len(whole) - 2 == 5


def test_loader_normalizes_per_channel():
    data = small_dataset(n=4, channels=1)
    x, y = next(iter(DataLoader(data, batch_size=4, mean=[0.5], std=[2.0])))
    expected = (data.images.astype(numpy.float32) / 255 - 0.5) / 2.0
    numpy.testing.assert_allclose(x, expected, rtol=1e-6)
    assert x.dtype == numpy.float32 and y.dtype == numpy.int64
    assert len(DataLoader(data, batch_size=3, drop_last=True)) == 1


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


def peak_bytes_of(function, *args):
    """(what ``function`` raised, the peak of memory traced while it ran)."""
    tracemalloc.start()
    try:
        function(*args)
    except Exception as error:             # the caller checks which error it was
        raised = error
    else:
        raised = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


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


# --- a folder of images ---------------------------------------------------------------------
def make_image_folder(root, classes=("cat", "dog"), per_class=3):
    from PIL import Image
    rng = numpy.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(20 + i, 30, 3), dtype=numpy.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
        (root / name / "notes.txt").write_text("not an image, skipped")
    return root


def test_image_folder_one_class_per_sub_folder(tmp_path):
    folder = make_image_folder(tmp_path / "pets")
    data = load_image_folder(str(folder), size=16)
    assert data.classes == ["cat", "dog"] and data.images.shape == (6, 3, 16, 16)
    assert list(data.labels) == [0, 0, 0, 1, 1, 1]
    grey = load_image_folder(str(folder), size=8, channels=1)
    assert grey.images.shape == (6, 1, 8, 8)
    train, held = load_dataset("folder", str(folder), size=16, held_out=0.34)
    assert len(train) == 4 and len(held) == 2


def test_image_folder_bad_input_names_the_file(tmp_path):
    folder = make_image_folder(tmp_path / "pets")
    (folder / "dog" / "broken.jpg").write_text("I am text pretending to be a JPEG")
    with pytest.raises(DataError, match=r"broken\.jpg: not an image Pillow can read"):
        load_image_folder(str(folder), size=16)
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(str(tmp_path / "missing"))
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="one sub-folder per class"):
        load_image_folder(str(tmp_path / "flat"))
    with pytest.raises(DataError, match="no such file"):
        read_image(str(tmp_path / "none.png"), 8)
    with pytest.raises(ValueError, match="channels must be 1 .grey. or 3 .colour., got 2"):
        load_image_folder(str(folder), size=8, channels=2)
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="unknown data set 'mnist'"):
        load_dataset("mnist")


# --- images of more than 8 bits per value ------------------------------------------------------
def png_bytes(pixels, colour_type):
    """A 16-bit PNG written by hand (Pillow writes 16-bit grey only): ``pixels`` uint16
    (H, W, channels), colour type 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA."""
    height, width = pixels.shape[:2]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)   # filter 0 per row
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def sixteen_bit_values(shape, seed=0):
    """uint16 values over the whole range, with black and white in it."""
    values = numpy.random.default_rng(seed).integers(0, 65536, size=shape, dtype=numpy.uint16)
    values.flat[:2] = 0, 65535
    return values


def test_16_bit_grey_png_keeps_its_values(tmp_path):
    from PIL import Image
    grey = sixteen_bit_values((5, 6))
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode == "I;16"
    one = read_image(str(path), 6, channels=1)[0]           # 5 x 6, resized to 6 x 6
    assert one.dtype == numpy.float32 and one.shape == (6, 6)
    square = tmp_path / "square16.png"
    Image.fromarray(grey[:5, :5]).save(square)
    numpy.testing.assert_allclose(read_image(str(square), 5, channels=1)[0], grey[:5, :5] / 65535,
                                  rtol=1e-6)
    numpy.testing.assert_allclose(read_image(str(square), 5, channels=3),
                                  numpy.stack([grey[:5, :5] / 65535] * 3), rtol=1e-6)
    # resized, it matches the 8-bit image of the same picture to within a grey level
    eight = tmp_path / "grey8.png"
    Image.fromarray((grey // 257).astype(numpy.uint8)).save(eight)
    numpy.testing.assert_allclose(one, read_image(str(eight), 6, channels=1)[0], atol=2 / 255)


def test_16_bit_pgm_keeps_its_values(tmp_path):
    """Pillow reads a 16-bit PGM as mode "I", its values scaled to 0..65535."""
    grey = sixteen_bit_values((4, 4), seed=1)
    path = tmp_path / "grey16.ppm"
    path.write_bytes(b"P5 4 4 65535\n" + grey.astype(">u2").tobytes())
    numpy.testing.assert_allclose(read_image(str(path), 4, channels=1)[0], grey / 65535, rtol=1e-6)


@pytest.mark.parametrize("colour_type, channels", [(2, 3), (6, 4), (4, 2)], ids=["RGB", "RGBA", "grey+alpha"])
def test_16_bit_colour_png_keeps_its_values(tmp_path, colour_type, channels):
    """Pillow reads these as 8-bit (the high byte of each value): within 1/255 of v / 65535."""
    values = sixteen_bit_values((4, 4, channels), seed=colour_type)
    path = tmp_path / "colour16.png"
    path.write_bytes(png_bytes(values, colour_type))
    colour = values[..., :3] if channels >= 3 else numpy.repeat(values[..., :1], 3, axis=-1)
    numpy.testing.assert_allclose(read_image(str(path), 4, channels=3),
                                  colour.transpose(2, 0, 1) / 65535, atol=1 / 255)


def test_an_image_declaring_billions_of_pixels_is_a_data_error(tmp_path):
    path = tmp_path / "huge.png"
    header = png_bytes(numpy.zeros((1, 1, 1), numpy.uint16), 0)
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 16, 0, 0, 0, 0)
    ihdr_chunk = b"IHDR" + ihdr
    path.write_bytes(header[:8] + struct.pack(">I", 13) + ihdr_chunk
                     + struct.pack(">I", zlib.crc32(ihdr_chunk)) + header[33:])
    with pytest.raises(DataError, match=r"huge\.png: .*10000000000 pixels"):
        read_image(str(path), 8)


def test_a_png_announcing_a_4_gib_chunk_reserves_nothing(tmp_path):
    """Pillow skips the rest of an image-data chunk with fp.read(its length): from a file
    that reserved the 4 GiB announced (a MemoryError where memory is limited)."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(sixteen_bit_values((6, 5)).astype(numpy.uint8)).save(buffer, "PNG")
    content = buffer.getvalue()
    idat = content.index(b"IDAT")
    path = tmp_path / "photo.png"
    path.write_bytes(content[:idat - 4] + b"\xff\xff\xff\xff" + content[idat:])
    raised, peak = peak_bytes_of(read_image, str(path), 4)
    assert raised is None or isinstance(raised, DataError), repr(raised)
    assert peak < 2 ** 24, f"{peak} bytes traced for a {len(content)}-byte file"
