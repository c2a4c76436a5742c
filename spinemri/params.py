"""Typed, frozen parameter sets: every decision's default is written once, here.

Each dataclass range-checks its fields in ``__post_init__`` and raises
:class:`~spinemri.errors.ConfigError`; ``to_dict()`` gives the JSON-able form
recorded in provenance next to package versions and input hashes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ConfigError

__all__ = ["as_dict", "check_known_keys"]


def as_dict(params: Any) -> dict[str, Any]:
    """JSON-able dict of a parameter dataclass (for provenance)."""
    return asdict(params)


def check_known_keys(cls: type, keys: Any, where: str = "") -> None:
    """Raise ConfigError naming any key that is not a field of ``cls``."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )


# --- segmentation and metrics (owner: measure work) ---------------------------------------


# --- link and statistics (owner: link/analyze work) ---------------------------------------


# --- cohort run (owner: pipeline work) -----------------------------------------------------
