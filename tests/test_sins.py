"""SINS components per vertebra: points, ranges, and every imaging component against an analytic truth.

Truth is independent of the code under test: the phantom's analytic deformities and lesion volumes
(spinemri.phantom), and box-shaped spines built here with a known translation (one body shifted by a
known number of mm), a known kyphotic kink (the bodies above a disc rotated about its posterior
corner by a known angle) and posterior elements with lesions of known side and volume.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path

from spinemri.errors import ConfigError, InputError
from spinemri.guidance import GuidanceParams, guidance_case, score_sins
from spinemri.guidance.bodies import level_bodies
from spinemri.guidance.components import alignment_table, posterolateral_table
from spinemri.guidance.sins import (
    alignment_points,
    category_range,
    collapse_points,
    lesion_type_points,
    pain_points,
)
from spinemri.measurement import measure
from spinemri.phantom.make import make_phantom
from spinemri.phantom.params import LesionSpec
from spinemri.volume import Volume

# -- points and ranges -------------------------------------------------------------------------------


def _comp(**kw: object) -> pd.DataFrame:
    base: dict[str, object] = dict(
        level="L1",
        involved=True,
        sins_location="junctional",
        collapse="none",
        body_involvement_ratio=0.1,
        posterolateral="none",
        alignment="normal",
        alignment_partial=None,
    )
    base.update(kw)
    return pd.DataFrame([base])


def test_points_of_each_component() -> None:
    # Fisher et al. 2010, table 1
    assert collapse_points("gt50", False) == (3, 3)
    assert collapse_points("lt50", None) == (2, 2)
    assert collapse_points("none", True) == (1, 1)
    assert collapse_points("none", False) == (0, 0)
    assert alignment_points("subluxation") == (4, 4)
    assert alignment_points("deformity") == (2, 2)
    assert (
        pain_points("mechanical") == (3, 3)
        and pain_points("occasional") == (1, 1)
        and pain_points("none") == (0, 0)
    )
    assert lesion_type_points("lytic") == (2, 2) and lesion_type_points("mixed") == (1, 1)
    assert lesion_type_points("blastic") == (0, 0)


def test_complete_inputs_give_one_number() -> None:
    clin = pd.DataFrame({"patient_id": ["p"], "pain_mechanical": ["mechanical"], "lesion_type": ["lytic"]})
    comp = _comp(patient_id="p", collapse="gt50", posterolateral="bilateral", alignment="subluxation")
    r = score_sins(comp, clin).iloc[0]
    assert r.sins_min == r.sins_max == 3 + 3 + 2 + 4 + 3 + 3 == 18
    assert r.sins_category == "unstable"
    for c in ("location", "collapse", "posterolateral", "alignment"):
        assert r[f"sins_{c}_source"] == "imaging"
    assert r.sins_pain_source == r.sins_lesion_type_source == "clinical"


def test_missing_clinical_columns_give_a_range_never_zero() -> None:
    r = score_sins(_comp()).iloc[0]  # location 3, collapse 0, posterolateral 0, alignment 0
    assert pd.isna(r.sins_pain) and pd.isna(r.sins_lesion_type)
    assert r.sins_pain_source == r.sins_lesion_type_source == "not assessable"
    assert (r.sins_min, r.sins_max) == (3, 3 + 3 + 2)
    assert r.sins_category == "stable-indeterminate"
    # one clinical value: the range narrows by exactly that component's span
    r = score_sins(
        _comp(patient_id="p"), pd.DataFrame({"patient_id": ["p"], "pain_mechanical": ["none"]})
    ).iloc[0]
    assert (r.sins_min, r.sins_max) == (3, 5) and r.sins_pain == 0


def test_not_assessable_imaging_components_widen_the_range() -> None:
    comp = _comp(
        collapse="not assessable",
        body_involvement_ratio=float("nan"),
        posterolateral="not assessable",
        alignment="not assessable",
    )
    r = score_sins(comp).iloc[0]
    for c in ("collapse", "posterolateral", "alignment"):
        assert pd.isna(r[f"sins_{c}"]) and r[f"sins_{c}_source"] == "not assessable"
    assert pd.isna(r.sins_body_involvement)
    assert (r.sins_min, r.sins_max) == (3, 18)
    assert r.sins_category == "stable-unstable"
    # partially measured: collapse none, involvement unknown -> 0-1; alignment normal on one side -> 0-4
    r = score_sins(_comp(body_involvement_ratio=float("nan"), alignment_partial="both")).iloc[0]
    assert r.sins_collapse_source == r.sins_alignment_source == "imaging (partial)"
    assert (r.sins_min, r.sins_max) == (3, 3 + 1 + 4 + 3 + 2)


def test_level_without_lesion_is_not_scored() -> None:
    r = score_sins(_comp(involved=False, collapse="gt50")).iloc[0]
    assert r.sins_collapse == 3  # the component is still measured
    assert pd.isna(r.sins_min) and pd.isna(r.sins_max)
    assert r.sins_category == "not applicable (no lesion)"


def test_per_level_clinical_values_win_and_bad_values_are_refused() -> None:
    comp = pd.concat([_comp(patient_id="p"), _comp(patient_id="p", level="L2", sins_location="mobile")])
    clin = pd.DataFrame(
        {
            "patient_id": ["p", "p"],
            "level": [None, "L2"],
            "lesion_type": ["blastic", "lytic"],
            "pain_mechanical": ["none", "none"],
        }
    )
    r = score_sins(comp, clin).set_index("level")
    assert r.loc["L1", "sins_lesion_type"] == 0 and r.loc["L2", "sins_lesion_type"] == 2
    with pytest.raises(InputError, match="lesion_type"):
        score_sins(
            _comp(patient_id="p"), pd.DataFrame({"patient_id": ["p"], "lesion_type": ["osteoporotic"]})
        )


def test_category_ranges() -> None:
    assert category_range(0, 6) == "stable"
    assert category_range(7, 12) == "indeterminate"
    assert category_range(6, 7) == "stable-indeterminate"
    assert category_range(12, 13) == "indeterminate-unstable"


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ConfigError):
        GuidanceParams(body_involvement_gt=1.5)
    with pytest.raises(ConfigError, match="regions"):
        GuidanceParams(translation_mm=(("lumbar", 4.0),))


# -- the phantom: collapse and body involvement --------------------------------------------------------
DEFORMITIES = (("T11", "wedge", 0.37), ("L3", "crush", 0.6))
GRID = dict(first_level="T9", last_level="S1", rows=300, cols=160, n_slices=15, pixel_mm=1.25, snr=None)
LESIONS = (
    LesionSpec("L1", "diffuse"),  # the whole body: > 50 % involved, no collapse -> 1
    LesionSpec("L3", "focal", radius_mm=5.0),  # the crushed body -> 3
    LesionSpec("T11", "focal", radius_mm=4.0),  # the wedge (< 50 %) -> 2
    LesionSpec("L4", "focal", radius_mm=5.0),  # a small lesion, no collapse -> 0
)


@pytest.fixture(scope="module")
def phantom_case() -> tuple[pd.DataFrame, object]:
    img, mask, truth = make_phantom(seed=3, deformity=DEFORMITIES, lesions=LESIONS, **GRID)
    with pytest.warns(Warning):  # the crushed L3 is flagged as thin by the plausibility check
        m = measure(img, mask)
    return guidance_case(m, mask, img), truth


def test_phantom_collapse_and_involvement_match_the_truth(phantom_case) -> None:
    g, truth = phantom_case
    g = g.set_index("level")
    tv = truth.vertebrae.set_index("level")
    th = truth.heights.set_index("level")
    for lv in g.index:
        ratio = float(tv.loc[lv, "hi_volume_ratio"])
        coll = str(th.loc[lv, "collapse"])
        if coll == "not assessable":
            assert (
                pd.isna(g.loc[lv, "sins_collapse"]) and g.loc[lv, "sins_collapse_source"] == "not assessable"
            )
            continue
        expected = {"gt50": 3, "lt50": 2}.get(coll, 1 if ratio > 0.5 else 0)
        assert g.loc[lv, "sins_collapse"] == expected, lv
        assert bool(g.loc[lv, "sins_body_involvement"]) is (ratio > 0.5), lv
        assert g.loc[lv, "body_involvement_ratio"] == pytest.approx(ratio, abs=0.03), lv
    assert g.loc[["L1", "L3", "T11", "L4"], "sins_collapse"].tolist() == [1, 3, 2, 0]


def test_phantom_components_without_subregions_and_clinical(phantom_case) -> None:
    g, _ = phantom_case
    inv = g[g["involved"]]
    # body-only mask: posterolateral not assessable (never 0); pain and lesion type clinical, absent
    assert (
        inv["sins_posterolateral"].isna().all()
        and (inv["sins_posterolateral_source"] == "not assessable").all()
    )
    assert inv["sins_pain"].isna().all() and inv["sins_lesion_type"].isna().all()
    # the phantom spine is smoothly curved: no level malaligned
    assert set(g["alignment"]) <= {"normal", "not assessable"}
    assert (g.loc[g.level.isin(["T10", "L4"]), "sins_alignment"] == 0).all()
    assert (inv["sins_max"] - inv["sins_min"] >= 3 + 2 + 3).all()  # pain, lesion type, posterolateral missing
    assert g.loc[g.level == "T9", "alignment_partial"].iloc[0] == "both"  # no level above T9 in view


# -- box spines: alignment and posterolateral involvement ----------------------------------------------
BOX_LEVELS = ("T12", "L1", "L2", "L3", "L4", "L5")
BOX_IDS = {"T12": 19, "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24}
HALF = np.array([20.0, 15.0, 12.0])  # LR, AP, SI half-extents (mm)
PITCH = 38.0  # centre-to-centre (24 mm body + 14 mm disc: room for a 12 deg kink without overlap)


def _rot_x(deg: float) -> np.ndarray:
    t = math.radians(deg)
    # rotation about the LR axis (x) taking +z (superior) towards +y (anterior): kyphotic for the upper part
    # (R @ (0, 0, 1) = (0, sin t, cos t))
    return np.array([[1, 0, 0], [0, math.cos(t), math.sin(t)], [0, -math.sin(t), math.cos(t)]])


def box_spine(
    shift_mm: dict[str, float] | None = None, kink_deg: float = 0.0, kink_below: str = "L1"
) -> Volume:
    """Box bodies along z; ``shift_mm`` moves a body along +y (anterior); ``kink_deg`` rotates the
    bodies above the disc under ``kink_below`` about that disc's posterior corner."""
    shift_mm = shift_mm or {}
    n = len(BOX_LEVELS)
    x = np.arange(-35.0, 35.0)
    y = np.arange(-40.0, 40.0)
    z = np.arange(-15.0, PITCH * n + 15.0)
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    P = np.stack([X, Y, Z], axis=-1)
    mask = np.zeros(X.shape, np.uint8)
    k_kink = BOX_LEVELS.index(kink_below)
    hinge = np.array([0.0, -HALF[1], PITCH * (n - 1 - k_kink) - PITCH / 2])  # the disc below kink_below
    R = _rot_x(kink_deg)
    for k, lv in enumerate(BOX_LEVELS):
        c = np.array([0.0, shift_mm.get(lv, 0.0), PITCH * (n - 1 - k)])
        rot = np.eye(3)
        if k <= k_kink and kink_deg:
            c, rot = hinge + R @ (c - hinge), R
        q = (P - c) @ rot  # into the body's own axes
        mask[np.all(np.abs(q) <= HALF, axis=-1)] = BOX_IDS[lv]
    aff = np.eye(4)
    aff[:3, 3] = [x[0], y[0], z[0]]
    return Volume(mask, aff, {"source": "box spine", "mask_kind": "body"})


def test_translation_of_a_shifted_body() -> None:
    al = alignment_table(level_bodies(box_spine({"L2": 6.0}))).set_index("level")
    # L2 6 mm anterior: both of its segments translate by 6 mm (sign: upper minus lower)
    assert abs(al.loc["L2", "translation_ap_mm"]) == pytest.approx(6.0, abs=0.5)
    assert al.loc["L1", "translation_ap_mm"] == pytest.approx(-6.0, abs=0.5)  # L1 over the shifted L2
    assert al.loc["L3", "translation_ap_mm"] == pytest.approx(6.0, abs=0.5)  # the shifted L2 over L3
    assert al.loc[["L1", "L2", "L3"], "alignment"].tolist() == ["subluxation"] * 3
    assert al.loc["L4", "alignment"] == "normal" and abs(al.loc["L4", "translation_ap_mm"]) < 0.5
    assert al.loc["L4", "translation_lr_mm"] == pytest.approx(0.0, abs=0.5)


def test_translation_below_the_limit_is_normal() -> None:
    al = alignment_table(level_bodies(box_spine({"L2": 3.0}))).set_index("level")  # lumbar limit 4.5 mm
    assert abs(al.loc["L2", "translation_ap_mm"]) == pytest.approx(3.0, abs=0.5)
    assert (al.loc[["L1", "L2", "L3", "L4"], "alignment"] == "normal").all()


def test_kyphotic_kink_is_a_deformity() -> None:
    al = alignment_table(level_bodies(box_spine(kink_deg=12.0, kink_below="L1"))).set_index("level")
    # T12 and L1 leaning 12 deg anterior above the L1-L2 disc: the angle across L1 and across L2 is 12
    assert al.loc["L1", "kyphosis_deg"] == pytest.approx(12.0, abs=1.0)
    assert al.loc["L2", "kyphosis_deg"] == pytest.approx(12.0, abs=1.0)
    assert al.loc["L3", "kyphosis_deg"] == pytest.approx(0.0, abs=1.0)
    assert al.loc[["L1", "L2"], "alignment"].tolist() == ["deformity", "deformity"]  # lumbar limit 10 deg
    assert al.loc["L3", "alignment"] == "normal"
    # a hinge at the posterior wall translates nothing
    assert (al[["translation_ap_mm"]].abs().dropna() < 1.0).all().all()
    s = score_sins(
        pd.DataFrame(
            {
                "level": ["L2"],
                "involved": [True],
                "sins_location": ["mobile"],
                "collapse": ["none"],
                "body_involvement_ratio": [0.2],
                "posterolateral": ["none"],
                "alignment": [al.loc["L2", "alignment"]],
                "alignment_partial": [al.loc["L2", "alignment_partial"]],
            }
        )
    ).iloc[0]
    assert s.sins_alignment == 2


def test_alignment_at_the_edge_of_the_field_of_view_is_a_range() -> None:
    al = alignment_table(level_bodies(box_spine())).set_index("level")
    # T12 has no level above in view, L5 none below (the sacrum is not a neighbour): partial, range 0-4
    assert al.loc["T12", "alignment_partial"] == "both" and al.loc["L5", "alignment_partial"] == "both"
    assert alignment_points(al.loc["T12", "alignment"], al.loc["T12", "alignment_partial"]) == (0, 4)
    assert (al.loc[["L1", "L2", "L3", "L4"], "alignment"] == "normal").all()


def _posterior(
    mask: Volume, lesions: dict[str, list[str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Whole vertebrae: the box bodies plus pedicles (41) and articular processes (45/46) left and right
    and a spinous process (42) on the midline; ``lesions`` puts a 700 block in the named parts."""
    body = np.asarray(mask.data)
    whole = body.copy()
    codes = np.zeros_like(body)
    img = np.where(body > 0, 300.0, 100.0).astype(np.float32)
    X, Y, Z = np.meshgrid(
        *[np.arange(s) + mask.affine[a, 3] for a, s in enumerate(body.shape)], indexing="ij"
    )
    n = len(BOX_LEVELS)
    vol: dict[str, float] = {}
    for k, lv in enumerate(BOX_LEVELS):
        zc = PITCH * (n - 1 - k)
        parts = {
            "ped_left": (X >= -14) & (X <= -8) & (Y >= -25) & (Y < -15) & (np.abs(Z - zc) <= 6),
            "ped_right": (X >= 8) & (X <= 14) & (Y >= -25) & (Y < -15) & (np.abs(Z - zc) <= 6),
            "spinous": (np.abs(X) <= 2) & (Y >= -38) & (Y < -25) & (np.abs(Z - zc) <= 6),
        }
        for name, code in (("ped_left", 41), ("ped_right", 41), ("spinous", 42)):
            whole[parts[name]] = BOX_IDS[lv]
            codes[parts[name]] = code
            img[parts[name]] = 300.0
        for name in lesions.get(lv, []):
            # a 4 x 6 x 8 block inside the part (away from its surface): 192 mm3
            cx = {"ped_left": -11, "ped_right": 11, "spinous": 0}[name]
            blk = parts[name] & (np.abs(X - cx) <= 1.5) & (Y >= -23) & (Y < -17) & (np.abs(Z - zc) <= 4)
            if name == "spinous":
                blk = parts[name] & (np.abs(X) <= 1.5) & (Y >= -35) & (Y < -28) & (np.abs(Z - zc) <= 4)
            img[blk] = 700.0
            vol[f"{lv}:{name}"] = float(blk.sum())
    return whole, codes, img, vol


@pytest.mark.parametrize("use_codes", [True, False])
def test_posterolateral_sides_from_the_posterior_elements(use_codes: bool) -> None:
    mask = box_spine()
    lesions = {"L1": ["ped_right"], "L2": ["ped_left", "ped_right"], "L3": ["spinous"]}
    whole, codes, img, vol = _posterior(mask, lesions)
    bodies = level_bodies(mask)
    pl = posterolateral_table(
        bodies,
        img,
        mask.affine,
        dict.fromkeys(bodies, 450.0),
        posterior=codes if use_codes else None,
        whole=whole,
    ).set_index("level")
    assert pl.loc["L1", "posterolateral"] == "unilateral"
    assert pl.loc["L2", "posterolateral"] == "bilateral"
    assert pl.loc["L3", "posterolateral"] == "none"  # the spinous process is on the midline
    assert pl.loc["L4", "posterolateral"] == "none"
    # volumes: the whole lesion block (its voxels are deeper than the one-voxel erosion)
    assert pl.loc["L1", "posterolateral_right_mm3"] == pytest.approx(vol["L1:ped_right"])
    assert pl.loc["L1", "posterolateral_left_mm3"] == 0.0
    assert pl.loc["L2", "posterolateral_left_mm3"] == pytest.approx(vol["L2:ped_left"])
    assert set(pl["posterolateral_source"]) == {"SPINEPS subregions" if use_codes else "whole minus body"}


def test_small_posterior_lesion_and_body_only_mask() -> None:
    mask = box_spine()
    whole, codes, img, _ = _posterior(mask, {})
    bodies = level_bodies(mask)
    pts = np.argwhere(codes == 41)
    # 4 scattered bright voxels in one pedicle (4 mm3, below the 30 mm3 minimum): not a lesion
    for i, j, k in pts[:: max(1, len(pts) // 4)][:4]:
        img[i, j, k] = 700.0
    pl = posterolateral_table(
        bodies, img, mask.affine, dict.fromkeys(bodies, 450.0), posterior=codes, whole=whole
    )
    assert (pl["posterolateral"] == "none").all()
    pl = posterolateral_table(bodies, img, mask.affine, dict.fromkeys(bodies, 450.0))
    assert (pl["posterolateral"] == "not assessable").all()
    assert pl["posterolateral_left_mm3"].isna().all()  # never 0


# -- real, healthy spines -----------------------------------------------------------------------------
REAL = "real_lumbar_mri_vertebral_bodies"


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    ["chu2015_04", "chu2015_10", "chu2015_16", "myosegmentum_03", "myosegmentum_08", "myosegmentum_25"],
)
def test_real_lumbar_spines_show_no_instability(case: str) -> None:
    from spinemri.io.load import load_volume
    from spinemri.io.mask_formats import read_mask

    mask = read_mask(shared_path(REAL, f"{case}_vertebrae_verse.nii.gz")).with_meta(mask_kind="body")
    img = load_volume(shared_path(REAL, f"{case}_image.nii.gz"))
    m = measure(img, mask, scheme="verse", check_plausibility=False)
    g = guidance_case(m, mask, img)
    assert not (g["alignment"].isin(["subluxation", "deformity"])).any(), g[
        ["level", "translation_ap_mm", "translation_lr_mm", "kyphosis_deg", "coronal_deg"]
    ]
    assert (g["sins_min"].dropna() < 7).all()
    # no collapse except the one mild (grade 1) anterior wedge visible in the image (test_morphometry)
    collapsed = set(g.loc[g["collapse"].isin(["lt50", "gt50"]), "level"])
    assert collapsed == ({"T11"} if case == "chu2015_10" else set()), collapsed


@pytest.mark.shared_data
def test_real_spineps_sample_posterior_elements() -> None:
    from spinemri.io.load import load_volume
    from spinemri.io.mask_formats import read_spineps

    sm = read_spineps(shared_path("tptbox_spineps_sample_mri", "sub-mri_seg-vert_label-6_msk.nii.gz"))
    img = load_volume(shared_path("tptbox_spineps_sample_mri", "sub-mri_label-6_T2w.nii.gz"))
    with pytest.warns(Warning):
        m = measure(img, sm.vertebrae, scheme="verse", check_plausibility=False)
    g = guidance_case(m, sm.vertebrae, img, structures={**sm.structures, "whole": sm.whole})
    # the subregions make posterolateral involvement assessable; a healthy spine has none
    assert (g["posterolateral_source"] == "SPINEPS subregions").all()
    assert (g["posterolateral"] == "none").all()
    assert (g["sins_min"].dropna() < 7).all()


def test_whole_vertebra_mask_without_canal_is_not_assessable_never_zero() -> None:
    grid = dict(first_level="T12", last_level="L3", rows=160, cols=128, n_slices=15, pixel_mm=1.25, snr=None)
    img, mask, _ = make_phantom(seed=1, lesions=(LesionSpec("L1", "diffuse"),), **grid)
    whole = mask.with_meta(mask_kind="whole_vertebra")
    m = measure(img, whole, check_plausibility=False)
    g = guidance_case(m, whole, img).set_index("level")
    # no canal: the body cannot be split off, so nothing that needs the body is scored
    assert g["body_involvement_ratio"].isna().all()
    for c in ("collapse", "posterolateral", "alignment"):
        assert g[f"sins_{c}"].isna().all() and (g[f"sins_{c}_source"] == "not assessable").all(), c
    r = g.loc["L1"]
    assert (r.sins_min, r.sins_max) == (3, 3 + 3 + 3 + 4 + 3 + 2)  # only the location is known


@pytest.mark.parametrize("kind", ["body", "whole_vertebra", "unknown"])
def test_case_heights_equal_vertebra_heights(kind: str) -> None:
    from spinemri.guidance.bodies import heights_table
    from spinemri.morphometry import vertebra_heights

    _, mask, _ = make_phantom(seed=3, deformity=DEFORMITIES, **GRID)
    ref = vertebra_heights(mask, mask_kind=kind)
    got = heights_table(level_bodies(mask, mask_kind=kind))
    pd.testing.assert_frame_equal(got, ref)
