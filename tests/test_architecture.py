"""Imports point one way: core -> io/report -> pipeline -> cli (STYLE.md, "Layout").

Parses every core module with ``ast`` and fails when one imports spinemri.io,
spinemri.report, spinemri.pipeline or spinemri.cli, absolutely or relatively,
at module level or inside a function. The only exceptions are listed in
``DEFERRED_ALLOWED`` with their reason: imports deferred into a method body
that the public API of DESIGN.md itself requires.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spinemri"
CORE = (
    "volume",
    "levels",
    "params",
    "phantom",
    "arrays/bbox",
    "arrays/labels",
    "arrays/grouped",
    "arrays/morphology",
    "segmentation/thresholds",
    "segmentation/bias",
    "segmentation/lesions",
    "metrics",
    "link",
    "stats",
    "measurement",
)
FORBIDDEN = ("spinemri.io", "spinemri.report", "spinemri.pipeline", "spinemri.cli")

#: (core module, imported module) pairs allowed *only* inside a function body.
#: DESIGN §2 makes ``Analysis.to_html()`` and ``Analysis.figures`` part of the public API, so
#: spinemri.stats delegates to the report layer on demand; importing stats stays report-free.
DEFERRED_ALLOWED = {
    ("stats", "spinemri.report.figures"),
    ("stats", "spinemri.report.figures.analysis_figures"),
    ("stats", "spinemri.report.html"),
    ("stats", "spinemri.report.html.render_report"),
}


def imported_modules(source: str, module: str) -> set[tuple[str, bool]]:
    """``(absolute module name, inside a function?)`` for every import in ``spinemri.<module>``'s code."""
    # a top-level module is in spinemri; "phantom.make" (and "phantom.__init__") in spinemri.phantom
    package = ["spinemri", *module.split(".")[:-1]]
    found: set[tuple[str, bool]] = set()
    tree = ast.parse(source)
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        inner = id(node) in nested
        if isinstance(node, ast.Import):
            found.update((alias.name, inner) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.add((target, inner))
            # "from . import io" / "from spinemri import report" import submodules by name
            found.update((f"{target}.{alias.name}", inner) for alias in node.names)
    return found


def violations(source: str, module: str) -> list[str]:
    return sorted(
        name
        for name, inner in imported_modules(source, module)
        if is_forbidden(name) and not (inner and (module, name) in DEFERRED_ALLOWED)
    )


def is_forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


@pytest.mark.parametrize(
    "source, bad",
    [
        ("import spinemri.io.load", True),
        ("from spinemri.io import load", True),
        ("from .io.nifti import load_nifti", True),
        ("from . import report", True),
        ("from spinemri import cli", True),
        ("def f():\n    from .pipeline import run_cohort", True),
        ("from .volume import Volume\nimport numpy as np", False),
        ("from .errors import InputError", False),
        ("import spinemri.iox", False),
    ],
)
def test_checker_sees_absolute_relative_and_nested_imports(source: str, bad: bool) -> None:
    assert bool(violations(source, "levels")) is bad


def test_deferred_allowance_is_narrow() -> None:
    # allowed only inside a function, only for the listed module
    assert not violations("def f():\n    from .report.html import render_report", "stats")
    assert violations("from .report.html import render_report", "stats")
    assert violations("def f():\n    from .report.html import render_report", "metrics")
    assert violations("def f():\n    from .io.load import load_mask", "stats")


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_io_report_pipeline_or_cli(module: str) -> None:
    path = PACKAGE / f"{module}.py"
    if (PACKAGE / module).is_dir():  # a core package: every module of it
        path = PACKAGE / module
    assert path.exists(), f"core module spinemri/{module}.py is missing"
    for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
        name = f"{module}.{file.stem}" if path.is_dir() else module
        bad = violations(file.read_text(encoding="utf-8"), name)
        assert not bad, (
            f"core module spinemri/{module}.py imports {bad}; move that code to io/, report or pipeline"
        )


def test_core_modules_present_are_checked() -> None:
    present = [m for m in CORE if (PACKAGE / f"{m}.py").exists() or (PACKAGE / m).is_dir()]
    assert {"volume", "levels", "params"} <= set(present)
