"""The per-patient QC sheet: every lesion, every flag and its reason, on one PNG (``qc/<id>.png``).

One mid-sagittal slice hides lesions that lie off it, and a vertebra flagged
``truncated`` because it touches the left or right edge of the slab looks whole
on it. The sheet shows, top to bottom:

1. a header: patient id and burden, the threshold method, the colour legend;
2. the mid-sagittal overview of :func:`spinemri.report.qc.render_qc_image`
   (flagged level names in orange) and, beside it, the list of flags with their
   reason (``"L5: touches the left edge of the slab (slice 0)"``) and one line
   per involved level (lesion voxels, share of the vertebra, slices holding them);
3. every sagittal slice that holds lesion voxels (at most :data:`MAX_SLICES`,
   evenly chosen, when there are more), on one common grey window, with the
   outlines, lesions and level names, and one scale bar;
4. a crop of each involved level on its slice with the most lesion voxels,
   enlarged, with its own scale bar.

Drawn with Pillow on the pixel grid (no plotting library), so it is safe and
fast in worker processes.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..volume import Volume
from ._raster import (
    LabelLookup,
    as_ids,
    axis_slice,
    blend,
    cut_slice,
    grey,
    levels_text,
    load_font,
    outline,
    round_length,
    volume_window,
)
from .qc import (
    FLAG_RGB,
    LABEL_RGB,
    LESION_ALPHA,
    LESION_RGB,
    OUTLINE_ALPHA,
    OUTLINE_RGB,
    render_qc_image,
    sagittal_view,
)

__all__ = [
    "MAX_SLICES",
    "QcSheet",
    "truncation_reasons",
    "render_qc_sheet",
    "measurement_vertebra_ids",
    "measurement_vertebra_lookup",
    "method_text",
    "measurement_flags",
    "measurement_qc_sheet",
]

#: Most sagittal slices shown in the lesion montage (evenly chosen among those with lesions).
MAX_SLICES = 24
#: Width of the sheet (pixels), of a montage thumbnail and of the larger side of a level crop.
SHEET_WIDTH, THUMB_WIDTH, THUMB_MAX_HEIGHT, CROP_SIZE = 1240, 190, 320, 170
_PAD, _GAP = 14, 10
_SIDE = {0: ("left", "right"), 1: ("posterior", "anterior"), 2: ("inferior", "superior")}


@dataclass(frozen=True)
class QcSheet:
    """A rendered QC sheet and where its parts are (pixel boxes ``(x0, y0, x1, y1)``).

    Parameters
    ----------
    png : bytes
        The PNG file's content.
    slices : tuple of (int, tuple of 4 int)
        Sagittal slice index (along ``lr_axis``) and box of each montage thumbnail.
    crops : tuple of (str, int, int, tuple of 4 int)
        Level, slice index, vertebra id and box of each involved level's crop.
    flag_lines : tuple of (str, tuple of 2 int)
        Each line of the flag list and the top-left corner where it is drawn
        (font :func:`spinemri.report.qc.load_font` of size 12).
    """

    png: bytes
    slices: tuple[tuple[int, tuple[int, int, int, int]], ...]
    crops: tuple[tuple[str, int, int, tuple[int, int, int, int]], ...]
    flag_lines: tuple[tuple[str, tuple[int, int]], ...]


def _face_name(volume: Volume, axis: int, last: bool) -> str:
    """Anatomical side (``left``, ``anterior``, ...) of the first or last index along ``axis``."""
    dirs = volume.affine[:3, axis] / max(float(np.linalg.norm(volume.affine[:3, axis])), 1e-12)
    world = int(np.argmax(np.abs(dirs)))
    neg, pos = _SIDE[world]
    first_is_neg = dirs[world] > 0  # index grows towards + (right, anterior, superior)
    return (pos if first_is_neg else neg) if last else (neg if first_is_neg else pos)


def truncation_reasons(
    volume: Volume, vertebrae: np.ndarray | LabelLookup, levels: Sequence[str]
) -> dict[str, list[str]]:
    """Why each truncated vertebra is truncated: the image faces it touches, named anatomically.

    The rule of the ``truncated`` column (:func:`spinemri.metrics.compute_metrics`): a
    vertebra with a voxel on one of the six faces of the image.

    Parameters
    ----------
    volume : Volume of shape (I, J, K)
        The image (its affine names the faces; its ``lr_axis`` is the slab axis).
    vertebrae : ndarray of int, shape (I, J, K), or LabelLookup
        Vertebra ids ``1..n`` (``levels[v - 1]`` names id ``v``), 0 elsewhere.
    levels : sequence of str
        Level names by vertebra id.

    Returns
    -------
    dict of str to list of str
        Level -> reasons, cranial to caudal, e.g. ``"touches the left edge of the slab
        (slice 0)"`` or ``"touches the inferior edge of the image (array axis 2, index 0)"``;
        only truncated levels appear.
    """
    vert = as_ids(vertebrae)
    out: dict[str, list[str]] = {}
    lr = volume.lr_axis
    for ax in range(3):
        n = vert.shape[ax]
        for last in (False, True):
            idx = n - 1 if last else 0
            ids = np.unique(axis_slice(vert, ax, idx))
            side = _face_name(volume, ax, last)
            if ax == lr:
                why = f"touches the {side} edge of the slab (slice {idx})"
            else:
                why = f"touches the {side} edge of the image (array axis {ax}, index {idx})"
            for v in ids[ids > 0]:
                out.setdefault(levels[int(v) - 1], []).append(why)
    order = {lev: i for i, lev in enumerate(levels)}
    return dict(sorted(out.items(), key=lambda kv: order[kv[0]]))


def _panel(
    img2: np.ndarray,
    vert2: np.ndarray,
    les2: np.ndarray,
    scale_rc: tuple[float, float],
    window: tuple[float, float],
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """RGB display array ``(h, w, 3)`` of a cut slice (nearest neighbour) and its vertebra ids."""
    h, w = img2.shape
    out_h, out_w = size
    ri = np.minimum((np.arange(out_h) + 0.5) * h / out_h, h - 1).astype(np.intp)
    ci = np.minimum((np.arange(out_w) + 0.5) * w / out_w, w - 1).astype(np.intp)
    lo, hi = window
    rgb = np.repeat(grey(img2[ri][:, ci], lo, hi)[:, :, None], 3, axis=2)
    blend(rgb, les2[ri][:, ci], LESION_RGB, LESION_ALPHA)
    vert_d = vert2[ri][:, ci]
    blend(rgb, outline(vert_d), OUTLINE_RGB, OUTLINE_ALPHA)
    return rgb, vert_d


def _names(draw: Any, vert_d: np.ndarray, x0: int, y0: int, levels: Sequence[str], flagged: set[str]) -> None:
    """Each level's name just anterior (left) of its vertebra, on a dark box."""
    font = load_font(10)
    rows, cols = np.nonzero(vert_d)
    ids = vert_d[rows, cols]
    for v in np.unique(ids):
        sel = ids == v
        x = max(x0 + int(cols[sel].min()) - 3, x0 + 18)
        y = y0 + float(rows[sel].mean())
        name = levels[int(v) - 1]
        box = draw.textbbox((x, y), name, font=font, anchor="rm")
        draw.rectangle((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), fill=(0, 0, 0))
        draw.text((x, y), name, fill=FLAG_RGB if name in flagged else LABEL_RGB, font=font, anchor="rm")


def _scale_bar(draw: Any, x: int, y: int, px_per_mm: float, max_px: float, colour: Any = "black") -> None:
    bar_mm = round_length(max_px / px_per_mm)
    bar_px = int(round(bar_mm * px_per_mm))
    draw.line((x, y, x + bar_px, y), fill=colour, width=3)
    draw.text((x + bar_px + 5, y), f"{bar_mm:g} mm", fill=colour, font=load_font(11), anchor="lm")


def render_qc_sheet(
    image: Volume,
    vertebrae: np.ndarray | LabelLookup,
    levels: Sequence[str],
    lesion_mask: Volume,
    *,
    title: str = "",
    method: str = "",
    extra_flags: Sequence[str] = (),
    dpi: int = 110,
) -> QcSheet:
    """Render the QC sheet of one patient (no file written; safe in worker processes).

    Parameters
    ----------
    image : Volume of shape (I, J, K)
        The image.
    vertebrae : ndarray of int, shape (I, J, K), or LabelLookup
        Vertebra ids ``1..n`` (``levels[v - 1]`` names id ``v``, cranial first), 0 elsewhere; or
        a :class:`~spinemri.report._raster.LabelLookup` giving them slice by slice.
    levels : sequence of str
        Level names by vertebra id.
    lesion_mask : Volume
        Lesion ids (>0 = lesion) on the image grid.
    title : str, default ""
        First header line (patient id and burden).
    method : str, default ""
        Second header line: the threshold method and its parameters.
    extra_flags : sequence of str, default ()
        Further flag lines (level check, plausibility), drawn after the truncation reasons.
    dpi : int, default 110
        Written as the PNG's resolution.

    Returns
    -------
    QcSheet
        The PNG and the boxes of its thumbnails, crops and flag lines.
    """
    from PIL import Image, ImageDraw

    vert = as_ids(vertebrae)
    lesions = np.asarray(lesion_mask.data)  # > 0 = lesion; thresholded slice by slice, never whole
    lr = image.lr_axis
    n_lr = image.shape[lr]
    reasons = truncation_reasons(image, vert, levels)
    flagged = set(reasons)
    flag_text = [f"{lev}: {why}" for lev, whys in reasons.items() for why in whys]
    flag_text += list(extra_flags)
    if reasons:
        flag_text.append("(truncated: measured only inside the image; volume and ratios may be biased)")

    # --- per involved vertebra: lesion voxels and the slices holding them (one slice at a time)
    n_v = len(levels)
    per_slice = np.zeros((n_v + 1, n_lr), np.int64)
    vert_vox = np.zeros(n_v + 1, np.int64)
    les_per_slice = np.zeros(n_lr, np.int64)
    for k in range(n_lr):
        vert_s, les_s = axis_slice(vert, lr, k), axis_slice(lesions, lr, k) > 0
        per_slice[:, k] = np.bincount(vert_s[les_s].astype(np.intp), minlength=n_v + 1)
        vert_vox += np.bincount(vert_s.ravel().astype(np.intp), minlength=n_v + 1)[: n_v + 1]
        les_per_slice[k] = np.count_nonzero(les_s)
    per_slice[0] = 0
    involved = [v for v in range(1, n_v + 1) if per_slice[v].sum() > 0]
    info = []
    for v in involved:
        held = np.flatnonzero(per_slice[v])
        span = f"slice {held[0]}" if held.size == 1 else f"slices {held[0]}-{held[-1]}"
        info.append(
            f"{levels[v - 1]}: {int(per_slice[v].sum())} lesion voxels "
            f"({100.0 * per_slice[v].sum() / max(int(vert_vox[v]), 1):.1f} % of the vertebra), {span}"
        )
    lesion_slices = np.flatnonzero(les_per_slice)
    shown = lesion_slices
    if shown.size > MAX_SLICES:
        shown = shown[np.unique(np.linspace(0, shown.size - 1, MAX_SLICES).round().astype(int))]

    # --- parts
    overview = render_qc_image(image, vert, levels, lesion_mask, flagged=sorted(flagged))
    window = volume_window(image.data)
    view0 = sagittal_view(image, 0)
    sp = image.spacing
    row_mm, col_mm = sp[view0[1]], sp[view0[2]]
    h0, w0 = cut_slice(vert, view0).shape
    t_scale = THUMB_WIDTH / max(w0 * col_mm, 1e-6)
    if h0 * row_mm * t_scale > THUMB_MAX_HEIGHT:
        t_scale = THUMB_MAX_HEIGHT / (h0 * row_mm)
    tw, th = max(1, int(round(w0 * col_mm * t_scale))), max(1, int(round(h0 * row_mm * t_scale)))
    per_row = max(1, (SHEET_WIDTH - 2 * _PAD + _GAP) // (tw + _GAP))

    normal, bold_font, small = load_font(12), load_font(15), load_font(11)
    col_x = _PAD + overview.width + 16
    wrap = max(30, (SHEET_WIDTH - col_x - _PAD) // 7)
    side_lines: list[tuple[str, str]] = [("head", "Flags")]
    if flag_text:
        for line in flag_text:
            side_lines += [("flag", part) for part in textwrap.wrap(line, wrap, subsequent_indent="   ")]
    else:
        side_lines.append(("text", "none (no vertebra touches the image border)"))
    side_lines.append(("head", "Involved levels"))
    side_lines += [("text", x) for x in info] or [("text", "none")]
    side_lines.append(("text", f"{lesion_slices.size} of {n_lr} sagittal slices hold lesion voxels"))
    side_h = sum(26 if kind == "head" else 17 for kind, _ in side_lines)

    header_h = 84
    y_over = header_h
    y_mont = y_over + max(overview.height, side_h) + 24
    n_rows = (shown.size + per_row - 1) // per_row
    mont_h = 26 + n_rows * (th + 20 + _GAP) + 22 if shown.size else 40
    y_crop = y_mont + mont_h + 10
    crop_per_row = max(1, (SHEET_WIDTH - 2 * _PAD + _GAP) // (CROP_SIZE + _GAP))
    crop_rows = (len(involved) + crop_per_row - 1) // crop_per_row
    crop_h = 26 + crop_rows * (CROP_SIZE + 40 + _GAP) if involved else 0
    sheet = Image.new("RGB", (SHEET_WIDTH, y_crop + crop_h + _PAD), "white")
    draw = ImageDraw.Draw(sheet)

    # --- header: title, method, legend
    draw.text((_PAD, 10), title or "QC sheet", fill="black", font=bold_font)
    draw.text(
        (_PAD, 32), f"threshold: {method}" if method else "threshold: (not given)", fill="black", font=normal
    )
    lx, ly = _PAD, 56
    for kind, colour, label in (
        ("fill", LESION_RGB, "lesion voxels"),
        ("line", OUTLINE_RGB, "vertebra outline"),
        ("text", LABEL_RGB, "level name"),
        ("text", FLAG_RGB, "flagged level (see Flags)"),
    ):
        if kind == "fill":
            draw.rectangle((lx, ly, lx + 18, ly + 12), fill=colour)
        elif kind == "line":
            draw.rectangle((lx, ly, lx + 18, ly + 12), fill=(0, 0, 0))
            draw.line((lx + 2, ly + 6, lx + 16, ly + 6), fill=colour, width=2)
        else:
            draw.rectangle((lx, ly, lx + 18, ly + 12), fill=(0, 0, 0))
            draw.text((lx + 9, ly + 6), "L", fill=colour, font=small, anchor="mm")
        draw.text((lx + 24, ly + 6), label, fill="black", font=small, anchor="lm")
        lx += 34 + int(draw.textlength(label, font=small)) + 18
    draw.text((lx, ly + 6), "superior up, anterior left", fill=(90, 90, 90), font=small, anchor="lm")

    # --- overview and the flag / involvement column
    sheet.paste(overview, (_PAD, y_over))
    del overview  # its canvas (~4 MB at 640 pixels wide) is not held while the montage is drawn and coded
    y = y_over + 8
    flag_boxes: list[tuple[str, tuple[int, int]]] = []
    for kind, text in side_lines:
        if kind == "head":
            y += 4
            draw.text((col_x, y), text, fill="black", font=bold_font)
            y += 22
            continue
        ink: Any = (150, 60, 0) if kind == "flag" else "black"
        draw.text((col_x, y), text, fill=ink, font=normal)
        if kind == "flag":
            flag_boxes.append((text, (col_x, y)))
        y += 17

    # --- montage of the slices with lesion voxels
    y = y_mont
    head = f"Sagittal slices with lesion voxels: {lesion_slices.size} of {n_lr}"
    if shown.size < lesion_slices.size:
        head += f" ({shown.size} shown, evenly spaced)"
    head += "; one grey window for all" if shown.size else " (no lesion)"
    draw.text((_PAD, y), head, fill="black", font=bold_font)
    y += 26
    slice_boxes: list[tuple[int, tuple[int, int, int, int]]] = []
    for n, s in enumerate(shown):
        view = sagittal_view(image, int(s))
        rgb, vert_d = _panel(
            cut_slice(image.data, view),
            cut_slice(vert, view),
            cut_slice(lesions, view) > 0,
            (row_mm, col_mm),
            window,
            (th, tw),
        )
        x = _PAD + (n % per_row) * (tw + _GAP)
        yy = y + (n // per_row) * (th + 20 + _GAP)
        levs = [levels[v - 1] for v in involved if per_slice[v, s] > 0]
        draw.text((x, yy), f"slice {s}: {', '.join(levs)}", fill="black", font=small)
        sheet.paste(Image.fromarray(rgb, "RGB"), (x, yy + 16))
        _names(draw, vert_d, x, yy + 16, levels, flagged)
        slice_boxes.append((int(s), (x, yy + 16, x + tw, yy + 16 + th)))
    if shown.size:
        _scale_bar(draw, _PAD, y + n_rows * (th + 20 + _GAP) + 6, t_scale, tw / 3.0)

    # --- crops of the involved levels, each on its slice with the most lesion voxels
    crop_boxes: list[tuple[str, int, int, tuple[int, int, int, int]]] = []
    if involved:
        y = y_crop
        draw.text(
            (_PAD, y),
            "Involved levels, each on its slice with the most lesion voxels",
            fill="black",
            font=bold_font,
        )
        y += 26
        for n, v in enumerate(involved):
            best = int(np.argmax(per_slice[v]))
            view = sagittal_view(image, best)
            img2, vert2 = cut_slice(image.data, view), cut_slice(vert, view)
            les2 = cut_slice(lesions, view) > 0
            rr, cc = np.nonzero(vert2 == v)
            pad_r = max(3, int(0.25 * (rr.max() - rr.min() + 1)))
            pad_c = max(3, int(0.25 * (cc.max() - cc.min() + 1)))
            r0, r1 = max(0, rr.min() - pad_r), min(img2.shape[0], rr.max() + pad_r + 1)
            c0, c1 = max(0, cc.min() - pad_c), min(img2.shape[1], cc.max() + pad_c + 1)
            ext_h, ext_w = (r1 - r0) * row_mm, (c1 - c0) * col_mm
            c_scale = CROP_SIZE / max(ext_h, ext_w, 1e-6)
            ch, cw = max(1, int(round(ext_h * c_scale))), max(1, int(round(ext_w * c_scale)))
            sub = (slice(r0, r1), slice(c0, c1))
            rgb, _ = _panel(img2[sub], vert2[sub], les2[sub], (row_mm, col_mm), window, (ch, cw))
            x = _PAD + (n % crop_per_row) * (CROP_SIZE + _GAP)
            yy = y + (n // crop_per_row) * (CROP_SIZE + 40 + _GAP)
            lev = levels[v - 1]
            draw.text(
                (x, yy), f"{lev}  slice {best}", fill=FLAG_RGB if lev in flagged else "black", font=normal
            )
            sheet.paste(Image.fromarray(rgb, "RGB"), (x, yy + 16))
            crop_boxes.append((lev, best, v, (int(x), int(yy + 16), int(x + cw), int(yy + 16 + ch))))
            _scale_bar(draw, x, yy + 16 + ch + 10, c_scale, cw / 3.0)

    buf = io.BytesIO()
    sheet.save(buf, format="PNG", compress_level=1, dpi=(dpi, dpi))  # 3 is 30 % slower for 10 % less
    return QcSheet(buf.getvalue(), tuple(slice_boxes), tuple(crop_boxes), tuple(flag_boxes))


def measurement_vertebra_ids(mask: Volume, m: Any) -> tuple[np.ndarray, list[str]]:
    """Vertebra ids ``1..n`` (cranial first) and their levels, for the labels ``m`` measured.

    Parameters
    ----------
    mask : Volume
        The vertebral label mask of the measurement.
    m : Measurement
        The measurement (its vertebra table's ``labels`` and its scheme are used).

    Returns
    -------
    ids : ndarray of int, shape of the mask
        Vertebra id of each voxel, 0 elsewhere.
    levels : list of str
        ``levels[id - 1]`` is the level of id ``id``.
    """
    from ..measurement import vertebra_ids

    vid, levels, _ = vertebra_ids(np.asarray(mask.data), _mapped_labels(m))
    return vid, levels


def measurement_vertebra_lookup(mask: Volume, m: Any) -> tuple[np.ndarray | LabelLookup, list[str]]:
    """The ids of :func:`measurement_vertebra_ids` as a :class:`~spinemri.report._raster.LabelLookup`.

    The same values slice by slice, looked up from the mask where a renderer reads them, instead
    of a full-size id volume; the full volume only for labels beyond the dense table's limit.

    Parameters
    ----------
    mask : Volume
        The vertebral label mask of the measurement.
    m : Measurement
        The measurement (its vertebra table's ``labels`` and its scheme are used).

    Returns
    -------
    ids : LabelLookup (or ndarray of int), shape of the mask
        Vertebra id of each voxel, 0 elsewhere.
    levels : list of str
        ``levels[id - 1]`` is the level of id ``id``.
    """
    from ..measurement import DENSE_LABEL_LIMIT, vertebra_lut

    labels = np.asarray(mask.data)
    max_label = int(labels.max()) if labels.size else 0
    if max_label >= DENSE_LABEL_LIMIT or max_label < 0 or labels.dtype.kind not in "iu":
        return measurement_vertebra_ids(mask, m)
    lut, levels, _ = vertebra_lut(_mapped_labels(m), max_label)
    return LabelLookup(labels, lut), levels


def _mapped_labels(m: Any) -> dict[int, str]:
    """The mask labels ``m`` measured, mapped to their levels by its scheme."""
    labels: list[int] = []
    for value in m.vertebrae["labels"]:
        labels.extend(int(x) for x in str(value).split(";") if x)
    mapped, _ = m.scheme.split_labels(labels)
    return dict(mapped)


def method_text(m: Any) -> str:
    """One line naming the threshold method, its parameters and the thresholds used.

    Parameters
    ----------
    m : Measurement
        The measurement (its ``params`` and vertebra table's ``threshold``).

    Returns
    -------
    str
        E.g. ``"robust, k = 3, bright lesions (median + k*1.4826*MAD of the pooled marrow);
        threshold 512.3"``.
    """
    p = m.params
    sign = "+" if p.polarity == "bright" else "−"
    rule = {
        "robust": f"median {sign} k*1.4826*MAD of the pooled marrow",
        "local": f"median {sign} k*1.4826*MAD of the {p.neighbours} neighbouring vertebrae on each side",
        "otsu": "Otsu's threshold of each vertebra",
        "fixed": "fixed intensity",
    }.get(p.method, p.method)
    head = f"{p.method}, k = {p.k:g}" if p.method in ("robust", "local") else str(p.method)
    thr = np.asarray(m.vertebrae["threshold"], dtype=np.float64)
    thr = thr[np.isfinite(thr)]
    if thr.size == 0:
        values = "no threshold"
    elif np.ptp(thr) <= 1e-9 * max(1.0, abs(float(thr[0]))):
        values = f"threshold {float(thr[0]):.4g}"
    else:
        values = f"thresholds {float(thr.min()):.4g}-{float(thr.max()):.4g}"
    return f"{head}, {p.polarity} lesions ({rule}); {values}; min lesion {p.min_lesion_mm3:g} mm3"


def measurement_flags(m: Any) -> list[str]:
    """Flag lines other than truncation: levels whose anatomy check or plausibility is not ``ok``.

    Parameters
    ----------
    m : Measurement
        The measurement (its vertebra table's ``level_check`` and ``plausibility``).

    Returns
    -------
    list of str
        ``"<level>: level check <value>"`` and ``"<level>: plausibility <value>"`` lines.
    """
    out: list[str] = []
    vt = m.vertebrae
    for _, row in vt.iterrows():
        lc = str(row.get("level_check", "") or "")
        if lc and lc not in ("ok", "not checked", "nan"):
            out.append(f"{row['level']}: level check {lc}")
        pl = str(row.get("plausibility", "") or "")
        if pl and pl not in ("ok", "nan"):
            out.append(f"{row['level']}: plausibility {pl}")
    return out


def measurement_qc_sheet(image: Volume, mask: Volume, m: Any, *, dpi: int = 110) -> QcSheet:
    """The QC sheet of a :class:`~spinemri.measurement.Measurement` (``qc/<id>.png``).

    Parameters
    ----------
    image : Volume
        The measured image.
    mask : Volume
        Its vertebral label mask on the image grid.
    m : Measurement
        The measurement of ``image`` with ``mask``.
    dpi : int, default 110
        PNG resolution.

    Returns
    -------
    QcSheet
        From :func:`render_qc_sheet`, titled with the patient id and burden.
    """
    vid, levels = measurement_vertebra_lookup(mask, m)
    row = m.patient.iloc[0]
    title = (
        f"{m.patient_id}: {int(row['n_involved'])}/{int(row['n_vertebrae'])} vertebrae involved "
        f"({levels_text(row['involved_levels'])}), hi_area_ratio {float(row['hi_area_ratio']):.3f}, "
        f"hi_volume_ratio {float(row['hi_volume_ratio']):.3f}"
    )
    return render_qc_sheet(
        image,
        vid,
        levels,
        m.lesion_mask,
        title=title,
        method=method_text(m),
        extra_flags=measurement_flags(m),
        dpi=dpi,
    )
