"""``spinemri measure``: outputs, reproducibility, provenance, bad input, DICOM vs NIfTI."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

import spinemri
from spinemri.cli import main
from spinemri.errors import SpinemriWarning
from spinemri.io.nifti import save_nifti
from spinemri.io.tables import table_to_csv_bytes
from spinemri.metrics import LESION_COLUMNS, PATIENT_COLUMNS, VERTEBRA_COLUMNS
from spinemri.phantom import LesionSpec

LESIONS = (
    LesionSpec("L2", "focal", 6.0, (0.0, 2.0, 0.0), 0.7),
    LesionSpec("L4", "focal", 5.0, (0.0, -3.0, 2.0), 0.6),
)


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("phantom")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, mask, truth = spinemri.make_phantom(
            seed=3, rows=192, cols=96, n_slices=9, first_level="T12", snr=30, bias=0.0, lesions=LESIONS
        )
    img_path = save_nifti(img, tmp / "img.nii.gz")
    mask_path = save_nifti(mask, tmp / "seg.nii.gz")
    return {
        "dir": tmp,
        "img": img,
        "mask": mask,
        "truth": truth,
        "img_path": img_path,
        "mask_path": mask_path,
    }


def _run(args: list[str]) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        return main(args)


def _measure(files: dict[str, object], *extra: str, image: object = None, mask: object = None) -> int:
    """``spinemri measure IMAGE --mask MASK --scheme verse EXTRA...`` on the phantom files (or the given paths)."""
    image = files["img_path"] if image is None else image
    mask = files["mask_path"] if mask is None else mask
    return _run(["measure", str(image), "--mask", str(mask), "--scheme", "verse", *extra])


def test_measure_writes_every_output(phantom_files: dict[str, object], tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = _measure(phantom_files, "--patient-id", "P01", "--out", str(out))
    assert rc == 0
    for name in ("vertebrae", "lesions", "patients"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.parquet").is_file()
    vt = pd.read_csv(out / "vertebrae.csv", dtype={"labels": str})
    assert list(vt.columns) == list(VERTEBRA_COLUMNS)
    assert list(pd.read_csv(out / "lesions.csv").columns) == list(LESION_COLUMNS)
    assert list(pd.read_csv(out / "patients.csv").columns) == list(PATIENT_COLUMNS)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "vertebrae.parquet"), vt, check_dtype=False, rtol=1e-10
    )
    assert (out / "vertebrae.csv").read_bytes() == table_to_csv_bytes(
        pd.read_parquet(out / "vertebrae.parquet")
    )
    # against the phantom truth: the two planted lesions are found where they are
    truth = phantom_files["truth"].vertebrae.set_index("level")  # type: ignore[attr-defined]
    got = vt.set_index("level")
    assert got.loc[truth.index, "lesion_count"].tolist() == truth["lesion_count"].tolist()
    assert (got["patient_id"] == "P01").all()
    # lesion mask on the image grid, ids matching the table
    les = nib.load(str(out / "masks" / "P01_lesions.nii.gz"))
    img_nii = nib.load(str(phantom_files["img_path"]))
    assert les.shape == img_nii.shape and np.allclose(les.affine, img_nii.affine)
    ids = np.asarray(les.dataobj)
    lt = pd.read_csv(out / "lesions.csv")
    assert sorted(np.unique(ids[ids > 0]).tolist()) == lt["lesion_id"].tolist()
    assert [int((ids == i).sum()) for i in lt["lesion_id"]] == lt["voxels"].tolist()
    # QC picture
    png = out / "qc" / "P01.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # provenance: versions, parameters, input hashes, timings
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["versions"]["numpy"] == np.__version__
    assert prov["parameters"]["segment"]["method"] == "robust"
    assert prov["parameters"]["scheme"]["name"] == "verse"
    digest = hashlib.sha256(Path(str(phantom_files["img_path"])).read_bytes()).hexdigest()
    assert prov["inputs"]["image"]["sha256"] == digest
    assert prov["timings_s"]["load"] >= 0 and prov["timings_s"]["measure_total"] > 0


def test_rerun_gives_byte_identical_tables(phantom_files: dict[str, object], tmp_path: Path) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert _measure(phantom_files, "--method", "local", "--out", str(out)) == 0
    for name in ("vertebrae.csv", "lesions.csv", "patients.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_without_out_prints_the_vertebra_table(
    phantom_files: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _measure(phantom_files) == 0
    out = capsys.readouterr().out
    for level in phantom_files["truth"].vertebrae["level"]:  # type: ignore[attr-defined]
        assert f" {level} " in f" {out} ".replace("\n", " ")
    assert "hi_area_ratio" in out


def test_missing_mask_is_a_usage_error(
    phantom_files: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.nii.gz"
    assert _run(["measure", str(phantom_files["img_path"]), "--mask", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_mask_on_another_grid_needs_resample(
    phantom_files: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mask = phantom_files["mask"]
    shifted = spinemri.Volume(
        mask.data,
        mask.affine
        @ np.array(  # type: ignore[attr-defined]
            [[1, 0, 0, 0.6], [0, 1, 0, 0.0], [0, 0, 1, 0.0], [0, 0, 0, 1]]
        ),
    )
    path = save_nifti(shifted, tmp_path / "shifted_seg.nii.gz")
    assert _run(["measure", str(phantom_files["img_path"]), "--mask", str(path)]) == 2
    err = capsys.readouterr().err
    assert "shifted_seg.nii.gz" in err and "--resample-mask" in err
    assert _measure(phantom_files, "--resample-mask", mask=path) == 0


def test_bad_parameter_is_reported(
    phantom_files: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _measure(phantom_files, "--k", "-1")
    assert rc == 2 and "k" in capsys.readouterr().err


def test_dicom_folder_and_nifti_give_identical_tables(
    phantom_files: dict[str, object], tmp_path: Path
) -> None:
    from spinemri.io.dicom import write as dicom_write

    img = phantom_files["img"]
    dcm_dir = tmp_path / "dicom"
    dicom_write.write_dicom_series(img, dcm_dir, patient_id="P01", uid_seed="test-cli-measure")  # type: ignore[arg-type]
    outs = {}
    for name, image in (("dicom", dcm_dir), ("nifti", phantom_files["img_path"])):
        out = tmp_path / f"out_{name}"  # not the DICOM input folder itself: --out must be new or empty
        assert _measure(phantom_files, "--patient-id", "P01", "--out", str(out), image=image) == 0
        outs[name] = out
    for table in ("vertebrae.csv", "lesions.csv", "patients.csv"):
        a = pd.read_csv(outs["dicom"] / table)
        b = pd.read_csv(outs["nifti"] / table)
        # NIfTI stores the affine in float32, DICOM in decimal strings: world mm agree to ~1e-5 mm
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-4)
        for col in (
            "vertebra_voxels",
            "lesion_voxels",
            "lesion_count",
            "voxels",
            "mid_sagittal_lesion_pixels",
        ):
            if col in a:
                assert a[col].tolist() == b[col].tolist()


@pytest.mark.parametrize(
    "affine",
    [
        np.diag([1.0, 1.0, 1.0, 1.0]),  # RAS: i = L->R, j = P->A, k = I->S
        np.array([[0, 0, 1.0, 0], [-0.8, 0, 0, 0], [0, -0.8, 0, 0], [0, 0, 0, 1]]),  # the phantom's P, I, R
        np.array([[0, -1.0, 0, 0], [0, 0, 2.0, 0], [3.0, 0, 0, 0], [0, 0, 0, 1]]),  # S, L, A
    ],
)
def test_qc_view_puts_superior_up_and_anterior_left(affine: np.ndarray) -> None:
    from spinemri.report.qc import _cut, sagittal_view

    vol = spinemri.Volume(np.zeros((6, 7, 8)), affine)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in vol.shape], indexing="ij"), axis=-1).reshape(-1, 3)
    world = vol.world_coords(ijk).reshape(*vol.shape, 3)
    view = sagittal_view(vol, vol.shape[vol.lr_axis] // 2)
    z = _cut(world[..., 2], view)
    y = _cut(world[..., 1], view)
    assert np.all(np.diff(z, axis=0) < 0)  # superior (larger z) on top, decreasing downwards
    assert np.all(np.diff(y, axis=1) < 0)  # anterior (larger y) on the left, decreasing to the right


def test_dicom_patient_id_is_a_salted_hash_never_the_raw_id(tmp_path, monkeypatch) -> None:
    import hashlib
    import shutil

    import pydicom

    from spinemri.cli import main as cli_main

    sample = Path(__file__).resolve().parents[1] / "sample_data" / "SMR-003"
    dicom = tmp_path / "dicom"
    shutil.copytree(sample / "dicom", dicom)
    for f in dicom.iterdir():
        ds = pydicom.dcmread(f)
        ds.PatientID = "MRN0042"
        ds.PatientName = "Roe^Richard"
        ds.save_as(f)
    monkeypatch.setenv("SPINEMRI_ID_SALT", "study-salt")
    out = tmp_path / "out"
    assert (
        cli_main(["measure", str(dicom), "--mask", str(sample / "vertebrae_mask.nii.gz"), "--out", str(out)])
        == 0
    )
    # independent computation of the documented rule: sha256(salt + PatientID), first 16 hex characters
    expected = "anon-" + hashlib.sha256(b"study-salt" + b"MRN0042").hexdigest()[:16]
    text = (out / "patients.csv").read_text()
    assert text.splitlines()[1].startswith(expected + ",")
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".csv", ".json"):
            assert "MRN0042" not in f.read_text() and "Roe" not in f.read_text()


def test_lean_allocators_put_pyarrow_on_the_system_pool_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``spinemri measure`` asks for pyarrow's system pool (decision 0028), never over a user's choice."""
    from spinemri.commands.measure import lean_allocators

    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    lean_allocators()
    import os

    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "jemalloc"
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
    lean_allocators()
    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system"
