"""Run one function over many items: serially, in a process pool, or on a Dask cluster.

Every backend yields ``(item, outcome)`` pairs as items finish, where
``outcome`` is the function's return value or a :class:`WorkerFailure` when
the worker process died or the cluster lost the task. Exceptions raised by the
function itself are the function's business: spinemri's case function catches
its own errors and returns them as data, so a bad case never stops a run.

Backends:

* ``serial`` — in this process (``workers=1``, no scheduler);
* ``processes`` — :class:`concurrent.futures.ProcessPoolExecutor` with
  ``workers`` processes; a worker that dies (segfault, OOM kill) breaks the
  pool, which is rebuilt and the unfinished items retried; an item that breaks
  a pool twice, the second time running alone, is reported as a
  :class:`WorkerFailure` and the run goes on;
* ``dask`` — a ``dask.distributed`` client: ``scheduler="local"`` starts a
  ``LocalCluster`` of ``workers`` single-threaded processes; any other value is
  a scheduler address (``tcp://host:8786``). Dask retries a task whose worker
  died (``distributed.scheduler.allowed-failures``) and then reports it.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import ConfigError, SchedulerError

__all__ = [
    "DASK_CONNECT_TIMEOUT_S",
    "WorkerFailure",
    "run_map",
    "backend_name",
    "check_scheduler",
    "require_distributed",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds to wait for a Dask scheduler to answer (it was 30 s, and a port that is not a Dask
#: scheduler could also answer with bytes that made distributed raise ValueError or MemoryError).
DASK_CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class WorkerFailure:
    """An item whose worker died or whose task the cluster lost."""

    error: str
    message: str


def backend_name(workers: int, scheduler: str | None) -> str:
    """The backend :func:`run_map` uses for these options.

    Parameters
    ----------
    workers : int
        Number of worker processes (``--workers``).
    scheduler : str or None
        ``"local"`` or a Dask scheduler address (``--scheduler``); None or
        empty for no Dask.

    Returns
    -------
    str
        ``"dask"`` when a scheduler is given, else ``"serial"`` for
        ``workers <= 1`` and ``"processes"`` otherwise.
    """
    if scheduler:
        return "dask"
    return "serial" if workers <= 1 else "processes"


def run_map(
    fn: Callable[[T], Any],
    items: Sequence[T],
    *,
    workers: int = 1,
    scheduler: str | None = None,
) -> Iterator[tuple[T, Any]]:
    """Yield ``(item, fn(item) or WorkerFailure)`` as items complete (order not guaranteed).

    Parameters
    ----------
    fn : callable
        Called once per item (in a worker process for the ``processes`` and
        ``dask`` backends, so it and the items must be picklable there).
    items : sequence
        The items; nothing is yielded (and no pool started) when empty.
    workers : int, default 1
        Number of worker processes; must be >= 1.
    scheduler : str, optional
        ``"local"`` for a Dask ``LocalCluster`` of ``workers`` processes, or the
        address of a Dask scheduler; None for no Dask (see :func:`backend_name`).

    Yields
    ------
    tuple of (item, object)
        Each item with ``fn(item)``, or a :class:`WorkerFailure` when its worker
        process died or the cluster lost its task. Exceptions raised by ``fn``
        propagate with the ``serial`` and ``processes`` backends; the ``dask``
        backend reports them as a WorkerFailure too.

    Raises
    ------
    ConfigError
        ``workers < 1``, dask.distributed missing, or the scheduler unreachable.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if not items:
        return
    kind = backend_name(workers, scheduler)
    if kind == "serial":
        for item in items:
            yield item, fn(item)
    elif kind == "processes":
        yield from _run_processes(fn, items, workers)
    else:
        assert scheduler is not None
        yield from _run_dask(fn, items, workers, scheduler)


#: Modules the forkserver imports once for all worker processes.
_PRELOAD = (
    "numpy",
    "pandas",
    "scipy.ndimage",
    "spinemri.io.load",
    "spinemri.measurement",
    "spinemri.report.qc",
    "spinemri.pipeline.case",
    "spinemri.pipeline.cohort",
    # imported on first use by a case (0.36 s per worker otherwise): readers, codecs, cc3d, Pillow
    "nibabel",
    "pydicom",
    "pydicom.pixels",
    "cc3d",
    "PIL.Image",
    "PIL.ImageDraw",
    "PIL.ImageFont",
)


def _mp_context() -> Any:
    # forkserver/spawn avoid inheriting threads and locks from the parent (numpy, logging);
    # fork is kept where others are unavailable.
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # workers fork from a server that has already imported the heavy modules once, instead of
    # paying 2-3 s of imports each (docs/performance.md, cohort throughput)
    ctx.set_forkserver_preload(list(_PRELOAD))
    return ctx


#: Items in flight per worker: enough to keep every worker busy, few enough that the results
#: waiting to be collected do not grow with the cohort (issue 18: flat parent memory).
IN_FLIGHT_PER_WORKER = 4


def _run_processes(fn: Callable[[T], Any], items: Sequence[T], workers: int) -> Iterator[tuple[T, Any]]:
    pending = list(range(len(items)))
    breaks = [0] * len(items)
    ctx = _mp_context()
    while pending:
        alone = [i for i in pending if breaks[i] >= 1]
        batch = pending if not alone else alone[:1]
        n = 1 if alone else min(workers, len(batch))
        done_ids: set[int] = set()
        lost: list[int] = []  # in flight when the pool broke
        # the workers ignore Ctrl-C: the parent stops them (a worker waiting for its next case printed
        # a KeyboardInterrupt traceback), and no queued case runs after the parent was interrupted
        pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_ignore_sigint)
        try:
            queue = iter(batch)
            futures: dict[Future[Any], int] = {}
            broken = not _fill(pool, fn, items, queue, futures, IN_FLIGHT_PER_WORKER * n)
            while futures and not broken:
                finished, _ = wait(list(futures), return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = futures.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        lost.append(i)
                        continue
                    done_ids.add(i)
                    yield items[i], result
                    del result
                if not broken:
                    broken = not _fill(pool, fn, items, queue, futures, IN_FLIGHT_PER_WORKER * n)
            lost.extend(futures.values())
        except BaseException:  # KeyboardInterrupt, or the consumer stopped (GeneratorExit): stop now
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
        if broken:
            if alone:
                i = batch[0]
                log.warning("a worker process died while running item %d alone; reporting it as failed", i)
                yield (
                    items[i],
                    WorkerFailure(
                        "WorkerDied",
                        "the worker process died (crash or out of memory) while processing this case",
                    ),
                )
                done_ids.add(i)
            else:
                log.warning(
                    "a worker process died; retrying %d unfinished item(s)", len(pending) - len(done_ids)
                )
                for i in lost:  # only the items that were running can have killed it
                    breaks[i] += 1
        pending = [i for i in pending if i not in done_ids]


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (it stops the workers)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool at once: cancel the queued cases and terminate the workers (they write no file)."""
    processes = list(getattr(pool, "_processes", {}).values())  # CPython's pool keeps them here
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(5)


def _fill(
    pool: ProcessPoolExecutor,
    fn: Callable[[T], Any],
    items: Sequence[T],
    queue: Iterator[int],
    futures: dict[Future[Any], int],
    limit: int,
) -> bool:
    """Submit items from ``queue`` until ``limit`` are in flight; False when the pool is broken."""
    while len(futures) < limit:
        i = next(queue, None)
        if i is None:
            return True
        try:
            futures[pool.submit(fn, items[i])] = i
        except BrokenProcessPool:
            return False
    return True


def _run_dask(
    fn: Callable[[T], Any], items: Sequence[T], workers: int, scheduler: str
) -> Iterator[tuple[T, Any]]:
    require_distributed(scheduler)
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        import dask

        # never more processes than cases: 40 workers for 3 cases started 37 idle interpreters
        with dask.config.set(_local_cluster_config()):
            _preload_forkserver()
            cluster = LocalCluster(
                n_workers=max(1, min(workers, len(items))),
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            )
        client = Client(cluster)
    else:
        client = _connect(Client, scheduler)
    try:
        # a bounded number of tasks in flight (IN_FLIGHT_PER_WORKER per worker thread, counted again
        # as results come back, so workers that join later get work): a finished task's result is
        # released on the cluster once collected, so neither side holds the whole cohort's results
        queue = iter(range(len(items)))
        futures: dict[Any, int] = {}
        running = as_completed()

        def top_up() -> None:
            limit = IN_FLIGHT_PER_WORKER * max(2, sum(client.nthreads().values()))
            while len(futures) < limit:
                idx = next(queue, None)
                if idx is None:
                    return
                fut = client.submit(_in_dask_worker, fn, items[idx], pure=False)
                futures[fut] = idx
                running.add(fut)

        top_up()
        for fut in running:
            idx = futures.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # KilledWorker, CancelledError, ...: the cluster lost the task
                result = WorkerFailure(type(exc).__name__, f"the Dask cluster could not run this case: {exc}")
            fut.release()
            top_up()
            yield items[idx], result
            del result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_scheduler(scheduler: str | None) -> None:
    """Fail fast when ``scheduler`` is an address where no Dask scheduler answers.

    Called before a run reads or writes anything; ``None``, ``""`` and ``"local"`` pass.

    Parameters
    ----------
    scheduler : str or None
        The ``--scheduler`` value.

    Raises
    ------
    SchedulerError
        Nothing answers within :data:`DASK_CONNECT_TIMEOUT_S`, or the service is not a Dask
        scheduler (one line naming the address).
    ConfigError
        dask.distributed is not installed.
    """
    if not scheduler:
        return
    require_distributed(scheduler)
    if scheduler == "local":
        return
    kind = _probe_scheduler(scheduler, DASK_CONNECT_TIMEOUT_S)
    if kind != "Scheduler":
        raise SchedulerError(_not_scheduler(scheduler, kind))


def _not_scheduler(scheduler: str, kind: str) -> str:
    return (
        f"--scheduler {scheduler!r}: the service at this address answered as {kind!r}, not as a Dask "
        "scheduler; pass the scheduler's address (dask scheduler, default port 8786)"
    )


def require_distributed(scheduler: str) -> None:
    """Refuse a Dask scheduler when dask.distributed cannot be imported.

    Parameters
    ----------
    scheduler : str
        ``"local"`` or a scheduler address, named in the message.

    Raises
    ------
    ConfigError
        ``dask`` or ``distributed`` is not installed (or fails to import); the message says
        ``pip install "spinemri[dask]"`` and that ``--workers N`` runs in processes without Dask.
    """
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"--scheduler {scheduler} needs dask.distributed, which is not installed ({exc}): "
            'pip install "spinemri[dask]", or drop --scheduler (--workers N runs N processes without Dask)'
        ) from None


#: Dask settings of spinemri's own LocalCluster (issue 18; docs/performance.md, "Dask"). Each
#: worker ran a statistical profiler sampling every thread's stack every 10 ms, a memory monitor
#: every 100 ms and an event-loop tick every 20 ms: 2-3 % of a worker's CPU beside the case, and
#: on a machine with as many workers as cores that CPU is taken from the cases. Nothing in
#: spinemri reads the profiles (they feed the dashboard); the monitors stay, less often. A cluster
#: started by someone else (``--scheduler tcp://...``) keeps its own configuration.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.tick.interval": "200ms",
    "distributed.admin.system-monitor.interval": "2s",
}


def _local_cluster_config() -> dict[str, Any]:
    """The Dask configuration spinemri's LocalCluster is started with (workers inherit it)."""
    config = {**LOCAL_CLUSTER_CONFIG, "distributed.nanny.pre-spawn-environ": _worker_environ()}
    if "forkserver" in multiprocessing.get_all_start_methods():
        config["distributed.worker.multiprocessing-method"] = "forkserver"
    return config


def _preload_forkserver() -> None:
    """Let Dask's forkserver import spinemri's case modules once, as the process pool's does.

    Dask's default start method, ``spawn``, makes every worker import numpy, pandas, SciPy,
    nibabel, pydicom, Pillow and distributed itself (2-3 s of CPU per worker, docs/performance.md);
    workers forked from one server that imported them once start in a fraction of that. Called
    inside :func:`_local_cluster_config`'s settings, after Dask chose its own preload list.
    """
    import dask

    if dask.config.get("distributed.worker.multiprocessing-method") != "forkserver":
        return
    from distributed.utils import get_mp_context

    ctx = get_mp_context()  # sets Dask's list (distributed and its packages) the first time
    ctx.set_forkserver_preload(["distributed", *_PRELOAD])


def _worker_environ() -> dict[str, Any]:
    """Dask's nanny environment for spinemri's workers: without ``MALLOC_TRIM_THRESHOLD_``.

    Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker; setting it switches off
    glibc's dynamic mmap threshold, so every large array a case allocates is a fresh ``mmap`` whose
    pages are faulted in and zeroed again: case code ran 1.3-1.9x slower in Dask workers than in
    the process pool (docs/performance.md, Dask). Without it the workers run as fast as the pool.
    """
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


_MALLOC_TUNED = False


def _in_dask_worker(fn: Callable[[T], Any], item: T) -> Any:
    """Run ``fn(item)`` in a Dask worker, first undoing the nanny's malloc setting (remote clusters).

    A worker started by someone else's nanny (``dask worker`` on a cluster) has
    ``MALLOC_TRIM_THRESHOLD_`` set; the dynamic threshold cannot be switched on again, so the
    thresholds are set high instead (``mallopt``: trim above 256 MiB, mmap above 32 MiB, glibc's
    largest dynamic value), which gives back the pool's speed (within 5-15 %, measured).
    """
    global _MALLOC_TUNED
    if not _MALLOC_TUNED:
        _MALLOC_TUNED = True
        import os

        if os.environ.get("MALLOC_TRIM_THRESHOLD_"):
            try:
                import ctypes

                libc = ctypes.CDLL("libc.so.6")
                libc.mallopt(-1, 256 * 1024 * 1024)  # M_TRIM_THRESHOLD
                libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
            except (OSError, AttributeError):  # not glibc: nothing to undo
                pass
    return fn(item)


def _connect(client_cls: Any, scheduler: str) -> Any:
    """A Dask client connected to ``scheduler`` within :data:`DASK_CONNECT_TIMEOUT_S`, or a SchedulerError.

    ``Client(address, timeout=...)`` alone waited forever on a service that accepts the connection
    but never answers, and raised ValueError or MemoryError on one that answers garbage: the
    address is first asked for its identity (``op: identity``) with a deadline.
    """
    import dask

    timeout = DASK_CONNECT_TIMEOUT_S
    kind = _probe_scheduler(scheduler, timeout)
    if kind != "Scheduler":
        raise SchedulerError(_not_scheduler(scheduler, kind))
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
            return client_cls(scheduler, timeout=f"{timeout}s")
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - the scheduler went away in between
        raise SchedulerError(_not_dask(scheduler, exc)) from None


def _probe_scheduler(scheduler: str, timeout: float) -> str:
    """Ask ``scheduler`` for its identity within ``timeout`` seconds; return its ``type``.

    Runs in its own thread (and event loop), joined with a deadline, so that a caller that
    already runs an event loop works too and a service that never answers cannot block.
    """
    import asyncio
    import threading

    result: dict[str, Any] = {}

    async def probe() -> Any:
        from distributed.comm.core import connect

        comm = await connect(scheduler, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    def target() -> None:
        try:
            result["reply"] = asyncio.run(asyncio.wait_for(probe(), timeout))
        except BaseException as exc:  # noqa: BLE001 - reported below, in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="spinemri-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 2)
    if thread.is_alive() or isinstance(result.get("error"), (TimeoutError, asyncio.TimeoutError)):
        raise SchedulerError(
            f"--scheduler {scheduler!r}: no Dask scheduler answered within {timeout} s; check that the "
            "scheduler runs and that the address and port are right"
        )
    error = result.get("error")
    if isinstance(error, OSError):
        raise SchedulerError(
            f"cannot connect to the Dask scheduler at {scheduler!r} ({_first_line(error)}); check that "
            "the scheduler runs and that the address and port are right"
        )
    if error is not None:
        raise SchedulerError(_not_dask(scheduler, error))
    reply = result.get("reply")
    return str(reply.get("type", "")) if isinstance(reply, dict) else type(reply).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _not_dask(scheduler: str, exc: BaseException) -> str:
    return (
        f"--scheduler {scheduler!r}: the service at this address does not speak the Dask protocol "
        f"({_first_line(exc)}); is it a Dask scheduler (dask scheduler, default port 8786)?"
    )
