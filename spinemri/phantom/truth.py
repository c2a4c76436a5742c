"""Ground truth of the phantom: :class:`PhantomTruth` and its tables from the integer label and lesion maps.

numpy + scipy.ndimage.label; independent of spinemri's segmentation and metrics
code; definitions in docs/phantom.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..levels import region_of
from ..volume import Volume, lr_axis
from .anatomy import Body, deformed_half_height
from .params import PhantomParams
from .render import Lesion

__all__ = ["PhantomTruth", "truth_tables", "lesion_table", "body_height_truth", "HEIGHT_FRACTIONS"]

#: Where the truth heights are taken: fractions of the antero-posterior chord from its posterior end
#: (posterior, middle, anterior), as in docs/metrics.md "Body heights and collapse".
HEIGHT_FRACTIONS = (0.15, 0.50, 0.85)


@dataclass(frozen=True)
class PhantomTruth:
    """Ground truth of a phantom, computed from the analytic shapes.

    Attributes
    ----------
    vertebrae : DataFrame
        One row per level present in the mask (see docs/phantom.md for columns).
    patient : DataFrame
        One row with the DESIGN §5 patient columns.
    lesions : DataFrame
        One row per planned lesion.
    lesion_mask : Volume
        Lesion ids (uint16) on the image grid, 0 = none; a subset of the vertebra voxels.
    params : PhantomParams
    bias_field : ndarray
        The multiplicative bias field applied (float32, image shape).
    noise_sigma : float
        Standard deviation of each Gaussian channel of the Rician noise (0 = none).
    bodies : tuple of Body
        The bodies as drawn.
    heights : DataFrame or None
        Analytic body heights, expected heights and grades (:func:`body_height_truth`).
    """

    vertebrae: pd.DataFrame
    patient: pd.DataFrame
    lesions: pd.DataFrame
    lesion_mask: Volume
    params: PhantomParams
    bias_field: np.ndarray = field(repr=False)
    noise_sigma: float = 0.0
    bodies: tuple[Body, ...] = field(default=(), repr=False)
    heights: pd.DataFrame | None = field(default=None, repr=False)


def truth_tables(
    label_index: np.ndarray,
    lesion_id: np.ndarray,
    levels: list[str],
    labels: dict[str, int],
    affine: np.ndarray,
    truncated: dict[str, bool],
    boxes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-vertebra and per-patient truth from integer maps (see docs/phantom.md).

    ``label_index`` holds 1-based indices into ``levels`` (0 = background);
    ``lesion_id`` lesion ids (0 = none) on the same grid. ``boxes`` optionally
    gives, per level, a voxel box (lo, hi) holding all of its voxels (a speed-up only).

    Parameters
    ----------
    label_index, lesion_id : ndarray
        Integer maps on the image grid.
    levels : list of str
        Levels drawn, cranial -> caudal.
    labels : dict of str -> int
        Mask label of each level in the scheme.
    affine : ndarray
        4 x 4 voxel -> world affine.
    truncated : dict of str -> bool
        Per level, whether the body leaves the field of view.
    boxes : dict of str -> (lo, hi), optional
        Per level, a voxel box holding all of its voxels.

    Returns
    -------
    vertebrae : DataFrame
        One row per level present.
    patient : DataFrame
        One row with the DESIGN §5 patient columns.
    """
    from scipy import ndimage

    vox = float(abs(np.linalg.det(affine[:3, :3])))
    ax = lr_axis(affine)
    lesion = lesion_id > 0
    rows = []
    for idx, level in enumerate(levels, start=1):
        box = (boxes or {}).get(level)
        sl = tuple(slice(a, b) for a, b in zip(*box, strict=False)) if box else (slice(None),) * 3
        off = box[0][ax] if box else 0
        vm = label_index[sl] == idx
        nv = int(vm.sum())
        if nv == 0:
            continue
        lm = vm & lesion[sl]
        nl = int(lm.sum())
        _, ncomp = ndimage.label(lm, structure=np.ones((3, 3, 3), dtype=bool))
        coords = np.nonzero(vm)[ax]
        mid = int(np.floor(coords.mean() + off + 0.5))
        vs = np.take(vm, mid - off, axis=ax)
        ls = np.take(lm, mid - off, axis=ax)
        area_v, area_l = int(vs.sum()), int(ls.sum())
        rows.append(
            {
                "level": level,
                "label": labels[level],
                "region": region_of(level),
                "vertebra_voxels": nv,
                "vertebra_volume_mm3": nv * vox,
                "lesion_voxels": nl,
                "lesion_volume_mm3": nl * vox,
                "hi_volume_ratio": nl / nv,
                "mid_slice": mid,
                "mid_vertebra_pixels": area_v,
                "mid_lesion_pixels": area_l,
                "hi_area_ratio": area_l / area_v if area_v else 0.0,
                "lesion_count": int(ncomp),
                "involved": bool(ncomp >= 1),
                "truncated": bool(truncated[level]),
            }
        )
    vert = pd.DataFrame(
        rows,
        columns=[
            "level",
            "label",
            "region",
            "vertebra_voxels",
            "vertebra_volume_mm3",
            "lesion_voxels",
            "lesion_volume_mm3",
            "hi_volume_ratio",
            "hi_area_ratio",
            "lesion_count",
            "involved",
            "truncated",
            "mid_slice",
            "mid_vertebra_pixels",
            "mid_lesion_pixels",
        ],
    )
    inv = vert[vert["involved"]]
    by_region = vert.groupby("region")["lesion_volume_mm3"].sum()
    dominant = "none" if inv.empty else str(by_region.idxmax())
    pat = {
        "n_vertebrae": len(vert),
        "n_involved": len(inv),
        "involved_levels": ";".join(inv["level"]),
        **{
            f"{r}_involved": bool((inv["region"] == r).any())
            for r in ("cervical", "thoracic", "lumbar", "sacral")
        },
        "dominant_region": dominant,
        "total_lesion_count": int(vert["lesion_count"].sum()),
        "total_lesion_volume_mm3": float(vert["lesion_volume_mm3"].sum()),
        "hi_volume_ratio": float(vert["lesion_volume_mm3"].sum() / vert["vertebra_volume_mm3"].sum())
        if len(vert)
        else 0.0,
        "hi_area_ratio": float(vert["mid_lesion_pixels"].sum() / vert["mid_vertebra_pixels"].sum())
        if len(vert)
        else 0.0,
        "hi_area_ratio_max": float(vert["hi_area_ratio"].max()) if len(vert) else 0.0,
    }
    return vert, pd.DataFrame([pat])


def lesion_table(
    lesions: list[Lesion],
    lesion_id: np.ndarray,
    label_index: np.ndarray,
    levels: list[str],
    vox: float,
    contrast: dict[str, float],
) -> pd.DataFrame:
    """One row per planned lesion: plan, levels it reaches, contrast and voxel count.

    Parameters
    ----------
    lesions : list of Lesion
        The planned lesions (ids 1, 2, ...).
    lesion_id : ndarray
        Lesion ids on the image grid (0 = none).
    label_index : ndarray
        1-based indices into ``levels`` on the same grid (0 = background).
    levels : list of str
        Levels drawn, cranial -> caudal.
    vox : float
        Voxel volume (mm³).
    contrast : dict of str -> float
        Tissue intensities of the contrast preset (``marrow``, ``lesion``).

    Returns
    -------
    DataFrame
        Columns lesion_id, planned_level, levels, kind, x_mm, y_mm, z_mm,
        radius_mm, strength, contrast, voxels, volume_mm3 (docs/phantom.md).
    """
    rows = []
    ids = lesion_id.ravel()
    counts = np.bincount(ids, minlength=len(lesions) + 1)
    for les in lesions:
        touched = np.unique(label_index[lesion_id == les.lesion_id])
        lv = [levels[i - 1] for i in sorted(touched) if i > 0]
        intensity = contrast["marrow"] + les.strength * (contrast["lesion"] - contrast["marrow"])
        rows.append(
            {
                "lesion_id": les.lesion_id,
                "planned_level": les.level,
                "levels": ";".join(lv),
                "kind": les.kind,
                "x_mm": float(les.centre[0]),
                "y_mm": float(les.centre[1]),
                "z_mm": float(les.centre[2]),
                "radius_mm": float(np.max(les.radii)),
                "strength": les.strength,
                "contrast": intensity / contrast["marrow"],
                "voxels": int(counts[les.lesion_id]),
                "volume_mm3": int(counts[les.lesion_id]) * vox,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "lesion_id",
            "planned_level",
            "levels",
            "kind",
            "x_mm",
            "y_mm",
            "z_mm",
            "radius_mm",
            "strength",
            "contrast",
            "voxels",
            "volume_mm3",
        ],
    )


def _grade(loss: float) -> int:
    return 3 if loss > 0.40 else 2 if loss >= 0.25 else 1 if loss >= 0.20 else 0


def body_height_truth(
    bodies: list[Body] | tuple[Body, ...], deformity: tuple[tuple[str, str, float], ...]
) -> pd.DataFrame:
    """Analytic posterior, middle and anterior heights of the drawn bodies, and their grades.

    Parameters
    ----------
    bodies : sequence of Body
        As drawn (cranial -> caudal; a crushed body already has its lower ``h``).
    deformity : tuple of (level, kind, loss)
        ``PhantomParams.deformity``.

    Returns
    -------
    DataFrame
        ``level``, ``deformity`` (``none``, ``wedge``, ``biconcave``, ``crush``), ``deformity_loss``,
        ``height_posterior_mm``, ``height_middle_mm``, ``height_anterior_mm`` (the body's extent along
        its own cranio-caudal axis in its mid-sagittal plane at :data:`HEIGHT_FRACTIONS` of the
        antero-posterior chord ``2 b``), ``ap_chord_mm``, ``expected_height_mm`` (mean of the same
        height of the adjacent bodies, C1/C2/S1 excluded, for the height type that lost most),
        ``height_loss_ratio``, ``genant_grade`` and
        ``collapse`` (docs/metrics.md thresholds; grade and collapse <NA> / "not assessable" for C1,
        C2 and S1 and for a body without a neighbour).
    """
    kinds = {lv: (kind, loss) for lv, kind, loss in deformity}
    rows = []
    for body in bodies:
        kind, loss = kinds.get(body.level, ("none", 0.0))
        hs = []
        for f in HEIGHT_FRACTIONS:
            u_ap = body.b * (2.0 * f - 1.0)
            if body.deformity is None:
                hs.append(2.0 * body.h)
            else:
                hs.append(
                    2.0
                    * float(
                        deformed_half_height(
                            np.array(0.0), np.array(u_ap), body.a, body.b, body.h, body.deformity
                        )
                    )
                )
        rows.append(
            {
                "level": body.level,
                "deformity": kind,
                "deformity_loss": float(loss),
                "height_posterior_mm": hs[0],
                "height_middle_mm": hs[1],
                "height_anterior_mm": hs[2],
                "ap_chord_mm": 2.0 * body.b,
            }
        )
    df = pd.DataFrame(rows)
    skip = {"C1", "C2", "S1"}
    cols = ["height_anterior_mm", "height_middle_mm", "height_posterior_mm"]
    hts = {lv: df.loc[k, cols].to_numpy(dtype=float) for k, lv in enumerate(df["level"])} if len(df) else {}
    order = list(df["level"]) if len(df) else []
    exp, loss_col, grade, coll = [], [], [], []
    for k, lv in enumerate(order):
        refs = [order[j] for j in (k - 1, k + 1) if 0 <= j < len(order) and order[j] not in skip]
        if lv in skip or not refs:
            exp.append(np.nan)
            loss_col.append(np.nan)
            grade.append(pd.NA)
            coll.append("not assessable")
            continue
        e = np.mean([hts[r] for r in refs], axis=0)  # same height type of the neighbours
        losses = 1.0 - hts[lv] / e
        j = int(np.argmax(losses))
        ls = max(0.0, float(losses[j]))
        exp.append(float(e[j]))
        loss_col.append(ls)
        grade.append(_grade(ls))
        coll.append("gt50" if ls > 0.5 else "lt50" if ls >= 0.2 else "none")
    df["expected_height_mm"] = exp
    df["height_loss_ratio"] = loss_col
    df["genant_grade"] = pd.array(grade, dtype="Int64")
    df["collapse"] = coll
    return df
