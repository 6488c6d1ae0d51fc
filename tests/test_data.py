"""Data sets, augmentation, the batching loader and image files (the CIFAR reader: test_cifar.py)."""
import io
import struct
import zlib

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad.augment import Augmentation, crop_and_resize, random_crop_boxes, resize
from minigrad.data import (STD_FLOOR, DataError, DataLoader, Dataset, default_augmentation,
                           load_dataset, load_digits, load_image_folder, read_image)

from memory import peak_bytes_of


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
    with pytest.raises(DataError, match="'digits' comes with scikit-learn and reads no path, got --data-path "
                                         "'photos': for images in a folder use --data folder"):
        load_dataset("digits", "photos")


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


# --- 32-bit float images (Pillow mode "F"): white is 1.0 ---------------------------------------------
def float_tiff(tmp_path, values, name="grey32.tif"):
    from PIL import Image
    path = tmp_path / name
    Image.fromarray(numpy.asarray(values, numpy.float32)).save(path)
    assert Image.open(path).mode == "F"
    return str(path)


def test_a_float_tiff_with_values_in_0_to_1_keeps_them(tmp_path):
    """0.5 is mid-grey, not black (as convert("L") would read it: 0.5 of 255)."""
    grey = numpy.random.default_rng(3).random((5, 5)).astype(numpy.float32)
    grey.flat[:4] = 0.0, 0.5, 1.0, 0.25
    path = float_tiff(tmp_path, grey)
    numpy.testing.assert_array_equal(read_image(path, 5, channels=1)[0], grey)
    numpy.testing.assert_array_equal(read_image(path, 5, channels=3), numpy.stack([grey] * 3))
    assert read_image(path, 5, channels=1).dtype == numpy.float32


def test_a_float_tiff_is_resized_like_the_8_bit_image_of_the_same_picture(tmp_path):
    from PIL import Image
    grey = numpy.random.default_rng(4).integers(0, 256, (9, 7)).astype(numpy.uint8)
    eight = tmp_path / "grey8.png"
    Image.fromarray(grey).save(eight)
    as_float = float_tiff(tmp_path, grey / numpy.float32(255))
    numpy.testing.assert_allclose(read_image(as_float, 4, channels=1), read_image(str(eight), 4, channels=1),
                                  atol=1 / 255)


def test_a_float_tiff_outside_0_to_1_is_clipped(tmp_path):
    path = float_tiff(tmp_path, [[-0.5, 0.5], [1.5, 255.0]])
    numpy.testing.assert_array_equal(read_image(path, 2, channels=1)[0], [[0.0, 0.5], [1.0, 1.0]])


@pytest.mark.parametrize("bad", [numpy.nan, numpy.inf, -numpy.inf])
def test_a_float_tiff_with_nan_or_infinite_pixels_is_a_data_error(tmp_path, bad):
    path = float_tiff(tmp_path, [[0.5, bad]], name="broken.tif")
    message = r"broken\.tif: its pixels \(Pillow mode F\) hold NaN or infinite values"
    with pytest.raises(DataError, match=message):
        read_image(path, 2)


def test_an_image_folder_of_float_tiffs_reads_their_greys(tmp_path):
    for name, level in (("dark", 0.2), ("light", 0.8)):
        (tmp_path / "greys" / name).mkdir(parents=True)
        for i in range(2):
            float_tiff(tmp_path / "greys" / name, numpy.full((6, 6), level), name=f"{i}.tif")
    data = load_image_folder(str(tmp_path / "greys"), size=4, channels=1)
    assert data.classes == ["dark", "light"]
    numpy.testing.assert_array_equal(data.images[:, 0, 0, 0], [51, 51, 204, 204])      # round(255 x level)


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
