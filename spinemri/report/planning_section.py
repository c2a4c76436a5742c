"""The report's per-patient planning summary (issue 15): decision support, never a diagnosis."""

from __future__ import annotations

import pandas as pd

from .format import escape as _e

__all__ = ["PLANNING_SHOWN", "render_planning_section"]

#: planning.csv columns shown in the report, with their headings.
PLANNING_SHOWN = (
    ("patient_id", "Patient"),
    ("timepoint", "Time point"),
    ("involved_levels", "Involved levels"),
    ("sins_ge7_levels", "SINS ≥ 7"),
    ("sins_possible_ge7_levels", "SINS possibly ≥ 7 (range)"),
    ("sins_highest", "Highest SINS"),
    ("collapse_levels", "Body collapse"),
    ("new_fracture_levels", "New fracture"),
    ("change_status", "Change since last scan"),
    ("not_assessable", "Not assessable"),
    ("reasons", "Reasons"),
)


def _cell(v: object) -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else _e(str(v))


def render_planning_section(planning: pd.DataFrame) -> str:
    """HTML of the planning section: one row per patient of ``planning.csv``.

    Parameters
    ----------
    planning : pandas.DataFrame
        :func:`spinemri.guidance.planning.planning_cohort`'s per-patient table.

    Returns
    -------
    str
        An ``<h2>`` section with the decision-support notice and the table (columns of
        :data:`PLANNING_SHOWN` that the table has); all the columns are in planning.csv.
    """
    shown = [(c, h) for c, h in PLANNING_SHOWN if c in planning.columns]
    if "timepoint" in planning.columns and planning["timepoint"].fillna("").astype(str).eq("").all():
        shown = [(c, h) for c, h in shown if c != "timepoint"]
    notice = (
        str(planning["decision_support"].iloc[0])
        if "decision_support" in planning.columns and len(planning)
        else "decision support, not a diagnosis or a treatment recommendation"
    )
    out = [
        "<h2>Planning summary (decision support)</h2>",
        f"<div class='res'><b>{_e(notice)}</b>. SINS imaging components per vertebra, body collapse, "
        "involved levels by region and the change since the last scan, with their reasons and sources "
        "(planning.csv, planning_levels.csv, guidance.csv; definitions in docs/guidance.md). A component "
        "the inputs cannot support is listed as not assessable, never scored 0.</div>",
    ]
    if planning.empty:
        out.append("<p>No patient to summarise.</p>")
        return "\n".join(out)
    head = "".join(f"<th>{_e(h)}</th>" for _, h in shown)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(r[c])}</td>" for c, _ in shown) + "</tr>"
        for _, r in planning.iterrows()
    )
    out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "\n".join(out)
