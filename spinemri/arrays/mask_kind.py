"""What a vertebral mask covers: the vertebral body only, or the whole vertebra (``mask_kind``).

The study measures the marrow of the vertebral *body*; a mask that also covers the posterior
elements (pedicles, laminae, processes) measures more bone than the study did. Readers record
the kind in ``mask.meta["mask_kind"]`` (:mod:`spinemri.io.mask_formats`); the measurement
writes it to the patient table and to provenance.

Kinds (:data:`MASK_KINDS`):

``body``
    Vertebral bodies only (SPINEPS instance voxels whose subregion is the corpus; a
    VerSe-style mask whose vertebrae are all convex, see :func:`guess_mask_kind`).
``whole_vertebra``
    Body and posterior elements (SPINEPS instance masks, TotalSegmentator and TotalSpineSeg
    vertebrae, a VerSe-style mask whose vertebrae are all far from convex).
``unknown``
    Not known from the file and not settled by the shape.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import InputError

__all__ = [
    "MASK_KINDS",
    "BODY_SOLIDITY_MIN",
    "WHOLE_SOLIDITY_MAX",
    "check_mask_kind",
    "label_solidity",
    "guess_mask_kind",
]

#: The values of the ``mask_kind`` column.
MASK_KINDS = ("body", "whole_vertebra", "unknown")

#: A vertebra whose solidity (voxels / voxels inside its convex hull) is at least this is
#: body-like: a vertebral body is close to convex (an elliptic cylinder with slightly concave
#: walls: 0.77-0.90 on the real SPINEPS sample's bodies, 1.0 on the phantom).
BODY_SOLIDITY_MIN = 0.7
#: A vertebra whose solidity is at most this has posterior elements: the hull of a whole
#: vertebra spans the spinal canal and the gaps between the processes (0.33-0.54 on the real SPINEPS sample).
WHOLE_SOLIDITY_MAX = 0.6
#: Points sampled per axis are thinned to about this spacing (mm) before the hull is taken.
_SAMPLE_MM = 1.5
#: Vertebrae with fewer sampled voxels than this are not used (partial vertebrae at the edge).
_MIN_POINTS = 200
#: At most this many vertebrae are looked at (evenly spaced among the labels).
_MAX_LABELS = 8


def check_mask_kind(value: object, source: str = "mask") -> str:
    """Validate a ``mask_kind`` value.

    Parameters
    ----------
    value : object
        ``None`` (read as ``"unknown"``) or one of :data:`MASK_KINDS`.
    source : str, default "mask"
        Named in the error message.

    Returns
    -------
    str
        One of :data:`MASK_KINDS`.

    Raises
    ------
    InputError
        For any other value.
    """
    if value is None:
        return "unknown"
    if value not in MASK_KINDS:
        raise InputError(f"{source}: mask_kind {value!r} is not one of {', '.join(MASK_KINDS)}")
    return str(value)


def _thin(labels: np.ndarray, spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    step = tuple(max(1, int(_SAMPLE_MM // s)) for s in spacing)
    sub = np.asarray(labels)[:: step[0], :: step[1], :: step[2]]
    return sub, np.array(spacing) * np.array(step)


def _solidity(crop: np.ndarray, scale: np.ndarray) -> float | None:
    from scipy.spatial import ConvexHull, QhullError

    idx = np.argwhere(crop)
    if len(idx) < _MIN_POINTS or min(crop.shape) < 2:
        return None
    try:
        hull = ConvexHull(idx * scale)
    except QhullError:
        return None
    g = np.argwhere(np.ones(crop.shape, dtype=bool)) * scale
    inside = np.ones(len(g), dtype=bool)
    tol = 1e-6 * float(scale.max())
    for row in hull.equations:  # facet by facet keeps memory at O(points)
        inside &= g @ row[:3] + row[3] <= tol
    n_in = int(inside.sum())
    return float(len(idx)) / n_in if n_in else None


def label_solidity(labels: np.ndarray, label: int, spacing: tuple[float, float, float]) -> float | None:
    """Solidity of one label: its voxels / the voxels whose centres lie in its convex hull.

    Parameters
    ----------
    labels : ndarray of shape (I, J, K), integer
        The label volume.
    label : int
        The label to measure.
    spacing : tuple of 3 float
        Voxel size along (i, j, k), mm. Axes finer than 1.5 mm are thinned (every n-th voxel)
        so that the hull is taken on points about 1.5 mm apart.

    Returns
    -------
    float or None
        In (0, 1]; None when the label has too few (thinned) voxels or is flat (all its
        voxels in one plane).
    """
    sub, scale = _thin(labels, spacing)
    hit = sub == label
    if not hit.any():
        return None
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(hit))
    return _solidity(hit[box], scale)


def guess_mask_kind(
    labels: np.ndarray, spacing: tuple[float, float, float], vertebra_labels: Iterable[int]
) -> tuple[str, str]:
    """Body-only or whole vertebrae, from the shape of the vertebrae (solidity).

    Parameters
    ----------
    labels : ndarray of shape (I, J, K), integer
        The mask.
    spacing : tuple of 3 float
        Voxel size along (i, j, k), mm.
    vertebra_labels : iterable of int
        The labels that are vertebrae (others, e.g. discs, are not looked at).

    Returns
    -------
    kind : str
        ``"body"`` when every measurable vertebra has solidity ≥ :data:`BODY_SOLIDITY_MIN`,
        ``"whole_vertebra"`` when every one has solidity ≤ :data:`WHOLE_SOLIDITY_MAX`, else
        ``"unknown"`` (also with fewer than two measurable vertebrae).
    reason : str
        The solidities and the rule, for provenance.

    Notes
    -----
    Solidity = voxels of the vertebra / voxels whose centres lie inside the convex hull of its
    voxel centres (mm coordinates, thinned to about 1.5 mm). A vertebral body is nearly convex;
    the hull of a whole vertebra spans its spinal canal and the space between its processes.
    At most 8 vertebrae, evenly spaced among the labels, are looked at. Both rules must hold for
    every measurable vertebra, so a mask mixing both, or a shape in
    between, stays ``"unknown"``.
    """
    from scipy.ndimage import find_objects

    sub, scale = _thin(labels, spacing)
    wanted = sorted({int(x) for x in vertebra_labels if int(x) > 0})
    if len(wanted) > _MAX_LABELS:  # evenly spaced along the list: the cost stays bounded
        wanted = [wanted[int(i)] for i in np.linspace(0, len(wanted) - 1, _MAX_LABELS).round()]
    sol: dict[int, float] = {}
    if wanted and sub.size:
        top = max(wanted)
        if sub.dtype.kind in "ui" and sub.dtype.itemsize < 8:
            # find_objects skips labels above max_label (and <= 0) by itself: no full-size int64 copy
            boxes = find_objects(sub, max_label=top)
        else:
            boxes = find_objects(np.where(sub <= top, sub, 0).astype(np.int64), max_label=top)
        for lab in wanted:
            box = boxes[lab - 1]
            if box is None:
                continue
            s = _solidity(sub[box] == lab, scale)
            if s is not None:
                sol[lab] = s
    shown = ", ".join(f"{k}: {v:.2f}" for k, v in sol.items()) or "none"
    rule = (
        f"solidity (voxels / voxels in the convex hull) of the measurable vertebrae: {shown}; body when "
        f"all >= {BODY_SOLIDITY_MIN}, whole vertebra when all <= {WHOLE_SOLIDITY_MAX}"
    )
    if len(sol) < 2:
        return "unknown", rule + " (fewer than 2 measurable vertebrae)"
    vals = np.array(list(sol.values()))
    if np.all(vals >= BODY_SOLIDITY_MIN):
        return "body", rule
    if np.all(vals <= WHOLE_SOLIDITY_MAX):
        return "whole_vertebra", rule
    return "unknown", rule
