"""Unit tests of spinemri.io.dicom on small synthetic series written with pydicom.

Expected geometry is computed here from the DICOM standard's formula
(PS3.3 C.7.6.2.1.1: P = S + c * Δc * F[:, 0] + r * Δr * F[:, 1]), independently
of the loader's affine code.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from spinemri import DicomError, SpinemriWarning, list_series, load_volume
from spinemri.io.dicom.assemble import patient_id_hash
from spinemri.io.dicom.header import is_dicom_file
from spinemri.io.dicom.series import pick_series, plane_of, series_rank

SAG = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
AX = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
COR = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
_UID_ROOT = "1.2.826.0.1.3680043.8.498."


def write_image(
    path: Path,
    pixels: np.ndarray,
    *,
    ipp=(0.0, 0.0, 0.0),
    iop=SAG,
    pixel_spacing=(0.5, 0.8),
    series_uid: str = _UID_ROOT + "1",
    series_number: int = 1,
    description: str = "t1_tse_sag",
    image_type=("ORIGINAL", "PRIMARY", "M"),
    instance: int = 1,
    slope: float | None = None,
    intercept: float | None = None,
    signed: bool = False,
    bits_stored: int = 16,
    patient_id: str = "PAT-0042",
    preamble: bool = True,
    extra: dict | None = None,
) -> Path:
    """Write one classic MR image (Explicit VR Little Endian, 16-bit) with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop = generate_uid(prefix=_UID_ROOT)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = sop
    ds.Modality = "MR"
    ds.Manufacturer = "SPINEMRI-TEST"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19600101"
    ds.StudyInstanceUID = _UID_ROOT + "9"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.ImageType = list(image_type)
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(x) for x in ipp]
    ds.ImageOrientationPatient = [float(x) for x in iop]
    ds.PixelSpacing = [float(x) for x in pixel_spacing]
    ds.SliceThickness = 3.0
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    ds.PixelData = np.ascontiguousarray(pixels.astype("<i2" if signed else "<u2")).tobytes()
    ds.save_as(path, enforce_file_format=preamble, implicit_vr=False, little_endian=True)
    return path


def write_series(
    folder: Path,
    n: int = 5,
    *,
    rows: int = 6,
    cols: int = 4,
    step=(-2.5, 0.0, 0.0),  # along the sagittal normal (patient right, -x in LPS)
    origin=(-10.0, 20.0, 30.0),
    iop=SAG,
    names=None,
    seed: int = 0,
    **kw,
) -> tuple[list[Path], list[np.ndarray]]:
    """Write ``n`` parallel slices; returns the paths and the pixel arrays in position order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths, arrays = [], []
    for k in range(n):
        arr = rng.integers(0, 4000, size=(rows, cols)).astype(np.uint16)
        name = names[k] if names else f"im{k:03d}.dcm"
        ipp = np.asarray(origin) + k * np.asarray(step)
        paths.append(write_image(folder / name, arr, ipp=ipp, iop=iop, instance=k + 1, **kw))
        arrays.append(arr)
    return paths, arrays


def _dicom_world_ras(ipp, iop, pixel_spacing, r, c):
    """World RAS mm of pixel (row r, column c) by the DICOM formula, then LPS -> RAS."""
    f = np.asarray(iop, dtype=float)
    p = np.asarray(ipp, dtype=float) + c * pixel_spacing[1] * f[:3] + r * pixel_spacing[0] * f[3:]
    return p * np.array([-1.0, -1.0, 1.0])


@pytest.mark.parametrize("iop", [SAG, AX, COR, (0.0, 0.9848, -0.1736, 0.0, 0.1736, 0.9848)])
def test_voxels_and_world_positions_follow_dicom(tmp_path, iop):
    """Each loaded voxel holds the DICOM pixel whose world position it claims (any file naming)."""
    f = np.asarray(iop, dtype=float)
    normal = np.cross(f[:3], f[3:])
    names = ["z.dcm", "a.dcm", "m.dcm", "b.dcm", "c.dcm"]  # name order unrelated to position
    # slices written in *decreasing* position along the normal, InstanceNumber increasing
    paths, arrays = write_series(tmp_path, step=-3.0 * normal, names=names, iop=iop)
    vol = load_volume(tmp_path)
    assert vol.shape == (4, 6, 5)  # (columns, rows, slices)
    assert vol.spacing == pytest.approx((0.8, 0.5, 3.0), abs=1e-3)
    n = len(arrays)
    for src in range(n):
        ipp = np.asarray((-10.0, 20.0, 30.0)) + src * (-3.0 * normal)
        k = n - 1 - src  # the loader orders slices by increasing position along the normal
        for r, c in [(0, 0), (5, 3), (2, 1)]:
            assert vol.data[c, r, k] == arrays[src][r, c]
            np.testing.assert_allclose(
                vol.world_coords([(c, r, k)])[0], _dicom_world_ras(ipp, iop, (0.5, 0.8), r, c), atol=1e-3
            )
    assert vol.meta["spacing_between_slices"] == pytest.approx(3.0, abs=1e-3)


def test_rescale_slope_intercept(tmp_path):
    paths, arrays = write_series(tmp_path, n=3, slope=0.5, intercept=-100.0)
    vol = load_volume(tmp_path)
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data[:, :, 0], arrays[0].T * 0.5 - 100.0)


def test_integer_intercept_keeps_integers(tmp_path):
    paths, arrays = write_series(tmp_path, n=3, slope=1.0, intercept=-1024.0)
    vol = load_volume(tmp_path)
    assert vol.data.dtype.kind == "i"
    np.testing.assert_array_equal(vol.data[:, :, 2], arrays[2].T.astype(np.int32) - 1024)


def test_signed_bits_stored_sign_extension(tmp_path):
    # 12-bit two's complement stored without sign extension in 16 bits: -5 -> 0x0FFB, 7 -> 0x0007
    stored = np.array([[0x0FFB, 0x0007], [0x0800, 0x07FF]], dtype=np.uint16)
    for k in range(3):
        write_image(
            tmp_path / f"{k}.dcm", stored.view(np.int16), ipp=(k * 2.0, 0, 0), signed=True, bits_stored=12
        )
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.data[:, :, 0], np.array([[-5, 7], [-2048, 2047]]).T)


def test_unsigned_high_bits_are_masked(tmp_path):
    stored = np.array([[0xF00A, 0x0FFF]], dtype=np.uint16)
    for k in range(3):
        write_image(tmp_path / f"{k}.dcm", stored, ipp=(k * 2.0, 0, 0), bits_stored=12)
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.data[:, 0, 0], [0x00A, 0xFFF])


def test_meta_is_pseudonymous(tmp_path, monkeypatch):
    import hashlib

    write_series(tmp_path, n=3, patient_id="PAT-0042")
    monkeypatch.delenv("SPINEMRI_ID_SALT", raising=False)
    vol = load_volume(tmp_path)
    # issue 16: the default is no longer sha256("spinemri" + PatientID) (public salt: reversible by
    # enumeration) but HMAC-SHA-256 keyed with the key file (conftest points it at a tmp folder)
    import hmac
    import os

    key = Path(os.environ["SPINEMRI_ID_KEY_FILE"]).read_text().strip().encode()
    assert vol.meta["patient_id_hash"] == hmac.new(key, b"PAT-0042", hashlib.sha256).hexdigest()[:16]
    assert vol.meta["patient_id_hash"] != hashlib.sha256(b"spinemriPAT-0042").hexdigest()[:16]
    text = repr(dict(vol.meta))
    for secret in ("PAT-0042", "Doe", "Jane", "19600101"):
        assert secret not in text
    monkeypatch.setenv("SPINEMRI_ID_SALT", "pepper")
    assert load_volume(tmp_path).meta["patient_id_hash"] == hashlib.sha256(b"pepperPAT-0042").hexdigest()[:16]
    assert patient_id_hash("") is None
    for key in (
        "source",
        "format",
        "modality",
        "series_description",
        "series_number",
        "series_uid",
        "plane",
        "slice_thickness",
        "spacing_between_slices",
        "transfer_syntax",
        "manufacturer",
    ):
        assert key in vol.meta
    assert vol.meta["plane"] == "sagittal" and vol.meta["modality"] == "MR"


def test_is_dicom_file(tmp_path):
    arr = np.zeros((2, 2), np.uint16)
    assert is_dicom_file(write_image(tmp_path / "a.dcm", arr))
    assert is_dicom_file(write_image(tmp_path / "noext", arr, preamble=False))
    (tmp_path / "notes.txt").write_text("not dicom\n")
    assert not is_dicom_file(tmp_path / "notes.txt")
    assert not is_dicom_file(tmp_path / "missing.dcm")


def test_preamble_less_series_loads(tmp_path):
    paths, arrays = write_series(tmp_path, n=3, preamble=False)
    vol = load_volume(tmp_path)
    np.testing.assert_array_equal(vol.data[:, :, 1], arrays[1].T)


def test_non_dicom_files_are_ignored(tmp_path):
    write_series(tmp_path / "s", n=3)
    (tmp_path / "s" / "README-Series.txt").write_text("header dump\n")
    (tmp_path / "s" / ".DS_Store").write_bytes(b"\0\1\2")
    assert load_volume(tmp_path).shape == (4, 6, 3)


def test_single_classic_file_warns(tmp_path):
    paths, _ = write_series(tmp_path, n=3)
    with pytest.warns(SpinemriWarning, match="single slice"):
        vol = load_volume(paths[0])
    assert vol.shape == (4, 6, 1)


@pytest.mark.parametrize(
    ("iop", "plane"),
    [
        (SAG, "sagittal"),
        (AX, "axial"),
        (COR, "coronal"),
        ((1, 0, 0, 0, 0.9942, -0.108), "axial"),  # dcm_qa_ts: 6 degrees oblique
        ((1, 0, 0, 0, 0.7071, -0.7071), "oblique"),  # 45 degrees
        (None, "unknown"),
    ],
)
def test_plane_of(iop, plane):
    assert plane_of(iop) == plane


def _study(tmp_path: Path) -> Path:
    """A study folder: localizer, axial T2, sagittal T1, sagittal T2, sagittal STIR (+ a tiny coronal)."""
    root = tmp_path / "study"
    uid = iter(range(100, 200))

    def series(name, number, desc, iop=SAG, n=4, step=(-3.0, 0, 0), **kw):
        return write_series(
            root / name,
            n=n,
            iop=iop,
            step=step,
            series_uid=_UID_ROOT + str(next(uid)),
            series_number=number,
            description=desc,
            **kw,
        )

    series("loc", 1, "localizer", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), n=3)
    series("ax", 2, "t2_tse_tra", iop=AX, step=(0, 0, 4.0), n=8)
    series("t1", 3, "t1_tse_sag")
    series("t2", 4, "T2_TSE_SAG")
    series("stir", 5, "t2_tirm_sag")
    series("cor", 6, "survey_cor", iop=COR, step=(0, 3.0, 0), n=1)
    # a 3-plane scout: one sagittal, one axial, one coronal image in one series
    (root / "scout3").mkdir()
    for k, (iop, ipp) in enumerate([(SAG, (0, 0, 0)), (AX, (0, 0, 0)), (COR, (0, 0, 0))]):
        write_image(
            root / "scout3" / f"{k}.dcm",
            np.zeros((6, 4), np.uint16),
            iop=iop,
            ipp=ipp,
            series_uid=_UID_ROOT + "77",
            series_number=7,
            description="AAHScout",
        )
    return root


def test_list_series_and_localizers(tmp_path):
    root = _study(tmp_path)
    infos = {s.series_number: s for s in list_series(root)}
    assert sorted(infos) == [1, 2, 3, 4, 5, 6, 7]
    assert (
        infos[2].plane == "axial" and infos[2].n_images == 8 and (infos[2].rows, infos[2].columns) == (6, 4)
    )
    assert infos[5].plane == "sagittal" and infos[5].description == "t2_tirm_sag"
    assert infos[7].plane == "mixed"
    assert {n for n, s in infos.items() if s.is_localizer} == {1, 6, 7}
    assert all(len(s.files) == s.n_images for s in infos.values())


def test_pick_prefers_sagittal_fluid_sensitive(tmp_path):
    root = _study(tmp_path)
    infos = list_series(root)
    assert pick_series(infos).description == "t2_tirm_sag"
    no_stir = [s for s in infos if s.series_number != 5]
    assert pick_series(no_stir).description == "T2_TSE_SAG"
    only_t1_ax = [s for s in infos if s.series_number in (1, 2, 3)]
    assert pick_series(only_t1_ax).description == "t1_tse_sag"
    vol = load_volume(root)
    assert vol.meta["series_description"] == "t2_tirm_sag"


@pytest.mark.parametrize(
    ("series", "number"),
    [("3", 3), (3, 3), ("t1_tse", 3), ("(?i)TRA$", 2), (_UID_ROOT + "103", 4)],
)
def test_pick_by_request(tmp_path, series, number):
    infos = list_series(_study(tmp_path))
    assert pick_series(infos, series).series_number == number


@pytest.mark.parametrize(
    ("desc", "rank"),
    [
        ("STIR_sag", 3),
        ("t2_tse_fs_sag", 3),
        ("T2 FatSat SAG", 3),
        ("t2_spair", 3),
        ("t2_tse_dixon_sag_W", 3),
        ("T2 fat sat", 3),
        ("t2_tse_sag", 2),
        ("Sag T2W", 2),
        ("t1_tse_sag", 1),
        ("dixon opp", 1),
    ],
)
def test_series_rank(desc, rank):
    from spinemri.io.dicom.series import SeriesInfo

    info = SeriesInfo("1", 1, desc, "MR", "sagittal", 10, 4, 4, (), False, ())
    assert series_rank(info) == rank
    assert series_rank(SeriesInfo("1", 1, desc, "MR", "axial", 10, 4, 4, (), False, ())) == 0


def test_pick_errors_list_the_series(tmp_path):
    infos = list_series(_study(tmp_path))
    with pytest.raises(DicomError, match="no series matches"):
        pick_series(infos, "flair", where=tmp_path)
    # issue 16: the listing names each series by number and uid, not by SeriesDescription
    # (descriptions can hold patient names); before, this asserted match="t1_tse_sag"
    with pytest.raises(DicomError, match="number 3, sagittal, 4 images") as err:
        pick_series(infos, "flair", where=tmp_path)
    assert "t1_tse_sag" not in str(err.value)
    with pytest.raises(DicomError, match="only localizer"):
        pick_series([s for s in infos if s.is_localizer], where=tmp_path)


def test_localizer_loads_when_requested(tmp_path):
    root = _study(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vol = load_volume(root, series="localizer")
    assert vol.shape == (4, 6, 3)
