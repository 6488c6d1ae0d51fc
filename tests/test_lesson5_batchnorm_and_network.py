"""Lesson 5's new checkers: batch norm forward and backward (5.4) and a small network
composed by hand and gradient-checked as a whole (5.5) accept the right answers and
reject the usual mistakes, naming them (see course/lesson5_batchnorm_and_network.py)."""
import numpy

from course import check, lesson5
from course import lesson5_batchnorm_and_network as batchnorm_and_network
from course.lesson4 import conv_forward
from minigrad.ops.elementwise import relu_backward, relu_forward
from minigrad.ops.linalg import linear_backward, linear_forward

from exercise_tests import not_yet, standard_tests


# --- 5.4: batch norm written the way a learner would, with switchable mistakes ----------------
def batchnorm_pair(axes="channels", unbiased=False, eps_outside=False, mean_path=True, variance_path=True):
    def forward(x, gamma, beta, eps):
        over = {"channels": (0,) + tuple(range(2, x.ndim)), "per example": tuple(range(1, x.ndim))}.get(axes, axes)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mu = x.mean(axis=over, keepdims=True)
        var = x.var(axis=over, keepdims=True, ddof=1 if unbiased else 0)
        sigma = numpy.sqrt(var) + eps if eps_outside else numpy.sqrt(var + eps)
        xhat = (x - mu) / sigma
        return gamma.reshape(shape) * xhat + beta.reshape(shape), (xhat, gamma.reshape(shape), sigma, over)

    def backward(gy, cache):
        xhat, gamma, sigma, over = cache
        m = gy.size // gamma.size
        g_xhat = gy * gamma
        gx = g_xhat / sigma
        if variance_path:     # d sigma / d x_i = xhat_i / m
            gx -= xhat * (g_xhat * xhat).sum(axis=over, keepdims=True) / (m * sigma)
        if mean_path:         # d mu / d x_i = 1 / m
            gx -= g_xhat.sum(axis=over, keepdims=True) / (m * sigma)
        return gx, (gy * xhat).sum(axis=over), gy.sum(axis=over)
    return forward, backward


# --- 5.5: the network composed by hand, with switchable mistakes -------------------------------
def tiny_net(relu_passed_down=True, pool_cache="pool", loss_mean=True, gradient_mean=True):
    def tiny_net_loss(x, labels, params):
        W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
        a, conv_cache = conv_forward(x, W1, b1, stride=1, padding=W1.shape[2] // 2)
        h, relu_cache = relu_forward(a)
        pooled, cache_of_pool = lesson5.max_pool_forward(h, 2, 2)
        scores, linear_cache = linear_forward(pooled.reshape(len(x), -1), W2, b2)
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_p = shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))
        rows = numpy.arange(len(x))
        loss = -log_p[rows, labels].sum() / (len(x) if loss_mean else 1)
        g_scores = numpy.exp(log_p)
        g_scores[rows, labels] -= 1
        g_scores /= len(x) if gradient_mean else 1
        g_flat, gW2, gb2 = linear_backward(g_scores, linear_cache)
        g_h = lesson5.reference.max_pool2d_backward(
            g_flat.reshape(pooled.shape), cache_of_pool if pool_cache == "pool" else conv_cache)
        (g_a,) = relu_backward(g_h, relu_cache)
        _, gW1, gb1 = batchnorm_and_network.conv_backward(g_a if relu_passed_down else g_h, conv_cache)
        return loss, {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}
    return tiny_net_loss


VECTORS = r"On x \(8, 3\) \(vectors: statistics over axis 0\), eps 1e-05"
IMAGES = r"On x \(4, 3, 3, 3\) \(images: statistics over axes 0, 2, 3\), eps 1e-05"
SMALL_VARIANCE = r"On x \(6, 2, 2, 2\) with channel 1's variance 0.0001, eps 0.01"
BATCH_OF_4 = r"On x \(4, 2, 6, 6\), labels \(4,\), W1 \(3, 2, 3, 3\), b1 \(3,\), W2 \(5, 27\), b2 \(5,\)"

RIGHT = {"5.4": batchnorm_pair(), "5.5": tiny_net()}
WRONG = {
    "5.4": [
        ("the mean's path missing in the backward", batchnorm_pair(mean_path=False),
         VECTORS + r": the gradient of x\[.*Hint: the mean's path is missing"),
        ("the variance's path missing in the backward", batchnorm_pair(variance_path=False),
         VECTORS + r": the gradient of x\[.*Hint: the variance's path is missing"),
        ("both paths missing in the backward", batchnorm_pair(mean_path=False, variance_path=False),
         VECTORS + r": the gradient of x\[.*Hint: both the mean's and the variance's paths are missing"),
        ("the unbiased variance", batchnorm_pair(unbiased=True),
         VECTORS + r": y\[.*Hint: the variance is the BIASED one"),
        ("eps outside the square root", batchnorm_pair(eps_outside=True),
         VECTORS + r": y\[.*Hint: eps goes INSIDE the square root"),
        ("statistics over axis 0 only", batchnorm_pair(axes=(0,)),
         IMAGES + r": y\[.*Hint: the statistics are taken over axis 0 only"),
        ("statistics per example (layer norm)", batchnorm_pair(axes="per example"),
         VECTORS + r": y\[.*Hint: the statistics are taken over each example's own values"),
        ("only the forward passed", batchnorm_pair()[0], r"Pass both functions"),
    ],
    "5.5": [
        ("the ReLU's gradient not passed down", tiny_net(relu_passed_down=False),
         BATCH_OF_4 + r": the gradient of W1\[.*Hint: the ReLU's gradient is not passed down"),
        ("the conv's cache given to the pool's backward", tiny_net(pool_cache="conv"),
         BATCH_OF_4 + r" it raised .*Hint: each backward takes .* ITS OWN cache"),
        ("the loss's 1/N missing", tiny_net(loss_mean=False, gradient_mean=False),
         BATCH_OF_4 + r": the loss\[\] is .*Hint: the loss is the MEAN over the N examples"),
        ("the gradient's 1/N missing", tiny_net(gradient_mean=False),
         BATCH_OF_4 + r": the gradient of W2\[.*Hint: the gradient is N times too large"),
        ("a list of gradients instead of a dict", lambda x, labels, params: (0.0, [0, 0, 0, 0]),
         BATCH_OF_4 + r": grads is a list, expected a dict \{name: gradient\} with the keys W1, b1, W2, b2"),
        ("the loss alone", lambda x, labels, params: 0.0, BATCH_OF_4 + r": tiny_net_loss must return a pair"),
    ],
}

test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(
        RIGHT, WRONG, missing={"5.4": (not_yet, not_yet)})


def test_a_missing_batchnorm_backward_is_not_implemented_yet():
    assert check.verdict("5.4", (batchnorm_pair()[0], not_yet)).status == "not implemented yet"


def test_the_package_pair_is_accepted():
    """minigrad.ops.batchnorm's own pair (the checker's reference) passes its own check."""
    from minigrad.ops.batchnorm import batch_norm_backward, batch_norm_forward
    forward = lambda x, gamma, beta, eps: batch_norm_forward(x, gamma, beta, training=True, eps=eps)
    verdict = check.verdict("5.4", (forward, batch_norm_backward))
    assert verdict.correct, str(verdict)


def test_the_cases_separate_the_mistakes_they_are_for():
    """eps inside or outside the sqrt differ by more than the tolerance in every case, the
    unbiased variance by a visible factor, and axis 0 alone differs only on images."""
    for name, inputs in batchnorm_and_network.batchnorm_cases().items():
        x, _, _, eps = inputs.values()
        right = batchnorm_and_network._normalise(x, eps)
        assert numpy.abs(batchnorm_and_network._normalise(x, eps, eps_outside=True) - right).max() > 1e-7, name
        assert numpy.abs(batchnorm_and_network._normalise(x, eps, unbiased=True) - right).max() > 1e-3, name
        axis_0_differs = numpy.abs(batchnorm_and_network._normalise(x, eps, axes=(0,)) - right).max() > 1e-3
        assert axis_0_differs == (x.ndim == 4), name


def test_the_network_reference_gradients_agree_with_central_differences():
    """The checker's own backward (used for its hints) is right, and the ReLU is off somewhere
    (so that skipping its backward changes the gradient)."""
    from minigrad.gradcheck import numerical_gradient
    for inputs in batchnorm_and_network.tiny_net_cases().values():
        analytic = dict(zip(batchnorm_and_network.TINY_NET_PARAMETERS, batchnorm_and_network.tiny_net_gradients(**inputs)))
        for name in batchnorm_and_network.TINY_NET_PARAMETERS:
            numeric = numerical_gradient(lambda: batchnorm_and_network.tiny_net_loss_reference(**inputs), inputs[name])
            assert numpy.allclose(analytic[name], numeric, rtol=1e-6, atol=1e-9), name
        skipped = batchnorm_and_network.tiny_net_gradients(**inputs, relu_passed_down=False)[2]
        assert not numpy.allclose(skipped, analytic["W1"])


def test_a_network_that_scribbles_on_its_inputs_is_wrong():
    """The learner's function gets read-only copies; writing into them is refused, and an answer
    that changes them anyway is wrong (the course's rule for every exercise)."""
    right = tiny_net()

    def scribbles(x, labels, params):
        result = right(x, labels, params)
        x[...] = 0
        return result
    verdict = check.verdict("5.5", scribbles)
    assert verdict.status == "wrong" and "read-only" in verdict.message

    def forces(x, labels, params):
        result = right(x, labels, params)
        params["W1"].flags.writeable = True
        params["W1"][...] = 0
        return result
    verdict = check.verdict("5.5", forces)
    assert verdict.status == "wrong" and "your function changed its input W1: W1[0, 0, 0, 0] is now 0.0" in verdict.message
