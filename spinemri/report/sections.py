"""The report's sections about the run: summary in words, patients, exclusions, parameters."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..io.ids import safe_id
from .format import escape as _e
from .format import format_number as _num
from .format import p_phrase as _peq
from .protocols import AnalysisLike

if TYPE_CHECKING:
    from .change_section import ChangeContext

__all__ = [
    "ReportContext",
    "plain_summary",
    "excluded_patients",
    "patients_section",
    "excluded_section",
    "parameters_section",
]


@dataclass(frozen=True)
class ReportContext:
    """What a cohort run knows beyond the analysis, shown in its report (all optional).

    Parameters
    ----------
    patients : pandas.DataFrame or None, default None
        The per-patient imaging table (``patients.csv`` or ``linked.csv``), joined on
        ``patient_id`` for the columns the analysis does not carry (``involved_levels``).
    link_report : pandas.DataFrame or None, default None
        ``link_report.csv`` (columns ``kind, imaging_id, clinical_id, clinical_row,
        detail``): the reasons of the exclusions (missing or invalid VAS, unmatched ids).
    qc_dir : path-like or None, default None
        The folder of the QC overlays ``<safe_id>.png``; each patient row of the report
        links to its overlay (relative to the report) and shows it as a small linked thumbnail.
    parameters : mapping or None, default None
        The measurement parameters (by group, e.g. ``{"run": ..., "segmentation": ...}``),
        listed with the statistics parameters.
    thumbnail_px : int, default 96
        Display height in pixels of the QC thumbnails (linked images, not embedded).
    summary_extra : mapping or None, default None
        Blocks added to summary.json beside the analysis (``{"surveillance": ...}`` of a
        longitudinal run); strict JSON.
    change : ChangeContext or None, default None
        The surveillance outputs of a cohort with time points
        (:class:`spinemri.report.change_section.ChangeContext`): the report gains the section
        *Change between time points*. None: the cross-sectional report, unchanged.
    planning : pandas.DataFrame or None, default None
        ``planning.csv`` of the run (issue 15): the report gains the section *Planning summary
        (decision support)*.
    """

    patients: pd.DataFrame | None = None
    link_report: pd.DataFrame | None = None
    qc_dir: str | os.PathLike[str] | None = None
    parameters: Mapping[str, Any] | None = None
    thumbnail_px: int = 96
    summary_extra: Mapping[str, Any] | None = None
    change: ChangeContext | None = None
    planning: pd.DataFrame | None = None


_PRETTY = {
    "n_involved": "the number of involved vertebrae",
    "hi_area_ratio": "the high-intensity area ratio",
    "hi_volume_ratio": "the high-intensity volume ratio",
    "vas": "pain (VAS)",
}


def _spearman(d: Mapping[str, Any], x: str, y: str) -> Mapping[str, Any] | None:
    for s in d.get("spearman", []):
        if s.get("x") == x and s.get("y") == y:
            return dict(s)
    return None


def plain_summary(analysis: AnalysisLike) -> str:
    """One paragraph in plain language of what the analysis found, generated from its numbers.

    The wording is that of associations in the analysed cohort (“in this cohort ... was
    associated with ...”), never of causes; a result is called clear when its p-value is
    below 1 − ``ci_level`` (0.05 by default) and otherwise said not to be clear.

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis (read through ``to_dict()``).

    Returns
    -------
    str
        Plain text (not HTML-escaped): the sample, the lumbar comparison, the comparison of
        regions, the correlations of the imaging metrics with each other and with pain, and
        the prediction of severe pain; analyses that are not computable are named as such.
    """
    d = analysis.to_dict()
    alpha = 1.0 - float(d.get("parameters", {}).get("ci_level", 0.95))

    def clear(p: Any) -> bool:
        return p is not None and math.isfinite(float(p)) and float(p) < alpha

    parts = [
        f"In this cohort of {d['n_patients']} patients, {d['n_with_vas']} had a valid pain score (VAS 0-10)."
    ]
    mw = d.get("lumbar_vs_non_lumbar", {})
    if mw.get("computable"):
        ml, mo = _num(mw["median_lumbar"]), _num(mw["median_other"])
        higher = (mw.get("effect_size") or 0) > 0
        if clear(mw["p_value"]):
            parts.append(
                f"Patients with lumbar involvement reported {'more' if higher else 'less'} pain than those "
                f"without (median VAS {ml} vs {mo}; Mann-Whitney {_peq(mw['p_value'])})."
            )
        else:
            parts.append(
                f"Pain of patients with and without lumbar involvement did not differ clearly (median VAS "
                f"{ml} vs {mo}; Mann-Whitney {_peq(mw['p_value'])})."
            )
    else:
        parts.append("The lumbar vs non-lumbar comparison was not computable.")
    kr = d.get("vas_by_dominant_region", {})
    if kr.get("computable"):
        groups = kr.get("groups") or {}
        top = max(groups, key=lambda g: groups[g].get("median") or -1) if groups else None
        verb = "differed between" if clear(kr["p_value"]) else "did not differ clearly between"
        extra = f"; highest in the {top} group, median {_num(groups[top]['median'])}" if top else ""
        parts.append(
            f"Pain {verb} the dominant regions of involvement (Kruskal-Wallis {_peq(kr['p_value'])}"
            f"{extra if clear(kr['p_value']) else ''})."
        )
    else:
        parts.append("The comparison of dominant regions was not computable.")

    def corr(x: str, y: str) -> str | None:
        s = _spearman(d, x, y)
        if s is None or not s.get("computable"):
            return None
        rho = float(s["rho"])
        sign = "positively" if rho > 0 else "negatively"
        a, b, stat = _PRETTY.get(x, x), _PRETTY.get(y, y), f"ρ = {rho:.2f}, {_peq(s['p_value'])}"
        if clear(s["p_value"]):
            return f"{a} was {sign} associated with {b} (Spearman {stat})"
        return f"no clear association of {a} with {b} was found (Spearman {stat})"

    found = [
        c
        for c in (
            corr("n_involved", "hi_area_ratio"),
            corr("vas", "n_involved"),
            corr("vas", "hi_area_ratio"),
        )
        if c
    ]
    if found:
        text = "; ".join(found)
        parts.append(text[0].upper() + text[1:] + ".")
    pr = d.get("prediction", {})
    if pr.get("computable"):
        parts.append(
            f"A cross-validated logistic model distinguished severe pain "
            f"(VAS ≥ {d['parameters']['severe_vas']:g}) from "
            f"the imaging findings with an AUC of {_num(pr['auc'], 2)} (CI {_num(pr['ci_low'], 2)} – "
            f"{_num(pr['ci_high'], 2)}; 0.5 is chance)."
        )
    else:
        parts.append("The prediction of severe pain was not computable.")
    parts.append(
        "These are associations in this sample, not evidence that the findings cause the pain; "
        "the details, warnings and methods are below."
    )
    return " ".join(parts)


def _rel_link(target: Path, report_dir: Path | None) -> str:
    if report_dir is None:
        return target.as_posix()
    return Path(os.path.relpath(target.resolve(), report_dir.resolve())).as_posix()


def patients_section(analysis: AnalysisLike, context: ReportContext, report_dir: Path | None) -> str:
    """The *Patients* section: one row per analysed patient, with QC thumbnail and link when known.

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis (its ``data`` rows).
    context : ReportContext
        ``patients`` adds ``involved_levels``; ``qc_dir`` adds the QC column and links.
    report_dir : Path or None
        The report's folder (links are relative to it).

    Returns
    -------
    str
        HTML (empty without a ``patient_id`` column).
    """
    data = analysis.data.copy()
    if "patient_id" not in data:
        return ""
    data["patient_id"] = data["patient_id"].astype(str)
    if (
        context.patients is not None
        and "involved_levels" in context.patients
        and "patient_id" in context.patients
    ):
        levels = context.patients[["patient_id", "involved_levels"]].copy()
        levels["patient_id"] = levels["patient_id"].astype(str)
        data = data.merge(levels.drop_duplicates("patient_id"), on="patient_id", how="left")
    qc_dir = Path(context.qc_dir) if context.qc_dir is not None else None
    head = [
        "patient",
        *(["QC", "viewer"] if qc_dir is not None else []),
        "involved vertebrae",
        "involved levels",
        "dominant region",
        "hi_area_ratio",
        "hi_volume_ratio",
        "VAS",
    ]
    rows = []
    for _, r in data.iterrows():
        pid = str(r["patient_id"])
        cells = []
        if qc_dir is not None:
            png = qc_dir / f"{safe_id(pid)}.png"
            href = _e(_rel_link(png, report_dir))
            cells.append(f'<td><a href="{href}">{_e(pid)}</a></td>')
            # linked, not embedded: a base64 blob could spell a name by chance, and the sheet is already
            # beside the report (the browser scales it)
            cells.append(
                f'<td><a href="{href}"><img alt="QC overlay of {_e(pid)}" src="{href}" '
                f'height="{context.thumbnail_px}" loading="lazy"></a></td>'
                if png.is_file()
                else "<td>—</td>"
            )
            page = qc_dir.parent / "viewer" / f"{safe_id(pid)}.html"  # the case viewer beside qc/
            cells.append(
                f'<td><a href="{_e(_rel_link(page, report_dir))}">scroll the slices</a></td>'
                if page.is_file()
                else "<td>—</td>"
            )
        else:
            cells.append(f"<td>{_e(pid)}</td>")
        lv = r.get("involved_levels")
        lv_text = "" if lv is None or (isinstance(lv, float) and not math.isfinite(lv)) else str(lv)
        vas_f = _float(r.get("vas"))
        n_inv = _float(r.get("n_involved"))
        if vas_f is None:
            vas_text = "no valid VAS"
        else:
            vas_text = _num(int(vas_f)) if vas_f.is_integer() else _num(vas_f)
        cells += [
            f"<td>{_num(int(n_inv)) if n_inv is not None else '—'}</td>",
            f"<td>{_e(lv_text.replace(';', ', ')) if lv_text else '—'}</td>",
            f"<td>{_e(r.get('dominant_region', ''))}</td>",
            f"<td>{_num(_float(r.get('hi_area_ratio')))}</td>",
            f"<td>{_num(_float(r.get('hi_volume_ratio')))}</td>",
            f"<td>{vas_text}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = (
        " Each id links to its QC overlay (mid-sagittal slice, lesions drawn over the vertebrae) in "
        "<code>qc/</code>."
        if qc_dir is not None
        else ""
    )
    return (
        "<h2 id='patients'>Patients</h2>"
        f"<p>One row per analysed patient: the imaging measurements and the pain score.{note}</p>"
        "<table class='patients'><thead><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


_EXCLUSION_REASONS = {
    "missing_vas": "no VAS in the clinical table",
    "invalid_vas": "VAS not a number in 0-10",
    "unmatched_imaging": "no row of the clinical table matches the imaging id",
    "missing_id": "clinical row without a patient id",
    "ambiguous": "several clinical rows match",
    "duplicate": "duplicate clinical row",
    "outside_window": "clinical date outside the matching window",
    "invalid_date": "clinical date not readable",
}


def excluded_patients(
    analysis: AnalysisLike, link_report: pd.DataFrame | None = None
) -> list[tuple[str, str]]:
    """The patients left out of the VAS analyses, each with the reason.

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis; its ``data`` rows without a valid VAS are the excluded patients.
    link_report : pandas.DataFrame, optional
        ``link_report.csv`` (``kind, imaging_id, clinical_id, clinical_row, detail``); its
        rows name the reason of each exclusion (``missing_vas``, ``invalid_vas``,
        ``unmatched_imaging``, ...).

    Returns
    -------
    list of (str, str)
        ``(patient id, reason)`` for every analysed patient without a valid VAS (reason
        ``"no valid VAS"`` when the link report says nothing more), then
        ``(clinical id, reason)`` for every clinical row that matched no image.
    """
    data = analysis.data
    if "patient_id" not in data or "vas" not in data:
        return []
    vas = pd.to_numeric(data["vas"], errors="coerce").to_numpy(dtype=float)
    missing = [str(p) for p, v in zip(data["patient_id"], vas, strict=True) if not np.isfinite(v)]
    reasons: dict[str, list[str]] = {}
    unmatched_clinical: list[tuple[str, str]] = []
    if link_report is not None and {"kind", "imaging_id"} <= set(link_report.columns):
        for _, row in link_report.iterrows():
            kind = str(row["kind"])
            if kind in ("exact", "normalised"):
                continue
            if kind == "unmatched_clinical":
                cid = row.get("clinical_id")
                unmatched_clinical.append(
                    (str(cid) if pd.notna(cid) else "?", "clinical row without an image (not analysed)")
                )
                continue
            iid = row["imaging_id"]
            if pd.isna(iid):
                continue
            reason = _EXCLUSION_REASONS.get(kind, kind)
            where = []
            if "clinical_id" in row and pd.notna(row["clinical_id"]):
                where.append(f"clinical id {row['clinical_id']!s}")
            if "clinical_row" in row and pd.notna(row["clinical_row"]):
                where.append(f"row {_num(_float(row['clinical_row']) and int(row['clinical_row']))}")
            if kind not in _EXCLUSION_REASONS and pd.notna(row.get("detail")):
                where.append(str(row["detail"]))
            if where:
                reason = f"{reason} ({', '.join(where)})"
            reasons.setdefault(str(iid), []).append(reason)
    out = [(pid, "; ".join(reasons.get(pid, [])) or "no valid VAS") for pid in missing]
    return out + unmatched_clinical


def excluded_section(analysis: AnalysisLike, context: ReportContext) -> str:
    """The *Excluded patients* section (:func:`excluded_patients` as a table).

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis.
    context : ReportContext
        Its ``link_report`` gives the reasons.

    Returns
    -------
    str
        HTML.
    """
    rows = excluded_patients(analysis, context.link_report)
    if not rows:
        return "<h2 id='excluded'>Excluded patients</h2><p>None: every analysed patient has a valid VAS.</p>"
    body = "".join(f"<tr><td>{_e(pid)}</td><td>{_e(why)}</td></tr>" for pid, why in rows)
    return (
        "<h2 id='excluded'>Excluded patients</h2>"
        "<p>Left out of every VAS analysis (their imaging still counts in the correlation of the "
        "imaging metrics with each other):</p>"
        f"<table class='excluded'><thead><tr><th>patient</th><th>reason</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out += _flat(f"{prefix}.{k}" if prefix else str(k), v)
        return out
    return [(prefix, value)]


def _param_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(_param_text(x) for x in v) if v else "(none)"
    if v is None:
        return "—"
    return _num(v) if isinstance(v, float) else _e(v)


def parameters_section(d: Mapping[str, Any], context: ReportContext) -> str:
    """The *Parameters* section: the measurement parameters (when known) and the statistics ones.

    Parameters
    ----------
    d : mapping
        The summary (``to_dict()``), for its ``parameters``.
    context : ReportContext
        Its ``parameters`` (by group) are listed first.

    Returns
    -------
    str
        HTML.
    """
    blocks = []
    groups: list[tuple[str, Mapping[str, Any]]] = []
    for name, params in (context.parameters or {}).items():
        if isinstance(params, Mapping):
            groups.append((f"measurement: {name}", params))
    groups.append(("statistics", d.get("parameters", {})))
    for title, params in groups:
        rows = "".join(
            f"<tr><td><code>{_e(k)}</code></td><td>{_param_text(v)}</td></tr>" for k, v in _flat("", params)
        )
        blocks.append(
            f"<h3>{_e(title)}</h3><table class='params'><thead><tr><th>parameter</th><th>value</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )
    if not context.parameters:
        blocks.insert(
            0,
            "<p>The measurement (segmentation) parameters are in the <code>provenance.json</code> of the "
            "run that wrote the tables.</p>",
        )
    return "<h2 id='parameters'>Parameters</h2>" + "".join(blocks)
