"""Exceptions and warnings raised by spinemri.

Every error a user can cause is a :class:`SpinemriError`. Subclasses also
inherit the matching built-in exception, so ``except ValueError`` (or
``OSError``) in calling code keeps working.

A message says what is wrong, with the offending value and file, what was
expected, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "SpinemriError",
    "InputError",
    "DicomError",
    "PlausibilityError",
    "GeometryError",
    "LabelSchemeError",
    "LinkError",
    "ConfigError",
    "SchedulerError",
    "OutputError",
    "SpinemriWarning",
]


class SpinemriError(Exception):
    """Base class of every error a user of spinemri can cause."""


class InputError(SpinemriError, ValueError):
    """A path or file cannot be used: missing, unreadable, unknown format, corrupt."""


class DicomError(InputError):
    """A DICOM file or series cannot be turned into one 3-D volume."""


class PlausibilityError(InputError):
    """A readable input that is implausible for the measurement: a CT image measured as MR marrow, ...

    Overridable: ``spinemri.measure(..., check_plausibility=False)``, CLI ``--no-plausibility-check``.
    """


class GeometryError(SpinemriError, ValueError):
    """Inconsistent geometry: invalid affine, mismatched grids, bad spacing."""


class LabelSchemeError(SpinemriError, ValueError):
    """A label mask or label scheme cannot be interpreted as vertebral levels."""


class LinkError(SpinemriError, ValueError):
    """A clinical table cannot be joined to the imaging results."""


class ConfigError(SpinemriError, ValueError):
    """A parameter or configuration value is out of range or unknown."""


class SchedulerError(ConfigError):
    """``--scheduler`` names no usable Dask scheduler (none answers, or not Dask): exit 2."""


class OutputError(SpinemriError, OSError):
    """An output file could not be written (no space left on device, quota, permission)."""


class SpinemriWarning(UserWarning):
    """A recoverable data problem that spinemri worked around (and recorded)."""
