"""Write result tables as CSV (and Parquet when pyarrow is installed), atomically and reproducibly.

This is the one CSV writer of spinemri: every table a command writes
(vertebrae/patients/lesions, linked.csv and link_report.csv of ``run`` and
``link``, errors.csv, the analysis tables, the phantom cohort's clinical and
truth tables) goes through :func:`table_to_csv_bytes`.

CSV formatting is fixed so that rerunning on the same input gives
byte-identical files: floats with 12 significant digits (``%.12g``), NaN as an
empty field, ``True``/``False`` for booleans, ``\\n`` line endings, UTF-8, no
index column.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .atomic import atomic_path, write_bytes_atomic

__all__ = [
    "FLOAT_FORMAT",
    "has_parquet",
    "table_to_csv_bytes",
    "write_csv",
    "write_table",
    "write_tables",
    "read_table",
    "read_csv_text_columns",
]

#: printf-style float format of every CSV written by spinemri.
FLOAT_FORMAT = "%.12g"


def has_parquet() -> bool:
    """True when pyarrow is importable (Parquet copies are then written).

    Returns
    -------
    bool
        Whether ``import pyarrow`` succeeds in this environment.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def table_to_csv_bytes(df: pd.DataFrame) -> bytes:
    """The CSV encoding of every table spinemri writes.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table; its index is not written.

    Returns
    -------
    bytes
        UTF-8 CSV, ``%.12g`` floats, empty NaN, ``\\n`` line endings: the exact
        bytes :func:`write_csv` and :func:`write_table` write for ``df``.
    """
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format=FLOAT_FORMAT, na_rep="", lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as CSV (:func:`table_to_csv_bytes`) to ``path`` atomically, whatever its suffix.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : path-like
        Output file; its folder is created.

    Returns
    -------
    Path
        ``path``.
    """
    return write_bytes_atomic(Path(path), table_to_csv_bytes(df))


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to ``path`` (``.csv`` or ``.parquet``) atomically; return the path.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its index is not written.
    path : str or path-like
        Output file; the format is chosen by its suffix (any case): ``.csv``
        (:func:`write_csv`) or ``.parquet`` (pyarrow engine).

    Returns
    -------
    Path
        ``Path(path)``, the written file.

    Raises
    ------
    InputError
        For another suffix, or ``.parquet`` without pyarrow.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return write_csv(df, p)
    if suffix == ".parquet":
        if not has_parquet():
            raise InputError(f"{p}: writing Parquet needs pyarrow (pip install pyarrow), or write .csv")
        with atomic_path(p) as tmp:
            df.to_parquet(tmp, index=False, engine="pyarrow")
        return p
    raise InputError(f"{p}: unknown table format {suffix!r}; use .csv or .parquet")


def write_tables(
    tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike[str], *, parquet: bool | None = None
) -> list[Path]:
    """Write ``{name: df}`` as ``out_dir/name.csv`` (+ ``name.parquet`` when pyarrow is installed).

    ``parquet=None`` writes Parquet exactly when pyarrow is importable.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        File stem (e.g. ``"vertebrae"``) -> table, written in mapping order.
    out_dir : str or path-like
        Output folder; created when missing.
    parquet : bool, optional
        Also write ``name.parquet``; ``None`` (default) means :func:`has_parquet`.

    Returns
    -------
    list of Path
        Every written file, in order: ``name.csv`` then (when Parquet is
        written) ``name.parquet`` for each table.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    do_parquet = has_parquet() if parquet is None else parquet
    written = []
    for name, df in tables.items():
        written.append(write_table(df, out / f"{name}.csv"))
        if do_parquet:
            written.append(write_table(df, out / f"{name}.parquet"))
    return written


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (CSV: ``patient_id`` and ``level`` kept as strings).

    Parameters
    ----------
    path : str or path-like
        A ``.parquet`` file (read with pandas), or any other suffix, read as
        CSV with ``patient_id``, ``level`` and ``involved_levels`` as str.

    Returns
    -------
    pandas.DataFrame
        The table; in a CSV, empty fields read back as NaN.

    Raises
    ------
    InputError
        When ``path`` is not an existing regular file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such table file")
    if p.suffix.lower() == ".parquet":
        return pd.read_parquet(p)
    return read_csv_text_columns(p, ("patient_id", "level", "involved_levels"))


def read_csv_text_columns(
    source: str | os.PathLike[str] | io.StringIO, text_columns: tuple[str, ...], **kwargs: object
) -> pd.DataFrame:
    """``pandas.read_csv``, with the named columns read as text, literally.

    pandas turns ``NA``, ``null``, ``None``, ``nan``, ``N/A`` ... into missing values even
    in a ``dtype=str`` column, so a patient folder named ``NA`` or ``null`` lost its id
    (NULL in Parquet; the link step then refused the run). In the named columns only an
    empty field is missing; every other column keeps pandas' usual missing values.

    Parameters
    ----------
    source : path-like or io.StringIO
        The CSV (a StringIO is read twice: it is rewound).
    text_columns : tuple of str
        Columns read as ``str`` (those present; absent ones are ignored).
    **kwargs
        Passed to ``pandas.read_csv`` (e.g. ``sep``).

    Returns
    -------
    pandas.DataFrame
        The table; the text columns hold ``str`` or NaN (empty field).
    """
    df = pd.read_csv(source, dtype={c: str for c in text_columns}, **kwargs)
    present = [c for c in df.columns if c in text_columns]
    if present:
        if isinstance(source, io.StringIO):
            source.seek(0)
        raw = pd.read_csv(source, dtype=str, usecols=present, keep_default_na=False, **kwargs)
        for c in present:
            df[c] = raw[c].mask(raw[c] == "")
    return df
