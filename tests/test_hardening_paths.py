"""Issue 16: every path a run writes lies inside --out; one run at a time; no stale outputs; odd names.

Each test is written from a defect of the issue: a manifest ``patient_id`` holding ``../`` or an
absolute path wrote per-case files outside the output folder; two runs into one --out mixed their
tables; a rerun kept the QC pictures, masks and per-case tables of cases that now fail or left the
cohort; a ~240-character folder name (temporary file name over 255 bytes) and a Latin-1 folder name
(UnicodeEncodeError writing errors.csv) killed the run; --out inside the cohort folder made every
rerun discover the output folders as patients; --out naming a file gave a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spinemri
from spinemri.cli import main
from spinemri.errors import InputError
from spinemri.io.ids import MAX_SAFE_ID, safe_id
from spinemri.pipeline.state import case_dir

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
NIFTI_CASE = SAMPLE / "SMR-002"
REPO = Path(__file__).resolve().parents[1]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_any_id_gives_a_case_folder_inside_out(pid: str) -> None:
    out = Path("/tmp/spinemri-out")
    sid = safe_id(pid)
    assert sid not in ("", ".", "..") and "/" not in sid and "\\" not in sid and "\x00" not in sid
    assert len(sid) <= MAX_SAFE_ID and len(f".{sid}_lesions.nii.gz.XXXXXXXX.tmp.nii.gz".encode()) < 255
    target = (case_dir(out, pid) / "state.json").resolve()
    assert target.is_relative_to(out.resolve() / "cases")
    assert safe_id(sid) == sid


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_hostile_manifest_ids_write_nothing_outside_out(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    image, mask = NIFTI_CASE / "image.nii.gz", NIFTI_CASE / "vertebrae_mask.nii.gz"
    ids = ["../evil", f"{tmp_path}/abs_evil", "x/../../y", "..", "a" * 240, "ok-1"]
    manifest = work / "manifest.csv"
    manifest.write_text(
        "patient_id,image,mask\n" + "".join(f'"{i}",{image},{mask}\n' for i in ids), encoding="utf-8"
    )
    out = work / "out"
    before = _files_under(tmp_path)
    summary = spinemri.run_cohort(work, out, manifest=manifest)
    assert summary.failed == 0 and summary.done == len(ids)
    new = _files_under(tmp_path) - before
    outside = [p for p in new if not p.resolve().is_relative_to(out.resolve())]
    assert not outside, f"written outside --out: {outside}"
    assert not (tmp_path / "evil").exists() and not (tmp_path / "abs_evil").exists()
    # every case has its own folder, mask and picture (no two ids share files)
    assert len(list((out / "cases").iterdir())) == len(ids)
    assert len(list((out / "qc").glob("*.png"))) == len(ids)


def _cohort(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(NIFTI_CASE, root / name)
    return root


def test_long_and_latin1_folder_names(tmp_path: Path) -> None:
    cohort = _cohort(tmp_path / "cohort", ["b" * 240, "plain"])
    latin1 = os.fsdecode(b"caf\xe9")  # a folder made on a Latin-1 system: not UTF-8
    try:
        shutil.copytree(NIFTI_CASE, cohort / latin1)
    except (UnicodeEncodeError, OSError):  # pragma: no cover - a file system that refuses such names
        pytest.skip("this file system does not store non-UTF-8 names")
    out = tmp_path / "out"
    summary = spinemri.run_cohort(cohort, out)
    assert summary.failed == 0 and summary.done == 3
    text = (out / "patients.csv").read_text(encoding="utf-8")
    assert "café" in text and "b" * 240 in text and "plain" in text
    assert (out / "errors.csv").exists()


def test_out_inside_the_cohort_is_not_a_patient(tmp_path: Path) -> None:
    cohort = _cohort(tmp_path / "cohort", ["P1", "P2"])
    out = cohort / "results"
    first = spinemri.run_cohort(cohort, out)
    second = spinemri.run_cohort(cohort, out)
    assert (first.n_cases, first.failed) == (2, 0)
    assert (second.n_cases, second.failed, second.skipped) == (2, 0, 2)


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cohort = _cohort(tmp_path / "cohort", ["P1"])
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        spinemri.run_cohort(cohort, target)
    assert main(["run", str(cohort), "--out", str(target), "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_rerun_removes_outputs_of_cases_that_now_fail_or_left(tmp_path: Path) -> None:
    cohort = _cohort(tmp_path / "cohort", ["P1", "P2", "P3"])
    out = tmp_path / "out"
    spinemri.run_cohort(cohort, out)
    assert {p.name for p in (out / "qc").iterdir()} == {"P1.png", "P2.png", "P3.png"}
    shutil.rmtree(cohort / "P3")  # left the cohort
    (cohort / "P2" / "image.nii.gz").write_bytes(b"not a nifti")  # now fails
    summary = spinemri.run_cohort(cohort, out)
    assert summary.failed == 1
    assert {p.name for p in (out / "qc").iterdir()} == {"P1.png"}
    assert {p.name for p in (out / "masks").iterdir()} == {"P1_lesions.nii.gz"}
    assert {p.name for p in (out / "cases").iterdir()} == {"P1"}
    assert "P2" in (out / "errors.csv").read_text(encoding="utf-8")


def test_a_second_run_into_the_same_out_is_refused(tmp_path: Path) -> None:
    cohort = _cohort(tmp_path / "cohort", ["P1"])
    out = tmp_path / "out"
    out.mkdir()
    # hold the lock from another process, as a running `spinemri run` does
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from spinemri.pipeline.cohort import output_lock\n"
            "with output_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=rf"in use by another spinemri run \(process {holder.pid}\)"):
            spinemri.run_cohort(cohort, out)
        assert not (out / "vertebrae.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    # the kernel released the killed holder's lock: the rerun goes ahead
    assert spinemri.run_cohort(cohort, out).done == 1
