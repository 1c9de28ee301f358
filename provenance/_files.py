"""Small file helpers: bounded reads and atomic writes (temp file, fsync, ``os.replace``)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from provenance.errors import InputError, LocalIOError


def read_bytes(path: Path, *, limit: int, what: str = "") -> bytes:
    """Read a whole file of at most ``limit`` bytes.

    Raises:
        InputError: missing, a directory, not a regular file, unreadable, or larger than ``limit``.
        LocalIOError: any other I/O error.
    """
    label = what or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except OSError as exc:
        raise LocalIOError(f"{label}: cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{label}: is a directory, expected a file")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{label}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, expected a file") from None
    except OSError as exc:
        raise LocalIOError(f"{label}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputError(f"{label}: larger than the {limit}-byte limit for this kind of file")
    return data


def open_input(path: Path, *, what: str = "", kind: str = "file") -> io.BufferedReader:
    """Open ``path`` for binary reading, turning the usual failures into one clear error.

    ``what`` names the file in messages (default: the path); ``kind`` says what it should be
    (e.g. "manifest file").

    The file is opened with ``O_NONBLOCK`` and checked on its descriptor to be a regular file,
    so a FIFO (or a device) given as input is refused at once instead of waiting for a writer.

    Raises:
        InputError: missing, a directory, not a regular file, or permission denied.
        LocalIOError: any other error opening it.
    """
    label = what or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{label}: no such {kind}") from None
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, expected a {kind}") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except OSError as exc:
        raise LocalIOError(f"{label}: cannot open: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{label}: is a directory, expected a {kind}")
        if not stat.S_ISREG(mode):
            raise InputError(f"{label}: not a regular file, expected a {kind}")
        # O_NONBLOCK means nothing for a regular file; cleared so the handle reads as usual.
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise LocalIOError(f"{label}: cannot open: {exc.strerror}") from None
        raise


def file_sha256(path: Path, *, what: str = "", kind: str = "file") -> str:
    """Return the SHA-256 hex digest of the file at ``path``, read in streamed chunks.

    Raises:
        InputError: see :func:`open_input`.
        LocalIOError: the file cannot be opened or read.
    """
    with open_input(path, what=what, kind=kind) as handle:
        try:
            return hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise LocalIOError(f"{what or path}: cannot read: {exc.strerror}") from None


def check_output_path(path: Path) -> None:
    """Refuse, before any work is done, an output that cannot be written in place: a
    directory, or a file in a directory that does not exist (what :func:`atomic_writer` would
    refuse only at the end).

    Raises:
        InputError: it cannot be written.
    """
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file to write")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"{path}: the directory {directory} does not exist")


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Open a temp file beside ``path``; on clean exit fsync it and move it over ``path``.

    On any exception the temp file is removed and ``path`` is left exactly as it was.

    Raises:
        LocalIOError: the file cannot be created, written or moved into place.
    """
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except FileNotFoundError:
        raise InputError(f"{path}: the directory {directory} does not exist") from None
    except OSError as exc:
        raise LocalIOError(f"{path}: cannot create a file in {directory}: {exc.strerror}") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise LocalIOError(f"{path}: cannot write: {exc.strerror}") from None
        raise


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode) as handle:
        handle.write(data)
