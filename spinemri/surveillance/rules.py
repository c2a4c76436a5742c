"""The one rule of a volume change: both a relative and an absolute change (vertebrae and lesions).

Pure, no I/O. A change is an increase when ``(V_to - V_from) / V_from >= progression_ratio`` and
``V_to - V_from >= threshold``; a decrease when ``(V_from - V_to) / V_from >= regression_ratio`` and
``V_from - V_to >= threshold``; otherwise no change. ``threshold`` is
:func:`absolute_threshold`: ``max(min_change_mm3, min_change_voxels x the larger voxel volume of
the two scans)``. A zero earlier volume is handled by the callers (``new``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .params import SurveillanceParams

__all__ = ["absolute_threshold", "volume_change_sign", "voxel_volume_mm3", "as_flag"]


def absolute_threshold(voxel_mm3_from: float, voxel_mm3_to: float, params: SurveillanceParams) -> float:
    """Smallest absolute lesion-volume change (mm^3) that counts, for two scans' voxel sizes.

    Parameters
    ----------
    voxel_mm3_from, voxel_mm3_to : float
        Voxel volumes of the two scans (NaN when unknown: then only ``min_change_mm3``).
    params : SurveillanceParams

    Returns
    -------
    float
        ``max(min_change_mm3, min_change_voxels * max(voxel volumes))``.
    """
    vox = [
        v
        for v in (voxel_mm3_from, voxel_mm3_to)
        if isinstance(v, (int, float)) and math.isfinite(v) and v > 0
    ]
    return max(params.min_change_mm3, params.min_change_voxels * max(vox)) if vox else params.min_change_mm3


def volume_change_sign(v_from: float, v_to: float, threshold_mm3: float, params: SurveillanceParams) -> int:
    """+1 for an increase, -1 for a decrease, 0 for no change (both criteria needed).

    Parameters
    ----------
    v_from, v_to : float
        Lesion volumes in mm^3 at the earlier and the later time point; ``v_from > 0``.
    threshold_mm3 : float
        :func:`absolute_threshold`.
    params : SurveillanceParams
        ``progression_ratio`` and ``regression_ratio``.

    Returns
    -------
    int
        +1, -1 or 0.

    Examples
    --------
    >>> p = SurveillanceParams()
    >>> volume_change_sign(1000.0, 1400.0, 100.0, p), volume_change_sign(100.0, 180.0, 100.0, p)
    (1, 0)
    """
    if not v_from > 0:
        return 0
    delta = v_to - v_from
    rel = delta / v_from
    # a hair of tolerance: 1000 -> 1400 is +40 % even when the volumes come from sums of voxels
    eps = 1e-9
    if rel >= params.progression_ratio - eps and delta >= threshold_mm3 - eps:
        return 1
    if -rel >= params.regression_ratio - eps and -delta >= threshold_mm3 - eps:
        return -1
    return 0


def voxel_volume_mm3(vertebrae: pd.DataFrame) -> float:
    """Voxel volume of a scan from its vertebra table (median of volume / voxels over the levels).

    Parameters
    ----------
    vertebrae : pandas.DataFrame
        With ``vertebra_volume_mm3`` and ``vertebra_voxels``.

    Returns
    -------
    float
        mm^3; NaN when the columns are missing.
    """
    if {"vertebra_volume_mm3", "vertebra_voxels"} <= set(vertebrae.columns) and len(vertebrae):
        v = pd.to_numeric(vertebrae["vertebra_volume_mm3"], errors="coerce") / pd.to_numeric(
            vertebrae["vertebra_voxels"], errors="coerce"
        )
        v = v[np.isfinite(v.astype(float))]
        if len(v):
            return float(np.median(v))
    return math.nan


def as_flag(value: object) -> bool:
    """A flag cell (``truncated``, ``involved``) as bool: True, 1 and the text ``true`` / ``1`` only.

    Parameters
    ----------
    value : object
        A bool, a number, a string read from CSV, or a missing value.

    Returns
    -------
    bool
        False for False, 0, ``"false"``, missing values and anything else.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(value == 1)
    return str(value).strip().casefold() in ("true", "1", "1.0", "yes")
