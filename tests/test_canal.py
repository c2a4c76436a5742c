"""Experimental canal / cord screening on an analytic phantom with known areas and ESCC grades.

The phantom is built here: 1 mm voxels, a canal cylinder (radius 10 mm) with a cord cylinder
(radius 3 mm) along z, box-shaped vertebral bodies anterior to the canal, and at the middle level an
epidural mass filling the canal anterior to a plane y = d (grades 1a-1c: the mass alone; 2: the cord
squashed to an ellipse of half the area behind the mass, CSF left behind it; 3: the mass fills the
canal around the squashed cord). Truth: the voxel counts of the drawn structures in the level's
centre slice (the plane through the body centroid perpendicular to the canal's axis is that slice),
and the grade by construction (Bilsky's definitions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path

from spinemri.errors import ConfigError
from spinemri.guidance.bodies import level_bodies
from spinemri.guidance.canal import SCREENING_LABEL, canal_screening, escc_like_grade
from spinemri.guidance.params import CanalParams
from spinemri.volume import Volume

LEVELS = ("T6", "T7", "T8", "T9", "T10")
VERSE = {"T6": 13, "T7": 14, "T8": 15, "T9": 16, "T10": 17}
CANAL_R, CORD_R = 10.0, 3.0
MARROW, CSF, CORD, MASS, THR = 300.0, 1000.0, 400.0, 700.0, 450.0


def canal_phantom(kind: str) -> tuple[Volume, Volume, Volume, Volume, dict[str, float]]:
    nz = 32 * len(LEVELS) + 16
    x = np.arange(50) - 24.5
    y = np.arange(80) - 20.0
    z = np.arange(nz, dtype=float)
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    aff = np.eye(4)
    aff[0, 3], aff[1, 3] = x[0], y[0]
    mask = np.zeros(X.shape, np.uint8)
    centre = {}
    for k, lv in enumerate(LEVELS):
        c = 24 + 32 * (len(LEVELS) - 1 - k)  # cranial level highest
        centre[lv] = c
        mask[(np.abs(X) <= 15) & (Y >= 14) & (Y <= 42) & (np.abs(Z - c) <= 11)] = VERSE[lv]
    canal = X**2 + Y**2 <= CANAL_R**2
    cord = X**2 + Y**2 <= CORD_R**2
    slab = np.abs(Z - centre["T8"]) <= 11
    squashed = (X / CORD_R) ** 2 + ((Y + 1.5) / 1.5) ** 2 <= 1.0  # half the cord's area, behind y = 0
    mass = np.zeros_like(canal)
    if kind in ("1a", "1b", "1c"):
        mass = canal & (Y > {"1a": 7.5, "1b": 5.0, "1c": 2.5}[kind]) & slab
    elif kind == "2":
        cord = np.where(slab, squashed, cord)
        mass = canal & (Y > 0.5) & slab
    elif kind == "3":
        cord = np.where(slab, squashed, cord)
        mass = canal & ~cord & slab
    img = np.full(X.shape, 100.0, np.float32)
    img[mask > 0] = MARROW
    img[canal] = CSF
    img[cord] = CORD
    img[mass] = MASS
    k = centre["T8"]
    truth = {
        "canal": float(canal[:, :, k].sum()),
        "cord": float(cord[:, :, k].sum()),
        "mass": float(mass[:, :, k].sum()),
        "cord_ref": float((X[:, :, 0] ** 2 + Y[:, :, 0] ** 2 <= CORD_R**2).sum()),
    }
    return (
        Volume(img, aff, {"source": "canal phantom"}),
        Volume(mask, aff, {"source": "canal phantom", "mask_kind": "body"}),
        Volume(canal.astype(np.uint8), aff, {"source": "canal"}),
        Volume(cord.astype(np.uint8), aff, {"source": "cord"}),
        truth,
    )


def _screen(kind: str, **params: object) -> tuple[pd.DataFrame, dict[str, float]]:
    img, mask, canal, cord, truth = canal_phantom(kind)
    bodies = level_bodies(mask)
    df = canal_screening(bodies, img, canal, cord, dict.fromkeys(bodies, THR), params=CanalParams(**params))
    return df.set_index("level"), truth


@pytest.mark.parametrize("kind", ["0", "1a", "1b", "1c", "2", "3"])
def test_areas_and_grade_of_an_epidural_mass(kind: str) -> None:
    df, truth = _screen(kind)
    r = df.loc["T8"]
    assert r["canal_area_mm2"] == pytest.approx(truth["canal"], rel=0.03)
    # the 0.5 level of a bilinear read of a binary map passes within ~0.1 mm of the voxel boundary,
    # rounding the voxels' corners: up to ~0.1 mm x the perimeter (cord ~19 mm: 2 mm2)
    assert r["cord_area_mm2"] == pytest.approx(truth["cord"], abs=2.0)
    assert r["epidural_area_mm2"] == pytest.approx(truth["mass"], rel=0.05, abs=2.0)
    assert r["escc_grade"] == kind
    assert (
        r["canal_screen"]
        == {
            "0": "no finding",
            "1a": "possible epidural disease",
            "1b": "possible epidural disease",
            "1c": "possible epidural disease",
            "2": "possible cord compression",
            "3": "possible cord compression",
        }[kind]
    )
    assert bool(r["escc_high_grade"]) is (kind in ("2", "3"))
    # the levels without a mass: nothing
    others = df.drop(index="T8")
    assert (others["escc_grade"] == "0").all() and (others["canal_screen"] == "no finding").all()
    assert (df["canal_screen_label"] == SCREENING_LABEL).all()


def test_compressed_cord_area_is_measured() -> None:
    df, truth = _screen("2")
    r = df.loc["T8"]
    # the squashed cord has about half its area (analytic: pi * 3 * 1.5 vs pi * 3 * 3)
    assert r["cord_area_ratio"] == pytest.approx(truth["cord"] / truth["cord_ref"], abs=0.1)
    assert r["cord_area_ratio"] < 0.6


def test_high_grade_cut_is_a_parameter() -> None:
    df, _ = _screen("1c", high_grade_from="1c")
    assert bool(df.loc["T8", "escc_high_grade"]) is True
    df, _ = _screen("1c")
    assert bool(df.loc["T8", "escc_high_grade"]) is False
    with pytest.raises(ConfigError, match="high_grade_from"):
        CanalParams(high_grade_from="1b")


def test_grade_rules() -> None:
    p = CanalParams()
    assert escc_like_grade(0.0, 0.5, True, 0.4, 0.0, p) == "0"  # no epidural tumour: Bilsky 0
    assert escc_like_grade(10.0, 0.95, False, float("nan"), 1.0, p) == "1a"  # below the conus
    assert escc_like_grade(10.0, 0.85, False, 1.0, 1.0, p) == "1b"
    assert escc_like_grade(10.0, 0.95, True, 1.0, 1.0, p) == "1c"


@pytest.mark.shared_data
def test_real_spineps_sample_raises_no_flag() -> None:
    from spinemri.io.load import load_volume
    from spinemri.io.mask_formats import read_spineps
    from spinemri.measurement import measure

    vert = shared_path("tptbox_spineps_sample_mri", "sub-mri_seg-vert_label-6_msk.nii.gz")
    sm = read_spineps(vert)
    img = load_volume(shared_path("tptbox_spineps_sample_mri", "sub-mri_label-6_T2w.nii.gz"))
    with pytest.warns(Warning):
        m = measure(img, sm.vertebrae, scheme="verse", check_plausibility=False)
    bodies = level_bodies(sm.vertebrae, m.scheme, mask_kind="body")
    thr = dict(zip(m.vertebrae["level"], m.vertebrae["threshold"], strict=True))
    df = canal_screening(bodies, img, sm.structures["spinal_canal"], sm.structures["spinal_cord"], thr)
    # T2 without fat suppression, lumbar-sized crop below the conus: the canal signal (CSF with the
    # cauda equina) is not one intensity (robust spread 0.80), so no lesion-like signal is called
    assert not df["canal_screen"].str.startswith("possible").any(), df
    assert df["canal_screen"].str.contains("not a uniform CSF signal").all()


@pytest.mark.filterwarnings("ignore:.*marrow.*brighter:UserWarning")
def test_case_entry_runs_the_screening_only_when_asked() -> None:
    from spinemri.guidance import guidance_case
    from spinemri.measurement import measure

    img, mask, canal, cord, _ = canal_phantom("2")
    m = measure(img, mask, check_plausibility=False)
    st = {"spinal_canal": canal, "spinal_cord": cord}
    off = guidance_case(m, mask, img, structures=st)
    assert "escc_grade" not in off.columns  # experimental: off by default
    on = guidance_case(m, mask, img, structures=st, canal=True).set_index("level")
    assert on.loc["T8", "escc_grade"] == "2"
    assert (on.drop(index="T8")["escc_grade"] == "0").all()
    # without the maps: said, never a grade
    none = guidance_case(m, mask, img, canal=True)
    assert none["canal_screen"].str.startswith("not assessable").all()
