"""The edge rule's rings in one compiled pass (issue 13 Deliver 6, sixth pass) give what the exact
distance transform per component gave, and the sort-based statistics what numpy's give.

``_kernels.edge_rings`` dilates each component's runs along the last axis by the rows of the 3 mm
ball (``component_rules.ring_rows``, from the grid offsets ``ring_offsets``); the rule used to take
``0 < distance_transform_edt(~component) <= 3 mm`` on a box around each component. Both are
compared here with that definition on whole
arrays (random blobs, components on the array's faces, one-voxel components, anisotropic and
oblique-slab spacings), and ``component_rules`` with a plain per-component loop over
``scipy.ndimage.distance_transform_edt``. ``grouped_sort`` (now an unstable value sort and a radix
group sort) and ``nanmedian_axis`` are held to ``np.lexsort`` and ``np.nanmedian``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from box_voxels import BoxVoxels
from scipy import ndimage as ndi

from spinemri._native import kernels as _kernels
from spinemri.arrays.grouped import grouped_sort, nanmedian_axis
from spinemri.segmentation.component_rules import (
    DEEP_RING_FRACTION,
    EDGE_RING_MM,
    FILL_FRACTION,
    STRONG_STEP_SD,
    component_rules,
    ring_offsets,
    ring_rows,
)

SPACINGS = [(1.0, 1.0, 1.0), (4.0, 0.6, 0.6), (0.6, 0.6, 4.0), (3.3, 0.9, 1.2), (0.5, 1.5, 1.0)]


def _edt_ring(comp: np.ndarray, lab: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """The definition: labelled voxels at a distance in (0, EDGE_RING_MM] of the component."""
    d = np.asarray(ndi.distance_transform_edt(~comp, sampling=spacing))
    return np.flatnonzero((d > 0) & (d <= EDGE_RING_MM + 1e-9) & (lab > 0))


def _random_components(rng: np.random.Generator, shape: tuple[int, int, int], n: int) -> list[np.ndarray]:
    comps = []
    for c in range(n):
        blob = np.zeros(shape, bool)
        if c == 0:  # one voxel on a corner of the array
            blob[0, 0, 0] = True
        elif c == 1:  # a slab along a face
            blob[:, -1, 2:5] = True
        else:
            centre = [rng.integers(0, s) for s in shape]
            blob[tuple(centre)] = True
            blob = ndi.binary_dilation(blob, iterations=int(rng.integers(1, 4)))
            blob &= rng.random(shape) < 0.8  # ragged, with holes
            if not blob.any():
                blob[tuple(centre)] = True
        comps.append(blob)
    return comps


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("seed", range(4))
def test_edge_rings_equal_the_distance_transform_ring(spacing: tuple[float, float, float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (9, 23, 17)
    lab = (rng.random(shape) < 0.85).astype(np.uint8) * rng.integers(1, 4, shape).astype(np.uint8)
    deep = (rng.random(shape) < 0.5).astype(np.uint8)
    comps = _random_components(rng, shape, 6)
    idx = [np.flatnonzero(c) for c in comps]
    bounds = np.append(0, np.cumsum([i.size for i in idx])).astype(np.intp)
    ring, is_deep, rb = _kernels.edge_rings(lab, deep, np.concatenate(idx), bounds, ring_rows(spacing))
    ring_nd, _, rb_nd = _kernels.edge_rings(
        lab, np.zeros((0, 0, 0), np.uint8), np.concatenate(idx), bounds, ring_rows(spacing)
    )
    assert rb.tolist() == rb_nd.tolist()
    for g, comp in enumerate(comps):
        want = _edt_ring(comp, lab, spacing)
        got = ring[rb[g] : rb[g + 1]]
        assert got.tolist() == want.tolist(), (g, spacing)
        assert is_deep[rb[g] : rb[g + 1]].tolist() == deep.ravel()[want].tolist()
        assert ring_nd[rb_nd[g] : rb_nd[g + 1]].tolist() == want.tolist()
    none = _kernels.edge_rings(lab, deep, np.zeros(0, np.intp), np.zeros(1, np.intp), ring_rows(spacing))
    assert none[0].size == 0 and none[2].tolist() == [0]


@pytest.mark.parametrize("spacing", SPACINGS)
def test_ring_offsets_are_the_ball_of_the_distance_transform(spacing: tuple[float, float, float]) -> None:
    half = [int(np.ceil(EDGE_RING_MM / s)) + 2 for s in spacing]
    shape = tuple(2 * h + 1 for h in half)
    one = np.zeros(shape, bool)
    one[tuple(half)] = True
    d = np.asarray(ndi.distance_transform_edt(~one, sampling=spacing))
    want = sorted(map(tuple, np.argwhere((d > 0) & (d <= EDGE_RING_MM + 1e-9)) - np.array(half)))
    assert sorted(map(tuple, ring_offsets(spacing).tolist())) == [tuple(int(x) for x in w) for w in want]
    # its rows along the last axis hold the same offsets (and the voxel itself)
    from_rows = {(d0, d1, d2) for d0, d1, w in ring_rows(spacing).tolist() for d2 in range(-w, w + 1)}
    assert from_rows == {tuple(int(x) for x in w) for w in want} | {(0, 0, 0)}


def _rule_oracle(idx, cid, vox, spacing, level, sign, plateau_of, min_step, interior, sd):  # type: ignore[no-untyped-def]
    """The edge rule as a per-component loop over whole-array distance transforms (module docstring
    of component_rules)."""
    keep = np.ones(idx.size, bool)
    flat_v = vox.vertebrae.ravel()
    n_int = np.bincount(flat_v[interior.ravel()], minlength=int(flat_v.max()) + 1)
    for c in np.unique(cid):
        sel = np.flatnonzero(cid == c)
        filled = np.bincount(flat_v[idx[sel]][interior.ravel()[idx[sel]]], minlength=n_int.size)
        if np.any((n_int > 0) & (filled >= FILL_FRACTION * n_int)):
            continue
        comp = np.zeros(vox.shape, bool)
        comp.ravel()[idx[sel]] = True
        ring = _edt_ring(comp, vox.vertebrae, spacing)
        if vox.deep is not None:
            deep_ring = ring[vox.deep.ravel()[ring]]
            if deep_ring.size >= DEEP_RING_FRACTION * ring.size:
                ring = deep_ring
        plateau = float(plateau_of[c])
        if ring.size == 0 or plateau <= 0:
            continue
        step = plateau - float(np.median(sign * (vox.corrected(ring) - level[flat_v[ring]])))
        if step / plateau >= min_step - 1e-9:
            continue
        main = int(np.bincount(flat_v[idx[sel]]).argmax())
        if sd[main] > 0 and step >= STRONG_STEP_SD * sd[main] - 1e-9:
            continue
        keep[sel] = False
    return keep


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("with_deep", [False, True])
def test_component_rules_equal_the_per_component_distance_transform(seed: int, with_deep: bool) -> None:
    rng = np.random.default_rng(100 + seed)
    shape = (8, 40, 30)
    spacing = SPACINGS[seed % len(SPACINGS)]
    vert = np.zeros(shape, np.uint8)
    vert[:, 2:18, 2:-2], vert[:, 21:38, 2:-2] = 1, 2
    values = rng.normal(100.0, 5.0, shape)
    comps = _random_components(rng, shape, 7)
    # a component whose surroundings carry its contrast (no step: dropped), the others random
    ramp = np.zeros(shape, bool)
    ramp[2:5, 5:9, 5:9] = True
    values[ndi.binary_dilation(ramp, iterations=4)] += 20.0
    values[ramp] += 20.0
    idx_list, cid_list = [np.flatnonzero(ramp)], [np.full(int(ramp.sum()), 8, np.intp)]
    taken = ndi.binary_dilation(ramp, iterations=4)
    for c, comp in enumerate(comps):
        comp &= (vert > 0) & ~taken
        taken |= comp
        contrast = 60.0 if c % 2 else 20.0
        values[ndi.binary_dilation(comp, iterations=1 + c % 2) & (c % 3 == 0)] += contrast  # a ramp
        values[comp] += contrast
        idx_list.append(np.flatnonzero(comp))
        cid_list.append(np.full(idx_list[-1].size, c + 1, np.intp))
    if seed % 2:  # a lesion filling a whole vertebra: kept without the test
        full = np.flatnonzero((vert == 2) & ~taken)
        idx_list.append(full)
        cid_list.append(np.full(full.size, 9, np.intp))
    idx = np.concatenate(idx_list)
    cid = np.concatenate(cid_list)
    o = np.argsort(idx)
    idx, cid = idx[o], cid[o]
    deep = (rng.random(shape) < 0.6) if with_deep else None
    vox = BoxVoxels(vert, values, deep)
    level = np.array([0.0, 100.0, 100.0])
    plateau = np.zeros(10)
    for c in np.unique(cid):
        plateau[c] = float(np.median(values.ravel()[idx[cid == c]])) - 100.0
    plateau[3] = -1.0  # no positive plateau: kept
    sd = np.array([0.0, 5.0, 5.0])
    p0 = np.pad(vert, 1)
    lo = ndi.minimum_filter(p0, size=3, mode="constant")[1:-1, 1:-1, 1:-1]
    hi = ndi.maximum_filter(p0, size=3, mode="constant")[1:-1, 1:-1, 1:-1]
    interior = (vert > 0) & (lo == vert) & (hi == vert)
    want = _rule_oracle(idx, cid, vox, spacing, level, 1.0, plateau, 0.8, interior, sd)
    got = component_rules(idx, cid, vox, spacing, level, 1.0, plateau, 0.8, interior, sd=sd)
    counts = np.bincount(vert[interior], minlength=3)
    fast = component_rules(
        idx, cid, vox, spacing, level, 1.0, plateau, 0.8, sd=sd, interior_counts=counts,
        in_interior=interior.ravel()[idx],
    )  # fmt: skip
    assert got.tolist() == want.tolist()
    assert fast.tolist() == want.tolist()
    assert want.any() and (~want).any()  # kept and dropped components both occur
    assert not want[cid == 8].any()


def test_component_rules_drop_and_keep_over_the_seeds() -> None:
    """The comparison above is not vacuous: over its seeds some components are dropped, some kept."""
    outcomes = set()
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        shape = (8, 40, 30)
        vert = np.zeros(shape, np.uint8)
        vert[:, 2:18, 2:-2], vert[:, 21:38, 2:-2] = 1, 2
        values = rng.normal(100.0, 5.0, shape)
        comp = np.zeros(shape, bool)
        comp[3:6, 8:12, 10:14] = True
        values[comp] += 60.0
        if seed % 2:  # its surroundings carry its contrast: no step
            values[ndi.binary_dilation(comp, iterations=3)] += 60.0
        idx = np.flatnonzero(comp)
        cid = np.ones(idx.size, np.intp)
        plateau = np.array([0.0, float(np.median(values[comp])) - 100.0])
        keep = component_rules(
            idx, cid, BoxVoxels(vert, values, None), (1.0, 1.0, 1.0), np.array([0.0, 100.0, 100.0]), 1.0,
            plateau, 0.8, sd=np.array([0.0, 50.0, 50.0]),
        )  # fmt: skip
        outcomes.add(bool(keep.all()))
        assert keep.all() == (seed % 2 == 0)
    assert outcomes == {True, False}


@pytest.mark.parametrize("n_groups", [1, 5, 300, 70_000])
def test_grouped_sort_equals_lexsort(n_groups: int) -> None:
    rng = np.random.default_rng(n_groups)
    for _ in range(20):
        n = int(rng.integers(0, 400))
        values = rng.integers(-5, 5, n).astype(np.float64)  # many ties
        values[rng.random(n) < 0.1] = np.nan
        groups = rng.integers(0, n_groups, n)
        s, starts, counts = grouped_sort(values, groups, n_groups)
        want = values[np.lexsort((values, groups))]
        assert np.array_equal(s, want, equal_nan=True)
        assert counts.tolist() == np.bincount(groups, minlength=n_groups).tolist()
        assert starts.tolist() == (np.cumsum(counts) - counts).tolist()


@pytest.mark.parametrize("shape,axis", [((24, 3), 0), ((24, 6, 3), 1), ((1, 4), 0), ((5, 7), 1), ((0, 3), 0)])
def test_nanmedian_axis_equals_numpy(shape: tuple[int, ...], axis: int) -> None:
    rng = np.random.default_rng(len(shape) * 10 + axis)
    a = rng.normal(1.0, 0.1, shape)
    a[rng.random(shape) < 0.3] = np.nan
    if a.ndim == 2 and a.shape[1] > 1 and a.shape[0]:
        a[:, -1] = np.nan  # an all-NaN lane
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(a, axis=axis)
    assert np.array_equal(nanmedian_axis(a, axis), want, equal_nan=True)


@pytest.mark.parametrize("kind", ["half-integer", "float", "ties"])
def test_top_and_plateau_equal_the_quantile_and_median_definitions(kind: str) -> None:
    """One sort gives what ``grouped_quantile`` and ``grouped_medians`` of the upper part give."""
    from spinemri.arrays.grouped import grouped_medians, grouped_quantile
    from spinemri.segmentation.component_rules import PLATEAU_QUANTILE, top_and_plateau

    rng = np.random.default_rng(len(kind))
    for _ in range(100):
        n = int(rng.integers(1, 300))
        n_c = int(rng.integers(1, 12))
        cid = rng.integers(0, n_c, n).astype(np.intp)  # some ids empty
        if kind == "half-integer":
            contrast = rng.integers(-40, 200, n) / 2.0
        elif kind == "float":
            contrast = rng.normal(30.0, 25.0, n)
        else:
            contrast = rng.integers(-2, 3, n).astype(np.float64)
        top = grouped_quantile(contrast, cid, n_c, PLATEAU_QUANTILE)
        upper = contrast >= 0.75 * top[cid]
        plateau = grouped_medians(contrast[upper], cid[upper], n_c)
        plateau = np.where(np.isnan(plateau), top, plateau)
        _, _, counts, got_top, got_plateau = top_and_plateau(contrast, cid, n_c)
        assert np.array_equal(got_top, top, equal_nan=True)
        assert np.array_equal(got_plateau, plateau, equal_nan=True)
        assert counts.tolist() == np.bincount(cid, minlength=n_c).tolist()


def _grow_oracle(lab, values, code, offset, idx, cut, sign):  # type: ignore[no-untyped-def]
    """The 26-neighbours of ``idx`` (inside the array, not in ``idx``), with its label, whose
    corrected value is beyond the cut of a voxel of ``idx`` next to them."""
    shape = lab.shape
    inside = set(idx.tolist())
    found = set()
    for x, c in zip(idx.tolist(), cut.tolist(), strict=True):
        p = np.unravel_index(x, shape)
        for d in np.ndindex(3, 3, 3):
            q = tuple(int(a) + int(b) - 1 for a, b in zip(p, d, strict=True))
            if any(v < 0 or v >= s for v, s in zip(q, shape, strict=True)):
                continue
            y = int(np.ravel_multi_index(q, shape))
            if y in inside or lab[q] != lab[p]:
                continue
            corr = float(values[q]) - offset[4 * int(lab[q]) + (int(code[q]) & 3)]
            if (corr - c) * sign > 0:
                found.add(y)
    return found


@pytest.mark.parametrize("seed", range(5))
def test_grow_groups_grows_each_group_on_its_own(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (6, 9, 11)
    lab = rng.integers(0, 3, shape).astype(np.uint8)
    values = rng.integers(0, 100, shape).astype(np.int16)
    code = rng.integers(0, 16, shape).astype(np.uint8)
    offset = rng.normal(0.0, 5.0, 4 * 3)
    n_g = int(rng.integers(1, 5))
    groups = [np.sort(rng.choice(lab.size, int(rng.integers(1, 30)), replace=False)) for _ in range(n_g)]
    cuts = [rng.uniform(20, 80, g.size) for g in groups]
    sign = 1.0 if seed % 2 else -1.0
    idx = np.concatenate(groups).astype(np.intp)
    cut = np.concatenate(cuts)
    bounds = np.append(0, np.cumsum([g.size for g in groups])).astype(np.intp)
    f_idx, f_group = _kernels.grow_groups(lab, values, code, offset, idx, cut, sign, bounds)
    for g, (gi, gc) in enumerate(zip(groups, cuts, strict=True)):
        got = f_idx[f_group == g].tolist()
        assert len(got) == len(set(got))  # each once per group
        assert set(got) == _grow_oracle(lab, values, code, offset, gi, gc, sign)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64, np.float64])
@pytest.mark.parametrize("bright", [True, False])
def test_candidates_with_the_block_bound_equal_the_full_scan(dtype: type, bright: bool) -> None:
    """Skipping the blocks with no value beyond the bound, and the thresholds as integers, change
    nothing: thresholds inside and outside the type's range, NaN and infinite thresholds, all-NaN,
    blocks cut by the end of the array."""
    from spinemri.segmentation.candidates import candidate_bound, candidate_thresholds

    rng = np.random.default_rng(int(np.dtype(dtype).itemsize) * 2 + bright)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    lo, hi = (max(int(info.min), -500), min(int(info.max), 500)) if info else (-500, 500)
    for trial in range(60):
        shape = tuple(int(x) for x in rng.integers(1, 20, 3))
        lab = rng.integers(0, 5, shape).astype(np.uint8)
        values = rng.integers(lo, hi + 1, shape).astype(dtype)
        if info is None:
            values = values + rng.random(shape)
        code = rng.integers(0, 16, shape).astype(np.uint8)
        thr = rng.uniform(lo - 50, hi + 50, 5)
        if trial % 4 == 0:
            thr[rng.random(5) < 0.5] = np.nan
        if trial % 9 == 0:
            thr[:] = np.nan
        if trial % 7 == 0 and info is not None:  # beyond the type's range
            thr[1:] = float(info.max) + 10.0 if bright else float(info.min) - 10.0
        seed_thr = thr + rng.uniform(0, 30, 5)
        args = (lab, values, code, thr, seed_thr, bright, lab.size)
        if trial % 11 == 0:  # infinite thresholds: every value beyond one, none beyond the other
            thr[1], thr[2] = -np.inf, np.inf
        full = _kernels.candidates(*args)
        fast = _kernels.candidates(*args, *candidate_bound(thr[1:], values.dtype, bright))
        assert full[0].tolist() == fast[0].tolist() and full[1].tolist() == fast[1].tolist()
        ithr = candidate_thresholds(thr, values.dtype, bright)
        assert (ithr is None) == (info is None or np.dtype(dtype).itemsize == 8)
        as_int = _kernels.candidates(*args, *candidate_bound(thr[1:], values.dtype, bright), ithr)
        assert full[0].tolist() == as_int[0].tolist() and full[1].tolist() == as_int[1].tolist()
        with np.errstate(invalid="ignore"):
            t = thr[lab]
            want = (lab > 0) & ((values > t) if bright else (values < t))
        assert full[0].tolist() == np.flatnonzero(want).tolist()


@pytest.mark.parametrize("density", [0.01, 0.6])  # the run union-find, and cc3d on the voxels' box
def test_label_voxels_with_codes_equal_cc3d_multilabel(density: float) -> None:
    import cc3d

    from spinemri.segmentation.voxel_sets import label_voxels

    rng = np.random.default_rng(int(density * 100))
    for _ in range(40):
        shape = tuple(int(x) for x in rng.integers(2, 30, 3))
        labels = rng.integers(1, 5, shape) * (rng.random(shape) < density)
        idx = np.flatnonzero(labels)
        if idx.size == 0:
            continue
        codes = labels.ravel()[idx].astype(np.int64) * 70_000  # wide codes: relabelled small for cc3d
        for conn in (6, 26):
            want, n = cc3d.connected_components(labels, connectivity=conn, return_N=True)
            got, n_got = label_voxels(idx, shape, conn, codes)
            assert n_got == n
            np.testing.assert_array_equal(got, want.ravel()[idx])
