"""Provenance: package versions, input hashes and timings recorded with every output."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["DEPENDENCIES", "package_versions", "file_sha256", "path_sha256", "provenance_record"]

#: Distributions whose versions are recorded (missing optional ones are skipped).
DEPENDENCIES = (
    "spinemri",
    "numpy",
    "scipy",
    "pandas",
    "nibabel",
    "pydicom",
    "SimpleITK",
    "scikit-image",
    "connected-components-3d",
    "matplotlib",
    "statsmodels",
    "scikit-learn",
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "pyarrow",
    "dask",
    "distributed",
    "highdicom",
)

_CHUNK = 1 << 20


def package_versions(names: Iterable[str] = DEPENDENCIES) -> dict[str, str]:
    """Installed versions of spinemri and its dependencies, plus Python's."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of one file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def path_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder's files (sorted relative names and contents)."""
    p = Path(path)
    if p.is_file():
        return file_sha256(p)
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(f.relative_to(p).as_posix().encode("utf-8") + b"\0")
        h.update(file_sha256(f).encode("ascii"))
    return h.hexdigest()


def provenance_record(
    *,
    parameters: dict[str, Any],
    inputs: dict[str, str | os.PathLike[str]] | None = None,
    timings_s: dict[str, float] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """A JSON-able provenance dict: versions, platform, parameters, input hashes, timings, notes."""
    return {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "platform": {
            "system": platform.system(),
            "machine": platform.machine(),
            "python": sys.version.split()[0],
        },
        "parameters": parameters,
        "inputs": {k: {"path": str(v), "sha256": path_sha256(v)} for k, v in (inputs or {}).items()},
        "timings_s": timings_s or {},
        "notes": list(notes or []),
    }
