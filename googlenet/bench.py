"""``python -m googlenet bench``: minigrad's ops benchmark on GoogLeNet's own layer shapes.

    python -m googlenet bench                     # batch 8, 224x224 input
    python -m googlenet bench --quick --only 3a   # a smoke run of module 3a's ops

Every convolution, pool and LRN of Table 1 and the auxiliary heads, timed forward
and backward (see ``minigrad.bench`` for what is measured and the targets).
``googlenet_op_shapes`` lists them; another network benchmarks its own layers by
listing its ``OpShape`` rows the same way.
"""
import argparse

import numpy

from minigrad import backend, bench, compare
from minigrad.bench import OpShape
from minigrad.geometry import conv_output_size

from . import table
from .sizes import row_sizes


def googlenet_op_shapes(batch=8, image_size=224):
    """Every conv, pool and LRN of GoogLeNet (Table 1 with its auxiliary heads) with its input shape."""
    row_sizes(image_size)                   # a ValueError naming the smallest usable input
    shapes, size, channels = [], image_size, 3

    def add_conv(name, c_in, c_out, kernel, stride=1, padding=0, at=None):
        shapes.append(OpShape(name, "conv2d", (batch, c_in, at or size, at or size),
                              dict(weight=(c_out, c_in, kernel, kernel), stride=stride, padding=padding)))

    def add_pool(name, op, c, kernel, stride, padding=0, ceil_mode=True, at=None):
        shapes.append(OpShape(name, op, (batch, c, at or size, at or size),
                              dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)))

    for row in table.TABLE_1:
        if row.kind == "conv":
            padding = (row.patch - 1) // 2          # 7x7/2 pad 3; 3x3 pad 1: "same" up to the stride
            if row.reduce:
                add_conv(f"{row.name}/reduce", channels, row.reduce, 1)
                channels = row.reduce
            add_conv(row.name, channels, row.out_channels, row.patch, row.stride, padding)
            size, channels = conv_output_size(size, row.patch, row.stride, padding), row.out_channels
        elif row.kind == "maxpool":         # as googlenet.sizes: never a window larger than the map
            kernel = min(row.patch, size)
            add_pool(row.name, "max_pool2d", channels, kernel, row.stride)
            size = conv_output_size(size, kernel, row.stride, 0, ceil_mode=True)
        elif row.kind == "avgpool":        # 7x7 at 224; the whole map (global) at smaller inputs
            add_pool(row.name, "avg_pool2d", channels, min(row.patch, size), row.stride, ceil_mode=False)
            size = 1
        elif row.kind == "inception":
            one, r3, three, r5, five, proj = row.widths
            add_conv(f"{row.name}/1x1", channels, one, 1)
            add_conv(f"{row.name}/3x3_reduce", channels, r3, 1)
            add_conv(f"{row.name}/3x3", r3, three, 3, padding=1)
            add_conv(f"{row.name}/5x5_reduce", channels, r5, 1)
            add_conv(f"{row.name}/5x5", r5, five, 5, padding=2)
            add_pool(f"{row.name}/pool", "max_pool2d", channels, 3, 1, padding=1, ceil_mode=False)
            add_conv(f"{row.name}/pool_proj", channels, proj, 1)
            channels = row.out_channels
        if row.name in table.LRN_AFTER:
            shapes.append(OpShape(f"lrn/{row.name}", "lrn", (batch, channels, size, size),
                                  dict(size=table.LRN_SIZE, alpha=table.LRN_ALPHA,
                                       beta=table.LRN_BETA, k=table.LRN_K)))
        if row.name in table.AUX_AFTER:
            head, kernel = f"aux/{row.name}", min(table.AUX_POOL, size)
            pooled = conv_output_size(size, kernel, table.AUX_POOL_STRIDE, 0, ceil_mode=True)
            add_pool(f"{head}/pool", "avg_pool2d", channels, kernel, table.AUX_POOL_STRIDE)
            add_conv(f"{head}/conv", channels, table.AUX_CONV_CHANNELS, 1, at=pooled)
    return shapes


# --- command line (python -m googlenet bench) ------------------------------------------------
def add_parser(subparsers):
    """Register ``bench`` on an argparse sub-parser collection."""
    parser = subparsers.add_parser("bench", help="time every conv, pool and LRN of GoogLeNet, "
                                   "forward and backward, against bare GEMMs", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_ops_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Prints the table; exit status 2 (one line on stderr) for options that cannot work.
    A comparison (``--device cpu,cuda``) also times the whole network in each configuration."""
    status = bench.run_ops(args, googlenet_op_shapes, "GoogLeNet")
    if status == 0 and "," in args.device:
        print_network_times(args)
    return status


def time_network(batch, image_size, device, kernel_set, repeats, seed=0):
    """Median seconds of a full-width GoogLeNet's eval forward and of one training step
    (forward with the auxiliary heads, the paper's loss, backward, SGD update), float32."""
    from minigrad import kernels
    from minigrad.autograd import Tensor, no_grad
    from minigrad.optim import SGD

    from .model import GoogLeNet, googlenet_loss
    model = GoogLeNet(input_size=image_size, seed=seed).to(device)
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = numpy.random.default_rng(seed)
    images = Tensor(rng.standard_normal((batch, 3, image_size, image_size), dtype=numpy.float32), device=device)
    labels = rng.integers(0, model.num_classes, batch)
    xp = backend.array_module_for(device)

    def forward():
        with no_grad():
            model.eval()(images)

    def training_step():
        loss = googlenet_loss(model.train()(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    with kernels.use(kernel_set):
        return {name: bench.median_seconds(step, repeats, xp)
                for name, step in (("forward", forward), ("training step", training_step))}


def print_network_times(args):
    """The whole network, in each minigrad configuration that can run here."""
    chosen, _ = compare.configurations(args.devices, with_torch=False)
    print(f"\nthe whole GoogLeNet (full width, {args.image_size}x{args.image_size}, batch {args.batch}), "
          f"median of {args.repeats}:")
    first = None
    for device, kernel_set in chosen:
        t = time_network(args.batch, args.image_size, device, kernel_set, args.repeats)
        first = first or t
        print(f"  {device} {kernel_set:<6}  forward {t['forward'] * 1e3:9.1f} ms   training step "
              f"{t['training step'] * 1e3:9.1f} ms   ({args.batch / t['training step']:.1f} images/s; "
              f"x{first['training step'] / t['training step']:.1f} over the first)")
