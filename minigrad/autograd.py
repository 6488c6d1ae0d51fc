"""Reverse-mode automatic differentiation.

A ``Tensor`` wraps an array (NumPy or CuPy). Applying an ``Op`` to tensors runs
the op's forward function on their arrays and, when gradients are wanted,
remembers a ``Node``: which backward function to call, the forward's cache, and
the input tensors (``tensor.node``). ``Tensor.backward`` walks those nodes from the
output back to the leaves in topological order, summing the gradient that reaches a
tensor along every path (a tensor used twice gets both contributions). Each node's
cache is freed as soon as its backward has used it (the memory it held is what a
training step needs most of), so a second ``backward`` through the same graph is an
error, unless the first was asked to keep the graph: ``backward(retain_graph=True)``.

Every op in minigrad is a pair of plain-array functions (see ``minigrad.ops``);
this file is the only place that knows about graphs, and it knows no op: the
functions of ``minigrad.functional`` (``F.mul``, ``F.conv2d``, ...) each call an
``Op``, and they are a Tensor's operators and methods too (``x * y`` is ``F.mul(x, y)``,
attached to ``Tensor`` by ``minigrad/functional/tensor_methods.py``).
"""
import contextlib

import numpy

from . import backend, parallel

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Inside ``with no_grad():`` ops record no graph (evaluation, numerical checks)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


class Node:
    """How a tensor was made (``tensor.node``): ``name``, the op's name; ``inputs``, the
    tensors it was applied to, in order (``None`` for an absent optional input such as a
    bias; a tensor used twice appears twice); ``backward`` and ``cache``, so that
    ``node.backward(g, node.cache)`` gives one gradient per input from the output's ``g``.

    Once ``backward`` has run through the node (without ``retain_graph=True``) its cache is
    freed: reading ``node.cache`` is then a RuntimeError that says so.
    """
    __slots__ = ("name", "backward", "_cache", "inputs", "placed")

    def __init__(self, name, backward, cache, inputs, placed=None):
        self.name, self.backward, self._cache, self.inputs = name, backward, cache, inputs
        self.placed = placed        # the Op's ``placed_gradient``, or None

    @property
    def cache(self):
        if self._cache is _FREED:
            raise RuntimeError(f"{self.name}: backward has already run through this op and freed "
                               f"what its forward saved; to run backward through the same graph "
                               f"again, pass retain_graph=True to the first backward")
        return self._cache

    def free(self):
        """Drop the cache (the arrays the forward saved for the backward)."""
        self._cache = _FREED


_FREED = object()       # the cache of a node whose backward has run: see Node.cache


class Op:
    """Make a differentiable function on Tensors out of a forward/backward pair.

    ``forward(*arrays, **params) -> (out, cache)`` and ``backward(gy, cache) ->
    (g_1, ..., g_n)``, one gradient per positional input. Positional inputs are
    the differentiable ones (tensors, arrays or ``None`` for an absent optional
    input such as a bias); keyword parameters are constants (strides, labels).
    ``check(*arrays, **params)``, if given, raises a ``ValueError`` for bad input (a
    ``TypeError`` for a dtype the op does not define) before the forward runs. A
    backward may return more gradients than there were inputs when the extra ones are
    ``None``: the linear op called on ``(x, weight)`` or on ``(x, weight, None)`` has one
    backward, which returns ``(gx, gW, None)``.

    Dtypes are never guessed: the inputs must be real numbers (bool, integer or
    floating-point; complex is refused), the floating-point inputs of an op must
    share one dtype, and integer and boolean inputs next to a floating-point one take
    its dtype once the op's check has passed them (PyTorch's rule: ``float32 * int64``
    is float32; conv2d's check refuses an integer x instead). Every gradient a
    backward returns must have its input's dtype (a backward that turns float32 into
    float64 is an error naming the op).

    ``placed_gradient(cache) -> (shape, index)``, if given, is for an op of one input whose
    backward places gy at a basic ``index`` (ints and slices) of zeros of the input's
    ``shape`` (indexing: ``x[1:3]``): it may return None for a cache whose gradient it cannot
    describe so. ``Tensor.backward`` then keeps gy and its place (``PlacedGradient``) instead
    of making the zeros, and puts it in place when the input's whole gradient is made (the
    pieces of a split, whose places tile the input, then fill one new array: no zeros at
    all). ``node.backward`` still returns the whole array.

    ``inference(*arrays, **params) -> out``, if given, is the forward for a call that makes
    no node (no gradient is wanted: under ``no_grad``, or no input requires one); it may
    skip what only the backward would use (max pooling's argmax) and must give the same out.

    ``needs_input_grad=True`` is for a backward that can save work on an input that needs
    no gradient (a convolution's image): it is then called as ``backward(gy, cache,
    needs_input_grad=(one bool per input))`` and may return None for an input marked
    False (it is called so through ``node.backward`` too, so that anyone walking the
    graph gets the same gradients as ``Tensor.backward``).
    """

    def __init__(self, name, forward, backward, check=None, needs_input_grad=False, placed_gradient=None,
                 inference=None):
        self.name, self.forward, self.backward, self.check = name, forward, backward, check
        self.needs_input_grad, self.placed_gradient = needs_input_grad, placed_gradient
        self.inference = inference

    def __repr__(self):
        return f"Op({self.name})"

    def __call__(self, *inputs, **params):
        tensors = tuple(None if x is None else as_tensor(x) for x in inputs)
        present = [t for t in tensors if t is not None]
        _check_real(self.name, present)
        _check_same_device(self.name, present)
        float_dtype = _common_float_dtype(self.name, present)
        if self.check is not None:      # on the inputs as given: an op may refuse integers (conv2d)
            self.check(*(None if t is None else t.data for t in tensors), **params)
        if float_dtype is not None:
            tensors = tuple(_as_float(t, float_dtype) for t in tensors)
        arrays = tuple(None if t is None else t.data for t in tensors)
        recorded = _grad_enabled and any(t.requires_grad for t in present)
        if not recorded and self.inference is not None:
            return Tensor(self.inference(*arrays, **params))
        out, cache = self.forward(*arrays, **params)
        result = Tensor(out)
        differentiable = result.dtype.kind == "f"     # astype(int), comparisons: no gradient
        if recorded and differentiable:
            result.requires_grad = True
            result._node = Node(self.name, self._backward_for(tensors), cache, tensors, self.placed_gradient)
        return result

    def _backward_for(self, tensors):
        """The backward a node of these inputs calls: this Op's, told which inputs need a
        gradient when it asked to be (``needs_input_grad``)."""
        backward = self.backward
        if not self.needs_input_grad:
            return backward
        needs = tuple(t is not None and t.requires_grad for t in tensors)
        return lambda gy, cache: backward(gy, cache, needs_input_grad=needs)


def _check_same_device(name, tensors):
    devices = sorted({t.device for t in tensors})
    if len(devices) > 1:
        raise ValueError(f"{name}: inputs are on different devices ({', '.join(devices)}); "
                         f"move them to one device with .to(device) first")


def _check_real(name, tensors):
    """Every input holds real numbers: bool, integer or floating-point (not complex, text, objects)."""
    for t in tensors:
        if t.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected real numbers (bool, integer or floating-point), "
                            f"got dtype {t.dtype}; minigrad has no complex gradients")


def _common_float_dtype(name, tensors):
    """The dtype rule: an op's floating-point inputs share one dtype, which is returned
    (None when no input is floating-point); it is never guessed."""
    dtypes = {t.dtype for t in tensors if t.dtype.kind == "f"}      # dtype objects: no text per op
    if len(dtypes) > 1:
        raise ValueError(f"{name}: inputs have different floating-point dtypes "
                         f"({', '.join(sorted(map(str, dtypes)))}); convert one with .astype(...) first")
    return dtypes.pop() if dtypes else None


def _as_float(tensor, dtype):
    """An integer or boolean input in the op's floating-point ``dtype`` (it has no gradient)."""
    if tensor is None or tensor.dtype.kind == "f":
        return tensor
    return Tensor(tensor.data.astype(dtype))


def as_tensor(value, like=None):
    """Return ``value`` as a Tensor.

    The dtype rule for ``tensor <op> constant`` (``x * 2``, ``x + numpy_array``, ``x @
    [[1.0], [2.0]]``): a constant that is not a Tensor (a Python or NumPy number, a NumPy
    array, a list) takes the dtype of the tensor ``like`` when it is of the same kind or a
    lower one (bool < integer < floating-point): a float32 tensor stays float32 next to a
    float64 array or a Python float, an int32 tensor stays int32 next to ``2``. A constant
    of a higher kind keeps its own dtype, as ``Tensor`` gives it: ``int_tensor * 0.5`` is
    not truncated (a Python float is float32, a NumPy float64 stays float64), and
    ``bool_tensor + 2`` counts (a Python int is int64). The op then applies its rule (see
    ``Op``): integers next to a float take the float's dtype, and two Tensors of different
    floating-point dtypes are an error: convert one explicitly.
    """
    if isinstance(value, Tensor):
        return value
    if like is None:
        return Tensor(value)
    xp = backend.get_array_module(like.data)
    constant = value if hasattr(value, "dtype") else numpy.asarray(value)
    if _KIND_RANK.get(constant.dtype.kind, 3) <= _KIND_RANK[like.dtype.kind]:
        return Tensor(xp.asarray(constant, dtype=like.dtype))
    return Tensor(value)


_KIND_RANK = {"b": 0, "i": 1, "u": 1, "f": 2}    # bool < integer < floating-point; anything else is higher


def _to_array(data, dtype):
    """Turn lists and scalars into arrays; Python floats become float32 by default."""
    xp = backend.get_array_module(data)
    if isinstance(data, xp.ndarray):
        array = data
    else:
        array = numpy.asarray(data)
        python_values = not isinstance(data, numpy.generic)   # lists, floats, ints
        if dtype is None and python_values and array.dtype == numpy.float64:
            dtype = backend.DEFAULT_DTYPE
    return array if dtype is None else array.astype(dtype, copy=False)


class Tensor:
    """An array that can remember how it was computed and carry a gradient.

    ``data`` is the array, ``grad`` the gradient that ``backward`` accumulates (the first
    gradient a leaf gets is copied into a new array, later ones are added into it in place,
    as PyTorch does), ``node`` the ``Node`` of the op that made it (None for a leaf: a
    tensor made directly). The operators (``x + y``, ``x @ w``, ``x[i]``, ``x ** 2``) and
    methods such as ``x.sum()``,
    ``x.relu()``, ``x.reshape(...)``, ``x.to(device)``, ``x.astype(dtype)`` are the
    functions of ``minigrad.functional`` (``functional/tensor_methods.py`` lists them).

    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.node.name, y.node.inputs[0].node.name
    ('sum', 'mul')
    >>> y.backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
    """
    __array_priority__ = 1000  # numpy_array + tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        data = _to_array(data, dtype)
        if device is not None:
            data = backend.to_device(data, device)
        self.data = data
        self.grad = None
        self._node = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    # --- what it is -------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self._node is None)

    @property
    def node(self):
        """The ``Node`` that made this tensor (read-only): ``node.name``, ``node.inputs``;
        None for a leaf."""
        return self._node

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        values = numpy.array2string(backend.to_numpy(self.data), separator=", ", threshold=20,
                                    prefix="Tensor(")
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device={self.device}")
        if self._node is not None:
            extras.append(f"op={self._node.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"Tensor({values}, {', '.join(extras)})"

    def requires_grad_(self, flag=True):
        if flag and self.dtype.kind != "f":
            raise ValueError(f"requires_grad needs a floating-point tensor, got dtype {self.dtype}")
        self.requires_grad = flag
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this intermediate tensor after ``backward`` (leaves always do)."""
        self._retains_grad = True
        return self

    # --- leaving the graph -------------------------------------------------------
    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def numpy(self):
        """The values as a NumPy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item(): only a one-element tensor has an item, this one has shape {self.shape}")
        return self.data.reshape(()).item()

    # --- backpropagation -------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` is the upstream gradient; it may be omitted for a one-element tensor.
        Each op's cache is freed once its backward has run; ``retain_graph=True`` keeps
        them, so that backward can run through this graph again.
        """
        for _ in self.backward_steps(grad, retain_graph):
            pass

    def backward_steps(self, grad=None, retain_graph=False):
        """``backward`` one tensor at a time, for watching it work (the first lesson does).

        Yields ``(tensor, gradient)`` for each tensor of the graph, outputs first, at the
        moment its gradient is complete (every path from ``self`` to it has delivered its
        share), just before that gradient is sent on to the tensor's inputs (its node's
        cache is still there then; it is freed after, unless ``retain_graph``). Leaves
        (and tensors that ``retain_grad``) have their ``.grad`` updated when they are
        yielded.
        """
        pending = _Pending(id(self), self._upstream_gradient(grad))   # errors now, not lazily
        return self._backward_walk(pending, retain_graph)

    def _backward_walk(self, pending, retain_graph):
        needs_grad = lambda tensor: tensor.requires_grad
        for tensor in reversed(graph_order(self, follow=needs_grad)):  # outputs first
            g = pending.pop(id(tensor))
            if g is None:
                continue
            if tensor._node is None or tensor._retains_grad:
                tensor._accumulate_grad(g)
            yield tensor, g
            if tensor._node is not None:
                _send_to_inputs(tensor._node, g, pending)
                if not retain_graph:
                    tensor._node.free()

    def _accumulate_grad(self, g):
        """Add ``g`` to ``.grad``: into it in place, or into a copy of ``g`` the first time
        (``g`` may be an array that an op or the caller still holds)."""
        if self.grad is None:
            self.grad = self._first_grad(g)
        else:
            self.grad += g

    def _first_grad(self, g):
        """The array that becomes ``.grad`` when ``g`` is the first gradient: a copy of it
        (``minigrad.nn.Parameter`` copies into its flat buffer's slice when it has one)."""
        return g.copy()

    def _upstream_gradient(self, grad):
        """``grad`` as an array of this tensor's shape, dtype and device (ones if None)."""
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad "
                               "(no input had requires_grad=True, or it was made under no_grad)")
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward(): a tensor of shape {self.shape} needs an explicit "
                                   f"upstream gradient of the same shape")
            grad = xp.ones_like(self.data)
        grad = grad.data if isinstance(grad, Tensor) else grad
        if backend.get_array_module(grad) is not xp:
            grad = backend.to_device(grad, self.device)
        grad = xp.asarray(grad, dtype=self.dtype)     # a list of floats keeps full precision
        if grad.shape != self.shape:
            raise ValueError(f"backward(): gradient shape {grad.shape} != tensor shape {self.shape}")
        return grad

    def zero_grad(self):
        self.grad = None


def graph_order(root, follow=lambda tensor: True):
    """``root`` and every tensor it was computed from, each once, inputs before outputs.

    An iterative depth-first search (a deep chain must not hit Python's recursion
    limit): a tensor is appended once all of its inputs are. Only inputs for which
    ``follow(input)`` is true are visited (backward follows those that need gradients).
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor._node is not None:
            for parent in reversed(tensor._node.inputs):
                if parent is not None and id(parent) not in visited and follow(parent):
                    stack.append((parent, False))
    return order


def _send_to_inputs(node, gy, pending):
    """Run one node's backward and add each input's gradient to what it has so far (for an
    op whose gradient is gy placed in zeros, gy and its place: see ``Op``)."""
    place = None if node.placed is None else node.placed(node.cache)
    if place is not None:
        (parent,) = node.inputs
        if parent.requires_grad:
            pending.add(id(parent), PlacedGradient(*place, gy))
        return
    grads = tuple(node.backward(gy, node.cache))
    extra = grads[len(node.inputs):]
    if len(grads) < len(node.inputs) or any(g is not None for g in extra):
        raise RuntimeError(f"backward of {node.name!r} returned {len(grads)} gradients "
                           f"for {len(node.inputs)} inputs")
    for position, (parent, g) in enumerate(zip(node.inputs, grads)):
        if parent is None or g is None or not parent.requires_grad:
            continue
        if g.shape != parent.shape:
            raise RuntimeError(f"backward of {node.name!r} returned a gradient of shape {g.shape} "
                               f"for input {position} of shape {parent.shape}")
        if g.dtype != parent.dtype:
            raise RuntimeError(f"backward of {node.name!r} returned a {g.dtype} gradient for input "
                               f"{position} of dtype {parent.dtype}: a backward must keep its input's dtype")
        pending.add(id(parent), g)


class _Pending:
    """The gradients that have reached each tensor so far, by ``id``, during one walk.

    A tensor's shares are kept as they came (each may be a view of another gradient, or an
    array a cache holds: never written to) until the walk asks for its whole gradient; then
    they are added in the order they came, in one pass over memory (``_sum_of``). An
    Inception module's input, used by four branches, gets four shares and costs one new
    array. A tensor used many times (a weight shared across steps) has its shares added up
    every FOLD_AT of them, so that they never pile up.
    """
    FOLD_AT = 8

    def __init__(self, key, gradient):
        self.shares = {key: [gradient]}

    def add(self, key, g):
        shares = self.shares.setdefault(key, [])
        shares.append(g)
        if len(shares) == self.FOLD_AT:
            shares[:] = [_sum_of(shares)]

    def pop(self, key):
        """The complete gradient of tensor ``key`` (None if nothing reached it), forgotten."""
        shares = self.shares.pop(key, None)
        if shares is None:
            return None
        if len(shares) == 1 and not isinstance(shares[0], PlacedGradient):
            return shares[0]
        return _sum_of(shares)


class PlacedGradient:
    """A gradient that is ``values`` at ``index`` of an array of ``shape`` and zero elsewhere,
    kept unmade until the whole gradient is asked for (``Op``'s ``placed_gradient``)."""
    __slots__ = ("shape", "index", "values")

    def __init__(self, shape, index, values):
        self.shape, self.index, self.values = shape, index, values


def _sum_of(shares):
    """The sum of a tensor's gradient shares, as a new array: the arrays added in the order
    they came (``_sum_of_arrays``), then each placed gradient added at its place. When
    there are only placed gradients and their places tile the array (the pieces of a
    split), each is copied into its place and nothing else is written."""
    placed = [share for share in shares if isinstance(share, PlacedGradient)]
    arrays = [share for share in shares if not isinstance(share, PlacedGradient)]
    if not placed:
        return _sum_of_arrays(arrays)
    xp = backend.get_array_module(placed[0].values)
    tiled = not arrays and _places_tile(placed)
    if len(arrays) > 1:
        out = _sum_of_arrays(arrays)
    elif arrays:
        out = arrays[0].copy(order="K")            # the share may be an array a cache holds
    else:
        out = _array_laid_out_as(placed[0].values, placed[0].shape, zeroed=not tiled)
    place = xp.copyto if tiled else _add_into
    for share in placed:
        parallel.for_blocks_of("placed gradient", place, out[_as_view(share.index)], share.values)
    return out


def _as_view(index):
    """``index`` with an Ellipsis: indexing then gives a view even where every part is an int
    (``a[0, 1]`` is a number, ``a[0, 1, ...]`` the 0-d view of it)."""
    index = index if isinstance(index, tuple) else (index,)
    return index if any(part is Ellipsis for part in index) else index + (Ellipsis,)


def _add_into(part, values):
    backend.get_array_module(part).add(part, values, out=part)


def _places_tile(placed):
    """Whether the places cover the whole array, each element once: slices of one axis
    (every other axis whole), side by side from its start to its end."""
    shape = placed[0].shape
    ranges, axes = [], set()
    for share in placed:
        index = share.index if isinstance(share.index, tuple) else (share.index,)
        if len(index) > len(shape) or not all(isinstance(part, slice) for part in index):
            return False
        cut = [(axis, part.indices(shape[axis])) for axis, part in enumerate(index)
               if part.indices(shape[axis]) != (0, shape[axis], 1)]
        if len(cut) != 1 or cut[0][1][2] != 1:
            return False
        axis, (start, stop, _) = cut[0]
        axes.add(axis)
        ranges.append((start, stop))
    if len(axes) != 1:
        return False
    ranges.sort()
    (axis,) = axes
    return (ranges[0][0] == 0 and ranges[-1][1] == shape[axis]
            and all(stop == next_start for (_, stop), (next_start, _) in zip(ranges, ranges[1:])))


def _array_laid_out_as(values, shape, zeroed):
    """A new array of ``shape``, zeros if ``zeroed``, whose axes lie in memory in the order
    ``values``'s do when it has as many (the pieces of a batch-last map make a batch-last
    gradient), else C-contiguous."""
    xp = backend.get_array_module(values)
    order = list(range(len(shape)))
    if values.ndim == len(shape):
        order.sort(key=lambda axis: (-abs(values.strides[axis]), axis))
    make = xp.zeros if zeroed else xp.empty
    return make([shape[axis] for axis in order], dtype=values.dtype).transpose(numpy.argsort(order))


def _sum_of_arrays(shares):
    """shares[0] + shares[1] + ..., added in that order, as a new array.

    The shares of one gradient often lie in different layouts in memory: an Inception
    module's input gets one pixels-first from its pool and three batch-last from its
    convolutions. The sum is laid out as most of them are (as the latest of the most, on
    a tie: the convolutions' come after the pool's), so that most are read along memory,
    and it is made by cache-sized blocks (``parallel.for_blocks_of``), all shares of a
    block added while it is in the cache: one pass over memory for the whole sum."""
    xp = backend.get_array_module(shares[0])
    layouts = [parallel.axes_by_stride(share) for share in shares]
    most = max(range(len(shares)), key=lambda i: (layouts.count(layouts[i]), i))   # a tie: the latest
    out = xp.empty_like(shares[most])

    def add_all(out, first, second, *rest):
        xp.add(first, second, out=out)
        for share in rest:
            xp.add(out, share, out=out)
    parallel.for_blocks_of("gradient sum", add_all, out, *shares)
    return out

