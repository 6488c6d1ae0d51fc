"""The README's main job in PyTorch: what ``python -m googlenet train`` does, the same way.

    python benchmarks/torch_main_job.py [--epochs 20] [--width 1] [--held-out 0.2]
                                        [--batch-size 32] [--device cpu] [--json PATH]

``python -m googlenet bench --main-job`` runs it beside ``python -m googlenet train`` and
prints both sides' accuracy and wall time. Everything but the framework is shared with
minigrad's run, taken from the project itself:

    data        the digits at 32x32, the same stratified 80/20 split, normalised with the
                training split's channel statistics (minigrad.data)
    batches     the same batches in the same order (minigrad.data.DataLoader, same seed)
    weights     the same starting weights: a minigrad GoogLeNet built with the run's seed,
                converted layer by layer (benchmarks/torch_googlenet.py)
    loss        the main classifier's cross-entropy + 0.3 x each auxiliary head's
    optimizer   SGD, momentum 0.9, weight decay 2e-4 on the weights only (PyTorch's SGD is
                the rule minigrad's SGD states), the paper's learning-rate schedule set
                before every step (minigrad.optim.make_schedule)
    averaging   the held-out split is measured after every epoch with a running average of
                the weights (minigrad.optim.WeightAverage's rule: decay 0.99)

Dropout masks come from PyTorch's generator (seeded with the run's seed), so the two runs
differ in their masks and in float32 rounding, not in their work. On a GPU: float32 with
TF32 off, as minigrad's default, and cuDNN's algorithm search on (``cudnn.benchmark``). One line per epoch; the
last line, and the file of --json, give the result.
"""
import argparse
import contextlib
import json
import time

import torch

from googlenet.model import GoogLeNet
from googlenet.train import TrainConfig, model_options
from minigrad.data import DataLoader, load_dataset
from minigrad.host_memory import keep_freed_memory
from minigrad.optim import make_schedule
from torch_googlenet import torch_googlenet, weights_and_biases


class WeightAverage:
    """minigrad.optim.WeightAverage's rule on PyTorch parameters: avg <- avg + (1 - d)(w - avg)
    with d = min(decay, (1 + n) / (10 + n)) after the n-th update, or the plain mean of all
    steps (d = 1 - 1/n) when ``decay`` is None."""

    def __init__(self, parameters, decay):
        self.parameters, self.decay, self.updates = list(parameters), decay, 0
        self.averages = [p.detach().clone() for p in self.parameters]

    @torch.no_grad()
    def update(self):
        self.updates += 1
        n = self.updates
        weight_of_new = 1.0 / n if self.decay is None else 1.0 - min(self.decay, (1.0 + n) / (10.0 + n))
        for average, p in zip(self.averages, self.parameters):
            average += weight_of_new * (p - average)

    @contextlib.contextmanager
    def swapped_in(self):
        current = [p.detach().clone() for p in self.parameters]
        with torch.no_grad():
            for p, average in zip(self.parameters, self.averages):
                p.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, kept in zip(self.parameters, current):
                    p.copy_(kept)


def paper_loss(output, labels, aux_weight):
    cross_entropy = torch.nn.functional.cross_entropy
    logits, aux1, aux2 = output
    return cross_entropy(logits, labels) + aux_weight * (cross_entropy(aux1, labels) + cross_entropy(aux2, labels))


def evaluate(net, loader, device):
    """(mean loss, accuracy) of ``net`` in eval mode over ``loader``."""
    net.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            x, y = torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)
            logits = net(x)
            loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += len(labels)
    net.train()
    return loss_sum / seen, correct / seen


def train(config):
    """Train as ``googlenet.train.Trainer`` does; returns one dict per epoch."""
    device = "cpu" if config.device == "cpu" else "cuda"
    if device == "cuda":                   # float32 as minigrad's (TF32 off), cuDNN's fastest algorithms
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(config.seed)
    train_set, held_out = load_dataset(config.data, None, config.image_size, config.held_out, config.seed,
                                       config.channels)
    mean, std = train_set.channel_stats()
    train_loader = DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed, mean=mean, std=std)
    held_out_loader = DataLoader(held_out, config.eval_batch_size, mean=mean, std=std)
    net = torch_googlenet(GoogLeNet(**model_options(config, len(train_set.classes), train_set.channels))).to(device)
    weights, biases = weights_and_biases(net)
    optimizer = torch.optim.SGD([dict(params=weights, weight_decay=config.weight_decay),
                                 dict(params=biases, weight_decay=0.0)], lr=config.lr, momentum=config.momentum)
    schedule = make_schedule(config.schedule, config.lr, config.epochs)
    average = None if config.average is None else WeightAverage(net.parameters(), config.average or None)
    steps, history = len(train_loader), []
    for epoch in range(config.epochs):
        net.train()
        seconds, seen, correct = 0.0, 0, 0
        for step, (images, labels) in enumerate(train_loader.batches(epoch)):
            started = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = schedule(epoch + step / steps)
            x, y = torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)
            output = net(x)
            loss = paper_loss(output, y, config.aux_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None:
                average.update()
            loss.item()                                     # as minigrad's trainer reads its loss
            correct += int((output[0].argmax(dim=1) == y).sum())
            seen += len(labels)
            seconds += time.perf_counter() - started
        started = time.perf_counter()
        with average.swapped_in() if average else contextlib.nullcontext():
            val_loss, val_accuracy = evaluate(net, held_out_loader, device)
        history.append(dict(epoch=epoch + 1, train_accuracy=correct / seen, val_loss=val_loss,
                            val_accuracy=val_accuracy, train_seconds=seconds,
                            eval_seconds=time.perf_counter() - started))
        print(f"epoch {epoch + 1:>3}: train acc {correct / seen:.4f} | held-out loss {val_loss:.4f} "
              f"acc {val_accuracy:.4f} | {seen / seconds:.0f} img/s", flush=True)
    return history


def main(argv=None):
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--width", type=float, default=defaults.width)
    parser.add_argument("--held-out", type=float, default=defaults.held_out)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--json", metavar="PATH", help="write the result here")
    args = parser.parse_args(argv)
    config = TrainConfig(epochs=args.epochs, width=args.width, held_out=args.held_out,
                         batch_size=args.batch_size, device=args.device, seed=args.seed)
    kept = keep_freed_memory()          # as `python -m googlenet train` does: both sides alike
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"freed memory kept: {'yes' if kept else 'no'}", flush=True)
    history = train(config)
    print(f"done: held-out accuracy {history[-1]['val_accuracy']:.4f} after {len(history)} epochs")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(dict(torch=torch.__version__, threads=torch.get_num_threads(), device=args.device,
                           history=history), handle, indent=1)


if __name__ == "__main__":
    main()
