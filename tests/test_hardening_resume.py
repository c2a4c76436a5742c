"""Issue 16 (resume, hangs, silent errors): MONOCHROME1, header data files in a cohort, huge labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bad_inputs.guard import run_guarded

from spinemri.errors import DicomError
from spinemri.io.cohort_write import CohortSpec, write_cohort
from spinemri.io.dicom.pixels import invert_monochrome1
from spinemri.pipeline.cohort import run_cohort

SMALL = {"first_level": "T11", "last_level": "S1", "rows": 128, "cols": 96, "n_slices": 9, "supersample": 2}
TABLES = ("vertebrae.csv", "patients.csv", "lesions.csv")


@pytest.fixture(scope="module")
def dicom_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dicom_cohort")
    write_cohort(root, CohortSpec(n_patients=1, seed=11, format="dicom"), **SMALL)
    return root


def _as_monochrome1(folder: Path) -> int:
    """Rewrite every DICOM file under ``folder`` as MONOCHROME1 with inverted stored values."""
    import pydicom

    n = 0
    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        try:
            ds = pydicom.dcmread(f)
        except Exception:  # noqa: BLE001 - not a DICOM file (the mask)
            continue
        if "PixelData" not in ds:
            continue
        arr = ds.pixel_array
        top = (1 << int(ds.BitsStored)) - 1
        ds.PixelData = (top - arr.astype(np.int64)).astype(arr.dtype).tobytes()
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.save_as(f)
        n += 1
    return n


def test_monochrome1_series_gives_the_tables_of_the_monochrome2_original(
    dicom_cohort: Path, tmp_path: Path
) -> None:
    ref = tmp_path / "ref"
    assert run_cohort(dicom_cohort, ref).exit_code == 0
    assert len(pd.read_csv(ref / "lesions.csv")) >= 1  # the phantom has lesions to lose
    mono1 = tmp_path / "mono1"
    shutil.copytree(dicom_cohort, mono1)
    assert _as_monochrome1(mono1) >= 9
    out = tmp_path / "out"
    summary = run_cohort(mono1, out)
    assert summary.exit_code == 0
    for name in TABLES:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    import json

    notes = json.dumps(json.loads((out / "provenance.json").read_text())["cases"])
    assert "MONOCHROME1" in notes


def test_invert_monochrome1_conventions() -> None:
    u12 = np.array([0, 1, 4095], np.uint16)
    np.testing.assert_array_equal(invert_monochrome1(u12.copy(), 12, False), [4095, 4094, 0])
    s16 = np.array([-32768, -1, 0, 32767], np.int16)
    np.testing.assert_array_equal(invert_monochrome1(s16.copy(), 16, True), [32767, 0, -1, -32768])
    ro = np.array([0, 255], np.uint8)
    ro.flags.writeable = False
    np.testing.assert_array_equal(invert_monochrome1(ro, 8, False), [255, 0])


def test_mixed_monochrome1_and_2_is_refused(dicom_cohort: Path, tmp_path: Path) -> None:
    import pydicom

    from spinemri import load_volume

    folder = tmp_path / "mixed"
    shutil.copytree(dicom_cohort, folder)
    dcm = sorted(p for p in folder.rglob("*.dcm"))
    ds = pydicom.dcmread(dcm[0])
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(dcm[0])
    with pytest.raises(DicomError, match="mixes MONOCHROME1"):
        load_volume(dcm[0].parent)


def test_cohort_with_a_header_whose_data_file_is_a_fifo_does_not_hang(tmp_path: Path) -> None:
    import os

    import nibabel as nib

    from spinemri.phantom.make import make_phantom

    img, mask, _ = make_phantom(seed=2, **SMALL)
    cohort = tmp_path / "cohort"
    for pid in ("P1", "P2"):
        (cohort / pid).mkdir(parents=True)
        nib.save(
            nib.Nifti1Image(np.asarray(mask.data), mask.affine), str(cohort / pid / "vertebrae_mask.nii.gz")
        )
    nib.save(nib.Nifti1Image(np.asarray(img.data), img.affine), str(cohort / "P2" / "image.nii.gz"))
    os.mkfifo(tmp_path / "P1.raw")
    (tmp_path / "P1.nhdr").write_text(
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 128 96 9\nencoding: raw\nendian: little\n"
        "data file: P1.raw\n"
    )
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "patient_id,image,mask\n"
        f"P1,{tmp_path / 'P1.nhdr'},{cohort / 'P1' / 'vertebrae_mask.nii.gz'}\n"
        f"P2,{cohort / 'P2' / 'image.nii.gz'},{cohort / 'P2' / 'vertebrae_mask.nii.gz'}\n"
    )
    out = tmp_path / "out"
    res = run_guarded(lambda: run_cohort(cohort, out, manifest=manifest), 60.0)
    assert not res.hung, "the cohort run blocked on the named pipe"
    assert res.error is None, res.error
    assert (res.result.done, res.result.failed) == (1, 1)
    errors = pd.read_csv(out / "errors.csv")
    row = errors.set_index("patient_id").loc["P1"]
    assert (
        row["error"] == "InputError" and "P1.raw" in row["message"] and "not a regular file" in row["message"]
    )


# --- a stray huge label: bounded allocations, reported as unmapped --------------------------------


@pytest.fixture(scope="module")
def huge_label_case() -> tuple[object, object, object]:
    from spinemri.phantom.make import make_phantom

    img, mask, _ = make_phantom(seed=5, **SMALL)
    m = np.asarray(mask.data).astype(np.int64)
    assert m[0, 0, 0] == 0
    m[0, 0, 0] = 2**40  # one stray voxel
    return img, mask, mask.with_data(m)


def test_huge_label_is_an_unmapped_label_with_bounded_allocation(huge_label_case) -> None:
    import tracemalloc
    import warnings

    import spinemri
    from spinemri.errors import LabelSchemeError, SpinemriWarning

    img, mask, huge = huge_label_case
    ref = spinemri.measure(img, mask, scheme="verse", min_lesion_mm3=0)
    nbytes = np.asarray(huge.data).nbytes

    def peak_of(labels: spinemri.Volume) -> tuple[int, list[warnings.WarningMessage], spinemri.Measurement]:
        tracemalloc.start()
        tracemalloc.reset_peak()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                m = spinemri.measure(img, labels, scheme="verse", min_lesion_mm3=0)
            return tracemalloc.get_traced_memory()[1], caught, m
        finally:
            tracemalloc.stop()

    base, _, _ = peak_of(mask)  # the same case without the stray voxel
    peak, caught, got = peak_of(huge)
    # no allocation grows with the label's value (a table of 2**40 + 1 entries is 8 TiB): the stray
    # voxel costs at most one more mask-sized array than the clean mask does
    assert peak < base + nbytes, f"peak allocation {peak} bytes vs {base} without the stray label"
    assert peak < 4 * nbytes, f"peak allocation {peak} bytes for a {nbytes}-byte mask"
    msgs = [str(w.message) for w in caught if issubclass(w.category, SpinemriWarning)]
    assert any(str(2**40) in m and "ignored" in m for m in msgs), msgs
    assert any(str(2**40) in n for n in got.notes)
    pd.testing.assert_frame_equal(got.vertebrae, ref.vertebrae)
    pd.testing.assert_frame_equal(got.lesions, ref.lesions)
    # with scheme auto the label fits no scheme: a clear LabelSchemeError naming it, no MemoryError
    with pytest.raises(LabelSchemeError, match=str(2**40)):
        spinemri.measure(img, huge, min_lesion_mm3=0)


def test_huge_label_helpers_do_not_build_max_label_tables(huge_label_case) -> None:
    import tracemalloc

    from spinemri.anatomy_check import label_shapes
    from spinemri.arrays.labels import label_counts_si
    from spinemri.measurement import vertebra_ids

    _, mask, huge = huge_label_case
    h = np.asarray(huge.data)
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        shapes = label_shapes(h, huge.affine)
        present, counts, _ = label_counts_si(h, huge.affine)
        ids, levels, merged = vertebra_ids(h, {20: "L1", 21: "L2", 2**41: "L3"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * h.nbytes, peak
    assert shapes[2**40].voxels == 1 and 2**40 in present.tolist()
    assert counts[present.tolist().index(2**40)] == 1
    assert levels == ["L1", "L2", "L3"] and merged == [[20], [21], [2**41]]
    m = np.asarray(mask.data)
    np.testing.assert_array_equal(ids, np.where(m == 20, 1, np.where(m == 21, 2, 0)))
    small = label_shapes(m, mask.affine)
    for lab, shape in small.items():  # the same shapes (the compiled and numpy sums differ in the last bits)
        other = shapes[lab]
        assert (other.voxels, other.volume_mm3, other.truncated) == (
            shape.voxels,
            shape.volume_mm3,
            shape.truncated,
        )
        np.testing.assert_allclose(other.centroid_mm, shape.centroid_mm, rtol=0, atol=1e-9)
        np.testing.assert_allclose(other.cov_mm2, shape.cov_mm2, rtol=1e-12, atol=1e-9)


def test_cohort_case_with_a_huge_label_is_measured_and_reported(huge_label_case, tmp_path: Path) -> None:
    import json

    import nibabel as nib

    img, _, huge = huge_label_case
    case = tmp_path / "cohort" / "P1"
    case.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.asarray(img.data), img.affine), str(case / "image.nii.gz"))
    huge_nii = nib.Nifti1Image(np.asarray(huge.data), huge.affine, dtype=np.int64)
    nib.save(huge_nii, str(case / "vertebrae_mask.nii.gz"))
    out = tmp_path / "out"
    summary = run_cohort(tmp_path / "cohort", out, scheme="verse")
    assert (summary.done, summary.failed) == (1, 0)
    notes = json.loads((out / "provenance.json").read_text())["cases"]["P1"]["notes"]
    assert any(str(2**40) in n for n in notes), notes
