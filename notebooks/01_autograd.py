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
# # Lesson 1: Tensors and autograd, stepped through
#
# **What you will learn**
#
# - what a `Tensor` remembers when an op makes it, and how that forms a graph;
# - how `backward()` walks that graph from the output to the inputs, one node at a time,
#   applying the chain rule at each op;
# - why a tensor used twice receives the *sum* of the gradients from both uses;
# - how to write the backward of an op yourself: mul, div, pow, exp and a broadcasting add.
#
# Every op in minigrad is a pair of plain-array functions, `forward(*inputs) -> (out, cache)`
# and `backward(gy, cache) -> one gradient per input`; the engine (`minigrad/autograd.py`)
# only records which pair made which tensor and calls the backwards in the right order.

# %%
import numpy as np

import minigrad as mg
from minigrad import viz
from course import check

# %% [markdown]
# ## A small expression and its graph
#
# $L = \sum (w x + b)^2$ with a weight $w$ used once and the product $wx$ used once; we
# keep it tiny so every value fits on the picture.

# %%
x = mg.tensor([1.0, 2.0], dtype="float64")
w = mg.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
b = mg.tensor(0.25, dtype="float64", requires_grad=True)
h = w * x + b
L = (h * h).sum()
names = {x: "x", w: "w", b: "b", h: "h", L: "L"}
print("L =", L.item())
graph = viz.draw_graph(L, names=names, values=True)      # (a name: else a notebook shows it twice)

# %% [markdown]
# Blue boxes are the leaves that want a gradient (`requires_grad=True`), the yellow box is the
# output; grey ellipses are the ops. `x` has no gradient: it is data.
#
# ## Backward, one node at a time
#
# `L.backward_steps()` is `backward()` slowed down: it yields each tensor at the moment its
# gradient is complete, outputs first. We draw the graph after each step with the gradients
# delivered so far. Watch `h`: it is used **twice** (`h * h`), and it only appears once both
# uses have sent their share, $\partial L / \partial h = 2h$.

# %%
delivered = {}
for step, (tensor, gradient) in enumerate(L.backward_steps(), start=1):
    delivered[id(tensor)] = gradient
    made_by = tensor._node.name if tensor._node else "leaf"
    print(f"step {step}: {names.get(tensor, 'an intermediate')} ({made_by}) has gradient {gradient}")

graph = viz.draw_graph(L, names=names, values=True, gradients=delivered)

# %% [markdown]
# Check by hand: $h = wx + b = [0.75, -1.75]$, so $\partial L/\partial h = 2h = [1.5, -3.5]$,
# $\partial L/\partial w = 2h \cdot x = [1.5, -7]$ and $\partial L/\partial b = \sum 2h = -2$
# (b was broadcast to both elements, so its gradient is a sum).

# %%
print("w.grad =", w.grad, " b.grad =", b.grad)

# %% [markdown]
# ## Exercises: write the backward passes
#
# Each forward below is the lesson's (`course/lesson1.py`), returning `(out, cache)`.
# Write the backward: given the upstream gradient `gy` (the gradient of the loss with respect to
# `out`) and the cache, return the gradient with respect to each input, as a tuple. The checker
# compares your answer with central differences (lesson 2 explains those) on random inputs.
#
# **Exercise 1.1: mul.** `out = a * b`, cache `(a, b)`.

# %%
def mul_backward(gy, cache):
    a, b = cache
    ### BEGIN SOLUTION exercise 1.1: mul backward
    return gy * b, gy * a
    ### END SOLUTION


check.exercise("1.1", mul_backward)

# %% [markdown]
# **Exercise 1.2: div.** `out = a / b`, cache `(a, b)`.

# %%
def div_backward(gy, cache):
    a, b = cache
    ### BEGIN SOLUTION exercise 1.2: div backward
    return gy / b, -gy * a / (b * b)
    ### END SOLUTION


check.exercise("1.2", div_backward)

# %% [markdown]
# **Exercise 1.3: pow with a constant exponent.** `out = x ** p`, cache `(x, p)`; it is checked
# with `p = 3` and `p = 0.5`.

# %%
def pow_backward(gy, cache):
    x, p = cache
    ### BEGIN SOLUTION exercise 1.3: pow backward
    return (gy * p * x ** (p - 1),)
    ### END SOLUTION


check.exercise("1.3", pow_backward)

# %% [markdown]
# **Exercise 1.4: exp.** `out = exp(x)`, and the cache is `out` itself (why is that enough?).

# %%
def exp_backward(gy, y):
    ### BEGIN SOLUTION exercise 1.4: exp backward
    return (gy * y,)
    ### END SOLUTION


check.exercise("1.4", exp_backward)

# %% [markdown]
# **Exercise 1.5: a broadcasting add.** `out = a + b` where NumPy may stretch `a` or `b`
# (`(3, 4) + (4,)`, `(3, 1) + (1, 4)`); the cache is `(a.shape, b.shape)`. The gradient of an
# input must have that input's shape: an input copied along an axis receives the **sum** of the
# gradient along it (the same rule as a tensor used twice).

# %%
def add_backward(gy, shapes):
    a_shape, b_shape = shapes
    ### BEGIN SOLUTION exercise 1.5: broadcasting add backward
    def unbroadcast(g, shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape))))          # axes added in front
        stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
        return g.sum(axis=stretched, keepdims=True)                   # size-1 axes stretched
    return unbroadcast(gy, a_shape), unbroadcast(gy, b_shape)
    ### END SOLUTION


check.exercise("1.5", add_backward)

# %% [markdown]
# ## Your backward in the engine
#
# A pair becomes a differentiable function with `mg.Op`; the engine then calls *your* backward.
# (In the student version this cell reports that exercise 1.1 is missing and goes on.)

# %%
from course.lesson1 import mul_forward

my_mul = mg.Op("my_mul", mul_forward, mul_backward)
a = mg.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
c = mg.tensor([4.0, 5.0, 6.0], dtype="float64", requires_grad=True)
try:
    my_mul(a, c).sum().backward()
    print("a.grad =", a.grad, " c.grad =", c.grad)
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson, asserted: the walk delivers each tensor once, the tensor used
# twice gets the sum of both uses, the gradients match the hand computation, and `backward()`
# gives the same as the stepped walk.

# %%
w2 = mg.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
b2 = mg.tensor(0.25, dtype="float64", requires_grad=True)
h2 = w2 * x + b2
L2 = (h2 * h2).sum()
seen = [tensor for tensor, _ in L2.backward_steps()]
assert len(seen) == len({id(t) for t in seen}), "a tensor was yielded twice"
assert np.allclose(delivered[id(h)], 2 * h.numpy())
assert np.allclose(w.grad, [1.5, -7.0]) and np.isclose(b.grad, -2.0)
assert np.allclose(w2.grad, w.grad) and np.isclose(b2.grad, b.grad)
print("all claims hold")
