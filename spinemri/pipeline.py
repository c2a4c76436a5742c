"""The cohort runner: measure every case, isolate failures, resume, combine, link, analyze.

This is the only module that combines io, the numeric core and report.

Layout of ``OUT`` (DESIGN §6)::

    vertebrae.csv patients.csv lesions.csv (+ .parquet)   combined tables, sorted by patient id
    errors.csv                                            one row per failed case
    provenance.json                                       versions, config, input hashes, timings
    linked.csv link_report.csv analysis/                  when a clinical table is given or found
    qc/<id>.png   masks/<id>_lesions.nii.gz               per case
    masks/<id>_lesions.seg.dcm                            DICOM cases with RunConfig.dicom_seg (docs/dicom-seg.md)
    cases/<id>/   vertebrae.csv lesions.csv patient.csv state.json   per-case results (resume)

Workers only compute and return a :class:`CaseOutcome`; the parent process
writes every file (atomically: temporary name, then rename). ``state.json`` is
written last for a case, so a case counts as done only when all its files are
complete; a rerun skips cases whose ``state.json`` records the same input
hash and parameters, and always rebuilds the combined tables from the
per-case files. Combined CSVs are the per-case CSV bodies concatenated in
patient-id order, so they are byte-identical whichever executor ran the cases
and whether or not the run was resumed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, SpinemriError
from .executors import WorkerFailure, backend_name, run_map
from .io.atomic import write_bytes_atomic, write_text_atomic
from .io.discover import Case, discover_cases
from .params import RunConfig, as_dict

__all__ = ["CaseOutcome", "RunSummary", "run_cohort", "process_case", "ERROR_COLUMNS"]

log = logging.getLogger(__name__)

#: Columns of errors.csv (DESIGN §6).
ERROR_COLUMNS = ("patient_id", "stage", "error", "message", "path")
TABLES = ("vertebrae", "patients", "lesions")
_CASE_FILES = {"vertebrae": "vertebrae.csv", "patients": "patient.csv", "lesions": "lesions.csv"}
STATE_VERSION = 1


@dataclass
class CaseOutcome:
    """What a worker returns for one case: tables and pictures, or the failure."""

    patient_id: str
    ok: bool
    stage: str = ""
    error: str = ""
    message: str = ""
    path: str = ""
    tables: dict[str, str] = field(default_factory=dict)  # table name -> CSV text
    lesion_nii_gz: bytes = b""  # the lesion mask as .nii.gz bytes (compressed in the worker)
    qc_png: bytes = b""
    dicom_seg: bytes = b""  # DICOM-SEG file bytes (RunConfig.dicom_seg, DICOM sources only)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_hash: str = ""


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

    @property
    def exit_code(self) -> int:
        """0 when no case failed, 1 otherwise (DESIGN §7)."""
        return 0 if self.failed == 0 else 1

    def line(self) -> str:
        """One-line summary for the terminal."""
        return (
            f"{self.n_cases} cases: {self.done} done, {self.skipped} skipped (unchanged), {self.failed} failed "
            f"in {self.elapsed_s:.1f} s [{self.backend}] -> {self.out_dir}"
        )


# --- hashing --------------------------------------------------------------------------------


def _case_input_hash(case: Case) -> str:
    from .report.provenance import path_sha256

    h = hashlib.sha256()
    for p in (case.image, case.mask):
        h.update((path_sha256(p) if p is not None and p.exists() else "-").encode("ascii"))
    return h.hexdigest()


def _params_hash(config: RunConfig) -> str:
    from ._version import __version__

    payload = {
        "version": __version__,
        "measure": config.measure_options(),
        "series": config.series,
        "resample_mask": config.resample_mask,
        "state": STATE_VERSION,
    }
    if config.dicom_seg:  # only when on, so that hashes of runs without DICOM-SEG stay valid
        payload["dicom_seg"] = {"vertebrae": config.dicom_seg_vertebrae}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# --- the worker side ------------------------------------------------------------------------


def _df_csv(df: Any) -> str:
    from .io.tables import table_to_csv_bytes

    return table_to_csv_bytes(df).decode("utf-8")


def process_case(case: Case, config: RunConfig) -> CaseOutcome:
    """Load, measure and render one case; never raises for a bad case (returns the failure)."""
    import warnings

    out = CaseOutcome(patient_id=case.patient_id, ok=False)
    stage = "discover"
    t0 = time.perf_counter()
    try:
        if case.problem:
            raise InputError(f"{case.problem_path or case.folder}: {case.problem}")
        assert case.image is not None and case.mask is not None
        out.input_hash = _case_input_hash(case)
        from .io.load import load_mask, load_volume
        from .io.nifti import nifti_gz_bytes
        from .measurement import measure
        from .report.qc import measurement_qc_png

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stage = "load_image"
            t = time.perf_counter()
            image = load_volume(case.image, series=config.series)
            image = image.with_meta(patient_id=case.patient_id)
            out.timings_s["load_image"] = time.perf_counter() - t
            stage = "load_mask"
            t = time.perf_counter()
            mask = load_mask(case.mask, like=image, resample=config.resample_mask)
            out.timings_s["load_mask"] = time.perf_counter() - t
            stage = "measure"
            t = time.perf_counter()
            m = measure(image, mask, patient_id=case.patient_id, **config.measure_options())
            out.timings_s["measure"] = time.perf_counter() - t
            stage = "qc"
            t = time.perf_counter()
            out.qc_png = measurement_qc_png(image, mask, m)
            out.timings_s["qc"] = time.perf_counter() - t
            # --- DICOM-SEG (docs/dicom-seg.md): only for DICOM sources, only when asked for
            if config.dicom_seg and image.meta.get("format") == "dicom":
                from .io.dicomseg import dicom_seg_bytes

                stage = "dicom_seg"
                t = time.perf_counter()
                out.dicom_seg = dicom_seg_bytes(
                    case.image,
                    m.lesion_mask,
                    image=image,
                    series=config.series,
                    levels=m.scheme,
                    vertebrae=mask if config.dicom_seg_vertebrae else None,
                    algorithm_parameters=m.parameters()["segment"],
                )
                out.timings_s["dicom_seg"] = time.perf_counter() - t
        out.notes.extend(f"{w.category.__name__}: {w.message}" for w in caught)
        out.notes.extend(m.notes)
        out.tables = {
            "vertebrae": _df_csv(m.vertebrae),
            "patients": _df_csv(m.patient),
            "lesions": _df_csv(m.lesions),
        }
        stage = "write"
        t = time.perf_counter()
        out.lesion_nii_gz = nifti_gz_bytes(m.lesion_mask)  # lesion ids already in the smallest dtype
        out.timings_s["encode_mask"] = time.perf_counter() - t
        out.ok = True
    except SpinemriError as exc:
        out.stage, out.error, out.message = stage, type(exc).__name__, str(exc)
        out.path = str(
            case.problem_path or (case.mask if stage == "load_mask" else case.image) or case.folder
        )
    except MemoryError as exc:
        out.stage, out.error, out.message = stage, "MemoryError", f"out of memory: {exc}"
        out.path = str(case.image or case.folder)
    except Exception as exc:  # an unexpected error is a bug, but one case must not stop a cohort
        tb = traceback.format_exc(limit=6)
        log.error("unexpected error in case %s at stage %s:\n%s", case.patient_id, stage, tb)
        out.stage, out.error = stage, type(exc).__name__
        out.message = f"unexpected error (please report it as a bug): {exc}"
        out.path = str(case.image or case.folder)
    out.timings_s["total"] = time.perf_counter() - t0
    return out


# --- the parent side ------------------------------------------------------------------------


def _state_path(out_dir: Path, pid: str) -> Path:
    return out_dir / "cases" / pid / "state.json"


def _is_done(out_dir: Path, case: Case, params_hash: str) -> bool:
    sp = _state_path(out_dir, case.patient_id)
    if case.problem or not sp.is_file():
        return False
    try:
        state = json.loads(sp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if state.get("params_hash") != params_hash or state.get("status") != "ok":
        return False
    case_dir = sp.parent
    if not all((case_dir / f).is_file() for f in _CASE_FILES.values()):
        return False
    return state.get("input_hash") == _case_input_hash(case)


def _write_case(out_dir: Path, outcome: CaseOutcome, params_hash: str) -> None:
    pid = outcome.patient_id
    case_dir = out_dir / "cases" / pid
    for name, fname in _CASE_FILES.items():
        write_text_atomic(case_dir / fname, outcome.tables[name])
    if outcome.lesion_nii_gz:
        write_bytes_atomic(out_dir / "masks" / f"{pid}_lesions.nii.gz", outcome.lesion_nii_gz)
    if outcome.qc_png:
        write_bytes_atomic(out_dir / "qc" / f"{pid}.png", outcome.qc_png)
    seg_path = out_dir / "masks" / f"{pid}_lesions.seg.dcm"
    if outcome.dicom_seg:
        write_bytes_atomic(seg_path, outcome.dicom_seg)
    elif seg_path.exists():  # a DICOM-SEG of an earlier run no longer matches this case's lesion mask
        seg_path.unlink()
    state = {
        "status": "ok",
        "input_hash": outcome.input_hash,
        "params_hash": params_hash,
        "timings_s": {k: round(v, 4) for k, v in outcome.timings_s.items()},
        "notes": outcome.notes,
    }
    write_text_atomic(_state_path(out_dir, pid), json.dumps(state, indent=2, sort_keys=True))


def _combine_csv(out_dir: Path, table: str, ids: list[str]) -> str:
    """Concatenate per-case CSVs (header once) in the given id order."""
    header: str | None = None
    body: list[str] = []
    for pid in ids:
        p = out_dir / "cases" / pid / _CASE_FILES[table]
        lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
        if not lines:
            continue
        if header is None:
            header = lines[0]
        body.extend(lines[1:])
    return (header or "") + "".join(body)


def _write_tables(out_dir: Path, ok_ids: list[str]) -> dict[str, Any]:
    import pandas as pd

    frames: dict[str, Any] = {}
    for table in TABLES:
        text = _combine_csv(out_dir, table, ok_ids)
        write_text_atomic(out_dir / f"{table}.csv", text)
        frames[table] = (
            pd.read_csv(io.StringIO(text), dtype={"patient_id": str}) if text.strip() else pd.DataFrame()
        )
    from .io.tables import has_parquet, write_table

    if has_parquet():
        for table, df in frames.items():
            write_table(df, out_dir / f"{table}.parquet")
    return frames


def _write_errors(out_dir: Path, failures: list[CaseOutcome]) -> None:
    import pandas as pd

    df = pd.DataFrame(
        [[getattr(f, c) for c in ERROR_COLUMNS] for f in sorted(failures, key=lambda f: f.patient_id)],
        columns=list(ERROR_COLUMNS),
    )
    write_text_atomic(out_dir / "errors.csv", df.to_csv(index=False, lineterminator="\n"))


def _link_and_analyze(out_dir: Path, patients: Any, clinical: Path) -> tuple[Path, list[str]]:
    from .io.clinical import read_clinical
    from .io.tables import write_table
    from .link import link
    from .report.html import write_analysis
    from .stats import analyze

    clinical_df = read_clinical(clinical)
    linked, report = link(patients, clinical_df)
    write_table(linked, out_dir / "linked.csv")
    write_table(report.to_frame(), out_dir / "link_report.csv")
    analysis = analyze(linked)
    analysis_dir = out_dir / "analysis"
    write_analysis(analysis, analysis_dir)
    return analysis_dir, [report.summary()]


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
    "spinemri.link",
    "spinemri.stats",
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
    cases = discover_cases(cohort_dir, manifest)
    ids = [c.patient_id for c in cases]
    out.mkdir(parents=True, exist_ok=True)
    params_hash = _params_hash(config)

    todo: list[Case] = []
    skipped = 0
    for case in cases:
        if not config.force and _is_done(out, case, params_hash):
            skipped += 1
            if progress:
                progress(None, len(cases))
        else:
            todo.append(case)

    clinical_path = Path(clinical) if clinical is not None else None
    if clinical_path is None and manifest is None and (Path(cohort_dir) / "clinical.csv").is_file():
        clinical_path = Path(cohort_dir) / "clinical.csv"
    warm = None
    if clinical_path is not None and todo and backend_name(config.workers, config.scheduler) != "serial":
        # while the workers measure, this process has little to do: import the analysis stack now
        # (~2-3 s of scipy.stats / statsmodels / scikit-learn / matplotlib) instead of after the last case
        warm = threading.Thread(target=_import_analysis_modules, name="spinemri-warm-imports", daemon=True)
        warm.start()

    failures: list[CaseOutcome] = []
    timings: dict[str, dict[str, float]] = {}
    notes: dict[str, list[str]] = {}
    done = 0
    fn = functools.partial(process_case, config=config)
    for case, result in run_map(fn, todo, workers=config.workers, scheduler=config.scheduler):
        if isinstance(result, WorkerFailure):
            result = CaseOutcome(
                case.patient_id, False, "worker", result.error, result.message, str(case.image or case.folder)
            )
        if result.ok:
            _write_case(out, result, params_hash)
            done += 1
            timings[case.patient_id] = {k: round(v, 4) for k, v in result.timings_s.items()}
            if result.notes:
                notes[case.patient_id] = result.notes
        else:
            # a failed case leaves no stale "done" marker behind
            sp = _state_path(out, case.patient_id)
            if sp.exists():
                sp.unlink()
            failures.append(result)
            log.warning("case %s failed at %s: %s", case.patient_id, result.stage, result.message)
        if progress:
            progress(result, len(cases))

    failed_ids = {f.patient_id for f in failures}
    ok_ids = [pid for pid in ids if pid not in failed_ids]
    frames = _write_tables(out, ok_ids)
    _write_errors(out, failures)

    if warm is not None:
        warm.join()
    analysis_dir = None
    run_notes: list[str] = []
    if clinical_path is not None and ok_ids:
        analysis_dir, run_notes = _link_and_analyze(out, frames["patients"], clinical_path)

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
    )
    _write_provenance(out, cohort_dir, clinical_path, config, summary, timings, notes)
    return summary


def _write_provenance(
    out: Path,
    cohort_dir: Any,
    clinical: Path | None,
    config: RunConfig,
    summary: RunSummary,
    timings: dict[str, dict[str, float]],
    notes: dict[str, list[str]],
) -> None:
    from .report.provenance import path_sha256, provenance_record

    case_inputs = {}
    for pid in sorted(set(timings) | {p.parent.name for p in (out / "cases").glob("*/state.json")}):
        sp = _state_path(out, pid)
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
    if clinical is not None:
        record["inputs"]["clinical"] = {"path": clinical.name, "sha256": path_sha256(clinical)}
    write_text_atomic(out / "provenance.json", json.dumps(record, indent=2, sort_keys=True, default=str))
