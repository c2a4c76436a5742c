"""Phantom writers: DICOM series geometry and round trip, cohort layout, VAS model, sample_data."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spinemri.cli import main
from spinemri.io.cohort_write import VAS_MODEL, CohortSpec, draw_vas, noisy_id, write_cohort
from spinemri.io.dicom.write import write_dicom_series
from spinemri.io.load import load_mask, load_volume
from spinemri.levels import BUILTIN_SCHEMES
from spinemri.phantom import make_phantom
from spinemri.volume import Volume

REPO = Path(__file__).resolve().parents[1]
TINY = dict(rows=96, cols=80, n_slices=7, first_level="L2", last_level="S1")


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_dicom_round_trip_through_load_volume(tmp_path):
    img, _, _ = make_phantom(seed=4, oblique_deg=7.0, tilt_deg=-5.0, **TINY)
    write_dicom_series(img, tmp_path / "dicom", patient_id="SMR-009", uid_seed="t")
    back = load_volume(tmp_path / "dicom")
    assert back.shape == img.shape
    assert np.array_equal(np.asarray(back.data), np.asarray(img.data))
    assert np.max(np.abs(back.affine - img.affine)) < 1e-4
    assert back.meta["series_description"] == "SAG STIR" and back.meta["plane"] == "sagittal"


def test_dicom_headers_encode_the_geometry(tmp_path):
    """World positions recomputed from the headers with the DICOM formula (PS3.3 C.7.6.2.1.1)."""
    import pydicom
    from pydicom.uid import UID, MRImageStorage

    rng = np.random.default_rng(0)
    direction = _rotation(0.1, -0.2, 0.3) @ np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array([0.7, 0.9, 3.3])  # column spacing 0.7, row spacing 0.9
    affine[:3, 3] = [12.5, -40.25, 101.0]
    data = rng.integers(0, 4000, size=(6, 5, 4)).astype(np.uint16)  # 6 columns, 5 rows, 4 slices
    vol = Volume(data, affine)
    files = write_dicom_series(
        vol, tmp_path, patient_id="SMR-123", uid_seed="geom", series_description="SAG T1", contrast="t1"
    )
    ras_to_lps = np.diag([-1.0, -1.0, 1.0])
    uids = set()
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        assert ds.SOPClassUID == MRImageStorage and ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx(
            [0.9, 0.7]
        )  # [row spacing, column spacing]
        assert float(ds.SliceThickness) == pytest.approx(3.3) and float(
            ds.SpacingBetweenSlices
        ) == pytest.approx(3.3)
        assert str(ds.PatientID) == "SMR-123" and str(ds.PatientName) == "SMR-123" and not ds.PatientBirthDate
        assert ds.SeriesDescription == "SAG T1" and ds.Rows == 5 and ds.Columns == 6
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID):
            assert UID(str(uid)).is_valid
        uids.add(str(ds.SOPInstanceUID))
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        dr, dc = (float(v) for v in ds.PixelSpacing)
        px = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        for r in range(ds.Rows):
            for c in range(ds.Columns):
                lps = ipp + iop[:3] * dc * c + iop[3:] * dr * r
                expected = ras_to_lps @ (affine[:3, :3] @ [c, r, k] + affine[:3, 3])
                assert np.allclose(lps, expected, atol=1e-6)
                assert px[r, c] == data[c, r, k]
    assert len(uids) == len(files)


def test_dicom_agrees_with_dcm2niix(tmp_path):
    beside = Path(sys.executable).parent / "dcm2niix"
    exe = str(beside) if beside.exists() else shutil.which("dcm2niix")
    if not exe:
        pytest.skip("dcm2niix is not installed (pip install dcm2niix)")
    import nibabel as nib

    img, _, _ = make_phantom(seed=6, oblique_deg=5.0, **TINY)
    write_dicom_series(img, tmp_path / "dicom", patient_id="SMR-001", uid_seed="d2n")
    out = tmp_path / "nii"
    out.mkdir()
    subprocess.run(
        [exe, "-z", "n", "-f", "ref", "-o", str(out), str(tmp_path / "dicom")],
        check=True,
        capture_output=True,
    )
    ref = nib.as_closest_canonical(nib.load(out / "ref.nii"))
    ours = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(img.data), img.affine))
    assert ref.shape == ours.shape
    assert np.array_equal(np.asarray(ref.dataobj), np.asarray(ours.dataobj))
    assert np.max(np.abs(ref.affine - ours.affine)) < 1e-3


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_seed_gives_byte_identical_files(tmp_path):
    spec = CohortSpec(n_patients=2, seed=21, format="mixed")
    write_cohort(tmp_path / "a", spec, **TINY)
    write_cohort(tmp_path / "b", spec, **TINY)
    write_cohort(tmp_path / "c", CohortSpec(n_patients=2, seed=22, format="mixed"), **TINY)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert any(k.endswith(".dcm") for k in a) and any(k.endswith("image.nii.gz") for k in a)
    assert a == b
    assert a != c


def test_cli_writes_the_cohort_layout(tmp_path):
    out = tmp_path / "cohort"
    rc = main(
        [
            "phantom",
            str(out),
            "--patients",
            "3",
            "--seed",
            "5",
            "--format",
            "mixed",
            "--rows",
            "96",
            "--cols",
            "80",
            "--slices",
            "7",
            "--levels",
            "L1-S1",
        ]
    )
    assert rc == 0
    for name in ("clinical.csv", "truth.csv", "truth_vertebrae.csv", "truth_lesions.csv", "truth.json"):
        assert (out / name).is_file()
    truth = pd.read_csv(out / "truth.csv")
    vert = pd.read_csv(out / "truth_vertebrae.csv")
    assert truth["patient_id"].tolist() == ["SMR-001", "SMR-002", "SMR-003"]
    assert (out / "SMR-001" / "dicom").is_dir() and (out / "SMR-002" / "image.nii.gz").is_file()
    verse = BUILTIN_SCHEMES["verse"]
    for row in truth.itertuples():
        folder = out / row.patient_id
        image = load_volume(folder / ("dicom" if row.format == "dicom" else "image.nii.gz"))
        mask = load_mask(folder / "vertebrae_mask.nii.gz", like=image)
        rows = vert[vert["patient_id"] == row.patient_id]
        assert len(rows) == row.n_vertebrae
        labels = np.unique(np.asarray(mask.data))
        assert sorted(verse.level_of(int(v)) for v in labels if v) == sorted(rows["level"])
        counts = np.bincount(np.asarray(mask.data).ravel())
        assert (counts[rows["label"].to_numpy()] == rows["vertebra_voxels"].to_numpy()).all()
    clinical = pd.read_csv(out / "clinical.csv")
    assert list(clinical.columns) == ["patient_id", "age", "sex", "vas"]
    assert not list(out.glob(".*"))  # no temporary folders left behind


def test_vas_model_has_the_planted_effects():
    rng = np.random.default_rng(1)
    n = 4000
    pats = pd.DataFrame({"lumbar_involved": rng.random(n) < 0.5, "n_involved": rng.integers(0, 7, n)})
    out = draw_vas(pats, np.random.default_rng(2))
    x = np.column_stack([np.ones(n), pats["lumbar_involved"].astype(float), pats["n_involved"].astype(float)])
    coef, *_ = np.linalg.lstsq(x, out["vas_true"].astype(float), rcond=None)
    assert coef[1] > 0 and coef[2] > 0
    assert coef[1] == pytest.approx(VAS_MODEL["lumbar"], abs=0.25)
    assert coef[2] == pytest.approx(VAS_MODEL["per_vertebra"], abs=0.1)
    assert out["vas_true"].between(0, 10).all()
    assert out["vas"].isna().mean() == pytest.approx(VAS_MODEL["missing"], abs=0.01)
    ok = out["vas"].notna()
    assert (out.loc[ok, "vas"].astype(int) == out.loc[ok, "vas_true"]).all()


def test_noisy_ids_keep_the_patient_number():
    rng = np.random.default_rng(0)
    forms = {noisy_id("SMR-017", rng) for _ in range(60)}
    assert forms == {"smr-017", "SMR_017", "SMR017"}
    assert {re.sub(r"[^0-9a-z]", "", f.lower()) for f in forms} == {"smr017"}


def test_sample_data_readme_lists_existing_files_and_fits_the_budget():
    root = REPO / "sample_data"
    readme = (root / "README.md").read_text(encoding="utf-8")
    named = re.findall(r"^- `([^`]+)`", readme.split("## Files", 1)[1], re.M)
    assert len(named) >= 10
    for rel in named:
        assert (root / rel).is_file(), f"sample_data/README.md names {rel}, which does not exist"
    files = [p for p in root.rglob("*") if p.is_file()]
    listed = {str(p.relative_to(root)) for p in files} - {"README.md"}
    assert listed <= set(named), f"files not listed in the README: {sorted(listed - set(named))}"
    assert sum(p.stat().st_size for p in files) <= 5 * 1024 * 1024
    assert "scripts/make_sample_data.py" in readme and "CC0" in readme


def test_second_series_shares_the_study_and_the_geometry(tmp_path):
    import pydicom

    write_cohort(tmp_path, CohortSpec(n_patients=1, seed=3, format="dicom", second_series=1), **TINY)
    folder = tmp_path / "SMR-001" / "dicom"
    heads = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(folder.glob("*.dcm"))]
    assert {h.SeriesDescription for h in heads} == {"SAG STIR", "SAG T1"}
    assert len({h.StudyInstanceUID for h in heads}) == 1 and len({h.FrameOfReferenceUID for h in heads}) == 1
    assert len({h.SeriesInstanceUID for h in heads}) == 2
    stir = load_volume(folder)  # the reader prefers the fluid-sensitive series
    t1 = load_volume(folder, series="SAG T1")
    assert stir.meta["series_description"] == "SAG STIR" and t1.meta["series_description"] == "SAG T1"
    assert np.max(np.abs(stir.affine - t1.affine)) < 1e-6
    mask = load_mask(tmp_path / "SMR-001" / "vertebrae_mask.nii.gz", like=t1)
    vert = np.asarray(mask.data) > 0
    # fatty marrow: dark on STIR, bright on T1
    assert np.median(np.asarray(t1.data)[vert]) > 2 * np.median(np.asarray(stir.data)[vert])
