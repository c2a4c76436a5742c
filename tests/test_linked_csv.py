"""One CSV writer: ``spinemri run`` and ``spinemri link`` write byte-identical linked.csv (issue 12)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from spinemri.cli import main
from spinemri.errors import SpinemriWarning
from spinemri.io.cohort_write import CohortSpec, write_cohort
from spinemri.io.ids import choose_patient_id, safe_id

SMALL = {"first_level": "T11", "last_level": "S1", "rows": 128, "cols": 96, "n_slices": 9, "supersample": 2}


def test_run_and_link_write_identical_linked_csv(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    write_cohort(cohort, CohortSpec(n_patients=5, seed=11, format="nifti", id_noise=0.6), **SMALL)
    run_out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        assert main(["run", str(cohort), "--out", str(run_out), "--quiet"]) == 0
    assert (run_out / "linked.csv").is_file()
    link_out = tmp_path / "link" / "linked.csv"
    rc = main(["link", str(run_out / "patients.csv"), str(cohort / "clinical.csv"), "--out", str(link_out)])
    assert rc == 0
    assert link_out.read_bytes() == (run_out / "linked.csv").read_bytes()
    assert (link_out.parent / "link_report.csv").read_bytes() == (run_out / "link_report.csv").read_bytes()


@pytest.mark.parametrize(
    "given, path, meta, expected",
    [
        ("P01", "x/img.nii.gz", {"patient_id_hash": "abc"}, "P01"),
        (None, "x/dicom", {"patient_id_hash": "abc"}, "anon-abc"),
        (None, "x/case7.nii.gz", {}, "case7"),
        ("", "x/scan.MHA", {}, "scan"),
        (None, "x/.nii.gz", {}, "patient"),
    ],
)
def test_patient_id_policy(given: str | None, path: str, meta: dict[str, str], expected: str) -> None:
    assert choose_patient_id(given, path, meta) == expected


@pytest.mark.parametrize(
    "pid, expected",
    [("SMR-001", "SMR-001"), ("a b/c", "a_b_c-"), ("..x..", "x-"), ("///", "patient-"), ("../evil", "evil-")],
)
def test_safe_id(pid: str, expected: str) -> None:
    # safe ids are kept; any other id gets its cleaned form plus 10 hex digits of its SHA-256
    got = safe_id(pid)
    assert (
        got == expected
        if not expected.endswith("-")
        else (got.startswith(expected) and len(got) == len(expected) + 10)
    )


def test_safe_ids_of_distinct_ids_differ() -> None:
    ids = ["a/b", "a_b", "a b", "a__b", "A_B", "..a_b", "a_b.", "x" * 300, "x" * 301]
    assert len({safe_id(i) for i in ids}) == len(ids)
