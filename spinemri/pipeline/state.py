"""Resume state of a cohort run: input and parameter hashes, ``OUT/cases/<id>/state.json``.

``state.json`` is written last for a case, so a case counts as done only when
all its files are complete; a rerun skips cases whose ``state.json`` records
the same input hash and parameters.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..io.atomic import write_text_atomic
from ..io.discover import Case
from ..io.ids import safe_id
from ..params import RunConfig

__all__ = [
    "CASE_TABLE_FILES",
    "STATE_VERSION",
    "case_dir",
    "case_input_hash",
    "is_done",
    "params_hash",
    "state_path",
    "write_state",
]

#: Table name -> file name of a case's tables in ``OUT/cases/<id>/``.
CASE_TABLE_FILES: dict[str, str] = {
    "vertebrae": "vertebrae.csv",
    "patients": "patient.csv",
    "lesions": "lesions.csv",
}
#: Bumped when the layout of the per-case results changes (invalidates every earlier state).
STATE_VERSION = 1


def case_input_hash(case: Case) -> str:
    """SHA-256 over the hashes of a case's image and mask.

    Parameters
    ----------
    case : Case
        A discovered case (a missing image or mask hashes as ``-``).

    Returns
    -------
    str
        Hex digest.
    """
    from ..report.provenance import path_sha256

    h = hashlib.sha256()
    for p in (case.image, case.mask):
        h.update((path_sha256(p) if p is not None and p.exists() else "-").encode("ascii"))
    return h.hexdigest()


def params_hash(config: RunConfig) -> str:
    """SHA-256 of everything in a run's options (and the version) that changes a case's results.

    Parameters
    ----------
    config : RunConfig
        The run's options.

    Returns
    -------
    str
        Hex digest.
    """
    from .._version import __version__

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


def case_dir(out_dir: Path, patient_id: str) -> Path:
    """The folder of one case's results.

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    patient_id : str
        The case's id (made file-name safe by :func:`spinemri.io.ids.safe_id`).

    Returns
    -------
    Path
        ``out_dir/cases/<safe id>``.
    """
    return out_dir / "cases" / safe_id(patient_id)


def state_path(out_dir: Path, patient_id: str) -> Path:
    """The ``state.json`` of one case.

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    patient_id : str
        The case's id.

    Returns
    -------
    Path
        ``case_dir(out_dir, patient_id) / "state.json"``.
    """
    return case_dir(out_dir, patient_id) / "state.json"


def is_done(out_dir: Path, case: Case, run_params_hash: str) -> bool:
    """True when an earlier run finished this case with the same inputs and parameters.

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    case : Case
        The case.
    run_params_hash : str
        :func:`params_hash` of this run.

    Returns
    -------
    bool
        False for a case with a discovery problem, a missing or unreadable
        ``state.json``, a missing table file, or other hashes.
    """
    sp = state_path(out_dir, case.patient_id)
    if case.problem or not sp.is_file():
        return False
    try:
        state: dict[str, object] = json.loads(sp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if state.get("params_hash") != run_params_hash or state.get("status") != "ok":
        return False
    folder = sp.parent
    if not all((folder / f).is_file() for f in CASE_TABLE_FILES.values()):
        return False
    return state.get("input_hash") == case_input_hash(case)


def write_state(
    out_dir: Path,
    patient_id: str,
    *,
    input_hash: str,
    run_params_hash: str,
    timings_s: dict[str, float],
    notes: list[str],
) -> Path:
    """Mark one case done: write its ``state.json`` (last, after all its files).

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    patient_id : str
        The case's id.
    input_hash : str
        :func:`case_input_hash` of the case.
    run_params_hash : str
        :func:`params_hash` of the run.
    timings_s : dict of str to float
        Stage timings (rounded to 0.1 ms).
    notes : list of str
        Warnings and notes of the case.

    Returns
    -------
    Path
        The state file.
    """
    state = {
        "status": "ok",
        "input_hash": input_hash,
        "params_hash": run_params_hash,
        "timings_s": {k: round(v, 4) for k, v in timings_s.items()},
        "notes": notes,
    }
    return write_text_atomic(state_path(out_dir, patient_id), json.dumps(state, indent=2, sort_keys=True))
