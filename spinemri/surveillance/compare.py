"""Every comparison of a cohort's time points in one call: :func:`compare_timepoints`.

Pure: the per-time-point tables in (the pipeline's vertebrae / lesions / patients tables with
``timepoint`` and ``scan_date`` columns), the change tables out. For every patient and every
consecutive pair of time points: the level check (:mod:`.consistency`), the lesion matching
(:mod:`.lesions`), the vertebra statuses (:mod:`.vertebrae`) and the patient row (:mod:`.patients`),
with the VAS of each time point and the radiotherapy guard from the clinical table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import InputError
from .consistency import (
    LEVEL_CHECK_COLUMNS,
    LevelCheck,
    check_level_consistency,
    level_sequence,
    shift_levels,
)
from .frames import FRAME_COLUMNS, POSITION_COLUMNS, lesion_positions
from .lesions import LESION_CHANGE_COLUMNS, compare_lesions
from .params import SurveillanceParams
from .patients import compare_patient, patient_frame, timepoint_totals
from .timepoints import consecutive_pairs, radiotherapy_courses, timepoint_order, vas_by_timepoint
from .vertebrae import CHANGE_COLUMNS, compare_vertebrae

__all__ = ["SurveillanceResult", "compare_timepoints", "TIMEPOINT_COLUMNS"]

#: Columns of :attr:`SurveillanceResult.timepoints` (one row per patient and time point).
TIMEPOINT_COLUMNS = (
    "patient_id",
    "timepoint",
    "scan_date",
    "order",
    "n_vertebrae",
    "n_involved",
    "total_lesion_volume_mm3",
    "hi_volume_ratio",
    "hi_area_ratio",
    "vas",
    "vas_match",
)


@dataclass(frozen=True)
class SurveillanceResult:
    """The change tables of a cohort.

    Attributes
    ----------
    changes : pandas.DataFrame
        ``changes.csv``: one row per patient x level x consecutive pair.
    lesion_changes : pandas.DataFrame
        ``lesion_changes.csv``: one row per lesion group (match, merge, split, new, disappeared).
    patient_changes : pandas.DataFrame
        ``patient_changes.csv``: one row per patient x consecutive pair.
    level_checks : pandas.DataFrame
        The level check of every level of every pair (:data:`LEVEL_CHECK_COLUMNS`).
    checks : tuple of LevelCheck
        The verdict of every pair.
    timepoints : pandas.DataFrame
        One row per patient and time point: order, burden and VAS (the mixed model's input).
    notes : tuple of str
        What could not be done and why (e.g. lesions without positions: no lesion matching).
    params : SurveillanceParams
    """

    changes: pd.DataFrame
    lesion_changes: pd.DataFrame
    patient_changes: pd.DataFrame
    level_checks: pd.DataFrame
    checks: tuple[LevelCheck, ...]
    timepoints: pd.DataFrame
    notes: tuple[str, ...] = ()
    params: SurveillanceParams = field(default_factory=SurveillanceParams)

    def summary(self) -> dict[str, Any]:
        """Strict-JSON summary for summary.json: counts of statuses and classes, the level checks.

        Returns
        -------
        dict of str to Any
            ``n_pairs``, ``vertebra_status_counts``, ``lesion_class_counts``,
            ``patient_status_counts``, ``level_checks`` (one dict per pair), ``notes``.
        """

        def counts(df: pd.DataFrame, col: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in df[col].value_counts().sort_index().items()} if len(df) else {}

        return {
            "n_pairs": len(self.patient_changes),
            "vertebra_status_counts": counts(self.changes, "status"),
            "lesion_class_counts": counts(self.lesion_changes, "lesion_class"),
            "patient_status_counts": counts(self.patient_changes, "status"),
            "level_checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes),
        }


class _ByTimepoint:
    """The rows of a table per (patient_id, timepoint), grouped once (ids compared as text)."""

    def __init__(self, t: pd.DataFrame | None) -> None:
        self.empty = pd.DataFrame(columns=[] if t is None else t.columns)
        self.groups: dict[tuple[str, str], pd.DataFrame] = {}
        if t is not None and len(t):
            keys = [t["patient_id"].astype(str), t["timepoint"].astype(str)]
            self.groups = {(str(a), str(b)): g for (a, b), g in t.groupby(keys, sort=False)}

    def __call__(self, pid: str, tp: str) -> pd.DataFrame:
        return self.groups.get((pid, tp), self.empty)


def _check_columns(name: str, t: pd.DataFrame | None, need: set[str]) -> None:
    if t is None:
        return
    missing = need - set(t.columns)
    if missing:
        raise InputError(f"compare time points: the {name} table lacks column(s) {sorted(missing)}")


def compare_timepoints(
    vertebrae: pd.DataFrame,
    lesions: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
    clinical: pd.DataFrame | None = None,
    params: SurveillanceParams | None = None,
) -> SurveillanceResult:
    """Compare every consecutive pair of time points of every patient.

    Parameters
    ----------
    vertebrae : pandas.DataFrame
        vertebrae.csv of all time points: ``patient_id``, ``timepoint``, ``scan_date`` (optional),
        ``level`` and the DESIGN §5 columns; with the :data:`~.frames.FRAME_COLUMNS` for the level
        check's heights and spacings and for lesion positions.
    lesions : pandas.DataFrame, optional
        lesions.csv of all time points, with ``timepoint``; with the
        :data:`~.frames.POSITION_COLUMNS`, or world centroids ``x_mm``, ``y_mm``, ``z_mm`` from
        which they are computed when ``vertebrae`` has the frame columns. Without it (or without
        positions) there is no lesion matching: lesion_changes is empty, ``new_lesions`` and
        ``resolved_lesions`` are missing values, and a note says why.
    patients : pandas.DataFrame, optional
        patients.csv of all time points (totals per time point; recomputed from ``vertebrae``
        otherwise).
    clinical : pandas.DataFrame, optional
        One row per patient and time point (or assessment): ``patient_id``, ``vas`` and
        ``timepoint`` and/or a date column; ``radiotherapy_date`` / ``radiotherapy_levels``.
    params : SurveillanceParams, optional

    Returns
    -------
    SurveillanceResult

    Raises
    ------
    InputError
        When a table lacks a needed column, a time point has two scan dates, or a
        ``radiotherapy_levels`` cell is not a list of levels.
    """
    p = params or SurveillanceParams()
    _check_columns(
        "vertebra",
        vertebrae,
        {"patient_id", "timepoint", "level", "lesion_volume_mm3", "vertebra_volume_mm3"},
    )
    _check_columns("lesion", lesions, {"patient_id", "timepoint", "level", "volume_mm3"})
    _check_columns("patient", patients, {"patient_id", "timepoint"})
    notes: list[str] = []
    les = lesions
    if (
        les is not None
        and not all(c in les for c in POSITION_COLUMNS[3:6])
        and not all(c in les for c in POSITION_COLUMNS[:3])
    ):
        if all(c in vertebrae for c in FRAME_COLUMNS) and all(c in les for c in ("x_mm", "y_mm", "z_mm")):
            les = lesion_positions(les, vertebrae)
        else:
            notes.append(
                "lesions have no position in the vertebra frame (rel_* / offset_*_mm) and the vertebrae no "
                "frame columns (centroid_*_mm, axis_*, extent_*_mm): lesions were not matched"
            )
            les = None
    courses = radiotherapy_courses(clinical)
    order = timepoint_order(vertebrae)
    vas = vas_by_timepoint(clinical, order, window_days=p.vas_window_days)
    vas_of = {
        (r.patient_id, r.timepoint): (float(r.vas), str(r.vas_match)) for r in vas.itertuples(index=False)
    }
    vert_of, les_of, pat_of = _ByTimepoint(vertebrae), _ByTimepoint(les), _ByTimepoint(patients)
    totals = {
        (r.patient_id, r.timepoint): timepoint_totals(
            vert_of(r.patient_id, r.timepoint),
            pat_of(r.patient_id, r.timepoint) if patients is not None else None,
        )
        for r in order.itertuples(index=False)
    }
    ch_parts, lc_parts, checks, check_rows, patient_rows = [], [], [], [], []
    for pair in consecutive_pairs(vertebrae):
        va = vert_of(pair.patient_id, pair.timepoint_from)
        vb = vert_of(pair.patient_id, pair.timepoint_to)
        check = check_level_consistency(va, vb, p)
        checks.append(check)
        check_rows.append(check.table)
        comparable, text = check.comparable, check.column()
        lb_all = les_of(pair.patient_id, pair.timepoint_to) if les is not None else None
        if check.verdict == "shifted" and p.apply_level_shift and check.shift is not None:
            seq = level_sequence(list(va["level"]), list(vb["level"]))
            vb = shift_levels(vb, check.shift, seq)
            lb_all = shift_levels(lb_all, check.shift, seq) if lb_all is not None else None
            comparable, text = True, f"{text} (compared after renaming the later levels)"
        lesion_rows = None
        if les is not None and comparable and lb_all is not None:
            la = les_of(pair.patient_id, pair.timepoint_from)
            lesion_rows = compare_lesions(la, lb_all, va, vb, pair, p, courses=courses)
            lc_parts.append(lesion_rows)
        ch = compare_vertebrae(
            va,
            vb,
            pair,
            p,
            lesion_changes=lesion_rows,
            check=check,
            level_check=text if comparable else None,
            courses=courses,
        )
        ch_parts.append(ch)
        key_a, key_b = (pair.patient_id, pair.timepoint_from), (pair.patient_id, pair.timepoint_to)
        patient_rows.append(
            compare_patient(
                ch,
                totals[key_a],
                totals[key_b],
                pair,
                short_interval=bool(
                    math.isfinite(pair.interval_days) and pair.interval_days < p.min_interval_days
                ),
                vas_from=vas_of.get(key_a, (math.nan, "none")),
                vas_to=vas_of.get(key_b, (math.nan, "none")),
            )
        )
    changes = (
        pd.concat(ch_parts, ignore_index=True) if ch_parts else pd.DataFrame(columns=list(CHANGE_COLUMNS))
    )
    lesion_changes = (
        pd.concat(lc_parts, ignore_index=True)
        if lc_parts
        else pd.DataFrame(columns=list(LESION_CHANGE_COLUMNS))
    )
    level_checks = (
        pd.concat(check_rows, ignore_index=True)
        if check_rows
        else pd.DataFrame(columns=list(LEVEL_CHECK_COLUMNS))
    )
    tp = order.copy()
    for k in ("n_vertebrae", "n_involved", "total_lesion_volume_mm3", "hi_volume_ratio", "hi_area_ratio"):
        tp[k] = [totals[(a, b)][k] for a, b in zip(tp["patient_id"], tp["timepoint"], strict=True)]
    tp = tp.merge(vas, on=["patient_id", "timepoint"], how="left")[list(TIMEPOINT_COLUMNS)]
    return SurveillanceResult(
        changes, lesion_changes, patient_frame(patient_rows), level_checks, tuple(checks), tp, tuple(notes), p
    )
