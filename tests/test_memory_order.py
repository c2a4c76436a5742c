"""``measure`` does not depend on the memory order or integer dtype its inputs arrive in.

NIfTI files come back from nibabel Fortran-ordered, spinemri's DICOM loader builds its volumes
Fortran-ordered too, and MR voxels are int16 or uint16 on disk. The segmentation and the tables
read such arrays through their reversed-axes (C-contiguous) views (docs/performance.md, "From
files"); these tests hold them to the outputs of the same data C-ordered in memory.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spinemri
from spinemri import Volume
from spinemri.measurement import Measurement
from spinemri.params import SegmentParams
from spinemri.segmentation.lesions import segment_lesions


def _measure(img: Volume, mask: Volume, **kw: object) -> Measurement:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spinemri.measure(img, mask, **kw)  # type: ignore[arg-type]


def assert_same_measurement(a: Measurement, b: Measurement) -> None:
    for name in ("vertebrae", "lesions", "patient"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    la, lb = np.asarray(a.lesion_mask.data), np.asarray(b.lesion_mask.data)
    assert la.dtype == lb.dtype
    np.testing.assert_array_equal(la, lb)
    assert a.notes == b.notes
    assert a.scheme.name == b.scheme.name


def as_c(v: Volume) -> Volume:
    return v.with_data(np.ascontiguousarray(v.data))


def as_f(v: Volume, dtype: type | None = None) -> Volume:
    a = np.asarray(v.data)
    return v.with_data(np.asfortranarray(a if dtype is None else a.astype(dtype)))


@pytest.fixture(scope="module")
def phantom() -> tuple[Volume, Volume]:
    img, mask, _ = spinemri.make_phantom(seed=3)
    return img, mask


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float64])
@pytest.mark.parametrize(
    "options",
    [{}, {"method": "local"}, {"margin_mm": 0.0}, {"intensity_erosion_mm": 2.0}, {"polarity": "dark"}],
    ids=["default", "local", "margin0", "erosion", "dark"],
)
def test_fortran_ordered_inputs_give_the_tables_of_c_ordered_ones(
    phantom: tuple[Volume, Volume], dtype: type, options: dict[str, object]
) -> None:
    img, mask = phantom
    c_img = img.with_data(np.ascontiguousarray(np.asarray(img.data).astype(dtype)))
    f_img, f_mask = as_f(img, dtype), as_f(mask)
    assert np.asarray(f_img.data).flags.f_contiguous and not np.asarray(f_img.data).flags.c_contiguous
    ref = _measure(c_img, as_c(mask), **options)
    assert len(ref.lesions) > 0 or options.get("polarity") == "dark"  # bright lesions in this phantom
    assert_same_measurement(_measure(f_img, f_mask, **options), ref)
    # mixed: a Fortran-ordered image with a C-ordered mask, and the reverse
    assert_same_measurement(_measure(f_img, as_c(mask), **options), ref)
    assert_same_measurement(_measure(c_img, f_mask, **options), ref)


def test_fortran_ordered_segmentation_equals_c_ordered(phantom: tuple[Volume, Volume]) -> None:
    img, mask = phantom
    vid = np.asarray(mask.data) > 0  # one vertebra id; the phantom's many ids are covered above
    a = np.asarray(img.data).astype(np.int16)
    p = SegmentParams()
    ref = segment_lesions(np.ascontiguousarray(a), np.ascontiguousarray(vid, dtype=np.uint8), img.spacing, p)
    got = segment_lesions(np.asfortranarray(a), np.asfortranarray(vid, dtype=np.uint8), img.spacing, p)
    assert got.lesion_ids.dtype == ref.lesion_ids.dtype
    np.testing.assert_array_equal(got.lesion_ids, ref.lesion_ids)
    np.testing.assert_array_equal(got.lesion_vertebra, ref.lesion_vertebra)
    np.testing.assert_array_equal(got.core, ref.core)
    for name in ("thresholds", "reference_median", "reference_mad", "background", "depth_offset"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))
    assert got.box == ref.box and got.notes == ref.notes


@pytest.mark.parametrize("dtype", ["uint16", "int16"])
def test_nifti_loaded_image_and_mask_give_the_tables_of_the_same_data_c_ordered(
    phantom: tuple[Volume, Volume], tmp_path: Path, dtype: str
) -> None:
    from spinemri.io.nifti import save_nifti

    img, mask = phantom
    ip = save_nifti(img.with_data(np.asarray(img.data).astype(dtype)), tmp_path / "img.nii.gz")
    mp = save_nifti(mask, tmp_path / "mask.nii.gz")
    f_img = spinemri.load_volume(ip)
    f_mask = spinemri.load_mask(mp, like=f_img)
    assert np.asarray(f_img.data).dtype == np.dtype(dtype)
    assert not np.asarray(f_img.data).flags.c_contiguous  # nibabel's Fortran order
    ref = _measure(as_c(f_img), as_c(f_mask))
    assert len(ref.lesions) > 0
    assert_same_measurement(_measure(f_img, f_mask), ref)


def test_dicom_loaded_image_gives_the_tables_of_the_same_data_c_ordered(
    phantom: tuple[Volume, Volume], tmp_path: Path
) -> None:
    from spinemri.io.dicom.write import write_dicom_series
    from spinemri.io.nifti import save_nifti

    img, mask = phantom
    write_dicom_series(img, tmp_path / "dicom", patient_id="P1", uid_seed="test:order")
    d_img = spinemri.load_volume(tmp_path / "dicom")
    np.testing.assert_array_equal(np.asarray(d_img.data), np.asarray(img.data))
    d_mask = spinemri.load_mask(save_nifti(mask, tmp_path / "mask.nii.gz"), like=d_img)
    ref = _measure(as_c(d_img), as_c(d_mask))
    assert len(ref.lesions) > 0
    assert_same_measurement(_measure(d_img, d_mask), ref)
