"""How a clinical table's columns are read for linking: identifier columns and decimal commas.

Pure (column names and cell values in, decisions out), used by :func:`spinemri.linking.link`
and documented in docs/statistics.md ("Decimal commas", "Identifier columns"):

* :func:`identifier_columns`: the column names that mark direct identifiers (patient name,
  birth date, MRN, address, phone, e-mail, DICOM keywords such as ``PatientName``), left out
  of the linked table unless kept (DESIGN §6);
* :func:`vas_decimal_comma`: whether the VAS cells written as text use a decimal comma
  (``5,5``), decided from the column when unambiguous, refused otherwise;
* :func:`parse_visit_dates`: the dates of the date column, European ``DD.MM.YYYY`` read day
  first and ``a/b/YYYY`` read one way for the whole column.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pandas as pd

from .errors import LinkError

__all__ = [
    "IDENTIFIER_KEYWORDS",
    "IDENTIFIER_STEMS",
    "IDENTIFIER_TOKENS",
    "identifier_columns",
    "is_decimal_comma_number",
    "parse_visit_dates",
    "vas_decimal_comma",
]

#: A VAS written as text with a decimal comma (or a whole number): ``5,5``, ``,5``, ``7``.
_COMMA_NUMBER = re.compile(r"[+-]?(?:\d+(?:,\d+)?|,\d+)", re.ASCII)
#: A whole number, read alike with either decimal mark.
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)

#: Column-name tokens that mark a direct identifier (a whole token of the normalised name, see
#: :func:`identifier_columns`): names, initials, birth date, record numbers, contact details, places.
IDENTIFIER_TOKENS = frozenset(
    {
        "name", "names", "surname", "forename", "firstname", "lastname", "fullname", "maidenname",
        "initials", "nom", "prenom", "vorname", "nachname", "nombre", "apellido", "apellidos",
        "cognome", "dob", "born", "geboren", "mrn", "ssn", "nhs", "email", "mail", "phone", "tel",
        "telephone", "mobile", "fax", "address", "street", "strasse", "city", "zip", "zipcode",
        "postcode", "postal", "plz",
    }
)  # fmt: skip
#: Column-name stems that mark a direct identifier anywhere in the normalised name without
#: separators (``dateofbirth``, ``patientbirthdate``, ``phonenumber``, ``medicalrecordnumber``).
IDENTIFIER_STEMS = (
    "birth", "geburt", "surname", "firstname", "lastname", "fullname", "givenname", "familyname",
    "naam", "phone", "telefon", "email", "address", "adress", "medicalrecord", "recordnumber",
    "hospitalnumber", "socialsecurity", "insurancenumber", "passport", "nhsnumber", "postcode",
    "postalcode", "zipcode",
)  # fmt: skip
#: DICOM keywords of patient identifiers (matched ignoring case and separators): a clinical table
#: exported from a PACS or RIS names its columns so.
IDENTIFIER_KEYWORDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "AccessionNumber",
    "ReferringPhysicianName",
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def identifier_columns(columns: Any) -> list[str]:
    """The column names that mark direct identifiers (left out of the linked table unless kept).

    A name is normalised (Unicode NFKD without accents, camelCase split, case folded, every
    run of other characters than letters and digits a separator) and matches when one of its
    tokens is in :data:`IDENTIFIER_TOKENS`, when its letters and digits contain a stem of
    :data:`IDENTIFIER_STEMS`, or when they spell a keyword of :data:`IDENTIFIER_KEYWORDS`.

    Parameters
    ----------
    columns : iterable of str
        Column names of a clinical table.

    Returns
    -------
    list of str
        The matching names, in their order.

    Examples
    --------
    >>> identifier_columns(["study_id", "Patient Name", "DOB", "birthDate", "vas", "age", "e-mail"])
    ['Patient Name', 'DOB', 'birthDate', 'e-mail']
    >>> identifier_columns(["PatientBirthDate", "Nachname", "scan_date", "sex", "pain_site"])
    ['PatientBirthDate', 'Nachname']
    """
    keywords = {k.casefold() for k in IDENTIFIER_KEYWORDS}
    found = []
    for column in columns:
        text = unicodedata.normalize("NFKD", str(column))
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        tokens = [t for t in re.split(r"[\W_]+", _CAMEL.sub("_", text).casefold()) if t]
        compact = "".join(tokens)
        if (
            any(t in IDENTIFIER_TOKENS for t in tokens)
            or any(stem in compact for stem in IDENTIFIER_STEMS)
            or compact in keywords
        ):
            found.append(str(column))
    return found


def vas_decimal_comma(values: Any, decimal_comma: bool | None = None, *, column: str = "vas") -> bool:
    """Whether the VAS cells written as text are read with a decimal comma.

    With ``decimal_comma`` given, that choice. Otherwise (the rule of docs/statistics.md,
    "Linking") the non-empty text cells of the column decide; numbers stored as numbers (an XLSX
    cell, a column pandas read as numeric) read the same either way and do not:

    * no cell has a decimal comma (``5,5``): decimal point (False);
    * some cells have a decimal comma and every other non-empty text cell is a whole number
      (``7``): decimal comma (True);
    * some cells have a decimal comma and some are not decimal-comma numbers (``5.5``,
      ``severe``): ambiguous, refused.

    A comma-separated file can hold ``5,5`` in a cell only quoted; unquoted, the row has more
    fields than the header, which :func:`spinemri.io.clinical.read_table` refuses.

    Parameters
    ----------
    values : iterable
        The VAS column's cells.
    decimal_comma : bool or None, default None
        The user's choice (:attr:`LinkParams.decimal_comma`); None decides from ``values``.
    column : str, default "vas"
        The column's name, for the message.

    Returns
    -------
    bool
        True to read ``5,5`` as 5.5.

    Raises
    ------
    LinkError
        ``decimal_comma`` is None and the column is ambiguous; the message shows examples of
        both kinds of cell (with their row) and the options that decide.

    Examples
    --------
    >>> vas_decimal_comma(["5,5", "7", None, 3.0])
    True
    >>> vas_decimal_comma(["5.5", "7"])
    False
    """
    if decimal_comma is not None:
        return bool(decimal_comma)
    comma: list[str] = []
    other: list[str] = []
    for r, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            continue
        text = value.strip()
        if "," in text and _COMMA_NUMBER.fullmatch(text):
            comma.append(f"{value!r} (row {r + 1})")
        elif not _INTEGER.fullmatch(text):
            other.append(f"{value!r} (row {r + 1})")
    if not comma:
        return False
    if not other:
        return True
    raise LinkError(
        f"clinical table: the {column} column mixes numbers with a decimal comma ({_examples(comma)}) "
        f"and values that are not ({_examples(other)}), so its number format is ambiguous: pass "
        "decimal_comma=True (CLI --decimal-comma) to read 5,5 as 5.5, or decimal_comma=False "
        "(CLI --no-decimal-comma) to read decimal points; the values that do not fit are then "
        "excluded and listed in the link report"
    )


def _examples(cells: list[str]) -> str:
    more = f" and {len(cells) - 3} more" if len(cells) > 3 else ""
    return ", ".join(cells[:3]) + more


def is_decimal_comma_number(text: str) -> bool:
    """Whether ``text`` is a number written with a decimal comma, or a whole number.

    Parameters
    ----------
    text : str
        A cell, stripped.

    Returns
    -------
    bool
        True for ``5,5``, ``,5``, ``-3,0`` and ``7`` (ASCII digits only).

    Examples
    --------
    >>> [is_decimal_comma_number(t) for t in ("5,5", "7", "5.5", "1,2,3", "٣")]
    [True, True, False, False, False]
    """
    return _COMMA_NUMBER.fullmatch(text) is not None


_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", re.ASCII)
_SLASHED = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})", re.ASCII)


def parse_visit_dates(values: Any, *, column: str = "date") -> list[Any]:
    """The dates of a clinical date column (``NaT`` where a cell is missing or not a date).

    pandas reads ``05.03.2024`` as 3 May but ``13.03.2024`` as 13 March, so one column of
    European dates gave dates in two conventions. Here:

    * ``DD.MM.YYYY`` (dots: the European form; the US writes slashes) is day first;
    * ``a/b/YYYY`` is read one way for the whole column: day first when some ``a`` exceeds 12,
      else month first (US); a column with both an ``a`` and a ``b`` above 12 is refused;
    * anything else (``YYYY-MM-DD``, Excel dates, ...) as pandas reads it.

    Parameters
    ----------
    values : iterable
        The column's cells.
    column : str, default "date"
        The column's name, for the message.

    Returns
    -------
    list
        One ``pandas.Timestamp`` or ``NaT`` per cell.

    Raises
    ------
    LinkError
        The column mixes day/month/year and month/day/year (``13/02/2024`` and ``02/13/2024``).

    Examples
    --------
    >>> [d.strftime("%Y-%m-%d") for d in parse_visit_dates(["05.03.2024", "13.03.2024", "2024-03-05"])]
    ['2024-03-05', '2024-03-13', '2024-03-05']
    >>> [d.strftime("%Y-%m-%d") for d in parse_visit_dates(["05/03/2024", "25/03/2024"])]
    ['2024-03-05', '2024-03-25']
    """
    cells = list(values)
    slashed = [m for v in cells if isinstance(v, str) and (m := _SLASHED.fullmatch(v.strip()))]
    day_first = any(int(m.group(1)) > 12 for m in slashed)
    if day_first and any(int(m.group(2)) > 12 for m in slashed):
        shown = ", ".join(repr(m.group(0)) for m in slashed[:4])
        raise LinkError(
            f"clinical table: the {column} column mixes day/month/year and month/day/year dates "
            f"({shown}); write the dates as YYYY-MM-DD"
        )
    series = values if isinstance(values, pd.Series) else pd.Series(cells, dtype=object)
    if any(
        isinstance(v, str) and (_DOTTED.fullmatch(v.strip()) or _SLASHED.fullmatch(v.strip())) for v in cells
    ):
        series = pd.Series([_iso(v, day_first) for v in cells], dtype=object)
    parsed = pd.to_datetime(
        series.astype("string") if series.dtype == object else series, errors="coerce", format="mixed"
    )
    return list(parsed)


def _iso(value: Any, day_first: bool) -> Any:
    """A dotted or slashed date as ``YYYY-MM-DD`` (day first when dotted or ``day_first``); else the value."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    dotted, slashed = _DOTTED.fullmatch(text), _SLASHED.fullmatch(text)
    m = dotted or slashed
    if m is None:
        return value
    a, b, year = (int(g) for g in m.groups())
    day, month = (a, b) if dotted or day_first else (b, a)
    return f"{year:04d}-{month:02d}-{day:02d}"
