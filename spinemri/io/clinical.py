"""Read clinical and result tables (CSV, TSV, XLSX) robustly (writing: :mod:`spinemri.io.tables`).

Clinical spreadsheets come from many hands: UTF-8 with or without a byte-order
mark, Latin-1 from older Excel exports, and ``,``, ``;`` or tab separators.
Decimal commas (``5,5``) are left as text here; :func:`spinemri.linking.link`
reads them (docs/statistics.md, "Linking"). A comma-separated file whose rows
have more fields than its header (an unquoted ``5,5``) is refused, not shifted.
:func:`read_table` accepts all of these, says which encoding and separator it
used (logged at INFO), and raises :class:`~spinemri.errors.InputError` naming
the file when it cannot make a table of it.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError, LinkError
from .tables import read_csv_text_columns

__all__ = ["read_table", "read_clinical", "decode_table_bytes", "sniff_separator"]

logger = logging.getLogger(__name__)

_SEPARATORS = (",", ";", "\t")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def decode_table_bytes(raw: bytes) -> tuple[str, str]:
    """Decode a text table: UTF-8 (BOM stripped), else Latin-1.

    Parameters
    ----------
    raw : bytes
        The whole file content, undecoded.

    Returns
    -------
    text : str
    encoding : str
        ``"utf-8-sig"``, ``"utf-8"`` or ``"latin-1"``.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def sniff_separator(text: str) -> str:
    """The separator (``,``, ``;`` or tab) that splits the header and first rows most consistently.

    A candidate must give the same number (> 1) of fields on each of the first
    lines; among those, the one giving the most fields wins. A single-column
    table gives ``","``.

    Parameters
    ----------
    text : str
        The decoded table (see :func:`decode_table_bytes`); only its first 20
        non-blank lines are examined.

    Returns
    -------
    str
        ``","``, ``";"`` or ``"\\t"``; ``","`` for empty text or when no
        candidate splits the header into more than one field.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()][:20]
    if not lines:
        return ","
    best, best_fields = ",", 1
    for sep in _SEPARATORS:
        try:
            rows = list(csv.reader(lines, delimiter=sep))
        except csv.Error:
            continue
        counts = {len(r) for r in rows}
        if len(counts) == 1:
            n = counts.pop()
            if n > best_fields:
                best, best_fields = sep, n
    if best_fields == 1:  # ragged rows: take the separator with the most fields in the header
        header_counts = {sep: len(next(csv.reader([lines[0]], delimiter=sep))) for sep in _SEPARATORS}
        sep = max(_SEPARATORS, key=lambda s: header_counts[s])
        if header_counts[sep] > 1:
            best = sep
    return best


def read_table(path: str | os.PathLike[str], *, dtype_str_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV, TSV or XLSX table.

    Parameters
    ----------
    path : str or path-like
        ``.csv``/``.tsv``/``.txt`` (any of the separators ``,`` ``;`` tab, sniffed) or ``.xlsx``.
    dtype_str_columns : tuple of str, default ()
        Columns read as text, unchanged (ids such as ``"007"`` keep their leading zeros).

    Returns
    -------
    pandas.DataFrame
        Column names stripped of surrounding whitespace.

    Raises
    ------
    InputError
        The file is missing, empty, or not a table; the message names the file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"table {p} does not exist; check the path")
    if p.is_dir():
        raise InputError(f"table {p} is a folder; pass a CSV, TSV or XLSX file")
    if not p.is_file():  # a FIFO would block read_bytes() forever
        raise InputError(
            f"table {p} is not a regular file (a named pipe, socket or device), so it cannot be read"
        )
    if not os.access(p, os.R_OK):
        raise InputError(f"table {p} cannot be read (permission denied); check the file's permissions")
    if p.suffix.lower() in _EXCEL_SUFFIXES:
        try:
            df = read_excel_cells(p, dtype_str_columns)
        except ImportError as exc:
            raise InputError(
                f"table {p} is an Excel file but openpyxl is not installed; "
                "pip install openpyxl, or save the sheet as CSV"
            ) from exc
        except Exception as exc:  # openpyxl raises many types for corrupt files
            raise InputError(
                f"table {p} could not be read as an Excel workbook ({exc}); save it as CSV and retry"
            ) from exc
    else:
        raw = p.read_bytes()
        if not raw.strip():
            raise InputError(f"table {p} is empty; expected a header row and one row per patient")
        if raw[:4] == b"PK\x03\x04":
            raise InputError(f"table {p} looks like an Excel workbook; rename it to .xlsx or save it as CSV")
        text, encoding = decode_table_bytes(raw)
        sep = sniff_separator(text)
        logger.info("reading %s as %s with separator %r", p, encoding, sep)
        comma_hint = (
            "; a decimal comma in a comma-separated file (5,5) splits a number in two: quote such "
            "values, save the table with ';' as separator, or write decimal points"
            if sep == ","
            else ""
        )
        try:
            df = read_csv_text_columns(io.StringIO(text), dtype_str_columns, sep=sep)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise InputError(
                f"table {p} could not be parsed as a {sep!r}-separated table ({exc}); "
                f"check that every row has the same number of fields{comma_hint}"
            ) from exc
        if not isinstance(df.index, pd.RangeIndex):
            # every row has more fields than the header: pandas took the first field(s) as the index,
            # shifting every value one column to the right (an id read as a VAS)
            raise InputError(
                f"table {p}: the rows have more {sep!r}-separated fields than the header "
                f"({len(df.columns)} columns: {list(df.columns)}); check the separator and the "
                f"header{comma_hint}"
            )
    df.columns = [str(c).strip() for c in df.columns]
    if df.columns.duplicated().any():
        dup = sorted(set(df.columns[df.columns.duplicated()]))
        raise InputError(f"table {p} has duplicate column name(s) {dup}; rename them")
    return df


def read_clinical(path: str | os.PathLike[str], id_column: str = "patient_id") -> pd.DataFrame:
    """Read a clinical table (see :func:`read_table`) with ``id_column`` kept as text.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``/``.tsv``/``.txt`` (separator sniffed) or ``.xlsx`` file.
    id_column : str, default "patient_id"
        Name of the patient id column (after stripping whitespace from the
        header); read as text so that ids such as ``"007"`` keep their zeros.

    Returns
    -------
    pandas.DataFrame
        One row per table row, column names stripped, ``id_column`` of str.

    Raises
    ------
    InputError
        As :func:`read_table`.
    LinkError
        The table has no ``id_column``; the message names the file and its columns.
    """
    df = read_table(path, dtype_str_columns=(id_column,))
    if id_column not in df.columns:
        raise LinkError(
            f"table {path}: no column {id_column!r} (columns: {list(df.columns)}); rename the patient id "
            "column or name it with --id-column"
        )
    return df


def read_excel_cells(path: Path, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """Read the first sheet of a workbook, each cell as the type Excel stored.

    ``pandas.read_excel`` infers a column's dtype and so turns a TRUE cell among numbers
    into 1.0: an Excel boolean in the VAS column then linked as VAS 1. Here every column
    is ``object``: numbers stay numbers, text stays text, booleans stay booleans (which
    :func:`spinemri.link` refuses as a VAS), dates stay dates. The ``text_columns``
    (ids) are read as text literally: ``NA`` or ``null`` is an id, only an empty cell is
    missing.

    Parameters
    ----------
    path : pathlib.Path
        An ``.xlsx``/``.xlsm`` workbook.
    text_columns : tuple of str
        Columns read as ``str`` (those present).

    Returns
    -------
    pandas.DataFrame
        The sheet's rows.
    """
    header = pd.read_excel(path, nrows=0).columns
    dtype: dict[Any, Any] = {c: (str if str(c).strip() in text_columns else object) for c in header}
    df = pd.read_excel(path, dtype=dtype)
    present = [c for c in header if str(c).strip() in text_columns]
    if present:
        raw = pd.read_excel(path, dtype=str, usecols=present, keep_default_na=False)
        for c in present:
            df[c] = raw[c].mask(raw[c] == "")
    return df
