"""The multi-node optimizer: any optimizer, made data-parallel by two calls."""
from .communicator import parameters_of


class MultiNodeOptimizer:
    """Wraps an optimizer (``minigrad.optim``) for data-parallel training on ``comm``.

    Made once, it gives every rank rank 0's parameters (``comm.bcast_data``); each
    ``step()`` then sums the gradients over the ranks (``comm.allreduce_grad``, one call)
    before the wrapped optimizer's own update, which every rank computes alike. Everything
    else (``lr``, ``zero_grad``, ``state_dict``, ...) is the wrapped optimizer's.

    The gradients are summed, not averaged: weight each rank's loss by its share of the
    global batch before ``backward`` (``loss.backward(n_rank / n_global)``; 1 / size when
    the shares are equal), so that the sum is the gradient of the mean over the whole batch.
    """

    def __init__(self, optimizer, comm):
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "comm", comm)
        comm.bcast_data(optimizer.params)

    def step(self):
        self.comm.allreduce_grad(self.optimizer.params)
        self.optimizer.step()

    def __getattr__(self, name):
        return getattr(self.optimizer, name)

    def __setattr__(self, name, value):          # optimizer.lr = schedule(...) reaches the optimizer
        setattr(self.optimizer, name, value)

