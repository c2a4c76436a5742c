"""Anatomy of the digital spine phantom: body sizes, the spinal curve, lesion plans.

Pure geometry (numpy only): everything is in world RAS+ millimetres
(x = patient left-right, y = anterior, z = superior). Used by
:mod:`spinemri.phantom`; see docs/phantom.md for the model and its sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..levels import LEVELS, level_index

__all__ = [
    "BodySize",
    "Body",
    "body_size",
    "phantom_levels",
    "build_spine",
    "deformed_half_height",
    "PHANTOM_LEVELS",
    "CORTEX_MM",
    "BICONCAVE_RADIUS",
]

#: Levels the phantom can draw (cranial -> caudal). The rare T13, L6 and the coccyx are not drawn.
PHANTOM_LEVELS: tuple[str, ...] = tuple(lv for lv in LEVELS if lv not in ("T13", "L6", "Co"))

#: Thickness of the cortical rim of a vertebral body (mm).
CORTEX_MM = 1.0
#: A biconcave body keeps its full height outside this normalised radius (of the elliptic
#: cross-section): the endplates are pressed in over the central 60 %.
BICONCAVE_RADIUS = 0.6


def deformed_half_height(
    u_lr: np.ndarray, u_ap: np.ndarray, a: float, b: float, h: float, deformity: tuple[str, float]
) -> np.ndarray:
    """Half-height (mm) of a deformed body at local (LR, AP) positions; both endplates move alike.

    ``wedge``: linear in AP from ``h`` at the posterior wall (``u_ap = -b``) to ``h (1 - loss)`` at the
    anterior wall (``u_ap = +b``). ``biconcave``: ``h (1 - loss (1 - (rho / 0.6)^2))`` for normalised
    radius ``rho = sqrt((u_lr / a)^2 + (u_ap / b)^2) < 0.6``, ``h`` outside.

    Parameters
    ----------
    u_lr, u_ap : ndarray
        Local coordinates (mm), broadcastable.
    a, b, h : float
        Half-width, half-depth and full half-height (mm).
    deformity : (str, float)
        Kind (``wedge`` or ``biconcave``) and loss in [0, 0.8].

    Returns
    -------
    ndarray
        The half-height, broadcast shape.
    """
    kind, loss = deformity
    if kind == "wedge":
        f = np.clip((u_ap + b) / (2.0 * b), 0.0, 1.0)
        return np.asarray(h * (1.0 - loss * f))
    rho2 = (u_lr / a) ** 2 + (u_ap / b) ** 2
    dent = np.clip(1.0 - rho2 / BICONCAVE_RADIUS**2, 0.0, 1.0)
    return np.asarray(h * (1.0 - loss * dent))


# Vertebral body width (left-right), depth (antero-posterior) and height (cranio-caudal) in mm,
# and the height of the disc below, at anchor levels; other levels are interpolated linearly.
# Rounded adult values from morphometric series (Panjabi et al., Spine 1991 (cervical, thoracic)
# and Spine 1992 (lumbar); Zhou et al., Eur Spine J 2000): bodies grow caudally.
_ANCHORS: dict[str, tuple[float, float, float, float]] = {
    #        W     D     H    disc below
    "C1": (12.0, 10.0, 10.0, 3.0),
    "C2": (15.0, 14.0, 16.0, 4.5),
    "C3": (16.0, 15.0, 14.0, 5.0),
    "C7": (22.0, 17.0, 15.0, 5.0),
    "T1": (25.0, 18.0, 17.0, 4.5),
    "T6": (29.0, 25.0, 19.0, 5.0),
    "T12": (38.0, 30.0, 24.0, 7.5),
    "L1": (41.0, 32.0, 26.0, 9.0),
    "L5": (49.0, 35.0, 27.0, 11.0),
    "S1": (50.0, 35.0, 28.0, 0.0),
}

# Tilt of the spinal axis from the vertical (degrees, sagittal plane) at anchor levels for
# ``curvature = 1``: positive = the axis runs anteriorly when going caudally. Cervical lordosis
# (~30 deg), thoracic kyphosis (~35 deg), lumbar lordosis (~45 deg) and the sacral slope.
_TILT_DEG: dict[str, float] = {
    "C1": 15.0,
    "C2": 15.0,
    "C5": 0.0,
    "C7": -15.0,
    "T6": 0.0,
    "T12": 20.0,
    "L3": 0.0,
    "L5": -25.0,
    "S1": -35.0,
}


@dataclass(frozen=True)
class BodySize:
    """Vertebral body size in mm: width (LR), depth (AP), height (SI), disc below."""

    width: float
    depth: float
    height: float
    disc_below: float


@dataclass(frozen=True)
class Body:
    """One vertebral body (an elliptic cylinder) placed in the world.

    ``centre`` is in world RAS mm; ``frame`` is a 3x3 matrix whose columns are
    the local unit axes (left-right, antero-posterior pointing anterior,
    cranio-caudal pointing superior); ``a``, ``b``, ``h`` are the half-width
    (LR), half-depth (AP) and half-height (SI) in mm. ``deformity`` is None or
    ``(kind, loss)`` with kind ``wedge`` or ``biconcave`` (a crush is a lower ``h``);
    :func:`deformed_half_height` gives the shape.
    """

    level: str
    centre: np.ndarray
    frame: np.ndarray
    a: float
    b: float
    h: float
    deformity: tuple[str, float] | None = None

    @property
    def volume_mm3(self) -> float:
        """Analytic volume pi * a * b * 2h."""
        return float(np.pi * self.a * self.b * 2.0 * self.h)


def phantom_levels(first: str, last: str) -> list[str]:
    """Levels from ``first`` to ``last`` inclusive (cranial -> caudal) that the phantom draws.

    Parameters
    ----------
    first, last : str
        Levels of :data:`PHANTOM_LEVELS`, ``first`` cranial to (or equal to) ``last``.

    Returns
    -------
    list of str
    """
    i0, i1 = PHANTOM_LEVELS.index(first), PHANTOM_LEVELS.index(last)
    return list(PHANTOM_LEVELS[i0 : i1 + 1])


def _interp_table(level: str, table: Mapping[str, tuple[float, ...]]) -> np.ndarray:
    xs = np.array([level_index(k) for k in table], dtype=float)
    ys = np.array(list(table.values()), dtype=float)
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    x = float(level_index(level))
    return np.array([np.interp(x, xs, ys[:, c]) for c in range(ys.shape[1])])


def body_size(level: str, scale: float = 1.0) -> BodySize:
    """Interpolated body size at ``level`` (mm), multiplied by ``scale``.

    Parameters
    ----------
    level : str
        A vertebral level.
    scale : float, default 1.0
        Multiplies every size.

    Returns
    -------
    BodySize
    """
    w, d, h, disc = _interp_table(level, _ANCHORS) * scale
    return BodySize(float(w), float(d), float(h), float(disc))


def _tilt_deg(level: str) -> float:
    return float(_interp_table(level, {k: (v,) for k, v in _TILT_DEG.items()})[0])


def _frame(theta: float) -> np.ndarray:
    """Local axes (columns lr, ap, si) for a spinal axis tilted by ``theta`` radians."""
    s, c = np.sin(theta), np.cos(theta)
    e_lr = np.array([1.0, 0.0, 0.0])
    e_si = np.array([0.0, -s, c])  # superior along the spine
    e_ap = np.array([0.0, c, s])  # anterior, perpendicular to e_si
    return np.stack([e_lr, e_ap, e_si], axis=1)


def build_spine(
    levels: list[str],
    *,
    scale: float = 1.0,
    curvature: float = 1.0,
    collapse: dict[str, float] | None = None,
    deformity: dict[str, tuple[str, float]] | None = None,
) -> tuple[list[Body], list[Body], dict[str, np.ndarray]]:
    """Place vertebral bodies and discs along a curved spinal axis.

    Parameters
    ----------
    levels : list of str
        Contiguous levels, cranial -> caudal.
    scale : float
        Multiplies every size.
    curvature : float
        Multiplies the sagittal tilt angles (0 = straight spine).
    collapse : dict of level -> float, optional
        Height loss as a fraction (0.3 = 30 % lower body).
    deformity : dict of level -> (kind, loss), optional
        ``crush`` lowers the body like ``collapse`` (both multiply); ``wedge`` and ``biconcave``
        keep the body's envelope and are drawn by the renderer (:func:`deformed_half_height`).

    Returns
    -------
    bodies : list of Body
        One per level, centred so that the spine's mid-point is near world (0, 0, 0).
    discs : list of Body
        One per adjacent pair (its ``level`` is "UPPER/LOWER"); ``h`` is half
        the disc height plus 2 mm of overlap with the neighbouring bodies
        (the renderer removes the overlap).
    curve : dict
        ``s`` (arc length, mm), ``y`` and ``z`` (world mm) of the axis, and
        ``depth`` (body depth, mm) sampled along it, for the canal and soft tissue.
    """
    collapse = collapse or {}
    deformity = deformity or {}
    sizes = [body_size(lv, scale) for lv in levels]
    heights = [sz.height * (1.0 - collapse.get(lv, 0.0)) for lv, sz in zip(levels, sizes, strict=False)]
    for i, lv in enumerate(levels):
        if lv in deformity and deformity[lv][0] == "crush":
            heights[i] *= 1.0 - deformity[lv][1]
    # arc-length position of each body centre (top of the first body at s = 0)
    centres_s = []
    s = 0.0
    for i, h in enumerate(heights):
        centres_s.append(s + h / 2.0)
        s += h + (sizes[i].disc_below if i < len(levels) - 1 else 0.0)
    total = s
    margin = 60.0
    s_grid = np.arange(-margin, total + margin + 0.25, 0.25)
    tilts = np.radians([_tilt_deg(lv) * curvature for lv in levels])
    theta = np.interp(s_grid, centres_s, tilts)
    ds = 0.25
    y = np.concatenate([[0.0], np.cumsum(np.sin(theta[:-1]) * ds)])
    z = np.concatenate([[0.0], np.cumsum(-np.cos(theta[:-1]) * ds)])
    # centre the spine on the world origin
    mid = np.interp(total / 2.0, s_grid, y), np.interp(total / 2.0, s_grid, z)
    y -= mid[0]
    z -= mid[1]

    def at(sv: float) -> tuple[np.ndarray, float]:
        p = np.array([0.0, np.interp(sv, s_grid, y), np.interp(sv, s_grid, z)])
        return p, float(np.interp(sv, s_grid, theta))

    bodies = []
    for lv, sz, h, sc in zip(levels, sizes, heights, centres_s, strict=False):
        p, th = at(sc)
        shape = deformity.get(lv)
        drawn = (shape[0], float(shape[1])) if shape is not None and shape[0] != "crush" else None
        bodies.append(Body(lv, p, _frame(th), sz.width / 2.0, sz.depth / 2.0, h / 2.0, drawn))
    discs = []
    for i in range(len(levels) - 1):
        disc_h = sizes[i].disc_below
        s_mid = centres_s[i] + heights[i] / 2.0 + disc_h / 2.0
        p, th = at(s_mid)
        a = 0.5 * (bodies[i].a + bodies[i + 1].a) * 0.98
        b = 0.5 * (bodies[i].b + bodies[i + 1].b) * 0.98
        discs.append(Body(f"{levels[i]}/{levels[i + 1]}", p, _frame(th), a, b, disc_h / 2.0 + 2.0))
    depth = np.interp(s_grid, centres_s, [sz.depth for sz in sizes])
    curve = {"s": s_grid, "y": y, "z": z, "depth": depth, "theta": theta}
    return bodies, discs, curve
