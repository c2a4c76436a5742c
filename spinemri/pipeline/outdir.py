"""The output folder of ``spinemri measure``: which of its files spinemri wrote, and clearing only those.

``spinemri measure --out DIR`` refuses a non-empty DIR unless ``--force``; with ``--force``
it first removes the files an earlier ``measure`` (or ``run``) wrote there, so that the
``qc/``, ``masks/`` and ``viewer/`` files of an earlier case do not pile up beside the new
ones, and never a file spinemri did not write (docs/decisions/0020-cli-exits-output-folder-and-ids.md).

spinemri's own files of a measure folder (:func:`measure_outputs`):

* at the top: the tables of :data:`spinemri.pipeline.case.MEASURE_TABLE_FILES` and their
  ``.parquet`` twins, ``provenance.json``;
* ``qc/*.png`` (QC pictures), ``masks/*_lesions.nii.gz`` and ``masks/*_lesions.seg.dcm``
  (lesion masks, DICOM-SEG), ``viewer/*.html`` (case viewers);
* the ``.<name>.XXXX.tmp...`` files an interrupted atomic write of one of those names
  left (:mod:`spinemri.io.atomic`).

Anything else (a user's ``notes.txt``, ``qc/README.txt``, a sub-folder of their own) is foreign:
it is listed by :func:`foreign_entries` and never removed. A file manager's own files
(:data:`OS_LITTER`: ``.DS_Store``, ``Thumbs.db``, ...) are neither: they do not make a folder
"not empty", and are left alone.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from .case import MEASURE_TABLE_FILES

__all__ = [
    "MEASURE_TOP_FILES",
    "MEASURE_SUBFOLDERS",
    "OS_LITTER",
    "measure_outputs",
    "foreign_entries",
    "clear_outputs",
]

#: Files ``spinemri measure`` writes at the top of its output folder.
MEASURE_TOP_FILES: tuple[str, ...] = (
    *MEASURE_TABLE_FILES.values(),
    *(f"{Path(f).stem}.parquet" for f in MEASURE_TABLE_FILES.values()),
    "provenance.json",
)
#: Sub-folder -> file-name patterns of the files ``spinemri measure`` writes into it.
MEASURE_SUBFOLDERS: dict[str, tuple[str, ...]] = {
    "qc": ("*.png",),
    "masks": ("*_lesions.nii.gz", "*_lesions.seg.dcm"),
    "viewer": ("*.html",),
}

#: Files a file manager leaves in any folder it shows (lower case): they do not make a folder
#: "not empty" for ``measure --out``, and are never removed.
OS_LITTER = frozenset({".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini"})


def _is_temp_of(name: str, patterns: tuple[str, ...]) -> bool:
    """``.<stem>.XXXX.tmp<suffixes>``: the temporary file of an atomic write of a name matching ``patterns``.

    :func:`spinemri.io.atomic.atomic_path` names it after the target's stem (cut to 40 characters) and
    suffixes, so the target is the stem plus the last suffix.
    """
    if not (name.startswith(".") and ".tmp" in name):
        return False
    head, _, suffixes = name[1:].rpartition(".tmp")
    stem = head.rpartition(".")[0]  # mkstemp's random part has no dot
    last = suffixes[suffixes.rfind(".") :] if "." in suffixes else ""
    if not stem or not last:
        return False
    if len(stem) >= 40:  # a long stem was cut: its last suffix must be one of ours
        return any(p.endswith(last) for p in patterns)
    return any(fnmatch.fnmatchcase(stem + last, p) for p in patterns)


def _ours(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns) or _is_temp_of(name, patterns)


def measure_outputs(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The files of ``out_dir`` that ``spinemri measure`` writes (the module's list).

    Parameters
    ----------
    out_dir : path-like
        An output folder (need not exist).

    Returns
    -------
    list of Path
        Regular files (no folders, no symbolic links: a link is never spinemri's), sorted.
    """
    root = Path(out_dir)
    found: list[Path] = []
    if not root.is_dir():
        return found
    for entry in root.iterdir():
        if entry.is_file() and not entry.is_symlink() and _ours(entry.name, MEASURE_TOP_FILES):
            found.append(entry)
    for folder, patterns in MEASURE_SUBFOLDERS.items():
        sub = root / folder
        if sub.is_dir() and not sub.is_symlink():
            found += [
                f for f in sub.iterdir() if f.is_file() and not f.is_symlink() and _ours(f.name, patterns)
            ]
    return sorted(found)


def foreign_entries(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The entries of ``out_dir`` that ``spinemri measure`` did not write.

    Parameters
    ----------
    out_dir : path-like
        An output folder (need not exist).

    Returns
    -------
    list of Path
        Top-level files and folders other than spinemri's, and the foreign entries inside
        ``qc/``, ``masks/`` and ``viewer/``, sorted.
    """
    root = Path(out_dir)
    if not root.is_dir():
        return []
    ours = set(measure_outputs(root))
    foreign: list[Path] = []
    for entry in root.iterdir():
        if entry.name.lower() in OS_LITTER:
            continue
        if entry.name in MEASURE_SUBFOLDERS and entry.is_dir() and not entry.is_symlink():
            foreign += [f for f in entry.iterdir() if f not in ours and f.name.lower() not in OS_LITTER]
        elif entry not in ours:
            foreign.append(entry)
    return sorted(foreign)


def clear_outputs(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove the files of :func:`measure_outputs` (and ``qc/``, ``masks/``, ``viewer/`` left empty).

    Parameters
    ----------
    out_dir : path-like
        An output folder.

    Returns
    -------
    list of Path
        The files removed. Foreign files, and the sub-folders holding them, are kept.
    """
    root = Path(out_dir)
    removed = measure_outputs(root)
    for f in removed:
        f.unlink(missing_ok=True)
    for folder in MEASURE_SUBFOLDERS:
        sub = root / folder
        if sub.is_dir() and not sub.is_symlink() and not any(sub.iterdir()):
            sub.rmdir()  # a sub-folder holding only a .DS_Store is kept: nothing but spinemri's is removed
    return removed
