"""Issue 16: resume hashes cover the content of every input file and every option."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from spinemri.params import RunConfig
from spinemri.phantom.make import make_phantom
from spinemri.pipeline.cohort import run_cohort
from spinemri.pipeline.state import NOT_HASHED_FIELDS, params_hash

SMALL = {"first_level": "T11", "last_level": "S1", "rows": 128, "cols": 96, "n_slices": 9, "supersample": 2}
VERSE = {18: "T11", 19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5", 26: "S1"}


def _save(data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


@pytest.fixture(scope="module")
def phantom() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img, mask, _ = make_phantom(seed=5, **SMALL)
    return np.asarray(img.data), np.asarray(mask.data), img.affine


def _levels(out: Path) -> list[str]:
    return sorted(set(pd.read_csv(out / "vertebrae.csv")["level"]))


def test_editing_the_scheme_file_remeasures(phantom, tmp_path: Path) -> None:
    img, mask, aff = phantom
    cohort = tmp_path / "cohort"
    _save(img, aff, cohort / "P1" / "image.nii.gz")
    _save(mask, aff, cohort / "P1" / "vertebrae_mask.nii.gz")
    scheme = tmp_path / "scheme.json"
    scheme.write_text(json.dumps({"labels": {str(k): v for k, v in VERSE.items()}}))
    out = tmp_path / "out"
    first = run_cohort(cohort, out, scheme=str(scheme), min_lesion_mm3=0)
    assert first.done == 1 and "L1" in _levels(out)
    assert run_cohort(cohort, out, scheme=str(scheme), min_lesion_mm3=0).skipped == 1  # unchanged: skipped
    # same path, new content: every level one higher (T11 -> T12, ..., L5 -> S1; S1 dropped)
    order = list(VERSE.values())
    shifted = {str(k): order[i + 1] for i, k in enumerate(list(VERSE)[:-1])}
    scheme.write_text(json.dumps({"labels": shifted}))
    again = run_cohort(cohort, out, scheme=str(scheme), min_lesion_mm3=0)
    assert (again.done, again.skipped) == (1, 0)
    assert _levels(out) == sorted(set(shifted.values()))
    assert "T11" not in _levels(out)


def test_changing_only_the_spineps_subregion_file_remeasures(phantom, tmp_path: Path) -> None:
    img, mask, aff = phantom
    cohort = tmp_path / "cohort"
    p = cohort / "P1"
    _save(img, aff, p / "sub-1_T2w.nii.gz")
    _save(mask, aff, p / "sub-1_seg-vert_msk.nii.gz")
    subreg = np.where(mask > 0, 49, 0).astype(np.uint8)
    sub_path = _save(subreg, aff, p / "sub-1_seg-subreg_msk.nii.gz")
    out = tmp_path / "out"
    first = run_cohort(cohort, out, min_lesion_mm3=0)
    assert first.done == 1, first
    before = (out / "vertebrae.csv").read_bytes()
    assert run_cohort(cohort, out, min_lesion_mm3=0).skipped == 1
    # half of L1's voxels become posterior elements (41): the measured body changes
    l1 = np.argwhere(mask == 20)
    changed = subreg.copy()
    changed[tuple(l1[: len(l1) // 2].T)] = 41
    _save(changed, aff, sub_path)
    again = run_cohort(cohort, out, min_lesion_mm3=0)
    assert (again.done, again.skipped) == (1, 0)
    assert (out / "vertebrae.csv").read_bytes() != before


def test_changing_one_file_of_a_totalsegmentator_folder_remeasures(phantom, tmp_path: Path) -> None:
    img, mask, aff = phantom
    cohort = tmp_path / "cohort"
    _save(img, aff, cohort / "P1" / "image.nii.gz")
    seg = cohort / "P1" / "segmentations"
    for lab, lev in VERSE.items():
        name = "sacrum" if lev == "S1" else f"vertebrae_{lev}"
        _save((mask == lab).astype(np.uint8), aff, seg / f"{name}.nii.gz")
    out = tmp_path / "out"
    assert run_cohort(cohort, out, min_lesion_mm3=0).done == 1
    assert run_cohort(cohort, out, min_lesion_mm3=0).skipped == 1
    l2 = (mask == 21).astype(np.uint8)
    l2[tuple(np.argwhere(l2)[:10].T)] = 0
    _save(l2, aff, seg / "vertebrae_L2.nii.gz")
    again = run_cohort(cohort, out, min_lesion_mm3=0)
    assert (again.done, again.skipped) == (1, 0)


def test_detached_header_data_file_is_hashed(phantom, tmp_path: Path) -> None:
    import SimpleITK as sitk

    img, mask, aff = phantom
    cohort = tmp_path / "cohort"
    _save(img, aff, cohort / "P1" / "image.nii.gz")
    from spinemri.io.convert import to_sitk
    from spinemri.volume import Volume

    sitk.WriteImage(to_sitk(Volume(mask, aff)), str(cohort / "P1" / "vertebrae_mask.mhd"))
    raw = cohort / "P1" / "vertebrae_mask.raw"
    assert raw.is_file()
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        f"patient_id,image,mask\nP1,{cohort / 'P1' / 'image.nii.gz'},{raw.with_suffix('.mhd')}\n"
    )
    out = tmp_path / "out"
    assert run_cohort(cohort, out, manifest=manifest, min_lesion_mm3=0).done == 1
    assert run_cohort(cohort, out, manifest=manifest, min_lesion_mm3=0).skipped == 1
    data = bytearray(raw.read_bytes())
    data[0] ^= 1  # one voxel of the data file, not the header
    raw.write_bytes(bytes(data))
    again = run_cohort(cohort, out, manifest=manifest, min_lesion_mm3=0)
    assert again.skipped == 0


def test_params_hash_covers_every_run_option() -> None:
    base = RunConfig()
    changed = {
        "scheme": "verse",
        "method": "otsu",
        "series": "2",
        "resample_mask": True,
        "segment": (("k", 4.0),),
        "check_plausibility": False,
        "dicom_seg": True,
        "dicom_seg_vertebrae": True,
        "guidance": False,
        "canal_screening": True,
    }
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert set(changed) | NOT_HASHED_FIELDS == fields, "a new RunConfig field must be hashed or listed"
    for name, value in changed.items():
        other = dataclasses.replace(base, **{name: value})
        assert params_hash(other) != params_hash(base), name
    seg = dataclasses.replace(base, dicom_seg=True)
    assert params_hash(dataclasses.replace(seg, dicom_seg_vertebrae=True)) != params_hash(seg)
    for name in NOT_HASHED_FIELDS:
        value = {"workers": 2, "scheduler": "local", "force": True}[name]
        assert params_hash(dataclasses.replace(base, **{name: value})) == params_hash(base), name
