"""Issue 16 Deliver 3: a ``spinemri run`` killed at random points resumes to the uninterrupted outputs.

Each seed starts ``spinemri run`` in its own process group, waits until it holds the output lock
(``OUT/.spinemri.lock`` holds its process id), checks that a second run into the same folder is
refused meanwhile, then SIGKILLs the whole group after a random delay (anywhere from "nothing
measured yet" to "almost done") and reruns. The rerun's outputs must equal an uninterrupted
run's byte for byte: the tables, the lesion masks (decompressed), the QC pictures, the per-case
state, and provenance.json minus timings, dates and the done/skipped counts.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from spinemri.errors import InputError
from spinemri.io.cohort_write import CohortSpec, write_cohort
from spinemri.pipeline.cohort import run_cohort

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and process groups are POSIX")

SMALL = {"first_level": "T11", "last_level": "S1", "rows": 128, "cols": 96, "n_slices": 9, "supersample": 2}
#: Keys of provenance.json that legitimately differ between an interrupted+resumed and a fresh run.
VOLATILE = {"timings_s", "created_utc", "done", "skipped"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash_cohort")
    write_cohort(root, CohortSpec(n_patients=4, seed=7, format="mixed"), **SMALL)
    return root


@pytest.fixture(scope="module")
def reference(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("crash_ref") / "out"
    t0 = time.perf_counter()
    assert run_cohort(cohort, out).exit_code == 0
    return out, time.perf_counter() - t0


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _outputs(out: Path) -> dict[str, Any]:
    """Every output file by relative name: bytes (masks decompressed; JSON without volatile keys)."""
    got: dict[str, Any] = {}
    for f in sorted(out.rglob("*")):
        if not f.is_file() or f.name == ".spinemri.lock":
            continue
        rel = f.relative_to(out).as_posix()
        if f.name.endswith(".gz"):
            got[rel] = gzip.decompress(f.read_bytes())
        elif f.suffix == ".json":
            got[rel] = _strip(json.loads(f.read_text(encoding="utf-8")))
        else:
            got[rel] = f.read_bytes()
    return got


def _lock_holder(out: Path) -> str:
    try:
        return (out / ".spinemri.lock").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _kill_at_random_point(cohort: Path, out: Path, seed: int, span_s: float) -> None:
    rng = random.Random(seed)
    cmd = [sys.executable, "-m", "spinemri.cli", "run", str(cohort), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while _lock_holder(out) != str(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            # the first run holds the lock: a second run into the same folder is refused, writing nothing
            before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
            with pytest.raises(InputError, match="in use by another spinemri run"):
                run_cohort(cohort, out)
            if proc.poll() is None:  # (it may have finished meanwhile and written its last files)
                assert set(before) <= {p.relative_to(out).as_posix() for p in out.rglob("*")}
            time.sleep(rng.uniform(0.0, span_s))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _check_seed(cohort: Path, reference: tuple[Path, float], tmp_path: Path, seed: int) -> None:
    ref, elapsed = reference
    out = tmp_path / f"killed-{seed}"
    _kill_at_random_point(cohort, out, seed, span_s=1.2 * elapsed)
    rerun = run_cohort(cohort, out)
    assert rerun.exit_code == 0 and rerun.done + rerun.skipped == 4
    want, got = _outputs(ref), _outputs(out)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], f"seed {seed}: {name} differs from the uninterrupted run"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_killed_at_a_random_point_then_resumed_equals_uninterrupted(
    cohort: Path, reference: tuple[Path, float], tmp_path: Path, seed: int
) -> None:
    _check_seed(cohort, reference, tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 15))
def test_killed_at_a_random_point_then_resumed_equals_uninterrupted_more_seeds(
    cohort: Path, reference: tuple[Path, float], tmp_path: Path, seed: int
) -> None:
    _check_seed(cohort, reference, tmp_path, seed)
