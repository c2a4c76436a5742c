"""``spinemri analyze LINKED_CSV --out DIR``: the study's statistics, figures and HTML report."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import InputError
from ..params import StatsParams

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_parser", "run", "required_imaging_columns", "UnlinkedTableError"]

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
    p.add_argument(
        "linked",
        metavar="LINKED_CSV",
        help="linked table: linked.csv of spinemri link, or of spinemri run given a clinical table "
        "(a table without vas, patient_id or the imaging columns is refused, exit 2)",
    )
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


class UnlinkedTableError(InputError):
    """``spinemri analyze`` got a table that is no linked table (no VAS, no imaging columns): exit 2."""


#: How a linked table is made, for the messages of :class:`UnlinkedTableError`.
_HOW_TO_LINK = (
    "make a linked table with spinemri link PATIENTS_CSV CLINICAL_CSV --out linked.csv "
    "(or spinemri run COHORT --clinical CLINICAL_CSV --out DIR, which writes DIR/linked.csv)"
)


def _check_linked_columns(linked: pd.DataFrame, path: str, params: StatsParams) -> None:
    """Refuse a table without ``patient_id``, ``vas`` or the imaging columns the analyses use.

    The library's :func:`spinemri.analyze` reports each analysis it cannot compute; on the
    command line a table that is no linked table at all (``patients.csv`` before linking, the
    clinical table itself) is a usage mistake, not ten "not computable" warnings and exit 0.
    """
    imaging = required_imaging_columns(params)
    missing_imaging = [c for c in imaging if c not in linked.columns]
    missing = [c for c in ("patient_id", "vas") if c not in linked.columns] + missing_imaging
    if not missing:
        import pandas as pd

        if not pd.to_numeric(linked["vas"], errors="coerce").notna().any():
            raise UnlinkedTableError(
                f"{path}: no row has a VAS value (the vas column of its {len(linked)} row(s) is empty or not "
                f"a number), so no analysis can run; was the clinical table linked? {_HOW_TO_LINK}"
            )
        return
    what = (
        "is not a linked table"
        if "vas" in missing or len(missing_imaging) == len(imaging)
        else ("lacks columns the analyses need")
    )
    raise UnlinkedTableError(
        f"{path} {what}: column(s) {', '.join(missing)} missing "
        f"(a linked table has patient_id, vas and the imaging columns {', '.join(imaging)}); {_HOW_TO_LINK}"
    )


def required_imaging_columns(params: StatsParams) -> list[str]:
    """The patients-table columns the study's analyses read (docs/statistics.md).

    Parameters
    ----------
    params : StatsParams
        Its ``ols_predictors`` and ``prediction_features`` are read too.

    Returns
    -------
    list of str
        ``dominant_region``, ``lumbar_involved``, the Spearman columns, the model
        predictors and the prediction features, each once, in that order.
    """
    from ..stats.study import SPEARMAN_PAIRS

    cols = ["dominant_region", "lumbar_involved"]
    cols += [c for pair in SPEARMAN_PAIRS for c in pair]
    cols += [*params.ols_predictors, *params.prediction_features]
    return list(dict.fromkeys(c for c in cols if c != "vas"))


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
        :class:`~spinemri.errors.InputError`, a table without ``vas``, ``patient_id`` or the
        imaging columns an :class:`UnlinkedTableError`), which :func:`spinemri.cli.main`
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
    from ._outpath import check_output_path

    check_output_path(args.out, "--out", folder=True)  # a file (or under one): exit 2, was a traceback
    linked = read_table(args.linked, dtype_str_columns=("patient_id",))
    if linked.empty:
        raise InputError(f"linked table {args.linked} has no rows; run spinemri link first")
    _check_linked_columns(linked, args.linked, params)
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
