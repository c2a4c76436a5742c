"""`spinemri link` and `spinemri analyze` through spinemri.cli.main: outputs, stderr summary, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spinemri.cli import main


def write_inputs(tmp_path, n=30, seed=2, sep=",", encoding="utf-8"):
    rng = np.random.default_rng(seed)
    region = rng.choice(["cervical", "thoracic", "lumbar"], size=n)
    n_inv = rng.integers(1, 8, n)
    patients = pd.DataFrame(
        {
            "patient_id": [f"SMR-{i:03d}" for i in range(n)],
            "n_vertebrae": 17,
            "n_involved": n_inv,
            "involved_levels": "T12;L2",
            "cervical_involved": region == "cervical",
            "thoracic_involved": region == "thoracic",
            "lumbar_involved": region == "lumbar",
            "sacral_involved": False,
            "dominant_region": region,
            "total_lesion_count": n_inv,
            "total_lesion_volume_mm3": 50.0 * n_inv,
            "hi_volume_ratio": 0.02 * n_inv,
            "hi_area_ratio": np.clip(0.03 * n_inv + rng.normal(0, 0.02, n), 0, 1),
            "hi_area_ratio_max": 0.1,
        }
    )
    vas = np.clip(np.round(3 + 2.5 * (region == "lumbar") + rng.normal(0, 1, n)), 0, 10)
    ids = [f"smr_{i}" if i % 4 == 0 else f"SMR-{i:03d}" for i in range(n)]  # id-format noise
    clinical = pd.DataFrame({"Patient": ids, "VAS": vas, "sex": "F"})
    clinical.loc[1, "VAS"] = 14  # invalid: excluded and reported
    p = tmp_path / "patients.csv"
    c = tmp_path / "clinical.csv"
    patients.to_csv(p, index=False)
    clinical.to_csv(c, index=False, sep=sep, encoding=encoding)
    return p, c


def test_link_then_analyze(tmp_path, capsys):
    p, c = write_inputs(tmp_path, sep=";", encoding="utf-8-sig")
    out = tmp_path / "res" / "linked.csv"
    rc = main(["link", str(p), str(c), "--out", str(out), "--id-column", "Patient", "--vas-column", "VAS"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "linked 29 of 30 imaging patients" in err
    assert "normalised match: imaging SMR-000 <- clinical smr_0" in err
    assert "invalid_vas: 1" in err
    linked = pd.read_csv(out, dtype={"patient_id": str})
    assert len(linked) == 30 and linked["vas"].notna().sum() == 29
    assert linked.loc[linked["patient_id"] == "SMR-004", "link_match"].item() == "normalised"
    assert np.isnan(linked.loc[linked["patient_id"] == "SMR-001", "vas"].item())
    rep = pd.read_csv(out.parent / "link_report.csv")
    assert list(rep.columns) == ["kind", "imaging_id", "clinical_id", "clinical_row", "detail"]
    assert (rep["kind"] == "normalised").sum() == 8 and (rep["kind"] == "invalid_vas").sum() == 1

    adir = tmp_path / "analysis"
    rc = main(["analyze", str(out), "--out", str(adir)])
    assert rc == 0
    summary = json.loads((adir / "summary.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert summary["n_patients"] == 30 and summary["n_with_vas"] == 29
    assert summary["lumbar_vs_non_lumbar"]["computable"] is True
    assert summary["regression"]["ols"]["computable"] is True
    assert (adir / "report.html").stat().st_size > 10_000
    assert "analysed 29 of 30 patients" in capsys.readouterr().err


def test_link_duplicates_without_date_exit_2(tmp_path, capsys):
    p, _ = write_inputs(tmp_path)
    c = tmp_path / "dup.csv"
    c.write_text("patient_id,vas\nSMR-000,3\nSMR-000,8\n")
    rc = main(["link", str(p), str(c), "--out", str(tmp_path / "linked.csv")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "SMR-000" in err and str(c) in err and "--date-column" in err
    assert not (tmp_path / "linked.csv").exists()


def test_link_duplicates_with_date_column(tmp_path, capsys):
    p, _ = write_inputs(tmp_path)
    pt = pd.read_csv(p)
    pt["scan_date"] = "2024-05-10"
    pt.to_csv(p, index=False)
    c = tmp_path / "dated.tsv"
    c.write_text(
        "patient_id\tvas\tvisit\nSMR-000\t3\t2024-01-01\nSMR-000\t8\t2024-05-12\nSMR-001\t5\t2024-05-01\n"
    )
    out = tmp_path / "linked.csv"
    rc = main(["link", str(p), str(c), "--out", str(out), "--date-column", "visit"])
    assert rc == 0
    linked = pd.read_csv(out)
    assert linked.loc[0, "vas"] == 8 and linked.loc[1, "vas"] == 5
    assert "outside_window: 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--id-column", "nope"], "--id-column"),
        (["--id-column", "Patient", "--vas-column", "pain"], "--vas-column"),
    ],
)
def test_link_missing_column_exit_2(tmp_path, capsys, args, needle):
    p, c = write_inputs(tmp_path)
    rc = main(["link", str(p), str(c), "--out", str(tmp_path / "l.csv"), *args])
    assert rc == 2
    assert needle in capsys.readouterr().err


def test_link_missing_file_exit_2(tmp_path, capsys):
    p, _ = write_inputs(tmp_path)
    rc = main(["link", str(p), str(tmp_path / "absent.csv"), "--out", str(tmp_path / "l.csv")])
    assert rc == 2
    assert "absent.csv" in capsys.readouterr().err


def test_link_nothing_linked_exit_2(tmp_path, capsys):
    p, _ = write_inputs(tmp_path)
    c = tmp_path / "other.csv"
    c.write_text("Patient,VAS\nX1,3\nX2,4\n")
    rc = main(
        [
            "link",
            str(p),
            str(c),
            "--out",
            str(tmp_path / "l.csv"),
            "--id-column",
            "Patient",
            "--vas-column",
            "VAS",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "no patient" in err and (tmp_path / "link_report.csv").exists()


def test_analyze_degenerate_table_exit_0(tmp_path):
    f = tmp_path / "linked.csv"
    f.write_text(
        "patient_id,vas,n_involved,lumbar_involved,dominant_region,hi_area_ratio,hi_volume_ratio\n"
        "A,5,1,True,lumbar,0.1,0.1\nB,5,2,False,thoracic,0.2,0.1\n"
    )
    assert main(["analyze", str(f), "--out", str(tmp_path / "a")]) == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert s["vas_by_dominant_region"]["computable"] is False
    assert s["vas_by_dominant_region"]["reason"] == "only 2 patients with a valid VAS (need >= 3)"
    assert s["prediction"]["computable"] is False and "reason" in s["prediction"]


def test_analyze_empty_table_exit_2(tmp_path, capsys):
    f = tmp_path / "linked.csv"
    f.write_text("patient_id,vas\n")
    assert main(["analyze", str(f), "--out", str(tmp_path / "a")]) == 2
    assert "no rows" in capsys.readouterr().err
