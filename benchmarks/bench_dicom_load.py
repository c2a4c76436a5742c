"""Benchmark: DICOM loading with spinemri vs SimpleITK vs dcm2niix (+ nibabel), side by side.

Run by hand (not part of the tests)::

    python benchmarks/bench_dicom_load.py [--repeats 7] [--data ../shared/data]

Cases (from ../shared/data):

* ``xa30``  — one Siemens XA30 enhanced multi-frame file, 96 frames of 128x128;
* ``decub`` — 35 classic single-frame files, 256x256 (Siemens E11).

For each case and tool: one warm-up run, then the median (and min) wall time of
``--repeats`` runs (at least 5). Every tool produces a voxel array in memory:

* spinemri: ``spinemri.load_volume(path)``;
* SimpleITK: ``ImageSeriesReader`` over ``GetGDCMSeriesFileNames`` (classic
  series) or ``ReadImage`` (the single enhanced file), then ``GetArrayFromImage``;
* dcm2niix: subprocess into a fresh temporary folder (``-z n -b n``), then
  ``nibabel.load(...).get_fdata``-free ``np.asanyarray(dataobj)``.

Prints times in ms and ratios to spinemri (ratio > 1: spinemri is faster).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = (HERE / ".." / ".." / "shared" / "data").resolve()


def _spinemri(path: Path) -> Callable[[], np.ndarray]:
    import spinemri

    return lambda: np.asarray(spinemri.load_volume(path).data)


def _sitk(path: Path) -> Callable[[], np.ndarray]:
    import SimpleITK as sitk

    if path.is_dir():

        def run() -> np.ndarray:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path)))
            return sitk.GetArrayFromImage(reader.Execute())
    else:

        def run() -> np.ndarray:
            return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))

    return run


def _dcm2niix(path: Path, exe: str) -> Callable[[], np.ndarray]:
    import nibabel as nib

    folder = path if path.is_dir() else path.parent

    def run() -> np.ndarray:
        out = Path(tempfile.mkdtemp(prefix="bench_dcm2niix_"))
        try:
            subprocess.run(
                [exe, "-z", "n", "-b", "n", "-f", "%s", "-o", str(out), str(folder)],
                check=True,
                capture_output=True,
            )
            (nii,) = sorted(out.glob("*.nii"))
            return np.asanyarray(nib.load(str(nii)).dataobj)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    return run


def _time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, float, tuple[int, ...]]:
    shape = fn().shape  # warm-up (imports, file cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3, tuple(shape)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per tool (>= 5)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    args = parser.parse_args(argv)
    repeats = max(5, args.repeats)
    xa30_dir = args.data / "dcm_qa_xa30_t1w_sagittal_enhanced" / "In" / "5_anat-T1w_acq-tfl"
    cases = {
        "xa30 enhanced 96 frames (1 file)": next(iter(sorted(xa30_dir.glob("*.dcm"))), xa30_dir),
        "decubitus 35 classic files": args.data
        / "dcm_qa_decubitus_t1_sagittal_HFS"
        / "In"
        / "HFS"
        / "3_t1_fl2d_sag",
    }
    exe = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))
    print(f"median of {repeats} runs after one warm-up; times in ms (min in brackets)")
    print(f"{'case':<36} {'tool':<22} {'median':>8} {'min':>8}  {'x spinemri':>10}  shape")
    for name, path in cases.items():
        if not path.exists():
            print(f"{name:<36} skipped: {path} not found")
            continue
        tools = {"spinemri.load_volume": _spinemri(path), "SimpleITK": _sitk(path)}
        if Path(exe).exists():
            tools["dcm2niix + nibabel"] = _dcm2niix(path, exe)
        results = {tool: _time(fn, repeats) for tool, fn in tools.items()}
        base = results["spinemri.load_volume"][0]
        for tool, (med, mn, shape) in results.items():
            print(f"{name:<36} {tool:<22} {med:8.1f} {mn:8.1f}  {med / base:10.2f}  {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
