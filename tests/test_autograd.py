"""The engine: topological order, summing gradients over every path, deep graphs,
accumulation, no_grad, detach, retain_grad, clear errors, and what a Tensor is."""
import ast
import pathlib

import numpy
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import Op, Tensor, no_grad
from minigrad.autograd import graph_order, is_grad_enabled
from minigrad.ops import elementwise


def scalar(value, dtype=numpy.float64):
    return Tensor(numpy.array(value, dtype=dtype), requires_grad=True)


# --- topological order and fan-out -----------------------------------------------------
def test_tensor_used_twice_gets_both_contributions():
    x = scalar(3.0)
    (x * x).backward()
    assert x.grad == 6.0          # early tinygrad overwrote instead of adding: 3
    x = scalar(3.0)
    (x + x).backward()
    assert x.grad == 2.0


def test_intermediate_used_twice_is_finished_before_its_backward_runs():
    x = scalar(3.0)
    y = x * 2
    z = y * y + y                 # dz/dy = 2y + 1 = 13, dz/dx = 26
    z.backward()
    assert x.grad == 26.0


def test_diamond():
    x = scalar(2.0)
    a, b = x * 2, x * 3
    (a * b).backward()            # 6 x^2 -> 12 x
    assert x.grad == 24.0


def counting_op():
    """An identity op that counts how often its backward runs."""
    calls = []

    def backward(gy, cache):
        calls.append(gy.copy())
        return (gy,)
    return Op("identity", lambda x: (x, None), backward), calls


def test_each_backward_runs_once_with_the_summed_gradient():
    identity, calls = counting_op()
    x = scalar(3.0)
    y = identity(x)
    z = y * y + y * 4 + y         # dz/dy = 2y + 5 = 11
    z.backward()
    assert len(calls) == 1 and calls[0] == 11.0
    assert x.grad == 11.0


def test_topological_order_puts_every_tensor_before_its_inputs_once():
    x = scalar(1.0)
    a, b = x * 2, x + 1
    c = a * b
    d = c + a + b * c
    order = list(reversed(graph_order(d, follow=lambda t: t.requires_grad)))
    assert len(order) == len({id(t) for t in order}) == 7   # x, a, b, c, c + a, b * c, d: once each
    position = {id(t): i for i, t in enumerate(order)}
    for t in order:
        if t.node is not None:
            for parent in t.node.inputs:
                if parent.requires_grad:
                    assert position[id(parent)] > position[id(t)]


def test_inception_like_fan_out():
    # one input, four branches, concatenated: the input's gradient is the sum of four
    x = Tensor(numpy.arange(6.0).reshape(1, 6), requires_grad=True)
    branches = [x * 1, x * 2, F.relu(x), x ** 2]
    F.concat(branches, axis=0).sum().backward()
    numpy.testing.assert_allclose(x.grad, 1 + 2 + (x.numpy() > 0) + 2 * x.numpy())


@pytest.mark.parametrize("depth", [1000, 5000])
def test_deep_chain_does_not_hit_the_recursion_limit(depth):
    x = scalar(1.0)
    y = x
    for _ in range(depth):
        y = y * 1.0 + 0.5
    y.backward()
    assert x.grad == 1.0
    assert y.item() == 1.0 + 0.5 * depth
    del y                          # freeing a deep chain must not overflow either


# --- accumulation, no_grad, detach, retain_grad ------------------------------------------
def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = Tensor(numpy.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()                   # the graph was kept: a second walk adds again
    numpy.testing.assert_array_equal(x.grad, [4.0, 8.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_leaf_grad_is_not_an_alias_of_an_upstream_array():
    x = Tensor(numpy.array([1.0, 2.0]), requires_grad=True)
    gy = numpy.array([1.0, 1.0])
    (x + 0).backward(gy)
    x.grad += 5
    numpy.testing.assert_array_equal(gy, [1.0, 1.0])


def test_no_grad_records_nothing_and_restores():
    x = scalar(2.0)
    with no_grad():
        assert not is_grad_enabled()
        y = x * x
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_restores_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()
    assert (scalar(1.0) * 2).requires_grad


def test_detach_cuts_the_graph():
    x = scalar(3.0)
    h = x * 2
    y = h.detach()
    assert not y.requires_grad and y.is_leaf and y.data is h.data   # same values, no history
    (y * x).backward()             # y is a constant now: d(6 x)/dx = 6, not 12 x
    assert x.grad == 6.0


def test_retain_grad_keeps_an_intermediate_gradient():
    x = scalar(3.0)
    y = x * 2
    kept = (x * 4).retain_grad()
    (y * kept).backward()          # 8 x^2
    assert y.grad is None          # intermediates drop theirs by default
    assert kept.grad == 6.0        # d/d kept = y = 6
    assert x.grad == 48.0


# --- backward errors --------------------------------------------------------------------
def test_backward_on_a_non_scalar_needs_an_upstream_gradient():
    x = Tensor(numpy.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"a tensor of shape \(2, 3\) needs an explicit upstream gradient"):
        y.backward()
    with pytest.raises(ValueError, match=r"gradient shape \(3,\) != tensor shape \(2, 3\)"):
        y.backward(numpy.ones(3))
    y.backward(numpy.full((2, 3), 0.5))
    numpy.testing.assert_array_equal(x.grad, numpy.ones((2, 3)))


def test_upstream_gradient_takes_the_tensor_dtype():
    x = Tensor(numpy.ones(3), requires_grad=True)
    x.backward(numpy.ones(3, dtype=numpy.float32))
    assert x.grad.dtype == numpy.float64


def test_a_backward_with_the_wrong_number_of_gradients_is_named():
    bad = Op("bad", lambda a, b: (a + b, None), lambda gy, cache: (gy,))
    with pytest.raises(RuntimeError, match="backward of 'bad' returned 1 gradients for 2 inputs"):
        bad(scalar(1.0), scalar(2.0)).backward()
    extra = Op("extra", lambda a: (a, None), lambda gy, cache: (gy, gy))
    with pytest.raises(RuntimeError, match="backward of 'extra' returned 2 gradients for 1 inputs"):
        extra(scalar(1.0)).backward()


def test_trailing_none_gradient_for_an_omitted_optional_input():
    x, W = Tensor(numpy.ones((2, 3)), requires_grad=True), Tensor(numpy.ones((4, 3)), requires_grad=True)
    F.linear(x, W).sum().backward()            # backward returns (gx, gW, None)
    numpy.testing.assert_array_equal(x.grad, numpy.full((2, 3), 4.0))


def test_a_gradient_of_the_wrong_shape_is_named():
    lazy_add = Op("lazy_add", elementwise.add_forward, lambda gy, shapes: (gy, gy))  # no unbroadcast
    a, b = Tensor(numpy.ones((3, 4)), requires_grad=True), Tensor(numpy.ones(4), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward of 'lazy_add' returned a gradient of shape \(3, 4\) "
                                           r"for input 1 of shape \(4,\)"):
        lazy_add(a, b).sum().backward()


# --- what a Tensor is -------------------------------------------------------------------
def test_requires_grad_needs_a_float_tensor():
    with pytest.raises(ValueError, match="requires_grad needs a floating-point tensor, got dtype int64"):
        Tensor([1, 2, 3], requires_grad=True)


def test_numpy_and_item():
    x = Tensor(numpy.array([[1.5]]))
    assert isinstance(x.numpy(), numpy.ndarray) and x.numpy().shape == (1, 1)
    assert x.item() == 1.5 and isinstance(x.item(), float)
    with pytest.raises(ValueError, match=r"only a one-element tensor has an item, this one has shape \(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_repr_is_readable():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "Tensor([1., 2.], dtype=float32, requires_grad=True)"
    assert repr(x * 2) == "Tensor([2., 4.], dtype=float32, op=mul)"
    assert "..." in repr(Tensor(numpy.zeros(1000)))          # long tensors are abbreviated


def test_dtypes_of_new_tensors():
    assert Tensor(1.5).dtype == numpy.float32
    assert Tensor([1.0, 2.0]).dtype == numpy.float32        # Python floats -> float32
    assert mg.tensor([[1.0], [2.0]]).dtype == numpy.float32
    assert Tensor([1, 2]).dtype == numpy.int64
    assert Tensor(numpy.ones(2)).dtype == numpy.float64     # a float64 array stays float64
    assert Tensor(numpy.float64(2.0)).dtype == numpy.float64
    assert Tensor([1.0], dtype=numpy.float64).dtype == numpy.float64
    assert mg.zeros((2, 2)).dtype == mg.ones(3).dtype == mg.randn(2, seed=0).dtype == numpy.float32


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_python_scalars_keep_the_tensor_dtype(dtype):
    x = Tensor(numpy.array([1.0, 2.0], dtype=dtype), requires_grad=True)
    for y in (x * 2.0, 2.0 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x ** 2, -x, x * True):
        assert y.dtype == dtype
    (x * 2.0).sum().backward()
    assert x.grad.dtype == dtype


def test_python_float_with_an_integer_tensor_is_not_truncated():
    y = Tensor([1, 2, 3]) * 0.5
    numpy.testing.assert_array_equal(y.numpy(), [0.5, 1.0, 1.5])
    assert (Tensor([1, 2]) * 2).dtype == numpy.int64


def test_tensors_of_different_float_dtypes_are_an_error_naming_the_op():
    x = Tensor(numpy.ones(3, dtype=numpy.float32), requires_grad=True)
    with pytest.raises(ValueError, match=r"mul: inputs have different floating-point dtypes "
                                         r"\(float32, float64\); convert one with .astype"):
        x * Tensor(numpy.full(3, 2.0))


@pytest.mark.parametrize("constant", [numpy.full(3, 2.0), numpy.float64(2.0), 2.0, numpy.full(3, 2)],
                         ids=["float64 array", "numpy float64", "python float", "int array"])
def test_a_constant_takes_the_float_tensor_dtype(constant):
    x = Tensor(numpy.ones(3, dtype=numpy.float32), requires_grad=True)
    for y in (x * constant, constant * x, x + constant, constant - x):
        assert y.dtype == numpy.float32
    (x * constant).sum().backward()
    assert x.grad.dtype == numpy.float32
    numpy.testing.assert_array_equal(x.grad, [2, 2, 2])


def test_a_backward_that_changes_the_dtype_is_named():
    promoting = Op("promoting", lambda x: (x * 2, None), lambda gy, cache: (gy.astype(numpy.float64) * 2,))
    x = Tensor(numpy.ones(3, dtype=numpy.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward of 'promoting' returned a float64 gradient "
                                           r"for input 0 of dtype float32"):
        promoting(x).sum().backward()


def test_numpy_array_on_the_left_gives_a_tensor():
    x = Tensor(numpy.ones(2), requires_grad=True)
    y = numpy.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_shape_helpers():
    x = Tensor(numpy.zeros((2, 3, 4)))
    assert (x.shape, x.ndim, x.size, len(x), x.device) == ((2, 3, 4), 3, 24, 2, "cpu")
    assert x.reshape(6, 4).shape == x.reshape((6, 4)).shape == (6, 4)


def test_backward_with_a_list_keeps_float64_precision():
    x = Tensor(numpy.zeros(2), requires_grad=True)
    (x * 1.0).backward([0.1, 0.2])
    assert x.grad.dtype == numpy.float64
    assert x.grad.tolist() == [0.1, 0.2]          # not 0.10000000149 (a float32 detour)


def test_backward_steps_yields_each_tensor_once_its_gradient_is_complete():
    x = Tensor(numpy.array([2.0, 3.0]), requires_grad=True)
    y = x * x                     # used twice below: its gradient arrives along two paths
    z = (y + y * 3.0).sum()
    steps = list(z.backward_steps())
    order = [tensor for tensor, _ in steps]
    assert order[0] is z and order[-1] is x
    assert sum(t is y for t in order) == 1                       # y appears once, complete
    gradient_of = {id(t): g for t, g in steps}
    numpy.testing.assert_array_equal(gradient_of[id(y)], [4.0, 4.0])   # 1 + 3 from the two paths
    numpy.testing.assert_array_equal(gradient_of[id(x)], [16.0, 24.0])  # 4 * 2x
    numpy.testing.assert_array_equal(x.grad, [16.0, 24.0])


def test_backward_steps_is_lazy_and_updates_leaves_as_it_goes():
    x = Tensor(numpy.array([1.0]), requires_grad=True)
    steps = (x * 2.0).sum().backward_steps()
    next(steps)                                                  # the sum
    assert x.grad is None
    for tensor, _ in steps:
        if tensor is x:
            numpy.testing.assert_array_equal(x.grad, [2.0])


# --- the engine and the functions ----------------------------------------------------------
def test_node_is_the_public_read_only_view_of_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * x + 1
    assert x.node is None and x.is_leaf
    assert y.node.name == "add" and y.node.inputs[0].node.name == "mul"
    assert y.node.inputs[0].node.inputs == (x, x)          # a tensor used twice appears twice
    with pytest.raises(AttributeError):
        y.node = None


def test_the_engine_imports_no_function():
    """minigrad.functional imports the engine, never the other way round (no import cycle):
    autograd.py imports the backend, the thread pool (for the sums of gradients) and NumPy,
    and no op."""
    tree = ast.parse(pathlib.Path(mg.autograd.__file__).read_text())
    imported = sorted([alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                       for alias in node.names]
                      + ["." * node.level + (node.module or "") + ":" + alias.name
                         for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                         for alias in node.names])
    assert imported == [".:backend", ".:parallel", "contextlib", "numpy"]


def test_an_operator_calls_the_function_and_its_op(monkeypatch):
    """``x.relu()`` is ``F.relu(x)``, which calls ``F.relu.op``: a backward swapped there (as a
    lesson plants a bug) is the one the operator's graph runs."""
    monkeypatch.setattr(F.relu.op, "backward", lambda gy, cache: (gy * 0 + 7,))
    x = Tensor([1.0, -1.0], requires_grad=True)
    x.relu().sum().backward()
    numpy.testing.assert_array_equal(x.grad, [7.0, 7.0])
    assert (x * 2).node.name == F.mul.op.name == "mul"



def test_every_differentiable_function_exposes_its_op_under_its_own_name():
    composed_or_plain = {"split", "flatten", "accuracy", "topk_accuracy"}
    for name in F.__all__:
        function = getattr(F, name)
        if name in composed_or_plain:
            assert not hasattr(function, "op"), name
        else:
            assert isinstance(function.op, Op) and function.op.name == name, name


# --- placed gradients: an index's gradient is kept with its place, not put into zeros ------------
def slice_gradient_cases():
    """(name, how x is used: a function of the tensor x (4, 6, 5) to a list of outputs, each
    of whose gradients is drawn at random)."""
    return {
        "a split: the pieces tile x": lambda x: F.split(x, [1, 3, 2], axis=1),
        "overlapping slices": lambda x: [x[:, 1:4], x[:, 2:6], x[1:3]],
        "an int, None and Ellipsis": lambda x: [x[2], x[None, :, 1], x[..., 3], x[:, ::2]],
        "a slice and the whole": lambda x: [x[:, 1:3], x * 1.0],
        "one slice alone": lambda x: [x[1:3, 2:5]],
        "single elements": lambda x: [x[1, 2, 3], x[0, 0, 0], x[1, 2]],
        "a split and an array index": lambda x: F.split(x, [4, 2], axis=1) + [x[numpy.array([0, 0, 3])]],
    }


@pytest.mark.parametrize("name", slice_gradient_cases())
def test_gradients_kept_with_their_place_add_up_as_the_placed_arrays_do(name):
    """Tensor.backward keeps each basic index's gradient with its place and puts it in when
    x's gradient is made; node.backward hands out the whole arrays. The two agree exactly."""
    rng = numpy.random.default_rng(3)
    x = Tensor(rng.standard_normal((4, 6, 5)), requires_grad=True)
    outputs = slice_gradient_cases()[name](x)
    upstream = [rng.standard_normal(out.shape) for out in outputs]
    F.concat([F.reshape(out, (-1,)) for out in outputs], axis=0).backward(
        numpy.concatenate([g.reshape(-1) for g in upstream]), retain_graph=True)
    expected = numpy.zeros(x.shape)
    for out, g in zip(outputs, upstream):                   # each node's whole array, summed
        node = out.node
        whole = node.backward(g, node.cache)[0] if node.name == "getitem" else g
        expected += whole
    numpy.testing.assert_allclose(x.grad, expected, rtol=1e-15, atol=1e-15)


def test_the_pieces_of_a_split_fill_one_gradient_laid_out_as_they_are():
    """Pieces whose gradients come batch-last, (C, H, W, N) in memory (a convolution's, in the
    numpy kernel set), give a batch-last gradient with no zeros made first: each piece's
    gradient is copied into its place."""
    data = numpy.arange(2 * 5 * 3 * 3, dtype=numpy.float32).reshape(5, 3, 3, 2).transpose(3, 0, 1, 2)
    x = Tensor(data, requires_grad=True)
    y = F.relu(x)                                            # an intermediate: its gradient is made
    pieces = F.split(y, [2, 3], axis=1)
    seen = {}
    original = mg.autograd._array_laid_out_as

    def spy(values, shape, zeroed):
        seen["zeroed"] = zeroed
        seen["layout"] = mg.parallel.axes_by_stride(original(values, shape, zeroed))
        return original(values, shape, zeroed)
    mg.autograd._array_laid_out_as = spy
    try:
        upstream = numpy.ones((5, 3, 3, 2), dtype=numpy.float32).transpose(3, 0, 1, 2)
        F.concat([pieces[1], pieces[0]], axis=1).backward(upstream)
    finally:
        mg.autograd._array_laid_out_as = original
    assert seen == {"zeroed": False, "layout": [1, 2, 3, 0]}
    numpy.testing.assert_array_equal(x.grad, (data > 0).astype(numpy.float32))


# --- inference: the forward of a call that keeps no node ------------------------------------------
def test_an_op_runs_its_inference_forward_when_no_gradient_is_wanted():
    calls = []
    double = Op("double", lambda x: (calls.append("forward") or 2 * x, None), lambda gy, cache: (2 * gy,),
                inference=lambda x: calls.append("inference") or 2 * x)
    x = Tensor(numpy.arange(3.0), requires_grad=True)
    assert double(x).requires_grad and calls == ["forward"]
    with no_grad():
        numpy.testing.assert_array_equal(double(x).numpy(), [0.0, 2.0, 4.0])
    assert not double(Tensor(numpy.arange(3.0))).requires_grad
    assert calls == ["forward", "inference", "inference"]


def test_max_pooling_finds_no_argmax_when_no_gradient_is_wanted(monkeypatch):
    """Under no_grad (an evaluation) the kernel set is told that no backward will come."""
    from minigrad.kernels import vectorized
    asked = []
    original = vectorized.max_pool2d_forward
    monkeypatch.setattr(vectorized, "max_pool2d_forward",
                        lambda x, win, argmax=True: asked.append(argmax) or original(x, win, argmax))
    x = Tensor(numpy.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype(numpy.float32), requires_grad=True)
    y = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
    with no_grad():
        y_evaluated = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
    numpy.testing.assert_array_equal(y_evaluated.numpy(), y.numpy())
    assert asked == [True, False] and y.requires_grad and not y_evaluated.requires_grad
