"""The fast paths of DICOM loading give exactly what the general (pydicom) paths give.

* :func:`spinemri.io.dicom.header.read_plain_header` against
  ``pydicom.dcmread(defer_size=...)`` on every file of the shared real-data
  folders (raw element bytes, offsets, converted values, file meta, encoding),
  and ``None`` for files it must leave to pydicom;
* :func:`spinemri.io.dicom.header.hget` against ``Dataset.get``;
* a whole series loaded with the fast paths against the same series loaded
  with them switched off, and BitsStored masking / sign extension on the
  stacked read against values computed here from the stored bits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import shared_path

from spinemri import load_volume
from spinemri.io.dicom import assemble as dicom_volume
from spinemri.io.dicom import header as dicom_mod
from spinemri.io.dicom.header import read_plain_header

DEFER = 8192
_UID_ROOT = "1.2.826.0.1.3680043.8.498."


def _elem_key(ds, tag):
    e = ds._dict[tag]
    if type(e).__name__ == "RawDataElement":
        return ("raw", e.VR, e.length, e.value, e.value_tell, e.is_implicit_VR, e.is_little_endian)
    return ("converted",)


def _assert_same(fast, ref):
    assert list(fast._dict) == list(ref._dict)
    for tag in ref._dict:
        kf, kr = _elem_key(fast, tag), _elem_key(ref, tag)
        if kf[0] == kr[0] == "raw":
            assert kf == kr, tag
        if tag != 0x7FE00010:  # everything but the deferred pixels converts to the same value
            assert fast[tag].value == ref[tag].value, tag
            assert fast[tag].VR == ref[tag].VR, tag
    assert list(fast.file_meta._dict) == list(ref.file_meta._dict)
    for tag in ref.file_meta._dict:
        assert fast.file_meta[tag].value == ref.file_meta[tag].value
    assert fast.preamble == ref.preamble
    assert fast.filename == ref.filename
    assert fast.original_encoding == ref.original_encoding
    assert fast.original_character_set == ref.original_character_set
    assert type(fast) is type(ref)


@pytest.mark.parametrize(
    "folder",
    ["dcm_qa_decubitus_t1_sagittal_HFS", "dcm_qa_sag_gre_sagittal", "dcm_qa_ts_transfer_syntaxes",
     "dcm_qa_nih_ge_axial_epi", "dcm_qa_xa30_t1w_sagittal_enhanced"],
)  # fmt: skip
def test_plain_header_equals_pydicom_on_real_files(folder):
    root = shared_path(folder)
    files = [f for f in sorted(root.rglob("*")) if f.is_file()][:60]
    plain = 0
    for f in files:
        fast = read_plain_header(f, DEFER)
        if fast is None:
            continue
        plain += 1
        _assert_same(fast, pydicom.dcmread(f, defer_size=DEFER))
    if folder == "dcm_qa_decubitus_t1_sagittal_HFS":
        assert plain > 20  # real Siemens classic files take the fast path
    if folder == "dcm_qa_xa30_t1w_sagittal_enhanced":
        assert plain == 0  # undefined-length functional group sequences: pydicom reads them


def _write(path: Path, pixels: np.ndarray, k: int, *, implicit=False, signed=False, bits_stored=16,
           ts=None, extra_after_pixels=False, sequence=None) -> Path:  # fmt: skip
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = f"{_UID_ROOT}7.{k}"
    meta.TransferSyntaxUID = ts or (ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian)
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.SeriesDescription = "T2 sag Müller"  # a non-ASCII text value goes through pydicom
    ds.PatientID = "P1"
    ds.SeriesInstanceUID = _UID_ROOT + "7"
    ds.SeriesNumber = 4
    ds.ImagePositionPatient = [float(k) * 3.3, -20.0, 15.5]
    ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    ds.PixelSpacing = [0.5, 0.75]
    ds.SliceThickness = "3.3"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleSlope = "1"
    ds.RescaleIntercept = "0"
    if sequence:
        item = Dataset()
        item.ReferencedSOPInstanceUID = "1.2.3"
        ds.ReferencedImageSequence = Sequence([item])
        ds["ReferencedImageSequence"].is_undefined_length = sequence == "undefined"
    ds.PixelData = np.ascontiguousarray(pixels.astype("<i2" if signed else "<u2")).tobytes()
    if extra_after_pixels:
        ds.DataSetTrailingPadding = b"\0\0"
    ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


def test_plain_header_equals_pydicom_on_written_files(tmp_path, rng):
    px = rng.integers(0, 4000, (6, 5), dtype=np.uint16)
    for kw in ({}, {"implicit": True}, {"signed": True}, {"sequence": "defined"}):
        f = _write(tmp_path / "a.dcm", px, 0, **kw)
        fast = read_plain_header(f, DEFER)
        assert fast is not None, kw
        _assert_same(fast, pydicom.dcmread(f, defer_size=DEFER))
    # a value longer than defer_size is deferred exactly as pydicom defers it
    f = _write(tmp_path / "b.dcm", rng.integers(0, 4000, (64, 128), dtype=np.uint16), 0)
    fast = read_plain_header(f, 1000)
    assert fast is not None and fast.get_item(0x7FE00010, keep_deferred=True).value is None
    _assert_same(fast, pydicom.dcmread(f, defer_size=1000))
    np.testing.assert_array_equal(fast.pixel_array, pydicom.dcmread(f).pixel_array)  # deferred read works


def test_files_that_are_not_plain_are_left_to_pydicom(tmp_path, rng):
    from pydicom.uid import ExplicitVRBigEndian

    px = rng.integers(0, 4000, (6, 5), dtype=np.uint16)
    assert read_plain_header(_write(tmp_path / "seq.dcm", px, 0, sequence="undefined"), DEFER) is None
    assert read_plain_header(_write(tmp_path / "pad.dcm", px, 0, extra_after_pixels=True), DEFER) is None
    f = _write(tmp_path / "ok.dcm", px, 0)
    raw = f.read_bytes()
    (tmp_path / "trunc.dcm").write_bytes(raw[:-7])  # pixel data cut short
    assert read_plain_header(tmp_path / "trunc.dcm", DEFER) is None
    (tmp_path / "nomarker.dcm").write_bytes(raw[:128] + b"XXXX" + raw[132:])
    assert read_plain_header(tmp_path / "nomarker.dcm", DEFER) is None
    badvr = bytearray(raw)
    i = raw.index(b"CS", 140)  # the first explicit VR of the data set
    badvr[i : i + 2] = b"ZZ"
    (tmp_path / "badvr.dcm").write_bytes(bytes(badvr))
    assert read_plain_header(tmp_path / "badvr.dcm", DEFER) is None
    big = tmp_path / "big.dcm"
    ds = pydicom.dcmread(f)
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    pydicom.dcmwrite(big, ds, implicit_vr=False, little_endian=False, force_encoding=True)
    assert read_plain_header(big, DEFER) is None
    assert read_plain_header(tmp_path / "missing.dcm", DEFER) is None


def test_hget_equals_dataset_get(tmp_path, rng):
    f = _write(tmp_path / "a.dcm", rng.integers(0, 4000, (6, 5), dtype=np.uint16), 2)
    keys = ["SeriesNumber", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
            "Columns", "BitsStored", "SliceThickness", "RescaleSlope", "SeriesInstanceUID", "Modality",
            "SeriesDescription", "ImageType", "EchoTime"]  # fmt: skip
    for implicit in (False, True):
        f = _write(tmp_path / "a.dcm", rng.integers(0, 4000, (6, 5), dtype=np.uint16), 2, implicit=implicit)
        fast, ref = pydicom.dcmread(f), pydicom.dcmread(f)
        for key in keys:
            got, want = dicom_volume.hget(fast, key, "absent"), ref.get(key, "absent")
            if isinstance(want, (list, tuple)) or type(want).__name__ == "MultiValue":
                assert [type(x)(y) for x, y in zip(want, got, strict=True)] == list(want), key
            else:
                assert got == want, key


def _series(folder: Path, stack: np.ndarray, **kw) -> Path:
    folder.mkdir()
    for k in range(stack.shape[0]):
        _write(folder / f"im{k:03d}.dcm", stack[k], k, **kw)
    return folder


@pytest.mark.parametrize("implicit", [False, True])
def test_fast_and_general_paths_load_the_same_volume(tmp_path, rng, monkeypatch, implicit):
    calls = []
    stacked = dicom_volume._read_native_stack

    def spy(*a):
        calls.append(stacked(*a))
        return calls[-1]

    monkeypatch.setattr(dicom_volume, "_read_native_stack", spy)
    # >= 8 files (threaded reads) of > 8192 bytes of pixels (deferred by the header scan: the stacked read)
    stack = rng.integers(0, 3000, (12, 70, 64), dtype=np.uint16)
    folder = _series(tmp_path / "s", stack[::-1], implicit=implicit)  # files in reverse slice order
    fast = load_volume(folder)
    assert len(calls) == 1 and calls[0] is not None  # the stacked read was taken
    monkeypatch.setattr(dicom_mod, "read_plain_header", lambda path, defer: None)
    monkeypatch.setattr(dicom_volume, "_read_native_stack", lambda *a: None)
    general = load_volume(folder)
    np.testing.assert_array_equal(fast.data, general.data)
    np.testing.assert_array_equal(fast.affine, general.affine)
    assert fast.meta == general.meta
    assert fast.data.dtype == general.data.dtype == np.uint16
    # (i, j, k) = (column, row, slice along the normal). File k lies at x = 3.3 k mm and the normal
    # (row direction x column direction) = (0, 1, 0) x (0, 0, -1) = (-1, 0, 0): slice s is file 11 - s,
    # which holds stack[::-1][11 - s] = stack[s]
    np.testing.assert_array_equal(np.asarray(fast.data), stack.transpose(2, 1, 0))


def test_stacked_read_masks_and_sign_extends_stored_bits(tmp_path, rng):
    shape = (10, 70, 64)  # pixels > 8192 bytes per file: the stacked read
    low = rng.integers(0, 4096, shape, dtype=np.uint16)
    high = rng.integers(1, 16, shape, dtype=np.uint16) << 12  # junk above BitsStored 12
    vol = load_volume(_series(tmp_path / "u", low | high, bits_stored=12))
    # slices run along the normal (-x): file 9 first (see the test above)
    np.testing.assert_array_equal(np.asarray(vol.data), low[::-1].transpose(2, 1, 0))
    # signed 12-bit values -2048..2047 stored two's complement in 16 bits with junk in the top 4 bits
    values = rng.integers(-2048, 2048, shape).astype(np.int16)
    stored = (values.view(np.uint16) & 0x0FFF) | (rng.integers(0, 16, values.shape, dtype=np.uint16) << 12)
    vol = load_volume(_series(tmp_path / "s", stored.view(np.int16), signed=True, bits_stored=12))
    np.testing.assert_array_equal(np.asarray(vol.data), values[::-1].transpose(2, 1, 0))
