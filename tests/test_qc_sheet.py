"""The QC sheet (``qc/<id>.png``): decoded back, it shows every lesion slice and every flag's reason."""

from __future__ import annotations

import io
import warnings

import numpy as np

import spinemri
from spinemri import Volume
from spinemri.errors import SpinemriWarning
from spinemri.report import qc, qc_sheet


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _red(pic: np.ndarray) -> np.ndarray:
    return (pic[..., 0] > 200) & (pic[..., 1] < 120) & (pic[..., 2] < 120)


def _case(lesion_slice: int = 1, first: int = 1, last: int = 8) -> tuple[Volume, np.ndarray, Volume]:
    # identity RAS affine: axis 0 is left-right (index 0 = the patient's left), sagittal plane (j, k)
    shape = (9, 40, 60)
    img = np.full(shape, 100.0)
    vert = np.zeros(shape, np.uint8)
    vert[first:last, 10:30, 5:25] = 2  # caudal vertebra
    vert[1:8, 10:30, 35:55] = 1  # cranial vertebra (id 1 = cranial)
    img[vert > 0] = 300.0
    les = np.zeros(shape, np.uint8)
    les[lesion_slice, 11:17, 40:48] = 1  # in vertebra 1, on one slice only
    img[les > 0] = 900.0
    aff = np.eye(4)
    return Volume(img, aff), vert, Volume(les, aff)


def test_sheet_shows_a_lesion_off_the_mid_sagittal_slice() -> None:
    image, vert, lesions = _case(lesion_slice=1)  # the spine's centre is slice 4
    overview = _decode(qc.render_qc_png(image, vert, ["T11", "T12"], lesions))
    assert not _red(overview[qc.MARGIN_TOP :, qc.MARGIN_LEFT + 140 :]).any()  # the old picture misses it
    sheet = qc_sheet.render_qc_sheet(image, vert, ["T11", "T12"], lesions, title="P01", method="robust")
    pic = _decode(sheet.png)
    assert [s for s, _ in sheet.slices] == [1]  # exactly the slices holding lesion voxels
    x0, y0, x1, y1 = sheet.slices[0][1]
    thumb = pic[y0:y1, x0:x1]
    rows, cols = np.nonzero(_red(thumb))
    assert rows.size > 20
    # the lesion sits where it is: j 11..16 (anterior is left, j = 40 mm is column 0), k 40..47 (up)
    h, w = thumb.shape[:2]
    assert 0.5 < (40 - cols.mean() / w * 40) / 14.0 < 1.5 and 0.6 < (60 - rows.mean() / h * 60) / 44.0 < 1.4
    # one crop, of the involved level, on that slice, red inside
    assert [(lev, s) for lev, s, _, _ in sheet.crops] == [("T11", 1)]
    cx0, cy0, cx1, cy1 = sheet.crops[0][3]
    assert _red(pic[cy0:cy1, cx0:cx1]).mean() > 0.05
    assert not sheet.flag_lines  # vertebrae stop short of every face


def _text_pixels(text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (900, 20), "white")
    ImageDraw.Draw(im).text((0, 0), text, fill=(150, 60, 0), font=qc._font(12))
    return np.asarray(im).astype(int)


def test_sheet_names_the_border_a_truncated_vertebra_touches() -> None:
    image, vert, lesions = _case(first=0)  # T12 reaches slice 0, the left edge
    reasons = qc_sheet.truncation_reasons(image, vert, ["T11", "T12"])
    assert reasons == {"T12": ["touches the left edge of the slab (slice 0)"]}
    sheet = qc_sheet.render_qc_sheet(image, vert, ["T11", "T12"], lesions)
    line = "T12: touches the left edge of the slab (slice 0)"
    assert sheet.flag_lines[0][0] == line
    # the text is drawn where the sheet says: its pixels match the same text rendered alone
    pic = _decode(sheet.png)
    x, y = sheet.flag_lines[0][1]
    ref = _text_pixels(line)
    ink = (ref < 200).any(axis=2)
    cols = np.flatnonzero(ink.any(axis=0))
    got = pic[y : y + 16, x : x + cols[-1] + 1]  # the next line starts 17 pixels below
    assert ink[:, : cols[-1] + 1].sum() > 100
    assert np.array_equal(got, ref[:16, : cols[-1] + 1])
    # the right edge and the inferior edge, named from the affine
    vert2 = vert.copy()
    vert2[8, 10:30, 35:55] = 1
    vert2[3:6, 10:30, 0:5] = 2
    r2 = qc_sheet.truncation_reasons(image, vert2, ["T11", "T12"])
    assert r2["T11"] == ["touches the right edge of the slab (slice 8)"]
    assert "touches the inferior edge of the image (array axis 2, index 0)" in r2["T12"]


def test_truncation_reasons_agree_with_the_truncated_column() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, mask, _ = spinemri.make_phantom(seed=2, rows=128, cols=64, n_slices=7, first_level="L1")
        m = spinemri.measure(img, mask, scheme="verse")
    vid, levels = qc_sheet.measurement_vertebra_ids(mask, m)
    reasons = qc_sheet.truncation_reasons(img, vid, levels)
    assert set(reasons) == set(m.vertebrae.loc[m.vertebrae["truncated"], "level"])
    sheet = qc_sheet.measurement_qc_sheet(img, mask, m)
    les_slices = np.flatnonzero(np.count_nonzero(np.asarray(m.lesion_mask.data), axis=(0, 1)))
    assert [s for s, _ in sheet.slices] == les_slices.tolist()[: qc_sheet.MAX_SLICES]
    pic = _decode(sheet.png)
    for _, (x0, y0, x1, y1) in sheet.slices:
        assert _red(pic[y0:y1, x0:x1]).any()
    assert sorted(lev for lev, _, _, _ in sheet.crops) == sorted(
        m.vertebrae.loc[m.vertebrae["lesion_voxels"] > 0, "level"]
    )
