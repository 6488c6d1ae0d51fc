"""Lesson 4's exercises: im2col, the convolution as one matrix product, and its backward.

The layout is the reference kernel set's (``minigrad.kernels.reference``):

    im2col(x, win):  x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW)
    cols[n, :, oh*OW + ow] = window (oh, ow) of the zero-padded image n, flattened
    in (c, i, j) order, the order of a filter W[f] (C, KH, KW) flattened.

``conv_forward`` below is the forward that exercise 4.3's backward pairs with: its
cache is ``(cols, W, x_shape, win)``.
"""
import functools

import numpy

from minigrad.kernels import reference
from minigrad.geometry import window
from .cases import backward_cases, forward_cases
from .check import registers
from .verdicts import RULE


def conv_forward(x, W, b, stride=1, padding=0):
    """x (N, C, H, W), W (F, C, KH, KW), b (F,) -> (y (N, F, OH, OW), cache), by im2col.

    cache = (cols, W, x_shape, win): cols (N, C*KH*KW, OH*OW) from
    ``reference.im2col``, the filters, the input's shape and the ``Window``.
    """
    win = window(x.shape[2:], W.shape[2:], stride, padding)
    cols = reference.im2col(x, win)                               # (N, K, P)
    f = W.shape[0]
    y = W.reshape(f, -1) @ cols + b.reshape(f, 1)                 # (N, F, P): one product per image
    return y.reshape((x.shape[0], f) + win.out), (cols, W, x.shape, win)


def _stride_and_padding(win):
    """("stride 2", "padding (1, 2)"): how a case name says where the windows fall."""
    (sh, sw), (ph, pw) = win.stride, win.padding
    stride = f"stride {sh}" if sh == sw else f"stride ({sh}, {sw})"
    padding = "no padding" if ph == pw == 0 else (f"padding {ph}" if ph == pw else f"padding ({ph}, {pw})")
    return stride, padding


def _window_text(win):
    return ", ".join((f"kernel {win.kernel[0]}x{win.kernel[1]}",) + _stride_and_padding(win))


# (x shape, kernel, stride, padding): 2x2 on a 4x4 (the lesson's picture), padding,
# a stride, and a rectangular kernel with a different stride and padding per axis
IM2COL_GEOMETRY = [((1, 1, 4, 4), 2, 1, 0),
                   ((2, 3, 5, 5), 3, 1, 1),
                   ((2, 2, 7, 6), (3, 2), 2, 0),
                   ((1, 2, 6, 7), 3, (2, 1), (1, 2))]


def im2col_cases(seed=41):
    rng = numpy.random.default_rng(seed)
    cases = {}
    for shape, kernel, stride, padding in IM2COL_GEOMETRY:
        win = window(shape[2:], kernel, stride, padding)
        cases[f"x {shape}, {_window_text(win)}"] = {"x": rng.standard_normal(shape), "win": win}
    return cases


IM2COL_RULE = ("column oh*OW + ow is window (oh, ow) of x padded with PH zero rows above AND below and PW "
               "zero columns left AND right: padded rows oh*SH ... oh*SH + KH - 1, columns ow*SW ... "
               "ow*SW + KW - 1, flattened in (c, i, j) order.")


def im2col_hints(cases):
    """A hint naming the usual im2col mistake that ``got`` matches (the nudge)."""
    def hints(case, name, got, expected):
        x, win = cases[case].values()
        n, c = x.shape[:2]
        (kh, kw), (oh, ow) = win.kernel, win.out
        blocks = expected.reshape(n, c, kh, kw, oh, ow)
        if got.shape != expected.shape:
            return "Hint: cols has shape (N, C*KH*KW, OH*OW), with OH, OW = win.out."
        if numpy.allclose(got, blocks.transpose(0, 1, 2, 3, 5, 4).reshape(expected.shape)):
            return ("Hint: the windows are in column-major order: window (oh, ow) goes to column "
                    "oh*OW + ow (rows of windows one after the other).")
        if numpy.allclose(got, blocks.transpose(0, 1, 3, 2, 4, 5).reshape(expected.shape)):
            return ("Hint: each window is flattened transposed: flatten it as window.reshape(-1), "
                    "in (c, i, j) order, the order of a filter W[f].reshape(-1).")
        unstrided = reference.im2col(x, window(win.size, win.kernel, 1, win.padding))
        unstrided = unstrided.reshape(n, c * kh * kw, win.size[0] + 2 * win.padding[0] - kh + 1, -1)
        if win.stride != (1, 1) and numpy.allclose(got, unstrided[:, :, :oh, :ow].reshape(expected.shape)):
            return "Hint: the stride is ignored: window (oh, ow) starts at padded row oh*SH, column ow*SW."
        return ""
    return hints


IM2COL_ERROR = ("A window is x_pad[:, :, oh*SH:oh*SH + KH, ow*SW:ow*SW + KW], (N, C, KH, KW): the end of a "
                "slice is excluded, so the end is oh*SH + KH, not oh*SH + KH - 1 or + 1; reshaped to "
                "(N, C*KH*KW) it fills cols[:, :, oh*OW + ow].")


def _im2col_error_hint(error):
    text = str(error)
    return "" if "read-only" in text or "broadcast" not in text and "reshape" not in text else IM2COL_ERROR


@registers("4.1", "im2col", rule=IM2COL_RULE)
def check_im2col(im2col):
    cases = im2col_cases()
    return forward_cases(im2col, reference.im2col, cases, output_names=("cols",), hints=im2col_hints(cases),
                         error_hint=_im2col_error_hint)


# (x shape, W shape, stride, padding)
CONV_GEOMETRY = [((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
                 ((1, 2, 7, 6), (3, 2, 3, 2), 2, 0),
                 ((2, 3, 4, 5), (5, 3, 1, 1), 1, 0),
                 ((2, 2, 6, 7), (3, 2, 3, 3), (2, 1), (1, 2))]


def conv_cases(seed, with_window):
    """Named inputs x, W, b (and the Window when ``with_window``), and each case's geometry."""
    rng = numpy.random.default_rng(seed)
    cases, geometry = {}, {}
    for x_shape, w_shape, stride, padding in CONV_GEOMETRY:
        win = window(x_shape[2:], w_shape[2:], stride, padding)
        name = f"x {x_shape}, W {w_shape}, b ({w_shape[0]},), " + ", ".join(_stride_and_padding(win))
        cases[name] = {"x": rng.standard_normal(x_shape), "W": rng.standard_normal(w_shape),
                       "b": rng.standard_normal(w_shape[0])}
        if with_window:
            cases[name]["win"] = win
        geometry[name] = (stride, padding)
    return cases, geometry


def _conv_forward_hints(cases):
    def hints(case, name, got, expected):
        b = cases[case]["b"]
        if got.shape == expected.shape and numpy.allclose(got, expected - b.reshape(-1, 1, 1)):
            return "Hint: the bias is missing: b[f] is added to every pixel of output map f."
        return ""
    return hints


@registers("4.2", "convolution forward by im2col",
           rule="y[n] = W.reshape(F, -1) @ cols[n] is (F, OH*OW); add b[f] to row f (b.reshape(F, 1)), "
                "then reshape to (N, F, OH, OW).")
def check_conv_forward(conv2d_im2col):
    cases, _ = conv_cases(42, with_window=True)
    return forward_cases(conv2d_im2col, lambda x, W, b, win: reference.conv2d_forward(x, W, b, win)[0],
                         cases, output_names=("y",), hints=_conv_forward_hints(cases))


CONV_BACKWARD_HINTS = {
    "x": "gcols[n] = W.reshape(F, -1).T @ gy[n], then col2im: every entry goes back to the pixel it "
         "was copied from, and a pixel in several (overlapping) windows gets the SUM (+=, not =); "
         "the padding's share is dropped.",
    "W": "gW = sum over n of gy[n] @ cols[n].T, an (F, C*KH*KW) matrix reshaped to W's shape "
         "(gy[n] is (F, OH*OW), cols[n] is (C*KH*KW, OH*OW)).",
    "b": "b[f] is added to every pixel of every image: gb[f] sums gy[:, f] over the images AND the pixels.",
}


@registers("4.3", "convolution backward", rule=" ".join(CONV_BACKWARD_HINTS.values()))
def check_conv_backward(conv_backward):
    cases, geometry = conv_cases(43, with_window=False)
    forwards = {name: functools.partial(conv_forward, stride=stride, padding=padding)
                for name, (stride, padding) in geometry.items()}
    return backward_cases(forwards, conv_backward, cases,
                          hints=lambda case, name, got, expected: f"{RULE} {CONV_BACKWARD_HINTS[name]}")
