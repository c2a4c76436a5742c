"""The per-patient planning summary (``planning.csv``) and its per-level table (``planning_levels.csv``).

Pure (DataFrames in and out). Decision support, not a diagnosis or a treatment recommendation:
the summary lists the levels a treating team would look at first (SINS >= 7, collapse or a new
fracture, change since the last scan), each with its reasons and the source of every input.
Columns and definitions: docs/metrics.md ("SINS components and planning summary"); what cannot be
assessed from which inputs: docs/guidance.md.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..errors import InputError
from ..levels import is_level, level_index, region_of
from ..prognosis import prognostic_imaging_items
from .sins import score_sins

__all__ = [
    "DECISION_SUPPORT",
    "PLANNING_COLUMNS",
    "PLANNING_LEVEL_COLUMNS",
    "SINS_CONSULT",
    "planning_cohort",
    "planning_rows",
]

#: The label every planning row and report section carries.
DECISION_SUPPORT = (
    "decision support, not a diagnosis or treatment recommendation: imaging measurements to be "
    "read by the treating team with the images and the patient"
)
#: SINS total from which surgical consultation is advised (Fisher et al., Spine 2010).
SINS_CONSULT = 7
_UNSTABLE = 13
_REGIONS = ("cervical", "thoracic", "lumbar", "sacral")

#: Columns of ``planning.csv`` (one row per patient), in order.
PLANNING_COLUMNS = (
    "patient_id",
    "timepoint",
    "decision_support",
    "n_levels",
    "n_involved",
    "involved_levels",
    *(f"involved_{r}" for r in _REGIONS),
    "sins_ge7_levels",
    "sins_possible_ge7_levels",
    "sins_unstable_levels",
    "sins_highest",
    "collapse_levels",
    "new_fracture_levels",
    "change_status",
    "change_since",
    "new_levels",
    "progressing_levels",
    "tokuhashi_vertebral_min",
    "tokuhashi_vertebral_max",
    "tomita_bone_min",
    "tomita_bone_max",
    "prognosis_source",
    "not_assessable",
    "reasons",
)
#: Columns of ``planning_levels.csv`` (one row per listed level), in order.
PLANNING_LEVEL_COLUMNS = (
    "patient_id",
    "timepoint",
    "level",
    "region",
    "listed_for",
    "sins_min",
    "sins_max",
    "sins_category",
    "collapse",
    "genant_grade",
    "fracture_event",
    "change_status",
    "reasons",
    "sources",
)


def _levels(lvs: list[str]) -> str:
    return ";".join(sorted(set(lvs), key=lambda x: level_index(x) if is_level(x) else 10**6))


def _int(v: Any) -> int | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v)


def _latest(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the latest time point (by ``scan_date`` when present, else the last ``timepoint`` seen)."""
    if "timepoint" not in df.columns or df["timepoint"].nunique() <= 1:
        return df
    if "scan_date" in df.columns and df["scan_date"].notna().all():
        last = df.loc[pd.to_datetime(df["scan_date"]).idxmax(), "timepoint"]
    else:
        last = list(dict.fromkeys(df["timepoint"]))[-1]
    return df[df["timepoint"] == last]


def planning_rows(
    levels: pd.DataFrame,
    *,
    changes: pd.DataFrame | None = None,
    patient_changes: pd.DataFrame | None = None,
    height_changes: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The planning row and the listed levels of one patient at one time point.

    Parameters
    ----------
    levels : DataFrame
        This patient's vertebra rows at one time point with the SINS columns
        (:func:`spinemri.guidance.sins.score_sins`): ``level``, ``involved``, ``sins_min``,
        ``sins_max``, ``sins_category``, ``sins_reasons``, ``collapse`` and the ``*_source``
        columns; ``genant_grade``, ``height_loss_ratio``, ``height_loss_at`` when present.
    changes, patient_changes : DataFrame, optional
        This patient's ``changes.csv`` / ``patient_changes.csv`` rows of the pair ending at this
        time point (:mod:`spinemri.surveillance`).
    height_changes : DataFrame, optional
        :func:`spinemri.morphometry.compare_heights` of the same pair (``level``,
        ``fracture_event``).

    Returns
    -------
    row : dict
        One ``planning.csv`` row (:data:`PLANNING_COLUMNS`).
    listed : list of dict
        ``planning_levels.csv`` rows (:data:`PLANNING_LEVEL_COLUMNS`).
    """
    pid = str(levels["patient_id"].iloc[0]) if "patient_id" in levels.columns and len(levels) else ""
    tp = str(levels["timepoint"].iloc[0]) if "timepoint" in levels.columns and len(levels) else ""
    lv_order = [str(x) for x in levels["level"]]
    inv = [lv for lv, i in zip(lv_order, levels["involved"], strict=True) if bool(i)]
    fracture = {}
    if height_changes is not None and len(height_changes):
        fracture = {str(r.level): str(r.fracture_event) for r in height_changes.itertuples()}
    status = {}
    if changes is not None and len(changes):
        status = {str(r.level): str(r.status) for r in changes.itertuples()}
    listed: list[dict[str, Any]] = []
    ge7, possible, unstable, coll, newfx = [], [], [], [], []
    best: tuple[int, int, str] | None = None
    for r in levels.to_dict("records"):
        lv = str(r["level"])
        why: list[str] = []
        tags: list[str] = []
        lo, hi = _int(r.get("sins_min")), _int(r.get("sins_max"))
        rng = "" if lo is None or hi is None else (f"{lo}" if lo == hi else f"{lo}-{hi}")
        if lo is not None and hi is not None:
            if best is None or (hi, lo) > (best[1], best[0]):
                best = (lo, hi, lv)
            if lo >= SINS_CONSULT:
                tags.append("sins_ge7")
                ge7.append(lv)
                why.append(
                    f"SINS {rng} ({r['sins_category']}) >= {SINS_CONSULT}: "
                    "surgical consultation advised by SINS"
                )
            elif hi >= SINS_CONSULT:
                tags.append("sins_possible_ge7")
                possible.append(lv)
                why.append(
                    f"SINS {rng} ({r['sins_category']}) could reach {SINS_CONSULT}: "
                    f"{r.get('sins_reasons', '')}"
                )
            if lo >= _UNSTABLE:
                unstable.append(lv)
        c = str(r.get("collapse", ""))
        if c in ("lt50", "gt50"):
            tags.append("collapse")
            coll.append(lv)
            loss = r.get("height_loss_ratio")
            at = r.get("height_loss_at", "")
            g = _int(r.get("genant_grade"))
            why.append(
                f"body collapse {'> 50 %' if c == 'gt50' else '< 50 %'}"
                + (
                    f" (height loss {float(loss):.2f} at the {at} height"
                    if loss is not None and not pd.isna(loss)
                    else " ("
                )
                + (f", Genant grade {g})" if g is not None else ")")
            )
        fx = fracture.get(lv, "")
        if fx in ("new", "progressing"):
            tags.append("new_fracture")
            newfx.append(lv)
            why.append(f"{fx} compression fracture since the last scan")
        st = status.get(lv, "")
        if st in ("new", "progressing"):
            tags.append("change")
            why.append(f"lesion {st} since the last scan")
        if not tags:
            continue
        srcs = [
            f"{k.removeprefix('sins_').removesuffix('_source')}: {r[k]}"
            for k in sorted(r)
            if k.startswith("sins_") and k.endswith("_source")
        ]
        if fx:
            srcs.append("fracture: surveillance (heights at two time points)")
        if st:
            srcs.append("change: surveillance (changes.csv)")
        listed.append(
            {
                "patient_id": pid,
                "timepoint": tp,
                "level": lv,
                "region": region_of(lv) if is_level(lv) else "",
                "listed_for": ";".join(tags),
                "sins_min": lo,
                "sins_max": hi,
                "sins_category": r.get("sins_category", ""),
                "collapse": c,
                "genant_grade": _int(r.get("genant_grade")),
                "fracture_event": fx,
                "change_status": st,
                "reasons": "; ".join(why),
                "sources": "; ".join(srcs),
            }
        )
    prog = prognostic_imaging_items(levels).iloc[0]
    na: list[str] = []
    for comp in ("collapse", "posterolateral", "alignment", "pain", "lesion_type"):
        col = f"sins_{comp}_source"
        if col in levels.columns:
            bad = [
                lv
                for lv, s, i in zip(lv_order, levels[col], levels["involved"], strict=True)
                if bool(i) and str(s) == "not assessable"
            ]
            if bad:
                na.append(f"{comp.replace('_', ' ')}: {_levels(bad)}")
    pc = patient_changes.iloc[0] if patient_changes is not None and len(patient_changes) else None
    row: dict[str, Any] = {
        "patient_id": pid,
        "timepoint": tp,
        "decision_support": DECISION_SUPPORT,
        "n_levels": len(lv_order),
        "n_involved": len(inv),
        "involved_levels": _levels(inv),
        **{
            f"involved_{reg}": _levels([lv for lv in inv if is_level(lv) and region_of(lv) == reg])
            for reg in _REGIONS
        },
        "sins_ge7_levels": _levels(ge7),
        "sins_possible_ge7_levels": _levels(possible),
        "sins_unstable_levels": _levels(unstable),
        "sins_highest": ""
        if best is None
        else f"{best[2]} {best[0]}" + ("" if best[0] == best[1] else f"-{best[1]}"),
        "collapse_levels": _levels(coll),
        "new_fracture_levels": _levels(newfx),
        "change_status": "" if pc is None else str(pc["status"]),
        "change_since": "" if pc is None else str(pc["timepoint_from"]),
        "new_levels": "" if pc is None else ("" if pd.isna(pc["new_levels"]) else str(pc["new_levels"])),
        "progressing_levels": ""
        if pc is None
        else ("" if pd.isna(pc["progressing_levels"]) else str(pc["progressing_levels"])),
        "tokuhashi_vertebral_min": prog["tokuhashi_vertebral_min"],
        "tokuhashi_vertebral_max": prog["tokuhashi_vertebral_max"],
        "tomita_bone_min": prog["tomita_bone_min"],
        "tomita_bone_max": prog["tomita_bone_max"],
        "prognosis_source": prog["source"],
        "not_assessable": " | ".join(na),
        "reasons": " | ".join(f"{x['level']}: {x['reasons']}" for x in listed),
    }
    return row, listed


def planning_cohort(
    vertebrae: pd.DataFrame,
    *,
    clinical: pd.DataFrame | None = None,
    changes: pd.DataFrame | None = None,
    patient_changes: pd.DataFrame | None = None,
    height_changes: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``planning.csv`` and ``planning_levels.csv`` of a cohort, from the per-vertebra guidance tables.

    Parameters
    ----------
    vertebrae : DataFrame
        The cohort's vertebra rows with the guidance columns of
        :func:`spinemri.guidance.case.guidance_case` (``patient_id``, ``level``, ``involved``,
        ``sins_location``, ``collapse``, ``body_involvement_ratio``, ``posterolateral``,
        ``alignment``, ``alignment_partial``, ...); with a ``timepoint`` column the latest time
        point of each patient is summarised (by ``scan_date`` when every row has one).
    clinical : DataFrame, optional
        ``patient_id`` and the optional columns ``pain_mechanical`` / ``lesion_type`` (and
        ``level`` for per-level values): the SINS is rescored with them
        (:func:`spinemri.guidance.sins.score_sins`).
    changes, patient_changes : DataFrame, optional
        Surveillance ``changes.csv`` / ``patient_changes.csv``: the pair ending at the summarised
        time point is used.
    height_changes : DataFrame, optional
        :func:`spinemri.morphometry.compare_heights` rows with ``patient_id`` (and
        ``timepoint_to`` when several pairs): new or progressing compression fractures.

    Returns
    -------
    planning : DataFrame
        One row per patient, :data:`PLANNING_COLUMNS`.
    planning_levels : DataFrame
        One row per listed level, :data:`PLANNING_LEVEL_COLUMNS`.

    Raises
    ------
    InputError
        When ``vertebrae`` has no ``patient_id`` column, or a clinical value is not known.

    Examples
    --------
    >>> import pandas as pd
    >>> v = pd.DataFrame({"patient_id": ["p1", "p1"], "level": ["L1", "L2"], "involved": [True, False],
    ...                   "sins_location": ["junctional", "mobile"], "collapse": ["gt50", "none"],
    ...                   "body_involvement_ratio": [0.8, 0.0], "posterolateral": ["bilateral", "none"],
    ...                   "alignment": ["normal", "normal"], "alignment_partial": [None, None]})
    >>> clin = pd.DataFrame({"patient_id": ["p1"], "pain_mechanical": ["mechanical"],
    ...                      "lesion_type": ["lytic"]})
    >>> plan, lv = planning_cohort(v, clinical=clin)
    >>> plan.loc[0, "sins_ge7_levels"], plan.loc[0, "sins_highest"], lv.loc[0, "listed_for"]
    ('L1', 'L1 14', 'sins_ge7;collapse')
    """
    if "patient_id" not in vertebrae.columns:
        raise InputError("planning_cohort: the vertebra table has no patient_id column")
    scored = score_sins(vertebrae, clinical)
    rows, listed = [], []
    for pid, grp in scored.groupby("patient_id", sort=False):
        cur = _latest(grp)
        tp = str(cur["timepoint"].iloc[0]) if "timepoint" in cur.columns else None

        def pick(
            df: pd.DataFrame | None, pid: object = pid, tp: str | None = tp, col: str = "timepoint_to"
        ) -> pd.DataFrame | None:
            if df is None or not len(df):
                return None
            sub = df[df["patient_id"].astype(str) == str(pid)] if "patient_id" in df.columns else df
            if tp is not None and col in sub.columns:
                sub = sub[sub[col].astype(str) == tp]
            return sub

        row, lv = planning_rows(
            cur,
            changes=pick(changes),
            patient_changes=pick(patient_changes),
            height_changes=pick(height_changes),
        )
        rows.append(row)
        listed.extend(lv)
    return (
        pd.DataFrame(rows, columns=list(PLANNING_COLUMNS)),
        pd.DataFrame(listed, columns=list(PLANNING_LEVEL_COLUMNS)),
    )
