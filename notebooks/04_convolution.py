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
# # Lesson 4: Convolution by im2col
#
# **Time:** about 60 minutes: 40 to read and step through, 20 for the three exercises. The code
# runs in about 5 s at full size on 2 CPU cores.
#
# **Assumes:** lessons 1-3 (a forward/backward pair over arrays, its cache, the gradient check,
# the backward of a matrix product); NumPy slicing, `reshape`, `np.pad` and broadcasting.
#
# **What you will learn**
#
# - what a convolution layer computes, written as plain loops (the definition);
# - **im2col**: copy every window of the input into a column, so the whole convolution is
#   **one matrix product**;
# - **col2im**, the adjoint of im2col, and why it must *add* (windows overlap);
# - the backward of a convolution: three matrix products and a col2im, stepped through one
#   column at a time;
# - how much faster one product is than the loops, measured;
# - going further: Winograd's way to a 3x3 convolution with fewer multiplications.
#
# You will write im2col (4.1), the convolution forward with it (4.2) and its backward (4.3).
# The math is in `minigrad/ops/conv.py`; `minigrad/kernels/reference.py` writes it out plainly
# and `minigrad/kernels/vectorized.py` is the fast version of the same.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
from minigrad import functional as F
from minigrad import kernels
from minigrad.kernels import reference, winograd
from course import check, pick
from course.pictures import ConvStepper, conv_volume_picture
from minigrad.geometry import window

rng = np.random.default_rng(0)

# %% [markdown]
# ## The definition: loops
#
# A convolution layer (a cross-correlation, strictly: the kernel is not flipped) slides each of
# $F$ filters $W_f$ of shape $(C, K_H, K_W)$ over the input, zero-padded by $P$ on every side,
# in steps of $S$:
#
# $$y_{n,f,o_h,o_w} = b_f + \sum_{c=0}^{C-1}\sum_{i=0}^{K_H-1}\sum_{j=0}^{K_W-1}
#   W_{f,c,i,j}\; x^{\text{pad}}_{n,\,c,\,o_h S + i,\,o_w S + j},
# \qquad O_H = \left\lfloor \frac{H + 2P - K_H}{S} \right\rfloor + 1 .$$
#
# Written as loops, that is six loops per image (filters, output rows and columns, channels,
# kernel rows and columns). We only ever run it on tiny inputs.

# %%
def naive_conv2d(x, W, b, stride=1, padding=0):
    """The definition, loop by loop: x (N, C, H, W), W (F, C, KH, KW), b (F,)."""
    N, C, H, Wd = x.shape
    Fn, _, KH, KW = W.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH = (H + 2 * padding - KH) // stride + 1
    OW = (Wd + 2 * padding - KW) // stride + 1
    y = np.zeros((N, Fn, OH, OW), dtype=x.dtype)
    for n in range(N):
        for f in range(Fn):
            for r in range(OH):
                for s in range(OW):
                    total = b[f]
                    for c in range(C):
                        for u in range(KH):
                            for v in range(KW):
                                total += W[f, c, u, v] * padded[n, c, r * stride + u, s * stride + v]
                    y[n, f, r, s] = total
    return y


x_tiny = rng.standard_normal((2, 3, 5, 5))
W_tiny = rng.standard_normal((4, 3, 3, 3))
b_tiny = rng.standard_normal(4)
y_loops = naive_conv2d(x_tiny, W_tiny, b_tiny, stride=2, padding=1)
y_package = F.conv2d(mg.tensor(x_tiny), mg.tensor(W_tiny), mg.tensor(b_tiny), stride=2, padding=1).numpy()
print("output shape", y_loops.shape, " largest difference from minigrad's conv2d:",
      np.abs(y_loops - y_package).max())

# %% [markdown]
# In three dimensions: every filter is as deep as the input (all $C$ channels) and slides over its
# rows and columns; at each output position $(o_h, o_w)$ the $F$ filters give $F$ numbers, a
# **column** of the output volume. Below, 3 channels of 7x7, 4 filters of 3x3, stride 2: window
# $(1, 2)$ (rows 2-4, columns 4-6) gives the column $y[:, 1, 2]$, filter 1 the red cell of it.

# %%
volume_figure, volume = conv_volume_picture((3, 7, 7), filters=4, kernel=3, stride=2, out=(1, 2), f=1)

# %% [markdown]
# ## im2col: every window becomes a column
#
# Look at the innermost three loops: for one output pixel they take the window
# $x^{\text{pad}}_{n, :, o_hS : o_hS + K_H,\ o_wS : o_wS + K_W}$ and dot it with the filter. If
# we copy every window, flattened, into a column of a matrix `cols`, that inner work becomes a
# matrix product. Here is the smallest example: one channel, a 4x4 input, a 2x2 kernel,
# stride 1: there are $3 \times 3 = 9$ windows, each of $2 \times 2 = 4$ numbers.

# %%
x_small = np.arange(16.0).reshape(1, 1, 4, 4)
win_small = window((4, 4), kernel=2, stride=1, padding=0)
cols_small = reference.im2col(x_small, win_small)[0]            # (C*KH*KW, OH*OW) = (4, 9)
print(win_small)
print("cols:", cols_small.shape)


def show_numbers(ax, matrix, title):
    ax.imshow(matrix, cmap="Blues", vmin=matrix.min() - 4, vmax=matrix.max() + 4)
    for (r, c), value in np.ndenumerate(matrix):
        ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))


oh, ow = 1, 2                                                   # one window, highlighted
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [4, 9]})
show_numbers(left, x_small[0, 0], "x (4x4)")
left.add_patch(plt.Rectangle((ow - 0.5, oh - 0.5), 2, 2, fill=False, edgecolor="red", linewidth=2))
show_numbers(right, cols_small, "cols (4 x 9): column oh*OW + ow = window (oh, ow)")
right.add_patch(plt.Rectangle((oh * 3 + ow - 0.5, -0.5), 1, 4, fill=False, edgecolor="red", linewidth=2))
right.set_xlabel("column = window number")
right.set_ylabel("row = (c, i, j)")
fig.suptitle("im2col: window (1, 2) of x becomes column 5 of cols", fontsize=11)
fig.tight_layout()

# %% [markdown]
# The red window (row 1, column 2) is column $1 \cdot 3 + 2 = 5$: its four numbers read row by
# row. The windows overlap, so most pixels are copied several times: `cols` is bigger than `x`
# (here 36 numbers for 16). With $C$ channels a column holds the $C K_H K_W$ numbers of the
# window in $(c, i, j)$ order, **the same order as a filter `W[f]` flattened**. That is the whole
# trick: with $W_2$ = `W.reshape(F, C*KH*KW)`,
#
# $$Y_n = W_2 \,\mathrm{cols}_n + b \qquad (F \times C K_H K_W)\,(C K_H K_W \times O_H O_W)
#   = (F \times O_H O_W),$$
#
# and $Y_n$ reshaped to $(F, O_H, O_W)$ is the output of image $n$: one matrix product (a
# GEMM, "general matrix multiply", which BLAS libraries run at close to the machine's peak).
#
# ## Step through it: one output position at a time
#
# A 5x5 image (one channel, the numbers 1 to 25), padded by 1, two 3x3 filters, stride 2: nine
# output positions. Frame $p$ shows window $p$ of the padded $x$ (the grey border is the
# padding), the column $p$ of `cols` that im2col copies it to, and the product of each filter,
# flattened in the same order, with that column: one number per filter, $y[:, o_h, o_w]$ with
# $p = o_h O_W + o_w$. A slider picks $p$ (or press play); where widgets cannot be shown, the
# output is a few frames in one picture.

# %%
x_step = np.arange(1.0, 26.0).reshape(1, 5, 5)
W_step = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]],          # a vertical-edge filter
                   [[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]], dtype=float)   # a Laplacian
b_step = np.array([0.0, 1.0])
gy_step = np.array([[[1, 0, 2], [-1, 1, 0], [0, 2, -1]], [[0, 1, -1], [2, 0, 1], [1, -1, 0]]], dtype=float)
stepper = ConvStepper(x_step, W_step, b_step, gy_step, stride=2, padding=1)
stepper.show()

# %% [markdown]
# The price is memory. For the 3x3 branch of GoogLeNet's first Inception module (96 channels
# of 28x28, 128 filters) the column matrix is:

# %%
channels_3a, filters_3a = 96, 128
win_3a = window((28, 28), kernel=3, stride=1, padding=1)
x_numbers = channels_3a * 28 * 28
rows_3a, columns_3a = channels_3a * 3 * 3, win_3a.out[0] * win_3a.out[1]     # cols is (C*KH*KW, OH*OW)
print(f"per image: x has {x_numbers} numbers, cols {rows_3a * columns_3a} "
      f"({rows_3a * columns_3a / x_numbers:.0f}x, i.e. KH*KW); the product ({filters_3a} x {rows_3a}) @ "
      f"({rows_3a} x {columns_3a}) does {2 * filters_3a * rows_3a * columns_3a / 1e6:.0f} million "
      f"floating-point operations")

# %% [markdown]
# ## Exercise 4.1: im2col
#
# Write `im2col(x, win)`: x (N, C, H, W) -> cols (N, C\*KH\*KW, OH\*OW), exactly the layout of
# `minigrad.kernels.reference.im2col`:
#
# - pad x with PH zero rows above **and** below, PW zero columns left **and** right
#   (`np.pad`);
# - window (oh, ow) is padded rows `oh*SH ... oh*SH + KH - 1`, columns `ow*SW ... ow*SW + KW - 1`;
# - it goes, flattened in (c, i, j) order (`reshape`), to column `oh*OW + ow`.
#
# `win` is a `Window` (`minigrad/geometry.py`): `win.kernel`, `win.stride`, `win.padding`
# and `win.out` are (height, width) pairs. The checker tries padding, strides and a
# rectangular kernel. Two loops over the output pixels are fine.
#
# (Stuck after a wrong verdict? `check.hint("4.1")` prints the rule; `check.progress(4)`
# shows where this lesson's exercises stand.)

# %%
def im2col(x, win):
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = win.kernel, win.stride, win.padding, win.out
    n, c = x.shape[:2]
    ### BEGIN SOLUTION exercise 4.1: im2col
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            patch = x_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]      # (N, C, KH, KW)
            cols[:, :, i * ow + j] = patch.reshape(n, -1)
    return cols
    ### END SOLUTION


verdict_4_1 = check.exercise("4.1", im2col)

# %% [markdown]
# ## Exercise 4.2: the convolution as one product
#
# Write `conv2d_im2col(x, W, b, win)` -> y (N, F, OH, OW) with `cols_of(x, win)` and one matrix
# product: `W.reshape(F, -1) @ cols` multiplies every image at once (NumPy's `@` broadcasts
# over the leading axis of `cols`). Add `b[f]` to filter f's row, then reshape.
# `cols_of` is your im2col if exercise 4.1 is correct, otherwise the reference one, so this
# exercise does not depend on the previous one.

# %%
cols_of = im2col if verdict_4_1.correct else reference.im2col
print("cols_of is", "your im2col" if verdict_4_1.correct else "reference.im2col")


def conv2d_im2col(x, W, b, win):
    ### BEGIN SOLUTION exercise 4.2: convolution forward by im2col
    filters = W.shape[0]
    out = W.reshape(filters, -1) @ cols_of(x, win) + b[:, None]      # (N, F, OH*OW)
    return out.reshape((x.shape[0], filters) + win.out)
    ### END SOLUTION


check.exercise("4.2", conv2d_im2col)

# %% [markdown]
# ## col2im, the adjoint of im2col
#
# im2col is linear: `cols = A x` for a (huge, sparse) matrix $A$ of zeros and ones, one 1 per
# row, saying which pixel each entry was copied from. The backward of a linear map is its
# transpose: $g_x = A^\top g_{\text{cols}}$. That is **col2im**: send every entry of
# $g_{\text{cols}}$ back to the pixel it was copied from and **add**. An adjoint is defined by
#
# $$\langle \mathrm{im2col}(x),\ c \rangle = \langle x,\ \mathrm{col2im}(c) \rangle
#   \quad\text{for every } x \text{ and } c,$$
#
# which we check with random $x$ and $c$, with padding, a stride and overlapping windows:

# %%
win_adj = window((6, 7), kernel=3, stride=2, padding=1)
x_adj = rng.standard_normal((2, 3, 6, 7))
c_adj = rng.standard_normal(reference.im2col(x_adj, win_adj).shape)
left_side = np.sum(reference.im2col(x_adj, win_adj) * c_adj)
right_side = np.sum(x_adj * reference.col2im(c_adj, x_adj.shape, win_adj))
print(f"<im2col(x), c> = {left_side:.12f}\n<x, col2im(c)> = {right_side:.12f}")

# %% [markdown]
# col2im of a matrix of ones counts, for each pixel, the windows that hold it: that many
# entries of $g_{\text{cols}}$ come back to it. A col2im that *writes* (`=`) instead of adding
# (`+=`) keeps only the last window's share.

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 3))
for ax, (size, k, s, p) in zip(axes, [((5, 5), 3, 1, 1), ((7, 7), 3, 2, 0)]):
    win_count = window(size, kernel=k, stride=s, padding=p)
    ones = np.ones((1, k * k, win_count.out[0] * win_count.out[1]))
    show_numbers(ax, reference.col2im(ones, (1, 1) + size, win_count)[0, 0],
                 f"{k}x{k}, stride {s}, padding {p}")
fig.suptitle("col2im(ones): how many windows hold each pixel", fontsize=11)
fig.tight_layout()

# %% [markdown]
# ## The backward: three products and a col2im
#
# Per image, $Y = W_2\,\mathrm{cols} + b\,\mathbf{1}^\top$ is a matrix product, so the rules of
# lesson 1's matmul give, with $G = \partial L/\partial Y$ (shape $(F, O_HO_W)$):
#
# $$\frac{\partial L}{\partial W_2} = \sum_n G_n\,\mathrm{cols}_n^\top, \qquad
#   \frac{\partial L}{\partial \mathrm{cols}_n} = W_2^\top G_n, \qquad
#   \frac{\partial L}{\partial b_f} = \sum_n \sum_{p} G_{n,f,p},$$
#
# then $\partial L/\partial W_2$ reshaped to W's shape, and $g_x$ = col2im of
# $\partial L/\partial \mathrm{cols}$. The weights are shared by every image and every pixel,
# so their gradient is a sum over both (the rule of a tensor used many times).
#
# ## Step through the backward
#
# The same convolution, with an upstream gradient $g_y$ (two 3x3 maps of small integers). Frame
# $p$ shows $g_y[:, o_h, o_w]$, the column $p$ of $g_{\text{cols}} = W_2^\top g_y$ it gives
# (each filter's weights times its $g_y$, summed), and col2im adding that column into window $p$
# of $g_x$: the hatched cells already held a share of an earlier window (stride 2 < kernel 3, so
# neighbouring windows overlap by a row or a column), and their shares **add up**.

# %%
stepper.show(backward=True)

# %% [markdown]
# ## Exercise 4.3: convolution backward
#
# The forward is `conv_forward(x, W, b, stride, padding)` from `course/lesson4.py`;
# its cache is `(cols, W, x_shape, win)` with `cols` (N, C\*KH\*KW, OH\*OW). Write
# `conv_backward(gy, cache)` -> `(gx, gW, gb)`, with your own col2im (padded zeros, add each
# window back with `+=`, cut the padding off). The checker compares all three with central
# differences on overlapping windows, strides and padding.

# %%
from course.lesson4 import conv_forward


def conv_backward(gy, cache):
    cols, W, x_shape, win = cache
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = win.kernel, win.stride, win.padding, win.out
    n, c, h, w = x_shape
    ### BEGIN SOLUTION exercise 4.3: convolution backward
    filters = W.shape[0]
    G = gy.reshape(n, filters, oh * ow)                                   # (N, F, P)
    gW = np.einsum("nfp,nkp->fk", G, cols).reshape(W.shape)
    gb = G.sum(axis=(0, 2))
    gcols = (W.reshape(filters, -1).T @ G).reshape(n, c, kh, kw, oh, ow)  # (N, K, P), by window
    g_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
    for i in range(oh):
        for j in range(ow):
            g_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += gcols[..., i, j]
    return g_pad[:, :, ph:ph + h, pw:pw + w], gW, gb
    ### END SOLUTION


check.exercise("4.3", conv_backward)

# %% [markdown]
# ## Your backward in the engine
#
# `mg.Op` makes the pair a differentiable function; we compare its three gradients with
# minigrad's own `conv2d`. (In the student version this cell reports that exercise 4.3 is
# missing and goes on.)

# %%
my_conv = mg.Op("my_conv", conv_forward, conv_backward)
x_e = mg.tensor(rng.standard_normal((2, 3, 7, 7)), requires_grad=True)
W_e = mg.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
b_e = mg.tensor(rng.standard_normal(4), requires_grad=True)
upstream = rng.standard_normal((2, 4, 4, 4))
try:
    (my_conv(x_e, W_e, b_e, stride=2, padding=1) * upstream).sum().backward()
    mine = [t.grad for t in (x_e, W_e, b_e)]
    for t in (x_e, W_e, b_e):
        t.grad = None
    (F.conv2d(x_e, W_e, b_e, stride=2, padding=1) * upstream).sum().backward()
    for name, g, t in zip(("gx", "gW", "gb"), mine, (x_e, W_e, b_e)):
        print(f"{name}: largest difference from minigrad's conv2d {np.abs(g - t.grad).max():.1e}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## How much one product saves
#
# The same convolution three ways, forward only, float32, timed in this cell (the median of
# several runs): the six loops above, the reference kernel set (a Python loop over the
# *windows* to build `cols`, then a product per image) and the numpy kernel set (`cols` as a
# strided view copied once, batch last, **one** product for the whole batch; see
# `minigrad/kernels/vectorized.py`; on the larger size it takes Winograd's way, the last section
# below). The loops run on the small size only. Ratios are against the numpy set.

# %%
def median_seconds(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


sizes = pick([((2, 8, 16, 16), (16, 8, 3, 3)), ((8, 64, 28, 28), (128, 64, 3, 3))],
             [((1, 3, 8, 8), (4, 3, 3, 3)), ((2, 8, 16, 16), (16, 8, 3, 3))])
repeats = pick(10, 3)
timings = []
for number, (x_shape, w_shape) in enumerate(sizes):
    x_t = rng.standard_normal(x_shape).astype(np.float32)
    W_t = rng.standard_normal(w_shape).astype(np.float32)
    b_t = rng.standard_normal(w_shape[0]).astype(np.float32)
    x_m, W_m, b_m = mg.tensor(x_t), mg.tensor(W_t), mg.tensor(b_t)
    seconds = {}
    if number == 0:
        seconds["loops"] = median_seconds(lambda: naive_conv2d(x_t, W_t, b_t, 1, 1), pick(3, 2))
    for name in ("reference", "numpy"):
        with kernels.use(name):
            seconds[name] = median_seconds(lambda: F.conv2d(x_m, W_m, b_m, padding=1), repeats)
    timings.append((x_shape, w_shape, seconds))

print(f"{'x':>16} {'W':>17} | {'loops':>9} {'reference':>10} {'numpy':>9} | {'loops/numpy':>11} "
      f"{'ref/numpy':>9}")
for x_shape, w_shape, seconds in timings:
    loops = f"{seconds['loops'] * 1e3:7.2f}ms" if "loops" in seconds else f"{'-':>9}"
    ratio = f"{seconds['loops'] / seconds['numpy']:10.0f}x" if "loops" in seconds else f"{'-':>11}"
    print(f"{str(x_shape):>16} {str(w_shape):>17} | {loops} {seconds['reference'] * 1e3:8.2f}ms "
          f"{seconds['numpy'] * 1e3:7.2f}ms | {ratio} {seconds['reference'] / seconds['numpy']:8.1f}x")

# %% [markdown]
# The loops pay Python's cost once per multiply-add; the reference set pays it once per
# window; the numpy set a handful of times per layer. (`python -m googlenet bench --only conv`
# times every convolution of GoogLeNet, forward and backward; `--kernels reference` the plain set.)
#
# ## Going further: fewer multiplications (Winograd)
#
# Every way above spends 9 multiply-adds per output pixel and channel pair of a 3x3
# convolution. Winograd's *minimal filtering* (S. Winograd 1980; for convolutional networks,
# Lavin and Gray 2016) needs fewer. In one dimension, two outputs of a 3-tap filter $g$ over
# four inputs $d$, $y_0 = d_0 g_0 + d_1 g_1 + d_2 g_2$ and $y_1 = d_1 g_0 + d_2 g_1 + d_3 g_2$,
# take 6 multiplications directly and 4 this way:
#
# $$y = A^T\left[(G g) \odot (B^T d)\right]$$
#
# with three small constant matrices ($B^T$ and $A^T$ hold only 0, 1 and -1, $G$ halves). $G g$
# is made once per filter and $B^T d$ once per input tile, so only the element-wise product
# $\odot$ is paid per (filter, tile) pair. In two dimensions rows and columns both get it: a 2x2
# tile of outputs from a 4x4 tile of input in 16 multiplications instead of 36,
# $Y = A^T [(G g G^T) \odot (B^T d B)] A$. Summed over the input channels the element-wise
# products become 16 matrix products, one per position of the 4x4 tile: 2.25 times fewer
# multiply-adds than im2col's product. What it costs instead is the transforms (additions over
# the whole input and output) and a little rounding. The numpy set does a 3x3 convolution of
# stride 1 and padding 1 this way on the CPU for maps of 100 pixels or more
# (`minigrad/kernels/winograd.py`, whose docstring has the 2-D layout; the backward is the
# exact transpose of the forward).

# %%
B_T, G, A_T = np.array(winograd.B_T, dtype=float), winograd.G, np.array(winograd.A_T, dtype=float)
d, g = rng.standard_normal(4), rng.standard_normal(3)
direct_1d = np.array([d[0:3] @ g, d[1:4] @ g])                 # 6 multiplications
winograd_1d = A_T @ ((G @ g) * (B_T @ d))                      # 4 (G g is made once per filter)
print("1-D, direct:  ", direct_1d, "\n1-D, Winograd:", winograd_1d)

tile, filter_3x3 = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
direct_2d = np.array([[np.sum(tile[i:i + 3, j:j + 3] * filter_3x3) for j in range(2)] for i in range(2)])
winograd_2d = A_T @ ((G @ filter_3x3 @ G.T) * (B_T @ tile @ B_T.T)) @ A_T.T     # 16 products
print("2-D, the largest difference on one tile:", np.abs(direct_2d - winograd_2d).max())

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson, asserted: the loops are the convolution, the column matrix
# has the layout drawn above, one product gives minigrad's conv2d, col2im is the adjoint of
# im2col and counts windows per pixel, the stepper's frames are im2col's columns and its
# backward adds up to col2im (overlapping windows sharing cells), the product is faster than
# the loops, and Winograd's 4 (and 16) products give the direct outputs.

# %%
assert np.allclose(y_loops, y_package)
assert cols_small.shape == (4, 9) and np.array_equal(cols_small[:, oh * 3 + ow], [6, 7, 10, 11])
W_small = rng.standard_normal((2, 1, 2, 2))
product = (W_small.reshape(2, -1) @ cols_small).reshape(2, 3, 3)
assert np.allclose(product, F.conv2d(mg.tensor(x_small), mg.tensor(W_small)).numpy()[0])
assert abs(left_side - right_side) < 1e-9 * abs(left_side)
counts = reference.col2im(np.ones((1, 9, 25)), (1, 1, 5, 5), window((5, 5), 3, 1, 1))[0, 0]
assert counts[0, 0] == 4 and counts[0, 2] == 6 and counts[2, 2] == 9
assert np.allclose(stepper.y, F.conv2d(mg.tensor(x_step[None]), mg.tensor(W_step), mg.tensor(b_step),
                                       stride=2, padding=1).numpy()[0])
assert np.array_equal(stepper.steps[5].column, reference.im2col(x_step[None], stepper.win)[0][:, 5])
gcols_step = W_step.reshape(2, -1).T @ gy_step.reshape(2, -1)
assert np.allclose(stepper.gx, reference.col2im(gcols_step[None], (1, 1, 5, 5), stepper.win)[0])
assert stepper.steps[1].earlier.sum() == 3 and stepper.steps[4].earlier.sum() == 5
assert volume["window"].size == (3, 3, 3) and volume["output"].size == (3, 4, 3)
assert np.allclose(winograd_1d, direct_1d) and np.allclose(winograd_2d, direct_2d)
first = timings[0][2]
assert first["loops"] > 2 * first["reference"] and first["loops"] > 2 * first["numpy"], first
print("all claims hold")

# %% [markdown]
# ## Questions
#
# **4.a** Why must col2im *add* the columns into $g_x$ (`+=`) rather than write them (`=`)? For
# which kernel sizes and strides would writing give the right answer all the same?
#
# ### BEGIN ANSWER question 4.a
# A pixel that lies in several windows was copied into several columns, and $x$ reaches the
# loss through every one of them: its gradient is the sum of their shares (the rule of a tensor
# used many times, lesson 1). Writing keeps only the last window's share. It is right only when
# no two windows share a pixel: a stride at least as large as the kernel on both axes, like 2x2
# windows with stride 2 (or a 1x1 convolution).
# ### END ANSWER
#
# **4.b** For a 3x3 convolution with stride 1 and padding 1, how many times more numbers does
# `cols` hold than `x`? And with stride 2? What does that cost, and which convolutions of
# GoogLeNet can skip im2col altogether?
#
# ### BEGIN ANSWER question 4.b
# Stride 1, padding 1 keeps $O_H O_W = HW$, and each column holds $C \cdot 3 \cdot 3$ numbers:
# 9 times $x$ (the 3a example above: 677,376 numbers for 75,264). With stride 2 there are about
# a quarter as many positions, so about $9/4 = 2.25$ times. The cost is memory and the time to
# write and read it again. A 1x1 convolution with stride 1 has $\text{cols} = x$ (one pixel per
# window), so it is a matrix product on $x$ itself: most of GoogLeNet's convolutions are 1x1.
# ### END ANSWER
#
# **4.c** The stepper's product row multiplies one filter with one column. Which single matrix
# product computes every such number of an image at once, and why is it so much faster than the
# six loops, though it does the same multiply-adds?
#
# ### BEGIN ANSWER question 4.c
# $W_2\,\text{cols}$: $(F \times C K_H K_W)$ times $(C K_H K_W \times O_H O_W)$, every filter
# with every column. The loops pay the Python interpreter for each multiply-add; the product is
# one call into a BLAS library, which runs the same multiply-adds in compiled code, several at a
# time (SIMD), on blocks that stay in the cache.
# ### END ANSWER

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(4)
