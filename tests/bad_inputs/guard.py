"""Run a call with a wall-clock limit (and optionally measure its peak allocation): no test may hang."""

from __future__ import annotations

import os
import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Every corpus case and fuzz example must answer within this many seconds.
TIMEOUT_S = 5.0


@dataclass
class Outcome:
    """What a guarded call did: its result or exception, and the peak traced allocation (bytes)."""

    result: Any = None
    error: BaseException | None = None
    hung: bool = False
    peak_bytes: int | None = None


def run_guarded(
    call: Callable[[], Any], timeout_s: float = TIMEOUT_S, *, trace_alloc: bool = False
) -> Outcome:
    """Run ``call()`` in a daemon thread; give up after ``timeout_s`` seconds (``hung=True``).

    A thread, not ``signal.alarm``: it also catches a call blocked inside C code
    (e.g. ``open()`` on a FIFO), and works off the main thread. With
    ``trace_alloc``, :mod:`tracemalloc` records the peak of Python and numpy
    allocations made meanwhile (numpy reports its data buffers to tracemalloc).
    """
    out = Outcome()

    def target() -> None:
        try:
            out.result = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out.error = exc

    if trace_alloc:
        tracemalloc.start()
        tracemalloc.reset_peak()
    try:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(timeout_s)
        out.hung = thread.is_alive()
    finally:
        if trace_alloc:
            out.peak_bytes = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    return out


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """(mode, size, mtime_ns) of every entry under ``folder`` (symlinks not followed)."""
    state: dict[str, tuple[int, int, int]] = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            state[os.path.relpath(p, folder)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return state
