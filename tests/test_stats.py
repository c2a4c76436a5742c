"""spinemri.stats: every statistic against scipy/statsmodels/scikit-learn called independently here,
planted effects found, degenerate data reported (never raised), strict JSON, false-positive rate."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from spinemri.params import StatsParams
from spinemri.stats.methods import (
    compare_two_groups,
    cv_auc,
    delong_auc,
    holm_adjust,
    kruskal_by_group,
    ols_hc3,
    spearman_with_ci,
)
from spinemri.stats.results import Analysis
from spinemri.stats.study import SPEARMAN_PAIRS, analyze

REGIONS = np.array(["cervical", "thoracic", "lumbar", "sacral"])


def make_cohort(n: int, seed: int, effect: bool = True, lumbar_shift: float = 2.5, per_site: float = 0.4):
    """A linked table (DESIGN §5 patient columns + vas). With ``effect`` lumbar involvement and
    n_involved raise VAS; without it VAS is independent of every imaging column."""
    rng = np.random.default_rng(seed)
    region = rng.choice(REGIONS, size=n, p=[0.15, 0.4, 0.35, 0.1])
    lumbar = (region == "lumbar") | (rng.random(n) < 0.2)
    n_inv = rng.integers(1, 10, size=n)
    hi_area = np.clip(0.03 * n_inv + rng.normal(0, 0.05, n), 0, 1)
    hi_vol = np.clip(0.8 * hi_area + rng.normal(0, 0.02, n), 0, 1)
    signal = (lumbar_shift * lumbar + per_site * n_inv) if effect else 0.0
    vas = np.clip(np.round(3 + signal + rng.normal(0, 1.2, n)), 0, 10)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "n_vertebrae": 17,
            "n_involved": n_inv,
            "involved_levels": "L1",
            "cervical_involved": region == "cervical",
            "thoracic_involved": region == "thoracic",
            "lumbar_involved": lumbar,
            "sacral_involved": region == "sacral",
            "dominant_region": region,
            "total_lesion_count": n_inv,
            "total_lesion_volume_mm3": 100.0 * n_inv,
            "hi_volume_ratio": hi_vol,
            "hi_area_ratio": hi_area,
            "hi_area_ratio_max": np.clip(hi_area * 2, 0, 1),
            "vas": vas,
        }
    )


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(48, seed=3)


@pytest.fixture(scope="module")
def analysis(cohort):
    return analyze(cohort)


# --- each statistic against an independent call -------------------------------------------------------


def test_descriptives_match_numpy(cohort, analysis):
    v = cohort["vas"].to_numpy(float)
    d = analysis.to_dict()["descriptives"]["vas"]
    o = d["overall"]
    assert o["n"] == len(v)
    assert o["mean"] == pytest.approx(np.mean(v))
    assert o["sd"] == pytest.approx(np.std(v, ddof=1))
    assert o["median"] == pytest.approx(np.median(v))
    q1, q3 = np.quantile(v, [0.25, 0.75])
    assert (o["q1"], o["q3"], o["iqr"]) == pytest.approx((q1, q3, q3 - q1))
    for region in REGIONS:
        sub = v[cohort["dominant_region"] == region]
        assert d["by_dominant_region"][region]["median"] == pytest.approx(np.median(sub))
        assert d["by_dominant_region"][region]["n"] == len(sub)
    assert d["by_lumbar_involved"]["lumbar"]["n"] == int(cohort["lumbar_involved"].sum())
    cats = d["by_pain_category"]
    assert cats["mild"]["n"] == int((v <= 3).sum())
    assert cats["moderate"]["n"] == int(((v > 3) & (v < 7)).sum())
    assert cats["severe"]["n"] == int((v >= 7).sum())


def test_kruskal_and_posthoc_match_scipy(cohort, analysis):
    res = analysis.to_dict()["vas_by_dominant_region"]
    groups = {r: cohort.loc[cohort["dominant_region"] == r, "vas"].to_numpy(float) for r in REGIONS}
    h, p = sps.kruskal(*groups.values())
    assert res["test"] == "kruskal" and res["computable"]
    assert res["statistic"] == pytest.approx(h) and res["p_value"] == pytest.approx(p)
    assert res["df"] == 3
    assert set(res["groups"]) == set(REGIONS)
    for r in REGIONS:
        assert res["groups"][r]["n"] == len(groups[r])
        assert res["groups"][r]["median"] == pytest.approx(np.median(groups[r]))
    pairs = {(x["a"], x["b"]): x for x in res["posthoc"]}
    assert len(pairs) == 6
    raw = []
    for a, b in itertools.combinations(["cervical", "thoracic", "lumbar", "sacral"], 2):
        u, pu = sps.mannwhitneyu(groups[a], groups[b], alternative="two-sided")
        assert pairs[(a, b)]["statistic"] == pytest.approx(u)
        assert pairs[(a, b)]["p_value"] == pytest.approx(pu)
        raw.append(((a, b), pu))
    # Holm by hand: sort ascending, multiply by (m - rank), running max, cap at 1
    m = len(raw)
    running = 0.0
    for rank, ((a, b), pu) in enumerate(sorted(raw, key=lambda t: t[1])):
        running = max(running, min(1.0, (m - rank) * pu))
        assert pairs[(a, b)]["p_holm"] == pytest.approx(running)


def test_holm_against_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005, 0.5, 0.04]
    assert holm_adjust(p) == pytest.approx(multipletests(p, method="holm")[1])


def test_lumbar_mann_whitney_and_rank_biserial(cohort, analysis):
    res = analysis.to_dict()["lumbar_vs_non_lumbar"]
    lum = cohort.loc[cohort["lumbar_involved"], "vas"].to_numpy(float)
    oth = cohort.loc[~cohort["lumbar_involved"], "vas"].to_numpy(float)
    u, p = sps.mannwhitneyu(lum, oth, alternative="two-sided")
    assert res["statistic"] == pytest.approx(u) and res["p_value"] == pytest.approx(p)
    # rank-biserial r by its definition: P(lumbar > other) - P(lumbar < other) over all pairs
    diff = np.sign(lum[:, None] - oth[None, :])
    assert res["effect_size"] == pytest.approx(diff.mean())
    assert (res["n_lumbar"], res["n_other"]) == (len(lum), len(oth))
    assert res["median_lumbar"] == np.median(lum) and res["median_other"] == np.median(oth)


def test_spearman_and_bonett_wright_ci(cohort, analysis):
    out = analysis.to_dict()["spearman"]
    assert [(s["x"], s["y"]) for s in out] == list(SPEARMAN_PAIRS)
    for s in out:
        x, y = cohort[s["x"]].to_numpy(float), cohort[s["y"]].to_numpy(float)
        ref = sps.spearmanr(x, y)
        # rho is Pearson's r of the ranks
        assert s["rho"] == pytest.approx(np.corrcoef(sps.rankdata(x), sps.rankdata(y))[0, 1])
        assert s["p_value"] == pytest.approx(ref.pvalue)
        n = len(x)
        se = math.sqrt((1 + ref.statistic**2 / 2) / (n - 3))
        z = 0.5 * math.log((1 + ref.statistic) / (1 - ref.statistic))
        assert s["ci_low"] == pytest.approx(math.tanh(z - 1.959963984540054 * se))
        assert s["ci_high"] == pytest.approx(math.tanh(z + 1.959963984540054 * se))
        assert s["n"] == n


def test_spearman_ci_level_changes_width(cohort):
    a = spearman_with_ci(cohort["vas"], cohort["n_involved"], ci_level=0.95)
    b = spearman_with_ci(cohort["vas"], cohort["n_involved"], ci_level=0.80)
    assert b.ci_low > a.ci_low and b.ci_high < a.ci_high


def test_ols_matches_statsmodels_formula_and_hand_hc3(cohort, analysis):
    res = analysis.to_dict()["regression"]["ols"]
    df = cohort.assign(lumbar=cohort["lumbar_involved"].astype(float))
    ref = smf.ols("vas ~ lumbar + n_involved + hi_area_ratio", df).fit(cov_type="HC3", use_t=True)
    names = {
        "intercept": "Intercept",
        "lumbar_involved": "lumbar",
        "n_involved": "n_involved",
        "hi_area_ratio": "hi_area_ratio",
    }
    coefs = {c["term"]: c for c in res["coefficients"]}
    ci = ref.conf_int()
    for ours, theirs in names.items():
        assert coefs[ours]["estimate"] == pytest.approx(ref.params[theirs])
        assert coefs[ours]["se"] == pytest.approx(ref.bse[theirs])
        assert coefs[ours]["p_value"] == pytest.approx(ref.pvalues[theirs])
        assert (coefs[ours]["ci_low"], coefs[ours]["ci_high"]) == pytest.approx(tuple(ci.loc[theirs]))
    assert res["r_squared"] == pytest.approx(ref.rsquared)
    # HC3 sandwich by hand
    X = np.column_stack([np.ones(len(df)), df["lumbar"], df["n_involved"], df["hi_area_ratio"]])
    y = df["vas"].to_numpy(float)
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    e = y - X @ beta
    h = np.einsum("ij,jk,ik->i", X, xtx_inv, X)
    cov = xtx_inv @ (X.T * (e**2 / (1 - h) ** 2)) @ X @ xtx_inv
    assert [coefs[t]["se"] for t in names] == pytest.approx(np.sqrt(np.diag(cov)))
    assert res["cov_type"] == "HC3" and res["n"] == len(df)


def test_ordinal_model_matches_statsmodels_formula(cohort, analysis):
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    res = analysis.to_dict()["regression"]["ordinal"]
    v = cohort["vas"].to_numpy(float)
    cat = pd.Categorical(
        np.select([v <= 3, v >= 7], ["mild", "severe"], "moderate"),
        categories=["mild", "moderate", "severe"],
        ordered=True,
    )
    df = cohort.assign(cat=cat, lumbar=cohort["lumbar_involved"].astype(float))
    model = OrderedModel.from_formula("cat ~ lumbar + n_involved + hi_area_ratio", df, distr="logit")
    ref = model.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-8)
    coefs = {c["term"]: c for c in res["coefficients"]}
    for ours, theirs in (
        ("lumbar_involved", "lumbar"),
        ("n_involved", "n_involved"),
        ("hi_area_ratio", "hi_area_ratio"),
    ):
        assert coefs[ours]["estimate"] == pytest.approx(ref.params[theirs], rel=1e-3, abs=1e-3)
        assert coefs[ours]["odds_ratio"] == pytest.approx(math.exp(coefs[ours]["estimate"]))
    cuts = model.transform_threshold_params(ref.params)
    assert res["thresholds"]["mild|moderate"] == pytest.approx(cuts[1], rel=1e-3, abs=1e-3)
    assert res["thresholds"]["moderate|severe"] == pytest.approx(cuts[2], rel=1e-3, abs=1e-3)
    assert res["log_likelihood"] == pytest.approx(ref.llf, rel=1e-5)
    assert res["category_counts"] == {
        "mild": int((v <= 3).sum()),
        "moderate": int(((v > 3) & (v < 7)).sum()),
        "severe": int((v >= 7).sum()),
    }


def test_delong_against_brute_force(rng):
    scores = np.round(rng.normal(size=40), 1)  # rounding makes ties
    labels = rng.random(40) < 0.4
    pos, neg = scores[labels], scores[~labels]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc, var = delong_auc(scores, labels)
    assert auc == pytest.approx(psi.mean())
    assert var == pytest.approx(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))
    from sklearn.metrics import roc_auc_score

    assert auc == pytest.approx(roc_auc_score(labels, scores))


def test_cv_auc_matches_sklearn_cross_val_predict(cohort, analysis):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    res = analysis.to_dict()["prediction"]
    feats = ["n_involved", "hi_area_ratio", "hi_volume_ratio", "lumbar_involved"]
    X = cohort[feats].astype(float).to_numpy()
    y = cohort["vas"].to_numpy() >= 7
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    model = Pipeline([("s", StandardScaler()), ("lr", LogisticRegression(C=1.0, max_iter=1000))])
    proba = cross_val_predict(model, X, y, cv=cv, method="predict_proba")[:, 1]
    assert res["auc"] == pytest.approx(roc_auc_score(y, proba))
    assert res["n"] == len(y) and res["n_severe"] == int(y.sum()) and res["n_folds"] == 5
    assert res["ci_low"] < res["auc"] < res["ci_high"]
    # a different seed gives other folds, reproducibly
    again = cv_auc(cohort, feats, params=StatsParams(seed=0))
    assert again.auc == res["auc"]


# --- planted effect found --------------------------------------------------------------------------------


def test_planted_effect_is_found():
    a = analyze(make_cohort(80, seed=11)).to_dict()
    assert a["lumbar_vs_non_lumbar"]["p_value"] < 0.01
    assert a["lumbar_vs_non_lumbar"]["effect_size"] > 0.3
    assert a["vas_by_dominant_region"]["p_value"] < 0.01
    sp = {(s["x"], s["y"]): s for s in a["spearman"]}
    assert sp[("vas", "n_involved")]["p_value"] < 0.01 and sp[("vas", "n_involved")]["rho"] > 0
    assert sp[("n_involved", "hi_area_ratio")]["p_value"] < 0.01
    ols = {c["term"]: c for c in a["regression"]["ols"]["coefficients"]}
    assert ols["lumbar_involved"]["p_value"] < 0.01
    assert ols["lumbar_involved"]["ci_low"] < 2.5 < ols["lumbar_involved"]["ci_high"]
    ordl = {c["term"]: c for c in a["regression"]["ordinal"]["coefficients"]}
    assert ordl["lumbar_involved"]["p_value"] < 0.01 and ordl["lumbar_involved"]["odds_ratio"] > 1
    assert a["prediction"]["ci_low"] > 0.5


def test_no_effect_cohort_is_not_significant_on_the_lumbar_contrast():
    a = analyze(make_cohort(60, seed=5, effect=False)).to_dict()
    assert a["lumbar_vs_non_lumbar"]["p_value"] > 0.01
    assert abs(a["lumbar_vs_non_lumbar"]["effect_size"]) < 0.4


@pytest.mark.slow
def test_false_positive_rate_near_nominal():
    """200 cohorts without any effect: each test rejects at alpha = 0.05 about 5% of the time.

    About 30 s: deselected by default (``-m 'not slow'`` in pyproject.toml); run with ``pytest -m slow``.
    """
    n_sim, alpha = 200, 0.05
    hits = {"mw": 0, "kw": 0, "spearman": 0, "ols_lumbar": 0}
    for seed in range(n_sim):
        df = make_cohort(45, seed=1000 + seed, effect=False)
        hits["mw"] += compare_two_groups(df["vas"], df["lumbar_involved"]).p_value < alpha
        hits["kw"] += kruskal_by_group(df["vas"], df["dominant_region"]).p_value < alpha
        hits["spearman"] += spearman_with_ci(df["vas"], df["n_involved"]).p_value < alpha
        ols = ols_hc3(df, ["lumbar_involved", "n_involved", "hi_area_ratio"])
        hits["ols_lumbar"] += [c for c in ols.coefficients if c.term == "lumbar_involved"][0].p_value < alpha
    # binomial(200, 0.05): mean 10, 99.9% of outcomes within [2, 21]
    for name, k in hits.items():
        assert 2 <= k <= 21, (name, k)


# --- degenerate data: reported, never raised ----------------------------------------------------------


def strict_json(d):
    return json.loads(json.dumps(d, allow_nan=False))


def analyses_of(d):
    out = {
        "vas_by_dominant_region": d["vas_by_dominant_region"],
        "lumbar_vs_non_lumbar": d["lumbar_vs_non_lumbar"],
        "ols": d["regression"]["ols"],
        "ordinal": d["regression"]["ordinal"],
        "prediction": d["prediction"],
    }
    for s in d["spearman"]:
        out[f"{s['x']}~{s['y']}"] = s
    return out


def test_too_few_patients():
    d = strict_json(analyze(make_cohort(2, seed=1)).to_dict())
    assert d["n_patients"] == 2
    for name, res in analyses_of(d).items():
        assert res["computable"] is False, name
        assert "2" in res["reason"], (name, res["reason"])
    assert any("not computable" in w for w in d["warnings"])


def test_identical_vas_for_everybody():
    df = make_cohort(30, seed=2).assign(vas=5.0)
    d = strict_json(analyze(df).to_dict())
    res = analyses_of(d)
    for name in (
        "vas_by_dominant_region",
        "lumbar_vs_non_lumbar",
        "ols",
        "ordinal",
        "prediction",
        "vas~n_involved",
        "vas~hi_area_ratio",
    ):
        assert res[name]["computable"] is False, name
        assert res[name]["reason"], name
    assert res["n_involved~hi_area_ratio"]["computable"] is True  # needs no VAS
    assert d["descriptives"]["vas"]["overall"]["sd"] == 0.0


def test_no_lumbar_patients():
    df = make_cohort(30, seed=2)
    df = df[df["dominant_region"] != "lumbar"].assign(lumbar_involved=False)
    d = strict_json(analyze(df).to_dict())
    assert d["lumbar_vs_non_lumbar"]["computable"] is False
    assert "lumbar" in d["lumbar_vs_non_lumbar"]["reason"]
    assert d["regression"]["ols"]["computable"] is False
    assert "lumbar_involved" in d["regression"]["ols"]["reason"]
    assert d["vas_by_dominant_region"]["computable"] is True


def test_group_of_one_is_flagged():
    df = make_cohort(30, seed=4)
    df.loc[df["dominant_region"] == "sacral", "dominant_region"] = "thoracic"
    df.loc[0, "dominant_region"] = "sacral"
    a = analyze(df)
    d = strict_json(a.to_dict())
    g = d["vas_by_dominant_region"]["groups"]["sacral"]
    assert g["n"] == 1 and g["sd"] is None and "n = 1" in g["notes"][0]
    assert any("'sacral' has only 1" in w for w in d["warnings"])
    assert d["vas_by_dominant_region"]["computable"] is True


def test_one_region_only():
    df = make_cohort(20, seed=4).assign(dominant_region="thoracic")
    d = strict_json(analyze(df).to_dict())
    assert d["vas_by_dominant_region"]["computable"] is False
    assert "one dominant-region group" in d["vas_by_dominant_region"]["reason"]


def test_missing_vas_values_and_missing_column():
    df = make_cohort(30, seed=6)
    df.loc[:9, "vas"] = np.nan
    d = strict_json(analyze(df).to_dict())
    assert d["n_patients"] == 30 and d["n_with_vas"] == 20 and d["n_missing_vas"] == 10
    assert d["lumbar_vs_non_lumbar"]["n_lumbar"] + d["lumbar_vs_non_lumbar"]["n_other"] == 20
    assert any("10 of 30 patients have no valid VAS" in w for w in d["warnings"])
    d2 = strict_json(analyze(df.assign(vas=np.nan)).to_dict())
    assert d2["n_with_vas"] == 0
    assert all(not r["computable"] for k, r in analyses_of(d2).items() if "vas" in k or "~" not in k)
    d3 = strict_json(analyze(df.drop(columns=["vas"])).to_dict())
    assert any("no 'vas' column" in w for w in d3["warnings"])
    assert d3["descriptives"]["vas"]["overall"]["n"] == 0


def test_only_one_severe_patient_prediction_not_computable():
    df = make_cohort(30, seed=6, effect=False)
    df["vas"] = np.where(np.arange(30) == 0, 9.0, df["vas"].clip(upper=6))
    d = strict_json(analyze(df).to_dict())
    assert d["prediction"]["computable"] is False and "1 severe" in d["prediction"]["reason"]


def test_summary_keys_and_tables(analysis):
    d = strict_json(analysis.to_dict())
    for key in (
        "n_patients",
        "descriptives",
        "vas_by_dominant_region",
        "lumbar_vs_non_lumbar",
        "spearman",
        "regression",
        "prediction",
        "warnings",
        "parameters",
    ):
        assert key in d
    for key in ("test", "statistic", "p_value", "groups", "posthoc"):
        assert key in d["vas_by_dominant_region"]
    for key in (
        "test",
        "statistic",
        "p_value",
        "effect_size",
        "n_lumbar",
        "n_other",
        "median_lumbar",
        "median_other",
    ):
        assert key in d["lumbar_vs_non_lumbar"]
    for s in d["spearman"]:
        assert {"x", "y", "rho", "p_value", "ci_low", "ci_high", "n"} <= set(s)
    t = analysis.tables
    assert set(t) >= {"descriptives", "tests", "posthoc", "spearman", "coefficients"}
    assert len(t["posthoc"]) == 6 and len(t["spearman"]) == 5
    assert isinstance(analysis, Analysis)


def test_unknown_option_refused(cohort):
    with pytest.raises(ValueError, match="unknown parameter"):
        analyze(cohort, cv_fold=3)


def test_boolean_columns_as_text_are_understood(cohort):
    as_text = cohort.assign(lumbar_involved=cohort["lumbar_involved"].map({True: "True", False: "False"}))
    a = analyze(as_text).to_dict()["lumbar_vs_non_lumbar"]
    b = analyze(cohort).to_dict()["lumbar_vs_non_lumbar"]
    assert a == b
