"""The op profile (minigrad.bench.profile): which kind each op's time goes to, own times that
add up to the step, every replaced function put back when the profile closes, and the CUDA
event clock's arithmetic (on stand-in events)."""
import time

import numpy as np
import pytest

import minigrad.functional as F
from minigrad import autograd, kernels, nn
from minigrad.autograd import Op, Tensor
from minigrad.bench import profile
from minigrad.bench.profile import KINDS, OpProfile
from minigrad.kernels import winograd
from minigrad.optim import SGD

from conftest import available_kernel_sets


class TickClock:
    """A clock that moves one tick per reading: a region's time is the number of readings
    taken inside it plus one, so own times are exact small integers."""

    def __init__(self):
        self.now = 0

    def mark(self):
        self.now += 1
        return self.now

    def finish(self):
        pass

    def seconds(self, start, end):
        return end - start


def conv_step(kernel_set, kernel=3, padding=1, size=6):
    """A step: one convolution, ReLU, max pool, concat and sum, forward and backward."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, size, size), dtype=np.float32), requires_grad=True)
    weight = Tensor(rng.standard_normal((4, 3, kernel, kernel), dtype=np.float32), requires_grad=True)

    def step():
        with kernels.use(kernel_set):
            y = F.relu(F.conv2d(x, weight, padding=padding))
            joined = F.concat([y, F.max_pool2d(y, 3, stride=1, padding=1)], axis=1)
            joined.sum().backward()
    return step


def test_every_op_of_functional_has_a_kind_of_its_own():
    ops = profile.functional_ops()
    assert len(ops) > 30 and len({op.name for op in ops}) == len(ops)
    unnamed = [op.name for op in ops if op.name not in profile.KIND_OF_OP and not op.name.startswith("conv")]
    assert unnamed == []            # a new Op gets its line in KIND_OF_OP (else it counts as element-wise)
    assert set(profile.KIND_OF_OP.values()) <= set(KINDS)
    assert profile.kind_of_op("conv2d_relu") == "GEMM"


def test_the_functions_a_profile_replaces_exist_where_it_looks_for_them():
    for set_name, names in profile.COLUMN_FUNCTIONS.items():
        for name in names:
            assert callable(getattr(kernels.SETS[set_name], name)), f"kernel set {set_name} has no {name}"
    for name in profile.WINOGRAD_FUNCTIONS:
        assert callable(getattr(winograd, name)), f"winograd has no {name}"
    assert callable(getattr(autograd, profile.AUTOGRAD_DISPATCH)) and callable(getattr(autograd, profile.GRADIENT_SUM))


def test_closing_the_profile_puts_back_every_original():
    ops = profile.functional_ops()
    before = [(op.forward, op.backward) for op in ops]
    column_functions = {(s, n): getattr(kernels.SETS[s], n) for s, names in profile.COLUMN_FUNCTIONS.items()
                        for n in names}
    dispatch = getattr(autograd, profile.AUTOGRAD_DISPATCH)
    optimizer = SGD([nn.Parameter(np.ones(3, dtype=np.float32))], lr=0.1)
    with OpProfile(hooks=[(optimizer, "step", "optimizer")]):
        assert F.relu.op.forward is not before[ops.index(F.relu.op)][0]        # replaced while open
        assert "step" in vars(optimizer)
    assert [(op.forward, op.backward) for op in ops] == before
    assert all(getattr(kernels.SETS[s], n) is f for (s, n), f in column_functions.items())
    assert getattr(autograd, profile.AUTOGRAD_DISPATCH) is dispatch
    assert "step" not in vars(optimizer)                   # the class's method shows through again


def test_profiles_do_not_nest_and_run_needs_an_open_profile():
    outer = OpProfile()
    with pytest.raises(RuntimeError, match="open the profile first"):
        outer.run(lambda: None)
    with outer:
        with pytest.raises(RuntimeError, match="another profile is open"):
            with OpProfile():
                pass
    with pytest.raises(RuntimeError, match="no step was profiled"):
        outer.breakdown()


def test_an_error_inside_the_step_still_closes_the_profile():
    relu_forward = F.relu.op.forward
    with pytest.raises(ValueError, match="planted"):
        with OpProfile() as opened:
            opened.run(lambda: (_ for _ in ()).throw(ValueError("planted")))
    assert F.relu.op.forward is relu_forward and OpProfile._open is None


@pytest.mark.parametrize("kernel_set", available_kernel_sets())
def test_each_op_lands_in_its_kind_and_the_kinds_add_up_to_the_step(kernel_set):
    step = conv_step(kernel_set)
    step()                                                  # warm-up: the twin compiles once
    with OpProfile() as opened:
        opened.run(step)
        opened.run(step)
    seconds, calls = opened.breakdown(), opened.calls()
    assert list(seconds) == list(KINDS)
    assert sum(seconds.values()) == pytest.approx(opened.step_seconds, rel=1e-12)
    assert all(value >= 0 for value in seconds.values())
    # per step: conv forward + backward (GEMM), its im2col and col2im (the cuda set makes the
    # columns again in the backward; the reference set, and the numpy set on a CPU, keep them),
    # max pool forward + backward, ReLU, sum forward + backward, concat forward + backward
    column_copies = 3 if kernel_set == "cuda" else 2
    assert calls["GEMM"] == 2 and calls["im2col/col2im"] == column_copies and calls["pooling"] == 2
    assert calls["element-wise"] == 4 and calls["concat/split"] == 2 and calls["optimizer"] == 0
    # one dispatch each for sum, concat, max pool, ReLU and conv, the sum of y's two shares
    # (from concat and from the pool), and the gradients of the two leaves (x and weight)
    # added into their .grad
    assert calls["autograd"] == 5 + 1 + 2
    for kind in ("GEMM", "im2col/col2im", "pooling", "element-wise", "concat/split", "autograd"):
        assert seconds[kind] > 0, kind
    assert {"conv2d forward", "conv2d backward", "max_pool2d backward"} <= set(opened.by_name())


def test_a_winograd_convolution_counts_its_tile_transforms_as_im2col_and_col2im():
    """On maps of >= WINOGRAD_MIN_PIXELS pixels the numpy set's 3x3 convolution transforms its
    input tiles instead of copying windows into columns: the same kind of work, the same line."""
    with OpProfile() as opened:
        opened.run(conv_step("numpy", size=12))
    assert opened.calls()["im2col/col2im"] == 2 and opened.calls()["GEMM"] == 2
    assert {"winograd input_transform", "winograd input_gradient"} <= set(opened.by_name())


def test_a_pointwise_convolution_has_no_im2col():
    with OpProfile() as opened:
        opened.run(conv_step("numpy", kernel=1, padding=0))
    assert opened.calls()["im2col/col2im"] == 0 and opened.breakdown()["im2col/col2im"] == 0


def test_own_times_subtract_the_regions_inside():
    """On a clock of one tick per reading: the conv forward holds one im2col region (2
    readings), so its own time is 3 - 1 = 2 ticks; the conv backward holds one (col2im: on a
    CPU the columns are kept from the forward), so its own time is 3 - 1 = 2 ticks too; the
    step's remainder is exact too."""
    with OpProfile(clock=TickClock()) as opened:
        opened.run(conv_step("numpy"))
    own = {name: seconds for _, name, seconds in opened.own_times()}
    assert own["numpy _im2col_batch_last"] == 1 and own["conv2d forward"] == 2
    assert own["numpy _col2im_batch_last"] == 1 and own["conv2d backward"] == 2
    assert own["relu forward"] == 1
    # autograd's dispatch of the conv node holds the conv backward (5 readings with its col2im)
    regions = sum(opened.calls().values()) - 1                 # all but the step's remainder
    assert opened.step_seconds == 2 * regions + 1             # every region marks twice, plus the step's end
    assert sum(opened.breakdown().values()) == opened.step_seconds


def test_hooks_time_the_optimizer_and_calls_outside_a_step_are_not_recorded():
    layer = nn.Linear(4, 3, rng=0)
    optimizer = SGD(layer.parameters(), lr=0.1, momentum=0.9)
    x = Tensor(np.ones((2, 4), dtype=np.float32))

    def step():
        loss = layer(x).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    with OpProfile(hooks=[(optimizer, "step", "optimizer"), (optimizer, "zero_grad", "optimizer")]) as opened:
        step()                                             # not inside run: nothing recorded
        assert opened.steps == []
        opened.run(step)
    assert opened.calls()["optimizer"] == 2 and opened.calls()["GEMM"] == 2     # linear forward + backward
    assert opened.breakdown()["optimizer"] > 0


class StandInEvent:
    """A CUDA event's interface on the host clock: ``record`` notes the time."""

    def record(self):
        self.time = time.perf_counter()


class StandInCuda:
    Event = StandInEvent
    synchronized = 0

    @staticmethod
    def get_elapsed_time(start, end):
        return (end.time - start.time) * 1e3              # milliseconds, as CUDA reports them

    @classmethod
    def get_current_stream(cls):
        return cls

    @classmethod
    def synchronize(cls):
        cls.synchronized += 1


class StandInCupy:
    cuda = StandInCuda


def test_on_a_gpu_each_region_is_timed_between_events_read_after_the_step():
    with OpProfile(xp=StandInCupy) as opened:
        assert isinstance(opened.clock, profile.EventClock)
        opened.run(conv_step("numpy"))
    assert StandInCuda.synchronized == 1                    # once, after the step
    assert sum(opened.breakdown().values()) == pytest.approx(opened.step_seconds)
    assert opened.breakdown()["im2col/col2im"] > 0 and opened.calls()["GEMM"] == 2


def test_an_op_made_inside_a_profile_keeps_working_after_it_closes():
    doubled = Op("doubled", lambda x: (2 * x, None), lambda gy, cache: (2 * gy,))
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with OpProfile() as opened:
        y = F.relu(x)                                       # its node keeps the timed backward
        opened.run(lambda: None)
    (doubled(y).sum()).backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
