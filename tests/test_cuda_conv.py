"""The cuda set's convolution without a GPU (its kernels through the CPU twin): one matrix
product over the whole batch, the layout kernels (layout.cu) against NumPy, and the ReLU
fused into the convolution (every kernel set's ``relu``, ``F.conv2d_relu``) against the
unfused convolution then ReLU: exactly the same numbers in float64, forward and backward.
(The kernel sets against each other: test_kernel_sets.py; the same on a GPU: test_gpu.py.)"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad.functional as F
from minigrad import Tensor, kernels, nn
from minigrad.bench import OpShape, compare
from minigrad.gradcheck import gradcheck
from minigrad.kernels import cuda
from minigrad.kernels.cuda import launch
from minigrad.ops import conv, elementwise

from conftest import KERNEL_SETS, skip_without_twin
from test_kernel_sets import LAYOUTS, layouts, windows

SPECIAL = np.array([0.0, -0.0, 1.5, -1.5, np.nan, np.inf, -np.inf, 2.0 ** -1074])


def special_values(shape, seed):
    """Random values with the ReLU's edge cases among them: zeros of both signs, NaN, infinities
    and the smallest subnormal."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape)
    values.flat[rng.choice(values.size, size=min(values.size, len(SPECIAL)), replace=False)] = \
        SPECIAL[:min(values.size, len(SPECIAL))]
    return values


# --- the layout kernels ------------------------------------------------------------------------
@pytest.fixture
def twin():
    skip_without_twin("cuda")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias, relu", [(False, False), (True, False), (False, True), (True, True)])
def test_channels_to_images_lays_the_product_out_adding_the_bias_and_the_relu(twin, dtype, with_bias, relu):
    n, c, p = 3, 4, 5
    channels_first = special_values((c, n, p), seed=1).astype(dtype)
    bias = np.random.default_rng(2).standard_normal(c).astype(dtype) if with_bias else None
    images = np.full((n, c, p), 7.0, dtype)
    launch.launcher_for(images).run("layout.cu", "channels_to_images", images.size, channels_first, bias, images,
                                    *(np.int32(v) for v in (n, c, p, relu)))
    expected = channels_first.transpose(1, 0, 2) + (0 if bias is None else bias[:, None])
    if relu:
        expected = elementwise.relu_forward(expected)[0]
    np.testing.assert_array_equal(images, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("channels_around", [4, 9])
def test_images_to_channels_masks_by_the_relu_output_as_relu_backward_does(twin, dtype, masked, channels_around):
    """gy may be channels 2 ... 5 of images with more channels (a view, read where it lies)."""
    n, c, p = 3, 4, 5
    around = np.random.default_rng(3).standard_normal((n, channels_around, p)).astype(dtype)
    gy = around[:, channels_around - c - 1:channels_around - 1] if channels_around > c else around
    assert launch.is_channel_window(gy) and launch.images_channels(gy) == channels_around
    relu_output = elementwise.relu_forward(special_values((n, c, p), seed=4).astype(dtype))[0]
    out = np.full((c, n * p), 7.0, dtype)
    launch.launcher_for(gy).run("layout.cu", "images_to_channels", out.size, gy, relu_output if masked else None, out,
                                *(np.int32(v) for v in (n, c, p, channels_around)))
    expected = elementwise.relu_backward(gy, ~(relu_output <= 0))[0] if masked else gy
    np.testing.assert_array_equal(out, expected.transpose(1, 0, 2).reshape(c, n * p))


def test_which_views_are_windows_of_channels():
    images = np.zeros((3, 6, 4, 5))
    assert launch.is_channel_window(images) and launch.images_channels(images) == 6
    assert launch.is_channel_window(images[:, 2:4]) and launch.images_channels(images[:, 2:4]) == 6
    assert launch.is_channel_window(images[1:2, 2:4]) and launch.images_channels(images[1:2, 2:4]) == 2
    for not_one in (images[:, :, 1:], images[:, ::2], images[::-1], images.transpose(1, 0, 2, 3), images[..., ::2]):
        assert not launch.is_channel_window(not_one)
    with pytest.raises(ValueError, match=r"the kernels need contiguous arrays \(or windows of channels of one\)"):
        launch.launcher_for(images).run("layout.cu", "images_to_channels", 1, images[:, :, 1:], None,
                                        np.zeros(6 * 3 * 15), *(np.int32(v) for v in (3, 6, 15, 6)))


def test_a_branch_gradient_handed_out_as_a_view_is_read_where_it_lies(twin, monkeypatch):
    """Concat's backward hands each Inception branch a window of its gradient's channels: the
    convolution's backward reads it in place (no copy) and gives the gradients of a copy."""
    rng = np.random.default_rng(15)
    x, W, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    y, cache = cuda.conv2d_forward(x, W, b, conv_window(x, W, padding=1), relu=True)
    concatenated = rng.standard_normal((2, 11, 5, 5))
    gy = concatenated[:, 3:7]                                   # this branch's channels, a view
    read = []
    run = launch.TwinLauncher.run
    monkeypatch.setattr(launch.TwinLauncher, "run", lambda self, file, kernel, threads, *args:
                        read.append((kernel, args[0])) or run(self, file, kernel, threads, *args))
    grads = cuda.conv2d_backward(gy, cache)
    assert any(kernel == "images_to_channels" and array is gy for kernel, array in read)
    for g, g_copy in zip(grads, cuda.conv2d_backward(np.ascontiguousarray(gy), cache)):
        np.testing.assert_array_equal(g, g_copy)


def test_the_public_im2col_is_a_view_of_the_columns_the_product_multiplies(twin):
    """Every set's im2col gives (N, C*KH*KW, OH*OW); the cuda set's is its (C*KH*KW, N, OH*OW)
    buffer seen that way, and col2im takes it back, in either layout."""
    from minigrad.geometry import window
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 5))
    win = window((6, 5), 3, (2, 1), 1)
    cols = cuda.im2col(x, win)
    np.testing.assert_array_equal(cols, kernels.reference.im2col(x, win))
    assert cols.transpose(1, 0, 2).flags.c_contiguous
    for layout in (cols, np.ascontiguousarray(cols)):
        np.testing.assert_allclose(cuda.col2im(layout, x.shape, win), kernels.reference.col2im(cols, x.shape, win),
                                   rtol=1e-14)


# --- one product over the whole batch ---------------------------------------------------------
@pytest.mark.parametrize("kernel, stride, padding, groups", [(3, 1, 1, 1), (1, 1, 0, 1), (3, 2, 0, 2), (1, 1, 0, 3)])
def test_a_convolution_is_one_product_per_group_whatever_the_batch(twin, monkeypatch, kernel, stride, padding,
                                                                      groups):
    products = []

    def counting_gemm(a, b, **options):
        products.append((a.shape, b.shape, options.get("transpose_a", False), options.get("transpose_b", False)))
        return gemm(a, b, **options)

    gemm = cuda.gemm
    monkeypatch.setattr(cuda, "gemm", counting_gemm)
    n, c, f = 5, 6, 12
    x = np.random.default_rng(6).standard_normal((n, c, 7, 7))
    W = np.random.default_rng(7).standard_normal((f, c // groups, kernel, kernel))
    with kernels.use("cuda"):
        y, cache = conv.conv2d_forward(x, W, np.zeros(f), stride=stride, padding=padding, groups=groups)
    columns = n * y.shape[2] * y.shape[3]                     # every image's output pixels
    rows = c // groups * kernel * kernel
    assert products == [((f // groups, rows), (rows, columns), False, False)] * groups
    products.clear()
    conv.conv2d_backward(np.ones(y.shape), cache)
    assert products == [((f // groups, columns), (rows, columns), False, True)] * groups + \
        [((f // groups, rows), (f // groups, columns), True, False)] * groups


def test_the_cache_keeps_x_itself_not_its_columns(twin):
    """The backward makes the columns again from x: the cache holds references (x, weight and
    a fused ReLU's output), no copy."""
    x, W = np.random.default_rng(8).standard_normal((2, 3, 6, 6)), np.ones((4, 3, 3, 3))
    y, cache = cuda.conv2d_forward(x, W, None, conv_window(x, W, padding=1), relu=True)
    assert cache.x is x and cache.weight is W and cache.relu_output is y
    assert sum(field.nbytes for field in cache if isinstance(field, np.ndarray)) == x.nbytes + W.nbytes + y.nbytes


def conv_window(x, W, stride=1, padding=0):
    from minigrad.geometry import window
    return window(x.shape[2:], W.shape[2:], stride, padding)


def test_the_comparisons_conv_rows_run_the_one_product_path(twin, monkeypatch):
    """``python -m googlenet bench --compare`` times each configuration's conv2d pair: on the
    cuda set that is the one-product convolution (here through the twin, on the CPU)."""
    calls = []
    gemm = cuda.gemm
    monkeypatch.setattr(cuda, "gemm", lambda a, b, **options: calls.append(b.shape) or gemm(a, b, **options))
    shape = OpShape("3x3", "conv2d", (2, 3, 6, 6), dict(weight=(4, 3, 3, 3), stride=1, padding=1))
    timings = compare.time_configuration([shape], "cpu", "cuda", repeats=1)
    assert set(timings["3x3"]) >= {"fwd", "bwd"}
    assert (27, 2 * 36) in calls                               # cols (C*KH*KW, N*OH*OW): one product


# --- the fused ReLU: the same numbers as convolution then ReLU ------------------------------------
def fused_and_unfused(x, W, b, params, xp=np):
    """(fused y, fused grads, unfused y, unfused grads) on the current kernel set, the
    upstream gradient drawn once (an ``xp`` array)."""
    y, cache = conv.conv2d_relu_forward(x, W, b, **params)
    gy = xp.asarray(np.random.default_rng(9).standard_normal(y.shape))
    grads = conv.conv2d_relu_backward(gy, cache)
    pre, conv_cache = conv.conv2d_forward(x, W, b, **params)
    y_unfused, passes = elementwise.relu_forward(pre)
    (g_pre,) = elementwise.relu_backward(gy, passes)
    return y, grads, y_unfused, conv.conv2d_backward(g_pre, conv_cache)


@pytest.mark.parametrize("name", KERNEL_SETS)
@pytest.mark.filterwarnings("ignore:invalid value encountered")    # NaN and inf among the inputs
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), f=st.integers(1, 3), groups=st.integers(1, 2),
       geometry=windows(max_size=8), pointwise=st.booleans(), bias=st.booleans(), specials=st.booleans(),
       in_layout=layouts, seed=st.integers(0, 2**31))
def test_the_fused_relu_gives_exactly_the_unfused_results_in_float64(name, n, c, f, groups, geometry, pointwise,
                                                                      bias, specials, in_layout, seed):
    skip_without_twin(name)
    h, w, kernel, stride, padding = geometry
    if pointwise:
        kernel, stride, padding = (1, 1), (1, 1), (0, 0)
    c, f = c * groups, f * groups
    rng = np.random.default_rng(seed)
    x = special_values((n, c, h, w), seed) if specials else rng.standard_normal((n, c, h, w))
    W = rng.standard_normal((f, c // groups) + kernel)
    b = rng.standard_normal(f) if bias else None
    with kernels.use(name):
        y, grads, y_unfused, grads_unfused = fused_and_unfused(
            LAYOUTS[in_layout](x), W, b, dict(stride=stride, padding=padding, groups=groups))
    np.testing.assert_array_equal(y, y_unfused)
    assert len(grads) == len(grads_unfused) == 3
    for g, g_unfused in zip(grads, grads_unfused):
        if g_unfused is None:
            assert g is None
        else:
            assert g.dtype == g_unfused.dtype == np.float64
            np.testing.assert_array_equal(g, g_unfused)


@pytest.mark.parametrize("gy_layout", ["CHWN", "CHWN padded", "strided"])
@pytest.mark.parametrize("kernel", [1, 3])
def test_the_fused_relus_backward_gives_the_same_bits_where_gy_lies_as_when_copied(gy_layout, kernel):
    """The numpy set passes gy through the ReLU where it lies when its axes are in the
    output's order (batch-last, or the interior of a padded gradient: "CHWN padded") and
    copies it into the product's layout first otherwise ("strided", and a contiguous (N, C,
    H, W) gy): the same bits either way, float32 as in training. (An "HWNC" gy is another
    matter: its matrix is a strided view, multiplied and summed in another order.)"""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 7, 6)).astype(np.float32)
    W = rng.standard_normal((5, 4, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    with kernels.use("numpy"):
        y, cache = conv.conv2d_relu_forward(x, W, b, padding=kernel // 2)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        expected = conv.conv2d_relu_backward(gy, cache)
        got = conv.conv2d_relu_backward(LAYOUTS[gy_layout](gy), cache)
    for g, g_expected in zip(got, expected):
        np.testing.assert_array_equal(g, g_expected)


@pytest.mark.parametrize("name", KERNEL_SETS)
def test_where_the_fused_output_is_exactly_zero_no_gradient_passes(name):
    """ReLU's gradient at 0 is 0 (as relu_backward): zero filters and a zero bias give y = 0
    everywhere, so every gradient is 0 (a mask of y >= 0 would pass them all)."""
    skip_without_twin(name)
    x, W, b = np.ones((2, 3, 4, 4)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    with kernels.use(name):
        y, cache = conv.conv2d_relu_forward(x, W, b, padding=1)
    gx, gW, gb = conv.conv2d_relu_backward(np.ones(y.shape), cache)
    assert not y.any() and not gx.any() and not gW.any() and not gb.any()


@pytest.mark.parametrize("name", KERNEL_SETS)
def test_the_fused_relu_passes_a_gradient_check_in_float64(name):
    skip_without_twin(name)
    rng = np.random.default_rng(10)
    x, W, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    with kernels.use(name):
        y, _ = conv.conv2d_relu_forward(x, W, b, padding=1)
        pre, _ = conv.conv2d_forward(x, W, b, padding=1)
        assert 0 < (y > 0).mean() < 1 and np.abs(pre).min() > 1e-3    # both sides of the kink, none on it
        report = gradcheck((lambda *a: conv.conv2d_relu_forward(*a, padding=1), conv.conv2d_relu_backward),
                           x, W, b, tolerance=1e-7, names=["x", "W", "b"])
    assert report.passed, report


def test_conv2d_relu_is_relu_of_conv2d_through_the_graph():
    rng = np.random.default_rng(11)
    tensors = [Tensor(a, requires_grad=True) for a in (rng.standard_normal((2, 3, 6, 6)),
                                                         rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4))]
    fused = F.conv2d_relu(*tensors, stride=2, padding=1)
    assert fused.node.name == "conv2d_relu"
    fused.sum().backward()
    fused_grads = [t.grad.copy() for t in tensors]
    for t in tensors:
        t.grad = None
    unfused = F.relu(F.conv2d(*tensors, stride=2, padding=1))
    unfused.sum().backward()
    np.testing.assert_array_equal(fused.numpy(), unfused.numpy())
    for g, t in zip(fused_grads, tensors):
        np.testing.assert_array_equal(g, t.grad)


def test_conv2d_relus_errors_name_it():
    with pytest.raises(ValueError, match=r"conv2d_relu: expected x of shape \(N, C, H, W\), got shape \(3, 4\)"):
        F.conv2d_relu(np.zeros((3, 4)), np.zeros((1, 1, 1, 1)))
    with pytest.raises(ValueError, match="conv2d_relu: x has 3 channels but weight expects 2"):
        F.conv2d_relu(np.zeros((1, 3, 4, 4)), np.zeros((1, 2, 1, 1)))
    with pytest.raises(ValueError, match="conv2d_relu: groups=2 must divide the 3 channels of x"):
        F.conv2d_relu(np.zeros((1, 3, 4, 4)), np.zeros((2, 1, 1, 1)), groups=2)


def test_conv2d_layer_with_relu_is_the_fused_op_and_says_so():
    layer = nn.Conv2d(3, 4, 3, padding=1, rng=0, relu=True)
    plain = nn.Conv2d(3, 4, 3, padding=1, rng=0)
    x = Tensor(np.random.default_rng(12).standard_normal((2, 3, 5, 5)).astype(np.float32))
    y = layer(x)
    assert y.node.name == "conv2d_relu" and repr(layer) == "Conv2d(3, 4, kernel_size=3, stride=1, padding=1, relu=True)"
    np.testing.assert_array_equal(y.numpy(), F.relu(plain(x)).numpy())
    with pytest.raises(ValueError, match="Conv2d: relu must be True or False, got 'yes'"):
        nn.Conv2d(3, 4, 3, relu="yes")


def test_googlenet_runs_each_convolution_and_its_relu_as_one_op():
    from googlenet.model import ConvReLU, GoogLeNet
    model = GoogLeNet(num_classes=3, in_channels=1, width=1 / 16, input_size=32, seed=0, aux_heads=False).eval()
    names = []
    for module in model.modules():
        if isinstance(module, ConvReLU):
            assert module.relu and module.bn is None
    x = Tensor(np.zeros((1, 1, 32, 32), np.float32), requires_grad=True)
    node, stack = model(x).node, []
    stack.append(node)
    while stack:
        node = stack.pop()
        names.append(node.name)
        stack += [t.node for t in node.inputs if t is not None and t.node is not None]
    assert "conv2d_relu" in names and "conv2d" not in names and "relu" not in names
