"""One entry per case: the per-vertebra guidance columns (heights, SINS components, canal screening).

Pure (a :class:`~spinemri.measurement.Measurement` and Volumes in, a DataFrame out). The pipeline
calls :func:`guidance_case` once per case and :func:`spinemri.guidance.planning.planning_cohort`
once per cohort.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import GeometryError
from ..measurement import Measurement
from ..morphometry import HeightParams
from ..volume import Volume
from .bodies import heights_table, level_bodies
from .components import alignment_table, body_involvement_table, posterolateral_table
from .params import CanalParams, GuidanceParams
from .sins import score_sins

__all__ = ["GUIDANCE_STRUCTURES", "guidance_case"]

#: The structures :func:`guidance_case` uses, by the names of
#: :attr:`spinemri.io.mask_formats.SpineMasks.structures` (plus ``whole``).
GUIDANCE_STRUCTURES = ("posterior_elements", "spinal_canal", "spinal_cord", "whole")


def _structure(name: str, structures: Mapping[str, Volume] | None, mask: Volume) -> Volume | None:
    src = dict(structures or {})
    meta = mask.meta.get("structures")
    if name not in src and isinstance(meta, Mapping) and isinstance(meta.get(name), Volume):
        src[name] = meta[name]
    v = src.get(name)
    if v is not None and not mask.same_grid(v):
        raise GeometryError(
            f"{v.meta.get('source', name)}: the {name} map is not on the vertebra mask's grid "
            f"(shape {v.shape} vs {mask.shape}); resample it onto the mask first"
        )
    return v


def guidance_case(
    measurement: Measurement,
    mask: Volume,
    image: Volume,
    *,
    structures: Mapping[str, Volume] | None = None,
    params: GuidanceParams | None = None,
    height_params: HeightParams | None = None,
    canal: bool = False,
    canal_params: CanalParams | None = None,
) -> pd.DataFrame:
    """Per-vertebra therapy-guidance columns of one case: body heights and the SINS components.

    Parameters
    ----------
    measurement : Measurement
        :func:`spinemri.measure` of this image and mask (lesion map, thresholds, scheme).
    mask : Volume
        The vertebral mask that was measured.
    image : Volume
        The image that was measured (same grid as the mask).
    structures : mapping of str to Volume, optional
        What else the segmenter wrote, by the names of
        :attr:`spinemri.io.mask_formats.SpineMasks.structures`: ``posterior_elements`` (SPINEPS
        subregion codes), ``spinal_canal``, ``spinal_cord``, and ``whole`` (the whole vertebrae,
        ``SpineMasks.whole``, when ``mask`` is the bodies). Also read from ``mask.meta["structures"]``
        when a reader put them there. Without them posterolateral involvement is not assessable.
    params : GuidanceParams, optional
    height_params : HeightParams, optional
    canal : bool, default False
        Also run the experimental canal / cord screening (needs ``spinal_canal`` and ``spinal_cord``).
    canal_params : CanalParams, optional

    Returns
    -------
    DataFrame
        One row per level: ``patient_id``, ``level``, the heights columns
        (:data:`spinemri.morphometry.HEIGHT_COLUMNS`), ``body_volume_mm3``,
        ``body_lesion_volume_mm3``, ``body_involvement_ratio``, the posterolateral and alignment
        measurements, and the SINS columns (:data:`spinemri.guidance.sins.SINS_COLUMNS`; pain and
        lesion type not assessable until :func:`spinemri.guidance.planning.planning_cohort`
        scores them with the clinical table); with ``canal=True`` also the columns of
        :func:`spinemri.guidance.canal.canal_screening`.

    Raises
    ------
    GeometryError
        When a structure or the image is not on the mask's grid.
    """
    p = params or GuidanceParams()
    hp = height_params or HeightParams()
    if not mask.same_grid(image):
        raise GeometryError(f"{image.meta.get('source', 'image')}: the image is not on the mask's grid")
    canal_v = _structure("spinal_canal", structures, mask)
    cord_v = _structure("spinal_cord", structures, mask)
    post_v = _structure("posterior_elements", structures, mask)
    whole_v = _structure("whole", structures, mask)
    kind = measurement.mask_kind
    scheme = measurement.scheme
    bodies = level_bodies(mask, scheme, canal=canal_v, mask_kind=kind, params=hp)
    heights = heights_table(bodies, hp)  # = vertebra_heights(mask, ...), each body measured once
    lesion = np.asarray(measurement.lesion_mask.data)
    inv = body_involvement_table(bodies, lesion, mask.voxel_volume_mm3)
    vt = measurement.vertebrae
    thresholds = {str(lv): float(t) for lv, t in zip(vt["level"], vt["threshold"], strict=True)}
    whole_arr = None
    if whole_v is not None:
        whole_arr = np.asarray(whole_v.data)
    elif kind == "whole_vertebra":
        whole_arr = np.asarray(mask.data)
    post = posterolateral_table(
        bodies,
        np.asarray(image.data),
        mask.affine,
        thresholds,
        posterior=np.asarray(post_v.data) if post_v is not None else None,
        whole=whole_arr,
        polarity=measurement.params.polarity,
        lr_axis=mask.lr_axis,
        params=p,
    )
    al = alignment_table(bodies, p)
    base = vt.loc[:, ["patient_id", "level", "sins_location", "involved"]]
    df = base.merge(heights, on="level", how="left")
    df = df.rename(columns={"reason": "collapse_reason"})
    for t in (inv, post, al):
        df = df.merge(t, on="level", how="left")
    df["body_involvement_gt"] = p.body_involvement_gt
    out = score_sins(df).drop(columns=["body_involvement_gt"])
    if canal:
        from .canal import canal_screening

        if canal_v is None or cord_v is None:
            out["canal_screen"] = "not assessable: no canal and cord maps"
        else:
            scr = canal_screening(
                bodies, image, canal_v, cord_v, thresholds, measurement.params.polarity, canal_params
            )
            out = out.merge(scr, on="level", how="left")
    return out
