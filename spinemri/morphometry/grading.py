"""Expected height from the adjacent levels, height loss, Genant grade, SINS collapse, follow-up events.

Pure pandas/numpy on the heights table of :func:`spinemri.morphometry.vertebra_heights`;
definitions, thresholds and sources in docs/metrics.md ("Body heights and collapse").
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..levels import level_index, region_of
from .params import HeightParams

__all__ = [
    "COLLAPSE_CATEGORIES",
    "NOT_ASSESSABLE",
    "genant_grade",
    "collapse_category",
    "grade_heights",
    "compare_heights",
]

#: Values of the ``collapse`` column (SINS "vertebral body collapse").
COLLAPSE_CATEGORIES = ("none", "lt50", "gt50", "not assessable")
NOT_ASSESSABLE = "not assessable"
#: Levels that are never graded and never serve as a reference: C1 and C2 (no comparable body) and
#: the sacrum (one fused bone, a different shape).
_NOT_GRADED = ("C1", "C2")


def _ungraded(level: str) -> bool:
    return level in _NOT_GRADED or region_of(level) == "sacral"


def genant_grade(loss: float, params: HeightParams | None = None) -> int | None:
    """Genant semiquantitative grade of a height-loss ratio.

    Parameters
    ----------
    loss : float
        1 - (smallest height / expected height); NaN when not assessable.
    params : HeightParams, optional
        ``genant`` thresholds (default 0.20, 0.25, 0.40).

    Returns
    -------
    int or None
        0 (loss < 0.20), 1 (0.20-0.25), 2 (0.25-0.40), 3 (> 0.40); None for NaN.

    Examples
    --------
    >>> [genant_grade(x) for x in (0.1, 0.22, 0.3, 0.5)]
    [0, 1, 2, 3]
    """
    p = params or HeightParams()
    if loss is None or not math.isfinite(loss):
        return None
    g1, g2, g3 = p.genant
    if loss > g3:
        return 3
    if loss >= g2:
        return 2
    if loss >= g1:
        return 1
    return 0


def collapse_category(loss: float, params: HeightParams | None = None) -> str:
    """SINS vertebral body collapse: ``none``, ``lt50``, ``gt50`` or ``not assessable``.

    Parameters
    ----------
    loss : float
        Height-loss ratio; NaN when not assessable.
    params : HeightParams, optional
        ``collapse_min_loss`` (0.20) and ``collapse_gt50`` (0.50).

    Returns
    -------
    str

    Examples
    --------
    >>> [collapse_category(x) for x in (0.1, 0.3, 0.6, float("nan"))]
    ['none', 'lt50', 'gt50', 'not assessable']
    """
    p = params or HeightParams()
    if loss is None or not math.isfinite(loss):
        return NOT_ASSESSABLE
    if loss > p.collapse_gt50:
        return "gt50"
    if loss >= p.collapse_min_loss:
        return "lt50"
    return "none"


def _adjacent(level: str, order: list[str], measured: Mapping[str, object]) -> list[str]:
    """The nearest measured levels above and below (in ``order``), at most 2 level positions away.

    Two positions, so that T12 and L1 are neighbours across the rare T13 (:data:`spinemri.levels.LEVELS`).
    """
    k = order.index(level)
    out = []
    for j in (k - 1, k + 1):
        if (
            0 <= j < len(order)
            and order[j] in measured
            and abs(level_index(order[j]) - level_index(level)) <= 2
        ):
            out.append(order[j])
    return out


_TYPES = ("anterior", "middle", "posterior")


def grade_heights(heights: pd.DataFrame, params: HeightParams | None = None) -> pd.DataFrame:
    """Add expected height, height-loss ratio, Genant grade and SINS collapse to a heights table.

    Parameters
    ----------
    heights : DataFrame
        One row per level with ``level``, ``height_anterior_mm``, ``height_middle_mm``,
        ``height_posterior_mm`` (NaN when not measured) and ``reason`` (why not).
    params : HeightParams, optional

    Returns
    -------
    DataFrame
        A copy with ``expected_height_mm``, ``height_loss_at`` (``anterior``, ``middle`` or
        ``posterior``: where the loss is largest), ``expected_from`` (the reference levels,
        ";"-joined), ``height_loss_ratio``, ``genant_grade`` (nullable Int64), ``collapse`` and
        ``assessable``; ``reason`` says why a row is not assessable.

    Notes
    -----
    For each height type t (anterior, middle, posterior): expected_t = mean of the same height of
    the measured adjacent levels (the nearest measured level above and below, at most two level
    positions away; one of them at the ends of the field of view or next to an unmeasured level);
    loss_t = 1 - h_t / expected_t. The height-loss ratio is the largest loss_t, clipped below at 0,
    and ``expected_height_mm`` is that type's expected height. Like is compared with like, so the
    normal shape of a level (thoracic wedging, the taller front of L5, the lower middle of concave
    endplates) is in the expectation. C1, C2 and the sacrum are neither graded nor references.
    """
    p = params or HeightParams()
    df = heights.copy()
    cols = [f"height_{t}_mm" for t in _TYPES]
    measured = {
        str(r.level): [float(getattr(r, c)) for c in cols]
        for r in df.itertuples()
        if all(math.isfinite(float(getattr(r, c))) for c in cols) and not _ungraded(str(r.level))
    }
    order = [str(x) for x in df["level"]]
    exp, at, src, loss, grade, coll, ok, why = [], [], [], [], [], [], [], []
    for r in df.itertuples():
        lv = str(r.level)
        reason = str(r.reason) if isinstance(r.reason, str) else ""
        h = [float(getattr(r, c)) for c in cols]
        refs = _adjacent(lv, order, measured)
        if _ungraded(lv):
            reason = reason or f"{lv} is not graded (Genant grades C3-L5)"
        elif not all(math.isfinite(x) for x in h):
            reason = reason or "heights not measured"
        elif not refs:
            reason = "no measured adjacent level to give the expected height"
        fine = not _ungraded(lv) and all(math.isfinite(x) for x in h) and bool(refs)
        if fine:
            e = np.mean([measured[x] for x in refs], axis=0)
            losses = 1.0 - np.asarray(h) / e
            k = int(np.argmax(losses))
            lr = max(0.0, float(losses[k]))
            exp.append(float(e[k]))
            at.append(_TYPES[k])
        else:
            lr = math.nan
            exp.append(math.nan)
            at.append("")
        src.append(";".join(refs) if fine else "")
        loss.append(lr)
        grade.append(genant_grade(lr, p))
        coll.append(collapse_category(lr, p))
        ok.append(fine)
        why.append("" if fine else reason)
    df["expected_height_mm"] = exp
    df["height_loss_at"] = at
    df["expected_from"] = src
    df["height_loss_ratio"] = loss
    df["genant_grade"] = pd.array(grade, dtype="Int64")
    df["collapse"] = coll
    df["assessable"] = ok
    df["reason"] = why
    return df


def compare_heights(
    before: pd.DataFrame, after: pd.DataFrame, params: HeightParams | None = None
) -> pd.DataFrame:
    """New or progressing compression fractures between two time points, per level.

    Parameters
    ----------
    before, after : DataFrame
        :func:`~spinemri.morphometry.vertebra_heights` tables of the earlier and the later scan.
    params : HeightParams, optional
        ``new_fracture_ratio`` (0.20) and ``new_fracture_mm`` (4.0).

    Returns
    -------
    DataFrame
        One row per level present in both: ``level``, ``height_drop_mm`` (largest drop of the three
        heights, earlier - later), ``height_drop_ratio`` (that drop / the earlier height),
        ``genant_grade_before``, ``genant_grade_after``, ``fracture_event`` (``new``,
        ``progressing``, ``none`` or ``not assessable``) and ``reason``.

    Notes
    -----
    An event needs a drop of at least ``new_fracture_ratio`` of the earlier height **and** at least
    ``new_fracture_mm`` in one of the three heights: "new" when the earlier grade was 0,
    "progressing" when it was 1-3 (an existing fracture that lost more height). It is a separate
    event from tumour progression (docs/metrics.md).
    """
    p = params or HeightParams()
    cols = ["height_anterior_mm", "height_middle_mm", "height_posterior_mm"]
    b = before.set_index("level")
    a = after.set_index("level")
    rows = []
    for lv in [x for x in a.index if x in b.index]:
        hb = np.array([float(b.at[lv, c]) for c in cols])
        ha = np.array([float(a.at[lv, c]) for c in cols])
        gb, ga = b.at[lv, "genant_grade"], a.at[lv, "genant_grade"]
        gb = None if pd.isna(gb) else int(gb)
        ga = None if pd.isna(ga) else int(ga)
        if not (np.all(np.isfinite(hb)) and np.all(np.isfinite(ha))):
            rows.append((lv, math.nan, math.nan, gb, ga, NOT_ASSESSABLE, "heights missing at one time point"))
            continue
        drop = hb - ha
        k = int(np.argmax(drop))
        ratio = float(drop[k] / hb[k]) if hb[k] > 0 else math.nan
        hit = drop[k] >= p.new_fracture_mm and ratio >= p.new_fracture_ratio
        if not hit:
            event, why = "none", ""
        elif gb is None:
            event, why = NOT_ASSESSABLE, "height fell but the earlier grade is not assessable"
        else:
            event = "new" if gb == 0 else "progressing"
            why = f"{cols[k][7:-3]} height fell {drop[k]:.1f} mm ({100 * ratio:.0f} %)"
        rows.append((lv, float(drop[k]), ratio, gb, ga, event, why))
    out = pd.DataFrame(
        rows,
        columns=[
            "level",
            "height_drop_mm",
            "height_drop_ratio",
            "genant_grade_before",
            "genant_grade_after",
            "fracture_event",
            "reason",
        ],
    )
    out["genant_grade_before"] = out["genant_grade_before"].astype("Int64")
    out["genant_grade_after"] = out["genant_grade_after"].astype("Int64")
    return out
