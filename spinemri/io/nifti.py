"""NIfTI (nibabel) and NRRD / MetaImage (SimpleITK) volume files."""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..volume import Volume
from .atomic import atomic_path
from .convert import from_nibabel, from_sitk, to_nibabel, to_sitk

__all__ = [
    "NIFTI_SUFFIXES",
    "ITK_SUFFIXES",
    "is_nifti",
    "is_itk",
    "load_nifti",
    "load_itk",
    "save_nifti",
    "save_itk",
    "label_names_from_nifti",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")

#: Refuse files declaring more voxels than this before reading any data (8 Gi voxels).
MAX_VOXELS = 2**33

_LABEL_RE = re.compile(
    r"<Label\s+Key=\"(-?\d+)\"[^>]*>\s*(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))\s*</Label>", re.S
)


def _lower_name(path: Path) -> str:
    return path.name.lower()


def is_nifti(path: Path) -> bool:
    """True when the file name ends in ``.nii`` or ``.nii.gz``."""
    return _lower_name(path).endswith(NIFTI_SUFFIXES)


def is_itk(path: Path) -> bool:
    """True when the file name ends in a NRRD or MetaImage suffix."""
    return _lower_name(path).endswith(ITK_SUFFIXES)


def _squeeze_to_3d(shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    if len(shape) < 3:
        raise InputError(
            f"{path}: the image is {len(shape)}-D with shape {shape}; spinemri needs a 3-D volume"
        )
    if any(n > 1 for n in shape[3:]):
        raise InputError(
            f"{path}: the image is {len(shape)}-D with shape {shape} (several volumes or echoes); "
            "spinemri measures one 3-D volume: extract the volume you want first "
            "(e.g. fslroi or nibabel's image slicing) and pass that file"
        )
    for n in shape[:3]:
        if n < 1:
            raise InputError(f"{path}: the image has an empty dimension, shape {shape}")
    if int(np.prod(shape[:3], dtype=np.int64)) > MAX_VOXELS:
        raise InputError(
            f"{path}: the header declares {shape} = {np.prod(shape[:3], dtype=np.float64):.3g} voxels, "
            f"more than the {MAX_VOXELS:.3g} spinemri accepts; the header is probably corrupt"
        )
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def label_names_from_nifti(header: Any) -> dict[int, str]:
    """Label names from a NIfTI header extension, as TotalSegmentator writes them.

    TotalSegmentator stores a CIFTI/Caret-style XML ``<Label Key="N">name</Label>``
    table in a NIfTI header extension; when present, these names beat numbers.
    Returns ``{}`` when there is none.
    """
    names: dict[int, str] = {}
    for ext in getattr(header, "extensions", []) or []:
        try:
            content = ext.get_content()
        except Exception:  # a malformed extension must not stop loading the image
            continue
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        if not isinstance(content, str) or "<Label" not in content:
            continue
        for key, cdata, plain in _LABEL_RE.findall(content):
            name = (cdata or plain).strip()
            if name:
                names[int(key)] = name
    return names


def load_nifti(path: str | Path) -> Volume:
    """Load a ``.nii`` / ``.nii.gz`` file as a Volume (affine as nibabel gives it).

    A trailing singleton 4th dimension is dropped; real 4-D data are refused.
    ``meta`` records ``source``, ``format``, ``qform_code``, ``sform_code`` and,
    when the header carries a label table, ``label_names``.
    """
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:  # nibabel raises many types for corrupt headers
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from exc
    shape = _squeeze_to_3d(tuple(int(n) for n in img.shape), path)
    meta: dict[str, Any] = {
        "source": str(path),
        "format": "nifti",
        "qform_code": int(img.header["qform_code"]),
        "sform_code": int(img.header["sform_code"]),
    }
    names = label_names_from_nifti(img.header)
    if names:
        meta["label_names"] = names
    try:
        if img.ndim > 3:
            img = img.slicer[..., 0] if img.ndim == 4 else nib.Nifti1Image(
                np.asanyarray(img.dataobj).reshape(shape), img.affine, img.header
            )
        vol = from_nibabel(img, meta)
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(
            f"{path}: the voxel data cannot be read ({type(exc).__name__}: {exc}); "
            "the file is truncated or corrupt"
        ) from exc
    return vol


def load_itk(path: str | Path) -> Volume:
    """Load an NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``, ``.mhd``) file via SimpleITK."""
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        size = tuple(int(n) for n in reader.GetSize())
        _squeeze_to_3d(size, path)
        if reader.GetNumberOfComponents() != 1:
            raise InputError(
                f"{path}: the image has {reader.GetNumberOfComponents()} components per voxel "
                "(vector or RGB); spinemri needs one scalar value per voxel"
            )
        img = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable NRRD/MetaImage file: {str(exc).strip()[-300:]}") from exc
    if img.GetDimension() > 3:
        img = img[:, :, :, 0]
    return from_sitk(img, {"source": str(path), "format": path.suffix.lower().lstrip(".")})


def save_nifti(volume: Volume, path: str | Path, *, dtype: Any = None) -> Path:
    """Write a Volume as NIfTI-1 atomically (temporary name, then rename).

    ``dtype`` optionally casts the data (e.g. ``np.uint8`` for label maps).
    The file is written so that :func:`load_nifti` reads back the identical
    data and affine.
    """
    import nibabel as nib

    path = Path(path)
    vol = volume if dtype is None else volume.with_data(np.asarray(volume.data).astype(dtype))
    img = to_nibabel(vol)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path


def save_itk(volume: Volume, path: str | Path) -> Path:
    """Write a Volume as NRRD or MetaImage (by suffix) atomically via SimpleITK."""
    import SimpleITK as sitk

    path = Path(path)
    with atomic_path(path) as tmp:
        sitk.WriteImage(to_sitk(volume), str(tmp), useCompression=True)
    return path
