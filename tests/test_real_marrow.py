"""Real marrow (docs/validation.md, "Real marrow"): false positives on six real lumbar MRIs without
known metastases, and lesions planted into that marrow
(../shared/data/real_lumbar_mri_vertebral_bodies; skipped when absent).

The planted truth is the analytic sphere volume ``4/3·π·r³`` (the sphere lies 1 mm inside its
vertebra's mask; its boundary voxels carry their supersampled partial volume), computed by
``tests/real_marrow.py`` without spinemri's segmentation or metrics code.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from conftest import shared_path
from real_marrow import (
    CASES,
    DATASET,
    POSITIONS,
    contrast_model,
    load_case,
    plant_every_vertebra,
    recovered,
    volume_bound_mm3,
)

import spinemri
from spinemri import Volume

pytestmark = pytest.mark.shared_data

#: The contrast models of tests/real_marrow.py: T2 TSE texture x 1.5; Dixon water image: the lesion's
#: water-rich tissue at 3.5 x the dark fatty marrow (the paravertebral muscle's level in these images).
CONTRAST = {"multiply": 1.5, "add": 3.5}

#: Plantings of the slow grid that fail with the defaults, (case, level, position, radius): none since
#: decision 0030. The last three (docs/decisions/0027-marrow-split-cores.md) were lesions joined to a thin
#: bright structure of the real image (the chu2015_10 L5 vein, a sheet in chu2015_04 T11's lateral shell)
#: at 0.64-0.66 of their contrast; the neck split (component_rules.split_necks) judges them apart.
KNOWN_MISSES: dict[tuple[str, str, str, float], str] = {}


def _measure(img: object, mask: object, **options: float) -> spinemri.Measurement:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the scheme note; nothing else is expected here
        return spinemri.measure(img, mask, scheme="verse", **options)  # type: ignore[arg-type]


def _n_involved(**options: float) -> tuple[int, int]:
    folder = shared_path(DATASET)
    involved = total = 0
    for case in CASES:
        img, mask = load_case(folder, case)
        m = _measure(img, mask, **options)
        involved += int(m.vertebrae["involved"].sum())
        total += len(m.vertebrae)
    return involved, total


def test_defaults_flag_at_most_one_of_36_vertebrae() -> None:
    """Issue 13: at most 5 % (1.8 of 36); measured 1 (chu2015_04 L2, a basivertebral vein branch
    7-10 mm deep); 18 before seed_depth_mm and min_edge_step were the defaults."""
    involved, total = _n_involved()
    assert total == 36
    assert involved <= 1


def test_rules_off_flag_the_shell_and_vein_false_positives() -> None:
    """``seed_depth_mm=0, min_edge_step=0`` turn the rules off: the false positives they remove
    (partial volume in the outer shell, veins, the Dixon lateral ramp) come back, beyond 5 %."""
    involved, total = _n_involved(seed_depth_mm=0.0, min_edge_step=0.0)
    assert involved > 0.05 * total


#: The shell and contrast rules of docs/validation.md, "Real marrow" (opt-in ``plateau_k``).
SHELL_AND_CONTRAST = {"seed_depth_mm": 3.0, "plateau_k": 7.0, "min_edge_step": 0.0}


def test_shell_and_contrast_rules_keep_false_positives_under_5_percent() -> None:
    involved, total = _n_involved(**SHELL_AND_CONTRAST)
    assert total == 36
    assert involved <= 0.05 * total  # measured: 0 of 36


def _check_planted(case: str, where: str, radius_mm: float) -> list[str]:
    """Plant one sphere per vertebra of ``case``; the problems found (empty: all found within bound)."""
    img, mask = load_case(shared_path(DATASET), case)
    data, labels = np.asarray(img.data), np.asarray(mask.data)  # type: ignore[attr-defined]
    model = contrast_model(case)
    new, planted = plant_every_vertebra(data, labels, radius_mm, where, CONTRAST[model], model)
    assert planted, f"{case}: no vertebra deep enough for r = {radius_mm} mm"
    m = _measure(Volume(new, img.affine, meta=img.meta), mask)  # type: ignore[attr-defined]
    ids = np.asarray(m.lesion_mask.data)
    voxel_mm3 = float(np.prod(img.spacing))  # type: ignore[attr-defined]
    level_of = dict(zip(m.vertebrae["label"], m.vertebrae["level"], strict=True))
    problems = []
    for label, p in planted:
        key = (case, str(level_of[label]), where, radius_mm)
        if key in KNOWN_MISSES:
            continue
        found, volume = recovered(ids, p, voxel_mm3)
        err = volume - p.volume_mm3
        if not found or abs(err) > volume_bound_mm3(p):
            problems.append(
                f"{key}: found={found}, {volume:.0f} mm3 for {p.volume_mm3:.0f} "
                f"(bound {volume_bound_mm3(p):.0f} mm3)"
            )
    return problems


@pytest.mark.parametrize(
    "case, where, radius_mm",
    [
        ("chu2015_04", "centre", 4.0),
        ("chu2015_04", "inferior", 6.0),
        ("chu2015_16", "lateral_high", 8.0),
        ("myosegmentum_25", "centre", 6.0),
        ("myosegmentum_03", "superior", 4.0),
        ("myosegmentum_08", "lateral_high", 8.0),
    ],
)
def test_planted_lesions_in_real_marrow_are_found(case: str, where: str, radius_mm: float) -> None:
    """A few plantings per case kind (CI); the whole grid is the slow test below."""
    assert _check_planted(case, where, radius_mm) == []


@pytest.mark.slow
def test_planted_lesion_grid_in_real_marrow() -> None:
    """Every case, position (centre, both endplates, both lateral edges) and radius 4 and 8 mm."""
    problems: list[str] = []
    for case, where, radius_mm in itertools.product(CASES, POSITIONS, (4.0, 8.0)):
        problems += _check_planted(case, where, radius_mm)
    assert problems == []
