# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 6: The Inception module
#
# **Time:** about 60 minutes: 35 to read, 25 for the four exercises. The code runs in about 3 s at
# full size on 2 CPU cores.
#
# **Assumes:** lessons 4 and 5 (what a convolution and a max pool compute, their output sizes);
# `minigrad.nn`'s layers as lesson 3 used them (`nn.Sequential`, `nn.Linear`); the paper's
# Table 1 at hand helps (Szegedy et al. 2014, "Going deeper with convolutions").
#
# **What you will learn**
#
# - what a convolution costs, counted in multiply-adds from nothing but its shapes, and why a
#   1x1 convolution placed in front of a 5x5 one makes it about twenty times cheaper;
# - the four branches of an Inception module, run side by side on the same input, and how
#   their outputs are joined into one stack of feature maps;
# - where GoogLeNet's parameters and multiply-adds go, row by row of the paper's Table 1,
#   counted by our own layers;
# - to count these yourself (exercises 6.1 and 6.3), to write the module's forward (6.2) and to
#   build the module itself from `nn` layers (6.4).
#
# Every layer of `minigrad.nn` can say, for one example and without running,
# `output_shape(in_shape)`, `multiply_adds(in_shape)` and `num_parameters()`. We use them
# throughout, and check them against the formula.

# %%
import numpy
import matplotlib.pyplot as plt

from minigrad import Tensor, nn
from minigrad import functional as F
from course import check, pick
from googlenet import table
from googlenet.diagram import draw_googlenet, draw_inception, inception_boxes
from googlenet.model import GoogLeNet, Inception
from googlenet.summary import format_table, format_totals, layer_shapes, row_summaries
from minigrad.geometry import conv_output_size

# %% [markdown]
# ## What a convolution costs
#
# A convolution with weight $(F, C, K_H, K_W)$ slides over its input and, at each of its
# $O_H \times O_W$ output positions, multiplies every one of its weights with one input value
# and adds the product to an output. So it costs
#
# $$\text{multiply-adds} = \underbrace{F \cdot C \cdot K_H \cdot K_W}_{\text{weights}} \cdot
# \underbrace{O_H \cdot O_W}_{\text{positions}}, \qquad
# O_H = \left\lfloor \frac{H + 2P - K_H}{S} \right\rfloor + 1$$
#
# (stride $S$, padding $P$; the same for $O_W$). Biases, ReLUs and pools are not counted: they
# are one cheap operation per output, and the paper's Table 1 leaves them out too.
#
# Take the 5x5 branch of Inception 4a: its input is 480 feature maps of 14x14, and it makes 48
# maps of the same size (padding 2 keeps 14x14).

# %%
in_shape = (480, 14, 14)
direct = nn.Conv2d(480, 48, 5, padding=2)
print(direct, "->", direct.output_shape(in_shape))

filters, channels, kh, kw = direct.weight.shape
_, oh, ow = direct.output_shape(in_shape)
direct_cost = direct.multiply_adds(in_shape)
print(f"the layer says:  {direct_cost:>13,} multiply-adds")
print(f"the formula:     {filters * channels * kh * kw * oh * ow:>13,} = "
      f"{filters}x{channels}x{kh}x{kw} weights x {oh}x{ow} positions")

# %% [markdown]
# ## The 1x1 reduction
#
# A 1x1 convolution looks at one position at a time and mixes the channels there: it is a
# small fully connected layer applied at every pixel. GoogLeNet puts one with 16 filters in
# front of the 5x5 convolution, so that the 5x5 reads 16 channels instead of 480 (each 1x1
# convolution is followed by a ReLU, which we leave out here: it costs nothing in this count).

# %%
reduced = nn.Sequential(reduce=nn.Conv2d(480, 16, 1), conv=nn.Conv2d(16, 48, 5, padding=2))
print(reduced)
shape = in_shape
for name, layer in zip(("1x1 reduce", "5x5"), reduced):
    print(f"{name:<10} {str(shape):>14} -> {str(layer.output_shape(shape)):<14} "
          f"{layer.multiply_adds(shape):>12,} multiply-adds  {layer.weight.size:>8,} weights")
    shape = layer.output_shape(shape)
reduced_cost = reduced.multiply_adds(in_shape)
print(f"{'together':<10} {'':>32} {reduced_cost:>12,} multiply-adds  "
      f"{reduced.reduce.weight.size + reduced.conv.weight.size:>8,} weights")
print(f"direct     {'':>32} {direct_cost:>12,} multiply-adds  {direct.weight.size:>8,} weights")
print(f"\nthe reduction makes it {direct_cost / reduced_cost:.1f} times cheaper: "
      f"{direct_cost / 1e6:.1f} M -> {reduced_cost / 1e6:.1f} M multiply-adds")

# %% [markdown]
# The output has the same shape either way, but it is not the same function: the 5x5 filters
# now see 16 mixtures of the 480 input channels instead of all of them. The paper's bet
# (section 4) is that such low-dimensional summaries still hold most of what a patch has to
# say, and the ReLU after the reduction adds a non-linearity for free.
#
# **Exercise 6.1: the multiply-adds of a convolution.** From the shapes alone: an input of
# shape `in_shape = (C, H, W)`, `out_channels` filters of `kernel_size` x `kernel_size`, a
# `stride` and a `padding`. Return a whole number. It is checked against
# `nn.Conv2d(...).multiply_adds(in_shape)` on 4a's 5x5, its reduction, GoogLeNet's first
# layer (where the last window does not fit: see below) and a stride-2 convolution on 15x15.
#
# (Stuck after a wrong verdict? `check.hint("6.1")` prints the rule; `check.progress(6)`
# shows where this lesson's exercises stand.)

# %%
def conv_multiply_adds(in_shape, out_channels, kernel_size, stride, padding):
    channels, height, width = in_shape
    ### BEGIN SOLUTION exercise 6.1: multiply-adds of a convolution
    out_height = (height + 2 * padding - kernel_size) // stride + 1
    out_width = (width + 2 * padding - kernel_size) // stride + 1
    return out_channels * channels * kernel_size * kernel_size * out_height * out_width
    ### END SOLUTION


check.exercise("6.1", conv_multiply_adds)

# %% [markdown]
# **Floor, not ceil.** The output size rounds down: a window that would run past the padded input
# is not used. Whether that matters depends on whether $H + 2P - K$ is a multiple of $S$. On
# 15x15 with a 3x3 kernel and stride 2 it is ($15 - 3 = 12 = 6 \cdot 2$): the windows start at
# rows 0, 2, ..., 12 and the 7th, rows 12-14, ends exactly at the last row, so floor and ceil
# agree. In GoogLeNet's first layer it is not ($224 + 6 - 7 = 223$, odd): 112 windows start at
# padded rows 0, 2, ..., 222; a 113th would start at 224 and need padded rows 224-230 of the 230
# there are (0-229). Floor drops it: 112, Table 1's size. Only that case tells floor from ceil.

# %%
def windows_along(size, kernel, stride, padding):
    """(floor count, ceil count without Caffe's correction, (first, last) padded row of the last
    floor window, padded rows in all)."""
    span = size + 2 * padding - kernel
    floor, ceil = span // stride + 1, -(-span // stride) + 1
    last_start = (floor - 1) * stride
    return floor, ceil, (last_start, last_start + kernel - 1), size + 2 * padding


for name, geometry in {"15x15, 3x3, stride 2": (15, 3, 2, 0), "conv1: 224, 7x7, stride 2, pad 3": (224, 7, 2, 3)}.items():
    floor, ceil, (first_row, last_row), padded = windows_along(*geometry)
    print(f"{name}: floor {floor}, ceil {ceil}; the last window covers padded rows {first_row}-{last_row} "
          f"of 0-{padded - 1}")
assert windows_along(15, 3, 2, 0) == (7, 7, (12, 14), 15) and conv_output_size(15, 3, 2, 0) == 7
assert windows_along(224, 7, 2, 3) == (112, 113, (222, 228), 230) and conv_output_size(224, 7, 2, 3) == 112

# %% [markdown]
# ## The four branches
#
# An Inception module runs four branches on the same input (the paper's Figure 2b):
#
# | branch | layers | Table 1 columns |
# |---|---|---|
# | `branch1x1` | 1x1 | #1x1 |
# | `branch3x3` | 1x1 reduction, then 3x3 | #3x3 reduce, #3x3 |
# | `branch5x5` | 1x1 reduction, then 5x5 | #5x5 reduce, #5x5 |
# | `branch_pool` | 3x3 max pool (stride 1), then a 1x1 projection | pool proj |
#
# Every convolution is followed by a ReLU and padded so that the map keeps its size; the max
# pool has stride 1 and padding 1 for the same reason. Since all four outputs have the same
# height and width, they can be stacked along the channel axis. In our code the module *is*
# that: `Inception` is an `nn.Concat` of four named `nn.Sequential` branches, joined along
# axis 1. Here is Inception 3a, built from its Table 1 row:

# %%
row_3a = table.row("3a")
print("Table 1, 3a: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj =", row_3a.widths)
block = Inception(192, row_3a.widths, rng=numpy.random.default_rng(0))
print(block)

# %% [markdown]
# Drawn from the module itself (`googlenet/diagram.py` walks its branches and asks every layer
# for its kernel, channels and output shape, so the picture cannot drift from the code):

# %%
inception_figure = draw_inception(block, (192, 28, 28), title="Inception 3a, as built (the paper's Figure 2b)")

# %% [markdown]
# We run it on a batch of 28x28 maps with 192 channels (random numbers: only the shapes matter
# here), each branch on its own and then the whole module.

# %%
x = Tensor(numpy.random.default_rng(1).standard_normal((pick(2, 1), 192, 28, 28)).astype(numpy.float32))
branch_outputs = {}
for name, branch in block.named_children():
    branch_outputs[name] = branch(x)
    print(f"{name:<12} {tuple(x.shape)} -> {tuple(branch_outputs[name].shape)}")
y = block(x)
print(f"{'Inception':<12} {tuple(x.shape)} -> {tuple(y.shape)}")
n1x1, _, n3x3, _, n5x5, pool_proj = row_3a.widths
print(f"output channels: #1x1 + #3x3 + #5x5 + pool proj = {n1x1} + {n3x3} + {n5x5} + {pool_proj} "
      f"= {n1x1 + n3x3 + n5x5 + pool_proj}; block.out_channels = {block.out_channels}")

# %% [markdown]
# Where do the module's channels, weights and multiply-adds go? Each branch answers for itself.
# The 3x3 branch is the widest and, by far, the most expensive; the 5x5 branch is cheap
# *because* of its 16-channel reduction.

# %%
stats = {name: (branch[-1].out_channels, branch.num_parameters(), branch.multiply_adds((192, 28, 28)))
         for name, branch in block.named_children()}
for name, (out, params, madds) in stats.items():
    print(f"{name:<12} {out:>4} channels {params:>8,} parameters {madds:>12,} multiply-adds")

fig, ax = plt.subplots(figsize=(7, 2.4), layout="constrained")
for i, what in enumerate(("channels", "parameters", "multiply-adds")):
    total, left = sum(s[i] for s in stats.values()), 0.0
    for name, s in stats.items():
        ax.barh(what, s[i] / total, left=left, color=f"C{list(stats).index(name)}",
                label=name if i == 0 else None)
        left += s[i] / total
ax.set_xlabel("share of the module's total")
fig.legend(ncol=4, fontsize=8, loc="outside lower center")
fig.suptitle("Inception 3a: where the channels, parameters and multiply-adds go", fontsize=11)
ax.set_xlim(0, 1);

# %% [markdown]
# Why does the pool branch have a projection? A max pool keeps all 192 input channels. Passed
# through as they are (the paper's "naive" module, Figure 2a), the output would have
# 192 + 64 + 128 + 32 channels, and every module would add its width to the next one's input:
# the channel count, and the cost, would only grow with depth. The 1x1 projection keeps it at
# 32.
#
# **Exercise 6.2: the Inception forward.** Given the four branch modules, compute the module's
# output: run every branch on the same `x` and join the outputs along the channel axis with
# `F.concat(list_of_tensors, axis=...)`, in Table 1's order. It is checked against
# `Inception`'s own forward. That forward gets the same numbers a faster way: the three 1x1
# convolutions that read `x` (the 1x1 branch and the two reductions) run as one convolution
# with their filters stacked, one matrix product instead of three thin ones. In float32 its
# last bits can differ from the branches run one by one (the product adds in another order),
# so outputs are compared with `numpy.allclose`, not bit for bit.

# %%
def inception_forward(x, branch1x1, branch3x3, branch5x5, branch_pool):
    ### BEGIN SOLUTION exercise 6.2: Inception forward
    return F.concat([branch1x1(x), branch3x3(x), branch5x5(x), branch_pool(x)], axis=1)
    ### END SOLUTION


check.exercise("6.2", inception_forward)

# %% [markdown]
# Your forward on the 3a module above (the student version says "not implemented yet" until
# you write it):

# %%
try:
    yours = inception_forward(x, block.branch1x1, block.branch3x3, block.branch5x5, block.branch_pool)
    print("shape", tuple(yours.shape), "| equal to block(x):", numpy.allclose(yours.numpy(), y.numpy(), atol=1e-5))
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# **Exercise 6.3: the multiply-adds of an Inception module.** From Table 1's six widths and
# the side `size` of the (square) input map with `in_channels` channels. Use your
# `conv_multiply_adds` from 6.1: every convolution keeps the map's size, and the max pool
# has no weights. It is checked against `Inception(in_channels, widths).multiply_adds(...)` on
# 3a, 4a and a small module.

# %%
def inception_multiply_adds(in_channels, widths, size):
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = widths
    ### BEGIN SOLUTION exercise 6.3: multiply-adds of an Inception module
    def cost(channels, filters, kernel):        # a size-preserving convolution
        return conv_multiply_adds((channels, size, size), filters, kernel, 1, kernel // 2)
    return (cost(in_channels, n1x1, 1)
            + cost(in_channels, n3x3_reduce, 1) + cost(n3x3_reduce, n3x3, 3)
            + cost(in_channels, n5x5_reduce, 1) + cost(n5x5_reduce, n5x5, 5)
            + cost(in_channels, pool_proj, 1))
    ### END SOLUTION


check.exercise("6.3", inception_multiply_adds)

# %% [markdown]
# **Exercise 6.4: build the module.** So far the module was given. Build it from `minigrad.nn`
# layers: `build_inception(in_channels, widths)` returns an `nn.Concat` of four `nn.Sequential`
# branches, in Table 1's order (1x1, 3x3, 5x5, pool proj), joined along the channels:
#
# - every convolution is an `nn.Conv2d(in, out, kernel_size, padding=kernel_size // 2)` followed by
#   an `nn.ReLU()`, the 1x1 reductions included;
# - the 3x3 (5x5) convolution reads the #3x3 reduce (#5x5 reduce) channels of its reduction;
# - the pool branch is `nn.MaxPool2d(3, stride=1, padding=1)` (a max pool's stride defaults to its
#   kernel size), then the 1x1 projection.
#
# The checker counts each branch's parameters against the paper's widths, checks its layers'
# shapes, then copies `googlenet.model.Inception`'s weights into your convolutions and compares
# the outputs.

# %%
def build_inception(in_channels, widths):
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = widths
    ### BEGIN SOLUTION exercise 6.4: an Inception module from nn parts
    def conv_relu(c_in, c_out, kernel_size):
        return [nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2), nn.ReLU()]
    return nn.Concat(
        branch1x1=nn.Sequential(*conv_relu(in_channels, n1x1, 1)),
        branch3x3=nn.Sequential(*conv_relu(in_channels, n3x3_reduce, 1), *conv_relu(n3x3_reduce, n3x3, 3)),
        branch5x5=nn.Sequential(*conv_relu(in_channels, n5x5_reduce, 1), *conv_relu(n5x5_reduce, n5x5, 5)),
        branch_pool=nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *conv_relu(in_channels, pool_proj, 1)),
        axis=1)
    ### END SOLUTION


check.exercise("6.4", build_inception)

# %% [markdown]
# Your module, drawn by the same function as Inception 3a above: the ReLUs are layers of their
# own here (googlenet's `ConvReLU` folds each into its convolution), the rest is the same
# (the student version says "not implemented yet" until you write it).

# %%
try:
    your_module = build_inception(192, row_3a.widths)
    print(f"parameters: yours {your_module.num_parameters():,}, Inception 3a's {block.num_parameters():,}")
    draw_inception(your_module, (192, 28, 28), title="your Inception module, 3a's widths");
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Table 1, from our layers
#
# The whole network, in the paper's configuration (224x224 colour images, 1000 classes).
# `googlenet.summary` asks every layer for its output shape, parameters and multiply-adds and
# adds them up per row of Table 1; beside each figure it prints the paper's and marks whether
# they agree (`=`), agree within 2% (`~`) or disagree (`!`: three printed figures are typos;
# `python -m googlenet summary` explains each with arithmetic). Params are counted without
# biases, in K = 1024, as the paper does. Building the model only allocates weights: nothing
# runs on a 224x224 image here.

# %%
model = GoogLeNet()
lines, notes = format_table(model)
print("\n".join(lines))
print()
print("\n".join(format_totals(model)))

# %% [markdown]
# The same network drawn from its modules (`googlenet.diagram.draw_googlenet`): each box a layer
# with its kernel and filters, each Inception module with its six widths, its output size on the
# right, the two auxiliary classifiers beside the modules they read.

# %%
stack_figure = draw_googlenet(model)

# %% [markdown]
# Your 6.3 on the nine Inception rows, against the table's multiply-adds column:

# %%
rows = row_summaries(model)
inception_rows = [s for s in rows if s.row.kind == "inception"]
try:
    for s in inception_rows:
        yours = inception_multiply_adds(s.in_channels, s.widths, s.out_shape[1])
        print(f"{s.row.name}: yours {yours:>12,}  the table {s.multiply_adds:>12,}  "
              f"{'same' if yours == s.multiply_adds else 'DIFFERENT'}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# Where the cost sits, row by row. A weight costs one multiply-add per output position, so the
# same weights cost more on a larger map: conv2, on 56x56 maps, is the most expensive row of
# all, while the two modules on 7x7 maps, 5a and 5b, are the cheapest modules to run yet hold
# the most weights. The final linear layer's 1,000 x 1,024 weights are used once per image.

# %%
names = [s.row.name for s in rows if s.weights]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
left.bar(names, [s.multiply_adds / 1e6 for s in rows if s.weights])
left.set_title("multiply-adds per row (M)")
right.bar(names, [s.weights / 1e3 for s in rows if s.weights], color="C1")
right.set_title("weights per row (thousands)")
for ax in (left, right):
    ax.tick_params(axis="x", rotation=60)
fig.suptitle("GoogLeNet at 224x224, row by row of Table 1", fontsize=11)
fig.tight_layout()

# %% [markdown]
# ## What the reductions buy, module by module
#
# The same nine modules with the same output widths, but with the two 1x1 reductions removed:
# the 3x3 and 5x5 convolutions then read every input channel. We count with `nn.Conv2d`
# layers (the pool projection stays, so the outputs keep their channels).

# %%
def without_reductions(in_channels, widths, size):
    n1x1, _, n3x3, _, n5x5, pool_proj = widths
    convs = [nn.Conv2d(in_channels, n1x1, 1), nn.Conv2d(in_channels, n3x3, 3, padding=1),
             nn.Conv2d(in_channels, n5x5, 5, padding=2), nn.Conv2d(in_channels, pool_proj, 1)]
    return sum(conv.multiply_adds((in_channels, size, size)) for conv in convs)


savings = {}
print(f"{'module':<7} {'with 1x1 reductions':>20} {'without':>14} {'ratio':>6}")
for s in inception_rows:
    naive = without_reductions(s.in_channels, s.widths, s.out_shape[1])
    savings[s.row.name] = (s.multiply_adds, naive)
    print(f"{s.row.name:<7} {s.multiply_adds:>20,} {naive:>14,} {naive / s.multiply_adds:>6.2f}")
with_total = sum(a for a, _ in savings.values())
without_total = sum(b for _, b in savings.values())
network = sum(l.multiply_adds for l in layer_shapes(model) if not l.name.startswith("aux"))
print(f"all nine modules: {with_total / 1e6:,.0f} M with the reductions, {without_total / 1e6:,.0f} M without")
print(f"the whole network: {network / 1e6:,.0f} M as built, "
      f"{(network - with_total + without_total) / 1e6:,.0f} M without the reductions")

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson, asserted: the layers' counts are the formula; the 1x1 reduction
# cuts 4a's 5x5 branch from 112.9 M to 5.3 M multiply-adds; the Inception output is the four
# branch outputs stacked in Table 1's order, with #1x1 + #3x3 + #5x5 + pool proj channels;
# the summary's figures are the layers' own, the reductions make every module cheaper, and the
# diagram's boxes are 3a's layers.

# %%
assert direct_cost == 480 * 48 * 5 * 5 * 14 * 14 and round(direct_cost / 1e6, 1) == 112.9
assert reduced_cost == 480 * 16 * 14 * 14 + 16 * 48 * 5 * 5 * 14 * 14 and round(reduced_cost / 1e6, 1) == 5.3
assert direct_cost / reduced_cost > 20

assert tuple(y.shape) == (x.shape[0], 256, 28, 28) == (x.shape[0], *block.output_shape((192, 28, 28)))
assert block.out_channels == n1x1 + n3x3 + n5x5 + pool_proj == row_3a.out_channels
stacked = numpy.concatenate([branch_outputs[name].numpy() for name in
                             ("branch1x1", "branch3x3", "branch5x5", "branch_pool")], axis=1)
assert numpy.allclose(stacked, y.numpy(), rtol=1e-5, atol=1e-5)
assert isinstance(block, nn.Concat) and block.axis == 1

by_name = {s.row.name: s for s in rows}
assert by_name["3a"].multiply_adds == block.multiply_adds((192, 28, 28)) == 128_049_152
shapes = [l for l in layer_shapes(model) if not l.name.startswith("aux")]
assert network == sum(s.multiply_adds for s in rows) and round(network / 1e9, 2) == 1.58
assert sum(l.params for l in shapes) == model.num_parameters() - model.aux1.num_parameters() \
    - model.aux2.num_parameters()
assert max(rows, key=lambda s: s.multiply_adds).row.name == "conv2"
assert sorted(inception_rows, key=lambda s: s.multiply_adds)[0].row.name == "5a"
assert sorted(inception_rows, key=lambda s: s.multiply_adds)[1].row.name == "5b"
assert [s.row.name for s in sorted(rows, key=lambda s: -s.weights)[:2]] == ["5b", "5a"]
assert max(stats, key=lambda name: stats[name][2]) == max(stats, key=lambda name: stats[name][0]) == "branch3x3"
assert stats["branch3x3"][2] > sum(s[2] for s in stats.values()) / 2
assert all(naive > 2 * ours for ours, naive in savings.values())
assert network - with_total + without_total > 2.5 * network
branch_boxes = [box.text for _, boxes in inception_boxes(block, (192, 28, 28))[0] for box in boxes]
assert branch_boxes == ["conv 1x1, 64 + ReLU", "conv 1x1, 96 + ReLU", "conv 3x3, 128 + ReLU", "conv 1x1, 16 + ReLU",
                        "conv 5x5, 32 + ReLU", "max pool 3x3 pad 1", "conv 1x1, 32 + ReLU"]
print("all claims hold")

# %% [markdown]
# ## Questions
#
# **6.a** Why must every branch keep the map's height and width, and what does it take for
# each kind of layer in the module?
#
# ### BEGIN ANSWER question 6.a
# The four outputs are joined along the channels, which needs the same (N, H, W) from every
# branch. A KxK convolution with stride 1 keeps the size with padding K // 2 (0 for 1x1, 1 for
# 3x3, 2 for 5x5); the 3x3 max pool needs stride 1 and padding 1 (its stride would otherwise
# default to 3, as nn.MaxPool2d's does).
# ### END ANSWER
#
# **6.b** The 16-channel 1x1 reduction makes 4a's 5x5 branch 21 times cheaper. What does the
# branch lose for it?
#
# ### BEGIN ANSWER question 6.b
# The 5x5 filters no longer see the 480 input channels, only 16 linear mixtures of them (then a
# ReLU): whatever the 5x5 detects must be expressible in those 16 summaries, a bottleneck of
# rank 16 per pixel. The paper's bet (section 4) is that this loses little, because the
# 480 channels are highly correlated; the training results are its evidence.
# ### END ANSWER
#
# **6.c** For which of exercise 6.1's four cases do floor and ceil give different output sizes,
# and why not for the other stride-2 case?
#
# ### BEGIN ANSWER question 6.c
# Only for conv1: $224 + 2 \cdot 3 - 7 = 223$ is odd, so $\lfloor 223/2 \rfloor + 1 = 112$ but
# $\lceil 223/2 \rceil + 1 = 113$. On 15x15 with a 3x3 kernel and stride 2, $15 - 3 = 12$ is a
# multiple of 2: the 7th window covers rows 12-14, the last rows there are, and floor and ceil
# both give 7. The stride-1 cases cannot differ at all.
# ### END ANSWER

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(6)
