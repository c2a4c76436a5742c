"""Candidate voxels of the segmentation: vertebra voxels strictly beyond their vertebra's threshold.

One compiled pass over the vertebrae's box (``spinemri._kernels.candidates``), with two exact
shortcuts computed here from the thresholds (docs/decisions/0032): a bound no candidate can miss,
so that blocks of the box with no value beyond it are skipped after one vectorised test, and, for
integer images, the thresholds as integers (an integer is above a real ``t`` exactly when it is
above ``floor(t)``), so that each voxel is compared without a branch on its label nor a conversion
to float.
"""

from __future__ import annotations

import numpy as np

from .._native import kernels as _kernels

__all__ = ["candidate_bound", "candidate_thresholds", "find_candidates"]


def find_candidates(
    vertebrae: np.ndarray,
    intensity: np.ndarray,
    code: np.ndarray,
    thresholds: np.ndarray,
    seed_thresholds: np.ndarray,
    bright: bool,
    max_count: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate voxels of a box and which are seeds.

    Parameters
    ----------
    vertebrae : ndarray of uint8, C-contiguous
        Vertebra ids of the box (0: none).
    intensity : ndarray, C-contiguous
        The box's intensities (a type of :mod:`spinemri._kernels`).
    code : ndarray of uint8
        The box's :func:`~spinemri.arrays.morphology.label_codes` (its core bit marks seeds' voxels).
    thresholds, seed_thresholds : ndarray of float64, shape (n + 1,)
        Per vertebra id: the candidate and the seed threshold (NaN: none).
    bright : bool
        Candidates above (True) or below their threshold.
    max_count : int
        At least the number of candidates (e.g. the number of vertebra voxels).

    Returns
    -------
    tuple of (ndarray of intp, ndarray of bool)
        Flat C-order indices of the candidates, ascending, and whether each is a seed (in the core
        and beyond its seed threshold).
    """
    thresholds = np.ascontiguousarray(thresholds, dtype=np.float64)
    return _kernels.candidates(
        vertebrae,
        intensity,
        code,
        thresholds,
        np.ascontiguousarray(seed_thresholds, dtype=np.float64),
        bright,
        max_count,
        *candidate_bound(thresholds[1:], intensity.dtype, bright),
        candidate_thresholds(thresholds, intensity.dtype, bright),
    )


def candidate_bound(thresholds: np.ndarray, dtype: np.dtype, bright: bool) -> tuple[float, bool]:
    """A value of ``dtype`` that every candidate is beyond (``(bound, True)``), for
    ``_kernels.candidates`` to skip the blocks with no value beyond it; ``(0.0, False)`` when there is
    none to use.

    A candidate is strictly beyond its vertebra's threshold (NaN: none), so beyond the lowest
    threshold (``bright``; the highest for dark lesions); an integer value is above ``t`` exactly when
    it is above ``floor(t)`` (below ``t`` exactly when below ``ceil(t)``), which is then clipped to the
    type's range (a bound outside it skips every block, or none).

    Parameters
    ----------
    thresholds : ndarray of float64
        The vertebrae's thresholds (NaN: no candidate in that vertebra).
    dtype : numpy dtype
        The intensities' type.
    bright : bool
        Candidates above (True) or below their threshold.

    Returns
    -------
    tuple of (float, bool)
    """
    known = thresholds[~np.isnan(thresholds)]  # (an infinite one too: -inf lets every value through)
    t = (float(known.min()) if bright else float(known.max())) if known.size else None
    if np.issubdtype(dtype, np.floating):
        if t is None:
            return (np.inf if bright else -np.inf), True
        return t, True
    if np.dtype(dtype).itemsize >= 8:  # (a 64-bit type's ends are not exact as float64: no bound)
        return 0.0, False
    info = np.iinfo(dtype)
    if t is None:  # no threshold: no candidate; the type's end skips every block
        return (float(info.max) if bright else float(info.min)), True
    b = float(np.floor(t) if bright else np.ceil(t))
    if bright:
        return (float(info.max), True) if b >= info.max else ((b, True) if b >= info.min else (0.0, False))
    return (float(info.min), True) if b <= info.min else ((b, True) if b <= info.max else (0.0, False))


def candidate_thresholds(thresholds: np.ndarray, dtype: np.dtype, bright: bool) -> np.ndarray | None:
    """The thresholds as integers for an integer image: ``t[v]`` (int64, 256 entries, one per uint8
    label) such that an integer value is above ``thresholds[v]`` exactly when it is above ``t[v]``
    (``floor``; below: ``ceil``), label 0 and NaN thresholds never; None for other types.

    Parameters
    ----------
    thresholds : ndarray of float64, shape (n + 1,)
        Per vertebra id (entry 0 unused; NaN: no candidate), n < 256.
    dtype : numpy dtype
        The intensities' type.
    bright : bool
        Candidates above (True) or below their threshold.

    Returns
    -------
    ndarray of int64, shape (256,), or None
        None for float images, 64-bit integers (not exact as float64) and more than 256 ids.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or dtype.itemsize >= 8 or thresholds.size > 256:
        return None
    info = np.iinfo(dtype)
    never = np.iinfo(np.int64).max if bright else np.iinfo(np.int64).min
    out = np.full(256, never, dtype=np.int64)
    t = np.asarray(thresholds[1:], dtype=np.float64)
    ok = ~np.isnan(t)  # (an infinite threshold clips to one beyond the range: always, or never)
    # clipped one beyond the type's range: every value is above (below) a threshold under (over) it
    r = np.clip(np.floor(t[ok]) if bright else np.ceil(t[ok]), float(info.min) - 1, float(info.max) + 1)
    out[1 : thresholds.size][ok] = r.astype(np.int64)
    return out
