"""Synthetic DICOM series for the load benchmarks (benchmarks only; not part of the package).

``make_series(out, n_slices=120, size=512)`` draws a phantom with
:func:`spinemri.make_phantom`, writes it with
:func:`spinemri.io.dicom.write.write_dicom_series` (Explicit VR Little Endian,
one file per slice) into ``out/native`` and re-encodes every file to JPEG 2000
lossless (pydicom ``Dataset.compress`` with the pylibjpeg-openjpeg encoder)
into ``out/j2k``; the phantom's vertebra mask goes to ``out/mask.nii.gz``.
Existing folders with the right number of files are reused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_series(out: Path, n_slices: int = 120, size: int = 512) -> dict[str, Path]:
    """Write (or reuse) the series and mask; return ``{"native": dir, "j2k": dir, "mask": file}``."""
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    from spinemri import make_phantom
    from spinemri.io.dicom.write import write_dicom_series

    out = Path(out)
    from spinemri.io.nifti import save_nifti

    native, j2k, mask_path = out / "native", out / "j2k", out / "mask.nii.gz"
    if len(list(native.glob("*.dcm"))) != n_slices or not mask_path.exists():
        img, mask, _ = make_phantom(seed=3, rows=size, cols=size, n_slices=n_slices)
        write_dicom_series(img, native, patient_id="BENCH-001", uid_seed="bench:dicom-load")
        save_nifti(mask, mask_path)
    if len(list(j2k.glob("*.dcm"))) != n_slices:
        j2k.mkdir(parents=True, exist_ok=True)
        for f in sorted(native.glob("*.dcm")):
            ds = pydicom.dcmread(f)
            ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
            ds.save_as(j2k / f.name, enforce_file_format=True)
    return {"native": native, "j2k": j2k, "mask": mask_path}


if __name__ == "__main__":
    import sys

    dirs = make_series(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench_dcm"))
    for k, d in dirs.items():
        files = sorted(d.glob("*.dcm")) if d.is_dir() else [d]
        print(k, d, len(files), sum(f.stat().st_size for f in files) / 1e6, "MB")
    print(np.__version__)
