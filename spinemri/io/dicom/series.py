"""DICOM input: find the series in a folder, pick one, load it as a :class:`~spinemri.volume.Volume`.

Public functions:

* :func:`list_series` — one :class:`SeriesInfo` per series found under a folder
  (headers only, ``stop_before_pixels=True``);
* :func:`pick_series` — the documented choice among several series (also used
  by the cohort runner);
* :func:`load_dicom` — a folder or a single file (classic single-frame series,
  one enhanced multi-frame file, or one Siemens mosaic) as a 3-D Volume.

How files are grouped
---------------------
Files are grouped by ``(SeriesInstanceUID, SeriesNumber)``, not by
SeriesInstanceUID alone: some exports (dcm_qa_ts, nine transfer syntaxes of one
image) reuse one SeriesInstanceUID for several series that differ only in
SeriesNumber; grouping by UID alone would stack nine copies of one slice.

How a series is chosen (:func:`pick_series`)
--------------------------------------------
1. ``series`` given: it must match exactly one series, by SeriesInstanceUID,
   by SeriesNumber (digits) or as a case-insensitive regular expression searched
   in SeriesDescription (tried in that order).
2. Otherwise localizers are dropped (see :attr:`SeriesInfo.is_localizer`); one
   remaining series is taken. With several, each gets a rank: 3 = sagittal
   fluid-sensitive (description mentions STIR, TIRM, fat-sat/fs, SPAIR, SPIR or
   Dixon water), 2 = sagittal T2, 1 = other sagittal, 0 = other planes. The one
   series with the highest rank is taken; a tie raises :class:`DicomError`
   listing every series and asking for ``series=`` (CLI ``--series``).

Headers are read by :mod:`spinemri.io.dicom.header` (which also has
:func:`~spinemri.io.dicom.header.is_dicom_file`); the loaded files become a
Volume in :mod:`spinemri.io.dicom.assemble` (frame geometry, pixel decoding,
4-D and mosaic handling in its sibling modules); docs/coordinates.md explains
the affine.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DicomError, InputError
from ...volume import Volume
from .frames import ENHANCED_SOP_CLASSES, frame_orientations
from .header import hget, read_header

__all__ = [
    "SeriesCheck",
    "check_series",
    "SeriesInfo",
    "list_series",
    "pick_series",
    "load_dicom",
    "plane_of",
    "series_rank",
    "short_uid",
]

logger = logging.getLogger(__name__)

#: A slice normal more than this many degrees from every patient axis is "oblique".
OBLIQUE_DEG = 30.0

#: A series of at most this many images in another plane than the study's main series is a scout.
SCOUT_MAX_IMAGES = 3

#: SOP classes that must carry an image (a header without Rows means a truncated file).
IMAGE_SOP_CLASSES = ENHANCED_SOP_CLASSES | {
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.128",  # PET Image Storage
}

_FLUID_TOKENS = {"stir", "tirm", "fs", "fatsat", "spair", "spir", "water", "fse_fs", "fsat"}
_T2_RE = re.compile(r"(^|[^a-z0-9])t2", re.I)


@dataclass(frozen=True)
class SeriesInfo:
    """Header summary of one DICOM series (no pixel data read).

    Attributes
    ----------
    series_uid : str
        SeriesInstanceUID ("" when absent).
    series_number : int or None
        SeriesNumber.
    description : str
        SeriesDescription ("" when absent).
    modality : str
        Modality, e.g. "MR".
    plane : str
        "sagittal", "coronal", "axial" or "oblique" from ImageOrientationPatient
        (slice normal within 30 degrees of a patient axis), "mixed" when the
        images have several planes, "unknown" without orientation.
    n_images : int
        Number of 2-D images (frames of enhanced files counted one by one;
        a Siemens mosaic counts as one image).
    rows, columns : int
        Matrix size of the images.
    image_type : tuple of str
        ImageType values of the first file.
    is_localizer : bool
        ImageType contains LOCALIZER; or the images span several planes (3-plane
        scout); or the series has at most 3 images in another plane than the
        largest non-localizer series found with it.
    files : tuple of Path
        The files of the series, sorted by path.
    """

    series_uid: str
    series_number: int | None
    description: str
    modality: str
    plane: str
    n_images: int
    rows: int
    columns: int
    image_type: tuple[str, ...]
    is_localizer: bool
    files: tuple[Path, ...]

    def label(self) -> str:
        """One-line description used in messages: number, plane, images, shortened uid.

        SeriesDescription is not quoted: sites put patient names in it, and messages reach
        errors.csv and logs (``spinemri info --show-descriptions`` shows it on request).

        Returns
        -------
        str
            E.g. ``"#3 (sagittal, 15 images, uid 1.2.826....4711.2)"``.
        """
        return (
            f"#{self.series_number if self.series_number is not None else '?'} "
            f"({self.plane}, {self.n_images} images, uid {short_uid(self.series_uid) or '?'})"
        )


def short_uid(uid: str) -> str:
    """First 8 and last 10 characters of a UID (the middle is the vendor/date part).

    Parameters
    ----------
    uid : str
        A DICOM UID.

    Returns
    -------
    str
        The UID itself when it has at most 21 characters, else ``uid[:8] + "..." + uid[-10:]``.
    """
    return uid if len(uid) <= 21 else uid[:8] + "..." + uid[-10:]


@dataclass
class _Header:
    """One readable DICOM file with its parsed header (internal)."""

    path: Path
    ds: Any
    key: tuple[str, int | None]


# --------------------------------------------------------------------------- scanning


def _iter_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files)


def _meta_sop(ds: Any) -> str:
    fm = getattr(ds, "file_meta", None)
    return str(fm.get("MediaStorageSOPClassUID", "") or "") if fm is not None else ""


def _series_key(ds: Any) -> tuple[str, int | None]:
    uid = str(hget(ds, "SeriesInstanceUID", "") or "")
    try:  # pydicom itself raises OverflowError converting an IS such as "1e999"
        num = hget(ds, "SeriesNumber", None)
        number = int(num) if num not in (None, "") else None
    except (TypeError, ValueError, OverflowError):  # junk such as "abc" or "1e999"
        number = None
    return (uid, number)


def _scan(path: Path, *, stop_before_pixels: bool) -> list[_Header]:
    """Read the header of every DICOM file at ``path`` (a folder, recursively, or one file)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if not path.is_dir():
        from ..nifti import check_regular_file

        check_regular_file(path)  # a FIFO would block the header read forever
    files = _iter_files(path) if path.is_dir() else [path]
    headers: list[_Header] = []
    skipped: list[Path] = []
    for f in files:
        if f.name.upper() == "DICOMDIR":
            logger.debug("%s: DICOMDIR index skipped", f)
            continue
        ds = read_header(f, stop_before_pixels=stop_before_pixels, quiet=False)
        if ds is None:
            logger.debug("%s: not a DICOM file, ignored", f)
            skipped.append(f)
            continue
        sop = str(hget(ds, "SOPClassUID", "") or _meta_sop(ds))
        if "Rows" not in ds and (len(ds) == 0 or sop in IMAGE_SOP_CLASSES):
            raise DicomError(
                f"{f}: the file is an image ({sop or 'SOP class unknown'}) but its header stops before the "
                "image description (no Rows); the file is truncated or corrupt: remove it or copy it again"
            )
        if "Rows" not in ds and "PixelData" not in ds and "FloatPixelData" not in ds:
            logger.debug("%s: DICOM file without an image (SOP class %s), ignored", f, ds.get("SOPClassUID"))
            skipped.append(f)
            continue
        headers.append(_Header(f, ds, _series_key(ds)))
    if not headers:
        what = "folder" if path.is_dir() else "file"
        detail = (
            "it holds no files"
            if path.is_dir() and not files
            else f"none of its {len(files)} file(s) is a DICOM image (e.g. {skipped[0].name})"
            if skipped
            else "it is not a DICOM image"
        )
        raise DicomError(
            f"{path}: no DICOM image found in this {what}: {detail}. "
            "Pass a folder of DICOM files, one DICOM file, or a NIfTI/NRRD/MHA file"
        )
    return headers


# --------------------------------------------------------------------------- series summary


def plane_of(iop: Sequence[float] | None) -> str:
    """Acquisition plane from ImageOrientationPatient.

    Parameters
    ----------
    iop : sequence of 6 float, or None
        Direction cosines of increasing column index (first triplet) and of
        increasing row index (second triplet), in DICOM LPS.

    Returns
    -------
    str
        "sagittal" (slice normal along patient left-right), "coronal"
        (anterior-posterior), "axial" (superior-inferior), "oblique" when the
        normal is more than 30 degrees from every axis, "unknown" when ``iop``
        is missing or invalid.
    """
    if iop is None:
        return "unknown"
    try:
        v = np.asarray([float(x) for x in iop], dtype=np.float64)
    except (TypeError, ValueError):
        return "unknown"
    if v.shape != (6,) or not np.all(np.isfinite(v)):
        return "unknown"
    n = np.cross(v[:3], v[3:])
    norm = np.linalg.norm(n)
    if norm < 1e-6:
        return "unknown"
    n = np.abs(n / norm)
    axis = int(np.argmax(n))
    if n[axis] < np.cos(np.deg2rad(OBLIQUE_DEG)):
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _n_frames(ds: Any) -> int:
    try:
        return max(int(hget(ds, "NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError, OverflowError):
        return 1


def _summarise(key: tuple[str, int | None], group: list[_Header]) -> SeriesInfo:
    first = group[0].ds
    planes: set[str] = set()
    seen: dict[tuple[Any, ...], str] = {}  # one plane_of per distinct orientation, not per image
    for h in group:
        for iop in frame_orientations(h.ds):
            if isinstance(iop, list) and len(iop) == 6:  # parsed by hget: plain floats
                orient = tuple(iop)
                plane = seen.get(orient)
                if plane is None:
                    plane = seen[orient] = plane_of(iop)
                planes.add(plane)
            else:
                planes.add(plane_of(iop))
    n_planes = len(planes)
    plane = next(iter(planes)) if n_planes == 1 else "mixed"
    image_type = tuple(str(x) for x in (hget(first, "ImageType") or []))
    localizer = any("LOCALIZER" in t.upper() for t in image_type) or n_planes > 1
    return SeriesInfo(
        series_uid=key[0],
        series_number=key[1],
        description=str(first.get("SeriesDescription", "") or ""),
        modality=str(first.get("Modality", "") or ""),
        plane=plane,
        n_images=sum(_n_frames(h.ds) for h in group),
        rows=int(hget(first, "Rows", 0) or 0),
        columns=int(hget(first, "Columns", 0) or 0),
        image_type=image_type,
        is_localizer=localizer,
        files=tuple(h.path for h in group),
    )


def _group(headers: Iterable[_Header]) -> dict[tuple[str, int | None], list[_Header]]:
    groups: dict[tuple[str, int | None], list[_Header]] = {}
    for h in headers:
        groups.setdefault(h.key, []).append(h)
    return groups


def _mark_scouts(infos: list[SeriesInfo]) -> list[SeriesInfo]:
    """Flag tiny series in another plane than the largest non-localizer series as scouts."""
    main = [s for s in infos if not s.is_localizer]
    if not main:
        return infos
    ref = max(main, key=lambda s: s.n_images)
    out = []
    for s in infos:
        if not s.is_localizer and s is not ref and s.n_images <= SCOUT_MAX_IMAGES and s.plane != ref.plane:
            s = SeriesInfo(**{**s.__dict__, "is_localizer": True})
        out.append(s)
    return out


def _infos_from_headers(headers: list[_Header]) -> list[SeriesInfo]:
    infos = [_summarise(k, g) for k, g in _group(headers).items()]
    infos = _mark_scouts(infos)
    return sorted(
        infos, key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.series_uid)
    )


def list_series(path: str | os.PathLike[str]) -> list[SeriesInfo]:
    """List the DICOM series under a folder (recursively) or in one file, reading headers only.

    Parameters
    ----------
    path : path-like
        A folder (searched recursively; hidden files, DICOMDIR and non-DICOM
        files are skipped with a debug log) or a single DICOM file.

    Returns
    -------
    list of SeriesInfo
        Sorted by SeriesNumber. Files are grouped by
        ``(SeriesInstanceUID, SeriesNumber)``.

    Raises
    ------
    InputError
        ``path`` does not exist.
    DicomError
        No DICOM image was found, or a file claiming to be DICOM is corrupt.
    """
    return _infos_from_headers(_scan(Path(path), stop_before_pixels=True))


@dataclass(frozen=True)
class SeriesCheck:
    """A series and whether :func:`load_dicom` can load it, as far as the headers tell.

    Attributes
    ----------
    info : SeriesInfo
        The series.
    problem : str or None
        Why the loader refuses it (its own message, without the leading ``"<path>: "``), or None.
    """

    info: SeriesInfo
    problem: str | None


def check_series(path: str | os.PathLike[str]) -> list[SeriesCheck]:
    """Every series under ``path`` with the loader's own refusals, reading headers only.

    The same checks as :func:`load_dicom` makes before it reads the pixels: a copied series
    (each image twice), a 4-D or mosaic time series, mixed matrix sizes, orientations or
    spacings, duplicate, missing or non-collinear slices. What only the pixel data show (an
    unsupported compression, non-finite values) is not checked.

    Parameters
    ----------
    path : path-like
        A folder (searched recursively) or one DICOM file.

    Returns
    -------
    list of SeriesCheck
        In the order of :func:`list_series`.

    Raises
    ------
    InputError
        ``path`` does not exist.
    DicomError
        As :func:`list_series`.
    """
    from .assemble import check_series_headers

    p = Path(path)
    headers = _scan(p, stop_before_pixels=True)
    checks: list[SeriesCheck] = []
    for info in _infos_from_headers(headers):
        wanted = set(info.files)
        group = [h for h in headers if h.path in wanted]
        problem: str | None = None
        try:
            _refuse_copies(group, p)
            check_series_headers(group, info, source=p)
        except DicomError as exc:
            problem = str(exc).removeprefix(f"{p}: ")
        checks.append(SeriesCheck(info, problem))
    return checks


# --------------------------------------------------------------------------- choosing a series


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", text.lower()) if t}


def series_rank(info: SeriesInfo) -> int:
    """Preference of a series for lesion measurement (higher is better).

    3 = sagittal fluid-sensitive (STIR, TIRM, fat-saturated T2: the
    description contains stir, tirm, fs, fatsat, "fat sat", spair, spir or
    Dixon water), 2 = sagittal T2, 1 = other sagittal, 0 = any other plane.

    Parameters
    ----------
    info : SeriesInfo
        The series (its plane and description are used).

    Returns
    -------
    int
        0 to 3.
    """
    if info.plane != "sagittal":
        return 0
    desc = info.description.lower()
    toks = _tokens(desc)
    fluid = bool(toks & _FLUID_TOKENS) or "fat sat" in desc or "fat-sat" in desc or "fat_sat" in desc
    if "dixon" in desc and ({"w", "water"} & toks or desc.rstrip().endswith("_w")):
        fluid = True
    if fluid:
        return 3
    if _T2_RE.search(desc):
        return 2
    return 1


def _listing(infos: Sequence[SeriesInfo]) -> str:
    """The series of a message, one a line: number, plane, images, uid (never the description)."""
    return "\n".join(
        f"  - number {s.series_number}, {s.plane}, {s.n_images} images, "
        f"uid {short_uid(s.series_uid)}{' (localizer)' if s.is_localizer else ''}"
        for s in infos
    )


def pick_series(
    infos: Sequence[SeriesInfo], series: str | int | None = None, *, where: str | os.PathLike[str] = ""
) -> SeriesInfo:
    """Choose the series to load (see the module notes for the ranking).

    Parameters
    ----------
    infos : sequence of SeriesInfo
        As returned by :func:`list_series`.
    series : str or int, optional
        SeriesInstanceUID, SeriesNumber, or a regular expression searched
        (case-insensitively) in SeriesDescription.
    where : path-like, optional
        The folder or file the series come from, named in error messages.

    Returns
    -------
    SeriesInfo

    Raises
    ------
    DicomError
        No series, no match, several matches, only localizers, or a ranking tie.
    """
    src = f"{where}: " if str(where) else ""
    if not infos:
        raise DicomError(f"{src}no DICOM series found")
    if series is not None:
        key = str(series).strip()
        matches = [s for s in infos if s.series_uid == key]
        how = "SeriesInstanceUID"
        if not matches and key.lstrip("+-").isdigit():
            matches = [s for s in infos if s.series_number == int(key)]
            how = "SeriesNumber"
        if not matches:
            try:
                rx = re.compile(key, re.I)
            except (re.error, OverflowError, RecursionError) as exc:  # "a{99999999999}" overflows
                raise DicomError(
                    f"{src}series={key!r} is neither a SeriesInstanceUID, a SeriesNumber nor a valid regular "
                    f"expression ({exc}); the series are:\n{_listing(infos)}"
                ) from None
            matches = [s for s in infos if rx.search(s.description)]
            how = "SeriesDescription pattern"
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise DicomError(
                f"{src}no series matches series={key!r} (tried SeriesInstanceUID, SeriesNumber and a "
                f"SeriesDescription pattern); the series are:\n{_listing(infos)}"
            )
        raise DicomError(
            f"{src}series={key!r} matches {len(matches)} series by {how}:\n{_listing(matches)}\n"
            "pass a more specific value (a SeriesNumber is unique when several series share one UID)"
        )
    candidates = [s for s in infos if not s.is_localizer]
    if not candidates:
        raise DicomError(
            f"{src}only localizer/scout series found:\n{_listing(infos)}\n"
            "pass series= (CLI --series) to load one of them anyway"
        )
    if len(candidates) == 1:
        return candidates[0]
    ranks = [series_rank(s) for s in candidates]
    best = max(ranks)
    top = [s for s, r in zip(candidates, ranks, strict=False) if r == best]
    if len(top) == 1:
        logger.info(
            "%spicked series %s (rank %d of %d candidates)", src, top[0].label(), best, len(candidates)
        )
        return top[0]
    raise DicomError(
        f"{src}{len(top)} series are equally good candidates (preference: sagittal STIR/fat-saturated T2, "
        f"then sagittal T2, then other sagittal):\n{_listing(top)}\n"
        "pass series= (CLI --series) with a SeriesNumber, SeriesInstanceUID or a description pattern"
    )


# --------------------------------------------------------------------------- loading


def load_dicom(path: str | os.PathLike[str], series: str | int | None = None) -> Volume:
    """Load a DICOM series (folder) or one DICOM file as a 3-D Volume.

    Parameters
    ----------
    path : path-like
        A folder (searched recursively) or one file: classic single-frame
        image, enhanced multi-frame image or Siemens mosaic.
    series : str or int, optional
        Which series when there are several; see :func:`pick_series`.

    Returns
    -------
    Volume
        ``data[i, j, k]``: i = DICOM column index, j = DICOM row index, k =
        slice index increasing along the slice normal (row direction x column
        direction). Rescaled values (RescaleSlope/Intercept applied; integer
        dtype kept when slope is 1 and the intercept integral, else float32).
        The affine maps (i, j, k) to RAS+ mm (docs/coordinates.md). ``meta``:
        source, format "dicom", modality, series_description, series_number,
        series_uid, plane, slice_thickness, spacing_between_slices (mm, from
        the slice positions), transfer_syntax, manufacturer, patient_id_hash
        (salted, see :func:`spinemri.io.dicom.assemble.patient_id_hash`),
        n_files, image_type.

    Raises
    ------
    InputError
        ``path`` does not exist.
    DicomError
        Unreadable or truncated files, no pixel data, several series without
        a unique choice, 4-D series (several volumes/echoes/time points at the
        same positions), mosaic time series, mixed orientations, duplicate or
        missing slices, non-uniform slice spacing, invalid PixelSpacing or
        ImagePositionPatient. The message names the file or folder.
    """
    from .assemble import headers_to_volume

    p = Path(path)
    headers = _scan(p, stop_before_pixels=False)
    infos = _infos_from_headers(headers)
    chosen = pick_series(infos, series, where=p)
    wanted = set(chosen.files)
    group = [h for h in headers if h.path in wanted]
    _refuse_copies(group, p)
    return headers_to_volume(group, chosen, source=p)


def _refuse_copies(group: list[_Header], folder: Path) -> None:
    """A series copied into a sub-folder (each SOPInstanceUID twice) is not a 4-D series: say so."""
    first: dict[str, Path] = {}
    dupes: list[tuple[Path, Path]] = []
    for h in group:
        uid = str(hget(h.ds, "SOPInstanceUID", "") or "")
        if not uid:
            continue
        if uid in first:
            dupes.append((first[uid], h.path))
        else:
            first[uid] = h.path
    if not dupes:
        return
    a, b = dupes[0]

    def where(f: Path) -> str:
        try:
            rel = f.parent.relative_to(folder)
        except ValueError:
            rel = f.parent
        return str(rel) if str(rel) != "." else "the folder itself"

    sub = where(b) if where(b) != "the folder itself" else where(a)
    raise DicomError(
        f"{folder}: the folder holds the same images twice ({len(dupes)} SOPInstanceUID(s) in two files, "
        f"e.g. {a.relative_to(folder) if folder in a.parents else a} and "
        f"{b.relative_to(folder) if folder in b.parents else b}); copies in {sub}? Remove the copy and "
        "run again"
    )
