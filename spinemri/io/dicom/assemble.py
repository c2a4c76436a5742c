"""Turn the files of one DICOM series into a 3-D :class:`~spinemri.volume.Volume`.

:func:`headers_to_volume` (called by :func:`spinemri.io.dicom.series.load_dicom`)
parses every frame (:mod:`~spinemri.io.dicom.frames`), refuses 4-D series,
duplicates, gaps and non-uniform or non-collinear slices, orders the slices
along the normal, fills the (slices, rows, columns) stack of stored values —
one ``readinto`` per file for plain uncompressed series, the threaded JPEG 2000
decoder (:mod:`~spinemri.io.dicom.j2k`) when it applies, else file by file
(:mod:`~spinemri.io.dicom.pixels`) — rescales it, and builds the Volume with
its affine and meta (Siemens mosaics: :mod:`~spinemri.io.dicom.mosaic`).
docs/coordinates.md explains the affine; in short, with
DICOM's ImageOrientationPatient ``F = [Fc | Fr]`` (``Fc`` = direction of
increasing *column* index, ``Fr`` = of increasing *row* index), PixelSpacing
``[Δr, Δc]`` (row spacing, column spacing), ImagePositionPatient ``T1`` of the
first slice and the mean step ``s`` between consecutive slice positions::

    data[i, j, k]  i = column index, j = row index, k = slice index
    LPS affine = [[Fc * Δc, Fr * Δr, s, T1], [0, 0, 0, 1]]
    RAS affine = diag(-1, -1, 1, 1) @ LPS affine

which is what nibabel's DICOM wrappers and dcm2niix compute (up to the order
and direction of the array axes, which does not change world geometry).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DicomError, GeometryError, SpinemriWarning
from ...volume import Volume
from ..convert import kji_to_ijk
from . import j2k
from .frames import Frame, check_orientation, file_frames, is_enhanced, slice_affine
from .header import hget, opt_float, transfer_syntax
from .mosaic import demosaic, is_mosaic
from .pixels import (
    Layout,
    check_length,
    decode_frames,
    deferred_span,
    fix_bits,
    invert_monochrome1,
    is_monochrome1,
    read_layout,
    rescale_finite,
)

__all__ = ["headers_to_volume", "check_series_headers", "patient_id_hash", "ID_SALT_ENV", "DEFAULT_ID_SALT"]

logger = logging.getLogger(__name__)

#: Deprecated environment variable of the old salted pseudonym (see :mod:`spinemri.io.idkey`).
ID_SALT_ENV = "SPINEMRI_ID_SALT"
#: The public salt of spinemri < issue 16; ignored when set as SPINEMRI_ID_SALT (never a pseudonym key).
DEFAULT_ID_SALT = "spinemri"

#: Two slice positions closer than this along the normal are the same position (mm).
SAME_POSITION_MM = 0.01
#: Allowed deviation of a slice step from the median step: absolute (mm) plus relative.
STEP_ATOL_MM = 1e-3
STEP_RTOL = 0.01


def patient_id_hash(patient_id: str | None, salt: str | None = None) -> str | None:
    """Pseudonymous patient id: first 16 hex characters of HMAC-SHA-256(key, PatientID).

    Parameters
    ----------
    patient_id : str or None
        DICOM PatientID; ``None`` or empty gives ``None``.
    salt : str, optional
        Deprecated: with a salt, the old ``sha256(salt + PatientID)`` (for code that re-links
        studies pseudonymised that way). Without it (the default), the keyed hash with the key
        of :func:`spinemri.io.idkey.resolve_id_key` (``$SPINEMRI_ID_KEY``,
        ``$SPINEMRI_ID_KEY_FILE`` or ``~/.config/spinemri/id_key``, created mode 0600 on first
        use; a private ``$SPINEMRI_ID_SALT`` still selects the deprecated salted hash).

    Returns
    -------
    str or None
        16 lower-case hex characters.

    Raises
    ------
    ConfigError
        The key is too short, or its file cannot be read or created.
    """
    from ..idkey import IdKey, pseudonym, resolve_id_key

    if not patient_id:
        return None
    if salt is not None:
        return pseudonym(str(patient_id), IdKey(salt.encode("utf-8"), "salted-sha256", "argument"))
    key = resolve_id_key(create=True)
    assert key is not None
    return pseudonym(str(patient_id), key)


def headers_to_volume(group: list[Any], info: Any, *, source: Path) -> Volume:
    """Load the files of one series as a Volume.

    Parameters
    ----------
    group : list of header records
        The series' files: each with ``path`` and its header ``ds`` (read with
        PixelData deferred), as :func:`spinemri.io.dicom.series.load_dicom` scans them.
    info : SeriesInfo
        The series' summary (label, description, number, uid, plane, image type).
    source : Path
        The folder or file the user passed, named in messages and kept in ``meta["source"]``.

    Returns
    -------
    Volume
        See :func:`spinemri.io.dicom.series.load_dicom`.

    Raises
    ------
    DicomError
        Mosaic time series, 4-D series, mixed matrix sizes, orientations or
        spacings, duplicate or missing slices, non-uniform or non-collinear
        slices, and every refusal of the frame and pixel readers.
    """
    where = source
    first = group[0].ds
    is_folder = source.is_dir()
    if any(is_mosaic(h.ds) for h in group):
        _refuse_mosaic_series(group, info, where)
        stored, affine, notes = demosaic(group[0], where)
        lay = read_layout(group[0].path, first)
        stored = _monochrome1_to_2(stored, group, [lay], [0] * stored.shape[0], notes, where)
        slopes = np.full(stored.shape[0], opt_float(first.get("RescaleSlope", 1.0)) or 1.0)
        inters = np.full(stored.shape[0], opt_float(first.get("RescaleIntercept", 0.0)) or 0.0)
        data = kji_to_ijk(rescale_finite(stored, slopes, inters, where))
        return _volume(data, affine, _meta(first, info, source, len(group), notes), where)

    frames, dist, row_dir, col_dir, normal = _stack(group, info, where)
    shapes = {(int(hget(h.ds, "Rows", 0) or 0), int(hget(h.ds, "Columns", 0) or 0)) for h in group}
    n = len(frames)
    thickness = frames[0].thickness
    notes = {}
    if n == 1:
        sbs = opt_float(first.get("SpacingBetweenSlices")) or thickness or 1.0
        step = normal * sbs
        notes["spacing_between_slices"] = float(sbs)
        if not is_enhanced(first) and not is_folder:
            warnings.warn(
                f"{source}: this file holds a single slice of series {info.label()}; pass its folder to load "
                "the whole series",
                SpinemriWarning,
                stacklevel=3,
            )
    else:
        step = (frames[-1].ipp - frames[0].ipp) / (n - 1)  # on a straight line: checked by _stack
        notes["spacing_between_slices"] = float((dist[-1] - dist[0]) / (n - 1))
        shear = float(np.linalg.norm(step - normal * (step @ normal)))
        if shear > 1e-3:
            notes["sheared_stack_mm"] = shear  # gantry tilt: kept exactly in the (non-orthogonal) affine
    notes["slice_thickness"] = thickness
    affine = slice_affine(row_dir, col_dir, frames[0].spacing, step, frames[0].ipp)

    # pixels: decode each file once, place its frames
    by_file: dict[int, list[tuple[int, Frame]]] = {}
    for k, f in enumerate(frames):
        by_file.setdefault(f.file_index, []).append((k, f))
    rows, cols = shapes.pop()
    layouts = [read_layout(h.path, h.ds) for h in group]  # every refusal of decode_frames, once per file
    raw: np.ndarray | None = _read_native_stack(group, layouts, frames, rows, cols)
    if raw is None:
        raw = _read_j2k_stack(group, layouts, by_file, n, rows, cols)
    for fi, items in by_file.items() if raw is None else ():
        h = group[fi]
        arr = decode_frames(h.path, h.ds, layouts[fi])
        if raw is None:
            raw = np.empty((n, rows, cols), dtype=arr.dtype)
        elif arr.dtype != raw.dtype:
            raw = raw.astype(np.result_type(raw.dtype, arr.dtype))
        for k, f in items:
            raw[k] = arr[f.frame]
    assert raw is not None
    raw = _monochrome1_to_2(raw, group, layouts, [f.file_index for f in frames], notes, where)
    slopes = np.array([f.slope for f in frames])
    inters = np.array([f.intercept for f in frames])
    data = kji_to_ijk(rescale_finite(raw, slopes, inters, where))
    return _volume(data, affine, _meta(first, info, source, len(group), notes), where)


def check_series_headers(group: list[Any], info: Any, *, source: Path) -> None:
    """The refusals of :func:`headers_to_volume` that the headers alone decide, without reading pixels.

    ``spinemri info`` uses it to say which series the loader can load (the same code refuses
    them when loading).

    Parameters
    ----------
    group : list of header records
        The series' files (``path`` and header ``ds``; pixel data need not be read).
    info : SeriesInfo
        The series' summary.
    source : Path
        The folder or file the user passed, named in messages.

    Raises
    ------
    DicomError
        A mosaic time series, a 4-D series, mixed matrix sizes, orientations or spacings,
        duplicate or missing slices, non-uniform or non-collinear slices, an unreadable frame
        geometry. Refusals that need the pixel data (an unsupported compression, non-finite
        values) are found only by loading.
    """
    if any(is_mosaic(h.ds) for h in group):
        _refuse_mosaic_series(group, info, source)
        return
    _stack(group, info, source)


def _refuse_mosaic_series(group: list[Any], info: Any, where: Path) -> None:
    if len(group) > 1:
        raise DicomError(
            f"{where}: series {info.label()} is a Siemens MOSAIC series of {len(group)} files, i.e. "
            f"{len(group)} volumes (fMRI/diffusion time series, 4-D); spinemri measures one 3-D volume: "
            "pass one mosaic file, or convert with dcm2niix and pass one 3-D volume"
        )


def _stack(
    group: list[Any], info: Any, where: Path
) -> tuple[list[Frame], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The frames of a classic or enhanced series ordered along the slice normal, every header check done.

    Returns (frames, distances along the normal, row direction, column direction, normal).
    """
    frames: list[Frame] = []
    for idx, h in enumerate(group):
        frames.extend(file_frames(h.path, idx, h.ds))
    shapes = {(int(hget(h.ds, "Rows", 0) or 0), int(hget(h.ds, "Columns", 0) or 0)) for h in group}
    if len(shapes) > 1:
        raise DicomError(
            f"{where}: the images of series {info.label()} have different matrix sizes {sorted(shapes)}"
        )
    row_dir, col_dir = check_orientation(frames, where)
    spacings = np.array([f.spacing for f in frames])
    if np.max(np.abs(spacings - spacings[0])) > 1e-4 * max(1.0, float(spacings[0].max())):
        odd = frames[int(np.argmax(np.max(np.abs(spacings - spacings[0]), axis=1)))]
        raise DicomError(
            f"{where}: PixelSpacing differs between images "
            f"({frames[0].path.name}: {list(frames[0].spacing)}, "
            f"{odd.path.name}: {list(odd.spacing)}); the images do not form one volume"
        )
    normal = np.cross(row_dir, col_dir)
    frames, dist = _order_slices(frames, normal, where)
    n = len(frames)
    if n > 1:
        step = (frames[-1].ipp - frames[0].ipp) / (n - 1)
        pred = frames[0].ipp[None, :] + np.arange(n)[:, None] * step[None, :]
        off = np.max(np.linalg.norm(np.stack([f.ipp for f in frames]) - pred, axis=1))
        if off > STEP_ATOL_MM + STEP_RTOL * float(np.linalg.norm(step)):
            raise DicomError(
                f"{where}: the slice positions do not lie on a straight line (deviation {off:.3g} mm); "
                "the series is not one regular stack"
            )
    return frames, dist, row_dir, col_dir, normal


def _monochrome1_to_2(
    raw: np.ndarray,
    group: list[Any],
    layouts: list[Layout],
    file_of_slice: list[int],
    notes: dict[str, Any],
    where: Path,
) -> np.ndarray:
    """Invert the stored values of a MONOCHROME1 series (lowest value white) to MONOCHROME2.

    Measured as stored, a MONOCHROME1 series had its bright lesions dark: 0 lesions, exit 0.
    See :func:`spinemri.io.dicom.pixels.invert_monochrome1` for the convention; sets
    ``notes["inverted_monochrome1"] = True`` (kept in the Volume's ``meta``).
    """
    mono1 = [is_monochrome1(h.ds) for h in group]
    if not any(mono1):
        return raw
    if not all(mono1):
        odd = next(h.path.name for h, m in zip(group, mono1, strict=True) if not m)
        raise DicomError(
            f"{where}: the series mixes MONOCHROME1 (inverted grey scale) and MONOCHROME2 images "
            f"({odd} is {group[mono1.index(False)].ds.get('PhotometricInterpretation')!s}); its images do "
            "not share one grey scale: export the series again"
        )
    kinds = {(layouts[i].bits_stored, layouts[i].signed) for i in set(file_of_slice)}
    if len(kinds) == 1:
        bits, signed = kinds.pop()
        raw = invert_monochrome1(raw, bits, signed)
    else:
        raw = raw if raw.flags.writeable else raw.copy()
        for k, fi in enumerate(file_of_slice):
            raw[k] = invert_monochrome1(raw[k], layouts[fi].bits_stored, layouts[fi].signed)
    notes["inverted_monochrome1"] = True
    return raw


def _order_slices(frames: list[Frame], normal: np.ndarray, where: Path) -> tuple[list[Frame], np.ndarray]:
    """Frames sorted along the normal; refuses 4-D series, duplicates, gaps and non-uniform spacing."""
    dist = np.array([f.ipp @ normal for f in frames])
    order = np.argsort(dist, kind="stable")
    frames = [frames[i] for i in order]
    dist = dist[order]
    # cluster equal positions
    new_pos = np.concatenate([[True], np.diff(dist) > SAME_POSITION_MM])
    starts = np.flatnonzero(new_pos)
    counts = np.diff(np.append(starts, len(frames)))
    if np.any(counts > 1):
        if np.all(counts == counts[0]):
            raise DicomError(
                f"{where}: this series has {len(frames)} images at {len(starts)} slice positions "
                f"({counts[0]} images per position, {_describe_4d(frames[: counts[0]])}): "
                "it is a 4-D series (several volumes, echoes, time points or image types). spinemri measures "
                "one 3-D volume: export the volume you want as its own series, or convert with dcm2niix and "
                "pass one 3-D volume (e.g. fslroi in.nii.gz out.nii.gz 0 1)"
            )
        dup = int(starts[np.argmax(counts > 1)])
        names = ", ".join(
            f.path.name + (f" frame {f.frame + 1}" if f.frame else "")
            for f in frames[dup : dup + int(counts[np.argmax(counts > 1)])]
        )
        raise DicomError(
            f"{where}: several images share the slice position {dist[dup]:.3f} mm along the normal "
            f"({names}); the folder holds duplicate files or two mixed acquisitions: remove the duplicates "
            "or pass series="
        )
    if len(frames) >= 3:
        steps = np.diff(dist)
        med = float(np.median(steps))
        bad = np.abs(steps - med) > STEP_ATOL_MM + STEP_RTOL * med
        if np.any(bad):
            b = int(np.argmax(bad))
            raise DicomError(
                f"{where}: slice spacing is not uniform: the step from {frames[b].path.name} to "
                f"{frames[b + 1].path.name} is {steps[b]:.4g} mm but the median step is {med:.4g} mm "
                f"(steps range {steps.min():.4g}..{steps.max():.4g} mm). A slice is missing or the series "
                "has gaps between slabs; spinemri does not resample silently: restore the missing file(s) or "
                "resample the series (e.g. with dcm2niix) and pass the result"
            )
    return frames, dist


def _describe_4d(frames: list[Frame]) -> str:
    varying = [key for key in frames[0].tags if len({f.tags.get(key) for f in frames}) > 1]
    if varying:
        return "differing in " + ", ".join(varying)
    ntp = frames[0].tags.get("NumberOfTemporalPositions")
    return f"NumberOfTemporalPositions {ntp}" if ntp else "differing only in vendor-private fields"


#: Files read concurrently by :func:`_read_native_stack` (reads release the GIL).
READ_THREADS = 4


def _read_native_stack(
    group: list[Any], layouts: list[Layout], frames: list[Frame], rows: int, cols: int
) -> np.ndarray | None:
    """Stored values of a classic uncompressed series read straight into one (slices, rows, cols) array.

    The fast path of :func:`headers_to_volume`: every file holds one frame of
    the same native-byte-order, uncompressed layout and its PixelData was
    deferred by the header scan, so each slice is one ``readinto`` from the
    PixelData offset into its place in the output (no intermediate bytes, no
    per-slice copy; a few threads overlap the reads). Returns None when the
    series does not qualify (the general per-file path is used). Every check
    of :func:`decode_frames` applies (same layout tests, same length
    refusals, BitsStored masking / sign extension on the whole stack).
    """
    n = len(frames)
    if n != len(group) or any(f.frame != 0 for f in frames):
        return None
    lay = layouts[0]
    if lay.compressed or lay.frames != 1 or not lay.dtype.isnative or (lay.rows, lay.cols) != (rows, cols):
        return None
    if any(other != lay for other in layouts):
        return None
    spans = [deferred_span(h.ds) for h in group]
    if any(sp is None for sp in spans):
        return None
    raw = np.empty((n, rows, cols), dtype=lay.dtype)

    def read(k: int) -> None:
        f = frames[k]
        tell, length = spans[f.file_index]  # type: ignore[misc]
        try:
            with open(f.path, "rb") as fh:
                avail = max(0, min(length, os.fstat(fh.fileno()).st_size - tell))
                check_length(f.path, lay, avail)
                fh.seek(tell)
                got = fh.readinto(memoryview(raw[k]).cast("B"))
        except OSError as exc:
            raise DicomError(
                f"{f.path}: the pixel data cannot be read ({type(exc).__name__}: {exc}); "
                "the file is truncated or corrupt"
            ) from exc
        if got != lay.nbytes:  # shrank since the header scan
            check_length(f.path, lay, got or 0)

    threads = min(READ_THREADS, os.cpu_count() or 1) if n >= 8 else 1
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(read, range(n)):  # re-raises the first failure in slice order
                pass
    else:
        for k in range(n):
            read(k)
    return fix_bits(raw, lay, inplace=True)


def _read_j2k_stack(
    group: list[Any],
    layouts: list[Layout],
    by_file: dict[int, list[tuple[int, Frame]]],
    n: int,
    rows: int,
    cols: int,
) -> np.ndarray | None:
    """A JPEG 2000 series decoded on several threads (:mod:`~spinemri.io.dicom.j2k`), or None.

    None (the per-file pydicom path decodes it) when imagecodecs is missing,
    a file has another transfer syntax, the files disagree on the stored
    type, or any frame does not decode to exactly what pydicom would return.
    """
    if not j2k.available():
        return None
    files = []
    dtype: np.dtype | None = None
    for fi in by_file:
        h = group[fi]
        if transfer_syntax(h.ds) not in j2k.JPEG2000_UIDS:
            return None
        lay = layouts[fi]
        want = np.dtype(f"{'i' if lay.signed else 'u'}{max(lay.bits_alloc // 8, 1)}")
        if (dtype is not None and want != dtype) or (lay.rows, lay.cols) != (rows, cols):
            return None
        dtype = want
        files.append((h.path, h.ds, lay.frames))
    if dtype is None:
        return None
    decoded = j2k.decode_series(files, rows, cols, dtype, j2k.frame_codestreams)
    if decoded is None:
        return None
    raw = np.empty((n, rows, cols), dtype=dtype)
    for items, arr in zip(by_file.values(), decoded, strict=True):
        for k, f in items:
            raw[k] = arr[f.frame]
    return raw


def _volume(data: np.ndarray, affine: np.ndarray, meta: dict[str, Any], where: Path) -> Volume:
    """The Volume of a series; a geometry the Volume refuses is reported against the series' path."""
    try:
        return Volume(_read_only(data), affine, meta)
    except GeometryError as exc:
        raise DicomError(
            f"{where}: the header geometry gives no valid volume ({exc}); the header is corrupt"
        ) from exc


def _read_only(data: np.ndarray) -> np.ndarray:
    """Mark a freshly built array (owned by this module) read-only so that Volume shares it, not copies it."""
    data.flags.writeable = False
    return data


def _iso_date(ds: Any) -> str | None:
    """The scan date of a DICOM header as ``YYYY-MM-DD``: StudyDate, else SeriesDate or AcquisitionDate."""
    import datetime

    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate"):
        text = str(ds.get(keyword, "") or "").strip()
        try:
            return datetime.datetime.strptime(text[:8], "%Y%m%d").date().isoformat()
        except ValueError:
            continue
    return None


def _meta(ds: Any, info: Any, source: Path, n_files: int, notes: dict[str, Any]) -> dict[str, Any]:
    from pydicom.uid import UID

    ts = transfer_syntax(ds)
    meta: dict[str, Any] = {
        "source": str(source),
        "format": "dicom",
        "modality": str(ds.get("Modality", "") or ""),
        "series_description": info.description,
        "series_number": info.series_number,
        "series_uid": info.series_uid,
        "plane": info.plane,
        "transfer_syntax": ts,
        "transfer_syntax_name": UID(ts).name if ts else None,
        "manufacturer": str(ds.get("Manufacturer", "") or ""),
        "patient_id_hash": patient_id_hash(str(ds.get("PatientID", "") or "")),
        "study_date": _iso_date(ds),
        "n_files": n_files,
        "image_type": tuple(info.image_type),
    }
    meta.update(notes)
    return meta
