"""Per-patient timeline of the surveillance: lesion volume of every involved level over time.

Matplotlib (object API, no pyplot state). Top panel: one line per level involved at any time
point, lesion volume (mm³) against the scan date (or the time point's rank when a date is
missing); each segment and the marker at its end take the colour and shape of the status of the
change into that time point (:mod:`.change_style`), the first time point's markers are hollow.
Bottom panel: the number of involved vertebrae per time point (bars, integer ticks) and, when
known, the VAS (line, right axis). The input tables are those of ``changes.csv`` and
``vertebrae.csv`` (docs/surveillance.md); nothing is recomputed but the involvement count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..io.atomic import write_bytes_atomic
from ..io.ids import safe_id
from ..levels import is_level, level_index
from ..surveillance.timepoints import timepoint_order
from .change_style import BASELINE_COLOUR, STATUS_COLOURS, STATUS_MARKERS, STATUS_ORDER
from .figures import figure_png

__all__ = ["TIMELINE_SIZE_IN", "TIMELINE_DPI", "timeline_figure", "timeline_png", "write_timelines"]

#: Figure size (inches) and resolution of the timeline PNG: 900 x 560 pixels.
TIMELINE_SIZE_IN = (9.0, 5.6)
TIMELINE_DPI = 100


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _involved(row: Mapping[str, Any]) -> bool:
    c = _num(row.get("lesion_count"))
    if math.isfinite(c):
        return c >= 1
    v = _num(row.get("lesion_volume_mm3"))
    return math.isfinite(v) and v > 0


def _frames(changes: pd.DataFrame, vertebrae: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(order of the time points, one row per level and time point with the lesion volume)."""
    if vertebrae is not None and len(vertebrae):
        v = vertebrae.copy()
    else:  # rebuild the per-time-point volumes from the pairs
        parts = []
        for side in ("from", "to"):
            cols = {
                f"timepoint_{side}": "timepoint",
                f"scan_date_{side}": "scan_date",
                f"lesion_volume_mm3_{side}": "lesion_volume_mm3",
                f"lesion_count_{side}": "lesion_count",
            }
            t = changes[[c for c in ["patient_id", "level", *cols] if c in changes]].rename(columns=cols)
            if f"present_{side}" in changes:
                t = t[changes[f"present_{side}"].map(lambda x: str(x).lower() in ("true", "1", "1.0"))]
            parts.append(t)
        v = pd.concat(parts, ignore_index=True).drop_duplicates(["level", "timepoint"])
    if "patient_id" not in v:
        v["patient_id"] = "patient"
    v["patient_id"] = v["patient_id"].astype(str)
    v["timepoint"] = v["timepoint"].astype(str)
    order = timepoint_order(v)
    return order, v


def timeline_figure(
    changes: pd.DataFrame,
    vertebrae: pd.DataFrame | None = None,
    *,
    vas: Mapping[str, float] | None = None,
    title: str = "",
) -> Figure:
    """The timeline of one patient as a matplotlib Figure (see the module docstring).

    Parameters
    ----------
    changes : pandas.DataFrame
        The patient's rows of ``changes.csv`` (``level``, ``timepoint_from``, ``timepoint_to``,
        ``status``; the volumes when ``vertebrae`` is not given).
    vertebrae : pandas.DataFrame, optional
        The patient's rows of ``vertebrae.csv`` of every time point (``level``, ``timepoint``,
        ``scan_date``, ``lesion_volume_mm3``, ``lesion_count``). Without it the volumes come
        from ``changes`` (``lesion_volume_mm3_from`` / ``_to``).
    vas : mapping of str to float, optional
        VAS by time point (drawn on the bottom panel's right axis when any is finite).
    title : str, default ""
        Figure title (default: the patient id).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: ``fig.axes[0]`` the lesion volumes, ``fig.axes[1]`` the involvement count
        (and a third, the VAS axis, when drawn). x is the scan date (matplotlib date numbers)
        when every time point has one, else the time point's rank 1, 2, ...
    """
    order, v = _frames(changes, vertebrae)
    tps = list(order["timepoint"])
    dates = list(order["scan_date"])
    dated = bool(tps) and all(pd.notna(d) for d in dates)
    if dated:
        from matplotlib.dates import date2num

        xs = {tp: float(date2num(pd.Timestamp(d).to_pydatetime())) for tp, d in zip(tps, dates, strict=True)}
    else:
        xs = {tp: float(n + 1) for n, tp in enumerate(tps)}
    status_into: dict[tuple[str, str], str] = {}
    if len(changes):
        for lv, tp, st in zip(
            changes["level"].astype(str),
            changes["timepoint_to"].astype(str),
            changes["status"].astype(str),
            strict=True,
        ):
            status_into[(lv, tp)] = st
    recs = v.to_dict("records")
    vol: dict[str, dict[str, float]] = {}
    involved_levels: set[str] = set()
    n_involved: dict[str, int] = {tp: 0 for tp in tps}
    for r in recs:
        lv, tp = str(r["level"]), str(r["timepoint"])
        vol.setdefault(lv, {})[tp] = _num(r.get("lesion_volume_mm3"))
        if _involved(r):
            involved_levels.add(lv)
            n_involved[tp] = n_involved.get(tp, 0) + 1
    levels = sorted(involved_levels, key=lambda lv: (level_index(lv) if is_level(lv) else 999, lv))

    fig = Figure(figsize=TIMELINE_SIZE_IN, dpi=TIMELINE_DPI, layout="constrained")
    gs = fig.add_gridspec(2, 1, height_ratios=(3.2, 1.0))
    ax = fig.add_subplot(gs[0])
    ax2 = fig.add_subplot(gs[1], sharex=ax)
    pid = str(v["patient_id"].iloc[0]) if len(v) else ""
    fig.suptitle(title or f"{pid}: lesion volume per vertebra over time", fontsize=11)
    used: set[str] = set()
    if not levels:
        ax.text(
            0.5,
            0.5,
            "no involved vertebra at any time point",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=10,
            color="#444",
        )
    for lv in levels:
        pts = [(xs[tp], vol[lv].get(tp, math.nan), tp) for tp in tps]
        for (x0, y0, _), (x1, y1, tp1) in zip(pts[:-1], pts[1:], strict=True):
            if math.isfinite(y0) and math.isfinite(y1):
                st = status_into.get((lv, tp1), "")
                ax.plot(
                    [x0, x1],
                    [y0, y1],
                    color=STATUS_COLOURS.get(st, "#555555"),
                    lw=2.6,
                    solid_capstyle="butt",
                    zorder=2,
                )
        for n, (x, y, tp) in enumerate(pts):
            if not math.isfinite(y):
                continue
            st = status_into.get((lv, tp), "") if n else ""
            if st:
                used.add(st)
                ax.plot(
                    [x],
                    [y],
                    marker=STATUS_MARKERS.get(st, "o"),
                    ms=9,
                    color=STATUS_COLOURS.get(st, "#555"),
                    mec="black",
                    mew=0.6,
                    zorder=3,
                    ls="none",
                )
            else:
                ax.plot(
                    [x],
                    [y],
                    marker="o",
                    ms=8,
                    mfc=BASELINE_COLOUR,
                    mec="#333333",
                    mew=1.2,
                    zorder=3,
                    ls="none",
                )
        last = [(x, y) for x, y, _ in pts if math.isfinite(y)]
        if last:
            ax.annotate(lv, last[-1], xytext=(8, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_ylabel("Lesion volume (mm³)")
    ax.set_ylim(bottom=0)
    ax.margins(x=0.08)
    ax.grid(True, axis="y", color="#e3e7ec", lw=0.8)
    handles = [
        Line2D(
            [], [], color=STATUS_COLOURS[s], marker=STATUS_MARKERS[s], mec="black", mew=0.6, lw=2.6, label=s
        )
        for s in STATUS_ORDER
        if s in used
    ]
    handles.insert(
        0, Line2D([], [], marker="o", mfc=BASELINE_COLOUR, mec="#333333", ls="none", label="first scan")
    )
    ax.legend(
        handles=handles,
        title="change into the scan",
        fontsize=8,
        title_fontsize=8,
        loc="upper left",
        frameon=True,
        framealpha=0.9,
    )
    ax.tick_params(labelbottom=False)

    width = (min(np.diff(sorted(xs.values()))) if len(xs) > 1 else 1.0) * 0.35
    ax2.bar(
        [xs[tp] for tp in tps],
        [n_involved.get(tp, 0) for tp in tps],
        width=width,
        color="#9aa7b5",
        edgecolor="#5a6776",
        zorder=2,
    )
    ax2.set_ylabel("Involved\nvertebrae (count)", fontsize=9)
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_ylim(0, max([1, *n_involved.values()]) * 1.25)
    vas_y = [(_num((vas or {}).get(tp))) for tp in tps]
    if any(math.isfinite(y) for y in vas_y):
        ax3 = ax2.twinx()
        ax3.plot([xs[tp] for tp in tps], vas_y, color="black", marker="o", ms=4, lw=1.2)
        ax3.set_ylim(0, 10.5)
        ax3.set_ylabel("Pain (VAS, 0-10)", fontsize=9)
        ax3.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_xticks([xs[tp] for tp in tps])
    if dated:
        ax2.set_xticklabels([pd.Timestamp(d).strftime("%Y-%m-%d") for d in dates], fontsize=8)
        ax2.set_xlabel("Scan date")
    else:
        ax2.set_xticklabels(tps, fontsize=8)
        ax2.set_xlabel("Time point (in order; scan dates missing)")
    return fig


def timeline_png(
    changes: pd.DataFrame,
    vertebrae: pd.DataFrame | None = None,
    *,
    vas: Mapping[str, float] | None = None,
    title: str = "",
    dpi: int = TIMELINE_DPI,
) -> bytes:
    """PNG bytes of :func:`timeline_figure` (900 x 560 pixels at the default 100 dpi).

    Parameters
    ----------
    changes, vertebrae, vas, title
        As for :func:`timeline_figure`.
    dpi : int, default 100
        Resolution; the size in pixels is ``TIMELINE_SIZE_IN * dpi``.

    Returns
    -------
    bytes
        The PNG file's content.
    """
    return figure_png(timeline_figure(changes, vertebrae, vas=vas, title=title), dpi=dpi)


def write_timelines(
    out_dir: str | os.PathLike[str],
    changes: pd.DataFrame,
    vertebrae: pd.DataFrame | None = None,
    timepoints: pd.DataFrame | None = None,
    *,
    folder: str = "timelines",
) -> dict[str, Path]:
    """Write one timeline PNG per patient of ``changes`` to ``OUT/<folder>/<safe_id>.png``.

    Parameters
    ----------
    out_dir : path-like
        The run's output folder.
    changes : pandas.DataFrame
        ``changes.csv`` of the cohort.
    vertebrae : pandas.DataFrame, optional
        ``vertebrae.csv`` of every time point (with ``timepoint``).
    timepoints : pandas.DataFrame, optional
        :attr:`~spinemri.surveillance.compare.SurveillanceResult.timepoints` (its ``vas``
        column is drawn).
    folder : str, default "timelines"
        Sub-folder of ``out_dir``.

    Returns
    -------
    dict of str to Path
        Patient id -> the PNG written (atomically).
    """
    out = Path(out_dir) / folder
    written: dict[str, Path] = {}
    if not len(changes):
        return written
    ch = changes.copy()
    ch["patient_id"] = ch["patient_id"].astype(str)
    vt = None
    if vertebrae is not None and "timepoint" in vertebrae:
        vt = vertebrae.copy()
        vt["patient_id"] = vt["patient_id"].astype(str)
    for pid, grp in ch.groupby("patient_id", sort=True):
        vas: dict[str, float] = {}
        if timepoints is not None and "vas" in timepoints:
            t = timepoints[timepoints["patient_id"].astype(str) == pid]
            vas = {str(a): _num(b) for a, b in zip(t["timepoint"], t["vas"], strict=True)}
        vp = vt[vt["patient_id"] == pid] if vt is not None else None
        png = timeline_png(grp, vp, vas=vas)
        written[str(pid)] = write_bytes_atomic(out / f"{safe_id(str(pid))}.png", png)
    return written
