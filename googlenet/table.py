"""Table 1 of "Going deeper with convolutions" (Szegedy et al., 2014), as data.

One row per line of the printed table. ``widths`` holds an Inception module's six
columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj. For the stem's
second convolution the table prints "64" under #3x3 reduce and "192" under #3x3:
that row is a 1x1 convolution (64) followed by a 3x3 convolution (192), depth 2.

``paper_params`` and ``paper_ops`` are the figures exactly as printed ("2.7K",
"34M"): how many digits the paper gave says how precisely a figure can be
compared. ``googlenet.paper_figures`` reads them (params in K = 1024 weights, ops
in M = 10^6 multiply-adds; its docstring shows the arithmetic behind that reading)
and explains, with arithmetic, where they disagree; ``googlenet.summary`` prints
them beside our counts.
"""
from typing import NamedTuple, Optional, Tuple


class Row(NamedTuple):
    name: str
    kind: str                      # conv | maxpool | avgpool | inception | dropout | linear | softmax
    patch: Optional[int]           # kernel size (None where the table leaves it blank)
    stride: Optional[int]
    out_size: int                  # spatial size of the output at a 224x224 input
    depth: int                     # layers with parameters in this row
    out_channels: int
    widths: Optional[Tuple[int, int, int, int, int, int]] = None
    reduce: Optional[int] = None   # conv rows: the 1x1 reduction before the 3x3
    paper_params: Optional[str] = None   # as printed, e.g. "159K"
    paper_ops: Optional[str] = None      # as printed, e.g. "128M"


TABLE_1 = (
    Row("conv1", "conv", 7, 2, 112, 1, 64, paper_params="2.7K", paper_ops="34M"),
    Row("pool1", "maxpool", 3, 2, 56, 0, 64),
    Row("conv2", "conv", 3, 1, 56, 2, 192, reduce=64, paper_params="112K", paper_ops="360M"),
    Row("pool2", "maxpool", 3, 2, 28, 0, 192),
    Row("3a", "inception", None, None, 28, 2, 256, (64, 96, 128, 16, 32, 32), None, "159K", "128M"),
    Row("3b", "inception", None, None, 28, 2, 480, (128, 128, 192, 32, 96, 64), None, "380K", "304M"),
    Row("pool3", "maxpool", 3, 2, 14, 0, 480),
    Row("4a", "inception", None, None, 14, 2, 512, (192, 96, 208, 16, 48, 64), None, "364K", "73M"),
    Row("4b", "inception", None, None, 14, 2, 512, (160, 112, 224, 24, 64, 64), None, "437K", "88M"),
    Row("4c", "inception", None, None, 14, 2, 512, (128, 128, 256, 24, 64, 64), None, "463K", "100M"),
    Row("4d", "inception", None, None, 14, 2, 528, (112, 144, 288, 32, 64, 64), None, "580K", "119M"),
    Row("4e", "inception", None, None, 14, 2, 832, (256, 160, 320, 32, 128, 128), None, "840K", "170M"),
    Row("pool4", "maxpool", 3, 2, 7, 0, 832),
    Row("5a", "inception", None, None, 7, 2, 832, (256, 160, 320, 32, 128, 128), None, "1072K", "54M"),
    Row("5b", "inception", None, None, 7, 2, 1024, (384, 192, 384, 48, 128, 128), None, "1388K", "71M"),
    Row("avgpool", "avgpool", 7, 1, 1, 0, 1024),
    Row("dropout", "dropout", None, None, 1, 0, 1024),
    Row("linear", "linear", None, None, 1, 1, 1000, paper_params="1000K", paper_ops="1M"),
    Row("softmax", "softmax", None, None, 1, 0, 1000),
)

# The stem also holds two local response normalizations, which Table 1 leaves out
# but the paper's Figure 3 and the released Caffe model have: after pool1 and after conv2.
LRN_AFTER = ("pool1", "conv2")
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 1.0

# Auxiliary classifiers (paper, section 5), on the outputs of 4a and 4d.
AUX_AFTER = ("4a", "4d")
AUX_POOL, AUX_POOL_STRIDE = 5, 3
AUX_CONV_CHANNELS, AUX_FC, AUX_DROPOUT, AUX_WEIGHT = 128, 1024, 0.7, 0.3
MAIN_DROPOUT = 0.4

PAPER_TOTAL_DEPTH = 22               # layers with parameters (section 5)
PAPER_TOTAL_DEPTH_WITH_POOLING = 27
PAPER_MULTIPLY_ADDS = 1.5e9          # "a computational budget of 1.5 billion multiply-adds
                                     # at inference time" (section 1)


def row(name):
    """The row called ``name`` ("conv1", "3a", "pool4", ...)."""
    for r in TABLE_1:
        if r.name == name:
            return r
    raise KeyError(f"Table 1 has no row {name!r}; rows are {[r.name for r in TABLE_1]}")


def inception_rows():
    return tuple(r for r in TABLE_1 if r.kind == "inception")
