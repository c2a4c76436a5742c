"""Write a synthetic phantom cohort (images, masks, clinical table, truth) to disk.

Layout (docs/phantom.md)::

    OUT/
      SMR-001/ image.nii.gz | dicom/IM010001.dcm ...   the image (NIfTI or a DICOM series)
               vertebrae_mask.nii.gz                   vertebral labels (scheme: verse by default)
      ...
      clinical.csv          patient_id (with id-format noise), age, sex, vas (some missing)
      truth.csv             one row per patient: DESIGN §5 patient columns + generation settings
      truth_vertebrae.csv   one row per patient x vertebra
      truth_lesions.csv     one row per planted lesion
      truth.json            all of the above plus the VAS model, its coefficients and every PhantomParams

Each patient folder is written under a hidden temporary name and renamed
into place, and each root file is written atomically, so an interrupted run
never leaves a half-written case or table.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..phantom.make import SERIES_DESCRIPTION, make_phantom
from ..volume import Volume
from .atomic import write_text_atomic
from .dicom.write import write_dicom_series
from .nifti import save_nifti
from .tables import write_csv

__all__ = ["VAS_MODEL", "CohortSpec", "write_cohort", "draw_vas", "noisy_id"]

logger = logging.getLogger(__name__)

#: Generative model of the pain score (documented in docs/phantom.md):
#: vas* = intercept + lumbar * lumbar_involved + per_vertebra * n_involved + N(0, noise_sd),
#: clipped to [0, 10] and rounded to an integer; a fraction ``missing`` of scores is blank.
VAS_MODEL: dict[str, float] = {
    "intercept": 2.0,
    "lumbar": 2.0,
    "per_vertebra": 0.5,
    "noise_sd": 1.0,
    "missing": 0.08,
}

FORMATS = ("nifti", "dicom", "mixed")


@dataclass(frozen=True)
class CohortSpec:
    """Options of :func:`write_cohort` (see the CLI ``spinemri phantom``)."""

    n_patients: int = 10
    seed: int = 0
    format: str = "nifti"
    contrast: str = "stir"
    id_prefix: str = "SMR"
    id_noise: float = 0.3
    second_series: int = 0

    def __post_init__(self) -> None:
        if not 1 <= int(self.n_patients) <= 9999:
            raise ConfigError(f"cohort: --patients {self.n_patients} must be between 1 and 9999")
        if self.format not in FORMATS:
            raise ConfigError(f"cohort: --format {self.format!r} must be one of {', '.join(FORMATS)}")
        if self.contrast not in SERIES_DESCRIPTION:
            raise ConfigError(
                f"cohort: --contrast {self.contrast!r} must be one of {', '.join(SERIES_DESCRIPTION)}"
            )
        if int(self.seed) < 0:
            raise ConfigError(f"cohort: --seed {self.seed} must be a non-negative integer")
        if not 0 <= self.id_noise <= 1:
            raise ConfigError(f"cohort: id_noise {self.id_noise} must be in [0, 1]")
        if int(self.second_series) < 0:
            raise ConfigError(f"cohort: --second-series {self.second_series} must be >= 0")


def noisy_id(pid: str, rng: np.random.Generator) -> str:
    """One of the id spellings seen in clinical spreadsheets: lower case, ``_`` or no separator.

    Parameters
    ----------
    pid : str
        A canonical patient id ``PREFIX-NUMBER`` (e.g. ``"SMR-007"``).
    rng : numpy.random.Generator
        Picks the spelling (one ``integers(3)`` draw).

    Returns
    -------
    str
        With equal probability ``pid.lower()`` (``"smr-007"``),
        ``"PREFIX_NUMBER"`` (``"SMR_007"``) or ``"PREFIXNUMBER"`` (``"SMR007"``).
    """
    style = int(rng.integers(3))
    prefix, _, number = pid.partition("-")
    return [pid.lower(), f"{prefix}_{number}", f"{prefix}{number}"][style]


def draw_vas(
    patients: pd.DataFrame, rng: np.random.Generator, model: dict[str, float] = VAS_MODEL
) -> pd.DataFrame:
    """Pain scores from the truth's patient rows (columns lumbar_involved, n_involved).

    Returns a DataFrame with ``vas_expected`` (linear predictor), ``vas_true``
    (integer score before blanking) and ``vas`` (nullable Int64, some missing).

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient, with ``lumbar_involved`` (bool or 0/1) and
        ``n_involved`` (number of involved vertebrae).
    rng : numpy.random.Generator
        Draws the noise ``N(0, noise_sd)`` and which scores are blanked.
    model : dict of str to float, default :data:`VAS_MODEL`
        Keys ``intercept``, ``lumbar``, ``per_vertebra``, ``noise_sd`` and
        ``missing`` (fraction of blank scores, applied only from 5 patients
        on, then at least one).

    Returns
    -------
    pandas.DataFrame
        One row per row of ``patients`` (same index): ``vas_expected``
        (float, the linear predictor), ``vas_true`` (int in [0, 10], the
        rounded and clipped noisy score) and ``vas`` (Int64, ``vas_true`` with
        some values ``<NA>``).
    """
    lin = (
        model["intercept"]
        + model["lumbar"] * patients["lumbar_involved"].astype(float)
        + model["per_vertebra"] * patients["n_involved"].astype(float)
    )
    raw = lin + rng.normal(0.0, model["noise_sd"], len(patients))
    vas_true = np.clip(np.rint(raw), 0, 10).astype(int)
    n = len(patients)
    n_missing = int(round(model["missing"] * n)) if n >= 5 else 0
    n_missing = max(n_missing, 1) if n >= 5 else 0
    missing = np.zeros(n, bool)
    missing[rng.choice(n, size=n_missing, replace=False)] = True
    vas = pd.array([None if m else int(v) for v, m in zip(vas_true, missing, strict=False)], dtype="Int64")
    return pd.DataFrame({"vas_expected": lin.to_numpy(), "vas_true": vas_true, "vas": vas})


def _patient_options(rng: np.random.Generator, contrast: str) -> dict[str, Any]:
    """Per-patient acquisition and disease draws (overridable by the caller's options)."""
    return {
        "contrast": contrast,
        "n_involved": int(min(rng.poisson(2.2), 8)),
        "snr": float(rng.uniform(12.0, 30.0)),
        "bias": float(rng.uniform(0.0, 0.2)),
        "oblique_deg": float(rng.choice([0.0, 0.0, rng.uniform(-6, 6)])),
        "curvature": float(rng.uniform(0.6, 1.2)),
        "scale": float(rng.uniform(0.9, 1.1)),
        "p_collapse": 0.25,
    }


def _write_case(
    folder: Path,
    pid: str,
    seed: int,
    image_format: str,
    image: Volume,
    mask: Volume,
    second: Volume | None = None,
    study_date: str = "20250101",
) -> None:
    tmp = folder.parent / f".{folder.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        if image_format == "dicom":
            write_dicom_series(
                image,
                tmp / "dicom",
                patient_id=pid,
                uid_seed=f"spinemri-phantom:{seed}:{pid}",
                series_description=str(image.meta["series_description"]),
                contrast=str(image.meta["contrast"]),
                study_date=study_date,
            )
            if second is not None:  # the other contrast as series 2 of the same study and frame of reference
                write_dicom_series(
                    second,
                    tmp / "dicom",
                    patient_id=pid,
                    uid_seed=f"spinemri-phantom:{seed}:{pid}",
                    series_description=str(second.meta["series_description"]),
                    series_number=2,
                    contrast=str(second.meta["contrast"]),
                    study_date=study_date,
                )
        else:
            save_nifti(image, tmp / "image.nii.gz")
        save_nifti(mask, tmp / "vertebrae_mask.nii.gz")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_cohort(
    out_dir: str | os.PathLike[str], spec: CohortSpec | None = None, **phantom_options: Any
) -> dict[str, pd.DataFrame]:
    """Write ``spec.n_patients`` phantom cases with clinical.csv and the truth tables.

    Parameters
    ----------
    out_dir : path-like
        Created when missing. Existing patient folders of the same ids are replaced.
    spec : CohortSpec, optional
    **phantom_options
        :class:`~spinemri.phantom.PhantomParams` fields applied to every patient
        (e.g. ``rows=192, cols=192, n_slices=13``); they override the per-patient draws.

    Returns
    -------
    dict of DataFrame
        ``patients`` (truth.csv), ``vertebrae``, ``lesions`` and ``clinical``.
    """
    spec = spec or CohortSpec()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; pass a folder for the cohort")
    out.mkdir(parents=True, exist_ok=True)
    root = np.random.SeedSequence([int(spec.seed), 7331])
    cohort_rng = np.random.default_rng(root)
    pats, verts, lesions, cases = [], [], [], []
    n_dicom = 0
    for n in range(spec.n_patients):
        pid = f"{spec.id_prefix}-{n + 1:03d}"
        pseed = int(np.random.SeedSequence([int(spec.seed), n]).generate_state(1)[0] & 0x7FFFFFFF)
        opts = {**_patient_options(cohort_rng, spec.contrast), **phantom_options}
        fmt = spec.format if spec.format != "mixed" else ("dicom" if n % 2 == 0 else "nifti")
        image, mask, truth = make_phantom(seed=pseed, **opts)
        second = None
        if fmt == "dicom" and n_dicom < spec.second_series:
            other = "t1" if opts["contrast"] == "stir" else "stir"
            second = make_phantom(seed=pseed, **{**opts, "contrast": other})[0]
        n_dicom += fmt == "dicom"
        _write_case(out / pid, pid, pseed, fmt, image, mask, second)
        logger.info("phantom cohort: wrote %s (%s, seed %d)", pid, fmt, pseed)
        prow = truth.patient.iloc[0].to_dict()
        pats.append({"patient_id": pid, **prow, "seed": pseed, "format": fmt, "contrast": opts["contrast"]})
        verts.append(
            truth.vertebrae.drop(columns=["mid_slice", "mid_vertebra_pixels", "mid_lesion_pixels"]).assign(
                patient_id=pid
            )
        )
        lesions.append(truth.lesions.assign(patient_id=pid))
        cases.append(
            {
                "patient_id": pid,
                "seed": pseed,
                "format": fmt,
                "params": truth.params.to_dict(),
                "noise_sigma": truth.noise_sigma,
                "second_series": None if second is None else str(second.meta["series_description"]),
            }
        )
    patients = pd.DataFrame(pats)
    vas = draw_vas(patients, cohort_rng)
    ids = [
        noisy_id(p, cohort_rng) if cohort_rng.random() < spec.id_noise else p for p in patients["patient_id"]
    ]
    ages = np.clip(np.rint(cohort_rng.normal(58, 10, len(ids))), 30, 90).astype(int)
    clinical = pd.DataFrame({"patient_id": ids, "age": ages, "sex": "F", "vas": vas["vas"]})
    patients = pd.concat([patients, vas[["vas_expected", "vas_true"]]], axis=1)
    vert_df = pd.concat(verts, ignore_index=True)
    vert_df = vert_df[["patient_id", *[c for c in vert_df.columns if c != "patient_id"]]]
    les_df = pd.concat(lesions, ignore_index=True)
    les_df = les_df[["patient_id", *[c for c in les_df.columns if c != "patient_id"]]]
    write_csv(clinical, out / "clinical.csv")
    write_csv(patients, out / "truth.csv")
    write_csv(vert_df, out / "truth_vertebrae.csv")
    write_csv(les_df, out / "truth_lesions.csv")
    doc = {
        "generator": "spinemri phantom",
        "cohort": {**spec.__dict__},
        "vas_model": VAS_MODEL,
        "patients": json.loads(patients.to_json(orient="records")),
        "cases": cases,
        "vertebrae": json.loads(vert_df.to_json(orient="records")),
        "lesions": json.loads(les_df.to_json(orient="records")),
    }
    write_text_atomic(out / "truth.json", json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return {"patients": patients, "vertebrae": vert_df, "lesions": les_df, "clinical": clinical}


def patient_options(rng: np.random.Generator, contrast: str) -> dict[str, Any]:
    """The per-patient acquisition and disease draws of :func:`write_cohort` (docs/phantom.md).

    Parameters
    ----------
    rng : numpy.random.Generator
        The cohort generator (advanced by the draws, in the order :func:`write_cohort` uses).
    contrast : str
        Contrast preset of the cohort.

    Returns
    -------
    dict of str to Any
        :class:`~spinemri.phantom.PhantomParams` options: ``contrast``, ``n_involved``, ``snr``,
        ``bias``, ``oblique_deg``, ``curvature``, ``scale``, ``p_collapse``.
    """
    return _patient_options(rng, contrast)


def write_case(
    folder: Path,
    pid: str,
    seed: int,
    image_format: str,
    image: Volume,
    mask: Volume,
    second: Volume | None = None,
    study_date: str = "20250101",
) -> None:
    """Write one case folder atomically: the image (NIfTI or DICOM series) and the mask.

    Parameters
    ----------
    folder : Path
        The case folder (written under a hidden temporary name, then renamed).
    pid : str
        Patient id written in the DICOM headers.
    seed : int
        Entropy of the DICOM UIDs (``spinemri-phantom:SEED:PID``).
    image_format : {"nifti", "dicom"}
        ``image.nii.gz`` or ``dicom/IM01kkkk.dcm``.
    image, mask : Volume
        The image and its vertebral mask (``vertebrae_mask.nii.gz``).
    second : Volume, optional
        DICOM only: the other contrast as series 2 of the same study.
    study_date : str, default "20250101"
        DICOM StudyDate and SeriesDate (YYYYMMDD).
    """
    _write_case(folder, pid, seed, image_format, image, mask, second, study_date)
