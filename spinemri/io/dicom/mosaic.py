"""Siemens MOSAIC images: one file whose single frame tiles the slices of a volume.

:func:`is_mosaic` recognises one (ImageType MOSAIC); :func:`demosaic` cuts it
into its slices (NumberOfImagesInMosaic, CSA SliceNormalVector) and gives the
stack's affine, with the mosaic's ImagePositionPatient moved to the first
tile's corner.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DicomError
from .frames import check_orientation, classic_frames, slice_affine
from .header import hget, opt_float
from .pixels import decode_frames

__all__ = ["is_mosaic", "demosaic"]


def is_mosaic(ds: Any) -> bool:
    """Whether a file is a Siemens mosaic (ImageType holds MOSAIC).

    Parameters
    ----------
    ds : pydicom.Dataset
        The file's header.

    Returns
    -------
    bool
    """
    image_type = [str(x).upper() for x in (hget(ds, "ImageType") or [])]
    return "MOSAIC" in image_type


def demosaic(h: Any, where: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Siemens mosaic file -> (slices, rows, cols) stored values and the RAS affine.

    Parameters
    ----------
    h : header record
        The file: ``h.path`` and its header ``h.ds`` (PixelData read or deferred).
    where : Path
        The series' folder or file, named in error messages.

    Returns
    -------
    (ndarray, ndarray, dict)
        Stored values of shape (slices, rows, cols) (not rescaled), the voxel
        (column, row, slice) -> RAS affine, and notes for the Volume's meta
        (mosaic_slices, spacing_between_slices, slice_thickness).

    Raises
    ------
    DicomError
        No NumberOfImagesInMosaic or readable CSA SliceNormalVector, a normal
        not perpendicular to the image, tiles that do not fit, no positive slice spacing.
    """
    ds, path = h.ds, h.path
    try:
        n = int(ds[0x0019, 0x100A].value)
    except (KeyError, TypeError, ValueError):
        raise DicomError(
            f"{path}: a Siemens MOSAIC image without NumberOfImagesInMosaic (0019,100A); spinemri cannot cut "
            "it into slices: convert the series with dcm2niix and pass the NIfTI file"
        ) from None
    with warnings.catch_warnings():  # nibabel.nicom warns that its DICOM *readers* are experimental
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import csareader

    try:
        csa = csareader.get_csa_header(ds, "image")
        normal = np.asarray(csareader.get_vector(csa, "SliceNormalVector", 3), dtype=np.float64)
    except Exception:  # missing or unreadable CSA header
        normal = None
    if normal is None or not np.all(np.isfinite(normal)) or np.linalg.norm(normal) < 0.5:
        raise DicomError(
            f"{path}: a Siemens MOSAIC image without a readable CSA SliceNormalVector; the slice order is "
            "unknown: convert the series with dcm2niix and pass the NIfTI file"
        )
    normal = normal / np.linalg.norm(normal)
    frame = classic_frames(path, 0, ds)[0]
    row_dir, col_dir = check_orientation([frame], where)
    if abs(abs(float(normal @ np.cross(row_dir, col_dir))) - 1) > 1e-3:
        raise DicomError(f"{path}: the CSA SliceNormalVector is not perpendicular to ImageOrientationPatient")
    rows, cols = int(ds.Rows), int(ds.Columns)
    m = int(math.ceil(math.sqrt(n)))
    if rows % m or cols % m:
        raise DicomError(f"{path}: a {rows}x{cols} mosaic cannot hold {n} tiles on a {m}x{m} grid")
    r, c = rows // m, cols // m
    stored = decode_frames(path, ds)[0]
    tiles = stored.reshape(m, r, m, c).transpose(0, 2, 1, 3).reshape(m * m, r, c)[:n]
    spacing = frame.spacing
    sbs = opt_float(ds.get("SpacingBetweenSlices")) or frame.thickness
    if not sbs or sbs <= 0:
        raise DicomError(f"{path}: a MOSAIC image without a positive SpacingBetweenSlices or SliceThickness")
    # ImagePositionPatient of a mosaic refers to the whole mosaic; move it to the first tile's corner
    origin = frame.ipp + row_dir * spacing[1] * (cols - c) / 2.0 + col_dir * spacing[0] * (rows - r) / 2.0
    affine = slice_affine(row_dir, col_dir, spacing, normal * sbs, origin)
    notes = {"mosaic_slices": n, "spacing_between_slices": float(sbs), "slice_thickness": frame.thickness}
    return tiles, affine, notes
