"""Use a trained GoogLeNet: ``python -m googlenet predict IMAGE`` and ``... evaluate``.

Both read a checkpoint written by ``python -m googlenet train``: it holds the
weights, the model's settings (so the same network is rebuilt) and the data's
(class names, image size, channels, normalization), so an image is prepared
exactly as the training images were. When the run kept a running average of the
weights (``--average``), the averaged weights are the ones used.
"""
import os

import numpy

from minigrad import backend
from minigrad import functional as F
from minigrad.autograd import Tensor, no_grad
from minigrad.checkpoint import CheckpointError, atomic_path, load_checkpoint, load_weights
from minigrad.data import DataLoader, load_dataset, normalize, read_image

from .errors import UserError, check_device, check_number, check_output_folder, reports_user_errors
from .evaluation import evaluate
from .model import GoogLeNet


def load_trained(path, device="cpu"):
    """(model in eval mode on ``device``, the checkpoint's config) from a training checkpoint."""
    checkpoint = load_checkpoint(path)
    options, data = checkpoint["config"].get("model"), checkpoint["config"].get("data")
    if not options or not data:
        raise CheckpointError(f"{path}: not a GoogLeNet training checkpoint (no model or data settings)")
    try:
        model = GoogLeNet(**options)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its model settings do not build a GoogLeNet ({error})") from None
    weights = checkpoint["model"]
    if checkpoint["average"]:               # the running average, stored by parameter index
        weights = {name: checkpoint["average"][f"average.{i}"]
                   for i, (name, _) in enumerate(model.named_parameters())
                   if f"average.{i}" in checkpoint["average"]}
    load_weights(model, weights, source=path)
    return model.to(device).eval(), checkpoint["config"]


def predict_image(model, data, path, top=5, invert=False, device="cpu"):
    """[(class name, probability), ...] for the ``top`` most likely classes of one image.

    ``invert`` turns dark-on-light into light-on-dark (scikit-learn's digits are
    white ink on black; a digit drawn on paper is the opposite).
    """
    pixels = read_image(path, data["image_size"], data["channels"])
    if invert:
        pixels = 1.0 - pixels
    x = normalize(pixels[None], data["mean"], data["std"])
    with no_grad():
        probabilities = backend.to_numpy(F.softmax(model(Tensor(x, device=device))).data)[0]
    best = numpy.argsort(-probabilities, kind="stable")[:top]
    return [(display_name(data["classes"][i]), float(probabilities[i])) for i in best]


def display_name(name):
    """A class name as text any terminal and font can show. A folder name that is not valid
    UTF-8 reaches Python with each stray byte as a lone surrogate (os.fsdecode's
    "surrogateescape"), which matplotlib cannot draw and a strict terminal cannot print;
    each becomes the replacement character U+FFFD."""
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in name)


def confusion_matrix(labels, predictions, num_classes):
    """counts[i, j] = how many images of class i were predicted as class j."""
    pairs = numpy.asarray(labels) * num_classes + numpy.asarray(predictions)
    return numpy.bincount(pairs, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def format_confusion(matrix, classes):
    """The matrix as text: one row per true class, one column per predicted class."""
    width = max(4, len(str(matrix.max())) + 1)
    corner = "true \\ predicted"
    labels = [f"{i:>3} {name[:12]}" for i, name in enumerate(classes)]
    label_width = max(len(corner), *(len(label) for label in labels)) + 1
    lines = [corner.ljust(label_width) + "".join(f"{i:>{width}}" for i in range(len(classes)))]
    for label, row in zip(labels, matrix):
        lines.append(f"{label:<{label_width}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def plot_confusion(path, matrix, classes, title):
    """A PNG of the matrix, each cell labelled with its count (written atomically)."""
    from matplotlib.figure import Figure
    size = max(4.0, 0.45 * len(classes) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes, rotation=90 if len(classes) > 10 else 0)
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(classes) <= 30:
        threshold = matrix.max() / 2
        for (i, j), count in numpy.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > threshold else "black")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=120)


def held_out_data(args, config):
    """The evaluation set: the data named on the command line, else the run's held-out split."""
    train_config, data = config.get("train", {}), config["data"]
    name = args.data or train_config.get("data", data["name"])
    path = args.data_path or (train_config.get("data_path") if name == train_config.get("data") else None)
    _, held_out = load_dataset(name, path, data["image_size"], train_config.get("held_out", 0.2),
                               train_config.get("seed", 0), data["channels"])
    if held_out.channels != data["channels"] or held_out.image_size != data["image_size"]:
        raise UserError(f"the data has {held_out.channels}-channel {held_out.image_size}px images, "
                        f"the model was trained on {data['channels']}-channel {data['image_size']}px ones")
    if list(held_out.classes) != list(data["classes"]):
        raise UserError(f"the data's classes {held_out.classes[:5]}... differ from the model's "
                        f"{data['classes'][:5]}...")
    return held_out


# --- the command line ------------------------------------------------------------------
def add_parsers(subparsers):
    """Register ``predict`` and ``evaluate`` on an argparse sub-parser collection."""
    predict = subparsers.add_parser("predict", help="top-5 classes of an image, with probabilities")
    predict.add_argument("image", help="an image file (PNG, JPEG, ...)")
    predict.add_argument("--top", type=int, default=5, help="how many classes to show, at least 1 "
                         "(default: 5)")
    predict.add_argument("--invert", action="store_true",
                         help="invert the image first (dark ink on light paper, for digits)")
    evaluate_ = subparsers.add_parser("evaluate", help="accuracy and confusion matrix on held-out data")
    evaluate_.add_argument("--data", default=None, help="data set (default: the one trained on)")
    evaluate_.add_argument("--data-path", default=None, help="its path (cifar10, folder)")
    evaluate_.add_argument("--out", default=None,
                           help="folder for confusion.png (default: the checkpoint's folder)")
    for parser, func in ((predict, run_predict), (evaluate_, run_evaluate)):
        parser.add_argument("--checkpoint", default="runs/googlenet/checkpoint.npz",
                            help="a checkpoint from train (default: runs/googlenet/checkpoint.npz)")
        parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
        parser.set_defaults(func=func)


@reports_user_errors
def run_predict(args):
    check_number("--top", args.top, 1)
    device = check_device(args.device)
    if not os.path.isfile(args.image):
        raise UserError(f"image {args.image!r} does not exist")
    model, config = load_trained(args.checkpoint, device)
    top = predict_image(model, config["data"], args.image, args.top, args.invert, device)
    title = display_name(config["data"].get("title", config["data"]["name"]))
    print(f"{args.image}: GoogLeNet trained on {title} ({len(config['data']['classes'])} classes)")
    for rank, (name, probability) in enumerate(top, start=1):
        print(f"  {rank}. {name:<16} {probability:7.2%}")
    return 0


@reports_user_errors
def run_evaluate(args):
    device = check_device(args.device)
    out = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    check_output_folder("--out", out)
    model, config = load_trained(args.checkpoint, device)
    data = config["data"]
    held_out = held_out_data(args, config)
    loader = DataLoader(held_out, 200, mean=data["mean"], std=data["std"])
    loss, accuracy, predictions = evaluate(model, loader, device)
    matrix = confusion_matrix(held_out.labels, predictions, len(data["classes"]))
    classes = [display_name(name) for name in data["classes"]]
    print(f"{display_name(held_out.name)}: {len(held_out)} images, accuracy {accuracy:.4f} "
          f"({int(matrix.trace())}/{len(held_out)}), loss {loss:.4f}")
    print(format_confusion(matrix, classes))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "confusion.png")
    plot_confusion(path, matrix, classes, f"{display_name(held_out.name)}: accuracy {accuracy:.2%}")
    print(f"confusion matrix: {path}")
    return 0
