"""Plausibility of one case: is the image MR of the expected contrast, are the labels vertebrae?

Pure: arrays, affines and metadata in, :class:`Finding` objects and per-vertebra flags out; no file I/O.
:func:`report_findings` turns findings into a :class:`~spinemri.errors.PlausibilityError` or a
:class:`~spinemri.errors.SpinemriWarning`; :func:`spinemri.measure` fills the ``plausibility`` columns.
Every rule and threshold, with its sources, is in docs/supported-inputs.md ("Plausibility checks").

Three checks:

* **modality** (:func:`check_modality`): a DICOM ``Modality`` other than MR, or (any format) the
  intensity signature of CT in Hounsfield units (air at -1000: at least :data:`CT_AIR_FRACTION` of the
  voxels at or below :data:`CT_AIR_HU`) is an error; other negative intensities (impossible in MR
  magnitude images) a warning;
* **polarity** (:func:`check_polarity`): the marrow median against the tissue in a
  :data:`RING_MM` shell around the vertebrae; fatty marrow much brighter than its surroundings (T1,
  or T2 without fat suppression) under ``polarity="bright"``, or much darker (STIR, fat-suppressed)
  under ``polarity="dark"``, is a warning;
* **label shapes** (:func:`label_shapes`, :func:`check_label_shapes`): a "vertebra" whose volume,
  cranio-caudal height or cross-section is far below any vertebral body's (spinal cord or canal
  segments, intervertebral discs labelled by level) is flagged.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from .arrays.grouped import Hist
from .arrays.moments import LabelMoments, label_moments
from .errors import PlausibilityError, SpinemriWarning
from .levels import region_of

__all__ = [
    "CT_AIR_FRACTION",
    "CT_AIR_HU",
    "MIN_FOV_MM3",
    "POLARITY_RATIO",
    "RING_MM",
    "SHAPE_LIMITS",
    "Finding",
    "LabelShapes",
    "check_label_shapes",
    "check_image",
    "judges_anatomy",
    "check_modality",
    "check_vertebrae",
    "check_polarity",
    "label_messages",
    "label_shapes",
    "shapes_from_moments",
    "patient_flag",
    "report_findings",
]

#: How to override a refusal, appended to every error message.
OVERRIDE_HINT = (
    "if this is intended, measure anyway with check_plausibility=False (CLI: --no-plausibility-check)"
)

#: Intensity at or below which a voxel counts as "air in HU" (air is -1000 HU, lung -900..-500, fat -100).
CT_AIR_HU = -500.0
#: Fraction of the voxels at or below :data:`CT_AIR_HU` that makes an image CT in HU.
CT_AIR_FRACTION = 0.02
#: Fraction of negative voxels (below -:data:`NEGATIVE_TOLERANCE`) above which an image is not MR magnitude.
NEGATIVE_FRACTION = 0.001
#: Negative values down to this are tolerated (rounding of interpolated magnitude images).
NEGATIVE_TOLERANCE = 1.0
#: Thickness (mm) of the shell around the vertebrae whose median is the "surrounding tissue".
RING_MM = 3.0
#: Marrow median / surrounding median beyond which (or below its inverse) the contrast looks inverted.
POLARITY_RATIO = 1.5
#: Field of view (mm³) below which an image holds too little anatomy to judge contrast or label
#: shapes (less than two lumbar vertebrae: test arrays, tight crops): those checks are skipped.
MIN_FOV_MM3 = 1e5
#: Modalities measured as MR marrow (DICOM ``Modality``; "" = not given).
MR_MODALITIES = ("", "MR")

#: Per region: smallest plausible vertebral volume (mm³), cranio-caudal height (mm) and mean
#: cross-section (mm², volume / height) -- generous lower bounds, well below every vertebral body
#: (docs/supported-inputs.md gives the anatomy and sources).
SHAPE_LIMITS: dict[str, tuple[float, float, float]] = {
    "cervical": (1500.0, 8.0, 100.0),
    "thoracic": (3000.0, 10.0, 250.0),
    "lumbar": (8000.0, 12.0, 500.0),
}
#: A vertebra lower than this fraction of the median height of the case's other vertebrae of its
#: region is flagged (discs are about a third of a lumbar body's height).
RELATIVE_HEIGHT = 0.5


@dataclass(frozen=True)
class Finding:
    """One plausibility finding.

    Attributes
    ----------
    check : {"modality", "polarity", "labels"}
        The check that found it.
    severity : {"error", "warning"}
        ``error``: measuring would give meaningless numbers (refused unless overridden);
        ``warning``: measured, flagged.
    flag : str
        Short reason for the ``plausibility`` column (``"ct_hu"``, ``"negative_intensities"``, ...).
    message : str
        What is wrong, with the offending values (without the file name or the fix, which the
        caller adds).
    """

    check: str
    severity: str
    flag: str
    message: str


def check_modality(data: np.ndarray, meta: Mapping[str, Any]) -> list[Finding]:
    """Is the image plausibly an MR magnitude image?

    Parameters
    ----------
    data : ndarray of shape (I, J, K)
        Image intensities (any numeric dtype).
    meta : mapping
        Image metadata; ``meta["modality"]`` is the DICOM Modality when the image came from DICOM.

    Returns
    -------
    list of Finding
        Empty when plausible. ``error`` ``modality_<value>`` for a DICOM Modality other than MR;
        ``error`` ``ct_hu`` when at least :data:`CT_AIR_FRACTION` of the voxels are at or below
        :data:`CT_AIR_HU` (air in Hounsfield units); otherwise ``warning`` ``negative_intensities``
        when more than :data:`NEGATIVE_FRACTION` of the voxels are below -:data:`NEGATIVE_TOLERANCE`.
    """
    out: list[Finding] = []
    modality = str(meta.get("modality", "") or "").strip().upper()
    if modality not in MR_MODALITIES:
        out.append(
            Finding(
                "modality",
                "error",
                f"modality_{modality.lower()}",
                f"the DICOM Modality is {modality!r}, not 'MR': spinemri measures MR marrow signal",
            )
        )
    if data.size == 0 or data.dtype.kind in "ub":  # unsigned: nothing below 0
        return out
    n = data.size
    if float(data.min()) >= -NEGATIVE_TOLERANCE:
        return out  # nothing below the tolerance: no air in HU, no negatives (one pass, no temporary)
    n_air = int(np.count_nonzero(data <= CT_AIR_HU))
    if n_air >= CT_AIR_FRACTION * n:
        out.append(
            Finding(
                "modality",
                "error",
                "ct_hu",
                f"{100 * n_air / n:.1f}% of the voxels are <= {CT_AIR_HU:g} (minimum {float(data.min()):g}): "
                "this looks like CT in Hounsfield units (air -1000 HU), not an MR magnitude image",
            )
        )
        return out
    n_neg = int(np.count_nonzero(data < -NEGATIVE_TOLERANCE))
    if n_neg > NEGATIVE_FRACTION * n:
        out.append(
            Finding(
                "modality",
                "warning",
                "negative_intensities",
                f"{100 * n_neg / n:.2f}% of the voxels are negative (minimum {float(data.min()):g}); "
                "MR magnitude images are >= 0: a normalised, phase or CT image? Thresholds stay relative, "
                "but sir (lesion mean / reference median) is meaningless",
            )
        )
    return out


def check_polarity(
    data: np.ndarray,
    vertebra_ids: np.ndarray,
    spacing: Sequence[float],
    polarity: str,
    *,
    bbox: tuple[slice, slice, slice] | None = None,
    marrow_histogram: Hist | None = None,
) -> list[Finding]:
    """Does the marrow / surrounding-tissue contrast fit the expected lesion polarity?

    Parameters
    ----------
    data : ndarray of shape (I, J, K)
        Image intensities.
    vertebra_ids : ndarray of shape (I, J, K), integer
        Vertebra ids (0 = not a vertebra).
    spacing : sequence of 3 float
        Voxel size (mm) along i, j, k.
    polarity : {"bright", "dark"}
        The segmentation polarity (``SegmentParams.polarity``).
    bbox : tuple of 3 slice, optional
        Bounding box of the vertebrae, when known.
    marrow_histogram : Hist, optional
        A histogram of ``data`` over every vertebra voxel (its rows are pooled; integer bins,
        ``scale`` 1), e.g. ``LesionSegmentation.value_histogram`` of this image and these ids:
        the marrow median is read from it, and only the shell is counted here.

    Returns
    -------
    list of Finding
        Empty when plausible or not judgeable (no vertebra, no shell, non-positive surrounding median).
        ``warning`` ``marrow_bright`` when ``polarity="bright"`` and marrow median / shell median >
        :data:`POLARITY_RATIO` (fatty marrow as on T1); ``warning`` ``marrow_dark`` when
        ``polarity="dark"`` and the ratio < 1 / :data:`POLARITY_RATIO` (as on STIR).

    Notes
    -----
    The shell is the box dilation of the vertebrae by :data:`RING_MM` (at least one voxel per axis)
    minus the vertebrae, inside the image: discs, muscle, canal, fat.
    """
    if data.flags.f_contiguous and not data.flags.c_contiguous and data.ndim == 3:
        # a Fortran-ordered image (NIfTI as nibabel loads it): the same check on the C-contiguous
        # reversed-axes views (medians and the box dilation treat the axes alike)
        return check_polarity(
            data.T,
            vertebra_ids.T,
            tuple(spacing)[::-1],
            polarity,
            bbox=None if bbox is None else (bbox[2], bbox[1], bbox[0]),
            marrow_histogram=marrow_histogram,
        )
    pad = [max(1, int(round(RING_MM / float(s)))) for s in spacing]
    if bbox is None:
        found = ndi.find_objects((vertebra_ids > 0).astype(np.uint8))
        if not found or found[0] is None:
            return []
        bbox = found[0]
    box = tuple(
        slice(max(0, sl.start - p), min(n, sl.stop + p))
        for sl, p, n in zip(bbox, pad, data.shape, strict=True)
    )
    fused = _fused_shell_medians(data[box], vertebra_ids[box], pad, marrow_histogram)
    if fused is not False:  # one compiled pass: no inside, dilated or code boxes
        medians = fused
    else:
        inside = vertebra_ids[box] > 0
        if not inside.any():
            return []
        grown = _dilate(inside, pad)
        medians = _shell_medians(data[box], inside, grown, marrow_histogram)
    if medians is None:  # no shell
        return []
    marrow, around = medians
    if not (around > 0 and marrow > 0):
        return []
    ratio = marrow / around
    if polarity == "bright" and ratio > POLARITY_RATIO:
        return [
            Finding(
                "polarity",
                "warning",
                "marrow_bright",
                f"the marrow (median {marrow:g}) is {ratio:.2f} x brighter than the tissue around the "
                f"vertebrae (median {around:g}), as fatty marrow on T1 or T2 without fat suppression; "
                "lesions are searched as bright (STIR / fat-saturated T2): for T1 use polarity 'dark' "
                "(--polarity dark)",
            )
        ]
    if polarity == "dark" and ratio < 1.0 / POLARITY_RATIO:
        return [
            Finding(
                "polarity",
                "warning",
                "marrow_dark",
                f"the marrow (median {marrow:g}) is {1 / ratio:.2f} x darker than the tissue around the "
                f"vertebrae (median {around:g}), as on STIR / fat-suppressed images; lesions are searched "
                "as dark (T1): for STIR use polarity 'bright' (--polarity bright)",
            )
        ]
    return []


def _fused_shell_medians(
    sub: np.ndarray, ids: np.ndarray, pad: Sequence[int], marrow: Hist | None
) -> tuple[float, float] | None | Literal[False]:
    """:func:`_shell_medians` of the box ``sub`` around the vertebra ids ``ids`` dilated by ``pad``
    in one compiled pass (``shell_histogram_range`` of :mod:`spinemri._kernels`: the box dilation of
    the ids as bits, then the shell's histogram over the range of its values), when the marrow
    median is read from ``marrow`` (an integer image of up to 4 bytes, integer bins); False when not
    applicable."""
    integer = sub.dtype.kind in "ui" and sub.dtype.itemsize <= 4 and sub.ndim == 3 and sub.dtype.isnative
    if not (integer and marrow is not None and marrow.scale == 1.0 and float(marrow.lo).is_integer()):
        return False
    if ids.dtype.kind not in "ui" or not ids.dtype.isnative or sub.strides[2] < 0 or ids.strides[2] < 0:
        return False
    pooled = marrow.counts.sum(axis=0)
    if not pooled.any():  # (a histogram over no vertebra voxel: the reference path decides)
        return False
    from ._native import kernels as _kernels

    if sub.dtype.itemsize <= 2:
        lo, hi = int(np.iinfo(sub.dtype).min), int(np.iinfo(sub.dtype).max)
    else:
        found = _kernels.value_range(sub)  # one pass for min and max
        if found is None:
            return False
        lo, hi = found
    if hi - lo >= 1 << 20:
        return False
    unsigned = ids if ids.dtype.kind == "u" else ids.view(f"u{ids.dtype.itemsize}")  # only != 0 is read
    # the shell's histogram from its first to its last value: no pass over the bins of values not there
    first, shell = _kernels.shell_histogram_range(
        unsigned, sub, int(pad[0]), int(pad[1]), int(pad[2]), lo, hi - lo + 1
    )
    if shell.shape[0] == 0:
        return None
    return _hist_median(pooled, int(marrow.lo)), _hist_median(shell, lo + first)


def _dilate(inside: np.ndarray, pad: Sequence[int]) -> np.ndarray:
    """``ndi.maximum_filter(inside, size=2 * pad + 1)`` as bool; one compiled pass on C-contiguous boxes."""
    if inside.flags.c_contiguous and inside.ndim == 3:
        from ._native import kernels as _kernels

        return np.asarray(_kernels.dilate_box(inside.view(np.uint8), *pad)).view(bool)
    return np.asarray(ndi.maximum_filter(inside.view(np.uint8), size=[2 * p + 1 for p in pad])).view(bool)


def _shell_medians(
    sub: np.ndarray, inside: np.ndarray, grown: np.ndarray, marrow: Hist | None = None
) -> tuple[float, float] | None:
    """``np.median`` of ``sub`` over ``inside`` (non-empty) and over ``grown & ~inside``; None
    when that shell is empty.

    Integer images: one compiled pass (``code_histogram`` of :mod:`spinemri._kernels`) histograms
    both sets (8- and 16-bit images over their dtype's whole range, so no pass for the range), and
    each median is read from its histogram, exactly as ``np.median`` gives it (the mean of the two
    middle values for an even count); no gathered copies. With ``marrow`` (a histogram of ``sub``
    over ``inside``, integer bins) only the shell is counted. Other dtypes: ``np.median``.
    """
    integer = sub.dtype.kind in "ui" and sub.dtype.itemsize <= 4 and sub.ndim == 3 and sub.dtype.isnative
    if integer and marrow is not None and marrow.scale == 1.0 and float(marrow.lo).is_integer():
        pooled = marrow.counts.sum(axis=0)
        if pooled.any():
            from ._native import kernels as _kernels

            if sub.dtype.itemsize <= 2:
                lo, hi = int(np.iinfo(sub.dtype).min), int(np.iinfo(sub.dtype).max)
            else:
                lo, hi = int(sub.min()), int(sub.max())
            if hi - lo < 1 << 20:
                code = grown.view(np.uint8) + inside.view(np.uint8)  # 1: shell, 2: inside (not counted)
                hist = _kernels.code_histogram(code, sub, lo, hi - lo + 1, 1)
                if not hist[1].any():
                    return None
                return _hist_median(pooled, int(marrow.lo)), _hist_median(hist[1], lo)
    if integer:
        if sub.dtype.itemsize <= 2:  # every value of the dtype has a bin: no pass for the range
            lo, hi = int(np.iinfo(sub.dtype).min), int(np.iinfo(sub.dtype).max)
        else:
            lo, hi = int(sub.min()), int(sub.max())
        if hi - lo < 1 << 20:
            from ._native import kernels as _kernels

            code = grown.view(np.uint8) + inside.view(np.uint8)  # 1: shell, 2: inside
            hist = _kernels.code_histogram(code, sub, lo, hi - lo + 1, 2)
            if not hist[1].any():
                return None
            return _hist_median(hist[2], lo), _hist_median(hist[1], lo)
    shell = grown & ~inside
    if not shell.any():
        return None
    return float(np.median(sub[inside])), float(np.median(sub[shell]))


def _hist_median(hist: np.ndarray, lo: int) -> float:
    """The median of the values ``lo + b``, each ``hist[b]`` times (``np.median``'s, exactly)."""
    cum = np.cumsum(hist)
    n = int(cum[-1])
    upper = lo + int(np.searchsorted(cum, n // 2, side="right"))  # the value at sorted position n // 2
    if n % 2:
        return float(upper)
    lower = lo + int(np.searchsorted(cum, n // 2 - 1, side="right"))
    return (float(lower) + float(upper)) / 2.0


@dataclass(frozen=True)
class LabelShapes:
    """Size and shape of each vertebra id (arrays indexed ``id - 1``).

    Attributes
    ----------
    volume_mm3 : ndarray of shape (n,), float
        Voxel count x voxel volume.
    height_mm : ndarray of shape (n,), float
        Extent along world z (cranio-caudal, RAS+ S): max - min of the voxel centres plus one
        voxel's z extent.
    ap_mm, lr_mm : ndarray of shape (n,), float
        The same along world y (antero-posterior) and x (left-right).
    area_mm2 : ndarray of shape (n,), float
        Mean cross-section: ``volume_mm3 / height_mm``.
    """

    volume_mm3: np.ndarray
    height_mm: np.ndarray
    ap_mm: np.ndarray
    lr_mm: np.ndarray
    area_mm2: np.ndarray


def label_shapes(
    vertebra_ids: np.ndarray, n: int, affine: np.ndarray, *, bbox: tuple[slice, slice, slice] | None = None
) -> LabelShapes:
    """Volume and world-axis extents of vertebra ids ``1..n``.

    Parameters
    ----------
    vertebra_ids : ndarray of shape (I, J, K), integer
        Vertebra ids ``1..n`` (0 = none).
    n : int
        Number of ids.
    affine : ndarray of shape (4, 4)
        Voxel (i, j, k) -> world (x, y, z) RAS mm.
    bbox : tuple of 3 slice, optional
        A box holding every vertebra voxel, when known.

    Returns
    -------
    LabelShapes
        Zeros for an id without voxels.

    Notes
    -----
    One compiled pass over the box (:func:`spinemri.arrays.moments.label_moments`); from the
    moments of the mask's own labels, :func:`shapes_from_moments` gives the same without a pass.
    """
    mom = label_moments(vertebra_ids, affine, bbox=bbox)
    return shapes_from_moments(mom, [[i + 1] for i in range(n)], affine)


def shapes_from_moments(
    moments: LabelMoments, groups: Sequence[Sequence[int]], affine: np.ndarray
) -> LabelShapes:
    """:class:`LabelShapes` of groups of labels (one vertebra id each) from their :class:`LabelMoments`.

    Parameters
    ----------
    moments : LabelMoments
        :func:`spinemri.arrays.moments.label_moments` of the mask.
    groups : sequence of sequence of int
        The labels of each vertebra id, ``groups[id - 1]`` (``merged`` of
        :func:`spinemri.measurement.vertebra_ids`); labels absent from ``moments`` add nothing.
    affine : ndarray of shape (4, 4)
        Voxel (i, j, k) -> world (x, y, z) RAS mm.

    Returns
    -------
    LabelShapes
        Volume: voxel count x voxel volume; extents: max - min of the voxel centres' world
        coordinates plus one voxel's extent (zeros for a group without voxels).
    """
    lin = np.asarray(affine, float)[:3, :3]
    voxel_mm3 = abs(float(np.linalg.det(lin)))
    one_voxel = np.abs(lin).sum(axis=1)  # world x, y, z extent of one voxel
    n = len(groups)
    ext = np.zeros((3, n))
    vol = np.zeros(n)
    # every (group, label) pair at once: the labels' rows, then per group the sum of the counts and the
    # extremes of the extents (ufunc.at: exact, in any order)
    group_of = [idx for idx, group in enumerate(groups) for _ in group]
    labs = np.array([int(lb) for group in groups for lb in group], dtype=np.int64)
    if labs.size and moments.labels.size:
        rows = np.minimum(np.searchsorted(moments.labels, labs), moments.labels.size - 1)
        hit = moments.labels[rows] == labs  # labels absent from the moments add nothing
        g, rows = np.asarray(group_of, dtype=np.intp)[hit], rows[hit]
        count = np.zeros(n, dtype=np.int64)
        np.add.at(count, g, moments.counts[rows])
        hi = np.full((n, 3), -np.inf)
        lo = np.full((n, 3), np.inf)
        np.maximum.at(hi, g, moments.world_max[rows])
        np.minimum.at(lo, g, moments.world_min[rows])
        has = count > 0
        vol[has] = count[has] * voxel_mm3
        ext[:, has] = (hi[has] - lo[has] + one_voxel).T
    height = ext[2]
    area = np.divide(vol, height, out=np.zeros(n), where=height > 0)
    return LabelShapes(vol, height, ext[1], ext[0], area)


def check_label_shapes(
    shapes: LabelShapes, levels: Sequence[str], truncated: Sequence[bool] | None = None
) -> list[str]:
    """The ``plausibility`` flag of each vertebra: ``"ok"`` or why it is not a vertebral body.

    Parameters
    ----------
    shapes : LabelShapes
        From :func:`label_shapes`, ids ``1..n`` in the order of ``levels``.
    levels : sequence of str
        Level of each id (``levels[id - 1]``).
    truncated : sequence of bool, optional
        Vertebrae cut by the image border: their size is not checked.

    Returns
    -------
    list of str
        Per vertebra ``"ok"`` or reasons joined by ``";"``: ``small_volume`` (below the region's
        :data:`SHAPE_LIMITS` volume), ``thin`` (height below the region's limit, C1 exempt, or below
        :data:`RELATIVE_HEIGHT` x the median height of the other vertebrae of its region when there
        are at least 2 others), ``narrow`` (cross-section below the region's limit). Sacral and
        coccygeal levels, and truncated vertebrae, are ``"ok"``.
    """
    n = len(levels)
    trunc = list(truncated) if truncated is not None else [False] * n
    regions = [region_of(lv) for lv in levels]
    vol, height, area = shapes.volume_mm3.tolist(), shapes.height_mm.tolist(), shapes.area_mm2.tolist()
    # per region, the heights of its checked vertebrae (not truncated, with voxels), ascending: the
    # median of "the others" of each is read from them (no np.median per vertebra)
    checked: dict[str, list[float]] = {}
    for i, region in enumerate(regions):
        if region in SHAPE_LIMITS and not trunc[i] and vol[i] > 0:
            checked.setdefault(region, []).append(height[i])
    for hs in checked.values():
        hs.sort()
    flags = []
    for i, (lv, region) in enumerate(zip(levels, regions, strict=True)):
        limits = SHAPE_LIMITS.get(region)
        if limits is None or trunc[i] or vol[i] <= 0:
            flags.append("ok")
            continue
        min_vol, min_height, min_area = limits
        reasons = []
        if vol[i] < min_vol:
            reasons.append("small_volume")
        others = _median_without(checked[region], height[i])
        relative_thin = others is not None and height[i] < RELATIVE_HEIGHT * others
        if lv != "C1" and (height[i] < min_height or relative_thin):
            reasons.append("thin")
        if area[i] < min_area:
            reasons.append("narrow")
        flags.append(";".join(reasons) or "ok")
    return flags


def _median_without(ascending: list[float], value: float) -> float | None:
    """``float(np.median(others))`` of the values ``ascending`` less one occurrence of ``value`` (one of
    them); None when fewer than 2 are left. NaN when any value is NaN (as ``np.median``)."""
    k = len(ascending) - 1
    if k < 2:
        return None
    if any(v != v for v in ascending):
        return float("nan")
    p = bisect.bisect_left(ascending, value)

    def at(j: int) -> float:  # the j-th of the others, ascending
        return ascending[j] if j < p else ascending[j + 1]

    if k % 2:
        return at(k // 2)
    return (at(k // 2 - 1) + at(k // 2)) / 2.0


def report_findings(findings: Sequence[Finding], source: str, *, check: bool = True) -> list[str]:
    """Raise the errors among ``findings`` (when ``check``) and warn about the rest.

    Parameters
    ----------
    findings : sequence of Finding
        From :func:`check_modality` and :func:`check_polarity`.
    source : str
        The image file, named in every message.
    check : bool, default True
        False: errors are only warned about (the override; the ``plausibility`` columns still
        carry their flags).

    Returns
    -------
    list of str
        The messages warned about (for provenance notes).

    Raises
    ------
    PlausibilityError
        For the first ``error`` finding when ``check`` is true; the message names ``source``,
        says what is wrong and how to override.

    Warns
    -----
    SpinemriWarning
        One per finding not raised.
    """
    notes = []
    for f in findings:
        if f.severity == "error" and check:
            raise PlausibilityError(f"{source}: {f.message}; {OVERRIDE_HINT}")
        suffix = " (plausibility check overridden)" if f.severity == "error" else ""
        msg = f"{source}: {f.message}{suffix}"
        warnings.warn(msg, SpinemriWarning, stacklevel=3)
        notes.append(msg)
    return notes


def patient_flag(findings: Sequence[Finding], levels: Sequence[str], vertebra_flags: Sequence[str]) -> str:
    """The patient table's ``plausibility``: ``"ok"`` or the image flags and the flagged levels.

    Parameters
    ----------
    findings : sequence of Finding
        Image findings (:func:`check_modality`, :func:`check_polarity`).
    levels : sequence of str
        Levels of the vertebra table, in its order.
    vertebra_flags : sequence of str
        :func:`check_label_shapes` of the same vertebrae.

    Returns
    -------
    str
        ``"ok"``, or flags joined by ``";"``, e.g. ``"ct_hu;labels(C2,C3)"``.
    """
    parts = [f.flag for f in findings]
    bad = [lv for lv, fl in zip(levels, vertebra_flags, strict=True) if fl != "ok"]
    if bad:
        parts.append(f"labels({','.join(bad)})")
    return ";".join(parts) or "ok"


def label_messages(levels: Sequence[str], shapes: LabelShapes, vertebra_flags: Sequence[str]) -> str:
    """One message describing every flagged vertebra ("" when none).

    Parameters
    ----------
    levels : sequence of str
        Level of each vertebra.
    shapes : LabelShapes
        Their sizes (:func:`label_shapes`).
    vertebra_flags : sequence of str
        :func:`check_label_shapes`.

    Returns
    -------
    str
        E.g. ``"C2 (small_volume;narrow: 1318 mm3, 17.0 mm high, 78 mm2 cross-section)"``, joined by
        ``", "``.
    """
    return ", ".join(
        f"{lv} ({fl}: {shapes.volume_mm3[i]:.0f} mm3, {shapes.height_mm[i]:.1f} mm high, "
        f"{shapes.area_mm2[i]:.0f} mm2 cross-section)"
        for i, (lv, fl) in enumerate(zip(levels, vertebra_flags, strict=True))
        if fl != "ok"
    )


def check_image(
    data: np.ndarray,
    meta: Mapping[str, Any],
    vertebra_ids: np.ndarray,
    spacing: Sequence[float],
    polarity: str,
    affine: np.ndarray,
    *,
    bbox: tuple[slice, slice, slice] | None = None,
) -> list[Finding]:
    """:func:`check_modality`, then (when the modality is plausible) :func:`check_polarity`.

    Parameters
    ----------
    data : ndarray of shape (I, J, K)
        Image intensities.
    meta : mapping
        Image metadata (``modality``).
    vertebra_ids : ndarray of shape (I, J, K), integer
        Vertebra ids (0 = not a vertebra).
    spacing : sequence of 3 float
        Voxel size (mm) along i, j, k.
    polarity : {"bright", "dark"}
        The segmentation polarity.
    affine : ndarray of shape (4, 4)
        Voxel (i, j, k) -> world (x, y, z) RAS mm.
    bbox : tuple of 3 slice, optional
        A box holding every vertebra voxel.

    Returns
    -------
    list of Finding
        Modality findings; polarity findings only when no modality finding is an error and the
        image is large enough (:func:`judges_anatomy`).
    """
    found = check_modality(data, meta)
    if any(f.severity == "error" for f in found) or not judges_anatomy(data.shape, affine):
        return found
    return found + check_polarity(data, vertebra_ids, spacing, polarity, bbox=bbox)


def check_vertebrae(
    vertebra_ids: np.ndarray,
    levels: Sequence[str],
    affine: np.ndarray,
    truncated: Sequence[bool],
    source: str,
    *,
    check: bool = True,
    shapes: LabelShapes | None = None,
) -> tuple[list[str], list[str]]:
    """Flag vertebrae too small or thin for vertebral bodies; refuse a mask where every one is.

    Parameters
    ----------
    vertebra_ids : ndarray of shape (I, J, K), integer
        Vertebra ids ``1..n``, id ``i`` of level ``levels[i - 1]``.
    levels : sequence of str
        Level of each id.
    affine : ndarray of shape (4, 4)
        Voxel (i, j, k) -> world (x, y, z) RAS mm.
    truncated : sequence of bool
        Vertebrae cut by the image border (not checked).
    source : str
        The mask file, named in the messages.
    check : bool, default True
        False: never raise, only warn.
    shapes : LabelShapes, optional
        :func:`label_shapes` of ``vertebra_ids`` when already known (:func:`shapes_from_moments`
        of the mask's moments); computed otherwise.

    Returns
    -------
    flags : list of str
        Per vertebra, :func:`check_label_shapes`; all ``"ok"`` (not judged) for an image smaller
        than :data:`MIN_FOV_MM3` (:func:`judges_anatomy`).
    notes : list of str
        The messages warned about.

    Raises
    ------
    PlausibilityError
        When ``check`` and at least 2 vertebrae were checkable and every one of them is flagged
        (a cord, canal or disc mask labelled by level).

    Warns
    -----
    SpinemriWarning
        Once, naming every flagged vertebra with its size.
    """
    if not judges_anatomy(vertebra_ids.shape, affine):
        return ["ok"] * len(levels), []
    if shapes is None:
        shapes = label_shapes(vertebra_ids, len(levels), affine)
    flags = check_label_shapes(shapes, levels, truncated)
    if all(fl == "ok" for fl in flags):
        return flags, []
    what = label_messages(levels, shapes, flags)
    checkable = [
        fl
        for fl, lv, tr in zip(flags, levels, truncated, strict=True)
        if not tr and region_of(lv) in SHAPE_LIMITS
    ]
    msg = (
        f"{source}: labels far too small or thin for vertebral bodies (spinal cord or canal, discs?): {what}"
    )
    if len(checkable) >= 2 and all(fl != "ok" for fl in checkable):
        if check:
            raise PlausibilityError(f"{msg}; no label looks like a vertebra; {OVERRIDE_HINT}")
        msg += " (plausibility check overridden)"
    warnings.warn(msg, SpinemriWarning, stacklevel=3)
    return flags, [msg]


def judges_anatomy(shape: Sequence[int], affine: np.ndarray) -> bool:
    """Whether an image is large enough for the contrast and label-shape checks.

    Parameters
    ----------
    shape : sequence of 3 int
        Array shape (I, J, K).
    affine : ndarray of shape (4, 4)
        Voxel (i, j, k) -> world (x, y, z) RAS mm.

    Returns
    -------
    bool
        True when the field of view is at least :data:`MIN_FOV_MM3`.
    """
    voxel = abs(float(np.linalg.det(np.asarray(affine, float)[:3, :3])))
    return float(np.prod([int(n) for n in shape])) * voxel >= MIN_FOV_MM3
