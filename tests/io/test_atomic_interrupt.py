"""A Ctrl-C at the worst moment of an atomic write leaves no temporary file (spinemri.io.atomic).

The race seen in tests/test_clean_exits.py under load: the signal landed after ``mkstemp`` had
created the temporary file but before the writer knew its name, so nothing removed it. Here the
signal is sent from inside ``mkstemp``, right after the file exists.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from spinemri.io.atomic import write_bytes_atomic

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals to oneself are POSIX")


def test_ctrl_c_while_the_temporary_file_is_created_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkstemp = tempfile.mkstemp
    created: list[str] = []

    def mkstemp_then_ctrl_c(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)
        created.append(name)
        os.kill(os.getpid(), signal.SIGINT)  # delivered now, unless the writer holds it back
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(tmp_path / "viewer" / "P00.html", b"<html></html>")
    assert created and not Path(created[0]).exists()
    assert list((tmp_path / "viewer").iterdir()) == []  # neither a temporary file nor a partial output


def test_an_interrupt_held_back_is_not_lost_and_the_mask_is_restored(tmp_path: Path) -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    write_bytes_atomic(tmp_path / "a.csv", b"x\n")
    assert (tmp_path / "a.csv").read_bytes() == b"x\n"
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
