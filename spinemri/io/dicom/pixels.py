"""Pixel data of DICOM files: stored layout, decoding, BitsStored masking / sign extension, rescale.

* :func:`read_layout` checks how a file stores its pixels (:class:`Layout`:
  matrix, frames, stored dtype and byte order, BitsAllocated/BitsStored,
  signedness, compression) with every refusal before any pixel is read;
* :func:`decode_frames` returns a file's stored values, shape (frames, rows,
  columns): native data straight from PixelData, compressed data through
  pydicom's decoders; :func:`fix_bits` sign-extends or masks values stored in
  fewer bits than allocated;
* :func:`pixel_bytes` / :func:`deferred_span` find PixelData left unread by the
  header scan, :func:`check_length` refuses PixelData of the wrong size;
* :func:`rescale_finite` applies RescaleSlope/Intercept per slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ...errors import DicomError
from .header import header_int, transfer_syntax

__all__ = [
    "Layout",
    "read_layout",
    "check_length",
    "fix_bits",
    "decode_frames",
    "invert_monochrome1",
    "is_monochrome1",
    "pixel_bytes",
    "deferred_span",
    "rescale_finite",
]


@dataclass(frozen=True)
class Layout:
    """How a file's pixel data are stored (checked header values).

    ``dtype`` is the stored dtype of native data, in the file's byte order;
    ``compressed`` the transfer syntax name when the data are compressed.
    """

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
        """Bytes of native pixel data the layout describes (rows x columns x frames x item size)."""
        return self.rows * self.cols * self.frames * self.dtype.itemsize


def read_layout(path: Path, ds: Any) -> Layout:
    """Check the image description of a file (every refusal of :func:`decode_frames` before reading).

    Parameters
    ----------
    path : Path
        The file, named in error messages.
    ds : pydicom.Dataset
        Its header.

    Returns
    -------
    Layout

    Raises
    ------
    DicomError
        No PixelData, an invalid matrix, colour images, an unknown transfer
        syntax, or a BitsAllocated other than 8, 16 or 32 for native data.
    """
    from pydicom.uid import UID

    if "PixelData" not in ds:
        alt = "FloatPixelData" if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds else None
        extra = f" (it holds {alt}, which spinemri does not read)" if alt else ""
        raise DicomError(
            f"{path}: the file has no PixelData{extra}; it is not an image (a report, presentation state or "
            "a header-only export). Remove it from the folder or export the images again"
        )
    rows = header_int(ds, "Rows", 0, path)
    cols = header_int(ds, "Columns", 0, path)
    spp = header_int(ds, "SamplesPerPixel", 1, path) or 1
    bits_alloc = header_int(ds, "BitsAllocated", 16, path) or 16
    bits_stored = header_int(ds, "BitsStored", bits_alloc, path) or bits_alloc
    signed = header_int(ds, "PixelRepresentation", 0, path) == 1
    n = max(header_int(ds, "NumberOfFrames", 1, path), 1)
    if rows < 1 or cols < 1:
        raise DicomError(f"{path}: invalid image matrix Rows={rows} Columns={cols}")
    if spp != 1:
        raise DicomError(
            f"{path}: the image has {spp} samples per pixel ({ds.get('PhotometricInterpretation')}); "
            "spinemri "
            "reads greyscale MR/CT images only"
        )
    ts = transfer_syntax(ds)
    ts_uid = UID(ts) if ts else None
    if ts_uid is not None and not ts_uid.is_transfer_syntax:
        raise DicomError(
            f"{path}: TransferSyntaxUID {ts} is not a DICOM transfer syntax, so the pixel data cannot be "
            "decoded; the file meta header is corrupt: export the file again"
        )
    if ts_uid is not None and ts_uid.is_compressed:
        return Layout(rows, cols, n, np.dtype(np.uint16), bits_alloc, bits_stored, signed, ts_uid.name)
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
    return Layout(rows, cols, n, dtype, bits_alloc, bits_stored, signed, None)


def check_length(path: Path, lay: Layout, got: int) -> None:
    """Refuse PixelData shorter than the image, or longer by more than padding.

    Parameters
    ----------
    path : Path
        The file, named in error messages.
    lay : Layout
        Its layout.
    got : int
        Bytes of PixelData found.

    Returns
    -------
    None

    Raises
    ------
    DicomError
        Too few bytes (truncated), or at least a row's worth too many.
    """
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


def fix_bits(arr: np.ndarray, lay: Layout, *, inplace: bool = False) -> np.ndarray:
    """Sign-extend (signed) or mask (unsigned) values stored in fewer bits than allocated.

    Parameters
    ----------
    arr : ndarray
        Stored values, native byte order.
    lay : Layout
        Their layout (BitsAllocated, BitsStored, signedness).
    inplace : bool
        Change ``arr`` itself instead of returning a new array (when a change is needed).

    Returns
    -------
    ndarray
        ``arr`` when nothing changes (or ``inplace``), else a new array.
    """
    if lay.bits_stored >= lay.bits_alloc:
        return arr
    if lay.signed:
        shift = lay.bits_alloc - lay.bits_stored
        if inplace:
            arr <<= shift
            arr >>= shift  # arithmetic shift on a signed dtype sign-extends
            return arr
        return cast(np.ndarray, (arr << shift) >> shift)
    mask = (1 << lay.bits_stored) - 1
    if int(arr.max()) > mask:  # bits above BitsStored (overlays, Siemens PMU log) are not pixel values
        if inplace:
            np.bitwise_and(arr, arr.dtype.type(mask), out=arr)
            return arr
        return cast(np.ndarray, arr & arr.dtype.type(mask))
    return arr


def is_monochrome1(ds: Any) -> bool:
    """True when a header's PhotometricInterpretation is MONOCHROME1 (the lowest value is white).

    Parameters
    ----------
    ds : pydicom.Dataset
        A header.

    Returns
    -------
    bool
        Whether the stored values are inverted with respect to MONOCHROME2.
    """
    return str(ds.get("PhotometricInterpretation", "") or "").strip().upper() == "MONOCHROME1"


def invert_monochrome1(raw: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """Stored values of a MONOCHROME1 image mapped to MONOCHROME2: the same grey levels as displayed.

    MONOCHROME1 stores the lowest value as white (PS3.3 C.7.6.3.1.2). Measured as stored, a
    bright lesion is dark and every threshold is wrong. The values are mirrored within the range
    BitsStored allows, *before* RescaleSlope/Intercept (which keeps integer data integer):
    ``stored' = (2**BitsStored - 1) - stored`` for unsigned data and ``stored' = -1 - stored``
    (the bitwise complement, mirroring ``[-2**(b-1), 2**(b-1) - 1]``) for signed data. A
    series written as MONOCHROME2 whose stored values were inverted this way as MONOCHROME1
    therefore loads exactly as the original.

    Parameters
    ----------
    raw : ndarray
        Stored values (BitsStored masking / sign extension already applied), any shape.
    bits_stored : int
        BitsStored of the data.
    signed : bool
        PixelRepresentation 1.

    Returns
    -------
    ndarray
        The inverted values, in ``raw``'s dtype (``raw`` itself, changed in place, when it is
        writeable).
    """
    out = raw if raw.flags.writeable else raw.copy()
    if signed:
        np.invert(out, out=out)
        return out
    np.subtract(out.dtype.type((1 << bits_stored) - 1), out, out=out)
    return out


def decode_frames(path: Path, ds: Any, layout: Layout | None = None) -> np.ndarray:
    """Stored pixel values of every frame of a file, shape (frames, rows, columns).

    Native (uncompressed) data are read with :func:`numpy.frombuffer` straight
    from PixelData; compressed data (RLE, JPEG lossless, JPEG-LS, JPEG 2000)
    are decoded by pydicom with the pylibjpeg plugins. Signed data with
    BitsStored < BitsAllocated are sign-extended from bit BitsStored - 1;
    unsigned values are masked to their BitsStored low bits (as pydicom and
    dcm2niix do: Siemens stores its physiology log in the high bits).
    RescaleSlope/Intercept are *not* applied here.

    Parameters
    ----------
    path : Path
        The file.
    ds : pydicom.Dataset
        Its header (PixelData read, or deferred by ``dcmread(defer_size=...)``).
    layout : Layout, optional
        The file's checked layout when the caller already has it.

    Returns
    -------
    ndarray of shape (frames, rows, columns)
        Native byte order.

    Raises
    ------
    DicomError
        As :func:`read_layout` and :func:`check_length`; undecodable or unreadable pixel data.
    """
    lay = read_layout(path, ds) if layout is None else layout
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
        raw = pixel_bytes(path, ds)
    except Exception as exc:
        raise DicomError(
            f"{path}: the pixel data cannot be read ({type(exc).__name__}: {exc}); "
            "the file is truncated or corrupt"
        ) from exc
    check_length(path, lay, 0 if raw is None else len(raw))
    assert raw is not None
    arr = np.frombuffer(raw, dtype=dtype, count=rows * cols * n).reshape(n, rows, cols)
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    return fix_bits(arr, lay)


def pixel_bytes(path: Path, ds: Any) -> bytes | None:
    """PixelData bytes; a value deferred by ``dcmread(defer_size=...)`` is read straight from its offset.

    Parameters
    ----------
    path : Path
        The file.
    ds : pydicom.Dataset
        Its header.

    Returns
    -------
    bytes or None
        ``ds.PixelData`` when it was read (or cannot be read from an offset).
    """
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    tell = getattr(elem, "value_tell", None)
    length = getattr(elem, "length", None)
    if elem is not None and getattr(elem, "value", b"") is None and tell and length and length != 0xFFFFFFFF:
        with open(path, "rb") as fh:
            fh.seek(tell)
            return fh.read(length)
    return cast("bytes | None", ds.PixelData)


def deferred_span(ds: Any) -> tuple[int, int] | None:
    """(file offset, length) of PixelData left unread by ``dcmread(defer_size=...)``, else None.

    Parameters
    ----------
    ds : pydicom.Dataset
        A header read with ``defer_size``.

    Returns
    -------
    (int, int) or None
        None when PixelData was read, is absent, or has undefined length.
    """
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    tell = getattr(elem, "value_tell", None)
    length = getattr(elem, "length", None)
    if elem is not None and getattr(elem, "value", b"") is None and tell and length and length != 0xFFFFFFFF:
        return int(tell), int(length)
    return None


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


def rescale_finite(raw: np.ndarray, slopes: np.ndarray, inters: np.ndarray, where: Path) -> np.ndarray:
    """Per-slice RescaleSlope/Intercept applied, refusing values that overflow float32 to infinity.

    Parameters
    ----------
    raw : ndarray of shape (slices, rows, columns)
        Stored values.
    slopes, inters : ndarray of shape (slices,)
        RescaleSlope and RescaleIntercept of each slice.
    where : Path
        The series, named in the error message.

    Returns
    -------
    ndarray
        ``raw`` itself when every slope is 1 and intercept 0; the smallest
        integer dtype holding the result when slopes are 1 and intercepts
        integral; else float32.

    Raises
    ------
    DicomError
        The rescaled values are not finite in float32.
    """
    out = _rescale(raw, slopes, inters)
    if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise DicomError(
            f"{where}: RescaleSlope {np.unique(slopes).tolist()[:4]} / RescaleIntercept "
            f"{np.unique(inters).tolist()[:4]} turn the stored values into infinite numbers "
            "(beyond float32); "
            "the header is corrupt: export the series again"
        )
    return out
