"""``load_volume`` and ``load_mask``: one entry point for every supported input."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GeometryError, InputError, SpinemriWarning
from ..volume import DIRECTION_ATOL, TRANSLATION_ATOL_MM, Volume, grid_deltas
from .nifti import is_itk, is_nifti, load_itk, load_nifti

__all__ = ["load_volume", "load_mask", "check_mask_values", "resample_nearest"]


def load_volume(path: str | os.PathLike[str], *, series: str | None = None) -> Volume:
    """Load a 3-D image from a DICOM folder or file, NIfTI, NRRD or MetaImage.

    Parameters
    ----------
    path : path-like
        A folder of DICOM files (one series, or several: see ``series``), a
        single DICOM file (classic or enhanced multi-frame), ``.nii``,
        ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha`` or ``.mhd``.
    series : str, optional
        For a DICOM folder with several series: a SeriesInstanceUID, a
        SeriesNumber, or a regular expression matched against
        SeriesDescription.

    Returns
    -------
    Volume
        Voxel values (rescaled for DICOM) with the voxel → RAS+ mm affine.

    Raises
    ------
    InputError, DicomError, GeometryError
        With a message naming the file and the problem.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        from .dicom import load_dicom

        return load_dicom(p, series=series)
    if is_nifti(p):
        return load_nifti(p)
    if is_itk(p):
        return load_itk(p)
    from .dicom import is_dicom_file, load_dicom

    if is_dicom_file(p):
        return load_dicom(p, series=series)
    raise InputError(
        f"{p}: unknown image format; expected a DICOM folder or file, .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd"
    )


def check_mask_values(data: np.ndarray, source: str) -> np.ndarray:
    """Return mask voxels as a compact integer array, refusing non-label content.

    Integral floats (e.g. float64 masks written by some tools) are accepted;
    NaN, infinite, non-integral or negative values raise :class:`InputError`.
    """
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{source}: the mask holds NaN or infinite values; a label mask must hold integers")
        rounded = np.rint(arr)
        bad = rounded != arr
        if np.any(bad):
            example = float(arr[bad].flat[0])
            raise InputError(
                f"{source}: the mask holds non-integer values (e.g. {example:g}); it looks like a probability "
                "map or an interpolated mask. Threshold or argmax it into integer labels first"
            )
        arr = rounded
    elif not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{source}: the mask has dtype {arr.dtype}; expected integer labels")
    lo, hi = (arr.min(), arr.max())
    if lo < 0:
        raise InputError(f"{source}: the mask holds negative labels (min {lo:g}); labels must be 0 (background) or positive")
    for dt in (np.uint8, np.uint16, np.int32, np.int64):
        if hi <= np.iinfo(dt).max:
            return arr.astype(dt, copy=False)
    raise InputError(f"{source}: label values up to {hi:g} are too large")


def resample_nearest(mask: Volume, like: Volume) -> Volume:
    """Nearest-neighbour resample of a label Volume onto ``like``'s grid (outside → 0)."""
    from scipy import ndimage

    # voxel index on like's grid -> voxel index on mask's grid
    m = np.linalg.inv(mask.affine) @ like.affine
    out = ndimage.affine_transform(
        np.asarray(mask.data),
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=like.shape,
        order=0,
        mode="constant",
        cval=0,
        prefilter=False,
    )
    return Volume(out, like.affine, dict(mask.meta))


def _describe_deltas(d: dict[str, Any], mask_shape: tuple[int, ...], like_shape: tuple[int, ...]) -> str:
    return (
        f"shape {mask_shape} vs image {like_shape}; origin differs by {d['origin_mm']:.4g} mm, "
        f"spacing by ({', '.join(f'{s:.3g}' for s in d['spacing_mm'])}) mm, "
        f"direction cosines by {d['direction']:.3g}, far corner by {d['corner_mm']:.4g} mm"
    )


def load_mask(
    path: str | os.PathLike[str] | Volume,
    like: Volume | None = None,
    *,
    resample: bool = False,
    atol_mm: float = TRANSLATION_ATOL_MM,
    atol_dir: float = DIRECTION_ATOL,
) -> Volume:
    """Load an integer label mask and check it lies on ``like``'s grid.

    Parameters
    ----------
    path : path-like or Volume
        A label file or DICOM folder (anything :func:`load_volume` reads), or
        an already loaded Volume.
    like : Volume, optional
        The image the mask belongs to. When given, the grids are compared:

        * same shape and affine within ``atol_mm`` (translation and spacing,
          mm) and ``atol_dir`` (direction cosines): accepted; the returned
          mask takes ``like``'s affine exactly;
        * same shape and every voxel centre within half the smallest image
          voxel (a rounding-level difference, e.g. float32 headers): resampled
          with nearest-neighbour and a :class:`SpinemriWarning`;
        * otherwise: :class:`GeometryError` listing the per-axis deltas, unless
          ``resample=True``, which resamples any overlapping grid with
          nearest-neighbour (with a warning).
    resample : bool, default False
        Resample a mask on another grid instead of refusing it.

    Returns
    -------
    Volume
        Integer labels (uint8/uint16/int32) on ``like``'s grid; ``meta``
        keeps ``label_names`` when the file carries a label table and records
        ``resampled`` when resampling happened.
    """
    mask = path if isinstance(path, Volume) else load_volume(path)
    source = str(mask.meta.get("source", path))
    mask = mask.with_data(check_mask_values(mask.data, source))
    if like is None:
        return mask
    d = grid_deltas(mask.shape, mask.affine, like.shape, like.affine)
    exact = (
        d["shape_equal"]
        and d["origin_mm"] <= atol_mm
        and max(d["spacing_mm"]) <= atol_mm
        and d["direction"] <= atol_dir
    )
    if exact:
        return Volume(mask.data, like.affine, {**mask.meta, "resampled": False})
    half_voxel = 0.5 * min(like.spacing)
    close = d["shape_equal"] and d["origin_mm"] <= half_voxel and d["corner_mm"] <= half_voxel
    desc = _describe_deltas(d, mask.shape, like.shape)
    if close or resample:
        out = resample_nearest(mask, like)
        lost = sorted(set(np.unique(mask.data).tolist()) - set(np.unique(out.data).tolist()))
        msg = f"{source}: mask grid differs from the image ({desc}); resampled with nearest-neighbour"
        if lost:
            msg += f"; labels {lost} fall outside the image and were lost"
        warnings.warn(msg, SpinemriWarning, stacklevel=2)
        if not np.any(out.data):
            raise GeometryError(f"{source}: after resampling onto the image grid the mask is empty ({desc})")
        return out.with_meta(resampled=True, resample_note=msg)
    raise GeometryError(
        f"{source}: the mask is not on the image grid ({desc}); tolerance {atol_mm:g} mm on translation and "
        f"spacing, {atol_dir:g} on direction cosines. Check that the mask belongs to this image; to resample it "
        "with nearest-neighbour anyway pass resample=True (CLI: --resample-mask)"
    )
