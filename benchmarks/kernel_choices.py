"""Times the choices minigrad/kernels/vectorized.py made by measuring, each beside the
alternative it rejected, on GoogLeNet's shapes at batch 8 in float32, and prints a table
(Markdown) with the machine it ran on. The last run is in kernel_choices.md beside this file.

    python benchmarks/kernel_choices.py [--repeats 9]

1. Each convolution is ONE matrix product, not one per image.
2. An ungrouped 1x1 convolution on maps of PER_IMAGE_MIN_PIXELS pixels or more multiplies
   image by image, reading x where it lies, instead of copying x channels first for one
   product; on smaller maps the copy and one product win.
3. A grouped product is one BLAS call per group, not a stacked ``a @ b`` of transposed views.
4. Max pooling keeps its running argmax with ``maximum``, not a masked write.
5. A convolution's backward turns its weight-gradient product around, and copies the
   weight transposed for the column gradient, only when it sums over or spreads to many
   pixels (TURNED_WEIGHT_GRADIENT_MIN_PIXELS, COPIED_WEIGHT_MIN_PIXELS).
6. A 3x3 convolution with stride 1 and padding 1 goes Winograd's way (F(2x2, 3x3)) on maps of
   WINOGRAD_MIN_PIXELS pixels or more, im2col and one product below.
Times are medians, in milliseconds; "bare GEMM" is the same product on ready-made operands.
"""
import argparse
import datetime
import os
import platform
import statistics
import time

from minigrad import blas_setup     # first: OpenBLAS's idle threads set to sleep soon, as in a step
import numpy

from minigrad.geometry import window
from minigrad.kernels import vectorized
from minigrad.kernels.vectorized import (COPIED_WEIGHT_MIN_PIXELS, PER_IMAGE_MIN_PIXELS,
                                         TURNED_WEIGHT_GRADIENT_MIN_PIXELS, WINOGRAD_MIN_PIXELS)

BATCH = 8
RNG = numpy.random.default_rng(0)


def median_ms(fn, repeats):
    fn()                                                  # a warm-up: caches, BLAS threads
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def floats(*shape):
    return RNG.standard_normal(shape, dtype=numpy.float32)


def one_product_or_per_image(repeats):
    """(name, one product, one per image): weight (C_out, K) times the columns of 8 images."""
    rows = []
    for name, c_out, k, pixels in [("3a 3x3 on 28x28", 128, 96 * 9, 28 * 28),
                                   ("4a 3x3 on 14x14", 208, 96 * 9, 14 * 14),
                                   ("5b 3x3 on 7x7", 384, 192 * 9, 7 * 7)]:
        weight, cols = floats(c_out, k), floats(k, pixels * BATCH)
        images = [numpy.ascontiguousarray(cols[:, n * pixels:(n + 1) * pixels]) for n in range(BATCH)]
        one = median_ms(lambda: weight @ cols, repeats)
        each = median_ms(lambda: [weight @ image for image in images], repeats)
        rows.append((f"conv {name}", f"{one:.2f}", f"{each:.2f}", f"{each / one:.2f}x"))
    return rows


def pointwise_per_image_or_copy(repeats):
    """(name, bare GEMM, per image, channels-first copy + one product) for 1x1 convolutions."""
    rows = []
    for name, c_in, c_out, side in [("3a 1x1 reduce on 28x28", 192, 64, 28),
                                    ("4a 1x1 reduce on 14x14", 480, 96, 14),
                                    ("5a 1x1 reduce on 7x7", 832, 160, 7)]:
        x, weight = floats(BATCH, c_in, side, side), floats(c_out, c_in)
        x3 = x.reshape(BATCH, c_in, side * side)
        channels_first = numpy.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c_in, -1)
        bare = median_ms(lambda: weight @ channels_first, repeats)
        per_image = median_ms(lambda: weight @ x3, repeats)
        copied = median_ms(lambda: weight @ numpy.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c_in, -1),
                           repeats)
        route = "per image" if side * side >= PER_IMAGE_MIN_PIXELS else "copy"
        rows.append((f"{name} (route: {route})", f"{bare:.2f}", f"{per_image / bare:.2f}x",
                     f"{copied / bare:.2f}x"))
    return rows


def grouped_product(repeats):
    """(name, one call per group, stacked a @ b of a transposed view): a backward's gweight."""
    groups, c_out, k, pixels = 2, 256, 48 * 25, 27 * 27 * BATCH          # AlexNet's conv2, two towers
    gy, cols = floats(groups, c_out // groups, pixels), floats(groups, k, pixels)
    per_group = numpy.empty((groups, c_out // groups, k), dtype=numpy.float32)

    def one_call_per_group():
        for g in range(groups):
            numpy.matmul(gy[g], cols[g].T, out=per_group[g])

    looped = median_ms(one_call_per_group, repeats)
    stacked = median_ms(lambda: gy @ cols.transpose(0, 2, 1), repeats)
    return [("gweight of AlexNet's conv2 (2 groups)", f"{looped:.2f}", f"{stacked:.2f}", f"{stacked / looped:.2f}x")]


def running_argmax(repeats):
    """(name, maximum, masked write): one kernel offset's update of a 3x3/2 max pool's argmax."""
    patch, out = floats(56, 56, BATCH, 64), floats(56, 56, BATCH, 64)
    argmax = numpy.zeros(patch.shape, dtype=numpy.uint8)
    offset = numpy.uint8(4)

    def with_maximum():
        numpy.maximum(argmax, (patch > out) * offset, out=argmax)

    def with_a_masked_write():
        argmax[patch > out] = offset

    fast, masked = median_ms(with_maximum, repeats), median_ms(with_a_masked_write, repeats)
    return [("max pool 3x3/2, 56x56 out, C=64", f"{fast:.2f}", f"{masked:.2f}", f"{masked / fast:.2f}x")]


def backward_orientations(repeats):
    """(name, pixels, gweight turned / plain, gcols copied weight / view) at GoogLeNet's shapes:
    at batch 8 on 224x224 images, and at batch 32 on the main job's 32x32 digits."""
    rows = []
    for name, c_out, k, pixels in [("conv2 3x3, batch 8, 56x56", 192, 64 * 9, 8 * 56 * 56),
                                   ("3a 3x3, batch 8, 28x28", 128, 96 * 9, 8 * 28 * 28),
                                   ("4a 3x3, batch 8, 14x14", 208, 96 * 9, 8 * 14 * 14),
                                   ("5b 3x3, batch 8, 7x7", 384, 192 * 9, 8 * 7 * 7),
                                   ("conv2 3x3, batch 32, 8x8", 192, 64 * 9, 32 * 8 * 8),
                                   ("3a 3x3, batch 32, 4x4", 128, 96 * 9, 32 * 4 * 4),
                                   ("5b 3x3, batch 32, 1x1", 384, 192 * 9, 32)]:
        weight, cols, gy = floats(c_out, k), floats(k, pixels), floats(c_out, pixels)
        turned = median_ms(lambda: (cols @ gy.T).T.copy(), repeats)
        plain = median_ms(lambda: gy @ cols.T, repeats)
        copied = median_ms(lambda: weight.T.copy() @ gy, repeats)
        view = median_ms(lambda: weight.T @ gy, repeats)
        route = (f"{'turned' if pixels >= TURNED_WEIGHT_GRADIENT_MIN_PIXELS else 'plain'}, "
                 f"{'copied' if pixels >= COPIED_WEIGHT_MIN_PIXELS else 'view'}")
        rows.append((f"{name} (route: {route})", f"{pixels}", f"{turned:.2f} / {plain:.2f}",
                     f"{turned / plain:.2f}x", f"{copied:.2f} / {view:.2f}", f"{copied / view:.2f}x"))
    return rows


def winograd_or_direct(repeats):
    """(name, route, forward direct / Winograd, ratio, backward direct / Winograd, ratio): a
    3x3 convolution with bias and ReLU both ways, GoogLeNet's at batch 8 on 224x224 images
    and at batch 32 on the main job's 32x32 digits, and one at the threshold."""
    rows = []
    for name, n, c, c_out, size in [("conv2, batch 8, 56x56", 8, 64, 192, 56),
                                    ("3b 3x3, batch 8, 28x28", 8, 128, 192, 28),
                                    ("4d 3x3, batch 8, 14x14", 8, 144, 288, 14),
                                    ("5b 3x3, batch 8, 7x7", 8, 192, 384, 7),
                                    ("4d 3x3, batch 8, 10x10", 8, 144, 288, 10),
                                    ("conv2, batch 32, 8x8", 32, 64, 192, 8)]:
        x, weight, bias = floats(n, c, size, size), 0.05 * floats(c_out, c, 3, 3), floats(c_out)
        win = window((size, size), 3, 1, 1)
        times = {}
        for way, least in (("direct", 10 ** 9), ("winograd", 0)):
            vectorized.WINOGRAD_MIN_PIXELS = least
            y, cache = vectorized.conv2d_forward(x, weight, bias, win, relu=True)
            gy = floats(*y.shape)
            times[way] = (median_ms(lambda: vectorized.conv2d_forward(x, weight, bias, win, relu=True), repeats),
                          median_ms(lambda: vectorized.conv2d_backward(gy, cache), repeats))
        vectorized.WINOGRAD_MIN_PIXELS = WINOGRAD_MIN_PIXELS
        (forward, backward), (forward_w, backward_w) = times["direct"], times["winograd"]
        route = "winograd" if size * size >= WINOGRAD_MIN_PIXELS else "direct"
        rows.append((f"{name} (route: {route})", f"{forward:.2f} / {forward_w:.2f}", f"{forward / forward_w:.2f}x",
                     f"{backward:.2f} / {backward_w:.2f}", f"{backward / backward_w:.2f}x"))
    return rows


def table(title, header, rows):
    lines = [f"\n{title}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def machine():
    model = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                         model)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return (f"{model}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; numpy {numpy.__version__}, "
            f"BLAS threads {threads}, {blas_setup.describe()}; float32, batch {BATCH}, {datetime.date.today()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per case (the median is shown)")
    repeats = parser.parse_args().repeats
    print(f"Measured on: {machine()}")
    print(table("1. One product per convolution, or one per image (ms)",
                ["convolution", "one product", "8 products", "per image / one"], one_product_or_per_image(repeats)))
    print(table("2. A 1x1 convolution image by image, or a channels-first copy and one product (x a bare GEMM)",
                ["convolution", "bare GEMM (ms)", "per image", "copy + one product"],
                pointwise_per_image_or_copy(repeats)))
    print(table("3. A grouped product: one BLAS call per group, or a stacked a @ b (ms)",
                ["product", "per group", "stacked", "stacked / per group"], grouped_product(repeats)))
    print(table("4. Max pooling's running argmax: maximum, or a masked write (ms)",
                ["pool", "maximum", "masked write", "masked / maximum"], running_argmax(repeats)))
    print(table("5. The backward's products: the weight gradient turned around or plain, the column "
                "gradient on a copied transposed weight or on a view (ms)",
                ["convolution", "pixels", "gweight turned / plain", "ratio", "gcols copied / view", "ratio"],
                backward_orientations(repeats)))
    print(table("6. A 3x3 convolution, stride 1, padding 1, with bias and ReLU: im2col and one product, "
                "or Winograd's F(2x2, 3x3) (ms; ratio > 1: Winograd the faster)",
                ["convolution", "forward direct / Winograd", "ratio", "backward direct / Winograd", "ratio"],
                winograd_or_direct(repeats)))


if __name__ == "__main__":
    main()
