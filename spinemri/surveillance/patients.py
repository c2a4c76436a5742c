"""Per-patient change between two time points (``patient_changes.csv``).

Pure pandas, no I/O. Totals of each time point (``n_involved``, ``total_lesion_volume_mm3``,
``hi_volume_ratio``, ``hi_area_ratio``) come from its patients.csv row when given, else from its
vertebra rows with the definitions of DESIGN §5. The overall ``status`` is the status of the
worst vertebra by :data:`SEVERITY` (worst first); levels ``outside_fov`` or ``not_comparable``
do not take part; a patient with no level compared is ``not_comparable``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..levels import level_index
from .timepoints import TimepointPair

__all__ = ["SEVERITY", "PATIENT_CHANGE_COLUMNS", "timepoint_totals", "compare_patient", "patient_frame"]

#: Vertebra statuses from worst to best: a new involved level (spread: progression in RECIST and
#: MDA) first, then growth, then growth that may be pseudoprogression, then no change, shrinkage,
#: complete resolution, no disease.
SEVERITY = ("new", "progressing", "indeterminate", "stable", "regressing", "resolved", "uninvolved")

PATIENT_CHANGE_COLUMNS = (
    "patient_id",
    "timepoint_from",
    "timepoint_to",
    "scan_date_from",
    "scan_date_to",
    "interval_days",
    "short_interval",
    "n_vertebrae_from",
    "n_vertebrae_to",
    "n_involved_from",
    "n_involved_to",
    "delta_n_involved",
    "total_lesion_volume_mm3_from",
    "total_lesion_volume_mm3_to",
    "delta_total_lesion_volume_mm3",
    "hi_volume_ratio_from",
    "hi_volume_ratio_to",
    "delta_hi_volume_ratio",
    "hi_area_ratio_from",
    "hi_area_ratio_to",
    "delta_hi_area_ratio",
    "new_levels",
    "resolved_levels",
    "progressing_levels",
    "indeterminate_levels",
    "n_new_levels",
    "n_resolved_levels",
    "n_progressing",
    "n_stable",
    "n_regressing",
    "n_indeterminate",
    "n_outside_fov",
    "n_not_comparable",
    "status",
    "possible_pseudoprogression",
    "level_check",
    "vas_from",
    "vas_to",
    "delta_vas",
    "vas_match_from",
    "vas_match_to",
)

_TOTALS = ("n_vertebrae", "n_involved", "total_lesion_volume_mm3", "hi_volume_ratio", "hi_area_ratio")


def timepoint_totals(vertebrae: pd.DataFrame, patient: pd.DataFrame | None = None) -> dict[str, float]:
    """The patient-level burden of one time point.

    Parameters
    ----------
    vertebrae : pandas.DataFrame
        The time point's vertebra rows (one patient).
    patient : pandas.DataFrame, optional
        Its patients.csv row: its values win where present.

    Returns
    -------
    dict of str to float
        ``n_vertebrae``, ``n_involved``, ``total_lesion_volume_mm3``, ``hi_volume_ratio``
        (sum lesion / sum vertebra volume), ``hi_area_ratio`` (sum of mid-sagittal lesion pixels /
        vertebra pixels; NaN without those columns).
    """
    v = vertebrae
    les = pd.to_numeric(v.get("lesion_volume_mm3", pd.Series(dtype=float)), errors="coerce")
    vol = pd.to_numeric(v.get("vertebra_volume_mm3", pd.Series(dtype=float)), errors="coerce")
    count = pd.to_numeric(v.get("lesion_count", pd.Series(0, index=v.index)), errors="coerce").fillna(0)
    out: dict[str, float] = {
        "n_vertebrae": float(len(v)),
        "n_involved": float((count >= 1).sum()),
        "total_lesion_volume_mm3": float(les.sum()),
        "hi_volume_ratio": float(les.sum() / vol.sum()) if vol.sum() > 0 else math.nan,
        "hi_area_ratio": math.nan,
    }
    if {"mid_sagittal_lesion_pixels", "mid_sagittal_vertebra_pixels"} <= set(v.columns):
        den = float(pd.to_numeric(v["mid_sagittal_vertebra_pixels"], errors="coerce").sum())
        num = float(pd.to_numeric(v["mid_sagittal_lesion_pixels"], errors="coerce").sum())
        out["hi_area_ratio"] = num / den if den > 0 else math.nan
    if patient is not None and len(patient):
        row = patient.iloc[0]
        for k in _TOTALS:
            if k in patient.columns:
                try:
                    x = float(row[k])
                except (TypeError, ValueError):
                    continue
                if math.isfinite(x):
                    out[k] = x
    return out


def _levels(levels: list[str], statuses: list[str], status: str) -> list[str]:
    return sorted((lv for lv, s in zip(levels, statuses, strict=True) if s == status), key=level_index)


def compare_patient(
    changes: pd.DataFrame,
    totals_from: dict[str, float],
    totals_to: dict[str, float],
    pair: TimepointPair,
    *,
    short_interval: bool = False,
    vas_from: tuple[float, str] = (math.nan, "none"),
    vas_to: tuple[float, str] = (math.nan, "none"),
) -> dict[str, Any]:
    """The ``patient_changes.csv`` row of one patient between two time points.

    Parameters
    ----------
    changes : pandas.DataFrame
        The pair's ``changes.csv`` rows (:func:`spinemri.surveillance.vertebrae.compare_vertebrae`).
    totals_from, totals_to : dict of str to float
        :func:`timepoint_totals` of the two time points.
    pair : TimepointPair
    short_interval : bool, default False
    vas_from, vas_to : tuple of (float, str)
        VAS and how it was matched (:func:`spinemri.surveillance.timepoints.vas_by_timepoint`).

    Returns
    -------
    dict of str to Any
        One row with the :data:`PATIENT_CHANGE_COLUMNS`.
    """
    statuses = [str(x) for x in changes["status"]]
    present = set(statuses)
    levels = [str(x) for x in changes["level"]]
    ranked = [s for s in SEVERITY if s in present]
    status = ranked[0] if ranked else "not_comparable"
    row: dict[str, Any] = {**pair.keys(), "short_interval": short_interval}
    for k in _TOTALS:
        row[f"{k}_from"] = totals_from.get(k, math.nan)
        row[f"{k}_to"] = totals_to.get(k, math.nan)
    row["delta_n_involved"] = row["n_involved_to"] - row["n_involved_from"]
    row["delta_total_lesion_volume_mm3"] = (
        row["total_lesion_volume_mm3_to"] - row["total_lesion_volume_mm3_from"]
    )
    row["delta_hi_volume_ratio"] = row["hi_volume_ratio_to"] - row["hi_volume_ratio_from"]
    row["delta_hi_area_ratio"] = row["hi_area_ratio_to"] - row["hi_area_ratio_from"]
    for s, col in (
        ("new", "new_levels"),
        ("resolved", "resolved_levels"),
        ("progressing", "progressing_levels"),
        ("indeterminate", "indeterminate_levels"),
    ):
        row[col] = ";".join(_levels(levels, statuses, s))
    row["n_new_levels"] = statuses.count("new")
    row["n_resolved_levels"] = statuses.count("resolved")
    for s in ("progressing", "stable", "regressing", "indeterminate", "outside_fov", "not_comparable"):
        row[f"n_{s}"] = statuses.count(s)
    row["status"] = status
    row["possible_pseudoprogression"] = (
        bool(changes["possible_pseudoprogression"].any()) if len(changes) else False
    )
    checks = list(dict.fromkeys(changes["level_check"])) if len(changes) else ["not checked"]
    row["level_check"] = "; ".join(str(c) for c in checks)
    row["vas_from"], row["vas_match_from"] = vas_from
    row["vas_to"], row["vas_match_to"] = vas_to
    row["delta_vas"] = row["vas_to"] - row["vas_from"]
    return {k: row[k] for k in PATIENT_CHANGE_COLUMNS}


def patient_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``patient_changes.csv`` table from :func:`compare_patient` rows.

    Parameters
    ----------
    rows : list of dict
        :func:`compare_patient` results.

    Returns
    -------
    pandas.DataFrame
        :data:`PATIENT_CHANGE_COLUMNS`, whole counts as integers.
    """
    out = pd.DataFrame(rows, columns=list(PATIENT_CHANGE_COLUMNS))
    ints = [c for c in PATIENT_CHANGE_COLUMNS if c.startswith("n_")] + ["delta_n_involved"]
    out[ints] = out[ints].astype(np.int64) if len(out) else out[ints]
    return out.astype({"short_interval": bool, "possible_pseudoprogression": bool})
