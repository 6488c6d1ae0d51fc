"""Modules made of modules: ``Sequential`` (one after another) and ``Concat``
(side by side on the same input, outputs joined: an Inception module)."""
from .. import functional as F
from .module import Module


class Sequential(Module):
    """Apply ``modules`` in order. ``seq[i]``, ``seq[a:b]``, ``len(seq)``, ``for m in seq``."""

    def __init__(self, *modules):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class Concat(Module):
    """Run every branch on the same input and concatenate the outputs along ``axis``
    (the channel axis, 1, by default)."""

    def __init__(self, *branches, axis=1):
        super().__init__()
        if not branches:
            raise ValueError("Concat: needs at least one branch")
        self.axis = axis
        for i, branch in enumerate(branches):
            setattr(self, str(i), branch)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def forward(self, x):
        return F.concat([branch(x) for branch in self._modules.values()], axis=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"
