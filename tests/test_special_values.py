"""Special values (+-inf, NaN, huge and tiny numbers) through the ops, with PyTorch's
answers written out (checked against PyTorch 2.13 when it is installed)."""
import numpy as np
import pytest

from minigrad import kernels

from conftest import available_kernel_sets
from minigrad.ops import elementwise, pool

INF, NAN = np.inf, np.nan


def test_relu_of_minus_infinity_is_zero_with_zero_gradient():
    x = np.array([-INF, -1.0, 0.0, 2.0, INF, NAN])
    y, cache = elementwise.relu_forward(x)
    (g,) = elementwise.relu_backward(np.full(6, 3.0), cache)
    np.testing.assert_array_equal(y, [0, 0, 0, 2, INF, NAN])
    np.testing.assert_array_equal(g, [0, 0, 0, 3, 3, 3])            # NaN passes it on, as in PyTorch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_its_relative_precision_for_negative_inputs(dtype):
    x = np.linspace(-80, 80, 321).astype(dtype)
    y, cache = elementwise.sigmoid_forward(x)
    (g,) = elementwise.sigmoid_backward(np.ones_like(x), cache)
    # exact values in float64 from the textbook forms, which are exact enough at these points
    x64 = x.astype(np.float64)
    exact = np.where(x64 >= 0, 1 / (1 + np.exp(-x64)), np.exp(x64) / (1 + np.exp(x64)))
    exact_grad = np.exp(-np.abs(x64)) / (1 + np.exp(-np.abs(x64))) ** 2
    eps = np.finfo(dtype).eps
    assert y.dtype == g.dtype == dtype
    assert np.max(np.abs(y - exact) / exact) < 4 * eps
    assert np.max(np.abs(g - exact_grad) / exact_grad) < 8 * eps
    assert y[0] > 0 and g[0] > 0                                     # sigmoid(-80) = 1.8e-35, not 0


def test_sigmoid_at_infinity_and_nan():
    y, cache = elementwise.sigmoid_forward(np.array([-INF, INF, NAN]))
    (g,) = elementwise.sigmoid_backward(np.ones(3), cache)
    np.testing.assert_array_equal(y, [0, 1, NAN])
    np.testing.assert_array_equal(g, [0, 0, NAN])


def max_pool(x, **params):
    """(y, gx) on each kernel set for an upstream gradient of ones."""
    results = {}
    for name in available_kernel_sets():
        with kernels.use(name):
            y, cache = pool.max_pool2d_forward(x, **params)
        (gx,) = pool.max_pool2d_backward(np.ones(y.shape), cache)
        results[name] = (np.asarray(y), np.asarray(gx))
    return results


def test_max_pool_window_of_minus_infinity_starting_in_the_padding():
    # window 0 covers (padding, -inf): PyTorch gives its gradient to the first real element
    x = np.full((1, 1, 1, 3), -INF)
    for name, (y, gx) in max_pool(x, kernel_size=(1, 3), stride=1, padding=(0, 1)).items():
        np.testing.assert_array_equal(y, np.full((1, 1, 1, 3), -INF), err_msg=name)
        np.testing.assert_array_equal(gx, [[[[2, 1, 0]]]], err_msg=name)


def test_max_pool_sends_the_gradient_to_the_last_nan_of_a_window():
    x = np.array([[[[1.0, NAN, 2.0, NAN, 0.5]]]])
    for name, (y, gx) in max_pool(x, kernel_size=(1, 4), stride=1).items():
        np.testing.assert_array_equal(y, [[[[NAN, NAN]]]], err_msg=name)
        np.testing.assert_array_equal(gx, [[[[0, 0, 0, 2, 0]]]], err_msg=name)


def test_special_values_match_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[[[-INF, NAN, 1.0, -INF], [3.0, NAN, -INF, -INF], [-INF, -INF, 2.0, 0.0]]]])
    for params in (dict(kernel_size=2, stride=1, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True),
                   dict(kernel_size=(1, 3), stride=1, padding=(0, 1))):
        t = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.max_pool2d(t, **params)
        ty.backward(torch.ones_like(ty))
        for name, (y, gx) in max_pool(x, **params).items():
            np.testing.assert_array_equal(y, ty.detach().numpy(), err_msg=f"{name} {params}")
            np.testing.assert_array_equal(gx, t.grad.numpy(), err_msg=f"{name} {params}")
    values = np.array([-INF, -100.0, -20.0, -1e-30, 0.0, 5.0, INF, NAN])
    for name, ours in (("relu", elementwise.relu_forward), ("sigmoid", elementwise.sigmoid_forward)):
        t = torch.tensor(values, requires_grad=True)
        ty = getattr(torch, name)(t)
        ty.backward(torch.ones_like(ty))
        y, cache = ours(values)
        (g,) = getattr(elementwise, f"{name}_backward")(np.ones_like(values), cache)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-15, atol=0, err_msg=name)
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=1e-300, err_msg=name)
