"""``Module``: a layer or a model, which owns Parameters and sub-Modules.

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, in the
order of assignment, so that

    model.named_parameters()   ->  ("features.0.weight", Parameter), ...
    model.state_dict()         ->  {"features.0.weight": numpy array, ...}

walk the whole tree without the layer writing any bookkeeping. Anything else
(ints, strings, generators) is a plain attribute, except a buffer: an array of state
that is not learned (batch norm's running statistics), registered with
``register_buffer(name, array)``. Buffers are saved and loaded by ``state_dict`` and
``load_state_dict`` and follow ``to(device)`` and ``astype`` with the parameters, but
are not parameters: no gradient, not counted by ``num_parameters``.

Each layer also says, without running, what it does to one example's shape and
what it costs: ``output_shape``, ``multiply_adds`` and ``depth``; containers
compose their children's. The base class raises NotImplementedError naming the
class, so a summary never counts an unknown layer as zero.
"""
import numpy

from .. import backend
from ..autograd import Tensor
from .flat import FlatParameters


class Parameter(Tensor):
    """A Tensor that a Module learns: always ``requires_grad=True``.

    ``flat_parameters`` is the ``FlatParameters`` whose buffers hold its data and gradient
    (``Module.flatten_parameters``; ``minigrad/nn/flat.py`` says what changes then), or None.
    """
    flat_parameters = None

    def __init__(self, data, dtype=None):
        super().__init__(data, requires_grad=True, dtype=dtype)

    def _first_grad(self, g):
        """In a flat buffer, the first gradient after ``zero_grad`` is copied into this
        parameter's slice of the buffer, which becomes ``.grad`` again (``minigrad/nn/flat.py``);
        otherwise a copy of ``g``, as for any Tensor."""
        if self.flat_parameters is None:
            return super()._first_grad(g)
        slice_of_buffer = self.flat_parameters.grad_view_of(self)
        slice_of_buffer[...] = g
        return slice_of_buffer

    def __repr__(self):
        values = numpy.array2string(backend.to_numpy(self.data), separator=", ", threshold=20,
                                    prefix="Parameter(")
        device = "" if self.device == "cpu" else f", device={self.device}"
        return f"Parameter({values}, dtype={self.dtype}{device})"


class Module:
    """Base class of every layer and model: subclasses set attributes in
    ``__init__`` (after ``super().__init__()``) and write ``forward`` (and, for a
    summary, ``output_shape``, ``multiply_adds`` and ``depth``).

    Example:
        >>> class TwoLayers(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = nn.Linear(4, 8, rng=0)
        ...         self.out = nn.Linear(8, 2, rng=1)
        ...     def forward(self, x):
        ...         return self.out(self.hidden(x).relu())
        >>> model = TwoLayers()
        >>> [name for name, _ in model.named_parameters()]
        ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
        >>> model(mg.ones((3, 4))).shape
        (3, 2)
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    def register_buffer(self, name, array):
        """Keep ``array`` (NumPy or CuPy) as ``self.<name>``: state saved, loaded, moved and
        cast with the parameters, but not learned."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def __setattr__(self, name, value):
        if name in self.__dict__.get("_buffers", ()):
            self._buffers[name] = value                 # a buffer stays one when re-assigned
        registries = self.__dict__.get("_parameters"), self.__dict__.get("_modules")
        if registries[0] is None:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                     f"assigning the parameter or module {name!r}")
        else:
            for registry in registries:
                registry.pop(name, None)     # re-assignment (e.g. bias = None) unregisters
            if isinstance(value, Parameter):
                registries[0][name] = value
            elif isinstance(value, Module):
                registries[1][name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        object.__delattr__(self, name)

    # --- running ---------------------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *inputs):
        if self._modules:
            return self.forward(*inputs)
        try:
            return self.forward(*inputs)
        except ValueError as error:
            # A layer with no sub-modules names itself (its one-line repr) in front of a bad-input
            # error; the error itself stays chained as the cause, with its traceback.
            raise ValueError(f"{self!r}: {error}") from error

    # --- walking the tree -----------------------------------------------------------
    def children(self):
        """The direct sub-modules, in the order they were assigned."""
        return iter(self._modules.values())

    def named_children(self):
        """(attribute name, sub-module) for each direct sub-module, in order."""
        return iter(self._modules.items())

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module ("") and every module below it."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_parameters(self):
        """(dotted name, Parameter) pairs, e.g. ("features.0.weight", W); shared ones once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, parameter in module._parameters.items():
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    yield (f"{prefix}.{name}" if prefix else name), parameter

    def parameters(self):
        return (parameter for _, parameter in self.named_parameters())

    def named_buffers(self):
        """(dotted name, array) for every buffer, e.g. ("bn1.running_mean", array)."""
        for prefix, module in self.named_modules():
            for name, array in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), array

    def _buffer_slots(self):
        """(module, attribute name) of every buffer, to replace it."""
        return [(module, name) for module in self.modules() for name in module._buffers]

    def num_parameters(self):
        """How many numbers the model learns."""
        return sum(parameter.size for parameter in self.parameters())

    # --- shapes and costs, without running ------------------------------------------------
    # Shapes are per example: the batch axis is left out, (C, H, W) or (features,).
    def output_shape(self, in_shape):
        """The shape of one example's output, for one example's input of ``in_shape``."""
        raise self._undefined("output_shape(in_shape)")

    def multiply_adds(self, in_shape):
        """Multiply-adds of the forward pass on one example of ``in_shape``: each weight
        times the number of positions it is applied at. Only layers with weights count
        (pooling, LRN, ReLU and biases do not, as in the GoogLeNet paper's ops column)."""
        raise self._undefined("multiply_adds(in_shape)")

    def depth(self):
        """Layers with parameters on the longest path through this module."""
        raise self._undefined("depth()")

    def _undefined(self, method):
        return NotImplementedError(f"{type(self).__name__} does not define {method}; a layer "
                                   f"defines it, a module made of layers composes its children's")

    # --- modes, devices, dtypes ---------------------------------------------------------
    def train(self, mode=True):
        """Training mode (dropout active) for this module and all below it; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (dropout is the identity); returns self."""
        return self.train(False)

    def to(self, device):
        """Move every parameter (and its gradient) and buffer to ``device`` in place; returns
        self. Flat buffers are moved whole (their parameters become views of the moved ones)."""
        device = backend.parse_device(device)
        for flat in self._whole_flat_buffers("to"):
            flat.to(device)
        for parameter in self._loose_parameters():
            parameter.data = backend.to_device(parameter.data, device)
            if parameter.grad is not None:
                parameter.grad = backend.to_device(parameter.grad, device)
        for module, name in self._buffer_slots():
            setattr(module, name, backend.to_device(module._buffers[name], device))
        return self

    def astype(self, dtype):
        """Cast every parameter and floating-point buffer in place (float64 for gradient
        checks) and drop the gradients; returns self. Flat buffers are cast whole (their
        gradients become zeros)."""
        for flat in self._whole_flat_buffers("astype"):
            flat.astype(dtype)
        for parameter in self._loose_parameters():
            parameter.data = parameter.data.astype(dtype)
            parameter.grad = None
        for module, name in self._buffer_slots():
            if module._buffers[name].dtype.kind == "f":
                setattr(module, name, module._buffers[name].astype(dtype))
        return self

    def zero_grad(self):
        """Every parameter's gradient to None (in a flat buffer too: the next backward writes
        into its slice, or the buffer's next gather() makes it zeros)."""
        for parameter in self.parameters():
            parameter.grad = None

    def flatten_parameters(self):
        """Put every parameter into one flat data buffer and one flat gradient buffer, each
        parameter a view (``minigrad/nn/flat.py``); returns the ``FlatParameters``. An
        optimizer made afterwards from ``self.parameters()`` updates them all at once."""
        return FlatParameters(self.parameters())

    def _flat_buffers(self, shared):
        """The FlatParameters that hold some of this module's parameters: those that also
        hold other modules' (``shared=True``), or those that hold this module's only."""
        mine = {id(p) for p in self.parameters()}
        flats = {id(p.flat_parameters): p.flat_parameters for p in self.parameters() if p.flat_parameters}
        return [flat for flat in flats.values()
                if shared != all(id(p) in mine for p in flat.parameters)]

    def _whole_flat_buffers(self, method):
        """The flat buffers of this module, to move or cast whole: an error if one also holds
        other modules' parameters (moving a part of a buffer would break it)."""
        for flat in self._flat_buffers(shared=True):
            raise ValueError(f"{type(self).__name__}.{method}: its parameters share a flat buffer "
                             f"({flat}) with parameters of other modules; call {method} on the "
                             f"module whose parameters were flattened")
        return self._flat_buffers(shared=False)

    def _loose_parameters(self):
        """The parameters that are in no flat buffer."""
        return [p for p in self.parameters() if p.flat_parameters is None]

    # --- saving and loading ---------------------------------------------------------------
    def state_dict(self):
        """{dotted name: NumPy copy of the parameter or buffer}, ready for ``numpy.savez``."""
        state = {name: backend.to_numpy(p.data).copy() for name, p in self.named_parameters()}
        state.update((name, backend.to_numpy(array).copy()) for name, array in self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy arrays from ``state`` into the parameters and buffers (keeping their device
        and dtype).

        Every parameter and buffer must be present with the right shape, and nothing else may be.
        """
        parameters = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        missing = [name for name in [*parameters, *buffers] if name not in state]
        unexpected = [name for name in state if name not in parameters and name not in buffers]
        if missing or unexpected:
            raise ValueError(f"load_state_dict: missing parameters {missing}, unexpected keys {unexpected}")
        for kind, entries in (("parameter", parameters), ("buffer", buffers)):
            for name, array in entries.items():
                if tuple(numpy.shape(state[name])) != tuple(array.shape):
                    raise ValueError(f"load_state_dict: {kind} {name!r} expected shape "
                                     f"{tuple(array.shape)}, got {tuple(numpy.shape(state[name]))}")
        for name, array in [*((n, p.data) for n, p in parameters.items()), *buffers.items()]:
            # in place: a layer keeps its array, a parameter in a flat buffer stays a view
            value = numpy.asarray(backend.to_numpy(state[name]), dtype=array.dtype)
            array[...] = backend.to_device(value, backend.device_of(array))

    # --- printing -------------------------------------------------------------------------
    def extra_repr(self):
        """The layer's configuration, shown inside its parentheses."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        lines = [extra] if extra else []
        for name, child in self._modules.items():
            child_text = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_text}")
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
