""":func:`measure`: one case, image + vertebral mask → lesion mask and metric tables.

Pure: takes Volumes, returns a frozen :class:`Measurement`; no file I/O (the
``spinemri measure`` command and the pipeline write the outputs).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from .anatomy_check import label_shapes
from .arrays.bbox import nonzero_bbox
from .arrays.labels import check_label_values
from .arrays.mask_kind import check_mask_kind
from .arrays.moments import label_moments_with_bbox
from .errors import ConfigError, GeometryError, SpinemriWarning
from .levels import LabelScheme, level_index
from .metrics import compute_metrics, truncated_vertebrae
from .params import MetricsParams, SegmentParams, as_dict
from .plausibility import (
    check_modality,
    check_polarity,
    check_vertebrae,
    judges_anatomy,
    patient_flag,
    report_findings,
    shapes_from_moments,
)
from .scheme_choice import choose_scheme, warn_if_contradicted
from .segmentation.lesions import segment_lesions
from .volume import Volume

__all__ = ["DENSE_LABEL_LIMIT", "Measurement", "measure", "vertebra_ids", "vertebra_lut"]

logger = logging.getLogger(__name__)

_SEGMENT_KEYS = {f.name for f in dataclasses.fields(SegmentParams)}
_METRICS_KEYS = {f.name for f in dataclasses.fields(MetricsParams)}


@dataclass(frozen=True, eq=False)
class Measurement:
    """The result of :func:`measure` for one patient.

    Attributes
    ----------
    vertebrae : DataFrame
        One row per level present in the mask, cranial → caudal (DESIGN §5).
    lesions : DataFrame
        One row per lesion component (a lesion crossing an endplate is one row
        in each vertebra it touches).
    patient : DataFrame
        One row.
    lesion_mask : Volume
        Lesion ids on the image grid (0 = none); ids match
        ``lesions.lesion_id``. dtype: the smallest of uint8, uint16, int32
        holding the number of lesions.
    scheme : LabelScheme
        The label scheme used; ``scheme_reason`` says why it was chosen.
    params, metrics_params : SegmentParams, MetricsParams
    unmapped_labels : tuple of int
        Mask labels that are not vertebrae in the scheme (discs, canal, ...): ignored.
    notes : tuple of str
        Everything worth recording in provenance (scheme choice, fallbacks).
    mask_kind : str
        What the mask covers: ``body``, ``whole_vertebra`` or ``unknown``
        (``mask.meta["mask_kind"]`` as the reader recorded it; docs/metrics.md).
    timings_s : mapping of str to float
        Wall time of each step in seconds.
    check_plausibility : bool
        Whether implausible inputs were refused (False: the override of :func:`measure`).
    """

    vertebrae: pd.DataFrame
    lesions: pd.DataFrame
    patient: pd.DataFrame
    lesion_mask: Volume
    scheme: LabelScheme
    scheme_reason: str
    params: SegmentParams
    metrics_params: MetricsParams
    patient_id: str
    unmapped_labels: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    mask_kind: str = "unknown"
    timings_s: Mapping[str, float] = field(default_factory=dict)
    check_plausibility: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "timings_s", MappingProxyType(dict(self.timings_s)))

    def parameters(self) -> dict[str, Any]:
        """JSON-able record of every parameter and the scheme (for provenance).

        Returns
        -------
        dict of str to Any
            ``segment`` and ``metrics``: the :class:`SegmentParams` and
            :class:`MetricsParams` fields as dicts; ``scheme``: its ``name``,
            ``source`` and the ``reason`` it was chosen; ``patient_id``;
            ``unmapped_labels``: list of int; ``mask_kind``: str; ``check_plausibility``: bool.
        """
        return {
            "segment": as_dict(self.params),
            "metrics": as_dict(self.metrics_params),
            "scheme": {"name": self.scheme.name, "source": self.scheme.source, "reason": self.scheme_reason},
            "patient_id": self.patient_id,
            "unmapped_labels": list(self.unmapped_labels),
            "mask_kind": self.mask_kind,
            "check_plausibility": self.check_plausibility,
        }


def vertebra_ids(
    mask: np.ndarray,
    mapping: Mapping[int, str],
    *,
    bbox: tuple[slice, slice, slice] | None = None,
    max_label: int | None = None,
) -> tuple[np.ndarray, list[str], list[list[int]]]:
    """Relabel a mask to vertebra ids ``1..n`` ordered cranial → caudal (labels of one level merged).

    Parameters
    ----------
    mask : ndarray of shape (I, J, K), integer
        Non-negative mask labels (0 background).
    mapping : mapping of int to str
        Mask label to level, for the labels to keep (e.g. the ``mapped``
        part of :meth:`LabelScheme.split_labels`); labels not in it become 0.
    bbox : tuple of 3 slice, optional
        The bounding box of the mask's non-zero labels
        (:func:`spinemri.arrays.bbox.nonzero_bbox`) when already known;
        computed otherwise.
    max_label : int, optional
        The largest label of ``mask`` when already known (e.g. from
        :func:`spinemri.arrays.moments.label_moments`); computed otherwise.

    Returns
    -------
    ids : ndarray of shape (I, J, K), uint8 (uint16 from 255 levels)
        Vertebra id ``1..n`` of each voxel, 0 outside the mapped labels; id
        1 is the most cranial level. In the mask's memory order (Fortran
        order for a Fortran-ordered mask, else C order). When the mapping is
        the identity on a C- or Fortran-contiguous mask of the ids' dtype (the
        labels already are the ids), a read-only view of ``mask`` itself: no copy.
    levels : list of str
        The level of each id: ``levels[id - 1]``, cranial → caudal.
    merged : list of list of int
        The mask labels merged into each id: ``merged[id - 1]``.
    """
    if mask.flags.f_contiguous and not mask.flags.c_contiguous:
        # a Fortran-ordered mask (NIfTI as nibabel loads it): relabel its C-contiguous reversed-axes
        # view, so the ids come out in the mask's own memory order and nothing is transposed
        rbox = None if bbox is None else (bbox[2], bbox[1], bbox[0])
        ids_t, levels_t, merged_t = vertebra_ids(mask.T, mapping, bbox=rbox, max_label=max_label)
        return ids_t.T, levels_t, merged_t
    levels, pos, id_dtype = _id_positions(mapping)
    box = bbox if bbox is not None else (nonzero_bbox(mask) if mask.size else None)
    mx = (int(mask[box].max()) if max_label is None else int(max_label)) if box is not None else 0
    if box is not None and mx >= DENSE_LABEL_LIMIT:
        # a stray huge label (2**40 in one voxel): look the labels up, no table of max label + 1 entries
        return _vertebra_ids_sparse(mask, box, mapping, pos, id_dtype), levels, _merged(mapping, pos, levels)
    lut, levels, merged = vertebra_lut(mapping, mx)
    identity = box is not None and mask.dtype == lut.dtype and np.array_equal(lut, np.arange(mx + 1))
    if identity and mask.flags.c_contiguous:
        # the labels already are the ids (e.g. VerSe C1..L5 all present): no full-size copy, the
        # mask itself, read-only (zero outside the box, as the relabelled volume would be)
        same = mask.view()
        same.flags.writeable = False
        return same, levels, merged
    out = np.zeros(mask.shape, dtype=lut.dtype)
    if box is not None:  # outside the labels' bounding box everything stays 0
        if identity:
            out[box] = mask[box]
        else:
            out[box] = lut[mask[box]]
    return out, levels, merged


def vertebra_lut(mapping: Mapping[int, str], max_label: int) -> tuple[np.ndarray, list[str], list[list[int]]]:
    """The table of :func:`vertebra_ids`: ``lut[label]`` is the label's vertebra id (0: not a vertebra).

    Parameters
    ----------
    mapping : mapping of int to str
        Mask label to level, for the labels to keep (as for :func:`vertebra_ids`).
    max_label : int
        The largest label the table must cover (the mask's largest label).

    Returns
    -------
    lut : ndarray of shape (max_label + 1,), uint8 (uint16 from 255 levels)
        ``vertebra_ids(mask, mapping)[0]`` is ``lut[mask]`` for a mask with no label above
        ``max_label``.
    levels : list of str
        The level of each id: ``levels[id - 1]``, cranial → caudal.
    merged : list of list of int
        The mask labels merged into each id: ``merged[id - 1]``.
    """
    levels, pos, id_dtype = _id_positions(mapping)
    lut = np.zeros(int(max_label) + 1, dtype=id_dtype)
    for label, lev in mapping.items():
        if label <= max_label:
            lut[label] = pos[lev]
    return lut, levels, _merged(mapping, pos, levels)


def _id_positions(mapping: Mapping[int, str]) -> tuple[list[str], dict[str, int], Any]:
    """The levels of ``mapping`` cranial first, each level's vertebra id (1..n) and the ids' dtype."""
    levels = sorted(set(mapping.values()), key=level_index)
    return levels, {lev: i + 1 for i, lev in enumerate(levels)}, np.uint8 if len(levels) < 255 else np.uint16


#: Mask labels at or above this are looked up (``np.searchsorted``) instead of through a table.
DENSE_LABEL_LIMIT = 1 << 20


def _merged(mapping: Mapping[int, str], pos: Mapping[str, int], levels: list[str]) -> list[list[int]]:
    merged: list[list[int]] = [[] for _ in levels]
    for label, lev in mapping.items():
        merged[pos[lev] - 1].append(int(label))
    return merged


def _vertebra_ids_sparse(
    mask: np.ndarray,
    box: tuple[slice, ...],
    mapping: Mapping[int, str],
    pos: Mapping[str, int],
    id_dtype: Any,
) -> np.ndarray:
    """:func:`vertebra_ids`'s ids for a mask with huge labels: a slab at a time, bounded temporaries."""
    keys = np.array(sorted(int(k) for k in mapping), dtype=np.int64)
    ids = np.array([pos[mapping[int(k)]] for k in keys], dtype=id_dtype)
    out = np.zeros(mask.shape, dtype=id_dtype)
    if keys.size == 0:
        return out
    sub = mask[box]
    target = out[box]
    step = max(1, (1 << 20) // max(1, int(np.prod(sub.shape[1:]))))
    for i0 in range(0, sub.shape[0], step):
        slab = sub[i0 : i0 + step]
        j = np.minimum(np.searchsorted(keys, slab), keys.size - 1)
        target[i0 : i0 + step] = np.where(keys[j] == slab, ids[j], 0)
    return out


def _split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    unknown = sorted(set(options) - _SEGMENT_KEYS - _METRICS_KEYS)
    if unknown:
        raise ConfigError(
            f"measure: unknown parameter(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(_SEGMENT_KEYS | _METRICS_KEYS))}"
        )
    seg = {k: v for k, v in options.items() if k in _SEGMENT_KEYS}
    met = {k: v for k, v in options.items() if k in _METRICS_KEYS}
    return seg, met


def measure(
    volume: Volume,
    mask: Volume,
    scheme: str | Path | LabelScheme | Mapping[Any, Any] = "auto",
    method: str | None = None,
    *,
    patient_id: str | None = None,
    params: SegmentParams | None = None,
    metrics_params: MetricsParams | None = None,
    check_plausibility: bool = True,
    **options: Any,
) -> Measurement:
    """Segment hyperintense marrow lesions per vertebra and compute the metric tables.

    Parameters
    ----------
    volume : Volume of shape (I, J, K)
        The image (STIR / fat-saturated T2 for ``polarity="bright"``).
    mask : Volume of shape (I, J, K)
        Integer vertebral labels on the same grid (use
        ``spinemri.load_mask(path, like=volume)``).
    scheme : str, path, LabelScheme or mapping, default "auto"
        Label scheme (``auto``, a built-in name, a JSON/YAML file, a mapping).
    method : {"robust", "local", "otsu", "fixed"}, optional
        Shortcut for ``SegmentParams.method`` (default ``robust``).
    patient_id : str, optional
        Written in every table. Default: ``volume.meta["patient_id"]`` when
        set, else ``"patient"``.
    params : SegmentParams, optional
        Segmentation parameters; ``options`` override single fields.
    metrics_params : MetricsParams, optional
    check_plausibility : bool, default True
        Refuse implausible inputs (:mod:`spinemri.plausibility`, docs/supported-inputs.md): a CT
        image, a mask none of whose labels can be a vertebral body. False measures them anyway
        (warned; the ``plausibility`` columns still carry the flags).
    **options
        Fields of :class:`~spinemri.params.SegmentParams` or
        :class:`~spinemri.params.MetricsParams` (``k=2.5``,
        ``polarity="dark"``, ``min_lesion_mm3=30``, ``intensity_erosion_mm=2``).

    Returns
    -------
    Measurement

    Raises
    ------
    GeometryError
        When the mask is not on the image grid.
    LabelSchemeError
        When no label of the mask is a vertebra in the scheme.
    ConfigError
        For an unknown or out-of-range parameter.
    InputError
        When the mask does not hold non-negative integer labels
        (:func:`spinemri.arrays.labels.check_label_values`).
    PlausibilityError
        (an InputError) With ``check_plausibility``, for a non-MR image or a mask without any
        plausible vertebra.

    Warns
    -----
    SpinemriWarning
        Once, listing mask labels that are not vertebrae (discs, canal, ...);
        once when an explicit scheme gives levels the anatomy contradicts
        (then ``level_check`` is ``contradicted: ...``);
        once per plausibility finding (negative intensities, inverted contrast, implausible
        labels).

    Examples
    --------
    >>> import numpy as np, spinemri
    >>> img = np.full((8, 8, 8), 100.0); img[3:5, 3:5, 3:5] = 400.0
    >>> lab = np.zeros((8, 8, 8), np.uint8); lab[1:7, 1:7, 1:7] = 20   # VerSe 20 = L1
    >>> aff = np.diag([1.0, 1.0, 1.0, 1.0])
    >>> m = spinemri.measure(spinemri.Volume(img, aff), spinemri.Volume(lab, aff), scheme="verse",
    ...                      min_lesion_mm3=0, margin_mm=0)
    >>> m.vertebrae[["level", "lesion_voxels", "lesion_count"]].to_dict("records")
    [{'level': 'L1', 'lesion_voxels': 8, 'lesion_count': 1}]
    """
    t0 = time.perf_counter()
    if not isinstance(check_plausibility, bool):
        raise ConfigError(f"measure: check_plausibility = {check_plausibility!r}; expected True or False")
    seg_opts, met_opts = _split_options(options)
    if method is not None:
        seg_opts["method"] = method
    # (the defaults built with the options directly: one validation each, not two)
    p = SegmentParams(**seg_opts) if params is None else dataclasses.replace(params, **seg_opts)
    mp = (
        MetricsParams(**met_opts)
        if metrics_params is None
        else dataclasses.replace(metrics_params, **met_opts)
    )
    source = str(mask.meta.get("source", "mask"))
    if not volume.same_grid(mask):
        raise GeometryError(
            f"{source}: the mask is not on the image grid (shape {mask.shape} vs {volume.shape}); "
            "load it with spinemri.load_mask(path, like=image) (CLI: --resample-mask to resample)"
        )
    pid = str(patient_id if patient_id is not None else volume.meta.get("patient_id") or "patient")
    labels_arr = check_label_values(mask.data, source)
    mask_kind = check_mask_kind(mask.meta.get("mask_kind"), source)
    # one pass over the mask: its bounding box and the moments both the anatomy and the plausibility
    # checks read
    box, moments = label_moments_with_bbox(labels_arr, volume.affine)
    shapes = label_shapes(labels_arr, volume.affine, bbox=box, moments=moments)  # the anatomy check's
    unoriented = no_orientation(volume, mask)
    # without an orientation world z is not known to be superior: no cranio-caudal vote (sizes only)
    choice = choose_scheme(
        scheme,
        shapes.keys(),
        names=mask.meta.get("label_names"),
        shapes=shapes,
        si_mm={} if unoriented else None,
    )
    chosen, reason = choice.scheme, choice.reason
    mapped, unmapped = chosen.split_labels(shapes.keys())
    notes = [reason]
    if unoriented:
        msg = (
            f"{unoriented}: no orientation (qform and sform codes 0, as in Analyze-converted files): the "
            "array axes are not known to be patient directions, so the level order is not checked against "
            "the anatomy (sizes only), the label-shape plausibility checks are skipped and the "
            "left-right axis of hi_area_ratio is a guess; convert the scan with its orientation "
            "(e.g. dcm2niix) or set the qform/sform"
        )
        warnings.warn(msg, SpinemriWarning, stacklevel=2)
        notes.append(msg)
    contradiction = warn_if_contradicted(choice, source)
    if contradiction:
        notes.append(contradiction)
    if unmapped:
        what = ", ".join(f"{u} ({chosen.other[u]})" if u in chosen.other else str(u) for u in unmapped)
        msg = f"{source}: labels {what} are not vertebrae in scheme {chosen.name!r} and were ignored"
        warnings.warn(msg, SpinemriWarning, stacklevel=2)
        notes.append(msg)
    vid, levels, merged = vertebra_ids(
        labels_arr, mapped, bbox=box, max_label=int(moments.labels[-1]) if moments.labels.size else None
    )
    image_src = str(volume.meta.get("source", "image"))
    # check_image in two steps: the modality before segmenting (an error stops here), the polarity
    # after it, from the segmentation's histogram of the marrow (the notes keep check_image's order)
    findings = check_modality(volume.data, volume.meta)
    notes.extend(report_findings(findings, image_src, check=check_plausibility))
    t1 = time.perf_counter()
    # with every label a vertebra, the vertebra ids have the mask's bounding box
    seg = segment_lesions(volume.data, vid, volume.spacing, p, bbox=None if unmapped else box)
    # the segmentation's histogram is of the image itself unless it was corrected (N4) or converted
    value_hist = seg.value_histogram if seg.intensity is volume.data else None
    if not any(f.severity == "error" for f in findings) and judges_anatomy(volume.shape, volume.affine):
        polarity = check_polarity(
            volume.data, vid, volume.spacing, p.polarity, bbox=box, marrow_histogram=value_hist
        )
        findings = findings + polarity
        notes.extend(report_findings(polarity, image_src, check=check_plausibility))
    notes.extend(seg.notes)
    t2 = time.perf_counter()
    # the plausibility flags before the tables, so that these are built once with every column
    truncated = truncated_vertebrae(vid, len(levels), bbox=seg.box)
    label_notes: list[str] = []
    if unoriented:
        flags = ["not checked: no orientation"] * len(levels)
    else:
        flags, label_notes = check_vertebrae(
            vid,
            levels,
            volume.affine,
            truncated[1:].tolist(),
            source,
            check=check_plausibility,
            shapes=shapes_from_moments(moments, merged, volume.affine),
        )
    notes.extend(label_notes)
    tables = compute_metrics(
        seg.intensity,
        vid,
        levels,
        merged,
        seg.lesion_ids,
        seg.lesion_vertebra,
        seg.thresholds,
        seg.reference_median,
        seg.reference_mad,
        volume.affine,
        volume.lr_axis,
        patient_id=pid,
        params=mp,
        bbox=seg.box,
        mask_kind=mask_kind,
        value_histogram=seg.value_histogram,
        lesion_bbox=seg.lesion_box,
        lesion_ids_writable=True,  # the segmentation's own map, not used after: renumbered in place
        truncated=truncated,
        level_check=choice.check.column,
        plausibility=flags,
        patient_plausibility=patient_flag(findings, levels, flags),
    )
    t3 = time.perf_counter()
    del seg
    lesion_ids = tables.lesion_ids
    # a fresh array (compute_metrics' or the segmentation's, renumbered): Volume shares it, no copy
    lesion_ids.flags.writeable = False
    lesion_mask = Volume(
        lesion_ids,
        volume.affine,
        {"kind": "lesion_mask", "patient_id": pid, "source": str(volume.meta.get("source", ""))},
    )
    if logger.isEnabledFor(
        logging.INFO
    ):  # (reading the patient frame costs more than the rest of the log call)
        logger.info(
            "%s: %d vertebrae, %d involved", pid, len(levels), int(tables.patient["n_involved"].iloc[0])
        )
    return Measurement(
        vertebrae=tables.vertebrae,
        lesions=tables.lesions,
        patient=tables.patient,
        lesion_mask=lesion_mask,
        scheme=chosen,
        scheme_reason=reason,
        params=p,
        metrics_params=mp,
        patient_id=pid,
        unmapped_labels=tuple(int(u) for u in unmapped),
        notes=(*notes, f"mask_kind: {mask_kind} ({mask.meta.get('mask_kind_reason', 'not recorded')})"),
        mask_kind=mask_kind,
        timings_s={"prepare": t1 - t0, "segment": t2 - t1, "metrics": t3 - t2, "total": t3 - t0},
        check_plausibility=check_plausibility,
    )


def no_orientation(volume: Volume, mask: Volume) -> str:
    """The source of the image or mask that has no orientation, or ``""``.

    A NIfTI file whose qform and sform codes are both 0 (Analyze-converted files) gives an
    affine from the voxel sizes alone: its world axes are the array axes, not patient
    directions (spinemri.io.nifti records both codes in ``meta``).

    Parameters
    ----------
    volume, mask : Volume
        The image and its vertebral mask.

    Returns
    -------
    str
        The ``meta["source"]`` (or ``"image"`` / ``"mask"``) of the first without an
        orientation; empty when both have one (or are not NIfTI).
    """
    for v, name in ((volume, "image"), (mask, "mask")):
        if v.meta.get("qform_code") == 0 and v.meta.get("sform_code") == 0:
            return str(v.meta.get("source", name))
    return ""
