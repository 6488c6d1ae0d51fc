"""Lesson 5's checkers accept the right max-pool backward, LRN backward and dropout, and reject
the usual mistakes, naming the input that is wrong (see course/lesson5.py)."""

import numpy

from minigrad.kernels import reference
from course import check
from minigrad.ops import dropout as dropout_ops

from exercise_tests import not_yet, standard_tests


# --- 5.1: a max-pool backward written the way a learner would, with switchable mistakes --------
def max_pool_backward(gy, cache, winner="first", accumulate=True, ignore_padding=False):
    x, win = cache
    (kh, kw), (sh, sw), (ph, pw), (h, w) = win.kernel, win.stride, win.padding, win.size
    gx = numpy.zeros(x.shape)
    for i in range(win.out[0]):
        for j in range(win.out[1]):
            top, left = (i * sh, j * sw) if ignore_padding else (i * sh - ph, j * sw - pw)
            rows = slice(max(top, 0), min(top + kh, h))
            columns = slice(max(left, 0), min(left + kw, w))
            patch = x[:, :, rows, columns]
            flat = patch.reshape(patch.shape[:2] + (-1,))
            if winner == "every tied element":
                chosen = flat == flat.max(axis=2, keepdims=True)
            else:
                index = flat.argmax(axis=2) if winner == "first" else \
                    flat.shape[2] - 1 - flat[:, :, ::-1].argmax(axis=2)
                chosen = numpy.arange(flat.shape[2]) == index[:, :, None]
            routed = (chosen * gy[:, :, i, j, None]).reshape(patch.shape)
            if accumulate:
                gx[:, :, rows, columns] += routed
            else:                                             # overwrites a shared winner
                gx[:, :, rows, columns] = numpy.where(routed != 0, routed, gx[:, :, rows, columns])
    return (gx,)


# --- 5.2: an LRN backward per input channel j, with switchable mistakes ------------------------
def lrn_backward(gy, cache, window="mirrored", cross_term=True, alpha_over_n=True):
    x, s, n, alpha, beta = cache
    channels = x.shape[1]
    gx = gy * s ** -beta
    if not cross_term:
        return (gx,)
    pulled = gy * x * s ** (-beta - 1)
    scale = 2 * alpha * beta / (n if alpha_over_n else 1)
    for j in range(channels):
        if window == "mirrored":          # the c whose window holds j
            lo, hi = j - (n - 1) // 2, j + n // 2
        elif window == "not mirrored":    # window(j) itself: right for odd n only
            lo, hi = j - n // 2, j + (n - 1) // 2
        else:                             # "one too many": an off-by-one on the upper end
            lo, hi = j - (n - 1) // 2, j + n // 2 + 1
        lo, hi = max(lo, 0), min(hi, channels - 1)
        gx[:, j] -= scale * x[:, j] * pulled[:, lo:hi + 1].sum(axis=1)
    return (gx,)


# --- 5.3: dropout, with switchable mistakes ------------------------------------------------------
def dropout_pair(scaled=True, in_eval=False, backward_scaled=True, inverted_mask=False):
    def forward(x, p, training, mask):
        if not training and not in_eval:
            return x, None
        keep = ~mask if inverted_mask else mask
        factor = keep / (1 - p) if scaled else keep.astype(float)
        return x * factor, factor

    def backward(gy, factor):
        if factor is None:
            return (gy,)
        return (gy * (factor if backward_scaled else factor != 0),)
    return forward, backward


RIGHT = {
    "5.1": max_pool_backward,
    "5.2": lrn_backward,
    "5.3": dropout_pair(),
}
# exercise: [(planted mistake, wrong answer, text the message must hold)]
WRONG = {
    "5.1": [
        ("gradient to every tied element", lambda gy, c: max_pool_backward(gy, c, winner="every tied element"),
         r"On x \(2, 2, 7, 7\) of integers 0\.\.2 \(ties\), 3x3 windows, stride 2, ceil mode: gx\[.*FIRST maximum"),
        ("gradient to the last maximum", lambda gy, c: max_pool_backward(gy, c, winner="last"),
         r"On x \(2, 2, 7, 7\) of integers 0\.\.2 \(ties\).*: gx\[.*not the last"),
        ("not accumulated across overlapping windows", lambda gy, c: max_pool_backward(gy, c, accumulate=False),
         r"On x \(2, 2, 7, 7\), 3x3 windows, stride 2: the gradient of x\[.*SUM of their gy"),
        ("windows placed without the padding", lambda gy, c: max_pool_backward(gy, c, ignore_padding=True),
         r"On x \(2, 1, 6, 6\), 3x3 windows, stride 2, padding 1: the gradient of x\["),
        ("the reference's gradient of ones", lambda gy, c: (reference.max_pool2d_backward(numpy.ones_like(gy), c),),
         r"On x \(2, 2, 7, 7\), 3x3 windows, stride 2: the gradient of x\["),
        ("a bare array, not a tuple", lambda gy, c: max_pool_backward(gy, c)[0],
         r"On x \(2, 2, 7, 7\), 3x3 windows, stride 2: returned a bare array of shape \(2, 2, 7, 7\), not a "
         r"tuple of gradients.*\"returned 2 gradients for 1 inputs\"\)\. Return a tuple.*\(x,\)"),
    ],
    "5.2": [
        ("window off by one", lambda gy, c: lrn_backward(gy, c, window="one too many"),
         r"On x \(2, 7, 2, 3\), size 5, alpha 2, beta 0.75, k 1: the gradient of x\[.*mirrored window"),
        ("window not mirrored (even n)", lambda gy, c: lrn_backward(gy, c, window="not mirrored"),
         r"On x \(2, 6, 3, 2\), size 4 \(even: one more channel before c than after\).*: the gradient of x\["),
        ("the cross term through s missing", lambda gy, c: lrn_backward(gy, c, cross_term=False),
         r"On x \(2, 7, 2, 3\), size 5, alpha 2.*: the gradient of x\["),
        ("alpha not divided by n", lambda gy, c: lrn_backward(gy, c, alpha_over_n=False),
         r"On x \(2, 7, 2, 3\), size 5, alpha 2.*: the gradient of x\["),
    ],
    "5.3": [
        ("no 1/(1 - p) scale", dropout_pair(scaled=False),
         r"On x \(4, 5\), p 0.5, training, a given mask: y\[.*factor of 0.5.*divide the kept values by 1 - p"),
        ("dropout applied in evaluation mode", dropout_pair(in_eval=True),
         r"On x \(3, 4\), p 0.5, evaluation \(the mask is ignored\): y\[.*identity"),
        ("backward without the scale", dropout_pair(backward_scaled=False),
         r"On x \(4, 5\), p 0.5, training, a given mask: gx\[.*same mask / \(1 - p\)"),
        ("the mask read the wrong way round", dropout_pair(inverted_mask=True),
         r"On x \(4, 5\), p 0.5, training, a given mask: y\["),
        ("only the forward passed", dropout_pair()[0], r"Pass both functions"),
    ],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG, missing={"5.3": (not_yet, not_yet)})


def test_the_references_are_accepted():
    """The kernel sets' backwards return bare arrays; a backward the engine runs returns a tuple
    (minigrad.ops.pool wraps the kernel's so), and the checker reads it as the engine does."""
    assert check.verdict("5.1", lambda gy, cache: (reference.max_pool2d_backward(gy, cache),)).correct
    assert check.verdict("5.2", lambda gy, cache: (reference.lrn_backward(gy, cache),)).correct
    ops_forward = lambda x, p, training, mask: dropout_ops.dropout_forward(x, p, training, mask=mask)
    assert check.verdict("5.3", (ops_forward, dropout_ops.dropout_backward)).correct


def test_a_missing_dropout_backward_is_not_implemented_yet():
    assert check.verdict("5.3", (dropout_pair()[0], not_yet)).status == "not implemented yet"


def test_the_cases_hold_ties_a_shared_winner_ceil_mode_and_an_even_lrn_window():
    from course import lesson5
    random, forwards, ties = lesson5.max_pool_cases()
    for inputs in ties.values():
        x, win = inputs["cache"]
        y, _ = reference.max_pool2d_forward(x, win)
        tied = [(x[..., win.input_region(i, j)[0], win.input_region(i, j)[1]]
                 == y[..., i, j, None, None]).sum(axis=(-2, -1)) > 1
                for i in range(win.out[0]) for j in range(win.out[1])]
        assert numpy.any(tied)
    shared = next(inputs["x"] for name, inputs in random.items() if "shared" in name or "wins all" in name)
    y, _ = forwards[next(name for name in random if "wins all" in name)](shared)
    assert numpy.all(y == shared[0, 0, 2, 2])
    assert any(f.keywords["ceil_mode"] for f in forwards.values())
    cases, _ = lesson5.lrn_cases()
    assert any("size 4" in name for name in cases)


def test_the_shared_winner_case_alone_rejects_a_backward_that_overwrites():
    from course import lesson5
    from course.cases import backward_cases
    random, forwards, _ = lesson5.max_pool_cases()
    name = next(name for name in random if "wins all four" in name)
    status, message = backward_cases(forwards, lambda gy, c: max_pool_backward(gy, c, accumulate=False),
                                     {name: random[name]}, hints=lesson5.max_pool_hints)
    assert status == "wrong" and "the gradient of x[0, 0, 2, 2]" in message and "SUM of their gy" in message
    assert backward_cases(forwards, max_pool_backward, {name: random[name]})[0] == "correct"


# --- the mutation rule and the engine's structure, for the pair -----------------------------------
def test_a_dropout_forward_that_changes_x_in_place_is_wrong():
    """It used to pass (each case gave it a copy); in the engine it changes the input tensor and
    breaks every other use of it."""
    def forward(x, p, training, mask):
        if not training:
            return x, None
        x *= mask / (1 - p)
        return x, mask / (1 - p)
    verdict = check.verdict("5.3", (forward, dropout_pair()[1]))
    assert verdict.status == "wrong"
    assert verdict.message.startswith("On x (4, 5), p 0.5, training, a given mask it raised ValueError")
    assert "x *= mask / (1 - p)" in verdict.message and "read-only" in verdict.message


def test_a_dropout_backward_that_changes_its_cache_or_returns_a_bare_array_is_wrong():
    forward, _ = dropout_pair()

    def in_place(gy, factor):
        if factor is None:
            return (gy,)
        factor *= gy
        return (factor,)
    assert "read-only" in check.verdict("5.3", (forward, in_place)).message
    bare = check.verdict("5.3", (forward, lambda gy, factor: gy if factor is None else gy * factor))
    assert bare.status == "wrong"
    assert ("On x (4, 5), p 0.5, training, a given mask: the backward returned a bare array of shape (4, 5), "
            "not a tuple of gradients") in bare.message and '"returned 4 gradients for 1 inputs"' in bare.message


def test_on_ties_a_gradient_given_as_a_list_is_refused_as_the_engine_refuses_it():
    """The engine reads a gradient's .shape: a list of numbers is no gradient there."""
    def lists_on_ties(gy, cache):
        gx = max_pool_backward(gy, cache)[0]
        ties = numpy.array_equal(cache[0], numpy.round(cache[0]))     # the tie cases hold integers
        return (gx.tolist() if ties else gx,)
    verdict = check.verdict("5.1", lists_on_ties)
    assert verdict.status == "wrong"
    assert verdict.message.startswith("On x (2, 2, 7, 7) of integers 0..2 (ties), 3x3 windows, stride 2, ceil "
                                      "mode: gx is a list, not an array")
