"""Write a follow-up phantom cohort: every patient scanned at several dates, with the change truth.

Layout (docs/phantom.md, "Follow-up time points")::

    OUT/
      SMR-001/2024-03-05/ image.nii.gz | dicom/IM01kkkk.dcm   the scan of that date
                          vertebrae_mask.nii.gz
              2024-06-05/ ...
      clinical.csv                 one row per patient x time point: patient_id, timepoint, scan_date,
                                   age, sex, vas, radiotherapy_date, radiotherapy_levels
      truth.csv                    one row per patient x time point (patient columns + settings)
      truth_vertebrae.csv          one row per patient x time point x vertebra
      truth_lesions.csv            one row per patient x time point x lesion (analytic volume too)
      truth_changes.csv            one row per patient x vertebra x consecutive pair (intended status)
      truth_lesion_changes.csv     one row per lesion link (class, ids before and after)
      truth_patient_changes.csv    one row per patient x consecutive pair (status, delta_vas)
      truth.json                   all of it, the plans, the poses, the VAS model

Each patient folder is written under a hidden temporary name and renamed into place; root files
are written atomically (as :func:`spinemri.io.cohort_write.write_cohort` does).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..phantom.changes import REQUIRED_GROUPS
from ..phantom.followup import Followup, check_followup_options, make_followup
from ..phantom.make import make_phantom
from ..volume import Volume
from .atomic import write_text_atomic
from .cohort_write import CohortSpec, patient_options, write_case
from .tables import write_csv

__all__ = ["FOLLOWUP_VAS_MODEL", "write_followup_cohort", "followup_vas"]

logger = logging.getLogger(__name__)

#: Pain at every scan (docs/phantom.md): vas* = intercept + lumbar * lumbar_involved
#: + per_vertebra * n_involved + per_cm3 * total lesion volume (cm³) + u_patient + e_scan,
#: u ~ N(0, patient_sd²), e ~ N(0, noise_sd²); vas = round(clip(vas*, 0, 10)).
FOLLOWUP_VAS_MODEL: dict[str, float] = {
    "intercept": 1.0,
    "lumbar": 1.5,
    "per_vertebra": 0.5,
    "per_cm3": 0.5,
    "patient_sd": 1.0,
    "noise_sd": 0.5,
}

#: Index of the patient whose last interval is short (minimum-interval guard), and of the one
#: irradiated before a progression (pseudoprogression guard), when the cohort has them.
SHORT_INTERVAL_PATIENT = 3
RADIOTHERAPY_PATIENT = 1


def followup_vas(
    scans: pd.DataFrame, rng: np.random.Generator, model: dict[str, float] = FOLLOWUP_VAS_MODEL
) -> pd.DataFrame:
    """Pain scores of every patient x time point from the burden at that scan.

    Parameters
    ----------
    scans : pandas.DataFrame
        One row per patient x time point, grouped by patient, with ``patient_id``,
        ``lumbar_involved``, ``n_involved`` and ``total_lesion_volume_mm3_analytic``.
    rng : numpy.random.Generator
        Draws one ``N(0, patient_sd)`` per patient (in order of appearance), then one
        ``N(0, noise_sd)`` per row.
    model : dict of str to float, default :data:`FOLLOWUP_VAS_MODEL`

    Returns
    -------
    pandas.DataFrame
        Same index: ``vas_expected`` (linear predictor without the random terms) and
        ``vas_true`` (int in 0..10).
    """
    lin = (
        model["intercept"]
        + model["lumbar"] * scans["lumbar_involved"].astype(float)
        + model["per_vertebra"] * scans["n_involved"].astype(float)
        + model["per_cm3"] * scans["total_lesion_volume_mm3_analytic"].astype(float) / 1000.0
    )
    pids = list(dict.fromkeys(scans["patient_id"]))
    u = dict(zip(pids, rng.normal(0.0, model["patient_sd"], len(pids)), strict=True))
    raw = lin + scans["patient_id"].map(u).astype(float) + rng.normal(0.0, model["noise_sd"], len(scans))
    return pd.DataFrame(
        {"vas_expected": lin.to_numpy(), "vas_true": np.clip(np.rint(raw), 0, 10).astype(int)},
        index=scans.index,
    )


def _front(df: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    return df[[*first, *[c for c in df.columns if c not in first]]]


def _write_patient(
    out: Path, pid: str, fu: Followup, formats: list[str], seconds: list[Volume | None]
) -> None:
    tmp = out / f".{pid}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        for scan, fmt, second in zip(fu.scans, formats, seconds, strict=True):
            write_case(
                tmp / scan.timepoint,
                pid,
                scan.seed,
                fmt,
                scan.image,
                scan.mask,
                second,
                study_date=scan.scan_date.replace("-", ""),
            )
        if (out / pid).exists():
            shutil.rmtree(out / pid)
        os.replace(tmp, out / pid)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_followup_cohort(
    out_dir: str | os.PathLike[str],
    spec: CohortSpec | None = None,
    timepoints: int = 3,
    **phantom_options: Any,
) -> dict[str, pd.DataFrame]:
    """Write ``spec.n_patients`` follow-up phantoms of ``timepoints`` scans each, with the truth.

    Patient k (0-based) uses the seed of :func:`~spinemri.io.cohort_write.write_cohort`, the same
    per-patient acquisition draws, and a change plan from its seed: patients 1 and 2 (k = 0, 1)
    contain at least the scenarios of ``REQUIRED_GROUPS[k]`` (so together, with 3 time points,
    every vertebra status and every lesion class), the others follow a drawn course
    (:data:`~spinemri.phantom.changes.COURSES`); patient 2 (k = 1) is irradiated before a
    progression, patient 4 (k = 3) has a short last interval. ``format="mixed"`` alternates
    DICOM and NIfTI over patients and time points (DICOM when k + t is even);
    ``second_series=N`` gives the DICOM scans of the first N patients the other contrast as
    series 2.

    Parameters
    ----------
    out_dir : path-like
        Created when missing. Existing patient folders of the same ids are replaced.
    spec : CohortSpec, optional
    timepoints : int, default 3
        Scans per patient (2-12).
    **phantom_options
        :class:`~spinemri.phantom.PhantomParams` fields for every baseline scan; they
        override the per-patient draws.

    Returns
    -------
    dict of DataFrame
        ``patients`` (truth.csv), ``vertebrae``, ``lesions``, ``clinical``, ``changes``,
        ``lesion_changes`` and ``patient_changes``.

    Raises
    ------
    ConfigError
        For ``timepoints`` outside 2-12, an out-of-range option or a plan that does not fit.
    InputError
        When ``out_dir`` exists and is not a folder.
    """
    if isinstance(timepoints, bool) or not isinstance(timepoints, int) or not 2 <= timepoints <= 12:
        raise ConfigError(
            f"cohort: {timepoints!r} time points; a follow-up cohort has 2-12 (1: use write_cohort)"
        )
    spec = spec or CohortSpec()
    check_followup_options(timepoints, **{"contrast": spec.contrast, **phantom_options})
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; pass a folder for the cohort")
    out.mkdir(parents=True, exist_ok=True)
    cohort_rng = np.random.default_rng(np.random.SeedSequence([int(spec.seed), 7331]))
    pats, verts, lesions, changes, lchanges, pchanges, cases, clin = [], [], [], [], [], [], [], []
    for n in range(spec.n_patients):
        pid = f"{spec.id_prefix}-{n + 1:03d}"
        pseed = int(np.random.SeedSequence([int(spec.seed), n]).generate_state(1)[0] & 0x7FFFFFFF)
        drawn = patient_options(cohort_rng, spec.contrast)
        for key in ("n_involved", "p_collapse"):  # the change plan places the lesions
            drawn.pop(key)
        opts = {**drawn, **phantom_options}
        fu = make_followup(
            pseed,
            timepoints,
            require=REQUIRED_GROUPS[n] if n < len(REQUIRED_GROUPS) else (),
            short_interval=n == SHORT_INTERVAL_PATIENT,
            radiotherapy=n == RADIOTHERAPY_PATIENT,
            **opts,
        )
        formats = [
            spec.format if spec.format != "mixed" else ("dicom" if (n + t) % 2 == 0 else "nifti")
            for t in range(len(fu.scans))
        ]
        seconds: list[Volume | None] = []
        for scan, fmt in zip(fu.scans, formats, strict=True):
            if fmt == "dicom" and n < spec.second_series:
                other = "t1" if opts["contrast"] == "stir" else "stir"
                img = make_phantom(scan.seed, params=replace(scan.truth.params, contrast=other))[0]
                seconds.append(Volume(img.data, scan.image.affine, dict(img.meta)))
            else:
                seconds.append(None)
        _write_patient(out, pid, fu, formats, seconds)
        logger.info("phantom follow-up cohort: wrote %s (%d time points, seed %d)", pid, len(fu.scans), pseed)
        age = int(np.clip(np.rint(cohort_rng.normal(58, 10)), 30, 90))
        for scan, fmt in zip(fu.scans, formats, strict=True):
            tp = {"patient_id": pid, "timepoint": scan.timepoint, "scan_date": scan.scan_date}
            pats.append(
                {
                    **tp,
                    **scan.truth.patient.iloc[0].to_dict(),
                    "total_lesion_volume_mm3_analytic": float(scan.lesions["volume_mm3_analytic"].sum())
                    if len(scan.lesions)
                    else 0.0,
                    "seed": scan.seed,
                    "format": fmt,
                    "contrast": opts["contrast"],
                }
            )
            verts.append(
                scan.truth.vertebrae.drop(
                    columns=["mid_slice", "mid_vertebra_pixels", "mid_lesion_pixels"]
                ).assign(**tp)
            )
            lesions.append(scan.lesions.assign(**tp))
            clin.append(
                {
                    **tp,
                    "age": age,
                    "sex": "F",
                    "radiotherapy_date": fu.radiotherapy_date or "",
                    "radiotherapy_levels": ";".join(fu.radiotherapy_levels),
                }
            )
        changes.append(fu.changes.assign(patient_id=pid))
        lchanges.append(fu.lesion_changes.assign(patient_id=pid))
        pchanges.append(fu.patient_changes.assign(patient_id=pid))
        cases.append(
            {
                "patient_id": pid,
                "seed": pseed,
                "scans": [
                    {
                        "timepoint": s.timepoint,
                        "seed": s.seed,
                        "format": f,
                        "pose": s.pose.tolist(),
                        "params": s.truth.params.to_dict(),
                        "noise_sigma": s.truth.noise_sigma,
                    }
                    for s, f in zip(fu.scans, formats, strict=True)
                ],
                "plan": [asdict(t) for t in fu.plan],
                "radiotherapy_date": fu.radiotherapy_date,
                "radiotherapy_levels": list(fu.radiotherapy_levels),
            }
        )
    patients = pd.DataFrame(pats)
    vas = followup_vas(patients, cohort_rng)
    patients = pd.concat([patients, vas], axis=1)
    tp_key = ["patient_id", "timepoint"]
    clinical = pd.DataFrame(clin)
    clinical.insert(5, "vas", vas["vas_true"].to_numpy())
    vert_df = _front(pd.concat(verts, ignore_index=True), ["patient_id", "timepoint", "scan_date"])
    les_df = _front(pd.concat(lesions, ignore_index=True), ["patient_id", "timepoint", "scan_date"])
    ch_df = _front(pd.concat(changes, ignore_index=True), ["patient_id"])
    lc_df = _front(pd.concat(lchanges, ignore_index=True), ["patient_id"])
    pc_df = _front(pd.concat(pchanges, ignore_index=True), ["patient_id"])
    v = patients.set_index(tp_key)["vas_true"]
    pc_df["vas_from"] = [
        int(v[(p, t)]) for p, t in zip(pc_df["patient_id"], pc_df["timepoint_from"], strict=True)
    ]
    pc_df["vas_to"] = [
        int(v[(p, t)]) for p, t in zip(pc_df["patient_id"], pc_df["timepoint_to"], strict=True)
    ]
    pc_df["delta_vas"] = pc_df["vas_to"] - pc_df["vas_from"]
    tables = {
        "clinical.csv": clinical,
        "truth.csv": patients,
        "truth_vertebrae.csv": vert_df,
        "truth_lesions.csv": les_df,
        "truth_changes.csv": ch_df,
        "truth_lesion_changes.csv": lc_df,
        "truth_patient_changes.csv": pc_df,
    }
    for name, df in tables.items():
        write_csv(df, out / name)
    doc = {
        "generator": "spinemri phantom --timepoints",
        "cohort": {**spec.__dict__, "timepoints": int(timepoints)},
        "vas_model": FOLLOWUP_VAS_MODEL,
        "cases": cases,
        **{
            name.removesuffix(".csv"): json.loads(df.to_json(orient="records")) for name, df in tables.items()
        },
    }
    write_text_atomic(out / "truth.json", json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return {
        "patients": patients,
        "vertebrae": vert_df,
        "lesions": les_df,
        "clinical": clinical,
        "changes": ch_df,
        "lesion_changes": lc_df,
        "patient_changes": pc_df,
    }
