"""Fuzzing the readers of files from outside: CIFAR-10 batches, checkpoints and images.

Each reader is given valid files cut short at every position, a huge number written
over every position, random edits (hypothesis), and valid containers holding the wrong
things. Whatever the file, the reader returns what it documents or raises its own
error (DataError, CheckpointError) in one line naming the file; and it stays within
bounds: at most ``MAX_SECONDS`` per file and ``MAX_TRACED_BYTES`` of memory traced by
tracemalloc (Python's and NumPy's allocations; Pillow's own image buffers are not
traced, and are bounded by Pillow's MAX_IMAGE_PIXELS instead).
"""
import io
import json
import os
import pickle
import pickletools
import re
import struct
import time
import tracemalloc
import zipfile
import zlib

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad.checkpoint import FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from minigrad.data import DataError, read_cifar_batch, read_image

# Generous bounds, so that a slow or busy machine does not make the tests flaky: a
# well-behaved reader takes milliseconds and a few hundred kB for these small files.
MAX_SECONDS = 2.0
MAX_TRACED_BYTES = 64 * 2 ** 20

FUZZ_SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(autouse=True, scope="module")
def traced():
    """tracemalloc, on for the whole module (starting it for each file costs more than
    the reading)."""
    tracemalloc.start()
    yield
    tracemalloc.stop()


def read_within_bounds(read, path, error_type):
    """``read(path)``, which may return or raise ``error_type`` naming ``path`` in one
    line; it must take at most MAX_SECONDS and MAX_TRACED_BYTES. Returns the result,
    or None after an error."""
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        result = read(str(path))
    except error_type as error:
        result, message = None, str(error)
        assert str(path) in message and "\n" not in message, message
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - before
    assert seconds < MAX_SECONDS, f"{seconds:.1f} s for {os.path.getsize(path)} bytes"
    assert peak < MAX_TRACED_BYTES, f"{peak} bytes traced for {os.path.getsize(path)} bytes"
    return result


# --- ways to damage a file ------------------------------------------------------------------
HUGE_NUMBERS = [2 ** 31 - 1, 2 ** 32 - 1, 2 ** 60, 2 ** 63 - 1, 2 ** 64 - 1]


def cut_at_every_position(content):
    return (content[:end] for end in range(len(content)))


def huge_number_at_every_position(content, widths=(4, 8)):
    """A field of all ones (little- and big-endian alike) of each width at each byte."""
    for position in range(len(content)):
        for width in widths:
            yield content[:position] + b"\xff" * width + content[position + width:]


@st.composite
def edited(draw, content):
    """``content`` with 1 to 4 random edits: a bit flipped, a byte set, bytes inserted or
    deleted, a 4- or 8-byte field set to a huge number, or the end cut off."""
    data = bytearray(content)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["flip", "set", "insert", "delete", "huge", "cut"]))
        if edit == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif edit == "huge":
            width, order = draw(st.sampled_from([(4, "little"), (8, "little"), (4, "big"), (8, "big")]))
            number = draw(st.sampled_from(HUGE_NUMBERS)) % 2 ** (8 * width)
            data[at:at + width] = number.to_bytes(width, order)
        elif edit == "cut":
            del data[at:]
    return bytes(data)


# --- CIFAR-10 batches -------------------------------------------------------------------------
def small_batch(images=2, values=4):
    """A CIFAR-like dict, with few values per image so that every position can be tried."""
    rng = numpy.random.default_rng(0)
    return {b"batch_label": b"training batch 1 of 5", b"labels": [3, 7][:images],
            b"data": rng.integers(0, 256, size=(images, values), dtype=numpy.uint8),
            b"filenames": [b"a.png", b"b.png"][:images]}


# The small batch pickled with every protocol, and one real-sized batch.
CIFAR_BASES = ([pickle.dumps(small_batch(), protocol=p) for p in range(pickle.HIGHEST_PROTOCOL + 1)]
               + [pickle.dumps(small_batch(images=1, values=3072), protocol=2)])
# Every position is tried in one pickle of each kind: text (protocol 0), binary with
# bytes as _codecs.encode (2), framed (4), and with bytearrays and _frombuffer (5).
# Protocols 1 and 3 use no instruction these lack; random edits try them, and the big one.
EXHAUSTIVE_CIFAR_BASES = [CIFAR_BASES[p] for p in (0, 2, 4, 5)]


def read_cifar(path):
    images, labels = read_cifar_batch(path)
    assert images.dtype == numpy.uint8 and images.shape[1:] == (3, 32, 32)
    assert labels.dtype == numpy.int64 and labels.shape == images.shape[:1]
    assert labels.size == 0 or 0 <= labels.min() <= labels.max() <= 9
    return images, labels


def try_cifar_files(folder, contents):
    path = folder / "data_batch_1"
    for content in contents:
        path.write_bytes(content)
        read_within_bounds(read_cifar, path, DataError)


def test_cifar_batches_cut_short_at_every_position(tmp_path):
    try_cifar_files(tmp_path, (cut for base in EXHAUSTIVE_CIFAR_BASES for cut in cut_at_every_position(base)))


def test_cifar_batches_with_a_huge_number_at_every_position(tmp_path):
    try_cifar_files(tmp_path, (bad for base in EXHAUSTIVE_CIFAR_BASES
                               for bad in huge_number_at_every_position(base)))


def text_arguments_made_huge(content):
    """Protocol 0 writes numbers as text (INT, LONG, PUT, GET): each made 20 nines long."""
    for opcode, _, position in pickletools.genops(content):
        if opcode.name in ("INT", "LONG", "PUT", "GET"):
            end = content.index(b"\n", position)
            yield content[:position + 1] + b"9" * 20 + content[end:]


def test_cifar_batches_with_huge_numbers_as_text(tmp_path):
    try_cifar_files(tmp_path, text_arguments_made_huge(CIFAR_BASES[0]))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder for the hypothesis tests: their examples share one call of each fixture,
    so hypothesis refuses per-test ones such as tmp_path."""
    return tmp_path_factory.mktemp("fuzz")


@FUZZ_SETTINGS
@given(data=st.data())
def test_cifar_batches_with_random_edits(folder, data):
    content = data.draw(edited(data.draw(st.sampled_from(CIFAR_BASES))))
    try_cifar_files(folder, [content])


ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4), st.binary(max_size=8),
    st.lists(st.integers(-2, 12), max_size=3), st.lists(st.lists(st.integers(0, 9), max_size=2), max_size=2),
    st.lists(st.one_of(st.text(max_size=2), st.floats(), st.booleans(), st.integers()), max_size=3),
    st.dictionaries(st.binary(max_size=2), st.integers(), max_size=2),
    hnp.arrays(hnp.scalar_dtypes() | hnp.byte_string_dtypes() | hnp.unicode_string_dtypes(),
               hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)),
    st.just(numpy.array([None, 1], dtype=object)),
    st.just(numpy.zeros(2, dtype=[("a", "u1"), ("b", "f4")])),
)
CIFAR_DATA = st.one_of(
    ANY_VALUE,
    st.builds(numpy.zeros, st.tuples(st.integers(0, 2), st.sampled_from([3072, 3071, 1024])),
              st.sampled_from(["u1", "i1", "u2", "f4", ">u2", "?"])),      # near misses
    st.builds(lambda n: numpy.asfortranarray(numpy.ones((n, 3072), numpy.uint8)), st.integers(0, 2)),
)


@FUZZ_SETTINGS
@given(data=CIFAR_DATA, labels=ANY_VALUE, extra=ANY_VALUE, protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_cifar_batches_holding_the_wrong_things(folder, data, labels, extra, protocol):
    batch = {b"data": data, b"labels": labels, b"filenames": extra}
    try_cifar_files(folder, [pickle.dumps(batch, protocol=protocol)])


# --- checkpoints ---------------------------------------------------------------------------------
def checkpoint_base(folder):
    path = folder / "base.npz"
    save_checkpoint(str(path), {"w": numpy.arange(6, dtype=numpy.float32).reshape(2, 3)},
                    {"steps": numpy.array(4)}, progress={"epoch": numpy.array(1)},
                    config={"model": {"width": 0.25}, "classes": ["a", "b"]})
    return path.read_bytes()


@pytest.fixture(scope="module")
def checkpoint_content(tmp_path_factory):
    return checkpoint_base(tmp_path_factory.mktemp("checkpoint"))


def read_checkpoint(path):
    checkpoint = load_checkpoint(path)
    assert isinstance(checkpoint["config"], dict)
    for section in ("model", "optimizer", "average", "progress"):
        for value in checkpoint[section].values():
            assert isinstance(value, numpy.ndarray) and not value.dtype.hasobject
    return checkpoint


def try_checkpoints(folder, contents):
    path = folder / "run.npz"
    for content in contents:
        path.write_bytes(content)
        read_within_bounds(read_checkpoint, path, CheckpointError)


def test_checkpoints_cut_short_at_every_position(tmp_path, checkpoint_content):
    try_checkpoints(tmp_path, cut_at_every_position(checkpoint_content))


def test_checkpoints_with_a_huge_number_at_every_position(tmp_path, checkpoint_content):
    try_checkpoints(tmp_path, huge_number_at_every_position(checkpoint_content))


def npz_entries(content):
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def npz_of(entries):
    """A zip of ``entries`` with right checksums, so that a damaged entry gets past them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def huge_shapes(content):
    """Each entry's .npy header with its shape (text such as "'shape': (2, 3)") replaced,
    the header's padding trimmed so that the data still starts where it did."""
    entries = npz_entries(content)
    for name, data in entries.items():
        match = re.search(rb"'shape': \([0-9, ]*\)", data)
        end_of_header = data.index(b"\n", match.end())
        for shape in (b"(99999999999, 99999999999)", b"(4294967295,)", b"(-1,)", b"(2, 3, 0, 99999999999)"):
            replacement = b"'shape': " + shape
            growth = len(replacement) - (match.end() - match.start())
            rest = data[match.end():end_of_header - growth] + b" " * max(-growth, 0)
            yield npz_of({**entries, name: data[:match.start()] + replacement + rest + data[end_of_header:]})


def test_checkpoints_whose_npy_headers_announce_huge_shapes(tmp_path, checkpoint_content):
    try_checkpoints(tmp_path, huge_shapes(checkpoint_content))


@FUZZ_SETTINGS
@given(data=st.data())
def test_checkpoints_with_random_edits(folder, checkpoint_content, data):
    try_checkpoints(folder, [data.draw(edited(checkpoint_content))])


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner,
                                                                               max_size=2), max_leaves=4)
ENTRY_NAMES = st.sampled_from(["model/w", "optimizer/steps", "average/w", "progress/epoch", "other", "a/b/c"])


@FUZZ_SETTINGS
@given(entries=st.dictionaries(ENTRY_NAMES, ANY_VALUE, max_size=4),
       marker=st.sampled_from([FORMAT, FORMAT, "minigrad-checkpoint 2", None]),
       config=st.one_of(JSON.map(json.dumps), st.text(max_size=6), ANY_VALUE),
       compressed=st.booleans())
def test_checkpoints_holding_the_wrong_things(folder, entries, marker, config, compressed):
    """Valid .npz files (written by numpy.savez, pickles allowed) with any entries."""
    arrays = {**entries, "config": config, **({} if marker is None else {"format": marker})}
    path = folder / "run.npz"
    try:
        (numpy.savez_compressed if compressed else numpy.savez)(str(path), allow_pickle=True, **arrays)
    except ValueError:                # a ragged list, which NumPy cannot make an array of
        return
    read_within_bounds(read_checkpoint, path, CheckpointError)


# --- images -------------------------------------------------------------------------------------------
def png_16_bit(pixels, colour_type):
    """A 16-bit PNG by hand (Pillow writes 16-bit grey only); ``pixels`` uint16 (H, W, C)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def image_bases():
    """Small images in every format Pillow writes that read_image's extensions name."""
    from PIL import Image
    rng = numpy.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=numpy.uint8))
    bases = []
    for image, file_format in [(rgb, "PNG"), (rgb.convert("RGBA"), "PNG"), (rgb.convert("P"), "PNG"),
                               (rgb, "JPEG"), (rgb, "GIF"), (rgb, "BMP"), (rgb, "TIFF"), (rgb, "WEBP"),
                               (rgb, "PPM"), (rgb.convert("L"), "PPM"), (rgb.convert("1"), "PNG"),
                               (Image.fromarray(rng.integers(0, 65536, (6, 5), dtype=numpy.uint16)), "PNG"),
                               (Image.fromarray(rng.integers(0, 65536, (6, 5), dtype=numpy.uint16)), "TIFF")]:
        buffer = io.BytesIO()
        image.save(buffer, file_format)
        bases.append(buffer.getvalue())
    return bases + [png_16_bit(rng.integers(0, 65536, (6, 5, 3), dtype=numpy.uint16), 2)]


IMAGE_BASES = image_bases()
# without the RGBA, palette and 1-bit PNGs: the same header in PNG's chunks
ONE_IMAGE_PER_FORMAT = [base for i, base in enumerate(IMAGE_BASES) if i not in (1, 2, 10)]


def read_small_image(path):
    pixels = read_image(path, 4)
    assert pixels.shape == (3, 4, 4) and pixels.dtype == numpy.float32
    assert ((pixels >= 0) & (pixels <= 1)).all()
    return pixels


def try_images(folder, contents):
    path = folder / "photo.png"            # read_image looks at the content, not the name
    for content in contents:
        path.write_bytes(content)
        read_within_bounds(read_small_image, path, DataError)


def test_images_cut_short_at_every_position(tmp_path):
    try_images(tmp_path, (cut for base in ONE_IMAGE_PER_FORMAT for cut in cut_at_every_position(base)))


def test_images_with_a_huge_number_at_every_position(tmp_path):
    """Image formats have no 8-byte fields: 4 bytes of ones cover their 2- and 4-byte ones."""
    try_images(tmp_path, (bad for base in ONE_IMAGE_PER_FORMAT
                          for bad in huge_number_at_every_position(base, widths=(4,))))


def test_pngs_declaring_huge_sizes_with_a_valid_checksum(tmp_path):
    """PNG checks each chunk's CRC: the damage must come with a matching one to get past it."""
    def with_size(width, height):
        base = IMAGE_BASES[0]
        header = b"IHDR" + struct.pack(">II", width, height) + base[24:29]
        return base[:12] + header + struct.pack(">I", zlib.crc32(header)) + base[33:]
    sizes = [(2 ** 31 - 1, 1), (1, 2 ** 31 - 1), (2 ** 16, 2 ** 16), (20_000, 5_000), (0, 0), (1, 0)]
    try_images(tmp_path, (with_size(width, height) for width, height in sizes))


@FUZZ_SETTINGS
@given(data=st.data())
def test_images_with_random_edits(folder, data):
    content = data.draw(edited(data.draw(st.sampled_from(IMAGE_BASES))))
    try_images(folder, [content])
