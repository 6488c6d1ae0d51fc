"""Flat parameter buffers: all of a model's parameters in one array, each parameter a view.

    flat = model.flatten_parameters()         # or FlatParameters(model.parameters())
    flat.data         every parameter's values in one 1-D array; parameter.data is a view of it
    flat.grad         every gradient in one 1-D array; parameter.grad is a view of it
    flat.zero_grad()  every .grad to None: the next backward writes each into its slice

A model of a hundred parameter arrays then has its optimizer step as a few whole-array
expressions instead of a few per parameter (``minigrad.optim``: an optimizer given exactly
the parameters of one FlatParameters finds it and updates them all at once). On a GPU that
is a handful of kernel launches instead of hundreds. The layers notice nothing:
``self.weight.data`` is still an array of the weight's shape, a view of its slice of
``flat.data``.

What changes for a parameter in a flat buffer (``parameter.flat_parameters`` is then the
FlatParameters that holds it):

* its ``.grad`` is its slice of ``flat.grad``, or None after ``zero_grad`` until ``backward``
  writes the new gradient into that slice (a copy: no fill of zeros first, and no reading
  them back to add to; PyTorch's ``zero_grad()`` sets gradients to None for the same reason).
  An existing gradient is added to in place, as without flat buffers.
* ``gather()`` (before every optimizer step and every all-reduce of the gradients) makes a
  gradient still None zeros in its slice: a parameter that no loss reached then holds
  zeros (where without flat buffers it would keep None), and an optimizer step updates it
  all the same: weight decay and momentum move it (as in PyTorch when gradients are zeroed
  rather than set to None).
* assigning ``.data`` or ``.grad`` a new array takes the parameter out of the buffer (the
  buffer keeps the old values) until ``gather()`` copies the new array in and makes the
  parameter a view again; the optimizers call ``gather()`` before every step, ``backward``
  re-attaches a gradient it writes after ``zero_grad``. Writing in place
  (``parameter.data[...] = values``) keeps it in.
* ``Module.load_state_dict`` copies into the views (they stay views);
  ``Module.to(device)`` and ``Module.astype(dtype)`` rebuild the buffers on the new device or
  in the new dtype and make every parameter a view of the new ones (the old arrays are
  dropped; an optimizer's own state does not move: create the optimizer after moving the
  model, as without flat buffers).

Layout: the weights (parameters with more than one axis) come first, then the others
(biases, batch-norm scales and shifts), each in the order given; ``flat.weights`` is the
slice that holds the weights, the part that weight decay applies to (``minigrad.optim``
decays weights only). Each parameter starts at a multiple of ``ALIGNMENT`` elements (a GPU
reads aligned memory in fewer transactions); the gaps hold zeros, and every update rule of
``minigrad.optim`` leaves a zero weight with a zero gradient at zero, so they need no mask.
"""
from .. import backend

ALIGNMENT = 64          # elements: 256 bytes in float32


def _aligned(offset):
    return -(-offset // ALIGNMENT) * ALIGNMENT


def flat_buffer_of(parameters):
    """The FlatParameters that holds exactly ``parameters`` (in any order), or None: then an
    optimizer or a communicator can work on its buffers whole."""
    flat = getattr(parameters[0], "flat_parameters", None)
    return flat if flat is not None and flat.holds_exactly(parameters) else None


class FlatParameters:
    """The parameters ``parameters`` (Tensors that require a gradient, all of one dtype and
    device, none already in a flat buffer) moved into one data and one gradient buffer.

    Their current values are copied in, and any gradient they hold; each parameter's
    ``.data`` and ``.grad`` become views of the buffers (see the module docstring).
    ``parameters`` lists them in the buffers' order (weights first); ``size`` is the
    buffers' length.
    """

    def __init__(self, parameters):
        unique = list({id(p): p for p in parameters}.values())
        _check_parameters(unique)
        weights = [p for p in unique if p.ndim > 1]
        self.parameters = weights + [p for p in unique if p.ndim <= 1]
        self.offsets, end = [], 0
        for p in self.parameters:
            self.offsets.append(end)
            end = _aligned(end + p.size)
        self.size = end
        others_start = self.offsets[len(weights)] if len(weights) < len(self.parameters) else end
        self.weights = slice(0, others_start)
        self._position = {id(p): k for k, p in enumerate(self.parameters)}
        first = self.parameters[0]
        xp = backend.get_array_module(first.data)
        self.data = xp.zeros(self.size, dtype=first.dtype)
        self.grad = xp.zeros(self.size, dtype=first.dtype)
        for p, data_view, grad_view in zip(self.parameters, self.views(self.data), self.views(self.grad)):
            data_view[...] = p.data
            if p.grad is not None:
                grad_view[...] = p.grad
        self._attach()

    def __repr__(self):
        return (f"FlatParameters({len(self.parameters)} parameters, {self.size} elements, "
                f"dtype={self.data.dtype}, device={backend.device_of(self.data)})")

    # --- views --------------------------------------------------------------------------
    def view_of(self, flat, parameter):
        """The view of the 1-D array ``flat`` (of ``size`` elements, laid out as the buffers)
        that belongs to ``parameter``: its slice, in its shape."""
        start = self.offsets[self._position[id(parameter)]]
        return flat[start:start + parameter.size].reshape(parameter.shape)

    def views(self, flat):
        """``view_of(flat, p)`` for every parameter p, in the buffers' order."""
        return [self.view_of(flat, p) for p in self.parameters]

    def holds_exactly(self, parameters):
        """Whether ``parameters`` are this buffer's parameters, each once, in any order."""
        ids = [id(p) for p in parameters]
        return len(ids) == len(set(ids)) == len(self.parameters) and all(i in self._position for i in ids)

    def _attach(self):
        self._data_views, self._grad_views = self.views(self.data), self.views(self.grad)
        for p, data_view, grad_view in zip(self.parameters, self._data_views, self._grad_views):
            p.data, p.grad, p.flat_parameters = data_view, grad_view, self

    # --- keeping the parameters in -------------------------------------------------------
    def gather(self):
        """Copy into the buffers any parameter's ``.data`` or ``.grad`` that was assigned a
        new array (a ``.grad`` set to None counts as zeros), and make it a view again."""
        for p, data_view, grad_view in zip(self.parameters, self._data_views, self._grad_views):
            if p.data is not data_view:
                data_view[...] = p.data
                p.data = data_view
            if p.grad is not grad_view:
                if p.grad is None:
                    grad_view.fill(0)
                else:
                    grad_view[...] = p.grad
                p.grad = grad_view

    def zero_grad(self):
        """Every gradient to None (module docstring): nothing is written."""
        for p in self.parameters:
            p.grad = None

    def grad_view_of(self, parameter):
        """``parameter``'s slice of ``grad``, in its shape: where ``backward`` writes its
        first gradient after ``zero_grad``."""
        return self._grad_views[self._position[id(parameter)]]

    # --- devices and dtypes ----------------------------------------------------------------
    def to(self, device):
        """Move both buffers to ``device`` (nothing happens if they are there already)."""
        self.gather()
        self.data = backend.to_device(self.data, device)
        self.grad = backend.to_device(self.grad, device)
        self._attach()

    def astype(self, dtype):
        """Cast the values to ``dtype``; the gradients become zeros of that dtype (as
        ``Module.astype`` drops gradients)."""
        self.gather()
        self.data = self.data.astype(dtype)
        xp = backend.get_array_module(self.data)
        self.grad = xp.zeros(self.size, dtype=self.data.dtype)
        self._attach()


def _check_parameters(parameters):
    if not parameters:
        raise ValueError("FlatParameters: got no parameters")
    for p in parameters:
        if not getattr(p, "requires_grad", False):
            raise ValueError(f"FlatParameters: expected parameters (Tensors that require a gradient), "
                             f"got {type(p).__name__} of shape {getattr(p, 'shape', None)}")
        if getattr(p, "flat_parameters", None) is not None:
            raise ValueError(f"FlatParameters: a parameter of shape {p.shape} is in a flat buffer "
                             f"already ({p.flat_parameters})")
    kinds = sorted({(str(p.dtype), p.device) for p in parameters})
    if len(kinds) > 1:
        raise ValueError(f"FlatParameters: the parameters must share one dtype and device, got "
                         f"{', '.join(f'{dtype} on {device}' for dtype, device in kinds)}")
