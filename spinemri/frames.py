"""The metric tables' DataFrames (:mod:`spinemri.metrics`), built at a fraction of pandas' per-column cost.

Pure pandas, public API only. A table is given as its columns (name to a numpy array, a list of
Python values, or one text value for every row), the column names in table order and the number of
rows. :func:`frames` builds several tables at once and gives the same frames, column for column and
dtype for dtype, as ``pd.DataFrame(columns, columns=names)`` of each, but:

* the text columns of all the tables are converted to pandas' ``str`` dtype in one ``pd.array``
  call, then sliced (a conversion costs about as much for 1 value as for 200: one per column was
  half the cost of building the vertebra table);
* the numpy columns are taken as they are (``copy=False``: they are fresh arrays of the caller).

Tables without rows take ``pd.DataFrame`` itself (the dtypes pandas infers from empty columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Table", "frames", "patient_frame"]

#: A table to build: its columns (name to values), the names in table order and the number of rows.
Table = tuple[Mapping[str, Any], Sequence[str], int]


def _is_text(values: Any, n_rows: int) -> bool:
    """A text column: one ``str`` for every row, or a list of ``n_rows`` ``str`` (a list of another
    length is left to ``pd.DataFrame``, which refuses it)."""
    if isinstance(values, str):
        return True
    return (
        isinstance(values, list)
        and len(values) == n_rows
        and n_rows > 0
        and all(isinstance(v, str) for v in values)
    )


def frames(*tables: Table) -> list[pd.DataFrame]:
    """``pd.DataFrame(columns, columns=list(names))`` of each table, the text columns converted together.

    Parameters
    ----------
    *tables : tuple of (mapping, sequence of str, int)
        Per table: ``columns``, every name of ``names`` mapped to its values -- a numpy array or
        a list of one value per row, or a single ``str`` for every row; ``names``, the column
        order; ``n_rows``, the number of rows.

    Returns
    -------
    list of DataFrame
        One per table, in order, with a ``RangeIndex``: the frames ``pd.DataFrame`` gives (text
        columns, lists holding only ``str``, of dtype ``str``; numpy arrays with their dtype,
        not copied; other lists as pandas infers them). A table with 0 rows is built by
        ``pd.DataFrame`` from its columns as given.
    """
    texts: list[str] = []
    for columns, names, n_rows in tables:
        if n_rows == 0:
            continue
        for name in names:
            v = columns[name]
            if isinstance(v, str):
                texts.extend([v] * n_rows)
            elif _is_text(v, n_rows):
                texts.extend(v)
    text = pd.array(texts, dtype="str") if texts else None
    out: list[pd.DataFrame] = []
    at = 0
    for columns, names, n_rows in tables:
        if n_rows == 0:
            out.append(pd.DataFrame({k: columns[k] for k in names}, columns=list(names)))
            continue
        cols: dict[str, Any] = {}
        for name in names:
            v = columns[name]
            if text is not None and _is_text(v, n_rows):
                cols[name] = text[at : at + n_rows]
                at += n_rows
            else:
                cols[name] = v
        out.append(pd.DataFrame(cols, copy=False))
    return out


def patient_frame(row: Mapping[str, object], names: Sequence[str]) -> Table:
    """The one-row table of a row of Python scalars, for :func:`frames`.

    Parameters
    ----------
    row : mapping of str to object
        Column name to its value: ``bool``, ``int``, ``float`` and ``str`` (other values are
        left to pandas' inference).
    names : sequence of str
        The column order.

    Returns
    -------
    tuple of (dict, sequence of str, int)
        Booleans as a ``bool`` array, integers as ``int64``, floats as ``float64`` (the dtypes
        pandas infers from one such value), text as it is; one row.
    """
    cols: dict[str, Any] = {}
    for name in names:
        v = row[name]
        if isinstance(v, bool):
            cols[name] = np.array([v], dtype=bool)
        elif isinstance(v, int) and -(1 << 63) <= v < 1 << 63:
            cols[name] = np.array([v], dtype=np.int64)
        elif isinstance(v, float):
            cols[name] = np.array([v], dtype=np.float64)
        elif isinstance(v, str):
            cols[name] = v
        else:
            cols[name] = [v]
    return cols, names, 1
