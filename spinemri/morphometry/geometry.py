"""A vertebral body's own axes and its heights, measured on a binary mask in world millimetres.

Pure numpy + :func:`scipy.ndimage.map_coordinates`; no I/O. The estimators and their accuracy are
described in docs/metrics.md ("Body heights and collapse").

* **Sampling.** The binary mask is read by trilinear interpolation at world points (through the
  inverse affine), so any voxel order, spacing or obliquity is measured the same way; a point is
  inside where the interpolated mask is >= 0.5. Along a ray the two 0.5 crossings that bound the run
  of inside samples holding the ray's start are located by linear interpolation between samples.
* **Axes.** ``cc`` (cranio-caudal, pointing superior), ``ap`` (pointing anterior) and ``lr``
  (pointing to the patient's right), right-handed (lr x ap = cc). The start of ``cc`` is the spine
  tangent through the neighbouring bodies' centroids (world superior when there is no neighbour);
  ``lr`` is the major axis of the body's cross-section perpendicular to ``cc`` (world x projected
  when the cross-section is nearly round); ``cc`` is then refined to the bisector of the superior
  and inferior endplate planes, fitted to the 0.5 crossings of rays over the central part of
  the body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from .params import HeightParams

__all__ = ["BodyFrame", "BodyHeights", "MaskSampler", "sample_rays", "ray_runs", "body_frame", "measure_body"]

_X = np.array([1.0, 0.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class BodyFrame:
    """A body's own axes: centroid (world mm) and unit axes ``lr``, ``ap``, ``cc`` (RAS-signed)."""

    centroid: np.ndarray
    lr: np.ndarray
    ap: np.ndarray
    cc: np.ndarray
    cc_source: str


@dataclass(frozen=True)
class BodyHeights:
    """Heights (mm) at the posterior, middle and anterior positions, the AP chord, and why not.

    ``chord_start`` is the chord's posterior end: its position (mm) along ``frame.ap`` from the centroid.
    """

    posterior: float
    middle: float
    anterior: float
    chord: float
    frame: BodyFrame | None
    reason: str = ""
    chord_start: float = float("nan")


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class MaskSampler:
    """Trilinear reads of one binary mask crop at world points.

    Parameters
    ----------
    crop : ndarray of shape (I, J, K), bool
        The mask inside a box of the volume.
    affine : ndarray of shape (4, 4)
        Voxel index (i, j, k) of the whole volume -> world RAS mm.
    offset : ndarray of shape (3,)
        Voxel index of the crop's first voxel in the whole volume.
    """

    def __init__(self, crop: np.ndarray, affine: np.ndarray, offset: np.ndarray) -> None:
        # pad by one voxel of zeros: reads just outside the crop see background, and a run that
        # reaches the padding is at the crop's border (the caller pads the crop when it is not
        # the volume's edge)
        self.data = np.pad(crop.astype(np.float32), 1)
        inv = np.linalg.inv(affine)
        self.lin = inv[:3, :3]
        self.shift = inv[:3, 3] - offset + 1.0
        self.shape = np.array(self.data.shape, dtype=float)

    def ijk(self, pts: np.ndarray) -> np.ndarray:
        """Continuous index into the padded crop of world points.

        Parameters
        ----------
        pts : ndarray of shape (N, 3)
            World mm.

        Returns
        -------
        ndarray of shape (N, 3)
        """
        return np.asarray(pts @ self.lin.T + self.shift)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """Interpolated mask values at world points.

        Parameters
        ----------
        pts : ndarray of shape (..., 3)
            World mm.

        Returns
        -------
        ndarray of shape (...)
            In [0, 1]; 0 outside the crop.
        """
        ijk = self.ijk(pts.reshape(-1, 3))
        v = map_coordinates(self.data, ijk.T, order=1, mode="constant", cval=0.0, prefilter=False)
        return np.asarray(v).reshape(pts.shape[:-1])

    def at_border(self, pts: np.ndarray) -> np.ndarray:
        """Whether each point lies within one voxel of the crop's edge.

        Parameters
        ----------
        pts : ndarray of shape (..., 3)
            World mm.

        Returns
        -------
        ndarray of bool of shape (...)
        """
        ijk = self.ijk(pts.reshape(-1, 3))
        near = np.any((ijk < 1.5) | (ijk > self.shape - 2.5), axis=1)
        return np.asarray(near.reshape(pts.shape[:-1]))


def sample_rays(
    sampler: MaskSampler, starts: np.ndarray, direction: np.ndarray, half_length: float, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the mask along rays ``start + t * direction``, ``t`` in [-half_length, half_length].

    Parameters
    ----------
    sampler : MaskSampler
        The mask reader.
    starts : ndarray of shape (R, 3)
        Ray origins (world mm).
    direction : ndarray of shape (3,)
        Unit direction.
    half_length, step : float
        Extent and sampling step (mm).

    Returns
    -------
    t : ndarray of shape (S,)
        Ray parameters (mm).
    values : ndarray of shape (R, S)
        Interpolated mask values.
    """
    n = int(np.ceil(half_length / step))
    t = np.arange(-n, n + 1, dtype=np.float64) * step
    pts = starts[:, None, :] + t[None, :, None] * direction[None, None, :]
    return t, sampler(pts)


def ray_runs(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both 0.5 crossings bounding the inside run at ``t = 0`` of each ray (NaN when outside).

    When the sample at ``t = 0`` is outside, the longest inside run of the ray is used.

    Parameters
    ----------
    t : ndarray of shape (S,)
        Ray parameters, symmetric about 0.
    values : ndarray of shape (R, S)
        Interpolated mask values.

    Returns
    -------
    lo, hi : ndarray of shape (R,)
        Ray parameter (mm) of the lower and upper crossing; NaN for a ray without inside samples.
    """
    inside = values >= 0.5
    r, s = inside.shape
    mid = s // 2
    idx = np.arange(s)
    step = float(t[1] - t[0]) if s > 1 else 1.0
    # the run through the middle sample, for every ray at once
    a = np.where(~inside[:, : mid + 1], idx[: mid + 1], -1).max(axis=1) + 1
    b = np.where(~inside[:, mid:], idx[mid:], s).min(axis=1) - 1
    for k in np.flatnonzero(~inside[:, mid]):  # the middle is outside: the longest run, if any
        row = inside[k]
        if not row.any():
            a[k], b[k] = -1, -1
            continue
        d = np.diff(np.concatenate([[0], row.view(np.int8), [0]]))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
        j = int(np.argmax(ends - starts))
        a[k], b[k] = int(starts[j]), int(ends[j])
    ok = a >= 0
    rows = np.arange(r)
    lo = np.full(r, np.nan)
    hi = np.full(r, np.nan)
    va = values[rows, np.clip(a, 0, s - 1)]
    vam = values[rows, np.clip(a - 1, 0, s - 1)]
    vb = values[rows, np.clip(b, 0, s - 1)]
    vbp = values[rows, np.clip(b + 1, 0, s - 1)]
    lo_x = t[np.clip(a, 0, s - 1)] - np.where(a > 0, step * (va - 0.5) / np.maximum(va - vam, 1e-9), 0.0)
    hi_x = t[np.clip(b, 0, s - 1)] + np.where(b < s - 1, step * (vb - 0.5) / np.maximum(vb - vbp, 1e-9), 0.0)
    lo[ok] = lo_x[ok]
    hi[ok] = hi_x[ok]
    return lo, hi


def _lr_axis(points: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """Principal axis of the cross-section perpendicular to ``cc`` nearest world x (x itself when round)."""
    x0 = _unit(_X - (_X @ cc) * cc)
    y0 = np.cross(cc, x0)
    q = points - points.mean(axis=0)
    uv = np.stack([q @ x0, q @ y0], axis=1)
    cov = np.cov(uv.T) if len(uv) > 2 else np.eye(2)
    w, v = np.linalg.eigh(cov)
    if w[0] > 0 and np.sqrt(w[1] / w[0]) >= 1.15:
        # of the two principal axes, the one nearer world left-right (a coarse slice spacing can make
        # the left-right spread look smaller than the antero-posterior one)
        k = int(np.argmax(np.abs(v[0, :])))
        lr = _unit(v[0, k] * x0 + v[1, k] * y0)
    else:
        lr = x0
    return lr if lr @ _X >= 0 else -lr


def _frame_from(centroid: np.ndarray, cc: np.ndarray, points: np.ndarray, source: str) -> BodyFrame:
    cc = _unit(cc if cc @ _Z >= 0 else -cc)
    lr = _lr_axis(points, cc)
    ap = np.cross(cc, lr)
    return BodyFrame(centroid, lr, _unit(ap), cc, source)


def _plane_normal(pts: np.ndarray) -> np.ndarray | None:
    """Normal of a least-squares plane, refitted twice without points off it by > max(1 mm, 3 MADs).

    Rays near the rounded rim of a body leave through its side wall, not its endplate: those
    crossings lie off the endplate plane and are dropped.
    """
    keep = np.ones(len(pts), dtype=bool)
    normal = None
    for _ in range(3):
        if keep.sum() < 6:
            return normal
        sel = pts[keep]
        q = sel - sel.mean(axis=0)
        _, _, vt = np.linalg.svd(q, full_matrices=False)
        normal = np.asarray(vt[-1])
        r = (pts - sel.mean(axis=0)) @ normal
        med = float(np.median(r[keep]))
        mad = float(np.median(np.abs(r[keep] - med)))
        keep = np.abs(r - med) <= max(1.0, 3.0 * 1.4826 * mad)
    return normal


def body_frame(
    sampler: MaskSampler,
    points: np.ndarray,
    tangent: np.ndarray | None,
    params: HeightParams,
    step: float,
) -> BodyFrame:
    """The body's own axes (see the module notes).

    Parameters
    ----------
    sampler : MaskSampler
        The body mask reader.
    points : ndarray of shape (N, 3)
        World mm of the body's voxel centres.
    tangent : ndarray of shape (3,) or None
        The spine tangent through the neighbours' centroids (None: world superior).
    params : HeightParams
    step : float
        Ray sampling step (mm).

    Returns
    -------
    BodyFrame
    """
    c = points.mean(axis=0)
    init = tangent if tangent is not None else _Z
    frame = _frame_from(c, init, points, "spine tangent" if tangent is not None else "world superior")
    if params.refine_iterations == 0:
        return frame
    # the body's own tilt in its sagittal plane: the direction of smallest cranio-caudal width
    # within 45 degrees of the start (a body is lower than it is deep; L5 and S1 lean 20-40 degrees
    # away from the line through their neighbours)
    q = points - c
    mid = np.abs(q @ frame.lr) <= 0.5 * np.percentile(np.abs(q @ frame.lr), 90)
    qm = q[mid] if mid.sum() >= 20 else q
    qm = qm[:: max(1, len(qm) // 4000)]  # every n-th voxel: the 1st/99th percentiles need no more
    th = np.radians(np.arange(-45.0, 45.5, 1.0))
    dirs = np.cos(th)[:, None] * frame.cc + np.sin(th)[:, None] * frame.ap
    lo_p, hi_p = np.percentile(qm @ dirs.T, [1, 99], axis=0)
    best = dirs[int(np.argmin(hi_p - lo_p))]
    frame = _frame_from(c, best, points, frame.cc_source + " + width")
    cc0 = frame.cc
    source = frame.cc_source + " + endplates"
    for _ in range(params.refine_iterations):
        q = points - c
        u_lr, u_ap, u_cc = q @ frame.lr, q @ frame.ap, q @ frame.cc
        half = float(np.ptp(u_cc)) / 2.0 + 5.0
        lr_lo, lr_hi = np.percentile(u_lr, [2, 98])
        ap_lo, ap_hi = np.percentile(u_ap, [2, 98])
        lr_c, ap_c = 0.5 * (lr_lo + lr_hi), 0.5 * (ap_lo + ap_hi)
        gl = lr_c + 0.25 * (lr_hi - lr_lo) * np.linspace(-1, 1, 5)
        ga = ap_c + 0.30 * (ap_hi - ap_lo) * np.linspace(-1, 1, 7)
        ll, aa = np.meshgrid(gl, ga, indexing="ij")
        starts = c + ll.reshape(-1, 1) * frame.lr + aa.reshape(-1, 1) * frame.ap
        t, vals = sample_rays(sampler, starts, frame.cc, half, step)
        lo, hi = ray_runs(t, vals)
        ok = np.isfinite(lo) & np.isfinite(hi)
        n_top = _plane_normal((starts + hi[:, None] * frame.cc)[ok])
        n_bot = _plane_normal((starts + lo[:, None] * frame.cc)[ok])
        if n_top is None or n_bot is None:
            break
        n_top = n_top if n_top @ frame.cc >= 0 else -n_top
        n_bot = n_bot if n_bot @ frame.cc >= 0 else -n_bot
        cc = _unit(n_top + n_bot)
        if np.degrees(np.arccos(np.clip(cc @ cc0, -1.0, 1.0))) > params.max_refine_deg:
            break
        frame = _frame_from(c, cc, points, source)
    return frame


def _offsets(half: float, n: int) -> np.ndarray:
    return np.linspace(-half, half, n) if n > 1 else np.zeros(1)


def measure_body(
    sampler: MaskSampler,
    points: np.ndarray,
    tangent: np.ndarray | None,
    params: HeightParams,
    step: float,
) -> BodyHeights:
    """Posterior, middle and anterior heights of one body (mm), along its own cranio-caudal axis.

    Parameters
    ----------
    sampler : MaskSampler
        The body mask reader.
    points : ndarray of shape (N, 3)
        World mm of the body's voxel centres.
    tangent : ndarray of shape (3,) or None
        Spine tangent through the neighbours (None: world superior).
    params : HeightParams
    step : float
        Ray sampling step (mm).

    Returns
    -------
    BodyHeights
        NaN heights with a ``reason`` when the rays leave the field of view or find no body.
    """
    frame = body_frame(sampler, points, tangent, params, step)
    c = frame.centroid
    q = points - c
    half_cc = float(np.ptp(q @ frame.cc)) / 2.0 + 5.0
    half_ap = float(np.ptp(q @ frame.ap)) / 2.0 + 5.0
    band = _offsets(params.band_mm, params.n_band)
    # the chord: AP rays through the centroid level and a sixth of the height above and below
    levels = np.array([-1.0, 0.0, 1.0]) * half_cc / 4.0
    bb, hh = np.meshgrid(band, levels, indexing="ij")
    starts = c + bb.reshape(-1, 1) * frame.lr + hh.reshape(-1, 1) * frame.cc
    t, vals = sample_rays(sampler, starts, frame.ap, half_ap, step)
    lo, hi = ray_runs(t, vals)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ends = np.concatenate([starts + lo[:, None] * frame.ap, starts + hi[:, None] * frame.ap])[
        np.concatenate([ok, ok])
    ]
    if ok.sum() < max(1, len(ok) // 2):
        return BodyHeights(np.nan, np.nan, np.nan, np.nan, frame, "no antero-posterior chord found")
    if sampler.at_border(ends).mean() > 0.25:
        return BodyHeights(
            np.nan, np.nan, np.nan, np.nan, frame, "the body reaches the edge of the field of view"
        )
    s0, s1 = float(np.median(lo[ok])), float(np.median(hi[ok]))
    window = _offsets(params.ap_window_mm, params.n_window)
    out = []
    for f in params.fractions:
        s = s0 + f * (s1 - s0)
        bb, ww = np.meshgrid(band, window, indexing="ij")
        st = c + bb.reshape(-1, 1) * frame.lr + (s + ww.reshape(-1, 1)) * frame.ap
        t, vals = sample_rays(sampler, st, frame.cc, half_cc, step)
        a, b = ray_runs(t, vals)
        good = np.isfinite(a) & np.isfinite(b)
        if good.sum() < max(1, len(good) // 2):
            return BodyHeights(np.nan, np.nan, np.nan, s1 - s0, frame, "no body along a height ray")
        tips = np.concatenate([st + a[:, None] * frame.cc, st + b[:, None] * frame.cc])[
            np.concatenate([good, good])
        ]
        if sampler.at_border(tips).mean() > 0.25:
            return BodyHeights(
                np.nan, np.nan, np.nan, s1 - s0, frame, "the body reaches the edge of the field of view"
            )
        out.append(float(np.mean((b - a)[good])))
    return BodyHeights(out[0], out[1], out[2], s1 - s0, frame, "", s0)
