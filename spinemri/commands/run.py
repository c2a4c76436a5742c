"""``spinemri run COHORT --out DIR``: the whole pipeline over a cohort."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._options import MEASURE_FLAGS, add_link_options, add_measure_options, link_params, segment_options

if TYPE_CHECKING:
    from ..pipeline.case import CaseOutcome


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``run`` sub-command.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The sub-command action of the ``spinemri`` parser (from
        :meth:`argparse.ArgumentParser.add_subparsers`); gets the ``run``
        parser with positional ``cohort``, ``--out`` (required), the clinical,
        manifest, executor, resume and DICOM-SEG options, ``--quiet``, the
        measurement options of ``measure`` and the link options of ``link``
        (:mod:`spinemri.commands._options`), whose ``func`` is :func:`run`.
    """
    p = sub.add_parser(
        "run",
        help="measure every case of a cohort folder, link to the clinical table and analyze",
        description=(
            "Measure every case of COHORT (one sub-folder per patient holding the image and a mask file "
            "whose name contains mask, seg, label or vert), write combined tables, QC images, lesion masks, "
            "errors.csv and provenance.json to DIR; with a clinical table (--clinical, or "
            "COHORT/clinical.csv) also link and analyze. Rerunning into the same DIR skips unchanged cases. "
            "Exit status: 0 all cases done, 1 some failed (see DIR/errors.csv), 2 bad usage or no usable "
            "input."
        ),
    )
    p.add_argument("cohort", help="cohort folder (one sub-folder per patient)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--clinical",
        help="clinical CSV/TSV/XLSX with patient ids and VAS (default COHORT/clinical.csv; columns: "
        "see linking below)",
    )
    p.add_argument("--manifest", help="CSV with patient_id,image,mask overriding folder discovery")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--scheduler", help="'local' for a Dask LocalCluster, or a Dask scheduler address")
    p.add_argument("--force", action="store_true", help="recompute every case")
    p.add_argument(
        "--dicom-seg",
        action="store_true",
        help="also write masks/<id>_lesions.seg.dcm (DICOM Segmentation) for DICOM cases; "
        "it carries the source's patient data (docs/dicom-seg.md)",
    )
    p.add_argument(
        "--dicom-seg-vertebrae",
        action="store_true",
        help="add one segment per vertebral level to the DICOM-SEG (implies --dicom-seg)",
    )
    p.add_argument(
        "--no-guidance",
        action="store_true",
        help="skip the therapy-guidance outputs (guidance.csv: body heights and SINS components per "
        "vertebra; planning.csv, planning_levels.csv), about 0.3 s per 23-level case",
    )
    p.add_argument(
        "--canal-screening",
        action="store_true",
        help="experimental: add per level canal and cord areas and a screening flag for possible epidural "
        "disease / cord compression to guidance.csv, when the mask has canal and cord (SPINEPS, "
        "TotalSpineSeg); a screening aid, not a grading",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    add_measure_options(p, many=True)
    add_link_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``spinemri run``: the whole pipeline over a cohort folder.

    Measures every case into ``args.out`` (see
    :func:`spinemri.pipeline.cohort.run_cohort`), with a progress bar on a
    terminal and, unless ``--quiet``, a summary line and notes on stderr.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of the ``run`` sub-command (``cohort``, ``out``,
        ``clinical``, ``manifest``, ``workers``, ``scheduler``, ``scheme``,
        ``method``, the segmentation options, ``series``, ``resample_mask``,
        ``force``, ``no_plausibility_check``, ``dicom_seg``, ``dicom_seg_vertebrae``,
        ``quiet`` and the link options).

    Returns
    -------
    int
        Exit status: 0 when every case was done (or skipped as unchanged), 1 when
        some cases failed (listed in ``OUT/errors.csv``). A refused option value
        is raised as :class:`~spinemri.cli.UsageError` before any case is read,
        other errors as :class:`~spinemri.errors.SpinemriError`
        (:func:`spinemri.cli.main` maps them to 2 or 1).
    """
    from ..cli import check_options
    from ..params import RunConfig, measure_params
    from ..pipeline.cohort import run_cohort

    segment = segment_options(args)
    # a bad segmentation or link option is bad usage (exit 2), refused before any case is read
    check_options(lambda: measure_params({"method": args.method, **segment}), args, MEASURE_FLAGS)
    link = check_options(lambda: link_params(args), args)
    config = check_options(  # --workers 0, --scheduler bogus://x, --series 'a{99999999999}': exit 2
        lambda: RunConfig(
            workers=args.workers,
            scheduler=args.scheduler,
            scheme=args.scheme,
            method=args.method,
            series=args.series,
            resample_mask=args.resample_mask,
            force=args.force,
            segment=tuple(segment.items()),
            check_plausibility=not args.no_plausibility_check,
            dicom_seg=args.dicom_seg,
            dicom_seg_vertebrae=args.dicom_seg_vertebrae,
            guidance=not args.no_guidance,
            canal_screening=args.canal_screening,
        ),
        args,
    )
    if args.clinical is not None and not Path(args.clinical).is_file():  # not after hours of measuring
        from ..cli import UsageError

        what = "is a folder" if Path(args.clinical).is_dir() else "does not exist"
        raise UsageError(f"--clinical {args.clinical}: {what}; pass the clinical CSV/TSV/XLSX file")
    if args.scheme != "auto":  # an unknown --scheme failed every case (exit 1): bad usage, exit 2
        from ..errors import LabelSchemeError
        from ..levels import get_scheme

        try:
            get_scheme(args.scheme)
        except LabelSchemeError as exc:
            from ..cli import UsageError

            raise UsageError(f"--scheme: {exc}") from exc
    if args.scheduler is not None:  # dask.distributed missing: exit 2 with the pip command, no traceback
        from ..pipeline.executors import require_distributed

        check_options(lambda: require_distributed(args.scheduler), args)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="case", file=sys.stderr, dynamic_ncols=True)

    def progress(outcome: CaseOutcome | None, total: int) -> None:
        if bar is not None:
            if bar.total != total:
                bar.reset(total=total)
            bar.update(1)
            if outcome is not None and not outcome.ok:
                bar.write(
                    f"failed: {outcome.patient_id} ({outcome.stage}): {outcome.message}", file=sys.stderr
                )

    try:
        summary = run_cohort(
            args.cohort,
            args.out,
            clinical=args.clinical,
            manifest=args.manifest,
            config=config,
            progress=progress,
            link_params=link,
        )
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
        for note in summary.notes:
            print(note, file=sys.stderr)
    return summary.exit_code
