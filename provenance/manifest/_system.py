"""Small operating-system helpers shared by the reader, the writer, the walker and the hasher."""

from __future__ import annotations

import contextlib
import os
import sys


def flush_std_streams() -> None:
    """Flush stdout and stderr before forking, so a child can never write their buffers again."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def other_cores() -> bool:
    """True if this process may run on more than one core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) > 1
    return (os.cpu_count() or 1) > 1


def start_methods() -> list[str]:
    """The multiprocessing start methods to consider (none off Linux: fork is unsafe there)."""
    import multiprocessing

    return multiprocessing.get_all_start_methods() if sys.platform == "linux" else []


def describe_os_error(exc: OSError) -> str:
    """A short reason for an error opening or reading a file (no path in it)."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == getattr(os, "ELOOP", -1):
        return "is a symlink"
    return exc.strerror or str(exc)
