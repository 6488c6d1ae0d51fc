"""Optimizers, schedules and weight averaging against the formulas written out here
(and against torch.optim where PyTorch is installed)."""
import math

import numpy
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.optim import (SGD, Adam, ConstantSchedule, CosineSchedule, PaperSchedule,
                            StepSchedule, WeightAverage, make_schedule)


def make_params(xp=numpy, seed=0):
    """A 2-D weight and a 1-D bias, with fixed gradients for a few steps."""
    rng = numpy.random.default_rng(seed)
    W = mg.Tensor(xp.asarray(rng.standard_normal((3, 4))), requires_grad=True)
    b = mg.Tensor(xp.asarray(rng.standard_normal(3)), requires_grad=True)
    grads = [(rng.standard_normal((3, 4)), rng.standard_normal(3)) for _ in range(4)]
    return W, b, grads


def run_steps(optimizer, params, grads, xp=numpy, lrs=None):
    for step, gs in enumerate(grads):
        if lrs is not None:
            optimizer.lr = lrs[step]
        for p, g in zip(params, gs):
            p.grad = xp.asarray(g)
        optimizer.step()
    return [backend.to_numpy(p.data) for p in params]


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_the_written_out_rule(xp, nesterov):
    W, b, grads = make_params(xp)
    w0, b0 = W.numpy().copy(), b.numpy().copy()
    lr, mu, wd = 0.1, 0.9, 0.01
    got = run_steps(SGD([W, b], lr=lr, momentum=mu, weight_decay=wd, nesterov=nesterov),
                    [W, b], grads, xp)
    expected = []
    for start, index, decay in ((w0, 0, wd), (b0, 1, 0.0)):   # biases are not decayed
        w, v = start.copy(), numpy.zeros_like(start)
        for gs in grads:
            g = gs[index] + decay * w
            v = mu * v + g
            w = w - lr * (g + mu * v if nesterov else v)
        expected.append(w)
    for g, e in zip(got, expected):
        numpy.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_sgd_without_momentum_is_plain_gradient_descent():
    W, b, grads = make_params()
    w0 = W.numpy().copy()
    got, _ = run_steps(SGD([W, b], lr=0.5, momentum=0.0), [W, b], grads[:1])
    numpy.testing.assert_allclose(got, w0 - 0.5 * grads[0][0], rtol=1e-12)


def test_adam_matches_the_written_out_rule(xp):
    W, b, grads = make_params(xp)
    w = W.numpy().copy()
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    (got, _) = run_steps(Adam([W, b], lr=lr, betas=(b1, b2), eps=eps), [W, b], grads, xp)
    m = v = numpy.zeros_like(w)
    for t, gs in enumerate(grads, start=1):
        g = gs[0]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** t)) / (numpy.sqrt(v / (1 - b2 ** t)) + eps)
    numpy.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["sgd", "nesterov", "adam"])
def test_matches_torch_optim(kind):
    torch = pytest.importorskip("torch")
    W, _, grads = make_params()
    tW = torch.tensor(W.numpy().copy(), requires_grad=True)
    if kind == "adam":
        ours, theirs = Adam([W], lr=0.01, weight_decay=0.1), torch.optim.Adam([tW], lr=0.01,
                                                                              weight_decay=0.1)
    else:
        nesterov = kind == "nesterov"
        ours = SGD([W], lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=nesterov)
        theirs = torch.optim.SGD([tW], lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=nesterov)
    lrs = [0.05, 0.05, 0.01, 0.01] if kind != "adam" else None   # a schedule change midway
    (got,) = run_steps(ours, [W], [g[:1] for g in grads], lrs=lrs)
    for step, gs in enumerate(grads):
        if lrs is not None:
            theirs.param_groups[0]["lr"] = lrs[step]
        tW.grad = torch.tensor(gs[0])
        theirs.step()
    numpy.testing.assert_allclose(got, tW.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_sgd_fits_a_linear_regression():
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(numpy.float32)
    true_W = numpy.array([[1.0, -2.0, 0.5]], dtype=numpy.float32)
    y = x @ true_W.T + 0.3
    W = mg.Tensor(numpy.zeros((1, 3), dtype=numpy.float32), requires_grad=True)
    b = mg.Tensor(numpy.zeros(1, dtype=numpy.float32), requires_grad=True)
    optimizer = SGD([W, b], lr=0.1, momentum=0.9)
    for _ in range(300):
        optimizer.zero_grad()
        error = mg.functional.linear(mg.Tensor(x), W, b) - mg.Tensor(y)
        (error * error).mean().backward()
        optimizer.step()
    numpy.testing.assert_allclose(W.numpy(), true_W, atol=1e-3)
    numpy.testing.assert_allclose(b.numpy(), [0.3], atol=1e-3)


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda p: Adam(p, lr=0.1)], ids=["sgd", "adam"])
def test_state_dict_resumes_bit_exactly(make):
    W, b, grads = make_params()
    straight = run_steps(make([W, b]), [W, b], grads)
    W2, b2, _ = make_params()
    first = make([W2, b2])
    run_steps(first, [W2, b2], grads[:2])
    state = first.state_dict()
    assert all(isinstance(v, numpy.ndarray) for v in state.values())
    second = make([W2, b2])
    second.load_state_dict(state)
    resumed = run_steps(second, [W2, b2], grads[2:])
    for s, r in zip(straight, resumed):
        numpy.testing.assert_array_equal(s, r)


def test_bad_settings_and_bad_state_say_what_is_wrong():
    W, b, _ = make_params()
    with pytest.raises(ValueError, match="SGD: need lr > 0"):
        SGD([W], lr=0)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD([W], lr=0.1, momentum=1.5)
    optimizer = SGD([W, b], lr=0.1)
    state = {"steps": numpy.array(1), "lr": numpy.array(0.1), "velocity.0": numpy.zeros((4, 3))}
    with pytest.raises(ValueError, match=r"'velocity.0' has shape \(4, 3\), parameter 0 has shape \(3, 4\)"):
        optimizer.load_state_dict(state)
    with pytest.raises(ValueError, match="unexpected entry 'm.0'"):
        optimizer.load_state_dict({"steps": numpy.array(1), "lr": numpy.array(0.1), "m.0": numpy.zeros(3)})


def test_paper_schedule_drops_four_percent_every_eight_epochs():
    schedule = PaperSchedule(0.01)
    assert schedule(0) == schedule(7.99) == 0.01
    assert schedule(8) == pytest.approx(0.0096)
    assert schedule(16.5) == pytest.approx(0.01 * 0.96 ** 2)


def test_step_cosine_and_constant_schedules():
    step = StepSchedule(1.0, step_size=5, gamma=0.1)
    assert [step(e) for e in (0, 4.9, 5, 10)] == pytest.approx([1, 1, 0.1, 0.01])
    cosine = CosineSchedule(1.0, total_epochs=10, min_lr=0.1)
    assert cosine(0) == pytest.approx(1.0)
    assert cosine(5) == pytest.approx(0.55)
    assert cosine(10) == cosine(12) == pytest.approx(0.1)
    warm = CosineSchedule(1.0, total_epochs=10, warmup_epochs=2)
    assert warm(1) == pytest.approx((1 + CosineSchedule.WARMUP_START) / 2) and warm(2) == pytest.approx(1.0)
    assert ConstantSchedule(0.3)(99) == 0.3
    assert isinstance(make_schedule("paper", 0.1, 10), PaperSchedule)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        make_schedule("linear", 0.1, 10)


def test_polyak_average_is_the_mean_of_the_iterates():
    W = mg.Tensor(numpy.zeros(3), requires_grad=True)
    average = WeightAverage([W])
    iterates = [numpy.array([1.0, 2.0, 3.0]), numpy.array([3.0, 0.0, 1.0]), numpy.array([2.0, 1.0, 5.0])]
    for value in iterates:
        W.data = value.copy()
        average.update()
    with average.swapped_in():
        numpy.testing.assert_allclose(W.numpy(), numpy.mean(iterates, axis=0), rtol=1e-12)
    numpy.testing.assert_array_equal(W.numpy(), iterates[-1])   # restored afterwards


def test_exponential_average_warms_up_then_uses_the_decay():
    W = mg.Tensor(numpy.zeros(1), requires_grad=True)
    average = WeightAverage([W], decay=0.5)
    W.data = numpy.ones(1)
    average.update()                       # d = min(0.5, 2/11): weight 9/11 on the new value
    numpy.testing.assert_allclose(average.averages[0], [9 / 11])
    for _ in range(20):
        average.update()
    # 1 - avg_n = d_n (1 - avg_(n-1)), starting from 1 - avg_0 = 1
    remaining = math.prod(min(0.5, (1 + n) / (10 + n)) for n in range(1, 22))
    numpy.testing.assert_allclose(average.averages[0], [1 - remaining], rtol=1e-12)
    state = average.state_dict()
    again = WeightAverage([W], decay=0.5)
    again.load_state_dict(state)
    assert again.updates == 21
    numpy.testing.assert_array_equal(again.averages[0], average.averages[0])
