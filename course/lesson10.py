"""Lesson 10's exercises and helpers: data parallelism, the ring all-reduce and what it costs.

* 10.1 ``ring_allreduce(arrays, send)``: every rank's array summed, by passing chunks around a
  ring: ``arrays[r]`` is rank r's gradient, ``send(source, target, values)`` the only way values
  travel (``Ring`` records every message); checked against the sum, and the traffic against a
  ring's: each send to a neighbour, 2 (N - 1) x (values per array) values in all;
* 10.2 ``ring_bytes(parameters, ranks, bytes_per_value)``: the bytes each rank sends in one
  ring all-reduce, against ``minigrad.distributed.cost.ring_allreduce_bytes``;
* 10.3 ``scaling_efficiency(step_seconds, gradient_bytes, ranks, bandwidth, latency)``: N GPUs'
  images/s over N times one GPU's, against ``minigrad.distributed.cost.scaling_efficiency``.

``ring_allreduce_reference`` is the ring written out (the lesson's picture runs it step by
step, ``ring_states``); ``run_command`` runs ``mpiexec`` from a notebook cell, with a timeout.
"""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy

from minigrad.distributed import cost
from .cases import changed_inputs, join, learners_numbers, run_learners_code
from .check import registers
from .guard import hand_over
from .verdicts import CORRECT, WRONG, compare

ROOT = pathlib.Path(__file__).resolve().parent.parent


# --- 10.1 the ring all-reduce -----------------------------------------------------------------------
class Ring:
    """The network of a ring all-reduce done by hand: ``send(source, target, values)`` hands
    ``target`` a copy of ``values`` (what it receives) and records the message."""

    def __init__(self, ranks):
        self.ranks, self.messages = ranks, []

    def send(self, source, target, values):
        received = numpy.array(values, dtype=numpy.float64)
        self.messages.append((int(source), int(target), received.size))
        return received

    def values_sent(self):
        return sum(size for _, _, size in self.messages)

    def strangers(self):
        """The messages that went to a rank that is not a neighbour of their source."""
        return [(s, t) for s, t, _ in self.messages
                if (t - s) % self.ranks not in (1, self.ranks - 1) or s == t]


def ring_allreduce_reference(arrays, send, on_step=None):
    """Every rank ends with the sum of all the ranks' arrays.

    Each array is cut into N chunks. Reduce-scatter: in step s = 0 .. N-2, rank r sends its
    chunk (r - s) mod N to rank r + 1, which adds it to its own; after N - 1 steps rank r
    holds the complete sum of chunk (r + 1) mod N. All-gather: in step s, rank r sends chunk
    (r + 1 - s) mod N, complete, to rank r + 1, which keeps it. ``on_step(chunks)`` is
    called after every step (for the lesson's picture)."""
    n = len(arrays)
    chunks = [numpy.array_split(numpy.array(array, dtype=numpy.float64), n) for array in arrays]
    for s in range(n - 1):                                           # reduce-scatter
        received = [send(r, (r + 1) % n, chunks[r][(r - s) % n]) for r in range(n)]
        for r in range(n):
            chunks[(r + 1) % n][(r - s) % n] = chunks[(r + 1) % n][(r - s) % n] + received[r]
        if on_step:
            on_step(chunks)
    for s in range(n - 1):                                           # all-gather
        received = [send(r, (r + 1) % n, chunks[r][(r + 1 - s) % n]) for r in range(n)]
        for r in range(n):
            chunks[(r + 1) % n][(r + 1 - s) % n] = received[r]
        if on_step:
            on_step(chunks)
    return [numpy.concatenate(rank_chunks) for rank_chunks in chunks]


def ring_states(ranks):
    """[(ranks x ranks) array: how many ranks' contributions chunk c of rank r holds], before
    and after each of the 2 (N - 1) steps of ``ring_allreduce_reference``."""
    states = []
    record = lambda chunks: states.append(numpy.array([[c[0] for c in rank] for rank in chunks]))
    ones = [numpy.ones(ranks) for _ in range(ranks)]                # one value per chunk: counts
    record([numpy.array_split(a, ranks) for a in ones])
    ring_allreduce_reference(ones, Ring(ranks).send, on_step=record)
    return states


def _ring_case(ranks, size, seed):
    """Rank r's gradient: whole numbers as floats, so that any order of additions is exact."""
    rng = numpy.random.default_rng(seed)
    return {"arrays": [rng.integers(-50, 50, size).astype(numpy.float64) for _ in range(ranks)]}


RING_CASES = {
    "2 ranks, 6 values each": _ring_case(2, 6, 0),
    "3 ranks, 7 values each (chunks of 3, 2 and 2)": _ring_case(3, 7, 1),
    "4 ranks, 10 values each": _ring_case(4, 10, 2),
    "5 ranks, 23 values each": _ring_case(5, 23, 3),
}

RING_RULE = ("cut each array into N chunks (numpy.array_split). Reduce-scatter: in step s = 0 .. N-2, "
             "rank r sends chunk (r - s) mod N to rank (r + 1) mod N, which adds it to its own. "
             "All-gather: in step s, rank r sends chunk (r + 1 - s) mod N to rank r + 1, which keeps "
             "it. Make every send of a step before any rank adds.")


def _ring_hint(arrays, got, expected):
    """The usual mistake, recognised from which chunks each rank got right."""
    n = len(arrays)
    right = [[numpy.array_equal(g, e) for g, e in zip(numpy.array_split(rank, n), numpy.array_split(expected, n))]
             for rank in got]
    if all(sum(rank) == 1 for rank in right):
        return ("Hint: each rank holds one summed chunk, as after the reduce-scatter: the N - 1 "
                "all-gather steps must then pass the summed chunks on around the ring.")
    if all(sum(rank) == 0 for rank in right):
        return "Hint: no chunk of any rank is the complete sum: check which chunk each step sends."
    return ""


@registers("10.1", "a ring all-reduce", rule=RING_RULE)
def check_ring_allreduce(ring_allreduce):
    expected = {case: sum(inputs["arrays"]) for case, inputs in RING_CASES.items()}
    for case, inputs in RING_CASES.items():
        n, size = len(inputs["arrays"]), inputs["arrays"][0].size
        ring, given = Ring(n), {"arrays": hand_over(inputs["arrays"])}
        got, failure = run_learners_code(lambda: ring_allreduce(given["arrays"], ring.send), case)
        if failure:
            return WRONG, failure
        problem = changed_inputs(inputs, given, case)
        if problem:
            return WRONG, problem
        if not isinstance(got, (list, tuple)) or len(got) != n:
            what = f"{len(got)} values" if isinstance(got, (list, tuple)) else f"a {type(got).__name__}"
            return WRONG, f"On {case}: returned {what}, expected a list of {n} arrays, one per rank."
        for rank, array in enumerate(got):
            problem = compare(f"rank {rank}'s array", array, expected[case], tolerance=0.0)
            if problem:
                return WRONG, join(f"On {case}: {problem}", _ring_hint(inputs["arrays"], got, expected[case]))
        strangers = ring.strangers()
        if strangers:
            source, target = strangers[0]
            return WRONG, (f"On {case}: rank {source} sent values to rank {target}: in a ring each rank "
                           f"sends only to its neighbour, (r + 1) mod N.")
        sent, ring_sends = ring.values_sent(), 2 * (n - 1) * size
        if sent != ring_sends:
            why = ("nothing went through send: the ranks' arrays are on different machines, the values "
                   "can only travel as messages" if sent == 0 else
                   "a ring sends each chunk, 1/N of an array, per message, 2 (N - 1) messages from "
                   "each rank" if sent > ring_sends else "some chunks never travelled")
            return WRONG, (f"On {case}: the ranks sent {sent:,} values in all, a ring sends 2 (N - 1) x "
                           f"{size} = {ring_sends:,}: {why}.")
    return CORRECT, (f"Every rank holds the sum, exactly, on {len(RING_CASES)} rings of 2 to 5 ranks; "
                     f"each rank sent 2 (N - 1) / N of an array, to its neighbour only.")


# --- 10.2 and 10.3: two numbers ------------------------------------------------------------------------
def number_cases(attempt, reference, cases, what, mistakes, tolerance=1e-12):
    """A real number against the reference's, within ``tolerance`` (relative), on each named
    case; ``mistakes(**inputs)``: [(value a usual mistake gives, what that mistake is)]."""
    expected = {case: float(reference(*hand_over(inputs, writable=True).values())) for case, inputs in cases.items()}
    values, failure = learners_numbers(attempt, cases, expected, what)
    if failure:
        return WRONG, failure
    for case, inputs in cases.items():
        value, right = values[case], expected[case]
        error = abs(value - right) / max(abs(value) + abs(right), 1e-300)
        if not error <= tolerance:                 # fails closed on NaN
            known = [text for wrong, text in mistakes(**inputs)
                     if abs(wrong - value) <= tolerance * max(abs(wrong) + abs(value), 1e-300)]
            unit = f" {what}" if what else ""
            return WRONG, join(f"On {case}: got {value:,.10g}{unit}, expected {right:,.10g}{unit} (relative "
                               f"error {error:.1e})", f"Hint: {known[0]}" if known else "")
    return CORRECT, f"Matches the cost model on all {len(cases)} cases."


GOOGLENET_PARAMETERS = 13_378_280          # 1000 classes, both auxiliary heads

BYTES_CASES = {
    "GoogLeNet (13,378,280 parameters) in float32 on 8 ranks":
        dict(parameters=GOOGLENET_PARAMETERS, ranks=8, bytes_per_value=4),
    "GoogLeNet in float32 on 2 ranks": dict(parameters=GOOGLENET_PARAMETERS, ranks=2, bytes_per_value=4),
    "1,000,000 parameters in float64 on 5 ranks": dict(parameters=1_000_000, ranks=5, bytes_per_value=8),
    "one rank (nothing to exchange)": dict(parameters=1_000, ranks=1, bytes_per_value=4),
}


def ring_bytes_reference(parameters, ranks, bytes_per_value):
    return cost.ring_allreduce_bytes(parameters * bytes_per_value, ranks)


def _bytes_mistakes(parameters, ranks, bytes_per_value):
    size = parameters * bytes_per_value
    return [((ranks - 1) / ranks * size, "that is the reduce-scatter alone: the all-gather sends as "
                                         "much again, 2 (N - 1) / N in all."),
            (2 * (ranks - 1) * size, "each message is one chunk, 1/N of the array, not the whole array."),
            (2 * (ranks - 1) / ranks * parameters, "that counts values: multiply by the bytes per value."),
            (2 * size, "a rank sends 2 (N - 1) chunks of 1/N each: 2 (N - 1) / N of the array, not twice it."),
            ((ranks - 1) * size, "passing whole arrays around the ring costs (N - 1) arrays a rank; "
                                 "a ring all-reduce sends chunks: 2 (N - 1) / N of one array.")]


BYTES_RULE = "a rank sends 2 (N - 1) chunks of S / N bytes: 2 (N - 1) / N x S, S = parameters x bytes per value."


@registers("10.2", "bytes a ring all-reduce sends", rule=BYTES_RULE)
def check_ring_bytes(ring_bytes):
    return number_cases(ring_bytes, ring_bytes_reference, BYTES_CASES, "bytes", _bytes_mistakes)


EFFICIENCY_CASES = {
    "a 58.2 ms step, 53.5 MB, 16 GPUs on InfiniBand (50 GB/s, 5 us)":
        dict(step_seconds=0.0582, gradient_bytes=53.5e6, ranks=16, bandwidth=50e9, latency=5e-6),
    "a 20.3 ms step, 53.5 MB, 64 GPUs on 10 Gb Ethernet (1.25 GB/s, 50 us)":
        dict(step_seconds=0.0203, gradient_bytes=53.5e6, ranks=64, bandwidth=1.25e9, latency=50e-6),
    "a 1 ms step, 4 MB, 16 GPUs, a slow link (1 GB/s, 1 ms latency)":
        dict(step_seconds=0.001, gradient_bytes=4e6, ranks=16, bandwidth=1e9, latency=1e-3),
    "one GPU": dict(step_seconds=0.05, gradient_bytes=53.5e6, ranks=1, bandwidth=50e9, latency=5e-6),
}


def _efficiency_mistakes(step_seconds, gradient_bytes, ranks, bandwidth, latency):
    chunk = gradient_bytes / (ranks * bandwidth)
    right = cost.ring_allreduce_seconds(gradient_bytes, ranks, bandwidth, latency)
    efficiency = lambda seconds: step_seconds / (step_seconds + seconds)
    return [(efficiency(2 * (ranks - 1) * chunk), "the latency is missing: each of the 2 (N - 1) steps "
                                                  "waits for it."),
            (efficiency(2 * (ranks - 1) * chunk + latency), "the latency comes once per step of the ring, "
                                                            "2 (N - 1) times."),
            (efficiency(2 * (ranks - 1) * (latency + gradient_bytes / bandwidth)),
             "each step sends one chunk, S / N bytes, not the whole gradient."),
            (right / step_seconds, "that is the all-reduce's time over the step's; the efficiency is "
                                   "t_step / (t_step + t_allreduce)."),
            (1 - right / step_seconds, "the step and the all-reduce add up: t_step / (t_step + t_allreduce)."),
            (efficiency(2 * (ranks - 1) * (latency + 8 * chunk)), "the bandwidth is given in bytes per "
                                                                  "second already.")]


EFFICIENCY_RULE = ("t_allreduce = 2 (N - 1) x (latency + S / (N x bandwidth)), efficiency = t_step / "
                   "(t_step + t_allreduce).")


@registers("10.3", "scaling efficiency at N GPUs", rule=EFFICIENCY_RULE)
def check_scaling_efficiency(scaling_efficiency):
    return number_cases(scaling_efficiency, cost.scaling_efficiency, EFFICIENCY_CASES, "",
                        _efficiency_mistakes)


# --- running mpiexec from a notebook ---------------------------------------------------------------------
def mpiexec():
    """The mpiexec beside this Python (the mpich wheel of the distributed extra puts it there),
    else the one on PATH, else None."""
    beside = pathlib.Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def run_command(arguments, ranks=None, timeout=120, threads=1):
    """Run ``python arguments`` (under ``mpiexec -n ranks`` when ``ranks`` is given) from the
    repository root, ``threads`` BLAS threads a process; print and return its output. A run
    past ``timeout`` seconds is stopped: a TimeoutError, never a notebook that hangs."""
    command = [sys.executable, *arguments]
    if ranks is not None:
        command = [mpiexec(), "-n", str(ranks), *command]
    environment = {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
                   **{name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                       "MKL_NUM_THREADS", "MINIGRAD_THREADS")}}
    try:
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, **environment}, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{' '.join(command[:6])} ... ran past {timeout} s and was stopped") from None
    print("$", *([f"mpiexec -n {ranks}"] if ranks else []), "python", *arguments)
    print((done.stdout + done.stderr).rstrip())
    if done.returncode != 0:
        raise RuntimeError(f"the command exited with status {done.returncode}")
    return done.stdout
