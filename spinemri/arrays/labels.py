"""Label volumes: the check of their values, per-label voxel counts and centroids.

Pure numpy, no I/O. :func:`label_counts_si` works on the labels' bounding box
a slab at a time, in the array's own memory order, so a 512 x 512 x 120 mask
costs a few tens of milliseconds and no full-size temporary.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .bbox import nonzero_bbox

__all__ = ["check_label_values", "label_counts_si", "SLAB_VOXELS"]

#: Voxels per slab of :func:`label_counts_si` (bounds its temporaries to a few MB).
SLAB_VOXELS = 1 << 20


def check_label_values(data: np.ndarray, source: str, *, allow_float: bool = True) -> np.ndarray:
    """Mask voxels as a compact integer array, refusing content that is not integer labels.

    The one check of label values (the mask loader, :func:`spinemri.measurement.measure` and
    :func:`spinemri.volume.label_centroids_si` call it).

    Parameters
    ----------
    data : ndarray
        Mask voxels, any numeric dtype (bool is read as 0/1).
    source : str
        The file (or function) the mask came from, named in the error messages.
    allow_float : bool, default True
        Accept floating-point masks whose values are all integral (e.g. float64
        masks written by some tools); with False any floating-point dtype is refused.

    Returns
    -------
    ndarray
        The same values as the smallest of uint8, uint16, int32, int64 that
        holds them (the input itself when it already has that dtype).

    Raises
    ------
    InputError
        NaN or infinite values, non-integral values (a probability map or an
        interpolated mask), negative labels, a non-numeric dtype (or a float
        dtype with ``allow_float=False``), or labels beyond int64.
    """
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating) and allow_float:
        if not np.all(np.isfinite(arr)):
            raise InputError(
                f"{source}: the mask holds NaN or infinite values; a label mask must hold integers "
                "(0 = background): fix the tool that wrote it"
            )
        bad = arr != np.rint(arr)
        if np.any(bad):
            # the shortest text that reads back as this value: 21.99998, not "22" (%g rounded it)
            example = np.format_float_positional(arr[bad].flat[0], trim="-")
            raise InputError(
                f"{source}: the mask holds non-integer values (e.g. {example}); "
                "it looks like a probability "
                "map or an interpolated mask. Threshold or argmax it into integer labels, and resample "
                "masks with nearest-neighbour only"
            )
    elif not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{source}: the mask has dtype {arr.dtype}; expected integer labels")
    if arr.size == 0:
        return arr.astype(np.uint8)
    if arr.dtype == np.uint8:  # already the smallest dtype, nothing negative: no pass over the voxels
        return arr
    # unsigned: nothing negative, so no pass for the minimum
    lo, hi = (0, arr.max()) if arr.dtype.kind == "u" else (arr.min(), arr.max())
    if lo < 0:
        raise InputError(
            f"{source}: the mask holds negative labels (min {lo:g}); labels must be 0 (background) "
            "or positive integers"
        )
    for dt in (np.uint8, np.uint16, np.int32, np.int64):
        if hi <= np.iinfo(dt).max:
            return arr.astype(dt, copy=False)
    raise InputError(f"{source}: label values up to {hi:g} are too large for integer labels")


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
