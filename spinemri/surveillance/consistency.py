"""Is each level the same vertebra at both time points? The level check before any comparison.

Pure pandas / numpy, no I/O. A mislabelled scan (the segmenter counted from the wrong end) or a
partial spine whose labels were counted from its top gives time point B levels that are A's
levels moved by one or more: compared level by level they would invent changes. The check looks
at three quantities that do not depend on how the patient lay in the scanner:

* ``vertebra_volume_mm3`` — vertebrae grow caudally (about 5-15 % per level in the lumbar spine);
* ``height_mm`` — the vertebra's extent along its own cranio-caudal axis (:mod:`.frames`);
* ``spacing_mm`` — the distance from the vertebra's centroid to the next caudal level's
  centroid (both present, neither cut by the field of view): a rigid repositioning leaves it
  unchanged.

For a candidate shift ``s`` (B's level at sequence position ``j`` is A's level at ``j + s``; so
"B's L1..L5 are A's T12..L4" is ``s = -1``), each quantity gives the median absolute log ratio
``|log(q_B / q_A)|`` over the pairs of levels present and not truncated in both; the score of
``s`` is the mean of those medians (quantities with fewer than ``min_common_levels`` pairs left
out). The verdict (:class:`LevelCheck`):

* ``not_checked`` — fewer than ``min_common_levels`` levels to compare as labelled;
* ``shifted`` — a shift ``s != 0`` fits clearly better: its score is at most half of score(0)
  and lower by at least ``min_shift_gain``; the shift is proposed (``shift``), never applied
  silently;
* ``consistent`` — otherwise, when score(0) <= ``level_tolerance``;
* ``inconsistent`` — neither.

Each level as labelled gets a row (:data:`LEVEL_CHECK_COLUMNS`) with the three ratios and its own
verdict: ``ok``, ``differs`` (a ratio beyond ``level_tolerance``: a mislabel, a collapse, a
segmentation failure), ``only_from`` / ``only_to`` (outside the other scan's field of view),
``truncated`` (cut by the field of view in one scan: not compared).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..levels import is_level, level_index, region_of
from .params import SurveillanceParams
from .rules import as_flag

__all__ = [
    "LevelCheck",
    "LEVEL_CHECK_COLUMNS",
    "STANDARD_SEQUENCE",
    "level_sequence",
    "check_level_consistency",
    "shift_levels",
]

#: Levels in cranio-caudal order as most spines have them (T13 and L6 join only when present).
STANDARD_SEQUENCE: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    "S1",
    "Co",
)

LEVEL_CHECK_COLUMNS = (
    "patient_id",
    "timepoint_from",
    "timepoint_to",
    "level",
    "present_from",
    "present_to",
    "vertebra_volume_mm3_from",
    "vertebra_volume_mm3_to",
    "volume_ratio",
    "height_mm_from",
    "height_mm_to",
    "height_ratio",
    "spacing_mm_from",
    "spacing_mm_to",
    "spacing_ratio",
    "verdict",
    "reason",
)

_QUANTITIES = ("vertebra_volume_mm3", "height_mm", "spacing_mm")


@dataclass(frozen=True)
class LevelCheck:
    """The level check of two time points of one patient.

    Attributes
    ----------
    patient_id, timepoint_from, timepoint_to : str
    verdict : str
        ``consistent``, ``shifted``, ``inconsistent`` or ``not_checked``.
    shift : int or None
        The proposed shift (``shifted``), 0 (``consistent``), None otherwise: B's level at
        sequence position ``j`` is A's level at ``j + shift``.
    reason : str
        One sentence saying why, with the scores.
    scores : mapping of int to float
        Score of every shift tried (NaN: too few levels).
    table : pandas.DataFrame
        One row per level as labelled (:data:`LEVEL_CHECK_COLUMNS`).
    """

    patient_id: str
    timepoint_from: str
    timepoint_to: str
    verdict: str
    shift: int | None
    reason: str
    scores: dict[int, float] = field(default_factory=dict)
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(LEVEL_CHECK_COLUMNS)))

    @property
    def comparable(self) -> bool:
        """True when levels may be compared as labelled (``consistent`` or ``not_checked``)."""
        return self.verdict in ("consistent", "not_checked")

    def column(self) -> str:
        """The text of the ``level_check`` column of changes.csv for this pair.

        Returns
        -------
        str
            ``"consistent"``, ``"not checked: ..."``, ``"shifted by N: ..."`` or ``"inconsistent: ..."``.
        """
        if self.verdict == "consistent":
            return "consistent"
        if self.verdict == "shifted":
            return f"shifted by {self.shift:+d}: {self.reason}"
        return f"{self.verdict.replace('_', ' ')}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form (for summary.json).

        Returns
        -------
        dict of str to Any
            Every attribute but the table; scores with NaN as None.
        """
        return {
            "patient_id": self.patient_id,
            "timepoint_from": self.timepoint_from,
            "timepoint_to": self.timepoint_to,
            "verdict": self.verdict,
            "shift": self.shift,
            "reason": self.reason,
            "scores": {str(k): (None if not math.isfinite(v) else float(v)) for k, v in self.scores.items()},
        }


def level_sequence(*level_sets: Sequence[str]) -> tuple[str, ...]:
    """The cranio-caudal sequence for shift arithmetic: the standard one plus T13 / L6 if present.

    Parameters
    ----------
    *level_sets : sequence of str
        The levels of the tables compared.

    Returns
    -------
    tuple of str
    """
    present = {lv for s in level_sets for lv in s if is_level(lv)}
    extra = present & {"T13", "L6"}
    return tuple(sorted(set(STANDARD_SEQUENCE) | extra, key=level_index))


def shift_levels(table: pd.DataFrame, shift: int, sequence: Sequence[str] | None = None) -> pd.DataFrame:
    """Rename the levels of a table by a shift (the level at position ``j`` becomes ``sequence[j + shift]``).

    Parameters
    ----------
    table : pandas.DataFrame
        A vertebra or lesion table with a ``level`` column.
    shift : int
        As :attr:`LevelCheck.shift`.
    sequence : sequence of str, optional
        Default :func:`level_sequence` of the table's levels.

    Returns
    -------
    pandas.DataFrame
        A copy with ``level`` (and ``region`` when present) renamed; rows whose new level would
        fall off the sequence are dropped.
    """
    seq = list(sequence or level_sequence(list(table["level"].astype(str))))
    pos = {lv: n for n, lv in enumerate(seq)}
    new = [
        seq[pos[lv] + shift] if lv in pos and 0 <= pos[lv] + shift < len(seq) else None
        for lv in table["level"]
    ]
    out = table.copy()
    out["level"] = new
    out = out[out["level"].notna()].copy()
    if "region" in out:
        out["region"] = [region_of(lv) for lv in out["level"]]
    return out


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


_Profile = dict[str, dict[str, Any]]


def _profile(table: pd.DataFrame) -> _Profile:
    """Per level: volume, height, spacing to the next caudal level, truncated (plain dicts: fast)."""
    cols = [c for c in ("level", "vertebra_volume_mm3", "height_mm", "truncated") if c in table]
    cent = [f"centroid_{c}_mm" for c in "xyz"]
    has_c = all(c in table for c in cent)
    out: _Profile = {}
    xyz: dict[str, np.ndarray] = {}
    for rec in table[cols + (cent if has_c else [])].to_dict("records"):
        lv = str(rec["level"])
        if lv in out:
            continue
        out[lv] = {
            "vertebra_volume_mm3": _num(rec.get("vertebra_volume_mm3")),
            "height_mm": _num(rec.get("height_mm")),
            "truncated": as_flag(rec.get("truncated", False)),
            "spacing_mm": math.nan,
        }
        if has_c:
            xyz[lv] = np.array([_num(rec[c]) for c in cent])
    if has_c:
        seq = level_sequence(list(out))
        pos = {lv: n for n, lv in enumerate(seq)}
        for lv, q in out.items():
            if lv not in pos or pos[lv] + 1 >= len(seq):
                continue
            nxt = seq[pos[lv] + 1]
            if nxt in out and not q["truncated"] and not out[nxt]["truncated"]:
                q["spacing_mm"] = float(np.linalg.norm(xyz[lv] - xyz[nxt]))
    return out


def _score(pa: _Profile, pb: _Profile, shift: int, seq: Sequence[str], min_common: int) -> float:
    pos = {lv: n for n, lv in enumerate(seq)}
    pairs = []
    for lb, qb in pb.items():
        if lb not in pos or not 0 <= pos[lb] + shift < len(seq):
            continue
        qa = pa.get(seq[pos[lb] + shift])
        if qa is None or qa["truncated"] or qb["truncated"]:
            continue
        pairs.append((qa, qb))
    medians = []
    for q in _QUANTITIES:
        r = [
            abs(math.log(b[q] / a[q]))
            for a, b in pairs
            if a[q] > 0 and b[q] > 0 and math.isfinite(a[q]) and math.isfinite(b[q])
        ]
        if len(r) >= min_common:
            medians.append(float(np.median(r)))
    return float(np.mean(medians)) if medians else math.nan


def check_level_consistency(
    vertebrae_from: pd.DataFrame,
    vertebrae_to: pd.DataFrame,
    params: SurveillanceParams | None = None,
) -> LevelCheck:
    """Check that each level is the same vertebra at two time points of one patient.

    Parameters
    ----------
    vertebrae_from, vertebrae_to : pandas.DataFrame
        The vertebra tables of the earlier and the later time point (one patient each): ``level``
        and ``vertebra_volume_mm3``; used when present: ``height_mm`` and ``centroid_*_mm``
        (:data:`spinemri.surveillance.frames.FRAME_COLUMNS`), ``truncated``, ``patient_id``,
        ``timepoint``.
    params : SurveillanceParams, optional
        ``min_shift_gain``, ``level_tolerance``, ``max_level_shift``, ``min_common_levels``.

    Returns
    -------
    LevelCheck

    Raises
    ------
    InputError
        When a table lacks ``level`` or ``vertebra_volume_mm3``.
    """
    p = params or SurveillanceParams()
    for name, t in (("from", vertebrae_from), ("to", vertebrae_to)):
        missing = {"level", "vertebra_volume_mm3"} - set(t.columns)
        if missing:
            raise InputError(f"level check: the {name} vertebra table lacks column(s) {sorted(missing)}")

    def first(t: pd.DataFrame, col: str, default: str) -> str:
        return str(t[col].iloc[0]) if col in t and len(t) else default

    pid = first(vertebrae_from, "patient_id", first(vertebrae_to, "patient_id", "patient"))
    tpa, tpb = first(vertebrae_from, "timepoint", "from"), first(vertebrae_to, "timepoint", "to")
    pa, pb = _profile(vertebrae_from), _profile(vertebrae_to)
    seq = level_sequence(list(pa), list(pb))
    scores: dict[int, float] = {}
    for s in range(-p.max_level_shift, p.max_level_shift + 1):
        scores[s] = _score(pa, pb, s, seq, p.min_common_levels)
    table = _level_rows(pa, pb, pid, tpa, tpb, p)
    s0 = scores[0]
    finite = {s: v for s, v in scores.items() if math.isfinite(v)}
    text = ", ".join(f"{s:+d}: {v:.3f}" for s, v in finite.items())
    if not math.isfinite(s0):
        verdict, shift = "not_checked", None
        reason = f"fewer than {p.min_common_levels} levels present and not truncated in both scans"
    else:
        best = min(finite, key=lambda s: (finite[s], abs(s)))
        gain = s0 - finite[best]
        if best != 0 and finite[best] <= 0.5 * s0 and gain >= p.min_shift_gain:
            verdict, shift = "shifted", best
            reason = (
                f"as labelled the levels differ (score {s0:.3f}); the later scan's levels match the "
                f"earlier's moved by {best:+d} (score {finite[best]:.3f}); scores by shift {text}"
            )
        elif s0 <= p.level_tolerance:
            verdict, shift = "consistent", 0
            reason = (
                f"score {s0:.3f} <= {p.level_tolerance:g} as labelled, no shift fits clearly better ({text})"
            )
        else:
            verdict, shift = "inconsistent", None
            reason = (
                f"the levels differ as labelled (score {s0:.3f} > {p.level_tolerance:g}) "
                f"and no shift fits ({text})"
            )
    return LevelCheck(pid, tpa, tpb, verdict, shift, reason, scores, table)


def _level_rows(
    pa: _Profile, pb: _Profile, pid: str, tpa: str, tpb: str, p: SurveillanceParams
) -> pd.DataFrame:
    rows = []
    for lv in sorted(set(pa) | set(pb), key=level_index):
        ina, inb = lv in pa, lv in pb
        row: dict[str, Any] = {
            "patient_id": pid,
            "timepoint_from": tpa,
            "timepoint_to": tpb,
            "level": lv,
            "present_from": ina,
            "present_to": inb,
        }
        bad = []
        for q, short in zip(_QUANTITIES, ("volume", "height", "spacing"), strict=True):
            name = "vertebra_volume_mm3" if q == "vertebra_volume_mm3" else q
            a = float(pa[lv][q]) if ina else math.nan
            b = float(pb[lv][q]) if inb else math.nan
            row[f"{name}_from"], row[f"{name}_to"] = a, b
            ratio = b / a if a > 0 and math.isfinite(b) else math.nan
            row[f"{short}_ratio"] = ratio
            if ratio > 0 and math.isfinite(ratio) and abs(math.log(ratio)) > p.level_tolerance:
                bad.append(f"{short} x{ratio:.2f}")
        if not ina or not inb:
            row["verdict"] = "only_from" if ina else "only_to"
            row["reason"] = "outside the field of view of the " + ("later" if ina else "earlier") + " scan"
        elif pa[lv]["truncated"] or pb[lv]["truncated"]:
            row["verdict"], row["reason"] = "truncated", "cut by the field of view in one scan: not compared"
        elif bad:
            row["verdict"] = "differs"
            row["reason"] = "; ".join(bad) + f" (beyond a factor {math.exp(p.level_tolerance):.2f})"
        else:
            row["verdict"], row["reason"] = "ok", ""
        rows.append(row)
    return pd.DataFrame(rows, columns=list(LEVEL_CHECK_COLUMNS))
