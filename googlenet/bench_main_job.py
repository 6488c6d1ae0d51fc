"""``python -m googlenet bench --main-job``: the README's main job run by minigrad and by
PyTorch, one after the other, with each side's held-out accuracy and wall time.

    python -m googlenet bench --main-job                    # the README's job, on the CPU
    python -m googlenet bench --main-job --device cuda      # the same on a GPU
    python -m googlenet bench --main-job --epochs 1 --width 0.0625 --held-out 0.9   # a smoke run

    python -m googlenet bench --main-job --repeats 3        # three rounds, the sides alternately

minigrad's side is the README's command, ``python -m googlenet train``; PyTorch's is
``benchmarks/torch_main_job.py``, which does the same job the same way (same data, split,
batches, starting weights, loss, optimizer, schedule and weight averaging: its docstring
says how). Each runs in a fresh process, with the same options, and its wall time is
that process's, from start to exit: the interpreter, the imports, reading the data,
training and the evaluation after every epoch. The training and evaluation seconds each
side reports are printed beside it.

On a shared machine the load of the neighbours changes from one minute to the next, and a
busy stretch that falls on one side's run moves the ratio of the walls by a tenth or more.
``--repeats N`` runs N rounds, the side that goes first changing from round to round
(minigrad first in the odd rounds), and gives each side's median seconds, the ratio of
those medians, and each round's own ratio.

``--out DIR`` keeps minigrad's run in DIR/minigrad/, PyTorch's result in DIR/pytorch.json
(with rounds: DIR/round-1/minigrad/, ...) and the comparison in DIR/main-job.json; without
it they go to a temporary folder, removed at the end.
"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from minigrad.bench import machine

from .bench_model import BENCHMARKS, format_load, torch_missing_reason
from .errors import UserError
from .train import TrainConfig

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent.parent


def commands(args, folder):
    """{side: the command line that runs the job}, with the options both sides share."""
    shared = ["--epochs", str(args.epochs), "--width", str(args.width), "--held-out", str(args.held_out),
              "--batch-size", str(args.batch), "--device", args.device.split(":")[0]]
    script = BENCHMARKS / "torch_main_job.py"
    if not script.exists():
        raise UserError(f"PyTorch's side of --main-job is {script}, which is missing: it comes with the "
                        f"repository, not with an installed package")
    return {"minigrad": [sys.executable, "-m", "googlenet", "train", "--no-progress",
                         "--out", os.path.join(folder, "minigrad"), *shared],
            "pytorch": [sys.executable, str(script), "--json", os.path.join(folder, "pytorch.json"), *shared]}


def run_side(name, command):
    """Run one side, its output printed line by line as it comes; (exit status, wall seconds)."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(PACKAGE_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=environment) as process:
        for line in process.stdout:
            print(f"   {name} | {line}", end="", flush=True)
    return process.returncode, time.perf_counter() - started


def read_history(name, folder):
    """One dict per epoch (val_accuracy, train_seconds, eval_seconds, ...) of a finished side."""
    if name == "minigrad":
        with open(os.path.join(folder, "minigrad", "metrics.jsonl"), encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    with open(os.path.join(folder, "pytorch.json"), encoding="utf-8") as handle:
        return json.load(handle)["history"]


def summary(history, wall):
    """A side's figures: final and best held-out accuracy, the first epoch at 97% or more,
    its training and evaluation seconds, and the process's wall time."""
    accuracies = [row["val_accuracy"] for row in history]
    return dict(accuracy=accuracies[-1], best=max(accuracies),
                first_97=next((row["epoch"] for row in history if row["val_accuracy"] >= 0.97), None),
                train_seconds=sum(row["train_seconds"] for row in history),
                eval_seconds=sum(row["eval_seconds"] for row in history), wall_seconds=wall,
                accuracies=accuracies)


def run_main_job(args):
    """Both sides, then the table; exit status 1 when a side failed."""
    if torch_missing_reason():
        raise UserError("--main-job runs the same job in PyTorch too, and PyTorch is not installed "
                        "(pip install torch==2.13.0)")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        return compare_sides(args, args.out)
    with tempfile.TemporaryDirectory(prefix="main-job-") as folder:
        return compare_sides(args, folder)


def compare_sides(args, folder):
    epochs = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    alternating = (f"; {args.repeats} rounds, the side that goes first changing from round to round"
                   if args.repeats > 1 else "")
    print(f"the README's main job side by side: digits at {TrainConfig.image_size}x{TrainConfig.image_size}, "
          f"{args.held_out:g} held out, {epochs} of batch {args.batch}, width {args.width:g}, device "
          f"{args.device}; each side a fresh process, one after the other{alternating}\n"
          f"machine: {machine.machine_line()}\nload average at the start: {format_load(machine.load_average())}",
          flush=True)
    rounds = []
    for number in range(1, args.repeats + 1):
        results = run_round(args, folder, number)
        if results is None:
            return 1
        rounds.append(results)
    results = rounds[0] if len(rounds) == 1 else median_sides(rounds)
    print("\n" + format_table(results))
    if len(rounds) > 1:
        print(format_rounds(rounds))
    print(f"load average at the end: {format_load(machine.load_average())}")
    if args.out:
        path = os.path.join(folder, "main-job.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(dict(machine=machine.machine(), device=args.device, epochs=args.epochs, width=args.width,
                           held_out=args.held_out, batch=args.batch, sides=results,
                           **(dict(rounds=rounds) if len(rounds) > 1 else {})), handle, indent=1)
        print(f"wrote {path} and each side's run beside it")
    return 0


def run_round(args, folder, number):
    """Round ``number`` of ``args.repeats``: both sides once, minigrad first in the odd rounds,
    each writing into ``folder`` (with several rounds, its round-N/). {side: its figures}, or
    None when a side failed (said on stderr)."""
    round_folder = folder if args.repeats == 1 else os.path.join(folder, f"round-{number}")
    os.makedirs(round_folder, exist_ok=True)               # PyTorch's side writes its result there
    sides = commands(args, round_folder)
    results = {}
    for name in sides if number % 2 else reversed(sides):
        status, wall = run_side(name if args.repeats == 1 else f"{name} (round {number})", sides[name])
        if status != 0:
            print(f"error: {name}'s run failed with exit status {status}", file=sys.stderr)
            return None
        results[name] = summary(read_history(name, round_folder), wall)
    return results


SECONDS = ("train_seconds", "eval_seconds", "wall_seconds")


def median_sides(rounds):
    """Each side's figures over the rounds: its seconds the medians of the rounds', the
    rest (accuracies, first epoch at 97%) the first round's, with ``accuracy_range`` the
    lowest and highest final accuracy of any round (the same when the runs are repeatable)."""
    sides = {}
    for name in rounds[0]:
        figures = dict(rounds[0][name])
        figures.update({key: statistics.median(r[name][key] for r in rounds) for key in SECONDS})
        finals = [r[name]["accuracy"] for r in rounds]
        figures["accuracy_range"] = [min(finals), max(finals)]
        sides[name] = figures
    return sides


def format_rounds(rounds):
    """One line per round: who went first, each side's final accuracy and wall seconds, their ratio."""
    lines = ["the rounds (the table above: each side's median seconds, the ratio of those medians, "
             "and round 1's accuracies):"]
    for number, r in enumerate(rounds, start=1):
        first = "minigrad" if number % 2 else "pytorch"
        ours, theirs = r["minigrad"], r["pytorch"]
        lines.append(f"  round {number} ({first} first): minigrad {ours['accuracy']:.2%} in {ours['wall_seconds']:.1f} s, "
                     f"pytorch {theirs['accuracy']:.2%} in {theirs['wall_seconds']:.1f} s; "
                     f"wall ratio {ours['wall_seconds'] / theirs['wall_seconds']:.2f}")
    return "\n".join(lines)


def format_table(results):
    """Both sides' accuracy and times, and the ratio of their wall times."""
    lines = [f"{'':<10}{'held-out':>10}{'best':>8}{'first >= 97%':>14}{'training s':>12}{'evaluation s':>14}"
             f"{'wall s':>9}"]
    for name, r in results.items():
        first = "-" if r["first_97"] is None else f"epoch {r['first_97']}"
        lines.append(f"{name:<10}{r['accuracy']:>10.2%}{r['best']:>8.2%}{first:>14}{r['train_seconds']:>12.1f}"
                     f"{r['eval_seconds']:>14.1f}{r['wall_seconds']:>9.1f}")
    ours, theirs = results["minigrad"], results["pytorch"]
    lines.append(f"minigrad's wall time / PyTorch's: {ours['wall_seconds'] / theirs['wall_seconds']:.2f} "
                 f"(training alone: {ours['train_seconds'] / theirs['train_seconds']:.2f})")
    return "\n".join(lines)
