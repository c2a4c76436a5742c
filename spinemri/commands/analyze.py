"""``spinemri analyze LINKED_CSV --out DIR``: the study's statistics, figures and HTML report."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from ..params import StatsParams

__all__ = ["add_parser", "run"]

_DEFAULTS = StatsParams()


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``analyze`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command action of the ``spinemri`` parser (from
        :meth:`argparse.ArgumentParser.add_subparsers`).

    Returns
    -------
    argparse.ArgumentParser
        The ``analyze`` parser: positional ``LINKED_CSV``, ``--out DIR`` (required),
        ``--seed``, ``--cv-folds`` and ``--ci-level`` (defaults from
        :class:`~spinemri.params.StatsParams`); ``func`` is set to :func:`run`.
    """
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
    """Run ``spinemri analyze``: analyse a linked table and write the analysis folder.

    Writes ``summary.json``, ``tables/*.csv``, ``figures/*.png`` and ``report.html``
    under ``args.out`` and prints a summary line and the warnings on stderr.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of the ``analyze`` sub-command (``linked``, ``out``,
        ``seed``, ``cv_folds``, ``ci_level``).

    Returns
    -------
    int
        Exit status 0 (the analysis was written). A refused option value (``--cv-folds 1``)
        is raised as :class:`~spinemri.cli.UsageError` before the table is read. Errors are raised as
        :class:`~spinemri.errors.SpinemriError` (an empty linked table is an
        :class:`~spinemri.errors.InputError`), which :func:`spinemri.cli.main`
        maps to exit status 2 (bad usage or unusable input) or 1.
    """
    # heavy imports here, not at module level: `spinemri --help` stays fast
    from ..cli import check_options
    from ..io.clinical import read_table
    from ..report.html import write_analysis
    from ..stats.study import analyze

    # --cv-folds 1, --ci-level 2: bad usage (exit 2), refused before the table is read
    params = check_options(
        lambda: StatsParams(seed=args.seed, cv_folds=args.cv_folds, ci_level=args.ci_level), args
    )
    linked = read_table(args.linked, dtype_str_columns=("patient_id",))
    if linked.empty:
        raise InputError(f"linked table {args.linked} has no rows; run spinemri link first")
    try:
        analysis = analyze(linked, params=params)
    except InputError as exc:
        raise InputError(f"{args.linked}: {exc}") from exc
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
