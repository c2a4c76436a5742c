"""Bounding box of the non-zero voxels of a 3-D array, without a full-volume temporary.

Pure numpy (and one compiled pass for C-contiguous integer arrays), no I/O:
a 512 x 512 x 120 mask costs a few milliseconds.
"""

from __future__ import annotations

from typing import cast

import numpy as np

__all__ = ["nonzero_bbox"]


def nonzero_bbox(a: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box (slices) of the non-zero voxels of a 3-D array, or None when there are none.

    One reduction along the last axis (no full-volume boolean temporary),
    then the last axis' extent from its end planes inwards inside the box of
    the other two (labels usually reach close to both ends); C- or
    Fortran-contiguous integer and bool arrays take one compiled pass instead
    (a Fortran-ordered one on its reversed-axes view).

    Parameters
    ----------
    a : ndarray, shape (I, J, K)
        Any dtype; zero is "outside" (for integers whatever the sign or byte order).

    Returns
    -------
    tuple of 3 slice or None
        The smallest box holding every non-zero voxel (``a[box]``), None for an
        empty or all-zero array.
    """
    if a.size == 0:
        return None
    if a.flags.f_contiguous and not a.flags.c_contiguous and a.dtype.kind in "uib" and a.ndim == 3:
        # a Fortran-ordered array (NIfTI as nibabel loads it): the compiled pass on its C-contiguous
        # reversed-axes view, whose box is this one's reversed
        t = nonzero_bbox(a.T)
        return None if t is None else (t[2], t[1], t[0])
    if a.flags.c_contiguous and a.dtype.kind in "uib" and a.ndim == 3:
        # one compiled pass: each row's OR, then its ends where nonzero (zero whatever the sign or
        # byte order, so every integer type is read as unsigned words of its size)
        from .._native import kernels as _kernels

        b = _kernels.nonzero_box(a.view(f"u{a.dtype.itemsize}"))
        return None if b is None else (slice(b[0], b[1]), slice(b[2], b[3]), slice(b[4], b[5]))
    p01 = _any_last_axis(a)
    if not p01.any():
        return None
    i = np.flatnonzero(np.any(p01, axis=1))
    j = np.flatnonzero(np.any(p01, axis=0))
    inner = a[i[0] : i[-1] + 1, j[0] : j[-1] + 1]
    k0 = 0
    while not inner[:, :, k0].any():
        k0 += 1
    k1 = a.shape[2] - 1
    while not inner[:, :, k1].any():
        k1 -= 1
    return (slice(int(i[0]), int(i[-1]) + 1), slice(int(j[0]), int(j[-1]) + 1), slice(k0, k1 + 1))


def _any_last_axis(a: np.ndarray) -> np.ndarray:
    """``np.any(a, axis=2)``; on C-contiguous rows of whole 8-byte words it tests 8 bytes at a time."""
    row_bytes = a.shape[2] * a.itemsize
    if a.flags.c_contiguous and row_bytes % 8 == 0 and a.dtype.kind in "uib":
        words = a.reshape(-1).view(np.uint64).reshape(a.shape[0], a.shape[1], row_bytes // 8)
        return cast(np.ndarray, np.any(words, axis=2))
    return cast(np.ndarray, np.any(a, axis=2))
