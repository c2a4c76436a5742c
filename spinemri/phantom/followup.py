"""Follow-up phantoms: one patient scanned at several dates, lesions changing by known amounts.

:func:`make_followup` plans, per patient, which vertebrae carry which change scenario
(:data:`SCENARIOS`, planned in :mod:`.changes`), draws the scan dates and the patient's pose
at every scan, and renders each time point with :func:`~spinemri.phantom.make.make_phantom`
(explicit focal lesions, so the anatomy, the label mask and the per-scan truth are exactly
today's). The change truth (:func:`~.changes.change_tables`) is computed from the analytic
spheres of the plan, never from rendered voxels: a lesion is one sphere or the union of two
overlapping spheres, whose volume has a closed form (:func:`~.changes.union_volume`). Pure
numpy/pandas, no file I/O (the cohort writer is :mod:`spinemri.io.cohort_followup`). The model
and its rules are documented in docs/phantom.md ("Follow-up time points").

Repositioning: at every follow-up the grid is placed anew relative to the anatomy (oblique and
tilt angles, cranial field-of-view shift and number of slices change; the renderer evaluates the
analytic shapes on the new grid) and the patient is moved rigidly relative to the scanner (a
rotation of a few degrees about each axis and a shift of several mm along each, written into the
image affine). Image, mask and truth lesion map share that affine, so they stay consistent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..volume import Volume
from .anatomy import Body, build_spine
from .changes import (
    INTERVAL_MONTHS,
    LESION_CLASSES,
    RADIOTHERAPY_AFTER_DAYS,
    REQUIRED_GROUPS,
    SCENARIOS,
    SHORT_INTERVAL_DAYS,
    VERTEBRA_STATUSES,
    LevelTrack,
    change_tables,
    lesion_ids,
    plan_followup,
    union_volume,
    vertebra_status,
)
from .make import make_phantom
from .params import CONTRASTS, LesionSpec, PhantomParams
from .truth import PhantomTruth

__all__ = [
    "FollowupScan",
    "Followup",
    "make_followup",
    "check_followup_options",
    "SCENARIOS",
    "REQUIRED_GROUPS",
    "VERTEBRA_STATUSES",
    "LESION_CLASSES",
]


@dataclass(frozen=True)
class FollowupScan:
    """One time point of a follow-up phantom.

    ``image``, ``mask`` and ``truth.lesion_mask`` carry the scanner affine ``pose @ A`` where A is
    the grid in the patient frame; ``truth.bodies`` stay in the patient frame. ``lesions`` has one
    row per planned lesion (a union of spheres counts once) with its analytic volume.
    """

    timepoint: str
    scan_date: str
    seed: int
    image: Volume
    mask: Volume
    truth: PhantomTruth
    pose: np.ndarray
    lesions: pd.DataFrame


@dataclass(frozen=True)
class Followup:
    """A follow-up phantom: the scans, the plan and the change truth (docs/phantom.md).

    ``changes`` (per vertebra x consecutive pair), ``lesion_changes`` (per lesion link) and
    ``patient_changes`` (per consecutive pair) come from :func:`change_tables`.
    """

    scans: tuple[FollowupScan, ...]
    plan: tuple[LevelTrack, ...]
    changes: pd.DataFrame
    lesion_changes: pd.DataFrame
    patient_changes: pd.DataFrame
    radiotherapy_date: str | None = None
    radiotherapy_levels: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- rendering


def _add_months(d: dt.date, months: int) -> dt.date:
    m = d.month - 1 + months
    return dt.date(d.year + m // 12, m % 12 + 1, min(d.day, 28))


def _rotation(deg: Sequence[float]) -> np.ndarray:
    ax, ay, az = np.radians(deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx, dtype=float)


def _signed(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(lo, hi))


def _draw_scan(p: PhantomParams, rng: np.random.Generator) -> tuple[dict[str, Any], np.ndarray]:
    """Grid options of a follow-up scan (relative to the anatomy) and the patient pose in the scanner."""
    ds = int(rng.choice([-2, -1, 1, 2]))
    n_slices = p.n_slices + ds if p.n_slices + ds >= 3 else p.n_slices + abs(ds)
    grid = {
        "n_slices": n_slices,
        "oblique_deg": float(np.clip(p.oblique_deg + _signed(rng, 1.0, 3.0), -30, 30)),
        "tilt_deg": float(np.clip(p.tilt_deg + _signed(rng, 1.0, 3.0), -30, 30)),
        "fov_shift_mm": p.fov_shift_mm + _signed(rng, 2.0, 6.0),
    }
    rot = [_signed(rng, 1.5, 4.0), _signed(rng, 1.0, 3.0), _signed(rng, 1.0, 3.0)]
    shift = [_signed(rng, 3.0, 8.0) for _ in range(3)]
    pose = np.eye(4)
    pose[:3, :3] = _rotation(rot)
    pose[:3, 3] = shift
    return grid, pose


def _check_inside(
    spheres: Sequence[tuple[np.ndarray, float]], affine: np.ndarray, shape: Sequence[int], what: str
) -> None:
    inv = np.linalg.inv(affine)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    for centre, r in spheres:
        ijk = inv[:3, :3] @ centre + inv[:3, 3]
        ext = r / spacing
        if np.any(ijk - ext < -0.5) or np.any(ijk + ext > np.asarray(shape) - 0.5):
            raise ConfigError(
                f"follow-up phantom: a lesion leaves the field of view at {what} "
                f"(grid {tuple(shape)}); draw more slices or a larger matrix"
            )


def _lesion_rows(
    plan: Sequence[LevelTrack],
    t: int,
    bodies: dict[str, Body],
    pose: np.ndarray,
    lesion_map: np.ndarray,
    vox: float,
    contrast: dict[str, float],
) -> pd.DataFrame:
    ids = lesion_ids(plan, t)
    counts = np.bincount(lesion_map.ravel())
    rows, shape_id = [], 0
    for track in plan:
        body = bodies[track.level]
        for i, comp in enumerate(track.states[t]):
            vol = union_volume(comp)
            # equal spheres: the union's centroid is the mean of the centres
            local = np.mean([s.offset for s in comp], axis=0)
            world = pose[:3, :3] @ (body.centre + body.frame @ local) + pose[:3, 3]
            shapes = range(shape_id + 1, shape_id + 1 + len(comp))
            shape_id += len(comp)
            nvox = int(sum(counts[k] for k in shapes if k < len(counts)))
            intensity = contrast["marrow"] + track.strength * (contrast["lesion"] - contrast["marrow"])
            rows.append(
                {
                    "lesion_id": ids[(track.level, i)],
                    "planned_level": track.level,
                    "kind": "focal" if len(comp) == 1 else "focal-pair",
                    "n_spheres": len(comp),
                    "x_mm": float(world[0]),
                    "y_mm": float(world[1]),
                    "z_mm": float(world[2]),
                    "offset_lr_mm": float(local[0]),
                    "offset_ap_mm": float(local[1]),
                    "offset_si_mm": float(local[2]),
                    "radius_mm": max(s.radius for s in comp),
                    "strength": track.strength,
                    "contrast": intensity / contrast["marrow"],
                    "voxels": nvox,
                    "volume_mm3": nvox * vox,
                    "volume_mm3_analytic": vol,
                    "scenario": track.scenario,
                }
            )
    return pd.DataFrame(rows)


def check_followup_options(timepoints: int, **options: Any) -> None:
    """Refuse, before anything is drawn, options with which a follow-up cohort cannot be planned.

    Plans each of :data:`REQUIRED_GROUPS` on the smallest spine a cohort draws (size scale 0.9,
    or the ``scale`` given), so a level range too short or too cranial for them fails at once.

    Parameters
    ----------
    timepoints : int
        Scans per patient.
    **options
        :class:`~spinemri.phantom.params.PhantomParams` fields of the cohort.

    Raises
    ------
    ConfigError
        For an out-of-range option or a level range where a required scenario has no room
        (the message names ``PhantomParams: first_level=``, which the CLI maps to ``--levels``).
    """
    p = PhantomParams.from_options(**options)
    scale = p.scale if "scale" in options else 0.9
    bodies, _, _ = build_spine(p.levels, scale=scale, curvature=p.curvature, collapse=dict(p.collapse))
    for group in REQUIRED_GROUPS:
        try:
            plan_followup(bodies, max(int(timepoints), 2), np.random.default_rng(0), require=group)
        except ConfigError as exc:
            raise ConfigError(
                f"PhantomParams: first_level={p.first_level!r} (to {p.last_level}) leaves too few or too "
                f"small vertebrae for a follow-up cohort ({exc}); start higher, e.g. T10"
            ) from None


def make_followup(
    seed: int = 0,
    timepoints: int = 3,
    *,
    scenarios: Sequence[str] | None = None,
    require: Sequence[str] = (),
    short_interval: bool = False,
    radiotherapy: bool = False,
    **options: Any,
) -> Followup:
    """Draw a patient scanned at ``timepoints`` dates, with lesions changing by known amounts.

    Parameters
    ----------
    seed : int, default 0
        Seeds the plan, the dates, the poses and every scan (scan t > 1 uses its own derived
        seed for texture and noise).
    timepoints : int, default 3
        Number of scans (1-12); the first is the baseline, then every :data:`INTERVAL_MONTHS`
        months.
    scenarios : sequence of str, optional
        Exactly these change scenarios (:data:`SCENARIOS`), one vertebra each.
    require : sequence of str, default ()
        Scenarios the drawn plan must contain (plus 0-2 others); with neither ``scenarios`` nor
        ``require`` the patient's course (progressing, responding, stable, mixed) is drawn.
    short_interval : bool, default False
        Make the last interval :data:`SHORT_INTERVAL_DAYS` days (the minimum-interval guard).
    radiotherapy : bool, default False
        Irradiate the first vertebra that progresses between the first two scans,
        :data:`RADIOTHERAPY_AFTER_DAYS` days after the baseline (the pseudoprogression guard).
    **options
        :class:`~spinemri.phantom.params.PhantomParams` fields of the baseline scan (not
        ``lesions``, which the plan sets); follow-up scans change ``n_slices``, ``oblique_deg``,
        ``tilt_deg`` and ``fov_shift_mm`` from them.

    Returns
    -------
    Followup

    Raises
    ------
    ConfigError
        For an out-of-range option, ``lesions`` given, or a plan that does not fit the levels
        or the field of view.

    Examples
    --------
    >>> fu = make_followup(seed=1, timepoints=2, scenarios=["stable"], rows=128, cols=64,
    ...                    n_slices=9, first_level="L1", snr=None)
    >>> [s.timepoint for s in fu.scans] == sorted(s.timepoint for s in fu.scans)
    True
    >>> fu.changes.set_index("level").loc[fu.plan[0].level, "status"]
    'stable'
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"make_followup: seed must be a non-negative integer, got {seed!r}")
    if (
        isinstance(timepoints, bool)
        or not isinstance(timepoints, (int, np.integer))
        or not 1 <= timepoints <= 12
    ):
        raise ConfigError(f"make_followup: timepoints must be an integer in 1..12, got {timepoints!r}")
    if "lesions" in options or "params" in options:
        raise ConfigError("make_followup: the change plan places the lesions; do not pass lesions or params")
    p0 = PhantomParams.from_options(**options)
    rng = np.random.default_rng([int(seed), 41])
    bodies, _, _ = build_spine(p0.levels, scale=p0.scale, curvature=p0.curvature, collapse=dict(p0.collapse))
    plan = plan_followup(bodies, int(timepoints), rng, scenarios=scenarios, require=require)
    base = dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 366)))
    days = [base]
    for t in range(1, int(timepoints)):
        last = short_interval and t == timepoints - 1
        days.append(
            days[-1] + dt.timedelta(days=SHORT_INTERVAL_DAYS)
            if last
            else _add_months(days[-1], INTERVAL_MONTHS)
        )
    dates = [d.isoformat() for d in days]
    rt_date: str | None = None
    rt_levels: tuple[str, ...] = ()
    if radiotherapy and timepoints >= 2:
        grow = [
            tr.level
            for tr in plan
            if tr.states[0]
            and vertebra_status(
                sum(union_volume(c) for c in tr.states[0]), sum(union_volume(c) for c in tr.states[1])
            )
            == "progressing"
        ]
        if grow:
            rt_date = (days[0] + dt.timedelta(days=RADIOTHERAPY_AFTER_DAYS)).isoformat()
            rt_levels = (grow[0],)
    by_level = {b.level: b for b in bodies}
    scans = []
    for t in range(int(timepoints)):
        specs = [
            LesionSpec(tr.level, "focal", s.radius, s.offset, tr.strength)
            for tr in plan
            for comp in tr.states[t]
            for s in comp
        ]
        if t == 0:
            grid: dict[str, Any] = {}
            pose, seed_t = np.eye(4), int(seed)
        else:
            grid, pose = _draw_scan(p0, rng)
            seed_t = int(np.random.SeedSequence([int(seed), 41, t]).generate_state(1)[0] & 0x7FFFFFFF)
        p_t = replace(p0, lesions=tuple(specs), **grid)
        image, mask, truth = make_phantom(seed_t, params=p_t)
        _check_inside(
            [
                (by_level[tr.level].centre + by_level[tr.level].frame @ np.asarray(s.offset), s.radius)
                for tr in plan
                for comp in tr.states[t]
                for s in comp
            ],
            image.affine,
            image.shape,
            f"time point {t + 1} ({dates[t]})",
        )
        affine = pose @ image.affine
        vox = float(abs(np.linalg.det(image.affine[:3, :3])))
        les = _lesion_rows(
            plan, t, by_level, pose, np.asarray(truth.lesion_mask.data), vox, CONTRASTS[p0.contrast]
        )
        meta = {"scan_date": dates[t]}
        truth = replace(
            truth, lesion_mask=Volume(truth.lesion_mask.data, affine, dict(truth.lesion_mask.meta))
        )
        scans.append(
            FollowupScan(
                dates[t],
                dates[t],
                seed_t,
                Volume(image.data, affine, {**dict(image.meta), **meta}),
                Volume(mask.data, affine, dict(mask.meta)),
                truth,
                pose,
                les,
            )
        )
    present = [lv for lv in p0.levels if all(lv in set(s.truth.vertebrae["level"]) for s in scans)]
    changes, lesion_changes, patient_changes = change_tables(
        plan, present, dates, radiotherapy_date=rt_date, radiotherapy_levels=rt_levels
    )
    return Followup(tuple(scans), plan, changes, lesion_changes, patient_changes, rt_date, rt_levels)
