""":func:`vertebra_heights`: one row per level with body heights, expected height, Genant grade, collapse.

Pure (Volumes in, DataFrame out). Definitions in docs/metrics.md ("Body heights and collapse").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import find_objects

from ..arrays.labels import check_label_values
from ..arrays.mask_kind import BODY_SOLIDITY_MIN, check_mask_kind, label_solidity
from ..errors import GeometryError
from ..levels import LabelScheme, get_scheme, level_index
from ..scheme_choice import choose_scheme_for_mask
from ..volume import Volume
from .geometry import MaskSampler, measure_body
from .grading import grade_heights
from .params import HeightParams
from .split import spine_tangents, split_body_by_canal

__all__ = ["HEIGHT_COLUMNS", "vertebra_heights"]

#: Columns of :func:`vertebra_heights`, in order.
HEIGHT_COLUMNS = (
    "level",
    "height_anterior_mm",
    "height_middle_mm",
    "height_posterior_mm",
    "ap_chord_mm",
    "expected_height_mm",
    "height_loss_at",
    "expected_from",
    "height_loss_ratio",
    "genant_grade",
    "collapse",
    "height_source",
    "assessable",
    "reason",
)


def _level_masks(labels: np.ndarray, scheme: LabelScheme) -> dict[str, list[int]]:
    present = [int(v) for v in np.unique(labels) if v > 0]
    mapped, _ = scheme.split_labels(present)
    out: dict[str, list[int]] = {}
    for lab, lv in mapped.items():
        out.setdefault(lv, []).append(int(lab))
    return dict(sorted(out.items(), key=lambda kv: level_index(kv[0])))


def vertebra_heights(
    mask: Volume,
    scheme: str | Path | LabelScheme | Mapping[Any, Any] = "verse",
    *,
    canal: Volume | None = None,
    mask_kind: str | None = None,
    params: HeightParams | None = None,
) -> pd.DataFrame:
    """Anterior, middle and posterior body heights, expected height, Genant grade and SINS collapse.

    Parameters
    ----------
    mask : Volume of shape (I, J, K)
        Integer vertebral labels.
    scheme : str, path, LabelScheme or mapping, default "verse"
        Label scheme mapping mask labels to levels (:func:`spinemri.levels.get_scheme`; ``auto``
        as in :func:`spinemri.measure`, :func:`spinemri.scheme_choice.choose_scheme_for_mask`).
    canal : Volume, optional
        Binary spinal canal on the mask's grid; needed to split the body off a whole-vertebra mask.
    mask_kind : {"body", "whole_vertebra", "unknown"}, optional
        What the mask covers; default ``mask.meta["mask_kind"]`` (``unknown`` when not recorded).
        ``unknown`` vertebrae are measured as bodies only when their solidity shows a body
        (:data:`spinemri.arrays.mask_kind.BODY_SOLIDITY_MIN`).
    params : HeightParams, optional

    Returns
    -------
    DataFrame
        One row per level of the mask, cranial -> caudal, columns :data:`HEIGHT_COLUMNS`:
        heights and chord in mm (NaN when not measured), ``expected_height_mm`` and
        ``height_loss_at`` (the height type with the largest loss and its expected value),
        ``expected_from`` (reference levels), ``height_loss_ratio``, ``genant_grade`` (nullable
        Int64, <NA> when not assessable, never 0 for "unknown"), ``collapse`` (``none``, ``lt50``,
        ``gt50``, ``not assessable``), ``height_source`` (``body mask``, ``split by canal``,
        ``not assessable``), ``assessable`` (bool) and ``reason`` (why not).

    Raises
    ------
    GeometryError
        When ``canal`` is not on the mask's grid.
    InputError
        When the mask does not hold non-negative integer labels.
    LabelSchemeError
        When the scheme cannot be resolved.

    Examples
    --------
    >>> from spinemri.phantom.make import make_phantom
    >>> _, mask, _ = make_phantom(seed=0, rows=160, cols=96, n_slices=15, first_level="T12",
    ...                           last_level="L3", snr=None, pixel_mm=1.25)
    >>> df = vertebra_heights(mask)
    >>> df["level"].tolist(), df["collapse"].tolist()
    (['T12', 'L1', 'L2', 'L3'], ['none', 'none', 'none', 'none'])
    """
    p = params or HeightParams()
    kind = check_mask_kind(mask_kind if mask_kind is not None else mask.meta.get("mask_kind"))
    if canal is not None and not mask.same_grid(canal):
        raise GeometryError(
            f"{canal.meta.get('source', 'canal')}: the canal mask is not on the vertebra mask's grid "
            f"(shape {canal.shape} vs {mask.shape}); resample it onto the mask first"
        )
    source = str(mask.meta.get("source", "mask"))
    labels = check_label_values(np.asarray(mask.data), source)
    sch = choose_scheme_for_mask(scheme, mask).scheme if scheme == "auto" else get_scheme(scheme)
    groups = _level_masks(labels, sch)
    order = list(groups)
    aff = mask.affine
    vox = mask.voxel_volume_mm3
    spacing = mask.spacing
    step = min(p.step_mm, 0.1 * min(spacing))
    # one box per level (scipy.ndimage.find_objects), each level's mask only inside its box
    top = max((max(v) for v in groups.values()), default=0)
    # find_objects skips labels above max_label by itself (no full-size copy for small integer dtypes)
    found = find_objects(labels, max_label=top) if top else []
    boxes: dict[str, tuple[slice, ...]] = {}
    masks: dict[str, np.ndarray] = {}
    cents = {}
    for lv, labs in groups.items():
        bx = [found[lab - 1] for lab in labs if found[lab - 1] is not None]
        box = tuple(
            slice(
                max(0, min(b[a].start for b in bx) - 2), min(labels.shape[a], max(b[a].stop for b in bx) + 2)
            )
            for a in range(3)
        )
        boxes[lv] = box
        masks[lv] = np.isin(labels[box], labs)
        off = np.array([float(s.start) for s in box])
        cents[lv] = aff[:3, :3] @ (np.argwhere(masks[lv]).mean(axis=0) + off) + aff[:3, 3]
    tangents = spine_tangents(cents, order)
    canal_arr = np.asarray(canal.data) > 0 if canal is not None else None
    rows = []
    for lv in order:
        m: np.ndarray | None = masks[lv]
        assert m is not None
        src, reason = "body mask", ""
        if kind == "whole_vertebra":
            if canal_arr is None:
                m, src, reason = (
                    None,
                    "not assessable",
                    "whole-vertebra mask without a canal mask: the body cannot be split off",
                )
            else:
                off = np.array([float(s.start) for s in boxes[lv]])
                m, why = split_body_by_canal(m, canal_arr[boxes[lv]], aff, tangents[lv], off)
                src, reason = ("split by canal", "") if m is not None else ("not assessable", why)
        elif kind == "unknown" and m is not None:
            sol = label_solidity(m.astype(np.uint8), 1, spacing)
            if sol is not None and sol < BODY_SOLIDITY_MIN:
                m, src = None, "not assessable"
                reason = (
                    f"mask kind unknown and solidity {sol:.2f} < {BODY_SOLIDITY_MIN}: not a body-only mask"
                )
        row: dict[str, Any] = {"level": lv}
        if m is not None and int(m.sum()) * vox < p.min_body_mm3:
            reason = f"body volume {int(m.sum()) * vox:.0f} mm3 < {p.min_body_mm3:.0f} mm3"
            m, src = None, "not assessable"
        if m is None:
            row.update(
                height_anterior_mm=np.nan,
                height_middle_mm=np.nan,
                height_posterior_mm=np.nan,
                ap_chord_mm=np.nan,
                height_source=src,
                reason=reason,
            )
            rows.append(row)
            continue
        crop = m
        offset = np.array([float(s.start) for s in boxes[lv]])
        pts = (np.argwhere(crop) + offset) @ aff[:3, :3].T + aff[:3, 3]
        h = measure_body(MaskSampler(crop, aff, offset), pts, tangents[lv], p, step)
        if h.reason:
            src = "not assessable"
        row.update(
            height_anterior_mm=h.anterior,
            height_middle_mm=h.middle,
            height_posterior_mm=h.posterior,
            ap_chord_mm=h.chord,
            height_source=src,
            reason=h.reason,
        )
        rows.append(row)
    base = pd.DataFrame(
        rows,
        columns=[
            "level",
            "height_anterior_mm",
            "height_middle_mm",
            "height_posterior_mm",
            "ap_chord_mm",
            "height_source",
            "reason",
        ],
    )
    graded = grade_heights(base, p)
    return graded.loc[:, list(HEIGHT_COLUMNS)].reset_index(drop=True)
