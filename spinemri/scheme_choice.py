"""Choosing the label scheme of a mask: ``auto``, explicit schemes, and the anatomy checks.

:func:`resolve_scheme` takes the scheme the user asked for (a name, a file, a mapping or
``auto``) and the labels present in a mask, and returns the scheme to use with the reason it
was chosen; :func:`resolve_scheme_for_mask` does the same from a mask Volume, reading the
labels, their cranio-caudal positions (world RAS z) and any label names the file carries.
The anatomy confirms or refutes a scheme (:mod:`spinemri.anatomy_check`): the superior-inferior
order of its levels (:data:`ANATOMY_AGREEMENT`), vertebra sizes per region and their caudal
growth, and the shape of a sacrum. Labels that only count vertebrae (1..N from an annotation
tool) are resolved from a sacrum-shaped caudal label or refused (:func:`choose_scheme`). The
schemes themselves are in :mod:`spinemri.levels`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .anatomy_check import (
    ANATOMY_AGREEMENT,
    LabelShape,
    LevelCheck,
    check_levels,
    direction_vote,
    is_sacrum_shaped,
    label_shapes,
    level_heights,
    merge_shapes,
    size_fits,
    size_verdict,
)
from .errors import LabelSchemeError, SpinemriWarning
from .levels import (
    BUILTIN_SCHEMES,
    LEVELS,
    REGIONS,
    SPIDER_SPECIFIC_LABELS,
    LabelScheme,
    get_scheme,
    scheme_from_names,
)
from .volume import Volume

__all__ = [
    "ANATOMY_AGREEMENT",
    "SchemeChoice",
    "choose_scheme",
    "choose_scheme_for_mask",
    "resolve_scheme",
    "resolve_scheme_for_mask",
    "warn_if_contradicted",
]

_direction_vote = direction_vote  # the name used before the anatomy checks moved out


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


@dataclass(frozen=True)
class SchemeChoice:
    """The scheme chosen for a mask, why, and the anatomy's verdict on it (:func:`choose_scheme`).

    Parameters
    ----------
    scheme : LabelScheme
    reason : str
        One line: what was chosen and why.
    check : LevelCheck
        The anatomy check of the levels the scheme gives the mask's labels
        (``check.column`` is the vertebra table's ``level_check``).
    explicit : bool
        True when the user named the scheme (not ``auto``).
    """

    scheme: LabelScheme
    reason: str
    check: LevelCheck
    explicit: bool = False

    def __iter__(self) -> Any:
        """``scheme, reason = choice`` as for :func:`resolve_scheme`."""
        return iter((self.scheme, self.reason))


def resolve_scheme(
    scheme: str | Path | LabelScheme | Mapping[Any, Any],
    labels: Iterable[int],
    *,
    names: Mapping[int, str] | None = None,
    si_mm: Mapping[int, float] | None = None,
    shapes: Mapping[int, LabelShape] | None = None,
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
    shapes : mapping of int to LabelShape, optional
        :func:`spinemri.anatomy_check.label_shapes` of the mask: enables the
        size, caudal-growth and sacrum checks (and gives ``si_mm`` when that
        is not passed).

    Returns
    -------
    (LabelScheme, str)
        The scheme and a one-line reason (what was chosen and why).

    Raises
    ------
    LabelSchemeError
        The mask holds only background; no label is a vertebra in the
        requested scheme; ``auto`` finds no scheme, or several that the
        anatomy does not separate, or labels 1..N that only count vertebrae
        and that the anatomy does not place; ``spider`` when the anatomy does
        not confirm SPIDER's numbering direction.

    Notes
    -----
    ``auto``: (1) label names in the header that name levels win; (2) else
    every built-in scheme that knows all present labels (vertebrae or known
    non-vertebral labels such as discs) and maps at least one vertebra is a
    candidate; ``spider`` only when a SPIDER-specific label (100, 101-125,
    201-225) is present and the anatomy confirms its direction; (3) with
    centroids, candidates whose order runs against the anatomy (fewer than
    75 % of label pairs agree) are dropped, and with ``shapes`` also those
    whose vertebra sizes contradict their regions or shrink caudally
    (:func:`spinemri.anatomy_check.check_levels`); (4) labels exactly 1..N
    of vertebral size are counts, not codes (:func:`choose_scheme`); (5) the
    remaining candidates must agree on the level of every present label,
    else the choice is refused (pass ``--scheme`` or a JSON/YAML mapping).
    """
    choice = choose_scheme(scheme, labels, names=names, si_mm=si_mm, shapes=shapes)
    return choice.scheme, choice.reason


def choose_scheme(
    scheme: str | Path | LabelScheme | Mapping[Any, Any],
    labels: Iterable[int],
    *,
    names: Mapping[int, str] | None = None,
    si_mm: Mapping[int, float] | None = None,
    shapes: Mapping[int, LabelShape] | None = None,
) -> SchemeChoice:
    """:func:`resolve_scheme` with the anatomy's verdict on the levels chosen.

    Parameters
    ----------
    scheme, labels, names, si_mm, shapes
        As in :func:`resolve_scheme`.

    Returns
    -------
    SchemeChoice
        Scheme, reason, :class:`~spinemri.anatomy_check.LevelCheck` and
        whether the scheme was explicit. An explicit scheme is used even when
        the anatomy contradicts it (``check.status == "contradicted"``; see
        :func:`warn_if_contradicted`); ``auto`` never picks a contradicted one.

    Raises
    ------
    LabelSchemeError
        As :func:`resolve_scheme`.

    Notes
    -----
    Labels that count (exactly 1..N, N >= 2, no header names, at least one
    label of vertebral size): the numbering direction is read from world z
    (75 % of pairs). Cranial-first, VerSe (1 = C1) is accepted only when the
    sizes place the C3-C7 labels in the cervical range and at least one of
    them fits no other region; a sacrum-shaped last label
    (:func:`spinemri.anatomy_check.is_sacrum_shaped`) anchors the count
    (N = S1, N-1 = L5, ..., assuming five lumbar vertebrae). Caudal-first,
    TotalSegmentator MR (1 = sacrum) is accepted only when label 1 is
    sacrum-shaped. Anything else is refused with the candidates and how to
    pass a mapping.
    """
    present = sorted({int(x) for x in labels} - {0})
    if not present:
        raise LabelSchemeError(
            "the mask holds no label other than background 0; check that the right file was given as the mask"
        )
    if si_mm is None and shapes:
        si_mm = {lab: s.si_mm for lab, s in shapes.items()}
    key = scheme if isinstance(scheme, str) else None
    if key == "auto":
        return _resolve_auto(present, names, si_mm, shapes)
    if key == "totalseg":
        if names:
            try:
                from_names: LabelScheme | None = scheme_from_names(names)
            except LabelSchemeError:  # the table names no level at all
                from_names = None
            if from_names is not None and from_names.split_labels(present)[0]:
                return _explicit(
                    from_names,
                    "scheme 'totalseg' as requested, using the label names stored in the mask header",
                    present,
                    shapes,
                )
        picked = _pick(
            present,
            [BUILTIN_SCHEMES["totalseg"], BUILTIN_SCHEMES["totalseg_mr"]],
            si_mm,
            None,  # the user asked for TotalSegmentator: order decides CT vs MR, sizes only flag
            asked="totalseg",
        )
        return _explicit(picked.scheme, picked.reason, present, shapes)
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
        return _explicit(chosen, f"scheme 'spider' as requested ({why})", present, shapes)
    reason = f"scheme {chosen.name!r} as requested"
    vote = _direction_vote(mapped, si_mm) if si_mm else None
    if vote is not None and vote < ANATOMY_AGREEMENT:
        reason += f"; note: only {vote:.0%} of label pairs are in anatomical order with this scheme"
    return _explicit(chosen, reason, present, shapes, si_mm=si_mm)


def _explicit(
    chosen: LabelScheme,
    reason: str,
    present: list[int],
    shapes: Mapping[int, LabelShape] | None,
    *,
    si_mm: Mapping[int, float] | None = None,
) -> SchemeChoice:
    mapped = chosen.split_labels(present)[0]
    check = _check(mapped, shapes, si_mm)
    if check.status == "contradicted":
        reason += "; the anatomy contradicts it: " + "; ".join(check.findings)
    return SchemeChoice(chosen, reason, check, explicit=True)


def _check(
    mapped: Mapping[int, str], shapes: Mapping[int, LabelShape] | None, si_mm: Mapping[int, float] | None
) -> LevelCheck:
    """check_levels with shapes; with centroids only, the order check alone."""
    if shapes:
        return check_levels(mapped, shapes)
    vote = _direction_vote(mapped, si_mm) if si_mm else None
    if vote is None:
        return LevelCheck("not checked")
    if vote < ANATOMY_AGREEMENT:
        return LevelCheck(
            "contradicted",
            (f"label order runs against the anatomy ({vote:.0%} of pairs cranial-above-caudal)",),
        )
    return LevelCheck("ok", (), (f"{vote:.0%} of label pairs in cranio-caudal order",))


def warn_if_contradicted(choice: SchemeChoice, source: str | None = None) -> str | None:
    """Warn once (:class:`~spinemri.errors.SpinemriWarning`) when an explicit scheme contradicts the anatomy.

    Parameters
    ----------
    choice : SchemeChoice
    source : str, optional
        The mask file, named first in the message.

    Returns
    -------
    str or None
        The message warned (for provenance notes), or None when nothing was.
    """
    if not (choice.explicit and choice.check.status == "contradicted"):
        return None
    msg = (
        f"{source + ': ' if source else ''}scheme {choice.scheme.name!r} gives levels "
        "the anatomy contradicts "
        f"({'; '.join(choice.check.findings)}); the levels may be wrong: check the mask's numbering, or pass "
        "--scheme auto or a JSON/YAML mapping of label to level (the vertebra table's level_check says "
        "'contradicted')"
    )
    warnings.warn(msg, SpinemriWarning, stacklevel=3)
    return msg


def _pick(
    present: list[int],
    schemes: Iterable[LabelScheme],
    si_mm: Mapping[int, float] | None,
    shapes: Mapping[int, LabelShape] | None,
    *,
    asked: str,
) -> SchemeChoice:
    """The candidate scheme the labels and the anatomy single out, or LabelSchemeError."""
    candidates: list[tuple[LabelScheme, str, LevelCheck]] = []
    refused: list[str] = []
    for cand in schemes:
        mapped, unmapped = cand.split_labels(present)
        unknown = [u for u in unmapped if u not in cand.other]
        if not mapped or unknown:
            continue
        check = _check(mapped, shapes, si_mm)
        if cand is BUILTIN_SCHEMES["spider"]:
            ok, why = _spider_check(mapped, si_mm)
            if not ok:
                refused.append(f"spider ({why})")
                continue
            if check.status == "contradicted":
                refused.append(f"spider ({'; '.join(check.findings)})")
                continue
            candidates.append((cand, why, check))
            continue
        vote = _direction_vote(mapped, si_mm) if si_mm else None
        if vote is not None and vote < ANATOMY_AGREEMENT:
            refused.append(f"{cand.name} (only {vote:.0%} of label pairs in anatomical order)")
            continue
        if check.status == "contradicted":
            refused.append(f"{cand.name} ({'; '.join(check.findings)})")
            continue
        candidates.append(
            (cand, "" if vote is None else f"{vote:.0%} of label pairs in anatomical order", check)
        )
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
    chosen, why, check = candidates[0]
    others = [c[0].name for c in candidates[1:]]
    reason = f"{asked}: {label_text} fit scheme {chosen.name!r}"
    if why:
        reason += f" ({why})"
    if check.status == "ok" and shapes and any(e.startswith("sizes") for e in check.evidence):
        reason += f"; {'; '.join(e for e in check.evidence if e.startswith('sizes'))}"
    if others:
        reason += f"; {', '.join(others)} give the same levels"
    if refused:
        reason += f"; ruled out: {'; '.join(refused)}"
    ignored = chosen.split_labels(present)[1]
    if ignored:
        reason += f"; non-vertebral labels ignored: {_show(ignored)}"
    return SchemeChoice(chosen, reason, check)


def _resolve_auto(
    present: list[int],
    names: Mapping[int, str] | None,
    si_mm: Mapping[int, float] | None,
    shapes: Mapping[int, LabelShape] | None,
) -> SchemeChoice:
    if names:
        try:
            from_names = scheme_from_names(names)
            mapped, _ = from_names.split_labels(present)
        except LabelSchemeError:  # the table names no level at all
            mapped = {}
        if mapped:
            return SchemeChoice(
                from_names,
                f"auto: label names stored in the mask header (TotalSegmentator label table) name "
                f"{len(mapped)} of the {len(present)} labels present as vertebrae",
                _check(mapped, shapes, si_mm),
            )
    if shapes and _counts_only(present, shapes):
        return _resolve_counts(present, shapes)
    schemes = [s for s in BUILTIN_SCHEMES.values() if s is not BUILTIN_SCHEMES["spider"]]
    if SPIDER_SPECIFIC_LABELS.intersection(present):
        schemes.append(BUILTIN_SCHEMES["spider"])
    return _pick(present, schemes, si_mm, shapes, asked="auto")


# --- labels that only count vertebrae (1..N from an annotation tool) ----------------------


def _counts_only(present: list[int], shapes: Mapping[int, LabelShape]) -> bool:
    """Labels exactly 1..N (N >= 2), at least one of the size of a real vertebra."""
    if len(present) < 2 or present != list(range(1, len(present) + 1)):
        return False
    if any(lab not in shapes for lab in present):
        return False
    heights = level_heights({str(lab): shapes[lab] for lab in present})
    return any(size_fits(heights[str(lab)], shapes[lab].volume_mm3) for lab in present)


def _size_regions(present: list[int], shapes: Mapping[int, LabelShape]) -> str:
    heights = level_heights({str(lab): shapes[lab] for lab in present})
    votes = {r: 0 for r in REGIONS}
    for lab in present:
        if not shapes[lab].truncated:
            for r in size_fits(heights[str(lab)], shapes[lab].volume_mm3):
                votes[r] += 1
    top = max(votes.values())
    regions = [r for r in REGIONS if top and votes[r] == top]
    return " or ".join(regions) if regions else "no region (sizes not those of vertebrae)"


def _run(last: str, n: int, cranial_first: bool) -> dict[int, str] | None:
    """Labels 1..n with the most caudal one ``last`` (levels C1..L5, S1; no T13/L6)."""
    order = [lv for lv in LEVELS if lv not in ("T13", "L6", "Co")]
    end = order.index(last)
    if end + 1 < n:
        return None
    run = order[end - n + 1 : end + 1]  # cranial -> caudal
    if not cranial_first:
        run = run[::-1]
    return {lab: run[lab - 1] for lab in range(1, n + 1)}


def _resolve_counts(present: list[int], shapes: Mapping[int, LabelShape]) -> SchemeChoice:
    n = len(present)
    label_text = f"labels {present[0]}..{present[-1]}"
    vote = direction_vote(
        {lab: LEVELS[min(lab - 1, len(LEVELS) - 1)] for lab in present},
        {lab: shapes[lab].si_mm for lab in present},
    )
    # vote: fraction of pairs with the larger label more caudal
    tried: list[str] = []
    if vote is not None and vote >= ANATOMY_AGREEMENT:
        direction, cranial_first = "the numbers increase caudally (label 1 on top)", True
    elif vote is not None and vote <= 1 - ANATOMY_AGREEMENT:
        direction, cranial_first = "the numbers increase cranially (label 1 at the bottom)", False
    else:
        direction, cranial_first = "the numbers follow no cranio-caudal order", None
    by_z = sorted(present, key=lambda lab: shapes[lab].si_mm)  # caudal first
    caudal = by_z[0]
    nb = [shapes[lab] for lab in by_z[1:3] if not shapes[lab].truncated] or [shapes[lab] for lab in by_z[1:3]]
    sacrum = is_sacrum_shaped(shapes[caudal], nb)
    sacrum_text = {
        True: "sacrum-shaped",
        False: "shaped like one more vertebral body",
        None: "of undecided shape",
    }[sacrum]
    if cranial_first is True:
        verse = BUILTIN_SCHEMES["verse"]
        mapped = verse.split_labels(present)[0]
        levels: dict[str, list[LabelShape]] = {}
        for lab, lev in mapped.items():
            levels.setdefault(lev, []).append(shapes[lab])
        sv = size_verdict({lv: merge_shapes(v) for lv, v in levels.items()})
        check = check_levels(mapped, shapes)
        cervical = [lv for lv in sv.consistent if lv.startswith("C")]
        if (
            check.status != "contradicted"
            and cervical
            and not sv.inconsistent
            and any(lv.startswith("C") for lv in sv.exclusive)
        ):
            return SchemeChoice(
                verse,
                f"auto: {label_text} read as VerSe C1.. (the sizes of {', '.join(cervical)} are those of "
                "cervical vertebrae only, and the numbers increase caudally)",
                check,
            )
        tried.append(
            "VerSe (1 = C1) does not fit: "
            + (
                "; ".join(check.findings)
                if check.status == "contradicted"
                else "the sizes do not confirm cervical vertebrae (they fit other regions too)"
            )
        )
        if sacrum:
            run = _run("S1", n, True)
            if run is not None:
                counted = LabelScheme(
                    "counted_from_sacrum",
                    run,
                    f"inferred by spinemri from the anatomy: label {n} (the most caudal) is sacrum-shaped; "
                    "the labels above it counted as L5, L4, ... (assumes 5 lumbar vertebrae)",
                )
                check = check_levels(run, shapes)
                if check.status != "contradicted":
                    return SchemeChoice(
                        counted,
                        f"auto: {label_text} count vertebrae cranial -> caudal and label {n} is "
                        f"sacrum-shaped: read as {run[1]}..{run[n]} counting up from the sacrum "
                        "(assumes 5 lumbar vertebrae; a "
                        "transitional L6 or sacralised L5 would shift every level by one)",
                        LevelCheck(
                            "inferred",
                            (),
                            (
                                f"counted from the sacrum (label {n}); assumes 5 lumbar vertebrae",
                                *check.evidence,
                            ),
                        ),
                    )
                tried.append("counting up from the sacrum: " + "; ".join(check.findings))
        else:
            tried.append(f"no sacrum anchors the count (the most caudal label {caudal} is {sacrum_text})")
    elif cranial_first is False:
        ts = BUILTIN_SCHEMES["totalseg_mr"]
        mapped = ts.split_labels(present)[0]
        check = check_levels(mapped, shapes)
        if sacrum and check.status != "contradicted":
            return SchemeChoice(
                ts,
                f"auto: {label_text} fit TotalSegmentator MR (1 = sacrum): the numbers increase "
                "cranially and "
                "label 1 is sacrum-shaped",
                check,
            )
        tried.append(
            "TotalSegmentator MR (1 = sacrum) does not fit: "
            + (
                "; ".join(check.findings)
                if check.status == "contradicted" and sacrum
                else f"label 1 (the most caudal) is {sacrum_text}, not confirmed as a sacrum"
            )
        )
        tried.append("VerSe (1 = C1) runs the wrong way")
    if cranial_first is None:
        example = ""
    else:
        guess = _run("L5", n, cranial_first)
        example = ""
        if guess is not None:
            shown = ", ".join(f'"{lab}": "{guess[lab]}"' for lab in (1, 2) if lab in guess)
            example = (
                f" For example, if the most caudal label ({n if cranial_first else 1}) is L5: "
                f'{{{shown}, ..., "{n}": "{guess[n]}"}}.'
            )
    raise LabelSchemeError(
        f"{label_text} look like consecutive counts (as ITK-SNAP or 3D Slicer number segments), not level "
        f"codes, and the anatomy does not say which vertebrae they are: {direction}; "
        f"{'; '.join(tried) if tried else 'no reading fits'}. The vertebrae have the size of "
        f"{_size_regions(present, shapes)} vertebrae. Pass --scheme with a JSON/YAML file "
        "mapping each label to "
        f"its level (docs/label-schemes.md), or --scheme verse / totalseg_mr if the mask really uses that "
        f"numbering.{example}"
    )


def resolve_scheme_for_mask(
    scheme: str | Path | LabelScheme | Mapping[Any, Any], mask: Volume
) -> tuple[LabelScheme, str]:
    """:func:`resolve_scheme` for a mask Volume: labels, header names and shapes taken from it.

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
    GeometryError
        If the data are not non-negative integers.

    Warns
    -----
    SpinemriWarning
        When an explicit scheme contradicts the anatomy (:func:`warn_if_contradicted`).
    """
    choice = choose_scheme_for_mask(scheme, mask)
    return choice.scheme, choice.reason


def choose_scheme_for_mask(
    scheme: str | Path | LabelScheme | Mapping[Any, Any], mask: Volume
) -> SchemeChoice:
    """:func:`choose_scheme` for a mask Volume (warns as :func:`warn_if_contradicted`).

    Parameters
    ----------
    scheme : str, path, LabelScheme or mapping
        As in :func:`resolve_scheme`.
    mask : Volume of shape (I, J, K)
        Non-negative integer labels.

    Returns
    -------
    SchemeChoice

    Raises
    ------
    LabelSchemeError
        As :func:`resolve_scheme`, the mask's ``meta["source"]`` named first.
    GeometryError
        If the data are not non-negative integers.
    """
    from .arrays.labels import check_label_values
    from .errors import GeometryError, InputError

    try:
        data = check_label_values(mask.data, "mask", allow_float=False)
    except InputError as exc:
        raise GeometryError(str(exc)) from exc
    shapes = label_shapes(np.asarray(data), mask.affine)
    names = mask.meta.get("label_names")
    source = mask.meta.get("source")
    try:
        choice = choose_scheme(scheme, shapes.keys(), names=dict(names) if names else None, shapes=shapes)
    except LabelSchemeError as exc:
        if source:
            raise LabelSchemeError(f"{source}: {exc}") from exc
        raise
    warn_if_contradicted(choice, str(source) if source else None)
    return choice
