"""The course's drawings show what they claim: the convolution stepper's frame p outlines
the window that im2col copies to column p, that column, and the outputs it gives; its
backward adds up to col2im; the 3-D picture puts the window and the output column where
the convolution's arithmetic does; the diagrams' boxes are the model's modules."""
import matplotlib
import numpy
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt                                              # noqa: E402

from course.pictures import ConvStepper, conv_volume_picture                 # noqa: E402
from minigrad.kernels import reference                                        # noqa: E402
from minigrad.geometry import window                                        # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def stepper(channels=2, size=(5, 6), filters=3, kernel=(3, 2), stride=(2, 1), padding=(1, 0), seed=0):
    rng = numpy.random.default_rng(seed)
    win = window(size, kernel, stride, padding)
    return ConvStepper(rng.standard_normal((channels,) + size), rng.standard_normal((filters, channels) + kernel),
                       rng.standard_normal(filters), rng.standard_normal((filters,) + win.out), stride, padding)


def outlined(figure, label, gid):
    """The (top row, left column, rows, columns) of the outline ``gid`` on the axes ``label``."""
    ax = next(ax for ax in figure.axes if ax.get_label() == label)
    box = next(p for p in ax.patches if p.get_gid() == gid)
    return (box.get_y() + 0.5, box.get_x() + 0.5, box.get_height(), box.get_width())


def test_each_step_is_im2cols_window_column_and_output():
    s = stepper()
    cols = reference.im2col(s.x[None], s.win)[0]
    y = reference.conv2d_forward(s.x[None], s.W, s.b, s.win)[0][0]
    assert len(s.steps) == cols.shape[1]
    for step in s.steps:
        window_values = s.x_padded[:, step.rows, step.columns].reshape(-1)
        assert numpy.array_equal(window_values, cols[:, step.position])
        assert numpy.array_equal(step.column, cols[:, step.position])
        assert numpy.allclose(step.output, y[:, step.out[0], step.out[1]])


@pytest.mark.parametrize("p", [0, 1, 3, 7, 11])
def test_the_forward_frame_outlines_the_window_im2col_puts_in_column_p(p):
    s = stepper()
    figure = s.draw(p)
    step = s.steps[p]
    cols = reference.im2col(s.x[None], s.win)[0]
    for c in range(s.x.shape[0]):
        top, left, rows, columns = outlined(figure, f"x[{c}]", "window")
        drawn = s.x_padded[c, int(top):int(top + rows), int(left):int(left + columns)]
        block = cols[c * drawn.size:(c + 1) * drawn.size, p]          # channel c's rows of column p
        assert drawn.shape == s.win.kernel and numpy.array_equal(drawn.reshape(-1), block)
    assert outlined(figure, "cols", "column") == (0, p, cols.shape[0], 1)
    for f in range(s.W.shape[0]):
        assert outlined(figure, f"y[{f}]", "output") == (*step.out, 1, 1)
    assert step.out == divmod(p, s.win.out[1])
    assert figure.get_suptitle().startswith(f"forward, output position p = {p}")


def test_the_backward_adds_each_column_into_its_window_and_ends_at_col2im():
    s = stepper()
    gcols = s.W.reshape(len(s.W), -1).T @ s.gy.reshape(len(s.gy), -1)
    expected = reference.col2im(gcols[None], (1,) + s.x.shape, s.win)[0]
    assert numpy.allclose(s.gx, expected)
    previous = numpy.zeros_like(s.x_padded)
    for step in s.steps:
        added = step.gx_padded - previous
        inside = numpy.zeros(added.shape, dtype=bool)
        inside[:, step.rows, step.columns] = True
        assert numpy.allclose(added[inside], step.g_column) and not added[~inside].any()
        previous = step.gx_padded


def test_the_backward_frame_marks_the_cells_an_earlier_window_already_reached():
    s = stepper(channels=1, size=(5, 5), filters=2, kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    # windows 0 and 1 (top row) share padded column 2: window 1 lands on 3 cells window 0 reached
    assert s.steps[0].earlier.sum() == 0 and s.steps[1].earlier.sum() == 3
    figure = s.draw(1, backward=True)
    assert outlined(figure, "gx[0]", "window") == (0, 2, 3, 3)
    assert outlined(figure, "gcols", "column") == (0, 1, 9, 1)
    ax = next(ax for ax in figure.axes if ax.get_label() == "gx[0]")
    hatched = {(p.get_y() + 0.5, p.get_x() + 0.5) for p in ax.patches if p.get_gid() == "earlier"}
    assert hatched == {(0, 2), (1, 2), (2, 2)}


def test_a_wrong_gy_shape_is_refused_naming_the_expected_shape():
    with pytest.raises(ValueError, match=r"ConvStepper: gy must have shape \(2, 3, 3\)"):
        ConvStepper(numpy.ones((1, 5, 5)), numpy.ones((2, 1, 3, 3)), numpy.zeros(2), numpy.ones((2, 5, 5)),
                    stride=2, padding=1)


def test_without_widgets_the_stepper_draws_the_static_frames_in_one_titled_figure():
    s = stepper(channels=1, size=(5, 5), filters=2, kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    figure = s.show().grid()
    titles = [frame.get_suptitle() for frame in figure.subfigs]
    assert [title.split(":")[0] for title in titles] == \
        [f"forward, output position p = {p} = {p // 3}*3 + {p % 3}" for p in (0, 1, 3, 8)]
    assert "im2col" in figure.get_suptitle()
    assert "col2im" in s.show(backward=True, static=[2]).grid().get_suptitle()


@pytest.mark.parametrize("in_shape, filters, kernel, stride, padding, out", [
    ((3, 7, 7), 4, 3, 2, 0, (1, 2)), ((2, 6, 5), 5, 3, 1, 1, (0, 4))])
def test_the_3d_picture_puts_the_window_and_the_column_where_the_arithmetic_does(
        in_shape, filters, kernel, stride, padding, out):
    figure, boxes = conv_volume_picture(in_shape, filters, kernel, stride, padding, out=out, f=1)
    channels, height, width = in_shape
    win = window((height, width), kernel, stride, padding)
    oh, ow = out
    assert boxes["input"].size == (width, channels, height)
    assert boxes["window"].size == (kernel, channels, kernel) == boxes["filter"].size   # the whole depth
    x0, _, z0 = boxes["window"].origin
    assert x0 == ow * stride - padding and z0 + kernel == height - (oh * stride - padding)   # row 0 on top
    assert boxes["output"].size == (win.out[1], filters, win.out[0])
    out_x, _, out_z = boxes["output"].origin
    assert boxes["column"] == ((out_x + ow, 0, out_z + win.out[0] - oh - 1), (1, filters, 1))
    assert boxes["cell"].origin[1] == 1 and boxes["cell"].size == (1, 1, 1)
    assert figure.get_suptitle()
    drawn = {collection.get_gid() for collection in figure.axes[0].collections}
    assert set(boxes) <= drawn
