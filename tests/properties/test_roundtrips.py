"""Property tests: conversions and file round trips are exact; world geometry agrees across libraries.

Exactness, and why:

* Volume -> nibabel -> Volume: data and affine bit-for-bit (nibabel keeps our float64 affine).
* Volume -> SimpleITK -> Volume: data bit-for-bit; affine to 1e-12 * max(1, |entry|), because ITK
  keeps spacing and unit direction cosines apart and ``(a / s) * s`` may differ from ``a`` by an ulp.
* NIfTI file: data bit-for-bit; affine bit-for-bit when its entries are float32 numbers (the
  NIfTI-1 sform is stored as float32), which the strategy guarantees for this test.
* NRRD / MHA file: data bit-for-bit; affine to 1e-12 relative, as for SimpleITK in memory,
  plus decimal-text printing of the geometry by the ITK writers.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinemri.io.convert import from_nibabel, from_sitk, to_nibabel, to_sitk
from spinemri.io.nifti import load_itk, load_nifti, save_itk, save_nifti
from spinemri.testing import affines, assert_volume_equal, volumes
from spinemri.volume import Volume

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FILES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _affine_tol(a: np.ndarray) -> float:
    return 1e-12 * max(1.0, float(np.max(np.abs(a))))


@FAST
@given(volumes())
def test_nibabel_roundtrip_is_exact(vol: Volume) -> None:
    img = to_nibabel(vol)
    np.testing.assert_array_equal(img.affine, vol.affine)
    assert_volume_equal(from_nibabel(img), vol)


@FAST
@given(volumes())
def test_sitk_roundtrip_data_exact_affine_to_1e12(vol: Volume) -> None:
    back = from_sitk(to_sitk(vol))
    assert_volume_equal(back, vol, affine_atol=_affine_tol(vol.affine))


@FAST
@given(volumes(oblique=False, dtypes=("int16",)))
def test_sitk_roundtrip_exact_for_axis_aligned_power_of_two_spacing(vol: Volume) -> None:
    aff = np.diag([0.5, -2.0, 4.0, 1.0])
    aff[:3, 3] = vol.affine[:3, 3]
    v = Volume(vol.data, aff)
    assert_volume_equal(from_sitk(to_sitk(v)), v)


@FAST
@given(volumes(max_side=5), st.data())
def test_world_point_agrees_with_sitk_and_nibabel(vol: Volume, data: st.DataObject) -> None:
    ijk = [data.draw(st.integers(0, n - 1)) for n in vol.shape]
    ours = vol.world_coords(ijk)[0]
    nib_pt = nib.affines.apply_affine(to_nibabel(vol).affine, ijk)
    np.testing.assert_allclose(ours, nib_pt, rtol=0, atol=1e-9)
    lps = np.array(to_sitk(vol).TransformIndexToPhysicalPoint([int(x) for x in ijk]))
    ras = lps * np.array([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(ours, ras, rtol=0, atol=1e-9)
    # and the voxel value at that index is the same in SimpleITK's image
    assert to_sitk(vol).GetPixel([int(x) for x in ijk]) == vol.data[tuple(ijk)]


@FILES
@given(volumes(float32_exact=True))
def test_nifti_file_roundtrip_is_exact(tmp_path: Path, vol: Volume) -> None:
    path = save_nifti(vol, tmp_path / "v.nii.gz")
    back = load_nifti(path)
    assert_volume_equal(back, vol)
    assert (back.meta["sform_code"], back.meta["format"]) == (1, "nifti")


@FILES
@given(volumes(), st.sampled_from([".nrrd", ".mha"]))
def test_itk_file_roundtrip(tmp_path: Path, vol: Volume, suffix: str) -> None:
    path = save_itk(vol, tmp_path / f"v{suffix}")
    back = load_itk(path)
    assert_volume_equal(back, vol, affine_atol=_affine_tol(vol.affine))


def test_bool_and_int64_and_float16_survive_conversion(tmp_path: Path) -> None:
    aff = np.diag([0.5, 0.5, 3.0, 1.0])
    b = Volume(np.array([True, False] * 4).reshape(2, 2, 2), aff)
    i64 = Volume(np.array([0, 2**40, 3, -7, 5, 6, 7, 8], dtype=np.int64).reshape(2, 2, 2), aff)
    f16 = Volume(np.array([0.5, 1.5, -2.0, 0, 1, 2, 3, 4], dtype=np.float16).reshape(2, 2, 2), aff)
    np.testing.assert_array_equal(load_nifti(save_nifti(b, tmp_path / "b.nii")).data, b.data.astype(np.uint8))
    assert_volume_equal(load_nifti(save_nifti(i64, tmp_path / "i.nii.gz")), i64)
    assert_volume_equal(from_sitk(to_sitk(i64)), i64)
    back = from_sitk(to_sitk(f16))
    assert back.data.dtype == np.float32
    np.testing.assert_array_equal(back.data, f16.data.astype(np.float32))


def test_shear_affine_keeps_sform_and_drops_qform() -> None:
    aff = np.array([[1.0, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])
    img = to_nibabel(Volume(np.zeros((2, 2, 2)), aff))
    assert int(img.header["qform_code"]) == 0 and int(img.header["sform_code"]) == 1
    np.testing.assert_array_equal(img.affine, aff)


# --- flips and permutations -----------------------------------------------------------


def _flip(vol: Volume, axis: int) -> Volume:
    """Reverse one array axis and update the affine so every voxel keeps its world point."""
    n = vol.shape[axis]
    m = np.eye(4)
    m[axis, axis] = -1.0
    m[axis, 3] = n - 1
    return Volume(np.flip(vol.data, axis=axis), vol.affine @ m)


def _permute(vol: Volume, order: tuple[int, int, int]) -> Volume:
    """Transpose the array axes and permute the affine's columns to match."""
    m = np.eye(4)
    m[:3, :3] = np.eye(3)[:, list(order)]
    return Volume(np.transpose(vol.data, order), vol.affine @ m)


@FAST
@given(volumes(max_side=5), st.integers(0, 2), st.permutations([0, 1, 2]))
def test_flip_and_permute_map_every_voxel_to_the_same_world_point(
    vol: Volume, axis: int, order: list[int]
) -> None:
    for moved in (_flip(vol, axis), _permute(vol, tuple(order))):  # type: ignore[arg-type]
        pts_old = vol.world_coords(np.argwhere(np.ones(vol.shape, bool)))
        vals_old = vol.data.ravel()
        idx_new = np.argwhere(np.ones(moved.shape, bool))
        pts_new = moved.world_coords(idx_new)
        vals_new = moved.data.ravel()
        # sort both by world position; the same value must sit at the same point
        key_old = np.lexsort(np.round(pts_old, 6).T)
        key_new = np.lexsort(np.round(pts_new, 6).T)
        np.testing.assert_allclose(pts_old[key_old], pts_new[key_new], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(vals_old[key_old], vals_new[key_new])
        assert moved.voxel_volume_mm3 == pytest.approx(vol.voxel_volume_mm3, rel=1e-12)
        assert sorted(moved.spacing) == pytest.approx(sorted(vol.spacing), rel=1e-12)


@FAST
@given(affines())
def test_lr_axis_follows_a_permutation(aff: np.ndarray) -> None:
    vol = Volume(np.zeros((2, 3, 4)), aff)
    for order in [(1, 2, 0), (2, 0, 1), (0, 2, 1)]:
        moved = _permute(vol, order)
        assert order[moved.lr_axis] == vol.lr_axis
        assert moved.axcodes == tuple(vol.axcodes[o] for o in order)


def test_sitk_transpose_matches_hand_example() -> None:
    # voxel (i, j, k) = (2, 1, 0) holds 7; SimpleITK index order is (i, j, k), array order (k, j, i)
    data = np.zeros((3, 2, 1), dtype=np.int16)
    data[2, 1, 0] = 7
    img = to_sitk(Volume(data, np.eye(4)))
    assert img.GetSize() == (3, 2, 1) and img.GetPixel((2, 1, 0)) == 7
    assert sitk.GetArrayFromImage(img)[0, 1, 2] == 7
    assert img.GetDirection() == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
