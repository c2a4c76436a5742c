"""Seeded digital spine phantom with an independently computed ground truth.

:func:`make_phantom` draws a sagittal spine MR volume (vertebral bodies with a
cortical rim, discs, canal with CSF and cord, posterior elements, soft tissue),
plants metastasis-like lesions, and returns the image, the vertebral label
mask and a :class:`PhantomTruth` computed from the analytic shapes, never from
spinemri's segmentation or metrics code. Everything is in memory (no file
I/O); the writers live in :mod:`spinemri.io.dicom_write` and
:mod:`spinemri.io.cohort_write`. The model, intensities and definitions are
documented in docs/phantom.md.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, SpinemriWarning
from .levels import BUILTIN_SCHEMES, region_of
from .phantom_anatomy import PHANTOM_LEVELS, Body, build_spine, phantom_levels
from .phantom_render import Lesion
from .phantom_scene import (
    CONTRASTS,
    CORTEX_MM,
    bias_field,
    draw_texture,
    render_background,
    render_structures,
    surface_points,
)
from .phantom_truth import lesion_table, truth_tables
from .volume import Volume

__all__ = ["PhantomParams", "LesionSpec", "PhantomTruth", "CONTRASTS", "make_phantom", "truth_tables"]

logger = logging.getLogger(__name__)

SERIES_DESCRIPTION = {"stir": "SAG STIR", "t1": "SAG T1"}
LESION_KINDS = ("focal", "irregular", "diffuse")


@dataclass(frozen=True)
class LesionSpec:
    """One explicitly placed lesion.

    Parameters
    ----------
    level : str
        Host vertebra.
    kind : {"focal", "irregular", "diffuse"}
    radius_mm : float, default 6.0
        Sphere radius (focal), mean radius (irregular); ignored for diffuse.
    offset_mm : tuple of 3 floats, default (0, 0, 0)
        Centre offset from the host body centre along its local (LR, AP, SI)
        axes in mm; an SI offset beyond the endplate lets a lesion cross into
        the neighbouring vertebra.
    strength : float, default 1.0
        Fraction of full marrow replacement, in (0, 1].
    """

    level: str
    kind: str = "focal"
    radius_mm: float = 6.0
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    strength: float = 1.0

    def __post_init__(self) -> None:
        if self.level not in PHANTOM_LEVELS:
            raise ConfigError(
                f"LesionSpec: level {self.level!r} is not drawn by the phantom ({PHANTOM_LEVELS})"
            )
        if self.kind not in LESION_KINDS:
            raise ConfigError(f"LesionSpec: kind {self.kind!r} must be one of {LESION_KINDS}")
        if not 0.5 <= self.radius_mm <= 40:
            raise ConfigError(f"LesionSpec: radius_mm={self.radius_mm} must be in [0.5, 40] mm")
        if not 0 < self.strength <= 1:
            raise ConfigError(f"LesionSpec: strength={self.strength} must be in (0, 1]")
        object.__setattr__(self, "offset_mm", tuple(float(v) for v in self.offset_mm))
        if len(self.offset_mm) != 3:
            raise ConfigError("LesionSpec: offset_mm needs three values (LR, AP, SI) in mm")


def _range(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi) or (isinstance(value, float) and math.isnan(value)):
        raise ConfigError(f"PhantomParams: {name}={value!r} is out of range [{lo}, {hi}]")


def _pair(name: str, value: Any, lo: float, hi: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"PhantomParams: {name} must be a (min, max) pair, got {value!r}") from None
    _range(name, a, lo, hi)
    _range(name, b, lo, hi)
    if a > b:
        raise ConfigError(f"PhantomParams: {name}={value!r} has min > max")
    return (a, b)


@dataclass(frozen=True)
class PhantomParams:
    """Every option of :func:`make_phantom`, with its default written once.

    Geometry: ``first_level``/``last_level`` (default C3-S1), ``rows`` (along
    S-I), ``cols`` (along A-P), ``n_slices`` (sagittal slices, along L-R),
    ``pixel_mm`` (None: fit the levels in the rows with a margin),
    ``slice_mm``, ``oblique_deg`` (rotation of the grid about the S-I axis),
    ``tilt_deg`` (in-plane rotation about the L-R axis), ``fov_shift_mm``
    (field-of-view centre moved cranially; cuts caudal levels when large),
    ``supersample`` (sub-samples per voxel axis), ``scale`` (body sizes),
    ``curvature`` (sagittal curve, 0 = straight).
    Contrast and acquisition: ``contrast`` ("stir" or "t1"), ``snr`` (marrow
    intensity / noise sigma; None = no noise), ``bias`` (multiplicative field
    amplitude along S-I: 0.2 = +-20 %), ``texture`` (marrow heterogeneity, relative
    std), ``quantize`` (round to uint16 like scanner output).
    Lesions: ``lesions`` (explicit LesionSpecs; when given nothing is drawn),
    else ``n_involved`` levels (None = drawn) with ``lesions_per_level``
    focal/irregular lesions each, ``kind_weights`` for focal, irregular,
    diffuse, ``radius_mm`` and ``strength`` ranges, ``min_gap_mm`` between
    planned lesions (None = 1.5 x the largest voxel size, so they never merge),
    ``p_collapse`` (chance an involved vertebra is collapsed), ``collapse_range``
    (height loss fraction), ``collapse`` (explicit ``((level, loss), ...)``).
    Labels: ``scheme`` (verse, totalseg, spider, ... from BUILTIN_SCHEMES).
    """

    first_level: str = "C3"
    last_level: str = "S1"
    contrast: str = "stir"
    rows: int = 512
    cols: int = 256
    n_slices: int = 15
    pixel_mm: float | None = None
    slice_mm: float = 4.0
    oblique_deg: float = 0.0
    tilt_deg: float = 0.0
    fov_shift_mm: float = 0.0
    supersample: int = 3
    scale: float = 1.0
    curvature: float = 1.0
    snr: float | None = 20.0
    bias: float = 0.1
    texture: float = 0.04
    quantize: bool = True
    lesions: tuple[LesionSpec, ...] | None = None
    n_involved: int | None = None
    lesions_per_level: tuple[int, int] = (1, 2)
    kind_weights: tuple[float, float, float] = (0.55, 0.3, 0.15)
    radius_mm: tuple[float, float] = (3.5, 8.0)
    strength: tuple[float, float] = (0.6, 1.0)
    min_gap_mm: float | None = None
    p_collapse: float = 0.0
    collapse_range: tuple[float, float] = (0.15, 0.4)
    collapse: tuple[tuple[str, float], ...] = ()
    scheme: str = "verse"

    def __post_init__(self) -> None:
        for name in ("first_level", "last_level"):
            if getattr(self, name) not in PHANTOM_LEVELS:
                raise ConfigError(
                    f"PhantomParams: {name}={getattr(self, name)!r}; choose one of {PHANTOM_LEVELS}"
                )
        if PHANTOM_LEVELS.index(self.first_level) > PHANTOM_LEVELS.index(self.last_level):
            raise ConfigError(
                f"PhantomParams: first_level {self.first_level} is caudal to last_level {self.last_level}"
            )
        if self.contrast not in CONTRASTS:
            raise ConfigError(
                f"PhantomParams: contrast={self.contrast!r}; choose one of {', '.join(CONTRASTS)}"
            )
        if self.scheme not in BUILTIN_SCHEMES:
            raise ConfigError(
                f"PhantomParams: scheme={self.scheme!r}; choose one of {', '.join(BUILTIN_SCHEMES)}"
            )
        for name, lo, hi in (
            ("rows", 16, 2048),
            ("cols", 16, 2048),
            ("n_slices", 1, 256),
            ("supersample", 1, 7),
        ):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise ConfigError(f"PhantomParams: {name} must be an integer, got {v!r}")
            _range(name, int(v), lo, hi)
        if self.pixel_mm is not None:
            _range("pixel_mm", float(self.pixel_mm), 0.1, 10.0)
        _range("slice_mm", float(self.slice_mm), 0.2, 20.0)
        _range("oblique_deg", float(self.oblique_deg), -30.0, 30.0)
        _range("tilt_deg", float(self.tilt_deg), -30.0, 30.0)
        _range("fov_shift_mm", float(self.fov_shift_mm), -1000.0, 1000.0)
        _range("scale", float(self.scale), 0.5, 2.0)
        _range("curvature", float(self.curvature), 0.0, 2.0)
        if self.snr is not None:
            _range("snr", float(self.snr), 1.0, 1e6)
        _range("bias", float(self.bias), 0.0, 0.9)
        _range("texture", float(self.texture), 0.0, 0.5)
        _range("p_collapse", float(self.p_collapse), 0.0, 1.0)
        object.__setattr__(self, "radius_mm", _pair("radius_mm", self.radius_mm, 0.5, 40.0))
        object.__setattr__(self, "strength", _pair("strength", self.strength, 0.01, 1.0))
        object.__setattr__(self, "collapse_range", _pair("collapse_range", self.collapse_range, 0.0, 0.8))
        lpl = _pair("lesions_per_level", self.lesions_per_level, 1, 10)
        object.__setattr__(self, "lesions_per_level", (int(lpl[0]), int(lpl[1])))
        kw = tuple(float(w) for w in self.kind_weights)
        if len(kw) != 3 or min(kw) < 0 or sum(kw) <= 0:
            raise ConfigError(
                f"PhantomParams: kind_weights={self.kind_weights!r} must be 3 non-negative weights"
            )
        object.__setattr__(self, "kind_weights", kw)
        if self.n_involved is not None:
            _range("n_involved", int(self.n_involved), 0, len(PHANTOM_LEVELS))
        if self.min_gap_mm is not None:
            _range("min_gap_mm", float(self.min_gap_mm), 0.0, 100.0)
        if self.lesions is not None:
            specs = tuple(s if isinstance(s, LesionSpec) else LesionSpec(**dict(s)) for s in self.lesions)
            object.__setattr__(self, "lesions", specs)
        coll = tuple((str(lv), float(loss)) for lv, loss in self.collapse)
        for lv, loss in coll:
            if lv not in PHANTOM_LEVELS:
                raise ConfigError(f"PhantomParams: collapse level {lv!r} is not a phantom level")
            _range(f"collapse[{lv}]", loss, 0.0, 0.8)
        object.__setattr__(self, "collapse", coll)

    @property
    def levels(self) -> list[str]:
        """Levels drawn, cranial -> caudal."""
        return phantom_levels(self.first_level, self.last_level)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (for truth.json and provenance)."""
        return asdict(self)

    @classmethod
    def from_options(cls, **options: Any) -> PhantomParams:
        """Build from keyword options, rejecting unknown keys with :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"make_phantom: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**options)


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
    """

    vertebrae: pd.DataFrame
    patient: pd.DataFrame
    lesions: pd.DataFrame
    lesion_mask: Volume
    params: PhantomParams
    bias_field: np.ndarray = field(repr=False)
    noise_sigma: float = 0.0
    bodies: tuple[Body, ...] = field(default=(), repr=False)


# --------------------------------------------------------------------------- grid


def _rotation(oblique_deg: float, tilt_deg: float) -> np.ndarray:
    a, b = np.radians(oblique_deg), np.radians(tilt_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def _grid(p: PhantomParams, bodies: list[Body]) -> np.ndarray:
    """Voxel -> world affine: i along A->P (DICOM columns), j along S->I (rows), k along L->R... see docs."""
    pts = np.concatenate([surface_points(b) for b in bodies])
    z_top, z_bot = pts[:, 2].max() + 15.0, pts[:, 2].min() - 15.0
    y_post = pts[:, 1].min() - 95.0 * p.scale
    y_ant = pts[:, 1].max() + 40.0 * p.scale
    pixel = p.pixel_mm if p.pixel_mm is not None else max((z_top - z_bot) / p.rows, (y_ant - y_post) / p.cols)
    fov_ap = p.cols * pixel
    if fov_ap >= y_ant - y_post:  # the back and the bodies fit: keep the skin of the back inside
        centre_y = y_post + fov_ap / 2.0
    else:  # a small field of view: centre it on the bodies and the canal
        centre_y = float(np.mean([b.centre[1] for b in bodies])) - 10.0 * p.scale
    centre = np.array([0.0, centre_y, 0.5 * (z_top + z_bot) + p.fov_shift_mm])
    # i -> posterior, j -> inferior, k -> patient right: the natural layout of a sagittal DICOM
    # series with ImageOrientationPatient (0,1,0, 0,0,-1) read as (column, row, slice).
    direction = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    direction = _rotation(p.oblique_deg, p.tilt_deg) @ direction
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array([pixel, pixel, p.slice_mm])
    n = np.array([p.cols, p.rows, p.n_slices], dtype=float)
    affine[:3, 3] = centre - affine[:3, :3] @ ((n - 1) / 2.0)
    return affine


# --------------------------------------------------------------------------- lesion plan


def _blob(rng: np.random.Generator) -> dict[str, Any]:
    dirs = rng.normal(size=(4, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return {
        "blob_dirs": dirs,
        "blob_freq": rng.uniform(1.0, 2.5, 4),
        "blob_phase": rng.uniform(0, 2 * np.pi, 4),
        "blob_weight": rng.uniform(0.5, 1.0, 4),
        "blob_amp": 0.3,
    }


def _lesion_from_spec(lid: int, spec: LesionSpec, body: Body, rng: np.random.Generator) -> Lesion:
    centre = body.centre + body.frame @ np.asarray(spec.offset_mm, dtype=float)
    if spec.kind == "diffuse":
        m = CORTEX_MM + 0.5
        radii = np.array([body.a - m, body.b - m, body.h - m])
        return Lesion(lid, spec.level, "diffuse", body.centre.copy(), body.frame, radii, spec.strength)
    if spec.kind == "focal":
        return Lesion(lid, spec.level, "focal", centre, body.frame, np.full(3, spec.radius_mm), spec.strength)
    return Lesion(
        lid,
        spec.level,
        "irregular",
        centre,
        body.frame,
        np.full(3, spec.radius_mm),
        spec.strength,
        **_blob(rng),
    )


def _draw_involved(p: PhantomParams, levels: list[str], rng: np.random.Generator) -> list[str]:
    # metastases favour the thoracic and lumbar spine (red-marrow rich, Batson plexus)
    w = np.array(
        [{"cervical": 0.5, "thoracic": 1.0, "lumbar": 1.4, "sacral": 0.8}[region_of(lv)] for lv in levels]
    )
    if p.n_involved is None:
        n = int(min(len(levels), rng.poisson(2.5)))
    else:
        n = min(int(p.n_involved), len(levels))
    if n == 0:
        return []
    chosen = rng.choice(len(levels), size=n, replace=False, p=w / w.sum())
    return [levels[i] for i in sorted(chosen)]


def _plan_lesions(
    p: PhantomParams, bodies: list[Body], gap: float, rng: np.random.Generator
) -> tuple[list[Lesion], dict[str, int]]:
    by_level = {b.level: b for b in bodies}
    if p.lesions is not None:
        out: list[Lesion] = []
        for spec in p.lesions:
            if spec.level not in by_level:
                raise ConfigError(
                    f"LesionSpec level {spec.level} is outside the phantom's levels "
                    f"{p.first_level}-{p.last_level}"
                )
            out.append(_lesion_from_spec(len(out) + 1, spec, by_level[spec.level], rng))
        return out, {}
    lesions: list[Lesion] = []
    dropped: dict[str, int] = {}
    kinds = np.array(LESION_KINDS)
    weights = np.array(p.kind_weights) / sum(p.kind_weights)
    for level in _draw_involved(p, [b.level for b in bodies], rng):
        body = by_level[level]
        if rng.choice(kinds, p=weights) == "diffuse":
            spec = LesionSpec(level, "diffuse", strength=float(rng.uniform(*p.strength) * 0.6))
            lesions.append(_lesion_from_spec(len(lesions) + 1, spec, body, rng))
            continue
        n = int(rng.integers(p.lesions_per_level[0], p.lesions_per_level[1] + 1))
        placed: list[Lesion] = []
        for _ in range(n):
            focal_w = weights[:2] / weights[:2].sum() if weights[:2].sum() > 0 else np.array([1.0, 0.0])
            kind = str(rng.choice(kinds[:2], p=focal_w))
            ok = False
            for _try in range(60):
                r = float(rng.uniform(*p.radius_mm))
                r = min(r, 0.8 * min(body.a, body.b, body.h))
                rmax = r * 1.3 if kind == "irregular" else r
                lim = np.array([body.a, body.b, body.h]) - 0.6 * rmax
                lim = np.maximum(lim, 0.0)
                off = rng.uniform(-1, 1, 3) * lim
                if (off[0] / max(lim[0], 1e-6)) ** 2 + (off[1] / max(lim[1], 1e-6)) ** 2 > 1:
                    continue
                spec = LesionSpec(level, kind, r, tuple(off), float(rng.uniform(*p.strength)))
                cand = _lesion_from_spec(len(lesions) + len(placed) + 1, spec, body, rng)
                if all(
                    np.linalg.norm(cand.centre - q.centre) >= cand.max_radius + q.max_radius + gap
                    for q in placed
                ):
                    placed.append(cand)
                    ok = True
                    break
            if not ok:
                dropped[level] = dropped.get(level, 0) + 1
        lesions.extend(placed)
    return lesions, dropped


# --------------------------------------------------------------------------- rendering


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
    bodies, discs, curve = build_spine(levels, scale=p.scale, curvature=p.curvature, collapse=collapse)
    affine = _grid(p, bodies)
    shape = (p.cols, p.rows, p.n_slices)
    gap = (
        p.min_gap_mm
        if p.min_gap_mm is not None
        else 1.5 * max(p.slice_mm, float(np.linalg.norm(affine[:3, 0])))
    )
    lesions, dropped = _plan_lesions(p, bodies, gap, plan_rng)
    if p.p_collapse > 0 and p.lesions is None:  # drawn collapse of involved bodies: rebuild the spine once
        for lv in sorted({les.level for les in lesions}, key=levels.index):
            if lv not in collapse and plan_rng.random() < p.p_collapse:
                collapse[lv] = float(plan_rng.uniform(*p.collapse_range))
        if collapse:
            old = {b.level: b for b in bodies}
            bodies, discs, curve = build_spine(
                levels, scale=p.scale, curvature=p.curvature, collapse=collapse
            )
            by = {b.level: b for b in bodies}
            lesions = [_refit(les, old[les.level], by[les.level]) for les in lesions]
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
    )
    return image, mask, truth


def _refit(les: Lesion, old: Body, body: Body) -> Lesion:
    """Move a lesion with its host body after a collapse (SI offset and size scaled by the height loss)."""
    from dataclasses import replace

    if les.kind == "diffuse":
        m = CORTEX_MM + 0.5
        return replace(
            les,
            centre=body.centre.copy(),
            frame=body.frame,
            radii=np.array([body.a - m, body.b - m, body.h - m]),
        )
    ratio = body.h / old.h
    off = old.frame.T @ (les.centre - old.centre)
    off[2] *= ratio
    radii = np.minimum(les.radii, 0.8 * min(body.a, body.b, body.h))
    return replace(les, centre=body.centre + body.frame @ off, frame=body.frame, radii=radii)
