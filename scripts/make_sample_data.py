"""Regenerate sample_data/ (the bundled phantom cohort) and the phantom pictures in docs/img/.

Usage (from the repository root)::

    python scripts/make_sample_data.py            # sample_data/ and its README.md
    python scripts/make_sample_data.py --figures  # also docs/img/phantom_*.png

The cohort is fully determined by the settings below: rerunning gives
byte-identical files, so a diff in git means the phantom changed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = dict(n_patients=6, seed=2025, format="mixed", contrast="stir", second_series=1)
PHANTOM = dict(rows=176, cols=144, n_slices=13, first_level="T10", last_level="S1")
COMMAND = (
    "spinemri phantom sample_data --patients 6 --seed 2025 --format mixed --contrast stir "
    "--rows 176 --cols 144 --slices 13 --levels T10-S1 --second-series 1"
)

README_HEAD = """# sample_data: a small synthetic cohort

Six synthetic patients made by spinemri's digital spine phantom (docs/phantom.md): sagittal STIR
images of T10-S1 (176 x 144 pixels, 13 slices of 4 mm), odd-numbered patients as an
uncompressed DICOM series (`dicom/`), even-numbered as NIfTI (`image.nii.gz`), each with a
VerSe-labelled vertebral mask (`vertebrae_mask.nii.gz`). `clinical.csv` holds pain scores (VAS)
drawn from the documented generative model, with a few missing values and some ids written
in other spellings (lower case, `_`, no separator), as real spreadsheets do. SMR-001's DICOM
folder also holds a "SAG T1" series (`IM02*.dcm`, same study and geometry) next to its
"SAG STIR" series (`IM01*.dcm`), to exercise series selection. The `truth*` files
are the phantom's ground truth, computed from the analytic shapes.

- Origin: generated, no patient data. Licence: CC0 1.0 (public domain dedication).
- Made by `python scripts/make_sample_data.py`, which runs the equivalent of

      {command}

- Regenerating gives byte-identical files.

## Files
"""


def write_readme(root: Path) -> None:
    lines = [README_HEAD.format(command=COMMAND)]
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "README.md":
            lines.append(f"- `{p.relative_to(root).as_posix()}` ({p.stat().st_size // 1024 + 1} KB)")
    (root / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_figures(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from spinemri.phantom import LesionSpec, make_phantom

    out.mkdir(parents=True, exist_ok=True)
    lesions = [
        LesionSpec("T12", "focal", 7.0),
        LesionSpec("L2", "irregular", 8.0, (0, 4, 3)),
        LesionSpec("L4", "diffuse", strength=0.5),
        LesionSpec("L1", "focal", 5.0, (0, -6, -4), 0.8),
    ]
    common = dict(
        rows=384,
        cols=256,
        n_slices=15,
        first_level="T8",
        last_level="S1",
        lesions=lesions,
        collapse=(("L4", 0.25),),
    )
    for contrast in ("stir", "t1"):
        img, mask, truth = make_phantom(seed=7, contrast=contrast, **common)
        k = img.shape[2] // 2
        sl = np.asarray(img.data[:, :, k], float).T
        fig, axes = plt.subplots(1, 2, figsize=(5.4, 4.0))
        asp = img.spacing[1] / img.spacing[0]
        axes[0].imshow(sl, cmap="gray", aspect=asp, vmin=0, vmax=np.percentile(sl, 99.5))
        axes[0].set_title(f"{img.meta['series_description']} (mid-sagittal)", fontsize=9)
        axes[1].imshow(sl, cmap="gray", aspect=asp, vmin=0, vmax=np.percentile(sl, 99.5))
        axes[1].contour(np.asarray(mask.data[:, :, k]).T > 0, [0.5], colors="gold", linewidths=0.5)
        axes[1].contour(
            np.asarray(truth.lesion_mask.data[:, :, k]).T > 0, [0.5], colors="red", linewidths=0.6
        )
        axes[1].set_title("truth: vertebrae (gold), lesions (red)", fontsize=9)
        for ax in axes:
            ax.set_axis_off()
        fig.tight_layout()
        fig.savefig(out / f"phantom_{contrast}.png", dpi=80)
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "sample_data"))
    ap.add_argument("--figures", action="store_true", help="also write docs/img/phantom_*.png")
    args = ap.parse_args(argv)
    from spinemri.io.cohort_write import CohortSpec, write_cohort

    root = Path(args.out)
    if root.exists():
        for p in root.iterdir():
            if p.is_dir():
                shutil.rmtree(p)
            elif p.name != "README.md":
                p.unlink()
    write_cohort(root, CohortSpec(**SETTINGS), **PHANTOM)
    write_readme(root)
    if args.figures:
        make_figures(REPO / "docs" / "img")
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"wrote {root} ({size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
