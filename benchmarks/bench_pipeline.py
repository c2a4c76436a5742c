#!/usr/bin/env python
"""Benchmark: load + measure against the I/O floor, peak memory of one case, cohort throughput.

Run by hand (not a test)::

    python benchmarks/bench_pipeline.py [--repeats 5] [--work /tmp/bench_pipeline]
        [--sections loadmeasure,memory,cohort] [--cohort-repeats 5]

Sections (each prints a table with times and ratios):

* ``loadmeasure`` — ``load_volume`` (DICOM series) + ``load_mask`` (NIfTI
  .nii.gz) + ``measure`` in one warm process, against the I/O floor: read every
  DICOM file's bytes and take its pixels with one ``np.frombuffer`` into a
  preallocated stack, plus read and gunzip the mask and ``np.frombuffer`` it.
  Cases: a 512x256x15 phantom (``spinemri phantom`` defaults) and the
  120x512x512 series of ``bench_dicom_load.py`` with its phantom mask.
* ``memory`` — peak RSS (GNU ``/usr/bin/time -f %M``) of one
  ``spinemri measure IMAGE --mask MASK --out DIR`` process against a process
  that only imports the modules such a run ends up with (its ``sys.modules``);
  the target is peak <= imports + 3 x the image's bytes in memory. Cases: the two
  DICOM series above, the 120-slice one as a .nii.gz, int16 and uint16 (NIfTI
  arrives Fortran-ordered from nibabel), and the same phantom at 512x512x20 as int16 and uint16
  .nii.gz files and as a DICOM series.
* ``cohort`` — ``spinemri run COHORT --out DIR --force --quiet`` on a phantom
  cohort of 12 cases of 384x384x15 (``spinemri phantom --rows 384 --cols 384
  --slices 15``): serial, ``--workers 2`` (process pool) and ``--scheduler
  local --workers 2`` (Dask LocalCluster), median of ``--cohort-repeats``
  runs after a warm-up, as subprocesses.

Timing: ``time.perf_counter``, one warm-up, then the median (and min) of the
runs. The machine's 1-minute load average is printed before each section.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SPINEMRI = str(Path(sys.executable).with_name("spinemri"))


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    fn()  # warm-up (imports, page cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


# --------------------------------------------------------------------------- data


def phantom_dicom_case(work: Path) -> tuple[Path, Path]:
    """A 512x256x15 phantom case written by ``spinemri phantom --format dicom`` (reused)."""
    root = work / "phantom_dicom"
    case = root / "SMR-001"
    if not (case / "vertebrae_mask.nii.gz").exists():
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([SPINEMRI, "phantom", str(root), "--patients", "1", "--format", "dicom"], check=True,
                       capture_output=True)  # fmt: skip
    return case / "dicom", case / "vertebrae_mask.nii.gz"


def big_dicom_case(work: Path) -> tuple[Path, Path]:
    """The 120x512x512 uncompressed series of bench_dicom_load.py and its phantom mask (.nii.gz)."""
    sys.path.insert(0, str(HERE))
    from _dicom_data import make_series

    dirs = make_series(work / "dcm120")
    return dirs["native"], dirs["mask"]


def big_nifti_case(work: Path, dtype: str) -> tuple[Path, Path]:
    """The 120x512x512 series of :func:`big_dicom_case` as one .nii.gz of ``dtype`` (nibabel hands it
    over Fortran-ordered), with the same mask."""
    from spinemri.io.load import load_volume
    from spinemri.io.nifti import save_nifti

    img_dir, mask = big_dicom_case(work)
    path = work / f"nifti120_{dtype}.nii.gz"
    if not path.exists():
        vol = load_volume(img_dir)
        save_nifti(vol.with_data(np.asarray(vol.data).astype(dtype)), path)
    return path, mask


def small_dicom_case(work: Path, n_slices: int) -> tuple[Path, Path]:
    """The phantom of :func:`big_dicom_case` (seed 3, 512x512) with ``n_slices`` slices as an uncompressed
    DICOM series, and its mask (.nii.gz) (reused)."""
    sys.path.insert(0, str(HERE))
    from _dicom_data import make_series

    dirs = make_series(work / f"dcm{n_slices}", n_slices=n_slices)
    return dirs["native"], dirs["mask"]


def nifti_case(work: Path, dtype: str, n_slices: int, size: int = 512) -> tuple[Path, Path]:
    """A ``size`` x ``size`` x ``n_slices`` phantom (seed 3, as :func:`big_dicom_case`) as one .nii.gz of
    ``dtype`` and its mask (.nii.gz), both Fortran-ordered when loaded (reused)."""
    from spinemri import make_phantom
    from spinemri.io.nifti import save_nifti

    path, mask_path = work / f"nifti{n_slices}_{dtype}.nii.gz", work / f"nifti{n_slices}_mask.nii.gz"
    if not (path.exists() and mask_path.exists()):
        img, mask, _ = make_phantom(seed=3, rows=size, cols=size, n_slices=n_slices)
        save_nifti(img.with_data(np.asarray(img.data).astype(dtype)), path)
        save_nifti(mask, mask_path)
    return path, mask_path


def cohort(work: Path, n: int = 12) -> Path:
    """A phantom cohort of ``n`` NIfTI cases of 384x384x15 (reused)."""
    root = work / f"cohort{n}"
    if not (root / "clinical.csv").exists():
        shutil.rmtree(root, ignore_errors=True)
        size = ["--rows", "384", "--cols", "384", "--slices", "15"]
        subprocess.run(
            [SPINEMRI, "phantom", str(root), "--patients", str(n), *size], check=True, capture_output=True
        )
    return root


# --------------------------------------------------------------------------- load + measure


def _dicom_floor(folder: Path, shape: tuple[int, int, int], dtype: np.dtype) -> Callable[[], np.ndarray]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    rows, cols = shape[1], shape[0]
    n = rows * cols * dtype.itemsize

    def run() -> np.ndarray:
        out = np.empty((len(files), rows, cols), dtype)
        for k, f in enumerate(files):
            b = f.read_bytes()
            out[k] = np.frombuffer(b, dtype, count=rows * cols, offset=len(b) - n).reshape(rows, cols)
        return out

    return run


def _nifti_gz_floor(path: Path, count: int, dtype: np.dtype) -> Callable[[], np.ndarray]:
    def run() -> np.ndarray:
        b = gzip.decompress(path.read_bytes())
        return np.frombuffer(b, dtype, count=count, offset=len(b) - count * dtype.itemsize).copy()

    return run


def _load_measure_case(name: str, img_dir: Path, mask_path: Path, repeats: int) -> None:
    import warnings

    import spinemri
    from spinemri.io.load import load_mask, load_volume

    img = load_volume(img_dir)
    mask = load_mask(mask_path, like=img)
    io_img = _dicom_floor(img_dir, img.shape, np.dtype(np.uint16))
    io_mask = _nifti_gz_floor(mask_path, int(np.prod(mask.shape)), np.asarray(mask.data).dtype)

    def floor() -> None:
        io_img()
        io_mask()

    def load() -> Any:
        image = load_volume(img_dir)
        return image, load_mask(mask_path, like=image)

    def load_and_measure() -> None:
        image, m = load()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spinemri.measure(image, m)

    floor_name = "I/O floor (DICOM bytes + frombuffer, gunzip mask + frombuffer)"
    results = {
        floor_name: _time(floor, repeats),
        "load (load_volume + load_mask)": _time(load, repeats),
        "load + measure": _time(load_and_measure, repeats),
    }
    base = results[floor_name][0]
    for step, (med, mn) in results.items():
        print(f"| {name} | {step} | {med:.3f} | {mn:.3f} | {med / base:.2f} |")


def bench_load_measure(work: Path, repeats: int) -> None:
    print(f"\n## load + measure vs the I/O floor (load average {_load()})")
    print("| case | step | median (s) | min (s) | x floor |")
    print("|---|---|---|---|---|")
    _load_measure_case("phantom 512x256x15 (15 DICOM files)", *phantom_dicom_case(work), repeats)
    _load_measure_case("phantom 512x512x120 (120 DICOM files)", *big_dicom_case(work), repeats)


# --------------------------------------------------------------------------- memory

_MODULES_SCRIPT = r"""
import json, sys
from spinemri.cli import main
code = main(sys.argv[2:])
json.dump(sorted(m for m in sys.modules if m != "__main__"), open(sys.argv[1], "w"))
"""

_IMPORT_SCRIPT = r"""
import importlib, json, sys, warnings
warnings.simplefilter("ignore")
for m in json.load(open(sys.argv[1])):
    try:
        importlib.import_module(m)
    except Exception:
        pass
import spinemri.cli, spinemri.commands.measure, spinemri.measurement, spinemri.io.load
"""


def _peak_rss_mb(cmd: list[str]) -> float:
    """Peak resident set size (MB) of one command, measured by GNU time (``/usr/bin/time -f %M``).

    Not ``os.wait4`` from this process: Linux carries the parent's RSS high-water mark into a
    child at fork/exec (``signal->maxrss``), so a child of a large benchmark process would
    report the parent's size. GNU time is a small parent.
    """
    res = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd} failed with exit status {res.returncode}: {res.stderr[-500:]}")
    return int(res.stderr.strip().splitlines()[-1]) / 1024.0  # kilobytes


def bench_memory(work: Path, repeats: int, memory_cases: tuple[str, ...] = ()) -> None:
    from spinemri.io.load import load_volume

    print(f"\n## peak memory of one `spinemri measure` process (load average {_load()})")
    print("| case | image in memory (MB) | imports only (MB) | measure (MB) | measure - imports (MB) "
          "| / image bytes | target: <= 3 x image |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    cases = {
        "phantom 512x256x15 DICOM": phantom_dicom_case(work),
        "phantom 512x512x120 DICOM": big_dicom_case(work),
        # from files as nibabel loads them: Fortran-ordered, int16 and uint16
        "phantom 512x512x120 NIfTI int16": big_nifti_case(work, "int16"),
        "phantom 512x512x120 NIfTI uint16": big_nifti_case(work, "uint16"),
        "phantom 512x512x20 NIfTI int16": nifti_case(work, "int16", 20),
        "phantom 512x512x20 NIfTI uint16": nifti_case(work, "uint16", 20),
        "phantom 512x512x20 DICOM": small_dicom_case(work, 20),
    }
    if memory_cases:
        cases = {k: v for k, v in cases.items() if any(m in k for m in memory_cases)}
    for name, (img, mask) in cases.items():
        nbytes = np.asarray(load_volume(img).data).nbytes
        with tempfile.TemporaryDirectory() as tmp:
            mods = Path(tmp) / "modules.json"
            args = ["measure", str(img), "--mask", str(mask), "--out", str(Path(tmp) / "out")]
            subprocess.run([sys.executable, "-c", _MODULES_SCRIPT, str(mods), *args], check=True,
                           capture_output=True)  # fmt: skip
            base = [_peak_rss_mb([sys.executable, "-c", _IMPORT_SCRIPT, str(mods)]) for _ in range(repeats)]
            peak = []
            for k in range(repeats):
                out = Path(tmp) / f"out{k}"
                peak.append(
                    _peak_rss_mb([SPINEMRI, "measure", str(img), "--mask", str(mask), "--out", str(out)])
                )
        b, p = statistics.median(base), statistics.median(peak)
        extra = (p - b) * 1024 * 1024 / nbytes
        print(f"| {name} | {nbytes / 2**20:.1f} | {b:.0f} | {p:.0f} | {p - b:.0f} | {extra:.2f} | "
              f"{'met' if extra <= 3 else 'missed'} |")  # fmt: skip


# --------------------------------------------------------------------------- cohort


def _run_timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the process and every descendant it waited for) of one command.

    The CPU time misses worker processes the run did not reap before exiting
    (it came out at 7 s for the process pool against 20 s serial): compare
    wall times.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def cases_only(root: Path) -> Path:
    """The cohort's case folders (symlinked) without its clinical table: measurement only, no analysis."""
    bare = root.with_name(root.name + "_cases_only")
    bare.mkdir(exist_ok=True)
    for case in sorted(p for p in root.iterdir() if p.is_dir()):
        link = bare / case.name
        if not link.exists():
            link.symlink_to(case.resolve(), target_is_directory=True)
    return bare


def bench_cohort(work: Path, repeats: int, n_cases: int = 12, backends: tuple[str, ...] = ("serial", "pool", "dask")) -> None:
    full = cohort(work, n_cases)
    _case_rate(cases_only(full))
    for label, root in (("link + analysis included", full), ("cases only, no clinical table", cases_only(full))):
        _bench_cohort_root(root, label, repeats, backends)


def _case_rate(root: Path) -> None:
    """Steady-state cases per second of run_cohort in one process (1 and 2 workers), from its progress callback.

    The rate between the first and the last finished case leaves out start-up (imports, the
    worker pool) and the end (combined tables, pool shut-down), which a whole-run time includes.
    """
    from spinemri.pipeline.cohort import run_cohort

    print(f"\n## steady-state case rate, {root.name} (in-process run_cohort; load average {_load()})")
    print("| workers | first case done (s) | last case done (s) | whole run (s) | cases/s between first and last | vs 1 worker |")
    print("|---|---|---|---|---|---|")
    base = None
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            times: list[float] = []
            t0 = time.perf_counter()
            run_cohort(root, Path(tmp) / "out", workers=workers, force=True,
                       progress=lambda _o, _n: times.append(time.perf_counter() - t0))
            end = time.perf_counter() - t0
        rate = (len(times) - 1) / (times[-1] - times[0])
        base = base or rate
        print(f"| {workers} | {times[0]:.2f} | {times[-1]:.2f} | {end:.2f} | {rate:.2f} | {rate / base:.2f} |", flush=True)


def _bench_cohort_root(root: Path, label: str, repeats: int, backends: tuple[str, ...]) -> None:
    n_cases = len([p for p in root.iterdir() if p.is_dir()])
    print(f"\n## cohort throughput, {n_cases} phantom cases of 384x384x15, {label} (load average {_load()})")
    every = {
        "serial": ("serial (--workers 1)", ["--workers", "1"]),
        "pool": ("process pool (--workers 2)", ["--workers", "2"]),
        "dask": ("Dask LocalCluster (--scheduler local --workers 2)", ["--scheduler", "local", "--workers", "2"]),
    }
    configs = dict(every[b] for b in ("serial", *[b for b in backends if b != "serial"]))
    results: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in configs.items():
            out = Path(tmp) / "out"
            cmd = [SPINEMRI, "run", str(root), "--out", str(out), "--force", "--quiet", *extra]
            _run_timed(cmd)  # warm-up
            runs = [_run_timed(cmd) for _ in range(repeats)]
            walls = [w for w, _ in runs]
            results[name] = (statistics.median(walls), min(walls), statistics.median([c for _, c in runs]))
            print(f"  {name}: median {results[name][0]:.2f} s (load average {_load()})", flush=True)
    base = results["serial (--workers 1)"][0]
    print("| backend | median wall (s) | min wall (s) | CPU s (all processes) | cases/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for name, (med, mn, cpu) in results.items():
        print(f"| {name} | {med:.2f} | {mn:.2f} | {cpu:.1f} | {n_cases / med:.2f} | {base / med:.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cohort-repeats", type=int, default=5)
    ap.add_argument("--cohort-cases", type=int, default=12, help="phantom cases in the cohort benchmark")
    ap.add_argument("--cohort-backends", default="serial,pool,dask", help="subset of serial,pool,dask")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_pipeline")
    ap.add_argument("--sections", default="loadmeasure,memory,cohort")
    ap.add_argument("--memory-cases", default="", help="substrings of the memory cases to run (comma-separated)")
    args = ap.parse_args(argv)
    import spinemri

    args.work.mkdir(parents=True, exist_ok=True)
    print(f"# spinemri {spinemri.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cpus; median of runs after a warm-up")  # fmt: skip
    sections = args.sections.split(",")
    if "loadmeasure" in sections:
        bench_load_measure(args.work, max(5, args.repeats))
    if "memory" in sections:
        only = tuple(x for x in args.memory_cases.split(",") if x)
        bench_memory(args.work, max(3, args.repeats), only)
    if "cohort" in sections:
        bench_cohort(args.work, max(1, args.cohort_repeats), args.cohort_cases, tuple(args.cohort_backends.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
