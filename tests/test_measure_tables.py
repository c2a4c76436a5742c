"""The faster paths of measure's tables and checks, each held to the plain definition it replaced.

* :func:`spinemri.frames.frames` against ``pd.DataFrame`` of the same columns;
* :func:`spinemri.metrics.compute_metrics` with ``level_check`` / ``plausibility`` /
  ``truncated`` against its default frames with those columns set afterwards;
* :func:`spinemri.metrics.truncated_vertebrae` against the face voxels' labels (``np.unique``);
* :func:`spinemri.plausibility.check_label_shapes` against the loop with ``np.median`` of the
  other vertebrae;
* :func:`spinemri.plausibility.shapes_from_moments` against the loop over groups;
* the label moments' means and covariances against the element-wise Python-integer loop;
* the axis-aligned orientation against nibabel's ``io_orientation``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from spinemri.anatomy_check import label_shapes as anatomy_label_shapes
from spinemri.anatomy_check import level_heights, merge_shapes
from spinemri.arrays.moments import LabelMoments, _finish, label_moments
from spinemri.frames import frames, patient_frame
from spinemri.levels import LEVELS, region_of
from spinemri.metrics import LESION_COLUMNS, PATIENT_COLUMNS, compute_metrics, truncated_vertebrae
from spinemri.plausibility import (
    RELATIVE_HEIGHT,
    SHAPE_LIMITS,
    LabelShapes,
    check_label_shapes,
    shapes_from_moments,
)
from spinemri.volume import _orientation


def _assert_same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_dtype=True, check_exact=True)
    assert list(a.columns) == list(b.columns)
    assert [str(d) for d in a.dtypes] == [str(d) for d in b.dtypes]
    assert type(a.index) is type(b.index)


# --- frames -------------------------------------------------------------------------------------


def test_frames_equal_dataframe_of_the_same_columns(rng: np.random.Generator) -> None:
    for n in (1, 2, 7, 24):
        vert = {
            "patient_id": ["P-1"] * n,
            "level": [LEVELS[int(i)] for i in rng.integers(0, len(LEVELS), n)],
            "label": [int(x) for x in rng.integers(1, 30, n)],
            "voxels": rng.integers(0, 1000, n).astype(np.int64),
            "ratio": rng.random(n),
            "flag": rng.random(n) > 0.5,
            "note": [f"x{i};{i * 2}" for i in range(n)],
            "const": "ok",  # one text for every row
            "u8": rng.integers(0, 255, n).astype(np.uint8),
            "nan": np.full(n, np.nan),
        }
        names = list(vert)[::-1]  # another order than the dict's
        m = int(rng.integers(1, 5))
        les = {"patient_id": "P-1", "level": ["L1"] * m, "size": np.arange(m, dtype=np.int64)}
        got = frames((vert, names, n), (les, tuple(les), m))
        _assert_same_frame(got[0], pd.DataFrame(vert, columns=names))
        _assert_same_frame(got[1], pd.DataFrame(les, columns=list(les)))


def test_frames_without_rows_and_mixed_lists_as_pandas_infers() -> None:
    empty = {"a": [], "b": np.zeros(0), "c": "ok"}
    mixed = {"a": ["x", 1], "b": [None, "y"], "c": ["p", "q"]}
    got = frames((empty, ("a", "b", "c"), 0), (mixed, ("a", "b", "c"), 2))
    _assert_same_frame(got[0], pd.DataFrame(empty, columns=["a", "b", "c"]))
    _assert_same_frame(got[1], pd.DataFrame(mixed, columns=["a", "b", "c"]))


def test_frames_refuse_a_column_of_another_length_as_pandas_does() -> None:
    cols = {"a": ["x", "y", "z"], "b": ["p", "q"], "c": np.arange(2)}
    with pytest.raises(ValueError):
        pd.DataFrame(cols)
    with pytest.raises(ValueError):
        frames((cols, ("a", "b", "c"), 2))


def test_patient_frame_gives_the_dtypes_of_one_value_lists() -> None:
    row = {"s": "P", "i": 3, "big": 1 << 70, "b": True, "f": 0.25, "none": None, "z": 0, "neg": -5}
    names = tuple(row)
    _assert_same_frame(frames(patient_frame(row, names))[0], pd.DataFrame({k: [v] for k, v in row.items()}))


# --- compute_metrics with its final columns -------------------------------------------------


def _metrics_case(rng: np.random.Generator, n_lesions: int) -> dict[str, object]:
    shape = (14, 16, 12)
    vert = np.zeros(shape, np.uint8)
    vert[0:4, 2:14, 1:11] = 1  # touches i = 0
    vert[5:9, 2:14, 2:10] = 2
    vert[10:14, 3:13, 2:12] = 3  # touches i = 13 and k = 11
    img = (100 + rng.integers(0, 50, shape)).astype(np.uint16)
    les = np.zeros(shape, np.uint8)
    owner = [0]
    for lid in range(1, n_lesions + 1):
        v = int(rng.integers(1, 4))
        inside = np.argwhere(vert == v)
        c = inside[int(rng.integers(0, len(inside)))]
        sl = tuple(slice(int(x), int(x) + 2) for x in c)
        les[sl] = np.where(vert[sl] == v, lid, les[sl])
        owner.append(v)
    present = np.unique(les[les > 0])
    les = np.searchsorted(np.concatenate([[0], present]), les).astype(np.uint8)  # ids 1..N again
    owner = [0] + [owner[int(x)] for x in present]
    img[les > 0] += 300
    return {
        "intensity": img,
        "vertebrae": vert,
        "levels": ["T12", "L1", "L2"],
        "labels": [[19], [20, 28], [21]],
        "lesion_ids": les,
        "lesion_vertebra": np.array(owner),
        "thresholds": np.array([np.nan, 150.0, 160.0, 170.0]),
        "reference_median": np.array([np.nan, 100.0, 110.0, 120.0]),
        "reference_mad": np.array([np.nan, 2.0, 2.0, 3.0]),
        "affine": np.diag([0.8, 0.7, 3.0, 1.0]),
        "lr_axis": 0,
    }


@pytest.mark.parametrize("n_lesions", [0, 1, 6])
@pytest.mark.parametrize("order", ["C", "F"])
def test_final_columns_equal_the_columns_set_afterwards(
    rng: np.random.Generator, n_lesions: int, order: str
) -> None:
    c = _metrics_case(rng, n_lesions)
    for key in ("intensity", "vertebrae", "lesion_ids"):
        c[key] = np.asarray(c[key], order=order)  # type: ignore[call-overload]
    old = compute_metrics(**c, patient_id="P")  # type: ignore[arg-type]
    flags = ["ok", "small_volume;thin", "narrow"]
    old.vertebrae["level_check"] = "contradicted: label order runs against the anatomy"
    old.vertebrae["plausibility"] = flags
    old.patient["plausibility"] = "marrow_bright;labels(L1,L2)"
    new = compute_metrics(
        **c,  # type: ignore[arg-type]
        patient_id="P",
        truncated=truncated_vertebrae(c["vertebrae"], 3),  # type: ignore[arg-type]
        level_check="contradicted: label order runs against the anatomy",
        plausibility=flags,
        patient_plausibility="marrow_bright;labels(L1,L2)",
    )
    _assert_same_frame(new.vertebrae, old.vertebrae)
    _assert_same_frame(new.lesions, old.lesions)
    _assert_same_frame(new.patient, old.patient)
    np.testing.assert_array_equal(new.lesion_ids, old.lesion_ids)
    assert list(new.lesions.columns) == list(LESION_COLUMNS)
    assert list(new.patient.columns) == list(PATIENT_COLUMNS)
    # the lesion maxima (by np.maximum.at) are the maxima of each lesion's voxels
    for _, row in new.lesions.iterrows():
        sel = new.lesion_ids == row["lesion_id"]
        assert row["max_intensity"] == float(np.asarray(c["intensity"])[sel].max())
    # a level check per vertebra
    per = compute_metrics(**c, level_check=["ok", "not checked", "ok"])  # type: ignore[arg-type]
    assert per.vertebrae["level_check"].tolist() == ["ok", "not checked", "ok"]


def test_truncated_vertebrae_are_the_labels_on_the_faces(rng: np.random.Generator) -> None:
    for _ in range(20):
        shape = tuple(int(x) for x in rng.integers(3, 9, 3))
        vert = (rng.random(shape) < 0.05) * rng.integers(1, 6, shape)
        vert = vert.astype(np.uint8)
        faces = np.concatenate(
            [np.take(vert, idx, axis=ax).ravel() for ax in range(3) for idx in (0, shape[ax] - 1)]
        )
        want = np.zeros(6, dtype=bool)
        want[np.unique(faces)] = True
        want[0] = False
        np.testing.assert_array_equal(truncated_vertebrae(vert, 5), want)
        np.testing.assert_array_equal(truncated_vertebrae(np.asfortranarray(vert), 5), want)


# --- check_label_shapes and shapes_from_moments ---------------------------------------------------


def _label_shapes_loop(shapes: LabelShapes, levels: Sequence[str], truncated: Sequence[bool]) -> list[str]:
    """The definition: the loop with ``np.median`` of the other checked vertebrae of the region."""
    n = len(levels)
    regions = [region_of(lv) for lv in levels]
    flags = []
    for i, (lv, region) in enumerate(zip(levels, regions, strict=True)):
        limits = SHAPE_LIMITS.get(region)
        if limits is None or truncated[i] or shapes.volume_mm3[i] <= 0:
            flags.append("ok")
            continue
        min_vol, min_height, min_area = limits
        reasons = []
        if shapes.volume_mm3[i] < min_vol:
            reasons.append("small_volume")
        others = [
            shapes.height_mm[j]
            for j in range(n)
            if j != i and regions[j] == region and not truncated[j] and shapes.volume_mm3[j] > 0
        ]
        relative_thin = len(others) >= 2 and shapes.height_mm[i] < RELATIVE_HEIGHT * float(np.median(others))
        if lv != "C1" and (shapes.height_mm[i] < min_height or relative_thin):
            reasons.append("thin")
        if shapes.area_mm2[i] < min_area:
            reasons.append("narrow")
        flags.append(";".join(reasons) or "ok")
    return flags


def test_check_label_shapes_equals_the_median_loop(rng: np.random.Generator) -> None:
    pool = [lv for lv in LEVELS]
    for trial in range(400):
        n = int(rng.integers(1, 26))
        levels = [pool[int(i)] for i in rng.integers(0, len(pool), n)]
        if trial % 4 == 0:
            levels = [
                pool[int(i)] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))
            ]
            n = len(levels)
        height = rng.choice([4.0, 9.0, 12.0, 20.0, 25.0], n) if trial % 3 == 0 else rng.uniform(2, 40, n)
        vol = rng.uniform(500, 60000, n)
        vol[rng.random(n) < 0.1] = 0.0  # no voxels
        if trial % 7 == 0:
            height[rng.random(n) < 0.2] = np.nan
        area = np.divide(vol, height, out=np.zeros(n), where=height > 0)
        shapes = LabelShapes(vol, height, rng.uniform(5, 50, n), rng.uniform(5, 50, n), area)
        trunc = [bool(x) for x in rng.random(n) < 0.15]
        assert check_label_shapes(shapes, levels, trunc) == _label_shapes_loop(shapes, levels, trunc)
        assert check_label_shapes(shapes, levels) == _label_shapes_loop(shapes, levels, [False] * n)


def _shapes_loop(moments: LabelMoments, groups: Sequence[Sequence[int]], affine: np.ndarray) -> LabelShapes:
    """The definition: one group at a time."""
    lin = np.asarray(affine, float)[:3, :3]
    voxel_mm3 = abs(float(np.linalg.det(lin)))
    one_voxel = np.abs(lin).sum(axis=1)
    n = len(groups)
    ext = np.zeros((3, n))
    vol = np.zeros(n)
    present = set(moments.labels.tolist())
    for idx, group in enumerate(groups):
        labs = [int(lb) for lb in group if int(lb) in present]
        if not labs:
            continue
        rows = moments.rows(labs)
        count = int(moments.counts[rows].sum())
        vol[idx] = count * voxel_mm3
        ext[:, idx] = moments.world_max[rows].max(axis=0) - moments.world_min[rows].min(axis=0) + one_voxel
    height = ext[2]
    area = np.divide(vol, height, out=np.zeros(n), where=height > 0)
    return LabelShapes(vol, height, ext[1], ext[0], area)


def test_shapes_from_moments_equals_the_group_loop(rng: np.random.Generator) -> None:
    affine = np.array([[0.0, 0.0, 1.1, 3.0], [-0.7, 0.1, 0.0, 1.0], [0.0, 0.9, 0.2, -4.0], [0, 0, 0, 1]])
    for _ in range(30):
        mask = (rng.random((9, 10, 8)) < 0.3) * rng.integers(1, 9, (9, 10, 8))
        mom = label_moments(mask.astype(np.uint8), affine)
        groups = [list(rng.integers(0, 12, int(rng.integers(0, 4)))) for _ in range(int(rng.integers(0, 8)))]
        groups.append([3, 3])  # a label twice counts twice, as in the loop
        want, got = _shapes_loop(mom, groups, affine), shapes_from_moments(mom, groups, affine)
        for f in ("volume_mm3", "height_mm", "ap_mm", "lr_mm", "area_mm2"):
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f))
    empty = label_moments(np.zeros((3, 3, 3), np.uint8), affine)
    got = shapes_from_moments(empty, [[1], []], affine)
    np.testing.assert_array_equal(got.volume_mm3, np.zeros(2))


# --- label moments: built as lists = the element-wise loop --------------------------------------------------


def _finish_python(
    cnt: np.ndarray, s1: np.ndarray, s2: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, ...]:
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    n = len(cnt)
    mean = np.zeros((n, 3))
    cov = np.zeros((n, 3, 3))
    for r, (c, a1, a2) in enumerate(zip(cnt.tolist(), s1.tolist(), s2.tolist(), strict=True)):
        for d in range(3):
            mean[r, d] = a1[d] / c + offset[d]
        for q, (p1, p2) in enumerate(pairs):
            cov[r, p1, p2] = cov[r, p2, p1] = (c * a2[q] - a1[p1] * a1[p2]) / (c * c)
    return mean, cov


@pytest.mark.parametrize("scale", [10, 1_000, 100_000, 3_000_000, 10**9])
def test_label_moment_means_and_covariances_equal_python_integers(
    rng: np.random.Generator, scale: int
) -> None:
    n = 30
    cnt = rng.integers(1, scale, n).astype(np.int64)
    size = int(rng.integers(2, 700))
    s1 = (cnt[:, None] * rng.uniform(0, size, (n, 3))).astype(np.int64)
    s2 = (cnt[:, None] * rng.uniform(0, size * size, (n, 6))).astype(np.int64)
    offset = rng.integers(0, 50, 3).astype(np.float64)
    present = np.arange(1, n + 1)
    lo, hi = np.zeros((n, 3)), np.ones((n, 3))
    got = _finish(present, cnt, s1, s2, offset, lo, hi)
    mean, cov = _finish_python(cnt, s1, s2, offset)
    np.testing.assert_array_equal(got.mean_ijk, mean)
    np.testing.assert_array_equal(got.cov_ijk, cov)


# --- anatomy: label shapes and heights unchanged --------------------------------------------------


def test_anatomy_label_shapes_and_heights_match_their_definitions(rng: np.random.Generator) -> None:
    affine = np.array([[0.0, 0.1, 1.1, 3.0], [-0.7, 0.0, 0.0, 1.0], [0.05, 0.9, 0.0, -4.0], [0, 0, 0, 1]])
    mask = np.zeros((12, 30, 10), np.uint8)
    for lab in range(1, 6):
        mask[2:10, 5 * lab - 3 : 5 * lab + 1, 1:9] = lab
    shapes = anatomy_label_shapes(mask, affine)
    lin = affine[:3, :3]
    for lab, s in shapes.items():
        ijk = np.argwhere(mask == lab).astype(np.float64)
        world = ijk @ lin.T + affine[:3, 3]
        np.testing.assert_allclose(s.centroid_mm, world.mean(axis=0), rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            np.reshape(s.cov_mm2, (3, 3)), np.cov(world.T, bias=True), rtol=0, atol=1e-9
        )
        assert isinstance(s.voxels, int) and s.voxels == len(ijk)
    levels = {lv: merge_shapes([shapes[i + 1]]) for i, lv in enumerate(["L1", "L2", "L3", "L4", "L5"])}
    heights = level_heights(levels)
    order = sorted(levels, key=lambda lv: -levels[lv].si_mm)
    cent = [np.asarray(levels[lv].centroid_mm) for lv in order]
    for n, lv in enumerate(order):
        axis = cent[max(n - 1, 0)] - cent[min(n + 1, len(order) - 1)]
        u = axis / np.linalg.norm(axis)
        var = float(u @ np.reshape(levels[lv].cov_mm2, (3, 3)) @ u)
        assert heights[lv] == float(np.sqrt(max(12.0 * var, 0.0)))


# --- orientation of axis-aligned affines --------------------------------------------------------


def test_axis_aligned_orientation_equals_nibabel(rng: np.random.Generator) -> None:
    from nibabel.orientations import io_orientation

    for _ in range(200):
        perm = rng.permutation(3)
        lin = np.zeros((3, 3))
        lin[perm, np.arange(3)] = rng.choice([-1.0, 1.0], 3) * rng.uniform(0.2, 6.0, 3)
        affine = np.eye(4)
        affine[:3, :3] = lin
        world, sign = _orientation(affine)
        ornt = io_orientation(affine)
        assert list(world) == [int(x) for x in ornt[:, 0]]
        assert list(sign) == [int(x) for x in ornt[:, 1]]
