"""Acceptance: load_volume on the shared DICOM QA series equals dcm2niix's reference NIfTI.

Both images are brought to the closest canonical (RAS) orientation with
nibabel before comparing, so that dcm2niix's own array order and flips do not
matter: affines must agree within 0.01 mm, voxel values exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from spinemri import DicomError, load_volume
from spinemri.io.convert import to_nibabel

pytestmark = pytest.mark.shared_data

AFFINE_ATOL_MM = 0.01

CASES = {
    "sag_gre": ("dcm_qa_sag_gre_sagittal", "In/2_gre_field_mapping", "Ref/2_gre_field_mapping_PMUlog.nii"),
    "xa30_enhanced": (
        "dcm_qa_xa30_t1w_sagittal_enhanced",
        "In/5_anat-T1w_acq-tfl",
        "Ref/5_anat-T1w_acq-tfl.nii",
    ),
    "decubitus": (
        "dcm_qa_decubitus_t1_sagittal_HFS",
        "In/HFS/3_t1_fl2d_sag",
        "Ref_regenerated/t1_fl2d_sag_20220407150138.nii.gz",
    ),
}


def _assert_same_world(volume, ref_path):
    import nibabel as nib

    ours = nib.as_closest_canonical(to_nibabel(volume))
    ref = nib.as_closest_canonical(nib.load(str(ref_path)))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours.affine, ref.affine, atol=AFFINE_ATOL_MM, rtol=0)
    ref_data = np.asanyarray(ref.dataobj)
    assert ref.header.get_slope_inter() in ((None, None), (1.0, 0.0))
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), ref_data)


@pytest.mark.parametrize("case", sorted(CASES))
def test_series_matches_dcm2niix(case):
    folder, series_dir, ref = CASES[case]
    root = shared_path(folder)
    vol = load_volume(root / series_dir)
    _assert_same_world(vol, root / ref)
    assert vol.meta["format"] == "dicom"


def test_enhanced_single_file_matches_dcm2niix():
    root = shared_path("dcm_qa_xa30_t1w_sagittal_enhanced")
    (path,) = sorted((root / "In/5_anat-T1w_acq-tfl").glob("*.dcm"))
    vol = load_volume(path)
    _assert_same_world(vol, root / "Ref/5_anat-T1w_acq-tfl.nii")
    assert vol.meta["plane"] == "sagittal"


def test_decubitus_spacing_from_positions_not_thickness():
    root = shared_path("dcm_qa_decubitus_t1_sagittal_HFS")
    vol = load_volume(root / "In/HFS/3_t1_fl2d_sag")
    assert vol.meta["slice_thickness"] == pytest.approx(4.0)
    assert vol.meta["spacing_between_slices"] == pytest.approx(4.8, abs=1e-3)
    assert sorted(vol.spacing) == pytest.approx([1.015625, 1.015625, 4.8], abs=1e-3)


@pytest.mark.parametrize("n", range(1, 10))
def test_transfer_syntax_mosaic_matches_dcm2niix(n):
    """Each of the nine transfer syntaxes decodes and de-mosaics to dcm2niix's 64x64x35 volume."""
    root = shared_path("dcm_qa_ts_transfer_syntaxes")
    vol = load_volume(root / "In" / f"{n}.dcm")
    _assert_same_world(vol, root / "Ref" / f"{n}.nii")
    assert vol.meta["mosaic_slices"] == 35


def test_transfer_syntaxes_decode_to_identical_pixels():
    """Raw decoded pixel arrays of the nine files (before de-mosaic) are identical."""
    import pydicom

    from spinemri.io.dicom.pixels import decode_frames

    root = shared_path("dcm_qa_ts_transfer_syntaxes", "In")
    arrays = []
    syntaxes = set()
    for n in range(1, 10):
        ds = pydicom.dcmread(root / f"{n}.dcm")
        syntaxes.add(str(ds.file_meta.TransferSyntaxUID))
        arrays.append(decode_frames(root / f"{n}.dcm", ds))
    assert len(syntaxes) == 7  # 9 files, 7 distinct syntaxes (two JPEG lossless, two JPEG-LS)
    assert arrays[0].shape == (1, 384, 384)
    assert int(arrays[0].sum()) == 38_036_663  # the curator's independent pydicom check (README)
    for arr in arrays[1:]:
        np.testing.assert_array_equal(arr, arrays[0])


def test_transfer_syntax_folder_is_nine_series():
    """The nine files share one SeriesInstanceUID but are nine series (grouped with SeriesNumber)."""
    from spinemri import list_series

    root = shared_path("dcm_qa_ts_transfer_syntaxes", "In")
    infos = list_series(root)
    assert [s.series_number for s in infos] == list(range(1, 10))
    assert len({s.series_uid for s in infos}) == 1
    with pytest.raises(DicomError, match="series="):
        load_volume(root)
    vol = load_volume(root, series="7")
    assert vol.meta["series_number"] == 7
    with pytest.raises(DicomError, match="matches 9 series by SeriesInstanceUID"):
        load_volume(root, series=infos[0].series_uid)


def test_ge_multivolume_series_is_refused():
    """15 positions x 10 time points: refused as 4-D, never returned as a wrong 3-D volume."""
    root = shared_path("dcm_qa_nih_ge_axial_epi")
    folder = root / "In/20180918GE/mr_0004"
    with pytest.raises(DicomError) as info:
        load_volume(folder)
    msg = str(info.value)
    assert str(folder) in msg
    assert "150 images at 15 slice positions" in msg
    assert "4-D" in msg


def test_ge_single_volume_matches_dcm2niix_first_volume(tmp_path):
    """The first time point alone (15 files) equals volume 0 of dcm2niix's 4-D reference (signed int16)."""
    import shutil

    import nibabel as nib
    import pydicom

    root = shared_path("dcm_qa_nih_ge_axial_epi")
    for f in sorted((root / "In/20180918GE/mr_0004").glob("*.dcm")):
        if int(pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber) <= 15:  # first volume's slices
            shutil.copy(f, tmp_path / f.name)
    assert len(list(tmp_path.iterdir())) == 15
    vol = load_volume(tmp_path)
    assert vol.data.dtype.kind == "i"  # PixelRepresentation 1
    ref = nib.load(str(root / "Ref/DCM2NIIX_regression_test_4.nii"))
    ref0 = nib.as_closest_canonical(nib.Nifti1Image(np.asanyarray(ref.dataobj)[..., 0], ref.affine))
    ours = nib.as_closest_canonical(to_nibabel(vol))
    np.testing.assert_allclose(ours.affine, ref0.affine, atol=AFFINE_ATOL_MM, rtol=0)
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(ref0.dataobj))
