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
# # Lesson 8: CPU vs GPU kernel speed
#
# **Time:** about 60 minutes: 40 to read, 20 for the three exercises. The code runs in about
# 25 s at full size on 2 CPU cores (it times GoogLeNet's ops at batch 8 on one core, then a
# few of them on every core).
#
# **Assumes:** lessons 4-6 (im2col and a convolution as one matrix product, pooling, LRN, what
# a convolution costs in multiply-adds); what a CPU core, a cache and memory are. No GPU is
# needed: what one did is read from `benchmarks/`, recorded on an NVIDIA H200.
#
# **What you will learn**
#
# - what bounds the time of an op, or of a whole training step: the **launches** that start
#   its work (exercise 8.1), its **work** (FLOPs) and its **traffic** (bytes to and from
#   memory), and the ratio of the last two, the **arithmetic intensity** (exercise 8.2);
# - the two **roofs** of a machine, measured here: how fast it multiplies matrices (its GEMM
#   peak) and how fast it moves memory (its bandwidth);
# - the **roofline** (exercise 8.3): why pooling, LRN and im2col are held down by memory,
#   whatever their arithmetic, while the big convolutions come close to the GEMM roof;
# - how far **threads** take those memory-bound ops: the same kernels on 1, 2, ... cores, with
#   the same results to the last bit;
# - how much the fast kernels (`numpy`) gain over the plain loops (`reference`);
# - what a GPU changed, from the numbers recorded on one: each op against the CPU, the
#   generic CuPy path, our hand-written CUDA kernels and PyTorch; and why a whole training
#   step of ours is *launch-bound* at small batches: the GPU waits for Python.
#
# Everything is timed on GoogLeNet's own layer shapes with minigrad's op benchmark
# (`minigrad/bench/`, also `python -m googlenet bench`). Speeds are measured by the cell
# that prints them: on a busy or different machine they will differ, the reasoning will not.

# %%
import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

from googlenet.bench import googlenet_op_shapes
from minigrad import backend, bench, kernels, parallel
from minigrad.bench import compare
from course import check, lesson8, lesson8_pictures, lesson8_recorded, pick

# %% [markdown]
# ## The ops we time
#
# A slice of GoogLeNet: the stem (conv1, pool1, LRN, conv2 and its 1x1 reduce, pool2), the
# branches of Inception 3a and a few later layers. `pick(full, small)` shrinks the batch and
# the image when the course runs in fast mode (tests, CI); GoogLeNet needs at least 31x31.
# Each time is a median of `REPEATS` runs: on a machine shared with other work a single run
# can be many times too slow.
#
# We measure **one core**. A NumPy call runs on one core; the matrix products (BLAS) spread
# over all of them, and so do minigrad's memory-bound kernels (pooling, LRN, im2col, copying,
# split by `minigrad.parallel`: the section on threads below). Holding both to one thread
# puts every op and both roofs on the same footing, and makes the timings steadier on a shared
# machine (`python -m googlenet bench --blas-threads 1 --threads 1` does the same). Set
# `BLAS_THREADS = None` to let the GEMMs use every core: their roof rises about as many times
# as there are cores, and nothing else moves.

# %%
BATCH, IMAGE_SIZE, REPEATS = pick(8, 1), pick(224, 64), pick(7, 5)
BLAS_THREADS = 1
threadpool_limits(limits=BLAS_THREADS, user_api="blas")
parallel.set_thread_count(1)
SUBSET = ["conv1", "pool1", "lrn/pool1", "conv2/reduce", "conv2", "lrn/conv2", "pool2",
          "3a/1x1", "3a/3x3", "3a/5x5", "3a/pool", "4a/3x3", "aux/4a/pool", "5b/3x3"]
shapes = [s for s in googlenet_op_shapes(BATCH, IMAGE_SIZE) if s.name in SUBSET]
print(f"batch {BATCH}, {IMAGE_SIZE}x{IMAGE_SIZE} images, float32, BLAS threads {BLAS_THREADS or 'all'}")
for s in shapes:
    print(f"  {s.name:<14} {bench.describe(s):<18} x {s.x_shape} -> y {bench.op_output_shape(s)}")

# %% [markdown]
# ## Is there a GPU here?
#
# minigrad runs on a GPU through CuPy (`minigrad/backend.py`). The backend says why it cannot
# when it cannot; and a machine that has one may have recorded its timings in
# `benchmarks/gpu_ops.csv` (format: `course/lesson8_recorded.py`), which this lesson draws
# beside the CPU's.

# %%
reason = backend.gpu_unavailable_reason()
print("GPU:", "usable" if reason is None else f"not usable here: {reason}")
recorded = lesson8_recorded.load_recorded(lesson8_recorded.RECORDED_GPU, googlenet_op_shapes)
if recorded is None:
    print(f"No GPU numbers recorded yet: {lesson8_recorded.RECORDED_GPU} does not exist.")
else:
    print(f"Recorded on {recorded.device}: {len(recorded.points)} ops from {recorded.path}")

# %% [markdown]
# What follows measures the **CPU** here, and draws the GPU's recorded numbers beside it.
#
# ## Launches: the cost of starting the work
#
# Before any arithmetic, an op must be *started*. On the CPU, Python calls NumPy, which runs
# the loop and returns: Python waits for every op to finish, and each call costs a few
# microseconds of its own, whatever the array's size. On a GPU the work runs elsewhere: the
# CPU **launches** a kernel, which only puts it in the GPU's queue (about 6 microseconds for a
# hand-written kernel, 19 for a CuPy op that also allocates its output, measured on the
# H200), and goes on to launch the next one while the GPU works. The GPU runs its queue in
# order, one kernel after another. So two things can hold a step back: the CPU, launching
# kernels that the GPU finishes faster than they arrive (the GPU waits: **launch-bound**), or
# the GPU, with more work queued than it has done (**GPU-bound**).
#
# **Exercise 8.1: when the GPU finishes.** The CPU launches `len(durations)` kernels one
# after another, each launch taking `launch_overhead`, so kernel $k$ (from 0) is in the queue
# at $(k + 1) \cdot$ `launch_overhead`. The GPU starts kernel $k$ as soon as it is queued
# *and* kernel $k - 1$ has ended, and runs it for `durations[k]`. Return the time at which
# the last kernel ends, counted from the first launch (any unit, the same for both).
#
# (Stuck after a wrong verdict? `check.hint("8.1")` prints the rule; `check.progress(8)`
# shows where this lesson's exercises stand.)

# %%
def gpu_finish_time(durations, launch_overhead):
    ### BEGIN SOLUTION exercise 8.1: when the GPU finishes a stream of kernels
    finish = 0.0
    for k, duration in enumerate(durations):
        queued = (k + 1) * launch_overhead
        finish = max(finish, queued) + duration
    return finish
    ### END SOLUTION


check.exercise("8.1", gpu_finish_time)

# %% [markdown]
# A thousand kernels, each launched in 10 microseconds, each running for the same time $d$.
# When $d$ is shorter than a launch, the GPU finishes one kernel, then waits for the next:
# the step takes the launches' time, $1000 \times 10$ µs, whatever $d$ is. When $d$ is longer,
# the queue never empties and the step takes the kernels' time. Per kernel, the time is the
# larger of the launch and the work: a roofline of its own, with the launch as the roof.
# (In the student version, until 8.1 is done, `lesson8.gpu_finish_time_reference` stands in.)

# %%
try:
    gpu_finish_time([1.0], 1.0)
    finish_time = gpu_finish_time
    print("with your gpu_finish_time:")
except NotImplementedError as missing:
    print(f"not implemented yet ({missing}): using lesson8.gpu_finish_time_reference")
    finish_time = lesson8.gpu_finish_time_reference
KERNELS, LAUNCH_US = 1000, 10.0
kernel_us = np.logspace(-0.5, 2, 26)
per_kernel = np.array([finish_time(np.full(KERNELS, d), LAUNCH_US) / KERNELS for d in kernel_us])
for d in (1.0, 10.0, 100.0):
    print(f"  kernels of {d:5.0f} us: {finish_time(np.full(KERNELS, d), LAUNCH_US) / 1e3:6.2f} ms for {KERNELS}")

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.loglog(kernel_us, per_kernel, marker=".", label="your finish time / kernels")
ax.axvline(LAUNCH_US, color="gray", linestyle="--", linewidth=1, label=f"a launch: {LAUNCH_US:g} us")
ax.set_xlabel("each kernel's own time d (us)")
ax.set_ylabel("time per kernel in the step (us)")
ax.set_title(f"{KERNELS} kernels, one launch each: launch-bound left, GPU-bound right", fontsize=9)
ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# ## Work: FLOPs
#
# A FLOP is one floating-point add, multiply, compare... A convolution's output element is a
# sum of $C K_H K_W$ products, one **multiply-add** each (lesson 6 counted them), which is
# **two** FLOPs. With $OH = \lfloor (H + 2P - K_H) / S \rfloor + 1$ (and $OW$ alike):
#
# $$\text{FLOPs}_\text{conv} = 2 \cdot N F\, OH\, OW \cdot C K_H K_W$$
#
# A $K_H \times K_W$ max pool does $K_H K_W - 1$ comparisons per output, an average pool as
# many adds and one divide; an LRN of size $n$ does $n + 4$ per element (square, $n - 1$ adds,
# times $\alpha/n$, plus $k$, the power, times $x$). The bias is left out: it is a rounding
# error. `bench.op_flops(shape)` holds these rules:

# %%
for s in shapes[:3]:
    print(f"{s.name:<10} {bench.describe(s):<18} {bench.op_flops(s):>14,} FLOPs")

# %% [markdown]
# ## Traffic: bytes, and arithmetic intensity
#
# An op must at least read its input, read its weights (a convolution) and write its output,
# each number once: 4 bytes each in float32,
#
# $$\text{bytes} = 4\,(|x| + |W| + |y|), \qquad
#   I = \frac{\text{FLOPs}}{\text{bytes}}\ \text{(FLOPs per byte)}.$$
#
# The **arithmetic intensity** $I$ says how much arithmetic each byte fetched pays for. A
# convolution reuses every input number in up to $F K_H K_W$ products and every weight at all
# $N\, OH\, OW$ positions: its $I$ is large. A max pool compares each number a handful of times,
# an LRN does 9 FLOPs for the 8 bytes of each element: their $I$ is around 1 or below.
#
# **Exercise 8.2: arithmetic intensity.** Return the FLOPs per byte of an op (an `OpShape`:
# `shape.op`, `shape.x_shape`, and for a convolution `shape.params["weight"]`). Use
# `bench.op_flops(shape)` for the FLOPs (the rules above) and count the
# bytes yourself; `bench.op_output_shape(shape)` gives $y$'s shape.

# %%
def arithmetic_intensity(shape):
    flops = bench.op_flops(shape)
    y_shape = bench.op_output_shape(shape)
    ### BEGIN SOLUTION exercise 8.2: the arithmetic intensity of an op
    numbers = np.prod(shape.x_shape) + np.prod(y_shape)
    if shape.op == "conv2d":
        numbers += np.prod(shape.params["weight"])
    return flops / (4 * numbers)
    ### END SOLUTION


check.exercise("8.2", arithmetic_intensity)

# %% [markdown]
# Your function on our ops, sorted (in the student version, until 8.2 is done, the package's
# `bench.arithmetic_intensity` stands in):

# %%
try:
    intensity = {s.name: arithmetic_intensity(s) for s in shapes}
    print("with your arithmetic_intensity:")
except NotImplementedError as missing:
    print(f"not implemented yet ({missing}): using bench.arithmetic_intensity")
    intensity = {s.name: bench.arithmetic_intensity(s) for s in shapes}
for name, value in sorted(intensity.items(), key=lambda item: item[1]):
    print(f"  {name:<14} {value:8.2f} FLOPs/byte")

# %% [markdown]
# ## The machine's two roofs
#
# However well an op is written, it cannot compute faster than the machine multiplies
# matrices, nor fetch its bytes faster than memory delivers them. We measure both now, on this
# machine: the **GEMM peak**, $2n^3$ FLOPs of a large float32 matrix product over its time, and
# the **bandwidth**, the bytes read and written by a copy of an array larger than the caches.
# Each is the median of a few runs.

# %%
PEAK = bench.gemm_peak_gflops(size=pick(2048, 512), repeats=7)
BANDWIDTH = bench.copy_bandwidth_gbs(megabytes=pick(256, 64), repeats=7)
RIDGE = PEAK / BANDWIDTH
print(f"GEMM peak {PEAK:.1f} GFLOP/s, memory bandwidth {BANDWIDTH:.1f} GB/s")
print(f"ridge point: {RIDGE:.1f} FLOPs/byte")

# %% [markdown]
# An op with intensity $I$ FLOPs/byte, fed at $B$ GB/s, gets at most $I \cdot B$ GFLOP/s out
# of memory; and never more than the peak $P$. The lower roof wins:
#
# $$\text{attainable} = \min(P,\; I \cdot B).$$
#
# Below the **ridge point** $I = P / B$ an op is **memory-bound** (faster arithmetic would not
# help it; fewer bytes would), above it **compute-bound**.
#
# **Exercise 8.3: which roof bounds an op.** Return the attainable GFLOP/s for an array of
# intensities (element by element), given the peak in GFLOP/s and the bandwidth in GB/s. An
# op is memory-bound where your answer is below the peak.

# %%
def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    ### BEGIN SOLUTION exercise 8.3: which roof bounds an op
    return np.minimum(peak_gflops, intensity * bandwidth_gbs)
    ### END SOLUTION


check.exercise("8.3", attainable_gflops)

# %% [markdown]
# ## Timing GoogLeNet's ops
#
# `bench.time_ops` times each op's forward and backward (the median of `REPEATS` runs after a
# warm-up) and, for a convolution, the bare GEMM of its sizes; the table and its targets are
# explained in `minigrad/bench/op_times.py`.

# %%
print(bench.HEADER)
rows = bench.time_ops(shapes, REPEATS, progress=lambda row: print(bench.format_row(*row)))
bench.print_summary(rows)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
lesson8_pictures.plot_op_times(rows, ax, title=f"forward time per op on this CPU (batch {BATCH}, {IMAGE_SIZE}x{IMAGE_SIZE})")
fig.tight_layout()

# %% [markdown]
# Milliseconds alone do not say whether an op is slow *for what it does*. The roofline does.
#
# ## The roofline
#
# Each op is a point: across, its intensity (FLOPs/byte); up, the GFLOP/s it achieved (its
# FLOPs over its measured forward time). The two black lines are the roofs measured above. A
# hollow circle is a convolution's bare GEMM: the gap between it and the filled dot of the
# same convolution is what im2col and the reshapes cost.

# %%
for line in lesson8_pictures.roofline_table([(s, t["fwd"]) for s, t in rows], PEAK, BANDWIDTH):
    print(line)

fig, ax = plt.subplots(figsize=(9, 5))
lesson8_pictures.plot_roofline(ax, rows, PEAK, BANDWIDTH, recorded=recorded,
                      title="roofline of GoogLeNet's ops, forward: this CPU (dots)"
                            + (f", recorded on a GPU (crosses, batch {recorded.points[0][0].x_shape[0]})"
                               if recorded else " (no GPU recorded)"))

# %% [markdown]
# Read it from the left. The pools and the LRNs sit far left of the ridge, under the slanted
# memory roof: their FLOPs are cheap, their bytes are not, and no faster arithmetic would
# help them. They reach only part of even that roof, because the roof counts each byte once
# while the numpy kernels go over the data several times: a 3x3 max pool makes one pass per
# kernel offset, nine in all, each comparing a strided slice of its input with the running
# maximum, and writes the argmax its backward needs; an LRN squares, sums the window, raises
# to a power and multiplies, one pass each. Moving only the
# least traffic takes a *fused* kernel, one pass with every number read once: what a
# hand-written GPU kernel does.
#
# The convolutions sit right of the ridge: their roof is the GEMM peak, and the
# large ones get closest to it. Small convolutions reach less of it: their GEMMs are small
# and thin, and the fixed cost of each call weighs more. On small images the late layers'
# maps are a few pixels wide: each weight is used at only a few positions, so the weights
# dominate the traffic, the intensity drops, and such a layer can fall left of the ridge.
#
# Three of these convolutions do not multiply as the others do: conv2, 3a/3x3 and 4a/3x3 are
# 3x3 convolutions with stride 1 on maps of 100 pixels or more (at the full size), which the
# numpy set does by Winograd's F(2x2, 3x3) (lesson 4's last section): 2.25 times fewer
# multiply-adds. Their FLOPs here are counted the direct way, so their dots can sit at or above
# their hollow circles, and even above the GEMM roof: fewer multiplications, not a faster
# multiplier. (5b/3x3, on 7x7 maps, takes the direct way.)
#
# A point above the memory roof is no mistake: a small op's data fits in the caches, which
# deliver more than the memory our copy measured. Any other point above the GEMM roof means
# the roof was measured while the machine was busy with something else: run the roofs cell
# again.
#
# Your `attainable_gflops` on these ops: which roof bounds each, and how close it came.

# %%
measured = {s.name: lesson8_pictures.achieved_gflops(s, t["fwd"]) for s, t in rows}
values = np.array([bench.arithmetic_intensity(s) for s, _ in rows])
try:
    roof = attainable_gflops(values, PEAK, BANDWIDTH)
    print("with your attainable_gflops:")
except NotImplementedError as missing:
    print(f"not implemented yet ({missing}): using bench.attainable_gflops")
    roof = bench.attainable_gflops(values, PEAK, BANDWIDTH)
for (s, _), limit in zip(rows, roof):
    bound = "memory" if limit < PEAK else "compute"
    print(f"  {s.name:<14} {bound:>7}-bound, roof {limit:9.1f} GFLOP/s, reached {measured[s.name] / limit:6.0%}")

# %% [markdown]
# ## The memory-bound ops, measured in GB/s
#
# For a memory-bound op the useful speed is bytes per second. Here are the pools and LRNs
# (their least traffic over their forward time) and the **im2col** of each convolution, timed
# alone: it does no arithmetic at all, it copies each input number into up to $K_H K_W$
# columns, $4(|x| + C K_H K_W \cdot N\, OH\, OW)$ bytes (`bench.im2col_bytes`). A 3x3 or 5x5
# convolution's im2col writes 9 or 25 times its input. A rate above the copy's means the data
# fit in the caches (late layers, small maps).

# %%
labels, rates = [], []
for s, t in rows:
    if s.op == "conv2d":
        if s.params["weight"][2] > 1:                  # a 1x1 convolution needs no im2col copy
            labels.append(f"{s.name} im2col")
            rates.append(bench.im2col_bytes(s) / lesson8.time_im2col(s, REPEATS) / 1e9)
    else:
        labels.append(s.name)
        rates.append(bench.op_bytes(s) / t["fwd"] / 1e9)
for label, rate in zip(labels, rates):
    print(f"  {label:<18} {rate:7.1f} GB/s   ({rate / BANDWIDTH:5.0%} of the copy)")

fig, ax = plt.subplots(figsize=(6, 3.5))
lesson8_pictures.plot_bandwidths(ax, labels, rates, BANDWIDTH, title="the memory-bound ops and im2col: bytes per second")
fig.tight_layout()

# %% [markdown]
# These ops can only get faster by moving fewer bytes (fusing the im2col copy into the GEMM, as
# cuDNN's implicit GEMM does; pooling straight out of the convolution's output), by fetching
# them faster, with more cores at once (next), or by running on memory that is faster: a GPU's.
#
# ## Every core: threads for the memory-bound ops
#
# One core cannot use all of a machine's memory bandwidth: it has only so many requests to
# memory in flight at a time, each waiting about 100 ns, so its share is capped well below
# what the memory can deliver. Several cores pulling at once get more, until the memory itself
# is busy. So a memory-bound kernel speeds up with threads, up to a point; a compute-bound one
# (the GEMM) already has BLAS's threads on every core.
#
# Threads work in Python here because NumPy lets go of the interpreter lock (the GIL) while its
# loops run over more than a few hundred numbers, while it copies, and while it reduces: the
# NumPy calls of several threads run on several cores at the same time. `minigrad.parallel`
# keeps a small pool of threads and cuts a kernel's work into chunks that never mix: the images
# (or channels, whichever lie further apart in memory) for pooling, the image rows for LRN,
# the channels for col2im, the rows of the output for im2col, blocks of memory for ReLU and
# copies. A chunk computes exactly what the whole would on its
# part, in the same order, so every thread count gives the same bits. How many threads:
# `--threads N` on the commands, the environment variable `MINIGRAD_THREADS`, or, by default,
# every core the process may use.
#
# The same kernels at 1, 2, 4, ... threads, up to this machine's cores, and a copy of an array
# far larger than the caches (the memory roof, at each thread count). `bench.thread_scaling`
# also checks that every count's results are the bits of one thread's:

# %%
CORES = parallel.available_cores()
THREAD_COUNTS = bench.counts_up_to(CORES)
by_name = {s.name: s for s in shapes}
wanted = ["pool1 fwd", "pool1 bwd", "lrn/conv2 fwd", "conv2 im2col", "conv2 relu bwd"]
scaled = [k for name in ("pool1", "lrn/conv2", "conv2")
          for k in bench.threaded_kernels(by_name[name], np.random.default_rng(0)) if k[0] in wanted]
scaled.append(bench.copy_kernel(pick(256, 64), np.random.default_rng(1)))
scaling = bench.thread_scaling(scaled, THREAD_COUNTS, repeats=pick(5, 3))
print(f"{CORES} cores available to this process; median of {pick(5, 3)}; the same bits at every count")
print("\n".join(lesson8_pictures.scaling_table(scaling)))

fig, ax = plt.subplots(figsize=(6, 3.8))
lesson8_pictures.plot_thread_scaling(ax, scaling, title=f"memory-bound kernels on 1 to {CORES} threads "
                                     f"(batch {BATCH}, {IMAGE_SIZE}x{IMAGE_SIZE})")
fig.tight_layout()

# %% [markdown]
# On two cores the best a kernel can do is twice as fast; on a machine busy with other work a
# thread may wait for a core, and the curve says more about the load than about the kernel (run
# the cell again when the machine is quiet). With more cores the curves bend away from the
# ideal: first the copy's, when the memory is as busy as it can be, and every memory-bound
# kernel with it, the more so the fewer operations it does per byte. Work too small to pay for
# handing it to a thread is not split at all (`parallel.MIN_CHUNK_NUMBERS`): the late layers'
# 7x7 maps run on one thread whatever the count.
#
# ## Plain loops vs fast code
#
# The same ops on the two kernel sets (`minigrad.kernels.use(name)`): `reference`, the plain
# loops over output positions that read like the formulas, and `numpy`, the fast code (one GEMM
# per convolution, no Python loop over positions, memory laid out for long inner loops). The
# same inputs give the same outputs; only the time differs.
#
# Where the work is a matrix product (the convolution) both sets call the same BLAS and differ
# little. Where it is a loop over windows (pooling), the plain loops pay Python's fixed cost
# at every one of thousands of windows, and short inner loops the hardware cannot keep busy.

# %%
compared = [s for s in shapes if s.name in ("pool1", "lrn/pool1", "3a/3x3", "3a/pool")]
by_set = {}
for name in ("reference", "numpy"):
    with kernels.use(name):                      # every op inside runs on this kernel set
        by_set[name] = bench.time_ops(compared, repeats=pick(3, 1))
print(f"{'layer':<12} {'reference fwd':>14} {'numpy fwd':>10} {'speed-up':>9}   "
      f"{'reference bwd':>14} {'numpy bwd':>10} {'speed-up':>9}")
for (s, slow), (_, fast) in zip(by_set["reference"], by_set["numpy"]):
    print(f"{s.name:<12} {slow['fwd'] * 1e3:>11.2f} ms {fast['fwd'] * 1e3:>7.2f} ms {slow['fwd'] / fast['fwd']:>8.1f}x"
          f"   {slow['bwd'] * 1e3:>11.2f} ms {fast['bwd'] * 1e3:>7.2f} ms {slow['bwd'] / fast['bwd']:>8.1f}x")

fig, ax = plt.subplots(figsize=(6, 3.5))
lesson8_pictures.plot_kernel_sets(ax, by_set, title="the same ops on the two kernel sets (hatched: backward)")
fig.tight_layout()

# %% [markdown]
# Both sets do the same arithmetic: what differs is how the data is walked through. It is the
# roofline's lesson one level up: past a point, an op's speed is set by how its data moves,
# not by how many FLOPs it has.
#
# ## The GPU side
#
# On a GPU both roofs are far higher: a data-center GPU does tens of thousands of float32
# GFLOP/s and moves several thousand GB/s, hundreds of times one CPU core. Each op gains the
# ratio of the roof that bounds it: a memory-bound op the ratio of the bandwidths, a
# compute-bound one the ratio of the peaks. The peak usually grows more than the bandwidth,
# so the ridge moves right and ops in between become memory-bound there. The small ops gain
# least: every kernel costs its launch, whatever it does (exercise 8.1).
#
# `benchmarks/` holds what one run on an NVIDIA H200 recorded (its README names the machine
# and the versions; `bash .ci/gpu` records it again on any CUDA GPU). The crosses on the
# roofline above are its hand-written CUDA kernels at batch 8, under the H200's own roofs
# (dashed): the GEMM peak and the copy bandwidth measured on it the way this lesson measured
# this CPU's. The same ops, here and there:

# %%
if recorded is None:
    print(f"No GPU numbers to show: {lesson8_recorded.RECORDED_GPU} has not been recorded yet.")
    print(f"This machine cannot measure them: {reason}." if reason else
          "A GPU is usable here: python -m googlenet bench --device cuda times its ops.")
else:
    print("\n".join(lesson8_pictures.recorded_report(recorded, rows)))

# %% [markdown]
# ### Every op in five configurations
#
# The same run timed each op of GoogLeNet, forward and backward, five ways: `cpu numpy`
# (minigrad on that machine's 16 CPU cores), `cuda numpy` (the same array code on CuPy: the
# *generic* GPU path), `cuda cuda` (minigrad's **hand-written** CUDA kernels,
# `minigrad/kernels/cuda/`), and PyTorch on the CPU and on the GPU (cuDNN). Where this run is
# at the same batch and image size, this CPU's times come first (one core; the recorded CPU
# had sixteen).

# %%
comparisons = {batch: lesson8_recorded.load_comparison(path, googlenet_op_shapes)
               for batch, path in zip((8, 32), lesson8_recorded.COMPARISON_CSVS)}
comparison = comparisons[8]
if comparison is None:
    print(f"No comparison recorded: {lesson8_recorded.COMPARISON_CSVS[0]} does not exist.")
else:
    same_shapes = (comparison.batch, comparison.image_size) == (BATCH, IMAGE_SIZE)
    print(f"recorded at batch {comparison.batch}, {comparison.image_size}x{comparison.image_size} "
          f"({comparison.path}):")
    print("\n".join(lesson8_pictures.comparison_table(comparison, [s.name for s in shapes], here=rows if same_shapes else None)))
    fig, (kinds, slowest) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw=dict(width_ratios=(1, 1.3)))
    compare.draw_kinds(kinds, comparison.shapes, comparison.results)
    compare.draw_slowest(slowest, comparison.shapes, comparison.results)
    fig.suptitle(f"GoogLeNet's {len(comparison.shapes)} ops at batch {comparison.batch}, recorded on the H200 "
                 f"and its CPU", fontsize=10)
    fig.tight_layout()

# %% [markdown]
# Each kind of op summed, at both recorded batches: the GPU paths against each other.

# %%
GENERIC, HAND_WRITTEN, CUDNN = ("cuda", "numpy"), ("cuda", "cuda"), ("cuda", "torch")
kinds_by_batch = {}
for batch, recorded_comparison in comparisons.items():
    if recorded_comparison is None:
        continue
    kinds_by_batch[batch] = compare.kind_totals(recorded_comparison.shapes, recorded_comparison.results)
    print(f"batch {batch}:")
    for kind, seconds in kinds_by_batch[batch].items():
        print(f"  {kind:<14} generic {seconds[GENERIC] * 1e3:6.2f} ms, hand-written {seconds[HAND_WRITTEN] * 1e3:6.2f} ms, "
              f"PyTorch {seconds[CUDNN] * 1e3:6.2f} ms; hand-written {seconds[GENERIC] / seconds[HAND_WRITTEN]:4.1f} "
              f"times the generic path's speed")

# %% [markdown]
# The pools and the LRNs, memory-bound, gain the most from the GPU, and there the
# hand-written kernels beat the generic path (eight times or more for the max pools): one fused
# pass over the data, where the generic path makes one pass per window offset. The
# convolutions go the other way: the generic path (one GEMM over the whole batch) is faster
# than the hand-written kernels of that run (one matrix product per image), at both batches; at
# batch 32 PyTorch's cuDNN is faster than both. (The cuda set has since changed to one GEMM over
# the whole batch, its bias and ReLU fused into the kernel that lays out the product:
# `minigrad/kernels/cuda/__init__.py`.)
#
# Then the small convolutions. At batch 8 the 1x1 convolutions differ a lot in their work,
# and hardly at all in their GPU time: a kernel this small finishes before the next one is
# launched, and what is measured is the launches (exercise 8.1's left side).

# %%
if comparison is not None:
    ones = [s for s in comparison.shapes if s.op == "conv2d" and s.params["weight"][2] == 1]
    flops = [bench.op_flops(s) for s in ones]
    print(f"the {len(ones)} 1x1 convolutions at batch {comparison.batch}: FLOPs from {min(flops) / 1e6:.0f} M "
          f"to {max(flops) / 1e6:.0f} M ({max(flops) / min(flops):.0f} times)")
    spans = {}
    for configuration, timings in comparison.results.items():
        ms = [(timings[s.name]["fwd"] + timings[s.name]["bwd"]) * 1e3 for s in ones]
        spans[configuration] = max(ms) / min(ms)
        print(f"  {compare.label(configuration):<11} {min(ms):7.3f} to {max(ms):7.3f} ms fwd + bwd "
              f"({spans[configuration]:4.1f} times)")

# %% [markdown]
# ### A whole training step: launch-bound or GPU-bound
#
# The same holds for a whole training step of GoogLeNet (forward with both auxiliary heads,
# the loss, backward, the SGD update), thousands of kernels. The run measured two times per
# step: the **CPU side**, how long Python took to launch them all, and the **GPU time**, from
# the first kernel's start to the last one's end. When the two are equal, the GPU finished
# each kernel before the next arrived: it waited on Python (launch-bound). When the GPU
# time is longer, the GPU was busy all along (GPU-bound).

# %%
steps = lesson8_recorded.load_training_steps(lesson8_recorded.TRAINING_STEPS)
if steps is None:
    print(f"No training steps recorded: {lesson8_recorded.TRAINING_STEPS} does not exist.")
else:
    for step in steps:
        print(f"  {step.implementation:<9} batch {step.batch:>3}: CPU side {step.cpu_side_ms:6.1f} ms, "
              f"GPU time {step.gpu_ms:6.1f} ms: {lesson8_recorded.step_bound(step)}")
    fig, ax = plt.subplots(figsize=(8, 3.6))
    lesson8_pictures.plot_training_steps(ax, steps, title="one training step of GoogLeNet at 224x224 on the H200 "
                                                 "(recorded 2026-12-04)")
    fig.tight_layout()

# %% [markdown]
# Ours is launch-bound at batch 8 and 32: its step takes no longer for 32 images than for 8,
# because the time is the launches, not the images, and the GPU does a fraction of the work it
# could. At batch 128 the work finally outlasts the launches and the GPU is busy all along.
# PyTorch's CPU side is three to seven times shorter (its launches come from C++, and cuDNN
# does a convolution in fewer kernels), and from batch 32 on its GPU is the bottleneck. The cures follow from exercise 8.1: fewer launches (fuse
# small kernels into one; one GEMM over the batch instead of one per image) or cheaper ones
# (record the whole step once as a **CUDA graph** and replay it with one launch: on the H200,
# 2,000 small kernels took 38.4 ms launched one by one and 1.9 ms replayed as a graph).

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson that do not depend on how busy the machine is, asserted: every op
# has work and traffic; pooling and LRN are at most 9/8 FLOPs per byte and every convolution
# above that; a convolution's intensity grows with the batch (its weights are fetched once for
# more images) while a pool's or an LRN's does not; the roofline is the lower roof, and an op
# is memory-bound exactly when it lies left of the ridge; both kernel sets compute the same
# outputs, up to the rounding of their sums (`minigrad.tolerance`: a convolution's output sums
# $C K_H K_W$ products, and two correct orders of that sum differ by up to $\gamma_n$ times
# the sum of the products' magnitudes, not by a fixed fraction of the result; a max pool
# rounds nothing and must agree exactly); the threaded kernels compute the same bits on one
# thread and on every core; a GPU's finish time lies between the larger of the
# CPU side and the kernels' time and their sum; the backend's answer about the GPU is
# consistent; recorded GPU numbers are shown exactly when their file exists, and what they
# say is what the text above reads from them. (No assertion is made about a speed measured
# here: those depend on the machine and its load.)

# %%
for s in shapes:
    assert bench.op_flops(s) > 0 and bench.op_bytes(s) > 0, s.name
light = [bench.arithmetic_intensity(s) for s in shapes if s.op != "conv2d"]
heavy = [bench.arithmetic_intensity(s) for s in shapes if s.op == "conv2d"]
assert light and heavy and max(light) <= 9 / 8 < min(heavy)
doubled = {s.name: s for s in googlenet_op_shapes(2 * BATCH, IMAGE_SIZE)}
for s in shapes:
    more = bench.arithmetic_intensity(doubled[s.name])
    if s.op == "conv2d":
        assert more > bench.arithmetic_intensity(s), s.name
    else:
        assert np.isclose(more, bench.arithmetic_intensity(s)), s.name
roofs = bench.attainable_gflops(values, PEAK, BANDWIDTH)
assert np.allclose(roofs, np.minimum(PEAK, values * BANDWIDTH))
assert np.array_equal(roofs < PEAK, values < RIDGE)
assert [s for s, _ in rows] == shapes and all(t["fwd"] > 0 and t["bwd"] > 0 for _, t in rows)
for s in compared:
    lesson8.assert_sets_agree(s, lesson8.forward_on_each_set(s))
assert list(scaling) == [label for label, _ in scaled]
assert all(list(t) == THREAD_COUNTS and min(t.values()) > 0 for t in scaling.values())
pool1 = bench.threaded_kernels(by_name["pool1"], np.random.default_rng(2))[1][1]   # its backward
with parallel.threads(1):
    one_thread = pool1()
with parallel.threads(max(THREAD_COUNTS)):
    assert bench.same_bits(pool1(), one_thread)
for durations in (np.full(KERNELS, 1.0), np.full(KERNELS, 100.0), np.array([100.0, 1, 1, 1, 1, 1])):
    launches, work = len(durations) * LAUNCH_US, durations.sum()
    assert max(launches, work) < finish_time(durations, LAUNCH_US) <= launches + work
assert (reason is None) == backend.is_gpu_available()
assert (recorded is None) == (not lesson8_recorded.RECORDED_GPU.is_file())
for batch, kinds in kinds_by_batch.items():
    assert kinds["max pools"][GENERIC] > 8 * kinds["max pools"][HAND_WRITTEN], batch
    assert kinds["LRNs"][GENERIC] > kinds["LRNs"][HAND_WRITTEN], batch
    assert kinds["convolutions"][HAND_WRITTEN] > kinds["convolutions"][GENERIC], batch
if 32 in kinds_by_batch:
    assert kinds_by_batch[32]["convolutions"][CUDNN] < kinds_by_batch[32]["convolutions"][GENERIC]
if comparison is not None:
    assert max(flops) > 10 * min(flops) and spans[HAND_WRITTEN] < 1.5
if steps is not None:
    by = {(step.implementation, step.batch): step for step in steps}
    assert [lesson8_recorded.step_bound(by["minigrad", b]) for b in (8, 32, 128)] == ["launch-bound"] * 2 + ["GPU-bound"]
    assert by["minigrad", 32].gpu_ms <= by["minigrad", 8].gpu_ms
    assert all(3 < by["minigrad", b].cpu_side_ms / by["pytorch", b].cpu_side_ms < 7 for b in (8, 32, 128))
    assert [lesson8_recorded.step_bound(by["pytorch", b]) for b in (8, 32, 128)] == ["launch-bound"] + ["GPU-bound"] * 2
print("all claims hold")

# %% [markdown]
# ## Questions
#
# **8.a** In exercise 8.1's example (1,000 kernels, 10 µs a launch), a GPU twice as fast halves
# every kernel's time. How much faster does the whole stream finish when each kernel ran for
# 2 µs, and when each ran for 100 µs?
#
# ### BEGIN ANSWER question 8.a
# At 2 µs it does not get faster at all: each kernel ends long before the next is launched, so
# the stream ends one kernel's time after the last launch, at about 1,000 x 10 µs = 10 ms,
# before and after.
# At 100 µs the queue never empties and the stream takes about the kernels' time, 100 ms, which
# halves to about 50 ms. A launch-bound program gains nothing from a faster GPU; only fewer or
# cheaper launches help it.
# ### END ANSWER
#
# **8.b** Why does a convolution's arithmetic intensity grow with the batch, while a max
# pool's stays the same?
#
# ### BEGIN ANSWER question 8.b
# A convolution reads its weights once for the whole batch and uses them for every image: its
# FLOPs grow with N, its bytes grow with N only for x and y, so FLOPs per byte rise with N
# (towards the limit where the weights' bytes no longer count). A max pool has no weights: its
# comparisons and its bytes (x and y) both grow exactly in proportion to N.
# ### END ANSWER
#
# **8.c** On the H200 our training step at batch 32 took 58.2 ms of GPU time for 57.5 ms on
# the CPU side. Name two changes that would make it faster, and one that would not.
#
# ### BEGIN ANSWER question 8.c
# The GPU waited for Python, so what helps is fewer or cheaper launches: fewer kernels (one
# GEMM over the whole batch instead of one product per image; bias and ReLU fused into the
# kernel that lays out the GEMM's output; each Inception branch writing straight into its slice
# of the concatenation), or one launch for the whole step (record it once as a CUDA graph and
# replay it). Faster kernels would not help, nor a faster GPU: the GPU is already idle between
# kernels. (At batch 128, where the GPU is busy, faster kernels would.)
# ### END ANSWER
#
# **8.d** With threads the pools and the LRN got faster on this machine. Why would 16 threads
# not make them 16 times faster on a 16-core machine, and why do minigrad's threads leave the
# convolutions' matrix products alone?
#
# ### BEGIN ANSWER question 8.d
# They are memory-bound: their time is the time to move their bytes. Each core adds its own
# requests to memory, so a few cores move more bytes than one, but all the cores share the same
# memory, and once it delivers all it can (the copy's curve flattening) more threads only wait
# for it. Small kernels gain less still: handing chunks to threads has a fixed cost, and the
# late layers' small maps are not split at all.
# The matrix products are compute-bound and BLAS already runs each on every core; splitting
# them again would put two threads on each core and slow them down.
# ### END ANSWER

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(8)
