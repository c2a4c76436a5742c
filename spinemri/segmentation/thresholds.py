"""Per-vertebra intensity thresholds and background levels from robust marrow statistics.

Pure numpy on the reference (core) voxels' values or their histograms
(:class:`~spinemri.arrays.grouped.Hist`): ``robust`` median ± k robust SDs,
``local`` the trend-corrected median of the neighbouring vertebrae, Otsu's
threshold, and each vertebra's lesion-free marrow level and its offsets by
depth class (DESIGN §4; used by :func:`spinemri.segmentation.lesions.segment_lesions`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays.grouped import Hist, grouped_median_mad, grouped_medians, nanmedian_axis
from ..arrays.morphology import N_DEPTH_CLASSES
from ..params import SegmentParams

__all__ = [
    "MAD_TO_SD",
    "mad_threshold",
    "robust_threshold",
    "otsu",
    "trend_median",
    "neighbour_windows",
    "local_thresholds",
    "background_level",
    "background_level_hist",
    "depth_offsets",
]


#: Scale factor turning a median absolute deviation into a normal standard deviation.
MAD_TO_SD = 1.4826


def mad_threshold(median: Any, mad: Any, k: float, polarity: str) -> Any:
    """The robust threshold ``median ± k·1.4826·mad`` (``+`` for bright), of scalars or arrays.

    Parameters
    ----------
    median, mad : float or ndarray
        Reference median and median absolute deviation.
    k : float
        Number of robust standard deviations.
    polarity : {"bright", "dark"}
        Lesions above (bright) or below (dark) the marrow.

    Returns
    -------
    float or ndarray
        The threshold(s), broadcast as ``median`` and ``mad``.
    """
    return median + (1.0 if polarity == "bright" else -1.0) * k * MAD_TO_SD * mad


def robust_threshold(values: np.ndarray, k: float, polarity: str) -> tuple[float, float, float]:
    """Robust threshold of one set of values: median ± k·1.4826·MAD (``+`` for bright).

    Parameters
    ----------
    values : ndarray
        Reference intensities.
    k : float
        Number of robust standard deviations.
    polarity : {"bright", "dark"}
        Lesions above (bright) or below (dark) the marrow.

    Returns
    -------
    threshold, median, mad : float
        NaN for no values.
    """
    values = np.asarray(values)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    meds, mads = grouped_median_mad(values, np.zeros(values.size, dtype=np.intp), 1)
    med, mad = float(meds[0]), float(mads[0])
    return mad_threshold(med, mad, k, polarity), med, mad


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of a set of intensities (:func:`skimage.filters.threshold_otsu`).

    Parameters
    ----------
    values : ndarray, shape (N,)
        Intensities (any real dtype; read as float64), e.g. the reference voxels of one vertebra.

    Returns
    -------
    float
        The threshold in the intensity units of ``values``; NaN for no values, the common
        value itself when all values are equal.
    """
    from skimage.filters import threshold_otsu

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    if values.min() == values.max():
        return float(values[0])
    return float(threshold_otsu(values))


def trend_median(positions: np.ndarray, values: np.ndarray, at: float) -> float:
    """Median of ``values`` after removing a robust linear trend, evaluated at position ``at``.

    The slope is Siegel's repeated median (for each point the median of its
    slopes to the others, then the median of those; breakdown point 50 %, so
    one outlying neighbour among four cannot tilt it; 0 with fewer than 3
    points); the result is ``median(values - slope * (positions - at))``.

    Parameters
    ----------
    positions : ndarray, shape (N,)
        Position of each value (e.g. vertebra positions along the spine).
    values : ndarray, shape (N,)
        The values (e.g. the neighbours' marrow medians).
    at : float
        Position to evaluate the trend-corrected median at.

    Returns
    -------
    float
        The trend-corrected median.
    """
    x = np.asarray(positions, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    slope = 0.0
    if x.size >= 3:
        dx = x[None, :] - x[:, None]
        dy = y[None, :] - y[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            sl = np.where(dx != 0, dy / np.where(dx != 0, dx, 1.0), np.nan)
        per_point = np.nanmedian(sl, axis=1)
        if np.any(np.isfinite(per_point)):
            slope = float(np.nanmedian(per_point))
    return float(np.median(y - slope * (x - at)))


def local_thresholds(
    values: np.ndarray,
    vid: np.ndarray,
    n: int,
    p: SegmentParams,
    own: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Per-vertebra (threshold, median, MAD) from neighbouring vertebrae, itself excluded.

    Each vertebra's own marrow median and MAD are computed first. The
    neighbours of vertebra ``v`` are the vertebrae within ``neighbours``
    positions on each side in cranio-caudal order (at the ends of the spine,
    the ``2·neighbours`` nearest). Its reference median is the neighbours'
    medians with their robust (repeated-median) linear trend removed, evaluated at
    ``v`` — a smooth coil bias along the spine is followed, also at its ends —
    and its MAD the median of the neighbours' MADs. Medians of per-vertebra
    statistics keep one diffusely replaced neighbour from moving the threshold.

    Parameters
    ----------
    values : ndarray, shape (N,)
        Reference (core) voxel intensities (unused when ``own`` is given).
    vid : ndarray of int, shape (N,)
        Vertebra id of each value, ``1..n``.
    n : int
        Number of vertebra ids.
    p : SegmentParams
        Uses ``k``, ``polarity`` and ``neighbours``.
    own : tuple of 2 ndarray, optional
        Each vertebra id's median and MAD, shape (n + 1,), when already known.

    Returns
    -------
    thresholds, medians, mads : ndarray of float64, shape (n,)
        Per vertebra id ``1..n`` (NaN for an id without reference voxels).
    note : str
        The fallback taken ("" when none): a single vertebra is its own reference.
    """
    med, mad = grouped_median_mad(values, vid, n + 1) if own is None else own
    present = [v for v in range(1, n + 1) if not np.isnan(med[v])]
    out_t, out_m, out_d = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    note = ""
    if len(present) == 1:
        note = "local method with a single vertebra: its reference is its own marrow"
    for pos, (v, window) in enumerate(
        zip(present, neighbour_windows(len(present), int(p.neighbours)), strict=True)
    ):
        nbrs = np.array([present[q] for q in window])
        m = trend_median(np.array(window, dtype=np.float64), med[nbrs], float(pos))
        d = float(np.median(mad[nbrs]))
        out_t[v - 1], out_m[v - 1], out_d[v - 1] = mad_threshold(m, d, p.k, p.polarity), m, d
    return out_t, out_m, out_d, note


def neighbour_windows(n_present: int, neighbours: int) -> list[list[int]]:
    """Neighbour positions of each of ``n_present`` vertebrae in cranio-caudal order, itself excluded.

    Up to ``neighbours`` positions on each side; at the ends of the spine the
    ``2·neighbours`` nearest. A single vertebra is its own window.

    Parameters
    ----------
    n_present : int
        Number of vertebrae present, positions ``0..n_present-1``.
    neighbours : int
        Neighbours on each side.

    Returns
    -------
    list of list of int
        For each position, the ascending positions of its neighbours.
    """
    out = []
    for pos in range(n_present):
        window = [
            q for q in range(max(pos - neighbours, 0), min(pos + neighbours + 1, n_present)) if q != pos
        ]
        if pos - neighbours < 0 or pos + neighbours >= n_present:
            window = sorted(
                q
                for _, q in sorted((abs(q - pos), q) for q in range(n_present) if q != pos)[: 2 * neighbours]
            )
        out.append(window or [pos])
    return out


def background_level(
    values: np.ndarray,
    vid: np.ndarray,
    clean: np.ndarray,
    region: np.ndarray,
    n: int,
    fallback: np.ndarray,
) -> np.ndarray:
    """Per vertebra median of the ``clean`` voxels, or ``fallback`` when they are under 25 % of ``region``.

    Parameters
    ----------
    values : ndarray, shape (N,)
        Intensities of the vertebra voxels (flat).
    vid : ndarray of int, shape (N,)
        Vertebra id of each voxel, ``0..n``.
    clean : ndarray of bool, shape (N,)
        The voxels the level is the median of (e.g. core voxels not beyond the threshold).
    region : ndarray of bool, shape (N,)
        The voxels the 25 % are counted in (e.g. the core).
    n : int
        Number of vertebra ids.
    fallback : ndarray of float64, shape (n + 1,)
        Level of a vertebra with too few clean voxels (e.g. its reference median).

    Returns
    -------
    ndarray of float64, shape (n + 1,)
        The background level of each vertebra id.
    """
    med = grouped_medians(values[clean], vid[clean].astype(np.int64), n + 1)
    n_clean = np.bincount(vid[clean], minlength=n + 1)[: n + 1]
    n_region = np.bincount(vid[region], minlength=n + 1)[: n + 1]
    return np.where(n_clean >= 0.25 * np.maximum(n_region, 1), med, fallback)


def background_level_hist(
    h: Hist,
    thresholds: np.ndarray,
    bright: bool,
    thin: np.ndarray,
    fallback: np.ndarray,
) -> np.ndarray:
    """:func:`background_level` from the per-vertebra histograms of the core voxels.

    The clean core voxels of vertebra ``v`` are the bins not beyond its
    threshold; a thin vertebra (its histogram holds its rim, its core is
    empty) takes ``fallback`` as :func:`background_level` does.

    Parameters
    ----------
    h : Hist
        Per vertebra id histograms of the reference voxels, ``n + 1`` rows.
    thresholds : ndarray of float64, shape (n + 1,)
        Each vertebra's threshold.
    bright : bool
        Lesions are above (True) or below (False) the threshold.
    thin : ndarray of int
        Vertebra ids whose core is empty.
    fallback : ndarray of float64, shape (n + 1,)
        Level of a vertebra with too few clean voxels.

    Returns
    -------
    ndarray of float64, shape (n + 1,)
        The background level of each vertebra id.
    """
    edges = h.bin_values()
    with np.errstate(invalid="ignore"):
        beyond = edges[None, :] > thresholds[:, None] if bright else edges[None, :] < thresholds[:, None]
    clean = Hist(np.where(beyond, 0, h.counts), h.lo, h.scale)
    n_clean = clean.counts.sum(axis=1)
    n_region = h.counts.sum(axis=1)
    n_region[thin] = 0  # no core voxel at all
    n_clean[thin] = 0
    med = clean.medians()
    return np.where(n_clean >= 0.25 * np.maximum(n_region, 1), med, fallback)


def depth_offsets(
    raw: np.ndarray,
    level: np.ndarray,
    n: int,
    p: SegmentParams,
    counts: np.ndarray,
) -> np.ndarray:
    """Background offset (intensity units) of each vertebra at each depth class.

    The lesion-free intensity of a voxel at depth class ``c`` of vertebra
    ``v`` is ``bg = level[v] · r(c)`` (``r`` the median of ``I / level`` at
    that depth: coil bias is multiplicative) — or ``level[v] + r(c)`` with
    ``r`` the median of ``I - level`` when some level is not positive. ``r``
    is a median over vertebrae of each vertebra's median at that depth (all
    vertebrae for ``robust``/``otsu``/``fixed``, the ``neighbours`` window of
    ``local``), so lesions, a minority, do not move it. The interior class 3
    has offset 0.

    Parameters
    ----------
    raw : ndarray of float64, shape (n + 1, 3)
        Each vertebra's median intensity at depth classes 0-2 (the median of
        ``I / level`` over one vertebra's voxels is the median of ``I``, then
        divided by its level).
    level : ndarray of float64, shape (n + 1,)
        Each vertebra's background level.
    n : int
        Number of vertebra ids.
    p : SegmentParams
        Uses ``method`` and ``neighbours``.
    counts : ndarray of int, shape (n + 1,)
        Voxels per vertebra id.

    Returns
    -------
    ndarray of float64, shape (n + 1, 4)
        ``bg - level`` per vertebra id and depth class (row 0 and class 3: 0).
    """
    out = np.zeros((n + 1, N_DEPTH_CLASSES))
    present = np.flatnonzero(counts[1 : n + 1]) + 1
    if present.size == 0:
        return out
    lv = level[present]
    ratio = bool(np.all(np.isfinite(lv)) and np.all(lv > 0))
    nc = N_DEPTH_CLASSES - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        per = raw / level[:, None] if ratio else raw - level[:, None]
    per[~np.isfinite(per)] = np.nan
    prof = np.full((n + 1, nc), np.nan)  # NaN: no voxel at that depth
    if p.method == "local":
        # every window holds the same number of positions (2·neighbours, or all the others when
        # fewer): one median over a (vertebrae, window, class) stack
        windows = neighbour_windows(present.size, int(p.neighbours))
        if len({len(w) for w in windows}) == 1:
            prof[present] = nanmedian_axis(per[present[np.array(windows)]], axis=1)
        else:  # (not produced by neighbour_windows today; kept exact whatever the windows)
            for v, window in zip(present, windows, strict=True):
                prof[v] = nanmedian_axis(per[present[window]], axis=0)
    else:
        prof[present] = nanmedian_axis(per[present], axis=0)
    neutral = 1.0 if ratio else 0.0
    prof = np.where(np.isnan(prof), neutral, prof)
    base = np.where(np.isfinite(level), level, 0.0)
    out[:, :nc] = base[:, None] * (prof - 1.0) if ratio else prof
    out[0] = 0.0
    return out
