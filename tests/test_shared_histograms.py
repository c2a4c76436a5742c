"""The fast paths of ``measure`` (issue 13, Deliver 6) give what their reference paths give.

``measure`` reads the per-vertebra value histogram of the segmentation twice more: for the
metric tables' mean and median intensities (``compute_metrics(value_histogram=...)``) and for the
marrow median of the polarity check (``check_polarity(marrow_histogram=...)``), which then counts
only the shell. Each is held here to the path that takes a pass of its own, on C- and
Fortran-ordered images of int16, uint16 and float32 (no histogram: the reference path itself),
and the medians to ``np.median`` over the voxels (ground truth independent of any histogram).
The compiled passes changed for speed (``code_histogram`` on strided boxes, ``nonzero_box`` with
labels far from the row ends) are held to numpy definitions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

import spinemri
from spinemri import Volume
from spinemri._native import kernels as _kernels
from spinemri.arrays.bbox import nonzero_bbox
from spinemri.arrays.labels import check_label_values
from spinemri.measurement import vertebra_ids
from spinemri.metrics import compute_metrics
from spinemri.params import SegmentParams
from spinemri.plausibility import RING_MM, Finding, check_image, check_polarity
from spinemri.segmentation.lesions import segment_lesions

DTYPES = ("int16", "uint16", "float32")


@pytest.fixture(scope="module")
def phantom() -> tuple[Volume, Volume]:
    img, mask, _ = spinemri.make_phantom(seed=5)
    return img, mask


def _ordered(a: np.ndarray, dtype: str, order: str) -> np.ndarray:
    return np.asarray(np.asarray(a).astype(dtype), order=order)  # type: ignore[call-overload,no-any-return]


def _ids(mask: Volume, order: str) -> tuple[np.ndarray, list[str], list[list[int]]]:
    scheme = spinemri.get_scheme("verse")
    mapped, _ = scheme.split_labels(np.unique(np.asarray(mask.data)))
    vid, levels, merged = vertebra_ids(np.asarray(np.asarray(mask.data), order=order), mapped)
    return vid, levels, merged


def _tables(seg, vid, levels, merged, img: Volume, **kw):  # type: ignore[no-untyped-def]
    return compute_metrics(
        seg.intensity,
        vid,
        levels,
        merged,
        seg.lesion_ids,
        seg.lesion_vertebra,
        seg.thresholds,
        seg.reference_median,
        seg.reference_mad,
        img.affine,
        img.lr_axis,
        bbox=seg.box,
        **kw,
    )


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["robust", "local"])
def test_metrics_from_the_segmentation_histogram_equal_their_own_pass(
    phantom: tuple[Volume, Volume], order: str, dtype: str, method: str
) -> None:
    img, mask = phantom
    data = _ordered(img.data, dtype, order)
    vid, levels, merged = _ids(mask, order)
    seg = segment_lesions(data, vid, img.spacing, SegmentParams(method=method))
    if dtype == "float32":
        assert seg.value_histogram is None  # float images: the thresholds are not read from one
    else:
        assert seg.value_histogram is not None
    ref = _tables(seg, vid, levels, merged, img)  # the metrics' own pass over the voxels
    got = _tables(seg, vid, levels, merged, img, value_histogram=seg.value_histogram)
    for name in ("vertebrae", "lesions", "patient"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(ref, name), check_exact=True)
    np.testing.assert_array_equal(got.lesion_ids, ref.lesion_ids)
    # ground truth without a histogram: np.median and the mean over each vertebra's voxels
    flat = np.asarray(data)
    for v, row in enumerate(got.vertebrae.itertuples(), start=1):
        vals = flat[vid == v]
        assert row.vertebra_voxels == vals.size
        assert row.median_intensity == np.median(vals.astype(np.float64))
        assert row.mean_intensity == pytest.approx(float(vals.astype(np.float64).mean()), rel=1e-12)


def test_metrics_ignore_the_histogram_with_intensity_erosion(phantom: tuple[Volume, Volume]) -> None:
    img, mask = phantom
    vid, levels, merged = _ids(mask, "F")
    data = _ordered(img.data, "int16", "F")
    seg = segment_lesions(data, vid, img.spacing)
    mp = spinemri.params.MetricsParams(intensity_erosion_mm=2.0)
    ref = _tables(seg, vid, levels, merged, img, params=mp)
    got = _tables(seg, vid, levels, merged, img, params=mp, value_histogram=seg.value_histogram)
    pd.testing.assert_frame_equal(got.vertebrae, ref.vertebrae, check_exact=True)


def _polarity_reference(data: np.ndarray, vid: np.ndarray, spacing: tuple[float, ...]) -> tuple[float, float]:
    """Marrow and shell medians from scipy's maximum_filter and np.median (no histogram)."""
    inside = vid > 0
    pad = [max(1, int(round(RING_MM / float(s)))) for s in spacing]
    grown = ndi.maximum_filter(inside.view(np.uint8), size=[2 * p + 1 for p in pad]).view(bool)
    shell = grown & ~inside
    return float(np.median(data[inside].astype(np.float64))), float(np.median(data[shell].astype(np.float64)))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contrast", ["stir", "t1"])
def test_polarity_from_the_segmentation_histogram_equals_its_own_pass(
    phantom: tuple[Volume, Volume], order: str, dtype: str, contrast: str
) -> None:
    img, mask = phantom
    a = np.asarray(img.data).astype(np.float64)
    if contrast == "t1":  # marrow brighter than its surroundings: the bright polarity is flagged
        a[np.asarray(mask.data) > 0] *= 4.0
    data = _ordered(a, dtype, order)
    vid, _, _ = _ids(mask, order)
    seg = segment_lesions(data, vid, img.spacing)
    box = nonzero_bbox(vid)
    for polarity in ("bright", "dark"):
        ref = check_polarity(data, vid, img.spacing, polarity, bbox=box)
        got = check_polarity(data, vid, img.spacing, polarity, bbox=box, marrow_histogram=seg.value_histogram)
        assert got == ref
    flagged = check_polarity(data, vid, img.spacing, "bright", marrow_histogram=seg.value_histogram)
    marrow, around = _polarity_reference(np.asarray(data), vid, img.spacing)
    expect_flag = marrow / around > 1.5
    assert [f.flag for f in flagged] == (["marrow_bright"] if expect_flag else [])
    if contrast == "t1":
        assert expect_flag  # the inverted phantom is a real test of the flagged branch
        assert isinstance(flagged[0], Finding) and f"median {marrow:g}" in flagged[0].message
        assert f"median {around:g}" in flagged[0].message


@pytest.mark.parametrize("contrast", ["stir", "t1"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_measure_reports_the_findings_and_notes_of_check_image(
    phantom: tuple[Volume, Volume], contrast: str, order: str
) -> None:
    img, mask = phantom
    a = np.asarray(img.data).astype(np.float64)
    if contrast == "t1":
        a[np.asarray(mask.data) > 0] *= 4.0
    image = img.with_data(_ordered(a, "int16", order))
    m_mask = mask.with_data(np.asarray(np.asarray(mask.data), order=order))
    vid, _, _ = _ids(m_mask, order)
    ref = check_image(
        np.asarray(image.data), image.meta, vid, image.spacing, "bright", image.affine, bbox=nonzero_bbox(vid)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = spinemri.measure(image, m_mask, scheme="verse")
    messages = [str(w.message) for w in caught]
    for f in ref:
        assert any(f.message in msg for msg in messages)
        assert any(f.message in note for note in m.notes)
    if contrast == "t1":
        assert [f.flag for f in ref] == ["marrow_bright"]
        assert "marrow_bright" in m.patient["plausibility"].iloc[0]
    else:
        assert ref == []


def test_code_histogram_on_strided_boxes_equals_bincount(rng: np.random.Generator) -> None:
    for dtype in (np.uint8, np.int16, np.uint16, np.int32):
        for _ in range(20):
            shape = tuple(int(n) for n in rng.integers(2, 14, 3))
            big = rng.integers(0, 300, shape).astype(dtype)
            if np.dtype(dtype).kind == "i":
                big = big - np.asarray(100, dtype=dtype)
            code_big = rng.integers(0, 3, shape).astype(np.uint8)
            box = tuple(
                slice(int(rng.integers(0, n // 2)), int(rng.integers(n // 2 + 1, n + 1))) for n in shape
            )
            step = (slice(None), slice(None), slice(None, None, 2))
            for vals, code in (
                (big[box], code_big[box]),  # rows contiguous, planes strided
                (np.asfortranarray(big)[box].T, np.ascontiguousarray(code_big[box].T)),  # reversed view
                (big[box][step], code_big[box][step]),  # strided rows (values and codes)
            ):
                lo = int(vals.min()) if vals.size else 0
                nbins = (int(vals.max()) - lo + 1) if vals.size else 1
                got = _kernels.code_histogram(code, vals, lo, nbins, 2)
                for c in (1, 2):
                    want = np.bincount(vals[code == c].astype(np.int64) - lo, minlength=nbins)
                    np.testing.assert_array_equal(got[c], want)
                assert not got[0].any()


def _bbox_definition(a: np.ndarray) -> tuple[slice, slice, slice] | None:
    nz = np.nonzero(a)
    if nz[0].size == 0:
        return None
    return tuple(slice(int(x.min()), int(x.max()) + 1) for x in nz)  # type: ignore[return-value]


def test_nonzero_bbox_with_labels_far_from_the_row_ends(rng: np.random.Generator) -> None:
    for _ in range(300):
        shape = tuple(int(n) for n in rng.integers(1, 40, 3))
        a = np.zeros(shape, np.uint8)
        for _ in range(int(rng.integers(0, 4))):  # a few blobs anywhere, single voxels at the ends
            lo = [int(rng.integers(0, n)) for n in shape]
            hi = [min(n, x + int(rng.integers(1, 6))) for x, n in zip(lo, shape, strict=True)]
            a[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = int(rng.integers(1, 255))
        if rng.random() < 0.3:
            a[tuple(int(rng.integers(0, n)) for n in shape)] = 7
        for arr in (a, np.asfortranarray(a), a.astype(np.uint16), np.asfortranarray(a.astype(np.int16))):
            assert nonzero_bbox(arr) == _bbox_definition(arr)


def test_check_label_values_passes_uint8_through_and_still_checks_the_others() -> None:
    a = np.asfortranarray(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    assert check_label_values(a, "m") is a  # no copy, no pass
    small = a.astype(np.uint16)
    assert check_label_values(small, "m").dtype == np.uint8
    big = small.copy()
    big[0, 0, 0] = 300
    out = check_label_values(big, "m")
    assert out.dtype == np.uint16 and int(out.max()) == 300
    neg = a.astype(np.int16)
    neg[1, 1, 1] = -2
    with pytest.raises(spinemri.errors.InputError, match="negative"):
        check_label_values(neg, "m")
