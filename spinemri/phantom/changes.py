"""The change plan of a follow-up phantom and its truth, from closed forms (numpy/pandas only).

A planned lesion is one sphere or the union of two overlapping spheres in its host body's
frame; its volume has a closed form (:func:`union_volume`). :func:`plan_followup` gives every
involved vertebra a change scenario (:data:`SCENARIOS`) with known volume factors;
:func:`change_tables` turns a plan and its scan dates into the per-vertebra, per-lesion and
per-patient change truth. Used by :mod:`spinemri.phantom.followup`; rules in docs/phantom.md
("Follow-up time points").
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..levels import region_of
from .anatomy import CORTEX_MM, Body

__all__ = [
    "SCENARIOS",
    "REQUIRED_GROUPS",
    "VERTEBRA_STATUSES",
    "LESION_CLASSES",
    "PATIENT_STATUS_ORDER",
    "PROGRESSION_FACTOR",
    "REGRESSION_FACTOR",
    "MIN_PROGRESSION_MM3",
    "MIN_NEW_RADIUS_MM",
    "MIN_INTERVAL_DAYS",
    "SHORT_INTERVAL_DAYS",
    "INTERVAL_MONTHS",
    "COURSES",
    "COURSE_WEIGHTS",
    "RADIOTHERAPY_AFTER_DAYS",
    "Sphere",
    "LevelTrack",
    "sphere_volume",
    "union_volume",
    "vertebra_status",
    "plan_followup",
    "change_tables",
    "lesion_ids",
]

#: Change scenarios a vertebra can follow (docs/phantom.md, "Follow-up time points").
SCENARIOS = ("progress", "respond", "new", "stable", "merge", "split")
#: Cohort patients 1 and 2 (index 0, 1) get at least the scenarios of their group, so together,
#: with 3 time points, they show every vertebra status and every lesion class.
REQUIRED_GROUPS: tuple[tuple[str, ...], ...] = (("new", "respond", "split"), ("progress", "merge", "stable"))
VERTEBRA_STATUSES = ("uninvolved", "new", "progressing", "stable", "regressing", "resolved")
LESION_CLASSES = ("new", "disappeared", "enlarging", "shrinking", "stable", "merged", "split")
#: Patient status = the first of these that any vertebra has: a new involved level (spread) is the
#: worst, as in docs/metrics.md ("patient_changes.csv": the severity order of the surveillance).
PATIENT_STATUS_ORDER = ("new", "progressing", "stable", "regressing", "resolved", "uninvolved")
#: Planned volume factors: far from any plausible threshold (e.g. +40 %/+200 mm³, -65 %).
PROGRESSION_FACTOR = 3.0
REGRESSION_FACTOR = 0.25
#: A planned progression also adds at least this much lesion volume (mm³).
MIN_PROGRESSION_MM3 = 500.0
#: Smallest radius of a lesion that appears at a follow-up (mm).
MIN_NEW_RADIUS_MM = 5.0
#: Shortest interval between scans of the plan (8 weeks), except the documented short case.
MIN_INTERVAL_DAYS = 56
#: The one short interval (6 weeks) that exercises the minimum-interval guard.
SHORT_INTERVAL_DAYS = 42
#: Months between consecutive scans.
INTERVAL_MONTHS = 3
#: Radiotherapy of the pseudoprogression case: days after the first scan.
RADIOTHERAPY_AFTER_DAYS = 14

#: between the surfaces of separate lesions of one vertebra; pairs lie in the sagittal plane of
#: their body, so this is >= 3 in-plane pixels of every phantom preset (pixels of 0.9-1.7 mm)
_GAP_MM = 5.0
_MARGIN_MM = CORTEX_MM + 1.5  # lesion surface to the body surface
_MERGE_DISTANCE_MM = 9.0  # centre distance of the two spheres of a merged lesion
_SPLIT_DISTANCE = 1.55  # centre distance / radius of the two spheres of a lesion about to split
#: Courses of a patient without required scenarios: the scenarios its vertebrae draw from.
COURSES: dict[str, tuple[str, ...]] = {
    "progressing": ("progress", "new", "merge"),
    "responding": ("respond",),
    "stable": ("stable", "stable", "split"),
    "mixed": SCENARIOS,
}
COURSE_WEIGHTS = (0.3, 0.25, 0.15, 0.3)
_SIZE_ORDER = ("split", "merge", "respond", "new", "progress", "stable")  # largest extent first


@dataclass(frozen=True)
class Sphere:
    """A sphere in the host body's local frame: ``offset`` (LR, AP, SI) mm from the body centre."""

    offset: tuple[float, float, float]
    radius: float


#: One lesion at one time point: one sphere, or two overlapping spheres (one connected piece).
Component = tuple[Sphere, ...]
#: A link of one transition: (index of the lesion before or None, index after or None, class).
Link = tuple[int | None, int | None, str]


@dataclass(frozen=True)
class LevelTrack:
    """The planned lesions of one vertebra at every time point.

    ``states[t]`` is the tuple of lesions (each a tuple of spheres) at time point t;
    ``links[t]`` the matches of transition t -> t + 1 with their lesion class.
    """

    level: str
    scenario: str
    strength: float
    states: tuple[tuple[Component, ...], ...]
    links: tuple[tuple[Link, ...], ...]


# ----------------------------------------------------------------------------- closed forms


def sphere_volume(radius: float) -> float:
    """Volume of a sphere, 4/3 pi r^3 (mm³).

    Parameters
    ----------
    radius : float
        Radius (mm).

    Returns
    -------
    float
    """
    return 4.0 / 3.0 * math.pi * radius**3


def _lens(r1: float, r2: float, d: float) -> float:
    if d >= r1 + r2:
        return 0.0
    if d <= abs(r1 - r2):
        return sphere_volume(min(r1, r2))
    return math.pi * (r1 + r2 - d) ** 2 * (d * d + 2 * d * (r1 + r2) - 3 * (r1 - r2) ** 2) / (12.0 * d)


def union_volume(spheres: Sequence[Sphere]) -> float:
    """Volume of the union of one or two spheres (mm³), in closed form.

    Parameters
    ----------
    spheres : sequence of Sphere
        One or two spheres.

    Returns
    -------
    float
        ``V1 + V2 - lens``, the lens being the intersection of the two balls.

    Raises
    ------
    ValueError
        For more than two spheres.
    """
    if len(spheres) == 1:
        return sphere_volume(spheres[0].radius)
    if len(spheres) != 2:
        raise ValueError("union_volume: one or two spheres")
    a, b = spheres
    d = float(np.linalg.norm(np.subtract(a.offset, b.offset)))
    return sphere_volume(a.radius) + sphere_volume(b.radius) - _lens(a.radius, b.radius, d)


def _solve_radius(target: float, d: float) -> float:
    """Radius r of two equal spheres at centre distance d whose union has volume ``target``."""
    lo, hi = d / 2.0, 100.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        v = 2 * sphere_volume(mid) - _lens(mid, mid, d)
        lo, hi = (mid, hi) if v < target else (lo, mid)
    return 0.5 * (lo + hi)


def vertebra_status(volume_from: float, volume_to: float) -> str:
    """Intended status of a vertebra between two time points, from its analytic lesion volumes.

    Parameters
    ----------
    volume_from, volume_to : float
        Total analytic lesion volume of the vertebra (mm³) before and after.

    Returns
    -------
    str
        ``uninvolved`` (none before or after), ``new``, ``resolved``, ``progressing``
        (x :data:`PROGRESSION_FACTOR` or more and at least :data:`MIN_PROGRESSION_MM3` more),
        ``regressing`` (x :data:`REGRESSION_FACTOR` or less) or ``stable`` (x 1.0).

    Raises
    ------
    ValueError
        For any other ratio: the plan never makes one (it would be ambiguous).
    """
    if volume_from <= 0 and volume_to <= 0:
        return "uninvolved"
    if volume_from <= 0:
        return "new"
    if volume_to <= 0:
        return "resolved"
    ratio = volume_to / volume_from
    if ratio >= PROGRESSION_FACTOR * (1 - 1e-9) and volume_to - volume_from >= MIN_PROGRESSION_MM3:
        return "progressing"
    if ratio <= REGRESSION_FACTOR * (1 + 1e-9):
        return "regressing"
    if abs(ratio - 1.0) <= 1e-9:
        return "stable"
    raise ValueError(f"vertebra_status: volume ratio {ratio:.3f} is not one the plan makes")


# ----------------------------------------------------------------------------- the plan


def _fits(spheres: Iterable[Sphere], body: Body) -> bool:
    for s in spheres:
        x, y, z = s.offset
        a, b, h = body.a - _MARGIN_MM - s.radius, body.b - _MARGIN_MM - s.radius, body.h - _MARGIN_MM
        if a <= 0 or b <= 0 or abs(z) + s.radius > h or (x / a) ** 2 + (y / b) ** 2 > 1.0:
            return False
    return True


def _pair(centre: np.ndarray, u: np.ndarray, d: float, r: float) -> Component:
    out = []
    for sgn in (-1.0, 1.0):
        x, y, z = (float(v) for v in centre + sgn * d / 2.0 * u)
        out.append(Sphere((x, y, z), r))
    return tuple(out)


def _script(
    scenario: str, rng: np.random.Generator, centre: np.ndarray, u: np.ndarray
) -> tuple[list[tuple[Component, ...]], list[tuple[Link, ...]]]:
    """States and links of a scenario over its scripted time points (before holding)."""
    c = tuple(float(v) for v in centre)

    def one(r: float) -> tuple[Component, ...]:
        return ((Sphere(c, r),),)  # type: ignore[arg-type]

    grow = PROGRESSION_FACTOR ** (1 / 3)
    shrink = REGRESSION_FACTOR ** (1 / 3)
    if scenario == "progress":
        r = float(rng.uniform(4.5, 5.5))
        return [one(r), one(r * grow)], [((0, 0, "enlarging"),)]
    if scenario == "respond":
        r = float(rng.uniform(6.5, 7.5))
        return [one(r), one(r * shrink), ()], [((0, 0, "shrinking"),), ((0, None, "disappeared"),)]
    if scenario == "new":
        r = float(rng.uniform(MIN_NEW_RADIUS_MM, MIN_NEW_RADIUS_MM + 0.5))
        return [(), one(r), one(r * grow)], [((None, 0, "new"),), ((0, 0, "enlarging"),)]
    if scenario == "stable":
        r = float(rng.uniform(5.0, 6.5))
        return [one(r)], []
    if scenario == "merge":
        r0 = float(rng.uniform(4.0, 4.4))
        apart = _pair(centre, u, 2 * r0 + _GAP_MM, r0)
        r1 = _solve_radius(PROGRESSION_FACTOR * 2 * sphere_volume(r0), _MERGE_DISTANCE_MM)
        merged = _pair(centre, u, _MERGE_DISTANCE_MM, r1)
        return [((apart[0],), (apart[1],)), (merged,)], [((0, 0, "merged"), (1, 0, "merged"))]
    if scenario == "split":
        r0 = float(rng.uniform(4.8, 5.2))
        joined = _pair(centre, u, _SPLIT_DISTANCE * r0, r0)
        r1 = (union_volume(joined) / 2 / (4.0 / 3.0 * math.pi)) ** (1 / 3)
        apart = _pair(centre, u, 2 * r1 + _GAP_MM, r1)
        return [(joined,), ((apart[0],), (apart[1],))], [((0, 0, "split"), (0, 1, "split"))]
    raise ConfigError(f"follow-up phantom: unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")


def _hold(
    states: list[tuple[Component, ...]], links: list[tuple[Link, ...]], n: int
) -> tuple[tuple[tuple[Component, ...], ...], tuple[tuple[Link, ...], ...]]:
    """Cut or extend a script to n time points (extension: the last state, unchanged)."""
    states, links = states[:n], links[: max(n - 1, 0)]
    while len(states) < n:
        last = states[-1]
        links.append(tuple((i, i, "stable") for i in range(len(last))))
        states.append(last)
    return tuple(states), tuple(links)


def _place(
    scenario: str, body: Body, n_tp: int, rng: np.random.Generator
) -> tuple[tuple[tuple[Component, ...], ...], tuple[tuple[Link, ...], ...]] | None:
    """Try random centres and directions until every sphere of every time point fits the body.

    After 50 random tries, centred candidates along a few directions (the body's sagittal
    section is widest along A-P), so a large scenario still finds room in a small body.
    """
    central = [0.0, math.pi / 12, -math.pi / 12, math.pi / 6, -math.pi / 6, math.pi / 4, -math.pi / 4]
    for k in range(50 + len(central)):
        if k < 50:
            phi = float(rng.uniform(0.0, math.pi))
            centre = np.array(
                [rng.uniform(-2.0, 2.0), rng.uniform(-0.4, 0.4) * body.b, rng.uniform(-0.25, 0.25) * body.h]
            )
        else:
            phi, centre = central[k - 50], np.zeros(3)
        u = np.array([0.0, math.cos(phi), math.sin(phi)])
        states, links = _hold(*_script(scenario, rng, centre, u), n_tp)
        if _fits((s for st in states for comp in st for s in comp), body):
            return states, links
    return None


def plan_followup(
    bodies: Sequence[Body],
    n_timepoints: int,
    rng: np.random.Generator,
    *,
    scenarios: Sequence[str] | None = None,
    require: Sequence[str] = (),
) -> tuple[LevelTrack, ...]:
    """Choose the change scenario of each involved vertebra and place its lesions.

    Parameters
    ----------
    bodies : sequence of Body
        The patient's vertebral bodies (patient frame), cranial -> caudal.
    n_timepoints : int
        Number of scans.
    rng : numpy.random.Generator
        Source of every choice (scenarios, hosts, radii, places, strengths).
    scenarios : sequence of str, optional
        Exactly these scenarios (one vertebra each; a name may repeat).
    require : sequence of str, default ()
        Scenarios the plan must contain, plus 0-2 others drawn from :data:`SCENARIOS` (ignored
        when ``scenarios`` is given). With neither, a course is drawn from :data:`COURSES`
        (probabilities :data:`COURSE_WEIGHTS`) and 1-3 vertebrae from its scenarios.

    Returns
    -------
    tuple of LevelTrack
        Cranial -> caudal; the first and last body never host a scenario, at least one
        other vertebra stays uninvolved when there is room.

    Raises
    ------
    ConfigError
        When a requested scenario finds no vertebra large enough for it.
    """
    for s in (*(scenarios or ()), *require):
        if s not in SCENARIOS:
            raise ConfigError(
                f"follow-up phantom: unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}"
            )
    if scenarios is None and not require:
        course = str(rng.choice(list(COURSES), p=COURSE_WEIGHTS))
        pool = COURSES[course]
        if course == "mixed":
            n = int(rng.integers(2, 5))
            wanted = [str(s) for s in rng.choice(pool, size=n, replace=False)]
        else:
            wanted = [str(s) for s in rng.choice(pool, size=int(rng.integers(1, 4)), replace=True)]
        optional = set(wanted)
    elif scenarios is None:
        rest = [s for s in SCENARIOS if s not in require]
        extra = int(rng.integers(0, 3))
        picked = list(rng.choice(rest, size=min(extra, len(rest)), replace=False)) if rest else []
        wanted = [*require, *(str(s) for s in picked)]
        optional = {str(s) for s in picked}
    else:
        wanted, optional = list(scenarios), set()
    hosts = list(bodies[1:-1]) if len(bodies) > 2 else list(bodies)
    free = list(range(len(hosts)))
    tracks: list[LevelTrack] = []
    # the scenarios with the largest lesions first, so they find a large body
    for scenario in sorted(wanted, key=_SIZE_ORDER.index):
        order = [free[i] for i in rng.permutation(len(free))]
        if len(free) <= 1 and len(hosts) > 2 and scenario in optional:
            continue  # keep one vertebra uninvolved
        placed = None
        for hi in order:
            placed = _place(scenario, hosts[hi], n_timepoints, rng)
            if placed is not None:
                free.remove(hi)
                tracks.append(LevelTrack(hosts[hi].level, scenario, float(rng.uniform(0.8, 1.0)), *placed))
                break
        if placed is None and scenario not in optional:
            raise ConfigError(
                f"follow-up phantom: no free vertebra of {hosts[0].level}-{hosts[-1].level} is large "
                f"enough for the {scenario!r} scenario; draw more (or larger, lower) levels"
            )
    levels = [b.level for b in bodies]
    return tuple(sorted(tracks, key=lambda t: levels.index(t.level)))


# ----------------------------------------------------------------------------- truth tables


def lesion_ids(plan: Sequence[LevelTrack], t: int) -> dict[tuple[str, int], int]:
    """Truth lesion ids of one time point: 1, 2, ... cranial -> caudal, in plan order.

    Parameters
    ----------
    plan : sequence of LevelTrack
        From :func:`plan_followup`.
    t : int
        Time point index (0 = baseline).

    Returns
    -------
    dict of (level, index) to int
        The id of the lesion ``states[t][index]`` of each level's track.
    """
    out: dict[tuple[str, int], int] = {}
    for track in plan:
        for i in range(len(track.states[t])):
            out[(track.level, i)] = len(out) + 1
    return out


def _patient_status(statuses: Iterable[str]) -> str:
    seen = set(statuses)
    return next((s for s in PATIENT_STATUS_ORDER if s in seen), "uninvolved")


def change_tables(
    plan: Sequence[LevelTrack],
    levels: Sequence[str],
    dates: Sequence[str],
    *,
    radiotherapy_date: str | None = None,
    radiotherapy_levels: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The change truth of one patient from the analytic plan (docs/phantom.md).

    Parameters
    ----------
    plan : sequence of LevelTrack
        From :func:`plan_followup`.
    levels : sequence of str
        Every vertebra present at every scan, cranial -> caudal (uninvolved ones included).
    dates : sequence of str
        ISO scan dates (also the time point names), one per time point.
    radiotherapy_date : str, optional
        ISO date of a radiotherapy; ``radiotherapy_levels`` are the levels treated.
    radiotherapy_levels : sequence of str, default ()

    Returns
    -------
    changes : DataFrame
        One row per level x consecutive pair: level, region, timepoint_from/to, scan_date_from/to,
        interval_days, lesion_volume_mm3_from/to (analytic), volume_ratio, lesion_count_from/to,
        new_lesions, resolved_lesions, status, scenario, short_interval, radiotherapy_before.
    lesion_changes : DataFrame
        One row per link: level, timepoint_from/to, lesion_id_from/to (nullable), volume_mm3_from/to,
        class.
    patient_changes : DataFrame
        One row per consecutive pair: n_involved_from/to, total_lesion_volume_mm3_from/to,
        delta_total_lesion_volume_mm3, new_levels, resolved_levels, status, short_interval, ...
    """
    by_level = {t.level: t for t in plan}
    rows, lrows, prows = [], [], []
    for t in range(len(dates) - 1):
        d0, d1 = dt.date.fromisoformat(dates[t]), dt.date.fromisoformat(dates[t + 1])
        days = (d1 - d0).days
        rt = radiotherapy_date is not None and d0 < dt.date.fromisoformat(radiotherapy_date) <= d1
        common = {
            "timepoint_from": dates[t],
            "timepoint_to": dates[t + 1],
            "scan_date_from": dates[t],
            "scan_date_to": dates[t + 1],
            "interval_days": days,
        }
        ids0, ids1 = lesion_ids(plan, t), lesion_ids(plan, t + 1)
        statuses: list[tuple[str, str]] = []
        totals = [0.0, 0.0]
        involved = [0, 0]
        for level in levels:
            track = by_level.get(level)
            s0 = track.states[t] if track else ()
            s1 = track.states[t + 1] if track else ()
            links = track.links[t] if track else ()
            v0 = sum(union_volume(c) for c in s0)
            v1 = sum(union_volume(c) for c in s1)
            status = vertebra_status(v0, v1)
            statuses.append((level, status))
            totals[0] += v0
            totals[1] += v1
            involved[0] += len(s0) > 0
            involved[1] += len(s1) > 0
            rows.append(
                {
                    "level": level,
                    "region": region_of(level),
                    **common,
                    "lesion_volume_mm3_from": v0,
                    "lesion_volume_mm3_to": v1,
                    "volume_ratio": v1 / v0 if v0 > 0 else float("nan"),
                    "lesion_count_from": len(s0),
                    "lesion_count_to": len(s1),
                    "new_lesions": sum(1 for lk in links if lk[2] == "new"),
                    "resolved_lesions": sum(1 for lk in links if lk[2] == "disappeared"),
                    "status": status,
                    "scenario": track.scenario if track else "none",
                    "short_interval": days < MIN_INTERVAL_DAYS,
                    "radiotherapy_before": bool(rt and level in radiotherapy_levels),
                }
            )
            for i0, i1, cls in links:
                lrows.append(
                    {
                        "level": level,
                        "timepoint_from": dates[t],
                        "timepoint_to": dates[t + 1],
                        "lesion_id_from": None if i0 is None else ids0[(level, i0)],
                        "lesion_id_to": None if i1 is None else ids1[(level, i1)],
                        "volume_mm3_from": 0.0 if i0 is None else union_volume(s0[i0]),
                        "volume_mm3_to": 0.0 if i1 is None else union_volume(s1[i1]),
                        "class": cls,
                    }
                )
        prows.append(
            {
                **common,
                "n_involved_from": involved[0],
                "n_involved_to": involved[1],
                "total_lesion_volume_mm3_from": totals[0],
                "total_lesion_volume_mm3_to": totals[1],
                "delta_total_lesion_volume_mm3": totals[1] - totals[0],
                "new_levels": ";".join(lv for lv, s in statuses if s == "new"),
                "resolved_levels": ";".join(lv for lv, s in statuses if s == "resolved"),
                "progressing_levels": ";".join(lv for lv, s in statuses if s == "progressing"),
                "regressing_levels": ";".join(lv for lv, s in statuses if s == "regressing"),
                "status": _patient_status(s for _, s in statuses),
                "short_interval": days < MIN_INTERVAL_DAYS,
                "radiotherapy_before": bool(rt),
            }
        )
    changes = pd.DataFrame(rows)
    lesion_changes = pd.DataFrame(
        lrows,
        columns=[
            "level",
            "timepoint_from",
            "timepoint_to",
            "lesion_id_from",
            "lesion_id_to",
            "volume_mm3_from",
            "volume_mm3_to",
            "class",
        ],
    )
    for c in ("lesion_id_from", "lesion_id_to"):
        lesion_changes[c] = lesion_changes[c].astype("Int64")
    return changes, lesion_changes, pd.DataFrame(prows)
