"""Write spinemri's lesion mask (and optionally the vertebrae) as a DICOM Segmentation (highdicom).

The SEG object references the source series (every source SOP instance, and
for each SEG frame the source frame it was derived from), so a viewer or PACS
shows it on top of that series. docs/dicom-seg.md describes the segments and
their codes.

How spinemri's array order is mapped back to the source frames
---------------------------------------------------------------
Nothing is assumed about the order of the Volume's array axes: the Volume may
come from :func:`spinemri.io.dicom.series.load_dicom` (``data[column, row, slice]``),
from a NIfTI written by dcm2niix (often with the row axis flipped), or be
transposed. For every source frame the writer reads, from the headers only
(``stop_before_pixels``) and with the loader's own frame parser
(:func:`spinemri.io.dicom.frames.file_frames`: classic images, and enhanced
multi-frame images through their per-frame / shared functional groups),
ImagePositionPatient ``T``, ImageOrientationPatient
(row direction ``r``, column direction ``c``) and PixelSpacing ``[Δr, Δc]``;
the source pixel at row ``m``, column ``n`` lies at the LPS point
``T + n Δc r + m Δr c``. Mapping that point through the inverse of the
Volume's affine (RAS → LPS first) gives continuous voxel indices
``p(m, n) = p0 + m dm + n dn``. The frame matches the Volume's grid when

* ``dm`` and ``dn`` are, within :data:`POSITION_TOL_VOXELS`, signed unit
  vectors along two different array axes (which axis and which sign says
  whether the frame's rows/columns run along i, j or k, flipped or not), and
* the third ("slice") index is the same integer for the whole frame, and the
  four frame corners land within :data:`POSITION_TOL_VOXELS` of integer voxels
  inside the array.

The SEG frame is then read from the Volume with exactly those integer indices.
Every non-zero mask voxel must be covered by some source frame, else the mask
is not on the source's grid and a :class:`~spinemri.errors.GeometryError` is
raised.

Encoding
--------
Segmentation type BINARY (1 bit per pixel) in Explicit VR Little Endian, with
frames that hold no segment pixel omitted (highdicom ``omit_empty_frames``).
highdicom also offers JPEG 2000 Lossless for BINARY segmentations, but that
needs a JPEG 2000 encoder at write time and a decoder in every reader; the
bit-packed, empty-frame-free uncompressed file is small enough (docs/dicom-seg.md).

De-identification
-----------------
By the standard a SEG carries the patient and study modules of the images it
segments; highdicom copies them from the source headers. A DICOM-SEG is thus
the one spinemri output that contains the source's PatientName / PatientID:
it is written only when asked for (``--dicom-seg``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, DicomError, GeometryError, InputError
from ...levels import LEVELS, LabelScheme, level_index
from ...volume import Volume
from ..atomic import atomic_path
from ..convert import ras_to_lps
from .frames import file_frames

__all__ = [
    "POSITION_TOL_VOXELS",
    "LESION_SEGMENT_LABEL",
    "level_code",
    "require_highdicom",
    "lesion_codes",
    "read_source_headers",
    "sample_source_frames",
    "build_dicom_seg",
    "dicom_seg_bytes",
    "write_dicom_seg",
]

logger = logging.getLogger(__name__)

#: Largest distance (voxels) of a source pixel centre from a voxel centre still counted as "on the grid".
POSITION_TOL_VOXELS = 0.1

#: Segment label of the lesion segment (segment number 1).
LESION_SEGMENT_LABEL = "Metastatic lesions"

#: SeriesNumber of the SEG = source SeriesNumber + this (when not given).
SERIES_NUMBER_OFFSET = 1000

#: pydicom ``codes.SCT`` attribute of each level that has its own SNOMED CT code in pydicom's dictionary.
_LEVEL_CODE_NAMES: dict[str, str] = {
    **{f"C{i}": f"C{i}Vertebra" for i in range(1, 8)},
    **{f"T{i}": f"T{i}Vertebra" for i in range(1, 13)},
    **{f"L{i}": f"L{i}Vertebra" for i in range(1, 6)},
    "S1": "Sacrum",  # spinemri's S1 is the sacrum as one level (docs/label-schemes.md)
    "Co": "Coccyx",
}


def level_code(level: str) -> tuple[Any, str]:
    """SNOMED CT code and segment label of a vertebral level.

    Parameters
    ----------
    level : str
        One of :data:`spinemri.levels.LEVELS`.

    Returns
    -------
    (pydicom.sr.coding.Code, str)
        The level's own code when pydicom's SCT dictionary has one (C1–C7,
        T1–T12, L1–L5; S1 = Sacrum, Co = Coccyx), else the generic "Vertebra"
        (SCT 51282000) — T13 and L6 — and the segment label names the level
        (``"T13 vertebra"``).

    Raises
    ------
    ConfigError
        ``level`` is not a spinemri level name.
    """
    from pydicom.sr.codedict import codes

    if level not in LEVELS:
        raise ConfigError(f"{level!r} is not a vertebral level; levels are {', '.join(LEVELS)}")
    name = _LEVEL_CODE_NAMES.get(level)
    if name is None:
        return codes.SCT.Vertebra, f"{level} vertebra"
    label = {"S1": "Sacrum (S1)", "Co": "Coccyx"}.get(level, f"{level} vertebra")
    return getattr(codes.SCT, name), label


def require_highdicom() -> None:
    """Raise ConfigError naming the extra to install when highdicom is missing."""
    try:
        import highdicom  # noqa: F401
    except ImportError:
        raise ConfigError("writing a DICOM-SEG needs highdicom: pip install 'spinemri[dicomseg]'") from None


def lesion_codes() -> tuple[Any, Any]:
    """(category, type) of the lesion segment: Morphologically Abnormal Structure / Neoplasm, metastatic.

    Returns
    -------
    (pydicom.sr.coding.Code, pydicom.sr.coding.Code)
    """
    from pydicom.sr.codedict import codes

    return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.NeoplasmMetastatic


# --------------------------------------------------------------------------- source headers


def _files_of_source(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], like: Volume | None, series: Any
) -> list[Path]:
    """The files of the source series: given explicitly, or chosen in a folder/file like the loader does."""
    from .series import list_series, pick_series

    if not isinstance(source, (str, os.PathLike)):
        files = [Path(p) for p in source]
        if not files:
            raise InputError("write_dicom_seg: no source DICOM files given")
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise InputError(f"{missing[0]}: source DICOM file not found ({len(missing)} missing)")
        return sorted(files)
    where = Path(source)
    infos = list_series(where)
    meta = like.meta if like is not None else {}
    if series is None and meta.get("series_uid"):
        same = [
            s
            for s in infos
            if s.series_uid == meta["series_uid"] and s.series_number == meta.get("series_number")
        ]
        if len(same) == 1:
            return list(same[0].files)
    return list(pick_series(infos, series, where=where).files)


def read_source_headers(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    like: Volume | None = None,
    series: str | int | None = None,
) -> list[Any]:
    """Read the headers (no pixel data) of the source series' files.

    Parameters
    ----------
    source : path-like or sequence of path-like
        A DICOM folder or file (the series is chosen as by
        :func:`spinemri.io.dicom.series.load_dicom`: the series named in
        ``like.meta`` — ``series_uid`` and ``series_number`` — when it is
        there, else ``series``/the ranking rule), or the list of the series'
        files.
    like : Volume, optional
        A Volume loaded from the source (its meta names the series).
    series : str or int, optional
        As in :func:`spinemri.io.dicom.series.pick_series`.

    Returns
    -------
    list of pydicom.Dataset
        Sorted by file path.

    Raises
    ------
    InputError, DicomError
        Missing files, unreadable headers, several series in the file list,
        a Siemens mosaic.
    """
    import pydicom

    out = []
    for f in _files_of_source(source, like, series):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many kinds of errors on corrupt headers
            raise DicomError(f"{f}: cannot read the DICOM header ({exc})") from exc
        if "MOSAIC" in [str(v).upper() for v in (ds.get("ImageType") or [])]:
            raise DicomError(
                f"{f}: a Siemens MOSAIC image holds many slices in one frame; a DICOM-SEG cannot reference "
                "its slices: convert the series (dcm2niix) and measure the NIfTI instead (no DICOM-SEG)"
            )
        out.append(ds)
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in out}
    if len(uids) > 1:
        raise DicomError(
            f"{Path(str(out[0].filename)).parent}: the source files belong to {len(uids)} series; "
            "a DICOM-SEG references one series: pass the files of one series"
        )
    return out


@dataclass(frozen=True)
class _SourceFrame:
    """Geometry of one source frame (LPS mm)."""

    dataset: int  # index into the source datasets
    frame: int  # frame index inside that dataset (0 for single-frame images)
    ipp: np.ndarray
    row_dir: np.ndarray  # direction of increasing column index
    col_dir: np.ndarray  # direction of increasing row index
    spacing: tuple[float, float]  # (between rows, between columns)
    rows: int
    cols: int


def _frames_of(index: int, ds: Any) -> list[_SourceFrame]:
    """The geometry of every frame of a source image, parsed as the loader does (:func:`file_frames`)."""
    where = getattr(ds, "filename", None) or f"source image {index}"
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows < 1 or cols < 1:
        raise DicomError(f"{where}: no image matrix (Rows/Columns) in the header")
    return [
        _SourceFrame(index, fr.frame, fr.ipp, fr.iop[:3], fr.iop[3:], fr.spacing, rows, cols)
        for fr in file_frames(Path(str(where)), index, ds)
    ]


@dataclass(frozen=True)
class _FrameIndex:
    """Integer voxel indices of a source frame: index(m, n) = start + m * dm + n * dn."""

    start: tuple[int, int, int]
    dm: tuple[int, int, int]
    dn: tuple[int, int, int]
    rows: int
    cols: int

    def take(self, data: np.ndarray) -> np.ndarray:
        """The (rows, cols) frame of ``data`` (a view where possible)."""
        axis_m, axis_n = int(np.flatnonzero(self.dm)[0]), int(np.flatnonzero(self.dn)[0])
        index: list[Any] = [self.start[a] for a in range(3)]
        for axis, step, count in ((axis_m, self.dm[axis_m], self.rows), (axis_n, self.dn[axis_n], self.cols)):
            first, last = self.start[axis], self.start[axis] + step * (count - 1)
            index[axis] = slice(first, last + step if last + step >= 0 else None, step)
        frame = np.asarray(data[tuple(index)])
        return frame if axis_m < axis_n else frame.T


def _signed_unit(v: np.ndarray) -> tuple[int, int, int] | None:
    r = np.rint(v)
    if np.max(np.abs(v - r)) > POSITION_TOL_VOXELS / 4 or np.sum(np.abs(r)) != 1:
        return None
    return (int(r[0]), int(r[1]), int(r[2]))


def _frame_index(fr: _SourceFrame, inv: np.ndarray, shape: tuple[int, ...], where: str) -> _FrameIndex:
    lin, off = inv[:3, :3], inv[:3, 3]
    p0 = lin @ fr.ipp + off
    dm_c = lin @ (fr.col_dir * fr.spacing[0])
    dn_c = lin @ (fr.row_dir * fr.spacing[1])
    dm, dn = _signed_unit(dm_c), _signed_unit(dn_c)
    what = f"{where}: source frame {fr.frame} of image {fr.dataset + 1}"
    if dm is None or dn is None or np.argmax(np.abs(dm)) == np.argmax(np.abs(dn)):
        raise GeometryError(
            f"{what} is not on the mask's voxel grid: one source pixel step is "
            f"{np.round(dm_c, 3).tolist()} / {np.round(dn_c, 3).tolist()} mask voxels, not one voxel "
            "along an array axis (the mask must be on the source image's grid: use a mask made on "
            "that series)"
        )
    start = np.rint(p0)
    corners = [(0, 0), (fr.rows - 1, 0), (0, fr.cols - 1), (fr.rows - 1, fr.cols - 1)]
    for m, n in corners:
        cont = p0 + m * dm_c + n * dn_c
        integer = start + m * np.array(dm) + n * np.array(dn)
        if np.max(np.abs(cont - integer)) > POSITION_TOL_VOXELS:
            raise GeometryError(
                f"{what}: its pixel (row {m}, column {n}) lies at mask voxel {np.round(cont, 3).tolist()}, "
                f"more than {POSITION_TOL_VOXELS} voxel from a voxel centre; the mask is not on the "
                "source grid"
            )
        if np.any(integer < 0) or np.any(integer >= np.array(shape)):
            raise GeometryError(
                f"{what}: its pixel (row {m}, column {n}) falls at mask voxel "
                f"{integer.astype(int).tolist()}, "
                f"outside the mask array {list(shape)}; the mask does not cover the source series"
            )
    s = tuple(int(v) for v in start)
    return _FrameIndex((s[0], s[1], s[2]), dm, dn, fr.rows, fr.cols)


def _source_frames(datasets: Sequence[Any]) -> list[_SourceFrame]:
    return [fr for i, ds in enumerate(datasets) for fr in _frames_of(i, ds)]


def _frame_indices(datasets: Sequence[Any], volume: Volume) -> list[_FrameIndex]:
    frames = _source_frames(datasets)
    inv = np.linalg.inv(ras_to_lps(np.asarray(volume.affine, dtype=np.float64)))
    where = str(volume.meta.get("source", "mask"))
    return [_frame_index(fr, inv, volume.shape, where) for fr in frames]


def sample_source_frames(datasets: Sequence[Any], volume: Volume) -> np.ndarray:
    """The Volume's voxels at each source frame's pixels.

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        Source headers (single-frame images, or one multi-frame image).
    volume : Volume of shape (I, J, K)
        On the source grid, in any array order (see the module notes).

    Returns
    -------
    ndarray of shape (n_frames, rows, columns)
        Frame ``f`` holds the voxels under source frame ``f`` (frames in the
        order of ``datasets``, then of their frames), pixel ``[m, n]`` = row
        ``m``, column ``n`` of that frame.

    Raises
    ------
    GeometryError
        A source frame is not on the Volume's grid or outside its array.
    """
    data = np.asarray(volume.data)
    return np.stack([fi.take(data) for fi in _frame_indices(datasets, volume)])


# --------------------------------------------------------------------------- segments


def _level_labels(
    labels: np.ndarray, levels: Mapping[int, str] | LabelScheme | None, vertebrae: Volume
) -> list[tuple[str, list[int]]]:
    """(level, mask labels) per level present, cranial → caudal; labels mapping to one level are merged."""
    if levels is None:
        from ...scheme_choice import resolve_scheme_for_mask

        scheme, _ = resolve_scheme_for_mask("auto", vertebrae)
        mapping: Mapping[int, str] = scheme.levels
    elif isinstance(levels, LabelScheme):
        mapping = levels.levels
    else:
        mapping = levels
    present = {int(v) for v in np.unique(labels) if v != 0}
    by_level: dict[str, list[int]] = {}
    for label, level in mapping.items():
        if int(label) in present:
            level_code(str(level))  # refuses a name that is not a level
            by_level.setdefault(str(level), []).append(int(label))
    return [(level, sorted(by_level[level])) for level in sorted(by_level, key=level_index)]


def _is_multiframe(datasets: Sequence[Any]) -> bool:
    multi = [ds for ds in datasets if "PerFrameFunctionalGroupsSequence" in ds]
    if multi and len(datasets) > 1:
        raise DicomError(
            f"{getattr(multi[0], 'filename', 'source')}: the source mixes a multi-frame image with other "
            "files; a DICOM-SEG references the frames of one multi-frame image or a series of "
            "single-frame images"
        )
    return bool(multi)


def _shared_groups(ds: Any) -> Any:
    """A copy of a multi-frame header whose per-frame PixelMeasures/PlaneOrientation are moved to shared.

    highdicom reads a multi-frame source's PixelMeasures and PlaneOrientation
    from its shared functional groups only; enhanced MR files (Siemens XA30)
    often repeat them per frame. When they are the same in every frame, the
    in-memory copy given to highdicom has them shared (the file is not changed);
    otherwise a DicomError is raised.
    """
    import copy

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    out = copy.deepcopy(ds)
    where = getattr(ds, "filename", "source")
    per_frame = out.PerFrameFunctionalGroupsSequence
    if "SharedFunctionalGroupsSequence" not in out or not len(out.SharedFunctionalGroupsSequence):
        out.SharedFunctionalGroupsSequence = DicomSequence([Dataset()])
    shared = out.SharedFunctionalGroupsSequence[0]
    for keyword, value_keys in (
        ("PixelMeasuresSequence", ("PixelSpacing",)),
        ("PlaneOrientationSequence", ("ImageOrientationPatient",)),
    ):
        if keyword in shared:
            continue
        if not all(keyword in item for item in per_frame):
            raise DicomError(f"{where}: {keyword} is missing in shared and per-frame functional groups")
        first = per_frame[0][keyword][0]
        ref = [np.array([float(v) for v in first.get(k) or []]) for k in value_keys]
        for f, item in enumerate(per_frame):
            vals = [np.array([float(v) for v in item[keyword][0].get(k) or []]) for k in value_keys]
            if any(
                a.shape != b.shape or not np.allclose(a, b, atol=1e-4) for a, b in zip(vals, ref, strict=True)
            ):
                raise DicomError(
                    f"{where}: frame {f} has another {keyword[:-8]} than frame 0; spinemri writes a "
                    "DICOM-SEG only for one regular stack"
                )
        shared[keyword] = copy.deepcopy(per_frame[0][keyword])
        for item in per_frame:
            del item[keyword]
    return out


def _check_same_grid(lesion_mask: Volume, vertebrae: Volume) -> None:
    if lesion_mask.shape != vertebrae.shape or not np.allclose(
        lesion_mask.affine, vertebrae.affine, atol=1e-4
    ):
        raise GeometryError(
            f"{vertebrae.meta.get('source', 'vertebrae')}: the vertebral mask is not on the lesion "
            f"mask's grid (shape {list(vertebrae.shape)} vs {list(lesion_mask.shape)}); pass masks on one "
            "grid"
        )


def build_dicom_seg(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    lesion_mask: Volume,
    *,
    vertebrae: Volume | None = None,
    levels: Mapping[int, str] | LabelScheme | None = None,
    image: Volume | None = None,
    series: str | int | None = None,
    series_number: int | None = None,
    series_description: str = "spinemri lesions",
    algorithm_parameters: Mapping[str, Any] | None = None,
    vertebrae_family: str = "ArtificialIntelligence",
    compress: bool = False,
) -> Any:
    """Build the DICOM Segmentation dataset of a lesion mask (and vertebrae).

    Parameters
    ----------
    source : path-like or sequence of path-like
        The source DICOM series: folder, file or list of files (see
        :func:`read_source_headers`). Only headers are read.
    lesion_mask : Volume
        Lesion ids or a binary mask on the source grid (any array order);
        every non-zero voxel is segment 1, "Metastatic lesions".
    vertebrae : Volume, optional
        Vertebral label mask on the same grid; one segment per level present,
        cranial → caudal, numbered from 2.
    levels : mapping of int to str, or LabelScheme, optional
        Mask label → level name (labels not in it, e.g. discs, are left out).
        Default: the scheme :func:`spinemri.scheme_choice.resolve_scheme_for_mask`
        picks with ``"auto"``.
    image : Volume, optional
        The image loaded from ``source``: its ``meta`` (``series_uid``,
        ``series_number``) names the series of a folder with several series.
        Default: ``lesion_mask.meta``.
    series : str or int, optional
        Which series of a folder when neither ``image`` nor ``lesion_mask``
        names it (see :func:`spinemri.io.dicom.series.pick_series`).
    series_number : int, optional
        SeriesNumber of the SEG; default source SeriesNumber + 1000.
    series_description : str
        SeriesDescription of the SEG.
    algorithm_parameters : mapping, optional
        Recorded (as text) in the lesion segment's algorithm identification.
    vertebrae_family : str, default "ArtificialIntelligence"
        CID 7162 algorithm family (a ``pydicom codes.cid7162`` name) of the
        vertebral segments. spinemri only relabels the input mask; the masks it
        is built for come from AI segmenters (TotalSegmentator, SPIDER models).
    compress : bool, default False
        Encode the frames with JPEG 2000 Lossless (about 10x smaller; needs
        pylibjpeg-openjpeg, the ``codecs`` extra, to write and a JPEG 2000
        decoder in every reader — DCMTK-based tools such as dcmqi/3D Slicer
        have none). Default: uncompressed, bit-packed, empty frames omitted.

    Returns
    -------
    highdicom.seg.Segmentation
        A pydicom Dataset: BINARY, Explicit VR Little Endian (or JPEG 2000
        Lossless with ``compress``), empty frames
        omitted; patient and study modules copied from the source.

    Raises
    ------
    InputError, DicomError
        Source files missing, unreadable, of several series, or a mosaic.
    ConfigError
        ``compress`` without a JPEG 2000 encoder; an unknown ``vertebrae_family``.
    GeometryError
        The mask is not on the source grid, or segment voxels lie outside
        every source frame.
    """
    require_highdicom()
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

    from ..._version import __version__

    transfer_syntax = ExplicitVRLittleEndian
    if compress:
        import importlib.util

        if importlib.util.find_spec("openjpeg") is None:
            raise ConfigError(
                "compress=True needs a JPEG 2000 encoder: pip install 'spinemri[codecs]' "
                "(pylibjpeg-openjpeg), or write the DICOM-SEG uncompressed"
            )
        transfer_syntax = JPEG2000Lossless

    datasets = read_source_headers(source, like=image if image is not None else lesion_mask, series=series)
    lesions = np.asarray(lesion_mask.data) != 0
    groups: list[tuple[str, list[int]]] = []
    labels = None
    if vertebrae is not None:
        _check_same_grid(lesion_mask, vertebrae)
        labels = np.asarray(vertebrae.data)
        groups = _level_labels(labels, levels, vertebrae)
    indices = _frame_indices(datasets, lesion_mask)
    if compress and indices[0].rows < 32 and indices[0].cols < 32:
        raise ConfigError(
            f"compress=True: JPEG 2000 cannot encode frames of {indices[0].rows}x{indices[0].cols} pixels "
            "(both sides under 32); write the DICOM-SEG uncompressed"
        )
    n_seg = 1 + len(groups)
    pixels = np.zeros((len(indices), indices[0].rows, indices[0].cols, n_seg), dtype=np.uint8)
    for f, fi in enumerate(indices):
        pixels[f, :, :, 0] = fi.take(lesions)
        if labels is not None:
            frame = fi.take(labels)
            for s, (_, group) in enumerate(groups, start=1):
                pixels[f, :, :, s] = np.isin(frame, group)
    covered = np.count_nonzero(pixels, axis=(0, 1, 2))
    totals = [int(np.count_nonzero(lesions))]
    if labels is not None:
        totals += [int(np.count_nonzero(np.isin(labels, group))) for _, group in groups]
    names = ["lesions", *(level for level, _ in groups)]
    for name, total, cov in zip(names, totals, covered, strict=True):
        if int(cov) != total:
            raise GeometryError(
                f"{lesion_mask.meta.get('source', 'mask')}: {total - int(cov)} of {total} voxels of segment "
                f"{name!r} lie outside every frame of the source series (or frames overlap); the mask is not "
                "on the source series' grid"
            )

    if _is_multiframe(datasets):
        datasets = [_shared_groups(datasets[0])]
    version = str(__version__)
    lesion_alg = hd.AlgorithmIdentificationSequence(
        name="spinemri",
        family=codes.cid7162.HistogramAnalysis,
        version=version,
        source="spinemri lesion segmentation",
        parameters={str(k): str(v)[:64] for k, v in (algorithm_parameters or {}).items()} or None,
    )
    try:
        vert_family = getattr(codes.cid7162, vertebrae_family)
    except AttributeError:
        raise ConfigError(
            f"vertebrae_family={vertebrae_family!r} is not a CID 7162 algorithm family; use one of "
            f"{', '.join(codes.cid7162.dir())}"
        ) from None
    vert_alg = hd.AlgorithmIdentificationSequence(
        name="spinemri",
        family=vert_family,
        version=version,
        source="input vertebral label mask, relabelled by level",
    )
    category, lesion_type = lesion_codes()
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=1,
            segment_label=LESION_SEGMENT_LABEL,
            segmented_property_category=category,
            segmented_property_type=lesion_type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=lesion_alg,
            anatomic_regions=[codes.SCT.Spine],
            display_color=hd.color.CIELabColor.from_rgb(230, 25, 25),
        )
    ]
    for number, (level, _) in enumerate(groups, start=2):
        code, label = level_code(level)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=codes.cid7150.AnatomicalStructure,
                segmented_property_type=code,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=vert_alg,
            )
        )

    first = datasets[0]
    src_number = first.get("SeriesNumber")
    try:
        src_number = int(src_number) if src_number not in (None, "") else 0
    except (TypeError, ValueError):
        src_number = 0
    if series_number is None:
        series_number = src_number + SERIES_NUMBER_OFFSET
    digest = hashlib.sha256(np.packbits(pixels).tobytes()).hexdigest()
    entropy = ["spinemri-seg", version, str(first.get("SeriesInstanceUID", "")), digest, str(series_number)]
    with warnings.catch_warnings():
        # highdicom re-checks the source's PatientName; an odd source name is not the SEG's business
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=generate_uid(entropy_srcs=[*entropy, "series"]),
            series_number=int(series_number),
            sop_instance_uid=generate_uid(entropy_srcs=[*entropy, "instance"]),
            instance_number=1,
            manufacturer="spinemri",
            manufacturer_model_name="spinemri",
            software_versions=version,
            device_serial_number="none",
            content_label="SPINEMRI",
            content_description=series_description[:64],
            transfer_syntax_uid=transfer_syntax,
            omit_empty_frames=True,
            series_description=series_description[:64],
        )
    logger.info(
        "DICOM-SEG: %d segments, %d of %d source frames with segment pixels",
        len(descriptions),
        int(np.count_nonzero(pixels.any(axis=(1, 2)))),
        len(indices),
    )
    return seg


def dicom_seg_bytes(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], lesion_mask: Volume, **kwargs: Any
) -> bytes:
    """:func:`build_dicom_seg`, encoded as the bytes of a DICOM file (Part 10, with preamble).

    Parameters
    ----------
    source, lesion_mask, **kwargs
        As in :func:`build_dicom_seg`.

    Returns
    -------
    bytes
    """
    from io import BytesIO

    seg = build_dicom_seg(source, lesion_mask, **kwargs)
    buf = BytesIO()
    seg.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def write_dicom_seg(
    path: str | os.PathLike[str],
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    lesion_mask: Volume,
    *,
    vertebrae: Volume | None = None,
    levels: Mapping[int, str] | LabelScheme | None = None,
    **kwargs: Any,
) -> Path:
    """Write the DICOM-SEG of a lesion mask (and vertebrae) to ``path``, atomically.

    Parameters
    ----------
    path : path-like
        Output file (conventionally ``<id>_lesions.seg.dcm``).
    source, lesion_mask, vertebrae, levels, **kwargs
        As in :func:`build_dicom_seg`.

    Returns
    -------
    Path
        ``path``.
    """
    data = dicom_seg_bytes(source, lesion_mask, vertebrae=vertebrae, levels=levels, **kwargs)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
