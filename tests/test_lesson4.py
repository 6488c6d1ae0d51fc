"""Lesson 4's checkers accept the right im2col, convolution forward and backward, and reject
the usual mistakes, naming the input that is wrong (see course/lesson4.py)."""

import numpy

from minigrad.kernels import reference
from course import check

from exercise_tests import standard_tests


# --- exercise 4.1: im2col, written the way a learner would, with switchable mistakes ----------
def learners_im2col(x, win, column_major=False, window_transposed=False, stride_ignored=False,
                    padding="both sides"):
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = win.kernel, win.stride, win.padding, win.out
    if stride_ignored:
        sh = sw = 1
    n, c = x.shape[:2]
    if padding == "both sides":
        x_pad = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    elif padding == "top and left only, twice":
        x_pad = numpy.pad(x, ((0, 0), (0, 0), (2 * ph, 0), (2 * pw, 0)))
    else:                                                     # "top and left only": too small
        x_pad = numpy.pad(x, ((0, 0), (0, 0), (ph, 0), (pw, 0)))
    cols = numpy.empty((n, c * kh * kw, oh * ow))
    for i in range(oh):
        for j in range(ow):
            patch = x_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            if window_transposed:
                patch = patch.transpose(0, 1, 3, 2)
            cols[:, :, j * oh + i if column_major else i * ow + j] = patch.reshape(n, -1)
    return cols


def conv_im2col(x, W, b, win, flatten_W=lambda W: W.reshape(W.shape[0], -1), bias=True,
                output_order="N, F, OH, OW"):
    f = W.shape[0]
    y = flatten_W(W) @ reference.im2col(x, win)
    if bias:
        y = y + b.reshape(f, 1)
    if output_order == "N, OH, OW, F":                        # the product's axes mislabelled
        return y.reshape((x.shape[0],) + win.out + (f,)).transpose(0, 3, 1, 2)
    return y.reshape((x.shape[0], f) + win.out)


def conv_backward(gy, cache, gW_transposed=False, gb_axes=(0, 2), col2im_writes=False,
                  first_image_only=False):
    cols, W, x_shape, win = cache
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = win.kernel, win.stride, win.padding, win.out
    n, c, h, w = x_shape
    f = W.shape[0]
    G = gy.reshape(n, f, oh * ow)
    if gW_transposed:                                         # cols @ G^T: (K, F), poured into W's shape
        gW = numpy.einsum("nkp,nfp->kf", cols, G).reshape(W.shape)
    elif first_image_only:
        gW = (G[0] @ cols[0].T).reshape(W.shape)
    else:
        gW = numpy.einsum("nfp,nkp->fk", G, cols).reshape(W.shape)
    gb = G.sum(axis=gb_axes)
    gcols = (W.reshape(f, -1).T @ G).reshape(n, c, kh, kw, oh, ow)
    g_pad = numpy.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for i in range(oh):
        for j in range(ow):
            if col2im_writes:
                g_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] = gcols[..., i, j]
            else:
                g_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += gcols[..., i, j]
    return g_pad[:, :, ph:ph + h, pw:pw + w], gW, gb


RIGHT = {
    "4.1": learners_im2col,
    "4.2": conv_im2col,
    "4.3": conv_backward,
}
# exercise: [(planted mistake, wrong answer, text the message must hold)]
WRONG = {
    "4.1": [
        ("windows in column-major order", lambda x, win: learners_im2col(x, win, column_major=True),
         r"On x \(1, 1, 4, 4\), kernel 2x2, stride 1, no padding: cols\[.*column-major order"),
        ("each window flattened transposed", lambda x, win: learners_im2col(x, win, window_transposed=True),
         r"On x \(1, 1, 4, 4\), kernel 2x2.*: cols\[.*flattened transposed"),
        ("stride ignored", lambda x, win: learners_im2col(x, win, stride_ignored=True),
         r"On x \(2, 2, 7, 6\), kernel 3x2, stride 2, no padding: cols\[.*stride is ignored"),
        ("padding on top and left only (twice)",
         lambda x, win: learners_im2col(x, win, padding="top and left only, twice"),
         r"On x \(2, 3, 5, 5\), kernel 3x3, stride 1, padding 1: cols\[.*above AND below"),
        ("padding on top and left only (the windows run off the end)",
         lambda x, win: learners_im2col(x, win, padding="top and left only"),
         r"On x \(2, 3, 5, 5\), kernel 3x3, stride 1, padding 1 it raised ValueError"),
        ("the reference's layout transposed to (N, OH*OW, K)",
         lambda x, win: reference.im2col(x, win).transpose(0, 2, 1),
         r"On x \(1, 1, 4, 4\).*cols has shape \(1, 9, 4\), expected \(1, 4, 9\)"),
    ],
    "4.2": [
        ("W flattened in the wrong order", lambda x, W, b, win: conv_im2col(
            x, W, b, win, flatten_W=lambda W: W.transpose(0, 1, 3, 2).reshape(W.shape[0], -1)),
         r"On x \(2, 3, 5, 5\), W \(4, 3, 3, 3\), b \(4,\), stride 1, padding 1: y\["),
        ("no bias", lambda x, W, b, win: conv_im2col(x, W, b, win, bias=False),
         r"On x \(2, 3, 5, 5\), W \(4, 3, 3, 3\).*: y\[.*b\.reshape\(F, 1\)"),
        ("output axes mislabelled", lambda x, W, b, win: conv_im2col(x, W, b, win, output_order="N, OH, OW, F"),
         r"On x \(2, 3, 5, 5\), W \(4, 3, 3, 3\).*: y\["),
    ],
    "4.3": [
        ("gW transposed", lambda gy, cache: conv_backward(gy, cache, gW_transposed=True),
         r"On x \(2, 3, 5, 5\), W \(4, 3, 3, 3\), b \(4,\), stride 1, padding 1: the gradient of W\["),
        ("gW from the first image only", lambda gy, cache: conv_backward(gy, cache, first_image_only=True),
         r"On x \(2, 3, 5, 5\).*: the gradient of W\[.*sum over n"),
        ("gb not summed over the images", lambda gy, cache: conv_backward(gy, cache, gb_axes=(2,)),
         r"On x \(2, 3, 5, 5\).*the gradient of b has shape \(2, 4\), expected \(4,\)"),
        ("gb not summed over the pixels", lambda gy, cache: conv_backward(gy, cache, gb_axes=(0,)),
         r"On x \(2, 3, 5, 5\).*the gradient of b has shape \(4, 25\), expected \(4,\)"),
        ("col2im writes instead of adding", lambda gy, cache: conv_backward(gy, cache, col2im_writes=True),
         r"On x \(2, 3, 5, 5\), W \(4, 3, 3, 3\).*: the gradient of x\[.*SUM \(\+=, not =\)"),
    ],
}


test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_the_reference_im2col_and_conv_are_accepted():
    assert check.verdict("4.1", reference.im2col).correct
    assert check.verdict("4.2", lambda x, W, b, win: reference.conv2d_forward(x, W, b, win)[0]).correct


def test_every_case_is_checked_and_the_cases_cover_padding_strides_and_overlap():
    from course import lesson4
    cases = lesson4.im2col_cases()
    windows = [inputs["win"] for inputs in cases.values()]
    assert any(w.padding != (0, 0) for w in windows) and any(w.stride != (1, 1) for w in windows)
    assert any(w.padding[0] != w.padding[1] and w.stride[0] != w.stride[1] for w in windows)
    conv, _ = lesson4.conv_cases(43, with_window=False)
    assert any(inputs["W"].shape[2] > 1 for inputs in conv.values())      # overlapping windows
    assert "all 4 cases" in check.verdict("4.3", conv_backward).message


def test_the_lessons_forward_caches_the_reference_columns():
    from course.lesson4 import conv_forward
    rng = numpy.random.default_rng(0)
    x, W, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    y, (cols, W_cached, x_shape, win) = conv_forward(x, W, b, stride=2, padding=1)
    assert numpy.allclose(y, reference.conv2d_forward(x, W, b, win)[0])
    assert numpy.array_equal(cols, reference.im2col(x, win)) and W_cached is W and x_shape == x.shape


# --- answers that used to pass, and errors that now get a hint ------------------------------------
def test_a_complex_im2col_is_wrong():
    verdict = check.verdict("4.1", lambda x, win: learners_im2col(x, win) + 0j)
    assert verdict.status == "wrong" and "cols has the complex dtype complex128" in verdict.message


def test_a_float32_im2col_says_so_and_why_the_numbers_look_equal():
    verdict = check.verdict("4.1", lambda x, win: learners_im2col(x, win).astype(numpy.float32))
    assert verdict.status == "wrong"
    assert "cols is float32, the reference float64" in verdict.message
    assert "Its values agree to float32 precision (relative error" in verdict.message


def off_by_one_im2col(x, win):
    """The window slice one row too long: NumPy's broadcast error, inside the learner's loop."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = win.kernel, win.stride, win.padding, win.out
    n, c = x.shape[:2]
    x_pad = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = numpy.empty((n, c * kh * kw, oh * ow))
    for i in range(oh):
        for j in range(ow):
            cols[:, :, i * ow + j] = x_pad[:, :, i * sh:i * sh + kh + 1, j * sw:j * sw + kw].reshape(n, -1)
    return cols


def test_an_off_by_one_slice_gets_the_shapes_and_the_slice_rule():
    verdict = check.verdict("4.1", off_by_one_im2col)
    assert verdict.status == "wrong"
    message = verdict.message
    assert message.startswith("On x (1, 1, 4, 4), kernel 2x2, stride 1, no padding it raised ValueError: "
                              "could not broadcast input array from shape (1,6) into shape (1,4)")
    assert "of off_by_one_im2col: cols[:, :, i * ow + j] = x_pad" in message     # the learner's line
    assert "an array of shape (1, 6) went into a place of shape (1, 4): a slice one too long" in message
    assert "the end is oh*SH + KH, not oh*SH + KH - 1 or + 1" in message


def test_a_convolution_that_zeroes_W_and_b_is_wrong():
    """Before, the reference ran afterwards on the zeroed W and b, and agreed."""
    def zeroes(x, W, b, win):
        y = conv_im2col(x, W, b, win)
        for array in (W, b):
            array.flags.writeable = True
            array[...] = 0
        return y
    verdict = check.verdict("4.2", zeroes)
    assert verdict.status == "wrong"
    assert "your function changed its input W: W[0, 0, 0, 0] is now 0.0" in verdict.message
    written = check.verdict("4.2", lambda x, W, b, win: (W.fill(0), conv_im2col(x, W, b, win))[1])
    assert written.status == "wrong" and "read-only" in written.message


def test_a_float32_col2im_buffer_is_wrong_naming_the_dtype():
    """conv_backward with g_pad allocated as float32: the engine refuses its dtype, so does the checker."""
    def float32_g_pad(gy, cache):
        gx, gW, gb = conv_backward(gy, cache)
        return gx.astype(numpy.float32), gW, gb
    verdict = check.verdict("4.3", float32_g_pad)
    assert verdict.status == "wrong"
    assert ('the gradient of x is float32 for an input of dtype float64: a backward must keep its input\'s '
            'dtype (the engine stops there: "returned a float32 gradient for input 0 of dtype float64")') \
        in verdict.message
