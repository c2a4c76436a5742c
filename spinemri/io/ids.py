"""The patient-id policy of every command: which id a case gets, and its file-name-safe form.

An id is chosen, first match wins (DESIGN §6):

1. the id given for the case: ``--patient-id`` of ``spinemri measure``, the
   cohort folder name or the manifest's ``patient_id`` of ``spinemri run``
   (:mod:`spinemri.io.discover`);
2. for a DICOM image, ``anon-`` + the salted hash of its PatientID
   (``image.meta["patient_id_hash"]``, salt from ``$SPINEMRI_ID_SALT``, see
   :func:`spinemri.io.dicom.assemble.patient_id_hash`); never the raw PatientID
   or PatientName;
3. the image file name without its volume extension;
4. ``"patient"``.

File names (``masks/<id>_lesions.nii.gz``, ``qc/<id>.png``, ``cases/<id>/``)
use :func:`safe_id` of the id; the tables keep the id itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["VOLUME_SUFFIXES", "choose_patient_id", "safe_id"]

#: Extensions stripped from an image file name to make its id (longest first).
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
    name = Path(str(image_path)).name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "patient"
    return name or "patient"


def safe_id(patient_id: str) -> str:
    """A file-name-safe form of a patient id.

    Parameters
    ----------
    patient_id : str
        Any id.

    Returns
    -------
    str
        Runs of characters other than letters, digits, ``.``, ``_`` and ``-``
        replaced by ``_``, leading/trailing ``.``/``_`` stripped; ``"patient"``
        when nothing is left. Ids such as ``SMR-001`` are unchanged.
    """
    return _UNSAFE.sub("_", patient_id).strip("._") or "patient"
