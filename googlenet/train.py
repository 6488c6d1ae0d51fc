"""Train GoogLeNet: ``python -m googlenet train`` (digits, offline, a few minutes on a CPU).

The loop is the paper's (sections 5 and 6): SGD with momentum 0.9, the learning
rate x0.96 every 8 epochs, the loss of the main classifier plus 0.3 x each
auxiliary classifier's, and a running average of the weights for evaluation (the
paper's Polyak averaging; by default an exponential moving average, decay 0.99).
After every epoch it measures the held-out split, then writes to the output folder:

    metrics.jsonl    one JSON line per epoch: losses (train_loss is the paper's total,
                     train_main_loss the main classifier's alone, like val_loss),
                     accuracies, lr, seconds, images/s
    curves.png       loss and accuracy curves
    checkpoint.npz   weights, optimizer state and progress (``--resume`` continues it)

Every file is written whole or not at all (a temporary file, then a rename). Ctrl-C
finishes the current step, saves a checkpoint and exits; ``--resume`` then goes on
from that exact step. A run whose loss or weights stop being finite numbers (a
learning rate too large, say) stops at once, names the epoch and step, and saves
nothing: the last checkpoint written stays as it was. Training is a pure function of
the seed: batch order, augmentation and dropout masks are drawn from generators
seeded by (seed, epoch, step), so a resumed run ends with the same weights as one
never interrupted.

``mpiexec -n N python -m googlenet train`` trains on N processes (``minigrad.distributed``):
each takes its share of every global batch of N x ``--batch-size`` images, one all-reduce a
step sums the gradients, and only rank 0 writes and prints. The steps are those of one
process with N x ``--batch-size`` (dropout masks and augmentation are drawn per rank).
"""
import contextlib
import dataclasses
import math
import os
import signal
import sys
import time

import numpy

from minigrad import backend, distributed, nn, parallel
from minigrad import functional as F
from minigrad.autograd import Tensor, no_grad
from minigrad.checkpoint import load_weights, save_checkpoint
from minigrad.cuda_graph import TrainingStep
from minigrad.data import DataLoader, default_augmentation, load_dataset, shard_of
from minigrad.ops.loss import check_label_range
from minigrad.optim import SGD, Adam, WeightAverage, make_schedule

from .errors import (THREADS_HELP, USER_ERRORS, UserError, check_device, check_number, check_output_folder,
                     reports_user_errors, use_threads)
from .evaluation import evaluate
from .model import GoogLeNet, googlenet_loss
from .run_files import empty_sums, plot_history, read_run, write_metrics
from .sizes import row_sizes


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run; saved in the checkpoint as JSON."""
    data: str = "digits"            # digits | cifar10 | folder
    data_path: str = None
    image_size: int = 32            # digits are 8x8, upsampled to this
    channels: int = 3               # for image folders (digits have 1, CIFAR-10 3)
    held_out: float = 0.2           # share of the data kept out of training (not CIFAR-10)
    epochs: int = 20                # 15 stopped while the held-out accuracy still climbed (README)
    batch_size: int = 32
    optimizer: str = "sgd"          # sgd | adam
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 2e-4      # the released Caffe model's
    schedule: str = "paper"         # paper | step | cosine | constant
    average: float = 0.99           # weight averaging: None off, 0 the Polyak mean, else EMA decay
    width: float = 1.0              # channel multiplier (1.0 = Table 1)
    aux_heads: bool = True
    aux_weight: float = 0.3
    lrn: bool = True
    dropout: float = 0.4
    aux_dropout: float = 0.7
    augment: bool = False
    seed: int = 0
    device: str = "cpu"
    graph: bool = False             # on a GPU, replay each step as one CUDA graph (opt-in until
                                    # a GPU run has checked it: see README, GPU)
    out: str = "runs/googlenet"
    eval_batch_size: int = 200


CIFAR10_SIZE = 32


class TrainingDiverged(Exception):
    """The loss or the weights are no longer finite numbers: the run cannot go on, and
    nothing of it is saved (the last checkpoint on disk is the last good one)."""


def model_options(config, num_classes, channels):
    """The keyword arguments of GoogLeNet for this run (stored in the checkpoint)."""
    return dict(num_classes=num_classes, in_channels=channels, width=config.width,
                aux_heads=config.aux_heads, lrn=config.lrn, dropout=config.dropout,
                aux_dropout=config.aux_dropout, seed=config.seed, input_size=config.image_size)


def make_optimizer(config, params):
    if config.optimizer == "sgd":
        return SGD(params, lr=config.lr, momentum=config.momentum,
                   weight_decay=config.weight_decay, nesterov=config.nesterov)
    if config.optimizer == "adam":
        return Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    raise UserError(f"unknown optimizer {config.optimizer!r}: expected 'sgd' or 'adam'")


class Trainer:
    """One training run: the model, its optimizer and data, and where it has got to.

    ``comm`` (``minigrad.distributed``): data-parallel training over the ranks ``mpiexec``
    started. Each rank takes its share of every global batch of ``batch_size`` x ranks
    images and of the held-out split; one all-reduce a step sums the gradients; only rank 0
    writes files and reports. Without it, one process.
    """

    def __init__(self, config, data=None, resume=None, progress=True, comm=None):
        self.comm = comm if comm is not None else distributed.SingleProcess()
        self.config, self.show_progress = config, progress
        self.device = self.comm.device_for(check_device(config.device))
        train_set, held_out = data if data is not None else load_dataset(
            config.data, config.data_path, config.image_size, config.held_out, config.seed,
            config.channels)
        mean, std = train_set.channel_stats()
        augmentation = default_augmentation(config.data) if config.augment else None
        rank, ranks = self.comm.rank, self.comm.size
        self.train_loader = DataLoader(train_set, config.batch_size * ranks, shuffle=True, seed=config.seed,
                                       augmentation=augmentation, mean=mean, std=std, shard=(rank, ranks))
        self.held_out_loader = DataLoader(held_out.subset(shard_of(numpy.arange(len(held_out)), rank, ranks)),
                                          config.eval_batch_size, mean=mean, std=std)
        self.options = model_options(config, len(train_set.classes), train_set.channels)
        self.model = GoogLeNet(**self.options).to(self.device)
        # Every parameter, gradient, momentum and average in one flat buffer each (layers hold
        # views): backward writes each gradient into its slice (no fill of zeros between steps:
        # zero_grad sets them to None), each update is a few whole-array expressions, and the
        # ranks exchange the weights (once) and the gradients (every step) in one call each.
        self.model.flatten_parameters()
        self.comm.bcast_data(self.model)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.schedule = make_schedule(config.schedule, config.lr, config.epochs)
        self.average = None
        if config.average is not None:
            self.average = WeightAverage(self.model.parameters(), config.average or None)
        self.dropouts = [m for m in self.model.modules() if isinstance(m, nn.Dropout)]
        self.gpu_step = None
        if self.device != "cpu" and self.comm.size == 1:    # several ranks: the eager step and its all-reduce
            self.gpu_step = TrainingStep(self.model, self.losses_and_hits, self.optimizer, self.average,
                                         graph=config.graph, dropout_seed=config.seed)
        self.data_info = dict(name=config.data, title=train_set.name.split(" (")[0],
                              classes=list(train_set.classes),
                              mean=mean.tolist(), std=std.tolist(), image_size=train_set.image_size,
                              channels=train_set.channels)
        self.epoch, self.step, self.history = 0, 0, []
        self.sums = empty_sums()
        self.stop_requested = False
        if resume is not None:
            self.restore(resume)

    # --- checkpoints ------------------------------------------------------------------
    @property
    def paths(self):
        out = self.config.out
        return {name: os.path.join(out, name) for name in ("checkpoint.npz", "metrics.jsonl", "curves.png")}

    def save(self):
        """Write the checkpoint (rank 0 only: the ranks' weights are the same)."""
        if self.comm.rank != 0:
            return
        progress = {"epoch": self.epoch, "step": self.step, "steps": len(self.train_loader),
                    "images": len(self.train_loader.dataset), **self.sums}
        config = {"train": dataclasses.asdict(self.config), "model": self.options,
                  "data": self.data_info}
        save_checkpoint(self.paths["checkpoint.npz"], self.model.state_dict(),
                        self.optimizer.state_dict(),
                        self.average.state_dict() if self.average else None,
                        {k: numpy.array(v) for k, v in progress.items()}, config)

    def restore(self, path):
        checkpoint, history = read_run(path)
        load_weights(self.model, checkpoint["model"], source=path)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.average is not None and checkpoint["average"]:
            self.average.load_state_dict(checkpoint["average"])
        progress = checkpoint["progress"]
        self.epoch, self.step = int(progress["epoch"]), int(progress["step"])
        self.sums = {key: type(zero)(progress[key]) for key, zero in empty_sums().items()}
        self.history = [row for row in history if row["epoch"] <= self.epoch]
        if self.step and not self.same_batching(progress):
            print(f"note: {path} stopped at step {self.step} of epoch {self.epoch + 1}, but the batch "
                  f"size or the training data changed since; epoch {self.epoch + 1} starts again "
                  f"from its first batch", file=sys.stderr)
            self.step, self.sums = 0, empty_sums()

    def same_batching(self, progress):
        """Whether the saved mid-epoch position still means the same batches: the same
        number of steps and images (checkpoints older than these entries: the step fits)."""
        steps, images = len(self.train_loader), len(self.train_loader.dataset)
        if "steps" not in progress or "images" not in progress:
            return self.step < steps
        return (int(progress["steps"]), int(progress["images"])) == (steps, images)

    # --- the loop ----------------------------------------------------------------------
    def run(self, after_step=None):
        """Train from where the run stands to ``config.epochs``. Returns the history
        (one dict per epoch). ``after_step(trainer)`` is called after every step."""
        steps = len(self.train_loader)
        if self.comm.rank == 0:
            os.makedirs(self.config.out, exist_ok=True)
            bar = progress_bar(self.config.epochs * steps, self.epoch * steps + self.step, self.show_progress)
        else:
            bar = SilentBar()
        with bar, stop_on_ctrl_c(self):
            while self.epoch < self.config.epochs and not self.stop_agreed():
                self.train_epoch(bar, after_step)
                if self.step == steps:              # the epoch is complete
                    self.finish_epoch(bar)
                elif not self.stop_requested:       # never loop without progress
                    raise RuntimeError(f"epoch {self.epoch + 1} ended at step {self.step} of {steps}")
        if self.stop_requested:
            self.check_weights_are_finite()
            self.save()
            bar.write(f"stopped at epoch {self.epoch + 1}, step {self.step}: checkpoint saved; "
                      f"continue with --resume {self.paths['checkpoint.npz']}")
        return self.history

    def train_epoch(self, bar, after_step):
        self.model.train()
        steps = len(self.train_loader)
        bar.set_description(f"epoch {self.epoch + 1}/{self.config.epochs}")
        for images, labels in self.train_loader.batches(self.epoch, start=self.step):
            started = time.perf_counter()
            loss, main_loss, correct = self.train_step(images, labels)
            # every rank's share summed: the global batch's totals, the same on every rank
            loss_sum, main_loss_sum, correct, seen = self.comm.sum_numbers(
                [loss * len(labels), main_loss * len(labels), correct, len(labels)])
            if not math.isfinite(loss_sum):
                raise TrainingDiverged(f"the training loss became {loss_sum / seen} at epoch {self.epoch + 1}, "
                                       f"step {self.step + 1} of {steps}; {self.nothing_saved()}")
            self.sums["seconds"] += time.perf_counter() - started
            self.sums["loss"] += loss_sum
            self.sums["main_loss"] += main_loss_sum
            self.sums["correct"] += int(correct)
            self.sums["seen"] += int(seen)
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{self.sums['loss'] / self.sums['seen']:.3f}",
                            acc=f"{self.sums['correct'] / self.sums['seen']:.3f}",
                            img_s=f"{self.sums['seen'] / self.sums['seconds']:.0f}")
            if after_step is not None:
                after_step(self)
            if self.stop_agreed() and self.step < steps:
                return

    def stop_agreed(self):
        """Whether to stop now. A stop asked on any rank (Ctrl-C reaches each at its own
        moment) is agreed on by all in one exchange, so that every rank stops after the
        same step; the answer is that exchange's, whatever arrives after it."""
        stop = self.comm.any(self.stop_requested)
        self.stop_requested = self.stop_requested or stop
        return stop

    def train_step(self, images, labels):
        """One SGD step. Returns the loss, the main classifier's share of it (its
        cross-entropy, comparable with the held-out loss) and how many it got right, on
        this rank's share of the batch."""
        steps = len(self.train_loader)
        self.optimizer.lr = self.schedule(self.epoch + self.step / steps)
        if self.gpu_step is not None:           # the same step, replayed as one CUDA graph
            return self.train_step_on_gpu(images, labels)
        self.optimizer.zero_grad()
        result = (0.0, 0.0, 0)          # fewer images than ranks: this rank only joins the sum
        if len(labels):
            result = self.forward_backward(images, labels)
        self.comm.allreduce_grad(self.model)
        self.optimizer.step()
        if self.average is not None:
            self.average.update()
        return result

    def forward_backward(self, images, labels):
        """The paper's loss on a batch, and its gradients (weighted by this rank's share of
        the global batch, so that the ranks' summed gradients are those of the mean loss over
        the whole global batch); the loss, the main classifier's share and the count right."""
        rank_key = [] if self.comm.size == 1 else [self.comm.rank]      # each rank its own masks
        for index, dropout in enumerate(self.dropouts):
            dropout.reseed([self.config.seed, self.epoch, self.step, index, *rank_key])
        output = self.model(Tensor(images, device=self.device))
        loss, main_loss, correct = self.losses_and_hits(output, backend.to_device(labels, self.device))
        loss.backward(len(labels) / self.train_loader.images_in_batch(self.step))
        return loss.item(), main_loss.item(), int(correct)

    def losses_and_hits(self, output, labels):
        """The paper's loss, the main classifier's cross-entropy and the count of right
        answers, all on the model's device: nothing is read back (a CUDA graph replays it)."""
        loss = googlenet_loss(output, labels, self.config.aux_weight)
        logits = output.logits if hasattr(output, "logits") else output
        with no_grad():
            main_loss = F.cross_entropy(logits, labels)
        correct = (logits.data.argmax(axis=1) == labels).sum()
        return loss, main_loss, correct

    def train_step_on_gpu(self, images, labels):
        """The step as ``minigrad.cuda_graph.TrainingStep`` runs it: replayed from a CUDA graph
        (eagerly with --no-graph, for the short last batch, and for Adam). Its dropout masks
        come from counter generators keyed by the seed and the step count, not from the
        per-step reseeding of the CPU path. The labels are checked here, on the host: a
        replay reads no value back."""
        check_label_range("cross_entropy", labels, self.options["num_classes"])
        loss, main_loss, correct = self.gpu_step(images, labels)
        return float(loss), float(main_loss), int(correct)

    def check_weights_are_finite(self):
        """A TrainingDiverged error when any weight is NaN or infinite (a finite loss can
        still come with an infinite gradient), so that such weights are never saved."""
        for name, parameter in self.model.named_parameters():
            xp = backend.get_array_module(parameter.data)
            if not bool(xp.isfinite(parameter.data).all()):
                raise TrainingDiverged(f"the weights {name} are no longer finite after epoch "
                                       f"{self.epoch + 1}, step {self.step}; {self.nothing_saved()}")

    def nothing_saved(self):
        """What is left on disk when a run stops without saving."""
        path = self.paths["checkpoint.npz"]
        if os.path.exists(path):
            return f"nothing was saved: {path} still holds the last good checkpoint"
        return "nothing was saved (no checkpoint had been written yet)"

    def finish_epoch(self, bar):
        self.check_weights_are_finite()
        started = time.perf_counter()
        with self.average.swapped_in() if self.average else contextlib.nullcontext():
            loss, accuracy = self.evaluate_held_out()
        seen = self.sums["seen"]
        row = dict(epoch=self.epoch + 1, train_loss=self.sums["loss"] / seen,
                   train_main_loss=self.sums["main_loss"] / seen,
                   train_accuracy=self.sums["correct"] / seen, val_loss=loss,
                   val_accuracy=accuracy, lr=self.optimizer.lr,
                   train_seconds=self.sums["seconds"], eval_seconds=time.perf_counter() - started,
                   images_per_second=self.sums["seen"] / self.sums["seconds"])
        self.history.append(row)
        bar.write(f"epoch {row['epoch']:>3}: train loss {row['train_loss']:.4f} (main "
                  f"{row['train_main_loss']:.4f}) acc {row['train_accuracy']:.4f} | held-out loss "
                  f"{loss:.4f} acc {accuracy:.4f} | {row['images_per_second']:.0f} img/s")
        self.epoch, self.step = self.epoch + 1, 0
        self.sums = empty_sums()
        if self.comm.rank == 0:
            write_metrics(self.paths["metrics.jsonl"], self.history)
            plot_history(self.paths["curves.png"], self.history)
        self.save()

    def evaluate_held_out(self):
        """(mean loss, accuracy) over the held-out split, each rank on its share of it."""
        count = len(self.held_out_loader.dataset)
        loss_sum, correct = 0.0, 0
        if count:
            loss, _, predictions = evaluate(self.model, self.held_out_loader, self.device)
            loss_sum, correct = loss * count, int((predictions == self.held_out_loader.dataset.labels).sum())
        loss_sum, correct, count = self.comm.sum_numbers([loss_sum, correct, count])
        return loss_sum / count, correct / count


# --- helpers: progress bar, Ctrl-C -------------------------------------------------------
def progress_bar(total, initial, enabled):
    """One bar for the whole run (so its ETA is the run's); off when not on a terminal."""
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="step", disable=None if enabled else True,
                dynamic_ncols=True)


class SilentBar:
    """The progress bar of every rank but 0: only rank 0 reports."""

    def __enter__(self):
        return self

    def __exit__(self, *error):
        return False

    def update(self, steps=1):
        pass

    def set_description(self, text):
        pass

    def set_postfix(self, **values):
        pass

    def write(self, text):
        pass


@contextlib.contextmanager
def stop_on_ctrl_c(trainer):
    """The first Ctrl-C asks the trainer to stop after the current step (and save);
    a second one interrupts at once."""
    def handler(signum, frame):
        trainer.stop_requested = True
        signal.signal(signal.SIGINT, previous)
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:              # not the main thread: no handler, Ctrl-C as usual
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --- the command line ---------------------------------------------------------------------
HELP = {
    "data": "data set: digits (bundled, offline), cifar10 or folder",
    "data_path": "CIFAR-10's python batches folder, or a folder with one sub-folder per class",
    "image_size": "side of the square images the network sees",
    "channels": "1 (grey) or 3 (colour), for --data folder",
    "held_out": "share of the data held out for evaluation (digits, folder)",
    "epochs": "passes over the training data",
    "batch_size": "images per step",
    "optimizer": "sgd or adam",
    "lr": "initial learning rate",
    "momentum": "SGD momentum (the paper: 0.9)",
    "nesterov": "Nesterov momentum",
    "weight_decay": "L2 penalty on the weights (not the biases)",
    "schedule": "learning-rate schedule: paper (x0.96 every 8 epochs), step, cosine or constant",
    "average": "evaluate with a running average of the weights: an EMA decay such as 0.99, "
               "0 for the Polyak mean of all steps, none for the last weights",
    "width": "channel multiplier; 1.0 is the paper's Table 1",
    "aux_heads": "the two auxiliary classifiers",
    "aux_weight": "weight of each auxiliary loss (the paper: 0.3)",
    "lrn": "the two local response normalizations",
    "dropout": "dropout before the main classifier",
    "aux_dropout": "dropout in the auxiliary classifiers",
    "augment": "random crops and photometric jitter (and flips, except for digits)",
    "seed": "seed of the weights, the batch order, augmentation and dropout",
    "device": "cpu or cuda",
    "graph": "on a GPU, replay each training step as one CUDA graph (off by default until its "
             "first GPU run; --no-graph launches every kernel from Python)",
    "out": "output folder for checkpoint.npz, metrics.jsonl and curves.png",
    "eval_batch_size": "images per step when evaluating",
}
DESCRIPTION = """Train GoogLeNet with the paper's loss (main + 0.3 x each auxiliary classifier),
evaluate the held-out split after every epoch, and write checkpoint.npz, metrics.jsonl
and curves.png to --out. Ctrl-C saves a checkpoint; --resume continues it exactly."""


def add_parser(subparsers):
    """Register ``train`` on an argparse sub-parser collection."""
    import argparse
    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "train", help="train GoogLeNet (default: the digits, a few minutes on a CPU)",
        description=DESCRIPTION, argument_default=argparse.SUPPRESS)
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        text = f"{HELP[field.name]} (default: {getattr(defaults, field.name)})"
        if field.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=text)
        elif field.name == "average":
            parser.add_argument(flag, type=_float_or_none, metavar="DECAY", help=text)
        else:
            parser.add_argument(flag, type=field.type, metavar=field.name.upper(), help=text)
    parser.add_argument("--resume", metavar="CHECKPOINT", default=None,
                        help="continue the run saved in CHECKPOINT (its settings, unless given here)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=True,
                        help="no progress bar (one line per epoch only)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=THREADS_HELP)
    parser.set_defaults(func=run)
    return parser


def _float_or_none(text):
    return None if text.lower() in ("none", "off") else float(text)


def config_from_args(args):
    """TrainConfig: the defaults, or the resumed run's settings, with the flags given on top."""
    names = {field.name for field in dataclasses.fields(TrainConfig)}
    settings = {}
    if args.resume:
        saved = read_run(args.resume)[0]["config"]["train"]
        settings.update({k: v for k, v in saved.items() if k in names})
    settings.update({k: v for k, v in vars(args).items() if k in names})
    config = TrainConfig(**settings)
    check_numbers(config)
    if config.data == "cifar10" and config.image_size != CIFAR10_SIZE:
        raise UserError(f"--image-size {config.image_size}: CIFAR-10's images are {CIFAR10_SIZE}x"
                        f"{CIFAR10_SIZE}; leave --image-size out (or give {CIFAR10_SIZE})")
    check_output_folder("--out", config.out)
    return config


# The range of every number of a run (the keywords of errors.check_number); "average" may
# also be None (no averaging).
NUMBER_RANGES = {
    "image_size": dict(low=1), "epochs": dict(low=1), "batch_size": dict(low=1),
    "eval_batch_size": dict(low=1), "seed": dict(low=0),
    "held_out": dict(low=0, high=1, low_open=True, high_open=True),
    "lr": dict(low=0, low_open=True), "width": dict(low=0, low_open=True),
    "weight_decay": dict(low=0), "aux_weight": dict(low=0),
    "momentum": dict(low=0, high=1, high_open=True), "average": dict(low=0, high=1, high_open=True),
    "dropout": dict(low=0, high=1, high_open=True), "aux_dropout": dict(low=0, high=1, high_open=True),
}


def check_numbers(config):
    """Every number of the run in its range (NaN and infinities refused), before any data
    is read: a UserError naming the option otherwise."""
    for name, limits in NUMBER_RANGES.items():
        value = getattr(config, name)
        if not (name == "average" and value is None):
            check_number("--" + name.replace("_", "-"), value, **limits)
    if config.channels not in (1, 3):
        raise UserError(f"--channels must be 1 (grey) or 3 (colour), got {config.channels}")
    try:
        row_sizes(config.image_size)              # a ValueError naming the smallest usable input
    except ValueError as error:
        raise UserError(f"--image-size {config.image_size}: {error}") from None


@reports_user_errors
def run(args):
    """``python -m googlenet train``: returns the exit status (2: bad options or data; 1: the
    loss diverged; 130: stopped by Ctrl-C). Under ``mpiexec -n N`` the N processes train
    together (``Trainer``'s ``comm``); an error on one rank ends all of them, naming it."""
    config = config_from_args(args)
    use_threads(args.threads)
    comm = distributed.communicator(check_device(config.device))
    share_the_cores(comm, args.threads)
    with distributed.ends_every_rank_on_error(comm, agreed=(TrainingDiverged,),
                                              statuses={error: 2 for error in USER_ERRORS}):
        return train(config, comm, args)


def share_the_cores(comm, threads):
    """Ranks that share a machine split its cores between their kernel threads, unless
    --threads or MINIGRAD_THREADS chose a count: two ranks with every core each would put two
    threads on every core. (BLAS picks its own thread count: OMP_NUM_THREADS sets it.)"""
    if comm.local_size > 1 and threads is None and not os.environ.get(parallel.ENVIRONMENT_VARIABLE):
        parallel.set_thread_count(max(1, parallel.available_cores() // comm.local_size))


def train(config, comm, args):
    """The run itself, on the ranks of ``comm``; only rank 0 prints."""
    say = print if comm.rank == 0 else (lambda *text, **where: None)
    if comm.size > 1:
        say(f"{comm.describe()}; {parallel.thread_count()} kernel threads each")
    try:
        trainer = Trainer(config, resume=args.resume, progress=args.progress, comm=comm)
    except ValueError as error:
        if isinstance(error, USER_ERRORS):
            raise
        raise UserError(str(error)) from None       # e.g. an image size the model refuses
    try:
        history = trainer.run()
    except TrainingDiverged as error:
        say(f"error: {error} (a smaller --lr usually helps)", file=sys.stderr)
        return 1
    if trainer.stop_requested:
        return 130
    if history:
        last = history[-1]
        say(f"done: held-out accuracy {last['val_accuracy']:.4f} after {last['epoch']} epochs; "
            f"outputs in {config.out}")
    return 0
