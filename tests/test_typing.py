"""The package type-checks (STYLE: full type hints, checked in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is part of the test extras: pip install -e '.[test]'")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "spinemri"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
