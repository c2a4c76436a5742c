"""Issue 16: messages name the file at fault and say what is wrong."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from spinemri.arrays.labels import check_label_values
from spinemri.errors import DicomError, InputError, SpinemriWarning
from spinemri.io.cohort_write import CohortSpec, write_cohort
from spinemri.io.discover import discover_cases
from spinemri.io.load import load_volume
from spinemri.pipeline.cohort import run_cohort

SMALL = {"first_level": "T12", "last_level": "L5", "rows": 96, "cols": 64, "n_slices": 7, "supersample": 1}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("msg_cohort")
    write_cohort(root, CohortSpec(n_patients=2, seed=7, format="mixed"), **SMALL)  # SMR-001 DICOM, 002 NIfTI
    (root / "clinical.csv").unlink()
    return root


def test_label_scheme_error_names_the_mask_in_message_and_errors_csv(cohort: Path, tmp_path: Path) -> None:
    root = tmp_path / "c"
    shutil.copytree(cohort / "SMR-002", root / "P1")
    mask_path = root / "P1" / "vertebrae_mask.nii.gz"
    m = nib.load(str(mask_path))
    data = np.asarray(m.dataobj).astype(np.uint8)
    data[data > 0] = 240  # a label no built-in scheme knows
    nib.save(nib.Nifti1Image(data, m.affine), str(mask_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        summary = run_cohort(root, tmp_path / "out")
    assert summary.failed == 1
    row = pd.read_csv(tmp_path / "out" / "errors.csv", dtype=str).iloc[0]
    assert row["error"] == "LabelSchemeError"
    assert row["path"] == str(mask_path)  # the mask is at fault, not the image
    assert str(mask_path) in row["message"]


def test_non_integer_mask_value_is_printed_with_enough_digits() -> None:
    with pytest.raises(InputError) as info:
        check_label_values(np.array([0.0, 21.99998, 22.0], dtype=np.float32), "m.nii.gz")
    assert "e.g. 21.99998)" in str(info.value)
    with pytest.raises(InputError) as info:
        check_label_values(np.array([0.0, 0.7]), "m.nii.gz")
    assert "e.g. 0.7)" in str(info.value)


def test_complex_image_is_not_a_geometry_error(tmp_path: Path) -> None:
    path = tmp_path / "complex.nii.gz"
    data = (np.ones((4, 4, 3)) + 1j * np.ones((4, 4, 3))).astype(np.complex64)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    with pytest.raises(InputError) as info:
        load_volume(path)
    assert type(info.value) is InputError
    msg = str(info.value)
    assert str(path) in msg and "complex data type complex64" in msg and "not an MR magnitude image" in msg


def test_dicom_series_copied_into_a_subfolder_is_named(cohort: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dicom"
    shutil.copytree(cohort / "SMR-001" / "dicom", folder)
    shutil.copytree(folder, folder / "backup")
    with pytest.raises(DicomError) as info:
        load_volume(folder)
    msg = str(info.value)
    assert "the same images twice" in msg and "copies in backup?" in msg and "4-D" not in msg


def test_junk_files_beside_the_image_are_ignored_and_others_named(cohort: Path, tmp_path: Path) -> None:
    root = tmp_path / "c"
    shutil.copytree(cohort / "SMR-002", root / "P1")
    for junk in ("Thumbs.db", "desktop.ini", "image.nii.gz.md5", "image.nii.gz.sha256"):
        (root / "P1" / junk).write_bytes(b"junk")
    (case,) = discover_cases(root)
    assert case.problem is None and case.image == root / "P1" / "image.nii.gz"
    (root / "P1" / "scan.bin").write_bytes(b"?")
    (case,) = discover_cases(root)
    assert case.problem is not None and "scan.bin" in case.problem
