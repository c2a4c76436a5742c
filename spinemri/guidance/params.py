"""Parameters of the therapy-guidance measurements: :class:`GuidanceParams`, :class:`CanalParams`.

Every default is written once here and range-checked when the object is built
(:class:`~spinemri.errors.ConfigError`); docs/metrics.md "SINS components and planning summary" and
docs/guidance.md explain each and give its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ESCC_GRADES", "CanalParams", "GuidanceParams"]

#: Bilsky ESCC grades in increasing severity (Bilsky et al., J Neurosurg Spine 2010;13:324-328).
ESCC_GRADES = ("0", "1a", "1b", "1c", "2", "3")


def _check(owner: str, name: str, value: object, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
        raise ConfigError(f"{owner}: {name}={value!r} must be a number in [{lo}, {hi}]")
    if not lo <= float(value) <= hi:
        raise ConfigError(f"{owner}: {name}={value!r} is out of range [{lo}, {hi}]")


def _region_map(owner: str, name: str, value: object, lo: float, hi: float) -> tuple[tuple[str, float], ...]:
    items = dict(value) if not isinstance(value, dict) else value  # type: ignore[call-overload]
    need = {"cervical", "thoracic", "lumbar", "sacral"}
    if set(items) != need:
        raise ConfigError(f"{owner}: {name} needs exactly the regions {sorted(need)}, got {sorted(items)}")
    for k, v in items.items():
        _check(owner, f"{name}[{k}]", v, lo, hi)
    return tuple((k, float(items[k])) for k in ("cervical", "thoracic", "lumbar", "sacral"))


@dataclass(frozen=True)
class GuidanceParams:
    """How the SINS imaging components are measured (docs/metrics.md, docs/guidance.md).

    Parameters
    ----------
    body_involvement_gt : float, default 0.5
        SINS "no collapse with > 50 % of the body involved": lesion volume / body volume above this.
    translation_mm : tuple of (region, mm), default cervical 3.5, thoracic 4.0, lumbar 4.5, sacral 4.5
        Translation (subluxation) across a disc beyond the spine's own baseline above which the
        segment counts as subluxed: White & Panjabi's clinical-instability limits (cervical 3.5,
        lumbar 4.5 mm), thoracic raised from their 2.5 mm to the 4.0 mm residual measured on
        healthy real spines (docs/guidance.md).
    kyphosis_deg : tuple of (region, degrees), default cervical 10, thoracic 20, lumbar 10, sacral 10
        Local kyphosis across a level (angle between the axes of the bodies above and below,
        positive = kyphotic) above which the level has a de novo deformity.
    baseline_min_segments : int, default 3
        Translation is measured relative to the median of the spine's segments when at least this
        many are in view (else relative to 0).
    scoliosis_deg : float, default 25.0
        Local coronal angle across a level (bodies above and below) above which it has a de novo
        deformity; above the 23.7 deg measured across T12 of a healthy real spine with a mild
        thoracolumbar curve (docs/guidance.md).
    posterolateral_margin_mm : float, default 3.0
        Posterior-element lesion voxels closer than this to the vertebra's mid-sagittal plane
        count on neither side (the spinous process and the midline of the lamina).
    posterolateral_min_mm3 : float, default 30.0
        Lesion volume on one side from which that side counts as involved.
    posterolateral_erosion_vox : int, default 1
        In-plane erosion (voxels) of the posterior elements before the threshold (their surface
        voxels mix with CSF and fat).
    """

    body_involvement_gt: float = 0.5
    translation_mm: tuple[tuple[str, float], ...] = (
        ("cervical", 3.5),
        ("thoracic", 4.0),
        ("lumbar", 4.5),
        ("sacral", 4.5),
    )
    kyphosis_deg: tuple[tuple[str, float], ...] = (
        ("cervical", 10.0),
        ("thoracic", 20.0),
        ("lumbar", 10.0),
        ("sacral", 10.0),
    )
    baseline_min_segments: int = 3
    scoliosis_deg: float = 25.0
    posterolateral_margin_mm: float = 3.0
    posterolateral_min_mm3: float = 30.0
    posterolateral_erosion_vox: int = 1

    def __post_init__(self) -> None:
        own = "GuidanceParams"
        _check(own, "body_involvement_gt", self.body_involvement_gt, 0.0, 1.0)
        object.__setattr__(
            self, "translation_mm", _region_map(own, "translation_mm", self.translation_mm, 0, 50)
        )
        object.__setattr__(self, "kyphosis_deg", _region_map(own, "kyphosis_deg", self.kyphosis_deg, 0, 90))
        _check(own, "scoliosis_deg", self.scoliosis_deg, 0.0, 90.0)
        _check(own, "posterolateral_margin_mm", self.posterolateral_margin_mm, 0.0, 30.0)
        _check(own, "posterolateral_min_mm3", self.posterolateral_min_mm3, 0.0, 1e5)
        bm = self.baseline_min_segments
        if isinstance(bm, bool) or not isinstance(bm, int) or not 1 <= bm <= 30:
            raise ConfigError(f"{own}: baseline_min_segments={bm!r} must be an integer in [1, 30]")
        e = self.posterolateral_erosion_vox
        if isinstance(e, bool) or not isinstance(e, int) or not 0 <= e <= 5:
            raise ConfigError(f"{own}: posterolateral_erosion_vox={e!r} must be an integer in [0, 5]")

    def translation_limit(self, region: str) -> float:
        """Translation limit (mm) of a region.

        Parameters
        ----------
        region : str
            ``cervical``, ``thoracic``, ``lumbar`` or ``sacral``.

        Returns
        -------
        float
        """
        return dict(self.translation_mm)[region]

    def kyphosis_limit(self, region: str) -> float:
        """Local kyphosis limit (degrees) of a region.

        Parameters
        ----------
        region : str
            ``cervical``, ``thoracic``, ``lumbar`` or ``sacral``.

        Returns
        -------
        float
        """
        return dict(self.kyphosis_deg)[region]


@dataclass(frozen=True)
class CanalParams:
    """The experimental canal / cord screening (docs/guidance.md, "Cord and canal").

    Parameters
    ----------
    pixel_mm : float, default 0.25
        Sampling step (mm) of the cross-sectional planes.
    plane_half_mm : float, default 25.0
        Half-width of the square sampled on each plane.
    slab_step_mm : float, default 2.0
        Planes are sampled every this many mm along the canal's axis over the level's body height.
    axis_window_mm : float, default 12.0
        Canal voxels within this distance (along the spine tangent) of a plane give the local axis.
    csf_cut : float, default 0.8
        Canal voxels outside the cord brighter than ``csf_cut`` x the CSF reference (the median of
        all canal voxels outside the cord) are CSF, not lesion (bright polarity; mirrored for dark).
    csf_max_spread : float, default 0.35
        The canal outside the cord must be one signal: its robust spread (1.4826 MAD / median) at
        most this, else the lesion-like signal is not assessable.
    min_epidural_mm2 : float, default 4.0
        A connected lesion-like area in a plane counts from this size (smaller parts are noise).
    rim_mm : float, default 1.5
        A lesion-like part must reach at least this far inside the canal's edge (the rim mixes CSF
        with dura and epidural fat).
    sac_deformed_ratio : float, default 0.9
        Thecal sac area (canal minus lesion-like area) / the neighbours' canal area below this:
        the sac is deformed (1b).
    abut_mm : float, default 1.0
        Lesion-like voxels within this distance of the cord abut it (1c).
    cord_compressed_ratio : float, default 0.8
        Cord area / the neighbours' cord area below this: the cord is compressed (2).
    csf_visible_ratio : float, default 0.1
        CSF area / the neighbours' CSF area below this: no CSF visible (3).
    high_grade_from : {"1c", "2"}, default "2"
        The lowest ESCC grade called high grade (sources differ on 1c).
    """

    pixel_mm: float = 0.25
    plane_half_mm: float = 25.0
    slab_step_mm: float = 2.0
    axis_window_mm: float = 12.0
    csf_cut: float = 0.8
    csf_max_spread: float = 0.35
    min_epidural_mm2: float = 4.0
    rim_mm: float = 1.5
    sac_deformed_ratio: float = 0.9
    abut_mm: float = 1.0
    cord_compressed_ratio: float = 0.8
    csf_visible_ratio: float = 0.1
    high_grade_from: str = "2"

    def __post_init__(self) -> None:
        own = "CanalParams"
        _check(own, "pixel_mm", self.pixel_mm, 0.05, 2.0)
        _check(own, "plane_half_mm", self.plane_half_mm, 5.0, 100.0)
        _check(own, "slab_step_mm", self.slab_step_mm, 0.25, 20.0)
        _check(own, "axis_window_mm", self.axis_window_mm, 2.0, 60.0)
        _check(own, "csf_cut", self.csf_cut, 0.0, 10.0)
        _check(own, "csf_max_spread", self.csf_max_spread, 0.0, 10.0)
        _check(own, "min_epidural_mm2", self.min_epidural_mm2, 0.0, 1000.0)
        _check(own, "rim_mm", self.rim_mm, 0.0, 10.0)
        _check(own, "sac_deformed_ratio", self.sac_deformed_ratio, 0.0, 1.0)
        _check(own, "abut_mm", self.abut_mm, 0.0, 10.0)
        _check(own, "cord_compressed_ratio", self.cord_compressed_ratio, 0.0, 1.0)
        _check(own, "csf_visible_ratio", self.csf_visible_ratio, 0.0, 1.0)
        if self.high_grade_from not in ("1c", "2"):
            raise ConfigError(f"{own}: high_grade_from={self.high_grade_from!r} must be '1c' or '2'")
