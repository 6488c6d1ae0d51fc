"""What a training step keeps in memory: each op's cache is freed once its backward has run
(a second backward says so, unless the graph was kept), caches hold no copies of what the
graph holds anyway (ReLU's mask is its output, LRN keeps x and s, max pooling a small
integer per window), concat's backward hands out views, and traced peaks stay within
bounds computed from the arrays a layer's and GoogLeNet's forward and backward must have."""
import tracemalloc

import numpy
import pytest

import minigrad.functional as F
from minigrad import Op, Tensor, kernels, nn, parallel
from minigrad.autograd import graph_order
from minigrad.geometry import window
from minigrad.kernels import cuda, reference, vectorized
from minigrad.ops import elementwise, shape

from conftest import skip_without_twin

SLACK = 64 * 1024       # bytes: Python objects (tensors, nodes, tuples), never an array of the sizes here
PER_TENSOR = 1024       # bytes of Python objects per tensor of a graph: the Tensor, its Node, the
                        # arrays' headers, the cache's tuple (about 670 measured on GoogLeNet)


# --- caches are freed -------------------------------------------------------------------------
def test_a_second_backward_through_a_freed_graph_is_a_clear_error():
    x = Tensor(numpy.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"sum: backward has already run through this op and freed "
                                           r"what its forward saved; .* pass retain_graph=True"):
        y.backward()
    with pytest.raises(RuntimeError, match="mul: backward has already run"):
        y.node.inputs[0].node.cache
    numpy.testing.assert_array_equal(x.grad, [2.0, 4.0])         # the failed pass added nothing


def test_retain_graph_keeps_the_caches_for_another_backward():
    x = Tensor(numpy.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    assert y.node.inputs[0].node.cache is not None
    y.backward()
    numpy.testing.assert_array_equal(x.grad, [4.0, 8.0])


def test_a_graph_shared_by_two_losses_is_freed_by_the_first_backward():
    x = Tensor(numpy.array([3.0]), requires_grad=True)
    h = x * x
    (h * 2).sum().backward()
    with pytest.raises(RuntimeError, match="mul: backward has already run"):
        (h * 3).sum().backward()
    h = x * x
    (h * 2).sum().backward(retain_graph=True)
    (h * 3).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [12.0 + 12.0 + 18.0])     # d(2x^2), again, d(3x^2)


def test_backward_steps_frees_each_cache_after_yielding_its_tensor():
    x = Tensor(numpy.array([2.0]), requires_grad=True)
    y = x * x
    z = (y * 3.0).sum()
    for tensor, _ in z.backward_steps():
        if tensor.node is not None:
            assert tensor.node.cache is not None or tensor.node.name == "sum"   # still there
    with pytest.raises(RuntimeError, match="already run"):
        y.node.cache


@pytest.mark.parametrize("first", ["sum", "product"])
def test_fan_out_gradients_are_summed_without_writing_into_a_share_an_op_handed_over(first):
    """h has two users: h + k, whose backward hands h the caller's upstream array itself,
    and h * 2. Whichever share reaches h first, the engine keeps it as it came and adds the
    second into a new array (a third would go into that one, in place): the caller's array
    is never written to."""
    rng = numpy.random.default_rng(0)
    x, k = (Tensor(rng.standard_normal((3, 4)), requires_grad=True) for _ in range(2))
    h = x * 1.0
    y = (h + k) + h * 2.0 if first == "sum" else h * 2.0 + (h + k)
    gy = rng.standard_normal((3, 4))
    kept = gy.copy()
    y.backward(gy)
    numpy.testing.assert_array_equal(gy, kept)
    numpy.testing.assert_array_equal(k.grad, kept)
    numpy.testing.assert_array_equal(x.grad, kept + kept * 2.0)


def test_an_op_can_ask_which_inputs_need_a_gradient():
    calls = []

    def backward(gy, cache, needs_input_grad):
        calls.append(needs_input_grad)
        return tuple(gy * 2.0 if needed else None for needed in needs_input_grad)

    double = Op("double both", lambda a, b: (2.0 * (a + b), None), backward, needs_input_grad=True)
    a = Tensor(numpy.ones(2), requires_grad=True)
    b = Tensor(numpy.ones(2))                                  # data: needs no gradient
    y = double(a, b)
    assert y.node.backward(numpy.ones(2), y.node.cache)[1] is None   # a walk by hand gets the same
    y.sum().backward()
    assert calls == [(True, False), (True, False)]
    numpy.testing.assert_array_equal(a.grad, [2.0, 2.0])


# --- what the caches hold ---------------------------------------------------------------------
def test_relu_caches_its_output_not_a_mask_of_its_own():
    x = numpy.array([-1.0, 0.0, 2.0, numpy.nan, -numpy.inf, numpy.inf])
    y, cache = elementwise.relu_forward(x)
    assert cache is y
    (g,) = elementwise.relu_backward(numpy.full(6, 3.0), cache)
    numpy.testing.assert_array_equal(g, [0.0, 0.0, 3.0, 3.0, 0.0, 3.0])   # NaN passes, as in PyTorch


def test_concat_backward_hands_out_views_of_the_upstream_gradient():
    arrays = [numpy.ones((2, c, 3, 3)) for c in (1, 4, 2)]
    _, cache = shape.concat_forward(*arrays, axis=1)
    gy = numpy.arange(2 * 7 * 9, dtype=float).reshape(2, 7, 3, 3)
    grads = shape.concat_backward(gy, cache)
    assert [g.shape[1] for g in grads] == [1, 4, 2]
    assert all(numpy.shares_memory(g, gy) for g in grads)
    numpy.testing.assert_array_equal(numpy.concatenate(grads, axis=1), gy)


@pytest.mark.parametrize("kernel_set", [reference, vectorized, cuda], ids=["reference", "numpy", "cuda"])
def test_lrn_keeps_its_input_and_the_normalizer_only(kernel_set):
    if kernel_set is cuda:
        skip_without_twin("cuda")
    x = numpy.random.default_rng(0).standard_normal((2, 6, 3, 3))
    _, cache = kernel_set.lrn_forward(x, 5, 1e-1, 0.75, 1.0)
    assert cache._fields == ("x", "s", "size", "alpha", "beta")
    assert cache.x is x                       # the input itself (contiguous here), not a copy


@pytest.mark.parametrize("kernel_set", [vectorized, cuda], ids=["numpy", "cuda"])
def test_max_pool_keeps_one_byte_per_window(kernel_set):
    if kernel_set is cuda:
        skip_without_twin("cuda")
    x = numpy.random.default_rng(0).permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9).astype(numpy.float32)
    _, cache = kernel_set.max_pool2d_forward(x, window((9, 9), 3, 2, 1, ceil_mode=True))
    assert cache.argmax.dtype == numpy.uint8
    assert not hasattr(cache, "x")


def test_the_cuda_max_pool_of_windows_over_256_elements_keeps_ints_and_agrees():
    skip_without_twin("cuda")
    rng = numpy.random.default_rng(1)
    x = rng.permutation(2 * 2 * 18 * 18).reshape(2, 2, 18, 18).astype(numpy.float32)
    win = window((18, 18), 17, 1, 0)                          # 289 elements: more than a byte holds
    y, cache = cuda.max_pool2d_forward(x, win)
    assert cache.argmax.dtype == numpy.int32
    expected_y, expected_cache = reference.max_pool2d_forward(x, win)
    numpy.testing.assert_array_equal(y, expected_y)
    gy = rng.standard_normal(y.shape).astype(numpy.float32)
    numpy.testing.assert_allclose(cuda.max_pool2d_backward(gy, cache),
                                  reference.max_pool2d_backward(gy, expected_cache), rtol=1e-6)


# --- traced memory ----------------------------------------------------------------------------
class Traced:
    """tracemalloc around a block: ``current()`` and ``peak()`` in bytes (arrays allocated
    before the block are not counted). The block runs on one thread (``minigrad.parallel``):
    NumPy allocates its iteration buffers (up to ``numpy.getbufsize()`` elements for each
    operand of a call that casts) in every thread that runs such a call, so the peak of a
    threaded run can hold a few such buffers more, which are no arrays of the graph;
    tests/test_threads.py bounds what threads add."""

    def __enter__(self):
        self.one_thread = parallel.threads(1)
        self.one_thread.__enter__()
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        tracemalloc.stop()
        self.one_thread.__exit__(*exc)

    def current(self):
        return tracemalloc.get_traced_memory()[0]

    def peak(self):
        return tracemalloc.get_traced_memory()[1]


def a_3x3_convolution_layer():
    """(N, C, H, W, C_out), a Conv2d 3x3 with padding 1, an input that needs a gradient and an
    output gradient, float32."""
    n, c, h, w, c_out = 4, 16, 20, 20, 24
    rng = numpy.random.default_rng(0)
    conv = nn.Conv2d(c, c_out, 3, padding=1, rng=rng)
    x = Tensor(rng.standard_normal((n, c, h, w)).astype(numpy.float32), requires_grad=True)
    gy = rng.standard_normal((n, c_out, h, w)).astype(numpy.float32)
    return (n, c, h, w, c_out), conv, x, gy


def test_a_convolution_and_relu_forward_and_backward_stay_within_their_arrays(monkeypatch):
    """Conv 3x3 (padding 1) then ReLU on the numpy set, float32, the direct way (im2col; the
    Winograd way has a test of its own below), bytes counted by name:

        forward:   Y (the convolution's output) + Y (the ReLU's), and for a moment the
                   columns cols (C*9 x OH*OW*N) and x_pad (the padded copy im2col reads)
        after it:  the two outputs (the graph keeps them) and the columns: on a CPU the
                   cache keeps them for the backward (x itself it holds anyway)
        backward:  on top of that, the ReLU's input gradient Y, gy laid out channels first Y,
                   the column gradient (the size of cols), the padded input gradient x_pad,
                   the copy that becomes x.grad X, and the weight and bias gradients P
        after it:  the two outputs, x.grad and the parameters' gradients.
    """
    (n, c, h, w, c_out), conv, x, gy = a_3x3_convolution_layer()
    X, Y, P = x.data.nbytes, gy.nbytes, conv.weight.data.nbytes + conv.bias.data.nbytes
    cols, x_pad = c * 9 * h * w * n * 4, c * (h + 2) * (w + 2) * n * 4
    monkeypatch.setattr(vectorized, "WINOGRAD_MIN_PIXELS", h * w + 1)
    with kernels.use("numpy"), Traced() as memory:
        y = F.relu(conv(x))
        assert memory.peak() <= 2 * Y + cols + x_pad + SLACK
        after_forward = memory.current()
        assert after_forward <= 2 * Y + cols + SLACK
        kept = y.node.inputs[0].node.cache.kernel_cache
        assert kept.x is x.data and kept.cols.nbytes == cols
        del kept
        tracemalloc.reset_peak()
        y.backward(gy)
        assert memory.peak() <= after_forward + 2 * Y + cols + x_pad + X + P + SLACK
        assert memory.current() <= 2 * Y + X + P + SLACK


def test_a_winograd_convolution_and_relu_stay_within_their_arrays():
    """The same layer the Winograd way (vectorized.py; 20x20 maps: 10x10 tiles of 2x2 pixels),
    bytes counted by name (T tiles a channel, float32):

        forward:   for a moment the transformed input V (16 numbers a tile and input channel),
                   the 16 products M (16 a tile and output channel), and the output's pixels
                   Y before they are put in place; U, the transformed filters, is small
        after it:  the two outputs, V and U (the cache keeps them for the backward)
        backward:  on top of that the ReLU's input gradient Y, gy laid out channels first Y,
                   its pixels split by tile Y, their transform Z (the size of M), the tiles'
                   gradient gV (the size of V), the input gradient X, the input gradient's
                   scratch (less than V), the weight and bias gradients P
        after it:  the two outputs, x.grad and the parameters' gradients.
    """
    (n, c, h, w, c_out), conv, x, gy = a_3x3_convolution_layer()
    X, Y, P = x.data.nbytes, gy.nbytes, conv.weight.data.nbytes + conv.bias.data.nbytes
    tiles = (h // 2) * (w // 2) * n
    V, M, U = 16 * c * tiles * 4, 16 * c_out * tiles * 4, 16 * c_out * c * 4
    with kernels.use("numpy"), Traced() as memory:
        y = F.relu(conv(x))
        assert memory.peak() <= V + M + Y + U + SLACK
        after_forward = memory.current()
        assert after_forward <= 2 * Y + V + U + SLACK
        kept = y.node.inputs[0].node.cache.kernel_cache
        assert isinstance(kept, vectorized.WinogradConv2dCache)
        assert kept.x is x.data and kept.v.nbytes == V and kept.u.nbytes == U
        del kept
        tracemalloc.reset_peak()
        y.backward(gy)
        assert memory.peak() <= after_forward + 3 * Y + M + 2 * V + X + P + SLACK
        assert memory.current() <= 2 * Y + X + P + SLACK


def test_a_lrn_layer_keeps_one_array_beyond_its_output():
    x = Tensor(numpy.random.default_rng(0).standard_normal((8, 32, 16, 16)).astype(numpy.float32),
               requires_grad=True)
    with kernels.use("numpy"), Traced() as memory:
        y = F.local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=1.0)
        assert memory.current() <= 2 * x.data.nbytes + SLACK     # y and s
        y.backward(numpy.ones_like(y.data))
        assert memory.current() <= 2 * x.data.nbytes + SLACK     # y and x.grad: s is freed


def _arrays_of(tensors, exclude):
    """The bytes of the distinct buffers behind the data of ``tensors`` and behind their
    nodes' caches (arrays inside named tuples, tuples and lists), apart from ``exclude``
    (ids of buffers): (activations, caches, the largest one)."""
    seen, sizes = set(exclude), {"data": 0, "cache": 0}
    largest = 0

    def count(array, kind):
        nonlocal largest
        while isinstance(array.base, numpy.ndarray):
            array = array.base
        if id(array) not in seen:
            seen.add(id(array))
            sizes[kind] += array.nbytes
            largest = max(largest, array.nbytes)

    def count_cache(value):
        if isinstance(value, numpy.ndarray):
            count(value, "cache")
        elif isinstance(value, (tuple, list)):
            for item in value:
                count_cache(item)

    for tensor in tensors:
        count(tensor.data, "data")
    for tensor in tensors:
        if tensor.node is not None:
            count_cache(tensor.node.cache)
    return sizes["data"], sizes["cache"], largest


def _largest_columns(tensors):
    """The bytes of the largest column matrix (C*KH*KW x OH*OW*N) among the convolutions that
    made ``tensors``: what a convolution's forward, and its backward again, copies x into."""
    largest = 0
    for tensor in tensors:
        if tensor.node is not None and tensor.node.name in ("conv2d", "conv2d_relu"):
            x, weight = tensor.node.inputs[:2]
            n, _, oh, ow = tensor.shape
            largest = max(largest, weight.size // weight.shape[0] * x.shape[1] // weight.shape[1]
                          * oh * ow * n * tensor.data.itemsize)
    return largest


@pytest.mark.parametrize("retain", [False, True])
def test_googlenet_forward_and_backward_stay_within_the_graphs_arrays(retain):
    """The paper's network (width 1/4, 64x64, batch 2, auxiliary heads, flat parameters) on
    the numpy set. After the forward, the arrays alive are the graph's: every tensor's data A
    and what the ops saved C (both counted by walking the graph). On top of them, one op's
    working set: in the forward a convolution's columns (at most K, the largest column
    matrix) and a padded copy of its input (at most L, the largest array of A and C); in the
    backward the columns' gradient and, on a GPU, the columns copied again (2 K; on a CPU the
    forward's columns are kept, and counted in C), the upstream gradient laid
    out for the product and the padded input gradient (2 L). The parameters' gradients are
    in the flat buffer already. After the backward the caches are gone: what is left is A and
    the input's gradient."""
    from googlenet.model import GoogLeNet, googlenet_loss
    model = GoogLeNet(num_classes=10, input_size=64, width=0.25)
    model.flatten_parameters()
    rng = numpy.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 64, 64)).astype(numpy.float32), requires_grad=True)
    labels = rng.integers(0, 10, 2)
    parameters = {id(p.data.base) for p in model.parameters()} | {id(x.data)}
    with kernels.use("numpy"), Traced() as memory:
        loss = googlenet_loss(model(x), labels)
        graph = graph_order(loss)
        A, C, L = _arrays_of(graph, exclude=parameters)
        K = _largest_columns(graph)
        objects = SLACK + PER_TENSOR * len(graph)
        assert memory.peak() <= A + C + K + L + objects
        after_forward = memory.current()
        assert after_forward <= A + C + objects
        tracemalloc.reset_peak()
        loss.backward(retain_graph=retain)
        assert memory.peak() <= after_forward + 2 * K + 2 * L + SLACK
        if retain:
            assert memory.current() >= A + C
        else:
            assert memory.current() <= A + x.data.nbytes + objects
            for tensor in graph:
                if tensor.node is not None:
                    with pytest.raises(RuntimeError, match="already run through this op"):
                        tensor.node.cache
