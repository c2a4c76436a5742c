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

Pure numpy / scipy on the vertebrae's bounding box (flat C-order indices, as
:mod:`spinemri.segmentation.lesions`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy import ndimage as ndi

from ..arrays.morphology import label_codes

__all__ = ["DEEP_RING_FRACTION", "EDGE_RING_MM", "FILL_FRACTION", "component_rules"]

#: Width (mm) of the ring of vertebra voxels outside a component that the edge step compares with.
EDGE_RING_MM = 3.0

#: A component holding at least this fraction of a vertebra's interior voxels (all 26 neighbours in
#: the vertebra) has no marrow ring: it is kept without the edge test (module docstring).
FILL_FRACTION = 0.5

#: The ring is taken from the voxels deeper than ``seed_depth_mm`` (where seeds may lie) when they are
#: at least this fraction of it, else from all of it (module docstring).
DEEP_RING_FRACTION = 0.25


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
    shape = voxels.shape
    sp = np.asarray(spacing, dtype=np.float64)
    pad = np.ceil(EDGE_RING_MM / sp).astype(int) + 1
    if interior_counts is not None and in_interior is not None:
        n_interior, comp_in = np.asarray(interior_counts), np.asarray(in_interior, dtype=bool)
    else:
        if interior is None:
            interior = (label_codes(voxels.vertebrae, (1, 1, 1), depth=False) >> 2 & 1).view(bool)
        flat_v = voxels.vertebrae.ravel()
        n_interior = np.bincount(flat_v[interior.ravel()], minlength=int(flat_v.max()) + 1)
        comp_in = interior.ravel()[idx]
    comp_v = voxels.vertebra(idx).astype(np.intp)
    order = np.argsort(cid, kind="stable")
    comps, starts = np.unique(cid[order], return_index=True)
    bounds = np.append(starts, order.size)
    for c, a, b in zip(comps, bounds[:-1], bounds[1:], strict=True):
        sel = order[a:b]
        filled = np.bincount(comp_v[sel][comp_in[sel]], minlength=n_interior.size)
        if np.any((n_interior > 0) & (filled >= FILL_FRACTION * n_interior)):
            continue  # a (nearly) replaced vertebra: no marrow ring to step from
        coords = np.array(np.unravel_index(idx[sel], shape))
        lo = np.maximum(coords.min(axis=1) - pad, 0)
        hi = np.minimum(coords.max(axis=1) + pad + 1, shape)
        box = tuple(slice(int(x), int(y)) for x, y in zip(lo, hi, strict=True))
        comp = np.zeros(tuple(int(y - x) for x, y in zip(lo, hi, strict=True)), dtype=bool)
        comp[tuple(coords - lo[:, None])] = True
        plateau = float(plateau_of[c])
        outside = np.asarray(ndi.distance_transform_edt(~comp, sampling=sp))
        ring = (outside > 0) & (outside <= EDGE_RING_MM + 1e-9) & (voxels.vertebrae[box] > 0)
        if voxels.deep is not None:  # the marrow below the partial-volume shell, when there is enough
            deep_ring = ring & voxels.deep[box]
            if np.count_nonzero(deep_ring) >= DEEP_RING_FRACTION * np.count_nonzero(ring):
                ring = deep_ring
        rc = np.array(np.nonzero(ring)) + lo[:, None]
        ring_idx = np.ravel_multi_index(tuple(rc), shape)
        if ring_idx.size == 0 or plateau <= 0:  # no marrow around it (a fully replaced vertebra)
            continue
        ring_c = sign * (voxels.corrected(ring_idx) - level[voxels.vertebra(ring_idx)])
        if 1.0 - float(np.median(ring_c)) / plateau < min_edge_step - 1e-9:
            keep[sel] = False
    return keep
