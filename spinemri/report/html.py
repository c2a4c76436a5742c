"""Self-contained HTML report of an analysis, and the writer of the analysis folder.

The report embeds its figures as base64 PNG and its CSS inline: one file, no
external CSS, JavaScript or fonts, readable offline and archivable with the
results. :func:`write_analysis` writes summary.json (strict JSON), the tables
as CSV, the figures as PNG and report.html, each atomically.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io.atomic import write_bytes_atomic, write_text_atomic
from ..io.tables import write_csv
from .figures import analysis_figures, figure_captions, figure_png
from .format import escape as _e
from .format import format_number as _num
from .format import format_p
from .format import p_phrase as _peq
from .protocols import AnalysisLike
from .provenance import package_versions
from .sections import (
    ReportContext,
    excluded_patients,
    excluded_section,
    parameters_section,
    patients_section,
    plain_summary,
)

__all__ = [
    "ReportContext",
    "render_report",
    "write_analysis",
    "summary_dict",
    "format_p",
    "plain_summary",
    "excluded_patients",
]


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

    if context.change is not None:
        from .change_section import render_change_section

        out.append(render_change_section(context.change, rdir))
    if context.planning is not None:
        from .planning_section import render_planning_section

        out.append(render_planning_section(context.planning))
    out.append(patients_section(analysis, context, rdir))
    out.append(excluded_section(analysis, context))
    out.append(parameters_section(d, context))
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
    if context is not None and context.summary_extra:
        summary.update(context.summary_extra)
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
