"""GoogLeNet (Inception v1, Szegedy et al. 2014, "Going deeper with convolutions")
on minigrad, built from the paper's Table 1.

    from googlenet import GoogLeNet, googlenet_loss
    model = GoogLeNet(num_classes=10, input_size=32)

    python -m googlenet summary      # Table 1 beside this model's counts
    python -m googlenet gradcheck    # the whole network against finite differences
    python -m googlenet train        # train on the digits (or CIFAR-10, or your photos)
    python -m googlenet predict IMAGE --checkpoint runs/googlenet/checkpoint.npz
    python -m googlenet bench        # time every conv, pool and LRN against bare GEMMs

Modules: ``table`` (Table 1 as data), ``sizes`` (map sizes for any input),
``model`` (the network and its loss), ``summary`` and ``paper_figures`` (our
counts beside the paper's), ``gradcheck``, ``train`` (the training loop and
checkpoints), ``predict`` (top-5 prediction and the ``evaluate`` command: accuracy
and confusion matrix), ``evaluation`` (loss and accuracy on labelled data, for
train and evaluate), ``errors`` (the user's mistakes as one-line errors),
``bench`` (the bench command: GoogLeNet's op shapes, timed by ``minigrad.bench``).
"""
import minigrad  # noqa: F401  (first, before NumPy loads: see minigrad.blas_setup)

from .model import GoogLeNet, GoogLeNetOutput, googlenet_loss

__all__ = ["GoogLeNet", "GoogLeNetOutput", "googlenet_loss"]
