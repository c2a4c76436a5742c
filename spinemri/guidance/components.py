"""The imaging SINS components of each level: body involvement, posterolateral involvement, alignment.

Pure (arrays and :class:`~spinemri.guidance.bodies.LevelBody` in, DataFrames out). Definitions,
thresholds and sources: docs/metrics.md ("SINS components and planning summary") and
docs/guidance.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.ndimage import binary_erosion, label

from ..levels import level_index, region_of
from .bodies import LevelBody
from .params import GuidanceParams

__all__ = [
    "NO_ALIGNMENT_NEIGHBOUR",
    "POSTERIOR_LATERAL_CODES",
    "alignment_table",
    "body_involvement_table",
    "posterolateral_table",
]

#: SPINEPS subregions that count for posterolateral involvement (pedicle / lamina 41, costal
#: processes 43/44, superior and inferior articular processes 45-48); 42 (spinous process) does not.
POSTERIOR_LATERAL_CODES = (41, 43, 44, 45, 46, 47, 48)
#: Levels that are not used as alignment neighbours (no comparable body: C1, C2; the sacrum is one bone).
NO_ALIGNMENT_NEIGHBOUR = ("C1", "C2", "S1", "Co")
_NA = "not assessable"


def body_involvement_table(
    bodies: Mapping[str, LevelBody], lesion_ids: np.ndarray, voxel_mm3: float
) -> pd.DataFrame:
    """Lesion volume / body volume of each level, on the body mask.

    Parameters
    ----------
    bodies : mapping of level to LevelBody
        From :func:`spinemri.guidance.bodies.level_bodies`.
    lesion_ids : ndarray of shape (I, J, K)
        The lesion map on the mask's grid (``Measurement.lesion_mask``; > 0 = lesion).
    voxel_mm3 : float
        Voxel volume.

    Returns
    -------
    DataFrame
        ``level``, ``body_volume_mm3``, ``body_lesion_volume_mm3``, ``body_involvement_ratio``
        (NaN without a body), ``body_involvement_reason``.
    """
    rows = []
    for lv, b in bodies.items():
        if b.body is None:
            rows.append((lv, math.nan, math.nan, math.nan, b.reason or "no body mask"))
            continue
        les = np.asarray(lesion_ids[b.box]) > 0
        nb = int(b.body.sum())
        nl = int((les & b.body).sum())
        why = "the body is cut by the field of view: ratio of the part in view" if b.cut else ""
        rows.append((lv, nb * voxel_mm3, nl * voxel_mm3, nl / nb if nb else math.nan, why))
    return pd.DataFrame(
        rows,
        columns=[
            "level",
            "body_volume_mm3",
            "body_lesion_volume_mm3",
            "body_involvement_ratio",
            "body_involvement_reason",
        ],
    )


def posterolateral_table(
    bodies: Mapping[str, LevelBody],
    image: np.ndarray,
    affine: np.ndarray,
    thresholds: Mapping[str, float],
    *,
    posterior: np.ndarray | None = None,
    whole: np.ndarray | None = None,
    polarity: str = "bright",
    lr_axis: int = 2,
    params: GuidanceParams | None = None,
) -> pd.DataFrame:
    """Lesion voxels in the posterior elements left and right of each vertebra's mid-sagittal plane.

    Parameters
    ----------
    bodies : mapping of level to LevelBody
        Each level's body and axes.
    image : ndarray of shape (I, J, K)
        Intensities on the mask's grid (those the body's threshold was applied to).
    affine : ndarray of shape (4, 4)
    thresholds : mapping of level to float
        The body's lesion threshold of each level (``Measurement.vertebrae.threshold``).
    posterior : ndarray of shape (I, J, K), optional
        SPINEPS subregion codes of the posterior elements (41-48; :data:`POSTERIOR_LATERAL_CODES`
        count). Needs ``whole`` to know which vertebra a voxel belongs to.
    whole : ndarray of shape (I, J, K), optional
        Whole-vertebra labels (the same label numbers as the levels' ``labels``). Without
        ``posterior``, the posterior elements are the whole vertebra minus its body.
    polarity : {"bright", "dark"}, default "bright"
        Lesions above (bright) or below (dark) the threshold.
    lr_axis : int, default 2
        The array axis closest to left-right: the erosion is in the other two (in-plane) axes.
    params : GuidanceParams, optional

    Returns
    -------
    DataFrame
        ``level``, ``posterolateral`` (``none``, ``unilateral``, ``bilateral`` or ``not
        assessable``), ``posterolateral_left_mm3``, ``posterolateral_right_mm3``,
        ``posterolateral_source`` (``SPINEPS subregions``, ``whole minus body``, ``not
        assessable``), ``posterolateral_reason``.

    Notes
    -----
    A voxel is a lesion voxel of the posterior elements when it belongs to them after an in-plane
    erosion of ``posterolateral_erosion_vox`` voxels (their surface mixes with CSF and fat) and
    lies beyond the body's threshold (the same threshold as the body's candidate voxels) and its
    connected component (26-connectivity) holds at least ``posterolateral_min_mm3``.
    Its side is the sign of its distance from the mid-sagittal plane through the body's centroid
    with normal ``lr``; within ``posterolateral_margin_mm`` of the plane it counts on no side.
    """
    p = params or GuidanceParams()
    lin = affine[:3, :3]
    vox = float(abs(np.linalg.det(lin)))
    # a 3 x 3 square in the two in-plane axes (the erosion leaves the left-right axis alone)
    st = np.zeros((3, 3, 3), dtype=bool)
    st[(slice(None),) * lr_axis + (1,)] = True
    rows = []
    for lv, b in bodies.items():
        base = dict(
            level=lv, posterolateral=_NA, posterolateral_left_mm3=math.nan, posterolateral_right_mm3=math.nan
        )
        if whole is None:
            rows.append(
                {
                    **base,
                    "posterolateral_source": _NA,
                    "posterolateral_reason": "no posterior elements in the mask "
                    "(body-only mask without a subregion map)",
                }
            )
            continue
        if b.frame is None or b.body is None:
            rows.append(
                {
                    **base,
                    "posterolateral_source": _NA,
                    "posterolateral_reason": "no body axes: " + (b.reason or "no body"),
                }
            )
            continue
        if lv not in thresholds or not np.isfinite(thresholds[lv]):
            rows.append(
                {
                    **base,
                    "posterolateral_source": _NA,
                    "posterolateral_reason": "no lesion threshold for this level",
                }
            )
            continue
        # the vertebra's own voxels in the whole-vertebra map, in a box grown around the body's
        wl = np.asarray(whole)
        sel = np.isin(wl, b.labels)
        idx = np.argwhere(sel)
        if len(idx) == 0:
            rows.append(
                {
                    **base,
                    "posterolateral_source": _NA,
                    "posterolateral_reason": "the level is not in the whole-vertebra map",
                }
            )
            continue
        lo = np.maximum(idx.min(axis=0) - 1, 0)
        hi = np.minimum(idx.max(axis=0) + 2, wl.shape)
        box = tuple(slice(int(a), int(c)) for a, c in zip(lo, hi, strict=True))
        vert = sel[box]
        if posterior is not None:
            pe = vert & np.isin(np.asarray(posterior)[box], POSTERIOR_LATERAL_CODES)
            src = "SPINEPS subregions"
        else:
            body_full = np.zeros(wl.shape, dtype=bool)
            body_full[b.box] = b.body
            pe = vert & ~body_full[box]
            src = "whole minus body"
        if not pe.any():
            rows.append(
                {
                    **base,
                    "posterolateral_source": _NA,
                    "posterolateral_reason": "no posterior-element voxels at this level",
                }
            )
            continue
        core = (
            binary_erosion(pe, structure=st, iterations=p.posterolateral_erosion_vox)
            if p.posterolateral_erosion_vox
            else pe
        )
        img = np.asarray(image)[box]
        thr = float(thresholds[lv])
        cand = core & (img > thr if polarity == "bright" else img < thr)
        # connected lesions of at least the minimum volume: scattered bright voxels (fatty marrow of
        # the processes, partial volume with CSF or fat on T2 without fat suppression) do not count
        lab, n = label(cand, structure=np.ones((3, 3, 3), dtype=bool))
        sizes = np.bincount(lab.ravel(), minlength=n + 1) * vox
        keep = np.flatnonzero(sizes >= p.posterolateral_min_mm3)
        les = np.isin(lab, keep[keep > 0])
        ijk = np.argwhere(les) + lo
        pts = ijk @ lin.T + affine[:3, 3]
        s = (pts - b.frame.centroid) @ b.frame.lr
        right = float((s > p.posterolateral_margin_mm).sum()) * vox
        left = float((s < -p.posterolateral_margin_mm).sum()) * vox
        n_sides = int(left >= p.posterolateral_min_mm3) + int(right >= p.posterolateral_min_mm3)
        why = ""
        if not core.any():
            why = "posterior elements thinner than the erosion: none left to threshold"
        rows.append(
            {
                "level": lv,
                "posterolateral": ("none", "unilateral", "bilateral")[n_sides],
                "posterolateral_left_mm3": left,
                "posterolateral_right_mm3": right,
                "posterolateral_source": src,
                "posterolateral_reason": why,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "level",
            "posterolateral",
            "posterolateral_left_mm3",
            "posterolateral_right_mm3",
            "posterolateral_source",
            "posterolateral_reason",
        ],
    )


def _adjacent(upper: str, lower: str) -> bool:
    d = level_index(lower) - level_index(upper)
    if d == 1:
        return True
    from ..levels import LEVELS

    return d == 2 and LEVELS[level_index(upper) + 1] in ("T13", "L6")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / float(np.linalg.norm(v))


def _pair_translation(u: LevelBody, d: LevelBody) -> tuple[float, float]:
    """(AP, LR) offset (mm) of the upper body's posterior-inferior corner from the lower's."""
    assert (
        u.frame is not None
        and d.frame is not None
        and u.posterior_wall is not None
        and d.posterior_wall is not None
    )
    n = _unit(u.frame.cc + d.frame.cc)
    ap = u.frame.ap + d.frame.ap
    ap = _unit(ap - (ap @ n) * n)
    lr = np.cross(ap, n)
    # the posterior-inferior corner of the upper body and the posterior-superior corner of the lower
    # (from the mid-height posterior wall point, half the posterior height along the body's own axis)
    cu = u.posterior_wall - 0.5 * u.posterior_height * u.frame.cc
    cd = d.posterior_wall + 0.5 * d.posterior_height * d.frame.cc
    delta = cu - cd
    return float(delta @ ap), float(delta @ lr)


def _angles(mid: LevelBody, u: LevelBody, d: LevelBody) -> tuple[float, float]:
    """(kyphosis, coronal) angle (degrees) between the axes of the bodies above and below ``mid``."""
    assert mid.frame is not None and u.frame is not None and d.frame is not None
    f = mid.frame

    def sag(c: np.ndarray) -> float:
        return math.degrees(math.atan2(float(c @ f.ap), float(c @ f.cc)))

    def cor(c: np.ndarray) -> float:
        return math.degrees(math.atan2(float(c @ f.lr), float(c @ f.cc)))

    return sag(u.frame.cc) - sag(d.frame.cc), cor(u.frame.cc) - cor(d.frame.cc)


def _usable(b: LevelBody | None) -> bool:
    return (
        b is not None
        and b.frame is not None
        and b.posterior_wall is not None
        and math.isfinite(b.posterior_height)
        and not b.cut
    )


def alignment_table(bodies: Mapping[str, LevelBody], params: GuidanceParams | None = None) -> pd.DataFrame:
    """SINS alignment of each level from the posterior body walls and axes of its neighbours.

    Parameters
    ----------
    bodies : mapping of level to LevelBody
        Cranial -> caudal (from :func:`spinemri.guidance.bodies.level_bodies`).
    params : GuidanceParams, optional
        Translation and angle limits per region.

    Returns
    -------
    DataFrame
        ``level``, ``translation_ap_mm`` and ``translation_lr_mm`` (of the level's two segments
        the one furthest from the baseline; upper body minus lower: + = anterior / right),
        ``translation_baseline_ap_mm`` / ``_lr_mm`` (the median over the spine's measurable
        segments when there are at least ``baseline_min_segments``, else 0), ``kyphosis_deg``
        (angle between the axes of the bodies above and below, + = kyphotic), ``coronal_deg``,
        ``alignment`` (``subluxation``, ``deformity``, ``normal``, ``not assessable``),
        ``alignment_partial`` (``translation``, ``angle``, ``both`` or None: what a missing
        neighbour left unmeasured) and ``alignment_reason``.

    Notes
    -----
    A segment's translation is the offset, across the disc, between the posterior-inferior
    corner of the upper body and the posterior-superior corner of the lower (each: the posterior
    end of the body's mid-height chord moved half its posterior height along its own axis),
    perpendicular to the mean of the two bodies' cranio-caudal axes, split along the mean
    antero-posterior axis and its normal (left-right): the radiographic measure of sagittal
    translation (White & Panjabi). The corners are only a disc height apart, so a tilt of the
    axes moves the result little, and lordosis or kyphosis alone gives ~0.
    A supine spine has a physiological offset at every segment (measured on the six healthy real
    lumbar spines: -1 to -5.5 mm at most segments, -8.6 mm at one): a level is subluxed when one
    of its segments departs from the spine's own baseline (the median of its segments) by more
    than the region's limit. Neighbours must be adjacent levels, inside the field of view and not
    C1, C2 or the sacrum.
    """
    p = params or GuidanceParams()
    order = list(bodies)
    # every measurable segment, and the spine's own baseline: the median translation of its segments
    seg: dict[tuple[str, str], tuple[float, float]] = {}
    for a, c in zip(order[:-1], order[1:], strict=True):
        ua, uc = bodies[a], bodies[c]
        if a in NO_ALIGNMENT_NEIGHBOUR or c in NO_ALIGNMENT_NEIGHBOUR or not _adjacent(a, c):
            continue
        if _usable(ua) and _usable(uc):
            seg[(a, c)] = _pair_translation(ua, uc)
    if len(seg) >= p.baseline_min_segments:
        base_ap = float(np.median([t[0] for t in seg.values()]))
        base_lr = float(np.median([t[1] for t in seg.values()]))
        base_note = ""
    else:
        base_ap = base_lr = 0.0
        base_note = (
            f"fewer than {p.baseline_min_segments} segments in view: translation not relative to a baseline"
        )
    rows = []
    for k, lv in enumerate(order):
        b = bodies[lv]
        row: dict[str, object] = dict(
            level=lv,
            translation_ap_mm=math.nan,
            translation_lr_mm=math.nan,
            translation_baseline_ap_mm=base_ap,
            translation_baseline_lr_mm=base_lr,
            kyphosis_deg=math.nan,
            coronal_deg=math.nan,
        )
        if lv in NO_ALIGNMENT_NEIGHBOUR or not _usable(b):
            why = (
                "C1, C2 and the sacrum are not scored for alignment here"
                if lv in NO_ALIGNMENT_NEIGHBOUR
                else ("no body axes: " + (b.reason or "no body"))
            )
            rows.append({**row, "alignment": _NA, "alignment_partial": None, "alignment_reason": why})
            continue
        up = bodies[order[k - 1]] if k > 0 else None
        dn = bodies[order[k + 1]] if k + 1 < len(order) else None
        if up is not None and (
            up.level in NO_ALIGNMENT_NEIGHBOUR or not _adjacent(up.level, lv) or not _usable(up)
        ):
            up = None
        if dn is not None and (
            dn.level in NO_ALIGNMENT_NEIGHBOUR or not _adjacent(lv, dn.level) or not _usable(dn)
        ):
            dn = None
        if up is None and dn is None:
            rows.append(
                {
                    **row,
                    "alignment": _NA,
                    "alignment_partial": None,
                    "alignment_reason": "no measurable adjacent body in the field of view",
                }
            )
            continue
        tr = [seg[(u.level, d.level)] for u, d in ((up, b), (b, dn)) if u is not None and d is not None]
        t_ap = max((t[0] for t in tr), key=lambda v: abs(v - base_ap))
        t_lr = max((t[1] for t in tr), key=lambda v: abs(v - base_lr))
        region = region_of(lv)
        limit = p.translation_limit(region)
        reasons = [base_note] if base_note else []
        excess = max(abs(t_ap - base_ap), abs(t_lr - base_lr))
        sublux = excess > limit
        if sublux:
            reasons.append(f"translation {excess:.1f} mm beyond the spine's baseline > {limit} mm ({region})")
        deform = False
        if up is not None and dn is not None:
            ky, co = _angles(b, up, dn)
            row.update(kyphosis_deg=ky, coronal_deg=co)
            if ky > p.kyphosis_limit(region):
                deform = True
                reasons.append(f"local kyphosis {ky:.1f} deg > {p.kyphosis_limit(region)} deg ({region})")
            if abs(co) > p.scoliosis_deg:
                deform = True
                reasons.append(f"local coronal angle {abs(co):.1f} deg > {p.scoliosis_deg} deg")
        partial: str | None = None
        if up is None or dn is None:
            partial = "both"
            reasons.append(
                "only one adjacent body in the field of view: "
                "one segment's translation and the local angles not measured"
            )
        row.update(translation_ap_mm=t_ap, translation_lr_mm=t_lr)
        value = "subluxation" if sublux else "deformity" if deform else "normal"
        rows.append(
            {**row, "alignment": value, "alignment_partial": partial, "alignment_reason": "; ".join(reasons)}
        )
    return pd.DataFrame(
        rows,
        columns=[
            "level",
            "translation_ap_mm",
            "translation_lr_mm",
            "translation_baseline_ap_mm",
            "translation_baseline_lr_mm",
            "kyphosis_deg",
            "coronal_deg",
            "alignment",
            "alignment_partial",
            "alignment_reason",
        ],
    )
