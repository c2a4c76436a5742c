"""Lesion segmentation on tiny hand-written arrays with exact answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from spinemri.arrays.grouped import grouped_mean_median, grouped_median_mad, grouped_medians, grouped_quantile
from spinemri.arrays.morphology import box_half_widths, depth_classes, erode_labels, erode_labels_box
from spinemri.errors import ConfigError, GeometryError
from spinemri.params import MetricsParams, SegmentParams
from spinemri.segmentation.bias import n4_correct
from spinemri.segmentation.component_rules import split_necks
from spinemri.segmentation.lesions import segment_lesions
from spinemri.segmentation.thresholds import MAD_TO_SD, robust_threshold, trend_median

ISO = (1.0, 1.0, 1.0)
EXACT = SegmentParams(margin_mm=0.0, min_lesion_mm3=0.0)


def stacked_spine(n: int = 3, marrow: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """n cubes of 6x6x6 voxels stacked along axis 0 (touching), ids 1..n, in a 1-voxel background frame."""
    shape = (6 * n + 2, 8, 8)
    img = np.full(shape, 10.0)
    vert = np.zeros(shape, dtype=np.uint8)
    for v in range(1, n + 1):
        sl = (slice(1 + 6 * (v - 1), 1 + 6 * v), slice(1, 7), slice(1, 7))
        vert[sl] = v
        img[sl] = marrow
    return img, vert


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("method", "kmeans"),
        ("polarity", "grey"),
        ("k", 0.0),
        ("k", -1.0),
        ("connectivity", 8),
        ("min_lesion_mm3", -1.0),
        ("margin_mm", 50.0),
        ("neighbours", 0),
        ("n4_shrink", 2.5),
        ("n4", "yes"),
    ],
)
def test_segment_params_reject_out_of_range(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        SegmentParams(**{field: value})


def test_fixed_method_needs_a_threshold() -> None:
    with pytest.raises(ConfigError, match="fixed_threshold"):
        SegmentParams(method="fixed")
    assert SegmentParams(method="fixed", fixed_threshold=5.0).fixed_threshold == 5.0


def test_metrics_params_range() -> None:
    with pytest.raises(ConfigError, match="intensity_erosion_mm"):
        MetricsParams(intensity_erosion_mm=-1)


def test_params_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SegmentParams().k = 2.0  # type: ignore[misc]


# --- helpers ------------------------------------------------------------------------------


def test_box_half_widths_round_up_to_whole_voxels() -> None:
    assert box_half_widths((0.5, 0.5, 4.0), 1.0) == (2, 2, 1)
    assert box_half_widths(ISO, 1.0) == (1, 1, 1)
    assert box_half_widths(ISO, 0.5) == (1, 1, 1)  # never less than one voxel
    assert box_half_widths(ISO, 0.0) == (0, 0, 0)
    assert box_half_widths((3.0, 3.0, 3.0), 3.0) == (1, 1, 1)


def test_erode_labels_matches_per_label_binary_erosion() -> None:
    img, vert = stacked_spine(3)
    core = erode_labels(vert, ISO, 1.0)
    box = np.ones((3, 3, 3), bool)
    expected = np.zeros_like(core)
    for v in (1, 2, 3):
        expected |= ndimage.binary_erosion(vert == v, structure=box, border_value=1)
    np.testing.assert_array_equal(core, expected)
    # touching cubes erode from each other: every core is 4x4x4
    assert np.bincount(vert[core], minlength=4)[1:].tolist() == [64, 64, 64]
    # anisotropic: (2, 1, 0)-voxel box on (0.5, 1, 3) mm voxels with a 1 mm margin
    core2 = erode_labels(vert, (0.5, 1.0, 3.0), 1.0)
    expected2 = np.zeros_like(core2)
    for v in (1, 2, 3):
        expected2 |= ndimage.binary_erosion(vert == v, structure=np.ones((5, 3, 3), bool), border_value=1)
    np.testing.assert_array_equal(core2, expected2)


def test_erode_labels_does_not_erode_at_the_image_border() -> None:
    vert = np.ones((4, 5, 6), dtype=np.uint8)
    assert erode_labels(vert, ISO, 1.0).all()


def test_robust_threshold_by_hand() -> None:
    # median 3, |x - 3| = 2, 1, 0, 1, 97 -> MAD 1
    t, med, mad = robust_threshold(np.array([1.0, 2.0, 3.0, 4.0, 100.0]), 3.0, "bright")
    assert (med, mad) == (3.0, 1.0)
    assert t == pytest.approx(3.0 + 3.0 * 1.4826)
    t_dark, _, _ = robust_threshold(np.array([1.0, 2.0, 3.0, 4.0, 100.0]), 2.0, "dark")
    assert t_dark == pytest.approx(3.0 - 2.0 * 1.4826)


@pytest.mark.parametrize("kind", ["float", "int", "half"])
def test_grouped_medians_equal_numpy(rng: np.random.Generator, kind: str) -> None:
    vals = rng.normal(size=1000) * 100
    if kind == "int":  # histogram path
        vals = np.rint(vals)
    elif kind == "half":
        vals = np.rint(vals) / 2.0
    groups = rng.integers(0, 6, size=1000)
    groups[groups == 4] = 3  # group 4 empty
    got = grouped_medians(vals, groups, 6)
    for g in range(6):
        sel = vals[groups == g]
        if sel.size:
            assert got[g] == np.median(sel)
        else:
            assert np.isnan(got[g])


@pytest.mark.parametrize("kind", ["float", "int", "half", "uint16"])
@pytest.mark.parametrize("size", [1, 2, 7, 1000])
def test_grouped_median_mad_equal_numpy(rng: np.random.Generator, kind: str, size: int) -> None:
    vals = rng.normal(size=size) * 100
    if kind == "int":
        vals = np.rint(vals)
    elif kind == "half":
        vals = np.rint(vals) / 2.0
    elif kind == "uint16":
        vals = np.rint(np.abs(vals) * 10).astype(np.uint16)
    groups = rng.integers(0, 6, size=size)
    groups[groups == 4] = 3  # group 4 empty
    med, mad = grouped_median_mad(vals, groups, 6)
    mean, med2 = grouped_mean_median(vals, groups, 6)
    for g in range(6):
        sel = vals[groups == g].astype(np.float64)
        if sel.size:
            assert med[g] == np.median(sel) and med2[g] == med[g]
            assert mad[g] == np.median(np.abs(sel - np.median(sel)))
            assert mean[g] == pytest.approx(sel.mean(), rel=1e-13, abs=1e-12)
        else:
            assert np.isnan(med[g]) and np.isnan(mad[g]) and np.isnan(mean[g]) and np.isnan(med2[g])


# --- segmentation -------------------------------------------------------------------------


def test_shape_mismatch_is_a_geometry_error() -> None:
    with pytest.raises(GeometryError, match="shape"):
        segment_lesions(np.zeros((3, 3, 3)), np.zeros((3, 3, 4), int), ISO)


def test_robust_finds_exactly_the_bright_block() -> None:
    img, vert = stacked_spine(3)
    img[8:10, 3:5, 3:6] = 300.0  # 2x2x3 = 12 voxels inside vertebra 2 (rows 7..12)
    seg = segment_lesions(img, vert, ISO, EXACT)
    truth = np.zeros(img.shape, bool)
    truth[8:10, 3:5, 3:6] = True
    np.testing.assert_array_equal(seg.lesion_ids > 0, truth)
    assert seg.lesion_vertebra.tolist() == [0, 2]
    # pooled marrow: 648 - 12 voxels at 100, 12 at 300 -> median 100, MAD 0
    assert seg.reference_median[1:].tolist() == [100.0] * 3
    assert seg.reference_mad[1:].tolist() == [0.0] * 3
    assert seg.thresholds[1:].tolist() == [100.0] * 3


def test_dark_polarity_finds_the_dark_block() -> None:
    img, vert = stacked_spine(3)
    img[14:16, 2:5, 2:4] = 30.0  # vertebra 3
    seg = segment_lesions(img, vert, ISO, dataclasses.replace(EXACT, polarity="dark"))
    assert int((seg.lesion_ids > 0).sum()) == 12
    assert set(seg.lesion_vertebra[1:].tolist()) == {3}
    bright = segment_lesions(img, vert, ISO, EXACT)
    assert not np.any(bright.lesion_ids)


@pytest.mark.parametrize("method", ["robust", "local"])
def test_diffuse_vertebra_is_found_by_robust_and_local(method: str) -> None:
    img, vert = stacked_spine(5)
    img[vert == 3] = 250.0  # vertebra 3 fully replaced
    seg = segment_lesions(img, vert, ISO, dataclasses.replace(EXACT, method=method))
    assert np.array_equal(seg.lesion_ids > 0, vert == 3)
    assert seg.lesion_vertebra.tolist() == [0, 3]


def test_otsu_splits_each_vertebra_on_its_own() -> None:
    img, vert = stacked_spine(3)
    img[vert == 2] = 150.0
    img[8:10, 3:5, 3:6] = 300.0
    seg = segment_lesions(img, vert, ISO, dataclasses.replace(EXACT, method="otsu"))
    assert int((seg.lesion_ids > 0).sum()) == 12
    # a uniform vertebra has no two classes: its threshold is its value and nothing is above it
    assert seg.thresholds[1] == 100.0 and seg.thresholds[3] == 100.0
    assert 150.0 <= seg.thresholds[2] < 300.0


def test_fixed_threshold_is_strict() -> None:
    img, vert = stacked_spine(2)
    img[2, 2, 2] = 200.0
    img[3, 3, 3] = 200.5
    seg = segment_lesions(img, vert, ISO, dataclasses.replace(EXACT, method="fixed", fixed_threshold=200.0))
    assert np.argwhere(seg.lesion_ids > 0).tolist() == [[3, 3, 3]]


def _med_mad(x: np.ndarray) -> tuple[float, float]:
    m = float(np.median(x))
    return m, float(np.median(np.abs(x - m)))


def test_trend_median_by_hand() -> None:
    # points on the line y = 10 x + 5 with one outlier: repeated-median slope 10, value at x=0 is 5
    assert trend_median(np.array([1.0, 2.0, 3.0, 4.0]), np.array([15.0, 25.0, 35.0, 500.0]), 0.0) == 5.0
    # fewer than 3 points: plain median
    assert trend_median(np.array([1.0, 2.0]), np.array([10.0, 30.0]), 0.0) == 20.0


def test_local_threshold_follows_a_smooth_bias() -> None:
    # marrow drifts 100, 110, ..., 140 along the spine; a 1.6x lesion sits in the darkest vertebra
    img, vert = stacked_spine(5)
    for v in range(1, 6):
        img[vert == v] = 90.0 + 10.0 * v
    rows = np.arange(img.shape[0])[:, None, None]
    img = img + np.where(vert > 0, (rows % 2) * 2.0, 0.0)  # a little texture so MAD > 0
    img[2:4, 2:4, 2:4] = 160.0
    pooled = img[vert > 0]
    t_pool = np.median(pooled) + 3 * MAD_TO_SD * np.median(np.abs(pooled - np.median(pooled)))
    stats = {v: _med_mad(img[vert == v]) for v in range(1, 6)}
    # vertebra 1 (an end): neighbours 2..5 (the 4 nearest); their medians lie on a line of slope 10
    # per vertebra, so the trend-corrected reference at vertebra 1 is median(m_u - 10 (u - 1))
    m_nb = np.array([stats[u][0] for u in (2, 3, 4, 5)])
    ref1 = float(np.median(m_nb - 10.0 * np.array([1, 2, 3, 4])))
    t1 = ref1 + 3 * MAD_TO_SD * float(np.median([stats[u][1] for u in (2, 3, 4, 5)]))
    assert t1 < 160.0 < t_pool  # the case the local method exists for
    robust = segment_lesions(img, vert, ISO, EXACT)
    local = segment_lesions(img, vert, ISO, dataclasses.replace(EXACT, method="local"))
    assert robust.thresholds[1] == pytest.approx(t_pool)
    assert local.reference_median[1] == pytest.approx(ref1)
    assert local.thresholds[1] == pytest.approx(t1)
    assert not np.any(robust.lesion_ids[vert == 1])
    assert int((local.lesion_ids[vert == 1] > 0).sum()) == 8
    # vertebra 3 (interior): neighbours 1, 2, 4, 5 (two on each side, itself excluded)
    m3 = np.array([stats[u][0] for u in (1, 2, 4, 5)])
    assert local.reference_median[3] == pytest.approx(
        float(np.median(m3 - 10.0 * (np.array([1, 2, 4, 5]) - 3)))
    )


def test_local_reference_ignores_one_diffuse_neighbour() -> None:
    img, vert = stacked_spine(5)
    rows = np.arange(img.shape[0])[:, None, None]
    img = img + np.where(vert > 0, (rows % 2) * 2.0, 0.0)
    img[vert == 4] = 300.0 + (rows % 2 * 2.0 + np.zeros(img.shape))[vert == 4]
    local = segment_lesions(img, vert, ISO, dataclasses.replace(EXACT, method="local"))
    # vertebra 3's neighbours 1, 2, 4, 5 have medians 101, 101, 301, 101:
    # repeated-median slope 0, reference 101
    assert local.reference_median[3] == pytest.approx(101.0)
    assert np.array_equal(local.lesion_ids > 0, vert == 4)


def test_min_lesion_volume_counts_the_whole_lesion() -> None:
    img, vert = stacked_spine(2)
    img[3, 3, 3] = 300.0  # 1 voxel
    img[3:5, 5, 5] = 300.0  # 2 voxels
    p = dataclasses.replace(EXACT, connectivity=6)
    assert (
        int(
            (segment_lesions(img, vert, ISO, dataclasses.replace(p, min_lesion_mm3=2.0)).lesion_ids > 0).sum()
        )
        == 2
    )
    assert (
        int(
            (segment_lesions(img, vert, ISO, dataclasses.replace(p, min_lesion_mm3=1.0)).lesion_ids > 0).sum()
        )
        == 3
    )
    # in anisotropic voxels of 2 mm^3 the single voxel is kept at 2 mm^3
    seg = segment_lesions(img, vert, (1.0, 1.0, 2.0), dataclasses.replace(p, min_lesion_mm3=2.0))
    assert int((seg.lesion_ids > 0).sum()) == 3


def test_lesion_crossing_an_endplate_counts_in_each_vertebra() -> None:
    img, vert = stacked_spine(2)  # vertebra 1 rows 1..6, vertebra 2 rows 7..12
    img[5:9, 3:5, 3:5] = 300.0  # 2 rows in each, 8 voxels in each
    seg = segment_lesions(img, vert, ISO, dataclasses.replace(EXACT, min_lesion_mm3=10.0))
    assert sorted(seg.lesion_vertebra[1:].tolist()) == [1, 2]
    for lid in (1, 2):
        assert int((seg.lesion_ids == lid).sum()) == 8
    # the min size applies to the whole lesion (16 mm^3), not to each 8 mm^3 half
    assert int((seg.lesion_ids > 0).sum()) == 16


@pytest.mark.parametrize("connectivity, n", [(26, 1), (18, 2), (6, 2)])
def test_connectivity(connectivity: int, n: int) -> None:
    img, vert = stacked_spine(1)
    img[2, 2, 2] = img[3, 3, 3] = 300.0  # corner neighbours
    seg = segment_lesions(img, vert, ISO, dataclasses.replace(EXACT, connectivity=connectivity))
    assert len(seg.lesion_vertebra) - 1 == n


def test_margin_drops_a_bright_rim_but_keeps_lesions_to_the_boundary() -> None:
    img, vert = stacked_spine(2)
    img[6, 1:7, 1:7] = 180.0  # bright partial-volume layer at vertebra 1's lower endplate
    img[9:13, 3:5, 3:5] = 300.0  # a lesion of vertebra 2 reaching its lower endplate (row 12)
    p = SegmentParams(margin_mm=1.0, min_lesion_mm3=0.0)
    seg = segment_lesions(img, vert, ISO, p)
    truth = np.zeros(img.shape, bool)
    truth[9:13, 3:5, 3:5] = True
    np.testing.assert_array_equal(seg.lesion_ids > 0, truth)
    # without a margin the rim is a lesion
    assert int((segment_lesions(img, vert, ISO, EXACT).lesion_ids[6] > 0).sum()) == 36


def test_no_vertebra_and_no_lesion_give_empty_results() -> None:
    seg = segment_lesions(np.ones((4, 4, 4)), np.zeros((4, 4, 4), int), ISO)
    assert not np.any(seg.lesion_ids) and len(seg.thresholds) == 1
    img, vert = stacked_spine(2)
    seg = segment_lesions(img, vert, ISO)
    assert not np.any(seg.lesion_ids) and seg.lesion_vertebra.tolist() == [0]


def test_n4_flattens_a_smooth_bias(rng: np.random.Generator) -> None:
    shape = (40, 40, 12)
    vert = np.zeros(shape, np.uint8)
    vert[4:36, 4:36, 2:10] = 1
    i = np.arange(shape[0])[:, None, None] / shape[0]
    bias = 1.0 + 0.4 * i  # 40 % linear drift along i
    img = np.where(vert > 0, 100.0, 20.0) * bias + rng.normal(0, 0.5, shape)
    out = n4_correct(img, vert > 0, (2.0, 2.0, 4.0), shrink=2, iterations=20)
    cv_before = img[vert > 0].std() / img[vert > 0].mean()
    cv_after = out[vert > 0].std() / out[vert > 0].mean()
    assert cv_after < 0.5 * cv_before


def test_grouped_quantile_equals_numpy_lower(rng: np.random.Generator) -> None:
    vals = rng.normal(size=500)
    groups = rng.integers(0, 4, size=500)
    got = grouped_quantile(vals, groups, 5, 0.9)
    for g in range(4):
        assert got[g] == np.quantile(vals[groups == g], 0.9, method="lower")
    assert np.isnan(got[4])


def test_hysteresis_needs_a_seed_beyond_seed_k() -> None:
    img, vert = stacked_spine(2)
    rows = np.arange(img.shape[0])[:, None, None]
    img = img + np.where(vert > 0, (rows % 3) - 1.0, 0.0)  # 99, 100, 101: median 100, MAD 1
    sd = MAD_TO_SD * 1.0
    img[2:4, 2:4, 2:4] = 100.0 + 4.0 * sd  # beyond k = 3 but not seed_k = 5: dropped
    img[9:11, 2:4, 2:4] = 100.0 + 4.0 * sd
    img[10, 3, 3] = 100.0 + 6.0 * sd  # one seed voxel: the whole component is kept
    p = SegmentParams(margin_mm=0.0, min_lesion_mm3=0.0, half_contrast=False)
    seg = segment_lesions(img, vert, ISO, p)
    assert seg.reference_median[1] == 100.0 and seg.reference_mad[1] == 1.0
    assert not np.any(seg.lesion_ids[vert == 1])
    assert int((seg.lesion_ids[vert == 2] > 0).sum()) == 8
    # with seed_k = k every candidate component is kept
    seg3 = segment_lesions(img, vert, ISO, dataclasses.replace(p, seed_k=3.0))
    assert int((seg3.lesion_ids > 0).sum()) == 16


def test_half_contrast_trims_partial_volume_voxels() -> None:
    img, vert = stacked_spine(1)
    img[2:6, 2:6, 2:6] = 300.0  # plateau
    img[1, 2:6, 2:6] = 180.0  # 40 % lesion: under (100 + 300) / 2 = 200, trimmed
    img[6, 2:6, 2:6] = 220.0  # 60 % lesion: kept
    p = SegmentParams(margin_mm=0.0, min_lesion_mm3=0.0)
    seg = segment_lesions(img, vert, ISO, p)
    assert int((seg.lesion_ids > 0).sum()) == 64 + 16
    assert not np.any(seg.lesion_ids[1]) and np.all(seg.lesion_ids[6, 2:6, 2:6] > 0)
    plain = segment_lesions(img, vert, ISO, dataclasses.replace(p, half_contrast=False))
    assert int((plain.lesion_ids > 0).sum()) == 64 + 32


def test_robust_threshold_integer_path_equals_numpy(rng: np.random.Generator) -> None:
    ints = rng.integers(0, 4000, size=10001).astype(np.uint16)
    t, med, mad = robust_threshold(ints, 3.0, "bright")
    f = ints.astype(np.float64)
    assert med == np.median(f)
    assert mad == np.median(np.abs(f - np.median(f)))
    assert t == med + 3.0 * MAD_TO_SD * mad
    even = ints[:-1]  # even count: the median is a half-integer
    _, med2, mad2 = robust_threshold(even, 3.0, "bright")
    assert med2 == np.median(even.astype(float))
    assert mad2 == np.median(np.abs(even.astype(float) - med2))


# --- depth-aware background ------------------------------------------------------------------


def _face_surface(vert: np.ndarray) -> np.ndarray:
    """Voxels with a face neighbour of another label or background (per label; image border = outside)."""
    out = np.zeros(vert.shape, bool)
    for v in np.unique(vert[vert > 0]):
        m = vert == v
        out |= m & ~ndimage.binary_erosion(
            m, structure=ndimage.generate_binary_structure(3, 1), border_value=0
        )
    return out


def test_depth_classes_by_hand() -> None:
    img, vert = stacked_spine(2)  # two touching 6x6x6 cubes in a one-voxel background frame
    idx = np.flatnonzero(vert.ravel() > 0)
    cls = np.full(vert.shape, -1)
    cls.ravel()[idx] = depth_classes(vert, idx)
    # a box has only face-surface voxels (0) and interior ones (3); the touching faces are surfaces
    # of both cubes (depth to the vertebra's own boundary), as scipy's per-label erosion says
    np.testing.assert_array_equal(cls[vert > 0] == 0, _face_surface(vert)[vert > 0])
    assert set(np.unique(cls[vert > 0]).tolist()) == {0, 3}
    assert cls[6, 3, 3] == 0 and cls[7, 3, 3] == 0  # either side of the interface
    assert cls[3, 3, 3] == 3
    # an L-shaped notch: a voxel whose face neighbours are inside but an edge (or only a corner)
    # neighbour is not
    vert2 = np.zeros((7, 7, 7), np.uint8)
    vert2[1:6, 1:6, 1:6] = 1
    vert2[1:3, 1:3, 1:6] = 0  # a column removed along axis 2: edge at (3, 3, k)
    vert2[4:6, 4:6, 4:6] = 0  # a corner block removed: (3, 3, 3) sees it only across a corner
    idx2 = np.flatnonzero(vert2.ravel() > 0)
    c2 = np.full(vert2.shape, -1)
    c2.ravel()[idx2] = depth_classes(vert2, idx2)
    assert c2[3, 3, 2] == 1  # (2, 2, 2) is outside: an edge neighbour
    assert c2[3, 3, 3] == 1
    assert c2[2, 3, 3] == 0
    vert3 = np.zeros((7, 7, 7), np.uint8)
    vert3[1:6, 1:6, 1:6] = 1
    vert3[4:6, 4:6, 4:6] = 0
    idx3 = np.flatnonzero(vert3.ravel() > 0)
    c3 = np.full(vert3.shape, -1)
    c3.ravel()[idx3] = depth_classes(vert3, idx3)
    assert c3[3, 3, 3] == 2  # only the corner neighbour (4, 4, 4) is outside
    # the image border is a boundary: a label filling the image has a surface layer
    full = np.ones((4, 5, 6), np.uint8)
    fi = np.flatnonzero(full.ravel())
    fc = depth_classes(full, fi).reshape(full.shape)
    assert (fc[1:-1, 1:-1, 1:-1] == 3).all() and (fc[0] == 0).all() and (fc[:, :, -1] == 0).all()


def test_erode_labels_box_border_option() -> None:
    vert = np.ones((4, 5, 6), dtype=np.uint8)
    assert erode_labels_box(vert, (1, 1, 1)).all()
    inner = erode_labels_box(vert, (1, 1, 1), border_is_boundary=True)
    expected = ndimage.binary_erosion(vert > 0, structure=np.ones((3, 3, 3), bool), border_value=0)
    np.testing.assert_array_equal(inner, expected)


def _box_erosion_oracle(ids: np.ndarray, hw: tuple[int, int, int], boundary: bool) -> np.ndarray:
    """Independent definition: the box minimum equals the box maximum (scipy filters on the whole array)."""
    size = tuple(2 * h + 1 for h in hw)
    mode = "constant" if boundary else "nearest"
    lo = ndimage.minimum_filter(ids, size=size, mode=mode, cval=0)
    hi = ndimage.maximum_filter(ids, size=size, mode=mode, cval=0)
    return (lo == hi) & (ids > 0)


def test_erode_labels_box_equals_min_max_filter_definition(rng: np.random.Generator) -> None:
    for _ in range(300):
        shape = tuple(int(s) for s in rng.integers(1, 10, 3))
        ids = np.zeros(shape, np.uint8)
        # a few random boxes of labels 1-3, some touching the image border, some touching each other
        for _ in range(int(rng.integers(0, 4))):
            lo = [int(rng.integers(0, s)) for s in shape]
            hi = [int(rng.integers(a + 1, s + 1)) for a, s in zip(lo, shape, strict=True)]
            ids[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = rng.integers(1, 4)
        hw = tuple(int(h) for h in rng.integers(0, 4, 3))
        boundary = bool(rng.integers(0, 2))
        got = erode_labels_box(ids, hw, border_is_boundary=boundary)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, _box_erosion_oracle(ids, hw, boundary), err_msg=f"{hw} {boundary}")
        # box erosions compose: (1, 1, 1) then the rest equals the whole box at once
        if min(hw) >= 1:
            inner = erode_labels_box(ids, (1, 1, 1), border_is_boundary=boundary)
            rest = (hw[0] - 1, hw[1] - 1, hw[2] - 1)
            np.testing.assert_array_equal(
                erode_labels_box(ids, rest, border_is_boundary=boundary, within=inner), got
            )


@pytest.mark.parametrize("fraction, counted", [(0.6, True), (0.4, False)])
def test_surface_voxel_mixed_with_dark_tissue_counts_when_half_lesion(fraction: float, counted: bool) -> None:
    """Surface voxels read 60 (marrow 100 mixed with dark cortex); vertebra 3 is replaced (plateau 300).

    A replaced surface voxel reads 60 + f·(300 - 100): it is lesion when f >= 0.5, although
    at f = 0.6 (180) it is below the marrow/plateau midpoint 200 that assumes a marrow background.
    """
    img, vert = stacked_spine(5)
    surface = _face_surface(vert)
    img[surface] = 60.0
    rep = vert == 3
    img[rep & ~surface] = 300.0
    img[rep & surface] = 60.0 + fraction * 200.0
    seg = segment_lesions(img, vert, ISO, SegmentParams(min_lesion_mm3=0.0))
    lesion = seg.lesion_ids > 0
    expected = rep if counted else rep & ~surface
    np.testing.assert_array_equal(lesion, expected)
    assert seg.depth_offset is not None and seg.depth_offset[1, 0] == pytest.approx(-40.0)
    if counted:  # one background level at every depth: the half-lesion surface is lost
        flat = segment_lesions(img, vert, ISO, SegmentParams(min_lesion_mm3=0.0, depth_background=False))
        np.testing.assert_array_equal(flat.lesion_ids > 0, rep & ~surface)


# --- lesions next to other bright structures (docs/decisions/0027-marrow-split-cores.md) ------------


def _textured_block(n: int = 36) -> tuple[np.ndarray, np.ndarray]:
    """One vertebra of n³ voxels in a 1-voxel frame, marrow 100 with a deterministic texture of nine
    levels 95..105 (robust SD about 3.7), frame 10."""
    shape = (n + 2,) * 3
    i, j, k = np.indices(shape)
    img = 100.0 + 1.25 * (((7 * i + 13 * j + 17 * k) % 9) - 4.0)
    vert = np.zeros(shape, dtype=np.uint8)
    vert[1:-1, 1:-1, 1:-1] = 1
    img[vert == 0] = 10.0
    return img, vert


def test_bright_lesion_joined_to_a_larger_dimmer_structure_is_measured_on_its_own() -> None:
    """A 6³ lesion (plateau 350) touching a 30 x 30 x 4 slab at 160 (5.7 % lesion in one candidate
    component): the component's plateau is the slab's; it is cut at half the lesion's core level and
    the lesion and the slab are two lesions, each exactly itself (without the cut: one lesion, the
    lesion measured with the slab)."""
    img, vert = _textured_block()
    slab = np.zeros(img.shape, dtype=bool)
    slab[4:34, 4:34, 8:12] = True
    cube = np.zeros(img.shape, dtype=bool)
    cube[16:22, 16:22, 12:18] = True  # on the slab's face
    img[slab] += 60.0
    img[cube] += 250.0
    for order in "CF":  # Fortran-ordered inputs are labelled once more: the two stay apart there too
        seg = segment_lesions(np.asarray(img, order=order), np.asarray(vert, order=order), ISO,
                              SegmentParams(min_lesion_mm3=0.0))  # fmt: skip
        ids = seg.lesion_ids
        cube_ids, slab_ids = np.unique(ids[cube]), np.unique(ids[slab])
        assert cube_ids.size == 1 and slab_ids.size == 1 and cube_ids[0] != slab_ids[0] and cube_ids[0] > 0
        np.testing.assert_array_equal(ids == cube_ids[0], cube)
        np.testing.assert_array_equal(ids == slab_ids[0], slab)
        np.testing.assert_array_equal(seg.lesion_vertebra, [0, 1, 1])


def test_lesion_on_brighter_surroundings_passes_the_edge_rule_by_its_strong_step() -> None:
    """A 6³ lesion (contrast 250) inside a 3-voxel shell at contrast 75: its ring is the shell, its
    relative edge step 1 - 75/250 = 0.7 is under min_edge_step = 0.8, but the step (175) is far beyond
    STRONG_STEP_SD robust SDs of the marrow (about 3.7): the lesion is kept, exactly itself (the shell
    is under its half contrast)."""
    img, vert = _textured_block()
    shell = np.zeros(img.shape, dtype=bool)
    shell[12:24, 12:24, 12:24] = True
    cube = np.zeros(img.shape, dtype=bool)
    cube[15:21, 15:21, 15:21] = True
    img[shell & ~cube] += 75.0
    img[cube] += 250.0
    seg = segment_lesions(img, vert, ISO, SegmentParams(min_lesion_mm3=0.0))
    np.testing.assert_array_equal(seg.lesion_ids > 0, cube)


def test_two_lesions_that_their_boundaries_make_touch_stay_two() -> None:
    """A bright 6³ lesion (350) and a dim 6³ one (118, one seed voxel at 125) with a 1-voxel gap at 110
    (marrow 100 ± 5, threshold about 111): the gap is no candidate, so detection finds them apart; it
    passes the dim lesion's half-contrast cut (109) and joins it. The two then touch: they stay two
    lesions, the bright one exactly itself (before: one lesion, the bright one measured with the dim)."""
    img, vert = _textured_block()
    bright = np.zeros(img.shape, dtype=bool)
    bright[15:21, 15:21, 15:21] = True
    gap = np.zeros(img.shape, dtype=bool)
    gap[15:21, 15:21, 21] = True
    dim = np.zeros(img.shape, dtype=bool)
    dim[15:21, 15:21, 22:28] = True
    img[bright], img[gap], img[dim] = 350.0, 110.0, 118.0
    img[18, 18, 25] = 125.0
    seg = segment_lesions(img, vert, ISO, SegmentParams(min_lesion_mm3=0.0))
    assert 110.0 < seg.thresholds[1] < 112.0  # the gap is no candidate
    ids = seg.lesion_ids
    (b,), (d,) = np.unique(ids[bright]), np.unique(ids[dim])
    assert b != d and b > 0 and d > 0
    np.testing.assert_array_equal(ids == b, bright)
    np.testing.assert_array_equal(ids == d, dim | gap)


def test_lesion_joined_to_a_thin_blurred_tube_is_cut_at_its_neck() -> None:
    """A 6³ lesion (contrast 60, 16 robust SDs) joined to a 2 x 2 x 12 tube at 0.65 of its contrast
    (39) inside a 2-voxel halo at 20 (a vein: its surroundings hold its partial volume). The tube is
    above the lesion's half contrast (30), so it is one component with the lesion; the smallest lesion
    reported (a ball of 20 mm³, radius 1.68 mm) fits in the cube, not in the tube. The tube, judged on
    its own, has a seed but fails the edge rule (relative step 1 - 20/39 = 0.49, absolute 19 < 7 SDs):
    the lesion is the cube plus the tube's first layer (the core's one-voxel boundary), exactly (before:
    the cube with the whole tube)."""
    img, vert = _textured_block()
    cube = np.zeros(img.shape, dtype=bool)
    cube[15:21, 15:21, 15:21] = True
    tube = np.zeros(img.shape, dtype=bool)
    tube[17:19, 17:19, 21:33] = True
    halo = np.zeros(img.shape, dtype=bool)
    halo[15:21, 15:21, 21:33] = True
    halo &= ~tube
    img[cube] += 60.0
    img[tube] += 39.0
    img[halo] += 20.0
    expected = cube.copy()
    expected[17:19, 17:19, 21] = True
    for order in "CF":
        seg = segment_lesions(np.asarray(img, order=order), np.asarray(vert, order=order), ISO)
        np.testing.assert_array_equal(seg.lesion_ids > 0, expected)
        np.testing.assert_array_equal(seg.lesion_vertebra, [0, 1])


def test_neck_split_ball_is_in_mm_on_anisotropic_voxels() -> None:
    """A one-slice 5 x 5 block with a 20-voxel line attached (one component). On 1 x 1 x 4 mm voxels the
    ball of 20 mm³ (radius 1.68 mm) is a 3 x 3 in-plane square (no extent across 4 mm slices): it fits in
    the block, not in the line, so the block with the line's first voxel (its boundary) is one part and
    the other 19 line voxels the rest, keeping the component's id. On 1 mm voxels the same ball spans 3
    slices, fits nowhere in one slice, and nothing is cut."""
    comp = np.zeros((28, 8, 3), dtype=bool)
    comp[0:5, 0:5, 1] = True
    comp[5:25, 2, 1] = True
    idx = np.flatnonzero(comp)
    cid = np.full(idx.size, 1, dtype=np.intp)
    radius = (3.0 * 20.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
    part, parent = split_necks(idx, cid, comp.shape, (1.0, 1.0, 4.0), radius)
    core = np.zeros(comp.shape, dtype=bool)
    core[0:5, 0:5, 1] = True
    core[5, 2, 1] = True
    got = np.zeros(comp.shape, dtype=np.intp)
    got.ravel()[idx] = part
    np.testing.assert_array_equal(got == 2, core)
    np.testing.assert_array_equal(got == 1, comp & ~core)
    np.testing.assert_array_equal(parent, [0, 1, 1])
    part, parent = split_necks(idx, cid, comp.shape, (1.0, 1.0, 1.0), radius)
    np.testing.assert_array_equal(part, cid)
    np.testing.assert_array_equal(parent, [0, 1])
