"""Levels and label schemes.

The expected tables are written out by hand from /work/shared/LABELS.md and the
projects' own files (cited in docs/label-schemes.md), not generated from the code.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from spinemri.errors import LabelSchemeError
from spinemri.levels import (
    BUILTIN_SCHEMES,
    LEVELS,
    get_scheme,
    level_from_name,
    level_index,
    region_of,
    sort_levels,
)
from spinemri.scheme_choice import resolve_scheme, resolve_scheme_for_mask
from spinemri.volume import Volume

# --- hand-written tables (LABELS.md) ----------------------------------------------------

VERSE = {
    1: "C1", 2: "C2", 3: "C3", 4: "C4", 5: "C5", 6: "C6", 7: "C7",
    8: "T1", 9: "T2", 10: "T3", 11: "T4", 12: "T5", 13: "T6", 14: "T7", 15: "T8", 16: "T9", 17: "T10",
    18: "T11", 19: "T12",
    20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5", 25: "L6", 26: "S1", 27: "Co", 28: "T13",
}
TOTALSEG_CT = {
    25: "S1", 26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12", 33: "T11", 34: "T10",
    35: "T9", 36: "T8", 37: "T7", 38: "T6", 39: "T5", 40: "T4", 41: "T3", 42: "T2", 43: "T1", 44: "C7",
    45: "C6", 46: "C5", 47: "C4", 48: "C3", 49: "C2", 50: "C1",
}
TOTALSEG_MR = {
    1: "S1", 2: "L5", 3: "L4", 4: "L3", 5: "L2", 6: "L1", 7: "T12", 8: "T11", 9: "T10", 10: "T9", 11: "T8",
    12: "T7", 13: "T6", 14: "T5", 15: "T4", 16: "T3", 17: "T2", 18: "T1", 19: "C7", 20: "C6", 21: "C5",
    22: "C4", 23: "C3", 24: "C2", 25: "C1",
}
TOTALSPINESEG = {
    11: "C1", 12: "C2", 13: "C3", 14: "C4", 15: "C5", 16: "C6", 17: "C7",
    21: "T1", 22: "T2", 23: "T3", 24: "T4", 25: "T5", 26: "T6", 27: "T7", 28: "T8", 29: "T9", 30: "T10",
    31: "T11", 32: "T12",
    41: "L1", 42: "L2", 43: "L3", 44: "L4", 45: "L5", 50: "S1",
}
# SPIDER interface definition: 1 = L5 counting upwards; 101-125 the same, partially visible
SPIDER_VERTEBRAE = {
    1: "L5", 2: "L4", 3: "L3", 4: "L2", 5: "L1", 6: "T12", 7: "T11", 8: "T10", 9: "T9", 10: "T8", 11: "T7",
    12: "T6", 13: "T5", 14: "T4", 15: "T3", 16: "T2", 17: "T1", 18: "C7", 19: "C6", 20: "C5", 21: "C4",
    22: "C3", 23: "C2", 24: "C1",
}


@pytest.mark.parametrize(
    "name, table",
    [
        ("verse", VERSE),
        ("totalseg", TOTALSEG_CT),
        ("totalseg_mr", TOTALSEG_MR),
        ("totalspineseg", TOTALSPINESEG),
    ],
)
def test_builtin_scheme_tables(name: str, table: dict[int, str]) -> None:
    assert dict(BUILTIN_SCHEMES[name].levels) == table


def test_spider_table() -> None:
    spider = BUILTIN_SCHEMES["spider"]
    assert {k: v for k, v in spider.levels.items() if k < 100} == SPIDER_VERTEBRAE
    assert {k - 100: v for k, v in spider.levels.items() if k > 100} == SPIDER_VERTEBRAE
    assert spider.other[100] == "spinal_canal" and spider.other[201] == "disc" and spider.other[225] == "disc"


def test_known_non_vertebral_labels() -> None:
    assert BUILTIN_SCHEMES["totalseg"].other[79] == "spinal_cord"
    assert 5 in BUILTIN_SCHEMES["totalseg"].other  # liver, in the CT 'total' task
    tss = BUILTIN_SCHEMES["totalspineseg"].other
    assert tss[1] == "spinal_cord" and tss[2] == "spinal_canal" and tss[63] == "disc" and tss[100] == "disc"


def test_levels_order_and_regions() -> None:
    assert LEVELS[0] == "C1" and LEVELS[-1] == "Co" and len(LEVELS) == 7 + 13 + 6 + 2
    assert level_index("T12") < level_index("T13") < level_index("L1")
    assert sort_levels(["L2", "C7", "S1", "T13", "Co", "T1"]) == ["C7", "T1", "T13", "L2", "S1", "Co"]
    assert [region_of(x) for x in ("C7", "T1", "L6", "S1", "Co")] == [
        "cervical", "thoracic", "lumbar", "sacral", "sacral",
    ]
    with pytest.raises(LabelSchemeError, match="X9"):
        level_index("X9")


@pytest.mark.parametrize(
    "name, level",
    [("vertebrae_L1", "L1"), ("vertebrae_S1", "S1"), ("sacrum", "S1"), ("L5", "L5"), ("t13", "T13"),
     ("coccyx", "Co"), ("intervertebral_discs", None), ("spinal_cord", None)],
)
def test_level_from_name(name: str, level: str | None) -> None:
    assert level_from_name(name) == level


def test_schemes_pickle() -> None:
    s = pickle.loads(pickle.dumps(BUILTIN_SCHEMES["verse"]))
    assert dict(s.levels) == VERSE


# --- user schemes ---------------------------------------------------------------------


def test_user_json_and_yaml_schemes(tmp_path: Path) -> None:
    j = tmp_path / "mine.json"
    j.write_text(json.dumps({"labels": {"4": "L4", "5": "vertebrae_L5", "9": "disc"}}))
    s = get_scheme(j)
    assert dict(s.levels) == {4: "L4", 5: "L5"} and dict(s.other) == {9: "disc"} and s.name == "mine"
    y = tmp_path / "mine.yaml"
    y.write_text("1: C1\n2: C2\n100: canal\n")
    s = get_scheme(str(y))
    assert dict(s.levels) == {1: "C1", 2: "C2"} and dict(s.other) == {100: "canal"}
    assert resolve_scheme(str(y), [1, 2, 100])[1] == "scheme 'mine' as requested"


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("{not json", "not valid JSON"),
        ('["C1"]', "mapping of label to level"),
        ('{"x": "C1"}', "not an integer"),
        ('{"1": "disc"}', "maps no label to a level"),
    ],
)
def test_bad_user_scheme_names_the_file(tmp_path: Path, content: str, pattern: str) -> None:
    p = tmp_path / "bad_scheme.json"
    p.write_text(content)
    with pytest.raises(LabelSchemeError, match=pattern) as info:
        get_scheme(p)
    assert "bad_scheme" in str(info.value)


def test_unknown_scheme_name_and_missing_file() -> None:
    with pytest.raises(LabelSchemeError, match="unknown label scheme 'versee'"):
        get_scheme("versee")
    with pytest.raises(LabelSchemeError, match="nothere.json.*not found"):
        get_scheme("nothere.json")


# --- resolve_scheme -------------------------------------------------------------------


def _column(labels_top_to_bottom: list[int], spacing: float = 30.0) -> Volume:
    """A synthetic spine: one 2x2x2 block per label, stacked along world z (RAS), first label on top."""
    n = len(labels_top_to_bottom)
    data = np.zeros((2, 2, 3 * n), dtype=np.uint8)
    for pos, lab in enumerate(labels_top_to_bottom):
        k = 3 * (n - 1 - pos)  # the first label gets the largest k, i.e. the largest z
        data[:, :, k : k + 2] = lab
    return Volume(data, np.diag([1.0, 1.0, spacing / 3, 1.0]))


def test_auto_picks_verse_for_verse_ordered_mask() -> None:
    scheme, reason = resolve_scheme_for_mask("auto", _column([20, 21, 22, 23, 24]))
    assert scheme.name == "verse"
    assert "verse" in reason and "totalseg_mr" in reason  # says what it chose and what it ruled out
    assert [scheme.level_of(x) for x in (20, 24)] == ["L1", "L5"]


def test_auto_picks_totalseg_mr_for_reversed_mask() -> None:
    scheme, reason = resolve_scheme_for_mask("auto", _column([6, 5, 4, 3, 2, 1]))
    assert scheme.name == "totalseg_mr"
    assert [scheme.level_of(x) for x in (6, 2, 1)] == ["L1", "L5", "S1"]
    assert "anatomical order" in reason


def test_auto_refuses_a_single_ambiguous_label() -> None:
    with pytest.raises(LabelSchemeError, match=r"labels \[5\].*verse.*totalseg_mr.*anatomy does not settle"):
        resolve_scheme_for_mask("auto", _column([5]))


def test_auto_refuses_without_centroids_when_schemes_disagree() -> None:
    with pytest.raises(LabelSchemeError, match="no label centroids"):
        resolve_scheme("auto", [1, 2, 3])


def test_auto_totalspineseg_with_discs_and_cord() -> None:
    scheme, reason = resolve_scheme_for_mask("auto", _column([1, 41, 92, 42, 43]))
    assert scheme.name == "totalspineseg"
    assert reason.endswith("non-vertebral labels ignored: [1, 92]")


def test_auto_spider_only_when_specific_labels_and_anatomy_agree() -> None:
    # SPIDER: 1 = L5 at the bottom, numbers increase upwards; 201 = L5/S1 disc, 100 canal
    scheme, reason = resolve_scheme_for_mask("auto", _column([3, 202, 2, 201, 1, 100]))
    assert scheme.name == "spider" and scheme.level_of(1) == "L5" and scheme.level_of(3) == "L3"
    # the opposite direction ("24 = L5" reading) is refused, not guessed
    with pytest.raises(LabelSchemeError, match="spider.*do not increase cranially"):
        resolve_scheme_for_mask("auto", _column([1, 201, 2, 202, 3, 100]))
    # one vertebra: the anatomy cannot settle the direction
    with pytest.raises(LabelSchemeError, match="spider"):
        resolve_scheme_for_mask("auto", _column([201, 1, 100]))


def test_explicit_spider_refuses_when_anatomy_does_not_settle() -> None:
    with pytest.raises(LabelSchemeError, match="SPIDER's own documentation gives two opposite"):
        resolve_scheme_for_mask("spider", _column([1]))
    with pytest.raises(LabelSchemeError, match="JSON/YAML"):
        resolve_scheme("spider", [1, 2])
    scheme, reason = resolve_scheme_for_mask("spider", _column([2, 1]))
    assert scheme.name == "spider" and "100%" in reason


def test_explicit_totalseg_picks_ct_or_mr_ids() -> None:
    assert resolve_scheme_for_mask("totalseg", _column([31, 30, 29]))[0].name == "totalseg"
    assert resolve_scheme_for_mask("totalseg", _column([4, 3, 2]))[0].name == "totalseg_mr"


def test_empty_mask_and_unknown_labels_are_refused() -> None:
    with pytest.raises(LabelSchemeError, match="no label other than background"):
        resolve_scheme("auto", [0])
    with pytest.raises(LabelSchemeError, match="fit no built-in scheme"):
        resolve_scheme("auto", [240, 241])
    with pytest.raises(LabelSchemeError, match="none of the mask's labels"):
        resolve_scheme("verse", [99])


def test_header_names_beat_numbers() -> None:
    # numbers that VerSe would read as C1..C3, named as lumbar vertebrae in the header
    names = {1: "vertebrae_L3", 2: "vertebrae_L4", 3: "vertebrae_L5", 4: "intervertebral_discs"}
    scheme, reason = resolve_scheme("auto", [1, 2, 3, 4], names=names)
    assert [scheme.level_of(x) for x in (1, 2, 3, 4)] == ["L3", "L4", "L5", None]
    assert "label names stored in the mask header" in reason


@pytest.mark.shared_data
def test_real_totalsegmentator_masks_map_by_header_names() -> None:
    from spinemri.io.load import load_mask

    root = ("totalsegmentator_ct_spine_report", "tests", "reference_files", "spine_report", "test_result")
    pp = load_mask(shared_path(*root, "totalseg_vertebrae_pp_refined.nii.gz"))
    scheme, reason = resolve_scheme_for_mask("auto", pp)
    assert {lab: scheme.level_of(lab) for lab in range(19, 25)} == {
        19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5",
    }
    assert "header" in reason
    # without its header table, vertebrae_pp numbers (= VerSe numbers for C1..L5) read as verse
    scheme, _ = resolve_scheme_for_mask("auto", pp.with_meta(label_names={}))
    assert scheme.name == "verse" and scheme.level_of(19) == "T12" and scheme.level_of(24) == "L5"
    total = load_mask(shared_path(*root, "totalseg.nii.gz"))
    scheme, _ = resolve_scheme_for_mask("auto", total)
    assert {lab: scheme.level_of(lab) for lab in range(26, 34)} == {
        26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12", 33: "T11",
    }
    # without the header table, the numbers and the anatomy pick the CT 'total' scheme
    bare = total.with_meta(label_names={})
    scheme, reason = resolve_scheme_for_mask("auto", bare)
    assert scheme.name == "totalseg" and "anatomical order" in reason


def test_auto_prefers_scheme_naming_more_labels_as_vertebrae() -> None:
    # VerSe T10..L5 (17..24) + sacrum 26: TotalSegmentator 'total' also knows 17..24 (as organs) and 26 (S1),
    # but it names only one of them a vertebra; VerSe names all nine.
    labels = [17, 18, 19, 20, 21, 22, 23, 24, 26]
    si = {lab: 200.0 - 10.0 * n for n, lab in enumerate(labels)}
    scheme, reason = resolve_scheme("auto", labels, si_mm=si)
    assert scheme.name == "verse"
    assert [scheme.level_of(x) for x in labels] == ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert "totalseg" in reason
