"""``spinemri phantom OUT_DIR``: write a synthetic cohort with ground truth."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``phantom`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command action of the ``spinemri`` parser (from
        :meth:`argparse.ArgumentParser.add_subparsers`).

    Returns
    -------
    argparse.ArgumentParser
        The ``phantom`` parser: positional ``OUT_DIR``, ``--patients``, ``--seed``,
        ``--format``, ``--contrast``, the matrix, level and scheme options and
        ``--second-series``; ``func`` is set to :func:`run`.
    """
    p = subparsers.add_parser(
        "phantom",
        help="write a synthetic spine MRI cohort with ground truth",
        description="Write one folder per patient (image + vertebrae_mask.nii.gz), clinical.csv with VAS, "
        "and truth.csv / truth_vertebrae.csv / truth_lesions.csv / truth.json (docs/phantom.md).",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created)")
    p.add_argument("--patients", type=int, default=10, help="number of patients (default 10)")
    p.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0); a seed gives identical files"
    )
    p.add_argument(
        "--format",
        choices=["nifti", "dicom", "mixed"],
        default="nifti",
        help="image format: NIfTI image.nii.gz, a DICOM series dicom/, or alternating (default nifti)",
    )
    p.add_argument(
        "--contrast", choices=["stir", "t1"], default="stir", help="contrast preset (default stir)"
    )
    p.add_argument("--rows", type=int, help="matrix rows along S-I (default 512)")
    p.add_argument("--cols", type=int, help="matrix columns along A-P (default 256)")
    p.add_argument("--slices", type=int, help="number of sagittal slices (default 15)")
    p.add_argument("--levels", help="level range FIRST-LAST, e.g. T10-S1 (default C3-S1)")
    p.add_argument(
        "--scheme", choices=["verse", "totalseg", "spider"], help="mask label scheme (default verse)"
    )
    p.add_argument(
        "--second-series",
        type=int,
        default=0,
        metavar="N",
        help="the first N DICOM patients also get a series of the other contrast in the same study",
    )
    p.add_argument(
        "--timepoints",
        type=int,
        default=1,
        metavar="N",
        help="scans per patient (default 1); N > 1 writes OUT/PATIENT/YYYY-MM-DD/ per scan, lesions "
        "changing by known amounts, and the change truth (docs/phantom.md)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="OUT_DIR holds an earlier phantom cohort: replace it (its patient folders, clinical.csv and "
        "truth tables; other files are kept)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``spinemri phantom``: write a synthetic cohort with its ground truth.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of the ``phantom`` sub-command (``out_dir``, ``patients``,
        ``seed``, ``format``, ``contrast``, ``rows``, ``cols``, ``slices``,
        ``levels``, ``scheme``, ``second_series``, ``timepoints``).

    Returns
    -------
    int
        Exit status 0 (the cohort was written). A refused option value (a
        malformed ``--levels`` too) is raised as :class:`~spinemri.cli.UsageError`
        before anything is written; :func:`spinemri.cli.main` maps it to 2.
    """
    from ..cli import UsageError, check_options
    from ..io.cohort_followup import write_followup_cohort
    from ..io.cohort_write import CohortSpec, write_cohort
    from ..phantom.followup import check_followup_options
    from ..phantom.params import PhantomParams

    options: dict[str, Any] = {}
    for arg, key in (("rows", "rows"), ("cols", "cols"), ("slices", "n_slices"), ("scheme", "scheme")):
        if getattr(args, arg) is not None:
            options[key] = getattr(args, arg)
    if args.levels:
        first, sep, last = args.levels.partition("-")
        if not sep:
            raise UsageError(f"--levels {args.levels!r}: write the range as FIRST-LAST, e.g. T10-S1")
        options.update(first_level=first.strip(), last_level=last.strip())

    if not 1 <= args.timepoints <= 12:
        raise UsageError(f"--timepoints {args.timepoints}: give a number of scans per patient in 1..12")

    def build() -> CohortSpec:
        # these options do not interact with the per-patient draws: refused here, they fail for
        # every patient, so a bad one is bad usage (exit 2) before anything is written
        PhantomParams.from_options(contrast=args.contrast, **options)
        if args.timepoints > 1:
            check_followup_options(args.timepoints, contrast=args.contrast, **options)
        return CohortSpec(
            n_patients=args.patients,
            seed=args.seed,
            format=args.format,
            contrast=args.contrast,
            second_series=args.second_series,
        )

    flags = {"n_slices": "--slices", "first_level": "--levels", "last_level": "--levels"}
    spec = check_options(build, args, flags)
    from ._outpath import check_output_path

    check_output_path(args.out_dir, "OUT_DIR", folder=True)  # OUT_DIR under a file: exit 2, no traceback
    _check_out_dir(Path(args.out_dir), args.force)
    if args.timepoints > 1:
        tables = write_followup_cohort(args.out_dir, spec, args.timepoints, **options)
        n = tables["patients"]["patient_id"].nunique()
        print(
            f"wrote {n} phantom patient(s) x {args.timepoints} time points to {args.out_dir} "
            "(clinical.csv, truth.csv, truth_vertebrae.csv, truth_changes.csv)"
        )
        return 0
    tables = write_cohort(args.out_dir, spec, **options)
    n = len(tables["patients"])
    print(f"wrote {n} phantom patient(s) to {args.out_dir} (clinical.csv, truth.csv, truth_vertebrae.csv)")
    return 0


#: Files a phantom cohort writes beside its patient folders (io/cohort_write.py, io/cohort_followup.py).
_COHORT_FILES = ("clinical.csv", "truth.json")


def _check_out_dir(out: Path, force: bool) -> None:
    """Refuse a non-empty OUT_DIR unless ``--force`` replaces the phantom cohort written there before.

    A cohort written into a folder that already holds one mixed the two: 10 new patients beside
    390 stale patient folders of an earlier 400-patient cohort, all read by ``spinemri run`` as
    patients against a clinical table of 10.
    """
    from ..cli import UsageError

    if not out.is_dir() or not any(out.iterdir()):
        return
    truth = out / "truth.csv"
    if not force:
        raise UsageError(
            f"OUT_DIR {out}: is not empty; a cohort written into it would mix with what is there (earlier "
            "patient folders would be read as patients). Choose a new or empty folder"
            + (", or pass --force to replace the phantom cohort there" if truth.is_file() else "")
        )
    if not truth.is_file():
        raise UsageError(
            f"OUT_DIR {out}: is not empty and holds no earlier phantom cohort (no truth.csv), so --force "
            "has nothing it may replace; choose a new or empty folder"
        )
    import pandas as pd

    ids = pd.read_csv(truth, dtype=str, usecols=["patient_id"])["patient_id"].dropna()
    for pid in ids.unique():
        folder = out / pid
        if pid and "/" not in pid and pid not in (".", "..") and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
    for f in [*_COHORT_FILES, *(p.name for p in out.glob("truth*.csv"))]:
        (out / f).unlink(missing_ok=True)
