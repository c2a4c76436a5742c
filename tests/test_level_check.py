"""No silently wrong level: ``auto`` and explicit schemes checked against the anatomy (issue 13).

Trap masks are made by relabelling phantom masks (VerSe numbers, Panjabi-sized bodies) and the
real lumbar masks in ../shared/data: the truth is the level each mask had before relabelling.
"""

from __future__ import annotations

import glob
import warnings

import numpy as np
import pytest
from conftest import SHARED_DATA, shared_path

import spinemri
from spinemri.anatomy_check import (
    check_levels,
    is_sacrum_shaped,
    label_shapes,
    level_heights,
    size_fits,
)
from spinemri.errors import LabelSchemeError, SpinemriWarning
from spinemri.levels import BUILTIN_SCHEMES
from spinemri.scheme_choice import choose_scheme_for_mask, resolve_scheme_for_mask
from spinemri.volume import Volume

VERSE = BUILTIN_SCHEMES["verse"]
SMALL = {"rows": 176, "cols": 144, "n_slices": 13, "n_involved": 0, "snr": None}


def _phantom(first: str, last: str) -> tuple[Volume, Volume]:
    img, mask, _ = spinemri.make_phantom(seed=3, first_level=first, last_level=last, **SMALL)
    return img, mask


def _labels(mask: Volume) -> list[int]:
    return sorted(set(np.unique(np.asarray(mask.data)).tolist()) - {0})


def _relabel(mask: Volume, mapping: dict[int, int], source: str = "trap_seg.nii.gz") -> Volume:
    data = np.asarray(mask.data)
    out = np.zeros_like(data)
    for old, new in mapping.items():
        out[data == old] = new
    return mask.with_data(out).with_meta(source=source)


def _counts(mask: Volume, *, cranial_first: bool) -> tuple[Volume, dict[int, str]]:
    """Labels 1..N as an annotation tool writes them; returns the mask and the truth {new label: level}."""
    labs = _labels(mask)
    new = {lab: (i + 1 if cranial_first else len(labs) - i) for i, lab in enumerate(labs)}
    truth = {new[lab]: str(VERSE.level_of(lab)) for lab in labs}
    return _relabel(mask, new), truth


def _with_sacrum(mask: Volume, label: int) -> Volume:
    """Replace the phantom's S1 body (a plain vertebral body) by a sacrum-sized block below L5."""
    data = np.asarray(mask.data).copy()
    ijk = np.argwhere(data == label)
    xyz = ijk @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    top = xyz[:, 2].max()
    grid = np.indices(data.shape).reshape(3, -1).T
    world = grid @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    c = xyz.mean(axis=0)
    inside = (
        (np.abs(world[:, 0] - c[0]) <= 24)
        & (np.abs(world[:, 1] - c[1]) <= 22)
        & (world[:, 2] <= top)
        & (world[:, 2] >= top - 90)
    ).reshape(data.shape)
    data[data == label] = 0
    data[inside & (data == 0)] = label
    return mask.with_data(data)


def _levels_of(scheme_mask: Volume, scheme: object = "auto") -> dict[int, str | None]:
    sch, _ = resolve_scheme_for_mask(scheme, scheme_mask)  # type: ignore[arg-type]
    return {lab: sch.level_of(lab) for lab in _labels(scheme_mask)}


# --- the anatomy measurements ----------------------------------------------------------------


def test_label_shapes_exact_on_a_box() -> None:
    data = np.zeros((10, 10, 40), np.uint8)
    data[2:8, 3:7, 5:30] = 4  # 6 x 4 x 25 voxels of 2 x 1 x 1.2 mm
    aff = np.diag([2.0, 1.0, 1.2, 1.0])
    s = label_shapes(data, aff)[4]
    assert s.voxels == 600 and s.volume_mm3 == pytest.approx(600 * 2.4)
    assert s.centroid_mm == pytest.approx((9.0, 4.5, 1.2 * 17))
    # the equivalent height sqrt(12 var) of n voxel centres of pitch p is p*sqrt(n^2-1)
    assert s.extent_along(np.array([0.0, 0.0, 1.0])) == pytest.approx(1.2 * np.sqrt(25**2 - 1))
    assert not s.truncated
    data[2:8, 3:7, 0] = 5
    assert label_shapes(data, aff)[5].truncated  # touches the first plane along S-I


def test_size_ranges_separate_regions() -> None:
    # Panjabi-sized bodies: C5 ~ 16x16x14 mm, T6 ~ 29x25x19, L3 ~ 45x34x27 (elliptic cylinders)
    def vol(w: float, d: float, h: float) -> float:
        return float(np.pi / 4 * w * d * h)

    assert size_fits(14, vol(16, 16, 14)) == {"cervical"}
    assert "thoracic" in size_fits(19, vol(29, 25, 19))
    assert "cervical" not in size_fits(27, vol(45, 34, 27)) and "lumbar" in size_fits(27, vol(45, 34, 27))
    assert size_fits(7, 80.0) == frozenset()  # a synthetic block: no evidence either way


def test_phantom_sizes_fit_their_regions_and_grow_caudally() -> None:
    _, mask = _phantom("C3", "S1")
    mapped = {lab: str(VERSE.level_of(lab)) for lab in _labels(mask)}
    check = check_levels(mapped, label_shapes(np.asarray(mask.data), mask.affine))
    assert check.status == "ok" and check.column == "ok"
    assert any("grow caudally" in e for e in check.evidence)
    reversed_ = {lab: str(VERSE.level_of(26 - lab + 3)) for lab in mapped if lab <= 24}
    assert check_levels(reversed_, label_shapes(np.asarray(mask.data), mask.affine)).status == "contradicted"


# --- correct masks still pass ----------------------------------------------------------------


@pytest.mark.parametrize(("first", "last"), [("T11", "L5"), ("T6", "L2"), ("C3", "T2"), ("T10", "S1")])
def test_verse_phantoms_keep_their_levels(first: str, last: str) -> None:
    _, mask = _phantom(first, last)
    choice = choose_scheme_for_mask("auto", mask)
    assert choice.scheme.name == "verse" and choice.check.column == "ok"
    assert all(choice.scheme.level_of(lab) == VERSE.level_of(lab) for lab in _labels(mask))


def test_cervical_phantom_labelled_1_to_7_is_verse_cervical() -> None:
    _, mask = _phantom("C1", "C7")
    assert _labels(mask) == [1, 2, 3, 4, 5, 6, 7]
    choice = choose_scheme_for_mask("auto", mask)
    assert choice.scheme.name == "verse" and "cervical" in choice.reason
    assert [choice.scheme.level_of(x) for x in (1, 7)] == ["C1", "C7"] and choice.check.column == "ok"


def test_measure_adds_level_check_column() -> None:
    img, mask = _phantom("T11", "L5")
    m = spinemri.measure(img, mask)
    assert list(m.vertebrae["level"]) == ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert (m.vertebrae["level_check"] == "ok").all()
    assert "level_check" in m.vertebrae.columns and "truncated" in m.vertebrae.columns  # added, none removed


# --- the traps: labels that only count -------------------------------------------------------


@pytest.mark.parametrize("cranial_first", [True, False])
@pytest.mark.parametrize(("first", "last"), [("T11", "L5"), ("L1", "L5"), ("T6", "L2")])
def test_counted_labels_are_refused_not_misread(first: str, last: str, cranial_first: bool) -> None:
    _, mask = _phantom(first, last)
    trap, truth = _counts(mask, cranial_first=cranial_first)
    with pytest.raises(LabelSchemeError) as exc:
        resolve_scheme_for_mask("auto", trap)
    msg = str(exc.value)
    assert msg.startswith("trap_seg.nii.gz: ")
    assert "consecutive counts" in msg and "--scheme" in msg and "JSON/YAML" in msg
    assert ("label 1 on top" in msg) == cranial_first
    # the candidates are shown: what VerSe / TotalSegmentator MR would read and why not
    assert ("VerSe (1 = C1) does not fit" in msg) if cranial_first else ("TotalSegmentator MR" in msg)
    # an explicit mapping (the fix the message asks for) gives the truth
    assert _levels_of(trap, scheme=dict(truth.items())) == truth


def test_counted_labels_with_a_sacrum_are_resolved_from_it() -> None:
    _, mask = _phantom("T11", "S1")
    big = _with_sacrum(mask, 26)
    down, truth = _counts(big, cranial_first=True)
    choice = choose_scheme_for_mask("auto", down)
    assert {lab: choice.scheme.level_of(lab) for lab in truth} == truth
    assert choice.check.column.startswith("inferred: counted from the sacrum")
    assert "5 lumbar" in choice.reason
    up, truth = _counts(big, cranial_first=False)  # 1 = sacrum: TotalSegmentator MR's numbering
    choice = choose_scheme_for_mask("auto", up)
    assert (
        choice.scheme.name == "totalseg_mr" and {lab: choice.scheme.level_of(lab) for lab in truth} == truth
    )
    shapes = label_shapes(np.asarray(up.data), up.affine)
    assert is_sacrum_shaped(shapes[1], [shapes[2], shapes[3]]) is True
    # the phantom's own S1 is a plain body: no anchor, so the same count is refused
    with pytest.raises(LabelSchemeError, match="not confirmed as a sacrum"):
        resolve_scheme_for_mask("auto", _counts(mask, cranial_first=False)[0])


def test_upper_thoracic_counts_are_not_taken_for_cervical() -> None:
    # T1..T7 bodies overlap full cervical vertebrae in size: 1..7 could be C1-C7 or T1-T7 -> refuse
    _, mask = _phantom("T1", "T7")
    trap, _ = _counts(mask, cranial_first=True)
    with pytest.raises(LabelSchemeError, match="do not confirm cervical"):
        resolve_scheme_for_mask("auto", trap)


# --- explicit schemes that contradict the anatomy ---------------------------------------------


def test_explicit_scheme_contradicted_warns_once_and_flags_the_table() -> None:
    img, mask = _phantom("T11", "L5")
    trap, _ = _counts(mask, cranial_first=True)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m = spinemri.measure(img, trap, scheme="verse")
    msgs = [str(w.message) for w in rec if issubclass(w.category, SpinemriWarning)]
    assert len(msgs) == 1 and msgs[0].startswith("trap_seg.nii.gz: ") and "contradicts" in msgs[0]
    assert list(m.vertebrae["level"]) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]  # as the user asked
    assert m.vertebrae["level_check"].str.startswith("contradicted: vertebra sizes").all()
    assert any("contradicts" in n for n in m.notes)


def test_explicit_reversed_scheme_is_flagged_by_order() -> None:
    img, mask = _phantom("T11", "L5")
    trap, _ = _counts(mask, cranial_first=False)
    with pytest.warns(SpinemriWarning, match="label order runs against the anatomy"):
        m = spinemri.measure(img, trap, scheme="verse")
    assert m.vertebrae["level_check"].str.contains("label order runs against").all()


def test_explicit_correct_scheme_is_ok_without_warning() -> None:
    img, mask = _phantom("T11", "L5")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpinemriWarning)
        m = spinemri.measure(img, mask, scheme="verse")
    assert (m.vertebrae["level_check"] == "ok").all()


def test_synthetic_blocks_are_not_size_checked() -> None:
    # 2x2x2-voxel blocks fit no vertebra size: the order alone is checked
    data = np.zeros((2, 2, 15), np.uint8)
    for pos, lab in enumerate([20, 21, 22, 23, 24]):
        data[:, :, 3 * (4 - pos) : 3 * (4 - pos) + 2] = lab
    choice = choose_scheme_for_mask("auto", Volume(data, np.diag([1.0, 1.0, 10.0, 1.0])))
    assert choice.scheme.name == "verse" and choice.check.column == "ok"
    assert not any(e.startswith("sizes") for e in choice.check.evidence)
    assert level_heights({"L1": label_shapes(data, np.eye(4))[20]})["L1"] > 0


# --- real lumbar masks (VerSe 18-24 / 20-24) ------------------------------------------------

REAL = sorted(glob.glob(str(SHARED_DATA / "real_lumbar_mri_vertebral_bodies" / "*_vertebrae_verse.nii.gz")))


@pytest.mark.shared_data
@pytest.mark.parametrize("name", [p.rsplit("/", 1)[-1] for p in REAL] or ["missing"])
def test_real_lumbar_masks_pass_and_their_counts_are_refused(name: str) -> None:
    from spinemri.io.load import load_mask

    mask = load_mask(shared_path("real_lumbar_mri_vertebral_bodies", name))
    labs = _labels(mask)
    assert labs in ([18, 19, 20, 21, 22, 23, 24], [20, 21, 22, 23, 24])
    choice = choose_scheme_for_mask("auto", mask)
    assert choice.scheme.name == "verse" and choice.check.column == "ok"
    for cranial_first in (True, False):
        trap, truth = _counts(mask, cranial_first=cranial_first)
        with pytest.raises(LabelSchemeError, match=r"consecutive counts.*thoracic or lumbar"):
            resolve_scheme_for_mask("auto", trap)
        with pytest.warns(SpinemriWarning, match="contradicts"):
            resolve_scheme_for_mask("verse", trap)
        assert _levels_of(trap, scheme=dict(truth.items())) == truth
