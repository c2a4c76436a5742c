"""Property: any header mutation of a small valid NIfTI-1 file gives a valid Volume or a SpinemriError.

The base image is 5 x 4 x 3 int16 with an oblique sform and a qform. Each
hypothesis example overwrites some header fields (dim, pixdim, datatype,
bitpix, vox_offset, scl_slope/inter, qform/sform codes, quaternion, qoffset,
srow rows, magic), flips bytes anywhere in the first 352 bytes, optionally
truncates the file and optionally gzips it. ``load_volume`` must answer within
5 s with a valid Volume (3-D, finite affine, finite voxels) or a SpinemriError
naming the file, nothing else.

CI runs ``max_examples=80`` (derandomized); ``pytest -m slow`` runs 800.
"""

from __future__ import annotations

import gzip
import tempfile
import warnings
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_dicom import check_volume_or_named_error

from spinemri import load_volume

SHAPE = (5, 4, 3)
HEADER_BYTES = 352

_f32 = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1.0, 1e-38, 3e38, 0.5]),
)
_i16 = st.one_of(st.integers(-3, 12), st.sampled_from([-32768, 32767, 1000, 30000]))

#: header field -> strategy of values written with nibabel's header (no checks)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "dim": st.lists(_i16, min_size=8, max_size=8),
    "pixdim": st.lists(_f32, min_size=8, max_size=8),
    "datatype": st.sampled_from(
        [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2304, 9999]
    ),
    "bitpix": st.sampled_from([0, 1, 7, 8, 16, 32, 64, 128]),
    "vox_offset": st.one_of(st.sampled_from([0.0, 348.0, 352.0, 353.0, 356.0, 1e9, -1.0]), _f32),
    "scl_slope": _f32,
    "scl_inter": _f32,
    "qform_code": st.integers(-2, 6),
    "sform_code": st.integers(-2, 6),
    "quatern_b": _f32,
    "quatern_c": _f32,
    "quatern_d": _f32,
    "qoffset_x": _f32,
    "srow_x": st.lists(_f32, min_size=4, max_size=4),
    "srow_y": st.lists(_f32, min_size=4, max_size=4),
    "srow_z": st.lists(_f32, min_size=4, max_size=4),
    "magic": st.sampled_from([b"n+1", b"ni1", b"n+2", b"xyz", b""]),
}

field_edit = st.one_of(*[st.tuples(st.just(f), s) for f, s in FIELDS.items()])
byte_flip = st.tuples(st.integers(0, HEADER_BYTES - 1), st.integers(0, 255))


def base_image() -> nib.Nifti1Image:
    """The valid base: int16 ramp, oblique sform (code 1) and qform (code 1), mm units."""
    data = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.array(
        [[0.8 * c, -0.9 * s, 0, -20.0], [0.8 * s, 0.9 * c, 0, 15.0], [0, 0, 3.0, 40.0], [0, 0, 0, 1]]
    )
    img = nib.Nifti1Image(data, affine, dtype=np.int16)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img


def mutated_bytes(edits: list[tuple[str, Any]], flips: list[tuple[int, int]], keep: float | None) -> bytes:
    """The base bytes with header ``edits``, then byte ``flips``, then cut to ``keep`` of the length."""
    img = base_image()
    hdr = img.header.copy()
    hdr["vox_offset"] = HEADER_BYTES
    data = np.asanyarray(img.dataobj).tobytes(order="F")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for field, value in edits:
            hdr[field] = value  # a structured-array write: no validation, exactly what a corrupt file holds
    raw = bytearray(bytes(hdr.binaryblock) + b"\0" * 4 + data)
    for pos, value in flips:
        raw[pos] = value
    if keep is not None:
        raw = raw[: int(len(raw) * keep)]
    return bytes(raw)


def _check(edits: Any, flips: Any, keep: Any, gz: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("image.nii.gz" if gz else "image.nii")
        raw = mutated_bytes(edits, flips, keep)
        path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_volume_or_named_error(lambda: load_volume(path), path)


_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
_keep = st.one_of(st.none(), st.none(), st.floats(0.0, 1.0))


@settings(max_examples=80, derandomize=True, **_COMMON)
@given(st.lists(field_edit, max_size=4), st.lists(byte_flip, max_size=3), _keep, st.booleans())
def test_mutated_nifti_loads_or_raises_a_named_error(edits: Any, flips: Any, keep: Any, gz: bool) -> None:
    _check(edits, flips, keep, gz)


@pytest.mark.slow
@settings(max_examples=800, **_COMMON)
@given(st.lists(field_edit, max_size=6), st.lists(byte_flip, max_size=8), _keep, st.booleans())
def test_mutated_nifti_slow(edits: Any, flips: Any, keep: Any, gz: bool) -> None:
    _check(edits, flips, keep, gz)


def test_unmutated_base_loads_exactly() -> None:
    """The fuzzing base is valid: same voxels and affine as written."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.nii"
        path.write_bytes(mutated_bytes([], [], None))
        vol = load_volume(path)
        img = base_image()
        np.testing.assert_array_equal(vol.data, np.asanyarray(img.dataobj))
        np.testing.assert_allclose(vol.affine, img.affine, atol=1e-6)
