"""Parameters of the body-height measurement and its grading: :class:`HeightParams`.

Every default is written once here and range-checked when the object is built
(:class:`~spinemri.errors.ConfigError`); docs/metrics.md "Body heights and collapse" explains each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["HeightParams"]


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(float(value)):
        raise ConfigError(f"HeightParams: {name}={value!r} must be a number in [{lo}, {hi}]")
    if not lo <= float(value) <= hi:
        raise ConfigError(f"HeightParams: {name}={value!r} is out of range [{lo}, {hi}]")


@dataclass(frozen=True)
class HeightParams:
    """How vertebral body heights are measured and graded (docs/metrics.md).

    Parameters
    ----------
    fractions : tuple of 3 float, default (0.15, 0.50, 0.85)
        Positions of the posterior, middle and anterior heights along the antero-posterior chord,
        as fractions of the chord from its posterior end (TotalSegmentator's spine report uses the
        same three fractions).
    band_mm : float, default 2.0
        Half-width (mm) of the lateral band around the mid-sagittal plane over which each height
        is averaged.
    ap_window_mm : float, default 1.0
        Half-width (mm) of the antero-posterior window around each measuring position.
    n_band : int, default 5
        Rays across the lateral band (odd: one in the mid-sagittal plane).
    n_window : int, default 3
        Rays across the antero-posterior window.
    step_mm : float, default 0.1
        Sampling step along a ray (mm); the 0.5 crossings are interpolated between samples.
    refine_iterations : int, default 2
        Rounds of the endplate refinement of the cranio-caudal axis (0: the spine tangent alone).
    max_refine_deg : float, default 15.0
        The endplate refinement may turn the axis at most this far from the smallest-width direction.
    genant : tuple of 3 float, default (0.20, 0.25, 0.40)
        Height-loss ratios at which Genant grades 1, 2 and 3 begin (grade 3: loss > 0.40).
    collapse_min_loss : float, default 0.20
        Height loss from which the body counts as collapsed for SINS (Genant grade 1).
    collapse_gt50 : float, default 0.50
        Height loss above which the SINS collapse is "> 50 %".
    new_fracture_ratio : float, default 0.20
        At follow-up, a height that fell by at least this fraction of its earlier value ...
    new_fracture_mm : float, default 4.0
        ... and by at least this many mm is a new or progressing compression fracture.
    min_body_mm3 : float, default 1000.0
        Bodies smaller than this are not measured (fragments, a vertebra cut by the field of view).
    """

    fractions: tuple[float, float, float] = (0.15, 0.50, 0.85)
    band_mm: float = 2.0
    ap_window_mm: float = 1.0
    n_band: int = 5
    n_window: int = 3
    step_mm: float = 0.1
    refine_iterations: int = 2
    max_refine_deg: float = 15.0
    genant: tuple[float, float, float] = (0.20, 0.25, 0.40)
    collapse_min_loss: float = 0.20
    collapse_gt50: float = 0.50
    new_fracture_ratio: float = 0.20
    new_fracture_mm: float = 4.0
    min_body_mm3: float = 1000.0

    def __post_init__(self) -> None:
        fr = tuple(float(f) for f in self.fractions)
        if len(fr) != 3 or not 0.0 < fr[0] < fr[1] < fr[2] < 1.0:
            raise ConfigError(
                f"HeightParams: fractions={self.fractions!r} must be 3 increasing values in (0, 1)"
            )
        object.__setattr__(self, "fractions", fr)
        g = tuple(float(v) for v in self.genant)
        if len(g) != 3 or not 0.0 < g[0] < g[1] < g[2] < 1.0:
            raise ConfigError(f"HeightParams: genant={self.genant!r} must be 3 increasing values in (0, 1)")
        object.__setattr__(self, "genant", g)
        _check("band_mm", self.band_mm, 0.0, 20.0)
        _check("ap_window_mm", self.ap_window_mm, 0.0, 10.0)
        _check("step_mm", self.step_mm, 0.01, 1.0)
        _check("max_refine_deg", self.max_refine_deg, 0.0, 60.0)
        _check("collapse_min_loss", self.collapse_min_loss, 0.0, 1.0)
        _check("collapse_gt50", self.collapse_gt50, 0.0, 1.0)
        _check("new_fracture_ratio", self.new_fracture_ratio, 0.0, 1.0)
        _check("new_fracture_mm", self.new_fracture_mm, 0.0, 50.0)
        _check("min_body_mm3", self.min_body_mm3, 0.0, 1e6)
        if self.collapse_min_loss > self.collapse_gt50:
            raise ConfigError("HeightParams: collapse_min_loss must not exceed collapse_gt50")
        for name, lo, hi in (("n_band", 1, 51), ("n_window", 1, 51), ("refine_iterations", 0, 10)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ConfigError(f"HeightParams: {name}={v!r} must be an integer in [{lo}, {hi}]")
