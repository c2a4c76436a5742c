"""Statistics of change on synthetic data with a known effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spinemri.surveillance.params import SurveillanceParams
from spinemri.surveillance.stats import burden_mixed_model, change_statistics, delta_correlation


def long_table(n_patients: int, n_tp: int, b: float, seed: int) -> pd.DataFrame:
    """VAS = 2 + b * burden + patient intercept (sd 1.5) + noise (sd 0.5)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        u = rng.normal(0, 1.5)
        for t in range(n_tp):
            burden = rng.uniform(0, 0.3)
            rows.append(
                {
                    "patient_id": f"P{i:03d}",
                    "timepoint": f"tp{t + 1}",
                    "hi_volume_ratio": burden,
                    "vas": 2 + b * burden + u + rng.normal(0, 0.5),
                }
            )
    return pd.DataFrame(rows)


def deltas(tp: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for pid, g in tp.groupby("patient_id"):
        for a, c in zip(g.iloc[:-1].itertuples(), g.iloc[1:].itertuples(), strict=True):
            rows.append(
                {
                    "patient_id": pid,
                    "delta_hi_volume_ratio": c.hi_volume_ratio - a.hi_volume_ratio,
                    "delta_vas": c.vas - a.vas,
                }
            )
    return pd.DataFrame(rows)


def test_mixed_model_recovers_the_slope() -> None:
    tp = long_table(40, 3, b=10.0, seed=1)
    res = burden_mixed_model(tp)
    assert res["computable"] and res["converged"]
    slope = res["coefficients"][1]
    assert slope["term"] == "hi_volume_ratio"
    assert slope["ci_low"] < 10.0 < slope["ci_high"]
    assert slope["ci_low"] > 0 and slope["p_value"] < 1e-6
    assert res["n_obs"] == 120 and res["n_patients"] == 40
    # the patient intercepts (sd 1.5) are seen as a variance of about 2.25, the noise as 0.25
    assert 1.0 < res["group_variance"] < 4.0 and 0.15 < res["residual_variance"] < 0.4


def test_mixed_model_finds_no_effect_when_there_is_none() -> None:
    res = burden_mixed_model(long_table(40, 3, b=0.0, seed=2))
    slope = res["coefficients"][1]
    assert slope["ci_low"] < 0.0 < slope["ci_high"]


def test_delta_correlation_sign_and_intervals() -> None:
    pc = deltas(long_table(40, 3, b=10.0, seed=3))
    res = delta_correlation(pc, SurveillanceParams(n_bootstrap=500))
    assert res["computable"] and res["n"] == 80 and res["n_patients"] == 40
    # within a patient the intercept cancels: delta VAS = 10 delta burden + noise (sd 0.7) -> rho large
    assert res["rho"] > 0.6 and res["ci_low"] > 0.4
    assert res["bootstrap_ci_low"] < res["rho"] < res["bootstrap_ci_high"]
    null = delta_correlation(deltas(long_table(40, 3, b=0.0, seed=4)), SurveillanceParams(n_bootstrap=500))
    assert null["ci_low"] < 0 < null["ci_high"]


def test_not_computable_with_reasons() -> None:
    tiny = long_table(2, 2, b=1.0, seed=5)
    assert burden_mixed_model(tiny)["computable"] is False
    assert "patients" in burden_mixed_model(tiny)["reason"]
    one_each = long_table(10, 1, b=1.0, seed=6)
    assert burden_mixed_model(one_each)["computable"] is False
    pc = pd.DataFrame({"patient_id": ["a", "b"], "delta_hi_volume_ratio": [0.1, 0.2], "delta_vas": [1, 2]})
    assert delta_correlation(pc)["computable"] is False
    assert delta_correlation(pc.drop(columns="delta_vas"))["reason"].startswith("no delta_vas")
    out = change_statistics(pc, tiny)
    assert set(out) == {"delta_correlation", "mixed_model"}
    import json

    json.dumps(out, allow_nan=False)  # strict JSON for summary.json


@pytest.mark.parametrize("n_boot", [0])
def test_bootstrap_off(n_boot: int) -> None:
    pc = deltas(long_table(10, 3, b=10.0, seed=7))
    res = delta_correlation(pc, SurveillanceParams(n_bootstrap=n_boot))
    assert res["bootstrap_ci_low"] is None and res["bootstrap_reason"] == "n_bootstrap = 0"
