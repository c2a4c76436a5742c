"""Sets of voxels given as flat indices into a box: connected components, membership, sub-boxes.

The helpers of :mod:`spinemri.segmentation.lesions` that work on voxel lists rather than on
images: candidate voxels are labelled from their list (union-find over their runs) when they are
few, by cc3d on their bounding box otherwise.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from .._native import kernels as _kernels

__all__ = [
    "SPARSE_FRACTION",
    "c_order_ids",
    "connected_components",
    "label_voxels",
    "sorted_isin",
    "sub_box",
]

#: Candidates under 1/SPARSE_FRACTION of the box are labelled from their list (union-find over their
#: runs), more by cc3d on the box (measured on a 1.1 M-voxel box: union-find ~70 ns a scattered
#: voxel, far less in runs, a lesion's 25-voxel rows ~3 ns a voxel; cc3d ~1-3 ns a box voxel: the
#: two cross at 2-3 % of the box for scattered voxels).
SPARSE_FRACTION = 32


def label_voxels(
    cand_idx: np.ndarray, shape: tuple[int, ...], connectivity: int, codes: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Connected components of a list of voxels.

    Parameters
    ----------
    cand_idx : ndarray of intp
        Flat C-order indices of the voxels (ascending, not empty) in an array of ``shape``.
    shape : tuple of 3 int
        The array's shape.
    connectivity : int
        6, 18 or 26.
    codes : ndarray of int, shape (cand_idx.size,), optional
        A code per voxel: voxels of different codes are never connected (the multi-label
        components of an array holding the codes).

    Returns
    -------
    tuple of (ndarray of intp, int)
        The component id (1..n, numbered in C order of each component's first voxel) of each
        voxel of ``cand_idx``, and ``n``.
    """
    codes = None if codes is None else np.ascontiguousarray(codes, dtype=np.int64)
    if cand_idx.size * SPARSE_FRACTION < int(np.prod(shape)):
        # few candidates (the usual case: lesions and noise voxels beyond the threshold): union-find
        # over the voxel list's runs, whose cost follows their number, not the box's size
        lab, n_comp = _kernels.sparse_components(
            np.ascontiguousarray(cand_idx, dtype=np.intp),
            shape[0],
            shape[1],
            shape[2],
            int(connectivity),
            codes,
        )
        return lab, int(n_comp)
    _, sub, local = sub_box(cand_idx, shape)
    if codes is None:
        cand = np.zeros(sub, dtype=bool)
        cand.ravel()[local] = True
    else:  # the codes as small labels 1..m on the voxels' box (cc3d's multi-label components)
        _, small = np.unique(codes, return_inverse=True)
        cand = np.zeros(sub, dtype=np.uint32 if small.size and small.max() >= 1 << 16 else np.uint16)
        cand.ravel()[local] = small.ravel() + 1
    comp, n_comp = connected_components(cand, connectivity)
    return comp.ravel()[local].astype(np.intp), n_comp


def sorted_isin(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.isin(a, b)`` for ascending ``b``, by binary search.

    Parameters
    ----------
    a : ndarray
        The values looked up.
    b : ndarray
        The set, ascending (flat indices of a voxel list).

    Returns
    -------
    ndarray of bool, shape of ``a``
        True where the value of ``a`` is in ``b``.
    """
    if b.size == 0:
        return np.zeros(a.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(b, a), b.size - 1)
    return cast(np.ndarray, b[pos] == a)


def sub_box(idx: np.ndarray, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], np.ndarray]:
    """The bounding box of a list of voxels.

    Parameters
    ----------
    idx : ndarray of intp
        Flat C-order indices (not empty) in an array of ``shape``.
    shape : tuple of int
        The array's shape.

    Returns
    -------
    tuple of (tuple of int, tuple of int, ndarray of intp)
        The box's offset in the array, its shape, and the flat C-order positions of ``idx`` in it.
    """
    coords = np.unravel_index(idx, shape)
    lo = tuple(int(c.min()) for c in coords)
    sub = tuple(int(c.max()) + 1 - o for c, o in zip(coords, lo, strict=True))
    local = np.ravel_multi_index(tuple(c - o for c, o in zip(coords, lo, strict=True)), sub)
    return lo, sub, local


def connected_components(binary_or_labels: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """cc3d's connected components of a 3-D array (of labels: components never join two labels).

    Parameters
    ----------
    binary_or_labels : ndarray
        A boolean or integer label array.
    connectivity : int
        6, 18 or 26.

    Returns
    -------
    tuple of (ndarray, int)
        The component ids (1..n, 0 background) and ``n``.
    """
    import cc3d

    out, n = cc3d.connected_components(binary_or_labels, connectivity=connectivity, return_N=True)  # type: ignore[call-overload]
    return out, int(n)


def c_order_ids(ids: np.ndarray, lesion_vertebra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lesion ids ``1..N`` (each a connected set, C-contiguous ``ids``) renumbered in C order of their
    first voxel, as labelling them once more would number them (cc3d's multi-label components of
    ``ids``: the connectivities are symmetric in the axes, so a lesion labelled on the reversed axes
    is one component here too), and the vertebra of each new id.

    Parameters
    ----------
    ids : ndarray of int, C-contiguous
        Lesion ids ``1..N`` (0: none), every id present.
    lesion_vertebra : ndarray of int, shape (N + 1,)
        The vertebra of each id.

    Returns
    -------
    tuple of (ndarray, ndarray of int64)
        The renumbered ids (uint8, uint16 or int32, the smallest holding N) and the vertebra of each.
    """
    flat = ids.ravel()
    nz = np.flatnonzero(flat)
    old, first = np.unique(flat[nz], return_index=True)  # 1..N, each id's first voxel
    n_ids = old.size
    lut = np.zeros(
        int(old[-1]) + 1, dtype=np.uint8 if n_ids < 1 << 8 else np.uint16 if n_ids < 1 << 16 else np.int32
    )
    lut[old[np.argsort(first, kind="stable")]] = np.arange(1, n_ids + 1)
    out = np.zeros(ids.shape, dtype=lut.dtype)
    out.ravel()[nz] = lut[flat[nz]]
    vertebra = np.zeros(n_ids + 1, dtype=np.int64)
    vertebra[lut[old]] = lesion_vertebra[old]
    return out, vertebra
