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


def private_uses(path, package):
    """``module: name`` for each private name (``_x``) that ``path`` takes from another top-level
    package: imported (``from minigrad.bench import _x``) or read off an imported module
    (``bench._x`` after ``from minigrad import bench``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    other_modules, found = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in LAYERS and node.module.split(".")[0] != package:
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.append(f"{node.module}: {alias.name}")
                    other_modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LAYERS and alias.name.split(".")[0] != package:
                    other_modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in other_modules and node.attr.startswith("_") \
                and not node.attr.startswith("__") and node.attr not in NAMED_TUPLE_API:
            found.append(f"{other_modules[node.value.id]}: {node.attr}")
    return found


LAYERS = ("minigrad", "googlenet", "zoo", "course", "notebooks")
NAMED_TUPLE_API = {"_fields", "_replace", "_asdict", "_make"}      # public, despite the underscore


@pytest.mark.parametrize("package", LAYERS)
def test_no_module_takes_a_private_name_from_another_package(package):
    offenders = [f"{path.relative_to(REPO)} uses {use}" for path in sorted((REPO / package).rglob("*.py"))
                 for use in private_uses(path, package)]
    assert offenders == []
