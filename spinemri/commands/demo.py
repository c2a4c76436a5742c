"""``spinemri demo OUT``: a phantom cohort on which every analysis of the study computes, run end to end.

Writes ``OUT/cohort`` (a synthetic cohort with ground truth, :mod:`spinemri.io.cohort_write`) and runs
the whole pipeline on it into ``OUT/results`` (:func:`spinemri.pipeline.cohort.run_cohort`). The
default configuration (80 patients, seed 1, a 256 x 128 x 13 matrix) was chosen because every
analysis computes on it and the report shows the seed study's findings (docs/phantom.md, "The demo").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run", "DEMO_COHORT"]

#: The demo's cohort: options of ``spinemri phantom`` (every analysis computes on this one).
DEMO_COHORT: dict[str, int] = {"patients": 80, "seed": 1, "rows": 256, "cols": 128, "slices": 13}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``demo`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command action of the ``spinemri`` parser (from
        :meth:`argparse.ArgumentParser.add_subparsers`).

    Returns
    -------
    argparse.ArgumentParser
        The ``demo`` parser: positional ``OUT_DIR``, ``--patients``, ``--seed``,
        ``--workers`` and ``--quiet``; ``func`` is set to :func:`run`.
    """
    p = subparsers.add_parser(
        "demo",
        help="generate a phantom cohort and run the whole pipeline on it (about a minute)",
        description="Write a synthetic cohort to OUT_DIR/cohort (spinemri phantom: 80 patients, seed 1, "
        "256 x 128 x 13 voxels) and run spinemri run on it into OUT_DIR/results; then open "
        "OUT_DIR/results/analysis/report.html. A cohort already written with the same options is reused, "
        "and unchanged cases are not measured again.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created)")
    p.add_argument(
        "--patients",
        type=int,
        default=DEMO_COHORT["patients"],
        help=f"number of phantom patients (default {DEMO_COHORT['patients']})",
    )
    p.add_argument(
        "--seed", type=int, default=DEMO_COHORT["seed"], help=f"random seed (default {DEMO_COHORT['seed']})"
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``spinemri demo``: write the phantom cohort, then measure, link and analyse it.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of the ``demo`` sub-command (``out_dir``, ``patients``,
        ``seed``, ``workers``, ``quiet``).

    Returns
    -------
    int
        The exit status of the run (0 when every case was measured, 1 when some
        failed: see ``OUT_DIR/results/errors.csv``). A refused option value is raised
        as :class:`~spinemri.cli.UsageError` before anything is written.
    """
    from ..cli import check_options
    from ..io.atomic import write_text_atomic
    from ..io.cohort_write import CohortSpec, write_cohort
    from ..params import RunConfig
    from ..pipeline.cohort import run_cohort

    out = Path(args.out_dir)
    from ._outpath import check_output_path

    check_output_path(out, "OUT_DIR", folder=True)  # a file (or under one): exit 2, was a traceback
    cohort, results = out / "cohort", out / "results"
    options: dict[str, Any] = {
        "rows": DEMO_COHORT["rows"],
        "cols": DEMO_COHORT["cols"],
        "n_slices": DEMO_COHORT["slices"],
    }
    spec = check_options(lambda: CohortSpec(n_patients=args.patients, seed=args.seed), args)
    config = check_options(lambda: RunConfig(workers=args.workers), args)

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    t0 = time.perf_counter()
    marker = cohort / "demo.json"
    wanted = {"patients": spec.n_patients, "seed": spec.seed, **options}
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == wanted:
        say(f"reusing the phantom cohort in {cohort}")
    else:
        say(f"writing {spec.n_patients} phantom patients (seed {spec.seed}) to {cohort} ...")
        write_cohort(cohort, spec, **options)
        write_text_atomic(marker, json.dumps(wanted, indent=2) + "\n")
    t1 = time.perf_counter()
    say(f"running the pipeline into {results} ({config.workers} worker(s)) ...")
    summary = run_cohort(cohort, results, config=config)
    t2 = time.perf_counter()
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
        for note in summary.notes:  # the first line; the details are in results/link_report.csv
            print(note.splitlines()[0] if note else note, file=sys.stderr)
        print(
            f"done in {t2 - t0:.0f} s (cohort {t1 - t0:.0f} s, pipeline {t2 - t1:.0f} s). Open:\n"
            f"  {results / 'analysis' / 'report.html'}   the report (summary, figures, patients, methods)\n"
            f"  {results / 'analysis' / 'summary.json'}  every number of the report\n"
            f"  {results / 'patients.csv'}  {results / 'vertebrae.csv'}  {results / 'qc'}/\n"
            f"  {cohort / 'truth.csv'}  the phantom's ground truth, to compare with patients.csv"
        )
    return summary.exit_code
