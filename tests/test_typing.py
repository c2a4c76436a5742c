"""The package type-checks strictly, and its public names have their real types downstream.

STYLE: full type hints, checked in CI. Issue 12: every name in ``spinemri.__all__`` resolves to
its real type for a downstream type checker (the facade's ``TYPE_CHECKING`` block imports every
lazily loaded name from the module that defines it), and ``mypy --strict`` is clean.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import spinemri

REPO = Path(__file__).resolve().parents[1]
FACADE = REPO / "spinemri" / "__init__.py"


def _mypy(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy", reason="mypy is part of the test extras: pip install -e '.[test]'")
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


def test_mypy_strict_is_clean() -> None:
    # [tool.mypy] in pyproject.toml sets strict = true; --strict here makes the test independent of it
    proc = _mypy("--strict", "spinemri")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def _type_checking_imports() -> dict[str, str]:
    """name -> defining module, from the facade's ``if TYPE_CHECKING:`` block."""
    tree = ast.parse(FACADE.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        found[alias.asname or alias.name] = "spinemri." + (stmt.module or "")
    return found


def test_every_lazy_name_is_imported_for_type_checkers_from_its_module() -> None:
    lazy = dict(spinemri._LAZY)
    assert _type_checking_imports() == lazy


def test_all_is_literal_complete_and_resolves() -> None:
    eager = {n for n in spinemri.__all__ if n not in spinemri._LAZY}
    assert set(spinemri._LAZY) <= set(spinemri.__all__)
    for name in spinemri.__all__:
        value = getattr(spinemri, name)
        assert value is not None, name
    for name, module in spinemri._LAZY.items():
        assert getattr(spinemri, name) is getattr(importlib.import_module(module), name), name
    assert {"Volume", "SpinemriError", "__version__"} <= eager


def test_parameter_and_result_types_are_exported() -> None:
    expected = {
        "SegmentParams",
        "MetricsParams",
        "LinkParams",
        "StatsParams",
        "RunConfig",
        "PhantomParams",
        "Measurement",
        "Analysis",
        "LinkReport",
        "RunSummary",
        "PhantomTruth",
        "LabelScheme",
        "Volume",
    }
    assert expected <= set(spinemri.__all__)


def test_public_names_have_their_real_types_downstream(tmp_path: Path) -> None:
    lines = ["import spinemri"] + [
        f"reveal_type(spinemri.{n})" for n in spinemri.__all__ if n != "__version__"
    ]
    script = tmp_path / "downstream.py"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = _mypy("--strict", "--no-incremental", str(script))
    revealed = re.findall(r'Revealed type is "(.*)"', proc.stdout)
    assert len(revealed) == len(lines) - 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    # the name itself has its real type (a function signature or the class's constructor),
    # never Any; Any inside a signature (``**options: Any``, DataFrames without pandas stubs) is fine
    untyped = [(n, t) for n, t in zip(lines[1:], revealed, strict=True) if t == "Any"]
    assert not untyped, f"public names typed Any for a downstream type checker: {untyped}"
    unreal = [
        (n, t) for n, t in zip(lines[1:], revealed, strict=True) if not t.startswith(("def ", "Overload("))
    ]
    assert not unreal, f"public names that are not callables with a signature: {unreal}"
