"""Lesson 8's numbers recorded on a GPU, elsewhere (``benchmarks/``, its README names the
machine). Lesson 8 reads three kinds of file, each with a header line:

* ``benchmarks/gpu_ops.csv`` (``RECORDED_GPU``, ``load_recorded``), one row per op:

      layer,batch,image_size,fwd_ms,bwd_ms,device,kernels,peak_gflops,bandwidth_gbs
      conv1,8,224,0.326784,0.68912,cuda,cuda,47131.1,3788.89

  ``layer`` names an op of the network's op list (``googlenet_op_shapes(batch,
  image_size)``: that function is passed in, minigrad knows no network); ``fwd_ms`` is its
  forward time in milliseconds. The other columns may be absent or empty: ``device`` labels
  the points, ``peak_gflops`` and ``bandwidth_gbs`` (the GPU's own two roofs, measured as
  ``bench.gemm_peak_gflops`` / ``bench.copy_bandwidth_gbs`` do on the CPU) draw its roofline
  beside the CPU's.
* ``benchmarks/ops-batch8.csv`` and ``ops-batch32.csv`` (``load_comparison``): the same
  columns, every op in every configuration of ``python -m googlenet bench --compare
  --torch`` (a configuration is a ``device`` and a ``kernels`` value).
* ``benchmarks/training-step.csv`` (``load_training_steps``): ``batch, implementation,
  cpu_side_ms, gpu_ms`` of one whole training step.
"""
import csv
import pathlib
from typing import List, NamedTuple, Optional

ROOT = pathlib.Path(__file__).resolve().parents[1]                  # the repository
RECORDED_GPU = ROOT / "benchmarks" / "gpu_ops.csv"


# --- GPU numbers recorded elsewhere ----------------------------------------------------------
def _rows(path, required):
    """The rows of a CSV file as dicts, each with its line number under "line"; a ValueError
    naming the file for a missing column or no rows."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}, line 1: no column {', '.join(missing)} (expected at least "
                             f"{','.join(required)})")
        rows = [dict(row, line=reader.line_num) for row in reader]
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


class Recorded(NamedTuple):
    """The recorded benchmark of another machine (see the module docstring)."""
    path: str
    device: str                          # "GPU" when the file does not say
    points: List[tuple]                  # [(OpShape, forward seconds)]
    peak_gflops: Optional[float]         # its GEMM roof, when recorded
    bandwidth_gbs: Optional[float]       # its memory roof, when recorded


REQUIRED_COLUMNS = ("layer", "batch", "image_size", "fwd_ms")


def load_recorded(path, op_shapes):
    """The ``Recorded`` numbers of the CSV file at ``path``, None when there is no such file.

    ``op_shapes(batch, image_size) -> [OpShape]`` lists the network's ops (e.g.
    ``googlenet.bench.googlenet_op_shapes``); each row's ``layer`` must be one of them.
    A malformed file is a ValueError naming the file and the line.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    points, devices, roofs, lists = [], [], {"peak_gflops": None, "bandwidth_gbs": None}, {}
    for row in _rows(path, REQUIRED_COLUMNS):
        where = f"{path}, line {row['line']}"
        try:
            batch, size, fwd_ms = int(row["batch"]), int(row["image_size"]), float(row["fwd_ms"])
            for column in roofs:
                if row.get(column) and roofs[column] is None:
                    roofs[column] = float(row[column])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        if not fwd_ms > 0:
            raise ValueError(f"{where}: fwd_ms must be a positive time, got {row['fwd_ms']}")
        if (batch, size) not in lists:
            lists[batch, size] = {s.name: s for s in op_shapes(batch, size)}
        shape = lists[batch, size].get(row["layer"])
        if shape is None:
            raise ValueError(f"{where}: no op called {row['layer']!r} at batch {batch}, {size}x{size}")
        points.append((shape, fwd_ms / 1e3))
        devices.append(row.get("device") or "GPU")
    return Recorded(str(path), devices[0], points, roofs["peak_gflops"], roofs["bandwidth_gbs"])


COMPARISON_CSVS = [ROOT / "benchmarks" / f"ops-batch{batch}.csv" for batch in (8, 32)]
TRAINING_STEPS = ROOT / "benchmarks" / "training-step.csv"


class Comparison(NamedTuple):
    """Every op of a network timed in every configuration of one run (``load_comparison``)."""
    path: str
    batch: int
    image_size: int
    shapes: List                    # the OpShapes, in the file's order
    results: dict                   # {(device, kernels): {layer: {"fwd": s, "bwd": s}}}
    roofs: dict                     # {device: (GEMM peak GFLOP/s, bandwidth GB/s)}


def load_comparison(path, op_shapes):
    """The ``Comparison`` in the CSV file at ``path`` (``python -m googlenet bench --compare
    --torch --out DIR`` writes one: DIR/ops.csv), None when there is no such file.
    Every row must be at the same batch and image size, and every configuration must time
    the same ops; ``op_shapes(batch, image_size)`` lists the network's ops."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    rows = _rows(path, REQUIRED_COLUMNS + ("bwd_ms", "device", "kernels"))
    sizes = {(row["batch"], row["image_size"]) for row in rows}
    if len(sizes) != 1:
        raise ValueError(f"{path}: rows at {len(sizes)} batch and image sizes, expected one")
    try:
        batch, image_size = (int(v) for v in sizes.pop())
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    known = {s.name: s for s in op_shapes(batch, image_size)}
    results, roofs, order = {}, {}, []
    for row in rows:
        where = f"{path}, line {row['line']}"
        if row["layer"] not in known:
            raise ValueError(f"{where}: no op called {row['layer']!r} at batch {batch}, {image_size}x{image_size}")
        try:
            fwd, bwd = float(row["fwd_ms"]) / 1e3, float(row["bwd_ms"]) / 1e3
            if row.get("peak_gflops") and row.get("bandwidth_gbs"):
                roofs.setdefault(row["device"], (float(row["peak_gflops"]), float(row["bandwidth_gbs"])))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if not (fwd > 0 and bwd > 0):
            raise ValueError(f"{where}: fwd_ms and bwd_ms must be positive times")
        results.setdefault((row["device"], row["kernels"]), {})[row["layer"]] = {"fwd": fwd, "bwd": bwd}
        if row["layer"] not in order:
            order.append(row["layer"])
    for configuration, timings in results.items():
        if set(timings) != set(order):
            raise ValueError(f"{path}: {' '.join(configuration)} times {len(timings)} ops, the file {len(order)}")
    return Comparison(str(path), batch, image_size, [known[name] for name in order], results, roofs)


class TrainingStep(NamedTuple):
    """One whole training step: the time the CPU spends issuing it, and the GPU's time."""
    batch: int
    implementation: str
    cpu_side_ms: float
    gpu_ms: float


def load_training_steps(path):
    """[TrainingStep] of the CSV file at ``path`` (columns batch, implementation, cpu_side_ms,
    gpu_ms), None when there is no such file."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    steps = []
    for row in _rows(path, TrainingStep._fields):
        try:
            step = TrainingStep(int(row["batch"]), row["implementation"], float(row["cpu_side_ms"]),
                                float(row["gpu_ms"]))
        except ValueError as error:
            raise ValueError(f"{path}, line {row['line']}: {error}") from None
        if not (step.cpu_side_ms > 0 and step.gpu_ms > 0):
            raise ValueError(f"{path}, line {row['line']}: times must be positive")
        steps.append(step)
    return steps


def step_bound(step, margin=0.05):
    """"launch-bound" when the GPU's time is the CPU side's (within ``margin``): the GPU
    finished each kernel before the next was launched and waited for Python; else "GPU-bound"."""
    return "launch-bound" if step.gpu_ms <= (1 + margin) * step.cpu_side_ms else "GPU-bound"
