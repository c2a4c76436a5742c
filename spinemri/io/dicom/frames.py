"""Per-frame geometry of DICOM images: the one parser of ImagePositionPatient, orientation and spacing.

:func:`file_frames` reads, for every 2-D image of a file — a classic
single-frame image, or each frame of an enhanced multi-frame image (per-frame
functional groups, falling back to the shared ones) — its position, orientation,
pixel spacing, rescale slope/intercept, slice thickness and the tags that tell
the volumes of a 4-D series apart, as a :class:`Frame`. Both the loader
(:mod:`spinemri.io.dicom.assemble`, :mod:`spinemri.io.dicom.mosaic`) and the
DICOM-SEG writer (:mod:`spinemri.io.dicom.seg`) place frames in space with it.

:func:`check_orientation` checks that frames are parallel and returns their
orthonormal row/column directions; :func:`slice_affine` builds the voxel ->
RAS affine of a stack from them (docs/coordinates.md); :func:`frame_orientations`
lists the orientations of a file's images for the series summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DicomError
from ..convert import lps_to_ras
from .header import header_int, hget, opt_float, safe_get

__all__ = [
    "ENHANCED_SOP_CLASSES",
    "IOP_ATOL",
    "MAX_PIXEL_SPACING_MM",
    "Frame",
    "is_enhanced",
    "classic_frames",
    "enhanced_frames",
    "file_frames",
    "frame_orientations",
    "check_orientation",
    "slice_affine",
]

ENHANCED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR
}

#: Allowed difference of direction cosines between images of one series.
IOP_ATOL = 1e-3

_DISCRIMINATORS_CLASSIC = (
    "EchoNumbers",
    "EchoTime",
    "TemporalPositionIdentifier",
    "AcquisitionNumber",
    "TriggerTime",
    "InversionTime",
    "ImageType",
    "DiffusionBValue",
)


@dataclass
class Frame:
    """One 2-D image: a classic file or one frame of an enhanced file (LPS mm).

    ``iop[:3]`` is the direction of increasing column index, ``iop[3:]`` of
    increasing row index; ``tags`` hold the values that tell the volumes of a
    4-D series apart (echo, time point, image type ...).
    """

    path: Path
    file_index: int  # index of the file in the series
    frame: int  # frame number within the file (0 for classic)
    ipp: np.ndarray
    iop: np.ndarray
    spacing: tuple[float, float]  # (row spacing, column spacing) mm
    slope: float
    intercept: float
    thickness: float | None
    tags: dict[str, Any] = field(default_factory=dict)


def _floats(value: Any, n: int, what: str, path: Path) -> np.ndarray:
    if value is None:
        raise DicomError(f"{path}: {what} is missing; spinemri needs it to place the image in space")
    try:
        arr = np.asarray([float(x) for x in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DicomError(f"{path}: {what} {value!r} is not numeric ({exc})") from None
    if arr.shape != (n,):
        raise DicomError(f"{path}: {what} must hold {n} numbers, got {arr.tolist()}")
    if not np.all(np.isfinite(arr)):
        raise DicomError(f"{path}: {what} holds NaN or infinite values {arr.tolist()}; the header is corrupt")
    return arr


#: Largest PixelSpacing taken as a real pixel size (10 m); larger values are corrupt headers.
MAX_PIXEL_SPACING_MM = 1e4


def _pixel_spacing(value: Any, path: Path) -> tuple[float, float]:
    ps = _floats(value, 2, "PixelSpacing", path)
    if np.any(ps <= 0):
        raise DicomError(
            f"{path}: PixelSpacing {ps.tolist()} must be positive (mm); the header is corrupt or the image "
            "is not a calibrated acquisition"
        )
    if np.any(ps > MAX_PIXEL_SPACING_MM):
        raise DicomError(
            f"{path}: PixelSpacing {ps.tolist()} mm is not a pixel size (over {MAX_PIXEL_SPACING_MM:g} mm); "
            "the header is corrupt"
        )
    return (float(ps[0]), float(ps[1]))


def _tag_value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return tuple(str(x) for x in v)
    return str(v)


def is_enhanced(ds: Any) -> bool:
    """Whether a file is an enhanced multi-frame image (it has functional groups).

    Parameters
    ----------
    ds : pydicom.Dataset
        The file's header.

    Returns
    -------
    bool
        True when it has a per-frame or a shared functional groups sequence.
    """
    return "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds


def classic_frames(path: Path, file_index: int, ds: Any) -> list[Frame]:
    """The one frame of a classic (single-frame) image, from its top-level elements.

    Parameters
    ----------
    path : Path
        The file, named in error messages.
    file_index : int
        Index of the file in its series (kept in :attr:`Frame.file_index`).
    ds : pydicom.Dataset
        The file's header.

    Returns
    -------
    list of Frame
        One frame.

    Raises
    ------
    DicomError
        ImagePositionPatient, ImageOrientationPatient or PixelSpacing missing,
        not numeric, of the wrong length, not finite, or (spacing) not a
        positive pixel size.
    """
    slope = opt_float(hget(ds, "RescaleSlope", 1.0))
    inter = opt_float(hget(ds, "RescaleIntercept", 0.0))
    tags = {name: _tag_value(safe_get(ds, name)) for name in _DISCRIMINATORS_CLASSIC}
    tags["NumberOfTemporalPositions"] = _tag_value(safe_get(ds, "NumberOfTemporalPositions"))
    return [
        Frame(
            path=path,
            file_index=file_index,
            frame=0,
            ipp=_floats(hget(ds, "ImagePositionPatient"), 3, "ImagePositionPatient", path),
            iop=_floats(hget(ds, "ImageOrientationPatient"), 6, "ImageOrientationPatient", path),
            spacing=_pixel_spacing(hget(ds, "PixelSpacing"), path),
            slope=1.0 if slope is None else slope,
            intercept=0.0 if inter is None else inter,
            thickness=opt_float(hget(ds, "SliceThickness")),
            tags=tags,
        )
    ]


# functional group sequences and the leaf elements read from them (tags as ints: no keyword lookups)
_PLANE_POSITION, _PLANE_ORIENTATION, _PIXEL_MEASURES = 0x00209113, 0x00209116, 0x00289110
_PIXEL_VALUE_TRANSFORM, _FRAME_CONTENT, _MR_ECHO = 0x00289145, 0x00209111, 0x00189114
_MR_FRAME_TYPE, _CT_FRAME_TYPE, _MR_DIFFUSION = 0x00189226, 0x00189329, 0x00189117
_IPP, _IOP, _PIXEL_SPACING, _SLICE_THICKNESS = 0x00200032, 0x00200037, 0x00280030, 0x00180050
_SLOPE, _INTERCEPT = 0x00281053, 0x00281052
_TEMPORAL_INDEX, _STACK_ID, _ECHO_TIME, _FRAME_TYPE, _B_VALUE = (
    0x00209128,
    0x00209056,
    0x00189082,
    0x00089007,
    0x00189087,
)


def _first_item(ds: Any, tag: int) -> Any:
    if ds is None or ds.get_item(tag) is None:
        return None
    seq = ds[tag].value
    return seq[0] if seq else None


def _group_item(pf: Any, shared: Any, tag: int) -> Any:
    item = _first_item(pf, tag)
    return item if item is not None else _first_item(shared, tag)


def _leaf(item: Any, tag: int) -> Any:
    """A leaf value; DS/IS strings are parsed here (much cheaper than pydicom's validated DSfloat)."""
    if item is None:
        return None
    elem = item.get_item(tag)
    if elem is None:
        return None
    raw = elem.value
    if isinstance(raw, bytes) and getattr(elem, "VR", None) in ("DS", "IS"):
        try:
            return [float(x) for x in raw.decode("ascii").split("\\")]
        except (UnicodeDecodeError, ValueError):
            pass  # odd padding or empty: let pydicom convert it
    return item[tag].value


def _scalar(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) == 1 else None
    return value


def enhanced_frames(path: Path, file_index: int, ds: Any) -> list[Frame]:
    """Every frame of an enhanced multi-frame image, from its functional groups.

    Each value is read from the frame's per-frame functional group, else from
    the shared one; RescaleSlope/Intercept fall back to the top level.

    Parameters
    ----------
    path : Path
        The file, named in error messages.
    file_index : int
        Index of the file in its series.
    ds : pydicom.Dataset
        The file's header.

    Returns
    -------
    list of Frame
        NumberOfFrames frames, in file order.

    Raises
    ------
    DicomError
        NumberOfFrames disagrees with the per-frame groups, or a frame's
        position, orientation or spacing is missing or invalid (as in
        :func:`classic_frames`).
    """
    n = max(header_int(ds, "NumberOfFrames", 1, path), 1)
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per) not in (0, n):
        raise DicomError(
            f"{path}: NumberOfFrames is {n} but the per-frame functional groups describe {len(per)} frames; "
            "the file is corrupt or was edited by hand"
        )
    top_slope = opt_float(ds.get("RescaleSlope", 1.0))
    top_inter = opt_float(ds.get("RescaleIntercept", 0.0))
    frames = []
    for f in range(n):
        pf = per[f] if per else None
        pos = _group_item(pf, shared, _PLANE_POSITION)
        ori = _group_item(pf, shared, _PLANE_ORIENTATION)
        meas = _group_item(pf, shared, _PIXEL_MEASURES)
        pvt = _group_item(pf, shared, _PIXEL_VALUE_TRANSFORM)
        content = _group_item(pf, shared, _FRAME_CONTENT)
        echo = _group_item(pf, shared, _MR_ECHO)
        ftype = _group_item(pf, shared, _MR_FRAME_TYPE) or _group_item(pf, shared, _CT_FRAME_TYPE)
        diff = _group_item(pf, shared, _MR_DIFFUSION)
        where = f"frame {f + 1}"
        slope = opt_float(_scalar(_leaf(pvt, _SLOPE))) if pvt is not None else top_slope
        inter = opt_float(_scalar(_leaf(pvt, _INTERCEPT))) if pvt is not None else top_inter
        frames.append(
            Frame(
                path=path,
                file_index=file_index,
                frame=f,
                ipp=_floats(_leaf(pos, _IPP), 3, f"ImagePositionPatient ({where})", path),
                iop=_floats(_leaf(ori, _IOP), 6, f"ImageOrientationPatient ({where})", path),
                spacing=_pixel_spacing(_leaf(meas, _PIXEL_SPACING), path),
                slope=1.0 if slope is None else slope,
                intercept=0.0 if inter is None else inter,
                thickness=opt_float(_scalar(_leaf(meas, _SLICE_THICKNESS))),
                tags={
                    "TemporalPositionIndex": _tag_value(_leaf(content, _TEMPORAL_INDEX)),
                    "StackID": _tag_value(_leaf(content, _STACK_ID)),
                    "EffectiveEchoTime": _tag_value(_leaf(echo, _ECHO_TIME)),
                    "FrameType": _tag_value(_leaf(ftype, _FRAME_TYPE)),
                    "DiffusionBValue": _tag_value(_leaf(diff, _B_VALUE)),
                },
            )
        )
    return frames


def file_frames(path: Path, file_index: int, ds: Any) -> list[Frame]:
    """Every 2-D image of a file: the frames of an enhanced image, or the one of a classic image.

    The parser of frame geometry shared by the loader and the DICOM-SEG writer.

    Parameters
    ----------
    path : Path
        The file, named in error messages.
    file_index : int
        Index of the file in its series (or in the SEG writer's source list).
    ds : pydicom.Dataset
        The file's header (pixel data need not be read).

    Returns
    -------
    list of Frame
        :func:`enhanced_frames` when :func:`is_enhanced`, else :func:`classic_frames`.

    Raises
    ------
    DicomError
        As :func:`enhanced_frames` / :func:`classic_frames`.
    """
    return enhanced_frames(path, file_index, ds) if is_enhanced(ds) else classic_frames(path, file_index, ds)


def frame_orientations(ds: Any) -> list[Any]:
    """ImageOrientationPatient of every image in a file (per frame for enhanced files), unchecked.

    Parameters
    ----------
    ds : pydicom.Dataset
        The file's header.

    Returns
    -------
    list
        For an enhanced file (enhanced SOP class or per-frame groups): the
        shared orientation alone when there is one, else each per-frame one
        (``[None]`` when none); for a classic file its one value. Values as
        :func:`~spinemri.io.dicom.header.hget` returns them (``None`` when absent).
    """
    if str(hget(ds, "SOPClassUID", "")) in ENHANCED_SOP_CLASSES or "PerFrameFunctionalGroupsSequence" in ds:
        shared = ds.get("SharedFunctionalGroupsSequence")
        iop = _leaf(_first_item(shared[0] if shared else None, _PLANE_ORIENTATION), _IOP)
        if iop is not None:
            return [iop]
        out = [
            _leaf(_first_item(fg, _PLANE_ORIENTATION), _IOP)
            for fg in ds.get("PerFrameFunctionalGroupsSequence", []) or []
        ]
        return [x for x in out if x is not None] or [None]
    return [hget(ds, "ImageOrientationPatient")]


def check_orientation(frames: list[Frame], where: Path) -> tuple[np.ndarray, np.ndarray]:
    """The common orthonormal row and column directions of parallel frames.

    Parameters
    ----------
    frames : list of Frame
        The frames of one stack.
    where : Path
        The series' folder or file, named in error messages.

    Returns
    -------
    (ndarray, ndarray)
        Unit direction of increasing column index and of increasing row index
        (LPS) of the first frame, the second made orthogonal to the first.

    Raises
    ------
    DicomError
        The frames' orientations differ by more than :data:`IOP_ATOL`, or the
        first is not two orthogonal unit vectors.
    """
    iops = np.stack([f.iop for f in frames])
    bad = np.max(np.abs(iops - iops[0]), axis=1) > IOP_ATOL
    if np.any(bad):
        odd = frames[int(np.argmax(bad))]
        n_orient = len({tuple(np.round(x, 3)) for x in iops})
        raise DicomError(
            f"{where}: the images of this series have {n_orient} different orientations "
            f"(e.g. {frames[0].path.name}: {np.round(frames[0].iop, 4).tolist()}, "
            f"{odd.path.name}: {np.round(odd.iop, 4).tolist()}); a 3-D volume needs parallel slices. "
            "This is a localizer/scout or a mixed export: pick another series with series=, "
            "or remove the odd files"
        )
    row_dir, col_dir = frames[0].iop[:3], frames[0].iop[3:]
    nr, nc = np.linalg.norm(row_dir), np.linalg.norm(col_dir)
    if abs(nr - 1) > 0.01 or abs(nc - 1) > 0.01 or abs(float(row_dir @ col_dir)) > 0.01:
        raise DicomError(
            f"{frames[0].path}: ImageOrientationPatient {frames[0].iop.tolist()} is not two orthogonal unit "
            "vectors; the header is corrupt"
        )
    row_dir = row_dir / nr
    col_dir = col_dir - (col_dir @ row_dir) * row_dir
    return row_dir, col_dir / np.linalg.norm(col_dir)


def slice_affine(
    row_dir: np.ndarray,
    col_dir: np.ndarray,
    spacing: tuple[float, float],
    step: np.ndarray,
    origin: np.ndarray,
) -> np.ndarray:
    """The voxel (i, j, k) -> RAS+ mm affine of a stack (i = column, j = row, k = slice).

    Parameters
    ----------
    row_dir, col_dir : ndarray of shape (3,)
        Unit LPS directions of increasing column index and of increasing row index.
    spacing : (float, float)
        PixelSpacing: (row spacing, column spacing) mm.
    step : ndarray of shape (3,)
        LPS step from one slice to the next (mm).
    origin : ndarray of shape (3,)
        LPS position of voxel (0, 0, 0).

    Returns
    -------
    ndarray of shape (4, 4)
    """
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[1]  # i: column index, along IOP[:3], spaced by PixelSpacing[1]
    lps[:3, 1] = col_dir * spacing[0]  # j: row index, along IOP[3:], spaced by PixelSpacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = origin
    return lps_to_ras(lps)
