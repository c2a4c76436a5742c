"""Lesion matching: every class exact on hand-placed lesions (truth from the definitions)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spinemri.surveillance.compare import compare_timepoints
from spinemri.surveillance.frames import equivalent_radius
from spinemri.surveillance.lesions import LESION_CHANGE_COLUMNS, match_lesions
from tests.surveillance_tables import vertebra_rows

LEVELS = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")


def sphere(volume: float) -> float:
    return float(equivalent_radius(volume))


def lesion_rows(
    patient: str, tp: str, items: list[tuple[str, int, float, tuple[float, float, float]]], vert: pd.DataFrame
) -> pd.DataFrame:
    """Lesions at positions in mm along (si, ap, lr) of their vertebra, given as rel_* of its extents."""
    rows = []
    ext = vert.set_index("level")[["extent_si_mm", "extent_ap_mm", "extent_lr_mm"]]
    for level, lid, vol, (si, ap, lr) in items:
        e = ext.loc[level].to_numpy(float)
        rows.append(
            {
                "patient_id": patient,
                "timepoint": tp,
                "level": level,
                "lesion_id": lid,
                "volume_mm3": vol,
                "rel_si": si / e[0],
                "rel_ap": ap / e[1],
                "rel_lr": lr / e[2],
            }
        )
    return pd.DataFrame(rows)


def _case() -> tuple[pd.DataFrame, pd.DataFrame]:
    # per level: lesions before and after, positions in mm in the vertebra frame
    before = [
        ("T11", 1, 900.0, (0.0, 0.0, 0.0)),  # stable: 900 -> 1000, moved 1.5 mm
        ("T12", 2, 500.0, (2.0, 3.0, 0.0)),  # enlarging: 500 -> 1000 (+100 %, +500 mm^3)
        ("L1", 3, 1000.0, (0.0, -4.0, 2.0)),  # shrinking: 1000 -> 300 (-70 %)
        ("L2", 4, 300.0, (0.0, 11.0, 0.0)),  # disappeared (anterior) ...
        ("L3", 5, 300.0, (0.0, -6.0, 0.0)),  # merged: two 300 mm^3 lesions 12 mm apart ...
        ("L3", 6, 300.0, (0.0, 6.0, 0.0)),
        ("L4", 7, 900.0, (0.0, 0.0, 0.0)),  # split into two ...
    ]
    after = [
        ("T11", 1, 1000.0, (0.0, 1.5, 0.0)),
        ("T12", 2, 1000.0, (2.5, 3.0, 0.5)),
        ("L1", 3, 300.0, (0.0, -4.0, 1.0)),
        ("L2", 4, 300.0, (0.0, -11.0, 0.0)),  # ... and a new one (posterior): 22 mm away, beyond 2 r + 5
        ("L3", 5, 900.0, (0.0, 0.0, 0.0)),  # ... into one of 900 mm^3 in between
        ("L4", 6, 400.0, (0.0, -5.0, 0.0)),
        ("L4", 7, 400.0, (0.0, 5.0, 0.0)),
        ("L5", 8, 200.0, (0.0, 0.0, 0.0)),  # new in a level without lesion before
    ]
    va = vertebra_rows(
        "P",
        "tp1",
        "2024-01-01",
        {lv: sum(x[2] for x in before if x[0] == lv) for lv in LEVELS},
        levels=LEVELS,
        lesion_count={lv: sum(1 for x in before if x[0] == lv) for lv in LEVELS},
    )
    vb = vertebra_rows(
        "P",
        "tp2",
        "2024-04-01",
        {lv: sum(x[2] for x in after if x[0] == lv) for lv in LEVELS},
        levels=LEVELS,
        lesion_count={lv: sum(1 for x in after if x[0] == lv) for lv in LEVELS},
        rotation_deg=10,
        offset_mm=(4, 4, -50),
    )
    les = pd.concat(
        [lesion_rows("P", "tp1", before, va), lesion_rows("P", "tp2", after, vb)], ignore_index=True
    )
    return pd.concat([va, vb], ignore_index=True), les


def test_every_lesion_class_exact() -> None:
    vert, les = _case()
    res = compare_timepoints(vert, lesions=les)
    lc = res.lesion_changes
    assert list(lc.columns) == list(LESION_CHANGE_COLUMNS)
    got = sorted(
        zip(lc["level"], lc["lesion_ids_from"], lc["lesion_ids_to"], lc["lesion_class"], strict=True)
    )
    assert got == sorted(
        [
            ("T11", "1", "1", "stable"),
            ("T12", "2", "2", "enlarging"),
            ("L1", "3", "3", "shrinking"),
            ("L2", "4", "", "disappeared"),
            ("L2", "", "4", "new"),
            ("L3", "5;6", "5", "merged"),
            ("L4", "7", "6;7", "split"),
            ("L5", "", "8", "new"),
        ]
    )
    row = lc.set_index("lesion_class").loc["merged"]
    assert (row["n_from"], row["n_to"], row["volume_mm3_from"], row["volume_mm3_to"]) == (2, 1, 600.0, 900.0)
    assert row["volume_trend"] == "enlarging"  # 600 -> 900: +50 % >= 40 % and +300 >= 100 mm^3
    split = lc.set_index("lesion_class").loc["split"]
    assert (split["volume_mm3_from"], split["volume_mm3_to"], split["volume_trend"]) == (
        900.0,
        800.0,
        "stable",
    )
    stable = lc[lc["lesion_class"] == "stable"].iloc[0]
    # positions are scaled by the mean extent of the two scans (here equal): 1.5 mm apart
    assert stable["distance_mm"] == pytest.approx(1.5)


def test_vertebra_counts_of_new_and_resolved_lesions() -> None:
    vert, les = _case()
    ch = compare_timepoints(vert, lesions=les).changes.set_index("level")
    assert ch.loc["L2", "new_lesions"] == 1 and ch.loc["L2", "resolved_lesions"] == 1
    assert ch.loc["L2", "status"] == "stable"  # 300 -> 300 mm^3: one lesion went, one came
    assert ch.loc["L5", "new_lesions"] == 1 and ch.loc["L5", "status"] == "new"
    assert ch.loc["L3", "new_lesions"] == 0 and ch.loc["L3", "resolved_lesions"] == 0
    assert ch.loc["T12", "status"] == "progressing"


def test_match_lesions_gate_and_hungarian() -> None:
    r = np.array([3.0, 3.0])
    # two lesions swap nothing: the assignment minimises the total distance, not greedy nearest
    a = np.array([[0.0, 0, 0], [0.0, 7.0, 0]])
    b = np.array([[0.0, 3.6, 0], [0.0, 10.0, 0]])
    groups = match_lesions(a, r, b, r, 5.0)
    assert [(g.from_rows, g.to_rows) for g in groups] == [((0,), (0,)), ((1,), (1,))]
    # beyond r_i + r_j + margin: no match
    far = match_lesions(np.zeros((1, 3)), np.array([2.0]), np.array([[0.0, 0.0, 9.01]]), np.array([2.0]), 5.0)
    assert sorted(g.kind for g in far) == ["disappeared", "new"]
    near = match_lesions(
        np.zeros((1, 3)), np.array([2.0]), np.array([[0.0, 0.0, 8.99]]), np.array([2.0]), 5.0
    )
    assert [g.kind for g in near] == ["matched"]
    assert math.isclose(near[0].distance_mm, 8.99)


def test_without_positions_nothing_is_matched_and_a_note_says_why() -> None:
    vert, les = _case()
    bare = les.drop(columns=["rel_si", "rel_ap", "rel_lr"])
    res = compare_timepoints(vert.drop(columns=["centroid_x_mm"]), lesions=bare)
    assert res.lesion_changes.empty and res.notes
    assert res.changes["new_lesions"].isna().all()


def test_world_centroids_are_turned_into_positions() -> None:
    vert, les = _case()
    # lesions.csv as measured: world centroids only (placed from the hand-made frame of each scan)
    rows = []
    v = vert.set_index(["timepoint", "level"])
    for r in les.itertuples(index=False):
        f = v.loc[(r.timepoint, r.level)]
        c = np.array([f["centroid_x_mm"], f["centroid_y_mm"], f["centroid_z_mm"]])
        offs = {a: getattr(r, f"rel_{a}") * f[f"extent_{a}_mm"] for a in ("si", "ap", "lr")}
        world = c + sum(offs[a] * np.array([f[f"axis_{a}_{x}"] for x in "xyz"]) for a in offs)
        rows.append(
            {
                "patient_id": r.patient_id,
                "timepoint": r.timepoint,
                "level": r.level,
                "lesion_id": r.lesion_id,
                "volume_mm3": r.volume_mm3,
                "x_mm": world[0],
                "y_mm": world[1],
                "z_mm": world[2],
            }
        )
    measured = pd.DataFrame(rows)
    expected = compare_timepoints(vert, lesions=les).lesion_changes
    got = compare_timepoints(vert, lesions=measured).lesion_changes
    assert got["lesion_class"].tolist() == expected["lesion_class"].tolist()
    assert got["distance_mm"].to_numpy() == pytest.approx(expected["distance_mm"].to_numpy(), nan_ok=True)


def test_a_level_whose_lesions_have_no_position_is_not_matched() -> None:
    vert, les = _case()
    les.loc[les["level"] == "T12", ["rel_si", "rel_ap", "rel_lr"]] = np.nan
    res = compare_timepoints(vert, lesions=les)
    assert "T12" not in set(res.lesion_changes["level"])
    ch = res.changes.set_index("level")
    assert pd.isna(ch.loc["T12", "new_lesions"]) and ch.loc["T12", "status"] == "progressing"
    assert ch.loc["T11", "new_lesions"] == 0  # other levels still matched


def test_row_order_does_not_matter() -> None:
    vert, les = _case()
    a = compare_timepoints(vert, lesions=les)
    rng = np.random.default_rng(0)
    b = compare_timepoints(vert.iloc[rng.permutation(len(vert))], lesions=les.iloc[rng.permutation(len(les))])
    key = ["level", "lesion_ids_from", "lesion_ids_to"]
    pd.testing.assert_frame_equal(
        a.lesion_changes.sort_values(key).reset_index(drop=True),
        b.lesion_changes.sort_values(key).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(a.changes, b.changes)
