"""Therapy guidance in a cohort run from a real SPINEPS pair (issue 15): the posterior elements are read."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared_path

from spinemri.cli import main
from spinemri.errors import SpinemriWarning

SPINEPS = "tptbox_spineps_sample_mri"


@pytest.mark.shared_data
def test_spineps_pair_gives_posterolateral_and_canal_columns(tmp_path: Path) -> None:
    src = shared_path(SPINEPS)
    cohort = tmp_path / "cohort" / "P1"
    cohort.mkdir(parents=True)
    for f in src.glob("*.nii.gz"):
        shutil.copy(f, cohort / f.name)
    # the sample's ids 5-7 are relabelled thoracolumbar bodies (its README): name them by a mapping
    scheme = tmp_path / "scheme.json"
    scheme.write_text(json.dumps({"5": "L1", "6": "L2", "7": "L3"}))
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        args = ["run", str(cohort.parent), "--out", str(out), "--quiet", "--scheme", str(scheme)]
        assert main([*args, "--canal-screening"]) == 0
    g = pd.read_csv(out / "guidance.csv", dtype=str, keep_default_na=False)
    assert g["level"].tolist() == ["L1", "L2", "L3"]
    # posterior elements from the SPINEPS subregions: assessed (a healthy spine: none), not "not assessable"
    assert set(g["posterolateral_source"]) == {"SPINEPS subregions"}
    assert set(g["posterolateral"]) == {"none"}
    assert {"canal_area_mm2", "cord_area_mm2", "escc_grade", "canal_screen"} <= set(g.columns)
    assert (out / "planning.csv").is_file()
