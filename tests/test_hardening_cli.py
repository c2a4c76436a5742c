"""Issue 16, command line and executors: bad options exit 2 with one line, Dask failures are one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spinemri.cli import main
from spinemri.errors import ConfigError, SchedulerError
from spinemri.pipeline import executors
from spinemri.pipeline.executors import run_map


def _one_line_error(capsys: pytest.CaptureFixture[str], command: str, *parts: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"spinemri {command}: error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, err
    return err


@pytest.mark.parametrize(
    ("option", "parts"),
    [
        (["--workers", "0"], ["--workers", "got 0"]),
        (["--series", "a{99999999999}"], ["--series", "a{99999999999}", "regular expression"]),
        (["--series", "[unclosed"], ["--series", "[unclosed"]),
        (["--scheduler", "bogus://x"], ["--scheduler", "bogus://x", "unknown scheme"]),
    ],
)
def test_run_bad_option_exits_2_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], parts: list[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", str(tmp_path), "--out", str(out), "--quiet", *option]) == 2
    _one_line_error(capsys, "run", *parts)
    assert not out.exists()  # refused before the output folder was made


def test_analyze_cv_folds_1_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    linked = tmp_path / "linked.csv"
    linked.write_text("patient_id,vas\nP1,3\n", encoding="utf-8")
    assert main(["analyze", str(linked), "--out", str(tmp_path / "a"), "--cv-folds", "1"]) == 2
    _one_line_error(capsys, "analyze", "--cv-folds")


@pytest.mark.parametrize(
    ("option", "part"),
    [
        (["--levels", "X"], "--levels"),
        (["--patients", "0"], "--patients"),
        (["--seed", "-1"], "--seed"),
        (["--second-series", "-1"], "--second-series"),
        (["--rows", "5"], "--rows"),
    ],
)
def test_phantom_bad_option_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], part: str
) -> None:
    out = tmp_path / "ph"
    assert main(["phantom", str(out), *option]) == 2
    _one_line_error(capsys, "phantom", part)
    assert not out.exists()


def test_python_m_spinemri_cli_maps_usage_errors_to_2(tmp_path: Path) -> None:
    """``python -m spinemri.cli`` ran a second copy of the module whose UsageError was another class."""
    proc = subprocess.run(
        [sys.executable, "-m", "spinemri.cli", "phantom", str(tmp_path / "ph"), "--rows", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "--rows" in proc.stderr


# --- Dask: an address that is no Dask scheduler ----------------------------------------------


@pytest.fixture(params=["close", "garbage", "silent"])
def fake_service(request: pytest.FixtureRequest) -> Iterator[str]:
    """A plain TCP server on 127.0.0.1 that closes, sends garbage or says nothing; yields its address."""
    mode = request.param
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            if mode == "garbage":  # a huge frame count, then HTTP
                try:
                    conn.sendall(b"\xff" * 64 + b"HTTP/1.0 200 OK\r\n\r\n" * 4)
                except OSError:
                    pass
                held.append(conn)
            elif mode == "silent":
                held.append(conn)
            else:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def test_non_dask_service_is_one_config_error_naming_the_address(
    fake_service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(
        "distributed", reason="dask.distributed is an optional extra (spinemri[dask]; part of test)"
    )
    monkeypatch.setattr(executors, "DASK_CONNECT_TIMEOUT_S", 2)
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as info:
        list(run_map(abs, [1, 2], workers=1, scheduler=fake_service))
    assert time.monotonic() - t0 < 20
    assert fake_service in str(info.value)
    assert type(info.value) is SchedulerError and "\n" not in str(info.value)


def test_cli_run_non_dask_service_is_one_line(
    fake_service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip(
        "distributed", reason="dask.distributed is an optional extra (spinemri[dask]; part of test)"
    )
    if not fake_service:  # pragma: no cover
        return
    from spinemri.io.cohort_write import CohortSpec, write_cohort

    monkeypatch.setattr(executors, "DASK_CONNECT_TIMEOUT_S", 2)
    cohort = tmp_path / "cohort"
    small = {"first_level": "L3", "last_level": "L5", "rows": 64, "cols": 48, "n_slices": 5, "supersample": 1}
    write_cohort(cohort, CohortSpec(n_patients=1, seed=1), **small)
    code = main(["run", str(cohort), "--out", str(tmp_path / "out"), "--quiet", "--scheduler", fake_service])
    assert code == 2  # issue 18: no usable scheduler is a usage error, found before anything is written
    _one_line_error(capsys, "run", fake_service)
    assert not (tmp_path / "out").exists()


def test_local_cluster_never_starts_more_workers_than_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is an optional extra (spinemri[dask]; part of test)"
    )
    started: list[int] = []

    class Refused(Exception):
        pass

    def fake_cluster(*, n_workers: int, **kwargs: object) -> None:
        started.append(n_workers)
        raise Refused

    monkeypatch.setattr(distributed, "LocalCluster", fake_cluster)
    with pytest.raises(Refused):
        list(run_map(abs, [1, 2, 3], workers=40, scheduler="local"))
    assert started == [3]


def test_a_real_scheduler_address_still_works() -> None:
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is an optional extra (spinemri[dask]; part of test)"
    )
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as c:
        assert dict(run_map(abs, [-1, -2], workers=1, scheduler=c.scheduler_address)) == {-1: 1, -2: 2}
