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
    "erode_labels_box",
    "box_half_widths",
    "grouped_sort",
    "grouped_medians",
    "robust_threshold",
    "n4_correct",
    "grouped_quantile",
    "trend_median",
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
    intensity : ndarray, shape (I, J, K)
        The image the thresholds apply to: the input itself for integer images,
        else float64 (N4-corrected when requested).
    core : ndarray of bool, shape (I, J, K)
        Vertebra voxels farther than ``margin_mm`` from any other label.
    notes : tuple of str
        Fallbacks taken (empty cores, single vertebra for ``local``, ...).
    voxel_index : ndarray of intp or None
        Flat (C-order) indices of all vertebra voxels, ascending, reused by
        :func:`spinemri.metrics.compute_metrics` (saves a full-volume scan).
    """

    lesion_ids: np.ndarray
    lesion_vertebra: np.ndarray
    thresholds: np.ndarray
    reference_median: np.ndarray
    reference_mad: np.ndarray
    intensity: np.ndarray
    core: np.ndarray
    notes: tuple[str, ...] = field(default_factory=tuple)
    voxel_index: np.ndarray | None = None


# --- helpers -------------------------------------------------------------------------------


def box_half_widths(spacing: tuple[float, float, float], radius_mm: float) -> tuple[int, int, int]:
    """Half-widths in voxels of the erosion box: ``ceil(radius_mm / spacing_a)`` per axis (0 for radius 0).

    Rounding up keeps at least one voxel along every axis for any positive
    radius, so the outer voxel layer, where partial volume lives, is always removed.
    """
    if radius_mm <= 0:
        return (0, 0, 0)
    r = np.ceil(radius_mm / np.asarray(spacing, dtype=np.float64) - 1e-9).astype(int)
    return (int(r[0]), int(r[1]), int(r[2]))


def erode_labels(ids: np.ndarray, spacing: tuple[float, float, float], margin_mm: float) -> np.ndarray:
    """Boolean core of every label at once, eroded by ``margin_mm`` (see :func:`erode_labels_box`)."""
    return erode_labels_box(ids, box_half_widths(spacing, margin_mm))


def label_bbox(fg: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box (slices) of the True voxels of a 3-D boolean array, or None when there are none."""
    p01: np.ndarray = np.any(fg, axis=2)
    if not p01.any():
        return None
    out = []
    for proj in (np.any(p01, axis=1), np.any(p01, axis=0), np.any(fg, axis=(0, 1))):
        nz = np.flatnonzero(proj)
        out.append(slice(int(nz[0]), int(nz[-1]) + 1))
    return (out[0], out[1], out[2])


def erode_labels_box(
    ids: np.ndarray, half_widths: tuple[int, int, int], bbox: tuple[slice, slice, slice] | None = None
) -> np.ndarray:
    """Voxels of label ``v > 0`` whose whole box neighbourhood has label ``v``.

    The neighbourhood is the box of ``±half_widths[a]`` voxels along each axis
    ``a``; so each label is eroded away from the background *and* from
    touching labels, all labels at once. The image border is not a boundary
    (a vertebra cut by the field of view is not eroded there). Computed with
    separable minimum and maximum filters (a few O(N) passes) on the bounding
    box of all labels (``bbox``, from :func:`label_bbox`, when already known).
    """
    fg = ids > 0
    if not any(half_widths):
        return fg
    bbox = label_bbox(fg) if bbox is None else bbox
    if bbox is None:
        return fg
    from scipy import ndimage

    box = []
    for ax in range(3):
        lo = max(bbox[ax].start - half_widths[ax], 0)
        hi = min(bbox[ax].stop + half_widths[ax], ids.shape[ax])
        box.append(slice(lo, hi))
    sub = ids[tuple(box)]
    size = tuple(2 * h + 1 for h in half_widths)
    lo_f = ndimage.minimum_filter(sub, size=size, mode="nearest")
    hi_f = ndimage.maximum_filter(sub, size=size, mode="nearest")
    out = np.zeros(ids.shape, dtype=bool)
    out[tuple(box)] = (lo_f == hi_f) & (sub > 0)
    return out


def grouped_sort(
    values: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


#: Largest histogram (groups x intensity bins) used for exact medians of integer-valued data.
MAX_HISTOGRAM_BINS = 1 << 25


def _grouped_medians_hist(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray | None:
    """Exact medians by per-group histograms when ``2·values`` are integers in a small range; else None."""
    if values.size == 0:
        return None
    lo, hi = values.min(), values.max()
    if np.issubdtype(values.dtype, np.integer):  # no check needed
        span = int(hi) - int(lo)
        if span * n_groups > MAX_HISTOGRAM_BINS:
            return None
        return _hist_medians(values.astype(np.int64) - int(lo), groups, n_groups, span + 1, float(lo), 1.0)
    lo, hi = float(lo), float(hi)
    for scale in (1.0, 2.0):
        fspan = (hi - lo) * scale
        if fspan * n_groups > MAX_HISTOGRAM_BINS:
            return None
        scaled = (values - lo) * scale
        as_int = scaled.astype(np.int64)
        if np.array_equal(as_int, scaled):
            break
    else:
        return None
    return _hist_medians(as_int, groups, n_groups, int(fspan) + 1, lo, scale)


def _hist_medians(
    as_int: np.ndarray, groups: np.ndarray, n_groups: int, nbins: int, lo: float, scale: float
) -> np.ndarray:
    hist = np.bincount(groups.astype(np.int64) * nbins + as_int, minlength=n_groups * nbins).reshape(
        n_groups, nbins
    )
    cum = np.cumsum(hist, axis=1)
    counts = cum[:, -1]
    out = np.full(n_groups, np.nan)
    for g in np.flatnonzero(counts):
        n = int(counts[g])
        a = int(np.searchsorted(cum[g], (n - 1) // 2 + 1))  # bin of the ((n-1)//2)-th smallest (0-based)
        b = int(np.searchsorted(cum[g], n // 2 + 1))
        out[g] = lo + (a + b) / (2.0 * scale)
    return out


def grouped_medians(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Exact per-group medians (as :func:`numpy.median`; NaN for an empty group).

    Integer-valued (or half-integer) data, the usual MR and CT case, go through
    one per-group histogram (``np.bincount``); other data through one sort.
    """
    values = np.asarray(values)
    if not (np.issubdtype(values.dtype, np.integer) or values.dtype == np.float64):
        values = values.astype(np.float64)
    hist = _grouped_medians_hist(values, np.asarray(groups), n_groups)
    if hist is not None:
        return hist
    s, starts, counts = grouped_sort(values.astype(np.float64, copy=False), groups, n_groups)
    return np.array([_sorted_median(s, int(a), int(n)) for a, n in zip(starts, counts, strict=True)])


def robust_threshold(values: np.ndarray, k: float, polarity: str) -> tuple[float, float, float]:
    """``(threshold, median, mad)`` with threshold = median ± k·1.4826·MAD (``+`` for bright)."""
    values = np.asarray(values)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    if np.issubdtype(values.dtype, np.integer):
        # exact medians (numpy's definition) through one histogram each: deviations are half-integers
        zeros = np.zeros(values.size, dtype=np.intp)
        med = float(grouped_medians(values, zeros, 1)[0])
        mad = float(grouped_medians(np.abs(values - med), zeros, 1)[0])
    else:
        values = values.astype(np.float64, copy=False)
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

    out, n = cc3d.connected_components(binary_or_labels, connectivity=connectivity, return_N=True)  # type: ignore[call-overload]
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
        raise GeometryError(
            f"image shape {image.shape} differs from the vertebra mask shape {vertebrae.shape}"
        )
    notes: list[str] = []
    n = int(vertebrae.max()) if vertebrae.size else 0
    fg = vertebrae > 0
    # integer images stay integer (exact, and no full-volume float copy); other types become float64
    intensity = image if np.issubdtype(image.dtype, np.integer) else np.asarray(image, dtype=np.float64)
    if p.n4 and n > 0:
        intensity = n4_correct(
            intensity, fg, spacing, shrink=int(p.n4_shrink), iterations=int(p.n4_iterations)
        )
        notes.append("N4 bias-field correction applied before thresholding")

    thresholds = np.full(n + 1, np.nan)
    ref_med = np.full(n + 1, np.nan)
    ref_mad = np.full(n + 1, np.nan)
    empty_ids = np.zeros(image.shape, dtype=np.int32)
    if n == 0:
        return LesionSegmentation(
            empty_ids, np.zeros(1, np.int64), thresholds, ref_med, ref_mad, intensity, fg
        )

    bbox = label_bbox(fg)
    core = erode_labels_box(vertebrae, box_half_widths(spacing, p.margin_mm), bbox)
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
        thresholds[1:], ref_med[1:], ref_mad[1:], note = _local_thresholds(ref_vals, ref_vid, n, p)
        if note:
            notes.append(note)

    # candidates: vertebra voxels strictly beyond the threshold of their own vertebra
    # (computed on the flat indices of vertebra voxels only: no full-volume temporaries)
    nzi = np.flatnonzero(fg.ravel())
    vv = vertebrae.ravel()[nzi]
    vals = intensity.ravel()[nzi]
    with np.errstate(invalid="ignore"):
        beyond = (vals > thresholds[vv]) if p.polarity == "bright" else (vals < thresholds[vv])
    cand_idx = nzi[beyond]
    # hysteresis: a lesion must hold at least one core voxel beyond the (stricter) seed threshold
    seed_ok = core.ravel()[cand_idx]
    if p.method in ("robust", "local"):
        sign = 1.0 if p.polarity == "bright" else -1.0
        seed_t = ref_med + sign * max(p.seed_k, p.k) * MAD_TO_SD * ref_mad
        cv, cvals = vv[beyond], vals[beyond]
        with np.errstate(invalid="ignore"):
            seed_ok &= (cvals > seed_t[cv]) if p.polarity == "bright" else (cvals < seed_t[cv])
    lesion_ids, lesion_vertebra = _components(
        cand_idx, cand_idx[seed_ok], vertebrae, spacing, p, intensity, ref_med, core
    )
    return LesionSegmentation(
        lesion_ids, lesion_vertebra, thresholds, ref_med, ref_mad, intensity, core, tuple(notes), nzi
    )


def trend_median(positions: np.ndarray, values: np.ndarray, at: float) -> float:
    """Median of ``values`` after removing a robust linear trend, evaluated at position ``at``.

    The slope is Siegel's repeated median (for each point the median of its
    slopes to the others, then the median of those; breakdown point 50 %, so
    one outlying neighbour among four cannot tilt it; 0 with fewer than 3
    points); the result is ``median(values - slope * (positions - at))``.
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


def _local_thresholds(
    values: np.ndarray, vid: np.ndarray, n: int, p: SegmentParams
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
    """
    med = grouped_medians(values, vid, n + 1)
    mad = grouped_medians(np.abs(values - med[vid]), vid, n + 1)
    present = [v for v in range(1, n + 1) if not np.isnan(med[v])]
    out_t, out_m, out_d = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    note = ""
    if len(present) == 1:
        note = "local method with a single vertebra: its reference is its own marrow"
    k_nb = int(p.neighbours)
    sign = 1.0 if p.polarity == "bright" else -1.0
    for pos, v in enumerate(present):
        window = [q for q in range(max(pos - k_nb, 0), min(pos + k_nb + 1, len(present))) if q != pos]
        if pos - k_nb < 0 or pos + k_nb >= len(present):
            window = sorted(
                q for _, q in sorted((abs(q - pos), q) for q in range(len(present)) if q != pos)[: 2 * k_nb]
            )
        if not window:
            window = [pos]
        nbrs = np.array([present[q] for q in window])
        m = trend_median(np.array(window, dtype=np.float64), med[nbrs], float(pos))
        d = float(np.median(mad[nbrs]))
        out_t[v - 1], out_m[v - 1], out_d[v - 1] = m + sign * p.k * MAD_TO_SD * d, m, d
    return out_t, out_m, out_d, note


def _filter(
    cand_idx: np.ndarray,
    seed_idx: np.ndarray,
    shape: tuple[int, ...],
    spacing: tuple[float, float, float],
    p: SegmentParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Components of candidate voxels (flat indices) holding a seed voxel and of >= ``min_lesion_mm3``.

    Returns the flat indices of the kept voxels and their component ids.
    """
    size = int(np.prod(shape))
    cand = np.zeros(size, dtype=bool)
    cand[cand_idx] = True
    comp, n_comp = _cc(cand.reshape(shape), p.connectivity)
    flat = comp.ravel()
    lab = flat[cand_idx].astype(np.intp)
    sizes = np.bincount(lab, minlength=n_comp + 1)
    seeded = np.bincount(flat[seed_idx].astype(np.intp), minlength=n_comp + 1)
    voxel_mm3 = float(np.prod(spacing))
    keep = (sizes * voxel_mm3 >= p.min_lesion_mm3 - 1e-9) & (seeded > 0)
    keep[0] = False
    sel = keep[lab]
    return cand_idx[sel], lab[sel]


def grouped_quantile(values: np.ndarray, groups: np.ndarray, n_groups: int, q: float) -> np.ndarray:
    """Per-group ``q`` quantile, ``method="lower"`` of :func:`numpy.quantile` (NaN for an empty group)."""
    s, starts, counts = grouped_sort(np.asarray(values, dtype=np.float64), groups, n_groups)
    out = np.full(n_groups, np.nan)
    ok = counts > 0
    pos = starts[ok] + np.floor(q * (counts[ok] - 1) + 1e-9).astype(np.int64)
    out[ok] = s[pos]
    return out


#: Quantile of a lesion's voxel intensities that bounds its contrast range; the plateau
#: (fully replaced) intensity is the median of its voxels in the upper quarter of that range.
PLATEAU_QUANTILE = 0.9


def _background_level(
    intensity: np.ndarray,
    vertebrae: np.ndarray,
    clean: np.ndarray,
    region: np.ndarray,
    n: int,
    fallback: np.ndarray,
) -> np.ndarray:
    """Per vertebra median of ``clean`` voxels, or ``fallback`` when they are under 25 % of ``region``."""
    med = grouped_medians(intensity[clean], vertebrae[clean].astype(np.int64), n + 1)
    n_clean = np.bincount(vertebrae[clean].ravel(), minlength=n + 1)
    n_region = np.bincount(vertebrae[region].ravel(), minlength=n + 1)
    return np.where(n_clean >= 0.25 * np.maximum(n_region, 1), med, fallback)


def _components(
    cand_idx: np.ndarray,
    seed_idx: np.ndarray,
    vertebrae: np.ndarray,
    spacing: tuple[float, float, float],
    p: SegmentParams,
    intensity: np.ndarray,
    reference_median: np.ndarray,
    core: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Filter candidate components, refine their boundary, then split them by vertebra.

    ``cand_idx`` and ``seed_idx`` are flat indices of candidate and seed voxels;
    ``core`` is the eroded vertebrae.
    """
    shape = vertebrae.shape
    if cand_idx.size == 0:
        return np.zeros(shape, dtype=np.int32), np.zeros(1, dtype=np.int64)
    kept_idx, cid = _filter(cand_idx, seed_idx, shape, spacing, p)
    if p.half_contrast and kept_idx.size:
        # partial-volume boundary: a voxel is lesion when it is closer to the lesion's plateau
        # intensity than to the surrounding marrow's, i.e. when more than half of it is lesion
        n = int(vertebrae.max())
        cand_flat = np.zeros(vertebrae.size, dtype=bool)
        cand_flat[cand_idx] = True
        cand = cand_flat.reshape(shape)
        # surface voxels (a 26-neighbour outside the vertebra) mix lesion with cortex and outside
        # tissue rather than with marrow: their non-lesion level is estimated separately
        same = box_half_widths(spacing, p.margin_mm) == (1, 1, 1)
        interior = core if same else erode_labels_box(vertebrae, (1, 1, 1), label_bbox(vertebrae > 0))
        surface = (vertebrae > 0) & ~interior
        level_in = _background_level(intensity, vertebrae, core & ~cand, core, n, reference_median)
        pooled_surface = surface & ~cand
        fallback = np.full(n + 1, np.median(intensity[pooled_surface]) if pooled_surface.any() else np.nan)
        fallback = np.where(np.isnan(fallback), reference_median, fallback)
        level_surf = _background_level(intensity, vertebrae, pooled_surface, surface, n, fallback)
        vals = intensity.ravel()[kept_idx]
        vv = vertebrae.ravel()[kept_idx]
        ref = np.where(interior.ravel()[kept_idx], level_in[vv], level_surf[vv])
        q = PLATEAU_QUANTILE if p.polarity == "bright" else 1.0 - PLATEAU_QUANTILE
        n_c = int(cid.max()) + 1
        top = grouped_quantile(vals, cid, n_c, q)
        # plateau: median of the voxels in the upper quarter of the contrast range (mostly pure lesion),
        # less biased by noise than the quantile itself
        upper = (vals - (ref + 0.75 * (top[cid] - ref))) * (1.0 if p.polarity == "bright" else -1.0) >= 0
        plateau = grouped_medians(vals[upper].astype(np.float64), cid[upper], n_c)
        plateau = np.where(np.isnan(plateau), top, plateau)
        cut = (ref + plateau[cid]) / 2.0
        inside = vals > cut if p.polarity == "bright" else vals < cut
        refined = kept_idx[inside]
        seeds = np.zeros(vertebrae.size, dtype=bool)
        seeds[seed_idx] = True
        kept_idx, cid = _filter(refined, refined[seeds[refined]], shape, spacing, p)
    # one labelling pass over all vertebrae at once: lesion voxels carry their vertebra id,
    # so cc3d's multi-label components never cross a vertebra boundary
    by_vertebra = np.zeros(
        vertebrae.size, dtype=vertebrae.dtype if vertebrae.dtype.itemsize <= 4 else np.uint32
    )
    by_vertebra[kept_idx] = vertebrae.ravel()[kept_idx]
    ids, n_ids = _cc(by_vertebra.reshape(shape), p.connectivity)
    ids = ids.astype(np.int32, copy=False)
    lesion_vertebra = np.zeros(n_ids + 1, dtype=np.int64)
    lesion_vertebra[ids.ravel()[kept_idx]] = by_vertebra[kept_idx]
    return ids, lesion_vertebra
