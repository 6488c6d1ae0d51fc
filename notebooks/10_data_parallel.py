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
# # Lesson 10: Data-parallel training
#
# **Time:** about 50 minutes: 35 to read, 15 for the three exercises. The code runs in about
# 30 s at full size on 2 CPU cores, most of it in three short runs of 1 and 2 processes
# started from the notebook with `mpiexec`.
#
# **Assumes:** lessons 3 (SGD, the loss as a mean over a batch), 7 (GoogLeNet's training loop,
# `python -m googlenet train`) and 8 (what bounds a step: work, memory traffic, launches). The
# cells that start processes need the `distributed` extra (`pip install -e ".[distributed]"`:
# mpi4py and MPICH, whose `mpiexec` lands beside your Python); without it they say so.
#
# **What you will learn**
#
# - data parallelism: every process (a **rank**) holds the whole model and takes its share of
#   each batch; one **all-reduce** a step sums the gradients, and every rank makes the same
#   update;
# - why N shares of a batch, each weighted by its size, give exactly the gradient of the
#   whole batch (shown to 16 digits), and what goes wrong with an uneven last batch if you
#   simply average;
# - the **ring all-reduce**, written by hand on arrays (exercise 10.1), drawn step by step,
#   then done by MPI between two processes;
# - the same GoogLeNet training run on 1 and on 2 processes, taking the same steps;
# - what the all-reduce costs: the bytes a ring moves (exercise 10.2), and the scaling
#   efficiency on N GPUs (exercise 10.3), for the links that join GPUs, from one recorded
#   GPU step time.

# %%
import inspect
import json
import pathlib
import tempfile

import matplotlib.pyplot as plt
import numpy

from googlenet.model import GoogLeNet, googlenet_loss
from minigrad import distributed
from minigrad.autograd import Tensor
from minigrad.data import DataLoader, load_digits, shard_of
from minigrad.distributed import cost
from course import check, lesson10, pick
from course.lesson8_recorded import TRAINING_STEPS, load_training_steps

# %% [markdown]
# ## Several processes, one model
#
# A network outgrows one processor in two ways. Its **model** may not fit: AlexNet (2012) was
# split across two GPUs, each holding half of every layer's kernels (*model parallelism*,
# lesson 9's two towers). Or its **data** takes too long: GoogLeNet's paper trained "using the
# DistBelief distributed machine learning system using modest amount of model and
# data-parallelism", with asynchronous SGD: many workers sent gradients to parameter servers,
# each applying them as they came, from weights a few steps old.
#
# Today's default is simpler: **synchronous data parallelism**. N processes, the ranks
# 0 .. N-1, each hold the whole model. Each step:
#
# 1. rank r takes its share of the global batch (`minigrad.data.shard_of`), computes the loss
#    and backpropagates: its own gradients;
# 2. one **all-reduce** gives every rank the sum of all the ranks' gradients;
# 3. every rank makes the same update from the same sum, so the N copies stay identical.
#
# N ranks with B images each then take exactly the steps one process would take with N x B,
# N times faster if the exchange costs nothing. `minigrad/distributed/` is built that way, on
# ChainerMN's design: a *communicator* with `bcast_data(model)` (rank 0's weights to everyone,
# once) and `allreduce_grad(model)` (the sum, in one call a step), and an optimizer wrapper
# that calls them.

# %% [markdown]
# ## N shares of a batch = one big batch
#
# The loss of a batch is a mean, $L = \frac{1}{n}\sum_{i=1}^{n} \ell_i$, and so is its gradient.
# Split the batch into shares $S_r$ of $n_r$ images: each rank computes the mean over its share,
# $L_r$, and
#
# $$\nabla L = \frac{1}{n}\sum_{r}\sum_{i \in S_r} \nabla \ell_i = \sum_r \frac{n_r}{n}\, \nabla L_r .$$
#
# So rank r weighs its loss by $n_r / n$ (`loss.backward(n_r / n)`: no extra pass over the
# gradients), and the **sum** of the ranks' gradients is the whole batch's gradient. With equal
# shares the weight is $1/N$; with an uneven last batch it is not. Here on GoogLeNet (1/16 of the
# paper's widths, both auxiliary heads, dropout off, float64), a batch of 8 digits, split over
# 3 "ranks" in this one process:

# %%
def gradient_of(model, images, labels, weight=1.0):
    model.zero_grad()
    googlenet_loss(model(Tensor(images)), labels, 0.3).backward(weight)
    return numpy.concatenate([p.grad.ravel() for p in model.parameters()])


train_set, _ = load_digits(32).split(0.2, seed=0)
images, labels = next(DataLoader(train_set, 8, shuffle=True, seed=0).batches(0))
images = images.astype(numpy.float64)
model = GoogLeNet(num_classes=10, in_channels=1, width=1 / 16, dropout=0.0, aux_dropout=0.0,
                  input_size=32, seed=0).astype(numpy.float64)

whole = gradient_of(model, images, labels)
shares = [shard_of(numpy.arange(8), rank, 3) for rank in range(3)]
print("the 3 ranks' shares of the batch:", [share.tolist() for share in shares])
weighted = sum(gradient_of(model, images[s], labels[s], weight=len(s) / 8) for s in shares)
averaged = sum(gradient_of(model, images[s], labels[s], weight=1 / 3) for s in shares)
relative = lambda got: numpy.abs(got - whole).max() / numpy.abs(whole).max()
print(f"shares weighted by n_r / n, summed: largest difference {relative(weighted):.1e} of the largest gradient")
print(f"the ranks' means averaged (1/3 each): largest difference {relative(averaged):.1e}")

# %% [markdown]
# Weighted, the shares give the whole batch's gradient to rounding (the sums are added in
# another order). Averaged, the 2-image share counts as much as the 3-image ones: a different
# gradient. Training digits with batch 32 on 2 ranks, 1,437 images make 22 batches of 64 and a
# last one of 29: 15 and 14 images.
#
# Each rank's share is a contiguous slice of the global batch, the first ranks one image more
# when it does not divide (`numpy.array_split`). The loader does it for a rank:
# `DataLoader(train_set, 2 * 32, shuffle=True, shard=(rank, 2))` draws the same shuffled
# batches of 64 on every rank, from the shared seed, and gives each its part.

# %% [markdown]
# ## The all-reduce
#
# Every rank has an array of S bytes (its gradient); afterwards every rank must have the sum.
# The obvious way: everyone sends to rank 0, which adds and sends the sum back. Rank 0 then
# receives (N - 1) S bytes and sends as many, one after the other: with N = 64 and GoogLeNet's
# 53.5 MB, 6.7 GB through one link, every step. The other ranks' links idle.
#
# A **ring** keeps every link busy. Cut each array into N chunks. In each of N - 1 steps of the
# *reduce-scatter*, every rank sends one chunk to its right neighbour, which adds it to its own
# copy of that chunk: after the last, rank r holds the complete sum of one chunk, number
# (r + 1) mod N. Then N - 1 steps of the *all-gather* pass the complete chunks on around the ring.
# In every step all N links carry one chunk, S / N bytes, at once. Each rank sends
# 2 (N - 1) chunks: **2 (N - 1) / N x S** bytes, less than 2 S however many ranks there are.
#
# The picture: 4 ranks (rows), each array cut into 4 chunks (columns); the number is how many
# ranks' values the chunk holds so far. It starts at 1 everywhere and must end at 4.

# %%
states = lesson10.ring_states(4)
fig, axes = plt.subplots(1, len(states), figsize=(13, 2.3))
for step, (ax, state) in enumerate(zip(axes, states)):
    ax.imshow(state, cmap="Blues", vmin=0, vmax=4)
    for (rank, chunk), count in numpy.ndenumerate(state):
        ax.text(chunk, rank, int(count), ha="center", va="center", color="black" if count < 3 else "white")
    ax.set_xticks([])
    ax.set_yticks(range(4) if step == 0 else [])
    ax.set_title("start" if step == 0 else (f"reduce {step}" if step < 4 else f"gather {step - 3}"), fontsize=9)
axes[0].set_ylabel("rank")
plt.suptitle("a ring all-reduce over 4 ranks: how many ranks' values each chunk holds", y=1.05)
plt.show()

# %% [markdown]
# **Exercise 10.1.** Write the ring all-reduce. `arrays[r]` is rank r's gradient (a 1-D array,
# read-only: copy it). Values travel only through `send(source, target, values)`, which returns
# what `target` receives (a copy) and records the message, as a network would. Return a list
# with every rank's result. The checker compares every rank's result with the sum, and your
# messages with a ring's: to a neighbour only, 2 (N - 1) chunks from each rank.
#
# In a real ring the ranks of one step send at the same time: make all the sends of a step
# before any rank adds what it received.
#
# (Stuck after a wrong verdict? `check.hint("10.1")` prints the rule.)

# %%
def ring_allreduce(arrays, send):
    ### BEGIN SOLUTION exercise 10.1: a ring all-reduce
    n = len(arrays)
    chunks = [numpy.array_split(numpy.array(array), n) for array in arrays]
    for s in range(n - 1):                                       # reduce-scatter
        received = [send(r, (r + 1) % n, chunks[r][(r - s) % n]) for r in range(n)]
        for r in range(n):
            chunks[(r + 1) % n][(r - s) % n] += received[r]
    for s in range(n - 1):                                       # all-gather
        received = [send(r, (r + 1) % n, chunks[r][(r + 1 - s) % n]) for r in range(n)]
        for r in range(n):
            chunks[(r + 1) % n][(r + 1 - s) % n][...] = received[r]
    return [numpy.concatenate(rank_chunks) for rank_chunks in chunks]
    ### END SOLUTION


check.exercise("10.1", ring_allreduce)

# %% [markdown]
# ## The same, between processes: MPI
#
# Real ranks are separate processes, on one machine or many, and their arrays are in separate
# memories. **MPI** is the standard way such processes talk. `mpiexec -n 2 python train.py`
# starts two copies of the program; in each, `mpi4py.MPI.COMM_WORLD` says which rank it is and
# how many there are, and
#
#     comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
#
# replaces `array`, on every rank, by the sum over the ranks: the MPI library picks the
# algorithm (a ring or one of its cousins for large arrays). That one line is the heart of
# `minigrad.distributed.MpiCommunicator`:

# %%
print(inspect.getsource(distributed.MpiCommunicator.allreduce))
print(inspect.getsource(distributed.Communicator.allreduce_grad))

# %% [markdown]
# `allreduce_grad` makes **one** all-reduce a step, not one per tensor (GoogLeNet has more
# than a hundred, many tiny, and each call pays a latency): a model whose parameters live in
# flat buffers (`model.flatten_parameters()`, as the training command does) sends its one
# gradient buffer as it is; any other model's gradients are packed into one buffer and the
# sums copied back. On GPUs the same job goes to NCCL (`distributed/nccl.py`),
# which moves GPU memory directly over NVLink or InfiniBand, queued on the stream that ran
# the backward pass.
#
# `python -m googlenet train` does all of this when `mpiexec` starts it: each rank takes its
# share of every batch of `--batch-size` x ranks images and of the held-out split, rank 0's
# weights are broadcast once, one all-reduce a step sums the gradients, only rank 0 writes
# the checkpoint, metrics and curves and prints; a stop (Ctrl-C) is agreed on by all ranks,
# and an error on one rank ends them all with a message naming it. Two processes with batch 32
# each against one with batch 64, one epoch of GoogLeNet at 1/16 width, dropout off (with it,
# each rank draws its own masks: the same in distribution, other numbers):

# %%
OPTIONS = ["--epochs", "1", "--width", "0.0625", "--dropout", "0", "--aux-dropout", "0", "--no-progress",
           "--held-out", pick("0.2", "0.9")]
workdir = pathlib.Path(tempfile.mkdtemp())
MPI_MISSING = lesson10.mpiexec() is None or distributed.mpi_unavailable_reason() is not None
if MPI_MISSING:
    print("no mpiexec or mpi4py here: pip install -e \".[distributed]\" to run the cells below")
else:
    lesson10.run_command(["-m", "googlenet", "train", *OPTIONS, "--batch-size", "32",
                          "--out", str(workdir / "two")], ranks=2)
    print()
    lesson10.run_command(["-m", "googlenet", "train", *OPTIONS, "--batch-size", "64",
                          "--out", str(workdir / "one")], threads=2)

# %%
if not MPI_MISSING:
    rows = {name: json.loads((workdir / name / "metrics.jsonl").read_text().splitlines()[-1])
            for name in ("two", "one")}
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "images_per_second"):
        print(f"{key:<18} 2 ranks {rows['two'][key]:>14.8f}   1 process {rows['one'][key]:>14.8f}")

# %% [markdown]
# The same steps, so the same losses and accuracies, to float32's rounding: a mean over two
# shares of 32 is not summed in the order of one over 64. (The digits' whole run, 15 epochs at
# full width, reaches the same held-out accuracy on 2 ranks as on one process with the same
# steps; the README gives the figures.)
#
# Images per second is another matter. This machine has 2 cores: one process can use both
# (NumPy's matrix products run on 2 threads), or two ranks can use one each. The benchmark
# `benchmarks/data_parallel.py` times the three ways, on fresh processes, and the all-reduce
# inside a step and alone (here at 1/4 width, a few steps):

# %%
if not MPI_MISSING:
    lesson10.run_command(["benchmarks/data_parallel.py", "--quick", "--no-cost-model", "--steps",
                          pick("4", "2")], timeout=180)

# %% [markdown]
# Read it with lesson 8 in mind. One thread per rank does each rank's small GEMMs and its many
# memory-bound ops (pooling, LRN, copies) with no threads waiting for each other, and the two
# ranks overlap all of it; one process with 2 threads splits only the matrix products (and on
# a machine busy with other work, 2 BLAS threads can be slower than one: at every product each
# waits for the other). The
# all-reduce inside a step includes the wait for the slower rank: on a machine shared with
# other work, the ranks rarely finish together. Alone, after a barrier, it is a copy through
# shared memory, a few GB/s.

# %% [markdown]
# ## What it costs on N GPUs
#
# On GPUs the step is much faster and the gradient has to cross a link between them. The cost
# model (`minigrad/distributed/cost.py`) needs the bytes each rank sends and the time that takes.
#
# **Exercise 10.2.** Return the bytes each rank sends in one ring all-reduce of a gradient of
# `parameters` values of `bytes_per_value` bytes each, over `ranks` ranks.

# %%
def ring_bytes(parameters, ranks, bytes_per_value):
    ### BEGIN SOLUTION exercise 10.2: bytes a ring all-reduce sends
    return 2 * (ranks - 1) / ranks * parameters * bytes_per_value
    ### END SOLUTION


check.exercise("10.2", ring_bytes)

# %% [markdown]
# A ring of N ranks takes 2 (N - 1) steps, each one chunk of S / N bytes over a link of
# bandwidth b (bytes per second) after a latency a (the time a message takes to start):
#
# $$t_\text{all-reduce} = 2 (N - 1) \left(a + \frac{S}{N b}\right).$$
#
# Here the all-reduce starts when the backward pass has finished, so N GPUs process N x B images
# in $t_\text{step} + t_\text{all-reduce}$, where one GPU processes B in $t_\text{step}$. The
# **scaling efficiency**, N GPUs' images per second over N times one GPU's, is
#
# $$E = \frac{t_\text{step}}{t_\text{step} + t_\text{all-reduce}} .$$
#
# **Exercise 10.3.** Return E for a step of `step_seconds`, a gradient of `gradient_bytes`, on
# `ranks` GPUs joined by links of `bandwidth` bytes per second and `latency` seconds.

# %%
def scaling_efficiency(step_seconds, gradient_bytes, ranks, bandwidth, latency):
    ### BEGIN SOLUTION exercise 10.3: scaling efficiency at N GPUs
    allreduce = 2 * (ranks - 1) * (latency + gradient_bytes / (ranks * bandwidth))
    return step_seconds / (step_seconds + allreduce)
    ### END SOLUTION


check.exercise("10.3", scaling_efficiency)

# %% [markdown]
# Fed with what one H200 measured for a training step of GoogLeNet at batch 32 (224x224,
# lesson 8's `benchmarks/training-step.csv`: ours and PyTorch's) and GoogLeNet's gradient
# (13,378,280 parameters with the auxiliary heads, 53.5 MB in float32), over the links of
# `cost.LINKS` (nominal bandwidths, per GPU and direction):

# %%
steps = {row.implementation: row.gpu_ms / 1e3 for row in load_training_steps(TRAINING_STEPS) if row.batch == 32}
gradient = 4 * lesson10.GOOGLENET_PARAMETERS
ranks = [2, 4, 8, 16, 32, 64]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (name, step) in zip(axes, sorted(steps.items())):
    for link, efficiencies in cost.efficiency_table(step, gradient, ranks):
        ax.plot(ranks, efficiencies, marker="o", label=f"{link.name}, {link.bandwidth / 1e9:g} GB/s")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ranks, [str(n) for n in ranks])
    ax.set_xlabel("GPUs")
    ax.set_title(f"{name}: {1e3 * step:.1f} ms a step at batch 32")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("scaling efficiency")
axes[0].legend(fontsize=7, loc="lower left")
plt.show()
for n in (2, 8, 64):
    print(f"N = {n:>2}: each GPU sends {cost.ring_allreduce_bytes(gradient, n) / 1e6:5.1f} MB a step")

# %% [markdown]
# Within a machine (NVLink) the all-reduce is a fraction of a millisecond: nearly perfect
# scaling. Across machines the link decides: InfiniBand keeps above 85%, 10 Gb Ethernet
# spends longer exchanging gradients than computing them. And the faster the step, the worse
# the efficiency on the same link: PyTorch's 20 ms step is hurt more than our 58 ms one. That
# is why fast frameworks overlap the all-reduce with the backward pass, starting on the last
# layers' gradients while the first layers' are still being computed.

# %% [markdown]
# ## Questions
#
# **10.a** DistBelief sent every worker's gradient to parameter servers. With one server and
# N workers, how many bytes cross the server's link each step, and how does that compare with
# a ring all-reduce's per-rank traffic as N grows?
#
# ### BEGIN ANSWER question 10.a
# The server receives N gradients and sends the new weights back N times: 2 N S bytes through
# its one link, growing linearly with N, while the workers' links idle most of the time. A
# ring spreads the same job over every link: each rank sends 2 (N - 1) / N x S bytes, less than
# 2 S for any N, all links busy at once (it is bandwidth-optimal). What grows with N in a ring
# is the number of steps, 2 (N - 1), each paying a latency: for small messages or thousands of
# ranks, tree-shaped all-reduces take fewer steps. (DistBelief also split the parameters over
# many servers, and did not wait: its asynchronous updates used weights a few steps old.)
# ### END ANSWER
#
# **10.b** Run the two-process training above with dropout on (the default). The losses are no
# longer those of one process with batch 64. Is the 2-rank run wrong?
#
# ### BEGIN ANSWER question 10.b
# No. Each rank draws its own dropout masks (their generators are seeded with the rank), so
# the masks differ from those one process would draw for the whole batch: the steps are the
# same in distribution, with other random numbers, and the runs drift apart as any two seeds
# do. The arithmetic of the step is still the whole batch's: with dropout off (and no random
# augmentation) the runs agree to rounding, as above.
# ### END ANSWER
#
# **10.c** You move the digits run from 1 process with batch 32 to 64 GPUs with 32 images each.
# What happens to the number of steps per epoch, and what would you change in the learning
# rate?
#
# ### BEGIN ANSWER question 10.c
# The global batch is 2,048 images: 64 times fewer steps per epoch (the digits' 1,437 training
# images would not even fill one). With 64 times fewer updates at the same learning rate the
# run learns far less per epoch. The usual remedy is the linear scaling rule (Goyal et al.,
# 2017): multiply the learning rate by the growth of the batch, reached after a few epochs of
# warm-up, because the first steps cannot take a large rate. Past some batch size even that
# stops working; more GPUs then buy speed per epoch, not a better model per epoch.
# ### END ANSWER

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(10)
