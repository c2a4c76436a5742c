"""Join the per-patient imaging table to a clinical table of pain scores (VAS).

Pure: DataFrames in, a linked DataFrame and a :class:`LinkReport` out. Nothing
is guessed: every id that matched only after normalisation, every ambiguity,
every unmatched id on either side, every rejected VAS value and every
duplicate is a row of the report.

Id matching
-----------
1. *Exact*: the id strings are equal.
2. *Normalised*: :func:`normalise_id` (Unicode NFKC, surrounding whitespace,
   case, the separators ``-``, ``_`` and space, and leading zeros of each
   number) gives the same key — ``"smr_001"``, ``" SMR-1"`` and ``"SMR1"``
   all become ``"smr|1"``. A normalised match is made only when its key is
   shared by exactly one imaging id and exactly one clinical id; when a key is
   shared by two different ids on one side, that is an *ambiguity*: reported,
   never resolved by guessing.

VAS values
----------
A VAS must be a number within ``[vas_min, vas_max]`` (0-10). Missing,
non-numeric or out-of-range values are excluded and reported (kinds
``missing_vas`` and ``invalid_vas``), never coerced or clipped. VAS cells
written as text with a decimal comma (``5,5``, from Excel in a European
locale) are read as such when :attr:`LinkParams.decimal_comma` says so or
:func:`vas_decimal_comma` finds it unambiguous; a column where both readings
occur is refused (docs/statistics.md, "Linking").

Identifier columns
------------------
Clinical columns are copied into the linked table, except those whose names
mark them as direct identifiers (:func:`identifier_columns`: patient name,
birth date, MRN, address, phone, e-mail, ...; DESIGN §6), unless listed in
:attr:`LinkParams.keep_columns`. The report's notes name the columns left out.

Duplicate ids
-------------
Several rows with a valid VAS for one patient: with a ``date_column`` and a
known scan date, the assessment nearest the scan within ``window_days`` is
used (rows outside the window are reported as ``outside_window``; a tie between
different VAS values is reported and no VAS is used). Without a date column a
:class:`~spinemri.errors.LinkError` lists the duplicated ids (rows identical
in every column are collapsed to one and reported instead).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .clinical_columns import (
    IDENTIFIER_KEYWORDS,
    IDENTIFIER_STEMS,
    IDENTIFIER_TOKENS,
    identifier_columns,
    is_decimal_comma_number,
    parse_visit_dates,
    vas_decimal_comma,
)
from .errors import LinkError
from .params import LinkParams, check_known_keys

__all__ = [
    "link",
    "link_clinical",
    "normalise_id",
    "identifier_columns",
    "vas_decimal_comma",
    "check_clinical_table",
    "LinkReport",
    "ISSUE_KINDS",
    "REPORT_COLUMNS",
    "IDENTIFIER_TOKENS",
    "IDENTIFIER_STEMS",
    "IDENTIFIER_KEYWORDS",
]

# the logger name of the public verb, as before this module was renamed (log lines name their logger)
logger = logging.getLogger("spinemri.link")

#: Kinds of rows in the link report, in the order they are listed.
ISSUE_KINDS = (
    "exact",
    "normalised",
    "ambiguous",
    "unmatched_imaging",
    "unmatched_clinical",
    "missing_id",
    "missing_vas",
    "invalid_vas",
    "duplicate",
    "invalid_date",
    "outside_window",
)
#: Columns of the link report (link_report.csv).
REPORT_COLUMNS = ("kind", "imaging_id", "clinical_id", "clinical_row", "detail")

_SEP = re.compile(r"[-_\s]+")
_RUNS = re.compile(r"\d+|\D+")
#: A VAS written as text: a plain ASCII decimal number (or inf/nan, reported as not finite).
_NUMBER = re.compile(
    r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE
)


def normalise_id(value: Any) -> str:
    """Matching key of a patient id.

    Parameters
    ----------
    value : Any
        The id as written (string or number).

    Returns
    -------
    str
        Lower-cased runs of digits and non-digits, joined by ``"|"``, with the
        separators ``-``, ``_`` and whitespace removed and the leading zeros of
        each number dropped.

    Examples
    --------
    >>> normalise_id("smr_001") == normalise_id("SMR-1") == normalise_id(" smr1 ")
    True
    >>> normalise_id("P1-2") == normalise_id("P12")
    False
    """
    text = unicodedata.normalize("NFKC", _id_text(value)).strip().casefold()
    runs: list[str] = []
    for piece in _SEP.split(text):
        for run in _RUNS.findall(piece):
            runs.append((run.lstrip("0") or "0") if run.isdigit() else run)
    return "|".join(runs)


def _id_text(value: Any) -> str:
    """An id as text; integral floats (pandas reads 7 as 7.0 beside blanks) lose the '.0'."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class LinkReport:
    """What :func:`link` did: one row per match or issue, plus counts.

    Attributes
    ----------
    issues : pandas.DataFrame
        Columns ``kind, imaging_id, clinical_id, clinical_row, detail`` (``clinical_row``
        is the 1-based data row of the clinical table, header excluded); written as
        link_report.csv.
    n_imaging : int
        Patients in the imaging table.
    n_clinical_rows : int
        Rows in the clinical table.
    n_linked : int
        Imaging patients that received a valid VAS.
    params : LinkParams
    decimal_comma : bool, default False
        The VAS text cells were read with a decimal comma (``5,5`` = 5.5).
    dropped_columns : tuple of str, default ()
        Clinical columns left out of the linked table as direct identifiers
        (:func:`identifier_columns`, not in ``params.keep_columns``).
    notes : tuple of str, default ()
        One line each on how the table was read (decimal comma, identifier columns left out);
        part of :meth:`summary`.
    """

    issues: pd.DataFrame
    n_imaging: int
    n_clinical_rows: int
    n_linked: int
    params: LinkParams = field(default_factory=LinkParams)
    decimal_comma: bool = False
    dropped_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def count(self, kind: str) -> int:
        """Number of report rows of one kind.

        Parameters
        ----------
        kind : str
            One of :data:`ISSUE_KINDS`.

        Returns
        -------
        int
            Rows of that kind.
        """
        return int((self.issues["kind"] == kind).sum())

    def ids(self, kind: str, side: str = "imaging") -> list[str]:
        """Ids (``side`` = "imaging" or "clinical") of the report rows of one kind.

        Parameters
        ----------
        kind : str
            One of :data:`ISSUE_KINDS`.
        side : str
            ``"imaging"`` for the ``imaging_id`` column, anything else for ``clinical_id``.

        Returns
        -------
        list of str
            The ids, in report order.
        """
        col = "imaging_id" if side == "imaging" else "clinical_id"
        return [str(v) for v in self.issues.loc[self.issues["kind"] == kind, col]]

    def summary(self) -> str:
        """A few human-readable lines (printed on stderr by ``spinemri link``).

        Returns
        -------
        str
            The counts, the :attr:`notes`, each normalised match and up to 10 details per issue
            kind, one per line.
        """
        lines = [
            f"linked {self.n_linked} of {self.n_imaging} imaging patients to a valid VAS "
            f"({self.count('exact')} exact id matches, {self.count('normalised')} after id normalisation); "
            f"clinical table: {self.n_clinical_rows} rows"
        ]
        lines.extend(f"  {note}" for note in self.notes)
        for _, row in self.issues[self.issues["kind"] == "normalised"].iterrows():
            lines.append(
                f"  normalised match: imaging {row['imaging_id']!s} <- clinical {row['clinical_id']!s}"
            )
        for kind in ISSUE_KINDS[2:]:
            sub = self.issues[self.issues["kind"] == kind]
            if sub.empty:
                continue
            shown = [str(d) for d in sub["detail"].head(10)]
            more = f" (+{len(sub) - 10} more)" if len(sub) > 10 else ""
            lines.append(f"  {kind}: {len(sub)}: " + "; ".join(shown) + more)
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """A copy of the report table.

        Returns
        -------
        pandas.DataFrame
            A copy of :attr:`issues` (link_report.csv).
        """
        return self.issues.copy()


def link(
    patients: pd.DataFrame,
    clinical: pd.DataFrame,
    *,
    scan_dates: Mapping[str, Any] | pd.Series | None = None,
    params: LinkParams | None = None,
    **options: Any,
) -> tuple[pd.DataFrame, LinkReport]:
    """Join the patient table to the clinical table's VAS.

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient with a unique ``patient_id`` (DESIGN §5 patient columns).
    clinical : pandas.DataFrame
        Clinical table with an id column and a VAS column (0-10), optionally a date column.
    scan_dates : mapping or Series, optional
        Scan date per imaging ``patient_id``; when omitted the imaging table's
        ``scan_date_column`` is used if present.
    params : LinkParams, optional
        All options at once; otherwise ``**options`` are :class:`~spinemri.params.LinkParams`
        fields (``id_column``, ``vas_column``, ``date_column``, ``window_days``, ...).

    Returns
    -------
    linked : pandas.DataFrame
        The imaging table (same rows, same order) plus ``clinical_id`` (the id as written in the
        clinical table), ``link_match`` (exact / normalised / ambiguous / unmatched), ``vas``
        (float, NaN when no valid VAS), ``vas_days_from_scan`` (with a date column) and every
        other clinical column (prefixed with ``collision_prefix`` when its name is taken).
    report : LinkReport

    Raises
    ------
    LinkError
        A required column is missing, imaging ids are missing or duplicated, or clinical ids
        are duplicated with different values and no date column to choose between them.
    """
    if params is None:
        check_known_keys(LinkParams, options, "link()")
        params = LinkParams(**options)
    elif options:
        raise LinkError(f"link(): pass either params= or keyword options, not both ({sorted(options)})")
    _check_columns(patients, clinical, params)
    decimal_comma = check_clinical_table(clinical, params)

    img_ids = [_id_text(v) for v in patients["patient_id"]]
    missing_img = [i for i, v in enumerate(patients["patient_id"]) if _is_missing(v)]
    if missing_img:
        raise LinkError(
            f"imaging table: patient_id is missing in row(s) {[i + 1 for i in missing_img]}; "
            "every patient needs an id"
        )
    dup_img = sorted({i for i in img_ids if img_ids.count(i) > 1})
    if dup_img:
        raise LinkError(f"imaging table: duplicated patient_id(s) {dup_img}; each patient must appear once")

    issues: list[dict[str, Any]] = []

    def add(kind: str, imaging_id: Any, clinical_id: Any, row: int | None, detail: str) -> None:
        issues.append(
            {
                "kind": kind,
                "imaging_id": imaging_id,
                "clinical_id": clinical_id,
                "clinical_row": row,
                "detail": detail,
            }
        )

    # -- clinical ids ------------------------------------------------------------------------
    clin_raw = list(clinical[params.id_column])
    rows_by_id: dict[str, list[int]] = defaultdict(list)
    for r, v in enumerate(clin_raw):
        if _is_missing(v):
            add(
                "missing_id",
                None,
                None,
                r + 1,
                f"clinical row {r + 1} has no {params.id_column}; row ignored",
            )
            continue
        rows_by_id[_id_text(v)].append(r)

    # -- id matching -------------------------------------------------------------------------
    img_by_key: dict[str, set[str]] = defaultdict(set)
    clin_by_key: dict[str, set[str]] = defaultdict(set)
    for i in img_ids:
        img_by_key[normalise_id(i)].add(i)
    for c in rows_by_id:
        clin_by_key[normalise_id(c)].add(c)

    match: dict[str, tuple[str, str]] = {}  # imaging id -> (clinical id, kind)
    status: dict[str, str] = {}
    listed: set[str] = set()  # clinical ids already named in an imaging-side ambiguity row
    for i in img_ids:
        if i in rows_by_id:
            match[i] = (i, "exact")
            status[i] = "exact"
            continue
        key = normalise_id(i)
        cands, imgs = clin_by_key.get(key, set()), img_by_key[key]
        if not cands:
            status[i] = "unmatched"
            add("unmatched_imaging", i, None, None, f"imaging id {i!r} has no row in the clinical table")
        elif len(cands) == 1 and len(imgs) == 1:
            (c,) = cands
            match[i] = (c, "normalised")
            status[i] = "normalised"
        else:
            status[i] = "ambiguous"
            listed.update(cands)
            add(
                "ambiguous",
                i,
                ";".join(sorted(cands)),
                None,
                f"imaging id {i!r} normalises to {key!r} like clinical id(s) {sorted(cands)} "
                f"and imaging id(s) "
                f"{sorted(imgs)}; not linked — make the ids unique",
            )
    used = {c for c, _ in match.values()}
    for c in sorted(rows_by_id):
        if c in used or c in listed:
            continue
        key = normalise_id(c)
        imgs = img_by_key.get(key, set())
        rows1 = [r + 1 for r in rows_by_id[c]]
        if imgs:
            add(
                "ambiguous",
                ";".join(sorted(imgs)),
                c,
                rows1[0],
                f"clinical id {c!r} (row(s) {rows1}) normalises to {key!r} "
                f"like imaging id(s) {sorted(imgs)}, "
                "which are matched otherwise or ambiguous; not used",
            )
        else:
            for r in rows1:
                add(
                    "unmatched_clinical",
                    None,
                    c,
                    r,
                    f"clinical id {c!r} (row {r}) matches no imaging patient",
                )

    # -- VAS and dates -------------------------------------------------------------------------
    vas_raw = list(clinical[params.vas_column])
    dates = None
    if params.date_column is not None:
        dates = parse_visit_dates(clinical[params.date_column], column=params.date_column)
    scans = _scan_dates(patients, img_ids, scan_dates, params)

    chosen: dict[str, int] = {}
    days_from_scan: dict[str, float] = {}
    vas_value: dict[str, float] = {}
    unresolved: list[str] = []
    for i in img_ids:
        if i not in match:
            continue
        c, kind = match[i]
        rows = rows_by_id[c]
        add(
            kind,
            i,
            c,
            rows[0] + 1 if len(rows) == 1 else None,
            f"imaging id {i!r} <- clinical id {c!r}" + (f" ({len(rows)} rows)" if len(rows) > 1 else ""),
        )
        valid: list[tuple[int, float]] = []
        for r in rows:
            ok, value, why = _check_vas(vas_raw[r], params, decimal_comma)
            if ok:
                valid.append((r, value))
            else:
                add(
                    "missing_vas" if why == "missing" else "invalid_vas",
                    i,
                    c,
                    r + 1,
                    f"{params.vas_column} of {c!r} (row {r + 1}) {why}; excluded",
                )
        if dates is not None and i in scans:
            scan = scans[i]
            kept: list[tuple[int, float]] = []
            for r, value in valid:
                d = dates[r]
                if pd.isna(d):
                    add(
                        "invalid_date",
                        i,
                        c,
                        r + 1,
                        f"{params.date_column} of {c!r} (row {r + 1}) is missing or not a date "
                        f"({clinical[params.date_column].iloc[r]!r}); VAS excluded",
                    )
                    continue
                delta = (d - scan).total_seconds() / 86400.0
                if abs(delta) > params.window_days:
                    add(
                        "outside_window",
                        i,
                        c,
                        r + 1,
                        f"VAS of {c!r} (row {r + 1}) was taken {delta:+.0f} days from the scan, outside "
                        f"±{params.window_days:g} days; excluded",
                    )
                    continue
                kept.append((r, value))
            if len(kept) > 1:
                dist = {r: abs((dates[r] - scan).total_seconds()) for r, _ in kept}
                best = min(dist.values())
                nearest = [(r, v) for r, v in kept if dist[r] == best]
                if len({v for _, v in nearest}) > 1:
                    add(
                        "duplicate",
                        i,
                        c,
                        None,
                        f"{c!r} has {len(nearest)} VAS values "
                        f"({sorted(v for _, v in nearest)}) equally near the "
                        "scan; no VAS used",
                    )
                    kept = []
                else:
                    add(
                        "duplicate",
                        i,
                        c,
                        None,
                        f"{c!r} has {len(kept)} VAS rows within the window; used the one nearest the scan "
                        f"({best / 86400.0:.0f} days)",
                    )
                    kept = [min(nearest, key=lambda rv: _row_sort_key(clinical, rv[0]))]
            if kept:
                r, value = kept[0]
                chosen[i], vas_value[i] = r, value
                days_from_scan[i] = (dates[r] - scan).total_seconds() / 86400.0
            continue
        if len(valid) > 1:
            distinct = {_row_sort_key(clinical, r) for r, _ in valid}
            if len(distinct) == 1:
                add(
                    "duplicate",
                    i,
                    c,
                    None,
                    f"{c!r} has {len(valid)} identical rows ({[r + 1 for r, _ in valid]}); collapsed to one",
                )
                valid = valid[:1]
            elif dates is not None:  # date column, but no scan date for this patient
                add(
                    "duplicate",
                    i,
                    c,
                    None,
                    f"{c!r} has {len(valid)} VAS rows but the scan date of {i!r} is unknown; no VAS used "
                    f"(add a {params.scan_date_column} column to the imaging table)",
                )
                continue
            else:
                unresolved.append(f"{c!r} (rows {[r + 1 for r, _ in valid]}, VAS {[v for _, v in valid]})")
                continue
        if valid:
            r, value = valid[0]
            chosen[i], vas_value[i] = r, value
    if unresolved:
        raise LinkError(
            f"clinical table: {len(unresolved)} patient id(s) have several different VAS rows: "
            + "; ".join(unresolved)
            + ". Pass a date column (--date-column) to take the VAS nearest the scan date, "
            "or remove the extra rows"
        )

    named = identifier_columns(_copied_columns(clinical, params))
    dropped = tuple(c for c in named if c not in params.keep_columns)
    linked = _build_linked(
        patients, clinical, img_ids, match, status, chosen, vas_value, days_from_scan, params, dropped
    )
    notes = []
    if decimal_comma:
        how = "decimal_comma=True" if params.decimal_comma else "found in every number of the column"
        notes.append(f"{params.vas_column} read with a decimal comma, 5,5 = 5.5 ({how})")
    if dropped:
        notes.append(
            f"left out of the linked table {len(dropped)} clinical column(s) named like direct identifiers: "
            f"{', '.join(dropped)} (to copy one anyway: keep_columns, CLI --keep-columns)"
        )
    frame = pd.DataFrame(issues, columns=list(REPORT_COLUMNS))
    frame["clinical_row"] = frame["clinical_row"].astype("Int64")
    order = {k: n for n, k in enumerate(ISSUE_KINDS)}
    frame = (
        frame.assign(_k=frame["kind"].map(order))
        .sort_values(
            ["_k", "imaging_id", "clinical_id", "clinical_row"], na_position="last", kind="mergesort"
        )
        .drop(columns="_k")
        .reset_index(drop=True)
    )
    report = LinkReport(
        issues=frame,
        n_imaging=len(img_ids),
        n_clinical_rows=len(clinical),
        n_linked=len(vas_value),
        params=params,
        decimal_comma=decimal_comma,
        dropped_columns=dropped,
        notes=tuple(notes),
    )
    logger.info("link: %s", report.summary().splitlines()[0])
    return linked, report


#: Verb-phrase alias of :func:`link` (house naming style).
link_clinical = link


def check_clinical_table(clinical: pd.DataFrame, params: LinkParams | None = None) -> bool:
    """Refuse a clinical table that cannot be linked with ``params``, before anything is measured.

    ``spinemri run`` calls it before the first case; :func:`link` calls it too.

    Parameters
    ----------
    clinical : pandas.DataFrame
        The clinical table (:func:`spinemri.io.clinical.read_clinical`).
    params : LinkParams, optional
        The link options (defaults when None).

    Returns
    -------
    bool
        Whether the VAS text cells are read with a decimal comma (:func:`vas_decimal_comma`).

    Raises
    ------
    LinkError
        A column named by ``params`` (id, VAS, date, ``keep_columns``) is missing, the VAS
        number format is ambiguous, or the dates mix day/month and month/day
        (:func:`parse_visit_dates`).
    """
    params = params or LinkParams()
    _check_clinical_columns(clinical, params)
    missing = [c for c in params.keep_columns if c not in clinical.columns]
    if missing:
        raise LinkError(
            f"clinical table has no column(s) {missing} to keep (columns: {list(clinical.columns)}); "
            "check keep_columns (CLI --keep-columns)"
        )
    if params.date_column is not None:  # a column of dates in two conventions is refused
        parse_visit_dates(clinical[params.date_column], column=params.date_column)
    return vas_decimal_comma(clinical[params.vas_column], params.decimal_comma, column=params.vas_column)


def _copied_columns(clinical: pd.DataFrame, params: LinkParams) -> list[str]:
    """The clinical columns the linked table carries (all but the id and VAS columns)."""
    return [c for c in clinical.columns if c not in (params.id_column, params.vas_column)]


def _check_columns(patients: pd.DataFrame, clinical: pd.DataFrame, params: LinkParams) -> None:
    if "patient_id" not in patients.columns:
        raise LinkError(
            f"imaging table has no 'patient_id' column (columns: {list(patients.columns)}); "
            "pass the patients.csv written by spinemri measure/run"
        )
    _check_clinical_columns(clinical, params)


def _check_clinical_columns(clinical: pd.DataFrame, params: LinkParams) -> None:
    need = [params.id_column, params.vas_column] + ([params.date_column] if params.date_column else [])
    flags = {
        params.id_column: "--id-column",
        params.vas_column: "--vas-column",
        params.date_column: "--date-column",
    }
    for col in need:
        if col not in clinical.columns:
            raise LinkError(
                f"clinical table has no column {col!r} (columns: {list(clinical.columns)}); "
                f"name the right one with {flags[col]}"
            )


def _check_vas(value: Any, params: LinkParams, decimal_comma: bool = False) -> tuple[bool, float, str]:
    """(ok, value, reason) for one VAS cell; never coerces a bad value."""
    if _is_missing(value):
        return False, math.nan, "missing"
    if isinstance(value, (bool, np.bool_)):
        return False, math.nan, f"is not a number ({value!r})"
    if isinstance(value, str):
        text = value.strip()
        if decimal_comma:
            if not is_decimal_comma_number(text):
                hint = (
                    " (a decimal point, but the table is read with decimal commas)"
                    if _NUMBER.fullmatch(text)
                    else ""
                )
                return False, math.nan, f"is not a number ({value!r}){hint}"
            text = text.replace(",", ".")
        elif not _NUMBER.fullmatch(text):  # float() alone would also take "1_0" (= 10) and non-ASCII digits
            hint = (
                " (a decimal comma: pass decimal_comma=True, CLI --decimal-comma, to read it so)"
                if "," in text and is_decimal_comma_number(text)
                else ""
            )
            return False, math.nan, f"is not a number ({value!r}){hint}"
        number = float(text)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False, math.nan, f"is not a number ({value!r})"
    if not math.isfinite(number):
        return False, math.nan, f"is not a finite number ({value!r})"
    if not (params.vas_min <= number <= params.vas_max):
        return False, math.nan, f"= {number:g} is outside {params.vas_min:g}-{params.vas_max:g}"
    return True, number, ""


def _scan_dates(
    patients: pd.DataFrame, img_ids: list[str], scan_dates: Any, params: LinkParams
) -> dict[str, Any]:
    if scan_dates is None:
        if params.scan_date_column not in patients.columns:
            return {}
        scan_dates = dict(zip(img_ids, patients[params.scan_date_column], strict=True))
    elif isinstance(scan_dates, pd.Series):
        scan_dates = {_id_text(k): v for k, v in scan_dates.items()}
    else:
        scan_dates = {_id_text(k): v for k, v in dict(scan_dates).items()}
    out = {}
    for k, v in scan_dates.items():
        if _is_missing(v):
            continue
        d = pd.to_datetime(str(v) if not isinstance(v, (pd.Timestamp, np.datetime64)) else v, errors="coerce")
        if pd.isna(d):
            raise LinkError(f"scan date of imaging patient {k!r} is not a date ({v!r}); use YYYY-MM-DD")
        out[k] = d
    return out


def _row_sort_key(clinical: pd.DataFrame, r: int) -> tuple[str, ...]:
    """Order-independent identity of a clinical row (its values as text)."""
    return tuple("" if _is_missing(v) else str(v) for v in clinical.iloc[r].tolist())


def _build_linked(
    patients: pd.DataFrame,
    clinical: pd.DataFrame,
    img_ids: list[str],
    match: dict[str, tuple[str, str]],
    status: dict[str, str],
    chosen: dict[str, int],
    vas_value: dict[str, float],
    days: dict[str, float],
    params: LinkParams,
    dropped: tuple[str, ...] = (),
) -> pd.DataFrame:
    linked = patients.copy().reset_index(drop=True)
    added = ["clinical_id", "link_match", "vas"] + (["vas_days_from_scan"] if params.date_column else [])
    taken = set(linked.columns) | set(added)
    extra = [c for c in _copied_columns(clinical, params) if c not in dropped]
    rename = {c: (params.collision_prefix + c if c in taken else c) for c in extra}
    for col in ("clinical_id", "link_match", "vas", "vas_days_from_scan"):
        if col in linked.columns and col in added:
            raise LinkError(f"imaging table already has a column {col!r}; was it linked already?")
    linked["clinical_id"] = pd.array([match[i][0] if i in match else None for i in img_ids], dtype="string")
    linked["link_match"] = [status[i] for i in img_ids]
    linked["vas"] = np.array([vas_value.get(i, np.nan) for i in img_ids], dtype=float)
    if params.date_column:
        linked["vas_days_from_scan"] = np.array([days.get(i, np.nan) for i in img_ids], dtype=float)
    rows = [chosen.get(i) for i in img_ids]
    for c in extra:
        src = clinical[c]
        values = [src.iloc[r] if r is not None else None for r in rows]
        linked[rename[c]] = pd.Series(values, dtype=object).infer_objects()
    return linked
