"""Lossless conversions between :class:`~spinemri.volume.Volume` and nibabel / SimpleITK images.

This is the one place where the two coordinate conventions meet:

* nibabel / NIfTI / spinemri: array indexed (i, j, k), affine maps to RAS+ mm.
* SimpleITK / ITK / DICOM: array from ``GetArrayFromImage`` indexed (k, j, i)
  (slowest axis first), and origin / direction expressed in LPS+ mm.

So ``to_sitk`` transposes the array once (``data.transpose(2, 1, 0)``) and flips
the sign of the first two world axes once (``LPS = diag(-1, -1, 1) @ RAS``);
``from_sitk`` undoes both. Round trips are exact (tests/properties).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..volume import Volume, voxel_spacing

__all__ = ["RAS_TO_LPS", "to_nibabel", "from_nibabel", "to_sitk", "from_sitk"]

#: Flip between RAS+ and LPS+ world coordinates (its own inverse).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def to_nibabel(volume: Volume) -> Any:
    """A ``nibabel.Nifti1Image`` with the volume's data and affine (sform and qform code 1)."""
    import nibabel as nib

    data = np.asarray(volume.data)
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    img = nib.Nifti1Image(data, volume.affine)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    return img


def from_nibabel(img: Any, meta: dict[str, Any] | None = None) -> Volume:
    """A Volume from a 3-D nibabel spatial image.

    Voxel values are returned in the dtype nibabel's ``get_fdata`` would *not*
    impose: when the header has no scaling, the on-disk dtype is kept
    (``dataobj``); with a slope/intercept the scaled float values are used.
    The affine is ``img.affine`` (nibabel picks sform over qform as NIfTI
    specifies).
    """
    dataobj = img.dataobj
    slope = getattr(dataobj, "slope", 1.0)
    inter = getattr(dataobj, "inter", 0.0)
    unscaled = (slope is None or slope == 1.0) and (inter is None or inter == 0.0)
    data = np.asanyarray(dataobj) if unscaled else img.get_fdata(dtype=np.float32)
    return Volume(np.asarray(data), img.affine, meta or {})


def to_sitk(volume: Volume) -> Any:
    """A ``SimpleITK.Image`` with the same voxels and world geometry (LPS)."""
    import SimpleITK as sitk

    data = np.asarray(volume.data)
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)), isVector=False)
    lps = RAS_TO_LPS @ volume.affine
    spacing = np.array(voxel_spacing(lps))
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in lps[:3, 3]))
    img.SetDirection(tuple(float(d) for d in (lps[:3, :3] / spacing).ravel()))
    return img


def from_sitk(img: Any, meta: dict[str, Any] | None = None) -> Volume:
    """A Volume from a 3-D ``SimpleITK.Image`` (inverse of :func:`to_sitk`)."""
    import SimpleITK as sitk

    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        from ..errors import GeometryError

        raise GeometryError(
            f"expected a 3-D scalar image, got dimension {img.GetDimension()} "
            f"with {img.GetNumberOfComponentsPerPixel()} components per pixel"
        )
    data = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
    direction = np.array(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(img.GetSpacing(), dtype=np.float64)
    lps[:3, 3] = img.GetOrigin()
    return Volume(data, RAS_TO_LPS @ lps, meta or {})
