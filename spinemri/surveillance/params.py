"""The parameters of the comparison between time points: every default written once, here.

:class:`SurveillanceParams` is frozen and range-checked when built (:class:`~spinemri.errors.ConfigError`);
docs/metrics.md ("Change between time points") and docs/decisions/0026-surv-core-thresholds.md explain
each default with its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["SurveillanceParams"]


def _number(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"SurveillanceParams.{name} = {value!r}; expected a number in [{lo:g}, {hi:g}]")
    if not lo <= float(value) <= hi:
        raise ConfigError(f"SurveillanceParams.{name} = {value!r} is out of range; expected [{lo:g}, {hi:g}]")
    return float(value)


@dataclass(frozen=True)
class SurveillanceParams:
    """How two time points of one patient are compared (``changes.csv`` and its siblings).

    Parameters
    ----------
    progression_ratio : float, default 0.40
        Smallest relative increase of lesion volume, ``(V_to - V_from) / V_from``, for a vertebra
        to be ``progressing`` (a lesion ``enlarging``): +40 % is the volume of a sphere whose
        bidimensional product grew by the WHO / MDA progression threshold of +25 %
        (``1.25 ** 1.5 = 1.40``).
    regression_ratio : float, default 0.65
        Smallest relative decrease, ``(V_from - V_to) / V_from``, for ``regressing`` /
        ``shrinking``: -65 % is the volume equivalent of the -50 % bidimensional partial-response
        threshold (``0.5 ** 1.5 = 0.35``).
    min_change_mm3 : float, default 150.0
        Smallest absolute volume change, in mm^3, for progression or regression (both the
        relative and the absolute change are needed, as in RECIST 1.1's +20 % and +5 mm). Measured
        scan-rescan noise (scripts/surveillance_noise.py: the same phantom lesions drawn twice,
        repositioned, 1.25 x 1.25 x 4 mm voxels, SNR 20): |dV| up to 107 mm^3 (+75 %) for 3.5 mm
        lesions, up to 200 mm^3 (10 %) for 8 mm ones; 150 mm^3 (24 voxels of 6.25 mm^3) lets no
        rescan of them pass both criteria, and a 3.5 mm lesion doubling (+180 mm^3) or a 6 mm one
        (+905 mm^3) counts.
    min_change_voxels : float, default 24.0
        The absolute threshold is at least this many voxels of the coarser of the two scans
        (``vertebra_volume_mm3 / vertebra_voxels``): the same noise in voxels on coarser grids
        (24 x 6.25 mm^3 = 150 mm^3 on the study grid); 0 turns it off.
    min_interval_days : float, default 56.0
        Pairs of time points closer than this are flagged ``short_interval`` (WHO: no response
        call before 8 weeks).
    pseudoprogression_days : float, default 365.0
        A level irradiated (clinical ``radiotherapy_date`` / ``radiotherapy_levels``) at most this
        many days before the later scan and growing (``new`` or ``progressing``) is
        ``indeterminate`` with ``possible_pseudoprogression`` (Amini et al., AJNR 2016;37:387:
        osseous pseudoprogression peaked 9.7-24.4 weeks after spine SBRT and returned to
        baseline by 23-52.4 weeks).
    match_margin_mm : float, default 5.0
        Lesions of two time points are candidate matches when the distance of their positions in
        the vertebra frame is at most the sum of their equivalent-sphere radii plus this margin
        (one 4 mm slice plus the centroid noise).
    vas_window_days : float, default 30.0
        Largest distance between a VAS assessment date and the scan date for a date match
        (as ``LinkParams.window_days``).
    min_shift_gain : float, default 0.025
        Level check: a level shift is proposed only when it lowers the profile score (mean over
        volume, height and centroid spacing of the median absolute log ratio of the paired
        levels) to at most half of the score as labelled AND by at least this (2.5 %: about half
        the scan-to-scan segmentation noise of a vertebra's volume), so a flat, noisy profile
        never proposes a shift by chance.
    level_tolerance : float, default 0.20
        Level check: one level whose volume, height or spacing ratio differs by more than this
        (absolute log ratio, about 22 %) is reported ``differs``; a profile scoring above it as
        labelled, with no shift fitting, is ``inconsistent``.
    max_level_shift : int, default 2
        Level shifts tried, in levels, in both directions.
    min_common_levels : int, default 3
        Fewest levels compared for the level check to decide anything.
    apply_level_shift : bool, default False
        When the level check proposes a shift, compare after renaming the later time point's
        levels by it (reported in ``level_check``); False marks the pair ``not_comparable``.
    ci_level : float, default 0.95
        Confidence level of the statistics of change.
    n_bootstrap : int, default 2000
        Patient-level bootstrap resamples of the Spearman interval (0: none).
    seed : int, default 0
        Seed of the bootstrap.
    burden_column : str, default "hi_volume_ratio"
        Patient-level burden of the mixed model and of the delta correlation.
    """

    progression_ratio: float = 0.40
    regression_ratio: float = 0.65
    min_change_mm3: float = 150.0
    min_change_voxels: float = 24.0
    min_interval_days: float = 56.0
    pseudoprogression_days: float = 365.0
    match_margin_mm: float = 5.0
    vas_window_days: float = 30.0
    min_shift_gain: float = 0.025
    level_tolerance: float = 0.20
    max_level_shift: int = 2
    min_common_levels: int = 3
    apply_level_shift: bool = False
    ci_level: float = 0.95
    n_bootstrap: int = 2000
    seed: int = 0
    burden_column: str = "hi_volume_ratio"

    def __post_init__(self) -> None:
        _number("progression_ratio", self.progression_ratio, 1e-6, 100.0)
        _number("regression_ratio", self.regression_ratio, 1e-6, 1.0 - 1e-9)
        _number("min_change_mm3", self.min_change_mm3, 0.0, 1e6)
        _number("min_change_voxels", self.min_change_voxels, 0.0, 1e6)
        _number("min_interval_days", self.min_interval_days, 0.0, 36500.0)
        _number("pseudoprogression_days", self.pseudoprogression_days, 0.0, 36500.0)
        _number("match_margin_mm", self.match_margin_mm, 0.0, 1000.0)
        _number("vas_window_days", self.vas_window_days, 0.0, 36500.0)
        _number("min_shift_gain", self.min_shift_gain, 0.0, 10.0)
        _number("level_tolerance", self.level_tolerance, 0.0, 10.0)
        _number("ci_level", self.ci_level, 0.5, 0.999999)
        if self.ci_level in (0.5,):
            raise ConfigError("SurveillanceParams.ci_level must be in (0.5, 1)")
        for name, lo, hi in (
            ("max_level_shift", 0, 10),
            ("min_common_levels", 2, 100),
            ("n_bootstrap", 0, 10**6),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(
                    f"SurveillanceParams.{name} = {v!r}; expected a whole number in [{lo}, {hi}]"
                )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"SurveillanceParams.seed = {self.seed!r}; expected a whole number >= 0")
        if not isinstance(self.apply_level_shift, bool):
            raise ConfigError(
                f"SurveillanceParams.apply_level_shift = {self.apply_level_shift!r}; expected True or False"
            )
        if not isinstance(self.burden_column, str) or not self.burden_column:
            raise ConfigError(
                f"SurveillanceParams.burden_column = {self.burden_column!r}; expected a column name"
            )
        if self.min_shift_gain >= self.level_tolerance:
            raise ConfigError(
                f"SurveillanceParams: min_shift_gain ({self.min_shift_gain!r}) must be below level_tolerance "
                f"({self.level_tolerance!r})"
            )
