"""Edge rule for detected lesion components (SegmentParams ``min_edge_step``).

A metastasis replaces marrow: it is a compact volume whose intensity steps from the marrow level to
its plateau at its boundary. The false positives found in real marrow (docs/validation.md, "Real
marrow") are not all: the basivertebral vein is a branching tube a few mm across whose surroundings
carry its partial volume; the lateral faces of water-like Dixon images rise smoothly towards the
paravertebral tissue, with no step at the component's boundary. (The thin partial-volume layers at the
endplates and walls are seeded in the outer shell: ``seed_depth_mm``.) Measured per component after
the half-contrast boundary, over the whole component before it is split between vertebrae:

* *edge step*: ``1 - median(ring) / plateau`` in contrast units ``s·(I - bg(d) - M_v)`` (the
  depth-corrected intensity above the vertebra's marrow level, ``s`` = +1 bright, -1 dark), with
  ``plateau`` the component's plateau (the value the half-contrast boundary uses) and ``ring`` the
  vertebra voxels within ``EDGE_RING_MM`` outside the component: about 1 for a lesion with a sharp
  edge, lower when the intensity falls off gradually (a ramp) or the component is thin enough for
  its surroundings to hold its partial volume.

The ring is taken from its voxels deeper than ``seed_depth_mm`` (``deep``, the region where seeds may
lie) when they are at least ``DEEP_RING_FRACTION`` of it: the outer shell mixes marrow with cortex,
discs and outside tissue (and on water-like Dixon images holds the lateral ramp), so it is not the
marrow a lesion near the surface stands out from (a planted 4 mm lesion at the lateral edge of a Dixon
image: 0.74 with the shell, 0.83 without; the ramp false positives measure 0.75-0.78).

The ring stands for the marrow the lesion replaced. It does not when the lesion holds at least
``FILL_FRACTION`` of a vertebra's *interior* (its voxels whose 26 neighbours all belong to it, i.e.
not partial volume with cortex, disc or outside tissue): the vertebra is (nearly) fully or diffusely
replaced, what lies within 3 mm outside the lesion is the vertebra's surface shell and the thin
remainder between lesion and cortex, both mixtures of the lesion with cortex and outside tissue (their
partial volume), and there is no marrow left to step from. Such a lesion is kept without the edge
test. The false positives the rule removes are small parts of their vertebra (veins and lateral shells:
at most 9 % of its voxels, docs/validation.md, "Real marrow").

*Strong step.* The relative step is below 1 also when a lesion sits on brighter surroundings: a
lesion planted at the lateral edge of a Dixon water image, on the lateral ramp, measured 0.76 (its
ring is the ramp, a quarter of its contrast). Its edge still rises by 11 robust SDs of the marrow;
the real false positives' edges rise by 2.0-4.6 (the veins and the ramp are dim structures: plateaus
of 3.4-6.2 SDs). A component whose step ``plateau - median(ring)`` is at least ``STRONG_STEP_SD``
robust SDs of its (main) vertebra's marrow passes the test: 7, the geometric middle of 4.6 and 11
(a factor of 1.5 from each).

*Distinct cores* (:func:`split_cores`, before the half-contrast boundary). A lesion joined by the
candidate threshold to a larger, dimmer structure (the Dixon lateral ramp: 2800 voxels at a quarter of
a 4 mm lesion's contrast) gets the structure's plateau: the plateau is read below the component's 90 %
quantile, and a lesion under a tenth of the component is not there. The half-contrast cut then keeps
the structure, and the edge test drops the lesion with it. The component's *core level* is the median
of its brightest ``min_lesion_mm3`` (the smallest lesion reported); when the plateau is below half of
it, the bulk of the component is not the core's tissue, and the component is cut at half the core
level (the core's own half-contrast boundary): each part then gets its own plateau, boundary and edge
test. In a homogeneous lesion the core level is its plateau plus the noise of its brightest voxels,
and the plateau stays above half of it unless the plateau is under about 2.5 noise SDs (no component
reaching the edge test in the phantom snapshots or the six real images is split without a lesion).

*Necks* (:func:`split_necks`, with the edge rule, after the half-contrast boundary). A lesion can
touch a thin structure of the real image that is above its own half-contrast cut: the basivertebral
vein (a branching tube a few mm across; chu2015_10 L5: vein 23.5, lesion 28-33, noise SD 4.4) or a
one-voxel sheet in a vertebra's shell, at 0.64-0.66 of the lesion's contrast: by intensity those
voxels are more than half lesion, and the lesion is measured with them, or dropped with them by the
edge test. They differ in shape: a lesion is compact, they are thin. The *cores* of a component are
the parts of it in which the smallest lesion reported (a ball of ``min_lesion_mm3``, radius in mm,
on the voxel grid: anisotropic voxels give an anisotropic structuring element) fits: its
morphological opening by that ball. Each core with its 26-neighbours in the component (its one-voxel
partial-volume boundary) is one part, the rest (thinner than the ball) another; each part gets its
own plateau and edge test and must hold a seed of its own (as every component must, step 5 of
:mod:`spinemri.segmentation.lesions`); the parts that pass stay one lesion. So the split only ever
removes a part that would not be a lesion on its own. It runs only on *elongated* components (largest
extent at least ``ELONGATION`` = 1.5 times the diameter of the sphere of the component's volume: a
sphere measures 1, the three joined lesions 2.1-2.8) whose rest is at least the ball's size: compact
lesions, and the common path, are not opened at all.

Numpy / scipy on the vertebrae's bounding box, the rings in one compiled pass
(``_kernels.edge_rings``; flat C-order indices, as
:mod:`spinemri.segmentation.lesions`).
"""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np
from scipy import ndimage as ndi

from .._native import kernels as _kernels
from ..arrays.grouped import grouped_medians, grouped_sort
from ..arrays.morphology import label_codes

__all__ = [
    "DEEP_RING_FRACTION",
    "EDGE_RING_MM",
    "FILL_FRACTION",
    "PLATEAU_QUANTILE",
    "STRONG_STEP_SD",
    "ELONGATION",
    "component_rules",
    "ring_offsets",
    "ring_rows",
    "split_cores",
    "top_and_plateau",
    "split_necks",
]

#: Quantile of a lesion's voxel intensities that bounds its contrast range; the plateau
#: (fully replaced) intensity is the median of its voxels in the upper quarter of that range.
PLATEAU_QUANTILE = 0.9

#: Width (mm) of the ring of vertebra voxels outside a component that the edge step compares with.
EDGE_RING_MM = 3.0

#: A component holding at least this fraction of a vertebra's interior voxels (all 26 neighbours in
#: the vertebra) has no marrow ring: it is kept without the edge test (module docstring).
FILL_FRACTION = 0.5

#: The ring is taken from the voxels deeper than ``seed_depth_mm`` (where seeds may lie) when they are
#: at least this fraction of it, else from all of it (module docstring).
DEEP_RING_FRACTION = 0.25

#: A component whose edge steps by at least this many robust SDs of its vertebra's marrow passes the
#: edge test whatever its relative step (module docstring).
STRONG_STEP_SD = 7.0

#: A component whose largest extent (mm) is at least this many times the diameter of the sphere of
#: its volume is elongated: only such components are split at their necks (:func:`split_necks`).
ELONGATION = 1.5


class _Voxels(Protocol):
    vertebrae: np.ndarray
    shape: tuple[int, ...]
    deep: np.ndarray | None

    def corrected(self, idx: np.ndarray) -> np.ndarray: ...

    def vertebra(self, idx: np.ndarray) -> np.ndarray: ...


def component_rules(
    idx: np.ndarray,
    cid: np.ndarray,
    voxels: _Voxels,
    spacing: tuple[float, float, float],
    level: np.ndarray,
    sign: float,
    plateau_of: np.ndarray,
    min_edge_step: float,
    interior: np.ndarray | None = None,
    sd: np.ndarray | None = None,
    *,
    interior_counts: np.ndarray | None = None,
    in_interior: np.ndarray | None = None,
) -> np.ndarray:
    """Which voxels of ``idx`` (flat box indices, component ids ``cid``) belong to components whose
    edge step is at least ``min_edge_step`` (module docstring; 0 = off); ``plateau_of[c]`` is
    component ``c``'s plateau contrast (``s·(plateau - M)``). Components that fill at least
    ``FILL_FRACTION`` of a vertebra's ``interior`` are kept without the test.

    Parameters
    ----------
    idx, cid : ndarray of intp
        Flat C-order indices in the box of the lesion voxels and their component ids.
    voxels : object
        The box's vertebra ids (``vertebrae``, ``shape``) and depth-corrected intensities
        (``corrected(idx)``, ``vertebra(idx)``).
    spacing : tuple of 3 float
        Voxel size (mm) along the box's axes.
    level : ndarray of float64, shape (n + 1,)
        Marrow level per vertebra id.
    sign : float
        +1 for bright lesions, -1 for dark.
    plateau_of : ndarray of float64
        Plateau contrast per component id.
    min_edge_step : float
        The minimum edge step (0 = off).
    interior : ndarray of bool, optional
        The box's vertebra voxels whose 26 neighbours all carry their vertebra id (the image border
        is a boundary); None: computed here (unless both ``interior_counts`` and ``in_interior`` are
        given).
    sd : ndarray of float64, shape (n + 1,), optional
        Robust SD (1.4826·MAD) per vertebra id: a component whose edge steps by at least
        ``STRONG_STEP_SD`` of them (``plateau - median(ring)``, in its main vertebra) passes whatever
        its relative step. None: no such exemption.
    interior_counts : ndarray of int, shape (n + 1,), optional
        The number of ``interior`` voxels of each vertebra id of the box, when already known (e.g.
        from the segmentation's histogram per depth class); with ``in_interior``, ``interior`` is
        not read.
    in_interior : ndarray of bool, shape (idx.size,), optional
        Whether each voxel of ``idx`` is an ``interior`` voxel.

    Returns
    -------
    ndarray of bool, shape (idx.size,)
        True for the voxels of the components kept.
    """
    keep = np.ones(idx.size, dtype=bool)
    if idx.size == 0 or min_edge_step <= 0:
        return keep
    if interior_counts is not None and in_interior is not None:
        n_interior, comp_in = np.asarray(interior_counts), np.asarray(in_interior, dtype=bool)
    else:
        if interior is None:
            interior = (label_codes(voxels.vertebrae, (1, 1, 1), depth=False) >> 2 & 1).view(bool)
        flat_v = voxels.vertebrae.ravel()
        n_interior = np.bincount(flat_v[interior.ravel()], minlength=int(flat_v.max()) + 1)
        comp_in = interior.ravel()[idx]
    n_v = n_interior.size
    comp_v = voxels.vertebra(idx).astype(np.intp)
    order = np.argsort(cid, kind="stable")
    comps, starts = np.unique(cid[order], return_index=True)
    bounds = np.append(starts, order.size)
    rank = np.repeat(np.arange(comps.size), np.diff(bounds))  # the component of each voxel of ``order``
    # per component and vertebra: its voxels and its interior voxels
    cell = rank * n_v + comp_v[order]
    voxels_in = np.bincount(cell, minlength=comps.size * n_v).reshape(comps.size, n_v)
    filled = np.bincount(cell[comp_in[order]], minlength=comps.size * n_v).reshape(comps.size, n_v)
    # a (nearly) replaced vertebra: no marrow ring to step from, kept without the test
    replaced = np.any((n_interior > 0) & (filled >= FILL_FRACTION * n_interior), axis=1)
    plateau = np.asarray(plateau_of, dtype=np.float64)[comps]
    tested = np.flatnonzero(~replaced & (plateau > 0))  # (no positive plateau: nothing to step from)
    if tested.size == 0:
        return keep
    # the rings (vertebra voxels within EDGE_RING_MM outside each component) in one compiled pass
    t_idx = np.concatenate([idx[order[bounds[g] : bounds[g + 1]]] for g in tested])
    t_bounds = np.append(0, np.cumsum(np.diff(bounds)[tested]))
    deep = voxels.deep  # (a bool volume, or a code whose deep_bits mark the deep voxels)
    ring, ring_deep, rb = _kernels.edge_rings(
        voxels.vertebrae,
        np.zeros((0, 0, 0), np.uint8) if deep is None else deep.view(np.uint8),
        np.ascontiguousarray(t_idx, dtype=np.intp),
        t_bounds.astype(np.intp),
        ring_rows(tuple(float(x) for x in spacing)),
        int(getattr(voxels, "deep_bits", 0xFF)),
    )
    n_ring = np.diff(rb)
    ring_of = np.repeat(np.arange(tested.size), n_ring)
    if deep is not None:  # the marrow below the partial-volume shell, when there is enough
        n_deep = np.bincount(ring_of, weights=ring_deep, minlength=tested.size)
        use_deep = n_deep >= DEEP_RING_FRACTION * n_ring
        sel = ~use_deep[ring_of] | (ring_deep != 0)
        ring, ring_of = ring[sel], ring_of[sel]
    has_ring = np.bincount(ring_of, minlength=tested.size) > 0  # none: a fully replaced vertebra
    ring_c = sign * (voxels.corrected(ring) - level[voxels.vertebra(ring)])
    step = plateau[tested] - grouped_medians(ring_c, ring_of, tested.size)
    with np.errstate(invalid="ignore"):
        fails = has_ring & ~(step / plateau[tested] >= min_edge_step - 1e-9)
        if sd is not None:  # a step far beyond the marrow's noise: a lesion on brighter surroundings
            main = voxels_in[tested].argmax(axis=1)  # the vertebra holding most of it (lowest on ties)
            sd_main = np.asarray(sd, dtype=np.float64)[main]
            fails &= ~((sd_main > 0) & (step >= STRONG_STEP_SD * sd_main - 1e-9))
    dropped = np.zeros(comps.size, dtype=bool)
    dropped[tested[fails]] = True
    keep[order[dropped[rank]]] = False
    return keep


@functools.lru_cache(maxsize=64)
def ring_offsets(spacing: tuple[float, float, float]) -> np.ndarray:
    """The grid offsets (int, shape (M, 3)) within ``EDGE_RING_MM`` of a voxel, itself excluded, on
    the voxel grid of ``spacing``: the Euclidean distance computed as
    :func:`scipy.ndimage.distance_transform_edt` computes it (per-axis offset times spacing, squared,
    summed over the axes in order, square root), so that a ring by these offsets is the ring
    ``0 < distance <= EDGE_RING_MM`` of the distance transform.

    Parameters
    ----------
    spacing : tuple of 3 float
        Voxel size (mm) along the box's axes.

    Returns
    -------
    ndarray of intp, shape (M, 3)
        Read-only (cached per spacing).
    """
    sp = np.asarray(spacing, dtype=np.float64)
    half = np.ceil(EDGE_RING_MM / sp).astype(int)
    grid = np.stack(np.meshgrid(*(np.arange(-h, h + 1) for h in half), indexing="ij")).reshape(3, -1)
    d = grid.astype(np.float64) * sp[:, None]
    dist = np.sqrt(np.add.reduce(d * d, axis=0))
    ok = (dist > 0) & (dist <= EDGE_RING_MM + 1e-9)
    out = np.ascontiguousarray(grid[:, ok].T, dtype=np.intp)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=64)
def ring_rows(spacing: tuple[float, float, float]) -> np.ndarray:
    """:func:`ring_offsets` as rows along the last axis: ``(d0, d1, w)`` for the offsets
    ``(d0, d1, -w..w)`` (with the first two fixed, a ball's offsets are an interval of the third,
    symmetric about 0: the distance grows with its absolute value), as ``_kernels.edge_rings``
    reads them. The row ``(0, 0)`` holds the voxel itself too (a component's own voxels are
    never part of its ring).

    Parameters
    ----------
    spacing : tuple of 3 float
        Voxel size (mm) along the box's axes.

    Returns
    -------
    ndarray of intp, shape (R, 3)
        Read-only (cached per spacing).
    """
    off = ring_offsets(spacing)
    rows: dict[tuple[int, int], int] = {(0, 0): 0}
    for d0, d1, d2 in off.tolist():
        rows[(d0, d1)] = max(rows.get((d0, d1), 0), abs(d2))
    out = np.array([(d0, d1, w) for (d0, d1), w in sorted(rows.items())], dtype=np.intp).reshape(-1, 3)
    out.flags.writeable = False
    return out


def top_and_plateau(
    contrast: np.ndarray, cid: np.ndarray, n_c: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each component's ``PLATEAU_QUANTILE`` quantile of its contrast (``top``) and its plateau (the
    median of its contrasts >= 0.75·top; ``top`` where there are none), from one sort.

    The same values as ``grouped_quantile(contrast, cid, n_c, PLATEAU_QUANTILE)`` and
    ``grouped_medians(contrast[upper], cid[upper], n_c)`` with ``upper = contrast >= 0.75 *
    top[cid]``: within a component sorted ascending, ``upper`` is a suffix, whose median is the mean
    of its two middle values.

    Parameters
    ----------
    contrast : ndarray of float64, shape (N,)
        Contrast of each voxel (``s·(I - bg(d) - M_v)``).
    cid : ndarray of intp, shape (N,)
        Component id of each voxel, ``0 <= cid < n_c``.
    n_c : int
        Number of component ids.

    Returns
    -------
    sorted_contrast, starts, counts : ndarray
        :func:`~spinemri.arrays.grouped.grouped_sort` of the contrasts by component.
    top, plateau : ndarray of float64, shape (n_c,)
        NaN for an empty component id.
    """
    s, starts, counts = grouped_sort(np.asarray(contrast, dtype=np.float64), cid, n_c)
    top = np.full(n_c, np.nan)
    has = counts > 0
    top[has] = s[starts[has] + np.floor(PLATEAU_QUANTILE * (counts[has] - 1) + 1e-9).astype(np.int64)]
    group = np.repeat(np.arange(n_c), counts)
    n_up = np.bincount(group[s >= 0.75 * top[group]], minlength=n_c)
    first = starts + counts - n_up
    plateau = top.copy()
    up = n_up > 0
    plateau[up] = (s[first[up] + (n_up[up] - 1) // 2] + s[first[up] + n_up[up] // 2]) / 2.0
    return s, starts, counts, top, plateau


def split_cores(contrast: np.ndarray, cid: np.ndarray, n_core: int) -> np.ndarray:
    """Component ids with each component that holds a distinct bright core cut in two at the core's
    half contrast (module docstring).

    A component's *core level* is the median of its ``n_core`` highest contrasts (the smallest lesion
    reported, ``min_lesion_mm3``, in voxels), its *plateau* the value the half-contrast boundary uses
    (the median of its upper quarter below its ``PLATEAU_QUANTILE`` quantile). When the plateau is
    below half the core level, most of the component's bright part is not the core's tissue: its
    voxels beyond half the core level keep the component's id, the others take the id
    ``cid + n_c`` (``n_c = cid.max() + 1``), and each part then gets its own boundary and edge test.

    Parameters
    ----------
    contrast : ndarray of float64, shape (N,)
        Depth-corrected contrast above the vertebra's marrow level, ``s·(I - bg(d) - M_v)``.
    cid : ndarray of intp, shape (N,)
        Component id of each voxel (``0 <= cid``).
    n_core : int
        Number of voxels whose median is the core level (>= 1).

    Returns
    -------
    ndarray of intp, shape (N,)
        The new component ids (``cid`` itself where nothing is split).
    """
    if cid.size == 0:
        return cid
    n_c = int(cid.max()) + 1
    s, starts, counts, top, plateau = top_and_plateau(contrast, cid, n_c)
    k = np.minimum(counts, n_core)
    lo = starts + counts - k
    has = counts > 0
    core = np.full(n_c, np.nan)
    a, b = lo[has] + (k[has] - 1) // 2, lo[has] + k[has] // 2
    core[has] = (s[a].astype(np.float64) + s[b]) / 2.0
    split = has & (core > 0) & (plateau < core / 2.0)
    if not split.any():
        return cid
    low = split[cid] & (contrast <= core[cid] / 2.0)
    return np.where(low, cid + n_c, cid)


def split_necks(
    idx: np.ndarray,
    cid: np.ndarray,
    shape: tuple[int, ...],
    spacing: tuple[float, float, float],
    radius_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Part ids of the elongated components cut at their necks (module docstring, *necks*).

    A component whose largest extent is at least ``ELONGATION`` times the diameter of the sphere of
    its volume is opened by a ball of ``radius_mm`` (in mm, on the voxel grid of ``spacing``): the
    parts in which that ball fits are its *cores*; each core with its 26-neighbours in the component
    (its one-voxel partial-volume boundary; a voxel next to two cores joins the first) is one part,
    the rest of the component (thinner than the ball: tubes, sheets) another. A component is cut
    only when its rest is at least as large as the ball and it has a core.

    Parameters
    ----------
    idx, cid : ndarray of intp
        Flat C-order indices (ascending) in an array of ``shape`` and their component ids (>= 0).
    shape : tuple of 3 int
        The array's shape.
    spacing : tuple of 3 float
        Voxel size (mm) along its axes.
    radius_mm : float
        The ball's radius (mm); <= 0: nothing is cut.

    Returns
    -------
    part, parent : ndarray of intp
        A part id per voxel (``cid`` itself where nothing is cut) and the component id of each part
        id (``parent[cid] == cid``).
    """
    n_c = int(cid.max()) + 1 if cid.size else 0
    parent = np.arange(n_c, dtype=np.intp)
    if cid.size == 0 or radius_mm <= 0:
        return cid, parent
    sp = np.asarray(spacing, dtype=np.float64)
    order = np.argsort(cid, kind="stable")
    comps, starts = np.unique(cid[order], return_index=True)
    coords = np.unravel_index(idx[order], shape)  # in the order of ``order``: per component, contiguous
    lo = np.array([np.minimum.reduceat(x, starts) for x in coords])
    hi = np.array([np.maximum.reduceat(x, starts) for x in coords])
    counts = np.diff(np.append(starts, order.size))
    extent = ((hi - lo + 1) * sp[:, None]).max(axis=0)
    diameter = (6.0 * counts * float(np.prod(sp)) / np.pi) ** (1.0 / 3.0)
    long = np.flatnonzero(extent >= ELONGATION * diameter - 1e-9)
    if long.size == 0:
        return cid, parent
    half = np.floor(radius_mm / sp + 1e-9).astype(int)
    grid = np.ogrid[tuple(slice(-int(h), int(h) + 1) for h in half)]
    ball = sum((g * s) ** 2 for g, s in zip(grid, sp, strict=True)) <= radius_mm**2 + 1e-9
    ball_voxels = int(np.count_nonzero(ball))
    part = cid.copy()
    parents = [parent]
    next_id = n_c
    bounds = np.append(starts, order.size)
    for j in long:
        a, b = bounds[j], bounds[j + 1]
        if b - a < 2 * ball_voxels:
            continue
        sel = order[a:b]
        c = np.array([x[a:b] for x in coords]) - lo[:, j, None] + half[:, None] + 1
        comp = np.zeros(tuple(int(x) for x in hi[:, j] - lo[:, j] + 2 * half + 3), dtype=bool)
        comp[tuple(c)] = True
        opened = ndi.binary_opening(comp, structure=ball)
        if not opened.any():
            continue
        cores, n_cores = ndi.label(opened, structure=np.ones((3, 3, 3), dtype=bool))
        # each core and its one-voxel boundary in the component (the lowest core next to a voxel)
        big = n_cores + 1
        lowest = np.asarray(ndi.grey_erosion(np.where(cores > 0, cores, big), size=(3, 3, 3)))
        near = np.where(cores > 0, cores, np.where(comp & (lowest < big), lowest, 0))
        of = near[tuple(c)]
        if np.count_nonzero(of == 0) < ball_voxels:
            continue  # no thin rest of the ball's size: nothing to cut
        ids = np.concatenate([[comps[j]], next_id + np.arange(n_cores)])
        part[sel] = ids[of]
        parents.append(np.full(n_cores, comps[j], dtype=np.intp))
        next_id += n_cores
    return part, np.concatenate(parents)
