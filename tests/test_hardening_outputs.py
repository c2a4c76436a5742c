"""Issue 16: an optional output (DICOM-SEG, QC) never sinks a case; a full disk fails one case only."""

from __future__ import annotations

import contextlib
import errno
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import spinemri.io.atomic as atomic
from spinemri.cli import main
from spinemri.errors import SpinemriWarning
from spinemri.io.cohort_write import CohortSpec, write_cohort

SMALL = {"first_level": "T12", "last_level": "L5", "rows": 96, "cols": 64, "n_slices": 7, "supersample": 1}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    write_cohort(root, CohortSpec(n_patients=3, seed=5, format="mixed"), **SMALL)  # SMR-001/003 DICOM
    (root / "clinical.csv").unlink()  # no analysis: faster
    return root


def _seg_fails(*args: object, **kwargs: object) -> bytes:
    raise ValueError("highdicom: Value 'Ó' of attribute PatientName is not a valid person name")


def _qc_fails(*args: object, **kwargs: object) -> bytes:
    raise RuntimeError("the QC renderer broke")


def _run(cohort: Path, out: Path, *extra: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        return main(["run", str(cohort), "--out", str(out), "--quiet", *extra])


# --- 1. optional outputs ---------------------------------------------------------------------


def test_measure_dicom_seg_failure_keeps_the_case(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("highdicom", reason="DICOM-SEG needs highdicom (the dicomseg extra; part of test)")
    monkeypatch.setattr("spinemri.io.dicom.seg.dicom_seg_bytes", _seg_fails)
    out = tmp_path / "m"
    image = cohort / "SMR-001" / "dicom"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        code = main(
            [
                "measure",
                str(image),
                "--mask",
                str(cohort / "SMR-001" / "vertebrae_mask.nii.gz"),
                "--out",
                str(out),
                "--patient-id",
                "P1",
                "--dicom-seg",
            ]
        )
    assert code == 1
    for name in ("vertebrae.csv", "patients.csv", "lesions.csv", "masks/P1_lesions.nii.gz", "qc/P1.png"):
        assert (out / name).is_file(), name
    assert not (out / "masks" / "P1_lesions.seg.dcm").exists()
    notes = json.loads((out / "provenance.json").read_text(encoding="utf-8"))["notes"]
    assert any("DICOM-SEG not written" in n and "not a valid person name" in n for n in notes), notes
    err = capsys.readouterr().err
    assert "DICOM-SEG not written" in err and str(image) in err and "Traceback" not in err


def test_run_dicom_seg_failure_keeps_tables_and_mask(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("highdicom", reason="DICOM-SEG needs highdicom (the dicomseg extra; part of test)")
    monkeypatch.setattr("spinemri.io.dicom.seg.dicom_seg_bytes", _seg_fails)
    out = tmp_path / "r"
    assert _run(cohort, out, "--dicom-seg") == 1
    patients = pd.read_csv(out / "patients.csv", dtype={"patient_id": str})
    assert sorted(patients["patient_id"]) == ["SMR-001", "SMR-002", "SMR-003"]  # no case lost
    for pid in ("SMR-001", "SMR-002", "SMR-003"):
        assert (out / "masks" / f"{pid}_lesions.nii.gz").is_file()
        assert (out / "qc" / f"{pid}.png").is_file()
    errors = pd.read_csv(out / "errors.csv", dtype=str)
    assert sorted(errors["patient_id"]) == ["SMR-001", "SMR-003"]  # the DICOM cases
    assert set(errors["stage"]) == {"dicom_seg"} and set(errors["error"]) == {"ValueError"}
    assert list(errors["path"]) == [str(cohort / "SMR-001"), str(cohort / "SMR-003")]  # the DICOM images
    prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert any("SMR-001" in n and "DICOM-SEG not written" in n for n in prov["notes"])
    # no "done" marker: once the SEG builder works again, a rerun makes the SEGs and exits 0
    monkeypatch.undo()
    assert _run(cohort, out, "--dicom-seg") == 0
    assert (out / "masks" / "SMR-001_lesions.seg.dcm").is_file()
    assert pd.read_csv(out / "errors.csv").empty


def test_run_qc_failure_keeps_the_case(cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("spinemri.report.qc.measurement_qc_png", _qc_fails)
    out = tmp_path / "q"
    assert _run(cohort, out) == 1
    assert len(pd.read_csv(out / "patients.csv")) == 3
    errors = pd.read_csv(out / "errors.csv", dtype=str)
    assert len(errors) == 3 and set(errors["stage"]) == {"qc"}
    assert not list((out / "qc").glob("*.png")) if (out / "qc").exists() else True


# --- 2. a full disk ----------------------------------------------------------------------------


def _full_disk_for(monkeypatch: pytest.MonkeyPatch, hit: str, code: int = errno.ENOSPC) -> None:
    real = atomic.atomic_path

    @contextlib.contextmanager
    def atomic_path(path: str | Path) -> Iterator[Path]:
        if hit in str(path):
            raise OSError(code, "No space left on device")
        with real(path) as tmp:
            yield tmp

    monkeypatch.setattr(atomic, "atomic_path", atomic_path)


def test_full_disk_fails_one_case_and_the_run_goes_on(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _full_disk_for(monkeypatch, "SMR-002")
    out = tmp_path / "d"
    assert _run(cohort, out) == 1
    errors = pd.read_csv(out / "errors.csv", dtype=str)
    assert list(errors["patient_id"]) == ["SMR-002"]
    row = errors.iloc[0]
    assert row["stage"] == "write" and row["error"] == "OutputError"
    assert "no space left on device while writing" in row["message"] and "SMR-002" in row["message"]
    patients = pd.read_csv(out / "patients.csv", dtype={"patient_id": str})
    assert sorted(patients["patient_id"]) == ["SMR-001", "SMR-003"]
    assert not (out / "cases" / "SMR-002").exists()  # nothing half-written that looks like a result


def test_quota_exceeded_is_named(cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _full_disk_for(monkeypatch, "SMR-003_lesions", errno.EDQUOT)
    out = tmp_path / "quota"
    assert _run(cohort, out) == 1
    errors = pd.read_csv(out / "errors.csv", dtype=str)
    assert list(errors["patient_id"]) == ["SMR-003"]
    assert "disk quota exceeded while writing" in errors.iloc[0]["message"]


def test_errors_csv_on_a_full_disk_is_one_line_exit_1(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _full_disk_for(monkeypatch, "errors.csv")
    out = tmp_path / "e"
    assert _run(cohort, out) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("spinemri run: error: no space left on device while writing")
    assert "errors.csv" in err


def test_measure_on_a_full_disk_is_one_line_exit_1(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _full_disk_for(monkeypatch, "lesions.csv")
    out = tmp_path / "mf"
    case = cohort / "SMR-002"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        code = main(
            [
                "measure",
                str(case / "image.nii.gz"),
                "--mask",
                str(case / "vertebrae_mask.nii.gz"),
                "--out",
                str(out),
            ]
        )
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "no space left on device while writing" in err and "lesions.csv" in err
