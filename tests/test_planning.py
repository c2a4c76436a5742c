"""The per-patient planning summary from per-vertebra guidance tables, clinical columns and surveillance.

Inputs are written here (component tables with known SINS values, changes rows with known
statuses) or come from the phantom (known collapse and lesions): the expected listing follows from
Fisher et al.'s points, independently of the code under test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from spinemri.errors import InputError
from spinemri.guidance import guidance_case
from spinemri.guidance.planning import (
    DECISION_SUPPORT,
    PLANNING_COLUMNS,
    PLANNING_LEVEL_COLUMNS,
    planning_cohort,
)
from spinemri.measurement import measure
from spinemri.phantom.make import make_phantom
from spinemri.phantom.params import LesionSpec


def _rows(
    pid: str, levels: list[tuple[str, bool, str, str, float, str, str]], tp: str | None = None
) -> pd.DataFrame:
    cols = [
        "level",
        "involved",
        "sins_location",
        "collapse",
        "body_involvement_ratio",
        "posterolateral",
        "alignment",
    ]
    df = pd.DataFrame(levels, columns=cols)
    df.insert(0, "patient_id", pid)
    df["alignment_partial"] = None
    if tp is not None:
        df["timepoint"] = tp
    return df


def test_levels_listed_with_reasons_and_sources() -> None:
    v = pd.concat(
        [
            _rows(
                "p1",
                [
                    # junctional 3 + gt50 3 + bilateral 3 + normal 0 = 9 from imaging
                    ("T12", True, "junctional", "gt50", 0.8, "bilateral", "normal"),
                    # mobile 2 + none 0 + none 0 = 2: max with pain 3 + lytic 2 = 7 -> possible
                    ("L2", True, "mobile", "none", 0.1, "none", "normal"),
                    # semirigid 1 + 0 = 1: at most 6 -> not listed
                    ("T8", True, "semirigid", "none", 0.1, "none", "normal"),
                    # no lesion, collapse < 50 %: listed for the collapse only
                    ("L4", False, "mobile", "lt50", 0.0, "none", "normal"),
                ],
            ),
            _rows("p2", [("L3", False, "mobile", "none", 0.0, "none", "normal")]),
        ]
    )
    plan, lv = planning_cohort(v)
    assert list(plan.columns) == list(PLANNING_COLUMNS) and list(lv.columns) == list(PLANNING_LEVEL_COLUMNS)
    p1 = plan.set_index("patient_id").loc["p1"]
    assert p1["decision_support"] == DECISION_SUPPORT
    assert "not a diagnosis or treatment recommendation" in p1["decision_support"]
    assert p1["sins_ge7_levels"] == "T12"  # 9-14 even with pain and lesion type unknown
    assert p1["sins_possible_ge7_levels"] == "L2"  # 2-7
    assert p1["sins_highest"] == "T12 9-14"
    assert p1["collapse_levels"] == "T12;L4"
    assert p1["involved_levels"] == "T8;T12;L2"
    assert p1["involved_thoracic"] == "T8;T12" and p1["involved_lumbar"] == "L2"
    assert p1["not_assessable"] == "pain: T8;T12;L2 | lesion type: T8;T12;L2"
    rows = lv[lv.patient_id == "p1"].set_index("level")
    assert list(rows.index) == ["T12", "L2", "L4"]
    assert rows.loc["T12", "listed_for"] == "sins_ge7;collapse"
    assert "surgical consultation advised by SINS" in rows.loc["T12", "reasons"]
    assert "pain: not assessable" in rows.loc["T12", "sources"]
    assert "collapse: imaging" in rows.loc["T12", "sources"]
    assert rows.loc["L4", "listed_for"] == "collapse"
    assert pd.isna(rows.loc["L4", "sins_min"])  # no lesion: no SINS
    p2 = plan.set_index("patient_id").loc["p2"]
    assert p2["sins_ge7_levels"] == "" and p2["prognosis_source"] == "not assessable"
    assert (lv.patient_id == "p2").sum() == 0


def test_clinical_columns_resolve_the_possible_levels() -> None:
    v = _rows("p1", [("L2", True, "mobile", "none", 0.1, "none", "normal")])
    low = pd.DataFrame({"patient_id": ["p1"], "pain_mechanical": ["none"], "lesion_type": ["blastic"]})
    high = pd.DataFrame({"patient_id": ["p1"], "pain_mechanical": ["mechanical"], "lesion_type": ["lytic"]})
    plan, _ = planning_cohort(v, clinical=low)
    assert plan.loc[0, "sins_possible_ge7_levels"] == "" and plan.loc[0, "sins_highest"] == "L2 2"
    plan, lv = planning_cohort(v, clinical=high)
    assert plan.loc[0, "sins_ge7_levels"] == "L2" and plan.loc[0, "sins_highest"] == "L2 7"
    assert plan.loc[0, "not_assessable"] == ""
    assert "pain: clinical" in lv.loc[0, "sources"]


def test_change_since_the_last_scan() -> None:
    v = pd.concat(
        [
            _rows("p1", [("L1", True, "junctional", "none", 0.1, "none", "normal")], tp="t0"),
            _rows("p1", [("L1", True, "junctional", "lt50", 0.3, "none", "normal")], tp="t1"),
        ]
    )
    changes = pd.DataFrame(
        {
            "patient_id": ["p1", "p1"],
            "level": ["L1", "L1"],
            "timepoint_from": ["x", "t0"],
            "timepoint_to": ["t0", "t1"],
            "status": ["stable", "progressing"],
        }
    )
    pchanges = pd.DataFrame(
        {
            "patient_id": ["p1"],
            "timepoint_from": ["t0"],
            "timepoint_to": ["t1"],
            "status": ["progressing"],
            "new_levels": [""],
            "progressing_levels": ["L1"],
        }
    )
    fx = pd.DataFrame(
        {"patient_id": ["p1"], "timepoint_to": ["t1"], "level": ["L1"], "fracture_event": ["new"]}
    )
    plan, lv = planning_cohort(v, changes=changes, patient_changes=pchanges, height_changes=fx)
    r = plan.iloc[0]
    assert r["timepoint"] == "t1"  # the latest time point
    assert (
        r["change_status"] == "progressing" and r["change_since"] == "t0" and r["progressing_levels"] == "L1"
    )
    assert r["new_fracture_levels"] == "L1" and r["collapse_levels"] == "L1"
    row = lv.iloc[0]
    # junctional 3 + collapse < 50 % 2 = 5, up to 10 with pain and lesion type unknown: possible
    assert row["listed_for"] == "sins_possible_ge7;collapse;new_fracture;change"
    assert "new compression fracture since the last scan" in row["reasons"]
    assert "lesion progressing since the last scan" in row["reasons"]


def test_bad_inputs_are_refused() -> None:
    v = _rows("p1", [("L2", True, "mobile", "none", 0.1, "none", "normal")])
    with pytest.raises(InputError, match="patient_id"):
        planning_cohort(v.drop(columns=["patient_id"]))
    with pytest.raises(InputError, match="pain_mechanical"):
        planning_cohort(v, clinical=pd.DataFrame({"patient_id": ["p1"], "pain_mechanical": ["sometimes"]}))


def test_phantom_case_to_planning() -> None:
    grid = dict(first_level="T10", last_level="L4", rows=240, cols=160, n_slices=15, pixel_mm=1.25, snr=None)
    lesions = (LesionSpec("L1", "diffuse"), LesionSpec("L3", "focal", radius_mm=5.0))
    img, mask, truth = make_phantom(seed=4, deformity=(("L1", "crush", 0.6),), lesions=lesions, **grid)
    m = measure(img, mask, patient_id="p1", check_plausibility=False)
    g = guidance_case(m, mask, img)
    clin = pd.DataFrame({"patient_id": ["p1"], "pain_mechanical": ["mechanical"], "lesion_type": ["lytic"]})
    plan, lv = planning_cohort(g, clinical=clin)
    r = plan.iloc[0]
    # L1: junctional 3 + collapse > 50 % 3 + pain 3 + lytic 2 = 11, + posterolateral 0-3 (body-only mask)
    # + alignment 0 (normal, both neighbours in view) -> 11-14
    assert r["sins_ge7_levels"].split(";")[0] == "L1"
    assert r["sins_highest"] == "L1 11-14"
    assert "L1" in r["collapse_levels"].split(";")
    assert r["not_assessable"].startswith("posterolateral: ")
    assert bool(truth.vertebrae.set_index("level").loc["L1", "involved"])
