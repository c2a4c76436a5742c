"""Does a label scheme fit the anatomy? Per-label shape in world mm and the checks on it.

Pure numpy, no I/O. :func:`label_shapes` measures each mask label once (voxel
count, volume, centroid and second moments in world RAS mm, whether the field
of view cuts it); :func:`check_levels` compares the levels a scheme gives the
labels with what vertebrae of those levels look like: cranio-caudal order in
world space, body height and volume per region (generous ranges from the
anthropometric literature, :data:`REGION_SIZE`), size growing caudally, and
the shape of a sacrum. :mod:`spinemri.scheme_choice` uses it to choose and
to flag schemes; docs/label-schemes.md has the rules and their sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .arrays.bbox import nonzero_bbox
from .arrays.moments import LabelMoments, label_moments
from .levels import level_index, region_of

__all__ = [
    "LabelShape",
    "LevelCheck",
    "REGION_SIZE",
    "SIZE_CHECKED_LEVELS",
    "label_shapes",
    "merge_shapes",
    "level_heights",
    "size_fits",
    "SizeVerdict",
    "size_verdict",
    "is_sacrum_shaped",
    "check_levels",
    "direction_vote",
    "ANATOMY_AGREEMENT",
]

#: Smallest fraction of label pairs in anatomical order for the anatomy to
#: confirm a scheme (and largest fraction, 1 - this, for it to refute one).
ANATOMY_AGREEMENT = 0.75

#: Size range of a vertebra per region: (height min, height max) in mm along the spine's local
#: axis (equivalent height sqrt(12 var), see :func:`level_heights`) and (volume min, max) in mm^3.
#: Generous on purpose: from a small body-only mask to a large whole-vertebra mask (with the
#: posterior elements). Literature body heights: cervical C3-C7 about 11-15 mm (Panjabi et al.,
#: Spine 1991;16:861-869), thoracic about 15 (T1) to 24 mm (T12) (Panjabi et al., Spine
#: 1991;16:888-901), lumbar about 25-30 mm (Panjabi et al., Spine 1992;17:299-306; Zhou et al.,
#: Eur Spine J 2000;9:242-248); endplate width x depth about 16 x 15 mm (C3) to 22 x 17 mm (C7),
#: 25 x 18 (T1) to 38 x 30 (T12), 40 x 32 (L1) to 50 x 36 mm (L5). docs/label-schemes.md.
REGION_SIZE: Mapping[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "cervical": ((8.0, 20.0), (1_500.0, 12_000.0)),
    "thoracic": ((13.0, 36.0), (4_000.0, 70_000.0)),
    "lumbar": ((20.0, 45.0), (15_000.0, 140_000.0)),
}

#: Levels whose size is compared with :data:`REGION_SIZE` (C1 is a ring, C2 carries the dens,
#: the sacrum and coccyx are not vertebral bodies; they are left out).
SIZE_CHECKED_LEVELS = frozenset(
    lv
    for lv in (
        "C3",
        "C4",
        "C5",
        "C6",
        "C7",
        *(f"T{i}" for i in range(1, 14)),
        *(f"L{i}" for i in range(1, 7)),
    )
)


@dataclass(frozen=True)
class LabelShape:
    """One mask label (or several merged) in world RAS mm.

    Parameters
    ----------
    voxels : int
        Voxel count.
    volume_mm3 : float
        ``voxels`` x the voxel volume.
    centroid_mm : tuple of 3 float
        Mean world (x, y, z) RAS mm of the voxel centres.
    cov_mm2 : tuple of 9 float
        Row-major 3x3 covariance of the voxel centres' world coordinates (mm^2).
    truncated : bool
        The label touches the first or last plane of the array axis closest to
        superior-inferior: the field of view may cut it.
    """

    voxels: int
    volume_mm3: float
    centroid_mm: tuple[float, float, float]
    cov_mm2: tuple[float, ...]
    truncated: bool = False

    @property
    def si_mm(self) -> float:
        """World superior coordinate (RAS z, mm) of the centroid."""
        return self.centroid_mm[2]

    def extent_along(self, axis: np.ndarray) -> float:
        """Equivalent extent along a unit vector: ``sqrt(12 * var)`` in mm (exact for a uniform slab).

        Parameters
        ----------
        axis : ndarray of shape (3,)
            Direction in world RAS (normalised here).

        Returns
        -------
        float
            Millimetres.
        """
        u = np.asarray(axis, dtype=np.float64)
        u = u / np.sqrt(u.dot(u))  # np.linalg.norm(u) of a vector, without its dispatch
        cov = np.asarray(self.cov_mm2).reshape(3, 3)
        return float(np.sqrt(max(12.0 * float(u @ cov @ u), 0.0)))


def label_shapes(
    labels: np.ndarray,
    affine: np.ndarray,
    *,
    bbox: tuple[slice, slice, slice] | None = None,
    moments: LabelMoments | None = None,
) -> dict[int, LabelShape]:
    """Voxel count, volume, centroid, covariance and truncation of every label > 0, in world mm.

    Parameters
    ----------
    labels : ndarray of shape (I, J, K), non-negative int
    affine : ndarray of shape (4, 4)
        Voxel index (i, j, k) -> world (x, y, z) RAS mm.
    bbox : tuple of 3 slice, optional
        :func:`spinemri.arrays.bbox.nonzero_bbox` of ``labels`` when known.
    moments : LabelMoments, optional
        :func:`spinemri.arrays.moments.label_moments` of ``labels`` when known (computed otherwise).

    Returns
    -------
    dict of int to LabelShape
        Ascending labels.

    Notes
    -----
    Moments are taken over every non-zero voxel of the bounding box in one compiled pass
    (:func:`spinemri.arrays.moments.label_moments`: exact integer sums of the indices and their
    products, then mapped to world mm); the voxel count and volume are exact.
    """
    a = np.asarray(labels)
    aff = np.asarray(affine, dtype=np.float64)
    box = bbox if bbox is not None else (nonzero_bbox(a) if a.size else None)
    if box is None:
        return {}
    mom = moments if moments is not None else label_moments(a, aff, bbox=box)
    lin, shift = aff[:3, :3], aff[:3, 3]
    voxel_mm3 = abs(float(np.linalg.det(lin)))
    si_axis = int(np.argmax(np.abs(aff[2, :3]) / np.linalg.norm(lin, axis=0)))
    edge: set[int] = set()
    for plane in (0, a.shape[si_axis] - 1):
        sl = box[si_axis]
        if not sl.start <= plane < sl.stop:
            continue  # no label reaches this end plane
        face_box = tuple(slice(plane, plane + 1) if d == si_axis else box[d] for d in range(3))
        edge.update(int(v) for v in np.unique(a[face_box]) if v)
    out: dict[int, LabelShape] = {}
    lin_t = lin.T
    for r, (lb, count) in enumerate(zip(mom.labels.tolist(), mom.counts.tolist(), strict=True)):
        mean = (lin @ mom.mean_ijk[r] + shift).tolist()
        cov = (lin @ mom.cov_ijk[r] @ lin_t).ravel().tolist()
        out[lb] = LabelShape(
            voxels=count,
            volume_mm3=float(count) * voxel_mm3,
            centroid_mm=(mean[0], mean[1], mean[2]),
            cov_mm2=tuple(cov),
            truncated=lb in edge,
        )
    return out


def merge_shapes(shapes: Iterable[LabelShape]) -> LabelShape:
    """One shape for several labels of one level (pooled moments).

    Parameters
    ----------
    shapes : iterable of LabelShape
        At least one.

    Returns
    -------
    LabelShape
        Pooled count, volume, centroid and covariance; truncated when any is.
    """
    items = list(shapes)
    if len(items) == 1:
        return items[0]
    n = np.array([s.voxels for s in items], dtype=np.float64)
    means = np.array([s.centroid_mm for s in items])
    mean = (n[:, None] * means).sum(0) / n.sum()
    cov = np.zeros((3, 3))
    for w, m, s in zip(n, means, items, strict=True):
        d = m - mean
        cov += w * (np.asarray(s.cov_mm2).reshape(3, 3) + np.outer(d, d))
    cov /= n.sum()
    return LabelShape(
        voxels=int(n.sum()),
        volume_mm3=float(sum(s.volume_mm3 for s in items)),
        centroid_mm=(float(mean[0]), float(mean[1]), float(mean[2])),
        cov_mm2=tuple(float(v) for v in cov.ravel()),
        truncated=any(s.truncated for s in items),
    )


def level_heights(shapes: Mapping[str, LabelShape]) -> dict[str, float]:
    """Height of each level along the spine's local axis (mm).

    Parameters
    ----------
    shapes : mapping of level to LabelShape

    Returns
    -------
    dict of str to float
        :meth:`LabelShape.extent_along` the local axis: the direction from
        the centroid of the next caudal level to that of the next cranial one
        (levels ordered by world z; one-sided at the ends; world z for a
        single level).
    """
    order = sorted(shapes, key=lambda lv: -shapes[lv].si_mm)
    cent = [np.asarray(shapes[lv].centroid_mm) for lv in order]
    out: dict[str, float] = {}
    for n, lv in enumerate(order):
        if len(order) == 1:
            axis = np.array([0.0, 0.0, 1.0])
        else:
            axis = cent[max(n - 1, 0)] - cent[min(n + 1, len(order) - 1)]
            if not axis.dot(axis) > 0:  # (np.linalg.norm(axis) > 0: the norm is sqrt of this)
                axis = np.array([0.0, 0.0, 1.0])
        out[lv] = shapes[lv].extent_along(axis)
    return out


def size_fits(height_mm: float, volume_mm3: float) -> frozenset[str]:
    """Regions whose :data:`REGION_SIZE` ranges hold both the height and the volume.

    Parameters
    ----------
    height_mm, volume_mm3 : float

    Returns
    -------
    frozenset of str
        Empty when the size fits no region (not a real vertebra: a synthetic
        test object, a fragment): such a label is no evidence either way.
    """
    return frozenset(
        r
        for r, ((h0, h1), (v0, v1)) in REGION_SIZE.items()
        if h0 <= height_mm <= h1 and v0 <= volume_mm3 <= v1
    )


@dataclass(frozen=True)
class SizeVerdict:
    """Outcome of the size check of a level assignment (:func:`size_verdict`).

    Parameters
    ----------
    consistent, inconsistent, exclusive : tuple of str
        Levels (see :func:`size_verdict`).
    fits : mapping of str to frozenset of str
        Regions each size-checked level's size fits.
    """

    consistent: tuple[str, ...]
    inconsistent: tuple[str, ...]
    exclusive: tuple[str, ...]
    fits: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def contradicted(self) -> bool:
        """More levels of the wrong size than of the right size (and at least one)."""
        return len(self.inconsistent) > len(self.consistent)


def size_verdict(levels: Mapping[str, LabelShape]) -> SizeVerdict:
    """Compare the size of each level with its region's range.

    Parameters
    ----------
    levels : mapping of level to LabelShape

    Returns
    -------
    SizeVerdict
        ``consistent``: levels whose size fits their own region;
        ``inconsistent``: levels whose size fits only other regions;
        ``exclusive``: consistent levels whose size fits no other region.
        Levels outside :data:`SIZE_CHECKED_LEVELS`, truncated by the field of
        view, or of a size that fits no region are left out.
    """
    heights = level_heights(levels)
    cons: list[str] = []
    inc: list[str] = []
    excl: list[str] = []
    fits: dict[str, frozenset[str]] = {}
    for lv, s in levels.items():
        if lv not in SIZE_CHECKED_LEVELS or s.truncated:
            continue
        f = size_fits(heights[lv], s.volume_mm3)
        if not f:
            continue
        fits[lv] = f
        if region_of(lv) in f:
            cons.append(lv)
            if len(f) == 1:
                excl.append(lv)
        else:
            inc.append(lv)
    key = level_index
    return SizeVerdict(
        tuple(sorted(cons, key=key)), tuple(sorted(inc, key=key)), tuple(sorted(excl, key=key)), fits
    )


def is_sacrum_shaped(sacrum: LabelShape, neighbours: Iterable[LabelShape]) -> bool | None:
    """Does the most caudal label look like a sacrum rather than one more vertebral body?

    Parameters
    ----------
    sacrum : LabelShape
        The candidate (the most caudal label).
    neighbours : iterable of LabelShape
        The one or two labels just cranial to it (not truncated ones preferred).

    Returns
    -------
    bool or None
        True when its volume is at least 1.8 x the neighbours' median or its
        height along world z at least 1.6 x (the sacrum, S1-S5 with the alae,
        is several times a lumbar body); False when both are within 0.6-1.4 x
        (one more vertebral body) and it is not cut by the field of view;
        None when undecided (no neighbour, a cut label, or in between).
    """
    nb = list(neighbours)
    if not nb:
        return None
    up = np.array([0.0, 0.0, 1.0])
    v_ref = float(np.median([s.volume_mm3 for s in nb]))
    h_ref = float(np.median([s.extent_along(up) for s in nb]))
    if v_ref <= 0 or h_ref <= 0:
        return None
    rv = sacrum.volume_mm3 / v_ref
    rh = sacrum.extent_along(up) / h_ref
    if rv >= 1.8 or rh >= 1.6:
        return True
    if not sacrum.truncated and 0.6 <= rv <= 1.4 and 0.6 <= rh <= 1.4:
        return False
    return None


def direction_vote(mapped: Mapping[int, str], si_mm: Mapping[int, float]) -> float | None:
    """Agreement between a scheme's level order and the anatomy.

    Parameters
    ----------
    mapped : mapping of int to str
        Label to level.
    si_mm : mapping of int to float
        Label to world z (RAS, mm) of its centroid.

    Returns
    -------
    float or None
        The fraction of label pairs (of different levels and different
        heights) whose superior-inferior order agrees with the scheme's
        cranio-caudal order (1.0 = all agree, 0.0 = exactly reversed), or None
        when no such pair exists.
    """
    pts = [(level_index(lev), float(si_mm[lab])) for lab, lev in mapped.items() if lab in si_mm]
    pairs = agree = 0
    for a in range(len(pts)):
        for b in range(a + 1, len(pts)):
            if pts[a][0] == pts[b][0] or pts[a][1] == pts[b][1]:
                continue
            pairs += 1
            # the cranial level (smaller index) must be superior (larger RAS z)
            agree += (pts[a][0] < pts[b][0]) == (pts[a][1] > pts[b][1])
    return None if pairs == 0 else agree / pairs


def _spearman(x: list[float], y: list[float]) -> float:
    rx = np.argsort(np.argsort(x)).astype(np.float64)
    ry = np.argsort(np.argsort(y)).astype(np.float64)
    rx -= rx.mean()
    ry -= ry.mean()
    den = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else 0.0


#: Fewest size-checked levels for the caudal growth trend to be judged, and the rank correlation
#: (level order vs volume) at or below which sizes "shrink caudally".
TREND_MIN_LEVELS = 5
TREND_RHO = -0.5


@dataclass(frozen=True)
class LevelCheck:
    """The anatomy's verdict on the levels a scheme gives a mask (:func:`check_levels`).

    Parameters
    ----------
    status : {"ok", "inferred", "contradicted", "not checked"}
        ``inferred``: the levels were not given by the labels but counted
        from an anatomical anchor (the sacrum); the first ``evidence`` says how.
    findings : tuple of str
        Why it is contradicted (empty otherwise).
    evidence : tuple of str
        What was checked and agreed.
    """

    status: str
    findings: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()

    @property
    def column(self) -> str:
        """The ``level_check`` value: ``ok``, ``inferred: ...``, ``contradicted: ...``, ``not checked``."""
        if self.status == "contradicted":
            return "contradicted: " + "; ".join(self.findings)
        if self.status == "inferred" and self.evidence:
            return "inferred: " + self.evidence[0]
        return self.status


def check_levels(mapped: Mapping[int, str], shapes: Mapping[int, LabelShape]) -> LevelCheck:
    """Check a label -> level assignment against the anatomy of the mask.

    Parameters
    ----------
    mapped : mapping of int to str
        The vertebral labels of the mask and their levels.
    shapes : mapping of int to LabelShape
        :func:`label_shapes` of the mask.

    Returns
    -------
    LevelCheck
        ``contradicted`` when any check fails: (1) order -- fewer than
        :data:`ANATOMY_AGREEMENT` of label pairs have the cranial level more
        superior; (2) size -- more levels have the size of another region than
        of their own (:func:`size_verdict`); (3) trend -- with at least
        :data:`TREND_MIN_LEVELS` size-checked levels (L5 and L6 left out),
        volume falls caudally (Spearman rho <= :data:`TREND_RHO`). ``ok`` when at least one check
        could be made and none failed; ``not checked`` otherwise.
    """
    have = {lab: lev for lab, lev in mapped.items() if lab in shapes}
    findings: list[str] = []
    evidence: list[str] = []
    vote = direction_vote(have, {lab: shapes[lab].si_mm for lab in have})
    if vote is not None:
        if vote < ANATOMY_AGREEMENT:
            findings.append(
                f"label order runs against the anatomy ({vote:.0%} of pairs cranial-above-caudal)"
            )
        else:
            evidence.append(f"{vote:.0%} of label pairs in cranio-caudal order")
    by_level: dict[str, list[LabelShape]] = {}
    for lab, lev in have.items():
        by_level.setdefault(lev, []).append(shapes[lab])
    levels = {lv: merge_shapes(v) for lv, v in by_level.items()}
    sv = size_verdict(levels)
    if sv.contradicted:
        heights = level_heights(levels)
        shown = ", ".join(
            f"{lv} {heights[lv]:.0f} mm / {levels[lv].volume_mm3 / 1000:.0f} cm3 "
            f"({'/'.join(sorted(sv.fits[lv]))} size)"
            for lv in sv.inconsistent[:4]
        )
        findings.append(f"vertebra sizes do not fit their regions: {shown}")
    elif sv.consistent:
        evidence.append(f"sizes of {len(sv.consistent)} levels fit their regions")
    # L5 (and L6) are often smaller than L4 (Zhou et al. 2000): left out of the trend
    checked = [lv for lv in sorted(levels, key=level_index) if lv in sv.fits and lv not in ("L5", "L6")]
    if len(checked) >= TREND_MIN_LEVELS:
        rho = _spearman([float(level_index(lv)) for lv in checked], [levels[lv].volume_mm3 for lv in checked])
        if rho <= TREND_RHO:
            findings.append(f"vertebral bodies shrink caudally (rank correlation {rho:.2f})")
        else:
            evidence.append(f"sizes grow caudally (rank correlation {rho:.2f})")
    if findings:
        return LevelCheck("contradicted", tuple(findings), tuple(evidence))
    if evidence:
        return LevelCheck("ok", (), tuple(evidence))
    return LevelCheck("not checked")
