"""The bad-input corpus: each kind is refused with the exact SpinemriError subclass naming the file
(or read correctly, for inputs that are odd but valid), within 5 s, leaving the folder untouched.

The kinds and their expected messages are listed in docs/robustness.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spinemri.errors import SpinemriError

from .guard import TIMEOUT_S, run_guarded, snapshot
from .make_corpus import KINDS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", list(KINDS))
def test_corpus_kind(tmp_path: Path, kind: str) -> None:
    entry = KINDS[kind](tmp_path)
    if entry.precheck is not None:
        entry.precheck()  # the input really is what the kind says (e.g. really unreadable)
    before = snapshot(tmp_path)
    out = run_guarded(entry.call, TIMEOUT_S, trace_alloc=entry.max_alloc_mb is not None)
    assert not out.hung, f"{kind}: no answer within {TIMEOUT_S} s"
    assert snapshot(tmp_path) == before, f"{kind}: the call created, changed or left files behind"
    if entry.max_alloc_mb is not None:
        assert out.peak_bytes is not None
        assert out.peak_bytes < entry.max_alloc_mb * 2**20, f"{kind}: peak allocation {out.peak_bytes} bytes"
    if entry.error is None:
        assert out.error is None, f"{kind}: must be read correctly, raised {out.error!r}"
        assert entry.check is not None
        entry.check(out.result)
        return
    assert out.error is not None, f"{kind}: accepted, returned {out.result!r}"
    assert type(out.error) is entry.error, f"{kind}: {type(out.error).__name__}: {out.error}"
    assert isinstance(out.error, SpinemriError)
    msg = str(out.error)
    assert str(entry.named) in msg, msg
    assert entry.excerpt in msg, msg


def test_corpus_covers_every_group_of_issue_7() -> None:
    groups = {k.split("_", 1)[0] for k in KINDS}
    assert {"dicom", "nifti", "mask", "table", "path", "cohort"} <= groups
    assert len(KINDS) >= 30


def test_robustness_doc_lists_every_kind() -> None:
    doc = (REPO / "docs" / "robustness.md").read_text(encoding="utf-8")
    missing = [k for k in KINDS if f"`{k}`" not in doc]
    assert not missing, f"docs/robustness.md does not list: {missing}"
