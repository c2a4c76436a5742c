"""A real Dask cluster: a ``dask scheduler`` process and two ``dask worker`` processes on loopback (issue 18).

The test starts and stops them itself. It checks that ``spinemri run --scheduler tcp://...`` gives
byte-identical outputs to the serial run, that a worker killed mid-run loses no case, and that an
address where no scheduler answers fails fast with exit 2 and writes nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is an optional extra (spinemri[dask]; part of test)"
)

from spinemri.cli import main  # noqa: E402
from spinemri.io.cohort_write import CohortSpec, write_cohort  # noqa: E402
from spinemri.pipeline.cohort import run_cohort  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SMALL = {"first_level": "L1", "last_level": "L5", "rows": 96, "cols": 64, "n_slices": 9, "supersample": 1}
#: Files whose content depends on the run (backend, timings), not on the results.
RUN_FILES = {"provenance.json", "state.json"}


class Cluster:
    """A scheduler and worker processes started by the test, on 127.0.0.1."""

    def __init__(self, folder: Path, n_workers: int) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        self.env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
        self.log = (folder / "cluster.log").open("wb")
        sf = folder / "scheduler.json"
        self.scheduler = self._start(
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sf),
        )
        deadline = time.monotonic() + 60
        while not (sf.is_file() and sf.stat().st_size):
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                self.close()
                pytest.fail(f"the dask scheduler did not start (see {folder / 'cluster.log'})")
            time.sleep(0.1)
        self.address = str(json.loads(sf.read_text())["address"])
        self.workers = [
            self._start(
                "distributed.cli.dask_worker",
                self.address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                f"w{i}",
            )
            for i in range(n_workers)
        ]
        with distributed.Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n_workers, timeout=90)

    def _start(self, module: str, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def close(self) -> None:
        for p in [*getattr(self, "workers", []), self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in [*getattr(self, "workers", []), self.scheduler]:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.log.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, n_workers=2)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    write_cohort(root, CohortSpec(n_patients=8, seed=3), **SMALL)
    return root


@pytest.fixture(scope="module")
def serial(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serial") / "out"
    assert run_cohort(cohort, out).exit_code == 0
    return out


def _files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in RUN_FILES and not p.name.startswith(".")
    }


def test_cluster_run_is_byte_identical_to_serial(
    cluster: Cluster, cohort: Path, serial: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dask"
    code = main(["run", str(cohort), "--out", str(out), "--quiet", "--scheduler", cluster.address])
    assert code == 0
    got, want = _files(out), _files(serial)
    assert sorted(got) == sorted(want)
    different = [name for name in want if got[name] != want[name]]
    assert different == []
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["cohort"]["backend"] == "dask" and prov["cohort"]["done"] == 8


def test_worker_killed_mid_run_loses_no_case(
    cluster: Cluster, cohort: Path, serial: Path, tmp_path: Path
) -> None:
    killed: list[int] = []

    def progress(outcome: object, n: int) -> None:
        if not killed:  # the first case is back: kill one worker while the others are running
            victim = cluster.workers[0]
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    out = tmp_path / "dask"
    summary = run_cohort(cohort, out, scheduler=cluster.address, progress=progress)
    assert killed and cluster.workers[0].wait(10) == -signal.SIGKILL
    # every case is done (the lost ones retried on the surviving worker) or reported in errors.csv
    errors = (out / "errors.csv").read_text().splitlines()[1:]
    assert summary.done + summary.failed == 8 and len(errors) == summary.failed
    assert summary.failed == 0, errors
    got, want = _files(out), _files(serial)
    assert [name for name in want if got.get(name) != want[name]] == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_scheduler_fails_fast_with_exit_2(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    out = tmp_path / "out"
    t0 = time.monotonic()
    code = main(["run", str(cohort), "--out", str(out), "--quiet", "--scheduler", address])
    assert code == 2 and time.monotonic() - t0 < 15
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and address in err and "Dask scheduler" in err
    assert not out.exists()
