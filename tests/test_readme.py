"""The README's promises hold: its Python example runs from the repository root (also after a plain
``pip install .``, when the source tree has no compiled kernels), and ``spinemri demo`` gives a report
on which every analysis of the study computes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def _run_python(code: str, cwd: Path, pythonpath: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-"], input=code, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_readme_has_a_python_example() -> None:
    assert readme_python_blocks(), "README.md has no ```python block"


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_python_example_runs_from_the_repository_root(index: int) -> None:
    proc = _run_python(readme_python_blocks()[index], REPO, None)
    assert proc.returncode == 0, proc.stderr[-3000:]


#: An editable install of another checkout (``pip install -e``) answers every ``spinemri.*`` import
#: the source tree lacks through its meta-path finder; a plain ``pip install .`` has none, so the
#: simulated one below is run without it.
NO_EDITABLE_FINDER = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path\n"
    "                    if not getattr(f, '__module__', '').startswith('__editable__')]\n"
)


def _fake_install(tmp_path: Path, version: str | None = None) -> tuple[Path, Path]:
    """A clone without built kernels (src/) and an installed copy with them (site/)."""
    src, site = tmp_path / "src", tmp_path / "site"
    ignore_ext = shutil.ignore_patterns("_kernels.*.so", "_kernels.*.pyd", "__pycache__")
    shutil.copytree(REPO / "spinemri", src / "spinemri", ignore=ignore_ext)
    (src / "sample_data").symlink_to(REPO / "sample_data", target_is_directory=True)
    shutil.copytree(REPO / "spinemri", site / "spinemri", ignore=shutil.ignore_patterns("__pycache__"))
    assert list((site / "spinemri").glob("_kernels.*")), "the kernels are not built in this checkout"
    assert not [p for p in (src / "spinemri").glob("_kernels.*") if p.suffix in (".so", ".pyd")]
    if version is not None:
        (site / "spinemri" / "_version.py").write_text(f'__version__ = "{version}"\n', encoding="utf-8")
    return src, site


def test_source_tree_without_kernels_uses_the_installed_ones(tmp_path: Path) -> None:
    src, site = _fake_install(tmp_path)
    check = "\nimport spinemri, spinemri._native as n\nprint(spinemri.__file__, n.kernels.__file__)\n"
    proc = _run_python(NO_EDITABLE_FINDER + readme_python_blocks()[0] + check, src, str(site))
    assert proc.returncode == 0, proc.stderr[-3000:]
    package_file, kernels_file = proc.stdout.split()[-2:]
    assert Path(package_file).parent == (src / "spinemri").resolve()  # the source tree is imported
    assert Path(kernels_file).parent == (site / "spinemri").resolve()  # with the installed kernels


def test_installed_kernels_of_another_version_are_not_used(tmp_path: Path) -> None:
    src, site = _fake_install(tmp_path, version="0.0.0-other")
    proc = _run_python(NO_EDITABLE_FINDER + "import spinemri._native\n", src, str(site))
    assert proc.returncode != 0
    assert "compiled kernels (spinemri/_kernels.pyx) are not built" in proc.stderr


def analyses(summary: dict) -> dict[str, dict]:
    """Every analysis of a summary.json by name."""
    out = {
        "vas_by_dominant_region": summary["vas_by_dominant_region"],
        "lumbar_vs_non_lumbar": summary["lumbar_vs_non_lumbar"],
        "regression.ols": summary["regression"]["ols"],
        "regression.ordinal": summary["regression"]["ordinal"],
        "prediction": summary["prediction"],
    }
    for s in summary["spearman"]:
        out[f"spearman.{s['x']}~{s['y']}"] = s
    return out


def _demo(out: Path, *options: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "spinemri.cli", "demo", str(out), *options],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(out / "results" / "analysis" / "report.html") in proc.stdout
    return json.loads((out / "results" / "analysis" / "summary.json").read_text(encoding="utf-8"))


def test_demo_every_analysis_computes(tmp_path: Path) -> None:
    # a smaller cohort than the README's (80 patients, seed 1) on which every analysis also computes
    summary = _demo(tmp_path / "demo", "--patients", "40", "--seed", "2", "--workers", "2")
    not_computable = {k: v.get("reason") for k, v in analyses(summary).items() if not v["computable"]}
    assert not not_computable
    assert len(analyses(summary)) == 10
    report = (tmp_path / "demo" / "results" / "analysis" / "report.html").read_text(encoding="utf-8")
    assert "Not computable" not in report
    assert (tmp_path / "demo" / "cohort" / "truth.csv").is_file()
    # a second run reuses the cohort and the measured cases
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spinemri.cli",
            "demo",
            str(tmp_path / "demo"),
            "--patients",
            "40",
            "--seed",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0 and "reusing the phantom cohort" in proc.stderr
    assert "40 skipped (unchanged)" in proc.stderr


@pytest.mark.slow
def test_readme_demo_shows_the_study_findings(tmp_path: Path) -> None:
    """The README's demo (default options): every analysis computes and the findings it names hold."""
    summary = _demo(tmp_path / "demo")
    assert all(v["computable"] for v in analyses(summary).values())
    kr = summary["vas_by_dominant_region"]
    assert kr["p_value"] < 0.05
    medians = {g: s["median"] for g, s in kr["groups"].items()}
    assert max(medians, key=lambda g: medians[g]) == "lumbar"
    mw = summary["lumbar_vs_non_lumbar"]
    assert mw["p_value"] < 0.001 and mw["median_lumbar"] > mw["median_other"]
    sp = {(s["x"], s["y"]): s for s in summary["spearman"]}
    for pair in (("n_involved", "hi_area_ratio"), ("vas", "n_involved"), ("vas", "hi_area_ratio")):
        assert sp[pair]["rho"] > 0.3 and sp[pair]["p_value"] < 0.01, pair
    assert summary["prediction"]["auc"] > 0.8
