"""Vertebra frames and lesion positions: analytic boxes and spheres, two different voxel grids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinemri.surveillance.compare import compare_timepoints
from spinemri.surveillance.frames import frame_from_moments, lesion_positions_from_maps, vertebra_frames


def rot_x(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])


def rot_z(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])


def render(
    affine: np.ndarray,
    shape: tuple[int, int, int],
    pose: np.ndarray,
    centre: np.ndarray,
    lesion_at: tuple[float, float, float],
    lesion_r: float,
) -> tuple[np.ndarray, np.ndarray]:
    """A 40 x 30 x 24 mm (LR x AP x SI) box vertebra and a spherical lesion, posed in world mm."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    local = (world - centre) @ pose  # patient coordinates (x right, y anterior, z superior)
    inside = (np.abs(local[:, 0]) <= 20) & (np.abs(local[:, 1]) <= 15) & (np.abs(local[:, 2]) <= 12)
    les = inside & (np.linalg.norm(local - np.array(lesion_at), axis=1) <= lesion_r)
    return inside.reshape(shape).astype(np.uint8), les.reshape(shape).astype(np.uint8)


def test_box_extents_axes_and_height() -> None:
    ids = np.zeros((50, 40, 30), np.uint8)
    ids[5:45, 5:35, 3:27] = 1  # 40 x 30 x 24 voxels of 1 mm
    f = vertebra_frames(ids, ["L2"], np.eye(4)).iloc[0]
    assert (f["extent_lr_mm"], f["extent_ap_mm"], f["height_mm"]) == pytest.approx((40.0, 30.0, 24.0))
    assert (f["axis_si_z"], f["axis_ap_y"], f["axis_lr_x"]) == pytest.approx((1.0, 1.0, 1.0))
    assert (f["centroid_x_mm"], f["centroid_y_mm"], f["centroid_z_mm"]) == pytest.approx((24.5, 19.5, 14.5))


def test_axes_follow_a_tilted_vertebra_and_are_signed_by_the_world() -> None:
    pose = rot_x(25.0)  # sagittal tilt, as in lordosis
    cov = pose @ np.diag([40.0**2, 30.0**2, 24.0**2]) / 12 @ pose.T
    f = frame_from_moments((0, 0, 0), cov)
    si = np.array([f["axis_si_x"], f["axis_si_y"], f["axis_si_z"]])
    ap = np.array([f["axis_ap_x"], f["axis_ap_y"], f["axis_ap_z"]])
    assert si == pytest.approx(pose[:, 2]) and ap == pytest.approx(pose[:, 1])
    assert f["height_mm"] == pytest.approx(24.0)
    # a round body (LR = AP): the axes of that plane follow the world, not the eigen solver
    f = frame_from_moments((0, 0, 0), np.diag([30.0**2, 30.0**2, 24.0**2]) / 12)
    assert (f["axis_lr_x"], f["axis_ap_y"], f["axis_si_z"]) == pytest.approx((1.0, 1.0, 1.0))


def test_lesion_position_is_the_same_on_two_grids_and_poses() -> None:
    at, r = (8.0, -6.0, 5.0), 4.0
    aff1 = np.diag([1.0, 1.0, 1.0, 1.0])
    aff1[:3, 3] = (-30, -25, -20)
    ids1, les1 = render(aff1, (60, 50, 40), np.eye(3), np.zeros(3), at, r)
    # scan 2: patient moved 7 mm and turned 6 degrees (tilt) and 4 degrees (axial), 1.3 x 0.9 x 3 mm voxels
    pose = rot_x(6.0) @ rot_z(4.0)
    aff2 = np.diag([1.3, 0.9, 3.0, 1.0])
    aff2[:3, :3] = rot_z(-10.0) @ aff2[:3, :3]  # an oblique grid as well
    aff2[:3, 3] = (-40, -30, -35)
    centre2 = np.array([7.0, -3.0, 2.0])
    ids2, les2 = render(aff2, (70, 80, 26), pose, centre2, at, r)
    p1 = lesion_positions_from_maps(les1, ids1, ["L1"], aff1).iloc[0]
    p2 = lesion_positions_from_maps(les2, ids2, ["L1"], aff2).iloc[0]
    # truth: offset (lr, ap, si) = (8, -6, 5) mm of a 40 x 30 x 24 mm box (RAS: +lr = right)
    for p, tol in ((p1, 0.3), (p2, 1.2)):
        assert (p["offset_lr_mm"], p["offset_ap_mm"], p["offset_si_mm"]) == pytest.approx(at, abs=tol)
        assert (p["rel_lr"], p["rel_ap"], p["rel_si"]) == pytest.approx(
            (8 / 40, -6 / 30, 5 / 24), abs=tol / 20
        )
        assert p["radius_mm"] == pytest.approx(r, rel=0.1)


def test_the_same_lesion_on_two_grids_is_stable() -> None:
    at, r = (8.0, -6.0, 5.0), 4.0
    aff1 = np.eye(4)
    aff1[:3, 3] = (-30, -25, -20)
    ids1, les1 = render(aff1, (60, 50, 40), np.eye(3), np.zeros(3), at, r)
    aff2 = np.diag([1.25, 1.25, 2.0, 1.0])
    aff2[:3, 3] = (-45, -20, -30)
    ids2, les2 = render(aff2, (60, 50, 30), rot_x(5.0), np.array([5.0, 3.0, -1.0]), at, r)
    tables = []
    for tp, (ids, les, aff) in {"tp1": (ids1, les1, aff1), "tp2": (ids2, les2, aff2)}.items():
        frames = vertebra_frames(ids, ["L1"], aff)
        pos = lesion_positions_from_maps(les, ids, ["L1"], aff).assign(patient_id="P", timepoint=tp)
        vox = abs(np.linalg.det(aff[:3, :3]))
        v = frames.assign(
            patient_id="P",
            timepoint=tp,
            scan_date=None,
            vertebra_voxels=int(ids.sum()),
            vertebra_volume_mm3=ids.sum() * vox,
            lesion_volume_mm3=les.sum() * vox,
            lesion_count=1,
            hi_volume_ratio=les.sum() / ids.sum(),
            hi_area_ratio=0.0,
        )
        tables.append((v, pos))
    import pandas as pd

    res = compare_timepoints(pd.concat([t[0] for t in tables]), lesions=pd.concat([t[1] for t in tables]))
    assert res.lesion_changes["lesion_class"].tolist() == ["stable"]
    assert res.lesion_changes["distance_mm"].iloc[0] < 1.5
    assert res.changes["status"].tolist() == ["stable"]
