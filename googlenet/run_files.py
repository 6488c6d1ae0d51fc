"""The files of a training run, and checking them before any slow work.

    checkpoint.npz   weights, optimizer state, settings and progress (``empty_sums``:
                     what an epoch adds up as it goes, saved so a resumed epoch reports
                     the same totals as an uninterrupted one)
    metrics.jsonl    one JSON line per epoch (``write_metrics`` / ``read_metrics``)
    curves.png       the loss and accuracy curves (``plot_history``)

``read_run`` reads the run ``--resume`` names (``errors.check_output_folder`` checks the
folder ``--out`` names); anything this loop did not write is a one-line error naming the file.
"""
import json
import os

from minigrad.checkpoint import CheckpointError, atomic_path, load_checkpoint

from .errors import UserError


def empty_sums():
    """What an epoch adds up as it goes (saved in checkpoints, so a resumed epoch
    reports the same totals as an uninterrupted one)."""
    return dict(loss=0.0, main_loss=0.0, correct=0, seen=0, seconds=0.0)


def write_metrics(path, history):
    with atomic_path(path) as temporary:
        with open(temporary, "w") as file:
            file.writelines(json.dumps(row) + "\n" for row in history)


METRIC_KEYS = ("epoch", "train_loss", "train_main_loss", "val_loss", "train_accuracy", "val_accuracy")


def read_metrics(path):
    """The rows of ``metrics.jsonl`` (none if it does not exist); a UserError naming the
    file and line for anything that is not a row this loop wrote."""
    if not os.path.isfile(path):
        return []
    rows = []
    with open(path, encoding="utf-8", errors="replace") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as error:   # RecursionError: [[[[...]]]]
                reason = error.msg if isinstance(error, json.JSONDecodeError) else "nested too deeply"
                raise UserError(f"{path}, line {number}: not JSON ({reason}); the file is damaged, "
                                f"remove it to resume without the earlier epochs' metrics") from None
            if not isinstance(row, dict) or not all(key in row for key in METRIC_KEYS) \
                    or not isinstance(row["epoch"], int):
                raise UserError(f"{path}, line {number}: expected an object with {', '.join(METRIC_KEYS)}")
            rows.append(row)
    return rows


def read_run(path):
    """(checkpoint, metrics rows) of the run ``--resume`` names, checked before any slow work:
    a CheckpointError or UserError naming the file for anything this loop did not write."""
    checkpoint = load_checkpoint(path)
    config = checkpoint["config"]
    if not isinstance(config.get("train"), dict):        # (load_checkpoint: config is an object)
        raise CheckpointError(f"{path}: not a GoogLeNet training checkpoint (its settings have no "
                              f"'train' entry)")
    progress = checkpoint["progress"]
    for key in ("epoch", "step", *empty_sums()):
        value = progress.get(key)
        if value is None or value.shape != () or value.dtype.kind not in "iuf":
            raise CheckpointError(f"{path}: progress/{key} is missing or not a number: "
                                  f"not a checkpoint this training loop wrote")
    if min(int(progress["epoch"]), int(progress["step"])) < 0:
        raise CheckpointError(f"{path}: progress/epoch and progress/step must be at least 0")
    return checkpoint, read_metrics(os.path.join(os.path.dirname(path), "metrics.jsonl"))


def plot_history(path, history):
    from minigrad.viz import plot_curves
    with atomic_path(path) as temporary:
        plot_curves([{k: row[k] for k in METRIC_KEYS} for row in history], temporary)
