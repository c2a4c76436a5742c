"""``spinemri link PATIENTS_CSV CLINICAL_CSV --out LINKED_CSV``: join imaging results to pain scores."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import LinkError
from ._options import add_link_options, link_params

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``link`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command action of the ``spinemri`` parser (from
        :meth:`argparse.ArgumentParser.add_subparsers`).

    Returns
    -------
    argparse.ArgumentParser
        The ``link`` parser: positionals ``PATIENTS_CSV`` and ``CLINICAL_CSV``,
        ``--out LINKED_CSV`` (required) and the link options shared with ``run``
        (columns, window, decimal comma, identifier columns kept:
        :func:`spinemri.commands._options.add_link_options`); ``func`` is set to :func:`run`.
    """
    p = subparsers.add_parser(
        "link",
        help="join patients.csv to a clinical table of VAS scores",
        description="Join the per-patient imaging table to a clinical table (CSV/TSV/XLSX) of pain scores. "
        "Writes LINKED_CSV and link_report.csv beside it (one row per match or problem) and prints a "
        "summary on stderr. Exit 0, or 2 when the input cannot be used (missing columns, ambiguous "
        "duplicates, no patient linked).",
    )
    p.add_argument("patients", metavar="PATIENTS_CSV", help="patients.csv from spinemri measure/run")
    p.add_argument("clinical", metavar="CLINICAL_CSV", help="clinical table with patient ids and VAS")
    p.add_argument("--out", required=True, metavar="LINKED_CSV", help="linked table to write")
    add_link_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``spinemri link``: join the imaging table to the pain scores.

    Writes ``args.out`` and ``link_report.csv`` beside it, and prints the link
    summary on stderr.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of the ``link`` sub-command (``patients``, ``clinical``,
        ``out``, ``id_column``, ``vas_column``, ``date_column``, ``window_days``,
        ``decimal_comma``, ``keep_columns``).

    Returns
    -------
    int
        Exit status: 0 when at least one patient was linked to a valid VAS; 2 when
        the tables cannot be linked (a :class:`~spinemri.errors.LinkError`: missing
        columns, ambiguous duplicates; re-raised with ``--debug``) or no patient
        was linked (the tables are still written). Other errors are raised as
        :class:`~spinemri.errors.SpinemriError` for :func:`spinemri.cli.main`.
    """
    # heavy imports here, not at module level: `spinemri --help` stays fast
    from ..io.clinical import read_table
    from ..io.tables import write_csv
    from ..linking import link

    out = Path(args.out)
    report_path = out.parent / "link_report.csv"
    refuse_overwriting_inputs(
        {"--out": out, "the link report beside --out": report_path},
        {"PATIENTS_CSV": args.patients, "CLINICAL_CSV": args.clinical},
    )
    from ..cli import UsageError, check_options

    if out.is_dir():  # os.replace onto a folder ended in an IsADirectoryError traceback
        raise UsageError(
            f"--out {out}: is a folder; --out names the linked table to write ({out / 'linked.csv'})"
        )
    from ._outpath import check_output_path

    check_output_path(out, "--out", folder=False)  # under a file, or not writable: exit 2, was a traceback
    params = check_options(lambda: link_params(args), args)  # --window-days -1: exit 2, before reading
    patients = read_table(args.patients, dtype_str_columns=("patient_id",))
    clinical = read_table(args.clinical, dtype_str_columns=(params.id_column,))
    try:
        linked, report = link(patients, clinical, params=params)
    except LinkError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"spinemri link: error: {args.patients} + {args.clinical}: {exc}", file=sys.stderr)
        return 2
    write_csv(linked, out)
    write_csv(report.to_frame(), report_path)
    print(report.summary(), file=sys.stderr)
    print(f"wrote {out} and {report_path}", file=sys.stderr)
    if report.n_linked == 0:
        print(
            f"spinemri link: error: no patient of {args.patients} could be linked to a valid VAS in "
            f"{args.clinical}; see {report_path}",
            file=sys.stderr,
        )
        return 2
    return 0


def refuse_overwriting_inputs(
    outputs: dict[str, str | os.PathLike[str]], inputs: dict[str, str | os.PathLike[str]]
) -> None:
    """Refuse, before anything is read or written, an output that would replace an input or another output.

    Parameters
    ----------
    outputs : dict of str to path-like
        What the command will write, by the name the user knows it by (an option).
    inputs : dict of str to path-like
        What the command reads, by argument name.

    Raises
    ------
    UsageError
        When two of them are the same file (compared after resolving links and ``..``).
    """
    from ..cli import UsageError

    seen = {Path(path).resolve(): f"{name} ({path})" for name, path in inputs.items()}
    for name, path in outputs.items():
        key = Path(path).resolve()
        if key in seen:
            raise UsageError(
                f"{name} ({path}) is the same file as {seen[key]}: spinemri never writes over its input "
                "or over another of its outputs; choose another --out (nothing was written)"
            )
        seen[key] = f"{name} ({path})"
