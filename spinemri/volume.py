"""The :class:`Volume` data model and pure geometry helpers.

A ``Volume`` is a 3-D numpy array indexed by voxel index (i, j, k) plus a 4x4
affine mapping voxel index to world (x, y, z) RAS+ millimetres, exactly as in
nibabel, plus a read-only metadata mapping. Nothing here touches files;
conversions to and from nibabel and SimpleITK images live in
:mod:`spinemri.io.convert`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import GeometryError

__all__ = [
    "Volume",
    "check_affine",
    "voxel_spacing",
    "axcodes",
    "lr_axis",
    "grid_deltas",
    "same_grid",
]

#: Default grid tolerances (DESIGN §2): translation in mm, direction cosines unitless.
TRANSLATION_ATOL_MM = 1e-3
DIRECTION_ATOL = 1e-4


def check_affine(affine: npt.ArrayLike, *, what: str = "affine") -> np.ndarray:
    """Return ``affine`` as a float64 (4, 4) array or raise :class:`GeometryError`.

    The affine must be finite, have last row ``[0, 0, 0, 1]`` and an invertible
    3x3 part (no zero voxel size, no collinear axes).
    """
    a = np.array(affine, dtype=np.float64, copy=True)
    if a.shape != (4, 4):
        raise GeometryError(f"{what} must be a 4x4 matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise GeometryError(f"{what} contains NaN or infinite values:\n{a}")
    if not np.allclose(a[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9):
        raise GeometryError(f"{what} last row must be [0, 0, 0, 1], got {a[3].tolist()}")
    det = np.linalg.det(a[:3, :3])
    if not np.isfinite(det) or abs(det) < 1e-12:
        raise GeometryError(
            f"{what} is singular (determinant {det:.3g}): a voxel size is zero or two axes coincide"
        )
    a[3] = [0.0, 0.0, 0.0, 1.0]
    return a


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along array axes i, j, k (column norms of the 3x3 part)."""
    s = np.sqrt(np.sum(np.asarray(affine, dtype=np.float64)[:3, :3] ** 2, axis=0))
    return (float(s[0]), float(s[1]), float(s[2]))


def axcodes(affine: np.ndarray) -> tuple[str, str, str]:
    """Closest anatomical direction of each array axis, e.g. ``('P', 'S', 'R')``.

    Each letter names the direction in which the voxel index *increases*
    (nibabel's ``aff2axcodes`` convention).
    """
    from nibabel.orientations import aff2axcodes

    codes = aff2axcodes(affine)
    return (str(codes[0]), str(codes[1]), str(codes[2]))


def lr_axis(affine: np.ndarray) -> int:
    """Index of the array axis closest to patient left-right.

    Taking a slice at fixed index along this axis gives a sagittal slice.
    """
    directions = np.asarray(affine, dtype=np.float64)[:3, :3] / np.array(voxel_spacing(affine))
    return int(np.argmax(np.abs(directions[0])))


def grid_deltas(
    shape_a: tuple[int, ...],
    affine_a: np.ndarray,
    shape_b: tuple[int, ...],
    affine_b: np.ndarray,
) -> dict[str, Any]:
    """Differences between two voxel grids, for checks and error messages.

    Returns a dict with ``shape_equal`` (bool), ``origin_mm`` (max abs
    difference of the world position of voxel (0, 0, 0)), ``spacing_mm`` (per
    axis abs difference), ``direction`` (max abs difference of direction
    cosines) and ``corner_mm`` (max world distance between the far corners,
    which grows with any rotation or spacing error across the field of view).
    """
    a = np.asarray(affine_a, dtype=np.float64)
    b = np.asarray(affine_b, dtype=np.float64)
    sa, sb = np.array(voxel_spacing(a)), np.array(voxel_spacing(b))
    da, db = a[:3, :3] / sa, b[:3, :3] / sb
    far = np.array([max(n - 1, 0) for n in shape_a] + [1.0])
    return {
        "shape_equal": tuple(shape_a) == tuple(shape_b),
        "origin_mm": float(np.max(np.abs(a[:3, 3] - b[:3, 3]))),
        "spacing_mm": tuple(float(x) for x in np.abs(sa - sb)),
        "direction": float(np.max(np.abs(da - db))),
        "corner_mm": float(np.max(np.abs((a @ far)[:3] - (b @ far)[:3]))),
    }


def same_grid(
    shape_a: tuple[int, ...],
    affine_a: np.ndarray,
    shape_b: tuple[int, ...],
    affine_b: np.ndarray,
    *,
    atol_mm: float = TRANSLATION_ATOL_MM,
    atol_dir: float = DIRECTION_ATOL,
) -> bool:
    """True when two grids have the same shape and affines within tolerance.

    ``atol_mm`` bounds the origin and per-axis spacing differences (mm);
    ``atol_dir`` bounds the direction-cosine differences.
    """
    d = grid_deltas(shape_a, affine_a, shape_b, affine_b)
    return bool(
        d["shape_equal"]
        and d["origin_mm"] <= atol_mm
        and max(d["spacing_mm"]) <= atol_mm
        and d["direction"] <= atol_dir
    )


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image or label map with its world geometry.

    Parameters
    ----------
    data : ndarray of shape (I, J, K)
        Voxel values indexed by voxel index (i, j, k). Stored as a read-only
        view (the caller's array is not copied and not modified).
    affine : array-like of shape (4, 4)
        Voxel index (i, j, k, 1) to world (x, y, z, 1) in RAS+ mm, as in
        nibabel. Validated by :func:`check_affine`.
    meta : mapping, optional
        Read-only metadata: ``modality``, ``series_description``, ``plane``,
        ``source`` (path), ``patient_id`` (pseudonymous) and any other keys
        a loader records.

    Raises
    ------
    GeometryError
        If ``data`` is not 3-D or empty, or the affine is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((4, 5, 6)), np.diag([0.5, 0.5, 3.0, 1.0]))
    >>> v.shape, v.spacing
    ((4, 5, 6), (0.5, 0.5, 3.0))
    >>> v.axcodes
    ('R', 'A', 'S')
    """

    data: np.ndarray
    affine: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.data)
        if arr.ndim != 3:
            raise GeometryError(
                f"a Volume must be 3-D, got an array of shape {arr.shape}; "
                "4-D series must be split into 3-D volumes first"
            )
        if min(arr.shape) < 1:
            raise GeometryError(f"a Volume must not be empty, got shape {arr.shape}")
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise GeometryError(f"Volume data must be numeric, got dtype {arr.dtype}")
        view = arr.view()
        view.flags.writeable = False
        affine = check_affine(self.affine)
        affine.flags.writeable = False
        object.__setattr__(self, "data", view)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (I, J, K)."""
        s = self.data.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k."""
        return voxel_spacing(self.affine)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm³ (absolute determinant of the 3x3 affine)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """Anatomical direction of increasing i, j, k, e.g. ``('P', 'S', 'R')``."""
        return axcodes(self.affine)

    @property
    def lr_axis(self) -> int:
        """Array axis closest to patient left-right (the sagittal slice axis)."""
        return lr_axis(self.affine)

    def __reduce__(self) -> tuple[Any, ...]:
        # meta is a MappingProxyType (not picklable): rebuild from plain parts, e.g. to send
        # a Volume to a worker process or a Dask cluster.
        return (Volume, (np.asarray(self.data), np.asarray(self.affine), dict(self.meta)))

    def with_data(self, data: npt.ArrayLike, **meta: Any) -> Volume:
        """A new Volume on the same grid with other voxel values (and extra meta)."""
        arr = np.asarray(data)
        if arr.shape != self.shape:
            raise GeometryError(f"with_data: shape {arr.shape} differs from the grid {self.shape}")
        return Volume(arr, self.affine, {**self.meta, **meta})

    def with_meta(self, **meta: Any) -> Volume:
        """A new Volume sharing data and affine, with metadata keys added or replaced."""
        return Volume(self.data, self.affine, {**self.meta, **meta})

    def same_grid(
        self,
        other: Volume,
        *,
        atol_mm: float = TRANSLATION_ATOL_MM,
        atol_dir: float = DIRECTION_ATOL,
    ) -> bool:
        """True when ``other`` lies on this grid within the tolerances."""
        return same_grid(
            self.shape, self.affine, other.shape, other.affine, atol_mm=atol_mm, atol_dir=atol_dir
        )

    def world_coords(self, ijk: npt.ArrayLike) -> np.ndarray:
        """World (x, y, z) RAS mm of voxel indices ``ijk`` of shape (N, 3)."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def __repr__(self) -> str:
        codes = "".join(self.axcodes)
        sp = "x".join(f"{s:.4g}" for s in self.spacing)
        return f"Volume(shape={self.shape}, dtype={self.data.dtype}, spacing={sp} mm, axcodes={codes})"
