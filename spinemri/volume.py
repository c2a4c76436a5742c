"""The :class:`Volume` data model and pure geometry helpers.

A ``Volume`` is a 3-D numpy array indexed by voxel index (i, j, k) plus a 4x4
affine mapping voxel index to world (x, y, z) RAS+ millimetres, exactly as in
nibabel, plus a read-only metadata mapping. Nothing here touches files;
conversions to and from nibabel and SimpleITK images live in
:mod:`spinemri.io.convert`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import GeometryError, InputError

__all__ = [
    "Volume",
    "check_affine",
    "voxel_spacing",
    "axcodes",
    "lr_axis",
    "grid_deltas",
    "same_grid",
    "find_reorientation",
    "reorient",
    "label_centroids_si",
    "TRANSLATION_ATOL_MM",
    "DIRECTION_ATOL",
]

#: Default grid tolerances (DESIGN §2): translation in mm, direction cosines unitless.
TRANSLATION_ATOL_MM = 1e-3
DIRECTION_ATOL = 1e-4


def check_affine(affine: npt.ArrayLike, *, what: str = "affine") -> np.ndarray:
    """Return ``affine`` as a new float64 (4, 4) array or raise :class:`GeometryError`.

    Parameters
    ----------
    affine : array-like of shape (4, 4)
        Voxel index (i, j, k, 1) to world (x, y, z, 1) RAS+ mm.
    what : str, default "affine"
        How to name the matrix in error messages.

    Returns
    -------
    ndarray of shape (4, 4), float64
        A copy, with the last row set exactly to ``[0, 0, 0, 1]``.

    Raises
    ------
    GeometryError
        If the matrix is not 4x4, not numeric, holds NaN/inf, has a last row
        other than ``[0, 0, 0, 1]`` (within 1e-9), or a singular 3x3 part
        (a zero voxel size or two coinciding axes).
    """
    try:
        a = np.array(affine, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{what} must be a numeric 4x4 matrix ({exc})") from None
    if a.shape != (4, 4):
        raise GeometryError(f"{what} must be a 4x4 matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise GeometryError(f"{what} contains NaN or infinite values:\n{a}")
    # np.allclose(a[3], [0, 0, 0, 1], rtol=0, atol=1e-9) of finite values, without its overhead
    if not all(abs(x - y) <= 1e-9 for x, y in zip(a[3].tolist(), (0.0, 0.0, 0.0, 1.0), strict=True)):
        raise GeometryError(f"{what} last row must be [0, 0, 0, 1], got {a[3].tolist()}")
    spacing = np.sqrt(np.sum(a[:3, :3] ** 2, axis=0))
    if np.any(spacing == 0.0):
        raise GeometryError(f"{what} gives a zero voxel size along axis {int(np.argmin(spacing))}:\n{a}")
    # singular relative to the voxel sizes: the unit direction vectors are (nearly) coplanar
    det_dir = np.linalg.det(a[:3, :3] / spacing)
    if not np.isfinite(det_dir) or abs(det_dir) < 1e-6:
        raise GeometryError(
            f"{what} is singular (determinant of the direction cosines {det_dir:.3g}): "
            f"two voxel axes point (nearly) the same way:\n{a}"
        )
    a[3] = [0.0, 0.0, 0.0, 1.0]
    return a


def voxel_spacing(affine: npt.ArrayLike) -> tuple[float, float, float]:
    """Voxel size in mm along array axes i, j, k (column norms of the 3x3 part).

    Parameters
    ----------
    affine : array-like of shape (4, 4)
        Voxel index (i, j, k, 1) to world (x, y, z, 1) RAS+ mm; only the
        3x3 part is read.

    Returns
    -------
    tuple of 3 float
        Euclidean norm of each column of ``affine[:3, :3]``: the distance in
        mm between neighbouring voxel centres along i, j and k.

    Examples
    --------
    >>> voxel_spacing(np.diag([0.5, 0.7, 4.0, 1.0]))
    (0.5, 0.7, 4.0)
    """
    s = np.sqrt(np.sum(np.asarray(affine, dtype=np.float64)[:3, :3] ** 2, axis=0))
    return (float(s[0]), float(s[1]), float(s[2]))


def _orientation(affine: npt.ArrayLike) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """World axis (0 = x/LR, 1 = y/PA, 2 = z/IS) and sign closest to each array axis.

    Same rule as nibabel ``io_orientation``: take the orthogonal matrix
    closest to the direction cosines (SVD, removing zooms and shears); then,
    starting with the array axis best aligned to some world axis (largest
    absolute cosine) and going down, give each array axis the world axis of
    its largest absolute cosine among those not yet taken.
    """
    rs = np.asarray(affine, dtype=np.float64)[:3, :3]
    aligned = _axis_aligned(rs.tolist())
    if aligned is not None:
        return aligned
    rs = rs / np.sqrt(np.sum(rs**2, axis=0))
    p, _, qt = np.linalg.svd(rs)
    r = p @ qt
    world = [0, 0, 0]
    sign = [1, 1, 1]
    taken: list[int] = []
    for in_ax in np.argsort(-np.max(r**2, axis=0), kind="stable"):
        col = r[:, in_ax].copy()
        col[taken] = 0.0
        out_ax = int(np.argmax(np.abs(col)))
        taken.append(out_ax)
        world[in_ax] = out_ax
        sign[in_ax] = 1 if col[out_ax] > 0 else -1
    return (world[0], world[1], world[2]), (sign[0], sign[1], sign[2])


def _axis_aligned(m: list[list[float]]) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """:func:`_orientation` of a finite 3x3 matrix with one non-zero per row and per column (a signed
    permutation times zooms, as most scans): its own closest orthogonal matrix up to the zooms, each
    array axis takes the world axis of its non-zero. None for any other matrix."""
    world = [-1, -1, -1]
    sign = [1, 1, 1]
    for r, row in enumerate(m):
        nonzero = [c for c, x in enumerate(row) if x != 0]
        if len(nonzero) != 1 or not math.isfinite(row[nonzero[0]]) or world[nonzero[0]] != -1:
            return None
        world[nonzero[0]] = r
        sign[nonzero[0]] = 1 if row[nonzero[0]] > 0 else -1
    return (world[0], world[1], world[2]), (sign[0], sign[1], sign[2])


_CODES = (("L", "R"), ("P", "A"), ("I", "S"))


def axcodes(affine: npt.ArrayLike) -> tuple[str, str, str]:
    """Closest anatomical direction of each array axis, e.g. ``('P', 'S', 'R')``.

    Each letter names the direction in which the voxel index *increases*
    (nibabel's ``aff2axcodes`` convention; same result, pure numpy).

    Parameters
    ----------
    affine : array-like of shape (4, 4)
        Voxel index (i, j, k, 1) to world (x, y, z, 1) RAS+ mm. Zooms and
        shears are removed before the closest world axis is chosen.

    Returns
    -------
    tuple of 3 str
        One of ``L``/``R``, ``P``/``A``, ``I``/``S`` for each array axis i,
        j, k; every world axis appears exactly once.

    Examples
    --------
    >>> axcodes(np.diag([-1.0, 1.0, 1.0, 1.0]))
    ('L', 'A', 'S')
    """
    world, sign = _orientation(affine)
    codes = tuple(_CODES[w][1 if s > 0 else 0] for w, s in zip(world, sign, strict=True))
    return (codes[0], codes[1], codes[2])


def lr_axis(affine: npt.ArrayLike) -> int:
    """Index (0, 1 or 2) of the array axis closest to patient left-right.

    A slice at fixed index along this axis is a sagittal slice. Consistent
    with :func:`axcodes`: it is the axis whose code is ``L`` or ``R``.

    Parameters
    ----------
    affine : array-like of shape (4, 4)
        Voxel index (i, j, k, 1) to world (x, y, z, 1) RAS+ mm.

    Returns
    -------
    int
        0, 1 or 2: the array axis assigned to world x (left-right).

    Examples
    --------
    The dcm2niix affine of a sagittal series (axcodes PSR):

    >>> lr_axis(np.array([[0, 0, 1.0, 0], [-1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]]))
    2
    """
    world, _ = _orientation(affine)
    return world.index(0)


def _corners(shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """Homogeneous voxel indices (4, 8) of the 8 corner voxel centres of a grid."""
    far = [max(int(n) - 1, 0) for n in tuple(shape)[:3]]
    pts = [[i, j, k, 1.0] for i in (0, far[0]) for j in (0, far[1]) for k in (0, far[2])]
    corners: npt.NDArray[np.float64] = np.array(pts, dtype=np.float64).T
    return corners


def grid_deltas(
    shape_a: tuple[int, ...],
    affine_a: npt.ArrayLike,
    shape_b: tuple[int, ...],
    affine_b: npt.ArrayLike,
) -> dict[str, Any]:
    """Differences between grid A and grid B, for checks and error messages.

    Parameters
    ----------
    shape_a, shape_b : tuple of int
        Array shapes (I, J, K).
    affine_a, affine_b : array-like of shape (4, 4)
        Voxel index to world RAS+ mm.

    Returns
    -------
    dict
        ``shape_equal`` (bool); ``shape`` (per-axis ``shape_a - shape_b``);
        ``origin_xyz_mm`` (per world axis ``|origin_a - origin_b|``, mm) and
        ``origin_mm`` (their maximum); ``spacing_ijk_mm`` (per array axis
        ``|spacing_a - spacing_b|``, mm) and ``spacing_mm`` (the same tuple,
        kept for older callers); ``direction_ijk`` (per array axis the largest
        difference of the unit direction cosines) and ``direction`` (their
        maximum); ``corner_mm``: the largest distance, over the 8 corner voxel
        centres of grid A, between where grid A and grid B put that voxel
        index (mm). Because the displacement is affine in (i, j, k), it is
        largest at a corner, so ``corner_mm`` bounds every voxel's shift.

    Examples
    --------
    >>> d = grid_deltas((4, 4, 4), np.eye(4), (4, 4, 5), np.diag([1.0, 1.0, 2.0, 1.0]))
    >>> d["shape"], d["spacing_ijk_mm"], d["corner_mm"]
    ((0, 0, -1), (0.0, 0.0, 1.0), 3.0)
    """
    a = np.asarray(affine_a, dtype=np.float64)
    b = np.asarray(affine_b, dtype=np.float64)
    sa, sb = np.array(voxel_spacing(a)), np.array(voxel_spacing(b))
    da, db = a[:3, :3] / sa, b[:3, :3] / sb
    origin = np.abs(a[:3, 3] - b[:3, 3])
    spacing = tuple(float(x) for x in np.abs(sa - sb))
    direction = np.max(np.abs(da - db), axis=0)
    corners = _corners(shape_a)
    shift = np.sqrt(np.sum(((a - b) @ corners)[:3] ** 2, axis=0))
    ta, tb = tuple(shape_a), tuple(shape_b)
    if len(ta) == len(tb):
        shape_diff = tuple(int(x) - int(y) for x, y in zip(ta, tb, strict=True))
    else:
        shape_diff = tuple(ta)
    return {
        "shape_equal": ta == tb,
        "shape": shape_diff,
        "origin_xyz_mm": tuple(float(x) for x in origin),
        "origin_mm": float(np.max(origin)),
        "spacing_ijk_mm": spacing,
        "spacing_mm": spacing,
        "direction_ijk": tuple(float(x) for x in direction),
        "direction": float(np.max(direction)),
        "corner_mm": float(np.max(shift)),
    }


def same_grid(
    shape_a: tuple[int, ...],
    affine_a: npt.ArrayLike,
    shape_b: tuple[int, ...],
    affine_b: npt.ArrayLike,
    *,
    atol_mm: float = TRANSLATION_ATOL_MM,
    atol_dir: float = DIRECTION_ATOL,
) -> bool:
    """True when two grids have the same shape and affines within tolerance.

    Parameters
    ----------
    shape_a, shape_b : tuple of int
        Array shapes (I, J, K) of grid A and grid B; they must be equal.
    affine_a, affine_b : array-like of shape (4, 4)
        Voxel index to world RAS+ mm of grid A and grid B.
    atol_mm : float, default 1e-3
        Largest accepted origin difference per world axis and spacing
        difference per array axis, in mm.
    atol_dir : float, default 1e-4
        Largest accepted difference of any direction cosine (unitless).

    Returns
    -------
    bool
        True when the shapes are equal, every origin difference (per world
        axis) and spacing difference (per array axis) is at most ``atol_mm``
        and every direction cosine differs by at most ``atol_dir`` (see
        :func:`grid_deltas`).
    """
    d = grid_deltas(shape_a, affine_a, shape_b, affine_b)
    return bool(
        d["shape_equal"]
        and d["origin_mm"] <= atol_mm
        and max(d["spacing_ijk_mm"]) <= atol_mm
        and d["direction"] <= atol_dir
    )


def _reorientation_matrix(
    shape: tuple[int, ...], axes: tuple[int, int, int], flips: tuple[bool, bool, bool]
) -> npt.NDArray[np.float64]:
    """Integer 4x4 matrix P mapping a reoriented voxel index b to the source voxel index a = P @ b."""
    p = np.zeros((4, 4), dtype=np.float64)
    for j in range(3):
        p[axes[j], j] = -1.0 if flips[j] else 1.0
        p[axes[j], 3] = float(int(shape[axes[j]]) - 1) if flips[j] else 0.0
    p[3, 3] = 1.0
    return p


def find_reorientation(
    shape_from: tuple[int, ...],
    affine_from: npt.ArrayLike,
    shape_to: tuple[int, ...],
    affine_to: npt.ArrayLike,
    *,
    max_shift_mm: float,
) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]] | None:
    """The axis permutation and flips that put grid "from" onto grid "to", if there is one.

    Parameters
    ----------
    shape_from, shape_to : tuple of int
        Array shapes (I, J, K) of the grid to reorient and of the target grid.
    affine_from, affine_to : array-like of shape (4, 4)
        Voxel index to world RAS+ mm of the two grids.
    max_shift_mm : float
        Largest accepted distance (mm) between where the reoriented grid and
        the target grid put a voxel centre (measured at the 8 corners, as
        ``corner_mm`` of :func:`grid_deltas`).

    Returns
    -------
    tuple (axes, flips) or None
        ``axes``: for each target array axis j the source axis it takes (the
        order for ``np.transpose``); ``flips``: for each target axis whether
        the index runs backwards after the transpose (see :func:`reorient`).
        None when the grids are not a permutation/flip of one another within
        ``max_shift_mm``, or when the permutation is the identity without
        flips (nothing to reorient).

    Notes
    -----
    ``M = inv(affine_from) @ affine_to`` maps a target voxel index to the
    continuous source voxel index of the same world point. For a permuted and
    flipped copy of one grid its 3x3 part is a signed permutation matrix and
    its offsets are 0 or ``n - 1``. Each column j of M is rounded to the
    signed unit vector of its largest entry (source axis ``axes[j]``, flipped
    when negative); the candidate is kept only when the axes are a
    permutation, the permuted shape equals ``shape_to`` and the reoriented
    grid's voxel centres lie within ``max_shift_mm`` of the target's (the
    caller then applies its usual tolerances to the reoriented grid).

    Examples
    --------
    A grid stored LPS (i runs right to left, j anterior to posterior) against the same voxels stored RAS:

    >>> ras = np.diag([1.0, 1.0, 2.0, 1.0]); ras[:3, 3] = (-3.0, -2.0, 0.0)
    >>> lps = np.diag([-1.0, -1.0, 2.0, 1.0]); lps[:3, 3] = (3.0, 2.0, 0.0)
    >>> find_reorientation((7, 5, 4), lps, (7, 5, 4), ras, max_shift_mm=0.5)
    ((0, 1, 2), (True, True, False))
    """
    a = np.asarray(affine_from, dtype=np.float64)
    b = np.asarray(affine_to, dtype=np.float64)
    if len(tuple(shape_from)) != 3 or len(tuple(shape_to)) != 3:
        return None
    m = np.linalg.solve(a, b)[:3, :3]
    best = np.argmax(np.abs(m), axis=0)
    axes = (int(best[0]), int(best[1]), int(best[2]))
    if sorted(axes) != [0, 1, 2]:
        return None
    flips = (bool(m[axes[0], 0] < 0), bool(m[axes[1], 1] < 0), bool(m[axes[2], 2] < 0))
    if axes == (0, 1, 2) and not any(flips):
        return None
    shape = tuple(int(shape_from[ax]) for ax in axes)
    if shape != tuple(int(n) for n in shape_to):
        return None
    reoriented = a @ _reorientation_matrix(tuple(shape_from), axes, flips)
    if grid_deltas(shape, reoriented, tuple(shape_to), b)["corner_mm"] > max_shift_mm:
        return None
    return axes, flips


def reorient(
    volume: Volume, axes: tuple[int, int, int], flips: tuple[bool, bool, bool], **meta: Any
) -> Volume:
    """The same voxels in another array order: a transpose and flips, the affine updated exactly.

    Parameters
    ----------
    volume : Volume of shape (I, J, K)
        The volume to reorient.
    axes : tuple of 3 int
        A permutation of (0, 1, 2): new axis j is old axis ``axes[j]`` (as ``np.transpose``).
    flips : tuple of 3 bool
        After the transpose, reverse new axis j where ``flips[j]``.
    **meta : Any
        Metadata keys added to (or replacing those of) a copy of ``volume``'s metadata.

    Returns
    -------
    Volume
        New voxel ``b`` holds old voxel ``a = P @ b`` (P the signed permutation
        with offsets ``n - 1`` on flipped axes), and the affine is
        ``volume.affine @ P``: every voxel keeps its world position and value
        (no interpolation).

    Raises
    ------
    GeometryError
        If ``axes`` is not a permutation of (0, 1, 2).

    Examples
    --------
    >>> v = Volume(np.arange(6).reshape(1, 2, 3), np.eye(4))
    >>> r = reorient(v, (2, 1, 0), (True, False, False))
    >>> r.shape, int(r.data[0, 1, 0]), r.world_coords([0, 1, 0]).tolist()
    ((3, 2, 1), 5, [[0.0, 1.0, 2.0]])
    """
    if sorted(int(x) for x in axes) != [0, 1, 2] or len(flips) != 3:
        raise GeometryError(
            f"reorient: axes must be a permutation of (0, 1, 2) and 3 flips, got {axes}, {flips}"
        )
    data = np.transpose(np.asarray(volume.data), axes)
    flip_axes = tuple(j for j in range(3) if flips[j])
    if flip_axes:
        data = np.flip(data, axis=flip_axes)
    data = np.ascontiguousarray(data)  # a C-order copy (the kernels want C order) ...
    data.flags.writeable = False  # ... that Volume then shares instead of copying again
    affine = volume.affine @ _reorientation_matrix(volume.shape, axes, flips)
    return Volume(data, affine, {**_thaw(volume.meta), **meta})


def label_centroids_si(mask: Volume) -> dict[int, float]:
    """World superior coordinate (RAS z, mm) of each label's centroid.

    One pass over the labels' bounding box (:func:`spinemri.arrays.labels.label_counts_si`):
    ``np.bincount`` of the labels, weighted by each voxel centre's world z.
    Background 0 is left out.

    Parameters
    ----------
    mask : Volume of shape (I, J, K)
        Non-negative integer labels.

    Returns
    -------
    dict of int to float
        ``{label: mean world z of its voxels}`` in mm, for every label > 0
        present. Larger is more superior (cranial).

    Raises
    ------
    GeometryError
        If the data are not non-negative integers.

    Examples
    --------
    >>> m = np.zeros((1, 1, 4), dtype=np.uint8); m[0, 0, :2] = 7; m[0, 0, 3] = 2
    >>> label_centroids_si(Volume(m, np.diag([1.0, 1.0, 2.0, 1.0])))
    {2: 6.0, 7: 1.0}
    """
    from .arrays.labels import check_label_values, label_counts_si

    try:  # integer dtypes only: a float mask is refused here, as the GeometryError documented above
        data = check_label_values(mask.data, "label_centroids_si", allow_float=False)
    except InputError as exc:
        raise GeometryError(str(exc)) from exc

    present, _, si = label_counts_si(data, mask.affine)
    assert si is not None
    return {int(lab): float(z) for lab, z in zip(present, si, strict=True)}


def _freeze(value: Any) -> Any:
    """Read-only copy of nested metadata (dicts -> mappingproxy, lists -> tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        arr = value.copy()
        arr.flags.writeable = False
        return arr
    return value


def _thaw(value: Any) -> Any:
    """Plain (picklable) copy of frozen metadata."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image or label map with its world geometry.

    Parameters
    ----------
    data : array-like of shape (I, J, K)
        Voxel values (numeric or bool) indexed by voxel index (i, j, k).
        Stored read-only: a writeable input array is copied (so later changes
        to the caller's array do not leak in, and the caller's array keeps
        its flags); an already read-only array is shared without copying.
    affine : array-like of shape (4, 4)
        Voxel index (i, j, k, 1) to world (x, y, z, 1) in RAS+ mm, as in
        nibabel. Validated by :func:`check_affine`, stored as a read-only
        float64 copy.
    meta : mapping, optional
        Read-only metadata (nested dicts become read-only too): ``modality``,
        ``series_description``, ``plane``, ``source`` (path), ``patient_id``
        (pseudonymous), ``label_names`` and any other keys a loader records.

    Raises
    ------
    GeometryError
        If ``data`` is not 3-D, is empty, is not numeric (object, string,
        complex), or the affine is invalid.

    Notes
    -----
    Equality is identity (``eq=False``): compare volumes with
    :func:`spinemri.testing.assert_volume_equal`. Volumes pickle (for
    process pools and Dask): the metadata are thawed to plain dicts and
    frozen again on unpickling.

    Examples
    --------
    >>> v = Volume(np.zeros((4, 5, 6)), np.diag([0.5, 0.5, 3.0, 1.0]))
    >>> v.shape, v.spacing, v.voxel_volume_mm3
    ((4, 5, 6), (0.5, 0.5, 3.0), 0.75)
    >>> v.axcodes, v.lr_axis
    (('R', 'A', 'S'), 0)
    """

    data: np.ndarray
    affine: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.data)
        if arr.ndim != 3:
            raise GeometryError(
                f"a Volume must be 3-D, got an array of shape {arr.shape}; "
                "split 4-D series into 3-D volumes and add an axis to 2-D slices first"
            )
        if min(arr.shape) < 1:
            raise GeometryError(f"a Volume must not be empty, got shape {arr.shape}")
        if arr.dtype != np.bool_ and not (
            np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        ):
            raise GeometryError(
                f"Volume data must be real numbers or bool, got dtype {arr.dtype}; "
                "convert strings/objects/complex values first"
            )
        if arr.flags.writeable:
            arr = arr.copy(order="K")  # keep the layout: a C-order copy of an F-order array transposes it
        else:
            arr = arr.view()
        arr.flags.writeable = False
        affine = check_affine(self.affine)
        affine.flags.writeable = False
        if not isinstance(self.meta, Mapping):
            raise GeometryError(f"Volume meta must be a mapping, got {type(self.meta).__name__}")
        object.__setattr__(self, "data", arr)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "meta", _freeze(self.meta))

    def __reduce__(self) -> tuple[Any, ...]:
        # meta is a (nested) MappingProxyType, which cannot be pickled: rebuild from plain parts,
        # e.g. to send a Volume to a worker process or a Dask cluster.
        return (Volume, (self.data, self.affine, _thaw(self.meta)))

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
        """Volume of one voxel in mm³: ``|det(affine[:3, :3])|``.

        Computed as the scalar triple product of the three voxel edge vectors
        (exact for axis-aligned grids, unlike an LU-based determinant).
        """
        m = self.affine[:3, :3]
        return float(abs(np.dot(m[:, 0], np.cross(m[:, 1], m[:, 2]))))

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """Anatomical direction of increasing i, j, k, e.g. ``('P', 'S', 'R')``."""
        return axcodes(self.affine)

    @property
    def lr_axis(self) -> int:
        """Array axis closest to patient left-right (the sagittal slice axis)."""
        return lr_axis(self.affine)

    def with_data(self, data: npt.ArrayLike, **meta: Any) -> Volume:
        """A new Volume on the same grid with other voxel values (and extra meta).

        Parameters
        ----------
        data : array-like of shape (I, J, K)
            The new voxel values (numeric or bool), indexed like this volume;
            copied unless already read-only.
        **meta : Any
            Metadata keys added to (or replacing those of) a copy of this
            volume's metadata.

        Returns
        -------
        Volume
            ``data`` with this volume's affine and the merged metadata.

        Raises
        ------
        GeometryError
            If ``data`` does not have this volume's shape.
        """
        arr = np.asarray(data)
        if arr.shape != self.shape:
            raise GeometryError(f"with_data: shape {arr.shape} differs from the grid {self.shape}")
        return Volume(arr, self.affine, {**_thaw(self.meta), **meta})

    def with_meta(self, **meta: Any) -> Volume:
        """A new Volume sharing data and affine, with metadata keys added or replaced.

        Parameters
        ----------
        **meta : Any
            Metadata keys added to (or replacing those of) a copy of this
            volume's metadata.

        Returns
        -------
        Volume
            A volume with the same (read-only, shared) data and affine and the
            merged metadata.
        """
        return Volume(self.data, self.affine, {**_thaw(self.meta), **meta})

    def same_grid(
        self,
        other: Volume,
        *,
        atol_mm: float = TRANSLATION_ATOL_MM,
        atol_dir: float = DIRECTION_ATOL,
    ) -> bool:
        """True when ``other`` lies on this grid within the tolerances.

        Parameters
        ----------
        other : Volume
            The volume whose grid (shape and affine) is compared with this one.
        atol_mm : float, default 1e-3
            Largest accepted origin difference per world axis and spacing
            difference per array axis, in mm.
        atol_dir : float, default 1e-4
            Largest accepted difference of any direction cosine (unitless).

        Returns
        -------
        bool
            The result of :func:`same_grid` for the two shapes and affines.
        """
        if atol_mm >= 0 and atol_dir >= 0 and self.shape == other.shape:
            if np.array_equal(self.affine, other.affine):  # (a Volume's affine is finite, non-singular)
                return True  # every difference is 0
        return same_grid(
            self.shape, self.affine, other.shape, other.affine, atol_mm=atol_mm, atol_dir=atol_dir
        )

    def world_coords(self, ijk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """World (x, y, z) RAS+ mm of voxel indices.

        Parameters
        ----------
        ijk : array-like of shape (3,) or (N, 3)
            Voxel indices (i, j, k); fractional indices are allowed.

        Returns
        -------
        ndarray of shape (N, 3)
            ``affine @ [i, j, k, 1]`` for each row, in mm.

        Examples
        --------
        >>> v = Volume(np.zeros((2, 2, 2)), [[0, 0, 2, 10], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
        >>> v.world_coords([1, 1, 1])
        array([[12., -1.,  1.]])
        """
        pts = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        if pts.shape[-1] != 3 or pts.ndim != 2:
            raise GeometryError(f"world_coords expects voxel indices of shape (N, 3), got {pts.shape}")
        xyz: npt.NDArray[np.float64] = pts @ self.affine[:3, :3].T + self.affine[:3, 3]
        return xyz

    def __repr__(self) -> str:
        codes = "".join(self.axcodes)
        sp = "x".join(f"{s:.4g}" for s in self.spacing)
        return f"Volume(shape={self.shape}, dtype={self.data.dtype}, spacing={sp} mm, axcodes={codes})"
