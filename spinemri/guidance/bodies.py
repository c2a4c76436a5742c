"""Each level's vertebra, its body and the body's own axes, for the SINS components.

Pure (Volumes in, arrays out). The body is chosen as :func:`spinemri.morphometry.vertebra_heights`
chooses it: a body-only mask as it is; a whole-vertebra mask split at the canal's anterior wall
when a canal mask is given; otherwise no body. The axes (centroid, ``lr``, ``ap``, ``cc``) and the
posterior end of the mid-height antero-posterior chord come from
:func:`spinemri.morphometry.geometry.measure_body`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import find_objects

from ..arrays.labels import check_label_values
from ..arrays.mask_kind import BODY_SOLIDITY_MIN, check_mask_kind, label_solidity
from ..levels import LabelScheme, get_scheme, level_index
from ..morphometry.geometry import BodyFrame, BodyHeights, MaskSampler, measure_body
from ..morphometry.grading import grade_heights
from ..morphometry.params import HeightParams
from ..morphometry.split import spine_tangents, split_body_by_canal
from ..morphometry.table import HEIGHT_COLUMNS
from ..scheme_choice import choose_scheme_for_mask
from ..volume import Volume

__all__ = ["LevelBody", "heights_table", "level_bodies"]


@dataclass(frozen=True)
class LevelBody:
    """One level: its mask labels, box, vertebra and body crops, and the body's axes.

    ``vertebra`` is the mask's own voxels of the level (a body or a whole vertebra); ``body`` the
    body voxels or None (``body_source`` / ``reason`` say why); ``frame`` the body's axes and
    ``posterior_wall`` the world point (mm) of the posterior end of its mid-height chord (None
    when not measured); ``cut`` is True when the body reaches the edge of the field of view;
    ``posterior_height`` the body's posterior height (mm, NaN when not measured); ``heights`` the
    full :class:`~spinemri.morphometry.geometry.BodyHeights` (None without a body).
    """

    level: str
    labels: tuple[int, ...]
    box: tuple[slice, ...]
    vertebra: np.ndarray
    body: np.ndarray | None
    body_source: str
    reason: str
    frame: BodyFrame | None
    posterior_wall: np.ndarray | None
    cut: bool
    posterior_height: float = float("nan")
    heights: BodyHeights | None = None

    @property
    def offset(self) -> np.ndarray:
        """Voxel index of the box's first voxel.

        Returns
        -------
        ndarray of shape (3,)
        """
        return np.array([float(s.start) for s in self.box])


def level_bodies(
    mask: Volume,
    scheme: str | Path | LabelScheme | Mapping[Any, Any] = "verse",
    *,
    canal: Volume | None = None,
    mask_kind: str | None = None,
    params: HeightParams | None = None,
) -> dict[str, LevelBody]:
    """Every level of a vertebral mask with its body and the body's axes, cranial -> caudal.

    Parameters
    ----------
    mask : Volume
        Integer vertebral labels.
    scheme : str, path, LabelScheme or mapping, default "verse"
        As in :func:`spinemri.morphometry.vertebra_heights` (``auto`` allowed).
    canal : Volume, optional
        Binary canal on the mask's grid (splits the body off a whole-vertebra mask).
    mask_kind : {"body", "whole_vertebra", "unknown"}, optional
        Default ``mask.meta["mask_kind"]``.
    params : HeightParams, optional

    Returns
    -------
    dict of level to LevelBody
        In cranial -> caudal order.

    Raises
    ------
    InputError
        When the mask does not hold non-negative integer labels.
    """
    p = params or HeightParams()
    kind = check_mask_kind(mask_kind if mask_kind is not None else mask.meta.get("mask_kind"))
    labels = check_label_values(np.asarray(mask.data), str(mask.meta.get("source", "mask")))
    sch = choose_scheme_for_mask(scheme, mask).scheme if scheme == "auto" else get_scheme(scheme)
    present = [int(v) for v in np.unique(labels) if v > 0]
    mapped, _ = sch.split_labels(present)
    groups: dict[str, list[int]] = {}
    for lab, lv in mapped.items():
        groups.setdefault(lv, []).append(int(lab))
    order = sorted(groups, key=level_index)
    aff = mask.affine
    top = max((max(v) for v in groups.values()), default=0)
    found = find_objects(labels, max_label=top) if top else []
    boxes, crops, cents = {}, {}, {}
    for lv in order:
        bx = [found[lab - 1] for lab in groups[lv] if found[lab - 1] is not None]
        box = tuple(
            slice(
                max(0, min(b[a].start for b in bx) - 2), min(labels.shape[a], max(b[a].stop for b in bx) + 2)
            )
            for a in range(3)
        )
        boxes[lv] = box
        crops[lv] = np.isin(labels[box], groups[lv])
        off = np.array([float(s.start) for s in box])
        cents[lv] = aff[:3, :3] @ (np.argwhere(crops[lv]).mean(axis=0) + off) + aff[:3, 3]
    tangents = spine_tangents(cents, order)
    canal_arr = np.asarray(canal.data) > 0 if canal is not None else None
    step = min(p.step_mm, 0.1 * min(mask.spacing))
    out: dict[str, LevelBody] = {}
    for lv in order:
        v = crops[lv]
        off = np.array([float(s.start) for s in boxes[lv]])
        body: np.ndarray | None = v
        src, reason = "body mask", ""
        if kind == "whole_vertebra":
            if canal_arr is None:
                body, src = None, "not assessable"
                reason = "whole-vertebra mask without a canal mask: the body cannot be split off"
            else:
                body, why = split_body_by_canal(v, canal_arr[boxes[lv]], aff, tangents[lv], off)
                src, reason = ("split by canal", "") if body is not None else ("not assessable", why)
        elif kind == "unknown":
            sol = label_solidity(v.astype(np.uint8), 1, mask.spacing)
            if sol is not None and sol < BODY_SOLIDITY_MIN:
                body, src = None, "not assessable"
                reason = (
                    f"mask kind unknown and solidity {sol:.2f} < {BODY_SOLIDITY_MIN}: not a body-only mask"
                )
        if body is not None and int(body.sum()) * mask.voxel_volume_mm3 < p.min_body_mm3:
            vol = int(body.sum()) * mask.voxel_volume_mm3
            body, src, reason = (
                None,
                "not assessable",
                f"body volume {vol:.0f} mm3 < {p.min_body_mm3:.0f} mm3",
            )
        frame, wall, cut, hpost = None, None, False, float("nan")
        h: BodyHeights | None = None
        if body is not None:
            pts = (np.argwhere(body) + off) @ aff[:3, :3].T + aff[:3, 3]
            h = measure_body(MaskSampler(body, aff, off), pts, tangents[lv], p, step)
            frame = h.frame
            cut = "edge of the field of view" in h.reason
            if frame is not None and np.isfinite(h.chord_start) and not h.reason:
                wall = frame.centroid + h.chord_start * frame.ap
                hpost = float(h.posterior)
            elif h.reason:
                reason = h.reason
        out[lv] = LevelBody(
            lv, tuple(sorted(groups[lv])), boxes[lv], v, body, src, reason, frame, wall, cut, hpost, h
        )
    return out


def heights_table(bodies: Mapping[str, LevelBody], params: HeightParams | None = None) -> pd.DataFrame:
    """The table of :func:`spinemri.morphometry.vertebra_heights` from bodies already measured.

    Parameters
    ----------
    bodies : mapping of level to LevelBody
        From :func:`level_bodies` (the same choice of the body and the same
        :func:`~spinemri.morphometry.geometry.measure_body` as ``vertebra_heights``).
    params : HeightParams, optional
        The grading thresholds (those the bodies were measured with).

    Returns
    -------
    DataFrame
        :data:`spinemri.morphometry.HEIGHT_COLUMNS`, equal to ``vertebra_heights`` of the same
        mask (tested), without measuring every body a second time.
    """
    rows = []
    for lv, b in bodies.items():
        h = b.heights
        src, reason = b.body_source, b.reason
        if h is None:
            vals = (np.nan, np.nan, np.nan, np.nan)
        else:
            vals = (h.anterior, h.middle, h.posterior, h.chord)
            reason = h.reason
            if h.reason:
                src = "not assessable"
        rows.append((lv, *vals, src, reason))
    cols = ["level", "height_anterior_mm", "height_middle_mm", "height_posterior_mm", "ap_chord_mm"]
    base = pd.DataFrame(rows, columns=[*cols, "height_source", "reason"])
    graded = grade_heights(base, params or HeightParams())
    return graded.loc[:, list(HEIGHT_COLUMNS)].reset_index(drop=True)
