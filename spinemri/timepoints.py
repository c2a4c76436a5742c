"""Time points of a longitudinal cohort: their order and each patient's baseline (issue 14).

A longitudinal cohort's tables carry ``timepoint`` (the folder name: ``YYYY-MM-DD``, ``tpN``,
``ses-*``, or a manifest's value) and ``scan_date`` (ISO date, empty when unknown) after
``patient_id``. Pure: DataFrames in, DataFrames out.

Order of a patient's time points: by ``scan_date`` when every one of them has a date, else
by the time point's name in natural order (``tp2`` before ``tp10``).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

__all__ = ["has_timepoints", "timepoint_rank", "baseline_rows", "clinical_rows_at"]


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def has_timepoints(table: pd.DataFrame) -> bool:
    """True when a table comes from a longitudinal cohort (it has a ``timepoint`` column).

    Parameters
    ----------
    table : pandas.DataFrame
        A vertebrae, patients or lesions table.

    Returns
    -------
    bool
        Whether ``timepoint`` is one of its columns.
    """
    return "timepoint" in table.columns


def timepoint_rank(table: pd.DataFrame) -> pd.Series:
    """The rank (0 = first) of each row's time point among its patient's time points.

    Parameters
    ----------
    table : pandas.DataFrame
        With ``patient_id``, ``timepoint`` and optionally ``scan_date``.

    Returns
    -------
    pandas.Series
        Integer rank per row (same index); rows of one patient and time point share a rank.
    """
    rank = pd.Series(0, index=table.index, dtype="int64")
    if table.empty:
        return rank
    dates = (
        table["scan_date"].fillna("").astype(str)
        if "scan_date" in table.columns
        else pd.Series("", index=table.index)
    )
    tps = table["timepoint"].fillna("").astype(str)
    for _, idx in table.groupby(table["patient_id"].astype(str), sort=False).groups.items():
        names = sorted(set(tps[idx]))
        by_name = {n: set(dates[idx][tps[idx] == n]) - {""} for n in names}
        all_dated = all(len(d) == 1 for d in by_name.values())

        def key(n: str, by_name: dict[str, set[str]] = by_name, dated: bool = all_dated) -> tuple[Any, ...]:
            return (min(by_name[n]) if dated else "", _natural(n))

        order = {n: i for i, n in enumerate(sorted(names, key=key))}
        rank[idx] = [order[n] for n in tps[idx]]
    return rank


def baseline_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each patient's first time point (all rows when there are no time points).

    The cross-sectional analysis of a longitudinal cohort (the seed study's tests) uses each
    patient's baseline scan, so that every patient counts once.

    Parameters
    ----------
    table : pandas.DataFrame
        A combined table of a run.

    Returns
    -------
    pandas.DataFrame
        The baseline rows, in their original order, index reset.
    """
    if not has_timepoints(table) or table.empty:
        return table
    return table[timepoint_rank(table) == 0].reset_index(drop=True)


def clinical_rows_at(
    clinical: pd.DataFrame, rows: pd.DataFrame, id_column: str = "patient_id"
) -> pd.DataFrame:
    """The clinical rows for the given imaging rows' time points, when the clinical table has them.

    A clinical table with one row per patient and time point (a ``timepoint`` column) is cut to
    the rows whose patient (matched as :func:`spinemri.linking.normalise_id` matches) and
    ``timepoint`` are those of ``rows``; a clinical table without a ``timepoint`` column is
    returned unchanged (one row per patient, or dates the linker chooses between).

    Parameters
    ----------
    clinical : pandas.DataFrame
        The clinical table.
    rows : pandas.DataFrame
        Imaging rows with ``patient_id`` and ``timepoint`` (e.g. :func:`baseline_rows`).
    id_column : str, default "patient_id"
        The clinical table's id column.

    Returns
    -------
    pandas.DataFrame
        The selected clinical rows (index reset).
    """
    from .linking import normalise_id

    if "timepoint" not in clinical.columns or id_column not in clinical.columns or not has_timepoints(rows):
        return clinical
    wanted = {
        (normalise_id(p), str(t).strip())
        for p, t in zip(rows["patient_id"], rows["timepoint"].fillna(""), strict=True)
    }
    keep = [
        (normalise_id(p), "" if pd.isna(t) else str(t).strip()) in wanted
        for p, t in zip(clinical[id_column], clinical["timepoint"], strict=True)
    ]
    return clinical[keep].reset_index(drop=True)
