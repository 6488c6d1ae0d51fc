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
# **What you will learn**
#
# - how to count what an op must do from its shapes alone: its **work** (FLOPs) and its
#   **traffic** (bytes to and from memory), and their ratio, the **arithmetic intensity**;
# - the two **roofs** of a machine, measured here: how fast it multiplies matrices (its GEMM
#   peak) and how fast it moves memory (its bandwidth);
# - the **roofline**: why pooling, LRN and im2col are held down by memory, whatever their
#   arithmetic, while the big convolutions come close to the GEMM roof;
# - how much the fast kernels (`numpy`) gain over the plain loops (`reference`);
# - what a GPU changes, and why this run can or cannot show it.
#
# Everything is timed on GoogLeNet's own layer shapes with minigrad's op benchmark
# (`minigrad/bench.py`, also `python -m googlenet bench`). Speeds are measured by the cell
# that prints them: on a busy or different machine they will differ, the reasoning will not.

# %%
import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

from googlenet.bench import googlenet_op_shapes
from minigrad import backend, bench, kernels
from course import check, lesson8, pick

# %% [markdown]
# ## The ops we time
#
# A slice of GoogLeNet: the stem (conv1, pool1, LRN, conv2 and its 1x1 reduce, pool2), the
# branches of Inception 3a and a few later layers. `pick(full, small)` shrinks the batch and
# the image when the course runs in fast mode (tests, CI); GoogLeNet needs at least 31x31.
# Each time is a median of `REPEATS` runs: on a machine shared with other work a single run
# can be many times too slow.
#
# We measure **one core**. NumPy's own loops (pooling, LRN, im2col, copying an array) run on
# one core; only the matrix products (BLAS) use them all. Holding BLAS to one thread as well
# puts every op and both roofs on the same footing, and makes the timings steadier on a shared
# machine (`python -m googlenet bench --blas-threads 1` does the same). Set `BLAS_THREADS =
# None` to let the GEMMs use every core: their roof rises about as many times as there are
# cores, and nothing else moves.

# %%
BATCH, IMAGE_SIZE, REPEATS = pick(8, 1), pick(224, 64), pick(7, 5)
BLAS_THREADS = 1
threadpool_limits(limits=BLAS_THREADS, user_api="blas")
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
# `benchmarks/gpu_ops.csv` (format: `course/lesson8.py`), which this lesson draws
# beside the CPU's.

# %%
reason = backend.gpu_unavailable_reason()
print("GPU:", "usable" if reason is None else f"not usable here: {reason}")
recorded = lesson8.load_recorded(lesson8.RECORDED_GPU, googlenet_op_shapes)
if recorded is None:
    print(f"No GPU numbers recorded yet: {lesson8.RECORDED_GPU} does not exist.")
else:
    print(f"Recorded on {recorded.device}: {len(recorded.points)} ops from {recorded.path}")

# %% [markdown]
# So what follows measures the **CPU** side. The reasoning carries over: a GPU has both roofs
# far higher (tens of thousands of GFLOP/s from thousands of cores; several TB/s from memory
# stacked beside the chip), and the same roofline tells which of its ops gain from which.
#
# ## Work: FLOPs
#
# A FLOP is one floating-point add, multiply, compare... A convolution's output element is a
# sum of $C K_H K_W$ products, one **multiply-add** each, which is **two** FLOPs. With
# $OH = \lfloor (H + 2P - K_H) / S \rfloor + 1$ (and $OW$ alike):
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
# **Exercise 8.1: the FLOPs of a convolution.** Given the input shape `(N, C, H, W)`, the weight
# shape `(F, C, KH, KW)`, the stride and the padding (the same along both axes), return the
# forward pass's FLOPs.

# %%
def conv_flops(x_shape, w_shape, stride, padding):
    n, c, h, w = x_shape
    f, _, kh, kw = w_shape
    ### BEGIN SOLUTION exercise 8.1: the FLOPs of a convolution
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    return 2 * n * f * oh * ow * c * kh * kw
    ### END SOLUTION


check.exercise("8.1", conv_flops)

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
# `bench.op_flops(shape)` for the FLOPs (you wrote the convolution's in 8.1) and count the
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
# explained in `minigrad/bench.py`.

# %%
print(bench.HEADER)
rows = bench.time_ops(shapes, REPEATS, progress=lambda row: print(bench.format_row(*row)))
bench.print_summary(rows)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
lesson8.plot_op_times(rows, ax)
ax.set_title(f"forward time per op (batch {BATCH}, {IMAGE_SIZE}x{IMAGE_SIZE})", fontsize=9)
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
for line in lesson8.roofline_table([(s, t["fwd"]) for s, t in rows], PEAK, BANDWIDTH):
    print(line)

fig, ax = plt.subplots(figsize=(8, 4.5))
lesson8.plot_roofline(ax, rows, PEAK, BANDWIDTH, recorded=recorded)
ax.set_title("roofline of GoogLeNet's ops, forward" + ("" if recorded else " (CPU only: no GPU recorded)"),
             fontsize=9)
fig.tight_layout()

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
# A point above the memory roof is no mistake: a small op's data fits in the caches, which
# deliver more than the memory our copy measured. A point above the GEMM roof means the roof
# was measured while the machine was busy with something else: run the roofs cell again.
#
# Your `attainable_gflops` on these ops: which roof bounds each, and how close it came.

# %%
measured = {s.name: lesson8.achieved_gflops(s, t["fwd"]) for s, t in rows}
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
lesson8.plot_bandwidths(ax, labels, rates, BANDWIDTH)
fig.tight_layout()

# %% [markdown]
# These ops can only get faster by moving fewer bytes (fusing the im2col copy into the GEMM, as
# cuDNN's implicit GEMM does; pooling straight out of the convolution's output) or by running
# on memory that is faster: a GPU's.
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
lesson8.plot_kernel_sets(ax, by_set)
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
# least: a GPU kernel launch costs microseconds whatever it does, more than a tiny op's work.
#
# A run on a GPU records its numbers in `benchmarks/gpu_ops.csv`, and this lesson then draws
# them beside the CPU's (crosses on the roofline above, with the GPU's own roofs dashed).

# %%
if recorded is None:
    print(f"No GPU numbers to show: {lesson8.RECORDED_GPU} has not been recorded yet.")
    print(f"This machine cannot measure them: {reason}." if reason else
          "A GPU is usable here: python -m googlenet bench --device cuda times its ops.")
else:
    print("\n".join(lesson8.recorded_report(recorded, rows)))

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson that do not depend on how busy the machine is, asserted: every op
# has work and traffic; pooling and LRN are at most 9/8 FLOPs per byte and every convolution
# above that; a convolution's intensity grows with the batch (its weights are fetched once for
# more images) while a pool's or an LRN's does not; the roofline is the lower roof, and an op
# is memory-bound exactly when it lies left of the ridge; both kernel sets compute the same
# outputs; the backend's answer about the GPU is consistent; and recorded GPU numbers are shown
# exactly when their file exists. (No assertion is made about a measured speed: those depend
# on the machine and its load.)

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
    outputs = lesson8.forward_on_each_set(s)
    assert np.allclose(outputs["reference"], outputs["numpy"], rtol=1e-4, atol=1e-5), s.name
assert (reason is None) == backend.is_gpu_available()
assert (recorded is None) == (not lesson8.RECORDED_GPU.is_file())
print("all claims hold")
