"""``spinemri analyze LINKED_CSV --out DIR``: the study's statistics, figures and HTML report."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from ..params import StatsParams

__all__ = ["add_parser", "run"]

_DEFAULTS = StatsParams()


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "analyze",
        help="statistics of a linked table: summary.json, tables, figures, report.html",
        description="Run the study's analyses (docs/statistics.md) on a linked table and write "
        "DIR/summary.json, "
        "DIR/tables/*.csv, DIR/figures/*.png and DIR/report.html. Analyses the data cannot support are "
        "reported as not computable, with the reason.",
    )
    p.add_argument("linked", metavar="LINKED_CSV", help="linked table from spinemri link")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--seed", type=int, default=_DEFAULTS.seed, help="seed of the CV folds (default %(default)s)"
    )
    p.add_argument("--cv-folds", type=int, default=_DEFAULTS.cv_folds, help="CV folds (default %(default)s)")
    p.add_argument(
        "--ci-level", type=float, default=_DEFAULTS.ci_level, help="confidence level (default %(default)s)"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # heavy imports here, not at module level: `spinemri --help` stays fast
    from ..io.clinical import read_table
    from ..report.html import write_analysis
    from ..stats.study import analyze

    params = StatsParams(seed=args.seed, cv_folds=args.cv_folds, ci_level=args.ci_level)
    linked = read_table(args.linked, dtype_str_columns=("patient_id",))
    if linked.empty:
        raise InputError(f"linked table {args.linked} has no rows; run spinemri link first")
    analysis = analyze(linked, params=params)
    written = write_analysis(analysis, args.out)
    d = analysis.to_dict()
    print(
        f"analysed {d['n_with_vas']} of {d['n_patients']} patients (with a valid VAS); "
        f"{len(d['warnings'])} warning(s); wrote {written['summary']} and {written['report']}",
        file=sys.stderr,
    )
    for w in d["warnings"]:
        print(f"  warning: {w}", file=sys.stderr)
    return 0
