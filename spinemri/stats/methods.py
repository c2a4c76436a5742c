"""The statistical methods of the study, each on plain sequences or a DataFrame.

Pure: no file I/O. Each method returns its result object (:mod:`spinemri.stats.results`) or a
:class:`~spinemri.stats.results.NotComputable` with the reason, so degenerate data never raise.
The choice of each test and its parameters is explained in docs/statistics.md.

- :func:`describe` — VAS n, mean, SD, median, quartiles of one group.
- :func:`kruskal_by_group` — Kruskal-Wallis H test, pairwise two-sided Mann-Whitney U post hoc
  with Holm's step-down adjustment (:func:`holm_adjust`).
- :func:`compare_two_groups` — two-sided Mann-Whitney U, rank-biserial effect size.
- :func:`spearman_with_ci` — Spearman's rho with a Fisher-z confidence interval using the
  Bonett-Wright (2000) standard error ``sqrt((1 + rho**2 / 2) / (n - 3))``.
- :func:`ols_hc3` — OLS with HC3 standard errors (t reference distribution).
- :func:`ordinal_logit` — proportional-odds (ordinal logistic) model of the pain category
  (:func:`pain_category`).
- :func:`cv_auc` — stratified k-fold cross-validated AUC of a logistic model of severe pain,
  DeLong confidence interval (:func:`delong_auc`) of the pooled out-of-fold AUC.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from ..params import StatsParams
from .results import (
    Coefficient,
    GroupSummary,
    KruskalResult,
    MannWhitneyResult,
    NotComputable,
    OLSResult,
    OrdinalResult,
    PairwiseTest,
    PredictionResult,
    SpearmanResult,
)

__all__ = [
    "describe",
    "kruskal_by_group",
    "compare_two_groups",
    "spearman_with_ci",
    "ols_hc3",
    "ordinal_logit",
    "cv_auc",
    "delong_auc",
    "holm_adjust",
    "pain_category",
    "order_groups",
    "as_bool",
    "REGION_ORDER",
    "PAIN_CATEGORIES",
]

REGION_ORDER = ("cervical", "thoracic", "lumbar", "sacral", "none")
PAIN_CATEGORIES = ("mild", "moderate", "severe")
_FLAG_COLUMNS = frozenset({"cervical_involved", "thoracic_involved", "lumbar_involved", "sacral_involved"})


def _finite(values: Iterable[Any]) -> npt.NDArray[np.float64]:
    a = np.asarray(pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce"), dtype=float)
    finite: npt.NDArray[np.float64] = a[np.isfinite(a)]
    return finite


def describe(values: Iterable[float]) -> GroupSummary:
    """VAS summary of one group (missing values dropped).

    Parameters
    ----------
    values : iterable of float
        VAS values; missing and non-numeric values are dropped.

    Returns
    -------
    GroupSummary
        n, mean, SD (ddof 1), median, quartiles (linear interpolation), IQR, min and max; None
        where undefined (no values; SD for n = 1), with a note saying why.
    """
    a = _finite(values)
    n = int(a.size)
    if n == 0:
        return GroupSummary(0, None, None, None, None, None, None, None, None, ("no values",))
    q1, med, q3 = (float(v) for v in np.percentile(a, [25, 50, 75]))
    notes = () if n > 1 else ("sd undefined for n = 1",)
    return GroupSummary(
        n,
        float(a.mean()),
        float(a.std(ddof=1)) if n > 1 else None,
        med,
        q1,
        q3,
        q3 - q1,
        float(a.min()),
        float(a.max()),
        notes,
    )


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1).

    Parameters
    ----------
    p_values : sequence of float
        Raw p-values of the family of tests.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, in the order of ``p_values``.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    adj = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        adj[idx] = running
    return adj


def order_groups(names: Iterable[str]) -> list[str]:
    """Group labels in output order: the regions of :data:`REGION_ORDER` first, then the rest.

    Parameters
    ----------
    names : iterable of str
        Group labels (``dominant_region`` values).

    Returns
    -------
    list of str
        The labels, known regions in anatomical order, unknown labels after them alphabetically.
    """
    known = {r: i for i, r in enumerate(REGION_ORDER)}
    return sorted(names, key=lambda g: (known.get(g, len(known)), g))


def as_bool(v: Any) -> bool | None:
    """True/False from bools, 0/1 and the usual strings; None for missing or unknown.

    Parameters
    ----------
    v : Any
        A cell of a flag column (``lumbar_involved``, ...): bool, number or text.

    Returns
    -------
    bool or None
        The flag; None when ``v`` is missing or not a recognised spelling of true or false.
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer, float, np.floating)):
        return bool(v) if v in (0, 1) else None
    s = str(v).strip().casefold()
    if s in ("true", "t", "yes", "y", "1", "1.0"):
        return True
    if s in ("false", "f", "no", "n", "0", "0.0"):
        return False
    return None


def kruskal_by_group(
    vas: Sequence[float], group: Sequence[Any], *, exclude: Iterable[str] = (), min_n: int = 3
) -> KruskalResult | NotComputable:
    """Kruskal-Wallis test of ``vas`` across ``group`` labels, with Holm-adjusted pairwise U tests.

    Parameters
    ----------
    vas : sequence of float
    group : sequence of str
        Group label per value (``dominant_region``); missing labels are dropped.
    exclude : iterable of str
        Labels left out (default in :class:`StatsParams`: ``"none"``).
    min_n : int
        Fewest values for the test to be computed.

    Returns
    -------
    KruskalResult or NotComputable
        The H test with the group summaries and the pairwise post hoc tests, or the reason it
        cannot be computed (too few values, one group, identical VAS).
    """
    df = pd.DataFrame(
        {"vas": pd.to_numeric(pd.Series(list(vas), dtype=object), errors="coerce"), "g": list(group)}
    )
    df = df[np.isfinite(df["vas"].astype(float)) & df["g"].notna()]
    df["g"] = df["g"].astype(str)
    excluded = tuple(sorted(set(df["g"]) & set(exclude)))
    df = df[~df["g"].isin(set(exclude))]
    names = order_groups(set(df["g"]))
    context = {
        "test": "kruskal",
        "n": len(df),
        "groups": {g: describe(df.loc[df["g"] == g, "vas"]) for g in names},
    }
    if len(df) < min_n:
        return NotComputable(
            f"only {len(df)} patients with a VAS and a dominant region (need >= {min_n})", context
        )
    if len(names) < 2:
        return NotComputable(
            f"only one dominant-region group ({', '.join(names) or 'none'}) among patients "
            "with a VAS; Kruskal-Wallis needs at least two groups",
            context,
        )
    samples = [df.loc[df["g"] == g, "vas"].to_numpy(float) for g in names]
    if np.ptp(df["vas"].to_numpy(float)) == 0:
        return NotComputable(
            f"all {len(df)} VAS values are identical ({df['vas'].iloc[0]:g}); rank tests are undefined",
            context,
        )
    h, p = sps.kruskal(*samples)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    raw = []
    for a, b in pairs:
        xa, xb = samples[names.index(a)], samples[names.index(b)]
        u, pu = sps.mannwhitneyu(xa, xb, alternative="two-sided")
        raw.append((a, b, len(xa), len(xb), float(u), float(pu)))
    adj = holm_adjust([r[5] for r in raw])
    posthoc = tuple(
        PairwiseTest(a, b, na, nb, u, pu, float(pa))
        for (a, b, na, nb, u, pu), pa in zip(raw, adj, strict=True)
    )
    return KruskalResult(
        "kruskal",
        float(h),
        len(names) - 1,
        float(p),
        len(df),
        dict({g: describe(s) for g, s in zip(names, samples, strict=True)}),
        posthoc,
        "mannwhitneyu (two-sided, scipy method 'auto')",
        "holm",
        excluded,
    )


def compare_two_groups(
    vas: Sequence[float], in_group: Sequence[Any], *, min_n: int = 3
) -> MannWhitneyResult | NotComputable:
    """Two-sided Mann-Whitney U of VAS, lumbar-involved (``in_group`` true) versus the others.

    Parameters
    ----------
    vas : sequence of float
        VAS per patient; missing values are dropped.
    in_group : sequence
        Lumbar involvement per patient (bools, 0/1 or their usual spellings; see :func:`as_bool`);
        unknown values are dropped.
    min_n : int
        Fewest patients for the test to be computed.

    Returns
    -------
    MannWhitneyResult or NotComputable
        U of the lumbar group, p-value and rank-biserial effect size, or the reason it cannot
        be computed (too few patients, an empty group, identical VAS).
    """
    df = pd.DataFrame(
        {
            "vas": pd.to_numeric(pd.Series(list(vas), dtype=object), errors="coerce"),
            "g": [as_bool(v) for v in in_group],
        }
    )
    df = df[np.isfinite(df["vas"].astype(float)) & df["g"].notna()]
    xa = df.loc[df["g"] == True, "vas"].to_numpy(float)  # noqa: E712 - object column of bools
    xb = df.loc[df["g"] == False, "vas"].to_numpy(float)  # noqa: E712
    context = {"test": "mannwhitneyu", "n_lumbar": len(xa), "n_other": len(xb)}
    if len(df) < min_n:
        return NotComputable(f"only {len(df)} patients with a VAS (need >= {min_n})", context)
    if len(xa) == 0 or len(xb) == 0:
        which = "lumbar-involved" if len(xa) == 0 else "non-lumbar"
        return NotComputable(f"no {which} patients with a VAS; two groups are needed", context)
    if np.ptp(df["vas"].to_numpy(float)) == 0:
        return NotComputable(f"all {len(df)} VAS values are identical; rank tests are undefined", context)
    u, p = sps.mannwhitneyu(xa, xb, alternative="two-sided")
    r = 2.0 * float(u) / (len(xa) * len(xb)) - 1.0
    method = (
        "exact"
        if min(len(xa), len(xb)) <= 8 and len(np.unique(np.r_[xa, xb])) == len(xa) + len(xb)
        else "asymptotic (tie-corrected, continuity correction)"
    )
    return MannWhitneyResult(
        "mannwhitneyu",
        float(u),
        float(p),
        r,
        "rank-biserial correlation (2U/(n1 n2) - 1)",
        len(xa),
        len(xb),
        float(np.median(xa)),
        float(np.median(xb)),
        method,
    )


def spearman_with_ci(
    x: Sequence[float],
    y: Sequence[float],
    *,
    x_name: str = "x",
    y_name: str = "y",
    ci_level: float = 0.95,
    min_n: int = 3,
) -> SpearmanResult | NotComputable:
    """Spearman's rho with a Fisher-z CI (Bonett-Wright SE); pairs with a missing value dropped.

    Parameters
    ----------
    x, y : sequence of float
        The paired values.
    x_name, y_name : str
        Names of the two variables, kept in the result.
    ci_level : float
        Confidence level of the interval.
    min_n : int
        Fewest complete pairs for rho to be computed.

    Returns
    -------
    SpearmanResult or NotComputable
        rho, its p-value and the interval (None with ``ci_reason`` when undefined), or the reason
        rho cannot be computed (too few pairs, a constant variable).

    Notes
    -----
    ``z = atanh(rho)``, ``se = sqrt((1 + rho**2 / 2) / (n - 3))`` (Bonett & Wright 2000,
    Psychometrika 65:23-28), interval ``tanh(z ± z_{1-alpha/2} se)``. Needs n >= 4 and |rho| < 1;
    otherwise the interval is None and ``ci_reason`` says why.
    """
    a = pd.to_numeric(pd.Series(list(x), dtype=object), errors="coerce").astype(float).to_numpy()
    b = pd.to_numeric(pd.Series(list(y), dtype=object), errors="coerce").astype(float).to_numpy()
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)
    context = {"x": x_name, "y": y_name, "n": n}
    if n < min_n:
        return NotComputable(f"only {n} patients with both {x_name} and {y_name} (need >= {min_n})", context)
    for name, v in ((x_name, a), (y_name, b)):
        if np.ptp(v) == 0:
            return NotComputable(
                f"{name} is the same ({v[0]:g}) for all {n} patients; the correlation is undefined", context
            )
    res = sps.spearmanr(a, b)
    rho, p = float(res.statistic), float(res.pvalue)
    method = "fisher_z_bonett_wright"
    if n < 4:
        return SpearmanResult(x_name, y_name, rho, p, None, None, n, method, "n < 4: Fisher-z SE undefined")
    if abs(rho) >= 1.0:
        return SpearmanResult(
            x_name, y_name, rho, p, None, None, n, method, "|rho| = 1: Fisher z is infinite"
        )
    zc = sps.norm.ppf(0.5 + ci_level / 2)
    se = math.sqrt((1 + rho**2 / 2) / (n - 3))
    z = math.atanh(rho)
    return SpearmanResult(x_name, y_name, rho, p, math.tanh(z - zc * se), math.tanh(z + zc * se), n, method)


def _design(df: pd.DataFrame, predictors: Sequence[str]) -> tuple[pd.DataFrame | None, str | None]:
    """Numeric predictor matrix (bools as 0/1), or (None, reason)."""
    missing = [p for p in predictors if p not in df.columns]
    if missing:
        return None, f"column(s) {missing} not in the linked table"
    X = pd.DataFrame(index=df.index)
    for p in predictors:
        col = df[p]
        if p in _FLAG_COLUMNS or col.dtype == bool:
            flags = [as_bool(v) for v in col]
            X[p] = [np.nan if f is None else float(f) for f in flags]
        else:
            X[p] = pd.to_numeric(col, errors="coerce").astype(float)
    return X, None


def ols_hc3(
    df: pd.DataFrame,
    predictors: Sequence[str],
    *,
    outcome: str = "vas",
    ci_level: float = 0.95,
    min_n: int = 3,
) -> OLSResult | NotComputable:
    """OLS ``outcome ~ predictors`` with HC3 standard errors and t-based CIs and p-values.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient with the outcome and predictor columns; incomplete rows are dropped.
    predictors : sequence of str
        Predictor columns (flag columns and bools as 0/1).
    outcome : str
        Outcome column.
    ci_level : float
        Confidence level of the coefficient intervals.
    min_n : int
        Fewest complete patients for the model to be fitted.

    Returns
    -------
    OLSResult or NotComputable
        The fit with one :class:`Coefficient` per term (intercept first), or the reason it cannot
        be fitted (too few patients, constant outcome or predictor, collinearity, leverage 1).
    """
    # the two names it needs, not statsmodels.api (which imports every model: +0.9 s)
    from statsmodels.regression.linear_model import OLS
    from statsmodels.tools.tools import add_constant

    formula = f"{outcome} ~ " + " + ".join(predictors)
    X, why = _design(df, predictors)
    if X is None:
        return NotComputable(why or "", {"formula": formula})
    y = pd.to_numeric(df[outcome], errors="coerce").astype(float) if outcome in df else None
    if y is None:
        return NotComputable(f"no {outcome} column", {"formula": formula})
    ok = np.isfinite(y.to_numpy()) & np.isfinite(X.to_numpy()).all(axis=1)
    X, y = X[ok], y[ok]
    n, k = len(y), len(predictors) + 1
    context = {"formula": formula, "n": n}
    if n < max(min_n, k + 2):
        return NotComputable(
            f"only {n} complete patients for {k} parameters (need >= {max(min_n, k + 2)})", context
        )
    if np.ptp(y.to_numpy()) == 0:
        return NotComputable(f"all {n} {outcome} values are identical; nothing to explain", context)
    const = [p for p in predictors if np.ptp(X[p].to_numpy()) == 0]
    if const:
        return NotComputable(
            f"predictor(s) {const} constant over the {n} patients "
            "(e.g. no lumbar-involved patient); coefficient not identifiable",
            context,
        )
    Xc = add_constant(X, has_constant="add")
    if np.linalg.matrix_rank(Xc.to_numpy()) < k:
        return NotComputable("predictors are collinear (design matrix rank-deficient)", context)
    lev = np.diag(Xc.to_numpy() @ np.linalg.pinv(Xc.to_numpy().T @ Xc.to_numpy()) @ Xc.to_numpy().T)
    if np.any(lev > 1 - 1e-8):
        return NotComputable(
            "a patient has leverage 1 (an observation alone determines a coefficient); "
            "HC3 standard errors are undefined",
            context,
        )
    fit = OLS(y, Xc).fit(cov_type="HC3", use_t=True)
    ci = fit.conf_int(alpha=1 - ci_level)
    coefs = tuple(
        Coefficient(
            "intercept" if t == "const" else t,
            float(fit.params[t]),
            float(fit.bse[t]),
            float(ci.loc[t, 0]),
            float(ci.loc[t, 1]),
            float(fit.pvalues[t]),
        )
        for t in Xc.columns
    )
    return OLSResult(
        formula,
        n,
        float(fit.df_resid),
        float(fit.rsquared),
        float(fit.rsquared_adj),
        "HC3",
        f"t({int(fit.df_resid)})",
        coefs,
    )


def pain_category(
    vas: Iterable[float],
    *,
    mild_max: float = StatsParams.mild_max,
    severe_vas: float = StatsParams.severe_vas,
) -> pd.Categorical:
    """Ordered pain category: mild (VAS <= mild_max), severe (VAS >= severe_vas), moderate between.

    Parameters
    ----------
    vas : iterable of float
        VAS values.
    mild_max : float
        Largest VAS that is mild.
    severe_vas : float
        Smallest VAS that is severe.

    Returns
    -------
    pandas.Categorical
        Ordered categories :data:`PAIN_CATEGORIES`; missing where the VAS is not finite.
    """
    v = np.asarray(list(vas), dtype=float)
    labels = np.where(v <= mild_max, "mild", np.where(v >= severe_vas, "severe", "moderate")).astype(object)
    labels[~np.isfinite(v)] = None
    return pd.Categorical(labels, categories=list(PAIN_CATEGORIES), ordered=True)


def ordinal_logit(
    df: pd.DataFrame, predictors: Sequence[str], *, params: StatsParams | None = None
) -> OrdinalResult | NotComputable:
    """Proportional-odds logistic model of the pain category on ``predictors`` (BFGS fit).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient with ``vas`` and the predictor columns; incomplete rows are dropped.
    predictors : sequence of str
        Predictor columns (flag columns and bools as 0/1).
    params : StatsParams, optional
        Pain category cut-offs, confidence level and the fewest patients (defaults when omitted).

    Returns
    -------
    OrdinalResult or NotComputable
        Coefficients with odds ratios, thresholds and fit statistics, or the reason the model
        cannot be fitted (too few patients, one category, constant predictor, separation).
    """
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    params = params or StatsParams()
    formula = "pain_category ~ " + " + ".join(predictors)
    X, why = _design(df, predictors)
    if X is None:
        return NotComputable(why or "", {"formula": formula})
    if "vas" not in df:
        return NotComputable("no vas column", {"formula": formula})
    vas = pd.to_numeric(df["vas"], errors="coerce").astype(float)
    ok = np.isfinite(vas.to_numpy()) & np.isfinite(X.to_numpy()).all(axis=1)
    X, vas = X[ok], vas[ok]
    cat = pain_category(vas, mild_max=params.mild_max, severe_vas=params.severe_vas)
    counts = {c: int((cat == c).sum()) for c in PAIN_CATEGORIES}
    present = [c for c in PAIN_CATEGORIES if counts[c] > 0]
    n = len(vas)
    context = {"formula": formula, "n": n, "category_counts": counts}
    n_par = len(predictors) + len(present) - 1
    if n < max(params.min_patients, n_par + 2):
        return NotComputable(f"only {n} complete patients for {n_par} parameters", context)
    if len(present) < 2:
        return NotComputable(
            f"all patients are in one pain category ({', '.join(present)}); "
            "an ordinal model needs at least two",
            context,
        )
    const = [p for p in predictors if np.ptp(X[p].to_numpy()) == 0]
    if const:
        return NotComputable(
            f"predictor(s) {const} constant over the {n} patients; not identifiable", context
        )
    y = pd.Series(
        pd.Categorical(np.asarray(cat, dtype=object), categories=present, ordered=True), index=X.index
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = OrderedModel(y, X, distr="logit")
        try:
            fit = model.fit(method="bfgs", disp=False, maxiter=2000)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return NotComputable(f"the ordinal model could not be fitted ({exc})", context)
    bse = np.asarray(fit.bse, dtype=float)
    if not np.all(np.isfinite(bse[: len(predictors)])):
        return NotComputable(
            "standard errors are not finite (perfect separation of the categories?)", context
        )
    ci = fit.conf_int(alpha=1 - params.ci_level)
    coefs = []
    for t in predictors:
        b, lo, hi = float(fit.params[t]), float(ci.loc[t, 0]), float(ci.loc[t, 1])
        coefs.append(
            Coefficient(
                t,
                b,
                float(fit.bse[t]),
                lo,
                hi,
                float(fit.pvalues[t]),
                _safe_exp(b),
                _safe_exp(lo),
                _safe_exp(hi),
            )
        )
    cuts = model.transform_threshold_params(fit.params)[1:-1]
    thresholds = {f"{present[i]}|{present[i + 1]}": float(c) for i, c in enumerate(cuts)}
    llnull = _ordinal_null_loglik(np.asarray([counts[c] for c in present], dtype=float))
    pseudo = 1.0 - float(fit.llf) / llnull if llnull < 0 else None
    return OrdinalResult(
        formula,
        n,
        tuple(present),
        dict(counts),
        tuple(coefs),
        dict(thresholds),
        float(fit.llf),
        pseudo,
        bool(fit.mle_retvals.get("converged", False)),
    )


def _safe_exp(x: float) -> float | None:
    return math.exp(x) if x < 700 else None


def _ordinal_null_loglik(counts: np.ndarray) -> float:
    p = counts / counts.sum()
    return float(np.sum(counts * np.log(p)))


def delong_auc(
    scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray
) -> tuple[float, float]:
    """AUC and its DeLong (1988) variance, via the placement values.

    Parameters
    ----------
    scores : sequence of float
        Predicted score per case (higher: more likely positive).
    labels : sequence of bool
        True for the positive cases.

    Returns
    -------
    auc : float
    variance : float
        ``var(V10) / m + var(V01) / n`` (sample variances, ddof 1) for m positives and n negatives.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    m, n = pos.size, neg.size
    all_rank = sps.rankdata(np.r_[pos, neg])
    pos_rank_within = sps.rankdata(pos)
    neg_rank_within = sps.rankdata(neg)
    v10 = (all_rank[:m] - pos_rank_within) / n  # P(neg < pos_i) + 0.5 P(tie)
    v01 = 1.0 - (all_rank[m:] - neg_rank_within) / m  # P(pos > neg_j) + 0.5 P(tie)
    auc = float(v10.mean())
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    return auc, float(var)


def cv_auc(
    df: pd.DataFrame, features: Sequence[str], *, params: StatsParams | None = None
) -> PredictionResult | NotComputable:
    """Stratified k-fold cross-validated AUC of a logistic model of severe pain (VAS >= severe_vas).

    Features are standardised within each training fold (scikit-learn Pipeline), the
    logistic regression has an L2 penalty ``C = logistic_c``. The AUC is that of the pooled
    out-of-fold probabilities; its CI is DeLong's, normal, clipped to [0, 1].

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient with ``vas`` and the feature columns; incomplete rows are dropped.
    features : sequence of str
        Feature columns; those not in ``df`` are left out.
    params : StatsParams, optional
        Severe-pain cut-off, folds, seed, penalty, confidence level and the fewest patients
        (defaults when omitted).

    Returns
    -------
    PredictionResult or NotComputable
        The pooled out-of-fold AUC with its CI and the per-fold AUCs, or the reason it cannot be
        computed (no features, too few patients, fewer than 2 of a class).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    params = params or StatsParams()
    target = f"vas >= {params.severe_vas:g}"
    feats = [f for f in features if f in df.columns]
    context: dict[str, Any] = {"target": target, "features": list(features)}
    if not feats:
        return NotComputable(f"none of the features {list(features)} is in the linked table", context)
    X, _ = _design(df, feats)
    assert X is not None
    vas = pd.to_numeric(df["vas"], errors="coerce").astype(float) if "vas" in df else None
    if vas is None:
        return NotComputable("no vas column", context)
    ok = np.isfinite(vas.to_numpy()) & np.isfinite(X.to_numpy()).all(axis=1)
    Xv, y = X[ok].to_numpy(), (vas[ok].to_numpy() >= params.severe_vas)
    n, n_pos = len(y), int(y.sum())
    context.update(n=n, n_severe=n_pos)
    if n < params.min_patients:
        return NotComputable(f"only {n} complete patients (need >= {params.min_patients})", context)
    smaller = min(n_pos, n - n_pos)
    if smaller < 2:
        return NotComputable(
            f"{n_pos} severe and {n - n_pos} non-severe patients; cross-validation needs at least 2 of each",
            context,
        )
    k = min(params.cv_folds, smaller)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=params.seed)
    oof = np.empty(n)
    fold_aucs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train, test in folds.split(Xv, y):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=params.logistic_c, max_iter=1000))
            model.fit(Xv[train], y[train])
            oof[test] = model.predict_proba(Xv[test])[:, 1]
            fold_aucs.append(delong_auc(oof[test], y[test])[0])
    auc, var = delong_auc(oof, y)
    zc = sps.norm.ppf(0.5 + params.ci_level / 2)
    se = math.sqrt(max(var, 0.0))
    return PredictionResult(
        target,
        tuple(feats),
        f"logistic regression (L2, C={params.logistic_c:g}, standardised features)",
        n,
        n_pos,
        k,
        params.seed,
        auc,
        max(0.0, auc - zc * se),
        min(1.0, auc + zc * se),
        "DeLong, pooled out-of-fold predictions",
        tuple(fold_aucs),
    )
