"""Linking, the study's analysis and the change outputs at the end of a cohort run."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ..params import LinkParams, RunConfig, as_dict
from .state import NOT_HASHED_FIELDS
from .surveil import CHANGE_FILES, SurveillanceOutputs, write_surveillance

__all__ = [
    "check_clinical",
    "link_and_analyze",
    "surveil_if_longitudinal",
    "write_planning",
    "PLANNING_FILES",
]

log = logging.getLogger(__name__)


def link_and_analyze(
    out_dir: Path,
    patients: Any,
    clinical: Path,
    config: RunConfig | None = None,
    link_params: LinkParams | None = None,
    surveillance: SurveillanceOutputs | None = None,
    planning: tuple[Any, Any] | None = None,
) -> tuple[Path, list[str]]:
    """Link the patients to the clinical table and write linked.csv and analysis/ (the report).

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    patients : pandas.DataFrame
        The combined patients table (a longitudinal cohort's baseline rows are used).
    clinical : Path
        The clinical table.
    config : RunConfig, optional
        The run's options, listed in the report.
    link_params : LinkParams, optional
        How to link (id, VAS, date columns).
    surveillance : SurveillanceOutputs, optional
        A longitudinal run's change outputs: their summary goes into summary.json.
    planning : tuple of (DataFrame, DataFrame), optional
        :func:`write_planning`'s tables, shown in the report's planning section.

    Returns
    -------
    tuple of (Path, list of str)
        The analysis folder and the link report's summary lines.
    """
    from ..io.clinical import read_clinical
    from ..io.tables import write_csv
    from ..linking import link
    from ..params import measure_params
    from ..report.html import ReportContext, write_analysis
    from ..stats.study import analyze
    from ..timepoints import baseline_rows, clinical_rows_at, has_timepoints

    link_params = link_params or LinkParams()
    clinical_df = read_clinical(clinical, id_column=link_params.id_column)
    if has_timepoints(patients):  # the cross-sectional analysis counts each patient once: at baseline
        patients = baseline_rows(patients)
        clinical_df = clinical_rows_at(clinical_df, patients, id_column=link_params.id_column)
    linked, report = link(patients, clinical_df, params=link_params)
    write_csv(linked, out_dir / "linked.csv")
    link_frame = report.to_frame()
    write_csv(link_frame, out_dir / "link_report.csv")
    analysis = analyze(linked)
    analysis_dir = out_dir / "analysis"
    parameters: dict[str, Any] = {}
    if config is not None:
        # the parameters the cases were measured with (as in provenance.json), for the report
        segment, metrics = measure_params({"method": config.method, **dict(config.segment)})
        # how the cases ran (workers, scheduler, force) is in provenance.json, not in the report: the
        # report is the same whichever executor ran the cases (issue 18)
        run = {k: v for k, v in as_dict(config).items() if k not in NOT_HASHED_FIELDS}
        parameters = {"run": run, "segmentation": as_dict(segment), "metrics": as_dict(metrics)}
    context = ReportContext(
        patients=linked,
        link_report=link_frame,
        qc_dir=out_dir / "qc",
        parameters=parameters or None,
        summary_extra={"surveillance": surveillance.summary()} if surveillance is not None else None,
        change=surveillance.context if surveillance is not None else None,
        planning=planning[0] if planning is not None else None,
    )
    write_analysis(analysis, analysis_dir, context=context)
    return analysis_dir, [report.summary()]


def check_clinical(clinical: Path, link_params: LinkParams | None) -> None:
    """Refuse a clinical table that cannot be linked (a missing column, an ambiguous VAS format).

    Parameters
    ----------
    clinical : Path
        The clinical table.
    link_params : LinkParams or None
        How it is linked.

    Raises
    ------
    InputError
        No usable input (exit 2), raised before any case is measured.
    """
    from ..errors import InputError, LinkError
    from ..io.clinical import read_clinical
    from ..linking import check_clinical_table

    link_params = link_params or LinkParams()
    try:
        check_clinical_table(read_clinical(clinical, id_column=link_params.id_column), link_params)
    except LinkError as exc:
        text = str(exc) if str(clinical) in str(exc) else f"{clinical}: {exc}"
        raise InputError(f"{text} (no case was measured)") from exc


def surveil_if_longitudinal(
    out_dir: Path,
    frames: dict[str, Any],
    clinical: Path | None,
    link_params: LinkParams | None = None,
    cases: list[Any] | None = None,
    config: RunConfig | None = None,
) -> SurveillanceOutputs | None:
    """Write the change tables when the cohort has time points; remove stale ones when it has none.

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    frames : dict of str to DataFrame
        The combined tables of the run.
    clinical : Path or None
        The clinical table (VAS per time point, radiotherapy), when the run has one.
    link_params : LinkParams, optional
        For the clinical id column.
    cases : list of Case, optional
        The run's cases: with them the per-patient timelines (``OUT/timelines/``) and the
        side-by-side QC of every changed level (``OUT/qc_change/``) are drawn.
    config : RunConfig, optional
        The run's options (series choice, mask resampling) to reload the scans with.

    Returns
    -------
    SurveillanceOutputs or None
        None for a cohort without time points (or without any case done).
    """
    from ..io.clinical import read_clinical
    from ..timepoints import has_timepoints

    vertebrae = frames.get("vertebrae")
    for folder in CHANGE_FOLDERS:  # pictures of an earlier run's changes would look current
        if (out_dir / folder).is_dir():
            for f in (out_dir / folder).glob("*.png"):
                f.unlink()
    if vertebrae is None or not has_timepoints(vertebrae) or vertebrae.empty:
        for fname in CHANGE_FILES.values():  # an earlier longitudinal run's tables would look current
            (out_dir / fname).unlink(missing_ok=True)
        return None
    clinical_df = None
    if clinical is not None:
        clinical_df = read_clinical(clinical, id_column=(link_params or LinkParams()).id_column)
    outputs = write_surveillance(out_dir, frames, clinical_df, link_params)
    if cases is None:
        return outputs
    from ..report.change_outputs import write_change_outputs

    failures: list[str] = []
    context = write_change_outputs(
        out_dir,
        outputs.result,
        outputs.statistics,
        {(c.patient_id, c.timepoint or ""): c for c in cases},
        vertebrae=vertebrae,
        series=config.series if config is not None else None,
        resample_mask=config.resample_mask if config is not None else False,
        failures=failures,
    )
    return dataclasses.replace(outputs, context=context, failures=tuple(failures))


#: Folders of the change pictures (per-patient timelines, side-by-side QC of changed levels).
CHANGE_FOLDERS = ("timelines", "qc_change")


#: Files of the per-patient planning summary (issue 15; decision support).
PLANNING_FILES = {"planning": "planning.csv", "planning_levels": "planning_levels.csv"}


def write_planning(
    out_dir: Path,
    frames: dict[str, Any],
    clinical: Path | None = None,
    link_params: LinkParams | None = None,
    surveillance: SurveillanceOutputs | None = None,
) -> tuple[Any, Any] | None:
    """Write planning.csv and planning_levels.csv from the cases' guidance tables (issue 15).

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    frames : dict of str to DataFrame
        The combined tables; ``guidance`` holds the per-vertebra guidance columns (empty with
        ``--no-guidance``: then nothing is written and stale planning files are removed).
    clinical : Path, optional
        The clinical table (``pain_mechanical``, ``lesion_type`` complete the SINS).
    link_params : LinkParams, optional
        For the clinical id column.
    surveillance : SurveillanceOutputs, optional
        A longitudinal run's changes: the change since the last scan.

    Returns
    -------
    tuple of (DataFrame, DataFrame) or None
        ``planning`` and ``planning_levels``, or None when there is no guidance table.
    """
    from ..guidance.planning import planning_cohort
    from ..io.clinical import read_clinical
    from ..io.tables import write_csv
    from .surveil import clinical_for_surveillance

    guidance = frames.get("guidance")
    vertebrae = frames.get("vertebrae")
    if guidance is None or guidance.empty or vertebrae is None or vertebrae.empty:
        for fname in PLANNING_FILES.values():
            (out_dir / fname).unlink(missing_ok=True)
        return None
    keys = [
        k for k in ("patient_id", "timepoint", "level") if k in vertebrae.columns and k in guidance.columns
    ]
    extra = [c for c in guidance.columns if c not in vertebrae.columns or c in keys]
    merged = vertebrae.merge(guidance[extra], on=keys, how="left")
    clin = None
    if clinical is not None:
        lp = link_params or LinkParams()
        raw = read_clinical(clinical, id_column=lp.id_column)
        clin = clinical_for_surveillance(raw, [str(p) for p in vertebrae["patient_id"]], lp.id_column)
    result = surveillance.result if surveillance is not None else None
    planning, levels = planning_cohort(
        merged,
        clinical=clin
        if clin is not None and {"pain_mechanical", "lesion_type"} & set(clin.columns)
        else None,
        changes=result.changes if result is not None else None,
        patient_changes=result.patient_changes if result is not None else None,
        height_changes=_height_changes(guidance),
    )
    write_csv(planning, out_dir / PLANNING_FILES["planning"])
    write_csv(levels, out_dir / PLANNING_FILES["planning_levels"])
    return planning, levels


def _height_changes(guidance: Any) -> Any:
    """New or progressing compression fractures between each patient's last two time points.

    :func:`spinemri.morphometry.compare_heights` of the guidance tables (body heights per
    level) of the two scans; None for a cohort without time points.
    """
    import pandas as pd

    from ..morphometry import compare_heights
    from ..timepoints import timepoint_rank

    if "timepoint" not in guidance.columns or guidance.empty:
        return None
    g = guidance.assign(_rank=timepoint_rank(guidance))
    rows = []
    for pid, h in g.groupby(g["patient_id"].astype(str), sort=True):
        ranks = sorted(set(h["_rank"]))
        if len(ranks) < 2:
            continue
        before, after = h[h["_rank"] == ranks[-2]], h[h["_rank"] == ranks[-1]]
        c = compare_heights(before, after)
        rows.append(c.assign(patient_id=pid, timepoint_to=str(after["timepoint"].iloc[0])))
    return pd.concat(rows, ignore_index=True) if rows else None
