"""Other tools' mask outputs (spinemri.io.mask_formats): SPINEPS, TotalSegmentator folders, TotalSpineSeg."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import shared_path

import spinemri
from spinemri.arrays.mask_kind import guess_mask_kind
from spinemri.errors import GeometryError, InputError
from spinemri.io.mask_formats import read_spine_masks, read_spineps, read_totalseg_folder
from spinemri.levels import BUILTIN_SCHEMES
from spinemri.phantom.make import make_phantom

SPINEPS = "tptbox_spineps_sample_mri"
VERT = "sub-mri_seg-vert_label-6_msk.nii.gz"
SUBREG = "sub-mri_seg-subreg_label-6_msk.nii.gz"
IMAGE = "sub-mri_label-6_T2w.nii.gz"
#: README label counts of the instance mask
README_COUNTS = {5: 4449, 6: 15754, 7: 12443, 105: 3829, 106: 4768, 205: 892, 206: 971, 207: 28}


def _save(data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


@pytest.fixture(scope="module")
def phantom() -> tuple[spinemri.Volume, spinemri.Volume]:
    img, mask, _ = make_phantom(seed=3, rows=160, cols=80, n_slices=9, first_level="T10")
    return img, mask


# --- SPINEPS -----------------------------------------------------------------------------------


def test_spineps_body_and_whole_real_sample() -> None:
    vert = shared_path(SPINEPS, VERT)
    sm = read_spineps(vert)
    whole, body = np.asarray(sm.whole.data), np.asarray(sm.body.data)
    inst = np.asarray(nib.load(str(vert)).dataobj)
    counts = dict(zip(*np.unique(inst, return_counts=True), strict=True))
    assert {int(k): int(v) for k, v in counts.items() if k} == README_COUNTS
    # whole vertebra = every instance voxel 5-7, README counts
    assert {lab: int((whole == lab).sum()) for lab in (5, 6, 7)} == {5: 4449, 6: 15754, 7: 12443}
    assert set(np.unique(whole).tolist()) == {0, 5, 6, 7}
    # body ⊂ whole, same label at each body voxel, corpus voxels only
    assert np.all(whole[body > 0] == body[body > 0])
    assert {lab: int((body == lab).sum()) for lab in (5, 6, 7)} == {5: 2474, 6: 10860, 7: 9438}
    assert int((body > 0).sum()) == 22772 < int((whole > 0).sum()) == 32646
    assert sm.mask_kind == "body" and sm.vertebrae is sm.body
    assert sm.body.meta["mask_kind"] == "body" and sm.whole.meta["mask_kind"] == "whole_vertebra"
    # nothing thrown away: discs, endplates, posterior elements, canal, cord
    n = {k: int((np.asarray(v.data) > 0).sum()) for k, v in sm.structures.items()}
    assert n == {
        "discs": 3829 + 4768,
        "endplates": 892 + 971 + 28,
        "posterior_elements": 32646 - 22772,
        "spinal_canal": 4137,
        "spinal_cord": 345,
    }
    assert read_spineps(vert, part="whole").vertebrae is not None
    assert read_spineps(vert, part="whole").mask_kind == "whole_vertebra"


def test_spineps_load_mask_and_measure_default_is_body() -> None:
    folder = shared_path(SPINEPS)
    img = spinemri.load_volume(folder / IMAGE)
    mask = spinemri.load_mask(folder / VERT, like=img)
    assert mask.meta["mask_kind"] == "body"
    assert mask.meta["mask_files"] == (str(folder / VERT), str(folder / SUBREG))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = spinemri.measure(img, mask, scheme="verse")
    # discs/endplates are not in the vertebra mask: no "labels ... were ignored" warning
    assert not [w for w in caught if "were ignored" in str(w.message)]
    # the sample's ids 5-7 are not C5-C7 (its README: thoracolumbar-sized, relabelled for the test
    # sample): the anatomy check says so, once
    assert len([w for w in caught if "anatomy contradicts" in str(w.message)]) == 1
    assert set(m.vertebrae["level_check"].str.split(":").str[0]) == {"contradicted"}
    assert m.vertebrae["vertebra_voxels"].tolist() == [2474, 10860, 9438]
    assert m.patient["mask_kind"].tolist() == ["body"]
    assert m.parameters()["mask_kind"] == "body"
    assert any(n.startswith("mask_kind: body") for n in m.notes)


def test_shape_guess_tells_spineps_body_from_whole() -> None:
    sm = read_spineps(shared_path(SPINEPS, VERT))
    sp = sm.whole.spacing
    assert guess_mask_kind(np.asarray(sm.whole.data), sp, [5, 6, 7])[0] == "whole_vertebra"
    assert guess_mask_kind(np.asarray(sm.body.data), sp, [5, 6, 7])[0] == "body"


def test_spineps_subregion_file_alone_is_refused(tmp_path: Path) -> None:
    src = shared_path(SPINEPS, SUBREG)
    with pytest.raises(InputError, match="subregion mask; pass the instance mask"):
        read_spine_masks(src)


def test_spineps_without_subregions_falls_back_to_whole(tmp_path: Path) -> None:
    src = shared_path(SPINEPS, VERT)
    alone = tmp_path / VERT
    alone.write_bytes(src.read_bytes())
    sm = read_spine_masks(alone)
    assert sm.mask_kind == "whole_vertebra" and sm.body is None
    with pytest.raises(InputError, match=f"{alone}.*without its subregion mask"):
        read_spineps(alone, part="body")


def test_spineps_pair_on_different_grids_names_the_file(tmp_path: Path) -> None:
    src = shared_path(SPINEPS)
    vert = tmp_path / VERT
    vert.write_bytes((src / VERT).read_bytes())
    sub = nib.load(str(src / SUBREG))
    aff = sub.affine.copy()
    aff[0, 3] += 5.0
    _save(np.asarray(sub.dataobj), aff, tmp_path / SUBREG)
    with pytest.raises(GeometryError, match=f"{tmp_path / SUBREG}: not on the grid of {VERT}"):
        read_spineps(vert)


# --- TotalSegmentator folders --------------------------------------------------------------------


def _totalseg_folder(mask: spinemri.Volume, folder: Path, *, empty_extra: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = np.asarray(mask.data)
    for lab, lev in BUILTIN_SCHEMES["verse"].levels.items():
        if np.any(data == lab):
            name = "sacrum" if lev == "S1" else f"vertebrae_{lev}"
            _save((data == lab).astype(np.uint8), mask.affine, folder / f"{name}.nii.gz")
    if empty_extra:  # TotalSegmentator writes every class, found or not; other organs are ignored
        _save(np.zeros(mask.shape, np.uint8), mask.affine, folder / "vertebrae_C1.nii.gz")
        _save((data == data.max()).astype(np.uint8), mask.affine, folder / "liver.nii.gz")
    return folder


def test_totalseg_folder_tables_identical_to_single_file(tmp_path: Path, phantom) -> None:
    img, mask = phantom
    folder = _totalseg_folder(mask, tmp_path / "segmentations")
    merged = spinemri.load_mask(folder, like=img)
    assert merged.meta["mask_kind"] == "whole_vertebra"
    assert merged.meta["mask_format"] == "totalsegmentator_folder"
    np.testing.assert_array_equal(np.asarray(merged.data), np.asarray(mask.data))
    single = spinemri.load_mask(_save(np.asarray(mask.data), mask.affine, tmp_path / "mask.nii.gz"), like=img)
    a = spinemri.measure(img, single, min_lesion_mm3=0)
    b = spinemri.measure(img, merged, min_lesion_mm3=0)
    assert b.scheme.name == "totalseg_names"  # the class names chose the levels
    pd.testing.assert_frame_equal(a.vertebrae, b.vertebrae)
    pd.testing.assert_frame_equal(a.lesions, b.lesions)
    pd.testing.assert_frame_equal(a.patient.drop(columns="mask_kind"), b.patient.drop(columns="mask_kind"))
    assert a.patient["mask_kind"].tolist() == ["body"]  # the phantom's bodies are convex
    assert b.patient["mask_kind"].tolist() == ["whole_vertebra"]
    # a patient folder holding the segmentations/ folder works too
    assert read_spine_masks(tmp_path).format == "totalsegmentator_folder"


def test_totalseg_folder_on_another_grid_names_the_file(tmp_path: Path, phantom) -> None:
    _, mask = phantom
    folder = _totalseg_folder(mask, tmp_path / "segmentations", empty_extra=False)
    aff = mask.affine.copy()
    aff[2, 3] += 3.0
    bad = folder / "vertebrae_L1.nii.gz"
    _save(np.asarray(nib.load(str(bad)).dataobj), aff, bad)
    with pytest.raises(GeometryError, match=f"{bad}: not on the grid of"):
        read_totalseg_folder(folder)


def test_totalseg_folder_refusals(tmp_path: Path, phantom) -> None:
    _, mask = phantom
    other = tmp_path / "organs"
    other.mkdir()
    _save(np.zeros((4, 4, 4), np.uint8), np.eye(4), other / "liver.nii.gz")
    with pytest.raises(InputError, match=f"{other}: no TotalSegmentator vertebra file"):
        read_totalseg_folder(other)
    empty = tmp_path / "empty_seg"
    empty.mkdir()
    _save(np.zeros(mask.shape, np.uint8), mask.affine, empty / "vertebrae_L1.nii.gz")
    with pytest.raises(InputError, match=f"{empty}: every TotalSegmentator vertebra file is empty"):
        read_totalseg_folder(empty)


# --- TotalSpineSeg -----------------------------------------------------------------------------


def test_totalspineseg_map_levels_and_structures(tmp_path: Path, phantom) -> None:
    img, mask = phantom
    data = np.asarray(mask.data)
    tss = BUILTIN_SCHEMES["totalspineseg"]
    to_tss = {lev: lab for lab, lev in tss.levels.items()}
    out = np.zeros(data.shape, np.uint8)
    for lab, lev in BUILTIN_SCHEMES["verse"].levels.items():
        if lev in to_tss:
            out[data == lab] = to_tss[lev]
    assert set(np.unique(data[out == 0])) == {0}  # every phantom level exists in TotalSpineSeg
    # cord, canal and a disc in background voxels (posterior strip / between two bodies)
    bg = data == 0
    cord = np.zeros_like(bg)
    cord[-6:-4, :, 4] = True
    canal = np.zeros_like(bg)
    canal[-8:-6, :, 4] = True
    out[cord & bg] = 1
    out[canal & bg] = 2
    rows = np.flatnonzero(np.any(data[:, :, 4] > 0, axis=0))
    gap = [
        j for j in range(rows.min(), rows.max()) if not np.any(data[:, j, 4]) and np.any(data[:, j - 1, 4])
    ]
    out[20:40, gap[0], 4] = 92  # L1/L2 disc label
    path = _save(out, mask.affine, tmp_path / "sub-1_T2w_totalspineseg.nii.gz")
    loaded = spinemri.load_mask(path, like=img)
    assert loaded.meta["mask_format"] == "totalspineseg" and loaded.meta["mask_kind"] == "whole_vertebra"
    with pytest.warns(spinemri.SpinemriWarning, match=r"1 \(spinal_cord\), 2 \(spinal_canal\), 92 \(disc\)"):
        m = spinemri.measure(img, loaded, min_lesion_mm3=0)
    ref = spinemri.measure(img, mask, scheme="verse", min_lesion_mm3=0)
    assert m.scheme.name == "totalspineseg"
    assert m.vertebrae["level"].tolist() == ref.vertebrae["level"].tolist()
    assert m.vertebrae["vertebra_voxels"].tolist() == ref.vertebrae["vertebra_voxels"].tolist()
    assert m.unmapped_labels == (1, 2, 92)
    assert m.patient["mask_kind"].tolist() == ["whole_vertebra"]
    sm = read_spine_masks(path)
    assert int(np.asarray(sm.structures["spinal_cord"].data).sum()) == int((out == 1).sum()) > 0
    assert int(np.asarray(sm.structures["spinal_canal"].data).sum()) == int((out == 2).sum()) > 0
    assert set(np.unique(np.asarray(sm.structures["discs"].data)).tolist()) == {0, 92}


def test_verse_style_mask_kind_from_shape(tmp_path: Path, phantom) -> None:
    img, mask = phantom
    loaded = spinemri.load_mask(_save(np.asarray(mask.data), mask.affine, tmp_path / "seg.nii.gz"), like=img)
    assert loaded.meta["mask_format"] == "label_map"
    assert loaded.meta["mask_kind"] == "body"
    assert "solidity" in loaded.meta["mask_kind_reason"]
    # an in-memory Volume without a recorded kind is "unknown" in the tables
    m = spinemri.measure(img, mask, min_lesion_mm3=0)
    assert m.patient["mask_kind"].tolist() == ["unknown"]
