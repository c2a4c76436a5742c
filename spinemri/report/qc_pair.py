"""Side-by-side QC of one vertebra at two time points (``qc_change/<patient>_<level>_<from>_<to>.png``).

The two scans of a follow-up lie on different grids (the patient is repositioned, the field of
view and slice count differ), so neither the array slices nor the world planes of the two scans
correspond. Each side is therefore cut **in the vertebra's own frame**
(:func:`spinemri.surveillance.frames.frame_from_moments`: centroid and principal axes of the
level's mask voxels): the plane spanned by the vertebra's superior-inferior and
anterior-posterior axes, through its centroid shifted along its left-right axis to the lesions
(the lesion-weighted centroid of the side with more lesion voxels; the same offset on both
sides). Both sides are sampled at the same millimetres per pixel and centred on the centroid:
superior up, anterior left, as in the QC overlay (:mod:`.qc`).

Drawn per side: the image (trilinear), the level's outline on the plane (cyan), the lesions on
the plane filled in red, and the outline of the lesions *anywhere* in the vertebra (their
projection along its left-right axis) in red, so a lesion off the plane is not missed; pixels
outside the scan's field of view are dark blue. Pillow on the pixel grid, no plotting library.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..errors import InputError, SpinemriError
from ..io.atomic import write_bytes_atomic
from ..io.ids import safe_id
from ..surveillance.frames import frame_from_moments
from ..volume import Volume
from ._raster import blend, load_font, outline, round_length, window_slice
from .change_style import CHANGED_STATUSES, status_rgb
from .qc import LESION_ALPHA, LESION_RGB, OUTLINE_ALPHA, OUTLINE_RGB

__all__ = [
    "PANEL_PX",
    "OUTSIDE_RGB",
    "QcScan",
    "QcPair",
    "CaseInputs",
    "qc_pair_image",
    "qc_pair_png",
    "level_labels",
    "render_change_qc",
]

log = logging.getLogger(__name__)

#: Side of each square panel (pixels); the header and captions add to the height.
PANEL_PX = 340
#: Colour of the panel pixels outside the scan's field of view.
OUTSIDE_RGB = (24, 34, 64)
#: Field of view of a panel: this many times the larger in-plane extent of the vertebra.
FOV_FACTOR = 1.8
_PAD, _HEAD, _FOOT = 14, 58, 78


@dataclass(frozen=True)
class QcScan:
    """One time point of the pair: the volumes and what the captions say.

    Parameters
    ----------
    image : Volume
        The scan.
    mask : Volume
        Its vertebral label mask on the image grid.
    lesion_mask : Volume
        Its lesion mask (lesion ids > 0) on the image grid (``OUT/masks/<key>_lesions.nii.gz``).
    labels : tuple of int
        The mask labels of the level (``labels`` column of vertebrae.csv); empty: the level is
        not in this scan.
    timepoint : str
        The time point's name.
    scan_date : str, default ""
        ISO date of the scan (empty when unknown).
    lesion_volume_mm3 : float or None, default None
        The level's measured lesion volume, for the caption.
    lesion_count : int or None, default None
        The level's number of lesions, for the caption.
    """

    image: Volume
    mask: Volume
    lesion_mask: Volume
    labels: tuple[int, ...]
    timepoint: str
    scan_date: str = ""
    lesion_volume_mm3: float | None = None
    lesion_count: int | None = None


@dataclass(frozen=True)
class QcPair:
    """A rendered pair and where its parts are.

    Parameters
    ----------
    png : bytes
        The PNG file's content.
    panels : tuple of 2 tuples of 4 int
        Pixel box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of the earlier and the later panel.
    mm_per_px : float
        Millimetres per pixel of both panels.
    lr_offset_mm : float
        Offset of the cut plane from the centroid along the vertebra's left-right axis (mm).
    lesion_pixels : tuple of 2 int
        Pixels of each panel showing lesion (on the plane or in the projection outline).
    """

    png: bytes
    panels: tuple[tuple[int, int, int, int], tuple[int, int, int, int]]
    mm_per_px: float
    lr_offset_mm: float
    lesion_pixels: tuple[int, int]


@dataclass(frozen=True)
class _Frame:
    centre: np.ndarray
    si: np.ndarray
    ap: np.ndarray
    lr: np.ndarray
    extent: dict[str, float]


def _world(vol: Volume, ijk: np.ndarray) -> np.ndarray:
    aff = np.asarray(vol.affine, dtype=np.float64)
    return np.asarray(np.asarray(ijk, dtype=np.float64) @ aff[:3, :3].T + aff[:3, 3])


def _frame(vol: Volume, where: np.ndarray) -> _Frame | None:
    ijk = np.argwhere(where)
    if len(ijk) == 0:
        return None
    xyz = _world(vol, ijk)
    lin = np.asarray(vol.affine, dtype=np.float64)[:3, :3]
    cov = np.cov(xyz.T, bias=True) + lin @ lin.T / 12.0 if len(xyz) > 1 else lin @ lin.T / 12.0
    f = frame_from_moments(xyz.mean(axis=0), cov)

    def axis(a: str) -> np.ndarray:
        return np.array([f[f"axis_{a}_{c}"] for c in "xyz"], dtype=np.float64)

    return _Frame(
        xyz.mean(axis=0),
        axis("si"),
        axis("ap"),
        axis("lr"),
        {a: f[f"extent_{a}_mm"] for a in ("si", "ap", "lr")},
    )


def _plane_points(fr: _Frame, offset_lr: float, mm_per_px: float, n: int) -> np.ndarray:
    """World points of an n x n panel: row 0 superior, column 0 anterior, centred on the centroid."""
    d = (n / 2.0 - (np.arange(n) + 0.5)) * mm_per_px
    rows, cols = np.meshgrid(d, d, indexing="ij")
    return np.asarray(
        fr.centre[None, None, :]
        + offset_lr * fr.lr[None, None, :]
        + rows[:, :, None] * fr.si[None, None, :]
        + cols[:, :, None] * fr.ap[None, None, :]
    )


def _index(vol: Volume, pts: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(np.asarray(vol.affine, dtype=np.float64))
    return np.asarray(pts @ inv[:3, :3].T + inv[:3, 3])


def _nearest(data: np.ndarray, ijk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour values at fractional indices, and whether each point lies inside the grid."""
    idx = np.rint(ijk).astype(np.int64)
    shape = np.asarray(data.shape[:3])
    inside = np.all((idx >= 0) & (idx < shape), axis=-1)
    safe = np.where(inside[..., None], idx, 0)
    vals = np.asarray(data)[safe[..., 0], safe[..., 1], safe[..., 2]]
    return np.where(inside, vals, 0), inside


def _linear(data: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    coords = np.moveaxis(ijk, -1, 0)
    return np.asarray(
        map_coordinates(np.asarray(data, dtype=np.float32), coords, order=1, mode="nearest", prefilter=False)
    )


def _lesion_offset(scans: Sequence[tuple[QcScan, _Frame | None, np.ndarray]]) -> float:
    """Left-right offset (mm, vertebra frame) of the lesions of the side with more lesion voxels."""
    best, offset = 0, 0.0
    for scan, fr, vert in scans:
        if fr is None:
            continue
        les = vert & (np.asarray(scan.lesion_mask.data) > 0)
        n = int(np.count_nonzero(les))
        if n > best:
            c = _world(scan.image, np.argwhere(les)).mean(axis=0)
            best = n
            half = fr.extent["lr"] / 2.0
            offset = float(np.clip((c - fr.centre) @ fr.lr, -half, half))
    return offset


def _projection(scan: QcScan, fr: _Frame, where: np.ndarray, mm_per_px: float, n: int) -> np.ndarray:
    """Pixels covered by the voxels ``where`` projected along the frame's left-right axis.

    Each voxel centre is mapped to its panel pixel, then widened by the voxel's footprint on the
    plane (the bounding box of its three edge vectors projected on the frame's SI and AP axes).
    """
    out = np.zeros((n, n), bool)
    ijk = np.argwhere(where)
    if not len(ijk):
        return out
    d = _world(scan.image, ijk) - fr.centre
    rows = np.rint(n / 2.0 - (d @ fr.si) / mm_per_px - 0.5).astype(np.int64)
    cols = np.rint(n / 2.0 - (d @ fr.ap) / mm_per_px - 0.5).astype(np.int64)
    ok = (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
    out[rows[ok], cols[ok]] = True
    edges = np.asarray(scan.image.affine, dtype=np.float64)[:3, :3]
    hr = int(np.ceil(0.5 * np.abs(fr.si @ edges).sum() / mm_per_px))
    hc = int(np.ceil(0.5 * np.abs(fr.ap @ edges).sum() / mm_per_px))
    from scipy.ndimage import binary_dilation

    return np.asarray(binary_dilation(out, structure=np.ones((2 * hr + 1, 2 * hc + 1), bool)))


def _panel(
    scan: QcScan, fr: _Frame | None, vert: np.ndarray, offset: float, mm_per_px: float, n: int
) -> tuple[np.ndarray, int]:
    if fr is None:
        rgb = np.empty((n, n, 3), np.uint8)
        rgb[:] = OUTSIDE_RGB
        return rgb, 0
    pts = _plane_points(fr, offset, mm_per_px, n)
    ijk = _index(scan.image, pts)
    vert_p, inside = _nearest(vert, ijk)
    les_p, _ = _nearest(np.asarray(scan.lesion_mask.data) > 0, ijk)
    vert_p, les_p = vert_p.astype(bool), les_p.astype(bool) & vert_p.astype(bool)
    img = _linear(scan.image.data, ijk)
    sel = inside & np.isfinite(img)
    grey = np.zeros((n, n), np.uint8)
    if sel.any():
        grey[sel] = window_slice(img[sel])
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[~inside] = OUTSIDE_RGB
    # the lesions anywhere in the vertebra: their projection along its left-right axis
    proj = _projection(scan, fr, vert & (np.asarray(scan.lesion_mask.data) > 0), mm_per_px, n)
    blend(rgb, les_p, LESION_RGB, LESION_ALPHA)
    blend(rgb, outline(vert_p.astype(np.uint8)), OUTLINE_RGB, OUTLINE_ALPHA)
    proj_edge = outline(proj.astype(np.uint8)) & ~les_p
    rgb[proj_edge] = LESION_RGB
    return rgb, int(np.count_nonzero(les_p | proj_edge))


def _fmt_volume(v: float | None) -> str:
    if v is None or not math.isfinite(float(v)):
        return "lesion volume —"
    return f"lesion volume {float(v):.0f} mm3"


def qc_pair_image(
    before: QcScan,
    after: QcScan,
    level: str,
    *,
    status: str = "",
    patient_id: str = "",
) -> tuple[Any, QcPair]:
    """The side-by-side picture of one level at two time points (see the module docstring).

    Parameters
    ----------
    before, after : QcScan
        The earlier and the later time point (their own grids).
    level : str
        The level shown (``"L2"``).
    status : str, default ""
        Its status between the two (the header's colour swatch, :mod:`.change_style`).
    patient_id : str, default ""
        For the header.

    Returns
    -------
    image : PIL.Image.Image
        The RGB picture.
    pair : QcPair
        Its PNG and layout.
    """
    from PIL import Image, ImageDraw

    sides: list[tuple[QcScan, _Frame | None, np.ndarray]] = []
    for scan in (before, after):
        vert = (
            np.isin(np.asarray(scan.mask.data), np.asarray(scan.labels, dtype=np.int64))
            if scan.labels
            else None
        )
        if vert is None or not vert.any():
            sides.append((scan, None, np.zeros(scan.mask.shape, bool)))
        else:
            sides.append((scan, _frame(scan.image, vert), vert))
    frames = [fr for _, fr, _ in sides if fr is not None]
    size_mm = max([max(fr.extent["si"], fr.extent["ap"]) for fr in frames] or [40.0]) * FOV_FACTOR
    n = PANEL_PX
    mm_per_px = size_mm / n
    offset = _lesion_offset(sides)
    panels, counts = [], []
    for scan, fr, vert in sides:
        rgb, k = _panel(scan, fr, vert, offset, mm_per_px, n)
        panels.append(rgb)
        counts.append(k)

    width = 3 * _PAD + 2 * n
    height = _HEAD + n + _FOOT
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    small, normal, big = load_font(11), load_font(12), load_font(15)
    boxes = []
    for k, rgb in enumerate(panels):
        x0 = _PAD + k * (n + _PAD)
        canvas.paste(Image.fromarray(rgb, "RGB"), (x0, _HEAD))
        boxes.append((x0, _HEAD, x0 + n, _HEAD + n))
    head = f"{patient_id} · {level}" if patient_id else level
    draw.text((_PAD, 8), head, fill="black", font=big)
    if status:
        tx = _PAD + int(draw.textlength(head, font=big)) + 12
        tw = int(draw.textlength(status, font=normal))
        draw.rectangle((tx, 8, tx + tw + 12, 26), fill=status_rgb(status))
        draw.text((tx + 6, 17), status, fill="white", font=normal, anchor="lm")
    draw.text(
        (_PAD, 34),
        f"each side in the vertebra's own frame, centred on its centroid, plane {offset:+.1f} mm along its "
        f"left-right axis; {mm_per_px:.3f} mm per pixel on both sides",
        fill=(90, 90, 90),
        font=small,
    )
    for k, (scan, fr, _) in enumerate(sides):
        x0, _, x1, y1 = boxes[k]
        when = "earlier" if k == 0 else "later"
        date = f" ({scan.scan_date})" if scan.scan_date and scan.scan_date != scan.timepoint else ""
        count = "" if scan.lesion_count is None else f", {scan.lesion_count} lesion(s)"
        lines = [f"{when}: {scan.timepoint}{date}", f"{_fmt_volume(scan.lesion_volume_mm3)}{count}"]
        if fr is None:
            lines.append(f"{level} is not in this scan")
        draw.multiline_text((x0, y1 + 6), "\n".join(lines), fill="black", font=normal, spacing=3)
        for xy, letter in (((x0 + 3, _HEAD + 3), "S"), ((x0 + 3, y1 - 17), "A"), ((x1 - 14, y1 - 17), "P")):
            draw.rectangle((xy[0], xy[1], xy[0] + 11, xy[1] + 14), fill=(0, 0, 0))
            draw.text((xy[0] + 2, xy[1] + 1), letter, fill="white", font=normal)
    # scale bar (under the later panel) and legend (under the earlier one)
    bar_mm = round_length(size_mm / 3.0)
    bar_px = int(round(bar_mm / mm_per_px))
    bx, by = boxes[1][0], boxes[1][3] + 52
    draw.line((bx, by, bx + bar_px, by), fill="black", width=3)
    draw.text((bx + bar_px + 6, by), f"{bar_mm:g} mm", fill="black", font=small, anchor="lm")
    lx, ly = boxes[0][0], boxes[0][3] + 46
    draw.line((lx, ly + 6, lx + 16, ly + 6), fill=OUTLINE_RGB, width=2)
    draw.text((lx + 20, ly + 6), "vertebra", fill="black", font=small, anchor="lm")
    draw.rectangle((lx + 80, ly + 1, lx + 96, ly + 11), fill=LESION_RGB)
    draw.text((lx + 100, ly + 6), "lesion on the plane", fill="black", font=small, anchor="lm")
    draw.rectangle((lx + 80, ly + 16, lx + 96, ly + 26), outline=LESION_RGB)
    draw.text((lx + 100, ly + 21), "lesion anywhere in the vertebra", fill="black", font=small, anchor="lm")
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", compress_level=3)
    pair = QcPair(
        buf.getvalue(),
        (boxes[0], boxes[1]),
        float(mm_per_px),
        float(offset),
        (counts[0], counts[1]),
    )
    return canvas, pair


def qc_pair_png(
    before: QcScan, after: QcScan, level: str, *, status: str = "", patient_id: str = ""
) -> bytes:
    """PNG bytes of :func:`qc_pair_image`.

    Parameters
    ----------
    before, after, level, status, patient_id
        As for :func:`qc_pair_image`.

    Returns
    -------
    bytes
        The PNG file's content (``3 * 14 + 2 * PANEL_PX`` pixels wide).
    """
    return qc_pair_image(before, after, level, status=status, patient_id=patient_id)[1].png


class CaseInputs(Protocol):
    """Where a measured case's inputs are (:class:`spinemri.io.discover.Case` is one).

    Attributes
    ----------
    image : Path or None
        The image (file or DICOM folder).
    mask : Path or None
        Its vertebral mask.
    key : str
        The case's key in the run (names ``OUT/masks/<key>_lesions.nii.gz``).
    """

    @property
    def image(self) -> Path | None: ...

    @property
    def mask(self) -> Path | None: ...

    @property
    def key(self) -> str: ...


def level_labels(vertebrae: pd.DataFrame, patient_id: str, timepoint: str, level: str) -> tuple[int, ...]:
    """The mask labels of a level at one time point, from vertebrae.csv.

    Parameters
    ----------
    vertebrae : pandas.DataFrame
        vertebrae.csv of every time point (``patient_id``, ``timepoint``, ``level`` and
        ``labels`` (``"20"`` or ``"19;20"``) or ``label``).
    patient_id, timepoint, level : str
        The row to read.

    Returns
    -------
    tuple of int
        The labels (empty when the level is not in that time point's table).

    Raises
    ------
    InputError
        When the table has neither a ``labels`` nor a ``label`` column.
    """
    col = "labels" if "labels" in vertebrae else "label" if "label" in vertebrae else None
    if col is None:
        raise InputError(
            "side-by-side QC: vertebrae.csv has no labels column (the mask labels of each level)"
        )
    sel = vertebrae[
        (vertebrae["patient_id"].astype(str) == str(patient_id))
        & (vertebrae["timepoint"].astype(str) == str(timepoint))
        & (vertebrae["level"].astype(str) == str(level))
    ]
    out: list[int] = []
    for cell in sel[col]:
        for part in str(cell).replace(",", ";").split(";"):
            part = part.strip()
            if part and part.lower() != "nan":
                out.append(int(float(part)))
    return tuple(dict.fromkeys(out))


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _date_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NaT:
        return ""
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return str(v)
    return "" if pd.isna(ts) else ts.strftime("%Y-%m-%d")


def render_change_qc(
    out_dir: str | os.PathLike[str],
    changes: pd.DataFrame,
    cases_index: Mapping[tuple[str, str], CaseInputs],
    *,
    vertebrae: pd.DataFrame | None = None,
    statuses: Iterable[str] = CHANGED_STATUSES,
    folder: str = "qc_change",
    series: str | None = None,
    resample_mask: bool = False,
    failures: list[str] | None = None,
) -> dict[tuple[str, str, str, str], Path]:
    """Write the side-by-side QC of every level whose status changed, re-loading the two cases' inputs.

    For each row of ``changes`` whose status is in ``statuses``: the two time points' image and
    mask (``cases_index``) and lesion masks (``OUT/masks/<key>_lesions.nii.gz``) are loaded
    (each case once per patient), the level's labels read from ``vertebrae``, and
    :func:`qc_pair_png` written to ``OUT/<folder>/<patient>_<level>_<from>_<to>.png``.

    Parameters
    ----------
    out_dir : path-like
        The run's output folder (holds ``masks/`` and, by default, ``vertebrae.csv``).
    changes : pandas.DataFrame
        changes.csv of the cohort.
    cases_index : mapping of (str, str) to CaseInputs
        ``(patient_id, timepoint)`` -> the case (:class:`spinemri.io.discover.Case`).
    vertebrae : pandas.DataFrame, optional
        vertebrae.csv of every time point; read from ``OUT/vertebrae.csv`` when not given.
    statuses : iterable of str, default CHANGED_STATUSES
        The statuses drawn.
    folder : str, default "qc_change"
        Sub-folder of ``out_dir``.
    series : str, optional
        DICOM series choice, as for the run (:func:`spinemri.io.load.load_volume`).
    resample_mask : bool, default False
        As for the run (:func:`spinemri.io.load.load_mask`).
    failures : list of str, optional
        When given, a pair that cannot be drawn (a missing file, an unreadable input) appends
        one line here and the others are still drawn; otherwise its error is raised.

    Returns
    -------
    dict of (str, str, str, str) to Path
        ``(patient_id, level, timepoint_from, timepoint_to)`` -> the PNG written.

    Raises
    ------
    InputError
        ``vertebrae.csv`` missing or without labels; without ``failures``, also a case not in
        ``cases_index`` or a missing lesion mask.
    """
    from ..io.load import load_mask, load_volume

    out = Path(out_dir)
    if vertebrae is None:
        path = out / "vertebrae.csv"
        if not path.is_file():
            raise InputError(f"{path}: not found; the side-by-side QC needs the labels of each level")
        vertebrae = pd.read_csv(path, dtype={"patient_id": str, "timepoint": str, "labels": str})
    want = set(statuses)
    rows = changes[changes["status"].astype(str).isin(want)].copy()
    written: dict[tuple[str, str, str, str], Path] = {}
    if not len(rows):
        return written
    rows["patient_id"] = rows["patient_id"].astype(str)
    cache: dict[str, tuple[Volume, Volume, Volume]] = {}
    current = None

    def load(pid: str, tp: str) -> tuple[Volume, Volume, Volume]:
        case = cases_index.get((pid, tp))
        if case is None or case.image is None or case.mask is None:
            raise InputError(f"side-by-side QC: no inputs known for patient {pid}, time point {tp}")
        if case.key not in cache:
            lesion_path = out / "masks" / f"{safe_id(case.key)}_lesions.nii.gz"
            if not lesion_path.is_file():
                raise InputError(f"{lesion_path}: lesion mask not found (was the case measured in this run?)")
            image = load_volume(case.image, series=series)
            mask = load_mask(case.mask, like=image, resample=resample_mask)
            cache[case.key] = (image, mask, load_volume(lesion_path))
        return cache[case.key]

    for r in rows.sort_values(["patient_id", "timepoint_from"], kind="stable").to_dict("records"):
        pid, level = str(r["patient_id"]), str(r["level"])
        tpf, tpt = str(r["timepoint_from"]), str(r["timepoint_to"])
        if pid != current:
            cache.clear()  # one patient's scans in memory at a time
            current = pid
        try:
            scans = []
            for side, tp in (("from", tpf), ("to", tpt)):
                image, mask, lesions = load(pid, tp)
                count = _finite_or_none(r.get(f"lesion_count_{side}"))
                scans.append(
                    QcScan(
                        image,
                        mask,
                        lesions,
                        level_labels(vertebrae, pid, tp, level),
                        tp,
                        _date_text(r.get(f"scan_date_{side}")),
                        _finite_or_none(r.get(f"lesion_volume_mm3_{side}")),
                        None if count is None else int(count),
                    )
                )
            png = qc_pair_png(scans[0], scans[1], level, status=str(r["status"]), patient_id=pid)
            target = out / folder / f"{safe_id(f'{pid}_{level}_{tpf}_{tpt}')}.png"
            written[(pid, level, tpf, tpt)] = write_bytes_atomic(target, png)
        except (SpinemriError, OSError) as exc:
            if failures is None:
                raise
            text = f"side-by-side QC of {pid} {level} {tpf} -> {tpt} not drawn: {exc}"
            failures.append(text)
            log.warning("%s", text)
    return written
