"""spinemri: per-vertebra metastatic marrow burden from spine MRI, linked to pain.

The public API (DESIGN §2) is importable from the package root; downstream
code and the command line use only these names. Heavy submodules are imported
on first use, so ``import spinemri`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import (
    ConfigError,
    DicomError,
    GeometryError,
    InputError,
    LabelSchemeError,
    LinkError,
    PlausibilityError,
    SpinemriError,
    SpinemriWarning,
)
from .volume import Volume

__all__ = [
    "__version__",
    # data model and errors
    "Volume",
    "SpinemriError",
    "InputError",
    "DicomError",
    "PlausibilityError",
    "GeometryError",
    "LabelSchemeError",
    "LinkError",
    "ConfigError",
    "SpinemriWarning",
    # input and output
    "load_volume",
    "load_mask",
    "list_series",
    "save_nifti",
    "to_nibabel",
    "from_nibabel",
    "to_sitk",
    "from_sitk",
    # levels
    "LabelScheme",
    "get_scheme",
    "resolve_scheme",
    # parameters
    "SegmentParams",
    "MetricsParams",
    "LinkParams",
    "StatsParams",
    "RunConfig",
    "PhantomParams",
    # the chain and its results
    "make_phantom",
    "PhantomTruth",
    "measure",
    "Measurement",
    "link",
    "LinkReport",
    "analyze",
    "Analysis",
    "NotComputable",
    "run_cohort",
    "RunSummary",
]

#: name -> module that defines it (imported on first attribute access). The ``TYPE_CHECKING``
#: block below imports the same names from the same modules, so a type checker sees their real
#: types (tests/test_typing.py checks that the two agree).
_LAZY: dict[str, str] = {
    "load_volume": "spinemri.io.load",
    "load_mask": "spinemri.io.load",
    "list_series": "spinemri.io.dicom.series",
    "save_nifti": "spinemri.io.nifti",
    "to_nibabel": "spinemri.io.convert",
    "from_nibabel": "spinemri.io.convert",
    "to_sitk": "spinemri.io.convert",
    "from_sitk": "spinemri.io.convert",
    "LabelScheme": "spinemri.levels",
    "get_scheme": "spinemri.levels",
    "resolve_scheme": "spinemri.scheme_choice",
    "SegmentParams": "spinemri.params",
    "MetricsParams": "spinemri.params",
    "LinkParams": "spinemri.params",
    "StatsParams": "spinemri.params",
    "RunConfig": "spinemri.params",
    "PhantomParams": "spinemri.phantom.params",
    "make_phantom": "spinemri.phantom.make",
    "PhantomTruth": "spinemri.phantom.truth",
    "measure": "spinemri.measurement",
    "Measurement": "spinemri.measurement",
    "link": "spinemri.linking",
    "LinkReport": "spinemri.linking",
    "analyze": "spinemri.stats.study",
    "Analysis": "spinemri.stats.results",
    "NotComputable": "spinemri.stats.results",
    "run_cohort": "spinemri.pipeline.cohort",
    "RunSummary": "spinemri.pipeline.cohort",
}

logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs: every lazy name, its real type
    from .io.convert import from_nibabel, from_sitk, to_nibabel, to_sitk
    from .io.dicom.series import list_series
    from .io.load import load_mask, load_volume
    from .io.nifti import save_nifti
    from .levels import LabelScheme, get_scheme
    from .linking import LinkReport, link
    from .measurement import Measurement, measure
    from .params import LinkParams, MetricsParams, RunConfig, SegmentParams, StatsParams
    from .phantom.make import make_phantom
    from .phantom.params import PhantomParams
    from .phantom.truth import PhantomTruth
    from .pipeline.cohort import RunSummary, run_cohort
    from .scheme_choice import resolve_scheme
    from .stats.results import Analysis, NotComputable
    from .stats.study import analyze
else:

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'spinemri' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
