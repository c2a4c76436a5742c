"""Experimental canal / cord screening: areas, lesion-like signal in the canal, an ESCC-like grade.

Pure (Volumes and :class:`~spinemri.guidance.bodies.LevelBody` in, a DataFrame out). Off by
default; a **screening aid**, not a diagnosis: it points at levels whose axial images deserve a
look for epidural disease or cord compression. Definitions, thresholds and limits:
docs/guidance.md ("Cord and canal").

Per level, planes perpendicular to the canal's local axis are sampled every ``slab_step_mm``
over the level's body height. On each plane (bilinear reads of the binary canal and cord maps at
``pixel_mm``, the canal's connected part nearest its axis): canal area, cord area, and connected
"lesion-like" pixels (the nearest voxel's intensity): in the canal, outside the cord, beyond the
vertebra's marrow lesion
threshold and not CSF (CSF: brighter than ``csf_cut`` x the median of every canal voxel outside
the cord, for bright polarity), of at least ``min_epidural_mm2`` and reaching ``rim_mm`` inside the
canal's edge. The grade follows Bilsky's scale (Bilsky et al., J Neurosurg
Spine 2010;13:324-328) with geometric proxies, compared with the neighbouring levels' areas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import ndimage

from ..morphometry.geometry import MaskSampler
from ..volume import Volume
from .bodies import LevelBody
from .params import ESCC_GRADES, CanalParams

__all__ = ["CANAL_COLUMNS", "SCREENING_LABEL", "canal_screening", "escc_like_grade"]

#: The label every canal column carries.
SCREENING_LABEL = "screening aid (experimental), not a diagnosis: review the axial images"
#: Columns of :func:`canal_screening`.
CANAL_COLUMNS = (
    "level",
    "canal_area_mm2",
    "cord_area_mm2",
    "csf_area_mm2",
    "epidural_area_mm2",
    "canal_area_ref_mm2",
    "cord_area_ref_mm2",
    "thecal_sac_ratio",
    "cord_area_ratio",
    "csf_ratio",
    "cord_abutted",
    "escc_grade",
    "escc_high_grade",
    "canal_screen",
    "canal_screen_label",
)


def escc_like_grade(
    epidural_mm2: float,
    sac_ratio: float,
    abutted: bool,
    cord_ratio: float,
    csf_ratio: float,
    params: CanalParams | None = None,
) -> str:
    """An ESCC-like grade from the geometry of one plane.

    Parameters
    ----------
    epidural_mm2 : float
        Lesion-like area in the canal outside the cord.
    sac_ratio : float
        (canal area - lesion-like area) / the neighbours' canal area.
    abutted : bool
        Lesion-like pixels within ``abut_mm`` of the cord.
    cord_ratio : float
        Cord area / the neighbours' cord area (NaN: no cord, e.g. below the conus).
    csf_ratio : float
        CSF area / the neighbours' CSF area.
    params : CanalParams, optional

    Returns
    -------
    str
        ``0``, ``1a``, ``1b``, ``1c``, ``2`` or ``3``.

    Examples
    --------
    >>> escc_like_grade(0.0, 1.0, False, 1.0, 1.0), escc_like_grade(10.0, 0.95, False, 1.0, 1.0)
    ('0', '1a')
    >>> escc_like_grade(40.0, 0.7, True, 0.5, 0.6), escc_like_grade(120.0, 0.3, True, 0.5, 0.0)
    ('2', '3')
    """
    p = params or CanalParams()
    compressed = math.isfinite(cord_ratio) and cord_ratio < p.cord_compressed_ratio
    no_csf = math.isfinite(csf_ratio) and csf_ratio < p.csf_visible_ratio
    if epidural_mm2 < p.min_epidural_mm2:  # Bilsky 0: no epidural tumour (a narrowing alone is not graded)
        return "0"
    if compressed:
        return "3" if no_csf else "2"
    if abutted:
        return "1c"
    if math.isfinite(sac_ratio) and sac_ratio < p.sac_deformed_ratio:
        return "1b"
    return "1a"


def _perp(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = a - (a @ n) * n
    u /= np.linalg.norm(u)
    return u, np.cross(n, u)


def canal_screening(
    bodies: Mapping[str, LevelBody],
    image: Volume,
    canal: Volume,
    cord: Volume,
    thresholds: Mapping[str, float],
    polarity: str = "bright",
    params: CanalParams | None = None,
) -> pd.DataFrame:
    """Canal and cord areas, lesion-like signal in the canal and an ESCC-like grade per level.

    Parameters
    ----------
    bodies : mapping of level to LevelBody
        Each level's body axes (:func:`spinemri.guidance.bodies.level_bodies`).
    image : Volume
        Intensities on the mask's grid.
    canal, cord : Volume
        Binary canal (the whole canal or thecal sac, cord included) and cord on the same grid.
    thresholds : mapping of level to float
        Each vertebra's marrow lesion threshold (``Measurement.vertebrae.threshold``).
    polarity : {"bright", "dark"}, default "bright"
    params : CanalParams, optional

    Returns
    -------
    DataFrame
        :data:`CANAL_COLUMNS`, one row per level: areas (mm2) on the plane through the body's
        centroid, ``epidural_area_mm2`` and the ratios of the worst plane of the level, the
        grade (``0``-``3`` or ``not assessable``), ``escc_high_grade`` (grade >=
        ``high_grade_from``), ``canal_screen`` (``no finding``, ``possible epidural disease``,
        ``possible cord compression``, ``canal narrowing without lesion-like signal`` or ``not
        assessable: why``) and ``canal_screen_label`` (:data:`SCREENING_LABEL`).
    """
    p = params or CanalParams()
    aff = image.affine
    can = np.asarray(canal.data) > 0
    crd = np.asarray(cord.data) > 0
    img = np.asarray(image.data, dtype=np.float32)
    zero = np.zeros(3)
    s_can, s_cord = MaskSampler(can, aff, zero), MaskSampler(crd, aff, zero)
    inv = np.linalg.inv(aff)

    def s_img(pts: np.ndarray) -> np.ndarray:
        # the nearest voxel's intensity: a voxel is lesion-like or not, as in the body (no mixing of
        # CSF and tumour intensities across a boundary)
        ijk = pts.reshape(-1, 3) @ inv[:3, :3].T + inv[:3, 3]
        v = ndimage.map_coordinates(img, ijk.T, order=0, mode="constant", cval=np.nan, prefilter=False)
        return np.asarray(v).reshape(pts.shape[:-1])

    csf_vals = img[can & ~crd]
    csf_ref = float(np.median(csf_vals)) if csf_vals.size else math.nan
    # robust spread of the canal outside the cord: a CSF that is not one intensity (nerve roots, flow,
    # partial volume filling the canal map) cannot be told from lesion-like signal by intensity
    csf_spread = (
        float(1.4826 * np.median(np.abs(csf_vals - csf_ref)) / csf_ref)
        if csf_vals.size and csf_ref > 0
        else math.nan
    )
    cpts = np.argwhere(can) @ aff[:3, :3].T + aff[:3, 3]
    n_px = int(round(2 * p.plane_half_mm / p.pixel_mm)) + 1
    g = (np.arange(n_px) - (n_px - 1) / 2) * p.pixel_mm
    gu, gv = np.meshgrid(g, g, indexing="ij")
    px2 = p.pixel_mm**2
    rim_px = int(math.ceil(p.rim_mm / p.pixel_mm))

    def plane(c: np.ndarray, n: np.ndarray, thr: float) -> dict[str, float] | None:
        u, v = _perp(n)
        pts = c + gu[..., None] * u + gv[..., None] * v
        cm = s_can(pts) >= 0.5
        lab, nl = ndimage.label(cm)
        if nl == 0:
            return None
        if nl > 1:  # the part nearest the axis
            d = np.hypot(gu, gv)
            k = int(np.argmin(np.where(cm, d, np.inf)))
            cm = lab == lab.flat[k]
        co = (s_cord(pts) >= 0.5) & cm
        val = s_img(pts)
        if polarity == "bright":
            les = (val > thr) & (val <= p.csf_cut * csf_ref)
        else:
            les = (val < thr) & (val >= csf_ref / max(p.csf_cut, 1e-9))
        les &= cm & ~co
        if les.any():
            # connected parts of at least min_epidural_mm2 that reach at least rim_px inside the canal
            # (the canal's rim voxels mix CSF with the dura and fat: partial volume, not tumour)
            deep = ndimage.binary_erosion(cm, iterations=rim_px) if rim_px else cm
            lab_l, n_l = ndimage.label(les)
            sizes = np.bincount(lab_l.ravel(), minlength=n_l + 1) * px2
            seeded = np.zeros(n_l + 1, dtype=bool)
            seeded[np.unique(lab_l[les & deep])] = True
            ok = seeded & (sizes >= p.min_epidural_mm2)
            ok[0] = False
            les = ok[lab_l]
        abut = False
        if les.any() and co.any():
            dist = ndimage.distance_transform_edt(~co) * p.pixel_mm
            abut = bool(dist[les].min() <= p.abut_mm + p.pixel_mm)
        canal_a = float(cm.sum()) * px2
        cord_a = float(co.sum()) * px2
        epi = float(les.sum()) * px2
        return {
            "canal": canal_a,
            "cord": cord_a,
            "epi": epi,
            "csf": canal_a - cord_a - epi,
            "abut": float(abut),
        }

    per: dict[str, list[dict[str, float]]] = {}
    centre: dict[str, dict[str, float] | None] = {}
    why: dict[str, str] = {}
    for lv, b in bodies.items():
        if b.frame is None or b.body is None:
            why[lv] = "no body axes"
            continue
        thr = float(thresholds.get(lv, math.nan))
        if not math.isfinite(thr):
            why[lv] = "no marrow threshold"
            continue
        if not csf_spread <= p.csf_max_spread:
            why[lv] = (
                f"the canal outside the cord is not a uniform CSF signal (robust spread {csf_spread:.2f} > "
                f"{p.csf_max_spread}): lesion-like signal cannot be told from CSF"
            )
            continue
        if polarity == "bright" and not thr < p.csf_cut * csf_ref:
            why[lv] = (
                "CSF is not brighter than the marrow lesion threshold: "
                "lesion-like signal cannot be told from CSF"
            )
            continue
        f = b.frame
        near = cpts[np.abs((cpts - f.centroid) @ f.cc) <= p.axis_window_mm]
        if len(near) < 20:
            why[lv] = "the canal map does not pass this level"
            continue
        m = near.mean(axis=0)
        _, _, vt = np.linalg.svd(near - m, full_matrices=False)
        n = vt[0] if vt[0] @ f.cc >= 0 else -vt[0]
        c = m + ((f.centroid - m) @ n) * n
        bp = (np.argwhere(b.body) + b.offset) @ aff[:3, :3].T + aff[:3, 3]
        half = 0.5 * float(np.ptp((bp - f.centroid) @ n))
        offs = np.arange(-half, half + 1e-9, p.slab_step_mm)
        res = [plane(c + s * n, n, thr) for s in offs]
        per[lv] = [r for r in res if r is not None]
        centre[lv] = plane(c, n, thr)
        if not per[lv] or centre[lv] is None:
            why[lv] = "no canal on the level's planes"
    order = list(bodies)
    rows = []
    for k, lv in enumerate(order):
        base: dict[str, object] = {c: math.nan for c in CANAL_COLUMNS}
        base.update(
            level=lv,
            cord_abutted=pd.NA,
            escc_grade="not assessable",
            escc_high_grade=pd.NA,
            canal_screen_label=SCREENING_LABEL,
        )
        if lv in why:
            rows.append({**base, "canal_screen": "not assessable: " + why[lv]})
            continue
        ctr = centre[lv]
        assert ctr is not None
        # reference: the centre planes of up to two levels on each side (this level excluded)
        refs = [
            centre[o]
            for o in order[max(0, k - 2) : k] + order[k + 1 : k + 3]
            if o not in why and centre.get(o)
        ]
        ref_can = float(np.median([r["canal"] for r in refs if r])) if refs else math.nan
        ref_cord = float(np.median([r["cord"] for r in refs if r])) if refs else math.nan
        ref_csf = float(np.median([r["canal"] - r["cord"] for r in refs if r])) if refs else math.nan
        worst, worst_rank, worst_vals = "0", -1, (0.0, math.nan, math.nan, math.nan, False)
        for r in per[lv]:
            sac = (r["canal"] - r["epi"]) / ref_can if ref_can > 0 else math.nan
            cr = r["cord"] / ref_cord if ref_cord > 0 else math.nan
            cs = r["csf"] / ref_csf if ref_csf > 0 else math.nan
            gr = escc_like_grade(r["epi"], sac, bool(r["abut"]), cr, cs, p)
            rank = ESCC_GRADES.index(gr)
            if rank > worst_rank or (rank == worst_rank and r["epi"] > worst_vals[0]):
                worst, worst_rank, worst_vals = gr, rank, (r["epi"], sac, cr, cs, bool(r["abut"]))
        if not refs:
            rows.append(
                {
                    **base,
                    "canal_area_mm2": ctr["canal"],
                    "cord_area_mm2": ctr["cord"],
                    "csf_area_mm2": ctr["canal"] - ctr["cord"],
                    "epidural_area_mm2": worst_vals[0],
                    "canal_screen": "not assessable: no neighbouring level to compare the areas with",
                }
            )
            continue
        high = ESCC_GRADES.index(worst) >= ESCC_GRADES.index(p.high_grade_from)
        narrow = [
            r
            for r in per[lv]
            if ref_can > 0
            and ref_cord > 0
            and r["canal"] / ref_can < p.sac_deformed_ratio
            and r["cord"] / ref_cord < p.cord_compressed_ratio
        ]
        if worst == "0":
            screen = "canal narrowing without lesion-like signal" if narrow else "no finding"
        elif ESCC_GRADES.index(worst) >= ESCC_GRADES.index("2"):
            screen = "possible cord compression"
        else:
            screen = "possible epidural disease"
        rows.append(
            {
                "level": lv,
                "canal_area_mm2": ctr["canal"],
                "cord_area_mm2": ctr["cord"],
                "csf_area_mm2": ctr["canal"] - ctr["cord"] - ctr["epi"],
                "epidural_area_mm2": worst_vals[0],
                "canal_area_ref_mm2": ref_can,
                "cord_area_ref_mm2": ref_cord,
                "thecal_sac_ratio": worst_vals[1],
                "cord_area_ratio": worst_vals[2],
                "csf_ratio": worst_vals[3],
                "cord_abutted": worst_vals[4],
                "escc_grade": worst,
                "escc_high_grade": high,
                "canal_screen": screen,
                "canal_screen_label": SCREENING_LABEL,
            }
        )
    out = pd.DataFrame(rows, columns=list(CANAL_COLUMNS))
    out["cord_abutted"] = out["cord_abutted"].astype("boolean")
    out["escc_high_grade"] = out["escc_high_grade"].astype("boolean")
    return out
