"""Lesion, vertebra and patient tables (DESIGN §5) from a lesion segmentation.

Pure functions on arrays and DataFrames. Every per-vertebra quantity comes
from a few passes over the vertebra voxels (``np.bincount`` on vertebra ids,
one sort for exact medians); there is no loop of full-volume masks per label.

Column definitions (names are stable API):

Per vertebra
    ``vertebra_voxels``, ``vertebra_volume_mm3``, ``lesion_voxels``,
    ``lesion_volume_mm3``, ``hi_volume_ratio`` = lesion / vertebra volume,
    ``hi_area_ratio`` = lesion pixels / vertebra pixels on the vertebra's
    mid-sagittal slice (index ``floor(c + 0.5)`` along the array axis closest
    to left-right, ``c`` the mean index of the vertebra's voxels along it),
    ``lesion_count`` (connected components within the vertebra),
    ``threshold``, ``reference_median``, ``reference_mad``,
    ``mean_intensity``, ``lesion_mean_intensity``, ``sir`` = lesion mean /
    reference median, ``involved`` = lesion_count >= 1, ``region``, ``level``,
    ``label``; extra: ``labels`` (all mask labels merged into the level),
    ``median_intensity``, ``mid_sagittal_index``,
    ``mid_sagittal_vertebra_pixels``, ``mid_sagittal_lesion_pixels``,
    ``truncated`` (touches the image border), ``sins_location``,
    ``level_check`` (does the anatomy confirm the level? ``ok``, ``inferred: ...``,
    ``contradicted: ...`` or ``not checked``; set by :func:`spinemri.measure`).
Per lesion
    ``patient_id``, ``level``, ``lesion_id``, ``voxels``, ``volume_mm3``,
    ``x_mm``, ``y_mm``, ``z_mm`` (centroid, world RAS mm), ``max_intensity``;
    extra: ``region``, ``mean_intensity``, ``truncated``.
Per patient
    ``n_vertebrae``, ``n_involved``, ``involved_levels``,
    ``cervical_involved`` … ``sacral_involved``, ``dominant_region``,
    ``total_lesion_count``, ``total_lesion_volume_mm3``, ``hi_volume_ratio``,
    ``hi_area_ratio``, ``hi_area_ratio_max``; extra: ``n_truncated``.

A vertebra without lesion has zero lesion voxels, count and ratios;
``lesion_mean_intensity`` and ``sir`` are then NaN (the mean of no voxel is
undefined, and 0 would bias any average).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._native import kernels as _kernels
from .arrays.bbox import nonzero_bbox
from .arrays.grouped import MAX_HISTOGRAM_BINS, Hist, grouped_mean_median
from .arrays.morphology import box_half_widths, erode_labels_box
from .frames import frames, patient_frame
from .levels import REGIONS, level_index, region_of
from .params import MetricsParams

__all__ = [
    "VERTEBRA_COLUMNS",
    "LESION_COLUMNS",
    "PATIENT_COLUMNS",
    "sins_location",
    "MetricTables",
    "compute_metrics",
    "patient_table",
    "mid_sagittal_index",
    "truncated_vertebrae",
]

logger = logging.getLogger(__name__)

VERTEBRA_COLUMNS = (
    "patient_id",
    "level",
    "label",
    "labels",
    "region",
    "sins_location",
    "vertebra_voxels",
    "vertebra_volume_mm3",
    "lesion_voxels",
    "lesion_volume_mm3",
    "hi_volume_ratio",
    "hi_area_ratio",
    "lesion_count",
    "involved",
    "threshold",
    "reference_median",
    "reference_mad",
    "mean_intensity",
    "median_intensity",
    "lesion_mean_intensity",
    "sir",
    "mid_sagittal_index",
    "mid_sagittal_vertebra_pixels",
    "mid_sagittal_lesion_pixels",
    "truncated",
    "level_check",
    "plausibility",
)

LESION_COLUMNS = (
    "patient_id",
    "level",
    "region",
    "lesion_id",
    "voxels",
    "volume_mm3",
    "x_mm",
    "y_mm",
    "z_mm",
    "max_intensity",
    "mean_intensity",
    "truncated",
)

PATIENT_COLUMNS = (
    "patient_id",
    "n_vertebrae",
    "n_involved",
    "involved_levels",
    "cervical_involved",
    "thoracic_involved",
    "lumbar_involved",
    "sacral_involved",
    "dominant_region",
    "total_lesion_count",
    "total_lesion_volume_mm3",
    "hi_volume_ratio",
    "hi_area_ratio",
    "hi_area_ratio_max",
    "n_truncated",
    "mask_kind",
    "plausibility",
)

_SINS = {
    **{
        lev: "junctional"
        for lev in ("C1", "C2", "C7", "T1", "T2", "T11", "T12", "T13", "L1", "L5", "L6", "S1")
    },
    **{lev: "mobile" for lev in ("C3", "C4", "C5", "C6", "L2", "L3", "L4")},
    **{f"T{i}": "semirigid" for i in range(3, 11)},
    "Co": "rigid",
}


def sins_location(level: str) -> str:
    """SINS location class of a level (Fisher et al., Spine 2010;35:E1221).

    junctional: occiput-C2, C7-T2, T11-L1, L5-S1 (T13 and L6 count as the
    thoracolumbar / lumbosacral junction; S1 here is the whole sacrum, whose
    top is junctional); mobile: C3-C6, L2-L4; semirigid: T3-T10; rigid:
    S2-S5 (here only the coccyx, ``Co``, which is below S5).

    Parameters
    ----------
    level : str
        A level name from :data:`spinemri.levels.LEVELS`.

    Returns
    -------
    str
        ``"junctional"``, ``"mobile"``, ``"semirigid"`` or ``"rigid"``.

    Raises
    ------
    LabelSchemeError
        If ``level`` is not a level name.
    """
    level_index(level)
    return _SINS[level]


def mid_sagittal_index(index_sum: np.ndarray, count: np.ndarray) -> npt.NDArray[np.floating[Any]]:
    """``floor(c + 0.5)`` with ``c = index_sum / count`` (the mean voxel index along the LR axis).

    Parameters
    ----------
    index_sum : ndarray of shape (N,)
        Per vertebra, the sum over its voxels of the voxel index along the
        array axis closest to left-right.
    count : ndarray of shape (N,)
        Per vertebra, its number of voxels (broadcast against ``index_sum``).

    Returns
    -------
    ndarray of shape (N,), float
        The mean LR index rounded half up to a whole number (still a float
        array, as ``np.floor`` returns): the vertebra's mid-sagittal slice
        index. NaN (or inf) where ``count`` is 0.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        c = index_sum / count
    mid: npt.NDArray[np.floating[Any]] = np.floor(c + 0.5)
    return mid


@dataclass(frozen=True)
class MetricTables:
    """The three tables and the lesion id map renumbered to match ``lesions.lesion_id``."""

    vertebrae: pd.DataFrame
    lesions: pd.DataFrame
    patient: pd.DataFrame
    lesion_ids: np.ndarray


def compute_metrics(
    intensity: np.ndarray,
    vertebrae: np.ndarray,
    levels: Sequence[str],
    labels: Sequence[Sequence[int]],
    lesion_ids: np.ndarray,
    lesion_vertebra: np.ndarray,
    thresholds: np.ndarray,
    reference_median: np.ndarray,
    reference_mad: np.ndarray,
    affine: np.ndarray,
    lr_axis: int,
    *,
    patient_id: str = "patient",
    params: MetricsParams | None = None,
    bbox: tuple[slice, slice, slice] | None = None,
    mask_kind: str = "unknown",
    value_histogram: Hist | None = None,
    lesion_bbox: tuple[slice, slice, slice] | None = None,
    lesion_ids_writable: bool = False,
    truncated: np.ndarray | None = None,
    level_check: str | Sequence[str] = "not checked",
    plausibility: str | Sequence[str] = "ok",
    patient_plausibility: str = "ok",
) -> MetricTables:
    """Per-lesion, per-vertebra and per-patient tables.

    Parameters
    ----------
    intensity : ndarray of float, shape (I, J, K)
        The image the lesions were thresholded on.
    vertebrae : ndarray of int, shape (I, J, K)
        Vertebra ids ``1..n`` (0 elsewhere); id ``v`` is ``levels[v - 1]``.
    levels : sequence of str, length n
        Level name of each vertebra id, cranial → caudal.
    labels : sequence of sequences of int, length n
        Mask labels merged into each vertebra id.
    lesion_ids : ndarray of int, shape (I, J, K)
        Lesion components ``1..N`` (0 elsewhere), each inside one vertebra.
    lesion_vertebra : ndarray of int, shape (N + 1,)
        Vertebra id of each lesion id.
    thresholds, reference_median, reference_mad : ndarray, shape (n + 1,)
        Per vertebra id, from :func:`spinemri.segmentation.lesions.segment_lesions`.
    affine : ndarray of shape (4, 4)
        Voxel index → world RAS+ mm (for lesion centroids and voxel volume).
    lr_axis : int
        Array axis closest to patient left-right (for the mid-sagittal slice).
    patient_id : str, default "patient"
    params : MetricsParams, optional
    bbox : tuple of 3 slice, optional
        The bounding box of ``vertebrae > 0`` (:func:`spinemri.arrays.bbox.nonzero_bbox`;
        ``LesionSegmentation.box``) when already known.
    mask_kind : str, default "unknown"
        Written to the patient table's ``mask_kind`` column (see :func:`patient_table`).
    value_histogram : Hist, optional
        The histogram of ``intensity`` per vertebra id over the vertebra voxels of ``bbox``,
        binned from the minimum of ``intensity`` over ``bbox`` (``LesionSegmentation.value_histogram``
        of the same image, ids and box): the mean and median intensities are read from it instead
        of from a second pass over the voxels (the same numbers). Used only for an integer image
        without ``intensity_erosion_mm``.
    lesion_bbox : tuple of 3 slice, optional
        A box of the image holding every non-zero voxel of ``lesion_ids``
        (``LesionSegmentation.lesion_box``) when known: the lesion voxels are searched there
        only; otherwise in their bounding box within ``bbox``, found here.
    lesion_ids_writable : bool, default False
        True when ``lesion_ids`` is not needed after the call (e.g. a segmentation's own map): it
        is then renumbered in place and returned as ``MetricTables.lesion_ids`` (no new full-size
        map) when ``lesion_bbox`` is given, every lesion voxel is in a vertebra, and it is a
        writeable C-contiguous array of the renumbered map's dtype; otherwise a new map is made.
    truncated : ndarray of bool, shape (n + 1,), optional
        :func:`truncated_vertebrae` of ``vertebrae`` (and ``bbox``) when already known; computed
        otherwise.
    level_check : str or sequence of str, default "not checked"
        The vertebra table's ``level_check`` column: one value for every row or one per vertebra
        (:func:`spinemri.measure` gives the anatomy check of the scheme).
    plausibility : str or sequence of str, default "ok"
        The vertebra table's ``plausibility`` column, likewise (:func:`spinemri.measure` gives
        :func:`spinemri.plausibility.check_vertebrae`'s flags).
    patient_plausibility : str, default "ok"
        The patient table's ``plausibility`` (:func:`spinemri.plausibility.patient_flag`).

    Returns
    -------
    MetricTables
        Lesions are numbered ``1..N`` in the order (level cranial → caudal,
        centroid superior → inferior, posterior → anterior, left → right), so
        ids do not depend on the array orientation; ``lesion_ids`` is
        renumbered accordingly.
    """
    mp = params or MetricsParams()
    n = len(levels)
    shape = vertebrae.shape
    affine = np.asarray(affine, dtype=np.float64)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))

    box = bbox if bbox is not None else nonzero_bbox(vertebrae)
    vox = _VertebraVoxels.of(
        intensity, vertebrae, lesion_ids, box, n, lr_axis, mp, _spacing(affine), value_histogram, lesion_bbox
    )
    tab, les_tab = vox.tab, vox.les_tab
    count = tab.sum(axis=1).astype(np.float64)
    les_count = les_tab.sum(axis=1).astype(np.float64)
    n_lr = shape[lr_axis]
    mid = mid_sagittal_index((tab * np.arange(n_lr)).sum(axis=1).astype(np.float64), count)
    rows_ = np.flatnonzero(count > 0)
    mid_vert = np.zeros(n + 1)
    mid_les = np.zeros(n + 1)
    mid_vert[rows_] = tab[rows_, mid[rows_].astype(np.intp)]
    mid_les[rows_] = les_tab[rows_, mid[rows_].astype(np.intp)]
    if truncated is None:
        truncated = truncated_vertebrae(vertebrae, n, bbox=box)
    mean_int, med_int = vox.mean, vox.median
    with np.errstate(invalid="ignore", divide="ignore"):
        les_mean = np.bincount(vox.les_v, weights=vox.les_vals, minlength=n + 1) / les_count
    lesion_count = np.bincount(np.asarray(lesion_vertebra[1:], dtype=np.int64), minlength=n + 1)

    # --- lesions ---------------------------------------------------------------------------
    n_les = len(lesion_vertebra) - 1
    vals_les = vox.les_vals.astype(np.float64)
    les_coords = vox.les_coords
    les_border = np.zeros(les_coords[0].shape, dtype=bool)
    for ax in range(3):
        les_border |= (les_coords[ax] == 0) | (les_coords[ax] == shape[ax] - 1)
    lesion_rows, lut = _lesion_rows(
        vox.les_ids,
        list(les_coords),
        vals_les,
        les_border,
        lesion_vertebra,
        levels,
        affine,
        voxel_mm3,
        patient_id,
    )
    # renumbered lesion map, written only at lesion voxels, in the smallest dtype holding n_les
    id_dtype = np.uint8 if n_les < 1 << 8 else np.uint16 if n_les < 1 << 16 else np.int32
    in_place = (
        lesion_ids_writable
        and vox.complete
        and lesion_ids.dtype == id_dtype
        and lesion_ids.flags.c_contiguous
        and lesion_ids.flags.writeable
    )
    # in place: every non-zero voxel of lesion_ids is in les_index, so every one is overwritten
    new_ids = lesion_ids if in_place else np.zeros(shape, dtype=id_dtype)
    if n_les:
        new_ids.ravel()[vox.les_index] = lut[vox.les_ids]

    ids = np.arange(1, n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hi_vol = np.where(count[ids] > 0, les_count[ids] / count[ids], 0.0)
        hi_area = np.where(mid_vert[ids] > 0, mid_les[ids] / mid_vert[ids], 0.0)
        sir = les_mean[ids] / reference_median[ids]
    vert_columns: dict[str, Any] = {
        "patient_id": [patient_id] * n,
        "level": list(levels),
        "label": [int(min(lb)) for lb in labels],
        "labels": [";".join(str(int(x)) for x in sorted(lb)) for lb in labels],
        "region": [region_of(lev) for lev in levels],
        "sins_location": [sins_location(lev) for lev in levels],
        "vertebra_voxels": count[ids].astype(np.int64),
        "vertebra_volume_mm3": count[ids] * voxel_mm3,
        "lesion_voxels": les_count[ids].astype(np.int64),
        "lesion_volume_mm3": les_count[ids] * voxel_mm3,
        "hi_volume_ratio": hi_vol,
        "hi_area_ratio": hi_area,
        "lesion_count": lesion_count[ids].astype(np.int64),
        "involved": lesion_count[ids] >= 1,
        "threshold": np.asarray(thresholds, dtype=np.float64)[ids],
        "reference_median": np.asarray(reference_median, dtype=np.float64)[ids],
        "reference_mad": np.asarray(reference_mad, dtype=np.float64)[ids],
        "mean_intensity": mean_int[ids],
        "median_intensity": med_int[ids],
        "lesion_mean_intensity": les_mean[ids],
        "sir": sir,
        "mid_sagittal_index": mid[ids].astype(np.int64),
        "mid_sagittal_vertebra_pixels": mid_vert[ids].astype(np.int64),
        "mid_sagittal_lesion_pixels": mid_les[ids].astype(np.int64),
        "truncated": truncated[ids],
        "level_check": [level_check] * n if isinstance(level_check, str) else list(level_check),
        "plausibility": plausibility if isinstance(plausibility, str) else list(plausibility),
    }
    # the patient row from the columns' arrays (the same values the frame holds)
    patient_row = _patient_row(
        lambda name, dtype=None: np.asarray(vert_columns[name], dtype=dtype), n, True, patient_id, mask_kind
    )
    patient_row["plausibility"] = patient_plausibility
    if n_les:
        vert, lesions, patient = frames(
            (vert_columns, VERTEBRA_COLUMNS, n),
            (lesion_rows, LESION_COLUMNS, n_les),
            patient_frame(patient_row, PATIENT_COLUMNS),
        )
    else:
        vert, patient = frames(
            (vert_columns, VERTEBRA_COLUMNS, n), patient_frame(patient_row, PATIENT_COLUMNS)
        )
        lesions = pd.DataFrame(lesion_rows, columns=list(LESION_COLUMNS))
        lesions = lesions.astype({"lesion_id": np.int64, "voxels": np.int64, "truncated": bool})
        lesions = lesions.astype(
            {c: np.float64 for c in ("volume_mm3", "x_mm", "y_mm", "z_mm", "max_intensity", "mean_intensity")}
        )
    return MetricTables(vert, lesions, patient, new_ids)


def truncated_vertebrae(
    vertebrae: np.ndarray, n: int, *, bbox: tuple[slice, slice, slice] | None = None
) -> npt.NDArray[np.bool_]:
    """Which vertebra ids have a voxel on one of the six faces of the image (the ``truncated`` column).

    Parameters
    ----------
    vertebrae : ndarray of int, shape (I, J, K)
        Vertebra ids ``1..n`` (0 elsewhere).
    n : int
        Number of vertebra ids.
    bbox : tuple of 3 slice, optional
        The bounding box of ``vertebrae > 0`` when already known (only the faces of the image it
        reaches are read); computed otherwise.

    Returns
    -------
    ndarray of bool, shape (n + 1,)
        Indexed by vertebra id; entry 0 (background) is False.
    """
    shape = vertebrae.shape
    box = bbox if bbox is not None else nonzero_bbox(vertebrae)
    truncated = np.zeros(n + 1, dtype=bool)
    if box is not None:
        vb = vertebrae[box]
        for ax in range(3):
            for at_face, idx in ((box[ax].start == 0, 0), (box[ax].stop == shape[ax], vb.shape[ax] - 1)):
                if at_face:
                    face = np.take(vb, idx, axis=ax).ravel().astype(np.intp)
                    truncated |= np.bincount(face, minlength=n + 1)[: n + 1] > 0
    truncated[0] = False
    return truncated


class _VertebraVoxels:
    """What the tables need from the voxels of the vertebrae: voxel counts per (vertebra id, index
    along the left-right axis), with and without lesion, per-vertebra intensity statistics, and the
    lesion voxels (C-order flat indices in the image, lesion id, vertebra id, intensity, and their
    image coordinates)."""

    def __init__(
        self,
        tab: np.ndarray,
        les_tab: np.ndarray,
        les: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]],
        mean_median: tuple[np.ndarray, np.ndarray],
    ) -> None:
        self.tab, self.les_tab = tab, les_tab
        self.les_index, self.les_ids, self.les_v, self.les_vals, self.les_coords = les
        #: whether ``les_index`` holds every non-zero voxel of the lesion map (a known lesion box
        #: and no lesion voxel outside the vertebrae)
        self.complete = False
        #: per vertebra id: mean and exact median intensity (NaN without voxels)
        self.mean, self.median = mean_median

    @classmethod
    def of(
        cls,
        intensity: np.ndarray,
        vertebrae: np.ndarray,
        lesion_ids: np.ndarray,
        box: tuple[slice, slice, slice] | None,
        n: int,
        lr_axis: int,
        mp: MetricsParams,
        spacing: tuple[float, float, float],
        value_histogram: Hist | None = None,
        lesion_bbox: tuple[slice, slice, slice] | None = None,
    ) -> _VertebraVoxels:
        shape = vertebrae.shape
        n_lr = shape[lr_axis]
        if box is None:
            empty = np.zeros(0, dtype=np.intp)
            nan = np.full(n + 1, np.nan)
            tab = np.zeros((n + 1, n_lr), dtype=np.int64)
            return cls(tab, tab.copy(), (empty, empty, empty, np.zeros(0), (empty,) * 3), (nan, nan.copy()))
        vb = vertebrae[box]
        # the lesion voxels (in vertebrae), in C order of the image, searched in the lesions' own box
        les_box: tuple[slice, ...] | None = None
        if lesion_bbox is not None:  # known (the segmentation's): no search over the vertebrae's box
            if all(s.stop > s.start for s in lesion_bbox):
                les_box = lesion_bbox
        else:
            found = nonzero_bbox(np.ascontiguousarray(lesion_ids[box]))
            if found is not None:
                les_box = tuple(
                    slice(b.start + c.start, b.start + c.stop) for b, c in zip(box, found, strict=True)
                )
        if les_box is None:
            les_index = np.zeros(0, dtype=np.intp)
            coords: tuple[np.ndarray, ...] = (les_index, les_index, les_index)
            les_ids = np.zeros(0, dtype=np.int64)
            les_v = np.zeros(0, dtype=np.intp)
            les_vals = np.zeros(0, dtype=intensity.dtype)
            complete = lesion_bbox is not None  # the segmentation's box: no lesion voxel at all
        else:
            lb = np.ascontiguousarray(lesion_ids[les_box])
            pos = np.flatnonzero(lb)
            n_lesion_voxels = pos.size
            # the voxels' image coordinates, once: every value is read at them (no flat-index
            # round trips per array, no copy of a Fortran-ordered box)
            coords = tuple(
                c + int(s.start) for c, s in zip(np.unravel_index(pos, lb.shape), les_box, strict=True)
            )
            les_index = np.ravel_multi_index(coords, shape)
            at = _Gather(coords, les_index)
            v_all = at.take(vertebrae)
            keep = v_all > 0
            ids_all = lb.ravel()[pos]
            if not keep.all():
                coords = tuple(c[keep] for c in coords)
                les_index, ids_all, v_all = les_index[keep], ids_all[keep], v_all[keep]
                at = _Gather(coords, les_index)
            complete = lesion_bbox is not None and les_index.size == n_lesion_voxels
            les_ids = ids_all.astype(np.int64)
            les_v = v_all.astype(np.intp)
            les_vals = at.take(intensity)
        lr_les = coords[lr_axis]
        les_tab = np.bincount(les_v * n_lr + lr_les, minlength=(n + 1) * n_lr).reshape(n + 1, n_lr)
        les = (les_index, les_ids, les_v, les_vals, coords)
        kernel = (
            mp.intensity_erosion_mm == 0
            and n < 1 << 8
            and vb.size < 1 << 31
            and intensity.dtype.kind in "iu"
            and intensity.dtype != np.uint64
        )
        if kernel:
            # strided views of the box (the kernel reads any memory order; no copies)
            vk = vb if vb.dtype == np.uint8 else vb.astype(np.uint8)
            ik = (
                intensity[box]
                if intensity.dtype.isnative
                else intensity[box].astype(intensity.dtype.newbyteorder("="))
            )
            fortran = ik.strides[0] < ik.strides[2]
            if value_histogram is not None and value_histogram.counts.shape[0] == n + 1:
                # the segmentation's histogram of these voxels: only the counts per left-right index
                # are left to count (no intensity read)
                if fortran:  # read the reversed-axes views row by row
                    tab_b, _ = _kernels.vertebra_tables(vk.T, ik.T, 2 - lr_axis, n, 0, 0)
                else:
                    tab_b, _ = _kernels.vertebra_tables(vk, ik, lr_axis, n, 0, 0)
                tab = np.zeros((n + 1, n_lr), dtype=np.int64)
                tab[:, box[lr_axis]] = tab_b
                out = cls(tab, les_tab, les, (value_histogram.mean(), value_histogram.medians()))
                out.complete = complete
                return out
            # min and max in one compiled pass, in memory order (a Fortran-ordered box's reversed view)
            rng = _kernels.value_range(ik.T if fortran else ik)
            lo, hi = rng if rng is not None else (0, 0)
            nbins = hi - lo + 1
            if nbins * (n + 1) <= MAX_HISTOGRAM_BINS:
                if fortran:  # Fortran order: read the reversed-axes views row by row
                    tab_b, hist = _kernels.vertebra_tables(vk.T, ik.T, 2 - lr_axis, n, lo, nbins)
                else:
                    tab_b, hist = _kernels.vertebra_tables(vk, ik, lr_axis, n, lo, nbins)
                tab = np.zeros((n + 1, n_lr), dtype=np.int64)
                tab[:, box[lr_axis]] = tab_b
                h = Hist(hist, float(lo), 1.0)
                out = cls(tab, les_tab, les, (h.mean(), h.medians()))
                out.complete = complete
                return out
        # other images: gather the vertebra voxels' values (float intensities, very wide integer
        # ranges, intensity statistics on eroded vertebrae)
        nzi = _flat_nonzero(vertebrae)
        v = _take_flat(vertebrae, nzi).astype(np.intp)
        vals = _take_flat(intensity, nzi)
        lr = np.unravel_index(nzi, shape)[lr_axis]
        tab = np.bincount(v * n_lr + lr, minlength=(n + 1) * n_lr).reshape(n + 1, n_lr)
        if mp.intensity_erosion_mm > 0:
            sel = _eroded_at(vertebrae, nzi, spacing, mp.intensity_erosion_mm)
            v, vals = v[sel], vals[sel]
        out = cls(tab, les_tab, les, grouped_mean_median(vals, v, n + 1))
        out.complete = complete
        return out


def _flat_nonzero(a: np.ndarray) -> np.ndarray:
    """C-order flat indices of ``a > 0``, ascending, a slab of axis 0 at a time (no full-size mask)."""
    step = max(1, (1 << 22) // max(1, int(np.prod(a.shape[1:], dtype=np.int64))))
    plane = int(np.prod(a.shape[1:], dtype=np.int64))
    parts = [np.flatnonzero(a[i : i + step] > 0) + i * plane for i in range(0, a.shape[0], step)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)


class _Gather:
    """Values of 3-D arrays at voxels given by their coordinates and C-order flat indices (both)."""

    def __init__(self, coords: tuple[np.ndarray, ...], flat_c: np.ndarray) -> None:
        self.coords, self.flat_c = coords, flat_c
        self._flat_f: dict[tuple[int, ...], np.ndarray] = {}

    def take(self, a: np.ndarray) -> np.ndarray:
        """``a.ravel()[flat_c]`` (``a[coords]``) without copying a non-C-contiguous ``a`` whole."""
        if a.flags.c_contiguous:
            return cast(np.ndarray, a.ravel()[self.flat_c])
        if a.flags.f_contiguous:
            if a.shape not in self._flat_f:
                self._flat_f[a.shape] = np.ravel_multi_index(self.coords, a.shape, order="F")
            return cast(np.ndarray, a.ravel(order="F")[self._flat_f[a.shape]])
        return cast(np.ndarray, a[self.coords])


def _take_flat(a: np.ndarray, flat_c: np.ndarray) -> np.ndarray:
    """``a.ravel()[flat_c]`` (C-order flat indices) without copying a non-C-contiguous ``a`` whole."""
    if a.flags.c_contiguous:
        return cast(np.ndarray, a.ravel()[flat_c])
    if a.flags.f_contiguous:
        coords = np.unravel_index(flat_c, a.shape)
        return a.ravel(order="F")[np.ravel_multi_index(coords, a.shape, order="F")]
    return a[np.unravel_index(flat_c, a.shape)]


def _eroded_at(
    vertebrae: np.ndarray, nzi: np.ndarray, spacing: tuple[float, float, float], margin_mm: float
) -> np.ndarray:
    """:func:`~spinemri.arrays.morphology.erode_labels` of ``vertebrae`` read at the flat indices ``nzi``.

    Computed on the vertebrae's bounding box grown by the erosion half-widths (clipped to the
    image), which is the box :func:`~spinemri.arrays.morphology.erode_labels_box` works on itself.
    """
    if nzi.size == 0:
        return np.zeros(0, dtype=bool)
    hw = box_half_widths(spacing, margin_mm)
    shape = vertebrae.shape
    coords = np.unravel_index(nzi, shape)
    lo = [max(int(c.min()) - h, 0) for c, h in zip(coords, hw, strict=True)]
    hi = [min(int(c.max()) + 1 + h, s) for c, h, s in zip(coords, hw, shape, strict=True)]
    sub = np.ascontiguousarray(vertebrae[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]])
    core = erode_labels_box(sub, hw)
    local = tuple(c - o for c, o in zip(coords, lo, strict=True))
    return core[local]


def _spacing(affine: np.ndarray) -> tuple[float, float, float]:
    s = np.sqrt(np.sum(affine[:3, :3] ** 2, axis=0))
    return (float(s[0]), float(s[1]), float(s[2]))


def _lesion_rows(
    les: np.ndarray,
    coords: list[np.ndarray],
    vals: np.ndarray,
    border: np.ndarray,
    lesion_vertebra: np.ndarray,
    levels: Sequence[str],
    affine: np.ndarray,
    voxel_mm3: float,
    patient_id: str,
) -> tuple[dict[str, object], np.ndarray]:
    """Columns of the lesion table and the old → new lesion id lookup table."""
    n_les = len(lesion_vertebra) - 1
    lut = np.zeros(n_les + 1, dtype=np.int32)
    if n_les == 0:
        return {c: [] for c in LESION_COLUMNS}, lut
    les = les.astype(np.int64)
    size = np.bincount(les, minlength=n_les + 1).astype(np.float64)
    mean_ijk = np.stack([np.bincount(les, weights=c, minlength=n_les + 1) for c in coords], axis=1).astype(
        np.float64
    )
    mean_ijk[1:] /= size[1:, None]
    xyz = mean_ijk @ affine[:3, :3].T + affine[:3, 3]
    sums = np.bincount(les, weights=vals, minlength=n_les + 1)
    vmax = np.full(n_les + 1, np.nan)
    if size[1:].all():  # every lesion has voxels: its maximum, by one unbuffered ufunc pass (no sort)
        vmax[1:] = -np.inf
        np.maximum.at(vmax, les, vals)
    else:  # (lesions without voxels get the sort's neighbour, as ever)
        order = np.lexsort((vals, les))  # by lesion, then value: the last of each lesion is its maximum
        ends = np.cumsum(size.astype(np.int64))  # size[0] == 0
        vmax[1:] = vals[order][ends[1:] - 1]
    touches = np.bincount(les[border], minlength=n_les + 1) > 0
    # orientation-independent order: level, then superior -> inferior, posterior -> anterior, left -> right
    r = np.round(xyz[1:], 6)
    key = np.lexsort((r[:, 0], r[:, 1], -r[:, 2], lesion_vertebra[1:]))
    old = key + 1  # old ids in output order
    lut[old] = np.arange(1, n_les + 1, dtype=np.int32)
    lev = [levels[int(x) - 1] for x in lesion_vertebra[old]]
    rows: dict[str, object] = {
        "patient_id": [patient_id] * n_les,
        "level": lev,
        "region": [region_of(x) for x in lev],
        "lesion_id": np.arange(1, n_les + 1, dtype=np.int64),
        "voxels": size[old].astype(np.int64),
        "volume_mm3": size[old] * voxel_mm3,
        "x_mm": xyz[old, 0],
        "y_mm": xyz[old, 1],
        "z_mm": xyz[old, 2],
        "max_intensity": vmax[old],
        "mean_intensity": sums[old] / size[old],
        "truncated": touches[old],
    }
    return rows, lut


def patient_table(
    vertebrae: pd.DataFrame, patient_id: str = "patient", *, mask_kind: str = "unknown"
) -> pd.DataFrame:
    """One-row patient table from a vertebra table (DESIGN §5).

    ``hi_volume_ratio`` = Σ lesion volume / Σ vertebra volume;
    ``hi_area_ratio`` = Σ mid-sagittal lesion pixels / Σ mid-sagittal vertebra
    pixels; ``dominant_region`` = region with the largest lesion volume (ties:
    the most cranial), ``"none"`` without lesion.

    Parameters
    ----------
    vertebrae : DataFrame
        The vertebra table of :func:`compute_metrics` (one row per vertebra,
        columns ``level``, ``region``, ``involved``, ``lesion_count``,
        ``lesion_volume_mm3``, ``vertebra_volume_mm3``, ``hi_area_ratio``,
        ``mid_sagittal_vertebra_pixels``, ``mid_sagittal_lesion_pixels`` and
        optionally ``truncated``); may have no rows.
    patient_id : str, default "patient"
        Written to the ``patient_id`` column.
    mask_kind : str, default "unknown"
        What the vertebral mask covers (``body``, ``whole_vertebra``, ``unknown``;
        :mod:`spinemri.arrays.mask_kind`), written to the ``mask_kind`` column.

    Returns
    -------
    DataFrame of one row
        Columns :data:`PATIENT_COLUMNS`: counts of vertebrae, involved
        vertebrae and lesions, the involved levels (``;``-joined, cranial
        first), per-region involvement flags, the dominant region, the total
        lesion volume (mm³) and the patient-level volume and area ratios
        (0.0 when the denominator is 0).
    """
    vt = vertebrae
    row = _patient_row(
        lambda name, dtype=None: vt[name].to_numpy(dtype=dtype),
        len(vt),
        "truncated" in vt,
        patient_id,
        mask_kind,
    )
    return frames(patient_frame(row, PATIENT_COLUMNS))[0]


def _patient_row(
    column: Callable[..., np.ndarray], n_rows: int, has_truncated: bool, patient_id: str, mask_kind: str
) -> dict[str, object]:
    """:func:`patient_table`'s row from the vertebra table's columns: ``column(name, dtype=None)`` gives
    one as an array (read from the frame, or from the arrays the frame is built from: no column
    lookups in a fresh frame)."""
    involved = column("involved", dtype=bool)
    levels = column("level", dtype=object)
    regions = column("region", dtype=object)
    les_vol = column("lesion_volume_mm3", dtype=np.float64)
    involved_levels = ";".join(sorted(levels[involved], key=level_index))
    dominant = "none"
    best = 0.0
    in_region = {reg: regions == reg for reg in REGIONS}  # (each compared once)
    for reg in REGIONS:
        vol = float(les_vol[in_region[reg]].sum())
        if vol > best:
            dominant, best = reg, vol
    vvol = float(column("vertebra_volume_mm3", dtype=np.float64).sum())
    mid_v = float(column("mid_sagittal_vertebra_pixels", dtype=np.float64).sum())
    mid_l = float(column("mid_sagittal_lesion_pixels", dtype=np.float64).sum())
    row: dict[str, object] = {
        "patient_id": patient_id,
        "n_vertebrae": int(n_rows),
        "n_involved": int(involved.sum()),
        "involved_levels": involved_levels,
        **{f"{reg}_involved": bool(np.any(involved & in_region[reg])) for reg in REGIONS},
        "dominant_region": dominant,
        "total_lesion_count": int(column("lesion_count").sum()),
        "total_lesion_volume_mm3": float(les_vol.sum()),
        "hi_volume_ratio": float(les_vol.sum()) / vvol if vvol > 0 else 0.0,
        "hi_area_ratio": mid_l / mid_v if mid_v > 0 else 0.0,
        "hi_area_ratio_max": float(column("hi_area_ratio", dtype=np.float64).max()) if n_rows else 0.0,
        "n_truncated": int(column("truncated", dtype=bool).sum()) if has_truncated else 0,
        "mask_kind": mask_kind,
        "plausibility": "ok",  # spinemri.measure fills it (spinemri.plausibility)
    }
    return row
