"""Architecture guard: the layer table, and no import cycles between packages.

Every module's imports are read with ``ast`` (nothing of ours is imported), including
imports inside functions (lazy) and under ``if TYPE_CHECKING:`` -- a lazy import is still
a dependency. Relative imports are resolved against the file's package path. Imports whose
top-level name is not one of our packages (stdlib, third party) are ignored.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

# ----------------------------------------------------------------------------- the table

#: Our top-level packages (directories at the repo root). Anything else is third party.
PACKAGES = ("rram_lsm", "sim", "hardware", "lsm", "projections")

#: Extra files scanned as modules: repo-relative path -> dotted name used for layering.
EXTRA_FILES = {"notebooks/build.py": "notebooks.build"}

#: Dotted-name prefix -> layer. The longest matching prefix decides.
LAYER_OF_PREFIX = {
    "rram_lsm": "core",
    "rram_lsm.app": "app",
    "sim": "sim",
    "hardware": "hardware",
    "lsm": "lsm",
    "projections": "projections",
    "notebooks.build": "app",
}

#: Layer -> the layers its modules may import.
ALLOWED = {
    "core": {"core"},
    "sim": {"core", "sim"},
    "hardware": {"core", "hardware"},
    "lsm": {"core", "lsm"},
    "projections": {"core", "projections"},
    "app": {"core", "sim", "hardware", "lsm", "projections", "app"},
}

#: (importing module, imported layer) pairs allowed despite ALLOWED. Exact module names.
#: hardware.spawn is the emulator's factory: it builds the simulated chip in the child process.
EXCEPTIONS = {("hardware.spawn", "sim")}

LAYERS = tuple(ALLOWED)
REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- the walker

@dataclass(frozen=True)
class Import:
    """One in-project import: ``module`` (importer) depends on ``target`` (a dotted name)."""

    module: str
    target: str
    path: str
    line: int
    lazy: bool           # inside a function body
    type_checking: bool  # under ``if TYPE_CHECKING:``
    is_init: bool        # the importer is a package ``__init__``


def module_name(rel: Path) -> tuple[str, bool]:
    """Dotted name of a repo-relative ``.py`` path, and whether it is a package ``__init__``."""
    parts = list(rel.with_suffix("").parts)
    is_init = parts[-1] == "__init__"
    if is_init:
        parts = parts[:-1]
    return ".".join(parts), is_init


def resolve_relative(module: str, is_init: bool, level: int, name: str | None) -> str:
    """Absolute base of ``from <level dots><name> import ...`` written in ``module``."""
    package = module.split(".") if is_init else module.split(".")[:-1]
    if level - 1 > len(package) - 1:
        raise ImportError(f"{module}: relative import of level {level} goes above the top package")
    base = package[: len(package) - (level - 1)]
    if name:
        base = base + name.split(".")
    return ".".join(base)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _ours(name: str) -> bool:
    return name.split(".", 1)[0] in PACKAGES


def imports_of(source: str, module: str, is_init: bool, known: set[str],
               path: str = "<string>") -> list[Import]:
    """Every in-project import in ``source`` (a file whose dotted name is ``module``).

    ``from pkg import name`` targets ``pkg.name`` when that is a known module (or package),
    else ``pkg`` (``name`` is then an attribute of it). Constant-string
    ``importlib.import_module("x.y")`` calls count too.
    """
    tree = ast.parse(source, filename=path)
    found: list[Import] = []

    def add(target: str, node: ast.AST, lazy: bool, tc: bool) -> None:
        if _ours(target):
            found.append(Import(module, target, path, node.lineno, lazy, tc, is_init))

    def visit(node: ast.AST, lazy: bool, tc: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, lazy, tc)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = resolve_relative(module, is_init, node.level, node.module)
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if alias.name != "*" and sub in known else base, node, lazy, tc)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in ("import_module", "__import__")))
              and not node.args[0].value.startswith(".")):
            add(node.args[0].value, node, lazy, tc)

        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, lazy, True)
            for child in node.orelse:
                visit(child, lazy, tc)
            return
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner, tc)

    visit(tree, False, False)
    return found


def project_files(root: Path = REPO) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (path, is_init) for every module we scan (tests/ excluded)."""
    files: dict[str, tuple[Path, bool]] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root)
            if "__pycache__" in rel.parts or "tests" in rel.parts:
                continue
            files[module_name(rel)[0]] = (path, module_name(rel)[1])
    for rel, name in EXTRA_FILES.items():
        if (root / rel).is_file():
            files[name] = (root / rel, False)
    return files


def known_modules(files: dict[str, tuple[Path, bool]]) -> set[str]:
    """Module names plus every enclosing package (namespace packages included)."""
    known = set()
    for name in files:
        parts = name.split(".")
        known.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return known


def collect(root: Path = REPO) -> tuple[list[Import], list[str]]:
    """All in-project imports of the scanned modules, and any files that failed to parse."""
    files = project_files(root)
    known = known_modules(files)
    out: list[Import] = []
    errors: list[str] = []
    for name, (path, is_init) in files.items():
        rel = str(path.relative_to(root))
        try:
            out += imports_of(path.read_text(encoding="utf-8"), name, is_init, known, rel)
        except (SyntaxError, ImportError) as exc:
            errors.append(f"{rel}: {type(exc).__name__}: {exc}")
    return out, errors


def layer_of(name: str) -> str | None:
    """Layer of a dotted module name by the longest matching prefix, or None."""
    best = None
    for prefix in LAYER_OF_PREFIX:
        if (name == prefix or name.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best)):
            best = prefix
    return LAYER_OF_PREFIX[best] if best else None


# ----------------------------------------------------------------------------- checks

def _where(imp: Import) -> str:
    tags = [t for t, on in (("lazy", imp.lazy), ("TYPE_CHECKING", imp.type_checking)) if on]
    return f"{imp.path}:{imp.line}" + (f", {', '.join(tags)}" if tags else "")


def violations(imports: list[Import]) -> list[str]:
    """``module -> imported (layer a -> layer b)`` for each import the table forbids."""
    seen: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in imports:
        a, b = layer_of(imp.module), layer_of(imp.target)
        if a is None or b is None:
            continue
        if b not in ALLOWED[a] and (imp.module, b) not in EXCEPTIONS:
            seen[(imp.module, imp.target)].append(imp)
    return [f"{m} -> {t} ({layer_of(m)} -> {layer_of(t)})  "
            f"[{'; '.join(dict.fromkeys(map(_where, imps)))}]"
            for (m, t), imps in sorted(seen.items())]


def simple_cycles(edges: dict[str, set[str]], limit: int = 200) -> list[list[str]]:
    """Elementary cycles of a small directed graph, each started at its smallest node."""
    cycles: list[list[str]] = []
    for start in sorted(edges):
        stack = [(start, [start])]
        while stack and len(cycles) < limit:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ()), reverse=True):
                if nxt == start:
                    cycles.append(path)
                elif nxt > start and nxt not in path:
                    stack.append((nxt, path + [nxt]))
    return sorted(cycles, key=lambda c: (len(c), c))


def cycles_in(imports: list[Import], key) -> list[str]:
    """Cycles of the graph ``key(importer) -> key(imported)``; ``key`` returns None to skip."""
    edges: dict[str, set[str]] = defaultdict(set)
    witness: dict[tuple[str, str], Import] = {}
    for imp in imports:
        ab = key(imp)
        if ab is None or ab[0] == ab[1]:
            continue
        edges[ab[0]].add(ab[1])
        witness.setdefault(ab, imp)
    out = []
    for cyc in simple_cycles(edges):
        hops = list(zip(cyc, cyc[1:] + cyc[:1]))
        via = "; ".join(f"{a} -> {b} via {witness[a, b].module} -> {witness[a, b].target}"
                        f" [{_where(witness[a, b])}]" for a, b in hops)
        out.append(" -> ".join(cyc + cyc[:1]) + f"\n      ({via})")
    return out


def layer_edge(imp: Import):
    a, b = layer_of(imp.module), layer_of(imp.target)
    return None if a is None or b is None else (a, b)


def subpackage_edge(imp: Import):
    """Edge between the two-component groups (``lsm.data``) of one top-level package."""
    ma, mb = imp.module.split("."), imp.target.split(".")
    if ma[0] != mb[0] or ma[0] not in PACKAGES:
        return None
    if imp.is_init and imp.target.startswith(imp.module + "."):
        return None  # a package __init__ re-exporting its own children
    return ".".join(ma[:2]), ".".join(mb[:2])


@pytest.fixture(scope="module")
def project_imports():
    imports, errors = collect()
    assert not errors, "files that could not be walked:\n  " + "\n  ".join(errors)
    assert imports, "the walker found no in-project imports at all"
    return imports


def test_imports_respect_layer_table(project_imports):
    bad = violations(project_imports)
    if bad:
        pytest.fail(f"{len(bad)} import(s) the layer table forbids "
                    f"(module -> imported (layer a -> layer b)):\n  " + "\n  ".join(bad),
                    pytrace=False)


def test_no_cycles_between_layers(project_imports):
    cyc = cycles_in(project_imports, layer_edge)
    if cyc:
        pytest.fail("import cycles between layers:\n  " + "\n  ".join(cyc), pytrace=False)


def test_no_cycles_between_subpackages(project_imports):
    cyc = cycles_in(project_imports, subpackage_edge)
    if cyc:
        pytest.fail("import cycles between subpackages:\n  " + "\n  ".join(cyc),
                    pytrace=False)


# ----------------------------------------------------------------------------- self-test

SYNTHETIC = '''
from __future__ import annotations
import os
from typing import TYPE_CHECKING
import numpy as np
from . import formats, helper_attr
from .kernels import denoise
from ..data import info
from .. import encode
from lsm.reservoir import Reservoir
import rram_lsm.records

if TYPE_CHECKING:
    from hardware.driver import Driver

def run():
    from sim.macro import Macro
    import importlib
    importlib.import_module("projections.heads")
    return Macro
'''


def test_walker_self_test():
    known = {"lsm", "lsm.events", "lsm.events.formats", "lsm.events.kernels",
             "lsm.events.kernels.denoise", "lsm.data", "lsm.data.info", "lsm.encode",
             "lsm.reservoir", "rram_lsm", "rram_lsm.records", "sim", "sim.macro",
             "hardware", "hardware.driver", "projections", "projections.heads"}
    found = imports_of(SYNTHETIC, "lsm.events.frames", False, known)
    got = {(i.target, i.lazy, i.type_checking) for i in found}
    assert got == {
        ("lsm.events.formats", False, False),
        ("lsm.events", False, False),            # helper_attr: an attribute, not a module
        ("lsm.events.kernels.denoise", False, False),
        ("lsm.data.info", False, False),
        ("lsm.encode", False, False),
        ("lsm.reservoir", False, False),
        ("rram_lsm.records", False, False),
        ("hardware.driver", False, True),
        ("sim.macro", True, False),
        ("projections.heads", True, False),
    }, got
    # Relative imports from a package __init__ resolve against the package itself.
    assert resolve_relative("lsm.data", True, 1, "info") == "lsm.data.info"
    assert resolve_relative("lsm.data", True, 2, None) == "lsm"
    assert resolve_relative("lsm.data.info", False, 2, "events") == "lsm.events"
    with pytest.raises(ImportError):
        resolve_relative("lsm.encode", False, 2, None)

    # Layers: longest prefix first.
    assert layer_of("rram_lsm") == layer_of("rram_lsm.records") == "core"
    assert layer_of("rram_lsm.app") == layer_of("rram_lsm.app.cli") == "app"
    assert layer_of("rram_lsm.application") == "core"
    assert layer_of("notebooks.build") == "app" and layer_of("numpy") is None

    # The checks can fail: lsm may import neither sim, hardware nor projections ...
    bad = violations(found)
    assert [b.split("  [")[0] for b in bad] == [
        "lsm.events.frames -> hardware.driver (lsm -> hardware)",
        "lsm.events.frames -> projections.heads (lsm -> projections)",
        "lsm.events.frames -> sim.macro (lsm -> sim)",
    ], bad
    # ... the exception is exactly hardware.spawn -> sim ...
    spawn = imports_of("import sim.macro\n", "hardware.spawn", False, known)
    driver = imports_of("import sim.macro\n", "hardware.driver", False, known)
    assert violations(spawn) == [] and len(violations(driver)) == 1
    # ... and cycles are found, while an __init__ re-exporting its children is not one.
    back = imports_of("from lsm.events import formats\n", "lsm.data.info", False, known)
    assert cycles_in(found + back, subpackage_edge)[0].startswith(
        "lsm.data -> lsm.events -> lsm.data")
    init = imports_of("from .data import info\n", "lsm", True, known)
    up = imports_of("import lsm\n", "lsm.data.info", False, known)
    assert cycles_in(init + up, subpackage_edge) == []
    core_up = imports_of("import rram_lsm.app.cli\n", "rram_lsm.records", False, known)
    app_down = imports_of("import rram_lsm.records\n", "rram_lsm.app.cli", False, known)
    assert cycles_in(core_up + app_down, layer_edge)[0].startswith("app -> core -> app")
