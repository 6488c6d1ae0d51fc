"""What the all-reduce costs: a cost model for data-parallel training on N GPUs.

A ring all-reduce (Patarasuk and Yuan, 2009; what NCCL runs across nodes) splits the
gradient of S bytes into N chunks and passes them around a ring of N ranks in 2 (N - 1)
steps: N - 1 steps that add (reduce-scatter: afterwards each rank holds one chunk summed
over all ranks), then N - 1 steps that copy (all-gather: afterwards every rank holds every
summed chunk). In each step every rank sends one chunk of S / N bytes to its neighbour
while receiving one, all links busy at once, so each rank sends

    2 (N - 1) / N x S  bytes            (ring_allreduce_bytes)

which hardly grows with N: 1 x S for 2 ranks, 1.97 x S for 64. With a link of bandwidth
b (bytes/s, each direction) and a latency a per step,

    t_allreduce = 2 (N - 1) x (a + S / (N b))           (ring_allreduce_seconds)

and if the all-reduce starts when the backward pass has finished (as here: no overlap),
N GPUs process N x B images in t_step + t_allreduce, so the scaling efficiency, their
images/s over N times one GPU's, is

    t_step / (t_step + t_allreduce)                     (scaling_efficiency)

The links (``LINKS``) are nominal figures, per GPU and per direction: a ring over several
machines runs at its slowest link, and measured all-reduces reach about 80-90% of the
nominal bandwidth. Frameworks that overlap the all-reduce with the backward pass (in
buckets, as PyTorch's DistributedDataParallel) hide part of it: the efficiency then lies
between this figure and 1.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Link:
    name: str
    bandwidth: float        # bytes per second, each direction
    latency: float          # seconds per ring step


LINKS = (
    Link("NVLink 4 (H100/H200, within a machine)", 450e9, 3e-6),
    Link("InfiniBand NDR (400 Gb/s per GPU)", 50e9, 5e-6),
    Link("100 Gb Ethernet", 12.5e9, 20e-6),
    Link("10 Gb Ethernet", 1.25e9, 50e-6),
)


def ring_allreduce_bytes(gradient_bytes, ranks):
    """Bytes each rank sends (and receives) in one ring all-reduce of ``gradient_bytes``."""
    return 2 * (ranks - 1) / ranks * gradient_bytes


def ring_allreduce_seconds(gradient_bytes, ranks, bandwidth, latency=0.0):
    """Seconds for one ring all-reduce: 2 (N - 1) steps, each one chunk of S / N bytes."""
    return 2 * (ranks - 1) * (latency + gradient_bytes / (ranks * bandwidth))


def scaling_efficiency(step_seconds, gradient_bytes, ranks, bandwidth, latency=0.0):
    """N GPUs' images/s over N times one GPU's, when each step's all-reduce follows its
    backward pass: t_step / (t_step + t_allreduce). 1 for one GPU."""
    communication = ring_allreduce_seconds(gradient_bytes, ranks, bandwidth, latency)
    return step_seconds / (step_seconds + communication)


def efficiency_table(step_seconds, gradient_bytes, ranks=(2, 4, 8, 16, 32, 64), links=LINKS):
    """[(link, [efficiency at each number of ranks])], for printing or plotting."""
    return [(link, [scaling_efficiency(step_seconds, gradient_bytes, n, link.bandwidth, link.latency)
                    for n in ranks]) for link in links]
