"""DICOM-SEG export: voxels round-trip exactly through world coordinates, references, codes, CLI, cohort run.

The read-back does not use the writer's frame mapping: every SEG frame is placed
by its own PlanePositionSequence / PlaneOrientationSequence / PixelMeasures
(pixel (m, n) at T + n Δc r + m Δr c, LPS), converted to RAS and mapped
through the inverse of the mask's affine.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import shared_path

from spinemri import __version__
from spinemri.errors import ConfigError, GeometryError, InputError, SpinemriWarning
from spinemri.io.dicom.seg import build_dicom_seg, dicom_seg_bytes, write_dicom_seg
from spinemri.io.dicom.series import list_series, load_dicom
from spinemri.io.dicom.write import write_dicom_series
from spinemri.io.nifti import load_nifti, save_nifti
from spinemri.levels import get_scheme
from spinemri.phantom import make_phantom
from spinemri.volume import Volume

hd = pytest.importorskip("highdicom", reason="DICOM-SEG needs highdicom (the dicomseg extra; part of test)")

DECUBITUS = ("dcm_qa_decubitus_t1_sagittal_HFS", "In", "HFS", "3_t1_fl2d_sag")
DECUBITUS_REF = ("dcm_qa_decubitus_t1_sagittal_HFS", "Ref_regenerated", "t1_fl2d_sag_20220407150138.nii.gz")
ENHANCED = ("dcm_qa_xa30_t1w_sagittal_enhanced", "In", "5_anat-T1w_acq-tfl")
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

# SNOMED CT codes as published (SNOMED CT browser; also pydicom's codes.SCT), not taken from the writer
NEOPLASM_METASTATIC = "14799000"
MORPH_ABNORMAL = "49755003"
ANATOMICAL_STRUCTURE = "91723000"
VERTEBRA = "51282000"
L1_VERTEBRA, L2_VERTEBRA, T12_VERTEBRA, SACRUM = "66794005", "14293000", "23215003", "54735007"


# --------------------------------------------------------------------------- helpers


def _seg_on_grid(seg_path: Path | bytes, like: Volume) -> tuple[dict[int, np.ndarray], pydicom.Dataset]:
    """Place every SEG frame on ``like``'s grid by world coordinates; {segment number: bool array}."""
    import io

    ds = pydicom.dcmread(io.BytesIO(seg_path) if isinstance(seg_path, bytes) else seg_path)
    pix = ds.pixel_array
    if pix.ndim == 2:
        pix = pix[None]
    shared = ds.SharedFunctionalGroupsSequence[0]
    inv = np.linalg.inv(np.asarray(like.affine, dtype=float))
    rows, cols = int(ds.Rows), int(ds.Columns)
    m, n = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    out = {int(s.SegmentNumber): np.zeros(like.shape, dtype=bool) for s in ds.SegmentSequence}
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):

        def group(keyword: str, item: pydicom.Dataset = item) -> pydicom.Dataset:
            return (item if keyword in item else shared)[keyword][0]  # per-frame, else shared

        iop = np.array([float(v) for v in group("PlaneOrientationSequence").ImageOrientationPatient])
        dr, dc = (float(v) for v in group("PixelMeasuresSequence").PixelSpacing)
        r, c = iop[:3], iop[3:]
        ipp = np.array([float(v) for v in group("PlanePositionSequence").ImagePositionPatient])
        seg_no = int(group("SegmentIdentificationSequence").ReferencedSegmentNumber)
        world = ipp[None, None, :] + n[..., None] * dc * r + m[..., None] * dr * c  # LPS
        ras = np.concatenate([world, np.ones((rows, cols, 1))], axis=-1) @ (inv @ LPS).T
        vox = np.rint(ras[..., :3]).astype(int)
        assert np.max(np.abs(ras[..., :3] - vox)) < 1e-3, "SEG pixel centres are not on the mask grid"
        on = pix[f].astype(bool)
        assert np.all((vox >= 0) & (vox < np.array(like.shape))), "SEG frame outside the mask array"
        out[seg_no][vox[..., 0][on], vox[..., 1][on], vox[..., 2][on]] = True
    return out, ds


def _blobs(shape: tuple[int, ...], rng: np.random.Generator, n: int = 4) -> np.ndarray:
    """Integer lesion ids: a few random boxes (some one voxel thick) inside the array."""
    out = np.zeros(shape, dtype=np.int32)
    for lid in range(1, n + 1):
        lo = [int(rng.integers(0, max(1, s - 6))) for s in shape]
        size = [int(rng.integers(1, min(6, s) + 1)) for s in shape]
        out[tuple(slice(a, a + b) for a, b in zip(lo, size, strict=True))] = lid
    return out


def _transposed(v: Volume, perm: tuple[int, int, int], flip: tuple[bool, bool, bool]) -> Volume:
    """The same voxels in another array order: axes permuted and flipped, the affine adjusted."""
    data = np.asarray(v.data)
    affine = np.asarray(v.affine, dtype=float).copy()
    for axis, f in enumerate(flip):
        if f:
            data = np.flip(data, axis)
            affine[:3, 3] += affine[:3, axis] * (v.shape[axis] - 1)
            affine[:, axis] = -affine[:, axis]
    data = np.transpose(data, perm)
    new = affine.copy()
    new[:, :3] = affine[:, list(perm)]
    return Volume(np.ascontiguousarray(data), new, dict(v.meta))


@pytest.fixture(scope="module")
def phantom_series(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("segsrc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, mask, _ = make_phantom(seed=5, rows=96, cols=64, n_slices=7, first_level="T12", supersample=1)
    files = write_dicom_series(img, tmp / "dcm", patient_id="SEGP01", uid_seed="test-dicomseg")
    return {"dir": tmp / "dcm", "files": files, "img": img, "mask": mask}


# --------------------------------------------------------------------------- phantom series


def test_phantom_lesions_and_vertebrae_round_trip(phantom_series, tmp_path, rng) -> None:
    src = phantom_series["dir"]
    image = load_dicom(src)
    mask = phantom_series["mask"]
    np.testing.assert_allclose(image.affine, mask.affine, atol=1e-3)  # the loader reproduces the grid
    vert = image.with_data(np.asarray(mask.data))
    lesions = image.with_data(_blobs(image.shape, rng))
    scheme = get_scheme("verse")
    path = write_dicom_seg(tmp_path / "p.seg.dcm", src, lesions, vertebrae=vert, levels=scheme, image=image)
    got, ds = _seg_on_grid(path, image)
    np.testing.assert_array_equal(got[1], np.asarray(lesions.data) != 0)
    levels = [str(s.SegmentLabel) for s in ds.SegmentSequence][1:]
    assert levels == [
        "T12 vertebra",
        "L1 vertebra",
        "L2 vertebra",
        "L3 vertebra",
        "L4 vertebra",
        "L5 vertebra",
        "Sacrum (S1)",
    ]
    inverse = {level: label for label, level in scheme.levels.items()}
    for number, level in enumerate(["T12", "L1", "L2", "L3", "L4", "L5", "S1"], start=2):
        np.testing.assert_array_equal(got[number], np.asarray(mask.data) == inverse[level])
    # the file validates in pydicom and opens in highdicom
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG"
    assert str(ds.file_meta.TransferSyntaxUID) == pydicom.uid.ExplicitVRLittleEndian


def test_phantom_frames_by_source_instance(phantom_series, tmp_path, rng) -> None:
    """The loader's documented layout data[i=column, j=row, k=slice]: source slice k is mask[:, :, k].T."""
    src = phantom_series["dir"]
    image = load_dicom(src)
    lesions = image.with_data(_blobs(image.shape, rng, n=6))
    path = write_dicom_seg(tmp_path / "p.seg.dcm", src, lesions, image=image)
    seg = hd.seg.segread(path)
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in phantom_series["files"]]
    normal = np.cross(*np.reshape([float(v) for v in headers[0].ImageOrientationPatient], (2, 3)))
    headers.sort(key=lambda h: float(np.dot(normal, [float(v) for v in h.ImagePositionPatient])))
    uids = [h.SOPInstanceUID for h in headers]
    arr = seg.get_pixels_by_source_instance(uids, segment_numbers=[1])
    expected = np.stack([(np.asarray(lesions.data)[:, :, k] != 0).T for k in range(image.shape[2])])
    np.testing.assert_array_equal(arr[..., 0].astype(bool), expected)
    # only frames holding segment pixels are stored
    assert int(seg.NumberOfFrames) == int(np.count_nonzero(expected.any(axis=(1, 2))))


def test_references_and_codes(phantom_series, tmp_path, rng) -> None:
    src = phantom_series["dir"]
    image = load_dicom(src)
    lesions = image.with_data(_blobs(image.shape, rng))
    vert = image.with_data(np.asarray(phantom_series["mask"].data))
    path = write_dicom_seg(
        tmp_path / "p.seg.dcm", src, lesions, vertebrae=vert, levels=get_scheme("verse"), image=image
    )
    ds = pydicom.dcmread(path)
    headers = {h.SOPInstanceUID: h for h in (pydicom.dcmread(f) for f in phantom_series["files"])}
    first = next(iter(headers.values()))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.StudyInstanceUID == first.StudyInstanceUID
    assert ds.FrameOfReferenceUID == first.FrameOfReferenceUID
    ref = ds.ReferencedSeriesSequence
    assert len(ref) == 1 and ref[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in ref[0].ReferencedInstanceSequence} == set(headers)
    for item in ds.PerFrameFunctionalGroupsSequence:  # each frame names the source image it lies on
        src_uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        np.testing.assert_allclose(
            [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in headers[src_uid].ImagePositionPatient],
            atol=1e-4,
        )
    assert ds.SegmentationType == "BINARY"
    segs = ds.SegmentSequence
    assert segs[0].SegmentLabel == "Metastatic lesions"
    assert segs[0].SegmentedPropertyCategoryCodeSequence[0].CodeValue == MORPH_ABNORMAL
    assert segs[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == NEOPLASM_METASTATIC
    assert segs[0].SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert "RecommendedDisplayCIELabValue" in segs[0]  # lesions get a colour (red), vertebrae none
    assert all("RecommendedDisplayCIELabValue" not in s for s in segs[1:])
    by_label = {s.SegmentLabel: s for s in segs}
    for label, code in (
        ("T12 vertebra", T12_VERTEBRA),
        ("L1 vertebra", L1_VERTEBRA),
        ("L2 vertebra", L2_VERTEBRA),
        ("Sacrum (S1)", SACRUM),
    ):
        assert by_label[label].SegmentedPropertyTypeCodeSequence[0].CodeValue == code
        assert by_label[label].SegmentedPropertyCategoryCodeSequence[0].CodeValue == ANATOMICAL_STRUCTURE
    for s in segs:
        assert s.SegmentAlgorithmType == "AUTOMATIC"
        assert s.SegmentAlgorithmName == "spinemri"
        alg = s.SegmentationAlgorithmIdentificationSequence[0]
        assert alg.AlgorithmName == "spinemri" and alg.AlgorithmVersion == __version__
    # the standard's patient module comes from the source (docs/dicom-seg.md: the one identifying output)
    assert ds.PatientID == first.PatientID == "SEGP01"
    assert ds.SeriesNumber == int(first.SeriesNumber) + 1000


def test_level_without_own_code_is_generic_vertebra(phantom_series, tmp_path) -> None:
    src = phantom_series["dir"]
    image = load_dicom(src)
    lab = np.zeros(image.shape, dtype=np.uint8)
    lab[10:20, 10:20, 1:3] = 28  # verse 28 = T13
    lab[10:20, 30:40, 1:3] = 25  # verse 25 = L6
    lab[10:20, 50:60, 1:3] = 20  # verse 20 = L1
    lab[40:50, 50:60, 1:3] = 99  # not a vertebra in the mapping: left out
    lesions = image.with_data((lab == 20).astype(np.uint8))
    data = dicom_seg_bytes(
        src, lesions, vertebrae=image.with_data(lab), levels={20: "L1", 25: "L6", 28: "T13"}, image=image
    )
    got, ds = _seg_on_grid(data, image)
    labels = [(s.SegmentLabel, s.SegmentedPropertyTypeCodeSequence[0].CodeValue) for s in ds.SegmentSequence]
    assert labels == [
        ("Metastatic lesions", NEOPLASM_METASTATIC),
        ("T13 vertebra", VERTEBRA),
        ("L1 vertebra", L1_VERTEBRA),
        ("L6 vertebra", VERTEBRA),
    ]
    np.testing.assert_array_equal(got[2], lab == 28)
    np.testing.assert_array_equal(got[3], lab == 20)
    np.testing.assert_array_equal(got[4], lab == 25)
    with pytest.raises(ConfigError, match="not a vertebral level"):
        dicom_seg_bytes(src, lesions, vertebrae=image.with_data(lab), levels={20: "disc"}, image=image)


@pytest.mark.parametrize(
    ("perm", "flip"), [((1, 0, 2), (False, True, False)), ((2, 0, 1), (True, False, True))]
)
def test_array_order_does_not_matter(phantom_series, perm, flip, rng) -> None:
    src = phantom_series["dir"]
    image = load_dicom(src)
    lesions = image.with_data(_blobs(image.shape, rng))
    moved = _transposed(lesions, perm, flip)
    assert moved.shape != lesions.shape or flip != (False, False, False)
    a = build_dicom_seg(src, lesions, image=image)
    b = build_dicom_seg(src, moved, image=image)
    np.testing.assert_array_equal(a.pixel_array, b.pixel_array)
    got, _ = _seg_on_grid(bytes(_encode(b)), moved)
    np.testing.assert_array_equal(got[1], np.asarray(moved.data) != 0)


def _encode(ds: pydicom.Dataset) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_oblique_phantom(tmp_path, rng) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, _, _ = make_phantom(
            seed=2, rows=80, cols=48, n_slices=5, first_level="L2", supersample=1, oblique_deg=10
        )
    write_dicom_series(img, tmp_path / "dcm", patient_id="OBL", uid_seed="test-dicomseg-oblique")
    image = load_dicom(tmp_path / "dcm")
    iop = [float(v) for v in pydicom.dcmread(next((tmp_path / "dcm").iterdir())).ImageOrientationPatient]
    assert min(abs(v) for v in iop if abs(v) > 1e-6) < 0.99  # really oblique
    lesions = image.with_data(_blobs(image.shape, rng, n=5))
    got, _ = _seg_on_grid(
        write_dicom_seg(tmp_path / "o.seg.dcm", tmp_path / "dcm", lesions, image=image), image
    )
    np.testing.assert_array_equal(got[1], np.asarray(lesions.data) != 0)


def test_mask_off_the_source_grid_is_refused(phantom_series, rng) -> None:
    src = phantom_series["dir"]
    image = load_dicom(src)
    lesions = image.with_data(_blobs(image.shape, rng))
    half = np.asarray(image.affine, dtype=float).copy()
    half[:3, 3] += 0.5 * half[:3, 0]  # half a voxel along i
    with pytest.raises(GeometryError, match="voxel centre"):
        build_dicom_seg(src, Volume(lesions.data, half, {}), image=image)
    small = Volume(np.asarray(lesions.data)[:-2], image.affine, {})
    with pytest.raises(GeometryError, match="outside the mask array"):
        build_dicom_seg(src, small, image=image)
    coarse = np.asarray(image.affine, dtype=float).copy()
    coarse[:3, :2] *= 2
    with pytest.raises(GeometryError, match="not on the mask's voxel grid"):
        build_dicom_seg(src, Volume(lesions.data, coarse, {}), image=image)
    # a larger array (voxels beyond the series) with lesion voxels outside every source frame
    big = np.zeros((image.shape[0], image.shape[1], image.shape[2] + 1), dtype=np.uint8)
    big[..., -1] = 1
    with pytest.raises(GeometryError, match="outside every frame"):
        build_dicom_seg(src, Volume(big, image.affine, {}), image=image)


def test_missing_source_and_mosaic_errors(tmp_path, phantom_series) -> None:
    image = load_dicom(phantom_series["dir"])
    with pytest.raises(InputError, match="not found"):
        build_dicom_seg([tmp_path / "nope.dcm"], image.with_data(np.zeros(image.shape, np.uint8)))
    mosaic = tmp_path / "m.dcm"
    ds = pydicom.dcmread(phantom_series["files"][0])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]
    ds.save_as(mosaic)
    with pytest.raises(InputError, match="MOSAIC"):
        build_dicom_seg([mosaic], image.with_data(np.zeros(image.shape, np.uint8)))


def test_without_highdicom_a_config_error_names_the_extra(phantom_series, monkeypatch) -> None:
    import sys

    image = load_dicom(phantom_series["dir"])
    monkeypatch.setitem(sys.modules, "highdicom", None)  # import highdicom raises ImportError
    with pytest.raises(ConfigError, match=r"spinemri\[dicomseg\]"):
        build_dicom_seg(phantom_series["dir"], image.with_data(np.zeros(image.shape, np.uint8)), image=image)


def test_compressed_is_smaller_and_identical(phantom_series, rng) -> None:
    pytest.importorskip("openjpeg", reason="JPEG 2000 DICOM-SEG needs pylibjpeg-openjpeg (the codecs extra)")
    src = phantom_series["dir"]
    image = load_dicom(src)
    lesions = image.with_data(_blobs(image.shape, rng))
    plain = dicom_seg_bytes(src, lesions, image=image)
    packed = dicom_seg_bytes(src, lesions, image=image, compress=True)
    assert len(packed) < len(plain)
    a, _ = _seg_on_grid(plain, image)
    b, ds = _seg_on_grid(packed, image)
    assert str(ds.file_meta.TransferSyntaxUID) == pydicom.uid.JPEG2000Lossless
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(b[1], np.asarray(lesions.data) != 0)


# --------------------------------------------------------------------------- real series


def test_real_series_on_loader_and_dcm2niix_grids(tmp_path) -> None:
    """dcm_qa_decubitus: the mask on the loader's grid (PIR) and on dcm2niix's grid (PSR) give one SEG."""
    src = shared_path(*DECUBITUS)
    ref = load_nifti(shared_path(*DECUBITUS_REF))
    image = load_dicom(src)
    assert image.axcodes != ref.axcodes  # the two grids really differ in array order
    lesion = np.zeros(ref.shape, dtype=np.int32)
    lesion[120:140, 100:130, 12:16] = 1  # a box
    lesion[60, 200, 30] = 2  # one voxel near the edge of the field of view
    lesion[0, 0, 0] = 3  # the corner voxel
    on_ref = ref.with_data(lesion)
    path = write_dicom_seg(tmp_path / "r.seg.dcm", src, on_ref, image=image)
    got, ds = _seg_on_grid(path, ref)
    np.testing.assert_array_equal(got[1], lesion != 0)
    # the same lesion expressed on the loader's grid (via world coordinates) gives the same frames
    ijk = np.argwhere(lesion != 0)
    world = np.c_[ijk, np.ones(len(ijk))] @ np.asarray(ref.affine).T
    vox = np.rint(world @ np.linalg.inv(np.asarray(image.affine)).T)[:, :3].astype(int)
    on_loader = np.zeros(image.shape, dtype=np.uint8)
    on_loader[tuple(vox.T)] = 1
    again = pydicom.dcmread(
        write_dicom_seg(tmp_path / "l.seg.dcm", src, image.with_data(on_loader), image=image)
    )
    np.testing.assert_array_equal(again.pixel_array, ds.pixel_array)
    source_uids = {
        pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in sorted(Path(src).iterdir())
    }
    refs = {r.ReferencedSOPInstanceUID for r in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert refs == source_uids and len(refs) == 35
    assert hd.seg.segread(path).get_segment_numbers() == [1]


def test_real_enhanced_multiframe_source(tmp_path) -> None:
    src = shared_path(*ENHANCED)
    image = load_dicom(src)
    lesion = np.zeros(image.shape, dtype=np.uint8)
    lesion[100:110, 90:120, 80:84] = 1
    lesion[5, 7, 0] = 1
    path = write_dicom_seg(tmp_path / "e.seg.dcm", src, image.with_data(lesion), image=image)
    got, ds = _seg_on_grid(path, image)
    np.testing.assert_array_equal(got[1], lesion != 0)
    (info,) = list_series(src)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == info.series_uid
    source = pydicom.dcmread(info.files[0], stop_before_pixels=True)
    for item in ds.PerFrameFunctionalGroupsSequence:  # each SEG frame names the source frame it lies on
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == source.SOPInstanceUID
        src_item = source.PerFrameFunctionalGroupsSequence[int(ref.ReferencedFrameNumber) - 1]
        np.testing.assert_allclose(
            [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in src_item.PlanePositionSequence[0].ImagePositionPatient],
            atol=1e-4,
        )
    assert hd.seg.segread(path).number_of_segments == 1


# --------------------------------------------------------------------------- CLI and cohort run


@pytest.fixture(scope="module")
def lesion_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from spinemri.phantom import LesionSpec

    tmp = tmp_path_factory.mktemp("segcli")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, mask, _ = make_phantom(
            seed=3,
            rows=128,
            cols=64,
            n_slices=7,
            first_level="L1",
            supersample=1,
            lesions=(LesionSpec("L2", "focal", 6.0, (0.0, 2.0, 0.0), 0.7),),
        )
    write_dicom_series(img, tmp / "dcm", patient_id="CLI01", uid_seed="test-dicomseg-cli")
    return {
        "dcm": tmp / "dcm",
        "img": save_nifti(img, tmp / "img.nii.gz"),
        "mask": save_nifti(mask, tmp / "seg.nii.gz"),
    }


def test_cli_measure_writes_seg_for_dicom_and_refuses_nifti(lesion_case, tmp_path, capsys) -> None:
    from spinemri.cli import main

    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        rc = main(
            [
                "measure",
                str(lesion_case["dcm"]),
                "--mask",
                str(lesion_case["mask"]),
                "--out",
                str(out),
                "--patient-id",
                "CLI01",
                "--dicom-seg",
                "--dicom-seg-vertebrae",
            ]
        )
    assert rc == 0
    seg_path = out / "masks" / "CLI01_lesions.seg.dcm"
    ds = pydicom.dcmread(seg_path)
    nifti = load_nifti(out / "masks" / "CLI01_lesions.nii.gz")
    assert np.count_nonzero(np.asarray(nifti.data)) > 0  # the phantom lesion was found
    got, _ = _seg_on_grid(seg_path, nifti)
    np.testing.assert_array_equal(got[1], np.asarray(nifti.data) != 0)
    labels = [s.SegmentLabel for s in ds.SegmentSequence]
    assert labels[0] == "Metastatic lesions" and "L2 vertebra" in labels and len(labels) > 3
    capsys.readouterr()
    rc = main(
        [
            "measure",
            str(lesion_case["img"]),
            "--mask",
            str(lesion_case["mask"]),
            "--out",
            str(tmp_path / "o2"),
            "--dicom-seg",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "--dicom-seg" in err and str(lesion_case["img"]) in err and "DICOM" in err
    assert not (tmp_path / "o2").exists()  # refused before anything is measured or written
    rc = main(["measure", str(lesion_case["dcm"]), "--mask", str(lesion_case["mask"]), "--dicom-seg"])
    assert rc == 2 and "add --out" in capsys.readouterr().err


def test_cohort_run_writes_seg_for_dicom_cases_only(tmp_path) -> None:
    from spinemri.io.cohort_write import CohortSpec, write_cohort
    from spinemri.pipeline.cohort import run_cohort

    cohort = tmp_path / "cohort"
    small = {"first_level": "L1", "last_level": "S1", "rows": 96, "cols": 64, "n_slices": 7, "supersample": 1}
    write_cohort(cohort, CohortSpec(n_patients=2, seed=4, format="mixed"), **small)
    dicom_ids = sorted(p.parent.name for p in cohort.glob("*/dicom"))
    nifti_ids = sorted(p.parent.name for p in cohort.glob("*/image.nii.gz"))
    assert dicom_ids and nifti_ids
    out = tmp_path / "out"
    assert run_cohort(cohort, out).exit_code == 0
    assert not list((out / "masks").glob("*.seg.dcm"))  # off by default
    summary = run_cohort(cohort, out, dicom_seg=True, dicom_seg_vertebrae=True)
    assert summary.exit_code == 0 and summary.skipped == 0  # the flag changes the params hash: recomputed
    assert sorted(p.name for p in (out / "masks").glob("*.seg.dcm")) == [
        f"{i}_lesions.seg.dcm" for i in dicom_ids
    ]
    for pid in dicom_ids:
        nifti = load_nifti(out / "masks" / f"{pid}_lesions.nii.gz")
        got, ds = _seg_on_grid(out / "masks" / f"{pid}_lesions.seg.dcm", nifti)
        np.testing.assert_array_equal(got[1], np.asarray(nifti.data) != 0)
        assert len(ds.SegmentSequence) > 1  # vertebrae too
    again = run_cohort(cohort, out, dicom_seg=True, dicom_seg_vertebrae=True)
    assert again.skipped == 2
    # the CLI flag maps onto the same configuration: everything is skipped as unchanged
    from spinemri.cli import main

    assert main(["run", str(cohort), "--out", str(out), "--dicom-seg-vertebrae", "--quiet"]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["cohort"]["skipped"] == 2
    assert prov["parameters"]["run"]["dicom_seg"] is True
