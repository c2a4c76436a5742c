"""Per-vertebra lesion segmentation: thresholds from robust marrow statistics → lesion label map.

Pure functions on arrays (no file I/O). The input is an image array and a
*vertebra id* array on the same grid, where ids ``1..n`` number the vertebrae
present in cranial → caudal order (``0`` = not a vertebra); the mapping from
mask labels to levels is done by :mod:`spinemri.measure`.

Algorithm (DESIGN §4; parameters in :class:`~spinemri.params.SegmentParams`):

1. optional N4 bias-field correction (SimpleITK), masked to the vertebrae;
2. each vertebra is eroded by ``margin_mm`` (its *core*; the image border is
   a boundary here); the reference statistics use core voxels only, so
   partial volume with bright discs and dark cortex does not enter them;
3. a threshold per vertebra: ``robust`` median ± k·1.4826·MAD of the pooled
   cores of all vertebrae; ``local`` the trend-corrected median of the
   neighbours' core medians (up to ``neighbours`` vertebrae on each side,
   itself excluded) ± k robust SDs; ``otsu`` Otsu's threshold of the
   vertebra's own core; ``fixed`` a constant;
4. candidate voxels: vertebra voxels strictly above (``bright``) or below
   (``dark``) their vertebra's threshold;
5. 3-D connected components of the candidates (``connectivity``), over the
   whole spine: a component is kept when it holds a seed (a core voxel beyond
   ``seed_k`` robust SDs) and its volume is at least ``min_lesion_mm3``;
6. half-contrast boundary on the depth-corrected intensity ``I - bg(d) + M``
   (:func:`depth_classes`; ``bg(d)`` the lesion-free intensity at that depth
   below the vertebra's own surface, ``M`` its marrow level): a voxel is
   lesion when more than half of it is; the lesion's 26-neighbours in its
   vertebra that pass the same test join it (surface voxels that are half
   lesion but mixed with cortex), and step 5 is repeated;
7. kept voxels are split by vertebra and re-labelled so that components never
   cross a vertebra boundary: a lesion crossing an endplate counts once in
   each vertebra it touches.

The passes over the vertebrae's bounding box (erosion and depth classes,
histograms, candidates, components of the candidates, boundary growth) run
in :mod:`spinemri._kernels` (compiled; docs/decisions/0012-compiled-kernels.md).
The numpy functions here (:func:`erode_labels_box`, :func:`depth_classes`,
:func:`grouped_medians`, ...) are their definitions, which the tests compare
them with, and the path of float images.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ._native import kernels as _kernels
from .arrays import nonzero_bbox
from .errors import GeometryError, InputError
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
    "grouped_median_mad",
    "grouped_mean_median",
    "robust_threshold",
    "mad_threshold",
    "n4_correct",
    "grouped_quantile",
    "trend_median",
    "depth_classes",
    "neighbour_windows",
    "N_DEPTH_CLASSES",
    "label_codes",
    "DEPTH_MASK",
    "CORE_BIT",
]

logger = logging.getLogger(__name__)

#: Scale factor turning a median absolute deviation into a normal standard deviation.
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class LesionSegmentation:
    """Result of :func:`segment_lesions`.

    Attributes
    ----------
    lesion_ids : ndarray of uint8, uint16 or int32, shape (I, J, K)
        The smallest of those dtypes holding ``N`` (C order).
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
        Vertebra voxels farther than ``margin_mm`` from any other label
        (a property: built on first use from ``core_box`` and ``box``, so a
        full-size boolean volume is not held by every segmentation).
    core_box : ndarray of bool
        ``core`` inside ``box`` (the vertebrae's bounding box; None: empty).
    notes : tuple of str
        Fallbacks taken (empty cores, single vertebra for ``local``, ...).
    background : ndarray of float64, shape (n + 1,) or None
        Per vertebra id: its lesion-free marrow level, the median of its core
        voxels that are not candidates (the reference median when those are
        under a quarter of the core, e.g. a diffusely replaced vertebra).
    depth_offset : ndarray of float64, shape (n + 1, 4) or None
        Per vertebra id and depth class (:func:`depth_classes`): lesion-free
        intensity at that depth minus ``background`` (0 for the interior
        class 3, and everywhere with ``depth_background=False``).
    """

    lesion_ids: np.ndarray
    lesion_vertebra: np.ndarray
    thresholds: np.ndarray
    reference_median: np.ndarray
    reference_mad: np.ndarray
    intensity: np.ndarray
    core_box: np.ndarray
    box: tuple[slice, slice, slice] | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    background: np.ndarray | None = None
    depth_offset: np.ndarray | None = None

    @property
    def core(self) -> np.ndarray:
        out = np.zeros(self.lesion_ids.shape, dtype=bool)
        if self.box is not None:
            out[self.box] = self.core_box
        return out


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


def erode_labels_box(
    ids: np.ndarray,
    half_widths: tuple[int, int, int],
    bbox: tuple[slice, slice, slice] | None = None,
    *,
    border_is_boundary: bool = False,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Voxels of label ``v > 0`` whose whole box neighbourhood has label ``v``.

    The neighbourhood is the box of ``±half_widths[a]`` voxels along each axis
    ``a``; so each label is eroded away from the background *and* from
    touching labels, all labels at once. By default the image border is not a
    boundary (a vertebra cut by the field of view is not eroded there);
    ``border_is_boundary=True`` treats voxels beyond the image as background.

    ``within``, a boolean result of this function for the same ``ids``, erodes
    that result further instead (box erosions compose: eroding by ``(1, 1, 1)``
    and then by ``(1, 1, 0)`` equals eroding by ``(2, 2, 1)``).

    Computed on the bounding box of all labels (``bbox``, from
    :func:`spinemri.arrays.nonzero_bbox`, when already known), padded by the half-widths, one
    axis at a time: along axis ``a`` a voxel stays when the ``2·h_a``
    consecutive pairs around it all carry one label and were kept by the
    previous axes. On the flattened padded box a step along an axis is a
    constant offset, so each test is a boolean AND of two contiguous slices,
    ``log2(2·h)`` of them per axis (:func:`_window_all`).
    """
    fg = ids > 0 if within is None else within
    if not any(half_widths):
        return fg
    bbox = nonzero_bbox(fg) if bbox is None else bbox
    if bbox is None:
        return fg
    hw = tuple(int(h) for h in half_widths)
    # beyond the box lies background; beyond the image the border rule ('nearest' repeats the edge)
    repeat = [
        (
            bbox[a].start == 0 and not border_is_boundary,
            bbox[a].stop == ids.shape[a] and not border_is_boundary,
        )
        for a in range(3)
    ]
    lab = _pad_box(ids[bbox], hw, repeat)
    keep = _pad_box(fg[bbox], hw, repeat)
    L, K = lab.ravel(), keep.ravel()
    strides = (lab.shape[1] * lab.shape[2], lab.shape[2], 1)
    first = within is None
    for ax in range(3):
        h, s = hw[ax], strides[ax]
        if h == 0:
            continue
        pair = L[:-s] == L[s:]  # pair[x]: x and x + s carry one label (and are kept, below)
        pair &= K[:-s]
        if not first:  # on the first axis keep is ids > 0, which equal labels already imply
            pair &= K[s:]
        first = False
        win = _window_all(pair, 2 * h, s)  # win[x]: pairs x .. x + (2h - 1)·s all good
        # voxel x stays when the pairs from x - h·s to x + (h - 1)·s are good
        K[h * s : h * s + win.size] &= win
        K[: h * s] = False
        K[h * s + win.size :] = False
        _reset_pad(keep, hw, repeat)
    out = np.zeros(ids.shape, dtype=bool)
    out[bbox] = keep[
        hw[0] : keep.shape[0] - hw[0], hw[1] : keep.shape[1] - hw[1], hw[2] : keep.shape[2] - hw[2]
    ]
    return out


def _pad_box(a: np.ndarray, hw: tuple[int, ...], repeat: list[tuple[bool, bool]]) -> np.ndarray:
    """``a`` padded by ``hw[ax]`` on both sides of each axis: zeros, or the edge repeated where ``repeat``."""
    out = np.zeros(tuple(n + 2 * h for n, h in zip(a.shape, hw, strict=True)), dtype=a.dtype)
    out[hw[0] : hw[0] + a.shape[0], hw[1] : hw[1] + a.shape[1], hw[2] : hw[2] + a.shape[2]] = a
    _reset_pad(out, hw, repeat)
    return out


def _reset_pad(a: np.ndarray, hw: tuple[int, ...], repeat: list[tuple[bool, bool]]) -> None:
    """Set the padding layers of ``a`` (in place): the edge repeated where ``repeat``, else zero."""
    for ax, h in enumerate(hw):
        if h == 0:
            continue
        m = np.moveaxis(a, ax, 0)
        n = m.shape[0]
        m[:h] = m[h : h + 1] if repeat[ax][0] else 0
        m[n - h :] = m[n - h - 1 : n - h] if repeat[ax][1] else 0


def _window_all(a: np.ndarray, m: int, step: int = 1) -> np.ndarray:
    """``out[x] = a[x] & a[x + step] & ... & a[x + (m-1)·step]`` (length ``len(a) - (m-1)·step``), by doubling."""
    k = 1
    while 2 * k <= m:
        a = a[: -k * step] & a[k * step :]
        k *= 2
    if k == m:
        return a
    d = (m - k) * step
    return a[: a.size - d] & a[d:]


#: Bits of the code volume of :func:`label_codes`: depth class (0-3) and core membership.
DEPTH_MASK = 3
CORE_BIT = 4


def label_codes(
    vertebrae: np.ndarray, half_widths: tuple[int, int, int], *, depth: bool = True
) -> np.ndarray:
    """Core and depth class of every voxel of a vertebra id box, in one compiled pass.

    Returns a uint8 array of the shape of ``vertebrae`` whose bit 2
    (``CORE_BIT``) is :func:`erode_labels_box` of ``vertebrae`` by
    ``half_widths`` with ``border_is_boundary=True`` and, with ``depth``,
    whose bits 0-1 (``DEPTH_MASK``) are the :func:`depth_classes` of the
    vertebra voxels (0 elsewhere). The numpy functions are the definitions;
    ``spinemri._kernels.label_classes`` computes the same (tests compare them).
    """
    lab = np.asarray(vertebrae)
    if lab.dtype not in (np.uint8, np.uint16, np.uint32, np.uint64) or not lab.flags.c_contiguous:
        if lab.size and int(lab.min()) < 0:
            raise InputError("vertebra ids must be >= 0")
        top = int(lab.max()) if lab.size else 0
        dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if top <= np.iinfo(t).max)
        lab = np.ascontiguousarray(lab, dtype=dtype)
    h = [int(x) for x in half_widths]
    return _kernels.label_classes(lab, h[0], h[1], h[2], bool(depth))


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


class _Hist(NamedTuple):
    """Per-group histograms of (half-)integer values: ``value = lo + bin / scale`` exactly."""

    counts: np.ndarray  # (n_groups, nbins) int64
    lo: float
    scale: float  # 1 or 2

    def pooled(self) -> _Hist:
        """One histogram of all groups together."""
        return _Hist(self.counts.sum(axis=0, keepdims=True), self.lo, self.scale)

    def bin_values(self) -> np.ndarray:
        """The value of each bin, exactly."""
        return self.lo + np.arange(self.counts.shape[1]) / self.scale

    def mean(self) -> np.ndarray:
        """Mean of each group (NaN when empty): ``sum(count_b · value_b) / n``, the exact sum of the
        values as long as it stays below 2**53, as a float64 running sum is."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.counts @ self.bin_values()) / self.counts.sum(axis=1)

    def medians(self) -> np.ndarray:
        """Exact median of each group (NaN when empty)."""
        return self.lo + _hist_double_medians(self.counts) / (2.0 * self.scale)


def _histograms(values: np.ndarray, groups: np.ndarray, n_groups: int) -> _Hist | None:
    """Per-group histograms (one ``np.bincount``) when ``values`` are (half-)integers in a range small
    enough for ``n_groups`` histograms; else None (the caller sorts instead)."""
    if values.size == 0:
        return None
    lo, hi = values.min(), values.max()
    if np.issubdtype(values.dtype, np.integer):  # no check needed
        span = int(hi) - int(lo)
        if span * n_groups > MAX_HISTOGRAM_BINS:
            return None
        units, nbins, lo_f, scale = np.subtract(values, int(lo), dtype=np.intp), span + 1, float(lo), 1.0
    else:
        lo_f, hi_f = float(lo), float(hi)
        for scale in (1.0, 2.0):
            fspan = (hi_f - lo_f) * scale
            if fspan * n_groups > MAX_HISTOGRAM_BINS:
                return None
            scaled = (values - lo_f) * scale
            units = scaled.astype(np.intp)
            if np.array_equal(units, scaled):
                nbins = int(fspan) + 1
                break
        else:
            return None
    if n_groups == 1:
        counts = np.bincount(units, minlength=nbins).reshape(1, nbins)
    else:
        key = np.asarray(groups).astype(np.intp) * nbins + units
        counts = np.bincount(key, minlength=n_groups * nbins).reshape(n_groups, nbins)
    return _Hist(counts, lo_f, scale)


def _hist_double_medians(hist: np.ndarray) -> np.ndarray:
    """Twice the median bin of each row of a histogram (``a + b``, the two middle order statistics'
    bins; float, NaN for an empty row), as :func:`numpy.median` defines the median."""
    cum = np.cumsum(hist, axis=1)
    counts = cum[:, -1]
    # the bin of the m-th smallest value (0-based) is the number of bins whose running count is <= m,
    # i.e. np.searchsorted(cum[g], m + 1), for all rows at once
    a = (cum < ((counts - 1) // 2 + 1)[:, None]).sum(axis=1)  # the ((n-1)//2)-th smallest
    b = (cum < (counts // 2 + 1)[:, None]).sum(axis=1)  # the (n//2)-th smallest
    return np.where(counts > 0, (a + b).astype(np.float64), np.nan)


def _hist_median_mad(h: _Hist) -> tuple[np.ndarray, np.ndarray]:
    """Per-row median and median absolute deviation from histograms of integer units.

    The deviation of bin ``b`` from a median at ``m2 / 2`` bins is ``|2b - m2| / 2``
    bins; the deviations' own histogram (in half bins, weighted by the counts)
    gives the MAD without a pass over the values again.
    """
    m2 = _hist_double_medians(h.counts)
    mad = np.full(h.counts.shape[0], np.nan)
    for g in np.flatnonzero(np.isfinite(m2)):
        b = np.flatnonzero(h.counts[g])
        d2 = np.abs(2 * b - int(m2[g]))
        dev_hist = np.bincount(d2, weights=h.counts[g, b], minlength=int(d2.max()) + 1)
        mad[g] = _hist_double_medians(dev_hist.reshape(1, -1))[0] / (4.0 * h.scale)
    return h.lo + m2 / (2.0 * h.scale), mad


def grouped_medians(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Exact per-group medians (as :func:`numpy.median`; NaN for an empty group).

    Integer-valued (or half-integer) data, the usual MR and CT case, go through
    one per-group histogram (``np.bincount``); other data through one sort.
    """
    values = _numeric(values)
    h = _histograms(values, groups, n_groups)
    if h is not None:
        return h.medians()
    s, starts, counts = grouped_sort(values.astype(np.float64, copy=False), groups, n_groups)
    return np.array([_sorted_median(s, int(a), int(n)) for a, n in zip(starts, counts, strict=True)])


def grouped_median_mad(
    values: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-group median and median absolute deviation (NaN for an empty group).

    As ``grouped_medians(values)`` and ``grouped_medians(|values - median|)``;
    for (half-)integer data from one histogram pass over the values.
    """
    values = _numeric(values)
    h = _histograms(values, groups, n_groups)
    if h is not None:
        return _hist_median_mad(h)
    med = grouped_medians(values, groups, n_groups)
    return med, grouped_medians(np.abs(values - med[groups]), groups, n_groups)


def grouped_mean_median(
    values: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group mean and exact median (NaN for an empty group); one histogram for (half-)integer data
    (:meth:`_Hist.mean`)."""
    values = _numeric(values)
    h = _histograms(values, groups, n_groups)
    if h is not None:
        return h.mean(), h.medians()
    count = np.bincount(groups, minlength=n_groups)[:n_groups].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(groups, weights=values, minlength=n_groups)[:n_groups] / count
    return mean, grouped_medians(values, groups, n_groups)


def _numeric(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if not (np.issubdtype(values.dtype, np.integer) or values.dtype == np.float64):
        values = values.astype(np.float64)
    return values


def mad_threshold(median: Any, mad: Any, k: float, polarity: str) -> Any:
    """``median ± k·1.4826·mad`` (``+`` for bright): the robust threshold, scalars or arrays."""
    return median + (1.0 if polarity == "bright" else -1.0) * k * MAD_TO_SD * mad


def robust_threshold(values: np.ndarray, k: float, polarity: str) -> tuple[float, float, float]:
    """``(threshold, median, mad)`` with threshold = median ± k·1.4826·MAD (``+`` for bright)."""
    values = np.asarray(values)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    meds, mads = grouped_median_mad(values, np.zeros(values.size, dtype=np.intp), 1)
    med, mad = float(meds[0]), float(mads[0])
    return mad_threshold(med, mad, k, polarity), med, mad


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
    *,
    bbox: tuple[slice, slice, slice] | None = None,
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
    bbox : tuple of 3 slice, optional
        The bounding box of ``vertebrae > 0``
        (:func:`spinemri.arrays.nonzero_bbox`) when already known.

    Returns
    -------
    LesionSegmentation

    Raises
    ------
    GeometryError
        When ``image`` and ``vertebrae`` have different shapes.
    InputError
        When the vertebra ids go beyond 255.

    Notes
    -----
    Thresholds (``c`` = 1.4826, the MAD → SD factor for normal data):
    ``robust``: ``T = median(M) + k·c·MAD(M)`` over the pooled cores ``M`` of
    all vertebrae (``-`` for ``dark``); ``local``: the same over the pooled
    cores of the ``neighbours`` vertebrae cranial and caudal of each
    vertebra, itself excluded; ``otsu``: Otsu's threshold of the vertebra's
    core; ``fixed``: ``fixed_threshold``. A candidate voxel is strictly above
    (``bright``) or below (``dark``) ``T``. The boundary of a kept lesion is
    at half its contrast on the depth-corrected intensity (module docstring,
    ``depth_background``): a voxel at depth class ``c`` of vertebra ``v`` is
    lesion when ``I - off[v, c]`` is beyond ``(M_v + plateau) / 2``, with
    ``off`` = ``LesionSegmentation.depth_offset`` and ``M_v`` = ``background``.

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
    box = bbox if bbox is not None else (nonzero_bbox(vertebrae) if vertebrae.size else None)
    n = int(vertebrae[box].max()) if box is not None else 0
    # integer images stay integer (exact, and no full-volume float copy); other types become float64
    intensity = image if np.issubdtype(image.dtype, np.integer) else np.asarray(image, dtype=np.float64)
    if p.n4 and n > 0:
        intensity = n4_correct(
            intensity, vertebrae > 0, spacing, shrink=int(p.n4_shrink), iterations=int(p.n4_iterations)
        )
        notes.append("N4 bias-field correction applied before thresholding")

    thresholds = np.full(n + 1, np.nan)
    ref_med = np.full(n + 1, np.nan)
    ref_mad = np.full(n + 1, np.nan)
    box = box if n > 0 else None
    if box is None:
        return LesionSegmentation(
            np.zeros(image.shape, dtype=np.uint8),
            np.zeros(1, np.int64),
            thresholds,
            ref_med,
            ref_mad,
            intensity,
            np.zeros((0, 0, 0), dtype=bool),
            None,
            tuple(notes),
        )
    # everything below works on the bounding box of the vertebrae (C order), pasted back once at the
    # end: outside it there is no vertebra voxel, and every step treats what lies beyond the box
    # exactly as the background it is (the erosion and the depth classes take the image border as a
    # boundary, components and neighbours stay inside their vertebra)
    if n >= 1 << 8:
        raise InputError(f"vertebra ids up to {n}: at most 255 are supported (a spine has 33 vertebrae)")
    vert_b = np.ascontiguousarray(vertebrae[box], dtype=np.uint8)
    int_b = np.ascontiguousarray(intensity[box])
    if int_b.dtype == np.uint64:  # the compiled kernels read signed 64-bit integers
        int_b = int_b.astype(np.int64 if int(int_b.max(initial=0)) < 1 << 63 else np.float64)
    lesion_sub, offset, lesion_vertebra, core_b, level, depth_offset = _segment_box(
        int_b, vert_b, n, spacing, p, thresholds, ref_med, ref_mad, notes
    )
    del vert_b, int_b
    lesion_ids = np.zeros(image.shape, dtype=_id_dtype(lesion_vertebra.size - 1))
    start = [b.start + o for b, o in zip(box, offset, strict=True)]
    lesion_ids[tuple(slice(a, a + m) for a, m in zip(start, lesion_sub.shape, strict=True))] = lesion_sub
    return LesionSegmentation(
        lesion_ids,
        lesion_vertebra,
        thresholds,
        ref_med,
        ref_mad,
        intensity,
        core_b,
        box,
        tuple(notes),
        level,
        depth_offset,
    )


def shift_flat_index(
    index: np.ndarray, shape: tuple[int, ...], offset: tuple[int, ...], target_shape: tuple[int, ...]
) -> np.ndarray:
    """Flat (C-order) indices into an array of ``shape`` → into ``target_shape``, where it sits at ``offset``.

    Equal to ``np.ravel_multi_index(np.unravel_index(index, shape) + offset, target_shape)``
    (3-D), but one integer division and one table lookup per index instead of
    six index arrays: each row (last axis) of the small array is contiguous in
    the large one, so the index moves by a per-row constant.
    """
    n0, n1, n2 = shape
    rows = np.arange(n0 * n1, dtype=np.intp)
    i, j = np.divmod(rows, n1)
    t1, t2 = target_shape[1], target_shape[2]
    row_shift = (i + offset[0]) * (t1 * t2) + (j + offset[1]) * t2 + offset[2] - rows * n2
    return index + row_shift[index // n2]


def _id_dtype(n_ids: int) -> type[np.unsignedinteger] | type[np.signedinteger]:
    """Smallest dtype holding lesion ids ``0..n_ids`` (uint8, uint16, else int32)."""
    if n_ids < 1 << 8:
        return np.uint8
    if n_ids < 1 << 16:
        return np.uint16
    return np.int32


def _segment_box(
    intensity: np.ndarray,
    vertebrae: np.ndarray,
    n: int,
    spacing: tuple[float, float, float],
    p: SegmentParams,
    thresholds: np.ndarray,
    ref_med: np.ndarray,
    ref_mad: np.ndarray,
    notes: list[str],
) -> tuple[np.ndarray, tuple[int, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 2-7 of :func:`segment_lesions` on the vertebrae's bounding box (C-contiguous arrays;
    ``vertebrae`` uint8, ``intensity`` of a :mod:`spinemri._kernels` type).

    Fills ``thresholds``, ``ref_med``, ``ref_mad`` and ``notes`` in place; returns the lesion ids on
    the bounding box of the lesions and its offset in the box, the vertebra of each lesion id, the
    core, and the background level and depth offsets per vertebra.
    """
    # the image border is a boundary here: a voxel on it has unknown depth (it may be the edge of a
    # vertebra cut by the field of view or mix with what lies beyond), so it neither seeds nor sets levels
    hw = box_half_widths(spacing, p.margin_mm)
    # one compiled pass: the core (erosion by the margin) and the depth classes, as bits of one code
    code = label_codes(vertebrae, hw, depth=p.depth_background)
    core = ((code >> 2) & 1).view(bool)
    # integer images (MR and CT): one compiled histogram of the intensities per (vertebra, depth class,
    # in core) gives every statistic below; other images (and Otsu, which bins the values themselves)
    # gather the vertebra voxels' values
    hist = None if p.method == "otsu" else _class_histogram(intensity, vertebrae, code, n)
    gathered = None
    if hist is not None:  # classes CORE_BIT..7 (the code's bit 2 set) are in the core
        core_counts = hist.counts[:, CORE_BIT:].sum(axis=(1, 2))
        all_counts = hist.counts.sum(axis=(1, 2))
    else:
        gathered = _Gathered.of(intensity, vertebrae, code, n)
        core_counts, all_counts = gathered.core_counts, gathered.all_counts
    # a vertebra whose core is empty (thinner than 2·margin) is represented by all its voxels
    thin = np.flatnonzero((core_counts == 0) & (all_counts > 0))
    thin = thin[thin > 0]
    if thin.size:
        notes.append(
            f"{thin.size} vertebra(e) thinner than twice margin_mm={p.margin_mm:g} mm: "
            "their reference voxels include the rim"
        )
    # the reference voxels' values and ids are gathered only without a histogram
    ref_vals, ref_vid = np.zeros(0), np.zeros(0, dtype=np.int64)
    if hist is not None:
        ref_counts = hist.counts[:, CORE_BIT:].sum(axis=1)
        ref_counts[thin] = hist.counts[thin].sum(axis=1)
        ref_hist: _Hist | None = _Hist(ref_counts, hist.lo, hist.scale)
    else:
        assert gathered is not None
        ref_vals, ref_vid = gathered.reference(thin)
        ref_hist = _histograms(ref_vals, ref_vid, n + 1)

    if p.method in ("robust", "otsu", "fixed"):
        if ref_hist is not None:
            meds, mads = _hist_median_mad(ref_hist.pooled())
            med, mad = float(meds[0]), float(mads[0])
            t = mad_threshold(med, mad, p.k, p.polarity)
        else:
            t, med, mad = robust_threshold(ref_vals, p.k, p.polarity)
        thresholds[1:], ref_med[1:], ref_mad[1:] = t, med, mad
        if p.method == "otsu":
            s, starts, counts = grouped_sort(ref_vals, ref_vid, n + 1)
            for v in range(1, n + 1):
                thresholds[v] = _otsu(s[starts[v] : starts[v] + counts[v]])
        elif p.method == "fixed":
            thresholds[1:] = float(p.fixed_threshold)  # type: ignore[arg-type]
    else:  # local
        own = None if ref_hist is None else _hist_median_mad(ref_hist)
        thresholds[1:], ref_med[1:], ref_mad[1:], note = _local_thresholds(ref_vals, ref_vid, n, p, own)
        if note:
            notes.append(note)
    del ref_vals, ref_vid

    # background level of each vertebra: median of its core voxels that are not candidates
    bright = p.polarity == "bright"
    if ref_hist is not None:
        level = _background_level_hist(ref_hist, thresholds, bright, thin, ref_med)
    else:
        assert gathered is not None
        level = gathered.background_level(thresholds, bright, ref_med)
    del ref_hist
    depth_offset = np.zeros((n + 1, N_DEPTH_CLASSES))
    if p.depth_background:
        if hist is not None:  # depth class c: in the core or not
            nc = N_DEPTH_CLASSES - 1
            shallow = hist.counts[:, :nc] + hist.counts[:, CORE_BIT : CORE_BIT + nc]
            raw = _Hist(shallow.reshape(-1, shallow.shape[2]), hist.lo, hist.scale).medians()
        else:
            assert gathered is not None
            raw = gathered.depth_medians()
        depth_offset = _depth_offsets(raw.reshape(n + 1, N_DEPTH_CLASSES - 1), level, n, p, all_counts)
    del hist, gathered
    # candidates: vertebra voxels strictly beyond the threshold of their own vertebra, detected on the
    # image itself (what the seed rule and its false-positive record were validated on); seeds
    # (hysteresis): candidates in the core beyond the stricter seed threshold
    seed_t = thresholds
    if p.method in ("robust", "local"):
        seed_t = mad_threshold(ref_med, ref_mad, max(p.seed_k, p.k), p.polarity)
    cand_idx, seed = _kernels.candidates(
        vertebrae,
        intensity,
        code,
        np.ascontiguousarray(thresholds),
        np.ascontiguousarray(seed_t),
        bright,
        int(all_counts.sum()),
    )
    voxels = _BoxVoxels(intensity, vertebrae, code, depth_offset)
    lesion_ids, offset, lesion_vertebra = _components(cand_idx, seed, voxels, spacing, p, level)
    return lesion_ids, offset, lesion_vertebra, core, level, depth_offset


def _class_histogram(intensity: np.ndarray, vertebrae: np.ndarray, code: np.ndarray, n: int) -> _Hist | None:
    """Histograms of an integer image's vertebra voxels per (vertebra id, ``code & 7``): counts of
    shape (n + 1, 8, nbins) over the box's intensity range; None for a float image or a range too
    wide for them."""
    if intensity.dtype.kind not in "iu" or intensity.dtype == np.uint64 or not 0 < intensity.size < 1 << 31:
        return None  # (the kernel counts in int32)
    lo, hi = int(intensity.min()), int(intensity.max())
    nbins = hi - lo + 1
    if nbins * (n + 1) * 8 > MAX_HISTOGRAM_BINS:
        return None
    counts = _kernels.class_histogram(vertebrae, intensity, code, lo, nbins, n)
    return _Hist(counts, float(lo), 1.0)


class _Gathered:
    """Values, ids and codes of the vertebra voxels of a box, in C order: the statistics of images
    without a class histogram (float intensities, Otsu's method, very wide integer ranges)."""

    def __init__(self, vals: np.ndarray, vv: np.ndarray, code_v: np.ndarray, n: int) -> None:
        self.vals, self.vv, self.code_v, self.n = vals, vv, code_v, n
        self.in_core = ((code_v >> 2) & 1).view(bool)
        split = np.bincount(vv.astype(np.intp) * 2 + self.in_core, minlength=2 * (n + 1)).reshape(n + 1, 2)
        self.core_counts, self.all_counts = split[:, 1], split.sum(axis=1)

    @classmethod
    def of(cls, intensity: np.ndarray, vertebrae: np.ndarray, code: np.ndarray, n: int) -> _Gathered:
        nzi = np.flatnonzero(vertebrae.ravel())
        return cls(intensity.ravel()[nzi], vertebrae.ravel()[nzi], code.ravel()[nzi], n)

    def reference(self, thin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values and ids of the reference voxels: the core, and all voxels of the ``thin`` vertebrae."""
        sel = self.in_core | np.isin(self.vv, thin) if thin.size else self.in_core
        return self.vals[sel], self.vv[sel].astype(np.int64)

    def background_level(self, thresholds: np.ndarray, bright: bool, fallback: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            t = thresholds[self.vv]
            beyond = (self.vals > t) if bright else (self.vals < t)
        return _background_level(self.vals, self.vv, self.in_core & ~beyond, self.in_core, self.n, fallback)

    def depth_medians(self) -> np.ndarray:
        """Median intensity per (vertebra id, depth class 0-2), flat ((n + 1)·3,)."""
        nc = N_DEPTH_CLASSES - 1
        depth = (self.code_v & DEPTH_MASK).astype(np.intp)
        shallow = np.flatnonzero(depth < nc)
        keys = self.vv[shallow].astype(np.intp) * nc + depth[shallow]
        return grouped_medians(self.vals[shallow], keys, (self.n + 1) * nc)


class _BoxVoxels:
    """The box's intensities, vertebra ids and codes, read at flat (C-order) indices."""

    def __init__(self, intensity: np.ndarray, vertebrae: np.ndarray, code: np.ndarray, offset: np.ndarray):
        self.intensity, self.vertebrae, self.code = intensity, vertebrae, code
        self.offset = np.ascontiguousarray(offset, dtype=np.float64).ravel()
        self.shape = vertebrae.shape

    def vertebra(self, idx: np.ndarray) -> np.ndarray:
        return self.vertebrae.ravel()[idx]

    def corrected(self, idx: np.ndarray) -> np.ndarray:
        """Depth-corrected intensities ``I - depth_offset[v, depth]`` (``I`` without depth classes)."""
        v = self.intensity.ravel()[idx].astype(np.float64)
        key = self.vertebrae.ravel()[idx].astype(np.intp) * N_DEPTH_CLASSES
        return v - self.offset[key + (self.code.ravel()[idx] & DEPTH_MASK)]

    def grow(self, idx: np.ndarray, cut: np.ndarray, sign: float) -> np.ndarray:
        """``idx`` (ascending) with its 26-neighbours in the same vertebra beyond their cut, ascending.

        ``cut`` is the half-contrast cut of each voxel of ``idx``; one step: the partial-volume layer
        at a surface is one voxel thick.
        """
        found = _kernels.grow(
            self.vertebrae, self.intensity, self.code, self.offset, np.ascontiguousarray(idx, dtype=np.intp),
            np.ascontiguousarray(cut, dtype=np.float64), float(sign),
        )  # fmt: skip
        return np.sort(np.concatenate([idx, found]))  # disjoint: the kernel skips idx


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
    ``own``: each vertebra's median and MAD when already known.
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


#: Number of depth classes of :func:`depth_classes`.
N_DEPTH_CLASSES = 4

_NEIGHBOUR_OFFSETS = {
    norm: [o for o in itertools.product((-1, 0, 1), repeat=3) if sum(abs(x) for x in o) == norm]
    for norm in (1, 2)
}


def depth_classes(
    vertebrae: np.ndarray,
    index: np.ndarray,
    bbox: tuple[slice, slice, slice] | None = None,
    interior: np.ndarray | None = None,
) -> np.ndarray:
    """Depth of vertebra voxels below their own vertebra's surface, in classes of voxel units.

    The depth of a voxel is the distance, in voxel units along each axis,
    from its centre to the nearest voxel that does not carry its label
    (background *or another vertebra*: depth is measured to the vertebra's own
    boundary even where two vertebrae touch). Capped at two voxels, its
    square is one of

    * 0: a face neighbour differs (squared distance 1),
    * 1: else an edge neighbour differs (2),
    * 2: else a corner neighbour differs (3),
    * 3: all 26 neighbours carry the label (>= 4: the interior).

    Voxel units, not mm: the partial-volume mixture of a voxel depends on
    where the surface cuts it relative to its own size along the surface
    normal, so a 4 mm-thick sagittal voxel whose lateral neighbour is outside
    is as much a surface voxel as a 1.25 mm in-plane one. The image border is
    a boundary: a voxel on it has unknown depth and is classed as surface.

    Parameters
    ----------
    vertebrae : ndarray of int, shape (I, J, K)
        Vertebra ids, 0 = background.
    index : ndarray of intp
        Flat (C-order) indices of the voxels to classify, all with id > 0.
    bbox : tuple of slice, optional
        Bounding box of the ids > 0 (:func:`spinemri.arrays.nonzero_bbox`), when already known.
    interior : ndarray of bool, optional
        :func:`erode_labels_box` of ``vertebrae`` with half-widths (1, 1, 1) and
        ``border_is_boundary=True``, when already known.

    Returns
    -------
    ndarray of int8, shape (len(index),)
        The class of each voxel (0-3).
    """
    shape = vertebrae.shape
    out = np.full(index.size, N_DEPTH_CLASSES - 1, dtype=np.int8)
    bbox = nonzero_bbox(vertebrae) if bbox is None else bbox
    if bbox is None or index.size == 0:
        return out
    if interior is None:
        interior = erode_labels_box(vertebrae, (1, 1, 1), bbox, border_is_boundary=True)
    surf = ~interior.ravel()[index]
    sidx = index[surf]
    if sidx.size == 0:
        return out
    # the box plus one voxel on each side (background beyond the image border)
    lo = [max(b.start - 1, 0) for b in bbox]
    hi = [min(b.stop + 1, shape[a]) for a, b in enumerate(bbox)]
    pads = [(int(bbox[a].start == 0), int(bbox[a].stop == shape[a])) for a in range(3)]
    sub = np.pad(vertebrae[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], pads)  # zeros beyond the image
    flat = shift_flat_index(sidx, shape, tuple(pads[a][0] - lo[a] for a in range(3)), sub.shape)
    sf = sub.ravel()
    own = sf[flat]
    strides = (sub.shape[1] * sub.shape[2], sub.shape[2], 1)
    cls = np.full(sidx.size, 2, dtype=np.int8)  # not interior: at least a corner neighbour differs
    for norm, target in ((2, 1), (1, 0)):
        differs = np.zeros(sidx.size, dtype=bool)
        for o in _NEIGHBOUR_OFFSETS[norm]:
            differs |= sf[flat + (o[0] * strides[0] + o[1] * strides[1] + o[2] * strides[2])] != own
        cls[differs] = target
    out[surf] = cls
    return out


def _depth_offsets(
    raw: np.ndarray,
    level: np.ndarray,
    n: int,
    p: SegmentParams,
    counts: np.ndarray,
) -> np.ndarray:
    """Background offset (intensity units) of each vertebra at each depth class, shape (n + 1, 4).

    The lesion-free intensity of a voxel at depth class ``c`` of vertebra
    ``v`` is ``bg = level[v] · r(c)`` (``r`` the median of ``I / level`` at
    that depth: coil bias is multiplicative) — or ``level[v] + r(c)`` with
    ``r`` the median of ``I - level`` when some level is not positive. ``r``
    is a median over vertebrae of each vertebra's median at that depth (all
    vertebrae for ``robust``/``otsu``/``fixed``, the ``neighbours`` window of
    ``local``), so lesions, a minority, do not move it. The interior class 3
    has offset 0. Returned: ``bg - level``.

    ``raw`` (n + 1, 3): each vertebra's median intensity at depth classes
    0-2 (the median of ``I / level`` over one vertebra's voxels is the median
    of ``I``, then divided by its level); ``counts``: voxels per vertebra id.
    """
    import warnings

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
    prof = np.full((n + 1, nc), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no voxel at that depth
        if p.method == "local":
            for v, window in zip(present, neighbour_windows(present.size, int(p.neighbours)), strict=True):
                prof[v] = np.nanmedian(per[present[window]], axis=0)
        else:
            prof[present] = np.nanmedian(per[present], axis=0)
    neutral = 1.0 if ratio else 0.0
    prof = np.where(np.isnan(prof), neutral, prof)
    base = np.where(np.isfinite(level), level, 0.0)
    out[:, :nc] = base[:, None] * (prof - 1.0) if ratio else prof
    out[0] = 0.0
    return out


#: Candidates under 1/SPARSE_FRACTION of the box are labelled from their list (union-find), more by
#: cc3d on the box (union-find costs ~150 ns a voxel, cc3d ~5 ns a box voxel).
SPARSE_FRACTION = 32


def _filter(
    cand_idx: np.ndarray,
    seeded_voxel: np.ndarray,
    shape: tuple[int, ...],
    spacing: tuple[float, float, float],
    p: SegmentParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Components of candidate voxels (flat indices, ascending) holding a seed voxel
    (``seeded_voxel``, boolean per candidate) and of >= ``min_lesion_mm3``.

    Labelled by :func:`spinemri._kernels.sparse_components` when the
    candidates are under 1/``SPARSE_FRACTION`` of the box, else by cc3d on
    their own bounding box (the same ids: all three number components in C
    order of their first voxel). Returns the flat indices of the kept voxels
    and their component ids.
    """
    if cand_idx.size == 0:
        return cand_idx, np.zeros(0, dtype=np.intp)
    if cand_idx.size * SPARSE_FRACTION < int(np.prod(shape)):
        # few candidates (the usual case: lesions and noise voxels beyond the threshold): union-find
        # over the voxel list, whose cost follows their number, not the box's size
        lab, n_comp = _kernels.sparse_components(
            np.ascontiguousarray(cand_idx, dtype=np.intp), shape[0], shape[1], shape[2], int(p.connectivity)
        )
    else:
        _, sub, local = _sub_box(cand_idx, shape)
        cand = np.zeros(sub, dtype=bool)
        cand.ravel()[local] = True
        comp, n_comp = _cc(cand, p.connectivity)
        lab = comp.ravel()[local].astype(np.intp)
    sizes = np.bincount(lab, minlength=n_comp + 1)
    seeded = np.bincount(lab[seeded_voxel], minlength=n_comp + 1)
    voxel_mm3 = float(np.prod(spacing))
    keep = (sizes * voxel_mm3 >= p.min_lesion_mm3 - 1e-9) & (seeded > 0)
    keep[0] = False
    sel = keep[lab]
    return cand_idx[sel], lab[sel]


def _sorted_isin(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.isin(a, b)`` for ascending ``b``, by binary search."""
    if b.size == 0:
        return np.zeros(a.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(b, a), b.size - 1)
    return b[pos] == a


def _sub_box(idx: np.ndarray, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], np.ndarray]:
    """The bounding box of flat indices ``idx`` of an array of ``shape``: its offset, its shape and
    the indices' flat positions inside it."""
    coords = np.unravel_index(idx, shape)
    lo = tuple(int(c.min()) for c in coords)
    sub = tuple(int(c.max()) + 1 - o for c, o in zip(coords, lo, strict=True))
    local = np.ravel_multi_index(tuple(c - o for c, o in zip(coords, lo, strict=True)), sub)
    return lo, sub, local


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
    values: np.ndarray,
    vid: np.ndarray,
    clean: np.ndarray,
    region: np.ndarray,
    n: int,
    fallback: np.ndarray,
) -> np.ndarray:
    """Per vertebra median of the ``clean`` voxels, or ``fallback`` when they are under 25 % of ``region``.

    ``values`` and ``vid`` are per vertebra voxel (flat); ``clean`` and ``region`` boolean masks on them.
    """
    med = grouped_medians(values[clean], vid[clean].astype(np.int64), n + 1)
    n_clean = np.bincount(vid[clean], minlength=n + 1)[: n + 1]
    n_region = np.bincount(vid[region], minlength=n + 1)[: n + 1]
    return np.where(n_clean >= 0.25 * np.maximum(n_region, 1), med, fallback)


def _background_level_hist(
    h: _Hist,
    thresholds: np.ndarray,
    bright: bool,
    thin: np.ndarray,
    fallback: np.ndarray,
) -> np.ndarray:
    """:func:`_background_level` from the per-vertebra histograms of the core voxels.

    The clean core voxels of vertebra ``v`` are the bins not beyond its
    threshold; a thin vertebra (``thin``: its histogram holds its rim, its
    core is empty) takes ``fallback`` as :func:`_background_level` does.
    """
    edges = h.bin_values()
    with np.errstate(invalid="ignore"):
        beyond = edges[None, :] > thresholds[:, None] if bright else edges[None, :] < thresholds[:, None]
    clean = _Hist(np.where(beyond, 0, h.counts), h.lo, h.scale)
    n_clean = clean.counts.sum(axis=1)
    n_region = h.counts.sum(axis=1)
    n_region[thin] = 0  # no core voxel at all
    n_clean[thin] = 0
    med = clean.medians()
    return np.where(n_clean >= 0.25 * np.maximum(n_region, 1), med, fallback)


def _components(
    cand_idx: np.ndarray,
    seed: np.ndarray,
    voxels: _BoxVoxels,
    spacing: tuple[float, float, float],
    p: SegmentParams,
    level: np.ndarray,
) -> tuple[np.ndarray, tuple[int, ...], np.ndarray]:
    """Filter candidate components, refine their boundary, then split them by vertebra.

    ``cand_idx`` are the flat indices in the box of the candidate voxels
    (ascending) and ``seed`` whether each is a seed
    (:func:`spinemri._kernels.candidates`); ``voxels`` reads intensities, ids
    and depth-corrected intensities (marrow in place of partial-volume cortex /
    outside tissue) at flat indices of the box; ``level`` is each vertebra's
    background (non-lesion marrow) intensity. Returns the lesion ids on the
    lesions' bounding box, its offset in the box and the vertebra of each id.
    """
    shape = voxels.shape
    kept_idx, cid = _filter(cand_idx, seed, shape, spacing, p)
    if p.half_contrast and kept_idx.size:
        # partial-volume boundary: a voxel is lesion when more than half of it is lesion, i.e. when
        # its corrected intensity is beyond the midpoint of marrow and the lesion's plateau
        vals = voxels.corrected(kept_idx)
        ref = level[voxels.vertebra(kept_idx)]
        sign = 1.0 if p.polarity == "bright" else -1.0
        q = PLATEAU_QUANTILE if p.polarity == "bright" else 1.0 - PLATEAU_QUANTILE
        n_c = int(cid.max()) + 1
        top = grouped_quantile(vals, cid, n_c, q)
        # plateau: median of the voxels in the upper quarter of the contrast range (mostly pure lesion),
        # less biased by noise than the quantile itself
        upper = (vals - (ref + 0.75 * (top[cid] - ref))) * sign >= 0
        plateau = grouped_medians(vals[upper], cid[upper], n_c)
        plateau = np.where(np.isnan(plateau), top, plateau)
        cut = (ref + plateau[cid]) / 2.0
        inside = vals > cut if p.polarity == "bright" else vals < cut
        refined = kept_idx[inside]
        if p.depth_background and p.method != "fixed" and refined.size:
            # a surface voxel that is half lesion but mixed with cortex / outside tissue can read
            # below the candidate threshold: admit the neighbours of the lesion that pass its cut
            # (not for 'fixed', whose threshold is the user's definition of a lesion voxel)
            refined = voxels.grow(refined, cut[inside], sign)
        kept_idx, cid = _filter(refined, _sorted_isin(refined, cand_idx[seed]), shape, spacing, p)
    if kept_idx.size == 0:
        return np.zeros((0, 0, 0), dtype=np.uint8), (0, 0, 0), np.zeros(1, dtype=np.int64)
    # one labelling pass over all vertebrae at once, on the lesions' bounding box: lesion voxels carry
    # their vertebra id, so cc3d's multi-label components never cross a vertebra boundary
    offset, sub, local = _sub_box(kept_idx, shape)
    by_vertebra = np.zeros(sub, dtype=voxels.vertebrae.dtype)
    kept_v = voxels.vertebra(kept_idx)
    by_vertebra.ravel()[local] = kept_v
    ids, n_ids = _cc(by_vertebra, p.connectivity)  # cc3d's own (smallest) dtype
    lesion_vertebra = np.zeros(n_ids + 1, dtype=np.int64)
    lesion_vertebra[ids.ravel()[local]] = kept_v
    return ids, offset, lesion_vertebra
