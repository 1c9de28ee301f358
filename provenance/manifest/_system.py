"""Small operating-system helpers shared by the reader, the writer, the walker and the hasher."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any

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


def fork_is_safe() -> bool:
    """Whether this process may fork workers: on Linux, and not once Ray runs in it.

    Why: ``ray.init`` starts threads this code does not control (gRPC, the GCS subscriber,
    a garbage-collection thread). A child forked while one of them holds a lock starts with
    that lock held forever, and may hang before it runs its task: CI saw a forked pool
    worker of a driver with Ray initialised never answer. POSIX allows a child of a
    multi-threaded process only async-signal-safe calls; our children run Python. Ray is
    looked up, not imported: a process that never imported it is not running it.
    """
    if sys.platform != "linux":
        return False
    ray = sys.modules.get("ray")
    is_initialized = getattr(ray, "is_initialized", None)
    return not (callable(is_initialized) and is_initialized())


def pool_context() -> Any:
    """The multiprocessing context for a pool of workers: ``fork`` where it is safe (workers
    inherit the modules already loaded), else ``forkserver`` on Linux (workers forked from a
    clean single-threaded server process), else ``spawn``. Call :func:`prepare_fork` before
    starting the workers."""
    import multiprocessing

    if fork_is_safe():
        return multiprocessing.get_context("fork")
    if "forkserver" in start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def describe_os_error(exc: OSError) -> str:
    """A short reason for an error opening or reading a file (no path in it)."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == getattr(os, "ELOOP", -1):
        return "is a symlink"
    return exc.strerror or str(exc)
