"""The lesion plan of the phantom: involved levels, lesion kinds, sizes and places (numpy only).

Explicit :class:`~spinemri.phantom.params.LesionSpec` s are placed as given;
otherwise involved levels and their lesions are drawn from the seeded plan
generator, apart from each other. See docs/phantom.md.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..levels import region_of
from .anatomy import CORTEX_MM, Body
from .params import LESION_KINDS, LesionSpec, PhantomParams
from .render import Lesion

__all__ = ["plan_lesions", "refit_lesion"]


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


def plan_lesions(
    p: PhantomParams, bodies: list[Body], gap: float, rng: np.random.Generator
) -> tuple[list[Lesion], dict[str, int]]:
    """Plan the lesions: the explicit ``p.lesions``, else drawn involved levels and lesions.

    Parameters
    ----------
    p : PhantomParams
        Lesion options (``lesions``, ``n_involved``, ``lesions_per_level``,
        ``kind_weights``, ``radius_mm``, ``strength``).
    bodies : list of Body
        The vertebral bodies drawn, cranial -> caudal.
    gap : float
        Smallest distance (mm) between the surfaces of two drawn lesions of one vertebra.
    rng : numpy.random.Generator
        Source of every random choice of the plan.

    Returns
    -------
    lesions : list of Lesion
        Planned lesions, ids 1, 2, ... in plan order.
    dropped : dict of str -> int
        Per level, the number of drawn lesions that found no place apart from the others.
    """
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


def refit_lesion(les: Lesion, old: Body, body: Body) -> Lesion:
    """Move a lesion with its host body after a collapse (SI offset and size scaled by the height loss).

    Parameters
    ----------
    les : Lesion
        A lesion planned in ``old``.
    old : Body
        The host body before the collapse.
    body : Body
        The same level's body after the collapse.

    Returns
    -------
    Lesion
        The lesion in ``body``: a diffuse lesion fills its marrow again, a focal or
        irregular one keeps its offset with the SI part scaled by the height ratio.
    """
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
