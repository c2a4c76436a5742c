"""Parameters of the digital spine phantom: :class:`PhantomParams`, :class:`LesionSpec`, contrast presets.

Every option of :func:`spinemri.phantom.make.make_phantom` has its default
written once here and is range-checked when the parameter object is built
(:class:`~spinemri.errors.ConfigError`). See docs/phantom.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..levels import BUILTIN_SCHEMES
from .anatomy import PHANTOM_LEVELS, phantom_levels

__all__ = ["CONTRASTS", "DEFORMITY_KINDS", "LESION_KINDS", "LesionSpec", "PhantomParams"]

LESION_KINDS = ("focal", "irregular", "diffuse")
#: Vertebral body deformities the phantom draws (``PhantomParams.deformity``; docs/phantom.md).
DEFORMITY_KINDS = ("wedge", "biconcave", "crush")

#: Tissue intensities (arbitrary scanner units) of each contrast preset. ``lesion`` is fully
#: replaced marrow; a lesion of strength s has intensity marrow + s * (lesion - marrow).
CONTRASTS: dict[str, dict[str, float]] = {
    "stir": {
        "marrow": 220.0,
        "lesion": 850.0,
        "cortex": 30.0,
        "disc": 550.0,
        "csf": 1000.0,
        "cord": 480.0,
        "posterior": 200.0,
        "muscle": 260.0,
        "soft": 320.0,
        "fat": 50.0,
        "air": 0.0,
    },
    "t1": {
        "marrow": 650.0,
        "lesion": 220.0,
        "cortex": 40.0,
        "disc": 300.0,
        "csf": 120.0,
        "cord": 420.0,
        "posterior": 600.0,
        "muscle": 350.0,
        "soft": 380.0,
        "fat": 950.0,
        "air": 0.0,
    },
}


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
    """Every option of :func:`~spinemri.phantom.make.make_phantom`, with its default written once.

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
    (height loss fraction), ``collapse`` (explicit ``((level, loss), ...)``),
    ``deformity`` (explicit ``((level, kind, loss), ...)`` body deformities of known heights:
    ``wedge`` anterior wall lower by ``loss``, ``biconcave`` centre of both endplates pressed in by
    ``loss``, ``crush`` the whole body lower by ``loss``; docs/phantom.md).
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
    deformity: tuple[tuple[str, str, float], ...] = ()

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
        deform = []
        for item in self.deformity:
            try:
                lv, kind, loss = item
            except (TypeError, ValueError):
                raise ConfigError(
                    f"PhantomParams: deformity item {item!r} must be (level, kind, loss)"
                ) from None
            if lv not in PHANTOM_LEVELS:
                raise ConfigError(f"PhantomParams: deformity level {lv!r} is not a phantom level")
            if kind not in DEFORMITY_KINDS:
                raise ConfigError(f"PhantomParams: deformity kind {kind!r} must be one of {DEFORMITY_KINDS}")
            _range(f"deformity[{lv}]", float(loss), 0.0, 0.8)
            deform.append((str(lv), str(kind), float(loss)))
        if len({d[0] for d in deform}) < len(deform):
            raise ConfigError("PhantomParams: at most one deformity per level")
        object.__setattr__(self, "deformity", tuple(deform))

    @property
    def levels(self) -> list[str]:
        """Levels drawn, cranial -> caudal."""
        return phantom_levels(self.first_level, self.last_level)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (for truth.json and provenance).

        Returns
        -------
        dict of str -> Any
            Every field by name (:func:`dataclasses.asdict`): nested :class:`LesionSpec`
            become dicts, tuples such as ``collapse`` stay tuples. ``deformity`` is left out when
            empty (so phantoms without deformities record exactly what they did before it existed).
        """
        out = asdict(self)
        if not self.deformity:
            del out["deformity"]
        return out

    @classmethod
    def from_options(cls, **options: Any) -> PhantomParams:
        """Build from keyword options, rejecting unknown keys with :class:`ConfigError`.

        Parameters
        ----------
        **options : Any
            Field values by name (the options of :func:`~spinemri.phantom.make.make_phantom`);
            fields not given keep their defaults.

        Returns
        -------
        PhantomParams
            The range-checked parameters.

        Raises
        ------
        ConfigError
            For an unknown option name or an out-of-range value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"make_phantom: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**options)
