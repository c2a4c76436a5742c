"""Property: any header mutation of a small valid DICOM series gives a valid Volume or a SpinemriError.

A three-slice sagittal series (6 x 4 pixels, uint16) is written, then each
hypothesis example changes a few header fields of one file or of every file
(matrix size, bits, sign, samples, spacing, position, orientation, rescale,
frames, transfer syntax declared or really used, truncated PixelData, deleted
elements, a split series). ``load_volume`` must then answer within 5 s with
either a valid Volume (3-D, finite affine, finite voxels) or a SpinemriError
whose message names the folder or one of its files — never another exception.

CI runs ``max_examples=60`` (derandomized, reproducible); ``pytest -m slow``
runs 600. docs/robustness.md lists what the runs found.
"""

from __future__ import annotations

import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bad_inputs.guard import TIMEOUT_S, run_guarded
from bad_inputs.make_corpus import _patch_transfer_syntax, write_series
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from spinemri import load_volume
from spinemri.errors import SpinemriError
from spinemri.volume import Volume

DELETE = "<delete>"
N_FILES = 3

_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e300, 0.5, 2.5]),
)
_ds_text = st.sampled_from(["", "abc", "1e999", "nan", "-inf", " 3 ", "1\\2", "0x10", "٣"])


def _vector(n_min: int, n_max: int) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(_floats, min_size=n_min, max_size=n_max), _ds_text, st.just(DELETE))


_TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired)
    "1.2.840.10008.1.2.1.99",  # deflated
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.70",  # JPEG lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.5",  # RLE
    "1.2.3.4.5",  # not a transfer syntax
]

#: field -> strategy of values (DELETE removes the element)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "Rows": st.one_of(st.integers(0, 16), st.just(65535), st.just(DELETE)),
    "Columns": st.one_of(st.integers(0, 16), st.just(DELETE)),
    "BitsAllocated": st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64, DELETE]),
    "BitsStored": st.one_of(st.integers(0, 40), st.just(DELETE)),
    "HighBit": st.integers(0, 40),
    "PixelRepresentation": st.sampled_from([0, 1, 2, DELETE]),
    "SamplesPerPixel": st.sampled_from([0, 1, 2, 3, 4, DELETE]),
    "PhotometricInterpretation": st.sampled_from(["MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL", ""]),
    "PixelSpacing": _vector(0, 3),
    "ImagePositionPatient": _vector(0, 4),
    "ImageOrientationPatient": _vector(0, 7),
    "RescaleSlope": st.one_of(_floats, _ds_text, st.just(DELETE)),
    "RescaleIntercept": st.one_of(_floats, _ds_text, st.just(DELETE)),
    "NumberOfFrames": st.one_of(st.integers(-2, 6), _ds_text, st.just(DELETE)),
    "InstanceNumber": st.one_of(st.integers(-2, 6), _ds_text, st.just(DELETE)),
    "SliceThickness": st.one_of(_floats, _ds_text),
    "SpacingBetweenSlices": st.one_of(_floats, _ds_text),
    "SeriesInstanceUID": st.sampled_from(["1.2.826.0.1.3680043.8.498.77", "", DELETE]),
    "SeriesNumber": st.one_of(st.integers(-5, 5), _ds_text, st.just(DELETE)),
    "ImageType": st.sampled_from(
        [["ORIGINAL", "PRIMARY", "MOSAIC"], ["DERIVED", "SECONDARY", "LOCALIZER"], []]
    ),
    "PixelData": st.one_of(st.integers(0, 60), st.just(DELETE)),  # bytes kept
}

#: (file index or None = every file, field, value)
mutation = st.one_of(
    *[st.tuples(st.one_of(st.none(), st.integers(0, N_FILES - 1)), st.just(f), s) for f, s in FIELDS.items()]
)
syntax = st.one_of(
    st.none(), st.tuples(st.integers(0, N_FILES - 1), st.booleans(), st.sampled_from(_TRANSFER_SYNTAXES))
)


@contextmanager
def _lenient_pydicom() -> Any:
    """Let pydicom write (and read) values its validators would refuse: the point is to feed them in."""
    from pydicom import config

    old = (config.settings.writing_validation_mode, config.settings.reading_validation_mode)
    config.settings.writing_validation_mode = config.IGNORE
    config.settings.reading_validation_mode = config.IGNORE
    try:
        yield
    finally:
        config.settings.writing_validation_mode, config.settings.reading_validation_mode = old


def _apply(ds: Any, field: str, value: Any) -> None:
    if value == DELETE:
        if field in ds:
            delattr(ds, field)
    elif field == "PixelData":
        if "PixelData" in ds:
            ds.PixelData = bytes(ds.PixelData)[:value]
    else:
        try:
            setattr(ds, field, value)
        except (ValueError, TypeError, OverflowError):  # text pydicom refuses to convert: store it raw
            from pydicom.datadict import dictionary_VR, tag_for_keyword
            from pydicom.dataelem import DataElement

            tag = tag_for_keyword(field)
            if field not in ds:
                ds[tag] = DataElement(tag, dictionary_VR(tag), None)
            ds[tag]._value = value


def write_mutated_series(folder: Path, mutations: list[tuple[Any, str, Any]], ts: Any) -> None:
    """The base series in ``folder`` with ``mutations`` and an optional transfer-syntax change applied."""
    import pydicom

    paths, _ = write_series(folder, n=N_FILES)
    with _lenient_pydicom(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, p in enumerate(paths):
            mine = [(f, v) for target, f, v in mutations if target is None or target == k]
            real_ts = ts is not None and ts[0] == k and ts[1]
            if not mine and not real_ts:
                continue
            ds = pydicom.dcmread(p)
            for f, v in mine:
                _apply(ds, f, v)
            kwargs: dict[str, Any] = {"implicit_vr": False, "little_endian": True}
            if real_ts:  # really encode the data set with that syntax (pixel bytes unchanged)
                ds.file_meta.TransferSyntaxUID = ts[2]
                kwargs = {}
            try:
                ds.save_as(p, enforce_file_format=True, **kwargs)
            except Exception:  # pydicom cannot encode this combination: not an input spinemri can meet
                assume(False)
        if ts is not None and not ts[1]:  # only *declare* another syntax; the bytes stay explicit LE
            _patch_transfer_syntax(paths[ts[0]], ts[2])


def check_volume_or_named_error(call: Any, folder: Path) -> None:
    """``call()`` answers in time: a valid Volume, or a SpinemriError naming ``folder`` or a file in it."""
    out = run_guarded(call, TIMEOUT_S)
    assert not out.hung, f"no answer within {TIMEOUT_S} s"
    if out.error is not None:
        if not isinstance(out.error, SpinemriError):
            raise AssertionError(f"{type(out.error).__name__} escaped: {out.error}") from out.error
        assert str(folder) in str(out.error), str(out.error)
        return
    vol = out.result
    assert isinstance(vol, Volume)
    assert np.asarray(vol.data).ndim == 3 and min(vol.shape) >= 1
    assert np.all(np.isfinite(vol.affine)) and abs(np.linalg.det(vol.affine[:3, :3])) > 0
    data = np.asarray(vol.data)
    assert data.dtype.kind in "biuf"
    if data.dtype.kind == "f":
        assert np.all(np.isfinite(data))


def _check(mutations: list[tuple[Any, str, Any]], ts: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        write_mutated_series(folder, mutations, ts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_volume_or_named_error(lambda: load_volume(folder), folder)


_COMMON = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=60, **_COMMON)
@given(st.lists(mutation, min_size=1, max_size=4), syntax)
def test_mutated_dicom_series_loads_or_raises_a_named_error(mutations: Any, ts: Any) -> None:
    _check(mutations, ts)


@pytest.mark.slow
@settings(max_examples=600, **{**_COMMON, "derandomize": False})
@given(st.lists(mutation, min_size=1, max_size=6), syntax)
def test_mutated_dicom_series_slow(mutations: Any, ts: Any) -> None:
    _check(mutations, ts)


def test_unmutated_series_loads_exactly() -> None:
    """The fuzzing base is itself a valid series (so mutations, not the base, cause the refusals)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        _, arrays = write_series(folder, n=N_FILES)
        vol = load_volume(folder)
        assert vol.shape == (4, 6, N_FILES)
        for k, arr in enumerate(arrays):
            np.testing.assert_array_equal(np.asarray(vol.data)[:, :, k], arr.T)


# --------------------------------------------------------------------------- enhanced multi-frame

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
N_FRAMES = 3


def write_enhanced(path: Path) -> np.ndarray:
    """One Enhanced MR Image file: 3 frames of 6 x 4 uint16; positions per frame, spacing shared."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    frames = np.arange(N_FRAMES * 24, dtype=np.uint16).reshape(N_FRAMES, 6, 4)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENHANCED_MR
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.55"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = ENHANCED_MR, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "MR", "BAD-002"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = (
        "1.2.826.0.1.3680043.8.498.56",
        5,
        "stir_sag",
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.Rows, ds.Columns, ds.NumberOfFrames = 6, 4, N_FRAMES
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.8], 3.0
    orient = Dataset()
    orient.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orient])
    per = []
    for k in range(N_FRAMES):
        pos = Dataset()
        pos.ImagePositionPatient = [-10.0 - 3.0 * k, 20.0, 30.0]
        item = Dataset()
        item.PlanePositionSequence = Sequence([pos])
        per.append(item)
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = frames.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return frames


#: (frame index or None = the shared group, element, value)
ENHANCED_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "ImagePositionPatient": _vector(0, 4),
    "ImageOrientationPatient": _vector(0, 7),
    "PixelSpacing": _vector(0, 3),
    "SliceThickness": st.one_of(_floats, _ds_text),
    "RescaleSlope": st.one_of(_floats, _ds_text),
    "RescaleIntercept": st.one_of(_floats, _ds_text),
    "<drop frame item>": st.just(None),
}
_TOP_FIELDS = (
    "Rows",
    "Columns",
    "BitsAllocated",
    "PixelRepresentation",
    "NumberOfFrames",
    "PixelData",
    "ImageType",
)
enhanced_edit = st.one_of(
    st.tuples(
        st.one_of(st.none(), st.integers(0, N_FRAMES - 1)), st.sampled_from(sorted(ENHANCED_FIELDS))
    ).flatmap(lambda t: st.tuples(st.just(t[0]), st.just(t[1]), ENHANCED_FIELDS[t[1]])),
    st.sampled_from(_TOP_FIELDS).flatmap(lambda f: st.tuples(st.just("top"), st.just(f), FIELDS[f])),
)

_GROUP_OF = {
    "ImagePositionPatient": "PlanePositionSequence",
    "ImageOrientationPatient": "PlaneOrientationSequence",
    "PixelSpacing": "PixelMeasuresSequence",
    "SliceThickness": "PixelMeasuresSequence",
    "RescaleSlope": "PixelValueTransformationSequence",
    "RescaleIntercept": "PixelValueTransformationSequence",
}


def _edit_enhanced(ds: Any, where: Any, field: str, value: Any) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    if where == "top":
        _apply(ds, field, value)
        return
    if field == "<drop frame item>":
        if where is not None and len(ds.PerFrameFunctionalGroupsSequence) > where:
            del ds.PerFrameFunctionalGroupsSequence[where]
        return
    groups = ds.SharedFunctionalGroupsSequence[0] if where is None else None
    if groups is None:
        if len(ds.PerFrameFunctionalGroupsSequence) <= where:
            return
        groups = ds.PerFrameFunctionalGroupsSequence[where]
    seq = _GROUP_OF[field]
    if seq not in groups or not groups[seq].value:
        setattr(groups, seq, Sequence([Dataset()]))
    _apply(groups[seq].value[0], field, value)


def _check_enhanced(edits: list[tuple[Any, str, Any]]) -> None:
    import pydicom

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "enhanced.dcm"
        write_enhanced(path)
        with _lenient_pydicom(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            for where, field, value in edits:
                _edit_enhanced(ds, where, field, value)
            try:
                ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
            except Exception:  # pydicom cannot encode this combination
                assume(False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_volume_or_named_error(lambda: load_volume(path), path)


@settings(max_examples=40, **_COMMON)
@given(st.lists(enhanced_edit, min_size=1, max_size=4))
def test_mutated_enhanced_file_loads_or_raises_a_named_error(edits: Any) -> None:
    _check_enhanced(edits)


@pytest.mark.slow
@settings(max_examples=400, **{**_COMMON, "derandomize": False})
@given(st.lists(enhanced_edit, min_size=1, max_size=6))
def test_mutated_enhanced_file_slow(edits: Any) -> None:
    _check_enhanced(edits)


def test_unmutated_enhanced_file_loads_exactly() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "enhanced.dcm"
        frames = write_enhanced(path)
        vol = load_volume(path)
        assert vol.shape == (4, 6, N_FRAMES)
        for k in range(N_FRAMES):
            np.testing.assert_array_equal(np.asarray(vol.data)[:, :, k], frames[k].T)
        np.testing.assert_allclose(vol.spacing, (0.8, 0.5, 3.0))
