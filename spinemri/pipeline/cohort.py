"""The cohort runner: measure every case, isolate failures, resume, combine, link, analyze.

Each case goes through the single-case runner (:mod:`spinemri.pipeline.case`);
resume state lives in :mod:`spinemri.pipeline.state`, the backends in
:mod:`spinemri.pipeline.executors`.

Layout of ``OUT`` (DESIGN §6)::

    vertebrae.csv patients.csv lesions.csv (+ .parquet)   combined tables, sorted by patient id
    errors.csv                                            one row per failed case
    provenance.json                                       versions, config, input hashes, timings
    linked.csv link_report.csv analysis/                  when a clinical table is given or found
    qc/<id>.png   masks/<id>_lesions.nii.gz               per case
    masks/<id>_lesions.seg.dcm                            DICOM cases with RunConfig.dicom_seg
                                                          (docs/dicom-seg.md)
    cases/<id>/   vertebrae.csv lesions.csv patient.csv state.json   per-case results (resume)

Workers only compute and return a :class:`~spinemri.pipeline.case.CaseOutcome`; the parent process
writes every file (atomically: temporary name, then rename). ``state.json`` is
written last for a case, so a case counts as done only when all its files are
complete; a rerun skips cases whose ``state.json`` records the same input
hash and parameters, and always rebuilds the combined tables from the
per-case files. Combined CSVs are the per-case CSV bodies concatenated in
patient-id order, so they are byte-identical whichever executor ran the cases
and whether or not the run was resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, LabelSchemeError, OutputError, SpinemriError
from ..io.atomic import write_text_atomic, writing
from ..io.discover import Case, discover_cases, with_timepoint_columns
from ..io.idkey import check_key_outside
from ..io.ids import safe_id, text_id
from ..params import LinkParams, RunConfig, as_dict
from .analysis import check_clinical, link_and_analyze, surveil_if_longitudinal, write_planning
from .case import CaseOptions, CaseOutcome, run_case, write_case_files
from .executors import WorkerFailure, backend_name, check_scheduler, run_map
from .state import (
    CASE_TABLE_FILES,
    case_dir,
    case_input_hash,
    is_done,
    params_hash,
    state_path,
    write_state,
)
from .surveil import SurveillanceOutputs

__all__ = [
    "ANALYSIS_MODULES",
    "ERROR_COLUMNS",
    "RunSummary",
    "case_options",
    "process_case",
    "run_cohort",
    "scrub_outcome",
]

log = logging.getLogger(__name__)

#: Columns of errors.csv (DESIGN §6).
ERROR_COLUMNS = ("patient_id", "stage", "error", "message", "path")
TABLES = ("vertebrae", "patients", "lesions", "guidance")


@dataclass(frozen=True)
class RunSummary:
    """Counts and paths of a finished cohort run."""

    out_dir: Path
    n_cases: int
    done: int
    skipped: int
    failed: int
    elapsed_s: float
    backend: str
    failed_ids: tuple[str, ...] = ()
    analysis_dir: Path | None = None
    notes: tuple[str, ...] = ()
    incomplete: int = 0  # cases done without an optional output (QC picture, DICOM-SEG): errors.csv

    @property
    def exit_code(self) -> int:
        """0 when no case failed and no optional output failed, 1 otherwise (DESIGN §7)."""
        return 0 if self.failed == 0 and self.incomplete == 0 else 1

    def line(self) -> str:
        """One-line summary for the terminal.

        Returns
        -------
        str
            Case counts (done, skipped as unchanged, failed), the elapsed time in
            seconds, the backend and the output folder, e.g.
            ``"3 cases: 2 done, 1 skipped (unchanged), 0 failed in 4.2 s [serial] -> out"``.
        """
        return (
            f"{self.n_cases} cases: {self.done} done, {self.skipped} skipped (unchanged), "
            f"{self.failed} failed "
            + (
                f"({self.incomplete} done without an optional output, see errors.csv) "
                if self.incomplete
                else ""
            )
            + f"in {self.elapsed_s:.1f} s [{self.backend}] -> {self.out_dir}"
        )


# --- the worker side ------------------------------------------------------------------------


def case_options(config: RunConfig) -> CaseOptions:
    """The single-case options of a cohort run.

    Parameters
    ----------
    config : RunConfig
        The run's options.

    Returns
    -------
    CaseOptions
        Measurement keywords, series, mask resampling and DICOM-SEG choice.
    """
    return CaseOptions(
        measure=tuple(config.measure_options().items()),
        series=config.series,
        resample_mask=config.resample_mask,
        dicom_seg=config.dicom_seg,
        dicom_seg_vertebrae=config.dicom_seg_vertebrae,
        guidance=config.guidance,
        canal_screening=config.canal_screening and config.guidance,
    )


def process_case(case: Case, config: RunConfig) -> CaseOutcome:
    """Load, measure and render one case of a cohort; never raises for a bad case.

    Parameters
    ----------
    case : Case
        A discovered case (one with a discovery problem fails at stage ``discover``).
    config : RunConfig
        The run's options.

    Returns
    -------
    CaseOutcome
        ``ok`` with the encoded outputs (:func:`spinemri.pipeline.case.run_case`),
        or the failure: stage, error type, message and the offending path.
    """
    out = CaseOutcome(
        patient_id=case.patient_id,
        ok=False,
        stage="discover",
        timepoint=case.timepoint,
        scan_date=case.scan_date,
    )
    t0 = time.perf_counter()
    unexpected = ""
    try:
        if case.problem:
            raise InputError(f"{case.problem_path or case.folder}: {case.problem}")
        assert case.image is not None and case.mask is not None
        out.input_hash = case_input_hash(case)
        measured = run_case(
            case.image,
            case.mask,
            case_options(config),
            out,
            patient_id=case.patient_id,
            timepoint=case.timepoint,
            scan_date=case.scan_date,
        )
        out.notes.extend(f"{w.category.__name__}: {w.message}" for w in measured.warnings)
        out.notes.extend(measured.measurement.notes)
        out.ok = True
    except SpinemriError as exc:
        out.error, out.message = type(exc).__name__, str(exc)
        mask_at_fault = out.stage == "load_mask" or isinstance(exc, LabelSchemeError)
        out.path = str(case.problem_path or (case.mask if mask_at_fault else case.image) or case.folder)
    except MemoryError as exc:
        out.error, out.message = "MemoryError", f"out of memory: {exc}"
        out.path = str(case.image or case.folder)
    except Exception as exc:  # an unexpected error is a bug, but one case must not stop a cohort
        tb = traceback.format_exc(limit=6)
        out.error = type(exc).__name__
        out.message = f"unexpected error (please report it as a bug): {exc}"
        out.path = str(case.image or case.folder)
        unexpected = tb
    scrub = scrub_outcome(out, case)
    if unexpected:  # logged outside the except block: a failing log handler cannot print the raw error
        log.error("unexpected error in case %s at stage %s:\n%s", case.key, out.stage, scrub(unexpected))
    out.timings_s["total"] = time.perf_counter() - t0
    return out


def scrub_outcome(outcome: CaseOutcome, case: Case) -> Callable[[str], str]:
    """Remove identifiers from the texts of an outcome: error, message, path, notes and optional failures.

    The case's identifying DICOM values are read from its inputs' headers
    (:func:`spinemri.io.scrub.dicom_identifiers`) only when there is text to scrub (a failure
    or notes); the case's own id is kept.

    Parameters
    ----------
    outcome : CaseOutcome
        Of :func:`process_case` (or a worker failure), changed in place.
    case : Case
        The case (its image and mask are read for identifiers).

    Returns
    -------
    callable
        ``scrub(text) -> text`` with the same identifiers, for log lines about this case.
    """
    from ..io.scrub import dicom_identifiers, scrub_text

    found: set[str] = set()
    if not outcome.ok or outcome.notes or outcome.optional_failures:
        found = dicom_identifiers([case.image, case.mask])

    def scrub(text: str) -> str:
        return scrub_text(text, found, keep=(case.patient_id,))

    outcome.error, outcome.message, outcome.path = (
        scrub(outcome.error),
        scrub(outcome.message),
        scrub(outcome.path),
    )
    outcome.notes = [scrub(n) for n in outcome.notes]
    outcome.optional_failures = [
        dataclasses.replace(f, error=scrub(f.error), message=scrub(f.message), path=scrub(f.path))
        for f in outcome.optional_failures
    ]
    return scrub


# --- the parent side ------------------------------------------------------------------------


def _write_case(out_dir: Path, outcome: CaseOutcome, run_params_hash: str) -> None:
    write_case_files(
        out_dir,
        outcome,
        tables_dir=case_dir(out_dir, outcome.key),
        table_files=CASE_TABLE_FILES,
    )
    if outcome.optional_failures:  # no "done" marker: a rerun retries the QC picture / DICOM-SEG
        sp = state_path(out_dir, outcome.key)
        if sp.exists():
            sp.unlink()
        return
    with writing(state_path(out_dir, outcome.key)):
        write_state(
            out_dir,
            outcome.key,
            input_hash=outcome.input_hash,
            run_params_hash=run_params_hash,
            timings_s=outcome.timings_s,
            notes=outcome.notes,
        )


def _combine_csv(out_dir: Path, table: str, ids: list[str]) -> str:
    """Concatenate per-case CSVs (header once) in the given id order."""
    header: str | None = None
    body: list[str] = []
    for pid in ids:
        p = case_dir(out_dir, pid) / CASE_TABLE_FILES[table]
        lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
        if not lines:
            continue
        if header is None:
            header = lines[0]
        body.extend(lines[1:])
    return (header or "") + "".join(body)


def _write_tables(out_dir: Path, ok_ids: list[str]) -> dict[str, Any]:
    import pandas as pd

    from ..io.tables import read_csv_text_columns

    frames: dict[str, Any] = {}
    for table in TABLES:
        text = _combine_csv(out_dir, table, ok_ids)
        if table == "guidance" and not text.strip():  # --no-guidance: no table (nor a stale one)
            for suffix in (".csv", ".parquet"):
                (out_dir / f"guidance{suffix}").unlink(missing_ok=True)
            continue
        with writing(out_dir / f"{table}.csv"):
            write_text_atomic(out_dir / f"{table}.csv", text)
        frames[table] = (
            read_csv_text_columns(io.StringIO(text), ("patient_id", "timepoint", "scan_date"))
            if text.strip()
            else pd.DataFrame()
        )
    from ..io.tables import has_parquet, write_table

    if has_parquet():
        for table, df in frames.items():
            with writing(out_dir / f"{table}.parquet"):
                write_table(df, out_dir / f"{table}.parquet")
    return frames


def _write_errors(out_dir: Path, failures: list[CaseOutcome]) -> None:
    import pandas as pd

    from ..io.tables import write_csv

    columns = list(ERROR_COLUMNS)
    if any(f.timepoint is not None for f in failures):  # a longitudinal cohort: which scan failed
        columns[1:1] = ["timepoint", "scan_date"]
    df = pd.DataFrame(
        [
            [getattr(f, c) or "" if c in ("timepoint", "scan_date") else getattr(f, c) for c in columns]
            for f in sorted(failures, key=lambda f: (f.patient_id, f.scan_date or "", f.timepoint or ""))
        ],
        columns=columns,
    )
    write_csv(df, out_dir / "errors.csv")


#: What linking and the analysis import on first use (see :func:`_import_analysis_modules`).
ANALYSIS_MODULES = (
    "scipy.stats",
    "statsmodels.regression.linear_model",
    "statsmodels.miscmodels.ordinal_model",
    "sklearn.linear_model",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "matplotlib.figure",
    "spinemri.linking",
    "spinemri.stats.study",
    "spinemri.report.figures",
    "spinemri.report.html",
)


def _import_analysis_modules() -> None:
    """Import :data:`ANALYSIS_MODULES` (from a background thread; a failure is left to the real import)."""
    import importlib

    for name in ANALYSIS_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the analysis itself reports a missing or broken module
            log.debug("warm import of %s failed", name, exc_info=True)


def run_cohort(
    cohort_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    clinical: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    config: RunConfig | None = None,
    progress: Callable[[CaseOutcome | None, int], None] | None = None,
    link_params: LinkParams | None = None,
    **options: Any,
) -> RunSummary:
    """Measure every case of a cohort and write the combined outputs (DESIGN §6).

    Parameters
    ----------
    cohort_dir : path-like
        One sub-folder per patient (see :mod:`spinemri.io.discover`).
    out_dir : path-like
        Output folder (created). An earlier run's results there are reused
        for unchanged cases unless ``force``.
    clinical : path-like, optional
        Clinical table with VAS; defaults to ``COHORT/clinical.csv`` when it
        exists. When present, ``linked.csv`` and ``analysis/`` are written.
    manifest : path-like, optional
        CSV with ``patient_id, image, mask`` overriding folder discovery.
    config : RunConfig, optional
        Run options; or pass them as keyword arguments (``workers=2``,
        ``scheduler="local"``, ``method="local"``, ``force=True``, ...).
        Keywords that are not RunConfig fields go to the segmentation.
    progress : callable, optional
        Called as ``progress(outcome, n_cases)`` for each finished case
        (``outcome`` is None for a case skipped as unchanged).
    link_params : LinkParams, optional
        How the clinical table is joined (columns, decimal comma, identifier
        columns kept; :func:`spinemri.link`); checked against the table before
        the first case is measured.

    Returns
    -------
    RunSummary
        ``exit_code`` is 0 when every case succeeded, 1 when some failed.
    """
    t_start = time.perf_counter()
    if config is None:
        fields = set(RunConfig.__dataclass_fields__)
        run_kw = {k: v for k, v in options.items() if k in fields}
        seg_kw = {k: v for k, v in options.items() if k not in fields}
        if "segment" in run_kw:
            seg_kw = {**dict(run_kw.pop("segment")), **seg_kw}
        config = RunConfig(**run_kw, segment=tuple(seg_kw.items()))
    elif options:
        raise InputError(f"pass either config= or keyword options, not both (got {sorted(options)})")
    out = Path(out_dir)
    check_key_outside(out)
    check_scheduler(config.scheduler)  # an address where no Dask scheduler answers: fail before writing
    created = not out.exists()
    check_output_folder(out)
    try:
        cases = [
            c
            if text_id(c.patient_id) == c.patient_id
            else dataclasses.replace(c, patient_id=text_id(c.patient_id))
            for c in discover_cases(cohort_dir, manifest)
            if not _inside(c.folder, out)  # --out inside the cohort folder: its own folders are not patients
        ]
        cases = with_timepoint_columns(cases)
    except BaseException:
        if created:  # no cohort (missing folder, no patient folder, bad manifest): leave no empty --out
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    ids = [c.key for c in cases]
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return _run_locked(
            cases, ids, out, cohort_dir, clinical, manifest, config, progress, t_start, link_params
        )


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_output_folder(out: Path) -> None:
    """Refuse, before any case is read, an output folder that cannot be one.

    Parameters
    ----------
    out : Path
        The run's ``--out``.

    Raises
    ------
    InputError
        When ``out`` is an existing file, or cannot be created or written (a read-only
        file system, no permission), with the reason.
    """
    if out.exists() and not out.is_dir():
        raise InputError(
            f"output folder {out} is a file, not a folder; choose a folder for the run's outputs"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"output folder {out} cannot be created ({exc.strerror or exc}); choose another folder"
        ) from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"output folder {out} is not writable (read-only file system or no permission)")


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.spinemri.lock`` for the whole run: a second run into the same folder is refused.

    Two runs writing into one folder at once mixed their tables (different parameters) while
    provenance recorded one. The lock is an advisory ``flock`` on a file that stays behind
    (empty but for the holder's process id); the kernel releases it when the process ends,
    also on a crash or SIGKILL, so a stale lock never blocks a rerun.

    Parameters
    ----------
    out : Path
        The run's output folder (existing).

    Yields
    ------
    None
        While the lock is held.

    Raises
    ------
    InputError
        When another process holds the lock (its process id in the message).
    """
    import fcntl

    path = out / ".spinemri.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise InputError(
                f"output folder {out} is in use by another spinemri run (process {holder}); wait for it "
                "to finish or choose another output folder (nothing was written)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _run_locked(
    cases: list[Case],
    ids: list[str],
    out: Path,
    cohort_dir: str | os.PathLike[str],
    clinical: str | os.PathLike[str] | None,
    manifest: str | os.PathLike[str] | None,
    config: RunConfig,
    progress: Callable[[CaseOutcome | None, int], None] | None,
    t_start: float,
    link_params: LinkParams | None = None,
) -> RunSummary:
    run_params_hash = params_hash(config)

    todo: list[Case] = []
    skipped = 0
    for case in cases:
        if not config.force and is_done(out, case, run_params_hash):
            skipped += 1
            if progress:
                progress(None, len(cases))
        else:
            todo.append(case)

    clinical_path = Path(clinical) if clinical is not None else None
    if clinical_path is None and manifest is None and (Path(cohort_dir) / "clinical.csv").is_file():
        clinical_path = Path(cohort_dir) / "clinical.csv"
    if clinical_path is not None:
        check_clinical(clinical_path, link_params)  # a table that cannot be linked: before measuring
    warm = None
    if clinical_path is not None and todo and backend_name(config.workers, config.scheduler) != "serial":
        # while the workers measure, this process has little to do: import the analysis stack now
        # (~2-3 s of scipy.stats / statsmodels / scikit-learn / matplotlib) instead of after the last case
        warm = threading.Thread(target=_import_analysis_modules, name="spinemri-warm-imports", daemon=True)
        warm.start()

    failures: list[CaseOutcome] = []
    incomplete: list[CaseOutcome] = []  # done, but an optional output failed: rows of errors.csv too
    run_notes: list[str] = []
    timings: dict[str, dict[str, float]] = {}
    notes: dict[str, list[str]] = {}
    done = 0
    fn = functools.partial(process_case, config=config)
    for case, result in run_map(fn, todo, workers=config.workers, scheduler=config.scheduler):
        if isinstance(result, WorkerFailure):
            result = CaseOutcome(
                case.patient_id,
                False,
                "worker",
                result.error,
                result.message,
                str(case.image or case.folder),
                timepoint=case.timepoint,
                scan_date=case.scan_date,
            )
            scrub_outcome(result, case)
        if result.ok:
            try:
                _write_case(out, result, run_params_hash)
            except OSError as exc:  # ENOSPC, EDQUOT, ...: this case fails, the run goes on
                message = str(exc)
                if not isinstance(exc, OutputError):
                    message = f"{message} while writing the outputs of this case under {out}"
                result = CaseOutcome(
                    result.patient_id,
                    False,
                    "write",
                    "OutputError",
                    message,
                    str(exc.filename or out),
                    timepoint=result.timepoint,
                    scan_date=result.scan_date,
                )
        if result.ok:
            done += 1
            timings[case.key] = {k: round(v, 4) for k, v in result.timings_s.items()}
            if result.notes:
                notes[case.key] = result.notes
            for opt in result.optional_failures:
                incomplete.append(
                    CaseOutcome(
                        result.patient_id,
                        True,
                        opt.stage,
                        opt.error,
                        opt.message,
                        opt.path,
                        timepoint=result.timepoint,
                        scan_date=result.scan_date,
                    )
                )
                run_notes.append(f"{result.key}: {opt.note()}")
                log.warning("case %s: %s", case.key, opt.note())
        else:
            # a failed case leaves no stale "done" marker behind
            sp = state_path(out, case.key)
            if sp.exists():
                sp.unlink()
            failures.append(result)
            log.warning("case %s failed at %s: %s", case.key, result.stage, result.message)
        if progress:
            progress(result, len(cases))

    failed_ids = {f.key for f in failures}
    ok_ids = [pid for pid in ids if pid not in failed_ids]
    remove_stale_case_files(out, {safe_id(pid) for pid in ok_ids})
    tables_error: OSError | None = None
    try:
        frames = _write_tables(out, ok_ids)
    except OSError as exc:  # still try errors.csv, then report this
        tables_error = exc
    try:
        with writing(out / "errors.csv"):
            _write_errors(out, [*failures, *incomplete])
    except OutputError as exc:
        raise OutputError(f"{exc}; {_failed_text(failures, len(ids))}") from exc
    if tables_error is not None:
        raise _as_output_error(tables_error, out, "the combined tables") from tables_error

    if warm is not None:
        warm.join()
    surveillance = None
    done_keys = set(ok_ids)
    try:
        surveillance = surveil_if_longitudinal(
            out, frames, clinical_path, link_params, [c for c in cases if c.key in done_keys], config
        )
    except OSError as exc:
        raise _as_output_error(exc, out, "the change tables") from exc
    if surveillance is not None:
        run_notes.extend(surveillance.notes())
    try:
        planning = write_planning(out, frames, clinical_path, link_params, surveillance)
    except OSError as exc:
        raise _as_output_error(exc, out, "planning.csv") from exc
    analysis_dir = None
    if clinical_path is not None and ok_ids:
        try:
            analysis_dir, link_notes = link_and_analyze(
                out, frames["patients"], clinical_path, config, link_params, surveillance, planning
            )
        except OSError as exc:
            raise _as_output_error(exc, out, "linked.csv and analysis/") from exc
        run_notes.extend(link_notes)

    elapsed = time.perf_counter() - t_start
    summary = RunSummary(
        out,
        len(cases),
        done,
        skipped,
        len(failures),
        elapsed,
        backend_name(config.workers, config.scheduler),
        tuple(sorted(failed_ids)),
        analysis_dir,
        tuple(run_notes),
        len({f.key for f in incomplete}),
    )
    try:
        _write_provenance(out, cohort_dir, clinical_path, config, summary, timings, notes, surveillance)
    except OSError as exc:
        raise _as_output_error(exc, out, "provenance.json") from exc
    return summary


def _failed_text(failures: list[CaseOutcome], n_cases: int) -> str:
    if not failures:
        return f"none of the {n_cases} case(s) failed"
    ids = sorted(f.key for f in failures)
    shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
    return f"{len(ids)} of {n_cases} case(s) failed ({shown}); see the log"


def _as_output_error(exc: OSError, out: Path, what: str) -> OutputError:
    if isinstance(exc, OutputError):
        return exc
    from ..io.atomic import describe_os_error

    err = OutputError(f"{describe_os_error(exc)} while writing {what} in {out}")
    err.errno = exc.errno
    return err


def _write_provenance(
    out: Path,
    cohort_dir: Any,
    clinical: Path | None,
    config: RunConfig,
    summary: RunSummary,
    timings: dict[str, dict[str, float]],
    notes: dict[str, list[str]],
    surveillance: SurveillanceOutputs | None = None,
) -> None:
    from ..report.provenance import path_sha256, provenance_record

    case_inputs = {}
    finished = {p.parent.name for p in (out / "cases").glob("*/state.json")}
    for pid in sorted({safe_id(p) for p in timings} | finished):
        sp = state_path(out, pid)
        if sp.is_file():
            state = json.loads(sp.read_text(encoding="utf-8"))
            case_inputs[pid] = {
                "input_sha256": state.get("input_hash"),
                "timings_s": state.get("timings_s", {}),
                "notes": state.get("notes", []),
            }
    record = provenance_record(
        parameters={"run": as_dict(config)},
        timings_s={"total": round(summary.elapsed_s, 3)},
        notes=list(summary.notes),
    )
    record["cohort"] = {
        "n_cases": summary.n_cases,
        "done": summary.done,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "backend": summary.backend,
    }
    record["cases"] = case_inputs
    if surveillance is not None:
        record["surveillance"] = {"parameters": as_dict(surveillance.result.params)}
    if clinical is not None:
        record["inputs"]["clinical"] = {"path": clinical.name, "sha256": path_sha256(clinical)}
    write_text_atomic(out / "provenance.json", json.dumps(record, indent=2, sort_keys=True, default=str))


def remove_stale_case_files(out: Path, keep: set[str]) -> list[Path]:
    """Remove the per-case outputs of cases that failed in this run or left the cohort.

    A rerun used to keep the QC picture, lesion mask and per-case tables of a case that now
    fails or was removed: they looked valid beside the new tables. Only spinemri's own names
    are touched: ``cases/<id>/``, ``masks/<id>_lesions.nii.gz`` / ``.seg.dcm`` and
    ``qc/<id>.png``, ``viewer/<id>.html`` whose ``<id>`` is not in ``keep``.

    Parameters
    ----------
    out : Path
        The run's output folder.
    keep : set of str
        Safe ids (:func:`spinemri.io.ids.safe_id`) of the cases done or unchanged in this run.

    Returns
    -------
    list of Path
        What was removed.
    """
    import shutil

    removed: list[Path] = []
    cases_dir = out / "cases"
    if cases_dir.is_dir():
        for d in cases_dir.iterdir():
            if d.is_dir() and not d.is_symlink() and d.name not in keep:
                shutil.rmtree(d)
                removed.append(d)
    stale = (("masks", ("_lesions.nii.gz", "_lesions.seg.dcm")), ("qc", (".png",)), ("viewer", (".html",)))
    for folder, suffixes in stale:
        base = out / folder
        if not base.is_dir():
            continue
        for f in base.iterdir():
            for suffix in suffixes:
                if f.name.endswith(suffix) and f.is_file() and f.name[: -len(suffix)] not in keep:
                    f.unlink()
                    removed.append(f)
    for path in removed:
        log.info("removed the stale output %s (its case failed or left the cohort)", path)
    return removed
