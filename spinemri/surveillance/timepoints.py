"""Time points of a patient: their order, the consecutive pairs, and the clinical facts per time point.

Pure pandas, no I/O. The tables of every time point carry ``timepoint`` (str) and ``scan_date``
(a date, or NaT when unknown) columns. Time points are ordered by scan date, then (undated ones
last) by their name in natural order (``tp2`` before ``tp10``, ISO dates chronologically).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..levels import is_level, region_of

__all__ = [
    "TimepointPair",
    "natural_key",
    "timepoint_order",
    "consecutive_pairs",
    "vas_by_timepoint",
    "radiotherapy_courses",
    "RadiotherapyCourse",
]


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key of a time point name: digits compare as numbers (``tp2`` < ``tp10``).

    Parameters
    ----------
    name : str

    Returns
    -------
    tuple
        Alternating text and integer parts.
    """
    parts = re.split(r"(\d+)", str(name).casefold())
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _date(value: Any) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    return None if pd.isna(ts) else ts.normalize()


def timepoint_order(table: pd.DataFrame) -> pd.DataFrame:
    """One row per patient and time point, in chronological order.

    Parameters
    ----------
    table : pandas.DataFrame
        Any per-time-point table with ``patient_id``, ``timepoint`` and (optional) ``scan_date``.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``timepoint``, ``scan_date`` (Timestamp or NaT), ``order``
        (0, 1, ... within each patient).

    Raises
    ------
    InputError
        When ``patient_id`` or ``timepoint`` is missing, or one time point has two scan dates.
    """
    missing = {"patient_id", "timepoint"} - set(table.columns)
    if missing:
        raise InputError(f"time points: the table lacks column(s) {sorted(missing)}")
    t = table[["patient_id", "timepoint"]].astype(str).copy()
    t["scan_date"] = [_date(v) for v in table["scan_date"]] if "scan_date" in table else None
    rows = []
    for (pid, tp), grp in t.groupby(["patient_id", "timepoint"], sort=False):
        dates = {d for d in grp["scan_date"] if d is not None}
        if len(dates) > 1:
            raise InputError(
                f"patient {pid}, time point {tp}: several scan dates "
                f"({', '.join(sorted(str(d.date()) for d in dates))}); one time point is one scan date"
            )
        rows.append({"patient_id": pid, "timepoint": tp, "scan_date": next(iter(dates)) if dates else pd.NaT})
    out = pd.DataFrame(rows, columns=["patient_id", "timepoint", "scan_date"])
    out["scan_date"] = pd.to_datetime(out["scan_date"])
    first = {pid: n for n, pid in enumerate(dict.fromkeys(out["patient_id"]))}
    keys = sorted(set(out["timepoint"]), key=natural_key)
    rank = {tp: n for n, tp in enumerate(keys)}
    out["_p"] = out["patient_id"].map(first)
    out["_undated"] = out["scan_date"].isna()
    out["_k"] = out["timepoint"].map(rank)
    out = out.sort_values(["_p", "_undated", "scan_date", "_k"], kind="mergesort")
    out["order"] = out.groupby("patient_id").cumcount()
    return out.drop(columns=["_p", "_undated", "_k"]).reset_index(drop=True)


@dataclass(frozen=True)
class TimepointPair:
    """Two consecutive time points of one patient."""

    patient_id: str
    timepoint_from: str
    timepoint_to: str
    scan_date_from: pd.Timestamp | None
    scan_date_to: pd.Timestamp | None

    @property
    def interval_days(self) -> float:
        """Days from the earlier to the later scan (NaN when a date is unknown)."""
        if self.scan_date_from is None or self.scan_date_to is None:
            return math.nan
        return float((self.scan_date_to - self.scan_date_from).days)

    def keys(self, level: str | None = None) -> dict[str, Any]:
        """The identity columns of a change row of this pair, in the order of the change tables.

        Parameters
        ----------
        level : str, optional
            For a per-level row (changes.csv, lesion_changes.csv): ``level`` and ``region``
            follow ``patient_id``.

        Returns
        -------
        dict of str to Any
            ``patient_id``, [``level``, ``region``,] ``timepoint_from``, ``timepoint_to``,
            ``scan_date_from``, ``scan_date_to``, ``interval_days``.
        """
        row: dict[str, Any] = {"patient_id": self.patient_id}
        if level is not None:
            row.update(level=level, region=region_of(level))
        row.update(
            timepoint_from=self.timepoint_from,
            timepoint_to=self.timepoint_to,
            scan_date_from=self.scan_date_from,
            scan_date_to=self.scan_date_to,
            interval_days=self.interval_days,
        )
        return row


def consecutive_pairs(table: pd.DataFrame) -> list[TimepointPair]:
    """Every consecutive pair of time points of every patient (t0 -> t1, t1 -> t2, ...).

    Parameters
    ----------
    table : pandas.DataFrame
        Any per-time-point table (see :func:`timepoint_order`).

    Returns
    -------
    list of TimepointPair
        Patients in order of first appearance, pairs in chronological order.
    """
    order = timepoint_order(table)
    out = []
    for pid, grp in order.groupby("patient_id", sort=False):
        g = grp.sort_values("order")
        for a, b in zip(g.itertuples(index=False), g.iloc[1:].itertuples(index=False), strict=False):
            out.append(
                TimepointPair(
                    str(pid),
                    str(a.timepoint),
                    str(b.timepoint),
                    None if pd.isna(a.scan_date) else a.scan_date,
                    None if pd.isna(b.scan_date) else b.scan_date,
                )
            )
    return out


def vas_by_timepoint(
    clinical: pd.DataFrame | None,
    timepoints: pd.DataFrame,
    *,
    window_days: float = 30.0,
    vas_column: str = "vas",
    date_column: str | None = None,
) -> pd.DataFrame:
    """The VAS of each patient and time point from a clinical table of one row per assessment.

    Parameters
    ----------
    clinical : pandas.DataFrame or None
        ``patient_id``, ``vas`` and a ``timepoint`` column and/or a date column
        (``date_column``; default: the first of ``vas_date``, ``date``, ``assessment_date``,
        ``scan_date`` present).
    timepoints : pandas.DataFrame
        :func:`timepoint_order` output (``patient_id``, ``timepoint``, ``scan_date``).
    window_days : float, default 30.0
        Largest distance in days between an assessment and the scan for a date match.
    vas_column : str, default "vas"
    date_column : str, optional

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``timepoint``, ``vas`` (NaN when none), ``vas_match`` (``timepoint``:
        same time point id; ``date``: nearest assessment within the window; ``ambiguous``: two
        different VAS equally near, or two rows for the same time point; ``none``).

    Notes
    -----
    Ids are matched exactly (as written in patients.csv). A time point id match wins over a
    date match. VAS values that are not numbers are ignored.
    """
    out = timepoints[["patient_id", "timepoint"]].astype(str).copy()
    out["vas"] = np.nan
    out["vas_match"] = "none"
    if clinical is None or clinical.empty or "patient_id" not in clinical or vas_column not in clinical:
        return out
    c = clinical.copy()
    c["patient_id"] = c["patient_id"].astype(str).str.strip()
    c["_vas"] = pd.to_numeric(c[vas_column], errors="coerce")
    c = c[np.isfinite(c["_vas"].astype(float))]
    if date_column is None:
        date_column = next((d for d in ("vas_date", "date", "assessment_date", "scan_date") if d in c), None)
    c["_date"] = [_date(v) for v in c[date_column]] if date_column else None
    by_pid = {str(k): g for k, g in c.groupby("patient_id")}
    dates = dict(
        zip(
            zip(timepoints["patient_id"].astype(str), timepoints["timepoint"].astype(str), strict=True),
            timepoints["scan_date"],
            strict=True,
        )
    )
    for n, (pid, tp) in enumerate(zip(out["patient_id"], out["timepoint"], strict=True)):
        g = by_pid.get(pid)
        if g is None:
            continue
        if "timepoint" in g:
            hit = g[g["timepoint"].astype(str).str.strip() == tp]
            if len(hit):
                vals = set(hit["_vas"].astype(float))
                if len(vals) == 1:
                    out.iloc[n, 2], out.iloc[n, 3] = vals.pop(), "timepoint"
                else:
                    out.iloc[n, 3] = "ambiguous"
                continue
        scan = dates.get((pid, tp))
        if date_column is None or scan is None or pd.isna(scan):
            continue
        dist = [abs((d - scan).days) if d is not None else math.inf for d in g["_date"]]
        best = min(dist) if dist else math.inf
        if best > window_days:
            continue
        vals = {float(v) for v, d in zip(g["_vas"], dist, strict=True) if d == best}
        if len(vals) == 1:
            out.iloc[n, 2], out.iloc[n, 3] = vals.pop(), "date"
        else:
            out.iloc[n, 3] = "ambiguous"
    return out


@dataclass(frozen=True)
class RadiotherapyCourse:
    """One course of radiotherapy: its date (None when unknown) and the levels treated."""

    patient_id: str
    date: pd.Timestamp | None
    levels: frozenset[str]


def _levels_of(text: Any) -> frozenset[str]:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return frozenset()
    parts = [p.strip() for p in re.split(r"[;,\s]+", str(text)) if p.strip()]
    bad = [p for p in parts if not is_level(p.upper()) and not is_level(p)]
    if bad:
        raise InputError(
            f"clinical radiotherapy_levels {text!r}: {', '.join(bad)} are not level names; "
            "write levels like 'L2;L3'"
        )
    return frozenset(p if is_level(p) else p.upper() for p in parts)


def radiotherapy_courses(clinical: pd.DataFrame | None) -> list[RadiotherapyCourse]:
    """The radiotherapy courses of a clinical table (``radiotherapy_date``, ``radiotherapy_levels``).

    Parameters
    ----------
    clinical : pandas.DataFrame or None
        One row per patient or per patient and time point; rows without levels are skipped,
        repeated (patient, date, levels) rows count once.

    Returns
    -------
    list of RadiotherapyCourse
        Empty when the table lacks the columns.

    Raises
    ------
    InputError
        When a ``radiotherapy_levels`` cell names something that is not a level.
    """
    if clinical is None or "radiotherapy_levels" not in clinical or "patient_id" not in clinical:
        return []
    seen: set[tuple[str, Any, frozenset[str]]] = set()
    out = []
    dates: Iterable[Any] = (
        clinical["radiotherapy_date"] if "radiotherapy_date" in clinical else [None] * len(clinical)
    )
    for pid, d, lv in zip(
        clinical["patient_id"].astype(str).str.strip(), dates, clinical["radiotherapy_levels"], strict=True
    ):
        levels = _levels_of(lv)
        if not levels:
            continue
        key = (pid, _date(d), levels)
        if key in seen:
            continue
        seen.add(key)
        out.append(RadiotherapyCourse(pid, _date(d), levels))
    return out
