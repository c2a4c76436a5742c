"""Parameters are validated when they are built: a bad option is bad usage (exit 2) before any case is read.

Issue 12: ``RunConfig`` accepted ``--k -1`` and then failed every case. Each cohort here
holds a patient folder whose image and mask are not images at all: reading them would fail
the case (exit 1, errors.csv), so exit 2 with nothing written shows the option was refused first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spinemri.cli import main
from spinemri.errors import ConfigError
from spinemri.params import MetricsParams, RunConfig, SegmentParams, measure_params


@pytest.fixture
def unreadable_cohort(tmp_path: Path) -> Path:
    """A cohort folder with one patient whose files fail as soon as they are read."""
    case = tmp_path / "cohort" / "P01"
    case.mkdir(parents=True)
    (case / "image.nii.gz").write_bytes(b"not a NIfTI file")
    (case / "vertebrae_mask.nii.gz").write_bytes(b"not a mask either")
    return tmp_path / "cohort"


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("--k", "-1", "--k"),
        ("--margin-mm", "-1", "--margin-mm"),
        ("--min-lesion-mm3", "-5", "--min-lesion-mm3"),
    ],
)
def test_run_refuses_a_bad_option_before_reading_any_case(
    unreadable_cohort: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    named: str,
) -> None:
    out = tmp_path / "out"
    assert main(["run", str(unreadable_cohort), "--out", str(out), "--quiet", option, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"spinemri run: error: {named}:")
    assert not out.exists()  # nothing discovered, read or written: no errors.csv


def test_run_refuses_a_bad_connectivity(
    unreadable_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:  # argparse: not one of 6, 18, 26
        main(["run", str(unreadable_cohort), "--out", str(out), "--connectivity", "5"])
    assert exc.value.code == 2
    assert "--connectivity" in capsys.readouterr().err
    assert not out.exists()


def test_run_with_a_good_option_reads_the_cases(unreadable_cohort: Path, tmp_path: Path) -> None:
    # the same cohort with valid options gets as far as the cases: they fail (exit 1, errors.csv)
    out = tmp_path / "out"
    assert main(["run", str(unreadable_cohort), "--out", str(out), "--quiet", "--k", "2.5"]) == 1
    assert (out / "errors.csv").is_file()


def test_run_method_fixed_without_threshold_is_refused_at_once(
    unreadable_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", str(unreadable_cohort), "--out", str(out), "--method", "fixed"]) == 2
    assert "fixed_threshold" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("option, value", [("--k", "-1"), ("--margin-mm", "-1"), ("--min-lesion-mm3", "-5")])
def test_measure_refuses_a_bad_option_before_reading_the_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    image = tmp_path / "image.nii.gz"
    image.write_bytes(b"not a NIfTI file")  # reading it would be an input error naming this file
    out = tmp_path / "out"
    rc = main(
        ["measure", str(image), "--mask", str(tmp_path / "nope.nii.gz"), "--out", str(out), option, value]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"spinemri measure: error: {option}:")
    assert str(image) not in err and "nope" not in err
    assert not out.exists()


def test_measure_refuses_a_bad_connectivity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "measure",
                str(tmp_path / "i.nii.gz"),
                "--mask",
                str(tmp_path / "m.nii.gz"),
                "--connectivity",
                "5",
            ]
        )
    assert exc.value.code == 2
    assert "--connectivity" in capsys.readouterr().err


def test_phantom_refuses_a_bad_option_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cohort"
    assert main(["phantom", str(out), "--patients", "1", "--rows", "5"]) == 2
    assert capsys.readouterr().err.strip().startswith("spinemri phantom: error: --rows:")
    assert main(["phantom", str(out), "--patients", "1", "--slices", "0"]) == 2
    assert capsys.readouterr().err.strip().startswith("spinemri phantom: error: --slices:")
    assert main(["phantom", str(out), "--patients", "0"]) == 2
    assert not out.exists()


@pytest.mark.parametrize(
    "segment, field",
    [
        ((("k", -1),), "k"),
        ((("margin_mm", -1.0),), "margin_mm"),
        ((("connectivity", 5),), "connectivity"),
        ((("min_lesion_mm3", -1.0),), "min_lesion_mm3"),
        ((("polarity", "grey"),), "polarity"),
        ((("intensity_erosion_mm", 50.0),), "intensity_erosion_mm"),
    ],
)
def test_run_config_checks_its_segment_options_when_built(segment: tuple, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        RunConfig(segment=segment)


def test_run_config_checks_the_method_with_its_options() -> None:
    with pytest.raises(ConfigError, match="fixed_threshold"):
        RunConfig(method="fixed")
    config = RunConfig(method="fixed", segment=(("fixed_threshold", 500.0),))
    assert config.measure_options()["fixed_threshold"] == 500.0


def test_valid_run_config_is_unchanged() -> None:
    config = RunConfig(segment=(("k", 2.5), ("polarity", "dark")))
    assert config.segment == (("k", 2.5), ("polarity", "dark"))
    assert config.measure_options() == {"scheme": "auto", "method": "robust", "k": 2.5, "polarity": "dark"}


def test_measure_params_builds_both_parameter_sets() -> None:
    seg, met = measure_params({"k": 2.0, "intensity_erosion_mm": 1.0, "scheme": "verse"})
    assert seg == SegmentParams(k=2.0) and met == MetricsParams(intensity_erosion_mm=1.0)
    with pytest.raises(ConfigError, match="k"):
        measure_params({"k": -1})
