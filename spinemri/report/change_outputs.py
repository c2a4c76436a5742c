"""Every picture of the change section in one call, for the cohort runner: :func:`write_change_outputs`.

Writes the per-patient timelines (:mod:`.timeline`) and the side-by-side QC of every changed level
(:mod:`.qc_pair`) into the run's folder and returns the :class:`~.change_section.ChangeContext`
that :func:`spinemri.report.html.render_report` renders (``ReportContext(change=...)``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .change_section import ChangeContext
from .qc_pair import CaseInputs, render_change_qc
from .timeline import write_timelines

if TYPE_CHECKING:
    from ..surveillance.compare import SurveillanceResult

__all__ = ["write_change_outputs"]


def write_change_outputs(
    out_dir: str | os.PathLike[str],
    result: SurveillanceResult,
    statistics: Mapping[str, Any] | None,
    cases_index: Mapping[tuple[str, str], CaseInputs],
    *,
    vertebrae: pd.DataFrame | None = None,
    series: str | None = None,
    resample_mask: bool = False,
    failures: list[str] | None = None,
) -> ChangeContext:
    """Write ``OUT/timelines/<patient>.png`` and ``OUT/qc_change/*.png``; return the section's context.

    Parameters
    ----------
    out_dir : path-like
        The run's output folder (with ``masks/<key>_lesions.nii.gz`` and ``vertebrae.csv``).
    result : SurveillanceResult
        :func:`spinemri.surveillance.compare.compare_timepoints` of the cohort.
    statistics : mapping or None
        :func:`spinemri.surveillance.stats.change_statistics` (None: not computed).
    cases_index : mapping of (str, str) to CaseInputs
        ``(patient_id, timepoint)`` -> the case (:class:`spinemri.io.discover.Case`).
    vertebrae : pandas.DataFrame, optional
        vertebrae.csv of every time point (read from ``OUT/vertebrae.csv`` when not given).
    series, resample_mask
        As for the run (:func:`spinemri.report.qc_pair.render_change_qc`).
    failures : list of str, optional
        Collects the QC pairs that could not be drawn (otherwise their error is raised).

    Returns
    -------
    ChangeContext
        The tables, statistics, summary and level checks of ``result`` with the paths written.
    """
    out = Path(out_dir)
    if vertebrae is None and (out / "vertebrae.csv").is_file():
        vertebrae = pd.read_csv(
            out / "vertebrae.csv", dtype={"patient_id": str, "timepoint": str, "labels": str}
        )
    timelines = write_timelines(out, result.changes, vertebrae, result.timepoints)
    qc = render_change_qc(
        out,
        result.changes,
        {(str(p), str(t)): c for (p, t), c in cases_index.items()},
        vertebrae=vertebrae,
        series=series,
        resample_mask=resample_mask,
        failures=failures,
    )
    return ChangeContext(
        result.changes,
        result.patient_changes,
        statistics,
        result.summary(),
        result.level_checks,
        timelines,
        qc,
    )
