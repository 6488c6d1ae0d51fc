"""Every example in the documentation runs and prints what it says: the docstrings of
``minigrad.functional``, ``minigrad.nn`` and ``minigrad.autograd`` (by doctest) and the
README's library section; and every public function and layer has one, in PyTorch's layout
(a line, Args, Shape, Returns, Example)."""
import doctest
import inspect
import pathlib

import numpy
import pytest

import minigrad
from minigrad import Op, autograd, functional as F, nn
from minigrad.functional import arrays, elementwise, layers, losses
from minigrad.nn import containers, layers as nn_layers, module, weightless

DOCUMENTED_MODULES = [autograd, elementwise, arrays, layers, losses, module, nn_layers, weightless,
                      containers]
NAMES = {"mg": minigrad, "F": F, "nn": nn, "numpy": numpy}   # what the examples assume imported


def docstring_examples():
    finder = doctest.DocTestFinder()
    tests = [test for documented in DOCUMENTED_MODULES
             for test in finder.find(documented, globs={**vars(documented), **NAMES})
             if test.examples]
    return sorted(tests, key=lambda test: test.name)


EXAMPLES = docstring_examples()


@pytest.mark.parametrize("test", EXAMPLES, ids=[test.name for test in EXAMPLES])
def test_the_example_runs_and_prints_what_it_says(test):
    report = []
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=report.append)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)


def layers_of_nn():
    return [getattr(nn, name) for name in nn.__all__
            if inspect.isclass(getattr(nn, name)) and issubclass(getattr(nn, name), nn.Module)
            and getattr(nn, name) is not nn.Module]


def sections(text):
    """The section headings of a docstring: unindented lines that end in a colon."""
    return [line for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]


@pytest.mark.parametrize("documented", [getattr(F, name) for name in F.__all__] + layers_of_nn(),
                         ids=lambda documented: documented.__name__)
def test_every_function_and_layer_has_a_pytorch_style_docstring(documented):
    text = inspect.getdoc(documented) or ""
    summary = text.split("\n\n")[0]
    assert summary and "\n" not in summary, f"the summary is one line: {summary!r}"
    required = ["Args:"] if inspect.signature(documented).parameters else []
    required += ["Shape:"] + (["Returns:"] if inspect.isfunction(documented) else []) + ["Example:"]
    assert [heading for heading in sections(text) if heading in required] == required
    assert ">>>" in text.split("Example:")[1]


def test_the_examples_cover_every_function_and_layer():
    names = {test.name.rsplit(".", 1)[-1] for test in EXAMPLES}
    missing = [name for name in F.__all__ if name not in names]
    missing += [layer.__name__ for layer in layers_of_nn() if layer.__name__ not in names]
    assert missing == []


def test_help_shows_the_function_not_the_op():
    for name in F.__all__:
        function = getattr(F, name)
        assert inspect.isfunction(function) and function.__doc__ != Op.__doc__, name
        assert inspect.signature(function).parameters, name


def test_the_readmes_library_example_runs_and_gives_what_it_states(capsys):
    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    section = readme.read_text(encoding="utf-8").split("## The library in five lines")[1]
    names = {}
    exec(section.split("```python\n")[1].split("```")[0], names)
    numpy.testing.assert_array_equal(names["x"].grad, [[3.0, -4.0, 7.0]])      # its comment
    assert "PASSED" in capsys.readouterr().out
    loss = names["loss"]                                                       # the text after it
    assert loss.node.name == "sum" and loss.node.inputs[0].node.name == "add"
    assert F.mul.op.forward.__module__ == "minigrad.ops.elementwise"

