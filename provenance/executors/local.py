"""The local executor: a process pool on this machine's cores (the default executor)."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from provenance.executors.base import ShardFailedError, shard_error
from provenance.manifest._system import pool_context, prepare_fork

T = TypeVar("T")
R = TypeVar("R")

_IN_FLIGHT_PER_WORKER = 2
_STOP_WAIT = 30.0  # seconds to wait for each worker stopped after a failure to end
# Which process started each shard (the pid), so that the shard of a worker that died can be
# named: a broken pool fails every task in flight, not only the dead worker's.
_started: Any = None


def _init_worker(started: Any) -> None:
    global _started
    _started = started
    # A worker must die with the driver's Ctrl-C handling, not print its own traceback. (It dies
    # of SIGTERM whatever the driver's handler: prepare_fork.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(fn: Callable[[T], R], index: int, item: T) -> R:
    _started[index] = os.getpid()
    return fn(item)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class LocalExecutor:
    """Runs shards on a pool of ``workers`` processes (all cores by default), or in this
    process when there is one worker or one shard."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else _cores()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: each :meth:`map` starts and stops its own pool."""

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], *, names: Sequence[str] | Callable[[T], str]
    ) -> Iterator[R]:
        """See :meth:`provenance.executors.Executor.map`."""
        items = items if isinstance(items, Sequence) else list(items)
        if callable(names):
            names = list(map(names, items))
        if self.workers <= 1 or len(items) <= 1:
            for item, name in zip(items, names, strict=True):
                try:
                    yield fn(item)
                except (OSError, Exception) as exc:
                    raise shard_error(exc, name) from None
            return
        yield from self._map_pool(fn, items, names)

    def _map_pool(
        self, fn: Callable[[T], R], items: Sequence[T], names: Sequence[str]
    ) -> Iterator[R]:
        context = pool_context()
        started = context.Array("q", len(items), lock=False)
        prepare_fork()
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(started,),
        )
        processes: dict[int, Any] = {}
        window: collections.deque[tuple[int, Future[R]]] = collections.deque()
        limit = self.workers * _IN_FLIGHT_PER_WORKER
        finished = False

        def submit(index: int) -> None:
            # A worker that died breaks the pool for the next submit too, not only for the
            # results awaited: the shard it ran is named either way.
            try:
                window.append((index, pool.submit(_run, fn, index, items[index])))
            except BrokenProcessPool:
                raise self._dead_worker(processes, started, names) from None
            finally:
                processes.update(getattr(pool, "_processes", None) or {})

        try:
            following = iter(range(len(items)))
            for index in following:
                submit(index)
                if len(window) >= limit:
                    break
            while window:
                index, future = window.popleft()
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise self._dead_worker(processes, started, names) from None
                except (OSError, Exception) as exc:
                    raise shard_error(exc, names[index]) from None
                for index in following:
                    submit(index)
                    break
                yield result
            finished = True
        finally:
            if finished:
                pool.shutdown()
            else:
                live = dict(getattr(pool, "_processes", None) or {})
                pool.shutdown(wait=False, cancel_futures=True)
                for pid in live:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGTERM)
                # Returned only once the workers are gone: one still running could otherwise
                # write into what the caller removes next (its temporary files).
                for process in live.values():
                    process.join(_STOP_WAIT)

    @staticmethod
    def _dead_worker(
        processes: dict[int, Any], started: Any, names: Sequence[str]
    ) -> ShardFailedError:
        """The error for a pool broken by a worker that died: names the shard it was running
        (the pool terminates the other workers itself, with SIGTERM)."""
        for pid, process in processes.items():
            process.join(1)  # the pool is stopping them all; wait to read how each ended
            code = process.exitcode
            # The pool's own thread reaps its workers too: while it holds a child's status, this
            # thread's poll reads None for a process already dead. Read again until it is set.
            deadline = time.monotonic() + 1.0
            while code is None and time.monotonic() < deadline:
                time.sleep(0.01)
                code = process.exitcode
            if code is None or code == -signal.SIGTERM:
                continue
            shards = [k for k in range(len(started)) if started[k] == pid]
            if shards:
                how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
                return ShardFailedError(
                    f"{names[shards[-1]]}: the worker process running this shard died ({how})"
                )
        return ShardFailedError("a worker process died; the shard it ran is not known")
