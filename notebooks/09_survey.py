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
# # Lesson 9: The survey's networks side by side
#
# **Time:** about 60 minutes: 45 to read, 15 for the three exercises. The code runs in about
# 30 s at full size on 2 CPU cores: building the large networks and timing a forward
# pass of each, then six short training runs.
#
# **Assumes:** lessons 4-7 (convolutions and their cost, pooling, the Inception module,
# GoogLeNet and why it waits at chance before it learns); the survey's papers are cited where
# they are used (LeNet-5 1998, AlexNet 2012, VGG and GoogLeNet 2014, ResNet 2015).
#
# **What you will learn**
#
# - LeNet-5 as its 1998 paper built it: trainable subsampling, a partial connection table, a
#   scaled tanh and an RBF output, 60,000 parameters, counted by its own layers;
# - how big, how costly and how deep each network of the survey is (LeNet-5, AlexNet, VGG,
#   ResNet, whichever this checkout has, and GoogLeNet), and how long a forward pass takes here;
# - what groups do to a convolution's parameters (exercise 9.1);
# - the receptive field of a stack of layers (exercise 9.2), and why VGG stacks 3x3
#   convolutions instead of one large one (exercise 9.3);
# - the GoogLeNet paper's claims checked with our own counts: "12 times fewer parameters than"
#   AlexNet while deeper, and global average pooling instead of a large fully connected layer;
# - how fast each network learns the digits on a CPU, all trained the same way.
#
# Every count below is asked of the layers themselves (`output_shape`, `multiply_adds`,
# `depth`, `num_parameters`, tabulated by `minigrad.summary`), never typed in.
#
# NumPy's BLAS is held to one thread here: every time in this lesson is then one core's, the
# same on a quiet and a busy machine (with two threads, other work on the machine made the
# threads wait for each other and this lesson three times slower).

# %%
import time

import numpy
import matplotlib.pyplot as plt

import zoo
from googlenet import table as googlenet_table
from googlenet.paper_figures import printed
from minigrad import Tensor, nn, no_grad
from minigrad import functional as F
from minigrad.data import DataLoader, load_dataset
from course import check, fast, pick
from course.lesson9 import (conv_parameters_reference, factorization_savings_reference,
                            measured_receptive_field, receptive_field_reference)
from minigrad.optim import SGD
from minigrad.summary import format_summary, layer_rows, shape_text
from threadpoolctl import threadpool_limits
from zoo import summary

threadpool_limits(limits=1, user_api="blas")

NETWORKS = zoo.load_all()                  # every registered zoo network, GoogLeNet among them
print("networks in this checkout:", ", ".join(NETWORKS))

# %% [markdown]
# `zoo.MODELS` holds every network a module of `zoo/` registers (`zoo.load_all()` imports them;
# `zoo/googlenet.py` registers GoogLeNet). Each comes with a builder
# `build(num_classes, in_channels, input_size, width, seed)` and the input size of its paper.
# The lesson works with whatever is registered: a network that is not there is left out.
#
# ## LeNet-5, as in 1998
#
# LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
# recognition" (1998), section II.B. Seven layers with weights on a 32x32 image:
#
# - **C1** six 5x5 convolutions (28x28 maps);
# - **S2** subsampling: each unit adds the four inputs of its 2x2 window, multiplies the sum by
#   a *trainable coefficient* and adds a *trainable bias* (one of each per map), then squashes;
# - **C3** sixteen 5x5 convolutions, but each reads only some of S2's six maps (Table I of the
#   paper): it "keeps the number of connections within reasonable bounds" and "forces a break
#   of symmetry in the network";
# - **S4** subsampling as S2; **C5** 120 5x5 convolutions on all sixteen maps (1x1 maps at a
#   32x32 input); **F6** 84 fully connected units;
# - the **output**: ten Euclidean RBF units, $y_i = \sum_j (x_j - w_{ij})^2$, with fixed
#   prototypes $w_i \in \{-1, +1\}^{84}$: the class is the nearest prototype.
#
# Every unit up to F6 is squashed by $f(a) = A \tanh(S a)$ with $A = 1.7159$ and $S = 2/3$,
# chosen so that $f(\pm 1) = \pm 1$. `zoo/lenet.py` builds it from minigrad's ops; its docstring
# says what differs from 1998 (random prototypes instead of the paper's hand-drawn bitmaps,
# trained with SGD).

# %%
lenet1998 = zoo.build("lenet5")
print(format_summary(lenet1998, (1, 32, 32), title="LeNet-5 (1998), one 32x32 digit"))
print(f"\nf(1) = {lenet1998.squash1(Tensor(numpy.array([1.0]))).item():.5f}; "
      f"the RBF's prototypes: {lenet1998.output.prototypes.shape}, fixed, not parameters")

# %% [markdown]
# Section II.B gives each layer's trainable parameters: C1 156, S2 12, C3 1,516, S4 32,
# C5 48,120, F6 10,164, 60,000 in all, and our layers agree one by one. C3's 1,516 are
# $60 \times 25 + 16$: sixty of the 96 (C3 map, S2 map) pairs are connected. Here is
# Table I, read back from the layer itself (which kernels of its convolution are not zero):

# %%
connected = numpy.abs(lenet1998.c3.full_kernel().numpy()).sum(axis=(2, 3)) > 0      # (16 C3, 6 S2)
fig, ax = plt.subplots(figsize=(6, 2.2))
ax.imshow(connected.T, cmap="Greys", vmin=0, vmax=1.3)
ax.set_xticks(range(16))
ax.set_yticks(range(6))
ax.set_xlabel("C3 map")
ax.set_ylabel("S2 map")
ax.set_title(f"Table I: {connected.sum()} of {connected.size} pairs connected")
plt.show()

# %% [markdown]
# The paper also counts *connections*: a weight or bias used at every unit it feeds. For a
# convolution or a fully connected layer that is (weights + biases) x output positions, for
# a subsampling unit its 4 inputs and its bias, and the RBF's 840 fixed weights. Our
# multiply-adds leave biases (and the subsampling's additions) out, so they come out lower:

# %%
rows = {r.name: r for r in layer_rows(lenet1998, (1, 32, 32))}
connections = {}
for name in ("c1", "s2", "c3", "s4", "c5", "f6", "output"):
    if name.startswith("s"):                     # each unit: 4 inputs and a bias
        connections[name] = 5 * numpy.prod(rows[name].out_shape, dtype=int)
    elif name == "output":                       # the fixed prototypes, once each
        connections[name] = rows[name].multiply_adds
    else:                                        # every weight and bias at every output position
        connections[name] = rows[name].params * numpy.prod(rows[name].out_shape[1:], dtype=int)
for name, count in connections.items():
    print(f"{name:<7} {count:>9,} connections   {rows[name].multiply_adds:>9,} multiply-adds")
print(f"total   {sum(connections.values()):>9,} connections   "
      f"{sum(r.multiply_adds for r in rows.values()):>9,} multiply-adds")

# %% [markdown]
# 340,908 connections is the paper's figure, digit for digit.
#
# ## All the networks, counted and timed
#
# Each network at its paper's input (224x224 GoogLeNet, VGG, ResNet; 227x227 AlexNet; 32x32
# LeNet-5) with its paper's classes: parameters, multiply-adds per image, depth (layers with
# weights on the longest path) and the CPU time of a forward pass of one image (one timed
# pass after a warm-up: the large networks take a second each; `python -m zoo`
# prints the same table with the median of five). Building the four VGGs, 133 to 144 million
# random weights each, takes most of this cell's time. (Running fast, the large networks are
# built 16 times narrower on 32x32 images, so the figures are much smaller.)

# %%
SIZE, WIDTH = pick((None, 1.0), (32, 1 / 16))
REPEATS = 1


def table_options(name):
    """The paper's network (full mode); running fast, the large ones small. LeNet-5 is small
    already and stays as it is."""
    _, paper_size = NETWORKS[name]
    return {} if paper_size <= 32 else dict(input_size=SIZE, width=WIDTH)


table, own_counts = [], {}
for name in NETWORKS:                          # one network in memory at a time
    model, in_shape = zoo.build_at_input(name, **table_options(name))
    table.append(summary.figures(name, model, in_shape, repeats=REPEATS))
    own_counts[name] = model.num_parameters()
    del model
print(summary.format_comparison(table))
rates = {r.name: r.multiply_adds / r.seconds / 1e9 for r in table}
print("billions of multiply-adds per second:", ", ".join(f"{name} {rate:.2g}" for name, rate in rates.items()))
figure = summary.plot_comparison(table)
figure.suptitle("every network at its paper's input: size, cost and one forward pass on one core", fontsize=10)
figure.tight_layout()

# %% [markdown]
# The time follows the multiply-adds, but not in proportion: read the rates. Every layer
# costs a fixed amount besides its arithmetic (a Python call per op, copies, a small matrix
# product that does not keep the processor busy), which a large network's large products
# hide and a small network's do not.
#
# ## Exercise 9.1: groups
#
# AlexNet was trained on two GPUs, half of its filters on each; in conv2, conv4 and conv5 a
# filter reads only the maps of its own GPU. A convolution with `groups` $g$ splits its input
# and output channels into $g$ groups, and each filter reads only its group's inputs:
#
# $$\text{parameters} = C_\text{out} \cdot \frac{C_\text{in}}{g} \cdot K^2
# \;+\; C_\text{out}\ \text{(biases)}.$$
#
# **Exercise 9.1.** Return the number of parameters of a convolution (`bias`: whether it
# has one bias per output channel).
#
# (Stuck after a wrong verdict? `check.hint("9.1")` prints the rule; `check.progress(9)`
# shows where this lesson's exercises stand.)

# %%
def conv_parameters(in_channels, out_channels, kernel_size, groups=1, bias=True):
    ### BEGIN SOLUTION exercise 9.1: parameters of a convolution with groups
    weights = out_channels * (in_channels // groups) * kernel_size * kernel_size
    return weights + (out_channels if bias else 0)
    ### END SOLUTION


check.exercise("9.1", conv_parameters)

# %% [markdown]
# AlexNet, layer by layer from Krizhevsky, Sutskever and Hinton (2012), Figure 2 and section
# 3.5 (kernel size, channels in, channels out, groups; the first fully connected layer reads
# the 6x6x256 maps of conv5):

# %%
ALEXNET = {"conv1": (11, 3, 96, 1), "conv2": (5, 96, 256, 2), "conv3": (3, 256, 384, 1),
           "conv4": (3, 384, 384, 2), "conv5": (3, 384, 256, 2),
           "fc6": (1, 6 * 6 * 256, 4096, 1), "fc7": (1, 4096, 4096, 1), "fc8": (1, 4096, 1000, 1)}
alexnet_layers = {name: conv_parameters_reference(c_in, c_out, k, groups)
                  for name, (k, c_in, c_out, groups) in ALEXNET.items()}
alexnet_params = sum(alexnet_layers.values())
for name, count in alexnet_layers.items():
    print(f"{name:<6} {count:>11,}")
one_tower = sum(conv_parameters_reference(c_in, c_out, k) for k, c_in, c_out, _ in ALEXNET.values())
print(f"total  {alexnet_params:>11,}   (the paper: \"60 million parameters\"); without groups {one_tower:,}")
try:
    yours = sum(conv_parameters(c_in, c_out, k, groups) for k, c_in, c_out, groups in ALEXNET.values())
    print(f"your conv_parameters gives {yours:,}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# (A fully connected layer is counted here as a 1x1 convolution on the flattened maps: the
# same count.) Most of AlexNet's parameters sit in one layer, fc6:

# %%
print(f"fc6 holds {alexnet_layers['fc6'] / alexnet_params:.0%} of AlexNet's parameters, the three fully "
      f"connected layers {sum(alexnet_layers[n] for n in ('fc6', 'fc7', 'fc8')) / alexnet_params:.0%}")

# %% [markdown]
# When this checkout has AlexNet registered, its own count must be the same:

# %%
if "alexnet" in NETWORKS:
    alexnet, alexnet_shape = zoo.build_at_input("alexnet")     # at its paper's input, even running fast
    alexnet_figures = summary.figures("alexnet", alexnet, alexnet_shape)
    del alexnet
    print(f"zoo's alexnet at {shape_text(alexnet_shape)}: {alexnet_figures.params:,} parameters, "
          f"depth {alexnet_figures.depth}")
else:
    alexnet_figures = None
    print("AlexNet is not registered in this checkout: the counts below use the paper's layers above.")
alexnet_depth = alexnet_figures.depth if alexnet_figures else len(ALEXNET)

# %% [markdown]
# ## "12 times fewer parameters", and deeper
#
# The GoogLeNet paper, section 1: "Our GoogLeNet submission to ILSVRC 2014 actually uses 12x
# fewer parameters than the winning architecture of Krizhevsky et al [9] from two years ago,
# while being significantly more accurate." Our GoogLeNet, as used for inference (without the two
# auxiliary classifiers, which only training uses), at 224x224 and 1,000 classes:

# %%
googlenet, googlenet_shape = zoo.build_at_input("googlenet")
googlenet_figures = summary.figures("googlenet", googlenet, googlenet_shape)
classifier = googlenet.linear.num_parameters()
ratio = alexnet_params / googlenet_figures.params
print(f"GoogLeNet: {googlenet_figures.params:,} parameters, depth {googlenet_figures.depth}; "
      f"AlexNet: {alexnet_params:,}, depth {alexnet_depth}")
print(f"AlexNet / GoogLeNet = {ratio:.2f}x; without GoogLeNet's final classifier "
      f"({classifier:,} parameters): {alexnet_params / (googlenet_figures.params - classifier):.2f}x")
column = sum(printed(row.paper_params).value for row in googlenet_table.TABLE_1 if row.paper_params)
print(f"GoogLeNet's Table 1, its params column summed: {column:,.0f} weights "
      f"({alexnet_params / column:.2f}x fewer than AlexNet)")

# %% [markdown]
# We measure 9 to 10 times fewer, not 12, however GoogLeNet is counted: with or without its
# 1,000-way classifier, or as the paper's own Table 1 adds up. What holds is the direction and
# its size: close to an order of magnitude fewer parameters, with almost three times the depth.
#
# ## The receptive field of a stack
#
# One output unit of a KxK convolution sees a KxK window of its input. Put a second KxK
# convolution on top: each of *its* units sees KxK units of the first, whose windows overlap,
# so it sees $2K - 1$ pixels across. In general a layer adds $(k - 1)$ units of its own input,
# and one unit of that input is $s_1 s_2 \cdots$ pixels apart (the strides below it):
#
# $$r = 1 + \sum_i (k_i - 1) \prod_{j < i} s_j .$$
#
# We can *measure* it: set every weight to one, back-propagate from one output unit in the
# middle, and see which input pixels get a gradient (`measured_receptive_field` does that
# with minigrad's convolutions). The gradient shows more: the middle of the window counts
# many times over, the edges once.

# %%
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for count, ax in zip((1, 2, 3), axes):
    layers = [(3, 1)] * count
    x = Tensor(numpy.ones((1, 1, 9, 9)), requires_grad=True)
    out = x
    for _ in range(count):
        out = F.conv2d(out, numpy.ones((1, 1, 3, 3)))
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    window = measured_receptive_field(layers)
    ax.imshow(x.grad[0, 0], cmap="viridis")
    ax.set_title(f"{count} x 3x3: a {window}x{window} window")
    ax.axis("off")
plt.show()

# %% [markdown]
# **Exercise 9.2.** `layers` is a list of `(kernel, stride)` pairs, bottom first
# (convolutions and pools alike; padding moves the window, it does not widen it). Return the
# side $r$ of the input window that one unit of the last layer sees.

# %%
def receptive_field(layers):
    ### BEGIN SOLUTION exercise 9.2: receptive field of a stack
    side, jump = 1, 1
    for kernel, stride in layers:
        side += (kernel - 1) * jump
        jump *= stride
    return side
    ### END SOLUTION


check.exercise("9.2", receptive_field)

# %%
STACKS = {"LeNet-5 up to C5": [(5, 1), (2, 2), (5, 1), (2, 2), (5, 1)],
          "AlexNet up to conv5": [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1)],
          "VGG-16 up to its last conv": [(3, 1)] * 2 + [(2, 2)] + [(3, 1)] * 2 + [(2, 2)] +
                                        ([(3, 1)] * 3 + [(2, 2)]) * 2 + [(3, 1)] * 3}
for name, layers in STACKS.items():
    print(f"{name:<28} {receptive_field_reference(layers):>4} pixels (measured: "
          f"{measured_receptive_field(layers)})")
try:
    print("yours:", [receptive_field(layers) for layers in STACKS.values()])
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# LeNet-5's C5 sees the whole 32x32 image, exactly: a 5x5 convolution on 5x5 maps is a fully
# connected layer that can still slide on a larger input. The deep networks' last
# convolutions see most of a 224x224 image.
#
# ## Two 3x3 instead of a 5x5, three instead of a 7x7
#
# VGG (Simonyan and Zisserman, 2014, section 2.3): "a stack of two 3x3 conv. layers (without
# spatial pooling in between) has an effective receptive field of 5x5; three such layers have
# a 7x7 effective receptive field." The stack is cheaper: with $C$ channels in and out, three
# 3x3 layers have $3 \cdot 3^2 C^2 = 27 C^2$ weights, one 7x7 layer $49 C^2$; and it has
# three ReLUs instead of one. Counted by minigrad's layers (no biases), for one channel pair
# and for 64 channels, with the multiply-adds on a 56x56 map (padded, so every layer keeps it):

# %%
factorized = {}
for channels in (1, 64):
    for kernel in (5, 7):
        depth = (kernel - 1) // 2
        one = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)
        stack = nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(depth)])
        shape = (channels, 56, 56)
        factorized[channels, kernel] = (one.num_parameters(), stack.num_parameters())
        window = measured_receptive_field([(3, 1)] * depth)
        print(f"{channels:>2} -> {channels:<2} channels: one {kernel}x{kernel} {one.num_parameters():>7,} weights, "
              f"{one.multiply_adds(shape) / 1e6:6.1f} M multiply-adds; {depth} x 3x3 {stack.num_parameters():>7,} "
              f"weights, {stack.multiply_adds(shape) / 1e6:6.1f} M ({stack.num_parameters() / one.num_parameters():.0%}), "
              f"a {window}x{window} window")

# %% [markdown]
# **Exercise 9.3.** A KxK convolution from `in_channels` to `out_channels` is replaced by a
# stack of 3x3 convolutions with the same receptive field: the first reads `in_channels`,
# every layer makes `out_channels`. Return how many weights that saves (biases not counted;
# negative if the stack costs more).

# %%
def factorization_savings(in_channels, out_channels, kernel_size):
    ### BEGIN SOLUTION exercise 9.3: weights saved by stacking 3x3 convolutions
    layers = (kernel_size - 1) // 2
    one = kernel_size * kernel_size * in_channels * out_channels
    stack = 9 * in_channels * out_channels + (layers - 1) * 9 * out_channels * out_channels
    return one - stack
    ### END SOLUTION


check.exercise("9.3", factorization_savings)

# %% [markdown]
# The saving grows with the channels, as $C^2$. On a first layer, where 3 colour channels go
# to 64, it turns negative: the stack's later layers (64 -> 64) cost more than the whole 7x7.

# %%
for c_in, c_out in ((3, 64), (64, 64), (256, 256), (512, 512)):
    saved = factorization_savings_reference(c_in, c_out, 7)
    print(f"7x7, {c_in:>3} -> {c_out:<3}: {saved:>+12,} weights saved "
          f"({saved / (49 * c_in * c_out):+.0%} of the 7x7's)")
try:
    print("yours for 512 -> 512:", f"{factorization_savings(512, 512, 7):+,}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Global average pooling instead of a fully connected layer
#
# GoogLeNet ends its convolutions with 1024 maps of 7x7. AlexNet and VGG put fully connected
# layers there; GoogLeNet averages each map to one number (section 5: "The use of average
# pooling before the classifier is based on [12] ... a move from fully connected layers to
# average pooling improved the top-1 accuracy by about 0.6%"). A fully connected layer from
# 7x7x1024 to 1024 units would be a 7x7 convolution with 1024 filters and no room to slide:

# %%
googlenet_rows = {r.name: r for r in layer_rows(googlenet, googlenet_shape)}
pool = googlenet_rows["avgpool"]
fully_connected = conv_parameters_reference(1024, 1024, 7, bias=False)
print(f"GoogLeNet's {pool.layer}: {pool.params} parameters, {pool.multiply_adds} multiply-adds, "
      f"output {shape_text(pool.out_shape)}")
print(f"a fully connected 7x7x1024 -> 1024 instead: {fully_connected:,} weights "
      f"({fully_connected / 1e6:.1f} M), {fully_connected / googlenet_figures.params:.1f}x all of "
      f"GoogLeNet's {googlenet_figures.params:,}")

# %% [markdown]
# ## Learning the digits, side by side
#
# The same recipe for every network: the 1,797 digits upsampled to 32x32 (80% to train on),
# SGD with momentum 0.9, learning rate 0.01, 120 steps of 32 images (3,840 images, under three
# epochs), cross-entropy on the logits (LeNet-5's are minus the RBF distances: cross-entropy on
# them is the paper's own criterion, its eq. 9, without the "rubbish class" term). The networks
# made for 224x224 images are built for 32x32 digits (one channel, ten classes) and 16 times
# narrower. That is a short run, sized so that all six train in about a quarter of a minute on
# one core; it is long enough to see who learns at once and who waits. The clock runs while
# they train, not while they are evaluated on the held-out fifth (every 20 steps).

# %%
TRAINED = [name for name in ("lenet5", "lenet5-modern", "alexnet", "vgg11", "resnet18", "googlenet")
           if name in NETWORKS]
TRAIN_WIDTH = 1 / 16
BATCH, STEPS, EVERY = 32, pick(120, 3), pick(20, 3)

train_set, held_out = load_dataset("digits", size=32)
mean, std = train_set.channel_stats()
loader = DataLoader(train_set, BATCH, shuffle=True, mean=mean, std=std, drop_last=True)
held_x, held_y = next(iter(DataLoader(held_out, len(held_out), mean=mean, std=std)))


def held_out_accuracy(model):
    model.eval()
    with no_grad():
        accuracy = F.accuracy(model(Tensor(held_x)), held_y)
    model.train()
    return accuracy


def train(name):
    """The model after STEPS steps, and [(seconds of training so far, held-out accuracy)]
    at the start and every EVERY steps."""
    builder, paper_size = NETWORKS[name]
    width = 1.0 if paper_size <= 32 else TRAIN_WIDTH
    model = builder(num_classes=10, in_channels=1, input_size=32, width=width, seed=0)
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
    curve, seconds, step = [(0.0, held_out_accuracy(model))], 0.0, 0
    while step < STEPS:
        for images, labels in loader.batches(epoch=step // len(loader)):
            start = time.perf_counter()
            loss = F.cross_entropy(model(Tensor(images)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seconds += time.perf_counter() - start
            step += 1
            if step % EVERY == 0:
                curve.append((seconds, held_out_accuracy(model)))
            if step == STEPS:
                break
    return model, curve


curves, trained = {}, {}
for name in TRAINED:
    trained[name], curves[name] = train(name)
    seconds, accuracy = curves[name][-1]
    print(f"{name:<14} {trained[name].num_parameters():>9,} parameters: {accuracy:6.1%} held-out "
          f"after {STEPS} steps, {seconds:5.1f} s of training")

fig, ax = plt.subplots(figsize=(7, 4))
for name, curve in curves.items():
    ax.plot(*zip(*curve), marker=".", label=name)
ax.set_xlabel("training time on this CPU (s)")
ax.set_ylabel("held-out accuracy")
ax.set_title(f"held-out accuracy on the digits: {STEPS} steps of {BATCH} images, one core")
ax.legend()
plt.show()

# %% [markdown]
# Size is not speed of learning. For each network: when its held-out accuracy first passed
# 50%, in steps and in seconds of training (if it did within the run):

# %%
for name, curve in curves.items():
    passed = [(number * EVERY, seconds) for number, (seconds, accuracy) in enumerate(curve) if accuracy > 0.5]
    when = f"after {passed[0][0]:>3} steps ({passed[0][1]:4.1f} s)" if passed else f"not within {STEPS} steps"
    print(f"{name:<14} {curve[-1][0] / STEPS * 1e3:6.1f} ms per step; above 50% held-out {when}")

# %% [markdown]
# LeNet-5 was made for exactly this problem, and on 32x32 digits the two LeNets are hard to
# beat for the time they take: a LeNet is the first past 50%, within its first steps. The
# modern one (ReLU, max pooling, softmax) learns faster than the 1998 original (scaled tanh,
# trainable subsampling, RBF output), which is still behind it when the run ends. A network
# that stays near 10% (chance) for the whole run is not broken: without batch norm, with the
# initialization of its paper, the signal needs many steps to get through (lesson 7 measured
# this for GoogLeNet, layer by layer: well over a hundred steps). Batch norm, which ResNet
# puts after every convolution, is one way to remove that wait: of the four networks made for
# ImageNet, only ResNet learns within this run.
#
# ## Check yourself
#
# The claims of this lesson, asserted: LeNet-5's counts are the paper's (60,000 parameters,
# 340,908 connections, Table I's 60 pairs); every row of the table is the network's own
# count (its layers' sum is the model's own), and (at full size) the largest network computes
# faster per multiply-add than the smallest; AlexNet's 60,965,224 parameters are 8.5 to 10.5
# times GoogLeNet's, however counted, and GoogLeNet is deeper; the deep networks' last
# convolutions see more than half of a 224x224 image; the 3x3 stacks see 5x5 and 7x7 windows
# with 18 and 27 weights per channel pair against 25 and 49; global average pooling avoids
# 51.4 M weights; every training curve is a run of accuracies in time, and (at full length)
# both LeNets pass 75% and the modern one 90%, ahead of the 1998 one, a LeNet is the first past 50%, ResNet passes
# 80%, and the three networks without batch norm stay below 50% throughout.

# %%
assert lenet1998.num_parameters() == 60_000 == 156 + 12 + 1516 + 32 + 48120 + 10164
assert sum(connections.values()) == 340_908 and connected.sum() == 60
assert all(figures.params == own_counts[figures.name] for figures in table) and len(table) == len(NETWORKS)
assert alexnet_params == 60_965_224 and alexnet_layers["fc6"] / alexnet_params > 0.6
if alexnet_figures:
    assert alexnet_figures.params == alexnet_params and alexnet_figures.depth == 8
assert googlenet_figures.params == 6_998_552 and googlenet_figures.depth == 22 > alexnet_depth
assert 8.5 < ratio < alexnet_params / column < alexnet_params / (googlenet_figures.params - classifier) < 10.5
assert one_tower == 62_378_344 and 2.5 < googlenet_figures.depth / alexnet_depth < 3
assert [measured_receptive_field([(3, 1)] * n) for n in (2, 3)] == [5, 7]
assert factorized[1, 5] == (25, 18) and factorized[1, 7] == (49, 27)
assert factorized[64, 7] == (49 * 64 * 64, 27 * 64 * 64)
assert receptive_field_reference(STACKS["LeNet-5 up to C5"]) == 32
assert all(224 / 2 < receptive_field_reference(STACKS[name]) < 224 for name in list(STACKS)[1:])
if not fast():
    largest, smallest = max(table, key=lambda r: r.multiply_adds), min(table, key=lambda r: r.multiply_adds)
    assert rates[largest.name] > 5 * rates[smallest.name]
assert fully_connected == 7 * 7 * 1024 * 1024 == 51_380_224 and pool.params == 0
for name, curve in curves.items():
    assert len(curve) == STEPS // EVERY + 1 and all(0 <= a <= 1 for _, a in curve), name
    assert all(later > earlier for (earlier, _), (later, _) in zip(curve, curve[1:])), name
if not fast():
    assert curves["lenet5-modern"][-1][1] > 0.9 and 0.75 < curves["lenet5"][-1][1] < curves["lenet5-modern"][-1][1]
    past_half = {name: next(seconds for seconds, accuracy in curve if accuracy > 0.5)
                 for name, curve in curves.items() if any(accuracy > 0.5 for _, accuracy in curve)}
    assert min(past_half, key=past_half.get).startswith("lenet5")
    if "resnet18" in curves:
        assert curves["resnet18"][-1][1] > 0.8
    assert all(accuracy < 0.5 for name in ("alexnet", "vgg11", "googlenet") if name in curves
               for _, accuracy in curves[name])
print("all claims hold")

# %% [markdown]
# ## Questions
#
# **9.a** AlexNet has 8.7 times GoogLeNet's parameters, yet less than half its multiply-adds
# per image. Where does each network keep its parameters, and where does it spend its
# multiply-adds?
#
# ### BEGIN ANSWER question 9.a
# AlexNet keeps most of its parameters in the fully connected layers (fc6 alone holds 61%):
# each of those weights is used once per image, one multiply-add, so they cost many
# parameters and little arithmetic. GoogLeNet's weights sit in convolutions, and a
# convolution uses each weight at every position of its output map: few parameters, many
# multiply-adds. Its global average pooling then replaces the large fully connected layer
# that would otherwise hold most of its parameters (51.4 M of them).
# ### END ANSWER
#
# **9.b** VGG-16's last convolution sees a window of more than 200 pixels across. Does every
# pixel of that window count as much for its output?
#
# ### BEGIN ANSWER question 9.b
# No. The receptive field says which pixels can count at all; the gradient drawn above shows how
# much: the middle of the window is reached by many paths through the stack (the count grows
# like a bell curve, layer after layer), the edge by a single one. So the *effective* window is
# much smaller than the theoretical one, and concentrated around its middle.
# ### END ANSWER
#
# **9.c** In the training runs, ResNet-18 at 1/16 width has fewer parameters than LeNet-5, yet
# each of its steps takes several times as long. Why?
#
# ### BEGIN ANSWER question 9.c
# A step's cost follows the work and the number of ops, not the parameters. A convolution uses
# each weight at every position of its map, and ResNet, built for 32x32 digits, keeps the whole
# 32x32 map through its first blocks: several times LeNet-5's multiply-adds per image with
# fewer weights (`layer_rows` counts both). And it has about twenty convolutions, each
# followed by batch norm and a ReLU, plus the residual additions: dozens of ops, each paying a
# fixed cost forward and backward (lesson 8's launches, in Python here). LeNet-5 has seven
# layers, on maps that shrink to 14x14 after the first.
# ### END ANSWER

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(9)
