"""conv2d, im2col and col2im on every kernel set: against loops, finite differences and PyTorch.

The loops below are the oracle of the reference kernel set; the reference set is
the oracle of the fast ones (tests/test_kernel_sets.py); PyTorch is a third opinion."""
import functools

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minigrad.functional as F
from minigrad import Tensor
from minigrad.backend import to_numpy
from minigrad.gradcheck import gradcheck
from minigrad import kernels
from minigrad.kernels import vectorized
from minigrad.kernels import reference
from minigrad.ops.conv import conv2d_backward, conv2d_forward
from minigrad.geometry import window
from minigrad.geometry import conv_output_size

from conftest import KERNEL_SETS, skip_without_twin


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def naive_conv2d(x, W, b=None, stride=1, padding=0, groups=1):
    """y[n, f, oh, ow] = b[f] + sum of W[f] * the window at (oh, ow): four plain loops.
    With groups, filter f sees only the C/groups channels of its group, f // (F/groups)."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    n_, c_, h, w = x.shape
    f_, c_per_group, kh, kw = W.shape
    x_pad = np.zeros((n_, c_, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n_, f_, oh, ow), dtype=x.dtype)
    for n in range(n_):
        for f in range(f_):
            for i in range(oh):
                for j in range(ow):
                    first = (f // (f_ // groups)) * c_per_group        # the group's first channel
                    window = x_pad[n, first:first + c_per_group, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[n, f, i, j] = np.sum(window * W[f]) + (0.0 if b is None else b[f])
    return y


def random_case(rng, n, c, f, h, w, kernel, bias=True, dtype=np.float64, groups=1):
    kh, kw = pair(kernel)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((f, c // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if bias else None
    return x, W, b


EDGE_CASES = [  # (N, C, F, H, W, kernel, stride, padding)
    (2, 3, 4, 7, 7, 3, 1, 1),          # "same" 3x3
    (1, 2, 3, 8, 6, 3, 2, 1),          # stride 2, odd/even sizes, batch 1
    (2, 3, 2, 5, 5, 1, 1, 0),          # 1x1 fast path: x is the column matrix
    (2, 3, 2, 10, 11, 1, 1, 0),        # 1x1 on >= 100 pixels: the numpy set's one product per image
    (2, 3, 2, 5, 5, 1, 2, 0),          # 1x1 with stride: general path
    (2, 3, 2, 4, 4, 1, 1, 1),          # 1x1 with padding: general path
    (1, 2, 2, 5, 5, 5, 1, 0),          # kernel == input: 1x1 output
    (1, 1, 1, 1, 1, 1, 1, 0),          # 1x1 map
    (2, 2, 3, 9, 7, (3, 2), (2, 1), (1, 0)),   # rectangular everything
    (1, 3, 2, 11, 11, 7, 2, 3),        # GoogLeNet's stem shape, small
    (1, 2, 2, 3, 3, 5, 1, 1),          # kernel == padded input
    (2, 3, 4, 10, 10, 3, 1, 1),        # "same" 3x3 on >= 100 pixels: the numpy set's Winograd way
    (1, 2, 3, 11, 13, 3, 1, 1),        # the same on odd sizes (half-empty last tiles), batch 1
]

GROUPED_CASES = [  # (N, C, F, H, W, kernel, stride, padding, groups)
    (2, 4, 6, 7, 7, 3, 1, 1, 2),       # two towers, "same" 3x3 (AlexNet's conv4)
    (1, 4, 4, 11, 11, 5, 1, 2, 2),     # 5x5 pad 2 in two groups (AlexNet's conv2), batch 1
    (1, 6, 6, 8, 6, 3, 2, 1, 3),       # stride 2, three groups, odd/even sizes
    (2, 4, 4, 5, 5, 3, 1, 1, 4),       # depthwise: groups = C = F
    (2, 2, 6, 3, 3, 3, 1, 0, 2),       # one channel, three filters per group; kernel == input
    (2, 4, 2, 5, 5, 1, 1, 0, 2),       # grouped 1x1: x is the column matrix
    (2, 4, 6, 10, 11, 1, 1, 0, 2),     # grouped 1x1 on >= 100 pixels (numpy: not the per-image route)
    (1, 4, 2, 1, 1, 1, 1, 0, 2),       # 1x1 map
    (2, 4, 6, 9, 7, (3, 2), (2, 1), (1, 0), 2),   # rectangular everything
]
CASES = [case + (1,) for case in EDGE_CASES] + GROUPED_CASES


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_loops(xp, kernel_set, case):
    n, c, f, h, w, kernel, stride, padding, groups = case
    x, W, b = random_case(np.random.default_rng(0), n, c, f, h, w, kernel, groups=groups)
    y, _ = conv2d_forward(xp.asarray(x), xp.asarray(W), xp.asarray(b), stride=stride, padding=padding,
                          groups=groups)
    np.testing.assert_allclose(to_numpy(y), naive_conv2d(x, W, b, stride, padding, groups),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_backward_gradcheck_pair(kernel_set, case):
    n, c, f, h, w, kernel, stride, padding, groups = case
    x, W, b = random_case(np.random.default_rng(1), n, c, f, h, w, kernel, groups=groups)
    forward = functools.partial(conv2d_forward, stride=stride, padding=padding, groups=groups)
    report = gradcheck((forward, conv2d_backward), x, W, b, tolerance=1e-7, names=["x", "W", "b"])
    assert report.max_rel_error < 1e-7


@pytest.mark.parametrize("case", CASES)
def test_an_input_that_needs_no_gradient_gets_none_and_the_rest_is_unchanged(kernel_set, case):
    """With ``input_grad=False`` (the op passes it for an x that needs no gradient, as the
    network's images) a set returns gx None without computing it, and the very same weight
    and bias gradients; the cache may be used either way (the forward does not know)."""
    n, c, f, h, w, kernel, stride, padding, groups = case
    x, W, b = random_case(np.random.default_rng(5), n, c, f, h, w, kernel, groups=groups)
    for relu in (False, True):
        win = window((h, w), kernel, stride, padding)
        _, cache = kernels.get(kernel_set).conv2d_forward(x, W, b, win, groups, relu)
        gy = np.random.default_rng(6).standard_normal(conv2d_forward(x, W, b, stride, padding, groups)[0].shape)
        gx, gW, gb = kernels.get(kernel_set).conv2d_backward(gy, cache)
        none, gW_alone, gb_alone = kernels.get(kernel_set).conv2d_backward(gy, cache, input_grad=False)
        assert gx is not None and none is None
        np.testing.assert_array_equal(gW_alone, gW)
        np.testing.assert_array_equal(gb_alone, gb)


def test_the_op_asks_for_no_input_gradient_when_x_needs_none(monkeypatch):
    """F.conv2d on an image that needs no gradient: the kernel set is told (input_grad=False)
    and the weights still get theirs; an x that needs one is asked for."""
    asked = []
    original = vectorized.conv2d_backward
    monkeypatch.setattr(vectorized, "conv2d_backward",
                        lambda gy, cache, input_grad=True: asked.append(input_grad) or original(gy, cache, input_grad))
    x, W, b = random_case(np.random.default_rng(7), 2, 3, 4, 6, 6, 3)
    for x_needs in (False, True):
        tx, tW, tb = Tensor(x, requires_grad=x_needs), Tensor(W, requires_grad=True), Tensor(b, requires_grad=True)
        with kernels.use("numpy"):
            F.conv2d_relu(tx, tW, tb, padding=1).sum().backward()
        assert (tx.grad is not None) == x_needs and tW.grad is not None and tb.grad is not None
    assert asked == [False, True]


def test_the_numpy_set_keeps_the_columns_on_a_cpu_and_copies_them_once(monkeypatch):
    """On NumPy arrays the forward's columns stay in the cache for the backward: one im2col
    per convolution and step, not two (vectorized.Conv2dCache)."""
    copies = []
    original = vectorized._im2col_batch_last
    monkeypatch.setattr(vectorized, "_im2col_batch_last", lambda x, win: copies.append(1) or original(x, win))
    x, W, b = random_case(np.random.default_rng(9), 2, 3, 4, 6, 6, 3)
    win = window((6, 6), 3, 1, 1)
    y, cache = vectorized.conv2d_forward(x, W, b, win)
    assert cache.cols is not None and len(copies) == 1
    gx, gW, gb = vectorized.conv2d_backward(np.ones(y.shape), cache)
    assert len(copies) == 1
    np.testing.assert_allclose(gW, reference.conv2d_backward(np.ones(y.shape), reference.conv2d_forward(x, W, b, win)[1])[1],
                               rtol=1e-12)


def test_gradcheck_through_functional_with_and_without_bias(kernel_set):
    x, W, b = random_case(np.random.default_rng(2), 2, 3, 4, 6, 5, 3)
    with_bias = gradcheck(lambda x, W, b: F.conv2d(x, W, b, stride=2, padding=1), x, W, b,
                          tolerance=1e-7)
    without = gradcheck(lambda x, W: F.conv2d(x, W, padding=(1, 0)), x, W, tolerance=1e-7)
    assert with_bias.max_rel_error < 1e-7 and without.max_rel_error < 1e-7


def test_gradcheck_through_functional_with_groups(kernel_set):
    x, W, b = random_case(np.random.default_rng(2), 2, 6, 4, 7, 6, 3, groups=2)
    report = gradcheck(lambda x, W, b: F.conv2d(x, W, b, stride=2, padding=1, groups=2), x, W, b,
                       tolerance=1e-7)
    assert W.shape == (4, 3, 3, 3) and report.max_rel_error < 1e-7


def test_groups_are_independent_convolutions_on_channel_slices(kernel_set):
    # the definition: group k of the output is an ordinary convolution of channel block k
    x, W, b = random_case(np.random.default_rng(8), 2, 6, 9, 8, 8, 3, groups=3)
    y = F.conv2d(x, W, b, padding=1, groups=3).data
    for k in range(3):
        part = F.conv2d(x[:, 2 * k:2 * k + 2], W[3 * k:3 * k + 3], b[3 * k:3 * k + 3], padding=1).data
        np.testing.assert_allclose(y[:, 3 * k:3 * k + 3], part, rtol=1e-12, atol=1e-12)


def test_tensor_api_keeps_float32_and_reaches_every_input(kernel_set):
    x, W, b = random_case(np.random.default_rng(3), 2, 3, 4, 6, 6, 3, dtype=np.float32)
    tx, tW, tb = (Tensor(a, requires_grad=True) for a in (x, W, b))
    y = F.conv2d(tx, tW, tb, padding=1)
    y.sum().backward()
    assert y.dtype == np.float32 and tx.grad.dtype == tW.grad.dtype == tb.grad.dtype == np.float32
    np.testing.assert_allclose(tb.grad, np.full(4, 2 * 6 * 6), rtol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_matches_torch_outputs_and_gradients(xp, kernel_set, case):
    torch = pytest.importorskip("torch")
    n, c, f, h, w, kernel, stride, padding, groups = case
    rng = np.random.default_rng(4)
    x, W, b = random_case(rng, n, c, f, h, w, kernel, groups=groups)
    y, cache = conv2d_forward(xp.asarray(x), xp.asarray(W), xp.asarray(b), stride=stride, padding=padding,
                              groups=groups)
    gy = rng.standard_normal(y.shape)
    gx, gW, gb = conv2d_backward(xp.asarray(gy), cache)
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    ty = torch.nn.functional.conv2d(tx, tW, tb, stride=stride, padding=padding, groups=groups)
    ty.backward(torch.tensor(gy))
    for ours, theirs in ((y, ty), (gx, tx.grad), (gW, tW.grad), (gb, tb.grad)):
        np.testing.assert_allclose(to_numpy(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


@st.composite
def conv_cases(draw):
    """(..., groups=1, 2 or 3 with 1 to 3 channels and 1 to 3 filters per group, ...)"""
    groups = draw(st.integers(1, 3))
    n, c, f = draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    assume(kernel[0] <= h + 2 * padding[0] and kernel[1] <= w + 2 * padding[1])
    return n, c, f, h, w, kernel, stride, padding, groups, draw(st.booleans()), draw(st.integers(0, 2**31))


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_property_reference_set_against_loops_and_torch(case):
    torch = pytest.importorskip("torch")
    n, c, f, h, w, kernel, stride, padding, groups, bias, seed = case
    rng = np.random.default_rng(seed)
    x, W, b = random_case(rng, n, c, f, h, w, kernel, bias, groups=groups)
    with kernels.use("reference"):
        y, cache = conv2d_forward(x, W, b, stride=stride, padding=padding, groups=groups)
    np.testing.assert_allclose(y, naive_conv2d(x, W, b, stride, padding, groups), rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    gx, gW, gb = conv2d_backward(gy, cache)
    assert (gb is None) == (not bias)
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, W, b) if a is not None]
    torch.nn.functional.conv2d(*tensors, stride=stride, padding=padding, groups=groups).backward(
        torch.tensor(gy))
    for ours, t in zip((gx, gW, gb), tensors):
        np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", KERNEL_SETS)
@settings(max_examples=40, deadline=None)
@given(case=conv_cases())
def test_property_col2im_is_the_adjoint_of_im2col(name, case):
    # <im2col(x), g> == <x, col2im(g)> for all x, g: the defining property of the backward.
    skip_without_twin(name)
    kernel_set = kernels.get(name)
    n, c, _, h, w, kernel, stride, padding, _, _, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    win = window((h, w), kernel, stride, padding)
    cols = kernel_set.im2col(x, win)
    g = rng.standard_normal(cols.shape)
    back = kernel_set.col2im(g, x.shape, win)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * g), np.sum(x * back), rtol=1e-10)


def test_gradcheck_of_a_chain_of_convs_and_pools(kernel_set):
    # the numpy set hands out views in (C, H, W, N) and (H, W, N, C) order: the next op
    # takes them as they are, forward and backward
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 9))
    W1, b1 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    W2, W3 = rng.standard_normal((5, 4, 1, 1)), rng.standard_normal((3, 5, 1, 1))

    def net(x, W1, b1, W2, W3):
        h = F.max_pool2d(F.conv2d(x, W1, b1, padding=1), 3, stride=2, ceil_mode=True)
        return F.avg_pool2d(F.conv2d(F.conv2d(h, W2), W3), 2, padding=1)

    assert gradcheck(net, x, W1, b1, W2, W3, tolerance=1e-7).max_rel_error < 1e-7


def test_reference_im2col_columns_are_windows():
    x = np.arange(2 * 1 * 3 * 3, dtype=np.float64).reshape(2, 1, 3, 3)
    cols = reference.im2col(x, window((3, 3), 2, 1, 0))
    assert cols.shape == (2, 4, 4)                                    # (N, C*KH*KW, OH*OW)
    np.testing.assert_array_equal(cols[1, :, 1], x[1, 0, 0:2, 1:3].ravel())   # image 1, window (0, 1)
    np.testing.assert_array_equal(cols[0, :, 2], x[0, 0, 1:3, 0:2].ravel())   # image 0, window (1, 0)


def test_vectorized_im2col_is_the_reference_layout_over_batch_last_memory(xp):
    x = np.arange(2 * 1 * 3 * 3, dtype=np.float64).reshape(2, 1, 3, 3)
    cols = vectorized.im2col(xp.asarray(x), window((3, 3), 2, 1, 0))
    np.testing.assert_array_equal(to_numpy(cols), reference.im2col(x, window((3, 3), 2, 1, 0)))
    # a view of the (C, KH, KW, OH, OW, N) buffer the convolution multiplies: element
    # [n, k, p] lies at n + N*p + N*OH*OW*k, the batch varying fastest
    assert tuple(s // cols.itemsize for s in cols.strides) == (1, 2 * 4, 2)


def test_only_a_1x1_window_with_stride_1_and_no_padding_is_pointwise():
    assert window((5, 4), 1, 1, 0).is_pointwise
    assert not any(win.is_pointwise for win in (window((5, 4), (1, 2), 1, 0), window((5, 4), 1, (1, 2), 0),
                                                window((5, 4), 1, 1, (0, 1))))


def test_googlenet_stem_and_inception_sizes():
    assert conv_output_size(224, 7, 2, 3) == 112
    assert conv_output_size(56, 3, 1, 1) == 56
    assert conv_output_size(28, 5, 1, 2) == 28
    x, W, b = random_case(np.random.default_rng(5), 1, 3, 2, 224, 224, 7, dtype=np.float32)
    y, _ = conv2d_forward(x, W, b, stride=2, padding=3)
    assert y.shape == (1, 2, 112, 112)


BAD_INPUTS = [
    (dict(x=(3, 8, 8), W=(4, 3, 3, 3)), r"conv2d: expected x of shape \(N, C, H, W\), got shape \(3, 8, 8\)"),
    (dict(x=(1, 3, 8, 8), W=(4, 3, 3)), r"conv2d: expected weight of shape \(C_out, C, KH, KW\), got shape \(4, 3, 3\)"),
    (dict(x=(1, 3, 8, 8), W=(4, 2, 3, 3)), r"conv2d: x has 3 channels but weight expects 2 .*\(1, 3, 8, 8\).*\(4, 2, 3, 3\)"),
    (dict(x=(1, 3, 4, 4), W=(4, 3, 7, 7), padding=1), r"conv2d: kernel \(7, 7\) is larger than the padded input \(6, 6\)"),
    (dict(x=(1, 3, 8, 8), W=(4, 3, 3, 3), stride=0), r"conv2d: stride must be positive, got \(0, 0\)"),
    (dict(x=(1, 3, 8, 8), W=(4, 3, 3, 3), padding=(1, -1)), r"conv2d: padding must be non-negative, got \(1, -1\)"),
    (dict(x=(1, 3, 8, 8), W=(4, 3, 3, 3), b=(3,)), r"conv2d: expected bias of shape \(4,\), got \(3,\)"),
    (dict(x=(1, 0, 8, 8), W=(4, 0, 3, 3)), r"conv2d: expected x with at least one image, channel, row and "
                                           r"column, got shape \(1, 0, 8, 8\)"),
    (dict(x=(0, 3, 8, 8), W=(4, 3, 3, 3)), r"conv2d: expected x with at least one image.*\(0, 3, 8, 8\)"),
    (dict(x=(1, 3, 8, 8), W=(0, 3, 3, 3)), r"conv2d: expected at least one filter, got weight of shape \(0, 3, 3, 3\)"),
    (dict(x=(1, 4, 8, 8), W=(4, 4, 3, 3), groups=0), r"conv2d: groups must be a positive integer, got 0"),
    (dict(x=(1, 4, 8, 8), W=(4, 2, 3, 3), groups=2.0), r"conv2d: groups must be a positive integer, got 2\.0"),
    (dict(x=(1, 4, 8, 8), W=(4, 4, 3, 3), groups=True), r"conv2d: groups must be a positive integer, got True"),
    (dict(x=(1, 3, 8, 8), W=(4, 1, 3, 3), groups=2), r"conv2d: groups=2 must divide the 3 channels of x "
                                                     r"\(x \(1, 3, 8, 8\)\)"),
    (dict(x=(1, 4, 8, 8), W=(3, 2, 3, 3), groups=2), r"conv2d: groups=2 must divide the 3 filters of weight "
                                                     r"\(weight \(3, 2, 3, 3\)\)"),
    (dict(x=(1, 4, 8, 8), W=(4, 4, 3, 3), groups=2), r"conv2d: x has 4 channels \(2 per group, groups=2\) "
                                                     r"but weight expects 4 \(x \(1, 4, 8, 8\), weight \(4, 4, 3, 3\)\)"),
    (dict(x=(1, 4, 8, 8), W=(4, 2, 3), groups=2), r"conv2d: expected weight of shape \(C_out, C/groups, KH, KW\), "
                                                  r"got shape \(4, 2, 3\)"),
]


@pytest.mark.parametrize("shapes, message", BAD_INPUTS)
def test_bad_input_errors_name_the_layer_and_shapes(shapes, message):
    x, W = np.zeros(shapes["x"]), np.zeros(shapes["W"])
    b = np.zeros(shapes["b"]) if "b" in shapes else None
    with pytest.raises(ValueError, match=message):
        F.conv2d(x, W, b, stride=shapes.get("stride", 1), padding=shapes.get("padding", 0),
                 groups=shapes.get("groups", 1))


def test_integer_input_is_rejected():
    with pytest.raises(ValueError, match="conv2d: expected a floating-point x, got dtype int64"):
        F.conv2d(np.zeros((1, 1, 3, 3), dtype=np.int64), np.zeros((1, 1, 1, 1)))


def test_conv2d_layer_with_groups_counts_weights_and_multiply_adds():
    from minigrad import nn
    conv = nn.Conv2d(96, 256, 5, padding=2, groups=2, rng=0)      # AlexNet's conv2
    assert conv.weight.shape == (256, 48, 5, 5)
    assert conv.num_parameters() == 256 * 48 * 25 + 256
    assert conv.output_shape((96, 27, 27)) == (256, 27, 27)
    assert conv.multiply_adds((96, 27, 27)) == 256 * 48 * 25 * 27 * 27      # half of groups=1's
    assert repr(conv) == "Conv2d(96, 256, kernel_size=5, stride=1, padding=2, groups=2)"
    x = np.random.default_rng(0).standard_normal((1, 96, 9, 9)).astype(np.float32)
    assert conv(Tensor(x)).shape == (1, 256, 9, 9)


@pytest.mark.parametrize("groups", [0, 3, 2.0])
def test_conv2d_layer_refuses_groups_that_do_not_divide(groups):
    from minigrad import nn
    with pytest.raises(ValueError, match=r"Conv2d: groups must be a positive integer dividing in_channels "
                                         r"\(4\) and out_channels \(6\), got " + str(groups)):
        nn.Conv2d(4, 6, 3, groups=groups)
