"""Lesions followed within their vertebra from one time point to the next (``lesion_changes.csv``).

Pure numpy / scipy / pandas, no I/O, no common voxel grid assumed. Each lesion is a point in its
vertebra's own frame (:mod:`.frames`: ``rel_si``, ``rel_ap``, ``rel_lr``, scaled back to mm by the
mean of the vertebra's two extents along each axis, so a vertebra that lost height keeps its
lesions where they were relative to the endplates) with the radius of the sphere of its volume.

Within one level and one pair of time points:

1. **candidate links**: lesions ``i`` (earlier) and ``j`` (later) whose distance is at most
   ``r_i + r_j + match_margin_mm``;
2. **one-to-one matches**: the Hungarian assignment (``scipy.optimize.linear_sum_assignment``)
   minimising the total distance over the candidate links (links outside the gate cost more than
   all gated ones together, so the number of matches is as large as it can be, then the distance
   as small);
3. **merges**: an unmatched earlier lesion whose sphere overlaps (``d <= r_i + r_j``) a matched
   later lesion joins that lesion's group (the nearest, when several): ``merged``;
4. **splits**: an unmatched later lesion whose sphere overlaps a matched earlier lesion of a
   group that is not a merge joins it (the nearest): ``split``;
5. what is left is ``disappeared`` (earlier only) or ``new`` (later only).

A one-to-one group is ``enlarging``, ``shrinking`` or ``stable`` by the rule of :mod:`.rules`
(the thresholds of the vertebrae); merged and split groups carry the same trend of their summed
volumes in ``volume_trend``. Columns: :data:`LESION_CHANGE_COLUMNS` (docs/metrics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..errors import InputError
from ..levels import level_index
from .frames import AXES, equivalent_radius
from .params import SurveillanceParams
from .rules import absolute_threshold, volume_change_sign, voxel_volume_mm3
from .timepoints import RadiotherapyCourse, TimepointPair

__all__ = [
    "LESION_CLASSES",
    "LESION_CHANGE_COLUMNS",
    "LesionGroup",
    "match_lesions",
    "compare_lesions",
    "irradiated_before",
]

#: The classes of a lesion group.
LESION_CLASSES = ("new", "disappeared", "enlarging", "shrinking", "stable", "merged", "split")

LESION_CHANGE_COLUMNS = (
    "patient_id",
    "level",
    "region",
    "timepoint_from",
    "timepoint_to",
    "scan_date_from",
    "scan_date_to",
    "interval_days",
    "lesion_ids_from",
    "lesion_ids_to",
    "n_from",
    "n_to",
    "volume_mm3_from",
    "volume_mm3_to",
    "delta_volume_mm3",
    "volume_ratio",
    "distance_mm",
    "lesion_class",
    "volume_trend",
    "possible_pseudoprogression",
)

_BIG = 1e12


@dataclass(frozen=True)
class LesionGroup:
    """Lesions of one level linked across two time points (row indices into the two inputs)."""

    from_rows: tuple[int, ...]
    to_rows: tuple[int, ...]
    distance_mm: float

    @property
    def kind(self) -> str:
        """``new``, ``disappeared``, ``merged``, ``split`` or ``matched`` (one to one)."""
        if not self.from_rows:
            return "new"
        if not self.to_rows:
            return "disappeared"
        if len(self.from_rows) > 1:
            return "merged"
        if len(self.to_rows) > 1:
            return "split"
        return "matched"


def match_lesions(
    pos_from: np.ndarray,
    radius_from: np.ndarray,
    pos_to: np.ndarray,
    radius_to: np.ndarray,
    margin_mm: float,
) -> list[LesionGroup]:
    """Link the lesions of one vertebra at two time points (matches, merges, splits, new, gone).

    Parameters
    ----------
    pos_from : ndarray of shape (n, 3)
        Earlier lesions' positions in the vertebra frame (mm).
    radius_from : ndarray of shape (n,)
        Their equivalent-sphere radii (mm).
    pos_to : ndarray of shape (m, 3)
    radius_to : ndarray of shape (m,)
        The same for the later lesions.
    margin_mm : float
        Added to the sum of radii for a candidate match.

    Returns
    -------
    list of LesionGroup
        Every lesion of both inputs in exactly one group: matched, merged and split groups first
        (in the order of their first earlier lesion), then disappeared, then new lesions.

    Examples
    --------
    >>> a, b, r = np.array([[0.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([3.0])
    >>> g = match_lesions(a, r, b, r, 5.0)
    >>> [(x.from_rows, x.to_rows, x.kind) for x in g]
    [((0,), (0,), 'matched')]
    """
    a = np.asarray(pos_from, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(pos_to, dtype=np.float64).reshape(-1, 3)
    ra = np.asarray(radius_from, dtype=np.float64).reshape(-1)
    rb = np.asarray(radius_to, dtype=np.float64).reshape(-1)
    n, m = len(a), len(b)
    d = cdist(a, b) if n and m else np.zeros((n, m))
    cand = d <= ra[:, None] + rb[None, :] + margin_mm
    overlap = d <= ra[:, None] + rb[None, :]
    match_of_a: dict[int, int] = {}
    if n and m:
        rows, cols = linear_sum_assignment(np.where(cand, d, _BIG))
        match_of_a = {int(i): int(j) for i, j in zip(rows, cols, strict=True) if cand[i, j]}
    match_of_b = {j: i for i, j in match_of_a.items()}
    groups: dict[int, tuple[list[int], list[int]]] = {i: ([i], [j]) for i, j in sorted(match_of_a.items())}
    gone = []
    for i in range(n):  # merges: an unmatched earlier lesion overlapping a matched later one
        if i in match_of_a:
            continue
        js = [j for j in range(m) if overlap[i, j] and j in match_of_b]
        if js:
            j = min(js, key=lambda j: (d[i, j], j))
            groups[match_of_b[j]][0].append(i)
        else:
            gone.append(i)
    new = []
    for j in range(m):  # splits: an unmatched later lesion overlapping a matched earlier one
        if j in match_of_b:
            continue
        iis = [i for i in match_of_a if overlap[i, j] and len(groups[i][0]) == 1]
        if iis:
            i = min(iis, key=lambda i: (d[i, j], i))
            groups[i][1].append(j)
        else:
            new.append(j)
    out = []
    for i in sorted(groups):
        fr, to = groups[i]
        ca = a[fr].mean(axis=0) if len(fr) else np.zeros(3)
        cb = b[to].mean(axis=0) if len(to) else np.zeros(3)
        if len(fr) > 1 or len(to) > 1:  # volume-free centre of each side: the mean position
            dist = float(np.linalg.norm(ca - cb))
        else:
            dist = float(d[fr[0], to[0]])
        out.append(LesionGroup(tuple(sorted(fr)), tuple(sorted(to)), dist))
    out += [LesionGroup((i,), (), math.nan) for i in gone]
    out += [LesionGroup((), (j,), math.nan) for j in new]
    return out


def irradiated_before(
    courses: Sequence[RadiotherapyCourse],
    patient_id: str,
    level: str,
    scan_date_to: pd.Timestamp | None,
    window_days: float,
) -> bool:
    """Was ``level`` irradiated at most ``window_days`` before the later scan (or at an unknown time)?

    Parameters
    ----------
    courses : sequence of RadiotherapyCourse
    patient_id, level : str
    scan_date_to : Timestamp or None
        The later scan's date.
    window_days : float

    Returns
    -------
    bool
        True when a course of this patient treated ``level`` and either date is unknown or
        ``0 <= scan_date_to - course date <= window_days``.
    """
    for c in courses:
        if c.patient_id != patient_id or level not in c.levels:
            continue
        if c.date is None or scan_date_to is None:
            return True
        if 0 <= (scan_date_to - c.date).days <= window_days:
            return True
    return False


class _Lesions:
    """One time point's lesions as arrays (pandas indexing per level is slow): built once per table."""

    def __init__(self, les: pd.DataFrame) -> None:
        n = len(les)
        self.level = les["level"].astype(str).to_numpy() if n else np.zeros(0, dtype=object)
        self.ids = (
            les["lesion_id"].to_numpy(np.int64)
            if "lesion_id" in les and n
            else np.arange(1, n + 1, dtype=np.int64)
        )
        self.volume = les["volume_mm3"].to_numpy(float) if n else np.zeros(0)
        rel, off = [f"rel_{a}" for a in AXES], [f"offset_{a}_mm" for a in AXES]
        self.rel = les[rel].to_numpy(float) if all(c in les for c in rel) else None
        self.offset = les[off].to_numpy(float) if all(c in les for c in off) else None
        self.radius = (
            les["radius_mm"].to_numpy(float) if "radius_mm" in les and n else equivalent_radius(self.volume)
        )
        if n and self.rel is None and self.offset is None:
            raise InputError(
                "lesion matching: the lesion table needs rel_si, rel_ap, rel_lr (with the vertebrae's "
                "extent_*_mm) or offset_*_mm columns (spinemri.surveillance.frames.lesion_positions)"
            )

    def of(self, level: str) -> np.ndarray:
        """Row indices of the lesions of ``level``.

        Parameters
        ----------
        level : str

        Returns
        -------
        ndarray of int
        """
        return np.flatnonzero(self.level == level)

    def positions(self, rows: np.ndarray, ext: np.ndarray) -> np.ndarray:
        """Positions (mm, frame axes) of some rows: ``rel * ext``, else the offsets, else NaN.

        Parameters
        ----------
        rows : ndarray of int
        ext : ndarray of shape (3,)
            Extents (si, ap, lr) to scale ``rel_*`` by.

        Returns
        -------
        ndarray of shape (len(rows), 3)
        """
        if self.rel is not None and np.all(np.isfinite(ext)):
            scaled: np.ndarray = self.rel[rows] * ext[None, :]
            return scaled
        if self.offset is not None:
            offsets: np.ndarray = self.offset[rows]
            return offsets
        return np.full((len(rows), 3), np.nan)

    def ids_text(self, rows: np.ndarray, picks: Sequence[int]) -> str:
        """The ``lesion_id``s of ``rows[picks]`` as ``"3;5"`` (ascending; empty for none).

        Parameters
        ----------
        rows : ndarray of int
        picks : sequence of int
            Positions within ``rows``.

        Returns
        -------
        str
        """
        return ";".join(str(int(i)) for i in sorted(self.ids[rows[list(picks)]])) if picks else ""


def _extents(vert: pd.DataFrame) -> dict[str, np.ndarray]:
    cols = [f"extent_{a}_mm" for a in AXES]
    if not all(c in vert for c in cols):
        return {}
    out: dict[str, np.ndarray] = {}
    for lv, e in zip(vert["level"].astype(str), vert[cols].to_numpy(float), strict=True):
        out.setdefault(lv, e)
    return out


def compare_lesions(
    lesions_from: pd.DataFrame,
    lesions_to: pd.DataFrame,
    vertebrae_from: pd.DataFrame,
    vertebrae_to: pd.DataFrame,
    pair: TimepointPair,
    params: SurveillanceParams | None = None,
    *,
    levels: Sequence[str] | None = None,
    courses: Sequence[RadiotherapyCourse] = (),
) -> pd.DataFrame:
    """``lesion_changes.csv`` rows of one patient between two time points.

    Parameters
    ----------
    lesions_from, lesions_to : pandas.DataFrame
        The lesion tables of the two time points (this patient): ``level``, ``volume_mm3``,
        ``lesion_id`` and the positions (``rel_*`` or ``offset_*_mm``; ``radius_mm`` optional).
    vertebrae_from, vertebrae_to : pandas.DataFrame
        The vertebra tables (``level``; ``extent_*_mm``; ``vertebra_voxels`` and
        ``vertebra_volume_mm3`` for the voxel size of the absolute threshold).
    pair : TimepointPair
    params : SurveillanceParams, optional
    levels : sequence of str, optional
        Levels to compare (default: those present in both vertebra tables).
    courses : sequence of RadiotherapyCourse
        For ``possible_pseudoprogression``.

    Returns
    -------
    pandas.DataFrame
        :data:`LESION_CHANGE_COLUMNS`, levels cranial to caudal.

    Raises
    ------
    InputError
        When the positions cannot be found (see :func:`spinemri.surveillance.frames.lesion_positions`).
    """
    p = params or SurveillanceParams()
    if levels is None:
        levels = sorted(set(vertebrae_from["level"]) & set(vertebrae_to["level"]), key=level_index)
    thr = absolute_threshold(voxel_volume_mm3(vertebrae_from), voxel_volume_mm3(vertebrae_to), p)
    rows = []
    la, lb = _Lesions(lesions_from), _Lesions(lesions_to)
    ext_a, ext_b = _extents(vertebrae_from), _extents(vertebrae_to)
    nan3 = np.full(3, np.nan)
    for lv in levels:
        ia, ib = la.of(lv), lb.of(lv)
        if not len(ia) and not len(ib):
            continue
        ext = 0.5 * (ext_a.get(lv, nan3) + ext_b.get(lv, nan3))
        pa, pb = la.positions(ia, ext), lb.positions(ib, ext)
        if not (np.all(np.isfinite(pa)) and np.all(np.isfinite(pb))):
            continue  # a lesion without a position (its vertebra has no frame): not matched, no rows
        va, vb = la.volume[ia], lb.volume[ib]
        rt = irradiated_before(courses, pair.patient_id, lv, pair.scan_date_to, p.pseudoprogression_days)
        for g in match_lesions(pa, la.radius[ia], pb, lb.radius[ib], p.match_margin_mm):
            v0 = float(va[list(g.from_rows)].sum()) if g.from_rows else 0.0
            v1 = float(vb[list(g.to_rows)].sum()) if g.to_rows else 0.0
            trend = ""
            if g.from_rows and g.to_rows:
                trend = {1: "enlarging", -1: "shrinking", 0: "stable"}[volume_change_sign(v0, v1, thr, p)]
            cls = {"matched": trend}.get(g.kind, g.kind)
            rows.append(
                {
                    **pair.keys(lv),
                    "lesion_ids_from": la.ids_text(ia, g.from_rows),
                    "lesion_ids_to": lb.ids_text(ib, g.to_rows),
                    "n_from": len(g.from_rows),
                    "n_to": len(g.to_rows),
                    "volume_mm3_from": v0,
                    "volume_mm3_to": v1,
                    "delta_volume_mm3": v1 - v0,
                    "volume_ratio": v1 / v0 if v0 > 0 else math.nan,
                    "distance_mm": g.distance_mm,
                    "lesion_class": cls,
                    "volume_trend": trend,
                    "possible_pseudoprogression": bool(rt and (cls == "new" or trend == "enlarging")),
                }
            )
    out = pd.DataFrame(rows, columns=list(LESION_CHANGE_COLUMNS))
    return out.astype({"n_from": np.int64, "n_to": np.int64, "possible_pseudoprogression": bool})
