"""The vertebral body of a whole-vertebra mask, split off by the spinal canal.

Pure numpy; no I/O. Voxels of a vertebra anterior to the anterior wall of the canal, along the
vertebra's antero-posterior axis, are its body; the rest (pedicles, laminae, processes) is not
(the rule of ivadomed/SpineReports ``measure_seg.py``, described in ../shared/CLINICAL.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["split_body_by_canal", "spine_tangents"]

_Z = np.array([0.0, 0.0, 1.0])
_X = np.array([1.0, 0.0, 0.0])


def spine_tangents(
    centroids: Mapping[str, np.ndarray], order: list[str], max_gap: int = 2
) -> dict[str, np.ndarray | None]:
    """Unit spine tangent (pointing superior) at each level from its neighbours' centroids.

    Parameters
    ----------
    centroids : mapping of level to ndarray of shape (3,)
        Centroids (world mm).
    order : list of str
        The levels, cranial -> caudal.
    max_gap : int, default 2
        Neighbours further apart in the list than this many levels are not used.

    Returns
    -------
    dict of level to ndarray or None
        Central difference between the cranial and caudal neighbours; one-sided at the ends;
        None without a usable neighbour.
    """
    from ..levels import level_index

    out: dict[str, np.ndarray | None] = {}
    for k, lv in enumerate(order):
        idx = level_index(lv)
        up = order[k - 1] if k > 0 and idx - level_index(order[k - 1]) <= max_gap else None
        dn = order[k + 1] if k + 1 < len(order) and level_index(order[k + 1]) - idx <= max_gap else None
        a = centroids[up] if up else centroids[lv]
        b = centroids[dn] if dn else centroids[lv]
        d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
        n = float(np.linalg.norm(d))
        if (up is None and dn is None) or n == 0:
            out[lv] = None
        else:
            d = d / n
            out[lv] = d if d @ _Z >= 0 else -d
    return out


def split_body_by_canal(
    vertebra: np.ndarray,
    canal: np.ndarray,
    affine: np.ndarray,
    tangent: np.ndarray | None,
    offset: np.ndarray | None = None,
) -> tuple[np.ndarray | None, str]:
    """Body voxels of one whole vertebra: those anterior to the canal's anterior wall.

    Parameters
    ----------
    vertebra : ndarray of shape (I, J, K), bool
        One whole vertebra (body and posterior elements), in a box of the volume.
    canal : ndarray of shape (I, J, K), bool
        The spinal canal in the same box.
    affine : ndarray of shape (4, 4)
        Voxel index of the whole volume -> world RAS mm.
    tangent : ndarray of shape (3,) or None
        Spine tangent at this level (None: world superior).
    offset : ndarray of shape (3,), optional
        Voxel index of the box's first voxel in the volume (default 0).

    Returns
    -------
    body : ndarray of bool or None
        The body voxels; None when the canal does not pass this vertebra.
    reason : str
        How the wall was placed, or why there is no body.

    Notes
    -----
    Frame: ``cc`` = the tangent, ``ap`` = world anterior made perpendicular to it. The canal voxels
    used are those within the vertebra's cranio-caudal extent (its 10th-90th percentile) and within
    15 mm of the vertebra's mid-sagittal plane; the wall is their 95th percentile along ``ap``
    (robust to a few canal voxels inside the body). Voxels more anterior than the wall are body.
    """
    vi = np.argwhere(vertebra)
    ci = np.argwhere(canal)
    if len(vi) == 0:
        return None, "empty vertebra"
    if len(ci) == 0:
        return None, "no canal voxels"
    lin = affine[:3, :3]
    t = affine[:3, 3] + (lin @ np.asarray(offset, dtype=float) if offset is not None else 0.0)
    pv = vi @ lin.T + t
    pc = ci @ lin.T + t
    cc = np.asarray(tangent, dtype=float) if tangent is not None else _Z
    lr = _X - (_X @ cc) * cc
    lr /= np.linalg.norm(lr)
    ap = np.cross(cc, lr)
    c = pv.mean(axis=0)
    ucc_v = (pv - c) @ cc
    lo, hi = np.percentile(ucc_v, [10, 90])
    ucc_c = (pc - c) @ cc
    ulr_c = (pc - c) @ lr
    near = (ucc_c >= lo) & (ucc_c <= hi) & (np.abs(ulr_c - np.median((pv - c) @ lr)) <= 15.0)
    if near.sum() < 5:
        return None, "the canal does not pass this vertebra"
    wall = float(np.percentile((pc[near] - c) @ ap, 95))
    body_sel = (pv - c) @ ap > wall
    if not body_sel.any():
        return None, "no vertebra voxels anterior to the canal"
    body = np.zeros(vertebra.shape, dtype=bool)
    body[tuple(vi[body_sel].T)] = True
    return (
        body,
        f"split from the whole vertebra at the canal's anterior wall ({wall:+.1f} mm from its centroid)",
    )
