"""Optimizers, learning-rate schedules and weight averaging.

An optimizer holds a list of parameters (Tensors with ``requires_grad``) and, in
``step()``, moves each one against the gradient that ``backward()`` left in
``.grad``. Its learning rate is a plain attribute, ``optimizer.lr``, that a
schedule sets before each step:

    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
    schedule = PaperSchedule(base_lr=0.01)
    for epoch in range(epochs):
        for step, (x, y) in enumerate(batches):
            optimizer.lr = schedule(epoch + step / len(batches))
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()

Weight decay (an L2 penalty wd/2 * |w|^2, gradient wd * w) is applied to weights
only, not to biases (any parameter with one axis), as in the released Caffe
GoogLeNet whose biases have ``decay_mult: 0``.

The update rules work on whichever array module holds the parameters (NumPy or
CuPy) and change parameters in place. ``state_dict()`` returns NumPy arrays, so a
checkpoint written on a GPU loads on a CPU.

Flat buffers. When the parameters given are exactly those of one ``FlatParameters``
(``model.flatten_parameters()`` before making the optimizer; ``minigrad/nn/flat.py``),
the optimizer keeps its state in flat buffers too (one "velocity" array for all the
parameters, each parameter's velocity a view) and a step is one pass of the same update
rule over the whole buffers: a few whole-array expressions, the same arithmetic element by
element, so the same results bit for bit as the step parameter by parameter.
``update_range(start, stop)`` is that pass over the elements start:stop only; the rules
are element-wise, so disjoint ranges may be updated in any order, or at once. The numbers
a rule reads (the learning rate, Adam's bias corrections) may be Python floats or 0-d
arrays of the parameters' dtype on their device, so that a captured step can read them
from device memory. Without flat buffers every parameter that has a gradient is updated
on its own, as before; with them every parameter is (a gradient nothing reached is zeros).

Block by block. On the CPU a pass over the flat buffers goes through them in blocks of
``UPDATE_BLOCK`` elements (``blocks``): the rule's several expressions run on one block
while it is still in the core's cache, and their intermediate results go into one small
scratch array instead of new arrays the size of the buffers (a new array of many megabytes
comes fresh from the operating system, page by page, at every step: that cost more than the
arithmetic). The same expressions in the same order on every element: the same bits.
"""
import contextlib
import math

import numpy

from . import backend, parallel
from .nn.flat import flat_buffer_of

UPDATE_BLOCK = 2 ** 18      # elements per block of a pass over flat buffers (1 MiB in float32)


def blocks(start, stop, like):
    """(lo, hi, scratch) for consecutive blocks lo:hi that cover start:stop, each with a
    scratch array of hi - lo elements of ``like``'s dtype (the same memory for every block).
    On the CPU blocks of ``UPDATE_BLOCK`` elements, small enough to stay in a core's cache;
    on a GPU one block (each expression is a kernel launch there: few and large is best)."""
    xp = backend.get_array_module(like)
    size = UPDATE_BLOCK if xp is numpy else max(stop - start, 1)
    scratch = xp.empty(min(size, max(stop - start, 0)), dtype=like.dtype)
    for lo in range(start, stop, size):
        hi = min(lo + size, stop)
        yield lo, hi, scratch[:hi - lo]


class Optimizer:
    """What every optimizer shares: the parameter list, ``lr``, a step count and state.

    ``self.state`` maps a buffer name ("velocity", "m", ...) to one array per
    parameter, created (as zeros) the first time a step needs it. ``self.flat`` is the
    ``FlatParameters`` the parameters fill exactly, or None (see the module docstring);
    with one, ``self.flat_state`` maps each buffer name to its flat array, whose views are
    the arrays of ``self.state``.
    """
    buffer_names = ()

    def __init__(self, params, lr, weight_decay=0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if lr <= 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: need lr > 0 and weight_decay >= 0, "
                             f"got lr={lr}, weight_decay={weight_decay}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.steps = 0
        self.flat = flat_buffer_of(self.params)
        self.flat_state = {}
        self.state = {name: [None] * len(self.params) for name in self.buffer_names}

    def zero_grad(self):
        if self.flat is not None:
            self.flat.zero_grad()
            return
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient (with flat buffers: every parameter,
        in one pass over the buffers)."""
        self.steps += 1
        self.update_parameters()

    def update_parameters(self):
        """The arrays' share of ``step`` (which also counts it): move every parameter that
        has a gradient (with flat buffers: every parameter, in one pass over the buffers).
        ``lr`` may be a number or a 0-d array of the parameters' dtype on their device,
        which a replayed CUDA graph reads there (minigrad/cuda_graph.py)."""
        if self.flat is not None:
            self.flat.gather()
            self.create_flat_state()
            numbers = (2 + len(self.flat_state)) * self.flat.size      # weights, gradients, state
            parallel.for_chunks(f"{type(self).__name__}.step", self.flat.size, self.update_range, numbers,
                                backend.get_array_module(self.flat.data))
            return
        for index, p in enumerate(self.params):
            if p.grad is None:
                continue
            self.update(p.data, self.decayed_gradient(p), self.buffers_of(index, p.data))

    def decayed_gradient(self, p):
        """dL/dw plus the weight-decay term wd * w (weights only, not biases)."""
        if self.weight_decay and p.ndim > 1:
            return p.grad + self.weight_decay * p.data
        return p.grad

    def buffers_of(self, index, like):
        """{name: the ``name`` buffer of parameter ``index``}, zeros the first time."""
        buffers = {}
        for name, arrays in self.state.items():
            if arrays[index] is None:
                arrays[index] = backend.get_array_module(like).zeros_like(like)
            buffers[name] = arrays[index]
        return buffers

    def update(self, w, g, buffers, scratch=None):
        """The update rule, in place on the arrays ``w`` and ``buffers`` (a dict by buffer
        name), given the gradient ``g`` (weight decay included): one parameter's, or a block
        of the flat buffers. ``scratch``, when given, is an array of ``w``'s shape (it may be
        ``g`` itself) that the rule may overwrite with its intermediate results instead of
        making new arrays."""
        raise NotImplementedError

    # --- flat buffers -----------------------------------------------------------------------
    def create_flat_state(self):
        """The flat state buffers (zeros), made at the first step; each parameter's state is
        a view of them."""
        if self.flat_state or not self.state:
            return
        xp = backend.get_array_module(self.flat.data)
        for name in self.state:
            self.flat_state[name] = xp.zeros_like(self.flat.data)
            self.state[name] = [self.flat.view_of(self.flat_state[name], p) for p in self.params]

    def update_range(self, start, stop):
        """Update the flat elements start:stop (after ``gather`` and ``create_flat_state``),
        block by block (``blocks``): the part that holds weights with weight decay, the rest
        without. Every element is updated on its own, so ``step`` splits the buffers into
        ranges over the threads (``minigrad.parallel``) with the same results as one range."""
        flat = self.flat
        xp = backend.get_array_module(flat.data)
        for block_start, block_stop, scratch in blocks(start, stop, flat.data):
            boundary = min(max(flat.weights.stop, block_start), block_stop)
            for lo, hi, decay in ((block_start, boundary, self.weight_decay), (boundary, block_stop, 0.0)):
                if lo >= hi:
                    continue
                w, g, room = flat.data[lo:hi], flat.grad[lo:hi], scratch[:hi - lo]
                if decay:       # g + decay * w, as decayed_gradient: the same arithmetic
                    g = xp.add(g, xp.multiply(w, decay, out=room), out=room)
                self.update(w, g, {name: array[lo:hi] for name, array in self.flat_state.items()}, room)

    # --- checkpoints --------------------------------------------------------------
    def state_dict(self):
        """A flat dict of NumPy arrays: ``steps``, ``lr`` and ``<buffer>.<index>``."""
        state = {"steps": numpy.array(self.steps, dtype=numpy.int64),
                 "lr": numpy.array(self.lr, dtype=numpy.float64)}
        for name, buffers in self.state.items():
            for index, array in enumerate(buffers):
                if array is not None:
                    state[f"{name}.{index}"] = backend.to_numpy(array).copy()
        return state

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned; buffers move to each parameter's device
        (with flat buffers: into the flat state, zeros for a parameter that has no entry)."""
        name = type(self).__name__
        for key in ("steps", "lr"):
            if key not in state:
                raise ValueError(f"{name}.load_state_dict: missing {key!r}")
        buffers = {name_: [None] * len(self.params) for name_ in self.buffer_names}
        for key, array in state.items():
            if key in ("steps", "lr"):
                continue
            buffer_name, _, index = key.rpartition(".")
            if buffer_name not in buffers or not index.isdigit() or int(index) >= len(self.params):
                raise ValueError(f"{name}.load_state_dict: unexpected entry {key!r} "
                                 f"(this optimizer has {len(self.params)} parameters and "
                                 f"buffers {list(self.buffer_names)})")
            param = self.params[int(index)]
            if tuple(array.shape) != tuple(param.shape):
                raise ValueError(f"{name}.load_state_dict: {key!r} has shape {tuple(array.shape)}, "
                                 f"parameter {index} has shape {tuple(param.shape)}")
            buffers[buffer_name][int(index)] = backend.to_device(
                numpy.array(array, dtype=param.dtype), param.device)
        self.steps = int(state["steps"])
        self.lr = float(state["lr"])
        if self.flat is None:
            self.state = buffers
            return
        self.flat_state = {}
        self.create_flat_state()
        for name_, arrays in self.state.items():
            for view, loaded in zip(arrays, buffers[name_]):
                if loaded is not None:
                    view[...] = loaded


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (the paper's: 0.9).

        v <- momentum * v + g            (g includes weight decay)
        w <- w - lr * v                  (plain momentum)
        w <- w - lr * (g + momentum * v) (Nesterov, as Sutskever et al. 2013 rewrite it)

    This is PyTorch's form. Caffe writes v <- momentum * v + lr * g, w <- w - v;
    the two agree while lr is constant and differ only in how a change of lr
    reaches the velocity already built up.
    """
    buffer_names = ("velocity",)

    def __init__(self, params, lr=0.01, momentum=0.9, weight_decay=0.0, nesterov=False):
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        if momentum == 0:
            self.buffer_names = ()
        super().__init__(params, lr, weight_decay)

    def update(self, w, g, buffers, scratch=None):
        xp = backend.get_array_module(w)
        if self.momentum == 0:
            w -= xp.multiply(g, self.lr, out=scratch)
            return
        v = buffers["velocity"]
        v *= self.momentum
        v += g
        step = xp.add(g, self.momentum * v, out=scratch) if self.nesterov else v
        w -= xp.multiply(step, self.lr, out=scratch)


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015): a step scaled by running moments of the gradient.

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t)          v_hat = v / (1 - b2^t)     (bias correction)
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    t is the optimizer's step count: a parameter that gets no gradient in some steps
    (not the case in any model here) is bias-corrected as if it had been updated.
    """
    buffer_names = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.beta1, self.beta2 = map(float, betas)
        self.eps = float(eps)
        super().__init__(params, lr, weight_decay)

    def bias_corrections(self):
        """(1 - b1^t, 1 - b2^t) for the step count t."""
        return 1 - self.beta1 ** self.steps, 1 - self.beta2 ** self.steps

    def update(self, w, g, buffers, scratch=None):
        m, v = buffers["m"], buffers["v"]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        xp = backend.get_array_module(w)
        correction1, correction2 = self.bias_corrections()
        m_hat = m / correction1
        v_hat = v / correction2
        w -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)


# --- learning-rate schedules: lr = schedule(epoch), epoch may be fractional ----------
class StepSchedule:
    """lr(epoch) = base_lr * gamma ** floor(epoch / step_size)."""

    def __init__(self, base_lr, step_size, gamma=0.1):
        if step_size <= 0:
            raise ValueError(f"StepSchedule: step_size must be positive, got {step_size}")
        self.base_lr, self.step_size, self.gamma = base_lr, step_size, gamma

    def __call__(self, epoch):
        return self.base_lr * self.gamma ** math.floor(epoch / self.step_size)

    def __repr__(self):
        return f"{type(self).__name__}(base_lr={self.base_lr}, x{self.gamma} every {self.step_size} epochs)"


class PaperSchedule(StepSchedule):
    """The paper's schedule: "decreasing the learning rate by 4% every 8 epochs".

        lr(epoch) = base_lr * 0.96 ** floor(epoch / 8)
    """

    def __init__(self, base_lr):
        super().__init__(base_lr, step_size=8, gamma=0.96)


class CosineSchedule:
    """Half a cosine from base_lr down to min_lr over ``total_epochs``, after an
    optional linear warm-up (Loshchilov and Hutter, 2017, without restarts):

        lr(t) = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / T)) / 2

    During the warm-up the rate grows linearly, base_lr * (epoch + WARMUP_START) /
    warmup_epochs: the small offset gives the very first step a tiny rate instead of 0.
    """
    WARMUP_START = 1e-3

    def __init__(self, base_lr, total_epochs, min_lr=0.0, warmup_epochs=0.0):
        if total_epochs <= warmup_epochs:
            raise ValueError(f"CosineSchedule: total_epochs ({total_epochs}) must exceed "
                             f"warmup_epochs ({warmup_epochs})")
        self.base_lr, self.total_epochs = base_lr, total_epochs
        self.min_lr, self.warmup_epochs = min_lr, warmup_epochs

    def __call__(self, epoch):
        if epoch < self.warmup_epochs:
            return self.base_lr * (epoch + self.WARMUP_START) / self.warmup_epochs
        t = min(epoch - self.warmup_epochs, self.total_epochs - self.warmup_epochs)
        T = self.total_epochs - self.warmup_epochs
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t / T)) / 2

    def __repr__(self):
        return (f"CosineSchedule(base_lr={self.base_lr}, {self.total_epochs} epochs, "
                f"warm-up {self.warmup_epochs})")


class ConstantSchedule:
    """lr(epoch) = base_lr."""

    def __init__(self, base_lr):
        self.base_lr = base_lr

    def __call__(self, epoch):
        return self.base_lr

    def __repr__(self):
        return f"ConstantSchedule(base_lr={self.base_lr})"


SCHEDULES = ("paper", "step", "cosine", "constant")


def make_schedule(name, base_lr, total_epochs):
    """A schedule by name, for the command line; "step" divides lr by 10 after each third."""
    if name == "paper":
        return PaperSchedule(base_lr)
    if name == "step":
        return StepSchedule(base_lr, step_size=max(1, total_epochs // 3), gamma=0.1)
    if name == "cosine":
        return CosineSchedule(base_lr, total_epochs)
    if name == "constant":
        return ConstantSchedule(base_lr)
    raise ValueError(f"unknown schedule {name!r}: expected one of {', '.join(SCHEDULES)}")


# --- Polyak averaging ----------------------------------------------------------------
class WeightAverage:
    """A running average of the weights, to evaluate with (the paper: "Polyak
    averaging was used to create the final model used at inference time").

    ``decay=None`` is Polyak-Ruppert averaging, the plain mean of every iterate:
    avg <- avg + (w - avg) / n. A ``decay`` in (0, 1) is an exponential moving
    average, avg <- d * avg + (1 - d) * w, with d = min(decay, (1 + n) / (10 + n))
    so that the first few (poor) iterates are forgotten quickly (as TensorFlow's
    ExponentialMovingAverage does with ``num_updates``).
    """

    def __init__(self, params, decay=None):
        if decay is not None and not 0 < decay < 1:
            raise ValueError(f"WeightAverage: decay must be in (0, 1) or None, got {decay}")
        self.params = list(params)
        self.decay = decay
        self.updates = 0
        self.flat = flat_buffer_of(self.params)
        if self.flat is None:
            self.averages = [p.data.copy() for p in self.params]
        else:       # one flat average, each parameter's a view (as the optimizers' state)
            self.flat.gather()
            self.flat_average = self.flat.data.copy()
            self.averages = [self.flat.view_of(self.flat_average, p) for p in self.params]

    def update(self):
        """Fold the current weights into the average (call after each optimizer step)."""
        self.fold_in(self.count_update())

    def count_update(self):
        """The host's share of ``update``: count one more iterate and return the weight it
        gets in the average."""
        self.updates += 1
        n = self.updates
        if self.decay is None:
            return 1.0 / n
        return 1.0 - min(self.decay, (1.0 + n) / (10.0 + n))

    def fold_in(self, weight_of_new):
        """The arrays' share of ``update``: avg <- avg + weight_of_new * (w - avg) for every
        parameter; ``weight_of_new`` a number, or a 0-d array on the parameters' device (a
        replayed CUDA graph reads it there)."""
        if self.flat is not None:
            self.flat.gather()
            parallel.for_chunks("WeightAverage.update", self.flat.size,
                                lambda start, stop: self.fold_in_range(start, stop, weight_of_new),
                                2 * self.flat.size, backend.get_array_module(self.flat.data))
            return
        for average, p in zip(self.averages, self.params):
            average += weight_of_new * (p.data - average)

    def fold_in_range(self, start, stop, weight_of_new):
        """``fold_in`` on the flat elements start:stop, block by block (``blocks``), each
        element on its own: the same arithmetic, the same bits, for any split into ranges."""
        xp = backend.get_array_module(self.flat.data)
        for lo, hi, scratch in blocks(start, stop, self.flat.data):
            change = xp.subtract(self.flat.data[lo:hi], self.flat_average[lo:hi], out=scratch)
            change *= weight_of_new
            self.flat_average[lo:hi] += change

    @contextlib.contextmanager
    def swapped_in(self):
        """Inside ``with average.swapped_in():`` the parameters hold the averages (with flat
        buffers: copied into them, and the weights copied back after)."""
        if self.flat is not None:
            self.flat.gather()
            current = self.flat.data.copy()
            self.flat.data[...] = self.flat_average
            try:
                yield
            finally:
                self.flat.data[...] = current
            return
        current = [p.data for p in self.params]
        for p, average in zip(self.params, self.averages):
            p.data = average.copy()
        try:
            yield
        finally:
            for p, data in zip(self.params, current):
                p.data = data

    def state_dict(self):
        state = {"updates": numpy.array(self.updates, dtype=numpy.int64)}
        for index, average in enumerate(self.averages):
            state[f"average.{index}"] = backend.to_numpy(average).copy()
        return state

    def load_state_dict(self, state):
        for index, p in enumerate(self.params):
            key = f"average.{index}"
            if key not in state:
                raise ValueError(f"WeightAverage.load_state_dict: missing {key!r}")
            if tuple(state[key].shape) != tuple(p.shape):
                raise ValueError(f"WeightAverage.load_state_dict: {key!r} has shape "
                                 f"{tuple(state[key].shape)}, parameter {index} has {tuple(p.shape)}")
        self.updates = int(state["updates"])
        loaded = [backend.to_device(numpy.array(state[f"average.{i}"], dtype=p.dtype), p.device)
                  for i, p in enumerate(self.params)]
        if self.flat is None:
            self.averages = loaded
            return
        for average, values in zip(self.averages, loaded):
            average[...] = values
