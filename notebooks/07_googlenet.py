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
# # Lesson 7: GoogLeNet end to end
#
# **Time:** about 60 minutes: 40 to read, 20 for the three exercises. The code runs in about
# 25 s at full size on 2 CPU cores, most of it the short training run at the end.
#
# **Assumes:** lessons 1-6 (autograd, the gradient check, softmax cross-entropy, the layers
# and the Inception module); what SGD with momentum does. The paper's section 5 (training
# methodology) at hand helps.
#
# **What you will learn**
#
# - what a whole GoogLeNet does with a batch of digits: its three outputs in training mode,
#   its first feature maps and filters;
# - the paper's training loss, with its two auxiliary classifiers (exercise 7.1);
# - how to check the gradients of the whole network against finite differences, and how such
#   a check points at a broken layer;
# - why GoogLeNet, trained as in 2014 (no batch norm), gives every image the same answer at
#   first, measured layer by layer (exercise 7.2);
# - what the auxiliary classifiers add to the gradient of the lowest layers (exercise 7.3);
# - a short training run, and the moment the signal gets through.
#
# The network is the paper's (Table 1, auxiliary heads, LRN, dropout, Caffe initialization),
# only narrower: every channel count is multiplied by `WIDTH`, so that it runs in seconds on a
# CPU. The images are scikit-learn's 8x8 digits upsampled to 32x32, close to the smallest input
# the network accepts (below it, one of Table 1's pools would have no map left to pool).
#
# The matrix products here are small, so NumPy's BLAS is held to one thread: a second thread
# gains little on them, and on a machine busy with other work the threads spend their time
# waiting for each other (this lesson took three times as long so).

# %%
import math
import tempfile
import warnings

import numpy
import matplotlib.pyplot as plt

from minigrad import Tensor, nn, no_grad, viz
from minigrad import functional as F
from minigrad.data import DataLoader, load_dataset
from minigrad.gradcheck import directional_check
from course import check, fast, pick
from course.lesson7 import activation_spread_reference, gradient_norm_reference, layer_outputs, plot_gradcheck
from googlenet.diagram import draw_googlenet
from googlenet.gradcheck import (auxiliary_gradients, checkable_problem, fixed_masks_loss,
                                 gradcheck_googlenet, reseed_dropouts)
from googlenet.model import GoogLeNet, GoogLeNetOutput, googlenet_loss
from googlenet.sizes import smallest_input_size
from googlenet.train import TrainConfig, Trainer
from threadpoolctl import threadpool_limits

warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm, with its progress bar off

threadpool_limits(limits=1, user_api="blas")
WIDTH = pick(1 / 4, 1 / 8)
print(f"width {WIDTH:g}")

# %% [markdown]
# ## The data and the network
#
# The 1,797 digits, split 80/20 into training and held-out images (stratified, seeded), then
# normalized with the training set's mean and standard deviation. A batch of held-out images:

# %%
train_set, held_out = load_dataset("digits", size=32)
mean, std = train_set.channel_stats()
print(f"{len(train_set)} training and {len(held_out)} held-out images of {train_set.images.shape[1:]}; "
      f"pixel mean {mean[0]:.3f}, std {std[0]:.3f}; the smallest input GoogLeNet accepts: "
      f"{smallest_input_size()}x{smallest_input_size()}")
images, labels = next(iter(DataLoader(held_out, 32, mean=mean, std=std)))
viz.image_grid(images[:8], labels[:8], title="held-out digits, 32x32, normalized, with their labels");

# %%
model = GoogLeNet(num_classes=10, in_channels=1, width=WIDTH, input_size=32, seed=0)
aux_parameters = model.aux1.num_parameters() + model.aux2.num_parameters()
print(f"GoogLeNet, width {WIDTH:g}: {model.num_parameters():,} parameters "
      f"({model.num_parameters() - aux_parameters:,} on the main path, {aux_parameters:,} in the two auxiliary heads)")
print("main path:", " -> ".join(model.layer_names))

# %% [markdown]
# The same network drawn from its modules (`googlenet.diagram.draw_googlenet`, as in lesson 6):
# each box a layer with its kernel and filters, each Inception module with its six widths (here
# `WIDTH` times the paper's), its output size for these 32x32 digits on the right, the two
# auxiliary classifiers beside the modules they read.

# %%
stack_figure = draw_googlenet(model)

# %% [markdown]
# ## A forward pass
#
# In training mode the model returns a `GoogLeNetOutput`, three sets of logits: the main
# classifier's and those of the two auxiliary classifiers, which read the outputs of 4a and 4d.
# In evaluation mode (`model.eval()`) the auxiliary heads are not run and only the main logits
# come back.

# %%
x = Tensor(images)
out = model(x)
for name, logits in zip(GoogLeNetOutput._fields, out):
    print(f"training mode, {name:<6}: {tuple(logits.shape)}")
model.eval()
eval_logits = model(x)
model.train()
print(f"eval mode: {type(eval_logits).__name__} of shape {tuple(eval_logits.shape)}")

# %% [markdown]
# ## The first feature maps and filters
#
# `model.layer_names` lists the main path's layers in order, and running them one after another
# is exactly the model's forward (minus the auxiliary heads). Here are the first digit and what
# the first layers make of it: conv1 (7x7, stride 2: 16x16 maps) and conv2 (after the pool,
# the LRN and the 1x1 reduction: 8x8 maps). Each map is scaled to black..white on its own.

# %%
first = [getattr(model, name) for name in model.layer_names[:5]]
maps = dict(zip(model.layer_names[:5], layer_outputs(first, Tensor(images[:1]))))
print({name: m.shape[1:] for name, m in maps.items()})
viz.image_grid(images[:1], [f"digit {labels[0]}"], title="the input")
viz.image_grid(maps["conv1"][0], [f"conv1 #{i}" for i in range(len(maps["conv1"][0]))],
               title="what conv1 makes of it: every map, 16x16 (after the ReLU)")
viz.image_grid(maps["conv2"][0][:16], [f"conv2 #{i}" for i in range(16)],
               title="conv2's first 16 maps, 8x8 (after pool, LRN, 1x1 reduction, 3x3 and ReLU)");

# %% [markdown]
# The first layer's filters, 7x7 each: at initialization, uniform noise (Caffe's "xavier":
# uniform in $\pm\sqrt{3/\text{fan-in}}$). We will look at them again after training.

# %%
filters_before = model.conv1.weight.numpy().copy()
viz.image_grid(filters_before, [f"#{i}" for i in range(len(filters_before))],
               title="conv1's 7x7 filters at initialization (Caffe xavier: uniform noise)");

# %% [markdown]
# ## The paper's loss
#
# Section 5 of the paper: "During training, their loss gets added to the total loss of the
# network with a discount weight (the losses of the auxiliary classifiers were weighted by
# 0.3)". With $\text{CE}$ the cross-entropy of a head's logits and the labels,
#
# $$L = \text{CE}(\text{main}) + 0.3\,\text{CE}(\text{aux}_1) + 0.3\,\text{CE}(\text{aux}_2).$$
#
# At evaluation the auxiliary heads are dropped and only the main classifier counts.
#
# **Exercise 7.1: the paper's loss.** Given the three logits (Tensors) and the labels,
# return the loss as a Tensor (use `F.cross_entropy(logits, labels)`), so that `backward`
# reaches all three heads. Checked, value and gradients, against a reference that equals the
# package's `googlenet_loss`.
#
# (Stuck after a wrong verdict? `check.hint("7.1")` prints the rule; `check.progress(7)`
# shows where this lesson's exercises stand.)

# %%
def paper_loss(logits, aux1, aux2, labels):
    ### BEGIN SOLUTION exercise 7.1: the paper's loss
    total = F.cross_entropy(logits, labels)
    for head in (aux1, aux2):
        total = total + 0.3 * F.cross_entropy(head, labels)
    return total
    ### END SOLUTION


check.exercise("7.1", paper_loss)

# %% [markdown]
# The package's `googlenet_loss(output, labels)` takes the model's output as it comes: a
# `GoogLeNetOutput` in training mode, plain logits in eval mode (then the main loss alone).
# At initialization every head is close to a uniform guess, $\ln 10 \approx 2.30$ each, so the
# paper's loss starts near $1.6 \ln 10$:

# %%
main_loss = F.cross_entropy(out.logits, labels).item()
total_loss = googlenet_loss(out, labels).item()
print(f"main cross-entropy {main_loss:.4f} (ln 10 = {math.log(10):.4f}); paper's loss {total_loss:.4f} "
      f"(1.6 ln 10 = {1.6 * math.log(10):.4f}); eval mode: {googlenet_loss(eval_logits, labels).item():.4f}")
try:
    print(f"your paper_loss: {paper_loss(out.logits, out.aux1, out.aux2, labels).item():.4f}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## The whole network's gradient check
#
# Lesson 2 checked one op at a time against central differences. The same can be done for
# the whole network: in float64, with the dropout masks fixed (every dropout layer is reseeded
# before each evaluation, so the network is one fixed function of its parameters). First the
# cheapest check there is: one random direction $v$ through *all* the parameters and the input
# at once, where the analytic $\sum_t \langle \nabla_t L, v_t\rangle$ must equal
# $\big(L(p + \epsilon v) - L(p - \epsilon v)\big) / 2\epsilon$. Two evaluations of the network.

# %%
check_model, check_x, check_labels = checkable_problem(width=1 / 8, input_size=32, batch_size=2)
check_loss = fixed_masks_loss(check_model, check_x, check_labels)
directional = directional_check(check_loss, list(check_model.parameters()) + [check_x])
print(f"{check_model.num_parameters():,} parameters in float64, training mode, both auxiliary heads")
print(directional)

# %% [markdown]
# One direction can miss an error that happens to be orthogonal to it, and says nothing about
# *where* an error is. `googlenet.gradcheck.gradcheck_googlenet` also perturbs entries of
# every weight and bias, one at a time, and reports the worst relative error per layer. Here
# one entry of each (`elements=1`: the one with the largest gradient), two evaluations of the
# network per entry, a few seconds; `python -m googlenet gradcheck` checks three of each.

# %%
report = gradcheck_googlenet(width=1 / 8, elements=1, raise_on_failure=False)
print(report.description)
print(f"{len(report.layers)} layers checked; largest relative error {report.max_rel_error:.1e} "
      f"in {max(report.layers, key=lambda e: e.max_rel_error).layer}; passed: {report.passed}")
fig, ax = plt.subplots(figsize=(11, 3.4))
plot_gradcheck(ax, report, title="whole-network gradient check, float64: the worst relative error of each "
                                 "layer (input to output, then the auxiliary heads and the input image)")
fig.tight_layout()

# %% [markdown]
# Does it catch a bug? We break the LRN's backward on purpose, making its gradient 1% too large,
# and check again. The LRNs sit after pool1 and after conv2: only what lies *below* them
# (conv1, conv2_reduce, conv2, and the input image itself) receives its gradient through a
# broken LRN, and that is exactly what the check points at.

# %%
lrn = F.local_response_norm.op
right_backward = lrn.backward
lrn.backward = lambda gy, cache: (right_backward(gy, cache)[0] * 1.01,)
try:
    broken = gradcheck_googlenet(width=1 / 8, elements=1, raise_on_failure=False)
finally:
    lrn.backward = right_backward
failing = [e.layer for e in broken.layers if e.max_rel_error > broken.tolerance]
print(f"with the broken LRN: passed {broken.passed}; the layers that fail: {failing}")

# %% [markdown]
# ## Why it sits at chance: the signal fades with depth
#
# Trained as in the paper, without batch normalization (published a few months later), this
# network sits at chance for the first epochs. Look at what the untrained network answers:

# %%
model.eval()
with no_grad():
    answers = model(x).numpy().argmax(axis=1)
model.train()
print("predicted class of each of the", len(answers), "images:", answers)

# %% [markdown]
# The same answer for every image. To see why, we measure for each layer how much its output
# differs *between images*: the **spread**, the standard deviation over the batch of each unit
# (each channel at each position), averaged over the units,
#
# $$s_\ell = \frac{1}{U} \sum_{u=1}^{U} \operatorname{std}_n\big(a^{(\ell)}_{n,u}\big).$$
#
# The plain standard deviation of all the numbers of a layer is not the same thing: it also
# counts what every image shares (the bias 0.2 of every convolution, passed on through the
# ReLUs, makes a pattern that is the same for every input).
#
# **Exercise 7.2: the spread of each layer.** Given a list of layers and a batch `x` (a
# Tensor), run `x` through the layers one after another and return a NumPy array with the
# spread of each layer's output (`tensor.numpy()` gives the values). Checked on two small
# networks made of minigrad layers.

# %%
def activation_spread(layers, x):
    ### BEGIN SOLUTION exercise 7.2: activation spread per layer
    spreads = []
    for layer in layers:
        x = layer(x)
        spreads.append(x.numpy().std(axis=0).mean())
    return numpy.array(spreads)
    ### END SOLUTION


check.exercise("7.2", activation_spread)

# %% [markdown]
# The spread of every layer of our GoogLeNet (in eval mode, so that dropout is off), beside the
# plain standard deviation. For comparison, the same network with He et al.'s initialization
# (normal, $\sigma = \sqrt{2/\text{fan-in}}$, 2015): a ReLU zeroes half of its input, and He's
# factor 2 makes up for it, where Caffe's "xavier" (variance $1/\text{fan-in}$) does not.

# %%
def he_initialized(seed=0):
    """The same GoogLeNet, every convolution and linear weight redrawn with He's initialization."""
    network = GoogLeNet(num_classes=10, in_channels=1, width=WIDTH, input_size=32, seed=seed)
    rng = numpy.random.default_rng(seed)
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.weight.data = nn.init.he_normal(module.weight.shape, rng)
    return network


def main_path(network):
    return [getattr(network, name) for name in network.layer_names]


model.eval()
spread_xavier = activation_spread_reference(main_path(model), x)
std_xavier = numpy.array([o.std() for o in layer_outputs(main_path(model), x)])
model.train()
spread_he = activation_spread_reference(main_path(he_initialized().eval()), x)
names = model.layer_names
at = {name: i for i, name in enumerate(names)}
for name in ("conv1", "inception3a", "inception4a", "inception4e", "inception5b", "linear"):
    i = at[name]
    print(f"{name:<12} spread {spread_xavier[i]:.4f} (std of everything {std_xavier[i]:.3f})   "
          f"He init: spread {spread_he[i]:.4f}")
print(f"from conv1 to the logits the spread shrinks {spread_xavier[0] / spread_xavier[-1]:.0f} times "
      f"(He: {spread_he[0] / spread_he[-1]:.1f} times); the std of everything only "
      f"{std_xavier[0] / std_xavier[-1]:.1f} times")

fig, ax = plt.subplots(figsize=(10, 3))
ax.semilogy(spread_xavier, marker="o", label="spread, Caffe xavier (the paper's)")
ax.semilogy(std_xavier, marker=".", linestyle="--", label="std of everything, Caffe xavier")
ax.semilogy(spread_he, marker="o", label="spread, He")
ax.set_xticks(range(len(names)), names, rotation=70, fontsize=8)
ax.set_ylabel("standard deviation")
ax.set_title("how much each layer's output differs between images, untrained (eval mode)", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# With $\operatorname{Var}(w) = 1/\text{fan-in}$ a convolution passes on the second moment of
# its input, and the ReLU after it then zeroes about half of it; nothing gives that back, and
# the longest path has more than twenty convolutions in a row. What reaches the classifier
# barely depends on the image, while the part that every image shares (the biases) goes
# through: the plain standard deviation falls far less (the cell above printed both factors).
# So every image gets the same logits, up to a few thousandths, and the same answer. Until training has grown the weights enough for
# the image to make a difference at the top, the loss cannot fall much.
#
# Your `activation_spread` on the same network:

# %%
try:
    model.eval()
    yours = activation_spread(main_path(model), x)
    print("yours equals the lesson's:", numpy.allclose(yours, spread_xavier, rtol=1e-6))
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")
finally:
    model.train()

# %% [markdown]
# ## What the auxiliary heads add
#
# The paper's reason for the auxiliary classifiers (section 5): "given the relatively large
# depth of the network, the ability to propagate gradients back through all the layers in an
# effective manner was a concern". We can measure it: the gradient that reaches the lowest
# layers with the main loss alone, and with the paper's loss, in training mode, with the same
# dropout masks for both (`reseed_dropouts`).
#
# **Exercise 7.3: the norm of a gradient.** The length of the gradient of a list of
# parameters, taken as one long vector:
# $\lVert g \rVert = \sqrt{\sum_{p} \sum_i g_{p,i}^2}$ over every entry $i$ of every
# parameter $p$. A parameter that no loss reached has `grad` None: it adds nothing.

# %%
def gradient_norm(parameters):
    ### BEGIN SOLUTION exercise 7.3: gradient norm
    squares = 0.0
    for p in parameters:
        if p.grad is not None:
            squares += float((p.grad.astype(numpy.float64) ** 2).sum())
    return math.sqrt(squares)
    ### END SOLUTION


check.exercise("7.3", gradient_norm)

# %%
LOW = ("conv1", "conv2_reduce", "conv2")


def gradient_norms(loss_of_output):
    """{layer: gradient norm of its weight and bias} after one backward of the given loss."""
    reseed_dropouts(model)
    model.zero_grad()
    loss_of_output(model(x)).backward()
    return {name: gradient_norm_reference(getattr(model, name).parameters()) for name in LOW + ("linear",)}


main_only = gradient_norms(lambda output: F.cross_entropy(output.logits, labels))
with_aux = gradient_norms(lambda output: googlenet_loss(output, labels))
for name in LOW + ("linear",):
    print(f"{name:<13} main loss alone {main_only[name]:.4f}   paper's loss {with_aux[name]:.4f}   "
          f"x{with_aux[name] / main_only[name]:.2f}")

# %% [markdown]
# Two things to read there: the gradient of the linear classifier is many times that of conv1
# (the gradient fades on its way down, as the signal faded on its way up), and the auxiliary
# losses multiply what reaches the lowest layers. Per row of Table 1
# (`googlenet.gradcheck.auxiliary_gradients`: the norm of the main loss's gradient and of what
# the auxiliary losses add to it), rows above 4d get nothing from them:

# %%
rows = auxiliary_gradients(model, x, labels)
fig, ax = plt.subplots(figsize=(10, 2.8))
positions = numpy.arange(len(rows))
ax.bar(positions - 0.2, [main for _, main, _ in rows], 0.4, label="main loss")
ax.bar(positions + 0.2, [added for _, _, added in rows], 0.4, label="added by the auxiliary losses")
ax.set_xticks(positions, [row for row, _, _ in rows])
ax.set_yscale("log")
ax.set_ylabel("gradient norm")
ax.set_title("gradient per row of Table 1: from the main loss, and what the auxiliary losses add", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
added_by_row = {row: added for row, _, added in rows}
print("rows with nothing added:", [row for row, added in added_by_row.items() if added == 0])

# %% [markdown]
# Your `gradient_norm` on conv1's weight and bias, after one more backward of the paper's loss:

# %%
try:
    gradients_now = gradient_norms(lambda output: googlenet_loss(output, labels))
    print(f"yours {gradient_norm(model.conv1.parameters()):.6f}, the lesson's {gradients_now['conv1']:.6f}")
except NotImplementedError as missing:
    print(f"not implemented yet: {missing}")

# %% [markdown]
# ## Training
#
# `googlenet.train.Trainer` runs the paper's recipe: SGD with momentum 0.9, the paper's
# learning-rate schedule, the paper's loss, a running average of the weights for evaluation,
# and one evaluation of the held-out images per epoch. Its network is built with the same
# seed and options as ours, so it starts from the very weights we studied. After every step we
# note the loss of that step and, every few steps, the spread of three layers on a fixed batch
# of held-out images. Seven epochs of 45 steps (batch 32) is about the shortest run in which
# the signal gets through and the held-out accuracy passes 50% (after six it is just under):
# the wait at chance is the point, and it cannot be shortened without changing the recipe.
# (With `MINIGRAD_FAST=1` this is a handful of steps on a few images: too few to learn
# anything, but every piece runs.)

# %%
epochs = pick(7, 2)
data = (train_set, held_out) if not fast() else (train_set.subset(numpy.arange(64)), held_out.subset(numpy.arange(40)))
workdir = tempfile.TemporaryDirectory()
config = TrainConfig(width=WIDTH, epochs=epochs, batch_size=pick(32, 8), out=workdir.name)
trainer = Trainer(config, data=data, progress=False)
same_start = all(numpy.array_equal(a, b) for a, b in zip(trainer.model.state_dict().values(),
                                                           model.state_dict().values()))
print(f"{len(trainer.train_loader)} steps per epoch, {epochs} epochs; starts from our weights: {same_start}")

probe = Tensor(images)
WATCH = ("conv1", "inception4a", "linear")
log = {"step": [], "loss": [], "spread_step": [], **{name: [] for name in WATCH}}
seen = {"loss": 0.0, "seen": 0}


def after_step(t):
    """Called by the trainer after each step: the step's loss, and now and then the spreads."""
    if t.sums["seen"] < seen["seen"]:                    # a new epoch restarted the sums
        seen.update(loss=0.0, seen=0)
    step_loss = (t.sums["loss"] - seen["loss"]) / (t.sums["seen"] - seen["seen"])
    seen.update(loss=t.sums["loss"], seen=t.sums["seen"])
    step = len(log["loss"]) + 1
    log["step"].append(step)
    log["loss"].append(step_loss)
    if step % pick(10, 2) == 0:
        t.model.eval()
        spreads = activation_spread_reference(main_path(t.model), probe)
        t.model.train()
        log["spread_step"].append(step)
        for name in WATCH:
            log[name].append(spreads[at[name]])


history = trainer.run(after_step=after_step)

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
left.plot(log["step"], log["loss"], linewidth=1)
left.axhline(1.6 * math.log(10), color="gray", linestyle="--", linewidth=1, label="1.6 ln 10: chance")
left.set_xlabel("step")
left.set_title("paper's loss of each step")
left.legend(fontsize=8)
for name in WATCH:
    right.semilogy(log["spread_step"], log[name], marker=".", label=name)
right.set_xlabel("step")
right.set_title("spread on held-out images")
right.legend(fontsize=8)
fig.tight_layout()
viz.plot_curves([{k: row[k] for k in ("epoch", "train_main_loss", "val_loss", "train_accuracy", "val_accuracy")}
                 for row in history], title=f"the {epochs} epochs: main classifier's loss and accuracy");

# %% [markdown]
# Read the two plots together (without `MINIGRAD_FAST`): as long as the spread at the logits
# stays at a few thousandths, the loss stays at chance; once training has grown it, the loss
# falls and the held-out accuracy rises. The epoch curves compare the main classifier's loss on
# both sides (`train_main_loss`: the paper's total, `train_loss`, also counts the auxiliary
# heads). Batch normalization (Ioffe and Szegedy, 2015) was made for this wait: it rescales
# every layer's output during training.

# %%
final = history[-1]
print(f"after {final['epoch']} epochs: held-out accuracy {final['val_accuracy']:.3f}, "
      f"held-out loss {final['val_loss']:.3f}, training loss {final['train_loss']:.3f}")
trainer.model.eval()
spread_after = activation_spread_reference(main_path(trainer.model), probe)
trainer.model.train()
print(f"spread at the logits: {spread_xavier[-1]:.4f} at initialization, {spread_after[-1]:.4f} after training")
filters_after = trainer.model.conv1.weight.numpy()
viz.image_grid(filters_after, [f"#{i}" for i in range(len(filters_after))],
               title=f"conv1's filters after {final['epoch']} epochs");
workdir.cleanup()

# %% [markdown]
# ## Check yourself
#
# The claims of this lesson, asserted: the three outputs and their shapes; the untrained
# network's near-uniform loss and single answer; the whole-network gradient check passing, and
# failing exactly below a broken LRN; the spread fading through the depth with the paper's
# initialization, not with He's; the auxiliary losses adding gradient to the low layers and
# nothing above 4d; and a training run that starts from our weights. (Training long enough to
# see the accuracy rise is only asserted without `MINIGRAD_FAST`.)

# %%
assert isinstance(out, GoogLeNetOutput) and all(tuple(t.shape) == (32, 10) for t in out)
assert tuple(eval_logits.shape) == (32, 10) and not isinstance(eval_logits, GoogLeNetOutput)
assert maps["conv1"].shape == (1, model.conv1.out_channels, 16, 16)
assert abs(main_loss - math.log(10)) < 0.2
assert abs(total_loss - (main_loss + 0.3 * (F.cross_entropy(out.aux1, labels).item()
                                            + F.cross_entropy(out.aux2, labels).item()))) < 1e-5

assert directional.passed and report.passed and report.max_rel_error < 1e-6
assert not broken.passed and set(failing) == {"conv1", "conv2_reduce", "conv2", "input"}
assert not {"linear", "inception3a.branch1x1.conv", "aux1.classifier"} & set(failing)

assert len(set(answers)) == 1
assert spread_xavier[-1] < spread_xavier[0] / 50 and spread_xavier[-1] < 0.01
assert std_xavier[-1] > 10 * spread_xavier[-1] and std_xavier[-1] > std_xavier[0] / 5
assert spread_he[-1] > 10 * spread_xavier[-1]

for name in LOW:
    assert with_aux[name] > 1.5 * main_only[name], name
assert with_aux["linear"] == main_only["linear"]
assert main_only["linear"] > 10 * main_only["conv1"]
assert all(added_by_row[row] == 0 for row in ("4e", "5a", "5b", "linear"))
assert all(added_by_row[row] > 0 for row in ("conv1", "conv2", "3a", "3b", "4a", "4b", "4c", "4d"))

assert same_start and len(history) == epochs and len(log["loss"]) == epochs * len(trainer.train_loader)
assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]) for row in history)
assert abs(numpy.mean(log["loss"][:5]) - 1.6 * math.log(10)) < 0.4
if not fast():
    assert final["val_accuracy"] > 0.5 and spread_after[-1] > 10 * spread_xavier[-1]
print("all claims hold")

# %% [markdown]
# ## Questions
#
# **7.a** The whole-network check passed with relative errors around $10^{-9}$ in float64. Why
# would the same check fail in float32, even with a correct backward?
#
# ### BEGIN ANSWER question 7.a
# A central difference divides a difference of two losses by $2\epsilon$. In float32 each loss
# carries a rounding error of about $10^{-7}$ of its value (more, after the sums of a whole
# network); divided by $2\epsilon = 2 \cdot 10^{-6}$ that is an error of order $10^{-1}$ in the
# estimate, far above the tolerance. A larger $\epsilon$ trades it for truncation error, which
# grows with $\epsilon^2$ and with the network's curvature (lesson 2). float64's $10^{-16}$
# leaves room for both; that is why the check refuses float32.
# ### END ANSWER
#
# **7.b** At initialization the spread at the logits is a few thousandths, while the plain
# standard deviation of the last layers is much larger. Where does that larger part come
# from, and why does it not help the network tell the digits apart?
#
# ### BEGIN ANSWER question 7.b
# From what every image shares: each convolution adds its bias (0.2), the ReLUs pass it on, and
# the maps keep a pattern (borders, padding) that is the same whatever the input. It varies
# across units and channels, so the standard deviation of all the numbers is large, but it is
# the same for every image: it moves every image's logits by the same amount, and a
# classifier can only use what differs between images, the spread.
# ### END ANSWER
#
# **7.c** Why do the auxiliary losses add exactly nothing to the gradients of 4e, 5a, 5b and
# the final linear layer?
#
# ### BEGIN ANSWER question 7.c
# The auxiliary classifiers read the outputs of 4a and 4d. Their losses are functions of the
# layers below those points and of their own heads only: 4e, 5a, 5b and the linear layer are
# not in their graphs, so backward sends them nothing from those losses (not a small gradient:
# none). Only the layers below 4d get the extra signal, which is what the paper added them for.
# ### END ANSWER

# %% [markdown]
# ## Your progress
#
# Where this lesson's exercises stand in this session (`check.progress()` lists the whole
# course's).

# %%
check.progress(7)
