"""Vertebral level names, regions and label schemes (integer label → level).

Level names are always strings: ``C1`` … ``C7``, ``T1`` … ``T12``, ``T13``
(rare), ``L1`` … ``L5``, ``L6`` (rare), ``S1`` (the sacrum as one level) and
``Co`` (coccyx). Integer label codes never appear outside this module: the
rest of spinemri receives levels.

Choosing a scheme for a mask (``auto`` and the anatomy checks) is
:mod:`spinemri.scheme_choice`.

Built-in schemes (sources in docs/label-schemes.md and ../shared/LABELS.md):

``verse``
    VerSe (anjany/verse README and ``utils/data_utilities.py`` ``v_dict``):
    1-7 C1-C7, 8-19 T1-T12, 20-24 L1-L5, 25 L6, 26 sacrum, 27 coccyx, 28 T13.
``totalseg``
    TotalSegmentator's CT ``total`` task (v2 ids 25-50) and, when the mask
    carries its label table in a NIfTI header extension, its class names.
``totalseg_mr``
    TotalSegmentator's ``vertebrae_mr`` task: 1 sacrum, 2-6 L5-L1,
    7-18 T12-T1, 19-25 C7-C1 (caudal → cranial).
``totalspineseg``
    TotalSpineSeg (neuropoly/totalspineseg ``tss_map.json``): 11-17 C1-C7,
    21-32 T1-T12, 41-45 L1-L5, 50 sacrum.
``spider``
    SPIDER lumbar MRI (van der Graaf et al., Sci Data 2024): see
    :data:`SPIDER_NOTE`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .errors import LabelSchemeError

__all__ = [
    "LEVELS",
    "REGIONS",
    "level_index",
    "region_of",
    "sort_levels",
    "is_level",
    "LabelScheme",
    "BUILTIN_SCHEMES",
    "get_scheme",
    "scheme_from_mapping",
    "scheme_from_names",
    "level_from_name",
    "SPIDER_NOTE",
    "TOTALSEG_SOURCE",
]

#: All level names in cranial → caudal order.
LEVELS: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 14)),
    *(f"L{i}" for i in range(1, 7)),
    "S1",
    "Co",
)
_INDEX = {name: i for i, name in enumerate(LEVELS)}

#: Region names in cranial → caudal order.
REGIONS: tuple[str, ...] = ("cervical", "thoracic", "lumbar", "sacral")
_REGION_OF_PREFIX = {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}


def is_level(name: object) -> bool:
    """True when ``name`` is one of :data:`LEVELS`.

    Parameters
    ----------
    name : object
        Any value; only a ``str`` spelled exactly as a level (``"L1"``, not
        ``"l1"`` or ``"vertebrae_L1"``) qualifies.

    Returns
    -------
    bool
        True for a level name, False for anything else (no exception).
    """
    return isinstance(name, str) and name in _INDEX


def level_index(level: str) -> int:
    """Position of ``level`` in cranial → caudal order (C1 = 0).

    Parameters
    ----------
    level : str
        A level name from :data:`LEVELS`, e.g. ``"T12"``.

    Returns
    -------
    int
        Index into :data:`LEVELS` (C1 = 0, T1 = 7, L1 = 20, S1 = 26, Co = 27).

    Raises
    ------
    LabelSchemeError
        If ``level`` is not a level name.
    """
    try:
        return _INDEX[level]
    except KeyError:
        raise LabelSchemeError(
            f"unknown vertebral level {level!r}; expected one of {', '.join(LEVELS)}"
        ) from None


def region_of(level: str) -> str:
    """Region of a level: ``cervical``, ``thoracic``, ``lumbar`` or ``sacral`` (S1 and Co).

    Parameters
    ----------
    level : str
        A level name from :data:`LEVELS`.

    Returns
    -------
    str
        One of :data:`REGIONS`; T13 is thoracic, L6 lumbar, S1 and Co sacral.

    Raises
    ------
    LabelSchemeError
        If ``level`` is not a level name.
    """
    level_index(level)
    return "sacral" if level == "Co" else _REGION_OF_PREFIX[level[0]]


def sort_levels(levels: Iterable[str]) -> list[str]:
    """Levels sorted cranial → caudal.

    Parameters
    ----------
    levels : iterable of str
        Level names from :data:`LEVELS` (duplicates are kept).

    Returns
    -------
    list of str
        The same names ordered by :func:`level_index` (C1 first, Co last).

    Raises
    ------
    LabelSchemeError
        If any name is not a level.
    """
    return sorted(levels, key=level_index)


# --- level names as written by other tools ------------------------------------------------

_NAME_ALIASES = {
    "sacrum": "S1",
    "vertebrae_s1": "S1",
    "s1": "S1",
    "coccyx": "Co",
    "co": "Co",
}


def level_from_name(name: str) -> str | None:
    """Level for a class name such as ``vertebrae_L1``, ``L1``, ``sacrum``; else None.

    Parameters
    ----------
    name : str
        A class name as written by a segmentation tool or a scheme file;
        case and surrounding white space are ignored, a ``vertebrae_``
        prefix is dropped, ``sacrum``/``s1`` map to S1 and ``coccyx``/``co``
        to Co.

    Returns
    -------
    str or None
        The level name from :data:`LEVELS`, or None when ``name`` names no
        vertebra (``disc``, ``spinal_canal``, ...).
    """
    key = name.strip().lower()
    if key in _NAME_ALIASES:
        return _NAME_ALIASES[key]
    if key.startswith("vertebrae_"):
        key = key[len("vertebrae_") :]
    cand = key[:1].upper() + key[1:]
    return cand if cand in _INDEX else None


# --- schemes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelScheme:
    """A mapping from integer mask labels to vertebral levels.

    Parameters
    ----------
    name : str
        Short name (``verse``, ``totalseg``, a file stem, ...).
    levels : mapping of int to str
        Label → level. Several labels may map to one level (they are merged).
    source : str
        Where the mapping comes from (citation or file path).
    other : mapping of int to str, optional
        Known labels that are not vertebrae (discs, canal, cord); ignored by
        measurement and reported once.
    """

    name: str
    levels: Mapping[int, str]
    source: str = ""
    other: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        levels: dict[int, str] = {}
        for k, v in dict(self.levels).items():
            if not is_level(v):
                raise LabelSchemeError(
                    f"label scheme {self.name!r} maps label {k} to {v!r}, which is not a level "
                    f"({', '.join(LEVELS)})"
                )
            try:
                label = int(k)
            except (TypeError, ValueError):
                raise LabelSchemeError(f"label scheme {self.name!r}: label {k!r} is not an integer") from None
            if label <= 0:
                raise LabelSchemeError(
                    f"label scheme {self.name!r}: label {label} must be positive (0 is background)"
                )
            levels[label] = v
        if not levels:
            raise LabelSchemeError(f"label scheme {self.name!r} maps no label to a level")
        object.__setattr__(self, "levels", MappingProxyType(levels))
        object.__setattr__(
            self, "other", MappingProxyType({int(k): str(v) for k, v in dict(self.other).items()})
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (LabelScheme, (self.name, dict(self.levels), self.source, dict(self.other)))

    def level_of(self, label: int) -> str | None:
        """Level of ``label``, or None when the scheme does not map it.

        Parameters
        ----------
        label : int
            An integer mask label (converted with ``int``).

        Returns
        -------
        str or None
            The level name, or None for background, non-vertebral
            (``other``) or unknown labels.
        """
        return self.levels.get(int(label))

    def lookup_table(self, max_label: int) -> np.ndarray:
        """Array ``t`` of length ``max_label + 1`` with ``t[label]`` = level index, -1 if unmapped.

        Parameters
        ----------
        max_label : int
            Largest mask label the table must cover (e.g. ``mask.max()``);
            scheme labels above it are left out.

        Returns
        -------
        ndarray of shape (max_label + 1,), int64
            ``t[label]`` is :func:`level_index` of the label's level, or -1
            for background 0 and for labels the scheme does not map, so
            ``t[mask]`` turns a label map into level indices.
        """
        table = np.full(int(max_label) + 1, -1, dtype=np.int64)
        for label, level in self.levels.items():
            if label <= max_label:
                table[label] = _INDEX[level]
        return table

    def split_labels(self, labels: Iterable[int]) -> tuple[dict[int, str], list[int]]:
        """Split present labels into ``({label: level}, [unmapped labels])`` (background 0 dropped).

        Parameters
        ----------
        labels : iterable of int
            Labels present in a mask (duplicates allowed, any order).

        Returns
        -------
        mapped : dict of int to str
            Each distinct label the scheme maps, with its level, in
            ascending label order.
        unmapped : list of int
            The distinct non-zero labels the scheme does not map to a level
            (including its ``other`` labels), ascending.
        """
        mapped: dict[int, str] = {}
        unmapped: list[int] = []
        for lab in sorted({int(x) for x in labels}):
            if lab == 0:
                continue
            lev = self.levels.get(lab)
            if lev is None:
                unmapped.append(lab)
            else:
                mapped[lab] = lev
        return mapped, unmapped


def _range_map(start: int, names: Iterable[str]) -> dict[int, str]:
    return {start + i: n for i, n in enumerate(names)}


_C = [f"C{i}" for i in range(1, 8)]
_T = [f"T{i}" for i in range(1, 13)]
_L = [f"L{i}" for i in range(1, 6)]

_VERSE = LabelScheme(
    "verse",
    {**_range_map(1, _C + _T + _L), 25: "L6", 26: "S1", 27: "Co", 28: "T13"},
    "VerSe: anjany/verse README.md and utils/data_utilities.py v_dict",
)

#: Where the TotalSegmentator integer maps were read (docs/label-schemes.md).
TOTALSEG_SOURCE = (
    "wasserth/TotalSegmentator totalsegmentator/map_to_binary.py "
    "(commit 0275d3046117a9615a9876e6e4eefd5156843f1c)"
)

# 'total' (CT, v2): 25 sacrum, 26 vertebrae_S1, 27 vertebrae_L5 ... 50 vertebrae_C1; every other
# class of the task (organs 1-24, 51-117; 79 spinal_cord) is a known non-vertebral label.
_TOTALSEG = LabelScheme(
    "totalseg",
    {25: "S1", 26: "S1", **_range_map(27, list(reversed(_C + _T + _L)))},
    TOTALSEG_SOURCE + ", class_map['total']: 25 sacrum, 26 vertebrae_S1, 27 vertebrae_L5 ... 50 vertebrae_C1",
    other={
        **{k: "non-vertebral TotalSegmentator class" for k in [*range(1, 25), *range(51, 118)]},
        79: "spinal_cord",
    },
)

# 'vertebrae_mr' (MR): 1 sacrum, 2 vertebrae_L5 ... 25 vertebrae_C1 (caudal -> cranial).
_TOTALSEG_MR = LabelScheme(
    "totalseg_mr",
    {1: "S1", **_range_map(2, list(reversed(_C + _T + _L)))},
    TOTALSEG_SOURCE + ", class_map['vertebrae_mr']: 1 sacrum, 2 vertebrae_L5 ... 25 vertebrae_C1",
)

_TOTALSPINESEG = LabelScheme(
    "totalspineseg",
    {**_range_map(11, _C), **_range_map(21, _T), **_range_map(41, _L), 50: "S1"},
    "TotalSpineSeg: neuropoly/totalspineseg README 'List of Classes' and resources/labels_maps/tss_map.json",
    other={
        1: "spinal_cord",
        2: "spinal_canal",
        **{k: "disc" for k in [*range(63, 68), 71, *range(72, 83), 91, *range(92, 96), 100]},
    },
)

#: SPIDER (van der Graaf et al., Sci Data 2024;11:264). The dataset's own
#: interface definition (grand-challenge.org algorithm "SPIDER Baseline IIS",
#: output "Sagittal spine MR segmentation") reads: 1-25 vertebrae "numbered
#: from the bottom (i.e. L5 = 1)", 100 spinal canal, 101-125 partially visible
#: vertebrae, 201-225 discs "also numbered from the bottom, i.e. L5/S1 = 201".
#: The prose summary of the same page says the opposite ("24 being the lowest
#: lumbar vertebra (L5)"), and "from the bottom" counts from the lowest
#: *lumbar* vertebra, so a transitional L6 or sacralised L5 shifts every level.
#: The ``spider`` scheme therefore follows the interface definition and is
#: used only when the anatomy confirms that label numbers increase cranially
#: (:func:`resolve_scheme` refuses otherwise). docs/label-schemes.md has the citations.
SPIDER_NOTE = (
    "SPIDER numbers vertebrae from the bottom (1 = L5, 2 = L4, ...; 101-125 the same vertebrae "
    "partially visible), 201-225 discs (201 = L5/S1), 100 the spinal canal"
)
SPIDER_SPECIFIC_LABELS = frozenset([100, *range(101, 126), *range(201, 226)])
_SPIDER_ORDER = list(reversed(_C + _T + _L))  # L5, L4, ..., C1
_SPIDER = LabelScheme(
    "spider",
    {**_range_map(1, _SPIDER_ORDER), **_range_map(101, _SPIDER_ORDER)},
    "SPIDER lumbar MRI, van der Graaf et al., Sci Data 2024;11:264; label definition of the "
    "grand-challenge algorithm 'SPIDER Baseline IIS': " + SPIDER_NOTE,
    other={100: "spinal_canal", **{k: "disc" for k in range(201, 226)}},
)

BUILTIN_SCHEMES: Mapping[str, LabelScheme] = MappingProxyType(
    {s.name: s for s in (_VERSE, _TOTALSEG, _TOTALSEG_MR, _TOTALSPINESEG, _SPIDER)}
)


def scheme_from_mapping(mapping: Mapping[Any, Any], name: str = "user", source: str = "") -> LabelScheme:
    """A scheme from ``{label: level}``; values that are not levels (``disc``, ``canal``) become ``other``.

    Keys may be strings of integers (as in JSON).

    Parameters
    ----------
    mapping : mapping
        Label (int, or a string of an int) to a level or class name; values
        are read with :func:`level_from_name` (``"vertebrae_L1"``, ``"L1"``,
        ``"sacrum"``), anything else is a non-vertebral label.
    name : str, default "user"
        Name of the scheme.
    source : str, default ""
        Where the mapping comes from (file path or citation), for messages
        and provenance.

    Returns
    -------
    LabelScheme
        The vertebral labels as ``levels``, the others as ``other``.

    Raises
    ------
    LabelSchemeError
        If a key is not an integer, or no value names a level.
    """
    levels: dict[int, str] = {}
    other: dict[int, str] = {}
    for k, v in mapping.items():
        try:
            label = int(k)
        except (TypeError, ValueError):
            raise LabelSchemeError(
                f"label scheme {name!r} ({source}): key {k!r} is not an integer label"
            ) from None
        lev = level_from_name(str(v))
        if lev is None:
            other[label] = str(v)
        else:
            levels[label] = lev
    return LabelScheme(name, levels, source, other)


def scheme_from_names(names: Mapping[int, str], name: str = "totalseg_names") -> LabelScheme:
    """A scheme from a label table carried by the mask file (TotalSegmentator header extension).

    Parameters
    ----------
    names : mapping of int to str
        Label to class name as stored in the mask file, e.g.
        ``{27: "vertebrae_L5", 79: "spinal_cord"}``.
    name : str, default "totalseg_names"
        Name of the scheme.

    Returns
    -------
    LabelScheme
        As :func:`scheme_from_mapping`, with the source recorded as the mask
        file header.

    Raises
    ------
    LabelSchemeError
        If no class name is a vertebra.
    """
    return scheme_from_mapping(names, name=name, source="label names stored in the mask file header")


def _read_scheme_file(path: Path) -> LabelScheme:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LabelSchemeError(f"{path}: cannot read the label scheme file ({exc.strerror})") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise LabelSchemeError(f"{path}: not valid JSON/YAML ({exc})") from exc
    if isinstance(data, Mapping) and "labels" in data and isinstance(data["labels"], Mapping):
        data = data["labels"]
    if not isinstance(data, Mapping):
        raise LabelSchemeError(
            f"{path}: a label scheme file must hold a mapping of label to level, e.g. "
            '{"1": "C1", "20": "L1", "100": "canal"}'
        )
    return scheme_from_mapping(data, name=path.stem, source=str(path))


def get_scheme(scheme: str | Path | LabelScheme | Mapping[Any, Any]) -> LabelScheme:
    """A :class:`LabelScheme` from a built-in name, a JSON/YAML file, a mapping or a scheme.

    Parameters
    ----------
    scheme : str, Path, LabelScheme or mapping
        A name in :data:`BUILTIN_SCHEMES` (``verse``, ``totalseg``, ...), a
        path to a ``.json``/``.yaml``/``.yml`` file of label to level
        (optionally under a ``labels`` key), a ``{label: level}`` mapping, or
        a scheme (returned as is). ``auto`` is resolved by
        :func:`resolve_scheme`, not here.

    Returns
    -------
    LabelScheme
        The built-in, read or constructed scheme.

    Raises
    ------
    LabelSchemeError
        If the name is unknown, the file is missing, unreadable or not a
        mapping, or the mapping holds no level.
    """
    if isinstance(scheme, LabelScheme):
        return scheme
    if isinstance(scheme, Mapping):
        return scheme_from_mapping(scheme)
    key = str(scheme)
    if key in BUILTIN_SCHEMES:
        return BUILTIN_SCHEMES[key]
    path = Path(key)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise LabelSchemeError(f"{path}: label scheme file not found")
        return _read_scheme_file(path)
    raise LabelSchemeError(
        f"unknown label scheme {key!r}: use auto, {', '.join(BUILTIN_SCHEMES)}, or a JSON/YAML file "
        "mapping label to level"
    )
