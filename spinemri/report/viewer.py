"""The interactive case viewer: one self-contained HTML page per patient (``viewer/<id>.html``).

No server and no network: every sagittal slice is embedded as a JPEG
(grey, one window for the whole volume, at its native resolution up to
:data:`MAX_SIDE_PX`), with its vertebra outlines and its lesions as two
transparent palette PNGs, each coded in the letter- and digit-free hexadecimal
:data:`ALPHABET` (the script turns them back into ``data:`` URLs), plus the
level names' positions as JSON; a small inline script draws them on a canvas at
the true aspect ratio (superior up, anterior left, as the QC picture). A slider
(or the arrow keys) scrolls the slices, three
check boxes show or hide the outlines, the lesions and the level names, and the
per-vertebra table below jumps to a level's slice with the most lesion voxels (its
mid-sagittal slice when it has none) on a click. The flags and their reasons are
listed as on the QC sheet.

The page holds the pseudonymous patient id and the measurements, nothing from the
image's headers.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..volume import Volume
from ._raster import LabelLookup, as_ids, centre_index, cut_slice, grey, levels_text, outline, volume_window
from .qc import FLAG_RGB, LESION_ALPHA, LESION_RGB, OUTLINE_RGB, sagittal_view
from .qc_sheet import (
    measurement_flags,
    measurement_vertebra_lookup,
    method_text,
    truncation_reasons,
)

__all__ = [
    "ALPHABET",
    "MAX_SIDE_PX",
    "viewer_href",
    "render_viewer_html",
    "measurement_viewer_html",
    "measurement_viewer_bytes",
]

#: Largest side of an embedded slice (pixels); larger slices are downsampled.
MAX_SIDE_PX = 768
#: Width of the canvas on the page (CSS pixels); the height follows the true aspect ratio.
CANVAS_WIDTH_PX = 560
#: Tallest canvas (CSS pixels): a long spine is shown narrower.
MAX_CANVAS_HEIGHT_PX = 860

#: Vertebra table columns shown (those present), with their headings.
TABLE_COLUMNS = (
    ("level", "level"),
    ("vertebra_volume_mm3", "vertebra mm³"),
    ("lesion_volume_mm3", "lesion mm³"),
    ("lesion_count", "lesions"),
    ("hi_volume_ratio", "hi volume ratio"),
    ("hi_area_ratio", "hi area ratio"),
    ("threshold", "threshold"),
    ("mid_sagittal_index", "mid slice"),
    ("truncated", "truncated"),
    ("level_check", "level check"),
)


def viewer_href(patient_id: str, *, base: str = "../viewer/") -> str:
    """The link to a patient's viewer page, relative to ``OUT/analysis/report.html`` by default.

    Parameters
    ----------
    patient_id : str
        The patient id (made file-name safe with :func:`spinemri.io.ids.safe_id`).
    base : str, default "../viewer/"
        Prefix: the viewer folder as seen from the linking page (``"viewer/"`` from ``OUT``).

    Returns
    -------
    str
        ``base + safe_id(patient_id) + ".html"``, URL-quoted.
    """
    from urllib.parse import quote

    from ..io.ids import safe_id

    return base + quote(safe_id(patient_id)) + ".html"


#: The 16 symbols of the embedded images' hexadecimal code: no letter and no digit, so that no
#: identifier can appear by chance inside the image data (base64 holds every short word somewhere,
#: and the outputs are searched for identifiers byte by byte); none needs escaping in JSON or a script.
ALPHABET = "!#$%()*+,-.:;=?@"
_HEX_TO_ALPHABET = str.maketrans("0123456789abcdef", ALPHABET)


def _pack(data: bytes, mime: str) -> str:
    """``"<mime> <payload>"``: the bytes in :data:`ALPHABET`, two symbols a byte, high nibble first."""
    return f"{mime} " + data.hex().translate(_HEX_TO_ALPHABET)


def _json(value: Any) -> str:
    """Compact JSON, safe inside a ``<script>`` element (``</`` written ``<\\/``)."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def _overlay_png(mask: np.ndarray, rgb: tuple[int, int, int], alpha: float) -> str | None:
    """A palette PNG: index 1 (``rgb`` at ``alpha``) where ``mask``, transparent elsewhere; None if empty."""
    if not mask.any():
        return None
    from PIL import Image

    im = Image.fromarray(mask.astype(np.uint8), "P")
    im.putpalette([0, 0, 0, *rgb])
    buf = io.BytesIO()
    im.save(buf, format="PNG", transparency=bytes([0, int(round(alpha * 255))]), compress_level=6)
    return _pack(buf.getvalue(), "image/png")


def _cell(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "—"
        return f"{v:.4g}" if abs(v) < 100 else f"{v:.1f}" if abs(v) < 1e7 else f"{v:.3e}"
    return html.escape(str(value))


def render_viewer_html(
    image: Volume,
    vertebrae: np.ndarray | LabelLookup,
    levels: Sequence[str],
    lesion_mask: Volume,
    *,
    patient_id: str,
    title: str = "",
    method: str = "",
    table: Any = None,
    extra_flags: Sequence[str] = (),
    jpeg_quality: int = 80,
) -> str:
    """The viewer page of one case as an HTML string (self-contained; nothing written).

    Parameters
    ----------
    image : Volume of shape (I, J, K)
        The image; every sagittal slice along ``lr_axis`` is embedded.
    vertebrae : ndarray of int, shape (I, J, K), or LabelLookup
        Vertebra ids ``1..n`` (``levels[v - 1]`` names id ``v``), 0 elsewhere; or a
        :class:`~spinemri.report._raster.LabelLookup` giving them slice by slice.
    levels : sequence of str
        Level names by vertebra id.
    lesion_mask : Volume
        Lesion ids (>0 = lesion) on the image grid.
    patient_id : str
        The patient id (page title).
    title : str, default ""
        Summary line under the heading.
    method : str, default ""
        The threshold method line.
    table : DataFrame, optional
        The vertebra table (one row per level, ``level`` column); shown with the
        columns of :data:`TABLE_COLUMNS` it has.
    extra_flags : sequence of str, default ()
        Flag lines besides the truncation reasons.
    jpeg_quality : int, default 80
        JPEG quality of the embedded slices (1-95).

    Returns
    -------
    str
        A complete HTML document with inline CSS, data and script.
    """
    parts: list[str] = []
    _write_viewer(
        parts.append,
        image,
        vertebrae,
        levels,
        lesion_mask,
        patient_id=patient_id,
        title=title,
        method=method,
        table=table,
        extra_flags=extra_flags,
        jpeg_quality=jpeg_quality,
    )
    return "".join(parts)


def _write_viewer(
    write: Callable[[str], Any],
    image: Volume,
    vertebrae: np.ndarray | LabelLookup,
    levels: Sequence[str],
    lesion_mask: Volume,
    *,
    patient_id: str,
    title: str = "",
    method: str = "",
    table: Any = None,
    extra_flags: Sequence[str] = (),
    jpeg_quality: int = 80,
) -> None:
    """:func:`render_viewer_html`'s page, handed to ``write`` piece by piece (their concatenation).

    Memory: one sagittal slice at a time (its lesions thresholded on the slice), each slice's
    JSON made as soon as its images are coded and nothing else of it kept, and the page never
    held whole here: the caller's ``write`` joins the pieces (a list, or a UTF-8 buffer).
    """
    from PIL import Image

    vert = as_ids(vertebrae)
    lesions = np.asarray(lesion_mask.data)  # > 0 = lesion; thresholded slice by slice, never whole
    lr = image.lr_axis
    n_lr = image.shape[lr]
    lo, hi = volume_window(image.data)
    view0 = sagittal_view(image, 0)
    sp = image.spacing
    row_mm, col_mm = sp[view0[1]], sp[view0[2]]
    h, w = cut_slice(vert, view0).shape
    f = min(1.0, MAX_SIDE_PX / max(h, w))
    oh, ow = max(1, int(round(h * f))), max(1, int(round(w * f)))
    slices = []
    best = np.zeros((len(levels) + 1, n_lr), np.int64)
    for s in range(n_lr):
        view = sagittal_view(image, s)
        img2, vert2 = cut_slice(image.data, view), cut_slice(vert, view)
        les2 = cut_slice(lesions, view) > 0
        v_ids, v_les = np.unique(vert2[les2], return_counts=True)
        best[v_ids.astype(np.intp), s] = v_les
        g = grey(img2, lo, hi)
        gim = Image.fromarray(np.ascontiguousarray(g), "L")
        edge = outline(vert2)
        if f < 1.0:
            gim = gim.resize((ow, oh), Image.Resampling.BILINEAR)
            ri = np.minimum((np.arange(oh) + 0.5) / f, h - 1).astype(np.intp)
            ci = np.minimum((np.arange(ow) + 0.5) / f, w - 1).astype(np.intp)
            vert2, les2 = vert2[ri][:, ci], les2[ri][:, ci]
            edge = outline(vert2)
        buf = io.BytesIO()
        gim.save(buf, format="JPEG", quality=int(jpeg_quality))
        names = []
        rows, cols = np.nonzero(vert2)
        ids = vert2[rows, cols]
        for v in np.unique(ids):
            sel = ids == v
            names.append([levels[int(v) - 1], round(float(rows[sel].mean()), 1), int(cols[sel].min())])
        # this slice's part of the page's JSON (``json.dumps`` of the whole would hold every slice twice)
        slices.append(
            _json(
                {
                    "img": _pack(buf.getvalue(), "image/jpeg"),
                    "outline": _overlay_png(edge, OUTLINE_RGB, 0.9),
                    "lesion": _overlay_png(les2, LESION_RGB, LESION_ALPHA),
                    "names": names,
                    "lesion_levels": [levels[int(v) - 1] for v in v_ids if v > 0],
                }
            )
        )
        del buf, gim
    best[0] = 0
    centre = centre_index(vert, lr, n_lr)
    lesion_slices = [int(s) for s in np.flatnonzero(best.sum(axis=0))]
    start = centre if centre in lesion_slices or not lesion_slices else lesion_slices[len(lesion_slices) // 2]
    goto: dict[str, int] = {}
    for v, lev in enumerate(levels, start=1):
        goto[lev] = int(np.argmax(best[v])) if best[v].any() else -1
    reasons = truncation_reasons(image, vert, levels)
    flags = [f"{lev}: {why}" for lev, whys in reasons.items() for why in whys] + list(extra_flags)
    # the JSON of {n, start, centre, width, height, aspect, mm_per_px, slices, flagged, lesion_slices},
    # in that order, as json.dumps writes it: the slices' parts between the two halves
    data_head = {
        "n": n_lr,
        "start": int(start),
        "centre": int(centre),
        "width": ow,
        "height": oh,
        "aspect": (h * row_mm) / max(w * col_mm, 1e-9),
        "mm_per_px": col_mm / f,
    }
    data_tail = {"flagged": sorted(reasons), "lesion_slices": lesion_slices}

    rows_html = []
    if table is not None and len(table):
        tcols = [(c, lab) for c, lab in TABLE_COLUMNS if c in table.columns]
        mids = table["mid_sagittal_index"] if "mid_sagittal_index" in table.columns else None
        head = "".join(f"<th>{html.escape(lab)}</th>" for _, lab in tcols)
        for i, (_, row) in enumerate(table.iterrows()):
            lev = str(row["level"])
            target = goto.get(lev, -1)
            if target < 0:
                target = int(mids.iloc[i]) if mids is not None else int(centre)
            cls = " class='inv'" if bool(row.get("involved", False)) else ""
            cells = "".join(f"<td>{_cell(row[c])}</td>" for c, _ in tcols)
            rows_html.append(f"<tr data-slice='{target}' data-level='{html.escape(lev)}'{cls}>{cells}</tr>")
        table_html = (
            f"<table id='vt'><thead><tr>{head}</tr></thead><tbody>{''.join(rows_html)}</tbody></table>"
        )
    else:
        table_html = "<p>No vertebra table.</p>"
    flags_html = (
        "<ul id='flags'>" + "".join(f"<li>{html.escape(x)}</li>" for x in flags) + "</ul>"
        if flags
        else "<p id='flags'>No flags (no vertebra touches the image border).</p>"
    )
    e = html.escape
    flag_css = "#{:02x}{:02x}{:02x}".format(*FLAG_RGB)
    write(
        f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>spinemri viewer — {e(patient_id)}</title>
<style>
body{{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:16px;
color:#1d2733;background:#fff}}
h1{{font-size:1.3em;margin:0 0 4px}}.sub{{color:#5a6776;margin:2px 0}}
#wrap{{display:flex;gap:22px;align-items:flex-start;flex-wrap:wrap}}
#side{{flex:1 1 420px;min-width:420px;overflow-x:auto}}
canvas{{background:#000;border:1px solid #ccd;display:block}}
.ctl{{margin:8px 0}} .ctl label{{margin-right:14px}} input[type=range]{{width:{CANVAS_WIDTH_PX}px}}
table{{border-collapse:collapse;font-size:0.85em;margin-top:10px}}
th,td{{border:1px solid #d5dbe3;padding:3px 7px;text-align:right}}th{{background:#eef2f6}}
td:first-child{{text-align:left;font-weight:bold}} tr{{cursor:pointer}} tr.inv td{{background:#fdecec}}
tr.cur td{{outline:2px solid #3a7bd5}} #flags li{{color:#963c00}}
.legend span{{display:inline-block;width:14px;height:10px;margin:0 4px 0 10px;vertical-align:middle}}
</style></head><body>
<h1>{e(patient_id)}</h1>
<p class="sub">{e(title)}</p><p class="sub">threshold: {e(method) or "(not given)"}</p>
<div id="wrap"><div>
<canvas id="view"></canvas>
<div class="ctl"><input type="range" id="slice" min="0" max="{n_lr - 1}" value="{int(start)}" step="1"
aria-label="sagittal slice"></div>
<div class="ctl" id="where"></div>
<div class="ctl"><label><input type="checkbox" id="show-outline" checked> vertebra outlines</label>
<label><input type="checkbox" id="show-lesion" checked> lesions</label>
<label><input type="checkbox" id="show-names" checked> level names</label></div>
<div class="legend"><span style="background:rgb{LESION_RGB}"></span>lesion
<span style="background:rgb{OUTLINE_RGB}"></span>vertebra outline
<span style="background:#ff0"></span>level <span style="background:{flag_css}"></span>flagged level ·
superior up, anterior left · ←/→ keys change the slice</div>
</div><div id="side">
<h2 style="font-size:1.05em">Flags</h2>{flags_html}
<h2 style="font-size:1.05em">Vertebrae (click a row to go to its slice)</h2>{table_html}
</div></div>
<script type="application/json" id="case-data">"""
    )
    write(_json(data_head)[:-1] + ',"slices":[')
    for n, part in enumerate(slices):
        write("," + part if n else part)
        slices[n] = ""  # written: let the caller's buffer hold it alone
    write("]," + _json(data_tail)[1:])
    write(
        f"""</script>
<script>
(function(){{
const D = JSON.parse(document.getElementById('case-data').textContent);
const cv = document.getElementById('view'), ctx = cv.getContext('2d');
const W = Math.round(Math.min({CANVAS_WIDTH_PX}, {MAX_CANVAS_HEIGHT_PX} / D.aspect));
const H = Math.round(W * D.aspect);
cv.width = W; cv.height = H;
const sx = W / D.width, sy = H / D.height;
const slider = document.getElementById('slice');
const boxes = {{outline: document.getElementById('show-outline'),
  lesion: document.getElementById('show-lesion'), names: document.getElementById('show-names')}};
const ALPHA = '{ALPHABET}', LUT = new Uint8Array(128);
for (let k = 0; k < 16; k++) LUT[ALPHA.charCodeAt(k)] = k;
function unpack(p) {{ const at = p.indexOf(' '), s = p.slice(at + 1); let bin = '';
  for (let k = 0; k < s.length; k += 2)
    bin += String.fromCharCode(LUT[s.charCodeAt(k)] * 16 + LUT[s.charCodeAt(k + 1)]);
  return 'data:' + p.slice(0, at) + ';base64,' + btoa(bin); }}
function load(packed) {{ if (!packed) return Promise.resolve(null); const src = unpack(packed);
  return new Promise(function(ok) {{ const i = new Image(); i.onload = function() {{ ok(i); }};
    i.onerror = function() {{ ok(null); }}; i.src = src; }}); }}
const cache = {{}};
function slice(i) {{ if (!cache[i]) {{ const s = D.slices[i];
  cache[i] = Promise.all([load(s.img), load(s.outline), load(s.lesion)]); }} return cache[i]; }}
let token = 0;
function bar() {{ const mm = [100, 50, 20, 10, 5, 2, 1].find(function(m) {{
    return m / D.mm_per_px * sx <= W / 3; }}) || 1;
  const px = mm / D.mm_per_px * sx; ctx.fillStyle = '#fff'; ctx.fillRect(10, H - 14, px, 3);
  ctx.font = '11px sans-serif'; ctx.fillText(mm + ' mm', 14 + px, H - 9); }}
function draw() {{
  const i = +slider.value, my = ++token;
  slice(i).then(function(layers) {{
    if (my !== token) return;
    ctx.imageSmoothingEnabled = true; ctx.clearRect(0, 0, W, H);
    if (layers[0]) ctx.drawImage(layers[0], 0, 0, W, H);
    ctx.imageSmoothingEnabled = false;
    if (boxes.outline.checked && layers[1]) ctx.drawImage(layers[1], 0, 0, W, H);
    if (boxes.lesion.checked && layers[2]) ctx.drawImage(layers[2], 0, 0, W, H);
    if (boxes.names.checked) {{
      ctx.font = 'bold 11px sans-serif'; ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
      D.slices[i].names.forEach(function(n) {{
        const x = Math.max(n[2] * sx - 3, 20), y = n[1] * sy, tw = ctx.measureText(n[0]).width;
        ctx.fillStyle = '#000'; ctx.fillRect(x - tw - 2, y - 7, tw + 4, 14);
        ctx.fillStyle = D.flagged.indexOf(n[0]) >= 0 ? '{flag_css}' : '#ff0'; ctx.fillText(n[0], x, y); }});
      ctx.textAlign = 'left'; ctx.textBaseline = 'alphabetic';
    }}
    bar();
    const lv = D.slices[i].lesion_levels;
    document.getElementById('where').textContent = 'sagittal slice ' + i + ' of ' + D.n +
      (i === D.centre ? ' (mid-sagittal)' : '') +
      (lv.length ? ' · lesions in ' + lv.join(', ') : ' · no lesion');
    document.body.dataset.slice = String(i); document.body.dataset.ready = '1';
  }});
}}
slider.addEventListener('input', draw);
Object.keys(boxes).forEach(function(k) {{ boxes[k].addEventListener('change', draw); }});
document.addEventListener('keydown', function(ev) {{
  if (ev.target === slider) return;
  const step = (ev.key === 'ArrowRight' || ev.key === 'ArrowUp') ? 1 :
    (ev.key === 'ArrowLeft' || ev.key === 'ArrowDown') ? -1 : 0;
  if (step) {{ slider.value = Math.min(D.n - 1, Math.max(0, +slider.value + step)); draw(); }}
}});
document.querySelectorAll('#vt tbody tr').forEach(function(tr) {{
  tr.addEventListener('click', function() {{
    document.querySelectorAll('#vt tr.cur').forEach(function(r) {{ r.classList.remove('cur'); }});
    tr.classList.add('cur'); slider.value = tr.dataset.slice; draw(); }}); }});
draw();
}})();
</script></body></html>
"""
    )


def _measurement_args(mask: Volume, m: Any) -> tuple[np.ndarray | LabelLookup, list[str], dict[str, Any]]:
    """Vertebra ids (looked up slice by slice), levels and the keyword arguments of ``m``'s viewer page."""
    vid, levels = measurement_vertebra_lookup(mask, m)
    row = m.patient.iloc[0]
    title = (
        f"{int(row['n_involved'])}/{int(row['n_vertebrae'])} vertebrae involved "
        f"({levels_text(row['involved_levels'])}), hi_area_ratio {float(row['hi_area_ratio']):.3f}, "
        f"hi_volume_ratio {float(row['hi_volume_ratio']):.3f}"
    )
    kwargs = {
        "patient_id": str(m.patient_id),
        "title": title,
        "method": method_text(m),
        "table": m.vertebrae,
        "extra_flags": measurement_flags(m),
    }
    return vid, levels, kwargs


def measurement_viewer_html(image: Volume, mask: Volume, m: Any) -> str:
    """The viewer page of a :class:`~spinemri.measurement.Measurement` (``viewer/<id>.html``).

    Parameters
    ----------
    image : Volume
        The measured image.
    mask : Volume
        Its vertebral label mask on the image grid.
    m : Measurement
        The measurement of ``image`` with ``mask``.

    Returns
    -------
    str
        From :func:`render_viewer_html`, with the vertebra table, the method and the flags.
    """
    vid, levels, kwargs = _measurement_args(mask, m)
    return render_viewer_html(image, vid, levels, m.lesion_mask, **kwargs)


def measurement_viewer_bytes(image: Volume, mask: Volume, m: Any) -> bytes:
    """:func:`measurement_viewer_html` encoded in UTF-8, without the page ever held as a ``str``.

    The page's pieces are encoded into one buffer as they are made, so the peak is the
    UTF-8 page once (a ``str`` with its non-ASCII characters takes two bytes a character,
    and encoding it holds both).

    Parameters
    ----------
    image : Volume
        The measured image.
    mask : Volume
        Its vertebral label mask on the image grid.
    m : Measurement
        The measurement of ``image`` with ``mask``.

    Returns
    -------
    bytes
        ``measurement_viewer_html(image, mask, m).encode("utf-8")``, byte for byte.
    """
    vid, levels, kwargs = _measurement_args(mask, m)
    buf = io.BytesIO()

    def write(text: str) -> None:
        buf.write(text.encode("utf-8"))

    _write_viewer(write, image, vid, levels, m.lesion_mask, **kwargs)
    del vid
    return buf.getvalue()
