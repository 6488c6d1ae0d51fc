"""The framework knows no network: nothing in ``minigrad`` imports ``googlenet``,
neither at the top of a module nor inside a function."""
import ast
import json
import pathlib
import subprocess
import sys

import minigrad

PACKAGE = pathlib.Path(minigrad.__file__).parent
REPO = PACKAGE.parent


def imported_modules(path):
    """Every module name an ``import`` or ``from ... import`` statement in the file names."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_minigrad_source_file_imports_googlenet():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20                      # the walk found the package
    offenders = [f"{path.relative_to(REPO)}: import {name}" for path in sources
                 for name in imported_modules(path) if name.split(".")[0] == "googlenet"]
    assert offenders == []


def test_importing_every_minigrad_module_leaves_googlenet_out():
    code = ("import importlib, json, pkgutil, sys, minigrad\n"
            "names = [m.name for m in pkgutil.walk_packages(minigrad.__path__, 'minigrad.')\n"
            "         if not m.name.endswith('.__main__')]   # a command line runs when imported\n"
            "for name in names: importlib.import_module(name)\n"
            "print(json.dumps([names, [m for m in sys.modules if m.split('.')[0] == 'googlenet']]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    imported, leaked = json.loads(result.stdout)
    assert {"minigrad.bench", "minigrad.nn.layers", "minigrad.ops.conv"} <= set(imported)
    assert leaked == []
