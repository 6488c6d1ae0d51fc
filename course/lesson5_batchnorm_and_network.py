"""Lesson 5's exercises 5.4 (batch norm forward and backward) and 5.5 (a small network
composed by hand and gradient-checked as a whole)."""
import numpy

from minigrad.geometry import window
from minigrad.kernels import reference
from minigrad.ops import batchnorm as batchnorm_ops
from minigrad.ops.loss import cross_entropy_forward
from .cases import Refused, as_tuple, backward_cases, cases_text, forward_cases, join, run_learners_code
from .check import registers
from .guard import hand_over
from .lesson5 import both_correct
from .verdicts import CORRECT, WRONG, as_real_array, dtype_problem, same_values

MISTAKE_TOLERANCE = 1e-6     # a usual mistake's result, recognised up to rounding and central differences


# --- 5.4 batch norm, training mode --------------------------------------------------------------
def _channel_axes(x):
    """The axes batch norm averages over: every axis but the channels' (axis 1)."""
    return (0,) + tuple(range(2, x.ndim))


def _normalise(x, eps, axes=None, unbiased=False, eps_outside=False):
    """xhat = (x - mean) / sqrt(var + eps) over ``axes`` (the channel axes by default), or one
    of the usual mistakes: the unbiased variance, sqrt(var) + eps."""
    axes = _channel_axes(x) if axes is None else axes
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True, ddof=1 if unbiased else 0)
    return (x - mean) / (numpy.sqrt(var) + eps if eps_outside else numpy.sqrt(var + eps))


def _per_channel(values, x):
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))


def batchnorm_reference(x, gamma, beta, eps):
    """y of ``minigrad.ops.batchnorm.batch_norm_forward`` in training mode."""
    return batchnorm_ops.batch_norm_forward(x, gamma, beta, training=True, eps=eps)[0]


def batchnorm_cases(seed=54):
    """Named inputs (x, gamma, beta, eps): vectors (N, C), images (N, C, H, W), and a channel
    whose variance is small next to a large eps (where eps outside the sqrt shows most)."""
    rng = numpy.random.default_rng(seed)

    def inputs(shape, scales, eps):
        per_channel = (1, -1) + (1,) * (len(shape) - 2)
        x = rng.uniform(-2, 2, shape[1]).reshape(per_channel) + \
            numpy.reshape(scales, per_channel) * rng.standard_normal(shape)
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, shape[1]), "beta": rng.standard_normal(shape[1]), "eps": eps}
    return {
        "x (8, 3) (vectors: statistics over axis 0), eps 1e-05": inputs((8, 3), (1.0, 3.0, 0.5), 1e-5),
        "x (4, 3, 3, 3) (images: statistics over axes 0, 2, 3), eps 1e-05": inputs((4, 3, 3, 3), (1.0, 2.0, 0.7), 1e-5),
        "x (6, 2, 2, 2) with channel 1's variance 0.0001, eps 0.01": inputs((6, 2, 2, 2), (1.0, 0.01), 1e-2),
    }


def _batchnorm_forward_hints(cases):
    def hints(case, name, got, expected):
        x, gamma, beta, eps = cases[case].values()
        affine = lambda xhat: xhat * _per_channel(gamma, x) + _per_channel(beta, x)
        alternatives = [
            (affine(_normalise(x, eps, unbiased=True)),
             "the variance is the BIASED one, divided by m = N*H*W (numpy's default ddof=0), not by "
             "m - 1: batch norm normalises the batch by its own statistics (the unbiased m/(m-1) is "
             "for the running variance only)."),
            (affine(_normalise(x, eps, eps_outside=True)),
             "eps goes INSIDE the square root: sigma = sqrt(var + eps), not sqrt(var) + eps."),
            (affine(_normalise(x, 0.0)), "eps is missing: sigma = sqrt(var + eps)."),
            (x * _per_channel(gamma, x) + _per_channel(beta, x), "x is not normalised: xhat = (x - mean) / sigma."),
            (_normalise(x, eps), "gamma and beta are missing: y = gamma * xhat + beta, per channel."),
        ]
        wrong_axes = [(tuple(range(1, x.ndim)), "each example's own values (that is layer norm)"),
                      (tuple(range(x.ndim)), "all the values at once")]
        if x.ndim == 4:
            wrong_axes.insert(0, ((0,), "axis 0 only (a mean per channel AND pixel)"))
        for axes, what in wrong_axes:
            alternatives.append((affine(_normalise(x, eps, axes=axes)),
                                 f"the statistics are taken over {what}: batch norm takes one mean and "
                                 f"one variance per channel, over the axes (0, 2, 3): the batch and the "
                                 f"pixels (axis 0 for vectors)."))
        for alternative, text in alternatives:
            if same_values(got, alternative, MISTAKE_TOLERANCE):
                return "Hint: " + text
        return ("Hint: per channel c, over the axes (0, 2, 3) (axis 0 for vectors): mean, biased variance, "
                "xhat = (x - mean) / sqrt(var + eps), y = gamma[c] * xhat + beta[c].")
    return hints


def _batchnorm_gx_hint(x, eps, got, expected):
    """Which of the mean's and the variance's paths a gx lacks. The true gx minus a gx that
    treats the mean (the variance) as a constant is, per channel, a constant (a multiple of
    xhat): fit got - expected = a_c + b_c xhat per channel and see which part is there."""
    xhat, axes = _normalise(x, eps), _channel_axes(x)
    difference = got - expected
    constant = difference.mean(axis=axes, keepdims=True)                     # xhat has mean 0
    slope = (difference * xhat).mean(axis=axes, keepdims=True) / (xhat ** 2).mean(axis=axes, keepdims=True)
    size = numpy.linalg.norm(difference)
    if numpy.linalg.norm(difference - constant - slope * xhat) > 1e-6 * size:
        return ("Hint: gx = gamma / (m sigma) * (m gy - sum gy - xhat * sum(gy xhat)), the sums per channel "
                "over the axes (0, 2, 3), m = N*H*W values per channel.")
    mean_missing = numpy.linalg.norm(constant) * numpy.sqrt(got.size) > 1e-6 * size
    variance_missing = numpy.linalg.norm(slope * xhat) > 1e-6 * size
    paths = {(True, True): "both the mean's and the variance's paths are missing: gx = gamma gy / sigma "
                           "treats mu and sigma as constants, but both depend on every x of the channel.",
             (True, False): "the mean's path is missing: mu depends on every x of the channel "
                            "(d mu / d x_i = 1/m); it subtracts the channel's mean of gamma gy / sigma "
                            "from every gx_i.",
             (False, True): "the variance's path is missing: sigma depends on every x of the channel "
                            "(d sigma / d x_i = xhat_i / m); it subtracts xhat_i times the channel's "
                            "mean of gamma gy xhat / sigma from gx_i."}
    return "Hint: " + paths.get((mean_missing, variance_missing), "") + \
        " In all: gx = gamma / (m sigma) * (m gy - sum gy - xhat * sum(gy xhat))."


def _batchnorm_backward_hints(cases):
    def hints(case, name, got, expected):
        x, _, _, eps = cases[case].values()
        if name == "x" and got.shape == expected.shape:
            return _batchnorm_gx_hint(x, eps, got, expected)
        return {"x": "gx has x's shape.",
                "gamma": "g_gamma[c] = the sum of gy * xhat (the NORMALISED x) over the axes (0, 2, 3).",
                "beta": "g_beta[c] = the sum of gy over the axes (0, 2, 3): beta is added to every value "
                        "of its channel."}.get(name, "")
    return hints


def _pair_of_functions(pair, call):
    if callable(pair) or len(as_tuple(pair)) != 2:
        return f"Pass both functions: {call}."
    return None


@registers("5.4", "batch norm forward and backward",
           rule="per channel c, over the axes (0, 2, 3) (axis 0 for vectors): the mean, the biased variance, "
                "xhat = (x - mean) / sqrt(var + eps), y = gamma[c] * xhat + beta[c]. Backward, with m values "
                "per channel and the sums over those axes: gx = gamma / (m sigma) * (m gy - sum gy - xhat * "
                "sum(gy xhat)), g_gamma = sum(gy xhat), g_beta = sum(gy).")
def check_batchnorm(pair):
    problem = _pair_of_functions(pair, 'check.exercise("5.4", (batchnorm_forward, batchnorm_backward))')
    if problem:
        return WRONG, problem
    forward, backward = pair
    cases = batchnorm_cases()

    def output_of(x, gamma, beta, eps):           # read-only copies, checked afterwards (forward_cases)
        result = forward(x, gamma, beta, eps)
        if not isinstance(result, (tuple, list)) or len(result) != 2:      # the engine unpacks either
            raise TypeError(f"batchnorm_forward must return a pair (y, cache), got {type(result).__name__}")
        return result[0]

    def with_learners_cache(eps):
        """y from the package (what the central differences see), the cache from the learner."""
        def both(x, gamma, beta):
            return batchnorm_reference(x, gamma, beta, eps), forward(x.copy(), gamma.copy(), beta.copy(), eps)[1]
        return both

    gradient_inputs = {case: {k: v for k, v in inputs.items() if k != "eps"} for case, inputs in cases.items()}
    forwards = {case: with_learners_cache(inputs["eps"]) for case, inputs in cases.items()}
    return both_correct(
        lambda: forward_cases(output_of, batchnorm_reference, cases, output_names=("y",),
                              hints=_batchnorm_forward_hints(cases)),
        lambda: backward_cases(forwards, backward, gradient_inputs, hints=_batchnorm_backward_hints(cases)),
        lambda text: "Its backward " + text[0].lower() + text[1:])


# --- 5.5 a small network: conv - ReLU - max pool - linear - softmax cross-entropy -----------------
TINY_NET_PARAMETERS = ("W2", "b2", "W1", "b1")     # checked from the top layer down


def conv_backward(gy, cache):
    """Exercise 4.3's answer, for the cache of ``course.lesson4.conv_forward``
    ((cols, W, x_shape, win)): (gx, gW, gb) by the reference kernel set."""
    cols, W, x_shape, win = cache
    return reference.conv2d_backward(gy, reference.Conv2dCache(x_shape, W, cols, win, 1, has_bias=True))


def tiny_net_windows(x, W1):
    """The network's two windows: a size-preserving convolution (stride 1, padding K//2) and
    2x2 max pooling with stride 2."""
    conv = window(x.shape[2:], W1.shape[2:], 1, W1.shape[2] // 2)
    return conv, window(conv.out, 2, 2, 0)


def tiny_net_loss_reference(x, labels, W1, b1, W2, b2):
    """The mean cross-entropy of conv - ReLU - 2x2 max pool - linear on (x, labels)."""
    conv_window, pool_window = tiny_net_windows(x, W1)
    h = numpy.maximum(reference.conv2d_forward(x, W1, b1, conv_window)[0], 0)
    pooled, _ = reference.max_pool2d_forward(h, pool_window)
    scores = pooled.reshape(len(x), -1) @ W2.T + b2
    return float(cross_entropy_forward(scores, labels)[0])


def tiny_net_gradients(x, labels, W1, b1, W2, b2, relu_passed_down=True):
    """(gW2, gb2, gW1, gb1) by the reference pairs; ``relu_passed_down=False`` skips the ReLU's
    backward (the usual mistake that this names)."""
    conv_window, pool_window = tiny_net_windows(x, W1)
    a, conv_cache = reference.conv2d_forward(x, W1, b1, conv_window)
    h = numpy.maximum(a, 0)
    pooled, pool_cache = reference.max_pool2d_forward(h, pool_window)
    flat = pooled.reshape(len(x), -1)
    scores = flat @ W2.T + b2
    p = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[numpy.arange(len(x)), labels] -= 1
    g_scores = p / len(x)
    g_pooled = (g_scores @ W2).reshape(pooled.shape)
    g_h = reference.max_pool2d_backward(g_pooled, pool_cache)
    g_a = g_h * (a > 0) if relu_passed_down else g_h
    _, gW1, gb1 = reference.conv2d_backward(g_a, conv_cache)
    return g_scores.T @ flat, g_scores.sum(axis=0), gW1, gb1


def tiny_net_cases(seed=55):
    """{case: {"x", "labels", "W1", "b1", "W2", "b2"}}: a batch of 4 (where a missing 1/N shows)
    and a batch of 3 whose 5x5 maps pool to 2x2 (the last row and column are not pooled)."""
    rng = numpy.random.default_rng(seed)
    cases = {}
    for x_shape, filters, classes in [((4, 2, 6, 6), 3, 5), ((3, 1, 5, 5), 2, 3)]:
        n, c, h, w = x_shape
        features = filters * (h // 2) * (w // 2)
        name = (f"x {x_shape}, labels ({n},), W1 ({filters}, {c}, 3, 3), b1 ({filters},), "
                f"W2 ({classes}, {features}), b2 ({classes},)")
        cases[name] = {"x": rng.standard_normal(x_shape), "labels": rng.integers(0, classes, n),
                       "W1": 0.5 * rng.standard_normal((filters, c, 3, 3)), "b1": 0.1 * rng.standard_normal(filters),
                       "W2": 0.5 * rng.standard_normal((classes, features)), "b2": 0.1 * rng.standard_normal(classes)}
    return cases


CACHE_HINT = ("Hint: each backward takes the gradient of ITS layer's output and ITS OWN cache, the one its "
              "forward returned (conv_cache for conv_backward, pool_cache for max_pool_backward, ...): "
              "keep every cache in its own variable on the way up and use them in reverse order.")


def _tiny_net_loss_hint(cases):
    def hints(case, name, got, expected):
        n = len(cases[case]["x"])
        if numpy.isclose(float(got), n * float(expected), rtol=1e-9):
            return ("Hint: the loss is the MEAN over the N examples of -log softmax(scores)[n, labels[n]]: "
                    "a sum is N times too large.")
        return ("Hint: scores = linear(flattened max pool of relu(conv(x))); loss = the mean over the batch "
                "of -log softmax(scores)[n, labels[n]] (log-sum-exp: subtract each row's max).")
    return hints


def _tiny_net_gradient_hints(cases):
    def hints(case, name, got, expected):
        inputs = cases[case]
        n = len(inputs["x"])
        order = TINY_NET_PARAMETERS.index(name)
        right = tiny_net_gradients(**inputs)
        scale = float(numpy.sum(expected * right[order]) / numpy.sum(right[order] ** 2))   # the upstream gy
        if same_values(got, n * expected, MISTAKE_TOLERANCE):
            return ("Hint: the gradient is N times too large: the loss is a mean, so the gradient of the "
                    "scores is (softmax(scores) - onehot(labels)) / N.")
        if name in ("W1", "b1"):
            skipped = scale * tiny_net_gradients(**inputs, relu_passed_down=False)[order]
            if same_values(got, skipped, MISTAKE_TOLERANCE):
                return ("Hint: the ReLU's gradient is not passed down: conv_backward must get what "
                        "relu_backward returns (the pool's gradient with the ReLU's cache, zero where the "
                        "ReLU was off), not the pool's gradient itself.")
            return ("Hint: W2 and b2 are right, so the error is below the linear layer: pass each layer's "
                    "gradient down (linear -> reshape to the pool's output shape -> max pool -> ReLU -> "
                    "conv), each backward with its own cache.")
        return ("Hint: gW2 = g_scores^T @ flat and gb2 = g_scores summed over the batch, with g_scores = "
                "(softmax(scores) - onehot(labels)) / N and flat the flattened pool output.")
    return hints


def _arguments(inputs):
    """(x, labels, params) for the learner, from the arrays the checker hands over (read-only
    copies, compared with the checker's own after the call: an answer that changes them is wrong)."""
    params = {name: inputs[name] for name in ("W1", "b1", "W2", "b2")}
    return inputs["x"], inputs["labels"], params


def _tiny_net_structure(result):
    """None when ``result`` is (loss, {name: gradient}) with every parameter's name, else what is wrong."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return f"tiny_net_loss must return a pair (loss, grads), got {type(result).__name__}"
    if not hasattr(result[1], "keys"):
        return (f"grads is a {type(result[1]).__name__}, expected a dict {{name: gradient}} with the keys "
                f"W1, b1, W2, b2")
    missing = [name for name in TINY_NET_PARAMETERS if name not in result[1]]
    if missing:
        return f"grads has keys {sorted(result[1])}, expected W1, b1, W2, b2 (missing {', '.join(sorted(missing))})"
    return None


@registers("5.5", "a small network composed and gradient-checked",
           rule="scores = linear(flattened max pool of relu(conv(x))), loss = the mean over the batch of "
                "-log softmax(scores)[n, labels[n]]. Backward from the top: g_scores = (softmax(scores) - "
                "onehot(labels)) / N, then linear, reshape, max pool, ReLU and conv, each backward with its "
                "own cache.")
def check_tiny_net(tiny_net_loss):
    cases = tiny_net_cases()

    def call(x, labels, W1, b1, W2, b2):
        result = tiny_net_loss(*_arguments(dict(x=x, labels=labels, W1=W1, b1=b1, W2=W2, b2=b2)))
        problem = _tiny_net_structure(result)
        if problem:
            raise TypeError(problem)
        return result

    def forward_of(x, labels):
        """The package's loss as a function of the parameters (what the central differences see);
        the cache holds what the learner's function is called with."""
        def forward(W2, b2, W1, b1):
            return numpy.asarray(tiny_net_loss_reference(x, labels, W1, b1, W2, b2)), (x, labels, W1, b1, W2, b2)
        return forward

    def gradients_times_gy(gy, cache):         # the loss is a scalar, so gy is one number
        _, grads = call(*cache)
        gradients = []
        for name in TINY_NET_PARAMETERS:       # real float64 arrays, before gy multiplies them
            array, problem = as_real_array(f"grads[{name!r}]", grads[name])
            problem = problem or dtype_problem(f"grads[{name!r}]", array, numpy.zeros(0))
            if problem:
                raise Refused(problem)
            gradients.append(gy * array)
        return tuple(gradients)

    first_case, first_inputs = next(iter(cases.items()))
    result, failure = run_learners_code(lambda: tiny_net_loss(*_arguments(hand_over(first_inputs))), first_case)
    if failure:
        return WRONG, join(failure, CACHE_HINT)
    problem = _tiny_net_structure(result)
    if problem:
        return WRONG, f"On {first_case}: {problem}"
    status, message = forward_cases(lambda *inputs: numpy.asarray(call(*inputs)[0]), tiny_net_loss_reference,
                                    cases, output_names=("the loss",), hints=_tiny_net_loss_hint(cases))
    if status == CORRECT:
        forwards = {case: forward_of(inputs["x"], inputs["labels"]) for case, inputs in cases.items()}
        parameters = {case: {name: inputs[name] for name in TINY_NET_PARAMETERS} for case, inputs in cases.items()}
        status, message = backward_cases(forwards, gradients_times_gy, parameters,
                                         hints=_tiny_net_gradient_hints(cases))
        if status == CORRECT:
            message = (f"The loss matches the package's on {cases_text(len(cases))}, and the gradients of the "
                       f"whole network's loss agree with central differences: {message.split('; ', 1)[1]}")
    return status, join(message, CACHE_HINT if status == WRONG and " it raised " in message else "")
