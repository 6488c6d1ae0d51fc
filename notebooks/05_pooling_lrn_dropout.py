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
# # Lesson 5: Pooling, concat, LRN, dropout, batch norm
#
# **Time:** about 90 minutes: 40 to read, 50 for the five exercises. The code runs in about 4 s at
# full size on 2 CPU cores.
#
# **Assumes:** lessons 1-4 (forward/backward pairs and their caches, the gradient check, the
# softmax cross-entropy of lesson 3, the convolution of lesson 4); NumPy's `argmax`, `pad` and
# sums over several axes (`axis=(0, 2, 3)`, `keepdims=True`).
#
# **What you will learn**
#
# - how GoogLeNet's overlapping 3x3 stride-2 max pools lay their windows, and why they need
#   **ceil mode** (112 -> 56, not 55);
# - where a max pool's gradient goes: to one element per window, the **first** maximum on a
#   tie, and **summed** where overlapping windows share a winner;
# - what average pooling divides by at the border (PyTorch's `count_include_pad` rule);
# - that the backward of a concatenation is a split;
# - what local response normalization (LRN) does: a strong channel **inhibits its neighbours**;
# - dropout while training and at evaluation, and why the kept values are divided by $1-p$;
# - batch normalization, and why its backward has two more terms than a scale and shift;
# - how layers compose into a network whose gradient you check as a whole.
#
# You will write the max-pool backward (5.1), the LRN backward (5.2), dropout (5.3), batch norm
# forward and backward (5.4), and a small network composed from these pairs by hand (5.5).
# The ops are in `minigrad/ops/pool.py`, `lrn.py`, `dropout.py`; the loops that do the work in
# `minigrad/kernels/reference.py`.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
from googlenet import table
from minigrad import functional as F
from minigrad.kernels import reference
from course import check, pick
from minigrad.geometry import conv_output_size, window
from minigrad.ops.pool import avg_pool_divisor

rng = np.random.default_rng(0)


def show_numbers(ax, matrix, title, cmap="Blues"):
    low, high = matrix.min(), matrix.max()
    ax.imshow(matrix, cmap=cmap, vmin=low, vmax=high if high > low else low + 1)
    for (r, c), value in np.ndenumerate(matrix):
        dark = high > low and (value - low) / (high - low) > 0.6
        ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


# %% [markdown]
# ## Overlapping windows and ceil mode
#
# GoogLeNet pools with 3x3 windows in steps of 2: neighbouring windows **overlap** by one row
# (or column). The number of windows along an axis follows one rule for conv and pool
# (`minigrad/geometry.py`):
#
# $$\text{floor mode: } O = \left\lfloor \frac{H + 2P - K}{S} \right\rfloor + 1, \qquad
#   \text{ceil mode: } O = \left\lceil \frac{H + 2P - K}{S} \right\rceil + 1$$
#
# (in ceil mode, minus one if the last window would start in the right padding or beyond). Ceil
# mode adds a last window that runs past the edge when the windows do not fit exactly; it
# covers the pixels that floor mode never looks at. The paper's Table 1 (`googlenet/table.py`)
# says what each max pool must give:

# %%
print("layer   input  floor  ceil  paper")
pool_sizes = {}
for before, row in zip(table.TABLE_1, table.TABLE_1[1:]):
    if row.kind == "maxpool":
        size = before.out_size                         # what the row above hands it
        floor = conv_output_size(size, row.patch, row.stride, 0)
        ceil = conv_output_size(size, row.patch, row.stride, 0, ceil_mode=True)
        pool_sizes[row.name] = (floor, ceil, row.out_size)
        print(f"{row.name:6} {size:6} {floor:6} {ceil:5} {row.out_size:6}")

# %% [markdown]
# On a small input: 3x3 windows, stride 2, on 8x8. Each pixel shows how many windows hold it;
# the outlines are the first row of windows. Floor mode has 3x3 windows and never reads the
# last row and column (0); ceil mode adds a fourth window per axis, which reaches one row
# past the input (dashed: the *overhang*, which holds no values).

# %%
def windows_per_pixel(win):
    counts = np.zeros(win.size, dtype=int)
    for a in range(win.out[0]):
        for b in range(win.out[1]):
            counts[win.input_region(a, b)] += 1
    return counts


coverage = {}
fig, axes = plt.subplots(1, 2, figsize=(7, 3.6))
for ax, ceil_mode in zip(axes, (False, True)):
    win_grid = window((8, 8), kernel=3, stride=2, padding=0, ceil_mode=ceil_mode)
    coverage[ceil_mode] = windows_per_pixel(win_grid)
    show_numbers(ax, coverage[ceil_mode], f"{'ceil' if ceil_mode else 'floor'} mode: "
                 f"{win_grid.out[0]}x{win_grid.out[1]} windows")
    for b in range(win_grid.out[1]):
        overhang = b * 2 + 3 > 8
        inset = 0.42 if b % 2 == 0 else 0.3                    # so that overlapping outlines show
        ax.add_patch(plt.Rectangle((b * 2 - inset, -inset), 2 + 2 * inset, 2 + 2 * inset, fill=False,
                                   linewidth=1.5, edgecolor=plt.cm.tab10(b),
                                   linestyle="--" if overhang else "-"))
    ax.set_xlim(-0.6, 8.6)
fig.suptitle("3x3 windows, stride 2, on 8x8: windows per pixel", fontsize=11)
fig.tight_layout()

# %% [markdown]
# ## Where a max pool's gradient goes
#
# $y = \max$ of the window, so $\partial y / \partial x$ is 1 for the element that is the maximum
# and 0 for the others: each window sends its whole gradient to **one** element. On a tie the
# maximum is not differentiable; minigrad (like PyTorch) picks the **first** maximum in
# row-major order. And a pixel that is the maximum of several overlapping windows receives the
# **sum** of their gradients. Below, with an upstream gradient of ones, each pixel shows how
# many windows it won.

# %%
x_pool = rng.integers(0, 4, (7, 7)).astype(float)
x_pool[2, 2] = 9.0                          # in the overlap of the four top-left windows
x_t = mg.tensor(x_pool[None, None], requires_grad=True)
y_pool = F.max_pool2d(x_t, 3, stride=2)
y_pool.sum().backward()
wins = x_t.grad[0, 0]

fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
show_numbers(axes[0], x_pool, "x (7x7), 3x3 windows, stride 2")
show_numbers(axes[1], y_pool.numpy()[0, 0], "y = max of each window (3x3)")
show_numbers(axes[2], wins, "gradient of y.sum(): windows won", cmap="Oranges")
fig.suptitle("where a max pool's gradient goes", fontsize=11)
fig.tight_layout()

# %% [markdown]
# The 9 wins all four windows that hold it: its gradient is 4. Look at a window with a tie:

# %%
win_pool = window((7, 7), 3, 2, 0)
tie_windows = [(a, b) for a in range(3) for b in range(3)
               if np.sum(x_pool[win_pool.input_region(a, b)] == y_pool.numpy()[0, 0, a, b]) > 1]
a, b = tie_windows[0]
patch = x_pool[win_pool.input_region(a, b)]
first = np.unravel_index(patch.argmax(), patch.shape)
top_left = [span.start for span in win_pool.input_region(a, b)]
print(f"window ({a}, {b}):\n{patch}\nits maximum {patch.max():g} appears {(patch == patch.max()).sum()} "
      f"times; the gradient goes to the first: ({int(first[0])}, {int(first[1])}) in the window, "
      f"pixel ({top_left[0] + first[0]}, {top_left[1] + first[1]}) of x")

# %% [markdown]
# ## Exercise 5.1: max-pool backward
#
# The forward is `max_pool_forward(x, kernel_size, stride, padding, ceil_mode)` from
# `course/lesson5.py`; its cache is `(x, win)`: the input and the `Window`. Write
# `max_pool_backward(gy, cache)` -> `(gx,)`: for each window (i, j), find its first maximum
# (`np.argmax` of the window flattened) for every image and channel, and **add** `gy[:, :, i, j]`
# there. Window (i, j) covers rows `i*SH - PH ... i*SH - PH + KH - 1` and columns alike, clipped to
# the input (padding and the ceil-mode overhang hold no values): `win.input_region(i, j)`
# gives those two slices. The checker uses central differences on random inputs (no ties),
# and inputs full of ties against the reference's choice.
#
# (Stuck after a wrong verdict? `check.hint("5.1")` prints the rule; `check.progress(5)`
# shows where this lesson's exercises stand.)

# %%
from course.lesson5 import max_pool_forward


def max_pool_backward(gy, cache):
    x, win = cache
    gx = np.zeros(x.shape, dtype=gy.dtype)
    ### BEGIN SOLUTION exercise 5.1: max-pool backward
    n, c = x.shape[:2]
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            rows, columns = win.input_region(i, j)
            flat = x[:, :, rows, columns].reshape(n, c, -1)
            one_hot = np.arange(flat.shape[2]) == flat.argmax(axis=2)[:, :, None]    # first maximum
            routed = one_hot * gy[:, :, i, j, None]
            gx[:, :, rows, columns] += routed.reshape(x[:, :, rows, columns].shape)
    return (gx,)
    ### END SOLUTION


verdict_5_1 = check.exercise("5.1", max_pool_backward)

# %% [markdown]
# **Your backward in the engine**, against minigrad's `max_pool2d` on a random input in ceil
# mode (in the student version this cell reports that 5.1 is missing and goes on):

# %%
my_pool = mg.Op("my_max_pool", max_pool_forward, max_pool_backward)
x_e = mg.tensor(rng.standard_normal((2, 3, 9, 9)), requires_grad=True)
upstream = rng.standard_normal((2, 3, 4, 4))
try:
    (my_pool(x_e, kernel_size=3, stride=2, ceil_mode=True) * upstream).sum().backward()
    mine = x_e.grad
    x_e.grad = None
    (F.max_pool2d(x_e, 3, stride=2, ceil_mode=True) * upstream).sum().backward()
    print(f"largest difference from minigrad's max_pool2d: {np.abs(mine - x_e.grad).max():.1e}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Average pooling at the border
#
# An average pool divides each window's sum by a divisor. Inside the input it is $K_H K_W$; at
# the border a window holds padding, and there are two conventions (`minigrad/ops/pool.py`,
# which follows PyTorch exactly). With $h_s = o_h S - P$ the window's first row:
#
# - `count_include_pad=True`: rows $h_s \dots \min(h_s + K, H + P) - 1$: padding counts, but
#   not the rows a ceil-mode window runs past the padded input;
# - `count_include_pad=False`: only the real rows $\max(h_s, 0) \dots \min(h_s + K, H) - 1$;
#
# and the divisor is (row count) x (column count) (`tests/test_pool.py` holds it to PyTorch's
# `avg_pool2d`). Two layouts, both ways:

# %%
layouts = {"3x3, stride 1, padding 1, on 5x5": window((5, 5), 3, 1, 1),
           "3x3, stride 2, padding 1, ceil, on 6x6": window((6, 6), 3, 2, 1, ceil_mode=True)}
divisors = {}
fig, axes = plt.subplots(1, 4, figsize=(12.5, 3.2))
for k, (name, win_avg) in enumerate(layouts.items()):
    for include in (True, False):
        divisors[name, include] = avg_pool_divisor(win_avg, count_include_pad=include)
        show_numbers(axes[2 * k + (not include)], divisors[name, include],
                     f"{name}\ncount_include_pad={include}")
fig.suptitle("average pooling: the divisor of each window", fontsize=11)
fig.tight_layout()

# %% [markdown]
# In the ceil-mode layout the last window starts at real row 5: it holds row 5, one row of
# padding and one row past the padded input, so it counts 2 rows (the real one and the padding)
# or 1 without the padding; the bottom-right window divides by 2 x 2 = 4, or by 1. With
# `count_include_pad=False` the average of an all-ones input is exactly 1 everywhere; with
# `True` it is less than 1 where padding was counted:

# %%
ones = mg.tensor(np.ones((1, 1, 6, 6)))
for include in (True, False):
    mean_of_ones = F.avg_pool2d(ones, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=include)
    print(f"count_include_pad={include}:\n{mean_of_ones.numpy()[0, 0].round(3)}")

# %% [markdown]
# ## Concat: the backward is a split
#
# An Inception module runs four branches on the same input and joins their outputs along the
# channels. $y = [a; b; c]$ only places each input in its own slice of $y$, so each input's
# gradient is its slice of $g_y$: the backward of a concat is a split at the same boundaries.

# %%
parts = [mg.tensor(rng.standard_normal((1, channels, 2, 2)), requires_grad=True) for channels in (2, 3, 1)]
joined = F.concat(parts, axis=1)
g_joined = rng.standard_normal(joined.shape)
(joined * g_joined).sum().backward()
print("joined", joined.shape, "from", [p.shape for p in parts])
for p, piece in zip(parts, np.split(g_joined, [2, 5], axis=1)):
    print(f"input {p.shape}: gradient equals its slice of g: {np.array_equal(p.grad, piece)}")

# %% [markdown]
# ## LRN: a strong channel inhibits its neighbours
#
# Local response normalization (AlexNet, used twice in GoogLeNet's stem) divides each
# activation by a power of the energy of the $n$ channels around it (`minigrad/ops/lrn.py`):
#
# $$s_c = k + \frac{\alpha}{n} \sum_{c' \in \text{window}(c)} x_{c'}^2, \qquad y_c = x_c\, s_c^{-\beta},
#   \qquad \text{window}(c) = c - \lfloor n/2 \rfloor \dots c + \lfloor (n-1)/2 \rfloor .$$
#
# A toy activation: ten channels at one pixel, all 1 but channel 4, which is 8. With $n = 5$,
# $\alpha = 1$ (large, to see it; GoogLeNet's is $10^{-4}$), $\beta = 0.75$, $k = 1$, the
# strong channel shrinks its four neighbours far more than the channels out of its reach,
# like lateral inhibition between neurons.

# %%
toy = np.ones((1, 10, 1, 1))
toy[0, 4] = 8.0
lrn_toy = F.local_response_norm(mg.tensor(toy), size=5, alpha=1.0, beta=0.75, k=1.0).numpy()
gain = (lrn_toy / toy)[0, :, 0, 0]
for c in (0, 2, 3, 4, 7):
    print(f"channel {c}: x = {toy[0, c, 0, 0]:g}, y = {lrn_toy[0, c, 0, 0]:.3f}, y/x = {gain[c]:.3f}")
with_paper = F.local_response_norm(mg.tensor(toy), size=table.LRN_SIZE, alpha=table.LRN_ALPHA,
                                   beta=table.LRN_BETA, k=table.LRN_K).numpy()
print(f"with GoogLeNet's alpha = {table.LRN_ALPHA:g}: the neighbour's y/x is "
      f"{(with_paper / toy)[0, 3, 0, 0]:.6f} (it matters only for large activations)")

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 2.4))
left.bar(range(10), toy[0, :, 0, 0])
left.set_title("x: one strong channel", fontsize=9)
right.bar(range(10), gain, color="tab:orange")
right.set_title("y / x: its neighbours are suppressed", fontsize=9)
for ax in (left, right):
    ax.set_xlabel("channel", fontsize=8)
    ax.set_xticks(range(10))
fig.suptitle("LRN (n = 5, alpha = 1): lateral inhibition", fontsize=11)
fig.tight_layout()

# %% [markdown]
# ## Exercise 5.2: LRN backward
#
# Only $s_c$ depends on the other channels. For $j$ in window($c$):
#
# $$\frac{\partial y_c}{\partial x_j} = [c = j]\, s_c^{-\beta}
#   - \frac{2\alpha\beta}{n}\, x_c\, x_j\, s_c^{-\beta-1},$$
#
# so with the upstream gradient $g$:
#
# $$g^x_j = g_j s_j^{-\beta} - \frac{2\alpha\beta}{n}\, x_j \sum_{c\,:\, j \in \text{window}(c)}
#   g_c\, x_c\, s_c^{-\beta-1} .$$
#
# The channels $c$ whose window holds $j$ are $j - \lfloor (n-1)/2 \rfloor \dots j + \lfloor n/2
# \rfloor$: the window **mirrored** (the same window when $n$ is odd), clipped to the channels.
# The forward is `lrn_forward(x, size, alpha, beta, k)` from `lesson5.py` (the reference kernel);
# its cache is `(x, s, size, alpha, beta)`. Write `lrn_backward(gy, cache)` -> `(gx,)`; channels
# are axis 1. The checker uses central differences with a large $\alpha$ (so a missing term
# shows), an even $n$ and a window wider than the channels.

# %%
def lrn_backward(gy, cache):
    x, s, size, alpha, beta = cache
    channels = x.shape[1]
    ### BEGIN SOLUTION exercise 5.2: LRN backward
    gx = gy * s ** -beta
    pulled = gy * x * s ** (-beta - 1)                        # g_c x_c s_c^(-beta-1)
    for j in range(channels):
        lo, hi = max(j - (size - 1) // 2, 0), min(j + size // 2, channels - 1)
        gx[:, j] -= 2 * alpha * beta / size * x[:, j] * pulled[:, lo:hi + 1].sum(axis=1)
    return (gx,)
    ### END SOLUTION


check.exercise("5.2", lrn_backward)

# %% [markdown]
# ## Dropout: training and evaluation
#
# While training, dropout keeps each value with probability $1 - p$ and zeroes the rest; the
# kept ones are divided by $1 - p$ (*inverted* dropout):
#
# $$y = x \cdot \frac{m}{1 - p}, \quad m_i \sim \text{Bernoulli}(1 - p)
#   \qquad\Rightarrow\qquad \mathbb{E}[y] = x \cdot \frac{1 - p}{1 - p} = x .$$
#
# So at evaluation dropout is simply the identity, and the next layer sees values of the same
# size in both modes. Measured on many values, for GoogLeNet's two rates (the main classifier's
# and the auxiliary classifiers'):

# %%
values = pick(200_000, 20_000)
x_drop = mg.tensor(rng.uniform(0.5, 1.5, values))
measured = {}
print(f"{'p':>4} {'kept':>8} {'mean y / mean x':>16} {'(unscaled)':>11} {'std. error':>11}")
for p in (table.MAIN_DROPOUT, table.AUX_DROPOUT):
    y_drop = F.dropout(x_drop, p, training=True, rng=np.random.default_rng(1)).numpy()
    kept = np.mean(y_drop != 0)
    ratio = y_drop.mean() / x_drop.numpy().mean()
    unscaled = (y_drop * (1 - p)).mean() / x_drop.numpy().mean()
    std_error = y_drop.std() / np.sqrt(values) / x_drop.numpy().mean()
    measured[p] = (kept, ratio, unscaled, std_error)
    print(f"{p:4} {kept:8.4f} {ratio:16.4f} {unscaled:11.4f} {std_error:11.4f}")
y_eval = F.dropout(x_drop, 0.4, training=False).numpy()
print("evaluation mode returns x unchanged:", np.array_equal(y_eval, x_drop.numpy()))

# %% [markdown]
# Without the $1/(1-p)$ the mean while training would be $1 - p$ times the mean at evaluation
# (the "unscaled" column): the next layer would see smaller values in training than in use.
#
# ## Exercise 5.3: dropout forward and backward
#
# Write `dropout_forward(x, p, training, mask)` -> `(y, cache)` and `dropout_backward(gy, cache)`
# -> `(gx,)`. `mask` is given (a boolean array, True = keep) so that the check is
# deterministic. While training, $y = x \cdot m / (1 - p)$ and the backward multiplies by the
# same factor; at evaluation both are the identity. They are checked together against
# `minigrad.ops.dropout`.

# %%
def dropout_forward(x, p, training, mask):
    ### BEGIN SOLUTION exercise 5.3: dropout forward
    if not training:
        return x, None
    scaled_mask = mask / (1.0 - p)
    return x * scaled_mask, scaled_mask
    ### END SOLUTION


def dropout_backward(gy, cache):
    ### BEGIN SOLUTION exercise 5.3: dropout backward
    if cache is None:
        return (gy,)
    return (gy * cache,)
    ### END SOLUTION


check.exercise("5.3", (dropout_forward, dropout_backward))

# %% [markdown]
# ## Batch normalization
#
# GoogLeNet trains without it (lesson 7 shows what that costs), but its successor, BN-Inception
# (Ioffe & Szegedy 2015), added it after every convolution. While training, each channel $c$ is
# normalized by the mean and variance of the $m = N H W$ values it has in the batch, then scaled
# and shifted by two learned numbers (`minigrad/ops/batchnorm.py`):
#
# $$\mu = \frac1m \sum_i x_i, \quad \sigma^2 = \frac1m \sum_i (x_i - \mu)^2, \quad
#   \hat x_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y_i = \gamma \hat x_i + \beta .$$
#
# The variance is the **biased** one (divided by $m$, not $m - 1$): the batch is normalized by its
# own statistics. $\epsilon$ sits **inside** the square root and keeps it away from 0. In the
# backward, $\mu$ and $\sigma$ are not constants: both depend on every $x_j$ of the channel,
# $\partial\mu/\partial x_i = 1/m$ and $\partial\sigma/\partial x_i = \hat x_i / m$. The chain
# rule through all three paths (directly, through $\mu$, through $\sigma$) gives, for an
# upstream gradient $g$ and sums over the channel's $m$ values:
#
# $$g_{x_i} = \frac{\gamma}{m\sigma}\Big(m\, g_i - \sum_j g_j - \hat x_i \sum_j g_j \hat x_j\Big),
#   \qquad g_\gamma = \sum_j g_j \hat x_j, \qquad g_\beta = \sum_j g_j .$$
#
# The middle term is the mean's path, the last the variance's: leave one out and the gradient
# check finds it. A picture first: three channels with very different means and spreads come out
# of batch norm at mean 0 and variance 1 (then $\gamma$ and $\beta$ put them where training wants):

# %%
x_bn = rng.standard_normal((64, 3, 4, 4)) * np.array([0.5, 3.0, 1.0]).reshape(1, 3, 1, 1) \
    + np.array([2.0, -4.0, 0.0]).reshape(1, 3, 1, 1)
y_bn = F.batch_norm(mg.tensor(x_bn), mg.tensor(np.ones(3)), mg.tensor(np.zeros(3)), training=True).numpy()
fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), sharey=True)
for ax, shown, what in zip(axes, (x_bn, y_bn), ("x", "y = batch_norm(x), gamma = 1, beta = 0")):
    for c in range(3):
        ax.hist(shown[:, c].ravel(), bins=30, alpha=0.6, label=f"channel {c}")
    ax.set_title(what, fontsize=9)
axes[0].legend(fontsize=7)
fig.suptitle("batch norm: every channel at mean 0, variance 1 over the batch", fontsize=11)
fig.tight_layout()
print("per channel mean:", y_bn.mean(axis=(0, 2, 3)).round(12), " variance:", y_bn.var(axis=(0, 2, 3)).round(4))

# %% [markdown]
# ## Exercise 5.4: batch norm forward and backward
#
# Write `batchnorm_forward(x, gamma, beta, eps)` -> `(y, cache)` in training mode (no running
# statistics) for x of shape (N, C, H, W) **or** (N, C): the statistics are over every axis but
# the channels' (`axes = (0,) + tuple(range(2, x.ndim))`), and gamma, beta (C,) must be reshaped
# to broadcast. Keep in the cache what the backward needs. Then `batchnorm_backward(gy, cache)`
# -> `(gx, g_gamma, g_beta)`. The checker compares y with `minigrad.ops.batchnorm` on vectors,
# images and a channel of tiny variance with a large eps, and the three gradients with central
# differences.

# %%
def batchnorm_forward(x, gamma, beta, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    ### BEGIN SOLUTION exercise 5.4: batch norm forward
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)          # biased: divided by m
    sigma = np.sqrt(var + eps)
    xhat = (x - mean) / sigma
    y = gamma.reshape(per_channel) * xhat + beta.reshape(per_channel)
    return y, (xhat, gamma.reshape(per_channel), sigma, axes)
    ### END SOLUTION


def batchnorm_backward(gy, cache):
    ### BEGIN SOLUTION exercise 5.4: batch norm backward
    xhat, gamma, sigma, axes = cache
    m = gy.size // gamma.size                                       # values per channel
    g_beta = gy.sum(axis=axes)
    g_gamma = (gy * xhat).sum(axis=axes)
    gx = gamma / (m * sigma) * (m * gy - gy.sum(axis=axes, keepdims=True)
                                - xhat * (gy * xhat).sum(axis=axes, keepdims=True))
    return gx, g_gamma, g_beta
    ### END SOLUTION


check.exercise("5.4", (batchnorm_forward, batchnorm_backward))

# %% [markdown]
# ## Exercise 5.5: your layers, composed into a network and checked as a whole
#
# Every layer so far is a pair: `out, cache = forward(...)`, then `grads = backward(g_out, cache)`.
# A network is those pairs composed by hand, the pattern of CS231n's layer-by-layer networks:
# the forward runs the layers in order and keeps each layer's cache; the backward runs them in
# reverse, each given the gradient of **its** output and **its own** cache. The pairs here:
#
# | layer | forward | backward |
# |---|---|---|
# | convolution | `conv_forward(x, W, b, stride, padding)` (lesson 4) | `conv_backward(g, cache)` -> (gx, gW, gb) (4.3's answer) |
# | ReLU | `relu_forward(x)` | `relu_backward(g, cache)` -> (gx,) |
# | 2x2 max pool, stride 2 | `max_pool_forward(x, 2, 2)` | `pool_backward(g, cache)` -> (gx,): your 5.1 |
# | linear | `linear_forward(x, W, b)` (lesson 3) | `linear_backward(g, cache)` -> (gx, gW, gb) |
#
# Write `tiny_net_loss(x, labels, params)` -> `(loss, grads)` for the network
# conv 3x3 (padding 1) - ReLU - 2x2 max pool - flatten - linear - softmax cross-entropy, with
# `params` = {"W1", "b1" (the convolution), "W2", "b2" (the linear layer)} and `grads` a dict with
# the same keys. Write the loss yourself (lesson 3: the **mean** over the batch of
# $-\log \mathrm{softmax}(\text{scores})[n, \text{label}_n]$, through log-sum-exp; its gradient
# $(\mathrm{softmax} - \text{onehot}) / N$). The checker compares the loss with the package's
# and each of the four gradients with central differences of the **whole network's** loss.

# %%
from course.lesson4 import conv_forward
from course.lesson5_batchnorm_and_network import conv_backward
from minigrad.ops.elementwise import relu_backward, relu_forward
from minigrad.ops.linalg import linear_backward, linear_forward

if verdict_5_1.correct:
    pool_backward = max_pool_backward
else:                                             # so that 5.5 does not wait for 5.1
    pool_backward = lambda g, cache: (reference.max_pool2d_backward(g, cache),)
print("pool_backward is", "your 5.1" if verdict_5_1.correct else "the reference's")


def tiny_net_loss(x, labels, params):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    ### BEGIN SOLUTION exercise 5.5: a small network composed and gradient-checked
    a, conv_cache = conv_forward(x, W1, b1, stride=1, padding=W1.shape[2] // 2)
    h, relu_cache = relu_forward(a)
    pooled, pool_cache = max_pool_forward(h, 2, 2)
    scores, linear_cache = linear_forward(pooled.reshape(len(x), -1), W2, b2)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(x))
    loss = -log_p[rows, labels].mean()
    g_scores = np.exp(log_p)
    g_scores[rows, labels] -= 1
    g_scores /= len(x)
    g_flat, gW2, gb2 = linear_backward(g_scores, linear_cache)
    (g_h,) = pool_backward(g_flat.reshape(pooled.shape), pool_cache)
    (g_a,) = relu_backward(g_h, relu_cache)
    _, gW1, gb1 = conv_backward(g_a, conv_cache)
    return loss, {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}
    ### END SOLUTION


check.exercise("5.5", tiny_net_loss)

# %% [markdown]
# **Your network learns.** Plain gradient descent with your `tiny_net_loss` on scikit-learn's
# 8x8 digits (lesson 3's data): 4 filters of 3x3, pooled to 4x4, then a linear layer to the 10
# classes. Nothing but the pairs above, composed by you (in the student version this cell waits
# for 5.5).

# %%
from minigrad import data

digits = data.load_digits(size=8)
train, held_out = digits.split(held_out=0.2, seed=0)
mean, std = train.channel_stats()
loader = data.DataLoader(train, batch_size=64, shuffle=True, seed=0, mean=mean, std=std)
held_x, held_y = next(iter(data.DataLoader(held_out, batch_size=len(held_out), mean=mean, std=std)))
init = np.random.default_rng(5)
params = {"W1": init.normal(0, 1 / 3, (4, 1, 3, 3)), "b1": np.zeros(4),
          "W2": init.normal(0, 1 / 8, (10, 64)), "b2": np.zeros(10)}


def held_out_accuracy(params):
    a, _ = conv_forward(held_x.astype(np.float64), params["W1"], params["b1"], stride=1, padding=1)
    pooled, _ = max_pool_forward(np.maximum(a, 0), 2, 2)
    scores = pooled.reshape(len(held_x), -1) @ params["W2"].T + params["b2"]
    return float(np.mean(scores.argmax(axis=1) == held_y))


accuracy_before = held_out_accuracy(params)
losses = []
try:
    for epoch in range(pick(4, 1)):
        for x_batch, y_batch in loader:
            loss, grads = tiny_net_loss(x_batch.astype(np.float64), y_batch, params)
            for name in params:
                params[name] -= 0.2 * grads[name]
            losses.append(loss)
    accuracy_after = held_out_accuracy(params)
    print(f"{len(losses)} steps: training loss {losses[0]:.3f} -> {np.mean(losses[-10:]):.3f}, held-out "
          f"accuracy {accuracy_before:.1%} -> {accuracy_after:.1%}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson, asserted: ceil mode gives Table 1's sizes and reads every pixel,
# floor mode does not; a max pool's gradient goes to one element per window, the first on a
# tie, summed at a shared winner; the border divisors; concat's backward; LRN's inhibition
# (and its formula); dropout keeps the expected value while training and is the identity at
# evaluation; batch norm puts every channel at mean 0 and variance 1; the network composed in 5.5
# learns the digits.

# %%
assert conv_output_size(112, 3, 2, 0, ceil_mode=True) == 56 and conv_output_size(112, 3, 2, 0) == 55
assert all(ceil == paper != floor for floor, ceil, paper in pool_sizes.values())
assert coverage[False][7].sum() == 0 and coverage[False][:, 7].sum() == 0 and coverage[True].min() >= 1
assert wins[2, 2] == 4 and wins.sum() == 9                 # 9 windows, one winner each
tied = win_pool.input_region(a, b)
assert wins[tied][first] >= 1 and (patch == patch.max()).sum() > 1
assert np.array_equal(divisors["3x3, stride 1, padding 1, on 5x5", True], np.full((5, 5), 9))
assert divisors["3x3, stride 1, padding 1, on 5x5", False][0, 0] == 4
assert divisors["3x3, stride 2, padding 1, ceil, on 6x6", True][-1, -1] == 4      # 2 rows x 2 columns
assert np.allclose(F.avg_pool2d(ones, 3, stride=2, padding=1, ceil_mode=True,
                                count_include_pad=False).numpy(), 1.0)
assert all(np.array_equal(p.grad, piece) for p, piece in zip(parts, np.split(g_joined, [2, 5], axis=1)))
s_toy = 1.0 + 1.0 / 5 * np.array([np.sum(toy[0, max(c - 2, 0):c + 3] ** 2) for c in range(10)])
assert np.allclose(lrn_toy[0, :, 0, 0], toy[0, :, 0, 0] * s_toy ** -0.75)
assert max(gain[[2, 3, 5, 6]]) < 0.5 * min(gain[[0, 8, 9]])
for p, (kept, ratio, unscaled, std_error) in measured.items():         # within 5 standard errors
    assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / values)
    assert abs(ratio - 1) < 5 * std_error and abs(unscaled - (1 - p)) < 5 * (1 - p) * std_error
assert np.array_equal(y_eval, x_drop.numpy())
assert np.allclose(y_bn.mean(axis=(0, 2, 3)), 0) and np.allclose(y_bn.var(axis=(0, 2, 3)), 1, atol=1e-4)
if losses:                                          # the network composed in 5.5 learned
    assert np.mean(losses[-10:]) < 0.7 * losses[0] and accuracy_after > accuracy_before + 0.3
print("all claims hold")

# %% [markdown]
# ## Questions
#
# **5.a** GoogLeNet's 3x3 stride-2 max pools turn 112 into 56. What would floor mode give, and
# which pixels would it never read?
#
# ### BEGIN ANSWER question 5.a
# Floor mode gives $\lfloor (112 - 3)/2 \rfloor + 1 = 55$: windows start at rows 0, 2, ..., 108
# and the last one covers rows 108-110, so row 111 (and column 111) is never read. Ceil mode adds
# a 56th window starting at row 110, which covers rows 110-111 and runs one row past the edge.
# The paper's sizes (112, 56, 28, 14, 7) need ceil mode, as the Caffe model used.
# ### END ANSWER
#
# **5.b** In training mode, batch norm's output for one example depends on the other examples
# of the batch. Where does that show in the backward, and why does evaluation mode use running
# averages instead?
#
# ### BEGIN ANSWER question 5.b
# In the two sums of $g_x$: $\mu$ and $\sigma$ are computed from the whole batch, so the gradient
# of every $x_i$ collects $\sum_j g_j$ (the mean's path) and $\hat x_i \sum_j g_j \hat x_j$ (the
# variance's path) over all the examples. At evaluation an example's prediction must not depend
# on which other images share its batch (nor work for a batch of one), so $\mu$ and $\sigma$
# become constants (the running averages): $y$ is an affine map per channel and
# $g_x = \gamma g / \sigma$.
# ### END ANSWER
#
# **5.c** Exercise 5.5 checked the whole network's gradient at once. Why check each layer on its
# own as well, and why does the checker look at W2 before W1?
#
# ### BEGIN ANSWER question 5.c
# A whole-network check says *that* a gradient is wrong, not *where*: any layer below the
# parameter could be at fault. Checking each pair on its own (5.1-5.4, 4.3, 3.1) pins a mistake to
# one function. W2 is checked first because its gradient goes through the loss and the linear
# layer only: if W2 is right and W1 is wrong, the mistake is below the linear layer. (A central
# difference per parameter also costs two forward passes each: fine for 200 parameters, not for
# GoogLeNet's millions, where lesson 7 checks along random directions.)
# ### END ANSWER

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(5)
