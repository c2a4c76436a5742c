"""The phantom scene on its image grid: field of view, bodies, discs, lesions, background, bias.

Pure numpy; used by :func:`spinemri.phantom.make.make_phantom`. See docs/phantom.md.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from .anatomy import CORTEX_MM, Body, deformed_half_height
from .params import CONTRASTS, PhantomParams
from .render import Lesion, bbox_of, in_cylinder, in_lesion, local_coords, subgrid, voxel_counts

__all__ = [
    "grid_affine",
    "surface_points",
    "draw_texture",
    "world_box",
    "render_background",
    "bias_field",
    "render_structures",
]


def surface_points(body: Body, n: int = 48) -> np.ndarray:
    """World points on the surface of a body: rings at 7 heights and on both endplates.

    Parameters
    ----------
    body : Body
        A vertebral body or disc (elliptic cylinder).
    n : int, default 48
        Points per ring.

    Returns
    -------
    ndarray of shape (11 * n, 3)
        World RAS+ mm (used for bounding boxes and the truncation flag).
    """
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.stack([body.a * np.cos(t), body.b * np.sin(t)], axis=1)
    pts = []
    for hz in np.linspace(-body.h, body.h, 7):
        pts.append(np.column_stack([ring, np.full(n, hz)]))
    for r in (0.33, 0.66):  # endplate interior points
        pts.append(np.column_stack([ring * r, np.full(n, body.h)]))
        pts.append(np.column_stack([ring * r, np.full(n, -body.h)]))
    local = np.concatenate(pts)
    return cast(np.ndarray, local @ body.frame.T + body.centre)


def _rotation(oblique_deg: float, tilt_deg: float) -> np.ndarray:
    a, b = np.radians(oblique_deg), np.radians(tilt_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return cast(np.ndarray, rz @ rx)


def grid_affine(p: PhantomParams, bodies: list[Body]) -> np.ndarray:
    """Voxel -> world affine of the image grid that frames the spine.

    i runs A->P (DICOM columns), j S->I (rows), k L->R (slices), rotated by
    ``p.oblique_deg`` (about S-I) and ``p.tilt_deg`` (about L-R); the field of
    view covers the bodies with a margin, moved cranially by ``p.fov_shift_mm``.

    Parameters
    ----------
    p : PhantomParams
        Grid options (``rows``, ``cols``, ``n_slices``, ``pixel_mm``, ``slice_mm``, ...).
    bodies : list of Body
        The vertebral bodies placed in the world (:func:`~spinemri.phantom.anatomy.build_spine`).

    Returns
    -------
    ndarray
        4 x 4 affine mapping voxel indices (i, j, k) to world RAS+ mm.
    """
    pts = np.concatenate([surface_points(b) for b in bodies])
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


def draw_texture(rng: np.random.Generator, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Draw the plane waves of the marrow texture.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the random wave vectors and phases.
    n : int, default 6
        Number of plane waves.

    Returns
    -------
    k : ndarray of shape (n, 3)
        Wave vectors (rad/mm), wavelengths uniform in [5, 15] mm.
    phase : ndarray of shape (n,)
        Phases (rad).
    """
    wavelength = rng.uniform(5.0, 15.0, n)
    k = rng.normal(size=(n, 3))
    k *= (2 * np.pi / wavelength / np.linalg.norm(k, axis=1))[:, None]
    return k, rng.uniform(0, 2 * np.pi, n)


def world_box(
    affine: np.ndarray, lo: tuple[int, ...], hi: tuple[int, ...], *, broadcast: bool = False
) -> list[np.ndarray]:
    """World (x, y, z) mm of the voxel centres of a box, as float32 arrays.

    With ``broadcast=True`` each coordinate keeps only the axes it depends on
    (shape (ni|1, nj|1, nk|1)), so functions of y and z alone stay 2-D on a
    sagittal grid: that is what keeps the background render fast.

    Parameters
    ----------
    affine : ndarray
        4 x 4 voxel -> world affine.
    lo, hi : tuple of 3 ints
        Voxel box (``hi`` exclusive).
    broadcast : bool, default False
        Keep only the axes each coordinate depends on.

    Returns
    -------
    list of 3 ndarrays
        x, y and z (world mm, float32).
    """
    axes = [np.arange(a, b, dtype=np.float64) for a, b in zip(lo, hi, strict=False)]
    shapes = [(-1, 1, 1), (1, -1, 1), (1, 1, -1)]
    full = tuple(b - a for a, b in zip(lo, hi, strict=False))
    out = []
    for r in range(3):
        x = np.full((1, 1, 1), affine[r, 3], dtype=np.float64)
        for c in range(3):
            if affine[r, c] != 0.0 or not broadcast:
                x = x + (affine[r, c] * axes[c]).reshape(shapes[c])
        x = x.astype(np.float32)
        out.append(x if broadcast else np.broadcast_to(x, full))
    return out


def render_background(
    p: PhantomParams,
    affine: np.ndarray,
    shape: tuple[int, ...],
    curve: dict[str, np.ndarray],
    bodies: list[Body],
) -> np.ndarray:
    """Soft tissue, fat, air, canal (CSF), cord and posterior elements at voxel centres (float32).

    Edges are anti-aliased with a linear ramp one pixel wide; these structures carry no truth.

    Parameters
    ----------
    p : PhantomParams
        ``contrast`` and ``scale``.
    affine : ndarray
        4 x 4 voxel -> world affine.
    shape : tuple of 3 ints
        Grid shape.
    curve : dict
        The spinal axis of :func:`~spinemri.phantom.anatomy.build_spine`.
    bodies : list of Body
        The vertebral bodies (for the conus and the posterior elements).

    Returns
    -------
    ndarray of float32
        Intensity of the background at every voxel centre.
    """
    c = CONTRASTS[p.contrast]
    x, y, z = world_box(affine, (0, 0, 0), shape, broadcast=True)
    zs, ys, ds, th = curve["z"][::-1], curve["y"][::-1], curve["depth"][::-1], curve["theta"][::-1]
    yc = np.interp(z, zs, ys).astype(np.float32)
    depth = np.interp(z, zs, ds).astype(np.float32)
    cos_t = np.cos(np.interp(z, zs, th)).astype(np.float32)
    v = (y - yc) * cos_t  # offset from the spinal axis perpendicular to it, anterior positive
    w = np.float32(max(min(abs(s) for s in np.linalg.norm(affine[:3, :3], axis=0)), 0.3))
    sc = np.float32(p.scale)

    def ramp(dist: np.ndarray) -> np.ndarray:  # dist > 0 outside
        return cast(np.ndarray, np.clip(0.5 - dist / w, 0.0, 1.0))

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
    near = np.minimum(
        np.abs(z - zb[idx]) - 0.8 * hb[idx],
        np.abs(z - zb[np.maximum(idx - 1, 0)]) - 0.8 * hb[np.maximum(idx - 1, 0)],
    )
    f_post = ramp(np.abs(x) - 6.0 * sc) * ramp(near) * ramp(v - v_post) * ramp(v_post - 25.0 * sc - v)
    base = base * (1 - f_post) + f_post * c["posterior"]
    inside_canal = f_canal * (1 - f_cord) * c["csf"] + f_canal * f_cord * c["cord"]
    out[:, :, k0:k1] = base * (1 - f_canal) + inside_canal
    return out


def bias_field(p: PhantomParams, affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """1 + bias * sin(pi (t - 1/2)), t = 0 at the most inferior voxel centre, 1 at the most superior.

    Parameters
    ----------
    p : PhantomParams
        ``bias``, the field amplitude.
    affine : ndarray
        4 x 4 voxel -> world affine.
    shape : tuple of 3 ints
        Grid shape.

    Returns
    -------
    ndarray of float32
        The multiplicative field, of ``shape``.
    """
    x, y, z = world_box(affine, (0, 0, 0), shape, broadcast=True)
    zmin, zmax = float(z.min()), float(z.max())
    t = (z - zmin) / max(zmax - zmin, 1e-6)
    return np.broadcast_to(1.0 + p.bias * np.sin(np.pi * (t - 0.5)), shape).astype(np.float32)


def render_structures(
    p: PhantomParams,
    affine: np.ndarray,
    shape: tuple[int, ...],
    bodies: list[Body],
    discs: list[Body],
    lesions: list[Lesion],
    tex: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Supersampled bodies, discs and lesions: ``signal`` and ``occupied`` (float32 sums over
    sub-samples / N), ``label`` (1-based body index of the voxels that are vertebra), ``lesion_id``
    (lesion voxels) and ``boxes`` (level -> voxel box).

    Parameters
    ----------
    p : PhantomParams
        ``contrast``, ``supersample`` and ``texture``.
    affine : ndarray
        4 x 4 voxel -> world affine.
    shape : tuple of 3 ints
        Grid shape.
    bodies, discs : list of Body
        From :func:`~spinemri.phantom.anatomy.build_spine`.
    lesions : list of Lesion
        The lesion plan.
    tex : (ndarray, ndarray)
        Marrow texture waves (:func:`draw_texture`).

    Returns
    -------
    dict
        ``signal``, ``occupied``, ``label``, ``lesion_id``, ``boxes`` as above.
    """
    c = CONTRASTS[p.contrast]
    f = p.supersample
    nsub = f**3
    signal = np.zeros(shape, np.float32)
    occupied = np.zeros(shape, np.float32)
    best = np.zeros(shape, np.int16)  # sub-samples of the vertebra owning each voxel
    label = np.zeros(shape, np.int16)  # 1-based index into bodies
    les_n = np.zeros(shape, np.int16)  # lesion sub-samples within the owning vertebra
    les_id = np.zeros(shape, np.uint16)
    boxes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    kvec, kphase = tex
    for bi, body in enumerate(bodies):
        box = bbox_of(surface_points(body), affine, shape)
        if box is None:
            continue
        boxes[body.level] = box
        g = subgrid(box[0], box[1], f)
        u = local_coords(g, affine, body.centre, body.frame)
        outer = in_cylinder(u, body.a, body.b, body.h)
        inner = in_cylinder(u, body.a - CORTEX_MM, body.b - CORTEX_MM, body.h - CORTEX_MM)
        if body.deformity is not None:  # wedge / biconcave: both endplates follow the deformed height
            hh = deformed_half_height(u[0], u[1], body.a, body.b, body.h, body.deformity)
            outer &= np.abs(u[2]) <= hh
            inner &= np.abs(u[2]) <= hh - CORTEX_MM
        claimed = np.zeros_like(outer)
        per_lesion = []
        for les in lesions:
            if np.linalg.norm(les.centre - body.centre) > les.max_radius + np.linalg.norm(
                [body.a, body.b, body.h]
            ):
                continue
            m = in_lesion(les, g, affine) & outer & ~claimed
            if m.any():
                claimed |= m
                per_lesion.append((les, voxel_counts(m, g)))
        n_out = voxel_counts(outer, g)
        n_cortex = voxel_counts(outer & ~inner & ~claimed, g)
        n_marrow = voxel_counts(inner & ~claimed, g)
        xw = world_box(affine, *box)
        t = np.zeros(g.shape, np.float32)
        for kv, ph in zip(kvec, kphase, strict=False):
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
        box = bbox_of(surface_points(disc), affine, shape)
        if box is None:
            continue
        g = subgrid(box[0], box[1], f)
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
        "signal": signal,
        "occupied": np.clip(occupied, 0, 1),
        "label": np.where(vert, label, 0),
        "lesion_id": np.where(lesion, les_id, 0).astype(np.uint16),
        "boxes": boxes,
    }
