"""Every public function of the package documents its parameters and its result (numpydoc).

Public: a function or a method of a public class, whose name and module path have no leading
underscore. It needs a ``Parameters`` section when it takes arguments (besides self/cls) and a
``Returns`` (or ``Yields``) section when its annotated result is not ``None``. Properties are
attributes and are documented by a sentence. The sources are parsed with ``ast`` (no import).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spinemri"


def _public_modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if not any(part.startswith("_") and part != "__init__.py" for part in p.relative_to(PACKAGE).parts)
    ]


def _is_property(fn: ast.FunctionDef) -> bool:
    names = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in fn.decorator_list}
    return bool(names & {"property", "cached_property", "setter", "overload"})


def _returns_none(fn: ast.FunctionDef) -> bool:
    r = fn.returns
    return (
        r is None
        or (isinstance(r, ast.Constant) and r.value is None)
        or (isinstance(r, ast.Constant) and r.value == "None")
        or (isinstance(r, ast.Name) and r.id in ("None", "NoReturn"))
    )


def missing_sections(fn: ast.FunctionDef) -> list[str]:
    doc = ast.get_docstring(fn) or ""
    args = [
        a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs if a.arg not in ("self", "cls")
    ]
    if fn.args.vararg:
        args.append(fn.args.vararg.arg)
    if fn.args.kwarg:
        args.append(fn.args.kwarg.arg)
    missing = []
    if args and "Parameters\n----------" not in doc:
        missing.append("Parameters")
    if not _returns_none(fn) and "Returns\n-------" not in doc and "Yields\n------" not in doc:
        missing.append("Returns")
    return missing


def public_functions(path: Path) -> list[tuple[str, ast.FunctionDef]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, ast.FunctionDef]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found.append((node.name, node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if (
                    isinstance(item, ast.FunctionDef)
                    and not item.name.startswith("_")
                    and not _is_property(item)
                ):
                    found.append((f"{node.name}.{item.name}", item))
    return found


def test_checker() -> None:
    src = (
        "def a(x: int) -> int:\n    '''A.\n\n    Parameters\n    ----------\n    x : int\n\n"
        "    Returns\n    -------\n    int\n    '''\n"
        "def b(x: int) -> int:\n    '''B.'''\n"
        "def c() -> None:\n    '''C.'''\n"
    )
    fns = dict(public_functions_from(src))
    assert missing_sections(fns["a"]) == []
    assert missing_sections(fns["b"]) == ["Parameters", "Returns"]
    assert missing_sections(fns["c"]) == []


def public_functions_from(source: str) -> list[tuple[str, ast.FunctionDef]]:
    tree = ast.parse(source)
    return [(n.name, n) for n in tree.body if isinstance(n, ast.FunctionDef)]


@pytest.mark.parametrize("path", _public_modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_public_functions_have_numpydoc_sections(path: Path) -> None:
    bad = [
        f"{name} (line {fn.lineno}): {', '.join(m)}"
        for name, fn in public_functions(path)
        if (m := missing_sections(fn))
    ]
    assert not bad, f"{path.relative_to(PACKAGE.parent)} lacks numpydoc sections: " + "; ".join(bad)
