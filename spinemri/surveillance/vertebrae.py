"""Per-vertebra change between two time points (``changes.csv``).

Pure pandas, no I/O. One row per level present in either time point. The ``status`` of a level
(docs/metrics.md, "Change between time points"):

* ``not_comparable`` — the level check (:mod:`.consistency`) found the two scans' levels shifted
  or inconsistent, and no shift was applied: nothing is compared;
* ``outside_fov`` — the level is in one scan only (outside the other's field of view); never
  ``new`` or ``resolved``;
* ``uninvolved`` — no lesion at either time point;
* ``new`` — involved now, not before;
* ``resolved`` — involved before, not now;
* ``progressing`` / ``regressing`` — lesion volume up by at least ``progression_ratio`` / down by
  at least ``regression_ratio`` AND by at least the absolute threshold (:mod:`.rules`);
* ``stable`` — involved at both, neither;
* ``indeterminate`` — would be ``new`` or ``progressing``, but the level was irradiated within
  ``pseudoprogression_days`` before the later scan (``possible_pseudoprogression`` True): growth
  after radiotherapy may be pseudoprogression (SPINO), not progression.

Flags: ``short_interval`` (interval below ``min_interval_days``), ``truncated`` (the field of view
cuts the vertebra in either scan: volumes may be partial).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..levels import level_index
from .consistency import LevelCheck
from .lesions import irradiated_before
from .params import SurveillanceParams
from .rules import absolute_threshold, as_flag, volume_change_sign, voxel_volume_mm3
from .timepoints import RadiotherapyCourse, TimepointPair

__all__ = ["STATUSES", "CHANGE_COLUMNS", "compare_vertebrae"]

#: Every vertebra status.
STATUSES = (
    "uninvolved",
    "new",
    "progressing",
    "stable",
    "regressing",
    "resolved",
    "indeterminate",
    "outside_fov",
    "not_comparable",
)

CHANGE_COLUMNS = (
    "patient_id",
    "level",
    "region",
    "timepoint_from",
    "timepoint_to",
    "scan_date_from",
    "scan_date_to",
    "interval_days",
    "lesion_volume_mm3_from",
    "lesion_volume_mm3_to",
    "hi_volume_ratio_from",
    "hi_volume_ratio_to",
    "delta_hi_volume_ratio",
    "hi_area_ratio_from",
    "hi_area_ratio_to",
    "lesion_count_from",
    "lesion_count_to",
    "new_lesions",
    "resolved_lesions",
    "status",
    # additions (documented in docs/metrics.md)
    "present_from",
    "present_to",
    "delta_lesion_volume_mm3",
    "relative_volume_change",
    "min_change_mm3",
    "short_interval",
    "truncated",
    "possible_pseudoprogression",
    "level_check",
)


_USED = (
    "level",
    "lesion_volume_mm3",
    "hi_volume_ratio",
    "hi_area_ratio",
    "lesion_count",
    "involved",
    "truncated",
)


def _by_level(t: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rec in t[[c for c in _USED if c in t.columns]].to_dict("records"):
        out.setdefault(str(rec["level"]), rec)
    return out


def _num(row: dict[str, Any] | None, col: str) -> float:
    if row is None or col not in row:
        return math.nan
    try:
        return float(row[col])
    except (TypeError, ValueError):
        return math.nan


def _involved(row: dict[str, Any]) -> bool:
    if "lesion_count" in row and row["lesion_count"] == row["lesion_count"]:
        return bool(int(row["lesion_count"]) >= 1)
    return as_flag(row.get("involved", False))


def compare_vertebrae(
    vertebrae_from: pd.DataFrame,
    vertebrae_to: pd.DataFrame,
    pair: TimepointPair,
    params: SurveillanceParams | None = None,
    *,
    lesion_changes: pd.DataFrame | None = None,
    check: LevelCheck | None = None,
    level_check: str | None = None,
    courses: Sequence[RadiotherapyCourse] = (),
) -> pd.DataFrame:
    """``changes.csv`` rows of one patient between two time points.

    Parameters
    ----------
    vertebrae_from, vertebrae_to : pandas.DataFrame
        The vertebra tables of the two time points (this patient; DESIGN §5 columns:
        ``level``, ``lesion_volume_mm3``, ``hi_volume_ratio``, ``hi_area_ratio``,
        ``lesion_count``; ``truncated``, ``vertebra_voxels``, ``vertebra_volume_mm3`` used when
        present). When a level shift was applied, ``vertebrae_to`` carries the renamed levels.
    pair : TimepointPair
    params : SurveillanceParams, optional
    lesion_changes : pandas.DataFrame, optional
        :func:`spinemri.surveillance.lesions.compare_lesions` rows of this pair: ``new_lesions``
        and ``resolved_lesions`` count its ``new`` and ``disappeared`` lesions. Without it those
        two columns are missing values.
    check : LevelCheck, optional
        The level check of this pair; when it is not comparable (``shifted``, ``inconsistent``)
        every row is ``not_comparable``. None: no check (as labelled).
    level_check : str, optional
        The text of the ``level_check`` column; given, the levels are compared whatever
        ``check`` says (the caller applied the check's shift to ``vertebrae_to`` and says so
        here). Default: ``check.column()`` (``"not checked"`` without a check).
    courses : sequence of RadiotherapyCourse
        Radiotherapy of the patient (the pseudoprogression guard).

    Returns
    -------
    pandas.DataFrame
        :data:`CHANGE_COLUMNS`, one row per level present in either time point, cranial to caudal.
    """
    p = params or SurveillanceParams()
    thr = absolute_threshold(voxel_volume_mm3(vertebrae_from), voxel_volume_mm3(vertebrae_to), p)
    interval = pair.interval_days
    short = bool(math.isfinite(interval) and interval < p.min_interval_days)
    comparable = level_check is not None or check is None or check.comparable
    check_text = (
        level_check if level_check is not None else ("not checked" if check is None else check.column())
    )
    rows_a, rows_b = _by_level(vertebrae_from), _by_level(vertebrae_to)
    levels = sorted(set(rows_a) | set(rows_b), key=level_index)
    counts: dict[str, tuple[int, int]] = {}
    if lesion_changes is not None and len(lesion_changes):
        lc = lesion_changes
        for lv, cls, n_from, n_to in zip(
            lc["level"], lc["lesion_class"], lc["n_from"], lc["n_to"], strict=True
        ):
            new, gone = counts.get(lv, (0, 0))
            counts[lv] = (new + int(n_to) * (cls == "new"), gone + int(n_from) * (cls == "disappeared"))
    rows = []
    for lv in levels:
        a, b = rows_a.get(lv), rows_b.get(lv)
        va, vb = _num(a, "lesion_volume_mm3"), _num(b, "lesion_volume_mm3")
        hva, hvb = _num(a, "hi_volume_ratio"), _num(b, "hi_volume_ratio")
        new_l: Any = pd.NA
        gone_l: Any = pd.NA
        if lesion_changes is not None and a is not None and b is not None and comparable:
            if lv in counts or not (_involved(a) or _involved(b)):  # lesions but no rows: unmatched
                new_l, gone_l = counts.get(lv, (0, 0))
        truncated = any(as_flag(r.get("truncated", False)) for r in (a, b) if r is not None)
        rt = False
        if not comparable:
            status = "not_comparable"
        elif a is None or b is None:
            status = "outside_fov"
        else:
            ia, ib = _involved(a), _involved(b)
            if not ia and not ib:
                status = "uninvolved"
            elif ib and not ia:
                status = "new"
            elif ia and not ib:
                status = "resolved"
            else:
                status = {1: "progressing", -1: "regressing", 0: "stable"}[volume_change_sign(va, vb, thr, p)]
            if status in ("new", "progressing"):
                rt = irradiated_before(
                    courses, pair.patient_id, lv, pair.scan_date_to, p.pseudoprogression_days
                )
                if rt:
                    status = "indeterminate"
        rows.append(
            {
                **pair.keys(lv),
                "lesion_volume_mm3_from": va,
                "lesion_volume_mm3_to": vb,
                "hi_volume_ratio_from": hva,
                "hi_volume_ratio_to": hvb,
                "delta_hi_volume_ratio": hvb - hva,
                "hi_area_ratio_from": _num(a, "hi_area_ratio"),
                "hi_area_ratio_to": _num(b, "hi_area_ratio"),
                "lesion_count_from": _num(a, "lesion_count"),
                "lesion_count_to": _num(b, "lesion_count"),
                "new_lesions": new_l,
                "resolved_lesions": gone_l,
                "status": status,
                "present_from": a is not None,
                "present_to": b is not None,
                "delta_lesion_volume_mm3": vb - va,
                "relative_volume_change": (vb - va) / va if va > 0 else math.nan,
                "min_change_mm3": thr,
                "short_interval": short,
                "truncated": truncated,
                "possible_pseudoprogression": rt,
                "level_check": check_text,
            }
        )
    out = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    for c in ("lesion_count_from", "lesion_count_to", "new_lesions", "resolved_lesions"):
        out[c] = pd.array(
            [pd.NA if (isinstance(v, float) and np.isnan(v)) or v is pd.NA else int(v) for v in out[c]],
            dtype="Int64",
        )
    return out.astype(
        {
            "present_from": bool,
            "present_to": bool,
            "short_interval": bool,
            "truncated": bool,
            "possible_pseudoprogression": bool,
        }
    )
