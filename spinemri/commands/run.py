"""``spinemri run COHORT --out DIR``: the whole pipeline over a cohort."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
        manifest, executor, segmentation, resume and DICOM-SEG options and
        ``--quiet``, whose ``func`` is :func:`run`.
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
        "--clinical", help="clinical CSV/TSV/XLSX with patient_id and vas (default COHORT/clinical.csv)"
    )
    p.add_argument("--manifest", help="CSV with patient_id,image,mask overriding folder discovery")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--scheduler", help="'local' for a Dask LocalCluster, or a Dask scheduler address")
    p.add_argument(
        "--scheme", default="auto", help="label scheme: auto, verse, totalseg, spider, ... or a file"
    )
    p.add_argument(
        "--method",
        default="robust",
        choices=["robust", "local", "otsu", "fixed"],
        help="lesion threshold method (default robust)",
    )
    p.add_argument(
        "--polarity", choices=["bright", "dark"], help="lesions brighter (STIR, default) or darker (T1)"
    )
    p.add_argument("--k", type=float, help="MAD multiplier of the robust/local threshold")
    p.add_argument("--min-lesion-mm3", type=float, help="drop lesion components smaller than this")
    p.add_argument("--margin-mm", type=float, help="vertebra rim excluded from seeding, mm (default 1)")
    p.add_argument("--connectivity", type=int, choices=[6, 18, 26], help="lesion connectivity (default 26)")
    p.add_argument(
        "--series", help="DICOM series: SeriesInstanceUID, SeriesNumber or a regex on the description"
    )
    p.add_argument(
        "--resample-mask", action="store_true", help="resample masks on another grid instead of failing"
    )
    p.add_argument("--force", action="store_true", help="recompute every case")
    p.add_argument(
        "--no-plausibility-check",
        action="store_true",
        help="measure implausible inputs anyway (a CT image, a mask without any vertebra-sized label): "
        "warn and flag it in the plausibility columns instead of refusing it (docs/supported-inputs.md)",
    )
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
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
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
        ``quiet``).

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

    names = ("polarity", "k", "min_lesion_mm3", "margin_mm", "connectivity")
    segment = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    # a bad segmentation option is bad usage (exit 2), refused before any case is read
    check_options(lambda: measure_params({"method": args.method, **segment}), args)
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
        )
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
        for note in summary.notes:
            print(note, file=sys.stderr)
    return summary.exit_code
