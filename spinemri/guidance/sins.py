"""SINS points of each component, their range when a component is missing, the total and its category.

Pure (values and DataFrames in and out). The Spinal Instability Neoplastic Score (Fisher et al.,
Spine 2010;35:E1221-E1229) adds six components; spinemri measures four from imaging (location,
collapse, alignment, posterolateral involvement) and reads two from clinical columns (pain,
lesion type). A component that the inputs cannot support is "not assessable": its points are
unknown (<NA>), never 0, and the total becomes the range ``sins_min``-``sins_max`` over the values
it could take. Definitions and sources: docs/metrics.md ("SINS components and planning summary").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..errors import InputError

__all__ = [
    "CATEGORIES",
    "COMPONENTS",
    "NOT_ASSESSABLE",
    "SINS_COLUMNS",
    "alignment_points",
    "category_of",
    "category_range",
    "collapse_points",
    "lesion_type_points",
    "location_points",
    "pain_points",
    "posterolateral_points",
    "score_sins",
]

NOT_ASSESSABLE = "not assessable"
#: The six SINS components, in the order of Fisher et al. 2010, with their (min, max) points.
COMPONENTS: Mapping[str, tuple[int, int]] = {
    "location": (0, 3),
    "pain": (0, 3),
    "lesion_type": (0, 2),
    "alignment": (0, 4),
    "collapse": (0, 3),
    "posterolateral": (0, 3),
}
#: Total ranges of the three SINS categories.
CATEGORIES = (("stable", 0, 6), ("indeterminate", 7, 12), ("unstable", 13, 18))

_LOCATION = {"junctional": 3, "mobile": 2, "semirigid": 1, "rigid": 0}
_PAIN = {
    "mechanical": 3,
    "yes": 3,
    "occasional": 1,
    "non-mechanical": 1,
    "nonmechanical": 1,
    "occasional non-mechanical": 1,
    "none": 0,
    "no": 0,
    "pain-free": 0,
    "pain free": 0,
}
_LESION = {"lytic": 2, "mixed": 1, "blastic": 0, "sclerotic": 0}
_POSTEROLATERAL = {"bilateral": 3, "unilateral": 1, "none": 0}
_ALIGNMENT = {"subluxation": 4, "deformity": 2, "normal": 0}

#: Columns :func:`score_sins` writes.
SINS_COLUMNS = (
    "sins_applies",
    "sins_location_points",
    "sins_location_source",
    "sins_collapse",
    "sins_collapse_source",
    "sins_body_involvement",
    "sins_body_involvement_source",
    "sins_posterolateral",
    "sins_posterolateral_source",
    "sins_alignment",
    "sins_alignment_source",
    "sins_pain",
    "sins_pain_source",
    "sins_lesion_type",
    "sins_lesion_type_source",
    "sins_min",
    "sins_max",
    "sins_category",
    "sins_reasons",
)


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in ("", NOT_ASSESSABLE, "nan", "na", "unknown")


def location_points(location_class: str) -> int:
    """SINS location points: junctional 3, mobile 2, semirigid 1, rigid 0.

    Parameters
    ----------
    location_class : str
        :func:`spinemri.metrics.sins_location` of the level.

    Returns
    -------
    int

    Raises
    ------
    InputError
        For a class that is not one of the four.

    Examples
    --------
    >>> [location_points(c) for c in ("junctional", "mobile", "semirigid", "rigid")]
    [3, 2, 1, 0]
    """
    try:
        return _LOCATION[str(location_class)]
    except KeyError:
        raise InputError(f"sins_location {location_class!r} is not one of {sorted(_LOCATION)}") from None


def collapse_points(collapse: str, involvement_gt: bool | None) -> tuple[int, int]:
    """SINS body collapse points (min, max): > 50 % 3, < 50 % 2, none with > 50 % involved 1, else 0.

    Parameters
    ----------
    collapse : str
        ``gt50``, ``lt50``, ``none`` or ``not assessable`` (``collapse`` of
        :func:`spinemri.morphometry.vertebra_heights`).
    involvement_gt : bool or None
        Whether more than half of the body is involved; None when not assessable.

    Returns
    -------
    tuple of int
        Equal bounds when the component is determined.

    Examples
    --------
    >>> collapse_points("gt50", None), collapse_points("none", True), collapse_points("none", None)
    ((3, 3), (1, 1), (0, 1))
    >>> collapse_points("not assessable", False)
    (0, 3)
    """
    c = str(collapse)
    if c == "gt50":
        return 3, 3
    if c == "lt50":
        return 2, 2
    if c == "none":
        if involvement_gt is None:
            return 0, 1
        return (1, 1) if involvement_gt else (0, 0)
    # collapse unknown: 0-3, or 1-3 when more than half of the body is known to be involved
    return (1, 3) if involvement_gt else (0, 3)


def posterolateral_points(value: str) -> tuple[int, int]:
    """SINS posterolateral involvement points: bilateral 3, unilateral 1, none 0 (0-3 when not assessable).

    Parameters
    ----------
    value : str
        ``none``, ``unilateral``, ``bilateral`` or ``not assessable``.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> posterolateral_points("unilateral"), posterolateral_points("not assessable")
    ((1, 1), (0, 3))
    """
    v = str(value)
    if v not in _POSTEROLATERAL:
        return 0, 3
    return _POSTEROLATERAL[v], _POSTEROLATERAL[v]


def alignment_points(value: str, partial: str | None = None) -> tuple[int, int]:
    """SINS alignment points: subluxation / translation 4, de novo deformity 2, normal 0.

    Parameters
    ----------
    value : str
        ``subluxation``, ``deformity``, ``normal`` or ``not assessable``: what was measured.
    partial : {"translation", "angle", "both"}, optional
        Which part could not be measured (a neighbour missing from the field of view): the
        points are then a range from the measured value up to what the missing part could add.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> alignment_points("normal"), alignment_points("normal", "angle")
    ((0, 0), (0, 2))
    >>> alignment_points("deformity", "translation")
    (2, 4)
    >>> alignment_points("subluxation", "angle"), alignment_points("not assessable")
    ((4, 4), (0, 4))
    """
    v = str(value)
    if v not in _ALIGNMENT:
        return 0, 4
    lo = _ALIGNMENT[v]
    if partial is None or lo == 4:
        return lo, lo
    if partial == "angle":
        return lo, max(lo, 2)
    return lo, 4


def pain_points(value: Any) -> tuple[int, int]:
    """SINS pain points from the clinical column ``pain_mechanical``: mechanical 3, occasional 1, none 0.

    Parameters
    ----------
    value : str or None
        ``mechanical`` (also ``yes``), ``occasional`` / ``non-mechanical``, ``none`` (also ``no``,
        ``pain-free``); empty or missing: not assessable (0-3).

    Returns
    -------
    tuple of int

    Raises
    ------
    InputError
        For any other value.

    Examples
    --------
    >>> pain_points("mechanical"), pain_points("Occasional"), pain_points(None)
    ((3, 3), (1, 1), (0, 3))
    """
    if _missing(value):
        return 0, 3
    key = str(value).strip().lower()
    if key not in _PAIN:
        raise InputError(f"pain_mechanical={value!r}: expected one of {sorted(_PAIN)} or empty")
    return _PAIN[key], _PAIN[key]


def lesion_type_points(value: Any) -> tuple[int, int]:
    """SINS bone lesion points from the clinical column ``lesion_type``: lytic 2, mixed 1, blastic 0.

    Parameters
    ----------
    value : str or None
        ``lytic``, ``mixed``, ``blastic`` (also ``sclerotic``); empty or missing: not assessable
        (0-2; MRI alone does not tell lytic from blastic, CT does).

    Returns
    -------
    tuple of int

    Raises
    ------
    InputError
        For any other value.

    Examples
    --------
    >>> lesion_type_points("lytic"), lesion_type_points(float("nan"))
    ((2, 2), (0, 2))
    """
    if _missing(value):
        return 0, 2
    key = str(value).strip().lower()
    if key not in _LESION:
        raise InputError(f"lesion_type={value!r}: expected one of {sorted(_LESION)} or empty")
    return _LESION[key], _LESION[key]


def category_of(total: int) -> str:
    """SINS category of a total: stable 0-6, indeterminate 7-12, unstable 13-18.

    Parameters
    ----------
    total : int

    Returns
    -------
    str

    Examples
    --------
    >>> [category_of(t) for t in (0, 6, 7, 12, 13, 18)]
    ['stable', 'stable', 'indeterminate', 'indeterminate', 'unstable', 'unstable']
    """
    for name, lo, hi in CATEGORIES:
        if lo <= total <= hi:
            return name
    raise InputError(f"SINS total {total} is outside 0-18")


def category_range(lo: int, hi: int) -> str:
    """The category of a SINS range: one name, or ``first-last`` when the range crosses categories.

    Parameters
    ----------
    lo, hi : int
        ``sins_min`` and ``sins_max``.

    Returns
    -------
    str

    Examples
    --------
    >>> category_range(3, 5), category_range(5, 9), category_range(4, 14)
    ('stable', 'stable-indeterminate', 'stable-unstable')
    """
    a, b = category_of(lo), category_of(hi)
    return a if a == b else f"{a}-{b}"


def _src(lo: int, hi: int, source: str) -> str:
    return source if lo == hi else NOT_ASSESSABLE


def score_sins(components: pd.DataFrame, clinical: pd.DataFrame | None = None) -> pd.DataFrame:
    """SINS component points, sources, total range and category of each level.

    Parameters
    ----------
    components : DataFrame
        One row per level with ``level``, ``involved`` (bool), ``sins_location`` (class),
        ``collapse``, ``body_involvement_ratio`` (NaN when not assessable), ``posterolateral``,
        ``alignment`` and ``alignment_partial`` (:func:`alignment_points`), and optionally
        ``patient_id``, ``body_involvement_reason``, ``posterolateral_reason``,
        ``alignment_reason``, ``collapse_reason`` (appear in ``sins_reasons``), and
        ``body_involvement_gt`` (threshold, default 0.5).
    clinical : DataFrame, optional
        Columns ``pain_mechanical`` and/or ``lesion_type``; matched on ``patient_id`` (and
        ``level`` when it has that column: a per-level value wins over a per-patient one). Without
        it, or where a value is missing, pain and lesion type are not assessable.

    Returns
    -------
    DataFrame
        ``components`` with :data:`SINS_COLUMNS` added (replaced when present). Points are
        nullable Int64: <NA> when the component is not assessable (``*_source`` then says so),
        never 0. ``sins_min`` / ``sins_max`` bound the total over every value the missing
        components could take; ``sins_category`` is the category of the range
        (:func:`category_range`). ``sins_applies`` is False for a level without lesion: SINS
        scores a neoplastic lesion, so its total and category are <NA> / ``not applicable (no
        lesion)`` while the measured components stay.

    Raises
    ------
    InputError
        A clinical value that is not a known pain or lesion-type value, or a required column missing.

    Examples
    --------
    >>> import pandas as pd
    >>> comp = pd.DataFrame({"level": ["L1"], "involved": [True], "sins_location": ["junctional"],
    ...                      "collapse": ["gt50"], "body_involvement_ratio": [0.7],
    ...                      "posterolateral": ["unilateral"], "alignment": ["normal"],
    ...                      "alignment_partial": [None]})
    >>> r = score_sins(comp).iloc[0]
    >>> int(r.sins_min), int(r.sins_max), r.sins_category
    (7, 12, 'indeterminate')
    """
    need = {
        "level",
        "involved",
        "sins_location",
        "collapse",
        "body_involvement_ratio",
        "posterolateral",
        "alignment",
    }
    missing = need - set(components.columns)
    if missing:
        raise InputError(f"score_sins: the components table lacks the columns {sorted(missing)}")
    df = components.drop(columns=[c for c in SINS_COLUMNS if c in components.columns]).reset_index(drop=True)
    clin_pat: dict[str, dict[str, Any]] = {}
    clin_lvl: dict[tuple[str, str], dict[str, Any]] = {}
    if clinical is not None and len(clinical):
        cols = [c for c in ("pain_mechanical", "lesion_type") if c in clinical.columns]
        for _, r in clinical.iterrows():
            pid = str(r["patient_id"]) if "patient_id" in clinical.columns else ""
            vals = {c: r[c] for c in cols}
            if "level" in clinical.columns and not _missing(r["level"]):
                clin_lvl[(pid, str(r["level"]))] = vals
            else:
                clin_pat[pid] = vals
    thr = df["body_involvement_gt"] if "body_involvement_gt" in df.columns else pd.Series(0.5, index=df.index)
    out: list[dict[str, Any]] = []
    for i, r in df.iterrows():
        reasons: list[str] = []
        pid = str(r["patient_id"]) if "patient_id" in df.columns else ""
        loc = location_points(str(r["sins_location"]))
        ratio = r["body_involvement_ratio"]
        inv_gt: bool | None = None if _missing(ratio) else bool(float(ratio) > float(thr.iloc[i]))
        if inv_gt is None:
            reasons.append("body involvement: " + str(r.get("body_involvement_reason", "") or NOT_ASSESSABLE))
        c_lo, c_hi = collapse_points(str(r["collapse"]), inv_gt)
        if str(r["collapse"]) not in ("none", "lt50", "gt50"):
            reasons.append("collapse: " + str(r.get("collapse_reason", "") or "heights not assessable"))
        pl_lo, pl_hi = posterolateral_points(str(r["posterolateral"]))
        if pl_lo != pl_hi:
            reasons.append("posterolateral: " + str(r.get("posterolateral_reason", "") or NOT_ASSESSABLE))
        part = r.get("alignment_partial")
        al_lo, al_hi = alignment_points(str(r["alignment"]), None if _missing(part) else str(part))
        if al_lo != al_hi:
            reasons.append("alignment: " + str(r.get("alignment_reason", "") or NOT_ASSESSABLE))
        cv = {**clin_pat.get(pid, {}), **clin_lvl.get((pid, str(r["level"])), {})}
        p_lo, p_hi = pain_points(cv.get("pain_mechanical"))
        t_lo, t_hi = lesion_type_points(cv.get("lesion_type"))
        if p_lo != p_hi:
            reasons.append("pain: no pain_mechanical value")
        if t_lo != t_hi:
            reasons.append("lesion type: no lesion_type value (MRI does not tell lytic from blastic)")
        lo = loc + c_lo + pl_lo + al_lo + p_lo + t_lo
        hi = loc + c_hi + pl_hi + al_hi + p_hi + t_hi
        applies = bool(r["involved"])
        if not applies:
            reasons.insert(0, "no lesion at this level: SINS scores a neoplastic lesion")

        def pts(a: int, b: int) -> Any:
            return a if a == b else pd.NA

        out.append(
            {
                "sins_applies": applies,
                "sins_location_points": loc,
                "sins_location_source": "imaging",
                "sins_collapse": pts(c_lo, c_hi),
                "sins_collapse_source": _src(c_lo, c_hi, "imaging")
                if str(r["collapse"]) not in ("none", "lt50", "gt50")
                else "imaging"
                if c_lo == c_hi
                else "imaging (partial)",
                "sins_body_involvement": pd.NA if inv_gt is None else inv_gt,
                "sins_body_involvement_source": NOT_ASSESSABLE if inv_gt is None else "imaging",
                "sins_posterolateral": pts(pl_lo, pl_hi),
                "sins_posterolateral_source": _src(pl_lo, pl_hi, "imaging"),
                "sins_alignment": pts(al_lo, al_hi),
                "sins_alignment_source": _src(al_lo, al_hi, "imaging")
                if str(r["alignment"]) not in _ALIGNMENT
                else "imaging"
                if al_lo == al_hi
                else "imaging (partial)",
                "sins_pain": pts(p_lo, p_hi),
                "sins_pain_source": _src(p_lo, p_hi, "clinical"),
                "sins_lesion_type": pts(t_lo, t_hi),
                "sins_lesion_type_source": _src(t_lo, t_hi, "clinical"),
                "sins_min": lo if applies else pd.NA,
                "sins_max": hi if applies else pd.NA,
                "sins_category": category_range(lo, hi) if applies else "not applicable (no lesion)",
                "sins_reasons": "; ".join(reasons),
            }
        )
    add = pd.DataFrame(out, columns=list(SINS_COLUMNS), index=df.index)
    for c in (
        "sins_location_points",
        "sins_collapse",
        "sins_posterolateral",
        "sins_alignment",
        "sins_pain",
        "sins_lesion_type",
        "sins_min",
        "sins_max",
    ):
        add[c] = add[c].astype("Int64")
    add["sins_body_involvement"] = add["sins_body_involvement"].astype("boolean")
    return pd.concat([df, add], axis=1)
