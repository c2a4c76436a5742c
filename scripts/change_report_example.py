#!/usr/bin/env python
"""Build the report's change section on a follow-up phantom cohort (a dev tool, not CI).

Usage::

    python scripts/change_report_example.py WORK_DIR [--patients 5] [--timepoints 3] [--screenshot PNG]

Writes a follow-up phantom cohort into WORK_DIR/cohort, measures every time point (run_case, as
``spinemri run`` does), compares them (spinemri.surveillance), writes the timelines and the
side-by-side QC into WORK_DIR/out, and the section on its own page WORK_DIR/out/change_section.html
(and, with --screenshot, a Chromium screenshot of that page: docs/img/report_change.png).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spinemri.io.cohort_followup import write_followup_cohort  # noqa: E402
from spinemri.io.cohort_write import CohortSpec  # noqa: E402
from spinemri.io.discover import discover_cases  # noqa: E402
from spinemri.io.ids import safe_id  # noqa: E402
from spinemri.pipeline.case import CaseOptions, CaseOutcome, run_case  # noqa: E402
from spinemri.report.change_section import ChangeContext, render_change_section  # noqa: E402
from spinemri.report.html import _CSS  # noqa: E402
from spinemri.report.qc_pair import render_change_qc  # noqa: E402
from spinemri.report.timeline import write_timelines  # noqa: E402
from spinemri.surveillance.compare import compare_timepoints  # noqa: E402
from spinemri.surveillance.measured import frame_tables  # noqa: E402
from spinemri.surveillance.stats import change_statistics  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--patients", type=int, default=5)
    ap.add_argument("--timepoints", type=int, default=3)
    ap.add_argument("--screenshot", type=Path)
    a = ap.parse_args()
    t0 = time.perf_counter()
    cohort, out = a.work / "cohort", a.work / "out"
    write_followup_cohort(cohort, CohortSpec(n_patients=a.patients, seed=3), timepoints=a.timepoints)
    cases = discover_cases(cohort)
    V, L, P = [], [], []
    for c in cases:
        assert c.image is not None and c.mask is not None, c.problem
        o = CaseOutcome(c.patient_id, False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mc = run_case(
                c.image,
                c.mask,
                CaseOptions(measure=(("scheme", "verse"),)),
                o,
                patient_id=c.patient_id,
                timepoint=c.timepoint,
                scan_date=c.scan_date,
            )
        v, les = frame_tables(mc.measurement, mc.mask)
        V.append(v)
        L.append(les)
        P.append(mc.measurement.patient)
        (out / "masks").mkdir(parents=True, exist_ok=True)
        (out / "masks" / f"{safe_id(o.key)}_lesions.nii.gz").write_bytes(o.lesion_nii_gz)
    vert, les, pat = (pd.concat(x, ignore_index=True) for x in (V, L, P))
    vert.to_csv(out / "vertebrae.csv", index=False)
    clinical = pd.read_csv(cohort / "clinical.csv", dtype={"patient_id": str, "timepoint": str})
    res = compare_timepoints(vert, les, pat, clinical)
    stats = change_statistics(res.patient_changes, res.timepoints, res.params)
    res.changes.to_csv(out / "changes.csv", index=False)
    res.patient_changes.to_csv(out / "patient_changes.csv", index=False)
    timelines = write_timelines(out, res.changes, vert, res.timepoints)
    failures: list[str] = []
    qc = render_change_qc(
        out,
        res.changes,
        {(c.patient_id, str(c.timepoint)): c for c in cases},
        vertebrae=vert,
        failures=failures,
    )
    ctx = ChangeContext(
        res.changes, res.patient_changes, stats, res.summary(), res.level_checks, timelines, qc
    )
    section = render_change_section(ctx, out)
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>change</title>"
        f"<style>{_CSS}</style></head><body><main>{section}</main></body></html>"
    )
    (out / "change_section.html").write_text(page, encoding="utf-8")
    print(
        f"{len(cases)} scans, {len(res.changes)} vertebra changes, {len(qc)} QC pairs, "
        f"{len(failures)} failures, {time.perf_counter() - t0:.1f} s"
    )
    print(res.summary()["vertebra_status_counts"], res.summary()["patient_status_counts"])
    print(stats)
    if a.screenshot:
        from screenshot_report import screenshot, shrink

        screenshot(out / "change_section.html", a.screenshot, width=1200, height=1900)
        shrink(a.screenshot, 400)


if __name__ == "__main__":
    main()
