"""The study's analysis: VAS against involvement pattern and marrow burden, on one linked table.

Pure: a linked DataFrame in (patients.csv joined to VAS by :func:`spinemri.link`), an
:class:`~spinemri.stats.results.Analysis` out. No file I/O. :func:`analyze` cleans the columns,
runs every method of :mod:`spinemri.stats.methods` and collects the warnings; an analysis the
data cannot support is a :class:`~spinemri.stats.results.NotComputable` carrying the reason.

Analyses (keys of :meth:`Analysis.to_dict <spinemri.stats.results.Analysis.to_dict>`, i.e.
summary.json):

- ``descriptives`` — VAS n, mean, SD, median, quartiles; overall, by dominant
  region, by lumbar involvement and by pain category.
- ``vas_by_dominant_region`` — Kruskal-Wallis H test, pairwise two-sided
  Mann-Whitney U post hoc with Holm's step-down adjustment.
- ``lumbar_vs_non_lumbar`` — two-sided Mann-Whitney U, rank-biserial effect size.
- ``spearman`` — Spearman's rho with a Fisher-z confidence interval (the pairs of
  :data:`SPEARMAN_PAIRS`).
- ``regression`` — OLS ``vas ~ lumbar_involved + n_involved + hi_area_ratio``
  with HC3 standard errors (t reference distribution), and a proportional-odds
  (ordinal logistic) model of the pain category.
- ``prediction`` — stratified k-fold cross-validated AUC of a logistic model of
  severe pain (VAS >= 7) from the imaging metrics, DeLong confidence interval
  of the pooled out-of-fold AUC.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..params import LinkParams, StatsParams, check_known_keys
from .methods import (
    PAIN_CATEGORIES,
    as_bool,
    compare_two_groups,
    cv_auc,
    describe,
    kruskal_by_group,
    ols_hc3,
    order_groups,
    ordinal_logit,
    pain_category,
    spearman_with_ci,
)
from .results import Analysed, Analysis, KruskalResult, MannWhitneyResult, NotComputable, OrdinalResult

__all__ = ["analyze", "SPEARMAN_PAIRS"]

# the package's logger name, as before the split into modules (log lines name their logger)
logger = logging.getLogger("spinemri.stats")

#: (x, y) pairs of the Spearman analysis, in output order.
SPEARMAN_PAIRS = (
    ("n_involved", "hi_area_ratio"),
    ("n_involved", "hi_volume_ratio"),
    ("vas", "n_involved"),
    ("vas", "hi_area_ratio"),
    ("vas", "hi_volume_ratio"),
)


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

    Raises
    ------
    InputError
        On a table that would give wrong numbers: a patient id on more than one row, or a
        VAS outside 0-10 (:func:`check_linked_rows`).
    """
    if params is None:
        check_known_keys(StatsParams, options, "analyze()")
        params = StatsParams(**options)
    elif options:
        raise TypeError("analyze(): pass either params= or keyword options, not both")
    df = linked.copy().reset_index(drop=True)
    check_linked_rows(df)
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
            df[col] = pd.Series([as_bool(v) for v in df[col]], dtype=object)
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
        regions = order_groups({str(g) for g in dv["dominant_region"].dropna()})
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


def check_linked_rows(linked: pd.DataFrame) -> None:
    """Refuse a linked table whose rows would make the statistics wrong.

    A patient on several rows would be counted several times (a table concatenated
    twice doubles n and shrinks every p-value); a VAS outside the 0-10 scale is not a
    pain score (a typo, another scale, or an Excel TRUE read as 1 would be inside
    and is refused by :func:`spinemri.link` instead). Missing or non-numeric VAS
    values are not errors: they are left out of the VAS analyses with a note.

    Parameters
    ----------
    linked : pandas.DataFrame
        The linked table (``patient_id`` and ``vas`` columns when present).

    Raises
    ------
    InputError
        Naming the duplicated ids or the out-of-range values and the patients.
    """
    if "patient_id" in linked.columns:
        ids = linked["patient_id"].astype(str)
        dup = sorted(set(ids[ids.duplicated()]))
        if dup:
            shown = ", ".join(repr(d) for d in dup[:10]) + (", ..." if len(dup) > 10 else "")
            raise InputError(
                f"linked table: {len(dup)} patient id(s) appear on more than one row ({shown}); each "
                "patient must be one row (was a table concatenated twice, or several time points "
                "mixed?): remove the duplicates and analyse again"
            )
    if "vas" in linked.columns:
        lo, hi = LinkParams.vas_min, LinkParams.vas_max
        vas = pd.to_numeric(linked["vas"], errors="coerce").astype(float)
        bad = linked.index[(vas < lo) | (vas > hi)]
        if len(bad):
            who = linked["patient_id"].astype(str) if "patient_id" in linked.columns else None
            shown = ", ".join(
                f"{who[i]!r} = {vas[i]:g}" if who is not None else f"row {i + 1} = {vas[i]:g}"
                for i in bad[:10]
            )
            raise InputError(
                f"linked table: {len(bad)} VAS value(s) outside {lo:g}-{hi:g} ({shown}); the VAS is a "
                "0-10 pain score: correct the clinical table and link again (spinemri link refuses "
                "such values)"
            )
