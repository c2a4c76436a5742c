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

Other tools' layouts (:mod:`spinemri.io.mask_formats`):

* a SPINEPS pair in a patient folder (``*_seg-vert_*_msk.nii.gz`` and
  ``*_seg-subreg_*_msk.nii.gz``): the instance mask is the case's mask (its
  subregions are read from the file next to it), the one other volume file
  that is not a ``*_msk`` / ``*_dseg`` file is the image (BIDS entities such as
  ``label-6`` in its name do not make it a mask);
* a TotalSegmentator ``segmentations/`` folder in a patient folder without a
  mask file: that folder is the mask;
* BIDS: when a ``sub-*`` folder of the cohort holds ``anat/`` or
  ``ses-*/anat/``, each subject (and session) is a case: the image is
  ``anat/*_STIR.nii[.gz]`` (preferred) or ``anat/*_T2w.nii[.gz]``, the mask is
  found under ``derivatives/<tool>/sub-*/[ses-*/]anat/`` (a SPINEPS instance
  mask, a TotalSegmentator folder, or a file whose name marks a mask) whose
  name carries the image's entities; the patient id is ``sub-X`` and each
  ``ses-Y`` is a time point (its scan date from ``sub-X_sessions.tsv`` ``acq_time``
  when present).

Time points (issue 14): a patient folder whose sub-folders are named ``YYYY-MM-DD``,
``tpN`` or ``ses-*`` and that holds no scan file itself has one case per time point
(:attr:`Case.timepoint`, :attr:`Case.scan_date` from a date name); a manifest may add
``timepoint`` and ``scan_date`` columns.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .ids import TIMEPOINT_NAME_RE, safe_id
from .mask_formats import is_spineps_subreg, is_spineps_vert, is_totalseg_folder
from .nifti import is_itk, is_nifti

__all__ = [
    "Case",
    "MASK_NAME_RE",
    "TIMEPOINT_RE",
    "discover_cases",
    "read_manifest",
    "is_mask_name",
    "timepoint_date",
    "with_timepoint_columns",
]

#: A file whose name matches this is a vertebral mask.
MASK_NAME_RE = re.compile(r"mask|seg|label|vert", re.IGNORECASE)

#: A sub-folder of a patient folder whose name matches this is a time point (DESIGN §7): an ISO date
#: ``YYYY-MM-DD``, ``tpN`` (``tp1``, ``TP02``) or a BIDS session ``ses-<label>``.
TIMEPOINT_RE = TIMEPOINT_NAME_RE

#: BIDS-style mask file names (SPINEPS ``*_msk``, BIDS ``*_dseg``) and SPINEPS files.
_BIDS_MASK_RE = re.compile(r"(_msk|_dseg|(^|_)seg-[a-z0-9]+_.*)\.(nii|nii\.gz|nrrd|mha|mhd)$", re.IGNORECASE)
#: BIDS anatomical images spinemri measures, in order of preference (fluid-sensitive first).
_BIDS_IMAGE_SUFFIXES = ("STIR", "T2w")

#: Names that are never images (reports, tables, notes).
_NOT_IMAGE_SUFFIXES = (".csv", ".tsv", ".json", ".txt", ".md", ".xlsx", ".png", ".jpg", ".pdf", ".html")
#: Files that are never images, beside an image or inside a DICOM folder (docs/cohort.md): thumbnail
#: caches and folder settings of Windows and checksums (macOS' .DS_Store and ._* are hidden files).
JUNK_NAMES = ("thumbs.db", "ehthumbs.db", "desktop.ini")
JUNK_SUFFIXES = (".md5", ".sha1", ".sha256", ".sha512")


def is_junk_file(path: Path) -> bool:
    """True for a file discovery ignores: :data:`JUNK_NAMES`, :data:`JUNK_SUFFIXES` and sidecar tables/text.

    Parameters
    ----------
    path : Path
        A file in a patient folder.

    Returns
    -------
    bool
        Whether it is neither an image nor a DICOM file candidate.
    """
    name = path.name.lower()
    return name in JUNK_NAMES or name.endswith(JUNK_SUFFIXES) or name.endswith(_NOT_IMAGE_SUFFIXES)


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
    session: str | None = None
    timepoint: str | None = None
    scan_date: str | None = None

    @property
    def key(self) -> str:
        """The case's unique id in a run: ``patient_id``, or ``<patient_id>_<timepoint>`` for a time point.

        Returns
        -------
        str
            Names the case's output files (``qc/<key>.png``, ``cases/<key>/``) and its resume state.
        """
        return f"{self.patient_id}_{self.timepoint}" if self.timepoint else self.patient_id


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


def timepoint_date(name: str) -> str | None:
    """The scan date a time point folder's name gives: ``"2024-03-01"`` for ``2024-03-01``, else None.

    Parameters
    ----------
    name : str
        A time point folder name (:data:`TIMEPOINT_RE`).

    Returns
    -------
    str or None
        The ISO date, or None for ``tpN`` and ``ses-*`` names.

    Raises
    ------
    ValueError
        The name looks like a date but is not one (``2024-13-01``).
    """
    import datetime

    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", name):
        return datetime.date.fromisoformat(name).isoformat()
    return None


_BAD_DATE = "invalid"


def _date_or_invalid(name: str) -> str | None:
    """:func:`timepoint_date`, with ``"invalid"`` for a name that looks like a date but is not one."""
    try:
        return timepoint_date(name)
    except ValueError:
        return _BAD_DATE


def _natural(name: str) -> tuple[Any, ...]:
    """Sort key that puts ``tp2`` before ``tp10`` and ``ses-2`` before ``ses-10``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def _has_top_level_scan(folder: Path) -> bool:
    """True when ``folder`` itself holds a file that could be an image, a mask or a DICOM file."""
    return any(f.is_file() and not f.name.startswith(".") and not is_junk_file(f) for f in folder.iterdir())


def _patient_cases(folder: Path) -> list[Case]:
    """The case(s) of one patient folder: itself, or one per time point sub-folder (DESIGN §7).

    A patient folder whose sub-folders are named as time points (:data:`TIMEPOINT_RE`) and that
    holds no scan file at its own level has one case per time point, in time order (by date, or
    by the number in ``tpN`` / ``ses-N``). A folder with files at its own level is one case, as
    before time points existed (its DICOM may sit in a sub-folder of any name).
    """
    pid = folder.name
    subs = sorted(
        (d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name
    )
    tps = [d for d in subs if TIMEPOINT_RE.match(d.name)]
    if not tps or _has_top_level_scan(folder):
        return [_case_from_folder(folder)]
    others = [d.name for d in subs if d not in tps]
    if others:
        return [
            Case(
                pid,
                None,
                None,
                folder,
                f"holds time point folders ({', '.join(d.name for d in tps)}) and other folders "
                f"({', '.join(others)}); a patient folder with time points holds only time point folders "
                "named YYYY-MM-DD, tpN or ses-*, or use a manifest with a timepoint column",
                folder,
            )
        ]
    dated = [_date_or_invalid(d.name) for d in tps]
    kinds = {"date" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", d.name) else "name" for d in tps}
    if len(kinds) > 1:
        return [
            Case(
                pid,
                None,
                None,
                folder,
                f"time point folders mix dates and names ({', '.join(d.name for d in tps)}): their order is "
                "not defined; name them all YYYY-MM-DD or all tpN, or use a manifest with scan_date",
                folder,
            )
        ]
    cases: list[Case] = []
    for tp, date in sorted(zip(tps, dated, strict=True), key=lambda t: _natural(t[0].name)):
        if date == _BAD_DATE:
            cases.append(
                Case(
                    pid,
                    None,
                    None,
                    tp,
                    f"time point folder {tp.name!r} is not a valid date",
                    tp,
                    None,
                    tp.name,
                )
            )
            continue
        c = _case_from_folder(tp, pid)
        cases.append(dataclasses.replace(c, timepoint=tp.name, scan_date=date))
    return cases


def _case_from_folder(folder: Path, pid: str | None = None) -> Case:
    pid = folder.name if pid is None else pid
    files = _walk_files(folder)
    top = [f for f in files if f.parent == folder]
    masks = [f for f in top if _is_volume_file(f) and is_mask_name(f)]
    volumes = [f for f in top if _is_volume_file(f) and not is_mask_name(f)]
    if any(is_spineps_vert(f) for f in top):  # a SPINEPS pair: BIDS-style names (docs/cohort.md)
        masks = [f for f in top if is_spineps_vert(f)]
        volumes = [f for f in top if _is_volume_file(f) and not _BIDS_MASK_RE.search(f.name)]
    elif not masks and is_totalseg_folder(folder / "segmentations"):
        masks = [folder / "segmentations"]
        files = [f for f in files if (folder / "segmentations") not in f.parents]
    others = [f for f in files if not _is_volume_file(f) and not is_junk_file(f)]
    if masks and masks[0].is_dir():  # a TotalSegmentator folder: its files are not images
        others = [f for f in others if masks[0] not in f.parents]
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
            f"both a volume image ({volumes[0].name}) and {len(others)} other (DICOM?) file(s) "
            f"({', '.join(str(f.relative_to(folder)) for f in others[:3])}"
            f"{', ...' if len(others) > 3 else ''}); "
            "keep one image or use a manifest"
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
    seen: set[tuple[str, str | None]] = set()
    has_tp = "timepoint" in cols
    for i, row in df.iterrows():
        pid = str(row[cols["patient_id"]] or "").strip()
        if not pid or pid.lower() == "nan":
            raise InputError(f"{path}: row {int(i) + 2} has no patient_id")
        tp, date = _manifest_timepoint(path, row, cols, int(i) + 2)
        if (pid, tp) in seen:
            raise InputError(
                f"{path}: patient_id {pid!r}"
                + (f" with timepoint {tp!r}" if has_tp else "")
                + " appears more than once"
                + ("" if has_tp else " (several scans of one patient need a timepoint column)")
            )
        seen.add((pid, tp))

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
        cases.append(
            Case(pid, image, mask, (image or path).parent, problem, bad, timepoint=tp, scan_date=date)
        )
    return cases


def _manifest_timepoint(
    path: Path, row: Any, cols: dict[str, Any], line: int
) -> tuple[str | None, str | None]:
    """A manifest row's ``timepoint`` and ``scan_date`` (ISO), both optional columns."""
    import datetime

    def cell(name: str) -> str | None:
        if name not in cols:
            return None
        v = row[cols[name]]
        text = "" if v is None else str(v).strip()
        return None if not text or text.lower() == "nan" else text

    tp, when = cell("timepoint"), cell("scan_date")
    date = None
    if when is not None:
        try:
            date = datetime.date.fromisoformat(when[:10]).isoformat()
        except ValueError:
            raise InputError(
                f"{path}: row {line}: scan_date {when!r} is not a date (write YYYY-MM-DD)"
            ) from None
    if tp is None and "timepoint" in cols:
        tp = date or ""
        if not tp:
            raise InputError(f"{path}: row {line} has no timepoint (and no scan_date to name it by)")
    if tp is not None and date is None:
        try:
            date = timepoint_date(tp)
        except ValueError:
            raise InputError(
                f"{path}: row {line}: timepoint {tp!r} looks like a date but is not one"
            ) from None
    return tp, date


def _in_time_order(cases: list[Case]) -> list[Case]:
    """Cases sorted by patient, each patient's time points by date when all have one, else by name."""
    by_patient: dict[str, list[Case]] = {}
    for c in sorted(cases, key=lambda c: c.patient_id):
        by_patient.setdefault(c.patient_id, []).append(c)
    out: list[Case] = []
    for group in by_patient.values():
        dated = all(c.scan_date for c in group)
        out.extend(sorted(group, key=lambda c: (c.scan_date if dated else "", _natural(c.timepoint or ""))))
    return out


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
        return _in_time_order(read_manifest(manifest))
    root = Path(cohort_dir)
    if not root.exists():
        raise InputError(f"{root}: cohort folder not found")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; a cohort is a folder with one sub-folder per patient")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if _is_bids(folders):
        return _in_time_order(_bids_cases(root, folders))
    if not folders:
        raise InputError(
            f"{root}: no patient folders; a cohort holds one sub-folder per patient (its name is the patient "
            "id) with the image and a mask file, or pass --manifest"
        )
    return [c for f in folders for c in _patient_cases(f)]


def with_timepoint_columns(cases: list[Case]) -> list[Case]:
    """The cases, each with a timepoint (``""`` if it had none) when any case of the cohort has one.

    A longitudinal cohort's tables all carry ``timepoint`` and ``scan_date`` columns, so that the
    per-case tables combine under one header; a cohort without time points is unchanged.

    Parameters
    ----------
    cases : list of Case
        Discovered cases.

    Returns
    -------
    list of Case
        The same cases (same order).

    Raises
    ------
    InputError
        Two cases would write to the same output name (a patient named like another's time point).
    """
    if any(c.timepoint is not None for c in cases):
        cases = [c if c.timepoint is not None else dataclasses.replace(c, timepoint="") for c in cases]
    seen: dict[str, Case] = {}
    for c in cases:
        other = seen.setdefault(safe_id(c.key), c)
        if other is not c:
            raise InputError(
                f"{c.folder}: case {c.key!r} and {other.folder} would write to the same output name; "
                "rename one of the folders or use a manifest"
            )
    return cases


# --- BIDS ----------------------------------------------------------------------------------------


def _anat_dirs(subject: Path) -> list[tuple[str | None, Path]]:
    """(session, anat folder) of a BIDS subject: ``anat/`` and every ``ses-*/anat/``."""
    out: list[tuple[str | None, Path]] = []
    if (subject / "anat").is_dir():
        out.append((None, subject / "anat"))
    for ses in sorted(subject.glob("ses-*"), key=lambda d: _natural(d.name)):
        if ses.is_dir() and (ses / "anat").is_dir():
            out.append((ses.name, ses / "anat"))
    return out


def _is_bids(folders: list[Path]) -> bool:
    return any(f.name.startswith("sub-") and _anat_dirs(f) for f in folders)


def _entities(name: str) -> set[str]:
    """BIDS key-value entities of a file name (``sub-01``, ``ses-1``, ``acq-sag``, ...)."""
    stem = re.sub(r"\.(nii|nii\.gz|nrrd|mha|mhd)$", "", name, flags=re.IGNORECASE)
    return {part for part in stem.split("_") if re.fullmatch(r"[A-Za-z0-9]+-[A-Za-z0-9]+", part)}


def _bids_image(anat: Path) -> tuple[Path | None, str | None]:
    vols = [
        f for f in sorted(anat.iterdir()) if f.is_file() and _is_volume_file(f) and not f.name.startswith(".")
    ]
    for suffix in _BIDS_IMAGE_SUFFIXES:
        hits = [f for f in vols if re.search(rf"_{suffix}\.(nii|nii\.gz)$", f.name)]
        if len(hits) == 1:
            return hits[0], None
        if hits:
            return None, f"several *_{suffix} images: {', '.join(h.name for h in hits)}; use a manifest"
    return None, f"no *_{'.nii.gz or *_'.join(_BIDS_IMAGE_SUFFIXES)}.nii.gz image in {anat}"


def _bids_masks(root: Path, rel: Path, image: Path) -> list[Path]:
    """Mask candidates for ``image`` under ``derivatives/<tool>/<rel>`` (``rel`` = sub-X[/ses-Y]/anat)."""
    want = _entities(image.name)
    found: list[Path] = []
    deriv = root / "derivatives"
    if not deriv.is_dir():
        return found
    for tool in sorted(d for d in deriv.iterdir() if d.is_dir() and not d.name.startswith(".")):
        anat = tool / rel
        if not anat.is_dir():
            continue
        for f in sorted(anat.iterdir()):
            if f.name.startswith("."):
                continue
            if f.is_dir():
                if is_totalseg_folder(f):  # TotalSegmentator folders carry no entities to match
                    found.append(f)
                continue
            if not _is_volume_file(f) or is_spineps_subreg(f):
                continue
            if (is_spineps_vert(f) or is_mask_name(f) or _BIDS_MASK_RE.search(f.name)) and want <= _entities(
                f.name
            ):
                found.append(f)
    return found


def _bids_cases(root: Path, folders: list[Path]) -> list[Case]:
    cases: list[Case] = []
    for subject in folders:
        if not subject.name.startswith("sub-"):
            continue  # derivatives/, code/, sourcedata/ ...
        anats = _anat_dirs(subject)
        if not anats:
            cases.append(Case(subject.name, None, None, subject, "no anat/ or ses-*/anat/ folder", subject))
            continue
        dates = _bids_session_dates(subject)
        for ses, anat in anats:
            pid = subject.name
            tp = {"timepoint": ses, "scan_date": dates.get(ses)} if ses else {}
            image, problem = _bids_image(anat)
            if image is None:
                cases.append(Case(pid, None, None, anat, problem, anat, ses, **tp))
                continue
            masks = _bids_masks(root, anat.relative_to(root), image)
            if len(masks) != 1:
                where = root / "derivatives" / "<tool>" / anat.relative_to(root)
                problem = (
                    f"no mask for {image.name} under {where}"
                    if not masks
                    else f"several masks for {image.name}: "
                    f"{', '.join(str(m.relative_to(root)) for m in masks)}; keep one or use a manifest"
                )
                cases.append(Case(pid, image, None, anat, problem, anat, ses, **tp))
                continue
            cases.append(Case(pid, image, masks[0], anat, None, None, ses, **tp))
    return cases


def _bids_session_dates(subject: Path) -> dict[str | None, str | None]:
    """Session -> scan date (ISO) from ``sub-X/sub-X_sessions.tsv`` (``session_id``, ``acq_time``)."""
    import csv
    import datetime

    tsv = subject / f"{subject.name}_sessions.tsv"
    out: dict[str | None, str | None] = {}
    if not tsv.is_file():
        return out
    try:
        with tsv.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                ses, when = (row.get("session_id") or "").strip(), (row.get("acq_time") or "").strip()
                try:
                    out[ses] = datetime.date.fromisoformat(when[:10]).isoformat()
                except ValueError:
                    continue  # "n/a" or no date: the scan date then comes from DICOM or stays empty
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return out
