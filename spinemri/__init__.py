"""spinemri: per-vertebra metastatic marrow burden from spine MRI, linked to pain.

The public API (DESIGN §2) is importable from the package root; downstream
code and the command line use only these names. Heavy submodules are imported
on first use, so ``import spinemri`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ConfigError,
    DicomError,
    GeometryError,
    InputError,
    LabelSchemeError,
    LinkError,
    SpinemriError,
    SpinemriWarning,
)
from .volume import Volume

__all__ = [
    "__version__",
    "Volume",
    "SpinemriError",
    "InputError",
    "DicomError",
    "GeometryError",
    "LabelSchemeError",
    "LinkError",
    "ConfigError",
    "SpinemriWarning",
    "load_volume",
    "load_mask",
    "list_series",
    "save_nifti",
    "to_nibabel",
    "from_nibabel",
    "to_sitk",
    "from_sitk",
    "LabelScheme",
    "get_scheme",
    "resolve_scheme",
    "make_phantom",
    "measure",
    "Measurement",
    "link",
    "analyze",
    "run_cohort",
]

# name -> module that defines it (imported lazily on first attribute access)
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
    "resolve_scheme": "spinemri.levels",
    "make_phantom": "spinemri.phantom.make",
    "measure": "spinemri.measurement",
    "Measurement": "spinemri.measurement",
    "link": "spinemri.linking",
    "analyze": "spinemri.stats.study",
    "run_cohort": "spinemri.pipeline.cohort",
}

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spinemri' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .io.convert import from_nibabel, from_sitk, to_nibabel, to_sitk
    from .io.dicom.series import list_series
    from .io.load import load_mask, load_volume
    from .io.nifti import save_nifti
    from .levels import LabelScheme, get_scheme, resolve_scheme
