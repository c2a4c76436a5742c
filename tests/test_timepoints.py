"""Time points in a cohort (issue 14, Deliver 1): discovery, table columns, baseline analysis."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from spinemri.errors import InputError
from spinemri.io.discover import discover_cases, read_manifest, timepoint_date
from spinemri.pipeline.cohort import run_cohort
from spinemri.timepoints import baseline_rows, clinical_rows_at, timepoint_rank

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _nii(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), str(path))
    return path


def _scan(folder: Path) -> None:
    _nii(folder / "image.nii.gz")
    _nii(folder / "vertebrae_mask.nii.gz")


# --- discovery ---------------------------------------------------------------------------------


def test_date_folders_are_time_points_in_date_order(tmp_path: Path) -> None:
    for tp in ("2024-06-01", "2023-12-24", "2024-02-29"):
        _scan(tmp_path / "P1" / tp)
    _scan(tmp_path / "P2")  # a patient without time points beside them
    cases = discover_cases(tmp_path)
    assert [(c.patient_id, c.timepoint, c.scan_date) for c in cases] == [
        ("P1", "2023-12-24", "2023-12-24"),
        ("P1", "2024-02-29", "2024-02-29"),
        ("P1", "2024-06-01", "2024-06-01"),
        ("P2", None, None),
    ]
    assert [c.key for c in cases] == ["P1_2023-12-24", "P1_2024-02-29", "P1_2024-06-01", "P2"]
    assert all(c.problem is None for c in cases)
    assert cases[0].image == tmp_path / "P1" / "2023-12-24" / "image.nii.gz"


def test_tp_and_session_names_in_natural_order(tmp_path: Path) -> None:
    for tp in ("tp10", "tp2", "TP1"):
        _scan(tmp_path / "A" / tp)
    for tp in ("ses-10", "ses-2"):
        _scan(tmp_path / "B" / tp)
    got = [(c.patient_id, c.timepoint, c.scan_date) for c in discover_cases(tmp_path)]
    assert got == [
        ("A", "TP1", None),
        ("A", "tp2", None),
        ("A", "tp10", None),
        ("B", "ses-2", None),
        ("B", "ses-10", None),
    ]


def test_bad_time_point_layouts_are_problems_not_guesses(tmp_path: Path) -> None:
    _scan(tmp_path / "BADDATE" / "2024-13-01")
    _scan(tmp_path / "MIXED" / "2024-01-01")
    _scan(tmp_path / "MIXED" / "tp2")
    _scan(tmp_path / "OTHER" / "2024-01-01")
    _scan(tmp_path / "OTHER" / "extra")
    cases = {c.patient_id: c for c in discover_cases(tmp_path)}
    assert "not a valid date" in str(cases["BADDATE"].problem)
    assert "mix dates and names" in str(cases["MIXED"].problem)
    assert "other folders (extra)" in str(cases["OTHER"].problem)


def test_folder_with_its_own_scan_files_stays_one_case(tmp_path: Path) -> None:
    # a DICOM series in a sub-folder named by date, the mask beside it: one case, as before
    d = tmp_path / "P1"
    (d / "2024-01-01").mkdir(parents=True)
    (d / "2024-01-01" / "IM0001.dcm").write_bytes(b"not really dicom")
    _nii(d / "vertebrae_mask.nii.gz")
    (c,) = discover_cases(tmp_path)
    assert c.timepoint is None and c.image == d and c.problem is None


def test_timepoint_date() -> None:
    assert timepoint_date("2024-02-29") == "2024-02-29"
    assert timepoint_date("tp3") is None and timepoint_date("ses-1") is None
    with pytest.raises(ValueError):
        timepoint_date("2023-02-29")


def test_bids_sessions_take_dates_from_sessions_tsv(tmp_path: Path) -> None:
    (tmp_path / "dataset_description.json").write_text("{}")
    for ses in ("ses-1", "ses-2"):
        _nii(tmp_path / "sub-01" / ses / "anat" / f"sub-01_{ses}_T2w.nii.gz")
        _nii(tmp_path / "derivatives" / "x" / "sub-01" / ses / "anat" / f"sub-01_{ses}_mask.nii.gz")
    (tmp_path / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\nses-1\t2021-03-04T10:00:00\nses-2\tn/a\n"
    )
    got = [(c.patient_id, c.timepoint, c.scan_date) for c in discover_cases(tmp_path)]
    assert got == [("sub-01", "ses-1", "2021-03-04"), ("sub-01", "ses-2", None)]


def test_manifest_timepoint_and_scan_date_columns(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _scan(tmp_path / name)
    m = tmp_path / "manifest.csv"
    m.write_text(
        "patient_id,timepoint,scan_date,image,mask\n"
        "P1,followup,2024-05-01,b/image.nii.gz,b/vertebrae_mask.nii.gz\n"
        "P1,baseline,2024-01-01,a/image.nii.gz,a/vertebrae_mask.nii.gz\n"
        "P2,,2024-02-02,c/image.nii.gz,c/vertebrae_mask.nii.gz\n"
    )
    got = [(c.patient_id, c.timepoint, c.scan_date) for c in discover_cases(tmp_path, m)]
    # ordered by date within a patient; a row without timepoint is named by its date
    assert got == [
        ("P1", "baseline", "2024-01-01"),
        ("P1", "followup", "2024-05-01"),
        ("P2", "2024-02-02", "2024-02-02"),
    ]


def test_manifest_repeated_patient_needs_a_timepoint(tmp_path: Path) -> None:
    _scan(tmp_path / "a")
    m = tmp_path / "manifest.csv"
    m.write_text(
        "patient_id,image,mask\nP1,a/image.nii.gz,a/vertebrae_mask.nii.gz\nP1,a/image.nii.gz,a/vertebrae_mask.nii.gz\n"
    )
    with pytest.raises(InputError, match="need a timepoint column"):
        read_manifest(m)
    m.write_text(
        "patient_id,timepoint,image,mask\nP1,tp1,a/image.nii.gz,a/vertebrae_mask.nii.gz\n"
        "P1,tp1,a/image.nii.gz,a/vertebrae_mask.nii.gz\n"
    )
    with pytest.raises(InputError, match="with timepoint 'tp1' appears more than once"):
        read_manifest(m)
    m.write_text(
        "patient_id,timepoint,scan_date,image,mask\nP1,tp1,01/02/2024,a/image.nii.gz,a/vertebrae_mask.nii.gz\n"
    )
    with pytest.raises(InputError, match="scan_date '01/02/2024' is not a date"):
        read_manifest(m)


# --- pure helpers ------------------------------------------------------------------------------


def test_rank_by_dates_when_all_dated_else_by_name() -> None:
    t = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B"],
            # A: names disagree with dates (tp2 scanned first): dates win
            "timepoint": ["tp1", "tp2", "tp1", "tp10", "tp2"],
            "scan_date": ["2024-05-01", "2024-01-01", "2024-05-01", "", "2024-01-01"],
        }
    )
    assert timepoint_rank(t).tolist() == [1, 0, 1, 1, 0]
    base = baseline_rows(t)
    assert base[["patient_id", "timepoint"]].values.tolist() == [["A", "tp2"], ["B", "tp2"]]


def test_clinical_rows_at_time_points() -> None:
    clinical = pd.DataFrame(
        {"patient_id": ["smr_1", "SMR-1", "SMR-2"], "timepoint": ["tp1", "tp2", "tp1"], "vas": [3, 7, 5]}
    )
    rows = pd.DataFrame({"patient_id": ["SMR-1", "SMR-2"], "timepoint": ["tp2", "tp1"]})
    assert clinical_rows_at(clinical, rows)["vas"].tolist() == [7, 5]
    one_per_patient = clinical.drop(columns="timepoint")
    assert clinical_rows_at(one_per_patient, rows) is one_per_patient


# --- a longitudinal cohort run -----------------------------------------------------------------


@pytest.fixture(scope="module")
def longitudinal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("longitudinal")
    for pid in ("SMR-001", "SMR-002"):
        for tp in ("2024-01-10", "2024-04-12"):
            shutil.copytree(SAMPLE / pid, root / pid / tp)
    shutil.copytree(SAMPLE / "SMR-003", root / "SMR-003")
    pd.DataFrame(
        {
            "patient_id": ["SMR-001", "SMR-001", "SMR-002", "SMR-002", "SMR-003"],
            "timepoint": ["2024-01-10", "2024-04-12", "2024-01-10", "2024-04-12", ""],
            "vas": [2.0, 8.0, 3.0, 9.0, 6.0],
        }
    ).to_csv(root / "clinical.csv", index=False)
    return root


def test_longitudinal_run_tables_and_baseline_analysis(longitudinal: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_cohort(longitudinal, out)
    assert summary.exit_code == 0 and summary.done == 5
    patients = pd.read_csv(
        out / "patients.csv", dtype={"timepoint": str, "scan_date": str}, keep_default_na=False
    )
    assert list(patients.columns[:3]) == ["patient_id", "timepoint", "scan_date"]
    assert patients[["patient_id", "timepoint"]].values.tolist() == [
        ["SMR-001", "2024-01-10"],
        ["SMR-001", "2024-04-12"],
        ["SMR-002", "2024-01-10"],
        ["SMR-002", "2024-04-12"],
        ["SMR-003", ""],
    ]
    # a patient without time points takes its scan date from the DICOM StudyDate
    ds = pydicom.dcmread(next((SAMPLE / "SMR-003" / "dicom").iterdir()), stop_before_pixels=True)
    want = f"{ds.StudyDate[:4]}-{ds.StudyDate[4:6]}-{ds.StudyDate[6:8]}"
    assert patients.loc[4, "scan_date"] == want
    for table in ("vertebrae", "lesions"):
        df = pd.read_csv(out / f"{table}.csv", dtype=str, keep_default_na=False)
        assert list(df.columns[:3]) == ["patient_id", "timepoint", "scan_date"]
        assert set(df["timepoint"]) == {"2024-01-10", "2024-04-12", ""}
    # the same scan at both time points measures the same
    a, b = patients.iloc[0], patients.iloc[1]
    assert a["total_lesion_volume_mm3"] == b["total_lesion_volume_mm3"]
    assert sorted(p.name for p in (out / "qc").glob("*.png")) == [
        "SMR-001_2024-01-10.png",
        "SMR-001_2024-04-12.png",
        "SMR-002_2024-01-10.png",
        "SMR-002_2024-04-12.png",
        "SMR-003.png",
    ]
    # the cross-sectional analysis counts each patient once, at baseline, with the baseline VAS
    linked = pd.read_csv(out / "linked.csv", dtype={"timepoint": str}, keep_default_na=False)
    assert linked["patient_id"].tolist() == ["SMR-001", "SMR-002", "SMR-003"]
    assert linked["vas"].tolist() == [2.0, 3.0, 6.0]
    # a rerun resumes: nothing is measured again
    again = run_cohort(longitudinal, out)
    assert again.skipped == 5 and again.done == 0


def test_failed_time_point_is_one_row_of_errors_csv(longitudinal: Path, tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    shutil.copytree(longitudinal, cohort)
    (cohort / "SMR-002" / "2024-04-12" / "vertebrae_mask.nii.gz").write_bytes(b"broken")
    out = tmp_path / "out"
    summary = run_cohort(cohort, out)
    assert summary.exit_code == 1 and summary.failed == 1 and summary.failed_ids == ("SMR-002_2024-04-12",)
    errors = pd.read_csv(out / "errors.csv", dtype=str, keep_default_na=False)
    assert list(errors.columns[:3]) == ["patient_id", "timepoint", "scan_date"]
    assert errors[["patient_id", "timepoint", "scan_date"]].values.tolist() == [
        ["SMR-002", "2024-04-12", "2024-04-12"]
    ]
    patients = pd.read_csv(out / "patients.csv", dtype=str, keep_default_na=False)
    assert ("SMR-002", "2024-01-10") in set(zip(patients["patient_id"], patients["timepoint"], strict=True))


def test_single_time_point_cohort_has_no_time_point_columns(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    for pid in ("SMR-001", "SMR-003"):
        shutil.copytree(SAMPLE / pid, cohort / pid)
    out = tmp_path / "out"
    assert run_cohort(cohort, out).exit_code == 0
    for table in ("vertebrae", "patients", "lesions", "errors"):
        header = (out / f"{table}.csv").read_text().splitlines()[0].split(",")
        assert "timepoint" not in header and "scan_date" not in header
