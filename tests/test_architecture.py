"""Imports point one way: core -> io/report -> pipeline -> cli (STYLE.md "Layout", docs/decisions/0013).

Every module of the package is parsed with ``ast`` (none is imported) and each import it makes,
absolute or relative, at module level, under ``if TYPE_CHECKING:`` or inside a function, is
resolved to the module it names. The rules:

* layers, lowest first: ``base`` (errors, version, compiled kernels) < ``core`` (the numeric
  core: data model, levels, parameters, arrays, segmentation, metrics, linking, statistics,
  phantom) < ``io`` < ``report`` < ``pipeline`` < ``cli`` < the package facade
  ``spinemri/__init__.py``. A module imports only from its own layer or lower ones;
* the report layer does not import the statistics (``spinemri.stats``): it describes what it
  needs from an analysis with a Protocol;
* type-only imports count like any other (a back-edge hidden under ``TYPE_CHECKING`` is still a
  back-edge); an upward import is tolerated only inside a function body and only where
  ``DEFERRED_ALLOWED`` lists it with its reason;
* no module below the facade imports the facade (``from spinemri import ...`` of a name that is
  not a sub-module);
* the module-level import graph has no circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spinemri"

#: Layer of a module, by dotted-name prefix (longest match wins); anything else is core.
LAYER_PREFIXES = {
    "spinemri.errors": "base",
    "spinemri._version": "base",
    "spinemri._native": "base",
    "spinemri._kernels": "base",
    "spinemri.morphometry": "core",  # body heights, Genant grade, SINS collapse (issue 15)
    "spinemri.surveillance": "core",
    "spinemri.guidance": "core",  # SINS components, canal screening, planning summary (issue 15)
    "spinemri.io": "io",
    "spinemri.report": "report",
    "spinemri.pipeline": "pipeline",
    "spinemri.cli": "cli",
    "spinemri.commands": "cli",
}
#: Compiled extension modules (not parsed: no Python source).
COMPILED = {"spinemri._kernels"}
RANK = {"base": 0, "core": 1, "io": 2, "report": 3, "pipeline": 4, "cli": 5, "facade": 6}

#: (importing module, imported module) pairs allowed *only* inside a function body, with the reason.
#: DESIGN §2 makes ``Analysis.to_html()`` and ``Analysis.figures`` part of the public API: the
#: statistics delegate to the report layer on demand, so importing the statistics stays report-free.
DEFERRED_ALLOWED: dict[tuple[str, str], str] = {
    ("spinemri.stats.results", "spinemri.report.figures"): "Analysis.figures (DESIGN §2)",
    ("spinemri.stats.results", "spinemri.report.html"): "Analysis.to_html() (DESIGN §2)",
}


@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted module name
    nested: bool  # inside a function body
    type_only: bool  # under ``if TYPE_CHECKING:``
    names: tuple[str, ...]  # names of a ``from X import a, b``
    line: int


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    if module == "spinemri":
        return "facade"
    best = ""
    for prefix in LAYER_PREFIXES:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return LAYER_PREFIXES[best] if best else "core"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(source: str, module: str, is_package: bool) -> Iterator[Import]:
    """Every import in ``module``'s source, resolved to absolute module names."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    tree = ast.parse(source)
    nested: set[int] = set()
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                type_only.update(id(n) for n in ast.walk(child))
    for node in ast.walk(tree):
        flags = (id(node) in nested, id(node) in type_only)
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, *flags, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield Import(target, *flags, tuple(a.name for a in node.names), node.lineno)


def resolved_targets(imp: Import, modules: dict[str, Path]) -> list[str]:
    """The package modules an import loads: ``from pkg import sub`` names the sub-module."""
    out = []
    for name in imp.names:
        if f"{imp.target}.{name}" in modules or f"{imp.target}.{name}" in COMPILED:
            out.append(f"{imp.target}.{name}")
    if not out or len(out) < len(imp.names) or not imp.names:
        out.append(imp.target)
    return [t for t in out if t == "spinemri" or t.startswith("spinemri.")]


def violations(module: str, source: str, modules: dict[str, Path], is_package: bool) -> list[str]:
    bad = []
    mine = layer_of(module)
    for imp in imports_of(source, module, is_package):
        for target in resolved_targets(imp, modules):
            theirs = layer_of(target)
            where = f"line {imp.line}" + (" (type-only)" if imp.type_only else "")
            if target == "spinemri" and module != "spinemri":
                bad.append(f"{where}: imports the package facade; import the defining module instead")
                continue
            if mine == "report" and (target == "spinemri.stats" or target.startswith("spinemri.stats.")):
                bad.append(f"{where}: report imports {target}; use a Protocol of what it needs")
            if RANK[theirs] > RANK[mine]:
                allowed = imp.nested and not imp.type_only and _deferred_ok(module, target)
                if not allowed:
                    bad.append(f"{where}: {mine} module imports {theirs} module {target}")
    return bad


def _deferred_ok(module: str, target: str) -> bool:
    return any(module == m and (target == t or target.startswith(t + ".")) for m, t in DEFERRED_ALLOWED)


def module_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module-level imports (type-only ones included) between the package's modules."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for imp in imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"):
            if not imp.nested:
                edges.update(t for t in resolved_targets(imp, modules) if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


MODULES = all_modules()


# -- the checker itself ------------------------------------------------------------------------
FAKE = {
    m: Path("x")
    for m in (
        "spinemri",
        "spinemri.io",
        "spinemri.io.load",
        "spinemri.report",
        "spinemri.report.html",
        "spinemri.levels",
        "spinemri.volume",
        "spinemri.stats",
        "spinemri.stats.results",
        "spinemri.errors",
    )
}


@pytest.mark.parametrize(
    "source, module, bad",
    [
        ("import spinemri.io.load", "spinemri.levels", True),
        ("from spinemri.io import load", "spinemri.levels", True),
        ("from .io.load import load_mask", "spinemri.levels", True),
        ("from . import report", "spinemri.levels", True),
        ("from spinemri import cli", "spinemri.levels", True),
        ("def f():\n    from .pipeline import run_cohort", "spinemri.levels", True),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .io.load import x",
            "spinemri.levels",
            True,
        ),
        ("from . import __version__", "spinemri.levels", True),
        ("from .. import Volume", "spinemri.io.load", True),
        ("from ..stats.results import Analysis", "spinemri.report.html", True),
        ("from .volume import Volume\nimport numpy as np", "spinemri.levels", False),
        ("from ..volume import Volume", "spinemri.io.load", False),
        ("from ..io.load import load_mask", "spinemri.report.html", False),
        ("from .errors import InputError", "spinemri.levels", False),
        ("import spinemri.iox", "spinemri.levels", False),
    ],
)
def test_checker_sees_absolute_relative_nested_and_type_only_imports(
    source: str, module: str, bad: bool
) -> None:
    assert bool(violations(module, source, FAKE, False)) is bad


def test_deferred_allowance_is_narrow() -> None:
    ok = "def f():\n    from ..report.html import render_report"
    assert not violations("spinemri.stats.results", ok, FAKE, False)
    assert violations("spinemri.stats.results", "from ..report.html import render_report", FAKE, False)
    assert violations("spinemri.stats.methods", ok, FAKE, False)
    assert violations("spinemri.stats.results", "def f():\n    from ..io.load import load_mask", FAKE, False)


def test_cycle_finder() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


# -- the package ---------------------------------------------------------------------------------
@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_point_one_way(module: str) -> None:
    path = MODULES[module]
    bad = violations(module, path.read_text(encoding="utf-8"), MODULES, path.name == "__init__.py")
    assert not bad, f"{path.relative_to(PACKAGE.parent)}: " + "; ".join(bad)


def test_every_deferred_allowance_is_used() -> None:
    used = set()
    for module, path in MODULES.items():
        for imp in imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"):
            for target in resolved_targets(imp, MODULES):
                for m, t in DEFERRED_ALLOWED:
                    if module == m and (target == t or target.startswith(t + ".")) and imp.nested:
                        used.add((m, t))
    assert used == set(DEFERRED_ALLOWED), f"stale allowances: {set(DEFERRED_ALLOWED) - used}"


def test_no_import_circle() -> None:
    cycle = find_cycle(module_graph(MODULES))
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_layers_are_populated() -> None:
    layers = {layer_of(m) for m in MODULES}
    assert {"base", "core", "io", "report", "pipeline", "cli", "facade"} <= layers


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_under_800_lines(module: str) -> None:
    n = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert n < 800, f"{MODULES[module]} has {n} lines; split it by job"


def test_no_private_name_crosses_modules() -> None:
    crossing = []
    for module, path in MODULES.items():
        for imp in imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"):
            if imp.target.startswith("spinemri"):
                private = [
                    n
                    for n in imp.names
                    if n.startswith("_") and not n.startswith("__") and f"{imp.target}.{n}" not in COMPILED
                ]
                if private:
                    crossing.append(f"{module} line {imp.line}: {imp.target} {private}")
    assert not crossing, "private names imported across modules: " + "; ".join(crossing)
