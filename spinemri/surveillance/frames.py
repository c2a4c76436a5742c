"""Each vertebra's own frame, and each lesion's position in it (so scans on different grids compare).

Pure numpy / pandas, no I/O. A patient is repositioned between scans, the field of view and the
slice count change: world coordinates of two scans are not comparable, but a lesion's position
relative to its vertebra's centroid, along the vertebra's own axes, is.

The frame of a vertebra (:func:`frame_from_moments`) is its centroid and its three principal axes
(eigenvectors of the covariance of its voxel centres, world RAS mm), each assigned to the world
direction it is closest to and signed by it:

* ``si`` — towards superior (world +z), the vertebra's cranio-caudal axis;
* ``ap`` — towards anterior (world +y);
* ``lr`` — towards the patient's right (world +x, RAS).

When two eigenvalues are within :data:`DEGENERATE_RATIO` of each other the shape does not define
the axes of their plane (a round body seen from above); there the world direction of the first of
the pair, projected onto that plane, is used, and the other axis completes a right-handed frame.

Columns added to the vertebra table (:data:`FRAME_COLUMNS`): ``centroid_x_mm``, ``centroid_y_mm``,
``centroid_z_mm`` (world RAS mm), ``axis_si_x`` ... ``axis_lr_z`` (unit vectors, world RAS),
``extent_si_mm``, ``extent_ap_mm``, ``extent_lr_mm`` (equivalent extent ``sqrt(12 var)`` along
each axis, the variance of the voxels taken as cubes — their centres' covariance plus one
voxel's, ``L L^T / 12`` — so a box of n voxels of s mm has extent exactly n s) and
``height_mm`` (= ``extent_si_mm``).

Columns added to the lesion table (:data:`POSITION_COLUMNS`): ``offset_si_mm``, ``offset_ap_mm``,
``offset_lr_mm`` (lesion centroid minus vertebra centroid, projected on the axes), ``rel_si``,
``rel_ap``, ``rel_lr`` (the offsets divided by the vertebra's extent along the axis: -0.5 .. 0.5
inside a box-shaped vertebra) and ``radius_mm`` (radius of the sphere of the lesion's volume).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..arrays.moments import label_moments
from ..errors import InputError

__all__ = [
    "AXES",
    "FRAME_COLUMNS",
    "POSITION_COLUMNS",
    "DEGENERATE_RATIO",
    "frame_from_moments",
    "vertebra_frames",
    "lesion_positions",
    "lesion_positions_from_maps",
    "equivalent_radius",
]

#: The frame's axes, in the order of the columns.
AXES = ("si", "ap", "lr")
_WORLD = {"si": 2, "ap": 1, "lr": 0}  # the world (RAS) axis each frame axis is signed by

#: Two principal variances closer than this ratio are treated as equal (axes set by the world).
DEGENERATE_RATIO = 1.1

FRAME_COLUMNS = (
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    *(f"axis_{a}_{c}" for a in AXES for c in "xyz"),
    "extent_si_mm",
    "extent_ap_mm",
    "extent_lr_mm",
    "height_mm",
)

POSITION_COLUMNS = (
    "offset_si_mm",
    "offset_ap_mm",
    "offset_lr_mm",
    "rel_si",
    "rel_ap",
    "rel_lr",
    "radius_mm",
)

# assignments of the 3 principal axes to (si, ap, lr): all 6 permutations
_PERMS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def frame_from_moments(centroid_mm: Sequence[float], cov_mm2: np.ndarray) -> dict[str, float]:
    """The frame of one vertebra from its centroid and covariance in world mm.

    Parameters
    ----------
    centroid_mm : sequence of 3 float
        Mean world (x, y, z) RAS mm of the vertebra's voxel centres.
    cov_mm2 : ndarray of shape (3, 3)
        Covariance of the voxel centres' world coordinates (mm^2).

    Returns
    -------
    dict of str to float
        The :data:`FRAME_COLUMNS` of the vertebra.

    Raises
    ------
    InputError
        When the centroid or covariance is not finite.

    Notes
    -----
    Eigenvectors ``e_k`` of the covariance are assigned to (si, ap, lr) by the permutation
    maximising ``sum |e_k . w_axis|`` (``w`` the world z, y, x unit vectors), then signed so that
    ``e . w >= 0``. Degenerate pairs (eigenvalue ratio below :data:`DEGENERATE_RATIO`) take the
    world direction projected onto their plane; a fully degenerate shape (a sphere) the world
    axes. The frame is right-handed: ``lr = ap x si`` (RAS: anterior x superior = right).
    """
    c = np.asarray(centroid_mm, dtype=np.float64).reshape(3)
    cov = np.asarray(cov_mm2, dtype=np.float64).reshape(3, 3)
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(cov))):
        raise InputError(f"vertebra frame: centroid {c.tolist()} or covariance is not finite")
    cov = 0.5 * (cov + cov.T)
    w, v = np.linalg.eigh(cov)
    w = np.maximum(w, 0.0)
    world = np.eye(3)
    best = max(_PERMS, key=lambda p: sum(abs(v[:, p[n]] @ world[_WORLD[a]]) for n, a in enumerate(AXES)))
    axes = {a: v[:, best[n]].copy() for n, a in enumerate(AXES)}
    var = {a: float(w[best[n]]) for n, a in enumerate(AXES)}
    close = {
        (a, b)
        for i, a in enumerate(AXES)
        for b in AXES[i + 1 :]
        if max(var[a], var[b]) <= DEGENERATE_RATIO * min(var[a], var[b])
    }
    if len(close) >= 2:  # all three alike: the world axes
        axes = {a: world[_WORLD[a]].copy() for a in AXES}
    elif close:
        (a, b) = next(iter(close))
        fixed = next(x for x in AXES if x not in (a, b))
        e = axes[fixed]
        u = world[_WORLD[a]] - (world[_WORLD[a]] @ e) * e
        if not np.linalg.norm(u) > 1e-9:
            u = world[_WORLD[b]] - (world[_WORLD[b]] @ e) * e
            a, b = b, a
        axes[a] = u / np.linalg.norm(u)
        axes[b] = np.cross(e, axes[a])
    for a in AXES:
        if axes[a] @ world[_WORLD[a]] < 0:
            axes[a] = -axes[a]
    # right-handed: lr = ap x si; flip lr only if the signed axes came out left-handed
    if np.cross(axes["ap"], axes["si"]) @ axes["lr"] < 0:
        axes["lr"] = -axes["lr"]
    out = {"centroid_x_mm": float(c[0]), "centroid_y_mm": float(c[1]), "centroid_z_mm": float(c[2])}
    for a in AXES:
        for k, comp in enumerate("xyz"):
            out[f"axis_{a}_{comp}"] = float(axes[a][k])
    for a in AXES:
        out[f"extent_{a}_mm"] = float(np.sqrt(max(12.0 * float(axes[a] @ cov @ axes[a]), 0.0)))
    out["height_mm"] = out["extent_si_mm"]
    return out


def vertebra_frames(vertebra_ids: np.ndarray, levels: Sequence[str], affine: np.ndarray) -> pd.DataFrame:
    """Centroid, axes, extents and height of every vertebra of a label map.

    Parameters
    ----------
    vertebra_ids : ndarray of shape (I, J, K), non-negative int
        Vertebra id ``1..n`` of each voxel (0 elsewhere), id ``v`` being ``levels[v - 1]``
        (:func:`spinemri.measurement.vertebra_ids`).
    levels : sequence of str, length n
        Level of each id.
    affine : ndarray of shape (4, 4)
        Voxel index (i, j, k) -> world (x, y, z) RAS mm.

    Returns
    -------
    pandas.DataFrame
        One row per level present (``level`` then the :data:`FRAME_COLUMNS`), in the order of
        ``levels``.

    Examples
    --------
    >>> import numpy as np
    >>> ids = np.zeros((20, 20, 40), np.uint8); ids[2:18, 4:16, 5:15] = 1   # a 16 x 12 x 10 mm box
    >>> f = vertebra_frames(ids, ["L1"], np.eye(4))
    >>> [round(float(f[c].iloc[0]), 3) for c in ("extent_lr_mm", "extent_ap_mm", "height_mm")]
    [16.0, 12.0, 10.0]
    """
    aff = np.asarray(affine, dtype=np.float64)
    mom = label_moments(np.asarray(vertebra_ids), aff)
    lin, shift = aff[:3, :3], aff[:3, 3]
    rows = []
    for r, vid in enumerate(mom.labels.tolist()):
        if not 1 <= vid <= len(levels):
            continue
        centroid = lin @ mom.mean_ijk[r] + shift
        # the voxels as cubes: the centres' covariance plus one uniform voxel's, L L^T / 12 (exact)
        cov = lin @ mom.cov_ijk[r] @ lin.T + lin @ lin.T / 12.0
        rows.append({"level": levels[vid - 1], **frame_from_moments(centroid, cov)})
    out = pd.DataFrame(rows, columns=["level", *FRAME_COLUMNS])
    order = {lv: n for n, lv in enumerate(levels)}
    return out.sort_values("level", key=lambda s: s.map(order)).reset_index(drop=True)


def equivalent_radius(volume_mm3: np.ndarray | pd.Series | float) -> np.ndarray:
    """Radius of the sphere of a given volume, ``(3 V / (4 pi)) ** (1/3)``.

    Parameters
    ----------
    volume_mm3 : array-like of float
        Volumes in mm^3 (negative values are read as 0).

    Returns
    -------
    ndarray of float
        Radii in mm.
    """
    v = np.maximum(np.asarray(volume_mm3, dtype=np.float64), 0.0)
    r: np.ndarray = np.cbrt(3.0 * v / (4.0 * np.pi))
    return r


def lesion_positions(lesions: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """Each lesion's position in its vertebra's frame, from the world centroids of lesions.csv.

    Parameters
    ----------
    lesions : pandas.DataFrame
        The lesion table (``level``, ``x_mm``, ``y_mm``, ``z_mm``, ``volume_mm3``, and any other
        columns; with ``patient_id`` / ``timepoint`` columns, rows are joined to the frames of the
        same patient and time point when ``frames`` has them too).
    frames : pandas.DataFrame
        The vertebrae's :data:`FRAME_COLUMNS` by ``level`` (a vertebra table carrying them, or the
        output of :func:`vertebra_frames`).

    Returns
    -------
    pandas.DataFrame
        ``lesions`` (same rows, same order) with the :data:`POSITION_COLUMNS` added (replaced
        when present); NaN for a lesion whose level has no frame.

    Raises
    ------
    InputError
        When a needed column is missing.
    """
    need_l = {"level", "x_mm", "y_mm", "z_mm", "volume_mm3"} - set(lesions.columns)
    need_f = {"level", *FRAME_COLUMNS} - set(frames.columns)
    if need_l:
        raise InputError(f"lesion positions: the lesion table lacks column(s) {sorted(need_l)}")
    if need_f:
        raise InputError(
            f"lesion positions: the vertebra frames lack column(s) {sorted(need_f)}; "
            "compute them with spinemri.surveillance.frames.vertebra_frames"
        )
    keys = ["level"] + [
        k for k in ("patient_id", "timepoint") if k in lesions.columns and k in frames.columns
    ]
    f = frames[[*keys, *FRAME_COLUMNS]].astype({k: str for k in keys}).drop_duplicates(subset=keys)
    base = lesions.drop(columns=[c for c in POSITION_COLUMNS if c in lesions.columns])
    merged = base[keys].astype(str).reset_index(drop=True).merge(f, on=keys, how="left")
    d = np.stack(
        [
            lesions[c].to_numpy(float) - merged[f"centroid_{c[0]}_mm"].to_numpy(float)
            for c in ("x_mm", "y_mm", "z_mm")
        ],
        axis=1,
    )
    out = base.copy()
    for a in AXES:
        u = merged[[f"axis_{a}_{c}" for c in "xyz"]].to_numpy(float)
        off = np.einsum("ij,ij->i", d, u)
        out[f"offset_{a}_mm"] = off
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"rel_{a}"] = off / merged[f"extent_{a}_mm"].to_numpy(float)
    out["radius_mm"] = equivalent_radius(lesions["volume_mm3"].to_numpy(float))
    return out


def lesion_positions_from_maps(
    lesion_ids: np.ndarray,
    vertebra_ids: np.ndarray,
    levels: Sequence[str],
    affine: np.ndarray,
) -> pd.DataFrame:
    """Lesion positions in the vertebra frame straight from a lesion map and a vertebra map.

    Parameters
    ----------
    lesion_ids : ndarray of shape (I, J, K), non-negative int
        Lesion id of each voxel (``Measurement.lesion_mask``: ids as in ``lesions.lesion_id``).
    vertebra_ids : ndarray of shape (I, J, K), non-negative int
        Vertebra id ``1..n`` of each voxel, ``levels[v - 1]`` (same grid).
    levels : sequence of str, length n
    affine : ndarray of shape (4, 4)
        Voxel index -> world RAS mm.

    Returns
    -------
    pandas.DataFrame
        One row per lesion id: ``lesion_id``, ``level`` (the vertebra holding most of its voxels),
        ``volume_mm3``, ``x_mm``, ``y_mm``, ``z_mm`` and the :data:`POSITION_COLUMNS`.

    Raises
    ------
    InputError
        When the two maps have different shapes.
    """
    les = np.asarray(lesion_ids)
    ver = np.asarray(vertebra_ids)
    if les.shape != ver.shape:
        raise InputError(f"lesion map shape {les.shape} differs from the vertebra map shape {ver.shape}")
    aff = np.asarray(affine, dtype=np.float64)
    lin, shift = aff[:3, :3], aff[:3, 3]
    voxel_mm3 = abs(float(np.linalg.det(lin)))
    mom = label_moments(les, aff)
    sel = les > 0
    pairs_l = les[sel].astype(np.int64)
    pairs_v = ver[sel].astype(np.int64)
    rows = []
    for r, lid in enumerate(mom.labels.tolist()):
        vs = pairs_v[pairs_l == lid]
        vs = vs[(vs >= 1) & (vs <= len(levels))]
        if vs.size == 0:
            continue
        vid = int(np.bincount(vs).argmax())
        c = lin @ mom.mean_ijk[r] + shift
        rows.append(
            {
                "lesion_id": int(lid),
                "level": levels[vid - 1],
                "volume_mm3": float(mom.counts[r]) * voxel_mm3,
                "x_mm": float(c[0]),
                "y_mm": float(c[1]),
                "z_mm": float(c[2]),
            }
        )
    table = pd.DataFrame(rows, columns=["lesion_id", "level", "volume_mm3", "x_mm", "y_mm", "z_mm"])
    return lesion_positions(table, vertebra_frames(ver, levels, aff))
