"""Small operating-system helpers shared by the reader, the writer, the walker and the hasher."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from provenance._cores import other_cores as other_cores  # defined once, numpy-free


def flush_std_streams() -> None:
    """Flush stdout and stderr before forking, so a child can never write their buffers again."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def prepare_fork() -> None:
    """Make this process ready to fork workers: flush stdout and stderr, and make every child
    it forks from now on die of SIGTERM, whatever handler this process has for it.

    Why: a driver may hold a Python SIGTERM handler (``ray.init`` installs one that raises
    SystemExit), and a forked child inherits it. A child stopped right after it was forked
    then either loses the signal (CPython clears the pending flags after fork) and lives on,
    its parent waiting for it forever, or raises SystemExit before ``multiprocessing`` reaches
    its ``os._exit`` and goes on running the parent's code as a second copy of it. So SIGTERM is
    blocked in the forking thread across ``fork()``; the child, before it runs any Python code
    of its own, sets the default action and unblocks it (a SIGTERM already sent kills it then).
    """
    flush_std_streams()
    global _fork_hooks_registered
    with _fork_hooks_lock:
        if not _fork_hooks_registered and hasattr(signal, "pthread_sigmask"):
            os.register_at_fork(
                before=_hold_sigterm,
                after_in_parent=_release_sigterm,
                after_in_child=_child_default_sigterm,
            )
            _fork_hooks_registered = True


_fork_hooks_lock = threading.Lock()
_fork_hooks_registered = False
_held = threading.local()  # per forking thread: was SIGTERM blocked before the fork?


def _hold_sigterm() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    _held.was_blocked = signal.SIGTERM in before


def _release_sigterm() -> None:
    if not getattr(_held, "was_blocked", True):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _child_default_sigterm() -> None:
    # The forking thread is the child's only thread, and its main one: signal.signal works.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not getattr(_held, "was_blocked", False):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


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
