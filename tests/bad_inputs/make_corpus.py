"""Generate the bad-input corpus from code: one builder function per kind of odd input.

Every builder takes an empty folder, writes its input(s) there and returns a
:class:`BadInput`: the call to make, the error class it must raise (or ``None``
when the input must be *read correctly*, checked by ``check``), the file or
folder the message must name and a message excerpt (listed in
docs/robustness.md). No binary file is committed: everything is written here.

Run ``python tests/bad_inputs/make_corpus.py OUT_DIR`` to write the whole
corpus to ``OUT_DIR/<kind>/`` for a look by hand.
"""

from __future__ import annotations

import gzip
import os
import stat
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from spinemri import load_mask, load_volume
from spinemri.errors import DicomError, GeometryError, InputError, LabelSchemeError, LinkError, SpinemriError
from spinemri.io.clinical import read_clinical
from spinemri.io.discover import discover_cases
from spinemri.io.nifti import save_nifti
from spinemri.scheme_choice import resolve_scheme_for_mask
from spinemri.linking import link
from spinemri.volume import Volume

#: ImageOrientationPatient of a sagittal slice (rows along A->P... as the scanner writes it), LPS.
SAG = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
UID_ROOT = "1.2.826.0.1.3680043.8.498."
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass(frozen=True)
class BadInput:
    """One corpus entry.

    Attributes
    ----------
    call : callable
        What a user would run on the input.
    named : Path
        The file or folder the error message must contain.
    error : SpinemriError subclass or None
        The exact class raised; ``None`` when the input must be read correctly.
    excerpt : str
        A fragment of the expected message (documented in docs/robustness.md).
    check : callable, optional
        For accepted inputs: asserts the result of ``call`` is right.
    max_alloc_mb : float, optional
        Peak Python/numpy allocation allowed during ``call`` (tracemalloc), MB.
    precheck : callable, optional
        Confirms the input really is what it claims (e.g. really unreadable).
    """

    call: Callable[[], Any]
    named: Path
    error: type[SpinemriError] | None
    excerpt: str
    check: Callable[[Any], None] | None = None
    max_alloc_mb: float | None = None
    precheck: Callable[[], None] | None = None


# --------------------------------------------------------------------------- writers


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    ipp: tuple[float, float, float] = (0.0, 0.0, 0.0),
    iop: tuple[float, ...] = SAG,
    pixel_spacing: tuple[float, float] = (0.5, 0.8),
    instance: int = 1,
    series_uid: str = UID_ROOT + "1",
    edit: Callable[[Any], None] | None = None,
    transfer_syntax: str | None = None,
) -> Path:
    """One classic MR image, Explicit VR Little Endian, uint16; ``edit(ds)`` mutates it before saving.

    ``transfer_syntax`` replaces the *declared* TransferSyntaxUID in the file meta
    after encoding, so the data stay Explicit VR Little Endian whatever it says.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    sop = f"{UID_ROOT}{zlib.crc32(f'{path.name}/{instance}/{series_uid}'.encode())}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_STORAGE
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MR_STORAGE
    ds.SOPInstanceUID = sop
    ds.Modality = "MR"
    ds.PatientID = "BAD-001"
    ds.StudyInstanceUID = UID_ROOT + "9"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.SeriesDescription = "t2_tse_stir_sag"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(x) for x in ipp]
    ds.ImageOrientationPatient = [float(x) for x in iop]
    ds.PixelSpacing = [float(x) for x in pixel_spacing]
    ds.SliceThickness = 3.0
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels.astype("<u2")).tobytes()
    if edit is not None:
        edit(ds)
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    if transfer_syntax is not None:
        _patch_transfer_syntax(path, transfer_syntax)
    return path


def _patch_transfer_syntax(path: Path, uid: str) -> None:
    """Rewrite the declared TransferSyntaxUID (0002,0010) of a saved file, leaving the data set as it is."""
    import pydicom
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    raw = path.read_bytes()
    old = pydicom.dcmread(path, stop_before_pixels=True)
    fm = old.file_meta
    old_len = 132 + 12 + int(fm.FileMetaInformationGroupLength)
    fm.TransferSyntaxUID = uid
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, fm, enforce_standard=True)
    path.write_bytes(raw[:128] + b"DICM" + buf.getvalue() + raw[old_len:])


def write_series(
    folder: Path,
    n: int = 4,
    *,
    rows: int = 6,
    cols: int = 4,
    step: tuple[float, float, float] = (-2.5, 0.0, 0.0),
    origin: tuple[float, float, float] = (-10.0, 20.0, 30.0),
    seed: int = 0,
) -> tuple[list[Path], list[np.ndarray]]:
    """``n`` parallel sagittal slices in ``folder``; the paths and pixel arrays in position order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths, arrays = [], []
    for k in range(n):
        arr = rng.integers(0, 4000, size=(rows, cols)).astype(np.uint16)
        ipp = tuple(float(o + k * s) for o, s in zip(origin, step, strict=True))
        paths.append(write_dicom(folder / f"im{k:03d}.dcm", arr, ipp=ipp, instance=k + 1))  # type: ignore[arg-type]
        arrays.append(arr)
    return paths, arrays


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """A NIfTI-1 file with ``data`` as stored (no scaling) and ``affine`` (default identity)."""
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine, dtype=data.dtype), path)
    return path


def nifti_header_bytes(shape: tuple[int, ...], dtype: Any = np.int16) -> bytes:
    """A 352-byte NIfTI-1 header (348 + 4-byte extension flag) declaring ``shape`` and ``dtype``."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr["vox_offset"] = 352
    return bytes(hdr.binaryblock) + b"\0" * 4


def _one(
    call: Callable[[], Any], named: Path, error: type[SpinemriError], excerpt: str, **kw: Any
) -> BadInput:
    return BadInput(call=call, named=named, error=error, excerpt=excerpt, **kw)


# --------------------------------------------------------------------------- DICOM


def dicom_truncated_file(tmp: Path) -> BadInput:
    paths, _ = write_series(tmp / "s", rows=32, cols=32)
    paths[2].write_bytes(paths[2].read_bytes()[:-700])
    return _one(lambda: load_volume(tmp / "s"), paths[2], DicomError, "truncated")


def dicom_truncated_header(tmp: Path) -> BadInput:
    paths, _ = write_series(tmp / "s")
    paths[1].write_bytes(paths[1].read_bytes()[:200])
    return _one(lambda: load_volume(tmp / "s"), paths[1], DicomError, "truncated or corrupt")


def dicom_no_pixel_data(tmp: Path) -> BadInput:
    paths, _ = write_series(tmp / "s")
    write_dicom(
        paths[3],
        np.zeros((6, 4), np.uint16),
        ipp=(-17.5, 20, 30),
        instance=4,
        edit=lambda ds: delattr(ds, "PixelData"),
    )
    return _one(lambda: load_volume(tmp / "s"), paths[3], DicomError, "no PixelData")


def dicom_declared_compressed_syntax(tmp: Path) -> BadInput:
    """The file meta says JPEG Lossless but the pixel data are raw little-endian words."""
    paths, _ = write_series(tmp / "s")
    _patch_transfer_syntax(paths[0], "1.2.840.10008.1.2.4.70")
    return _one(lambda: load_volume(tmp / "s"), paths[0], DicomError, "cannot be decoded")


def dicom_declared_big_endian(tmp: Path) -> BadInput:
    """The file meta says Explicit VR Big Endian but the data set is little-endian."""
    paths, _ = write_series(tmp / "s")
    _patch_transfer_syntax(paths[1], "1.2.840.10008.1.2.2")
    return _one(lambda: load_volume(tmp / "s"), paths[1], DicomError, "truncated or corrupt")


def dicom_rows_larger_than_data(tmp: Path) -> BadInput:
    """Every file says 12 rows but holds 6 x 4 pixels."""
    folder = tmp / "s"
    folder.mkdir()
    paths = [
        write_dicom(
            folder / f"im{k}.dcm",
            np.zeros((6, 4), np.uint16),
            ipp=(-2.5 * k, 0, 0),
            instance=k + 1,
            edit=lambda ds: setattr(ds, "Rows", 12),
        )
        for k in range(3)
    ]
    return _one(lambda: load_volume(folder), paths[0], DicomError, "PixelData holds")


def dicom_columns_smaller_than_data(tmp: Path) -> BadInput:
    """Columns says 2 but each image holds 6 x 4 pixels: reading 6 x 2 would scramble the image."""
    folder = tmp / "s"
    folder.mkdir()
    paths = [
        write_dicom(
            folder / f"im{k}.dcm",
            np.arange(24, dtype=np.uint16).reshape(6, 4),
            ipp=(-2.5 * k, 0, 0),
            instance=k + 1,
            edit=lambda ds: setattr(ds, "Columns", 2),
        )
        for k in range(3)
    ]
    return _one(lambda: load_volume(folder), paths[0], DicomError, "PixelData holds")


def dicom_duplicate_positions(tmp: Path) -> BadInput:
    write_series(tmp / "s", n=5)
    write_dicom(tmp / "s" / "dup.dcm", np.ones((6, 4), np.uint16), ipp=(-12.5, 20.0, 30.0), instance=99)
    return _one(lambda: load_volume(tmp / "s"), tmp / "s", DicomError, "share the slice position")


def dicom_missing_slice(tmp: Path) -> BadInput:
    paths, _ = write_series(tmp / "s", n=6)
    paths[3].unlink()
    return _one(lambda: load_volume(tmp / "s"), tmp / "s", DicomError, "A slice is missing")


def dicom_mixed_orientations(tmp: Path) -> BadInput:
    paths, _ = write_series(tmp / "s", n=5)
    c, s = np.cos(np.deg2rad(5)), np.sin(np.deg2rad(5))
    write_dicom(
        paths[2], np.zeros((6, 4), np.uint16), ipp=(-15.0, 20.0, 30.0), iop=(0, c, s, 0, s, -c), instance=3
    )
    return _one(lambda: load_volume(tmp / "s"), tmp / "s", DicomError, "different orientations")


def _odd_middle_slice(tmp: Path, **header: Any) -> list[Path]:
    """A 3-slice series whose middle file is rewritten with one odd header value (``write_dicom`` keywords)."""
    paths, _ = write_series(tmp / "s", n=3)
    write_dicom(paths[1], np.zeros((6, 4), np.uint16), ipp=(-12.5, 20, 30), instance=2, **header)
    return paths


def dicom_zero_pixel_spacing(tmp: Path) -> BadInput:
    paths = _odd_middle_slice(tmp, pixel_spacing=(0.0, 0.8))
    return _one(lambda: load_volume(tmp / "s"), paths[1], DicomError, "must be positive")


def dicom_negative_pixel_spacing(tmp: Path) -> BadInput:
    paths = _odd_middle_slice(tmp, pixel_spacing=(0.5, -0.8))
    return _one(lambda: load_volume(tmp / "s"), paths[1], DicomError, "must be positive")


def dicom_huge_pixel_spacing(tmp: Path) -> BadInput:
    """A PixelSpacing of 1.3e154 mm (found by the slow DICOM fuzz test: the affine overflowed to singular)."""
    paths = _odd_middle_slice(tmp, pixel_spacing=(1.0, 1.3407807929942597e154))
    return _one(lambda: load_volume(tmp / "s"), paths[1], DicomError, "is not a pixel size")


def dicom_all_slices_one_position(tmp: Path) -> BadInput:
    """Zero slice spacing: every image of the series at the same ImagePositionPatient."""
    paths, _ = write_series(tmp / "s", n=3, step=(0.0, 0.0, 0.0))
    return _one(lambda: load_volume(tmp / "s"), tmp / "s", DicomError, "3 images at 1 slice positions")


def dicom_nan_position(tmp: Path) -> BadInput:
    paths, _ = write_series(tmp / "s", n=3)
    write_dicom(paths[1], np.zeros((6, 4), np.uint16), ipp=(float("nan"), 20, 30), instance=2)
    return _one(lambda: load_volume(tmp / "s"), paths[1], DicomError, "ImagePositionPatient")


def dicom_orientation_not_orthogonal(tmp: Path) -> BadInput:
    folder = tmp / "s"
    folder.mkdir()
    paths = [
        write_dicom(
            folder / f"im{k}.dcm",
            np.zeros((6, 4), np.uint16),
            ipp=(-2.5 * k, 0, 0),
            iop=(0, 1, 0, 0, 1, 0),
            instance=k + 1,
        )
        for k in range(3)
    ]
    return _one(lambda: load_volume(folder), paths[0], DicomError, "not two orthogonal unit vectors")


def dicom_bits_allocated_12(tmp: Path) -> BadInput:
    paths, _ = write_series(tmp / "s", n=3)

    def edit(ds: Any) -> None:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 12, 12, 11

    write_dicom(paths[0], np.zeros((6, 4), np.uint16), ipp=(-10.0, 20, 30), instance=1, edit=edit)
    return _one(lambda: load_volume(tmp / "s"), paths[0], DicomError, "BitsAllocated 12")


def dicom_rescale_overflow(tmp: Path) -> BadInput:
    """RescaleSlope 1e38: stored values x slope overflow float32 to infinity."""
    folder = tmp / "s"
    folder.mkdir()
    for k in range(3):
        write_dicom(
            folder / f"im{k}.dcm",
            np.full((6, 4), 1000, np.uint16),
            ipp=(-2.5 * k, 0, 0),
            instance=k + 1,
            edit=lambda ds: setattr(ds, "RescaleSlope", "1e38"),
        )
    return _one(lambda: load_volume(folder), folder, DicomError, "infinite")


def dicom_frames_beyond_data(tmp: Path) -> BadInput:
    """NumberOfFrames 3 in files holding one frame each."""
    paths = _odd_middle_slice(tmp, edit=lambda ds: setattr(ds, "NumberOfFrames", 3))
    return _one(lambda: load_volume(tmp / "s"), paths[1], DicomError, "truncated")


def dicom_colour_image(tmp: Path) -> BadInput:
    paths, _ = write_series(tmp / "s", n=3)

    def edit(ds: Any) -> None:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0

    write_dicom(paths[0], np.zeros((6, 4), np.uint16), ipp=(-10.0, 20, 30), instance=1, edit=edit)
    return _one(lambda: load_volume(tmp / "s"), paths[0], DicomError, "samples per pixel")


def dicom_series_copied_into_subfolder(tmp: Path) -> BadInput:
    import shutil

    write_series(tmp / "s", n=3)
    shutil.copytree(tmp / "s", tmp / "s" / "backup")  # the same files twice: not a 4-D series
    return _one(lambda: load_volume(tmp / "s"), tmp / "s", DicomError, "the same images twice")


# --------------------------------------------------------------------------- NIfTI


def nifti_corrupt_gzip(tmp: Path) -> BadInput:
    p = tmp / "corrupt.nii.gz"
    good = gzip.compress(nifti_header_bytes((4, 4, 4)) + b"\0" * 128)
    p.write_bytes(good[:20] + bytes(range(256)) * 2)
    return _one(lambda: load_volume(p), p, InputError, "not a readable NIfTI")


def nifti_header_larger_than_data(tmp: Path) -> BadInput:
    p = tmp / "short.nii"
    p.write_bytes(nifti_header_bytes((10, 10, 10)) + b"\1\0" * 100)
    return _one(lambda: load_volume(p), p, InputError, "truncated")


def nifti_header_larger_than_data_gz(tmp: Path) -> BadInput:
    p = tmp / "short.nii.gz"
    p.write_bytes(gzip.compress(nifti_header_bytes((10, 10, 10)) + b"\1\0" * 100))
    return _one(lambda: load_volume(p), p, InputError, "cannot be read")


def nifti_2d(tmp: Path) -> BadInput:
    p = write_nifti(tmp / "slice.nii.gz", np.ones((8, 8), np.int16))
    return _one(lambda: load_volume(p), p, InputError, "2-D")


def nifti_5d(tmp: Path) -> BadInput:
    p = write_nifti(tmp / "multi.nii.gz", np.ones((3, 3, 3, 1, 2), np.int16))
    return _one(lambda: load_volume(p), p, InputError, "5-D")


def nifti_billions_of_voxels(tmp: Path) -> BadInput:
    p = tmp / "huge.nii"
    p.write_bytes(nifti_header_bytes((3000, 3000, 3000)) + b"\0" * 64)
    return _one(lambda: load_volume(p), p, InputError, "voxels, more than", max_alloc_mb=32)


def nifti_gigabytes_in_tiny_gzip(tmp: Path) -> BadInput:
    p = tmp / "claims_2gb.nii.gz"
    p.write_bytes(gzip.compress(nifti_header_bytes((1000, 1000, 1000)) + b"\0" * 64))
    return _one(lambda: load_volume(p), p, InputError, "compressed file holds less", max_alloc_mb=64)


def nifti_nan_voxels(tmp: Path) -> BadInput:
    data = np.ones((6, 6, 6), np.float32)
    data[2, 3, 4] = np.nan
    p = write_nifti(tmp / "nan_image.nii.gz", data)
    return _one(lambda: load_volume(p), p, InputError, "1 NaN")


def nifti_inf_voxels(tmp: Path) -> BadInput:
    data = np.ones((6, 6, 6), np.float64)
    data[0, 0, 0] = np.inf
    data[1, 0, 0] = -np.inf
    p = write_nifti(tmp / "inf_image.nii", data)
    return _one(lambda: load_volume(p), p, InputError, "2 infinite")


def nifti_zero_pixdim(tmp: Path) -> BadInput:
    """No qform, no sform, pixdim 0: the fall-back affine has a zero voxel size."""
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.int16), None)
    img.header.set_zooms((0.0, 1.0, 1.0))
    img.header["qform_code"] = 0
    img.header["sform_code"] = 0
    p = tmp / "zero_pixdim.nii.gz"
    nib.save(img, p)
    return _one(lambda: load_volume(p), p, GeometryError, "voxel size is unknown")


def nifti_nan_sform(tmp: Path) -> BadInput:
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.int16), np.eye(4))
    img.header["srow_x"] = [np.nan, 0, 0, 0]
    img.header["sform_code"] = 1
    img.header["vox_offset"] = 352
    p = tmp / "nan_sform.nii"
    p.write_bytes(img.header.binaryblock + b"\0" * 4 + np.ones(64, "<i2").tobytes())
    return _one(lambda: load_volume(p), p, GeometryError, "NaN or infinite")


def nifti_vox_offset_in_header(tmp: Path) -> BadInput:
    """vox_offset 0 in a single-file .nii: the 'voxels' would be the header's own bytes."""
    p = tmp / "offset0.nii"
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((4, 4, 4))
    hdr.set_data_dtype(np.int16)
    hdr["vox_offset"] = 0
    p.write_bytes(bytes(hdr.binaryblock) + b"\0" * 4 + np.ones(64, "<i2").tobytes())
    return _one(lambda: load_volume(p), p, InputError, "points inside the 352-byte header")


# --------------------------------------------------------------------------- masks


def nifti_complex_data(tmp: Path) -> BadInput:
    p = tmp / "complex.nii.gz"
    nib.save(nib.Nifti1Image((np.ones((4, 4, 3)) + 1j).astype(np.complex64), np.eye(4)), str(p))
    return _one(lambda: load_volume(p), p, InputError, "complex data type complex64")


def _mask(tmp: Path, name: str, data: np.ndarray) -> Path:
    return write_nifti(tmp / name, data)


def mask_all_zero(tmp: Path) -> BadInput:
    p = _mask(tmp, "empty_mask.nii.gz", np.zeros((4, 4, 4), np.uint8))
    return _one(
        lambda: resolve_scheme_for_mask("auto", load_mask(p)),
        p,
        LabelSchemeError,
        "no label other than background",
    )


def mask_only_unknown_labels(tmp: Path) -> BadInput:
    data = np.zeros((4, 4, 4), np.uint8)
    data[0], data[3] = 240, 250
    p = _mask(tmp, "odd_labels_mask.nii.gz", data)
    return _one(
        lambda: resolve_scheme_for_mask("auto", load_mask(p)), p, LabelSchemeError, "fit no built-in scheme"
    )


def mask_non_integral_floats(tmp: Path) -> BadInput:
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 1, 1] = 0.7
    p = _mask(tmp, "probability_mask.nii.gz", data)
    return _one(lambda: resolve_scheme_for_mask("auto", load_mask(p)), p, InputError, "non-integer values")


def mask_almost_integer_floats(tmp: Path) -> BadInput:
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 1, 1], data[2, 2, 2] = 22.0, 21.99998  # a resampled label map: the message shows the value
    p = _mask(tmp, "resampled_mask.nii.gz", data)
    return _one(lambda: load_mask(p), p, InputError, "e.g. 21.99998)")


def mask_negative_labels(tmp: Path) -> BadInput:
    data = np.zeros((4, 4, 4), np.int16)
    data[2, 2, 2] = -1
    p = _mask(tmp, "negative_mask.nii.gz", data)
    return _one(lambda: resolve_scheme_for_mask("auto", load_mask(p)), p, InputError, "negative labels")


def mask_nan_values(tmp: Path) -> BadInput:
    data = np.zeros((4, 4, 4), np.float32)
    data[0, 0, 0] = np.nan
    p = _mask(tmp, "nan_mask.nii.gz", data)
    return _one(lambda: load_mask(p), p, InputError, "1 NaN")


def mask_on_another_grid(tmp: Path) -> BadInput:
    image = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4))
    p = write_nifti(
        tmp / "other_grid_mask.nii.gz", np.ones((4, 4, 4), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0])
    )
    return _one(lambda: load_mask(p, like=image), p, GeometryError, "not on the image grid")


# --------------------------------------------------------------------------- tables

_PATIENTS = pd.DataFrame({"patient_id": ["SMR-001", "SMR-002", "SMR-003"], "n_levels": [17, 17, 16]})


def _linked_vas(path: Path, **link_options: Any) -> tuple[dict[str, float], Any]:
    linked, report = link(_PATIENTS, read_clinical(path), **link_options)
    return dict(zip(linked["patient_id"], linked["vas"], strict=True)), (linked, report)


def table_no_id_column(tmp: Path) -> BadInput:
    p = tmp / "clinical.csv"
    p.write_text("subject,vas\nSMR-001,3\nSMR-002,7\n")
    return _one(lambda: read_clinical(p), p, LinkError, "no column 'patient_id'")


def table_empty(tmp: Path) -> BadInput:
    p = tmp / "clinical.csv"
    p.write_bytes(b"\n \n")
    return _one(lambda: read_clinical(p), p, InputError, "is empty")


def table_corrupt_xlsx(tmp: Path) -> BadInput:
    p = tmp / "clinical.xlsx"
    p.write_bytes(b"PK\x03\x04" + bytes(range(200)))
    return _one(lambda: read_clinical(p), p, InputError, "Excel workbook")


def table_non_numeric_vas(tmp: Path) -> BadInput:
    p = tmp / "clinical.csv"
    p.write_text("patient_id,vas\nSMR-001,3\nSMR-002,severe\nSMR-003,7.5\n")

    def check(result: Any) -> None:
        vas, (_, report) = result
        assert vas["SMR-001"] == 3.0 and vas["SMR-003"] == 7.5
        assert np.isnan(vas["SMR-002"])
        rows = report.issues[report.issues["kind"] == "invalid_vas"]
        assert list(rows["clinical_row"]) == [2] and "severe" in rows["detail"].iloc[0]

    return BadInput(lambda: _linked_vas(p), p, None, "invalid_vas", check=check)


def _linked_three(expected: dict[str, float]) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        vas, (linked, report) = result
        assert vas == expected, vas
        assert report.count("exact") == len(expected)
        assert report.count("invalid_vas") == 0 and report.count("unmatched_clinical") == 0

    return check


def table_utf8_bom(tmp: Path) -> BadInput:
    p = tmp / "clinical.csv"
    p.write_bytes(b"\xef\xbb\xbfpatient_id,vas\r\nSMR-001,3\r\nSMR-002,0\r\nSMR-003,10\r\n")
    return BadInput(
        lambda: _linked_vas(p),
        p,
        None,
        "",
        check=_linked_three({"SMR-001": 3.0, "SMR-002": 0.0, "SMR-003": 10.0}),
    )


def table_latin1(tmp: Path) -> BadInput:
    p = tmp / "clinical.csv"
    p.write_bytes(
        "patient_id,vas,Bemerkung\nSMR-001,4,Rückenschmerz\nSMR-002,6,névralgie\nSMR-003,1,—\n".replace(
            "—", "-"
        ).encode("latin-1")
    )

    def check(result: Any) -> None:
        _linked_three({"SMR-001": 4.0, "SMR-002": 6.0, "SMR-003": 1.0})(result)
        linked = result[1][0]
        assert list(linked["Bemerkung"]) == ["Rückenschmerz", "névralgie", "-"]

    return BadInput(lambda: _linked_vas(p), p, None, "", check=check)


def table_semicolon_separated(tmp: Path) -> BadInput:
    p = tmp / "clinical.csv"
    p.write_text("patient_id;vas;site\nSMR-001;2;Basel\nSMR-002;8.5;Lyon\nSMR-003;5;Graz\n")
    return BadInput(
        lambda: _linked_vas(p),
        p,
        None,
        "",
        check=_linked_three({"SMR-001": 2.0, "SMR-002": 8.5, "SMR-003": 5.0}),
    )


# --------------------------------------------------------------------------- detached headers


_NHDR = "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 5 3\nspacings: 1 1 1\nencoding: raw\nendian: little\n"
_MHD = (
    "ObjectType = Image\nNDims = 3\nDimSize = 4 5 3\nElementType = MET_SHORT\nElementSpacing = 1 1 1\n"
    "ElementByteOrderMSB = False\n"
)
_VOXELS = np.arange(60, dtype="<i2")


def _fifo(path: Path) -> Callable[[], None]:
    os.mkfifo(path)

    def precheck() -> None:
        assert stat.S_ISFIFO(path.stat().st_mode), f"{path} is not a FIFO"

    return precheck


def header_nhdr_data_file_fifo(tmp: Path) -> BadInput:
    """A detached NRRD header whose data file is a named pipe: SimpleITK blocked forever."""
    data = tmp / "image.raw"
    pre = _fifo(data)
    (tmp / "image.nhdr").write_text(_NHDR + "data file: image.raw\n")
    return _one(lambda: load_volume(tmp / "image.nhdr"), data, InputError, "not a regular file", precheck=pre)


def header_nhdr_list_fifo(tmp: Path) -> BadInput:
    """``data file: LIST``: one slice file of three is a named pipe."""
    for k in (0, 2):
        (tmp / f"s{k}.raw").write_bytes(_VOXELS[:20].tobytes())
    pre = _fifo(tmp / "s1.raw")
    (tmp / "mask.nhdr").write_text(_NHDR + "data file: LIST 2\ns0.raw\ns1.raw\ns2.raw\n")
    return _one(
        lambda: load_mask(tmp / "mask.nhdr"), tmp / "s1.raw", InputError, "not a regular file", precheck=pre
    )


def header_nhdr_printf_fifo(tmp: Path) -> BadInput:
    """``data file: slice%02d.raw 1 3 1 2`` (printf form): slice02.raw is a named pipe."""
    for k in (1, 3):
        (tmp / f"slice{k:02d}.raw").write_bytes(_VOXELS[:20].tobytes())
    pre = _fifo(tmp / "slice02.raw")
    (tmp / "image.nhdr").write_text(_NHDR + "data file: slice%02d.raw 1 3 1 2\n")
    return _one(
        lambda: load_volume(tmp / "image.nhdr"),
        tmp / "slice02.raw",
        InputError,
        "not a regular file",
        precheck=pre,
    )


def header_nhdr_missing_data_file(tmp: Path) -> BadInput:
    (tmp / "image.nhdr").write_text(_NHDR + "data file: gone.raw\n")
    return _one(lambda: load_volume(tmp / "image.nhdr"), tmp / "gone.raw", InputError, "does not exist")


def header_mhd_data_file_fifo(tmp: Path) -> BadInput:
    """A MetaImage header whose ``ElementDataFile`` is a named pipe."""
    pre = _fifo(tmp / "image.raw")
    (tmp / "image.mhd").write_text(_MHD + "ElementDataFile = image.raw\n")
    return _one(
        lambda: load_volume(tmp / "image.mhd"),
        tmp / "image.raw",
        InputError,
        "not a regular file",
        precheck=pre,
    )


def header_mhd_list_fifo(tmp: Path) -> BadInput:
    """``ElementDataFile = LIST``: the second slice file is a named pipe."""
    for k in (0, 2):
        (tmp / f"s{k}.raw").write_bytes(_VOXELS[:20].tobytes())
    pre = _fifo(tmp / "s1.raw")
    (tmp / "mask.mhd").write_text(_MHD + "ElementDataFile = LIST 2D\ns0.raw\ns1.raw\ns2.raw\n")
    return _one(
        lambda: load_mask(tmp / "mask.mhd"), tmp / "s1.raw", InputError, "not a regular file", precheck=pre
    )


def header_mhd_missing_data_file(tmp: Path) -> BadInput:
    (tmp / "image.mhd").write_text(_MHD + "ElementDataFile = gone.raw\n")
    return _one(lambda: load_volume(tmp / "image.mhd"), tmp / "gone.raw", InputError, "does not exist")


def header_nhdr_valid_detached(tmp: Path) -> BadInput:
    """A valid detached NRRD header and data file: read correctly (the checks refuse nothing valid)."""
    (tmp / "image.raw").write_bytes(_VOXELS.tobytes())
    (tmp / "image.nhdr").write_text(_NHDR + "data file: ./image.raw\n")

    def check(vol: Any) -> None:
        assert vol.shape == (4, 5, 3)
        assert np.array_equal(np.sort(np.asarray(vol.data).ravel()), _VOXELS)

    return BadInput(lambda: load_volume(tmp / "image.nhdr"), tmp / "image.nhdr", None, "", check=check)


# --------------------------------------------------------------------------- paths


def path_missing(tmp: Path) -> BadInput:
    p = tmp / "no_such_image.nii.gz"
    return _one(lambda: load_volume(p), p, InputError, "no such file")


def path_folder_as_mask_file(tmp: Path) -> BadInput:
    p = tmp / "vertebrae_mask.nii.gz"
    p.mkdir()
    return _one(lambda: load_mask(p), p, InputError, "is a folder")


def path_folder_as_table(tmp: Path) -> BadInput:
    p = tmp / "clinical.csv"
    p.mkdir()
    return _one(lambda: read_clinical(p), p, InputError, "is a folder")


def path_unknown_extension(tmp: Path) -> BadInput:
    p = tmp / "scan.xyz"
    p.write_bytes(b"not an image at all" * 20)
    return _one(lambda: load_volume(p), p, InputError, "unknown image format")


def _unreadable(path: Path) -> Callable[[], None]:
    """Make ``path`` unreadable: mode 000 when not root, else a FIFO (root reads any mode-000 file).

    Returns the precheck that confirms an ordinary read really fails.
    """
    if os.geteuid() != 0:
        path.write_bytes(b"\0" * 400)
        path.chmod(0)

        def precheck() -> None:
            try:
                path.read_bytes()
            except PermissionError:
                return
            raise AssertionError(f"{path} is mode 000 but still readable")

        return precheck
    os.mkfifo(path)

    def precheck_fifo() -> None:
        # an ordinary open() would block forever; a non-blocking open + read yields no data at all
        assert stat.S_ISFIFO(path.stat().st_mode) and not path.is_file()
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert os.read(fd, 352) == b"", f"{path}: the FIFO yielded data"
        finally:
            os.close(fd)

    return precheck_fifo


def path_unreadable_image(tmp: Path) -> BadInput:
    p = tmp / "image.nii.gz"
    pre = _unreadable(p)
    return _one(lambda: load_volume(p), p, InputError, "cannot be read", precheck=pre)


def path_unreadable_table(tmp: Path) -> BadInput:
    p = tmp / "clinical.csv"
    pre = _unreadable(p)
    return _one(lambda: read_clinical(p), p, InputError, "cannot be read", precheck=pre)


def path_unreadable_mask(tmp: Path) -> BadInput:
    p = tmp / "vertebrae_mask.nrrd"
    pre = _unreadable(p)
    return _one(lambda: load_mask(p), p, InputError, "cannot be read", precheck=pre)


def path_unreadable_dicom_file(tmp: Path) -> BadInput:
    p = tmp / "IM0001.dcm"
    pre = _unreadable(p)
    return _one(lambda: load_volume(p), p, InputError, "cannot be read", precheck=pre)


def path_write_onto_folder(tmp: Path) -> BadInput:
    p = tmp / "out.nii.gz"
    p.mkdir()
    vol = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4))
    return _one(lambda: save_nifti(vol, p), p, InputError, "is a folder")


def cohort_symlink_loop(tmp: Path) -> BadInput:
    """A patient folder holding a symlink to itself (and one with only a loop): discovery must finish."""
    cohort = tmp / "cohort"
    good = cohort / "SMR-001"
    good.mkdir(parents=True)
    write_nifti(good / "image.nii.gz", np.zeros((2, 2, 2), np.int16))
    write_nifti(good / "vertebrae_mask.nii.gz", np.zeros((2, 2, 2), np.uint8))
    (good / "loop").symlink_to(good, target_is_directory=True)
    lonely = cohort / "SMR-002"
    lonely.mkdir()
    (lonely / "a").symlink_to(lonely / "b")
    (lonely / "b").symlink_to(lonely / "a")
    (lonely / "up").symlink_to(cohort, target_is_directory=True)

    def check(cases: Any) -> None:
        by_id = {c.patient_id: c for c in cases}
        assert sorted(by_id) == ["SMR-001", "SMR-002"]
        assert by_id["SMR-001"].problem is None
        assert by_id["SMR-001"].image == good / "image.nii.gz"
        assert by_id["SMR-002"].problem is not None and by_id["SMR-002"].problem_path == lonely

    return BadInput(lambda: discover_cases(cohort), cohort, None, "", check=check)


def dicom_folder_symlink_loop(tmp: Path) -> BadInput:
    """A DICOM folder with a symlink back to itself: the series loads once, not repeated."""
    paths, arrays = write_series(tmp / "s", n=3)
    (tmp / "s" / "again").symlink_to(tmp / "s", target_is_directory=True)

    def check(vol: Any) -> None:
        assert vol.shape == (4, 6, 3)
        assert np.array_equal(np.asarray(vol.data)[:, :, 0], arrays[0].T)

    return BadInput(lambda: load_volume(tmp / "s"), tmp / "s", None, "", check=check)


#: every kind, by name; the order is the order of docs/robustness.md
KINDS: dict[str, Callable[[Path], BadInput]] = {
    f.__name__: f
    for f in (
        dicom_truncated_file,
        dicom_truncated_header,
        dicom_no_pixel_data,
        dicom_declared_compressed_syntax,
        dicom_declared_big_endian,
        dicom_rows_larger_than_data,
        dicom_columns_smaller_than_data,
        dicom_duplicate_positions,
        dicom_missing_slice,
        dicom_mixed_orientations,
        dicom_zero_pixel_spacing,
        dicom_negative_pixel_spacing,
        dicom_huge_pixel_spacing,
        dicom_all_slices_one_position,
        dicom_nan_position,
        dicom_orientation_not_orthogonal,
        dicom_bits_allocated_12,
        dicom_rescale_overflow,
        dicom_frames_beyond_data,
        dicom_colour_image,
        dicom_series_copied_into_subfolder,
        dicom_folder_symlink_loop,
        nifti_corrupt_gzip,
        nifti_header_larger_than_data,
        nifti_header_larger_than_data_gz,
        nifti_2d,
        nifti_5d,
        nifti_billions_of_voxels,
        nifti_gigabytes_in_tiny_gzip,
        nifti_nan_voxels,
        nifti_inf_voxels,
        nifti_zero_pixdim,
        nifti_nan_sform,
        nifti_vox_offset_in_header,
        nifti_complex_data,
        header_nhdr_data_file_fifo,
        header_nhdr_list_fifo,
        header_nhdr_printf_fifo,
        header_nhdr_missing_data_file,
        header_mhd_data_file_fifo,
        header_mhd_list_fifo,
        header_mhd_missing_data_file,
        header_nhdr_valid_detached,
        mask_all_zero,
        mask_only_unknown_labels,
        mask_non_integral_floats,
        mask_negative_labels,
        mask_nan_values,
        mask_almost_integer_floats,
        mask_on_another_grid,
        table_no_id_column,
        table_empty,
        table_corrupt_xlsx,
        table_non_numeric_vas,
        table_utf8_bom,
        table_latin1,
        table_semicolon_separated,
        path_missing,
        path_folder_as_mask_file,
        path_folder_as_table,
        path_unknown_extension,
        path_unreadable_image,
        path_unreadable_table,
        path_unreadable_mask,
        path_unreadable_dicom_file,
        path_write_onto_folder,
        cohort_symlink_loop,
    )
}


def make_corpus(root: Path) -> dict[str, BadInput]:
    """Write every kind under ``root/<kind>/``; return the entries by kind."""
    out = {}
    for name, build in KINDS.items():
        folder = root / name
        folder.mkdir(parents=True)
        out[name] = build(folder)
    return out


if __name__ == "__main__":  # pragma: no cover - manual use
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/bad_inputs/make_corpus.py OUT_DIR")
    for kind, entry in make_corpus(Path(sys.argv[1])).items():
        print(f"{kind:40s} -> {entry.error.__name__ if entry.error else 'read correctly'}: {entry.named}")
