"""Figures of the study's analysis (matplotlib, object API: no pyplot global state).

Each function takes the analysed table of an analysis (``data`` of an
:class:`~spinemri.report.protocols.AnalysisLike`, such as
:class:`~spinemri.stats.results.Analysis`) and returns a :class:`matplotlib.figure.Figure`; degenerate
data give a figure that says what is missing rather than an error.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .protocols import AnalysisLike

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "analysis_figures",
    "vas_by_region_figure",
    "involvement_vs_hi_area_figure",
    "vas_vs_metrics_figure",
    "figure_png",
    "figure_captions",
    "region_groups",
    "FIGURE_TITLES",
    "AXIS_LABELS",
]

#: File stem -> caption of each figure.
FIGURE_TITLES = {
    "vas_by_region": "VAS by dominant region of involvement (box: median and quartiles; points: patients)",
    "involvement_vs_hi_area": "Number of involved vertebrae against the high-intensity area ratio (OLS line)",
    "vas_vs_metrics": "VAS against each imaging metric (OLS line; Spearman's rho in the title)",
}

#: Column -> axis label (with its unit; drawn on two lines when long).
AXIS_LABELS = {
    "n_involved": "Involved vertebrae (count)",
    "hi_area_ratio": "High-intensity area ratio (mid-sagittal, fraction of vertebra)",
    "hi_volume_ratio": "High-intensity volume ratio (fraction of vertebral volume)",
    "vas": "Pain (VAS, 0-10)",
    "dominant_region": "Dominant region of involvement",
}
#: Columns holding counts: their axes get integer ticks.
_COUNT_COLUMNS = frozenset({"n_involved"})

_REGION_ORDER = ("cervical", "thoracic", "lumbar", "sacral", "none")
_COLOURS = {
    "cervical": "#4C72B0",
    "thoracic": "#55A868",
    "lumbar": "#C44E52",
    "sacral": "#8172B2",
    "none": "#937860",
}
_SEED = 20250301  # jitter of strip plots (fixed: the same data give the same picture)


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#444")
    ax.set_xticks([])
    ax.set_yticks([])


def _numeric(s: pd.Series) -> NDArray[np.float64]:
    return cast("NDArray[np.float64]", pd.to_numeric(s, errors="coerce").to_numpy(dtype=float))


def _label(column: str) -> str:
    """The axis label of a column; a long one on two lines (the unit in brackets on the second)."""
    text = AXIS_LABELS.get(column, column)
    return text.replace(" (", "\n(", 1) if len(text) > 32 else text


def _vas_axis(axis: Any) -> None:
    """A VAS axis: ticks at every integer score 0-10 (the limits leave half a point of margin)."""
    axis.set_ticks(range(0, 11))


def _count_axis(axis: Any) -> None:
    """An axis of counts: integer ticks only."""
    axis.set_major_locator(MaxNLocator(integer=True))


def region_groups(analysis: AnalysisLike) -> tuple[list[str], list[str]]:
    """The dominant-region groups the Kruskal-Wallis test compared, and those it left out.

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis; read from ``to_dict()["vas_by_dominant_region"]`` (``groups``,
        ``excluded_groups``) and ``to_dict()["parameters"]["exclude_regions"]``.

    Returns
    -------
    groups : list of str
        The test's groups in its order (empty when it reports none).
    left_out : list of str
        Regions present among the patients with a VAS that are not a group of the test
        (the excluded regions, such as ``none``, and groups too small for the test).
    """
    d = analysis.to_dict()
    kr = d.get("vas_by_dominant_region", {})
    groups = [str(g) for g in (kr.get("groups") or {})]
    data = analysis.data
    present: list[str] = []
    if "dominant_region" in data and "vas" in data:
        ok = np.isfinite(_numeric(data["vas"])) & data["dominant_region"].notna().to_numpy()
        present = sorted(set(data["dominant_region"].astype(str).to_numpy()[ok]))
    if not groups:
        excluded = set(kr.get("excluded_groups") or d.get("parameters", {}).get("exclude_regions") or [])
        groups = [r for r in present if r not in excluded]
        groups = [r for r in _REGION_ORDER if r in groups] + sorted(set(groups) - set(_REGION_ORDER))
    left_out = [r for r in _REGION_ORDER if r in present and r not in groups]
    left_out += sorted(set(present) - set(groups) - set(_REGION_ORDER))
    return groups, left_out


def vas_by_region_figure(data: pd.DataFrame, groups: Sequence[str] | None = None) -> Figure:
    """Box plot with a jittered strip of VAS per dominant region (patients with a VAS).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient with columns ``dominant_region`` and ``vas`` (0-10;
        non-numeric values count as missing).
    groups : sequence of str, optional
        The regions to draw, in this order: those the test compared
        (:func:`region_groups`), so that the picture shows what was tested. By default
        every region present, in anatomical order (cervical to sacral, then ``none``
        and any others).

    Returns
    -------
    matplotlib.figure.Figure
        One axes, one box per group with its patient count, VAS axis 0-10; a figure
        saying what is missing when a column is absent or no patient has a VAS.
    """
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    if "dominant_region" not in data or "vas" not in data:
        _empty(ax, "no dominant_region or vas column")
        return fig
    vas = _numeric(data["vas"])
    ok = np.isfinite(vas) & data["dominant_region"].notna().to_numpy()
    if not ok.any():
        _empty(ax, "no patient with a VAS")
        return fig
    reg = data["dominant_region"].astype(str).to_numpy()[ok]
    vas = vas[ok]
    if groups is None:
        names = [r for r in _REGION_ORDER if r in set(reg)] + sorted(set(reg) - set(_REGION_ORDER))
    else:
        names = [str(g) for g in groups]
    if not names:
        _empty(ax, "no dominant-region group to compare")
        return fig
    samples = [vas[reg == r] for r in names]
    ax.boxplot(
        samples,
        positions=range(len(names)),
        widths=0.55,
        showfliers=False,
        medianprops={"color": "black", "linewidth": 1.6},
        boxprops={"color": "#333"},
    )
    rng = np.random.default_rng(_SEED)
    for i, (r, s) in enumerate(zip(names, samples, strict=True)):
        ax.scatter(
            i + rng.uniform(-0.16, 0.16, s.size),
            s + rng.uniform(-0.08, 0.08, s.size),
            s=22,
            alpha=0.75,
            color=_COLOURS.get(r, "#555"),
            edgecolors="white",
            linewidths=0.4,
            zorder=3,
        )
    ax.set_xticks(range(len(names)), [f"{r}\n(n={s.size})" for r, s in zip(names, samples, strict=True)])
    ax.set_xlabel(AXIS_LABELS["dominant_region"])
    ax.set_ylabel(AXIS_LABELS["vas"])
    ax.set_ylim(-0.5, 10.5)
    _vas_axis(ax.yaxis)
    ax.set_title("Pain by dominant region of involvement")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _scatter_fit(ax: Any, x: np.ndarray, y: np.ndarray, colour: str = "#4C72B0") -> str:
    """Scatter with an OLS line; returns a 'rho = ...' label (or why there is none)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        _empty(ax, "no complete pairs")
        return "no data"
    ax.scatter(x, y, s=22, alpha=0.75, color=colour, edgecolors="white", linewidths=0.4, zorder=3)
    if x.size >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 50)
        ax.plot(xs, intercept + slope * xs, color="black", linewidth=1.2)
        from scipy.stats import spearmanr

        return f"rho = {spearmanr(x, y).statistic:.2f}, n = {x.size}"
    return f"n = {x.size} (no fit: too few or constant values)"


def involvement_vs_hi_area_figure(data: pd.DataFrame) -> Figure:
    """n_involved against hi_area_ratio, with the OLS line.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient with columns ``n_involved`` (involved vertebrae) and
        ``hi_area_ratio`` (high-intensity area ratio, 0-1).

    Returns
    -------
    matplotlib.figure.Figure
        A scatter of the complete pairs with the OLS line (at least 3 pairs, both
        non-constant) and Spearman's rho in the title; a figure saying what is
        missing when a column is absent.
    """
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    if "n_involved" not in data or "hi_area_ratio" not in data:
        _empty(ax, "no n_involved or hi_area_ratio column")
        return fig
    label = _scatter_fit(ax, _numeric(data["n_involved"]), _numeric(data["hi_area_ratio"]), "#55A868")
    ax.set_xlabel(_label("n_involved"))
    ax.set_ylabel(_label("hi_area_ratio"))
    _count_axis(ax.xaxis)
    ax.set_title(f"Involved vertebrae vs high-intensity area ({label})")
    ax.grid(alpha=0.3)
    return fig


def vas_vs_metrics_figure(
    data: pd.DataFrame, metrics: tuple[str, ...] = ("n_involved", "hi_area_ratio", "hi_volume_ratio")
) -> Figure:
    """One panel per metric: VAS against the metric, with the OLS line.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient with a ``vas`` column (0-10) and the metric columns.
    metrics : tuple of str, default ("n_involved", "hi_area_ratio", "hi_volume_ratio")
        Columns plotted on the x axes, one panel each, left to right.

    Returns
    -------
    matplotlib.figure.Figure
        One row of panels sharing the VAS axis, each titled with Spearman's rho and
        n (or why there is no fit); a panel says so when its column is absent.
    """
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, len(metrics), sharey=True)
    for ax, m in zip(np.atleast_1d(axes), metrics, strict=True):
        if m not in data or "vas" not in data:
            _empty(ax, f"no {m} column")
            continue
        label = _scatter_fit(ax, _numeric(data[m]), _numeric(data["vas"]), "#C44E52")
        ax.set_xlabel(_label(m), fontsize=9)
        if m in _COUNT_COLUMNS:
            _count_axis(ax.xaxis)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    first = np.atleast_1d(axes)[0]
    first.set_ylabel(AXIS_LABELS["vas"])
    first.set_ylim(-0.5, 10.5)
    _vas_axis(first.yaxis)
    return fig


def analysis_figures(analysis: AnalysisLike) -> dict[str, Figure]:
    """All figures of an analysis, keyed by file stem (see :data:`FIGURE_TITLES`).

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis; its ``data`` table (one row per patient) is plotted.

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        ``vas_by_region`` (the groups of the Kruskal-Wallis test, :func:`region_groups`),
        ``involvement_vs_hi_area`` and ``vas_vs_metrics``.
    """
    d = analysis.data
    groups, _ = region_groups(analysis)
    return {
        "vas_by_region": vas_by_region_figure(d, groups),
        "involvement_vs_hi_area": involvement_vs_hi_area_figure(d),
        "vas_vs_metrics": vas_vs_metrics_figure(d),
    }


def figure_captions(analysis: AnalysisLike) -> dict[str, str]:
    """The caption of each figure of :func:`analysis_figures`, saying what the region plot leaves out.

    Parameters
    ----------
    analysis : AnalysisLike
        The analysis the figures show.

    Returns
    -------
    dict of str to str
        :data:`FIGURE_TITLES`, with the region figure's caption naming its groups (those of
        the Kruskal-Wallis test) and the regions left out with their patient counts and why.
    """
    captions = dict(FIGURE_TITLES)
    groups, left_out = region_groups(analysis)
    if left_out:
        data = analysis.data
        ok = np.isfinite(_numeric(data["vas"]))
        reg = data["dominant_region"].astype(str).to_numpy()
        why = []
        for r in left_out:
            n = int((ok & (reg == r)).sum())
            reason = "no involved vertebra" if r == "none" else "left out of the test"
            why.append(f"“{r}” ({reason}; n = {n})")
        captions["vas_by_region"] += (
            f". Drawn: the groups the Kruskal-Wallis test compared ({', '.join(groups) or 'none'}); "
            f"left out, as in the test: {', '.join(why)}"
        )
    return captions


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to render.
    dpi : int, default 100
        Resolution in dots per inch (the figure sizes are in inches, so this sets
        the pixel size).

    Returns
    -------
    bytes
        The PNG file's content.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
