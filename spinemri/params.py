"""Typed, frozen parameter sets: every decision's default is written once, here.

Each dataclass range-checks its fields in ``__post_init__`` and raises
:class:`~spinemri.errors.ConfigError`; ``to_dict()`` gives the JSON-able form
recorded in provenance next to package versions and input hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ConfigError

__all__ = ["as_dict", "check_known_keys", "measure_params", "RunConfig"]


def as_dict(params: Any) -> dict[str, Any]:
    """JSON-able dict of a parameter dataclass (for provenance).

    Parameters
    ----------
    params : dataclass instance
        A parameter set such as :class:`SegmentParams` or
        :class:`MetricsParams`.

    Returns
    -------
    dict of str to Any
        Field name to value (``dataclasses.asdict``: nested dataclasses
        become dicts, containers are copied).
    """
    return asdict(params)


def check_known_keys(cls: type, keys: Any, where: str = "") -> None:
    """Raise ConfigError naming any key that is not a field of ``cls``.

    Parameters
    ----------
    cls : type
        A dataclass whose field names are the known keys.
    keys : iterable of str
        The keys to check (e.g. the keys of an options mapping).
    where : str, default ""
        How to name the parameter set in the message; ``cls.__name__`` when
        empty.

    Raises
    ------
    ConfigError
        If any key is not a field of ``cls``; the message lists the unknown
        and the known keys.
    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )


# --- segmentation and metrics (owner: measure work) ---------------------------------------

SEGMENT_METHODS = ("robust", "local", "otsu", "fixed")
POLARITIES = ("bright", "dark")
CONNECTIVITIES = (6, 18, 26)


def _check_range(cls: str, name: str, value: float, lo: float, hi: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (lo <= float(value) <= hi):
        raise ConfigError(f"{cls}.{name} = {value!r} is out of range; expected a number in [{lo:g}, {hi:g}]")


@dataclass(frozen=True)
class SegmentParams:
    """How hyperintense (or hypointense) lesion voxels are found in each vertebra.

    Parameters
    ----------
    method : {"robust", "local", "otsu", "fixed"}, default "robust"
        ``robust``: threshold = median ± k·1.4826·MAD of the patient's pooled
        vertebral marrow; ``local``: the same statistic from each vertebra's
        neighbouring vertebrae (itself excluded); ``otsu``: Otsu's threshold
        of each vertebra's own voxels; ``fixed``: ``fixed_threshold``.
    k : float, default 3.0
        Number of robust standard deviations (1.4826·MAD) above (below for
        ``dark``) the reference median; 0.5 <= k <= 20.
    polarity : {"bright", "dark"}, default "bright"
        ``bright``: lesions are brighter than marrow (STIR, fat-saturated T2);
        ``dark``: darker (T1).
    fixed_threshold : float or None, default None
        Absolute intensity threshold, required when ``method="fixed"``.
    min_lesion_mm3 : float, default 20.0
        Connected lesions smaller than this (mm³, the whole 3-D lesion before it
        is split between vertebrae) are dropped; 0 <= value <= 1e5.
    connectivity : {6, 18, 26}, default 26
        3-D voxel connectivity of lesion components.
    margin_mm : float, default 1.0
        Rim of each vertebra (mm, ellipsoidal erosion in physical units) that
        is excluded from the reference statistics and in which a lesion may not
        *start*: a candidate component is kept only when it reaches the
        eroded core; kept lesions extend to the vertebra boundary. Guards
        against partial volume with bright discs and dark cortex; 0 <= value <= 20.
    n4 : bool, default False
        Correct the image with SimpleITK's N4 bias-field filter (masked to the
        vertebrae) before thresholding.
    n4_shrink : int, default 4
        Shrink factor of the N4 fit (speed: 1.4 s instead of 4.9 s with 2 on a
        512 x 256 x 15 phantom, same result); 1 <= value <= 16.
    n4_iterations : int, default 50
        N4 iterations per fitting level (4 levels); 1 <= value <= 1000.
    neighbours : int, default 2
        For ``local``: vertebrae taken on each side (cranial and caudal, in the
        order present in the mask); 1 <= value <= 12.
    seed_k : float, default 5.0
        Hysteresis for ``robust`` and ``local``: a candidate component is kept
        only when at least one of its core voxels is beyond median ±
        seed_k·1.4826·MAD (the component then extends down to the ``k``
        threshold). Noise and texture clusters rarely reach it, real lesions
        do. The seed threshold uses max(seed_k, k); 0.5 <= value <= 50.
    half_contrast : bool, default True
        Refine each detected lesion's boundary to half its contrast: a voxel
        stays a lesion voxel only when it is also beyond (reference median +
        lesion plateau intensity) / 2, i.e. when more than half of it is lesion
        (partial-volume correct volumes).
    depth_background : bool, default True
        Partial-volume aware background: a lesion replaces marrow, so a voxel
        at depth ``d`` below its vertebra's surface reads ``bg(d) + f·(L - M)``
        with ``bg(d)`` its lesion-free intensity (mixed with cortex and outside
        tissue near the surface), ``f`` its lesion fraction, ``L`` the lesion
        plateau and ``M`` the marrow level. ``bg(d)`` is the median intensity
        per depth class (voxel units, :func:`spinemri.arrays.morphology.depth_classes`)
        over the vertebrae (the ``local`` neighbours). The half-contrast
        boundary compares ``I - bg(d) + M`` with the midpoint of ``M`` and
        ``L``, and the 26-neighbours of a lesion in its vertebra that pass it
        join the lesion (one voxel; not for ``fixed``). Detection and seeds
        are unchanged. False: one background level per vertebra at every depth.
    plateau_k : float, default 0.0
        Minimum contrast (``robust`` and ``local``, with ``half_contrast``): a lesion is kept only
        when its plateau (the median depth-corrected intensity of its upper quarter, the value the
        half-contrast boundary uses) is beyond its vertebra's background by at least
        plateau_k·1.4826·MAD; one voxel beyond ``seed_k`` is then not enough. 0 = off (opt-in:
        docs/validation.md, "Real marrow"); 0 <= value <= 50.
    seed_depth_mm : float, default 3.0
        Seeds must lie at least this deep below the vertebra's surface (mm, box erosion rounded up
        to whole voxels, as ``margin_mm``; ``robust`` and ``local``); the reference statistics
        still use the ``margin_mm`` core. Bright tissue that enters an imperfect mask, partial
        volume with discs and the canal, and veins entering the body are seeded in the outer shell (real T2
        TSE: their seeds lie <= 2-3.6 mm deep); a
        lesion then needs a seed voxel this deep, so lesions confined to the outer 3 mm are not
        reported. Ignored when not larger than ``margin_mm``. A vertebra with no voxel that deep
        keeps its ``margin_mm`` core seeds. 0 = off (the default before issue 13); 0 <= value <= 20
        (docs/decisions/0023-real-marrow-defaults.md).
    min_edge_step : float, default 0.8
        Edge rule (``robust`` and ``local``, with ``half_contrast``): a lesion is kept only when
        its boundary is a step, ``1 - median(ring) / plateau`` >= this, with contrasts above the
        vertebra's marrow level (depth-corrected) and ``ring`` the vertebra voxels within 3 mm
        outside the lesion (those deeper than ``seed_depth_mm`` when they are at least a quarter
        of it: the marrow below the partial-volume shell): ~1 for marrow replacement, lower for a
        smooth intensity ramp (Dixon lateral faces) or a thin vein whose surroundings hold its
        partial volume. A lesion holding at least half of a vertebra's interior voxels (a replaced
        vertebra: no marrow around it) is kept without the test, and so is one whose edge rises by at
        least 7 robust SDs (a bright lesion on brighter surroundings, e.g. the Dixon lateral ramp).
        With the rule on, a component whose plateau is under half of its brightest core's level (a
        lesion joined to a larger, dimmer structure) is first cut at the core's half contrast, each
        part judged on its own. Lesions with a gradual, infiltrative edge can fail it. 0 = off (the
        default before issue 13); 0 <= value <= 1 (docs/decisions/0023-real-marrow-defaults.md,
        0027-marrow-split-cores.md).
    """

    method: str = "robust"
    k: float = 3.0
    polarity: str = "bright"
    fixed_threshold: float | None = None
    min_lesion_mm3: float = 20.0
    connectivity: int = 26
    margin_mm: float = 1.0
    n4: bool = False
    n4_shrink: int = 4
    n4_iterations: int = 50
    neighbours: int = 2
    seed_k: float = 5.0
    half_contrast: bool = True
    depth_background: bool = True
    plateau_k: float = 0.0
    seed_depth_mm: float = 3.0
    min_edge_step: float = 0.8

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.method not in SEGMENT_METHODS:
            raise ConfigError(
                f"{name}.method = {self.method!r}; expected one of {', '.join(SEGMENT_METHODS)}"
            )
        if self.polarity not in POLARITIES:
            raise ConfigError(f"{name}.polarity = {self.polarity!r}; expected one of {', '.join(POLARITIES)}")
        if self.connectivity not in CONNECTIVITIES:
            raise ConfigError(f"{name}.connectivity = {self.connectivity!r}; expected 6, 18 or 26")
        _check_range(name, "k", self.k, 0.5, 20.0)
        _check_range(name, "min_lesion_mm3", self.min_lesion_mm3, 0.0, 1e5)
        _check_range(name, "margin_mm", self.margin_mm, 0.0, 20.0)
        _check_range(name, "n4_shrink", self.n4_shrink, 1, 16)
        _check_range(name, "n4_iterations", self.n4_iterations, 1, 1000)
        _check_range(name, "neighbours", self.neighbours, 1, 12)
        _check_range(name, "seed_k", self.seed_k, 0.5, 50.0)
        _check_range(name, "plateau_k", self.plateau_k, 0.0, 50.0)
        _check_range(name, "seed_depth_mm", self.seed_depth_mm, 0.0, 20.0)
        _check_range(name, "min_edge_step", self.min_edge_step, 0.0, 1.0)
        for flag in ("n4", "half_contrast", "depth_background"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{name}.{flag} = {getattr(self, flag)!r}; expected True or False")
        for field_name in ("n4_shrink", "n4_iterations", "neighbours"):
            if int(getattr(self, field_name)) != getattr(self, field_name):
                raise ConfigError(f"{name}.{field_name} = {getattr(self, field_name)!r}; expected an integer")
        if self.method == "fixed":
            if self.fixed_threshold is None:
                raise ConfigError(
                    f"{name}: method 'fixed' needs fixed_threshold "
                    "(an absolute intensity; CLI: --fixed-threshold)"
                )
            _check_range(name, "fixed_threshold", self.fixed_threshold, -1e12, 1e12)


@dataclass(frozen=True)
class MetricsParams:
    """Options of the per-vertebra tables.

    Parameters
    ----------
    intensity_erosion_mm : float, default 0.0
        ``mean_intensity`` and ``median_intensity`` of a vertebra are taken
        over the vertebra eroded by this margin (mm, ellipsoid in physical
        units; 0 = the whole vertebra); 0 <= value <= 20. Volumes, ratios and
        lesion metrics always use the whole vertebra.
    """

    intensity_erosion_mm: float = 0.0

    def __post_init__(self) -> None:
        _check_range(type(self).__name__, "intensity_erosion_mm", self.intensity_erosion_mm, 0.0, 20.0)


def measure_params(options: Mapping[str, Any]) -> tuple[SegmentParams, MetricsParams]:
    """Build (and so range-check) the segmentation and metrics parameters of a set of options.

    Used to refuse a bad option before any input is read (``spinemri run`` and
    ``spinemri measure``, :class:`RunConfig`).

    Parameters
    ----------
    options : mapping of str -> value
        Fields of :class:`SegmentParams` (``method``, ``k``, ``margin_mm``, ...) and
        :class:`MetricsParams`; the defaults fill the others. Keys of neither are
        ignored here (:func:`spinemri.measure` reports them).

    Returns
    -------
    segment : SegmentParams
    metrics : MetricsParams

    Raises
    ------
    ConfigError
        An option is out of range or inconsistent (``method="fixed"`` without ``fixed_threshold``).
    """
    seg_keys = {f.name for f in fields(SegmentParams)}
    met_keys = {f.name for f in fields(MetricsParams)}
    segment = SegmentParams(**{k: v for k, v in options.items() if k in seg_keys})
    metrics = MetricsParams(**{k: v for k, v in options.items() if k in met_keys})
    return segment, metrics


# --- link and statistics (owner: link/analyze work) ---------------------------------------


@dataclass(frozen=True)
class LinkParams:
    """How a clinical table is joined to the per-patient imaging table (``spinemri link``).

    Parameters
    ----------
    id_column : str, default "patient_id"
        Patient id column of the clinical table (the imaging table always uses ``patient_id``).
    vas_column : str, default "vas"
        Pain score column of the clinical table; written as ``vas`` in the linked table.
    date_column : str or None, default None
        Date of the pain assessment in the clinical table. With it, duplicate ids are
        resolved by taking the VAS nearest the scan date within ``window_days``.
    scan_date_column : str, default "scan_date"
        Column of the imaging table holding the scan date (used when present and no
        explicit ``scan_dates`` are passed).
    window_days : float, default 30.0
        Largest distance, in days, between a VAS assessment and the scan for the VAS to
        be used (applied whenever both dates are known).
    vas_min, vas_max : float, default 0.0 and 10.0
        Valid VAS range (inclusive). Values outside are excluded and reported, never clipped.
    collision_prefix : str, default "clinical_"
        Prefix given to clinical columns whose names collide with imaging columns.
    decimal_comma : bool or None, default None
        How VAS cells written as text are read: True reads ``5,5`` as 5.5 (and refuses ``5.5``),
        False reads ``5.5`` (and refuses ``5,5``), None decides from the VAS column itself and
        refuses a column where both readings occur (:func:`spinemri.linking.vas_decimal_comma`,
        docs/statistics.md, "Linking").
    keep_columns : tuple of str, default ()
        Clinical columns copied into the linked table although their names mark them as direct
        identifiers (patient name, birth date, MRN, address, ...;
        :func:`spinemri.linking.identifier_columns`), which are otherwise left out.
    """

    id_column: str = "patient_id"
    vas_column: str = "vas"
    date_column: str | None = None
    scan_date_column: str = "scan_date"
    window_days: float = 30.0
    vas_min: float = 0.0
    vas_max: float = 10.0
    collision_prefix: str = "clinical_"
    decimal_comma: bool | None = None
    keep_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.decimal_comma is not None and not isinstance(self.decimal_comma, bool):
            raise ConfigError(
                f"LinkParams.decimal_comma must be True, False or None (decide from the table), "
                f"got {self.decimal_comma!r}"
            )
        keep = self.keep_columns
        if isinstance(keep, str) or not all(isinstance(c, str) and c for c in keep):
            raise ConfigError(f"LinkParams.keep_columns must be a tuple of column names, got {keep!r}")
        object.__setattr__(self, "keep_columns", tuple(keep))
        for name in ("id_column", "vas_column", "scan_date_column", "collision_prefix"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(
                    f"LinkParams.{name} must be a non-empty string, got {getattr(self, name)!r}"
                )
        if self.date_column is not None and (not isinstance(self.date_column, str) or not self.date_column):
            raise ConfigError(
                f"LinkParams.date_column must be a column name or None, got {self.date_column!r}"
            )
        if not (self.window_days >= 0):
            raise ConfigError(f"LinkParams.window_days must be >= 0 days, got {self.window_days!r}")
        if not (self.vas_min < self.vas_max):
            raise ConfigError(
                f"LinkParams: vas_min ({self.vas_min!r}) must be smaller than vas_max ({self.vas_max!r})"
            )


@dataclass(frozen=True)
class StatsParams:
    """Parameters of the study's analyses (``spinemri analyze``); see docs/statistics.md.

    Parameters
    ----------
    ci_level : float, default 0.95
        Confidence level of every interval.
    min_patients : int, default 3
        Fewer patients with a VAS than this and no analysis is computed.
    small_group_n : int, default 5
        Groups smaller than this are flagged with a warning in summary.json and the report.
    exclude_regions : tuple of str, default ("none",)
        ``dominant_region`` values left out of the Kruskal-Wallis comparison.
    mild_max : float, default 3.0
        Pain categories of the ordinal model: mild VAS <= mild_max, severe VAS >= severe_vas,
        moderate in between (0-3 / 4-6 / 7-10 on the integer scale).
    severe_vas : float, default 7.0
        VAS at or above which pain is "severe" (also the prediction target).
    ols_predictors : tuple of str, default ("lumbar_involved", "n_involved", "hi_area_ratio")
        Predictors of the OLS and ordinal models.
    prediction_features : tuple of str
        Imaging metrics of the cross-validated logistic model of severe pain.
    cv_folds : int, default 5
        Stratified folds (reduced to the size of the smaller class when needed, >= 2).
    logistic_c : float, default 1.0
        Inverse L2 penalty of the logistic regression (features are standardised).
    seed : int, default 0
        Seed of the fold assignment.
    """

    ci_level: float = 0.95
    min_patients: int = 3
    small_group_n: int = 5
    exclude_regions: tuple[str, ...] = ("none",)
    mild_max: float = 3.0
    severe_vas: float = 7.0
    ols_predictors: tuple[str, ...] = ("lumbar_involved", "n_involved", "hi_area_ratio")
    prediction_features: tuple[str, ...] = (
        "n_involved",
        "hi_area_ratio",
        "hi_volume_ratio",
        "lumbar_involved",
    )
    cv_folds: int = 5
    logistic_c: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0.5 < self.ci_level < 1):
            raise ConfigError(f"StatsParams.ci_level must be in (0.5, 1), got {self.ci_level!r}")
        if int(self.min_patients) < 3:
            raise ConfigError(f"StatsParams.min_patients must be >= 3, got {self.min_patients!r}")
        if int(self.small_group_n) < 1:
            raise ConfigError(f"StatsParams.small_group_n must be >= 1, got {self.small_group_n!r}")
        if not (self.mild_max < self.severe_vas):
            raise ConfigError(
                f"StatsParams: mild_max ({self.mild_max!r}) must be below severe_vas ({self.severe_vas!r})"
            )
        if int(self.cv_folds) < 2:
            raise ConfigError(f"StatsParams.cv_folds must be >= 2, got {self.cv_folds!r}")
        if not (self.logistic_c > 0):
            raise ConfigError(f"StatsParams.logistic_c must be > 0, got {self.logistic_c!r}")
        for name in ("exclude_regions", "ols_predictors", "prediction_features"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"StatsParams.{name} must be a tuple of column names, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if not self.ols_predictors or not self.prediction_features:
            raise ConfigError("StatsParams: ols_predictors and prediction_features must not be empty")


# --- cohort run (owner: pipeline work) -----------------------------------------------------

#: Address schemes dask.distributed knows (``distributed.comm.registry``); an address without
#: ``scheme://`` is TCP.
DASK_SCHEMES = ("inproc", "tcp", "tls", "ucx", "ws", "wss")


def check_scheduler_address(scheduler: str) -> None:
    """Refuse a ``--scheduler`` that is neither ``local`` nor a Dask address, before anything runs.

    Parameters
    ----------
    scheduler : str
        ``"local"``, ``tcp://host:port``, ``host:port`` or another scheme of :data:`DASK_SCHEMES`.

    Raises
    ------
    ConfigError
        Blank, an unknown scheme (``bogus://x``) or no host; the message names the value.
    """
    text = str(scheduler).strip()
    if not text:
        raise ConfigError("scheduler must be 'local' or a Dask scheduler address (tcp://HOST:8786)")
    if text == "local":
        return
    scheme, sep, location = text.rpartition("://")
    if sep and scheme.lower() not in DASK_SCHEMES:
        raise ConfigError(
            f"scheduler must be 'local' or a Dask scheduler address such as tcp://HOST:8786, got "
            f"{text!r} (unknown scheme {scheme!r}; known: {', '.join(DASK_SCHEMES)})"
        )
    if not location.strip() or any(c.isspace() for c in text):
        raise ConfigError(
            f"scheduler must be 'local' or a Dask scheduler address such as tcp://HOST:8786, got {text!r}"
        )


def check_series_choice(series: str) -> None:
    """Refuse a ``--series`` that is not a UID, a number or a valid regular expression.

    Parameters
    ----------
    series : str
        SeriesInstanceUID, SeriesNumber or a regular expression on SeriesDescription.

    Raises
    ------
    ConfigError
        The text is not a valid regular expression (``a{99999999999}`` overflowed
        :func:`re.compile` inside every case).
    """
    import re

    try:
        re.compile(str(series), re.I)
    except (re.error, OverflowError, RecursionError, MemoryError) as exc:
        raise ConfigError(
            f"series must be a SeriesInstanceUID, a SeriesNumber or a valid regular expression on the "
            f"SeriesDescription, got {str(series)!r} ({type(exc).__name__}: {exc})"
        ) from None


@dataclass(frozen=True)
class RunConfig:
    """Options of a cohort run (``spinemri run``); recorded in provenance.json.

    Parameters
    ----------
    workers : int, default 1
        Worker processes (1 = run in this process).
    scheduler : str or None, default None
        ``"local"`` for a Dask LocalCluster of ``workers`` processes, or a Dask
        scheduler address (``tcp://host:8786``). None = no Dask.
    scheme : str, default "auto"
        Label scheme name or JSON/YAML file (DESIGN §3).
    method : str, default "robust"
        Lesion threshold method (DESIGN §4).
    series : str or None, default None
        DICOM series choice: SeriesInstanceUID, SeriesNumber or a regular
        expression matched against SeriesDescription.
    resample_mask : bool, default False
        Resample masks on another grid (nearest-neighbour) instead of failing the case.
    force : bool, default False
        Recompute every case, ignoring finished results of an earlier run.
    segment : tuple of (str, value) pairs, default ()
        Further segmentation parameters (``k``, ``polarity``, ``min_lesion_mm3``,
        ...), passed to :func:`spinemri.measure`; range-checked here, when the
        config is built (:func:`measure_params`), not later in every case.
    check_plausibility : bool, default True
        Refuse implausible cases (a CT image measured as MR marrow, a mask without any
        vertebra-sized label; :mod:`spinemri.plausibility`); False (``--no-plausibility-check``)
        measures them, warned and flagged in the ``plausibility`` columns.
    dicom_seg : bool, default False
        Also write ``masks/<id>_lesions.seg.dcm``, a DICOM Segmentation of the
        lesion mask referencing the source series, for DICOM cases
        (docs/dicom-seg.md; it carries the source's patient module).
    dicom_seg_vertebrae : bool, default False
        Add one segment per vertebral level to that DICOM-SEG (implies ``dicom_seg``).
    guidance : bool, default True
        Also compute each vertebra's body heights and SINS imaging components
        (:func:`spinemri.guidance.case.guidance_case`) into ``guidance.csv`` and the per-patient
        planning summary ``planning.csv`` / ``planning_levels.csv`` (issue 15; decision support).
        ``--no-guidance`` skips them (about 0.3 s per 23-level case).
    canal_screening : bool, default False
        Experimental (issue 15): per level the canal and cord areas and a screening flag for
        possible epidural disease / cord compression (an ESCC-like grade) in guidance.csv, when
        the mask has canal and cord (SPINEPS, TotalSpineSeg); a screening aid, not a grading.
    """

    workers: int = 1
    scheduler: str | None = None
    scheme: str = "auto"
    method: str = "robust"
    series: str | None = None
    resample_mask: bool = False
    force: bool = False
    segment: tuple[tuple[str, Any], ...] = ()
    check_plausibility: bool = True
    dicom_seg: bool = False
    dicom_seg_vertebrae: bool = False
    guidance: bool = True
    canal_screening: bool = False

    def __post_init__(self) -> None:
        for name in ("guidance", "canal_screening"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.dicom_seg_vertebrae:
            object.__setattr__(self, "dicom_seg", True)
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers must be a whole number >= 1, got {self.workers!r}")
        if not isinstance(self.check_plausibility, bool):
            raise ConfigError(f"check_plausibility must be True or False, got {self.check_plausibility!r}")
        if self.scheduler is not None:
            check_scheduler_address(self.scheduler)
        if self.series is not None:
            check_series_choice(self.series)
        object.__setattr__(self, "segment", tuple(sorted((str(k), v) for k, v in dict(self.segment).items())))
        measure_params({"method": self.method, **dict(self.segment)})  # ConfigError now, not in every case

    def measure_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`spinemri.measure` (everything that changes results).

        Returns
        -------
        dict of str to Any
            ``scheme`` and ``method``, plus every ``segment`` option (key to
            value, keys sorted); a ``segment`` key ``method`` overrides
            :attr:`method`; ``check_plausibility=False`` when overridden (absent by default, so
            the parameter hash of earlier runs is unchanged).
        """
        options = {"scheme": self.scheme, "method": self.method, **dict(self.segment)}
        if not self.check_plausibility:
            options["check_plausibility"] = False
        return options
