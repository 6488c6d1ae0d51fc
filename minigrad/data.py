"""Real data sets, held-out splits and a batching loader.

Three sources, each giving a ``Dataset`` of uint8 images (N, C, H, W) and labels:

* ``load_digits(size)``: scikit-learn's 1,797 handwritten digits (8x8, bundled with
  the package, so it works offline), upsampled to ``size`` x ``size``;
* ``load_cifar10(path)``: CIFAR-10's "python version" batches, read without
  letting the file run code (see ``minigrad.safe_pickle``);
* ``load_image_folder(path, size)``: your own photos, one sub-folder per class.

``DataLoader`` turns a Dataset into shuffled, augmented, normalized float32
batches. Its randomness is a pure function of (seed, epoch, batch), so a run that
stops in the middle of an epoch and resumes sees exactly the same batches.
"""
import dataclasses
import io
import math
import os

import numpy

from . import safe_pickle
from .augment import Augmentation, resize


class DataError(ValueError):
    """A data path is missing, or a file in it is not what it should be."""


# The smallest standard deviation ``channel_stats`` reports: one grey level. A channel
# that never changes would otherwise give std 0 and (x - mean) / 0 = NaN or inf.
STD_FLOOR = 1 / 255


@dataclasses.dataclass
class Dataset:
    images: numpy.ndarray   # (N, C, H, W) uint8
    labels: numpy.ndarray   # (N,) int64, indexes into ``classes``
    classes: list           # class names
    name: str = "data"

    def __len__(self):
        return len(self.labels)

    @property
    def channels(self):
        return self.images.shape[1]

    @property
    def image_size(self):
        return self.images.shape[2]

    def subset(self, indices, name=None):
        return Dataset(self.images[indices], self.labels[indices], self.classes, name or self.name)

    def split(self, held_out=0.2, seed=0):
        """Split into (train, held_out), stratified: each class keeps its share in both.
        A DataError if either side would be empty (too few images for that share)."""
        rng = numpy.random.default_rng(seed)
        held = []
        for label in range(len(self.classes)):
            members = rng.permutation(numpy.flatnonzero(self.labels == label))
            held.extend(members[:round(held_out * len(members))])
        if not held or len(held) == len(self):
            counts = ", ".join(f"{name} {numpy.count_nonzero(self.labels == label)}"
                               for label, name in enumerate(self.classes))
            empty = "no held-out images" if not held else "no training images"
            raise DataError(f"{self.name}: holding out {held_out:.0%} of each class ({counts} images) "
                            f"leaves {empty}; add images or change the held-out share")
        is_held = numpy.zeros(len(self), dtype=bool)
        is_held[numpy.array(held, dtype=numpy.intp)] = True
        return (self.subset(numpy.flatnonzero(~is_held), f"{self.name} (train)"),
                self.subset(numpy.flatnonzero(is_held), f"{self.name} (held out)"))

    def channel_stats(self, chunk_values=2 ** 22):
        """Per-channel mean and standard deviation of the pixels, in [0, 1] units.

        Exact, without a float copy of the whole data set (2.5 GB for CIFAR-10): the
        sums S1 = sum(x) and S2 = sum(x^2) of the uint8 values are accumulated in int64,
        about ``chunk_values`` values at a time, then, over n values per channel,
        mean = S1 / n and variance = (n*S2 - S1^2) / n^2 in Python's exact integers.
        The std is at least ``STD_FLOOR``.
        """
        images_per_chunk = max(1, chunk_values // max(1, self.images[0].size))
        s1 = numpy.zeros(self.channels, dtype=numpy.int64)
        s2 = numpy.zeros(self.channels, dtype=numpy.int64)
        for start in range(0, len(self), images_per_chunk):
            chunk = self.images[start:start + images_per_chunk].astype(numpy.int64)
            s1 += chunk.sum(axis=(0, 2, 3))
            s2 += (chunk * chunk).sum(axis=(0, 2, 3))
        n = len(self) * self.image_size * self.images.shape[3]
        mean = [int(a) / n for a in s1]
        std = [math.sqrt((n * int(b) - int(a) ** 2) / n ** 2) for a, b in zip(s1, s2)]
        return numpy.array(mean) / 255.0, numpy.maximum(numpy.array(std) / 255.0, STD_FLOOR)


def _to_uint8(images):
    return numpy.clip(numpy.rint(images * 255.0), 0, 255).astype(numpy.uint8)


# --- scikit-learn's digits -----------------------------------------------------------
def load_digits(size=32):
    """The 1,797 8x8 digits of scikit-learn (UCI's optical digits, values 0..16),
    upsampled bilinearly to size x size, one channel: white ink on black."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = bunch.images.astype(numpy.float32)[:, None] / 16.0       # (1797, 1, 8, 8)
    images = resize(images, size, size)
    labels = bunch.target.astype(numpy.int64)
    return Dataset(_to_uint8(images), labels, [str(d) for d in range(10)], "digits")


# --- CIFAR-10, python version -------------------------------------------------------------
# A CIFAR-10 batch is about 31 MB. A file much larger is not one: it is refused unread
# (read_cifar_batch reads the whole file into memory).
MAX_BATCH_BYTES = 256 * 2 ** 20


def _read_batch_file(path):
    """The bytes of a CIFAR-10 batch file, if it is no larger than ``MAX_BATCH_BYTES``."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_BATCH_BYTES:
                raise DataError(f"{path}: {size} bytes, more than the {MAX_BATCH_BYTES} a CIFAR-10 "
                                f"batch could be (they are about 31 MB)")
            return file.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a CIFAR-10 batch file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None


def read_cifar_batch(path):
    """One CIFAR-10 batch file -> (images (N, 3, 32, 32) uint8, labels (N,) int64).

    The file is read whole, then unpickled from memory by ``safe_pickle.load_data``,
    which builds plain data and arrays of numbers and nothing else.
    """
    content = _read_batch_file(path)
    try:
        batch = safe_pickle.load_data(content)
    except safe_pickle.UNPICKLING_ERRORS as error:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({error})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: not a CIFAR-10 python batch (expected a dict with "
                        f"b'data' and b'labels')")
    data = batch[b"data"]
    try:
        labels = numpy.asarray(batch[b"labels"])
    except (ValueError, TypeError, OverflowError) as error:      # e.g. a ragged list
        raise DataError(f"{path}: labels must be a list of integers 0..9 ({error})") from None
    if not isinstance(data, numpy.ndarray) or data.dtype != numpy.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise DataError(f"{path}: expected b'data' uint8 of shape (N, 3072) and N labels, got "
                        f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')} "
                        f"and {labels.shape[0] if labels.ndim else 0} labels")
    if labels.size and labels.dtype.kind not in "iu":
        raise DataError(f"{path}: labels must be integers 0..9, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    # Each row is 1024 red, then 1024 green, then 1024 blue values, row-major.
    return numpy.asarray(data).reshape(-1, 3, 32, 32), labels.astype(numpy.int64)


def _missing_folder(path):
    return "is a file, not a folder" if os.path.exists(path) else "does not exist"


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


def load_cifar10(path):
    """(train, test) from the folder ``cifar-10-batches-py`` (or the folder holding it):
    every ``data_batch_*`` file present for training, ``test_batch`` as the held-out set."""
    root = os.path.join(path, "cifar-10-batches-py")
    root = root if os.path.isdir(root) else path
    if not os.path.isdir(root):
        raise DataError(f"CIFAR-10 folder {path!r} " + _missing_folder(path))
    train_files = sorted(f for f in os.listdir(root) if f.startswith("data_batch_"))
    if not train_files or not os.path.isfile(os.path.join(root, "test_batch")):
        raise DataError(f"{root}: expected CIFAR-10's python batches (data_batch_1 .. "
                        f"data_batch_5 and test_batch)")
    parts = [read_cifar_batch(os.path.join(root, f)) for f in train_files]
    train = Dataset(numpy.concatenate([p[0] for p in parts]),
                    numpy.concatenate([p[1] for p in parts]), CIFAR10_CLASSES, "cifar10 (train)")
    test_images, test_labels = read_cifar_batch(os.path.join(root, "test_batch"))
    return train, Dataset(test_images, test_labels, CIFAR10_CLASSES, "cifar10 (test)")


# --- a folder of your own images -------------------------------------------------------
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


# Pillow modes of 16-bit greys (white is 65535), which convert("L") would clip at 255,
# making them almost all white. Pillow opens 16-bit PNG and TIFF greys as "I;16" (or a
# byte-order variant) and 16-bit PGM as "I", scaled to 0..65535; "I" holds 32 bits, so a
# 32-bit TIFF's values past 65535 clip to white. 16-bit colour PNGs come in as 8-bit RGB.
SIXTEEN_BIT_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

# Pillow's mode of 32-bit float greys ("F": float TIFFs, and anything saved from a float32
# array). Its values are taken as they are, black 0.0 and white 1.0, as torchvision's
# to_tensor and scikit-image's img_as_float take float images: not as 0..255 (which
# convert("L") would assume, reading 0.5 as black), and not by guessing from the largest
# value. Values outside [0, 1] are clipped; NaN and infinities are an error.
FLOAT_GREY_MODE = "F"


def read_image(path, size, channels=3):
    """One image file -> (channels, size, size) float32 in [0, 1] (needs Pillow).

    The whole image is resized to a square (no cropping), with Pillow's antialiased
    bilinear filter. Values are scaled by the image's mode: white is 1 (255 in 8-bit
    images, 65535 in 16-bit ones, 1.0 in 32-bit float ones: ``FLOAT_GREY_MODE``).
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"read_image: channels must be 1 (grey) or 3 (colour), got {channels}")
    try:
        with open(path, "rb") as file:
            content = file.read()
        # Read from memory, so that no length the file announces makes Pillow reserve more
        # than the file holds (its PNG reader skips a chunk's rest with fp.read(length)).
        with Image.open(io.BytesIO(content)) as image:
            pixels = _pixels(image, size, channels)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except Image.DecompressionBombError as error:       # refused before its pixels are read
        raise DataError(f"{path}: too large to read ({error})") from None
    except NonFiniteImage as error:
        raise DataError(f"{path}: {error}") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{path}: not an image Pillow can read ({error.__class__.__name__})") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


class NonFiniteImage(ValueError):
    """A float image with NaN or infinite pixels (``read_image`` names the file)."""


def _pixels(image, size, channels):
    """An open Pillow image -> (size, size) grey or (size, size, 3) RGB, float32 in [0, 1]."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT_GREY_MODES or image.mode == FLOAT_GREY_MODE:
        white = 1.0 if image.mode == FLOAT_GREY_MODE else 65535.0
        values = numpy.asarray(image.convert("F"))
        if not numpy.isfinite(values).all():
            raise NonFiniteImage(f"its pixels (Pillow mode {image.mode}) hold NaN or infinite values")
        grey = numpy.clip(values / numpy.float32(white), 0.0, 1.0)          # float32: mode "F"
        grey = numpy.asarray(Image.fromarray(grey).resize((size, size), Image.BILINEAR))
        return grey if channels == 1 else numpy.stack([grey] * 3, axis=-1)
    image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR)
    return numpy.asarray(image, dtype=numpy.float32) / 255.0


def load_image_folder(path, size=64, channels=3):
    """A Dataset from ``path/<class name>/<image file>``; classes in sorted order.

    Files that do not end in an image extension are skipped (and hidden files);
    a file that does but cannot be read is an error that names it.
    """
    if not os.path.isdir(path):
        raise DataError(f"image folder {path!r} " + _missing_folder(path))
    classes = sorted(d for d in os.listdir(path)
                     if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{path}: expected one sub-folder per class (at least 2), "
                        f"found {len(classes)}")
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(path, name))
                       if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
        if not files:
            raise DataError(f"{os.path.join(path, name)}: no image files "
                            f"({', '.join(IMAGE_EXTENSIONS)})")
        for file in files:
            images.append(read_image(os.path.join(path, name, file), size, channels))
            labels.append(label)
    return Dataset(_to_uint8(numpy.stack(images)), numpy.array(labels, dtype=numpy.int64),
                   classes, os.path.basename(os.path.normpath(path)))


# --- one entry point for the command line ----------------------------------------------
DATASETS = ("digits", "cifar10", "folder")


def load_dataset(name, path=None, size=32, held_out=0.2, seed=0, channels=3):
    """(train, held_out) for a data set by name. CIFAR-10 comes with its own test set;
    the others are split (stratified, seeded) with a ``held_out`` share."""
    if name == "digits":
        if path:
            raise DataError(f"data set 'digits' comes with scikit-learn and reads no path, got --data-path "
                            f"{path!r}: for images in a folder use --data folder")
        return load_digits(size).split(held_out, seed)
    if name in ("cifar10", "folder") and not path:
        raise DataError(f"data set {name!r} needs a path (--data-path)")
    if name == "cifar10":
        return load_cifar10(path)
    if name == "folder":
        return load_image_folder(path, size, channels).split(held_out, seed)
    raise DataError(f"unknown data set {name!r}: expected one of {', '.join(DATASETS)}")


def default_augmentation(name):
    """The paper's augmentation where it makes sense for a data set.

    Digits: no horizontal flip (a mirrored 2, 3 or 7 is not that digit any more),
    and crops of at least half the area, because an 8% crop of a digit is a
    stroke that no longer says which digit it was. Photos: the paper's settings.
    """
    if name == "digits":
        return Augmentation(crop_scale=(0.5, 1.0), flip=False, jitter=0.2)
    return Augmentation()


# --- batches --------------------------------------------------------------------------
class DataLoader:
    """Batches of (images float32 (B, C, H, W), labels int64 (B,)) from a Dataset.

    Pixels become floats in [0, 1], are augmented (if ``augmentation`` is given),
    then normalized per channel: (x - mean) / std. ``batches(epoch)`` shuffles with a
    generator seeded by (seed, epoch) and augments batch b with one seeded by
    (seed, epoch, b): any batch of any epoch can be rebuilt on its own.
    Iterating over the loader itself gives epoch 0's batches.

    ``shard=(rank, ranks)``: data-parallel training (``minigrad.distributed``). Every
    rank draws the same batches of ``batch_size`` images (the global batch) and yields
    only its own share of each (``shard_of``); ``len(loader)`` still counts the global
    batches, every rank takes the same steps. A rank augments its share with a generator
    seeded by (seed, epoch, b, rank): its own random crops, as many as it has images.
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, seed=0, augmentation=None,
                 mean=None, std=None, drop_last=False, shard=(0, 1)):
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        rank, ranks = shard
        if not 0 <= rank < ranks:
            raise ValueError(f"DataLoader: shard must be (rank, ranks) with 0 <= rank < ranks, got {shard}")
        self.dataset, self.batch_size, self.shuffle, self.seed = dataset, batch_size, shuffle, seed
        self.augmentation, self.drop_last, self.shard = augmentation, drop_last, (rank, ranks)
        channels = dataset.channels
        self.mean = numpy.zeros(channels) if mean is None else numpy.asarray(mean, dtype=numpy.float64)
        self.std = numpy.ones(channels) if std is None else numpy.asarray(std, dtype=numpy.float64)

    def __len__(self):
        count = len(self.dataset) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self):
        return self.batches(0)

    def order(self, epoch):
        if not self.shuffle:
            return numpy.arange(len(self.dataset))
        return numpy.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))

    def batches(self, epoch, start=0):
        """The batches of ``epoch`` (this rank's shares of them), beginning at batch number
        ``start``."""
        order = self.order(epoch)
        rank, ranks = self.shard
        for b in range(start, len(self)):
            indices = shard_of(order[b * self.batch_size:(b + 1) * self.batch_size], rank, ranks)
            key = [self.seed, epoch, b] if ranks == 1 else [self.seed, epoch, b, rank]
            yield self.make_batch(indices, numpy.random.default_rng(key))

    def images_in_batch(self, b):
        """How many images batch ``b`` holds, all ranks' shares together."""
        return min(self.batch_size, len(self.dataset) - b * self.batch_size)

    def make_batch(self, indices, rng):
        images = self.dataset.images[indices].astype(numpy.float32) / 255.0
        if self.augmentation is not None:
            images = self.augmentation(images, rng)
        images = normalize(images, self.mean, self.std)
        return images, self.dataset.labels[indices]


def shard_of(items, rank, ranks):
    """Rank ``rank``'s share of ``items`` when ``ranks`` processes split them: contiguous
    slices in rank order, the first ``len(items) % ranks`` ranks one item more (a rank
    gets none when there are fewer items than ranks)."""
    return numpy.array_split(items, ranks)[rank]


def normalize(images, mean, std):
    """(x - mean) / std per channel, in float32."""
    shape = (1, -1, 1, 1)
    mean = numpy.asarray(mean, dtype=numpy.float32).reshape(shape)
    std = numpy.asarray(std, dtype=numpy.float32).reshape(shape)
    return ((images - mean) / std).astype(numpy.float32, copy=False)
