"""Where a step's time goes, by kind of work: each op's forward and backward timed.

    with OpProfile(xp=numpy, hooks=[(optimizer, "step", "optimizer")]) as profile:
        profile.run(training_step)            # as often as wanted; times add up
    profile.breakdown()                       # {kind: seconds per step}, KINDS' order
    profile.step_seconds                      # the profiled steps' own time, per step

While the profile is open, every Op of ``minigrad.functional`` (``F.conv2d.op``, ...) has its
``forward`` and ``backward`` replaced by a timed wrapper (``Op.__call__`` reads
``self.forward``, and the node it makes keeps ``self.backward``); so have the kernel sets'
im2col and col2im (``COLUMN_FUNCTIONS``), autograd's dispatch of each node's backward
(``AUTOGRAD_DISPATCH``) and its sums of gradient shares (``GRADIENT_SUM``), and the methods
named in ``hooks``. When it closes the originals are
put back: the path that is not profiled runs the very same functions as before, untouched.

A region inside another (im2col inside a convolution's forward, an op's backward inside
autograd's dispatch) is subtracted from the one around it, so that each moment of the step
counts once, for the innermost region. The kinds (``KINDS``):

    GEMM            the convolutions and linear layers, less their im2col/col2im: the matrix
                    products with the bias added (and a fused ReLU), the bias's gradient
                    summed, the layout passes between images and channels-first matrices
    im2col/col2im   copying windows into columns and adding the column gradients back;
                    for a 3x3 convolution the numpy set does Winograd's way, the tiles'
                    transform and its adjoint (``WINOGRAD_FUNCTIONS``), which take their place
    pooling, LRN    max, average and global pools; local response normalization
    element-wise    ReLU, dropout, add, the loss and the other element-wise ops and reductions
    concat/split    concat (its backward is the split), reshape, transpose, indexing
    optimizer       the methods named in ``hooks`` (the optimizer's zero_grad and step)
    autograd        dispatching each node's backward, less the backward itself: the checks
                    of each gradient's shape and dtype, and the sum where a tensor feeds
                    several ops (an Inception module's input feeds four branches); adding
                    each parameter's gradient into its .grad
    Python/other    the rest of the step: making Tensors and nodes, each op's input checks,
                    ordering the graph, the Python between the ops

"Python/other" is what the timed regions leave of the step's own time (``step_seconds``), so
the kinds add up to it exactly. The wrappers cost a little (two clock readings and a list
append per region, about a microsecond each on a CPU): a profiled step is that much longer
than the same step timed without a profile.

On a GPU (``xp`` = CuPy) each region is timed between CUDA events recorded on the current
stream, read once the step has finished: the GPU's time from a region's first kernel to its
last. When the GPU waits for Python (a launch-bound step), that wait counts for the region
whose kernels it was waiting to run.
"""
import time

import numpy

from .. import autograd, kernels
from .. import functional as F
from ..autograd import Op
from ..kernels import winograd

KINDS = ("GEMM", "im2col/col2im", "pooling", "LRN", "element-wise", "concat/split",
         "optimizer", "autograd", "Python/other")
OTHER = "Python/other"

KIND_OF_OP = {
    "conv2d": "GEMM", "linear": "GEMM", "matmul": "GEMM",
    "max_pool2d": "pooling", "avg_pool2d": "pooling", "global_avg_pool2d": "pooling",
    "local_response_norm": "LRN",
    "concat": "concat/split", "getitem": "concat/split", "reshape": "concat/split",
    "transpose": "concat/split",
    **dict.fromkeys(("add", "sub", "mul", "div", "neg", "pow", "rpow", "exp", "log", "tanh", "sigmoid",
                     "relu", "dropout", "batch_norm", "sum", "mean", "max", "softmax", "log_softmax",
                     "cross_entropy", "astype", "to_device"), "element-wise"),
}

# The functions of each kernel set that copy windows into columns and back (a convolution
# calls them by these names, so replacing the module's attribute reaches its calls).
COLUMN_FUNCTIONS = {"reference": ("im2col", "col2im"),
                    "numpy": ("_im2col_batch_last", "_col2im_batch_last"),
                    "cuda": ("_im2col", "_col2im")}
# Winograd's transform of the input tiles and its adjoint (minigrad/kernels/winograd.py): the
# numpy set's im2col and col2im for the 3x3 convolutions it does that way.
WINOGRAD_FUNCTIONS = ("input_transform", "input_gradient")
AUTOGRAD_DISPATCH = "_send_to_inputs"      # minigrad.autograd: runs one node's backward
GRADIENT_SUM = "_sum_of"                   # minigrad.autograd: adds up a tensor's gradient shares
LEAF_ACCUMULATION = "_accumulate_grad"     # minigrad.autograd.Tensor: adds into a leaf's .grad


def kind_of_op(name):
    """The kind of an Op by its name; a fused convolution ("conv2d_relu") is a convolution."""
    if name in KIND_OF_OP:
        return KIND_OF_OP[name]
    return "GEMM" if name.startswith("conv") else "element-wise"


def functional_ops():
    """Every Op that ``minigrad.functional`` exposes (``F.mul.op``, ...), each once."""
    found = {}
    for name in dir(F):
        op = getattr(getattr(F, name), "op", None)
        if isinstance(op, Op):
            found[id(op)] = op
    return list(found.values())


class HostClock:
    """Marks on the host clock; a region's time is the difference of two."""

    def mark(self):
        return time.perf_counter()

    def finish(self):
        pass

    def seconds(self, start, end):
        return end - start


class EventClock:
    """Marks as CUDA events recorded on the current stream, read after ``finish``."""

    def __init__(self, xp):
        self.xp = xp

    def mark(self):
        event = self.xp.cuda.Event()
        event.record()
        return event

    def finish(self):
        self.xp.cuda.get_current_stream().synchronize()

    def seconds(self, start, end):
        return self.xp.cuda.get_elapsed_time(start, end) / 1e3


class Region:
    """One timed call: its kind, what it was, two clock marks and the regions inside it."""
    __slots__ = ("kind", "name", "start", "end", "inside")

    def __init__(self, kind, name, start):
        self.kind, self.name, self.start, self.end, self.inside = kind, name, start, None, []


class OpProfile:
    """A context that times each op's forward and backward, and the ``hooks``, by kind
    (module docstring). ``hooks``: (object, method or function name, kind) triples;
    ``xp``: the array module the steps run on, which chooses the clock (CuPy: CUDA events)
    unless ``clock`` is given (anything with ``mark()``, ``finish()`` and ``seconds(start, end)``)."""

    _open = None            # the profile open now: profiles do not nest

    def __init__(self, xp=numpy, hooks=(), clock=None):
        self.clock = clock or (HostClock() if xp is numpy else EventClock(xp))
        self.replaced = [(op, half, kind_of_op(op.name), f"{op.name} {half}")
                         for op in functional_ops() for half in ("forward", "backward")]
        for set_name, names in COLUMN_FUNCTIONS.items():
            self.replaced += [(kernels.SETS[set_name], name, "im2col/col2im", f"{set_name} {name}") for name in names]
        self.replaced += [(winograd, name, "im2col/col2im", f"winograd {name}") for name in WINOGRAD_FUNCTIONS]
        self.replaced.append((autograd, AUTOGRAD_DISPATCH, "autograd", "autograd dispatch"))
        self.replaced.append((autograd, GRADIENT_SUM, "autograd", "gradient sums"))
        self.replaced.append((autograd.Tensor, LEAF_ACCUMULATION, "autograd", "leaf gradients"))
        self.replaced += [(owner, name, kind, name) for owner, name, kind in hooks]
        self.originals = []
        self.stack = None
        self.steps = []                      # the root region of each profiled step

    def __enter__(self):
        if OpProfile._open is not None:
            raise RuntimeError("OpProfile: another profile is open; profiles do not nest")
        for owner, attribute, kind, name in self.replaced:
            original = getattr(owner, attribute)
            own = attribute in vars(owner)          # False for a method found on the class
            self.originals.append((owner, attribute, original if own else None))
            setattr(owner, attribute, self.timed(original, kind, name))
        OpProfile._open = self
        return self

    def __exit__(self, *exc_info):
        for owner, attribute, original in reversed(self.originals):
            if original is None:
                delattr(owner, attribute)           # the class's method shows through again
            else:
                setattr(owner, attribute, original)
        self.originals = []
        OpProfile._open = None

    def timed(self, function, kind, name):
        """``function`` with its calls timed as regions of ``kind`` while a step runs."""
        def timed_call(*args, **kwargs):
            if self.stack is None:                  # outside ``run`` (or after the profile closed)
                return function(*args, **kwargs)
            region = Region(kind, name, self.clock.mark())
            self.stack[-1].inside.append(region)
            self.stack.append(region)
            try:
                return function(*args, **kwargs)
            finally:
                region.end = self.clock.mark()
                self.stack.pop()
        return timed_call

    def run(self, step):
        """Call ``step()`` once, timing its regions; returns what it returned."""
        if OpProfile._open is not self:
            raise RuntimeError("OpProfile.run: open the profile first (with OpProfile(...) as profile)")
        root = Region(OTHER, "step", self.clock.mark())
        self.stack = [root]
        try:
            result = step()
        finally:
            root.end = self.clock.mark()
            self.stack = None
        self.clock.finish()
        self.steps.append(root)
        return result

    # --- what was measured ----------------------------------------------------------------
    def own_times(self):
        """[(kind, name, own seconds)] of every region of every step, the steps' own
        remainders as ("Python/other", "step", seconds): a region's own time is its time
        less the time of the regions directly inside it."""
        rows, pending = [], list(self.steps)
        while pending:
            region = pending.pop()
            total = self.clock.seconds(region.start, region.end)
            inner = sum(self.clock.seconds(r.start, r.end) for r in region.inside)
            rows.append((region.kind, region.name, total - inner))
            pending += region.inside
        return rows

    @property
    def step_seconds(self):
        """The profiled steps' own time, per step (wrappers included)."""
        return sum(self.clock.seconds(r.start, r.end) for r in self.steps) / len(self.steps)

    def breakdown(self):
        """{kind: seconds per step}, every kind of ``KINDS`` in order; they add up to
        ``step_seconds``."""
        if not self.steps:
            raise RuntimeError("OpProfile.breakdown: no step was profiled (call run(step) first)")
        seconds = dict.fromkeys(KINDS, 0.0)
        for kind, _, own in self.own_times():
            seconds[kind] += own
        return {kind: total / len(self.steps) for kind, total in seconds.items()}

    def calls(self):
        """{kind: regions per step}; "Python/other" counts the steps' remainders (one each)."""
        counts = dict.fromkeys(KINDS, 0)
        for kind, _, _ in self.own_times():
            counts[kind] += 1
        return {kind: count / len(self.steps) for kind, count in counts.items()}

    def by_name(self):
        """{what was timed ("conv2d backward", "numpy _im2col_batch_last"): own seconds per
        step}, largest first."""
        seconds = {}
        for _, name, own in self.own_times():
            seconds[name] = seconds.get(name, 0.0) + own / len(self.steps)
        return dict(sorted(seconds.items(), key=lambda item: -item[1]))
