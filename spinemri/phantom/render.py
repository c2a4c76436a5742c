"""Supersampled rendering of the spine phantom on an image grid (numpy only).

Shapes are evaluated on a sub-sample grid of ``f`` points per voxel axis
(offsets ``(m + 0.5) / f - 0.5`` voxel, m = 0..f-1) inside each shape's
bounding box only. Local shape coordinates are affine in the voxel index, so
they are built by broadcasting three 1-D arrays (no loop over voxels); per
voxel counts come from a reshape-and-sum. See docs/phantom.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

__all__ = [
    "Lesion",
    "SubGrid",
    "bbox_of",
    "subgrid",
    "local_coords",
    "in_cylinder",
    "in_lesion",
    "voxel_counts",
]


@dataclass(frozen=True)
class Lesion:
    """A planned lesion in world mm.

    ``kind`` is ``focal`` (ellipsoid with half-axes ``radii`` along the host
    body's frame), ``irregular`` (star-shaped blob: radius ``radii[0]``
    modulated by ``blob_amp`` times a smooth random function of direction) or
    ``diffuse`` (an elliptic cylinder with half-axes ``radii`` (LR, AP, SI):
    the host's marrow). ``strength`` in (0, 1] is the fraction of full marrow
    replacement (intensity = marrow + strength * (lesion - marrow)).
    """

    lesion_id: int
    level: str
    kind: str
    centre: np.ndarray
    frame: np.ndarray
    radii: np.ndarray
    strength: float
    blob_dirs: np.ndarray | None = None
    blob_freq: np.ndarray | None = None
    blob_phase: np.ndarray | None = None
    blob_weight: np.ndarray | None = None
    blob_amp: float = 0.0

    @property
    def max_radius(self) -> float:
        """Largest distance from the centre to the surface (mm)."""
        r = float(np.max(self.radii))
        if self.kind == "irregular":
            r *= 1.0 + self.blob_amp
        return r


@dataclass(frozen=True)
class SubGrid:
    """Sub-sample index coordinates of a voxel box ``lo:hi`` (per axis), ``f`` samples per voxel."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]
    f: int
    axes: tuple[np.ndarray, np.ndarray, np.ndarray]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.lo, self.hi, strict=False))  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in zip(self.lo, self.hi, strict=False))  # type: ignore[return-value]


def bbox_of(
    points_world: np.ndarray, affine: np.ndarray, shape: Sequence[int], pad: int = 1
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Voxel box (lo, hi) covering world points (N, 3), clipped to the grid; None when empty.

    Parameters
    ----------
    points_world : ndarray of shape (N, 3)
        World mm.
    affine : ndarray
        4 x 4 voxel -> world affine.
    shape : sequence of 3 ints
        Grid shape.
    pad : int, default 1
        Voxels added on each side.

    Returns
    -------
    (lo, hi) or None
        Voxel index bounds (``hi`` exclusive), or None when the box misses the grid.
    """
    inv = np.linalg.inv(affine)
    ijk = points_world @ inv[:3, :3].T + inv[:3, 3]
    lo = np.floor(ijk.min(axis=0) + 0.5).astype(int) - pad
    hi = np.floor(ijk.max(axis=0) + 0.5).astype(int) + pad + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, np.asarray(shape))
    if np.any(hi <= lo):
        return None
    return tuple(int(v) for v in lo), tuple(int(v) for v in hi)


def subgrid(lo: Sequence[int], hi: Sequence[int], f: int) -> SubGrid:
    """Sub-sample voxel-index coordinates along each axis of the box.

    Parameters
    ----------
    lo, hi : sequence of 3 ints
        Voxel box (``hi`` exclusive).
    f : int
        Sub-samples per voxel axis.

    Returns
    -------
    SubGrid
    """
    off = (np.arange(f) + 0.5) / f - 0.5
    axes = tuple(
        (np.arange(a, b, dtype=np.float64)[:, None] + off[None, :]).ravel()
        for a, b in zip(lo, hi, strict=False)
    )
    return SubGrid(tuple(int(v) for v in lo), tuple(int(v) for v in hi), f, axes)  # type: ignore[arg-type]


def local_coords(
    grid: SubGrid, affine: np.ndarray, centre: np.ndarray, frame: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates (mm) in a local frame of every sub-sample, by broadcasting (float32).

    ``u = frame.T @ (affine @ ijk - centre)``.

    Parameters
    ----------
    grid : SubGrid
        The sub-samples.
    affine : ndarray
        4 x 4 voxel -> world affine.
    centre : ndarray of shape (3,)
        Origin of the local frame (world mm).
    frame : ndarray of shape (3, 3)
        Columns: the local unit axes in world coordinates.

    Returns
    -------
    tuple of 3 ndarrays
        The local coordinates, each broadcast to the sub-grid's shape.
    """
    m = frame.T @ affine[:3, :3]
    t = frame.T @ (affine[:3, 3] - centre)
    ai, aj, ak = grid.axes
    out = []
    for r in range(3):
        u = (m[r, 0] * ai).astype(np.float32)[:, None, None] + (m[r, 1] * aj).astype(np.float32)[
            None, :, None
        ]
        u = u + ((m[r, 2] * ak) + t[r]).astype(np.float32)[None, None, :]
        out.append(u)
    return out[0], out[1], out[2]


def in_cylinder(u: Sequence[np.ndarray], a: float, b: float, h: float) -> np.ndarray:
    """Inside an elliptic cylinder with half-axes a (u0), b (u1) and half-height h (u2).

    Parameters
    ----------
    u : sequence of 3 ndarrays
        Local coordinates (:func:`local_coords`).
    a, b, h : float
        Half-axes and half-height (mm).

    Returns
    -------
    ndarray of bool
    """
    return cast(np.ndarray, ((u[0] / a) ** 2 + (u[1] / b) ** 2 <= 1.0) & (np.abs(u[2]) <= h))


def in_lesion(lesion: Lesion, grid: SubGrid, affine: np.ndarray) -> np.ndarray:
    """Boolean sub-sample membership of a lesion shape (not yet clipped to the vertebra).

    Parameters
    ----------
    lesion : Lesion
        A focal, irregular or diffuse lesion.
    grid : SubGrid
        The sub-samples.
    affine : ndarray
        4 x 4 voxel -> world affine.

    Returns
    -------
    ndarray of bool
        The sub-grid's shape.
    """
    d = local_coords(grid, affine, lesion.centre, lesion.frame)
    r = lesion.radii
    if lesion.kind == "focal":
        return cast(np.ndarray, (d[0] / r[0]) ** 2 + (d[1] / r[1]) ** 2 + (d[2] / r[2]) ** 2 <= 1.0)
    if lesion.kind == "diffuse":
        return in_cylinder(d, float(r[0]), float(r[1]), float(r[2]))
    # irregular: rho <= r0 * (1 + amp * h(direction)), |h| <= 1 (star-shaped, hence connected)
    rho = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
    inv = 1.0 / np.maximum(rho, 1e-6)
    assert lesion.blob_dirs is not None and lesion.blob_weight is not None
    assert lesion.blob_freq is not None and lesion.blob_phase is not None
    hsum = np.zeros_like(rho)
    for v, fr, ph, w in zip(
        lesion.blob_dirs, lesion.blob_freq, lesion.blob_phase, lesion.blob_weight, strict=False
    ):
        proj = (d[0] * v[0] + d[1] * v[1] + d[2] * v[2]) * inv
        hsum += np.float32(w) * np.sin(np.float32(fr * np.pi) * proj + np.float32(ph))
    hsum /= np.float32(np.sum(np.abs(lesion.blob_weight)))
    return cast(np.ndarray, rho <= np.float32(r[0]) * (1.0 + np.float32(lesion.blob_amp) * hsum))


def voxel_counts(mask: np.ndarray, grid: SubGrid) -> np.ndarray:
    """Number of True sub-samples per voxel (int16 array of the box's voxel shape).

    Sums the ``f`` sub-samples of one axis at a time with strided slices, which
    is about ten times faster than ``reshape(...).sum(axis=(1, 3, 5))``.

    Parameters
    ----------
    mask : ndarray of bool
        Sub-sample membership, the sub-grid's shape.
    grid : SubGrid
        The sub-samples.

    Returns
    -------
    ndarray of int16
    """
    ni, nj, nk = grid.shape
    f = grid.f
    x = mask.view(np.uint8).reshape(ni, f, nj, f, nk, f)
    r = x[..., 0].copy()
    for m in range(1, f):
        r += x[..., m]
    r2 = r[:, :, :, 0].copy()  # at most f * f <= 49: still fits uint8
    for m in range(1, f):
        r2 += r[:, :, :, m]
    out = r2[:, 0].astype(np.int16)
    for m in range(1, f):
        out += r2[:, m]
    return cast(np.ndarray, out)
