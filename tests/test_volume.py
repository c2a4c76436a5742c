"""Volume: validation at construction and geometry helpers, on tiny hand-written arrays with exact answers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from spinemri.errors import GeometryError
from spinemri.volume import (
    Volume,
    axcodes,
    check_affine,
    grid_deltas,
    label_centroids_si,
    lr_axis,
    same_grid,
    voxel_spacing,
)

#: dcm2niix affine of dcm_qa_decubitus (sagittal T1, axcodes PSR), from its README.
PSR = np.array(
    [
        [0.0, 0.0, 4.8, -81.5998],
        [-1.015625, 0.0, 0.0, 130.0],
        [0.0, 1.015625, 0.0, -128.9844],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


# --- construction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, why",
    [
        (np.zeros((3, 3)), "3-D"),
        (np.zeros((2, 2, 2, 2)), "3-D"),
        (np.zeros((2, 0, 2)), "empty"),
        (np.array([["a"] * 2] * 2, dtype=object).reshape(2, 2, 1), "real numbers"),
        (np.full((2, 2, 2), "x"), "real numbers"),
        (np.zeros((2, 2, 2), dtype=complex), "real numbers"),
    ],
)
def test_bad_data_is_refused(data: np.ndarray, why: str) -> None:
    with pytest.raises(GeometryError, match=why):
        Volume(data, np.eye(4))


@pytest.mark.parametrize(
    "affine, why",
    [
        (np.eye(3), "4x4"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]), "last row"),
        (np.diag([1.0, 0.0, 1.0, 1.0]), "zero voxel size"),
        (np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "singular"),
        ([["a"] * 4] * 4, "numeric"),
    ],
)
def test_bad_affine_is_refused(affine: object, why: str) -> None:
    with pytest.raises(GeometryError, match=why):
        Volume(np.zeros((2, 2, 2)), affine)


def test_geometry_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        check_affine(np.zeros((4, 4)))


def test_bool_and_integer_data_are_accepted() -> None:
    assert Volume(np.ones((1, 1, 1), dtype=bool), np.eye(4)).data.dtype == np.bool_
    assert Volume(np.ones((1, 1, 1), dtype=np.int64), np.eye(4)).data.dtype == np.int64


# --- immutability ---------------------------------------------------------------------


def test_data_affine_and_meta_are_read_only_and_caller_array_untouched() -> None:
    arr = np.arange(8, dtype=np.int16).reshape(2, 2, 2)
    aff = np.eye(4)
    v = Volume(arr, aff, {"modality": "MR", "label_names": {1: "L1"}})
    with pytest.raises(ValueError):
        v.data[0, 0, 0] = 99
    with pytest.raises(ValueError):
        v.affine[0, 3] = 5.0
    with pytest.raises(TypeError):
        v.meta["modality"] = "CT"  # type: ignore[index]
    with pytest.raises(TypeError):
        v.meta["label_names"][2] = "L2"  # type: ignore[index]
    with pytest.raises(AttributeError):
        v.data = arr  # type: ignore[misc]
    # the caller's array keeps its flags, and later changes to it do not leak into the Volume
    assert arr.flags.writeable and aff.flags.writeable
    arr[0, 0, 0] = 42
    aff[0, 3] = 7.0
    assert v.data[0, 0, 0] == 0 and v.affine[0, 3] == 0.0


def test_read_only_input_is_shared_not_copied() -> None:
    v = Volume(np.zeros((2, 2, 2)), np.eye(4))
    w = v.with_meta(source="x")
    assert np.shares_memory(v.data, w.data)
    assert w.meta["source"] == "x" and "source" not in v.meta


def test_with_data_keeps_grid_and_checks_shape() -> None:
    v = Volume(np.zeros((2, 3, 4)), PSR, {"a": 1})
    w = v.with_data(np.ones((2, 3, 4), dtype=np.uint8), b=2)
    assert np.array_equal(w.affine, PSR) and dict(w.meta) == {"a": 1, "b": 2}
    with pytest.raises(GeometryError, match="shape"):
        v.with_data(np.ones((2, 3, 5)))


def test_volume_pickles() -> None:
    v = Volume(np.arange(8).reshape(2, 2, 2), PSR, {"label_names": {1: "vertebrae_L1"}, "x": [1, 2]})
    w = pickle.loads(pickle.dumps(v))
    np.testing.assert_array_equal(w.data, v.data)
    np.testing.assert_array_equal(w.affine, v.affine)
    assert w.meta["label_names"][1] == "vertebrae_L1" and tuple(w.meta["x"]) == (1, 2)
    assert not w.data.flags.writeable


# --- geometry -------------------------------------------------------------------------


def test_spacing_and_voxel_volume_axis_aligned() -> None:
    v = Volume(np.zeros((4, 5, 6)), np.diag([0.5, -0.75, 3.0, 1.0]))
    assert v.spacing == (0.5, 0.75, 3.0)
    assert v.voxel_volume_mm3 == 1.125
    assert v.shape == (4, 5, 6)


def test_spacing_and_voxel_volume_oblique() -> None:
    # columns: (3, 4, 0) -> 5 mm; (0, 0, 2) -> 2 mm; (-4, 3, 0) -> 5 mm; volume 5 * 2 * 5 = 50 mm3
    aff = np.array([[3.0, 0, -4, 0], [4, 0, 3, 0], [0, 2, 0, 0], [0, 0, 0, 1]])
    assert voxel_spacing(aff) == (5.0, 2.0, 5.0)
    assert Volume(np.zeros((1, 1, 1)), aff).voxel_volume_mm3 == 50.0


def test_axcodes_and_lr_axis_of_dcm2niix_sagittal_affine() -> None:
    v = Volume(np.zeros((3, 3, 3)), PSR)
    assert v.axcodes == ("P", "S", "R")
    assert v.lr_axis == 2  # a sagittal slice is data[:, :, k]


@pytest.mark.parametrize(
    "diag, codes, lr",
    [
        ((1, 1, 1), ("R", "A", "S"), 0),
        ((-1, -1, 1), ("L", "P", "S"), 0),
        ((-3.25, 3.231, 3.5789), ("L", "A", "S"), 0),
    ],
)
def test_axcodes_axis_aligned(diag: tuple[float, float, float], codes: tuple[str, ...], lr: int) -> None:
    aff = np.diag([*diag, 1.0])
    assert axcodes(aff) == codes
    assert lr_axis(aff) == lr


def test_axcodes_and_lr_axis_oblique_30_degrees() -> None:
    # axis i mostly anterior with 30 degrees of tilt towards left; j mostly right; k superior
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    aff = np.eye(4)
    aff[:3, :3] = np.array([[-s, c, 0], [c, s, 0], [0, 0, 1.0]])
    assert axcodes(aff) == ("A", "R", "S")
    assert lr_axis(aff) == 1


def test_axcodes_agree_with_nibabel_on_random_affines(rng: np.random.Generator) -> None:
    from nibabel.orientations import aff2axcodes

    for _ in range(200):
        aff = np.eye(4)
        aff[:3, :3] = rng.normal(size=(3, 3))
        if abs(np.linalg.det(aff[:3, :3])) < 1e-3:
            continue
        assert axcodes(aff) == tuple(aff2axcodes(aff))


def test_world_coords_exact() -> None:
    v = Volume(np.zeros((2, 2, 2)), [[0, 0, 2, 10], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    got = v.world_coords([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
    expected = [[10, 0, 0], [10, -1, 0], [10, 0, 1], [12, 0, 0], [12, -1, 1]]
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(GeometryError):
        v.world_coords([1, 2])


def test_same_grid_and_grid_deltas() -> None:
    a = np.diag([1.0, 1.0, 2.0, 1.0])
    assert same_grid((2, 3, 4), a, (2, 3, 4), a)
    b = a.copy()
    b[:3, 3] = [0.0005, 0.0, 0.0]  # 0.5 um: within 1e-3 mm
    assert same_grid((2, 3, 4), a, (2, 3, 4), b)
    c = a.copy()
    c[1, 3] = 0.002
    d = grid_deltas((2, 3, 4), a, (2, 3, 4), c)
    assert d["origin_xyz_mm"] == (0.0, 0.002, 0.0) and d["origin_mm"] == 0.002
    assert d["corner_mm"] == pytest.approx(0.002, abs=1e-15)
    assert not same_grid((2, 3, 4), a, (2, 3, 4), c)
    assert not same_grid((2, 3, 4), a, (2, 3, 5), a)
    assert grid_deltas((2, 3, 4), a, (2, 3, 5), a)["shape"] == (0, 0, -1)
    # spacing 2.0 vs 2.5 along k: per-axis delta, and the far corner (k = 3) moves 1.5 mm
    e = np.diag([1.0, 1.0, 2.5, 1.0])
    d = grid_deltas((2, 3, 4), a, (2, 3, 4), e)
    assert d["spacing_ijk_mm"] == (0.0, 0.0, 0.5) and d["corner_mm"] == 1.5
    # a rotation by 1e-3 rad about z changes direction cosines by ~1e-3 (> 1e-4)
    r = np.eye(4)
    t = 1e-3
    r[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    d = grid_deltas((2, 3, 4), np.eye(4), (2, 3, 4), r)
    assert d["direction"] == pytest.approx(np.sin(t), rel=1e-6)
    assert not same_grid((2, 3, 4), np.eye(4), (2, 3, 4), r)
    assert same_grid((2, 3, 4), np.eye(4), (2, 3, 4), r, atol_dir=2e-3, atol_mm=1.0)


def test_volume_same_grid_method() -> None:
    v = Volume(np.zeros((2, 2, 2)), PSR)
    assert v.same_grid(Volume(np.ones((2, 2, 2)), PSR))
    assert not v.same_grid(Volume(np.ones((2, 2, 3)), PSR))


def test_label_centroids_si_exact() -> None:
    # k runs superior with 2 mm voxels from z = -10; j runs inferior (PSR-like flip) with 1 mm voxels
    aff = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 2, -10], [0, 0, 0, 1]])
    m = np.zeros((2, 3, 4), dtype=np.uint8)
    m[0, 0, 0] = 5  # z = -10
    m[1, 2, 0] = 5  # z = -10 - 2 = -12
    m[:, 1, 3] = 9  # z = -10 - 1 + 6 = -5 (two voxels)
    got = label_centroids_si(Volume(m, aff))
    assert got == {5: -11.0, 9: -5.0}


def test_label_centroids_si_refuses_float_labels() -> None:
    with pytest.raises(GeometryError):
        label_centroids_si(Volume(np.zeros((1, 1, 1)), np.eye(4)))
