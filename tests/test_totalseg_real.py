"""Real data: TotalSegmentator's CT spine-report test case (../shared/data/totalsegmentator_ct_spine_report).

Per-vertebra volumes from ``totalseg_vertebrae_pp_refined.nii.gz`` must reproduce
TotalSegmentator's own ``spine_report.json`` ``volume_ml`` to the voxel, and
per-vertebra intensity statistics must equal an independent numpy/scipy
computation on the same masks (whole and eroded).
"""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pytest
from conftest import shared_path
from scipy import ndimage

import spinemri
from spinemri.errors import SpinemriWarning

pytestmark = pytest.mark.shared_data

CASE = "totalsegmentator_ct_spine_report"
# ids of totalseg_vertebrae_pp_refined: 1 = C1 ... 24 = L5 (the case README); L1..L5 = 20..24
LEVEL_IDS = {"T12": 19, "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24}


@pytest.fixture(scope="module")
def case() -> dict[str, object]:
    root = shared_path(CASE, "tests", "reference_files")
    ct = root / "example_ct.nii.gz"
    seg = root / "spine_report" / "test_result" / "totalseg_vertebrae_pp_refined.nii.gz"
    report = json.loads((root / "spine_report" / "example_ct_report" / "spine_report.json").read_text())[
        "results"
    ]
    image = spinemri.load_volume(ct)
    mask = spinemri.load_mask(seg, like=image)
    # independent arrays straight from nibabel (no spinemri code)
    ct_arr = np.asarray(nib.load(str(ct)).dataobj).astype(np.float64)
    seg_arr = np.asarray(nib.load(str(seg)).dataobj).astype(np.int64)
    return {"image": image, "mask": mask, "report": report, "ct": ct_arr, "seg": seg_arr}


def _measure(case: dict[str, object], **options: object) -> spinemri.Measurement:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        # CT in HU: refused as MR marrow unless overridden (issue 13, tests/test_plausibility.py); the
        # lesion step runs but is meaningless here; only volumes and intensities are checked
        image, mask = case["image"], case["mask"]
        return spinemri.measure(image, mask, scheme="verse", check_plausibility=False, **options)  # type: ignore[arg-type]


def test_volumes_reproduce_spine_report_to_the_voxel(case: dict[str, object]) -> None:
    m = _measure(case)
    vt = m.vertebrae.set_index("level")
    assert list(vt.index) == list(LEVEL_IDS)
    assert vt.loc["T12", "truncated"] and not vt.loc[["L1", "L2", "L3", "L4", "L5"], "truncated"].any()
    seg = case["seg"]
    report = case["report"]
    for level, lid in LEVEL_IDS.items():
        n = int(np.count_nonzero(seg == lid))  # type: ignore[operator]
        assert vt.loc[level, "vertebra_voxels"] == n
        assert vt.loc[level, "vertebra_volume_mm3"] == pytest.approx(n * 27.0, rel=1e-6)
        key = f"vertebrae_{level}_volume_ml"
        if key in report:  # type: ignore[operator]
            # spine_report rounds to 0.01 ml; one voxel is 0.027 ml, so this pins the count exactly
            assert round(vt.loc[level, "vertebra_volume_mm3"] / 1000.0, 2) == report[key]  # type: ignore[index]
            assert abs(vt.loc[level, "vertebra_volume_mm3"] / 1000.0 - report[key]) < 0.027 / 2  # type: ignore[index]
    assert {f"vertebrae_{lv}_volume_ml" for lv in ("L1", "L2", "L3", "L4", "L5")} <= set(report)  # type: ignore[arg-type]


def test_intensities_match_numpy_on_the_same_masks(case: dict[str, object]) -> None:
    m = _measure(case)
    vt = m.vertebrae.set_index("level")
    ct, seg = case["ct"], case["seg"]
    for level, lid in LEVEL_IDS.items():
        vals = ct[seg == lid]  # type: ignore[index,operator]
        assert vt.loc[level, "mean_intensity"] == pytest.approx(vals.mean(), rel=1e-12)
        assert vt.loc[level, "median_intensity"] == np.median(vals)


def test_eroded_intensities_match_scipy_erosion(case: dict[str, object]) -> None:
    # 3 mm isotropic voxels: a 3 mm erosion is a 3x3x3 box (one voxel along each axis);
    # the image border is not a boundary (T12 is cut by the field of view): border_value=1
    m = _measure(case, intensity_erosion_mm=3.0)
    vt = m.vertebrae.set_index("level")
    ct, seg = case["ct"], case["seg"]
    cross = np.ones((3, 3, 3), bool)
    for level, lid in LEVEL_IDS.items():
        core = ndimage.binary_erosion(seg == lid, structure=cross, border_value=1)  # type: ignore[operator]
        assert core.sum() > 100
        vals = ct[core]  # type: ignore[index]
        assert vt.loc[level, "mean_intensity"] == pytest.approx(vals.mean(), rel=1e-12)
        assert vt.loc[level, "median_intensity"] == np.median(vals)
        assert vt.loc[level, "vertebra_voxels"] == int(np.count_nonzero(seg == lid))  # type: ignore[operator]


def test_readme_recipe_for_spine_report_intensities(case: dict[str, object]) -> None:
    """The reference's intensity recipe (README): 2x2x2-block erosion; spinemri's per-label medians agree."""
    from spinemri.arrays.grouped import grouped_medians

    ct, seg, report = case["ct"], case["seg"], case["report"]
    r = 4.0 / 3.0
    x, y, z = np.ogrid[-r : r + 1, -r : r + 1, -r : r + 1]
    e = (x**2 + y**2 + z**2) / r**2 <= 1
    assert int(e.sum()) == 8
    ids = np.zeros(seg.shape, np.int64)  # type: ignore[union-attr]
    for lid in range(20, 25):
        ids[ndimage.binary_erosion(seg == lid, structure=e)] = lid  # type: ignore[operator]
    sel = ids > 0
    med = grouped_medians(ct[sel], ids[sel], 25)  # type: ignore[index]
    for level in ("L1", "L2", "L3", "L4", "L5"):
        lid = LEVEL_IDS[level]
        vals = ct[ids == lid]  # type: ignore[index]
        assert round(float(vals.mean()), 2) == report[f"vertebrae_{level}_intensity"]  # type: ignore[index]
        assert med[lid] == report[f"vertebrae_{level}_intensity_median"]  # type: ignore[index]
