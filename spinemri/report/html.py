"""Self-contained HTML report of an analysis, and the writer of the analysis folder.

The report embeds its figures as base64 PNG and its CSS inline: one file, no
external CSS, JavaScript or fonts, readable offline and archivable with the
results. :func:`write_analysis` writes summary.json (strict JSON), the tables
as CSV, the figures as PNG and report.html, each atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io.atomic import write_bytes_atomic, write_text_atomic
from ..io.ids import safe_id
from ..io.tables import write_csv
from .figures import analysis_figures, figure_captions, figure_png
from .protocols import AnalysisLike
from .provenance import package_versions

__all__ = [
    "ReportContext",
    "render_report",
    "write_analysis",
    "summary_dict",
    "format_p",
    "plain_summary",
    "excluded_patients",
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
        links to its overlay (relative to the report) and shows a small embedded thumbnail.
    parameters : mapping or None, default None
        The measurement parameters (by group, e.g. ``{"run": ..., "segmentation": ...}``),
        listed with the statistics parameters.
    thumbnail_px : int, default 96
        Height in pixels of the embedded QC thumbnails.
    """

    patients: pd.DataFrame | None = None
    link_report: pd.DataFrame | None = None
    qc_dir: str | os.PathLike[str] | None = None
    parameters: Mapping[str, Any] | None = None
    thumbnail_px: int = 96


_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;
background:#f6f7f9;color:#1d2733}
main{max-width:1080px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:1.6em;margin:0.2em 0 0.1em}
h2{font-size:1.25em;border-bottom:2px solid #dde3ea;padding-bottom:4px;
margin-top:1.8em}h3{font-size:1.05em;margin-bottom:0.3em}
.sub{color:#5a6776;margin:0 0 1em}
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:0.9em}
th,td{border:1px solid #d5dbe3;padding:4px 9px;text-align:right}th{background:#eef2f6}
td:first-child,th:first-child{text-align:left}
.kpi{display:flex;gap:14px;flex-wrap:wrap;margin:12px 0}
.kpi div{background:#eef2f6;border-radius:6px;padding:10px 16px;min-width:140px}
.kpi b{display:block;font-size:1.5em}
.warn{background:#fff6dd;border-left:5px solid #e0a800;padding:8px 14px;margin:10px 0}
.warn li{margin:3px 0}
.nc{background:#fdecec;border-left:5px solid #c44e52;padding:6px 12px;margin:8px 0}
.res{background:#eef6ee;border-left:5px solid #55a868;padding:6px 12px;margin:8px 0}
.summary{background:#f1f5fb;border-left:5px solid #4c72b0;padding:10px 16px;margin:12px 0;
line-height:1.5}
.patients td{vertical-align:middle}.patients img{height:64px;border:1px solid #e3e7ec}
.params td{text-align:left}
figure{margin:12px 0 20px}figure img{max-width:100%;border:1px solid #e3e7ec}
figcaption{color:#5a6776;font-size:0.9em}
code{background:#f0f2f5;padding:1px 4px;border-radius:3px}
.methods p,.methods li{line-height:1.45}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def format_p(p: Any) -> str:
    """p-value for humans: 3 significant digits, '< 0.001' below that, '—' when undefined.

    Parameters
    ----------
    p : float or None
        The p-value (anything :class:`float` accepts); None or a non-finite
        float is undefined.

    Returns
    -------
    str
        ``"—"``, ``"< 0.001"`` or the value with 3 significant digits (``"0.0312"``).
    """
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "—"
    p = float(p)
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def _peq(p: Any) -> str:
    """'p = 0.03' or 'p < 0.001'."""
    f = format_p(p)
    return f"p {f}" if f.startswith("<") else f"p = {f}"


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "—"
        if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3):
            return f"{x:.{digits}g}"
        return f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return _e(x)


def _table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    pcols: Sequence[str] = ("p_value", "p_holm"),
) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for _, label in columns)
    body = []
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key)
            cells.append(f"<td>{format_p(v) if key in pcols else _num(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _not_computable(res: Mapping[str, Any]) -> str:
    return f'<div class="nc"><b>Not computable:</b> {_e(res.get("reason", ""))}</div>'


def _figure(name: str, png: bytes | None, captions: Mapping[str, str]) -> str:
    if not png:
        return ""
    b64 = base64.b64encode(png).decode("ascii")
    cap = captions.get(name, name)
    return (
        f'<figure><img alt="{_e(cap)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{_e(cap)}</figcaption></figure>"
    )


_LUMBAR_LABELS = {"lumbar": "lumbar involved", "non_lumbar": "no lumbar involvement"}
_GROUP_COLS = [
    ("group", "group"),
    ("n", "n"),
    ("mean", "mean"),
    ("sd", "SD"),
    ("median", "median"),
    ("q1", "Q1"),
    ("q3", "Q3"),
    ("iqr", "IQR"),
    ("min", "min"),
    ("max", "max"),
]
_COEF_COLS = [
    ("term", "term"),
    ("estimate", "estimate"),
    ("se", "SE"),
    ("ci_low", "CI low"),
    ("ci_high", "CI high"),
    ("p_value", "p"),
]


def _groups(groups: Mapping[str, Mapping[str, Any]]) -> str:
    return _table([{"group": g, **s} for g, s in groups.items()], _GROUP_COLS)


def summary_dict(analysis: AnalysisLike) -> dict[str, Any]:
    """summary.json: the analysis' ``to_dict()`` (:class:`AnalysisLike`) plus the software versions.

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis.

    Returns
    -------
    dict of str to Any
        ``analysis.to_dict()`` with a ``software`` key added:
        :func:`~spinemri.report.provenance.package_versions`.
    """
    d = analysis.to_dict()
    d["software"] = package_versions()
    return d


def _excluded(regions: Sequence[str]) -> str:
    if not regions:
        return "every dominant_region value is a group"
    names = ", ".join(f"“{_e(r)}”" for r in regions)
    note = " (“none”: no lesion found)" if "none" in regions else ""
    return f"patients whose dominant_region is {names}{note} are left out"


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


def _thumbnail(png: Path, height: int) -> str | None:
    """A small PNG of ``png`` as a data: URI (None when it cannot be read)."""
    try:
        from PIL import Image

        with Image.open(png) as img:
            img.thumbnail((height * 4, height))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="PNG", optimize=True)
    except Exception:  # noqa: BLE001 - a missing or unreadable overlay only loses its thumbnail
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _rel_link(target: Path, report_dir: Path | None) -> str:
    if report_dir is None:
        return target.as_posix()
    return Path(os.path.relpath(target.resolve(), report_dir.resolve())).as_posix()


def _patients_section(analysis: AnalysisLike, context: ReportContext, report_dir: Path | None) -> str:
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
        *(["QC"] if qc_dir is not None else []),
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
            thumb = _thumbnail(png, context.thumbnail_px) if png.is_file() else None
            cells.append(
                f'<td><a href="{href}"><img alt="QC overlay of {_e(pid)}" src="{thumb}"></a></td>'
                if thumb
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


def _excluded_section(analysis: AnalysisLike, context: ReportContext) -> str:
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


def _parameters_section(d: Mapping[str, Any], context: ReportContext) -> str:
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


def _methods(d: Mapping[str, Any], versions: Mapping[str, str]) -> str:
    p = d["parameters"]
    lvl = f"{100 * p['ci_level']:g}%"
    ver = ", ".join(
        f"{_e(k)} {_e(v)}"
        for k, v in versions.items()
        if k
        in ("python", "spinemri", "numpy", "scipy", "pandas", "statsmodels", "scikit-learn", "matplotlib")
    )
    return f"""
<div class="methods">
<p>All tests are two-sided; confidence intervals are {lvl}. Patients without a valid VAS (0-10) are
left out of
every VAS analysis; the correlation of the imaging metrics with each other uses every patient.</p>
<ul>
<li><b>Descriptives</b>: mean, SD (n − 1 denominator), median and quartiles (linear interpolation)
of VAS, overall
and by group.</li>
<li><b>VAS by dominant region</b>: Kruskal-Wallis H test (<code>scipy.stats.kruskal</code>, tie-corrected,
χ² reference with k − 1 df); {_excluded(p["exclude_regions"])}. Post hoc:
pairwise two-sided Mann-Whitney U tests (<code>scipy.stats.mannwhitneyu</code>, method 'auto':
exact without ties
when a group has ≤ 8 patients, otherwise normal approximation with tie and continuity corrections), p-values
adjusted by Holm's step-down method.</li>
<li><b>Lumbar vs non-lumbar</b>: two-sided Mann-Whitney U; U is that of the lumbar-involved group;
effect size the
rank-biserial correlation r = 2U/(n₁n₂) − 1 (positive: lumbar higher).</li>
<li><b>Correlations</b>: Spearman's ρ (<code>scipy.stats.spearmanr</code>, p-value from the t
approximation);
CI by Fisher's z transform with the Bonett-Wright standard error √((1 + ρ²/2)/(n − 3)).</li>
<li><b>Linear model</b>: OLS of VAS on {", ".join(_e(x) for x in p["ols_predictors"])}
(<code>statsmodels</code> OLS) with HC3 heteroscedasticity-consistent standard errors and t reference
distribution (residual df); R² of the OLS fit.</li>
<li><b>Ordinal model</b>: proportional-odds logistic regression (<code>statsmodels
OrderedModel</code>, logit link,
BFGS) of the pain category — mild VAS ≤ {p["mild_max"]:g}, moderate, severe VAS ≥
{p["severe_vas"]:g} — on the
same predictors; odds ratios are per unit of each predictor (per whole ratio 0 → 1 for the ratios).</li>
<li><b>Prediction</b>: logistic regression (<code>scikit-learn</code>, L2 penalty C = {p["logistic_c"]:g},
features standardised within each training fold) of severe pain (VAS ≥ {p["severe_vas"]:g}) from
{", ".join(_e(x) for x in p["prediction_features"])}; stratified {p["cv_folds"]}-fold cross-validation
(fewer folds when the smaller class is smaller), shuffled with seed {p["seed"]}; AUC of the pooled
out-of-fold
probabilities with DeLong's standard error (normal CI clipped to [0, 1]).</li>
<li>Groups smaller than {p["small_group_n"]} are flagged. Analyses that the data cannot support
(too few patients,
a single group, constant VAS or predictor) are reported as not computable with the reason.</li>
</ul>
<p>Software: {ver}.</p>
</div>"""


def render_report(
    analysis: AnalysisLike,
    figures_png: Mapping[str, bytes] | None = None,
    title: str = "spinemri — pain and spinal metastatic burden",
    *,
    context: ReportContext | None = None,
    report_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The report as one HTML string (figures base64-embedded; no external resources).

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis to report.
    figures_png : mapping of str to bytes, optional
        PNG bytes by figure stem (see :data:`~spinemri.report.figures.FIGURE_TITLES`);
        by default rendered from :func:`~spinemri.report.figures.analysis_figures`
        at 100 dpi.
    title : str, default "spinemri — pain and spinal metastatic burden"
        Page title and heading (HTML-escaped).
    context : ReportContext, optional
        What the run knows beyond the analysis: the imaging table, the link report,
        the QC folder and the measurement parameters (see :class:`ReportContext`).
    report_dir : path-like, optional
        The folder the report is written to; the links to the QC overlays are relative
        to it (by default the QC paths as given).

    Returns
    -------
    str
        A complete HTML document with inline CSS: a plain-language summary, key
        numbers, warnings, each analysis' results or why it is not computable, the
        figures, the patients (with QC thumbnails and links when ``context`` has a
        QC folder), the excluded patients with their reasons, the parameters and the
        methods.
    """
    if figures_png is None:
        figures_png = {k: figure_png(f) for k, f in analysis_figures(analysis).items()}
    context = context or ReportContext()
    rdir = Path(report_dir) if report_dir is not None else None
    captions = figure_captions(analysis)
    d = summary_dict(analysis)
    out = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1><p class='sub'>spinemri {_e(d['software'].get('spinemri', ''))} · "
        "VAS against the pattern and burden of vertebral involvement</p>",
        f"<div class='summary' id='summary'><b>Summary.</b> {_e(plain_summary(analysis))}</div>",
    ]
    out.append(
        "<div class='kpi'>"
        f"<div>patients<b>{d['n_patients']}</b></div>"
        f"<div>with a valid VAS<b>{d['n_with_vas']}</b></div>"
        f"<div>median VAS<b>{_num(d['descriptives']['vas']['overall']['median'])}</b></div></div>"
    )
    if d["warnings"]:
        out.append(
            "<div class='warn'><b>Warnings</b><ul>"
            + "".join(f"<li>{_e(w)}</li>" for w in d["warnings"])
            + "</ul></div>"
        )

    desc = d["descriptives"]["vas"]
    out.append("<h2>VAS descriptives</h2>")
    out.append(
        _groups(
            {
                "all patients": desc["overall"],
                **{_LUMBAR_LABELS.get(k, k): v for k, v in desc.get("by_lumbar_involved", {}).items()},
                **{f"pain: {k}": v for k, v in desc["by_pain_category"].items()},
            }
        )
    )

    kr = d["vas_by_dominant_region"]
    out.append("<h2>VAS by dominant region</h2>")
    if kr["computable"]:
        out.append(
            f"<div class='res'>Kruskal-Wallis H = {_num(kr['statistic'])}, df = {kr['df']}, "
            f"{_peq(kr['p_value'])}, n = {kr['n']}</div>"
        )
        out.append(_groups(kr["groups"]))
        out.append("<h3>Pairwise Mann-Whitney U (Holm-adjusted)</h3>")
        out.append(
            _table(
                kr["posthoc"],
                [
                    ("a", "group a"),
                    ("b", "group b"),
                    ("n_a", "n a"),
                    ("n_b", "n b"),
                    ("statistic", "U"),
                    ("p_value", "p"),
                    ("p_holm", "p (Holm)"),
                ],
            )
        )
    else:
        out.append(_not_computable(kr))
        if kr.get("groups"):
            out.append(_groups(kr["groups"]))
    out.append(_figure("vas_by_region", figures_png.get("vas_by_region"), captions))

    mw = d["lumbar_vs_non_lumbar"]
    out.append("<h2>Lumbar vs non-lumbar involvement</h2>")
    if mw["computable"]:
        out.append(
            f"<div class='res'>Mann-Whitney U = {_num(mw['statistic'])}, {_peq(mw['p_value'])}; "
            f"rank-biserial r = {_num(mw['effect_size'])}; median VAS {_num(mw['median_lumbar'])} "
            f"(lumbar, n = {mw['n_lumbar']}) vs {_num(mw['median_other'])} (other, n = {mw['n_other']})"
            "</div>"
        )
    else:
        out.append(_not_computable(mw))

    out.append("<h2>Correlations (Spearman)</h2>")
    rows = []
    for s in d["spearman"]:
        rows.append(
            {**s, "pair": f"{s['x']} ~ {s['y']}", "note": s.get("reason") or s.get("ci_reason") or ""}
        )
    out.append(
        _table(
            rows,
            [
                ("pair", "pair"),
                ("n", "n"),
                ("rho", "ρ"),
                ("ci_low", "CI low"),
                ("ci_high", "CI high"),
                ("p_value", "p"),
                ("note", "note"),
            ],
        )
    )
    out.append(_figure("involvement_vs_hi_area", figures_png.get("involvement_vs_hi_area"), captions))
    out.append(_figure("vas_vs_metrics", figures_png.get("vas_vs_metrics"), captions))

    out.append("<h2>Regression</h2>")
    ols = d["regression"]["ols"]
    out.append(f"<h3>OLS: <code>{_e(ols.get('formula', ''))}</code> (HC3 SEs)</h3>")
    if ols["computable"]:
        out.append(
            f"<div class='res'>n = {ols['n']}, R² = {_num(ols['r_squared'])}, adjusted R² = "
            f"{_num(ols['adj_r_squared'])}</div>"
        )
        out.append(_table(ols["coefficients"], _COEF_COLS))
    else:
        out.append(_not_computable(ols))
    ordl = d["regression"]["ordinal"]
    out.append(f"<h3>Ordinal logistic: <code>{_e(ordl.get('formula', ''))}</code></h3>")
    if ordl["computable"]:
        counts = ", ".join(f"{k} {v}" for k, v in ordl["category_counts"].items())
        out.append(
            f"<div class='res'>n = {ordl['n']} ({_e(counts)}); McFadden pseudo-R² = "
            f"{_num(ordl['pseudo_r2_mcfadden'])}; converged: {_num(ordl['converged'])}</div>"
        )
        out.append(
            _table(
                ordl["coefficients"],
                _COEF_COLS + [("odds_ratio", "OR"), ("or_ci_low", "OR CI low"), ("or_ci_high", "OR CI high")],
            )
        )
    else:
        out.append(_not_computable(ordl))

    pr = d["prediction"]
    out.append("<h2>Prediction of severe pain</h2>")
    if pr["computable"]:
        folds = ", ".join(_num(a, 2) for a in pr["fold_aucs"])
        out.append(
            f"<div class='res'>Cross-validated AUC = {_num(pr['auc'])} (CI {_num(pr['ci_low'])} – "
            f"{_num(pr['ci_high'])}), n = {pr['n']} ({pr['n_severe']} severe), {pr['n_folds']} folds; "
            f"per-fold AUC: {folds}</div>"
        )
    else:
        out.append(_not_computable(pr))

    out.append(_patients_section(analysis, context, rdir))
    out.append(_excluded_section(analysis, context))
    out.append(_parameters_section(d, context))
    out.append("<h2>Methods</h2>")
    out.append(_methods(d, d["software"]))
    out.append("</main></body></html>")
    return "\n".join(x for x in out if x)


def write_analysis(
    analysis: AnalysisLike,
    out_dir: str | os.PathLike[str],
    *,
    dpi: int = 100,
    context: ReportContext | None = None,
) -> dict[str, Path]:
    """Write summary.json, tables/*.csv, figures/*.png and report.html under ``out_dir``.

    Each file is written atomically; summary.json is strict JSON (no NaN).

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis to write.
    out_dir : path-like
        Output folder (created with its parents).
    dpi : int, default 100
        Resolution of the figure PNGs (dots per inch), also those embedded in the report.
    context : ReportContext, optional
        Passed to :func:`render_report` (the QC links are relative to ``out_dir``).

    Returns
    -------
    dict of str to Path
        Every file written, by a short name (``summary``, ``report``, ``table:<name>``, ``figure:<name>``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    summary = summary_dict(analysis)
    text = json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False)
    written["summary"] = write_text_atomic(out / "summary.json", text + "\n")
    for name, table in analysis.tables.items():
        written[f"table:{name}"] = write_csv(table, out / "tables" / f"{name}.csv")
    pngs = {k: figure_png(f, dpi=dpi) for k, f in analysis_figures(analysis).items()}
    for name, png in pngs.items():
        written[f"figure:{name}"] = write_bytes_atomic(out / "figures" / f"{name}.png", png)
    written["report"] = write_text_atomic(
        out / "report.html", render_report(analysis, pngs, context=context, report_dir=out)
    )
    return written
