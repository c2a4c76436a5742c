"""Cohort runner: broken cases isolated, executors agree byte for byte, resume, de-identification."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spinemri.cli import main
from spinemri.io.cohort_write import CohortSpec, write_cohort
from spinemri.pipeline.cohort import ERROR_COLUMNS, run_cohort

# small, fast phantoms: a lumbar segment on a coarse grid
SMALL = {"first_level": "T11", "last_level": "S1", "rows": 128, "cols": 96, "n_slices": 9, "supersample": 2}
TABLE_FILES = ("vertebrae.csv", "patients.csv", "lesions.csv", "errors.csv")


@pytest.fixture(scope="module")
def good_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    write_cohort(root, CohortSpec(n_patients=4, seed=3, format="mixed"), **SMALL)
    return root


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _read_bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in TABLE_FILES}


def _break_cases(cohort: Path) -> dict[str, str]:
    """Add broken patient folders; return {patient_id: expected stage}."""
    good = cohort / "SMR-002"  # a NIfTI case (mixed format: odd index -> nifti)
    assert (good / "image.nii.gz").exists()
    expected = {}
    # truncated NIfTI image
    d = cohort / "BAD-trunc"
    d.mkdir()
    raw = (good / "image.nii.gz").read_bytes()
    (d / "image.nii.gz").write_bytes(raw[: len(raw) // 3])
    shutil.copy(good / "vertebrae_mask.nii.gz", d / "vertebrae_mask.nii.gz")
    expected["BAD-trunc"] = "load_image"
    # mask on another grid (shifted by 20 mm)
    import nibabel as nib

    d = cohort / "BAD-grid"
    d.mkdir()
    shutil.copy(good / "image.nii.gz", d / "image.nii.gz")
    m = nib.load(str(good / "vertebrae_mask.nii.gz"))
    aff = m.affine.copy()
    aff[:3, 3] += 20.0
    nib.save(nib.Nifti1Image(np.asarray(m.dataobj), aff), str(d / "vertebrae_mask.nii.gz"))
    expected["BAD-grid"] = "load_mask"
    # empty mask
    d = cohort / "BAD-empty"
    d.mkdir()
    shutil.copy(good / "image.nii.gz", d / "image.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(m.shape, np.uint8), m.affine), str(d / "vertebrae_mask.nii.gz"))
    expected["BAD-empty"] = "measure"
    # missing mask
    d = cohort / "BAD-nomask"
    d.mkdir()
    shutil.copy(good / "image.nii.gz", d / "image.nii.gz")
    expected["BAD-nomask"] = "discover"
    # folder with no image
    d = cohort / "BAD-noimage"
    d.mkdir()
    shutil.copy(good / "vertebrae_mask.nii.gz", d / "vertebrae_mask.nii.gz")
    expected["BAD-noimage"] = "discover"
    # truncated DICOM: cut every file of a DICOM case
    src = cohort / "SMR-001"
    d = cohort / "BAD-dicom"
    shutil.copytree(src, d)
    for f in sorted((d / "dicom").iterdir()):
        b = f.read_bytes()
        f.write_bytes(b[: len(b) // 2])
    expected["BAD-dicom"] = "load_image"
    return expected


def test_broken_cases_are_isolated(good_cohort: Path, tmp_path: Path) -> None:
    cohort = _copy(good_cohort, tmp_path / "cohort")
    expected = _break_cases(cohort)
    out = tmp_path / "out"
    summary = run_cohort(cohort, out)
    assert summary.exit_code == 1
    assert summary.failed == len(expected)
    assert summary.done == 4
    errors = pd.read_csv(out / "errors.csv", dtype=str)
    assert list(errors.columns) == list(ERROR_COLUMNS)
    assert dict(zip(errors.patient_id, errors.stage)) == expected
    for _, row in errors.iterrows():
        assert row.patient_id in row.path  # the path names the bad case's file or folder
        assert row.message
    patients = pd.read_csv(out / "patients.csv", dtype={"patient_id": str})
    assert sorted(patients.patient_id) == ["SMR-001", "SMR-002", "SMR-003", "SMR-004"]
    for pid in patients.patient_id:
        assert (out / "qc" / f"{pid}.png").stat().st_size > 1000
        assert (out / "masks" / f"{pid}_lesions.nii.gz").exists()
    for bad in expected:
        assert not (out / "qc" / f"{bad}.png").exists()
    # no temporary files left behind anywhere
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.name.endswith("tmp")]
    assert not list(out.rglob("*.tmp*"))


def test_good_run_writes_everything_and_matches_truth_counts(good_cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_cohort(good_cohort, out)
    assert summary.exit_code == 0, (out / "errors.csv").read_text()
    for name in (
        *TABLE_FILES,
        "provenance.json",
        "linked.csv",
        "analysis/summary.json",
        "analysis/report.html",
    ):
        assert (out / name).exists(), name
    errors = pd.read_csv(out / "errors.csv")
    assert errors.empty
    # n_vertebrae per patient equals the phantom's truth (independent of the pipeline)
    truth = pd.read_csv(good_cohort / "truth.csv", dtype={"patient_id": str}).set_index("patient_id")
    got = pd.read_csv(out / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    assert (got.loc[truth.index, "n_vertebrae"] == truth["n_vertebrae"]).all()
    # the vertebra volumes come straight from the masks: equal to the truth voxel counts
    tv = pd.read_csv(good_cohort / "truth_vertebrae.csv", dtype={"patient_id": str})
    gv = pd.read_csv(out / "vertebrae.csv", dtype={"patient_id": str})
    merged = tv.merge(gv, on=["patient_id", "level"], suffixes=("_truth", ""))
    assert len(merged) == len(tv)
    assert (merged["vertebra_voxels"] == merged["vertebra_voxels_truth"]).all()


def test_executors_give_identical_tables(good_cohort: Path, tmp_path: Path) -> None:
    outs = {}
    for name, kw in {
        "serial": {},
        "processes": {"workers": 2},
        "dask": {"workers": 2, "scheduler": "local"},
    }.items():
        out = tmp_path / name
        summary = run_cohort(good_cohort, out, **kw)
        assert summary.exit_code == 0
        outs[name] = _read_bytes(out)
    assert outs["serial"] == outs["processes"] == outs["dask"]


def test_rerun_skips_unchanged_and_force_recomputes(good_cohort: Path, tmp_path: Path) -> None:
    cohort = _copy(good_cohort, tmp_path / "cohort")
    out = tmp_path / "out"
    first = run_cohort(cohort, out)
    before = _read_bytes(out)
    again = run_cohort(cohort, out)
    assert (again.done, again.skipped) == (0, first.done)
    assert _read_bytes(out) == before
    # change one input: only that case is recomputed
    img = cohort / "SMR-002" / "image.nii.gz"
    import nibabel as nib

    im = nib.load(str(img))
    data = np.asarray(im.dataobj).copy()
    data[0, 0, 0] += 1  # one background voxel changes: new content hash
    nib.save(nib.Nifti1Image(data, im.affine, im.header), str(img))
    third = run_cohort(cohort, out)
    assert (third.done, third.skipped) == (1, first.done - 1)
    forced = run_cohort(cohort, out, force=True)
    assert forced.done == first.done and forced.skipped == 0
    # a changed parameter invalidates every case
    other = run_cohort(cohort, out, k=4.0)
    assert other.done == first.done


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_then_resume_gives_identical_outputs(good_cohort: Path, tmp_path: Path) -> None:
    reference = tmp_path / "ref"
    assert run_cohort(good_cohort, reference).exit_code == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "spinemri.cli", "run", str(good_cohort), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "cases").glob("*/state.json")):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list((out / "cases").glob("*/state.json"))) < 4, "the run finished before it could be killed"
    assert main(["run", str(good_cohort), "--out", str(out), "--quiet"]) == 0
    assert _read_bytes(out) == _read_bytes(reference)
    assert (out / "linked.csv").read_bytes() == (reference / "linked.csv").read_bytes()


def test_no_dicom_identifier_in_any_output(good_cohort: Path, tmp_path: Path) -> None:
    import pydicom

    cohort = _copy(good_cohort, tmp_path / "cohort")
    secrets = {
        "PatientName": "Doe^Janeidentifier",
        "PatientID": "SECRETID4711",
        "PatientBirthDate": "19470203",
        "OtherPatientIDs": "OTHERID0815",
        "PatientAddress": "Elm Street 13",
    }
    dicom_dirs = [p for p in cohort.glob("*/dicom") if p.is_dir()]
    assert dicom_dirs
    for d in dicom_dirs:
        for f in d.iterdir():
            ds = pydicom.dcmread(f)
            for key, value in secrets.items():
                setattr(ds, key, value)
            ds.save_as(f)
    out = tmp_path / "out"
    assert run_cohort(cohort, out).exit_code == 0
    needles = [v.encode() for v in secrets.values()] + [b"Doe", b"Janeidentifier"]
    for f in out.rglob("*"):
        if not f.is_file():
            continue
        data = f.read_bytes()
        if f.name.endswith(".gz"):
            data = gzip.decompress(data)
        for needle in needles:
            assert needle not in data, f"{needle!r} found in {f}"


def test_cli_run_exit_codes(good_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(good_cohort), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", str(empty), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "no patient folders" in err
    cohort = _copy(good_cohort, tmp_path / "c")
    (cohort / "NOIMG").mkdir()
    assert main(["run", str(cohort), "--out", str(tmp_path / "o3")]) == 1
    err = capsys.readouterr().err
    assert "1 failed" in err


def test_manifest_overrides_discovery(good_cohort: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "cases.csv"
    rows = ["patient_id,image,mask"]
    for pid in ("SMR-002", "SMR-004"):
        rows.append(
            f"{pid},{good_cohort / pid / 'image.nii.gz'},{good_cohort / pid / 'vertebrae_mask.nii.gz'}"
        )
    manifest.write_text("\n".join(rows) + "\n")
    summary = run_cohort(good_cohort, tmp_path / "out", manifest=manifest)
    assert summary.n_cases == 2 and summary.exit_code == 0
    patients = pd.read_csv(tmp_path / "out" / "patients.csv", dtype={"patient_id": str})
    assert list(patients.patient_id) == ["SMR-002", "SMR-004"]
