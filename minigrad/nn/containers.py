"""Modules made of modules: ``Sequential`` (one after another) and ``Concat``
(side by side on the same input, outputs joined: an Inception module).

Children given by position are named "0", "1", ...; given by keyword, they keep
the keyword, which then names their parameters:

    nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())              # "0.weight", "0.bias"
    nn.Sequential(conv=nn.Conv2d(3, 8, 3), relu=nn.ReLU())    # "conv.weight", "conv.bias"

Both compose their children's ``output_shape``, ``multiply_adds`` and ``depth``.
"""
from .. import functional as F
from .module import Module


class _Container(Module):
    """What Sequential and Concat share: named children, indexing, length, iteration."""

    def __init__(self, modules, named_modules):
        super().__init__()
        if modules and named_modules:
            raise TypeError(f"{type(self).__name__}: give the modules either all by position "
                            f"or all by keyword")
        for module in modules:
            self.append(module)
        for name, module in named_modules.items():
            self._add(name, module)

    def _add(self, name, module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: expected a Module, got {type(module).__name__}")
        setattr(self, name, module)
        return self

    def append(self, module):
        """Add ``module`` last, named by its position."""
        return self._add(str(len(self._modules)), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        return list(self._modules.values())[index]


class Sequential(_Container):
    """Apply the modules in order, each to the output of the one before.

    ``seq[i]``, ``seq[a:b]`` (a Sequential), ``len(seq)``, ``for m in seq`` and
    ``seq.append(m)`` work as for a list.

    Args:
        *modules (Module): the children, named "0", "1", ... by position; or
        **named_modules (Module): the children by keyword, which names them (not both).

    Shape:
        what the children make of it: ``output_shape`` composes theirs, ``multiply_adds``
        and ``depth`` add theirs up.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.ReLU(), nn.Flatten(),
        ...                       nn.Linear(4 * 6 * 6, 10, rng=0))
        >>> model(mg.zeros((2, 1, 8, 8))).shape
        (2, 10)
        >>> model.output_shape((1, 8, 8)), model.depth()
        ((10,), 2)
        >>> [name for name, _ in model.named_parameters()]
        ['0.weight', '0.bias', '3.weight', '3.bias']
    """

    def __init__(self, *modules, **named_modules):
        super().__init__(modules, named_modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*list(self)[index])
        return super().__getitem__(index)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

    def output_shape(self, in_shape):
        for module in self:
            in_shape = module.output_shape(in_shape)
        return tuple(in_shape)

    def multiply_adds(self, in_shape):
        total = 0
        for module in self:
            total += module.multiply_adds(in_shape)
            in_shape = module.output_shape(in_shape)
        return total

    def depth(self):
        return sum(module.depth() for module in self)


class Concat(_Container):
    """Run every branch on the same input and join the outputs along ``axis`` (``F.concat``).

    An Inception module is a Concat of four branches.

    Args:
        *branches (Module): the branches, named "0", "1", ... by position; or
        **named_branches (Module): the branches by keyword, which names them (not both).
        axis (int): the axis the outputs are joined along, counting the batch axis.
            Default: 1, the channels.

    Shape:
        the branches' outputs agree on every axis but ``axis``, which adds up; the depth is
        the deepest branch's.

    Example:
        >>> block = nn.Concat(conv=nn.Conv2d(3, 4, 1, rng=0), pool=nn.MaxPool2d(3, stride=1, padding=1))
        >>> block(mg.zeros((2, 3, 8, 8))).shape
        (2, 7, 8, 8)
        >>> block.output_shape((3, 8, 8))
        (7, 8, 8)
    """

    def __init__(self, *branches, axis=1, **named_branches):
        super().__init__(branches, named_branches)
        if not self._modules:
            raise ValueError("Concat: needs at least one branch")
        self.axis = axis

    def forward(self, x):
        return F.concat([branch(x) for branch in self], axis=self.axis)

    def output_shape(self, in_shape):
        shapes = [tuple(branch.output_shape(in_shape)) for branch in self]
        axis = self.axis % (len(shapes[0]) + 1) - 1       # in an example's shape: no batch axis
        if axis < 0:
            raise ValueError(f"{type(self).__name__}: joins along the batch axis, so an example "
                             f"has no shape of its own")
        if len({shape[:axis] + shape[axis + 1:] for shape in shapes}) != 1:
            raise ValueError(f"{type(self).__name__}: its branches give shapes {shapes}, which "
                             f"differ on more than the joined axis {self.axis}")
        joined = sum(shape[axis] for shape in shapes)
        return shapes[0][:axis] + (joined,) + shapes[0][axis + 1:]

    def multiply_adds(self, in_shape):
        return sum(branch.multiply_adds(in_shape) for branch in self)

    def depth(self):
        return max(branch.depth() for branch in self)    # the longest branch

    def extra_repr(self):
        return f"axis={self.axis}"
