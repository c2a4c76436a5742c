"""Phantom validation: segmentation and metrics against the phantom's independent truth.

The truth (spinemri.phantom) is computed from the analytic lesion shapes on a
supersampled grid, not by spinemri's segmentation or metrics code. The CI part
runs a few representative cases of scripts/validation_grid.py; the full grid is
``pytest -m slow`` (and the script, which writes docs/validation.md's tables).
"""

from __future__ import annotations

import importlib.util
import itertools
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

import spinemri
from spinemri import Volume
from spinemri.errors import SpinemriWarning
from spinemri.params import SegmentParams

ROOT = Path(__file__).resolve().parents[1]
MIN_LESION_MM3 = SegmentParams().min_lesion_mm3


def _grid_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validation_grid", ROOT / "scripts" / "validation_grid.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


vg = _grid_module()


def _check_regime(row: dict[str, object]) -> None:
    """The acceptance criteria at SNR >= 20, contrast >= 2, bias <= 0.2 (docs/validation.md)."""
    assert (
        row["smallest_lesion_mm3"] >= 3 * MIN_LESION_MM3
    )  # precondition: every lesion >= 3x the minimum size
    assert row["count_errors"] == 0, row
    assert row["fp_lesions_clean"] == 0, row
    assert row["max_abs_err_hi_area_ratio"] <= 0.01, row
    assert row["max_abs_err_hi_volume_ratio_focal"] <= 0.01, row
    assert abs(row["err_hi_volume_ratio_diffuse"]) <= 0.01, row  # type: ignore[arg-type]
    assert row["max_abs_err_hi_volume_ratio"] <= 0.01, row  # every vertebra
    assert row["dice"] >= 0.95, row


@pytest.mark.parametrize(
    "snr, bias, contrast, radius, seed, method",
    [
        (20.0, 0.0, 2.0, 3.5, 0, "robust"),
        (20.0, 0.2, 2.0, 3.5, 1, "local"),
        (40.0, 0.2, 3.0, 6.0, 2, "local"),
    ],
)
def test_representative_phantom_cases(
    snr: float, bias: float, contrast: float, radius: float, seed: int, method: str
) -> None:
    _check_regime(vg.run_case(snr, bias, contrast, radius, seed, method))


def test_low_snr_low_contrast_degrades_gracefully() -> None:
    """Outside the asserted regime (SNR 10, contrast 1.5): still no false positives in clean vertebrae."""
    row = vg.run_case(10.0, 0.0, 1.5, 6.0, 0, "robust")
    assert row["fp_lesions_clean"] == 0
    assert row["dice"] > 0.5


@pytest.mark.parametrize("margin_mm", [1.0, 4.0])
def test_t1_dark_polarity_on_the_t1_phantom(margin_mm: float) -> None:
    """T1 contrast: marrow bright, lesions dark; polarity='dark' finds the planted lesions.

    On T1 the cortex is dark too. The phantom's 11 slices cut the lumbar
    bodies at the left and right image border, where their voxels mix with
    dark cortex: the image border is a boundary of the seeding core, so they
    start no lesion, with the default 1 mm margin as with 4 mm.
    """
    from spinemri.phantom import LesionSpec

    lesions = (
        LesionSpec("L2", "focal", 6.0, (0.0, 0.0, 0.0), 0.9),
        LesionSpec("T12", "focal", 5.0, (0, 3.0, 0), 0.9),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, mask, truth = spinemri.make_phantom(
            seed=5,
            contrast="t1",
            first_level="T9",
            rows=320,
            cols=160,
            n_slices=11,
            snr=30,
            bias=0.0,
            lesions=lesions,
        )
        m = spinemri.measure(img, mask, scheme="verse", polarity="dark", margin_mm=margin_mm)
    tv = truth.vertebrae.set_index("level")
    mv = m.vertebrae.set_index("level").loc[tv.index]
    assert mv["lesion_count"].tolist() == tv["lesion_count"].tolist()
    assert (mv["hi_volume_ratio"] - tv["hi_volume_ratio"]).abs().max() <= 0.01


def _reorient(vol: Volume, flips: tuple[int, ...], order: tuple[int, int, int]) -> Volume:
    data, aff = np.asarray(vol.data), vol.affine.copy()
    for ax in flips:
        data = np.flip(data, ax)
        f = np.eye(4)
        f[ax, ax], f[ax, 3] = -1.0, vol.shape[ax] - 1
        aff = aff @ f
    data = np.transpose(data, order)
    p = np.eye(4)
    p[:3, :3] = np.eye(3)[:, list(order)]
    return Volume(np.ascontiguousarray(data), aff @ p, dict(vol.meta))


@pytest.fixture(scope="module")
def small_phantom() -> tuple[Volume, Volume, object]:
    from spinemri.phantom import LesionSpec

    lesions = (
        LesionSpec("L1", "focal", 6.0, (0.0, 2.0, 0.0), 0.7),
        LesionSpec("L3", "irregular", 6.0, (0.0, -3.0, 3.0), 0.8),
        LesionSpec("L2", "focal", 5.0, (0.0, 0.0, 13.0), 0.8),  # crosses the L2/L1 endplate region
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        return spinemri.make_phantom(
            seed=11,
            first_level="T11",
            last_level="L4",
            rows=256,
            cols=128,
            n_slices=13,
            snr=25,
            bias=0.1,
            lesions=lesions,
        )


@pytest.mark.parametrize(
    "flips, order",
    [
        ((0,), (0, 1, 2)),
        ((1,), (0, 1, 2)),
        ((2,), (0, 1, 2)),
        ((), (2, 0, 1)),
        ((), (1, 0, 2)),
        ((0, 1, 2), (2, 1, 0)),
    ],
)
def test_tables_invariant_to_flips_and_axis_order(
    small_phantom: tuple[Volume, Volume, object], flips: tuple[int, ...], order: tuple[int, int, int]
) -> None:
    img, mask, truth = small_phantom
    ref = spinemri.measure(img, mask, scheme="verse")
    moved = spinemri.measure(_reorient(img, flips, order), _reorient(mask, flips, order), scheme="verse")
    for a, b in (
        (ref.vertebrae, moved.vertebrae),
        (ref.lesions, moved.lesions),
        (ref.patient, moved.patient),
    ):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)
    # and the tables agree with the truth
    tv = truth.vertebrae.set_index("level")  # type: ignore[attr-defined]
    mv = ref.vertebrae.set_index("level").loc[tv.index]
    assert mv["lesion_count"].tolist() == tv["lesion_count"].tolist()
    assert mv["vertebra_voxels"].tolist() == tv["vertebra_voxels"].tolist()
    assert mv["mid_sagittal_index"].tolist() == tv["mid_slice"].tolist()
    assert mv["mid_sagittal_vertebra_pixels"].tolist() == tv["mid_vertebra_pixels"].tolist()


def test_dicom_and_nifti_of_the_same_phantom_give_identical_tables(
    small_phantom: tuple[Volume, Volume, object], tmp_path: Path
) -> None:
    from spinemri.io.dicom import write as dicom_write
    from spinemri.io.nifti import save_nifti

    img, mask, _ = small_phantom
    dicom_write.write_dicom_series(img, tmp_path / "dcm", patient_id="X", uid_seed="validation")
    nii = save_nifti(img, tmp_path / "img.nii.gz")
    mask_path = save_nifti(mask, tmp_path / "seg.nii.gz")
    results = []
    for source in (tmp_path / "dcm", nii):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpinemriWarning)
            vol = spinemri.load_volume(source)
            lab = spinemri.load_mask(mask_path, like=vol)
            results.append(spinemri.measure(vol, lab, scheme="verse", patient_id="X"))
    a, b = results
    np.testing.assert_array_equal(np.asarray(a.lesion_mask.data), np.asarray(b.lesion_mask.data))
    for x, y in ((a.vertebrae, b.vertebrae), (a.lesions, b.lesions), (a.patient, b.patient)):
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-6, atol=1e-4)


@pytest.mark.slow
def test_full_grid() -> None:
    """The whole grid of docs/validation.md: the acceptance regime on every seed, both methods with bias 0."""
    for snr, bias, contrast, radius, seed in itertools.product(
        vg.SNRS, vg.BIASES, vg.CONTRAST_RATIOS, vg.RADII_MM, range(2)
    ):
        if snr < 20 or contrast < 2:
            continue
        methods = ["local"] if bias > 0 else ["robust", "local"]
        for method in methods:
            _check_regime(vg.run_case(snr, bias, contrast, radius, seed, method))
