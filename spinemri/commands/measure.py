"""``spinemri measure IMAGE --mask MASK``: measure one case; write tables, lesion mask, QC and provenance."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run", "write_measurement", "safe_id"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``measure`` sub-command."""
    p = subparsers.add_parser(
        "measure",
        help="measure one case (image + vertebral mask)",
        description=(
            "Segment hyperintense marrow lesions in each vertebra of one image and write per-vertebra, "
            "per-lesion and per-patient tables. IMAGE and MASK are a DICOM folder, a DICOM file, or a "
            "NIfTI/NRRD/MHA file. Without --out the vertebra table is printed."
        ),
    )
    p.add_argument("image", help="image: DICOM folder or file, NIfTI, NRRD or MHA")
    p.add_argument("--mask", required=True, help="vertebral label mask on the image grid")
    p.add_argument(
        "--scheme",
        default="auto",
        help="label scheme: auto, verse, totalseg, spider, ... or a JSON/YAML file",
    )
    p.add_argument("--method", default="robust", choices=["robust", "local", "otsu", "fixed"])
    p.add_argument(
        "--polarity",
        default=None,
        choices=["bright", "dark"],
        help="bright (STIR/T2-FS, default) or dark (T1)",
    )
    p.add_argument("--k", type=float, default=None, help="robust SDs above the reference median (default 3)")
    p.add_argument("--min-lesion-mm3", type=float, default=None, help="smallest lesion kept, mm³")
    p.add_argument("--margin-mm", type=float, default=None, help="vertebra rim excluded from seeding, mm")
    p.add_argument(
        "--fixed-threshold", type=float, default=None, help="absolute threshold for --method fixed"
    )
    p.add_argument("--connectivity", type=int, default=None, choices=[6, 18, 26])
    p.add_argument("--n4", action="store_true", help="N4 bias-field correction before thresholding")
    p.add_argument(
        "--resample-mask", action="store_true", help="resample a mask on another grid (nearest neighbour)"
    )
    p.add_argument(
        "--patient-id",
        default=None,
        help="patient id written in the tables (default: for DICOM a salted hash of its PatientID, "
        "salt from $SPINEMRI_ID_SALT; for a file its name without extension)",
    )
    p.add_argument("--out", default=None, help="output folder; without it the vertebra table is printed")
    p.add_argument(
        "--dicom-seg",
        action="store_true",
        help="also write OUT/masks/<id>_lesions.seg.dcm, a DICOM Segmentation referencing the source series "
        "(DICOM images only; it carries the source's patient data, docs/dicom-seg.md)",
    )
    p.add_argument(
        "--dicom-seg-vertebrae",
        action="store_true",
        help="add one segment per vertebral level to the DICOM-SEG (implies --dicom-seg)",
    )
    p.set_defaults(func=run)
    return p


def default_patient_id(args: argparse.Namespace, image: Any) -> str:
    """--patient-id, else a salted hash of the DICOM PatientID, else the image file name without extension.

    Never the raw DICOM PatientID or PatientName (DESIGN §6).
    """
    if args.patient_id:
        return str(args.patient_id)
    hashed = image.meta.get("patient_id_hash")
    if hashed:
        return f"anon-{hashed}"
    name = Path(str(args.image)).name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "patient"
    return name or "patient"


def safe_id(patient_id: str) -> str:
    """A file-name-safe form of a patient id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", patient_id).strip("._") or "patient"


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for name in ("polarity", "k", "min_lesion_mm3", "margin_mm", "fixed_threshold", "connectivity"):
        value = getattr(args, name, None)
        if value is not None:
            opts[name] = value
    if args.n4:
        opts["n4"] = True
    return opts


def write_measurement(
    out_dir: Path,
    image: Any,
    mask: Any,
    m: Any,
    *,
    inputs: dict[str, str | os.PathLike[str]],
    timings_s: dict[str, float],
    notes: list[str],
) -> dict[str, Path]:
    """Write tables, lesion mask, QC PNG and provenance of one Measurement into ``out_dir``."""
    from ..io.atomic import write_bytes_atomic
    from ..io.nifti import save_nifti
    from ..io.tables import write_tables
    from ..report.provenance import provenance_record
    from ..report.qc import measurement_qc_png

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    sid = safe_id(m.patient_id)
    write_tables({"vertebrae": m.vertebrae, "lesions": m.lesions, "patients": m.patient}, out_dir)
    mask_path = save_nifti(m.lesion_mask, out_dir / "masks" / f"{sid}_lesions.nii.gz")  # smallest id dtype
    qc_path = write_bytes_atomic(out_dir / "qc" / f"{sid}.png", measurement_qc_png(image, mask, m))
    timings = {
        **timings_s,
        **{f"measure_{k}": v for k, v in m.timings_s.items()},
        "write": time.perf_counter() - t0,
    }
    record = provenance_record(
        parameters=m.parameters(), inputs=inputs, timings_s=timings, notes=[*notes, *m.notes]
    )
    from ..io.atomic import write_text_atomic

    prov = write_text_atomic(out_dir / "provenance.json", json.dumps(record, indent=2, sort_keys=True) + "\n")
    return {"lesion_mask": mask_path, "qc": qc_path, "provenance": prov}


def _check_dicom_seg(args: argparse.Namespace, image: Any) -> bool:
    """--dicom-seg / --dicom-seg-vertebrae: True when asked for; refuse a non-DICOM image or no --out."""
    from ..errors import InputError

    if not (args.dicom_seg or args.dicom_seg_vertebrae):
        return False
    if image.meta.get("format") != "dicom":
        raise InputError(
            f"{args.image}: --dicom-seg needs a DICOM image (the DICOM-SEG references the source series), but "
            f"this image is {image.meta.get('format') or 'not DICOM'}; pass the DICOM folder or drop --dicom-seg"
        )
    if args.out is None:
        raise InputError(f"{args.image}: --dicom-seg writes into OUT/masks/: add --out OUT")
    from ..io.dicomseg import require_highdicom

    require_highdicom()  # before measuring, not after
    return True


def run(args: argparse.Namespace) -> int:
    """Run ``spinemri measure``; return the exit status."""
    import pandas as pd

    from ..errors import GeometryError
    from ..io.load import load_mask, load_volume
    from ..measurement import measure

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = load_volume(args.image)
        dicom_seg = _check_dicom_seg(args, image)
        try:
            mask = load_mask(args.mask, like=image, resample=args.resample_mask)
        except GeometryError as exc:
            if args.resample_mask:
                raise
            raise GeometryError(f"{exc} (command line: add --resample-mask)") from exc
        t1 = time.perf_counter()
        m = measure(
            image,
            mask,
            scheme=args.scheme,
            method=args.method,
            patient_id=default_patient_id(args, image),
            **_options(args),
        )
    notes = []
    for w in caught:
        notes.append(str(w.message))
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if args.out is None:
        with pd.option_context("display.max_columns", None, "display.width", 200):
            cols = [
                "level",
                "vertebra_voxels",
                "lesion_voxels",
                "lesion_count",
                "hi_volume_ratio",
                "hi_area_ratio",
                "threshold",
                "involved",
                "truncated",
            ]
            print(m.vertebrae[cols].to_string(index=False))
        return 0
    out = Path(args.out)
    paths = write_measurement(
        out,
        image,
        mask,
        m,
        inputs={"image": args.image, "mask": args.mask},
        timings_s={"load": t1 - t0},
        notes=[n for n in notes if n not in m.notes],
    )
    if dicom_seg:
        from ..io.dicomseg import write_dicom_seg

        seg = write_dicom_seg(
            out / "masks" / f"{safe_id(m.patient_id)}_lesions.seg.dcm",
            args.image,
            m.lesion_mask,
            image=image,
            vertebrae=mask if args.dicom_seg_vertebrae else None,
            levels=m.scheme,
            algorithm_parameters=m.parameters()["segment"],
        )
        print(f"wrote DICOM-SEG {seg}", file=sys.stderr)
    print(
        f"wrote {out} ({len(m.vertebrae)} vertebrae, {len(m.lesions)} lesions; QC {paths['qc']})",
        file=sys.stderr,
    )
    return 0
