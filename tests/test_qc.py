"""The QC picture: decoded back, its pixels show the slice, the lesions and the outlines where they are."""

from __future__ import annotations

import io

import numpy as np

from spinemri import Volume
from spinemri.report import qc


def _case() -> tuple[Volume, np.ndarray, Volume]:
    # identity RAS affine: axis 0 is left-right, so the sagittal plane is (j = anterior, k = superior)
    shape = (5, 40, 60)  # (LR, AP, SI)
    img = np.full(shape, 100.0)
    vert = np.zeros(shape, np.uint8)
    vert[:, 10:30, 5:25] = 1  # caudal vertebra (low k = inferior)
    vert[:, 10:30, 35:55] = 2  # cranial vertebra
    img[vert > 0] = 300.0
    les = np.zeros(shape, np.uint8)
    les[:, 11:17, 40:48] = 1  # a lesion in vertebra 2, off-centre (a flip would move it)
    img[les > 0] = 900.0
    aff = np.diag([1.0, 1.0, 1.0, 1.0])  # i -> R, j -> A, k -> S
    return Volume(img, aff), vert, Volume(les, aff)


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_qc_pixels_show_lesion_outline_and_marrow_in_place() -> None:
    image, vert, lesions = _case()
    pic = _decode(qc.render_qc_png(image, vert, ["T12", "T11"], lesions, title="P01"))
    out_w = qc.IMAGE_WIDTH_PX  # 40 mm wide (AP) -> 640 px, so 16 px per mm; 60 mm tall (SI) -> 960 px
    scale = out_w / 40.0
    out_h = int(round(60 * scale))
    assert pic.shape == (qc.MARGIN_TOP + out_h + qc.MARGIN_BOTTOM, qc.MARGIN_LEFT + out_w + qc.MARGIN_RIGHT, 3)

    def at(ap_mm: float, si_mm: float) -> np.ndarray:
        """Pixel of the point ap_mm from the anterior edge and si_mm above the inferior edge."""
        # superior up, anterior left: column grows posteriorly, row grows inferiorly
        col = qc.MARGIN_LEFT + int(ap_mm * scale)
        row = qc.MARGIN_TOP + int((60 - si_mm) * scale)
        return pic[row, col]

    # j increases anteriorly: the anterior edge is j = 40 mm, so a voxel at j is 40 - j from it
    lesion = at(40 - 14.0, 44.0)  # centre of the lesion (j 11..16, k 40..47)
    mirrored = at(14.0, 44.0)  # where a left-right flip of the picture would put it
    marrow = at(40 - 25.0, 15.0)  # inside vertebra 1, no lesion
    outside = at(40 - 35.0, 30.0)  # background, anterior of both vertebrae
    assert lesion[0] > 200 and lesion[1] < 120 and lesion[2] < 120  # red fill over bright lesion
    assert mirrored[0] == mirrored[1] == mirrored[2]  # plain grey marrow there
    upside_down = at(40 - 14.0, 60 - 44.0)  # where an up-down flip would put it (inside vertebra 1)
    assert upside_down[0] == upside_down[1] == upside_down[2]
    assert marrow[0] == marrow[1] == marrow[2] and 0 < marrow[0] < 255  # untouched grey marrow
    assert outside[0] == outside[1] == outside[2] and outside[0] < marrow[0]  # darker background
    # the outline: cyan pixels along vertebra 1's inferior edge (k = 5 -> 5 mm above the bottom)
    edge_row = qc.MARGIN_TOP + int(round((60 - 5) * scale)) - 1
    cols = slice(qc.MARGIN_LEFT + int(11 * scale), qc.MARGIN_LEFT + int(29 * scale))
    band = pic[edge_row - 2 : edge_row + 3, cols]
    cyan = (band[..., 2] > 180) & (band[..., 1] > 150) & (band[..., 0] < 150)
    assert cyan.any(axis=0).mean() > 0.9  # the line runs the vertebra's whole width
    # the two level names are drawn in yellow left of (anterior to) their vertebrae
    left = pic[qc.MARGIN_TOP : qc.MARGIN_TOP + out_h, : qc.MARGIN_LEFT + int(10 * scale)]
    yellow = (left[..., 0] > 200) & (left[..., 1] > 200) & (left[..., 2] < 80)
    rows_with_text = np.flatnonzero(yellow.any(axis=1)) / scale
    assert ((rows_with_text > 60 - 25) & (rows_with_text < 60 - 5)).any()  # next to vertebra 1
    assert ((rows_with_text > 60 - 55) & (rows_with_text < 60 - 35)).any()  # next to vertebra 2


def test_qc_png_is_deterministic_and_records_its_resolution() -> None:
    from PIL import Image

    image, vert, lesions = _case()
    a = qc.render_qc_png(image, vert, ["T12", "T11"], lesions, title="P01", dpi=110)
    assert a == qc.render_qc_png(image, vert, ["T12", "T11"], lesions, title="P01", dpi=110)
    assert round(Image.open(io.BytesIO(a)).info["dpi"][0]) == 110
