"""Quality-control overlay: the mid-sagittal image with vertebra outlines, level names and lesions.

The slice is the one at the spine's centre along the array axis closest to
left-right (``floor(c + 0.5)``, ``c`` the mean index of all vertebra voxels
along it). It is displayed in radiological sagittal orientation whatever the
array order: superior up, anterior on the left, with the true pixel aspect.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.atomic import write_bytes_atomic
from ..volume import Volume
from ._raster import (
    LabelLookup,
    as_ids,
)
from ._raster import (
    blend as _blend,
)
from ._raster import (
    centre_index as _centre_index,
)
from ._raster import (
    cut_slice as _cut,
)
from ._raster import (
    grey as _grey,
)
from ._raster import (
    load_font as _font,
)
from ._raster import (
    outline as _outline,
)
from ._raster import (
    round_length as _round_length,
)
from ._raster import (
    slice_window as _slice_window,
)
from ._raster import (
    window_slice as _window,
)

if TYPE_CHECKING:
    pass

__all__ = ["sagittal_view", "render_qc_png", "render_qc_image", "save_qc_png", "measurement_qc_png"]


def sagittal_view(volume: Volume, index: int) -> tuple[tuple[slice | int, ...], int, int, bool, bool]:
    """How to cut and orient the sagittal slice ``index`` along ``volume.lr_axis``.

    Parameters
    ----------
    volume : Volume
        The 3-D volume (its affine and spacing give the directions).
    index : int
        Index of the slice along ``volume.lr_axis``.

    Returns
    -------
    tuple
        ``(slicer, row_axis, col_axis, flip_rows, flip_cols)``: rows run
        along the array axis closest to superior-inferior and columns along the
        other in-plane axis; after ``arr = data[slicer]`` (transposed when
        ``row_axis > col_axis``) and the flips, row 0 is the most superior and
        column 0 the most anterior.
    """
    lr = volume.lr_axis
    others = [a for a in range(3) if a != lr]
    dirs = volume.affine[:3, :3] / np.array(volume.spacing)
    row_axis = max(others, key=lambda a: abs(dirs[2, a]))
    col_axis = others[0] if others[1] == row_axis else others[1]
    flip_rows = dirs[2, row_axis] > 0  # index increases superiorly -> reverse so superior is row 0
    flip_cols = dirs[1, col_axis] > 0  # index increases anteriorly -> reverse so anterior is column 0
    slicer: list[slice | int] = [slice(None)] * 3
    slicer[lr] = int(index)
    return tuple(slicer), row_axis, col_axis, bool(flip_rows), bool(flip_cols)


#: Colours (RGB 0-255) and opacity of the overlay.
LESION_RGB, LESION_ALPHA = (255, 38, 26), 0.65
OUTLINE_RGB, OUTLINE_ALPHA = (64, 209, 255), 0.85
LABEL_RGB = (255, 255, 0)
#: Colour of the name of a flagged level (truncated, ...), explained in the QC sheet's flag list.
FLAG_RGB = (255, 150, 0)
#: Width of the image area in pixels (the height follows the true aspect ratio, clipped).
IMAGE_WIDTH_PX = 640
MAX_IMAGE_HEIGHT_PX = 1100
#: Margins around the image (pixels): left (level names beyond the image), top (title), bottom (scale bar).
MARGIN_LEFT, MARGIN_TOP, MARGIN_BOTTOM, MARGIN_RIGHT = 44, 46, 34, 12


def render_qc_png(
    image: Volume,
    vertebrae: np.ndarray,
    levels: Sequence[str],
    lesion_mask: Volume,
    *,
    title: str = "",
    dpi: int = 110,
) -> bytes:
    """The QC overlay as PNG bytes (no file written; safe in worker processes).

    Drawn with Pillow on the pixel grid (no plotting library): the
    windowed slice (1st-99.5th percentile) resampled to its true aspect
    ratio, lesions filled in red, one-pixel vertebra outlines in cyan drawn
    at display resolution, each level's name left of its vertebra
    (anterior side, away from the bright canal), a legend, the A/P/S
    directions, a scale bar and the title.

    Parameters
    ----------
    image : Volume of shape (I, J, K)
        The image; its mid-sagittal slice is shown.
    vertebrae : ndarray of int, shape (I, J, K)
        Vertebra ids ``1..n`` (``levels[v - 1]`` names id ``v``), 0 elsewhere.
    levels : sequence of str
        Level names by vertebra id (``"L1"``, ...), drawn beside each vertebra.
    lesion_mask : Volume
        Lesion ids (>0 = lesion) on the image grid.
    title : str
        Title (patient id, method, summary).
    dpi : int
        Written as the PNG's resolution (pixels per inch); the pixel size
        of the picture does not depend on it.

    Returns
    -------
    bytes
        The PNG file's content (RGB; the image area at its true aspect ratio,
        640 pixels wide unless its height is clipped to 1100, plus margins).
    """
    canvas = render_qc_image(image, vertebrae, levels, lesion_mask, title=title)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", compress_level=3, dpi=(dpi, dpi))  # level 6 doubles the time for 7 % less
    return buf.getvalue()


def render_qc_image(
    image: Volume,
    vertebrae: np.ndarray | LabelLookup,
    levels: Sequence[str],
    lesion_mask: Volume,
    *,
    title: str = "",
    flagged: Sequence[str] = (),
) -> Any:
    """The picture of :func:`render_qc_png` as a Pillow RGB image (not encoded).

    Parameters
    ----------
    image, vertebrae, levels, lesion_mask, title
        As for :func:`render_qc_png`; ``vertebrae`` may also be a
        :class:`~spinemri.report._raster.LabelLookup` of them (read slice by slice).
    flagged : sequence of str, default ()
        Levels whose names are drawn in orange (:data:`FLAG_RGB`) instead of yellow: the
        flagged ones (truncated, ...), explained on the QC sheet.

    Returns
    -------
    PIL.Image.Image
        The RGB picture.
    """
    from PIL import Image, ImageDraw

    vert = as_ids(vertebrae)
    lr = image.lr_axis
    centre = _centre_index(vert, lr, image.shape[lr])
    view = sagittal_view(image, centre)
    img2 = _cut(image.data, view)
    vert2 = _cut(vert, view)
    les2 = _cut(lesion_mask.data, view) > 0
    sp = image.spacing
    row_mm, col_mm = sp[view[1]], sp[view[2]]
    h, w = img2.shape
    # display size: IMAGE_WIDTH_PX wide at the true aspect ratio (height clipped for very tall slices)
    scale = IMAGE_WIDTH_PX / max(w * col_mm, 1e-6)  # display pixels per mm
    out_h = int(round(h * row_mm * scale))
    if out_h > MAX_IMAGE_HEIGHT_PX:
        scale *= MAX_IMAGE_HEIGHT_PX / out_h
        out_h = MAX_IMAGE_HEIGHT_PX
    out_w = max(1, int(round(w * col_mm * scale)))
    out_h = max(1, out_h)
    # nearest-neighbour lookup of the source row / column of every display pixel
    ri = np.minimum((np.arange(out_h) + 0.5) * h / out_h, h - 1).astype(np.intp)
    ci = np.minimum((np.arange(out_w) + 0.5) * w / out_w, w - 1).astype(np.intp)
    if img2.size:  # windowed on the whole slice; grey levels on the slice or on the display, the smaller
        lo, hi = _slice_window(img2)
        gray = _grey(img2, lo, hi)[ri][:, ci] if h * w <= out_h * out_w else _grey(img2[ri][:, ci], lo, hi)
    else:
        gray = _window(img2)[ri][:, ci]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)  # uint8; blends below touch only the masked pixels
    les_d = les2[ri][:, ci]
    _blend(rgb, les_d, LESION_RGB, LESION_ALPHA)
    vert_d = vert2[ri][:, ci]
    _blend(rgb, _outline(vert_d), OUTLINE_RGB, OUTLINE_ALPHA)

    canvas = Image.new(
        "RGB", (MARGIN_LEFT + out_w + MARGIN_RIGHT, MARGIN_TOP + out_h + MARGIN_BOTTOM), "white"
    )
    canvas.paste(Image.fromarray(rgb, "RGB"), (MARGIN_LEFT, MARGIN_TOP))
    draw = ImageDraw.Draw(canvas)
    small, normal = _font(11), _font(12)
    x0, y0 = MARGIN_LEFT, MARGIN_TOP
    # level names, right-aligned just anterior of each vertebra, on a dark box
    rows, cols = np.nonzero(vert_d)
    ids = vert_d[rows, cols]
    for v in np.unique(ids):
        sel = ids == v
        x = x0 + int(cols[sel].min()) - 4
        y = y0 + float(rows[sel].mean())
        name = levels[int(v) - 1]
        box = draw.textbbox((x, y), name, font=small, anchor="rm")
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 1, box[3] + 1), fill=(0, 0, 0))
        draw.text((x, y), name, fill=FLAG_RGB if name in flagged else LABEL_RGB, font=small, anchor="rm")
    # directions
    draw.text((x0 + 4, y0 + out_h - 4), "A", fill="white", font=normal, anchor="ld")
    draw.text((x0 + out_w - 4, y0 + out_h - 4), "P", fill="white", font=normal, anchor="rd")
    draw.text((x0 + out_w // 2, y0 + 3), "S", fill="white", font=normal, anchor="mt")
    # legend (upper left of the image)
    lx, ly = x0 + 6, y0 + 6
    draw.rectangle((lx, ly, lx + 128, ly + 38), fill=(0, 0, 0))
    draw.line((lx + 6, ly + 10, lx + 24, ly + 10), fill=OUTLINE_RGB, width=2)
    draw.text((lx + 30, ly + 10), "vertebra outline", fill="white", font=small, anchor="lm")
    draw.rectangle((lx + 6, ly + 22, lx + 24, ly + 32), fill=LESION_RGB)
    draw.text((lx + 30, ly + 27), "lesion", fill="white", font=small, anchor="lm")
    # scale bar under the image: the largest round length up to a third of the width
    bar_mm = _round_length(out_w / scale / 3.0)
    bar_px = int(round(bar_mm * scale))
    by = y0 + out_h + 12
    draw.line((x0, by, x0 + bar_px, by), fill="black", width=3)
    draw.text((x0 + bar_px + 6, by), f"{bar_mm:g} mm", fill="black", font=small, anchor="lm")
    draw.text(
        (x0 + out_w, by),
        "anterior left, posterior right, superior up",
        fill=(90, 90, 90),
        font=small,
        anchor="rm",
    )
    # title
    head = f"{title}\n" if title else ""
    head += f"sagittal slice {centre} of {image.shape[lr]} (array axis {lr})"
    draw.multiline_text((x0, 6), head, fill="black", font=normal, spacing=3)
    return canvas


def save_qc_png(
    path: str | os.PathLike[str],
    image: Volume,
    vertebrae: np.ndarray,
    levels: Sequence[str],
    lesion_mask: Volume,
    *,
    title: str = "",
    dpi: int = 110,
) -> Path:
    """Write :func:`render_qc_png` to ``path`` atomically; return the path.

    Parameters
    ----------
    path : path-like
        The PNG file to write.
    image, vertebrae, levels, lesion_mask, title, dpi
        As for :func:`render_qc_png`.

    Returns
    -------
    Path
        The file written.
    """
    return write_bytes_atomic(
        path, render_qc_png(image, vertebrae, levels, lesion_mask, title=title, dpi=dpi)
    )


def measurement_qc_png(image: Volume, mask: Volume, m: Any, *, dpi: int = 110) -> bytes:
    """QC sheet PNG bytes for a :class:`~spinemri.measurement.Measurement` of ``image`` with ``mask``.

    The sheet of :func:`spinemri.report.qc_sheet.render_qc_sheet`: the mid-sagittal
    overview of :func:`render_qc_png`, every slice holding lesion voxels, a crop of each
    involved level and the reason of every flag; titled with the patient, the burden and
    the threshold method.

    Parameters
    ----------
    image : Volume
        The measured image.
    mask : Volume
        Its vertebral label mask on the image grid (the scheme's labels).
    m : Measurement
        The measurement of ``image`` with ``mask`` (its vertebra table, scheme,
        patient row, parameters and lesion mask are drawn).
    dpi : int, default 110
        PNG resolution, as for :func:`render_qc_png`.

    Returns
    -------
    bytes
        The PNG of the sheet (``qc/<id>.png``).
    """
    from .qc_sheet import measurement_qc_sheet

    return measurement_qc_sheet(image, mask, m, dpi=dpi).png
