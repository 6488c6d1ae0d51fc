"""Image resizing and the paper's data augmentation, on batches of NumPy images.

Images are float arrays of shape (N, C, H, W) with values in [0, 1]. Augmentation
runs on the CPU, in the data loader, before a batch moves to the model's device.

The paper (section 6) trained on "patches of the image whose size is distributed
evenly between 8% and 100% of the image area with aspect ratio constrained to the
interval [3/4, 4/3]", with horizontal flips and Andrew Howard's photometric
distortions. ``Augmentation`` does those three things, each switchable:

    augment = Augmentation(crop_scale=(0.08, 1.0), flip=True, jitter=0.4)
    batch = augment(batch, rng)        # rng: a numpy Generator
"""
import dataclasses
import math

import numpy


def crop_and_resize(images, boxes, out_height, out_width):
    """Cut one box out of each image and resize it, with bilinear interpolation.

    images: (N, C, H, W); boxes: (N, 4) rows of (top, left, height, width) in pixels.
    Output pixel i of a box samples the input at  top + (i + 0.5) * height / out - 0.5
    (pixel centres line up, as in PIL and ``align_corners=False`` in PyTorch), and
    mixes the four pixels around that point by their distance. Returns (N, C, oh, ow).
    """
    N, C, H, W = images.shape
    boxes = numpy.asarray(boxes, dtype=numpy.float64)
    top, left, height, width = (boxes[:, k:k + 1] for k in range(4))
    y = top + (numpy.arange(out_height) + 0.5) * height / out_height - 0.5   # (N, oh)
    x = left + (numpy.arange(out_width) + 0.5) * width / out_width - 0.5     # (N, ow)
    y = numpy.clip(y, 0, H - 1)
    x = numpy.clip(x, 0, W - 1)
    y0, x0 = numpy.floor(y).astype(numpy.intp), numpy.floor(x).astype(numpy.intp)
    y1, x1 = numpy.minimum(y0 + 1, H - 1), numpy.minimum(x0 + 1, W - 1)
    wy = (y - y0)[:, :, None, None]           # (N, oh, 1, 1): weight of the lower row
    wx = (x - x0)[:, None, :, None]           # (N, 1, ow, 1): weight of the right column
    pixels = images.transpose(0, 2, 3, 1)     # (N, H, W, C) so that a gather keeps C last
    n = numpy.arange(N)[:, None, None]

    def at(rows, cols):
        return pixels[n, rows[:, :, None], cols[:, None, :]]   # (N, oh, ow, C)

    top_row = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom_row = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    out = top_row * (1 - wy) + bottom_row * wy
    return out.transpose(0, 3, 1, 2).astype(images.dtype, copy=False)


def resize(images, height, width):
    """Resize whole images (N, C, H, W) -> (N, C, height, width), bilinear."""
    N, _, H, W = images.shape
    boxes = numpy.tile([0.0, 0.0, H, W], (N, 1))
    return crop_and_resize(images, boxes, height, width)


def random_crop_boxes(rng, count, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                      attempts=10):
    """(count, 4) boxes covering a fraction of the area drawn uniformly from ``scale``,
    with an aspect ratio (width / height) drawn log-uniformly from ``ratio``.

    A box that does not fit in the image is drawn again, up to ``attempts`` times;
    after that the whole image is used (torchvision's RandomResizedCrop does the same).
    """
    area = rng.uniform(scale[0], scale[1], size=(count, attempts)) * height * width
    aspect = numpy.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=(count, attempts)))
    box_w = numpy.sqrt(area * aspect)
    box_h = numpy.sqrt(area / aspect)
    fits = (box_w <= width) & (box_h <= height)
    first = numpy.argmax(fits, axis=1)               # first attempt that fits
    rows = numpy.arange(count)
    box_h, box_w = box_h[rows, first], box_w[rows, first]
    none_fit = ~fits.any(axis=1)
    box_h[none_fit], box_w[none_fit] = height, width
    top = rng.uniform(0, 1, size=count) * (height - box_h)
    left = rng.uniform(0, 1, size=count) * (width - box_w)
    return numpy.stack([top, left, box_h, box_w], axis=1)


def photometric_jitter(images, rng, strength):
    """Random brightness, contrast and (for colour images) saturation, each a factor
    drawn from [1 - strength, 1 + strength]; results are clipped to [0, 1].

        brightness: x * b      contrast: m + c (x - m), m = the image's mean grey
        saturation: g + s (x - g), g = each pixel's grey (ITU-R 601 luma weights)
    """
    N, C = images.shape[:2]

    def factors():
        return rng.uniform(1 - strength, 1 + strength, size=(N, 1, 1, 1)).astype(images.dtype)

    out = images * factors()                                          # brightness
    mean_grey = _grey(out).mean(axis=(1, 2, 3), keepdims=True)
    out = mean_grey + factors() * (out - mean_grey)                   # contrast
    if C == 3:                                                        # saturation
        grey = _grey(out)
        out = grey + factors() * (out - grey)
    return numpy.clip(out, 0.0, 1.0)


def _grey(images):
    if images.shape[1] != 3:
        return images.mean(axis=1, keepdims=True)
    weights = numpy.array([0.299, 0.587, 0.114], dtype=images.dtype).reshape(1, 3, 1, 1)
    return (images * weights).sum(axis=1, keepdims=True)


@dataclasses.dataclass
class Augmentation:
    """The paper's augmentation, switchable piece by piece.

    crop_scale: range of the crop's share of the image area (None: no cropping);
    crop_ratio: range of the crop's aspect ratio; flip: mirror half the images
    left-right; jitter: strength of the photometric distortion (0: none).
    """
    crop_scale: tuple = (0.08, 1.0)
    crop_ratio: tuple = (3 / 4, 4 / 3)
    flip: bool = True
    jitter: float = 0.4

    def __call__(self, images, rng):
        N, _, H, W = images.shape
        if self.crop_scale is not None:
            boxes = random_crop_boxes(rng, N, H, W, self.crop_scale, self.crop_ratio)
            images = crop_and_resize(images, boxes, H, W)
        if self.flip:
            mirrored = rng.random(N) < 0.5
            images = images.copy()
            images[mirrored] = images[mirrored, :, :, ::-1]
        if self.jitter:
            images = photometric_jitter(images, rng, self.jitter)
        return images
