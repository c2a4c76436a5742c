"""Two scans of one phantom patient on different grids: frame columns from measure, nothing changed."""

from __future__ import annotations

import warnings

import pandas as pd

import spinemri
from spinemri.phantom.params import LesionSpec
from spinemri.surveillance.compare import compare_timepoints
from spinemri.surveillance.frames import FRAME_COLUMNS, POSITION_COLUMNS
from spinemri.surveillance.measured import frame_tables

LESIONS = (LesionSpec("L1", radius_mm=6.0), LesionSpec("L3", radius_mm=5.0, offset_mm=(0.0, 4.0, 2.0)))


def _scan(seed: int, tp: str, date: str, **pose: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    img, mask, _ = spinemri.make_phantom(seed=seed, first_level="T12", lesions=LESIONS, **pose)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = spinemri.measure(img, mask, scheme="verse", patient_id="P")
    v, les = frame_tables(m, mask)
    return v.assign(timepoint=tp, scan_date=date), les.assign(timepoint=tp, scan_date=date)


def test_repositioned_rescan_is_stable_and_consistent() -> None:
    va, la = _scan(1, "tp1", "2024-01-01")
    vb, lb = _scan(2, "tp2", "2024-05-01", fov_shift_mm=9.0, oblique_deg=3.0, tilt_deg=-3.0, n_slices=17)
    assert set(FRAME_COLUMNS) <= set(va.columns) and set(POSITION_COLUMNS) <= set(la.columns)
    lumbar = va[va["level"].isin(["L1", "L2", "L3", "L4"])]
    assert (va["height_mm"] > 10).all() and (lumbar["axis_si_z"] > 0.9).all()  # lordosis tilts L5, S1 more
    # the L3 lesion sits 4 mm anterior and 2 mm superior of its body centre (LesionSpec offsets)
    l3 = la[la["level"] == "L3"].iloc[0]
    assert abs(l3["offset_ap_mm"] - 4.0) < 1.5 and abs(l3["offset_si_mm"] - 2.0) < 1.5
    res = compare_timepoints(pd.concat([va, vb]), pd.concat([la, lb]))
    assert [c.verdict for c in res.checks] == ["consistent"]
    assert sorted(res.lesion_changes["lesion_class"]) == ["stable", "stable"]
    ch = res.changes.set_index("level")
    assert ch.loc[["L1", "L3"], "status"].tolist() == ["stable", "stable"]
    assert set(ch.drop(index=["L1", "L3"])["status"]) == {"uninvolved"}
