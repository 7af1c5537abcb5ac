"""House conventions: explicit exports, and every public name documented."""
from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["rram_lsm", "lsm", "sim", "hardware", "projections"]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_exist_and_have_docstrings(package):
    module = importlib.import_module(package)
    assert isinstance(module.__all__, (list, tuple)), f"{package} must define __all__"
    missing_doc = []
    for name in module.__all__:
        obj = getattr(module, name)  # AttributeError here means __all__ lies
        if name.startswith("__") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not inspect.getdoc(obj):
            missing_doc.append(name)
    assert not missing_doc, f"{package}: public names without a docstring: {missing_doc}"


def test_lower_layers_never_import_projections():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = []
    for pkg in ("sim", "hardware", "lsm"):
        for path in (root / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                if any(n == "projections" or n.startswith("projections.") for n in names):
                    offenders.append(str(path.relative_to(root)))
    assert not offenders, f"only projections may sit on top; these import it: {offenders}"
