"""NIfTI / NRRD / MetaImage loading: real files in ../shared/data and small synthetic files.

Expected values come from the data READMEs (hand-copied), from a raw header/voxel
decode written here with struct + gzip (independent of nibabel), or from the
numbers the synthetic files were built with.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_path

from spinemri.errors import InputError
from spinemri.io.load import load_volume
from spinemri.io.nifti import label_names_from_nifti, load_itk, load_nifti

SCT = ("sct_testing_data_cervical_t2", "t2")
TS = ("totalsegmentator_ct_spine_report", "tests", "reference_files")
TS_RESULT = (*TS, "spine_report", "test_result")


def _raw_nifti1(path: Path) -> tuple[dict[str, object], np.ndarray]:
    """Decode a gzipped little-endian NIfTI-1 file with struct/numpy only (no nibabel)."""
    raw = gzip.decompress(path.read_bytes())
    assert struct.unpack("<i", raw[:4])[0] == 348
    dim = struct.unpack("<8h", raw[40:56])
    datatype = struct.unpack("<h", raw[70:72])[0]
    vox_offset = int(struct.unpack("<f", raw[108:112])[0])
    qform_code, sform_code = struct.unpack("<2h", raw[252:256])
    srow = np.array(struct.unpack("<12f", raw[280:328]), dtype=np.float64).reshape(3, 4)
    dtype = {2: "<u1", 4: "<i2", 8: "<i4", 16: "<f4", 64: "<f8"}[datatype]
    shape = dim[1 : 1 + dim[0]]
    n = int(np.prod(shape))
    data = np.frombuffer(raw, dtype=dtype, count=n, offset=vox_offset).reshape(shape, order="F")
    affine = np.vstack([srow, [0, 0, 0, 1]])
    return {"qform_code": qform_code, "sform_code": sform_code, "affine": affine}, data


# --- real files ----------------------------------------------------------------------


@pytest.mark.shared_data
def test_sct_t2_geometry_and_voxels_match_raw_decode() -> None:
    path = shared_path(*SCT, "t2.nii.gz")
    vol = load_nifti(path)
    hdr, raw = _raw_nifti1(path)
    assert vol.shape == (60, 55, 52) and vol.data.dtype == np.int16
    np.testing.assert_array_equal(vol.data, raw)
    # README: qform_code 2, sform_code 1, same matrix; nibabel (and spinemri) use the sform
    codes = (vol.meta["qform_code"], vol.meta["sform_code"])
    assert codes == (2, 1) == (hdr["qform_code"], hdr["sform_code"])
    np.testing.assert_array_equal(vol.affine, hdr["affine"])
    readme_affine = np.array(
        [[0, 0, 1, -32.219], [-1, 0, 0, 31.787], [0, 1, 0, -19.322], [0, 0, 0, 1]], dtype=float
    )
    np.testing.assert_allclose(vol.affine, readme_affine, atol=5e-4)
    assert vol.axcodes == ("P", "S", "R") and vol.lr_axis == 2 and vol.spacing == (1.0, 1.0, 1.0)
    assert int(vol.data.min()) == 0 and int(vol.data.max()) == 1257


@pytest.mark.shared_data
def test_sct_float64_label_mask_loads_as_float64_with_readme_counts() -> None:
    vol = load_nifti(shared_path(*SCT, "t2_seg-manual_labeled.nii.gz"))
    assert vol.data.dtype == np.float64
    assert (vol.meta["qform_code"], vol.meta["sform_code"]) == (2, 2)
    labels, counts = np.unique(vol.data, return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist(), strict=True)) == {
        0.0: 60 * 55 * 52 - (1318 + 1461 + 1036 + 209),
        2.0: 1318,
        3.0: 1461,
        4.0: 1036,
        5.0: 209,
    }


@pytest.mark.shared_data
def test_totalsegmentator_ct_int32_with_qform_0_uses_sform() -> None:
    path = shared_path(*TS, "example_ct.nii.gz")
    vol = load_nifti(path)
    hdr, raw = _raw_nifti1(path)
    assert vol.data.dtype == np.int32 and vol.shape == (122, 101, 112)
    assert (vol.meta["qform_code"], vol.meta["sform_code"]) == (0, 2)
    np.testing.assert_array_equal(vol.data, raw)
    np.testing.assert_array_equal(vol.affine, hdr["affine"])
    readme = np.array([[3, 0, 0, -177.9563], [0, 3, 0, 11.3190], [0, 0, 3, 94.3018], [0, 0, 0, 1]])
    np.testing.assert_allclose(vol.affine, readme, atol=1e-4)
    assert vol.axcodes == ("R", "A", "S") and vol.voxel_volume_mm3 == 27.0


@pytest.mark.shared_data
def test_totalsegmentator_label_tables_are_parsed() -> None:
    pp = load_nifti(shared_path(*TS_RESULT, "totalseg_vertebrae_pp_refined.nii.gz"))
    names = pp.meta["label_names"]
    expected_pp = {
        **{i: f"vertebrae_C{i}" for i in range(1, 8)},
        **{7 + i: f"vertebrae_T{i}" for i in range(1, 13)},
        **{19 + i: f"vertebrae_L{i}" for i in range(1, 6)},
    }
    assert dict(names) == expected_pp
    labels, counts = np.unique(pp.data, return_counts=True)
    assert dict(zip(labels.tolist()[1:], counts.tolist()[1:], strict=True)) == {
        19: 1137, 20: 1319, 21: 1349, 22: 1420, 23: 1446, 24: 1260,
    }
    total = load_nifti(shared_path(*TS_RESULT, "totalseg.nii.gz"))
    tnames = dict(total.meta["label_names"])
    # map_to_binary.py class_map['total']: 26 vertebrae_S1, 27 L5 ... 50 C1
    assert tnames[26] == "vertebrae_S1" and tnames[27] == "vertebrae_L5" and tnames[33] == "vertebrae_T11"
    assert tnames[50] == "vertebrae_C1" and sorted(tnames) == list(range(26, 51))
    body = load_nifti(shared_path(*TS_RESULT, "totalseg_vertebrae_body.nii.gz"))
    assert dict(body.meta["label_names"]) == {1: "vertebrae_body", 2: "intervertebral_discs"}


@pytest.mark.shared_data
def test_load_volume_dispatches_nifti() -> None:
    vol = load_volume(shared_path(*SCT, "t2.nii.gz"))
    assert vol.meta["format"] == "nifti" and vol.shape == (60, 55, 52)


# --- synthetic NIfTI ------------------------------------------------------------------


def test_scaled_nifti_gives_float32_values(tmp_path: Path) -> None:
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    img = nib.Nifti1Image(raw, np.eye(4), dtype=np.int16)
    img.header.set_slope_inter(0.5, 10.0)
    path = tmp_path / "scaled.nii.gz"
    nib.save(img, path)
    vol = load_nifti(path)
    assert vol.data.dtype == np.float32
    np.testing.assert_array_equal(vol.data, raw.astype(np.float32) * 0.5 + 10.0)


def test_unscaled_nifti_keeps_on_disk_dtype(tmp_path: Path) -> None:
    raw = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    path = tmp_path / "u16.nii"
    nib.save(nib.Nifti1Image(raw, np.eye(4), dtype=np.uint16), path)
    vol = load_nifti(path)
    assert vol.data.dtype == np.uint16
    np.testing.assert_array_equal(vol.data, raw)


def test_trailing_singleton_dimensions_are_dropped(tmp_path: Path) -> None:
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4, 1)
    path = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image(raw, np.diag([2.0, 2.0, 2.0, 1.0]), dtype=np.int16), path)
    vol = load_nifti(path)
    assert vol.shape == (2, 3, 4)
    np.testing.assert_array_equal(vol.data, raw[..., 0])
    raw5 = raw.reshape(2, 3, 4, 1, 1)
    path5 = tmp_path / "t5.nii.gz"
    nib.save(nib.Nifti1Image(raw5, np.eye(4), dtype=np.int16), path5)
    np.testing.assert_array_equal(load_nifti(path5).data, raw[..., 0])


def test_real_4d_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dwi.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4, 3), dtype=np.int16), np.eye(4), dtype=np.int16), path)
    with pytest.raises(InputError, match="dwi.nii.gz.*4-D"):
        load_nifti(path)


def test_sform_beats_qform_and_qform_is_used_without_sform(tmp_path: Path) -> None:
    data = np.zeros((2, 2, 2), dtype=np.uint8)
    q_aff = np.diag([-2.0, 2.0, 2.0, 1.0])
    q_aff[:3, 3] = [10, 20, 30]
    s_aff = np.diag([1.0, 1.0, 1.0, 1.0])
    s_aff[:3, 3] = [1, 2, 3]
    img = nib.Nifti1Image(data, None, dtype=np.uint8)
    img.set_qform(q_aff, code=1)
    img.set_sform(s_aff, code=2)
    nib.save(img, tmp_path / "both.nii")
    np.testing.assert_array_equal(load_nifti(tmp_path / "both.nii").affine, s_aff)
    img.set_sform(s_aff, code=0)
    nib.save(img, tmp_path / "qonly.nii")
    np.testing.assert_array_equal(load_nifti(tmp_path / "qonly.nii").affine, q_aff)


def test_label_names_from_header_extension_without_cdata() -> None:
    hdr = nib.Nifti1Header()
    xml = b'<CaretExtension><LabelTable><Label Key="3" Red="1">vertebrae_L3</Label>' \
          b'<Label Key="7"><![CDATA[sacrum]]></Label></LabelTable></CaretExtension>'
    hdr.extensions.append(nib.nifti1.Nifti1Extension(0, xml))
    assert label_names_from_nifti(hdr) == {3: "vertebrae_L3", 7: "sacrum"}
    assert label_names_from_nifti(nib.Nifti1Header()) == {}


# --- NRRD / MetaImage -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_itk_file_geometry_converted_from_lps(tmp_path: Path, suffix: str) -> None:
    img = sitk.Image([4, 3, 2], sitk.sitkInt16)  # size (i, j, k)
    img.SetSpacing((0.5, 0.75, 3.0))
    img.SetOrigin((10.0, 20.0, 30.0))  # LPS
    img.SetPixel((3, 1, 0), 7)
    img.SetPixel((0, 2, 1), -5)
    path = tmp_path / f"img{suffix}"
    sitk.WriteImage(img, str(path))
    vol = load_itk(path)
    assert vol.shape == (4, 3, 2) and vol.data.dtype == np.int16
    assert vol.data[3, 1, 0] == 7 and vol.data[0, 2, 1] == -5 and int(np.abs(vol.data).sum()) == 12
    # LPS origin (10, 20, 30) is RAS (-10, -20, 30); +i goes to L (RAS x decreases), +j to P
    expected = np.array([[-0.5, 0, 0, -10.0], [0, -0.75, 0, -20.0], [0, 0, 3.0, 30.0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(vol.affine, expected)
    assert vol.axcodes == ("L", "P", "S")
    assert load_volume(path).meta["format"] == suffix[1:]


def test_slicer_segment_names_are_read_from_nrrd(tmp_path: Path) -> None:
    img = sitk.Image([2, 2, 2], sitk.sitkUInt8)
    img.SetMetaData("Segment0_Name", "L1")
    img.SetMetaData("Segment0_LabelValue", "4")
    img.SetMetaData("Segment1_Name", "L2")
    img.SetMetaData("Segment1_LabelValue", "5")
    path = tmp_path / "seg.nrrd"
    sitk.WriteImage(img, str(path))
    assert dict(load_itk(path).meta["label_names"]) == {4: "L1", 5: "L2"}


def test_vector_itk_image_is_refused(tmp_path: Path) -> None:
    img = sitk.Image([2, 2, 2], sitk.sitkVectorFloat32, 3)
    path = tmp_path / "vec.mha"
    sitk.WriteImage(img, str(path))
    with pytest.raises(InputError, match="vec.mha.*components"):
        load_itk(path)


def test_nifti_gz_bytes_reads_back_as_save_nifti_writes(tmp_path: Path) -> None:
    from spinemri import Volume
    from spinemri.io.nifti import load_nifti, nifti_gz_bytes, save_nifti

    rng = np.random.default_rng(5)
    data = rng.integers(0, 7, (9, 11, 4)).astype(np.uint8)
    aff = np.array([[0.0, 0.0, 3.5, -40.0], [-0.7, 0.0, 0.0, 90.0], [0.0, -0.7, 0.0, 60.0], [0, 0, 0, 1]])
    vol = Volume(data, aff)
    raw = nifti_gz_bytes(vol)
    assert raw[:2] == b"\x1f\x8b" and raw == nifti_gz_bytes(vol)  # gzip, deterministic
    (tmp_path / "a.nii.gz").write_bytes(raw)
    a = load_nifti(tmp_path / "a.nii.gz")
    b = load_nifti(save_nifti(vol, tmp_path / "b.nii.gz"))
    assert a.data.dtype == b.data.dtype == np.uint8
    np.testing.assert_array_equal(a.data, data)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.affine, b.affine)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("dtype", ["<i2", "<u2", ">i2", "u1", "<f4", ">f8", "<i4"])
def test_load_nifti_voxels_are_nibabels_own_array(tmp_path: Path, suffix: str, dtype: str) -> None:
    """The chunked read gives exactly nibabel's array: values, dtype and byte order, memory order."""
    rng = np.random.default_rng(abs(hash((suffix, dtype))) % 2**32)
    data = rng.integers(0, 3000, (37, 29, 11)).astype(dtype)
    img = nib.Nifti1Image(data, np.diag([0.8, 0.8, 4.0, 1.0]))
    img.header.set_data_dtype(np.dtype(dtype))
    path = tmp_path / f"x{suffix}"
    nib.save(img, str(path))
    want = np.asarray(np.asanyarray(nib.load(str(path)).dataobj))
    got = load_nifti(path).data
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.f_contiguous == want.flags.f_contiguous
    assert got.flags.c_contiguous == want.flags.c_contiguous
    assert got.tobytes(order="A") == want.tobytes(order="A")
    assert not got.flags.writeable  # the Volume holds the array read-only


def test_load_nifti_gz_holds_no_second_copy_of_the_voxels(tmp_path: Path) -> None:
    """Reading a .nii.gz peaks at the voxels plus a few MiB, whatever the image's size.

    Before the chunked read, gzip's ``readinto`` read the whole request into a temporary bytes of
    the image's size: the extra was 1x the image (16 MiB here). Now one 1 MiB chunk and zlib's
    output of one 128 KiB compressed block are added (measured ~2.5 MiB).
    """
    import tracemalloc

    data = np.random.default_rng(1).integers(0, 4000, (512, 512, 32)).astype(np.int16)  # 16 MiB
    path = tmp_path / "big.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    del data
    load_nifti(path)  # warm: imports
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        vol = load_nifti(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    nbytes = vol.data.nbytes
    assert nbytes == 16 << 20
    assert peak - base - nbytes <= 4 << 20, (peak - base - nbytes) / 2**20
