"""Forked workers die of SIGTERM whatever SIGTERM handler their parent holds.

A driver that has called ``ray.init`` holds a Python SIGTERM handler raising SystemExit, and a
forked child inherits it. A child stopped right after it was forked then lost the signal and
lived on (its parent waiting for it forever: a CI run hung this way), or raised SystemExit before
``multiprocessing`` reached its ``os._exit`` and ran on as a second copy of the parent.
``prepare_fork`` (provenance/manifest/_system.py) closes both. The scenarios run in a separate
interpreter, so that a copy that escapes cannot run this test session a second time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_PRELUDE = """
import os, signal, sys, tempfile, threading
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # as ray.init does
me = os.getpid()
def check_not_a_copy(where):
    if os.getpid() != me:
        print("a forked child ran on after", where, flush=True)
        os._exit(0)
"""


def _run(script: str, timeout: float = 30.0) -> str:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PRELUDE + textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a parent waited forever for a child it had stopped")
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("thread", [False, True], ids=["main-thread", "other-thread"])
def test_a_merkle_child_stopped_at_once_dies_and_never_runs_on(
    tmp_path: Path, thread: bool
) -> None:
    # Started and stopped at once, 300 times: without prepare_fork's signal handling this hung
    # within the first few dozen rounds on this machine.
    out = _run(
        f"""
        from provenance.manifest._leaves import LeafTreeProcess
        fd = os.open({str(tmp_path / "m")!r}, os.O_RDWR | os.O_CREAT)
        def rounds():
            for i in range(300):
                LeafTreeProcess(fd, follow=True).close()
                check_not_a_copy(i)
        if {thread}:
            t = threading.Thread(target=rounds)
            t.start()
            t.join()
        else:
            rounds()
        print("done", os.getpid() == me)
        """
    )
    assert out.split() == ["done", "True"]


def test_pool_workers_have_the_default_sigterm_and_the_parent_keeps_its_own() -> None:
    out = _run(
        """
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing
        from provenance.manifest._system import prepare_fork
        def state(_):
            blocked = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
            return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, blocked
        prepare_fork()
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
            print(sorted(set(pool.map(state, range(8)))))
        print(callable(signal.getsignal(signal.SIGTERM)),
              signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []))
        """
    )
    assert out.splitlines() == ["[(True, False)]", "True False"]


def test_a_parent_that_blocked_sigterm_itself_keeps_it_blocked() -> None:
    out = _run(
        """
        import multiprocessing
        from provenance.manifest._system import prepare_fork
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        prepare_fork()
        child = multiprocessing.get_context("fork").Process(target=lambda: None)
        child.start()
        child.join()
        print(child.exitcode, signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []))
        """
    )
    assert out.split() == ["0", "True"]


def test_local_executor_workers_have_the_default_sigterm() -> None:
    out = _run(
        """
        from provenance.executors.local import LocalExecutor
        def state(_):
            blocked = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
            return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, blocked, os.getpid() != me
        names = [str(i) for i in range(6)]
        print(sorted(set(LocalExecutor(workers=2).map(state, list(range(6)), names=names))))
        print(callable(signal.getsignal(signal.SIGTERM)))
        """
    )
    assert out.splitlines() == ["[(True, False, True)]", "True"]
