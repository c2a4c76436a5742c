#!/usr/bin/env python
"""Benchmark spinemri.measure against established per-label tools, side by side in one run.

Run by hand (not a test)::

    python benchmarks/bench_measure.py [--repeats 7] [--radiomics-python /tmp/venv-radiomics/bin/python]

Volumes: 512x512x20 and 512x512x120 uint16 images with 24 vertebra labels
(VerSe ids 1..24 = C1..L5) and a few bright lesions. Timed, after one
warm-up, as the median of ``--repeats`` runs (inputs already in memory, no I/O):

* spinemri: ``segment_lesions`` + ``compute_metrics`` (and ``measure`` end to end);
* SimpleITK: one ``LabelIntensityStatisticsImageFilter`` pass (mean, median,
  ... per label), plus per-label ``ConnectedComponent`` of the lesion voxels;
* scikit-image: ``regionprops_table`` (area, mean, max) with a per-label
  median as an extra property;
* pyradiomics first-order + shape per label, in its own venv (it needs
  numpy < 2), skipped with a note when that venv is missing.

From files (``--inputs``, default all): the same volumes written to disk and
loaded as users load them, ``spinemri.load_volume`` / ``spinemri.load_mask``:
NIfTI (.nii.gz; nibabel hands over Fortran-ordered arrays) with uint16 and
int16 voxels, and a DICOM folder (``spinemri.io.dicom.write.write_dicom_series``)
with the NIfTI mask. ``spinemri measure`` and the SimpleITK passes run on the
loaded data, interleaved, one table row per input.

``--stages`` adds, per size, the CPU time of each stage ``measure`` calls on each loaded input
(``python benchmarks/bench_measure.py --only-files --repeats 15 --stages``).

The ratios printed are each tool's time over one single-threaded SimpleITK
LabelIntensityStatistics pass (spinemri runs on one core; the multi-threaded
time is printed too).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import spinemri
from spinemri import Volume
from spinemri.measurement import vertebra_ids
from spinemri.metrics import compute_metrics
from spinemri.params import SegmentParams
from spinemri.segmentation.lesions import segment_lesions

N_LABELS = 24
#: The reference every ratio is taken against.
BASE = "SimpleITK LabelIntensityStatistics (1 pass, 1 thread)"


def make_case(n_slices: int, seed: int = 0) -> tuple[Volume, Volume]:
    """A (512, 512, n_slices) image and a mask of 24 stacked vertebral bodies (labels 1..24)."""
    rng = np.random.default_rng(seed)
    shape = (512, 512, n_slices)
    img = rng.normal(300.0, 40.0, shape)
    lab = np.zeros(shape, np.uint8)
    i = np.arange(shape[0])[:, None, None]
    k = np.arange(shape[2])[None, None, :]
    kc, kr = (shape[2] - 1) / 2.0, 0.42 * shape[2]
    for n in range(N_LABELS):
        j0 = 8 + 21 * n
        body = ((i - 230) / 70.0) ** 2 + ((k - kc) / kr) ** 2 <= 1.0
        lab[:, j0 : j0 + 15, :][np.broadcast_to(body, (shape[0], 15, shape[2]))] = n + 1
    img[lab > 0] = rng.normal(220.0, 12.0, int((lab > 0).sum()))
    for n in range(0, N_LABELS, 4):  # a lesion in every 4th vertebra
        j0 = 8 + 21 * n
        sl = (slice(215, 240), slice(j0 + 4, j0 + 11), slice(int(kc) - 2, int(kc) + 3))
        img[sl] += 400.0
    aff = np.diag([0.6, 0.6, 4.0, 1.0])
    return Volume(np.clip(img, 0, 65535).astype(np.uint16), aff), Volume(lab, aff)


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Time every callable once per round, ``repeats`` rounds after a warm-up round.

    Returns each one's median time and the median over rounds of its time over
    ``BASE``'s time in the same round: the machine's load, which changes over
    seconds on a shared VM, then weighs on both sides of each ratio alike.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in fns.values():
            fn()
        for _ in range(repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    base = times[BASE]
    med = {name: statistics.median(t) for name, t in times.items()}
    ratio = {
        name: statistics.median(a / b for a, b in zip(t, base, strict=True)) for name, t in times.items()
    }
    return med, ratio


def timeit(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_spinemri(img: Volume, mask: Volume) -> dict[str, Callable[[], Any]]:
    scheme = spinemri.get_scheme("verse")
    mapped, _ = scheme.split_labels(np.unique(mask.data))
    vid, levels, merged = vertebra_ids(np.asarray(mask.data), mapped)
    p = SegmentParams()
    plain = SegmentParams(depth_background=False, half_contrast=False)
    seg = segment_lesions(img.data, vid, img.spacing, p)

    def metrics() -> None:
        compute_metrics(
            seg.intensity,
            vid,
            levels,
            merged,
            seg.lesion_ids,
            seg.lesion_vertebra,
            seg.thresholds,
            seg.reference_median,
            seg.reference_mad,
            img.affine,
            img.lr_axis,
            bbox=seg.box,
        )

    return {
        "spinemri segment": lambda: segment_lesions(img.data, vid, img.spacing, p),
        # what a plain threshold + seeded components segmentation costs (docs/validation.md: not accurate
        # enough for the 0.01 ratio bound; timed for the comparison in docs/performance.md)
        "spinemri segment without boundary refinement": lambda: segment_lesions(
            img.data, vid, img.spacing, plain
        ),
        "spinemri metrics": metrics,
        # the target: every per-vertebra metric (thresholds, components, tables) from image + ids
        "spinemri segment + metrics": lambda: (segment_lesions(img.data, vid, img.spacing, p), metrics()),
        "spinemri measure (all)": lambda: spinemri.measure(img, mask, scheme="verse"),
    }


def bench_components(img: Volume, mask: Volume, repeats: int) -> dict[str, float] | str:
    """Lesion components of all vertebrae in spinemri vs one cc3d pass on the binary lesion mask.

    spinemri's own code is timed from inside ``segment_lesions`` by wrapping
    ``spinemri.segmentation.lesions._cc`` (every cc3d call) and ``spinemri.segmentation.lesions._components``
    (filtering, boundary refinement and the final per-vertebra labelling pass:
    one multi-label cc3d over lesion voxels carrying their vertebra id).
    """
    import cc3d

    import spinemri.segmentation.lesions as seg_mod

    if not hasattr(seg_mod, "_cc") or not hasattr(seg_mod, "_components"):
        return "components skipped: spinemri.segmentation.lesions has no _cc/_components to time (the module changed)"
    scheme = spinemri.get_scheme("verse")
    mapped, _ = scheme.split_labels(np.unique(mask.data))
    vid, _, _ = vertebra_ids(np.asarray(mask.data), mapped)
    p = SegmentParams()
    calls: dict[str, list[float]] = {"cc": [], "components": []}
    orig_cc, orig_comp = seg_mod._cc, seg_mod._components

    def timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            out = fn(*a, **k)
            calls[key].append(time.perf_counter() - t0)
            return out

        return run

    last_cc, all_cc, comp = [], [], []
    seg_mod._cc, seg_mod._components = timed("cc", orig_cc), timed("components", orig_comp)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k in range(repeats + 1):
                calls["cc"].clear()
                calls["components"].clear()
                seg = segment_lesions(img.data, vid, img.spacing, p)
                if k:  # first run: warm-up
                    last_cc.append(calls["cc"][-1])
                    all_cc.append(sum(calls["cc"]))
                    comp.append(sum(calls["components"]))
    finally:
        seg_mod._cc, seg_mod._components = orig_cc, orig_comp
    binary = np.asarray(seg.lesion_ids) > 0
    one = timeit(lambda: cc3d.connected_components(binary, connectivity=p.connectivity), repeats)
    return {
        "cc3d: one pass on the binary lesion mask": one,
        "spinemri: per-vertebra labelling pass (multi-label cc3d)": statistics.median(last_cc),
        "spinemri: all cc3d calls of segment_lesions": statistics.median(all_cc),
        "spinemri: whole component stage (filter, refine, label by vertebra)": statistics.median(comp),
    }


def bench_sitk(
    img: Volume, mask: Volume, lesion: np.ndarray, repeats: int, *, components: bool = True
) -> tuple[dict[str, Callable[[], Any]], dict[str, float]]:
    """The statistics passes (callables, timed interleaved) and the per-label components (timed here
    unless ``components`` is False)."""
    import SimpleITK as sitk

    def to_sitk(a: np.ndarray) -> Any:
        im = sitk.GetImageFromArray(np.ascontiguousarray(a.transpose(2, 1, 0)))
        im.SetSpacing(img.spacing)
        return im

    s_img, s_lab = to_sitk(np.asarray(img.data)), to_sitk(np.asarray(mask.data))
    s_les = to_sitk((lesion > 0).astype(np.uint8))

    def stats() -> None:
        f = sitk.LabelIntensityStatisticsImageFilter()
        f.Execute(s_lab, s_img)
        [(f.GetMean(int(lb)), f.GetMedian(int(lb))) for lb in f.GetLabels()]

    def per_label_components() -> None:
        for lb in range(1, N_LABELS + 1):
            binary = sitk.And(sitk.Equal(s_lab, lb), s_les)
            cc = sitk.ConnectedComponent(binary, True)
            shape = sitk.LabelShapeStatisticsImageFilter()
            shape.Execute(cc)
            shape.GetNumberOfLabels()

    default_threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()

    def stats_one_thread() -> None:  # spinemri runs on one core
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        try:
            stats()
        finally:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(default_threads)

    fast = {
        f"SimpleITK LabelIntensityStatistics (1 pass, {default_threads} threads)": stats,
        BASE: stats_one_thread,
    }
    if not components:
        return fast, {}
    return fast, {"SimpleITK per-label ConnectedComponent": timeit(per_label_components, min(repeats, 3))}


def bench_skimage(img: Volume, mask: Volume) -> dict[str, Callable[[], Any]]:
    from skimage.measure import regionprops_table

    def median(region: np.ndarray, intensity: np.ndarray) -> float:
        return float(np.median(intensity[region]))

    def run() -> None:
        regionprops_table(
            np.asarray(mask.data),
            np.asarray(img.data),
            properties=("label", "area", "intensity_mean", "intensity_max"),
            extra_properties=(median,),
        )

    return {"scikit-image regionprops_table (+median)": run}


RADIOMICS_SCRIPT = r"""
import json, sys, time, statistics, logging
import SimpleITK as sitk
from radiomics import featureextractor
logging.getLogger("radiomics").setLevel(logging.ERROR)
img = sitk.ReadImage(sys.argv[1]); lab = sitk.ReadImage(sys.argv[2]); repeats = int(sys.argv[3])
ext = featureextractor.RadiomicsFeatureExtractor()
ext.disableAllFeatures(); ext.enableFeatureClassByName("firstorder"); ext.enableFeatureClassByName("shape")
def run():
    for lb in range(1, 25):
        ext.execute(img, lab, label=lb)
run()
ts = []
for _ in range(repeats):
    t0 = time.perf_counter(); run(); ts.append(time.perf_counter() - t0)
print(json.dumps({"median_s": statistics.median(ts)}))
"""


def bench_radiomics(img: Volume, mask: Volume, python: str, repeats: int) -> dict[str, float] | str:
    if not Path(python).exists():
        return (
            f"pyradiomics skipped: {python} not found (python -m venv /tmp/venv-radiomics && "
            "/tmp/venv-radiomics/bin/pip install pyradiomics 'numpy<2')"
        )
    from spinemri.io.nifti import save_nifti

    with tempfile.TemporaryDirectory() as tmp:
        ip = save_nifti(img, Path(tmp) / "img.nii.gz")
        lp = save_nifti(mask, Path(tmp) / "lab.nii.gz")
        sp = Path(tmp) / "bench_radiomics.py"
        sp.write_text(RADIOMICS_SCRIPT)
        res = subprocess.run(
            [python, str(sp), str(ip), str(lp), str(repeats)], capture_output=True, text=True
        )
    if res.returncode != 0:
        return f"pyradiomics skipped: it failed to run ({res.stderr.strip().splitlines()[-1:]})"
    return {
        "pyradiomics firstorder+shape per label": float(
            json.loads(res.stdout.strip().splitlines()[-1])["median_s"]
        )
    }


#: The inputs of the from-files table: name -> how the image is written (the mask is always NIfTI).
FILE_INPUTS = ("memory", "nifti-uint16", "nifti-int16", "dicom")


def file_cases(n_slices: int, work: Path, inputs: tuple[str, ...]) -> dict[str, tuple[Volume, Volume]]:
    """The benchmark case of ``n_slices`` written to ``work`` and loaded back as a user would."""
    from spinemri.io.dicom.write import write_dicom_series
    from spinemri.io.nifti import save_nifti

    img, mask = make_case(n_slices)
    d = work / f"512x512x{n_slices}"
    d.mkdir(parents=True, exist_ok=True)
    mask_path = save_nifti(mask, d / "mask.nii.gz")
    out: dict[str, tuple[Volume, Volume]] = {}
    for name in inputs:
        if name == "memory":
            out[name] = (img, mask)
            continue
        if name == "dicom":
            path = d / "dicom"
            if not path.exists():
                write_dicom_series(img, path, patient_id="BENCH", uid_seed=f"bench:{n_slices}")
        elif name in ("nifti-uint16", "nifti-int16"):
            data = np.asarray(img.data).astype(name.split("-")[1])
            path = save_nifti(img.with_data(data), d / f"{name}.nii.gz")
        else:
            raise SystemExit(f"unknown input {name!r}; known: {', '.join(FILE_INPUTS)}")
        image = spinemri.load_volume(path)
        out[name] = (image, spinemri.load_mask(mask_path, like=image))
    return out


def bench_from_files(n_slices: int, work: Path, inputs: tuple[str, ...], repeats: int) -> None:
    """``measure`` on each loaded input vs SimpleITK's pass on the same data, all interleaved."""
    import os

    cases = file_cases(n_slices, work, inputs)
    fns: dict[str, Callable[[], Any]] = {}
    for name, (img, mask) in cases.items():
        fast, _ = bench_sitk(img, mask, np.zeros(img.shape, np.uint8), 0, components=False)
        fns[f"{name}: spinemri measure"] = lambda img=img, mask=mask: spinemri.measure(
            img, mask, scheme="verse"
        )
        fns[f"{name}: {BASE}"] = fast[BASE]
    # the ratio of each input's measure is taken against SimpleITK on the same input, in the same round
    times: dict[str, list[float]] = {k: [] for k in fns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in fns.values():
            fn()
        for _ in range(repeats):
            for key, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
    print(f"\n## From files, 512x512x{n_slices} (load average {os.getloadavg()[0]:.2f} at the end)")
    print(
        "| input | dtype, memory order | spinemri measure (s) | SimpleITK LIS 1 thread (s) | ratio "
        "| ratio min-max over rounds | ratio of min times |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (img, _) in cases.items():
        a = np.asarray(img.data)
        order = "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "strided"
        t_m, t_s = times[f"{name}: spinemri measure"], times[f"{name}: {BASE}"]
        per_round = [x / y for x, y in zip(t_m, t_s, strict=True)]
        ratio = statistics.median(per_round)
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}"
        print(f"| {name} | {a.dtype}, {order} | {statistics.median(t_m):.4f} | {statistics.median(t_s):.4f} "
              f"| {ratio:.2f} | {spread} | {min(t_m) / min(t_s):.2f} |")  # fmt: skip


#: What ``spinemri.measure`` calls, timed one by one by :func:`bench_stages` (name in spinemri.measurement).
STAGES = (
    "check_label_values",
    "nonzero_bbox",
    "label_moments",
    "label_moments_with_bbox",
    "label_shapes",
    "choose_scheme",
    "vertebra_ids",
    "check_modality",
    "segment_lesions",
    "check_polarity",
    "compute_metrics",
    "shapes_from_moments",
    "check_vertebrae",
)


def bench_stages(n_slices: int, work: Path, inputs: tuple[str, ...], repeats: int) -> None:
    """Where ``measure``'s time goes: CPU time (``time.process_time``, not disturbed by other
    processes waiting for the cores) of each stage it calls, min and median over ``repeats`` calls."""
    import spinemri.measurement as m

    cases = file_cases(n_slices, work, inputs)
    acc: dict[str, list[float]] = {}
    originals = {name: getattr(m, name) for name in STAGES if hasattr(m, name)}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            t0 = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[name][-1] += time.process_time() - t0

        return run

    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for name, fn in originals.items():
        setattr(m, name, timed(name, fn))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for inp, (img, mask) in cases.items():
                acc.clear()
                acc.update({k: [0.0] for k in [*originals, "total", "other"]})
                spinemri.measure(img, mask, scheme="verse")  # warm-up
                acc.update({k: [] for k in acc})
                for _ in range(repeats):
                    for v in acc.values():
                        v.append(0.0)
                    t0 = time.process_time()
                    spinemri.measure(img, mask, scheme="verse")
                    acc["total"][-1] = time.process_time() - t0
                    acc["other"][-1] = acc["total"][-1] - sum(acc[k][-1] for k in originals)
                rows[inp] = {k: (min(v), statistics.median(v)) for k, v in acc.items()}
    finally:
        for name, fn in originals.items():
            setattr(m, name, fn)
    print(f"\n## Stages of measure, 512x512x{n_slices}: CPU ms, min / median of {repeats} calls")
    print("| stage | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))
    for k in [*originals, "other", "total"]:
        cells = " | ".join(f"{r[k][0] * 1e3:.1f} / {r[k][1] * 1e3:.1f}" for r in rows.values())
        print(f"| {k} | {cells} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sizes", default="20,120", help="numbers of slices (512x512xN)")
    ap.add_argument("--radiomics-python", default="/tmp/venv-radiomics/bin/python")
    ap.add_argument("--radiomics-repeats", type=int, default=3)
    ap.add_argument(
        "--radiomics-sizes", default="20", help="sizes (slices) at which pyradiomics runs; it takes minutes"
    )
    ap.add_argument("--inputs", default=",".join(FILE_INPUTS), help="from-files cases ('' to skip)")
    ap.add_argument("--only-files", action="store_true", help="run only the from-files tables")
    ap.add_argument(
        "--stages", action="store_true", help="with the from-files tables: CPU time of each stage of measure"
    )
    ap.add_argument("--work", type=Path, default=None, help="folder for the files (default: a temporary one)")
    args = ap.parse_args(argv)
    inputs = tuple(x for x in args.inputs.split(",") if x)
    print(
        f"# spinemri {spinemri.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}; median of {args.repeats} runs after a warm-up"
    )
    sizes = [int(x) for x in args.sizes.split(",")]
    if inputs:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                bench_from_files(n, args.work or Path(tmp), inputs, args.repeats)
                if args.stages:
                    bench_stages(n, args.work or Path(tmp), inputs, args.repeats)
    if args.only_files:
        return 0
    for n in sizes:
        img, mask = make_case(n)
        seg = segment_lesions(img.data, np.asarray(mask.data), img.spacing)
        # exactness check: spinemri's medians equal numpy's
        m = spinemri.measure(img, mask, scheme="verse")
        data, lab = np.asarray(img.data), np.asarray(mask.data)
        exact = all(
            m.vertebrae["median_intensity"].iloc[v - 1] == np.median(data[lab == v])
            for v in range(1, N_LABELS + 1)
        )
        fast, slow = bench_sitk(img, mask, seg.lesion_ids, args.repeats)
        results, ratios = interleaved(
            {**bench_spinemri(img, mask), **fast, **bench_skimage(img, mask)}, args.repeats
        )
        base = results[BASE]
        results.update(slow)
        rad: dict[str, float] | str = (
            bench_radiomics(img, mask, args.radiomics_python, args.radiomics_repeats)
            if str(n) in args.radiomics_sizes.split(",")
            else f"pyradiomics not run at this size (--radiomics-sizes {args.radiomics_sizes})"
        )
        print(
            f"\n## 512x512x{n} ({int((lab > 0).sum())} vertebra voxels, {N_LABELS} labels); "
            f"spinemri medians exact: {exact}"
        )
        print("| tool | median time (s) | / SimpleITK LabelIntensityStatistics (1 thread) |")
        print("|---|---|---|")
        if isinstance(rad, dict):
            results.update(rad)
        for name, t in results.items():
            print(f"| {name} | {t:.4f} | {ratios.get(name, t / base):.2f} |")
        print(
            "\nRatios: the median over rounds of each tool's time over SimpleITK's in the same round "
            "(interleaved); rows timed apart (per-label components, pyradiomics) divide medians."
        )
        if isinstance(rad, str):
            print(f"\n{rad}")
        comp = bench_components(img, mask, args.repeats)
        if isinstance(comp, str):
            print(f"\n{comp}")
        else:
            one = comp["cc3d: one pass on the binary lesion mask"]
            print(f"\nLesion components, 512x512x{n}: | step | median time (s) | / one binary cc3d pass |")
            print("|---|---|---|")
            for name, t in comp.items():
                print(f"| {name} | {t:.4f} | {t / one:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
