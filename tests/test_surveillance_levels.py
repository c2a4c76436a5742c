"""The level check: shifts in both directions, partial spines, and no silent comparison."""

from __future__ import annotations

import pandas as pd
import pytest

from spinemri.surveillance.compare import compare_timepoints
from spinemri.surveillance.consistency import STANDARD_SEQUENCE, check_level_consistency, shift_levels
from spinemri.surveillance.params import SurveillanceParams
from tests.surveillance_tables import PROFILE_LEVELS, vertebra_rows

SEQ = list(STANDARD_SEQUENCE)


def relabel(levels: tuple[str, ...], by: int) -> dict[str, str]:
    """anatomy_of for a scan whose labels are the true levels moved ``by`` positions (caudal > 0)."""
    return {SEQ[SEQ.index(lv) + by]: lv for lv in levels}


def test_consistent_as_labelled_despite_repositioning_and_noise() -> None:
    a = vertebra_rows("P", "tp1", "2024-01-01", {}, wobble=0.02)
    b = vertebra_rows("P", "tp2", "2024-05-01", {}, rotation_deg=12.0, offset_mm=(5, -20, 60), wobble=-0.02)
    c = check_level_consistency(a, b)
    assert c.verdict == "consistent" and c.shift == 0 and c.comparable
    assert (c.table["verdict"] == "ok").all()


@pytest.mark.parametrize("by, expected_shift", [(1, -1), (-1, 1), (2, -2)])
def test_level_shift_detected_in_both_directions(by: int, expected_shift: int) -> None:
    truth = ("T11", "T12", "L1", "L2", "L3", "L4")
    a = vertebra_rows("P", "tp1", "2024-01-01", {})
    labels = tuple(SEQ[SEQ.index(lv) + by] for lv in truth)
    # the later scan labels each true vertebra ``by`` levels too caudally (by = 1: its L1..L5 are T12..L4)
    b = vertebra_rows(
        "P",
        "tp2",
        "2024-05-01",
        {},
        levels=labels,
        anatomy_of=dict(zip(labels, truth, strict=True)),
        rotation_deg=-6.0,
        offset_mm=(0, 10, -30),
    )
    c = check_level_consistency(a, b)
    assert c.verdict == "shifted" and c.shift == expected_shift, c.reason
    assert not c.comparable
    assert c.column().startswith(f"shifted by {expected_shift:+d}")
    # as labelled every common level differs in volume by about 1.1**by: reported per level
    common = c.table[c.table["present_from"] & c.table["present_to"]]
    assert common["volume_ratio"].to_numpy() == pytest.approx(1.1 ** (-by))
    # the renamed later scan matches the earlier one exactly
    assert check_level_consistency(a, shift_levels(b, c.shift)).verdict == "consistent"


def test_partial_spine_is_consistent_and_levels_outside_are_reported() -> None:
    a = vertebra_rows("P", "tp1", "2024-01-01", {})
    b = vertebra_rows("P", "tp2", "2024-05-01", {}, levels=("L1", "L2", "L3", "L4", "L5"))
    c = check_level_consistency(a, b)
    assert c.verdict == "consistent"
    only = c.table.set_index("level")["verdict"]
    assert {lv for lv in PROFILE_LEVELS if only[lv] == "only_from"} == {"T9", "T10", "T11", "T12", "S1"}


def test_partial_spine_counted_from_its_top_is_a_shift() -> None:
    # the later scan shows T12..L4 only and its segmenter named them L1..L5
    truth = ("T12", "L1", "L2", "L3", "L4")
    labels = ("L1", "L2", "L3", "L4", "L5")
    a = vertebra_rows("P", "tp1", "2024-01-01", {})
    b = vertebra_rows(
        "P", "tp2", "2024-05-01", {}, levels=labels, anatomy_of=dict(zip(labels, truth, strict=True))
    )
    c = check_level_consistency(a, b)
    assert (c.verdict, c.shift) == ("shifted", -1)


def test_too_few_levels_is_not_checked() -> None:
    a = vertebra_rows("P", "tp1", "2024-01-01", {}, levels=("L1", "L2"))
    b = vertebra_rows("P", "tp2", "2024-05-01", {}, levels=("L1", "L2"))
    c = check_level_consistency(a, b)
    assert c.verdict == "not_checked" and c.comparable


def test_inconsistent_when_nothing_fits() -> None:
    a = vertebra_rows("P", "tp1", "2024-01-01", {})
    b = vertebra_rows("P", "tp2", "2024-05-01", {})
    b["vertebra_volume_mm3"] = b["vertebra_volume_mm3"].to_numpy()[[3, 0, 8, 1, 9, 2, 7, 4, 6, 5]]
    b["height_mm"] = b["height_mm"] * [1.5, 0.6, 1.4, 0.7, 1.5, 0.6, 1.3, 0.7, 1.4, 0.6]
    assert check_level_consistency(a, b).verdict == "inconsistent"


def test_shifted_pair_is_never_compared_silently() -> None:
    truth = ("T11", "T12", "L1", "L2", "L3", "L4")
    labels = ("T12", "L1", "L2", "L3", "L4", "L5")
    a = vertebra_rows("P", "tp1", "2024-01-01", {"L2": 1000.0})
    # the true L2 lesion grows to 2000 mm^3; the later scan calls that vertebra L3
    b = vertebra_rows(
        "P",
        "tp2",
        "2024-05-01",
        {"L3": 2000.0},
        levels=labels,
        anatomy_of=dict(zip(labels, truth, strict=True)),
    )
    res = compare_timepoints(pd.concat([a, b]))
    assert (res.changes["status"] == "not_comparable").all()
    assert res.changes["level_check"].str.startswith("shifted by -1").all()
    assert res.patient_changes["status"].tolist() == ["not_comparable"]
    assert res.checks[0].verdict == "shifted"
    # asked to, the comparison is made after renaming, and says so
    shifted = compare_timepoints(pd.concat([a, b]), params=SurveillanceParams(apply_level_shift=True))
    ch = shifted.changes.set_index("level")
    assert ch.loc["L2", "status"] == "progressing"
    assert ch.loc["L3", "status"] == "uninvolved"
    assert ch["level_check"].str.contains("compared after renaming").all()


def test_truncated_read_from_csv_text_excludes_the_level() -> None:
    a = vertebra_rows("P", "tp1", "2024-01-01", {})
    b = vertebra_rows("P", "tp2", "2024-05-01", {})
    b["truncated"] = ["True"] + ["False"] * (len(b) - 1)
    b.loc[0, "vertebra_volume_mm3"] *= 0.5  # cut by the field of view
    c = check_level_consistency(a, b)
    assert c.verdict == "consistent"
    assert c.table.set_index("level").loc["T9", "verdict"] == "truncated"


def test_one_collapsed_vertebra_differs_but_the_levels_stay_consistent() -> None:
    a = vertebra_rows("P", "tp1", "2024-01-01", {})
    b = vertebra_rows("P", "tp2", "2024-05-01", {})
    i = b.index[b["level"] == "L1"][0]
    b.loc[i, ["height_mm", "extent_si_mm"]] *= 0.6  # a compression fracture: 40 % height loss
    b.loc[i, "vertebra_volume_mm3"] *= 0.6
    c = check_level_consistency(a, b)
    assert c.verdict == "consistent"
    row = c.table.set_index("level").loc["L1"]
    assert row["verdict"] == "differs" and "height x0.60" in row["reason"]
    assert row["height_ratio"] == pytest.approx(0.6)
