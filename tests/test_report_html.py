"""report.html is self-contained (no external resources), embeds its figures, names every test, its
parameters and the package versions, and shows warnings and not-computable reasons."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from spinemri.report.figures import analysis_figures, figure_png
from spinemri.report.html import format_p, render_report, write_analysis
from spinemri.report.provenance import package_versions
from spinemri.stats.study import analyze


def cohort(n=40, seed=1):
    rng = np.random.default_rng(seed)
    region = rng.choice(["cervical", "thoracic", "lumbar", "sacral"], size=n, p=[0.2, 0.4, 0.3, 0.1])
    n_inv = rng.integers(1, 9, n)
    lumbar = region == "lumbar"
    return pd.DataFrame(
        {
            "patient_id": [f"S{i}" for i in range(n)],
            "n_involved": n_inv,
            "lumbar_involved": lumbar,
            "dominant_region": region,
            "hi_area_ratio": np.clip(0.03 * n_inv + rng.normal(0, 0.04, n), 0, 1),
            "hi_volume_ratio": np.clip(0.02 * n_inv + rng.normal(0, 0.03, n), 0, 1),
            "vas": np.clip(np.round(3 + 2 * lumbar + 0.3 * n_inv + rng.normal(0, 1, n)), 0, 10),
        }
    )


class _Resources(HTMLParser):
    """Collects every src/href and <script>/<link> tag."""

    def __init__(self):
        super().__init__()
        self.urls, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.urls.append(v)


@pytest.fixture(scope="module")
def analysis():
    return analyze(cohort())


@pytest.fixture(scope="module")
def page(analysis):
    return render_report(analysis)


def test_report_is_self_contained(page):
    res = _Resources()
    res.feed(page)
    assert "script" not in res.tags and "link" not in res.tags
    assert res.urls, "figures expected"
    assert all(u.startswith("data:image/png;base64,") for u in res.urls)
    assert not re.search(r"https?://|@import|url\(", page)


def test_figures_are_embedded_valid_pngs(page, analysis):
    res = _Resources()
    res.feed(page)
    assert len(res.urls) == len(analysis_figures(analysis)) == 3
    for u in res.urls:
        png = base64.b64decode(u.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width > 300 and height > 200


def test_methods_name_tests_parameters_and_versions(page):
    for needle in (
        "Kruskal-Wallis",
        "Mann-Whitney",
        "Holm",
        "rank-biserial",
        "Spearman",
        "Bonett-Wright",
        "HC3",
        "OrderedModel",
        "DeLong",
        "stratified 5-fold",
        "seed 0",
        "95%",
    ):
        assert needle in page, needle
    versions = package_versions()
    for dist in ("scipy", "statsmodels", "scikit-learn", "numpy"):
        assert f"{dist} {versions[dist]}" in page


def test_results_appear_with_their_numbers(page, analysis):
    d = analysis.to_dict()
    assert f"df = {d['vas_by_dominant_region']['df']}" in page
    assert f"n = {d['prediction']['n']}" in page
    assert format_p(d["lumbar_vs_non_lumbar"]["p_value"]) in page


def test_warnings_and_not_computable_are_shown():
    df = cohort(12, seed=3)
    df["lumbar_involved"] = False
    df.loc[df["dominant_region"] == "lumbar", "dominant_region"] = "thoracic"
    df.loc[0, "dominant_region"] = "sacral"
    page = render_report(analyze(df))
    assert "Warnings" in page and "has only 1 patient" in page
    assert "Not computable" in page and "no lumbar-involved patients" in page


def test_degenerate_report_renders():
    df = cohort(2, seed=4)
    page = render_report(analyze(df))
    assert page.count("Not computable") >= 5
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_html_escapes_region_names():
    df = cohort(20, seed=5)
    df.loc[:4, "dominant_region"] = "<b>x</b>"
    page = render_report(analyze(df))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


@pytest.mark.parametrize(
    "p, text", [(0.5, "0.5"), (0.01234, "0.0123"), (0.0004, "< 0.001"), (None, "—"), (float("nan"), "—")]
)
def test_format_p(p, text):
    assert format_p(p) == text


def test_write_analysis_folder(tmp_path, analysis):
    written = write_analysis(analysis, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert summary["n_patients"] == 40 and "software" in summary
    for name in ("descriptives", "tests", "posthoc", "spearman", "coefficients"):
        t = pd.read_csv(tmp_path / "tables" / f"{name}.csv")
        assert len(t) > 0
    for name in ("vas_by_region", "involvement_vs_hi_area", "vas_vs_metrics"):
        assert (tmp_path / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert written["report"] == tmp_path / "report.html"
    assert not list(tmp_path.rglob("*.tmp*"))


def test_figures_of_empty_data_do_not_fail():
    from spinemri.report.figures import vas_by_region_figure, vas_vs_metrics_figure

    empty = pd.DataFrame({"vas": [np.nan], "dominant_region": [None], "n_involved": [np.nan]})
    assert figure_png(vas_by_region_figure(empty))[:4] == b"\x89PNG"
    assert figure_png(vas_vs_metrics_figure(empty))[:4] == b"\x89PNG"


# --- issue 17: figures, groups, patients, exclusions, parameters, summary ---------------------


class _Tables(HTMLParser):
    """Text of every table cell by table id/class, h2 ids, and every <img>/<a> attribute."""

    def __init__(self):
        super().__init__()
        self.tables, self.h2, self.imgs, self.links = {}, [], [], []
        self._table, self._row, self._cell = None, None, None
        self.summary, self._in_summary = "", 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("class") or f"t{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "h2":
            self.h2.append(a.get("id"))
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "a":
            self.links.append(a.get("href"))
        elif tag == "div" and a.get("class") == "summary":
            self._in_summary = 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "div" and self._in_summary:
            self._in_summary = 0

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_summary:
            self.summary += data


def _parse(page):
    p = _Tables()
    p.feed(page)
    return p


def _with_none(n=40, seed=1):
    """The test cohort with 4 uninvolved patients (dominant_region "none") and 2 without a VAS."""
    df = cohort(n, seed)
    df.loc[:3, ["dominant_region", "n_involved", "hi_area_ratio", "hi_volume_ratio"]] = ["none", 0, 0.0, 0.0]
    df.loc[:3, "lumbar_involved"] = False
    df.loc[4:5, "vas"] = np.nan
    df["involved_levels"] = ["T4;L2" if i > 3 else "" for i in range(n)]
    return df


def test_axes_have_integer_count_ticks_vas_0_to_10_and_human_labels():
    a = analyze(_with_none())
    figs = analysis_figures(a)
    inv = figs["involvement_vs_hi_area"].axes[0]
    assert inv.get_xlabel() == "Involved vertebrae (count)"
    assert (
        inv.get_ylabel().replace("\n", " ")
        == "High-intensity area ratio (mid-sagittal, fraction of vertebra)"
    )
    ticks = inv.xaxis.get_major_locator()()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    region = figs["vas_by_region"].axes[0]
    metrics = figs["vas_vs_metrics"].axes
    for ax in (region, metrics[0]):
        assert ax.get_ylabel() == "Pain (VAS, 0-10)"
        lo, hi = ax.get_ylim()
        assert -0.5 <= lo <= 0 and 10 <= hi <= 10.5
        assert [float(t) for t in ax.get_yticks()] == [float(v) for v in range(11)]
    assert region.get_xlabel() == "Dominant region of involvement"
    assert [ax.get_xlabel().replace("\n", " ") for ax in metrics] == [
        "Involved vertebrae (count)",
        "High-intensity area ratio (mid-sagittal, fraction of vertebra)",
        "High-intensity volume ratio (fraction of vertebral volume)",
    ]
    ticks = metrics[0].xaxis.get_major_locator()()
    assert all(float(t).is_integer() for t in ticks)


def test_region_figure_draws_the_groups_of_the_test_and_the_caption_says_what_is_left_out():
    from spinemri.report.figures import figure_captions

    a = analyze(_with_none())
    kr = a.to_dict()["vas_by_dominant_region"]
    assert "none" in kr["excluded_groups"]
    ax = analysis_figures(a)["vas_by_region"].axes[0]
    drawn = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
    assert drawn == list(kr["groups"])
    assert "none" not in drawn
    counts = [int(t.get_text().split("n=")[1].rstrip(")")) for t in ax.get_xticklabels()]
    assert counts == [g["n"] for g in kr["groups"].values()]
    cap = figure_captions(a)["vas_by_region"]
    assert "“none” (no involved vertebra; n = 4)" in cap and "left out" in cap
    page = render_report(a)
    assert "“none” (no involved vertebra; n = 4)" in page


def test_report_lists_stats_and_measurement_parameters():
    from spinemri.report.html import ReportContext

    a = analyze(_with_none())
    rows = {r[0]: r[1] for r in _parse(render_report(a)).tables["params"][1:]}
    assert rows["cv_folds"] == "5" and rows["seed"] == "0" and rows["severe_vas"] == "7"
    ctx = ReportContext(parameters={"segmentation": {"method": "robust", "k": 3.0}})
    p = _parse(render_report(a, context=ctx))
    assert "parameters" in p.h2
    assert p.tables["params"][1:3] == [["method", "robust"], ["k", "3"]]


def test_patient_table_with_qc_thumbnails_and_relative_links(tmp_path):
    from spinemri.io.ids import safe_id
    from spinemri.report.figures import figure_png as png_of
    from spinemri.report.html import ReportContext

    df = _with_none()
    df.loc[6, "patient_id"] = "odd id/7"
    a = analyze(df)
    qc = tmp_path / "qc"
    qc.mkdir()
    from matplotlib.figure import Figure

    viewer = tmp_path / "viewer"
    viewer.mkdir()
    for pid in df["patient_id"]:
        (qc / f"{safe_id(pid)}.png").write_bytes(png_of(Figure(figsize=(3, 6))))
    for pid in list(df["patient_id"])[:3]:  # a case viewer for some patients only
        (viewer / f"{safe_id(pid)}.html").write_text("<html></html>", encoding="utf-8")
    written = write_analysis(a, tmp_path / "analysis", context=ReportContext(patients=df, qc_dir=qc))
    p = _parse(written["report"].read_text(encoding="utf-8"))
    table = p.tables["patients"]
    assert table[0] == [
        "patient",
        "QC",
        "viewer",
        "involved vertebrae",
        "involved levels",
        "dominant region",
        "hi_area_ratio",
        "hi_volume_ratio",
        "VAS",
    ]
    assert [r[0] for r in table[1:]] == list(df["patient_id"])
    row = table[1 + 10]
    assert row[3] == str(int(df.loc[10, "n_involved"])) and row[4] == "T4, L2"
    assert row[8] == str(int(df.loc[10, "vas"]))
    assert table[1 + 4][8] == "no valid VAS"
    # the case viewer is linked where it exists (../viewer/<safe id>.html), a dash elsewhere
    first = list(df["patient_id"])[:3]
    assert [r[2] for r in table[1:4]] == ["scroll the slices"] * 3 and table[1 + 4][2] == "—"
    assert all(f"../viewer/{safe_id(pid)}.html" in p.links for pid in first)
    assert "../qc/SMR-001.png" not in p.links  # ids of this cohort are S0, S1, ...
    assert "../qc/S0.png" in p.links
    assert f"../qc/{safe_id('odd id/7')}.png" in p.links
    for href in p.links:
        if href.startswith("../qc/"):
            assert (tmp_path / "analysis" / href).resolve().is_file()
    thumbs = [i for i in p.imgs if i.get("alt", "").startswith("QC overlay")]
    # linked, not embedded (a base64 blob could spell an identifier by chance), shown small
    assert len(thumbs) == len(df) and all(t["src"].startswith("../qc/") for t in thumbs)
    assert all((tmp_path / "analysis" / t["src"]).resolve().is_file() for t in thumbs)
    assert all(int(t["height"]) <= 96 for t in thumbs)
    # self-contained apart from the links to the QC overlays and case viewers next to it
    res = _Resources()
    res.feed(written["report"].read_text(encoding="utf-8"))
    assert all(u.startswith(("data:image/png;base64,", "../qc/", "../viewer/")) for u in res.urls)


def test_patient_table_without_context_has_no_qc_column(page):
    table = _parse(page).tables["patients"]
    assert table[0][0] == "patient" and "QC" not in table[0]
    assert len(table) == 1 + 40


def test_excluded_patients_with_reasons_from_the_link_report():
    from spinemri.report.html import ReportContext

    df = _with_none()
    a = analyze(df)
    p = _parse(render_report(a))
    assert p.tables["excluded"][1:] == [["S4", "no valid VAS"], ["S5", "no valid VAS"]]
    link_report = pd.DataFrame(
        {
            "kind": ["exact", "missing_vas", "invalid_vas", "unmatched_clinical"],
            "imaging_id": ["S0", "S4", "S5", None],
            "clinical_id": ["S0", "s4", "S_5", "X9"],
            "clinical_row": [1, 5, 6, 41],
            "detail": ["", "vas missing", "vas '11' out of range", "no image"],
        }
    )
    p = _parse(render_report(a, context=ReportContext(link_report=link_report)))
    rows = p.tables["excluded"][1:]
    assert rows[0][0] == "S4" and rows[0][1].startswith("no VAS in the clinical table")
    assert rows[1][0] == "S5" and rows[1][1].startswith("VAS not a number in 0-10")
    assert rows[2] == ["X9", "clinical row without an image (not analysed)"]


def test_plain_language_summary_at_the_top_is_generated_from_the_numbers(page, analysis):
    from spinemri.report.html import plain_summary

    d = analysis.to_dict()
    text = _parse(page).summary
    assert page.index("class='summary'") < page.index("<h2")
    assert text.startswith("Summary.") and plain_summary(analysis) in text
    assert f"In this cohort of {d['n_patients']} patients" in text
    assert "associated with" in text and "not evidence that the findings cause" in text
    for word in ("causes", "leads to", "because of", "proves"):
        assert word not in text
    mw = d["lumbar_vs_non_lumbar"]
    assert f"median VAS {mw['median_lumbar']:g} vs {mw['median_other']:g}" in text
    assert format_p(mw["p_value"]) in text


def test_plain_summary_names_what_is_not_computable():
    from spinemri.report.html import plain_summary

    text = plain_summary(analyze(cohort(2, seed=4)))
    assert "not computable" in text and "In this cohort of 2 patients" in text
