"""Issue 17 item 5: one CLI vocabulary.

* ``measure`` and ``run`` take the same measurement options, ``link`` and ``run`` the same link
  options, each defined once (:mod:`spinemri.commands._options`); ``run --method fixed
  --fixed-threshold T`` measures every case with threshold T;
* decimal commas (``5,5``) are read when the VAS column says so unambiguously
  (``--decimal-comma`` / ``--no-decimal-comma`` decide otherwise), never silently excluded;
* clinical columns named like direct identifiers never reach an output unless kept;
* every option a message tells the user to pass exists on the commands that can show it.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from dataclasses import fields
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from spinemri.cli import build_parser, main
from spinemri.commands._options import SEGMENT_OPTIONS, link_params, segment_options
from spinemri.errors import LinkError
from spinemri.io.cohort_write import CohortSpec, write_cohort
from spinemri.linking import identifier_columns, link, vas_decimal_comma
from spinemri.params import MetricsParams, SegmentParams, measure_params
from spinemri.phantom.params import CONTRASTS

SRC = Path(__file__).resolve().parents[1] / "spinemri"
SMALL = {"first_level": "T12", "last_level": "L5", "rows": 96, "cols": 64, "n_slices": 7, "supersample": 1}
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w-])")


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, dict(sub.choices)


PARSER, COMMANDS = _parsers()
GLOBAL_OPTIONS = set(PARSER._option_string_actions)


def accepts(command: str, option: str) -> bool:
    """``spinemri COMMAND`` accepts ``option`` (its own, or a global option before the command)."""
    return option in COMMANDS[command]._option_string_actions or option in GLOBAL_OPTIONS


def assert_named_options_exist(command: str, text: str) -> None:
    """Every ``--option`` the text tells the user about is an option of ``command``."""
    missing = [o for o in OPTION.findall(text) if not accepts(command, o)]
    assert not missing, f"spinemri {command} does not accept {missing}, named in: {text}"


def _group(command: str, title: str) -> dict[str, tuple[object, ...]]:
    (group,) = [g for g in COMMANDS[command]._action_groups if g.title == title]
    return {
        a.option_strings[0]: (a.dest, a.default, a.type, a.choices, a.help, type(a).__name__)
        for a in group._group_actions
    }


# --- one definition of each option ------------------------------------------------------------


def test_every_segmentation_and_metrics_parameter_has_one_option() -> None:
    params = {f.name for f in fields(SegmentParams)} | {f.name for f in fields(MetricsParams)}
    exposed = [spec.field for spec in SEGMENT_OPTIONS]
    assert sorted(exposed) == sorted(params - {"method"})  # --method is its own option, with choices
    assert len({spec.flag for spec in SEGMENT_OPTIONS}) == len(SEGMENT_OPTIONS)


def test_measure_and_run_share_the_measurement_options() -> None:
    measure, run = _group("measure", "segmentation"), _group("run", "segmentation")
    assert measure == run
    assert {
        "--method",
        "--fixed-threshold",
        "--k",
        "--seed-k",
        "--polarity",
        "--connectivity",
        "--n4",
    } <= set(run)
    for option in ("--scheme", "--series", "--resample-mask", "--no-plausibility-check"):
        assert accepts("measure", option) and accepts("run", option), option


def test_link_and_run_share_the_link_options() -> None:
    link_group, run_group = _group("link", "linking"), _group("run", "linking")
    assert link_group == run_group
    expected = {
        "--id-column",
        "--vas-column",
        "--date-column",
        "--window-days",
        "--decimal-comma",
        "--keep-columns",
    }
    assert set(link_group) == expected
    assert accepts("run", "--no-decimal-comma") and accepts("link", "--no-decimal-comma")


def test_segmentation_options_parse_to_the_same_parameters_on_measure_and_run() -> None:
    given = [
        "--method", "local", "--k", "2.5", "--seed-k", "6", "--seed-depth-mm", "3", "--min-edge-step", "0.8",
        "--polarity", "dark", "--connectivity", "6", "--no-half-contrast", "--n4", "--neighbours", "3",
        "--intensity-erosion-mm", "1.5",
    ]  # fmt: skip
    m = PARSER.parse_args(["measure", "img.nii.gz", "--mask", "m.nii.gz", *given])
    r = PARSER.parse_args(["run", "cohort", "--out", "o", *given])
    assert segment_options(m) == segment_options(r)
    segment, metrics = measure_params({"method": r.method, **segment_options(r)})
    assert (segment.method, segment.k, segment.seed_k, segment.seed_depth_mm) == ("local", 2.5, 6.0, 3.0)
    assert (segment.min_edge_step, segment.polarity, segment.connectivity) == (0.8, "dark", 6)
    assert (segment.half_contrast, segment.n4, segment.neighbours) == (False, True, 3)
    assert segment.depth_background is True  # not given: the default
    assert metrics.intensity_erosion_mm == 1.5
    # options left out are not passed on at all (the resume hash of earlier runs is unchanged)
    assert segment_options(PARSER.parse_args(["run", "cohort", "--out", "o"])) == {}


def test_link_options_parse_to_link_params() -> None:
    base = ["link", "p.csv", "c.csv", "--out", "l.csv"]
    args = PARSER.parse_args(
        [*base, "--keep-columns", "MRN, Name", "--keep-columns", "DOB", "--decimal-comma"]
    )
    params = link_params(args)
    assert params.keep_columns == ("MRN", "Name", "DOB") and params.decimal_comma is True
    assert link_params(PARSER.parse_args([*base, "--no-decimal-comma"])).decimal_comma is False
    assert link_params(PARSER.parse_args(base)).decimal_comma is None
    run = PARSER.parse_args(["run", "c", "--out", "o", "--id-column", "Subject", "--window-days", "7"])
    assert (link_params(run).id_column, link_params(run).window_days) == ("Subject", 7.0)


@pytest.mark.parametrize(
    "argv, option",
    [
        (["run", "COHORT", "--out", "OUT", "--k", "0.1"], "--k"),
        (["run", "COHORT", "--out", "OUT", "--seed-depth-mm", "99"], "--seed-depth-mm"),
        (["measure", "IMG", "--mask", "M", "--k", "0.1"], "--k"),
        (["link", "P", "C", "--out", "L", "--window-days", "-1"], "--window-days"),
        (["run", "COHORT", "--out", "OUT", "--window-days", "-1"], "--window-days"),
        (["measure", "IMG", "--mask", "M", "--series", "a{99999999999}"], "--series"),
    ],
)
def test_a_refused_value_is_bad_usage_naming_its_option(
    argv: list[str], option: str, tmp_path: Path, capsys
) -> None:
    argv = [str(tmp_path / a) if a in ("COHORT", "OUT", "IMG", "M", "P", "C", "L") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {option}: " in err
    assert_named_options_exist(argv[0], err)


def test_method_fixed_without_threshold_names_an_option_run_accepts(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "o"), "--method", "fixed"]) == 2
    err = capsys.readouterr().err
    assert "--fixed-threshold" in err
    assert_named_options_exist("run", err)


# --- a phantom cohort: --method fixed end to end, decimal commas, identifier columns --------------

THRESHOLD = 535.0  # between the STIR phantom's marrow (220) and lesion (850) intensities
NAMES = ["Zyxwood^Quenby", "Xanthe^Moribund", "Quillfeather^Ottoline"]
BIRTH = ["1951-03-07", "1944-11-23", "1960-06-30"]
VAS_TEXT = ["5,5", "7", "3,25"]
VAS = [5.5, 7.0, 3.25]


def european_table(ids: list[str]) -> str:
    """A clinical table as Excel in a German locale saves it: ';' separator, decimal commas."""
    lines = ["Patient;PatientName;Geburtsdatum;MRN;E-Mail;Alter;Schmerz VAS"]
    for n, pid in enumerate(ids):
        lines.append(f"{pid};{NAMES[n]};{BIRTH[n]};MRN{n}77123;p{n}@example.org;{60 + n},5;{VAS_TEXT[n]}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vocab") / "cohort"
    write_cohort(root, CohortSpec(n_patients=3, seed=0), **SMALL)
    (root / "clinical.csv").unlink()
    return root


@pytest.fixture(scope="module")
def fixed_run(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ids = sorted(p.name for p in cohort.iterdir() if p.is_dir())
    clinical = tmp_path_factory.mktemp("clin") / "klinik.csv"
    clinical.write_text(european_table(ids), encoding="utf-8")
    out = tmp_path_factory.mktemp("vocab_out") / "out"
    argv = ["run", str(cohort), "--out", str(out), "--method", "fixed", "--fixed-threshold", str(THRESHOLD)]
    argv += ["--clinical", str(clinical), "--id-column", "Patient", "--vas-column", "Schmerz VAS", "--quiet"]
    assert main(argv) == 0
    return out


def test_run_method_fixed_uses_the_threshold_in_every_case(fixed_run: Path, cohort: Path) -> None:
    vertebrae = pd.read_csv(fixed_run / "vertebrae.csv", dtype={"patient_id": str})
    assert vertebrae["patient_id"].nunique() == 3
    assert (vertebrae["threshold"] == THRESHOLD).all()
    assert not (fixed_run / "errors.csv").exists() or pd.read_csv(fixed_run / "errors.csv").empty
    # the lesions are the voxels above the threshold: every one of them is brighter than it ...
    for pid in vertebrae["patient_id"].unique():
        image = np.asarray(nib.load(str(cohort / pid / "image.nii.gz")).dataobj)
        lesions = np.asarray(nib.load(str(fixed_run / "masks" / f"{pid}_lesions.nii.gz")).dataobj) > 0
        assert image.shape == lesions.shape
        assert (image[lesions] > THRESHOLD).all()
    # ... and they are the phantom's lesions: the involved levels are the truth's (written by the phantom)
    truth = pd.read_csv(cohort / "truth_vertebrae.csv", dtype={"patient_id": str})
    got = set(map(tuple, vertebrae.loc[vertebrae["involved"], ["patient_id", "level"]].to_numpy()))
    want = set(map(tuple, truth.loc[truth["involved"], ["patient_id", "level"]].to_numpy()))
    assert got == want and got
    run = json.loads((fixed_run / "provenance.json").read_text())["parameters"]["run"]
    assert run["method"] == "fixed" and dict(run["segment"])["fixed_threshold"] == THRESHOLD


def test_run_links_every_patient_of_a_european_table(fixed_run: Path) -> None:
    linked = pd.read_csv(fixed_run / "linked.csv", dtype={"patient_id": str})
    assert len(linked) == 3 and linked["vas"].notna().all()
    assert linked["vas"].tolist() == VAS
    report = pd.read_csv(fixed_run / "link_report.csv")
    assert set(report["kind"]) == {"exact"}


def test_identifier_columns_reach_no_output_of_run(fixed_run: Path) -> None:
    linked = pd.read_csv(fixed_run / "linked.csv", dtype={"patient_id": str})
    assert not {"PatientName", "Geburtsdatum", "MRN", "E-Mail"} & set(linked.columns)
    assert "Alter" in linked.columns  # not an identifier: copied
    secrets = [*NAMES, *(n.split("^")[0] for n in NAMES), *BIRTH, "77123", "example.org"]
    for path in fixed_run.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found = [s for s in secrets if s.encode() in data]
            assert not found, f"{path} holds {found}"


def test_measure_fixed_threshold(cohort: Path, capsys) -> None:
    case = cohort / "SMR-002"
    argv = ["measure", str(case / "image.nii.gz"), "--mask", str(case / "vertebrae_mask.nii.gz")]
    assert main([*argv, "--method", "fixed", "--fixed-threshold", "612.5"]) == 0
    table = capsys.readouterr().out
    rows = [line.split() for line in table.splitlines()[1:]]
    col = table.splitlines()[0].split().index("threshold")
    assert rows and all(float(r[col]) == 612.5 for r in rows)


def test_run_refuses_an_unlinkable_table_before_measuring(cohort: Path, tmp_path: Path, capsys) -> None:
    clinical = tmp_path / "c.csv"
    clinical.write_text("Patient;vas\nSMR-001;5,5\nSMR-002;7.5\nSMR-003;3\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(cohort), "--out", str(out), "--clinical", str(clinical), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no column 'patient_id'" in err and "--id-column" in err
    assert_named_options_exist("run", err)
    argv = ["run", str(cohort), "--out", str(out), "--clinical", str(clinical), "--id-column", "Patient"]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err and "--decimal-comma" in err and "--no-decimal-comma" in err
    assert "no case was measured" in err
    assert_named_options_exist("run", err)
    assert not (out / "vertebrae.csv").exists() and not list((out / "cases").glob("*/state.json"))


def test_measure_series_picks_the_series(tmp_path: Path) -> None:
    root = tmp_path / "dicom_cohort"
    write_cohort(root, CohortSpec(n_patients=1, seed=3, format="dicom", second_series=1), **SMALL)
    case = root / "SMR-001"
    median = {}
    for series, polarity in (("1", "bright"), ("2", "dark")):  # 1: the STIR image, 2: the T1 one
        out = tmp_path / f"s{series}"
        argv = [
            "measure",
            str(case / "dicom"),
            "--mask",
            str(case / "vertebrae_mask.nii.gz"),
            "--out",
            str(out),
        ]
        assert main([*argv, "--series", series, "--polarity", polarity, "--patient-id", "P"]) == 0
        median[series] = pd.read_csv(out / "vertebrae.csv")["reference_median"].iloc[0]
    # the phantom's marrow intensities of the two contrasts (with noise and texture: within 15 %)
    assert median["1"] == pytest.approx(CONTRASTS["stir"]["marrow"], rel=0.15)
    assert median["2"] == pytest.approx(CONTRASTS["t1"]["marrow"], rel=0.15)


def test_measure_series_that_matches_nothing_is_refused(tmp_path: Path, capsys) -> None:
    root = tmp_path / "dicom_cohort"
    write_cohort(root, CohortSpec(n_patients=1, seed=3, format="dicom", second_series=1), **SMALL)
    case = root / "SMR-001"
    argv = ["measure", str(case / "dicom"), "--mask", str(case / "vertebrae_mask.nii.gz"), "--series", "nope"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no series matches series='nope'" in err
    assert_named_options_exist("measure", err)


# --- decimal commas -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cells, expected",
    [
        (["5,5", "7", None, ""], True),  # decimal commas and whole numbers
        (["5,5", 7.0, float("nan")], True),  # numbers stored as numbers read alike either way
        ([",5", "+3,0", " 10 "], True),
        (["5.5", "7", None], False),  # decimal points
        (["7", "3", "10"], False),  # whole numbers only: nothing to decide
        ([7.5, 3.0], False),
        (["severe", "7"], False),  # no decimal comma: the words are reported, as before
    ],
)
def test_decimal_comma_rule(cells: list[object], expected: bool) -> None:
    assert vas_decimal_comma(cells) is expected


@pytest.mark.parametrize("other", ["5.5", "severe", "1e1", "7,5,0"])
def test_decimal_comma_and_anything_else_is_ambiguous(other: str) -> None:
    with pytest.raises(LinkError, match="ambiguous") as info:
        vas_decimal_comma(["5,5", other, "7"], column="VAS")
    text = str(info.value)
    assert "'5,5' (row 1)" in text and f"{other!r} (row 2)" in text
    assert "--decimal-comma" in text and "--no-decimal-comma" in text
    assert (
        vas_decimal_comma(["5,5", other], True) is True and vas_decimal_comma(["5,5", other], False) is False
    )


def _patients(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": ids, "n_involved": range(len(ids))})


def test_link_cli_european_excel_export_links_all_six(tmp_path: Path, capsys) -> None:
    """The issue's case: sample_data's 6 patients with an Excel (German locale) clinical table."""
    ids = [f"SMR-{n:03d}" for n in range(1, 7)]
    patients, clinical, out = tmp_path / "patients.csv", tmp_path / "clinical.csv", tmp_path / "linked.csv"
    _patients(ids).to_csv(patients, index=False)
    vas_text = ["5,5", "6", "4,5", "8,25", "0,5", "10"]
    rows = [f"{pid};Name{n}^Given;{vas_text[n]}" for n, pid in enumerate(ids)]
    clinical.write_bytes(
        ("\ufeffpatient_id;Patient Name;vas\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8")
    )
    assert main(["link", str(patients), str(clinical), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "linked 6 of 6 imaging patients" in err
    assert "vas read with a decimal comma" in err
    assert (
        "left out of the linked table 1 clinical column(s) named like direct identifiers: Patient Name" in err
    )
    linked = pd.read_csv(out, dtype={"patient_id": str})
    assert linked["vas"].tolist() == [5.5, 6.0, 4.5, 8.25, 0.5, 10.0]
    assert "Patient Name" not in linked.columns and "Given" not in out.read_text()
    assert "Given" not in (tmp_path / "link_report.csv").read_text()


def test_link_cli_quoted_decimal_commas_in_a_comma_separated_table(tmp_path: Path, capsys) -> None:
    patients, clinical, out = tmp_path / "p.csv", tmp_path / "c.csv", tmp_path / "l.csv"
    _patients(["A1", "A2", "A3"]).to_csv(patients, index=False)
    clinical.write_text('patient_id,vas\nA1,"2,5"\nA2,"9,75"\nA3,4\n', encoding="utf-8")
    assert main(["link", str(patients), str(clinical), "--out", str(out)]) == 0
    assert pd.read_csv(out)["vas"].tolist() == [2.5, 9.75, 4.0]
    # unquoted, a decimal comma splits the number: refused with the reason, never shifted
    clinical.write_text("patient_id,vas\nA1,2,5\nA2,9,75\nA3,4,0\n", encoding="utf-8")
    assert main(["link", str(patients), str(clinical), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "more ','-separated fields than the header" in err and "decimal comma" in err


def test_link_cli_ambiguous_format_is_refused_and_the_options_decide(tmp_path: Path, capsys) -> None:
    patients, clinical, out = tmp_path / "p.csv", tmp_path / "c.csv", tmp_path / "l.csv"
    _patients(["A1", "A2", "A3"]).to_csv(patients, index=False)
    clinical.write_text("patient_id;vas\nA1;5,5\nA2;7.5\nA3;3\n", encoding="utf-8")
    base = ["link", str(patients), str(clinical), "--out", str(out)]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err
    assert_named_options_exist("link", err)
    assert not out.exists()
    assert main([*base, "--decimal-comma"]) == 0
    err = capsys.readouterr().err
    assert "linked 2 of 3" in err and "'7.5'" in err  # the value that does not fit is reported
    assert pd.read_csv(out)["vas"].tolist()[::2] == [5.5, 3.0]
    assert main([*base, "--no-decimal-comma"]) == 0
    err = capsys.readouterr().err
    assert "linked 2 of 3" in err and "'5,5'" in err and "--decimal-comma" in err
    assert_named_options_exist("link", err)
    assert pd.read_csv(out)["vas"].tolist()[1:] == [7.5, 3.0]


# --- identifier columns -------------------------------------------------------------------------


def test_identifier_column_names() -> None:
    identifying = [
        "PatientName", "Patient Name", "patient_name", "NAME", "Surname", "first_name", "LastName", "Vorname",
        "Nachname", "nom", "Prénom", "initials", "PatientBirthDate", "birth_date", "DateOfBirth", "DOB",
        "Geburtsdatum", "birthday", "MRN", "medical_record_number", "hospital_number", "SSN", "NHS number",
        "PatientID", "OtherPatientIDs", "AccessionNumber", "address", "PatientAddress", "Adresse", "Street",
        "Straße", "City", "ZIP", "postcode", "PLZ", "phone", "Telephone", "Telefon", "mobile", "fax",
        "PatientTelephoneNumbers", "email", "E-Mail", "e_mail", "ReferringPhysicianName",
    ]  # fmt: skip
    clinical = [
        "vas", "VAS", "age", "Alter", "sex", "scan_date", "visit_date", "pain_site", "primary_tumor",
        "opioids", "ecog", "study_id", "subject", "SINS", "radiotherapy", "level", "mobility_score",
    ]  # fmt: skip
    assert identifier_columns(identifying) == identifying
    assert identifier_columns(clinical) == []


def test_link_drops_identifier_columns_unless_kept() -> None:
    patients = _patients(["P1", "P2"])
    clinical = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "vas": [3, 8],
            "PatientName": ["Doe^Jane", "Roe^Rick"],
            "birth_date": ["1950-01-01", "1949-02-02"],
            "age": [70, 71],
        }
    )
    linked, report = link(patients, clinical)
    assert list(linked.columns[-1:]) == ["age"] and "PatientName" not in linked and "birth_date" not in linked
    assert report.dropped_columns == ("PatientName", "birth_date")
    (note,) = [n for n in report.notes if "identifiers" in n]
    assert "PatientName, birth_date" in note and note in report.summary()
    kept, report = link(patients, clinical, keep_columns=("birth_date",))
    assert kept["birth_date"].tolist() == ["1950-01-01", "1949-02-02"] and "PatientName" not in kept
    assert report.dropped_columns == ("PatientName",)
    with pytest.raises(LinkError, match=r"no column\(s\) \['DOB'\] to keep"):
        link(patients, clinical, keep_columns=("DOB",))


def test_link_cli_keep_columns(tmp_path: Path, capsys) -> None:
    patients, clinical, out = tmp_path / "p.csv", tmp_path / "c.csv", tmp_path / "l.csv"
    _patients(["A1", "A2"]).to_csv(patients, index=False)
    clinical.write_text("patient_id,vas,MRN,Name\nA1,3,M-1,Doe^Jane\nA2,4,M-2,Roe^Rick\n", encoding="utf-8")
    assert main(["link", str(patients), str(clinical), "--out", str(out), "--keep-columns", "MRN"]) == 0
    err = capsys.readouterr().err
    assert "direct identifiers: Name (" in err
    linked = pd.read_csv(out)
    assert linked["MRN"].tolist() == ["M-1", "M-2"] and "Name" not in linked
    assert main(["link", str(patients), str(clinical), "--out", str(out), "--keep-columns", "Nmae"]) == 2
    err = capsys.readouterr().err
    assert "['Nmae']" in err and "--keep-columns" in err
    assert_named_options_exist("link", err)


# --- every option named by a message exists on the commands that can show it ---------------------

#: Options named in spinemri's strings that are not spinemri options, and why.
FOREIGN_OPTIONS = {"--inplace": "python setup.py build_ext --inplace (rebuilding the compiled kernels)"}

#: (module, option) -> the other command a message tells the user to run with that option
#: ("spinemri run COHORT --clinical ..." in analyze's refusal of an unlinked table): the option
#: must exist on that command, not on the one showing the message.
REFERS_TO: dict[tuple[str, str], str] = {("commands/analyze.py", "--clinical"): "run"}

#: Module -> the commands that can show its messages (every option named in the module's strings,
#: docstrings aside, must exist on each). A module naming an option must be listed here.
SHOWN_BY: dict[str, set[str]] = {
    "cli.py": set(COMMANDS),  # only global options and check_options' own prefixes
    "commands/_options.py": {"run"},  # both groups' help texts; measure / link parity tested above
    "commands/analyze.py": {"analyze"},
    "commands/demo.py": {"demo"},
    "commands/info.py": {"info"},
    "commands/link.py": {"link"},
    "commands/measure.py": {"measure"},
    "commands/phantom.py": {"phantom"},
    "commands/run.py": {"run"},
    "commands/compare.py": {"compare"},
    "linking.py": {"link", "run"},
    "clinical_columns.py": {"link", "run"},
    "io/clinical.py": {"link", "run"},
    "params.py": {"measure", "run"},  # SegmentParams: --fixed-threshold
    "plausibility.py": {"measure", "run"},
    "measurement.py": {"measure", "run"},
    "scheme_choice.py": {"measure", "run", "info"},  # info prints why auto cannot choose
    "io/dicom/series.py": {"measure", "run", "info"},
    "io/dicom/seg.py": {"measure", "run"},
    "io/atomic.py": {"measure", "run", "link", "analyze", "phantom", "demo"},
    "io/idkey.py": {"measure", "run", "demo"},
    "pipeline/cohort.py": {"run", "demo"},
    "pipeline/case.py": {"measure", "run", "demo"},
    "pipeline/executors.py": {"run"},
    "pipeline/surveil.py": {"compare"},
    "io/discover.py": {"run"},
    "io/cohort_write.py": {"phantom"},
    "io/cohort_followup.py": {"phantom"},
}
#: (module, option) -> further commands that can show that one message.
ALSO_SHOWN_BY: dict[tuple[str, str], set[str]] = {
    ("io/cohort_write.py", "--patients"): {"demo"},  # spinemri demo --patients 0
    ("io/cohort_write.py", "--seed"): {"demo"},
}


def _strings(path: Path) -> tuple[list[str], list[str]]:
    """(message strings, docstrings) of a module: every str constant, f-string parts included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    messages, docstrings = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            (docstrings if id(node) in docs else messages).append(node.value)
    return messages, docstrings


def _named_options() -> dict[str, tuple[set[str], set[str]]]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        messages, docstrings = _strings(path)
        in_messages = {o for text in messages for o in OPTION.findall(text)} - set(FOREIGN_OPTIONS)
        in_docs = {o for text in docstrings for o in OPTION.findall(text)} - set(FOREIGN_OPTIONS)
        if in_messages or in_docs:
            found[path.relative_to(SRC).as_posix()] = (in_messages, in_docs)
    return found


def test_the_scan_finds_the_known_messages() -> None:
    assert all((SRC / module).is_file() for module in SHOWN_BY), "SHOWN_BY names a module that is gone"
    assert all(module in SHOWN_BY for module, _ in ALSO_SHOWN_BY)
    found = _named_options()
    assert "--fixed-threshold" in found["params.py"][0]
    assert {"--id-column", "--keep-columns"} <= found["linking.py"][0]
    assert {"--decimal-comma", "--no-decimal-comma"} <= found["clinical_columns.py"][0]
    assert "--series" in found["io/dicom/series.py"][0]


def test_every_option_named_anywhere_exists_on_some_command() -> None:
    every = GLOBAL_OPTIONS | {o for p in COMMANDS.values() for o in p._option_string_actions}
    unknown = {
        module: sorted((messages | docs) - every)
        for module, (messages, docs) in _named_options().items()
        if (messages | docs) - every
    }
    assert not unknown, f"options named in spinemri's strings that no command accepts: {unknown}"


def test_every_option_a_message_names_exists_on_each_command_that_shows_it() -> None:
    problems = []
    for module, (messages, _) in _named_options().items():
        if not messages:
            continue
        assert module in SHOWN_BY, f"{module} names options {sorted(messages)}: add it to SHOWN_BY"
        for option in sorted(messages):
            if (module, option) in REFERS_TO:
                if not accepts(REFERS_TO[module, option], option):
                    problems.append(
                        f"{module}: {option} is not an option of spinemri {REFERS_TO[module, option]}"
                    )
                continue
            for command in sorted(SHOWN_BY[module] | ALSO_SHOWN_BY.get((module, option), set())):
                if not accepts(command, option):
                    problems.append(f"{module}: {option} is not an option of spinemri {command}")
    assert not problems, "\n".join(problems)


def test_info_checks_a_mask_against_the_scheme_given(cohort: Path, capsys) -> None:
    """info prints why a scheme does not fit, and those messages say "pass --scheme": info takes it."""
    mask = str(cohort / "SMR-001" / "vertebrae_mask.nii.gz")  # VerSe labels 19-24 (T12-L5)
    assert main(["info", mask, "--scheme", "verse"]) == 0
    assert "scheme   verse (scheme 'verse' as requested)" in capsys.readouterr().out
    assert main(["info", mask, "--scheme", "totalseg"]) == 0
    out = capsys.readouterr().out
    assert "cannot guess" in out and "Pass --scheme" in out
    assert_named_options_exist("info", out)


def test_european_dates_are_read_day_first(tmp_path: Path, capsys) -> None:
    """pandas read 05.03.2024 as 3 May but 13.03.2024 as 13 March: one column, two conventions."""
    patients, clinical, out = tmp_path / "p.csv", tmp_path / "c.csv", tmp_path / "l.csv"
    pd.DataFrame({"patient_id": ["A1", "A2"], "scan_date": ["2024-03-04", "2024-03-12"]}).to_csv(
        patients, index=False
    )
    rows = ["A1;2;05.03.2024", "A1;9;04.05.2024", "A2;4;13.03.2024", "A2;8;11.12.2023"]
    clinical.write_text("patient_id;vas;Datum\n" + "\n".join(rows) + "\n", encoding="utf-8")
    argv = ["link", str(patients), str(clinical), "--out", str(out), "--date-column", "Datum"]
    assert main(argv) == 0
    linked = pd.read_csv(out)
    # A1: 5 March is 1 day after the scan (4 May, 61 days, is outside the 30-day window); A2: 13 March
    assert linked["vas"].tolist() == [2.0, 4.0]
    assert linked["vas_days_from_scan"].tolist() == [1.0, 1.0]
    clinical.write_text("patient_id;vas;Datum\nA1;2;13/02/2024\nA2;4;02/13/2024\n", encoding="utf-8")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "mixes day/month/year and month/day/year" in err and "YYYY-MM-DD" in err


def test_commands_in_the_docs_use_their_own_options() -> None:
    """``spinemri CMD ... --option`` on one line of the README or docs: CMD accepts the option."""
    repo = SRC.parent
    pages = [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))]
    command = re.compile(rf"spinemri ({'|'.join(COMMANDS)})\b([^`|#]*)")
    bad = []
    for page in pages:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for m in command.finditer(line):
                missing = [o for o in OPTION.findall(m.group(2)) if not accepts(m.group(1), o)]
                if missing:
                    bad.append(f"{page.relative_to(repo)}:{n}: spinemri {m.group(1)} {missing}")
    assert not bad, "\n".join(bad)
