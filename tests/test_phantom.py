"""The digital spine phantom: parameters, truth consistency, closed forms, noise and bias.

Truth values are re-derived here from the mask and lesion arrays with code
written for the test (bincount, scipy labelling, the mid-sagittal rule), and
volumes are compared with analytic shapes within a partial-volume tolerance
derived in :func:`pv_tolerance`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import ndimage

from spinemri.errors import ConfigError, SpinemriWarning
from spinemri.levels import BUILTIN_SCHEMES, LEVELS, region_of
from spinemri.phantom import CONTRASTS, LesionSpec, PhantomParams, make_phantom

SMALL = dict(rows=160, cols=128, n_slices=11, first_level="T11", last_level="S1")


def pv_tolerance(area_mm2: float, spacing: tuple[float, float, float], k: float = 4.0) -> float:
    """Tolerance (mm^3) of a voxelised volume against its analytic value.

    A voxel is counted when at least half of it lies inside the shape, so each
    voxel cut by the surface contributes an error e in [-v/2, +v/2], of either
    sign with equal chance when the surface is not aligned with the grid
    (uniform: variance v^2/12). The expected number of cut voxels is the
    surface area times the mean width of a voxel projected on the surface
    normal, divided by the voxel volume; for normals spread over all
    directions the mean |n . (dx, dy, dz)| is (dx + dy + dz) / 2, so
    N_cut = area * (dx + dy + dz) / (2 v). Voxels 3-5 times thicker than wide
    make neighbouring errors coherent over r = max(spacing) / min(spacing)
    voxels: N_cut / r independent groups, each with an error up to r times
    larger, so sigma = v * sqrt(N_cut * r / 12). The tolerance is ``k`` sigma
    (k = 4: a false failure well under 1 in 10 000 under this model).
    """
    v = float(np.prod(spacing))
    n_cut = area_mm2 * sum(spacing) / (2.0 * v)
    r = max(spacing) / min(spacing)
    return k * v * math.sqrt(n_cut * r / 12.0)


def ellipse_perimeter(a: float, b: float) -> float:
    """Ramanujan's second approximation (relative error < 1e-9 for these shapes)."""
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


# --------------------------------------------------------------------------- parameters


def test_unknown_option_is_refused():
    with pytest.raises(ConfigError, match="unknown option.*colour"):
        make_phantom(seed=0, colour="red")


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(snr=0.0), "snr"),
        (dict(first_level="L2", last_level="T4"), "caudal"),
        (dict(contrast="flair"), "contrast"),
        (dict(bias=1.5), "bias"),
        (dict(first_level="T13"), "first_level"),
        (dict(scheme="nope"), "scheme"),
        (dict(radius_mm=(9.0, 3.0)), "min > max"),
        (dict(lesions=[{"level": "L3", "kind": "cloud"}]), "kind"),
    ],
)
def test_out_of_range_options_raise(options, match):
    with pytest.raises(ConfigError, match=match):
        PhantomParams.from_options(**options)


def test_defaults_are_written_once_and_recorded():
    p = PhantomParams()
    assert p.levels[0] == "C3" and p.levels[-1] == "S1" and p.contrast == "stir"
    d = p.to_dict()
    assert d["scheme"] == "verse" and d["snr"] == p.snr


def test_seed_reproduces_and_differs():
    a = make_phantom(seed=11, **SMALL)
    b = make_phantom(seed=11, **SMALL)
    c = make_phantom(seed=12, **SMALL)
    assert np.array_equal(a[0].data, b[0].data) and np.array_equal(a[1].data, b[1].data)
    assert np.array_equal(a[0].affine, b[0].affine)
    assert not np.array_equal(a[0].data, c[0].data)


# --------------------------------------------------------------------------- truth consistency


def _check_truth(img, mask, truth, scheme="verse"):
    sch = BUILTIN_SCHEMES[scheme]
    m = np.asarray(mask.data)
    les = np.asarray(truth.lesion_mask.data)
    assert mask.same_grid(img) and truth.lesion_mask.same_grid(img)
    # lesion voxels are a subset of vertebra voxels
    assert not np.any((les > 0) & (m == 0))
    vert = truth.vertebrae
    # the rows are exactly the levels present in the mask, contiguous, cranial -> caudal
    present = sorted({sch.level_of(int(v)) for v in np.unique(m) if v}, key=LEVELS.index)
    assert vert["level"].tolist() == present
    chain = [lv for lv in LEVELS if lv not in ("T13", "L6", "Co")]  # the usual 25-level column
    idx = [chain.index(lv) for lv in present]
    assert idx == list(range(idx[0], idx[0] + len(idx)))
    counts = np.bincount(m.ravel())
    vox = img.voxel_volume_mm3
    ax = img.lr_axis
    for row in vert.itertuples():
        vm = m == row.label
        lm = vm & (les > 0)
        assert sch.level_of(row.label) == row.level and row.region == region_of(row.level)
        assert row.vertebra_voxels == counts[row.label]
        assert row.lesion_voxels == int(lm.sum())
        assert row.vertebra_volume_mm3 == pytest.approx(counts[row.label] * vox)
        assert row.hi_volume_ratio == pytest.approx(lm.sum() / vm.sum())
        _, ncomp = ndimage.label(lm, structure=np.ones((3, 3, 3)))
        assert row.lesion_count == ncomp and row.involved == (ncomp >= 1)
        c = np.nonzero(vm)[ax].mean()
        s = int(math.floor(c + 0.5))
        vs, ls = np.take(vm, s, axis=ax), np.take(lm, s, axis=ax)
        assert row.hi_area_ratio == pytest.approx(ls.sum() / vs.sum())
    # the patient row is the aggregation of the vertebra rows (recomputed here)
    pat = truth.patient.iloc[0]
    inv = vert[vert["involved"]]
    assert pat["n_vertebrae"] == len(vert) and pat["n_involved"] == len(inv)
    assert pat["involved_levels"] == ";".join(inv["level"])
    for region in ("cervical", "thoracic", "lumbar", "sacral"):
        assert bool(pat[f"{region}_involved"]) == bool((inv["region"] == region).any())
    assert pat["total_lesion_count"] == vert["lesion_count"].sum()
    assert pat["total_lesion_volume_mm3"] == pytest.approx(vert["lesion_volume_mm3"].sum())
    assert pat["hi_volume_ratio"] == pytest.approx(
        vert["lesion_volume_mm3"].sum() / vert["vertebra_volume_mm3"].sum()
    )
    mids = [
        (
            np.take(m == r.label, r.mid_slice, axis=ax).sum(),
            np.take((m == r.label) & (les > 0), r.mid_slice, axis=ax).sum(),
        )
        for r in vert.itertuples()
    ]
    assert pat["hi_area_ratio"] == pytest.approx(sum(b for _, b in mids) / sum(a for a, _ in mids))
    assert pat["hi_area_ratio_max"] == pytest.approx(vert["hi_area_ratio"].max())
    if inv.empty:
        assert pat["dominant_region"] == "none"
    else:
        assert pat["dominant_region"] == vert.groupby("region")["lesion_volume_mm3"].sum().idxmax()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_truth_is_self_consistent_and_counts_match_the_plan(seed):
    img, mask, truth = make_phantom(
        seed=seed, n_involved=3, p_collapse=0.5, oblique_deg=3.0 * seed - 6, **SMALL
    )
    _check_truth(img, mask, truth)
    # planned lesions are kept apart: every planned lesion is one component of its level
    planned = truth.lesions.groupby("planned_level").size()
    counts = truth.vertebrae.set_index("level")["lesion_count"]
    for level, n in planned.items():
        assert counts[level] == n, f"seed {seed}: {level} has {counts[level]} components, {n} planned"
    assert counts.drop(planned.index).sum() == 0
    assert (truth.lesions["levels"] == truth.lesions["planned_level"]).all()
    assert (truth.lesions["voxels"] > 0).all()


def test_lesion_crossing_an_endplate_counts_in_both_vertebrae():
    spec = LesionSpec("L2", "focal", radius_mm=11.0, offset_mm=(0.0, 0.0, -16.0), strength=1.0)
    img, mask, truth = make_phantom(seed=0, lesions=[spec], snr=None, **SMALL)
    _check_truth(img, mask, truth)
    row = truth.lesions.iloc[0]
    assert row["levels"] == "L2;L3"
    inv = truth.vertebrae.set_index("level")
    assert inv.loc["L2", "lesion_count"] == 1 and inv.loc["L3", "lesion_count"] == 1
    assert truth.patient.iloc[0]["involved_levels"] == "L2;L3"


@pytest.mark.parametrize("scheme", ["totalseg", "spider"])
def test_mask_in_other_schemes(scheme):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        img, mask, truth = make_phantom(seed=5, scheme=scheme, n_involved=2, **SMALL)
    _check_truth(img, mask, truth, scheme)
    sch = BUILTIN_SCHEMES[scheme]
    levels = [sch.level_of(int(v)) for v in np.unique(mask.data) if v]
    if scheme == "spider":  # SPIDER has no sacrum label: S1 is drawn but not labelled
        assert "S1" not in levels and any(issubclass(x.category, SpinemriWarning) for x in w)
    else:
        assert "S1" in levels
    assert "L5" in levels


def test_truncated_vertebra_is_flagged():
    small = {**SMALL, "n_slices": 17}  # wide enough in L-R for the lumbar bodies
    img, mask, truth = make_phantom(seed=0, n_involved=0, fov_shift_mm=40.0, **small)
    vert = truth.vertebrae.set_index("level")
    assert vert["truncated"].any()
    assert bool(vert["truncated"].iloc[-1]) and not vert["truncated"].iloc[1:-1].any()
    last = vert.index[-1]
    m = np.asarray(mask.data) == vert.loc[last, "label"]
    assert m[:, -1, :].any()  # cut by the caudal image edge (j runs S -> I)
    full = make_phantom(seed=0, n_involved=0, **small)[2].vertebrae.set_index("level")
    assert not full["truncated"].any()
    if last in full.index:
        assert vert.loc[last, "vertebra_voxels"] < full.loc[last, "vertebra_voxels"]


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize(
    "radius, offset", [(5.0, (0.3, -1.1, 0.7)), (7.0, (-2.0, 0.4, -1.3)), (9.0, (1.1, 0.9, 0.2))]
)
def test_single_sphere_volume_matches_closed_form(radius, offset):
    spec = LesionSpec("L3", "focal", radius_mm=radius, offset_mm=offset, strength=1.0)
    img, mask, truth = make_phantom(
        seed=0,
        lesions=[spec],
        snr=None,
        tilt_deg=7.0,
        pixel_mm=0.9,
        rows=200,
        cols=120,
        n_slices=15,
        slice_mm=3.0,
        first_level="L2",
        last_level="L4",
    )
    row = truth.lesions.iloc[0]
    expected = 4.0 / 3.0 * math.pi * radius**3
    tol = pv_tolerance(4 * math.pi * radius**2, img.spacing)
    assert abs(row["volume_mm3"] - expected) <= tol, (row["volume_mm3"], expected, tol)
    assert truth.vertebrae.set_index("level").loc["L3", "lesion_count"] == 1


def test_vertebral_body_volume_matches_its_analytic_shape():
    img, mask, truth = make_phantom(
        seed=0,
        n_involved=0,
        snr=None,
        oblique_deg=9.0,
        tilt_deg=13.0,
        pixel_mm=0.8,
        rows=420,
        cols=260,
        n_slices=19,
        slice_mm=3.5,
        first_level="T12",
        last_level="L5",
        curvature=0.0,
    )
    vert = truth.vertebrae.set_index("level")
    checked = 0
    for body in truth.bodies:
        if body.level not in vert.index or vert.loc[body.level, "truncated"]:
            continue
        a, b, h = body.a, body.b, body.h
        expected = math.pi * a * b * 2 * h
        area = 2 * math.pi * a * b + ellipse_perimeter(a, b) * 2 * h
        tol = pv_tolerance(area, img.spacing)
        got = vert.loc[body.level, "vertebra_volume_mm3"]
        assert abs(got - expected) <= tol, (body.level, got, expected, tol)
        checked += 1
    assert checked >= 4


# --------------------------------------------------------------------------- noise, bias, contrast


def _interior(truth, img, level: str, margin: float) -> np.ndarray:
    """Voxel centres at least ``margin`` mm inside a body's analytic surface."""
    body = next(b for b in truth.bodies if b.level == level)
    ijk = np.indices(img.shape).reshape(3, -1).T
    u = (img.world_coords(ijk) - body.centre) @ body.frame
    inside = ((u[:, 0] / (body.a - margin)) ** 2 + (u[:, 1] / (body.b - margin)) ** 2 <= 1) & (
        np.abs(u[:, 2]) <= body.h - margin
    )
    return inside.reshape(img.shape)


@pytest.mark.parametrize("snr", [8.0, 20.0])
def test_snr_in_flat_marrow_matches_request(snr):
    opts = dict(
        n_involved=0,
        bias=0.0,
        texture=0.0,
        first_level="L2",
        last_level="L4",
        rows=160,
        cols=160,
        n_slices=15,
        pixel_mm=0.7,
        slice_mm=3.0,
        curvature=0.0,
    )
    img, mask, truth = make_phantom(seed=3, snr=snr, **opts)
    data = np.asarray(img.data, dtype=float)
    sel = _interior(truth, img, "L3", margin=4.0)
    assert sel.sum() > 2000
    measured = CONTRASTS["stir"]["marrow"] / data[sel].std(ddof=1)
    assert measured == pytest.approx(snr, rel=0.10)
    assert data[sel].mean() == pytest.approx(CONTRASTS["stir"]["marrow"], rel=0.02)
    assert truth.noise_sigma == pytest.approx(CONTRASTS["stir"]["marrow"] / snr)


def test_bias_field_amplitude_as_requested():
    opts = dict(snr=None, n_involved=0, texture=0.0, **SMALL)
    flat = make_phantom(seed=4, bias=0.0, **opts)[0]
    biased, _, truth = make_phantom(seed=4, bias=0.25, **opts)
    f, b = np.asarray(flat.data, float), np.asarray(biased.data, float)
    sel = f > 100  # away from air and rounding
    ratio = b[sel] / f[sel]
    assert ratio.max() == pytest.approx(1.25, abs=0.01) and ratio.min() == pytest.approx(0.75, abs=0.01)
    # the field varies along S-I only: higher superiorly
    z = flat.world_coords(np.argwhere(sel))[:, 2]
    top, bottom = ratio[z > np.percentile(z, 95)].mean(), ratio[z < np.percentile(z, 5)].mean()
    assert top > 1.15 and bottom < 0.85


def test_contrast_presets_have_the_documented_polarity():
    spec = [LesionSpec("L3", "focal", radius_mm=8.0, strength=1.0)]
    for contrast, brighter in (("stir", True), ("t1", False)):
        img, mask, truth = make_phantom(seed=1, contrast=contrast, lesions=spec, snr=None, bias=0.0, **SMALL)
        data = np.asarray(img.data, float)
        les = np.asarray(truth.lesion_mask.data) > 0
        marrow = _interior(truth, img, "L3", 3.0) & ~les
        core = ndimage.binary_erosion(les, iterations=1)
        assert core.sum() > 10
        assert (data[core].mean() > 2 * data[marrow].mean()) == brighter
        assert (data[core].mean() < 0.5 * data[marrow].mean()) == (not brighter)
        assert img.meta["series_description"] == {"stir": "SAG STIR", "t1": "SAG T1"}[contrast]


def test_diffuse_and_irregular_lesions_render():
    specs = [LesionSpec("L1", "diffuse", strength=0.5), LesionSpec("L3", "irregular", radius_mm=7.0)]
    img, mask, truth = make_phantom(seed=2, lesions=specs, **SMALL)
    _check_truth(img, mask, truth)
    vert = truth.vertebrae.set_index("level")
    assert vert.loc["L1", "hi_volume_ratio"] > 0.6 and vert.loc["L1", "lesion_count"] == 1
    assert vert.loc["L3", "lesion_count"] == 1 and 0 < vert.loc["L3", "hi_volume_ratio"] < 0.5


def test_geometry_is_sagittal_with_anisotropic_voxels():
    img, mask, truth = make_phantom(seed=0, pixel_mm=0.8, slice_mm=4.0, oblique_deg=8.0, **SMALL)
    assert img.lr_axis == 2 and img.axcodes == ("P", "I", "R")
    assert img.spacing == pytest.approx((0.8, 0.8, 4.0))
    assert img.data.dtype == np.uint16 and mask.data.dtype == np.uint8


def test_voxel_counts_sums_the_sub_samples_of_each_voxel():
    from spinemri.phantom.render import subgrid, voxel_counts

    for f in (1, 2, 3, 5):
        g = subgrid((0, 0, 0), (2, 3, 1), f)
        m = np.zeros((2 * f, 3 * f, f), bool)
        m[:f, :f, :] = True  # voxel (0, 0, 0) full
        m[f, f, 0] = True  # one sub-sample of voxel (1, 1, 0)
        expected = np.zeros((2, 3, 1), int)
        expected[0, 0, 0] = f**3
        expected[1, 1, 0] = 1
        assert np.array_equal(voxel_counts(m, g), expected)


def test_params_object_or_options_not_both():
    p = PhantomParams(**SMALL, snr=None)
    a = make_phantom(seed=1, params=p)
    b = make_phantom(seed=1, snr=None, **SMALL)
    assert np.array_equal(a[0].data, b[0].data)
    with pytest.raises(ConfigError, match="not both"):
        make_phantom(seed=1, params=p, snr=5.0)
