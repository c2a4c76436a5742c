"""``load_volume`` and ``load_mask``: one entry point for every supported input."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..arrays.labels import check_label_values
from ..errors import GeometryError, InputError, SpinemriWarning
from ..volume import (
    DIRECTION_ATOL,
    TRANSLATION_ATOL_MM,
    Volume,
    axcodes,
    find_reorientation,
    grid_deltas,
    reorient,
)
from .mask_formats import read_mask
from .nifti import check_regular_file, is_itk, is_nifti, load_itk, load_nifti

__all__ = ["load_volume", "load_mask", "reorient_mask", "resample_nearest", "LOOSE_VOXEL_FRACTION"]

log = logging.getLogger(__name__)


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
        from .dicom.series import load_dicom

        return load_dicom(p, series=series)
    check_regular_file(p)
    if is_nifti(p):
        return load_nifti(p)
    if is_itk(p):
        return load_itk(p)
    from .dicom.header import is_dicom_file
    from .dicom.series import load_dicom

    if is_dicom_file(p):
        return load_dicom(p, series=series)
    raise InputError(
        f"{p}: unknown image format; expected a DICOM folder or file, "
        ".nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd"
    )


#: The looser grid tolerance (DESIGN §2): a mask with the image's shape whose
#: voxel centres all lie within this fraction of the smallest image voxel size
#: of the image's voxel centres is resampled (nearest-neighbour) with a warning.
LOOSE_VOXEL_FRACTION = 0.5


def resample_nearest(mask: Volume, like: Volume) -> Volume:
    """Nearest-neighbour resample of a label Volume onto ``like``'s grid.

    For each voxel index (i, j, k) of ``like``, the world point
    ``like.affine @ (i, j, k, 1)`` is mapped to the continuous voxel index
    ``c = inv(mask.affine) @ world`` of ``mask``; the value taken is
    ``mask[floor(c + 0.5)]`` (ties round up, as ITK's nearest-neighbour
    interpolator does), or 0 where that index falls outside the mask
    (``c`` outside ``[-0.5, n - 0.5)`` on some axis).

    Parameters
    ----------
    mask : Volume of shape (I, J, K)
        Integer labels.
    like : Volume of shape (I2, J2, K2)
        The target grid (its data are not used).

    Returns
    -------
    Volume of shape (I2, J2, K2)
        ``mask``'s dtype and metadata, ``like``'s affine.
    """
    m = np.linalg.inv(mask.affine) @ like.affine
    src = np.asarray(mask.data)
    ni, nj, nk = like.shape
    out = np.zeros(like.shape, dtype=src.dtype)
    ii, jj = np.meshgrid(np.arange(ni, dtype=np.float64), np.arange(nj, dtype=np.float64), indexing="ij")
    base = [m[r, 0] * ii + m[r, 1] * jj + m[r, 3] for r in range(3)]
    shape = np.array(src.shape)
    for k in range(nk):  # one slab at a time keeps memory at O(I2 * J2)
        idx = [np.floor(base[r] + m[r, 2] * k + 0.5).astype(np.int64) for r in range(3)]
        inside = np.ones((ni, nj), dtype=bool)
        for r in range(3):
            inside &= (idx[r] >= 0) & (idx[r] < shape[r])
        out[:, :, k][inside] = src[idx[0][inside], idx[1][inside], idx[2][inside]]
    return Volume(out, like.affine, dict(mask.meta))


def _fmt(values: Any, digits: str = ".4g") -> str:
    return "(" + ", ".join(format(float(v), digits) for v in values) + ")"


def _describe_deltas(d: dict[str, Any], mask_shape: tuple[int, ...], like_shape: tuple[int, ...]) -> str:
    return (
        f"mask shape {tuple(mask_shape)} vs image {tuple(like_shape)}; "
        f"spacing differs by {_fmt(d['spacing_ijk_mm'])} mm along (i, j, k), "
        f"origin by {_fmt(d['origin_xyz_mm'])} mm along (x, y, z), "
        f"direction cosines by {_fmt(d['direction_ijk'], '.3g')} along (i, j, k); "
        f"voxel centres move by up to {d['corner_mm']:.4g} mm"
    )


def _exact(d: dict[str, Any], atol_mm: float, atol_dir: float) -> bool:
    """The first outcome of :func:`load_mask`: the same grid within the tolerances."""
    return bool(
        d["shape_equal"]
        and d["origin_mm"] <= atol_mm
        and max(d["spacing_ijk_mm"]) <= atol_mm
        and d["direction"] <= atol_dir
    )


def _check_mask_path(p: Path) -> None:
    if not p.exists():
        raise InputError(f"{p}: no such mask file or folder; check the path")
    if p.is_dir():
        if is_nifti(p) or is_itk(p):
            raise InputError(f"{p}: is a folder, but its name says it is a mask file; pass the file itself")
        if not any(child.is_file() for child in p.iterdir()):
            raise InputError(
                f"{p}: is an empty folder; a mask must be a NIfTI/NRRD/MHA file or a folder of DICOM files"
            )


def reorient_mask(mask: Volume, like: Volume, *, max_shift_mm: float) -> Volume | None:
    """``mask`` transposed and flipped into ``like``'s voxel order, when its grid is a reordering of it.

    Parameters
    ----------
    mask : Volume of shape (I, J, K)
        Integer labels, on its own grid.
    like : Volume
        The image grid (its data are not used).
    max_shift_mm : float
        Largest accepted voxel-centre distance (mm) between the reoriented
        mask grid and ``like``'s (see :func:`spinemri.volume.find_reorientation`).

    Returns
    -------
    Volume or None
        The same labels in ``like``'s array order (an exact transpose and
        flips: no interpolation) with the reoriented affine, and ``meta``
        entries ``reoriented_from`` (the mask file's ``axcodes``, ``shape``,
        and the ``transpose`` and ``flip`` applied, ``flip`` = the new axes
        reversed) and ``reorient_note`` (one line for provenance). None when
        the mask grid is not an axis permutation and/or flips of ``like``'s
        (or is ``like``'s grid unchanged).
    """
    found = find_reorientation(mask.shape, mask.affine, like.shape, like.affine, max_shift_mm=max_shift_mm)
    if found is None:
        return None
    axes, flips = found
    codes, to_codes = "".join(axcodes(mask.affine)), "".join(axcodes(like.affine))
    flip_axes = [j for j in range(3) if flips[j]]
    source = str(mask.meta.get("source", "<in-memory mask>"))
    note = (
        f"{source}: mask stored in another voxel order ({codes}, shape {mask.shape}) than the image "
        f"({to_codes}, shape {like.shape}); reoriented exactly (transpose {axes}, then flip axes "
        f"{flip_axes}), no interpolation"
    )
    log.info("%s", note)
    origin = {"axcodes": codes, "shape": mask.shape, "transpose": axes, "flip": tuple(flip_axes)}
    return reorient(mask, axes, flips, reoriented_from=origin, reorient_note=note)


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
        A label file or DICOM folder (anything :func:`load_volume` reads), a
        SPINEPS ``*_seg-vert_*_msk.nii.gz`` (its vertebral bodies, with the
        subregion mask next to it), a TotalSegmentator per-structure folder
        (merged by name), or an already loaded Volume (its ``meta["source"]``
        names it in errors); see :mod:`spinemri.io.mask_formats`.
    like : Volume, optional
        The image the mask belongs to. When given, the grids are compared
        (see Notes).
    resample : bool, default False
        Resample a mask on any other overlapping grid (nearest-neighbour,
        with a warning) instead of refusing it.
    atol_mm : float, default 1e-3
        Tolerance on origin (per world axis) and spacing (per array axis), mm.
    atol_dir : float, default 1e-4
        Tolerance on each direction cosine (unitless).

    Returns
    -------
    Volume
        Integer labels (uint8/uint16/int32/int64) on ``like``'s grid. ``meta``
        keeps ``label_names`` when the file carries a label table, and records
        ``resampled`` (bool) when ``like`` is given, and ``reoriented_from``
        and ``reorient_note`` when the mask was stored in another voxel order
        (see :func:`reorient_mask`).

    Raises
    ------
    InputError
        Missing file, a folder that holds no files, unreadable file, or
        non-label content (NaN, non-integral, negative values); the message
        names the file.
    GeometryError
        The mask is not on the image grid (message: per-axis shape, spacing,
        origin and direction deltas, the tolerance and how to resample), or
        it is empty after resampling.

    Warns
    -----
    SpinemriWarning
        When the mask was resampled.

    Notes
    -----
    Three outcomes (DESIGN §2; docs/decisions/0001-mask-grid-tolerance.md):

    1. same shape, origin and spacing within ``atol_mm`` and direction
       cosines within ``atol_dir``: accepted as is; the returned mask takes
       ``like``'s affine exactly;
    2. same shape and every voxel centre within ``LOOSE_VOXEL_FRACTION``
       (half) of the smallest image voxel size of where the image puts it
       (rounding-level differences: float32 headers, qform vs sform, ITK
       re-orthogonalised directions): resampled with nearest-neighbour
       (which then keeps every voxel) and a :class:`SpinemriWarning`;
    3. otherwise :class:`GeometryError`, unless ``resample=True``.

    Before 2 and 3, a mask whose grid is the image grid in another voxel
    order (an axis permutation and/or flips: dcm2niix, ITK/LPS,
    ``as_closest_canonical`` writers) is first reoriented exactly, a
    transpose and flips of the array (:func:`reorient_mask`), when every
    reoriented voxel centre lies within the looser tolerance of the image's;
    the three outcomes then apply to the reoriented mask, so a reordered mask
    on the same voxels is accepted as is (outcome 1) with no warning (an INFO
    log line and ``meta["reorient_note"]``). docs/coordinates.md says how the
    permutation is found.
    """
    if isinstance(path, Volume):
        mask = path
    else:
        p = Path(path)
        _check_mask_path(p)
        mask = read_mask(p)  # SPINEPS pairs, TotalSegmentator folders, any label file (io/mask_formats.py)
    source = str(mask.meta.get("source", "<in-memory mask>" if isinstance(path, Volume) else path))
    mask = mask.with_data(check_label_values(mask.data, source))
    if like is None:
        return mask
    d = grid_deltas(mask.shape, mask.affine, like.shape, like.affine)
    if _exact(d, atol_mm, atol_dir):
        return Volume(mask.data, like.affine, {**dict(mask.meta), "resampled": False})
    loose_mm = LOOSE_VOXEL_FRACTION * min(like.spacing)
    reoriented = reorient_mask(mask, like, max_shift_mm=loose_mm)  # another voxel order (docs/coordinates.md)
    if reoriented is not None:
        mask = reoriented
        d = grid_deltas(mask.shape, mask.affine, like.shape, like.affine)
        if _exact(d, atol_mm, atol_dir):
            return Volume(mask.data, like.affine, {**dict(mask.meta), "resampled": False})
    close = d["shape_equal"] and d["corner_mm"] <= loose_mm
    desc = _describe_deltas(d, mask.shape, like.shape)
    if not (close or resample):
        raise GeometryError(
            f"{source}: the mask is not on the image grid ({desc}). Tolerance: {atol_mm:g} mm on origin and "
            f"spacing and {atol_dir:g} on direction cosines; with the same shape, shifts up to "
            f"{loose_mm:.4g} mm (half the smallest image voxel) are resampled automatically. Check that the "
            "mask belongs to this image; to resample it with nearest-neighbour anyway pass resample=True "
            "to load_mask"
        )
    out = resample_nearest(mask, like)
    before = set(np.unique(mask.data).tolist()) - {0}
    after = set(np.unique(out.data).tolist()) - {0}
    if not after:
        raise GeometryError(
            f"{source}: after nearest-neighbour resampling onto the image grid the mask is empty ({desc}); "
            "the mask and the image do not overlap: check that the mask belongs to this image"
        )
    msg = f"{source}: mask grid differs from the image ({desc}); resampled with nearest-neighbour"
    lost = sorted(before - after)
    if lost:
        msg += f"; labels {lost} fall outside the image and were lost"
    warnings.warn(msg, SpinemriWarning, stacklevel=2)
    return out.with_meta(resampled=True, resample_note=msg)
