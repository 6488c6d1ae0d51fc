"""Backward, one step at a time: the frames of a backward walk (``backward_frames``), one
per tensor whose gradient became complete, and the words that describe them (what an edge
sent, the title of a step)."""
from typing import NamedTuple

import numpy

from .. import backend
from ..autograd import Tensor, graph_order


SMALL = 6                        # tensors of at most this many elements show their values


def inputs_of(tensor):
    """The tensors the op that made ``tensor`` took (None left out); [] for a leaf."""
    node = tensor.node
    return [] if node is None else [t for t in node.inputs if t is not None]


def short_numbers(array):
    """A short text of a small array's values: '3', '[1 -2.5]'; '' for more than 6 values."""
    array = backend.to_numpy(array)
    if array.size > SMALL:
        return ""
    if array.size == 1:
        return f"{array.item():.4g}"
    return numpy.array2string(array, separator=" ", formatter={"float_kind": lambda v: f"{v:.4g}"})


def gradient_lines(tensor, frame, values):
    """'grad ...' once a tensor's gradient is complete, 'so far ... (1 of 2 uses)' while it waits."""
    key = id(tensor)
    show = values and tensor.size <= SMALL
    if key in frame.complete:
        return [f"grad {short_numbers(frame.complete[key])}" if show else "grad complete"]
    if key in frame.partial:
        total, arrived, uses = frame.partial[key]
        line = f"so far {short_numbers(total)}" if show else "so far"
        return [line + (f", {arrived} of {uses} uses" if uses > 1 or not show else "")]
    return []


# --- backward, one step at a time ---------------------------------------------------------
class EdgeGradient(NamedTuple):
    """What an op's backward sent along one input edge."""
    slot: int            # the input's position among the op's inputs
    input: Tensor
    local: object        # the local derivative d output / d input as a Jacobian matrix of shape
                         # (output size, input size), or None when either has over SMALL elements
    sent: object         # the gradient sent: the upstream gradient times the local derivative


class BackwardFrame(NamedTuple):
    """One step of ``Tensor.backward_steps``: the tensor whose gradient became complete,
    what its op sent on to its inputs, and the state of the walk after the step."""
    step: int            # 1, 2, ...
    tensor: Tensor       # finished at this step
    gradient: object     # its complete gradient
    sends: tuple         # EdgeGradient for each input of its op that wants a gradient; () for a leaf
    complete: dict       # id(tensor) -> gradient, for every tensor finished so far (this one too)
    partial: dict        # id(tensor) -> (sum so far, uses delivered, uses in all), tensors still waiting


def backward_frames(root, grad=None):
    """Run ``root.backward(grad)`` one step at a time and record each step as a BackwardFrame.

    This IS a backward pass: the leaves' ``.grad`` accumulate as with ``backward()``. It
    keeps the graph (``retain_graph=True``): a picture of a backward pass is for looking,
    and a lesson may step through the same graph again, or walk it by hand after. Each
    op's backward is also called again on the side (it is a pure function of the upstream
    gradient and the cache) to record what it sent along each input edge, and, for small
    tensors, the local derivative: backward with a one-hot upstream gradient e_j returns row
    j of the Jacobian d output / d input.
    """
    uses = _uses(root)
    complete, arrived, frames = {}, {}, []
    for step, (tensor, gradient) in enumerate(root.backward_steps(grad, retain_graph=True), start=1):
        complete[id(tensor)] = gradient
        arrived.pop(id(tensor), None)
        sends = _sends(tensor, gradient)
        for edge in sends:
            total, count = arrived.get(id(edge.input), (None, 0))
            total = edge.sent if total is None else total + edge.sent
            arrived[id(edge.input)] = (total, count + 1)
        partial = {key: (total, count, uses[key]) for key, (total, count) in arrived.items()}
        frames.append(BackwardFrame(step, tensor, gradient, tuple(sends), dict(complete), partial))
    return frames


def _uses(root):
    """id(tensor) -> how many op inputs it is, among the ops backward will run."""
    uses = {}
    for tensor in graph_order(root, follow=lambda t: t.requires_grad):
        for parent in inputs_of(tensor):
            if parent.requires_grad:
                uses[id(parent)] = uses.get(id(parent), 0) + 1
    return uses


def _sends(tensor, gradient):
    node = tensor.node
    if node is None:
        return []
    sends = []
    for slot, (parent, sent) in enumerate(zip(node.inputs, node.backward(gradient, node.cache))):
        if parent is not None and sent is not None and parent.requires_grad:
            sends.append(EdgeGradient(slot, parent, _jacobian(tensor, slot, parent), sent))
    return sends


def _jacobian(tensor, slot, parent):
    """d tensor / d parent, (tensor.size, parent.size), from one backward per output element."""
    if tensor.size > SMALL or parent.size > SMALL:
        return None
    xp = backend.get_array_module(tensor.data)
    rows = []
    for j in range(tensor.size):
        one_hot = xp.zeros(tensor.size, dtype=tensor.dtype)
        one_hot[j] = 1
        row = tensor.node.backward(one_hot.reshape(tensor.shape), tensor.node.cache)[slot]
        rows.append(backend.to_numpy(row).reshape(-1))
    return numpy.stack(rows)


def _local_text(edge, output):
    """The local derivative of an edge in a few characters."""
    jacobian = edge.local
    if jacobian is None:
        return ""
    outputs, inputs = jacobian.shape
    if outputs == inputs and numpy.array_equal(jacobian, numpy.diag(numpy.diag(jacobian))):
        return f"local ×{short_numbers(numpy.diag(jacobian).reshape(edge.input.shape))}"   # elementwise
    if outputs == 1:
        return f"local ×{short_numbers(jacobian.reshape(edge.input.shape))}"
    if inputs == 1:
        return f"local ×{short_numbers(jacobian.reshape(output.shape))}, summed"
    return f"local: a {outputs}x{inputs} Jacobian"


def edge_text(edge, output):
    sent = short_numbers(edge.sent) if numpy.size(edge.sent) <= SMALL else f"a {tuple(numpy.shape(edge.sent))} gradient"
    return "\n".join(line for line in (_local_text(edge, output), f"sends {sent}") if line)


def frame_title(frame, count, lookup=None):
    """'step 3 of 6: h has its whole gradient;\nadd's backward sends it to 2 inputs'."""
    lookup = lookup or {}
    tensor = frame.tensor
    name = lookup.get(id(tensor)) or ("a leaf" if tensor.is_leaf else f"the output of {tensor.node.name}")
    text = f"step {frame.step} of {count}: {name} has its whole gradient;\n"
    if tensor.node is None:
        return text + "a leaf: it goes into .grad"
    inputs = len(frame.sends)
    return text + f"{tensor.node.name}'s backward sends it to {inputs} input{'s' * (inputs != 1)}"
