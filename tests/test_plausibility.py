"""Issue 13, Deliver 4: plausibility of modality, contrast polarity and labels (spinemri.plausibility).

A CT image (HU) measured as MR marrow is refused (PlausibilityError, an InputError: exit 2 for
``spinemri measure``) unless overridden; labels far too small or thin for vertebral bodies (cord,
canal, discs labelled by level) are flagged in the ``plausibility`` columns with a warning, and a mask
where every label is implausible is refused. Rules and thresholds: docs/supported-inputs.md.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path

import spinemri
from spinemri import plausibility as pl
from spinemri.cli import main as cli_main
from spinemri.errors import InputError, PlausibilityError, SpinemriWarning
from spinemri.params import RunConfig

CT_DIR = ("totalsegmentator_ct_spine_report", "tests", "reference_files")
CT_MASK = ("spine_report", "test_result", "totalseg_vertebrae_pp_refined.nii.gz")


def _quiet_measure(image: spinemri.Volume, mask: spinemri.Volume, **kw: object) -> spinemri.Measurement:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        return spinemri.measure(image, mask, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def phantom() -> tuple[spinemri.Volume, spinemri.Volume]:
    img, mask, _ = spinemri.make_phantom(seed=0)
    return img, mask


def _ct_paths() -> tuple[Path, Path]:
    base = shared_path(*CT_DIR)
    return base / "example_ct.nii.gz", base.joinpath(*CT_MASK)


# --- modality -------------------------------------------------------------------------------


def test_real_ct_is_refused_as_mr_naming_the_file_and_measured_when_overridden() -> None:
    image_path, mask_path = _ct_paths()
    image = spinemri.load_volume(image_path)
    mask = spinemri.load_mask(mask_path, like=image)
    with pytest.raises(PlausibilityError) as exc:
        _quiet_measure(image, mask, scheme="verse")
    msg = str(exc.value)
    assert isinstance(exc.value, InputError)
    assert "example_ct.nii.gz" in msg and "Hounsfield" in msg and "check_plausibility=False" in msg
    with pytest.warns(SpinemriWarning, match="overridden"):
        m = spinemri.measure(image, mask, scheme="verse", check_plausibility=False)
    assert m.patient.iloc[0]["plausibility"].split(";")[0] == "ct_hu"
    assert list(m.vertebrae["level"]) == ["T12", "L1", "L2", "L3", "L4", "L5"]
    assert set(m.vertebrae["plausibility"]) == {"ok"}  # real vertebral bodies
    assert m.parameters()["check_plausibility"] is False


def test_phantom_rescaled_to_hu_is_refused(phantom: tuple[spinemri.Volume, spinemri.Volume]) -> None:
    img, mask = phantom
    d = img.data.astype(np.float32)
    hu = (d - d.min()) / (d.max() - d.min()) * 2000.0 - 1000.0  # background -> -1000 HU
    ct = spinemri.Volume(hu, img.affine, {"source": "rescaled.nii.gz"})
    with pytest.raises(PlausibilityError, match="rescaled.nii.gz.*Hounsfield"):
        _quiet_measure(ct, mask)


def test_dicom_modality_ct_is_refused(phantom: tuple[spinemri.Volume, spinemri.Volume]) -> None:
    img, mask = phantom
    with pytest.raises(PlausibilityError, match="Modality is 'CT'"):
        _quiet_measure(img.with_meta(modality="CT"), mask)
    m = _quiet_measure(img.with_meta(modality="CT"), mask, check_plausibility=False)
    assert m.patient.iloc[0]["plausibility"] == "modality_ct"


def test_unit_checks_on_hand_made_arrays() -> None:
    mr = np.full((10, 10, 10), 100.0)
    assert pl.check_modality(mr, {"modality": "MR"}) == []
    neg = mr.copy()
    neg[0] = -50.0  # 10% negative, no air
    assert [(f.severity, f.flag) for f in pl.check_modality(neg, {})] == [("warning", "negative_intensities")]
    air = mr.copy()
    air[:2] = -1000.0
    assert [(f.severity, f.flag) for f in pl.check_modality(air, {})] == [("error", "ct_hu")]
    assert pl.check_modality(np.zeros((4, 4, 4), np.uint16), {"modality": ""}) == []


# --- polarity -------------------------------------------------------------------------------


def test_polarity_t1_phantom_measured_as_bright_is_flagged_not_refused() -> None:
    img, mask, _ = spinemri.make_phantom(seed=0, contrast="t1")
    with pytest.warns(SpinemriWarning, match="polarity 'dark'"):
        m = spinemri.measure(img, mask)
    assert m.patient.iloc[0]["plausibility"] == "marrow_bright"
    assert _quiet_measure(img, mask, polarity="dark").patient.iloc[0]["plausibility"] == "ok"


# --- labels ---------------------------------------------------------------------------------


def _with_extra_label(
    phantom: tuple[spinemri.Volume, spinemri.Volume], box: tuple[slice, slice, slice]
) -> spinemri.Volume:
    img, mask = phantom
    lab = np.array(mask.data)
    assert not lab[box].any()  # the extra "vertebra" overlaps no real one
    lab[box] = 2  # VerSe 2 = C2: a level the phantom (C3-S1) does not have
    return spinemri.Volume(lab, mask.affine, {"source": "extra_seg.nii.gz"})


@pytest.mark.parametrize(
    "name, box, reason",
    [
        # cord-like tube: 5 x 5 voxels (6 mm) across, 16 rows (20 mm) long, anterior to the spine
        ("cord", (slice(40, 45), slice(100, 116), slice(6, 8)), "small_volume;narrow"),
        # disc-like slab: 24 x 4 voxels (30 x 5 mm) over 9 slices (36 mm)
        ("disc", (slice(30, 54), slice(100, 104), slice(3, 12)), "thin"),
    ],
)
def test_cord_or_disc_label_as_a_vertebra_is_flagged(
    phantom: tuple[spinemri.Volume, spinemri.Volume],
    name: str,
    box: tuple[slice, slice, slice],
    reason: str,
) -> None:
    img, _ = phantom
    mask = _with_extra_label(phantom, box)
    with pytest.warns(SpinemriWarning, match="extra_seg.nii.gz: labels far too small or thin.*C2"):
        m = spinemri.measure(img, mask, scheme="verse")
    vt = m.vertebrae.set_index("level")
    assert reason in vt.loc["C2", "plausibility"]
    assert set(vt.drop(index="C2")["plausibility"]) == {"ok"}
    assert m.patient.iloc[0]["plausibility"] == "labels(C2)"


def test_mask_of_only_cord_segments_is_refused_unless_overridden(
    phantom: tuple[spinemri.Volume, spinemri.Volume],
) -> None:
    img, mask = phantom
    lab = np.zeros(mask.shape, np.uint8)
    for n, label in enumerate((2, 3, 4)):  # cord segments labelled C2, C3, C4 by level
        lab[40:45, 100 + 17 * n : 116 + 17 * n, 6:8] = label
    cord = spinemri.Volume(lab, mask.affine, {"source": "cord_labeled.nii.gz"})
    with pytest.raises(PlausibilityError, match="cord_labeled.nii.gz.*no label looks like a vertebra"):
        _quiet_measure(img, cord, scheme="verse")
    m = _quiet_measure(img, cord, scheme="verse", check_plausibility=False)
    assert (m.vertebrae["plausibility"] != "ok").all()


def test_real_cord_labelled_by_level_is_refused() -> None:
    base = shared_path("sct_testing_data_cervical_t2", "t2")
    image = spinemri.load_volume(base / "t2.nii.gz")
    mask = spinemri.load_mask(base / "t2_seg-manual_labeled.nii.gz", like=image)
    with pytest.raises(PlausibilityError, match="t2_seg-manual_labeled.nii.gz"):
        _quiet_measure(image, mask, scheme="verse")


def test_label_shapes_exact_on_a_box() -> None:
    vid = np.zeros((20, 20, 20), np.uint8)
    vid[2:12, 3:8, 4:6] = 1  # 10 x 5 x 2 voxels
    aff = np.diag([2.0, 1.0, 3.0, 1.0])  # world x = 2 i, y = j, z = 3 k
    s = pl.label_shapes(vid, 1, aff)
    assert s.volume_mm3[0] == 100 * 6.0
    assert (s.lr_mm[0], s.ap_mm[0], s.height_mm[0]) == (20.0, 5.0, 6.0)
    assert s.area_mm2[0] == 100.0


# --- plausible inputs: unchanged apart from the added columns ---------------------------------


def test_normal_phantom_and_sample_data_pass(phantom: tuple[spinemri.Volume, spinemri.Volume]) -> None:
    img, mask = phantom
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpinemriWarning)  # no plausibility warning
        m = spinemri.measure(img, mask)
    assert set(m.vertebrae["plausibility"]) == {"ok"} and m.patient.iloc[0]["plausibility"] == "ok"
    checked = m.vertebrae.drop(columns="plausibility")
    unchecked = _quiet_measure(img, mask, check_plausibility=False).vertebrae.drop(columns="plausibility")
    pd.testing.assert_frame_equal(checked, unchecked)
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "SMR-002"
    image = spinemri.load_volume(sample / "image.nii.gz")
    sm = spinemri.measure(image, spinemri.load_mask(sample / "vertebrae_mask.nii.gz", like=image))
    assert set(sm.vertebrae["plausibility"]) == {"ok"} and sm.patient.iloc[0]["plausibility"] == "ok"


# --- options and CLI ------------------------------------------------------------------------


def test_option_validation_and_provenance() -> None:
    with pytest.raises(spinemri.ConfigError):
        RunConfig(check_plausibility="no")  # type: ignore[arg-type]
    assert "check_plausibility" not in RunConfig().measure_options()
    assert RunConfig(check_plausibility=False).measure_options()["check_plausibility"] is False
    img, mask, _ = spinemri.make_phantom(seed=1, rows=128, cols=64, n_slices=7, first_level="L1")
    with pytest.raises(spinemri.ConfigError):
        spinemri.measure(img, mask, check_plausibility="yes")  # type: ignore[arg-type]


def test_cli_measure_refuses_ct_exit_2_and_override_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image_path, mask_path = _ct_paths()
    args = ["measure", str(image_path), "--mask", str(mask_path), "--scheme", "verse"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "example_ct.nii.gz" in err and "--no-plausibility-check" in err
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        assert cli_main([*args, "--no-plausibility-check", "--out", str(out)]) == 0
    assert pd.read_csv(out / "patients.csv")["plausibility"].iloc[0].startswith("ct_hu")
    assert '"check_plausibility": false' in (out / "provenance.json").read_text(encoding="utf-8")


def test_cli_run_fails_the_ct_case_exit_1_and_override_measures_it(tmp_path: Path) -> None:
    image_path, mask_path = _ct_paths()
    cohort = tmp_path / "cohort"
    case = cohort / "CT-1"
    case.mkdir(parents=True)
    (case / "image.nii.gz").write_bytes(image_path.read_bytes())
    (case / "vertebrae_mask.nii.gz").write_bytes(mask_path.read_bytes())
    out = tmp_path / "out"
    base = ["run", str(cohort), "--out", str(out), "--scheme", "verse", "--quiet"]
    assert cli_main(base) == 1
    errors = pd.read_csv(out / "errors.csv")
    assert errors["error"].tolist() == ["PlausibilityError"] and "Hounsfield" in errors["message"].iloc[0]
    assert cli_main([*base, "--no-plausibility-check"]) == 0
    assert pd.read_csv(out / "patients.csv")["plausibility"].iloc[0].startswith("ct_hu")
    with pytest.raises(SystemExit) as usage:  # argparse: a flag takes no value
        cli_main(["run", str(cohort), "--out", str(out), "--no-plausibility-check=x"])
    assert usage.value.code == 2
