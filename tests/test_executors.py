"""Executors: same results whichever backend, and a dying worker does not kill the run."""

from __future__ import annotations

import os

import pytest

from spinemri.errors import ConfigError
from spinemri.pipeline.executors import WorkerFailure, backend_name, run_map


def square(x: int) -> int:
    return x * x


def die_on_three(x: int) -> int:
    if x == 3:
        os._exit(17)  # simulate a segfault / OOM kill of the worker process
    return x * x


def test_backend_name() -> None:
    assert backend_name(1, None) == "serial"
    assert backend_name(2, None) == "processes"
    assert backend_name(1, "local") == "dask"


def test_serial_and_processes_agree() -> None:
    items = list(range(7))
    serial = dict(run_map(square, items))
    procs = dict(run_map(square, items, workers=2))
    assert serial == procs == {i: i * i for i in items}


def test_empty_items_yield_nothing() -> None:
    assert list(run_map(square, [], workers=2)) == []


def test_workers_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="workers"):
        list(run_map(square, [1], workers=0))


def test_dying_worker_is_isolated() -> None:
    items = list(range(6))
    results = dict(run_map(die_on_three, items, workers=2))
    assert set(results) == set(items)
    assert isinstance(results[3], WorkerFailure)
    assert results[3].error == "WorkerDied"
    for i in items:
        if i != 3:
            assert results[i] == i * i


def test_dask_local_cluster_agrees() -> None:
    pytest.importorskip("distributed", reason="dask.distributed is an optional extra (spinemri[dask])")
    items = list(range(5))
    assert dict(run_map(square, items, workers=2, scheduler="local")) == {i: i * i for i in items}


class Watched(list):  # type: ignore[type-arg]
    """A list that records the largest index the parent took an item from (= submitted)."""

    def __init__(self, n: int) -> None:
        super().__init__(range(n))
        self.highest = -1

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, int):
            self.highest = max(self.highest, i)
        return super().__getitem__(i)


@pytest.mark.parametrize("scheduler", [None, "local"])
def test_items_in_flight_are_bounded_not_the_whole_cohort(scheduler: str | None) -> None:
    # issue 18: a 5,000-case cohort must not be submitted at once (every result would wait in memory)
    if scheduler:
        pytest.importorskip("distributed", reason="dask.distributed is an optional extra (spinemri[dask])")
    from spinemri.pipeline.executors import IN_FLIGHT_PER_WORKER

    items = Watched(200)
    it = run_map(square, items, workers=2, scheduler=scheduler)
    first = next(it)
    # dask counts worker threads once the cluster is up (2 here) and never less than 2
    assert items.highest < IN_FLIGHT_PER_WORKER * 2 + 1
    rest = dict(it)
    rest[first[0]] = first[1]
    assert rest == {i: i * i for i in range(200)}


def die_on_early(x: int) -> int:
    if x in (1, 150):
        os._exit(17)
    return x * x


def test_dying_workers_with_a_bounded_window_lose_nothing_else() -> None:
    items = list(range(160))
    results = dict(run_map(die_on_early, items, workers=2))
    assert set(results) == set(items)
    assert {i for i, r in results.items() if isinstance(r, WorkerFailure)} == {1, 150}
    assert all(results[i] == i * i for i in items if i not in (1, 150))


def malloc_trim_env(_: int) -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_cluster_workers_keep_glibc_dynamic_mmap_threshold() -> None:
    # issue 18: dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536, which made case code 1.3-1.9x slower
    distributed = pytest.importorskip("distributed", reason="dask.distributed is an optional extra")
    import dask

    assert "MALLOC_TRIM_THRESHOLD_" in dask.config.get("distributed.nanny.pre-spawn-environ")  # Dask sets it
    results = dict(run_map(malloc_trim_env, [1, 2], workers=2, scheduler="local"))
    assert results == {1: None, 2: None}
    assert distributed is not None


def worker_setup(_: int) -> tuple[object, bool]:
    import sys

    import dask

    return (
        dask.config.get("distributed.worker.profile.enabled"),
        "cc3d" in sys.modules,  # imported by the forkserver's preload, never by this function
    )


def test_local_cluster_workers_run_lean_and_start_from_the_preloaded_forkserver() -> None:
    # issue 18: the per-thread profiler and the fast monitors took 2-3 % of a worker's CPU, and
    # spawned workers imported the whole stack each (docs/performance.md, "Dask")
    pytest.importorskip("distributed", reason="dask.distributed is an optional extra")
    import dask

    assert dask.config.get("distributed.worker.profile.enabled") is True  # Dask's default, untouched here
    results = dict(run_map(worker_setup, [1, 2], workers=2, scheduler="local"))
    for profile, preloaded in results.values():
        assert profile is False
        assert preloaded
    assert dask.config.get("distributed.worker.profile.enabled") is True  # the parent's config restored
