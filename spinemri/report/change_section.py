"""The report's *Change between time points* section (surveillance: docs/surveillance.md).

Rendered by :func:`spinemri.report.html.render_report` when its :class:`~.sections.ReportContext`
carries a :class:`ChangeContext` (a cohort with time points); without one the report is exactly
the cross-sectional one. The section reads the tables the surveillance writes
(``changes.csv``, ``patient_changes.csv``), the strict-JSON blocks of summary.json
(``SurveillanceResult.summary()`` and ``change_statistics``) and links to the per-patient timeline
figures (:mod:`.timeline`) and the side-by-side QC of every changed level (:mod:`.qc_pair`); it
computes nothing but counts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..levels import is_level, level_index
from .change_style import STATUS_COLOURS, STATUS_ORDER, status_rgb
from .format import escape as _e
from .format import format_number as _num
from .format import format_p
from .format import p_phrase as _peq

__all__ = ["ChangeContext", "render_change_section", "status_badge"]


@dataclass(frozen=True)
class ChangeContext:
    """What the change section shows (the surveillance outputs of a run).

    Parameters
    ----------
    changes : pandas.DataFrame
        ``changes.csv`` (one row per patient x level x consecutive pair).
    patient_changes : pandas.DataFrame
        ``patient_changes.csv`` (one row per patient x consecutive pair).
    statistics : mapping or None, default None
        :func:`spinemri.surveillance.stats.change_statistics` (``delta_correlation``,
        ``mixed_model``).
    summary : mapping or None, default None
        :meth:`spinemri.surveillance.compare.SurveillanceResult.summary` (its ``level_checks``
        and ``notes`` are listed).
    level_checks : pandas.DataFrame or None, default None
        The per-level level checks (``SurveillanceResult.level_checks``): rows whose verdict is
        ``differs`` are listed with their reason.
    timelines : mapping of str to path-like, default {}
        Patient id -> timeline PNG (:func:`spinemri.report.timeline.write_timelines`).
    qc_pairs : mapping of (str, str, str, str) to path-like, default {}
        ``(patient_id, level, timepoint_from, timepoint_to)`` -> side-by-side QC PNG
        (:func:`spinemri.report.qc_pair.render_change_qc`).
    thumbnail_px : int, default 120
        Display height of the timeline thumbnails (linked images, not embedded).
    """

    changes: pd.DataFrame
    patient_changes: pd.DataFrame
    statistics: Mapping[str, Any] | None = None
    summary: Mapping[str, Any] | None = None
    level_checks: pd.DataFrame | None = None
    timelines: Mapping[str, str | os.PathLike[str]] = field(default_factory=dict)
    qc_pairs: Mapping[tuple[str, str, str, str], str | os.PathLike[str]] = field(default_factory=dict)
    thumbnail_px: int = 120


def status_badge(status: str) -> str:
    """A status as a coloured label (inline style: the report's CSS stays as it is).

    Parameters
    ----------
    status : str
        A vertebra or patient status (:data:`~.change_style.STATUS_COLOURS`).

    Returns
    -------
    str
        HTML: a ``<span class="status">`` with the status' background colour.
    """
    r, g, b = status_rgb(status)
    text = "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 165 else "#fff"
    bg = STATUS_COLOURS.get(status, "#000000")
    return (
        f'<span class="status" style="background:{bg};color:{text};padding:1px 7px;border-radius:3px;'
        f'white-space:nowrap">{_e(status.replace("_", " "))}</span>'
    )


def _rel(target: str | os.PathLike[str], report_dir: Path | None) -> str:
    p = Path(target)
    if report_dir is None:
        return p.as_posix()
    return Path(os.path.relpath(p.resolve(), report_dir.resolve())).as_posix()


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _flag(x: Any) -> bool:
    if isinstance(x, str):
        return x.strip().lower() in ("true", "1", "yes")
    try:
        return bool(x) and not (isinstance(x, float) and math.isnan(x))
    except (TypeError, ValueError):
        return False


def _text(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    try:
        if pd.isna(x):
            return ""
    except (TypeError, ValueError):
        pass
    return str(x)


def _date(x: Any) -> str:
    t = _text(x)
    if not t:
        return ""
    try:
        return str(pd.Timestamp(t).strftime("%Y-%m-%d"))
    except (TypeError, ValueError):
        return t


def _signed(x: Any, digits: int = 3) -> str:
    v = _f(x)
    if v is None:
        return "—"
    if float(v).is_integer() and digits == 0:
        return f"{int(v):+d}"
    s = _num(v, digits)
    return s if s.startswith("-") or s == "0" else f"+{s}"


def _not_computable(res: Mapping[str, Any]) -> str:
    return f'<div class="nc"><b>Not computable:</b> {_e(res.get("reason", ""))}</div>'


def _counts(df: pd.DataFrame) -> dict[str, int]:
    if not len(df) or "status" not in df:
        return {}
    return {str(k): int(v) for k, v in df["status"].astype(str).value_counts().items()}


def _status_table(changes: pd.DataFrame, patient_changes: pd.DataFrame) -> str:
    vc, pc = _counts(changes), _counts(patient_changes)
    known = [s for s in STATUS_ORDER if vc.get(s) or pc.get(s)]
    extra = sorted((set(vc) | set(pc)) - set(STATUS_ORDER))
    rows = "".join(
        f"<tr><td>{status_badge(s)}</td><td>{vc.get(s, 0)}</td><td>{pc.get(s, 0)}</td></tr>"
        for s in known + extra
    )
    return (
        "<table class='change-status'><thead><tr><th>status</th><th>vertebrae (level × pair)</th>"
        "<th>patients (pairs; worst vertebra)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _latest(patient_changes: pd.DataFrame) -> str:
    if not len(patient_changes):
        return ""
    last = patient_changes.groupby(patient_changes["patient_id"].astype(str), sort=True).tail(1)
    by: dict[str, list[str]] = {}
    for pid, st in zip(last["patient_id"].astype(str), last["status"].astype(str), strict=True):
        by.setdefault(st, []).append(pid)
    parts = [
        f"{status_badge(s)} {_e(', '.join(sorted(by[s])))}"
        for s in [*STATUS_ORDER, *sorted(set(by) - set(STATUS_ORDER))]
        if s in by
    ]
    return (
        "<p>Patients by their latest status (worst vertebra of the last pair): " + "; ".join(parts) + ".</p>"
    )


def _problems(ctx: ChangeContext) -> list[str]:
    out: list[str] = []
    for c in (ctx.summary or {}).get("level_checks", []) or []:
        verdict = str(c.get("verdict", ""))
        if verdict in ("consistent", "not_checked"):
            continue
        shift = c.get("shift")
        what = f"levels shifted by {int(shift):+d}" if verdict == "shifted" and shift is not None else verdict
        out.append(
            f"<b>Level check</b> {_e(c.get('patient_id', ''))} {_e(c.get('timepoint_from', ''))} → "
            f"{_e(c.get('timepoint_to', ''))}: {_e(what)} — {_e(c.get('reason', ''))}"
        )
    lc = ctx.level_checks
    if lc is not None and len(lc) and "verdict" in lc:
        for r in lc[lc["verdict"].astype(str) == "differs"].to_dict("records"):
            out.append(
                f"<b>Level check</b> {_e(r.get('patient_id', ''))} {_e(r.get('level', ''))} "
                f"{_e(r.get('timepoint_from', ''))} → {_e(r.get('timepoint_to', ''))}: differs — "
                f"{_e(_text(r.get('reason')))}"
            )
    pc = ctx.patient_changes
    if len(pc) and "short_interval" in pc:
        for r in pc[pc["short_interval"].map(_flag)].to_dict("records"):
            days = _f(r.get("interval_days"))
            out.append(
                f"<b>Short interval</b> {_e(r['patient_id'])} {_e(r['timepoint_from'])} → "
                f"{_e(r['timepoint_to'])}: "
                f"{_num(int(days)) if days is not None else '—'} days between the scans (below the minimum; "
                "changes may be noise or a flare)"
            )
    ch = ctx.changes
    if len(ch) and "possible_pseudoprogression" in ch:
        for r in ch[ch["possible_pseudoprogression"].map(_flag)].to_dict("records"):
            out.append(
                f"<b>Possible pseudoprogression</b> {_e(r['patient_id'])} {_e(r['level'])} "
                f"{_e(r['timepoint_from'])} → {_e(r['timepoint_to'])}: grew after radiotherapy of this level "
                f"(status {status_badge(str(r['status']))}, not called progression)"
            )
    for note in (ctx.summary or {}).get("notes", []) or []:
        out.append(f"<b>Note</b> {_e(note)}")
    return out


def _statistics(stats: Mapping[str, Any] | None) -> str:
    out = ["<h3>Change in burden against change in pain</h3>"]
    if not stats:
        out.append(_not_computable({"reason": "no statistics of change were computed (no clinical table)"}))
        return "".join(out)
    dc = stats.get("delta_correlation", {}) or {}
    x, y = dc.get("x", "delta_hi_volume_ratio"), dc.get("y", "delta_vas")
    out.append(
        f"<p>Spearman's ρ of <code>{_e(x)}</code> against <code>{_e(y)}</code> over the "
        "consecutive pairs:</p>"
    )
    if dc.get("computable"):
        boot = (
            f"; patient-bootstrap CI {_num(dc['bootstrap_ci_low'])} – {_num(dc['bootstrap_ci_high'])}"
            if dc.get("bootstrap_ci_low") is not None
            else f"; no patient bootstrap ({_e(dc.get('bootstrap_reason', ''))})"
        )
        n_pat = f", {dc['n_patients']} patients" if dc.get("n_patients") is not None else ""
        out.append(
            f"<div class='res'>ρ = {_num(dc.get('rho'))} (Fisher-z CI {_num(dc.get('ci_low'))} – "
            f"{_num(dc.get('ci_high'))}{boot}), {_peq(dc.get('p_value'))}, "
            f"n = {dc.get('n')} pairs{n_pat}</div>"
        )
    else:
        out.append(_not_computable(dc))
    mm = stats.get("mixed_model", {}) or {}
    out.append(
        f"<p>Linear mixed model <code>{_e(mm.get('formula', 'vas ~ burden + (1 | patient_id)'))}</code> "
        "(statsmodels MixedLM, REML; random intercept per patient):</p>"
    )
    if mm.get("computable"):
        coefs = mm.get("coefficients", []) or []
        slope = next((c for c in coefs if c.get("term") != "intercept"), None)
        if slope is not None:
            out.append(
                f"<div class='res'>slope {_num(slope.get('estimate'))} VAS points per unit of "
                f"<code>{_e(slope.get('term'))}</code> (CI {_num(slope.get('ci_low'))} – "
                f"{_num(slope.get('ci_high'))}), {_peq(slope.get('p_value'))}; n = {mm.get('n_obs')} "
                f"time points of {mm.get('n_patients')} patients; "
                f"converged: {_num(bool(mm.get('converged')))}</div>"
            )
        head = "".join(f"<th>{h}</th>" for h in ("term", "estimate", "SE", "CI low", "CI high", "p"))
        body = "".join(
            f"<tr><td>{_e(c.get('term'))}</td><td>{_num(c.get('estimate'))}</td><td>{_num(c.get('se'))}</td>"
            f"<td>{_num(c.get('ci_low'))}</td><td>{_num(c.get('ci_high'))}</td><td>{format_p(c.get('p_value'))}</td></tr>"
            for c in coefs
        )
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if mm.get("warnings"):
            out.append("<p class='sub'>Fit warnings: " + _e("; ".join(mm["warnings"])) + "</p>")
    else:
        out.append(_not_computable(mm))
    return "".join(out)


def _flags(r: Mapping[str, Any]) -> str:
    f = []
    if _flag(r.get("short_interval")):
        f.append("short interval")
    if _flag(r.get("possible_pseudoprogression")):
        f.append("possible pseudoprogression")
    lc = _text(r.get("level_check"))
    if lc and lc != "consistent" and not lc.startswith("not checked"):
        f.append(f"level check: {lc}")
    for col, label in (
        ("n_not_comparable", "not comparable"),
        ("n_outside_fov", "outside the field of view"),
    ):
        n = _f(r.get(col))
        if n:
            f.append(f"{int(n)} level(s) {label}")
    return "; ".join(_e(x) for x in f) or "—"


def _levels(r: Mapping[str, Any]) -> str:
    parts = []
    for col, label in (
        ("new_levels", "new"),
        ("progressing_levels", "progressing"),
        ("indeterminate_levels", "indeterminate"),
        ("resolved_levels", "resolved"),
    ):
        t = _text(r.get(col))
        if t:
            parts.append(f"{label}: {_e(t.replace(';', ', '))}")
    return "; ".join(parts) or "—"


def _patient_table(ctx: ChangeContext, report_dir: Path | None) -> str:
    pc = ctx.patient_changes
    if not len(pc):
        return "<p>No patient has two time points: nothing to compare.</p>"
    qc_by: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    status_of: dict[tuple[str, str, str, str], str] = {}
    ch = ctx.changes
    if len(ch):
        for pid, lv, a, b, st in zip(
            ch["patient_id"].astype(str),
            ch["level"].astype(str),
            ch["timepoint_from"].astype(str),
            ch["timepoint_to"].astype(str),
            ch["status"].astype(str),
            strict=True,
        ):
            status_of[(pid, lv, a, b)] = st
    for (pid, lv, a, b), path in ctx.qc_pairs.items():
        qc_by.setdefault((str(pid), str(a), str(b)), []).append((str(lv), _rel(path, report_dir)))
    head = (
        "patient",
        "from",
        "to",
        "days",
        "Δ involved vertebrae",
        "Δ hi_volume_ratio",
        "Δ VAS",
        "status",
        "changed levels",
        "flags",
        "side-by-side QC",
    )
    rows = []
    for r in pc.to_dict("records"):
        pid, a, b = str(r["patient_id"]), str(r["timepoint_from"]), str(r["timepoint_to"])
        da, db = _date(r.get("scan_date_from")), _date(r.get("scan_date_to"))
        days = _f(r.get("interval_days"))
        links = sorted(
            qc_by.get((pid, a, b), []), key=lambda t: (level_index(t[0]) if is_level(t[0]) else 999, t[0])
        )
        qc = (
            ", ".join(
                f'<a href="{_e(href)}">{_e(lv)} ({_e(status_of.get((pid, lv, a, b), "?"))})</a>'
                for lv, href in links
            )
            or "—"
        )
        rows.append(
            "<tr>"
            f"<td>{_e(pid)}</td>"
            f"<td>{_e(a)}{'<br><small>' + _e(da) + '</small>' if da and da != a else ''}</td>"
            f"<td>{_e(b)}{'<br><small>' + _e(db) + '</small>' if db and db != b else ''}</td>"
            f"<td>{_num(int(days)) if days is not None else '—'}</td>"
            f"<td>{_signed(r.get('delta_n_involved'), 0)}</td>"
            f"<td>{_signed(r.get('delta_hi_volume_ratio'), 4)}</td>"
            f"<td>{_signed(r.get('delta_vas'), 1)}</td>"
            f"<td>{status_badge(str(r.get('status', '')))}</td>"
            f"<td style='text-align:left'>{_levels(r)}</td>"
            f"<td style='text-align:left'>{_flags(r)}</td>"
            f"<td style='text-align:left'>{qc}</td>"
            "</tr>"
        )
    return (
        "<table class='change-patients'><thead><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _timelines(ctx: ChangeContext, report_dir: Path | None) -> str:
    if not ctx.timelines:
        return ""
    cells = []
    for pid in sorted(ctx.timelines, key=str):
        href = _e(_rel(ctx.timelines[pid], report_dir))
        cells.append(
            f'<figure style="display:inline-block;margin:6px 12px 6px 0"><a href="{href}">'
            f'<img alt="timeline of {_e(pid)}" src="{href}" height="{ctx.thumbnail_px}" loading="lazy"></a>'
            f"<figcaption>{_e(pid)}</figcaption></figure>"
        )
    return (
        "<h3>Timelines</h3><p>Per patient, the lesion volume of every involved vertebra over time; "
        "each segment "
        "and marker in the colour of the change into that scan (click to enlarge).</p>" + "".join(cells)
    )


def render_change_section(context: ChangeContext, report_dir: str | os.PathLike[str] | None = None) -> str:
    """The *Change between time points* section as HTML.

    Parameters
    ----------
    context : ChangeContext
        The surveillance outputs.
    report_dir : path-like, optional
        The report's folder: the links to the timelines and QC pairs are relative to it (by
        default the paths as given).

    Returns
    -------
    str
        HTML: the counts of vertebra and patient statuses (coloured as in the figures), the
        patients by latest status, the level-check problems, short intervals and possible
        pseudoprogressions with their reasons, the change-vs-pain statistics (or why they are not
        computable), one row per patient and pair with links to the side-by-side QC of every
        changed level, and the timeline thumbnails.
    """
    rdir = Path(report_dir) if report_dir is not None else None
    ch, pc = context.changes, context.patient_changes
    n_pat = int(pc["patient_id"].astype(str).nunique()) if len(pc) else 0
    n_changed = len(context.qc_pairs)
    out = [
        "<h2 id='change'>Change between time points</h2>",
        "<p>Each patient's consecutive scans compared level by level (<code>changes.csv</code>, "
        "<code>patient_changes.csv</code>); statuses, thresholds and their sources are defined in "
        "docs/metrics.md, “Change between time points”. A patient's status is that of the worst "
        "vertebra.</p>",
        "<div class='kpi'>"
        f"<div>patients followed<b>{n_pat}</b></div>"
        f"<div>pairs of scans<b>{len(pc)}</b></div>"
        f"<div>vertebra changes<b>{len(ch)}</b></div>"
        f"<div>changed levels (QC)<b>{n_changed}</b></div></div>",
        _status_table(ch, pc),
        _latest(pc),
    ]
    problems = _problems(context)
    if problems:
        out.append(
            "<div class='warn'><b>Checks and guards</b><ul>"
            + "".join(f"<li>{p}</li>" for p in problems)
            + "</ul></div>"
        )
    else:
        out.append(
            "<div class='res'>Every pair passed the level check; no short interval, no possible "
            "pseudoprogression.</div>"
        )
    out.append(_statistics(context.statistics))
    out.append("<h3>Patients</h3>")
    out.append(
        "<p>One row per patient and consecutive pair: change (later minus earlier) in the number of involved "
        "vertebrae, the high-intensity volume ratio and the VAS; each changed level links to its "
        "side-by-side "
        "QC.</p>"
    )
    out.append(_patient_table(context, rdir))
    out.append(_timelines(context, rdir))
    return "".join(x for x in out if x)
