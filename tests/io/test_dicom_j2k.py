"""JPEG 2000 series decoded on threads (imagecodecs) equal pydicom's decode and the uncompressed source."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pydicom
import pytest

import spinemri
from spinemri.errors import DicomError
from spinemri.io.dicom import j2k as dicom_j2k
from spinemri.io.dicom.write import write_dicom_series

pytest.importorskip("imagecodecs", reason="imagecodecs (the codecs extra) is not installed")
pytest.importorskip("openjpeg", reason="pylibjpeg-openjpeg (the codecs extra) is not installed")


def _series(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """(native folder, JPEG 2000 folder) of a small phantom stored as ``kind``."""
    from pydicom.uid import JPEG2000Lossless

    img, _, _ = spinemri.make_phantom(seed=4, rows=64, cols=48, n_slices=5, first_level="T10")
    native, j2k = tmp_path / "native", tmp_path / "j2k"
    write_dicom_series(img, native, patient_id="J2K", uid_seed=f"j2k:{kind}")
    j2k.mkdir()
    for f in sorted(native.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        px = ds.pixel_array.astype(np.int64)
        if kind == "int16":  # CT-like: negative values, signed storage
            px = px - 1500
            ds.PixelRepresentation = 1
            ds.PixelData = px.astype("<i2").tobytes()
        elif kind == "u12":  # 12 bits stored in 16
            px = np.clip(px, 0, 4095)
            ds.BitsStored, ds.HighBit = 12, 11
            ds.PixelData = px.astype("<u2").tobytes()
        elif kind == "u8":
            px = np.clip(px // 8, 0, 255)
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
            ds.PixelData = px.astype("u1").tobytes()
        ds.save_as(f, enforce_file_format=True)  # the native reference in the same storage
        ds = pydicom.dcmread(f)
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
        ds.save_as(j2k / f.name, enforce_file_format=True)
    return native, j2k


@pytest.mark.parametrize("kind", ["u16", "u12", "int16", "u8"])
def test_threaded_jpeg2000_equals_pydicom_and_the_uncompressed_series(tmp_path: Path, kind: str) -> None:
    native, j2k = _series(tmp_path, kind)
    calls = []
    real = dicom_j2k.decode_series

    def spy(*args: object, **kw: object) -> object:
        out = real(*args, **kw)  # type: ignore[arg-type]
        calls.append(out is not None)
        return out

    with mock.patch.object(dicom_j2k, "decode_series", spy):
        fast = spinemri.load_volume(j2k)
    assert calls == [True]  # the threaded path decoded it
    with mock.patch.object(dicom_j2k, "available", lambda: False):
        slow = spinemri.load_volume(j2k)
    ref = spinemri.load_volume(native)
    assert fast.data.dtype == slow.data.dtype == ref.data.dtype
    np.testing.assert_array_equal(fast.data, slow.data)
    np.testing.assert_array_equal(fast.data, ref.data)
    np.testing.assert_array_equal(fast.affine, ref.affine)
    if kind == "int16":
        assert fast.data.min() < 0


def test_a_broken_codestream_falls_back_to_pydicom_and_names_the_file(tmp_path: Path) -> None:
    _, j2k = _series(tmp_path, "u16")
    victim = sorted(j2k.glob("*.dcm"))[2]
    ds = pydicom.dcmread(victim)
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = pydicom.encaps.encapsulate([frame[: len(frame) // 3]])  # truncated codestream
    ds.save_as(victim, enforce_file_format=True)
    with pytest.raises(DicomError, match=victim.name):
        spinemri.load_volume(j2k)


def test_decode_series_refuses_an_unexpected_dtype(tmp_path: Path) -> None:
    _, j2k = _series(tmp_path, "u16")
    files = [(f, pydicom.dcmread(f), 1) for f in sorted(j2k.glob("*.dcm"))]

    def fragments(path: Path, ds: object, n: int) -> list[bytes]:
        return list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=n))  # type: ignore[attr-defined]

    ok = dicom_j2k.decode_series(files, 64, 48, np.dtype(np.uint16), fragments)
    assert ok is not None and len(ok) == len(files)
    # what pydicom would return differs from the codestream: not this path's call to make
    assert dicom_j2k.decode_series(files, 64, 48, np.dtype(np.int16), fragments) is None
    assert dicom_j2k.decode_series(files, 48, 64, np.dtype(np.uint16), fragments) is None
