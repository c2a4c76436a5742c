"""Box morphology of label volumes: erosion of every label at once, depth classes, flat-index shifts.

Pure numpy (and the compiled :func:`label_codes`). Each label is eroded by a
box of half-widths in voxels (:func:`box_half_widths`) away from the
background *and* from touching labels; the depth class of a voxel says how
far below its own label's surface it lies. The numpy functions here are the
definitions that :mod:`spinemri._kernels` computes in one pass (the tests
compare them).
"""

from __future__ import annotations

import itertools
from typing import cast

import numpy as np

from .._native import kernels as _kernels
from ..errors import InputError
from .bbox import nonzero_bbox

__all__ = [
    "box_half_widths",
    "erode_labels",
    "erode_labels_box",
    "DEPTH_MASK",
    "CORE_BIT",
    "DEEP_BIT",
    "N_DEPTH_CLASSES",
    "label_codes",
    "depth_classes",
    "shift_flat_index",
]


def box_half_widths(spacing: tuple[float, float, float], radius_mm: float) -> tuple[int, int, int]:
    """Half-widths in voxels of the erosion box: ``ceil(radius_mm / spacing_a)`` per axis.

    Rounding up keeps at least one voxel along every axis for any positive
    radius, so the outer voxel layer, where partial volume lives, is always removed.

    Parameters
    ----------
    spacing : tuple of 3 float
        Voxel size in mm along each axis.
    radius_mm : float
        Erosion radius in mm.

    Returns
    -------
    tuple of 3 int
        The half-widths; ``(0, 0, 0)`` for a radius <= 0.
    """
    if radius_mm <= 0:
        return (0, 0, 0)
    r = np.ceil(radius_mm / np.asarray(spacing, dtype=np.float64) - 1e-9).astype(int)
    return (int(r[0]), int(r[1]), int(r[2]))


def erode_labels(ids: np.ndarray, spacing: tuple[float, float, float], margin_mm: float) -> np.ndarray:
    """Boolean core of every label at once, eroded by ``margin_mm`` (see :func:`erode_labels_box`).

    Parameters
    ----------
    ids : ndarray of int, shape (I, J, K)
        Labels, 0 = background.
    spacing : tuple of 3 float
        Voxel size in mm along each axis.
    margin_mm : float
        Erosion radius in mm (:func:`box_half_widths`).

    Returns
    -------
    ndarray of bool, shape (I, J, K)
        Voxels whose whole box neighbourhood carries their own label.
    """
    return erode_labels_box(ids, box_half_widths(spacing, margin_mm))


def erode_labels_box(
    ids: np.ndarray,
    half_widths: tuple[int, int, int],
    bbox: tuple[slice, slice, slice] | None = None,
    *,
    border_is_boundary: bool = False,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Voxels of label ``v > 0`` whose whole box neighbourhood has label ``v``.

    The neighbourhood is the box of ``±half_widths[a]`` voxels along each axis
    ``a``; so each label is eroded away from the background *and* from
    touching labels, all labels at once.

    Computed on the bounding box of all labels, padded by the half-widths, one
    axis at a time: along axis ``a`` a voxel stays when the ``2·h_a``
    consecutive pairs around it all carry one label and were kept by the
    previous axes. On the flattened padded box a step along an axis is a
    constant offset, so each test is a boolean AND of two contiguous slices,
    ``log2(2·h)`` of them per axis (:func:`_window_all`).

    Parameters
    ----------
    ids : ndarray of int, shape (I, J, K)
        Labels, 0 = background.
    half_widths : tuple of 3 int
        Box half-widths in voxels (:func:`box_half_widths`).
    bbox : tuple of 3 slice, optional
        :func:`spinemri.arrays.bbox.nonzero_bbox` of the labels (of ``within``
        when given), when already known.
    border_is_boundary : bool, default False
        By default the image border is not a boundary (a vertebra cut by the
        field of view is not eroded there); True treats voxels beyond the image
        as background.
    within : ndarray of bool, optional
        A result of this function for the same ``ids``, to erode further
        instead (box erosions compose: eroding by ``(1, 1, 1)`` and then by
        ``(1, 1, 0)`` equals eroding by ``(2, 2, 1)``).

    Returns
    -------
    ndarray of bool, shape (I, J, K)
        The eroded labels (``ids > 0``, or ``within``, itself for zero half-widths).
    """
    fg = ids > 0 if within is None else within
    if not any(half_widths):
        return fg
    bbox = nonzero_bbox(fg) if bbox is None else bbox
    if bbox is None:
        return fg
    hw = tuple(int(h) for h in half_widths)
    # beyond the box lies background; beyond the image the border rule ('nearest' repeats the edge)
    repeat = [
        (
            bbox[a].start == 0 and not border_is_boundary,
            bbox[a].stop == ids.shape[a] and not border_is_boundary,
        )
        for a in range(3)
    ]
    lab = _pad_box(ids[bbox], hw, repeat)
    keep = _pad_box(fg[bbox], hw, repeat)
    L, K = lab.ravel(), keep.ravel()
    strides = (lab.shape[1] * lab.shape[2], lab.shape[2], 1)
    first = within is None
    for ax in range(3):
        h, s = hw[ax], strides[ax]
        if h == 0:
            continue
        pair = L[:-s] == L[s:]  # pair[x]: x and x + s carry one label (and are kept, below)
        pair &= K[:-s]
        if not first:  # on the first axis keep is ids > 0, which equal labels already imply
            pair &= K[s:]
        first = False
        win = _window_all(pair, 2 * h, s)  # win[x]: pairs x .. x + (2h - 1)·s all good
        # voxel x stays when the pairs from x - h·s to x + (h - 1)·s are good
        K[h * s : h * s + win.size] &= win
        K[: h * s] = False
        K[h * s + win.size :] = False
        _reset_pad(keep, hw, repeat)
    out = np.zeros(ids.shape, dtype=bool)
    out[bbox] = keep[
        hw[0] : keep.shape[0] - hw[0], hw[1] : keep.shape[1] - hw[1], hw[2] : keep.shape[2] - hw[2]
    ]
    return out


def _pad_box(a: np.ndarray, hw: tuple[int, ...], repeat: list[tuple[bool, bool]]) -> np.ndarray:
    """``a`` padded by ``hw[ax]`` on both sides of each axis: zeros, or the edge repeated where ``repeat``."""
    out = np.zeros(tuple(n + 2 * h for n, h in zip(a.shape, hw, strict=True)), dtype=a.dtype)
    out[hw[0] : hw[0] + a.shape[0], hw[1] : hw[1] + a.shape[1], hw[2] : hw[2] + a.shape[2]] = a
    _reset_pad(out, hw, repeat)
    return out


def _reset_pad(a: np.ndarray, hw: tuple[int, ...], repeat: list[tuple[bool, bool]]) -> None:
    """Set the padding layers of ``a`` (in place): the edge repeated where ``repeat``, else zero."""
    for ax, h in enumerate(hw):
        if h == 0:
            continue
        m = np.moveaxis(a, ax, 0)
        n = m.shape[0]
        m[:h] = m[h : h + 1] if repeat[ax][0] else 0
        m[n - h :] = m[n - h - 1 : n - h] if repeat[ax][1] else 0


def _window_all(a: np.ndarray, m: int, step: int = 1) -> np.ndarray:
    """``out[x] = a[x] & a[x + step] & ... & a[x + (m-1)·step]`` (length ``len(a) - (m-1)·step``).

    By doubling: ``log2(m)`` ANDs of two slices.
    """
    k = 1
    while 2 * k <= m:
        a = a[: -k * step] & a[k * step :]
        k *= 2
    if k == m:
        return a
    d = (m - k) * step
    return cast(np.ndarray, a[: a.size - d] & a[d:])


#: Bits of the code volume of :func:`label_codes`: depth class (0-3), core membership and (with
#: ``deep_half_widths``) membership of the deeper erosion.
DEPTH_MASK = 3
CORE_BIT = 4
DEEP_BIT = 8


def label_codes(
    vertebrae: np.ndarray,
    half_widths: tuple[int, int, int],
    *,
    depth: bool = True,
    deep_half_widths: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Core and depth class of every voxel of a vertebra id box, in one compiled pass.

    The numpy functions are the definitions; ``spinemri._kernels.label_classes``
    computes the same (tests compare them).

    Parameters
    ----------
    vertebrae : ndarray of int, shape (I, J, K)
        Vertebra ids >= 0 (0 = background); converted to the smallest unsigned
        C-contiguous type when it is not one.
    half_widths : tuple of 3 int
        Erosion half-widths of the core (:func:`box_half_widths`).
    depth : bool, default True
        Also compute the depth classes.
    deep_half_widths : tuple of 3 int, optional
        Half-widths of a second, deeper erosion (e.g. by ``seed_depth_mm``), in the same pass.

    Returns
    -------
    ndarray of uint8, shape (I, J, K)
        Bit 2 (``CORE_BIT``): :func:`erode_labels_box` of ``vertebrae`` by
        ``half_widths`` with ``border_is_boundary=True``; with ``depth``, bits 0-1
        (``DEPTH_MASK``): the :func:`depth_classes` of the vertebra voxels (0 elsewhere); with
        ``deep_half_widths``, bit 3 (``DEEP_BIT``): :func:`erode_labels_box` by those.

    Raises
    ------
    InputError
        When a vertebra id is negative.
    """
    lab = np.asarray(vertebrae)
    if lab.dtype not in (np.uint8, np.uint16, np.uint32, np.uint64) or not lab.flags.c_contiguous:
        if lab.size and int(lab.min()) < 0:
            raise InputError("vertebra ids must be >= 0")
        top = int(lab.max()) if lab.size else 0
        dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if top <= np.iinfo(t).max)
        lab = np.ascontiguousarray(lab, dtype=dtype)
    h = [int(x) for x in half_widths]
    d = [-1, -1, -1] if deep_half_widths is None else [int(x) for x in deep_half_widths]
    if min(d) < 0 and deep_half_widths is not None:
        raise InputError(f"deep_half_widths must be >= 0, got {tuple(deep_half_widths)}")
    return _kernels.label_classes(lab, h[0], h[1], h[2], bool(depth), d[0], d[1], d[2])


#: Number of depth classes of :func:`depth_classes`.
N_DEPTH_CLASSES = 4


_NEIGHBOUR_OFFSETS = {
    norm: [o for o in itertools.product((-1, 0, 1), repeat=3) if sum(abs(x) for x in o) == norm]
    for norm in (1, 2)
}


def depth_classes(
    vertebrae: np.ndarray,
    index: np.ndarray,
    bbox: tuple[slice, slice, slice] | None = None,
    interior: np.ndarray | None = None,
) -> np.ndarray:
    """Depth of vertebra voxels below their own vertebra's surface, in classes of voxel units.

    The depth of a voxel is the distance, in voxel units along each axis,
    from its centre to the nearest voxel that does not carry its label
    (background *or another vertebra*: depth is measured to the vertebra's own
    boundary even where two vertebrae touch). Capped at two voxels, its
    square is one of

    * 0: a face neighbour differs (squared distance 1),
    * 1: else an edge neighbour differs (2),
    * 2: else a corner neighbour differs (3),
    * 3: all 26 neighbours carry the label (>= 4: the interior).

    Voxel units, not mm: the partial-volume mixture of a voxel depends on
    where the surface cuts it relative to its own size along the surface
    normal, so a 4 mm-thick sagittal voxel whose lateral neighbour is outside
    is as much a surface voxel as a 1.25 mm in-plane one. The image border is
    a boundary: a voxel on it has unknown depth and is classed as surface.

    Parameters
    ----------
    vertebrae : ndarray of int, shape (I, J, K)
        Vertebra ids, 0 = background.
    index : ndarray of intp
        Flat (C-order) indices of the voxels to classify, all with id > 0.
    bbox : tuple of slice, optional
        Bounding box of the ids > 0 (:func:`spinemri.arrays.bbox.nonzero_bbox`), when already known.
    interior : ndarray of bool, optional
        :func:`erode_labels_box` of ``vertebrae`` with half-widths (1, 1, 1) and
        ``border_is_boundary=True``, when already known.

    Returns
    -------
    ndarray of int8, shape (len(index),)
        The class of each voxel (0-3).
    """
    shape = vertebrae.shape
    out = np.full(index.size, N_DEPTH_CLASSES - 1, dtype=np.int8)
    bbox = nonzero_bbox(vertebrae) if bbox is None else bbox
    if bbox is None or index.size == 0:
        return out
    if interior is None:
        interior = erode_labels_box(vertebrae, (1, 1, 1), bbox, border_is_boundary=True)
    surf = ~interior.ravel()[index]
    sidx = index[surf]
    if sidx.size == 0:
        return out
    # the box plus one voxel on each side (background beyond the image border)
    lo = [max(b.start - 1, 0) for b in bbox]
    hi = [min(b.stop + 1, shape[a]) for a, b in enumerate(bbox)]
    pads = [(int(bbox[a].start == 0), int(bbox[a].stop == shape[a])) for a in range(3)]
    sub = np.pad(vertebrae[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], pads)  # zeros beyond the image
    flat = shift_flat_index(sidx, shape, tuple(pads[a][0] - lo[a] for a in range(3)), sub.shape)
    sf = sub.ravel()
    own = sf[flat]
    strides = (sub.shape[1] * sub.shape[2], sub.shape[2], 1)
    cls = np.full(sidx.size, 2, dtype=np.int8)  # not interior: at least a corner neighbour differs
    for norm, target in ((2, 1), (1, 0)):
        differs = np.zeros(sidx.size, dtype=bool)
        for o in _NEIGHBOUR_OFFSETS[norm]:
            differs |= sf[flat + (o[0] * strides[0] + o[1] * strides[1] + o[2] * strides[2])] != own
        cls[differs] = target
    out[surf] = cls
    return out


def shift_flat_index(
    index: np.ndarray, shape: tuple[int, ...], offset: tuple[int, ...], target_shape: tuple[int, ...]
) -> np.ndarray:
    """Flat (C-order) indices into an array of ``shape`` → into ``target_shape``, where it sits at ``offset``.

    Equal to ``np.ravel_multi_index(np.unravel_index(index, shape) + offset, target_shape)``
    (3-D), but one integer division and one table lookup per index instead of
    six index arrays: each row (last axis) of the small array is contiguous in
    the large one, so the index moves by a per-row constant.

    Parameters
    ----------
    index : ndarray of intp
        Flat indices into the small array.
    shape : tuple of 3 int
        Shape of the small array.
    offset : tuple of 3 int
        Position of the small array's first voxel in the large one.
    target_shape : tuple of 3 int
        Shape of the large array.

    Returns
    -------
    ndarray of intp
        The same voxels' flat indices into the large array.
    """
    n0, n1, n2 = shape
    rows = np.arange(n0 * n1, dtype=np.intp)
    i, j = np.divmod(rows, n1)
    t1, t2 = target_shape[1], target_shape[2]
    row_shift = (i + offset[0]) * (t1 * t2) + (j + offset[1]) * t2 + offset[2] - rows * n2
    return cast(np.ndarray, index + row_shift[index // n2])
