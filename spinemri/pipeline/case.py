"""The single-case runner: load one image and its mask, measure, encode and write the case's outputs.

Both commands go through it:

* ``spinemri measure`` (:mod:`spinemri.commands.measure` parses the arguments)
  calls :func:`run_case` then :func:`write_measurement`, which writes
  ``OUT/vertebrae.csv patients.csv lesions.csv`` (+ ``.parquet``),
  ``OUT/masks/<id>_lesions.nii.gz`` (+ ``.seg.dcm``), ``OUT/qc/<id>.png`` (the QC
  sheet), ``OUT/viewer/<id>.html`` (the case viewer) and
  ``OUT/provenance.json``;
* ``spinemri run`` calls :func:`run_case` in its workers
  (:func:`spinemri.pipeline.cohort.process_case`) and :func:`write_case_files`
  in the parent process, into ``OUT/cases/<id>/`` (tables), ``OUT/masks/`` and
  ``OUT/qc/``.

:func:`run_case` fills a :class:`CaseOutcome`: everything a worker hands back
(tables as CSV text, the lesion mask as ``.nii.gz`` bytes, the QC PNG, the
DICOM-SEG), small and picklable, plus the stage reached and its timings. The
patient id comes from :func:`spinemri.io.ids.choose_patient_id`; file names use
:func:`spinemri.io.ids.safe_id`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LabelSchemeError
from ..io.atomic import write_bytes_atomic, write_text_atomic, writing
from ..io.ids import choose_patient_id, safe_id

if TYPE_CHECKING:
    from ..measurement import Measurement
    from ..volume import Volume

__all__ = [
    "MEASURE_TABLE_FILES",
    "CaseOptions",
    "CaseOutcome",
    "MeasuredCase",
    "OptionalFailure",
    "run_case",
    "write_case_files",
    "write_measurement",
]

log = logging.getLogger(__name__)

#: Table name -> file name of the tables ``spinemri measure`` writes into OUT.
MEASURE_TABLE_FILES: dict[str, str] = {
    "vertebrae": "vertebrae.csv",
    "patients": "patients.csv",
    "lesions": "lesions.csv",
}


@dataclass(frozen=True)
class CaseOptions:
    """How one case is loaded, measured and encoded.

    Parameters
    ----------
    measure : tuple of (str, value) pairs, default ()
        Keyword arguments of :func:`spinemri.measure` (``scheme``, ``method``,
        ``k``, ``polarity``, ``check_plausibility``, ...), everything that changes the results.
    series : str or None, default None
        DICOM series choice (see :func:`spinemri.io.load.load_volume`).
    resample_mask : bool, default False
        Resample a mask on another grid (nearest neighbour) instead of failing.
    dicom_seg : bool, default False
        Also encode a DICOM-SEG of the lesion mask, for a DICOM image only.
    dicom_seg_vertebrae : bool, default False
        Add one segment per vertebral level to the DICOM-SEG.
    guidance : bool, default False
        Also encode the per-vertebra therapy-guidance table (``tables["guidance"]``: body
        heights, SINS components; :func:`spinemri.guidance.case.guidance_case`); for SPINEPS and
        TotalSpineSeg masks with their posterior elements, canal and cord.
    canal_screening : bool, default False
        Add the experimental canal / cord screening to it (needs canal and cord in the mask).
    """

    measure: tuple[tuple[str, Any], ...] = ()
    series: str | None = None
    resample_mask: bool = False
    dicom_seg: bool = False
    dicom_seg_vertebrae: bool = False
    guidance: bool = False
    canal_screening: bool = False


@dataclass(frozen=True)
class OptionalFailure:
    """An optional output (the QC picture, the DICOM-SEG) that could not be made; the case is kept.

    Parameters
    ----------
    stage : str
        ``"qc"`` or ``"dicom_seg"``.
    error : str
        The exception's class name.
    message : str
        What went wrong (one line).
    path : str
        The input at fault (the image for both).
    """

    stage: str
    error: str
    message: str
    path: str

    def note(self) -> str:
        """One line for provenance and the terminal.

        Returns
        -------
        str
            ``"dicom_seg not written (ValueError: ...); the tables and lesion mask were written"``.
        """
        what = {"qc": "QC picture", "dicom_seg": "DICOM-SEG"}.get(self.stage, self.stage)
        return f"{what} not written ({self.error}: {self.message}); the tables and lesion mask were written"


@dataclass
class CaseOutcome:
    """What a worker returns for one case: tables and pictures, or the failure.

    ``optional_failures`` lists optional outputs (QC picture, DICOM-SEG) that failed in a case
    that is otherwise ``ok``: the case is written, the failures are reported (issue 16).
    """

    patient_id: str
    ok: bool
    stage: str = ""
    error: str = ""
    message: str = ""
    path: str = ""
    tables: dict[str, str] = field(default_factory=dict)  # table name -> CSV text
    lesion_nii_gz: bytes = b""  # the lesion mask as .nii.gz bytes (compressed in the worker)
    qc_png: bytes = b""
    viewer_html: bytes = b""  # the self-contained case viewer page (UTF-8)
    dicom_seg: bytes = b""  # DICOM-SEG file bytes (dicom_seg option, DICOM sources only)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_hash: str = ""
    optional_failures: list[OptionalFailure] = field(default_factory=list)
    timepoint: str | None = None  # set for a time point of a longitudinal cohort (issue 14)
    scan_date: str | None = None

    @property
    def key(self) -> str:
        """The case's unique id in a run (:attr:`spinemri.io.discover.Case.key`).

        Returns
        -------
        str
            ``patient_id``, or ``<patient_id>_<timepoint>`` for a time point.
        """
        return f"{self.patient_id}_{self.timepoint}" if self.timepoint else self.patient_id


@dataclass
class MeasuredCase:
    """The in-memory result of :func:`run_case`: volumes, measurement and the warnings caught."""

    image: Volume
    mask: Volume
    measurement: Measurement
    warnings: list[warnings.WarningMessage]


def run_case(
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    options: CaseOptions,
    outcome: CaseOutcome,
    *,
    patient_id: str | None = None,
    encode: bool = True,
    check_image: Callable[[Volume], None] | None = None,
    timepoint: str | None = None,
    scan_date: str | None = None,
) -> MeasuredCase:
    """Load, measure and (with ``encode``) render and encode one case.

    Parameters
    ----------
    image_path, mask_path : path-like
        The image (DICOM folder or file, NIfTI, NRRD, MHA) and its vertebral mask.
    options : CaseOptions
        Loading, measurement and DICOM-SEG options.
    outcome : CaseOutcome
        Filled as the case goes: ``stage`` (the stage running, so a caller that
        catches an exception knows where it failed; ``""`` again on success),
        ``patient_id``, ``timings_s`` and, with ``encode``, ``tables`` (CSV text of
        :func:`spinemri.io.tables.table_to_csv_bytes`), ``qc_png``,
        ``dicom_seg`` and ``lesion_nii_gz``. ``ok`` and ``notes`` are the caller's.
    patient_id : str, optional
        The id given for the case; the id is chosen by
        :func:`spinemri.io.ids.choose_patient_id`.
    encode : bool, default True
        Also render the QC picture, the DICOM-SEG and the encoded tables and mask.
    check_image : callable, optional
        Called with the loaded image before the mask is loaded (a command's
        own checks); may raise.
    timepoint, scan_date : str, optional
        For a time point of a longitudinal cohort: the tables gain ``timepoint`` and
        ``scan_date`` columns after ``patient_id`` (``scan_date`` falls back to the DICOM
        StudyDate, ``meta["study_date"]``). None (the default) adds no column.

    Returns
    -------
    MeasuredCase
        The image (its ``meta["patient_id"]`` set), the mask, the measurement and
        every warning caught while loading, measuring and rendering. A mask
        reoriented from another voxel order (``meta["reorient_note"]``, see
        :func:`spinemri.io.load.reorient_mask`) adds that note to the
        measurement's ``notes``, which both commands write into provenance.

    Raises
    ------
    SpinemriError
        A bad input; ``outcome.stage`` names the stage that failed.
    """
    from ..io.load import load_mask, load_volume
    from ..measurement import measure

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome.stage = "load_image"
        t = time.perf_counter()
        image = load_volume(image_path, series=options.series)
        pid = choose_patient_id(patient_id, image_path, image.meta)
        outcome.patient_id = pid
        image = image.with_meta(patient_id=pid)
        outcome.timings_s["load_image"] = time.perf_counter() - t
        if check_image is not None:
            check_image(image)
        outcome.stage = "load_mask"
        t = time.perf_counter()
        mask = load_mask(mask_path, like=image, resample=options.resample_mask)
        outcome.timings_s["load_mask"] = time.perf_counter() - t
        outcome.stage = "measure"
        t = time.perf_counter()
        try:
            m = measure(image, mask, patient_id=pid, **dict(options.measure))
        except LabelSchemeError as exc:  # the mask's labels are at fault: name the mask
            if str(mask_path) in str(exc):
                raise
            raise LabelSchemeError(f"{mask_path}: {exc}") from exc
        outcome.timings_s["measure"] = time.perf_counter() - t
        if mask.meta.get("reorient_note"):  # exact, so no warning: a note, for provenance
            m = dataclasses.replace(m, notes=(*m.notes, str(mask.meta["reorient_note"])))
        if image.meta.get("inverted_monochrome1"):  # handled exactly, so a note, not a warning
            m = dataclasses.replace(
                m, notes=(*m.notes, "image is MONOCHROME1: stored values inverted to MONOCHROME2 at load")
            )
        if timepoint is not None:  # a longitudinal cohort: each vertebra's frame, each lesion's place in it
            from ..surveillance.measured import frame_tables

            vertebrae, lesions = frame_tables(m, mask)
            m = dataclasses.replace(m, vertebrae=vertebrae, lesions=lesions)
            outcome.timepoint = timepoint
            outcome.scan_date = scan_date or image.meta.get("study_date") or None
            m = with_timepoint(m, timepoint, outcome.scan_date)
        if encode:
            _render(image_path, image, mask, m, options, outcome)
    if encode:
        from ..io.nifti import nifti_gz_bytes
        from ..io.tables import table_to_csv_bytes

        outcome.tables = {
            "vertebrae": table_to_csv_bytes(m.vertebrae).decode("utf-8"),
            "patients": table_to_csv_bytes(m.patient).decode("utf-8"),
            "lesions": table_to_csv_bytes(m.lesions).decode("utf-8"),
            "guidance": "",
        }
        if options.guidance:
            outcome.stage = "guidance"
            t = time.perf_counter()
            with _optional(outcome, image_path):
                outcome.tables["guidance"] = _guidance_csv(
                    m, mask, image, timepoint, outcome.scan_date, mask_path, options
                )
            outcome.timings_s["guidance"] = time.perf_counter() - t
        outcome.stage = "write"
        t = time.perf_counter()
        outcome.lesion_nii_gz = nifti_gz_bytes(m.lesion_mask)  # lesion ids already in the smallest dtype
        outcome.timings_s["encode_mask"] = time.perf_counter() - t
    outcome.stage = ""
    return MeasuredCase(image, mask, m, list(caught))


def _guidance_csv(
    m: Measurement,
    mask: Volume,
    image: Volume,
    timepoint: str | None,
    scan_date: str | None,
    mask_path: str | os.PathLike[str],
    options: CaseOptions,
) -> str:
    """The case's guidance table (heights, SINS components) as CSV text, time point columns first."""
    from ..guidance.case import guidance_case
    from ..io.tables import table_to_csv_bytes

    structures = _spine_structures(mask, image, mask_path, options)
    g = guidance_case(m, mask, image, structures=structures, canal=options.canal_screening)
    if timepoint is not None:
        g.insert(1, "timepoint", timepoint)
        g.insert(2, "scan_date", scan_date or "")
    return table_to_csv_bytes(g).decode("utf-8")


def _spine_structures(
    mask: Volume, image: Volume, mask_path: str | os.PathLike[str], options: CaseOptions
) -> dict[str, Volume] | None:
    """What else a SPINEPS pair or a TotalSpineSeg map holds (posterior elements, canal, cord, whole
    vertebrae), put on the image grid as the vertebra mask was (exact reorientation, or resampling
    when the run allows it); None for other masks."""
    from ..io.load import load_mask
    from ..io.mask_formats import read_spine_masks

    if mask.meta.get("mask_format") not in ("spineps", "totalspineseg"):
        return None
    spine = read_spine_masks(mask_path)
    parts = dict(spine.structures)
    if spine.whole is not None:
        parts["whole"] = spine.whole
    return {k: load_mask(v, like=image, resample=options.resample_mask) for k, v in parts.items()}


def with_timepoint(m: Measurement, timepoint: str, scan_date: str | None) -> Measurement:
    """The measurement with ``timepoint`` and ``scan_date`` columns after ``patient_id`` in its tables.

    Parameters
    ----------
    m : Measurement
        One case's measurement.
    timepoint : str
        The time point's name (``""`` for a patient without time points in a cohort that has them).
    scan_date : str or None
        ISO date of the scan (empty when unknown).

    Returns
    -------
    Measurement
        A copy whose vertebrae, patient and lesions tables carry the two columns.
    """

    def add(df: Any) -> Any:
        df = df.copy()
        at = list(df.columns).index("patient_id") + 1 if "patient_id" in df.columns else 0
        df.insert(at, "timepoint", timepoint)
        df.insert(at + 1, "scan_date", scan_date or "")
        return df

    return dataclasses.replace(m, vertebrae=add(m.vertebrae), patient=add(m.patient), lesions=add(m.lesions))


def _render(
    image_path: str | os.PathLike[str],
    image: Volume,
    mask: Volume,
    m: Measurement,
    options: CaseOptions,
    outcome: CaseOutcome,
) -> None:
    """The QC picture, the case viewer and (for a DICOM image, when asked for) the DICOM-SEG into ``outcome``.

    Each is optional: its failure is recorded, never sinks the case.
    """
    from ..report.qc import measurement_qc_png

    outcome.stage = "qc"
    t = time.perf_counter()
    with _optional(outcome, image_path):
        outcome.qc_png = measurement_qc_png(image, mask, m)
    outcome.timings_s["qc"] = time.perf_counter() - t
    from ..report.viewer import measurement_viewer_bytes

    outcome.stage = "viewer"
    t = time.perf_counter()
    with _optional(outcome, image_path):
        outcome.viewer_html = measurement_viewer_bytes(image, mask, m)  # UTF-8, never a str whole
    outcome.timings_s["viewer"] = time.perf_counter() - t
    # --- DICOM-SEG (docs/dicom-seg.md): only for DICOM sources, only when asked for
    if options.dicom_seg and image.meta.get("format") == "dicom":
        from ..io.dicom.seg import dicom_seg_bytes

        outcome.stage = "dicom_seg"
        t = time.perf_counter()
        with _optional(outcome, image_path):
            outcome.dicom_seg = dicom_seg_bytes(
                image_path,
                m.lesion_mask,
                image=image,
                series=options.series,
                levels=m.scheme,
                vertebrae=mask if options.dicom_seg_vertebrae else None,
                algorithm_parameters=m.parameters()["segment"],
            )
        outcome.timings_s["dicom_seg"] = time.perf_counter() - t


class _optional:  # noqa: N801 - used as a context manager, like contextlib's lower-case helpers
    """An optional output's failure is recorded in ``outcome.optional_failures``; it never sinks the case.

    A header quirk highdicom rejects (or a bug in the QC renderer) used to lose the case's tables
    and lesion mask. MemoryError and KeyboardInterrupt are not caught.
    """

    def __init__(self, outcome: CaseOutcome, image_path: str | os.PathLike[str]) -> None:
        self.outcome = outcome
        self.path = str(image_path)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        stage = self.outcome.stage
        text = " ".join(str(exc).split()) or type(exc).__name__
        # the callers report it (errors.csv / the terminal, and provenance); the traceback for -vv
        log.debug("%s: the optional %s output failed", self.path, stage, exc_info=(type(exc), exc, tb))
        self.outcome.optional_failures.append(OptionalFailure(stage, type(exc).__name__, text, self.path))
        return True


def write_case_files(
    out_dir: Path, outcome: CaseOutcome, *, tables_dir: Path, table_files: Mapping[str, str]
) -> dict[str, Path]:
    """Write the encoded outputs of one case atomically.

    Parameters
    ----------
    out_dir : Path
        Output folder: ``masks/<id>_lesions.nii.gz``, ``masks/<id>_lesions.seg.dcm``
        ``qc/<id>.png`` and ``viewer/<id>.html`` go below it (``<id>`` = :func:`spinemri.io.ids.safe_id`).
        A DICOM-SEG of an earlier run is removed when this case has none.
    outcome : CaseOutcome
        Filled by :func:`run_case` with ``encode=True``.
    tables_dir : Path
        Folder of the case's tables.
    table_files : mapping of str to str
        Table name (``vertebrae``, ``patients``, ``lesions``) -> file name in ``tables_dir``.

    Returns
    -------
    dict of str to Path
        Every file written, by table name and ``lesion_mask``, ``qc``, ``viewer``, ``dicom_seg``.

    Raises
    ------
    OutputError
        A file could not be written (``"no space left on device while writing PATH ..."``).
    """
    sid = safe_id(outcome.key)
    written: dict[str, Path] = {}
    for name, fname in table_files.items():
        with writing(tables_dir / fname):
            written[name] = write_text_atomic(tables_dir / fname, outcome.tables[name])
    if outcome.lesion_nii_gz:
        mask_path = out_dir / "masks" / f"{sid}_lesions.nii.gz"
        with writing(mask_path):
            written["lesion_mask"] = write_bytes_atomic(mask_path, outcome.lesion_nii_gz)
    qc_path = out_dir / "qc" / f"{sid}.png"
    if outcome.qc_png:
        with writing(qc_path):
            written["qc"] = write_bytes_atomic(qc_path, outcome.qc_png)
    elif qc_path.exists():  # its rendering failed (outcome.optional_failures): no stale picture beside it
        qc_path.unlink()
    viewer_path = out_dir / "viewer" / f"{sid}.html"
    if outcome.viewer_html:
        with writing(viewer_path):
            written["viewer"] = write_bytes_atomic(viewer_path, outcome.viewer_html)
    elif viewer_path.exists():  # its rendering failed: no stale page beside it
        viewer_path.unlink()
    seg_path = out_dir / "masks" / f"{sid}_lesions.seg.dcm"
    if outcome.dicom_seg:
        with writing(seg_path):
            written["dicom_seg"] = write_bytes_atomic(seg_path, outcome.dicom_seg)
    elif seg_path.exists():  # a DICOM-SEG of an earlier run no longer matches this case's lesion mask
        seg_path.unlink()
    return written


def write_measurement(
    out_dir: Path,
    case: MeasuredCase,
    outcome: CaseOutcome,
    *,
    inputs: dict[str, str | os.PathLike[str]],
    notes: list[str],
) -> dict[str, Path]:
    """Write the outputs of ``spinemri measure`` for one case into ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Output folder (created): the tables of :data:`MEASURE_TABLE_FILES`
        (+ ``.parquet`` when pyarrow is installed), the files of
        :func:`write_case_files` and ``provenance.json``.
    case : MeasuredCase
        From :func:`run_case`.
    outcome : CaseOutcome
        Filled by the same :func:`run_case` call (``encode=True``).
    inputs : dict
        Input name -> path, hashed into the provenance.
    notes : list of str
        Warnings to record besides the measurement's own notes (the notes of
        ``outcome.optional_failures`` are recorded too).

    Returns
    -------
    dict of str to Path
        Every file written (see :func:`write_case_files`) and ``provenance``.

    Raises
    ------
    OutputError
        A file could not be written (full disk, quota, permission), naming it.
    """
    from ..io.tables import has_parquet, write_table
    from ..report.provenance import provenance_record

    t0 = time.perf_counter()
    m = case.measurement
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    written = write_case_files(out_dir, outcome, tables_dir=out_dir, table_files=MEASURE_TABLE_FILES)
    if has_parquet():
        frames = {"vertebrae": m.vertebrae, "patients": m.patient, "lesions": m.lesions}
        for name, df in frames.items():
            with writing(out_dir / f"{name}.parquet"):
                written[f"{name}.parquet"] = write_table(df, out_dir / f"{name}.parquet")
    load_s = outcome.timings_s.get("load_image", 0.0) + outcome.timings_s.get("load_mask", 0.0)
    timings = {
        "load": load_s,
        **{f"measure_{k}": v for k, v in m.timings_s.items()},
        "write": time.perf_counter() - t0,
    }
    failed = [f.note() for f in outcome.optional_failures]
    record = provenance_record(
        parameters=m.parameters(), inputs=inputs, timings_s=timings, notes=[*notes, *m.notes, *failed]
    )
    with writing(out_dir / "provenance.json"):
        written["provenance"] = write_text_atomic(
            out_dir / "provenance.json", json.dumps(record, indent=2, sort_keys=True) + "\n"
        )
    return written
