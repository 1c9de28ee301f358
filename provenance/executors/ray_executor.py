"""The Ray executor: shards as Ray tasks, on a local Ray instance or a cluster.

The only module that imports ray (the ``ray`` extra). Ray is used as a task scheduler only (Ray
Core tasks, no Ray Data): each shard is one task of one CPU, a few per CPU in flight, results
fetched in input order. Tasks are never retried, so that a shard that fails is reported once,
named, rather than run again behind the caller's back.

On a cluster, the inputs and outputs must be on a filesystem every node sees (tasks read the
input shards and write their partial results there, as the driver does).
"""

from __future__ import annotations

import collections
import pickle
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import ray
import ray.exceptions

from provenance.errors import ProvenanceWarning, UnavailableError
from provenance.executors.base import ShardFailedError, name_of, shard_error

T = TypeVar("T")
R = TypeVar("R")

_IN_FLIGHT_PER_WORKER = 2


def _call(fn: Callable[[T], R], item: bytes) -> R:
    return fn(pickle.loads(item))  # noqa: S301 (the driver's own pickle of the item)


# One remote function for the process, not one an executor: Ray ships a remote function to the
# cluster on its first call, and each build makes its own executor (measured: 2.5 ms more for an
# executor's first map, at load 5). Ray ships it again to a cluster it is re-initialised for.
_REMOTE_CALL: Any = ray.remote(num_cpus=1, max_retries=0)(_call)


def _pickled(item: object) -> bytes:
    """An item as the task's argument: pickled here, at C speed. Handed to Ray as it is, a
    shard of many (id, path) pairs goes through Ray's cloudpickle, whose Python hook runs for
    every tuple in it: measured, most of the driver's time on a small-file corpus was spent
    submitting tasks."""
    return pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)


# Ray starts its workers at niceness 15 (to keep its own processes responsive), so on a busy
# machine its tasks wait behind every other process, the local executor's workers among them
# (measured at load 8 on 2 cores: the same shard tasks took 1.3-1.7x the wall time). Tasks are
# the work here: they run at the driver's niceness, as the local executor's do.
LOCAL_SYSTEM_CONFIG: dict[str, Any] = {"worker_niceness": 0}


def start_local(workers: int | None, *, temp_dir: str | None = None) -> None:
    """Start a local Ray instance of ``workers`` CPUs (all cores by default) for this process:
    no dashboard, listening on the loopback interface only, tasks at the driver's niceness.

    Raises:
        As :func:`ray.init`.
    """
    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp_dir,
        _system_config=LOCAL_SYSTEM_CONFIG,
    )


_END_WAIT = 60.0
"""Seconds a failed :meth:`RayExecutor.map` lets its other tasks run before it cancels them."""
_CANCEL_WAIT = 30.0
"""Seconds :meth:`RayExecutor.map` waits for the tasks it cancelled to end."""


def _end_tasks(refs: list[Any], *, interrupted: bool) -> None:
    """Return once the tasks of ``refs`` (a failed map's others) have ended: a task still
    running could write into what the caller removes next (its temporary files).

    They are left to finish, for up to :data:`_END_WAIT` seconds, and only the ones still
    running then are cancelled: Ray can abort this process when a task is cancelled at the
    moment it completes (Ray 2.60, "Check failed: it != submissible_tasks_.end() Tried to
    complete task that was not pending", a race between a cancellation and the task's reply;
    docs/security.md F19). An interrupted map (Ctrl-C, or SIGTERM, which ray.init turns into
    SystemExit) cancels them at once: the user asked to stop.
    """
    if not refs:
        return
    if not interrupted:
        try:
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=_END_WAIT, fetch_local=False)
        except (KeyboardInterrupt, SystemExit):  # asked to stop while waiting: stop them now
            _cancel(refs)
            raise
    _cancel(refs)


def _cancel(refs: list[Any]) -> None:
    """Cancel the tasks of ``refs`` and wait up to :data:`_CANCEL_WAIT` seconds for them to
    end; warn if some still run then (they may still write where the caller cleans up)."""
    for ref in refs:
        ray.cancel(ref, force=True)
    if not refs:
        return
    _, running = ray.wait(refs, num_returns=len(refs), timeout=_CANCEL_WAIT, fetch_local=False)
    if running:
        warnings.warn(
            f"{len(running)} Ray task(s) still ran {_CANCEL_WAIT:.0f} s after they were"
            " cancelled; they may still write to the output's folder",
            ProvenanceWarning,
            stacklevel=2,
        )


class RayExecutor:
    """Runs shards as Ray tasks.

    Connects to the Ray instance already initialised in this process if there is one, else to
    ``address``, else starts a local instance of ``workers`` CPUs (all cores by default)
    without a dashboard, which :meth:`close` stops again.
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None) -> None:
        self._owned = False
        if not ray.is_initialized():
            try:
                if address is not None:
                    ray.init(address=address, log_to_driver=False)
                else:
                    start_local(workers)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a local instance"
                raise UnavailableError(f"ray {where}: cannot start or connect: {exc}") from None
            self._owned = True
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        self.workers = max(1, int(resources.get("CPU", 1)))
        self._remote: Any = _REMOTE_CALL

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the local Ray instance this executor started (one it joined is left running)."""
        if self._owned and ray.is_initialized():
            ray.shutdown()
            self._owned = False

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], *, names: Sequence[str] | Callable[[T], str]
    ) -> Iterator[R]:
        """See :meth:`provenance.executors.Executor.map`."""
        window: collections.deque[tuple[str, Any]] = collections.deque()
        limit = self.workers * _IN_FLIGHT_PER_WORKER
        # Each item is taken when a task can start for it: an iterator of items (a walk)
        # goes on while the first tasks run.
        following = enumerate(items)
        finished = interrupted = False
        try:
            for index, item in following:
                window.append((name_of(names, index, item), self._submit(fn, item)))
                if len(window) >= limit:
                    break
            while window:
                name, ref = window.popleft()
                result = self._get(ref, name)
                for index, item in following:
                    window.append((name_of(names, index, item), self._submit(fn, item)))
                    break
                yield result
            finished = True
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM (ray.init's handler)
            interrupted = True
            raise
        finally:
            if not finished:
                _end_tasks([ref for _, ref in window], interrupted=interrupted)

    def _submit(self, fn: Callable[[T], R], item: T) -> Any:
        return self._remote.remote(fn, _pickled(item))

    @staticmethod
    def _get(ref: Any, name: str) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise shard_error(cause, name) from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ShardFailedError(
                f"{name}: the Ray worker running this shard died ({detail})"
            ) from None
        except ray.exceptions.RayError as exc:
            raise ShardFailedError(f"{name}: Ray could not run this shard: {exc}") from None
