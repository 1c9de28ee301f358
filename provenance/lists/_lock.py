"""An exclusive advisory lock on a directory, so two processes never update it at once."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from provenance.errors import LocalIOError

LOCK_TIMEOUT_SECONDS = 30.0


@contextlib.contextmanager
def locked(directory: Path, *, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` itself (no lock file is created).

    Raises:
        LocalIOError: the directory cannot be opened, or another process holds the lock for
            longer than ``timeout`` seconds.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise LocalIOError(f"{directory}: cannot open directory: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LocalIOError(
                        f"{directory}: locked by another process for {timeout:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries (renames, new files) to disk; errors are ignored."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
