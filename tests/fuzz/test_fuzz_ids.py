"""Fuzzing of ids through the tables (issue 16): any id text survives a table round trip.

Patient ids come from folder names and manifest cells. Written by the one CSV writer and read
back by the readers spinemri uses for ids, every non-empty id must come back as the same text
(``NA``, ``null``, ``None``, ``nan``, ``TRUE``, ``007``, unicode, quotes, separators), and its
file-safe form must stay a single path component.
"""

from __future__ import annotations

import io

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemri.io.ids import safe_id, text_id
from spinemri.io.tables import read_csv_text_columns, table_to_csv_bytes

SPECIAL = st.sampled_from(["NA", "null", "None", "nan", "N/A", "NULL", "TRUE", "False", "007", "1e3", "-"])
IDS = st.one_of(
    SPECIAL,
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
        lambda s: s.strip() != ""
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(IDS, min_size=1, max_size=8))
def test_any_id_survives_the_table_round_trip(ids: list[str]) -> None:
    df = pd.DataFrame({"patient_id": ids, "vas": range(len(ids))})
    back = read_csv_text_columns(io.StringIO(table_to_csv_bytes(df).decode("utf-8")), ("patient_id",))
    assert back["patient_id"].tolist() == ids


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=60))
def test_folder_names_of_any_bytes_give_text_ids_and_safe_file_names(raw: bytes) -> None:
    import os

    name = os.fsdecode(raw.replace(b"/", b"_").replace(b"\x00", b"_"))
    pid = text_id(name)
    pid.encode("utf-8")  # always writable as UTF-8
    sid = safe_id(pid)
    assert "/" not in sid and sid not in (".", "..") and sid.isascii()
