"""Statistics of change: does pain follow the burden over time?

Pure: DataFrames in, strict-JSON dicts out (for summary.json), :class:`~spinemri.stats.results.NotComputable`
with the reason when the data cannot answer. Two analyses (docs/surveillance.md):

* :func:`delta_correlation` — Spearman's rho of the change in burden against the change in VAS
  over the consecutive pairs (patient_changes.csv), with the Fisher-z interval of
  :func:`spinemri.stats.methods.spearman_with_ci` (Bonett-Wright SE; it treats pairs as
  independent) and a percentile bootstrap interval that resamples *patients* (their pairs
  together), which is right when a patient contributes several pairs;
* :func:`burden_mixed_model` — the linear mixed model ``vas ~ burden`` with a random intercept per
  patient (statsmodels ``MixedLM``, REML), over all time points: the within- and between-patient
  association of burden and pain, each patient their own baseline.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..stats.methods import spearman_with_ci
from ..stats.results import NotComputable
from .params import SurveillanceParams

__all__ = ["delta_correlation", "burden_mixed_model", "change_statistics"]


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def delta_correlation(
    patient_changes: pd.DataFrame,
    params: SurveillanceParams | None = None,
    *,
    x: str | None = None,
    y: str = "delta_vas",
) -> dict[str, Any]:
    """Spearman's rho of the change in burden against the change in VAS, with two intervals.

    Parameters
    ----------
    patient_changes : pandas.DataFrame
        patient_changes.csv (``patient_id`` and the two columns).
    params : SurveillanceParams, optional
        ``ci_level``, ``n_bootstrap``, ``seed``, ``burden_column``.
    x : str, optional
        Default ``"delta_" + params.burden_column``.
    y : str, default "delta_vas"

    Returns
    -------
    dict of str to Any
        Strict JSON: the :class:`~spinemri.stats.results.SpearmanResult` fields (``rho``,
        ``p_value``, ``ci_low``, ``ci_high`` Fisher-z) plus ``n_patients``,
        ``bootstrap_ci_low`` / ``bootstrap_ci_high`` (None with ``bootstrap_reason`` when not
        computed); or ``computable: False`` with the ``reason``.
    """
    p = params or SurveillanceParams()
    xc = x or f"delta_{p.burden_column}"
    for c in (xc, y, "patient_id"):
        if c not in patient_changes:
            return NotComputable(f"no {c} column in patient_changes", {"x": xc, "y": y}).to_dict()
    df = patient_changes[["patient_id", xc, y]].copy()
    df[xc] = pd.to_numeric(df[xc], errors="coerce")
    df[y] = pd.to_numeric(df[y], errors="coerce")
    df = df[np.isfinite(df[xc].astype(float)) & np.isfinite(df[y].astype(float))]
    res = spearman_with_ci(df[xc].tolist(), df[y].tolist(), x_name=xc, y_name=y, ci_level=p.ci_level)
    out = res.to_dict()
    if not res.computable:
        return out
    out["n_patients"] = int(df["patient_id"].nunique())
    groups = [g[[xc, y]].to_numpy(float) for _, g in df.groupby("patient_id")]
    out["bootstrap_ci_low"], out["bootstrap_ci_high"] = None, None
    if p.n_bootstrap == 0:
        out["bootstrap_reason"] = "n_bootstrap = 0"
    elif len(groups) < 4:
        out["bootstrap_reason"] = f"only {len(groups)} patients; the patient bootstrap needs >= 4"
    else:
        rng = np.random.default_rng(p.seed)
        rhos = []
        for _ in range(p.n_bootstrap):
            pick = rng.integers(0, len(groups), len(groups))
            s = np.concatenate([groups[i] for i in pick])
            if np.ptp(s[:, 0]) == 0 or np.ptp(s[:, 1]) == 0:
                continue
            rhos.append(float(sps.spearmanr(s[:, 0], s[:, 1]).statistic))
        if len(rhos) < 0.5 * p.n_bootstrap:
            out["bootstrap_reason"] = "most resamples had a constant variable"
        else:
            a = (1 - p.ci_level) / 2
            lo, hi = np.quantile(rhos, [a, 1 - a])
            out["bootstrap_ci_low"], out["bootstrap_ci_high"] = float(lo), float(hi)
            out["bootstrap_method"] = f"percentile, {len(rhos)} patient resamples (seed {p.seed})"
    return out


def burden_mixed_model(
    timepoints: pd.DataFrame,
    params: SurveillanceParams | None = None,
    *,
    burden: str | None = None,
    outcome: str = "vas",
) -> dict[str, Any]:
    """Linear mixed model ``vas ~ burden + (1 | patient)`` (statsmodels MixedLM, REML).

    Parameters
    ----------
    timepoints : pandas.DataFrame
        One row per patient and time point (:attr:`SurveillanceResult.timepoints`):
        ``patient_id``, the outcome and the burden column.
    params : SurveillanceParams, optional
        ``ci_level``, ``burden_column``.
    burden : str, optional
        Default ``params.burden_column``.
    outcome : str, default "vas"

    Returns
    -------
    dict of str to Any
        Strict JSON: ``computable``, ``formula``, ``n_obs``, ``n_patients``, ``coefficients``
        (``term``, ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value`` for the intercept and
        the burden; Wald z), ``group_variance``, ``residual_variance``, ``converged``,
        ``method``; or ``computable: False`` with the ``reason``.
    """
    p = params or SurveillanceParams()
    b = burden or p.burden_column
    formula = f"{outcome} ~ {b} + (1 | patient_id)"
    ctx: dict[str, Any] = {"formula": formula}
    for c in ("patient_id", b, outcome):
        if c not in timepoints:
            return NotComputable(f"no {c} column", ctx).to_dict()
    df = timepoints[["patient_id", b, outcome]].copy()
    df[b] = pd.to_numeric(df[b], errors="coerce")
    df[outcome] = pd.to_numeric(df[outcome], errors="coerce")
    df = df[np.isfinite(df[b].astype(float)) & np.isfinite(df[outcome].astype(float))]
    n, g = len(df), int(df["patient_id"].nunique())
    ctx.update({"n_obs": n, "n_patients": g})
    repeated = int((df.groupby("patient_id").size() >= 2).sum()) if n else 0
    if g < 3 or repeated < 2 or n < g + 3:
        return NotComputable(
            f"{n} observations of {g} patients ({repeated} with >= 2 time points); the model needs "
            ">= 3 patients, >= 2 of them with repeated time points, and n >= patients + 3",
            ctx,
        ).to_dict()
    if np.ptp(df[b].to_numpy(float)) == 0:
        return NotComputable(f"{b} is constant; its coefficient is not identifiable", ctx).to_dict()
    if np.ptp(df[outcome].to_numpy(float)) == 0:
        return NotComputable(f"all {outcome} values are identical", ctx).to_dict()
    from statsmodels.regression.mixed_linear_model import MixedLM

    exog = np.column_stack([np.ones(n), df[b].to_numpy(float)])
    model = MixedLM(df[outcome].to_numpy(float), exog, groups=df["patient_id"].astype(str).to_numpy())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = model.fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return NotComputable(f"MixedLM failed: {exc}", ctx).to_dict()
    z = sps.norm.ppf(0.5 + p.ci_level / 2)
    coefs = []
    for k, term in enumerate(("intercept", b)):
        est, se = float(fit.fe_params[k]), float(fit.bse_fe[k])
        pv = float(2 * sps.norm.sf(abs(est / se))) if se > 0 else math.nan
        coefs.append(
            {
                "term": term,
                "estimate": est,
                "se": _finite(se),
                "ci_low": _finite(est - z * se),
                "ci_high": _finite(est + z * se),
                "p_value": _finite(pv),
            }
        )
    notes = sorted({str(w.message).splitlines()[0] for w in caught})
    return {
        "computable": True,
        **ctx,
        "coefficients": coefs,
        "group_variance": _finite(float(np.asarray(fit.cov_re)[0, 0])),
        "residual_variance": _finite(float(fit.scale)),
        "converged": bool(fit.converged),
        "method": "REML, Wald z intervals",
        "ci_level": p.ci_level,
        "warnings": notes,
    }


def change_statistics(
    patient_changes: pd.DataFrame, timepoints: pd.DataFrame, params: SurveillanceParams | None = None
) -> dict[str, Any]:
    """Both analyses of change, as the ``surveillance`` block of summary.json.

    Parameters
    ----------
    patient_changes : pandas.DataFrame
        :attr:`SurveillanceResult.patient_changes`.
    timepoints : pandas.DataFrame
        :attr:`SurveillanceResult.timepoints`.
    params : SurveillanceParams, optional

    Returns
    -------
    dict of str to Any
        ``delta_correlation`` (:func:`delta_correlation`) and ``mixed_model``
        (:func:`burden_mixed_model`).
    """
    return {
        "delta_correlation": delta_correlation(patient_changes, params),
        "mixed_model": burden_mixed_model(timepoints, params),
    }
