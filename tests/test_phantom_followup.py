"""Follow-up phantoms (issue 14, deliver 7): time-point folders, repositioning, the change truth.

The change truth is the analytic plan (sphere and two-sphere-union volumes in closed form); here
it is checked against volumes computed in the test (a fine sampling of the union), against the
rendered truth voxels and against spinemri's own measurement of the written files, within the
partial-volume tolerance of tests/test_phantom.py plus the 0.01 hi_volume_ratio tolerance of
tests/test_validation_phantom.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spinemri
from spinemri.cli import main
from spinemri.errors import ConfigError, SpinemriWarning
from spinemri.io.cohort_followup import FOLLOWUP_VAS_MODEL, write_followup_cohort
from spinemri.io.cohort_write import CohortSpec
from spinemri.phantom.changes import (
    LESION_CLASSES,
    MIN_INTERVAL_DAYS,
    SHORT_INTERVAL_DAYS,
    VERTEBRA_STATUSES,
    Sphere,
    union_volume,
)
from spinemri.phantom.followup import make_followup

ROOT = Path(__file__).resolve().parents[1]
#: small scans: 6 levels, ~1.3 mm pixels, 13 slices of 4 mm (11-15 at the follow-ups)
SMALL = ["--rows", "192", "--cols", "128", "--slices", "13", "--levels", "T12-S1"]
SMALL_OPTS = dict(rows=192, cols=128, n_slices=13, first_level="T12", last_level="S1")


def pv_tolerance(area_mm2: float, spacing: tuple[float, float, float], k: float = 4.0) -> float:
    """Partial-volume tolerance of a voxelised volume (the model of tests/test_phantom.py)."""
    v = float(np.prod(spacing))
    n_cut = area_mm2 * sum(spacing) / (2.0 * v)
    r = max(spacing) / min(spacing)
    return k * v * math.sqrt(n_cut * r / 12.0)


def _image_path(folder: Path) -> Path:
    return folder / "image.nii.gz" if (folder / "image.nii.gz").exists() else folder / "dicom"


def _load(folder: Path) -> tuple[spinemri.Volume, spinemri.Volume]:
    img = spinemri.load_volume(_image_path(folder))
    return img, spinemri.load_mask(folder / "vertebrae_mask.nii.gz", like=img)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("followup") / "cohort"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        rc = main(
            [
                "phantom",
                str(out),
                "--patients",
                "2",
                "--seed",
                "4",
                "--format",
                "mixed",
                "--timepoints",
                "3",
                *SMALL,
            ]
        )
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def measured(cohort: Path) -> pd.DataFrame:
    """spinemri.measure on every written scan: one row per patient x time point x vertebra."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        for patient in sorted(p for p in cohort.iterdir() if p.is_dir()):
            for tp in sorted(patient.iterdir()):
                img, mask = _load(tp)
                m = spinemri.measure(img, mask, scheme="verse", patient_id=patient.name)
                rows.append(m.vertebrae.assign(timepoint=tp.name, spacing=[img.spacing] * len(m.vertebrae)))
    return pd.concat(rows, ignore_index=True)


# ----------------------------------------------------------------------------- layout


def test_layout_one_folder_per_scan_date(cohort: Path) -> None:
    patients = sorted(p.name for p in cohort.iterdir() if p.is_dir())
    assert patients == ["SMR-001", "SMR-002"]
    clinical = pd.read_csv(cohort / "clinical.csv", dtype={"radiotherapy_date": str})
    assert list(clinical.columns[:6]) == ["patient_id", "timepoint", "scan_date", "age", "sex", "vas"]
    formats = set()
    for pid in patients:
        folders = sorted((cohort / pid).iterdir())
        names = [f.name for f in folders]
        dates = [dt.date.fromisoformat(n) for n in names]  # ISO YYYY-MM-DD
        assert len(dates) == 3 and dates == sorted(dates)
        assert all((b - a).days >= MIN_INTERVAL_DAYS for a, b in zip(dates, dates[1:], strict=False))
        for f in folders:
            assert (f / "vertebrae_mask.nii.gz").is_file()
            has_nifti, has_dicom = (f / "image.nii.gz").is_file(), (f / "dicom").is_dir()
            assert has_nifti != has_dicom
            formats.add("nifti" if has_nifti else "dicom")
            if has_dicom:  # the scan date is the DICOM StudyDate
                import pydicom

                ds = pydicom.dcmread(next((f / "dicom").glob("*.dcm")), stop_before_pixels=True)
                assert ds.StudyDate == f.name.replace("-", "")
        assert clinical[clinical["patient_id"] == pid]["timepoint"].tolist() == names
    assert formats == {"nifti", "dicom"}  # mixed: both kinds of time point
    for name in (
        "truth.csv",
        "truth_vertebrae.csv",
        "truth_lesions.csv",
        "truth_changes.csv",
        "truth_lesion_changes.csv",
        "truth_patient_changes.csv",
        "truth.json",
    ):
        assert (cohort / name).is_file(), name
    for name in ("truth.csv", "truth_vertebrae.csv", "truth_lesions.csv"):
        df = pd.read_csv(cohort / name)
        assert {"timepoint", "scan_date"} <= set(df.columns), name


def _tree(folder: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            out[str(p.relative_to(folder))] = gzip.decompress(data) if p.name.endswith(".gz") else data
    return out


def test_one_timepoint_is_todays_cohort_byte_for_byte(tmp_path: Path) -> None:
    """--timepoints 1 writes exactly sample_data (made before follow-ups existed)."""
    out = tmp_path / "s"
    args = [
        "phantom",
        str(out),
        "--patients",
        "6",
        "--seed",
        "2025",
        "--format",
        "mixed",
        "--contrast",
        "stir",
    ]
    args += ["--rows", "176", "--cols", "144", "--slices", "13", "--levels", "T10-S1", "--second-series", "1"]
    assert main([*args, "--timepoints", "1"]) == 0
    ref = {k: v for k, v in _tree(ROOT / "sample_data").items() if k != "README.md"}
    assert _tree(out) == ref


# ----------------------------------------------------------------------------- repositioning


def test_grids_differ_and_the_spine_moves_in_the_scanner(cohort: Path) -> None:
    for patient in sorted(p for p in cohort.iterdir() if p.is_dir()):
        scans = [_load(tp) for tp in sorted(patient.iterdir())]
        shapes = [img.shape for img, _ in scans]
        assert len(set(shapes)) >= 2, shapes  # slice counts differ
        for (a, ma), (b, mb) in zip(scans, scans[1:], strict=False):
            assert a.shape != b.shape or not np.allclose(a.affine, b.affine)
            da = a.affine[:3, :3] / np.linalg.norm(a.affine[:3, :3], axis=0)
            db = b.affine[:3, :3] / np.linalg.norm(b.affine[:3, :3], axis=0)
            angle = math.degrees(math.acos(np.clip((np.trace(da.T @ db) - 1) / 2, -1, 1)))
            assert 1.0 <= angle <= 15.0, angle  # a few degrees
            # the same vertebra sits elsewhere in scanner coordinates: several mm
            la, lb = np.asarray(ma.data), np.asarray(mb.data)
            for label in sorted(set(np.unique(la)) & set(np.unique(lb)) - {0}):
                ca = ma.world_coords(np.argwhere(la == label).mean(axis=0))
                cb = mb.world_coords(np.argwhere(lb == label).mean(axis=0))
                assert np.linalg.norm(ca - cb) >= 2.0, (patient.name, label)


# ----------------------------------------------------------------------------- truth


def test_union_volume_matches_a_fine_sampling() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(-12, 12, size=(2_000_000, 3))
    box = 24.0**3
    for spheres in (
        [Sphere((0.0, 0.0, 0.0), 6.0)],
        [Sphere((0.0, -4.0, 0.0), 5.5), Sphere((0.0, 4.5, 0.0), 5.5)],
        [Sphere((1.0, 0.0, -3.0), 4.0), Sphere((0.0, 1.0, 4.0), 6.0)],
    ):
        inside = np.zeros(len(pts), bool)
        for s in spheres:
            inside |= np.sum((pts - np.array(s.offset)) ** 2, axis=1) <= s.radius**2
        mc = inside.mean() * box
        se = math.sqrt(inside.mean() * (1 - inside.mean()) / len(pts)) * box
        assert abs(union_volume(spheres) - mc) <= 4 * se, (spheres, union_volume(spheres), mc)


def test_plan_has_every_status_and_class_and_known_factors(cohort: Path) -> None:
    ch = pd.read_csv(cohort / "truth_changes.csv")
    lc = pd.read_csv(cohort / "truth_lesion_changes.csv")
    assert set(ch["status"]) == set(VERTEBRA_STATUSES)
    assert set(lc["class"]) == set(LESION_CLASSES)
    ratio = ch["lesion_volume_mm3_to"] / ch["lesion_volume_mm3_from"]
    delta = ch["lesion_volume_mm3_to"] - ch["lesion_volume_mm3_from"]
    prog = ch["status"] == "progressing"
    assert (ratio[prog] >= 3 - 1e-9).all() and (delta[prog] >= 500).all()
    assert (ratio[ch["status"] == "regressing"] <= 0.25 + 1e-9).all()
    assert np.allclose(ratio[ch["status"] == "stable"], 1.0)
    new = lc[lc["class"] == "new"]
    assert (new["volume_mm3_to"] >= 4 / 3 * math.pi * 5.0**3 - 1e-6).all()  # radius >= 5 mm
    # one level stays stable over both intervals
    both = ch.groupby(["patient_id", "level"])["status"].agg(lambda s: set(s) == {"stable"})
    assert both.any()
    # the per-vertebra change volumes are the sums of the per-lesion analytic volumes
    les = pd.read_csv(cohort / "truth_lesions.csv")
    per = les.groupby(["patient_id", "timepoint", "planned_level"])["volume_mm3_analytic"].sum()
    for _, r in ch.iterrows():
        got = per.get((r["patient_id"], r["timepoint_from"], r["level"]), 0.0)
        assert got == pytest.approx(r["lesion_volume_mm3_from"], rel=1e-9, abs=1e-9)


def test_lesion_links_point_at_the_lesions_of_each_scan(cohort: Path) -> None:
    les = pd.read_csv(cohort / "truth_lesions.csv").set_index(["patient_id", "timepoint", "lesion_id"])
    lc = pd.read_csv(cohort / "truth_lesion_changes.csv")
    for _, r in lc.iterrows():
        for side, tp in (("from", r["timepoint_from"]), ("to", r["timepoint_to"])):
            if pd.isna(r[f"lesion_id_{side}"]):
                assert r[f"volume_mm3_{side}"] == 0 and r["class"] in ("new", "disappeared")
                continue
            row = les.loc[(r["patient_id"], tp, int(r[f"lesion_id_{side}"]))]
            assert row["planned_level"] == r["level"]
            assert row["volume_mm3_analytic"] == pytest.approx(r[f"volume_mm3_{side}"], rel=1e-9)
    # a merge is two links to one lesion, a split two links from one
    merged = lc[lc["class"] == "merged"].groupby(["patient_id", "timepoint_from", "lesion_id_to"]).size()
    split = lc[lc["class"] == "split"].groupby(["patient_id", "timepoint_from", "lesion_id_from"]).size()
    assert len(merged) and (merged == 2).all() and len(split) and (split == 2).all()


def test_lesion_positions_follow_the_pose_in_scanner_coordinates() -> None:
    """The written lesion centres (scanner mm) are where the truth voxels are, at every scan."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        fu = make_followup(2, 2, scenarios=["stable", "progress"], snr=None, **SMALL_OPTS)
    for scan in fu.scans:
        lab = np.asarray(scan.truth.lesion_mask.data)
        ids = iter(range(1, 100))  # shape ids of the scan, in plan order (one sphere per lesion here)
        for _, r in scan.lesions.iterrows():
            sid = next(ids)
            centroid = scan.truth.lesion_mask.world_coords(np.argwhere(lab == sid).mean(axis=0))
            assert np.linalg.norm(centroid - r[["x_mm", "y_mm", "z_mm"]].to_numpy(float)) <= 1.0
    # the same stable lesion: same place in its body, elsewhere in the scanner
    a, b = (s.lesions.set_index("scenario").loc["stable"] for s in fu.scans)
    local = ["offset_lr_mm", "offset_ap_mm", "offset_si_mm"]
    assert np.allclose(a[local].to_numpy(float), b[local].to_numpy(float))
    world = ["x_mm", "y_mm", "z_mm"]
    assert np.linalg.norm(a[world].to_numpy(float) - b[world].to_numpy(float)) >= 3.0


def test_truth_voxels_agree_with_the_analytic_plan(cohort: Path) -> None:
    """Rendered truth (supersampled voxels) vs the analytic plan: counts exact, volumes within PV."""
    ch = pd.read_csv(cohort / "truth_changes.csv")
    tv = pd.read_csv(cohort / "truth_vertebrae.csv").set_index(["patient_id", "timepoint", "level"])
    les = pd.read_csv(cohort / "truth_lesions.csv")
    for _, r in ch.iterrows():
        row = tv.loc[(r["patient_id"], r["timepoint_from"], r["level"])]
        assert row["lesion_count"] == r["lesion_count_from"], r.to_dict()
    for _, r in les.iterrows():
        area = 4 * math.pi * r["radius_mm"] ** 2 * r["n_spheres"]  # >= the union's area
        spacing = (1.4, 1.4, 4.0)  # an upper bound of this cohort's voxels
        assert abs(r["volume_mm3"] - r["volume_mm3_analytic"]) <= pv_tolerance(area, spacing), r.to_dict()


def _status(v0: float, v1: float, n0: int, n1: int) -> str:
    """An independent classifier with thresholds like surv-core's (+40 % and +200 mm³; -65 %)."""
    if n0 == 0 and n1 == 0:
        return "uninvolved"
    if n0 == 0:
        return "new"
    if n1 == 0:
        return "resolved"
    if v1 >= 1.4 * v0 and v1 - v0 >= 200:
        return "progressing"
    if v1 <= 0.35 * v0:
        return "regressing"
    return "stable"


def test_measured_volumes_match_the_analytic_truth_despite_repositioning(
    cohort: Path, measured: pd.DataFrame
) -> None:
    les = pd.read_csv(cohort / "truth_lesions.csv")
    truth = les.groupby(["patient_id", "timepoint", "planned_level"]).agg(
        volume=("volume_mm3_analytic", "sum"), count=("lesion_id", "size"), radius=("radius_mm", "max")
    )
    tv = pd.read_csv(cohort / "truth_vertebrae.csv").set_index(["patient_id", "timepoint", "level"])
    errors = []
    for _, m in measured.iterrows():
        key = (m["patient_id"], m["timepoint"], m["level"])
        t = truth.loc[key] if key in truth.index else None
        expected = 0.0 if t is None else float(t["volume"])
        assert m["lesion_count"] == (0 if t is None else int(t["count"])), key
        if t is None:
            continue
        area = 4 * math.pi * float(t["radius"]) ** 2 * 2
        tol = pv_tolerance(area, m["spacing"]) + 0.01 * float(tv.loc[key, "vertebra_volume_mm3"])
        assert abs(m["lesion_volume_mm3"] - expected) <= tol, (key, m["lesion_volume_mm3"], expected, tol)
        errors.append((m["lesion_volume_mm3"] - expected) / expected)
    assert len(errors) >= 12  # every involved vertebra of every scan was compared
    # statuses from the measured volumes equal the intended ones
    mv = measured.set_index(["patient_id", "timepoint", "level"])
    for _, r in pd.read_csv(cohort / "truth_changes.csv").iterrows():
        a = mv.loc[(r["patient_id"], r["timepoint_from"], r["level"])]
        b = mv.loc[(r["patient_id"], r["timepoint_to"], r["level"])]
        got = _status(a["lesion_volume_mm3"], b["lesion_volume_mm3"], a["lesion_count"], b["lesion_count"])
        assert got == r["status"], r.to_dict()


def test_dicom_and_nifti_time_points_give_identical_tables(tmp_path: Path) -> None:
    tables = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        for fmt in ("nifti", "dicom"):
            out = tmp_path / fmt
            write_followup_cohort(
                out, CohortSpec(n_patients=1, seed=9, format=fmt), 2, **{**SMALL_OPTS, "n_slices": 11}
            )
            meas = []
            for tp in sorted((out / "SMR-001").iterdir()):
                img, mask = _load(tp)
                meas.append(spinemri.measure(img, mask, scheme="verse", patient_id="SMR-001").vertebrae)
            tables[fmt] = (out, meas)
    (a, ma), (b, mb) = tables["nifti"], tables["dicom"]
    for x, y in zip(ma, mb, strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-6, atol=1e-4)
    for name in ("truth_vertebrae.csv", "truth_lesions.csv", "truth_changes.csv", "truth_lesion_changes.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ta, tb = pd.read_csv(a / "truth.csv"), pd.read_csv(b / "truth.csv")
    pd.testing.assert_frame_equal(ta.drop(columns="format"), tb.drop(columns="format"))


def test_a_seed_gives_byte_identical_followup_files(tmp_path: Path) -> None:
    trees = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        for name in ("a", "b"):
            spec = CohortSpec(n_patients=1, seed=5, format="mixed")
            write_followup_cohort(tmp_path / name, spec, 2, **{**SMALL_OPTS, "n_slices": 11})
            trees.append(_tree(tmp_path / name))
    assert trees[0] == trees[1]
    with pytest.raises(ConfigError, match="2-12"):
        write_followup_cohort(tmp_path / "c", CohortSpec(n_patients=1), 1)


# ----------------------------------------------------------------------------- guards and pain


def test_radiotherapy_and_vas_follow_the_documented_rules(cohort: Path) -> None:
    clinical = pd.read_csv(cohort / "clinical.csv", dtype={"radiotherapy_date": str}, keep_default_na=False)
    rt = clinical[clinical["radiotherapy_date"] != ""]
    assert rt["patient_id"].unique().tolist() == ["SMR-002"]
    level = rt["radiotherapy_levels"].iloc[0]
    ch = pd.read_csv(cohort / "truth_changes.csv")
    flagged = ch[ch["radiotherapy_before"]]
    assert flagged[["patient_id", "level"]].drop_duplicates().values.tolist() == [["SMR-002", level]]
    assert (flagged["status"] == "progressing").all()
    rt_date = dt.date.fromisoformat(rt["radiotherapy_date"].iloc[0])
    assert all(
        dt.date.fromisoformat(f) < rt_date <= dt.date.fromisoformat(t)
        for f, t in zip(flagged["scan_date_from"], flagged["scan_date_to"], strict=True)
    )
    truth = pd.read_csv(cohort / "truth.csv")
    m = FOLLOWUP_VAS_MODEL
    lin = (
        m["intercept"]
        + m["lumbar"] * truth["lumbar_involved"].astype(float)
        + m["per_vertebra"] * truth["n_involved"]
        + m["per_cm3"] * truth["total_lesion_volume_mm3_analytic"] / 1000
    )
    assert np.allclose(lin, truth["vas_expected"])
    assert clinical["vas"].tolist() == truth["vas_true"].tolist()
    pc = pd.read_csv(cohort / "truth_patient_changes.csv")
    assert (pc["delta_vas"] == pc["vas_to"] - pc["vas_from"]).all()


def test_short_interval_case_and_refused_options() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        fu = make_followup(3, 3, scenarios=["stable"], short_interval=True, snr=None, **SMALL_OPTS)
    days = [
        (dt.date.fromisoformat(b.scan_date) - dt.date.fromisoformat(a.scan_date)).days
        for a, b in zip(fu.scans, fu.scans[1:], strict=False)
    ]
    assert days[0] >= MIN_INTERVAL_DAYS and days[-1] == SHORT_INTERVAL_DAYS
    assert fu.patient_changes["short_interval"].tolist() == [False, True]
    with pytest.raises(ConfigError, match="lesions"):
        make_followup(0, 2, lesions=())
    with pytest.raises(ConfigError, match="timepoints"):
        make_followup(0, 0)
    with pytest.raises(ConfigError, match="scenario"):
        make_followup(0, 2, scenarios=["explode"])
    assert main(["phantom", "/nonexistent/x", "--timepoints", "0"]) == 2


def test_too_short_a_spine_is_refused_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x"
    assert main(["phantom", str(out), "--timepoints", "3", "--levels", "L3-S1"]) == 2
    assert "--levels" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_default_three_timepoint_cohort_has_every_status_and_class(tmp_path: Path) -> None:
    """``spinemri phantom OUT --timepoints 3`` with every default (10 patients, C3-S1, 512 x 256)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        assert main(["phantom", str(tmp_path / "c"), "--timepoints", "3"]) == 0
    ch = pd.read_csv(tmp_path / "c" / "truth_changes.csv")
    lc = pd.read_csv(tmp_path / "c" / "truth_lesion_changes.csv")
    assert set(ch["status"]) == set(VERTEBRA_STATUSES)
    assert set(lc["class"]) == set(LESION_CLASSES)
    pc = pd.read_csv(tmp_path / "c" / "truth_patient_changes.csv")
    assert pc["short_interval"].sum() == 1 and pc["radiotherapy_before"].sum() == 1
