"""The compiled kernels (spinemri/_kernels.pyx) against independent numpy definitions.

Every kernel is compared on random label volumes (boxes of labels touching
each other and the array border, and speckle) with a definition written here
from scratch: shifted-array comparisons for the erosion and the depth classes,
``np.histogram``/``np.bincount`` for the histograms, a loop over the 26
neighbours for the boundary growth. A second group checks that the two ways
the segmentation and the metrics compute their statistics (compiled
histograms for integer images, gathered values for float images) give
identical results.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from spinemri import _kernels, make_phantom
from spinemri.arrays.moments import LabelMoments
from spinemri.arrays.morphology import CORE_BIT, DEEP_BIT, DEPTH_MASK, label_codes
from spinemri.errors import InputError
from spinemri.levels import LEVELS
from spinemri.metrics import compute_metrics
from spinemri.params import MetricsParams, SegmentParams
from spinemri.segmentation.lesions import segment_lesions

OFFSETS = [o for o in itertools.product((-1, 0, 1), repeat=3) if o != (0, 0, 0)]


def _shifted(a: np.ndarray, o: tuple[int, ...]) -> np.ndarray:
    """``out[x] = a[x + o]``, 0 beyond the array."""
    pad = np.pad(a, 1)
    sl = tuple(slice(1 + d, 1 + d + n) for d, n in zip(o, a.shape, strict=True))
    return pad[sl]


def _erosion_oracle(lab: np.ndarray, hw: tuple[int, int, int]) -> np.ndarray:
    """A voxel stays when every voxel of its box carries its label (beyond the array: background)."""
    keep = lab > 0
    pad = np.pad(lab, [(h, h) for h in hw])
    for o in itertools.product(*[range(-h, h + 1) for h in hw]):
        sl = tuple(slice(h + d, h + d + n) for d, h, n in zip(o, hw, lab.shape, strict=True))
        keep &= pad[sl] == lab
    return keep


def _depth_oracle(lab: np.ndarray) -> np.ndarray:
    """0: a face neighbour differs; 1: else an edge neighbour; 2: else a corner one; 3: none; 0 off labels."""
    out = np.full(lab.shape, 3, dtype=np.uint8)
    for norm, cls in ((3, 2), (2, 1), (1, 0)):  # the smallest differing neighbour distance wins
        differs = np.zeros(lab.shape, dtype=bool)
        for o in OFFSETS:
            if sum(map(abs, o)) == norm:
                differs |= _shifted(lab, o) != lab
        out[differs] = cls
    out[lab == 0] = 0
    return out


def _random_labels(rng: np.random.Generator, n_labels: int = 4) -> np.ndarray:
    shape = tuple(int(s) for s in rng.integers(1, 13, 3))
    lab = np.zeros(shape, np.uint8)
    for _ in range(int(rng.integers(0, 5))):
        lo = [int(rng.integers(0, s)) for s in shape]
        hi = [int(rng.integers(a + 1, s + 1)) for a, s in zip(lo, shape, strict=True)]
        lab[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = rng.integers(1, n_labels)
    if rng.random() < 0.3:  # speckle: single voxels of other labels and holes
        lab[rng.random(shape) < 0.1] = rng.integers(0, n_labels)
    return lab


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int64])
def test_label_codes_equal_erosion_and_depth_definitions(rng: np.random.Generator, dtype: type) -> None:
    for _ in range(150):
        lab = _random_labels(rng)
        ids = lab.astype(dtype) * (300 if dtype in (np.uint16, np.uint32) else 1)  # ids beyond uint8
        hw = tuple(int(h) for h in rng.integers(0, 7, 3))  # up to three doubling steps per axis
        for depth in (True, False):
            code = label_codes(ids, hw, depth=depth)  # type: ignore[arg-type]
            assert code.dtype == np.uint8 and code.shape == lab.shape
            core = (code & CORE_BIT) > 0
            np.testing.assert_array_equal(core, _erosion_oracle(lab, hw), err_msg=f"{hw} {lab.shape}")  # type: ignore[arg-type]
            expected_depth = _depth_oracle(lab) if depth else np.zeros(lab.shape, np.uint8)
            np.testing.assert_array_equal(code & DEPTH_MASK, expected_depth, err_msg=f"{lab.shape}")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_label_codes_deep_bit_equals_the_deeper_erosion(rng: np.random.Generator, dtype: type) -> None:
    """The second erosion in the same pass (bit DEEP_BIT), continued from the core's when it is at
    least as wide on every axis and from the labels otherwise, against the erosion definition;
    half-widths up to 7 (several doubling steps per axis), the other bits unchanged."""
    for _ in range(150):
        lab = _random_labels(rng)
        ids = lab.astype(dtype) * (300 if dtype == np.uint16 else 1)
        hw = tuple(int(h) for h in rng.integers(0, 5, 3))
        if rng.random() < 0.7:  # deeper on every axis (from the core), else any (from the labels)
            dhw = tuple(h + int(d) for h, d in zip(hw, rng.integers(0, 4, 3), strict=True))
        else:
            dhw = tuple(int(h) for h in rng.integers(0, 8, 3))
        depth = bool(rng.random() < 0.5)
        code = label_codes(ids, hw, depth=depth, deep_half_widths=dhw)  # type: ignore[arg-type]
        np.testing.assert_array_equal((code & DEEP_BIT) > 0, _erosion_oracle(lab, dhw), err_msg=f"{hw} {dhw}")  # type: ignore[arg-type]
        np.testing.assert_array_equal(code & ~np.uint8(DEEP_BIT), label_codes(ids, hw, depth=depth))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="deep_half_widths"):
        label_codes(lab, (1, 1, 1), deep_half_widths=(1, -1, 1))


def test_label_codes_of_a_non_contiguous_view(rng: np.random.Generator) -> None:
    lab = np.asfortranarray(_random_labels(rng) + 0)
    np.testing.assert_array_equal(
        label_codes(lab, (1, 1, 1)), label_codes(np.ascontiguousarray(lab), (1, 1, 1))
    )


def test_class_histogram_and_candidates(rng: np.random.Generator) -> None:
    for dtype in (np.uint8, np.int16, np.uint16, np.int32, np.int64):
        lab = _random_labels(rng, 5)
        info = np.iinfo(dtype)
        lo_v, hi_v = max(info.min, -300), min(info.max, 300)
        values = rng.integers(lo_v, hi_v + 1, lab.shape).astype(dtype)
        code = label_codes(lab, (1, 1, 0))
        n = 4
        lo = int(values.min())
        nbins = int(values.max()) - lo + 1
        hist = _kernels.class_histogram(lab, values, code, lo, nbins, n)
        assert hist.shape == (n + 1, 8, nbins)
        for v in range(n + 1):
            for c in range(8):
                sel = (lab == v) & ((code & 7) == c) & (v > 0)
                want = np.bincount(values[sel].astype(np.int64) - lo, minlength=nbins)
                np.testing.assert_array_equal(hist[v, c], want)
        thr = np.concatenate([[np.nan], rng.uniform(lo_v, hi_v, n)])
        thr[2] = np.nan  # a vertebra without threshold has no candidate
        seed_thr = thr + 20
        for bright in (True, False):
            idx, seed = _kernels.candidates(lab, values, code, thr, seed_thr, bright, lab.size)
            t = thr[lab]
            with np.errstate(invalid="ignore"):
                beyond = (values > t) if bright else (values < t)
                seed_beyond = (values > seed_thr[lab]) if bright else (values < seed_thr[lab])
            want = (lab > 0) & beyond
            np.testing.assert_array_equal(idx, np.flatnonzero(want))
            np.testing.assert_array_equal(
                seed, ((code & CORE_BIT) > 0).ravel()[idx] & seed_beyond.ravel()[idx]
            )


def test_grow_equals_neighbour_loop(rng: np.random.Generator) -> None:
    for trial in range(60):
        lab = _random_labels(rng)
        values = rng.integers(0, 100, lab.shape).astype(np.uint16 if trial % 2 else np.float64)
        code = label_codes(lab, (1, 1, 1))
        offset = rng.normal(0, 10, (4, 4))
        nz = np.flatnonzero(lab)
        if nz.size == 0:
            continue
        idx = np.sort(rng.choice(nz, size=min(nz.size, 8), replace=False))
        cut = rng.uniform(20, 80, idx.size)
        sign = 1.0 if trial % 3 else -1.0
        one = np.array([0, idx.size], dtype=np.intp)  # one group: grow_groups is grow of each group
        found, group = _kernels.grow_groups(lab, values, code, offset.ravel(), idx, cut, sign, one)
        assert not group.any()
        got = np.unique(found)
        want = set()
        for x, c in zip(idx, cut, strict=True):
            p = np.unravel_index(x, lab.shape)
            for o in OFFSETS:
                q = tuple(int(a + d) for a, d in zip(p, o, strict=True))
                if not all(0 <= a < s for a, s in zip(q, lab.shape, strict=True)) or lab[q] != lab[p]:
                    continue
                corrected = float(values[q]) - offset[lab[q], code[q] & 3]
                if (corrected - c) * sign > 0:
                    want.add(int(np.ravel_multi_index(q, lab.shape)))
        assert np.unique(found).size == found.size  # each once
        np.testing.assert_array_equal(got, np.array(sorted(want - set(idx.tolist())), dtype=np.intp))


def test_vertebra_tables(rng: np.random.Generator) -> None:
    lab = _random_labels(rng, 6)
    values = rng.integers(-50, 50, lab.shape).astype(np.int16)
    lo, nbins = int(values.min()), int(values.max()) - int(values.min()) + 1
    for ax in range(3):
        tab, hist = _kernels.vertebra_tables(lab, values, ax, 5, lo, nbins)
        coord = np.indices(lab.shape)[ax]
        for v in range(1, 6):
            np.testing.assert_array_equal(tab[v], np.bincount(coord[lab == v], minlength=lab.shape[ax]))
            np.testing.assert_array_equal(hist[v], np.bincount(values[lab == v] - lo, minlength=nbins))
        assert not tab[0].any() and not hist[0].any()
        # strided views (Fortran order, a box of a larger volume) read the same
        for view_lab, view_val in (
            (np.asfortranarray(lab), np.asfortranarray(values)),
            (np.pad(lab, 2)[2:-2, 2:-2, 2:-2], np.pad(values, 2)[2:-2, 2:-2, 2:-2]),
        ):
            tab2, hist2 = _kernels.vertebra_tables(view_lab, view_val, ax, 5, lo, nbins)
            np.testing.assert_array_equal(tab2, tab)
            np.testing.assert_array_equal(hist2, hist)


def test_vertebra_tables_counts_only_runs_equal_bincount(rng: np.random.Generator) -> None:
    """``nbins`` 0 on contiguous rows takes the run-length path: the counts of ``np.bincount``."""
    for _ in range(150):
        shape = tuple(int(n) for n in rng.integers(1, 40, 3))
        n = int(rng.integers(1, 30))
        lab = np.zeros(shape, np.uint8)
        for _ in range(4):  # long runs (blocks) and scattered voxels, rows of every length
            lo = [int(rng.integers(0, s)) for s in shape]
            hi = [int(rng.integers(a, s)) + 1 for a, s in zip(lo, shape, strict=True)]
            lab[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = rng.integers(1, n + 1)
        sprinkle = rng.random(shape) < 0.05
        lab[sprinkle] = rng.integers(0, n + 1, int(sprinkle.sum()))
        values = rng.integers(0, 100, shape).astype(np.int16)
        idx = np.nonzero(lab)
        for ax in range(3):
            want = np.bincount(
                lab[idx].astype(np.int64) * shape[ax] + idx[ax], minlength=(n + 1) * shape[ax]
            ).reshape(n + 1, shape[ax])
            # C order, and a Fortran-ordered array's reversed-axes view (contiguous rows too)
            for view, axis, expect in ((lab, ax, want), (np.asfortranarray(lab).T, 2 - ax, want)):
                tab, hist = _kernels.vertebra_tables(
                    view, values.T if view is not lab else values, axis, n, 0, 0
                )
                assert tab.dtype == np.int64 and hist.shape == (n + 1, 0)
                np.testing.assert_array_equal(tab, expect)
            # a box of a larger volume (rows apart in memory) and every other voxel of a row (strided:
            # the per-voxel path)
            big = np.pad(lab, ((0, 0), (0, 0), (1, 2)))[:, :, 1:-2]
            np.testing.assert_array_equal(_kernels.vertebra_tables(big, values, ax, n, 0, 0)[0], want)
            every = np.repeat(lab, 2, axis=2)[:, :, ::2]
            np.testing.assert_array_equal(_kernels.vertebra_tables(every, values, ax, n, 0, 0)[0], want)


PARAMS = [
    SegmentParams(),
    SegmentParams(method="local"),
    SegmentParams(margin_mm=0.0, connectivity=6),
    SegmentParams(depth_background=False),
    SegmentParams(polarity="dark"),
]


@pytest.mark.parametrize("p", PARAMS, ids=["robust", "local", "m0", "nodepth", "dark"])
def test_integer_and_float_images_segment_and_measure_identically(p: SegmentParams) -> None:
    """Integer images take the compiled histograms; the same values as float64 take the gathered
    path (sorting/bincount): thresholds, lesions and every table column must agree exactly."""
    img, mask, _ = make_phantom(seed=11, bias=0.1, snr=20, contrast="t1" if p.polarity == "dark" else "stir")
    data = np.asarray(img.data)
    assert data.dtype.kind in "iu"
    vid = np.asarray(mask.data).astype(np.int64)
    labels = np.unique(vid)[1:]
    lut = np.zeros(int(vid.max()) + 1, np.int64)
    lut[labels] = np.arange(1, labels.size + 1)
    vid = lut[vid]
    a = segment_lesions(data, vid, img.spacing, p)
    b = segment_lesions(data.astype(np.float64), vid, img.spacing, p)
    assert (a.lesion_ids > 0).sum() > 0
    for field in ("lesion_ids", "lesion_vertebra", "thresholds", "reference_median", "reference_mad"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    np.testing.assert_array_equal(a.background, b.background)
    np.testing.assert_allclose(a.depth_offset, b.depth_offset, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(a.core, b.core)
    n = labels.size
    levels = list(LEVELS[:n])
    for mp in (MetricsParams(), MetricsParams(intensity_erosion_mm=2.0)):
        ta, tb = (
            compute_metrics(
                s.intensity,
                vid,
                levels,
                [[v] for v in range(1, n + 1)],
                s.lesion_ids,
                s.lesion_vertebra,
                s.thresholds,
                s.reference_median,
                s.reference_mad,
                img.affine,
                img.lr_axis,
                params=mp,
            )  # fmt: skip
            for s in (a, b)
        )
        for col in ta.vertebrae.columns:
            np.testing.assert_array_equal(
                ta.vertebrae[col].to_numpy(), tb.vertebrae[col].to_numpy(), err_msg=col
            )
        np.testing.assert_array_equal(ta.lesion_ids, tb.lesion_ids)
        assert ta.lesions.equals(tb.lesions)


def test_more_than_255_vertebra_ids_is_a_clear_error() -> None:
    from spinemri.errors import InputError

    vid = np.zeros((4, 4, 300), np.int64)
    vid[1:3, 1:3, :] = np.arange(1, 301)
    with pytest.raises(InputError, match="at most 255"):
        segment_lesions(np.ones(vid.shape, np.uint16), vid, (1.0, 1.0, 1.0))


def test_sparse_components_equal_cc3d(rng: np.random.Generator) -> None:
    import cc3d

    for trial in range(300):
        shape = tuple(int(x) for x in rng.integers(1, 15 if trial < 200 else 40, 3))
        mask = rng.random(shape) < rng.random() * (0.5 if trial % 3 else 0.9)  # long runs too
        idx = np.flatnonzero(mask)
        for conn in (6, 18, 26):
            want, n = cc3d.connected_components(mask, connectivity=conn, return_N=True)
            got, n_got = _kernels.sparse_components(idx, *shape, conn)
            assert n_got == n
            np.testing.assert_array_equal(got, want.ravel()[idx])  # the same ids, not only the same parts


def test_sparse_components_with_codes_equal_cc3d_multilabel(rng: np.random.Generator) -> None:
    """Voxels of different codes never connect: the multi-label components cc3d finds in an array
    holding the codes, numbered alike (touching codes, runs cut by a code change, long runs)."""
    import cc3d

    for trial in range(200):
        shape = tuple(int(x) for x in rng.integers(1, 15 if trial < 150 else 35, 3))
        labels = rng.integers(1, 4, shape) * (rng.random(shape) < rng.random() * 0.9)
        idx = np.flatnonzero(labels)
        codes = labels.ravel()[idx].astype(np.int64) * 1000 + 7  # any int64 codes
        for conn in (6, 18, 26):
            want, n = cc3d.connected_components(labels, connectivity=conn, return_N=True)
            got, n_got = _kernels.sparse_components(idx, *shape, conn, codes)
            assert n_got == n
            np.testing.assert_array_equal(got, want.ravel()[idx])


def test_wide_integer_range_takes_the_gathered_path_with_the_same_result() -> None:
    """An int32 image spanning ~2**30 has no histogram small enough: the values are gathered and
    sorted instead, with the result of the same values as float64."""
    rng = np.random.default_rng(5)
    vid = np.zeros((12, 30, 10), np.int64)
    for v in range(1, 5):
        vid[2:10, 2 + 7 * (v - 1) : 7 + 7 * (v - 1), 1:9] = v
    img = rng.normal(1e8, 1e6, vid.shape).astype(np.int32)
    img[4:8, 3:6, 3:7] = 10**9  # a lesion in vertebra 1
    img[5, 7, 5] = -(10**9)  # between two vertebrae, in their box: the range is ~2**31
    p = SegmentParams(margin_mm=1.0, min_lesion_mm3=0.0)
    a = segment_lesions(img, vid, (1.0, 1.0, 1.0), p)
    b = segment_lesions(img.astype(np.float64), vid, (1.0, 1.0, 1.0), p)
    assert set(np.unique(a.lesion_vertebra[1:]).tolist()) == {1}
    for field in ("lesion_ids", "lesion_vertebra", "thresholds", "reference_median", "reference_mad"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def _assert_moments_are_numpys(got: LabelMoments, lab: np.ndarray, aff: np.ndarray) -> None:
    """The numpy definition of label moments: labels present, counts, mean and (biased) covariance
    of the voxel indices, world-space extremes of each label's voxel centres."""
    ijk = np.stack(np.nonzero(lab)).astype(np.float64)
    v = lab[np.nonzero(lab)].astype(np.int64)
    present = np.unique(v)
    np.testing.assert_array_equal(got.labels, present)
    world = aff[:3, :3] @ ijk
    close = functools.partial(np.testing.assert_allclose, rtol=1e-12, atol=1e-12)
    for r, lb in enumerate(present):
        pts = ijk[:, v == lb]
        assert got.counts[r] == pts.shape[1]
        close(got.mean_ijk[r], pts.mean(axis=1))
        np.testing.assert_allclose(got.cov_ijk[r], np.cov(pts, bias=True), rtol=1e-9, atol=1e-9)
        close(got.world_min[r], world[:, v == lb].min(axis=1))
        close(got.world_max[r], world[:, v == lb].max(axis=1))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32])
def test_label_moments_equal_bincount_definition(rng: np.random.Generator, dtype: type, order: str) -> None:
    from spinemri.arrays.moments import label_moments

    for _ in range(20):
        shape = tuple(int(n) for n in rng.integers(1, 14, 3))
        lab = (rng.integers(0, 7, shape) * (rng.random(shape) < 0.7)).astype(dtype)
        lab = np.asfortranarray(lab) if order == "F" else lab
        aff = np.eye(4)
        aff[:3, :3] = rng.normal(size=(3, 3))
        aff[:3, 3] = rng.normal(size=3)
        got = label_moments(lab, aff)
        _assert_moments_are_numpys(got, lab, aff)


def _numpy_box(lab: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The oracle of the bounding box: the extremes of ``np.nonzero``."""
    idx = np.nonzero(lab)
    if idx[0].size == 0:
        return None
    return tuple(slice(int(x.min()), int(x.max()) + 1) for x in idx)  # type: ignore[return-value]


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_label_moments_with_bbox_equals_numpy_and_separate_passes(
    rng: np.random.Generator, dtype: type, order: str
) -> None:
    from spinemri.arrays.moments import label_moments, label_moments_with_bbox

    fields = ("labels", "counts", "mean_ijk", "cov_ijk", "world_min", "world_max")
    for t in range(60):
        # rows of every length around the 8-byte words the runs are searched by, long runs of one
        # label (blocks) and scattered voxels; some all-zero masks, labels above 255 (uint16, int16)
        shape = tuple(int(n) for n in rng.integers(1, 40, 3))
        lab = np.zeros(shape, dtype=np.int64)
        if t % 10 != 0:
            for _ in range(int(rng.integers(1, 6))):
                lo = [int(rng.integers(0, n)) for n in shape]
                hi = [int(rng.integers(a, n)) + 1 for a, n in zip(lo, shape, strict=True)]
                lab[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = int(rng.integers(1, 30))
            sprinkle = rng.random(shape) < 0.02
            top = 255 if dtype == np.uint8 else (300 if t % 3 == 0 else 30)
            lab[sprinkle] = rng.integers(0, top + 1, int(sprinkle.sum()))
        lab = lab.astype(dtype)
        lab = np.asfortranarray(lab) if order == "F" else np.ascontiguousarray(lab)
        aff = np.eye(4)
        aff[:3, :3] = rng.normal(size=(3, 3))
        aff[:3, 3] = rng.normal(size=3)
        box, got = label_moments_with_bbox(lab, aff)
        assert box == _numpy_box(lab)
        ref = label_moments(lab, aff, bbox=box)
        for f in fields:  # byte for byte what the two separate passes give
            assert getattr(got, f).tobytes() == getattr(ref, f).tobytes(), f
        # and the numpy definition
        _assert_moments_are_numpys(got, lab, aff)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_label_moments_bbox_kernel_box_and_largest_value(rng: np.random.Generator, dtype: type) -> None:
    for _ in range(100):
        shape = tuple(int(n) for n in rng.integers(1, 30, 3))
        lab = (
            rng.integers(0, 400 if dtype == np.uint16 else 256, shape) * (rng.random(shape) < 0.05)
        ).astype(dtype)
        out = _kernels.label_moments_bbox(lab, 256, np.eye(3))
        box = _numpy_box(lab)
        assert out[5] == (None if box is None else tuple(x for sl in box for x in (sl.start, sl.stop)))
        assert out[6] == int(lab.max())
        # labels >= the table's size are left out of the sums but not of the box
        small = np.where(lab < 256, lab, 0)
        np.testing.assert_array_equal(out[0][1:], np.bincount(small.ravel(), minlength=256)[1:256])


def test_label_moments_with_bbox_strided_mask_takes_the_separate_passes(rng: np.random.Generator) -> None:
    from spinemri.arrays.moments import label_moments, label_moments_with_bbox

    lab = (rng.integers(0, 5, (20, 30, 26)) * (rng.random((20, 30, 26)) < 0.3)).astype(np.uint8)[:, ::2, 1::3]
    aff = np.diag([0.5, 0.7, 3.0, 1.0])
    box, got = label_moments_with_bbox(lab, aff)
    assert box == _numpy_box(lab)
    ref = label_moments(lab, aff, bbox=box)
    assert got.mean_ijk.tobytes() == ref.mean_ijk.tobytes()
    np.testing.assert_array_equal(got.counts, np.bincount(lab.ravel())[1:][np.bincount(lab.ravel())[1:] > 0])


def test_dilate_box_equals_maximum_filter(rng: np.random.Generator) -> None:
    from scipy import ndimage as ndi

    for _ in range(200):
        shape = tuple(int(n) for n in rng.integers(1, 20, 3))
        a = (rng.random(shape) < rng.random() * 0.1).astype(np.uint8)
        h = [int(x) for x in rng.integers(0, 10, 3)]
        np.testing.assert_array_equal(
            _kernels.dilate_box(a, *h), ndi.maximum_filter(a, size=[2 * x + 1 for x in h])
        )


def test_code_histogram_equals_bincount(rng: np.random.Generator) -> None:
    for dtype in (np.uint8, np.int16, np.uint16, np.int32):
        for order in ("C", "F"):
            shape = tuple(int(n) for n in rng.integers(1, 12, 3))
            code = np.asarray(rng.integers(0, 4, shape).astype(np.uint8), order=order)
            vals = np.asarray(rng.integers(0, 100, shape).astype(dtype), order=order)
            if dtype in (np.int16, np.int32):
                vals = vals - 50
            lo = int(vals.min()) - 3
            nbins = int(vals.max()) - lo + 1
            got = _kernels.code_histogram(code, vals, lo, nbins, 2)
            assert got.shape == (3, nbins)
            assert not got[0].any()
            for c in (1, 2):
                want = np.bincount((vals[code == c].astype(np.int64) - lo), minlength=nbins)
                np.testing.assert_array_equal(got[c], want)


def test_value_range_equals_min_max(rng: np.random.Generator) -> None:
    for dtype in (np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.int64):
        shape = tuple(int(n) for n in rng.integers(1, 12, 3))
        vals = rng.integers(0, 120, shape).astype(dtype)
        for view in (vals, np.asfortranarray(vals).T, vals[:, ::2, ::3]):
            assert _kernels.value_range(view) == (int(view.min()), int(view.max()))
    assert _kernels.value_range(np.zeros((0, 2, 2), np.int16)) is None
