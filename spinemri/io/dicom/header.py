"""Reading DICOM headers: files to pydicom datasets, and fast access to their values.

* :func:`is_dicom_file` and :func:`read_header`: whether a file is DICOM, and
  its header (pydicom, or the fast plain reader below), with spinemri's
  refusals of corrupt files;
* :func:`read_plain_header`: a fast reader for plain uncompressed files (the
  notes below);
* :func:`hget`, :func:`safe_get`, :func:`header_int`, :func:`opt_float`,
  :func:`transfer_syntax`: header values, parsed without pydicom's per-element
  conversion where that gives the same value.

The fast plain-header reader
----------------------------
A fast reader for the headers of plain uncompressed DICOM files, equal to pydicom's for those files.

:func:`read_plain_header` is an optional fast path of
:func:`read_header`: for a file that is "plain" — the
128-byte preamble and ``DICM``, a file meta group in Explicit VR Little Endian,
Explicit or Implicit VR Little Endian transfer syntax, no command set, only
defined-length elements at the top level, and PixelData as the last element —
it returns the same :class:`pydicom.dataset.FileDataset` that
``pydicom.dcmread(path, defer_size=defer_size)`` returns: the same raw
elements with the same tags, VRs, lengths, value bytes and file offsets,
values longer than ``defer_size`` deferred, the same file meta, preamble and
character set (pydicom has already converted a few file meta elements and the
character set when it returns; here they are converted on first access, to the
same values). pydicom then converts values on access exactly as usual.
Anything else (compressed or big-endian data, undefined-length sequences, an
unknown VR, a truncated file, elements after PixelData ...) returns ``None``
and the caller uses pydicom; this reader raises nothing.

Why: pydicom reads each element with several ``read``/``tell`` calls; one
``read`` of the header bytes and ``struct.unpack_from`` take about 1.5x less
time per file, header parsing being the largest part of loading an
uncompressed series (docs/performance.md).
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Any

from ...errors import DicomError

__all__ = [
    "DEFER_SIZE",
    "PLAIN_TRANSFER_SYNTAXES",
    "is_dicom_file",
    "read_header",
    "read_plain_header",
    "hget",
    "safe_get",
    "header_int",
    "opt_float",
    "transfer_syntax",
]

#: Elements larger than this (bytes) are not read while scanning headers for loading.
DEFER_SIZE = 8192

#: Transfer syntaxes handled here: Explicit VR Little Endian and Implicit VR Little Endian.
PLAIN_TRANSFER_SYNTAXES = {"1.2.840.10008.1.2.1": False, "1.2.840.10008.1.2": True}

_PIXEL_DATA = 0x7FE00010
_CHARSET = 0x00080005
_UNDEFINED = 0xFFFFFFFF
_CHUNK = 1 << 16

_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OW", "OV", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)  # 2 reserved bytes + 4-byte length
_SHORT_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST",
     "TM", "UI", "UL", "US"}
)  # fmt: skip
_EXPLICIT = struct.Struct("<HH2sH")
_IMPLICIT = struct.Struct("<HHL")
_LONG = struct.Struct("<L")


class _NotPlain(Exception):
    """The file is not plain: let pydicom read it."""


class _Overflow(Exception):
    """The header continues past the bytes read so far: read more."""


#: Explicit-VR bytes -> (VR, element header length): 12 for the long VRs (2 reserved bytes + 4-byte
#: length), 8 for the short ones.
_VR_INFO: dict[bytes, tuple[str, int]] = {
    **{v.encode("latin-1"): (v, 12) for v in _LONG_VRS},
    **{v.encode("latin-1"): (v, 8) for v in _SHORT_VRS},
}


def _elements(
    buf: bytes, size: int, pos: int, implicit: bool, defer_size: int, group2: bool
) -> tuple[dict[Any, Any], int, bool]:
    """Raw elements of ``buf`` (the first bytes of a ``size``-byte file) from ``pos``.

    Returns (elements, end position, PixelData seen). Raises _NotPlain or,
    when a needed value lies past ``buf``, _Overflow.
    """
    from pydicom.dataelem import RawDataElement, empty_value_for_VR
    from pydicom.tag import BaseTag

    out: dict[Any, Any] = {}
    have = len(buf)
    # VR bytes -> (VR, header length), and each VR's empty raw value, looked up rather than rebuilt
    vr_info = _VR_INFO
    empty: dict[str | None, Any] = {}
    unpack_explicit, unpack_implicit, unpack_long = (
        _EXPLICIT.unpack_from,
        _IMPLICIT.unpack_from,
        _LONG.unpack_from,
    )
    while pos < size:
        if pos + 12 > have:
            if pos + 8 > size:
                raise _NotPlain("partial element")
            raise _Overflow
        if group2 and buf[pos : pos + 2] != b"\x02\x00":
            return out, pos, False  # end of the file meta group (the data set may be implicit VR)
        if implicit:
            group, elem, length = unpack_implicit(buf, pos)
            vr: str | None = None
            hdr = 8
        else:
            group, elem, vr_b, length = unpack_explicit(buf, pos)
            info = vr_info.get(vr_b)
            if info is None:
                raise _NotPlain("unknown VR")
            vr, hdr = info
            if hdr == 12:
                length = unpack_long(buf, pos + 8)[0]
        if not group2 and (group == 0 or group == 2 or group == 0xFFFE):
            raise _NotPlain("command set, misplaced meta or item at top level")
        if length == _UNDEFINED:
            raise _NotPlain("undefined length")
        tag = group << 16 | elem
        tell = pos + hdr
        if tell + length > size:
            raise _NotPlain("value beyond the end of the file")
        if length > defer_size and tag != _CHARSET:
            value: Any = None
        elif length > 0:
            if tell + length > have:
                raise _Overflow
            value = buf[tell : tell + length]
        else:
            if vr not in empty:  # raw empty values are b"" or None: immutable, safe to share
                empty[vr] = empty_value_for_VR(vr, raw=True)
            value = empty[vr]
            if not isinstance(value, (bytes, str, type(None))):
                value = empty_value_for_VR(vr, raw=True)
        out[tag] = RawDataElement(BaseTag(tag), vr, length, value, tell, implicit, True)
        pos = tell + length
        if tag == _PIXEL_DATA and not group2:
            return out, pos, True
    return out, pos, False


def read_plain_header(path: str | os.PathLike[str], defer_size: int) -> Any | None:
    """``pydicom.dcmread(path, defer_size=defer_size)`` for a plain file, else ``None``.

    Parameters
    ----------
    path : path-like
        The file.
    defer_size : int
        Values longer than this (bytes) are left unread (deferred), as pydicom does.

    Returns
    -------
    pydicom.dataset.FileDataset or None
        ``None`` when the file is not plain (see the module notes) or cannot be read.
    """
    try:
        return _read(Path(path), defer_size)
    except (_NotPlain, OSError, struct.error):
        return None


def _read(path: Path, defer_size: int) -> Any:
    from pydicom.charset import default_encoding
    from pydicom.dataset import FileDataset, FileMetaDataset

    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        chunk = _CHUNK
        while True:
            fh.seek(0)
            buf = fh.read(min(chunk, size))
            if len(buf) < 132 or buf[128:132] != b"DICM":
                raise _NotPlain("no DICM marker")
            try:
                meta_elems, pos, _ = _elements(buf, size, 132, False, defer_size, True)
                ts_elem = meta_elems.get(0x00020010)
                if ts_elem is None or not ts_elem.value:
                    raise _NotPlain("no transfer syntax")
                ts = ts_elem.value.decode("ascii", "replace").strip(" \x00")
                implicit = PLAIN_TRANSFER_SYNTAXES.get(ts)
                if implicit is None:
                    raise _NotPlain("transfer syntax")
                elems, end, pixels = _elements(buf, size, pos, implicit, defer_size, False)
                break
            except _Overflow:
                if chunk >= size:
                    raise _NotPlain("inconsistent sizes") from None
                chunk *= 8
    if not pixels or end != size:
        raise _NotPlain("no PixelData, or elements after it")
    file_meta = FileMetaDataset(meta_elems)
    file_meta.set_original_encoding(
        is_implicit_vr=False, is_little_endian=True, character_encoding=default_encoding
    )
    ds = FileDataset(str(path), elems, buf[:128], file_meta, implicit, True)
    ds.set_original_encoding(implicit, True, ds._character_set)
    return ds


# --------------------------------------------------------------------------- reading a file


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a DICOM file.

    Cheap: a file with the 128-byte preamble and ``DICM`` marker is DICOM; for
    a preamble-less file a header-only pydicom read must find a SOP Class UID
    or an image matrix (Rows).

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    bool
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    return read_header(p, stop_before_pixels=True, quiet=True) is not None


def read_header(path: Path, *, stop_before_pixels: bool, quiet: bool = False) -> Any | None:
    """Parse a file's header with pydicom; ``None`` when it is not DICOM.

    Parameters
    ----------
    path : Path
        The file.
    stop_before_pixels : bool
        True: header only (``dcmread(stop_before_pixels=True)``, for listing
        series). False: elements over :data:`DEFER_SIZE` bytes deferred (for
        loading), plain files read by :func:`read_plain_header`.
    quiet : bool
        Return ``None`` instead of raising for a corrupt file that claims to be DICOM.

    Returns
    -------
    pydicom.dataset.FileDataset or None
        ``None`` when the file is not DICOM (or cannot be opened).

    Raises
    ------
    DicomError
        The file has the DICM marker (or a pydicom-readable header) but its header
        cannot be read, unless ``quiet``.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    kwargs: dict[str, Any] = (
        {"stop_before_pixels": True} if stop_before_pixels else {"defer_size": DEFER_SIZE}
    )
    if not stop_before_pixels:
        ds = read_plain_header(path, DEFER_SIZE)  # the same dataset, 5x faster, for plain files
        if ds is not None:
            return ds
    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError as exc:
        if _has_marker(path):
            error: Exception | None = exc
        else:
            error = None  # no preamble: try a forced read below
    except Exception as exc:  # corrupt header of a file that claims to be DICOM
        if isinstance(exc, OSError) and not _can_open(path):
            return None  # unreadable file: not ours to judge (as before: ignored)
        error = exc
    if error is not None:
        if quiet:
            return None
        raise DicomError(
            f"{path}: the DICOM header cannot be read ({type(error).__name__}: {error}); "
            "the file is truncated or corrupt: remove it or copy it again from the source"
        ) from error
    try:
        ds = pydicom.dcmread(path, force=True, **kwargs)
        # a forced read of a text file "succeeds" with junk: require real image/SOP elements
        if "SOPClassUID" in ds or "Rows" in ds:
            _ = ds.get("SOPClassUID"), ds.get("Rows")
            return ds
    except Exception:
        pass
    return None


def _can_open(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def _has_marker(path: Path) -> bool:
    """True when the file has the 128-byte preamble and the ``DICM`` marker."""
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


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
    return tag


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

    Parameters
    ----------
    ds : pydicom.Dataset
        The header.
    keyword : str
        DICOM keyword, e.g. ``"ImagePositionPatient"``.
    default : any
        Returned when the element is absent.

    Returns
    -------
    any
        The value (see above), or ``default``.
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


def opt_float(value: Any) -> float | None:
    """``float(value)`` when it is a finite number, else ``None``.

    Parameters
    ----------
    value : any
        A header value (number, string, or None).

    Returns
    -------
    float or None
    """
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def safe_get(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.get`` surviving values pydicom cannot convert (an IS "1e999" raises OverflowError in pydicom).

    Parameters
    ----------
    ds : pydicom.Dataset
        The header.
    keyword : str
        DICOM keyword.
    default : any
        Returned when the element is absent or cannot be converted.

    Returns
    -------
    any
        :func:`hget`'s value, or ``default``.
    """
    try:
        return hget(ds, keyword, default)
    except (ValueError, TypeError, OverflowError):
        return default


def header_int(ds: Any, keyword: str, default: int, path: Path) -> int:
    """An integer header element (``default`` when absent or empty), or DicomError naming the file.

    Parameters
    ----------
    ds : pydicom.Dataset
        The header.
    keyword : str
        DICOM keyword, e.g. ``"Rows"``.
    default : int
        Returned when the element is absent or empty.
    path : Path
        The file, named in the error message.

    Returns
    -------
    int

    Raises
    ------
    DicomError
        The value is not an integer.
    """
    try:
        value = hget(ds, keyword, default)
        return default if value in (None, "") else int(value)
    except (ValueError, TypeError, OverflowError):
        raise DicomError(
            f"{path}: {keyword} {safe_get(ds, keyword)!r} is not an integer; the header is corrupt: "
            "export the file again"
        ) from None


def transfer_syntax(ds: Any) -> str | None:
    """The TransferSyntaxUID of a file's meta header.

    Parameters
    ----------
    ds : pydicom.Dataset
        The file's dataset.

    Returns
    -------
    str or None
        ``None`` without file meta or TransferSyntaxUID.
    """
    fm = getattr(ds, "file_meta", None)
    ts = fm.get("TransferSyntaxUID") if fm is not None else None
    return str(ts) if ts else None
