"""A training step replayed as one CUDA graph: an optional layer above the eager step.

Why. Eagerly, every op of a step is a kernel launch that Python makes: a few microseconds
each, thousands per GoogLeNet step. At small batches the GPU finishes each kernel before
Python has launched the next, and waits (issue 20, on an H200: 2,000 small launches took
38.4 ms one by one and 1.9 ms replayed as one graph).

How. While a CUDA stream is being *captured*, the kernels launched on it are recorded into
a graph instead of being run; launching the graph then runs them all, with one call. A
replay runs exactly what was recorded: the same kernels on the same memory addresses with
the same arguments. So the step is written once, as plain eager code, and run three ways:

    warm-up   eagerly, once (compiles every kernel, makes the optimizer's buffers, fills
              the memory pool with the blocks the step needs)
    capture   the same code on static input arrays, recorded, not run
    replay    copy the batch into the static inputs, launch the graph, read the outputs
              (the same arrays every time: the next call overwrites them)

What a replayed step may contain follows from "the same arguments":
  - a number that changes from step to step (the learning rate, the weight average's
    weight, the dropout masks' counter) is read from device memory: a 0-d array that the
    host sets before each call (``TrainingStep`` does this for its own);
  - the host's bookkeeping (counting steps) happens outside the recorded function, at every
    call: recorded Python runs once, at capture;
  - nothing reads a value back to the host (``float(loss)``, ``.get()``, ``if x.sum() > 0``):
    that synchronizes, and a stream being captured cannot;
  - matrix products go through our own cuBLAS handle (minigrad/kernels/cuda/cublas.py):
    CuPy refuses cuBLAS calls during a capture;
  - memory comes from a pool of the graph's own, on a stream of its own (see
    minigrad/kernels/cuda/capture.py for why).
A batch of another shape (an epoch's last, short batch) runs eagerly; so does everything
on the CPU, and a step whose capture fails (a warning says why, once).

    step = capture_training_step(model, F.cross_entropy, optimizer)
    for x, y in batches:
        optimizer.lr = schedule(...)          # read by the replay from a device scalar
        loss = step(x, y)                     # a 0-d array on the GPU, overwritten next call
"""
import contextlib
import warnings

import numpy

from . import backend
from .autograd import Tensor
from .counter_random import CounterGenerator, make_counter, set_counter
from .nn import Dropout
from .optim import SGD


class CapturedStep:
    """``step(*inputs)``: ``function(*device_arrays)`` run eagerly or replayed from a CUDA graph.

    ``function`` takes the inputs as arrays on ``device`` and returns an array or a tuple of
    arrays; it must follow the module's rules to be captured. The inputs may be host (NumPy)
    or device arrays. The first ``warmup_steps`` calls run eagerly (on the graph's stream);
    the next call with the same shapes and dtypes captures ``function`` and replays it, as
    do the calls after it; inputs of other shapes or dtypes run eagerly.

    ``capture`` does the CUDA work (``minigrad.kernels.cuda.capture.StreamCapture``, made on
    the first call on a GPU; the tests give a stand-in): ``run(f)``, ``capture(f) ->
    recording``, ``replay(recording, refresh) -> outputs``, ``empty_like(x)`` and
    ``copy_into(static, x)``. ``runs`` counts the calls by how they ran ("eager", "warm-up",
    "capture", "replay"); ``not_capturable`` says why the capture failed, when it did.
    """

    def __init__(self, function, device, enabled=True, warmup_steps=1, capture=None):
        self.function, self.device = function, backend.parse_device(device)
        self.enabled, self.warmup_steps, self.capture = enabled, warmup_steps, capture
        self.signature = None           # shapes and dtypes of the captured inputs
        self.recording = self.static_inputs = None
        self.not_capturable = None
        self.runs = {"eager": 0, "warm-up": 0, "capture": 0, "replay": 0}

    def mode(self, inputs):
        """How a call with ``inputs`` runs: "eager", "warm-up", "capture" or "replay"."""
        on_cpu = self.device == "cpu" and self.capture is None
        if not self.enabled or on_cpu or self.not_capturable is not None:
            return "eager"
        if self.recording is not None:
            return "replay" if signature(inputs) == self.signature else "eager"
        if self.runs["warm-up"] < self.warmup_steps:
            return "warm-up"
        return "capture"

    def __call__(self, *inputs):
        mode = self.mode(inputs)
        if mode == "capture":
            mode = self.try_to_capture(inputs)
        self.runs[mode] += 1
        if mode == "eager":
            return self.function(*self.on_device(inputs))
        if mode == "warm-up":
            return self.cuda().run(lambda: self.function(*self.on_device(inputs)))
        return self.capture.replay(self.recording, lambda: self.refresh(inputs))

    def on_device(self, inputs):
        return [backend.to_device(x, self.device) for x in inputs]

    def cuda(self):
        if self.capture is None:
            from .kernels.cuda.capture import StreamCapture
            self.capture = StreamCapture(int(self.device.split(":")[1]))
        return self.capture

    def try_to_capture(self, inputs):
        """Capture ``function`` on static arrays of the inputs' shapes: "replay" (this call
        then replays it), or "eager" with a warning when the capture fails."""
        capture = self.cuda()
        statics = [capture.empty_like(x) for x in inputs]
        try:
            recording = capture.capture(lambda: self.function(*statics))
        except Exception as error:
            self.not_capturable = f"{type(error).__name__}: {error}"
            warnings.warn(f"the step cannot be captured as a CUDA graph ({self.not_capturable}); "
                          f"it runs eagerly", RuntimeWarning, stacklevel=3)
            return "eager"
        self.runs["capture"] += 1
        self.recording, self.static_inputs, self.signature = recording, statics, signature(inputs)
        return "replay"

    def refresh(self, inputs):
        """Copy this call's inputs into the static arrays the graph reads."""
        for static, value in zip(self.static_inputs, inputs):
            self.capture.copy_into(static, value)


def signature(arrays):
    """The shapes and dtypes of ``arrays``: what a graph was captured for."""
    return tuple((tuple(x.shape), numpy.dtype(x.dtype)) for x in arrays)


class TrainingStep:
    """One training step of ``model``, as a callable: ``step(x, y)`` runs the forward pass,
    ``loss_fn(output, y)``, the backward pass and the optimizer's update (and folds the
    weights into ``average``, a ``WeightAverage``, when given); on a GPU, replayed as one
    CUDA graph (see the module's docstring) unless ``graph`` is False.

    ``loss_fn`` returns the loss Tensor, or a tuple (loss, *reports) of Tensors or arrays
    computed without reading values back (such as the count of right answers); ``step``
    returns the loss's array (or the tuple of arrays), on the device: overwritten by the next
    call when replayed; read it with ``float()`` (which waits for the GPU).

    Per-step numbers live in device scalars that the host sets at every call: the learning
    rate (``optimizer.lr``, as a schedule sets it), the weight average's weight, and, on a
    GPU, the counter of the model's dropout masks: each Dropout layer draws from a
    ``CounterGenerator`` keyed by (``dropout_seed``, its index among the model's Dropout
    layers), at the counter ``optimizer.steps`` (the steps taken before this one), so that a
    run's masks are a function of its seed and progress. Only SGD is captured: Adam's bias
    correction uses the step count on the host (its steps run eagerly).

    On a GPU the first call is the warm-up and the second captures and replays: time a
    replayed step from the third call on (``captured.runs`` counts them).
    """

    def __init__(self, model, loss_fn, optimizer, average=None, graph=True, warmup_steps=1,
                 dropout_seed=0, capture=None):
        self.model, self.loss_fn, self.optimizer, self.average = model, loss_fn, optimizer, average
        first = optimizer.params[0]
        self.device, dtype = first.device, first.dtype
        self.lr = self.device_scalar(optimizer.lr, dtype)
        self.average_weight = self.device_scalar(0, dtype) if average is not None else None
        self.dropout_counter = None
        if self.device != "cpu":
            self.dropout_counter = use_counter_dropout(model, dropout_seed, self.device)
        capturable = graph and isinstance(optimizer, SGD)
        self.captured = CapturedStep(self.device_step, self.device, capturable, warmup_steps, capture)

    def graph_pool_bytes(self):
        """The bytes the graph's private memory pool holds (0 before a capture and on the CPU)."""
        capture = self.captured.capture
        return capture.pool_bytes() if capture is not None else 0

    def device_scalar(self, value, dtype):
        """A 0-d array of ``dtype`` on the step's device, holding ``value``."""
        return backend.to_device(numpy.array(value, dtype=dtype), self.device)

    def __call__(self, x, y):
        """The host's share of the step (counting, the per-step numbers into their device
        scalars), then the step itself, eager or replayed."""
        if self.dropout_counter is not None:
            set_counter(self.dropout_counter, self.optimizer.steps)
        self.optimizer.steps += 1
        self.lr.fill(self.optimizer.lr)
        if self.average is not None:
            self.average_weight.fill(self.average.count_update())
        return self.captured(x, y)

    def device_step(self, x, y):
        """The arrays' share: what a CUDA graph captures (reads no value back)."""
        output = self.model(Tensor(x))
        result = self.loss_fn(output, y)
        loss, *reports = result if isinstance(result, tuple) else (result,)
        self.optimizer.zero_grad()
        loss.backward()
        with learning_rate_read_from(self.optimizer, self.lr):
            self.optimizer.update_parameters()
        if self.average is not None:
            self.average.fold_in(self.average_weight)
        arrays = tuple(r.data if isinstance(r, Tensor) else r for r in (loss, *reports))
        return arrays if reports else arrays[0]


@contextlib.contextmanager
def learning_rate_read_from(optimizer, device_scalar):
    """Inside the block the optimizer's ``lr`` is ``device_scalar`` (its update rules take a
    number or a 0-d array alike), so a replay reads the rate from device memory."""
    number, optimizer.lr = optimizer.lr, device_scalar
    try:
        yield
    finally:
        optimizer.lr = number


def use_counter_dropout(model, seed, device):
    """Make every Dropout layer of ``model`` draw its masks on ``device`` from a
    ``CounterGenerator`` keyed by [seed, its index], all sharing one counter: returned."""
    counter = make_counter(device)
    dropouts = [m for m in model.modules() if isinstance(m, Dropout)]
    for index, layer in enumerate(dropouts):
        layer.use_generator(CounterGenerator([seed, index], device, counter))
    return counter


def capture_training_step(model, loss_fn, optimizer, average=None, graph=True, warmup_steps=1,
                          dropout_seed=0):
    """A ``TrainingStep``: ``step(x, y) -> loss`` (and ``loss_fn``'s reports), replayed as one
    CUDA graph on a GPU (``graph=False``: always eager)."""
    return TrainingStep(model, loss_fn, optimizer, average, graph, warmup_steps, dropout_seed)
