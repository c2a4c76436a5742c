"""Assembly of the phantom: :func:`make_phantom` draws the image, the vertebral mask and the truth.

It builds the spine (:mod:`.anatomy`), frames it (:mod:`.scene`), plans the lesions
(:mod:`.lesions`), renders the scene, adds bias and Rician noise, labels the mask in
the chosen scheme and computes the truth (:mod:`.truth`). Everything is in memory
(no file I/O); the writers live in :mod:`spinemri.io.dicom.write` and
:mod:`spinemri.io.cohort_write`. The model, intensities and definitions are
documented in docs/phantom.md.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from ..errors import ConfigError, SpinemriWarning
from ..levels import BUILTIN_SCHEMES
from ..volume import Volume
from .anatomy import build_spine
from .lesions import plan_lesions, refit_lesion
from .params import CONTRASTS, PhantomParams
from .scene import bias_field, draw_texture, grid_affine, render_background, render_structures, surface_points
from .truth import PhantomTruth, body_height_truth, lesion_table, truth_tables

__all__ = ["SERIES_DESCRIPTION", "make_phantom"]

logger = logging.getLogger(__name__)

#: SeriesDescription of the image of each contrast preset.
SERIES_DESCRIPTION = {"stir": "SAG STIR", "t1": "SAG T1"}


def _scheme_labels(scheme: str, levels: list[str]) -> dict[str, int]:
    sch = BUILTIN_SCHEMES[scheme]
    out: dict[str, int] = {}
    for lab in sorted(sch.levels):
        out.setdefault(sch.levels[lab], lab)
    return {lv: out[lv] for lv in levels if lv in out}


def make_phantom(seed: int = 0, **options: Any) -> tuple[Volume, Volume, PhantomTruth]:
    """Draw a seeded sagittal spine MR phantom with its ground truth.

    Parameters
    ----------
    seed : int, default 0
        Seeds every random choice (lesion plan, texture, noise); one seed
        always gives the same arrays.
    **options
        Fields of :class:`PhantomParams` (unknown keys raise ConfigError), or
        ``params=PhantomParams(...)`` alone.

    Returns
    -------
    image : Volume of shape (cols, rows, n_slices)
        uint16 intensities (float32 when ``quantize=False``); i runs A->P, j S->I, k L->R
        (rotated by ``oblique_deg``/``tilt_deg``); ``meta`` has modality, series_description,
        plane, contrast, seed.
    mask : Volume
        Vertebral labels (uint8 or uint16) in ``scheme``.
    truth : PhantomTruth

    Examples
    --------
    >>> img, mask, truth = make_phantom(seed=1, rows=128, cols=64, n_slices=7, first_level="L1")
    >>> img.shape, truth.vertebrae["level"].tolist()[-1]
    ((64, 128, 7), 'S1')
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"make_phantom: seed must be a non-negative integer, got {seed!r}")
    given = options.pop("params", None)
    if given is not None:
        if not isinstance(given, PhantomParams) or options:
            raise ConfigError(
                "make_phantom: pass either params=PhantomParams(...) alone or keyword options, not both"
            )
        p = given
    else:
        p = PhantomParams.from_options(**options)
    levels = p.levels
    plan_rng = np.random.default_rng([int(seed), 1])
    tex_rng = np.random.default_rng([int(seed), 2])
    noise_rng = np.random.default_rng([int(seed), 3])
    collapse = dict(p.collapse)
    deformity = {lv: (kind, loss) for lv, kind, loss in p.deformity}
    bodies, discs, curve = build_spine(
        levels, scale=p.scale, curvature=p.curvature, collapse=collapse, deformity=deformity
    )
    affine = grid_affine(p, bodies)
    shape = (p.cols, p.rows, p.n_slices)
    gap = (
        p.min_gap_mm
        if p.min_gap_mm is not None
        else 1.5 * max(p.slice_mm, float(np.linalg.norm(affine[:3, 0])))
    )
    lesions, dropped = plan_lesions(p, bodies, gap, plan_rng)
    if p.p_collapse > 0 and p.lesions is None:  # drawn collapse of involved bodies: rebuild the spine once
        for lv in sorted({les.level for les in lesions}, key=levels.index):
            if lv not in collapse and plan_rng.random() < p.p_collapse:
                collapse[lv] = float(plan_rng.uniform(*p.collapse_range))
        if collapse:
            old = {b.level: b for b in bodies}
            bodies, discs, curve = build_spine(
                levels, scale=p.scale, curvature=p.curvature, collapse=collapse, deformity=deformity
            )
            by = {b.level: b for b in bodies}
            lesions = [refit_lesion(les, old[les.level], by[les.level]) for les in lesions]
    for lv, n in dropped.items():
        logger.info(
            "phantom seed %s: %d planned lesion(s) in %s did not fit apart and were dropped", seed, n, lv
        )
    render = render_structures(p, affine, shape, bodies, discs, lesions, draw_texture(tex_rng))
    background = render_background(p, affine, shape, curve, bodies)
    clean = render["signal"] + (1.0 - render["occupied"]) * background
    bias = bias_field(p, affine, shape)
    img = clean * bias
    sigma = 0.0
    if p.snr is not None:
        sigma = CONTRASTS[p.contrast]["marrow"] / float(p.snr)
        n1 = noise_rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
        n2 = noise_rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
        img = np.sqrt((img + n1) ** 2 + n2**2)
    img = np.clip(np.rint(img), 0, 65535).astype(np.uint16) if p.quantize else img.astype(np.float32)

    labels = _scheme_labels(p.scheme, levels)
    missing = [lv for lv in levels if lv not in labels]
    if missing:
        warnings.warn(
            f"label scheme {p.scheme!r} has no label for {', '.join(missing)}: these vertebrae are drawn "
            "but left out of the mask and the truth",
            SpinemriWarning,
            stacklevel=2,
        )
    lut = np.zeros(len(levels) + 1, dtype=np.int64)
    for i, lv in enumerate(levels, start=1):
        lut[i] = labels.get(lv, 0)
    label_index = np.where(lut[render["label"]] > 0, render["label"], 0)
    lesion_id = np.where(label_index > 0, render["lesion_id"], 0).astype(np.uint16)
    mask_dtype = np.uint8 if lut.max() < 256 else np.uint16
    inv = np.linalg.inv(affine)
    n_vox = np.array(shape)
    truncated = {}
    for b in bodies:
        ijk = surface_points(b) @ inv[:3, :3].T + inv[:3, 3]
        truncated[b.level] = bool(np.any(ijk < -0.5) or np.any(ijk > n_vox - 0.5))
    if not np.any(label_index):
        raise ConfigError(
            f"make_phantom: no vertebra of {p.first_level}-{p.last_level} falls inside the field of view "
            f"({shape} voxels of {np.round(np.linalg.norm(affine[:3, :3], axis=0), 3).tolist()} mm); "
            "enlarge rows/cols/pixel_mm or reduce fov_shift_mm"
        )
    vert, patient = truth_tables(label_index, lesion_id, levels, labels, affine, truncated, render["boxes"])
    heights = body_height_truth(bodies, p.deformity)
    if p.deformity:  # the analytic heights join the vertebra truth (absent by default: tables unchanged)
        vert = vert.merge(heights.drop(columns=["deformity", "deformity_loss"]), on="level", how="left")
    vox = float(abs(np.linalg.det(affine[:3, :3])))
    les_df = lesion_table(lesions, lesion_id, label_index, levels, vox, CONTRASTS[p.contrast])
    meta = {
        "modality": "MR",
        "series_description": SERIES_DESCRIPTION[p.contrast],
        "plane": "sagittal",
        "contrast": p.contrast,
        "seed": int(seed),
        "source": f"phantom(seed={seed})",
    }
    image = Volume(img, affine, meta)
    mask = Volume(lut[label_index].astype(mask_dtype), affine, {"scheme": p.scheme, "source": meta["source"]})
    truth = PhantomTruth(
        vert,
        patient,
        les_df,
        Volume(lesion_id, affine, {"source": meta["source"]}),
        p,
        bias,
        sigma,
        tuple(bodies),
        heights[heights["level"].isin(vert["level"])].reset_index(drop=True),
    )
    return image, mask, truth
