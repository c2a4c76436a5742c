"""Per-label voxel counts, index moments and world extents in one compiled pass over a box.

Pure numpy plus one compiled kernel (``label_moments``), no I/O. The anatomy check
(:func:`spinemri.anatomy_check.label_shapes`: centroids and covariances in world mm) and the
plausibility check (:func:`spinemri.plausibility.label_shapes`: volumes and world extents) read
the same :class:`LabelMoments`, so :func:`spinemri.measure` walks the mask's labels once for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .bbox import nonzero_bbox

__all__ = ["LabelMoments", "label_moments", "label_moments_with_bbox", "MAX_COMPILED_LABEL"]

#: Largest label the compiled pass takes (its per-label tables have ``max label + 1`` rows);
#: masks with larger labels use the numpy definition.
MAX_COMPILED_LABEL = 1 << 16

# the index products of the kernel's second sums, in its order: ii, ij, ik, jj, jk, kk
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


@dataclass(frozen=True)
class LabelMoments:
    """Moments of every label > 0 present in a mask (rows in ascending label order).

    Attributes
    ----------
    labels : ndarray of shape (n,), int64
        The labels present, ascending.
    counts : ndarray of shape (n,), int64
        Voxel counts.
    mean_ijk : ndarray of shape (n, 3), float64
        Mean voxel index (i, j, k) of each label (array coordinates of the whole volume).
    cov_ijk : ndarray of shape (n, 3, 3), float64
        Covariance of the voxel indices (population, divided by the count), from exact integer sums.
    world_min, world_max : ndarray of shape (n, 3), float64
        Smallest and largest world coordinate (x, y, z) of a voxel centre, ``affine[:3, :3] @ ijk``
        (translation left out: extents do not depend on it).
    """

    labels: np.ndarray
    counts: np.ndarray
    mean_ijk: np.ndarray
    cov_ijk: np.ndarray
    world_min: np.ndarray
    world_max: np.ndarray

    def rows(self, labels: Sequence[int]) -> np.ndarray:
        """Row index of each of ``labels`` (which must be present).

        Parameters
        ----------
        labels : sequence of int

        Returns
        -------
        ndarray of int64
        """
        return np.searchsorted(self.labels, np.asarray(labels, dtype=np.int64))


def label_moments(
    labels: np.ndarray, affine: np.ndarray, *, bbox: tuple[slice, slice, slice] | None = None
) -> LabelMoments:
    """Count, index mean and covariance, and world extent of every label > 0 of a 3-D mask.

    Parameters
    ----------
    labels : ndarray of shape (I, J, K), non-negative integer
    affine : ndarray of shape (4, 4)
        Voxel index (i, j, k) -> world (x, y, z) RAS mm.
    bbox : tuple of 3 slice, optional
        :func:`spinemri.arrays.bbox.nonzero_bbox` of ``labels`` when known.

    Returns
    -------
    LabelMoments
        Empty arrays for an all-zero mask.

    Notes
    -----
    One compiled pass over the bounding box (in the array's memory order: a Fortran-ordered mask is
    read through its reversed-axes view), no full-size or per-voxel temporaries; the sums of the
    indices and of their products are exact integers, so the centred moments lose nothing to
    cancellation. Labels above :data:`MAX_COMPILED_LABEL` or non-integer arrays take the numpy
    definition (:func:`_label_moments_numpy`), with the same results.
    """
    a = np.asarray(labels)
    lin = np.ascontiguousarray(np.asarray(affine, dtype=np.float64)[:3, :3])
    box = bbox if bbox is not None else (nonzero_bbox(a) if a.size else None)
    if box is None:
        return _empty()
    sub = a[box]
    offset = np.array([float(sl.start or 0) for sl in box])
    # a uint8 mask: a table of every value of the dtype instead of a pass for the largest label
    mx = 255 if a.dtype == np.uint8 and a.ndim == 3 else (int(sub.max()) if sub.size else 0)
    if mx == 0:
        return _empty()
    if a.dtype.kind not in "ui" or a.ndim != 3 or mx > MAX_COMPILED_LABEL:
        return _label_moments_numpy(sub, lin, offset)
    from .._native import kernels as _kernels

    u = sub.view(f"u{sub.dtype.itemsize}") if sub.dtype.kind == "i" else sub
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        # a Fortran-ordered mask: its reversed-axes view is fastest along its last axis
        cnt, s1, s2, lo, hi = _kernels.label_moments(
            u.T, mx + 1, np.ascontiguousarray(lin[:, ::-1]), np.ascontiguousarray(offset[::-1])
        )
        s1 = s1[:, ::-1]
        # (kk, kj, ki, jj, ji, ii) of the reversed axes -> (ii, ij, ik, jj, jk, kk)
        s2 = s2[:, [5, 4, 2, 3, 1, 0]]
    else:
        cnt, s1, s2, lo, hi = _kernels.label_moments(u, mx + 1, lin, offset)
    present = np.flatnonzero(cnt)
    present = present[present > 0]
    if present.size == 0:  # an all-zero box
        return _empty()
    return _finish(present, cnt[present], s1[present], s2[present], offset, lo[present], hi[present])


def label_moments_with_bbox(
    labels: np.ndarray, affine: np.ndarray
) -> tuple[tuple[slice, slice, slice] | None, LabelMoments]:
    """:func:`spinemri.arrays.bbox.nonzero_bbox` and :func:`label_moments` of a 3-D mask in one pass.

    Parameters
    ----------
    labels : ndarray of shape (I, J, K), non-negative integer
    affine : ndarray of shape (4, 4)
        Voxel index (i, j, k) -> world (x, y, z) RAS mm.

    Returns
    -------
    box : tuple of 3 slice or None
        The bounding box of the nonzero voxels (None for an all-zero or empty mask).
    moments : LabelMoments
        Equal, byte for byte, to ``label_moments(labels, affine, bbox=box)``.

    Notes
    -----
    One compiled pass over the whole array in its memory order (a Fortran-ordered mask through its
    reversed-axes view): empty planes and rows are skipped by a vectorised OR, and only the span
    between a row's first and last nonzero voxel is cut into runs. The kernel's sums are of whole-
    array indices; they are moved to the box's origin with exact integer arithmetic, so the means
    are computed from the same numbers as :func:`label_moments` computes. Masks that are neither C-
    nor Fortran-contiguous, not integer, or with labels above 255 take the two separate passes.
    """
    a = np.asarray(labels)
    fortran = a.flags.f_contiguous and not a.flags.c_contiguous
    if a.ndim != 3 or a.dtype.kind not in "ui" or a.size == 0 or not (fortran or a.flags.c_contiguous):
        box = nonzero_bbox(a) if a.size else None
        return box, label_moments(a, affine, bbox=box)
    from .._native import kernels as _kernels

    lin = np.ascontiguousarray(np.asarray(affine, dtype=np.float64)[:3, :3])
    u = a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "i" else a
    n_tab = 256  # a table of every uint8 value; larger labels (rare) take the separate passes
    if fortran:
        cnt, s1, s2, lo, hi, b, vmax = _kernels.label_moments_bbox(
            u.T, n_tab, np.ascontiguousarray(lin[:, ::-1])
        )
        s1 = s1[:, ::-1]
        s2 = s2[:, [5, 4, 2, 3, 1, 0]]
        box = None if b is None else (slice(b[4], b[5]), slice(b[2], b[3]), slice(b[0], b[1]))
    else:
        cnt, s1, s2, lo, hi, b, vmax = _kernels.label_moments_bbox(u, n_tab, lin)
        box = None if b is None else (slice(b[0], b[1]), slice(b[2], b[3]), slice(b[4], b[5]))
    if box is None:
        return None, _empty()
    if vmax >= n_tab:
        return box, label_moments(a, affine, bbox=box)
    present = np.flatnonzero(cnt)
    present = present[present > 0]
    origin = np.array([sl.start for sl in box], dtype=np.int64)
    c = cnt[present]
    # sums of whole-array indices -> of box-relative ones, exactly: sum (x - o) = sum x - n o and
    # sum (x_p - o_p)(x_q - o_q) = sum x_p x_q - o_q sum x_p - o_p sum x_q + n o_p o_q
    r1 = s1[present] - c[:, None] * origin[None, :]
    g = s1[present]
    p1 = [a for a, _ in _PAIRS]
    p2 = [b for _, b in _PAIRS]
    o1, o2 = origin[p1][None, :], origin[p2][None, :]
    r2 = s2[present] - o2 * g[:, p1] - o1 * g[:, p2] + c[:, None] * o1 * o2
    offset = origin.astype(np.float64)
    return box, _finish(present, c, r1, r2, offset, lo[present], hi[present])


def _finish(
    present: np.ndarray,
    cnt: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    offset: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> LabelMoments:
    """Means and centred covariances from the integer sums (box-relative indices), exactly."""
    n = len(present)
    o0, o1, o2 = (float(x) for x in offset)
    means = []
    covs = []
    # Python integers: c * sum(pq) - sum(p) sum(q) is exact, whatever the sizes (built as lists, one
    # array at the end: no element-wise writes into numpy arrays)
    for c, (x0, x1, x2), a2 in zip(cnt.tolist(), s1.tolist(), s2.tolist(), strict=True):
        cc = c * c
        means.append((x0 / c + o0, x1 / c + o1, x2 / c + o2))
        v00 = (c * a2[0] - x0 * x0) / cc
        v01 = (c * a2[1] - x0 * x1) / cc
        v02 = (c * a2[2] - x0 * x2) / cc
        v11 = (c * a2[3] - x1 * x1) / cc
        v12 = (c * a2[4] - x1 * x2) / cc
        v22 = (c * a2[5] - x2 * x2) / cc
        covs.append(((v00, v01, v02), (v01, v11, v12), (v02, v12, v22)))
    mean = np.array(means, dtype=np.float64).reshape(n, 3)
    cov = np.array(covs, dtype=np.float64).reshape(n, 3, 3)
    return LabelMoments(present.astype(np.int64), cnt.astype(np.int64), mean, cov, lo, hi)


def _label_moments_numpy(sub: np.ndarray, lin: np.ndarray, offset: np.ndarray) -> LabelMoments:
    """The definition of the compiled pass: gathers and ``np.bincount`` (box-relative indices)."""
    idx = np.nonzero(sub)
    lab = np.asarray(sub[idx]).astype(np.int64)
    present, inv = np.unique(lab, return_inverse=True)
    n = len(present)
    cnt = np.bincount(inv, minlength=n).astype(np.int64)
    ijk = [ix.astype(np.int64) for ix in idx]
    s1 = np.zeros((n, 3), dtype=np.int64)
    s2 = np.zeros((n, 6), dtype=np.int64)
    for r in range(n):
        sel = inv == r
        v = [x[sel] for x in ijk]
        s1[r] = [int(x.sum()) for x in v]
        s2[r] = [int((v[p] * v[q]).sum()) for p, q in _PAIRS]
    world = lin @ (np.stack([x.astype(np.float64) for x in ijk]) + offset[:, None])
    lo = np.full((n, 3), np.inf)
    hi = np.full((n, 3), -np.inf)
    for d in range(3):
        np.minimum.at(lo[:, d], inv, world[d])
        np.maximum.at(hi[:, d], inv, world[d])
    return _finish(present, cnt, s1, s2, offset, lo, hi)


def _empty() -> LabelMoments:
    z = np.zeros(0, dtype=np.int64)
    return LabelMoments(
        z, z.copy(), np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros((0, 3))
    )
