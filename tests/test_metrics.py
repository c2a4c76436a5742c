"""Metric tables on hand-written arrays, checked against counts worked out by hand or by plain numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from spinemri.metrics import (
    LESION_COLUMNS,
    PATIENT_COLUMNS,
    VERTEBRA_COLUMNS,
    compute_metrics,
    patient_table,
    sins_location,
)
from spinemri.params import MetricsParams

DESIGN_VERTEBRA = {
    "vertebra_voxels",
    "vertebra_volume_mm3",
    "lesion_voxels",
    "lesion_volume_mm3",
    "hi_volume_ratio",
    "hi_area_ratio",
    "lesion_count",
    "threshold",
    "reference_median",
    "reference_mad",
    "mean_intensity",
    "lesion_mean_intensity",
    "sir",
    "involved",
    "region",
    "level",
    "label",
}
DESIGN_PATIENT = {
    "n_vertebrae",
    "n_involved",
    "involved_levels",
    "cervical_involved",
    "thoracic_involved",
    "lumbar_involved",
    "sacral_involved",
    "dominant_region",
    "total_lesion_count",
    "total_lesion_volume_mm3",
    "hi_volume_ratio",
    "hi_area_ratio",
    "hi_area_ratio_max",
}
DESIGN_LESION = {
    "patient_id",
    "level",
    "lesion_id",
    "voxels",
    "volume_mm3",
    "x_mm",
    "y_mm",
    "z_mm",
    "max_intensity",
}


def test_columns_include_every_design_name() -> None:
    assert DESIGN_VERTEBRA <= set(VERTEBRA_COLUMNS)
    assert DESIGN_PATIENT <= set(PATIENT_COLUMNS)
    assert DESIGN_LESION <= set(LESION_COLUMNS)


@pytest.mark.parametrize(
    "level, cls",
    [
        ("C1", "junctional"),
        ("C2", "junctional"),
        ("C4", "mobile"),
        ("C7", "junctional"),
        ("T2", "junctional"),
        ("T3", "semirigid"),
        ("T10", "semirigid"),
        ("T11", "junctional"),
        ("L1", "junctional"),
        ("L3", "mobile"),
        ("L5", "junctional"),
        ("S1", "junctional"),
        ("Co", "rigid"),
    ],
)
def test_sins_location(level: str, cls: str) -> None:
    assert sins_location(level) == cls


def _case() -> dict[str, object]:
    """Three vertebrae (ids 1..3 = T12, L1, L2) in a (10, 12, 9) grid; lr axis = 2.

    vertebra 1: i 0..2 (touches the border i = 0), j 1..10, k 2..6  -> 3*10*5 = 150 voxels
    vertebra 2: i 4..6, j 1..10, k 2..6                              -> 150 voxels
    vertebra 3: i 7..9 (touches i = 9), j 2..9, k 1..7 but k=7 only on j 2..3 -> 3*8*6 + 3*2*1 = 150
    """
    shape = (10, 12, 9)
    vert = np.zeros(shape, np.uint8)
    vert[0:3, 1:11, 2:7] = 1
    vert[4:7, 1:11, 2:7] = 2
    vert[7:10, 2:10, 1:7] = 3
    vert[7:10, 2:4, 7] = 3
    img = np.where(vert > 0, 100.0, 5.0) + np.arange(np.prod(shape)).reshape(shape) * 1e-3
    les = np.zeros(shape, np.int32)
    # lesion A in vertebra 2: i 4..5, j 3..4, k 3..4 (8 voxels) -> on mid slice k=4: 4 pixels
    les[4:6, 3:5, 3:5] = 1
    # lesion B in vertebra 2: i 6, j 8..9, k 2 (2 voxels), off the mid slice
    les[6, 8:10, 2] = 2
    # lesion C in vertebra 3: i 8, j 5, k 4 (1 voxel)
    les[8, 5, 4] = 3
    img[les > 0] = 400.0 + np.arange(int((les > 0).sum()))
    return {
        "intensity": img,
        "vertebrae": vert,
        "levels": ["T12", "L1", "L2"],
        "labels": [[19], [20], [21]],
        "lesion_ids": les,
        "lesion_vertebra": np.array([0, 2, 2, 3]),
        "thresholds": np.array([np.nan, 150.0, 160.0, 170.0]),
        "reference_median": np.array([np.nan, 100.0, 100.0, 200.0]),
        "reference_mad": np.array([np.nan, 2.0, 2.0, 3.0]),
        "affine": np.array(
            [[0.0, 0.0, -0.8, 30.0], [-0.5, 0.0, 0.0, 10.0], [0.0, 0.5, 0.0, -40.0], [0, 0, 0, 1]]
        ),
        "lr_axis": 2,
    }


def test_vertebra_table_by_hand() -> None:
    c = _case()
    t = compute_metrics(**c, patient_id="P7")  # type: ignore[arg-type]
    vt = t.vertebrae.set_index("level")
    assert list(t.vertebrae["level"]) == ["T12", "L1", "L2"]
    assert vt["vertebra_voxels"].tolist() == [150, 150, 150]
    assert vt["vertebra_volume_mm3"].tolist() == pytest.approx([150 * 0.2] * 3)  # 0.5*0.5*0.8 mm^3
    assert vt["lesion_voxels"].tolist() == [0, 10, 1]
    assert vt["lesion_count"].tolist() == [0, 2, 1]
    assert vt["involved"].tolist() == [False, True, True]
    assert vt["hi_volume_ratio"].tolist() == pytest.approx([0.0, 10 / 150, 1 / 150])
    # mid-sagittal index along k: vertebrae 1, 2: mean k = 4 -> slice 4
    # vertebra 3: mean k = (3*8*(1+...+6) + 6*7)/150 = (24*21 + 42)/150 = 3.64 -> slice 4
    assert vt["mid_sagittal_index"].tolist() == [4, 4, 4]
    assert vt["mid_sagittal_vertebra_pixels"].tolist() == [30, 30, 24]
    assert vt["mid_sagittal_lesion_pixels"].tolist() == [0, 4, 1]
    assert vt["hi_area_ratio"].tolist() == pytest.approx([0.0, 4 / 30, 1 / 24])
    assert vt["truncated"].tolist() == [True, False, True]
    assert vt["region"].tolist() == ["thoracic", "lumbar", "lumbar"]
    assert vt["label"].tolist() == [19, 20, 21]
    assert vt["threshold"].tolist() == [150.0, 160.0, 170.0]
    img, vert, les = c["intensity"], c["vertebrae"], c["lesion_ids"]
    for v, lev in enumerate(["T12", "L1", "L2"], start=1):
        vals = img[vert == v]  # type: ignore[index]
        assert vt.loc[lev, "mean_intensity"] == pytest.approx(vals.mean(), rel=1e-12)
        assert vt.loc[lev, "median_intensity"] == np.median(vals)
    l1_lesion = img[(vert == 2) & (les > 0)]  # type: ignore[index,operator]
    assert vt.loc["L1", "lesion_mean_intensity"] == pytest.approx(l1_lesion.mean())
    assert vt.loc["L1", "sir"] == pytest.approx(l1_lesion.mean() / 100.0)
    assert vt.loc["L2", "sir"] == pytest.approx(img[8, 5, 4] / 200.0)  # type: ignore[index]
    # a vertebra without lesion: zeros, and an undefined lesion mean
    assert np.isnan(vt.loc["T12", "lesion_mean_intensity"]) and np.isnan(vt.loc["T12", "sir"])
    assert (t.vertebrae["patient_id"] == "P7").all()


def test_lesion_table_by_hand() -> None:
    c = _case()
    t = compute_metrics(**c, patient_id="P7")  # type: ignore[arg-type]
    lt = t.lesions
    assert lt["lesion_id"].tolist() == [1, 2, 3]
    assert lt["level"].tolist() == ["L1", "L1", "L2"]
    aff = c["affine"]
    img = c["intensity"]
    # lesion A: centroid (4.5, 3.5, 3.5); B: (6, 8.5, 2). World z = 0.5*j - 40: A -38.25, B -35.75:
    # B has the larger z (superior), so B is numbered first within L1.
    za, zb = 0.5 * 3.5 - 40, 0.5 * 8.5 - 40
    assert zb > za
    first, second = lt.iloc[0], lt.iloc[1]
    assert first["voxels"] == 2 and second["voxels"] == 8
    xyz_b = aff @ np.array([6.0, 8.5, 2.0, 1.0])  # type: ignore[operator]
    assert (first["x_mm"], first["y_mm"], first["z_mm"]) == pytest.approx(tuple(xyz_b[:3]))
    assert second["volume_mm3"] == pytest.approx(8 * 0.2)
    assert second["max_intensity"] == img[4:6, 3:5, 3:5].max()  # type: ignore[index]
    assert lt.iloc[2]["max_intensity"] == img[8, 5, 4]  # type: ignore[index]
    # the lesion id map is renumbered to match the table
    assert set(np.unique(t.lesion_ids[6, 8:10, 2]).tolist()) == {1}
    assert set(np.unique(t.lesion_ids[4:6, 3:5, 3:5]).tolist()) == {2}
    assert t.lesion_ids[8, 5, 4] == 3


def test_patient_table_by_hand() -> None:
    t = compute_metrics(**_case(), patient_id="P7")  # type: ignore[arg-type]
    row = t.patient.iloc[0]
    assert row["patient_id"] == "P7"
    assert row["n_vertebrae"] == 3 and row["n_involved"] == 2
    assert row["involved_levels"] == "L1;L2"
    assert (row["thoracic_involved"], row["lumbar_involved"], row["cervical_involved"]) == (
        False,
        True,
        False,
    )
    assert row["dominant_region"] == "lumbar"
    assert row["total_lesion_count"] == 3
    assert row["total_lesion_volume_mm3"] == pytest.approx(11 * 0.2)
    assert row["hi_volume_ratio"] == pytest.approx(11 / 450)
    assert row["hi_area_ratio"] == pytest.approx(5 / 84)
    assert row["hi_area_ratio_max"] == pytest.approx(4 / 30)
    assert row["n_truncated"] == 2


def test_intensity_erosion_matches_scipy_per_label() -> None:
    c = _case()
    t = compute_metrics(**c, params=MetricsParams(intensity_erosion_mm=0.5))  # type: ignore[arg-type]
    img, vert = c["intensity"], c["vertebrae"]
    # 0.5 mm rounded up to whole voxels: one voxel along every axis (0.5, 0.5, 0.8 mm) -> a 3x3x3 box
    st = np.ones((3, 3, 3), bool)
    for v, lev in enumerate(["T12", "L1", "L2"], start=1):
        core = ndimage.binary_erosion(vert == v, structure=st, border_value=1)  # type: ignore[operator]
        row = t.vertebrae.set_index("level").loc[lev]
        assert row["mean_intensity"] == pytest.approx(img[core].mean(), rel=1e-12)  # type: ignore[index]
        assert row["median_intensity"] == np.median(img[core])  # type: ignore[index]
        assert row["vertebra_voxels"] == 150  # volumes are never eroded


def test_no_lesion_anywhere() -> None:
    c = _case()
    c["lesion_ids"] = np.zeros_like(c["lesion_ids"])  # type: ignore[arg-type]
    c["lesion_vertebra"] = np.array([0])
    t = compute_metrics(**c)  # type: ignore[arg-type]
    assert t.lesions.empty and list(t.lesions.columns) == list(LESION_COLUMNS)
    assert t.vertebrae["lesion_voxels"].sum() == 0 and not t.vertebrae["involved"].any()
    row = t.patient.iloc[0]
    assert row["dominant_region"] == "none" and row["involved_levels"] == "" and row["hi_area_ratio"] == 0.0


def test_patient_table_dominant_region_by_volume() -> None:
    vt = pd.DataFrame(
        {
            "level": ["T4", "T5", "L3"],
            "region": ["thoracic", "thoracic", "lumbar"],
            "involved": [True, True, True],
            "lesion_count": [1, 1, 1],
            "lesion_volume_mm3": [30.0, 30.0, 50.0],
            "vertebra_volume_mm3": [1000.0, 1000.0, 2000.0],
            "mid_sagittal_lesion_pixels": [3, 3, 4],
            "mid_sagittal_vertebra_pixels": [100, 100, 100],
            "hi_area_ratio": [0.03, 0.03, 0.04],
            "truncated": [False, False, False],
        }
    )
    row = patient_table(vt, "X").iloc[0]
    assert row["dominant_region"] == "thoracic"  # 60 mm^3 vs 50
    assert row["involved_levels"] == "T4;T5;L3"
    assert row["hi_area_ratio"] == pytest.approx(10 / 300)
