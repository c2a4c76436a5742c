"""Whole-array helpers for label volumes: bounding box of the labels, per-label counts and centroids.

Pure numpy, no I/O. Each works on the labels' bounding box a slab at a time,
in the array's own memory order, so a 512 x 512 x 120 mask costs a few
tens of milliseconds and no full-size temporary.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nonzero_bbox", "label_counts_si"]

#: Voxels per slab of :func:`label_counts_si` (bounds its temporaries to a few MB).
SLAB_VOXELS = 1 << 20


def nonzero_bbox(a: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box (slices) of the non-zero voxels of a 3-D array, or None when there are none.

    One reduction along the last axis (no full-volume boolean temporary),
    then the last axis' extent from its end planes inwards inside the box of
    the other two (labels usually reach close to both ends).
    """
    if a.size == 0:
        return None
    if a.flags.c_contiguous and a.dtype.kind in "uib" and a.ndim == 3:
        # one compiled pass: each row's OR, then its ends where nonzero (zero whatever the sign or
        # byte order, so every integer type is read as unsigned words of its size)
        from ._native import kernels as _kernels

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
        return np.any(words, axis=2)
    return np.any(a, axis=2)


def label_counts_si(
    labels: np.ndarray,
    affine: np.ndarray,
    *,
    centroids: bool = True,
    bbox: tuple[slice, slice, slice] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Labels present (> 0), their voxel counts and their centroids' world superior coordinate.

    Parameters
    ----------
    labels : ndarray of non-negative int, shape (I, J, K)
    affine : ndarray of shape (4, 4)
        Voxel index → world RAS+ mm.
    centroids : bool, default True
        Also compute each label's mean world z (RAS, mm; larger is cranial).
    bbox : tuple of slice, optional
        :func:`nonzero_bbox` of ``labels`` when already known.

    Returns
    -------
    present : ndarray of int64
        Ascending labels > 0 with at least one voxel.
    counts : ndarray of int64
    si_mm : ndarray of float64 or None
        Mean world z of each present label's voxel centres (None unless ``centroids``).

    Notes
    -----
    One ``np.bincount`` per slab of the labels' bounding box (weighted by
    the voxel centres' world z for the centroids), along the slowest axis of
    the array's memory order. Labels >= 2**20 go through ``np.unique``.
    """
    a = np.asarray(labels)
    coef = np.asarray(affine, dtype=np.float64)[2]
    zc = [float(coef[0]), float(coef[1]), float(coef[2])]
    transposed = a.flags.f_contiguous and not a.flags.c_contiguous
    if transposed:
        a, zc = a.T, zc[::-1]  # a C-contiguous view: slabs along its first axis are contiguous
    if bbox is not None:
        box: tuple[slice, slice, slice] | None = (bbox[2], bbox[1], bbox[0]) if transposed else bbox
    else:
        box = nonzero_bbox(a) if a.size else None
    empty = np.zeros(0, dtype=np.int64)
    if box is None:
        return empty, empty, (np.zeros(0) if centroids else None)
    sub = a[box]
    offset = float(coef[3]) + sum(zc[x] * box[x].start for x in range(3))
    mx = int(sub.max())
    if mx >= 1 << 20:
        present, counts = np.unique(sub[sub > 0], return_counts=True)
        si = None
        if centroids:
            idx = np.nonzero(sub)
            z = offset + sum(zc[x] * idx[x] for x in range(3))
            inv = np.searchsorted(present, sub[idx])
            si = np.bincount(inv, weights=z, minlength=present.size) / counts
        return present.astype(np.int64), counts.astype(np.int64), si
    counts = np.zeros(mx + 1, dtype=np.int64)
    zsum = np.zeros(mx + 1)
    n1, n2 = sub.shape[1], sub.shape[2]
    jk = zc[1] * np.arange(n1)[:, None] + zc[2] * np.arange(n2)[None, :]
    step = max(1, SLAB_VOXELS // max(1, n1 * n2))
    for i0 in range(0, sub.shape[0], step):
        slab = sub[i0 : i0 + step]
        flat = slab.ravel()
        counts += np.bincount(flat, minlength=mx + 1)
        if centroids:
            w = zc[0] * np.arange(i0, i0 + slab.shape[0])[:, None, None] + jk[None]
            zsum += np.bincount(flat, weights=w.ravel(), minlength=mx + 1)
    present = np.flatnonzero(counts)
    present = present[present > 0].astype(np.int64)
    si = zsum[present] / counts[present] + offset if centroids else None
    return present, counts[present], si
