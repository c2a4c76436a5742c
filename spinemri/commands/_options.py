"""The options several commands share, each defined once (one CLI vocabulary, issue 17).

``spinemri measure`` and ``spinemri run`` take the same measurement options
(:func:`add_measure_options`: label scheme, DICOM series, every segmentation and
metrics parameter, mask resampling, the plausibility check); ``spinemri link``
and ``spinemri run`` take the same link options (:func:`add_link_options`: id,
VAS and date columns, window, decimal comma, identifier columns kept). Each
``add_*`` function adds an argument group to a parser, and its partner turns the
parsed arguments into the parameters of the public API (:func:`segment_options`
-> :class:`~spinemri.params.SegmentParams` / ``MetricsParams`` fields,
:func:`link_params` -> :class:`~spinemri.params.LinkParams`), so that a name, a
default or a help text cannot differ between two commands.

A segmentation option left out is not passed on at all: the parameter defaults
apply, and the parameter hash of a cohort run (resume) is the same as without it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..params import CONNECTIVITIES, POLARITIES, SEGMENT_METHODS, LinkParams, MetricsParams, SegmentParams

__all__ = [
    "MEASURE_FLAGS",
    "SEGMENT_OPTIONS",
    "OptionSpec",
    "add_link_options",
    "add_measure_options",
    "add_scheme_option",
    "link_params",
    "segment_options",
]

_SEG = SegmentParams()
_MET = MetricsParams()
_LINK = LinkParams()


@dataclass(frozen=True)
class OptionSpec:
    """One segmentation or metrics parameter as a command-line option.

    Parameters
    ----------
    field : str
        The field of :class:`~spinemri.params.SegmentParams` or
        :class:`~spinemri.params.MetricsParams`.
    flag : str
        The option (``--k``, ``--no-half-contrast``).
    help : str
        Help text; the default is appended.
    kind : callable or None, default float
        Type of the value; None for a flag without value (``store_true``, or
        ``store_false`` when ``flag`` starts with ``--no-``).
    choices : tuple or None, default None
        Allowed values.
    """

    field: str
    flag: str
    help: str
    kind: Callable[[str], Any] | None = float
    choices: tuple[Any, ...] | None = None


#: The segmentation and metrics options of ``measure`` and ``run`` (every parameter field, in help order).
SEGMENT_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "polarity", "--polarity", "lesions brighter than marrow (STIR, T2-FS) or darker (T1)", str, POLARITIES
    ),
    OptionSpec("k", "--k", "robust SDs (1.4826·MAD) beyond the reference median (robust, local)"),
    OptionSpec("seed_k", "--seed-k", "a lesion needs a seed voxel this many robust SDs beyond the median"),
    OptionSpec(
        "fixed_threshold", "--fixed-threshold", "absolute intensity threshold; required by --method fixed"
    ),
    OptionSpec("min_lesion_mm3", "--min-lesion-mm3", "smallest lesion kept, mm³"),
    OptionSpec("margin_mm", "--margin-mm", "vertebra rim excluded from seeding and the reference, mm"),
    OptionSpec(
        "seed_depth_mm", "--seed-depth-mm", "seeds at least this deep below the vertebra surface, mm; 0 = off"
    ),
    OptionSpec("plateau_k", "--plateau-k", "minimum lesion contrast in robust SDs; 0 = off"),
    OptionSpec("min_edge_step", "--min-edge-step", "minimum boundary step 1 - ring/plateau, 0-1; 0 = off"),
    OptionSpec(
        "neighbours", "--neighbours", "vertebrae on each side forming the reference of --method local", int
    ),
    OptionSpec("connectivity", "--connectivity", "3-D voxel connectivity of lesions", int, CONNECTIVITIES),
    OptionSpec("n4", "--n4", "N4 bias-field correction before thresholding", None),
    OptionSpec("n4_shrink", "--n4-shrink", "shrink factor of the N4 fit", int),
    OptionSpec("n4_iterations", "--n4-iterations", "N4 iterations per fitting level", int),
    OptionSpec(
        "half_contrast",
        "--no-half-contrast",
        "keep the detected lesion boundary (no half-contrast refinement)",
        None,
    ),
    OptionSpec(
        "depth_background", "--no-depth-background", "one background level per vertebra at every depth", None
    ),
    OptionSpec(
        "intensity_erosion_mm", "--intensity-erosion-mm", "vertebra erosion for mean/median_intensity, mm"
    ),
)

#: Parameter field -> option, for :func:`spinemri.cli.check_options` (to name a refused value).
MEASURE_FLAGS: dict[str, str] = {spec.field: spec.flag for spec in SEGMENT_OPTIONS}


def _default(field: str) -> Any:
    return getattr(_SEG, field) if hasattr(_SEG, field) else getattr(_MET, field)


def add_measure_options(parser: argparse.ArgumentParser, *, many: bool = False) -> None:
    """Add the measurement options shared by ``measure`` and ``run``.

    Adds ``--scheme``, ``--series``, ``--resample-mask`` and ``--no-plausibility-check``,
    and a "segmentation" group with ``--method`` and one option per
    :data:`SEGMENT_OPTIONS` entry (value options default to None: not given).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    many : bool, default False
        The command measures many cases (``run``): the help texts say so.
    """
    cases = "every case's" if many else "the"
    add_scheme_option(parser)
    parser.add_argument(
        "--series",
        default=None,
        help=f"DICOM series of {cases} image when a folder holds several: SeriesInstanceUID, SeriesNumber "
        "or a regular expression on SeriesDescription (spinemri info lists them)",
    )
    parser.add_argument(
        "--resample-mask",
        action="store_true",
        help="resample a mask on another grid (nearest neighbour) instead of refusing it",
    )
    parser.add_argument(
        "--no-plausibility-check",
        action="store_true",
        help="measure an implausible input anyway (a CT image, a mask without any vertebra-sized label): "
        "warn and flag it in the plausibility columns instead of refusing it (docs/supported-inputs.md)",
    )
    group = parser.add_argument_group(
        "segmentation", "lesion segmentation and metrics parameters (DESIGN §4, docs/metrics.md)"
    )
    group.add_argument(
        "--method",
        default=_SEG.method,
        choices=SEGMENT_METHODS,
        help="lesion threshold: robust (patient's pooled marrow), local (neighbouring vertebrae), otsu "
        "(each vertebra), fixed (--fixed-threshold) (default %(default)s)",
    )
    for spec in SEGMENT_OPTIONS:
        default = _default(spec.field)
        if spec.kind is None:
            action = "store_false" if spec.flag.startswith("--no-") else "store_true"
            group.add_argument(spec.flag, dest=spec.field, action=action, default=None, help=spec.help)
            continue
        shown = (
            ""
            if default is None
            else f" (default {default:g})"
            if isinstance(default, float)
            else f" (default {default})"
        )
        group.add_argument(
            spec.flag,
            dest=spec.field,
            type=spec.kind,
            choices=spec.choices,
            default=None,
            help=spec.help + shown,
        )


def add_scheme_option(parser: argparse.ArgumentParser, what: str = "label scheme of the masks") -> None:
    """Add ``--scheme`` (``measure``, ``run``, ``info``).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    what : str, default "label scheme of the masks"
        The start of the help text.
    """
    parser.add_argument(
        "--scheme",
        default="auto",
        help=f"{what}: auto (default), verse, totalseg, spider, ... or a JSON/YAML file mapping label to "
        "level (docs/label-schemes.md)",
    )


def segment_options(args: argparse.Namespace) -> dict[str, Any]:
    """The segmentation and metrics options given on the command line.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of a parser with :func:`add_measure_options`.

    Returns
    -------
    dict of str to Any
        Parameter field -> value, only for the options given (``--method`` is not
        included: it is passed on by itself).
    """
    return {
        spec.field: getattr(args, spec.field)
        for spec in SEGMENT_OPTIONS
        if getattr(args, spec.field, None) is not None
    }


def add_link_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of joining the clinical table, shared by ``link`` and ``run``.

    Adds a "linking" group: ``--id-column``, ``--vas-column``, ``--date-column``,
    ``--window-days``, ``--decimal-comma`` / ``--no-decimal-comma`` and
    ``--keep-columns`` (defaults from :class:`~spinemri.params.LinkParams`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    """
    group = parser.add_argument_group(
        "linking", "joining the clinical table (docs/statistics.md, section Linking)"
    )
    group.add_argument(
        "--id-column", default=_LINK.id_column, help="clinical patient id column (default %(default)s)"
    )
    group.add_argument(
        "--vas-column", default=_LINK.vas_column, help="clinical VAS (0-10) column (default %(default)s)"
    )
    group.add_argument(
        "--date-column",
        default=None,
        help="clinical date column of the VAS: duplicates are resolved by the VAS nearest the scan date",
    )
    group.add_argument(
        "--window-days",
        type=float,
        default=_LINK.window_days,
        help="largest VAS-to-scan distance in days when both dates are known (default %(default)s)",
    )
    group.add_argument(
        "--decimal-comma",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read VAS values written 5,5 as 5.5 (--decimal-comma) or only decimal points "
        "(--no-decimal-comma); default: decided from the VAS column, refused when ambiguous",
    )
    group.add_argument(
        "--keep-columns",
        action="append",
        default=None,
        metavar="COL[,COL]",
        help="copy these clinical columns into the linked table although their names mark direct "
        "identifiers (name, birth date, MRN, address, phone, e-mail, ...), which are left out otherwise",
    )


def link_params(args: argparse.Namespace) -> LinkParams:
    """The :class:`~spinemri.params.LinkParams` of the link options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of a parser with :func:`add_link_options`.

    Returns
    -------
    LinkParams
        Id, VAS and date columns, window, decimal comma and the columns to keep
        (``--keep-columns a,b --keep-columns c`` -> ``("a", "b", "c")``).

    Raises
    ------
    ConfigError
        A refused value (``--window-days -1``).
    """
    keep = [c.strip() for value in (args.keep_columns or []) for c in value.split(",") if c.strip()]
    return LinkParams(
        id_column=args.id_column,
        vas_column=args.vas_column,
        date_column=args.date_column,
        window_days=args.window_days,
        decimal_comma=args.decimal_comma,
        keep_columns=tuple(dict.fromkeys(keep)),
    )
