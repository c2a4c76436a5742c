"""Hand-built per-time-point tables for the surveillance tests (truth written from the definitions)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from spinemri.surveillance.consistency import STANDARD_SEQUENCE

#: A lumbar-thoracic profile: volume +10 % and height +3 % per level caudally (mm^3, mm).
PROFILE_LEVELS = ("T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")


def base_volume(level: str) -> float:
    return 20000.0 * 1.10 ** STANDARD_SEQUENCE.index(level)


def base_height(level: str) -> float:
    return 18.0 * 1.03 ** STANDARD_SEQUENCE.index(level) / 1.03**16


def vertebra_rows(
    patient: str,
    timepoint: str,
    scan_date: str | None,
    lesion_mm3: Mapping[str, float],
    *,
    levels: Sequence[str] = PROFILE_LEVELS,
    anatomy_of: Mapping[str, str] | None = None,
    voxel_mm3: float = 6.25,
    rotation_deg: float = 0.0,
    offset_mm: Sequence[float] = (0.0, 0.0, 0.0),
    lesion_count: Mapping[str, int] | None = None,
    wobble: float = 0.0,
) -> pd.DataFrame:
    """One time point's vertebra table; ``anatomy_of[level]`` is the true vertebra under that label."""
    rows = []
    z = 0.0
    anatomy_of = dict(anatomy_of or {})
    true_levels = [anatomy_of.get(lv, lv) for lv in levels]
    centroids = {}
    for lv in STANDARD_SEQUENCE[::-1]:  # stack from the sacrum upwards: spacing = height + 6 mm disc
        centroids[lv] = z
        z += base_height(lv) + 6.0
    th = math.radians(rotation_deg)
    rot = np.array([[1, 0, 0], [0, math.cos(th), -math.sin(th)], [0, math.sin(th), math.cos(th)]])
    for n, (lv, true) in enumerate(zip(levels, true_levels, strict=True)):
        w = 1.0 + wobble * (1 if n % 2 else -1)
        vol = base_volume(true) * w
        les = float(lesion_mm3.get(lv, 0.0))
        count = (lesion_count or {}).get(lv, 1 if les > 0 else 0)
        c = rot @ np.array([0.0, 0.0, centroids[true]]) + np.asarray(offset_mm)
        axis_si = rot @ np.array([0.0, 0.0, 1.0])
        axis_ap = rot @ np.array([0.0, 1.0, 0.0])
        rows.append(
            {
                "patient_id": patient,
                "timepoint": timepoint,
                "scan_date": pd.Timestamp(scan_date) if scan_date else pd.NaT,
                "level": lv,
                "vertebra_voxels": int(round(vol / voxel_mm3)),
                "vertebra_volume_mm3": vol,
                "lesion_voxels": int(round(les / voxel_mm3)),
                "lesion_volume_mm3": les,
                "hi_volume_ratio": les / vol,
                "hi_area_ratio": les / vol * 1.1,
                "lesion_count": count,
                "involved": count >= 1,
                "truncated": False,
                "centroid_x_mm": c[0],
                "centroid_y_mm": c[1],
                "centroid_z_mm": c[2],
                "axis_si_x": axis_si[0],
                "axis_si_y": axis_si[1],
                "axis_si_z": axis_si[2],
                "axis_ap_x": axis_ap[0],
                "axis_ap_y": axis_ap[1],
                "axis_ap_z": axis_ap[2],
                "axis_lr_x": 1.0,
                "axis_lr_y": 0.0,
                "axis_lr_z": 0.0,
                "extent_si_mm": base_height(true) * w,
                "extent_ap_mm": 30.0,
                "extent_lr_mm": 40.0,
                "height_mm": base_height(true) * w,
            }
        )
    return pd.DataFrame(rows)
