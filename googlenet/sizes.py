"""How large the feature maps are at every row of Table 1, for any square input.

At 224x224 the sizes are the table's, 224 -> 112 -> 56 -> 28 -> 14 -> 7 -> 1.
Convolutions are padded by half their kernel (as in the released Caffe model:
7x7 pad 3, 3x3 pad 1, 5x5 pad 2) and every pool runs in ceil mode, Caffe's only
mode (one size rule for all: ``minigrad.geometry.conv_output_size``):

    conv1  7x7/2 pad 3:   floor((224 + 2*3 - 7) / 2) + 1 = 112
    pool1  3x3/2, ceil:   ceil((112 - 3) / 2) + 1        = 56    (floor mode: 55)
    pool2  3x3/2, ceil:   ceil((56 - 3) / 2) + 1         = 28    (floor mode: 27)
    pool3, pool4:         28 -> 14 -> 7
    Inception modules keep the size (1x1, 3x3 pad 1, 5x5 pad 2, 3x3/1 pool pad 1).

Smaller inputs (the digits lesson's 32x32, CIFAR's 32x32) change three things
and nothing else:

1. A max pool whose 3x3 window is larger than its map pools the whole map
   (its window shrinks to the map). At 32x32, pool4 receives 2x2 and gives 1x1,
   so Inception 5a and 5b work on 1x1 maps.
2. The final average pool always averages the whole map (global average pooling).
   At 224 the map is 7x7, and this is exactly the table's avg pool 7x7/1.
3. The auxiliary heads' 5x5/3 average pool shrinks the same way when the map of
   4a or 4d is smaller than 5x5; their fully connected layer then sees
   128 x P x P features for a P x P pool output: 128 x 4 x 4 = 2048 at 224,
   128 x 1 x 1 = 128 at 32.

Too small: a stride-2 max pool that receives a 1x1 map has nothing left to
downsample, and every layer after it sees one pixel. Such an input is refused
with the smallest usable size, 31x31 (31 -> 16 -> 8 -> 4 -> 2 -> 1): upsample or
pad smaller images (28x28 MNIST digits to 32x32, as LeNet-5 did).
"""
from typing import NamedTuple, Optional

from minigrad.geometry import conv_output_size

from . import table
from .table import AUX_CONV_CHANNELS, AUX_POOL, AUX_POOL_STRIDE, TABLE_1

SMALLEST_POOLED_MAP = 2     # a stride-2 max pool needs at least a 2x2 map to pool


class RowSize(NamedTuple):
    row: str                 # Table 1 row name
    size_in: int             # H (= W) of the map entering the row
    size_out: int            # H (= W) of the map leaving it (1 for the vector rows)
    kernel: Optional[int]    # the window actually used (a pool's may shrink), None if none


def _row_output(row, size):
    """(output size, window used, or an error text) for one row of Table 1."""
    if row.kind == "conv":
        return conv_output_size(size, row.patch, row.stride, row.patch // 2), row.patch, None
    if row.kind == "maxpool":
        if size < SMALLEST_POOLED_MAP:
            return None, None, f"{row.name} would receive a {size}x{size} map and have nothing to pool"
        kernel = min(row.patch, size)
        return conv_output_size(size, kernel, row.stride, 0, ceil_mode=True), kernel, None
    if row.kind == "avgpool":
        return 1, size, None          # global: the window is the whole map
    return size, None, None           # inception keeps the size; dropout, linear, softmax: 1x1


def _trace(input_size):
    """The RowSize of every row, and a reason the input is too small (or None)."""
    sizes, size = [], input_size
    for row in TABLE_1:
        out, kernel, problem = _row_output(row, size)
        if problem is not None:
            return sizes, problem
        sizes.append(RowSize(row.name, size, out, kernel))
        size = out
    return sizes, None


def smallest_input_size():
    """The smallest square input GoogLeNet accepts (31)."""
    size = 1
    while _trace(size)[1] is not None:
        size += 1
    return size


def row_sizes(input_size):
    """{row name: RowSize} for a square ``input_size`` input; ValueError if it is too small."""
    if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 1:
        raise ValueError(f"GoogLeNet: input_size must be a positive int, got {input_size!r}")
    sizes, problem = _trace(input_size)
    if problem is not None:
        shrinking = [r.size_out for r in sizes if r.size_out != r.size_in]
        chain = " -> ".join(str(s) for s in [input_size] + shrinking)
        smallest = smallest_input_size()
        raise ValueError(f"GoogLeNet: a {input_size}x{input_size} input is too small ({chain}): "
                         f"{problem}. The smallest usable input is {smallest}x{smallest}; "
                         f"upsample or pad the images (e.g. 28x28 digits to 32x32)")
    return {r.row: r for r in sizes}


def aux_pool(map_size):
    """(kernel, stride, output size) of an auxiliary head's average pool on a square map.

    5x5/3 in ceil mode (Caffe's): 14x14 -> 4x4 at 224. A map smaller than 5x5 is
    averaged whole (kernel = the map): 1x1 out.
    """
    kernel = min(AUX_POOL, map_size)
    return kernel, AUX_POOL_STRIDE, conv_output_size(map_size, kernel, AUX_POOL_STRIDE, 0, ceil_mode=True)


def adaptations(input_size):
    """Sentences saying what differs from Table 1's 224x224 layout at ``input_size``."""
    sizes = row_sizes(input_size)
    notes = []
    for row in TABLE_1:
        size = sizes[row.name]
        if row.kind == "maxpool" and size.kernel < row.patch:
            notes.append(f"{row.name}: its {row.patch}x{row.patch} window is larger than its "
                         f"{size.size_in}x{size.size_in} map, so it pools the whole map "
                         f"({size.kernel}x{size.kernel}/{row.stride}) -> {size.size_out}x{size.size_out}")
        if row.kind == "avgpool" and size.kernel != row.patch:
            notes.append(f"{row.name}: global average over the {size.kernel}x{size.kernel} map "
                         f"(Table 1's {row.patch}x{row.patch}/1 at 224)")
    aux_map = sizes["4a"].size_out
    kernel, _, out = aux_pool(aux_map)
    paper_out = aux_pool(table.row("4a").out_size)[2]
    if out != paper_out:
        notes.append(f"auxiliary heads: the {AUX_POOL}x{AUX_POOL}/{AUX_POOL_STRIDE} average pool on "
                     f"the {aux_map}x{aux_map} maps of 4a and 4d uses a {kernel}x{kernel} window and "
                     f"gives {out}x{out} ({paper_out}x{paper_out} at 224), so their fully connected "
                     f"layer sees {out * out} x {AUX_CONV_CHANNELS} features, not "
                     f"{paper_out * paper_out} x {AUX_CONV_CHANNELS} (times the width multiplier)")
    return notes
