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
# # Lesson 2: Gradient checking
#
# **What you will learn**
#
# - why a gradient is checked with *central* differences, $\frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon}$,
#   and not forward ones: their error falls like $\varepsilon^2$ instead of $\varepsilon$ (measured below);
# - why $\varepsilon$ can be too small as well as too large (truncation against rounding), and
#   why a check needs float64;
# - how to measure the disagreement: the relative error $\max|a-n| / \max(|a|+|n|)$, and why not
#   the absolute one;
# - why the check multiplies the output by a *random* upstream gradient, not by ones;
# - how to read `minigrad.gradcheck`'s report and use it to find a bug: you will fix three
#   planted ones;
# - how a whole model is checked with two evaluations: the directional check.
#
# In lesson 1 a checker told you whether your backward was right. This lesson is about how
# such a checker works, and how you use one on your own code.
#
# **Time:** About 60 minutes: reading and the four exercises. Running every cell at full size
# takes about 10 s (measured in a notebook on a busy 2-core CPU).
#
# **Assumes:** Lesson 1 (a backward returns the gradient of $\sum_i y_i g_i$ for the
# upstream gradient $g$, one gradient per input); NumPy; Taylor's formula to second order, and
# what a float is (a number with about 16 significant digits in float64, 7 in float32).

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
import minigrad.gradcheck
from minigrad import nn
from minigrad.gradcheck import GradcheckError, directional_check, gradcheck, relative_error
from course import check, lesson2, pick

# %% [markdown]
# ## Derivatives from values of the function
#
# A derivative is a limit, $f'(x) = \lim_{\varepsilon \to 0} \frac{f(x+\varepsilon) - f(x)}{\varepsilon}$;
# with a small $\varepsilon$ instead of the limit we get an estimate. How good is it? Taylor's
# formula says
#
# $$f(x \pm \varepsilon) = f(x) \pm \varepsilon f'(x) + \tfrac{\varepsilon^2}{2} f''(x)
#   \pm \tfrac{\varepsilon^3}{6} f'''(x) + \dots$$
#
# so the **forward difference** is off by a term proportional to $\varepsilon$, while in the
# **central difference** the even terms cancel and the error is proportional to $\varepsilon^2$:
#
# $$\frac{f(x+\varepsilon) - f(x)}{\varepsilon} = f'(x) + \tfrac{\varepsilon}{2} f''(x) + \dots
# \qquad
# \frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon} = f'(x) + \tfrac{\varepsilon^2}{6} f'''(x) + \dots$$
#
# We try both on $f = \exp$ at $x = 1$, where every derivative is $e$: the relative errors
# should be about $\varepsilon/2$ and $\varepsilon^2/6$.

# %%
def forward_difference(f, x, eps):
    return (f(x + eps) - f(x)) / eps


def central_difference(f, x, eps):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


exact = np.exp(1.0)
first_errors = {}
print(f"{'eps':>6} {'forward error':>14} {'eps/2':>9} {'central error':>14} {'eps**2/6':>9}")
for eps in (1e-1, 1e-2, 1e-3):
    first_errors[eps] = (abs(forward_difference(np.exp, 1.0, eps) - exact) / exact,
                         abs(central_difference(np.exp, 1.0, eps) - exact) / exact)
    print(f"{eps:>6.0e} {first_errors[eps][0]:>14.3e} {eps / 2:>9.1e} {first_errors[eps][1]:>14.3e} "
          f"{eps ** 2 / 6:>9.1e}")
forward_gain = first_errors[1e-2][0] / first_errors[1e-3][0]
central_gain = first_errors[1e-2][1] / first_errors[1e-3][1]
print(f"a 10x smaller eps divides the forward error by {forward_gain:.1f}, the central error by {central_gain:.1f}")

# %% [markdown]
# Forward differences can share $f(x)$ among all the elements ($n + 1$ evaluations of $f$ for
# $n$ elements, against $2n$), but at every $\varepsilon$ the central difference is far more
# accurate: gradient checkers pay the factor of two.
#
# ## How small should $\varepsilon$ be? Truncation against rounding
#
# Smaller is not always better. Each value of $f$ is rounded to the nearest float: its relative
# error is about $u \approx 1.1 \times 10^{-16}$ in float64. The difference of two nearly equal
# values keeps that absolute error, $u|f|$, and dividing by $2\varepsilon$ blows it up:
#
# $$\text{error} \approx \underbrace{\tfrac{\varepsilon^2}{6}|f'''|}_{\text{truncation}}
#   + \underbrace{\tfrac{u|f|}{\varepsilon}}_{\text{rounding}}$$
#
# On a log-log plot the truncation error is a line of slope 2 (1 for forward differences) and
# the rounding error a line of slope $-1$. We measure both over $\varepsilon$ from $10^{-14}$ to
# $10^{-1}$, taking the median error over a few hundred random points $x \in [0.5, 1.5]$ so the
# rounding noise averages out.

# %%
def sweep(dtype, eps_values, points=256, seed=0):
    """Median relative error of forward and central differences of exp, computed in dtype."""
    x = np.random.default_rng(seed).uniform(0.5, 1.5, points).astype(dtype)
    truth = np.exp(x.astype(np.float64))
    errors = {"forward": [], "central": []}
    for eps in eps_values:
        step = dtype(eps)
        for name, estimate in (("forward", forward_difference(np.exp, x, step)),
                               ("central", central_difference(np.exp, x, step))):
            errors[name].append(np.median(np.abs(estimate.astype(np.float64) - truth) / truth))
    return {name: np.array(values) for name, values in errors.items()}


def slope(eps_values, errors, low, high):
    """The slope of log10(error) against log10(eps) for eps in [low, high]."""
    keep = (eps_values >= low) & (eps_values <= high)
    return np.polyfit(np.log10(eps_values[keep]), np.log10(errors[keep]), 1)[0]


eps_values = np.logspace(-14, -1, pick(66, 40))
errors64 = sweep(np.float64, eps_values, points=pick(256, 64))
slopes = {name: (slope(eps_values, errors64[name], 1e-4, 1e-1), slope(eps_values, errors64[name], 1e-13, 1e-10))
          for name in errors64}
best = {name: (eps_values[np.argmin(e)], e.min()) for name, e in errors64.items()}
unit_roundoff = np.finfo(np.float64).eps / 2
predicted_best = (3 * unit_roundoff) ** (1 / 3)          # where eps**2/6 * e and u * e / eps balance: d/d eps = 0
for name in errors64:
    print(f"{name}: slope {slopes[name][0]:+.2f} (truncation), {slopes[name][1]:+.2f} (rounding); "
          f"smallest error {best[name][1]:.1e} at eps = {best[name][0]:.0e}")
print(f"central differences: the error is smallest near (3u)**(1/3) = {predicted_best:.0e}")

fig, ax = plt.subplots(figsize=(6, 3.8))
for name, style in (("forward", "C0"), ("central", "C1")):
    ax.loglog(eps_values, errors64[name], style, label=f"{name}, float64")
ax.axvline(1e-6, color="gray", linestyle=":", label="eps of minigrad.gradcheck")
ax.set_xlabel("eps")
ax.set_ylabel("relative error")
ax.set_title("Finite differences of exp at x in [0.5, 1.5]: median relative error")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)

# %% [markdown]
# Right of the valley the error is truncation and follows the Taylor prediction; left of it,
# rounding, which grows as $\varepsilon$ shrinks. The central difference's valley is both
# deeper and further right (balancing the two terms gives $\varepsilon \approx (3u)^{1/3}$ for
# $\exp$). `minigrad.gradcheck` uses $\varepsilon = 10^{-6}$: near the bottom, with an error
# around $10^{-10}$, safe for functions whose derivatives are larger or smaller than $\exp$'s.
#
# ## Why float64
#
# Now the same measurement in float32, where $u \approx 6 \times 10^{-8}$.

# %%
errors32 = sweep(np.float32, eps_values, points=pick(256, 64))
best32 = (eps_values[np.argmin(errors32["central"])], errors32["central"].min())
at_gradcheck_eps = {dtype: float(np.interp(-6, np.log10(eps_values), errors[name]))
                    for dtype, errors, name in (("float64", errors64, "central"), ("float32", errors32, "central"))}
print(f"float32, central: smallest error {best32[1]:.1e} at eps = {best32[0]:.0e}")
print(f"at eps = 1e-6 the central error is {at_gradcheck_eps['float64']:.1e} in float64 and "
      f"{at_gradcheck_eps['float32']:.1e} in float32")
print("in float32, 1 + 1e-8 == 1:", np.float32(1) + np.float32(1e-8) == np.float32(1))

for name, style in (("forward", "C0--"), ("central", "C1--")):
    ax.loglog(eps_values, errors32[name], style, label=f"{name}, float32")
ax.legend(fontsize=8)
fig

# %% [markdown]
# In float32 the best a central difference can do is an error of about $10^{-5}$, at an
# $\varepsilon$ of a few thousandths where the truncation is already large; at the usual
# $\varepsilon = 10^{-6}$ the error is a few percent. Below about $6 \times 10^{-8}$ the step
# vanishes altogether ($x + \varepsilon$ rounds back to $x$) and the estimate is exactly 0: the
# flat line at an error of 1. A check in float32 would call a *correct* backward wrong.
#
# Here is that on `tanh`, whose backward in minigrad is right: the numerical gradient in
# float32 against the exact $1 - \tanh^2 x$.

# %%
x32 = np.random.default_rng(1).standard_normal(5).astype(np.float32)
noisy = minigrad.gradcheck.numerical_gradient(lambda: float(np.tanh(x32).sum()), x32)
float32_tanh_error = relative_error(1 - np.tanh(x32.astype(np.float64)) ** 2, noisy)[0]
print(f"tanh in float32, eps 1e-6: relative error {float32_tanh_error:.1e}")

# %% [markdown]
# That is why `minigrad.gradcheck` refuses float32 inputs, and says why:

# %%
try:
    gradcheck(F.tanh, x32)
except TypeError as refusal:
    float32_refusal = str(refusal)
    print(float32_refusal)

# %%
print(gradcheck(F.tanh, x32.astype(np.float64)))

# %% [markdown]
# ## Measuring the disagreement: the relative error
#
# The analytic gradient $a$ (from the backward) and the numerical one $n$ are arrays. The
# checker's one number for them is
#
# $$e = \frac{\max_i |a_i - n_i|}{\max_i \left(|a_i| + |n_i|\right)}$$
#
# It is 0 when they agree, about 1 when they are unrelated or of opposite signs, and does not
# change when the function is scaled. Why not simpler measures? Three cases:
#
# 1. **a correct gradient that is large**: $f = 10^4 \sum e^{x}$ at $x = (3, 4, 5)$. The
#    gradient is about $10^6$ and the rounding of $f$ alone makes the numerical one off by a
#    few $10^{-4}$ in absolute terms;
# 2. **a wrong gradient that is tiny**: $f = 10^{-9}\sum x^2$ with a backward of the wrong sign.
#    The absolute difference is $10^{-8}$;
# 3. **a correct gradient with an element that is zero**: $f = \sum \sin x$ at
#    $x = (0.3, \pi/2, 1)$, where $\cos(\pi/2)$ is $6 \times 10^{-17}$ analytically and exactly 0
#    numerically. Dividing element by element, that element's error is 100%.

# %%
cases = {
    "1. large and right": (lambda x: float(1e4 * np.sum(np.exp(x))), lambda x: 1e4 * np.exp(x), [3.0, 4.0, 5.0]),
    "2. tiny and wrong": (lambda x: float(1e-9 * np.sum(x ** 2)), lambda x: -2e-9 * x, [0.5, -1.0, 2.0]),
    "3. a zero, right": (lambda x: float(np.sum(np.sin(x))), np.cos, [0.3, np.pi / 2, 1.0]),
}
measures = {}
print(f"{'case':<20} {'absolute':>10} {'per element':>12} {'relative':>10}   (a check passes below 1e-6)")
for name, (f, gradient, point) in cases.items():
    x = np.array(point)
    a = gradient(x)
    n = minigrad.gradcheck.numerical_gradient(lambda: f(x), x)
    measures[name] = (np.abs(a - n).max(),
                      (np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), 1e-300)).max(),
                      relative_error(a, n)[0])
    print(f"{name:<20} " + " ".join(f"{m:>10.1e}  " for m in measures[name]))

# %% [markdown]
# The absolute error fails the right gradient of case 1 and passes the wrong one of case 2; the
# element-by-element relative error fails case 3, where nothing is wrong. Dividing the largest
# difference by the largest magnitude gets all three right.
#
# ## Exercise 2.1: the numerical gradient
#
# Write `numerical_gradient(f, x, eps)`: `f` takes an array and returns a float; return the
# array of $\partial f / \partial x_i$ by central differences, one element at a time, for an `x`
# of any shape (`np.ndindex(x.shape)` gives every index). Either work on a copy of `x`, or
# move `x[i]` and put the **original value** back: the caller's `x` must be unchanged afterwards.
#
# The checker runs it with `eps = 1e-4` on four functions and compares it with their exact
# gradients. Central differences are then accurate to about $10^{-9}$; forward ones only to
# about $10^{-5}$, and the checker tells them apart.
#
# (Stuck after a wrong verdict? `check.hint("2.1")` prints the rule; `check.progress(2)`
# shows where this lesson's exercises stand.)

# %%
def numerical_gradient(f, x, eps=1e-6):
    ### BEGIN SOLUTION exercise 2.1: numerical gradient
    gradient = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = f(x)
        x[index] = original - eps
        minus = f(x)
        x[index] = original
        gradient[index] = (plus - minus) / (2 * eps)
    return gradient
    ### END SOLUTION


check.exercise("2.1", numerical_gradient)

# %% [markdown]
# Your function against the package's `minigrad.gradcheck.numerical_gradient` on a small layer.
# (The package's takes a function *without* arguments and moves the elements of `x` in place,
# so that the same function serves a model whose parameters are the arrays being moved.)

# %%
W = np.random.default_rng(2).standard_normal((3, 4))
v = np.array([0.5, -1.0, 2.0, 0.25])
package_gradient = minigrad.gradcheck.numerical_gradient(lambda: float(np.sum(np.tanh(W @ v))), W)
try:
    yours = numerical_gradient(lambda W_: float(np.sum(np.tanh(W_ @ v))), W)
    print(f"relative error between yours and the package's: {relative_error(yours, package_gradient)[0]:.1e}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Why the upstream gradient is random
#
# A backward does not return $\partial y / \partial x$ for an array output $y$; it returns the
# gradient of a scalar: given the upstream gradient $g$, the gradient of $L = \sum_i y_i g_i$.
# So a checker has to choose $g$. With $g = 1$ (every element one), $L$ is just the sum of the
# outputs, and a backward that hands the gradient of one output to the wrong place can still
# produce the right numbers.
#
# A real example: an Inception module (`nn.Concat`) joins the outputs of its branches along the
# channel axis, and concat's backward cuts the upstream gradient back into one piece per
# branch. Here is a backward that returns the pieces in the wrong order:

# %%
print(inspect.getsource(lesson2.concat_backward_swapped))

# %% [markdown]
# When two branches have the same shape, nothing crashes: each branch just learns from the
# other's error signal. We check this backward with $g = 1$ and with a random $g$:

# %%
from minigrad.ops.shape import concat_backward, concat_forward


def check_with_upstream(forward, backward, inputs, gy):
    """The largest relative error over the inputs, for the upstream gradient gy."""
    _, cache = forward(*inputs)
    analytic = backward(gy, cache)
    loss = lambda: float(np.sum(forward(*inputs)[0] * gy))
    return max(relative_error(g, minigrad.gradcheck.numerical_gradient(loss, x))[0]
               for x, g in zip(inputs, analytic))


rng = np.random.default_rng(3)
branch_a, branch_b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
upstreams = {"ones": np.ones((4, 3)), "random": rng.standard_normal((4, 3))}
swap_errors = {}
for backward in (concat_backward, lesson2.concat_backward_swapped):
    for upstream, gy in upstreams.items():
        swap_errors[backward.__name__, upstream] = check_with_upstream(concat_forward, backward,
                                                                       [branch_a, branch_b], gy)
        print(f"{backward.__name__:<24} upstream {upstream:<7} relative error "
              f"{swap_errors[backward.__name__, upstream]:.1e}")

# %% [markdown]
# With ones the swapped backward looks perfect; a random upstream gradient exposes it. That is
# why `minigrad.gradcheck` (and the lesson checkers) always draw $g$ at random:

# %%
print(gradcheck((concat_forward, lesson2.concat_backward_swapped), branch_a, branch_b,
                names=["branch a", "branch b"], raise_on_failure=False))

# %% [markdown]
# The report has one row per input: its shape, how many elements were checked, the relative
# error, and at the worst element (`worst index`) the analytic and numerical values. Here the
# two have nothing to do with each other: the backward sent the wrong numbers.
#
# ## Find the bug
#
# Below are three small ops from `course/lesson2.py`, each a `forward` and a backward
# with a planted bug. For each: read the code, run `gradcheck` on the pair, use its report to
# find the bug, and write the fixed backward. A pair of plain-array functions is checked with
# `gradcheck((forward, backward), *inputs)`.
#
# ### 2.2: squared error
#
# `y = (pred - target) ** 2` elementwise; the cache is the difference `pred - target`.

# %%
print(inspect.getsource(lesson2.squared_error_forward))
print(inspect.getsource(lesson2.squared_error_backward_buggy))

# %%
rng = np.random.default_rng(4)
pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
squared_error_report = gradcheck((lesson2.squared_error_forward, lesson2.squared_error_backward_buggy),
                                 pred, target, names=["pred", "target"], raise_on_failure=False)
print(squared_error_report)

# %% [markdown]
# `pred` passes and `target` fails, so the bug is in the second gradient; at the worst element
# the analytic value is the numerical one with the sign flipped.
#
# **Exercise 2.2.** Write the fixed backward.

# %%
def squared_error_backward(gy, difference):
    ### BEGIN SOLUTION exercise 2.2: squared error backward
    return 2 * gy * difference, -2 * gy * difference
    ### END SOLUTION


check.exercise("2.2", squared_error_backward)

# %% [markdown]
# ### 2.3: scale and shift
#
# `y = x * gamma + beta`, one scale and one shift per channel (the last step of batch
# normalization): `x` is `(N, C)` or `(N, T, C)`, `gamma` and `beta` are `(C,)` and NumPy
# broadcasts them over every leading axis. The cache is `(x, gamma)`.

# %%
print(inspect.getsource(lesson2.scale_shift_forward))
print(inspect.getsource(lesson2.scale_shift_backward_buggy))

# %%
x_batch = rng.standard_normal((4, 3))
gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
try:
    gradcheck((lesson2.scale_shift_forward, lesson2.scale_shift_backward_buggy), x_batch, gamma, beta,
              names=["x", "gamma", "beta"])
except GradcheckError as failure:
    scale_shift_failure = str(failure)
    print(scale_shift_failure)

# %% [markdown]
# This time `gradcheck` does not even compare numbers: a gradient must have its input's shape.
# `gamma` was stretched over the batch, so its gradient is a sum over the batch (lesson 1's
# broadcasting rule).
#
# **Exercise 2.3.** Write the fixed backward. It is checked with `x` of shape `(4, 3)` and
# `(2, 5, 3)`: sum over *every* axis but the last.

# %%
def scale_shift_backward(gy, cache):
    x, gamma = cache
    ### BEGIN SOLUTION exercise 2.3: scale and shift backward
    leading_axes = tuple(range(x.ndim - 1))
    return gy * gamma, (gy * x).sum(axis=leading_axes), gy.sum(axis=leading_axes)
    ### END SOLUTION


check.exercise("2.3", scale_shift_backward)

# %% [markdown]
# ### 2.4: midpoints
#
# `y[..., i] = (x[..., i] + x[..., i + 1]) / 2`: the average of each pair of neighbours along
# the last axis, one element shorter than `x`. The cache is `x.shape`.

# %%
print(inspect.getsource(lesson2.midpoints_forward))
print(inspect.getsource(lesson2.midpoints_backward_buggy))

# %%
x_row = rng.standard_normal(6)
midpoints_report = gradcheck((lesson2.midpoints_forward, lesson2.midpoints_backward_buggy), x_row,
                             names=["x"], raise_on_failure=False)
print(midpoints_report)

# %% [markdown]
# Wrong, but the report's one element does not say how. A good next step: make the upstream
# gradient **one-hot**, $g = e_j$. Then the backward returns $\partial y_j / \partial x$, one row
# of the Jacobian: which inputs output $j$ depends on, and how much. The numerical side is the
# same row by central differences of $y_j$.

# %%
j = 2
one_hot = np.zeros(5)
one_hot[j] = 1.0
_, shape = lesson2.midpoints_forward(x_row)
analytic_row = lesson2.midpoints_backward_buggy(one_hot, shape)[0]
numerical_row = minigrad.gradcheck.numerical_gradient(lambda: float(lesson2.midpoints_forward(x_row)[0][j]), x_row)
print(f"d y[{j}] / dx, analytic :", np.round(analytic_row, 6))
print(f"d y[{j}] / dx, numerical:", np.round(numerical_row, 6))

# %% [markdown]
# Output 2 depends on `x[2]` and `x[3]`, half each; the backward sends everything to `x[2]`.
#
# **Exercise 2.4.** Write the fixed backward (for `x` of any number of axes; a loop is fine,
# and so are two slices).

# %%
def midpoints_backward(gy, x_shape):
    ### BEGIN SOLUTION exercise 2.4: midpoints backward
    g_x = np.zeros(x_shape)
    g_x[..., :-1] += gy / 2
    g_x[..., 1:] += gy / 2
    return (g_x,)
    ### END SOLUTION


check.exercise("2.4", midpoints_backward)

# %% [markdown]
# Your three fixed backwards through `gradcheck`:

# %%
fixed = [("squared error", lesson2.squared_error_forward, squared_error_backward, (pred, target)),
         ("scale and shift", lesson2.scale_shift_forward, scale_shift_backward, (x_batch, gamma, beta)),
         ("midpoints", lesson2.midpoints_forward, midpoints_backward, (x_row,))]
for name, forward, backward, arrays in fixed:
    try:
        report = gradcheck((forward, backward), *arrays, raise_on_failure=False)
        print(f"{name}: largest relative error {report.max_rel_error:.1e}, {'PASSED' if report.passed else 'FAILED'}")
    except GradcheckError as failure:
        print(f"{name}: {failure}")
    except NotImplementedError as missing:
        print(f"{name}: not implemented yet: {missing}")

# %% [markdown]
# ## Checking a whole model: the directional derivative
#
# `gradcheck` moves one element at a time: two evaluations per number, so $2P$ forward passes
# for a model with $P$ parameters (millions for GoogLeNet). The **directional check** tests all
# of them at once. Pick a random unit direction $v$ through all the parameters (and the
# input); then
#
# $$\frac{d}{dt} L(p + t v)\Big|_{t=0} = \sum_k \frac{\partial L}{\partial p_k} v_k
#   \approx \frac{L(p + \varepsilon v) - L(p - \varepsilon v)}{2\varepsilon}$$
#
# The left side comes from one backward pass, the right from two forward passes. A wrong
# gradient anywhere changes the left side, unless its error happens to be orthogonal to $v$,
# which a random $v$ almost never is. We try it on a small classifier in float64.

# %%
rng = np.random.default_rng(5)
batch, features, hidden, classes = 8, 16, pick(32, 12), 10
inputs = mg.tensor(rng.standard_normal((batch, features)), dtype="float64", requires_grad=True)
labels = rng.integers(0, classes, batch)
model = nn.Sequential(nn.Linear(features, hidden, rng=rng), nn.ReLU(),
                      nn.Linear(hidden, classes, rng=rng)).astype("float64")
loss_of_model = lambda: F.cross_entropy(model(inputs), labels)
tensors = [*model.parameters(), inputs]

start = time.perf_counter()
directional = directional_check(loss_of_model, tensors, raise_on_failure=False)
directional_seconds = time.perf_counter() - start
print(directional)

# %% [markdown]
# The same model checked element by element, for comparison:

# %%
def classifier_loss(x, W1, b1, W2, b2):
    return F.cross_entropy(F.linear(F.relu(F.linear(x, W1, b1)), W2, b2), labels)


start = time.perf_counter()
full = gradcheck(classifier_loss, *[t.numpy() for t in [inputs, *model.parameters()]],
                 names=["input", "W1", "b1", "W2", "b2"], raise_on_failure=False)
full_seconds = time.perf_counter() - start
elements = sum(row.checked for row in full.inputs)
print(full)
print(f"element by element: {2 * elements} forward passes, {full_seconds:.2f} s; "
      f"directional: 2 forward passes and one backward, {directional_seconds * 1e3:.1f} ms")

# %% [markdown]
# Now a model with a bug inside: a midpoints layer between the two linear layers, once built
# from engine ops (slices, an add and a division, whose backwards are right) and once as an op
# with the buggy backward of exercise 2.4 (and with yours).

# %%
class Midpoints(nn.Module):
    """(N, F) -> (N, F - 1), the average of neighbouring features; ``backward`` None means
    the engine's own ops, else an Op made of the lesson's forward and that backward."""

    def __init__(self, backward=None):
        super().__init__()
        self.op = None if backward is None else mg.Op("midpoints", lesson2.midpoints_forward, backward)

    def forward(self, x):
        if self.op is None:
            return (x[:, :-1] + x[:, 1:]) / 2
        return self.op(x)


def model_with_midpoints(backward):
    rng = np.random.default_rng(6)
    return nn.Sequential(nn.Linear(features, hidden, rng=rng), nn.ReLU(), Midpoints(backward),
                         nn.Linear(hidden - 1, classes, rng=rng)).astype("float64")


midpoint_checks = {}
for name, backward in (("engine ops", None), ("buggy backward", lesson2.midpoints_backward_buggy),
                       ("your backward", midpoints_backward)):
    candidate = model_with_midpoints(backward)
    try:
        midpoint_checks[name] = directional_check(lambda: F.cross_entropy(candidate(inputs), labels),
                                                  [*candidate.parameters(), inputs], raise_on_failure=False)
        print(f"{name:<15} {midpoint_checks[name]}")
    except NotImplementedError as missing:
        print(f"{name:<15} not implemented yet: {missing}")

# %% [markdown]
# The directional check says *that* something is wrong, not where; the per-op `gradcheck`
# reports above say where. The usual routine: a directional check of the whole model first
# (cheap), and when it fails, `gradcheck` on each op or layer until one fails.
# `python -m googlenet gradcheck` does both for the whole GoogLeNet.

# %% [markdown]
# ## Questions

# %% [markdown]
# **Question 2.a.** A gradient check of your op reports a relative error of $10^{-4}$ in
# float64 with $\varepsilon = 10^{-6}$. Is the backward wrong? What would you try before
# deciding?
#
# ### BEGIN ANSWER question 2.a
# Probably, since a right backward of a smooth op lands near $10^{-9}$ or below, but not surely.
# Check the check first: a kink within $\varepsilon$ of the point (ReLU at 0, a pooling window
# with two nearly equal values, an absolute value) breaks the Taylor argument, so move the point
# away from kinks and ties and check again; try a few $\varepsilon$ (the truncation error falls
# like $\varepsilon^2$, the rounding error grows as $\varepsilon$ shrinks, a wrong backward's
# error does neither); then look at the worst element and at whether the error has a pattern
# (a sign, a factor of 2, a shifted index, one input only), as with the three bugs above.
# ### END ANSWER

# %% [markdown]
# **Question 2.b.** Why does a gradient check multiply the output by a random upstream
# gradient, and why is one such gradient enough?
#
# ### BEGIN ANSWER question 2.b
# A backward computes $g^\top J$, the gradient of $\sum_i g_i y_i$, so the check compares
# $g^\top J_{\text{backward}}$ with $g^\top J_{\text{true}}$, every input element at once. With
# $g = 1$ it only compares the column sums of the Jacobians: an error that keeps them (gradients
# handed to the wrong input of the same shape, as the swapped concat did) is invisible. With a
# random $g$, $g^\top (J_{\text{backward}} - J_{\text{true}})$ is zero by accident with
# probability zero unless the difference itself is zero.
# ### END ANSWER

# %% [markdown]
# **Question 2.c.** The directional check of a model with a million parameters costs two
# forward passes and one backward. What can it miss, and what does it not tell you?
#
# ### BEGIN ANSWER question 2.c
# It checks one number, the derivative along one random direction $v$. A wrong gradient whose
# error is orthogonal to $v$ passes; with a random $v$ that almost never happens exactly, but an
# error in a few elements can drown in the rounding of a million others (a second direction,
# or a check of each layer, helps). And it says nothing about *where* the error is: when it
# fails, check the layers or ops one by one with `gradcheck`, as `python -m googlenet
# gradcheck` does.
# ### END ANSWER

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson, asserted: the slopes of the two error regimes, where the error is
# smallest, float32's failure and gradcheck's refusal, the three cases of the relative error,
# the swapped gradients that only a random upstream gradient catches, the three buggy backwards
# caught, and the directional check passing the right model and failing the buggy one.

# %%
assert 5 < forward_gain < 20 and 50 < central_gain < 200, (forward_gain, central_gain)
assert abs(slopes["forward"][0] - 1) < 0.1 and abs(slopes["central"][0] - 2) < 0.1, slopes
assert all(-1.5 < slopes[name][1] < -0.6 for name in slopes), slopes
assert 1e-6 <= best["central"][0] <= 1e-4 and best["central"][1] < 1e-10, best
assert best["forward"][1] > 100 * best["central"][1], best
assert best32[1] > 1e4 * best["central"][1] and at_gradcheck_eps["float32"] > 1e-3, (best32, at_gradcheck_eps)
assert at_gradcheck_eps["float64"] < 1e-9 and float32_tanh_error > 1e-4
assert "float32" in float32_refusal and "float64" in float32_refusal
large, tiny, zero = measures.values()
assert large[0] > 1e-6 and large[2] < 1e-8          # absolute error fails a right gradient
assert tiny[0] < 1e-6 and tiny[2] > 0.99            # absolute error passes a wrong one
assert zero[1] > 0.99 and zero[2] < 1e-8            # per-element error fails a right one
assert swap_errors["concat_backward_swapped", "ones"] < 1e-8
assert swap_errors["concat_backward_swapped", "random"] > 0.5
assert max(swap_errors["concat_backward", upstream] for upstream in upstreams) < 1e-8
pred_row, target_row = squared_error_report.inputs
assert pred_row.max_rel_error < 1e-8 and target_row.max_rel_error > 0.99
assert "gamma" in scale_shift_failure and "shape (4, 3)" in scale_shift_failure
assert not midpoints_report.passed and not np.allclose(analytic_row, numerical_row)
assert directional.passed and full.passed
assert midpoint_checks["engine ops"].passed and not midpoint_checks["buggy backward"].passed
print("all claims hold")

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(2)
