"""Vertebral body heights, expected height, Genant grade, SINS collapse and follow-up fracture events.

Truth is independent of the code under test: analytic boxes, the phantom's analytic heights of
wedge, biconcave and crushed bodies (spinemri.phantom.truth.body_height_truth, which grades with its
own code), and on real masks a brute-force voxel-column count on a finely resampled mask.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path
from scipy import ndimage

from spinemri.errors import ConfigError, GeometryError
from spinemri.morphometry import (
    HEIGHT_COLUMNS,
    HeightParams,
    collapse_category,
    compare_heights,
    genant_grade,
    vertebra_heights,
)
from spinemri.morphometry.geometry import MaskSampler, measure_body, ray_runs
from spinemri.morphometry.split import spine_tangents
from spinemri.phantom.make import make_phantom
from spinemri.volume import Volume, reorient

#: Deformities drawn away from the grade boundaries: every truth loss is >= 0.045 from a threshold
#: (0.20, 0.25, 0.40, 0.50), more than the loss error the 1 mm height tolerance allows on these bodies.
DEFORMITIES = (
    ("T11", "wedge", 0.37),
    ("L1", "biconcave", 0.35),
    ("L3", "crush", 0.6),
    ("L5", "biconcave", 0.46),
)
GRID = dict(first_level="T9", last_level="S1", rows=300, cols=160, n_slices=15, pixel_mm=1.25, snr=None)
#: Height tolerance on the 1.25 x 1.25 x 4 mm phantom grid (docs/validation.md: a binary mask places
#: each endplate within half a voxel, so one height is within one in-plane voxel (1.25 mm) in the worst
#: case of endplates parallel to the grid; averaging rays of different sub-voxel phase brings the
#: observed maximum to 0.94 mm).
TOL_MM = 1.0
HCOLS = ["height_posterior_mm", "height_middle_mm", "height_anterior_mm"]


# -- grades and categories -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "loss, grade, collapse",
    [
        (0.0, 0, "none"),
        (0.199, 0, "none"),
        (0.20, 1, "lt50"),
        (0.249, 1, "lt50"),
        (0.25, 2, "lt50"),
        (0.40, 2, "lt50"),
        (0.401, 3, "lt50"),
        (0.50, 3, "lt50"),
        (0.501, 3, "gt50"),
        (float("nan"), None, "not assessable"),
    ],
)
def test_genant_grade_and_sins_collapse_thresholds(loss: float, grade: int | None, collapse: str) -> None:
    assert genant_grade(loss) == grade
    assert collapse_category(loss) == collapse


@pytest.mark.parametrize(
    "bad",
    [
        {"fractions": (0.5, 0.15, 0.85)},
        {"genant": (0.3, 0.2, 0.4)},
        {"band_mm": -1.0},
        {"n_band": 0},
        {"collapse_min_loss": 0.6},
        {"step_mm": float("nan")},
    ],
)
def test_bad_parameters_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="HeightParams"):
        HeightParams(**bad)  # type: ignore[arg-type]


def test_ray_runs_interpolate_the_half_crossings() -> None:
    t = np.arange(-5, 6, dtype=float)
    v = np.zeros((2, 11))
    v[0, 3:8] = 1.0  # inside from t=-2 to t=2: crossings half-way to the outside samples
    v[0, 2], v[0, 8] = 0.25, 0.75
    v[1, 8:10] = 1.0  # the middle is outside: the longest run is used
    lo, hi = ray_runs(t, v)
    assert lo[0] == pytest.approx(-2.0 - (1.0 - 0.5) / 0.75)
    assert hi[0] == pytest.approx(3.0 + (0.75 - 0.5) / 0.75)
    assert lo[1] == pytest.approx(2.5) and hi[1] == pytest.approx(4.5)


def _box_mask(shape=(60, 70, 60), lo=(15, 10, 20), size=(30, 40, 25), spacing=(1.0, 1.0, 1.0)):
    m = np.zeros(shape, dtype=np.uint8)
    m[lo[0] : lo[0] + size[0], lo[1] : lo[1] + size[1], lo[2] : lo[2] + size[2]] = 20  # VerSe 20 = L1
    aff = np.diag([*spacing, 1.0])
    return Volume(m, aff, {"mask_kind": "body"})


def test_a_box_has_its_edge_lengths_as_heights_and_chord() -> None:
    # i = x (left-right), j = y (antero-posterior), k = z (cranio-caudal): 30 x 40 x 25 voxels of 1 mm
    df = vertebra_heights(_box_mask())
    row = df.iloc[0]
    for c in HCOLS:
        assert row[c] == pytest.approx(25.0, abs=0.02)
    assert row["ap_chord_mm"] == pytest.approx(40.0, abs=0.02)
    assert row["collapse"] == "not assessable" and pd.isna(row["genant_grade"])
    assert "no measured adjacent level" in row["reason"]
    assert list(df.columns) == list(HEIGHT_COLUMNS)


def test_a_body_cut_by_the_field_of_view_is_not_assessable() -> None:
    df = vertebra_heights(_box_mask(lo=(15, 10, 0)))  # the box starts at the volume's edge along z
    assert df.iloc[0]["height_source"] == "not assessable"
    assert "edge of the field of view" in df.iloc[0]["reason"]


def test_canal_on_another_grid_is_refused() -> None:
    mask = _box_mask()
    canal = Volume(np.zeros((10, 10, 10), np.uint8), np.eye(4), {"source": "canal.nii.gz"})
    with pytest.raises(GeometryError, match="canal.nii.gz"):
        vertebra_heights(mask, canal=canal)


# -- the phantom with known deformities --------------------------------------------------------------
@pytest.fixture(scope="module")
def deformed() -> tuple[Volume, pd.DataFrame, pd.DataFrame]:
    _, mask, truth = make_phantom(seed=2, deformity=DEFORMITIES, **GRID)
    assert truth.heights is not None
    return mask, vertebra_heights(mask), truth.heights


def _compare(df: pd.DataFrame, truth: pd.DataFrame) -> None:
    t = truth.set_index("level")
    m = df.set_index("level")
    assert list(m.index) == list(t.index)
    err = (m[HCOLS] - t[HCOLS]).abs().to_numpy()
    assert np.nanmax(err) <= TOL_MM, f"height errors (mm):\n{(m[HCOLS] - t[HCOLS]).round(2)}"
    assert (
        m["genant_grade"].astype("Float64").fillna(-1) == t["genant_grade"].astype("Float64").fillna(-1)
    ).all()
    assert (m["collapse"] == t["collapse"]).all()


def test_phantom_heights_grades_and_collapse_match_the_analytic_truth(deformed) -> None:
    _, df, truth = deformed
    _compare(df, truth)
    t = truth.set_index("level")
    # the deformities are what they say: wedge lowers the front, biconcave the middle, crush all
    assert (
        t.loc["T11", "height_anterior_mm"]
        < t.loc["T11", "height_middle_mm"]
        < t.loc["T11", "height_posterior_mm"]
    )
    assert (
        t.loc["L1", "height_middle_mm"]
        < t.loc["L1", "height_anterior_mm"]
        == t.loc["L1", "height_posterior_mm"]
    )
    got = df.set_index("level")
    assert got.loc[["T11", "L1", "L3", "L5"], "collapse"].tolist() == ["lt50", "lt50", "gt50", "lt50"]
    assert got.loc[["T11", "L1", "L3", "L5"], "genant_grade"].tolist() == [2, 2, 3, 3]
    assert got.loc[["T11", "L1"], "height_loss_at"].tolist() == ["anterior", "middle"]
    assert got.loc["S1", "collapse"] == "not assessable" and pd.isna(got.loc["S1", "genant_grade"])


def test_phantom_without_deformity_has_no_collapse() -> None:
    _, mask, truth = make_phantom(seed=4, **GRID)
    df = vertebra_heights(mask)
    _compare(df, truth.heights)
    graded = df[df["assessable"]]
    assert (graded["genant_grade"] == 0).all() and (graded["collapse"] == "none").all()


@pytest.mark.parametrize("axes, flips", [((1, 0, 2), (False, True, False)), ((2, 1, 0), (True, False, True))])
def test_heights_do_not_depend_on_the_voxel_order(deformed, axes, flips) -> None:
    mask, df, _ = deformed
    other = vertebra_heights(reorient(mask, axes, flips))
    np.testing.assert_allclose(other[HCOLS].to_numpy(), df[HCOLS].to_numpy(), atol=1e-6)
    assert other["collapse"].tolist() == df["collapse"].tolist()


def test_rotated_grid_gives_the_same_heights_and_grades() -> None:
    _, mask, truth = make_phantom(seed=2, deformity=DEFORMITIES, oblique_deg=12.0, tilt_deg=7.0, **GRID)
    _compare(vertebra_heights(mask), truth.heights)


def test_new_and_progressing_fractures_at_follow_up() -> None:
    before_def = (("L3", "crush", 0.3),)
    after_def = (("L1", "crush", 0.3), ("L3", "crush", 0.5))
    _, m0, t0 = make_phantom(seed=5, deformity=before_def, **GRID)
    _, m1, t1 = make_phantom(seed=5, deformity=after_def, **GRID)
    ev = compare_heights(vertebra_heights(m0), vertebra_heights(m1)).set_index("level")
    assert ev.loc["L1", "fracture_event"] == "new"
    assert ev.loc["L3", "fracture_event"] == "progressing"
    others = ev.drop(index=["L1", "L3", "S1"])
    assert (others["fracture_event"] == "none").all(), others
    # the drop itself against the analytic truth: L1 loses 30 % of 26 mm
    drop = (
        t0.heights.set_index("level").loc["L1", "height_middle_mm"]
        - t1.heights.set_index("level").loc["L1", "height_middle_mm"]
    )
    assert ev.loc["L1", "height_drop_mm"] == pytest.approx(drop, abs=2 * TOL_MM)


def test_small_changes_are_not_fracture_events() -> None:
    _, m0, _ = make_phantom(seed=6, **GRID)
    _, m1, _ = make_phantom(seed=6, deformity=(("L2", "crush", 0.1),), **GRID)  # 2.6 mm, 10 %
    ev = compare_heights(vertebra_heights(m0), vertebra_heights(m1)).set_index("level")
    assert ev.loc["L2", "fracture_event"] == "none"


# -- whole vertebra + canal ----------------------------------------------------------------------------
def _with_posterior_elements(mask: Volume, truth) -> tuple[Volume, Volume]:
    """Add an arch around a canal behind each phantom body (the canal's front = the body's back)."""
    data = np.asarray(mask.data).copy()
    canal = np.zeros(data.shape, dtype=np.uint8)
    ijk = np.indices(data.shape).reshape(3, -1).T
    world = ijk @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    levels = truth.vertebrae.set_index("level")["label"]
    for body in truth.bodies:
        if body.level not in levels.index:
            continue
        u = (world - body.centre) @ body.frame  # (lr, ap, cc)
        slab = np.abs(u[:, 2]) <= 0.7 * body.h
        in_canal = slab & (np.abs(u[:, 0]) <= 7.0) & (u[:, 1] <= -body.b) & (u[:, 1] >= -body.b - 14.0)
        in_arch = (
            slab & (np.abs(u[:, 0]) <= 11.0) & (u[:, 1] < -body.b) & (u[:, 1] >= -body.b - 22.0) & ~in_canal
        )
        flat = data.reshape(-1)
        flat[in_arch & (flat == 0)] = int(levels[body.level])
        canal.reshape(-1)[in_canal] = 1
    whole = Volume(data, mask.affine, {"mask_kind": "whole_vertebra"})
    return whole, Volume(canal, mask.affine, {"source": "canal"})


def test_whole_vertebra_is_split_by_the_canal(deformed) -> None:
    _, mask, truth = make_phantom(
        seed=2, deformity=DEFORMITIES, **{**GRID, "first_level": "T12", "last_level": "L4"}
    )
    whole, canal = _with_posterior_elements(mask, truth)
    split = vertebra_heights(whole, canal=canal)
    assert (split["height_source"] == "split by canal").all()
    _compare(split, truth.heights)
    no_canal = vertebra_heights(whole)
    assert (no_canal["collapse"] == "not assessable").all()
    assert no_canal["reason"].str.contains("without a canal mask").all()
    assert no_canal["genant_grade"].isna().all()


# -- real masks ---------------------------------------------------------------------------------------------
REAL = "real_lumbar_mri_vertebral_bodies"
CASES = ["chu2015_04", "chu2015_10", "chu2015_16", "myosegmentum_03", "myosegmentum_08", "myosegmentum_25"]


def _column_heights(
    mask: np.ndarray, affine: np.ndarray, frame, chord_lo: float, chord_hi: float, p: HeightParams
):
    """Brute force: resample the body into its frame at 0.2 mm (nearest voxel), count voxels per column."""
    res, half = 0.2, 30.0
    n = int(2 * half / res) + 1
    nb = int(round(2 * p.band_mm / res)) + 1  # only the lateral band is resampled
    rot = np.stack([frame.lr, frame.ap, frame.cc], axis=1)  # local -> world
    inv = np.linalg.inv(affine)
    lin = inv[:3, :3] @ rot * res  # output index (a, b, c) -> input voxel
    start = np.array([-p.band_mm, -half, -half])
    off = inv[:3, :3] @ (frame.centroid + rot @ start) + inv[:3, 3]
    sub = ndimage.affine_transform(mask.astype(np.uint8), lin, off, output_shape=(nb, n, n), order=0)
    ap = np.arange(n) * res - half
    out = []
    for f in p.fractions:
        s = chord_lo + f * (chord_hi - chord_lo)
        win = np.abs(ap - s) <= p.ap_window_mm + 1e-9
        out.append(float(sub[:, win, :].sum(axis=2).mean() * res))
    return out


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_real_lumbar_heights(case: str) -> None:
    from spinemri.io.mask_formats import read_mask

    mask = read_mask(shared_path(REAL, f"{case}_vertebrae_verse.nii.gz"))
    df = vertebra_heights(mask, mask_kind="body").set_index("level")
    assert df["assessable"].all()
    h = df[HCOLS]
    # adult lumbar / lower thoracic bodies on MRI and CT: 20-36 mm (docs/validation.md)
    assert ((h > 17.0) & (h < 36.0)).all().all(), h
    # no collapse except the one mild (grade 1) anterior wedge visible in the image: chu2015_10 T11
    known = {("chu2015_10", "T11")}
    for lv, r in df.iterrows():
        if (case, lv) in known:
            assert r["genant_grade"] == 1
        else:
            assert r["genant_grade"] == 0 and r["collapse"] == "none", (lv, r)
    # an independent estimator: voxel columns of the mask resampled (nearest voxel) into each body's frame
    p = HeightParams()
    data = np.asarray(mask.data)
    labs = {"T11": 18, "T12": 19, "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24}
    cents = {
        lv: np.argwhere(data == labs[lv]).mean(axis=0) @ mask.affine[:3, :3].T + mask.affine[:3, 3]
        for lv in df.index
    }
    tangents = spine_tangents(cents, list(df.index))
    for lv in df.index:
        m = data == labs[lv]
        pts = np.argwhere(m) @ mask.affine[:3, :3].T + mask.affine[:3, 3]
        hb = measure_body(MaskSampler(m, mask.affine, np.zeros(3)), pts, tangents[lv], p, 0.1)
        ref = _column_heights(m, mask.affine, hb.frame, hb.chord_start, hb.chord_start + hb.chord, p)
        got = [hb.posterior, hb.middle, hb.anterior]
        np.testing.assert_allclose(got, ref, atol=0.5, err_msg=f"{case} {lv}")  # observed max 0.38 mm


@pytest.mark.shared_data
def test_spineps_split_by_canal_matches_its_body_subregion() -> None:
    from spinemri.io.mask_formats import read_spineps

    sm = read_spineps(shared_path("tptbox_spineps_sample_mri", "sub-mri_seg-vert_label-6_msk.nii.gz"))
    assert sm.body is not None and sm.whole is not None
    body = vertebra_heights(sm.body).set_index("level")
    split = vertebra_heights(sm.whole, canal=sm.structures["spinal_canal"]).set_index("level")
    # the crop cuts the first and last vertebra: only the middle one is measurable
    assert body["height_source"].tolist() == ["not assessable", "body mask", "not assessable"]
    mid = body.index[1]
    assert split.loc[mid, "height_source"] == "split by canal"
    np.testing.assert_allclose(
        split.loc[mid, HCOLS].to_numpy(float), body.loc[mid, HCOLS].to_numpy(float), atol=0.5
    )
    # a single measurable level has no neighbour to compare with: not assessable, never grade 0
    assert pd.isna(body.loc[mid, "genant_grade"]) and body.loc[mid, "collapse"] == "not assessable"


def test_label_schemes_give_the_same_levels_and_heights() -> None:
    small = {**GRID, "first_level": "L1", "rows": 200}
    _, verse, _ = make_phantom(seed=0, **small)
    _, totalseg, _ = make_phantom(seed=0, scheme="totalseg", **small)
    a = vertebra_heights(verse)
    for df in (vertebra_heights(verse, "auto"), vertebra_heights(totalseg, "totalseg")):
        assert df["level"].tolist() == a["level"].tolist() == ["L1", "L2", "L3", "L4", "L5", "S1"]
        np.testing.assert_allclose(df[HCOLS].to_numpy(float), a[HCOLS].to_numpy(float), atol=1e-9)


def test_default_phantom_c3_to_s1_within_tolerance() -> None:
    # the whole default geometry: cervical bodies only 3-4 slices of 4 mm wide, thoracic kyphosis,
    # lumbar lordosis, the tilted sacrum
    _, mask, truth = make_phantom(seed=0, snr=None)
    df = vertebra_heights(mask)
    assert df["assessable"].sum() == len(df) - 1  # all but S1
    _compare(df, truth.heights)
