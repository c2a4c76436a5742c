"""Shared fixtures: a seeded RNG and the path to ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the calling test with a reason when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared test data not present at {p} (../shared/data is beside the repository in CI)")
    return p


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator: tests are reproducible."""
    return np.random.default_rng(20251126)


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data folder (skips when absent)."""
    return shared_path()
