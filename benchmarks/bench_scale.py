#!/usr/bin/env python
"""Benchmark: a cohort of thousands of small synthetic cases, end to end on one machine (issue 18).

Run by hand (not a test; the cohort is generated, never committed)::

    python benchmarks/bench_scale.py [--cases 5000] [--workers 2] [--scheduler local]
        [--work /tmp/bench_scale] [--crash-at 4000]

What it does and reports:

1. writes ``--cases`` phantom cases (``write_cohort``, small images: 64x48x5 voxels, L3-L5, NIfTI)
   with a clinical table, unless the work folder already holds them;
2. runs ``run_cohort`` with ``--workers`` (process pool, or Dask with ``--scheduler``) and a
   progress callback that records, at every 10 % of the cases, the cases per minute so far and the
   parent's peak resident memory (``ru_maxrss``) and current RSS: the peak must stay flat in the
   number of cases (a run that kept every result would grow with it);
3. with ``--crash-at K``: the first run is interrupted (KeyboardInterrupt from the progress
   callback, as a Ctrl-C) after K cases; the rerun must skip those K (resume) and do the rest,
   and the combined tables must then be byte-identical to an uninterrupted run's (compared with
   a second, uninterrupted run into another folder when ``--compare`` is given).

Prints one JSON record (also written to ``WORK/bench_scale.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

SMALL = {"first_level": "L3", "last_level": "L5", "rows": 64, "cols": 48, "n_slices": 5, "supersample": 1}


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_cohort(root: Path, n: int) -> float:
    from spinemri.io.cohort_write import CohortSpec, write_cohort

    marker = root / f".complete-{n}"
    if marker.exists():
        return 0.0
    import multiprocessing

    # in a child process: the phantom writer's peak memory must not count as the run's (ru_maxrss)
    t0 = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=write_cohort, args=(root, CohortSpec(n_patients=n, seed=18, id_noise=0.0)), kwargs=SMALL
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"writing the cohort failed (exit {child.exitcode})")
    marker.write_text("ok")
    return time.perf_counter() - t0


class Recorder:
    def __init__(self, n: int, crash_at: int | None) -> None:
        self.n, self.crash_at = n, crash_at
        self.seen = 0
        self.t0 = time.perf_counter()
        self.points: list[dict[str, float]] = []
        self.next_mark = max(1, n // 10)

    def __call__(self, outcome: object, total: int) -> None:
        self.seen += 1
        if self.seen >= self.next_mark or self.seen == total:
            dt = time.perf_counter() - self.t0
            self.points.append(
                {
                    "cases": self.seen,
                    "elapsed_s": round(dt, 1),
                    "cases_per_min": round(60 * self.seen / dt, 1),
                    "parent_peak_rss_mb": round(_peak_mb(), 1),
                    "parent_rss_mb": round(_rss_mb(), 1),
                }
            )
            self.next_mark += max(1, self.n // 10)
        if self.crash_at is not None and self.seen == self.crash_at:
            raise KeyboardInterrupt


def run(cohort: Path, out: Path, args: argparse.Namespace, crash_at: int | None) -> dict[str, Any]:
    from spinemri.pipeline.cohort import run_cohort

    rec = Recorder(args.cases, crash_at)
    t0 = time.perf_counter()
    record: dict[str, Any] = {}
    try:
        s = run_cohort(
            cohort, out, workers=args.workers, scheduler=args.scheduler, scheme="verse", progress=rec
        )
        record.update(done=s.done, skipped=s.skipped, failed=s.failed, exit_code=s.exit_code)
    except KeyboardInterrupt:
        record["interrupted_after"] = rec.seen
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    record["points"] = rec.points
    return record


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_scale"))
    ap.add_argument("--crash-at", type=int, default=None)
    ap.add_argument("--compare", action="store_true", help="also run uninterrupted and compare the tables")
    args = ap.parse_args()
    cohort = args.work / f"cohort{args.cases}"
    cohort.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "cases": args.cases,
        "workers": args.workers,
        "scheduler": args.scheduler,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "generate_s": round(make_cohort(cohort, args.cases), 1),
    }
    out = args.work / f"out{args.cases}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    result["first_run"] = run(cohort, out, args, args.crash_at)
    if args.crash_at is not None:
        result["resumed_run"] = run(cohort, out, args, None)
    if args.compare:
        ref = args.work / f"ref{args.cases}"
        if ref.exists():
            import shutil

            shutil.rmtree(ref)
        result["reference_run"] = run(cohort, ref, args, None)
        result["tables_identical"] = all(
            (out / f"{t}.csv").read_bytes() == (ref / f"{t}.csv").read_bytes()
            for t in ("vertebrae", "patients", "lesions", "linked")
        )
    text = json.dumps(result, indent=1)
    (args.work / "bench_scale.json").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
