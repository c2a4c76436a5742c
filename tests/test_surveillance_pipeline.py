"""A longitudinal cohort end to end (issue 14): ``spinemri phantom --timepoints 3`` then ``spinemri run``.

The truth is the phantom's change plan (analytic sphere volumes, planned statuses and lesion
classes: spinemri/phantom/changes.py), written before anything is measured; the run measures
every scan on its own (repositioned, other grid), then compares them.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from spinemri.cli import main
from spinemri.errors import SpinemriWarning

SMALL = ["--rows", "192", "--cols", "128", "--slices", "13", "--levels", "T12-S1"]
STATUSES = {"uninvolved", "new", "progressing", "stable", "regressing", "resolved"}
KEY = ["patient_id", "level", "timepoint_from", "timepoint_to"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("longitudinal")
    cohort, out = root / "cohort", root / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        args = ["phantom", str(cohort), "--patients", "2", "--seed", "4", "--format", "mixed"]
        assert main([*args, "--timepoints", "3", *SMALL]) == 0
        assert main(["run", str(cohort), "--out", str(out), "--quiet", "--scheme", "verse"]) == 0
    return cohort, out


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _expected_status(truth: pd.DataFrame) -> pd.Series:
    # the surveillance rule (docs/metrics.md): growth of a level irradiated within the window is
    # "indeterminate" (possible pseudoprogression), never called progression outright
    grown = truth["status"].isin(["new", "progressing"]) & (truth["radiotherapy_before"] == "True")
    return truth["status"].where(~grown, "indeterminate")


def test_every_vertebra_status_as_planned(run: tuple[Path, Path]) -> None:
    cohort, out = run
    truth, got = _csv(cohort / "truth_changes.csv"), _csv(out / "changes.csv")
    assert STATUSES <= set(truth["status"])  # the plan holds every status
    m = truth.assign(expected=_expected_status(truth)).merge(got, on=KEY, how="outer", indicator=True)
    assert set(m["_merge"]) == {"both"}
    wrong = m[m["expected"] != m["status_y"]]
    assert wrong.empty, wrong[[*KEY, "expected", "status_y"]].to_string()
    # the measured counts of lesions follow the plan too
    assert (m["lesion_count_from_x"] == m["lesion_count_from_y"]).all()
    assert (m["lesion_count_to_x"] == m["lesion_count_to_y"]).all()


def test_every_lesion_class_as_planned(run: tuple[Path, Path]) -> None:
    cohort, out = run
    truth, got = _csv(cohort / "truth_lesion_changes.csv"), _csv(out / "lesion_changes.csv")
    assert {"new", "disappeared", "enlarging", "shrinking", "stable", "merged", "split"} <= set(
        truth["class"]
    )

    def groups(df: pd.DataFrame, col: str, truth: bool) -> dict[tuple[str, ...], Counter[str]]:
        out: dict[tuple[str, ...], Counter[str]] = {}
        for key, g in df.groupby(KEY):
            n: Counter[str] = Counter()
            for cls, h in g.groupby(col):
                if truth and cls == "merged":  # truth: one row per link; a merge is one group
                    n[str(cls)] = h["lesion_id_to"].nunique()
                elif truth and cls == "split":
                    n[str(cls)] = h["lesion_id_from"].nunique()
                else:
                    n[str(cls)] = len(h)
            out[tuple(str(k) for k in key)] = n
        return out

    want = groups(truth, "class", truth=True)
    have = groups(got, "lesion_class", truth=False)
    assert want == have


def test_patient_changes_and_pain(run: tuple[Path, Path]) -> None:
    cohort, out = run
    truth, got = _csv(cohort / "truth_patient_changes.csv"), _csv(out / "patient_changes.csv")
    k = ["patient_id", "timepoint_from", "timepoint_to"]
    # the expected patient status: the worst planned vertebra status (docs/metrics.md severity
    # order), after the pseudoprogression rule
    levels = _csv(cohort / "truth_changes.csv")
    levels = levels.assign(expected=_expected_status(levels))
    order = ("new", "progressing", "indeterminate", "stable", "regressing", "resolved", "uninvolved")
    worst = (
        levels.groupby(k)["expected"].agg(lambda s: next(o for o in order if o in set(s))).rename("expected")
    )
    m = truth.merge(got, on=k, suffixes=("_truth", "_got")).merge(worst.reset_index(), on=k)
    assert len(m) == len(truth) == 4
    assert m["status_got"].tolist() == m["expected"].tolist()
    assert m["delta_vas_got"].astype(float).tolist() == m["delta_vas_truth"].astype(float).tolist()
    assert m["n_involved_to_got"].tolist() == m["n_involved_to_truth"].tolist()
    # without radiotherapy the phantom's own planned patient status is the same
    plain = m["radiotherapy_before"] != "True"
    assert (m.loc[plain, "status_truth"] == m.loc[plain, "status_got"]).all()


def test_summary_and_cross_sectional_outputs(run: tuple[Path, Path]) -> None:
    _, out = run
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    surv = summary["surveillance"]
    assert surv["n_pairs"] == 4
    assert set(surv["statistics"]) == {"delta_correlation", "mixed_model"}
    assert surv["parameters"]["progression_ratio"] == 0.4
    # the study's cross-sectional analysis counts each patient once, at baseline
    linked = _csv(out / "linked.csv")
    assert sorted(linked["patient_id"]) == ["SMR-001", "SMR-002"]
    vert = _csv(out / "vertebrae.csv")
    assert {"timepoint", "scan_date", "centroid_x_mm", "height_mm"} <= set(vert.columns)
    assert "rel_si" in _csv(out / "lesions.csv").columns
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["surveillance"]["parameters"]["min_change_mm3"] == 150.0


def test_cohort_without_time_points_writes_no_change_tables(tmp_path: Path) -> None:
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        assert main(["phantom", str(cohort), "--patients", "1", *SMALL]) == 0
        (out / "changes.csv").parent.mkdir(parents=True)
        (out / "changes.csv").write_text("stale\n")  # of an earlier longitudinal run into this folder
        assert main(["run", str(cohort), "--out", str(out), "--quiet"]) == 0
    assert not (out / "changes.csv").exists() and not (out / "patient_changes.csv").exists()
    assert "timepoint" not in _csv(out / "vertebrae.csv").columns


def test_compare_two_measured_time_points(run: tuple[Path, Path], tmp_path: Path) -> None:
    cohort, _ = run
    patient = cohort / "SMR-001"
    tps = sorted(p.name for p in patient.iterdir())[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        for tp in tps:
            scan = patient / tp
            image = scan / "image.nii.gz" if (scan / "image.nii.gz").exists() else scan / "dicom"
            args = ["measure", str(image), "--mask", str(scan / "vertebrae_mask.nii.gz"), "--scheme", "verse"]
            # a DICOM scan is named by its keyed PatientID hash, a NIfTI one by its patient folder: the
            # mixed-format cohort passes the id, as a user comparing a DICOM and a NIfTI scan would
            args += ["--patient-id", "SMR-001"] if image.name == "dicom" else []
            assert main([*args, "--timepoint", tp, "--out", str(tmp_path / tp)]) == 0
        out = tmp_path / "change"
        assert main(["compare", str(tmp_path / tps[0]), str(tmp_path / tps[1]), "--out", str(out)]) == 0
    got = _csv(out / "changes.csv")
    truth = _csv(cohort / "truth_changes.csv")
    truth = truth[(truth["patient_id"] == "SMR-001") & (truth["timepoint_from"] == tps[0])]
    assert set(got["patient_id"]) == {"SMR-001"}
    m = truth.assign(expected=_expected_status(truth)).merge(got, on=KEY)
    assert len(m) == len(truth) and (m["expected"] == m["status_y"]).all()
    assert json.loads((out / "summary.json").read_text())["surveillance"]["n_pairs"] == 1
    # swapped: the follow-up is older than the base
    code = main(["compare", str(tmp_path / tps[1]), str(tmp_path / tps[0]), "--out", str(tmp_path / "x")])
    assert code == 2


def test_report_shows_the_change_section_with_pictures(run: tuple[Path, Path]) -> None:
    _, out = run
    html = (out / "analysis" / "report.html").read_text(encoding="utf-8")
    assert "Change between time points" in html
    changes = _csv(out / "changes.csv")
    changed = changes[
        changes["status"].isin(["new", "progressing", "regressing", "resolved", "indeterminate"])
    ]
    pictures = sorted((out / "qc_change").glob("*.png"))
    assert len(pictures) == len(changed) > 0  # one side-by-side QC per changed level and pair
    assert sorted(p.stem for p in (out / "timelines").glob("*.png")) == ["SMR-001", "SMR-002"]
    for p in pictures[:2]:  # linked from the report, relative to it
        assert f"../qc_change/{p.name}" in html


def test_run_writes_the_planning_summary(run: tuple[Path, Path]) -> None:
    # issue 15: planning.csv per patient (latest time point), the report section, "not assessable"
    # never scored 0 (body masks without posterior elements; pain and lesion type are clinical)
    _, out = run
    planning = _csv(out / "planning.csv")
    assert planning["patient_id"].tolist() == ["SMR-001", "SMR-002"]
    latest = _csv(out / "patients.csv").groupby("patient_id")["timepoint"].max()
    assert planning["timepoint"].tolist() == latest.tolist()
    assert planning["decision_support"].str.contains("not a diagnosis").all()
    guidance = _csv(out / "guidance.csv")
    involved = guidance.merge(_csv(out / "vertebrae.csv")[["patient_id", "timepoint", "level", "involved"]])
    involved = involved[involved["involved"] == "True"]
    assert len(involved) > 0
    for component in ("sins_posterolateral", "sins_pain", "sins_lesion_type"):
        assert (involved[f"{component}_source"] == "not assessable").all()
        assert (involved[component] == "").all()  # missing, never 0
    lo, hi = involved["sins_min"].astype(int), involved["sins_max"].astype(int)
    assert (hi > lo).all()  # a range over the missing components, never one guessed number
    html = (out / "analysis" / "report.html").read_text(encoding="utf-8")
    assert "Planning summary (decision support)" in html


def test_no_guidance_writes_no_planning(tmp_path: Path) -> None:
    cohort, out = tmp_path / "cohort", tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        assert main(["phantom", str(cohort), "--patients", "1", *SMALL]) == 0
        assert main(["run", str(cohort), "--out", str(out), "--quiet"]) == 0
        assert (out / "planning.csv").is_file() and (out / "guidance.csv").is_file()
        assert main(["run", str(cohort), "--out", str(out), "--quiet", "--no-guidance"]) == 0
    assert not (out / "planning.csv").exists() and not (out / "guidance.csv").exists()
