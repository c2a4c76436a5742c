"""The study's statistics: VAS against involvement pattern and marrow burden.

Pure: a linked DataFrame in (patients.csv joined to VAS by :func:`spinemri.link`),
frozen result objects out. No file I/O. Every analysis returns either its
result or a :class:`NotComputable` carrying the reason (a group of one,
identical VAS for everybody, no lumbar patients, too few patients, ...), so
degenerate data never raise. The choice of each test and its parameters is
explained in docs/statistics.md.

Analyses (keys of :meth:`Analysis.to_dict`, i.e. summary.json):

- ``descriptives`` — VAS n, mean, SD, median, quartiles; overall, by dominant
  region, by lumbar involvement and by pain category.
- ``vas_by_dominant_region`` — Kruskal-Wallis H test, pairwise two-sided
  Mann-Whitney U post hoc with Holm's step-down adjustment.
- ``lumbar_vs_non_lumbar`` — two-sided Mann-Whitney U, rank-biserial effect size.
- ``spearman`` — Spearman's rho with a Fisher-z confidence interval using the
  Bonett-Wright (2000) standard error ``sqrt((1 + rho**2 / 2) / (n - 3))``.
- ``regression`` — OLS ``vas ~ lumbar_involved + n_involved + hi_area_ratio``
  with HC3 standard errors (t reference distribution), and a proportional-odds
  (ordinal logistic) model of the pain category.
- ``prediction`` — stratified k-fold cross-validated AUC of a logistic model of
  severe pain (VAS >= 7) from the imaging metrics, DeLong confidence interval
  of the pooled out-of-fold AUC.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from .params import StatsParams, as_dict, check_known_keys

__all__ = [
    "analyze",
    "Analysis",
    "NotComputable",
    "GroupSummary",
    "PairwiseTest",
    "KruskalResult",
    "MannWhitneyResult",
    "SpearmanResult",
    "Coefficient",
    "OLSResult",
    "OrdinalResult",
    "PredictionResult",
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
    "REGION_ORDER",
    "PAIN_CATEGORIES",
    "SPEARMAN_PAIRS",
]

logger = logging.getLogger(__name__)

REGION_ORDER = ("cervical", "thoracic", "lumbar", "sacral", "none")
PAIN_CATEGORIES = ("mild", "moderate", "severe")
#: (x, y) pairs of the Spearman analysis, in output order.
_FLAG_COLUMNS = frozenset({"cervical_involved", "thoracic_involved", "lumbar_involved", "sacral_involved"})
SPEARMAN_PAIRS = (
    ("n_involved", "hi_area_ratio"),
    ("n_involved", "hi_volume_ratio"),
    ("vas", "n_involved"),
    ("vas", "hi_area_ratio"),
    ("vas", "hi_volume_ratio"),
)


# ---------------------------------------------------------------------------------------------
# result objects
# ---------------------------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    """Strict-JSON form: dataclasses/mappings/sequences recursed, numpy scalars to Python,
    non-finite floats to None (callers put the reason next to such a field)."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict) and not isinstance(obj, pd.DataFrame):
        return obj.to_dict()
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


class _Result:
    """Mixin: ``computable`` is True and ``to_dict`` is the strict-JSON form."""

    computable = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"computable": True}
        for f in fields(self):  # type: ignore[arg-type]
            out[f.name] = _jsonable(getattr(self, f.name))
        return out


@dataclass(frozen=True)
class NotComputable:
    """An analysis that could not be computed on these data, and why.

    Attributes
    ----------
    reason : str
    context : mapping
        Identifying fields kept in the output (e.g. ``x``, ``y``, ``n``).
    """

    reason: str
    context: Mapping[str, Any] = field(default_factory=dict)
    computable = False

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: _jsonable(v) for k, v in self.context.items()},
            "computable": False,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class GroupSummary(_Result):
    """VAS summary of one group: n, mean, SD (ddof 1), median, quartiles (linear interpolation)."""

    n: int
    mean: float | None
    sd: float | None
    median: float | None
    q1: float | None
    q3: float | None
    iqr: float | None
    min: float | None
    max: float | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PairwiseTest(_Result):
    """One post hoc comparison: two-sided Mann-Whitney U of groups a and b, Holm-adjusted."""

    a: str
    b: str
    n_a: int
    n_b: int
    statistic: float
    p_value: float
    p_holm: float


@dataclass(frozen=True)
class KruskalResult(_Result):
    """Kruskal-Wallis H test of VAS across groups, with pairwise post hoc tests."""

    test: str
    statistic: float
    df: int
    p_value: float
    n: int
    groups: Mapping[str, GroupSummary]
    posthoc: tuple[PairwiseTest, ...]
    posthoc_test: str
    posthoc_adjustment: str
    excluded_groups: tuple[str, ...]


@dataclass(frozen=True)
class MannWhitneyResult(_Result):
    """Two-sided Mann-Whitney U (statistic = U of the lumbar group) with rank-biserial r.

    ``effect_size`` = 2U / (n_lumbar n_other) - 1: +1 when every lumbar VAS exceeds every
    other VAS, -1 for the reverse, 0 for complete overlap.
    """

    test: str
    statistic: float
    p_value: float
    effect_size: float
    effect_size_name: str
    n_lumbar: int
    n_other: int
    median_lumbar: float
    median_other: float
    method: str


@dataclass(frozen=True)
class SpearmanResult(_Result):
    """Spearman's rho, its p-value (scipy, t approximation) and a Fisher-z CI."""

    x: str
    y: str
    rho: float
    p_value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    ci_method: str
    ci_reason: str | None = None


@dataclass(frozen=True)
class Coefficient(_Result):
    """One model coefficient with its SE, CI and p-value (``odds_ratio`` for logistic models)."""

    term: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    odds_ratio: float | None = None
    or_ci_low: float | None = None
    or_ci_high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.odds_ratio is None and self.or_ci_low is None and self.or_ci_high is None:
            for k in ("odds_ratio", "or_ci_low", "or_ci_high"):  # linear model: no odds ratios
                out.pop(k)
        elif None in (out["odds_ratio"], out["or_ci_low"], out["or_ci_high"]):
            out["odds_ratio_reason"] = "exp(coefficient) overflows a float"
        return out


@dataclass(frozen=True)
class OLSResult(_Result):
    """OLS with heteroscedasticity-consistent (HC3) standard errors."""

    formula: str
    n: int
    df_resid: float
    r_squared: float
    adj_r_squared: float
    cov_type: str
    reference_distribution: str
    coefficients: tuple[Coefficient, ...]


@dataclass(frozen=True)
class OrdinalResult(_Result):
    """Proportional-odds logistic model of the pain category (statsmodels OrderedModel)."""

    formula: str
    n: int
    categories: tuple[str, ...]
    category_counts: Mapping[str, int]
    coefficients: tuple[Coefficient, ...]
    thresholds: Mapping[str, float]
    log_likelihood: float
    pseudo_r2_mcfadden: float | None
    converged: bool


@dataclass(frozen=True)
class PredictionResult(_Result):
    """Cross-validated AUC of severe pain from imaging metrics."""

    target: str
    features: tuple[str, ...]
    model: str
    n: int
    n_severe: int
    n_folds: int
    seed: int
    auc: float
    ci_low: float
    ci_high: float
    ci_method: str
    fold_aucs: tuple[float, ...]


Analysed = Any  # one of the result classes above, or NotComputable


@dataclass(frozen=True)
class Analysis:
    """Everything :func:`analyze` computed. ``to_dict()`` is summary.json.

    Attributes
    ----------
    n_patients : int
        Rows (patients) of the linked table.
    n_with_vas : int
        Patients with a valid VAS (the sample of every VAS analysis).
    data : pandas.DataFrame
        The analysed columns (``patient_id, vas, pain_category, dominant_region,
        lumbar_involved`` and the metrics), for figures.
    """

    n_patients: int
    n_with_vas: int
    descriptives: Mapping[str, Any]
    vas_by_dominant_region: Analysed
    lumbar_vs_non_lumbar: Analysed
    spearman: tuple[Analysed, ...]
    ols: Analysed
    ordinal: Analysed
    prediction: Analysed
    warnings: tuple[str, ...]
    params: StatsParams
    data: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON dict (no NaN: undefined numbers are None next to a reason)."""
        return {
            "n_patients": self.n_patients,
            "n_with_vas": self.n_with_vas,
            "n_missing_vas": self.n_patients - self.n_with_vas,
            "descriptives": _jsonable(self.descriptives),
            "vas_by_dominant_region": self.vas_by_dominant_region.to_dict(),
            "lumbar_vs_non_lumbar": self.lumbar_vs_non_lumbar.to_dict(),
            "spearman": [s.to_dict() for s in self.spearman],
            "regression": {"ols": self.ols.to_dict(), "ordinal": self.ordinal.to_dict()},
            "prediction": self.prediction.to_dict(),
            "warnings": list(self.warnings),
            "parameters": _jsonable(as_dict(self.params)),
        }

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The results as tidy DataFrames (written as CSV by ``spinemri analyze``)."""
        return _tables(self)

    def figures(self) -> dict[str, Any]:
        """Matplotlib figures by name (delegates to :mod:`spinemri.report.figures`)."""
        from .report.figures import analysis_figures  # report layer; imported on demand only

        return analysis_figures(self)

    def to_html(self) -> str:
        """Self-contained HTML report (delegates to :mod:`spinemri.report.html`)."""
        from .report.html import render_report  # report layer; imported on demand only

        return render_report(self)


# ---------------------------------------------------------------------------------------------
# the analyses
# ---------------------------------------------------------------------------------------------


def _finite(values: Iterable[Any]) -> np.ndarray:
    a = np.asarray(pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce"), dtype=float)
    return a[np.isfinite(a)]


def describe(values: Iterable[float]) -> GroupSummary:
    """VAS summary of one group (missing values dropped)."""
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
    """Holm's step-down adjusted p-values (monotone, capped at 1)."""
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


def _order_groups(names: Iterable[str]) -> list[str]:
    known = {r: i for i, r in enumerate(REGION_ORDER)}
    return sorted(names, key=lambda g: (known.get(g, len(known)), g))


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
    """
    df = pd.DataFrame(
        {"vas": pd.to_numeric(pd.Series(list(vas), dtype=object), errors="coerce"), "g": list(group)}
    )
    df = df[np.isfinite(df["vas"].astype(float)) & df["g"].notna()]
    df["g"] = df["g"].astype(str)
    excluded = tuple(sorted(set(df["g"]) & set(exclude)))
    df = df[~df["g"].isin(set(exclude))]
    names = _order_groups(set(df["g"]))
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
    """Two-sided Mann-Whitney U of VAS, lumbar-involved (``in_group`` true) versus the others."""
    df = pd.DataFrame(
        {
            "vas": pd.to_numeric(pd.Series(list(vas), dtype=object), errors="coerce"),
            "g": [_as_bool(v) for v in in_group],
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
            flags = [_as_bool(v) for v in col]
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
    """OLS ``outcome ~ predictors`` with HC3 standard errors and t-based CIs and p-values."""
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
    """Ordered pain category: mild (VAS <= mild_max), severe (VAS >= severe_vas), moderate between."""
    v = np.asarray(list(vas), dtype=float)
    labels = np.where(v <= mild_max, "mild", np.where(v >= severe_vas, "severe", "moderate")).astype(object)
    labels[~np.isfinite(v)] = None
    return pd.Categorical(labels, categories=list(PAIN_CATEGORIES), ordered=True)


def ordinal_logit(
    df: pd.DataFrame, predictors: Sequence[str], *, params: StatsParams | None = None
) -> OrdinalResult | NotComputable:
    """Proportional-odds logistic model of the pain category on ``predictors`` (BFGS fit)."""
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


# ---------------------------------------------------------------------------------------------
# the whole analysis
# ---------------------------------------------------------------------------------------------


def _as_bool(v: Any) -> bool | None:
    """True/False from bools, 0/1 and the usual strings; None for missing or unknown."""
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


def analyze(linked: pd.DataFrame, *, params: StatsParams | None = None, **options: Any) -> Analysis:
    """Run the study's analyses on a linked table.

    Parameters
    ----------
    linked : pandas.DataFrame
        One row per patient: ``vas`` (0-10, NaN when unknown) and the DESIGN §5 patient columns
        (``n_involved``, ``lumbar_involved``, ``dominant_region``, ``hi_area_ratio``,
        ``hi_volume_ratio``, ...).
    params : StatsParams, optional
        Or ``**options``: its fields (``ci_level``, ``cv_folds``, ``seed``, ...).

    Returns
    -------
    Analysis
        Never raises on degenerate data: each analysis that cannot be computed is a
        :class:`NotComputable` with the reason.
    """
    if params is None:
        check_known_keys(StatsParams, options, "analyze()")
        params = StatsParams(**options)
    elif options:
        raise TypeError("analyze(): pass either params= or keyword options, not both")
    df = linked.copy().reset_index(drop=True)
    notes: list[str] = []
    if "vas" not in df.columns:
        notes.append(
            "the linked table has no 'vas' column: no VAS analysis is possible (run spinemri link first)"
        )
        df["vas"] = np.nan
    vas_all = pd.to_numeric(df["vas"], errors="coerce").astype(float)
    bad = int((df["vas"].notna() & vas_all.isna()).sum())
    if bad:
        notes.append(f"{bad} non-numeric VAS value(s) treated as missing")
    df["vas"] = vas_all
    for col in ("n_involved", "hi_area_ratio", "hi_volume_ratio", "hi_area_ratio_max"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in ("cervical_involved", "thoracic_involved", "lumbar_involved", "sacral_involved"):
        if col in df.columns:
            df[col] = pd.Series([_as_bool(v) for v in df[col]], dtype=object)
    if "dominant_region" in df.columns:
        df["dominant_region"] = (
            df["dominant_region"].astype(object).where(df["dominant_region"].notna(), None)
        )
    df["pain_category"] = pain_category(df["vas"], mild_max=params.mild_max, severe_vas=params.severe_vas)

    n_patients = len(df)
    has_vas = np.isfinite(df["vas"].to_numpy())
    n_vas = int(has_vas.sum())
    if n_vas < n_patients:
        notes.append(
            f"{n_patients - n_vas} of {n_patients} patients have no valid VAS and are left out of the "
            "VAS analyses"
        )
    dv = df[has_vas]
    few = n_vas < params.min_patients
    few_reason = f"only {n_vas} patients with a valid VAS (need >= {params.min_patients})"

    # descriptives
    desc: dict[str, Any] = {"vas": {"overall": describe(dv["vas"])}}
    if "dominant_region" in dv.columns:
        regions = _order_groups({str(g) for g in dv["dominant_region"].dropna()})
        desc["vas"]["by_dominant_region"] = {
            g: describe(dv.loc[dv["dominant_region"] == g, "vas"]) for g in regions
        }
    if "lumbar_involved" in dv.columns:
        desc["vas"]["by_lumbar_involved"] = {
            "lumbar": describe(dv.loc[dv["lumbar_involved"] == True, "vas"]),  # noqa: E712
            "non_lumbar": describe(dv.loc[dv["lumbar_involved"] == False, "vas"]),  # noqa: E712
        }
    desc["vas"]["by_pain_category"] = {
        c: describe(dv.loc[dv["pain_category"] == c, "vas"]) for c in PAIN_CATEGORIES
    }

    def need(col: str, name: str) -> NotComputable | None:
        if col not in df.columns:
            return NotComputable(f"column {col!r} not in the linked table", {"test": name})
        return None

    # region comparison
    kr = need("dominant_region", "kruskal") or (
        NotComputable(few_reason, {"test": "kruskal"})
        if few
        else kruskal_by_group(
            dv["vas"], dv["dominant_region"], exclude=params.exclude_regions, min_n=params.min_patients
        )
    )
    mw = need("lumbar_involved", "mannwhitneyu") or (
        NotComputable(few_reason, {"test": "mannwhitneyu"})
        if few
        else compare_two_groups(dv["vas"], dv["lumbar_involved"], min_n=params.min_patients)
    )

    # correlations
    spear: list[Analysed] = []
    for x, y in SPEARMAN_PAIRS:
        miss = [c for c in (x, y) if c not in df.columns]
        if miss:
            spear.append(NotComputable(f"column(s) {miss} not in the linked table", {"x": x, "y": y}))
            continue
        src = dv if "vas" in (x, y) else df
        spear.append(
            spearman_with_ci(
                src[x], src[y], x_name=x, y_name=y, ci_level=params.ci_level, min_n=params.min_patients
            )
        )

    # models
    preds = list(params.ols_predictors)
    ols = (
        NotComputable(few_reason, {"formula": "vas ~ " + " + ".join(preds)})
        if few
        else ols_hc3(dv, preds, ci_level=params.ci_level, min_n=params.min_patients)
    )
    ordl = (
        NotComputable(few_reason, {"formula": "pain_category ~ " + " + ".join(preds)})
        if few
        else ordinal_logit(dv, preds, params=params)
    )
    pred = (
        NotComputable(few_reason, {"target": f"vas >= {params.severe_vas:g}"})
        if few
        else cv_auc(dv, params.prediction_features, params=params)
    )

    # warnings
    if isinstance(kr, KruskalResult):
        for g, s in kr.groups.items():
            if s.n < params.small_group_n:
                notes.append(
                    f"dominant region '{g}' has only {s.n} patient(s) (< {params.small_group_n}): "
                    "its comparisons have little power"
                )
    if isinstance(mw, MannWhitneyResult):
        for name, k in (("lumbar", mw.n_lumbar), ("non-lumbar", mw.n_other)):
            if k < params.small_group_n:
                notes.append(f"the {name} group has only {k} patient(s) (< {params.small_group_n})")
    if isinstance(ordl, OrdinalResult) and not ordl.converged:
        notes.append(
            "the ordinal model's optimiser did not report convergence; treat its estimates with care"
        )
    named = [
        ("vas_by_dominant_region", kr),
        ("lumbar_vs_non_lumbar", mw),
        ("regression.ols", ols),
        ("regression.ordinal", ordl),
        ("prediction", pred),
    ]
    named += [(f"spearman {s.to_dict()['x']} vs {s.to_dict()['y']}", s) for s in spear]
    for name, res in named:
        if isinstance(res, NotComputable):
            notes.append(f"{name}: not computable: {res.reason}")

    keep = [
        c
        for c in (
            "patient_id",
            "vas",
            "pain_category",
            "dominant_region",
            "lumbar_involved",
            "n_involved",
            "hi_area_ratio",
            "hi_volume_ratio",
            "hi_area_ratio_max",
        )
        if c in df.columns
    ]
    for w in notes:
        logger.info("analyze: %s", w)
    return Analysis(
        n_patients,
        n_vas,
        dict(desc),
        kr,
        mw,
        tuple(spear),
        ols,
        ordl,
        pred,
        tuple(notes),
        params,
        df[keep].copy(),
    )


def _tables(a: Analysis) -> dict[str, pd.DataFrame]:
    rows = []
    for grouping, groups in a.descriptives["vas"].items():
        if isinstance(groups, GroupSummary):
            groups = {"all": groups}
        for g, s in groups.items():
            d = s.to_dict()
            d.pop("computable")
            d["notes"] = "; ".join(d["notes"])
            rows.append({"grouping": grouping, "group": g, **d})
    out = {"descriptives": pd.DataFrame(rows)}
    tests = []
    for name, res in (
        ("vas_by_dominant_region", a.vas_by_dominant_region),
        ("lumbar_vs_non_lumbar", a.lumbar_vs_non_lumbar),
    ):
        d = res.to_dict()
        tests.append(
            {
                "analysis": name,
                "test": d.get("test"),
                "computable": d["computable"],
                "statistic": d.get("statistic"),
                "p_value": d.get("p_value"),
                "effect_size": d.get("effect_size"),
                "reason": d.get("reason"),
            }
        )
    out["tests"] = pd.DataFrame(tests)
    post = a.vas_by_dominant_region.posthoc if isinstance(a.vas_by_dominant_region, KruskalResult) else ()
    out["posthoc"] = pd.DataFrame(
        [{k: v for k, v in p.to_dict().items() if k != "computable"} for p in post],
        columns=["a", "b", "n_a", "n_b", "statistic", "p_value", "p_holm"],
    )
    out["spearman"] = pd.DataFrame(
        [s.to_dict() for s in a.spearman],
        columns=[
            "x",
            "y",
            "computable",
            "rho",
            "p_value",
            "ci_low",
            "ci_high",
            "n",
            "ci_method",
            "ci_reason",
            "reason",
        ],
    )
    coef_rows = []
    for model, res in (("ols", a.ols), ("ordinal", a.ordinal)):
        if res.computable:
            for c in res.coefficients:
                coef_rows.append(
                    {"model": model, **{k: v for k, v in c.to_dict().items() if k != "computable"}}
                )
            if model == "ordinal":
                for t, v in res.thresholds.items():
                    coef_rows.append({"model": model, "term": f"threshold {t}", "estimate": v})
    out["coefficients"] = pd.DataFrame(
        coef_rows,
        columns=[
            "model",
            "term",
            "estimate",
            "se",
            "ci_low",
            "ci_high",
            "p_value",
            "odds_ratio",
            "or_ci_low",
            "or_ci_high",
        ],
    )
    return out
