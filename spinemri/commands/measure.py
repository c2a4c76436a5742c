"""``spinemri measure IMAGE --mask MASK``: measure one case; write tables, lesion mask, QC and provenance.

Argument parsing only: the case runs through the single-case runner of
``spinemri run`` (:mod:`spinemri.pipeline.case`); the patient id follows
:mod:`spinemri.io.ids`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..pipeline.case import CaseOptions, CaseOutcome, run_case, write_measurement
from ._options import MEASURE_FLAGS, add_measure_options, segment_options

__all__ = ["add_parser", "case_options", "lean_allocators", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``measure`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command action of the ``spinemri`` parser (from
        :meth:`argparse.ArgumentParser.add_subparsers`).

    Returns
    -------
    argparse.ArgumentParser
        The ``measure`` parser: positional ``image``, ``--mask`` (required), the
        measurement options shared with ``run`` (scheme, series, method and every
        segmentation option: :func:`spinemri.commands._options.add_measure_options`),
        ``--patient-id``, ``--out`` and the DICOM-SEG flags; ``func`` is set to :func:`run`.
    """
    p = subparsers.add_parser(
        "measure",
        help="measure one case (image + vertebral mask)",
        description=(
            "Segment hyperintense marrow lesions in each vertebra of one image and write per-vertebra, "
            "per-lesion and per-patient tables. IMAGE and MASK are a DICOM folder, a DICOM file, or a "
            "NIfTI/NRRD/MHA file. Without --out the vertebra table is printed."
        ),
    )
    p.add_argument("image", help="image: DICOM folder or file, NIfTI, NRRD or MHA")
    p.add_argument("--mask", required=True, help="vertebral label mask on the image grid")
    add_measure_options(p)
    p.add_argument(
        "--patient-id",
        default=None,
        help="patient id written in the tables (default: for DICOM anon- + a keyed hash (HMAC-SHA-256) "
        "of its PatientID, key from $SPINEMRI_ID_KEY, $SPINEMRI_ID_KEY_FILE or ~/.config/spinemri/id_key, "
        "created on first use; for a file its name without extension, but for a generic name such as "
        "image, t2, stir or series the enclosing folder's name, as spinemri run names a case folder)",
    )
    p.add_argument(
        "--timepoint",
        default=None,
        help="name of this scan's time point (e.g. 2024-03-01 or tp2): the tables gain timepoint and "
        "scan_date columns and each vertebra's frame and lesion positions, for spinemri compare",
    )
    p.add_argument(
        "--scan-date",
        default=None,
        help="scan date YYYY-MM-DD with --timepoint (default: the time point's name when it is a date, "
        "else the DICOM StudyDate)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="output folder, new or empty; without it the vertebra table is printed",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out folder: first remove the files an earlier spinemri measure or "
        "run wrote there (tables, provenance.json, qc/, masks/, viewer/), never any other file",
    )
    p.add_argument(
        "--dicom-seg",
        action="store_true",
        help="also write OUT/masks/<id>_lesions.seg.dcm, a DICOM Segmentation referencing the source series "
        "(DICOM images only; it carries the source's patient data, docs/dicom-seg.md)",
    )
    p.add_argument(
        "--dicom-seg-vertebrae",
        action="store_true",
        help="add one segment per vertebral level to the DICOM-SEG (implies --dicom-seg)",
    )
    p.set_defaults(func=run)
    return p


def _scan_date(args: argparse.Namespace) -> str | None:
    """--scan-date (ISO), or the --timepoint's date; a bad date or --scan-date alone is bad usage."""
    import datetime

    from ..cli import UsageError
    from ..io.discover import timepoint_date

    if args.scan_date is not None and args.timepoint is None:
        raise UsageError("--scan-date needs --timepoint (the name of this scan's time point)")
    if args.scan_date is not None:
        try:
            return datetime.date.fromisoformat(str(args.scan_date)).isoformat()
        except ValueError:
            raise UsageError(f"--scan-date {args.scan_date!r}: not a date; write YYYY-MM-DD") from None
    if args.timepoint is None:
        return None
    try:
        return timepoint_date(str(args.timepoint))
    except ValueError:
        raise UsageError(f"--timepoint {args.timepoint!r} looks like a date but is not one") from None


def _check_dicom_seg(args: argparse.Namespace, image: Any) -> None:
    """--dicom-seg / --dicom-seg-vertebrae: refuse a non-DICOM image or no --out (before the mask loads)."""
    from ..errors import InputError

    if not (args.dicom_seg or args.dicom_seg_vertebrae):
        return
    if image.meta.get("format") != "dicom":
        raise InputError(
            f"{args.image}: --dicom-seg needs a DICOM image (the DICOM-SEG references the source series), "
            f"but this image is {image.meta.get('format') or 'not DICOM'}; pass the DICOM folder or drop "
            "--dicom-seg"
        )
    if args.out is None:
        raise InputError(f"{args.image}: --dicom-seg writes into OUT/masks/: add --out OUT")
    from ..io.dicom.seg import require_highdicom

    require_highdicom()  # before measuring, not after


def _scrubber(args: argparse.Namespace) -> Callable[[str], str]:
    """``scrub(text)``: the identifiers of the image's and mask's DICOM headers removed (io.scrub)."""
    from ..io.scrub import dicom_identifiers, scrub_text

    found = dicom_identifiers([args.image, args.mask])
    keep = [args.patient_id] if args.patient_id else []
    return lambda text: scrub_text(text, found, keep=keep)


def case_options(args: argparse.Namespace) -> CaseOptions:
    """The single-case options of ``spinemri measure``'s arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of the ``measure`` sub-command.

    Returns
    -------
    CaseOptions
        Measurement keywords (scheme, method, the segmentation options given and
        ``check_plausibility=False`` with ``--no-plausibility-check``), mask resampling and the
        DICOM-SEG choice.
    """
    measure = {"scheme": args.scheme, "method": args.method, **segment_options(args)}
    if args.no_plausibility_check:
        measure["check_plausibility"] = False
    return CaseOptions(
        measure=tuple(measure.items()),
        series=args.series,
        resample_mask=args.resample_mask,
        dicom_seg=bool(args.dicom_seg or args.dicom_seg_vertebrae),
        dicom_seg_vertebrae=args.dicom_seg_vertebrae,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``spinemri measure``: measure one image with its vertebral mask.

    Without ``--out`` the vertebra table is printed on stdout; with it the tables,
    the lesion mask (and DICOM-SEG), the QC picture and ``provenance.json`` are
    written under ``args.out``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of the ``measure`` sub-command (``image``, ``mask``,
        ``scheme``, ``series``, ``method``, the segmentation options, ``patient_id``,
        ``out``, ``resample_mask``, ``no_plausibility_check``, ``dicom_seg``,
        ``dicom_seg_vertebrae``).

    Returns
    -------
    int
        Exit status 0 (the case was measured and every output written), 1 when an
        optional output (the QC picture, the DICOM-SEG) failed: the tables, lesion
        mask and provenance (which notes the failure) are written all the same.
        A refused option value is raised
        as :class:`~spinemri.cli.UsageError` before the image is read, and a bad
        input as :class:`~spinemri.errors.SpinemriError` (a mask on another
        grid as :class:`~spinemri.errors.GeometryError` suggesting
        ``--resample-mask``); :func:`spinemri.cli.main` maps them to 2 or 1.
    """
    lean_allocators()
    import pandas as pd

    from ..cli import check_options
    from ..errors import GeometryError
    from ..params import check_series_choice, measure_params

    def check() -> None:
        measure_params({"method": args.method, **segment_options(args)})
        if args.series is not None:
            check_series_choice(args.series)

    # a bad segmentation option or --series is bad usage (exit 2), refused before the image is read
    check_options(check, args, MEASURE_FLAGS)
    if args.out is not None:
        from ..io.idkey import check_key_outside

        check_key_outside(args.out)  # the pseudonym key never lies among the outputs
        _check_out_folder(args)  # a non-empty --out without --force: exit 2 before the image is read
    elif args.force:
        from ..cli import UsageError

        raise UsageError("--force only applies to an --out folder: add --out DIR or drop --force")
    outcome = CaseOutcome(patient_id=args.patient_id or "", ok=False)
    try:
        case = run_case(
            args.image,
            args.mask,
            case_options(args),
            outcome,
            patient_id=args.patient_id,
            encode=args.out is not None,
            check_image=lambda image: _check_dicom_seg(args, image),
            timepoint=args.timepoint,
            scan_date=_scan_date(args),
        )
    except GeometryError as exc:
        if outcome.stage != "load_mask" or args.resample_mask:
            raise
        raise GeometryError(f"{exc} (command line: add --resample-mask)") from exc
    m = case.measurement
    notes = []
    scrub = _scrubber(args) if case.warnings or m.notes else str
    if m.notes:  # notes reach provenance.json: scrubbed of identifiers like every printed text
        m = case.measurement = dataclasses.replace(m, notes=tuple(scrub(n) for n in m.notes))
    for w in case.warnings:
        text = scrub(str(w.message))
        notes.append(text)
        warnings.showwarning(text, w.category, w.filename, w.lineno)
    if args.out is None:
        with pd.option_context("display.max_columns", None, "display.width", 200):
            cols = [
                "level",
                "vertebra_voxels",
                "lesion_voxels",
                "lesion_count",
                "hi_volume_ratio",
                "hi_area_ratio",
                "threshold",
                "involved",
                "truncated",
            ]
            print(m.vertebrae[cols].to_string(index=False))
        return 0
    out = Path(args.out)
    if args.force:
        _clear_out_folder(out)
    paths = write_measurement(
        out,
        case,
        outcome,
        inputs={"image": args.image, "mask": args.mask},
        notes=[n for n in notes if n not in m.notes],
    )
    if "dicom_seg" in paths:
        print(f"wrote DICOM-SEG {paths['dicom_seg']}", file=sys.stderr)
    print(
        f"wrote {out} ({_count(len(m.vertebrae), 'vertebra', 'vertebrae')}, "
        f"{_count(len(m.lesions), 'lesion', 'lesions')}; QC {paths.get('qc', 'none')})",
        file=sys.stderr,
    )
    for failure in outcome.optional_failures:  # the case is written; exit 1 says something failed
        print(f"spinemri measure: error: {failure.path}: {failure.note()}", file=sys.stderr)
    return 1 if outcome.optional_failures else 0


#: glibc's ``mallopt`` parameter number of the mmap threshold (malloc.h).
_M_MMAP_THRESHOLD = -3
#: Allocations from this size on are memory maps of their own (:func:`lean_allocators`).
MMAP_THRESHOLD_BYTES = 1 << 20


def lean_allocators() -> None:
    """Make this process give freed arrays back to the system (``spinemri measure`` is one case).

    Two allocators otherwise keep what one case frees (docs/performance.md, "Memory, fourth pass
    from files"):

    * glibc raises its mmap threshold to the size of each memory-mapped block freed (up to
      32 MiB): once the image file's read buffer was freed, every later array up to that size came
      from the heap, and the heap keeps what is freed in its middle. A fixed threshold of
      :data:`MMAP_THRESHOLD_BYTES` (``mallopt``) keeps arrays from 1 MiB on in maps of their own,
      unmapped when freed, and zero-filled arrays (``np.zeros``) resident only where written.
      (The Dask workers' 128 KiB threshold cost up to 1.5x in case code; at 1 MiB ``measure`` of a
      512x512x20 and a 512x512x120 case took the same CPU time within 2 ms.)
    * pyarrow's default pool (mimalloc) commits 4 MiB segments for the few kilobytes of the
      tables' string columns: ``ARROW_DEFAULT_MEMORY_POOL=system`` (unless set already; read by
      pyarrow when it first allocates) puts them on the system allocator.

    Not glibc (no ``mallopt``): nothing to change. Outputs do not depend on either setting.
    """
    import os

    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):  # not glibc
        pass


def _check_out_folder(args: argparse.Namespace) -> None:
    """Refuse an ``--out`` that is a file, or a non-empty folder without ``--force`` (UsageError, exit 2)."""
    from ..cli import UsageError
    from ._outpath import check_output_path

    out = check_output_path(args.out, "--out", folder=True)  # a file, or under one: exit 2
    if args.force or not out.is_dir():
        return
    from ..pipeline.outdir import foreign_entries, measure_outputs

    ours, foreign = measure_outputs(out), foreign_entries(out)
    if not ours and not foreign:  # empty, or a file manager's .DS_Store only
        return
    held = []
    if ours:
        held.append(f"{_count(len(ours), 'output file', 'output files')} of an earlier spinemri measure/run")
    if foreign:
        held.append(f"{_count(len(foreign), 'other entry', 'other entries')} ({_names(foreign, out)})")
    raise UsageError(
        f"--out {out}: the folder is not empty (it holds {' and '.join(held)}); choose another folder, "
        "or pass --force to replace spinemri's earlier outputs there (other files are kept)"
    )


def _names(paths: list[Path], root: Path) -> str:
    """The first three of ``paths`` relative to ``root``: ``"notes.txt, qc/README.txt, ..."``."""
    return ", ".join(str(f.relative_to(root)) for f in paths[:3]) + (", ..." if len(paths) > 3 else "")


def _clear_out_folder(out: Path) -> None:
    """``--force``: remove spinemri's earlier outputs in ``out`` (never another file); say what was kept."""
    from ..pipeline.outdir import clear_outputs, foreign_entries

    removed = clear_outputs(out)
    kept = foreign_entries(out)
    if removed:
        print(
            f"--force: removed {_count(len(removed), 'earlier output file', 'earlier output files')} "
            f"from {out}",
            file=sys.stderr,
        )
    if kept:
        print(
            f"--force: kept {_count(len(kept), 'entry', 'entries')} spinemri did not write "
            f"({_names(kept, out)})",
            file=sys.stderr,
        )


def _count(n: int, one: str, many: str) -> str:
    """``"1 lesion"``, ``"2 lesions"``."""
    return f"{n} {one if n == 1 else many}"
