#!/usr/bin/env python
"""Refactoring guard for the command line: snapshot every output of the main commands, compare after.

Not a test (its reference is the code's own output, so it proves only "unchanged", never
"right"). Use it around a change that must not alter behaviour (docs/decisions/0013):

    python scripts/output_snapshot.py save /tmp/out_before       # before the change
    python scripts/output_snapshot.py save /tmp/out_after        # after it
    python scripts/output_snapshot.py compare /tmp/out_before /tmp/out_after

What is run (each with the ``spinemri`` on PATH):

* ``spinemri run sample_data --out run_sample``
* ``spinemri measure`` on every sample case: NIfTI cases from their image file, DICOM cases
  from their folder (``measure_<case>``)
* ``spinemri phantom cohort30 --patients 30 --seed 7`` then ``spinemri run cohort30 --out run30``

Compared byte for byte, except: ``*.nii.gz`` by their decompressed bytes (the gzip header
holds a time stamp); JSON files with every key named ``timings``/``elapsed*``/``created``/
``started``/``finished`` removed (wall-clock facts). Anything else that differs is listed.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
VOLATILE_KEYS = ("timings", "elapsed", "created", "started", "finished", "duration", "wall")


def run(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(["spinemri", *args], cwd=cwd, capture_output=True, text=True)
    (cwd / "commands.log").open("a").write(
        f"$ spinemri {' '.join(args)}\nexit {proc.returncode}\n{proc.stdout}{proc.stderr}\n"
    )


def save(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    run(["run", str(SAMPLE), "--out", "run_sample"], dest)
    for case in sorted(p for p in SAMPLE.iterdir() if p.is_dir()):
        mask = case / "vertebrae_mask.nii.gz"
        image = case / "image.nii.gz" if (case / "image.nii.gz").exists() else case / "dicom"
        run(
            [
                "measure",
                str(image),
                "--mask",
                str(mask),
                "--patient-id",
                case.name,
                "--out",
                f"measure_{case.name}",
            ],
            dest,
        )
    run(["phantom", "cohort30", "--patients", "30", "--seed", "7"], dest)
    run(["run", "cohort30", "--out", "run30"], dest)


def _strip(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not any(w in k.lower() for w in VOLATILE_KEYS)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def normalised(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.suffix == ".json":
        try:
            return json.dumps(_strip(json.loads(data)), sort_keys=True).encode()
        except ValueError:
            return data
    return data


def compare(a: Path, b: Path) -> int:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "commands.log"}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != "commands.log"}
    problems = [f"only in {a}: {p}" for p in sorted(files_a - files_b)]
    problems += [f"only in {b}: {p}" for p in sorted(files_b - files_a)]
    same = 0
    for rel in sorted(files_a & files_b):
        if normalised(a / rel) == normalised(b / rel):
            same += 1
        else:
            problems.append(f"differs: {rel}")
    print("\n".join(problems))
    print(f"{same} files identical, {len(problems)} differences")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "save":
        save(Path(argv[1]).resolve())
        return 0
    if len(argv) >= 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
