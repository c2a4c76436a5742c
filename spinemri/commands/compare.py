"""``spinemri compare BASE FOLLOWUP --out DIR``: change between two measured time points of one patient."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``compare`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command action of the ``spinemri`` parser.

    Returns
    -------
    argparse.ArgumentParser
        The ``compare`` parser: positional ``BASE`` and ``FOLLOWUP`` (output folders of
        ``spinemri measure``), ``--out`` (required), ``--clinical``, ``--patient-id``,
        ``--id-column``; ``func`` is set to :func:`run`.
    """
    p = subparsers.add_parser(
        "compare",
        help="change between two measured time points of one patient (changes.csv, ...)",
        description="Compare two time points of one patient, each the --out folder of a spinemri measure "
        "run (measure them with a time point name, measure's timepoint option, for the level check "
        "by heights and for lesion matching), "
        "and write DIR/changes.csv, lesion_changes.csv, patient_changes.csv, level_checks.csv and "
        "summary.json (docs/surveillance.md). A cohort with time point folders gets the same tables "
        "from spinemri run.",
    )
    p.add_argument("base", metavar="BASE", help="output folder of the earlier scan's spinemri measure")
    p.add_argument("followup", metavar="FOLLOWUP", help="output folder of the later scan's spinemri measure")
    p.add_argument("--out", required=True, help="output folder for the change tables")
    p.add_argument(
        "--clinical", default=None, help="clinical table: VAS per time point, radiotherapy columns"
    )
    p.add_argument(
        "--patient-id", default=None, help="compare two folders whose patient ids differ, as this id"
    )
    p.add_argument("--id-column", default="patient_id", help="patient id column of --clinical")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Compare the two folders and print one summary line.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``compare`` arguments.

    Returns
    -------
    int
        0 (errors are raised as :class:`~spinemri.errors.SpinemriError`, exit 2 for bad input).
    """
    from ..params import LinkParams
    from ..pipeline.surveil import compare_folders
    from ._outpath import check_output_path

    check_output_path(args.out, "--out", folder=True)
    outputs = compare_folders(
        args.base,
        args.followup,
        args.out,
        clinical=args.clinical,
        patient_id=args.patient_id,
        link_params=LinkParams(id_column=args.id_column),
    )
    for line in outputs.notes():
        print(line, file=sys.stderr)
    return 0
