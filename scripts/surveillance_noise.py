#!/usr/bin/env python
"""Scan-rescan noise of lesion volumes: the evidence for SurveillanceParams' absolute threshold.

The same patient (the same explicit lesions of known radius) is drawn twice by spinemri.make_phantom
with a different noise and texture seed, repositioned between the two scans (field-of-view shift,
rotation about the S-I and L-R axes, another slice count), measured with spinemri.measure, given
its frame columns (spinemri.surveillance.measured.frame_tables) and compared
(spinemri.surveillance.compare.compare_timepoints). Nothing changed, so every lesion should be
``stable`` and every involved level ``stable``; the script prints the distribution of the
scan-rescan lesion-volume differences (absolute and relative) and every status or class that is
not ``stable`` / ``uninvolved``.

Usage::

    python scripts/surveillance_noise.py [--pairs 6] [--snr 20]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

import spinemri
from spinemri.phantom.params import LesionSpec
from spinemri.surveillance.compare import compare_timepoints
from spinemri.surveillance.consistency import check_level_consistency, shift_levels
from spinemri.surveillance.measured import frame_tables

LESIONS = (
    LesionSpec("T11", radius_mm=3.5),
    LesionSpec("T12", radius_mm=6.0),
    LesionSpec("L1", radius_mm=4.5, offset_mm=(0.0, 4.0, 3.0)),
    LesionSpec("L2", radius_mm=6.0, offset_mm=(0.0, -3.0, 0.0)),
    LesionSpec("L3", radius_mm=3.5, offset_mm=(0.0, 5.0, -4.0)),
    LesionSpec("L4", radius_mm=8.0),
)


#: The follow-up of ``--change``: T10 gains a lesion, T11 grows 3.5 -> 4.5 mm (x 2.1, +202 mm^3),
#: L3's lesion resolves, L4's shrinks 8 -> 5 mm (-76 %); the others are unchanged.
CHANGED = (
    LesionSpec("T10", radius_mm=5.0),
    LesionSpec("T11", radius_mm=4.5),
    LesionSpec("T12", radius_mm=6.0),
    LesionSpec("L1", radius_mm=4.5, offset_mm=(0.0, 4.0, 3.0)),
    LesionSpec("L2", radius_mm=6.0, offset_mm=(0.0, -3.0, 0.0)),
    LesionSpec("L4", radius_mm=5.0),
)
EXPECTED = {"T10": "new", "T11": "progressing", "L3": "resolved", "L4": "regressing"}


def scan(
    seed: int, snr: float, lesions: tuple[LesionSpec, ...] = LESIONS, **pose: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    img, mask, _ = spinemri.make_phantom(seed=seed, first_level="T9", lesions=lesions, snr=snr, **pose)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = spinemri.measure(img, mask, scheme="verse", patient_id="P")
    return frame_tables(m, mask)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--snr", type=float, default=20.0)
    ap.add_argument("--change", action="store_true", help="the follow-up changes by CHANGED (known statuses)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    v_all, l_all = [], []
    for k in range(args.pairs):
        pid = f"P{k}"
        poses = [
            {},
            {
                "fov_shift_mm": float(rng.uniform(-15, 15)),
                "oblique_deg": float(rng.uniform(-4, 4)),
                "tilt_deg": float(rng.uniform(-4, 4)),
                "n_slices": int(rng.integers(13, 18)),
            },
        ]
        for t, pose in enumerate(poses):
            v, les = scan(100 * k + t + 1, args.snr, CHANGED if (t and args.change) else LESIONS, **pose)
            date = pd.Timestamp("2024-01-01") + pd.Timedelta(days=120 * t)
            v_all.append(v.assign(patient_id=pid, timepoint=f"tp{t + 1}", scan_date=date))
            l_all.append(les.assign(patient_id=pid, timepoint=f"tp{t + 1}", scan_date=date))
    res = compare_timepoints(pd.concat(v_all, ignore_index=True), pd.concat(l_all, ignore_index=True))
    if args.change:
        ch = res.changes
        want = (
            ch["level"]
            .map(EXPECTED)
            .fillna(ch["lesion_count_from"].map(lambda n: "stable" if n else "uninvolved"))
        )
        wrong = ch[ch["status"] != want]
        print(f"statuses right: {len(ch) - len(wrong)} of {len(ch)}")
        if len(wrong):
            print(wrong[["patient_id", "level", "status", "lesion_volume_mm3_from", "lesion_volume_mm3_to"]])
        print("lesion classes:", res.lesion_changes["lesion_class"].value_counts().to_dict())
        return
    # the later scans mislabelled by one level either way: the level check must say so
    for by in (1, -1):
        checks = [
            check_level_consistency(v_all[2 * k], shift_levels(v_all[2 * k + 1], by))
            for k in range(args.pairs)
        ]
        print(f"later scan relabelled by {by:+d}:", sorted({(c.verdict, c.shift) for c in checks}, key=str))
        print(f"  score as labelled: min {min(c.scores[0] for c in checks):.3f}")
    print(f"score as labelled of the true rescans: max {max(c.scores[0] for c in res.checks):.3f}")
    lc = res.lesion_changes
    matched = lc[(lc["n_from"] == 1) & (lc["n_to"] == 1)]
    d = (matched["volume_mm3_to"] - matched["volume_mm3_from"]).abs()
    rel = d / matched["volume_mm3_from"]
    print(f"{len(res.patient_changes)} pairs, {len(lc)} lesion groups, {len(matched)} one-to-one")
    print(f"|dV| mm3: median {d.median():.1f}, 95th pct {d.quantile(0.95):.1f}, max {d.max():.1f}")
    print(f"|dV|/V: median {rel.median():.3f}, 95th pct {rel.quantile(0.95):.3f}, max {rel.max():.3f}")
    print("lesion classes:", lc["lesion_class"].value_counts().to_dict())
    print("vertebra statuses:", res.changes["status"].value_counts().to_dict())
    print("level checks:", [c.verdict for c in res.checks])
    dist = matched["distance_mm"]
    print(f"match distance mm: median {dist.median():.2f}, max {dist.max():.2f}")
    radius = {spec.level: spec.radius_mm for spec in LESIONS}
    by = matched.assign(radius_mm=matched["level"].map(radius), abs_dv=d, rel_dv=rel).groupby("radius_mm")
    print("per lesion radius (mm): n, |dV| median / max (mm3), |dV|/V median / max")
    for r, g in by:
        print(
            f"  {r:4.1f}: {len(g):3d}, {g['abs_dv'].median():6.1f} / {g['abs_dv'].max():6.1f}, "
            f"{g['rel_dv'].median():.3f} / {g['rel_dv'].max():.3f}"
        )
    odd = lc[~lc["lesion_class"].isin(["stable"])]
    if len(odd):
        print(odd[["patient_id", "level", "lesion_class", "volume_mm3_from", "volume_mm3_to", "distance_mm"]])


if __name__ == "__main__":
    main()
