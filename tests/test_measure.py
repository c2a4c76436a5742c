"""``spinemri.measure``: schemes, merging, warnings, parameters, and invariance to array orientation."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import spinemri
from spinemri import Volume
from spinemri.errors import ConfigError, GeometryError, InputError, LabelSchemeError, SpinemriWarning
from spinemri.measurement import Measurement
from spinemri.params import SegmentParams


def small_case(rng: np.random.Generator) -> tuple[Volume, Volume]:
    """Five VerSe-labelled boxes (T11..L3) stacked along array axis 1 (superior), a disc label, two lesions.

    Axis 0 = left-right, axis 1 = inferior -> superior, axis 2 = posterior -> anterior.
    """
    shape = (17, 64, 30)
    img = np.full(shape, 20.0) + rng.normal(0, 2.0, shape)
    lab = np.zeros(shape, np.uint8)
    for n, label in enumerate([22, 21, 20, 19, 18]):  # L3 at the bottom, T11 at the top
        j0 = 4 + 12 * n
        lab[3:14, j0 : j0 + 10, 6:24] = label
        lab[3:14, j0 + 10 : j0 + 12, 6:24] = 100  # a disc-like label, not in the scheme
        img[3:14, j0 : j0 + 10, 6:24] = 100.0 + rng.normal(0, 4.0, (11, 10, 18))
    img[6:11, 18:22, 10:15] += 150.0  # lesion in L2 (label 21, rows 16..25)
    img[8:10, 41:44, 18:21] += 150.0  # lesion in T12 (label 19, rows 40..49)
    aff = np.array([[-3.0, 0, 0, 25.0], [0, 0, 0.7, -60.0], [0, 0.7, 0, -300.0], [0, 0, 0, 1]])
    return Volume(img, aff, {"source": "img"}), Volume(lab, aff, {"source": "seg.nii.gz"})


def test_measure_returns_tables_and_warns_once_about_unmapped_labels(rng: np.random.Generator) -> None:
    vol, mask = small_case(rng)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m = spinemri.measure(vol, mask, scheme="verse", min_lesion_mm3=5.0)
    msgs = [str(w.message) for w in rec if issubclass(w.category, SpinemriWarning)]
    assert len(msgs) == 1 and "100" in msgs[0] and "seg.nii.gz" in msgs[0]
    assert isinstance(m, Measurement)
    assert m.unmapped_labels == (100,)
    assert list(m.vertebrae["level"]) == ["T11", "T12", "L1", "L2", "L3"]
    vt = m.vertebrae.set_index("level")
    assert vt.loc["L2", "lesion_voxels"] == 5 * 4 * 5
    assert vt.loc["T12", "lesion_voxels"] == 2 * 3 * 3
    assert vt["lesion_count"].tolist() == [0, 1, 0, 1, 0]
    assert m.patient.iloc[0]["involved_levels"] == "T12;L2"
    assert m.lesion_mask.shape == vol.shape and np.array_equal(m.lesion_mask.affine, vol.affine)
    assert sorted(np.unique(m.lesion_mask.data).tolist()) == [0, 1, 2]
    assert m.scheme.name == "verse" and m.patient_id == "patient"
    assert set(m.timings_s) >= {"segment", "metrics", "total"}
    assert m.parameters()["segment"]["min_lesion_mm3"] == 5.0


def test_patient_id_precedence(rng: np.random.Generator) -> None:
    vol, mask = small_case(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        assert spinemri.measure(vol, mask, scheme="verse").patient_id == "patient"
        tagged = vol.with_meta(patient_id="sub-07")
        assert spinemri.measure(tagged, mask, scheme="verse").patient.iloc[0]["patient_id"] == "sub-07"
        m = spinemri.measure(tagged, mask, scheme="verse", patient_id="P1")
    assert m.patient_id == "P1" and (m.vertebrae["patient_id"] == "P1").all()


def test_auto_scheme_and_merged_labels(rng: np.random.Generator) -> None:
    vol, mask = small_case(rng)
    data = np.asarray(mask.data).copy()
    data[data == 100] = 0
    # TotalSegmentator 'total': 25 sacrum and 26 vertebrae_S1 both map to S1 -> one row
    ts = np.zeros_like(data)
    for verse, total in [(18, 33), (19, 32), (20, 31), (21, 30), (22, 29)]:
        ts[data == verse] = total
    ts[3:14, 0:2, 6:24] = 25
    ts[3:14, 2:4, 6:24] = 26
    m = spinemri.measure(vol, mask.with_data(ts), scheme="totalseg")
    assert list(m.vertebrae["level"]) == ["T11", "T12", "L1", "L2", "L3", "S1"]
    s1 = m.vertebrae.set_index("level").loc["S1"]
    assert s1["vertebra_voxels"] == 11 * 4 * 18 and s1["labels"] == "25;26" and s1["label"] == 25
    auto = spinemri.measure(vol, mask.with_data(data), scheme="auto")
    assert auto.scheme.name == "verse" and "auto" in auto.scheme_reason


def test_bad_inputs(rng: np.random.Generator) -> None:
    vol, mask = small_case(rng)
    with pytest.raises(ConfigError, match="unknown parameter"):
        spinemri.measure(vol, mask, scheme="verse", thresh=3)
    with pytest.raises(ConfigError, match="method"):
        spinemri.measure(vol, mask, scheme="verse", method="magic")
    shifted = Volume(mask.data, np.vstack([mask.affine[:3] + [[0, 0, 0, 5.0]] * 3, [0, 0, 0, 1]]), mask.meta)
    with pytest.raises(GeometryError, match=r"seg\.nii\.gz.*load_mask"):
        spinemri.measure(vol, shifted, scheme="verse")
    with pytest.raises(LabelSchemeError):
        spinemri.measure(vol, mask.with_data(np.where(mask.data > 0, 99, 0).astype(np.uint8)), scheme="verse")
    with pytest.raises(InputError, match="non-integer"):
        spinemri.measure(vol, mask.with_data(np.asarray(mask.data) * 0.5), scheme="verse")


def test_params_object_and_overrides(rng: np.random.Generator) -> None:
    vol, mask = small_case(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        m = spinemri.measure(vol, mask, scheme="verse", params=SegmentParams(k=4.0), method="local")
    assert m.params.k == 4.0 and m.params.method == "local"


def _tables(m: Measurement) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return m.vertebrae, m.lesions, m.patient


@pytest.mark.parametrize(
    "transform",
    ["flip0", "flip1", "flip2", "perm120", "perm210", "flip_all_perm102"],
)
def test_tables_do_not_depend_on_array_orientation(rng: np.random.Generator, transform: str) -> None:
    vol, mask = small_case(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        ref = spinemri.measure(vol, mask, scheme="verse", min_lesion_mm3=5.0)
        shape = np.array(vol.shape)
        img, lab, aff = np.asarray(vol.data), np.asarray(mask.data), vol.affine.copy()
        if transform.startswith("flip"):
            axes = [0, 1, 2] if transform.startswith("flip_all") else [int(transform[4])]
            for ax in axes:
                img, lab = np.flip(img, ax), np.flip(lab, ax)
                # new index n-1-i -> old voxel: world = A @ (n-1-i)
                f = np.eye(4)
                f[ax, ax], f[ax, 3] = -1, shape[ax] - 1
                aff = aff @ f
        perm = transform.rsplit("perm", 1)[1] if "perm" in transform else ""
        if perm:
            order = [int(ch) for ch in perm]
            img, lab = np.transpose(img, order), np.transpose(lab, order)
            p = np.eye(4)
            p[:3, :3] = np.eye(3)[:, order]  # new axis a is old axis order[a]
            aff = aff @ p
        moved = spinemri.measure(Volume(img, aff), Volume(lab, aff), scheme="verse", min_lesion_mm3=5.0)
    for a, b in zip(_tables(ref), _tables(moved), strict=True):
        pd.testing.assert_frame_equal(
            a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False, rtol=1e-9
        )
    # the same voxels are lesion voxels, with the same ids
    back = np.asarray(moved.lesion_mask.data)
    world_ref = vol.world_coords(np.argwhere(ref.lesion_mask.data > 0))
    world_new = Volume(img, aff).world_coords(np.argwhere(back > 0))
    key = lambda w: np.lexsort(np.round(w, 6).T)  # noqa: E731
    np.testing.assert_allclose(world_ref[key(world_ref)], world_new[key(world_new)], atol=1e-6)
