"""spinemri.link: id matching, VAS validation, duplicates, row-order independence; io.clinical readers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemri.errors import InputError, LinkError
from spinemri.io.clinical import read_table, sniff_separator
from spinemri.linking import REPORT_COLUMNS, link, normalise_id


def patients_table(ids, **extra):
    n = len(ids)
    df = pd.DataFrame(
        {
            "patient_id": list(ids),
            "n_vertebrae": [17] * n,
            "n_involved": list(range(1, n + 1)),
            "lumbar_involved": [i % 2 == 0 for i in range(n)],
            "dominant_region": ["lumbar" if i % 2 == 0 else "thoracic" for i in range(n)],
            "hi_area_ratio": [0.01 * (i + 1) for i in range(n)],
        }
    )
    for k, v in extra.items():
        df[k] = v
    return df


def kinds(report, kind):
    return report.issues[report.issues["kind"] == kind]


# --- id normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("smr_001", "SMR-1"),
        (" SMR-001 ", "smr001"),
        ("smr 001", "SMR_0001"),
        ("Smr-1", "sMr1"),
        ("007", "7"),
        ("P-01-002", "p_1_2"),
        ("ａｂ-1", "AB1"),
    ],  # the last: full-width letters (NFKC)
)
def test_normalise_id_equal(a, b):
    assert normalise_id(a) == normalise_id(b)


@pytest.mark.parametrize("a, b", [("P1-2", "P12"), ("SMR-10", "SMR-1"), ("A1", "B1"), ("SMR-100", "SMR-1")])
def test_normalise_id_distinct(a, b):
    assert normalise_id(a) != normalise_id(b)


def test_normalise_id_zero_kept():
    assert normalise_id("P-000") == normalise_id("p0")
    assert normalise_id("P-000") != normalise_id("p")


# --- matching ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("clinical_id", ["smr_001", "SMR-1", " SMR-001", "smr-001 ", "SMR 001", "SMR001"])
def test_normalised_match_is_made_and_listed(clinical_id):
    p = patients_table(["SMR-001", "SMR-002"])
    c = pd.DataFrame({"patient_id": [clinical_id, "SMR-002"], "vas": [6, 3]})
    linked, rep = link(p, c)
    assert linked["vas"].tolist() == [6.0, 3.0]
    assert linked["link_match"].tolist() == ["normalised", "exact"]
    assert linked["clinical_id"].tolist() == [clinical_id, "SMR-002"]
    norm = kinds(rep, "normalised")
    assert norm[["imaging_id", "clinical_id"]].values.tolist() == [["SMR-001", clinical_id]]
    assert kinds(rep, "exact")["imaging_id"].tolist() == ["SMR-002"]
    assert rep.n_linked == 2
    assert "normalised match: imaging SMR-001 <- clinical" in rep.summary()


def test_numeric_ids_match_text_ids():
    p = patients_table([7, 12])
    c = pd.DataFrame({"patient_id": ["007", "12"], "vas": [4, 5]})
    linked, rep = link(p, c)
    assert linked["vas"].tolist() == [4.0, 5.0]
    assert linked["link_match"].tolist() == ["normalised", "exact"]


def test_exact_match_preferred_over_normalised():
    p = patients_table(["SMR-1", "smr_1"])  # two different patients whose ids normalise alike
    c = pd.DataFrame({"patient_id": ["SMR-1", "smr_1"], "vas": [2, 8]})
    linked, rep = link(p, c)
    assert linked["vas"].tolist() == [2.0, 8.0]
    assert rep.count("exact") == 2 and rep.count("ambiguous") == 0


def test_ambiguous_clinical_side_is_reported_not_guessed():
    p = patients_table(["SMR-01", "SMR-002"])
    c = pd.DataFrame({"patient_id": ["SMR-1", "smr_001", "SMR-002"], "vas": [2, 9, 5]})
    linked, rep = link(p, c)
    assert math.isnan(linked.loc[0, "vas"])
    assert linked.loc[0, "link_match"] == "ambiguous"
    amb = kinds(rep, "ambiguous")
    assert amb["imaging_id"].tolist() == ["SMR-01"]
    assert set(amb["clinical_id"].iloc[0].split(";")) == {"SMR-1", "smr_001"}
    assert linked.loc[1, "vas"] == 5.0


def test_ambiguous_imaging_side_is_reported_not_guessed():
    p = patients_table(["A-1", "a_01", "B-2"])
    c = pd.DataFrame({"patient_id": ["A1", "B-2"], "vas": [4, 6]})
    linked, rep = link(p, c)
    assert linked["link_match"].tolist() == ["ambiguous", "ambiguous", "exact"]
    assert linked["vas"].isna().tolist() == [True, True, False]
    assert sorted(kinds(rep, "ambiguous")["imaging_id"]) == ["A-1", "a_01"]


def test_leftover_clinical_variant_of_exactly_matched_id_is_ambiguous():
    p = patients_table(["SMR-1"])
    c = pd.DataFrame({"patient_id": ["SMR-1", "smr_001"], "vas": [3, 9]})
    linked, rep = link(p, c)
    assert linked["vas"].tolist() == [3.0]
    amb = kinds(rep, "ambiguous")
    assert amb["clinical_id"].tolist() == ["smr_001"] and amb["clinical_row"].tolist() == [2]


def test_unmatched_on_both_sides():
    p = patients_table(["P1", "P2", "P3"])
    c = pd.DataFrame({"patient_id": ["P1", "Q7", "Q8"], "vas": [1, 2, 3]})
    linked, rep = link(p, c)
    assert sorted(rep.ids("unmatched_imaging")) == ["P2", "P3"]
    assert sorted(rep.ids("unmatched_clinical", side="clinical")) == ["Q7", "Q8"]
    assert kinds(rep, "unmatched_clinical")["clinical_row"].tolist() == [2, 3]
    assert linked["link_match"].tolist() == ["exact", "unmatched", "unmatched"]
    assert rep.n_linked == 1 and rep.n_imaging == 3 and rep.n_clinical_rows == 3
    assert list(rep.issues.columns) == list(REPORT_COLUMNS)


def test_missing_clinical_id_is_reported():
    p = patients_table(["P1"])
    c = pd.DataFrame({"patient_id": ["P1", None, "  "], "vas": [1, 2, 3]})
    _, rep = link(p, c)
    assert kinds(rep, "missing_id")["clinical_row"].tolist() == [2, 3]


# --- VAS validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, kind",
    [
        (11, "invalid_vas"),
        (-1, "invalid_vas"),
        (10.5, "invalid_vas"),
        ("abc", "invalid_vas"),
        ("7,5,0", "invalid_vas"),  # a lone "7,5" is a decimal comma now: tests/test_cli_vocabulary.py
        (True, "invalid_vas"),
        (float("inf"), "invalid_vas"),
        (None, "missing_vas"),
        (float("nan"), "missing_vas"),
        ("", "missing_vas"),
    ],
)
def test_bad_vas_is_excluded_and_reported_never_coerced(value, kind):
    p = patients_table(["P1", "P2"])
    c = pd.DataFrame({"patient_id": ["P1", "P2"], "vas": pd.Series([value, 5], dtype=object)})
    linked, rep = link(p, c)
    assert math.isnan(linked.loc[0, "vas"])  # not clipped to 10 / 0, not parsed
    assert linked.loc[1, "vas"] == 5.0
    bad = kinds(rep, kind)
    assert bad["imaging_id"].tolist() == ["P1"] and bad["clinical_row"].tolist() == [1]
    assert rep.n_linked == 1


@pytest.mark.parametrize("value, expected", [(0, 0.0), (10, 10.0), ("7", 7.0), (" 3.5 ", 3.5), (7.25, 7.25)])
def test_valid_vas_values(value, expected):
    p = patients_table(["P1"])
    c = pd.DataFrame({"patient_id": ["P1"], "vas": pd.Series([value], dtype=object)})
    linked, rep = link(p, c)
    assert linked.loc[0, "vas"] == expected
    assert rep.count("invalid_vas") == 0


def test_custom_vas_column_and_collisions():
    p = patients_table(["P1", "P2"])
    c = pd.DataFrame({"ID": ["P1", "P2"], "VAS_score": [4, 8], "n_involved": [99, 98], "age": [61, 70]})
    linked, _ = link(p, c, id_column="ID", vas_column="VAS_score")
    assert linked["vas"].tolist() == [4.0, 8.0]
    assert linked["n_involved"].tolist() == [1, 2]  # imaging column untouched
    assert linked["clinical_n_involved"].tolist() == [99, 98]
    assert linked["age"].tolist() == [61, 70]
    assert "VAS_score" not in linked.columns and "ID" not in linked.columns


# --- duplicates and dates ------------------------------------------------------------------------------


def test_duplicates_without_date_raise_listing_them():
    p = patients_table(["P1", "P2", "P3"])
    c = pd.DataFrame({"patient_id": ["P1", "P1", "P2", "p_3", "P3"], "vas": [3, 7, 5, 2, 4]})
    with pytest.raises(LinkError) as exc:
        link(p, c)
    msg = str(exc.value)
    assert "'P1'" in msg and "[1, 2]" in msg and "date" in msg
    assert "'P2'" not in msg


def test_identical_duplicate_rows_are_collapsed_and_reported():
    p = patients_table(["P1"])
    c = pd.DataFrame({"patient_id": ["P1", "P1"], "vas": [6, 6], "age": [50, 50]})
    linked, rep = link(p, c)
    assert linked["vas"].tolist() == [6.0]
    assert rep.count("duplicate") == 1


def test_duplicate_with_one_invalid_row_uses_the_valid_one():
    p = patients_table(["P1"])
    c = pd.DataFrame({"patient_id": ["P1", "P1"], "vas": pd.Series(["n/a", 4], dtype=object)})
    linked, rep = link(p, c)
    assert linked["vas"].tolist() == [4.0]
    assert rep.count("invalid_vas") == 1 and rep.count("duplicate") == 0


def test_duplicates_with_date_take_nearest_within_window():
    p = patients_table(
        ["P1", "P2", "P3", "P4"], scan_date=["2024-03-01", "2024-03-01", "2024-03-01", "2024-03-01"]
    )
    c = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1", "P2", "P2", "P3", "P3", "P4"],
            "vas": [2, 8, 5, 3, 6, 4, 9, 7],
            "visit": [
                "2024-01-01",
                "2024-03-05",
                "2024-02-20",
                "2024-02-25",
                "2024-03-06",
                "2023-01-01",
                "2024-07-01",
                "not a date",
            ],
        }
    )
    linked, rep = link(p, c, date_column="visit")
    # P1: 2024-03-05 is 4 days away, 2024-02-20 is 10 days, 2024-01-01 is outside 30 days
    assert linked.loc[0, "vas"] == 8.0 and linked.loc[0, "vas_days_from_scan"] == pytest.approx(4.0)
    assert linked.loc[0, "visit"] == "2024-03-05"
    # P2: equally near (5 days either side) with different VAS -> no VAS, reported
    assert math.isnan(linked.loc[1, "vas"])
    # P3: both outside the window
    assert math.isnan(linked.loc[2, "vas"])
    # P4: the only row has no usable date
    assert math.isnan(linked.loc[3, "vas"])
    assert sorted(kinds(rep, "outside_window")["clinical_row"].tolist()) == [1, 6, 7]
    assert kinds(rep, "invalid_date")["imaging_id"].tolist() == ["P4"]
    dup = kinds(rep, "duplicate")
    assert sorted(dup["imaging_id"]) == ["P1", "P2"]
    assert "equally near" in dup.loc[dup["imaging_id"] == "P2", "detail"].iloc[0]


def test_window_is_a_parameter_and_scan_dates_can_be_passed():
    p = patients_table(["P1"])
    c = pd.DataFrame({"patient_id": ["P1", "P1"], "vas": [2, 8], "d": ["2024-01-01", "2024-06-01"]})
    linked, _ = link(p, c, date_column="d", scan_dates={"P1": "2024-03-01"}, window_days=120)
    assert linked["vas"].tolist() == [2.0]  # 60 days before beats 92 days after
    linked2, _ = link(p, c, date_column="d", scan_dates={"P1": "2024-03-01"}, window_days=30)
    assert math.isnan(linked2.loc[0, "vas"])


def test_duplicate_with_date_column_but_no_scan_date_is_reported():
    p = patients_table(["P1"])
    c = pd.DataFrame({"patient_id": ["P1", "P1"], "vas": [2, 8], "d": ["2024-01-01", "2024-06-01"]})
    linked, rep = link(p, c, date_column="d")
    assert math.isnan(linked.loc[0, "vas"])
    assert "scan date" in kinds(rep, "duplicate")["detail"].iloc[0]


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "patients, clinical, options, needle",
    [
        (pd.DataFrame({"id": ["P1"]}), pd.DataFrame({"patient_id": ["P1"], "vas": [1]}), {}, "'patient_id'"),
        (patients_table(["P1"]), pd.DataFrame({"pid": ["P1"], "vas": [1]}), {}, "--id-column"),
        (patients_table(["P1"]), pd.DataFrame({"patient_id": ["P1"], "pain": [1]}), {}, "--vas-column"),
        (
            patients_table(["P1"]),
            pd.DataFrame({"patient_id": ["P1"], "vas": [1]}),
            {"date_column": "d"},
            "--date-column",
        ),
        (patients_table(["P1", "P1"]), pd.DataFrame({"patient_id": ["P1"], "vas": [1]}), {}, "duplicated"),
    ],
)
def test_unusable_tables_raise_link_error(patients, clinical, options, needle):
    with pytest.raises(LinkError, match=needle.replace("-", r"\-")):
        link(patients, clinical, **options)


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match="window"):
        link(patients_table(["P1"]), pd.DataFrame({"patient_id": ["P1"], "vas": [1]}), windw_days=3)


# --- row-order independence (property) ------------------------------------------------------------------

_IDS = ["SMR-001", "SMR-002", "SMR-003", "SMR-004", "SMR-005", "SMR-006"]
_VARIANTS = {
    "SMR-001": ["SMR-001"],
    "SMR-002": ["smr_002"],
    "SMR-003": ["SMR-3", "SMR-3"],
    "SMR-004": ["X-9"],
    "SMR-005": ["SMR-005", "smr-05"],
    "SMR-006": ["SMR-006"],
}


def _clinical_rows():
    rows = []
    vas = [5, 7, 3, 3, 9, 11, 2]
    k = 0
    for pid in _IDS:
        for cid in _VARIANTS[pid]:
            rows.append({"patient_id": cid, "vas": vas[k % len(vas)], "age": 40 + k})
            k += 1
    rows[3]["vas"] = rows[2]["vas"]  # the two SMR-3 rows are identical apart from age
    rows[3]["age"] = rows[2]["age"]
    return pd.DataFrame(rows)


@settings(max_examples=15, deadline=None)
@given(st.permutations(range(len(_IDS))), st.permutations(range(8)))
def test_link_does_not_depend_on_row_order(p_order, c_order):
    patients = patients_table(_IDS)
    clinical = _clinical_rows()
    ref_linked, ref_rep = link(patients, clinical)
    linked, rep = link(patients.iloc[list(p_order)], clinical.iloc[list(c_order)].reset_index(drop=True))
    a = ref_linked.sort_values("patient_id").reset_index(drop=True)
    b = linked.sort_values("patient_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)

    def issue_set(r):
        return sorted(
            map(tuple, r.issues.drop(columns=["clinical_row", "detail"]).astype(str).values.tolist())
        )

    assert issue_set(rep) == issue_set(ref_rep)
    assert (
        ref_rep.n_linked == rep.n_linked == 4
    )  # 001, 002 (normalised), 003 (collapsed), 006; 005 has VAS 11


# --- io.clinical ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, sep",
    [
        ("patient_id,vas,name\nP1,3,Zoë\nP2,7,Ana\n".encode(), ","),
        ("\ufeffpatient_id;vas;name\nP1;3;Zoë\nP2;7;Ana\n".encode("utf-8"), ";"),
        ("patient_id\tvas\tname\nP1\t3\tZoë\nP2\t7\tAna\n".encode("latin-1"), "\t"),
        ("patient_id;vas;name\r\nP1;3;Zoë\r\nP2;7;Ana\r\n".encode("latin-1"), ";"),
    ],
)
def test_read_table_encodings_and_separators(tmp_path, payload, sep):
    f = tmp_path / "clinical.csv"
    f.write_bytes(payload)
    assert sniff_separator(payload.decode("latin-1")) == sep
    df = read_table(f, dtype_str_columns=("patient_id",))
    assert list(df.columns) == ["patient_id", "vas", "name"]
    assert df["patient_id"].tolist() == ["P1", "P2"]
    assert df["vas"].tolist() == [3, 7]
    assert df["name"].tolist() == ["Zoë", "Ana"]


def test_read_table_keeps_leading_zeros_of_ids(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("patient_id,vas\n007,3\n012,4\n")
    assert read_table(f, dtype_str_columns=("patient_id",))["patient_id"].tolist() == ["007", "012"]


def test_read_table_xlsx(tmp_path):
    pytest.importorskip("openpyxl", reason="Excel tables need openpyxl (the xlsx extra; part of test)")
    f = tmp_path / "c.xlsx"
    pd.DataFrame({"patient_id": ["P1", "P2"], "vas": [3, 9]}).to_excel(f, index=False)
    df = read_table(f)
    assert df["vas"].tolist() == [3, 9]


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "does not exist"),
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"PK\x03\x04rest", "Excel"),
        (b'a,b\n"unterminated,1\n', "could not be parsed"),
    ],
)
def test_read_table_bad_files_name_the_file(tmp_path, content, needle):
    f = tmp_path / "bad.csv"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(InputError, match=needle) as exc:
        read_table(f)
    assert str(f) in str(exc.value)


def test_link_report_summary_lists_every_problem_kind():
    p = patients_table(["P1", "P2", "P3"])
    c = pd.DataFrame({"patient_id": ["p-1", "P2", "Z"], "vas": pd.Series([5, "high", 4], dtype=object)})
    _, rep = link(p, c)
    s = rep.summary()
    assert s.splitlines()[0].startswith("linked 1 of 3 imaging patients")
    for kind in ("unmatched_imaging", "unmatched_clinical", "invalid_vas"):
        assert kind in s
    assert np.array_equal(rep.issues["kind"].isin(["normalised", "exact"]).to_numpy().nonzero()[0], [0, 1])


def test_package_level_link_is_callable_after_submodule_import():
    import subprocess
    import sys

    code = (
        "from spinemri.linking import normalise_id\n"
        "import pandas as pd, spinemri\n"
        "linked, rep = spinemri.link(pd.DataFrame({'patient_id': ['A-1']}),"
        " pd.DataFrame({'patient_id': ['a_1'], 'vas': [4]}))\n"
        "print(linked['vas'].tolist(), rep.n_linked)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[4.0] 1"


@settings(max_examples=40, deadline=None)
@given(
    prefix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=4),
    number=st.integers(min_value=0, max_value=9999),
    zeros=st.integers(min_value=0, max_value=3),
    sep=st.sampled_from(["", "-", "_", " ", "--", " _ "]),
    upper=st.booleans(),
    pad=st.sampled_from(["", " ", "  ", "\t"]),
)
def test_id_spellings_normalise_alike(prefix, number, zeros, sep, upper, pad):
    canonical = f"{prefix.upper()}-{number}"
    spelled = f"{pad}{prefix.upper() if upper else prefix}{sep}{'0' * zeros}{number}{pad}"
    assert normalise_id(spelled) == normalise_id(canonical)
    p = patients_table([canonical])
    linked, rep = link(p, pd.DataFrame({"patient_id": [spelled], "vas": [3]}))
    assert linked["vas"].tolist() == [3.0]
    assert rep.count("exact") + rep.count("normalised") == 1
