"""The change outputs of a longitudinal cohort run: changes.csv, lesion_changes.csv, patient_changes.csv.

Called by :func:`spinemri.pipeline.cohort.run_cohort` after the combined tables are written, when
they carry time points (issue 14). The numbers are :mod:`spinemri.surveillance`'s (pure); this
module reads the clinical table, matches its ids to the imaging ids as the linker does, and
writes the tables atomically.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..io.tables import write_csv
from ..params import LinkParams, as_dict

__all__ = [
    "CHANGE_FILES",
    "SurveillanceOutputs",
    "write_surveillance",
    "clinical_for_surveillance",
    "compare_folders",
]

log = logging.getLogger(__name__)

#: Table -> file name of the change outputs (DESIGN §6).
CHANGE_FILES = {
    "changes": "changes.csv",
    "lesion_changes": "lesion_changes.csv",
    "patient_changes": "patient_changes.csv",
    "level_checks": "level_checks.csv",
}


@dataclass(frozen=True)
class SurveillanceOutputs:
    """What :func:`write_surveillance` wrote and computed."""

    result: Any  # spinemri.surveillance.compare.SurveillanceResult
    statistics: dict[str, Any]
    files: dict[str, Path]
    context: Any = None  # spinemri.report.change_section.ChangeContext, for the report
    failures: tuple[str, ...] = ()  # change pictures that could not be drawn

    def notes(self) -> list[str]:
        """One line for the terminal, then what could not be done.

        Returns
        -------
        list of str
            ``"changes: 12 pairs of time points of 5 patients (changes.csv, ...): 3 new, ..."`` and
            the result's notes.
        """
        r = self.result
        counts = r.changes["status"].value_counts() if len(r.changes) else {}
        shown = ", ".join(f"{int(n)} {s}" for s, n in sorted(dict(counts).items()))
        n_pat = r.patient_changes["patient_id"].nunique() if len(r.patient_changes) else 0
        line = (
            f"changes: {len(r.patient_changes)} pair(s) of time points of {n_pat} patient(s) "
            f"({', '.join(CHANGE_FILES.values())})" + (f": {shown} vertebra(e)" if shown else "")
        )
        return [line, *(f"changes: {n}" for n in r.notes), *(f"changes: {f}" for f in self.failures)]

    def summary(self) -> dict[str, Any]:
        """The ``surveillance`` block of summary.json and provenance (strict JSON).

        Returns
        -------
        dict of str to Any
            The result's summary (status counts, level checks, notes), the change statistics
            and the parameters.
        """
        return {
            **self.result.summary(),
            "statistics": self.statistics,
            "parameters": as_dict(self.result.params),
        }


def clinical_for_surveillance(clinical: pd.DataFrame, imaging_ids: list[str], id_column: str) -> pd.DataFrame:
    """The clinical table with its ids written as the imaging ids they match (``patient_id``).

    Ids are matched as :func:`spinemri.linking.link` does: exactly, else after
    :func:`spinemri.linking.normalise_id` when exactly one imaging id has that key; rows that
    match no imaging id keep their id (and so match nothing).

    Parameters
    ----------
    clinical : pandas.DataFrame
        The clinical table (one row per patient and time point, or per patient).
    imaging_ids : list of str
        The cohort's patient ids.
    id_column : str
        The clinical table's id column.

    Returns
    -------
    pandas.DataFrame
        A copy with a ``patient_id`` column of imaging ids.
    """
    from ..linking import normalise_id

    by_key: dict[str, list[str]] = {}
    for pid in dict.fromkeys(imaging_ids):
        by_key.setdefault(normalise_id(pid), []).append(pid)
    exact = set(imaging_ids)

    def to_imaging(value: Any) -> Any:
        text = "" if pd.isna(value) else str(value).strip()
        if text in exact:
            return text
        hits = by_key.get(normalise_id(text), [])
        return hits[0] if len(hits) == 1 else text

    out = clinical.copy()
    ids = out[id_column].map(to_imaging)
    if id_column != "patient_id":
        out = out.drop(columns=[c for c in ("patient_id",) if c in out.columns])
    out["patient_id"] = ids
    if "timepoint" in out.columns:
        out["timepoint"] = out["timepoint"].map(lambda v: "" if pd.isna(v) else str(v).strip())
    return out


def write_surveillance(
    out_dir: Path,
    frames: dict[str, pd.DataFrame],
    clinical: pd.DataFrame | None = None,
    link_params: LinkParams | None = None,
    params: Any | None = None,
) -> SurveillanceOutputs:
    """Compare every patient's consecutive time points and write the change tables into ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    frames : dict of str to DataFrame
        The combined ``vertebrae``, ``patients`` and ``lesions`` tables of the run (with
        ``timepoint`` and ``scan_date``, and the frame columns the cases added).
    clinical : pandas.DataFrame, optional
        The clinical table as read (VAS per time point, radiotherapy columns).
    link_params : LinkParams, optional
        For the clinical id column.
    params : SurveillanceParams, optional
        Thresholds (defaults: docs/metrics.md, "Change between time points").

    Returns
    -------
    SurveillanceOutputs
        The result, the change statistics and the files written.
    """
    from ..surveillance.compare import compare_timepoints
    from ..surveillance.stats import change_statistics

    vertebrae = frames["vertebrae"]
    ids = [str(p) for p in vertebrae["patient_id"]]
    clin = None
    if clinical is not None:
        clin = clinical_for_surveillance(clinical, ids, (link_params or LinkParams()).id_column)
    lesions = frames.get("lesions")
    result = compare_timepoints(
        _with_text_timepoints(vertebrae),
        _with_text_timepoints(lesions) if lesions is not None and len(lesions.columns) else None,
        _with_text_timepoints(frames.get("patients")),
        clin,
        params,
    )
    statistics = change_statistics(result.patient_changes, result.timepoints, result.params)
    files = {}
    for name, fname in CHANGE_FILES.items():
        files[name] = write_csv(getattr(result, name), out_dir / fname)
    for note in result.notes:
        log.info("change between time points: %s", note)
    return SurveillanceOutputs(result, statistics, files)


def _with_text_timepoints(df: pd.DataFrame | None) -> pd.DataFrame | None:
    if df is None or "timepoint" not in df.columns:
        return df
    df = df.copy()
    df["timepoint"] = df["timepoint"].map(lambda v: "" if pd.isna(v) else str(v))
    if "scan_date" in df.columns:
        df["scan_date"] = df["scan_date"].map(lambda v: "" if pd.isna(v) else str(v))
    return df


def compare_folders(
    base: str | os.PathLike[str],
    followup: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    clinical: str | os.PathLike[str] | None = None,
    patient_id: str | None = None,
    link_params: LinkParams | None = None,
) -> SurveillanceOutputs:
    """Compare two measured time points of one patient: the output folders of two ``spinemri measure`` runs.

    Parameters
    ----------
    base, followup : path-like
        Folders holding ``vertebrae.csv`` (and ``lesions.csv``, ``patients.csv``) of the earlier
        and the later scan. Measured with ``--timepoint`` they carry each vertebra's frame and the
        lesions' positions in it (level check by heights and spacings, lesion matching); without,
        only volumes are compared and a note says what was left out.
    out_dir : path-like
        Where changes.csv, lesion_changes.csv, patient_changes.csv, level_checks.csv and
        summary.json are written (created).
    clinical : path-like, optional
        A clinical table with one row per time point (VAS, radiotherapy columns).
    patient_id : str, optional
        Compare two folders whose patient ids differ, under this id.
    link_params : LinkParams, optional
        For the clinical id column.

    Returns
    -------
    SurveillanceOutputs

    Raises
    ------
    InputError
        A folder without vertebrae.csv, two different patients without ``patient_id``, a
        follow-up dated before its base, or both folders the same time point.
    """
    import json

    from ..errors import InputError
    from ..io.atomic import write_text_atomic
    from ..io.clinical import read_clinical
    from ..io.tables import read_csv_text_columns

    text_cols = ("patient_id", "timepoint", "scan_date", "level")
    tables: list[dict[str, pd.DataFrame]] = []
    for folder in (Path(base), Path(followup)):
        if not (folder / "vertebrae.csv").is_file():
            raise InputError(f"{folder}: no vertebrae.csv; pass the --out folder of a spinemri measure run")
        t = {}
        for name in ("vertebrae", "lesions", "patients"):
            f = folder / f"{name}.csv"
            t[name] = read_csv_text_columns(f, text_cols) if f.is_file() else pd.DataFrame()
        tables.append(t)
    ids = [sorted({str(p) for p in t["vertebrae"]["patient_id"]}) for t in tables]
    if any(len(i) != 1 for i in ids):
        raise InputError(f"{base} / {followup}: each folder must hold one patient's scan (found {ids})")
    if ids[0] != ids[1] and patient_id is None:
        raise InputError(
            f"{base} is patient {ids[0][0]!r} and {followup} is {ids[1][0]!r}: not the same patient; "
            "pass --patient-id to compare them under one id"
        )
    pid = patient_id or ids[0][0]
    dates = [_one_value(t["vertebrae"], "scan_date") for t in tables]
    names = [_one_value(t["vertebrae"], "timepoint") for t in tables]
    if all(dates):
        if dates[1] < dates[0]:  # type: ignore[operator]
            raise InputError(f"{followup} was scanned on {dates[1]}, before {base} ({dates[0]}): swap them")
        if dates[0] == dates[1] and names[0] == names[1]:
            raise InputError(f"{base} and {followup} are the same time point ({names[0]}, {dates[0]})")
    if not all(dates) or names[0] == names[1] or not all(names):
        names = ["tp1", "tp2"]  # the order given on the command line
    frames: dict[str, pd.DataFrame] = {}
    for name in ("vertebrae", "lesions", "patients"):
        parts = []
        for t, tp, date in zip(tables, names, dates, strict=True):
            df = t[name].copy()
            if df.empty:
                continue
            df["patient_id"] = pid
            df["timepoint"] = tp
            df["scan_date"] = date or ""
            parts.append(df)
        frames[name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clin = read_clinical(clinical, id_column=(link_params or LinkParams()).id_column) if clinical else None
    outputs = write_surveillance(out, frames, clin, link_params)
    text = json.dumps({"surveillance": outputs.summary()}, indent=2, allow_nan=False, ensure_ascii=False)
    write_text_atomic(out / "summary.json", text + "\n")
    return outputs


def _one_value(df: pd.DataFrame, col: str) -> str | None:
    if col not in df.columns:
        return None
    values = {str(v) for v in df[col] if not pd.isna(v) and str(v)}
    return values.pop() if len(values) == 1 else None
