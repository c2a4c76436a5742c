"""Issue 17, item 6 "Clean exits" (the rest of it): exit codes follow docs/decisions/0010 everywhere.

* ``measure --out`` into a non-empty folder refuses (exit 2) unless ``--force``, which clears only
  spinemri's own earlier outputs; ``run --out`` still resumes;
* ``analyze`` on a table that is no linked table is one error (exit 2), not ten warnings and exit 0;
* ``info`` says which DICOM series the loader can load, and never "picks" one it refuses;
* ``measure`` without ``--patient-id`` names the patient as a cohort run does (the case folder);
* ``--scheduler`` without dask.distributed is bad usage (exit 2) naming ``pip install "spinemri[dask]"``;
* a table of bad invocations of every sub-command: exit 2, one line, never a traceback.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spinemri.cli import main
from spinemri.errors import DicomError, InputError, SpinemriError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
IMAGE = SAMPLE / "SMR-002" / "image.nii.gz"
MASK = SAMPLE / "SMR-002" / "vertebrae_mask.nii.gz"


def _exit(argv: list[str]) -> int:
    """main(argv)'s exit status, also when argparse exits through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _one_error_line(err: str, command: str) -> str:
    """The one ``spinemri COMMAND: error: ...`` line of stderr (warnings aside), no traceback."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning")]
    errors = [ln for ln in lines if ln.startswith(f"spinemri {command}: error: ")]
    assert len(errors) == 1, err
    return errors[0]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _measure(out: Path, *extra: str) -> int:
    return main(["measure", str(IMAGE), "--mask", str(MASK), "--out", str(out), *extra])


# --- 1. measure --out: a non-empty folder is refused unless --force ---------------------------------


def test_measure_refuses_a_folder_with_earlier_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _measure(out, "--patient-id", "A") == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _measure(out, "--patient-id", "B") == 2
    line = _one_error_line(capsys.readouterr().err, "measure")
    assert str(out) in line and "--force" in line and "another folder" in line and "not empty" in line
    # nothing was touched
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_measure_refuses_a_folder_with_foreign_files_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    assert _measure(out) == 2
    line = _one_error_line(capsys.readouterr().err, "measure")
    assert str(out) in line and "notes.txt" in line and "--force" in line
    assert _tree(out) == {"notes.txt"}
    # --force writes beside the user's file and leaves it alone
    assert _measure(out, "--force", "--patient-id", "P1") == 0
    assert (out / "notes.txt").read_text() == "my notes\n"
    assert {"notes.txt", "patients.csv", "vertebrae.csv", "lesions.csv", "qc/P1.png"} <= _tree(out)


def test_measure_into_an_empty_existing_folder_needs_no_force(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    (out / ".DS_Store").write_bytes(b"\0")  # a file manager's, not the user's: the folder counts as empty
    assert _measure(out, "--patient-id", "P1") == 0
    assert (out / "patients.csv").is_file()
    assert (out / ".DS_Store").read_bytes() == b"\0"


def test_force_clears_only_spinemris_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _measure(out, "--patient-id", "A") == 0
    first = _tree(out)
    assert {"qc/A.png", "masks/A_lesions.nii.gz"} <= first
    # the user's files: at the top, inside qc/, and a folder of their own
    (out / "notes.txt").write_text("keep me\n")
    (out / "qc" / "README.txt").write_text("keep me too\n")
    (out / "mine").mkdir()
    (out / "mine" / "vertebrae.csv").write_text("not spinemri's: a user's sub-folder\n")
    (out / "vertebrae.csv.bak").write_text("a user's backup\n")
    capsys.readouterr()
    assert _measure(out, "--patient-id", "B", "--force") == 0
    err = capsys.readouterr().err
    assert "removed" in err and "kept 4 entries" in err
    after = _tree(out)
    # the earlier case's pictures and masks are gone: nothing of A accumulates beside B
    assert not {"qc/A.png", "masks/A_lesions.nii.gz", "viewer/A.html"} & after
    assert {"qc/B.png", "masks/B_lesions.nii.gz"} <= after
    assert (out / "notes.txt").read_text() == "keep me\n"
    assert (out / "qc" / "README.txt").read_text() == "keep me too\n"
    assert (out / "mine" / "vertebrae.csv").read_text() == "not spinemri's: a user's sub-folder\n"
    assert (out / "vertebrae.csv.bak").read_text() == "a user's backup\n"
    # every file of the first run has its counterpart for B, and nothing else of spinemri's is left
    expected = {f.replace("A", "B") for f in first} | {
        "notes.txt",
        "qc/README.txt",
        "mine/vertebrae.csv",
        "vertebrae.csv.bak",
    }
    assert after == expected
    assert pd.read_csv(out / "patients.csv")["patient_id"].tolist() == ["B"]


@pytest.mark.parametrize("dicom_seg", [False, True])
def test_the_list_of_measure_outputs_is_what_measure_writes(tmp_path: Path, dicom_seg: bool) -> None:
    """Every file ``measure --out`` writes is one --force may remove, and nothing else is written
    (a new output must join spinemri.pipeline.outdir's list, or --force would let it pile up)."""
    from spinemri.pipeline.outdir import foreign_entries, measure_outputs

    out = tmp_path / "out"
    case = SAMPLE / "SMR-001"
    if dicom_seg:
        pytest.importorskip(
            "highdicom", reason="--dicom-seg needs the optional highdicom (spinemri[dicom-seg])"
        )
        argv = ["measure", str(case / "dicom"), "--mask", str(case / "vertebrae_mask.nii.gz"), "--dicom-seg"]
    else:
        argv = ["measure", str(IMAGE), "--mask", str(MASK)]
    assert main([*argv, "--out", str(out), "--patient-id", "P1"]) == 0
    written = _tree(out)
    assert {"patients.csv", "vertebrae.csv", "lesions.csv", "provenance.json", "qc/P1.png"} <= written
    assert ("masks/P1_lesions.seg.dcm" in written) == dicom_seg
    assert {str(p.relative_to(out)) for p in measure_outputs(out)} == written
    assert foreign_entries(out) == []


def test_force_removes_empty_subfolders_and_temp_leftovers(tmp_path: Path) -> None:
    from spinemri.pipeline.outdir import clear_outputs, foreign_entries, measure_outputs

    out = tmp_path / "out"
    (out / "qc").mkdir(parents=True)
    (out / "masks").mkdir()
    names = {
        "vertebrae.csv": True,
        "lesions.parquet": True,
        "provenance.json": True,
        ".vertebrae.abc_12x.tmp.csv": True,  # an interrupted atomic write (io.atomic's naming)
        "qc/P1.png": True,
        "qc/.P1.k2j3h4.tmp.png": True,
        "masks/P1_lesions.nii.gz": True,
        "masks/.P1_lesions.nii.q9w8e7.tmp.nii.gz": True,
        "masks/P1_lesions.seg.dcm": True,
        "masks/P1_vertebrae.nii.gz": False,  # not a name measure writes
        "qc/notes.md": False,
        "summary.txt": False,
        ".hidden": False,
    }
    for name in names:
        (out / name).write_text("x")
    (out / "link.csv").symlink_to(out / "summary.txt")
    (out / "patients.csv").symlink_to(out / "summary.txt")  # a link is never spinemri's own file
    ours = {str(p.relative_to(out)) for p in measure_outputs(out)}
    assert ours == {n for n, mine in names.items() if mine}
    foreign = {str(p.relative_to(out)) for p in foreign_entries(out)}
    assert foreign == {n for n, mine in names.items() if not mine} | {"link.csv", "patients.csv"}
    clear_outputs(out)
    assert _tree(out) == {n for n, mine in names.items() if not mine} | {"link.csv", "patients.csv"}
    (out / "qc" / "notes.md").unlink()
    (out / "masks" / "P1_vertebrae.nii.gz").unlink()
    (out / "qc" / "P2.png").write_text("x")
    clear_outputs(out)
    assert not (out / "qc").exists() and not (out / "masks").exists()  # emptied: removed


def test_measure_out_is_a_file_and_force_without_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert _measure(f) == 2
    assert "is a file" in _one_error_line(capsys.readouterr().err, "measure")
    assert main(["measure", str(IMAGE), "--mask", str(MASK), "--force"]) == 2
    assert "--force" in _one_error_line(capsys.readouterr().err, "measure")
    assert f.read_text() == "x"


def test_run_out_still_resumes_and_keeps_foreign_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cohort = tmp_path / "cohort"
    shutil.copytree(SAMPLE / "SMR-002", cohort / "P1")
    out = tmp_path / "out"
    assert main(["run", str(cohort), "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine\n")
    capsys.readouterr()
    assert main(["run", str(cohort), "--out", str(out)]) == 0  # a non-empty folder: resumed, not refused
    assert "1 skipped (unchanged)" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine\n"


# --- 2. analyze on a table that is no linked table ---------------------------------------------------

IMAGING = {
    "patient_id": ["A", "B", "C", "D"],
    "n_involved": [1, 2, 3, 0],
    "lumbar_involved": [True, False, True, False],
    "dominant_region": ["lumbar", "thoracic", "lumbar", "none"],
    "hi_area_ratio": [0.1, 0.2, 0.3, 0.0],
    "hi_volume_ratio": [0.1, 0.2, 0.3, 0.0],
}


@pytest.mark.parametrize(
    ("columns", "missing"),
    [
        (IMAGING, ["vas"]),  # patients.csv of measure/run, before linking
        (
            {"patient_id": ["A", "B", "C"], "vas": [1, 5, 8], "age": [50, 60, 70]},
            ["dominant_region"],
        ),  # clinical
        ({k: v for k, v in {**IMAGING, "vas": [1, 2, 3, 4]}.items() if k != "patient_id"}, ["patient_id"]),
        (
            {k: v for k, v in {**IMAGING, "vas": [1, 2, 3, 4]}.items() if k != "hi_area_ratio"},
            ["hi_area_ratio"],
        ),
        ({**IMAGING, "vas": [None, None, None, None]}, ["no row has a VAS"]),
    ],
    ids=["patients-csv", "clinical-csv", "no-patient-id", "no-hi-area-ratio", "vas-empty"],
)
def test_analyze_unlinked_table_is_one_error_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], columns: dict[str, list[object]], missing: list[str]
) -> None:
    table = tmp_path / "table.csv"
    pd.DataFrame(columns).to_csv(table, index=False)
    out = tmp_path / "analysis"
    assert main(["analyze", str(table), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    line = _one_error_line(err, "analyze")
    assert "warning" not in err  # one error, not the analyses' warnings
    assert str(table) in line and "spinemri link" in line and "--clinical" in line
    for m in missing:
        assert m in line
    assert not out.exists()  # nothing written
    from spinemri.commands.analyze import UnlinkedTableError

    with pytest.raises(UnlinkedTableError) as info:  # --debug: the SpinemriError itself
        main(["--debug", "analyze", str(table), "--out", str(out)])
    assert isinstance(info.value, InputError) and isinstance(info.value, SpinemriError)


def test_analyze_a_linked_table_still_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 12
    table = tmp_path / "linked.csv"
    pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "vas": rng.integers(0, 11, n),
            "n_involved": rng.integers(0, 6, n),
            "lumbar_involved": rng.random(n) > 0.5,
            "dominant_region": rng.choice(["lumbar", "thoracic"], n),
            "hi_area_ratio": rng.random(n) / 3,
            "hi_volume_ratio": rng.random(n) / 3,
        }
    ).to_csv(table, index=False)
    assert main(["analyze", str(table), "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "summary.json").is_file()


# --- 3. info: the series the loader can load ----------------------------------------------------------

SAG = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


# --- phantom OUT_DIR: never mixed with what is there ----------------------------------------------

_SMALL = ["--rows", "64", "--cols", "48", "--slices", "5"]


def test_phantom_refuses_a_non_empty_folder_and_force_replaces_only_its_cohort(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ph"
    assert main(["phantom", str(out), "--patients", "3", *_SMALL]) == 0
    (out / "notes.txt").write_text("mine")
    before = _tree(out)
    capsys.readouterr()
    assert _exit(["phantom", str(out), "--patients", "2", *_SMALL]) == 2
    line = _one_error_line(capsys.readouterr().err, "phantom")
    assert "not empty" in line and "--force" in line
    assert _tree(out) == before  # nothing written, nothing removed
    assert main(["phantom", str(out), "--patients", "2", "--force", *_SMALL]) == 0
    patients = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert patients == ["SMR-001", "SMR-002"]  # SMR-003 of the first cohort is gone, not read as a patient
    assert (out / "notes.txt").read_text() == "mine"
    assert len(pd.read_csv(out / "truth.csv")) == 2


def test_phantom_force_refuses_a_folder_without_a_phantom_cohort(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    (out / "SMR-001").mkdir(parents=True)
    (out / "SMR-001" / "image.nii.gz").write_bytes(b"not mine to delete")
    assert _exit(["phantom", str(out), "--force", *_SMALL]) == 2
    assert "no truth.csv" in _one_error_line(capsys.readouterr().err, "phantom")
    assert _tree(out) == {"SMR-001/image.nii.gz"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["phantom", str(empty), "--patients", "1", *_SMALL]) == 0  # an empty folder needs no --force


def _dicom(path: Path, *, x: float, uid: str, number: int, desc: str, echo: float = 30.0) -> None:
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
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [x, 0.0, 0.0], list(SAG)
    ds.EchoTime = echo
    ds.PixelSpacing = [1.0, 1.0]
    ds.Rows, ds.Columns = 3, 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.full((3, 2), 100, "<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _study_with_4d(root: Path, four_d: str) -> Path:
    """A sagittal T1 (series 2) and a sagittal STIR (series 3); the series named ``four_d`` is 4-D
    (two echoes at each of its 4 slice positions)."""
    for number, desc, uid in ((2, "t1_tse_sag", "1.2.3.20"), (3, "STIR_sag", "1.2.3.30")):
        for k in range(4):
            _dicom(root / desc / f"{k}a.dcm", x=-k, uid=uid, number=number, desc=desc, echo=30.0)
            if desc == four_d:
                _dicom(root / desc / f"{k}b.dcm", x=-k, uid=uid, number=number, desc=desc, echo=90.0)
    return root


def _info_rows(out: str) -> dict[str, str]:
    return {ln.split()[1]: ln for ln in out.splitlines() if ln.startswith("  1.2.3.")}


def test_info_never_picks_a_4d_series_the_loader_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spinemri import load_volume

    root = _study_with_4d(tmp_path / "study", four_d="STIR_sag")
    # the loader's truth, independently: the default pick (the STIR) is refused as 4-D, series 2 loads
    with pytest.raises(DicomError, match="4-D"):
        load_volume(root)
    assert load_volume(root, series="2").shape == (2, 3, 4)
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    rows = _info_rows(out)
    assert rows["3"].split()[-2:] == ["no", "no"]  # loadable no, localizer no
    assert rows["2"].split()[-2:] == ["yes", "no"]
    assert "load_volume picks" not in out
    assert any(ln.startswith("  not loadable: series #3") and "4-D" in ln for ln in out.splitlines())
    last = out.strip().splitlines()[-1]
    assert last.startswith("load_volume would pick by default series 3") and "cannot load it" in last
    assert "4-D" in last and "--series" in last and last.rstrip().endswith(": 2")
    # with --series 2 the pick loads
    assert main(["info", str(root), "--series", "2"]) == 0
    assert "load_volume picks with --series 2: series 2" in capsys.readouterr().out


def test_info_lists_a_4d_series_that_is_not_picked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spinemri import load_volume

    root = _study_with_4d(tmp_path / "study", four_d="t1_tse_sag")
    assert load_volume(root).meta["series_number"] == 3  # the loader picks the 3-D STIR
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert _info_rows(out)["2"].split()[-2] == "no"
    assert "load_volume picks by default: series 3" in out
    assert any(ln.startswith("  not loadable: series #2") and "4-D" in ln for ln in out.splitlines())


def test_info_loads_the_pick_to_be_sure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A refusal only the pixel data show (truncated PixelData): the pick is loaded, not just named."""
    import pydicom

    from spinemri import load_volume

    root = _study_with_4d(tmp_path / "study", four_d="none")
    for f in sorted((root / "STIR_sag").glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.PixelData = b"\0\0\0\0"  # 4 bytes where 3 x 2 x 2 = 12 belong
        ds.save_as(f)
    with pytest.raises(DicomError, match="truncated"):
        load_volume(root)
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert _info_rows(out)["3"].split()[-2] == "no" and _info_rows(out)["2"].split()[-2] == "yes"
    last = out.strip().splitlines()[-1]
    assert "cannot load it" in last and "truncated" in last and last.rstrip().endswith(": 2")


@pytest.mark.shared_data
def test_info_on_a_real_ge_epi_says_the_4d_series_cannot_load(capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case on real data: 15 positions x 10 time points, which ``info`` used to say it "picks"."""
    from conftest import shared_path

    from spinemri import load_volume

    folder = shared_path("dcm_qa_nih_ge_axial_epi", "In", "20180918GE", "mr_0004")
    with pytest.raises(DicomError, match="4-D"):
        load_volume(folder)
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "load_volume picks" not in out
    rows = [ln for ln in out.splitlines() if ln.startswith("  ") and ln.split()[-1] in ("yes", "no")]
    assert len(rows) == 1 and rows[0].split()[-2:] == ["no", "no"]
    last = out.strip().splitlines()[-1]
    assert "cannot load it" in last and "150 images at 15 slice positions" in last and "4-D" in last
    assert last.endswith("no series of this folder can be loaded")


# --- 4. measure's default patient id -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("SMR-017/image.nii.gz", "SMR-017"),  # a generic file name: the case folder, as a cohort run names it
        ("SMR-017/T2_STIR.nii.gz", "SMR-017"),
        ("SMR-017/anat/t2w.nii", "SMR-017"),  # generic folders are passed over
        ("SMR-017/dicom", "SMR-017"),  # a DICOM folder without PatientID
        ("study/case7.nii.gz", "case7"),  # a specific file name is kept
        # as BIDS discovery names it: the subject (the session is a time point, issue 14)
        ("bids/sub-04/ses-2/anat/sub-04_ses-2_T2w.nii.gz", "sub-04"),
        ("SMR-017/2024-03-01/image.nii.gz", "SMR-017"),  # a time point folder is passed over
        ("SMR-017/tp2/dicom", "SMR-017"),
        ("bids/sub-04/anat/sub-04_T2w.nii.gz", "sub-04"),
    ],
)
def test_name_id(tmp_path: Path, rel: str, expected: str) -> None:
    from spinemri.io.ids import choose_patient_id

    assert choose_patient_id(None, tmp_path / rel, {}) == expected
    assert choose_patient_id(None, tmp_path / rel, {"patient_id_hash": "abc"}) == "anon-abc"  # DESIGN §6
    assert choose_patient_id("P9", tmp_path / rel, {}) == "P9"


def test_measure_and_run_name_a_case_folder_alike(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    shutil.copytree(SAMPLE / "SMR-002", cohort / "P-17")
    assert (
        main(
            [
                "measure",
                str(cohort / "P-17" / "image.nii.gz"),
                "--mask",
                str(MASK),
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    assert main(["run", str(cohort), "--out", str(tmp_path / "r")]) == 0
    measured = pd.read_csv(tmp_path / "m" / "patients.csv", dtype={"patient_id": str})["patient_id"].tolist()
    ran = pd.read_csv(tmp_path / "r" / "patients.csv", dtype={"patient_id": str})["patient_id"].tolist()
    assert measured == ran == ["P-17"]
    assert (tmp_path / "m" / "qc" / "P-17.png").is_file() and (
        tmp_path / "m" / "masks" / "P-17_lesions.nii.gz"
    ).is_file()


# --- 5. --scheduler without dask.distributed -------------------------------------------------------


@pytest.mark.parametrize("missing", ["dask", "distributed"])
@pytest.mark.parametrize("scheduler", ["local", "tcp://127.0.0.1:8786"])
def test_scheduler_without_dask_is_usage_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    missing: str,
    scheduler: str,
) -> None:
    cohort = tmp_path / "cohort"
    shutil.copytree(SAMPLE / "SMR-002", cohort / "P1")
    monkeypatch.setitem(sys.modules, missing, None)  # `import dask` / `import distributed` -> ImportError
    out = tmp_path / "out"
    assert main(["run", str(cohort), "--out", str(out), "--scheduler", scheduler]) == 2
    line = _one_error_line(capsys.readouterr().err, "run")
    assert 'pip install "spinemri[dask]"' in line and f"--scheduler {scheduler}" in line
    assert not out.exists()  # refused before anything was written


# --- 6. every usage error of every sub-command exits 2, one line, no traceback -------------------


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("bad")
    shutil.copytree(SAMPLE / "SMR-002", t / "cohort" / "P1")
    (t / "afile").write_text("x")
    (t / "full").mkdir()
    (t / "full" / "notes.txt").write_text("x")
    (t / "empty_cohort").mkdir()
    (t / "patients.csv").write_text("patient_id,n_involved\nA,1\n")
    (t / "clin.csv").write_text("patient_id,vas\nA,5\n")
    (t / "empty.csv").write_text("")
    pd.DataFrame({**IMAGING, "vas": [1, 5, 8, 2]}).to_csv(t / "linked.csv", index=False)
    return t


IMG, MSK = str(IMAGE), str(MASK)
DICOM = str(SAMPLE / "SMR-001" / "dicom")
#: (command, argv with {t} for the fixture folder, text the one error line holds)
BAD_INVOCATIONS = [
    ("", [], "required"),
    ("", ["bogus"], "invalid choice"),
    ("", ["--bogus", "info", "x"], "unrecognized"),
    ("info", ["info", "{t}/nope"], "no such file"),
    ("info", ["info", "{t}/afile"], "unknown image format"),
    ("info", ["info", DICOM, "--series", "a{99999999999}"], "--series"),
    ("phantom", ["phantom", "{t}/ph", "--patients", "0"], "--patients"),
    ("phantom", ["phantom", "{t}/ph", "--rows", "5"], "--rows"),
    ("phantom", ["phantom", "{t}/ph", "--levels", "X1-Y2"], "--levels"),
    ("phantom", ["phantom", "{t}/ph", "--format", "png"], "--format"),
    ("phantom", ["phantom", "{t}/afile"], "not a folder"),
    ("measure", ["measure", "{t}/nope.nii.gz", "--mask", MSK], "nope.nii.gz"),
    ("measure", ["measure", IMG, "--mask", "{t}/nope.nii.gz"], "nope.nii.gz"),
    ("measure", ["measure", IMG], "--mask"),
    ("measure", ["measure", IMG, "--mask", MSK, "--method", "x"], "--method"),
    ("measure", ["measure", IMG, "--mask", MSK, "--k", "-1"], "--k"),
    ("measure", ["measure", IMG, "--mask", MSK, "--k", "abc"], "--k"),
    ("measure", ["measure", IMG, "--mask", MSK, "--margin-mm", "-1"], "--margin-mm"),
    ("measure", ["measure", IMG, "--mask", MSK, "--connectivity", "7"], "--connectivity"),
    ("measure", ["measure", IMG, "--mask", MSK, "--method", "fixed"], "fixed_threshold"),
    ("measure", ["measure", IMG, "--mask", MSK, "--scheme", "bogus"], "unknown label scheme"),
    ("measure", ["measure", IMG, "--mask", MSK, "--dicom-seg", "--out", "{t}/m1"], "--dicom-seg"),
    ("measure", ["measure", IMG, "--mask", MSK, "--out", "{t}/afile"], "is a file"),
    ("measure", ["measure", IMG, "--mask", MSK, "--out", "{t}/full"], "--force"),
    ("measure", ["measure", IMG, "--mask", MSK, "--force"], "--force"),
    (
        "measure",
        ["measure", IMG, "--mask", str(SAMPLE / "SMR-004" / "vertebrae_mask.nii.gz")],
        "--resample-mask",
    ),
    ("link", ["link", "{t}/nope.csv", "{t}/clin.csv", "--out", "{t}/l.csv"], "nope.csv"),
    ("link", ["link", "{t}/patients.csv", "{t}/nope.csv", "--out", "{t}/l.csv"], "nope.csv"),
    ("link", ["link", "{t}/patients.csv", "{t}/clin.csv"], "--out"),
    (
        "link",
        ["link", "{t}/patients.csv", "{t}/clin.csv", "--out", "{t}/l.csv", "--id-column", "zz"],
        "--id-column",
    ),
    (
        "link",
        ["link", "{t}/patients.csv", "{t}/clin.csv", "--out", "{t}/l.csv", "--vas-column", "zz"],
        "--vas-column",
    ),
    (
        "link",
        ["link", "{t}/patients.csv", "{t}/clin.csv", "--out", "{t}/l.csv", "--window-days", "-1"],
        "--window-days",
    ),
    ("link", ["link", "{t}/empty.csv", "{t}/clin.csv", "--out", "{t}/l.csv"], "empty"),
    ("link", ["link", "{t}/patients.csv", "{t}/clin.csv", "--out", "{t}/clin.csv"], "--out"),
    ("link", ["link", "{t}/patients.csv", "{t}/clin.csv", "--out", "{t}/full"], "is a folder"),
    ("analyze", ["analyze", "{t}/nope.csv", "--out", "{t}/a"], "nope.csv"),
    ("analyze", ["analyze", "{t}/patients.csv", "--out", "{t}/a"], "spinemri link"),
    ("analyze", ["analyze", "{t}/linked.csv", "--out", "{t}/a", "--cv-folds", "1"], "--cv-folds"),
    ("analyze", ["analyze", "{t}/linked.csv", "--out", "{t}/a", "--ci-level", "2"], "--ci-level"),
    ("analyze", ["analyze", "{t}/empty.csv", "--out", "{t}/a"], "empty"),
    ("analyze", ["analyze", "{t}/linked.csv", "--out", "{t}/afile"], "is a file"),
    ("run", ["run", "{t}/nope", "--out", "{t}/r"], "not found"),
    ("run", ["run", "{t}/afile", "--out", "{t}/r"], "not a folder"),
    ("run", ["run", "{t}/empty_cohort", "--out", "{t}/r"], "no patient folders"),
    ("run", ["run", "{t}/cohort"], "--out"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--workers", "0"], "--workers"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--scheduler", "bogus://x"], "--scheduler"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--series", "a{99999999999}"], "--series"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--k", "-1"], "--k"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--method", "x"], "--method"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--scheme", "bogus"], "--scheme"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--scheme", "{t}/nope.json"], "--scheme"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--manifest", "{t}/nope.csv"], "nope.csv"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/r", "--clinical", "{t}/nope.csv"], "nope.csv"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/afile"], "is a file"),
    ("demo", ["demo", "{t}/d", "--patients", "0"], "--patients"),
    ("demo", ["demo", "{t}/d", "--workers", "0"], "--workers"),
    ("demo", ["demo", "{t}/afile"], "not a folder"),
    # an output path under a file: was a NotADirectoryError / FileExistsError traceback after the work
    ("measure", ["measure", IMG, "--mask", MSK, "--out", "{t}/afile/sub"], "is a file, so"),
    ("analyze", ["analyze", "{t}/linked.csv", "--out", "{t}/afile/sub"], "is a file, so"),
    ("link", ["link", "{t}/patients.csv", "{t}/clin.csv", "--out", "{t}/afile/l.csv"], "is a file, so"),
    ("phantom", ["phantom", "{t}/afile/sub"], "is a file, so"),
    ("demo", ["demo", "{t}/afile/sub"], "is a file, so"),
    ("run", ["run", "{t}/cohort", "--out", "{t}/afile/sub"], "cannot be created"),
]


@pytest.mark.parametrize(
    ("command", "argv", "says"),
    BAD_INVOCATIONS,
    ids=[" ".join(a[:1] + a[2:])[:60] for _, a, _ in BAD_INVOCATIONS],
)
def test_every_usage_error_exits_2_with_one_line(
    bad: Path, capsys: pytest.CaptureFixture[str], command: str, argv: list[str], says: str
) -> None:
    args = [a.replace("{t}", str(bad)) for a in argv]
    assert _exit(args) == 2
    err = capsys.readouterr().err
    prefix = f"spinemri {command}" if command else "spinemri"
    line = (
        _one_error_line(err, command)
        if command
        else next(ln for ln in err.splitlines() if ln.startswith(f"{prefix}: error: "))
    )
    assert "Traceback" not in err
    assert says in line, line
    # nothing of the refused command was written
    for name in ("ph", "m1", "l.csv", "a", "r", "d"):
        assert not (bad / name).exists(), name
    assert _tree(bad / "full") == {"notes.txt"}
