"""Lesson 10's checkers accept the right answers and reject the usual mistakes, naming the case
and the mistake; the ring written out in course/lesson10.py is held to the sum and to the
traffic the cost model counts."""
import numpy
import pytest

from course import check
from course.lesson10 import RING_CASES, Ring, ring_allreduce_reference, ring_states
from minigrad.distributed import cost

from exercise_tests import standard_tests


def ring(arrays, send, *, gather=True, gather_from=1, whole_arrays=False, target=1, in_place=False):
    """The right ring all-reduce, or one with a planted mistake."""
    n = len(arrays)
    if whole_arrays:                       # pass growing sums around: (N - 1) whole arrays a rank
        sums = [numpy.array(a) for a in arrays]
        for s in range(n - 1):
            received = [send(r, (r + 1) % n, numpy.array(arrays[(r - s) % n])) for r in range(n)]
            sums = [sums[(r + 1) % n] + received[r] for r in range(n)]
        return [sum(numpy.array(a) for a in arrays) for _ in range(n)]
    chunks = [numpy.array_split(a if in_place else numpy.array(a), n) for a in arrays]
    for s in range(n - 1):
        received = [send(r, (r + target) % n, chunks[r][(r - s) % n]) for r in range(n)]
        for r in range(n):
            chunks[(r + 1) % n][(r - s) % n] += received[r]
    for s in range(n - 1 if gather else 0):
        received = [send(r, (r + 1) % n, chunks[r][(r + gather_from - s) % n]) for r in range(n)]
        for r in range(n):
            chunks[(r + 1) % n][(r + gather_from - s) % n][...] = received[r]
    return [numpy.concatenate(c) for c in chunks]


def ring_bytes(parameters, ranks, bytes_per_value, *, factor=2, per_chunk=True, in_bytes=True):
    size = parameters * (bytes_per_value if in_bytes else 1)
    return factor * (ranks - 1) * (size / ranks if per_chunk else size)


def efficiency(step_seconds, gradient_bytes, ranks, bandwidth, latency, *, latency_steps=None,
               chunk=True, ratio=False, bits=False):
    steps = 2 * (ranks - 1)
    per_step = gradient_bytes / (ranks if chunk else 1) / bandwidth * (8 if bits else 1)
    seconds = steps * per_step + (steps if latency_steps is None else latency_steps) * latency
    return seconds / step_seconds if ratio else step_seconds / (step_seconds + seconds)


RIGHT = {"10.1": ring, "10.2": ring_bytes, "10.3": efficiency}
TWO = "On 2 ranks, 6 values each"
THREE = "On 3 ranks, 7 values each \\(chunks of 3, 2 and 2\\)"
EIGHT = "On GoogLeNet \\(13,378,280 parameters\\) in float32 on 8 ranks"
IB = "On a 58.2 ms step, 53.5 MB, 16 GPUs on InfiniBand \\(50 GB/s, 5 us\\)"
WRONG = {
    "10.1": [
        ("no all-gather", lambda a, send: ring(a, send, gather=False),
         TWO + ": rank 0's array.*each rank holds one summed chunk, as after the reduce-scatter"),
        ("all-gather from the wrong chunk", lambda a, send: ring(a, send, gather_from=0),
         TWO + ": rank 0's array.*no chunk of any rank is the complete sum"),
        ("summed without sending", lambda a, send: [sum(numpy.array(x) for x in a) for _ in a],
         TWO + ": the ranks sent 0 values in all, a ring sends 2 \\(N - 1\\) x 6 = 12: nothing went through send"),
        ("whole arrays around the ring", lambda a, send: ring(a, send, whole_arrays=True),
         THREE + ": the ranks sent 42 values in all, a ring sends 2 \\(N - 1\\) x 7 = 28: a ring sends each "
                 "chunk, 1/N of an array"),
        ("sent past the neighbour", lambda a, send: ring(a, send, target=2),
         "On 2 ranks, 6 values each: rank 0 sent values to rank 0|" + THREE + ": .*"),
        ("added into the inputs", lambda a, send: ring(a, send, in_place=True),
         TWO + " it raised ValueError: .*read-only"),
        ("one array, not one per rank", lambda a, send: ring(a, send)[0],
         TWO + ": returned a ndarray, expected a list of 2 arrays, one per rank"),
    ],
    "10.2": [
        ("the reduce-scatter only", lambda p, r, b: ring_bytes(p, r, b, factor=1),
         EIGHT + ": got 46,823,980 bytes, expected 93,647,960.*the reduce-scatter alone"),
        ("whole arrays per message", lambda p, r, b: ring_bytes(p, r, b, per_chunk=False),
         EIGHT + ": got 749,183,680 bytes.*each message is one chunk"),
        ("values, not bytes", lambda p, r, b: ring_bytes(p, r, b, in_bytes=False),
         EIGHT + ": got 23,411,990 bytes.*multiply by the bytes per value"),
        ("twice the array", lambda p, r, b: 2 * p * b,
         EIGHT + ": got 107,026,240 bytes.*not twice it"),
        ("the total over all ranks", lambda p, r, b: 2 * (r - 1) * p * b / r * r,
         EIGHT + ": got 749,183,680 bytes.*"),
    ],
    "10.3": [
        ("no latency", lambda *a: efficiency(*a, latency_steps=0), IB + ": got .*the latency is missing"),
        ("latency once", lambda *a: efficiency(*a, latency_steps=1), IB + ": got .*the latency comes once per step"),
        ("whole gradient per step", lambda *a: efficiency(*a, chunk=False), IB + ": got .*not the whole gradient"),
        ("a ratio of times", lambda *a: efficiency(*a, ratio=True), IB + ": got .*the all-reduce's time over the step's"),
        ("bits", lambda *a: efficiency(*a, bits=True), IB + ": got .*in bytes per second already"),
        ("1 minus the ratio", lambda s, g, r, b, l: 1 - efficiency(s, g, r, b, l, ratio=True),
         IB + ": got .*the step and the all-reduce add up"),
    ],
}

test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_a_ring_in_the_other_direction_is_a_ring_too():
    def backwards(arrays, send):
        n = len(arrays)
        mirrored = ring(arrays[::-1], lambda s, t, v: send(n - 1 - s, n - 1 - t, v))
        return mirrored[::-1]
    assert check.verdict("10.1", backwards).correct


@pytest.mark.parametrize("case", RING_CASES)
def test_the_reference_ring_sums_exactly_and_sends_what_the_cost_model_counts(case):
    arrays = RING_CASES[case]["arrays"]
    network = Ring(len(arrays))
    result = ring_allreduce_reference(arrays, network.send)
    assert all(numpy.array_equal(r, sum(arrays)) for r in result)
    assert network.strangers() == []
    n, size = len(arrays), arrays[0].size
    per_rank = [sum(m for s, _, m in network.messages if s == rank) for rank in range(n)]
    assert sum(per_rank) == pytest.approx(n * cost.ring_allreduce_bytes(size, n))     # values, here
    assert max(per_rank) - min(per_rank) <= 2 * (n - 1)                 # uneven chunks: at most 1 value a step


def test_the_ring_picture_ends_with_every_chunk_summed_over_every_rank():
    states = ring_states(4)
    assert len(states) == 1 + 2 * 3
    assert (states[0] == 1).all() and (states[-1] == 4).all()
    assert sorted(states[3].max(axis=1)) == [4, 4, 4, 4]              # after the reduce-scatter
