"""Issue 16, identifiers: no re-identification by enumeration, no identifier in an error text.

Each test is written from the defect's description and fails on the code before the fix:

* without ``--patient-id`` a DICOM case was named by ``sha256("spinemri" + PatientID)``: the salt
  is public, so a numeric MRN is recovered by hashing every candidate;
* error texts quoted header values: a birth date from a highdicom message (``--dicom-seg``) and
  the SeriesDescription of every series when series selection failed reached errors.csv, the
  log, stderr and ``spinemri info``.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import os
import shutil
import stat
from pathlib import Path

import pydicom
import pytest

from spinemri.cli import main
from spinemri.io.cohort_write import CohortSpec, write_cohort

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "SMR-003"
SMALL = {"first_level": "T11", "last_level": "S1", "rows": 128, "cols": 96, "n_slices": 9, "supersample": 2}

PLANTED = {
    "PatientName": "Doewhistle^Janeidentifier",
    "PatientID": "SECRETID4711",
    "PatientBirthDate": "19470203",
    "SeriesDescription": "SAG STIR Maxinerella Roeburt",
    "InstitutionName": "Elsewherington Clinic",
}
NEEDLES = (
    "Doewhistle",
    "Janeidentifier",
    "SECRETID4711",
    "19470203",
    "Maxinerella",
    "Roeburt",
    "Elsewherington",
)


def _sample_dicom(tmp_path: Path, mrn: str) -> Path:
    dicom = tmp_path / "case" / "dicom"
    shutil.copytree(SAMPLE / "dicom", dicom)
    for f in dicom.iterdir():
        ds = pydicom.dcmread(f)
        ds.PatientID = mrn
        ds.save_as(f)
    return dicom


def _measure_anon(tmp_path: Path, dicom: Path, out: Path) -> str:
    assert (
        main(["measure", str(dicom), "--mask", str(SAMPLE / "vertebrae_mask.nii.gz"), "--out", str(out)]) == 0
    )
    row = (out / "patients.csv").read_text().splitlines()[1]
    pid = row.split(",")[0]
    assert pid.startswith("anon-")
    return pid[len("anon-") :]


def _use_key_file(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.delenv("SPINEMRI_ID_KEY", raising=False)
    monkeypatch.delenv("SPINEMRI_ID_SALT", raising=False)
    monkeypatch.setenv("SPINEMRI_ID_KEY_FILE", str(path))


def _output_bytes(out: Path) -> dict[Path, bytes]:
    files = {}
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            files[f] = gzip.decompress(data) if f.name.endswith(".gz") else data
    return files


def test_pseudonym_changes_with_the_key_and_is_stable_with_the_same_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spinemri.io.dicom.assemble import patient_id_hash

    monkeypatch.delenv("SPINEMRI_ID_SALT", raising=False)
    monkeypatch.setenv("SPINEMRI_ID_KEY", "k" * 32)
    first = patient_id_hash("MRN0042")
    assert first == patient_id_hash("MRN0042")
    assert first == hmac.new(b"k" * 32, b"MRN0042", hashlib.sha256).hexdigest()[:16]
    monkeypatch.setenv("SPINEMRI_ID_KEY", "q" * 32)
    assert patient_id_hash("MRN0042") != first
    # the public salt set explicitly is no key: it is ignored
    monkeypatch.delenv("SPINEMRI_ID_KEY")
    _use_key_file(monkeypatch, tmp_path / "cfg" / "id_key")
    monkeypatch.setenv("SPINEMRI_ID_SALT", "spinemri")
    assert patient_id_hash("MRN0042") != hashlib.sha256(b"spinemriMRN0042").hexdigest()[:16]
    # a key that can be guessed is refused
    from spinemri.errors import ConfigError

    monkeypatch.setenv("SPINEMRI_ID_KEY", "short")
    with pytest.raises(ConfigError, match="fewer than 16"):
        patient_id_hash("MRN0042")


def test_key_file_is_created_0600_outside_the_outputs_and_never_written_into_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "config" / "spinemri" / "id_key"
    _use_key_file(monkeypatch, key_file)
    dicom = _sample_dicom(tmp_path, "MRN0042")
    out = tmp_path / "out"
    pseudonym = _measure_anon(tmp_path, dicom, out)
    assert key_file.is_file() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert pseudonym == hmac.new(key.encode(), b"MRN0042", hashlib.sha256).hexdigest()[:16]
    for f, data in _output_bytes(out).items():
        assert key.encode() not in data, f"the key is in {f}"
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["id_key"]["fingerprint"] == hashlib.sha256(key.encode()).hexdigest()[:8]
    assert provenance["id_key"]["scheme"] == "hmac-sha256"
    # same key, same pseudonym (re-linking works); a new key, a new pseudonym
    assert _measure_anon(tmp_path, dicom, tmp_path / "out2") == pseudonym
    key_file.unlink()
    assert _measure_anon(tmp_path, dicom, tmp_path / "out3") != pseudonym


def test_key_file_inside_out_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    _use_key_file(monkeypatch, out / "keys" / "id_key")
    dicom = _sample_dicom(tmp_path, "MRN0042")
    args = ["measure", str(dicom), "--mask", str(SAMPLE / "vertebrae_mask.nii.gz"), "--out", str(out)]
    assert main(args) == 2
    assert "key" in capsys.readouterr().err
    cohort = tmp_path / "cohort"
    (cohort / "P1").mkdir(parents=True)
    assert main(["run", str(cohort), "--out", str(out), "--quiet"]) == 2
    assert "outside the outputs" in capsys.readouterr().err
    assert not (out / "keys" / "id_key").exists()


def test_numeric_mrn_is_not_recovered_by_enumeration_with_the_public_salt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_key_file(monkeypatch, tmp_path / "cfg" / "id_key")
    mrn = "00471133"
    pseudonym = _measure_anon(tmp_path, _sample_dicom(tmp_path, mrn), tmp_path / "out")
    candidates = [f"{n:08d}" for n in range(470_000, 472_000)]
    assert mrn in candidates
    public = {hashlib.sha256(("spinemri" + c).encode()).hexdigest()[:16] for c in candidates}
    assert pseudonym not in public, "the MRN was recovered by hashing candidates with the public salt"
    # with the key the same enumeration finds it: the check is not vacuous
    key = (tmp_path / "cfg" / "id_key").read_text().strip().encode()
    keyed = {hmac.new(key, c.encode(), hashlib.sha256).hexdigest()[:16]: c for c in candidates}
    assert keyed.get(pseudonym) == mrn


# --------------------------------------------------------------------------- scrubbing


def _plant(folder: Path, **override: str) -> None:
    for f in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        for key, value in {**PLANTED, **override}.items():
            setattr(ds, key, value)
        ds.save_as(f)


def _add_second_series(dicom: Path) -> None:
    """A second sagittal STIR series in the same folder: series selection ties (no --series)."""
    from pydicom.uid import generate_uid

    second = dicom / "second"
    second.mkdir()
    for f in sorted(dicom.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(ds.SeriesInstanceUID), "second"])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), "second"])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = int(ds.SeriesNumber) + 1
        ds.save_as(second / f.name)


@pytest.fixture(scope="module")
def dicom_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("idcohort")
    write_cohort(root, CohortSpec(n_patients=2, seed=5, format="dicom"), **SMALL)
    return root


def _assert_clean(where: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for needle in NEEDLES:
        assert needle.encode() not in data, f"{needle!r} found in {where}"


@pytest.fixture
def fresh_logging() -> object:
    """The ``spinemri`` logger without the handlers earlier ``main()`` calls of this process added."""
    import logging

    logger = logging.getLogger("spinemri")
    saved = logger.handlers[:]
    logger.handlers = []
    yield
    for h in logger.handlers:
        h.close()
    logger.handlers = saved


def test_no_identifier_in_errors_log_stderr_info_or_outputs(
    fresh_logging: object,
    dicom_cohort: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import spinemri.io.dicom.seg as seg

    cohort = tmp_path / "cohort"
    shutil.copytree(dicom_cohort, cohort)
    dicoms = sorted(p for p in cohort.glob("*/dicom") if p.is_dir())
    assert len(dicoms) == 2
    for d in dicoms:
        _plant(d)
    _add_second_series(dicoms[1])  # (b): two equally good series, no --series

    def failing_seg(*args: object, **kwargs: object) -> bytes:  # (a): as highdicom quotes the header
        raise ValueError(
            f"Value of data element 'Patient's Birth Date' '{PLANTED['PatientBirthDate']}' of "
            f"'{PLANTED['PatientName']}' ({PLANTED['PatientID']}) is not a valid date"
        )

    monkeypatch.setattr(seg, "dicom_seg_bytes", failing_seg)
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    capsys.readouterr()
    assert main(["--log-file", str(log), "run", str(cohort), "--out", str(out), "--dicom-seg"]) == 1
    captured = capsys.readouterr()
    errors = (out / "errors.csv").read_text()
    assert "load_image" in errors and dicoms[1].parent.name in errors  # the failures are reported
    _assert_clean("stderr", captured.err)
    _assert_clean("stdout", captured.out)
    _assert_clean("the log file", log.read_bytes())
    for f, data in _output_bytes(out).items():
        _assert_clean(str(f), data)

    # measure: the same series-selection failure printed on stderr
    assert main(["measure", str(dicoms[1]), "--mask", str(dicoms[1].parent / "vertebrae_mask.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "equally good candidates" in err and "number" in err
    _assert_clean("measure's stderr", err)

    # info: no description by default, and the refusal scrubbed; descriptions only on request
    assert main(["info", str(dicoms[1])]) == 0
    info = capsys.readouterr().out
    assert "would not pick a series" in info
    _assert_clean("info", info)
    assert main(["info", str(dicoms[1]), "--show-descriptions"]) == 0
    assert PLANTED["SeriesDescription"] in capsys.readouterr().out


def test_scrub_text_removes_known_values_and_generic_patterns() -> None:
    from spinemri.io.scrub import REDACTED, identifiers_of, scrub_text

    found = identifiers_of(_dataset())
    assert {"Doewhistle", "Janeidentifier", "SECRETID4711", "19470203"} <= found
    text = "case SMR-001 /data/SMR-001/dicom: 'Doewhistle^Janeidentifier' SECRETID4711 Elsewherington Clinic"
    scrubbed = scrub_text(text, found, keep=("SMR-001",))
    assert "/data/SMR-001/dicom" in scrubbed and REDACTED in scrubbed
    _assert_clean("scrub_text", scrubbed)
    # generic patterns, without known values
    assert "19470203" not in scrub_text("Patient's Birth Date 19470203 invalid")
    assert "2026-01-05" in scrub_text("study date 2026-01-05")  # a date not near "birth" stays
    assert "Roe^Rick" not in scrub_text("name Roe^Rick is odd")
    assert scrub_text("series='^T2' matches nothing") == "series='^T2' matches nothing"
    assert scrub_text("spinemri SPINE", ["SPINE"]) == f"spinemri {REDACTED}"


def _dataset() -> pydicom.Dataset:
    ds = pydicom.Dataset()
    for key, value in PLANTED.items():
        setattr(ds, key, value)
    return ds


def test_conftest_keeps_the_key_out_of_the_real_home() -> None:
    assert "SPINEMRI_ID_KEY_FILE" in os.environ
    assert not Path(os.environ["SPINEMRI_ID_KEY_FILE"]).resolve().is_relative_to(Path.home() / ".config")
