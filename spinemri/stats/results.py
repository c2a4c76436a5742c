"""The frozen result objects of the study's statistics, and their strict-JSON and table forms.

Every analysis of :mod:`spinemri.stats.methods` returns one of these classes or a
:class:`NotComputable` carrying the reason; :class:`Analysis` holds the whole study
(:func:`spinemri.stats.study.analyze`). ``to_dict()`` gives the strict-JSON form (no NaN:
undefined numbers are None next to a reason), :attr:`Analysis.tables` the tidy tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..params import StatsParams, as_dict

__all__ = [
    "Analysis",
    "Analysed",
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
]


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
        """The result as strict JSON.

        Returns
        -------
        dict of str to Any
            ``computable: True`` and every field (non-finite numbers as None).
        """
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
        """The analysis that was not computed, as strict JSON.

        Returns
        -------
        dict of str to Any
            The ``context`` fields, ``computable: False`` and the ``reason``.
        """
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
        """The coefficient as strict JSON.

        Returns
        -------
        dict of str to Any
            Every field; without the odds-ratio fields for a linear model, with an
            ``odds_ratio_reason`` when exp(coefficient) overflows.
        """
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
    """Everything :func:`~spinemri.stats.study.analyze` computed. ``to_dict()`` is summary.json.

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
        """Strict-JSON dict (no NaN: undefined numbers are None next to a reason).

        Returns
        -------
        dict of str to Any
            summary.json without the software versions: counts, ``descriptives``, each analysis,
            ``regression`` (``ols``, ``ordinal``), ``prediction``, ``warnings`` and ``parameters``.
        """
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
        """The results as tidy DataFrames (written as CSV by ``spinemri analyze``).

        Returns
        -------
        dict of str to pandas.DataFrame
            ``descriptives``, ``tests``, ``posthoc``, ``spearman`` and ``coefficients``.
        """
        return _tables(self)

    def figures(self) -> dict[str, Any]:
        """Matplotlib figures by name (delegates to :mod:`spinemri.report.figures`).

        Returns
        -------
        dict of str to matplotlib.figure.Figure
            The figures of :func:`spinemri.report.figures.analysis_figures`, by file stem.
        """
        from ..report.figures import analysis_figures  # report layer; imported on demand only

        return analysis_figures(self)

    def to_html(self) -> str:
        """Self-contained HTML report (delegates to :mod:`spinemri.report.html`).

        Returns
        -------
        str
            The page of :func:`spinemri.report.html.render_report`, figures embedded.
        """
        from ..report.html import render_report  # report layer; imported on demand only

        return render_report(self)


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
