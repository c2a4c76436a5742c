"""N4 bias-field correction (SimpleITK) of an image inside a mask, before thresholding."""

from __future__ import annotations

from typing import cast

import numpy as np

__all__ = ["n4_correct"]


def n4_correct(
    image: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    shrink: int = 2,
    iterations: int = 50,
) -> np.ndarray:
    """N4 bias-field corrected copy of ``image`` (SimpleITK), fitted inside ``mask``.

    The bias field is estimated on an image shrunk by ``shrink`` and applied at
    full resolution (``image / exp(log_bias)``), so the correction is smooth.
    Intensities must be positive; the image is shifted to a minimum of 1 for
    the fit and shifted back.

    Parameters
    ----------
    image : ndarray, shape (I, J, K)
        Image intensities.
    mask : ndarray of bool, shape (I, J, K)
        Where the bias field is fitted (the vertebrae).
    spacing : tuple of 3 float
        Voxel size in mm.
    shrink : int, default 2
        Shrink factor of the fit.
    iterations : int, default 50
        Maximum iterations at each of the 4 fitting levels.

    Returns
    -------
    ndarray of float64, shape (I, J, K)
        The corrected image.
    """
    import SimpleITK as sitk

    img = np.asarray(image, dtype=np.float32)
    shift = float(1.0 - img.min()) if img.min() < 1.0 else 0.0
    # SimpleITK indexes arrays (k, j, i); only spacing matters for a smooth bias field.
    sitk_img = sitk.GetImageFromArray(np.ascontiguousarray((img + shift).transpose(2, 1, 0)))
    sitk_img.SetSpacing(tuple(float(s) for s in spacing))
    sitk_mask = sitk.GetImageFromArray(np.ascontiguousarray(mask.astype(np.uint8).transpose(2, 1, 0)))
    sitk_mask.CopyInformation(sitk_img)
    small = sitk.Shrink(sitk_img, [int(shrink)] * 3) if shrink > 1 else sitk_img
    small_mask = sitk.Shrink(sitk_mask, [int(shrink)] * 3) if shrink > 1 else sitk_mask
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([int(iterations)] * 4)
    n4.Execute(small, small_mask)
    log_bias = n4.GetLogBiasFieldAsImage(sitk_img)
    bias = np.exp(sitk.GetArrayFromImage(log_bias).transpose(2, 1, 0).astype(np.float64))
    return cast(np.ndarray, (img.astype(np.float64) + shift) / bias - shift)
