"""The compiled kernels (``spinemri/_kernels.pyx``), imported once with a clear message when absent.

They are built when spinemri is installed (``pip install .``, or ``pip install -e .`` in a
checkout). Python run from the root of a clone imports the source tree's ``spinemri`` (the
current folder comes first on ``sys.path``), which has no extension module after a plain
``pip install .``: then the extension of the installed copy is used, provided that copy is the
same version with the same kernel interface (``_kernels.pyi``); see
docs/decisions/0014-source-tree-finds-installed-kernels.md. Otherwise the import fails with
what to do.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ._version import __version__

__all__ = ["kernels", "installed_kernels"]

_HERE = Path(__file__).resolve().parent


def _same_text(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _version_of(package_dir: Path) -> str | None:
    try:
        text = (package_dir / "_version.py").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.partition("=")[2].strip().strip("\"'")
    return None


def installed_kernels(search: list[str] | None = None) -> ModuleType | None:
    """The compiled kernels of another spinemri copy on ``sys.path`` (same version and interface).

    Parameters
    ----------
    search : list of str, optional
        Folders to look in (default ``sys.path``); each may hold a ``spinemri`` package.

    Returns
    -------
    module or None
        The first other copy's ``_kernels`` extension whose ``_version.py`` and
        ``_kernels.pyi`` equal this source tree's, loaded as ``spinemri._kernels``;
        None when there is none.
    """
    for entry in search if search is not None else sys.path:
        other = Path(entry or ".").resolve() / "spinemri"
        if other == _HERE or not other.is_dir():
            continue
        if _version_of(other) != __version__ or not _same_text(
            other / "_kernels.pyi", _HERE / "_kernels.pyi"
        ):
            continue
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            ext = other / f"_kernels{suffix}"
            if not ext.is_file():
                continue
            spec = importlib.util.spec_from_file_location(f"{__package__}._kernels", ext)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[f"{__package__}._kernels"] = module
            return module
    return None


try:
    from . import _kernels as kernels
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    found = installed_kernels()
    if found is None:
        raise ImportError(
            "spinemri's compiled kernels (spinemri/_kernels.pyx) are not built: install spinemri with "
            "`pip install .` (in a development checkout `pip install -e .`, or "
            "`python setup.py build_ext --inplace` after editing the .pyx); a C compiler is needed"
        ) from exc
    kernels = found
