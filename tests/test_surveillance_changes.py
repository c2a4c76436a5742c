"""Every vertebra status, the guards and the patient row, on hand-built tables (truth by hand)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spinemri.errors import ConfigError, InputError
from spinemri.surveillance.compare import compare_timepoints
from spinemri.surveillance.params import SurveillanceParams
from spinemri.surveillance.vertebrae import CHANGE_COLUMNS
from tests.surveillance_tables import PROFILE_LEVELS, vertebra_rows

ISSUE_COLUMNS = (
    "patient_id, level, region, timepoint_from, timepoint_to, scan_date_from, scan_date_to, interval_days, "
    "lesion_volume_mm3_from, lesion_volume_mm3_to, hi_volume_ratio_from, hi_volume_ratio_to, "
    "delta_hi_volume_ratio, hi_area_ratio_from, hi_area_ratio_to, lesion_count_from, lesion_count_to, "
    "new_lesions, resolved_lesions, status"
).split(", ")

# lesion volume (mm^3) per level at the two time points, and the status the definitions give
CASES = {
    "T10": (0.0, 0.0, "uninvolved"),
    "T11": (0.0, 500.0, "new"),
    "T12": (1000.0, 1400.0, "progressing"),  # +40 % and +400 mm^3: both criteria, exactly at the bound
    "L1": (1000.0, 1390.0, "stable"),  # +39 %: below the relative threshold
    "L2": (1000.0, 350.0, "regressing"),  # -65 % and -650 mm^3
    "L3": (1000.0, 0.0, "resolved"),
    "L4": (120.0, 260.0, "stable"),  # +117 % but only +140 mm^3 < 150: noise in a tiny lesion
    "L5": (2000.0, 3000.0, "indeterminate"),  # +50 %, but L5 irradiated 60 days before
}


def _cohort() -> tuple[pd.DataFrame, pd.DataFrame]:
    a = vertebra_rows(
        "P1", "tp1", "2024-01-01", {k: v[0] for k, v in CASES.items()}, levels=PROFILE_LEVELS[1:]
    )
    # the later scan: T9 enters the field of view at the top, S1 leaves it at the bottom
    b = vertebra_rows(
        "P1",
        "tp2",
        "2024-04-01",
        {k: v[1] for k, v in CASES.items()},
        levels=PROFILE_LEVELS[:-1],
        rotation_deg=8.0,
        offset_mm=(3.0, -12.0, 40.0),
    )
    clinical = pd.DataFrame(
        {
            "patient_id": ["P1", "P1"],
            "timepoint": ["tp1", "tp2"],
            "vas": [6.0, 8.0],
            "radiotherapy_date": ["2024-01-31", "2024-01-31"],
            "radiotherapy_levels": ["L5", "L5"],
        }
    )
    return pd.concat([b, a], ignore_index=True), clinical  # order of rows must not matter


def test_changes_has_the_issue_columns_in_order() -> None:
    assert list(CHANGE_COLUMNS[: len(ISSUE_COLUMNS)]) == ISSUE_COLUMNS


def test_every_status_exact() -> None:
    vert, clinical = _cohort()
    res = compare_timepoints(vert, clinical=clinical)
    ch = res.changes.set_index("level")
    assert list(res.changes.columns) == list(CHANGE_COLUMNS)
    for lv, (_, _, status) in CASES.items():
        assert ch.loc[lv, "status"] == status, lv
    assert ch.loc["T9", "status"] == "outside_fov" and not ch.loc["T9", "present_from"]
    assert ch.loc["S1", "status"] == "outside_fov" and not ch.loc["S1", "present_to"]
    assert bool(ch.loc["L5", "possible_pseudoprogression"])
    assert not ch.drop(index="L5")["possible_pseudoprogression"].any()
    assert (ch["interval_days"] == 91).all() and not ch["short_interval"].any()
    assert (ch["timepoint_from"] == "tp1").all() and (ch["timepoint_to"] == "tp2").all()
    assert ch.loc["T12", "delta_lesion_volume_mm3"] == pytest.approx(400.0)
    assert ch.loc["T12", "relative_volume_change"] == pytest.approx(0.4)
    assert ch.loc["T12", "delta_hi_volume_ratio"] == pytest.approx(
        1400 / ch.loc["T12", "lesion_volume_mm3_to"] * ch.loc["T12", "hi_volume_ratio_to"]
        - 1000 / ch.loc["T12", "lesion_volume_mm3_from"] * ch.loc["T12", "hi_volume_ratio_from"]
    )
    assert ch["level_check"].str.startswith("consistent").all()
    # no lesion table: new / resolved lesion counts are unknown, not zero
    assert ch["new_lesions"].isna().all()


def test_patient_row_worst_vertebra_vas_and_levels() -> None:
    vert, clinical = _cohort()
    pc = compare_timepoints(vert, clinical=clinical).patient_changes
    assert len(pc) == 1
    r = pc.iloc[0]
    assert r["status"] == "new"  # SEVERITY: new is the worst status present
    assert r["new_levels"] == "T11" and r["resolved_levels"] == "L3"
    assert r["progressing_levels"] == "T12" and r["indeterminate_levels"] == "L5"
    assert (r["n_progressing"], r["n_stable"], r["n_regressing"], r["n_indeterminate"]) == (1, 2, 1, 1)
    assert r["n_outside_fov"] == 2 and r["n_not_comparable"] == 0
    assert (r["vas_from"], r["vas_to"], r["delta_vas"]) == (6.0, 8.0, 2.0)
    assert r["vas_match_from"] == r["vas_match_to"] == "timepoint"
    before = sum(v[0] for v in CASES.values())
    after = sum(v[1] for v in CASES.values())
    assert r["total_lesion_volume_mm3_from"] == pytest.approx(before)
    assert r["delta_total_lesion_volume_mm3"] == pytest.approx(after - before)
    assert r["n_involved_from"] == 6 and r["n_involved_to"] == 6 and r["delta_n_involved"] == 0
    assert bool(r["possible_pseudoprogression"])


def test_summary_is_strict_json() -> None:
    import json

    vert, clinical = _cohort()
    summary = compare_timepoints(vert, clinical=clinical).summary()
    text = json.dumps(summary, allow_nan=False)
    assert summary["vertebra_status_counts"]["stable"] == 2 and "outside_fov" in text
    assert summary["level_checks"][0]["verdict"] == "consistent"


def test_patient_status_severity_order() -> None:
    lv = ("L1", "L2", "L3", "L4")
    a = vertebra_rows("Q", "tp1", "2024-01-01", {"L1": 1000, "L2": 1000}, levels=lv)
    b = vertebra_rows("Q", "tp2", "2024-06-01", {"L1": 1000, "L2": 200}, levels=lv)
    pc = compare_timepoints(pd.concat([a, b])).patient_changes
    assert pc["status"].tolist() == ["stable"]  # stable (L1) is worse than regressing (L2)
    b2 = vertebra_rows("Q", "tp2", "2024-06-01", {"L2": 200}, levels=lv)
    assert compare_timepoints(pd.concat([a, b2])).patient_changes["status"].tolist() == ["regressing"]


def test_absolute_threshold_scales_with_the_coarser_voxel() -> None:
    lv = ("L1", "L2", "L3")
    fine_a = vertebra_rows("W", "tp1", "2024-01-01", {"L2": 1000.0}, levels=lv, voxel_mm3=6.25)
    fine_b = vertebra_rows("W", "tp2", "2024-06-01", {"L2": 1450.0}, levels=lv, voxel_mm3=6.25)
    ch = compare_timepoints(pd.concat([fine_a, fine_b])).changes.set_index("level")
    assert ch.loc["L2", "status"] == "progressing" and ch.loc["L2", "min_change_mm3"] == 150.0
    # the later scan on 2 x 2 x 5 mm voxels: 24 voxels = 480 mm^3 > +450
    coarse_b = vertebra_rows("W", "tp2", "2024-06-01", {"L2": 1450.0}, levels=lv, voxel_mm3=20.0)
    ch = compare_timepoints(pd.concat([fine_a, coarse_b])).changes.set_index("level")
    assert ch.loc["L2", "min_change_mm3"] == pytest.approx(480.0, rel=1e-3)
    assert ch.loc["L2", "status"] == "stable"


def test_radiotherapy_guard_window_and_unknown_dates() -> None:
    lv = ("L1", "L2", "L3")
    a = vertebra_rows("R", "tp1", "2023-01-01", {"L2": 1000}, levels=lv)
    b = vertebra_rows("R", "tp2", "2024-06-01", {"L2": 3000}, levels=lv)
    old = pd.DataFrame(
        {"patient_id": ["R"], "radiotherapy_date": ["2023-02-01"], "radiotherapy_levels": ["L2;L3"]}
    )
    ch = compare_timepoints(pd.concat([a, b]), clinical=old).changes.set_index("level")
    assert ch.loc["L2", "status"] == "progressing"  # 486 days after radiotherapy: beyond 365
    unknown = old.assign(radiotherapy_date=[None])
    ch = compare_timepoints(pd.concat([a, b]), clinical=unknown).changes.set_index("level")
    assert ch.loc["L2", "status"] == "indeterminate"  # unknown timing cannot rule it out
    with pytest.raises(InputError, match="not level names"):
        compare_timepoints(pd.concat([a, b]), clinical=old.assign(radiotherapy_levels=["lumbar"]))


def test_short_interval_flag_and_three_time_points() -> None:
    lv = ("L1", "L2", "L3")
    t1 = vertebra_rows("S", "tp1", "2024-01-01", {"L1": 1000}, levels=lv)
    t2 = vertebra_rows("S", "tp2", "2024-02-10", {"L1": 1000}, levels=lv)  # 40 days later
    t3 = vertebra_rows("S", "tp10", "2024-06-10", {"L1": 2000}, levels=lv)
    res = compare_timepoints(pd.concat([t3, t1, t2]))
    pc = res.patient_changes
    assert list(zip(pc["timepoint_from"], pc["timepoint_to"], strict=True)) == [
        ("tp1", "tp2"),
        ("tp2", "tp10"),
    ]
    assert pc["short_interval"].tolist() == [True, False]
    assert pc["interval_days"].tolist() == [40.0, 121.0]
    assert res.changes.groupby("timepoint_to")["short_interval"].all().to_dict() == {
        "tp10": False,
        "tp2": True,
    }
    custom = compare_timepoints(pd.concat([t3, t1, t2]), params=SurveillanceParams(min_interval_days=30))
    assert not custom.patient_changes["short_interval"].any()


def test_undated_time_points_are_ordered_by_name() -> None:
    lv = ("L1", "L2", "L3")
    tps = [vertebra_rows("U", tp, None, {}, levels=lv) for tp in ("tp10", "tp2", "tp1")]
    pc = compare_timepoints(pd.concat(tps)).patient_changes
    assert list(pc["timepoint_to"]) == ["tp2", "tp10"]
    assert pc["interval_days"].isna().all() and not pc["short_interval"].any()


def test_vas_by_date_within_the_window() -> None:
    lv = ("L1", "L2", "L3")
    a = vertebra_rows("V", "2024-01-01", "2024-01-01", {}, levels=lv)
    b = vertebra_rows("V", "2024-05-01", "2024-05-01", {}, levels=lv)
    clinical = pd.DataFrame(
        {"patient_id": ["V", "V", "V"], "vas": [3, 5, 9], "date": ["2024-01-10", "2024-04-20", "2024-09-01"]}
    )
    r = compare_timepoints(pd.concat([a, b]), clinical=clinical).patient_changes.iloc[0]
    assert (r["vas_from"], r["vas_to"], r["delta_vas"]) == (3.0, 5.0, 2.0)
    assert r["vas_match_from"] == "date"
    far = clinical.assign(date=["2023-10-01", "2024-04-20", "2024-09-01"])  # 92 days: outside 30
    r = compare_timepoints(pd.concat([a, b]), clinical=far).patient_changes.iloc[0]
    assert math.isnan(r["vas_from"]) and r["vas_match_from"] == "none" and math.isnan(r["delta_vas"])


def test_params_are_validated() -> None:
    for bad in (
        {"progression_ratio": -1},
        {"regression_ratio": 1.5},
        {"min_change_mm3": float("nan")},
        {"max_level_shift": 1.5},
        {"apply_level_shift": "yes"},
        {"min_shift_gain": 0.3},
    ):
        with pytest.raises(ConfigError):
            SurveillanceParams(**bad)  # type: ignore[arg-type]


def test_missing_columns_name_the_table() -> None:
    with pytest.raises(InputError, match="vertebra table lacks"):
        compare_timepoints(pd.DataFrame({"patient_id": ["a"], "level": ["L1"]}))


def test_new_level_after_radiotherapy_is_indeterminate_and_lesions_flagged() -> None:
    lv = ("L1", "L2", "L3")
    a = vertebra_rows("X", "tp1", "2024-01-01", {}, levels=lv)
    b = vertebra_rows("X", "tp2", "2024-04-01", {"L3": 400.0}, levels=lv)
    les = pd.DataFrame(
        {
            "patient_id": ["X"],
            "timepoint": ["tp2"],
            "level": ["L3"],
            "lesion_id": [1],
            "volume_mm3": [400.0],
            "rel_si": [0.0],
            "rel_ap": [0.1],
            "rel_lr": [0.0],
        }
    )
    rt = pd.DataFrame(
        {"patient_id": ["X"], "radiotherapy_date": ["2024-02-15"], "radiotherapy_levels": ["L3"]}
    )
    res = compare_timepoints(pd.concat([a, b]), lesions=les, clinical=rt)
    ch = res.changes.set_index("level")
    assert ch.loc["L3", "status"] == "indeterminate" and bool(ch.loc["L3", "possible_pseudoprogression"])
    assert ch.loc["L3", "new_lesions"] == 1
    lc = res.lesion_changes
    assert lc["lesion_class"].tolist() == ["new"] and lc["possible_pseudoprogression"].tolist() == [True]
    assert res.patient_changes["status"].tolist() == ["indeterminate"]
    # without radiotherapy the same level is new
    assert (
        compare_timepoints(pd.concat([a, b]), lesions=les).changes.set_index("level").loc["L3", "status"]
        == "new"
    )


def test_ambiguous_vas_is_not_used() -> None:
    lv = ("L1", "L2", "L3")
    a = vertebra_rows("Y", "tp1", "2024-01-01", {}, levels=lv)
    b = vertebra_rows("Y", "tp2", "2024-05-01", {}, levels=lv)
    clinical = pd.DataFrame(
        {"patient_id": ["Y", "Y", "Y"], "timepoint": ["tp1", "tp1", "tp2"], "vas": [3, 4, 5]}
    )
    r = compare_timepoints(pd.concat([a, b]), clinical=clinical).patient_changes.iloc[0]
    assert r["vas_match_from"] == "ambiguous" and math.isnan(r["vas_from"]) and r["vas_to"] == 5.0


def test_a_single_time_point_gives_empty_tables_with_their_columns() -> None:
    res = compare_timepoints(vertebra_rows("Z", "tp1", "2024-01-01", {"L1": 500.0}))
    assert res.changes.empty and list(res.changes.columns) == list(CHANGE_COLUMNS)
    assert res.patient_changes.empty and res.lesion_changes.empty
    assert res.timepoints["n_involved"].tolist() == [1]
    assert res.summary()["n_pairs"] == 0


def test_time_point_names_sort_naturally() -> None:
    from spinemri.surveillance.timepoints import natural_key

    assert sorted(["tp10", "tp2", "tp1"], key=natural_key) == ["tp1", "tp2", "tp10"]
    assert sorted(["ses-10", "ses-02", "ses-1"], key=natural_key) == ["ses-1", "ses-02", "ses-10"]
    assert sorted(["2024-11-02", "2024-02-10"], key=natural_key) == ["2024-02-10", "2024-11-02"]
