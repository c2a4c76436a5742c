"""Turn the files of one DICOM series into a 3-D :class:`~spinemri.volume.Volume`.

Internal helper of :mod:`spinemri.io.dicom` (geometry, pixel decoding, 4-D and
mosaic handling). docs/coordinates.md explains the affine; in short, with
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

import hashlib
import logging
import math
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DicomError, GeometryError, SpinemriWarning
from ..volume import Volume
from .convert import RAS_TO_LPS

__all__ = ["headers_to_volume", "patient_id_hash", "decode_frames", "ID_SALT_ENV", "DEFAULT_ID_SALT"]

logger = logging.getLogger(__name__)

#: Environment variable holding the salt of :func:`patient_id_hash`.
ID_SALT_ENV = "SPINEMRI_ID_SALT"
#: Salt used when SPINEMRI_ID_SALT is not set.
DEFAULT_ID_SALT = "spinemri"

#: Two slice positions closer than this along the normal are the same position (mm).
SAME_POSITION_MM = 0.01
#: Allowed deviation of a slice step from the median step: absolute (mm) plus relative.
STEP_ATOL_MM = 1e-3
STEP_RTOL = 0.01
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


def patient_id_hash(patient_id: str | None, salt: str | None = None) -> str | None:
    """Pseudonymous patient id: first 16 hex characters of sha256(salt + PatientID).

    Parameters
    ----------
    patient_id : str or None
        DICOM PatientID; ``None`` or empty gives ``None``.
    salt : str, optional
        Defaults to the environment variable ``SPINEMRI_ID_SALT``, else
        ``"spinemri"``. Use a private salt per study so that hashes cannot be
        reversed by hashing candidate ids.
    """
    if not patient_id:
        return None
    if salt is None:
        salt = os.environ.get(ID_SALT_ENV, DEFAULT_ID_SALT)
    return hashlib.sha256((salt + str(patient_id)).encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- fast header values

#: keyword -> tag cache of :func:`hget`
_KEYWORD_TAGS: dict[str, int | None] = {}
#: binary VRs read by :func:`hget` (struct format of one value)
_BINARY_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}
#: text VRs read by :func:`hget`
_TEXT_VRS = frozenset({"DS", "IS", "UI", "CS"})
_FALLBACK = object()


def _keyword_tag(keyword: str) -> int | None:
    tag = _KEYWORD_TAGS.get(keyword, -1)
    if tag == -1:
        from pydicom.datadict import tag_for_keyword

        tag = tag_for_keyword(keyword)
        _KEYWORD_TAGS[keyword] = tag
    return tag  # type: ignore[return-value]


def _parse_raw(elem: Any) -> Any:
    """The value of a raw (unconverted) element of a simple VR, or ``_FALLBACK``.

    DS -> float, IS -> int, US/SS/UL/SL -> int, UI/CS -> str (lists when
    multi-valued). Anything unusual (empty, non-ASCII, unparsable, deferred,
    implicit VR not in the dictionary) returns ``_FALLBACK`` so that pydicom
    converts it exactly as before, with its own errors and warnings.
    """
    raw = elem.value
    if not isinstance(raw, bytes) or not raw:
        return _FALLBACK
    vr = elem.VR
    if vr is None:  # implicit VR: the dictionary VR
        from pydicom.datadict import dictionary_VR

        try:
            vr = dictionary_VR(elem.tag)
        except KeyError:
            return _FALLBACK
    fmt = _BINARY_VRS.get(vr)
    if fmt is not None:
        size = struct.calcsize(fmt)
        n = len(raw) // size
        if n == 0 or len(raw) % size:
            return _FALLBACK
        vals = struct.unpack(("<" if elem.is_little_endian else ">") + fmt * n, raw)
        return vals[0] if n == 1 else list(vals)
    if vr not in _TEXT_VRS:
        return _FALLBACK
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return _FALLBACK
    parts = [x.strip(" \x00") for x in text.split("\\")]
    if not all(parts):
        return _FALLBACK
    try:
        if vr == "DS":
            out: list[Any] = [float(x) for x in parts]
        elif vr == "IS":
            out = [int(x) for x in parts]
        else:
            out = parts
    except ValueError:
        return _FALLBACK
    return out[0] if len(out) == 1 else out


def hget(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)``, parsing simple raw elements (DS, IS, US, UI, CS ...) without pydicom.

    pydicom converts and validates each element through several layers of
    Python (about 50-100 us each); for the dozen elements read per slice of a
    series this dominated the load time. Values that are not plain ASCII
    numbers/codes go through ``ds.get`` exactly as before (same values, same
    errors). Numbers come back as ``float``/``int`` (lists when multi-valued)
    instead of pydicom's DSfloat/IS/MultiValue; every caller converts with
    ``float``/``int``/``str`` anyway.
    """
    tag = _keyword_tag(keyword)
    elems = getattr(ds, "_dict", None)
    if tag is None or elems is None:
        return ds.get(keyword, default)
    elem = elems.get(tag)
    if elem is None:
        return default
    if getattr(elem, "is_raw", False):
        value = _parse_raw(elem)
        if value is not _FALLBACK:
            return value
    return ds.get(keyword, default)


@dataclass
class _Frame:
    """One 2-D image: a classic file or one frame of an enhanced file."""

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


def _volume(data: np.ndarray, affine: np.ndarray, meta: dict[str, Any], where: Path) -> Volume:
    """The Volume of a series; a geometry the Volume refuses is reported against the series' path."""
    try:
        return Volume(_read_only(data), affine, meta)
    except GeometryError as exc:
        raise DicomError(
            f"{where}: the header geometry gives no valid volume ({exc}); the header is corrupt"
        ) from exc


def _opt_float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _safe_get(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.get`` surviving values pydicom cannot convert (an IS "1e999" raises OverflowError in pydicom)."""
    try:
        return hget(ds, keyword, default)
    except (ValueError, TypeError, OverflowError):
        return default


def _header_int(ds: Any, keyword: str, default: int, path: Path) -> int:
    """An integer header element (``default`` when absent or empty), or DicomError naming the file."""
    try:
        value = hget(ds, keyword, default)
        return default if value in (None, "") else int(value)
    except (ValueError, TypeError, OverflowError):
        raise DicomError(
            f"{path}: {keyword} {_safe_get(ds, keyword)!r} is not an integer; the header is corrupt: "
            "export the file again"
        ) from None


def _tag_value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return tuple(str(x) for x in v)
    return str(v)


def _is_enhanced(ds: Any) -> bool:
    return "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds


def _is_mosaic(ds: Any) -> bool:
    image_type = [str(x).upper() for x in (hget(ds, "ImageType") or [])]
    return "MOSAIC" in image_type


def _classic_frames(path: Path, file_index: int, ds: Any) -> list[_Frame]:
    slope = _opt_float(hget(ds, "RescaleSlope", 1.0))
    inter = _opt_float(hget(ds, "RescaleIntercept", 0.0))
    tags = {name: _tag_value(_safe_get(ds, name)) for name in _DISCRIMINATORS_CLASSIC}
    tags["NumberOfTemporalPositions"] = _tag_value(_safe_get(ds, "NumberOfTemporalPositions"))
    return [
        _Frame(
            path=path,
            file_index=file_index,
            frame=0,
            ipp=_floats(hget(ds, "ImagePositionPatient"), 3, "ImagePositionPatient", path),
            iop=_floats(hget(ds, "ImageOrientationPatient"), 6, "ImageOrientationPatient", path),
            spacing=_pixel_spacing(hget(ds, "PixelSpacing"), path),
            slope=1.0 if slope is None else slope,
            intercept=0.0 if inter is None else inter,
            thickness=_opt_float(hget(ds, "SliceThickness")),
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


def _enhanced_frames(path: Path, file_index: int, ds: Any) -> list[_Frame]:
    n = max(_header_int(ds, "NumberOfFrames", 1, path), 1)
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per) not in (0, n):
        raise DicomError(
            f"{path}: NumberOfFrames is {n} but the per-frame functional groups describe {len(per)} frames; "
            "the file is corrupt or was edited by hand"
        )
    top_slope = _opt_float(ds.get("RescaleSlope", 1.0))
    top_inter = _opt_float(ds.get("RescaleIntercept", 0.0))
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
        slope = _opt_float(_scalar(_leaf(pvt, _SLOPE))) if pvt is not None else top_slope
        inter = _opt_float(_scalar(_leaf(pvt, _INTERCEPT))) if pvt is not None else top_inter
        frames.append(
            _Frame(
                path=path,
                file_index=file_index,
                frame=f,
                ipp=_floats(_leaf(pos, _IPP), 3, f"ImagePositionPatient ({where})", path),
                iop=_floats(_leaf(ori, _IOP), 6, f"ImageOrientationPatient ({where})", path),
                spacing=_pixel_spacing(_leaf(meas, _PIXEL_SPACING), path),
                slope=1.0 if slope is None else slope,
                intercept=0.0 if inter is None else inter,
                thickness=_opt_float(_scalar(_leaf(meas, _SLICE_THICKNESS))),
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


# --------------------------------------------------------------------------- pixels


@dataclass(frozen=True)
class _Layout:
    """How a file's pixel data are stored (checked header values; internal)."""

    rows: int
    cols: int
    frames: int
    dtype: np.dtype  # stored dtype of native data (byte order of the file)
    bits_alloc: int
    bits_stored: int
    signed: bool
    compressed: str | None  # transfer syntax name when compressed

    @property
    def nbytes(self) -> int:
        return self.rows * self.cols * self.frames * self.dtype.itemsize


def _layout(path: Path, ds: Any) -> _Layout:
    """Check the image description of a file (every refusal of :func:`decode_frames` before reading)."""
    from pydicom.uid import UID

    if "PixelData" not in ds:
        alt = "FloatPixelData" if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds else None
        extra = f" (it holds {alt}, which spinemri does not read)" if alt else ""
        raise DicomError(
            f"{path}: the file has no PixelData{extra}; it is not an image (a report, presentation state or "
            "a header-only export). Remove it from the folder or export the images again"
        )
    rows = _header_int(ds, "Rows", 0, path)
    cols = _header_int(ds, "Columns", 0, path)
    spp = _header_int(ds, "SamplesPerPixel", 1, path) or 1
    bits_alloc = _header_int(ds, "BitsAllocated", 16, path) or 16
    bits_stored = _header_int(ds, "BitsStored", bits_alloc, path) or bits_alloc
    signed = _header_int(ds, "PixelRepresentation", 0, path) == 1
    n = max(_header_int(ds, "NumberOfFrames", 1, path), 1)
    if rows < 1 or cols < 1:
        raise DicomError(f"{path}: invalid image matrix Rows={rows} Columns={cols}")
    if spp != 1:
        raise DicomError(
            f"{path}: the image has {spp} samples per pixel ({ds.get('PhotometricInterpretation')}); "
            "spinemri "
            "reads greyscale MR/CT images only"
        )
    ts = _file_meta(ds)
    ts_uid = UID(ts) if ts else None
    if ts_uid is not None and not ts_uid.is_transfer_syntax:
        raise DicomError(
            f"{path}: TransferSyntaxUID {ts} is not a DICOM transfer syntax, so the pixel data cannot be "
            "decoded; the file meta header is corrupt: export the file again"
        )
    if ts_uid is not None and ts_uid.is_compressed:
        return _Layout(rows, cols, n, np.dtype(np.uint16), bits_alloc, bits_stored, signed, ts_uid.name)
    if bits_alloc not in (8, 16, 32):
        raise DicomError(f"{path}: BitsAllocated {bits_alloc} is not supported (8, 16 or 32 are)")
    little = True
    if ts_uid is not None:
        little = bool(ts_uid.is_little_endian)
    else:
        enc = getattr(ds, "original_encoding", None)
        if enc is not None and enc[1] is not None:
            little = bool(enc[1])
    dtype = np.dtype(f"{'<' if little else '>'}{'i' if signed else 'u'}{bits_alloc // 8}")
    return _Layout(rows, cols, n, dtype, bits_alloc, bits_stored, signed, None)


def _check_length(path: Path, lay: _Layout, got: int) -> None:
    """Refuse PixelData shorter than the image, or longer by more than padding."""
    rows, cols, n, size = lay.rows, lay.cols, lay.frames, lay.dtype.itemsize
    need = lay.nbytes
    if got < need:
        raise DicomError(
            f"{path}: PixelData holds {got} bytes but Rows x Columns x frames x bytes = "
            f"{rows} x {cols} x {n} x {size} = {need}; the file is truncated: "
            "copy it again from the source"
        )
    excess = got - need
    if excess >= size * min(rows, cols):  # more than padding: the header misdescribes the data
        raise DicomError(
            f"{path}: PixelData holds {got} bytes but Rows x Columns x frames x bytes = "
            f"{rows} x {cols} x {n} x {size} = {need}, {excess} bytes fewer; "
            "Rows, Columns, NumberOfFrames or BitsAllocated do not describe the pixel data (reading it "
            "would scramble the image): the header is corrupt, export the series again"
        )


def _fix_bits(arr: np.ndarray, lay: _Layout, *, inplace: bool = False) -> np.ndarray:
    """Sign-extend (signed) or mask (unsigned) values stored in fewer bits than allocated."""
    if lay.bits_stored >= lay.bits_alloc:
        return arr
    if lay.signed:
        shift = lay.bits_alloc - lay.bits_stored
        if inplace:
            arr <<= shift
            arr >>= shift  # arithmetic shift on a signed dtype sign-extends
            return arr
        return (arr << shift) >> shift
    mask = (1 << lay.bits_stored) - 1
    if int(arr.max()) > mask:  # bits above BitsStored (overlays, Siemens PMU log) are not pixel values
        if inplace:
            np.bitwise_and(arr, arr.dtype.type(mask), out=arr)
            return arr
        return arr & arr.dtype.type(mask)
    return arr


def decode_frames(path: Path, ds: Any, layout: _Layout | None = None) -> np.ndarray:
    """Stored pixel values of every frame of a file, shape (frames, rows, columns).

    Native (uncompressed) data are read with :func:`numpy.frombuffer` straight
    from PixelData; compressed data (RLE, JPEG lossless, JPEG-LS, JPEG 2000)
    are decoded by pydicom with the pylibjpeg plugins. Signed data with
    BitsStored < BitsAllocated are sign-extended from bit BitsStored - 1;
    unsigned values are masked to their BitsStored low bits (as pydicom and
    dcm2niix do: Siemens stores its physiology log in the high bits).
    RescaleSlope/Intercept are *not* applied here. ``layout``: the file's
    checked layout when the caller already has it.
    """
    lay = _layout(path, ds) if layout is None else layout
    n, rows, cols = lay.frames, lay.rows, lay.cols
    if lay.compressed:
        try:
            arr = np.asarray(ds.pixel_array)
        except Exception as exc:
            raise DicomError(
                f"{path}: the pixel data ({lay.compressed}) cannot be decoded ({type(exc).__name__}: {exc}); "
                "the file is truncated or corrupt, or a decoder is missing (pip install 'spinemri[codecs]')"
            ) from exc
        return arr.reshape(n, rows, cols)
    dtype = lay.dtype
    try:
        raw = _pixel_bytes(path, ds)
    except Exception as exc:
        raise DicomError(
            f"{path}: the pixel data cannot be read ({type(exc).__name__}: {exc}); "
            "the file is truncated or corrupt"
        ) from exc
    _check_length(path, lay, 0 if raw is None else len(raw))
    assert raw is not None
    arr = np.frombuffer(raw, dtype=dtype, count=rows * cols * n).reshape(n, rows, cols)
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    return _fix_bits(arr, lay)


def _pixel_bytes(path: Path, ds: Any) -> bytes | None:
    """PixelData bytes; a value deferred by ``dcmread(defer_size=...)`` is read straight from its offset."""
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    tell = getattr(elem, "value_tell", None)
    length = getattr(elem, "length", None)
    if elem is not None and getattr(elem, "value", b"") is None and tell and length and length != 0xFFFFFFFF:
        with open(path, "rb") as fh:
            fh.seek(tell)
            return fh.read(length)
    return ds.PixelData


def _deferred_span(ds: Any) -> tuple[int, int] | None:
    """(file offset, length) of PixelData left unread by ``dcmread(defer_size=...)``, else None."""
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    tell = getattr(elem, "value_tell", None)
    length = getattr(elem, "length", None)
    if elem is not None and getattr(elem, "value", b"") is None and tell and length and length != 0xFFFFFFFF:
        return int(tell), int(length)
    return None


#: Files read concurrently by :func:`_read_native_stack` (reads release the GIL).
READ_THREADS = 4


def _read_native_stack(
    group: list[Any], layouts: list[_Layout], frames: list[_Frame], rows: int, cols: int
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
    spans = [_deferred_span(h.ds) for h in group]
    if any(sp is None for sp in spans):
        return None
    raw = np.empty((n, rows, cols), dtype=lay.dtype)

    def read(k: int) -> None:
        f = frames[k]
        tell, length = spans[f.file_index]  # type: ignore[misc]
        try:
            with open(f.path, "rb") as fh:
                avail = max(0, min(length, os.fstat(fh.fileno()).st_size - tell))
                _check_length(f.path, lay, avail)
                fh.seek(tell)
                got = fh.readinto(memoryview(raw[k]).cast("B"))
        except OSError as exc:
            raise DicomError(
                f"{f.path}: the pixel data cannot be read ({type(exc).__name__}: {exc}); "
                "the file is truncated or corrupt"
            ) from exc
        if got != lay.nbytes:  # shrank since the header scan
            _check_length(f.path, lay, got or 0)

    threads = min(READ_THREADS, os.cpu_count() or 1) if n >= 8 else 1
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(read, range(n)):  # re-raises the first failure in slice order
                pass
    else:
        for k in range(n):
            read(k)
    return _fix_bits(raw, lay, inplace=True)


def _read_j2k_stack(
    group: list[Any],
    layouts: list[_Layout],
    by_file: dict[int, list[tuple[int, _Frame]]],
    n: int,
    rows: int,
    cols: int,
) -> np.ndarray | None:
    """A JPEG 2000 series decoded on several threads (:mod:`spinemri.io.dicom_j2k`), or None.

    None (the per-file pydicom path decodes it) when imagecodecs is missing,
    a file has another transfer syntax, the files disagree on the stored
    type, or any frame does not decode to exactly what pydicom would return.
    """
    from . import dicom_j2k

    if not dicom_j2k.available():
        return None
    files = []
    dtype: np.dtype | None = None
    for fi in by_file:
        h = group[fi]
        if _file_meta(h.ds) not in dicom_j2k.JPEG2000_UIDS:
            return None
        lay = layouts[fi]
        want = np.dtype(f"{'i' if lay.signed else 'u'}{max(lay.bits_alloc // 8, 1)}")
        if (dtype is not None and want != dtype) or (lay.rows, lay.cols) != (rows, cols):
            return None
        dtype = want
        files.append((h.path, h.ds, lay.frames))
    if dtype is None:
        return None
    decoded = dicom_j2k.decode_series(files, rows, cols, dtype, _j2k_fragments)
    if decoded is None:
        return None
    raw = np.empty((n, rows, cols), dtype=dtype)
    for items, arr in zip(by_file.values(), decoded, strict=True):
        for k, f in items:
            raw[k] = arr[f.frame]
    return raw


def _j2k_fragments(path: Path, ds: Any, n_frames: int) -> list[bytes]:
    """The codestream of each frame of an encapsulated (compressed) file."""
    from pydicom.encaps import generate_frames

    data = _pixel_bytes(path, ds)
    if data is None:
        raise ValueError("no pixel data")
    return list(generate_frames(data, number_of_frames=n_frames))


# --------------------------------------------------------------------------- geometry


def _check_orientation(frames: list[_Frame], where: Path) -> tuple[np.ndarray, np.ndarray]:
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


def _describe_4d(frames: list[_Frame]) -> str:
    varying = [key for key in frames[0].tags if len({f.tags.get(key) for f in frames}) > 1]
    if varying:
        return "differing in " + ", ".join(varying)
    ntp = frames[0].tags.get("NumberOfTemporalPositions")
    return f"NumberOfTemporalPositions {ntp}" if ntp else "differing only in vendor-private fields"


def _order_slices(frames: list[_Frame], normal: np.ndarray, where: Path) -> tuple[list[_Frame], np.ndarray]:
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


def _affine(
    row_dir: np.ndarray,
    col_dir: np.ndarray,
    spacing: tuple[float, float],
    step: np.ndarray,
    origin: np.ndarray,
) -> np.ndarray:
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[1]  # i: column index, along IOP[:3], spaced by PixelSpacing[1]
    lps[:3, 1] = col_dir * spacing[0]  # j: row index, along IOP[3:], spaced by PixelSpacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = origin
    return RAS_TO_LPS @ lps


def _rescale(raw: np.ndarray, slopes: np.ndarray, inters: np.ndarray) -> np.ndarray:
    """Apply per-slice slope/intercept; ``raw`` has the slice axis first."""
    if np.all(slopes == 1.0) and np.all(inters == np.round(inters)):
        if np.all(inters == 0):
            return raw
        lo = float(raw.min()) + float(inters.min())
        hi = float(raw.max()) + float(inters.max())
        for dt in (np.int16, np.int32, np.int64):
            if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
                return raw.astype(dt) + inters.astype(dt)[:, None, None]
    out = raw.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        out *= slopes.astype(np.float32)[:, None, None]
        out += inters.astype(np.float32)[:, None, None]
    return out


def _rescale_finite(raw: np.ndarray, slopes: np.ndarray, inters: np.ndarray, where: Path) -> np.ndarray:
    """:func:`_rescale`, refusing slopes/intercepts that overflow float32 to infinity."""
    out = _rescale(raw, slopes, inters)
    if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise DicomError(
            f"{where}: RescaleSlope {np.unique(slopes).tolist()[:4]} / RescaleIntercept "
            f"{np.unique(inters).tolist()[:4]} turn the stored values into infinite numbers "
            "(beyond float32); "
            "the header is corrupt: export the series again"
        )
    return out


def _demosaic(h: Any, where: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Siemens mosaic file -> (slices, rows, cols) stored values and the RAS affine."""
    ds, path = h.ds, h.path
    try:
        n = int(ds[0x0019, 0x100A].value)
    except (KeyError, TypeError, ValueError):
        raise DicomError(
            f"{path}: a Siemens MOSAIC image without NumberOfImagesInMosaic (0019,100A); spinemri cannot cut "
            "it into slices: convert the series with dcm2niix and pass the NIfTI file"
        ) from None
    with warnings.catch_warnings():  # nibabel.nicom warns that its DICOM *readers* are experimental
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import csareader

    try:
        csa = csareader.get_csa_header(ds, "image")
        normal = np.asarray(csareader.get_vector(csa, "SliceNormalVector", 3), dtype=np.float64)
    except Exception:  # missing or unreadable CSA header
        normal = None
    if normal is None or not np.all(np.isfinite(normal)) or np.linalg.norm(normal) < 0.5:
        raise DicomError(
            f"{path}: a Siemens MOSAIC image without a readable CSA SliceNormalVector; the slice order is "
            "unknown: convert the series with dcm2niix and pass the NIfTI file"
        )
    normal = normal / np.linalg.norm(normal)
    frame = _classic_frames(path, 0, ds)[0]
    row_dir, col_dir = _check_orientation([frame], where)
    if abs(abs(float(normal @ np.cross(row_dir, col_dir))) - 1) > 1e-3:
        raise DicomError(f"{path}: the CSA SliceNormalVector is not perpendicular to ImageOrientationPatient")
    rows, cols = int(ds.Rows), int(ds.Columns)
    m = int(math.ceil(math.sqrt(n)))
    if rows % m or cols % m:
        raise DicomError(f"{path}: a {rows}x{cols} mosaic cannot hold {n} tiles on a {m}x{m} grid")
    r, c = rows // m, cols // m
    stored = decode_frames(path, ds)[0]
    tiles = stored.reshape(m, r, m, c).transpose(0, 2, 1, 3).reshape(m * m, r, c)[:n]
    spacing = frame.spacing
    sbs = _opt_float(ds.get("SpacingBetweenSlices")) or frame.thickness
    if not sbs or sbs <= 0:
        raise DicomError(f"{path}: a MOSAIC image without a positive SpacingBetweenSlices or SliceThickness")
    # ImagePositionPatient of a mosaic refers to the whole mosaic; move it to the first tile's corner
    origin = frame.ipp + row_dir * spacing[1] * (cols - c) / 2.0 + col_dir * spacing[0] * (rows - r) / 2.0
    affine = _affine(row_dir, col_dir, spacing, normal * sbs, origin)
    notes = {"mosaic_slices": n, "spacing_between_slices": float(sbs), "slice_thickness": frame.thickness}
    return tiles, affine, notes


def _file_meta(ds: Any) -> str | None:
    fm = getattr(ds, "file_meta", None)
    ts = fm.get("TransferSyntaxUID") if fm is not None else None
    return str(ts) if ts else None


def headers_to_volume(group: list[Any], info: Any, *, source: Path) -> Volume:
    """Load the files of one series (``_Header`` records from :mod:`spinemri.io.dicom`) as a Volume."""
    where = source
    first = group[0].ds
    is_folder = source.is_dir()
    if any(_is_mosaic(h.ds) for h in group):
        if len(group) > 1:
            raise DicomError(
                f"{where}: series {info.label()} is a Siemens MOSAIC series of {len(group)} files, i.e. "
                f"{len(group)} volumes (fMRI/diffusion time series, 4-D); spinemri measures one 3-D volume: "
                "pass one mosaic file, or convert with dcm2niix and pass one 3-D volume"
            )
        stored, affine, notes = _demosaic(group[0], where)
        slopes = np.full(stored.shape[0], _opt_float(first.get("RescaleSlope", 1.0)) or 1.0)
        inters = np.full(stored.shape[0], _opt_float(first.get("RescaleIntercept", 0.0)) or 0.0)
        data = _rescale_finite(stored, slopes, inters, where).transpose(2, 1, 0)
        return _volume(data, affine, _meta(first, info, source, len(group), notes), where)

    frames: list[_Frame] = []
    for idx, h in enumerate(group):
        frames.extend(
            _enhanced_frames(h.path, idx, h.ds) if _is_enhanced(h.ds) else _classic_frames(h.path, idx, h.ds)
        )
    shapes = {(int(hget(h.ds, "Rows", 0) or 0), int(hget(h.ds, "Columns", 0) or 0)) for h in group}
    if len(shapes) > 1:
        raise DicomError(
            f"{where}: the images of series {info.label()} have different matrix sizes {sorted(shapes)}"
        )
    row_dir, col_dir = _check_orientation(frames, where)
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
    thickness = frames[0].thickness
    notes = {}
    if n == 1:
        sbs = _opt_float(first.get("SpacingBetweenSlices")) or thickness or 1.0
        step = normal * sbs
        notes["spacing_between_slices"] = float(sbs)
        if not _is_enhanced(first) and not is_folder:
            warnings.warn(
                f"{source}: this file holds a single slice of series {info.label()}; pass its folder to load "
                "the whole series",
                SpinemriWarning,
                stacklevel=3,
            )
    else:
        step = (frames[-1].ipp - frames[0].ipp) / (n - 1)
        pred = frames[0].ipp[None, :] + np.arange(n)[:, None] * step[None, :]
        off = np.max(np.linalg.norm(np.stack([f.ipp for f in frames]) - pred, axis=1))
        if off > STEP_ATOL_MM + STEP_RTOL * float(np.linalg.norm(step)):
            raise DicomError(
                f"{where}: the slice positions do not lie on a straight line (deviation {off:.3g} mm); "
                "the series is not one regular stack"
            )
        notes["spacing_between_slices"] = float((dist[-1] - dist[0]) / (n - 1))
        shear = float(np.linalg.norm(step - normal * (step @ normal)))
        if shear > 1e-3:
            notes["sheared_stack_mm"] = shear  # gantry tilt: kept exactly in the (non-orthogonal) affine
    notes["slice_thickness"] = thickness
    affine = _affine(row_dir, col_dir, frames[0].spacing, step, frames[0].ipp)

    # pixels: decode each file once, place its frames
    by_file: dict[int, list[tuple[int, _Frame]]] = {}
    for k, f in enumerate(frames):
        by_file.setdefault(f.file_index, []).append((k, f))
    rows, cols = shapes.pop()
    layouts = [_layout(h.path, h.ds) for h in group]  # every refusal of decode_frames, once per file
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
    slopes = np.array([f.slope for f in frames])
    inters = np.array([f.intercept for f in frames])
    data = _rescale_finite(raw, slopes, inters, where).transpose(2, 1, 0)
    return _volume(data, affine, _meta(first, info, source, len(group), notes), where)


def _read_only(data: np.ndarray) -> np.ndarray:
    """Mark a freshly built array (owned by this module) read-only so that Volume shares it, not copies it."""
    data.flags.writeable = False
    return data


def _meta(ds: Any, info: Any, source: Path, n_files: int, notes: dict[str, Any]) -> dict[str, Any]:
    from pydicom.uid import UID

    ts = _file_meta(ds)
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
        "n_files": n_files,
        "image_type": tuple(info.image_type),
    }
    meta.update(notes)
    return meta
