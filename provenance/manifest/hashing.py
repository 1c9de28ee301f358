"""Hashing files: SHA-256 (and optionally fingerprints) on all cores, never blocking or following.

Each file is opened without following a final symlink and without blocking (a FIFO swapped in
is refused, never waited on), checked on its descriptor to be a regular file, read through a
reused 1 MiB buffer, and checked again after the read, so a file that changed while it was read
is reported. Small files are hashed in tasks of many files on a process pool (the per-file cost
stays that of a tight loop); large files on threads (hashlib releases the GIL). What goes wrong
with a file is a typed :class:`HashError`, reported in its :class:`FileDigest`, not raised.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import heapq
import os
import signal
import stat
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any, NamedTuple

from provenance._contentkind import may_have_prints
from provenance.errors import InputError, LocalIOError, ProvenanceError, UnsafePathError
from provenance.manifest._system import pool_context, prepare_fork
from provenance.manifest.walk import NOT_REGULAR, FileRef

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

_BUFFER_SIZE = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_local = threading.local()  # each thread's read buffer
# Scheduling. Small files are hashed in tasks of up to _CHUNK_FILES files and _CHUNK_BYTES bytes
# (each task runs in one process, so the per-file cost stays that of a tight loop); a file of
# _LARGE_FILE bytes or more is a task of its own, started as early as possible. Inputs of fewer
# than _PARALLEL_FILES files and _PARALLEL_BYTES bytes are hashed in this process: starting
# processes would cost more than it saves.
_CHUNK_FILES = 512
_CHUNK_BYTES = 32 * _BUFFER_SIZE
_LARGE_FILE = 32 * _BUFFER_SIZE
_PARALLEL_FILES = 2000
_PARALLEL_BYTES = 8 * _BUFFER_SIZE
_IN_FLIGHT_PER_WORKER = 3


class HashErrorKind(enum.Enum):
    """Why a file could not be hashed."""

    NOT_REGULAR = "not regular"
    """A FIFO, socket or device (perhaps swapped in after the walk)."""
    SYMLINK = "symlink"
    """The path is a symlink (perhaps swapped in after the walk): never followed."""
    PERMISSION = "permission"
    """Permission denied."""
    CHANGED = "changed"
    """The file's size or modification time changed while it was read."""
    UNREADABLE = "unreadable"
    """Any other error opening or reading it (it vanished, an I/O error...)."""


class HashError(NamedTuple):
    """Why a file could not be hashed: a kind to act on and a reason to show (``str()``)."""

    kind: HashErrorKind
    reason: str

    def __str__(self) -> str:
        """The reason, e.g. ``file changed while it was being hashed``."""
        return self.reason

    def exception(self, where: str) -> ProvenanceError:
        """The error to raise for it, its message ``where: reason``: a file that changed is a
        local I/O problem (try again); a special file or a symlink an unsafe path; any other
        failure bad input."""
        kind: type[ProvenanceError] = InputError
        if self.kind is HashErrorKind.CHANGED:
            kind = LocalIOError
        elif self.kind in (HashErrorKind.NOT_REGULAR, HashErrorKind.SYMLINK):
            kind = UnsafePathError
        return kind(f"{where}: {self.reason}")


_NOT_REGULAR = HashError(HashErrorKind.NOT_REGULAR, NOT_REGULAR)
_CHANGED = HashError(HashErrorKind.CHANGED, "file changed while it was being hashed")


def _os_error(exc: OSError) -> HashError:
    if isinstance(exc, PermissionError):
        return HashError(HashErrorKind.PERMISSION, "permission denied")
    if exc.errno == getattr(os, "ELOOP", -1):
        return HashError(HashErrorKind.SYMLINK, "is a symlink")
    return HashError(HashErrorKind.UNREADABLE, exc.strerror or str(exc))


class FileDigest(NamedTuple):
    """The outcome of hashing one file: a digest, or an error.

    A named tuple rather than a dataclass: tens of thousands of them cross process boundaries,
    and tuples pickle several times faster.
    """

    sha256: str
    size: int
    error: HashError | None = None
    """Set (and ``sha256`` empty) when the file could not be hashed."""
    prints: Any = None
    """With fingerprinting: the file's :class:`provenance.fingerprints.ContentPrints`."""
    linked: bool = False
    """The file has other hard links (st_nlink > 1, seen on the descriptor hashed)."""


# Files larger than this are hashed but not fingerprinted (their content is not kept).
FINGERPRINT_MAX_BYTES = 64 * _BUFFER_SIZE


def hash_file(path: str, *, fingerprint: bool = False) -> FileDigest:
    """Hash one regular file without following a final symlink and without blocking on FIFOs.

    With ``fingerprint``, a file of at most ``FINGERPRINT_MAX_BYTES`` also gets its
    fingerprints (``FileDigest.prints``).

    Returns:
        A :class:`FileDigest`; its ``error`` is set (and digest empty) when the file is not a
        regular file, cannot be read, or changed while it was read.
    """
    result = hash_task([path], fingerprint)[0]
    assert isinstance(result, FileDigest)  # a task of one file is never deferred
    return result


def hash_task(
    paths: list[str],
    fingerprint: bool = False,
    stop: threading.Event | None = None,
    on_read: Callable[[int], None] | None = None,
) -> list[FileDigest | int]:
    """Hash ``paths`` in order, in this process (the body of :func:`hash_file`, looped).

    Each file is opened without following symlinks and without blocking, checked to be a
    regular file on the open descriptor, read through a reused buffer, and checked again
    (size and mtime) after the read, so a file that changed while it was read is reported.

    In a task of several files, a file of ``_LARGE_FILE`` bytes or more is not hashed: its
    size is returned in its place, for the caller to hash it as a task of its own. Once
    ``_CHUNK_BYTES`` bytes have been read the remaining files are left out of the result, for
    the caller to queue again. So no task grows beyond what one process should do alone, even
    when the walk did not stat the files.

    With ``fingerprint``, the content of each file of at most ``FINGERPRINT_MAX_BYTES`` that can
    have fingerprints (:func:`provenance._contentkind.may_have_prints`) is kept and the task's
    files are fingerprinted together at the end (``FileDigest.prints``; None for the others,
    which is what their fingerprints would say: no text digest, no fingerprint).
    Setting ``stop`` (from another thread) cuts a long read short; the result is then unusable.
    ``on_read`` is told the bytes of each read of a large file after the first, so that a
    progress bar moves while one big file is hashed.

    Returns:
        For the first paths in order, each file's :class:`FileDigest` (a problem reading it in
        ``FileDigest.error``, not raised), or the size of a large file left out; fewer results
        than paths when the task stopped at ``_CHUNK_BYTES``.
    """
    buffer = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) != _BUFFER_SIZE:
        buffer = _local.buffer = bytearray(_BUFFER_SIZE)
    view = memoryview(buffer)
    buffers = [view]
    alone = len(paths) == 1
    budget = _CHUNK_BYTES
    results: list[FileDigest | int] = []
    append, sha256, readv, fstat = results.append, hashlib.sha256, os.readv, os.fstat
    is_regular = stat.S_ISREG
    contents: dict[int, bytes] = {}
    for path in paths:
        if budget <= 0:
            break
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            append(FileDigest("", 0, _os_error(exc)))
            continue
        try:
            before = fstat(fd)
            size = before.st_size
            if not is_regular(before.st_mode):
                append(FileDigest("", 0, _NOT_REGULAR))
                continue
            if size >= _LARGE_FILE and not alone:
                append(size)
                continue
            read = readv(fd, buffers)
            digest = sha256(view[:read])
            parts = [bytes(view[:read])] if fingerprint and size <= FINGERPRINT_MAX_BYTES else []
            # Content that can have no fingerprint (a NUL byte, and not an image) is not kept:
            # most binary files, which then cost no fingerprinting (nor numpy in this process).
            keep = bool(parts) and may_have_prints(parts[0])
            # A first read shorter than the buffer that returned exactly the size fstat gave is
            # the whole file, so the read that would return EOF is skipped (most files are
            # small). A file that grows or changes from here on is caught by the fstat below;
            # reading stops once more than the size has been read (a file that keeps growing
            # is reported as changed, not read forever).
            if read != size or read == _BUFFER_SIZE:
                while read <= size and (count := readv(fd, buffers)):
                    if stop is not None and stop.is_set():
                        break
                    digest.update(view[:count])
                    read += count
                    if on_read is not None:
                        on_read(count)
                    if keep:
                        parts.append(bytes(view[:count]))
            after = fstat(fd)
        except OSError as exc:
            append(FileDigest("", 0, _os_error(exc)))
            continue
        finally:
            os.close(fd)
        budget -= read
        if read != size or after.st_size != size or after.st_mtime_ns != before.st_mtime_ns:
            append(FileDigest("", 0, _CHANGED))
        else:
            if keep and read <= FINGERPRINT_MAX_BYTES:
                contents[len(results)] = parts[0] if len(parts) == 1 else b"".join(parts)
            append(FileDigest(digest.hexdigest(), read, None, None, before.st_nlink > 1))
    if contents:
        from provenance.fingerprints import content_prints

        # Files whose content was not kept keep prints=None (no textSha256, no fingerprints).
        # A new tuple, not _replace: several times cheaper per file.
        prints = content_prints(list(contents.values()), ordered=False)
        for k, found in zip(contents, prints, strict=True):
            kept = results[k]
            assert isinstance(kept, FileDigest)
            results[k] = FileDigest(kept.sha256, kept.size, None, found, kept.linked)
    return results


def _hash_task_in_pool(paths: list[str], fingerprint: bool) -> list[tuple[Any, ...] | int]:
    """:func:`hash_task` for the process pool: plain tuples pickle ten times faster than
    named tuples, which matters at a few microseconds per small file."""
    return [tuple(r) if isinstance(r, FileDigest) else r for r in hash_task(paths, fingerprint)]


_SAMPLE_FILES = 8


def _sample_may_have_prints(files: Sequence[FileRef]) -> bool:
    """Whether the first files look like content to fingerprint (by their first 4 KiB).

    Only a guess, to decide where the fingerprinting code is loaded: results never depend on
    it. Files are opened as :func:`hash_task` opens them (never blocking, never following).
    """
    for ref in files[:_SAMPLE_FILES]:
        try:
            fd = os.open(ref.path, _OPEN_FLAGS)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode) and may_have_prints(os.read(fd, 4096)):
                return True
        except OSError:
            continue
        finally:
            os.close(fd)
    return False


def _count_read(counter: list[int], count: int) -> None:
    """Add ``count`` bytes to a thread task's progress counter (only that thread writes it)."""
    counter[0] += count


class Hasher:
    """Hashes the files of ``files`` it is given (while a walk may still be listing more).

    Small files are grouped into tasks as they arrive, for a process pool: the largest waiting
    task is submitted first and only a few tasks per process are in flight. The pool is started
    only once there is enough work to pay for it. A large file is a task of its own for a
    thread pool, at once: hashlib releases the GIL while it hashes, so threads hash big files
    as fast as processes without starting any. Progress (bytes) is reported only after
    :meth:`start_progress`, once the caller knows the total.
    """

    def __init__(
        self,
        files: Sequence[FileRef],
        workers: int,
        progress: Callable[[int], None] | None,
        *,
        fingerprint: bool = False,
    ) -> None:
        self._files = files
        self._fingerprint = fingerprint
        self._workers = workers
        self._progress = progress
        self._progress_ready = False
        self._progress_held = 0
        self._waiting: list[tuple[int, int, list[int]]] = []  # heap of (-bytes, seq, indexes)
        self._sequence = 0
        self._current: list[int] = []
        self._current_bytes = 0
        self._seen_files = 0
        self._seen_bytes = 0
        self._pool: ProcessPoolExecutor | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._running: dict[Future[list[Any]], list[int]] = {}
        # Bytes read so far by each thread task, and how many of them were reported already.
        self._partial: dict[Future[list[Any]], list[int]] = {}
        self.results: dict[int, FileDigest] = {}

    def add(self, index: int) -> None:
        """Queue ``files[index]`` for hashing."""
        size = self._files[index].size
        if size >= _LARGE_FILE:
            self._queue([index], size)
            return
        self._seen_files += 1
        self._current.append(index)
        if size > 0:
            self._seen_bytes += size
            self._current_bytes += size
        if len(self._current) < _CHUNK_FILES and self._current_bytes < _CHUNK_BYTES:
            return
        self._queue(self._current, self._current_bytes)
        self._current, self._current_bytes = [], 0
        self._start_pool()
        self._pump(block=False)

    def _start_pool(self) -> None:
        if (
            self._pool is None
            and self._workers > 1
            and (self._seen_files >= _PARALLEL_FILES or self._seen_bytes >= _PARALLEL_BYTES)
        ):
            from concurrent.futures import ProcessPoolExecutor

            context = pool_context()
            if self._fingerprint and _sample_may_have_prints(self._files):
                # Text or images ahead: loaded once here, not in every worker (forked workers
                # inherit modules). Binary files need none of it.
                import provenance.fingerprints  # noqa: F401
            prepare_fork()
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)

    def add_unsized(self, indexes: range) -> None:
        """Queue files of unknown size (``size`` -1): tasks of ``_CHUNK_FILES`` files."""
        self._seen_files += len(indexes)
        current = self._current
        current.extend(indexes)
        if len(current) < _CHUNK_FILES:
            return
        for start in range(0, len(current) - _CHUNK_FILES + 1, _CHUNK_FILES):
            self._queue(current[start : start + _CHUNK_FILES], self._current_bytes)
            self._current_bytes = 0
        self._current = current[len(current) - len(current) % _CHUNK_FILES :]
        self._start_pool()
        self._pump(block=False)

    def submit_all(self) -> None:
        """Hand every queued task to the pool now (largest first): the caller is about to be
        busy with other work and would not keep the workers fed."""
        if self._current:
            self._queue(self._current, self._current_bytes)
            self._current, self._current_bytes = [], 0
        while self._pool is not None and self._waiting:
            _, _, task = heapq.heappop(self._waiting)
            paths = [self._files[i].path for i in task]
            self._running[self._pool.submit(_hash_task_in_pool, paths, self._fingerprint)] = task

    def start_progress(self) -> None:
        """Report the progress held back so far, and from now on as it happens."""
        self._progress_ready = True
        self._report(0)

    def finish(self) -> dict[int, FileDigest]:
        """Hash everything still queued and return the digests by file index."""
        if self._current:
            self._queue(self._current, self._current_bytes)
            self._current, self._current_bytes = [], 0
        while self._waiting or self._running:
            if self._pool is None and self._waiting:  # little work: hash it in this process
                _, _, task = heapq.heappop(self._waiting)
                paths = [self._files[i].path for i in task]
                self._store(task, hash_task(paths, self._fingerprint))
            else:
                self._pump(block=True)
        for pool in (self._pool, self._threads):
            if pool is not None:
                pool.shutdown()
        self._pool = self._threads = None
        return self.results

    def close(self) -> None:
        """Stop the workers at once (after an error): nothing they compute is needed."""
        self._stop.set()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
        if self._pool is not None:
            processes = list(getattr(self._pool, "_processes", None) or {})
            self._pool.shutdown(wait=False, cancel_futures=True)
            for pid in processes:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
            self._pool = None

    def _queue(self, task: list[int], size: int) -> None:
        if len(task) == 1 and size >= _LARGE_FILE and self._workers > 1:
            if self._threads is None:
                from concurrent.futures import ThreadPoolExecutor

                self._threads = ThreadPoolExecutor(self._workers, "provenance-hash")
            path = self._files[task[0]].path
            counter = [0, 0]
            on_read = None if self._progress is None else functools.partial(_count_read, counter)
            future = self._threads.submit(hash_task, [path], self._fingerprint, self._stop, on_read)
            self._running[future] = task
            self._partial[future] = counter
            return
        self._sequence += 1
        heapq.heappush(self._waiting, (-size, self._sequence, task))

    def _pump(self, *, block: bool) -> None:
        if self._running:
            # While big files hash on threads, wake up now and then to move the progress bar.
            timeout: float | None = None if block else 0
            if block and self._partial and self._progress is not None:
                timeout = 0.2
            done, _ = wait(self._running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                counter = self._partial.pop(future, None)
                reported = counter[1] if counter is not None else 0
                self._store(self._running.pop(future), future.result(), reported)
            for counter in self._partial.values():
                if counter[0] > counter[1]:
                    self._report(counter[0] - counter[1])
                    counter[1] = counter[0]
        while (
            self._pool
            and self._waiting
            and len(self._running) < self._workers * _IN_FLIGHT_PER_WORKER
        ):
            _, _, task = heapq.heappop(self._waiting)
            paths = [self._files[i].path for i in task]
            future = self._pool.submit(_hash_task_in_pool, paths, self._fingerprint)
            self._running[future] = task

    def _store(self, task: list[int], results: list[Any], reported: int = 0) -> None:
        # ``reported``: bytes of this task already shown on the progress bar while it ran.
        done = -reported
        for index, result in zip(task, results, strict=False):
            if isinstance(result, int):  # a large file in a task of small ones: a task of its own
                self._queue([index], result)
                continue
            digest = result if type(result) is FileDigest else FileDigest._make(result)
            self.results[index] = digest
            done += digest.size
        if len(results) < len(task):  # the task's byte budget ran out: queue the rest again
            self._queue(task[len(results) :], 0)
        self._report(max(done, 0))

    def _report(self, size: int) -> None:
        if self._progress is None:
            return
        if not self._progress_ready:
            self._progress_held += size
        elif self._progress_held or size:
            self._progress(self._progress_held + size)
            self._progress_held = 0


def hash_files(
    files: Sequence[FileRef], *, workers: int, progress: Callable[[int], None] | None = None
) -> list[FileDigest]:
    """Hash ``files`` on ``workers`` processes.

    Returns:
        Their digests in the same order (problems in ``FileDigest.error``, not raised).
    """
    hasher = Hasher(files, workers, progress)
    hasher.start_progress()
    try:
        for index in range(len(files)):
            hasher.add(index)
        results = hasher.finish()
    finally:
        hasher.close()
    return [results[i] for i in range(len(files))]
