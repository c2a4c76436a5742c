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
    "NOT_HASHED_FIELDS",
    "STATE_VERSION",
    "case_dir",
    "case_input_hash",
    "files_sha256",
    "is_done",
    "params_hash",
    "scheme_file_sha256",
    "state_path",
    "write_state",
]

#: Table name -> file name of a case's tables in ``OUT/cases/<id>/``.
CASE_TABLE_FILES: dict[str, str] = {
    "vertebrae": "vertebrae.csv",
    "patients": "patient.csv",
    "lesions": "lesions.csv",
    "guidance": "guidance.csv",  # empty when the run has --no-guidance
}
#: Bumped when the layout of the per-case results changes (invalidates every earlier state).
STATE_VERSION = 1


def files_sha256(path: Path) -> str:
    """SHA-256 over the contents of every file read when ``path`` is loaded.

    Parameters
    ----------
    path : Path
        An image or mask file or folder.

    Returns
    -------
    str
        Hex digest over each file of :func:`spinemri.io.inputs.input_files` (its name relative
        to ``path``'s folder, or to ``path`` for a folder, and its SHA-256), in order; a path that
        is neither a regular file nor a folder (missing, a named pipe) hashes as ``-`` and is
        never opened.
    """
    from ..io.inputs import input_files
    from ..report.provenance import file_sha256

    files = input_files(path)
    if not files:
        return "-"
    base = path if path.is_dir() else path.parent
    h = hashlib.sha256()
    for f in files:
        try:
            rel = f.relative_to(base).as_posix()
        except ValueError:
            rel = f.as_posix()
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        h.update(file_sha256(f).encode("ascii"))
    return h.hexdigest()


def case_input_hash(case: Case) -> str:
    """SHA-256 over the contents of every file of a case's image and mask.

    Each of image and mask contributes :func:`files_sha256`: the file and the files it
    names or implies (a detached header's data files, a SPINEPS subregion mask beside the
    instance mask), or every file of a folder (DICOM series, TotalSegmentator folder). A
    changed subregion mask or data file therefore makes a rerun measure the case again.

    Parameters
    ----------
    case : Case
        A discovered case (a missing image or mask hashes as ``-``).

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    for role, p in (("image", case.image), ("mask", case.mask)):
        h.update(f"{role}:{files_sha256(p) if p is not None else '-'};".encode("ascii"))
    if case.timepoint is not None:  # a time point's tables carry its timepoint and scan_date columns
        h.update(
            f"timepoint:{case.timepoint};scan_date:{case.scan_date or ''};".encode("utf-8", "surrogateescape")
        )
    return h.hexdigest()


#: RunConfig fields that do not change a case's results (how and whether cases run), so are
#: not in :func:`params_hash`; every other field is (a test checks the two cover RunConfig).
NOT_HASHED_FIELDS = frozenset({"workers", "scheduler", "force"})


def scheme_file_sha256(scheme: str) -> str | None:
    """SHA-256 of a label scheme given as a file (None for ``auto`` or a built-in name).

    Parameters
    ----------
    scheme : str
        :attr:`spinemri.params.RunConfig.scheme`.

    Returns
    -------
    str or None
        The file's SHA-256 when ``scheme`` names an existing file; ``"missing"`` for a
        scheme file name (``.json``/``.yaml``/``.yml``) that does not exist (every case then
        fails); None otherwise.
    """
    from ..levels import BUILTIN_SCHEMES
    from ..report.provenance import file_sha256

    if scheme == "auto" or scheme in BUILTIN_SCHEMES:
        return None
    p = Path(scheme)
    if p.is_file():
        return file_sha256(p)
    if p.suffix.lower() in (".json", ".yaml", ".yml") or p.exists():
        return "missing"
    return None


def params_hash(config: RunConfig) -> str:
    """SHA-256 of everything in a run's options (and the version) that changes a case's results.

    Parameters
    ----------
    config : RunConfig
        The run's options: every field but :data:`NOT_HASHED_FIELDS`; for a ``scheme`` that
        is a file, its content (:func:`scheme_file_sha256`), so that editing the file makes a
        rerun measure every case again.

    Returns
    -------
    str
        Hex digest.
    """
    from .._version import __version__

    payload: dict[str, object] = {
        "version": __version__,
        "measure": config.measure_options(),
        "series": config.series,
        "resample_mask": config.resample_mask,
        "state": STATE_VERSION,
    }
    if config.dicom_seg:  # only when on, so that hashes of runs without DICOM-SEG stay valid
        payload["dicom_seg"] = {"vertebrae": config.dicom_seg_vertebrae}
    if config.guidance:  # the guidance table is one of the case's results (issue 15)
        payload["guidance"] = {"canal_screening": True} if config.canal_screening else True
    scheme_sha = scheme_file_sha256(config.scheme)
    if scheme_sha is not None:  # only for a scheme file, so that hashes of other runs stay valid
        payload["scheme_sha256"] = scheme_sha
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
    sp = state_path(out_dir, case.key)
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
