"""Masks stored in another voxel order (issue 13): reoriented exactly, same tables.

The same voxels in another array order (an axis permutation and/or flips) is
the most common real mask: TotalSegmentator / nnU-Net write the grid of the
dcm2niix NIfTI they were given, nibabel ``as_closest_canonical`` and ITK
(LPS) writers reorder the axes. Every reordered file here is built by code
independent of spinemri's reorientation (``np.transpose`` / ``np.flip`` /
fancy indexing with the affine written from the index map, nibabel, SimpleITK,
dcm2niix), and ``load_mask`` must give back the original array exactly, with
the image's affine, no warning, and the same ``measure`` tables.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import shared_path

import spinemri
from spinemri.cli import main
from spinemri.errors import GeometryError, SpinemriWarning
from spinemri.io.convert import to_sitk
from spinemri.io.dicom.write import write_dicom_series
from spinemri.io.load import load_mask, load_volume, resample_nearest
from spinemri.io.nifti import save_nifti
from spinemri.phantom import LesionSpec
from spinemri.testing import rotation_matrix
from spinemri.volume import Volume

LESIONS = (
    LesionSpec("L2", "focal", 6.0, (0.0, 2.0, 0.0), 0.7),
    LesionSpec("L4", "focal", 5.0, (0.0, -3.0, 2.0), 0.6),
)
SIZE = dict(rows=160, cols=80, n_slices=9, first_level="T12", snr=30, bias=0.0, lesions=LESIONS)


def _phantom(oblique_deg: float = 0.0) -> tuple[Volume, Volume]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, mask, _ = spinemri.make_phantom(seed=3, oblique_deg=oblique_deg, **SIZE)
    return img, mask


@pytest.fixture(scope="module", params=[0.0, 5.0], ids=["axial-aligned", "oblique5"])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The phantom image and mask as NIfTI files, and the reference measurement on the same-grid mask."""
    tmp = tmp_path_factory.mktemp("orient")
    img, mask = _phantom(request.param)
    img_path = save_nifti(img, tmp / "img.nii.gz")
    mask_path = save_nifti(mask, tmp / "seg.nii.gz")
    image = load_volume(img_path)
    ref_mask = load_mask(mask_path, like=image)
    assert "reoriented_from" not in ref_mask.meta
    return {
        "dir": tmp,
        "image": image,
        "mask": np.asarray(mask.data),
        "affine": np.asarray(image.affine),
        "ref": _measure(image, ref_mask),
    }


def _measure(image: Volume, mask: Volume) -> spinemri.Measurement:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        return spinemri.measure(image, mask, scheme="verse", patient_id="P01")


def _assert_same_measurement(got: spinemri.Measurement, ref: spinemri.Measurement) -> None:
    pd.testing.assert_frame_equal(got.vertebrae, ref.vertebrae)
    pd.testing.assert_frame_equal(got.lesions, ref.lesions)
    pd.testing.assert_frame_equal(got.patient, ref.patient)
    np.testing.assert_array_equal(got.lesion_mask.data, ref.lesion_mask.data)
    np.testing.assert_array_equal(got.lesion_mask.affine, ref.lesion_mask.affine)
    assert len(ref.lesions) >= 1  # the comparison is not vacuous


def _index_map_affine(affine: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Affine of a file whose voxel f holds original voxel ``q @ [f, 1]`` (q: 4x4 integer index map)."""
    out: np.ndarray = np.asarray(affine, dtype=np.float64) @ q
    return out


def _permuted_flipped(
    data: np.ndarray, affine: np.ndarray, perm: tuple[int, int, int], flips: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``data`` transposed by ``perm`` then reversed along file axes ``flips``, with its affine.

    The affine is written from the index map: file voxel f holds original voxel o with
    ``o[perm[j]] = f[j]`` (or ``n_j - 1 - f[j]`` on a reversed axis); the map is checked voxel by
    voxel against the array before it is used.
    """
    out = np.transpose(data, perm)
    if flips:
        out = np.flip(out, axis=flips)
    q = np.zeros((4, 4))
    q[3, 3] = 1.0
    for j in range(3):
        if j in flips:
            q[perm[j], j] = -1.0
            q[perm[j], 3] = out.shape[j] - 1
        else:
            q[perm[j], j] = 1.0
    f = np.indices(out.shape).reshape(3, -1)
    o = (q[:3, :3] @ f + q[:3, 3:]).astype(np.int64)
    assert np.array_equal(out.reshape(-1), data[o[0], o[1], o[2]])  # the ground truth is self-consistent
    return np.ascontiguousarray(out), _index_map_affine(affine, q)


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _load_exact(path: Path | Volume, like: Volume) -> Volume:
    """``load_mask`` with every SpinemriWarning an error: an exact reorientation must not warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpinemriWarning)
        return load_mask(path, like=like)


def _check_loaded(got: Volume, case: dict[str, object]) -> None:
    image = case["image"]
    assert isinstance(image, Volume)
    np.testing.assert_array_equal(got.data, case["mask"])
    assert got.data.dtype == np.asarray(case["mask"]).dtype
    np.testing.assert_array_equal(got.affine, image.affine)
    assert got.meta["resampled"] is False
    assert "reoriented exactly" in got.meta["reorient_note"]
    _assert_same_measurement(_measure(image, got), case["ref"])  # type: ignore[arg-type]


# --- (a), (b): axes permuted, flipped along one and two axes, both -----------------------------

REORDERINGS = [
    ((1, 0, 2), ()),
    ((2, 0, 1), ()),
    ((0, 1, 2), (0,)),
    ((0, 1, 2), (2,)),
    ((0, 1, 2), (0, 1)),
    ((0, 1, 2), (1, 2)),
    ((2, 1, 0), (0, 2)),
    ((1, 2, 0), (0, 1, 2)),
]


@pytest.mark.parametrize("perm, flips", REORDERINGS, ids=[f"T{p}F{f}" for p, f in REORDERINGS])
def test_permuted_and_flipped_nifti_masks_load_exactly(
    case: dict[str, object], perm: tuple[int, int, int], flips: tuple[int, ...]
) -> None:
    data, affine = _permuted_flipped(case["mask"], case["affine"], perm, flips)  # type: ignore[arg-type]
    name = "seg_" + "".join(map(str, perm)) + "_f" + "".join(map(str, flips)) + ".nii.gz"
    got = _load_exact(_save(case["dir"] / name, data, affine), case["image"])  # type: ignore[operator, arg-type]
    _check_loaded(got, case)
    origin = got.meta["reoriented_from"]
    # the transpose undoing `perm` is its inverse permutation; the file's shape and axis codes are recorded
    assert tuple(origin["transpose"]) == tuple(int(x) for x in np.argsort(perm))
    assert tuple(origin["shape"]) == data.shape
    assert origin["axcodes"] == "".join(nib.aff2axcodes(affine))


def test_every_signed_permutation_of_an_oblique_grid(rng: np.random.Generator) -> None:
    """All 48 orders of a small oblique, anisotropic, non-cubic grid come back voxel for voxel."""
    base = np.eye(4)
    base[:3, :3] = rotation_matrix((0.3, -0.2, 0.5)) @ np.diag([0.7, 1.1, 3.3])
    base[:3, 3] = (-40.0, 12.5, 80.0)
    like = Volume(np.zeros((5, 6, 7), np.int16), base)
    data = rng.integers(0, 30, size=(5, 6, 7)).astype(np.uint8)
    for perm in itertools.permutations(range(3)):
        for n in range(4):
            for flips in itertools.combinations(range(3), n):
                f_data, f_affine = _permuted_flipped(data, base, perm, flips)  # type: ignore[arg-type]
                got = _load_exact(Volume(f_data, f_affine), like)
                np.testing.assert_array_equal(got.data, data)
                np.testing.assert_array_equal(got.affine, like.affine)
                assert ("reoriented_from" in got.meta) == (perm != (0, 1, 2) or bool(flips))


# --- (c) nibabel as_closest_canonical, (d) SimpleITK -----------------------------------------


def test_as_closest_canonical_mask(case: dict[str, object]) -> None:
    path = Path(str(case["dir"])) / "seg.nii.gz"
    canonical = nib.as_closest_canonical(nib.load(path))
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    assert canonical.shape != np.asarray(case["mask"]).shape  # really another order (PIR -> RAS)
    out = _save(
        Path(str(case["dir"])) / "seg_canonical.nii.gz", np.asarray(canonical.dataobj), canonical.affine
    )
    got = _load_exact(out, case["image"])  # type: ignore[arg-type]
    _check_loaded(got, case)
    assert got.meta["reoriented_from"]["axcodes"] == "RAS"


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_simpleitk_lps_mask(case: dict[str, object], suffix: str) -> None:
    """ITK's own reordering (DICOMOrient to LPS) written by sitk.WriteImage, read back in any format."""
    image = case["image"]
    assert isinstance(image, Volume)
    itk = sitk.DICOMOrient(to_sitk(Volume(case["mask"], image.affine)), "LPS")  # type: ignore[arg-type]
    out = Path(str(case["dir"])) / f"seg_lps{suffix}"
    sitk.WriteImage(itk, str(out))
    got = _load_exact(out, image)
    _check_loaded(got, case)
    assert got.meta["reoriented_from"]["axcodes"] == "LPS"  # i -> left, j -> posterior, k -> superior


def test_plain_simpleitk_write_is_the_same_grid(case: dict[str, object]) -> None:
    """Without reordering, an ITK-written mask is on the image grid: not reoriented (behaviour unchanged)."""
    image = case["image"]
    assert isinstance(image, Volume)
    out = Path(str(case["dir"])) / "seg_itk.nii.gz"
    sitk.WriteImage(to_sitk(Volume(case["mask"], image.affine)), str(out))  # type: ignore[arg-type]
    got = _load_exact(out, image)
    np.testing.assert_array_equal(got.data, case["mask"])
    assert "reoriented_from" not in got.meta and got.meta["resampled"] is False


# --- non-permutation differences keep the behaviour of decision 0001 ---------------------------


def _shifted(affine: np.ndarray, mm: tuple[float, float, float]) -> np.ndarray:
    out = np.array(affine, dtype=np.float64)
    out[:3, 3] += mm
    return out


def _rotated(affine: np.ndarray, deg: float) -> np.ndarray:
    """``affine`` rotated by ``deg`` about the world z axis through the grid centre."""
    r = np.eye(4)
    r[:3, :3] = rotation_matrix((0.0, 0.0, np.deg2rad(deg)))
    return r @ np.asarray(affine, dtype=np.float64)


def test_same_order_shift_still_resampled_with_warning(case: dict[str, object]) -> None:
    image = case["image"]
    assert isinstance(image, Volume)
    shifted = Volume(case["mask"], _shifted(image.affine, (0.8, 0.0, 0.0)))  # type: ignore[arg-type]
    with pytest.warns(SpinemriWarning, match="resampled with nearest-neighbour"):
        got = load_mask(shifted, like=image)
    assert got.meta["resampled"] is True and "reoriented_from" not in got.meta
    np.testing.assert_array_equal(got.data, resample_nearest(shifted, image).data)


def test_permuted_mask_with_a_sub_voxel_shift_is_reoriented_then_resampled(case: dict[str, object]) -> None:
    """The three outcomes of decision 0001 apply after reordering: 0.8 mm (< half a voxel) warns."""
    image = case["image"]
    assert isinstance(image, Volume)
    data, affine = _permuted_flipped(case["mask"], _shifted(image.affine, (0.8, 0.0, 0.0)), (2, 0, 1), (1,))  # type: ignore[arg-type]
    with pytest.warns(SpinemriWarning, match="resampled with nearest-neighbour"):
        got = load_mask(Volume(data, affine), like=image)
    assert got.meta["resampled"] is True and "reoriented_from" in got.meta
    np.testing.assert_array_equal(got.data, case["mask"])  # under half a voxel: every voxel kept
    np.testing.assert_array_equal(got.affine, image.affine)


@pytest.mark.parametrize("perm, flips", [((0, 1, 2), ()), ((2, 0, 1), (1,))], ids=["same-order", "reordered"])
@pytest.mark.parametrize("change", ["shift3mm", "rotate5deg"])
def test_non_permutation_differences_are_refused_or_resampled_as_before(
    case: dict[str, object], perm: tuple[int, int, int], flips: tuple[int, ...], change: str
) -> None:
    image = case["image"]
    assert isinstance(image, Volume)
    moved = _shifted(image.affine, (3.0, 0.0, 0.0)) if change == "shift3mm" else _rotated(image.affine, 5.0)
    data, affine = _permuted_flipped(case["mask"], moved, perm, flips)  # type: ignore[arg-type]
    mask = Volume(data, affine, {"source": "moved_seg.nii.gz"})
    with pytest.raises(GeometryError, match=r"moved_seg\.nii\.gz.*not on the image grid"):
        load_mask(mask, like=image)
    with pytest.warns(SpinemriWarning, match="resampled with nearest-neighbour"):
        got = load_mask(mask, like=image, resample=True)
    # exactly today's resampling of the file as stored (no reordering first)
    np.testing.assert_array_equal(got.data, resample_nearest(mask, image).data)
    assert got.meta["resampled"] is True and "reoriented_from" not in got.meta


def test_other_resolution_is_not_a_reordering(case: dict[str, object]) -> None:
    image = case["image"]
    assert isinstance(image, Volume)
    data = np.asarray(case["mask"])[::2]
    affine = np.array(image.affine)
    affine[:3, 0] *= 2
    data, affine = _permuted_flipped(np.ascontiguousarray(data), affine, (1, 0, 2), ())
    with pytest.raises(GeometryError, match="not on the image grid"):
        load_mask(Volume(data, affine), like=image)


# --- DICOM image + a mask on dcm2niix's grid ---------------------------------------------------


def _dcm2niix() -> str:
    beside = Path(sys.executable).parent / "dcm2niix"
    exe = str(beside) if beside.exists() else shutil.which("dcm2niix")
    if not exe:
        pytest.skip("dcm2niix is not installed (pip install dcm2niix)")
    return exe


@pytest.fixture(scope="module")
def dicom_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A phantom DICOM series, spinemri's mask on its grid, and the same mask on dcm2niix's grid."""
    exe = _dcm2niix()
    tmp = tmp_path_factory.mktemp("dcm2niix_mask")
    img, mask = _phantom(5.0)
    dcm_dir = tmp / "dicom"
    write_dicom_series(img, dcm_dir, patient_id="P01", uid_seed="test-mask-orientation")
    image = load_volume(dcm_dir)
    mask_path = save_nifti(Volume(mask.data, image.affine), tmp / "seg_dicom_grid.nii.gz")
    ref_mask = load_mask(mask_path, like=image)
    assert "reoriented_from" not in ref_mask.meta
    nii = tmp / "nii"
    nii.mkdir()
    subprocess.run(
        [exe, "-z", "y", "-f", "ref", "-o", str(nii), str(dcm_dir)], check=True, capture_output=True
    )
    d2n: Any = nib.load(nii / "ref.nii.gz")
    assert d2n.shape != image.shape or not np.allclose(d2n.affine, image.affine, atol=1e-2)
    # dcm2niix voxel b is spinemri voxel a = round(inv(A_spinemri) @ A_dcm2niix @ b): an integer map
    m = np.linalg.inv(image.affine) @ d2n.affine
    assert np.allclose(m, np.round(m), atol=1e-3), m
    b = np.indices(d2n.shape).reshape(3, -1)
    a = np.round(m[:3, :3] @ b + m[:3, 3:]).astype(np.int64)
    src = np.asarray(mask.data)
    assert all((a[r] >= 0).all() and (a[r] < src.shape[r]).all() for r in range(3))
    on_d2n = src[a[0], a[1], a[2]].reshape(d2n.shape)
    d2n_mask = tmp / "seg_dcm2niix.nii.gz"
    nib.save(nib.Nifti1Image(on_d2n, d2n.affine, header=d2n.header), d2n_mask)
    return {
        "dir": tmp,
        "dicom": dcm_dir,
        "image": image,
        "mask": src,
        "ref_mask_path": mask_path,
        "d2n_mask": d2n_mask,
        "d2n_axcodes": "".join(nib.aff2axcodes(d2n.affine)),
        "ref": _measure(image, ref_mask),
    }


def test_dcm2niix_mask_on_a_dicom_image(dicom_case: dict[str, object]) -> None:
    image = dicom_case["image"]
    assert isinstance(image, Volume)
    assert "".join(image.axcodes) != dicom_case["d2n_axcodes"]  # dcm2niix stores another order
    got = _load_exact(dicom_case["d2n_mask"], image)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got.data, dicom_case["mask"])
    np.testing.assert_array_equal(got.affine, image.affine)
    assert got.meta["resampled"] is False
    assert got.meta["reoriented_from"]["axcodes"] == dicom_case["d2n_axcodes"]
    _assert_same_measurement(_measure(image, got), dicom_case["ref"])  # type: ignore[arg-type]


def test_cli_measure_dicom_with_dcm2niix_mask(dicom_case: dict[str, object], tmp_path: Path) -> None:
    outs = {}
    for name, mask in (("d2n", dicom_case["d2n_mask"]), ("same", dicom_case["ref_mask_path"])):
        out = tmp_path / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpinemriWarning)
            argv = ["measure", str(dicom_case["dicom"]), "--mask", str(mask), "--scheme", "verse"]
            rc = main([*argv, "--patient-id", "P01", "--out", str(out)])
        assert rc == 0
        outs[name] = out
    for table in ("vertebrae.csv", "lesions.csv", "patients.csv"):
        assert (outs["d2n"] / table).read_bytes() == (outs["same"] / table).read_bytes()
    notes = json.loads((outs["d2n"] / "provenance.json").read_text())["notes"]
    assert any("seg_dcm2niix.nii.gz" in n and "reoriented exactly" in n for n in notes), notes
    same_notes = json.loads((outs["same"] / "provenance.json").read_text())["notes"]
    assert not any("reoriented" in n for n in same_notes)


def test_run_case_records_the_reorientation_for_cohort_provenance(dicom_case: dict[str, object]) -> None:
    """``spinemri run`` writes ``measurement.notes`` of run_case into each case's provenance notes."""
    from spinemri.pipeline.case import CaseOptions, CaseOutcome, run_case

    options = CaseOptions(measure=(("scheme", "verse"),))
    outcome = CaseOutcome(patient_id="P01", ok=False)
    case = run_case(dicom_case["dicom"], dicom_case["d2n_mask"], options, outcome, encode=False)  # type: ignore[arg-type]
    assert [n for n in case.measurement.notes if "reoriented exactly" in n] == [
        case.mask.meta["reorient_note"]
    ]
    assert not [w for w in case.warnings if "reorient" in str(w.message)]  # exact: a note, not a warning
    same = run_case(dicom_case["dicom"], dicom_case["ref_mask_path"], options, outcome, encode=False)  # type: ignore[arg-type]
    assert same.measurement.notes == case.measurement.notes[:-1]
    _assert_same_measurement(case.measurement, same.measurement)


# --- real DICOM series of ../shared/data with a mask on their dcm2niix reference grid ---------

REAL = {  # (folder, DICOM series, dcm2niix reference), as in tests/io/test_dcm2niix_reference.py
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


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_series_with_a_mask_written_on_the_dcm2niix_grid(name: str, tmp_path: Path) -> None:
    """A label map computed on dcm2niix's NIfTI (what a segmentation tool given it writes) loads
    exactly onto spinemri's DICOM grid: it equals the same labelling of spinemri's own voxels.

    sag_gre and decubitus: dcm2niix flips the row axis (PSR vs PIR); xa30: another axis order too (RAS).
    """
    folder, series, ref_name = REAL[name]
    root = shared_path(folder)
    image = load_volume(root / series)
    ref: Any = nib.load(root / ref_name)
    ref_data = np.asanyarray(ref.dataobj)
    edges = np.quantile(ref_data, [0.5, 0.8, 0.95])
    labels = np.digitize(ref_data, edges).astype(np.uint8)  # 0..3, a "mask" on dcm2niix's grid
    path = tmp_path / f"{name}_seg.nii.gz"
    nib.save(nib.Nifti1Image(labels, ref.affine, header=ref.header), path)
    got = _load_exact(path, image)
    assert "reoriented_from" in got.meta and got.meta["resampled"] is False
    np.testing.assert_array_equal(got.data, np.digitize(np.asarray(image.data), edges).astype(np.uint8))
    np.testing.assert_array_equal(got.affine, image.affine)
    assert len(np.unique(got.data)) == 4
