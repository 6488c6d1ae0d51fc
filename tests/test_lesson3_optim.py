"""Lesson 3's optimizer exercises (3.4 SGD with momentum and weight decay, 3.5 Adam): the right
steps are accepted, a missing one is "not implemented yet", each usual mistake is rejected and
named; the checker's reference (minigrad.optim) agrees with PyTorch's optimizers on the
checker's own cases (see course/lesson3_optim.py)."""
import numpy
import pytest

from course import lesson3_optim

from exercise_tests import standard_tests


def sgd(p, g, velocity, lr, momentum, weight_decay):
    g = g + weight_decay * p
    velocity = momentum * velocity + g
    return p - lr * velocity, velocity


def adam(p, g, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g ** 2
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return p - lr * m_hat / (numpy.sqrt(v_hat) + eps), m, v


def sgd_in_place(p, g, velocity, lr, momentum, weight_decay):
    velocity *= momentum
    velocity += g + weight_decay * p
    p -= lr * velocity
    return p, velocity


FIRST_SGD = r"On W \(3, 4\), lr 0.1, momentum 0.9, weight decay 0.01, 5 steps"
FIRST_ADAM = r"On W \(3, 4\), lr 0.01, betas \(0.9, 0.999\), eps 1e-8, 6 steps"

RIGHT = {"3.4": sgd, "3.5": adam}
WRONG = {
    "3.4": [("weight decay added after the momentum",
             lambda p, g, v, lr, mu, wd: (p - lr * (mu * v + g + wd * p), mu * v + g),
             FIRST_SGD + r", after step 1: velocity\[.*Your step: the weight decay is added after the momentum"),
            ("momentum applied to the step (Caffe's velocity)",
             lambda p, g, v, lr, mu, wd: (p - (mu * v + lr * (g + wd * p)), mu * v + lr * (g + wd * p)),
             FIRST_SGD + r", after step 1: velocity\[.*Your step: the momentum is applied to the step, not "
                         r"the gradient"),
            ("no weight decay", lambda p, g, v, lr, mu, wd: sgd(p, g, v, lr, mu, 0.0),
             FIRST_SGD + r", after step 1: p\[.*Your step: the weight decay is missing"),
            ("weight decay subtracted", lambda p, g, v, lr, mu, wd: sgd(p, g, v, lr, mu, -wd),
             FIRST_SGD + r", after step 1: p\[.*Your step: the weight decay has the wrong sign"),
            ("no momentum", lambda p, g, v, lr, mu, wd: sgd(p, g, v, lr, 0.0, wd),
             FIRST_SGD + r", after step 2: p\[.*Your step: the momentum is missing"),
            ("changes p in place", sgd_in_place,
             FIRST_SGD + r": at step 1 your step changed its input p in place"),
            ("returns p alone", lambda *args: sgd(*args)[0],
             FIRST_SGD + r": at step 1 it returned 1 value, expected 2 \(p, velocity\)"),
            ("float32 velocity", lambda *args: (sgd(*args)[0], sgd(*args)[1].astype(numpy.float32)),
             FIRST_SGD + r": at step 1 velocity has shape \(3, 4\) and dtype float32, expected p's"),
            ("the learning rate squared", lambda p, g, v, lr, mu, wd: sgd(p, g, v, lr * lr, mu, wd),
             FIRST_SGD + r", after step 1: p\[.*Hint: g = grad \+ wd \* p; v = momentum \* v \+ g")],
    "3.5": [("no bias correction",
             lambda p, g, m, v, t, lr, b1, b2, eps: adam(p, g, m, v, t, lr, b1, b2, eps) if False else
             lesson3_optim.ADAM_MISTAKES[next(k for k in lesson3_optim.ADAM_MISTAKES if k.startswith("there is no bias"))](
                 p, g, m, v, t, lr, b1, b2, eps),
             FIRST_ADAM + r", after step 1: p\[.*Your step: there is no bias correction"),
            ("eps inside the square root",
             lambda p, g, m, v, t, lr, b1, b2, eps: (
                 p - lr * ((b1 * m + (1 - b1) * g) / (1 - b1 ** t))
                 / numpy.sqrt((b2 * v + (1 - b2) * g * g) / (1 - b2 ** t) + eps),
                 b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g),
             FIRST_ADAM + r", after step 1: p\[.*Your step: eps is inside the square root"),
            ("bias correction without the power t",
             lambda p, g, m, v, t, lr, b1, b2, eps: adam(p, g, m, v, 1, lr, b1, b2, eps),
             FIRST_ADAM + r", after step 2: p\[.*Your step: the bias correction lacks the power t"),
            ("no square root",
             lambda p, g, m, v, t, lr, b1, b2, eps: (
                 p - lr * ((b1 * m + (1 - b1) * g) / (1 - b1 ** t)) / ((b2 * v + (1 - b2) * g * g) / (1 - b2 ** t) + eps),
                 b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g),
             FIRST_ADAM + r", after step 1: p\[.*Your step: the square root is missing"),
            ("m and v swapped on return", lambda *args: (adam(*args)[0], adam(*args)[2], adam(*args)[1]),
             FIRST_ADAM + r", after step 1: m\["),
            ("beta1 and beta2 swapped", lambda p, g, m, v, t, lr, b1, b2, eps: adam(p, g, m, v, t, lr, b2, b1, eps),
             FIRST_ADAM + r", after step 1: m\[.*Hint: m = b1 m"),
            ("gradient of NaN", lambda *args: (adam(*args)[0] * numpy.nan, *adam(*args)[1:]),
             FIRST_ADAM + r", after step 1: p\[0, 0\] is \+nan")],
}

test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_the_cases_include_a_change_of_learning_rate_and_small_gradients():
    """Caffe's velocity agrees with PyTorch's while lr is constant (so only a change of lr
    tells their parameters apart), and eps inside the root matters only where v_hat is small."""
    assert any(len(set(case["lrs"])) > 1 for case in lesson3_optim.sgd_cases().values())
    assert any(numpy.abs(case["grads"][0]).max() < 1e-3 for case in lesson3_optim.adam_cases().values())


def right_trajectory(step, kind, case):
    trajectory = lesson3_optim._trajectory(step, kind, case)
    assert len(trajectory) == len(case["grads"])
    return trajectory


def test_minigrads_optimizers_agree_with_pytorchs_on_the_checkers_cases():
    torch = pytest.importorskip("torch")
    for case in lesson3_optim.sgd_cases().values():
        param = torch.tensor(case["p"].copy(), requires_grad=True)
        opt = torch.optim.SGD([param], lr=case["lrs"][0], momentum=case["momentum"],
                              weight_decay=case["weight_decay"])
        ours = right_trajectory(sgd, lesson3_optim.SGD_STEP, case)
        for g, lr, (p, velocity) in zip(case["grads"], case["lrs"], ours):
            param.grad = torch.tensor(g)
            opt.param_groups[0]["lr"] = lr
            opt.step()
            numpy.testing.assert_allclose(param.detach().numpy(), p, rtol=1e-12, atol=1e-14)
            numpy.testing.assert_allclose(opt.state[param]["momentum_buffer"].numpy(), velocity, rtol=1e-12)
    for case in lesson3_optim.adam_cases().values():
        param = torch.tensor(case["p"].copy(), requires_grad=True)
        opt = torch.optim.Adam([param], lr=case["lrs"][0], betas=(case["beta1"], case["beta2"]), eps=case["eps"])
        ours = right_trajectory(adam, lesson3_optim.ADAM_STEP, case)
        for g, (p, m, v) in zip(case["grads"], ours):
            param.grad = torch.tensor(g)
            opt.step()
            numpy.testing.assert_allclose(param.detach().numpy(), p, rtol=1e-12, atol=1e-14)
            numpy.testing.assert_allclose(opt.state[param]["exp_avg"].numpy(), m, rtol=1e-12)
            numpy.testing.assert_allclose(opt.state[param]["exp_avg_sq"].numpy(), v, rtol=1e-12)


def test_every_named_mistake_differs_from_the_right_step():
    """A planted mistake that coincided with the right answer on every case could not be named."""
    for mistakes, kind, right, cases in (
            (lesson3_optim.SGD_MISTAKES, lesson3_optim.SGD_STEP, sgd, lesson3_optim.sgd_cases()),
            (lesson3_optim.ADAM_MISTAKES, lesson3_optim.ADAM_STEP, adam, lesson3_optim.adam_cases())):
        for mistake, variant in mistakes.items():
            assert not all(lesson3_optim._same_trajectory(right_trajectory(variant, kind, case),
                                                          right_trajectory(right, kind, case), len(case["grads"]))
                           for case in cases.values()), mistake
