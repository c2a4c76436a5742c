"""Identifier scrubbing of every error text spinemri records or prints.

Error messages of other libraries quote header values (highdicom quotes a birth date it finds
odd; a series listing once quoted SeriesDescription, which sites fill with names). Every text
that reaches ``errors.csv``, ``state.json``/``provenance.json`` notes, log lines or a command's
printed error goes through :func:`scrub_text` first (``spinemri run``:
:func:`spinemri.pipeline.cohort.process_case`; ``measure`` and ``info``:
:func:`spinemri.cli.main` and the commands). It removes

* the case's known identifying DICOM values (:data:`IDENTIFYING_KEYWORDS`, read from the
  headers of the case's DICOM input by :func:`dicom_identifiers`), and each component of a
  person name (``Doe^Jane`` -> ``Doe``, ``Jane``), case-insensitively, as whole values (not
  inside a longer word: a StudyDescription ``SPINE`` does not touch ``spinemri``);
* generic patterns: a DICOM date (``YYYYMMDD`` or ``YYYY-MM-DD``) within 40 characters after
  "birth", "born" or "DOB", and any ``Family^Given`` person name.

What is removed becomes :data:`REDACTED`. Values equal to ``keep`` (the case's own folder or
manifest id, which the tables carry anyway) are not removed, so paths stay readable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["IDENTIFYING_KEYWORDS", "REDACTED", "scrub_text", "identifiers_of", "dicom_identifiers"]

#: DICOM keywords whose values identify a patient, a study or a place.
IDENTIFYING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthName",
    "PatientMotherBirthName",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "SeriesDescription",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "StationName",
)
#: What replaces a removed value.
REDACTED = "[redacted]"
#: Values shorter than this are not removed (they would hit digits of numbers and words).
MIN_VALUE_CHARS = 3
#: At most this many files are read by :func:`dicom_identifiers`.
MAX_FILES = 2000

_BIRTH_DATE = re.compile(r"(?i)((?:birth|born|\bdob\b)[^\n]{0,40}?)(?<!\d)(\d{4}-?\d{2}-?\d{2})(?!\d)")
_PERSON_NAME = re.compile(r"(?<![\w^])[^\W\d_][\w'.-]*\^[\w'.^-]*")


def identifiers_of(ds: Any) -> set[str]:
    """The identifying values of one DICOM header.

    Parameters
    ----------
    ds : pydicom Dataset or mapping-like
        A header (``ds.get(keyword)``).

    Returns
    -------
    set of str
        The text of each :data:`IDENTIFYING_KEYWORDS` value present (multi-valued elements one
        by one) and each ``^``/space-separated component of person names.
    """
    found: set[str] = set()
    for keyword in IDENTIFYING_KEYWORDS:
        try:
            value = ds.get(keyword)
        except Exception:  # noqa: BLE001 - a corrupt element must not stop the scrubbing
            continue
        if value is None or value == "":
            continue
        multi = isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
        values = list(value) if multi else [value]
        for v in values:
            text = str(v).strip()
            if not text:
                continue
            found.add(text)
            if "^" in text or keyword.endswith(("Name", "Names", "Physician")):
                found.update(p for p in re.split(r"[\^ =]+", text) if p)
    return found


def dicom_identifiers(paths: Iterable[str | os.PathLike[str] | None]) -> set[str]:
    """The identifying values in the DICOM headers of a case's inputs (never raises).

    Parameters
    ----------
    paths : iterable of path-like or None
        The case's image and mask (folders are searched recursively; volume files and
        missing paths are skipped). Only regular files are opened, headers only.

    Returns
    -------
    set of str
        :func:`identifiers_of` of every header read (at most :data:`MAX_FILES` files).
    """
    from .dicom.header import read_header
    from .ids import VOLUME_SUFFIXES

    found: set[str] = set()
    seen: set[tuple[Any, ...]] = set()
    n = 0
    for item in paths:
        if item is None:
            continue
        p = Path(item)
        try:
            if p.is_dir():
                files = sorted(f for f in p.rglob("*") if f.is_file())
            else:
                files = [p] if p.is_file() else []
        except OSError:
            continue
        for f in files:
            if n >= MAX_FILES:
                return found
            if f.name.lower().endswith(VOLUME_SUFFIXES[:-1]):
                continue
            n += 1
            try:
                ds = read_header(f, stop_before_pixels=True, quiet=True)
            except Exception:  # noqa: BLE001 - best effort: an unreadable file has nothing to scrub
                continue
            if ds is None:
                continue
            key = tuple(str(ds.get(k, "")) for k in IDENTIFYING_KEYWORDS)
            if key in seen:
                continue
            seen.add(key)
            found |= identifiers_of(ds)
    return found


def scrub_text(text: str, identifiers: Iterable[str] = (), *, keep: Iterable[str] = ()) -> str:
    """``text`` with identifying values and patterns replaced by :data:`REDACTED`.

    Parameters
    ----------
    text : str
        An error message, a path, a note or a log line.
    identifiers : iterable of str, default ()
        Known identifying values of the case (:func:`dicom_identifiers`); values shorter than
        :data:`MIN_VALUE_CHARS` are ignored. Matched case-insensitively, longest first, as whole
        values (not inside a longer word or number).
    keep : iterable of str, default ()
        Values never removed (the case's folder or manifest id).

    Returns
    -------
    str
        The scrubbed text; also the generic patterns (a date after "birth"/"born"/"DOB",
        ``Family^Given`` names) are replaced.
    """
    if not text:
        return text
    kept = {k.strip().lower() for k in keep if k}
    wanted = {v.strip() for v in identifiers}
    values = sorted(
        (v for v in wanted if len(v) >= MIN_VALUE_CHARS and v.lower() not in kept), key=len, reverse=True
    )
    if values:
        # whole values only: "SPINE" (a StudyDescription) is removed, "spinemri" stays
        pattern = "(?<![A-Za-z0-9])(?:" + "|".join(re.escape(v) for v in values) + ")(?![A-Za-z0-9])"
        text = re.sub(pattern, REDACTED, text, flags=re.IGNORECASE)
    text = _BIRTH_DATE.sub(lambda m: m.group(1) + REDACTED, text)
    return _PERSON_NAME.sub(REDACTED, text)
