"""Bad non-DICOM inputs: one case per failure mode.

Each case asserts the precise SpinemriError subclass and that the message names the file.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spinemri.errors import GeometryError, InputError, LabelSchemeError, SpinemriError
from spinemri.io.load import load_mask, load_volume
from spinemri.scheme_choice import resolve_scheme_for_mask
from spinemri.volume import Volume

Case = Callable[[Path], tuple[Callable[[], object], Path]]


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine, dtype=data.dtype), path)
    return path


def _header_only(path: Path, shape: tuple[int, ...], payload: bytes, compress: bool) -> Path:
    """A NIfTI-1 header declaring ``shape`` (int16), followed by ``payload`` bytes of voxel data."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.int16)
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\0" * 4 + payload
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def missing_path(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = tmp / "missing_image.nii.gz"
    return (lambda: load_volume(p)), p


def folder_as_mask(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = tmp / "vertebrae_mask.nii.gz"
    p.mkdir()
    return (lambda: load_mask(p)), p


def unknown_extension(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = tmp / "scan.xyz"
    p.write_bytes(b"not an image at all" * 20)
    return (lambda: load_volume(p)), p


def corrupt_gzip(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = tmp / "corrupt.nii.gz"
    good = gzip.compress(_header_only(tmp / "h.nii", (4, 4, 4), b"\0" * 128, False).read_bytes())
    p.write_bytes(good[:20] + bytes(range(256)) * 2)
    return (lambda: load_volume(p)), p


def truncated_nii(tmp: Path) -> tuple[Callable[[], object], Path]:
    full = _nifti(tmp / "full.nii", np.ones((8, 8, 8), np.int16)).read_bytes()
    p = tmp / "truncated.nii"
    p.write_bytes(full[: len(full) - 300])
    return (lambda: load_volume(p)), p


def header_larger_than_data_gz(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = _header_only(tmp / "short_data.nii.gz", (10, 10, 10), b"\1\0" * 100, True)
    return (lambda: load_volume(p)), p


def image_2d(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = _nifti(tmp / "slice2d.nii.gz", np.ones((8, 8), np.int16))
    return (lambda: load_volume(p)), p


def image_5d(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = _nifti(tmp / "multi5d.nii.gz", np.ones((3, 3, 3, 1, 2), np.int16))
    return (lambda: load_volume(p)), p


def billions_of_voxels(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = _header_only(tmp / "huge.nii", (3000, 3000, 3000), b"\0" * 64, False)
    return (lambda: load_volume(p)), p


def gigabyte_claim_in_tiny_gzip(tmp: Path) -> tuple[Callable[[], object], Path]:
    # 1000^3 int16 = 2 GB declared (under the voxel cap), 64 bytes present: refused before allocation
    p = _header_only(tmp / "claims_2gb.nii.gz", (1000, 1000, 1000), b"\0" * 64, True)
    return (lambda: load_volume(p)), p


def mask_all_zero(tmp: Path) -> tuple[Callable[[], object], Path]:
    p = _nifti(tmp / "empty_mask.nii.gz", np.zeros((4, 4, 4), np.uint8))
    return (lambda: resolve_scheme_for_mask("auto", load_mask(p))), p


def mask_only_unknown_labels(tmp: Path) -> tuple[Callable[[], object], Path]:
    data = np.zeros((4, 4, 4), np.uint8)
    data[0] = 240
    data[3] = 250
    p = _nifti(tmp / "odd_labels_mask.nii.gz", data)
    return (lambda: resolve_scheme_for_mask("auto", load_mask(p))), p


def non_integral_float_mask(tmp: Path) -> tuple[Callable[[], object], Path]:
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 1, 1] = 0.7
    p = _nifti(tmp / "probability_mask.nii.gz", data)
    return (lambda: load_mask(p)), p


def negative_labels(tmp: Path) -> tuple[Callable[[], object], Path]:
    data = np.zeros((4, 4, 4), np.int16)
    data[2, 2, 2] = -1
    p = _nifti(tmp / "negative_mask.nii.gz", data)
    return (lambda: load_mask(p)), p


def mask_on_another_grid(tmp: Path) -> tuple[Callable[[], object], Path]:
    image = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4))
    p = _nifti(tmp / "other_grid_mask.nii.gz", np.ones((4, 4, 4), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0]))
    return (lambda: load_mask(p, like=image)), p


CASES: list[tuple[Case, type[SpinemriError]]] = [
    (missing_path, InputError),
    (folder_as_mask, InputError),
    (unknown_extension, InputError),
    (corrupt_gzip, InputError),
    (truncated_nii, InputError),
    (header_larger_than_data_gz, InputError),
    (image_2d, InputError),
    (image_5d, InputError),
    (billions_of_voxels, InputError),
    (gigabyte_claim_in_tiny_gzip, InputError),
    (mask_all_zero, LabelSchemeError),
    (mask_only_unknown_labels, LabelSchemeError),
    (non_integral_float_mask, InputError),
    (negative_labels, InputError),
    (mask_on_another_grid, GeometryError),
]


@pytest.mark.parametrize("case, error", CASES, ids=[c.__name__ for c, _ in CASES])
def test_bad_file_raises_named_error(tmp_path: Path, case: Case, error: type[SpinemriError]) -> None:
    call, path = case(tmp_path)
    start = time.perf_counter()
    with pytest.raises(error) as info:
        call()
    elapsed = time.perf_counter() - start
    assert type(info.value) is error  # the precise subclass, not just any SpinemriError
    assert str(path) in str(info.value), str(info.value)
    assert elapsed < 5.0  # refused without reading (or allocating for) the declared data
