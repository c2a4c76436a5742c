#!/usr/bin/env python
"""Draw docs/img/phantom_followup.png: one follow-up phantom at its three scans (docs/phantom.md).

    python scripts/make_followup_figure.py [--out docs/img/phantom_followup.png]

Each panel is the sagittal slice holding the most truth lesion voxels of that scan, with the
truth vertebrae (gold) and lesions (red); the title gives the scan date, the grid and the planned
change of every involved level since the previous scan.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "phantom_followup.png")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from spinemri.errors import SpinemriWarning
    from spinemri.phantom.followup import make_followup

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        fu = make_followup(
            3,
            3,
            scenarios=["merge", "split", "respond", "new", "progress"],
            rows=384,
            cols=256,
            n_slices=15,
            first_level="T9",
            last_level="S1",
            snr=25,
        )
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 5.2))
    for t, (ax, scan) in enumerate(zip(axes, fu.scans, strict=True)):
        lab = np.asarray(scan.truth.lesion_mask.data)
        k = int(np.argmax((lab > 0).sum(axis=(0, 1))))
        sl = np.asarray(scan.image.data[:, :, k], float).T
        asp = scan.image.spacing[1] / scan.image.spacing[0]
        ax.imshow(sl, cmap="gray", aspect=asp, vmin=0, vmax=np.percentile(sl, 99.5))
        ax.contour(np.asarray(scan.mask.data[:, :, k]).T > 0, [0.5], colors="gold", linewidths=0.4)
        ax.contour(lab[:, :, k].T > 0, [0.5], colors="red", linewidths=0.6)
        if t == 0:
            note = "baseline"
        else:
            ch = fu.changes[
                (fu.changes["timepoint_to"] == scan.timepoint) & (fu.changes["status"] != "uninvolved")
            ]
            items = [f"{r.level} {r.status}" for r in ch.itertuples()]
            note = "\n".join(", ".join(items[i : i + 2]) for i in range(0, len(items), 2))
        ax.set_title(f"{scan.scan_date}  {scan.image.shape[2]} slices\n{note}", fontsize=7)
        ax.set_axis_off()
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.86, wspace=0.04)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
