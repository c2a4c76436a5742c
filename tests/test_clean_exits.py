"""Issue 17, item 6: clean exits. Ctrl-C prints one line saying how to resume (no traceback), stops
the workers and leaves nothing half-written; a reader that goes away (``| head``) is silent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spinemri.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
REPO = Path(__file__).resolve().parents[1]


def _cohort(root: Path, n: int) -> Path:
    for i in range(n):
        shutil.copytree(SAMPLE / ("SMR-002" if i % 2 else "SMR-004"), root / f"P{i:02d}")
    return root


def _tmp_names(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if ".tmp" in p.name]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_prints_one_line_and_the_rerun_resumes(tmp_path: Path, workers: str) -> None:
    cohort = _cohort(tmp_path / "cohort", 12)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "spinemri.cli", "run", str(cohort), "--out", str(out), "--workers", workers]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=REPO
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("cases/*/state.json")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole process group
    _, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if proc.returncode == 0:  # pragma: no cover - the run finished before the signal landed
        pytest.skip("the run finished before Ctrl-C arrived")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert lines[-1] == (
        "spinemri run: interrupted; rerun the same command to resume (finished cases are kept and skipped)"
    )
    time.sleep(0.5)
    assert not _tmp_names(out), "a half-written temporary file was left"
    done_before = len(list(out.glob("cases/*/state.json")))
    rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done_before} skipped (unchanged)" in rerun.stderr, rerun.stderr
    assert len(list(out.glob("cases/*/state.json"))) == 12


def test_keyboard_interrupt_in_a_command_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import spinemri.commands.analyze as analyze_cmd

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(analyze_cmd, "run", interrupted)
    from spinemri import cli

    parser_func = cli.build_parser
    monkeypatch.setattr(
        cli,
        "build_parser",
        lambda: _with_func(parser_func(), "analyze", interrupted),
    )
    assert main(["analyze", "x.csv", "--out", "y"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["spinemri analyze: interrupted; nothing half-written was left"]


def _with_func(parser: object, command: str, func: object) -> object:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.choices[command].set_defaults(func=func)
    return parser


def test_broken_pipe_is_silent(tmp_path: Path) -> None:
    # a reader that closes at once: `spinemri measure ... | head -0`
    script = (
        "import sys\n"
        "from spinemri.cli import main\n"
        "sys.exit(main(['measure', sys.argv[1], '--mask', sys.argv[2]]))\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            str(SAMPLE / "SMR-002" / "image.nii.gz"),
            str(SAMPLE / "SMR-002" / "vertebrae_mask.nii.gz"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before spinemri writes its table
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert proc.returncode == 0


def test_warnings_are_one_line(tmp_path: Path) -> None:
    import nibabel as nib
    import numpy as np

    # a mask 1 mm off the image grid: resampled with a SpinemriWarning
    src = nib.load(SAMPLE / "SMR-002" / "vertebrae_mask.nii.gz")
    affine = src.affine.copy()
    affine[:3, 3] += np.array([0.0, 0.6, 0.0])
    shifted = tmp_path / "shifted_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(src.dataobj), affine), shifted)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spinemri.cli",
            "measure",
            str(SAMPLE / "SMR-002" / "image.nii.gz"),
            "--mask",
            str(shifted),
            "--resample-mask",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    warned = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning")]
    assert warned and any("nearest-neighbour" in ln for ln in warned), proc.stderr
    # no Python source line after a warning (was: "  mask = load_mask(mask_path, like=image, ...)")
    assert not [ln for ln in proc.stderr.splitlines() if ln.startswith("  ") and "(" in ln], proc.stderr
    assert ".py:" not in proc.stderr


def test_measure_summary_counts_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SMR-001 (DICOM) has one lesion in L2 (sample_data/truth.csv): "1 lesion", not "1 lesions"
    truth = (SAMPLE / "truth.csv").read_text(encoding="utf-8").splitlines()
    assert truth[1].split(",")[9] == "1"  # total_lesion_count of SMR-001, from the phantom's truth
    rc = main(
        [
            "measure",
            str(SAMPLE / "SMR-001" / "dicom"),
            "--mask",
            str(SAMPLE / "SMR-001" / "vertebrae_mask.nii.gz"),
            "--patient-id",
            "SMR-001",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "9 vertebrae, 1 lesion;" in err, err
