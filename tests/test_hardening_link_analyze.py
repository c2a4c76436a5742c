"""Issue 16: `link` never writes over its inputs; `analyze` refuses tables that would give wrong numbers.

Each test is written from the defect's description and fails on the code before the fix:
``spinemri link ... --out clinical.csv`` replaced the clinical source table, ``--out link_report.csv``
lost the linked table; ``spinemri analyze`` accepted VAS -3 and 11 and duplicated patients (doubling n).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import spinemri
from spinemri.cli import main
from spinemri.errors import InputError

PATIENTS = (
    "patient_id,n_vertebrae,n_involved,involved_levels,cervical_involved,thoracic_involved,lumbar_involved,"
    "sacral_involved,dominant_region,total_lesion_count,total_lesion_volume_mm3,hi_volume_ratio,"
    "hi_area_ratio,hi_area_ratio_max\n"
    + "".join(
        f"P{i},9,{i % 3},L2,False,False,{i % 2 == 0},False,{'lumbar' if i % 2 == 0 else 'thoracic'},"
        f"{i % 3},{100.0 * i},{0.01 * i},{0.02 * i},{0.03 * i}\n"
        for i in range(1, 13)
    )
)
CLINICAL = "patient_id,vas\n" + "".join(f"P{i},{i % 11}\n" for i in range(1, 13))


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Path, Path]:
    patients = tmp_path / "patients.csv"
    clinical = tmp_path / "clinical.csv"
    patients.write_text(PATIENTS, encoding="utf-8")
    clinical.write_text(CLINICAL, encoding="utf-8")
    return patients, clinical


@pytest.mark.parametrize("target", ["clinical.csv", "patients.csv", "link_report.csv", "sub/../clinical.csv"])
def test_link_refuses_to_write_over_an_input_or_its_own_report(
    tables: tuple[Path, Path], target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    patients, clinical = tables
    before = {p: p.read_bytes() for p in (patients, clinical)}
    (patients.parent / "sub").mkdir()
    out = patients.parent / target
    rc = main(["link", str(patients), str(clinical), "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "same file" in err and "nothing was written" in err
    assert {p: p.read_bytes() for p in (patients, clinical)} == before
    assert not (patients.parent / "link_report.csv").exists()


def test_link_to_a_fresh_file_still_works(tables: tuple[Path, Path]) -> None:
    patients, clinical = tables
    out = patients.parent / "linked.csv"
    assert main(["link", str(patients), str(clinical), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 12 and (patients.parent / "link_report.csv").exists()


def _linked(tables: tuple[Path, Path]) -> pd.DataFrame:
    patients, clinical = tables
    linked, _ = spinemri.link(pd.read_csv(patients, dtype={"patient_id": str}), pd.read_csv(clinical))
    return linked


@pytest.mark.parametrize("bad_vas", [-3.0, 11.0, 10.5])
def test_analyze_refuses_vas_outside_0_10(tables: tuple[Path, Path], bad_vas: float) -> None:
    linked = _linked(tables)
    linked.loc[3, "vas"] = bad_vas
    with pytest.raises(InputError, match=r"outside 0-10.*'P4'"):
        spinemri.analyze(linked)


def test_analyze_refuses_duplicated_patients(tables: tuple[Path, Path]) -> None:
    linked = _linked(tables)
    n = spinemri.analyze(linked).to_dict()["n_patients"]
    assert n == 12
    with pytest.raises(InputError, match=r"12 patient id\(s\) appear on more than one row"):
        spinemri.analyze(pd.concat([linked, linked], ignore_index=True))


def test_analyze_cli_names_the_file(tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    linked = _linked(tables)
    linked.loc[0, "vas"] = -3
    path = tables[0].parent / "linked_bad.csv"
    linked.to_csv(path, index=False)
    rc = main(["analyze", str(path), "--out", str(path.parent / "analysis")])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(path) in err and "outside 0-10" in err
    assert not (path.parent / "analysis").exists()


def test_missing_vas_is_still_a_note_not_an_error(tables: tuple[Path, Path]) -> None:
    linked = _linked(tables)
    linked.loc[2, "vas"] = float("nan")
    d = spinemri.analyze(linked).to_dict()
    assert d["n_with_vas"] == 11
