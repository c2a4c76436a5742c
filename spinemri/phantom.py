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
from .phantom_render import Lesion, bbox_of, in_cylinder, in_lesion, local_coords, subgrid, voxel_counts
from .volume import Volume, lr_axis

__all__ = ["PhantomParams", "LesionSpec", "PhantomTruth", "CONTRASTS", "make_phantom", "truth_tables"]

logger = logging.getLogger(__name__)

#: Tissue intensities (arbitrary scanner units) of each contrast preset. ``lesion`` is fully
#: replaced marrow; a lesion of strength s has intensity marrow + s * (lesion - marrow).
CONTRASTS: dict[str, dict[str, float]] = {
    "stir": {
        "marrow": 220.0, "lesion": 850.0, "cortex": 30.0, "disc": 550.0, "csf": 1000.0, "cord": 480.0,
        "posterior": 200.0, "muscle": 260.0, "soft": 320.0, "fat": 50.0, "air": 0.0,
    },
    "t1": {
        "marrow": 650.0, "lesion": 220.0, "cortex": 40.0, "disc": 300.0, "csf": 120.0, "cord": 420.0,
        "posterior": 600.0, "muscle": 350.0, "soft": 380.0, "fat": 950.0, "air": 0.0,
    },
}
SERIES_DESCRIPTION = {"stir": "SAG STIR", "t1": "SAG T1"}
LESION_KINDS = ("focal", "irregular", "diffuse")
CORTEX_MM = 1.0


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
            raise ConfigError(f"LesionSpec: level {self.level!r} is not drawn by the phantom ({PHANTOM_LEVELS})")
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
                raise ConfigError(f"PhantomParams: {name}={getattr(self, name)!r}; choose one of {PHANTOM_LEVELS}")
        if PHANTOM_LEVELS.index(self.first_level) > PHANTOM_LEVELS.index(self.last_level):
            raise ConfigError(f"PhantomParams: first_level {self.first_level} is caudal to last_level {self.last_level}")
        if self.contrast not in CONTRASTS:
            raise ConfigError(f"PhantomParams: contrast={self.contrast!r}; choose one of {', '.join(CONTRASTS)}")
        if self.scheme not in BUILTIN_SCHEMES:
            raise ConfigError(f"PhantomParams: scheme={self.scheme!r}; choose one of {', '.join(BUILTIN_SCHEMES)}")
        for name, lo, hi in (("rows", 16, 2048), ("cols", 16, 2048), ("n_slices", 1, 256), ("supersample", 1, 7)):
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
            raise ConfigError(f"PhantomParams: kind_weights={self.kind_weights!r} must be 3 non-negative weights")
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


def _surface_points(body: Body, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.stack([body.a * np.cos(t), body.b * np.sin(t)], axis=1)
    pts = []
    for hz in np.linspace(-body.h, body.h, 7):
        pts.append(np.column_stack([ring, np.full(n, hz)]))
    for r in (0.33, 0.66):  # endplate interior points
        pts.append(np.column_stack([ring * r, np.full(n, body.h)]))
        pts.append(np.column_stack([ring * r, np.full(n, -body.h)]))
    local = np.concatenate(pts)
    return local @ body.frame.T + body.centre


def _grid(p: PhantomParams, bodies: list[Body]) -> np.ndarray:
    """Voxel -> world affine: i along A->P (DICOM columns), j along S->I (rows), k along L->R... see docs."""
    pts = np.concatenate([_surface_points(b) for b in bodies])
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
    return Lesion(lid, spec.level, "irregular", centre, body.frame, np.full(3, spec.radius_mm), spec.strength,
                  **_blob(rng))


def _draw_involved(p: PhantomParams, levels: list[str], rng: np.random.Generator) -> list[str]:
    # metastases favour the thoracic and lumbar spine (red-marrow rich, Batson plexus)
    w = np.array([{"cervical": 0.5, "thoracic": 1.0, "lumbar": 1.4, "sacral": 0.8}[region_of(lv)] for lv in levels])
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
        out = []
        for spec in p.lesions:
            if spec.level not in by_level:
                raise ConfigError(f"LesionSpec level {spec.level} is outside the phantom's levels "
                                  f"{p.first_level}-{p.last_level}")
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
                if all(np.linalg.norm(cand.centre - q.centre) >= cand.max_radius + q.max_radius + gap for q in placed):
                    placed.append(cand)
                    ok = True
                    break
            if not ok:
                dropped[level] = dropped.get(level, 0) + 1
        lesions.extend(placed)
    return lesions, dropped


# --------------------------------------------------------------------------- rendering


def _texture(rng: np.random.Generator, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    wavelength = rng.uniform(5.0, 15.0, n)
    k = rng.normal(size=(n, 3))
    k *= (2 * np.pi / wavelength / np.linalg.norm(k, axis=1))[:, None]
    return k, rng.uniform(0, 2 * np.pi, n)


def _world_box(affine: np.ndarray, lo: tuple, hi: tuple, *, broadcast: bool = False) -> list[np.ndarray]:
    """World (x, y, z) mm of the voxel centres of a box, as float32 arrays.

    With ``broadcast=True`` each coordinate keeps only the axes it depends on
    (shape (ni|1, nj|1, nk|1)), so functions of y and z alone stay 2-D on a
    sagittal grid: that is what keeps the background render fast.
    """
    axes = [np.arange(a, b, dtype=np.float64) for a, b in zip(lo, hi)]
    shapes = [(-1, 1, 1), (1, -1, 1), (1, 1, -1)]
    full = tuple(b - a for a, b in zip(lo, hi))
    out = []
    for r in range(3):
        x = np.full((1, 1, 1), affine[r, 3], dtype=np.float64)
        for c in range(3):
            if affine[r, c] != 0.0 or not broadcast:
                x = x + (affine[r, c] * axes[c]).reshape(shapes[c])
        x = x.astype(np.float32)
        out.append(x if broadcast else np.broadcast_to(x, full))
    return out


def _background(p: PhantomParams, affine: np.ndarray, shape: tuple, curve: dict, bodies: list[Body]) -> np.ndarray:
    """Soft tissue, fat, air, canal (CSF), cord and posterior elements at voxel centres (float32).

    Edges are anti-aliased with a linear ramp one pixel wide; these structures carry no truth.
    """
    c = CONTRASTS[p.contrast]
    x, y, z = _world_box(affine, (0, 0, 0), shape, broadcast=True)
    zs, ys, ds, th = curve["z"][::-1], curve["y"][::-1], curve["depth"][::-1], curve["theta"][::-1]
    yc = np.interp(z, zs, ys).astype(np.float32)
    depth = np.interp(z, zs, ds).astype(np.float32)
    cos_t = np.cos(np.interp(z, zs, th)).astype(np.float32)
    v = (y - yc) * cos_t  # offset from the spinal axis perpendicular to it, anterior positive
    w = np.float32(max(min(abs(s) for s in np.linalg.norm(affine[:3, :3], axis=0)), 0.3))
    sc = np.float32(p.scale)

    def ramp(dist: np.ndarray) -> np.ndarray:  # dist > 0 outside
        return np.clip(0.5 - dist / w, 0.0, 1.0)

    canal_a, canal_b = 10.0 * sc, 7.0 * sc
    v_canal = -(depth / 2 + 1.5 * sc + canal_b)
    v_post = v_canal - canal_b  # posterior wall of the canal
    v_skin = v_post - 25.0 * sc - 40.0 * sc - 12.0 * sc
    f_body = ramp(v_skin - v)  # inside the body (anterior to the skin of the back)
    f_fat = f_body * ramp(v - (v_skin + 12.0 * sc))  # subcutaneous fat layer
    f_muscle = np.clip(f_body * ramp(v - v_post + 2.0) - f_fat, 0, 1)
    f_ant = np.clip(f_body - f_fat - f_muscle, 0, 1)
    base = f_fat * c["fat"] + f_muscle * c["muscle"] + f_ant * c["soft"]
    out = np.array(np.broadcast_to(base, shape), dtype=np.float32)
    # the canal, cord and posterior elements lie within |x| < canal_a: only slabs of k that reach it
    reach = np.abs(np.broadcast_to(x, (x.shape[0], x.shape[1], shape[2]))).min(axis=(0, 1))
    ks = np.nonzero(reach <= canal_a + 2 * w)[0]
    if ks.size == 0:
        return out
    k0, k1 = int(ks.min()), int(ks.max()) + 1

    def slab(a: np.ndarray) -> np.ndarray:
        return a[..., k0:k1] if a.shape[2] > 1 else a

    x, z, v, v_canal, v_post, base = (slab(a) for a in (x, z, v, v_canal, v_post, base))
    r_canal = np.sqrt((x / canal_a) ** 2 + ((v - v_canal) / canal_b) ** 2)
    f_canal = ramp((r_canal - 1) * canal_b)
    conus_z = np.float32(min((b.centre[2] - b.h for b in bodies if b.level == "L1"), default=-1e9))
    r_cord = np.sqrt((x / (5.5 * sc)) ** 2 + ((v - v_canal) / (4.0 * sc)) ** 2)
    f_cord = ramp((r_cord - 1) * 4.0 * sc) * ramp(conus_z - z)
    # posterior elements: lamina + spinous process at each level, gaps between levels
    zb = np.array([b.centre[2] for b in bodies], dtype=np.float32)
    hb = np.array([b.h for b in bodies], dtype=np.float32)
    idx = np.clip(np.searchsorted(-zb, -z), 0, len(zb) - 1)
    near = np.minimum(np.abs(z - zb[idx]) - 0.8 * hb[idx],
                      np.abs(z - zb[np.maximum(idx - 1, 0)]) - 0.8 * hb[np.maximum(idx - 1, 0)])
    f_post = ramp(np.abs(x) - 6.0 * sc) * ramp(near) * ramp(v - v_post) * ramp(v_post - 25.0 * sc - v)
    base = base * (1 - f_post) + f_post * c["posterior"]
    inside_canal = f_canal * (1 - f_cord) * c["csf"] + f_canal * f_cord * c["cord"]
    out[:, :, k0:k1] = base * (1 - f_canal) + inside_canal
    return out


def _bias(p: PhantomParams, affine: np.ndarray, shape: tuple) -> np.ndarray:
    """1 + bias * sin(pi (t - 1/2)), t = 0 at the most inferior voxel centre, 1 at the most superior."""
    x, y, z = _world_box(affine, (0, 0, 0), shape, broadcast=True)
    zmin, zmax = float(z.min()), float(z.max())
    t = (z - zmin) / max(zmax - zmin, 1e-6)
    return np.broadcast_to(1.0 + p.bias * np.sin(np.pi * (t - 0.5)), shape).astype(np.float32)


def _render(p: PhantomParams, affine: np.ndarray, shape: tuple, bodies: list[Body], discs: list[Body],
            lesions: list[Lesion], tex: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    c = CONTRASTS[p.contrast]
    f = p.supersample
    nsub = f**3
    signal = np.zeros(shape, np.float32)
    occupied = np.zeros(shape, np.float32)
    best = np.zeros(shape, np.int16)  # sub-samples of the vertebra owning each voxel
    label = np.zeros(shape, np.int16)  # 1-based index into bodies
    les_n = np.zeros(shape, np.int16)  # lesion sub-samples within the owning vertebra
    les_id = np.zeros(shape, np.uint16)
    boxes: dict[str, tuple] = {}
    kvec, kphase = tex
    for bi, body in enumerate(bodies):
        box = bbox_of(_surface_points(body), affine, shape)
        if box is None:
            continue
        boxes[body.level] = box
        g = subgrid(*box, f)
        u = local_coords(g, affine, body.centre, body.frame)
        outer = in_cylinder(u, body.a, body.b, body.h)
        inner = in_cylinder(u, body.a - CORTEX_MM, body.b - CORTEX_MM, body.h - CORTEX_MM)
        claimed = np.zeros_like(outer)
        per_lesion = []
        for les in lesions:
            if np.linalg.norm(les.centre - body.centre) > les.max_radius + np.linalg.norm([body.a, body.b, body.h]):
                continue
            m = in_lesion(les, g, affine) & outer & ~claimed
            if m.any():
                claimed |= m
                per_lesion.append((les, voxel_counts(m, g)))
        n_out = voxel_counts(outer, g)
        n_cortex = voxel_counts(outer & ~inner & ~claimed, g)
        n_marrow = voxel_counts(inner & ~claimed, g)
        xw = _world_box(affine, *box)
        t = np.zeros(g.shape, np.float32)
        for kv, ph in zip(kvec, kphase):
            t += np.cos(kv[0] * xw[0] + kv[1] * xw[1] + kv[2] * xw[2] + np.float32(ph))
        marrow = np.float32(c["marrow"]) * (1 + np.float32(p.texture / np.sqrt(len(kvec) / 2.0)) * t)
        sig = n_cortex * np.float32(c["cortex"]) + n_marrow * marrow
        n_les_all = np.zeros(g.shape, np.int16)
        les_best = np.zeros(g.shape, np.int16)
        les_best_id = np.zeros(g.shape, np.uint16)
        for les, n in per_lesion:
            sig += n * (marrow + np.float32(les.strength) * (np.float32(c["lesion"]) - marrow))
            n_les_all += n
            upd = n > les_best
            les_best[upd] = n[upd]
            les_best_id[upd] = les.lesion_id
        sl = g.slices
        signal[sl] += sig / nsub
        occupied[sl] += n_out / nsub
        upd = n_out > best[sl]
        best[sl][upd] = n_out[upd]
        label[sl][upd] = bi + 1
        les_n[sl][upd] = n_les_all[upd]
        les_id[sl][upd] = les_best_id[upd]
    for di, disc in enumerate(discs):
        box = bbox_of(_surface_points(disc), affine, shape)
        if box is None:
            continue
        g = subgrid(*box, f)
        m = in_cylinder(local_coords(g, affine, disc.centre, disc.frame), disc.a, disc.b, disc.h)
        for nb in (bodies[di], bodies[di + 1]):
            m &= ~in_cylinder(local_coords(g, affine, nb.centre, nb.frame), nb.a, nb.b, nb.h)
        n = voxel_counts(m, g)
        signal[g.slices] += n * np.float32(c["disc"] / nsub)
        occupied[g.slices] += n / np.float32(nsub)
    # truth: a voxel belongs to a vertebra (lesion) when at least half its sub-samples do
    vert = 2 * best.astype(np.int32) >= nsub
    lesion = vert & (2 * les_n.astype(np.int32) >= nsub)
    return {
        "signal": signal, "occupied": np.clip(occupied, 0, 1), "label": np.where(vert, label, 0),
        "lesion_id": np.where(lesion, les_id, 0).astype(np.uint16), "boxes": boxes,  # type: ignore[dict-item]
    }


# --------------------------------------------------------------------------- truth


def truth_tables(
    label_index: np.ndarray, lesion_id: np.ndarray, levels: list[str], labels: dict[str, int],
    affine: np.ndarray, truncated: dict[str, bool], boxes: dict[str, tuple] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-vertebra and per-patient truth from integer maps (see docs/phantom.md).

    ``label_index`` holds 1-based indices into ``levels`` (0 = background);
    ``lesion_id`` lesion ids (0 = none) on the same grid. ``boxes`` optionally
    gives, per level, a voxel box (lo, hi) holding all of its voxels (a speed-up only).
    """
    from scipy import ndimage

    vox = float(abs(np.linalg.det(affine[:3, :3])))
    ax = lr_axis(affine)
    lesion = lesion_id > 0
    rows = []
    for idx, level in enumerate(levels, start=1):
        box = (boxes or {}).get(level)
        sl = tuple(slice(a, b) for a, b in zip(*box)) if box else (slice(None),) * 3
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
        rows.append({
            "level": level, "label": labels[level], "region": region_of(level),
            "vertebra_voxels": nv, "vertebra_volume_mm3": nv * vox,
            "lesion_voxels": nl, "lesion_volume_mm3": nl * vox, "hi_volume_ratio": nl / nv,
            "mid_slice": mid, "mid_vertebra_pixels": area_v, "mid_lesion_pixels": area_l,
            "hi_area_ratio": area_l / area_v if area_v else 0.0,
            "lesion_count": int(ncomp), "involved": bool(ncomp >= 1), "truncated": bool(truncated[level]),
        })
    vert = pd.DataFrame(rows, columns=[
        "level", "label", "region", "vertebra_voxels", "vertebra_volume_mm3", "lesion_voxels",
        "lesion_volume_mm3", "hi_volume_ratio", "hi_area_ratio", "lesion_count", "involved", "truncated",
        "mid_slice", "mid_vertebra_pixels", "mid_lesion_pixels",
    ])
    inv = vert[vert["involved"]]
    by_region = vert.groupby("region")["lesion_volume_mm3"].sum()
    dominant = "none" if inv.empty else str(by_region.idxmax())
    pat = {
        "n_vertebrae": len(vert), "n_involved": len(inv), "involved_levels": ";".join(inv["level"]),
        **{f"{r}_involved": bool((inv["region"] == r).any()) for r in ("cervical", "thoracic", "lumbar", "sacral")},
        "dominant_region": dominant, "total_lesion_count": int(vert["lesion_count"].sum()),
        "total_lesion_volume_mm3": float(vert["lesion_volume_mm3"].sum()),
        "hi_volume_ratio": float(vert["lesion_volume_mm3"].sum() / vert["vertebra_volume_mm3"].sum())
        if len(vert) else 0.0,
        "hi_area_ratio": float(vert["mid_lesion_pixels"].sum() / vert["mid_vertebra_pixels"].sum())
        if len(vert) else 0.0,
        "hi_area_ratio_max": float(vert["hi_area_ratio"].max()) if len(vert) else 0.0,
    }
    return vert, pd.DataFrame([pat])


def _lesion_table(lesions: list[Lesion], lesion_id: np.ndarray, label_index: np.ndarray, levels: list[str],
                  vox: float, contrast: dict[str, float]) -> pd.DataFrame:
    rows = []
    ids = lesion_id.ravel()
    counts = np.bincount(ids, minlength=len(lesions) + 1)
    for les in lesions:
        touched = np.unique(label_index[lesion_id == les.lesion_id])
        lv = [levels[i - 1] for i in sorted(touched) if i > 0]
        intensity = contrast["marrow"] + les.strength * (contrast["lesion"] - contrast["marrow"])
        rows.append({
            "lesion_id": les.lesion_id, "planned_level": les.level, "levels": ";".join(lv), "kind": les.kind,
            "x_mm": float(les.centre[0]), "y_mm": float(les.centre[1]), "z_mm": float(les.centre[2]),
            "radius_mm": float(np.max(les.radii)), "strength": les.strength,
            "contrast": intensity / contrast["marrow"], "voxels": int(counts[les.lesion_id]),
            "volume_mm3": int(counts[les.lesion_id]) * vox,
        })
    return pd.DataFrame(rows, columns=["lesion_id", "planned_level", "levels", "kind", "x_mm", "y_mm", "z_mm",
                                       "radius_mm", "strength", "contrast", "voxels", "volume_mm3"])


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
        Fields of :class:`PhantomParams` (unknown keys raise ConfigError).

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
    p = options.pop("params") if "params" in options else None
    p = p if isinstance(p, PhantomParams) and not options else PhantomParams.from_options(**options)
    levels = p.levels
    plan_rng = np.random.default_rng([int(seed), 1])
    tex_rng = np.random.default_rng([int(seed), 2])
    noise_rng = np.random.default_rng([int(seed), 3])
    collapse = dict(p.collapse)
    involved_hint = None
    if p.p_collapse > 0 and p.lesions is None:
        # collapse is decided after the plan below; the bodies are rebuilt once
        involved_hint = True
    bodies, discs, curve = build_spine(levels, scale=p.scale, curvature=p.curvature, collapse=collapse)
    affine = _grid(p, bodies)
    shape = (p.cols, p.rows, p.n_slices)
    gap = p.min_gap_mm if p.min_gap_mm is not None else 1.5 * max(p.slice_mm, float(np.linalg.norm(affine[:3, 0])))
    lesions, dropped = _plan_lesions(p, bodies, gap, plan_rng)
    if involved_hint:
        for lv in sorted({les.level for les in lesions}, key=levels.index):
            if lv not in collapse and plan_rng.random() < p.p_collapse:
                collapse[lv] = float(plan_rng.uniform(*p.collapse_range))
        if collapse:
            old = {b.level: b for b in bodies}
            bodies, discs, curve = build_spine(levels, scale=p.scale, curvature=p.curvature, collapse=collapse)
            by = {b.level: b for b in bodies}
            lesions = [_refit(les, old[les.level], by[les.level]) for les in lesions]
    for lv, n in dropped.items():
        logger.info("phantom seed %s: %d planned lesion(s) in %s did not fit apart and were dropped", seed, n, lv)
    render = _render(p, affine, shape, bodies, discs, lesions, _texture(tex_rng))
    background = _background(p, affine, shape, curve, bodies)
    clean = render["signal"] + (1.0 - render["occupied"]) * background
    bias = _bias(p, affine, shape)
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
        warnings.warn(f"label scheme {p.scheme!r} has no label for {', '.join(missing)}: these vertebrae are drawn "
                      "but left out of the mask and the truth", SpinemriWarning, stacklevel=2)
    lut = np.zeros(len(levels) + 1, dtype=np.int64)
    for i, lv in enumerate(levels, start=1):
        lut[i] = labels.get(lv, 0)
    label_index = np.where(lut[render["label"]] > 0, render["label"], 0)
    lesion_id = np.where(label_index > 0, render["lesion_id"], 0).astype(np.uint16)
    mask_dtype = np.uint8 if lut.max() < 256 else np.uint16
    inv = np.linalg.inv(affine)
    n = np.array(shape)
    truncated = {}
    for b in bodies:
        ijk = _surface_points(b) @ inv[:3, :3].T + inv[:3, 3]
        truncated[b.level] = bool(np.any(ijk < -0.5) or np.any(ijk > n - 0.5))
    if not np.any(label_index):
        raise ConfigError(
            f"make_phantom: no vertebra of {p.first_level}-{p.last_level} falls inside the field of view "
            f"({shape} voxels of {np.round(np.linalg.norm(affine[:3, :3], axis=0), 3).tolist()} mm); "
            "enlarge rows/cols/pixel_mm or reduce fov_shift_mm"
        )
    vert, patient = truth_tables(label_index, lesion_id, levels, labels, affine, truncated, render["boxes"])
    vox = float(abs(np.linalg.det(affine[:3, :3])))
    les_df = _lesion_table(lesions, lesion_id, label_index, levels, vox, CONTRASTS[p.contrast])
    meta = {"modality": "MR", "series_description": SERIES_DESCRIPTION[p.contrast], "plane": "sagittal",
            "contrast": p.contrast, "seed": int(seed), "source": f"phantom(seed={seed})"}
    image = Volume(img, affine, meta)
    mask = Volume(lut[label_index].astype(mask_dtype), affine, {"scheme": p.scheme, "source": meta["source"]})
    truth = PhantomTruth(vert, patient, les_df, Volume(lesion_id, affine, {"source": meta["source"]}), p,
                         bias, sigma, tuple(bodies))
    return image, mask, truth


def _refit(les: Lesion, old: Body, body: Body) -> Lesion:
    """Move a lesion with its host body after a collapse (SI offset and size scaled by the height loss)."""
    from dataclasses import replace

    if les.kind == "diffuse":
        m = CORTEX_MM + 0.5
        return replace(les, centre=body.centre.copy(), frame=body.frame,
                       radii=np.array([body.a - m, body.b - m, body.h - m]))
    ratio = body.h / old.h
    off = old.frame.T @ (les.centre - old.centre)
    off[2] *= ratio
    radii = np.minimum(les.radii, 0.8 * min(body.a, body.b, body.h))
    return replace(les, centre=body.centre + body.frame @ off, frame=body.frame, radii=radii)
