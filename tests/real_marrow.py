"""Lesions planted into real marrow (docs/validation.md, "Real marrow"): a test helper.

The images are ``../shared/data/real_lumbar_mri_vertebral_bodies`` (six real lumbar MRIs with
vertebral-body masks, 1 mm isotropic, no known metastases). A planted lesion is a sphere whose
partial volume at its boundary is the fraction of each voxel inside it (supersampled ``SUPERSAMPLE``³
points per voxel); it is placed wholly inside the vertebra's mask, so its truth volume is the analytic
``4/3·π·r³``. Nothing here uses spinemri's segmentation or metrics code.

Contrast models (``contrast`` = lesion plateau / vertebra marrow median ``M``):

* ``"multiply"`` (T2 TSE / STIR-like, the ``chu2015_*`` cases): ``I' = I·(1 + f·(c - 1))``, the real
  texture times the contrast factor (``f`` the voxel's lesion fraction).
* ``"add"`` (water-like Dixon, the ``myosegmentum_*`` cases: fatty marrow is dark, water-rich tissue
  bright): a lesion replaces fat with water-rich tissue, whose water signal does not scale with the
  dark marrow's: ``I' = I + f·(c - 1)·M``, the real texture shifted to the plateau ``c·M``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

DATASET = "real_lumbar_mri_vertebral_bodies"
CASES = (
    "chu2015_04",
    "chu2015_10",
    "chu2015_16",
    "myosegmentum_03",
    "myosegmentum_08",
    "myosegmentum_25",
)
#: Points per voxel and axis of the partial-volume fraction.
SUPERSAMPLE = 5
#: Planted positions: the vertebra's centre, near each endplate (array axis 0, superior -> inferior) and
#: near each lateral edge (axis 2, across the body), each as far out as the sphere stays 1 mm inside the mask.
POSITIONS = ("centre", "superior", "inferior", "lateral_low", "lateral_high")


def contrast_model(case: str) -> str:
    """``"add"`` for the water-like Dixon cases, ``"multiply"`` for the T2 TSE ones."""
    return "add" if case.startswith("myosegmentum") else "multiply"


def load_case(folder: Path, case: str) -> tuple[object, object]:
    """Image and mask Volumes of one case (spinemri's loaders: I/O is not under test here)."""
    from spinemri import load_mask, load_volume

    img = load_volume(folder / f"{case}_image.nii.gz")
    return img, load_mask(folder / f"{case}_vertebrae_verse.nii.gz", like=img)


@dataclass(frozen=True)
class Planted:
    """A planted lesion: the new image, its voxel fractions and its truth."""

    image: np.ndarray
    fraction: np.ndarray
    centre: tuple[int, int, int]
    volume_mm3: float
    vertebra_volume_mm3: float


def depth_mm(mask: np.ndarray, label: int) -> np.ndarray:
    """Euclidean distance (mm, 1 mm voxels) of each voxel of ``label`` to the nearest voxel that is not."""
    inside = mask == label
    out = np.zeros(mask.shape, dtype=np.float64)
    if not inside.any():
        return out
    # on the label's bounding box plus one layer: the nearest voxel outside the label is never farther
    box = tuple(slice(int(c.min()), int(c.max()) + 1) for c in np.nonzero(inside))
    out[box] = np.asarray(ndi.distance_transform_edt(np.pad(inside[box], 1)))[1:-1, 1:-1, 1:-1]
    return out


def position(mask: np.ndarray, label: int, radius_mm: float, where: str) -> tuple[int, int, int]:
    """Voxel index of a sphere centre of ``radius_mm`` at ``where`` (:data:`POSITIONS`) inside ``label``.

    The centre is on the line through the vertebra's centroid along the named axis, as far out as its
    depth in the mask is at least ``radius_mm + 1`` (the sphere lies 1 mm inside the mask).
    """
    d = depth_mm(mask, label)
    ok = d >= radius_mm + 1.0
    if not ok.any():
        raise ValueError(f"label {label} has no voxel {radius_mm + 1:g} mm deep")
    c = np.round(np.array(np.nonzero(mask == label)).mean(axis=1)).astype(int)
    if where == "centre":
        pts = np.array(np.nonzero(ok))
        return tuple(int(x) for x in pts[:, np.argmin(((pts - c[:, None]) ** 2).sum(axis=0))])  # type: ignore[return-value]
    axis = 0 if where in ("superior", "inferior") else 2
    line = [slice(int(x), int(x) + 1) for x in c]
    line[axis] = slice(None)
    idx = np.flatnonzero(ok[tuple(line)].ravel())
    if idx.size == 0:  # the centroid's line misses the deep region: take the deep voxel nearest the centroid
        return position(mask, label, radius_mm, "centre")
    k = int(idx.min() if where in ("superior", "lateral_low") else idx.max())
    out = c.copy()
    out[axis] = k
    return tuple(int(x) for x in out)  # type: ignore[return-value]


def sphere_fraction(shape: tuple[int, ...], centre: tuple[int, int, int], radius_mm: float) -> np.ndarray:
    """Fraction of each (1 mm) voxel inside the sphere, from ``SUPERSAMPLE``³ points per voxel."""
    f = np.zeros(shape, dtype=np.float64)
    r = int(np.ceil(radius_mm)) + 1
    lo = [max(c - r, 0) for c in centre]
    hi = [min(c + r + 1, s) for c, s in zip(centre, shape, strict=True)]
    s = SUPERSAMPLE
    offs = (np.arange(s) + 0.5) / s - 0.5
    grids = [np.add.outer(np.arange(a, b) - c, offs).ravel() for a, b, c in zip(lo, hi, centre, strict=True)]
    gi, gj, gk = np.meshgrid(*grids, indexing="ij")
    inside = (gi**2 + gj**2 + gk**2) <= radius_mm**2
    n = [b - a for a, b in zip(lo, hi, strict=True)]
    frac = inside.reshape(n[0], s, n[1], s, n[2], s).mean(axis=(1, 3, 5))
    f[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = frac
    return f


def plant(
    image: np.ndarray, mask: np.ndarray, label: int, radius_mm: float, where: str, contrast: float, model: str
) -> Planted:
    """Plant one sphere of ``radius_mm`` at ``where`` into vertebra ``label`` (module docstring)."""
    centre = position(mask, label, radius_mm, where)
    f = sphere_fraction(image.shape, centre, radius_mm) * (mask == label)
    in_label = mask == label
    marrow = float(np.median(image[in_label]))
    if model not in ("multiply", "add"):
        raise ValueError(f"contrast model {model!r}; expected 'multiply' or 'add'")
    # outside the sphere f = 0 and the image is unchanged: the arithmetic runs on the sphere's box only
    box = tuple(slice(int(c.min()), int(c.max()) + 1) for c in np.nonzero(f > 0))
    img, fb = image[box].astype(np.float64), f[box]
    out = img * (1.0 + fb * (contrast - 1.0)) if model == "multiply" else img + fb * (contrast - 1.0) * marrow
    new = image.copy()
    new[box] = np.clip(np.rint(out), np.iinfo(np.int16).min, np.iinfo(np.int16).max).astype(image.dtype)
    return Planted(new, f, centre, 4.0 / 3.0 * np.pi * radius_mm**3, float(np.count_nonzero(in_label)))


def plant_every_vertebra(
    image: np.ndarray, mask: np.ndarray, radius_mm: float, where: str, contrast: float, model: str
) -> tuple[np.ndarray, list[tuple[int, Planted]]]:
    """One sphere per vertebra (those with a voxel ``radius_mm + 1`` deep), all in one image.

    Each sphere lies 1 mm inside its own vertebra's mask, so spheres of neighbouring vertebrae are
    apart by at least the gap between the masks plus 2 mm and are measured independently.
    """
    out = image
    planted: list[tuple[int, Planted]] = []
    for label in (int(x) for x in np.unique(mask) if x > 0):
        try:
            p = plant(out, mask, label, radius_mm, where, contrast, model)
        except ValueError:  # no voxel that deep
            continue
        out = p.image
        planted.append((label, p))
    return out, planted


def recovered(lesion_ids: np.ndarray, planted: Planted, voxel_mm3: float) -> tuple[bool, float]:
    """Whether a detected lesion overlaps the planted sphere's voxels that are more than half lesion,
    and the volume (mm³) of the detected lesions that do (0 when none)."""
    hit = np.unique(lesion_ids[(planted.fraction > 0.5) & (lesion_ids > 0)])
    if hit.size == 0:
        return False, 0.0
    return True, float(np.count_nonzero(np.isin(lesion_ids, hit))) * voxel_mm3


def volume_bound_mm3(planted: Planted) -> float:
    """The acceptance bound of issue 13 on the volume error: 0.5 % of the vertebra + 20 % of the lesion."""
    return 0.005 * planted.vertebra_volume_mm3 + 0.2 * planted.volume_mm3
