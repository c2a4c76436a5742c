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
    """Installed versions of spinemri and its dependencies, plus Python's.

    Parameters
    ----------
    names : iterable of str, default DEPENDENCIES
        Distribution names to look up; those not installed are left out.

    Returns
    -------
    dict of str to str
        ``"python"`` -> the Python version, then distribution name -> version string.
    """
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of one file's bytes.

    Parameters
    ----------
    path : path-like
        The file (read in 1 MiB chunks).

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def path_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder's files (sorted relative names and contents).

    Parameters
    ----------
    path : path-like
        A file, or a folder whose files are hashed recursively.

    Returns
    -------
    str
        64 hex digits: :func:`file_sha256` of a file; for a folder the SHA-256
        over each file's relative POSIX name and its :func:`file_sha256`, in sorted order.
    """
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
    """A JSON-able provenance dict: versions, platform, parameters, input hashes, timings, notes.

    Parameters
    ----------
    parameters : dict of str to Any
        Every parameter that produced the output (recorded as given).
    inputs : dict of str to path-like, optional
        Input name -> path; each is recorded with its :func:`path_sha256`.
    timings_s : dict of str to float, optional
        Stage -> duration in seconds.
    notes : list of str, optional
        Warnings and notes.

    Returns
    -------
    dict of str to Any
        Keys ``created_utc`` (ISO 8601, seconds), ``versions``
        (:func:`package_versions`), ``platform``, ``parameters``, ``inputs``
        (name -> ``{"path", "sha256"}``), ``timings_s``, ``notes`` and ``id_key``: the
        pseudonym key's scheme, source and fingerprint (:func:`spinemri.io.idkey.key_provenance`;
        never the key; None when no key exists).
    """
    from ..io.idkey import key_provenance

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
        "id_key": key_provenance(),
    }
