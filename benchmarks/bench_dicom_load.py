"""Benchmark: DICOM loading with spinemri vs SimpleITK vs dcm2niix (+ nibabel), side by side.

Run by hand (not part of the tests)::

    python benchmarks/bench_dicom_load.py [--repeats 7] [--data ../shared/data] [--work /tmp/bench_dcm]

Cases:

* ``native`` — 120 classic single-frame files of 512x512 uint16, Explicit VR
  Little Endian, drawn with ``spinemri.make_phantom`` and written with
  ``spinemri.io.dicom.write.write_dicom_series`` into ``--work`` (reused when
  present; see ``benchmarks/_dicom_data.py``);
* ``j2k`` — the same 120 files re-encoded to JPEG 2000 lossless with pydicom's
  ``Dataset.compress`` (pylibjpeg-openjpeg encoder);
* ``xa30``  — one Siemens XA30 enhanced multi-frame file, 96 frames of 128x128
  (../shared/data);
* ``decub`` — 35 classic single-frame files, 256x256 (Siemens E11, ../shared/data).

For each case and tool: one warm-up run, then the median (and min) wall time of
``--repeats`` runs (at least 5). Every tool produces a voxel array in memory:

* spinemri: ``spinemri.load_volume(path)``;
* SimpleITK: ``ImageSeriesReader`` over ``GetGDCMSeriesFileNames`` (classic
  series) or ``ReadImage`` (the single enhanced file), then ``GetArrayFromImage``;
* dcm2niix: subprocess into a fresh temporary folder (``-z n -b n``), then
  ``nibabel.load(...).get_fdata``-free ``np.asanyarray(dataobj)``;
* floor (synthetic cases): read each file's bytes and take the pixels with one
  ``np.frombuffer`` into a preallocated stack (uncompressed), or decode each
  file's JPEG 2000 codestream with the same codec pydicom uses
  (``openjpeg.decode_pixel_data``), nothing else: no header parsing, no checks.

Prints times in ms and each tool's ratio to SimpleITK and to the floor, and
checks that spinemri's voxels equal SimpleITK's.
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


def _floor(path: Path, compressed: bool) -> Callable[[], np.ndarray]:
    """The I/O floor: bytes -> one np.frombuffer per file (or decode-only) into a preallocated stack."""
    files = sorted(path.glob("*.dcm"))
    rows = cols = 512
    if compressed:
        from openjpeg import decode_pixel_data

        def run() -> np.ndarray:
            out = np.empty((len(files), rows, cols), np.uint16)
            for k, f in enumerate(files):
                b = f.read_bytes()
                start = b.find(b"\xff\x4f\xff\x51")  # SOC + SIZ: the codestream
                end = b.rfind(b"\xff\xd9") + 2  # EOC
                out[k] = np.frombuffer(decode_pixel_data(b[start:end], version=2), np.uint16).reshape(
                    rows, cols
                )
            return out
    else:

        def run() -> np.ndarray:
            out = np.empty((len(files), rows, cols), np.uint16)
            n = rows * cols * 2
            for k, f in enumerate(files):
                b = f.read_bytes()
                out[k] = np.frombuffer(b, np.uint16, count=rows * cols, offset=len(b) - n).reshape(rows, cols)
            return out

    return run


def _same_voxels(a: np.ndarray, b: np.ndarray) -> bool:
    """spinemri (i=col, j=row, k=slice) vs SimpleITK (slice, row, col), either slice direction."""
    t = np.asarray(a).transpose(2, 1, 0)
    return t.shape == b.shape and (np.array_equal(t, b) or np.array_equal(t[::-1], b))


def _time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, float, tuple[int, ...]]:
    shape = fn().shape  # warm-up (imports, file cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3, tuple(shape)


def main(argv: list[str] | None = None) -> int:
    import os
    import platform

    import spinemri

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per tool (>= 5)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bench_dcm",
        help="where the synthetic 120x512x512 series are written (reused)",
    )
    parser.add_argument("--cases", default="native,j2k,xa30,decub", help="comma-separated subset")
    args = parser.parse_args(argv)
    repeats = max(5, args.repeats)
    wanted = set(args.cases.split(","))
    cases: dict[str, tuple[Path, str | None]] = {}
    if wanted & {"native", "j2k"}:
        sys.path.insert(0, str(HERE))
        from _dicom_data import make_series

        dirs = make_series(args.work)
        if "native" in wanted:
            cases["120x512x512 uncompressed (120 files)"] = (dirs["native"], "native")
        if "j2k" in wanted:
            cases["120x512x512 JPEG 2000 lossless (120 files)"] = (dirs["j2k"], "j2k")
    xa30_dir = args.data / "dcm_qa_xa30_t1w_sagittal_enhanced" / "In" / "5_anat-T1w_acq-tfl"
    if "xa30" in wanted:
        cases["xa30 enhanced 96 frames (1 file)"] = (
            next(iter(sorted(xa30_dir.glob("*.dcm"))), xa30_dir),
            None,
        )
    if "decub" in wanted:
        cases["decubitus 35 classic files"] = (
            args.data / "dcm_qa_decubitus_t1_sagittal_HFS" / "In" / "HFS" / "3_t1_fl2d_sag",
            None,
        )
    exe = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))
    print(
        f"# spinemri {spinemri.__version__}, Python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"load average before {os.getloadavg()[0]:.2f}; median of {repeats} runs after one warm-up"
    )
    for name, (path, kind) in cases.items():
        if not path.exists():
            print(f"\n## {name}: skipped, {path} not found")
            continue
        tools = {"spinemri.load_volume": _spinemri(path), "SimpleITK": _sitk(path)}
        if Path(exe).exists():
            tools["dcm2niix + nibabel"] = _dcm2niix(path, exe)
        if kind is not None:
            tools["floor (read + frombuffer/decode)"] = _floor(path, kind == "j2k")
        results = {tool: _time(fn, repeats) for tool, fn in tools.items()}
        same = _same_voxels(tools["spinemri.load_volume"](), tools["SimpleITK"]())
        base = results["SimpleITK"][0]
        floor = results.get("floor (read + frombuffer/decode)", (float("nan"),))[0]
        print(
            f"\n## {name}; spinemri voxels equal SimpleITK's: {same}; load average {os.getloadavg()[0]:.2f}"
        )
        print("| tool | median (ms) | min (ms) | x SimpleITK | x floor | shape |")
        print("|---|---|---|---|---|---|")
        for tool, (med, mn, shape) in results.items():
            print(f"| {tool} | {med:.1f} | {mn:.1f} | {med / base:.2f} | {med / floor:.2f} | {shape} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
