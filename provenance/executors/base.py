"""The executor interface and what both executors share (errors named by shard)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal, Protocol, TypeVar

from provenance.errors import LocalIOError, ProvenanceError, UnavailableError

T = TypeVar("T")
R = TypeVar("R")

ExecutorName = Literal["local", "ray"]
EXECUTOR_NAMES: tuple[ExecutorName, ...] = ("local", "ray")


class ShardFailedError(UnavailableError):
    """A task died without an answer (its worker was killed or crashed)."""


class Executor(Protocol):
    """Runs a function over shards and streams the results back in input order."""

    name: str
    """``local`` or ``ray``."""
    workers: int
    """How many tasks run at once."""

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], *, names: Sequence[str] | Callable[[T], str]
    ) -> Iterator[R]:
        """Yield ``fn(item)`` for each of ``items``, in order, as results arrive.

        ``fn`` must be a module-level function (it is pickled by reference) and each item
        picklable. At most a few tasks per worker are in flight, so results are consumed as
        they come rather than all held at once. ``names`` names each item in errors (a list,
        or a function of the item). ``items`` may be an iterator: the Ray executor takes each
        item only when it can start it (the first tasks run while later items are still being
        made); the local executor takes them all first. An exception raised by the iterator
        itself propagates as it is. Either way, the map returns only once no task of it runs:
        the local executor stops its workers; the Ray executor lets the tasks in flight end
        (cancelling those still running after a minute) unless interrupted (Ctrl-C).

        Raises:
            ProvenanceError: the first failing shard's error (in input order), its message
                starting with the shard's name; the remaining tasks end first (see above).
            ShardFailedError: a worker died while running a shard.
        """
        ...

    def close(self) -> None:
        """Release the workers (a Ray instance this executor started is stopped)."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


def shard_error(exc: BaseException, name: str) -> BaseException:
    """Return ``exc`` as the error of shard ``name``: same type, message starting with the name.

    ``OSError`` becomes :class:`LocalIOError`; other exceptions (bugs) are returned unchanged so
    that they surface as they are.
    """
    if isinstance(exc, OSError):
        return LocalIOError(f"{name}: {exc.strerror or exc}")
    if not isinstance(exc, ProvenanceError):
        return exc
    message = str(exc)
    if message.startswith(name):
        return exc
    named = copy.copy(exc)
    named.args = (f"{name}: {message}",)
    return named


def name_of(names: Sequence[str] | Callable[[T], str], index: int, item: T) -> str:
    """The name of ``item``, the ``index``-th of a map (see :meth:`Executor.map`)."""
    return names(item) if callable(names) else names[index]
