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


@pytest.fixture(autouse=True, scope="session")
def _pseudonym_key_in_tmp(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Every test (and the processes it starts) keeps the pseudonym key in a temporary folder.

    Loading a DICOM image creates the key file (``~/.config/spinemri/id_key`` by default,
    :mod:`spinemri.io.idkey`); tests never write to the real home.
    """
    import os

    names = ("SPINEMRI_ID_KEY", "SPINEMRI_ID_KEY_FILE", "SPINEMRI_ID_SALT")
    saved = {n: os.environ.pop(n, None) for n in names}
    os.environ["SPINEMRI_ID_KEY_FILE"] = str(tmp_path_factory.mktemp("idkey") / "id_key")
    yield
    for n, v in saved.items():
        if v is None:
            os.environ.pop(n, None)
        else:
            os.environ[n] = v
