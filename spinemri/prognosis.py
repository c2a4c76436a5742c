"""Prognostic imaging items: Tokuhashi's "vertebral-body metastases" and Tomita's "bone metastases".

Pure (a vertebra table in, a one-row DataFrame out). Only these items of the two scores come from
imaging; everything else in them is clinical. Definitions and sources in docs/metrics.md
("Prognostic imaging items").
"""

from __future__ import annotations

import pandas as pd

from .errors import InputError
from .levels import LEVELS, is_level, level_index

__all__ = ["WHOLE_SPINE", "prognostic_imaging_items", "tokuhashi_vertebral_points", "tomita_bone_points"]

#: The levels a field of view must hold for the count of vertebral metastases to be complete.
WHOLE_SPINE = tuple(lv for lv in LEVELS if lv not in ("T13", "L6", "Co"))


def tokuhashi_vertebral_points(n_involved: int) -> int:
    """Revised Tokuhashi score, "number of metastases in the vertebral body": >= 3: 0, 2: 1, 1: 2.

    Parameters
    ----------
    n_involved : int
        Number of vertebral bodies with metastases (at least 1: the score is for a patient with one).

    Returns
    -------
    int

    Raises
    ------
    InputError
        For ``n_involved < 1``.

    Examples
    --------
    >>> [tokuhashi_vertebral_points(n) for n in (1, 2, 3, 7)]
    [2, 1, 0, 0]
    """
    if n_involved < 1:
        raise InputError(f"n_involved={n_involved}: the item scores a patient with vertebral metastases")
    return 2 if n_involved == 1 else 1 if n_involved == 2 else 0


def tomita_bone_points(multiple: bool) -> int:
    """Tomita score, "bone metastases": solitary or isolated 1, multiple 2 (values unverified).

    Parameters
    ----------
    multiple : bool
        More than one bone metastasis.

    Returns
    -------
    int

    Examples
    --------
    >>> tomita_bone_points(False), tomita_bone_points(True)
    (1, 2)
    """
    return 2 if multiple else 1


def prognostic_imaging_items(vertebrae: pd.DataFrame, *, whole_spine: bool | None = None) -> pd.DataFrame:
    """The imaging items of the revised Tokuhashi and the Tomita scores from the involved levels.

    Parameters
    ----------
    vertebrae : DataFrame
        A vertebra table (vertebrae.csv): columns ``level`` and ``involved`` (bool), optionally
        ``patient_id``.
    whole_spine : bool, optional
        Whether the images cover the whole spine. Default: True when every level of
        :data:`WHOLE_SPINE` is in the table.

    Returns
    -------
    DataFrame
        One row: ``n_involved``, ``involved_levels``, ``whole_spine``, ``tokuhashi_vertebral_min``,
        ``tokuhashi_vertebral_max`` (points), ``tomita_bone_min``, ``tomita_bone_max`` and
        ``source`` (``imaging``, ``imaging (partial field of view)`` or ``not assessable``), plus
        ``patient_id`` when the table has it.

    Notes
    -----
    A field of view that misses part of the spine gives only a lower bound on the number of
    vertebral metastases, so Tokuhashi's points are a range: from those of "3 or more" (0) up to
    those of the count seen. Tomita counts every bone: a spine MRI proves "multiple" (2 points) when
    two or more vertebrae are involved, but one involved vertebra is "solitary" (1) only if no other
    bone is involved, which a spine MRI cannot show: range 1-2. With no involved vertebra the items
    do not apply (NaN, "not assessable"), never 0.
    """
    lv = [str(x) for x in vertebrae["level"]]
    inv = [str(x) for x, i in zip(vertebrae["level"], vertebrae["involved"], strict=True) if bool(i)]
    inv = sorted(inv, key=lambda x: level_index(x) if is_level(x) else 10**6)
    full = set(WHOLE_SPINE) <= set(lv) if whole_spine is None else bool(whole_spine)
    n = len(inv)
    row: dict[str, object] = {}
    if "patient_id" in vertebrae.columns and len(vertebrae):
        row["patient_id"] = str(vertebrae["patient_id"].iloc[0])
    row.update(n_involved=n, involved_levels=";".join(inv), whole_spine=full)
    if n == 0:
        row.update(
            tokuhashi_vertebral_min=float("nan"),
            tokuhashi_vertebral_max=float("nan"),
            tomita_bone_min=float("nan"),
            tomita_bone_max=float("nan"),
            source="not assessable",
        )
        return pd.DataFrame([row])
    tok = tokuhashi_vertebral_points(n)
    row.update(
        tokuhashi_vertebral_min=float(tok if full else 0),
        tokuhashi_vertebral_max=float(tok),
        tomita_bone_min=float(tomita_bone_points(n >= 2)),
        tomita_bone_max=float(tomita_bone_points(True)),
        source="imaging" if full else "imaging (partial field of view)",
    )
    return pd.DataFrame([row])
