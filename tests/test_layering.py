"""The layers of the tree point one way: the framework (``minigrad``) knows no network and
no course; the networks (``googlenet``, ``zoo``) know no course; the course (``course``)
may import everything, and nothing imports it. Checked on every import statement, at the
top of a module or inside a function, and by importing every module."""
import ast
import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN = {"minigrad": {"googlenet", "zoo", "course"},
             "googlenet": {"course"},
             "zoo": {"course"}}


def imported_modules(path):
    """Every module name an ``import`` or ``from ... import`` statement in the file names."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_source_file_imports_a_layer_above_its_own(package):
    sources = sorted((REPO / package).rglob("*.py"))
    assert len(sources) > 3                       # the walk found the package
    offenders = [f"{path.relative_to(REPO)}: import {name}" for path in sources
                 for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN[package]]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_every_module_of_a_package_leaves_the_layers_above_out(package):
    code = (f"import importlib, json, pkgutil, sys, {package}\n"
            f"names = [m.name for m in pkgutil.walk_packages({package}.__path__, '{package}.')\n"
            "         if not m.name.endswith('.__main__')]   # a command line runs when imported\n"
            "for name in names: importlib.import_module(name)\n"
            f"above = {sorted(FORBIDDEN[package])!r}\n"
            "print(json.dumps([names, [m for m in sys.modules if m.split('.')[0] in above]]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    imported, leaked = json.loads(result.stdout)
    assert len(imported) > 3
    assert leaked == []
