"""The patient-id policy of every command: which id a case gets, and its file-name-safe form.

An id is chosen, first match wins (DESIGN §6):

1. the id given for the case: ``--patient-id`` of ``spinemri measure``, the
   cohort folder name or the manifest's ``patient_id`` of ``spinemri run``
   (:mod:`spinemri.io.discover`);
2. for a DICOM image, ``anon-`` + the keyed hash (HMAC-SHA-256) of its PatientID
   (``image.meta["patient_id_hash"]``, see
   :func:`spinemri.io.dicom.assemble.patient_id_hash`; the key from ``$SPINEMRI_ID_KEY``,
   ``$SPINEMRI_ID_KEY_FILE`` or ``~/.config/spinemri/id_key``, kept outside the outputs,
   :mod:`spinemri.io.idkey`); never the raw PatientID or PatientName;
3. the image file name without its volume extension, unless that name is generic
   (:data:`GENERIC_IMAGE_NAMES`: ``image``, ``t2``, ``stir``, ``series``, ...; case and
   ``-``/``_``/``.`` ignored): then the nearest enclosing folder whose name is not generic, as
   a cohort run names the case by its folder (``SMR-002/image.nii.gz`` is ``SMR-002`` for
   ``measure`` and ``run`` alike); a BIDS file name (``sub-01_ses-2_T2w.nii.gz``) gives its
   subject as BIDS discovery does (``sub-01``; the session is a time point); folders
   named as time points (``2024-03-01``, ``tp2``, ``ses-1``) are passed over like generic names
   (``SMR-002/2024-03-01/image.nii.gz`` is ``SMR-002``); a DICOM folder without
   PatientID its own name, or the nearest non-generic folder above it when the name is generic
   (``dicom``, ``DICOM``, ``series``);
4. ``"patient"``.

File names (``masks/<id>_lesions.nii.gz``, ``qc/<id>.png``, ``cases/<id>/``)
use :func:`safe_id` of the id; the tables keep the id itself.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "GENERIC_IMAGE_NAMES",
    "TIMEPOINT_NAME_RE",
    "MAX_SAFE_ID",
    "VOLUME_SUFFIXES",
    "choose_patient_id",
    "name_id",
    "safe_id",
    "text_id",
]

#: Extensions stripped from an image file name to make its id (longest first).
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
#: Image file / DICOM folder names (lower case, without ``-``, ``_``, ``.``) that name a sequence or a
#: container, not a patient: the enclosing folder names the patient instead.
GENERIC_IMAGE_NAMES = frozenset(
    {
        "image", "img", "images", "volume", "vol", "input", "data", "mri", "mr",
        "t1", "t1w", "t2", "t2w", "stir", "t2stir", "stirsag", "sagstir", "t2sag", "sagt2", "t2fs",
        "tirm", "series", "dicom", "dcm", "anat", "raw", "nifti",
    }
)  # fmt: skip
#: How many enclosing folders are looked at for a non-generic name.
_MAX_UP = 3
_BIDS_ID = re.compile(r"^(sub-[A-Za-z0-9]+)(?:_(ses-[A-Za-z0-9]+))?_")

#: Time point folder names: ``YYYY-MM-DD``, ``tpN``, ``ses-*`` (= spinemri.io.discover.TIMEPOINT_RE).
TIMEPOINT_NAME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}|tp\d+|ses-[A-Za-z0-9]+)$", re.IGNORECASE)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Longest id used as a file name unchanged (file names stay far below the 255-byte limit).
MAX_SAFE_ID = 64


def choose_patient_id(
    given: str | None, image_path: str | os.PathLike[str], image_meta: Mapping[str, Any]
) -> str:
    """The patient id of one case (the policy of this module's docstring).

    Parameters
    ----------
    given : str or None
        The id given for the case (``--patient-id``, folder name, manifest); used when not empty.
    image_path : path-like
        The image file or DICOM folder, for the file-name fallback.
    image_meta : mapping
        The loaded image's ``Volume.meta`` (``patient_id_hash`` for DICOM).

    Returns
    -------
    str
        The id written in the tables.
    """
    if given:
        return str(given)
    hashed = image_meta.get("patient_id_hash")
    if hashed:
        return f"anon-{hashed}"
    return name_id(image_path)


def _generic(name: str) -> bool:
    return re.sub(r"[-_.\s]+", "", name.lower()) in GENERIC_IMAGE_NAMES


def name_id(image_path: str | os.PathLike[str]) -> str:
    """The patient id a path's names give (rule 3 of the module's policy), without any header.

    Parameters
    ----------
    image_path : path-like
        An image file or a DICOM folder (not read).

    Returns
    -------
    str
        The file name without its volume extension (``case7.nii.gz`` -> ``case7``); for a generic
        name (``image``, ``t2``, ``dicom``, ...) the nearest of the next three enclosing folders
        whose name is not generic (``SMR-002/image.nii.gz`` -> ``SMR-002``), or the generic name
        itself when there is none; ``sub-X[_ses-Y]`` for a BIDS file name; ``"patient"`` for an
        empty name.
    """
    path = Path(str(image_path))
    name = path.name
    stem = name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            stem = name[: -len(suffix)]
            break
    if not stem:
        return "patient"
    bids = _BIDS_ID.match(stem)
    if bids:  # the subject: a session is a time point of it (issue 14), as BIDS discovery names it
        return bids.group(1)
    if not _generic(stem):
        return stem
    parent = path.absolute().parent
    for _ in range(_MAX_UP):
        if not parent.name:
            break
        # a time point folder (2024-03-01, tp2, ses-1) is not the patient: its patient folder is above
        if not _generic(parent.name) and not TIMEPOINT_NAME_RE.match(parent.name):
            return parent.name
        parent = parent.parent
    return stem


def safe_id(patient_id: str) -> str:
    """A file-name-safe form of a patient id, distinct for distinct ids.

    Parameters
    ----------
    patient_id : str
        Any id (a folder name, a manifest cell, ``--patient-id``).

    Returns
    -------
    str
        The id itself when it is already a safe file name: letters, digits, ``.``,
        ``_`` and ``-`` only, starting with a letter or digit, at most
        :data:`MAX_SAFE_ID` characters (``SMR-001`` stays ``SMR-001``). Any other id
        (``../x``, ``/abs``, spaces, non-ASCII, a 240-character folder name): its runs
        of other characters replaced by ``_``, leading/trailing ``.``/``_`` stripped,
        cut to fit, then ``-`` and the first 10 hex digits
        of the id's SHA-256, so two ids never share files (``a/b`` and ``a_b`` differ)
        and no path leaves the output folder; at most :data:`MAX_SAFE_ID` characters, and
        ``safe_id(safe_id(x)) == safe_id(x)``.
    """
    if _SAFE.fullmatch(patient_id) and len(patient_id) <= MAX_SAFE_ID:
        return patient_id
    # 11 characters are kept for "-" + digest, so the result is itself safe (safe_id is idempotent)
    clean = _UNSAFE.sub("_", patient_id).strip("._-")[: MAX_SAFE_ID - 11].rstrip("._-") or "patient"
    digest = hashlib.sha256(patient_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{clean}-{digest}"


def text_id(patient_id: str) -> str:
    """A patient id that is valid text: a folder name that is not UTF-8, decoded as Latin-1.

    Python gives a file name whose bytes are not UTF-8 (a folder made on a Latin-1 system,
    ``caf\xe9``) as a string with surrogate escapes, which no UTF-8 writer can write
    (errors.csv and every table failed). Such bytes are decoded as Latin-1 instead (every
    byte is a character there, so distinct names stay distinct: ``café``).

    Parameters
    ----------
    patient_id : str
        An id, possibly holding surrogate escapes (from ``os.fsdecode``).

    Returns
    -------
    str
        The id unchanged when it is valid text, else its bytes decoded as Latin-1.
    """
    try:
        patient_id.encode("utf-8")
        return patient_id
    except UnicodeEncodeError:
        return patient_id.encode("utf-8", "surrogateescape").decode("latin-1")
