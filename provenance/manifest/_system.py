"""Small operating-system helpers shared by the reader, the writer, the walker and the hasher."""

from __future__ import annotations

import contextlib
import os
import sys

from provenance._cores import other_cores as other_cores  # defined once, numpy-free


def flush_std_streams() -> None:
    """Flush stdout and stderr before forking, so a child can never write their buffers again."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


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
