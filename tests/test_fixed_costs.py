"""The shortcuts of the fourth pass on ``measure``'s fixed costs (issue 13, Deliver 6) give what
the passes they replace give.

The edge rule (:func:`spinemri.segmentation.component_rules.component_rules`) takes the number of
interior voxels per vertebra and the interior flag of the lesion voxels instead of a box-sized
interior mask; the seed-depth rule finds the vertebrae with deep voxels by ``labels_with_code``,
which stops once every vertebra is found; the polarity check's shell is one compiled sweep
(``shell_histogram``); the metrics search the lesion voxels in the segmentation's lesion box and
renumber its map in place.
Each is held to an independent numpy definition (interior: all 26 neighbours carry the voxel's
own id, the box border being a boundary, by ``scipy.ndimage`` minimum/maximum filters).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from box_voxels import BoxVoxels
from scipy import ndimage as ndi

from spinemri._native import kernels as _kernels
from spinemri.arrays.morphology import DEPTH_MASK, label_codes
from spinemri.segmentation.component_rules import component_rules


def _blocks(rng: np.random.Generator, shape: tuple[int, int, int], n: int) -> np.ndarray:
    """Stacked vertebra-like blocks ``1..n`` along axis 1 with ragged edges, uint8."""
    v = np.zeros(shape, np.uint8)
    step = shape[1] // n
    for i in range(n):
        j0 = i * step + 1
        v[2:-2, j0 : j0 + step - 2, 1:-1] = i + 1
    v[rng.random(shape) < 0.03] = 0  # holes: interior voxels are not a box
    return v


def _interior_oracle(v: np.ndarray) -> np.ndarray:
    """Voxels whose 26 neighbours all carry their own non-zero id (beyond the box: background)."""
    p = np.pad(v, 1)
    lo = ndi.minimum_filter(p, size=3, mode="constant", cval=0)[1:-1, 1:-1, 1:-1]
    hi = ndi.maximum_filter(p, size=3, mode="constant", cval=0)[1:-1, 1:-1, 1:-1]
    return np.asarray((v > 0) & (lo == v) & (hi == v))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("with_deep", [False, True])
def test_edge_rule_from_interior_counts_equals_the_interior_mask(seed: int, with_deep: bool) -> None:
    rng = np.random.default_rng(seed)
    shape = (24, 60, 14)
    v = _blocks(rng, shape, 4)
    interior = _interior_oracle(v)
    # the depth class 3 of label_codes is that interior (what the segmentation's histogram counts)
    code = label_codes(v, (1, 1, 1), depth=True)
    np.testing.assert_array_equal((code & DEPTH_MASK) == DEPTH_MASK, interior)
    values = rng.normal(100.0, 10.0, shape)
    # components: random boxes inside the vertebrae, some filling most of one (kept without the test)
    lab = np.zeros(shape, np.int64)
    for c in range(1, 7):
        a, b, k = rng.integers(3, 18), rng.integers(2, 50), rng.integers(2, 10)
        w = (rng.integers(2, 6), rng.integers(2, 14), rng.integers(1, 4))
        sl = (slice(a, a + w[0]), slice(b, b + w[1]), slice(k, k + w[2]))
        lab[sl][v[sl] > 0] = c
        bump = rng.uniform(50.0, 200.0)
        if c % 2:  # no step at the edge: the surroundings carry the contrast (the rule drops it)
            sl = tuple(slice(max(0, x.start - 4), x.stop + 4) for x in sl)
        values[sl] += bump
    if seed % 2:  # a lesion filling a whole vertebra: kept without the edge test
        lab[v == 2] = 7
        values[ndi.binary_dilation(v == 2, iterations=4)] += 150.0
    idx = np.flatnonzero(lab.ravel() > 0)
    cid = lab.ravel()[idx]
    plateau = np.bincount(cid, weights=values.ravel()[idx] - 100.0) / np.maximum(np.bincount(cid), 1)
    level = np.full(5, 100.0)
    deep = label_codes(v, (3, 3, 1), depth=False) != 0 if with_deep else None
    vox = BoxVoxels(v, values - 100.0 + level[0], deep)
    args = (idx, cid, vox, (1.0, 1.0, 2.0), level, 1.0, plateau, 0.5)
    ref = component_rules(*args, interior)
    counts = np.bincount(v[interior], minlength=5)
    fast = component_rules(*args, interior_counts=counts, in_interior=interior.ravel()[idx])
    np.testing.assert_array_equal(fast, ref)
    kept = set(np.unique(cid[ref]).tolist())
    assert kept and kept != set(np.unique(cid).tolist())  # both outcomes occur
    if seed % 2:
        assert 7 in kept  # the filled vertebra, though its surroundings carry its contrast
    assert component_rules(*args, None).tolist() == ref.tolist()  # computed inside: the same interior


@pytest.mark.parametrize("seed", range(4))
def test_vertebrae_with_deep_voxels_equal_bincount(seed: int) -> None:
    """``labels_with_code`` (which stops once every vertebra is found) against ``np.bincount``, with
    vertebrae thinner than the erosion (no deep voxel: the scan runs to the end) and without."""
    rng = np.random.default_rng(seed)
    v = _blocks(rng, (20, 50, 12), 5)
    v[:, 30:32][v[:, 30:32] > 0] = 6  # a thin vertebra: no voxel deeper than the erosion below
    found = []
    for hw in ((1, 2, 1), (2, 4, 1), (3, 6, 2)):  # the widest: no vertebra has a deep voxel
        deep_code = label_codes(v, hw, depth=False)
        want = np.bincount(v[deep_code != 0], minlength=7) > 0
        found.append(want)
        for n_ids in (0, 3, 6):
            got = _kernels.labels_with_code(deep_code, v, n_ids)
            np.testing.assert_array_equal(got, want[: n_ids + 1] & (np.arange(n_ids + 1) > 0))
    assert not found[0][6] and found[0][1:6].all()  # with and without deep voxels
    assert not found[2].any()
    for _ in range(200):  # random codes and labels, some above n_ids
        shape = tuple(int(x) for x in rng.integers(1, 12, 3))
        lab = ((rng.random(shape) < 0.5) * rng.integers(0, 9, shape)).astype(np.uint8)
        code = ((rng.random(shape) < rng.uniform(0.0, 0.2)) * 4).astype(np.uint8)
        n_ids = int(rng.integers(0, 8))
        want = np.bincount(lab[code != 0], minlength=9)[: n_ids + 1] > 0
        want[0] = False
        np.testing.assert_array_equal(_kernels.labels_with_code(code, lab, n_ids), want)
        # only some bits of the code (the deep bit of the segmentation's code)
        many = rng.integers(0, 16, shape).astype(np.uint8) * (rng.random(shape) < 0.3)
        want = np.bincount(lab[(many & 8) != 0], minlength=9)[: n_ids + 1] > 0
        want[0] = False
        np.testing.assert_array_equal(_kernels.labels_with_code(many, lab, n_ids, 8), want)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("seed", [1, 5])
def test_metrics_from_the_segmentation_lesion_box_equal_their_own_search(order: str, seed: int) -> None:
    import spinemri
    from spinemri.measurement import vertebra_ids
    from spinemri.metrics import compute_metrics
    from spinemri.segmentation.lesions import segment_lesions

    img, mask, _ = spinemri.make_phantom(seed=seed)
    data = np.asarray(np.asarray(img.data), order=order)  # type: ignore[call-overload]
    mapped, _ = spinemri.get_scheme("verse").split_labels(np.unique(np.asarray(mask.data)))
    vid, levels, merged = vertebra_ids(np.asarray(np.asarray(mask.data), order=order), mapped)  # type: ignore[call-overload]
    seg = segment_lesions(data, vid, img.spacing)
    nz = np.nonzero(seg.lesion_ids)
    assert nz[0].size > 0
    # the segmentation's lesion box is the lesions' bounding box
    assert seg.lesion_box == tuple(slice(int(c.min()), int(c.max()) + 1) for c in nz)

    def tables(lesion_ids: np.ndarray, lesion_vertebra: np.ndarray, **kw):  # type: ignore[no-untyped-def]
        return compute_metrics(
            seg.intensity, vid, levels, merged, lesion_ids, lesion_vertebra, seg.thresholds,
            seg.reference_median, seg.reference_mad, img.affine, img.lr_axis, bbox=seg.box, **kw,
        )  # fmt: skip

    no_lesion = (np.zeros_like(seg.lesion_ids), np.zeros(1, np.int64))
    for args, box in (
        ((seg.lesion_ids, seg.lesion_vertebra), seg.lesion_box),
        (no_lesion, (slice(0, 0),) * 3),
    ):
        ref, fast = tables(*args), tables(*args, lesion_bbox=box)
        for a, b in (
            (ref.vertebrae, fast.vertebrae),
            (ref.lesions, fast.lesions),
            (ref.patient, fast.patient),
        ):
            pd.testing.assert_frame_equal(a, b)
        np.testing.assert_array_equal(ref.lesion_ids, fast.lesion_ids)
    assert len(ref.lesions) == 0 and len(tables(seg.lesion_ids, seg.lesion_vertebra).lesions) > 0

    # renumbered in place: the same tables and map, in the array handed over
    ref = tables(seg.lesion_ids, seg.lesion_vertebra)
    mine = seg.lesion_ids.copy()
    fast = tables(mine, seg.lesion_vertebra, lesion_bbox=seg.lesion_box, lesion_ids_writable=True)
    assert fast.lesion_ids is mine
    np.testing.assert_array_equal(fast.lesion_ids, ref.lesion_ids)
    pd.testing.assert_frame_equal(fast.lesions, ref.lesions)
    # a lesion voxel outside the vertebrae (not counted): a new map, without it
    stray = seg.lesion_ids.copy()
    where = tuple(int(c[0]) for c in np.nonzero((vid == 0)[seg.lesion_box]))
    at = tuple(s.start + w for s, w in zip(seg.lesion_box, where, strict=True))
    stray[at] = 1
    ref = tables(stray.copy(), seg.lesion_vertebra)
    fast = tables(stray, seg.lesion_vertebra, lesion_bbox=seg.lesion_box, lesion_ids_writable=True)
    assert fast.lesion_ids is not stray and fast.lesion_ids[at] == 0
    np.testing.assert_array_equal(fast.lesion_ids, ref.lesion_ids)


@pytest.mark.parametrize("seed", range(3))
def test_shell_histogram_equals_maximum_filter_and_bincount(seed: int) -> None:
    """The polarity check's fused shell pass against its definition, on C boxes and on boxes of a
    Fortran-ordered volume's reversed view (strided rows), pads from 0 to beyond the box."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        shape = tuple(int(x) for x in rng.integers(1, 16, 3))
        ids_dtype = rng.choice([np.uint8, np.uint16, np.uint32])
        val_dtype = rng.choice([np.int16, np.uint16, np.int32, np.uint8])
        ids = ((rng.random(shape) < rng.uniform(0.0, 0.6)) * rng.integers(1, 9, shape)).astype(ids_dtype)
        info = np.iinfo(val_dtype)
        vals = rng.integers(max(info.min, -300), min(info.max, 300) + 1, shape).astype(val_dtype)
        if rng.random() < 0.5:  # the box of a bigger Fortran-ordered volume, read through its reversed view
            big_i, big_v = np.asfortranarray(np.pad(ids, 3)).T, np.asfortranarray(np.pad(vals, 3)).T
            sl = tuple(slice(3, 3 + n) for n in shape[::-1])
            ids, vals = big_i[sl], big_v[sl]
        h = [int(x) for x in rng.integers(0, 18, 3)]
        inside = ids != 0
        grown = ndi.maximum_filter(inside.astype(np.uint8), size=[2 * x + 1 for x in h]).astype(bool)
        lo = int(info.min) if info.bits <= 16 else -300
        nbins = (int(info.max) - lo + 1) if info.bits <= 16 else 601
        want = np.bincount(vals[grown & ~inside].astype(np.int64) - lo, minlength=nbins)
        got = _kernels.shell_histogram(ids, vals, h[0], h[1], h[2], lo, nbins)
        np.testing.assert_array_equal(got, want)


def _shell_oracle(ids: np.ndarray, vals: np.ndarray, h: list[int], lo: int, nbins: int) -> np.ndarray:
    """``shell_histogram``'s definition: scipy's box maximum filter of ``ids != 0``, minus ``ids != 0``,
    ``np.bincount`` of the values there."""
    inside = ids != 0
    grown = ndi.maximum_filter(inside.astype(np.uint8), size=[2 * x + 1 for x in h]).astype(bool)
    return np.bincount(vals[grown & ~inside].astype(np.int64) - lo, minlength=nbins)


def _check_shell(ids: np.ndarray, vals: np.ndarray, h: list[int]) -> None:
    """``shell_histogram`` and ``shell_histogram_range`` against :func:`_shell_oracle`."""
    info = np.iinfo(vals.dtype)
    lo = int(info.min) if info.bits <= 16 else int(vals.min(initial=0))
    nbins = (int(info.max) - lo + 1) if info.bits <= 16 else int(vals.max(initial=0)) - lo + 1
    want = _shell_oracle(ids, vals, h, lo, nbins)
    np.testing.assert_array_equal(_kernels.shell_histogram(ids, vals, h[0], h[1], h[2], lo, nbins), want)
    first, counts = _kernels.shell_histogram_range(ids, vals, h[0], h[1], h[2], lo, nbins)
    nz = np.flatnonzero(want)
    if nz.size == 0:
        assert (first, counts.shape) == (0, (0,))
    else:
        assert counts.dtype == np.int64 and first == nz[0]
        np.testing.assert_array_equal(counts, want[nz[0] : nz[-1] + 1])


@pytest.mark.parametrize("seed", range(4))
def test_shell_histogram_wide_rows_and_strides(seed: int) -> None:
    """Rows of several 64-bit words (runs across word ends, touching the box ends), pads of more
    than a word or than the box, empty rows and planes, every value dtype of an image, ids of
    uint8/uint16/uint32 (any non-zero value), and views with strided last axes (every other voxel,
    reversed), against the scipy/numpy definition."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(40):
        shape = (int(rng.integers(1, 7)), int(rng.integers(1, 12)), int(rng.integers(1, 300)))
        ids_dtype = rng.choice([np.uint8, np.uint16, np.uint32])
        val_dtype = rng.choice([np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32])
        ids = np.zeros(shape, ids_dtype)
        for _run in range(int(rng.integers(0, 3 * shape[0] * shape[1] + 1))):  # runs along rows
            i, j = int(rng.integers(shape[0])), int(rng.integers(shape[1]))
            a = int(rng.integers(-20, shape[2]))
            b = a + int(rng.integers(1, 150))
            ids[i, j, max(a, 0) : max(b, 0)] = rng.integers(1, np.iinfo(ids_dtype).max, dtype=np.int64)
        if rng.random() < 0.3:
            ids[int(rng.integers(shape[0]))] = 0  # an empty plane
        ids[rng.random(shape) < 0.02] = 0
        info = np.iinfo(val_dtype)
        vmin, vmax = max(int(info.min), -(1 << 17)), min(int(info.max), 1 << 17)  # 32-bit: bins for 2**18
        vals = rng.integers(vmin, vmax + 1, shape, dtype=np.int64).astype(val_dtype)
        how = rng.integers(4)
        if how == 1:  # every other voxel along the last axis
            ids = np.repeat(ids, 2, axis=2)[:, :, ::2]
            vals = np.repeat(vals, 2, axis=2)[:, :, ::2]
        elif how == 2:  # a box of a Fortran-ordered volume as it is: its last axis the slowest
            ids = np.asfortranarray(np.pad(ids, 2))[2:-2, 2:-2, 2:-2]
            vals = np.asfortranarray(np.pad(vals, 2))[2:-2, 2:-2, 2:-2]
        elif how == 3:  # a box of a bigger C-contiguous volume (rows strided, last axis contiguous)
            ids = np.pad(ids, ((1, 1), (2, 2), (5, 9)))[1:-1, 2:-2, 5:-9]
            vals = np.pad(vals, ((1, 1), (2, 2), (5, 9)))[1:-1, 2:-2, 5:-9]
        h = [int(rng.choice([0, 1, 2, 5, 20])), int(rng.choice([0, 1, 3, 7, 30]))]
        h.append(int(rng.choice([0, 1, 5, 63, 64, 70, 400])))
        _check_shell(ids, vals, h)


def test_shell_histogram_edge_cases() -> None:
    """No inside voxel (no shell), all inside (no shell), one voxel, a run over a whole row, rows
    longer than 64 words (4096 voxels), reversed last axes, zero-sized boxes."""
    rng = np.random.default_rng(7)
    vals = rng.integers(0, 4000, (3, 4, 200)).astype(np.uint16)
    _check_shell(np.zeros((3, 4, 200), np.uint8), vals, [1, 5, 5])
    _check_shell(np.ones((3, 4, 200), np.uint8), vals, [1, 5, 5])
    one = np.zeros((3, 4, 200), np.uint16)
    one[1, 2, 64] = 9
    for h in ([0, 0, 0], [0, 0, 1], [1, 1, 63], [2, 3, 64], [0, 0, 500]):
        _check_shell(one, vals, h)
    row = np.zeros((3, 4, 200), np.uint8)
    row[0, 0, :] = 255
    _check_shell(row, vals, [1, 1, 1])
    _check_shell(row[:, :, ::-1], vals[:, :, ::-1], [1, 2, 3])
    long_ids = np.zeros((2, 3, 4200), np.uint8)
    long_ids[0, 1, [0, 63, 64, 1000, 4100, 4199]] = 1
    long_vals = rng.integers(-1000, 1000, long_ids.shape).astype(np.int16)
    for h in ([0, 0, 1], [1, 1, 70], [0, 1, 5000]):
        _check_shell(long_ids, long_vals, h)
    for shape in ((0, 3, 4), (2, 0, 4), (2, 3, 0)):
        _check_shell(np.ones(shape, np.uint8), np.ones(shape, np.uint16), [1, 1, 1])
