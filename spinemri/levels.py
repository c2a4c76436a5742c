"""Vertebral level names, regions and label schemes (integer label → level).

Level names are always strings: ``C1`` … ``C7``, ``T1`` … ``T12``, ``T13``
(rare), ``L1`` … ``L5``, ``L6`` (rare), ``S1`` (the sacrum as one level) and
``Co`` (coccyx). Integer label codes never appear outside this module: the
rest of spinemri receives levels.

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
    "resolve_scheme",
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
    """True when ``name`` is one of :data:`LEVELS`."""
    return isinstance(name, str) and name in _INDEX


def level_index(level: str) -> int:
    """Position of ``level`` in cranial → caudal order (C1 = 0)."""
    try:
        return _INDEX[level]
    except KeyError:
        raise LabelSchemeError(f"unknown vertebral level {level!r}; expected one of {', '.join(LEVELS)}") from None


def region_of(level: str) -> str:
    """Region of a level: ``cervical``, ``thoracic``, ``lumbar`` or ``sacral`` (S1 and Co)."""
    level_index(level)
    return "sacral" if level == "Co" else _REGION_OF_PREFIX[level[0]]


def sort_levels(levels: Iterable[str]) -> list[str]:
    """Levels sorted cranial → caudal."""
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
    """Level for a class name such as ``vertebrae_L1``, ``L1``, ``sacrum``; else None."""
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
                raise LabelSchemeError(f"label scheme {self.name!r}: label {label} must be positive (0 is background)")
            levels[label] = v
        if not levels:
            raise LabelSchemeError(f"label scheme {self.name!r} maps no label to a level")
        object.__setattr__(self, "levels", MappingProxyType(levels))
        object.__setattr__(self, "other", MappingProxyType({int(k): str(v) for k, v in dict(self.other).items()}))

    def level_of(self, label: int) -> str | None:
        """Level of ``label``, or None when the scheme does not map it."""
        return self.levels.get(int(label))

    def lookup_table(self, max_label: int) -> np.ndarray:
        """Array ``t`` of length ``max_label + 1`` with ``t[label]`` = level index, -1 if unmapped."""
        table = np.full(int(max_label) + 1, -1, dtype=np.int64)
        for label, level in self.levels.items():
            if label <= max_label:
                table[label] = _INDEX[level]
        return table

    def split_labels(self, labels: Iterable[int]) -> tuple[dict[int, str], list[int]]:
        """Split present labels into ``({label: level}, [unmapped labels])`` (background 0 dropped)."""
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

# TotalSegmentator 'total' (v2): 25 sacrum, 26 vertebrae_S1, 27 L5 ... 50 C1 (map_to_binary.py).
_TOTALSEG = LabelScheme(
    "totalseg",
    {25: "S1", 26: "S1", **_range_map(27, list(reversed(_C + _T + _L)))},
    "TotalSegmentator totalsegmentator/map_to_binary.py, class_map['total'] (v2): "
    "25 sacrum, 26 vertebrae_S1, 27 vertebrae_L5 ... 50 vertebrae_C1",
    other={79: "spinal_cord"},
)

_TOTALSEG_MR = LabelScheme(
    "totalseg_mr",
    {1: "S1", **_range_map(2, list(reversed(_C + _T + _L)))},
    "TotalSegmentator totalsegmentator/map_to_binary.py, class_map['vertebrae_mr']: "
    "1 sacrum, 2 vertebrae_L5 ... 25 vertebrae_C1",
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

#: SPIDER (van der Graaf et al., Sci Data 2024;11:264): vertebrae 1-25, 100 canal,
#: 101-125 partially visible vertebrae (same numbering + 100), 201-225 discs.
#: The level of vertebra label 1 is not fixed by a single published table in a
#: way all sources agree on, so the built-in ``spider`` scheme numbers from the
#: most caudal vertebra (L5 = 1, see docs/label-schemes.md) and
#: :func:`resolve_scheme` checks that the anatomy (label numbers increasing
#: cranially) agrees before using it.
SPIDER_NOTE = (
    "SPIDER numbers vertebrae from the most caudal one visible (1 = L5, 2 = L4, ...); "
    "labels 101-125 are the same vertebrae partially visible, 201-225 discs, 100 the canal"
)
_SPIDER_ORDER = list(reversed(_C + _T + _L))  # L5, L4, ..., C1
_SPIDER = LabelScheme(
    "spider",
    {**_range_map(1, _SPIDER_ORDER), **_range_map(101, _SPIDER_ORDER)},
    "SPIDER lumbar MRI, van der Graaf et al., Sci Data 2024;11:264: " + SPIDER_NOTE,
    other={100: "spinal_canal", **{k: "disc" for k in range(201, 226)}},
)

BUILTIN_SCHEMES: Mapping[str, LabelScheme] = MappingProxyType(
    {s.name: s for s in (_VERSE, _TOTALSEG, _TOTALSEG_MR, _TOTALSPINESEG, _SPIDER)}
)


def scheme_from_mapping(mapping: Mapping[Any, Any], name: str = "user", source: str = "") -> LabelScheme:
    """A scheme from ``{label: level}``; values that are not levels (``disc``, ``canal``) become ``other``.

    Keys may be strings of integers (as in JSON).
    """
    levels: dict[int, str] = {}
    other: dict[int, str] = {}
    for k, v in mapping.items():
        try:
            label = int(k)
        except (TypeError, ValueError):
            raise LabelSchemeError(f"label scheme {name!r} ({source}): key {k!r} is not an integer label") from None
        lev = level_from_name(str(v))
        if lev is None:
            other[label] = str(v)
        else:
            levels[label] = lev
    return LabelScheme(name, levels, source, other)


def scheme_from_names(names: Mapping[int, str], name: str = "totalseg_names") -> LabelScheme:
    """A scheme from a label table carried by the mask file (TotalSegmentator header extension)."""
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
    """A :class:`LabelScheme` from a built-in name, a JSON/YAML file, a mapping or a scheme."""
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


def _direction_vote(mapped: Mapping[int, str], si_mm: Mapping[int, float]) -> float | None:
    """Spearman-like agreement between the scheme's level order and the anatomy.

    Returns the fraction of label pairs whose superior-inferior order agrees
    with the scheme's cranio-caudal order (1.0 = all agree), or None when
    fewer than two mapped labels have a position.
    """
    pts = [(level_index(lev), si_mm[lab]) for lab, lev in mapped.items() if lab in si_mm]
    pairs = agree = 0
    for a in range(len(pts)):
        for b in range(a + 1, len(pts)):
            if pts[a][0] == pts[b][0] or pts[a][1] == pts[b][1]:
                continue
            pairs += 1
            # cranial level (smaller index) must be superior (larger S coordinate)
            agree += (pts[a][0] < pts[b][0]) == (pts[a][1] > pts[b][1])
    return None if pairs == 0 else agree / pairs


def resolve_scheme(
    scheme: str | Path | LabelScheme | Mapping[Any, Any],
    labels: Iterable[int],
    *,
    names: Mapping[int, str] | None = None,
    si_mm: Mapping[int, float] | None = None,
) -> tuple[LabelScheme, str]:
    """Choose the label scheme for a mask and say why.

    Parameters
    ----------
    scheme : str, path, LabelScheme or mapping
        ``"auto"`` to guess, else anything :func:`get_scheme` accepts.
    labels : iterable of int
        Labels present in the mask (0 is ignored).
    names : mapping of int to str, optional
        A label table stored in the mask file (TotalSegmentator); when given
        and ``scheme`` is ``auto``, names beat numbers.
    si_mm : mapping of int to float, optional
        World superior coordinate (RAS z, mm) of each label's centroid, used
        to settle schemes that share label numbers but run in opposite
        directions (VerSe vs TotalSegmentator MR vs SPIDER).

    Returns
    -------
    (LabelScheme, str)
        The scheme and a one-line reason.

    Raises
    ------
    LabelSchemeError
        When no vertebral label is recognised, or ``auto`` cannot decide.
    """
    present = sorted({int(x) for x in labels} - {0})
    if not present:
        raise LabelSchemeError("the mask holds no label other than background 0")
    if str(scheme) != "auto":
        chosen = get_scheme(scheme)
        mapped, _ = chosen.split_labels(present)
        if not mapped:
            raise LabelSchemeError(
                f"none of the mask's labels {present[:20]} is a vertebra in scheme {chosen.name!r}; "
                "check --scheme (auto guesses from the labels present)"
            )
        return chosen, f"scheme {chosen.name!r} as requested"

    if names:
        from_names = scheme_from_names(names)
        mapped, _ = from_names.split_labels(present)
        if mapped:
            return from_names, "label names stored in the mask header (TotalSegmentator label table)"

    candidates: list[tuple[float, LabelScheme, str]] = []
    for cand in BUILTIN_SCHEMES.values():
        mapped, unmapped = cand.split_labels(present)
        unknown = [u for u in unmapped if u not in cand.other]
        if not mapped or unknown:
            continue
        vote = _direction_vote(mapped, si_mm) if si_mm else None
        if vote is not None and vote < 0.75:
            continue
        score = vote if vote is not None else 0.5
        candidates.append((score, cand, "" if vote is None else f"{vote:.0%} of label pairs in anatomical order"))
    if not candidates:
        raise LabelSchemeError(
            f"labels {present[:30]} fit no built-in scheme ({', '.join(BUILTIN_SCHEMES)}) "
            "with the anatomy; pass --scheme NAME or a JSON/YAML file mapping label to level"
        )
    best = max(c[0] for c in candidates)
    top = [c for c in candidates if c[0] == best]
    if len(top) > 1:
        # schemes that agree on every present label are interchangeable
        first = top[0][1].split_labels(present)[0]
        if any(c[1].split_labels(present)[0] != first for c in top[1:]):
            raise LabelSchemeError(
                f"labels {present[:30]} fit several schemes ({', '.join(c[1].name for c in top)}) and the "
                "anatomy does not settle it; pass --scheme explicitly"
            )
    _, chosen, why = top[0]
    reason = f"auto: labels {present[0]}..{present[-1]} fit scheme {chosen.name!r}"
    return chosen, reason + (f" ({why})" if why else "")
