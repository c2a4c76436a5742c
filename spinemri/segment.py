"""Per-vertebra lesion segmentation: thresholds from robust marrow statistics → lesion label map.

Pure functions on arrays (no file I/O). The input is an image array and a
*vertebra id* array on the same grid, where ids ``1..n`` number the vertebrae
present in cranial → caudal order (``0`` = not a vertebra); the mapping from
mask labels to levels is done by :mod:`spinemri.measure`.

Algorithm (DESIGN §4; parameters in :class:`~spinemri.params.SegmentParams`):

1. optional N4 bias-field correction (SimpleITK), masked to the vertebrae;
2. each vertebra is eroded by ``margin_mm`` (its *core*); the reference
   statistics use core voxels only, so partial volume with bright discs and
   dark cortex does not enter them;
3. a threshold per vertebra: ``robust`` median ± k·1.4826·MAD of the pooled
   cores of all vertebrae; ``local`` the same statistic of the pooled cores of
   up to ``neighbours`` vertebrae on each side, the vertebra itself excluded;
   ``otsu`` Otsu's threshold of the vertebra's own core; ``fixed`` a constant;
4. candidate voxels: vertebra voxels strictly above (``bright``) or below
   (``dark``) their vertebra's threshold;
5. 3-D connected components of the candidates (``connectivity``), over the
   whole spine: a component is kept when it reaches at least one core voxel
   and its volume is at least ``min_lesion_mm3``;
6. kept voxels are split by vertebra and re-labelled so that components never
   cross a vertebra boundary: a lesion crossing an endplate counts once in
   each vertebra it touches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .errors import GeometryError
from .params import SegmentParams

__all__ = [
    "MAD_TO_SD",
    "LesionSegmentation",
    "segment_lesions",
    "erode_labels",
    "ellipsoid_footprint",
    "grouped_sort",
    "grouped_medians",
    "robust_threshold",
    "n4_correct",
]

logger = logging.getLogger(__name__)

#: Scale factor turning a median absolute deviation into a normal standard deviation.
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class LesionSegmentation:
    """Result of :func:`segment_lesions`.

    Attributes
    ----------
    lesion_ids : ndarray of int32, shape (I, J, K)
        0 = no lesion; ``1..N`` = lesion components, each inside one vertebra,
        numbered in order of their vertebra id and then of their first voxel
        in C order (renumbered by :mod:`spinemri.metrics` for output).
    lesion_vertebra : ndarray of int64, shape (N + 1,)
        Vertebra id of each lesion id (entry 0 unused, 0).
    thresholds, reference_median, reference_mad : ndarray of float64, shape (n + 1,)
        Per vertebra id (entry 0 unused, NaN): the intensity threshold and the
        reference median and MAD it was computed from.
    intensity : ndarray of float64, shape (I, J, K)
        The image the thresholds apply to (N4-corrected when requested).
    core : ndarray of bool, shape (I, J, K)
        Vertebra voxels farther than ``margin_mm`` from any other label.
    notes : tuple of str
        Fallbacks taken (empty cores, single vertebra for ``local``, ...).
    """

    lesion_ids: np.ndarray
    lesion_vertebra: np.ndarray
    thresholds: np.ndarray
    reference_median: np.ndarray
    reference_mad: np.ndarray
    intensity: np.ndarray
    core: np.ndarray
    notes: tuple[str, ...] = field(default_factory=tuple)


# --- helpers -------------------------------------------------------------------------------


def ellipsoid_footprint(spacing: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """Boolean footprint of voxel offsets within ``radius_mm`` (physical distance).

    The footprint is ``(2·r_i + 1, 2·r_j + 1, 2·r_k + 1)`` with
    ``r_a = floor(radius_mm / spacing_a)``; offset ``d`` is included when
    ``Σ (d_a · spacing_a)² <= radius_mm²``. An axis whose spacing exceeds the
    radius gets size 1 (no erosion along it).
    """
    sp = np.asarray(spacing, dtype=np.float64)
    r = np.floor(radius_mm / sp + 1e-9).astype(int)
    grids = np.ogrid[tuple(slice(-int(n), int(n) + 1) for n in r)]
    dist2 = sum((g * s) ** 2 for g, s in zip(grids, sp))
    return np.asarray(dist2 <= radius_mm**2 + 1e-9)


def erode_labels(ids: np.ndarray, spacing: tuple[float, float, float], margin_mm: float) -> np.ndarray:
    """Boolean core of every label at once: voxels whose ``margin_mm`` neighbourhood has one label.

    A voxel of label ``v > 0`` is kept when every voxel within ``margin_mm``
    (see :func:`ellipsoid_footprint`) also has label ``v``; so each label is
    eroded away from the background *and* from touching labels. The image
    border is not a boundary (a truncated vertebra is not eroded there).
    Computed with one minimum and one maximum filter on the bounding box of
    all labels.
    """
    fg = ids > 0
    if margin_mm <= 0 or not np.any(fg):
        return fg
    fp = ellipsoid_footprint(spacing, margin_mm)
    if fp.sum() == 1:
        return fg
    from scipy import ndimage

    pad = [s // 2 for s in fp.shape]
    box = []
    for ax in range(3):
        any_ax = np.any(fg, axis=tuple(a for a in range(3) if a != ax))
        nz = np.flatnonzero(any_ax)
        lo = max(int(nz[0]) - pad[ax], 0)
        hi = min(int(nz[-1]) + pad[ax] + 1, ids.shape[ax])
        box.append(slice(lo, hi))
    sub = ids[tuple(box)]
    lo_f = ndimage.minimum_filter(sub, footprint=fp, mode="nearest")
    hi_f = ndimage.maximum_filter(sub, footprint=fp, mode="nearest")
    out = np.zeros(ids.shape, dtype=bool)
    out[tuple(box)] = (lo_f == hi_f) & (sub > 0)
    return out


def grouped_sort(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort ``values`` by ``(group, value)``.

    Returns ``(sorted_values, starts, counts)`` where group ``g``'s values,
    ascending, are ``sorted_values[starts[g]:starts[g] + counts[g]]``
    (``g = 0..n_groups-1``). One value sort plus one stable integer sort.
    """
    order = np.argsort(values, kind="stable")
    g_sorted = groups[order]
    order2 = np.argsort(g_sorted, kind="stable")
    sorted_values = values[order][order2]
    counts = np.bincount(groups, minlength=n_groups)[:n_groups]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return sorted_values, starts, counts


def _sorted_median(a: np.ndarray, start: int, n: int) -> float:
    if n == 0:
        return float("nan")
    return float((a[start + (n - 1) // 2] + a[start + n // 2]) / 2.0)


def grouped_medians(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Exact per-group medians (as :func:`numpy.median`; NaN for an empty group)."""
    s, starts, counts = grouped_sort(np.asarray(values, dtype=np.float64), groups, n_groups)
    return np.array([_sorted_median(s, int(a), int(n)) for a, n in zip(starts, counts)])


def robust_threshold(values: np.ndarray, k: float, polarity: str) -> tuple[float, float, float]:
    """``(threshold, median, mad)`` with threshold = median ± k·1.4826·MAD (``+`` for bright)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med)))
    sign = 1.0 if polarity == "bright" else -1.0
    return med + sign * k * MAD_TO_SD * mad, med, mad


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    if values.min() == values.max():
        return float(values[0])
    return float(threshold_otsu(values))


def n4_correct(
    image: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    shrink: int = 2,
    iterations: int = 50,
) -> np.ndarray:
    """N4 bias-field corrected copy of ``image`` (SimpleITK), fitted inside ``mask``.

    The bias field is estimated on an image shrunk by ``shrink`` and applied at
    full resolution (``image / exp(log_bias)``), so the correction is smooth.
    Intensities must be positive; the image is shifted to a minimum of 1 for
    the fit and shifted back.
    """
    import SimpleITK as sitk

    img = np.asarray(image, dtype=np.float32)
    shift = float(1.0 - img.min()) if img.min() < 1.0 else 0.0
    # SimpleITK indexes arrays (k, j, i); only spacing matters for a smooth bias field.
    sitk_img = sitk.GetImageFromArray(np.ascontiguousarray((img + shift).transpose(2, 1, 0)))
    sitk_img.SetSpacing(tuple(float(s) for s in spacing))
    sitk_mask = sitk.GetImageFromArray(np.ascontiguousarray(mask.astype(np.uint8).transpose(2, 1, 0)))
    sitk_mask.CopyInformation(sitk_img)
    small = sitk.Shrink(sitk_img, [int(shrink)] * 3) if shrink > 1 else sitk_img
    small_mask = sitk.Shrink(sitk_mask, [int(shrink)] * 3) if shrink > 1 else sitk_mask
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([int(iterations)] * 4)
    n4.Execute(small, small_mask)
    log_bias = n4.GetLogBiasFieldAsImage(sitk_img)
    bias = np.exp(sitk.GetArrayFromImage(log_bias).transpose(2, 1, 0).astype(np.float64))
    return (img.astype(np.float64) + shift) / bias - shift


def _cc(binary_or_labels: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    import cc3d

    out, n = cc3d.connected_components(binary_or_labels, connectivity=connectivity, return_N=True)
    return out, int(n)


# --- the segmentation ------------------------------------------------------------------------


def segment_lesions(
    image: np.ndarray,
    vertebrae: np.ndarray,
    spacing: tuple[float, float, float],
    params: SegmentParams | None = None,
) -> LesionSegmentation:
    """Threshold each vertebra and return the lesion components.

    Parameters
    ----------
    image : ndarray of shape (I, J, K)
        Image intensities (any numeric dtype).
    vertebrae : ndarray of int, shape (I, J, K)
        Vertebra ids ``1..n`` in cranial → caudal order, 0 elsewhere.
    spacing : tuple of 3 float
        Voxel size in mm along i, j, k.
    params : SegmentParams, optional
        Defaults to ``SegmentParams()``.

    Returns
    -------
    LesionSegmentation

    Raises
    ------
    GeometryError
        When ``image`` and ``vertebrae`` have different shapes.

    Notes
    -----
    Thresholds (``c`` = 1.4826, the MAD → SD factor for normal data):
    ``robust``: ``T = median(M) + k·c·MAD(M)`` over the pooled cores ``M`` of
    all vertebrae (``-`` for ``dark``); ``local``: the same over the pooled
    cores of the ``neighbours`` vertebrae cranial and caudal of each
    vertebra, itself excluded; ``otsu``: Otsu's threshold of the vertebra's
    core; ``fixed``: ``fixed_threshold``. A lesion voxel is strictly above
    (``bright``) or below (``dark``) ``T``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((6, 6, 6), 100.0); img[2:4, 2:4, 2:4] = 300.0
    >>> vert = np.zeros((6, 6, 6), int); vert[1:5, 1:5, 1:5] = 1
    >>> seg = segment_lesions(img, vert, (1.0, 1.0, 1.0), SegmentParams(margin_mm=0, min_lesion_mm3=0))
    >>> int((seg.lesion_ids > 0).sum()), float(seg.thresholds[1])
    (8, 100.0)
    """
    p = params or SegmentParams()
    image = np.asarray(image)
    vertebrae = np.asarray(vertebrae)
    if image.shape != vertebrae.shape:
        raise GeometryError(f"image shape {image.shape} differs from the vertebra mask shape {vertebrae.shape}")
    notes: list[str] = []
    n = int(vertebrae.max()) if vertebrae.size else 0
    fg = vertebrae > 0
    intensity = np.asarray(image, dtype=np.float64)
    if p.n4 and n > 0:
        intensity = n4_correct(intensity, fg, spacing, shrink=int(p.n4_shrink), iterations=int(p.n4_iterations))
        notes.append("N4 bias-field correction applied before thresholding")

    thresholds = np.full(n + 1, np.nan)
    ref_med = np.full(n + 1, np.nan)
    ref_mad = np.full(n + 1, np.nan)
    empty_ids = np.zeros(image.shape, dtype=np.int32)
    if n == 0:
        return LesionSegmentation(empty_ids, np.zeros(1, np.int64), thresholds, ref_med, ref_mad, intensity, fg)

    core = erode_labels(vertebrae, spacing, p.margin_mm)
    core_counts = np.bincount(vertebrae[core].ravel(), minlength=n + 1)
    all_counts = np.bincount(vertebrae[fg].ravel(), minlength=n + 1)
    # a vertebra whose core is empty (thinner than 2·margin) is represented by all its voxels
    thin = np.flatnonzero((core_counts == 0) & (all_counts > 0))
    thin = thin[thin > 0]
    ref_region = core
    if thin.size:
        ref_region = core | np.isin(vertebrae, thin)
        notes.append(
            f"{thin.size} vertebra(e) thinner than twice margin_mm={p.margin_mm:g} mm: "
            "their reference voxels include the rim"
        )
    ref_vals = intensity[ref_region]
    ref_vid = vertebrae[ref_region].astype(np.int64)

    if p.method in ("robust", "otsu", "fixed"):
        t, med, mad = robust_threshold(ref_vals, p.k, p.polarity)
        thresholds[1:], ref_med[1:], ref_mad[1:] = t, med, mad
        if p.method == "otsu":
            s, starts, counts = grouped_sort(ref_vals, ref_vid, n + 1)
            for v in range(1, n + 1):
                thresholds[v] = _otsu(s[starts[v] : starts[v] + counts[v]])
        elif p.method == "fixed":
            thresholds[1:] = float(p.fixed_threshold)  # type: ignore[arg-type]
    else:  # local
        s, starts, counts = grouped_sort(ref_vals, ref_vid, n + 1)
        present = [v for v in range(1, n + 1) if counts[v] > 0]
        if len(present) == 1:
            notes.append("local method with a single vertebra: its reference is its own marrow")
        for pos, v in enumerate(present):
            lo, hi = max(pos - int(p.neighbours), 0), pos + int(p.neighbours) + 1
            nbrs = [u for u in present[lo:hi] if u != v] or [v]
            pooled = np.concatenate([s[starts[u] : starts[u] + counts[u]] for u in nbrs])
            thresholds[v], ref_med[v], ref_mad[v] = robust_threshold(pooled, p.k, p.polarity)

    # candidates: strictly beyond the threshold of their own vertebra
    t_vox = thresholds[vertebrae]  # NaN outside vertebrae -> comparisons False
    with np.errstate(invalid="ignore"):
        cand = (intensity > t_vox) if p.polarity == "bright" else (intensity < t_vox)
    cand &= fg
    lesion_ids, lesion_vertebra = _components(cand, core, vertebrae, spacing, p)
    return LesionSegmentation(lesion_ids, lesion_vertebra, thresholds, ref_med, ref_mad, intensity, core, tuple(notes))


def _components(
    cand: np.ndarray,
    core: np.ndarray,
    vertebrae: np.ndarray,
    spacing: tuple[float, float, float],
    p: SegmentParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Filter candidate components (core reached, minimum volume), then split them by vertebra."""
    if not np.any(cand):
        return np.zeros(cand.shape, dtype=np.int32), np.zeros(1, dtype=np.int64)
    comp, n_comp = _cc(cand, p.connectivity)
    flat = comp.ravel()
    sizes = np.bincount(flat, minlength=n_comp + 1)
    in_core = np.bincount(flat[core.ravel()], minlength=n_comp + 1)
    voxel_mm3 = float(np.prod(spacing))
    keep = (sizes * voxel_mm3 >= p.min_lesion_mm3 - 1e-9) & (in_core > 0)
    keep[0] = False
    kept = keep[comp]
    # one labelling pass over all vertebrae at once: lesion voxels carry their vertebra id,
    # so cc3d's multi-label components never cross a vertebra boundary
    by_vertebra = np.where(kept, vertebrae, 0).astype(np.uint32)
    ids, n_ids = _cc(by_vertebra, p.connectivity)
    ids = ids.astype(np.int32, copy=False)
    lesion_vertebra = np.zeros(n_ids + 1, dtype=np.int64)
    nz = ids > 0
    lesion_vertebra[ids[nz]] = vertebrae[nz]
    return ids, lesion_vertebra
