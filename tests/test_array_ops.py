"""Reductions (sum, mean, max), linear algebra (matmul, linear), shape ops (reshape,
transpose, getitem, concat, split, flatten), to_device and astype.

Forward against loop oracles (``oracles.py``: explicit index arithmetic, sums
with ``math.fsum``) on every backend of the ``xp`` fixture; float64 gradient
checks through the Tensor API and on the raw pairs; the errors name the op and
the shapes.
"""
import functools
import math
import operator

import numpy
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import minigrad.functional as F
from minigrad import Tensor, backend
from minigrad.gradcheck import gradcheck
from minigrad.ops import linalg, reduce, shape as shape_ops

import oracles

TOLERANCE = 1e-7


def make(shape, seed):
    return numpy.random.default_rng(seed).standard_normal(shape)


def distinct(shape, seed):
    """Shuffled, well separated values: no ties for max (its gradient has a kink at a tie)."""
    values = numpy.linspace(-1, 1, int(numpy.prod(shape)))
    return numpy.random.default_rng(seed).permutation(values).reshape(shape)


def dyadic(shape, seed):
    """Shuffled distinct multiples of 1/8 (no ties for max). Their sums and products in
    any order are exact in float64, so a sum, mean or matmul equals its oracle exactly."""
    size = math.prod(shape)
    values = (numpy.arange(size) - size // 2) / 8
    return numpy.random.default_rng(seed).permutation(values).reshape(shape)


def check_forward(xp, fn, oracle, *arrays):
    """``fn`` on ``xp`` arrays gives exactly the ``oracle``'s values; on a GPU, so does its
    backward. The oracle runs first, so an op that wrote into its input could not change them."""
    expected = oracle(*arrays)
    out = fn(*[Tensor(xp.asarray(a)) for a in arrays])
    assert out.shape == expected.shape
    numpy.testing.assert_array_equal(out.numpy(), expected)
    if xp is not numpy:
        for on_xp, on_numpy in zip(gradients(xp, fn, arrays), gradients(numpy, fn, arrays)):
            numpy.testing.assert_allclose(on_xp, on_numpy, rtol=1e-12, atol=1e-14)


def gradients(xp, fn, arrays):
    """The input gradients of ``fn`` for a fixed random upstream gradient, computed on ``xp``."""
    tensors = [Tensor(xp.asarray(a), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(xp.asarray(numpy.random.default_rng(0).standard_normal(out.shape)))
    return [backend.to_numpy(t.grad) for t in tensors]


def check_gradients(fn, pair, *arrays):
    assert gradcheck(fn, *arrays, tolerance=TOLERANCE).max_rel_error < TOLERANCE
    if pair is not None:
        assert gradcheck(pair, *arrays, tolerance=TOLERANCE).max_rel_error < TOLERANCE


# --- reductions ----------------------------------------------------------------------
# name: (how the oracle combines a list of floats, raw pair)
REDUCTIONS = {
    "sum": (math.fsum, reduce.sum_forward, reduce.sum_backward),
    "mean": (oracles.mean, reduce.mean_forward, reduce.mean_backward),
    "max": (max, reduce.max_forward, reduce.max_backward),
}
AXES = [((2, 3, 4), None), ((2, 3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, -3)),
        ((3, 1, 2), 1), ((5,), 0), ((5,), None)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_forward_matches_oracle(xp, name, shape, axis, keepdims):
    combine, _, _ = REDUCTIONS[name]
    fn = functools.partial(getattr(F, name), axis=axis, keepdims=keepdims)
    oracle = functools.partial(oracles.reduction, combine, axis=axis, keepdims=keepdims)
    check_forward(xp, fn, oracle, dyadic(shape, 0))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_gradcheck(name, shape, axis, keepdims):
    _, forward, backward = REDUCTIONS[name]
    x = distinct(shape, 1)
    fn = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)  # noqa: E731  the Tensor method
    check_gradients(fn, (functools.partial(forward, axis=axis, keepdims=keepdims), backward), x)


def test_max_shares_the_gradient_between_ties():
    x = Tensor(numpy.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


# --- max: integer and boolean input, NaN, ties --------------------------------------------------
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)], ids=str)
@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "int64", "uint8"])
def test_max_of_integer_and_boolean_tensors_is_numpys(dtype, axis, keepdims):
    x = numpy.random.default_rng(3).integers(0, 5, size=(3, 4)).astype(dtype)
    out = Tensor(x).max(axis=axis, keepdims=keepdims)
    expected = x.max(axis=axis, keepdims=keepdims)
    assert out.dtype == x.dtype and out.shape == expected.shape
    numpy.testing.assert_array_equal(out.numpy(), expected)
    assert not out.requires_grad            # integer tensors cannot require grad: no graph
    torch = optional_torch()
    if torch is not None:
        dims = () if axis is None else axis
        numpy.testing.assert_array_equal(torch.amax(torch.tensor(x), dim=dims, keepdim=keepdims).numpy(),
                                         out.numpy(), strict=True)


def optional_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def naive_max_gradient(x, axis, keepdims, gy):
    """The documented rule by loops: in each reduced slice the winners are its NaNs if it has
    any (NaN is the max), else the elements equal to its max; each gets gy / (number of winners)."""
    reduced = oracles.reduced_axes(axis, x.ndim)
    kept = [d for d in range(x.ndim) if d not in reduced]
    gx = numpy.zeros_like(x)
    slices = {}
    for index in numpy.ndindex(*x.shape):
        slices.setdefault(tuple(index[d] for d in kept), []).append(index)
    for key, members in slices.items():
        values = numpy.array([x[i] for i in members])
        wins = numpy.isnan(values) if numpy.isnan(values).any() else values == values.max()
        out_index = tuple(0 if d in reduced else index_d for d, index_d in enumerate(members[0])) if keepdims else key
        for member, won in zip(members, wins):
            gx[member] = gy[out_index] / wins.sum() if won else 0.0
    return gx


def test_max_gradient_goes_to_the_nan():
    x = Tensor(numpy.array([1.0, numpy.nan, 0.5]), requires_grad=True)
    y = x.max()
    y.backward()
    assert numpy.isnan(y.item())
    assert x.grad.tolist() == [0.0, 1.0, 0.0]                 # PyTorch's x.max() gives the same
    x = Tensor(numpy.array([[numpy.nan, 2.0, numpy.nan], [1.0, 3.0, 3.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    assert x.grad.tolist() == [[0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]   # shared among NaNs as among ties


SPECIAL = st.sampled_from([0.0, 1.0, 2.0, -1.0, numpy.nan, numpy.inf, -numpy.inf])


@settings(max_examples=60, deadline=None)
@given(x=arrays(numpy.float64, array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), elements=SPECIAL),
       data=st.data())
def test_max_gradient_with_ties_nan_and_inf_follows_the_rule_and_pytorch(x, data):
    """The class of inputs where max's gradient is a choice: ties, NaN, +-inf. Ours against the
    rule written as loops, and PyTorch's x.max() (all axes: the same rule, exactly), amax(dim)
    (the same where no slice holds NaN; PyTorch's amax gives NaN gradients there) and
    max(dim) (which gives everything to one winner: the same where a slice has one winner)."""
    axis = data.draw(st.sampled_from([None, *range(x.ndim)]))
    keepdims = data.draw(st.booleans())
    t = Tensor(x.copy(), requires_grad=True)
    y = t.max(axis=axis, keepdims=keepdims)
    gy = numpy.random.default_rng(0).standard_normal(y.shape)
    y.backward(gy)
    numpy.testing.assert_array_equal(t.grad, naive_max_gradient(x, axis, keepdims, gy))
    torch = optional_torch()
    if torch is None:
        return
    theirs = torch.tensor(x, requires_grad=True)
    if axis is None:
        reference = theirs.max().reshape(y.shape)
    else:
        slice_has_nan = numpy.isnan(x).any(axis=axis, keepdims=True)
        slice_winners = ((x == x.max(axis=axis, keepdims=True)) | numpy.isnan(x)).sum(axis=axis, keepdims=True)
        if slice_has_nan.any() and (slice_winners > 1).any():
            return                      # neither amax nor max(dim) follows the rule here
        reference = (theirs.max(dim=axis, keepdim=keepdims).values if slice_has_nan.any()
                     else theirs.amax(dim=axis, keepdim=keepdims))
    reference.backward(torch.tensor(gy))
    numpy.testing.assert_array_equal(y.numpy(), reference.detach().numpy())
    numpy.testing.assert_allclose(t.grad, theirs.grad.numpy(), rtol=1e-15, atol=0)


def test_max_ties_follow_amax_not_max_dim():
    """Documented choice: ties share the gradient equally (PyTorch's x.max() and amax); PyTorch's
    x.max(dim) gives it all to the first winner instead."""
    x = numpy.array([[3.0, 3.0, 1.0], [2.0, 5.0, 5.0]])
    ours = Tensor(x, requires_grad=True)
    ours.max(axis=1).sum().backward()
    assert ours.grad.tolist() == [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]
    torch = optional_torch()
    if torch is not None:
        spread, first = (torch.tensor(x, requires_grad=True) for _ in range(2))
        spread.amax(dim=1).sum().backward()
        first.max(dim=1).values.sum().backward()
        assert spread.grad.tolist() == ours.grad.tolist()
        assert first.grad.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def test_max_over_an_empty_axis_names_the_op():
    with pytest.raises(ValueError, match=r"max: cannot reduce over axis 1 of length 0 \(shape \(3, 0\)\)"):
        Tensor(numpy.ones((3, 0))).max(axis=1)
    assert Tensor(numpy.ones((0, 3))).max(axis=1).shape == (0,)     # empty slices: none to reduce


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_axis_out_of_range(name):
    with pytest.raises(ValueError, match=rf"{name}: axis 2 is out of range for an array with 2 dimensions"):
        getattr(F, name)(Tensor(numpy.ones((2, 3))), axis=2)
    with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range"):
        getattr(F, name)(Tensor(numpy.ones((2, 3))), axis=-3)


def test_reductions_keep_float32():
    x = Tensor(numpy.ones((2, 3), dtype=numpy.float32), requires_grad=True)
    for y in (x.sum(), x.mean(axis=0), x.max(axis=-1)):
        y.sum().backward()
        assert y.dtype == x.grad.dtype == numpy.float32


# --- matmul and linear -------------------------------------------------------------------
MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),            # 1-D on the left: a row vector
    ((3, 4), (4,)),            # 1-D on the right: a column vector
    ((4,), (4,)),              # a dot product, 0-d result
    ((2, 3, 4), (4, 5)),       # batched @ matrix
    ((2, 3, 4), (2, 4, 5)),    # batched @ batched
    ((2, 1, 3, 4), (3, 4, 2)), # batch axes broadcast
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_forward_matches_oracle(xp, shapes):
    check_forward(xp, lambda a, b: a @ b, oracles.matmul, dyadic(shapes[0], 0), dyadic(shapes[1], 1))


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_gradcheck(shapes):
    a, b = make(shapes[0], 2), make(shapes[1], 3)
    check_gradients(lambda x, y: x @ y, (linalg.matmul_forward, linalg.matmul_backward), a, b)


def test_matmul_with_a_numpy_array_on_the_left():
    a, b = make((2, 3), 4), Tensor(make((3, 2), 5), requires_grad=True)
    out = a @ b
    assert isinstance(out, Tensor)
    out.sum().backward()
    numpy.testing.assert_allclose(b.grad, a.T @ numpy.ones((2, 2)))


def test_matmul_inner_dimension_mismatch():
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ: \(2, 3\) @ \(4, 5\) \(3 != 4\)"):
        Tensor(numpy.ones((2, 3))) @ Tensor(numpy.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: needs arrays of at least 1 dimension"):
        F.matmul(Tensor(numpy.ones(())), Tensor(numpy.ones(3)))


@pytest.mark.parametrize("bias", ["given", "omitted", "None"])
def test_linear_forward_and_gradcheck(xp, bias):
    def inputs(x, W, b):
        return {"given": (x, W, b), "omitted": (x, W), "None": (x, W, None)}[bias]

    x, W, b = dyadic((3, 4), 6), dyadic((5, 4), 7), dyadic((5,), 8)
    expected = oracles.matmul(x, oracles.transpose(W))
    if bias == "given":
        expected = oracles.elementwise(operator.add, expected, b)
    out = F.linear(*[None if a is None else Tensor(xp.asarray(a)) for a in inputs(x, W, b)])
    numpy.testing.assert_array_equal(out.numpy(), expected, strict=True)
    check_gradients(F.linear, (linalg.linear_forward, linalg.linear_backward),
                    *inputs(make((3, 4), 6), make((5, 4), 7), make((5,), 8)))


def test_linear_bad_shapes_name_the_layer():
    x, W = Tensor(numpy.ones((3, 4))), Tensor(numpy.ones((5, 6)))
    with pytest.raises(ValueError, match=r"linear: x has 4 features but weight expects 6 \(x \(3, 4\), weight \(5, 6\)\)"):
        F.linear(x, W)
    with pytest.raises(ValueError, match=r"linear: bias shape \(4,\) should be \(5,\)"):
        F.linear(x, Tensor(numpy.ones((5, 4))), Tensor(numpy.ones(4)))
    with pytest.raises(ValueError, match=r"linear: expected x of shape \(\*, in\) and weight of shape \(out, in\), "
                                         r"got x \(\) and weight \(5, 4\)"):
        F.linear(Tensor(numpy.ones(())), Tensor(numpy.ones((5, 4))))
    with pytest.raises(ValueError, match=r"linear: expected x of shape \(\*, in\) .* weight \(5, 4, 1\)"):
        F.linear(Tensor(numpy.ones(4)), Tensor(numpy.ones((5, 4, 1))))


# --- reshape, transpose, flatten -----------------------------------------------------------
@pytest.mark.parametrize("new_shape", [(6, 4), (-1,), (4, -1, 2), (1, 24), (2, 3, 4, 1)], ids=str)
def test_reshape(xp, new_shape):
    x = make((2, 3, 4), 9)
    check_forward(xp, lambda t: t.reshape(new_shape), lambda a: oracles.reshape(a, new_shape), x)
    check_gradients(lambda t: t.reshape(*new_shape),
                    (functools.partial(shape_ops.reshape_forward, shape=new_shape), shape_ops.reshape_backward), x)


def test_reshape_to_an_incompatible_size():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape \(2, 3\) \(6 values\) into \(4, 2\)"):
        Tensor(numpy.ones((2, 3))).reshape(4, 2)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape \(2, 3\) \(6 values\) into \(4, -1\)"):
        Tensor(numpy.ones((2, 3))).reshape(4, -1)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape"):
        Tensor(numpy.ones((2, 3))).reshape(-1, -1)


@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1), (0, -1, -2)], ids=str)
def test_transpose(xp, axes):
    x = make((2, 3, 4), 10)
    check_forward(xp, lambda t: F.transpose(t, axes=axes), lambda a: oracles.transpose(a, axes), x)
    check_gradients(lambda t: F.transpose(t, axes=axes),
                    (functools.partial(shape_ops.transpose_forward, axes=axes), shape_ops.transpose_backward), x)


def test_transpose_methods():
    x = make((2, 3, 4), 11)
    reversed_axes, rotated = oracles.transpose(x), oracles.transpose(x, (2, 0, 1))
    numpy.testing.assert_array_equal(Tensor(x).T.numpy(), reversed_axes, strict=True)
    numpy.testing.assert_array_equal(Tensor(x).transpose(2, 0, 1).numpy(), rotated, strict=True)
    numpy.testing.assert_array_equal(Tensor(x).transpose((2, 0, 1)).numpy(), rotated, strict=True)


@pytest.mark.parametrize("start_axis, expected", [(0, (120,)), (1, (2, 60)), (2, (2, 3, 20)), (3, (2, 3, 4, 5))])
def test_flatten(xp, start_axis, expected):
    x = make((2, 3, 4, 5), 12)
    flat = oracles.reshape(x, expected)
    out = F.flatten(Tensor(xp.asarray(x)), start_axis)
    numpy.testing.assert_array_equal(out.numpy(), flat, strict=True)
    check_gradients(lambda t: t.flatten(start_axis), None, x[:, :2, :2, :2].copy())


# --- getitem ---------------------------------------------------------------------------
# name: (index into an x of shape (3, 4, 2), the result's shape, and where result
# element (i, j, ...) comes from in x: the index's meaning, written out by hand)
INDEXES = {
    "int": (1, (4, 2), lambda j, k: (1, j, k)),
    "negative int": (-1, (4, 2), lambda j, k: (2, j, k)),
    "slices": ((slice(None), slice(1, 3)), (3, 2, 2), lambda i, j, k: (i, 1 + j, k)),
    "steps": ((slice(None, None, -1), slice(None, None, 2)), (3, 2, 2), lambda i, j, k: (2 - i, 2 * j, k)),
    "ellipsis": ((Ellipsis, 0), (3, 4), lambda i, j: (i, j, 0)),
    "new axis": ((None, 1), (1, 4, 2), lambda new, j, k: (1, j, k)),
    "int array with repeats": (numpy.array([2, 0, 2, 2]), (4, 4, 2), lambda p, j, k: ((2, 0, 2, 2)[p], j, k)),
    "list with repeats": ([0, 0, 1], (3, 4, 2), lambda p, j, k: ((0, 0, 1)[p], j, k)),
    "array on axis 1": ((slice(None), numpy.array([1, 1, 0, 3])), (3, 4, 2),
                        lambda i, p, k: (i, (1, 1, 0, 3)[p], k)),
    # the arrays pair up: result element p is x[first[p], second[p], :]
    "two arrays": ((numpy.array([0, 2, 0]), numpy.array([3, 3, 3])), (3, 2),
                   lambda p, k: ((0, 2, 0)[p], (3, 3, 3)[p], k)),
    # the mask keeps rows 0 and 2
    "boolean mask": (numpy.array([True, False, True]), (2, 4, 2), lambda p, j, k: ((0, 2)[p], j, k)),
}


def on_backend(xp, index):
    """The same index with its arrays moved to the backend."""
    if isinstance(index, tuple):
        return tuple(on_backend(xp, i) for i in index)
    return xp.asarray(index) if isinstance(index, numpy.ndarray) else index


@pytest.mark.parametrize("name", INDEXES)
def test_getitem(xp, name):
    index, shape, source = INDEXES[name]
    x = make((3, 4, 2), 13)
    expected = oracles.gather(x, shape, lambda out_index: source(*out_index))
    out = Tensor(xp.asarray(x))[on_backend(xp, index)]
    numpy.testing.assert_array_equal(out.numpy(), expected, strict=True)
    check_gradients(lambda t: t[index],
                    (functools.partial(shape_ops.getitem_forward, index=index), shape_ops.getitem_backward), x)


def test_getitem_repeated_index_accumulates():
    x = Tensor(numpy.zeros(4), requires_grad=True)
    x[numpy.array([1, 1, 1, 3])].sum().backward()
    numpy.testing.assert_array_equal(x.grad, [0, 3, 0, 1])


def test_getitem_accepts_an_integer_tensor_as_index():
    x = Tensor(numpy.arange(5.0), requires_grad=True)
    y = x[Tensor([4, 4, 0])]
    numpy.testing.assert_array_equal(y.numpy(), [4, 4, 0])
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad, [1, 0, 0, 0, 2])


# --- concat and split ----------------------------------------------------------------------
CONCATS = [
    ([(2, 3), (4, 3)], 0),
    ([(2, 3, 1), (2, 3, 2), (2, 3, 3)], -1),
    ([(2, 1, 2), (2, 4, 2)], 1),
    ([(3,)], 0),
]


@pytest.mark.parametrize("shapes, axis", CONCATS, ids=str)
def test_concat(xp, shapes, axis):
    arrays = [make(s, i) for i, s in enumerate(shapes)]
    expected = oracles.concat(arrays, axis)
    out = F.concat([Tensor(xp.asarray(a)) for a in arrays], axis=axis)
    numpy.testing.assert_array_equal(out.numpy(), expected, strict=True)
    check_gradients(lambda *ts: F.concat(ts, axis=axis),
                    (functools.partial(shape_ops.concat_forward, axis=axis), shape_ops.concat_backward), *arrays)


def test_concat_mismatch():
    a, b = Tensor(numpy.ones((2, 3))), Tensor(numpy.ones((2, 4)))
    message = r"concat along axis 0: input 1 has shape \(2, 4\), input 0 has shape \(2, 3\)"
    with pytest.raises(ValueError, match=message):
        F.concat([a, b], axis=0)
    with pytest.raises(ValueError, match=r"concat: input 1 has 1 dimensions, input 0 has 2"):
        F.concat([a, Tensor(numpy.ones(3))])
    with pytest.raises(ValueError, match=r"concat: needs at least one input"):
        F.concat([])
    for axis in (2, -3):
        with pytest.raises(ValueError, match=rf"concat: axis {axis} is out of range for inputs with 2 "
                                             r"dimensions \(input 0 has shape \(2, 3\)\)"):
            F.concat([a, a], axis=axis)


@pytest.mark.parametrize("shape, sizes, axis", [((5, 3), [2, 3], 0), ((2, 6), [1, 2, 3], -1),
                                                ((2, 4, 2), [4], 1), ((4, 2), [0, 4], 0)], ids=str)
def test_split(xp, shape, sizes, axis):
    x = make(shape, 14)
    expected = oracles.split(x, sizes, axis)
    pieces = F.split(Tensor(xp.asarray(x)), sizes, axis=axis)
    assert len(pieces) == len(sizes)
    for piece, oracle_piece in zip(pieces, expected):
        numpy.testing.assert_array_equal(piece.numpy(), oracle_piece, strict=True)
    # weight each piece differently, so a gradient routed to the wrong piece shows up
    weighted = lambda t: F.concat([p * (i + 1) for i, p in enumerate(F.split(t, sizes, axis))], axis)  # noqa: E731
    check_gradients(weighted, None, x)


def test_split_sizes_must_add_up():
    with pytest.raises(ValueError, match=r"split: sizes \[2, 2\] add up to 4, but axis 0 of shape \(5, 3\) has 5"):
        F.split(Tensor(numpy.ones((5, 3))), [2, 2])


# --- devices and dtypes ----------------------------------------------------------------------
def test_to_device_cpu_is_differentiable():
    x = make((2, 3), 15)
    check_gradients(lambda t: t.to("cpu") * 2, None, x)
    check_gradients(lambda t: F.to_device(t, device="cpu"), None, x)
    numpy.testing.assert_array_equal(Tensor(x).to("cpu").numpy(), x)


def test_astype_round_trip_gradient():
    x = Tensor(make((2, 3), 16), requires_grad=True)
    y = x.astype(numpy.float32)
    assert y.dtype == numpy.float32
    (y * 3).sum().backward()
    assert x.grad.dtype == numpy.float64
    numpy.testing.assert_array_equal(x.grad, numpy.full((2, 3), 3.0))
    check_gradients(lambda t: t.astype("float64") * t, None, make((2, 3), 17))


def test_astype_to_integer_records_no_graph():
    x = Tensor(numpy.array([1.5, 2.5]), requires_grad=True)
    y = x.astype(numpy.int64)
    assert y.dtype == numpy.int64 and not y.requires_grad and y.is_leaf


def test_reductions_accept_numpy_integer_axes():
    x = Tensor(numpy.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.sum(axis=numpy.int64(1))
    assert y.numpy().tolist() == [3.0, 12.0]
    y.sum().backward()
    assert x.grad.tolist() == [[1.0] * 3] * 2
