"""Sets of voxels given as flat indices into a box: connected components, membership, sub-boxes.

The helpers of :mod:`spinemri.segmentation.lesions` that work on voxel lists rather than on
images: candidate voxels are labelled from their list (union-find) when they are few, by cc3d on
their bounding box otherwise; lesion ids are labelled per vertebra so that a lesion never crosses
a vertebra boundary.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from .._native import kernels as _kernels

__all__ = [
    "SPARSE_FRACTION",
    "connected_components",
    "label_by_vertebra",
    "label_voxels",
    "sorted_isin",
    "sub_box",
]

#: Candidates under 1/SPARSE_FRACTION of the box are labelled from their list (union-find), more by
#: cc3d on the box (union-find costs ~150 ns a voxel, cc3d ~5 ns a box voxel).
SPARSE_FRACTION = 32


def label_voxels(cand_idx: np.ndarray, shape: tuple[int, ...], connectivity: int) -> tuple[np.ndarray, int]:
    """Connected-component ids (1..n, C order of their first voxel) of the voxels ``cand_idx``
    (flat indices, ascending, not empty) of an array of ``shape``, and ``n``."""
    if cand_idx.size * SPARSE_FRACTION < int(np.prod(shape)):
        # few candidates (the usual case: lesions and noise voxels beyond the threshold): union-find
        # over the voxel list, whose cost follows their number, not the box's size
        lab, n_comp = _kernels.sparse_components(
            np.ascontiguousarray(cand_idx, dtype=np.intp), shape[0], shape[1], shape[2], int(connectivity)
        )
        return lab, int(n_comp)
    _, sub, local = sub_box(cand_idx, shape)
    cand = np.zeros(sub, dtype=bool)
    cand.ravel()[local] = True
    comp, n_comp = connected_components(cand, connectivity)
    return comp.ravel()[local].astype(np.intp), n_comp


def sorted_isin(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.isin(a, b)`` for ascending ``b``, by binary search."""
    if b.size == 0:
        return np.zeros(a.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(b, a), b.size - 1)
    return cast(np.ndarray, b[pos] == a)


def sub_box(idx: np.ndarray, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], np.ndarray]:
    """The bounding box of flat indices ``idx`` of an array of ``shape``: its offset, its shape and
    the indices' flat positions inside it."""
    coords = np.unravel_index(idx, shape)
    lo = tuple(int(c.min()) for c in coords)
    sub = tuple(int(c.max()) + 1 - o for c, o in zip(coords, lo, strict=True))
    local = np.ravel_multi_index(tuple(c - o for c, o in zip(coords, lo, strict=True)), sub)
    return lo, sub, local


def label_by_vertebra(
    by_vertebra: np.ndarray,
    local: np.ndarray | None,
    connectivity: int,
    vertebra_of: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lesion ids of ``by_vertebra`` (C-contiguous: the lesions' bounding box, each lesion voxel
    holding its vertebra id, 0 elsewhere; ``local``: the flat positions of the lesion voxels, None:
    unknown): cc3d's multi-label components, in its own (smallest) dtype, never cross a vertebra
    boundary. With ``vertebra_of``, ``by_vertebra`` holds codes (one per lesion and vertebra: touching
    lesions stay apart) and ``vertebra_of[code]`` is the vertebra. Returns the ids and the vertebra
    of each id."""
    ids, n_ids = connected_components(by_vertebra, connectivity)
    lesion_vertebra = np.zeros(n_ids + 1, dtype=np.int64)
    codes = by_vertebra.ravel() if local is None else by_vertebra.ravel()[local]
    where = ids.ravel() if local is None else ids.ravel()[local]
    lesion_vertebra[where] = codes if vertebra_of is None else vertebra_of[codes]
    return ids, lesion_vertebra


def connected_components(binary_or_labels: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    import cc3d

    out, n = cc3d.connected_components(binary_or_labels, connectivity=connectivity, return_N=True)  # type: ignore[call-overload]
    return out, int(n)
