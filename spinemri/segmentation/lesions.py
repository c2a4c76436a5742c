"""Per-vertebra lesion segmentation: thresholds from robust marrow statistics → lesion label map.

Pure functions on arrays (no file I/O). The input is an image array and a
*vertebra id* array on the same grid, where ids ``1..n`` number the vertebrae
present in cranial → caudal order (``0`` = not a vertebra); the mapping from
mask labels to levels is done by :mod:`spinemri.measurement`.

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
   lesion but mixed with cortex), and step 5 is repeated; each component keeps
   its own boundary (two that the boundary makes touch stay two lesions), and
   with the edge rule a component with a distinct bright core is first cut at
   the core's half contrast, and each is then judged by its edge step, an
   elongated one part by part at its necks (compact cores and a thin rest:
   :mod:`spinemri.segmentation.component_rules`);
7. kept voxels are split by vertebra and re-labelled so that components never
   cross a vertebra boundary: a lesion crossing an endplate counts once in
   each vertebra it touches.

The passes over the vertebrae's bounding box (erosion and depth classes,
histograms, candidates, components of the candidates, boundary growth) run
in :mod:`spinemri._kernels` (compiled; docs/decisions/0012-compiled-kernels.md).
The numpy functions of :mod:`spinemri.arrays.morphology` and
:mod:`spinemri.arrays.grouped` (:func:`~spinemri.arrays.morphology.erode_labels_box`,
:func:`~spinemri.arrays.morphology.depth_classes`,
:func:`~spinemri.arrays.grouped.grouped_medians`, ...) are their definitions, which the
tests compare them with, and the path of float images; the thresholds are in
:mod:`spinemri.segmentation.thresholds`, the N4 correction in :mod:`spinemri.segmentation.bias`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from .._native import kernels as _kernels
from ..arrays.bbox import nonzero_bbox
from ..arrays.grouped import (
    MAX_HISTOGRAM_BINS,
    Hist,
    grouped_medians,
    grouped_quantile,
    grouped_sort,
    hist_median_mad,
    histograms,
)
from ..arrays.morphology import (
    CORE_BIT,
    DEEP_BIT,
    DEPTH_MASK,
    N_DEPTH_CLASSES,
    box_half_widths,
    label_codes,
)
from ..errors import GeometryError, InputError
from ..params import SegmentParams
from .bias import n4_correct
from .candidates import find_candidates
from .component_rules import PLATEAU_QUANTILE, component_rules, split_cores, split_necks, top_and_plateau
from .thresholds import (
    background_level,
    background_level_hist,
    depth_offsets,
    local_thresholds,
    mad_threshold,
    otsu,
    robust_threshold,
)
from .voxel_sets import c_order_ids, label_voxels, sorted_isin, sub_box

__all__ = ["LesionSegmentation", "segment_lesions"]

logger = logging.getLogger(__name__)


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
    value_histogram : Hist or None
        Histogram of ``intensity`` per vertebra id over the vertebra voxels (counts of shape
        (n + 1, nbins), row 0 empty; bins from the minimum of ``intensity`` over ``box``): the
        one the thresholds were read from, summed over the depth classes. None when the
        thresholds were not read from a histogram (float images, ``otsu``, very wide ranges).
        :func:`spinemri.metrics.compute_metrics` and the polarity check reuse it.
    lesion_box : tuple of 3 slice or None
        A box of the image holding every lesion voxel (the lesions' bounding box; empty slices
        without lesions), so that :func:`spinemri.metrics.compute_metrics` need not search
        ``lesion_ids`` for them; None when not known.
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
    value_histogram: Hist | None = None
    lesion_box: tuple[slice, slice, slice] | None = None

    @property
    def core(self) -> np.ndarray:
        out = np.zeros(self.lesion_ids.shape, dtype=bool)
        if self.box is not None:
            out[self.box] = self.core_box
        return out


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
        (:func:`spinemri.arrays.bbox.nonzero_bbox`) when already known.

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
    # a Fortran-ordered image (NIfTI as nibabel loads it, spinemri's DICOM volumes) is read through
    # its reversed-axes view, which is C-contiguous: its box is copied in memory order instead of
    # transposed, and the steps below run with the axes (box, spacing) reversed. Every step treats
    # the three axes alike (box erosion by per-axis half-widths, 26-neighbour depth classes, 6/18/26
    # connectivity, histograms and sorts), so they give the same voxel sets and statistics; the
    # lesions are labelled once more in the image's own axes to keep the ids of the C-order path.
    transposed = intensity.flags.f_contiguous and not intensity.flags.c_contiguous
    if transposed:
        rbox = (box[2], box[1], box[0])
        vert_b = np.ascontiguousarray(vertebrae.T[rbox], dtype=np.uint8)
        int_b = np.ascontiguousarray(intensity.T[rbox])
        spacing_b = (spacing[2], spacing[1], spacing[0])
    else:
        vert_b = np.ascontiguousarray(vertebrae[box], dtype=np.uint8)
        int_b = np.ascontiguousarray(intensity[box])
        spacing_b = spacing
    if int_b.dtype == np.uint64:  # the compiled kernels read signed 64-bit integers
        int_b = int_b.astype(np.int64 if int(int_b.max(initial=0)) < 1 << 63 else np.float64)
    lesion_sub, offset, lesion_vertebra, core_b, level, depth_offset, value_hist = _segment_box(
        int_b, vert_b, n, spacing_b, p, thresholds, ref_med, ref_mad, notes
    )
    del vert_b, int_b
    if transposed:
        offset = (offset[2], offset[1], offset[0])
        if lesion_sub.size:  # the same box and vertebra ids as the C-order path labels
            lesion_sub, lesion_vertebra = c_order_ids(np.ascontiguousarray(lesion_sub.T), lesion_vertebra)
        core_b = core_b.T
    lesion_ids = np.zeros(image.shape, dtype=_id_dtype(lesion_vertebra.size - 1))
    start = [b.start + o for b, o in zip(box, offset, strict=True)]
    sl = cast(
        tuple[slice, slice, slice],
        tuple(slice(a, a + m) for a, m in zip(start, lesion_sub.shape, strict=True)),
    )
    lesion_ids[sl] = lesion_sub
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
        value_hist,
        sl,
    )


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
) -> tuple[np.ndarray, tuple[int, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray, Hist | None]:
    """Steps 2-7 of :func:`segment_lesions` on the vertebrae's bounding box (C-contiguous arrays;
    ``vertebrae`` uint8, ``intensity`` of a :mod:`spinemri._kernels` type).

    Fills ``thresholds``, ``ref_med``, ``ref_mad`` and ``notes`` in place; returns the lesion ids on
    the bounding box of the lesions and its offset in the box, the vertebra of each lesion id, the
    core, the background level and depth offsets per vertebra, and the histogram of the intensity
    per vertebra id (``LesionSegmentation.value_histogram``; None without a class histogram).
    """
    # the image border is a boundary here: a voxel on it has unknown depth (it may be the edge of a
    # vertebra cut by the field of view or mix with what lies beyond), so it neither seeds nor sets levels
    hw = box_half_widths(spacing, p.margin_mm)
    # seeds deeper than seed_depth_mm below the vertebra's surface only (below): that erosion too
    deep_rule = p.method in ("robust", "local") and p.seed_depth_mm > max(p.margin_mm, 0.0)
    deep_hw = box_half_widths(spacing, p.seed_depth_mm) if deep_rule else None
    # one compiled pass: the core (erosion by the margin), the depth classes and the deep voxels
    # (erosion by seed_depth_mm, continued from the core's), as bits of one code
    code = label_codes(vertebrae, hw, depth=p.depth_background, deep_half_widths=deep_hw)
    core = ((code >> 2) & 1).view(bool)
    # integer images (MR and CT): one compiled histogram of the intensities per (vertebra, depth class,
    # in core) gives every statistic below; other images (and Otsu, which bins the values themselves)
    # gather the vertebra voxels' values
    hist = None if p.method == "otsu" else _class_histogram(intensity, vertebrae, code, n)
    gathered = None
    # per vertebra id, whatever the class: what the metrics and the polarity check read
    value_hist = None if hist is None else Hist(hist.counts.sum(axis=1), hist.lo, hist.scale)
    if hist is not None:  # classes CORE_BIT..7 (the code's bit 2 set) are in the core
        per_class = hist.counts.sum(axis=2)
        core_counts = per_class[:, CORE_BIT:].sum(axis=1)
        all_counts = per_class.sum(axis=1)
        # interior voxels (all 26 neighbours in the vertebra: depth class 3, in the core or not), per
        # vertebra id: what the edge rule compares a lesion's size with, without a pass over the box
        n_interior = per_class[:, DEPTH_MASK] + per_class[:, CORE_BIT | DEPTH_MASK]
    else:
        gathered = _Gathered.of(intensity, vertebrae, code, n)
        core_counts, all_counts = gathered.core_counts, gathered.all_counts
        n_interior = gathered.interior_counts()
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
        ref_hist: Hist | None = Hist(ref_counts, hist.lo, hist.scale)
    else:
        assert gathered is not None
        ref_vals, ref_vid = gathered.reference(thin)
        ref_hist = histograms(ref_vals, ref_vid, n + 1)

    if p.method in ("robust", "otsu", "fixed"):
        if ref_hist is not None:
            meds, mads = hist_median_mad(ref_hist.pooled())
            med, mad = float(meds[0]), float(mads[0])
            t = mad_threshold(med, mad, p.k, p.polarity)
        else:
            t, med, mad = robust_threshold(ref_vals, p.k, p.polarity)
        thresholds[1:], ref_med[1:], ref_mad[1:] = t, med, mad
        if p.method == "otsu":
            s, starts, counts = grouped_sort(ref_vals, ref_vid, n + 1)
            for v in range(1, n + 1):
                thresholds[v] = otsu(s[starts[v] : starts[v] + counts[v]])
        elif p.method == "fixed":
            thresholds[1:] = float(p.fixed_threshold)  # type: ignore[arg-type]
    else:  # local
        own = None if ref_hist is None else hist_median_mad(ref_hist)
        thresholds[1:], ref_med[1:], ref_mad[1:], note = local_thresholds(ref_vals, ref_vid, n, p, own)
        if note:
            notes.append(note)
    del ref_vals, ref_vid

    # background level of each vertebra: median of its core voxels that are not candidates
    bright = p.polarity == "bright"
    if ref_hist is not None:
        level = background_level_hist(ref_hist, thresholds, bright, thin, ref_med)
    else:
        assert gathered is not None
        level = gathered.background_level(thresholds, bright, ref_med)
    del ref_hist
    depth_offset = np.zeros((n + 1, N_DEPTH_CLASSES))
    if p.depth_background:
        if hist is not None:  # depth class c: in the core or not
            nc = N_DEPTH_CLASSES - 1
            shallow = hist.counts[:, :nc] + hist.counts[:, CORE_BIT : CORE_BIT + nc]
            raw = Hist(shallow.reshape(-1, shallow.shape[2]), hist.lo, hist.scale).medians()
        else:
            assert gathered is not None
            raw = gathered.depth_medians()
        depth_offset = depth_offsets(raw.reshape(n + 1, N_DEPTH_CLASSES - 1), level, n, p, all_counts)
    del hist, gathered
    # candidates: vertebra voxels strictly beyond the threshold of their own vertebra, detected on the
    # image itself (what the seed rule and its false-positive record were validated on); seeds
    # (hysteresis): candidates in the core beyond the stricter seed threshold
    seed_t = thresholds
    if p.method in ("robust", "local"):
        seed_t = mad_threshold(ref_med, ref_mad, max(p.seed_k, p.k), p.polarity)
    cand_idx, seed = find_candidates(
        vertebrae, intensity, code, thresholds, seed_t, bright, int(all_counts.sum())
    )
    voxels = _BoxVoxels(intensity, vertebrae, code, depth_offset)
    if deep_rule:
        # seeds deeper than seed_depth_mm below the vertebra's surface only: bright structures that
        # enter the mask from outside (partial volume, an imperfect mask, veins entering the body)
        # are seeded in its outer shell
        # (a vertebra with no voxel that deep, thinner than 2·seed_depth_mm, keeps its core seeds)
        # per vertebra id, whether it has a deep voxel: one compiled pass over the box's codes that
        # stops once every vertebra has one
        has_deep = _kernels.labels_with_code(code, vertebrae, n, DEEP_BIT)
        cand_v = vertebrae.ravel()[cand_idx]
        seed = seed & (((code.ravel()[cand_idx] & DEEP_BIT) != 0) | ~has_deep[cand_v])
        # the edge rule's ring is taken there (component_rules)
        voxels.deep, voxels.deep_bits = code, DEEP_BIT
    if p.depth_background:  # the depth class 3 is the interior the edge rule reads
        voxels.interior_counts = n_interior
    lesion_ids, offset, lesion_vertebra = _components(cand_idx, seed, voxels, spacing, p, level, ref_mad)
    return lesion_ids, offset, lesion_vertebra, core, level, depth_offset, value_hist


def _class_histogram(intensity: np.ndarray, vertebrae: np.ndarray, code: np.ndarray, n: int) -> Hist | None:
    """Histograms of an integer image's vertebra voxels per (vertebra id, ``code & 7``): counts of
    shape (n + 1, 8, nbins) over the box's intensity range; None for a float image or a range too
    wide for them."""
    if intensity.dtype.kind not in "iu" or intensity.dtype == np.uint64 or not 0 < intensity.size < 1 << 31:
        return None  # (the kernel counts in int32)
    # (numpy's min and max: two passes, but vectorised for the machine it runs on, ~5x faster than
    # one portable compiled pass on a 16-bit box)
    lo, hi = int(intensity.min()), int(intensity.max())
    nbins = hi - lo + 1
    if nbins * (n + 1) * 8 > MAX_HISTOGRAM_BINS:
        return None
    counts = _kernels.class_histogram(vertebrae, intensity, code, lo, nbins, n)
    return Hist(counts, float(lo), 1.0)


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
        return background_level(self.vals, self.vv, self.in_core & ~beyond, self.in_core, self.n, fallback)

    def interior_counts(self) -> np.ndarray:
        """Number of interior voxels (depth class 3: all 26 neighbours in the vertebra) per vertebra id."""
        interior = (self.code_v & DEPTH_MASK) == DEPTH_MASK
        return np.bincount(self.vv[interior], minlength=self.n + 1)

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
        #: voxels deeper than ``seed_depth_mm``: those with ``deep & deep_bits`` set (None: that
        #: rule is off)
        self.deep: np.ndarray | None = None
        self.deep_bits = 0xFF
        #: interior voxels (depth class 3) per vertebra id, when the depth classes were computed
        self.interior_counts: np.ndarray | None = None

    def vertebra(self, idx: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, self.vertebrae.ravel()[idx])

    def corrected(self, idx: np.ndarray) -> np.ndarray:
        """Depth-corrected intensities ``I - depth_offset[v, depth]`` (``I`` without depth classes)."""
        v = self.intensity.ravel()[idx].astype(np.float64)
        key = self.vertebrae.ravel()[idx].astype(np.intp) * N_DEPTH_CLASSES
        return cast(np.ndarray, v - self.offset[key + (self.code.ravel()[idx] & DEPTH_MASK)])

    def grow_each(
        self, idx: np.ndarray, owner: np.ndarray, cut: np.ndarray, sign: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The lesions ``idx`` (ascending; ``owner``: the lesion id of each voxel) with their 26-neighbours
        in the same vertebra beyond their cut (``cut``: the half-contrast cut of each voxel of ``idx``;
        one step: the partial-volume layer at a surface is one voxel thick), each lesion on its own;
        returns the voxels, ascending, and their owners.

        A neighbour that is already a voxel of another lesion stays that lesion's; one found by two
        lesions joins the lower id.
        """
        if idx.size == 0:
            return idx, owner
        order = np.argsort(owner, kind="stable")  # ascending within each lesion (idx ascends)
        groups, starts = np.unique(owner[order], return_index=True)
        bounds = np.append(starts, order.size).astype(np.intp)
        # every lesion grown on its own, in one compiled call (each lesion's marks cleared after it)
        f_idx, f_group = _kernels.grow_groups(
            self.vertebrae, self.intensity, self.code, self.offset,
            np.ascontiguousarray(idx[order], dtype=np.intp),
            np.ascontiguousarray(cut[order], dtype=np.float64), float(sign), bounds,
        )  # fmt: skip
        f_owner = groups[f_group].astype(owner.dtype, copy=False)
        # the lowest owner first (groups ascend): np.unique keeps each voxel's first occurrence
        f_idx, first = np.unique(f_idx, return_index=True)
        f_owner = f_owner[first]
        new = ~sorted_isin(f_idx, idx)
        all_idx = np.concatenate([idx, f_idx[new]])
        all_owner = np.concatenate([owner, f_owner[new]])
        o = np.argsort(all_idx, kind="stable")
        return all_idx[o], all_owner[o]


def _filter(
    cand_idx: np.ndarray,
    seeded_voxel: np.ndarray,
    shape: tuple[int, ...],
    spacing: tuple[float, float, float],
    p: SegmentParams,
    owner: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Components of candidate voxels (flat indices, ascending) holding a seed voxel
    (``seeded_voxel``, boolean per candidate) and of >= ``min_lesion_mm3``.

    Labelled by :func:`spinemri._kernels.sparse_components` when the
    candidates are under 1/``SPARSE_FRACTION`` of the box, else by cc3d on
    their own bounding box (the same ids: all three number components in C
    order of their first voxel). With ``owner`` (an id per voxel: the component each voxel was
    refined with), voxels of different owners are never connected (cc3d's multi-label components,
    the same C-order numbering). Returns the flat indices of the kept voxels and their component ids.
    """
    if cand_idx.size == 0:
        return cand_idx, np.zeros(0, dtype=np.intp)
    lab, n_comp = label_voxels(cand_idx, shape, p.connectivity)
    if owner is not None and n_comp:
        # a component holding voxels of two owners: the refinement joined lesions that detection had
        # apart (one's grown boundary touches the other); label them apart (rare: a second labelling)
        some = np.full(n_comp + 1, -1, dtype=np.int64)
        some[lab] = owner  # one owner per component (any): a component of one owner matches it everywhere
        if np.any(some[lab] != owner):
            lab, n_comp = label_voxels(cand_idx, shape, p.connectivity, owner)
    sizes = np.bincount(lab, minlength=n_comp + 1)
    seeded = np.bincount(lab[seeded_voxel], minlength=n_comp + 1)
    voxel_mm3 = float(np.prod(spacing))
    keep = (sizes * voxel_mm3 >= p.min_lesion_mm3 - 1e-9) & (seeded > 0)
    keep[0] = False
    sel = keep[lab]
    return cand_idx[sel], lab[sel]


#: The MAD -> standard deviation factor for normal data.
MAD_TO_SD = 1.4826


def _components(
    cand_idx: np.ndarray,
    seed: np.ndarray,
    voxels: _BoxVoxels,
    spacing: tuple[float, float, float],
    p: SegmentParams,
    level: np.ndarray,
    ref_mad: np.ndarray,
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
        if p.method in ("robust", "local") and p.min_edge_step > 0:
            # a lesion joined to a larger, dimmer structure (the Dixon lateral ramp, a vein): cut apart
            # at the bright core's own half contrast, so that the edge rule judges each on its own
            n_core = max(int(np.ceil(p.min_lesion_mm3 / float(np.prod(spacing)) - 1e-9)), 1)
            cid = split_cores(sign * (vals - ref), cid, n_core)
        n_c = int(cid.max()) + 1
        top = grouped_quantile(vals, cid, n_c, q)
        # plateau: median of the voxels in the upper quarter of the contrast range (mostly pure lesion),
        # less biased by noise than the quantile itself
        upper = (vals - (ref + 0.75 * (top[cid] - ref))) * sign >= 0
        plateau = grouped_medians(vals[upper], cid[upper], n_c)
        plateau = np.where(np.isnan(plateau), top, plateau)
        cut = (ref + plateau[cid]) / 2.0
        inside = vals > cut if p.polarity == "bright" else vals < cut
        if p.plateau_k > 0 and p.method in ("robust", "local"):
            # minimum contrast: the lesion's plateau, not one voxel, must be beyond plateau_k robust SDs
            sd = MAD_TO_SD * ref_mad[voxels.vertebra(kept_idx)]
            passes = (plateau[cid] - ref) * sign >= p.plateau_k * sd
            strong = np.bincount(cid, weights=passes, minlength=n_c) > 0
            inside &= strong[cid]
        refined, owner = kept_idx[inside], cid[inside]
        if p.depth_background and p.method != "fixed" and refined.size:
            # a surface voxel that is half lesion but mixed with cortex / outside tissue can read
            # below the candidate threshold: admit the neighbours of the lesion that pass its cut
            # (not for 'fixed', whose threshold is the user's definition of a lesion voxel)
            refined, owner = voxels.grow_each(refined, owner, cut[inside], sign)
        # each lesion keeps its own boundary: the refinement never joins components that detection
        # found apart (a lesion next to a vein: each is then judged, and measured, on its own)
        seeded = sorted_isin(refined, cand_idx[seed])
        kept_idx, cid = _filter(refined, seeded, shape, spacing, p, owner=owner)
        if p.method in ("robust", "local") and kept_idx.size:
            seeds = cand_idx[seed]
            kept_idx, cid = _shape_rules(
                kept_idx, cid, voxels, spacing, p, level, sign, MAD_TO_SD * ref_mad, seeds
            )
    if kept_idx.size == 0:
        return np.zeros((0, 0, 0), dtype=np.uint8), (0, 0, 0), np.zeros(1, dtype=np.int64)
    # one labelling of all vertebrae at once: lesion voxels carry a code of (their component, their
    # vertebra), so the components never cross a vertebra boundary, nor join two touching lesions
    # that the steps above kept apart; the ids on the lesions' bounding box
    offset, sub, local = sub_box(kept_idx, shape)
    vert = voxels.vertebra(kept_idx).astype(np.int64)
    lab, n_ids = label_voxels(kept_idx, shape, p.connectivity, cid.astype(np.int64) * 256 + vert)
    ids = np.zeros(sub, dtype=_id_dtype(n_ids))
    ids.ravel()[local] = lab
    lesion_vertebra = np.zeros(n_ids + 1, dtype=np.int64)
    lesion_vertebra[lab] = vert
    return ids, offset, lesion_vertebra


def _shape_rules(
    kept_idx: np.ndarray,
    cid: np.ndarray,
    voxels: _BoxVoxels,
    spacing: tuple[float, float, float],
    p: SegmentParams,
    level: np.ndarray,
    sign: float,
    sd: np.ndarray,
    seeds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The lesions (after the half-contrast boundary) whose edge is a step: ``min_edge_step``
    (:mod:`spinemri.segmentation.component_rules`); ``sd`` the robust SD per vertebra id, ``seeds``
    the seed voxels (flat indices, ascending). An elongated component is judged part by part
    (:func:`~spinemri.segmentation.component_rules.split_necks`): each part that is kept holds a seed
    and passes the edge test, and the parts kept stay one lesion."""
    if p.min_edge_step <= 0:
        return kept_idx, cid
    contrast = sign * (voxels.corrected(kept_idx) - level[voxels.vertebra(kept_idx)])
    # an elongated component is judged part by part: its compact cores (where the smallest reported
    # lesion, a ball of min_lesion_mm3, fits) and its thin rest (a vein, a sheet); the parts that pass
    # stay one lesion
    radius = (3.0 * p.min_lesion_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    part, parent = split_necks(kept_idx, cid, voxels.shape, spacing, radius)
    n_c = int(part.max()) + 1
    _, _, _, _, plateau = top_and_plateau(contrast, part, n_c)
    # interior voxels (all 26 neighbours in the vertebra): the depth class 3 when it is computed, read
    # at the lesion voxels only, with the counts per vertebra from the class histogram
    if p.depth_background and voxels.interior_counts is not None:
        in_interior = (voxels.code.ravel()[kept_idx] & DEPTH_MASK) == DEPTH_MASK
        keep = component_rules(
            kept_idx, part, voxels, spacing, level, sign, plateau, p.min_edge_step, sd=sd,
            interior_counts=voxels.interior_counts, in_interior=in_interior,
        )  # fmt: skip
    else:
        interior = (voxels.code & DEPTH_MASK) == DEPTH_MASK if p.depth_background else None
        keep = component_rules(
            kept_idx, part, voxels, spacing, level, sign, plateau, p.min_edge_step, interior, sd=sd
        )
    if part is not cid:  # a part cut off holds a seed of its own (step 5), or it is not a lesion
        seeded = np.bincount(part[sorted_isin(kept_idx, seeds)], minlength=n_c) > 0
        keep &= seeded[part]
    return kept_idx[keep], parent[part[keep]]
