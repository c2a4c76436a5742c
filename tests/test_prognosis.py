"""Tokuhashi and Tomita imaging items from the involved levels (issue 15, Deliver 4)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spinemri.errors import InputError
from spinemri.prognosis import WHOLE_SPINE, prognostic_imaging_items, tokuhashi_vertebral_points


def _table(levels, involved) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": "p1", "level": levels, "involved": [lv in involved for lv in levels]})


@pytest.mark.parametrize(
    "involved, tok, tomita",
    [
        (["L2"], 2, (1, 2)),
        (["L2", "T7"], 1, (2, 2)),
        (["C5", "T7", "L2"], 0, (2, 2)),
        (list(WHOLE_SPINE), 0, (2, 2)),
    ],
)
def test_whole_spine(involved, tok, tomita) -> None:
    row = prognostic_imaging_items(_table(list(WHOLE_SPINE), involved)).iloc[0]
    assert row["whole_spine"] and row["source"] == "imaging"
    assert row["n_involved"] == len(involved)
    assert row["tokuhashi_vertebral_min"] == row["tokuhashi_vertebral_max"] == tok
    assert (row["tomita_bone_min"], row["tomita_bone_max"]) == tomita
    assert row["patient_id"] == "p1"


def test_partial_field_of_view_gives_a_range() -> None:
    row = prognostic_imaging_items(_table(["L1", "L2", "L3", "L4", "L5", "S1"], ["L4", "L2"])).iloc[0]
    assert not row["whole_spine"] and row["source"] == "imaging (partial field of view)"
    assert row["involved_levels"] == "L2;L4"
    assert (row["tokuhashi_vertebral_min"], row["tokuhashi_vertebral_max"]) == (0, 1)
    forced = prognostic_imaging_items(_table(["L1", "L2"], ["L2"]), whole_spine=True).iloc[0]
    assert forced["tokuhashi_vertebral_min"] == forced["tokuhashi_vertebral_max"] == 2


def test_no_involved_vertebra_is_not_assessable_never_zero() -> None:
    row = prognostic_imaging_items(_table(list(WHOLE_SPINE), [])).iloc[0]
    assert row["source"] == "not assessable" and row["n_involved"] == 0
    assert all(math.isnan(row[c]) for c in ("tokuhashi_vertebral_min", "tomita_bone_max"))
    with pytest.raises(InputError):
        tokuhashi_vertebral_points(0)
