#!/usr/bin/env python
"""Phantom validation grid of the lesion segmentation (makes the tables of docs/validation.md).

For each SNR x bias x lesion contrast x lesion radius x seed x method, a
phantom (spinemri.make_phantom) with planted lesions of known contrast and
size is measured with spinemri.measure and compared with the phantom's own
truth (computed from the analytic shapes, not by spinemri's code):

* lesion Dice (all lesion voxels of the patient),
* per-vertebra lesion-count accuracy (fraction of vertebrae with the exact count),
* max |error| of hi_volume_ratio and hi_area_ratio over vertebrae,
* false-positive lesions: lesions found in vertebrae that have none.

Usage::

    python scripts/validation_grid.py [--seeds 2] [--methods robust,local] [--out grid.csv] [--set NAME=VALUE]

The per-case table is written as CSV and a markdown summary is printed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

import spinemri
from spinemri.phantom import CONTRASTS, LesionSpec
from spinemri.phantom.anatomy import body_size

SNRS = (10.0, 20.0, 40.0)
BIASES = (0.0, 0.2)
CONTRAST_RATIOS = (1.5, 2.0, 3.0)
RADII_MM = (3.5, 6.0)
#: levels that get a focal lesion, one irregular lesion and one diffusely replaced vertebra
FOCAL_LEVELS = ("C5", "T3", "T8", "T11", "L2", "L4")
IRREGULAR_LEVEL = "T6"
DIFFUSE_LEVEL = "L1"


def strength_for(contrast: float, kind: str = "stir") -> float:
    """Phantom lesion strength giving lesion/marrow intensity ratio ``contrast``."""
    c = CONTRASTS[kind]
    return float((contrast - 1.0) * c["marrow"] / (c["lesion"] - c["marrow"]))


def lesion_plan(contrast: float, radius_mm: float, seed: int) -> tuple[LesionSpec, ...]:
    """Focal lesions of ``radius_mm`` near the mid-sagittal plane, one irregular and one diffuse vertebra."""
    rng = np.random.default_rng([seed, 77])
    s = strength_for(contrast)
    specs = []
    for level in (*FOCAL_LEVELS, IRREGULAR_LEVEL):
        b = body_size(level)
        room_ap = max(b.depth / 2 - radius_mm - 2.5, 0.0)
        room_si = max(b.height / 2 - radius_mm - 2.5, 0.0)
        off = (
            float(rng.uniform(-2, 2)),
            float(rng.uniform(-1, 1) * room_ap),
            float(rng.uniform(-1, 1) * room_si),
        )
        r = min(radius_mm, 0.35 * min(b.depth, b.height))
        kind = "irregular" if level == IRREGULAR_LEVEL else "focal"
        specs.append(LesionSpec(level, kind, r, off, s))
    specs.append(LesionSpec(DIFFUSE_LEVEL, "diffuse", strength=s))
    return tuple(specs)


def run_case(
    snr: float,
    bias: float,
    contrast: float,
    radius_mm: float,
    seed: int,
    method: str = "robust",
    **measure_options: Any,
) -> dict[str, Any]:
    """Measure one phantom and compare it with its truth; returns one row of numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img, mask, truth = spinemri.make_phantom(
            seed=seed, snr=snr, bias=bias, lesions=lesion_plan(contrast, radius_mm, seed)
        )
        t0 = time.perf_counter()
        m = spinemri.measure(img, mask, scheme="verse", method=method, **measure_options)
        elapsed = time.perf_counter() - t0
    tv = truth.vertebrae.set_index("level")
    mv = m.vertebrae.set_index("level").loc[tv.index]
    pred = np.asarray(m.lesion_mask.data) > 0
    true = np.asarray(truth.lesion_mask.data) > 0
    inter = int(np.count_nonzero(pred & true))
    dice = 2.0 * inter / max(int(pred.sum()) + int(true.sum()), 1)
    clean = tv["lesion_count"] == 0
    vol_err = (mv["hi_volume_ratio"] - tv["hi_volume_ratio"]).abs()
    area_err = (mv["hi_area_ratio"] - tv["hi_area_ratio"]).abs()
    focal = tv.index != DIFFUSE_LEVEL
    smallest = float(truth.lesions["volume_mm3"].min())
    return {
        "snr": snr,
        "bias": bias,
        "contrast": contrast,
        "radius_mm": radius_mm,
        "seed": seed,
        "method": method,
        "n_vertebrae": len(tv),
        "n_true_lesions": int(tv["lesion_count"].sum()),
        "smallest_lesion_mm3": smallest,
        "dice": dice,
        "count_accuracy": float((mv["lesion_count"] == tv["lesion_count"]).mean()),
        "count_errors": int((mv["lesion_count"] != tv["lesion_count"]).sum()),
        "max_abs_err_hi_volume_ratio": float(vol_err.max()),
        "max_abs_err_hi_area_ratio": float(area_err.max()),
        "max_abs_err_hi_volume_ratio_focal": float(vol_err[focal].max()),
        "max_abs_err_hi_area_ratio_focal": float(area_err[focal].max()),
        "err_hi_volume_ratio_diffuse": float(
            mv.loc[DIFFUSE_LEVEL, "hi_volume_ratio"] - tv.loc[DIFFUSE_LEVEL, "hi_volume_ratio"]
        ),
        "err_hi_area_ratio_diffuse": float(
            mv.loc[DIFFUSE_LEVEL, "hi_area_ratio"] - tv.loc[DIFFUSE_LEVEL, "hi_area_ratio"]
        ),
        "mean_abs_err_hi_volume_ratio": float(vol_err.mean()),
        "mean_abs_err_hi_area_ratio": float(area_err.mean()),
        "fp_lesions_clean": int(mv.loc[clean, "lesion_count"].sum()),
        "patient_hi_area_ratio_err": float(
            m.patient["hi_area_ratio"].iloc[0] - truth.patient["hi_area_ratio"].iloc[0]
        ),
        "measure_s": elapsed,
    }


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Grid summary: worst case over seeds and radii for each method x SNR x bias x contrast."""
    g = df.groupby(["method", "snr", "bias", "contrast"], sort=True)
    return g.agg(
        dice_min=("dice", "min"),
        dice_mean=("dice", "mean"),
        count_acc_min=("count_accuracy", "min"),
        max_err_vol_focal=("max_abs_err_hi_volume_ratio_focal", "max"),
        max_err_area_focal=("max_abs_err_hi_area_ratio_focal", "max"),
        err_vol_diffuse_min=("err_hi_volume_ratio_diffuse", "min"),
        err_vol_diffuse_max=("err_hi_volume_ratio_diffuse", "max"),
        max_err_area_diffuse=("err_hi_area_ratio_diffuse", lambda x: float(np.abs(x).max())),
        fp_clean=("fp_lesions_clean", "sum"),
        cases=("seed", "size"),
    ).reset_index()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--methods", default="robust,local")
    ap.add_argument("--out", default=None, help="write the per-case table here (CSV)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a measure option for every case, e.g. depth_background=False (repeatable)",
    )
    args = ap.parse_args(argv)
    options = dict(_parse_option(o) for o in args.set)
    rows = []
    t0 = time.perf_counter()
    cases = list(itertools.product(SNRS, BIASES, CONTRAST_RATIOS, RADII_MM, range(args.seeds)))
    for n, (snr, bias, contrast, radius, seed) in enumerate(cases, 1):
        for method in args.methods.split(","):
            rows.append(run_case(snr, bias, contrast, radius, seed, method, **options))
        print(f"\r{n}/{len(cases)} cases", end="", file=sys.stderr)
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False, float_format="%.6g")
    print(to_markdown(summarise(df)))
    return 0


def _parse_option(text: str) -> tuple[str, Any]:
    """``name=value`` with value a bool (True/False), a number or a string."""
    name, _, value = text.partition("=")
    if value in ("True", "False"):
        return name, value == "True"
    try:
        return name, float(value)
    except ValueError:
        return name, value


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (floats with 3 decimals, or 4 for values under 0.01)."""

    def fmt(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            return f"{v:.4f}" if 0 < abs(v) < 0.01 else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
