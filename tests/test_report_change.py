"""The report's change section, the per-patient timeline and the side-by-side QC of a changed level.

Truth is written by hand: the tables of the section are built from the statuses they should show,
the timeline's lines are looked for where the data put them (matplotlib's own transform of the
drawn axes, then the decoded PNG's pixels), and the QC pair's lesion is placed at a known offset
from an analytic box vertebra sampled on two different grids.
"""

from __future__ import annotations

import html as html_lib
import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spinemri import Volume
from spinemri.report.change_section import ChangeContext, render_change_section, status_badge
from spinemri.report.change_style import CHANGED_STATUSES, STATUS_COLOURS, status_rgb
from spinemri.report.figures import figure_png
from spinemri.report.html import render_report
from spinemri.report.qc import LESION_RGB, OUTLINE_RGB
from spinemri.report.qc_pair import OUTSIDE_RGB, PANEL_PX, QcScan, qc_pair_image, render_change_qc
from spinemri.report.sections import ReportContext
from spinemri.report.timeline import TIMELINE_DPI, TIMELINE_SIZE_IN, timeline_figure, timeline_png
from spinemri.stats.study import analyze
from tests.test_report_html import cohort


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


# --------------------------------------------------------------------------- hand-built tables

# (patient, level, from, to, status, volume from, volume to): every vertebra status
_ROWS = [
    ("P1", "L1", "tp1", "tp2", "new", 0.0, 600.0),
    ("P1", "L2", "tp1", "tp2", "stable", 1000.0, 1000.0),
    ("P1", "L3", "tp1", "tp2", "resolved", 800.0, 0.0),
    ("P1", "L4", "tp1", "tp2", "indeterminate", 200.0, 1400.0),
    ("P1", "L5", "tp1", "tp2", "uninvolved", 0.0, 0.0),
    ("P1", "L1", "tp2", "tp3", "progressing", 600.0, 1800.0),
    ("P1", "L2", "tp2", "tp3", "regressing", 1000.0, 300.0),
    ("P1", "L3", "tp2", "tp3", "uninvolved", 0.0, 0.0),
    ("P1", "L4", "tp2", "tp3", "stable", 1400.0, 1400.0),
    ("P1", "L5", "tp2", "tp3", "outside_fov", 0.0, math.nan),
    ("P2", "T12", "tp1", "tp2", "not_comparable", 500.0, 900.0),
    ("P2", "L1", "tp1", "tp2", "not_comparable", 0.0, 0.0),
]
_DATES = {"P1": {"tp1": "2024-01-10", "tp2": "2024-04-10", "tp3": "2024-05-20"}, "P2": {"tp1": "", "tp2": ""}}


def _changes() -> pd.DataFrame:
    rows = []
    for pid, lv, a, b, st, va, vb in _ROWS:
        rows.append(
            {
                "patient_id": pid,
                "level": lv,
                "timepoint_from": a,
                "timepoint_to": b,
                "scan_date_from": _DATES[pid][a],
                "scan_date_to": _DATES[pid][b],
                "lesion_volume_mm3_from": va,
                "lesion_volume_mm3_to": vb,
                "lesion_count_from": int(va > 0),
                "lesion_count_to": int(vb > 0) if math.isfinite(vb) else math.nan,
                "status": st,
                "possible_pseudoprogression": st == "indeterminate",
                "present_from": True,
                "present_to": math.isfinite(vb),
            }
        )
    return pd.DataFrame(rows)


def _patient_changes() -> pd.DataFrame:
    base = {
        "n_not_comparable": 0,
        "n_outside_fov": 0,
        "possible_pseudoprogression": False,
        "short_interval": False,
        "level_check": "consistent",
    }
    return pd.DataFrame(
        [
            {
                **base,
                "patient_id": "P1",
                "timepoint_from": "tp1",
                "timepoint_to": "tp2",
                "scan_date_from": "2024-01-10",
                "scan_date_to": "2024-04-10",
                "interval_days": 91.0,
                "delta_n_involved": 0,
                "delta_hi_volume_ratio": 0.0125,
                "delta_vas": 2.0,
                "new_levels": "L1",
                "resolved_levels": "L3",
                "indeterminate_levels": "L4",
                "status": "new",
                "possible_pseudoprogression": True,
            },
            {
                **base,
                "patient_id": "P1",
                "timepoint_from": "tp2",
                "timepoint_to": "tp3",
                "scan_date_from": "2024-04-10",
                "scan_date_to": "2024-05-20",
                "interval_days": 40.0,
                "short_interval": True,
                "delta_n_involved": -1,
                "delta_hi_volume_ratio": 0.004,
                "delta_vas": -1.0,
                "progressing_levels": "L1",
                "status": "progressing",
                "n_outside_fov": 1,
            },
            {
                **base,
                "patient_id": "P2",
                "timepoint_from": "tp1",
                "timepoint_to": "tp2",
                "interval_days": math.nan,
                "delta_n_involved": 0,
                "delta_hi_volume_ratio": math.nan,
                "delta_vas": math.nan,
                "status": "not_comparable",
                "n_not_comparable": 2,
                "level_check": "shifted by -1: the later scan's profile fits one level up",
            },
        ]
    )


_SUMMARY = {
    "level_checks": [
        {
            "patient_id": "P1",
            "timepoint_from": "tp1",
            "timepoint_to": "tp2",
            "verdict": "consistent",
            "shift": 0,
            "reason": "fits",
        },
        {
            "patient_id": "P2",
            "timepoint_from": "tp1",
            "timepoint_to": "tp2",
            "verdict": "shifted",
            "shift": -1,
            "reason": "the later scan's profile fits one level up",
        },
    ],
    "notes": [],
}
_STATS = {
    "delta_correlation": {
        "computable": True, "x": "delta_hi_volume_ratio", "y": "delta_vas", "rho": 0.4321, "p_value": 0.0123,
        "ci_low": 0.1111, "ci_high": 0.6789, "n": 24, "n_patients": 12, "bootstrap_ci_low": 0.0555,
        "bootstrap_ci_high": 0.7222,
    },
    "mixed_model": {
        "computable": False, "formula": "vas ~ hi_volume_ratio + (1 | patient_id)",
        "reason": "2 observations of 2 patients; the model needs >= 3 patients",
    },
}  # fmt: skip


def _context(tmp_path: Path) -> ChangeContext:
    qc = {}
    for pid, lv, a, b, st, *_ in _ROWS:
        if st in CHANGED_STATUSES:
            p = tmp_path / "qc_change" / f"{pid}_{lv}_{a}_{b}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"\x89PNG")
            qc[(pid, lv, a, b)] = p
    tl = tmp_path / "timelines" / "P1.png"
    tl.parent.mkdir(parents=True, exist_ok=True)
    tl.write_bytes(b"\x89PNG")
    return ChangeContext(_changes(), _patient_changes(), _STATS, _SUMMARY, None, {"P1": tl}, qc)


def _section_table(html: str, cls: str) -> list[list[str]]:
    body = re.search(rf"<table class='{cls}'>.*?<tbody>(.*?)</tbody>", html, re.S)
    assert body, cls
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [
        [
            html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
    ]


def test_section_shows_every_status_with_its_count_and_colour(tmp_path: Path) -> None:
    html = render_change_section(_context(tmp_path), tmp_path)
    counts = {r[0]: (int(r[1]), int(r[2])) for r in _section_table(html, "change-status")}
    # written from _ROWS and the three patient rows above
    assert counts == {
        "new": (1, 1),
        "progressing": (1, 1),
        "indeterminate": (1, 0),
        "stable": (2, 0),
        "regressing": (1, 0),
        "resolved": (1, 0),
        "uninvolved": (2, 0),
        "outside fov": (1, 0),
        "not comparable": (2, 1),
    }
    for st, hexc in STATUS_COLOURS.items():
        assert f"background:{hexc}" in html, st
    assert status_badge("new").count("#d62728") == 1


def test_section_lists_guards_with_reasons_and_statistics(tmp_path: Path) -> None:
    html = render_change_section(_context(tmp_path), tmp_path)
    warn = re.search(r"<div class='warn'>(.*?)</div>", html, re.S)
    assert warn
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", warn.group(1)))
    assert "P2 tp1 → tp2: levels shifted by -1 — the later scan's profile fits one level up" in text
    assert "Short interval P1 tp2 → tp3: 40 days" in text
    assert "Possible pseudoprogression P1 L4 tp1 → tp2" in text
    assert "P1 tp1 → tp2: consistent" not in text  # a consistent pair is not a problem
    # Spearman: the numbers as given; MixedLM: the not-computable box with its reason
    assert "ρ = 0.432 (Fisher-z CI 0.111 – 0.679; patient-bootstrap CI 0.056 – 0.722), p = 0.0123" in html
    assert "n = 24 pairs, 12 patients" in html
    assert (
        '<div class="nc"><b>Not computable:</b> 2 observations of 2 patients; '
        "the model needs &gt;= 3 patients" in html
    )


def test_patient_rows_deltas_status_flags_and_relative_qc_links(tmp_path: Path) -> None:
    html = render_change_section(_context(tmp_path), tmp_path)
    rows = _section_table(html, "change-patients")
    assert [r[:8] for r in rows] == [
        ["P1", "tp12024-01-10", "tp22024-04-10", "91", "+0", "+0.0125", "+2", "new"],
        ["P1", "tp22024-04-10", "tp32024-05-20", "40", "-1", "+0.004", "-1", "progressing"],
        ["P2", "tp1", "tp2", "—", "+0", "—", "—", "not comparable"],
    ]
    assert rows[0][8] == "new: L1; indeterminate: L4; resolved: L3"
    assert "possible pseudoprogression" in rows[0][9]
    assert "short interval" in rows[1][9] and "1 level(s) outside the field of view" in rows[1][9]
    assert "level check: shifted by -1" in rows[2][9] and "2 level(s) not comparable" in rows[2][9]
    assert rows[0][10] == "L1 (new), L3 (resolved), L4 (indeterminate)"
    assert rows[1][10] == "L1 (progressing), L2 (regressing)"
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert "qc_change/P1_L1_tp1_tp2.png" in hrefs and "timelines/P1.png" in hrefs
    assert all(not h.startswith("/") for h in hrefs)
    assert all((tmp_path / h).is_file() for h in hrefs)


def test_not_computable_correlation_and_no_statistics(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    stats = {"delta_correlation": {"computable": False, "reason": "only 1 patients with both (need >= 3)"},
             "mixed_model": {"computable": False, "reason": "too few"}}  # fmt: skip
    html = render_change_section(ChangeContext(ctx.changes, ctx.patient_changes, stats), None)
    assert html.count('<div class="nc">') == 2 and "only 1 patients with both (need &gt;= 3)" in html
    html = render_change_section(ChangeContext(ctx.changes, ctx.patient_changes), None)
    assert "no statistics of change were computed" in html


def test_mixed_model_slope_with_ci() -> None:
    stats = {
        "delta_correlation": {"computable": False, "reason": "x"},
        "mixed_model": {
            "computable": True, "formula": "vas ~ hi_volume_ratio + (1 | patient_id)", "n_obs": 120,
            "n_patients": 40, "converged": True,
            "coefficients": [
                {"term": "intercept", "estimate": 2.1, "se": 0.3, "ci_low": 1.5, "ci_high": 2.7,
                 "p_value": 1e-6},
                {"term": "hi_volume_ratio", "estimate": 9.87, "se": 0.5, "ci_low": 8.89, "ci_high": 10.85,
                 "p_value": 1e-9},
            ],
        },
    }  # fmt: skip
    html = render_change_section(ChangeContext(_changes(), _patient_changes(), stats))
    assert (
        "slope 9.87 VAS points per unit of <code>hi_volume_ratio</code> (CI 8.89 – 10.85), p < 0.001" in html
    )
    assert "n = 120 time points of 40 patients" in html


def test_report_without_change_context_is_unchanged_and_with_it_gains_only_the_section(
    tmp_path: Path,
) -> None:
    a = analyze(cohort())
    from spinemri.report.figures import analysis_figures

    figs = {k: figure_png(f) for k, f in analysis_figures(a).items()}
    base = render_report(a, figs)
    assert render_report(a, figs, context=ReportContext(change=None)) == base
    assert "Change between time points" not in base
    ctx = _context(tmp_path)
    with_change = render_report(a, figs, context=ReportContext(change=ctx), report_dir=tmp_path)
    section = render_change_section(ctx, tmp_path)
    assert section in with_change
    assert with_change.replace(section + "\n", "", 1) == base
    assert with_change.index("Prediction of severe pain") < with_change.index(section)
    assert with_change.index(section) < with_change.index("<h2 id='patients'>")


# --------------------------------------------------------------------------- timeline


def _vertebrae_of(changes: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in changes.to_dict("records"):
        for side in ("from", "to"):
            v = r[f"lesion_volume_mm3_{side}"]
            if math.isfinite(v):
                rows.append(
                    {
                        "patient_id": r["patient_id"],
                        "level": r["level"],
                        "timepoint": r[f"timepoint_{side}"],
                        "scan_date": r[f"scan_date_{side}"],
                        "lesion_volume_mm3": v,
                        "lesion_count": int(v > 0),
                    }
                )
    return pd.DataFrame(rows).drop_duplicates(["level", "timepoint"])


def _closest(pic: np.ndarray, x: float, y: float, rgb: tuple[int, int, int], r: int = 2) -> float:
    row, col = int(round(y)), int(round(x))
    patch = pic[row - r : row + r + 1, col - r : col + r + 1]
    return float(np.min(np.abs(patch - np.asarray(rgb)).max(axis=-1)))


@pytest.mark.parametrize("dated", [True, False])
def test_timeline_draws_each_change_in_its_status_colour_where_the_data_are(dated: bool) -> None:
    ch = _changes()
    ch = ch[ch["patient_id"] == "P1"]
    if not dated:
        ch = ch.assign(scan_date_from="", scan_date_to="")
    vt = _vertebrae_of(ch)
    fig = timeline_figure(ch, vt, vas={"tp1": 3, "tp2": 6, "tp3": 5})
    png = figure_png(fig, dpi=TIMELINE_DPI)
    pic = _decode(png)
    w, h = (int(round(s * TIMELINE_DPI)) for s in TIMELINE_SIZE_IN)
    assert pic.shape == (h, w, 3)
    ax, ax2 = fig.axes[0], fig.axes[1]
    if dated:
        from matplotlib.dates import date2num

        xs = {tp: float(date2num(pd.Timestamp(d))) for tp, d in _DATES["P1"].items()}
        assert [t.get_text() for t in ax2.get_xticklabels()] == list(_DATES["P1"].values())
    else:
        xs = {"tp1": 1.0, "tp2": 2.0, "tp3": 3.0}
        assert [t.get_text() for t in ax2.get_xticklabels()] == ["tp1", "tp2", "tp3"]

    def px(x: float, y: float) -> tuple[float, float]:
        dx, dy = ax.transData.transform((x, y))
        return dx, h - dy  # display y grows upwards, PNG rows downwards

    # the middle of every segment (volumes from _ROWS), coloured by the status of the change into its end
    for _, lv, a, b, st, va, vb in [r for r in _ROWS if r[0] == "P1"]:
        if st in ("uninvolved", "outside_fov"):
            continue
        x, y = px((xs[a] + xs[b]) / 2, (va + vb) / 2)
        assert _closest(pic, x, y, status_rgb(st)) <= 12, (lv, a, b, st)
        # and the marker at its end (centre of the marker)
        x, y = px(xs[b], vb)
        assert _closest(pic, x, y, status_rgb(st), r=1) <= 12, (lv, b, st, "marker")
    # a hollow (white) baseline marker at the first scan of L2 (1000 mm³)
    x, y = px(xs["tp1"], 1000.0)
    assert _closest(pic, x, y, (255, 255, 255), r=1) <= 3
    # nothing drawn in the regressing colour where no regression is (L2's first, stable, segment)
    x, y = px((xs["tp1"] + xs["tp2"]) / 2, 1000.0)
    assert _closest(pic, x, y, status_rgb("regressing")) > 60
    # integer ticks on the count axis; the counts per time point (L1..L4 involved: 3, 3, 3)
    ticks = ax2.get_yticks()
    assert np.allclose(ticks, np.round(ticks))
    assert [round(p.get_height()) for p in ax2.patches] == [3, 3, 3]
    assert "mm³" in ax.get_ylabel() and "count" in ax2.get_ylabel()
    assert timeline_png(ch, vt)[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeline_from_changes_alone_matches_the_one_from_vertebrae() -> None:
    ch = _changes()
    ch = ch[ch["patient_id"] == "P1"]
    a = _decode(timeline_png(ch, None))
    b = _decode(timeline_png(ch, _vertebrae_of(ch)))
    assert a.shape == b.shape and np.array_equal(a, b)


# --------------------------------------------------------------------------- side-by-side QC

_BOX = {"lr": 40.0, "ap": 30.0, "si": 20.0}  # a box vertebra centred on the world origin (mm)
_LESION_C, _LESION_R = np.array([3.0, 5.0, 4.0]), 4.0  # world (x=R, y=A, z=S) mm: 5 mm anterior, 4 superior


def _rot_x(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])


def _scan(spacing: tuple[float, float, float], shape: tuple[int, int, int], rot_deg: float, lesion: bool,
          shift: tuple[float, float, float]) -> tuple[Volume, Volume, Volume]:  # fmt: skip
    """Image, mask (label 20) and lesion mask of the analytic box on a rotated, shifted grid."""
    aff = np.eye(4)
    aff[:3, :3] = _rot_x(rot_deg) @ np.diag(spacing)
    centre_idx = (np.asarray(shape) - 1) / 2.0
    aff[:3, 3] = np.asarray(shift) - aff[:3, :3] @ centre_idx
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    xyz = ijk @ aff[:3, :3].T + aff[:3, 3]
    inside = (
        (np.abs(xyz[..., 0]) <= _BOX["lr"] / 2)
        & (np.abs(xyz[..., 1]) <= _BOX["ap"] / 2)
        & (np.abs(xyz[..., 2]) <= _BOX["si"] / 2)
    )
    les = (
        (np.linalg.norm(xyz - _LESION_C, axis=-1) <= _LESION_R) & inside if lesion else np.zeros(shape, bool)
    )
    img = np.where(inside, 300.0, 100.0)
    img[les] = 900.0
    return Volume(img, aff), Volume(inside.astype(np.uint8) * 20, aff), Volume(les.astype(np.uint8), aff)


def _red(pic: np.ndarray) -> np.ndarray:
    """The lesion colour blended over any grey (R > 150, R - G and R - B > 90); no grey or cyan passes."""
    return (pic[..., 0] > 150) & (pic[..., 0] - pic[..., 1] > 90) & (pic[..., 0] - pic[..., 2] > 90)


def test_qc_pair_shows_the_new_lesion_only_later_on_the_same_scale_and_place() -> None:
    a = _scan((1.0, 1.0, 2.0), (50, 40, 16), 0.0, False, (0.0, 0.0, 0.0))
    b = _scan((0.8, 0.9, 1.5), (64, 48, 24), 6.0, True, (1.3, -0.7, 0.9))
    before = QcScan(*a, (20,), "tp1", "2024-01-10", 0.0, 0)
    after = QcScan(*b, (20,), "tp2", "2024-04-10", 268.1, 1)
    _, pair = qc_pair_image(before, after, "L2", status="new", patient_id="P1")
    pic = _decode(pair.png)
    assert pic.shape == (58 + PANEL_PX + 78, 3 * 14 + 2 * PANEL_PX, 3)
    (x0a, y0a, x1a, y1a), (x0b, y0b, x1b, y1b) = pair.panels
    left, right = pic[y0a:y1a, x0a:x1a], pic[y0b:y1b, x0b:x1b]
    assert not _red(left).any()
    assert _red(right).sum() > 100
    assert pair.lesion_pixels[0] == 0 and pair.lesion_pixels[1] > 100
    # same physical scale on both sides: the larger in-plane extent (AP 30 mm) x 1.8 over the panel
    assert pair.mm_per_px == pytest.approx(30.0 * 1.8 / PANEL_PX, rel=0.03)
    # the plane goes through the lesion (3 mm to the right of the centroid)
    assert pair.lr_offset_mm == pytest.approx(3.0, abs=0.6)
    mm = pair.mm_per_px
    n = PANEL_PX
    # the lesion centre: 5 mm anterior (left of centre), 4 mm superior (above centre)
    col, row = int(n / 2 - 5.0 / mm), int(n / 2 - 4.0 / mm)
    assert _red(right[row - 2 : row + 3, col - 2 : col + 3]).all()
    assert not _red(left[row - 2 : row + 3, col - 2 : col + 3]).any()
    # the vertebra's anterior edge (15 mm anterior of the centroid) outlined at the same column on both sides
    edge = int(round(n / 2 - 15.0 / mm))
    for panel in (left, right):
        band = panel[n // 2 - 10 : n // 2 + 10, edge - 3 : edge + 4]
        cyanish = (np.abs(band - np.asarray(OUTLINE_RGB)).max(axis=-1) < 90) & (band[..., 2] > 150)
        assert cyanish.any(axis=1).all()
    # the header swatch in the status colour
    head = pic[8:26, :]
    assert (np.abs(head - np.asarray(status_rgb("new"))).max(axis=-1) < 4).sum() > 100
    assert LESION_RGB[0] > 200


def test_qc_pair_of_a_level_missing_in_one_scan() -> None:
    a = _scan((1.0, 1.0, 2.0), (50, 40, 16), 0.0, True, (0.0, 0.0, 0.0))
    before = QcScan(*a, (20,), "tp1")
    after = QcScan(*a, (), "tp2")
    _, pair = qc_pair_image(before, after, "L2")
    pic = _decode(pair.png)
    x0, y0, x1, y1 = pair.panels[1]
    inner = pic[y0 + 20 : y1 - 20, x0 + 20 : x1 - 20]  # inside the direction letters
    assert (inner == np.asarray(OUTSIDE_RGB)).all()
    assert pair.lesion_pixels[0] > 0


# --------------------------------------------------------------------------- a measured follow-up cohort


@pytest.fixture(scope="module")
def measured_followup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two phantom patients x three time points, measured as ``spinemri run`` measures each case."""
    from spinemri.io.cohort_followup import write_followup_cohort
    from spinemri.io.cohort_write import CohortSpec
    from spinemri.io.discover import discover_cases
    from spinemri.io.ids import safe_id
    from spinemri.pipeline.case import CaseOptions, CaseOutcome, run_case
    from spinemri.surveillance.compare import compare_timepoints
    from spinemri.surveillance.measured import frame_tables

    root = tmp_path_factory.mktemp("followup")
    cohort_dir, out = root / "cohort", root / "out"
    write_followup_cohort(
        cohort_dir, CohortSpec(n_patients=2, seed=3), timepoints=3, rows=160, cols=80, n_slices=11, snr=None
    )
    cases = discover_cases(cohort_dir)
    V, L = [], []
    for c in cases:
        assert c.image is not None and c.mask is not None
        o = CaseOutcome(c.patient_id, False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mc = run_case(c.image, c.mask, CaseOptions(measure=(("scheme", "verse"),)), o,
                          patient_id=c.patient_id, timepoint=c.timepoint, scan_date=c.scan_date)  # fmt: skip
        v, les = frame_tables(mc.measurement, mc.mask)
        V.append(v)
        L.append(les)
        (out / "masks").mkdir(parents=True, exist_ok=True)
        (out / "masks" / f"{safe_id(o.key)}_lesions.nii.gz").write_bytes(o.lesion_nii_gz)
    vert = pd.concat(V, ignore_index=True)
    vert.to_csv(out / "vertebrae.csv", index=False)
    res = compare_timepoints(vert, pd.concat(L, ignore_index=True))
    return {"out": out, "cases": cases, "res": res, "vertebrae": vert}


def test_change_qc_and_timelines_of_a_measured_cohort(measured_followup: dict) -> None:
    from spinemri.report.timeline import write_timelines

    out, res = measured_followup["out"], measured_followup["res"]
    index = {(c.patient_id, str(c.timepoint)): c for c in measured_followup["cases"]}
    ch = res.changes
    failures: list[str] = []
    qc = render_change_qc(out, ch, index, failures=failures)  # labels read from OUT/vertebrae.csv
    assert failures == []
    changed = ch[ch["status"].isin(CHANGED_STATUSES)]
    assert {"new", "resolved", "progressing"} <= set(changed["status"])  # patients 1-2 plan them
    assert set(qc) == {
        (str(r.patient_id), str(r.level), str(r.timepoint_from), str(r.timepoint_to))
        for r in changed.itertuples()
    }
    for (pid, lv, a, b), path in qc.items():
        assert path.parent == out / "qc_change" and path.is_file()
        pic = _decode(path.read_bytes())
        assert pic.shape == (58 + PANEL_PX + 78, 3 * 14 + 2 * PANEL_PX, 3)
        status = ch[(ch["patient_id"] == pid) & (ch["level"] == lv) & (ch["timepoint_to"] == b)][
            "status"
        ].iloc[0]
        x0, y0, x1, y1 = 14, 58, 14 + PANEL_PX, 58 + PANEL_PX
        left, right = pic[y0:y1, x0:x1], pic[y0:y1, x1 + 14 : x1 + 14 + PANEL_PX]
        if status == "new":  # lesion overlay only on the later side
            assert not _red(left).any() and _red(right).any(), (pid, lv, a, b)
        if status == "resolved":
            assert _red(left).any() and not _red(right).any(), (pid, lv, a, b)
    tl = write_timelines(out, ch, measured_followup["vertebrae"], res.timepoints)
    assert set(tl) == set(ch["patient_id"].astype(str))
    for path in tl.values():
        w, h = (int(round(s * TIMELINE_DPI)) for s in TIMELINE_SIZE_IN)
        assert _decode(path.read_bytes()).shape == (h, w, 3)
    # a failing pair is reported, the others drawn
    broken = dict(index)
    broken.pop(next(iter(index)))
    failures = []
    qc2 = render_change_qc(out, ch, broken, failures=failures, folder="qc_change2")
    assert failures and len(qc2) < len(qc) + 1
    # the one call of the cohort runner: the same files, and the section links every one of them
    from spinemri.report.change_outputs import write_change_outputs

    failures = []
    ctx = write_change_outputs(out, res, None, index, failures=failures)
    assert failures == [] and ctx.qc_pairs == qc and dict(ctx.timelines) == tl
    html = render_report(
        analyze(cohort()), {}, context=ReportContext(change=ctx), report_dir=out / "analysis"
    )
    for path in [*qc.values(), *tl.values()]:
        assert f'href="../{path.parent.name}/{path.name}"' in html


def test_degenerate_inputs_render() -> None:
    html = render_change_section(ChangeContext(pd.DataFrame(), pd.DataFrame()))
    assert "No patient has two time points" in html and "<b>0</b>" in html
    ch = pd.DataFrame(
        {
            "patient_id": ["P", "P"],
            "level": ["L1", "L2"],
            "timepoint_from": ["a", "a"],
            "timepoint_to": ["b", "b"],
            "lesion_volume_mm3_from": [0.0, 0.0],
            "lesion_volume_mm3_to": [0.0, 0.0],
            "status": ["uninvolved", "uninvolved"],
        }
    )
    fig = timeline_figure(ch)
    assert "no involved vertebra" in " ".join(t.get_text() for t in fig.axes[0].texts)
    assert [round(p.get_height()) for p in fig.axes[1].patches] == [0, 0]
