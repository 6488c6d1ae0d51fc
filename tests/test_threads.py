"""minigrad.parallel: the thread pool and the kernels split over it.

Every threaded kernel must give the same bits at every thread count (hypothesis over
shapes, memory layouts, dtypes, special values and thread counts 1-5, with chunks so small
that odd batch sizes split unevenly); an error inside a chunk reaches the caller, named;
the pool shuts down cleanly, survives a fork and never deadlocks (those tests run under a
timeout, in a child process where a hang can be killed).
"""
import os
import subprocess
import sys
import textwrap
import threading
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigrad import kernels, parallel
from minigrad.bench import same_bits
from minigrad.ops import conv, elementwise, lrn, pool, shape as shape_ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 60            # seconds: far longer than any of these runs takes


def tiny_chunks():
    """Split any work, however small (the kernels' sizes here are tiny)."""
    return mock.patch.object(parallel, "MIN_CHUNK_NUMBERS", 1)


# --- splitting --------------------------------------------------------------------------------
@given(length=st.integers(0, 200), parts=st.integers(1, 9))
def test_chunks_cover_the_range_in_order_and_differ_by_at_most_one(length, parts):
    bounds = parallel.chunk_bounds(length, parts)
    assert len(bounds) == min(parts, length)
    if bounds:
        assert [start for start, _ in bounds] == [0] + [stop for _, stop in bounds[:-1]]
        assert bounds[-1][1] == length
        sizes = [stop - start for start, stop in bounds]
        assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_small_work_is_not_split_and_cupy_work_never_is():
    with parallel.threads(4):
        assert parallel.chunk_count(100, parallel.MIN_CHUNK_NUMBERS - 1) == 1
        assert parallel.chunk_count(100, 2 * parallel.MIN_CHUNK_NUMBERS) == 2
        assert parallel.chunk_count(3, 100 * parallel.MIN_CHUNK_NUMBERS) == 3
        assert parallel.chunk_count(100, 100 * parallel.MIN_CHUNK_NUMBERS, xp=object()) == 1


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_chunk_runs_once_and_all_run_at_the_same_time(count):
    seen, names = [], set()
    all_started = threading.Barrier(count, timeout=TIMEOUT)     # broken unless count chunks run at once

    def work(start, stop):
        all_started.wait()
        seen.extend(range(start, stop))
        names.add(threading.current_thread().name)
    with parallel.threads(count), tiny_chunks():
        parallel.for_chunks("test", 17, work, numbers=17)
    assert sorted(seen) == list(range(17))
    assert len(names) == count and threading.current_thread().name in names


# --- how many threads -------------------------------------------------------------------------
def test_thread_count_comes_from_the_block_then_the_process_then_the_environment(monkeypatch):
    monkeypatch.delenv(parallel.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(parallel, "_process_count", None)
    assert parallel.thread_count() == parallel.available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(parallel.ENVIRONMENT_VARIABLE, " 3 ")
    assert parallel.thread_count() == 3
    parallel.set_thread_count(2)
    assert parallel.thread_count() == 2
    with parallel.threads(5):
        assert parallel.thread_count() == 5
    assert parallel.thread_count() == 2
    parallel.set_thread_count(None)
    assert parallel.thread_count() == 3


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_bad_environment_variable_is_named(monkeypatch, bad):
    monkeypatch.setattr(parallel, "_process_count", None)
    monkeypatch.setenv(parallel.ENVIRONMENT_VARIABLE, bad)
    with pytest.raises(ValueError, match="MINIGRAD_THREADS: expected a positive whole number"):
        parallel.thread_count()


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "many"])
def test_a_bad_count_is_refused(bad):
    with pytest.raises(ValueError, match="threads: expected a positive whole number"):
        parallel.set_thread_count(bad)
    with pytest.raises(ValueError, match="threads: expected a positive whole number"):
        with parallel.threads(bad):
            pass


# --- every threaded kernel gives one thread's bits ------------------------------------------------
LAYOUTS = {  # the same (N, C, H, W) values lying in memory in different orders
    "NCHW": lambda a: a,
    "CHWN": lambda a: np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2),
    "HWNC": lambda a: np.ascontiguousarray(a.transpose(2, 3, 0, 1)).transpose(2, 3, 0, 1),
    "strided": lambda a: np.repeat(a, 2, axis=3)[..., ::2],
}
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]


@st.composite
def arrays(draw, shape, special=True):
    """Random values of ``shape`` in a random dtype (and memory layout, for 4 axes), some of
    them NaN, inf or a zero of either sign."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    a = np.asarray(rng.standard_normal(shape)).astype(dtype)
    if special and draw(st.booleans()):
        where = rng.random(shape) < 0.1
        a[where] = rng.choice(SPECIAL, size=int(np.sum(where)))
    return LAYOUTS[draw(st.sampled_from(sorted(LAYOUTS)))](a) if a.ndim == 4 else a


def results_at_each_count(run, counts):
    """{count: flat list of the arrays run() returns} with the numpy set at each thread count."""
    results = {}
    for count in counts:
        with parallel.threads(count), tiny_chunks(), kernels.use("numpy"), np.errstate(all="ignore"):
            results[count] = flatten(run())
    return results


def flatten(result):
    """The arrays in a result (outputs, gradients, the arrays of a cache), in order."""
    if isinstance(result, (tuple, list)):
        return [a for part in result for a in flatten(part)]
    return [result] if isinstance(result, np.ndarray) else []


def assert_same_at_every_count(run, counts=(1, 2, 3, 4, 5)):
    results = results_at_each_count(run, counts)
    one = results[counts[0]]
    for count, arrays_ in results.items():
        assert len(arrays_) == len(one)
        for a, b in zip(arrays_, one):
            assert same_bits(a, b), f"{count} threads differ from {counts[0]}"


def forward_and_backward(forward, backward, gy_seed):
    def run():
        y, cache = forward()
        gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(y.dtype)
        return y, backward(LAYOUTS["CHWN"](gy), cache)
    return run


batches = st.integers(1, 7)          # odd sizes: 5 images over 2 threads is 3 + 2


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=batches, c=st.integers(1, 6), h=st.integers(3, 9), w=st.integers(3, 9),
       kernel=st.integers(1, 3), stride=st.integers(1, 2), ceil_mode=st.booleans(), gy_seed=st.integers(0, 99))
def test_pooling_is_the_same_at_every_thread_count(data, n, c, h, w, kernel, stride, ceil_mode, gy_seed):
    x = data.draw(arrays((n, c, h, w)))
    padding = data.draw(st.integers(0, kernel // 2))
    max_pool = lambda: pool.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    avg_pool = lambda: pool.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    assert_same_at_every_count(forward_and_backward(max_pool, pool.max_pool2d_backward, gy_seed))
    assert_same_at_every_count(forward_and_backward(avg_pool, pool.avg_pool2d_backward, gy_seed))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=batches, c=st.integers(1, 9), h=st.integers(1, 6), size=st.integers(1, 7),
       gy_seed=st.integers(0, 99))
def test_lrn_is_the_same_at_every_thread_count(data, n, c, h, size, gy_seed):
    x = data.draw(arrays((n, c, h, h + 1)))
    forward = lambda: lrn.lrn_forward(x, size, alpha=0.5, beta=0.75, k=1.0)
    assert_same_at_every_count(forward_and_backward(forward, lrn.lrn_backward, gy_seed))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), n=batches, c=st.integers(1, 4), f=st.integers(1, 5), groups=st.integers(1, 2),
       h=st.integers(3, 12), kernel=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2),
       bias=st.booleans(), relu=st.booleans(), gy_seed=st.integers(0, 99))
def test_conv2d_is_the_same_at_every_thread_count(data, n, c, f, groups, h, kernel, stride, bias, relu,
                                                   gy_seed):
    """All the numpy set's routes: im2col, 1x1 on small maps, 1x1 image by image (maps of 100
    pixels or more), groups; with and without a bias, with and without the fused ReLU."""
    x = data.draw(arrays((n, c * groups, h, h), special=False))
    rng = np.random.default_rng(gy_seed)
    weight = rng.standard_normal((f * groups, c, kernel, kernel)).astype(x.dtype)
    b = rng.standard_normal(f * groups).astype(x.dtype) if bias else None
    convolve = conv.conv2d_relu_forward if relu else conv.conv2d_forward
    forward = lambda: convolve(x, weight, b, stride=stride, padding=kernel // 2, groups=groups)
    assert_same_at_every_count(forward_and_backward(forward, conv.conv2d_backward, gy_seed))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=batches, c=st.integers(1, 5), h=st.integers(2, 9), kernel=st.integers(1, 4),
       stride=st.integers(1, 3))
def test_im2col_and_col2im_are_the_same_at_every_thread_count(data, n, c, h, kernel, stride):
    from minigrad.geometry import window
    x = data.draw(arrays((n, c, h, h + 2)))
    win = window(x.shape[2:], min(kernel, h), stride, data.draw(st.integers(0, 1)))
    numpy_set = kernels.get("numpy")
    assert_same_at_every_count(lambda: numpy_set.im2col(x, win))
    cols = numpy_set.im2col(x, win)
    assert_same_at_every_count(lambda: numpy_set.col2im(cols, x.shape, win))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), shape=st.lists(st.integers(0, 6), min_size=0, max_size=4), gy_seed=st.integers(0, 99))
def test_relu_is_the_same_at_every_thread_count(data, shape, gy_seed):
    x = data.draw(arrays(tuple(shape)))

    def run():
        y, cache = elementwise.relu_forward(x)
        gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(y.dtype)
        return y, elementwise.relu_backward(gy, cache)
    assert_same_at_every_count(run)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), shape=st.lists(st.integers(0, 6), min_size=0, max_size=4))
def test_relu_backward_is_where_bit_for_bit(data, shape):
    """The select by a mask of whole words gives numpy.where's bits: +0.0 where the gradient
    stops, whatever it was (inf, NaN, -0.0, a negative number), gy itself elsewhere."""
    x, gy = data.draw(arrays(tuple(shape))), data.draw(arrays(tuple(shape)))
    gy = gy.astype(x.dtype)
    y, cache = elementwise.relu_forward(x)
    (gx,) = elementwise.relu_backward(gy, cache)
    expected = np.where(~(x <= 0), gy, 0)              # the gradient flows where x > 0, and at NaN
    bits = f"u{gx.itemsize}"
    assert gx.dtype == expected.dtype == gy.dtype
    assert np.array_equal(np.atleast_1d(gx).view(bits), np.atleast_1d(expected).view(bits))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=batches, widths=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       axis=st.integers(-4, 3))
def test_concat_is_the_same_at_every_thread_count(data, n, widths, axis):
    shapes = [[n, 3, 4, 5] for _ in widths]
    for shape, width in zip(shapes, widths):
        shape[axis] = width
    parts = [data.draw(arrays(tuple(shape))) for shape in shapes]
    dtype = np.result_type(*parts)
    assert_same_at_every_count(lambda: shape_ops.concat_forward(*parts, axis=axis)[0])
    with parallel.threads(3), tiny_chunks():
        joined = shape_ops.concat_forward(*parts, axis=axis)[0]
    assert joined.dtype == dtype and same_bits(joined, np.concatenate(parts, axis=axis))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=batches, c=st.integers(1, 6), h=st.integers(1, 5), w=st.integers(1, 5),
       out_layout=st.sampled_from(sorted(LAYOUTS)), block=st.sampled_from([1, 7, 1 << 16]))
def test_blocks_of_any_layouts_give_the_plain_results_at_every_thread_count(data, n, c, h, w, out_layout, block):
    """``for_blocks_of``: a copy and a sum between arrays of any layouts, by blocks of any
    size (one number, a few, the default) on 1-5 threads, give the bits of one plain call;
    the output may be one of the inputs (a sum in place)."""
    a, b = data.draw(arrays((n, c, h, w))), data.draw(arrays((n, c, h, w)))
    b = b.astype(a.dtype)
    out = LAYOUTS[out_layout](np.empty(a.shape, a.dtype))
    add = lambda out, a, b: np.add(a, b, out=out)

    def by_blocks():
        parallel.for_blocks_of("sum", add, out, a, b)
        summed = out.copy()
        parallel.for_blocks_of("copy", np.copyto, out, a)
        copied = out.copy()
        parallel.for_blocks_of("sum in place", add, out, out, b)
        return [summed, copied, out.copy()]
    with mock.patch.object(parallel, "CACHE_BLOCK_NUMBERS", block), tiny_chunks(), np.errstate(invalid="ignore"):
        assert_same_at_every_count(by_blocks)                  # inf + -inf: NaN, as NumPy's own sum
        summed, copied, in_place = by_blocks()
        assert same_bits(summed, a + b) and same_bits(copied, a) and same_bits(in_place, a + b)


def test_blocks_of_arrays_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="gradient sum: for_blocks_of needs arrays of one shape"):
        parallel.for_blocks_of("gradient sum", np.add, np.empty((2, 3)), np.empty((3, 2)))


def test_the_gradient_a_tensor_gets_from_several_ops_in_several_layouts_is_their_sum():
    """An Inception module's input gets its gradient in four shares, one pixels-first from its
    pool, the others batch-last: the engine adds them by blocks in one pass (autograd._sum_of);
    the result is the plain sum (of small integers: exact in any order), the same bits at
    every thread count."""
    from minigrad import Tensor
    x_data = np.random.default_rng(0).standard_normal((3, 4, 5, 6))
    names = sorted(LAYOUTS) + ["CHWN"] * 2
    shares = [LAYOUTS[name](np.random.default_rng(seed).integers(-9, 10, x_data.shape).astype(float))
              for seed, name in enumerate(names)]

    def run():
        x = Tensor(x_data, requires_grad=True)
        used = x * 1.0                 # not a leaf: the walk sums its shares (autograd._sum_of)
        used.retain_grad()
        sum((used * Tensor(share)).sum() for share in shares).backward()
        return [used.grad]
    with tiny_chunks(), mock.patch.object(parallel, "CACHE_BLOCK_NUMBERS", 5):
        assert_same_at_every_count(run)
        (grad,) = run()
    expected = shares[0].copy()
    for share in shares[1:]:
        expected = expected + share
    assert same_bits(grad, expected)


@pytest.mark.parametrize("count", [2, 3, 9, 17])
def test_shares_are_added_in_the_order_they_came_into_the_layout_most_have(count):
    """autograd's sum of a tensor's shares: the left-to-right sum, bit for bit (floats whose
    sum depends on the order), laid out as the most shares are; more than FOLD_AT shares
    are folded on the way, with the same bits."""
    from minigrad import autograd
    rng = np.random.default_rng(count)
    names = ["HWNC"] + ["CHWN"] * (count - 1)
    shares = [LAYOUTS[name](rng.standard_normal((2, 3, 4, 5)) * 10.0 ** rng.integers(-8, 8)) for name in names]
    pending = autograd._Pending(0, shares[0])
    for share in shares[1:]:
        pending.add(0, share)
    with tiny_chunks(), parallel.threads(3), mock.patch.object(parallel, "CACHE_BLOCK_NUMBERS", 7):
        total = pending.pop(0)
    expected = shares[0]
    for share in shares[1:]:
        expected = expected + share
    assert same_bits(total, expected)
    assert parallel.axes_by_stride(total) == parallel.axes_by_stride(shares[1])
    assert pending.pop(0) is None


def test_a_threaded_training_step_of_a_small_googlenet_is_the_same_at_every_thread_count():
    from googlenet.model import GoogLeNet, googlenet_loss
    from minigrad import Tensor, nn

    def step():
        model = GoogLeNet(num_classes=4, width=1 / 16, input_size=32, seed=0)
        for index, dropout in enumerate(m for m in model.modules() if isinstance(m, nn.Dropout)):
            dropout.reseed([0, index])
        images = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
        output = model.train()(Tensor(images))
        loss = googlenet_loss(output, np.array([0, 1, 3]))
        loss.backward()
        return [loss.data] + [p.grad for p in model.parameters()]
    assert_same_at_every_count(step, counts=(1, 2, 5))


def test_more_threads_add_only_numpys_buffers_to_the_peak_memory():
    """A convolution with its ReLU, an LRN and a max pool, forward and backward: the traced
    peak on 2 and 4 threads exceeds the one-thread peak by at most NumPy's iteration buffers
    (``numpy.getbufsize()`` elements of up to 8 bytes for each of about 3 operands) per thread,
    less than one of the arrays here (test_memory.py bounds the one-thread peak itself)."""
    import tracemalloc
    from minigrad import Tensor, nn

    def peak(count):
        rng = np.random.default_rng(0)
        layers = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, relu=True, rng=rng), nn.LocalResponseNorm(5),
                               nn.MaxPool2d(3, 2, ceil_mode=True))
        x = Tensor(rng.standard_normal((8, 32, 32, 32)).astype(np.float32), requires_grad=True)
        with parallel.threads(count), tiny_chunks(), kernels.use("numpy"):
            tracemalloc.start()
            try:
                y = layers(x)
                y.backward(np.ones(y.shape, np.float32))
                return tracemalloc.get_traced_memory()[1], x.data.nbytes
            finally:
                tracemalloc.stop()
    peak(4)                                   # the pool's threads made before anything is traced
    one, array = peak(1)
    for count in (2, 4):
        buffers = count * 3 * 8 * np.getbufsize()
        assert buffers < array and peak(count)[0] - one <= buffers


# --- errors, shutdown, deadlocks ------------------------------------------------------------------
class Planted(Exception):
    pass


@pytest.mark.parametrize("failing", [1, 2, 3])
def test_an_error_in_a_chunk_reaches_the_caller_after_every_chunk_stopped(failing):
    done = []

    def work(start, stop):
        if start == [0, 4, 7][failing - 1]:
            raise Planted(f"items {start}:{stop}")
        done.append(start)
    with parallel.threads(3), tiny_chunks(), pytest.raises(Planted) as caught:
        parallel.for_chunks("my_op", 10, work, numbers=10)
    assert sorted(done) == sorted({0, 4, 7} - {[0, 4, 7][failing - 1]})
    notes = " ".join(getattr(caught.value, "__notes__", []))
    if sys.version_info >= (3, 11):
        assert f"in my_op, chunk {failing} of 3" in notes


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes need Python 3.11")
def test_a_kernel_error_names_the_op_and_keeps_the_callers_errstate():
    x = np.full((4, 3, 5, 5), 1e30, dtype=np.float32)            # x * x overflows float32
    with parallel.threads(4), tiny_chunks(), np.errstate(over="raise"):
        with pytest.raises(FloatingPointError) as caught:
            lrn.lrn_forward(x)
    assert "in local_response_norm, chunk" in " ".join(caught.value.__notes__)
    with parallel.threads(4), tiny_chunks(), np.errstate(over="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")                          # a warning from any chunk fails
            lrn.lrn_forward(x)


def run_child(code):
    """Run ``code`` in a fresh Python with this tree first on the path; fail on a hang."""
    environment = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=ROOT, env=environment)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_pool_shuts_down_cleanly_and_starts_again():
    out = run_child("""
        import numpy as np, threading
        from minigrad import parallel
        from minigrad.ops import pool
        parallel.MIN_CHUNK_NUMBERS = 1
        x = np.random.default_rng(0).standard_normal((6, 3, 9, 9))
        with parallel.threads(3):
            first = pool.max_pool2d_forward(x, 3, 2)[0]
            print(sum(t.name.startswith("minigrad") for t in threading.enumerate()) > 0)
            parallel.shutdown()
            print(sum(t.name.startswith("minigrad") for t in threading.enumerate()))
            again = pool.max_pool2d_forward(x, 3, 2)[0]
        print(np.array_equal(first, again))
        """)                                       # and the interpreter exits with the pool idle
    assert out.split() == ["True", "0", "True"]


def test_a_split_inside_the_callers_own_chunk_runs_on_the_calling_thread():
    """The pool's threads are busy with the other chunks: a split inside the caller's chunk
    would wait for them (and run one part after the other anyway)."""
    inner_threads = {}

    def outer(start, stop):
        here = threading.get_ident()
        parallel.for_chunks("inner", 8, lambda a, b: inner_threads.setdefault(here, set()).add(
            threading.get_ident()), numbers=8)
    with parallel.threads(2), tiny_chunks():
        parallel.for_chunks("outer", 2, outer, numbers=2)
    assert len(inner_threads) == 2
    assert all(threads_ == {outer_thread} for outer_thread, threads_ in inner_threads.items())


def test_no_deadlock_when_chunks_ask_for_chunks_or_many_threads_call_at_once():
    out = run_child("""
        import threading
        import numpy as np
        from minigrad import parallel
        from minigrad.ops import lrn
        parallel.MIN_CHUNK_NUMBERS = 1
        parallel.set_thread_count(2)
        seen = []
        def outer(start, stop):                    # a kernel inside a kernel: runs in turn
            parallel.for_chunks("inner", 8, lambda a, b: seen.append((a, b)), numbers=8)
        parallel.for_chunks("outer", 6, outer, numbers=6)
        print(sum(stop - start for start, stop in seen))     # 8 items for each of 2 outer chunks
        x = np.random.default_rng(0).standard_normal((5, 7, 6, 6))
        expected = lrn.lrn_forward(x)[0]
        results = []
        def caller(count):
            with parallel.threads(count):
                for _ in range(20):
                    results.append(np.array_equal(lrn.lrn_forward(x)[0], expected))
        callers = [threading.Thread(target=caller, args=(count,)) for count in (1, 2, 3, 4, 5, 2)]
        for thread in callers:
            thread.start()
        for thread in callers:
            thread.join()
        def fail(start, stop):
            raise ValueError("every chunk fails")
        try:
            parallel.for_chunks("failing", 9, fail, numbers=9)
        except ValueError:
            print("raised")
        print(len(results), all(results))
        """)
    assert out.split() == ["16", "raised", "120", "True"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_its_own_pool():
    out = run_child("""
        import multiprocessing, numpy as np
        from minigrad import parallel
        from minigrad.ops import pool
        parallel.MIN_CHUNK_NUMBERS = 1
        parallel.set_thread_count(3)
        x = np.random.default_rng(0).standard_normal((6, 3, 9, 9))
        here = pool.max_pool2d_forward(x, 3, 2)[0]         # the parent's pool is running
        def in_child(_):
            return pool.max_pool2d_forward(x, 3, 2)[0]
        with multiprocessing.get_context("fork").Pool(1) as children:
            there = children.map(in_child, [0])[0]
        print(np.array_equal(here, there))
        """)
    assert out.split() == ["True"]


# --- the commands' --threads --------------------------------------------------------------------
def test_train_and_bench_take_threads_and_refuse_a_bad_environment(monkeypatch, tmp_path, capsys):
    from googlenet import __main__ as cli, train
    monkeypatch.setattr(parallel, "_process_count", None)          # restored after the test
    monkeypatch.setenv(parallel.ENVIRONMENT_VARIABLE, "1")            # so that it is restored too
    monkeypatch.delenv(parallel.ENVIRONMENT_VARIABLE)
    counts = []

    def stand_in(*args, **kwargs):
        counts.append(parallel.thread_count())
        raise KeyboardInterrupt                # the training itself is not under test
    monkeypatch.setattr(train, "Trainer", stand_in)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["train", "--no-progress", "--threads", "3", "--out", str(tmp_path)])
    assert counts == [3] and os.environ[parallel.ENVIRONMENT_VARIABLE] == "3"   # for child processes too
    assert cli.main(["bench", "--quick", "--only", "3a/pool", "--threads", "2"]) == 0
    assert "kernel threads 2," in capsys.readouterr().out
    monkeypatch.setenv(parallel.ENVIRONMENT_VARIABLE, "zero")
    assert cli.main(["bench", "--quick", "--only", "3a/pool"]) == 2
    assert "error: MINIGRAD_THREADS: expected a positive whole number of threads, got 'zero'" in capsys.readouterr().err


# --- the benchmark's own check -------------------------------------------------------------------
def test_thread_scaling_times_every_count_and_catches_other_bits():
    from minigrad import bench
    from googlenet.bench import googlenet_op_shapes
    rng = np.random.default_rng(0)
    shapes = {s.name: s for s in googlenet_op_shapes(2, 64)}
    chosen = bench.threaded_kernels(shapes["conv2"], rng) + bench.threaded_kernels(shapes["lrn/conv2"], rng)
    chosen += [bench.copy_kernel(1, rng), bench.concat_kernel("3a", [(2, 4, 3, 3), (2, 5, 3, 3)], rng)]
    times = bench.thread_scaling(chosen, [1, 2, 3], repeats=1)
    assert list(times) == ["conv2 im2col", "conv2 col2im", "conv2 relu fwd", "conv2 relu bwd",
                           "lrn/conv2 fwd", "lrn/conv2 bwd", "copy 1 MB", "3a concat"]
    assert all(list(t) == [1, 2, 3] and min(t.values()) > 0 for t in times.values())
    wrong = ("wrong", lambda: np.full(3, float(parallel.thread_count())))
    with pytest.raises(AssertionError, match="wrong: 2 threads computed other bits than 1"):
        bench.thread_scaling([wrong], [1, 2], repeats=1)


def test_same_bits_tells_signed_zeros_apart_and_takes_any_nan_for_any_nan():
    from minigrad.bench import same_bits
    nan = np.float32(np.nan)
    assert same_bits(np.array([nan, 1.0], np.float32), np.array([-nan, 1.0], np.float32))
    assert not same_bits(np.array([0.0]), np.array([-0.0]))
    assert not same_bits(np.array([nan]), np.array([1.0]))
    assert not same_bits(np.zeros(2, np.float32), np.zeros(2, np.float64))


# --- the optimizer over the flat buffers ---------------------------------------------------------
@pytest.mark.parametrize("make", ["sgd", "nesterov", "adam"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_flat_update_is_the_same_at_every_thread_count(make, dtype):
    """Three steps of each optimizer over a model's flat buffers (weights with weight decay,
    biases without: chunks cross that boundary), at 1 to 5 threads."""
    from minigrad import nn, optim

    def steps():
        model = nn.Sequential(nn.Conv2d(3, 5, 3, rng=1), nn.Conv2d(5, 4, 1, rng=2)).astype(dtype)
        flat = model.flatten_parameters()
        rng = np.random.default_rng(0)
        optimizer = {"sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                     "nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                     "adam": lambda p: optim.Adam(p, lr=0.01, weight_decay=0.01)}[make](model.parameters())
        for _ in range(3):
            optimizer.zero_grad()
            for p in model.parameters():                 # None after zero_grad: the step gathers these
                p.grad = rng.standard_normal(p.shape).astype(dtype)
            optimizer.step()
        assert optimizer.flat is flat                 # the update over the flat buffers
        return [flat.data, flat.grad] + list(optimizer.flat_state.values())
    assert_same_at_every_count(steps)
