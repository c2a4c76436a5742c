"""Choosing the label scheme of a mask: ``auto``, explicit schemes, and the anatomy checks.

:func:`resolve_scheme` takes the scheme the user asked for (a name, a file, a mapping or
``auto``) and the labels present in a mask, and returns the scheme to use with the reason it
was chosen; :func:`resolve_scheme_for_mask` does the same from a mask Volume, reading the
labels, their cranio-caudal positions (world RAS z) and any label names the file carries.
The anatomy confirms or refutes a scheme by the superior-inferior order of its levels
(:data:`ANATOMY_AGREEMENT`). The schemes themselves are in :mod:`spinemri.levels`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import LabelSchemeError
from .levels import (
    BUILTIN_SCHEMES,
    SPIDER_SPECIFIC_LABELS,
    LabelScheme,
    get_scheme,
    level_index,
    scheme_from_names,
)
from .volume import Volume, label_centroids_si

__all__ = ["ANATOMY_AGREEMENT", "resolve_scheme", "resolve_scheme_for_mask"]


def _direction_vote(mapped: Mapping[int, str], si_mm: Mapping[int, float]) -> float | None:
    """Agreement between a scheme's level order and the anatomy.

    Returns the fraction of label pairs (of different levels and different
    heights) whose superior-inferior order agrees with the scheme's
    cranio-caudal order (1.0 = all agree, 0.0 = exactly reversed), or None
    when no such pair exists.
    """
    pts = [(level_index(lev), float(si_mm[lab])) for lab, lev in mapped.items() if lab in si_mm]
    pairs = agree = 0
    for a in range(len(pts)):
        for b in range(a + 1, len(pts)):
            if pts[a][0] == pts[b][0] or pts[a][1] == pts[b][1]:
                continue
            pairs += 1
            # the cranial level (smaller index) must be superior (larger RAS z)
            agree += (pts[a][0] < pts[b][0]) == (pts[a][1] > pts[b][1])
    return None if pairs == 0 else agree / pairs


#: Smallest fraction of label pairs in anatomical order for the anatomy to
#: confirm a scheme (and largest fraction, 1 - this, for it to refute one).
ANATOMY_AGREEMENT = 0.75


def _show(labels: list[int]) -> str:
    return str(labels[:20])[:-1] + (", ...]" if len(labels) > 20 else "]")


def _spider_check(mapped: Mapping[int, str], si_mm: Mapping[int, float] | None) -> tuple[bool, str]:
    """Does the anatomy settle SPIDER's numbering direction? ``(ok, why)``."""
    vote = _direction_vote(mapped, si_mm) if si_mm else None
    if vote is None:
        return False, (
            "SPIDER's own documentation gives two opposite numbering directions (1 = L5, and "
            "'24 = L5'), and the anatomy cannot settle it here "
            + (
                "(no label centroids were given)"
                if not si_mm
                else "(fewer than two vertebrae at different heights)"
            )
        )
    if vote < ANATOMY_AGREEMENT:
        return False, (
            f"the labels do not increase cranially as SPIDER's definition (1 = L5) requires: only {vote:.0%} "
            "of label pairs agree with the anatomy"
        )
    return True, f"{vote:.0%} of label pairs in anatomical order"


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
        ``"auto"`` to guess; ``"totalseg"`` for TotalSegmentator (its header
        names, else CT ``total`` or MR ``vertebrae_mr`` ids, whichever fits);
        else anything :func:`get_scheme` accepts.
    labels : iterable of int
        Labels present in the mask (0 is ignored).
    names : mapping of int to str, optional
        A label table stored in the mask file (TotalSegmentator header
        extension); for ``auto`` and ``totalseg``, names beat numbers.
    si_mm : mapping of int to float, optional
        World superior coordinate (RAS z, mm) of each label's centroid
        (:func:`spinemri.volume.label_centroids_si`). It settles schemes
        that share label numbers but run in opposite directions (VerSe runs
        cranial -> caudal; TotalSegmentator MR and SPIDER caudal -> cranial).

    Returns
    -------
    (LabelScheme, str)
        The scheme and a one-line reason (what was chosen and why).

    Raises
    ------
    LabelSchemeError
        The mask holds only background; no label is a vertebra in the
        requested scheme; ``auto`` finds no scheme, or several that the
        anatomy does not separate; ``spider`` when the anatomy does not
        confirm SPIDER's numbering direction.

    Notes
    -----
    ``auto``: (1) label names in the header that name levels win; (2) else
    every built-in scheme that knows all present labels (vertebrae or known
    non-vertebral labels such as discs) and maps at least one vertebra is a
    candidate; ``spider`` only when a SPIDER-specific label (100, 101-125,
    201-225) is present and the anatomy confirms its direction; (3) with
    centroids, candidates whose order runs against the anatomy (fewer than
    75 % of label pairs agree) are dropped; (4) the remaining candidates
    must agree on the level of every present label, else the choice is
    refused (pass ``--scheme`` or a JSON/YAML mapping).
    """
    present = sorted({int(x) for x in labels} - {0})
    if not present:
        raise LabelSchemeError(
            "the mask holds no label other than background 0; check that the right file was given as the mask"
        )
    key = scheme if isinstance(scheme, str) else None
    if key == "auto":
        return _resolve_auto(present, names, si_mm)
    if key == "totalseg":
        if names:
            try:
                from_names: LabelScheme | None = scheme_from_names(names)
            except LabelSchemeError:  # the table names no level at all
                from_names = None
            if from_names is not None and from_names.split_labels(present)[0]:
                return (
                    from_names,
                    "scheme 'totalseg' as requested, using the label names stored in the mask header",
                )
        return _pick(
            present, [BUILTIN_SCHEMES["totalseg"], BUILTIN_SCHEMES["totalseg_mr"]], si_mm, asked="totalseg"
        )
    chosen = get_scheme(scheme)
    mapped, _ = chosen.split_labels(present)
    if not mapped:
        raise LabelSchemeError(
            f"none of the mask's labels {_show(present)} is a vertebra in scheme {chosen.name!r}; "
            "check --scheme (auto guesses from the labels present)"
        )
    if chosen is BUILTIN_SCHEMES["spider"]:
        ok, why = _spider_check(mapped, si_mm)
        if not ok:
            raise LabelSchemeError(
                f"scheme 'spider' refused for labels {_show(present)}: {why}. Pass a JSON/YAML file mapping "
                "each label to its level instead (see docs/label-schemes.md)"
            )
        return chosen, f"scheme 'spider' as requested ({why})"
    reason = f"scheme {chosen.name!r} as requested"
    vote = _direction_vote(mapped, si_mm) if si_mm else None
    if vote is not None and vote < ANATOMY_AGREEMENT:
        reason += f"; note: only {vote:.0%} of label pairs are in anatomical order with this scheme"
    return chosen, reason


def _pick(
    present: list[int],
    schemes: Iterable[LabelScheme],
    si_mm: Mapping[int, float] | None,
    *,
    asked: str,
) -> tuple[LabelScheme, str]:
    """The candidate scheme the labels and the anatomy single out, or LabelSchemeError."""
    candidates: list[tuple[LabelScheme, str]] = []
    refused: list[str] = []
    for cand in schemes:
        mapped, unmapped = cand.split_labels(present)
        unknown = [u for u in unmapped if u not in cand.other]
        if not mapped or unknown:
            continue
        if cand is BUILTIN_SCHEMES["spider"]:
            ok, why = _spider_check(mapped, si_mm)
            if not ok:
                refused.append(f"spider ({why})")
                continue
            candidates.append((cand, why))
            continue
        vote = _direction_vote(mapped, si_mm) if si_mm else None
        if vote is not None and vote < ANATOMY_AGREEMENT:
            refused.append(f"{cand.name} (only {vote:.0%} of label pairs in anatomical order)")
            continue
        candidates.append((cand, "" if vote is None else f"{vote:.0%} of label pairs in anatomical order"))
    label_text = f"labels {_show(present)}"
    if not candidates:
        detail = f"; ruled out by the anatomy: {'; '.join(refused)}" if refused else ""
        family = "" if asked == "auto" else f" of {asked!r}"
        raise LabelSchemeError(
            f"{label_text} fit no built-in scheme{family}{detail}. "
            f"Pass --scheme with one of {', '.join(BUILTIN_SCHEMES)}, "
            "or a JSON/YAML file mapping label to level"
        )
    # a scheme that names more of the present labels as vertebrae beats one that explains them as
    # other structures (TotalSegmentator's organ ids overlap VerSe's vertebra ids)
    n_mapped = {c[0].name: len(c[0].split_labels(present)[0]) for c in candidates}
    best = max(n_mapped.values())
    fewer = [c[0].name for c in candidates if n_mapped[c[0].name] < best]
    candidates = [c for c in candidates if n_mapped[c[0].name] == best]
    if fewer:
        refused.append(f"{', '.join(fewer)} (map fewer of the labels to vertebrae)")
    first = candidates[0][0].split_labels(present)[0]
    distinct = [c for c in candidates if c[0].split_labels(present)[0] != first]
    if distinct:
        names_ = ", ".join(c[0].name for c in candidates)
        why = (
            "the anatomy does not settle it (a single vertebra label, or labels at the same height)"
            if si_mm
            else "no label centroids were given to settle it"
        )
        raise LabelSchemeError(
            f"{label_text} fit several schemes that give them different levels ({names_}) and {why}; "
            "pass --scheme explicitly or a JSON/YAML file mapping label to level"
        )
    chosen, why = candidates[0]
    others = [c[0].name for c in candidates[1:]]
    reason = f"{asked}: {label_text} fit scheme {chosen.name!r}"
    if why:
        reason += f" ({why})"
    if others:
        reason += f"; {', '.join(others)} give the same levels"
    if refused:
        reason += f"; ruled out: {'; '.join(refused)}"
    ignored = chosen.split_labels(present)[1]
    if ignored:
        reason += f"; non-vertebral labels ignored: {_show(ignored)}"
    return chosen, reason


def _resolve_auto(
    present: list[int], names: Mapping[int, str] | None, si_mm: Mapping[int, float] | None
) -> tuple[LabelScheme, str]:
    if names:
        try:
            from_names = scheme_from_names(names)
            mapped, _ = from_names.split_labels(present)
        except LabelSchemeError:  # the table names no level at all
            mapped = {}
        if mapped:
            return from_names, (
                f"auto: label names stored in the mask header (TotalSegmentator label table) name "
                f"{len(mapped)} of the {len(present)} labels present as vertebrae"
            )
    schemes = [s for s in BUILTIN_SCHEMES.values() if s is not BUILTIN_SCHEMES["spider"]]
    if SPIDER_SPECIFIC_LABELS.intersection(present):
        schemes.append(BUILTIN_SCHEMES["spider"])
    return _pick(present, schemes, si_mm, asked="auto")


def resolve_scheme_for_mask(
    scheme: str | Path | LabelScheme | Mapping[Any, Any], mask: Volume
) -> tuple[LabelScheme, str]:
    """:func:`resolve_scheme` for a mask Volume: labels, header names and centroids taken from it.

    Parameters
    ----------
    scheme : str, path, LabelScheme or mapping
        As in :func:`resolve_scheme`.
    mask : Volume of shape (I, J, K)
        Non-negative integer labels; ``mask.meta["label_names"]`` is used
        when present.

    Returns
    -------
    (LabelScheme, str)

    Raises
    ------
    LabelSchemeError
        As :func:`resolve_scheme`, with the mask's ``meta["source"]`` file
        named first in the message.
    """
    si_mm = label_centroids_si(mask)
    names = mask.meta.get("label_names")
    try:
        return resolve_scheme(scheme, si_mm.keys(), names=dict(names) if names else None, si_mm=si_mm)
    except LabelSchemeError as exc:
        source = mask.meta.get("source")
        if source:
            raise LabelSchemeError(f"{source}: {exc}") from exc
        raise
