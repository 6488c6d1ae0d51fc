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
# - and how the engine itself works: you write its walk, the topological order and the
#   accumulation of gradients (1.6, 1.7).
#
# Every op in minigrad is a pair of plain-array functions, `forward(*inputs) -> (out, cache)`
# and `backward(gy, cache) -> one gradient per input`; the engine (`minigrad/autograd.py`)
# only records which pair made which tensor and calls the backwards in the right order.
#
# **Time:** About 60 to 90 minutes: reading and the seven exercises. Running every cell at full
# size takes about 8 s (measured in a notebook on a busy 2-core CPU).
#
# **Assumes:** Python and NumPy (arrays, broadcasting, `axis=` in a sum); the chain rule
# of calculus for functions of one variable, and partial derivatives. No earlier lesson: this
# is the first.

# %%
import numpy as np

import minigrad as mg
from minigrad import viz
from course import check

# %% [markdown]
# ## A small expression and its graph
#
# $L = \sum (w x + b)^2$ with a weight $w$ used once and $h = wx + b$ used twice (in $h \cdot h$);
# we keep it tiny so every value fits on the picture.

# %%
x = mg.tensor([1.0, 2.0], dtype="float64")
w = mg.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
b = mg.tensor(0.25, dtype="float64", requires_grad=True)
wx = w * x
h = wx + b
hh = h * h
L = hh.sum()
names = {x: "x", w: "w", b: "b", wx: "w*x", h: "h", hh: "h*h", L: "L"}
print("L =", L.item())
graph = viz.draw_graph(L, names=names, values=True, title="The graph of L = sum((w x + b)^2)")

# %% [markdown]
# The data flow upwards: the inputs at the bottom, the output $L$ on top. Blue boxes are the
# leaves that want a gradient (`requires_grad=True`), the yellow box is the output; grey
# ellipses are the ops, one arrow for each of an op's inputs: `h` has two arrows into the
# `mul` above it, one for each factor of `h * h`. `x` (dashed) has no gradient: it is data.
#
# ## Backward, one node at a time
#
# `L.backward_steps()` is `backward()` slowed down: it yields each tensor at the moment its
# gradient is complete, outputs first. `viz.step_through` draws a picture of each step: the
# tensor whose gradient has just become complete is orange, and the red arrows are what its
# op's backward sends down to the op's inputs, each labelled with the **local derivative**
# (what the backward multiplies by: $\partial\,\text{output} / \partial\,\text{input}$,
# elementwise here) and the gradient it **sends**. A tensor still waiting for some of its
# users shows what has arrived **so far**.
#
# Watch `h`: it is used **twice**, so two red arrows reach it in step 2, each carrying $h$
# times the upstream gradient; only then is its gradient complete,
# $\partial L / \partial h = h + h = 2h$. Move the slider (or press play); where widgets
# cannot be shown the output is a picture of every step, two side by side.
#
# `backward()` **adds** into each leaf's `.grad` (the next section says why), so this cell
# first clears the gradients of `w` and `b`: run it as often as you like.

# %%
w.zero_grad()                     # start from no gradient: running this cell again gives
b.zero_grad()                     # the same w.grad, not twice it
stepper = viz.step_through(L, names=names)       # runs L.backward_steps(), one picture a step
for frame in stepper.frames:
    made_by = frame.tensor.node.name if frame.tensor.node else "a leaf"
    print(f"step {frame.step}: {names.get(frame.tensor)} ({made_by}) has gradient {frame.gradient}")
stepper

# %% [markdown]
# Check by hand: $h = wx + b = [0.75, -1.75]$, so $\partial L/\partial h = 2h = [1.5, -3.5]$,
# $\partial L/\partial w = 2h \cdot x = [1.5, -7]$ and $\partial L/\partial b = \sum 2h = -2$
# (b was broadcast to both elements, so its gradient is a sum: the label "summed" on its
# arrow in step 3).

# %%
print("w.grad =", w.grad, " b.grad =", b.grad)

# %% [markdown]
# ## Gradients add up: `zero_grad`
#
# `backward()` never overwrites a leaf's `.grad`: it **adds** to it. That is the same rule that
# made `h`'s gradient the sum of its two uses, applied across calls: a tensor that takes part
# in two losses gets the sum of both gradients, and a model can add the gradients of several
# small batches before one update. The price: before each new backward pass you clear the old
# gradients yourself, with `tensor.zero_grad()` (or `optimizer.zero_grad()` for all of a
# model's parameters, lesson 3). Forget it and each pass adds another copy.
#
# To show it, the cell below runs backward through one graph several times. `backward()`
# normally frees what each op's forward saved for it as soon as it has used it (the memory of
# a training step is mostly that), so a second pass through the same graph is an error that
# says so; `retain_graph=True` keeps it.

# %%
v = mg.tensor([1.0, -2.0], dtype="float64", requires_grad=True)
square_sum = (v * v).sum()                        # gradient 2v = [2, -4]
passes = []
for _ in range(3):
    square_sum.backward(retain_graph=True)
    passes.append(v.grad.copy())
print("v.grad after 1, 2 and 3 backward passes:", [g.tolist() for g in passes])
v.zero_grad()
square_sum.backward()
print("after zero_grad and one more pass:       ", v.grad.tolist())

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
# **Verdicts, hints and your progress.** `check.exercise` says *not implemented yet*, *wrong*
# or *correct*. A wrong verdict names the input and the element that are off, what was
# expected and what came, and the usual mistake when it recognises one; from the second wrong
# verdict on an exercise it adds the rule (the formula), which `check.hint("1.1")` prints at
# any time. `check.progress()` lists the exercises done, wrong and not tried yet in this
# session (`check.progress(1)`: this lesson's); the last cell of every lesson shows it.

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
# ## Exercises 1.6 and 1.7: the walk itself
#
# `backward()` does two things, and you now write both. First it puts the graph's tensors in
# an order where every tensor comes before its inputs, the output first; then it walks that
# order, calling each op's backward once and **adding** what it returns to the gradients of the
# op's inputs.
#
# What a tensor remembers (the engine's own bookkeeping, in `minigrad/autograd.py`):
#
# - `t.node` is `None` for a leaf (a tensor you made, not an op);
# - otherwise `t.node.inputs` is the tuple of tensors the op was applied to, in order, with
#   `None` for an absent optional input (a linear layer without a bias); the same tensor
#   appears twice in `(h * h).node.inputs`;
# - `t.node.backward(g, t.node.cache)` is the op's backward: given the gradient `g` of `t`,
#   it returns one gradient per input (`None` for one that needs none);
# - `t.requires_grad` says whether `t` wants a gradient at all (data such as `x` does not).
#
# **Exercise 1.6: topological order.** Write `topological_order(root)`: a list of the tensors
# `root` was computed from (constants may be left out), `root` first, each **once**, and each
# after **all** of the tensors that use it. Why all: a tensor's gradient is complete only when
# every user has sent its share, and the walk sends it on when it reaches it. (A depth-first
# search can do it, but not every depth-first order is right: the checker's diamond
# $m = a \cdot e^{a}$ reaches $a$ both directly and through $e = e^a$.)

# %%
def topological_order(root):
    ### BEGIN SOLUTION exercise 1.6: topological order
    order, visited = [], set()

    def visit(tensor):
        if id(tensor) in visited:
            return
        visited.add(id(tensor))
        if tensor.node is not None:
            for parent in tensor.node.inputs:
                if parent is not None:
                    visit(parent)
        order.append(tensor)             # after all of its inputs: this list is inputs first

    visit(root)
    return order[::-1]                   # outputs first: every tensor before its inputs
    ### END SOLUTION


check.exercise("1.6", topological_order)

# %% [markdown]
# **Exercise 1.7: the walk.** Write `backward_walk(root, order)`: return a dict
# `{tensor: gradient}` with the gradient of `root` with respect to every tensor that wants one,
# `root` included (its own gradient is ones: `np.ones_like(root.data)`). Go through `order`
# (the checker gives you a correct one; the cell after uses yours): skip a tensor that has
# no gradient (it needs none) or no op; otherwise call its op's backward with its gradient and
# **add** each returned gradient to what that input has so far (skip `None` inputs, inputs
# that do not want a gradient, and `None` gradients). The checker compares your gradients
# with `backward()` on five graphs (a chain, `h * h`, a diamond, a broadcast, a linear layer
# without a bias) and watches your walk: each op's backward must run once, with its whole
# gradient.

# %%
def backward_walk(root, order):
    ### BEGIN SOLUTION exercise 1.7: backward walk
    gradients = {root: np.ones_like(root.data)}
    for tensor in order:
        if tensor not in gradients or tensor.node is None:
            continue
        node = tensor.node
        for parent, g in zip(node.inputs, node.backward(gradients[tensor], node.cache)):
            if parent is None or g is None or not parent.requires_grad:
                continue
            gradients[parent] = gradients[parent] + g if parent in gradients else g
    return gradients
    ### END SOLUTION


check.exercise("1.7", backward_walk)

# %% [markdown]
# Your order and your walk together on the lesson's graph, against `backward()`:

# %%
try:
    yours = backward_walk(L, topological_order(L))
    for name, tensor in (("w", w), ("b", b)):
        print(f"d L / d {name}: your walk {yours[tensor]}, backward() {tensor.grad}")
    print("d L / d h: your walk", yours[h], "(both uses of h added up)")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Questions

# %% [markdown]
# **Question 1.a.** Why does the walk need a topological order? Could it not call an op's
# backward as soon as some gradient reaches the op's output, and again when more arrives?
#
# ### BEGIN ANSWER question 1.a
# It could, because a backward is linear in its upstream gradient: sending each share down on
# its own, as it arrives, and adding everything up at the leaves gives the right sums. But each
# share would travel every path below it separately, and the number of paths grows
# exponentially with depth (each diamond doubles them): a GoogLeNet would never finish. Waiting
# until all users have sent their shares (which the topological order guarantees) runs each
# backward exactly once, so a backward pass costs about as much as the forward one. What does
# *not* work is sending on the gradient accumulated so far each time something arrives: the
# early shares then go down twice (the checker's "ran 2 times").
# ### END ANSWER

# %% [markdown]
# **Question 1.b.** Exp's backward keeps its output $y = e^x$ in the cache, not $x$. Why is that
# enough, and what would `tanh` and `sigmoid` keep?
#
# ### BEGIN ANSWER question 1.b
# $\frac{d}{dx} e^x = e^x = y$, so the backward is `gy * y`, with no exp to recompute. The same
# trick works whenever the derivative is a function of the output: $\tanh' = 1 - \tanh^2 = 1 - y^2$
# (minigrad's tanh keeps $y$) and $\sigma' = \sigma(1 - \sigma) = y(1 - y)$. For sigmoid
# minigrad keeps $e^{-|x|}$ instead (`minigrad/ops/elementwise.py`): where $y$ is close to 1,
# $1 - y$ has lost most of its digits, while $\sigma' = e^{-|x|} / (1 + e^{-|x|})^2$ has not.
# ### END ANSWER

# %% [markdown]
# **Question 1.c.** A model has two losses on one batch. You call `loss1.backward()`, then
# `loss2.backward()`, then take an optimizer step. Which gradient did the step use? And if you
# call `zero_grad()` between the two backward calls?
#
# ### BEGIN ANSWER question 1.c
# The gradient of `loss1 + loss2`: gradients add up across backward calls, and the gradient of a
# sum is the sum of the gradients (this is how some training loops add the gradients of several
# small batches before one step). With `zero_grad()` in between, the first gradient is thrown
# away and the step follows `loss2` alone.
# ### END ANSWER

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson, asserted: the walk delivers each tensor once, the tensor used
# twice gets the sum of both uses, the gradients match the hand computation, `backward()` gives
# the same as the stepped walk, and gradients add up over backward passes. If one fails, the
# message says what happened.

# %%
def what_happened(name, got, expected):
    """Why a gradient is not the hand computation's, in words."""
    if got is None:
        return f"{name}.grad is None: no backward pass has reached {name} since it was cleared."
    times = float(np.sum(got * np.asarray(expected)) / np.sum(np.square(expected)))
    if round(times) > 1 and np.allclose(got, round(times) * np.asarray(expected)):
        return (f"{name}.grad is {got}, {round(times)} times the hand computation {expected}: the "
                f"gradients of {round(times)} backward passes were added up (backward adds into "
                f".grad). Run the stepping cell again (it clears them first), or call "
                f"{name}.zero_grad() before a backward pass.")
    return f"{name}.grad is {got}, the hand computation says {expected}."


w2 = mg.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
b2 = mg.tensor(0.25, dtype="float64", requires_grad=True)
h2 = w2 * x + b2
L2 = (h2 * h2).sum()
seen = [tensor for tensor, _ in L2.backward_steps()]
assert len(seen) == len({id(t) for t in seen}), "the stepped walk yielded a tensor twice"
h_frame = next(frame for frame in stepper.frames if frame.tensor is h)
assert len([edge for frame in stepper.frames for edge in frame.sends if edge.input is h]) == 2, \
    "h is used twice, so two gradients should have been sent to it"
assert np.allclose(h_frame.gradient, 2 * h.numpy()), \
    f"h's gradient is {h_frame.gradient}, expected 2h = {2 * h.numpy()}: the sum of its two uses"
assert np.allclose(w.grad, [1.5, -7.0]), what_happened("w", w.grad, [1.5, -7.0])
assert np.isclose(b.grad, -2.0), what_happened("b", b.grad, -2.0)
assert np.allclose(w2.grad, w.grad) and np.isclose(b2.grad, b.grad), \
    f"backward_steps gives w {w2.grad}, b {b2.grad}; the stepped walk gave w {w.grad}, b {b.grad}"
assert [g.tolist() for g in passes] == [[2.0, -4.0], [4.0, -8.0], [6.0, -12.0]], \
    f"three backward passes gave {[g.tolist() for g in passes]}, expected 1, 2 and 3 times [2, -4]"
print("all claims hold")

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(1)
