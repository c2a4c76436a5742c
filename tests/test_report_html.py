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
