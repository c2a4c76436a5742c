"""Issue 16: ids and cells read as written.

* patient folders named ``NA`` or ``null`` became NULL ids (pandas reads those words as missing even
  in a ``dtype=str`` column) in the combined tables and Parquet, and the link step refused the run;
* an Excel VAS cell holding TRUE linked as VAS 1 (``pandas.read_excel`` infers a float column).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import spinemri
from spinemri.io.clinical import read_clinical
from spinemri.io.tables import has_parquet, read_csv_text_columns

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
NAMES = ("NA", "null", "None", "nan")


def test_text_columns_keep_na_words_only_empty_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("patient_id,vas,note\nNA,3,NA\nnull,NA,x\n,4,\nP4,5,null\n", encoding="utf-8")
    df = read_csv_text_columns(path, ("patient_id",))
    assert df["patient_id"].tolist()[:2] == ["NA", "null"] and pd.isna(df["patient_id"][2])
    assert df["patient_id"][3] == "P4"
    # other columns keep pandas' missing values
    assert pd.isna(df["vas"][1]) and pd.isna(df["note"][0])


def test_clinical_csv_ids_named_na_and_null(tmp_path: Path) -> None:
    path = tmp_path / "clinical.csv"
    path.write_text(
        "patient_id,vas\n" + "".join(f"{n},{i + 2}\n" for i, n in enumerate(NAMES)), encoding="utf-8"
    )
    df = read_clinical(path)
    assert df["patient_id"].tolist() == list(NAMES)


def test_cohort_with_patient_folders_named_na_and_null(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    for name in NAMES:
        shutil.copytree(SAMPLE / "SMR-002", cohort / name)
    shutil.copytree(SAMPLE / "SMR-004", cohort / "P5")
    (cohort / "clinical.csv").write_text(
        "patient_id,vas\n" + "".join(f"{n},{i + 2}\n" for i, n in enumerate((*NAMES, "P5"))), encoding="utf-8"
    )
    out = tmp_path / "out"
    summary = spinemri.run_cohort(cohort, out, clinical=cohort / "clinical.csv")
    assert summary.failed == 0 and summary.done == 5
    linked = read_csv_text_columns(out / "linked.csv", ("patient_id",))
    assert sorted(linked["patient_id"]) == sorted((*NAMES, "P5"))
    assert dict(zip(linked["patient_id"], linked["vas"], strict=True)) == {
        **{n: float(i + 2) for i, n in enumerate(NAMES)},
        "P5": 6.0,
    }
    if has_parquet():
        parquet = pd.read_parquet(out / "patients.parquet")
        assert parquet["patient_id"].notna().all()
        assert sorted(parquet["patient_id"]) == sorted((*NAMES, "P5"))


def test_excel_true_is_not_a_vas_of_one(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip(
        "openpyxl", reason="xlsx support is the 'xlsx' extra: pip install openpyxl"
    )
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["patient_id", "vas"])
    for row in (["P1", True], ["P2", 5], ["NA", 7], ["P4", "6"]):
        ws.append(row)
    path = tmp_path / "clinical.xlsx"
    wb.save(path)
    clinical = read_clinical(path)
    assert clinical["patient_id"].tolist() == ["P1", "P2", "NA", "P4"]
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "NA", "P4"], "n_involved": [1, 2, 0, 1]})
    linked, report = spinemri.link(patients, clinical)
    vas = dict(zip(linked["patient_id"], linked["vas"], strict=True))
    assert pd.isna(vas["P1"]), "an Excel TRUE must not become VAS 1"
    assert vas["P2"] == 5.0 and vas["NA"] == 7.0 and vas["P4"] == 6.0
    assert report.count("invalid_vas") == 1


def test_image_and_mask_without_orientation(tmp_path: Path) -> None:
    """Issue 16: qform and sform codes 0 (Analyze-converted files): no silently wrong result.

    Without an orientation the array axes are not patient directions: the level order must not be
    judged by world z, the label-shape plausibility (cranio-caudal height) must not flag healthy
    vertebrae, and the user is told once, naming the file.
    """
    import warnings

    import nibabel as nib
    import numpy as np

    vol, mask, _ = spinemri.make_phantom(seed=3, first_level="C3", last_level="S1")
    paths = {}
    for v, name in ((vol, "img"), (mask, "msk")):
        img = spinemri.to_nibabel(v)
        bare = nib.Nifti1Image(np.asanyarray(img.dataobj), None, img.header.copy())
        bare.set_qform(None, code=0)
        bare.set_sform(None, code=0)
        paths[name] = tmp_path / f"{name}.nii.gz"
        nib.save(bare, paths[name])
    image = spinemri.load_volume(paths["img"])
    labels = spinemri.load_mask(paths["msk"], like=image)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = spinemri.measure(image, labels)
    texts = [str(w.message) for w in caught]
    assert m.scheme.name == "verse" and m.vertebrae["level"].tolist()[0] == "C3" and len(m.vertebrae) == 23
    assert len([t for t in texts if "no orientation" in t and str(paths["img"]) in t]) == 1
    assert not [t for t in texts if "too small or thin" in t], texts
    assert set(m.vertebrae["plausibility"]) == {"not checked: no orientation"}
    # the same data with its orientation: plausible, no orientation warning
    oriented = spinemri.measure(vol, mask)
    assert set(oriented.vertebrae["plausibility"]) == {"ok"}
