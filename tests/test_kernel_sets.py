"""The kernel sets agree: every op's forward and backward on the numpy and cuda sets
(the cuda kernels through their CPU twin) against the reference set, on random
configurations and random memory layouts (hypothesis).

The reference set is checked against plain loops and PyTorch in test_conv.py,
test_pool.py and test_lrn.py; here it is the oracle. Inputs and upstream gradients
arrive in any memory layout (the numpy set hands out transposed views, and
whatever comes next must not care), so no test polices layouts across ops.
"""
import inspect
import itertools
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minigrad.functional as F
from minigrad import Tensor, kernels, parallel
from minigrad.ops import conv, lrn, pool
from minigrad.geometry import conv_output_size, window

import float32_cases
from conftest import available_kernel_sets, skip_without_twin

FAST_SETS = ["numpy", "cuda"]

LAYOUTS = {  # the same (N, C, H, W) values lying in memory in different orders
    "NCHW": lambda a: a,
    "CHWN": lambda a: np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2),
    "HWNC": lambda a: np.ascontiguousarray(a.transpose(2, 3, 0, 1)).transpose(2, 3, 0, 1),
    "strided": lambda a: np.repeat(a, 2, axis=3)[..., ::2],
    # the interior of a padded batch-last buffer: how col2im hands out an input gradient
    "CHWN padded": lambda a: np.pad(a.transpose(1, 2, 3, 0), ((0, 0), (1, 1), (2, 1), (0, 0)))[:, 1:-1, 2:-1].transpose(3, 0, 1, 2),
}
layouts = st.sampled_from(sorted(LAYOUTS))


def on_both_sets(fast, forward, backward, inputs, gy_seed, in_layout, gy_layout):
    """(y, grads) of the pair on the reference set and on the ``fast`` one: {name: ...}."""
    skip_without_twin(fast)
    results = {}
    for name in ("reference", fast):
        with kernels.use(name):
            y, cache = forward(*[LAYOUTS[in_layout](a) if a is not None and a.ndim == 4 else a
                                 for a in inputs])
        gy = np.random.default_rng(gy_seed).standard_normal(y.shape)
        grads = backward(LAYOUTS[gy_layout](gy), cache)
        results[name] = (y, grads)
    return results


def assert_sets_agree(results, rtol=1e-12):
    (y_ref, grads_ref), (y, grads) = results.values()
    assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=rtol)
    assert len(grads) == len(grads_ref)
    for g, g_ref in zip(grads, grads_ref):
        if g_ref is None:
            assert g is None
            continue
        assert g.shape == g_ref.shape and g.dtype == g_ref.dtype
        np.testing.assert_allclose(g, g_ref, rtol=rtol, atol=rtol)


@st.composite
def windows(draw, max_size=12, pooling=False):
    """(h, w, kernel, stride, padding): every window fits the padded input."""
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2 if pooling else 2)) for k in kernel)
    assume(kernel[0] <= h + 2 * padding[0] and kernel[1] <= w + 2 * padding[1])
    return h, w, kernel, stride, padding


@pytest.mark.parametrize("fast", FAST_SETS)
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), f=st.integers(1, 4), groups=st.integers(1, 3),
       geometry=windows(), pointwise=st.booleans(), bias=st.booleans(), in_layout=layouts,
       gy_layout=layouts, seed=st.integers(0, 2**31))
def test_conv2d(fast, n, c, f, groups, geometry, pointwise, bias, in_layout, gy_layout, seed):
    h, w, kernel, stride, padding = geometry
    if pointwise:         # the numpy set's 1x1 routes: x itself is the column matrix
        kernel, stride, padding = (1, 1), (1, 1), (0, 0)
    c, f = c * groups, f * groups      # c and f per group: groups=1 is an ordinary convolution
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    W = rng.standard_normal((f, c // groups) + kernel)
    b = rng.standard_normal(f) if bias else None

    def forward(x, W, b):
        return conv.conv2d_forward(x, W, b, stride=stride, padding=padding, groups=groups)

    assert_sets_agree(on_both_sets(fast, forward, conv.conv2d_backward, (x, W, b), seed + 1, in_layout,
                                   gy_layout))


@pytest.mark.parametrize("fast", FAST_SETS)
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), geometry=windows(pooling=True), ceil_mode=st.booleans(),
       count_include_pad=st.booleans(), in_layout=layouts, gy_layout=layouts, seed=st.integers(0, 2**31))
def test_pooling(fast, n, c, geometry, ceil_mode, count_include_pad, in_layout, gy_layout, seed):
    h, w, kernel, stride, padding = geometry
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    max_pool = lambda x: pool.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    avg_pool = lambda x: pool.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad)
    assert_sets_agree(on_both_sets(fast, max_pool, pool.max_pool2d_backward, (x,), seed + 1, in_layout, gy_layout))
    assert_sets_agree(on_both_sets(fast, avg_pool, pool.avg_pool2d_backward, (x,), seed + 2, in_layout, gy_layout))


@pytest.mark.parametrize("name", kernels.SETS)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), geometry=windows(pooling=True), ceil_mode=st.booleans(),
       in_layout=layouts, special=st.booleans(), seed=st.integers(0, 2**31))
def test_max_pooling_without_argmax_gives_the_same_maxima_and_no_cache(name, n, c, geometry, ceil_mode,
                                                                      in_layout, special, seed):
    """argmax=False (inference: no backward will come) gives the maxima bit for bit, ties,
    -inf and NaN included, and keeps nothing."""
    skip_without_twin(name)
    h, w, kernel, stride, padding = geometry
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, c, h, w)).astype(np.float32)
    if special:
        x[rng.random(x.shape) < 0.15] = -np.inf
        x[rng.random(x.shape) < 0.05] = np.nan
    x = LAYOUTS[in_layout](x)
    win = window((h, w), kernel, stride, padding, ceil_mode)
    kernel_set = kernels.get(name)
    y, cache = kernel_set.max_pool2d_forward(x, win)
    y_alone, no_cache = kernel_set.max_pool2d_forward(x, win, argmax=False)
    np.testing.assert_array_equal(y_alone, y)
    assert cache is not None and no_cache is None


@pytest.mark.parametrize("fast", FAST_SETS)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 9), h=st.integers(1, 5), size=st.integers(1, 7),
       alpha=st.floats(1e-4, 2.0), beta=st.floats(0.25, 1.0), k=st.floats(0.5, 3.0),
       in_layout=layouts, gy_layout=layouts, seed=st.integers(0, 2**31))
def test_lrn(fast, n, c, h, size, alpha, beta, k, in_layout, gy_layout, seed):
    x = np.random.default_rng(seed).standard_normal((n, c, h, h + 1))
    forward = lambda x: lrn.lrn_forward(x, size, alpha, beta, k)
    assert_sets_agree(on_both_sets(fast, forward, lrn.lrn_backward, (x,), seed + 1, in_layout, gy_layout),
                      rtol=1e-10)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), geometry=windows(pooling=True), ceil_mode=st.booleans(),
       in_layout=layouts, gy_layout=layouts, special=st.booleans(), seed=st.integers(0, 2**31))
def test_pooling_and_copies_by_blocks_give_the_bits_of_one_block(n, c, geometry, ceil_mode, in_layout,
                                                                 gy_layout, special, seed):
    """The numpy set's max pool works by blocks of rows and copies between layouts by blocks
    (vectorized.BLOCK_NUMBERS, ROUTE_BLOCK_NUMBERS, parallel.CACHE_BLOCK_NUMBERS): with blocks of one
    number (so one row) it gives the bits of one block, ties, -inf and NaN included, and
    agrees with the reference."""
    h, w, kernel, stride, padding = geometry
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, c, h, w)).astype(float)          # small integers: many ties
    if special:
        x[rng.random(x.shape) < 0.15] = -np.inf
        x[rng.random(x.shape) < 0.05] = np.nan
    max_pool = lambda x: pool.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    results = on_both_sets("numpy", max_pool, pool.max_pool2d_backward, (x,), seed + 1, in_layout, gy_layout)
    with pytest.MonkeyPatch.context() as patch:
        for blocks_of in ("BLOCK_NUMBERS", "ROUTE_BLOCK_NUMBERS"):
            patch.setattr(kernels.vectorized, blocks_of, 1)
        patch.setattr(parallel, "CACHE_BLOCK_NUMBERS", 1)
        blocks = on_both_sets("numpy", max_pool, pool.max_pool2d_backward, (x,), seed + 1, in_layout, gy_layout)
    (y_one, (g_one,)), (y_blocks, (g_blocks,)) = results["numpy"], blocks["numpy"]
    np.testing.assert_array_equal(y_blocks, y_one)
    np.testing.assert_array_equal(g_blocks, g_one)
    if not special:
        assert_sets_agree(blocks)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 9), h=st.integers(1, 5), size=st.integers(1, 7),
       in_layout=layouts, gy_layout=layouts, seed=st.integers(0, 2**31))
def test_lrn_by_blocks_of_rows_gives_the_bits_of_one_block(n, c, h, size, in_layout, gy_layout, seed):
    """The numpy set's LRN works through a pixels-first input by blocks of rows
    (vectorized.BLOCK_NUMBERS): blocks of one row give the bits of one block."""
    x = np.random.default_rng(seed).standard_normal((n, c, h, h + 1))
    forward = lambda x: lrn.lrn_forward(x, size, 1e-3, 0.75, 2.0)
    results = on_both_sets("numpy", forward, lrn.lrn_backward, (x,), seed + 1, in_layout, gy_layout)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels.vectorized, "BLOCK_NUMBERS", 1)
        blocks = on_both_sets("numpy", forward, lrn.lrn_backward, (x,), seed + 1, in_layout, gy_layout)
    (y_one, (g_one,)), (y_blocks, (g_blocks,)) = results["numpy"], blocks["numpy"]
    np.testing.assert_array_equal(y_blocks, y_one)
    np.testing.assert_array_equal(g_blocks, g_one)
    assert_sets_agree(blocks, rtol=1e-10)


def test_max_pool_ties_go_to_the_first_maximum_on_both_sets():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = x[0, 0, 2, 2] = 1.0            # two maxima in the one 3x3 window
    expected = np.zeros_like(x)
    expected[0, 0, 1, 1] = 5.0
    for name in available_kernel_sets():
        with kernels.use(name):
            _, cache = pool.max_pool2d_forward(x, 3)
        (gx,) = pool.max_pool2d_backward(np.full((1, 1, 1, 1), 5.0), cache)
        np.testing.assert_array_equal(gx, expected, err_msg=name)


@pytest.mark.parametrize("name", ["reference", *FAST_SETS])
def test_each_set_keeps_float32(name):
    skip_without_twin(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    W, b = rng.standard_normal((4, 3, 3, 3)).astype(np.float32), np.zeros(4, np.float32)
    x4, W_grouped = (rng.standard_normal(shape).astype(np.float32) for shape in ((2, 4, 7, 7), (6, 2, 3, 3)))
    pairs = [(conv.conv2d_forward, conv.conv2d_backward, (x, W, b), dict(padding=1)),
             (conv.conv2d_forward, conv.conv2d_backward, (x4, W_grouped, None), dict(stride=2, groups=2)),
             (pool.max_pool2d_forward, pool.max_pool2d_backward, (x,), dict(kernel_size=3, stride=2)),
             (pool.avg_pool2d_forward, pool.avg_pool2d_backward, (x,), dict(kernel_size=3, padding=1)),
             (lrn.lrn_forward, lrn.lrn_backward, (x,), dict(size=5))]
    with kernels.use(name):
        for forward, backward, inputs, params in pairs:
            y, cache = forward(*inputs, **params)
            grads = backward(np.ones(y.shape, np.float32), cache)
            assert y.dtype == np.float32, forward.__name__
            assert all(g.dtype == np.float32 for g in grads if g is not None), backward.__name__


@pytest.mark.parametrize("name", float32_cases.CASES)
@pytest.mark.parametrize("fast", FAST_SETS)
def test_float32_results_agree_within_the_bound_of_their_sums(fast, name):
    """test_gpu.py's comparison of a GPU with the CPU, made here between each fast set and the
    reference set, both in float32 on the CPU: the bounds (magnitudes and term counts) are
    tried where no GPU is needed."""
    skip_without_twin(fast)
    float32_cases.assert_runs_agree(name, float32_cases.run(name, fast), float32_cases.run(name, "reference"))


@pytest.mark.parametrize("name", float32_cases.CASES)
def test_float32_bounds_hold_the_exact_results(name):
    """|sum of terms| <= sum of |terms|: each magnitude is at least the (float64) result."""
    y, grads, gy = float32_cases.run(name, "reference", dtype=np.float64)
    case = float32_cases.CASES[name]
    for result, bound in zip([y, *grads], case.bounds(case.inputs, case.params, gy)):
        if bound not in (None, float32_cases.EXACT):
            assert np.all(np.abs(result) <= bound[0] * (1 + 1e-12)), name


def test_conv_magnitudes_are_sums_of_absolute_products():
    rng = np.random.default_rng(8)
    x, W, b, gy = (rng.standard_normal(shape) for shape in ((2, 2, 5, 5), (3, 2, 3, 3), (3,), (2, 3, 3, 3)))
    bounds = float32_cases.conv_bounds((x, W, b), dict(stride=2, padding=1), gy)
    x_pad = np.pad(np.abs(x), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y, gx_pad, gW = np.zeros(gy.shape), np.zeros(x_pad.shape), np.zeros(W.shape)
    for n, f, i, j in itertools.product(*map(range, gy.shape)):
        patch = x_pad[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
        y[n, f, i, j] = (patch * np.abs(W[f])).sum() + abs(b[f])
        gx_pad[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += abs(gy[n, f, i, j]) * np.abs(W[f])
        gW[f] += abs(gy[n, f, i, j]) * patch
    expected = [(y, 2 * 9 + 1), (gx_pad[:, :, 1:-1, 1:-1], 3 * 9), (gW, 2 * 3 * 3),
                (np.abs(gy).sum(axis=(0, 2, 3)), 2 * 3 * 3)]
    for (magnitude, terms), (want, want_terms) in zip(bounds, expected):
        np.testing.assert_allclose(magnitude, want, rtol=1e-13)
        assert terms == want_terms


def test_a_whole_network_gives_the_same_logits_and_gradients_on_every_set():
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((2, 3, 11, 11)))
    W1, W2 = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True), \
        Tensor(rng.standard_normal((5, 4, 1, 1)), requires_grad=True)

    def run():
        h = F.local_response_norm(F.relu(F.conv2d(x, W1, padding=1)), size=3)
        h = F.max_pool2d(h, 3, stride=2, ceil_mode=True)
        out = F.avg_pool2d(F.conv2d(h, W2), 2).sum()
        out.backward()
        return out.item(), W1.grad.copy(), W2.grad.copy()

    results = {}
    for name in available_kernel_sets():
        W1.grad = W2.grad = None
        with kernels.use(name):
            results[name] = run()
    oracle = results.pop("reference")
    for name, (out, *grads) in results.items():
        np.testing.assert_allclose(out, oracle[0], rtol=1e-12, err_msg=name)
        for ours, theirs, which in zip(grads, oracle[1:], ("W1", "W2")):
            np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-12, err_msg=f"{name}: {which}")


def test_backward_runs_on_the_set_its_forward_ran_on():
    x = Tensor(np.random.default_rng(2).standard_normal((1, 2, 5, 5)), requires_grad=True)
    with kernels.use("reference"):
        y = F.max_pool2d(x, 3, stride=2)
    kernel_set, _ = y._node.cache
    assert kernel_set is kernels.reference
    y.sum().backward()                      # outside the block: still the reference backward
    assert x.grad.shape == x.shape


def test_default_set_and_use():
    x = np.zeros((1, 1, 2, 2))
    assert kernels.current(x) is kernels.vectorized
    with kernels.use("reference"):
        assert kernels.current(x) is kernels.reference
        with kernels.use("numpy"):
            assert kernels.current(x) is kernels.vectorized
        assert kernels.current(x) is kernels.reference
    assert kernels.current(x) is kernels.vectorized


DOCUMENTED = ["conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
              "avg_pool2d_forward", "avg_pool2d_backward", "lrn_forward", "lrn_backward", "im2col", "col2im"]


def public_functions(kernel_set):
    """{name: signature} of the public functions a set defines itself (not those it imports)."""
    return {name: inspect.signature(function) for name, function in inspect.getmembers(kernel_set, inspect.isfunction)
            if not name.startswith("_") and function.__module__ == kernel_set.__name__}


@pytest.mark.parametrize("name", kernels.SETS)
def test_every_set_defines_exactly_the_documented_functions_with_the_same_arguments(name):
    """The sets are interchangeable only if they speak the same language: the same function
    names, argument names, order and defaults; anything else a set needs is private to it."""
    assert all(f"{function}(" in kernels.__doc__ for function in DOCUMENTED)
    functions = public_functions(kernels.get(name))
    assert sorted(functions) == sorted(DOCUMENTED)
    assert functions == public_functions(kernels.reference)


def test_a_set_with_another_argument_name_or_an_extra_public_helper_is_caught(monkeypatch):
    """The check above can fail: a renamed argument and a public helper are both differences."""
    def conv2d_forward(x, W, b, win, groups=1):
        return None
    monkeypatch.setattr(kernels.vectorized, "conv2d_forward", conv2d_forward, raising=True)
    conv2d_forward.__module__ = kernels.vectorized.__name__
    assert public_functions(kernels.vectorized)["conv2d_forward"] != \
        public_functions(kernels.reference)["conv2d_forward"]

    def pad(x, win):
        return x
    pad.__module__ = kernels.cuda.__name__
    monkeypatch.setattr(kernels.cuda, "pad", pad, raising=False)
    assert "pad" in public_functions(kernels.cuda)


def test_unknown_set_is_named():
    with pytest.raises(ValueError, match=r"unknown kernel set 'fast': expected one of reference, numpy, cuda"):
        with kernels.use("fast"):
            pass


def test_output_sizes_agree_with_the_one_rule():
    x = np.zeros((1, 1, 7, 7))
    for name in available_kernel_sets():
        with kernels.use(name):
            y, _ = pool.max_pool2d_forward(x, 3, 2, 0, ceil_mode=True)
        assert y.shape[2:] == (conv_output_size(7, 3, 2, 0, ceil_mode=True),) * 2


def test_the_benchmark_of_the_fast_sets_choices_runs_and_prints_its_four_tables():
    """benchmarks/kernel_choices.py times what vectorized.py chose by speed (its numbers are in
    kernel_choices.md); here it only has to run, once per case."""
    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "kernel_choices.py"
    result = subprocess.run([sys.executable, str(script), "--repeats", "1"], capture_output=True, text=True,
                            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert [line[:2] for line in result.stdout.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")] == \
        ["1.", "2.", "3.", "4."]
    assert "(route: per image)" in result.stdout and "(route: copy)" in result.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 3])
def test_layout_copies_give_the_same_bits_between_any_two_layouts(dtype, n):
    """The numpy set's layout copy (vectorized._copy_into), whole runs at a time where two
    layouts share their innermost axis (pixels-first (H, W, C, N) into batch-last
    (C, H, W, N)), one number at a time elsewhere: the bits of NumPy's own copy, NaN payloads,
    signed zeros and infinities included, between every pair of layouts."""
    rng = np.random.default_rng(n)
    values = rng.standard_normal((n, 5, 4, 3)).astype(dtype)
    values.reshape(-1)[:4] = [np.nan, -0.0, np.inf, -np.inf]
    values.reshape(-1)[0:1].view(np.uint32 if dtype == np.float32 else np.uint64)[0] |= 1   # a NaN with a payload
    layouts = dict(LAYOUTS, HWCN=lambda a: np.ascontiguousarray(a.transpose(2, 3, 1, 0)).transpose(3, 2, 0, 1))
    for source_layout, make_source in layouts.items():
        for target_layout, make_target in layouts.items():
            source, target = make_source(values), make_target(np.zeros_like(values))
            kernels.vectorized._copy_into(target, source)
            assert target.tobytes() == np.ascontiguousarray(values).tobytes(), (source_layout, target_layout)
