"""Executors: map a function over shards, on this machine's cores or on a Ray cluster.

One small interface (:class:`Executor`) with two implementations: :class:`LocalExecutor`, a
process pool on this machine (the default, no extra dependency), and
:class:`~provenance.executors.ray_executor.RayExecutor` (the ``ray`` extra; the only module that
imports ray). A *shard* is the unit of work: one input file of many, a chunk of a folder's files,
one partition of a manifest. Both executors give the same results in the same order, so every
output built through them is byte-identical whichever runs it.

A task that fails fails the whole map, with the shard named: a task's own
:class:`~provenance.errors.ProvenanceError` keeps its type (and exit code) with the shard's name
in front of its message, an ``OSError`` becomes a :class:`~provenance.errors.LocalIOError`, and a
worker that dies (killed, out of memory) is a :class:`ShardFailedError`. Nothing is retried: a
shard that fails once is reported, never silently run again.
"""

from __future__ import annotations

from provenance.errors import InputError, ParameterError
from provenance.executors.base import (
    EXECUTOR_NAMES,
    Executor,
    ExecutorName,
    ShardFailedError,
    shard_error,
)
from provenance.executors.local import LocalExecutor

__all__ = [
    "EXECUTOR_NAMES",
    "Executor",
    "ExecutorName",
    "LocalExecutor",
    "ShardFailedError",
    "make_executor",
    "shard_error",
]


def make_executor(name: str, *, workers: int | None = None, address: str | None = None) -> Executor:
    """Return the executor called ``name`` (``local`` or ``ray``).

    ``workers`` caps the local pool (default: all cores) and the CPUs of a local Ray instance;
    ``address`` is a Ray cluster to connect to (``ray`` only; without it a local instance is
    started, and stopped on :meth:`Executor.close`).

    Raises:
        ParameterError: an unknown name, or an address for the local executor.
        InputError: ``ray`` asked for while the ``ray`` extra is not installed.
        UnavailableError: the Ray cluster cannot be reached or started.
    """
    if name == "local":
        if address is not None:
            raise ParameterError("address", "applies to the ray executor only", value=address)
        return LocalExecutor(workers)
    if name == "ray":
        try:
            from provenance.executors.ray_executor import RayExecutor
        except ImportError:
            raise InputError("the ray executor needs Ray: pip install 'provenance[ray]'") from None
        return RayExecutor(address=address, workers=workers)
    raise ParameterError("executor", f"expected one of {', '.join(EXECUTOR_NAMES)}", value=name)
