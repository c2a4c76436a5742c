"""The portable build of the kernels (``-DSPM_PORTABLE``: no SSE2 intrinsics, no AVX2 clones) gives
what the build under test gives.

The plain C paths of ``spinemri/_kernels.pyx`` are what a machine without SSE2 (ARM: Apple silicon,
Graviton) or without ``target_clones`` compiles (docs/decisions/0032); on an x86-64 Linux test
machine they would never run. Here they are built into a copy of the package, the kernel tests run
on it (each kernel against its numpy / scipy definition), and the segmentation snapshot
(``scripts/segment_snapshot.py``: 56 phantom / benchmark cases x outputs, C and Fortran order) is
compared with one saved from the regular build, array for array. Slow (a Cython build,
about a minute): run by hand with ``pytest -m slow``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
def test_portable_build_gives_the_same_segmentation(tmp_path: Path) -> None:
    pytest.importorskip("Cython", reason="building the kernels needs Cython (pip install 'cython>=3')")
    copy = tmp_path / "portable"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.so", "__pycache__", "*.c", "demo"),
    )
    env = {**os.environ, "CFLAGS": (os.environ.get("CFLAGS", "") + " -DSPM_PORTABLE").strip()}
    built = _run([sys.executable, "setup.py", "build_ext", "--inplace"], copy, env)
    assert built.returncode == 0, built.stderr[-2000:]
    so = list((copy / "spinemri").glob("_kernels*.so"))
    assert so, "the portable build wrote no extension module"
    if sys.platform.startswith("linux") and shutil.which("nm"):
        symbols = subprocess.run(["nm", str(so[0])], capture_output=True, text=True, check=False).stdout
        assert ".avx2" not in symbols  # the portable build has no clones

    there = {**os.environ, "PYTHONPATH": str(copy)}
    which = _run(
        [sys.executable, "-c", "import spinemri._native as n; print(n.kernels.__file__)"], copy, there
    )
    assert Path(which.stdout.strip()).resolve() == so[0].resolve(), which.stdout + which.stderr

    ref = tmp_path / "ref.npz"
    here = {**os.environ, "PYTHONPATH": str(ROOT)}
    saved = _run([sys.executable, "scripts/segment_snapshot.py", "save", str(ref)], ROOT, here)
    assert saved.returncode == 0, saved.stderr[-2000:]
    # the kernels against their numpy / scipy definitions (the polarity shell's packing among them)
    tests = ["tests/test_kernels.py", "tests/test_fixed_costs.py", "tests/test_edge_rings.py"]
    checked = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], copy, there)
    assert checked.returncode == 0, checked.stdout[-3000:]
    for order in ([], ["--order", "F"]):
        out = _run([sys.executable, "scripts/segment_snapshot.py", "compare", str(ref), *order], copy, there)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert " 0 differ" in out.stdout, out.stdout[-2000:]
