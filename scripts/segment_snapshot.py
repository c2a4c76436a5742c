#!/usr/bin/env python
"""Refactoring guard for the segmentation: snapshot segment_lesions outputs, then compare after a change.

Not a test (its reference is the code's own output, so it proves only "unchanged",
never "right"; correctness is what tests/ and docs/validation.md check). Use it when
making the segmentation faster: every output must stay identical.

    python scripts/segment_snapshot.py save /tmp/seg_ref.npz     # before the change
    python scripts/segment_snapshot.py compare /tmp/seg_ref.npz  # after: prints differing keys
    python scripts/segment_snapshot.py compare /tmp/seg_ref.npz --order F  # Fortran-ordered inputs

Inputs: the 512x512x20 volume of benchmarks/bench_measure.py and six phantoms (bias,
SNR 10, T1, truncated field of view, float intensities, oblique with collapse), each
segmented with eight parameter sets (robust, local, otsu, fixed, margins 0 and 3 mm
with 6-connectivity, dark polarity, no depth background): 56 combinations. Compared:
lesion ids, lesion vertebrae, thresholds, reference median/MAD, core, voxel index,
background levels, depth offsets, notes (floats to 1e-12 relative). With ``--order F``
the images and vertebra ids are passed Fortran-ordered (as nibabel loads NIfTI files) and
compared with a reference saved from the C-ordered ones: the outputs must not depend on it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_measure import make_case  # noqa: E402

from spinemri import make_phantom  # noqa: E402
from spinemri.levels import LEVELS  # noqa: E402
from spinemri.metrics import compute_metrics  # noqa: E402
from spinemri.params import MetricsParams, SegmentParams  # noqa: E402
from spinemri.segmentation.lesions import segment_lesions  # noqa: E402

PHANTOMS = [
    (1, {}),
    (2, {"bias": 0.2, "snr": 10}),
    (3, {"contrast": "t1"}),
    (4, {"n_slices": 9, "fov_shift_mm": 20.0}),
    (5, {"quantize": False}),
    (6, {"oblique_deg": 10.0, "p_collapse": 0.5}),
]
PARAMS = {
    "default": SegmentParams(),
    "local": SegmentParams(method="local"),
    "otsu": SegmentParams(method="otsu"),
    "fixed": SegmentParams(method="fixed", fixed_threshold=600.0),
    "m0": SegmentParams(margin_mm=0.0),
    "m3": SegmentParams(margin_mm=3.0, connectivity=6),
    "dark": SegmentParams(polarity="dark"),
    "nodepth": SegmentParams(depth_background=False),
}


def cases() -> Iterator[tuple[str, np.ndarray, np.ndarray, tuple[float, float, float]]]:
    img, lab = make_case(20)
    yield "bench20", img.data, lab.data, (0.6, 0.6, 4.0)
    for seed, kw in PHANTOMS:
        im, mk, _ = make_phantom(seed=seed, **kw)
        yield (
            f"ph{seed}",
            im.data,
            mk.data,
            (float(im.spacing[0]), float(im.spacing[1]), float(im.spacing[2])),
        )


def vertebra_ids_in_order(mask: np.ndarray) -> np.ndarray:
    """Every label present becomes an id 1..n in label order (the segmentation's input)."""
    labels = np.unique(mask)
    labels = labels[labels > 0]
    lut = np.zeros(int(mask.max()) + 1, np.int64)
    lut[labels] = np.arange(1, labels.size + 1)
    return lut[mask]


def snapshot(order: str = "C") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, img, mask, spacing in cases():
        vid = vertebra_ids_in_order(mask)
        if order == "F":
            img, vid = np.asfortranarray(img), np.asfortranarray(vid)
        for pname, p in PARAMS.items():
            s = segment_lesions(img, vid, spacing, p)
            key = f"{name}_{pname}"
            for field, value in [
                ("ids", s.lesion_ids), ("lv", s.lesion_vertebra), ("t", s.thresholds),
                ("m", s.reference_median), ("d", s.reference_mad), ("core", s.core),
                ("bg", s.background), ("off", s.depth_offset), ("notes", np.array("|".join(s.notes))),
            ]:  # fmt: skip
                out[f"{key}_{field}"] = np.asarray(value)
            for mname, mp in (("", MetricsParams()), ("e2", MetricsParams(intensity_erosion_mm=2.0))):
                for tname, table in _tables(s, vid, spacing, mp).items():
                    for col in table.columns:
                        v = table[col].to_numpy()
                        out[f"{key}_{mname}{tname}_{col}"] = v.astype(str) if v.dtype == object else v
    return out


def _tables(s, vid: np.ndarray, spacing: tuple[float, float, float], mp: MetricsParams) -> dict:
    """The metrics tables of a segmentation (levels C1, C2, ... in id order; an axis-aligned affine)."""
    n = int(vid.max())
    levels = list(LEVELS[:n])
    t = compute_metrics(
        s.intensity, vid, levels, [[v] for v in range(1, n + 1)], s.lesion_ids, s.lesion_vertebra,
        s.thresholds, s.reference_median, s.reference_mad, np.diag([*spacing, 1.0]), 0, params=mp,
        bbox=s.box,
    )  # fmt: skip
    return {
        "vert": t.vertebrae,
        "les": t.lesions,
        "pat": t.patient,
        "map": pd.DataFrame({"ids": t.lesion_ids.ravel()}),
    }


def compare(ref: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> list[str]:
    bad = []
    for key, a in ref.items():
        b = new.get(key)
        if b is None or a.shape != b.shape:
            bad.append(key)
        elif a.dtype.kind == "f":
            if not np.allclose(a, b, rtol=1e-12, atol=1e-9, equal_nan=True):
                bad.append(key)
        elif a.dtype != b.dtype or not np.array_equal(a, b):
            bad.append(key)
    return bad


def main(argv: list[str]) -> int:
    order = "C"
    if argv[2:4] == ["--order", "F"]:
        order, argv = "F", argv[:2]
    if len(argv) != 2 or argv[0] not in ("save", "compare"):
        print(__doc__)
        return 2
    if argv[0] == "save":
        np.savez_compressed(argv[1], **snapshot(order))
        return 0
    with np.load(argv[1]) as f:
        ref = {k: f[k] for k in f.files}
    bad = compare(ref, snapshot(order))
    for key in bad:
        print("DIFFERS", key)
    print(f"compared {len(ref)} arrays, {len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
