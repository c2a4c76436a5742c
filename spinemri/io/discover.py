"""Find the cases of a cohort: one sub-folder per patient, or a manifest CSV.

Cohort layout (DESIGN §7)::

    COHORT/
      clinical.csv            optional clinical table (VAS)
      SMR-001/                folder name = patient id
        image.nii.gz          the image: a volume file, or DICOM files (any depth)
        vertebrae_mask.nii.gz the vertebral mask: a file whose name contains mask, seg, label or vert
      SMR-002/
        dicom/...             a DICOM series (several series: see spinemri.io.dicom.series.pick_series)
        seg.nii.gz

Rules (documented in docs/cohort.md):

* a *mask* is a volume file (NIfTI, NRRD, MetaImage) whose file name contains
  ``mask``, ``seg``, ``label`` or ``vert`` (case-insensitive); exactly one per
  folder;
* the *image* is the one other volume file in the folder; if there is none,
  the DICOM files under the folder (the series is chosen when loading);
  a folder with both a volume image and DICOM files, or with several volume
  images, is ambiguous and becomes an error row;
* hidden files and folders (starting with ``.``) are ignored;
* a manifest CSV with columns ``patient_id, image, mask`` (paths relative to
  the manifest's folder or absolute) overrides the convention.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .nifti import is_itk, is_nifti

__all__ = ["Case", "MASK_NAME_RE", "discover_cases", "read_manifest", "is_mask_name"]

#: A file whose name matches this is a vertebral mask.
MASK_NAME_RE = re.compile(r"mask|seg|label|vert", re.IGNORECASE)

#: Names that are never images (reports, tables, notes).
_NOT_IMAGE_SUFFIXES = (".csv", ".tsv", ".json", ".txt", ".md", ".xlsx", ".png", ".jpg", ".pdf", ".html")


@dataclass(frozen=True)
class Case:
    """One patient's inputs, or the reason they could not be found.

    ``image`` is a volume file or a folder of DICOM files; ``problem`` is set
    (and ``image``/``mask`` may be None) when discovery already failed.
    """

    patient_id: str
    image: Path | None
    mask: Path | None
    folder: Path
    problem: str | None = None
    problem_path: Path | None = None


def is_mask_name(path: Path) -> bool:
    """True when the file name marks a vertebral mask (contains mask, seg, label or vert).

    Parameters
    ----------
    path : Path
        A file; only its name (not its folders) is matched, case-insensitively.

    Returns
    -------
    bool
        Whether :data:`MASK_NAME_RE` matches ``path.name``.
    """
    return bool(MASK_NAME_RE.search(path.name))


def _is_volume_file(path: Path) -> bool:
    return is_nifti(path) or is_itk(path)


def _walk_files(folder: Path) -> list[Path]:
    """Regular files under ``folder`` (no hidden entries), symlink loops guarded against."""
    out: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a symlink loop: do not descend again
            dirs[:] = []
            continue
        seen.add(key)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith("."):
                continue
            p = Path(root) / f
            if p.is_file():
                out.append(p)
    return out


def _case_from_folder(folder: Path) -> Case:
    pid = folder.name
    files = _walk_files(folder)
    top = [f for f in files if f.parent == folder]
    masks = [f for f in top if _is_volume_file(f) and is_mask_name(f)]
    volumes = [f for f in top if _is_volume_file(f) and not is_mask_name(f)]
    others = [f for f in files if not _is_volume_file(f) and not f.name.lower().endswith(_NOT_IMAGE_SUFFIXES)]
    if len(masks) > 1:
        return Case(
            pid,
            None,
            None,
            folder,
            f"several mask files: {', '.join(m.name for m in masks)}; keep one or use a manifest",
            folder,
        )
    mask = masks[0] if masks else None
    image: Path | None = None
    problem: str | None = None
    if len(volumes) > 1:
        problem = (
            f"several image files: {', '.join(v.name for v in volumes)}; keep one or use a manifest "
            "(a mask's file name must contain mask, seg, label or vert)"
        )
    elif volumes and others:
        problem = (
            f"both a volume image ({volumes[0].name}) and {len(others)} other (DICOM?) files; keep one "
            "image or use a manifest"
        )
    elif volumes:
        image = volumes[0]
    elif others:
        image = folder  # DICOM files somewhere below: the loader picks the series
    else:
        problem = "no image found (no NIfTI/NRRD/MHA image and no DICOM files)"
    if problem is None and mask is None:
        problem = (
            "no vertebral mask found (a NIfTI/NRRD/MHA file whose name contains mask, seg, label or vert)"
        )
    return Case(pid, image, mask, folder, problem, folder if problem else None)


def read_manifest(path: str | os.PathLike[str]) -> list[Case]:
    """Cases from a manifest CSV with columns ``patient_id, image, mask``.

    Parameters
    ----------
    path : str or path-like
        The manifest (UTF-8, optional BOM, separator sniffed). Column names
        are matched case-insensitively after stripping; relative image and mask
        paths are relative to the manifest's folder.

    Returns
    -------
    list of Case
        One per row, in file order. A row whose image or mask is blank or does
        not exist becomes a Case with ``problem`` set and ``problem_path``
        naming the missing file (or the manifest).

    Raises
    ------
    InputError
        The manifest is missing or unreadable, lacks a column, has a row
        without patient_id, or repeats a patient_id.
    """
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", sep=None, engine="python")
    except FileNotFoundError:
        raise InputError(f"{path}: manifest not found") from None
    except Exception as exc:
        raise InputError(f"{path}: cannot read the manifest CSV ({exc})") from exc
    cols = {c.strip().lower(): c for c in df.columns}
    missing = [c for c in ("patient_id", "image", "mask") if c not in cols]
    if missing:
        raise InputError(
            f"{path}: the manifest lacks column(s) {', '.join(missing)}; it needs patient_id, image, mask "
            f"(found: {', '.join(map(str, df.columns))})"
        )
    cases: list[Case] = []
    seen: set[str] = set()
    for i, row in df.iterrows():
        pid = str(row[cols["patient_id"]] or "").strip()
        if not pid or pid.lower() == "nan":
            raise InputError(f"{path}: row {int(i) + 2} has no patient_id")
        if pid in seen:
            raise InputError(f"{path}: patient_id {pid!r} appears more than once")
        seen.add(pid)

        def resolve(value: object) -> Path | None:
            s = str(value).strip() if value is not None else ""
            if not s or s.lower() == "nan":
                return None
            p = Path(s)
            return p if p.is_absolute() else (path.parent / p)

        image, mask = resolve(row[cols["image"]]), resolve(row[cols["mask"]])
        problem = None
        bad = None
        for what, p in (("image", image), ("mask", mask)):
            if p is None:
                problem, bad = f"manifest gives no {what}", path
                break
            if not p.exists():
                problem, bad = f"{what} {p} does not exist", p
                break
        cases.append(Case(pid, image, mask, (image or path).parent, problem, bad))
    return cases


def discover_cases(
    cohort_dir: str | os.PathLike[str], manifest: str | os.PathLike[str] | None = None
) -> list[Case]:
    """All cases of a cohort, sorted by patient id.

    Parameters
    ----------
    cohort_dir : str or path-like
        Folder with one sub-folder per patient (its name is the patient id);
        hidden sub-folders are ignored. Not used when ``manifest`` is given.
    manifest : str or path-like, optional
        A manifest CSV (see :func:`read_manifest`) that replaces the folder
        convention.

    Returns
    -------
    list of Case
        One per patient, sorted by ``patient_id``; a folder without exactly
        one image and one mask gives a Case with ``problem`` set (see the
        rules above).

    Raises
    ------
    InputError
        When ``cohort_dir`` is not a folder, or it holds no patient folder.
    """
    if manifest is not None:
        return sorted(read_manifest(manifest), key=lambda c: c.patient_id)
    root = Path(cohort_dir)
    if not root.exists():
        raise InputError(f"{root}: cohort folder not found")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; a cohort is a folder with one sub-folder per patient")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(
            f"{root}: no patient folders; a cohort holds one sub-folder per patient (its name is the patient "
            "id) with the image and a mask file, or pass --manifest"
        )
    return [_case_from_folder(f) for f in folders]
