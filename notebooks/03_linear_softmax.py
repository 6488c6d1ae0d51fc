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
# # Lesson 3: Linear layers and softmax cross-entropy
#
# **What you will learn**
#
# - the linear (fully connected) layer $y = x W^\top + b$: its shapes, and why the weight
#   matrix is stored as `(out, in)`;
# - its backward, derived one index at a time: $g_x = g_y W$, $g_W = g_y^\top x$,
#   $g_b = \sum_n g_{y,n}$;
# - softmax and log-softmax, and why they are computed through log-sum-exp: the textbook
#   formula gives NaN at logits of 1000;
# - the cross-entropy loss over a batch and its famous gradient $(p - \text{onehot}(y)) / N$;
# - the optimizer: SGD with momentum and weight decay, and Adam;
# - and, with those pieces, a softmax classifier that learns to read handwritten digits.
#
# You write five of the pieces yourself: the linear backward (3.1), a stable log-softmax
# (3.2), the cross-entropy backward (3.3), and the optimizer's step, SGD (3.4) and Adam (3.5),
# which then trains the classifier.
#
# **Time:** About 90 minutes: reading and the five exercises. Running every cell at full size
# takes about 14 s (measured in a notebook on a busy 2-core CPU).
#
# **Assumes:** Lesson 1 (a backward returns one gradient per input; a tensor used
# $N$ times gets the sum of $N$ gradients) and lesson 2 (a backward is checked against central
# differences); NumPy (matrix products with `@`, `axis=` and `keepdims=`); partial derivatives,
# and the exponential and the logarithm.

# %%
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import data, nn, optim, viz
from course import check, pick
from course.lesson3 import cross_entropy_forward, linear_forward
from minigrad.ops.loss import log_softmax_forward, softmax_forward

# %% [markdown]
# ## The linear layer
#
# A batch of $N$ examples with `in` features each is a matrix $x$ of shape `(N, in)`, one
# example per row. A linear layer with `out` outputs computes, for every example $n$ and output $j$,
#
# $$y_{nj} = \sum_i x_{ni} W_{ji} + b_j \qquad\text{that is}\qquad y = x W^\top + b$$
#
# with $W$ of shape `(out, in)` and $b$ of shape `(out,)`, added to every row.

# %%
layer = nn.Linear(4, 3, rng=0)
x = mg.tensor(np.random.default_rng(1).standard_normal((5, 4)), dtype="float32")
y = layer(x)
W, b = layer.weight.numpy(), layer.bias.numpy()
print(f"{layer}: weight {W.shape}, bias {b.shape}; x {x.shape} -> y {y.shape}")
layer_difference = np.abs(y.numpy() - (x.numpy() @ W.T + b)).max()
print("largest difference from x @ W.T + b:", layer_difference)
n, j = 2, 1
print(f"y[{n}, {j}] = {y.numpy()[n, j]:+.6f}   x[{n}] . W[{j}] + b[{j}] = {x.numpy()[n] @ W[j] + b[j]:+.6f}")

# %% [markdown]
# **Why $W^\top$?** Row $j$ of $W$ holds everything output $j$ needs: its weight for each input,
# $y_{nj} = x_n \cdot W_j + b_j$. Storing one row per output unit (as PyTorch and Caffe do)
# keeps each unit's weights together, so row $j$ can be read as the pattern unit $j$ responds to
# (we will look at them as images at the end). The dot products of every example row with every
# weight row are then $x W^\top$.
#
# ## The backward of the linear layer
#
# Given the upstream gradient $g = \partial L / \partial y$ (shape `(N, out)`), the chain rule
# sums over every output that an input takes part in. Take each index in turn:
#
# - $x_{ni}$ appears in $y_{nj}$ for every $j$, with factor $W_{ji}$:
#   $\;\dfrac{\partial L}{\partial x_{ni}} = \sum_j g_{nj} W_{ji}$, so $g_x = g\,W$ (shape `(N, in)`);
# - $W_{ji}$ appears in $y_{nj}$ for every example $n$, with factor $x_{ni}$:
#   $\;\dfrac{\partial L}{\partial W_{ji}} = \sum_n g_{nj} x_{ni}$, so $g_W = g^\top x$ (shape `(out, in)`);
# - $b_j$ appears in $y_{nj}$ for every $n$, with factor 1:
#   $\;\dfrac{\partial L}{\partial b_j} = \sum_n g_{nj}$, a sum over the batch (shape `(out,)`).
#
# A quick test of any such formula: the shapes. The only product of $g$ `(N, out)` and
# $x$ `(N, in)` with $W$'s shape `(out, in)` is $g^\top x$. The gradients of $W$ and $b$ are sums
# over the batch, like the gradient of a tensor used $N$ times in lesson 1. The engine's linear
# agrees:

# %%
rng = np.random.default_rng(2)
x64, W64, b64 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
gy = rng.standard_normal((5, 3))
tensors = [mg.tensor(a, dtype="float64", requires_grad=True) for a in (x64, W64, b64)]
F.linear(*tensors).backward(gy)
formulas = {"x": gy @ W64, "W": gy.T @ x64, "b": gy.sum(axis=0)}
formula_differences = {name: float(np.abs(t.grad - formulas[name]).max()) for name, t in zip(formulas, tensors)}
print("largest difference between the engine's gradients and the formulas:", formula_differences)

# %% [markdown]
# **Exercise 3.1: linear backward.** The forward is the package's
# `minigrad.ops.linalg.linear_forward(x, W, b)`, whose cache is `(x, W, has_bias)`; return
# `(gx, gW, gb)`, with `gb = None` when there is no bias. The checker uses a `W` of shape `(4, 3)`,
# then a square one, where a transposed $g_W$ (or one reshaped to `W`'s shape) would have the
# right shape and the wrong numbers.
#
# (Stuck after a wrong verdict? `check.hint("3.1")` prints the rule; `check.progress(3)`
# shows where this lesson's exercises stand.)

# %%
def linear_backward(gy, cache):
    x, W, has_bias = cache
    ### BEGIN SOLUTION exercise 3.1: linear backward
    gx = gy @ W
    gW = gy.T @ x
    gb = gy.sum(axis=0) if has_bias else None
    return gx, gW, gb
    ### END SOLUTION


check.exercise("3.1", linear_backward)

# %% [markdown]
# ## Softmax, and why it is computed through log-sum-exp
#
# A classifier's last linear layer gives one score per class, the **logits** $z$. Softmax turns
# them into probabilities, positive and summing to 1:
#
# $$p_k = \frac{e^{z_k}}{\sum_j e^{z_j}}$$
#
# Written like that it breaks: $e^{710}$ is already more than float64 can hold. Logits of 1000
# give $\infty / \infty$, which is NaN:

# %%
def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0]])
with np.errstate(over="ignore", invalid="ignore"):
    print("exp(1000) =", np.exp(1000.0))
    naive = naive_softmax(logits)
stable = softmax_forward(logits)[0]
print("naive softmax :", naive.round(4).tolist())
print("package's     :", stable.round(4).tolist())

# %% [markdown]
# The fix is free: subtracting the same number $m$ from every logit of a row does not change
# softmax (the factor $e^{-m}$ cancels), and with $m = \max_j z_j$ the largest exponent is
# $e^0 = 1$: nothing overflows, and the sum is at least 1. That is why both rows above get the
# same probabilities: they differ by a constant.
#
# For the loss we need $\log p$, and there a second problem appears: a logit 800 below the
# largest has $p = e^{-800}$, which is 0 in float64 (the smallest float64 is about $e^{-745}$),
# and $\log 0 = -\infty$. Taking the log *before* exponentiating avoids it. The
# **log-sum-exp** form:
#
# $$\log p_k = z_k - \log \sum_j e^{z_j} = (z_k - m) - \log \sum_j e^{z_j - m}$$

# %%
gap = np.array([[0.0, 800.0, 1.0]])
with np.errstate(divide="ignore"):
    log_of_softmax = np.log(softmax_forward(gap)[0])
print("log(softmax(z)):", log_of_softmax.tolist())
print("log_softmax(z) :", log_softmax_forward(gap)[0].tolist())

# %% [markdown]
# **Exercise 3.2: log-softmax, stable.** Write `log_softmax(logits)` over the last axis of an
# `(N, classes)` array, through log-sum-exp, with the maximum of *each row*. The checker
# compares it with `minigrad.ops.loss.log_softmax_forward` on logits near 0, near $10^3$, rows of
# very different scales, gaps of 800 and logits up to $10^4$.

# %%
def log_softmax(logits):
    ### BEGIN SOLUTION exercise 3.2: log-softmax forward
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    ### END SOLUTION


check.exercise("3.2", log_softmax)

# %% [markdown]
# Yours against the textbook formula on logits of $10^3$ and $10^4$:

# %%
large = np.array([[1000.0, 1001.0, 1002.0], [1e4, 0.0, -1e4]])
with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
    print("np.log(naive_softmax(z)):", np.log(naive_softmax(large)).tolist())
try:
    print("your log_softmax(z)     :", log_softmax(large).tolist())
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Cross-entropy over a batch, and its gradient
#
# The loss of a classifier on a batch of $N$ examples with labels $y_n$ is the mean of minus the
# log-probability it gives to the right class:
#
# $$L = -\frac{1}{N} \sum_n \log p_{n, y_n}, \qquad \log p_{n, k} = z_{nk} - \log \sum_j e^{z_{nj}}$$
#
# A classifier that knows nothing gives every one of $C$ classes $p = 1/C$, a loss of
# $\log C$ ($\log 10 \approx 2.303$ for digits). For the gradient, differentiate one example's
# term: $\partial z_{y} / \partial z_k$ is 1 when $k = y$ and 0 otherwise, and
# $\partial \log \sum_j e^{z_j} / \partial z_k = e^{z_k} / \sum_j e^{z_j} = p_k$. So
#
# $$\frac{\partial L}{\partial z_{nk}} = \frac{p_{nk} - [k = y_n]}{N}
#   \qquad\text{that is}\qquad g_z = \frac{p - \text{onehot}(y)}{N}$$
#
# The prediction minus the target: every wrong class is pushed down by its probability, the
# right one up by $1 - p$, and each row sums to zero. The $1/N$ comes from the mean, which keeps
# the gradient's size independent of the batch size. The engine's cross-entropy agrees:

# %%
rng = np.random.default_rng(3)
batch_logits = mg.tensor(rng.standard_normal((6, 4)), dtype="float64", requires_grad=True)
batch_labels = np.array([0, 3, 1, 1, 2, 0])
F.cross_entropy(batch_logits, batch_labels).backward()
p = softmax_forward(batch_logits.numpy())[0]
famous = (p - np.eye(4)[batch_labels]) / len(batch_labels)
famous_difference = float(np.abs(batch_logits.grad - famous).max())
print("largest difference from (p - onehot) / N:", famous_difference)
print("each row of the gradient sums to", (batch_logits.grad.sum(axis=1).round(12) + 0.0).tolist())
uniform_loss = F.cross_entropy(mg.tensor(np.zeros((6, 10)), dtype="float64"), batch_labels).item()
print(f"equal logits for 10 classes: loss {uniform_loss:.6f}, log 10 = {np.log(10):.6f}")

# %% [markdown]
# **Exercise 3.3: cross-entropy backward.** The forward is the package's
# `minigrad.ops.loss.cross_entropy_forward(logits, labels)`; its cache is `(p, rows, labels)`:
# `p = softmax(logits)` of shape `(N, classes)`, `rows = np.arange(N)` and the integer labels.
# The loss is a scalar, so the upstream gradient `gy` is a scalar too (the checker draws a
# random one): return `(g_logits,)`, the gradient of `gy * L`. Do not change `p` in place; the
# cache belongs to the forward.

# %%
def cross_entropy_backward(gy, cache):
    p, rows, labels = cache
    ### BEGIN SOLUTION exercise 3.3: cross-entropy backward
    g = p.copy()
    g[rows, labels] -= 1
    return (g * (gy / len(rows)),)
    ### END SOLUTION


check.exercise("3.3", cross_entropy_backward)

# %% [markdown]
# ## Your backwards in the engine
#
# Your two backwards become ops with `mg.Op`, and the gradients of a small
# linear-then-cross-entropy model through them are compared with the package's.
# (In the student version this cell reports what is missing and goes on.)

# %%
my_linear = mg.Op("my_linear", linear_forward, linear_backward)
my_cross_entropy = mg.Op("my_cross_entropy", cross_entropy_forward, cross_entropy_backward)
rng = np.random.default_rng(4)
arrays = rng.standard_normal((8, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
labels8 = rng.integers(0, 3, 8)


def gradients(linear, cross_entropy):
    tensors = [mg.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    cross_entropy(linear(*tensors)).backward()
    return [t.grad for t in tensors]


package_gradients = gradients(F.linear, lambda z: F.cross_entropy(z, labels8))
try:
    your_gradients = gradients(my_linear, lambda z: my_cross_entropy(z, labels=labels8))
    for name, yours, theirs in zip(("x", "W", "b"), your_gradients, package_gradients):
        print(f"gradient of {name}: largest difference from the package's {np.abs(yours - theirs).max():.1e}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## The optimizer: SGD with momentum and weight decay, and Adam
#
# Training moves every parameter $p$ against its gradient; plain SGD is
# $p \leftarrow p - \text{lr}\cdot g$. The GoogLeNet paper trained with two additions:
#
# - **weight decay** adds $\frac{\text{wd}}{2}\lVert p \rVert^2$ to the loss, so its gradient
#   $\text{wd}\cdot p$ joins the gradient, $g \leftarrow \nabla_p L + \text{wd}\cdot p$: every step
#   pulls each weight a little towards 0 (minigrad, like Caffe's GoogLeNet, decays weights,
#   not biases);
# - **momentum** keeps a velocity, a running sum of past gradients, and steps along it:
#   $v \leftarrow \mu v + g$, then $p \leftarrow p - \text{lr}\cdot v$. Where the gradient keeps its
#   sign the velocity builds up (up to $1/(1-\mu)$, ten times, for $\mu = 0.9$); where it
#   flips from step to step it cancels.
#
# This is PyTorch's form, and `minigrad.optim.SGD`'s. Caffe keeps steps in the velocity
# instead, $v \leftarrow \mu v + \text{lr}\cdot g$, $p \leftarrow p - v$: the same steps while the
# learning rate is constant, different ones when a schedule changes it.
#
# **Exercise 3.4: SGD with momentum and weight decay.** Write `sgd_step(p, g, velocity, lr,
# momentum, weight_decay)` for one parameter array: return `(new p, new velocity)` as new
# arrays, and leave the inputs as they are. The checker runs it for several steps, feeding
# back your velocity, against `minigrad.optim.SGD` on the same gradients (one run changes
# the learning rate half way).

# %%
def sgd_step(p, g, velocity, lr, momentum=0.9, weight_decay=0.0):
    ### BEGIN SOLUTION exercise 3.4: SGD with momentum and weight decay
    g = g + weight_decay * p
    velocity = momentum * velocity + g
    return p - lr * velocity, velocity
    ### END SOLUTION


check.exercise("3.4", sgd_step)

# %% [markdown]
# **Adam** (Kingma and Ba, 2015) gives every parameter its own step size, from running
# averages of its gradient and of the gradient's square:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
#   p \leftarrow p - \text{lr}\,\frac{\hat m}{\sqrt{\hat v} + \varepsilon}, \qquad
#   \hat m = \frac{m}{1-\beta_1^t}, \;\; \hat v = \frac{v}{1-\beta_2^t}$$
#
# with $t$ the step number, from 1. $m$ and $v$ start at 0, so in the first steps they are too
# small, by exactly the factors $1 - \beta^t$: the **bias correction** divides them out. At
# $t = 1$, $\hat m = g$ and $\hat v = g^2$, and every parameter moves by about lr.
#
# **Exercise 3.5: Adam.** Write `adam_step(p, g, m, v, t, lr, beta1, beta2, eps)`: return
# `(new p, new m, new v)`, again as new arrays. It is checked like 3.4, against
# `minigrad.optim.Adam`.

# %%
def adam_step(p, g, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    ### BEGIN SOLUTION exercise 3.5: Adam
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    ### END SOLUTION


check.exercise("3.5", adam_step)

# %% [markdown]
# Your steps become optimizers with `minigrad.optim`'s interface (`zero_grad()`, then `step()`
# after `backward()`), keeping one state per parameter:

# %%
class YourOptimizer:
    """What both optimizers share: the parameters, the learning rate, zero_grad."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class YourSGD(YourOptimizer):
    """SGD with momentum and weight decay by your sgd_step; weight decay on the weights only
    (parameters with more than one axis), not on biases."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocities = [np.zeros_like(p.data) for p in self.params]

    def step(self):
        for i, p in enumerate(self.params):
            decay = self.weight_decay if p.ndim > 1 else 0.0
            p.data, self.velocities[i] = sgd_step(p.data, p.grad, self.velocities[i], self.lr,
                                                  self.momentum, decay)


class YourAdam(YourOptimizer):
    """Adam by your adam_step."""

    def __init__(self, params, lr):
        super().__init__(params, lr)
        self.t = 0
        self.moments = [(np.zeros_like(p.data), np.zeros_like(p.data)) for p in self.params]

    def step(self):
        self.t += 1
        for i, p in enumerate(self.params):
            p.data, *self.moments[i] = adam_step(p.data, p.grad, *self.moments[i], self.t, self.lr)

# %% [markdown]
# ## A softmax classifier for handwritten digits
#
# Now the pieces together: a linear layer from the 64 pixels of an 8x8 digit to 10 logits,
# trained with the cross-entropy by your SGD with momentum and weight decay, and, to compare,
# by your Adam. This is *softmax regression*, the simplest neural classifier: no hidden layer.
# The data are scikit-learn's 1,797 digits (`minigrad.data.load_digits`); a fifth of each class
# is held out to measure accuracy on images the model never trained on.

# %%
digits = data.load_digits(size=8)
train, held_out = digits.split(held_out=0.2, seed=0)
mean, std = train.channel_stats()
loader = data.DataLoader(train, batch_size=64, shuffle=True, seed=0, mean=mean, std=std)
held_x, held_y = next(iter(data.DataLoader(held_out, batch_size=len(held_out), mean=mean, std=std)))
print(f"{len(train)} training and {len(held_out)} held-out images, {digits.image_size}x{digits.image_size} "
      f"pixels; {len(loader)} batches of 64 per epoch")
first_images = viz.image_grid(train.images[:8], labels=train.labels[:8], title="The first eight training digits")

# %% [markdown]
# Each model starts from the same weights and sees the same batches. (Until you have done
# exercises 3.4 and 3.5, `minigrad.optim`'s SGD and Adam stand in for yours.)

# %%
def evaluate(model):
    """Loss and accuracy on the held-out images."""
    with mg.no_grad():
        logits = model(mg.tensor(held_x))
        return F.cross_entropy(logits, held_y).item(), F.accuracy(logits, held_y)


def train(make_optimizer, epochs):
    """A fresh softmax classifier trained by make_optimizer(its parameters); its history."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=0))
    optimizer = make_optimizer(model.parameters())
    loss, accuracy = evaluate(model)
    history = [{"epoch": 0, "held-out loss": loss, "held-out accuracy": accuracy}]
    for epoch in range(epochs):
        step_losses = []
        for images, labels in loader.batches(epoch):
            loss = F.cross_entropy(model(mg.tensor(images)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step_losses.append(loss.item())
        held_loss, held_accuracy = evaluate(model)
        history.append({"epoch": epoch + 1, "training loss": float(np.mean(step_losses)),
                        "held-out loss": held_loss, "held-out accuracy": held_accuracy})
    return model, history


yours = {"SGD": check.verdict("3.4", sgd_step).correct, "Adam": check.verdict("3.5", adam_step).correct}
optimizers = {
    "SGD": (lambda params: YourSGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)) if yours["SGD"] else
           (lambda params: optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)),
    "Adam": (lambda params: YourAdam(params, lr=0.01)) if yours["Adam"] else
            (lambda params: optim.Adam(params, lr=0.01)),
}
epochs = pick(10, 3)
models, histories = {}, {}
for name, make_optimizer in optimizers.items():
    models[name], histories[name] = train(make_optimizer, epochs)
    print(f"{name} ({'yours' if yours[name] else 'minigrad.optim, until yours is done'}):")
    for row in histories[name]:
        training = f"training loss {row['training loss']:.3f}, " if "training loss" in row else ""
        print(f"  epoch {row['epoch']}: {training}held-out loss {row['held-out loss']:.3f}, "
              f"accuracy {row['held-out accuracy']:.1%}")
history = histories["SGD"]
curves = viz.plot_curves({"epoch": [row["epoch"] for row in history],
                          **{f"{name} {key}": [row.get(key) for row in rows]
                             for name, rows in histories.items()
                             for key in ("training loss", "held-out loss", "held-out accuracy")}},
                         title="Softmax regression on the digits: SGD with momentum and Adam")

# %% [markdown]
# Before training the loss is not far from $\log 10 \approx 2.3$ (the weights are small and
# random, so the logits are nearly equal); the first epoch does most of the work. (The training
# loss is the mean over an epoch's batches, taken while the model was still learning: in the
# first epoch it is above the held-out loss, which is measured at the epoch's end.) With these
# learning rates SGD with momentum ends a little ahead of Adam; neither is better everywhere,
# and each one's learning rate matters more than the choice between them.
#
# Each row of $W$ belongs to one class: seen as an 8x8 image it is the pattern of pixels that
# raises that class's logit (red) or lowers it (blue), a template of the digit learned from
# the gradient $(p - \text{onehot})/N$ alone. All ten share one colour scale, centred on 0, so
# equal colours are equal weights, in any template.

# %%
templates = viz.weight_grid(models["SGD"][1].weight.numpy().reshape(10, 8, 8), labels=digits.classes, columns=10,
                            title="The weights of each class (SGD), one scale: red raises its logit, blue lowers it")

# %% [markdown]
# ## Questions

# %% [markdown]
# **Question 3.a.** The gradient of the cross-entropy is $(p - \text{onehot}(y))/N$. What is it
# for an example that the model already classifies with $p = 0.999$ for the right class, and
# what does that mean for training?
#
# ### BEGIN ANSWER question 3.a
# Almost zero: the right class's logit gets $(0.999 - 1)/N = -0.001/N$ and the other classes
# share $+0.001/N$. An example the model is sure and right about barely moves the weights; the
# gradient comes from the examples it gets wrong or is unsure of. That is also why the training
# loss falls fast at first and slowly later: fewer and fewer examples still push.
# ### END ANSWER

# %% [markdown]
# **Question 3.b.** Why does Adam need a bias correction, when SGD's velocity, which also
# starts at 0, does not? Work out Adam's first step without it ($\beta_1 = 0.9$,
# $\beta_2 = 0.999$).
#
# ### BEGIN ANSWER question 3.b
# SGD's velocity is a sum, $v = g$ after the first step: nothing is missing. Adam's $m$ and $v$
# are averages whose weights $(1-\beta)\beta^k$ add up to only $1 - \beta^t$ after $t$ steps, so
# they are too small by that factor, and the two factors do not cancel in $m / \sqrt{v}$. At
# $t = 1$: $m = 0.1\,g$ and $\sqrt{v} = \sqrt{0.001}\,|g| \approx 0.0316\,|g|$, a step of about
# $3.2\,\text{lr}$ instead of $\text{lr}$, in every coordinate at once, right when the weights
# are random. The correction divides by $1 - \beta_1^t$ and $1 - \beta_2^t$ and fades as $t$
# grows.
# ### END ANSWER

# %% [markdown]
# **Question 3.c.** Show that for plain SGD, weight decay is the same as multiplying every
# weight by $1 - \text{lr}\cdot\text{wd}$ before each step. Does that still hold for Adam with
# the decay added to the gradient?
#
# ### BEGIN ANSWER question 3.c
# $p - \text{lr}(g + \text{wd}\,p) = (1 - \text{lr}\,\text{wd})\,p - \text{lr}\,g$: a uniform
# shrink, then the plain step. In Adam the term $\text{wd}\,p$ goes through
# $\hat m / (\sqrt{\hat v} + \varepsilon)$ with the gradient, so a weight with large gradients
# (large $\hat v$) is barely decayed and one with small gradients a lot: no longer a uniform
# shrink. AdamW (Loshchilov and Hutter, 2019) decouples it, $p \leftarrow p - \text{lr}\,(\hat m /
# (\sqrt{\hat v} + \varepsilon) + \text{wd}\,p)$, to get the shrink back.
# ### END ANSWER

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson, asserted: the linear layer is $x W^\top + b$ and its gradients are
# the three formulas; the textbook softmax gives NaN at logits of 1000 and log(softmax) gives
# $-\infty$ at a gap of 800, while the log-sum-exp forms are fine; the cross-entropy's gradient
# is $(p - \text{onehot})/N$ with rows summing to zero and equal logits cost $\log C$; the
# classifier learned, with SGD and with Adam; and the templates share one colour scale.

# %%
assert y.shape == (5, 3) and layer_difference < 1e-6
assert max(formula_differences.values()) < 1e-12, formula_differences
assert np.isnan(naive[1]).all() and np.isfinite(stable).all()
assert np.allclose(stable[0], stable[1])                   # a constant shift changes nothing
assert np.isneginf(log_of_softmax[0, 0]) and np.isclose(log_softmax_forward(gap)[0][0, 0], -800.0)
assert famous_difference < 1e-12 and np.allclose(batch_logits.grad.sum(axis=1), 0)
assert np.isclose(uniform_loss, np.log(10))
first, last = history[0], history[-1]
assert last["held-out loss"] < first["held-out loss"] / 4, history
assert last["held-out accuracy"] > 0.85, history
assert history[-1]["training loss"] <= history[1]["training loss"], history
assert histories["Adam"][-1]["held-out accuracy"] > 0.85, histories["Adam"]
scales = {image.get_clim() for ax in templates.axes for image in ax.images}
assert len(scales) == 1 and sum(next(iter(scales))) == 0, scales    # one scale, centred on 0
print("all claims hold")

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(3)
