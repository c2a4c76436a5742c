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
