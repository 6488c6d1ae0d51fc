"""How well a model does on labelled data: used after every training epoch
(``googlenet.train``) and by ``python -m googlenet evaluate`` (``googlenet.predict``)."""
import numpy

from minigrad import backend
from minigrad import functional as F
from minigrad.autograd import Tensor, no_grad


def evaluate(model, loader, device="cpu"):
    """(mean loss, accuracy, predicted labels) of ``model`` in eval mode over ``loader``."""
    was_training = model.training
    model.eval()
    loss_sum, predictions = 0.0, []
    with no_grad():
        for images, labels in loader:
            logits = model(Tensor(images, device=device))
            loss_sum += F.cross_entropy(logits, labels).item() * len(labels)
            predictions.append(backend.to_numpy(logits.data).argmax(axis=1))
    model.train(was_training)
    predictions = numpy.concatenate(predictions)
    return loss_sum / len(predictions), float((predictions == loader.dataset.labels).mean()), predictions
