"""Cohort discovery of other tools' layouts: SPINEPS pairs, TotalSegmentator folders, BIDS (with sessions)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from conftest import shared_path

from spinemri.io.discover import discover_cases

SPINEPS = "tptbox_spineps_sample_mri"
FILES = (
    "sub-mri_label-6_T2w.nii.gz",
    "sub-mri_seg-vert_label-6_msk.nii.gz",
    "sub-mri_seg-subreg_label-6_msk.nii.gz",
)


def _nii(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), str(path))
    return path


def test_spineps_pair_in_patient_folder(tmp_path: Path) -> None:
    src = shared_path(SPINEPS)
    p = tmp_path / "P1"
    p.mkdir()
    for f in FILES:
        (p / f).write_bytes((src / f).read_bytes())
    (case,) = discover_cases(tmp_path)
    assert case.problem is None
    assert case.image == p / FILES[0]  # "label-6" in a BIDS name does not make it a mask
    assert case.mask == p / FILES[1]


def test_totalsegmentator_folder_in_patient_folder(tmp_path: Path) -> None:
    _nii(tmp_path / "P1" / "image.nii.gz")
    _nii(tmp_path / "P1" / "segmentations" / "vertebrae_L1.nii.gz")
    _nii(tmp_path / "P1" / "segmentations" / "liver.nii.gz")
    (case,) = discover_cases(tmp_path)
    assert case.problem is None
    assert (case.image, case.mask) == (tmp_path / "P1" / "image.nii.gz", tmp_path / "P1" / "segmentations")


def test_todays_layout_unchanged(tmp_path: Path) -> None:
    _nii(tmp_path / "SMR-1" / "image.nii.gz")
    _nii(tmp_path / "SMR-1" / "vertebrae_mask.nii.gz")
    _nii(tmp_path / "SMR-2" / "image.nii.gz")  # no mask: still an error row
    a, b = discover_cases(tmp_path)
    assert (a.image, a.mask, a.problem) == (
        tmp_path / "SMR-1" / "image.nii.gz",
        tmp_path / "SMR-1" / "vertebrae_mask.nii.gz",
        None,
    )
    assert b.problem is not None and b.problem.startswith("no vertebral mask found")


def test_bids_with_sessions_and_derivatives(tmp_path: Path) -> None:
    r = tmp_path
    (r / "dataset_description.json").write_text("{}")
    # sub-01: two sessions, SPINEPS masks
    for ses in ("ses-1", "ses-2"):
        _nii(r / "sub-01" / ses / "anat" / f"sub-01_{ses}_T2w.nii.gz")
        d = r / "derivatives" / "spineps" / "sub-01" / ses / "anat"
        _nii(d / f"sub-01_{ses}_seg-vert_msk.nii.gz")
        _nii(d / f"sub-01_{ses}_seg-subreg_msk.nii.gz")
    # sub-02: no session, STIR preferred over T2w, a TotalSegmentator folder
    _nii(r / "sub-02" / "anat" / "sub-02_T2w.nii.gz")
    _nii(r / "sub-02" / "anat" / "sub-02_STIR.nii.gz")
    _nii(r / "derivatives" / "totalsegmentator" / "sub-02" / "anat" / "segmentations" / "vertebrae_L2.nii.gz")
    # sub-03: no mask anywhere
    _nii(r / "sub-03" / "anat" / "sub-03_T2w.nii.gz")
    cases = {c.key: c for c in discover_cases(r)}
    assert sorted(cases) == ["sub-01_ses-1", "sub-01_ses-2", "sub-02", "sub-03"]
    c = cases["sub-01_ses-2"]
    # a BIDS session is a time point of its subject (issue 14)
    assert c.problem is None and c.session == "ses-2" and c.timepoint == "ses-2"
    assert c.patient_id == "sub-01" and cases["sub-01_ses-1"].patient_id == "sub-01"
    assert c.image == r / "sub-01" / "ses-2" / "anat" / "sub-01_ses-2_T2w.nii.gz"
    assert (
        c.mask
        == r / "derivatives" / "spineps" / "sub-01" / "ses-2" / "anat" / "sub-01_ses-2_seg-vert_msk.nii.gz"
    )
    c = cases["sub-02"]
    assert c.problem is None and c.session is None and c.timepoint is None
    assert c.image == r / "sub-02" / "anat" / "sub-02_STIR.nii.gz"
    assert c.mask == r / "derivatives" / "totalsegmentator" / "sub-02" / "anat" / "segmentations"
    c = cases["sub-03"]
    assert c.mask is None and c.problem is not None and "no mask for sub-03_T2w.nii.gz" in c.problem


def test_bids_mask_must_carry_the_image_entities(tmp_path: Path) -> None:
    r = tmp_path
    _nii(r / "sub-01" / "anat" / "sub-01_acq-sag_T2w.nii.gz")
    d = r / "derivatives" / "spineps" / "sub-01" / "anat"
    _nii(d / "sub-01_acq-ax_seg-vert_msk.nii.gz")  # another acquisition's mask
    _nii(d / "sub-01_acq-sag_seg-vert_msk.nii.gz")
    (case,) = discover_cases(r)
    assert case.mask == d / "sub-01_acq-sag_seg-vert_msk.nii.gz"
