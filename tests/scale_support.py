"""Task functions for the executor tests: module-level, so both executors can import them."""

from __future__ import annotations

import os
import time
from typing import Any

from provenance import sharded
from provenance.errors import FormatError
from provenance.filter import shards as filter_shards
from provenance.partitions import parallel

# The task functions as their modules define them, taken when this module is imported (before
# a test replaces a module's attribute with one of the tasks here, which forked workers
# inherit: calling the attribute there would call the replacement again, without end).
_HASH_SHARD = sharded._hash_shard
_CHECK_PART = parallel._check_part
_FILTER_ONE = filter_shards._filter_one


def square(value: int) -> int:
    """A task that returns ``value * value``."""
    return value * value


def fail_on_negative(value: int) -> int:
    """A task that raises a FormatError for a negative value."""
    if value < 0:
        raise FormatError(f"negative value {value}")
    return value


def fail_first_while_others_run(item: tuple[int, str, float]) -> int:
    """Task 0 fails once another has started; each other task creates the file
    ``<pid>-<index>`` in the folder ``item[1]``, appends a "." to it every 5 ms for ``item[2]``
    seconds unless stopped, then a final "!"."""
    import time

    index, folder, seconds = item
    if index == 0:
        deadline = time.monotonic() + 20
        while len(os.listdir(folder)) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        raise FormatError("the first task fails")
    with open(os.path.join(folder, f"{os.getpid()}-{index}"), "ab", buffering=0) as handle:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            handle.write(b".")
            time.sleep(0.005)
        handle.write(b"!")
    return index


def die_on_negative(value: int) -> int:
    """A task whose worker process dies (as if killed) on a negative value."""
    if value < 0:
        os._exit(9)
    return value


def slow_square(value: int) -> int:
    """:func:`square`, a second later (so that a shard is still running when a test acts)."""
    time.sleep(1.0)
    return value * value


def parent_pid(_: int) -> int:
    """A task that returns the process id of its process's parent."""
    return os.getppid()


def niceness(_: int) -> int:
    """A task that returns its process's niceness."""
    return os.nice(0)


def die_on_part_one(task: Any) -> Any:
    """A verify part task whose worker dies (as if killed) on part 1."""
    if task.k == 1:
        os._exit(9)
    return _CHECK_PART(task)


def die_on_row_groups_two(task: Any) -> Any:
    """A filter task whose worker dies (as if killed) on the shard of row groups from 2."""
    if task.row_groups is not None and task.row_groups[0] == 2:
        os._exit(9)
    return _FILTER_ONE(task)


def join_in_task(bucket: str) -> int:
    """A task that joins one digest with a bucket file (DuckDB) and returns the pairs found."""
    import numpy as np

    from provenance.lists import joins

    mine, _ = joins.join_rows(np.zeros((1, 32), dtype=np.uint8), np.array([0]), bucket)
    return len(mine)


def die_on_shard_one(task: Any) -> Any:
    """A manifest build's shard task whose worker dies (as if killed) on shard 1."""
    if task.index == 1:
        os._exit(9)
    return _HASH_SHARD(task)


def hash_shard_growing(task: Any) -> Any:
    """A manifest build's shard task during which each file named ``grow.txt`` grows while it
    is read (in the worker itself, whichever executor runs it)."""
    real = os.readv

    def readv_then_append(fd: int, buffers: list[memoryview]) -> int:
        count = real(fd, buffers)
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.endswith("/grow.txt"):
            with open(path, "ab") as handle:
                handle.write(b"x")
        return count

    os.readv = readv_then_append
    try:
        return _HASH_SHARD(task)
    finally:
        os.readv = real
