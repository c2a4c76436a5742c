"""load_mask: label value checks, grid checks with actionable errors, nearest-neighbour resampling.

The resampling is checked against SimpleITK's ResampleImageFilter (nearest
neighbour), an independent implementation, and against hand-built grids whose
answer is known (an integer shift, a 2x downsample).
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_path

from spinemri.errors import GeometryError, InputError, SpinemriWarning
from spinemri.io.convert import from_sitk, to_sitk
from spinemri.io.load import load_mask, resample_nearest
from spinemri.testing import rotation_matrix
from spinemri.volume import Volume


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine, dtype=data.dtype), path)
    return path


def _image(shape: tuple[int, int, int] = (6, 5, 4), affine: np.ndarray | None = None) -> Volume:
    return Volume(
        np.zeros(shape, dtype=np.int16), np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine
    )


# --- values ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int16, np.uint8])
def test_integral_masks_of_any_dtype_are_accepted(tmp_path: Path, dtype: type) -> None:
    data = np.zeros((6, 5, 4), dtype=dtype)
    data[1:3, 1:3, 1] = 20
    data[4, 4, 3] = 3
    img = _image()
    mask = load_mask(_save(tmp_path / "m.nii.gz", data, img.affine), like=img)
    assert np.issubdtype(mask.data.dtype, np.integer)
    np.testing.assert_array_equal(mask.data, data.astype(np.int64))
    assert mask.meta["resampled"] is False
    np.testing.assert_array_equal(mask.affine, img.affine)


@pytest.mark.parametrize(
    "value, dtype, pattern",
    [
        (np.nan, np.float32, "NaN"),
        (2.5, np.float64, "non-integer.*2.5"),
        (-3, np.int16, "negative"),
    ],
)
def test_bad_label_values_are_refused_naming_the_file(
    tmp_path: Path, value: float, dtype: type, pattern: str
) -> None:
    data = np.zeros((3, 3, 3), dtype=dtype)
    data[1, 1, 1] = value
    path = _save(tmp_path / "bad_mask.nii.gz", data, np.eye(4))
    with pytest.raises(InputError, match=rf"bad_mask\.nii\.gz.*{pattern}"):
        load_mask(path)


@pytest.mark.shared_data
def test_sct_float64_labelled_mask_loads_on_its_image() -> None:
    img_path = shared_path("sct_testing_data_cervical_t2", "t2", "t2.nii.gz")
    from spinemri.io.load import load_volume

    img = load_volume(img_path)
    mask = load_mask(
        shared_path("sct_testing_data_cervical_t2", "t2", "t2_seg-manual_labeled.nii.gz"), like=img
    )
    assert mask.data.dtype == np.uint8 and mask.meta["resampled"] is False
    assert np.bincount(mask.data.ravel()).tolist()[2:] == [1318, 1461, 1036, 209]


# --- grid checks ----------------------------------------------------------------------


def test_mask_on_another_grid_raises_actionable_geometry_error(tmp_path: Path) -> None:
    img = _image()
    other = img.affine.copy()
    other[0, 3] = 3.0  # 3 mm shift along x: far beyond the tolerances
    path = _save(tmp_path / "shifted_mask.nii.gz", np.ones((6, 5, 4), np.uint8), other)
    with pytest.raises(GeometryError) as info:
        load_mask(path, like=img)
    msg = str(info.value)
    assert "shifted_mask.nii.gz" in msg
    assert "origin by (3, 0, 0) mm" in msg
    assert "spacing differs by (0, 0, 0) mm" in msg
    assert "0.001 mm" in msg and "0.0001 on direction" in msg
    assert "resample=True" in msg


def test_shape_mismatch_message_gives_both_shapes(tmp_path: Path) -> None:
    img = _image()
    path = _save(tmp_path / "crop_mask.nii.gz", np.ones((6, 5, 3), np.uint8), img.affine)
    with pytest.raises(GeometryError, match=re.escape("mask shape (6, 5, 3) vs image (6, 5, 4)")):
        load_mask(path, like=img)


def test_tiny_difference_within_tolerance_is_accepted_silently(tmp_path: Path) -> None:
    img = _image()
    aff = img.affine.copy()
    aff[:3, 3] += 4e-4  # 0.4 um
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask = load_mask(Volume(np.ones((6, 5, 4), np.uint8), aff, {"source": "m.nii"}), like=img)
    np.testing.assert_array_equal(mask.affine, img.affine)


def test_within_loose_tolerance_resamples_with_warning() -> None:
    img = _image()
    aff = img.affine.copy()
    aff[:3, 3] += [0.2, -0.1, 0.3]  # < half the smallest voxel (0.5 mm), > 1e-3 mm
    data = np.arange(6 * 5 * 4, dtype=np.int32).reshape(6, 5, 4) % 7
    with pytest.warns(SpinemriWarning, match=r"near\.nii.*resampled with nearest-neighbour"):
        mask = load_mask(Volume(data, aff, {"source": "near.nii"}), like=img)
    # every image voxel centre is < 0.5 voxel from the same-index mask voxel: identical labels
    np.testing.assert_array_equal(mask.data, data)
    assert mask.meta["resampled"] is True
    np.testing.assert_array_equal(mask.affine, img.affine)


def test_rotation_beyond_direction_tolerance_but_within_half_voxel_resamples() -> None:
    img = _image()
    aff = img.affine.copy()
    aff[:3, :3] = rotation_matrix([0.0, 0.0, 2e-3]) @ aff[:3, :3]  # ~2e-3 > 1e-4 on cosines
    with pytest.warns(SpinemriWarning):
        mask = load_mask(Volume(np.ones((6, 5, 4), np.uint8), aff, {"source": "rot.nii"}), like=img)
    assert mask.data.all()


def test_resample_true_integer_shift_matches_hand_computation() -> None:
    # mask grid origin is 2 voxels further along +x: mask[i] sits where image[i + 2] sits
    img = _image()
    aff = img.affine.copy()
    aff[0, 3] = 2.0
    data = np.zeros((6, 5, 4), dtype=np.uint8)
    data[0, 1, 1] = 5
    data[3, 2, 2] = 9
    with pytest.warns(SpinemriWarning):
        out = load_mask(Volume(data, aff, {"source": "shift.nii"}), like=img, resample=True)
    expected = np.zeros_like(data)
    expected[2:, :, :] = data[:-2, :, :]
    np.testing.assert_array_equal(out.data, expected)


def test_resample_true_2x_downsample_matches_hand_computation() -> None:
    # image voxels are 2 mm, mask voxels 1 mm; image voxel i lies at x = 2i, which is mask voxel 2i
    fine = np.arange(8 * 8 * 8, dtype=np.int32).reshape(8, 8, 8) % 50 + 1
    mask = Volume(fine, np.eye(4), {"source": "fine.nii"})
    img = Volume(np.zeros((4, 4, 4), np.int16), np.diag([2.0, 2.0, 2.0, 1.0]))
    with pytest.warns(SpinemriWarning):
        out = load_mask(mask, like=img, resample=True)
    np.testing.assert_array_equal(out.data, fine[::2, ::2, ::2])


def test_resample_lost_labels_are_reported_and_no_overlap_is_refused() -> None:
    img = _image()
    aff = img.affine.copy()
    aff[0, 3] = 4.0
    data = np.zeros((6, 5, 4), dtype=np.uint8)
    data[0, 0, 0] = 1  # lands on image voxel 4: kept
    data[5, 0, 0] = 2  # lands at x = 9: outside the image
    with pytest.warns(SpinemriWarning, match=r"labels \[2\] fall outside"):
        load_mask(Volume(data, aff, {"source": "edge.nii"}), like=img, resample=True)
    far = img.affine.copy()
    far[0, 3] = 100.0
    with pytest.raises(GeometryError, match="far.nii.*empty"):
        load_mask(Volume(np.ones((6, 5, 4), np.uint8), far, {"source": "far.nii"}), like=img, resample=True)


def test_nearest_neighbour_agrees_with_simpleitk_on_oblique_grids(rng: np.random.Generator) -> None:
    for trial in range(5):
        m_aff = np.eye(4)
        m_aff[:3, :3] = rotation_matrix(rng.uniform(-0.3, 0.3, 3)) @ np.diag(rng.uniform(0.7, 2.0, 3))
        m_aff[:3, 3] = rng.uniform(-5, 5, 3)
        i_aff = np.eye(4)
        i_aff[:3, :3] = rotation_matrix(rng.uniform(-0.3, 0.3, 3)) @ np.diag(rng.uniform(0.7, 2.0, 3))
        i_aff[:3, 3] = rng.uniform(-5, 5, 3)
        mask = Volume(rng.integers(0, 20, size=(9, 8, 7)).astype(np.uint8), m_aff)
        like = Volume(np.zeros((10, 9, 6), np.int16), i_aff)
        ours = resample_nearest(mask, like)
        f = sitk.ResampleImageFilter()
        f.SetReferenceImage(to_sitk(like))
        f.SetInterpolator(sitk.sitkNearestNeighbor)
        f.SetDefaultPixelValue(0)
        theirs = from_sitk(f.Execute(to_sitk(mask)))
        differ = ours.data != theirs.data
        # only exact rounding ties could differ; random oblique grids have none
        assert not differ.any(), f"trial {trial}: {int(differ.sum())} voxels differ"


# --- paths ----------------------------------------------------------------------------


def test_directory_named_like_a_mask_file_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "mask.nii.gz"
    d.mkdir()
    with pytest.raises(InputError, match=r"mask\.nii\.gz.*folder"):
        load_mask(d)


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "seg"
    d.mkdir()
    with pytest.raises(InputError, match=r"seg.*empty folder"):
        load_mask(d)


def test_missing_mask_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.nii\.gz.*no such"):
        load_mask(tmp_path / "nope.nii.gz")
