"""``spinemri info``: DICOM series listing and pick, volume and label-mask summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from spinemri.cli import main

SAG = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
AX = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _write(path: Path, *, ipp, iop, uid, number, desc, image_type=("ORIGINAL", "PRIMARY", "M")) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = uid, number, desc
    ds.ImageType = list(image_type)
    ds.ImagePositionPatient, ds.ImageOrientationPatient = list(ipp), list(iop)
    ds.PixelSpacing = [1.0, 1.0]
    ds.Rows, ds.Columns = 3, 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.zeros((3, 2), "<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _study(root: Path) -> Path:
    for k in range(3):
        _write(
            root / "loc" / f"{k}.dcm",
            ipp=(0, 0, k),
            iop=AX,
            uid="1.2.3.10",
            number=1,
            desc="localizer",
            image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        )
    for k in range(4):
        _write(root / "t1" / f"{k}.dcm", ipp=(-k, 0, 0), iop=SAG, uid="1.2.3.20", number=2, desc="t1_tse_sag")
        _write(root / "stir" / f"{k}.dcm", ipp=(-k, 0, 0), iop=SAG, uid="1.2.3.30", number=3, desc="STIR_sag")
    return root


def test_info_dicom_lists_series_and_pick(tmp_path, capsys):
    root = _study(tmp_path / "study")
    assert main(["info", str(root), "--show-descriptions"]) == 0  # issue 16: descriptions only on request
    out = capsys.readouterr().out
    assert "3 DICOM series" in out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("  1.2.3.")}
    assert set(lines) == {"1", "2", "3"}
    assert "localizer" in lines["1"] and lines["1"].rstrip().endswith("yes") and "axial" in lines["1"]
    assert "STIR_sag" in lines["3"] and "sagittal" in lines["3"] and " 4 " in lines["3"]
    assert lines["2"].rstrip().endswith("no")
    assert "load_volume picks by default: series 3 'STIR_sag'" in out


def test_info_dicom_with_series_option(tmp_path, capsys):
    root = _study(tmp_path / "study")
    assert main(["info", str(root), "--series", "t1", "--show-descriptions"]) == 0
    assert "picks with --series t1: series 2 't1_tse_sag'" in capsys.readouterr().out


@pytest.mark.shared_data
def test_info_dicom_tie_says_why(capsys):
    folder = shared_path("dcm_qa_ts_transfer_syntaxes", "In")
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "9 DICOM series" in out
    assert "would not pick a series" in out and "--series" in out


def test_info_label_mask(tmp_path, capsys):
    import nibabel as nib

    mask = np.zeros((4, 4, 10), np.uint8)
    for i, label in enumerate([24, 23, 22, 21, 20]):  # VerSe L5..L1, caudal to cranial along +z (superior)
        mask[:, :, 2 * i : 2 * i + 2] = label
    mask[0, 0, 0] = 0
    path = tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.diag([1.0, 1.0, 3.0, 1.0])), str(path))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "shape    (4, 4, 10)" in out and "dtype    uint8" in out
    assert "spacing  1 x 1 x 3 mm" in out and "axcodes  RAS" in out
    assert "range    0 .. 24" in out
    assert "0: 1, 20: 32, 21: 32, 22: 32, 23: 32, 24: 31" in out
    assert "scheme   verse" in out


def test_info_label_mask_unknown_scheme(tmp_path, capsys):
    import nibabel as nib

    mask = np.zeros((3, 3, 3), np.int16)
    mask[1, 1, 1] = 900
    path = tmp_path / "odd_labels.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(path))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0: 26, 900: 1" in out
    assert "scheme   cannot guess:" in out


def test_info_image_has_no_label_section(tmp_path, capsys, rng):
    import nibabel as nib

    img = rng.normal(100.0, 10.0, size=(5, 6, 7)).astype(np.float32)
    path = tmp_path / "t2.nii.gz"
    nib.save(nib.Nifti1Image(img, np.diag([0.5, 0.5, 4.0, 1.0])), str(path))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dtype    float32" in out and "spacing  0.5 x 0.5 x 4 mm" in out
    assert f"range    {img.min():.6g} .. {img.max():.6g}" in out
    assert "labels" not in out and "scheme" not in out


def test_info_missing_path_exits_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nope") in err and "no such file" in err
