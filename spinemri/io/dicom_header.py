"""A fast reader for the headers of plain uncompressed DICOM files, equal to pydicom's for those files.

:func:`read_plain_header` is an optional fast path of
:func:`spinemri.io.dicom._read_header`: for a file that is "plain" — the
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

import os
import struct
from pathlib import Path
from typing import Any

__all__ = ["read_plain_header", "PLAIN_TRANSFER_SYNTAXES"]

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
